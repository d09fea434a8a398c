// Depthwise convolution, one channel at a time, in plain C for the compiler to vectorise per
// instruction set (see winograd.c): these layers do little arithmetic per byte, so the loop
// overhead and SSE width of the Swift version were most of their time.
#include "vector_kernels.h"
#include "window.h"

#include <math.h>
#include <string.h>

static inline float clamp(float value, float cap) { return cap > 0 ? fminf(fmaxf(value, 0), cap) : value; }

/// One output row of a 3x3 depthwise conv, the nine products of an output summed in registers and
/// stored once: `rows` are the three input rows (an out-of-bounds row has zero weights), `w` the
/// filter. Outputs low..<high read inside every row; the few at the edges check each column.
/// Inlined with a constant stride, the stride-2 reads vectorise as de-interleaved loads.
static inline __attribute__((always_inline)) void row_3x3(float *out, int out_w, const float *const rows[3],
                                                           const float *w, int in_w, int stride, int dilation,
                                                           int padding, int low, int high, float bias, float cap) {
    const float *r0 = rows[0], *r1 = rows[1], *r2 = rows[2];
    const int d = dilation;
    for (int ox = low; ox < high; ox++) {
        int x = ox * stride - padding;
        float sum = bias + w[0] * r0[x] + w[1] * r0[x + d] + w[2] * r0[x + 2 * d] + w[3] * r1[x] + w[4] * r1[x + d]
            + w[5] * r1[x + 2 * d] + w[6] * r2[x] + w[7] * r2[x + d] + w[8] * r2[x + 2 * d];
        out[ox] = clamp(sum, cap);
    }
    for (int edge = 0; edge < 2; edge++) {  // left of the interior, then right of it
        int first = edge ? (high > low ? high : low) : 0, last = edge ? out_w : (low < out_w ? low : out_w);
        for (int ox = first; ox < last; ox++) {
            float sum = bias;
            for (int tx = 0; tx < 3; tx++) {
                int x = ox * stride - padding + tx * d;
                if (x >= 0 && x < in_w) sum += w[tx] * r0[x] + w[3 + tx] * r1[x] + w[6 + tx] * r2[x];
            }
            out[ox] = clamp(sum, cap);
        }
    }
}

/// Stride 1 on a small plane (Xception's 728 channels of 32x32): the plane copied once into a
/// zero-bordered scratch on the stack, so that every output of a row takes one branch-free loop.
/// row_3x3 would leave a 32-wide row's edges and the remainder of its one vector to scalar code.
static inline __attribute__((always_inline)) void plane_3x3_bordered(const float *in, int in_h, int in_w, float *out,
                                                                      int out_h, int out_w, const float *w,
                                                                      int padding, int dilation, float bias,
                                                                      float cap, float *scratch) {
    const int pw = in_w + 2 * padding, d = dilation;
    memset(scratch, 0, sizeof(float) * pw * (in_h + 2 * padding));
    for (int y = 0; y < in_h; y++)
        memcpy(scratch + (long)(y + padding) * pw + padding, in + (long)y * in_w, sizeof(float) * in_w);
    for (int oy = 0; oy < out_h; oy++) {
        const float *r0 = scratch + (long)oy * pw, *r1 = r0 + (long)d * pw, *r2 = r1 + (long)d * pw;
        float *row = out + (long)oy * out_w;
        for (int x = 0; x < out_w; x++) {
            float sum = bias + w[0] * r0[x] + w[1] * r0[x + d] + w[2] * r0[x + 2 * d] + w[3] * r1[x]
                + w[4] * r1[x + d] + w[5] * r1[x + 2 * d] + w[6] * r2[x] + w[7] * r2[x + d] + w[8] * r2[x + 2 * d];
            row[x] = clamp(sum, cap);
        }
    }
}

/// Planes of at most this many floats with their border take plane_3x3_bordered (32 KB of stack).
enum { BORDERED_PLANE_LIMIT = 8192 };

/// The 3x3 kernels of MobileNets at stride 1 or 2: see row_3x3. Inlined, so each instruction set's
/// version of seg_depthwise_plane has its own.
static inline __attribute__((always_inline)) void plane_3x3(const float *in, int in_h, int in_w, float *out, int out_h, int out_w, const float *filter,
                      int stride, int padding, int dilation, float bias, float cap) {
    int low, high;
    inner_outputs(3, dilation, padding, stride, in_w, out_w, &low, &high);
    for (int oy = 0; oy < out_h; oy++) {
        const float *rows[3];
        float w[9];
        for (int ty = 0; ty < 3; ty++) {
            int iy = oy * stride + ty * dilation - padding;
            int inside = iy >= 0 && iy < in_h;
            rows[ty] = in + (long)(inside ? iy : 0) * in_w;
            for (int tx = 0; tx < 3; tx++) w[ty * 3 + tx] = inside ? filter[ty * 3 + tx] : 0;
        }
        float *row = out + (long)oy * out_w;
        if (stride == 1) row_3x3(row, out_w, rows, w, in_w, 1, dilation, padding, low, high, bias, cap);
        else row_3x3(row, out_w, rows, w, in_w, 2, dilation, padding, low, high, bias, cap);
    }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void seg_depthwise_plane(const float *in, int in_h, int in_w, float *out, int out_h, int out_w, const float *filter,
                         int kh, int kw, int stride, int padding, int dilation, float bias, float cap) {
    if (kh == 3 && kw == 3 && stride == 1
        && (long)(in_w + 2 * padding) * (in_h + 2 * padding) <= BORDERED_PLANE_LIMIT) {
        float scratch[BORDERED_PLANE_LIMIT];
        plane_3x3_bordered(in, in_h, in_w, out, out_h, out_w, filter, padding, dilation, bias, cap, scratch);
        return;
    }
    if (kh == 3 && kw == 3 && (stride == 1 || stride == 2)) {
        plane_3x3(in, in_h, in_w, out, out_h, out_w, filter, stride, padding, dilation, bias, cap);
        return;
    }
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
        for (int ox = 0; ox < out_w; ox++) row[ox] = clamp(row[ox] + bias, cap);
    }
}
