// One row of im2col (the unfolded input of a convolution), for the compiler to vectorise per
// instruction set (see depthwise.c): the strided copies of the ResNet stem's 7x7 stride-2 conv
// went one float at a time in Swift.
#include "vector_kernels.h"

#include <string.h>

/// Copies `count` inputs from `source` at `stride` apart; inlined with a constant stride, the
/// reads vectorise as de-interleaved loads.
static inline __attribute__((always_inline)) void copy_strided(float *target, const float *source, int count, int stride) {
    for (int i = 0; i < count; i++) target[i] = source[(long)i * stride];
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void seg_im2col_row(float *row, const float *plane, int in_w, int out_w, int offset_y, int offset_x, int stride,
                    int valid_y0, int valid_y1, int valid_x0, int valid_x1, long start, long count) {
    for (long position = start, end = start + count; position < end;) {
        int oy = (int)(position / out_w), first_x = (int)(position - (long)oy * out_w);
        int last_x = end - position < out_w - first_x ? first_x + (int)(end - position) : out_w;
        float *target = row + (position - start);
        if (oy < valid_y0 || oy >= valid_y1) {
            memset(target, 0, sizeof(float) * (last_x - first_x));
        } else {
            const float *source = plane + (long)(oy * stride + offset_y) * in_w;
            int low = valid_x0 > first_x ? valid_x0 : first_x, high = valid_x1 < last_x ? valid_x1 : last_x;
            if (low > last_x) low = last_x;
            if (high < low) high = low;
            memset(target, 0, sizeof(float) * (low - first_x));
            const float *from = source + (long)low * stride + offset_x;
            if (stride == 1) memcpy(target + low - first_x, from, sizeof(float) * (high - low));
            else if (stride == 2) copy_strided(target + low - first_x, from, high - low, 2);
            else copy_strided(target + low - first_x, from, high - low, stride);
            memset(target + high - first_x, 0, sizeof(float) * (last_x - high));
        }
        position += last_x - first_x;
    }
}
