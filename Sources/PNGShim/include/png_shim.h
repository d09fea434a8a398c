#ifndef SEGVIEW_PNG_SHIM_H
#define SEGVIEW_PNG_SHIM_H

#include <stddef.h>
#include <stdint.h>

/// How a PNG is decoded.
typedef enum {
    /// Always 8-bit RGB: palettes expanded, gray replicated, alpha dropped, 16-bit scaled to 8.
    SEG_PNG_RGB = 0,
    /// One 8-bit value per pixel: the palette index or the gray level (label maps).
    SEG_PNG_INDEX = 1,
} seg_png_mode;

/// A decoded image; `pixels` is malloc'ed, row-major, `channels` bytes per pixel.
typedef struct {
    uint8_t *pixels;
    uint32_t width;
    uint32_t height;
    uint32_t channels;
} seg_png_image;

/// Decodes `path`, or the `size` bytes at `data` when it is not NULL (a pipe read once). Returns 0 on
/// success; otherwise a message naming the reason is written to `error` and nothing needs freeing.
/// `max_pixels` (0: no limit) refuses huge images before any pixel is decoded.
int seg_png_read(const char *path, const void *data, size_t size, seg_png_mode mode, uint64_t max_pixels,
                 seg_png_image *image,
                 char *error, size_t error_size);

/// Frees what seg_png_read allocated.
void seg_png_free(seg_png_image *image);

/// Encodes 8-bit pixels (1 = gray, 3 = RGB, 4 = RGBA channels) to the open file `descriptor` (which
/// stays open); `fast` trades size for speed (zlib level 3, the Up filter on every row). Returns 0
/// on success, otherwise writes the reason to `error`; the caller removes the partial file.
int seg_png_write(int descriptor, const uint8_t *pixels, uint32_t width, uint32_t height,
                  uint32_t channels, int fast, char *error, size_t error_size);

#endif
