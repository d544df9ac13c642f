/* The CPU path: plain C, statistics in double with a two-pass (mean, then
 * centred squares) scheme, so its results are the rounding of nearly exact
 * values. It runs everywhere, Vulkan or not, for every dtype and layout. */
#include "../internal.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double load(const inorm_tensor *t, size_t i)
{
    if (t->desc.dtype == INORM_FLOAT16)
        return inorm_half_to_float(((const uint16_t *)t->host)[i]);
    return ((const float *)t->host)[i];
}

static void store(inorm_tensor *t, size_t i, double value)
{
    if (t->desc.dtype == INORM_FLOAT16)
        ((uint16_t *)t->host)[i] = inorm_half_from_double(value);
    else
        ((float *)t->host)[i] = (float)value;
}

static double param(const inorm_tensor *t, size_t i)
{
    return ((const float *)t->host)[i];
}

typedef struct segment_stats {
    double mean;
    double std;  /* sqrt(var + eps) */
} segment_stats;

/* Weighted two-pass statistics of `channels` channel planes starting at
 * channel c0 of sample n; values of mask weight 0 are left out. */
static segment_stats compute_stats(const inorm_tensor *t, const inorm_tensor *mask, size_t n, size_t c0,
                                   size_t channels, bool unbiased, float eps)
{
    const size_t plane = inorm_plane_len(&t->desc);
    const float *weights = NULL;
    if (mask)
        weights = (const float *)mask->host + (mask->desc.n == 1 ? 0 : n) * plane;
    double weight = 0.0, sum = 0.0;
    for (size_t c = c0; c < c0 + channels; ++c) {
        for (size_t p = 0; p < plane; ++p) {
            double w = weights ? weights[p] : 1.0;
            if (w != 0.0) {
                weight += w;
                sum += w * load(t, inorm_element_index(&t->desc, n, c, p));
            }
        }
    }
    double mean = sum / weight;
    double squares = 0.0;
    for (size_t c = c0; c < c0 + channels; ++c) {
        for (size_t p = 0; p < plane; ++p) {
            double w = weights ? weights[p] : 1.0;
            if (w != 0.0) {
                double d = load(t, inorm_element_index(&t->desc, n, c, p)) - mean;
                squares += w * d * d;
            }
        }
    }
    double var = squares / (unbiased ? weight - 1.0 : weight);
    segment_stats s = { mean, sqrt(var + (double)eps) };
    return s;
}

static double activate(inorm_activation activation, double slope, double v)
{
    switch (activation) {
    case INORM_ACTIVATION_RELU: return v < 0.0 ? 0.0 : v;
    case INORM_ACTIVATION_LEAKY_RELU: return v < 0.0 ? v * slope : v;
    case INORM_ACTIVATION_SILU: return v / (1.0 + exp(-v));
    case INORM_ACTIVATION_NONE: break;
    }
    return v;
}

/* (a, b) of channel c of sample n: y = a * (x - mean) + b before the blend. */
static void coefficients(const inorm_op *op, const segment_stats *st, size_t n, size_t c, double *a, double *b)
{
    const size_t channels = op->x->desc.c;
    if (op->kind == INORM_OP_ADAIN) {
        const inorm_tensor *style = op->style;
        segment_stats ss = compute_stats(style, op->style_mask, style->desc.n == 1 ? 0 : n, c, 1, op->unbiased,
                                         op->eps);
        *a = ss.std / st->std;
        *b = ss.mean;
        return;
    }
    double g = 1.0, shift = 0.0;
    if (op->affine == INORM_AFFINE_BANK) {
        g = 0.0;
        for (size_t s = 0; s < op->bank_size; ++s) {
            double w = param(op->bank_weights, n * op->bank_size + s);
            g += w * (op->gamma ? param(op->gamma, s * channels + c) : 1.0);
            shift += op->beta ? w * param(op->beta, s * channels + c) : 0.0;
        }
    } else {
        size_t index = op->affine == INORM_AFFINE_SAMPLE ? n * channels + c : c;
        if (op->gamma)
            g = param(op->gamma, index);
        if (op->beta)
            shift = param(op->beta, index);
    }
    *a = g / st->std;
    *b = shift;
}

static void write_stats(const inorm_op *op, size_t segment, size_t segments, const segment_stats *st)
{
    for (size_t r = 0; r < op->out_repeat; ++r) {
        size_t index = r * segments + segment;
        float *mean = op->mean_out ? (float *)op->mean_out->host + index : NULL;
        float *std = op->std_out ? (float *)op->std_out->host + index : NULL;
        if (mean)
            *mean = (float)((op->accumulate ? *mean : 0.0) + op->out_weight * st->mean);
        if (std)
            *std = (float)((op->accumulate ? *std : 0.0) + op->out_weight * st->std);
    }
}

static void convert(const inorm_op *op)
{
    const inorm_tensor_desc *d = &op->x->desc;
    const size_t plane = inorm_plane_len(d);
    for (size_t n = 0; n < d->n; ++n)
        for (size_t c = 0; c < d->c; ++c)
            for (size_t p = 0; p < plane; ++p)
                store(op->y, inorm_element_index(&op->y->desc, n, c, p),
                      load(op->x, inorm_element_index(d, n, c, p)));
}

static void run_op(const inorm_op *op)
{
    const inorm_tensor_desc *d = &op->x->desc;
    if (op->kind == INORM_OP_CONVERT) {
        convert(op);
        return;
    }
    const size_t plane = inorm_plane_len(d);
    const size_t cps = op->channels_per_segment;
    const size_t groups = d->c / cps;
    for (size_t n = 0; n < d->n; ++n) {
        for (size_t g = 0; g < groups; ++g) {
            segment_stats st = compute_stats(op->x, op->mask, n, g * cps, cps, op->unbiased, op->eps);
            if (op->kind == INORM_OP_STATS) {
                write_stats(op, n * groups + g, (size_t)d->n * groups, &st);
                continue;
            }
            for (size_t c = g * cps; c < (g + 1) * cps; ++c) {
                double a, b;
                coefficients(op, &st, n, c, &a, &b);
                for (size_t p = 0; p < plane; ++p) {
                    size_t i = inorm_element_index(d, n, c, p);
                    double v = load(op->x, i);
                    double t = a * (v - st.mean) + b;
                    if (op->alpha != 1.0f)
                        t = v + op->alpha * (t - v);
                    store(op->y, i, activate(op->activation, op->activation_slope, t));
                }
            }
        }
    }
}

static double seconds_now(void)
{
    struct timespec now;
    timespec_get(&now, TIME_UTC);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

static inorm_status cpu_run(inorm_context *ctx, const inorm_op *op)
{
    double start = ctx->profiling ? seconds_now() : 0.0;
    /* two passes for the statistics, one to read and write */
    double passes = op->kind == INORM_OP_CONVERT ? 1.0 : op->kind == INORM_OP_STATS ? 2.0 : 3.0;
    ctx->last_plan = (inorm_plan_info){ .variant = "cpu: double two-pass", .dispatches = 0,
                                        .bytes_moved = passes * (double)op->x->bytes + (op->y ? (double)op->y->bytes : 0.0) };
    run_op(op);
    if (ctx->profiling)
        ctx->pending_seconds += seconds_now() - start;
    return INORM_SUCCESS;
}

static inorm_status cpu_tensor_create(inorm_context *ctx, inorm_tensor *t)
{
    /* Beyond PTRDIFF_MAX no allocation can succeed (and malloc's behaviour is
     * a sanitizer's business): refuse it as the out-of-memory it is. */
    if (t->bytes > PTRDIFF_MAX)
        return inorm_fail(ctx, INORM_ERROR_OUT_OF_HOST_MEMORY, "a tensor of %zu bytes exceeds the address space",
                          t->bytes);
    t->host = malloc(t->bytes);
    if (!t->host)
        return inorm_fail(ctx, INORM_ERROR_OUT_OF_HOST_MEMORY, "out of host memory allocating %zu bytes", t->bytes);
    return INORM_SUCCESS;
}

static void cpu_tensor_destroy(inorm_context *ctx, inorm_tensor *t)
{
    (void)ctx;
    free(t->host);
    t->host = NULL;
}

static inorm_status cpu_tensor_write(inorm_context *ctx, inorm_tensor *t, const void *src)
{
    (void)ctx;
    memcpy(t->host, src, t->bytes);
    return INORM_SUCCESS;
}

static inorm_status cpu_finish(inorm_context *ctx);

static inorm_status cpu_tensor_read(inorm_context *ctx, const inorm_tensor *t, void *dst)
{
    cpu_finish(ctx);
    memcpy(dst, t->host, t->bytes);
    return INORM_SUCCESS;
}

static inorm_status cpu_finish(inorm_context *ctx)
{
    if (ctx->profiling && ctx->pending_seconds > 0.0) {
        ctx->last_device_seconds = ctx->pending_seconds;
        ctx->pending_seconds = 0.0;
    }
    return INORM_SUCCESS;
}

const inorm_backend_ops inorm_cpu_backend = {
    .tensor_create = cpu_tensor_create,
    .tensor_destroy = cpu_tensor_destroy,
    .tensor_write = cpu_tensor_write,
    .tensor_read = cpu_tensor_read,
    .run = cpu_run,
    .finish = cpu_finish,
    .context_destroy = NULL,
};
