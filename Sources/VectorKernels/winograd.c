// Winograd F(4x4, 3x3) transforms in plain C over arrays of LANES tiles (or output channels),
// written so the compiler vectorises every inner loop; target_clones builds an AVX-512, an AVX2
// and a baseline version and picks one at load time. (Swift's SIMD types compile to SSE for the
// baseline x86-64 target; these transforms were then about half of Winograd's time.)
#include "vector_kernels.h"

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

VECTORISED
void seg_winograd_filters(const float *source, int cin, float *target, long k_stride) {
    float left[18][PANEL];  // G g: 6 rows x 3 columns
    for (int i = 0; i < cin; i++) {
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

VECTORISED
void seg_winograd_input(const float *plane, int height, int width, int dilation, const int *origin_y,
                        const int *origin_x, int count, float *v, long k_stride) {
    const int d = dilation;
    float patch[36][LANES], temp[36][LANES];
    for (int first = 0; first < count; first += LANES) {
        int lanes = count - first < LANES ? count - first : LANES;
        for (int l = 0; l < LANES; l++) {
            if (l >= lanes) {  // past the last tile: zeros, never stored
                for (int e = 0; e < 36; e++) patch[e][l] = 0;
                continue;
            }
            int y0 = origin_y[first + l], x0 = origin_x[first + l];
            int inside = x0 >= 0 && x0 + 5 * d < width;
            for (int r = 0; r < 6; r++) {
                int y = y0 + d * r;
                if (y < 0 || y >= height) {
                    for (int s = 0; s < 6; s++) patch[r * 6 + s][l] = 0;
                    continue;
                }
                const float *row = plane + (long)y * width;
                for (int s = 0; s < 6; s++) {
                    int x = x0 + d * s;
                    patch[r * 6 + s][l] = inside || (x >= 0 && x < width) ? row[x] : 0;
                }
            }
        }
        // temp = B^T patch (down the columns), then V = temp B (along the rows).
        for (int s = 0; s < 6; s++) input_rows(patch[s], 6 * LANES, temp[s], 6 * LANES);
        for (int r = 0; r < 6; r++) {
            float row[6][LANES];
            input_rows(temp[r * 6], LANES, row[0], LANES);
            for (int s = 0; s < 6; s++) memcpy(v + (r * 6 + s) * k_stride + first, row[s], sizeof(float) * lanes);
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

VECTORISED
void seg_winograd_output(const float *m, long k_stride, const int *origin_y, const int *origin_x, int count,
                         int dilation, float *plane, int height, int width, float bias, float cap) {
    const int d = dilation;
    float points[36][LANES], temp[24][LANES], block[16][LANES];
    for (int first = 0; first < count; first += LANES) {
        int lanes = count - first < LANES ? count - first : LANES;
        for (int k = 0; k < 36; k++) {
            memcpy(points[k], m + k * k_stride + first, sizeof(float) * lanes);
            if (lanes < LANES) memset(points[k] + lanes, 0, sizeof(float) * (LANES - lanes));
        }
        // temp = A^T M (down the columns: row u of temp at temp[u * 6 + s]), then Y = temp A.
        for (int s = 0; s < 6; s++) {
            float column[4][LANES];
            output_rows(points[s], 6 * LANES, column[0]);
            for (int u = 0; u < 4; u++) memcpy(temp[u * 6 + s], column[u], sizeof column[u]);
        }
        for (int u = 0; u < 4; u++) output_rows(temp[u * 6], LANES, block[u * 4]);
        for (int e = 0; e < 16; e++) {
            for (int l = 0; l < LANES; l++) {
                float value = block[e][l] + bias;
                block[e][l] = cap > 0 ? fminf(fmaxf(value, 0), cap) : value;
            }
        }
        for (int l = 0; l < lanes; l++) {
            int y0 = origin_y[first + l], x0 = origin_x[first + l];
            for (int u = 0; u < 4 && y0 + d * u < height; u++) {
                float *row = plane + (long)(y0 + d * u) * width;
                for (int x = 0; x < 4 && x0 + d * x < width; x++) row[x0 + d * x] = block[u * 4 + x][l];
            }
        }
    }
}
