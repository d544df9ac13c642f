/* Public op entry points: every argument is checked here, once, then the op
 * is handed to the context's backend as an inorm_op. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const inorm_norm_params default_params = INORM_NORM_PARAMS_DEFAULT;

/* Samples one statistics op writes a broadcast style's values to. */
#define REPEAT_SLICE 4096u

static inorm_status check_context(inorm_context *ctx)
{
    if (!ctx)
        return INORM_ERROR_INVALID_ARGUMENT;
    if (ctx->sticky_status != INORM_SUCCESS)
        return inorm_fail(ctx, ctx->sticky_status, "the device was lost earlier; destroy this context");
    inorm_clear_error(ctx);
    return INORM_SUCCESS;
}

static inorm_status check_tensor(inorm_context *ctx, const char *fn, const char *name, const inorm_tensor *t)
{
    if (!t)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: %s is NULL", fn, name);
    if (t->ctx != ctx)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: %s belongs to another context", fn, name);
    return INORM_SUCCESS;
}

static const char *dtype_name(inorm_dtype dtype) { return dtype == INORM_FLOAT16 ? "FLOAT16" : "FLOAT32"; }
static const char *layout_name(inorm_layout layout) { return layout == INORM_NHWC ? "NHWC" : "NCHW"; }

/* A tensor of FLOAT32 values of shape n x c x h x w (any layout: with one
 * channel or one pixel both layouts are the same memory). */
static inorm_status check_float_tensor(inorm_context *ctx, const char *fn, const char *name, const inorm_tensor *t,
                                       uint32_t n, uint32_t c, uint32_t h, uint32_t w)
{
    inorm_status status = check_tensor(ctx, fn, name, t);
    if (status != INORM_SUCCESS)
        return status;
    const inorm_tensor_desc *d = &t->desc;
    if (d->n != n || d->c != c || d->h != h || d->w != w)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: %s is %ux%ux%ux%u but must be %ux%ux%ux%u", fn,
                          name, d->n, d->c, d->h, d->w, n, c, h, w);
    if (d->dtype != INORM_FLOAT32)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: %s is FLOAT16; parameter tensors are FLOAT32", fn,
                          name);
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

/* Checks a mask's shape against the data tensor it weights, and its values:
 * finite, in [0, 1], and not all zero for any sample (more than 1 in total
 * per statistic when unbiased). Values are read back once per change of the
 * mask (its generation). */
static inorm_status check_mask(inorm_context *ctx, const char *fn, const char *name, const inorm_tensor *mask,
                               const inorm_tensor *data, uint32_t values_per_pixel, bool unbiased)
{
    if (!mask)
        return INORM_SUCCESS;
    const inorm_tensor_desc *d = &data->desc;
    inorm_status status = check_tensor(ctx, fn, name, mask);
    if (status != INORM_SUCCESS)
        return status;
    const inorm_tensor_desc *m = &mask->desc;
    if ((m->n != d->n && m->n != 1) || m->c != 1 || m->h != d->h || m->w != d->w || m->dtype != INORM_FLOAT32)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT,
                          "%s: %s is %s %ux%ux%ux%u; it must be FLOAT32 %ux1x%ux%u or 1x1x%ux%u", fn, name,
                          dtype_name(m->dtype), m->n, m->c, m->h, m->w, d->n, d->h, d->w, d->h, d->w);
    if ((mask->mask_checked_generation == mask->generation + 1 && !unbiased) || ctx->deferred_checks)
        return INORM_SUCCESS;  /* checked since its last change, or not readable while recording (see inorm.h) */
    float *values = inorm_malloc(mask->bytes);
    if (!values)
        return inorm_fail(ctx, INORM_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory checking %s", fn, name);
    status = ctx->backend->tensor_read(ctx, mask, values);
    const size_t plane = (size_t)m->h * m->w;
    for (size_t n = 0; status == INORM_SUCCESS && n < m->n; ++n) {
        double sum = 0.0;
        for (size_t p = 0; p < plane; ++p) {
            float w = values[n * plane + p];
            if (!(w >= 0.0f && w <= 1.0f)) {
                status = inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT,
                                    "%s: %s[%zu, 0, %zu, %zu] is %g; mask weights must be in [0, 1]", fn, name, n,
                                    p / m->w, p % m->w, (double)w);
                break;
            }
            sum += w;
        }
        if (status == INORM_SUCCESS && sum * values_per_pixel <= (unbiased ? 1.0 : 0.0))
            status = inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT,
                                unbiased ? "%s: %s of sample %zu weighs %g in total; unbiased variance needs more than 1"
                                         : "%s: %s of sample %zu is all zero; its statistics would be 0/0",
                                fn, name, n, sum * values_per_pixel);
    }
    inorm_free(values);
    if (status == INORM_SUCCESS && !unbiased)
        ((inorm_tensor *)mask)->mask_checked_generation = mask->generation + 1;
    return status;
}

static inorm_status resolve_params(inorm_context *ctx, const char *fn, const inorm_norm_params *p, inorm_op *op)
{
    if (!p)
        p = &default_params;
    if (!isfinite(p->eps) || p->eps < 0.0f)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: eps is %g; it must be finite and >= 0", fn,
                          (double)p->eps);
    if (p->activation < INORM_ACTIVATION_NONE || p->activation > INORM_ACTIVATION_SILU)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: activation is %d, not an inorm_activation", fn,
                          (int)p->activation);
    if (p->activation == INORM_ACTIVATION_LEAKY_RELU && !isfinite(p->activation_slope))
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: activation_slope is %g; it must be finite", fn,
                          (double)p->activation_slope);
    op->eps = p->eps;
    op->unbiased = p->unbiased != 0;
    op->activation = op->kind == INORM_OP_STATS ? INORM_ACTIVATION_NONE : p->activation;
    op->activation_slope = p->activation_slope;
    op->mask = p->mask;
    op->style_mask = p->style_mask;
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

/* x, its params, and y with x's shape, dtype and layout. */
static inorm_status check_input_output(inorm_context *ctx, const char *fn, const inorm_tensor *x, inorm_tensor *y,
                                       const inorm_norm_params *p, inorm_op *op)
{
    inorm_status status = check_tensor(ctx, fn, "x", x);
    if (status == INORM_SUCCESS && op->kind != INORM_OP_STATS)
        status = check_tensor(ctx, fn, "y", y);
    if (status == INORM_SUCCESS)
        status = resolve_params(ctx, fn, p, op);
    if (status != INORM_SUCCESS)
        return status;
    const inorm_tensor_desc *a = &x->desc;
    if (y && (a->n != y->desc.n || a->c != y->desc.c || a->h != y->desc.h || a->w != y->desc.w ||
              a->dtype != y->desc.dtype || a->layout != y->desc.layout))
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT,
                          "%s: y (%s %s %ux%ux%ux%u) must have the shape, dtype and layout of x (%s %s %ux%ux%ux%u)",
                          fn, dtype_name(y->desc.dtype), layout_name(y->desc.layout), y->desc.n, y->desc.c, y->desc.h,
                          y->desc.w, dtype_name(a->dtype), layout_name(a->layout), a->n, a->c, a->h, a->w);
    if ((status = check_not_aliased(ctx, fn, y, "y", op->mask, "mask")) != INORM_SUCCESS ||
        (status = check_not_aliased(ctx, fn, y, "y", op->style_mask, "style_mask")) != INORM_SUCCESS)
        return status;
    op->x = x;
    op->y = y;
    return INORM_SUCCESS;
}

/* A style for x: x's C, dtype and layout, N equal or 1. */
static inorm_status check_style(inorm_context *ctx, const char *fn, const char *name, const inorm_tensor *style,
                                const inorm_op *op)
{
    inorm_status status = check_tensor(ctx, fn, name, style);
    if (status == INORM_SUCCESS)
        status = check_not_aliased(ctx, fn, op->y, "y", style, name);
    if (status != INORM_SUCCESS)
        return status;
    const inorm_tensor_desc *c = &op->x->desc, *s = &style->desc;
    if (s->c != c->c || (s->n != c->n && s->n != 1))
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT,
                          "%s: %s is %ux%ux%ux%u; it needs C = %u and N = %u or 1 to match the content", fn, name,
                          s->n, s->c, s->h, s->w, c->c, c->n);
    if (s->dtype != c->dtype || s->layout != c->layout)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: %s is %s %s but the content is %s %s", fn, name,
                          dtype_name(s->dtype), layout_name(s->layout), dtype_name(c->dtype), layout_name(c->layout));
    status = check_unbiased_count(ctx, fn, name, op, inorm_plane_len(s));
    if (status == INORM_SUCCESS)
        status = check_mask(ctx, fn, "style_mask", op->style_mask, style, 1, op->unbiased);
    return status;
}

static void mark_written(inorm_tensor *t)
{
    if (t)
        t->generation++;
}

static inorm_status run(inorm_context *ctx, inorm_op *op)
{
    mark_written(op->y);
    mark_written(op->mean_out);
    mark_written(op->std_out);
    return ctx->backend->run(ctx, op);
}

/* Shared by instance, group, layer norm, modulate and conditional IN. */
static inorm_status run_normalize(inorm_context *ctx, const char *fn, inorm_op *op, const inorm_tensor *x,
                                  uint32_t groups, const inorm_norm_params *p, inorm_tensor *y)
{
    inorm_status status = check_input_output(ctx, fn, x, y, p, op);
    if (status != INORM_SUCCESS)
        return status;
    const uint32_t channels = x->desc.c;
    const char *gamma_name = op->affine == INORM_AFFINE_SAMPLE ? "scale"
                           : op->affine == INORM_AFFINE_BANK   ? "gamma_bank"
                                                               : "gamma";
    const char *beta_name = op->affine == INORM_AFFINE_SAMPLE ? "bias"
                          : op->affine == INORM_AFFINE_BANK   ? "beta_bank"
                                                              : "beta";
    const uint32_t param_rows = op->affine == INORM_AFFINE_SAMPLE ? x->desc.n
                              : op->affine == INORM_AFFINE_BANK   ? op->bank_size
                                                                  : 1;
    if ((op->gamma && (status = check_float_tensor(ctx, fn, gamma_name, op->gamma, param_rows, channels, 1, 1))) ||
        (op->beta && (status = check_float_tensor(ctx, fn, beta_name, op->beta, param_rows, channels, 1, 1))) ||
        (status = check_not_aliased(ctx, fn, y, "y", op->gamma, gamma_name)) != INORM_SUCCESS ||
        (status = check_not_aliased(ctx, fn, y, "y", op->beta, beta_name)) != INORM_SUCCESS ||
        (status = check_not_aliased(ctx, fn, y, "y", op->bank_weights, "style_weights")) != INORM_SUCCESS)
        return status;
    if (groups == 0 || channels % groups != 0)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: groups is %u; it must be >= 1 and divide C = %u", fn,
                          groups, channels);
    op->channels_per_segment = channels / groups;
    if ((status = check_unbiased_count(ctx, fn, "x", op,
                                       (uint64_t)op->channels_per_segment * inorm_plane_len(&x->desc))) ||
        (status = check_mask(ctx, fn, "mask", op->mask, x, op->channels_per_segment, op->unbiased)))
        return status;
    if (op->style_mask)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: style_mask is set but this op has no style", fn);
    return run(ctx, op);
}

/* Instance, group and layer norm: statistics over `groups` groups of
 * channels, per-channel gamma and beta. */
static inorm_status run_channel_norm(inorm_context *ctx, const char *fn, const inorm_tensor *x, uint32_t groups,
                                     const inorm_tensor *gamma, const inorm_tensor *beta, const inorm_norm_params *p,
                                     inorm_tensor *y)
{
    inorm_status status = check_context(ctx);
    if (status != INORM_SUCCESS)
        return status;
    inorm_op op = { .kind = INORM_OP_NORMALIZE, .affine = INORM_AFFINE_CHANNEL, .gamma = gamma, .beta = beta,
                    .alpha = 1.0f };
    return run_normalize(ctx, fn, &op, x, groups, p, y);
}

inorm_status inorm_instance_norm(inorm_context *ctx, const inorm_tensor *x, const inorm_tensor *gamma,
                                 const inorm_tensor *beta, const inorm_norm_params *p, inorm_tensor *y)
{
    return run_channel_norm(ctx, "inorm_instance_norm", x, x ? x->desc.c : 1, gamma, beta, p, y);
}

inorm_status inorm_group_norm(inorm_context *ctx, const inorm_tensor *x, uint32_t groups, const inorm_tensor *gamma,
                              const inorm_tensor *beta, const inorm_norm_params *p, inorm_tensor *y)
{
    return run_channel_norm(ctx, "inorm_group_norm", x, groups, gamma, beta, p, y);
}

inorm_status inorm_layer_norm(inorm_context *ctx, const inorm_tensor *x, const inorm_tensor *gamma,
                              const inorm_tensor *beta, const inorm_norm_params *p, inorm_tensor *y)
{
    return run_channel_norm(ctx, "inorm_layer_norm", x, 1, gamma, beta, p, y);
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
    inorm_op op = { .kind = INORM_OP_NORMALIZE, .affine = INORM_AFFINE_SAMPLE, .gamma = scale, .beta = bias,
                    .alpha = 1.0f };
    return run_normalize(ctx, fn, &op, x, x ? x->desc.c : 1, p, y);
}

inorm_status inorm_conditional_instance_norm(inorm_context *ctx, const inorm_tensor *x, const inorm_tensor *gamma_bank,
                                             const inorm_tensor *beta_bank, const inorm_tensor *style_weights,
                                             const inorm_norm_params *p, inorm_tensor *y)
{
    const char *fn = "inorm_conditional_instance_norm";
    inorm_status status = check_context(ctx);
    if (status != INORM_SUCCESS)
        return status;
    if ((status = check_tensor(ctx, fn, "gamma_bank", gamma_bank)) != INORM_SUCCESS ||
        (status = check_tensor(ctx, fn, "style_weights", style_weights)) != INORM_SUCCESS ||
        (status = check_tensor(ctx, fn, "x", x)) != INORM_SUCCESS)
        return status;
    uint32_t bank_size = gamma_bank->desc.n;
    if (bank_size > INORM_MAX_STYLES)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: gamma_bank has %u styles; at most %d", fn,
                          bank_size, INORM_MAX_STYLES);
    if ((status = check_float_tensor(ctx, fn, "style_weights", style_weights, x->desc.n, bank_size, 1, 1)))
        return status;
    inorm_op op = { .kind = INORM_OP_NORMALIZE, .affine = INORM_AFFINE_BANK, .gamma = gamma_bank, .beta = beta_bank,
                    .bank_weights = style_weights, .bank_size = bank_size, .alpha = 1.0f };
    return run_normalize(ctx, fn, &op, x, x->desc.c, p, y);
}

inorm_status inorm_adain(inorm_context *ctx, const inorm_tensor *content, const inorm_tensor *style, float alpha,
                         const inorm_norm_params *p, inorm_tensor *y)
{
    const char *fn = "inorm_adain";
    inorm_status status = check_context(ctx);
    if (status != INORM_SUCCESS)
        return status;
    inorm_op op = { .kind = INORM_OP_ADAIN, .channels_per_segment = 1, .alpha = alpha };
    if ((status = check_input_output(ctx, fn, content, y, p, &op)) != INORM_SUCCESS)
        return status;
    if (!isfinite(alpha))
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: alpha is %g; it must be finite", fn, (double)alpha);
    if ((status = check_style(ctx, fn, "style", style, &op)) != INORM_SUCCESS ||
        (status = check_unbiased_count(ctx, fn, "content", &op, inorm_plane_len(&content->desc))) ||
        (status = check_mask(ctx, fn, "mask", op.mask, content, 1, op.unbiased)))
        return status;
    op.style = style;
    return run(ctx, &op);
}

/* The context's N x C FLOAT32 tensors that hold a style mix's target
 * statistics, reused while the shape stays. */
static inorm_status mix_targets(inorm_context *ctx, uint32_t n, uint32_t c, inorm_tensor **mean, inorm_tensor **std)
{
    inorm_tensor **targets = ctx->mix_targets;
    if (targets[0] && (targets[0]->desc.n != n || targets[0]->desc.c != c)) {
        inorm_tensor_destroy(targets[0]);
        inorm_tensor_destroy(targets[1]);
        targets[0] = targets[1] = NULL;
    }
    inorm_tensor_desc desc = { n, c, 1, 1, INORM_FLOAT32, INORM_NCHW };
    inorm_status status = INORM_SUCCESS;
    for (int i = 0; i < 2 && status == INORM_SUCCESS; ++i)
        if (!targets[i])
            status = inorm_tensor_create(ctx, &desc, &targets[i]);
    *mean = targets[0];
    *std = targets[1];
    return status;
}

/* AdaIN towards weighted style statistics, as two steps on the device: each
 * style's (mean, std) weighted into two N x C tensors, then the content is
 * modulated towards them. `normalize` is the validated NORMALIZE op for the
 * content (its style_mask applies to every style). */
static inorm_status run_style_mix(inorm_context *ctx, const inorm_op *normalize, const inorm_tensor *const *styles,
                                  const float *weights, uint32_t count)
{
    const inorm_tensor_desc *content = &normalize->x->desc;
    inorm_tensor *target_mean, *target_std;
    inorm_status status = mix_targets(ctx, content->n, content->c, &target_mean, &target_std);
    if (status != INORM_SUCCESS)
        return status;
    /* the plan reported is the sum of the steps' */
    uint32_t dispatches = 0;
    double bytes = 0.0;
    for (uint32_t k = 0; k < count; ++k) {
        /* A style of N 1 is written to every sample, in slices, so that no
         * kernel loops over all N samples (lavapipe ends long loops silently). */
        const uint32_t repeats = styles[k]->desc.n == content->n ? 1 : content->n;
        for (uint32_t first = 0; first < repeats; first += REPEAT_SLICE) {
            inorm_op stats = {
                .kind = INORM_OP_STATS, .x = styles[k], .mask = normalize->style_mask, .mean_out = target_mean,
                .std_out = target_std, .channels_per_segment = 1, .eps = normalize->eps,
                .unbiased = normalize->unbiased, .alpha = 1.0f, .out_weight = weights[k], .accumulate = k > 0,
                .out_repeat = repeats - first < REPEAT_SLICE ? repeats - first : REPEAT_SLICE,
                .out_repeat_first = first,
            };
            if ((status = run(ctx, &stats)) != INORM_SUCCESS)
                return status;
            dispatches += ctx->last_plan.dispatches;
            bytes += ctx->last_plan.bytes_moved;
        }
    }
    inorm_op op = *normalize;
    op.kind = INORM_OP_NORMALIZE;
    op.affine = INORM_AFFINE_SAMPLE;
    op.gamma = target_std;
    op.beta = target_mean;
    op.style = NULL;
    op.style_mask = NULL;
    if ((status = run(ctx, &op)) != INORM_SUCCESS)
        return status;
    inorm_plan_info *plan = &ctx->last_plan;
    char last[sizeof plan->variant];
    memcpy(last, plan->variant, sizeof last);
    snprintf(plan->variant, sizeof plan->variant, "style statistics, then %.70s", last);
    plan->dispatches += dispatches;
    plan->bytes_moved += bytes;
    return INORM_SUCCESS;
}

inorm_status inorm_adain_as_style_mix(inorm_context *ctx, const inorm_op *adain)
{
    const float weight = 1.0f;
    return run_style_mix(ctx, adain, &adain->style, &weight, 1);
}

inorm_status inorm_adain_mix(inorm_context *ctx, const inorm_tensor *content, const inorm_tensor *const *styles,
                             const float *weights, uint32_t count, float alpha, const inorm_norm_params *p,
                             inorm_tensor *y)
{
    const char *fn = "inorm_adain_mix";
    inorm_status status = check_context(ctx);
    if (status != INORM_SUCCESS)
        return status;
    inorm_op op = { .kind = INORM_OP_NORMALIZE, .affine = INORM_AFFINE_SAMPLE, .channels_per_segment = 1,
                    .alpha = alpha };
    if ((status = check_input_output(ctx, fn, content, y, p, &op)) != INORM_SUCCESS)
        return status;
    if (!styles || !weights)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: %s is NULL", fn, !styles ? "styles" : "weights");
    if (count < 1 || count > INORM_MAX_STYLES)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: count is %u; it must be 1 to %d", fn, count,
                          INORM_MAX_STYLES);
    if (!isfinite(alpha))
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: alpha is %g; it must be finite", fn, (double)alpha);
    for (uint32_t k = 0; k < count; ++k) {
        char name[32];
        snprintf(name, sizeof name, "styles[%u]", k);
        if ((status = check_style(ctx, fn, name, styles[k], &op)) != INORM_SUCCESS)
            return status;
        if (!isfinite(weights[k]))
            return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: weights[%u] is %g; it must be finite", fn, k,
                              (double)weights[k]);
    }
    if ((status = check_unbiased_count(ctx, fn, "content", &op, inorm_plane_len(&content->desc))) ||
        (status = check_mask(ctx, fn, "mask", op.mask, content, 1, op.unbiased)))
        return status;

    return run_style_mix(ctx, &op, styles, weights, count);
}

inorm_status inorm_stats(inorm_context *ctx, const inorm_tensor *x, const inorm_norm_params *p, inorm_tensor *mean,
                         inorm_tensor *std)
{
    const char *fn = "inorm_stats";
    inorm_status status = check_context(ctx);
    if (status != INORM_SUCCESS)
        return status;
    inorm_op op = { .kind = INORM_OP_STATS, .channels_per_segment = 1, .alpha = 1.0f, .out_weight = 1.0f,
                    .out_repeat = 1, .out_repeat_first = 0 };
    if ((status = check_input_output(ctx, fn, x, NULL, p, &op)) != INORM_SUCCESS)
        return status;
    if (!mean && !std)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: mean and std are both NULL; nothing to compute", fn);
    if (mean && mean == std)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: mean and std are the same tensor", fn);
    if ((mean && (status = check_float_tensor(ctx, fn, "mean", mean, x->desc.n, x->desc.c, 1, 1))) ||
        (std && (status = check_float_tensor(ctx, fn, "std", std, x->desc.n, x->desc.c, 1, 1))) ||
        (status = check_not_aliased(ctx, fn, mean, "mean", x, "x")) != INORM_SUCCESS ||
        (status = check_not_aliased(ctx, fn, std, "std", x, "x")) != INORM_SUCCESS ||
        (status = check_not_aliased(ctx, fn, mean, "mean", op.mask, "mask")) != INORM_SUCCESS ||
        (status = check_not_aliased(ctx, fn, std, "std", op.mask, "mask")) != INORM_SUCCESS ||
        (status = check_unbiased_count(ctx, fn, "x", &op, inorm_plane_len(&x->desc))) ||
        (status = check_mask(ctx, fn, "mask", op.mask, x, 1, op.unbiased)))
        return status;
    if (op.style_mask)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: style_mask is set but this op has no style", fn);
    op.mean_out = mean;
    op.std_out = std;
    return run(ctx, &op);
}

inorm_status inorm_convert_op(inorm_context *ctx, const inorm_tensor *src, inorm_tensor *dst, inorm_copy_kernel kernel)
{
    const char *fn = "inorm_convert";
    inorm_status status = check_context(ctx);
    if (status != INORM_SUCCESS)
        return status;
    if ((status = check_tensor(ctx, fn, "src", src)) != INORM_SUCCESS ||
        (status = check_tensor(ctx, fn, "dst", dst)) != INORM_SUCCESS)
        return status;
    const inorm_tensor_desc *a = &src->desc, *b = &dst->desc;
    if (a->n != b->n || a->c != b->c || a->h != b->h || a->w != b->w)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: dst is %ux%ux%ux%u but src is %ux%ux%ux%u", fn, b->n,
                          b->c, b->h, b->w, a->n, a->c, a->h, a->w);
    if (src == dst)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: dst is src; converting in place is not supported",
                          fn);
    inorm_op op = { .kind = INORM_OP_CONVERT, .x = src, .y = dst, .channels_per_segment = 1, .alpha = 1.0f,
                    .copy_kernel = kernel };
    return run(ctx, &op);
}

inorm_status inorm_convert(inorm_context *ctx, const inorm_tensor *src, inorm_tensor *dst)
{
    return inorm_convert_op(ctx, src, dst, INORM_COPY_ANY);
}

/* ---------------------------------------------------------------------------
 * Pixel ops: colour conversion and blending (CPU math in src/color.c and
 * src/blend.c, kernels in shaders/color.comp and shaders/blend.comp).
 * ------------------------------------------------------------------------ */

static const char *color_space_name(inorm_color_space space)
{
    switch (space) {
    case INORM_COLOR_SRGB: return "SRGB";
    case INORM_COLOR_LINEAR_SRGB: return "LINEAR_SRGB";
    case INORM_COLOR_XYZ: return "XYZ";
    case INORM_COLOR_LAB: return "LAB";
    case INORM_COLOR_LALPHABETA: return "LALPHABETA";
    }
    return NULL;
}

/* other has t's shape, dtype and layout. */
static inorm_status check_same_tensor_desc(inorm_context *ctx, const char *fn, const char *name,
                                           const inorm_tensor *other, const char *ref_name, const inorm_tensor *t)
{
    const inorm_tensor_desc *a = &t->desc, *b = &other->desc;
    if (a->n != b->n || a->c != b->c || a->h != b->h || a->w != b->w || a->dtype != b->dtype ||
        a->layout != b->layout)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT,
                          "%s: %s (%s %s %ux%ux%ux%u) must have the shape, dtype and layout of %s (%s %s %ux%ux%ux%u)",
                          fn, name, dtype_name(b->dtype), layout_name(b->layout), b->n, b->c, b->h, b->w, ref_name,
                          dtype_name(a->dtype), layout_name(a->layout), a->n, a->c, a->h, a->w);
    return INORM_SUCCESS;
}

inorm_status inorm_color_convert(inorm_context *ctx, const inorm_tensor *src, inorm_tensor *dst,
                                 inorm_color_space from, inorm_color_space to)
{
    const char *fn = "inorm_color_convert";
    inorm_status status = check_context(ctx);
    if (status != INORM_SUCCESS)
        return status;
    if ((status = check_tensor(ctx, fn, "src", src)) != INORM_SUCCESS ||
        (status = check_tensor(ctx, fn, "dst", dst)) != INORM_SUCCESS ||
        (status = check_same_tensor_desc(ctx, fn, "dst", dst, "src", src)) != INORM_SUCCESS)
        return status;
    if (!color_space_name(from) || !color_space_name(to))
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: %s is %d, not an inorm_color_space", fn,
                          !color_space_name(from) ? "from" : "to", !color_space_name(from) ? (int)from : (int)to);
    if (src->desc.c < 3)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT,
                          "%s: src has %u channel%s; a colour needs 3 (channels 3 and up pass through)", fn,
                          src->desc.c, src->desc.c == 1 ? "" : "s");
    inorm_op op = { .kind = INORM_OP_COLOR, .x = src, .y = dst, .channels_per_segment = 1, .alpha = 1.0f,
                    .color_from = from, .color_to = to };
    return run(ctx, &op);
}

inorm_status inorm_blend(inorm_context *ctx, const inorm_tensor *a, const inorm_tensor *b,
                         const inorm_tensor *weight, inorm_tensor *y)
{
    const char *fn = "inorm_blend";
    inorm_status status = check_context(ctx);
    if (status != INORM_SUCCESS)
        return status;
    if ((status = check_tensor(ctx, fn, "a", a)) != INORM_SUCCESS ||
        (status = check_tensor(ctx, fn, "b", b)) != INORM_SUCCESS ||
        (status = check_tensor(ctx, fn, "weight", weight)) != INORM_SUCCESS ||
        (status = check_tensor(ctx, fn, "y", y)) != INORM_SUCCESS ||
        (status = check_same_tensor_desc(ctx, fn, "b", b, "a", a)) != INORM_SUCCESS ||
        (status = check_same_tensor_desc(ctx, fn, "y", y, "a", a)) != INORM_SUCCESS ||
        (status = check_not_aliased(ctx, fn, y, "y", weight, "weight")) != INORM_SUCCESS)
        return status;
    const inorm_tensor_desc *d = &a->desc, *w = &weight->desc;
    const bool pixels_ok = (w->h == d->h && w->w == d->w) || (w->h == 1 && w->w == 1);
    if ((w->n != d->n && w->n != 1) || (w->c != d->c && w->c != 1) || !pixels_ok || w->dtype != INORM_FLOAT32)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT,
                          "%s: weight is %s %ux%ux%ux%u; it must be FLOAT32 with N %u or 1, C %u or 1, and H x W "
                          "%ux%u or 1x1",
                          fn, dtype_name(w->dtype), w->n, w->c, w->h, w->w, d->n, d->c, d->h, d->w);
    inorm_op op = { .kind = INORM_OP_BLEND, .x = a, .y = y, .channels_per_segment = 1, .alpha = 1.0f,
                    .blend_b = b, .blend_weight = weight };
    return run(ctx, &op);
}
