/* Public op entry points: every argument is checked here, once, then the op
 * is handed to the context's backend as an inorm_op. */
#include "internal.h"

#include <math.h>
#include <stdio.h>

static const inorm_norm_params default_params = INORM_NORM_PARAMS_DEFAULT;

static inorm_status check_context(inorm_context *ctx)
{
    if (!ctx)
        return INORM_ERROR_INVALID_ARGUMENT;
    if (ctx->sticky_status != INORM_SUCCESS)
        return inorm_fail(ctx, ctx->sticky_status, "the device was lost earlier; destroy this context");
    inorm_clear_error(ctx);
    return INORM_SUCCESS;
}

static inorm_status check_tensor(inorm_context *ctx, const char *fn, const char *name, const inorm_tensor *t,
                                 bool optional)
{
    if (!t) {
        if (optional)
            return INORM_SUCCESS;
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: %s is NULL", fn, name);
    }
    if (t->ctx != ctx)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: %s belongs to another context", fn, name);
    return INORM_SUCCESS;
}

/* Data tensors (x, y, style): this version computes FLOAT32 NCHW only. */
static inorm_status check_data_format(inorm_context *ctx, const char *fn, const char *name, const inorm_tensor *t)
{
    if (t->desc.dtype != INORM_FLOAT32)
        return inorm_fail(ctx, INORM_ERROR_UNSUPPORTED, "%s: %s is FLOAT16; this version computes FLOAT32 tensors only",
                          fn, name);
    if (t->desc.layout != INORM_NCHW)
        return inorm_fail(ctx, INORM_ERROR_UNSUPPORTED, "%s: %s is NHWC; this version computes NCHW tensors only", fn,
                          name);
    return INORM_SUCCESS;
}

/* Parameter tensors: FLOAT32 of shape n x c x 1 x 1. */
static inorm_status check_param_tensor(inorm_context *ctx, const char *fn, const char *name, const inorm_tensor *t,
                                       uint32_t n, uint32_t c)
{
    if (!t)
        return INORM_SUCCESS;
    inorm_status status = check_tensor(ctx, fn, name, t, false);
    if (status != INORM_SUCCESS)
        return status;
    const inorm_tensor_desc *d = &t->desc;
    if (d->n != n || d->c != c || d->h != 1 || d->w != 1)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: %s is %ux%ux%ux%u but must be %ux%ux1x1", fn, name,
                          d->n, d->c, d->h, d->w, n, c);
    if (d->dtype != INORM_FLOAT32)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: %s must be FLOAT32", fn, name);
    return INORM_SUCCESS;
}

static inorm_status resolve_params(inorm_context *ctx, const char *fn, const inorm_norm_params *p, inorm_op *op)
{
    if (!p)
        p = &default_params;
    if (!isfinite(p->eps) || p->eps < 0.0f)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: eps is %g; it must be finite and >= 0", fn,
                          (double)p->eps);
    op->eps = p->eps;
    op->unbiased = p->unbiased != 0;
    return INORM_SUCCESS;
}

static inorm_status check_unbiased_count(inorm_context *ctx, const char *fn, const char *name, const inorm_op *op,
                                         uint64_t count)
{
    if (op->unbiased && count < 2)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT,
                          "%s: unbiased variance needs at least 2 values per statistic, but each plane of %s has %llu",
                          fn, name, (unsigned long long)count);
    return INORM_SUCCESS;
}

static bool same_shape(const inorm_tensor_desc *a, const inorm_tensor_desc *b)
{
    return a->n == b->n && a->c == b->c && a->h == b->h && a->w == b->w && a->dtype == b->dtype &&
           a->layout == b->layout;
}

/* Checks x and y and fills the op fields they determine. */
static inorm_status check_input_output(inorm_context *ctx, const char *fn, const inorm_tensor *x, inorm_tensor *y,
                                       inorm_op *op)
{
    inorm_status status = check_tensor(ctx, fn, "x", x, false);
    if (status == INORM_SUCCESS)
        status = check_tensor(ctx, fn, "y", y, false);
    if (status == INORM_SUCCESS)
        status = check_data_format(ctx, fn, "x", x);
    if (status != INORM_SUCCESS)
        return status;
    if (!same_shape(&x->desc, &y->desc))
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT,
                          "%s: y (%ux%ux%ux%u) must have the shape, dtype and layout of x (%ux%ux%ux%u)", fn,
                          y->desc.n, y->desc.c, y->desc.h, y->desc.w, x->desc.n, x->desc.c, x->desc.h, x->desc.w);
    op->x = x;
    op->y = y;
    return INORM_SUCCESS;
}

static inorm_status check_not_aliased(inorm_context *ctx, const char *fn, const inorm_tensor *output,
                                      const char *output_name, const inorm_tensor *input, const char *input_name)
{
    if (input && input == output)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: %s is also %s; an output may only overwrite x", fn,
                          output_name, input_name);
    return INORM_SUCCESS;
}

static inorm_status run_normalize(inorm_context *ctx, const char *fn, const inorm_tensor *x, uint32_t groups,
                                  const inorm_tensor *gamma, const inorm_tensor *beta, bool per_sample,
                                  const inorm_norm_params *p, inorm_tensor *y)
{
    inorm_op op = { .kind = INORM_OP_NORMALIZE, .affine_per_sample = per_sample, .alpha = 1.0f };
    inorm_status status = check_input_output(ctx, fn, x, y, &op);
    if (status != INORM_SUCCESS)
        return status;
    uint32_t param_n = per_sample ? x->desc.n : 1;
    const char *gamma_name = per_sample ? "scale" : "gamma";
    const char *beta_name = per_sample ? "bias" : "beta";
    if ((status = check_param_tensor(ctx, fn, gamma_name, gamma, param_n, x->desc.c)) != INORM_SUCCESS ||
        (status = check_param_tensor(ctx, fn, beta_name, beta, param_n, x->desc.c)) != INORM_SUCCESS ||
        (status = check_not_aliased(ctx, fn, y, "y", gamma, gamma_name)) != INORM_SUCCESS ||
        (status = check_not_aliased(ctx, fn, y, "y", beta, beta_name)) != INORM_SUCCESS ||
        (status = resolve_params(ctx, fn, p, &op)) != INORM_SUCCESS)
        return status;
    if (groups == 0 || x->desc.c % groups != 0)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: groups is %u; it must be >= 1 and divide C = %u", fn,
                          groups, x->desc.c);
    op.channels_per_segment = x->desc.c / groups;
    status = check_unbiased_count(ctx, fn, "x", &op, (uint64_t)op.channels_per_segment * inorm_plane_len(&x->desc));
    if (status != INORM_SUCCESS)
        return status;
    op.gamma = gamma;
    op.beta = beta;
    return ctx->backend->run(ctx, &op);
}

inorm_status inorm_instance_norm(inorm_context *ctx, const inorm_tensor *x, const inorm_tensor *gamma,
                                 const inorm_tensor *beta, const inorm_norm_params *p, inorm_tensor *y)
{
    inorm_status status = check_context(ctx);
    if (status != INORM_SUCCESS)
        return status;
    uint32_t channels = x ? x->desc.c : 1;
    return run_normalize(ctx, "inorm_instance_norm", x, channels, gamma, beta, false, p, y);
}

inorm_status inorm_group_norm(inorm_context *ctx, const inorm_tensor *x, uint32_t groups, const inorm_tensor *gamma,
                              const inorm_tensor *beta, const inorm_norm_params *p, inorm_tensor *y)
{
    inorm_status status = check_context(ctx);
    if (status != INORM_SUCCESS)
        return status;
    return run_normalize(ctx, "inorm_group_norm", x, groups, gamma, beta, false, p, y);
}

inorm_status inorm_adain_modulate(inorm_context *ctx, const inorm_tensor *x, const inorm_tensor *scale,
                                  const inorm_tensor *bias, const inorm_norm_params *p, inorm_tensor *y)
{
    const char *fn = "inorm_adain_modulate";
    inorm_status status = check_context(ctx);
    if (status != INORM_SUCCESS)
        return status;
    if (!scale)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: scale is NULL", fn);
    uint32_t channels = x ? x->desc.c : 1;
    return run_normalize(ctx, fn, x, channels, scale, bias, true, p, y);
}

inorm_status inorm_adain(inorm_context *ctx, const inorm_tensor *content, const inorm_tensor *style, float alpha,
                         const inorm_norm_params *p, inorm_tensor *y)
{
    const char *fn = "inorm_adain";
    inorm_status status = check_context(ctx);
    if (status != INORM_SUCCESS)
        return status;
    inorm_op op = { .kind = INORM_OP_ADAIN, .channels_per_segment = 1, .alpha = alpha };
    if ((status = check_input_output(ctx, fn, content, y, &op)) != INORM_SUCCESS ||
        (status = check_tensor(ctx, fn, "style", style, false)) != INORM_SUCCESS ||
        (status = check_data_format(ctx, fn, "style", style)) != INORM_SUCCESS ||
        (status = check_not_aliased(ctx, fn, y, "y", style, "style")) != INORM_SUCCESS ||
        (status = resolve_params(ctx, fn, p, &op)) != INORM_SUCCESS)
        return status;
    const inorm_tensor_desc *c = &content->desc, *s = &style->desc;
    if (s->c != c->c || (s->n != c->n && s->n != 1))
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT,
                          "%s: style is %ux%ux%ux%u; it needs C = %u and N = %u or 1 to match the content", fn, s->n,
                          s->c, s->h, s->w, c->c, c->n);
    if (!isfinite(alpha))
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: alpha is %g; it must be finite", fn, (double)alpha);
    if ((status = check_unbiased_count(ctx, fn, "content", &op, inorm_plane_len(c))) != INORM_SUCCESS ||
        (status = check_unbiased_count(ctx, fn, "style", &op, inorm_plane_len(s))) != INORM_SUCCESS)
        return status;
    op.style = style;
    return ctx->backend->run(ctx, &op);
}

inorm_status inorm_stats(inorm_context *ctx, const inorm_tensor *x, const inorm_norm_params *p, inorm_tensor *mean,
                         inorm_tensor *std)
{
    const char *fn = "inorm_stats";
    inorm_status status = check_context(ctx);
    if (status != INORM_SUCCESS)
        return status;
    inorm_op op = { .kind = INORM_OP_STATS, .channels_per_segment = 1, .alpha = 1.0f };
    if ((status = check_tensor(ctx, fn, "x", x, false)) != INORM_SUCCESS ||
        (status = check_data_format(ctx, fn, "x", x)) != INORM_SUCCESS)
        return status;
    if (!mean && !std)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: mean and std are both NULL; nothing to compute", fn);
    if (mean && mean == std)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: mean and std are the same tensor", fn);
    if ((status = check_param_tensor(ctx, fn, "mean", mean, x->desc.n, x->desc.c)) != INORM_SUCCESS ||
        (status = check_param_tensor(ctx, fn, "std", std, x->desc.n, x->desc.c)) != INORM_SUCCESS ||
        (status = check_not_aliased(ctx, fn, mean, "mean", x, "x")) != INORM_SUCCESS ||
        (status = check_not_aliased(ctx, fn, std, "std", x, "x")) != INORM_SUCCESS ||
        (status = resolve_params(ctx, fn, p, &op)) != INORM_SUCCESS ||
        (status = check_unbiased_count(ctx, fn, "x", &op, inorm_plane_len(&x->desc))) != INORM_SUCCESS)
        return status;
    op.x = x;
    op.mean_out = mean;
    op.std_out = std;
    return ctx->backend->run(ctx, &op);
}
