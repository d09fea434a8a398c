// libjpeg reports errors by calling error_exit, which must not return: we longjmp back here, so the
// setjmp/longjmp dance never crosses Swift frames.
#include "jpeg_shim.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    // The first corrupt-data warning (libjpeg's level -1: premature end of data, bad Huffman code).
    char warning[JMSG_LENGTH_MAX];
} error_manager;

static void on_error(j_common_ptr cinfo) {
    error_manager *errors = (error_manager *)cinfo->err;
    errors->base.format_message(cinfo, errors->message);
    longjmp(errors->jump, 1);
}

// libjpeg goes on past corrupt or missing data, filling grey rows, and only warns: the first such
// warning is kept, and unless the caller allows it the image is refused with it.
static void on_warning(j_common_ptr cinfo, int level) {
    error_manager *errors = (error_manager *)cinfo->err;
    int code = errors->base.msg_code;
    // Missing or damaged image data; other warnings (an unknown JFIF revision, a bogus ICC
    // profile, extraneous bytes between markers) leave every pixel decoded.
    int data_lost = code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_MUST_RESYNC ||
                    code == JWRN_HUFF_BAD_CODE || code == JWRN_ARITH_BAD_CODE;
    if (level < 0 && data_lost && !errors->warning[0]) errors->base.format_message(cinfo, errors->warning);
}

// A progressive JPEG may hold any number of scans, each a pass over the whole image, so a small
// file of repeated scans can take seconds per megapixel. Encoders write about ten; libjpeg-turbo's
// own tools stop at 500.
enum { max_scans = 500 };

static void on_progress(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor || ((j_decompress_ptr)cinfo)->input_scan_number <= max_scans) return;
    error_manager *errors = (error_manager *)cinfo->err;
    snprintf(errors->message, sizeof errors->message, "more than %d progressive scans", max_scans);
    longjmp(errors->jump, 1);
}

static uint32_t read16(const uint8_t *p, int little) { return little ? p[0] | p[1] << 8 : p[0] << 8 | p[1]; }
static uint32_t read32(const uint8_t *p, int little) {
    return little ? (uint32_t)p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24
                  : (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

/// The orientation tag (0x0112) of an EXIF APP1 segment, or 1; every offset is bounds-checked.
static uint32_t exif_orientation(const uint8_t *data, size_t length) {
    if (length < 14 || memcmp(data, "Exif\0\0", 6) != 0) return 1;
    const uint8_t *tiff = data + 6;
    size_t size = length - 6;
    int little;
    if (memcmp(tiff, "II*\0", 4) == 0) little = 1;
    else if (memcmp(tiff, "MM\0*", 4) == 0) little = 0;
    else return 1;
    uint32_t ifd = read32(tiff + 4, little);
    if (ifd > size - 2 || size < 2) return 1;
    uint32_t entries = read16(tiff + ifd, little);
    for (uint32_t i = 0; i < entries; i++) {
        size_t at = (size_t)ifd + 2 + (size_t)i * 12;
        if (at + 12 > size) return 1;
        if (read16(tiff + at, little) == 0x0112) {
            uint32_t value = read16(tiff + at + 8, little);
            return value >= 1 && value <= 8 ? value : 1;
        }
    }
    return 1;
}

/// Applies an EXIF orientation to RGB pixels: returns a new buffer (or NULL when out of memory)
/// and the displayed width and height.
static uint8_t *orient(const uint8_t *src, uint32_t w, uint32_t h, uint32_t orientation, uint32_t *out_w, uint32_t *out_h) {
    int transposed = orientation >= 5;
    *out_w = transposed ? h : w;
    *out_h = transposed ? w : h;
    uint8_t *dst = malloc((size_t)w * h * 3);
    if (!dst) return NULL;
    for (uint32_t y = 0; y < *out_h; y++) {
        for (uint32_t x = 0; x < *out_w; x++) {
            uint32_t sx, sy;  // the stored pixel shown at (x, y)
            switch (orientation) {
            case 2: sx = w - 1 - x; sy = y; break;
            case 3: sx = w - 1 - x; sy = h - 1 - y; break;
            case 4: sx = x; sy = h - 1 - y; break;
            case 5: sx = y; sy = x; break;
            case 6: sx = y; sy = h - 1 - x; break;
            case 7: sx = w - 1 - y; sy = h - 1 - x; break;
            case 8: sx = w - 1 - y; sy = x; break;
            default: sx = x; sy = y; break;
            }
            memcpy(dst + ((size_t)y * *out_w + x) * 3, src + ((size_t)sy * w + sx) * 3, 3);
        }
    }
    return dst;
}

int seg_jpeg_read(const char *path, const void *data, size_t size, uint64_t max_pixels, uint32_t min_short_side,
                  int allow_corrupt, seg_jpeg_image *image, char *error, size_t error_size) {
    memset(image, 0, sizeof *image);
    // From memory (a pipe, read once) or from the file.
    FILE *file = data ? fmemopen((void *)data, size, "rb") : fopen(path, "rb");
    if (!file) {
        snprintf(error, error_size, "cannot open: %s", strerror(errno));
        return 1;
    }
    struct jpeg_decompress_struct cinfo;
    error_manager errors;
    // Volatile: modified between setjmp and a possible longjmp.
    uint8_t *volatile pixels = NULL;
    cinfo.err = jpeg_std_error(&errors.base);
    errors.warning[0] = 0;
    errors.base.error_exit = on_error;
    errors.base.emit_message = on_warning;
    if (setjmp(errors.jump)) {
        snprintf(error, error_size, "not a readable JPEG: %s", errors.message);
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        fclose(file);
        return 1;
    }
    jpeg_create_decompress(&cinfo);
    struct jpeg_progress_mgr progress = {.progress_monitor = on_progress};
    cinfo.progress = &progress;
    jpeg_stdio_src(&cinfo, file);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&cinfo, TRUE);
    uint64_t count = (uint64_t)cinfo.image_width * cinfo.image_height;
    if (max_pixels && count > max_pixels) {
        snprintf(error, error_size, "image is %ux%u, more than the limit of %llu pixels", cinfo.image_width,
                 cinfo.image_height, (unsigned long long)max_pixels);
        jpeg_destroy_decompress(&cinfo);
        fclose(file);
        return 1;
    }
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        snprintf(error, error_size, "CMYK JPEGs are not supported (convert to RGB)");
        jpeg_destroy_decompress(&cinfo);
        fclose(file);
        return 1;
    }
    uint32_t orientation = 1;
    for (jpeg_saved_marker_ptr marker = cinfo.marker_list; marker; marker = marker->next) {
        if (marker->marker == JPEG_APP0 + 1) orientation = exif_orientation(marker->data, marker->data_length);
    }
    cinfo.out_color_space = JCS_RGB;
    uint32_t short_side = cinfo.image_width < cinfo.image_height ? cinfo.image_width : cinfo.image_height;
    cinfo.scale_num = 1;
    cinfo.scale_denom = 1;
    // libjpeg rounds scaled sizes up, so a short side of exactly min_short_side * d is enough.
    for (unsigned d = 8; min_short_side > 0 && d > 1; d /= 2) {
        if (short_side >= (uint64_t)min_short_side * d) {
            cinfo.scale_denom = d;
            break;
        }
    }
    int transposed = orientation >= 5;
    image->full_width = transposed ? cinfo.image_height : cinfo.image_width;
    image->full_height = transposed ? cinfo.image_width : cinfo.image_height;
    jpeg_start_decompress(&cinfo);
    uint32_t width = cinfo.output_width, height = cinfo.output_height;
    pixels = malloc((size_t)width * height * 3);
    if (!pixels) {
        snprintf(error, error_size, "out of memory for %ux%u pixels", width, height);
        jpeg_destroy_decompress(&cinfo);
        fclose(file);
        return 1;
    }
    while (cinfo.output_scanline < height) {
        JSAMPROW row = pixels + (size_t)cinfo.output_scanline * width * 3;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    fclose(file);
    if (errors.warning[0] && !allow_corrupt) {
        snprintf(error, error_size, "truncated or corrupt JPEG (%s); --allow-truncated decodes what is there",
                 errors.warning);
        free(pixels);
        return 1;
    }

    image->orientation = orientation;
    if (orientation == 1) {
        image->pixels = pixels;
        image->width = width;
        image->height = height;
        return 0;
    }
    uint8_t *rotated = orient(pixels, width, height, orientation, &image->width, &image->height);
    free(pixels);
    if (!rotated) {
        snprintf(error, error_size, "out of memory for %ux%u pixels", width, height);
        return 1;
    }
    image->pixels = rotated;
    return 0;
}

void seg_jpeg_free(seg_jpeg_image *image) {
    free(image->pixels);
    image->pixels = NULL;
}
