/*
 * PNG and JPEG in and out for inorm-transfer, through libpng and libjpeg.
 *
 * Images are kept as interleaved 16-bit samples whatever their depth, with
 * the depth remembered (8 or 16 bits: samples 0..255 or 0..65535). Colour
 * values are taken as sRGB-encoded: gAMA, cHRM and iCCP chunks and JPEG ICC
 * profiles are not applied.
 *
 * Writing never leaves a half-written file under the final name: the image
 * goes to a temporary file in the same directory (opened first, so that an
 * unwritable place fails before any work), which is renamed over the target
 * once complete and flushed to disk.
 */
#ifndef INORM_TRANSFER_IMAGE_IO_H
#define INORM_TRANSFER_IMAGE_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Largest image accepted, in pixels (2^30: 16 GiB of float RGBA). */
#define IMAGE_MAX_PIXELS (1ull << 30)
/* Largest side accepted (libjpeg's own limit is 65500). */
#define IMAGE_MAX_SIDE 1000000u

typedef enum image_format { IMAGE_PNG, IMAGE_JPEG } image_format;

typedef struct image {
    uint32_t width, height;
    uint32_t channels;   /* 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA */
    uint32_t depth;      /* bits per sample: 8 or 16 */
    uint16_t *samples;   /* width * height * channels, row by row, interleaved */
} image;

/* Room for an error message: "file: what went wrong". */
#define IMAGE_ERROR_SIZE 512

static inline bool image_has_alpha(const image *img) { return img->channels == 2 || img->channels == 4; }
static inline uint32_t image_max_value(const image *img) { return img->depth == 16 ? 65535u : 255u; }
static inline size_t image_pixels(const image *img) { return (size_t)img->width * img->height; }

/* Reads a PNG or JPEG (told apart by their signatures, not by the name).
 * On failure returns false with a message in error and img left empty;
 * corrupt, truncated and unsupported files all fail this way. */
bool image_read(const char *path, image *img, char error[IMAGE_ERROR_SIZE]);

/* Allocates an image of the given geometry (samples zeroed). False when the
 * size is out of range or memory is short. */
bool image_alloc(image *img, uint32_t width, uint32_t height, uint32_t channels, uint32_t depth);
void image_free(image *img);

/* The format a file name asks for: .png, .jpg or .jpeg (any case). */
bool image_format_from_name(const char *path, image_format *format);

/* A pending output: the temporary file, and where it goes. */
typedef struct image_output {
    char *final_path;
    char *temp_path;
    FILE *file;
} image_output;

/* Creates the temporary file next to path (mode 0666 less the umask). */
bool image_output_open(image_output *out, const char *path, char error[IMAGE_ERROR_SIZE]);
/* Encodes img into the temporary file (PNG keeps img's depth and alpha; JPEG
 * is 8-bit RGB or grey at `quality` 1..100, without alpha), then flushes it
 * and renames it over the final path. On failure the temporary file is
 * removed and the final path is untouched. */
bool image_output_commit(image_output *out, const image *img, image_format format, int quality,
                         char error[IMAGE_ERROR_SIZE]);
/* Removes the temporary file (nothing was written under the final name).
 * Safe after a commit and on a zeroed image_output. */
void image_output_abandon(image_output *out);

#endif
