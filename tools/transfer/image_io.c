/* PNG (libpng) and JPEG (libjpeg) reading and writing; see image_io.h. */
#define _POSIX_C_SOURCE 200809L /* mkstemp, fsync, fchmod, strdup */

#include "image_io.h"

#include <errno.h>
#include <jpeglib.h>
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__GNUC__) || defined(__clang__)
#define IO_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define IO_PRINTF(f, a)
#endif

static bool fail(char *error, const char *fmt, ...) IO_PRINTF(2, 3);
static bool fail(char *error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error, IMAGE_ERROR_SIZE, fmt, ap);
    va_end(ap);
    return false;
}

bool image_alloc(image *img, uint32_t width, uint32_t height, uint32_t channels, uint32_t depth)
{
    memset(img, 0, sizeof *img);
    if (width == 0 || height == 0 || width > IMAGE_MAX_SIDE || height > IMAGE_MAX_SIDE ||
        (uint64_t)width * height > IMAGE_MAX_PIXELS || channels < 1 || channels > 4 || (depth != 8 && depth != 16))
        return false;
    img->samples = calloc((size_t)width * height * channels, sizeof *img->samples);
    if (!img->samples)
        return false;
    img->width = width;
    img->height = height;
    img->channels = channels;
    img->depth = depth;
    return true;
}

void image_free(image *img)
{
    free(img->samples);
    memset(img, 0, sizeof *img);
}

/* ---------------------------------------------------------------------------
 * PNG
 * ------------------------------------------------------------------------ */

typedef struct png_state {
    const char *path;
    const char *what;  /* what failed, for the message */
    char *error;
    jmp_buf jump;
} png_state;

static void png_on_error(png_structp png, png_const_charp message)
{
    png_state *state = png_get_error_ptr(png);
    fail(state->error, "%s: %s (%s)", state->path, state->what, message);
    longjmp(state->jump, 1);
}

static void png_on_warning(png_structp png, png_const_charp message)
{
    (void)png;
    (void)message;  /* ancillary chunk trouble: the image itself is fine */
}

/* What a successful read leaves for the caller to free on failure. */
typedef struct png_read_buffers {
    png_bytep *rows;
    uint8_t *data;
} png_read_buffers;

static bool read_png(FILE *file, const char *path, image *img, char *error)
{
    png_state state = { .path = path, .what = "corrupt or truncated PNG", .error = error };
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &state, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    /* volatile: changed after setjmp, read after a longjmp */
    png_read_buffers *volatile buffers = calloc(1, sizeof *buffers);
    if (!png || !info || !buffers) {
        png_destroy_read_struct(&png, &info, NULL);
        free(buffers);
        return fail(error, "%s: out of memory", path);
    }
    if (setjmp(state.jump)) {
        png_destroy_read_struct(&png, &info, NULL);
        free(buffers->rows);
        free(buffers->data);
        free(buffers);
        image_free(img);
        return false;
    }
    png_init_io(png, file);
    png_set_user_limits(png, IMAGE_MAX_SIDE, IMAGE_MAX_SIDE);
    png_read_info(png, info);
    const png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    const int color_type = png_get_color_type(png, info);
    if ((uint64_t)width * height > IMAGE_MAX_PIXELS) {
        char too_large[96];  /* png_error hands it to png_on_error at once */
        snprintf(too_large, sizeof too_large, "%ux%u is more than %llu pixels", (unsigned)width, (unsigned)height,
                 (unsigned long long)IMAGE_MAX_PIXELS);
        state.what = "image too large";
        png_error(png, too_large);
    }
    if (color_type == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_tRNS_to_alpha(png);
    if (png_get_bit_depth(png, info) == 16) {
        const uint16_t probe = 1;
        uint8_t first_byte;
        memcpy(&first_byte, &probe, 1);
        if (first_byte == 1)
            png_set_swap(png);  /* PNG is big-endian; read native 16-bit samples */
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    const uint32_t channels = png_get_channels(png, info), depth = png_get_bit_depth(png, info);
    const size_t row_bytes = png_get_rowbytes(png, info);
    if (channels < 1 || channels > 4 || (depth != 8 && depth != 16) || row_bytes != (size_t)width * channels * depth / 8)
        png_error(png, "unexpected layout after expansion");
    buffers->data = malloc(row_bytes * height);
    buffers->rows = malloc(sizeof(png_bytep) * height);
    if (!buffers->data || !buffers->rows)
        png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < height; ++y)
        buffers->rows[y] = buffers->data + row_bytes * y;
    png_read_image(png, buffers->rows);
    png_read_end(png, NULL);  /* the chunks after the image data, up to IEND */
    if (!image_alloc(img, width, height, channels, depth))
        png_error(png, "out of memory");
    const size_t count = (size_t)width * height * channels;
    for (size_t i = 0; i < count; ++i) {
        if (depth == 16) {
            uint16_t v;
            memcpy(&v, buffers->data + 2 * i, 2);
            img->samples[i] = v;
        } else {
            img->samples[i] = buffers->data[i];
        }
    }
    png_destroy_read_struct(&png, &info, NULL);
    free(buffers->rows);
    free(buffers->data);
    free(buffers);
    return true;
}

static bool write_png(FILE *file, const image *img, char *error, const char *path)
{
    png_state state = { .path = path, .what = "writing the PNG failed", .error = error };
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &state, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    const size_t row_samples = (size_t)img->width * img->channels;
    uint8_t *volatile row = malloc(row_samples * 2);
    if (!png || !info || !row) {
        png_destroy_write_struct(&png, &info);
        free(row);
        return fail(error, "%s: out of memory", path);
    }
    if (setjmp(state.jump)) {
        png_destroy_write_struct(&png, &info);
        free(row);
        return false;
    }
    static const int color_types[5] = { 0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                         PNG_COLOR_TYPE_RGB_ALPHA };
    png_init_io(png, file);
    png_set_IHDR(png, info, img->width, img->height, (int)img->depth, color_types[img->channels], PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_sRGB_gAMA_and_cHRM(png, info, PNG_sRGB_INTENT_PERCEPTUAL);
    png_write_info(png, info);
    for (uint32_t y = 0; y < img->height; ++y) {
        const uint16_t *src = img->samples + row_samples * y;
        for (size_t i = 0; i < row_samples; ++i) {
            if (img->depth == 16) {  /* big-endian */
                row[2 * i] = (uint8_t)(src[i] >> 8);
                row[2 * i + 1] = (uint8_t)(src[i] & 0xffu);
            } else {
                row[i] = (uint8_t)src[i];
            }
        }
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    return true;
}

/* ---------------------------------------------------------------------------
 * JPEG
 * ------------------------------------------------------------------------ */

typedef struct jpeg_state {
    struct jpeg_error_mgr manager;  /* first: libjpeg hands us this pointer */
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    int warnings;                   /* libjpeg's warnings: corrupt data it worked around */
} jpeg_state;

static void jpeg_on_error(j_common_ptr cinfo)
{
    jpeg_state *state = (jpeg_state *)cinfo->err;
    cinfo->err->format_message(cinfo, state->message);
    longjmp(state->jump, 1);
}

static void jpeg_on_message(j_common_ptr cinfo, int level)
{
    jpeg_state *state = (jpeg_state *)cinfo->err;
    if (level < 0 && state->warnings++ == 0)  /* keep the first warning's text */
        cinfo->err->format_message(cinfo, state->message);
}

static bool read_jpeg(FILE *file, const char *path, image *img, char *error)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_state state;
    memset(&state, 0, sizeof state);
    cinfo.err = jpeg_std_error(&state.manager);
    state.manager.error_exit = jpeg_on_error;
    state.manager.emit_message = jpeg_on_message;
    uint8_t *volatile row = NULL;
    if (setjmp(state.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(row);
        image_free(img);
        return fail(error, "%s: corrupt or truncated JPEG (%s)", path, state.message);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, file);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&cinfo);
        return fail(error, "%s: CMYK JPEG images are not supported; convert it to RGB first", path);
    }
    cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    const uint32_t channels = (uint32_t)cinfo.output_components;
    if (!image_alloc(img, cinfo.output_width, cinfo.output_height, channels, 8) ||
        !(row = malloc((size_t)cinfo.output_width * channels))) {
        strcpy(state.message, "out of memory, or the image is too large");
        longjmp(state.jump, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW rows[1] = { row };
        uint32_t y = cinfo.output_scanline;
        if (jpeg_read_scanlines(&cinfo, rows, 1) != 1) {
            strcpy(state.message, "no more scanlines");
            longjmp(state.jump, 1);
        }
        for (size_t i = 0; i < (size_t)cinfo.output_width * channels; ++i)
            img->samples[(size_t)y * cinfo.output_width * channels + i] = row[i];
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    if (state.warnings > 0) {  /* libjpeg filled in what was missing or damaged */
        image_free(img);
        return fail(error, "%s: corrupt or truncated JPEG (%s)", path, state.message);
    }
    return true;
}

static bool write_jpeg(FILE *file, const image *img, int quality, const char *path, char *error)
{
    struct jpeg_compress_struct cinfo;
    jpeg_state state;
    memset(&state, 0, sizeof state);
    cinfo.err = jpeg_std_error(&state.manager);
    state.manager.error_exit = jpeg_on_error;
    state.manager.emit_message = jpeg_on_message;
    const uint32_t colours = img->channels >= 3 ? 3 : 1;
    uint8_t *volatile row = malloc((size_t)img->width * colours);
    if (!row)
        return fail(error, "%s: out of memory", path);
    if (setjmp(state.jump)) {
        jpeg_destroy_compress(&cinfo);
        free(row);
        return fail(error, "%s: writing the JPEG failed (%s)", path, state.message);
    }
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, file);
    cinfo.image_width = img->width;
    cinfo.image_height = img->height;
    cinfo.input_components = (int)colours;
    cinfo.in_color_space = colours == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    const uint32_t shift = img->depth == 16 ? 8 : 0;
    while (cinfo.next_scanline < cinfo.image_height) {
        const uint16_t *src = img->samples + (size_t)cinfo.next_scanline * img->width * img->channels;
        for (size_t x = 0; x < img->width; ++x)
            for (uint32_t c = 0; c < colours; ++c) {
                uint32_t v = src[x * img->channels + c];
                row[x * colours + c] = (uint8_t)(shift ? (v * 255u + 32767u) / 65535u : v);
            }
        JSAMPROW rows[1] = { row };
        jpeg_write_scanlines(&cinfo, rows, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    free(row);
    return true;
}

/* ---------------------------------------------------------------------------
 * Dispatch by signature, names, atomic output
 * ------------------------------------------------------------------------ */

bool image_read(const char *path, image *img, char error[IMAGE_ERROR_SIZE])
{
    memset(img, 0, sizeof *img);
    FILE *file = fopen(path, "rb");
    if (!file)
        return fail(error, "%s: %s", path, strerror(errno));
    uint8_t signature[8];
    size_t got = fread(signature, 1, sizeof signature, file);
    bool ok;
    if (got == 8 && png_sig_cmp(signature, 0, 8) == 0) {
        ok = fseek(file, 0, SEEK_SET) == 0 && read_png(file, path, img, error);
    } else if (got >= 3 && signature[0] == 0xff && signature[1] == 0xd8 && signature[2] == 0xff) {
        ok = fseek(file, 0, SEEK_SET) == 0 && read_jpeg(file, path, img, error);
    } else {
        ok = fail(error, got == 0 ? "%s: the file is empty" : "%s: not a PNG or JPEG image (unsupported format)",
                  path);
    }
    if (ok && ferror(file))
        ok = fail(error, "%s: read error", path);
    fclose(file);
    if (!ok && error[0] == '\0')
        fail(error, "%s: cannot be read", path);
    return ok;
}

bool image_format_from_name(const char *path, image_format *format)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash))
        return false;
    if (strcasecmp(dot, ".png") == 0)
        *format = IMAGE_PNG;
    else if (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0)
        *format = IMAGE_JPEG;
    else
        return false;
    return true;
}

bool image_output_open(image_output *out, const char *path, char error[IMAGE_ERROR_SIZE])
{
    memset(out, 0, sizeof *out);
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    const char *pattern = ".inorm-transfer-XXXXXX";
    out->final_path = strdup(path);
    out->temp_path = malloc(dir_len + strlen(pattern) + 1);
    if (!out->final_path || !out->temp_path) {
        image_output_abandon(out);
        return fail(error, "%s: out of memory", path);
    }
    memcpy(out->temp_path, path, dir_len);
    strcpy(out->temp_path + dir_len, pattern);
    int fd = mkstemp(out->temp_path);
    if (fd < 0) {
        int err = errno;
        free(out->temp_path);
        out->temp_path = NULL;
        image_output_abandon(out);
        return fail(error, "%s: cannot create a file in its directory (%s)", path, strerror(err));
    }
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0 || !(out->file = fdopen(fd, "wb"))) {
        int err = errno;
        close(fd);
        image_output_abandon(out);
        return fail(error, "%s: %s", path, strerror(err));
    }
    return true;
}

bool image_output_commit(image_output *out, const image *img, image_format format, int quality,
                         char error[IMAGE_ERROR_SIZE])
{
    bool ok = format == IMAGE_PNG ? write_png(out->file, img, error, out->final_path)
                                  : write_jpeg(out->file, img, quality, out->final_path, error);
    if (ok && (fflush(out->file) != 0 || ferror(out->file) || fsync(fileno(out->file)) != 0))
        ok = fail(error, "%s: writing failed (%s)", out->final_path, strerror(errno));
    int closed = fclose(out->file);
    out->file = NULL;
    if (ok && closed != 0)
        ok = fail(error, "%s: writing failed (%s)", out->final_path, strerror(errno));
    if (ok && rename(out->temp_path, out->final_path) != 0)
        ok = fail(error, "%s: cannot replace it (%s)", out->final_path, strerror(errno));
    if (ok) {
        free(out->temp_path);
        out->temp_path = NULL;
    }
    image_output_abandon(out);
    return ok;
}

void image_output_abandon(image_output *out)
{
    if (out->file)
        fclose(out->file);
    if (out->temp_path)
        unlink(out->temp_path);
    free(out->temp_path);
    free(out->final_path);
    memset(out, 0, sizeof *out);
}
