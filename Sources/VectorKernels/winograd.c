// Winograd F(4x4, 3x3) transforms in plain C over arrays of LANES tiles (or output channels),
// written so the compiler vectorises every inner loop; target_clones builds an AVX-512, an AVX2
// and a baseline version and picks one at load time. (Swift's SIMD types compile to SSE for the
// baseline x86-64 target; these transforms were then about half of Winograd's time.)
#include "vector_kernels.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

enum { LANES = 16, PANEL = SEG_WINOGRAD_PANEL_ROWS };

#define VECTORISED __attribute__((target_clones("avx512f", "avx2", "default")))

/// G applied to three taps of LANES (or PANEL) values each: the six rows of G g.
#define FILTER_ROWS(n, g0, g1, g2, out, stride)                                     \
    for (int l = 0; l < n; l++) {                                                   \
        float a = g0[l], b = g1[l], c = g2[l];                                      \
        out[0 * (stride) + l] = a / 4;                                              \
        out[1 * (stride) + l] = -(a + b + c) / 6;                                   \
        out[2 * (stride) + l] = (b - a - c) / 6;                                    \
        out[3 * (stride) + l] = a / 24 + b / 12 + c / 6;                            \
        out[4 * (stride) + l] = a / 24 - b / 12 + c / 6;                            \
        out[5 * (stride) + l] = c;                                                  \
    }

/// G applied to three vectors of taps: the six rows of G g (as FILTER_ROWS, the divisions as
/// multiplications by the reciprocals).
__attribute__((target("avx512f")))
static inline void filter_rows_avx512(__m512 a, __m512 b, __m512 c, __m512 out[6]) {
    const __m512 sixth = _mm512_set1_ps(1.0f / 6), twelfth = _mm512_set1_ps(1.0f / 12), outer = _mm512_set1_ps(1.0f / 24);
    __m512 ends = _mm512_add_ps(a, c), middle = _mm512_mul_ps(b, twelfth);
    __m512 sides = _mm512_fmadd_ps(a, outer, _mm512_mul_ps(c, sixth));
    out[0] = _mm512_mul_ps(a, _mm512_set1_ps(0.25f));
    out[1] = _mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_add_ps(ends, b)), sixth);
    out[2] = _mm512_mul_ps(_mm512_sub_ps(b, ends), sixth);
    out[3] = _mm512_add_ps(sides, middle);
    out[4] = _mm512_sub_ps(sides, middle);
    out[5] = c;
}

/// Two input channels at a time, in whole vectors of 16 (2 x PANEL): every point's store is a
/// whole cache line. 1.3-2.6x faster than the plain loop below (a C harness; the larger gains
/// where U stays in cache), whose divisions the compiler may not turn into multiplications.
__attribute__((target("avx512f")))
static int filter_pairs_avx512(const float *source, int cin, int count, float *target, long k_stride) {
    int i = 0;
    for (; i + 2 <= count; i += 2) {
        __m512 left[6][3];  // G g: 6 rows x 3 columns
        for (int c = 0; c < 3; c++) {  // column c of g: taps (0, c), (1, c), (2, c)
            __m512 g0 = _mm512_loadu_ps(source + ((long)c * cin + i) * PANEL);
            __m512 g1 = _mm512_loadu_ps(source + ((long)(3 + c) * cin + i) * PANEL);
            __m512 g2 = _mm512_loadu_ps(source + ((long)(6 + c) * cin + i) * PANEL);
            __m512 column[6];
            filter_rows_avx512(g0, g1, g2, column);
            for (int r = 0; r < 6; r++) left[r][c] = column[r];
        }
        for (int r = 0; r < 6; r++) {
            __m512 row[6];
            filter_rows_avx512(left[r][0], left[r][1], left[r][2], row);
            for (int s = 0; s < 6; s++) _mm512_storeu_ps(target + (r * 6 + s) * k_stride + (long)i * PANEL, row[s]);
        }
    }
    return i;
}

VECTORISED
void seg_winograd_filters(const float *source, int cin, int count, float *target, long k_stride) {
    int i = PANEL == 8 && __builtin_cpu_supports("avx512f") ? filter_pairs_avx512(source, cin, count, target, k_stride) : 0;
    float left[18][PANEL];  // G g: 6 rows x 3 columns
    for (; i < count; i++) {
        for (int c = 0; c < 3; c++) {  // column c of g: taps (0, c), (1, c), (2, c)
            const float *g0 = source + ((long)c * cin + i) * PANEL, *g1 = source + ((long)(3 + c) * cin + i) * PANEL;
            const float *g2 = source + ((long)(6 + c) * cin + i) * PANEL;
            float column[6][PANEL];
            FILTER_ROWS(PANEL, g0, g1, g2, column[0], PANEL)
            for (int r = 0; r < 6; r++) memcpy(left[r * 3 + c], column[r], sizeof column[r]);
        }
        for (int r = 0; r < 6; r++) {
            float row[6][PANEL];
            FILTER_ROWS(PANEL, left[r * 3], left[r * 3 + 1], left[r * 3 + 2], row[0], PANEL)
            for (int s = 0; s < 6; s++) memcpy(target + (r * 6 + s) * k_stride + (long)i * PANEL, row[s], sizeof row[s]);
        }
    }
}

/// B^T applied to six rows of LANES values: d[j] is at in + j * in_stride, result j at out + j * out_stride.
static inline void input_rows(const float *in, int in_stride, float *out, int out_stride) {
    const float *d0 = in, *d1 = in + in_stride, *d2 = in + 2 * in_stride;
    const float *d3 = in + 3 * in_stride, *d4 = in + 4 * in_stride, *d5 = in + 5 * in_stride;
    for (int l = 0; l < LANES; l++) {
        out[l] = 4 * d0[l] - 5 * d2[l] + d4[l];
        out[out_stride + l] = d3[l] + d4[l] - 4 * (d1[l] + d2[l]);
        out[2 * out_stride + l] = 4 * (d1[l] - d2[l]) - d3[l] + d4[l];
        out[3 * out_stride + l] = 2 * (d3[l] - d1[l]) - d2[l] + d4[l];
        out[4 * out_stride + l] = 2 * (d1[l] - d3[l]) - d2[l] + d4[l];
        out[5 * out_stride + l] = 4 * d1[l] - 5 * d3[l] + d5[l];
    }
}

/// patch[r * 6 + s][l] = framed[offset[l] + d * (r * frame_width + s)]: 16 lanes in one gather
/// where the CPU has AVX-512 (the compiler's own gathers take 64-bit addresses, two per element).
__attribute__((target("avx512f")))
static void gather_patches_avx512(const float *framed, const int *offset, int d, int frame_width, float patch[36][LANES]) {
    __m512i base = _mm512_loadu_si512(offset);
    for (int r = 0; r < 6; r++) {
        for (int s = 0; s < 6; s++) {
            __m512i at = _mm512_add_epi32(base, _mm512_set1_epi32(d * (r * frame_width + s)));
            _mm512_storeu_ps(patch[r * 6 + s], _mm512_i32gather_ps(at, framed, 4));
        }
    }
}

/// The first two steps of a transpose, on `count` vectors (a multiple of 4) as groups of four:
/// within each 128-bit lane, out[i + j] holds element j of in[i..i+3] (the 4x4 blocks transposed).
__attribute__((target("avx512f")))
static inline void transpose_lane_blocks(const __m512 *in, __m512 *out, int count) {
    for (int i = 0; i < count; i += 4) {
        __m512 low01 = _mm512_unpacklo_ps(in[i], in[i + 1]), high01 = _mm512_unpackhi_ps(in[i], in[i + 1]);
        __m512 low23 = _mm512_unpacklo_ps(in[i + 2], in[i + 3]), high23 = _mm512_unpackhi_ps(in[i + 2], in[i + 3]);
        out[i] = _mm512_shuffle_ps(low01, low23, 0x44);
        out[i + 1] = _mm512_shuffle_ps(low01, low23, 0xEE);
        out[i + 2] = _mm512_shuffle_ps(high01, high23, 0x44);
        out[i + 3] = _mm512_shuffle_ps(high01, high23, 0xEE);
    }
}

/// The same for undilated patches, whose rows are six consecutive floats: each lane's row is one
/// load, and the 16 rows of 6 are transposed in registers (as two 8x8 transposes, lanes 0-7 and
/// 8-15 in the halves of each vector). The gathers were 45 % of the input transform on 32x32 maps.
__attribute__((target("avx512f,avx512vl")))
static void load_patches_avx512(const float *framed, const int *offset, int frame_width, float patch[36][LANES]) {
    // Output vector j takes 128-bit chunks of two vectors: elements j (low) or j + 4 (high).
    const __m512i low = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
    const __m512i high = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
    for (int r = 0; r < 6; r++) {
        __m512 rows[8], quads[8];  // rows[i]: lane i's patch row, then lane i + 8's
        for (int i = 0; i < 8; i++) {
            __m256 first = _mm256_maskz_loadu_ps(0x3F, framed + offset[i] + r * frame_width);
            __m256 second = _mm256_maskz_loadu_ps(0x3F, framed + offset[i + 8] + r * frame_width);
            rows[i] = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(first)),
                                                          _mm256_castps_pd(second), 1));
        }
        transpose_lane_blocks(rows, quads, 8);  // quads[i + j]: element j (and j + 4) of four lanes
        for (int j = 0; j < 4; j++)
            _mm512_storeu_ps(patch[r * 6 + j], _mm512_permutex2var_ps(quads[j], low, quads[j + 4]));
        for (int j = 0; j < 2; j++)
            _mm512_storeu_ps(patch[r * 6 + 4 + j], _mm512_permutex2var_ps(quads[j], high, quads[j + 4]));
    }
}

static void gather_patches(const float *framed, const int *offset, int d, int frame_width, float patch[36][LANES]) {
    if (d == 1 && __builtin_cpu_supports("avx512vl")) {
        load_patches_avx512(framed, offset, frame_width, patch);
        return;
    }
    if (__builtin_cpu_supports("avx512f")) {
        gather_patches_avx512(framed, offset, d, frame_width, patch);
        return;
    }
    for (int r = 0; r < 6; r++) {
        for (int s = 0; s < 6; s++) {
            int element = d * (r * frame_width + s);
            for (int l = 0; l < LANES; l++) patch[r * 6 + s][l] = framed[offset[l] + element];
        }
    }
}

VECTORISED
void seg_winograd_input(const float *plane, int height, int width, int dilation, const int *origin_y,
                        const int *origin_x, int count, float *v, long k_stride, float *framed) {
    const int d = dilation;
    // The rows and columns the patches read, copied into a zero frame: the gather below then has
    // no bounds to check (tested per element, it cost about 50 ns per tile and channel).
    int top = origin_y[0], bottom = origin_y[0], left = origin_x[0], right = origin_x[0];
    for (int t = 1; t < count; t++) {
        top = origin_y[t] < top ? origin_y[t] : top;
        bottom = origin_y[t] > bottom ? origin_y[t] : bottom;
        left = origin_x[t] < left ? origin_x[t] : left;
        right = origin_x[t] > right ? origin_x[t] : right;
    }
    bottom += 5 * d;
    right += 5 * d;
    const int frame_width = right - left + 1;
    for (int y = top; y <= bottom; y++) {
        float *row = framed + (long)(y - top) * frame_width;
        if (y < 0 || y >= height) {
            memset(row, 0, sizeof(float) * frame_width);
            continue;
        }
        int first = left < 0 ? 0 : left, last = right < width ? right : width - 1;  // inside the plane
        if (first > last) {
            memset(row, 0, sizeof(float) * frame_width);
            continue;
        }
        memset(row, 0, sizeof(float) * (first - left));
        memcpy(row + first - left, plane + (long)y * width + first, sizeof(float) * (last - first + 1));
        memset(row + last + 1 - left, 0, sizeof(float) * (right - last));
    }
    float patch[36][LANES], temp[36][LANES];
    int offset[LANES];
    for (int first = 0; first < count; first += LANES) {
        int lanes = count - first < LANES ? count - first : LANES;
        for (int l = 0; l < LANES; l++)  // lanes past the last tile read the first tile's patch (V's row padding)
            offset[l] = l < lanes ? (origin_y[first + l] - top) * frame_width + origin_x[first + l] - left : 0;
        gather_patches(framed, offset, d, frame_width, patch);
        // temp = B^T patch (down the columns), then V = temp B (along the rows).
        for (int s = 0; s < 6; s++) input_rows(patch[s], 6 * LANES, temp[s], 6 * LANES);
        for (int r = 0; r < 6; r++) {
            float row[6][LANES];
            input_rows(temp[r * 6], LANES, row[0], LANES);
            for (int s = 0; s < 6; s++) memcpy(v + (r * 6 + s) * k_stride + first, row[s], sizeof row[s]);
        }
    }
}

/// A^T applied to six rows of LANES values: m[j] at in + j * in_stride, the four results at out + j * LANES.
static inline void output_rows(const float *in, long in_stride, float *out) {
    const float *m0 = in, *m1 = in + in_stride, *m2 = in + 2 * in_stride;
    const float *m3 = in + 3 * in_stride, *m4 = in + 4 * in_stride, *m5 = in + 5 * in_stride;
    for (int l = 0; l < LANES; l++) {
        out[l] = m0[l] + m1[l] + m2[l] + m3[l] + m4[l];
        out[LANES + l] = m1[l] - m2[l] + 2 * (m3[l] - m4[l]);
        out[2 * LANES + l] = m1[l] + m2[l] + 4 * (m3[l] + m4[l]);
        out[3 * LANES + l] = m1[l] - m2[l] + 8 * (m3[l] - m4[l]) + m5[l];
    }
}

/// Stores the 4x4 blocks of 16 undilated tiles (block[u * 4 + x][l]: output (u, x) of tile l) whose
/// outputs all lie inside the plane, returning which tiles it stored (a bit per tile): the blocks
/// are transposed in registers so that each tile's row is one 4-float store (one float at a time,
/// the stores were a third of the output transform).
__attribute__((target("avx512f")))
static unsigned store_inner_tiles_avx512(float block[16][LANES], const int *origin_y, const int *origin_x, int lanes,
                                         float *plane, int height, int width) {
    __m512 r[16], b[16];
    for (int e = 0; e < 16; e++) r[e] = _mm512_loadu_ps(block[e]);
    transpose_lane_blocks(r, b, 16);  // b[i + j]: rows i..i+3 at columns j, j + 4, j + 8, j + 12
    __m512 tile[16];  // tile[l]: the 16 outputs of tile l, row u in 128-bit lane u
    for (int j = 0; j < 4; j++) {
        __m512 low0 = _mm512_shuffle_f32x4(b[j], b[4 + j], 0x88), high0 = _mm512_shuffle_f32x4(b[j], b[4 + j], 0xDD);
        __m512 low1 = _mm512_shuffle_f32x4(b[8 + j], b[12 + j], 0x88), high1 = _mm512_shuffle_f32x4(b[8 + j], b[12 + j], 0xDD);
        tile[j] = _mm512_shuffle_f32x4(low0, low1, 0x88);
        tile[8 + j] = _mm512_shuffle_f32x4(low0, low1, 0xDD);
        tile[4 + j] = _mm512_shuffle_f32x4(high0, high1, 0x88);
        tile[12 + j] = _mm512_shuffle_f32x4(high0, high1, 0xDD);
    }
    unsigned stored = 0;
    for (int l = 0; l < lanes; l++) {
        int y0 = origin_y[l], x0 = origin_x[l];
        if (y0 + 3 >= height || x0 + 3 >= width) continue;
        float *row = plane + (long)y0 * width + x0;
        _mm_storeu_ps(row, _mm512_castps512_ps128(tile[l]));
        _mm_storeu_ps(row + width, _mm512_extractf32x4_ps(tile[l], 1));
        _mm_storeu_ps(row + 2 * width, _mm512_extractf32x4_ps(tile[l], 2));
        _mm_storeu_ps(row + 3 * (long)width, _mm512_extractf32x4_ps(tile[l], 3));
        stored |= 1u << l;
    }
    return stored;
}

VECTORISED
void seg_winograd_output(const float *m, long k_stride, const int *origin_y, const int *origin_x, int count,
                         int dilation, float *plane, int height, int width, float bias, float cap) {
    const int d = dilation;
    const int transposes = d == 1 && __builtin_cpu_supports("avx512f");
    float temp[24][LANES], block[16][LANES];
    for (int first = 0; first < count; first += LANES) {
        int lanes = count - first < LANES ? count - first : LANES;
        // temp = A^T M (down the columns: row u of temp at temp[u * 6 + s]), then Y = temp A.
        for (int s = 0; s < 6; s++) {
            float column[4][LANES];
            output_rows(m + s * k_stride + first, 6 * k_stride, column[0]);
            for (int u = 0; u < 4; u++) memcpy(temp[u * 6 + s], column[u], sizeof column[u]);
        }
        for (int u = 0; u < 4; u++) output_rows(temp[u * 6], LANES, block[u * 4]);
        for (int e = 0; e < 16; e++) {
            for (int l = 0; l < LANES; l++) {
                float value = block[e][l] + bias;
                block[e][l] = cap > 0 ? fminf(fmaxf(value, 0), cap) : value;
            }
        }
        unsigned stored = transposes ? store_inner_tiles_avx512(block, origin_y + first, origin_x + first, lanes, plane,
                                                                height, width)
                                     : 0;
        for (int l = 0; l < lanes; l++) {  // the rest one output at a time, inside the plane
            if (stored >> l & 1) continue;
            int y0 = origin_y[first + l], x0 = origin_x[first + l];
            for (int u = 0; u < 4 && y0 + d * u < height; u++) {
                float *row = plane + (long)(y0 + d * u) * width;
                for (int x = 0; x < 4 && x0 + d * x < width; x++) row[x0 + d * x] = block[u * 4 + x][l];
            }
        }
    }
}
