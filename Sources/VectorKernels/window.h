// Where a sliding window's taps fall, shared by the per-plane kernels (depthwise.c, pooling.c).
#ifndef SEGVIEW_WINDOW_H
#define SEGVIEW_WINDOW_H

static inline int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/// The outputs o in [0, count) whose tap at offset `offset` (k * dilation - padding) reads inside
/// [0, size): 0 <= o * stride + offset < size. Empty when *low >= *high.
static inline void valid_outputs(int offset, int stride, int size, int count, int *low, int *high) {
    int first = -floor_div(offset, stride);  // ceil(-offset / stride)
    int last = floor_div(size - 1 - offset, stride) + 1;
    *low = first > 0 ? first : 0;
    *high = last < count ? last : count;
}

/// The outputs o in [0, count) whose every tap k in [0, taps), at offset k * dilation - padding,
/// reads inside [0, size): the interior a kernel can compute without bounds checks.
static inline void inner_outputs(int taps, int dilation, int padding, int stride, int size, int count, int *low,
                                 int *high) {
    *low = 0;
    *high = count;
    for (int k = 0; k < taps; k++) {
        int tap_low, tap_high;
        valid_outputs(k * dilation - padding, stride, size, count, &tap_low, &tap_high);
        *low = tap_low > *low ? tap_low : *low;
        *high = tap_high < *high ? tap_high : *high;
    }
}

#endif
