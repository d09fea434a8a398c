// One row of im2col (the unfolded input of a convolution), for the compiler to vectorise per
// instruction set (see depthwise.c): the strided copies of the ResNet stem's 7x7 stride-2 conv
// went one float at a time in Swift.
#include "vector_kernels.h"

#include <string.h>

/// Sets `count` elements to `fill`.
static inline __attribute__((always_inline)) void fill_run(uint32_t *target, int count, uint32_t fill) {
    for (int i = 0; i < count; i++) target[i] = fill;
}

/// Copies `count` inputs from `source` at `stride` apart; inlined with a constant stride, the
/// reads vectorise as de-interleaved loads.
static inline __attribute__((always_inline)) void copy_strided(uint32_t *target, const uint32_t *source, int count,
                                                               int stride) {
    for (int i = 0; i < count; i++) target[i] = source[(long)i * stride];
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void seg_im2col_row(void *row_elements, const void *plane_elements, int in_w, int out_w, int offset_y, int offset_x,
                    int stride, int valid_y0, int valid_y1, int valid_x0, int valid_x1, long start, long count,
                    uint32_t fill) {
    uint32_t *row = row_elements;
    const uint32_t *plane = plane_elements;
    for (long position = start, end = start + count; position < end;) {
        int oy = (int)(position / out_w), first_x = (int)(position - (long)oy * out_w);
        int last_x = end - position < out_w - first_x ? first_x + (int)(end - position) : out_w;
        uint32_t *target = row + (position - start);
        if (oy < valid_y0 || oy >= valid_y1) {
            fill_run(target, last_x - first_x, fill);
        } else {
            const uint32_t *source = plane + (long)(oy * stride + offset_y) * in_w;
            int low = valid_x0 > first_x ? valid_x0 : first_x, high = valid_x1 < last_x ? valid_x1 : last_x;
            if (low > last_x) low = last_x;
            if (high < low) high = low;
            fill_run(target, low - first_x, fill);
            const uint32_t *from = source + (long)low * stride + offset_x;
            if (stride == 1) memcpy(target + low - first_x, from, sizeof(uint32_t) * (high - low));
            else if (stride == 2) copy_strided(target + low - first_x, from, high - low, 2);
            else copy_strided(target + low - first_x, from, high - low, stride);
            fill_run(target + high - first_x, last_x - high, fill);
        }
        position += last_x - first_x;
    }
}
