// A matrix product's epilogue as a pass of its own, for products the engine's kernel does not
// finish itself (OpenBLAS's, on CPUs without AVX-512): per element in Swift, through a closure
// that placed each column, it took about a tenth of a deeplabv3_resnet50 pass.
#include "vector_kernels.h"

#include <math.h>
#include <stddef.h>

__attribute__((target_clones("avx512f", "avx2", "default")))
void seg_epilogue_rows(float *c, long ldc, int m, int n, const float *bias, const float *addend, float cap) {
    for (int row = 0; row < m; row++) {
        float shift = bias ? bias[row] : 0, *values = c + row * ldc;
        const float *extra = addend ? addend + row * ldc : NULL;
        for (int i = 0; i < n; i++) {  // the order of the engine's kernel: bias, then addend, then clamp
            float v = values[i] + shift;
            if (extra) v += extra[i];
            values[i] = cap > 0 ? fminf(fmaxf(v, 0), cap) : v;
        }
    }
}
