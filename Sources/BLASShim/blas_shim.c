#include "blas_shim.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

// From OpenBLAS's DYNAMIC_ARCH builds (driver/others/dynamic.c): the active kernel table and the
// function that fills it from OPENBLAS_CORETYPE or the CPU model; it does nothing while the table is set.
extern void *gotoblas;
extern void gotoblas_dynamic_init(void);

static int is_generic_fallback(const char *core) {
    static const char *const fallbacks[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Sandybridge"};
    for (size_t i = 0; i < sizeof fallbacks / sizeof fallbacks[0]; i++)
        if (strcmp(core, fallbacks[i]) == 0) return 1;
    return 0;
}

const char *seg_blas_configure(int threads) {
    static int checked = 0;
    if (!checked) {
        checked = 1;
        const char *choice = NULL;
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
            choice = "SkylakeX";
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            choice = "Haswell";
        if (choice && !getenv("OPENBLAS_CORETYPE") && is_generic_fallback(openblas_get_corename())) {
            setenv("OPENBLAS_CORETYPE", choice, 0);
            gotoblas = NULL;
            gotoblas_dynamic_init();
        }
    }
    if (threads > 0) openblas_set_num_threads(threads);
    return openblas_get_corename();
}
