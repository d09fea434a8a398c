#include "png_shim.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// libpng calls this on a fatal error; we keep its message and jump back to the setjmp in the caller.
typedef struct {
    char message[256];
} error_state;

static void on_error(png_structp png, png_const_charp message) {
    error_state *state = (error_state *)png_get_error_ptr(png);
    snprintf(state->message, sizeof state->message, "%s", message);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;  // warnings (e.g. a bad iCCP chunk) do not stop decoding
}

// Reads through stdio like libpng's default, but a short read names the truncation and where it
// happened instead of libpng's bare "Read Error".
typedef struct {
    FILE *file;
    size_t offset;
} reader_state;

static void read_data(png_structp png, png_bytep data, png_size_t length) {
    reader_state *reader = (reader_state *)png_get_io_ptr(png);
    size_t count = fread(data, 1, length, reader->file);
    reader->offset += count;
    if (count != length) {
        char message[160];
        if (ferror(reader->file))
            snprintf(message, sizeof message, "read error after %zu bytes: %s", reader->offset, strerror(errno));
        else
            snprintf(message, sizeof message, "truncated: the file ends after %zu bytes, inside the image data",
                     reader->offset);
        png_error(png, message);
    }
}

static void set_error(char *error, size_t error_size, const char *message) {
    if (error && error_size) snprintf(error, error_size, "%s", message);
}

int seg_png_read(const char *path, const void *data, size_t size, seg_png_mode mode, uint64_t max_pixels,
                 seg_png_image *image,
                 char *error, size_t error_size) {
    memset(image, 0, sizeof *image);
    // From memory (a pipe, read once) or from the file.
    FILE *file = data ? fmemopen((void *)data, size, "rb") : fopen(path, "rb");
    if (!file) {
        set_error(error, error_size, strerror(errno));
        return -1;
    }
    uint8_t signature[8];
    if (fread(signature, 1, 8, file) != 8 || png_sig_cmp(signature, 0, 8) != 0) {
        fclose(file);
        set_error(error, error_size, "not a PNG file (bad signature)");
        return -1;
    }

    error_state state = {{0}};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &state, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(file);
        set_error(error, error_size, "out of memory");
        return -1;
    }
    // `volatile`: these change after setjmp and are read after a longjmp.
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        fclose(file);
        set_error(error, error_size, state.message[0] ? state.message : "decoding failed");
        return -1;
    }
    reader_state reader = {file, 8};
    png_set_read_fn(png, &reader, read_data);
    png_set_sig_bytes(png, 8);
    png_read_info(png, info);

    png_uint_32 width = png_get_image_width(png, info);
    png_uint_32 height = png_get_image_height(png, info);
    int color_type = png_get_color_type(png, info);
    int bit_depth = png_get_bit_depth(png, info);
    if (max_pixels && (uint64_t)width * height > max_pixels) {
        char message[160];
        snprintf(message, sizeof message, "image is %ux%u, more than the limit of %llu pixels", width,
                 height, (unsigned long long)max_pixels);
        png_error(png, message);
    }

    if (mode == SEG_PNG_RGB) {
        if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
        if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
        if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA)
            png_set_gray_to_rgb(png);
        png_set_strip_alpha(png);
        if (bit_depth == 16) png_set_scale_16(png);  // rounds, where strip_16 would truncate
    } else {
        if (color_type != PNG_COLOR_TYPE_PALETTE && color_type != PNG_COLOR_TYPE_GRAY &&
            color_type != PNG_COLOR_TYPE_GRAY_ALPHA)
            png_error(png, "a label map must be a gray or palette PNG, not RGB");
        if (bit_depth < 8) png_set_packing(png);  // palette indices / gray levels as values, not scaled
        png_set_strip_alpha(png);
        // 16-bit samples are kept whole here and narrowed below: label 3 is 0x0003, whose high byte
        // (what png_set_strip_16 keeps) is 0.
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    size_t row_bytes = png_get_rowbytes(png, info);
    int channels = png_get_channels(png, info);
    pixels = malloc(row_bytes * height);
    rows = malloc(sizeof(png_bytep) * height);
    if (!pixels || !rows) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < height; y++) rows[y] = pixels + y * row_bytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    if (mode == SEG_PNG_INDEX && bit_depth == 16) {
        // Big-endian samples to one byte each, in place (each byte lands at or before its source).
        for (png_uint_32 y = 0; y < height; y++) {
            for (png_uint_32 x = 0; x < width; x++) {
                unsigned value = (unsigned)rows[y][2 * x] << 8 | rows[y][2 * x + 1];
                if (value > 255) {
                    char message[160];
                    snprintf(message, sizeof message, "label value %u at (%u, %u) of a 16-bit label map is past "
                             "255, the largest label segview reads", value, x, y);
                    png_error(png, message);
                }
                pixels[(size_t)y * width + x] = (uint8_t)value;
            }
        }
    }

    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(file);
    image->pixels = pixels;
    image->width = width;
    image->height = height;
    image->channels = (uint32_t)channels;
    return 0;
}

void seg_png_free(seg_png_image *image) {
    free(image->pixels);
    image->pixels = NULL;
}

int seg_png_write(int descriptor, const uint8_t *pixels, uint32_t width, uint32_t height,
                  uint32_t channels, int fast, char *error, size_t error_size) {
    int color_type;
    switch (channels) {
        case 1: color_type = PNG_COLOR_TYPE_GRAY; break;
        case 3: color_type = PNG_COLOR_TYPE_RGB; break;
        case 4: color_type = PNG_COLOR_TYPE_RGBA; break;
        default: set_error(error, error_size, "unsupported channel count"); return -1;
    }
    // A stream of its own on a copy of the descriptor: fclose leaves the caller's open.
    int copy = dup(descriptor);
    FILE *file = copy >= 0 ? fdopen(copy, "wb") : NULL;
    if (!file) {
        set_error(error, error_size, strerror(errno));
        if (copy >= 0) close(copy);
        return -1;
    }
    error_state state = {{0}};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &state, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, &info);
        fclose(file);
        set_error(error, error_size, "out of memory");
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(file);
        set_error(error, error_size, state.message[0] ? state.message : "encoding failed");
        return -1;
    }
    png_init_io(png, file);
    png_set_IHDR(png, info, width, height, 8, color_type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (fast) {  // for a terminal, where each frame's images are encoded anew
        png_set_compression_level(png, 3);
        png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_UP);
    }
    png_write_info(png, info);
    for (uint32_t y = 0; y < height; y++)
        png_write_row(png, (png_const_bytep)(pixels + (size_t)y * width * channels));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    // fclose flushes: a full disk shows up here, not in fwrite.
    if (fclose(file) != 0) {
        set_error(error, error_size, strerror(errno));
        return -1;
    }
    return 0;
}
