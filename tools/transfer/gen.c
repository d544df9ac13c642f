/*
 * inorm-transfer-gen — makes the test and README images of inorm-transfer:
 * deterministic pictures drawn from formulas, written as PNG.
 *
 *   inorm-transfer-gen KIND WIDTH HEIGHT OUT.png [--depth 16] [--alpha] [--seed N]
 *
 * Kinds:
 *   scene    a landscape: sky gradient, sun, three rows of striped hills (content)
 *   sunset   a warm colour field: orange, magenta and violet blobs (style)
 *   ocean    a cool colour field: teal, blue and sea-green blobs (style)
 *   moss     a green-brown colour field (style)
 *   noise    uniform random RGB (tests)
 *   mask     white on the right, black on the left, a soft edge (--mask)
 *   white, black   uniform one-channel images (masks that select all or nothing)
 * --alpha adds an alpha channel that fades out towards the corners.
 */
#define _POSIX_C_SOURCE 200809L

#include "image_io.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rgb {
    double r, g, b;
} rgb;

static rgb mix_rgb(rgb a, rgb b, double t)
{
    return (rgb){ a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t };
}

static double smoothstep(double edge0, double edge1, double x)
{
    double t = (x - edge0) / (edge1 - edge0);
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return t * t * (3 - 2 * t);
}

/* xorshift64*, for noise and the blobs' places */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double rng_uniform(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0);
}

/* u, v in [0, 1): position; aspect = width / height */
static rgb scene(double u, double v, double aspect)
{
    const rgb zenith = { 0.22, 0.45, 0.78 }, horizon = { 0.85, 0.90, 0.95 };
    rgb c = mix_rgb(zenith, horizon, smoothstep(0.0, 0.55, v));
    double du = (u - 0.72) * aspect, dv = v - 0.22, sun = sqrt(du * du + dv * dv);
    c = mix_rgb(c, (rgb){ 1.0, 0.96, 0.80 }, 1.0 - smoothstep(0.07, 0.09, sun));
    const rgb hills[3] = { { 0.45, 0.62, 0.38 }, { 0.30, 0.52, 0.25 }, { 0.16, 0.36, 0.14 } };
    for (int k = 0; k < 3; ++k) {
        double top = 0.48 + 0.14 * k + 0.05 * sin(u * (5.0 + 2.0 * k) + 1.7 * k);
        if (v > top) {
            double stripes = 0.5 + 0.5 * sin((u * aspect * (9.0 + 4.0 * k) + (v - top) * 14.0) * 3.14159);
            c = mix_rgb(hills[k], (rgb){ hills[k].r * 0.75, hills[k].g * 0.8, hills[k].b * 0.7 }, 0.6 * stripes);
            c = mix_rgb(c, (rgb){ 0.93, 0.86, 0.55 }, 0.25 * smoothstep(0.0, 0.02, v - top) * (1 - smoothstep(0.02, 0.05, v - top)));
        }
    }
    return c;
}

typedef struct blob {
    double u, v, radius;
    rgb colour;
} blob;

#define BLOBS 9
static blob blobs[BLOBS];

static void make_blobs(const rgb palette[3])
{
    for (int i = 0; i < BLOBS; ++i)
        blobs[i] = (blob){ rng_uniform(), rng_uniform(), 0.18 + 0.25 * rng_uniform(), palette[i % 3] };
}

/* A colour field: a weighted mean of blobs, plus a faint grain. */
static rgb field(double u, double v, double aspect)
{
    rgb sum = { 0, 0, 0 };
    double total = 1e-9;
    for (int i = 0; i < BLOBS; ++i) {
        double du = (u - blobs[i].u) * aspect, dv = v - blobs[i].v;
        double w = exp(-(du * du + dv * dv) / (blobs[i].radius * blobs[i].radius));
        sum.r += w * blobs[i].colour.r;
        sum.g += w * blobs[i].colour.g;
        sum.b += w * blobs[i].colour.b;
        total += w;
    }
    double grain = 0.03 * (rng_uniform() - 0.5);
    return (rgb){ sum.r / total + grain, sum.g / total + grain, sum.b / total + grain };
}

static uint16_t quantize(double v, uint32_t max)
{
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    return (uint16_t)(v * max + 0.5);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fputs("usage: inorm-transfer-gen scene|sunset|ocean|moss|noise|mask|white|black WIDTH HEIGHT OUT.png "
              "[--depth 16] [--alpha] [--seed N]\n", stderr);
        return 2;
    }
    const char *kind = argv[1], *out_path = argv[4];
    long width = strtol(argv[2], NULL, 10), height = strtol(argv[3], NULL, 10);
    uint32_t depth = 8;
    bool alpha = false;
    for (int i = 5; i < argc; ++i) {
        if (strcmp(argv[i], "--depth") == 0 && i + 1 < argc)
            depth = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--alpha") == 0)
            alpha = true;
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            rng_state += strtoull(argv[++i], NULL, 10) * 0x2545F4914F6CDD1Dull;
        else {
            fprintf(stderr, "inorm-transfer-gen: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    const bool is_mask = strcmp(kind, "mask") == 0 || strcmp(kind, "white") == 0 || strcmp(kind, "black") == 0;
    image img;
    if (width < 1 || height < 1 || width > 100000 || height > 100000 ||
        !image_alloc(&img, (uint32_t)width, (uint32_t)height, is_mask ? 1 : alpha ? 4 : 3, depth)) {
        fputs("inorm-transfer-gen: bad size or depth (8 or 16)\n", stderr);
        return 2;
    }
    static const rgb sunset[3] = { { 0.98, 0.55, 0.20 }, { 0.85, 0.25, 0.45 }, { 0.40, 0.20, 0.55 } };
    static const rgb ocean[3] = { { 0.10, 0.55, 0.60 }, { 0.08, 0.25, 0.55 }, { 0.35, 0.75, 0.65 } };
    static const rgb moss[3] = { { 0.35, 0.42, 0.15 }, { 0.55, 0.45, 0.25 }, { 0.20, 0.30, 0.12 } };
    if (strcmp(kind, "sunset") == 0)
        make_blobs(sunset);
    else if (strcmp(kind, "ocean") == 0)
        make_blobs(ocean);
    else if (strcmp(kind, "moss") == 0)
        make_blobs(moss);
    else if (strcmp(kind, "scene") != 0 && strcmp(kind, "noise") != 0 && !is_mask) {
        fprintf(stderr, "inorm-transfer-gen: unknown kind %s\n", kind);
        image_free(&img);
        return 2;
    }
    const uint32_t max = image_max_value(&img);
    const double aspect = (double)width / (double)height;
    for (uint32_t y = 0; y < img.height; ++y)
        for (uint32_t x = 0; x < img.width; ++x) {
            double u = (x + 0.5) / img.width, v = (y + 0.5) / img.height;
            uint16_t *px = img.samples + ((size_t)y * img.width + x) * img.channels;
            if (is_mask) {
                double level = kind[0] == 'w' ? 1.0 : kind[0] == 'b' ? 0.0 : smoothstep(0.4, 0.6, u + 0.1 * sin(v * 6.0));
                px[0] = quantize(level, max);
                continue;
            }
            rgb c = strcmp(kind, "scene") == 0   ? scene(u, v, aspect)
                    : strcmp(kind, "noise") == 0 ? (rgb){ rng_uniform(), rng_uniform(), rng_uniform() }
                                                 : field(u, v, aspect);
            px[0] = quantize(c.r, max);
            px[1] = quantize(c.g, max);
            px[2] = quantize(c.b, max);
            if (alpha) {
                double du = u - 0.5, dv = v - 0.5;
                px[3] = quantize(1.0 - smoothstep(0.45, 0.7, sqrt(du * du + dv * dv)), max);
            }
        }
    char error[IMAGE_ERROR_SIZE];
    image_output out;
    bool good = image_output_open(&out, out_path, error) && image_output_commit(&out, &img, IMAGE_PNG, 0, error);
    if (!good)
        fprintf(stderr, "inorm-transfer-gen: %s\n", error);
    image_free(&img);
    return good ? 0 : 1;
}
