#ifndef SEGVIEW_JPEG_SHIM_H
#define SEGVIEW_JPEG_SHIM_H

#include <stddef.h>
#include <stdint.h>

/// A decoded JPEG: 8-bit RGB, row-major, `pixels` malloc'ed; EXIF orientation already applied.
typedef struct {
    uint8_t *pixels;
    uint32_t width;
    uint32_t height;
    /// The EXIF orientation tag that was applied (1 = none, 2-8 = flips and rotations).
    uint32_t orientation;
    /// The size of the whole image, upright, whatever `min_short_side` decoded.
    uint32_t full_width;
    uint32_t full_height;
} seg_jpeg_image;

/// Decodes `path`, or the `size` bytes at `data` when it is not NULL (baseline or progressive;
/// gray, YCbCr or RGB), to RGB and applies the EXIF orientation. Returns 0 on success; otherwise
/// writes the reason to `error` and nothing needs freeing. `max_pixels` (0: no limit) refuses huge
/// images after reading the header, before any pixel is decoded (so a small file declaring a huge image costs nothing). `min_short_side` (0: the
/// full size) decodes straight at 1/2, 1/4 or 1/8 of the size through libjpeg's DCT scaling, the
/// smallest of those whose short side is still at least that many pixels. Corrupt or missing data
/// (a truncated file) is an error unless `allow_corrupt`, when libjpeg's grey fill is kept.
int seg_jpeg_read(const char *path, const void *data, size_t size, uint64_t max_pixels, uint32_t min_short_side,
                  int allow_corrupt,
                  seg_jpeg_image *image, char *error, size_t error_size);

/// Frees what seg_jpeg_read allocated.
void seg_jpeg_free(seg_jpeg_image *image);

#endif
