/* The statistics transfer of inorm-transfer: the whole and tiled plans
 * described in transfer.h. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include "transfer.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Most tensors one run holds at a time: content bands, their masks, and a
 * dozen working tensors. Bands beyond that would mean an image of more than
 * a thousand maxStorageBufferRange-sized pieces. */
#define MAX_TENSORS 2048

typedef struct engine {
    inorm_context *ctx;
    const transfer_request *req;
    transfer_report *report;
    char *error;
    inorm_color_space space;      /* the library's colour space for the request's space */
    float eps;                    /* added to every variance */
    uint64_t band_bytes;          /* the most bytes one tensor may have */
    bool content_weighted;        /* the content's alpha weighs its statistics */
    double clock;                 /* start of the current stage */
    inorm_tensor *tensors[MAX_TENSORS];
    uint32_t tensor_count;
    inorm_tensor *mean, *std;     /* 1 x 3 x 1 x 1: one band's statistics */
    inorm_tensor *scale, *bias;   /* 1 x 3 x 1 x 1: inorm_adain_modulate's */
} engine;

/* Whole-image statistics in the colour space, accumulated band by band. */
typedef struct moments {
    double weight;                /* sum of the weights (pixels when unweighted) */
    double mean[3];
    double m2[3];                 /* sum of weight * (x - mean)^2 */
} moments;

/* A channel's target or source statistics: std = sqrt(var + eps). */
typedef struct channel_stats {
    double mean[3], std[3];
} channel_stats;

/* The affine map of one region: y = a x + b per channel. */
typedef struct region_map {
    bool active;                  /* the region has weight */
    double a[3], b[3];
} region_map;

typedef struct band {
    uint32_t y0, rows;
    inorm_tensor *x;              /* the content rows, in the colour space */
    inorm_tensor *mask;           /* the mask's rows (regions), or NULL */
    float mean[3], std[3];        /* unweighted statistics of x */
} band;

/* What weights a band's statistics: the content's alpha, times the mask
 * (inside) or one minus it (outside). */
typedef enum weight_kind { WEIGHT_ALPHA, WEIGHT_INSIDE, WEIGHT_OUTSIDE, WEIGHT_MASK } weight_kind;

const char *transfer_stage_name(transfer_stage stage)
{
    static const char *const names[STAGE_COUNT] = { "upload", "to space", "statistics", "transfer", "to sRGB",
                                                    "download" };
    return stage < STAGE_COUNT ? names[stage] : "?";
}

/* ---------------------------------------------------------------------------
 * Small utilities
 * ------------------------------------------------------------------------ */

static bool fail(engine *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(engine *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->error, IMAGE_ERROR_SIZE, fmt, ap);
    va_end(ap);
    return false;
}

/* True on success; otherwise the library's error as the message. */
static bool ok(engine *e, inorm_status status, const char *what)
{
    if (status == INORM_SUCCESS)
        return true;
    return fail(e, "%s: %s (%s)", what, inorm_status_string(status), inorm_context_error(e->ctx));
}

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Ends a stage: its time goes to `stage`. With timing on, the device first
 * finishes what the stage recorded (ops return before the device is done). */
static bool lap(engine *e, transfer_stage stage)
{
    if (e->req->timing && !ok(e, inorm_context_finish(e->ctx), "inorm_context_finish"))
        return false;
    double t = now_seconds();
    e->report->seconds[stage] += t - e->clock;
    e->clock = t;
    return true;
}

static bool new_tensor(engine *e, uint32_t c, uint32_t h, uint32_t w, inorm_tensor **out)
{
    *out = NULL;
    if (e->tensor_count == MAX_TENSORS)
        return fail(e, "more than %d tensors: the image has too many bands", MAX_TENSORS);
    inorm_tensor_desc desc = { 1, c, h, w, INORM_FLOAT32, INORM_NCHW };
    if (!ok(e, inorm_tensor_create(e->ctx, &desc, out), "inorm_tensor_create"))
        return false;
    e->tensors[e->tensor_count++] = *out;
    return true;
}

static void release(engine *e, inorm_tensor **t)
{
    for (uint32_t i = 0; i < e->tensor_count && *t; ++i)
        if (e->tensors[i] == *t) {
            e->tensors[i] = e->tensors[--e->tensor_count];
            break;
        }
    inorm_tensor_destroy(*t);
    *t = NULL;
}

static bool write_floats(engine *e, inorm_tensor *t, const float *data, size_t count)
{
    return ok(e, inorm_tensor_write(t, data, count * sizeof *data), "inorm_tensor_write");
}

/* A 1 x 3 x 1 x 1 FLOAT32 tensor holding values. */
static bool channel_tensor(engine *e, const float values[3], inorm_tensor **out)
{
    return new_tensor(e, 3, 1, 1, out) && write_floats(e, *out, values, 3);
}

/* ---------------------------------------------------------------------------
 * Host side of the pixels: rows of an image as planes, weights, the result
 * ------------------------------------------------------------------------ */

/* Rows [y0, y0 + rows) of img as three planes of sRGB values in [0, 1] (grey: three times). */
static void rows_to_planes(const image *img, uint32_t y0, uint32_t rows, float *planes)
{
    const double scale = 1.0 / image_max_value(img);
    const size_t plane = (size_t)rows * img->width;
    const uint16_t *px = img->samples + (size_t)y0 * img->width * img->channels;
    for (size_t i = 0; i < plane; ++i, px += img->channels)
        for (size_t c = 0; c < 3; ++c)
            planes[c * plane + i] = (float)(px[img->channels < 3 ? 0 : c] * scale);
}

static double alpha_at(const image *img, size_t pixel)
{
    if (!image_has_alpha(img))
        return 1.0;
    return (double)img->samples[pixel * img->channels + img->channels - 1] / image_max_value(img);
}

/* The mask's value: its grey level, or the mean of R, G and B. */
static double mask_at(const image *mask, size_t pixel)
{
    const uint16_t *px = mask->samples + pixel * mask->channels;
    double v = mask->channels < 3 ? px[0] : ((double)px[0] + px[1] + px[2]) / 3.0;
    return v / image_max_value(mask);
}

/* Weights of rows [y0, y0 + rows) into dst; returns their sum. The alpha is
 * that of `alpha_from` when it is weighted (else 1). */
static double band_weights(const image *alpha_from, bool weighted, const image *mask, weight_kind kind, uint32_t y0,
                           uint32_t rows, float *dst)
{
    const size_t width = alpha_from->width, first = (size_t)y0 * width, count = (size_t)rows * width;
    double sum = 0.0;
    for (size_t i = 0; i < count; ++i) {
        double w = weighted && kind != WEIGHT_MASK ? alpha_at(alpha_from, first + i) : 1.0;
        if (kind == WEIGHT_INSIDE || kind == WEIGHT_MASK)
            w *= mask_at(mask, first + i);
        else if (kind == WEIGHT_OUTSIDE)
            w *= 1.0 - mask_at(mask, first + i);
        dst[i] = (float)w;
        sum += dst[i];
    }
    return sum;
}

/* Whether img's alpha weighs its statistics: it has one, and it is not all zero. */
static bool alpha_weighted(const image *img)
{
    if (!image_has_alpha(img))
        return false;
    for (size_t i = 0; i < image_pixels(img); ++i)
        if (alpha_at(img, i) > 0.0)
            return true;
    return false;  /* fully transparent: every pixel counts the same */
}

/* The result's rows from three sRGB planes, rounded to the output's depth,
 * with the content's alpha as it is. */
static void planes_to_rows(const float *planes, const image *content, uint32_t y0, uint32_t rows, image *out)
{
    const size_t plane = (size_t)rows * out->width, first = (size_t)y0 * out->width;
    const double max = image_max_value(out);
    for (size_t i = 0; i < plane; ++i) {
        uint16_t *px = out->samples + (first + i) * out->channels;
        for (size_t c = 0; c < 3; ++c) {
            double v = planes[c * plane + i] * max;
            px[c] = (uint16_t)(v >= max ? max : v > 0.0 ? v + 0.5 : 0.0);  /* NaN: 0 */
        }
        if (out->channels == 4)
            px[3] = content->samples[(first + i) * content->channels + content->channels - 1];
    }
}

/* ---------------------------------------------------------------------------
 * Statistics: one band's on the device, merged on the host
 * ------------------------------------------------------------------------ */

static inorm_norm_params norm_params(const engine *e, const inorm_tensor *mask)
{
    inorm_norm_params p = INORM_NORM_PARAMS_DEFAULT;
    p.eps = e->eps;
    p.mask = mask;
    return p;
}

/* mean and std = sqrt(var + eps) of each channel of t, weighted by mask (or not). */
static bool band_stats(engine *e, const inorm_tensor *t, const inorm_tensor *mask, float mean[3], float std[3])
{
    inorm_norm_params p = norm_params(e, mask);
    return ok(e, inorm_stats(e->ctx, t, &p, e->mean, e->std), "inorm_stats") &&
           ok(e, inorm_tensor_read(e->mean, mean, 3 * sizeof(float)), "inorm_tensor_read") &&
           ok(e, inorm_tensor_read(e->std, std, 3 * sizeof(float)), "inorm_tensor_read");
}

/* Chan et al.'s merge of a band's (weight, mean, variance) into the total. */
static void moments_merge(moments *total, double weight, const float mean[3], const float std[3], float eps)
{
    if (weight <= 0.0)
        return;
    const double merged = total->weight + weight;
    for (int c = 0; c < 3; ++c) {
        double var = (double)std[c] * std[c] - eps;
        double delta = mean[c] - total->mean[c];
        total->mean[c] += delta * weight / merged;
        total->m2[c] += (var > 0.0 ? var : 0.0) * weight + delta * delta * total->weight * weight / merged;
    }
    total->weight = merged;
}

static channel_stats moments_stats(const moments *m, float eps)
{
    channel_stats s;
    for (int c = 0; c < 3; ++c) {
        s.mean[c] = m->mean[c];
        s.std[c] = sqrt(m->m2[c] / m->weight + eps);
    }
    return s;
}

/* Rows per band for an image of this width: as many as one tensor may hold,
 * or as --tile-pixels allows; at least one. */
static bool rows_per_band(engine *e, uint32_t width, uint32_t height, uint32_t *rows)
{
    uint64_t row_bytes = (uint64_t)width * 3 * sizeof(float);
    if (row_bytes > e->band_bytes)
        return fail(e, "one row of %u pixels takes %llu bytes; the device binds at most %llu", width,
                    (unsigned long long)row_bytes, (unsigned long long)e->band_bytes);
    uint64_t r = e->band_bytes / row_bytes;
    if (e->req->tile_pixels > 0 && r > e->req->tile_pixels / width)
        r = e->req->tile_pixels / width > 0 ? e->req->tile_pixels / width : 1;
    *rows = r < height ? (uint32_t)r : height;
    return true;
}

/* Uploads rows of img as a 1 x 3 x rows x W tensor and takes it to the colour space. */
static bool upload_rows(engine *e, const image *img, uint32_t y0, uint32_t rows, float *planes, inorm_tensor **out)
{
    rows_to_planes(img, y0, rows, planes);
    if (!new_tensor(e, 3, rows, img->width, out) || !write_floats(e, *out, planes, (size_t)3 * rows * img->width) ||
        !lap(e, STAGE_UPLOAD))
        return false;
    if (e->space != INORM_COLOR_SRGB &&
        !ok(e, inorm_color_convert(e->ctx, *out, *out, INORM_COLOR_SRGB, e->space), "inorm_color_convert"))
        return false;
    return lap(e, STAGE_TO_SPACE);
}

/* A 1 x 1 x rows x W weight tensor; *sum gets the weights' sum. */
static bool upload_weights(engine *e, const image *alpha_from, bool weighted, weight_kind kind, uint32_t y0,
                           uint32_t rows, float *buffer, double *sum, inorm_tensor **out)
{
    *sum = band_weights(alpha_from, weighted, e->req->mask, kind, y0, rows, buffer);
    return new_tensor(e, 1, rows, alpha_from->width, out) &&
           write_floats(e, *out, buffer, (size_t)rows * alpha_from->width) && lap(e, STAGE_UPLOAD);
}

/* The whole-image statistics of a style, band by band (its alpha weighs them). */
static bool style_stats(engine *e, const image *img, channel_stats *out)
{
    uint32_t rows;
    if (!rows_per_band(e, img->width, img->height, &rows))
        return false;
    float *planes = malloc((size_t)3 * rows * img->width * sizeof *planes);
    if (!planes)
        return fail(e, "out of memory");
    const bool weighted = alpha_weighted(img);
    moments total = { .weight = 0.0 };
    bool good = true;
    for (uint32_t y0 = 0; good && y0 < img->height; y0 += rows) {
        uint32_t n = img->height - y0 < rows ? img->height - y0 : rows;
        inorm_tensor *x = NULL, *w = NULL;
        double weight = (double)n * img->width;
        float mean[3], std[3];
        good = upload_rows(e, img, y0, n, planes, &x) &&
               (!weighted || upload_weights(e, img, true, WEIGHT_ALPHA, y0, n, planes, &weight, &w));
        if (good && weight > 0.0) {
            good = band_stats(e, x, w, mean, std) && lap(e, STAGE_STATISTICS);
            if (good)
                moments_merge(&total, weight, mean, std, e->eps);
        }
        release(e, &x);
        release(e, &w);
    }
    free(planes);
    if (good)
        *out = moments_stats(&total, e->eps);
    return good;
}

/* ---------------------------------------------------------------------------
 * The request, in numbers
 * ------------------------------------------------------------------------ */

/* Channels the content keeps as they are (1 = kept), in the colour space. */
static void kept_channels(const engine *e, float kept[3])
{
    const transfer_request *r = e->req;
    kept[0] = r->preserve_luminance ? 1.0f : 0.0f;
    kept[1] = kept[2] = r->space == TRANSFER_LAB_LUMA_ONLY ? 1.0f : 0.0f;
}

/* rgb with preserve_luminance: L* comes back from the content after the
 * transfer, through L*a*b* (a blend of the two on the device). */
static bool luminance_swap(const engine *e)
{
    return e->req->preserve_luminance && e->req->space == TRANSFER_RGB;
}

/* The affine map of a region from the content's statistics there and the target's. */
static region_map make_map(const engine *e, const channel_stats *content, const channel_stats *target)
{
    region_map map = { .active = true };
    float kept[3];
    kept_channels(e, kept);
    const double alpha = e->req->alpha;
    for (int c = 0; c < 3; ++c) {
        double a = target->std[c] / content->std[c], b = target->mean[c] - a * content->mean[c];
        /* y = alpha * (a x + b) + (1 - alpha) x */
        map.a[c] = kept[c] != 0.0f && !luminance_swap(e) ? 1.0 : 1.0 - alpha + alpha * a;
        map.b[c] = kept[c] != 0.0f && !luminance_swap(e) ? 0.0 : alpha * b;
    }
    return map;
}

/* The style side of region 0: the style, or the mix of style and style2
 * (inorm_adain_mix's rule: means and stds weighted). */
static channel_stats mix_targets(const transfer_request *r, const channel_stats *style, const channel_stats *style2)
{
    if (!r->style2)
        return *style;
    channel_stats mix;
    for (int c = 0; c < 3; ++c) {
        mix.mean[c] = r->weights[0] * style->mean[c] + r->weights[1] * style2->mean[c];
        mix.std[c] = r->weights[0] * style->std[c] + r->weights[1] * style2->std[c];
    }
    return mix;
}

/* ---------------------------------------------------------------------------
 * Finishing a result on the device: kept channels, back to sRGB, download
 * ------------------------------------------------------------------------ */

/* x holds the transferred values in the colour space, original the content
 * (or NULL when nothing is kept through a blend). Leaves sRGB in x. */
static bool finish_colours(engine *e, inorm_tensor *x, inorm_tensor *original)
{
    float kept[3];
    kept_channels(e, kept);
    inorm_tensor *weights = NULL;
    bool good = true;
    if (original) {
        good = channel_tensor(e, kept, &weights);
        if (good && luminance_swap(e))  /* rgb: both to L*a*b*, then L* from the content */
            good = ok(e, inorm_color_convert(e->ctx, original, original, INORM_COLOR_SRGB, INORM_COLOR_LAB),
                      "inorm_color_convert") &&
                   ok(e, inorm_color_convert(e->ctx, x, x, INORM_COLOR_SRGB, INORM_COLOR_LAB), "inorm_color_convert");
        good = good && ok(e, inorm_blend(e->ctx, original, x, weights, x), "inorm_blend") && lap(e, STAGE_TRANSFER);
    }
    inorm_color_space from = original && luminance_swap(e) ? INORM_COLOR_LAB : e->space;
    if (good && from != INORM_COLOR_SRGB)
        good = ok(e, inorm_color_convert(e->ctx, x, x, from, INORM_COLOR_SRGB), "inorm_color_convert");
    release(e, &weights);
    return good && lap(e, STAGE_TO_SRGB);
}

static bool download_rows(engine *e, inorm_tensor *x, uint32_t y0, uint32_t rows, float *planes, image *out)
{
    if (!ok(e, inorm_tensor_read(x, planes, (size_t)3 * rows * out->width * sizeof *planes), "inorm_tensor_read"))
        return false;
    planes_to_rows(planes, e->req->content, y0, rows, out);
    return lap(e, STAGE_DOWNLOAD);
}

/* A copy of x on the device, for channels kept from the content. */
static bool device_copy(engine *e, const inorm_tensor *x, uint32_t rows, uint32_t width, inorm_tensor **out)
{
    return new_tensor(e, 3, rows, width, out) && ok(e, inorm_convert(e->ctx, x, *out), "inorm_convert");
}

static bool needs_original(const engine *e)
{
    float kept[3];
    kept_channels(e, kept);
    return kept[0] != 0.0f || kept[1] != 0.0f;
}

/* ---------------------------------------------------------------------------
 * The whole plan: one tensor per image, the library's AdaIN ops
 * ------------------------------------------------------------------------ */

static bool run_whole(engine *e, image *out)
{
    const transfer_request *r = e->req;
    const image *content = r->content;
    const uint32_t w = content->width, h = content->height;
    size_t largest = image_pixels(content);
    const image *others[3] = { r->style, r->style2, r->mask ? r->mask_style : NULL };
    for (int i = 0; i < 3; ++i)
        if (others[i] && image_pixels(others[i]) > largest)
            largest = image_pixels(others[i]);
    float *planes = malloc(largest * 3 * sizeof *planes);  /* host side of every upload and the download */
    if (!planes)
        return fail(e, "out of memory");
    inorm_tensor *x = NULL, *original = NULL, *style = NULL, *style2 = NULL, *mask_style = NULL;
    inorm_tensor *alpha_weights = NULL, *mask = NULL, *inside = NULL, *outside = NULL, *inside_result = NULL;
    double inside_weight = 0.0, outside_weight = 1.0, unused;
    bool good = upload_rows(e, content, 0, h, planes, &x) && (!needs_original(e) || device_copy(e, x, h, w, &original)) &&
                upload_rows(e, r->style, 0, r->style->height, planes, &style) &&
                (!r->style2 || upload_rows(e, r->style2, 0, r->style2->height, planes, &style2)) &&
                (!r->mask || upload_rows(e, r->mask_style, 0, r->mask_style->height, planes, &mask_style));
    if (good && e->content_weighted && !r->mask)
        good = upload_weights(e, content, true, WEIGHT_ALPHA, 0, h, planes, &unused, &alpha_weights);
    if (good && r->mask)
        good = upload_weights(e, content, false, WEIGHT_MASK, 0, h, planes, &unused, &mask) &&
               upload_weights(e, content, e->content_weighted, WEIGHT_INSIDE, 0, h, planes, &inside_weight, &inside) &&
               upload_weights(e, content, e->content_weighted, WEIGHT_OUTSIDE, 0, h, planes, &outside_weight, &outside);
    /* The inside first, into its own tensor; then the rest in place; the mask blends them. */
    const bool both = inside_weight > 0.0 && outside_weight > 0.0;
    if (good && inside_weight > 0.0) {
        inorm_norm_params p = norm_params(e, inside);
        good = (!both || new_tensor(e, 3, h, w, &inside_result)) &&
               ok(e, inorm_adain(e->ctx, x, mask_style, r->alpha, &p, both ? inside_result : x), "inorm_adain");
    }
    if (good && outside_weight > 0.0) {
        inorm_norm_params p = norm_params(e, r->mask ? outside : alpha_weights);
        const inorm_tensor *styles[2] = { style, style2 };
        good = r->style2 ? ok(e, inorm_adain_mix(e->ctx, x, styles, r->weights, 2, r->alpha, &p, x), "inorm_adain_mix")
                         : ok(e, inorm_adain(e->ctx, x, style, r->alpha, &p, x), "inorm_adain");
    }
    if (good && both)
        good = ok(e, inorm_blend(e->ctx, inside_result, x, mask, x), "inorm_blend");
    good = good && lap(e, STAGE_TRANSFER) && finish_colours(e, x, original) && download_rows(e, x, 0, h, planes, out);
    free(planes);
    return good;  /* the tensors go with the engine */
}

/* ---------------------------------------------------------------------------
 * The tiled plan: bands, merged statistics, one affine map per region
 * ------------------------------------------------------------------------ */

/* Uploads the content band by band (they stay on the device), with their
 * statistics: unweighted (band->mean, std) and per region into regions[]. */
static bool content_bands(engine *e, band *bands, uint32_t count, uint32_t rows, moments regions[2], float *planes)
{
    const transfer_request *r = e->req;
    const image *content = r->content;
    for (uint32_t i = 0; i < count; ++i) {
        band *b = &bands[i];
        b->y0 = i * rows;
        b->rows = content->height - b->y0 < rows ? content->height - b->y0 : rows;
        if (!upload_rows(e, content, b->y0, b->rows, planes, &b->x) || !band_stats(e, b->x, NULL, b->mean, b->std))
            return false;
        const double pixels = (double)b->rows * content->width;
        if (!r->mask && !e->content_weighted) {
            moments_merge(&regions[0], pixels, b->mean, b->std, e->eps);
        } else if (!r->mask) {
            inorm_tensor *w = NULL;
            double weight;
            float mean[3], std[3];
            bool good = upload_weights(e, content, true, WEIGHT_ALPHA, b->y0, b->rows, planes, &weight, &w) &&
                        (weight <= 0.0 || band_stats(e, b->x, w, mean, std));
            release(e, &w);
            if (!good)
                return false;
            moments_merge(&regions[0], weight, mean, std, e->eps);
        } else {
            double unused;
            if (!upload_weights(e, content, false, WEIGHT_MASK, b->y0, b->rows, planes, &unused, &b->mask))
                return false;
            for (int k = 0; k < 2; ++k) {  /* 0 outside the mask, 1 inside */
                inorm_tensor *w = NULL;
                double weight;
                float mean[3], std[3];
                bool good = upload_weights(e, content, e->content_weighted, k ? WEIGHT_INSIDE : WEIGHT_OUTSIDE, b->y0,
                                           b->rows, planes, &weight, &w) &&
                            (weight <= 0.0 || band_stats(e, b->x, w, mean, std));
                release(e, &w);
                if (!good)
                    return false;
                moments_merge(&regions[k], weight, mean, std, e->eps);
            }
        }
        if (!lap(e, STAGE_STATISTICS))
            return false;
    }
    return true;
}

/* y = map(x) on one band with inorm_adain_modulate: it normalizes with the
 * band's own statistics (m, s), so scale = a s and bias = b + a m give
 * scale (x - m) / s + bias = a x + b. */
static bool apply_map(engine *e, const band *b, const region_map *map, inorm_tensor *y)
{
    float scale[3], bias[3];
    for (int c = 0; c < 3; ++c) {
        scale[c] = (float)(map->a[c] * b->std[c]);
        bias[c] = (float)(map->b[c] + map->a[c] * b->mean[c]);
    }
    inorm_norm_params p = norm_params(e, NULL);
    return write_floats(e, e->scale, scale, 3) && write_floats(e, e->bias, bias, 3) &&
           ok(e, inorm_adain_modulate(e->ctx, b->x, e->scale, e->bias, &p, y), "inorm_adain_modulate");
}

static bool finish_band(engine *e, band *b, const region_map maps[2], float *planes, image *out)
{
    const uint32_t w = e->req->content->width;
    inorm_tensor *original = NULL, *inside = NULL;
    bool good = !luminance_swap(e) || device_copy(e, b->x, b->rows, w, &original);
    if (good && maps[1].active && maps[0].active)
        good = new_tensor(e, 3, b->rows, w, &inside) && apply_map(e, b, &maps[1], inside) &&
               apply_map(e, b, &maps[0], b->x) && ok(e, inorm_blend(e->ctx, inside, b->x, b->mask, b->x), "inorm_blend");
    else if (good)
        good = apply_map(e, b, maps[1].active ? &maps[1] : &maps[0], b->x);
    good = good && lap(e, STAGE_TRANSFER) && finish_colours(e, b->x, original) &&
           download_rows(e, b->x, b->y0, b->rows, planes, out);
    release(e, &original);
    release(e, &inside);
    release(e, &b->x);
    release(e, &b->mask);
    return good;
}

static bool run_tiled(engine *e, image *out)
{
    const transfer_request *r = e->req;
    const image *content = r->content;
    channel_stats style, style2, mask_style;
    if (!style_stats(e, r->style, &style) || (r->style2 && !style_stats(e, r->style2, &style2)) ||
        (r->mask && !style_stats(e, r->mask_style, &mask_style)))
        return false;
    uint32_t rows;
    if (!rows_per_band(e, content->width, content->height, &rows))
        return false;
    const uint32_t count = (content->height + rows - 1) / rows;
    e->report->bands = count;
    band *bands = calloc(count, sizeof *bands);
    float *planes = malloc((size_t)3 * rows * content->width * sizeof *planes);
    moments regions[2] = { { .weight = 0.0 }, { .weight = 0.0 } };
    bool good = bands && planes && content_bands(e, bands, count, rows, regions, planes);
    if (!bands || !planes)
        good = fail(e, "out of memory");
    region_map maps[2] = { { .active = false }, { .active = false } };
    if (good) {
        channel_stats target = mix_targets(r, &style, &style2);
        channel_stats outside = moments_stats(&regions[0], e->eps), inside = moments_stats(&regions[1], e->eps);
        if (regions[0].weight > 0.0)
            maps[0] = make_map(e, &outside, &target);
        if (r->mask && regions[1].weight > 0.0)
            maps[1] = make_map(e, &inside, &mask_style);
    }
    for (uint32_t i = 0; good && i < count; ++i)
        good = finish_band(e, &bands[i], maps, planes, out);
    free(bands);
    free(planes);
    return good;
}

/* ---------------------------------------------------------------------------
 * Entry
 * ------------------------------------------------------------------------ */

/* Whether the whole plan applies: every image in one tensor, no tiling asked,
 * and no style alpha (inorm_adain_mix takes one style mask for all styles). */
static bool whole_plan_fits(const engine *e)
{
    const transfer_request *r = e->req;
    const image *images[4] = { r->content, r->style, r->style2, r->mask ? r->mask_style : NULL };
    if (r->tile_pixels > 0)
        return false;
    for (int i = 0; i < 4; ++i) {
        if (!images[i])
            continue;
        if ((uint64_t)image_pixels(images[i]) * 3 * sizeof(float) > e->band_bytes || (i > 0 && alpha_weighted(images[i])))
            return false;
    }
    return true;
}

bool transfer_run(inorm_context *ctx, const transfer_request *request, image *out, transfer_report *report,
                  char error[IMAGE_ERROR_SIZE])
{
    static const inorm_color_space spaces[4] = { INORM_COLOR_SRGB, INORM_COLOR_LAB, INORM_COLOR_LAB,
                                                 INORM_COLOR_LALPHABETA };
    /* eps: (a thousandth of the space's range)^2, a floor under the std */
    static const float eps[4] = { 1e-6f, 1e-2f, 1e-2f, 1e-4f };
    memset(report, 0, sizeof *report);
    engine *e = calloc(1, sizeof *e);
    inorm_device_info info;
    const image *content = request->content;
    if (!e) {
        snprintf(error, IMAGE_ERROR_SIZE, "out of memory");
        return false;
    }
    *e = (engine){ .ctx = ctx, .req = request, .report = report, .error = error, .space = spaces[request->space],
                   .eps = eps[request->space], .clock = now_seconds() };
    bool good = ok(e, inorm_context_info(ctx, &info), "inorm_context_info");
    if (good) {
        e->band_bytes = info.max_storage_buffer_range;
        e->content_weighted = alpha_weighted(content);
        if (request->mask && (request->mask->width != content->width || request->mask->height != content->height))
            good = fail(e, "the mask is %ux%u but the content is %ux%u", request->mask->width, request->mask->height,
                        content->width, content->height);
    }
    if (good && !image_alloc(out, content->width, content->height, image_has_alpha(content) ? 4 : 3, content->depth))
        good = fail(e, "out of memory for the %ux%u result", content->width, content->height);
    good = good && new_tensor(e, 3, 1, 1, &e->mean) && new_tensor(e, 3, 1, 1, &e->std) &&
           new_tensor(e, 3, 1, 1, &e->scale) && new_tensor(e, 3, 1, 1, &e->bias);
    if (good) {
        bool whole = whole_plan_fits(e);
        report->plan = whole ? "whole" : "tiled";
        report->bands = 1;
        good = whole ? run_whole(e, out) : run_tiled(e, out);
    }
    for (uint32_t i = 0; i < e->tensor_count; ++i)
        inorm_tensor_destroy(e->tensors[i]);
    free(e);
    if (!good)
        image_free(out);
    return good;
}
