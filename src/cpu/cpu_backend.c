/* The CPU path: plain C, statistics in double with a two-pass (mean, then
 * centred squares) scheme, so its results are the fp32 rounding of nearly
 * exact values. It runs everywhere, Vulkan or not. */
#include "../internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct segment_stats {
    double mean;
    double var;
} segment_stats;

static segment_stats compute_stats(const float *x, size_t len, bool unbiased)
{
    double sum = 0.0;
    for (size_t i = 0; i < len; ++i)
        sum += x[i];
    double mean = sum / (double)len;
    double squares = 0.0;
    for (size_t i = 0; i < len; ++i) {
        double d = x[i] - mean;
        squares += d * d;
    }
    segment_stats s = { mean, squares / (double)(unbiased ? len - 1 : len) };
    return s;
}

static inorm_status cpu_tensor_create(inorm_context *ctx, inorm_tensor *t)
{
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

static inorm_status cpu_tensor_read(inorm_context *ctx, const inorm_tensor *t, void *dst)
{
    (void)ctx;
    memcpy(dst, t->host, t->bytes);
    return INORM_SUCCESS;
}

/* y = a * (x - mean) + b over one channel plane, then the AdaIN blend. */
static void apply_plane(const float *x, float *y, size_t len, double mean, double a, double b, double alpha)
{
    for (size_t i = 0; i < len; ++i) {
        double t = a * ((double)x[i] - mean) + b;
        y[i] = (float)(alpha == 1.0 ? t : (double)x[i] + alpha * (t - (double)x[i]));
    }
}

static inorm_status cpu_run(inorm_context *ctx, const inorm_op *op)
{
    (void)ctx;
    const inorm_tensor_desc *d = &op->x->desc;
    const size_t plane = inorm_plane_len(d);
    const uint32_t channels_per_segment = op->channels_per_segment;
    const size_t segment_len = plane * channels_per_segment;
    const size_t segments = (size_t)d->n * d->c / channels_per_segment;
    const float *x = op->x->host;

    for (size_t seg = 0; seg < segments; ++seg) {
        const float *xs = x + seg * segment_len;
        segment_stats st = compute_stats(xs, segment_len, op->unbiased);
        double std = sqrt(st.var + (double)op->eps);
        if (op->kind == INORM_OP_STATS) {
            if (op->mean_out)
                ((float *)op->mean_out->host)[seg] = (float)st.mean;
            if (op->std_out)
                ((float *)op->std_out->host)[seg] = (float)std;
            continue;
        }
        const size_t n = seg * channels_per_segment / d->c;
        for (uint32_t k = 0; k < channels_per_segment; ++k) {
            const size_t channel = (seg * channels_per_segment + k) % d->c;
            double a, b;
            if (op->kind == INORM_OP_ADAIN) {
                const inorm_tensor_desc *sd = &op->style->desc;
                const size_t style_len = inorm_plane_len(sd);
                const size_t style_plane = (sd->n == 1 ? 0 : n) * sd->c + channel;
                segment_stats ss =
                    compute_stats((const float *)op->style->host + style_plane * style_len, style_len, op->unbiased);
                a = sqrt(ss.var + (double)op->eps) / std;
                b = ss.mean;
            } else {
                const size_t param = op->affine_per_sample ? n * d->c + channel : channel;
                a = (op->gamma ? ((const float *)op->gamma->host)[param] : 1.0) / std;
                b = op->beta ? ((const float *)op->beta->host)[param] : 0.0;
            }
            const size_t offset = seg * segment_len + k * plane;
            apply_plane(x + offset, (float *)op->y->host + offset, plane, st.mean, a, b, op->alpha);
        }
    }
    return INORM_SUCCESS;
}

static inorm_status cpu_finish(inorm_context *ctx)
{
    (void)ctx;
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
