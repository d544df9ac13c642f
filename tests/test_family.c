/*
 * The op family on every selected backend (CPU path and Vulkan) against the
 * double-precision oracle (oracle.h, "The family"):
 *
 * - the matrix: every op (instance_norm, group_norm, layer_norm, adain,
 *   adain_mix, adain_modulate, conditional_instance_norm, stats) x {FLOAT32,
 *   FLOAT16} x {NCHW, NHWC} x {gamma/beta or not} x {NONE, RELU, LEAKY_RELU,
 *   SILU}, over the shapes below, plus masked variants (per-sample and
 *   broadcast masks) and, for the norms, gamma only / beta only;
 * - masks: weighted statistics, refusals, NaN under a zero weight, the
 *   per-write validation cache;
 * - adain_mix and conditional instance norm on their own;
 * - activations at their edges, fp16 near the top of its range;
 * - inorm_convert between every pair of formats, and the fp16 conversions.
 *
 * Tolerances: FLOAT32 as test_util.h explains; FLOAT16 as its "FLOAT16 and
 * NHWC" section explains (1 ulp of fp16 at the fp16-rounded reference plus
 * the fp32 bound), the same rule on both backends. FLOAT16 inputs are always
 * halves (rounded before the oracle sees them).
 *
 * Environment: INORM_TEST_BACKENDS=cpu|vulkan restricts the backends;
 * CK_INCLUDE_TAGS=subset runs the matrix only (see meson.build).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

/* ------------------------------------------------------------ helpers -- */

static o_shape chan_shape(o_shape s) { return tu_shape(1, s.c, 1, 1); }
static o_shape nc_shape(o_shape s) { return tu_shape(s.n, s.c, 1, 1); }

static const char *act_name(int a)
{
    static const char *names[] = {"none", "relu", "leaky_relu", "silu"};
    return a >= 0 && a < 4 ? names[a] : "?";
}

/* Planes of different offsets and spreads (so a plane normalized with
 * another's statistics is far off), written in the tensor's layout, and
 * rounded to fp16 when `half`. */
static void gen_data(tu_rng *r, float *x, o_shape s, int nhwc, int half)
{
    size_t hw = o_plane(s);
    for (uint32_t n = 0; n < s.n; n++) {
        for (uint32_t c = 0; c < s.c; c++) {
            double scale = exp(tu_rng_uniform(r, log(0.1), log(10.0)));
            double off = scale * tu_rng_uniform(r, -3.0, 3.0);
            for (size_t p = 0; p < hw; p++)
                x[o_index(s, nhwc, n, c, p)] = (float)(off + scale * tu_rng_uniform(r, -1.0, 1.0));
        }
    }
    if (half)
        tu_round_to_half(x, o_count(s));
}

/* |g| in [0.5, 2] with a random sign, b in [-2, 2]. */
static void gen_affine(tu_rng *r, float *g, float *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double v = tu_rng_uniform(r, 0.5, 2.0);
        g[i] = (float)(tu_rng_uniform(r, 0, 1) < 0.3 ? -v : v);
        b[i] = (float)tu_rng_uniform(r, -2.0, 2.0);
    }
}

/* Mask weights, planes x hw: about 30% exactly 0, 20% exactly 1, the rest in
 * (0, 1); every plane has a nonzero weight. */
static void gen_mask(tu_rng *r, float *m, size_t planes, size_t hw)
{
    for (size_t q = 0; q < planes; q++) {
        int any = 0;
        for (size_t p = 0; p < hw; p++) {
            double u = tu_rng_uniform(r, 0, 1);
            float w = u < 0.3 ? 0.0f : u < 0.5 ? 1.0f : (float)tu_rng_uniform(r, 0.01, 1.0);
            m[q * hw + p] = w;
            any |= w != 0.0f;
        }
        if (!any)
            m[q * hw + (size_t)(tu_rng_next(r) % hw)] = 1.0f;
    }
}

/* Smallest total weight of a mask's planes (times values per pixel). */
static double min_mask_weight(const float *m, size_t planes, size_t hw, uint32_t per_pixel)
{
    double lo = INFINITY;
    for (size_t q = 0; q < planes; q++) {
        double sum = 0;
        for (size_t p = 0; p < hw; p++)
            sum += m[q * hw + p];
        lo = fmin(lo, sum * per_pixel);
    }
    return lo;
}

/* ------------------------------------------------------------- matrix -- */

typedef enum fam_op {
    OP_INSTANCE,
    OP_GROUP,
    OP_LAYER,
    OP_ADAIN,
    OP_MIX,
    OP_MODULATE,
    OP_CIN,
    OP_STATS,
    OP_COUNT
} fam_op;

static const char *const op_names[OP_COUNT] = {
    "instance_norm", "group_norm", "layer_norm", "adain", "adain_mix", "adain_modulate",
    "conditional_instance_norm", "stats",
};

typedef struct fam_case {
    fam_op op;
    o_shape s;
    inorm_dtype dtype;
    inorm_layout layout;
    /* norms: 0 no gamma/beta, 1 both, 2 gamma only, 3 beta only; adain and
     * adain_mix: 0 alpha 1, 1 a blend; modulate: bias or not; conditional:
     * beta_bank or not; stats: 0 both outputs, 1 mean or std only */
    int affine;
    int activation;
    int mask;          /* 0 none, 1 N x 1 x H x W, 2 1 x 1 x H x W (broadcast) */
    int unbiased;      /* asked for; dropped where the shape or mask cannot have it */
    float eps;
    int inplace;
    uint32_t groups;   /* group_norm */
    int variant;       /* style shapes, alpha, mix weights */
    uint64_t seed;
} fam_case;

/* The style shapes of adain (count 1) and adain_mix (count 3) for a content
 * shape: the same shape, N == 1 with another H x W, N with another H x W.
 * With a style mask every style has the same H x W (the mask's). */
static void style_shapes(const fam_case *fc, uint32_t count, o_shape *ss)
{
    o_shape s = fc->s;
    uint32_t h2 = s.h % 7 + 2, w2 = s.w % 11 + 2;
    for (uint32_t k = 0; k < count; k++) {
        int kind = (fc->variant + (int)k) % 3;
        ss[k] = s;
        if (fc->mask || kind != 0) {
            ss[k].h = h2;
            ss[k].w = w2;
        }
        if (kind == 1)
            ss[k].n = 1;
    }
}

typedef struct fam_result {
    double worst;
    int ran;
} fam_result;

static fam_result run_case(inorm_context *ctx, inorm_backend be, const fam_case *fc)
{
    fam_result res = {0.0, 0};
    tu_rng r;
    tu_rng_seed(&r, fc->seed);
    const o_shape s = fc->s;
    const int nhwc = fc->layout == INORM_NHWC, half = fc->dtype == INORM_FLOAT16;
    const size_t n = o_count(s), hw = o_plane(s), nc = (size_t)s.n * s.c;
    const int act = fc->op == OP_STATS ? O_ACT_NONE : fc->activation;
    const float slope = 0.2f;

    float *x = tu_floats(n), *y = tu_floats(n);
    double *ref = tu_doubles(n), *mag = tu_doubles(n);
    gen_data(&r, x, s, nhwc, half);

    /* values per statistic, for the unbiased rule */
    uint32_t cps = fc->op == OP_GROUP ? s.c / fc->groups : fc->op == OP_LAYER ? s.c : 1;
    int unbiased = fc->unbiased && (size_t)cps * hw >= 2;

    /* mask of x */
    float *mask = NULL;
    uint32_t mask_n = 0;
    inorm_tensor *tmask = NULL;
    if (fc->mask) {
        mask_n = fc->mask == 2 ? 1 : s.n;
        mask = tu_floats((size_t)mask_n * hw);
        gen_mask(&r, mask, mask_n, hw);
        if (min_mask_weight(mask, mask_n, hw, cps) < 3.0)
            unbiased = 0; /* refused at <= 1; imprecise near 1 (W / (W - 1)) */
        tmask = tu_tensor(ctx, tu_shape(mask_n, 1, s.h, s.w), mask);
    }

    /* styles (adain, adain_mix) */
    uint32_t count = fc->op == OP_ADAIN ? 1 : fc->op == OP_MIX ? 3 : 0;
    o_shape ss[3];
    float *st[3] = {NULL, NULL, NULL};
    inorm_tensor *tst[3] = {NULL, NULL, NULL};
    double wts[3] = {1.0, 0.0, 0.0};
    float fw[3];
    float *smask = NULL;
    uint32_t smask_n = 0;
    inorm_tensor *tsmask = NULL;
    double alpha = 1.0;
    if (count) {
        style_shapes(fc, count, ss);
        for (uint32_t k = 0; k < count; k++) {
            st[k] = tu_floats(o_count(ss[k]));
            gen_data(&r, st[k], ss[k], nhwc, half);
            tst[k] = tu_tensor_fmt(ctx, ss[k], fc->dtype, fc->layout, st[k]);
            if (o_plane(ss[k]) < 2)
                unbiased = 0;
        }
        if (count == 3) {
            static const double mixes[3][3] = {{0.6, 0.7, -0.2}, {0.25, 0.25, 0.25}, {1.5, -0.5, 0.3}};
            for (int k = 0; k < 3; k++)
                wts[k] = (double)(float)mixes[fc->variant % 3][k]; /* the floats the library gets */
        }
        for (uint32_t k = 0; k < count; k++)
            fw[k] = (float)wts[k];
        if (fc->affine)
            alpha = (double)(fc->variant % 2 ? 1.5f : 0.6f); /* the float the library gets */
        if (fc->mask) {
            /* one mask for every style: N == 1 whenever a style has N == 1 */
            int any_n1 = 0;
            for (uint32_t k = 0; k < count; k++)
                any_n1 |= ss[k].n == 1;
            smask_n = any_n1 || fc->mask == 2 ? 1 : s.n;
            size_t shw = o_plane(ss[0]);
            smask = tu_floats((size_t)smask_n * shw);
            gen_mask(&r, smask, smask_n, shw);
            if (min_mask_weight(smask, smask_n, shw, 1) < 3.0)
                unbiased = 0;
            tsmask = tu_tensor(ctx, tu_shape(smask_n, 1, ss[0].h, ss[0].w), smask);
        }
    }

    inorm_norm_params p = {.eps = fc->eps, .unbiased = unbiased, .activation = (inorm_activation)fc->activation,
                           .activation_slope = slope, .mask = tmask, .style_mask = tsmask};
    o_params op = {.eps = fc->eps, .unbiased = unbiased, .nhwc = nhwc, .activation = act, .slope = slope,
                   .mask = mask, .mask_n = mask_n, .style_mask = smask, .style_mask_n = smask_n};

    inorm_tensor *tx = tu_tensor_fmt(ctx, s, fc->dtype, fc->layout, x);
    int inplace = fc->inplace && fc->op != OP_STATS;
    inorm_tensor *ty = inplace ? tx : tu_tensor_fmt(ctx, s, fc->dtype, fc->layout, NULL);

    float *g = NULL, *b = NULL;
    inorm_tensor *tg = NULL, *tb = NULL, *tw = NULL;
    const char *variant = "";
    inorm_status status = INORM_SUCCESS;
    switch (fc->op) {
    case OP_INSTANCE:
    case OP_GROUP:
    case OP_LAYER: {
        g = tu_floats(s.c);
        b = tu_floats(s.c);
        gen_affine(&r, g, b, s.c);
        int use_g = fc->affine == 1 || fc->affine == 2, use_b = fc->affine == 1 || fc->affine == 3;
        tg = use_g ? tu_tensor(ctx, chan_shape(s), g) : NULL;
        tb = use_b ? tu_tensor(ctx, chan_shape(s), b) : NULL;
        uint32_t groups = fc->op == OP_INSTANCE ? s.c : fc->op == OP_LAYER ? 1 : fc->groups;
        if (fc->op == OP_INSTANCE)
            status = inorm_instance_norm(ctx, tx, tg, tb, &p, ty);
        else if (fc->op == OP_LAYER)
            status = inorm_layer_norm(ctx, tx, tg, tb, &p, ty);
        else
            status = inorm_group_norm(ctx, tx, groups, tg, tb, &p, ty);
        oracle_group_norm_ex(&op, s, x, groups, use_g ? g : NULL, use_b ? b : NULL, ref, mag);
        variant = tu_fmt("groups=%u gamma=%d beta=%d", groups, use_g, use_b);
        break;
    }
    case OP_MODULATE: {
        g = tu_floats(nc);
        b = tu_floats(nc);
        gen_affine(&r, g, b, nc);
        tg = tu_tensor(ctx, nc_shape(s), g);
        tb = fc->affine ? tu_tensor(ctx, nc_shape(s), b) : NULL;
        status = inorm_adain_modulate(ctx, tx, tg, tb, &p, ty);
        oracle_modulate_ex(&op, s, x, g, fc->affine ? b : NULL, ref, mag);
        variant = tu_fmt("bias=%d", fc->affine);
        break;
    }
    case OP_CIN: {
        const uint32_t S = 3;
        g = tu_floats((size_t)S * s.c);
        b = tu_floats((size_t)S * s.c);
        gen_affine(&r, g, b, (size_t)S * s.c);
        float *w = tu_floats((size_t)s.n * S);
        for (uint32_t i = 0; i < s.n; i++)
            for (uint32_t k = 0; k < S; k++)
                w[i * S + k] = (i + (uint32_t)fc->variant) % 2 == 0 ? (k == (i + (uint32_t)fc->variant) % S ? 1.0f : 0.0f)
                                                                     : (float)tu_rng_uniform(&r, -0.5, 1.5);
        tg = tu_tensor(ctx, tu_shape(S, s.c, 1, 1), g);
        tb = fc->affine ? tu_tensor(ctx, tu_shape(S, s.c, 1, 1), b) : NULL;
        tw = tu_tensor(ctx, tu_shape(s.n, S, 1, 1), w);
        status = inorm_conditional_instance_norm(ctx, tx, tg, tb, tw, &p, ty);
        oracle_cin_ex(&op, s, x, S, g, fc->affine ? b : NULL, w, ref, mag);
        variant = tu_fmt("styles=3 beta_bank=%d", fc->affine);
        free(w);
        break;
    }
    case OP_ADAIN:
        status = inorm_adain(ctx, tx, tst[0], (float)alpha, &p, ty);
        oracle_adain_mix_ex(&op, s, x, 1, ss, (const float *const *)st, wts, alpha, ref, mag);
        variant = tu_fmt("style %s alpha=%g style_mask=%s", tu_shape_str(ss[0]), alpha,
                         smask ? tu_fmt("%ux1x%ux%u", smask_n, ss[0].h, ss[0].w) : "none");
        break;
    case OP_MIX: {
        const inorm_tensor *styles[3] = {tst[0], tst[1], tst[2]};
        status = inorm_adain_mix(ctx, tx, styles, fw, count, (float)alpha, &p, ty);
        oracle_adain_mix_ex(&op, s, x, count, ss, (const float *const *)st, wts, alpha, ref, mag);
        variant = tu_fmt("styles %s %s %s weights %g %g %g alpha=%g style_mask=%s", tu_shape_str(ss[0]),
                         tu_shape_str(ss[1]), tu_shape_str(ss[2]), wts[0], wts[1], wts[2], alpha,
                         smask ? tu_fmt("%ux1x%ux%u", smask_n, ss[0].h, ss[0].w) : "none");
        break;
    }
    case OP_STATS:
    case OP_COUNT:
        break;
    }

    const char *what = tu_fmt("%s [%s] %s %s %s act=%s unbiased=%d eps=%g mask=%s inplace=%d seed=%llu",
                              op_names[fc->op], tu_backend_name(be), tu_dtype_name(fc->dtype),
                              tu_layout_name(fc->layout), variant, act_name(fc->activation), unbiased,
                              (double)fc->eps, fc->mask == 0 ? "none" : fc->mask == 1 ? "Nx1xHxW" : "1x1xHxW",
                              inplace, (unsigned long long)fc->seed);

    if (fc->op == OP_STATS) {
        o_shape ps = nc_shape(s);
        int want_mean = fc->affine == 0 || fc->activation % 2 == 0;
        int want_std = fc->affine == 0 || fc->activation % 2 == 1;
        inorm_tensor *tm = want_mean ? tu_tensor(ctx, ps, NULL) : NULL;
        inorm_tensor *tsd = want_std ? tu_tensor(ctx, ps, NULL) : NULL;
        status = inorm_stats(ctx, tx, &p, tm, tsd);
        ck_assert_msg(status == INORM_SUCCESS, "%s: %s: %s", what, inorm_status_string(status),
                      inorm_context_error(ctx));
        float *m = tu_floats(nc), *sd = tu_floats(nc);
        double *rm = tu_doubles(nc), *rs = tu_doubles(nc), *rsig = tu_doubles(nc);
        if (tm)
            tu_download(ctx, tm, m, nc);
        if (tsd)
            tu_download(ctx, tsd, sd, nc);
        oracle_stats_ex(&op, s, x, rm, rs, rsig);
        tu_assert_stats(tu_fmt("%s (activation in params must not apply) mean=%d std=%d", what, want_mean,
                               want_std),
                        ps, tm ? m : NULL, tsd ? sd : NULL, rm, rs, rsig);
        inorm_tensor_destroy(tm);
        inorm_tensor_destroy(tsd);
        free(m), free(sd), free(rm), free(rs), free(rsig);
    } else {
        ck_assert_msg(status == INORM_SUCCESS, "%s: %s: %s", what, inorm_status_string(status),
                      inorm_context_error(ctx));
        tu_download_fmt(ctx, ty, y, n);
        res.worst = tu_assert_close_fmt(what, s, fc->dtype, fc->layout, y, ref, mag);
    }
    res.ran = 1;

    inorm_tensor_destroy(tx);
    if (ty != tx)
        inorm_tensor_destroy(ty);
    inorm_tensor_destroy(tg);
    inorm_tensor_destroy(tb);
    inorm_tensor_destroy(tw);
    inorm_tensor_destroy(tmask);
    inorm_tensor_destroy(tsmask);
    for (uint32_t k = 0; k < count; k++) {
        inorm_tensor_destroy(tst[k]);
        free(st[k]);
    }
    free(x), free(y), free(ref), free(mag), free(mask), free(smask), free(g), free(b);
    return res;
}

/* The shape set: odd sizes and 1 x 1 planes, a long row, a prime-sized plane
 * (two-pass kernels), many channels, group norm with 2 or 3 groups, and C >=
 * 40 (NHWC tiles of 32 channels with a partial second tile).
 * "core" shapes run the whole affine x activation product for every dtype and
 * layout: 2x3x7x5 (NCHW: the fused single-read kernel; NHWC: one tile of 3
 * channels) and 2x44x15x13 (NHWC: two channel tiles, the second partial); on
 * both, the masked cases (which take the two-pass kernels) rotate through the
 * activations too. The others run each (dtype, layout, affine) with one
 * activation, rotated so that every shape still meets all four: the
 * activation is a specialization constant, and on lavapipe compiling every
 * pipeline variant for every shape costs more than a minute with a cold
 * shader cache. */
static const struct {
    o_shape s;
    int core;
} k_shapes[] = {
    {{2, 3, 7, 5}, 1},  {{1, 4, 1, 513}, 0},   {{1, 2, 97, 89}, 0},  {{3, 5, 1, 1}, 0},
    {{1, 64, 16, 16}, 0}, {{2, 6, 33, 17}, 0}, {{2, 44, 15, 13}, 1},
};
#define N_SHAPES (sizeof k_shapes / sizeof k_shapes[0])

/* group_norm's group counts per shape (cycled through the cases). */
static uint32_t groups_for(o_shape s, int i)
{
    static const uint32_t g3[] = {3, 1}, g4[] = {2}, g2[] = {1}, g5[] = {5, 1}, g64[] = {8, 32}, g6[] = {2, 3},
                          g44[] = {4, 11};
    switch (s.c) {
    case 3: return g3[i % 2];
    case 4: return g4[0];
    case 2: return g2[0];
    case 5: return g5[i % 2];
    case 64: return g64[i % 2];
    case 6: return g6[i % 2];
    case 44: return g44[i % 2];
    }
    return 1;
}

/* One shape, every op x dtype x layout x affine x activation (see k_shapes)
 * plus the masked and gamma-only/beta-only extras, on one context: the ops
 * share most of their pipelines. */
static void run_matrix(inorm_backend be, size_t si)
{
    TU_CTX(ctx, be);
    const o_shape shape = k_shapes[si].s;
    for (int which = 0; which < OP_COUNT; which++) {
        int cases = 0;
        double worst = 0;
        uint64_t counter = 0;
        for (int dt = 0; dt < 2; dt++) {
            for (int lo = 0; lo < 2; lo++) {
                int extras = (which == OP_INSTANCE || which == OP_GROUP || which == OP_LAYER) ? 4 : 2;
                for (int v = 0; v < 8 + extras; v++) {
                    fam_case fc;
                    memset(&fc, 0, sizeof fc);
                    fc.op = (fam_op)which;
                    fc.s = shape;
                    fc.dtype = dt ? INORM_FLOAT16 : INORM_FLOAT32;
                    fc.layout = lo ? INORM_NHWC : INORM_NCHW;
                    if (v < 8) {
                        fc.affine = v / 4;
                        fc.activation = v % 4;
                        /* not core: one activation per (dtype, layout, affine), each
                         * of the four twice over the 8 combinations */
                        if (!k_shapes[si].core && fc.activation != (fc.affine + 2 * dt + lo + (int)si) % 4)
                            continue;
                    } else {
                        if (v < 10) {
                            fc.mask = v - 7; /* 1 per sample, 2 broadcast */
                            fc.affine = 1;
                        } else {
                            fc.affine = v - 8; /* 2 gamma only, 3 beta only */
                        }
                        /* core: rotate; not core: one of the two activations this
                         * (dtype, layout) already has pipelines for */
                        fc.activation = k_shapes[si].core ? (int)((counter + si) % 4)
                                                          : ((v % 2) + 2 * dt + lo + (int)si) % 4;
                    }
                    fc.unbiased = counter % 3 == 1;
                    fc.eps = counter % 5 == 0 ? 1e-3f : (counter % 7 == 3 && !fc.mask) ? 0.0f : 1e-5f;
                    fc.inplace = counter % 4 == 3;
                    fc.groups = groups_for(fc.s, (int)counter);
                    fc.variant = (int)((counter + si) % 6);
                    fc.seed = 1000003u * (uint64_t)which + 1009u * si + counter;
                    counter++;
                    fam_result r = run_case(ctx, be, &fc);
                    cases += r.ran;
                    worst = fmax(worst, r.worst);
                }
            }
        }
        printf("family %s [%s] %s: %d cases within tolerance, worst |err|/bound = %.4f\n", op_names[which],
               tu_backend_name(be), tu_shape_str(shape), cases, worst);
    }
    tu_ctx_destroy(ctx);
}

START_TEST(matrix_2x3x7x5) { run_matrix(tu_backend(_i), 0); }
END_TEST
START_TEST(matrix_1x4x1x513) { run_matrix(tu_backend(_i), 1); }
END_TEST
START_TEST(matrix_1x2x97x89) { run_matrix(tu_backend(_i), 2); }
END_TEST
START_TEST(matrix_3x5x1x1) { run_matrix(tu_backend(_i), 3); }
END_TEST
START_TEST(matrix_1x64x16x16) { run_matrix(tu_backend(_i), 4); }
END_TEST
START_TEST(matrix_2x6x33x17) { run_matrix(tu_backend(_i), 5); }
END_TEST
START_TEST(matrix_2x44x15x13) { run_matrix(tu_backend(_i), 6); }
END_TEST

/* ------------------------------------------------ fp16 conversions -- */

static uint32_t f32_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

static float f32_from_bits(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

static int half_is_nan(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }

/* Hand-written values: the library's conversions, and the tests' own (the
 * reference for everything else in this file). */
START_TEST(half_conversions_hand)
{
    static const struct {
        float f;
        uint16_t h;
        const char *what;
    } to_half[] = {
        {1.0f, 0x3c00, "1"},
        {-2.0f, 0xc000, "-2"},
        {0.0f, 0x0000, "+0"},
        {-0.0f, 0x8000, "-0"},
        {65504.0f, 0x7bff, "65504, the largest half"},
        {65519.99609375f, 0x7bff, "just below 65520 rounds down to 65504"},
        {65520.0f, 0x7c00, "65520, halfway to 2^16, rounds to inf"},
        {65536.0f, 0x7c00, "2^16 overflows"},
        {1e10f, 0x7c00, "1e10 overflows"},
        {-1e10f, 0xfc00, "-1e10 overflows to -inf"},
        {INFINITY, 0x7c00, "inf"},
        {-INFINITY, 0xfc00, "-inf"},
        {0x1p-14f, 0x0400, "2^-14, the smallest normal"},
        {0x1p-24f, 0x0001, "2^-24, the smallest subnormal"},
        {0x3p-24f, 0x0003, "3 * 2^-24"},
        {0x3ffp-24f, 0x03ff, "the largest subnormal"},
        {0x1p-25f, 0x0000, "2^-25: halfway between 0 and 2^-24, ties to even 0"},
        {0x1.000002p-25f, 0x0001, "just above 2^-25 rounds up"},
        {0x3p-25f, 0x0002, "3 * 2^-25: halfway between 1 and 2 units, ties to even 2"},
        {0x5p-25f, 0x0002, "5 * 2^-25: halfway between 2 and 3 units, ties to even 2"},
        {0x1p-26f, 0x0000, "2^-26 rounds to 0"},
        {-0x1p-26f, 0x8000, "-2^-26 rounds to -0"},
        {0x7ffp-25f, 0x0400, "halfway between the largest subnormal and 2^-14 rounds up to even 0x0400"},
        {1.0f + 0x1p-11f, 0x3c00, "1 + 2^-11: halfway, ties to even 1"},
        {1.0f + 0x3p-11f, 0x3c02, "1 + 3 * 2^-11: halfway, ties to even 0x3c02"},
        {1.0f + 0x1p-10f, 0x3c01, "1 + 2^-10, exact"},
        {1.0f + 0x1.000002p-11f, 0x3c01, "just above 1 + 2^-11 rounds up"},
        {2.0f - 0x1p-12f, 0x3c00, "2 - 2^-12: halfway between 0x3bff and 2, ties to even 2 = 0x4000? no: see below"},
        {0.1f, 0x2e66, "0.1"},
        {1.0f / 3.0f, 0x3555, "1/3"},
        {2048.0f + 1.0f, 0x6800, "2049: halfway between 2048 and 2050, ties to even 2048"},
        {2048.0f + 3.0f, 0x6802, "2051: halfway between 2050 and 2052, ties to even 2052"},
        {60000.0f, 0x7b53, "60000"},
    };
    /* 2 - 2^-12 lies halfway between 0x3bff (2 - 2^-11) and 0x4000 (2); the
     * even one is 0x4000. Fix the table entry here rather than in the
     * initializer, so that the comment above stays honest. */
    uint16_t want_2m = 0x4000;
    for (size_t i = 0; i < sizeof to_half / sizeof to_half[0]; i++) {
        uint16_t want = i == 27 ? want_2m : to_half[i].h;
        uint16_t lib = inorm_float_to_half(to_half[i].f), own = tu_half_from_double(to_half[i].f);
        ck_assert_msg(lib == want, "inorm_float_to_half(%a) (%s) = 0x%04x, want 0x%04x", (double)to_half[i].f,
                      to_half[i].what, lib, want);
        ck_assert_msg(own == want, "test harness tu_half_from_double(%a) (%s) = 0x%04x, want 0x%04x",
                      (double)to_half[i].f, to_half[i].what, own, want);
    }
    /* NaN stays NaN (quiet or signalling, either sign) */
    const float nans[] = {NAN, -NAN, f32_from_bits(0x7f800001u), f32_from_bits(0x7fc00000u), f32_from_bits(0xffffffffu)};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
        uint16_t h = inorm_float_to_half(nans[i]);
        ck_assert_msg(half_is_nan(h), "inorm_float_to_half(NaN 0x%08x) = 0x%04x, not a NaN", f32_bits(nans[i]), h);
        ck_assert_msg(half_is_nan(tu_half_from_double(nans[i])), "tu_half_from_double(NaN) is not a NaN");
    }

    static const struct {
        uint16_t h;
        double f;
    } to_float[] = {
        {0x3c00, 1.0},          {0xc000, -2.0},          {0x7bff, 65504.0},       {0x0001, 0x1p-24},
        {0x03ff, 0x3ffp-24},    {0x0400, 0x1p-14},       {0x3555, 0.333251953125}, {0x3bff, 0.99951171875},
        {0x2e66, 0.0999755859375}, {0x7c00, INFINITY},   {0xfc00, -INFINITY},     {0x0000, 0.0},
        {0x8001, -0x1p-24},     {0x7b53, 60000.0},
    };
    for (size_t i = 0; i < sizeof to_float / sizeof to_float[0]; i++) {
        float lib = inorm_half_to_float(to_float[i].h), own = tu_half_to_float(to_float[i].h);
        ck_assert_msg((double)lib == to_float[i].f, "inorm_half_to_float(0x%04x) = %a, want %a", to_float[i].h,
                      (double)lib, to_float[i].f);
        ck_assert_msg((double)own == to_float[i].f, "tu_half_to_float(0x%04x) = %a, want %a", to_float[i].h,
                      (double)own, to_float[i].f);
    }
    float mz = inorm_half_to_float(0x8000);
    ck_assert_msg(mz == 0.0f && signbit(mz), "inorm_half_to_float(0x8000) = %g, want -0.0", (double)mz);
    static const uint16_t hnans[] = {0x7e00, 0x7c01, 0xfe00, 0x7fff, 0xfc01};
    for (size_t i = 0; i < sizeof hnans / sizeof hnans[0]; i++)
        ck_assert_msg(isnan(inorm_half_to_float(hnans[i])), "inorm_half_to_float(0x%04x) is not NaN", hnans[i]);
}
END_TEST

/* Every half to float, and float to half at every rounding boundary (the
 * midpoint between neighbouring halves, and one float either side of it),
 * against the tests' own conversions. */
START_TEST(half_conversions_exhaustive)
{
    size_t bad = 0;
    char first[256] = "";
    for (uint32_t h = 0; h < 0x10000u; h++) {
        float lib = inorm_half_to_float((uint16_t)h), own = tu_half_to_float((uint16_t)h);
        int ok = half_is_nan((uint16_t)h) ? isnan(lib) : f32_bits(lib) == f32_bits(own);
        if (!ok && bad++ == 0)
            snprintf(first, sizeof first, "inorm_half_to_float(0x%04x) = %a, want %a", h, (double)lib, (double)own);
        /* round trip of every non-NaN half */
        if (!half_is_nan((uint16_t)h)) {
            uint16_t back = inorm_float_to_half(own);
            if (back != h && bad++ == 0)
                snprintf(first, sizeof first, "inorm_float_to_half(%a) = 0x%04x, want 0x%04x (round trip)",
                         (double)own, back, h);
        }
    }
    for (uint32_t h = 0; h < 0x7c00u; h++) {
        for (int sign = 0; sign < 2; sign++) {
            double lo = tu_half_to_float((uint16_t)h);
            double hi = h + 1 < 0x7c00u ? tu_half_to_float((uint16_t)(h + 1)) : 65536.0;
            float mid = (float)((lo + hi) / 2); /* exact: halves have 11 bits */
            float probes[3] = {mid, nextafterf(mid, 0.0f), nextafterf(mid, INFINITY)};
            for (int k = 0; k < 3; k++) {
                float f = sign ? -probes[k] : probes[k];
                uint16_t lib = inorm_float_to_half(f), own = tu_half_from_double(f);
                if (lib != own && bad++ == 0)
                    snprintf(first, sizeof first, "inorm_float_to_half(%a) = 0x%04x, want 0x%04x", (double)f, lib,
                             own);
            }
        }
    }
    ck_assert_msg(bad == 0, "%zu conversion(s) differ; first: %s", bad, first);
}
END_TEST

/* The fp16 tolerance accepts the rounded oracle and a 1-ulp flip, and
 * rejects what a real fp16 bug gives. No library call. */
START_TEST(tolerance_bites_fp16)
{
    tu_rng r;
    tu_rng_seed(&r, 4242);
    o_shape s = tu_shape(2, 3, 17, 19);
    size_t n = o_count(s);
    float *x = tu_floats(n), *got = tu_floats(n);
    double *ref = tu_doubles(n), *mag = tu_doubles(n);
    gen_data(&r, x, s, 0, 1);
    o_params p = {.eps = 1e-5f};
    oracle_group_norm_ex(&p, s, x, s.c, NULL, NULL, ref, mag);

    for (size_t i = 0; i < n; i++)
        got[i] = (float)tu_round_half(ref[i]);
    tu_cmp c = tu_compare_fmt(INORM_FLOAT16, got, ref, mag, n);
    ck_assert_msg(c.bad == 0, "the fp16-rounded oracle: %zu rejected", c.bad);

    /* 1 ulp off everywhere: accepted (the rounding of an fp32 result near a boundary) */
    for (size_t i = 0; i < n; i++)
        got[i] = (float)(tu_round_half(ref[i]) + tu_half_ulp(tu_round_half(ref[i])));
    c = tu_compare_fmt(INORM_FLOAT16, got, ref, mag, n);
    ck_assert_msg(c.bad == 0, "1 ulp off: %zu rejected", c.bad);

    /* 2 ulps off (|ref| >= 0.5, where the fp32 term is small against an ulp): rejected */
    size_t big = 0;
    for (size_t i = 0; i < n; i++) {
        double q = tu_round_half(ref[i]);
        got[i] = (float)(q + 2 * tu_half_ulp(q));
        big += fabs(ref[i]) >= 0.5;
    }
    c = tu_compare_fmt(INORM_FLOAT16, got, ref, mag, n);
    ck_assert_msg(c.bad >= big, "2 ulps off: only %zu of the %zu elements with |ref| >= 0.5 rejected", c.bad, big);

    /* x - mean computed in fp16 (a double rounding of the input side): the
     * mean rounded to fp16 before the subtraction, on planes with an offset */
    for (size_t i = 0; i < n; i++)
        x[i] = (float)tu_round_half(x[i] + 37.0);
    oracle_group_norm_ex(&p, s, x, s.c, NULL, NULL, ref, mag);
    size_t rejected_planes = 0, hw = o_plane(s);
    for (size_t q = 0; q < (size_t)s.n * s.c; q++) {
        double mean, var;
        oracle_moments(x + q * hw, hw, 0, &mean, &var);
        double mean16 = tu_round_half(mean);
        for (size_t i = 0; i < hw; i++)
            got[q * hw + i] = (float)tu_round_half((x[q * hw + i] - mean16) / sqrt(var + 1e-5));
        tu_cmp cp = tu_compare_fmt(INORM_FLOAT16, got + q * hw, ref + q * hw, mag + q * hw, hw);
        rejected_planes += cp.bad > 0;
    }
    ck_assert_msg(rejected_planes >= (size_t)s.n * s.c / 2,
                  "a mean rounded to fp16: only %zu of %u planes rejected", rejected_planes, s.n * s.c);
    free(x), free(got), free(ref), free(mag);
}
END_TEST

/* ----------------------------------------------------------- convert -- */

/* Source values for conversion tests, in storage order. FLOAT32 sources
 * hold the fp16 rounding boundaries (midpoints, one float either side),
 * exact halves, subnormals of both types, overflow, NaN, infinities, signed
 * zeros and arbitrary floats; FLOAT16 sources hold random bit patterns (all
 * classes) and the special values. */
static void gen_convert_source(tu_rng *r, inorm_dtype dt, void *dst, size_t n)
{
    if (dt == INORM_FLOAT16) {
        static const uint16_t special[] = {0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x7bff, 0xfbff, 0x7c00,
                                           0xfc00, 0x7e00, 0x3c00, 0x3555, 0x8001, 0x7c01};
        uint16_t *h = (uint16_t *)dst;
        for (size_t i = 0; i < n; i++)
            h[i] = i < sizeof special / sizeof special[0] ? special[i] : (uint16_t)(tu_rng_next(r) >> 48);
        return;
    }
    static const float special[] = {
        1.0f + 0x1p-11f, 1.0f + 0x3p-11f, 0x1p-25f, 0x3p-25f, 65520.0f, 65519.99609375f, 65504.0f, -0.0f,
        0.0f, INFINITY, -INFINITY, NAN, 0x1p-24f, 0x7ffp-25f, 1e-40f /* fp32 subnormal */, -65520.0f,
        2049.0f, 2051.0f, 0.1f, 1e10f,
    };
    float *f = (float *)dst;
    for (size_t i = 0; i < n; i++) {
        if (i < sizeof special / sizeof special[0]) {
            f[i] = special[i];
            continue;
        }
        uint64_t k = tu_rng_next(r);
        uint16_t h = (uint16_t)(k >> 48) & 0x7bffu; /* a finite half (bits below 0x7c00 in magnitude) */
        if ((h & 0x7c00u) == 0x7c00u)
            h &= 0x3fffu;
        double lo = tu_half_to_float(h), hi = tu_half_to_float((uint16_t)(h + 1));
        double v;
        switch (k % 6) {
        case 0: v = lo; break;                                 /* exact */
        case 1: v = (lo + hi) / 2; break;                      /* a tie */
        case 2: v = nextafterf((float)((lo + hi) / 2), 0.0f); break;
        case 3: v = nextafterf((float)((lo + hi) / 2), INFINITY); break;
        case 4: v = ldexp(tu_rng_uniform(r, 1.0, 2.0), (int)(k >> 8) % 48 - 30); break; /* 2^-30 .. 2^18 */
        default: v = (double)f32_from_bits((uint32_t)(k >> 8) & 0x007fffffu); break;       /* fp32 subnormal */
        }
        f[i] = (float)((k >> 7) & 1 ? -v : v);
    }
}

/* The expected value of one element converted from src_dt to dst_dt. */
static uint32_t convert_ref(inorm_dtype src_dt, inorm_dtype dst_dt, const void *src, size_t i)
{
    if (src_dt == INORM_FLOAT16) {
        uint16_t h = ((const uint16_t *)src)[i];
        return dst_dt == INORM_FLOAT16 ? h : f32_bits(tu_half_to_float(h));
    }
    float f = ((const float *)src)[i];
    return dst_dt == INORM_FLOAT16 ? tu_half_from_double(f) : f32_bits(f);
}

static uint32_t convert_got(inorm_dtype dt, const void *dst, size_t i)
{
    return dt == INORM_FLOAT16 ? ((const uint16_t *)dst)[i] : f32_bits(((const float *)dst)[i]);
}

static int bits_nan(inorm_dtype dt, uint32_t b)
{
    return dt == INORM_FLOAT16 ? half_is_nan((uint16_t)b) : isnan(f32_from_bits(b));
}

START_TEST(convert_every_pair)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    static const o_shape shapes[] = {
        {2, 3, 7, 5}, {1, 40, 9, 7}, {1, 1, 1, 1}, {3, 33, 1, 1}, {2, 70, 5, 13}, {1, 1, 1, 37}, {1, 33, 32, 32},
    };
    tu_rng r;
    tu_rng_seed(&r, 5150);
    int pairs = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        o_shape s = shapes[si];
        size_t n = o_count(s), hw = o_plane(s);
        for (int from = 0; from < 4; from++) {
            inorm_dtype sdt = from & 1 ? INORM_FLOAT16 : INORM_FLOAT32;
            inorm_layout slo = from & 2 ? INORM_NHWC : INORM_NCHW;
            size_t sbytes = n * (sdt == INORM_FLOAT16 ? 2 : 4);
            void *src = tu_malloc(sbytes), *src_back = tu_malloc(sbytes);
            gen_convert_source(&r, sdt, src, n);
            inorm_tensor_desc sd = tu_desc_s(s);
            sd.dtype = sdt;
            sd.layout = slo;
            inorm_tensor *ts = NULL;
            TU_OK(ctx, inorm_tensor_create(ctx, &sd, &ts));
            TU_OK(ctx, inorm_tensor_write(ts, src, sbytes));
            for (int to = 0; to < 4; to++) {
                inorm_dtype ddt = to & 1 ? INORM_FLOAT16 : INORM_FLOAT32;
                inorm_layout dlo = to & 2 ? INORM_NHWC : INORM_NCHW;
                size_t dbytes = n * (ddt == INORM_FLOAT16 ? 2 : 4);
                void *dst = tu_malloc(dbytes);
                inorm_tensor_desc dd = tu_desc_s(s);
                dd.dtype = ddt;
                dd.layout = dlo;
                inorm_tensor *td = NULL;
                TU_OK(ctx, inorm_tensor_create(ctx, &dd, &td));
                TU_OK(ctx, inorm_convert(ctx, ts, td));
                TU_OK(ctx, inorm_tensor_read(td, dst, dbytes));
                size_t bad = 0;
                char first[320] = "";
                for (uint32_t nn = 0; nn < s.n; nn++)
                    for (uint32_t c = 0; c < s.c; c++)
                        for (size_t q = 0; q < hw; q++) {
                            size_t is = o_index(s, slo == INORM_NHWC, nn, c, q);
                            size_t id = o_index(s, dlo == INORM_NHWC, nn, c, q);
                            uint32_t want = convert_ref(sdt, ddt, src, is), got = convert_got(ddt, dst, id);
                            int ok = bits_nan(ddt, want) ? bits_nan(ddt, got) : got == want;
                            if (!ok && bad++ == 0) {
                                uint32_t sb = sdt == INORM_FLOAT16 ? ((uint16_t *)src)[is] : f32_bits(((float *)src)[is]);
                                snprintf(first, sizeof first,
                                         "(n=%u c=%u h=%zu w=%zu): source 0x%0*x (%a), got 0x%0*x, want 0x%0*x", nn,
                                         c, q / s.w, q % s.w, sdt == INORM_FLOAT16 ? 4 : 8, sb,
                                         sdt == INORM_FLOAT16 ? (double)tu_half_to_float((uint16_t)sb)
                                                              : (double)f32_from_bits(sb),
                                         ddt == INORM_FLOAT16 ? 4 : 8, got, ddt == INORM_FLOAT16 ? 4 : 8, want);
                            }
                        }
                ck_assert_msg(bad == 0, "inorm_convert [%s] %s %s %s -> %s %s: %zu of %zu elements wrong; first %s",
                              tu_backend_name(be), tu_shape_str(s), tu_dtype_name(sdt), tu_layout_name(slo),
                              tu_dtype_name(ddt), tu_layout_name(dlo), bad, n, first);
                pairs++;
                inorm_tensor_destroy(td);
                free(dst);
            }
            /* the source is untouched */
            TU_OK(ctx, inorm_tensor_read(ts, src_back, sbytes));
            ck_assert_msg(memcmp(src, src_back, sbytes) == 0, "inorm_convert [%s] %s: the source changed",
                          tu_backend_name(be), tu_shape_str(s));
            inorm_tensor_destroy(ts);
            free(src), free(src_back);
        }
    }
    printf("convert [%s]: %d (shape, source, destination) cases exact\n", tu_backend_name(be), pairs);
    tu_ctx_destroy(ctx);
}
END_TEST

START_TEST(convert_refusals)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    o_shape s = tu_shape(2, 3, 4, 5);
    inorm_tensor *a = tu_tensor_fmt(ctx, s, INORM_FLOAT32, INORM_NCHW, NULL);
    inorm_tensor *h = tu_tensor_fmt(ctx, s, INORM_FLOAT16, INORM_NHWC, NULL);
    static const o_shape wrong[] = {{1, 3, 4, 5}, {2, 4, 4, 5}, {2, 3, 5, 4}, {2, 3, 4, 6}, {2, 3, 20, 1}};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        inorm_tensor *b = tu_tensor_fmt(ctx, wrong[i], INORM_FLOAT16, INORM_NHWC, NULL);
        TU_EXPECT(ctx, inorm_convert(ctx, a, b), INORM_ERROR_INVALID_ARGUMENT);
        TU_EXPECT(ctx, inorm_convert(ctx, b, a), INORM_ERROR_INVALID_ARGUMENT);
        inorm_tensor_destroy(b);
    }
    TU_EXPECT(ctx, inorm_convert(ctx, a, a), INORM_ERROR_INVALID_ARGUMENT);
    TU_EXPECT(ctx, inorm_convert(ctx, h, h), INORM_ERROR_INVALID_ARGUMENT);
    TU_EXPECT(ctx, inorm_convert(ctx, NULL, h), INORM_ERROR_INVALID_ARGUMENT);
    TU_EXPECT(ctx, inorm_convert(ctx, a, NULL), INORM_ERROR_INVALID_ARGUMENT);
    /* and the context still converts */
    float *v = tu_floats(o_count(s)), *back = tu_floats(o_count(s));
    for (size_t i = 0; i < o_count(s); i++)
        v[i] = (float)i * 0.25f;
    tu_upload(ctx, a, v, o_count(s));
    TU_OK(ctx, inorm_convert(ctx, a, h));
    inorm_tensor *a2 = tu_tensor_fmt(ctx, s, INORM_FLOAT32, INORM_NCHW, NULL);
    TU_OK(ctx, inorm_convert(ctx, h, a2));
    tu_download(ctx, a2, back, o_count(s));
    ck_assert_msg(memcmp(v, back, o_count(s) * sizeof(float)) == 0,
                  "FLOAT32 NCHW -> FLOAT16 NHWC -> FLOAT32 NCHW of exact halves is not the identity");
    free(v), free(back);
    tu_ctx_destroy(ctx);
}
END_TEST

/* ---------------------------------------------------------------- main -- */

int main(void)
{
    tu_init();
    Suite *s = suite_create("family");

    struct {
        const char *name;
        const TTest *test;
        int subset;
    } cases[] = {
        {"matrix_2x3x7x5", matrix_2x3x7x5, 1},
        {"matrix_1x4x1x513", matrix_1x4x1x513, 1},
        {"matrix_1x2x97x89", matrix_1x2x97x89, 1},
        {"matrix_3x5x1x1", matrix_3x5x1x1, 1},
        {"matrix_1x64x16x16", matrix_1x64x16x16, 1},
        {"matrix_2x6x33x17", matrix_2x6x33x17, 1},
        {"matrix_2x44x15x13", matrix_2x44x15x13, 1},
        {"convert_every_pair", convert_every_pair, 0},
        {"convert_refusals", convert_refusals, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_set_timeout(tc, 300);
        if (cases[i].subset)
            tcase_set_tags(tc, "subset");
        TU_ADD_BACKEND_TEST(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }

    /* no library backend: the fp16 functions and the tolerance itself */
    struct {
        const char *name;
        const TTest *test;
    } plain[] = {
        {"half_conversions_hand", half_conversions_hand},
        {"half_conversions_exhaustive", half_conversions_exhaustive},
        {"tolerance_bites_fp16", tolerance_bites_fp16},
    };
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        TCase *tc = tcase_create(plain[i].name);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, plain[i].test);
        suite_add_tcase(s, tc);
    }
    return tu_run(s);
}
