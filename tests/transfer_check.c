/*
 * transfer_check — measurements on images for the inorm-transfer tests
 * (tests/transfer_test.sh). Images are read with the tool's own reader;
 * colour conversions for the statistics run on inorm's CPU path (double).
 *
 *   transfer_check diff A B MAX
 *       the largest difference of any sample (colour and alpha), in 1/255
 *       units (16-bit samples are divided by 257); fails above MAX
 *   transfer_check match OUT STYLE SPACE MEAN_TOL STD_TOL
 *       per-channel mean and std of OUT and STYLE in SPACE (srgb, lab,
 *       lalphabeta); fails when a mean differs by more than MEAN_TOL or a
 *       std by more than STD_TOL (in the space's units)
 *   transfer_check channel-diff A B SPACE CHANNEL MAX SHARE
 *       one channel of A and B in SPACE; fails unless at least SHARE (0..1) of
 *       the pixels differ by at most MAX
 *   transfer_check alpha-equal A B
 *       A and B have alpha channels with identical samples
 *   transfer_check info A
 *       prints WIDTH HEIGHT CHANNELS DEPTH
 * Exit status: 0 pass, 1 fail, 2 usage or unreadable image.
 */
#define _POSIX_C_SOURCE 200809L

#include "image_io.h"

#include <inorm.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void load(const char *path, image *img)
{
    char error[IMAGE_ERROR_SIZE];
    if (!image_read(path, img, error)) {
        fprintf(stderr, "transfer_check: %s\n", error);
        exit(2);
    }
}

static double sample(const image *img, size_t pixel, uint32_t c)
{
    uint32_t channel = img->channels < 3 && c < 3 ? 0 : c;
    return (double)img->samples[pixel * img->channels + channel] / image_max_value(img);
}

/* img's colour in `space`, as three planes of doubles (CPU path, double math). */
static double *to_space(const image *img, inorm_color_space space)
{
    const size_t pixels = image_pixels(img);
    float *planes = malloc(pixels * 3 * sizeof *planes);
    double *out = malloc(pixels * 3 * sizeof *out);
    inorm_context_desc desc = INORM_CONTEXT_DESC_DEFAULT;
    desc.backend = INORM_BACKEND_CPU;
    desc.flags = INORM_CONTEXT_IGNORE_ENVIRONMENT;
    inorm_context *ctx = NULL;
    inorm_tensor *t = NULL;
    inorm_tensor_desc td = { 1, 3, img->height, img->width, INORM_FLOAT32, INORM_NCHW };
    if (!planes || !out || inorm_context_create(&desc, &ctx) != INORM_SUCCESS ||
        inorm_tensor_create(ctx, &td, &t) != INORM_SUCCESS) {
        fputs("transfer_check: out of memory or no CPU context\n", stderr);
        exit(2);
    }
    for (size_t i = 0; i < pixels; ++i)
        for (uint32_t c = 0; c < 3; ++c)
            planes[c * pixels + i] = (float)sample(img, i, c);
    if (inorm_tensor_write(t, planes, pixels * 3 * sizeof *planes) != INORM_SUCCESS ||
        inorm_color_convert(ctx, t, t, INORM_COLOR_SRGB, space) != INORM_SUCCESS ||
        inorm_tensor_read(t, planes, pixels * 3 * sizeof *planes) != INORM_SUCCESS) {
        fprintf(stderr, "transfer_check: %s\n", inorm_context_error(ctx));
        exit(2);
    }
    for (size_t i = 0; i < pixels * 3; ++i)
        out[i] = planes[i];
    inorm_context_destroy(ctx);
    free(planes);
    return out;
}

static inorm_color_space parse_space(const char *name)
{
    if (strcmp(name, "srgb") == 0 || strcmp(name, "rgb") == 0)
        return INORM_COLOR_SRGB;
    if (strcmp(name, "lab") == 0 || strcmp(name, "lab-luma-only") == 0)
        return INORM_COLOR_LAB;
    if (strcmp(name, "lalphabeta") == 0)
        return INORM_COLOR_LALPHABETA;
    fprintf(stderr, "transfer_check: unknown space %s\n", name);
    exit(2);
}

static int diff(const char *a_path, const char *b_path, double max)
{
    image a, b;
    load(a_path, &a);
    load(b_path, &b);
    if (a.width != b.width || a.height != b.height || a.channels != b.channels) {
        printf("diff: %s is %ux%u with %u channels, %s %ux%u with %u\n", a_path, a.width, a.height, a.channels,
               b_path, b.width, b.height, b.channels);
        return 1;
    }
    double worst = 0.0;
    size_t worst_at = 0;
    for (size_t i = 0; i < image_pixels(&a); ++i)
        for (uint32_t c = 0; c < a.channels; ++c) {
            double d = fabs(sample(&a, i, c) - sample(&b, i, c)) * 255.0;
            if (d > worst) {
                worst = d;
                worst_at = i;
            }
        }
    printf("diff %s %s: largest difference %.3f/255 at pixel (%zu, %zu), limit %g/255\n", a_path, b_path, worst,
           worst_at % a.width, worst_at / a.width, max);
    image_free(&a);
    image_free(&b);
    return worst <= max + 1e-9 ? 0 : 1;
}

static void channel_stats(const double *planes, size_t pixels, int c, double *mean, double *std)
{
    double sum = 0.0, squares = 0.0;
    for (size_t i = 0; i < pixels; ++i)
        sum += planes[c * pixels + i];
    *mean = sum / (double)pixels;
    for (size_t i = 0; i < pixels; ++i)
        squares += (planes[c * pixels + i] - *mean) * (planes[c * pixels + i] - *mean);
    *std = sqrt(squares / (double)pixels);
}

static int match(const char *out_path, const char *style_path, const char *space_name, double mean_tol, double std_tol)
{
    image out, style;
    load(out_path, &out);
    load(style_path, &style);
    inorm_color_space space = parse_space(space_name);
    double *a = to_space(&out, space), *b = to_space(&style, space);
    int failed = 0;
    for (int c = 0; c < 3; ++c) {
        double am, as, bm, bs;
        channel_stats(a, image_pixels(&out), c, &am, &as);
        channel_stats(b, image_pixels(&style), c, &bm, &bs);
        bool good = fabs(am - bm) <= mean_tol && fabs(as - bs) <= std_tol;
        printf("%s channel %d: result mean %9.4f std %8.4f | style mean %9.4f std %8.4f | diff %.4f %.4f%s\n",
               space_name, c, am, as, bm, bs, am - bm, as - bs, good ? "" : "  <-- outside the tolerance");
        failed |= !good;
    }
    free(a);
    free(b);
    image_free(&out);
    image_free(&style);
    return failed;
}

static int channel_diff(const char *a_path, const char *b_path, const char *space_name, int channel, double max,
                        double share)
{
    image a, b;
    load(a_path, &a);
    load(b_path, &b);
    if (a.width != b.width || a.height != b.height || channel < 0 || channel > 2)
        return 2;
    inorm_color_space space = parse_space(space_name);
    double *pa = to_space(&a, space), *pb = to_space(&b, space), worst = 0.0;
    const size_t pixels = image_pixels(&a);
    size_t within = 0;
    for (size_t i = 0; i < pixels; ++i) {
        double d = fabs(pa[channel * pixels + i] - pb[channel * pixels + i]);
        worst = fmax(worst, d);
        within += d <= max;
    }
    printf("channel %d of %s and %s in %s: %.2f%% of the pixels within %g, largest difference %.4f\n", channel,
           a_path, b_path, space_name, 100.0 * (double)within / (double)pixels, max, worst);
    free(pa);
    free(pb);
    image_free(&a);
    image_free(&b);
    return (double)within >= share * (double)pixels ? 0 : 1;
}

static int alpha_equal(const char *a_path, const char *b_path)
{
    image a, b;
    load(a_path, &a);
    load(b_path, &b);
    int result = 0;
    if (!image_has_alpha(&a) || !image_has_alpha(&b) || a.width != b.width || a.height != b.height ||
        a.depth != b.depth) {
        printf("alpha-equal: %s and %s do not both have alpha of one size and depth\n", a_path, b_path);
        result = 1;
    }
    for (size_t i = 0; result == 0 && i < image_pixels(&a); ++i)
        if (a.samples[i * a.channels + a.channels - 1] != b.samples[i * b.channels + b.channels - 1]) {
            printf("alpha-equal: pixel %zu differs\n", i);
            result = 1;
        }
    if (result == 0)
        printf("alpha-equal: %s and %s have the same alpha\n", a_path, b_path);
    image_free(&a);
    image_free(&b);
    return result;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "diff") == 0)
        return diff(argv[2], argv[3], atof(argv[4]));
    if (argc == 7 && strcmp(argv[1], "match") == 0)
        return match(argv[2], argv[3], argv[4], atof(argv[5]), atof(argv[6]));
    if (argc == 8 && strcmp(argv[1], "channel-diff") == 0)
        return channel_diff(argv[2], argv[3], argv[4], atoi(argv[5]), atof(argv[6]), atof(argv[7]));
    if (argc == 4 && strcmp(argv[1], "alpha-equal") == 0)
        return alpha_equal(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "info") == 0) {
        image img;
        load(argv[2], &img);
        printf("%u %u %u %u\n", img.width, img.height, img.channels, img.depth);
        image_free(&img);
        return 0;
    }
    fputs("usage: transfer_check diff|match|channel-diff|alpha-equal|info ... (see the source)\n", stderr);
    return 2;
}
