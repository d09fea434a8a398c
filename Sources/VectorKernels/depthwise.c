// Depthwise convolution, one channel at a time, in plain C for the compiler to vectorise per
// instruction set (see winograd.c): these layers do little arithmetic per byte, so the loop
// overhead and SSE width of the Swift version were most of their time.
#include "vector_kernels.h"

#include <math.h>
#include <string.h>

static inline int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/// The outputs o in [0, count) whose tap at offset `offset` (k * dilation - padding) reads inside
/// [0, size): 0 <= o * stride + offset < size. Empty when *low >= *high.
static inline void valid_outputs(int offset, int stride, int size, int count, int *low, int *high) {
    int first = -floor_div(offset, stride);  // ceil(-offset / stride)
    int last = floor_div(size - 1 - offset, stride) + 1;
    *low = first > 0 ? first : 0;
    *high = last < count ? last : count;
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void seg_depthwise_plane(const float *in, int in_h, int in_w, float *out, int out_h, int out_w, const float *filter,
                         int kh, int kw, int stride, int padding, int dilation, float bias, float cap) {
    for (int oy = 0; oy < out_h; oy++) {
        float *row = out + (long)oy * out_w;
        memset(row, 0, sizeof(float) * out_w);
        for (int ty = 0; ty < kh; ty++) {
            int iy = oy * stride + ty * dilation - padding;
            if (iy < 0 || iy >= in_h) continue;
            const float *source = in + (long)iy * in_w;
            for (int tx = 0; tx < kw; tx++) {
                int offset = tx * dilation - padding, low, high;
                valid_outputs(offset, stride, in_w, out_w, &low, &high);
                float w = filter[ty * kw + tx];
                if (stride == 1) {
                    const float *from = source + offset;
                    for (int ox = low; ox < high; ox++) row[ox] += w * from[ox];
                } else {
                    for (int ox = low; ox < high; ox++) row[ox] += w * source[ox * stride + offset];
                }
            }
        }
        for (int ox = 0; ox < out_w; ox++) {
            float value = row[ox] + bias;
            row[ox] = cap > 0 ? fminf(fmaxf(value, 0), cap) : value;
        }
    }
}
