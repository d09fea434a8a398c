// Max pooling, one channel at a time, and sums for average pooling, for the compiler to vectorise
// per instruction set (see depthwise.c): window by window in Swift, the ResNet stem's pool took
// about 1 % of a pass.
#include "vector_kernels.h"
#include "window.h"

#include <math.h>

/// PyTorch's max: a NaN wins.
static inline float larger(float best, float value) { return value > best || value != value ? value : best; }

/// Folds one input row into a row of maxima, tap by tap.
static inline __attribute__((always_inline)) void fold_row(float *out, int out_w, const float *row, int in_w, int kernel,
                                                            int stride, int dilation, int padding) {
    for (int kx = 0; kx < kernel; kx++) {
        int offset = kx * dilation - padding, low, high;
        valid_outputs(offset, stride, in_w, out_w, &low, &high);
        for (int ox = low; ox < high; ox++) out[ox] = larger(out[ox], row[ox * stride + offset]);
    }
}

/// The ResNet stem's 3x3 stride-2 window over one input row: the three taps in one expression, so
/// the compiler reads the row as de-interleaved vectors (tap by tap, each read was a gather).
static inline __attribute__((always_inline)) void fold_row_3x3_stride2(float *out, int out_w, const float *row,
                                                                        int in_w, int padding) {
    int low, high;
    inner_outputs(3, 1, padding, 2, in_w, out_w, &low, &high);
    for (int ox = low; ox < high; ox++) {
        const float *window = row + 2 * ox - padding;
        out[ox] = larger(larger(larger(out[ox], window[0]), window[1]), window[2]);
    }
    for (int ox = 0; ox < out_w; ox++) {
        if (ox >= low && ox < high) continue;
        for (int kx = 0; kx < 3; kx++) {
            int x = 2 * ox - padding + kx;
            if (x >= 0 && x < in_w) out[ox] = larger(out[ox], row[x]);
        }
    }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void seg_max_pool_plane(const float *in, int in_h, int in_w, float *out, int out_h, int out_w, int kernel, int stride,
                        int padding, int dilation) {
    for (int oy = 0; oy < out_h; oy++) {
        float *maxima = out + (long)oy * out_w;
        for (int ox = 0; ox < out_w; ox++) maxima[ox] = -INFINITY;
        for (int ky = 0; ky < kernel; ky++) {
            int iy = oy * stride + ky * dilation - padding;
            if (iy < 0 || iy >= in_h) continue;
            const float *row = in + (long)iy * in_w;
            if (kernel == 3 && stride == 2 && dilation == 1) fold_row_3x3_stride2(maxima, out_w, row, in_w, padding);
            else fold_row(maxima, out_w, row, in_w, kernel, stride, dilation, padding);
        }
    }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
float seg_sum(const float *values, long count) {
    float partial[32] = {0};  // independent sums the compiler keeps in vectors (one running sum is a chain of adds)
    long i = 0;
    for (; i + 32 <= count; i += 32)
        for (int j = 0; j < 32; j++) partial[j] += values[i + j];
    float sum = 0;
    for (; i < count; i++) sum += values[i];
    for (int j = 0; j < 32; j++) sum += partial[j];
    return sum;
}
