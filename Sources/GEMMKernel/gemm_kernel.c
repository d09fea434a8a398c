// A single-threaded SGEMM for the engine's products, written for AVX-512 (Goto/BLIS blocking).
//
// OpenBLAS 0.3.21 reaches 60-90 % of this machine's peak on the shapes of convolutions (few
// hundred rows or columns), needs its inputs as plain matrices (so windows of an image are first
// copied out) and leaves bias and activation to another pass. Here, as in BLIS's Skylake-X kernel
// with the operands named for a convolution:
//   - B (activations) is packed in blocks of KC x NC that stay in L2, as slivers of NR columns,
//     gathered straight from a window of the image when the columns are one (seg_positions);
//   - A (weights) in panels of MR rows that stay in L1 while every sliver of the block passes,
//     packed once per layer (seg_gemm_pack_panels) or here, per call;
//   - the micro-kernel keeps an MR x NR tile of C in 24 registers (8 rows x 3 vectors of 16)
//     and walks C along its rows, which the hardware prefetcher follows;
//   - the epilogue (bias, residual, ReLU/ReLU6) runs on the tile in registers at the last depth block.
#include "gemm_kernel.h"

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

enum { MR = 8, NR = 48, KC = 512, NC = 480, PREFETCH = 8, PACK_AHEAD = 4, PREFETCH_PANEL_SLIVERS = 6 };  // PREFETCH: steps of depth ahead
enum { LANES = 16 };  // floats in one AVX-512 vector

int seg_gemm_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

// Both packed blocks start on a cache line (16 floats): vector loads never straddle two lines.
size_t seg_gemm_scratch_floats(void) { return (size_t)MR * KC + (size_t)KC * NC + 16; }

static inline int min_int(int a, int b) { return a < b ? a : b; }

int seg_gemm_panel_rows(void) { return MR; }

int seg_gemm_block_columns(void) { return NC; }

int seg_gemm_sliver_columns(void) { return NR; }

int seg_gemm_vector_columns(void) { return LANES; }

/// Offset of column n from the start of a row of B (or C, with the C row step).
static inline long column_offset(const seg_positions *positions, int n, int in_c) {
    if (!positions) return n;
    return (long)(n / positions->width) * (in_c ? positions->c_row : positions->b_row) + n % positions->width;
}

/// Rows row0..row0+rows (rows <= MR) of A, depth `depth` from k0, as [depth][MR], zero-filled past `rows`.
static void pack_a(const float *A, long lda, int row0, int rows, int k0, int depth, float *panel) {
    for (int r = 0; r < MR; r++) {
        if (r < rows) {
            const float *src = A + (long)(row0 + r) * lda + k0;
            for (int k = 0; k < depth; k++) panel[k * MR + r] = src[k];
        } else {
            for (int k = 0; k < depth; k++) panel[k * MR + r] = 0;
        }
    }
}

void seg_gemm_pack_panels(int M, int K, const float *A, long lda, float *panels) {
    for (int row0 = 0; row0 < M; row0 += MR)
        pack_a(A, lda, row0, min_int(MR, M - row0), 0, K, panels + (size_t)row0 * K);
}

/// Copies `count` (<= NR) floats from `source`, or zeros where it is NULL, the lanes past the end
/// masked off: runs are a sliver's width or less, where a call to memcpy cost more than the copy
/// (memcpy was 9 % of a deeplabv3_resnet50 pass).
__attribute__((target("avx512f")))
static inline void copy_run(float *target, const float *source, int count) {
    for (int j = 0; j < count; j += 16) {
        __mmask16 mask = count - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (count - j)) - 1);
        _mm512_mask_storeu_ps(target + j, mask, source ? _mm512_maskz_loadu_ps(mask, source + j) : _mm512_setzero_ps());
    }
}

/// Columns col0..col0+cols (cols <= NC) of B, depth `depth` from k0, as slivers [cols/NR][depth][NR],
/// zero-filled past `cols`. Each sliver takes the runs of its columns that are contiguous in B; B is
/// read a row at a time, across every sliver. The packing is about a tenth of a deeplabv3_resnet50
/// pass, nearly all of it waiting for B (the ASPP packs each tap's window of a 32 MB input).
__attribute__((target("avx512f")))
static void pack_b(const float *B, long ldb, const seg_positions *positions, int k0, int depth, int col0, int cols,
                   float *packed) {
    struct { int at, count; long offset; } runs[NC];  // at: column in the sliver; offset: in B's row
    int first_run[NC / NR + 2], count = 0, slivers = (cols + NR - 1) / NR;
    for (int sliver = 0; sliver < slivers; sliver++) {
        first_run[sliver] = count;
        int width = min_int(NR, cols - sliver * NR);
        for (int done = 0; done < width; count++) {
            int n = col0 + sliver * NR + done;
            int run = positions ? min_int(width - done, positions->width - n % positions->width) : width;
            runs[count].at = done;
            runs[count].count = run;
            runs[count].offset = column_offset(positions, n, 0);
            done += run;
        }
    }
    first_run[slivers] = count;
    int tail = slivers * NR - cols;  // columns past the end of the last sliver
    for (int k = 0; k < depth; k++) {
        const float *row = B + (long)(k0 + k) * ldb;
        if (k + PACK_AHEAD < depth)  // rows are pages apart, which the prefetcher does not cross: ask ahead
            for (int r = 0; r < count; r++)
                for (int j = 0; j < runs[r].count; j += 16) _mm_prefetch((const char *)(row + PACK_AHEAD * ldb + runs[r].offset + j), _MM_HINT_T0);
        for (int sliver = 0; sliver < slivers; sliver++) {
            float *target = packed + (size_t)sliver * NR * depth + (size_t)k * NR;
            int first = first_run[sliver];
            if (first_run[sliver + 1] == first + 1 && runs[first].count == NR) {  // one whole run: three vectors
                const float *source = row + runs[first].offset;
                __m512 a = _mm512_loadu_ps(source), b = _mm512_loadu_ps(source + 16), c = _mm512_loadu_ps(source + 32);
                _mm512_storeu_ps(target, a);
                _mm512_storeu_ps(target + 16, b);
                _mm512_storeu_ps(target + 32, c);
                continue;
            }
            for (int r = first; r < first_run[sliver + 1]; r++)
                copy_run(target + runs[r].at, row + runs[r].offset, runs[r].count);
        }
        if (tail) copy_run(packed + (size_t)(slivers - 1) * NR * depth + (size_t)k * NR + NR - tail, NULL, tail);
    }
}

/// Where one vector of a tile's rows goes in C: the runs of its lanes that are contiguous in C
/// (one, unless the columns are a window and the vector crosses a window row's end), each a mask
/// and the offset from the row's start of where lane 0 would go (lane i of a run goes to offset + i;
/// masked-off lanes are never touched). Planned once per block of columns, for every panel of rows:
/// a window's plan takes divisions, which per row and vector were 24 a tile.
typedef struct {
    int count;
    __mmask16 mask[16];
    long offset[16];
} vector_runs;

/// The runs of the vector of columns n..n+count (count <= 16).
static inline void plan_vector(vector_runs *plan, const seg_positions *positions, int n, int count) {
    __mmask16 valid = count >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << count) - 1);
    plan->count = 0;
    for (int done = 0; done < count;) {
        int run = count - done;
        if (positions) {
            int left = positions->width - (n + done) % positions->width;  // columns to the window row's end
            if (left < run) run = left;
        }
        plan->mask[plan->count] = valid & (__mmask16)(((1u << run) - 1) << done);
        plan->offset[plan->count] = column_offset(positions, n + done, 1) - done;
        plan->count++;
        done += run;
    }
}

/// Stores one vector of the tile into `row` of C as planned, with the epilogue: shift (the bias),
/// the addend's row `extra`, the clamp.
__attribute__((target("avx512f")))
static inline void store_vector(__m512 value, float *row, const float *extra, const vector_runs *plan, int accumulate,
                                __m512 shift, float cap) {
    const __m512 zero = _mm512_setzero_ps();
    __m512 v = _mm512_add_ps(value, shift);
    for (int i = 0; i < plan->count; i++) {
        __mmask16 mask = plan->mask[i];
        long offset = plan->offset[i];
        __m512 w = v;
        if (accumulate) w = _mm512_add_ps(w, _mm512_maskz_loadu_ps(mask, row + offset));
        if (extra) w = _mm512_add_ps(w, _mm512_maskz_loadu_ps(mask, extra + offset));
        if (cap > 0) w = _mm512_min_ps(_mm512_max_ps(w, zero), _mm512_set1_ps(cap));
        _mm512_mask_storeu_ps(row + offset, mask, w);
    }
}

/// The MR x NR tile of C: (accumulate ? C : 0) + a_panel x b_sliver, then the epilogue when `last`
/// (bias, addend, ReLU). `plans` place its vectors in C (see plan_vector); only `rows` x `cols` of
/// the tile are written. Only the sliver's `VECTORS` vectors of 16 columns that hold columns are
/// multiplied: a product 128 columns wide (Winograd's chunks of tiles) is two whole slivers and one
/// of two vectors, where three would waste a ninth of its multiplies.
__attribute__((target("avx512f,prfchw"), always_inline))
static inline void tile_kernel(const int VECTORS, int depth, const float *a, const float *b, float *c, long ldc,
                               const vector_runs *plans, int rows, int accumulate, int last, const float *bias,
                               const float *addend, float cap, const float *next_a) {
    __m512 acc[MR][3];
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < VECTORS; j++) acc[r][j] = _mm512_setzero_ps();
    // The tile's memory is touched only at the end: start bringing it in now, while the products run.
    // C is read when accumulating, else only written (ask for it to own); a residual was made
    // layers ago and is often in memory, where 24 lines read on demand stalled the epilogue. (For a
    // window the tile's rows may wrap to the next image row; a prefetch of the wrong line is harmless.)
    const long at = plans[0].offset[0];  // the tile's first column
    for (int r = 0; r < rows; r++) {
        for (int j = 0; j < VECTORS; j++) {
            if (accumulate) _mm_prefetch((const char *)(c + at + r * ldc + 16 * j), _MM_HINT_T0);
            else _mm_prefetch((const char *)(c + at + r * ldc + 16 * j), _MM_HINT_ET0);
            if (last && addend) _mm_prefetch((const char *)(addend + at + r * ldc + 16 * j), _MM_HINT_T0);
        }
    }
    for (int k = 0; k < depth; k++) {
        __m512 bv[3];
        for (int j = 0; j < VECTORS; j++) {
            bv[j] = _mm512_loadu_ps(b + 16 * j);
            // The sliver streams from L2: ask for it a few steps ahead.
            _mm_prefetch((const char *)(b + PREFETCH * NR + 16 * j), _MM_HINT_T0);
        }
        if (next_a) _mm_prefetch((const char *)(next_a + k * MR), _MM_HINT_T1);
        for (int r = 0; r < MR; r++) {
            __m512 ar = _mm512_set1_ps(a[r]);
            for (int j = 0; j < VECTORS; j++) acc[r][j] = _mm512_fmadd_ps(ar, bv[j], acc[r][j]);
        }
        a += MR;
        b += NR;
    }
    for (int r = 0; r < rows; r++) {
        __m512 shift = last && bias ? _mm512_set1_ps(bias[r]) : _mm512_setzero_ps();
        const float *extra = last && addend ? addend + r * ldc : NULL;
        for (int j = 0; j < VECTORS; j++)
            store_vector(acc[r][j], c + r * ldc, extra, &plans[j], accumulate, shift, last ? cap : 0);
    }
}

__attribute__((target("avx512f,prfchw")))
static void micro_kernel(int depth, const float *a, const float *b, float *c, long ldc, const vector_runs *plans,
                         int rows, int cols, int accumulate, int last, const float *bias, const float *addend,
                         float cap, const float *next_a) {
    switch ((cols + 15) / 16) {
    case 3: tile_kernel(3, depth, a, b, c, ldc, plans, rows, accumulate, last, bias, addend, cap, next_a); break;
    case 2: tile_kernel(2, depth, a, b, c, ldc, plans, rows, accumulate, last, bias, addend, cap, next_a); break;
    default: tile_kernel(1, depth, a, b, c, ldc, plans, rows, accumulate, last, bias, addend, cap, next_a); break;
    }
}

void seg_sgemm(int M, int N, int K, const float *A, long lda, long a_panel_stride, const float *B, long ldb, float *C, long ldc,
               const seg_positions *positions, int accumulate, const float *bias, const float *addend, float cap,
               float *scratch) {
    float *packedA = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63), *packedB = packedA + (size_t)MR * KC;
    if (K == 0) {  // no products: the epilogue alone
        for (int m = 0; m < M; m++) {
            for (int n = 0; n < N; n++) {
                long at = m * ldc + column_offset(positions, n, 1);
                float v = (accumulate ? C[at] : 0) + (bias ? bias[m] : 0) + (addend ? addend[at] : 0);
                C[at] = cap > 0 ? fminf(fmaxf(v, 0), cap) : v;
            }
        }
        return;
    }
    // Depth blocks of at most KC, as even as that allows. With blocks of 384, a depth of 512 went
    // as 384 + 128: a second pass over C for a quarter of the work (ResNet's 1x1 expansions on
    // 512 channels ran 6-12 % slower than in one block of 512).
    int blocks = (K + KC - 1) / KC, block = (K + blocks - 1) / blocks;
    for (int k0 = 0; k0 < K; k0 += block) {
        int depth = min_int(block, K - k0);
        int first = k0 == 0, last = k0 + depth == K;
        for (int col0 = 0; col0 < N; col0 += NC) {
            int cols = min_int(NC, N - col0);
            pack_b(B, ldb, positions, k0, depth, col0, cols, packedB);
            vector_runs plans[NC / 16];
            for (int v = 0; v < (cols + 15) / 16; v++)
                plan_vector(&plans[v], positions, col0 + 16 * v, min_int(16, cols - 16 * v));
            for (int row0 = 0; row0 < M; row0 += MR) {
                int rows = min_int(MR, M - row0);
                const float *panel = packedA;
                if (a_panel_stride) panel = A + (long)(row0 / MR) * a_panel_stride + (long)k0 * MR;
                else pack_a(A, lda, row0, rows, k0, depth, packedA);
                // In a block of few slivers (Winograd's products), the next panel of packed weights
                // comes into L2 while the last sliver passes; each panel waited for L3 otherwise.
                // (1x1 convolutions' blocks of 7-10 slivers showed no gain.)
                const float *next_panel = a_panel_stride && row0 + MR < M && cols <= PREFETCH_PANEL_SLIVERS * NR
                    ? panel + a_panel_stride : NULL;
                for (int s = 0; s < cols; s += NR) {
                    micro_kernel(depth, panel, packedB + (size_t)s * depth, C + (long)row0 * ldc, ldc, plans + s / 16,
                                 rows, min_int(NR, cols - s), accumulate || !first, last,
                                 bias ? bias + row0 : NULL, addend ? addend + (long)row0 * ldc : NULL, cap,
                                 s + NR >= cols ? next_panel : NULL);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// int8: the same blocking with AVX-512 VNNI. vpdpbusd multiplies 4 unsigned bytes by 4 signed bytes
// and adds the 4 products to a 32-bit lane: a quarter of the instructions fp32 needs for the same
// depth. Activations come as "quads", the bytes of 4 consecutive input channels in one 32-bit
// element, so a matrix of quads has the fp32 kernel's shape and is packed by pack_b unchanged (it
// only moves 32-bit elements). Weights are signed bytes in panels of [depth quads][MR][4].

int seg_int8_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512vnni");
}

void seg_int8_pack_panels(int M, int K4, const int8_t *A, int8_t *panels) {
    for (int row0 = 0; row0 < M; row0 += MR) {
        int8_t *panel = panels + (size_t)row0 * K4 * 4;
        for (int q = 0; q < K4; q++)
            for (int r = 0; r < MR; r++)
                for (int j = 0; j < 4; j++)
                    panel[((size_t)q * MR + r) * 4 + j] = row0 + r < M ? A[(size_t)(row0 + r) * K4 * 4 + q * 4 + j] : 0;
    }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
long seg_int8_quantize_quads(const float *x, int channels, long plane, float inverse_scale, int zero_point,
                             uint32_t *quads, long quad_start, long quad_count) {
    long nonFinite = 0;
    for (long q = quad_start; q < quad_start + quad_count; q++) {
        uint32_t *target = quads + q * plane;
        for (long p = 0; p < plane; p++) target[p] = 0;
        for (int j = 0; j < 4; j++) {
            int channel = (int)q * 4 + j;
            uint32_t shift = 8 * j;
            if (channel >= channels) {  // past the last channel: the zero point, times a zero weight
                for (long p = 0; p < plane; p++) target[p] |= (uint32_t)zero_point << shift;
                continue;
            }
            const float *source = x + (long)channel * plane;
            // Round to nearest even, as PyTorch's quantize_per_tensor does; a NaN becomes byte 0
            // and is counted, so that the caller can pass it on.
            for (long p = 0; p < plane; p++) {
                float byte = fminf(fmaxf(rintf(source[p] * inverse_scale) + (float)zero_point, 0), 255);
                target[p] |= (uint32_t)byte << shift;
                nonFinite += !isfinite(source[p]);
            }
        }
    }
    return nonFinite;
}

/// The int8 MR x NR tile: acc = a_panel x b_sliver in 32-bit lanes, then C = (accumulate ? C : 0)
/// + scale[r] * acc, and the epilogue when `last` (shift, addend, clamp) as in tile_kernel.
__attribute__((target("avx512f,avx512bw,avx512vnni,prfchw"), always_inline))
static inline void int8_tile_kernel(const int VECTORS, int depth, const int8_t *a, const uint32_t *b, float *c,
                                    long ldc, const vector_runs *plans, int rows, int accumulate, int last,
                                    const float *scale, const float *shift, const float *addend, float cap) {
    __m512i acc[MR][3];
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < VECTORS; j++) acc[r][j] = _mm512_setzero_si512();
    const long at = plans[0].offset[0];
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < VECTORS; j++) {
            if (accumulate) _mm_prefetch((const char *)(c + at + r * ldc + 16 * j), _MM_HINT_T0);
            else _mm_prefetch((const char *)(c + at + r * ldc + 16 * j), _MM_HINT_ET0);
            if (last && addend) _mm_prefetch((const char *)(addend + at + r * ldc + 16 * j), _MM_HINT_T0);
        }
    for (int k = 0; k < depth; k++) {
        __m512i bv[3];
        for (int j = 0; j < VECTORS; j++) {
            bv[j] = _mm512_loadu_si512(b + 16 * j);
            _mm_prefetch((const char *)(b + PREFETCH * NR + 16 * j), _MM_HINT_T0);
        }
        for (int r = 0; r < MR; r++) {
            int32_t quad;  // row r's 4 weight bytes, broadcast as one 32-bit element
            memcpy(&quad, a + 4 * r, sizeof quad);
            __m512i ar = _mm512_set1_epi32(quad);
            for (int j = 0; j < VECTORS; j++) acc[r][j] = _mm512_dpbusd_epi32(acc[r][j], bv[j], ar);
        }
        a += 4 * MR;
        b += NR;
    }
    for (int r = 0; r < rows; r++) {
        __m512 rowScale = _mm512_set1_ps(scale[r]);
        __m512 rowShift = last && shift ? _mm512_set1_ps(shift[r]) : _mm512_setzero_ps();
        const float *extra = last && addend ? addend + r * ldc : NULL;
        for (int j = 0; j < VECTORS; j++)
            store_vector(_mm512_mul_ps(_mm512_cvtepi32_ps(acc[r][j]), rowScale), c + r * ldc, extra, &plans[j],
                         accumulate, rowShift, last ? cap : 0);
    }
}

__attribute__((target("avx512f,avx512bw,avx512vnni,prfchw")))
static void int8_micro_kernel(int depth, const int8_t *a, const uint32_t *b, float *c, long ldc,
                              const vector_runs *plans, int rows, int cols, int accumulate, int last,
                              const float *scale, const float *shift, const float *addend, float cap) {
    switch ((cols + 15) / 16) {
    case 3: int8_tile_kernel(3, depth, a, b, c, ldc, plans, rows, accumulate, last, scale, shift, addend, cap); break;
    case 2: int8_tile_kernel(2, depth, a, b, c, ldc, plans, rows, accumulate, last, scale, shift, addend, cap); break;
    default: int8_tile_kernel(1, depth, a, b, c, ldc, plans, rows, accumulate, last, scale, shift, addend, cap); break;
    }
}

/// Depth blocks of at most KC quads, as even as that allows: each block's sums are exact 32-bit
/// integers (at most KC * 4 * 255 * 127), then scaled and added in float32.
static int int8_depth_block(int K4) {
    int blocks = (K4 + KC - 1) / KC;
    return (K4 + blocks - 1) / blocks;
}

void seg_int8_gemm(int M, int N, int K4, const int8_t *A, long a_panel_stride, const uint32_t *B, long ldb, float *C,
                   long ldc, const seg_positions *positions, int accumulate, const float *scale, const float *shift,
                   const float *addend, float cap, float *scratch) {
    uint32_t *packedB = (uint32_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    int block = int8_depth_block(K4);
    for (int k0 = 0; k0 < K4; k0 += block) {
        int depth = min_int(block, K4 - k0);
        int first = k0 == 0, last = k0 + depth == K4;
        for (int col0 = 0; col0 < N; col0 += NC) {
            int cols = min_int(NC, N - col0);
            pack_b((const float *)B, ldb, positions, k0, depth, col0, cols, (float *)packedB);
            vector_runs plans[NC / 16];
            for (int v = 0; v < (cols + 15) / 16; v++)
                plan_vector(&plans[v], positions, col0 + 16 * v, min_int(16, cols - 16 * v));
            for (int row0 = 0; row0 < M; row0 += MR) {
                const int8_t *panel = A + (long)(row0 / MR) * a_panel_stride + (long)k0 * MR * 4;
                for (int s = 0; s < cols; s += NR)
                    int8_micro_kernel(depth, panel, packedB + (size_t)s * depth, C + (long)row0 * ldc, ldc,
                                      plans + s / 16, min_int(MR, M - row0), min_int(NR, cols - s),
                                      accumulate || !first, last,
                                      scale + row0, shift ? shift + row0 : NULL,
                                      addend ? addend + (long)row0 * ldc : NULL, cap);
            }
        }
    }
}

/// Columns col0 + n .. col0 + n + (the result) - 1 of a product: as many as stay in one row of the
/// window (`positions`), so that they are contiguous in B and in C.
static inline int column_run(const seg_positions *positions, int col0, int n, int cols) {
    return positions ? min_int(cols - n, positions->width - (col0 + n) % positions->width) : cols - n;
}

/// seg_int8_gemm's arithmetic without VNNI, in plain loops the compiler vectorises (over runs of
/// columns that are contiguous): the same integer sums over the same depth blocks, scaled and added
/// in the same order, so both kernels give the same floats; a CPU without VNNI measures what int8
/// costs in accuracy (`segview quantize`), and the tests check both kernels against one reference.
__attribute__((target_clones("avx2", "default")))
void seg_int8_gemm_portable(int M, int N, int K4, const int8_t *A, long a_panel_stride, const uint32_t *B, long ldb,
                            float *C, long ldc, const seg_positions *positions, int accumulate, const float *scale,
                            const float *shift, const float *addend, float cap, float *scratch) {
    enum { COLUMNS = 256 };
    int32_t *acc = (int32_t *)scratch;  // MR x COLUMNS
    int block = int8_depth_block(K4);
    for (int row0 = 0; row0 < M; row0 += MR) {
        int rows = min_int(MR, M - row0);
        const int8_t *panel = A + (long)(row0 / MR) * a_panel_stride;
        for (int col0 = 0; col0 < N; col0 += COLUMNS) {
            int cols = min_int(COLUMNS, N - col0);
            for (int k0 = 0; k0 < K4; k0 += block) {
                int first = k0 == 0, last = k0 + block >= K4;
                for (int i = 0; i < MR * COLUMNS; i++) acc[i] = 0;
                for (int q = k0; q < min_int(K4, k0 + block); q++) {
                    const uint32_t *b = B + (long)q * ldb;
                    for (int r = 0; r < rows; r++) {
                        const int8_t *w = panel + ((long)q * MR + r) * 4;
                        int32_t w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3];
                        for (int n0 = 0, run; n0 < cols; n0 += run) {
                            run = column_run(positions, col0, n0, cols);
                            const uint32_t *source = b + column_offset(positions, col0 + n0, 0);
                            int32_t *sums = acc + r * COLUMNS + n0;
                            for (int n = 0; n < run; n++) {
                                uint32_t v = source[n];
                                sums[n] += w0 * (int32_t)(v & 255) + w1 * (int32_t)((v >> 8) & 255)
                                    + w2 * (int32_t)((v >> 16) & 255) + w3 * (int32_t)(v >> 24);
                            }
                        }
                    }
                }
                // As store_vector: scaled, plus the shift, plus C, plus the addend, clamped; one
                // operation a statement, so that none is fused into a multiply-add.
                for (int r = 0; r < rows; r++) {
                    float rowShift = last && shift ? shift[row0 + r] : 0;
                    for (int n0 = 0, run; n0 < cols; n0 += run) {
                        run = column_run(positions, col0, n0, cols);
                        long at = (long)(row0 + r) * ldc + column_offset(positions, col0 + n0, 1);
                        float *target = C + at;
                        const float *extra = last && addend ? addend + at : NULL;
                        const int32_t *sums = acc + r * COLUMNS + n0;
                        for (int n = 0; n < run; n++) {
                            float v = scale[row0 + r] * (float)sums[n];
                            v += rowShift;
                            if (accumulate || !first) v += target[n];
                            if (extra) v += extra[n];
                            target[n] = last && cap > 0 ? fminf(fmaxf(v, 0), cap) : v;
                        }
                    }
                }
            }
        }
    }
}
