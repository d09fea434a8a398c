#ifndef SEGVIEW_GEMM_KERNEL_H
#define SEGVIEW_GEMM_KERNEL_H

#include <stddef.h>
#include <stdint.h>

/// Whether this CPU runs seg_sgemm (AVX-512F); otherwise callers use OpenBLAS.
int seg_gemm_supported(void);

/// Floats of scratch memory one seg_sgemm call needs (its packed blocks of A and B).
size_t seg_gemm_scratch_floats(void);

/// Rows per panel of the packed weight layout (see seg_gemm_pack_panels).
int seg_gemm_panel_rows(void);

/// Columns of B packed and multiplied as one block (NC): products split by columns between
/// threads lose nothing when each piece is a block.
int seg_gemm_block_columns(void);

/// Columns of B in one sliver (NR): the micro-kernel's tile of C is this wide.
int seg_gemm_sliver_columns(void);

/// Columns of one vector of a sliver: a narrower last sliver multiplies only the vectors that
/// hold columns, so a product costs whole vectors, not whole slivers.
int seg_gemm_vector_columns(void);

/// Packs row-major A (M x K, leading dimension lda) into the layout the kernel reads, made once
/// per layer: ceil(M / panel rows) panels of K x (panel rows), element (m, k) of A at
/// panels[(m / rows) * K * rows + k * rows + m % rows]; rows past M are zero.
void seg_gemm_pack_panels(int M, int K, const float *A, long lda, float *panels);

/// Columns of B and C that are a rectangle of positions in an image rather than one run: column n
/// lies at (n / width) * b_row (in B) or * c_row (in C), plus n % width, from the start of its row.
/// This lets a convolution multiply a window of its input in place (no copy into a column matrix)
/// and write a window of its output.
typedef struct {
    int width;
    long b_row;
    long c_row;
} seg_positions;

/// Single-threaded row-major C = A (M x K) x B (K x N), with the layer's epilogue fused:
///   C[m][n] = act((accumulate ? C[m][n] : 0) + sum_k A[m][k] B[k][n] + bias[m] + addend[m][n])
/// where bias (may be NULL) is per row, addend (may be NULL) has C's layout, and act is
/// min(max(x, 0), cap) when cap > 0 (INFINITY: ReLU, 6: ReLU6), the identity when cap is 0.
/// `positions` may be NULL (plain columns).
/// A is row-major with leading dimension lda when a_panel_stride is 0; otherwise it is packed
/// panels a_panel_stride floats apart (K x rows each, A pointing at the first row's panel, at the
/// depth where this product starts). Callers split M (at multiples of the panel rows when A is
/// packed) or N between threads; `scratch` holds seg_gemm_scratch_floats() floats.
void seg_sgemm(int M, int N, int K, const float *A, long lda, long a_panel_stride, const float *B, long ldb, float *C, long ldc,
               const seg_positions *positions, int accumulate, const float *bias, const float *addend, float cap,
               float *scratch);

/// Whether the CPU has what the int8 kernels need (AVX-512 with VNNI).
int seg_int8_supported(void);

/// Signed-byte weights A (M rows of K4 * 4 values) as the int8 kernel's panels: [M/MR][K4][MR][4],
/// rows past M zero. `panels` holds (M rounded up to MR) * K4 * 4 bytes.
void seg_int8_pack_panels(int M, int K4, const int8_t *A, int8_t *panels);

/// Quads quad_start..<quad_start+quad_count of `channels` planes of `plane` floats: quad q holds, in
/// byte j of each element, channel 4q + j as clamp(round(x / scale) + zero_point, 0, 255) (the zero
/// point past the last channel). Returns how many of the values read were NaN or infinite.
long seg_int8_quantize_quads(const float *x, int channels, long plane, float inverse_scale, int zero_point,
                             uint32_t *quads, long quad_start, long quad_count);

/// C = (accumulate ? C : 0) + scale[row] * (A x B) (+ shift[row], + addend, clamped to [0, cap] when
/// cap > 0), where A is packed signed-byte panels (`a_panel_stride` bytes apart), B K4 rows of N
/// unsigned quads (ldb apart); the sums over K4 * 4 bytes are exact 32-bit integers within blocks
/// of up to 512 quads, added in float32 across blocks. `positions` (may be NULL) as seg_sgemm's,
/// in quads for B; `scratch` as seg_sgemm's.
void seg_int8_gemm(int M, int N, int K4, const int8_t *A, long a_panel_stride, const uint32_t *B, long ldb, float *C,
                   long ldc, const seg_positions *positions, int accumulate, const float *scale, const float *shift,
                   const float *addend, float cap, float *scratch);

/// seg_int8_gemm's result, the same floats, on any CPU (plain loops: slower than float32, for
/// measuring accuracy).
void seg_int8_gemm_portable(int M, int N, int K4, const int8_t *A, long a_panel_stride, const uint32_t *B, long ldb,
                            float *C, long ldc, const seg_positions *positions, int accumulate, const float *scale,
                            const float *shift, const float *addend, float cap, float *scratch);

#endif
