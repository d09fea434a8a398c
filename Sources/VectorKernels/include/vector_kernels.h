#ifndef SEGVIEW_VECTOR_KERNELS_H
#define SEGVIEW_VECTOR_KERNELS_H

#include <stdint.h>

/// The three transforms of Winograd's F(4x4, 3x3) (Lavin & Gray 2016) for the engine's 3x3
/// convolutions; the 36 matrix products between them are seg_sgemm's. A tile is 4x4 outputs read
/// from a 6x6 input patch; with dilation d its elements are d apart (see Winograd.swift). Matrices
/// of the 36 transformed points ("k") lie k_stride floats apart.

/// Rows per panel of the filters (the matrix kernel's panel rows).
enum { SEG_WINOGRAD_PANEL_ROWS = 8 };

/// U_k = (G g G^T)[k] for one panel of 8 output channels and `count` of their input channels: the
/// 3x3 taps of input channel i at source[(tap * cin + i) * 8 + row] (tap = 3 * ky + kx, the weights'
/// panel layout, `source` at the first input channel), the result at target[k * k_stride + i * 8 + row]
/// (U_k's panel, `count` deep).
void seg_winograd_filters(const float *source, int cin, int count, float *target, long k_stride);

/// V_k = (B^T p B)[k] for `count` tiles of one channel: patch element (r, s) of tile t is
/// plane[(origin_y[t] + d r) * width + origin_x[t] + d s], zero outside the plane; V_k of tile t
/// goes to v[k * k_stride + t], whole vectors: the rows need room for `count` rounded up to 16
/// (the values past `count` are not tiles). `framed` is scratch for the patches' rows and columns of the plane:
/// room for (rows + 5d) x (columns + 5d) floats, where the origins span `rows` x `columns`.
void seg_winograd_input(const float *plane, int height, int width, int dilation, const int *origin_y,
                        const int *origin_x, int count, float *v, long k_stride, float *framed);

/// Y = A^T M A + bias for `count` tiles of one output channel, clamped to [0, cap] when cap > 0
/// (INFINITY: ReLU, 6: ReLU6): M_k of tile t at m[k * k_stride + t], read as whole vectors (`count`
/// rounded up to 16 values, the rest ignored); output (u, x) of tile t goes
/// to plane[(origin_y[t] + d u) * width + origin_x[t] + d x] where that lies inside the plane.
void seg_winograd_output(const float *m, long k_stride, const int *origin_y, const int *origin_x, int count,
                         int dilation, float *plane, int height, int width, float bias, float cap);

/// One channel of a depthwise convolution: out (out_h x out_w) = the kh x kw filter over `in`
/// (in_h x in_w, zero padding `padding`, `stride`, `dilation`) + bias, clamped to [0, cap] when
/// cap > 0. Each output row takes all its taps while it sits in L1.
void seg_depthwise_plane(const float *in, int in_h, int in_w, float *out, int out_h, int out_w, const float *filter,
                         int kh, int kw, int stride, int padding, int dilation, float bias, float cap);

/// One channel of max pooling: out (out_h x out_w) = the max over each kernel x kernel window of
/// `in` (stride, padding, dilation; padding and taps past the input are left out, a NaN wins).
void seg_max_pool_plane(const float *in, int in_h, int in_w, float *out, int out_h, int out_w, int kernel, int stride,
                        int padding, int dilation);

/// The sum of `count` floats (in 32 interleaved partial sums: average pooling over whole planes).
float seg_sum(const float *values, long count);

/// Positions start..<start+count of one row of im2col, on 32-bit elements (floats, or int8's quads of
/// bytes): for output (oy, ox) at position oy * out_w + ox, plane[(oy * stride + offset_y) * in_w +
/// ox * stride + offset_x] where oy lies in [valid_y0, valid_y1) and ox in [valid_x0, valid_x1) (the
/// tap reads inside the plane), `fill` elsewhere (0: a float zero).
void seg_im2col_row(void *row, const void *plane, int in_w, int out_w, int offset_y, int offset_x, int stride,
                    int valid_y0, int valid_y1, int valid_x0, int valid_x1, long start, long count, uint32_t fill);

/// Rows 0..<m of C (ldc apart), columns 0..<n: C + bias[row] + addend (C's layout; either may be
/// NULL), clamped to [0, cap] when cap > 0: the epilogue of a product that did not fuse it.
void seg_epilogue_rows(float *c, long ldc, int m, int n, const float *bias, const float *addend, float cap);

#endif
