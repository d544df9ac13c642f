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
 * CK_INCLUDE_TAGS=subset runs the TCases meson.build runs again with
 * INORM_DISABLE_SUBGROUPS=1 (the reductions through shared memory): the
 * two-pass NCHW shape of the matrix, NaN under zero mask weights and fp16
 * near its maximum (both in every dtype and layout). TCases tagged
 * "vulkan_geometry" sweep shapes chosen for the Vulkan plans' geometries
 * (NHWC tiles, fused NCHW planes and styles, segments taken whole): for
 * host code (the CPU path's loops, the Vulkan planning and recording) they
 * are more shapes through the same code, which .ci/run's sanitizer,
 * valgrind and aarch64 stages leave out (CK_EXCLUDE_TAGS=vulkan_geometry);
 * plan-vulkan walks those plans under the sanitizers.
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
    o_shape style;     /* adain: this style shape where n != 0, else by variant */
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
    if (fc->style.n)
        ss[0] = fc->style;
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
            for (uint32_t k = 0; k < S; k++) {
                uint32_t sel = (i + (uint32_t)fc->variant) % S; /* even rows one-hot, odd rows mixed */
                w[i * S + k] = (i + (uint32_t)fc->variant) % 2 == 0 ? (k == sel ? 1.0f : 0.0f)
                                                                     : (float)tu_rng_uniform(&r, -0.5, 1.5);
            }
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
 * channels) and 2x44x40x30 (NHWC: two channel tiles, the second partial, and
 * planes of 1200 pixels in several chunks); on both, the masked cases (which
 * take the two-pass kernels) rotate through the activations too. The others
 * run every case of a (dtype, layout) with one activation, a different one
 * for each of the four, so every shape still meets all four: the activation
 * is a specialization constant, and on lavapipe (LLVM, about 0.1 s per
 * pipeline) compiling every variant for every shape takes minutes when Mesa's
 * shader cache is empty.
 */
static const struct {
    o_shape s;
    int core;
} k_shapes[] = {
    {{2, 3, 7, 5}, 1},  {{1, 4, 1, 513}, 0},   {{1, 2, 97, 89}, 0},  {{3, 5, 1, 1}, 0},
    {{1, 64, 16, 16}, 0}, {{2, 6, 33, 17}, 0}, {{2, 44, 40, 30}, 1},
    /* planes of whole 4-vectors but not whole 8-half pairs, past one
     * chunk: fp16 kernels keep to 4-vector loads (HALF_PAIRS); a shape for
     * the Vulkan kernels, tagged vulkan_geometry */
    {{1, 2, 1, 16388}, 0},
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
                        /* not core: one activation per (dtype, layout), a different
                         * one for each of the four */
                        if (!k_shapes[si].core && fc.activation != (2 * dt + lo + (int)si) % 4)
                            continue;
                    } else {
                        if (v < 10) {
                            fc.mask = v - 7; /* 1 per sample, 2 broadcast */
                            fc.affine = 1;
                        } else {
                            fc.affine = v - 8; /* 2 gamma only, 3 beta only */
                        }
                        /* core: rotate; not core: the activation of this (dtype, layout) */
                        fc.activation = k_shapes[si].core ? (int)((counter + si) % 4) : (2 * dt + lo + (int)si) % 4;
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
START_TEST(matrix_2x44x40x30) { run_matrix(tu_backend(_i), 6); }
END_TEST
START_TEST(matrix_1x2x1x16388) { run_matrix(tu_backend(_i), 7); }
END_TEST

/* Every op x dtype x {plain, affine, masked} on shapes of one layout against the
 * oracle, activations and style variants cycling; groups(c, k) picks the
 * group count of the k-th case. */
static void layout_sweep(inorm_context *ctx, inorm_backend be, const char *name, inorm_layout layout,
                         const o_shape *shapes, size_t count, uint32_t (*groups)(uint32_t c, uint64_t k), uint32_t seed)
{
    int cases = 0;
    double worst = 0;
    uint64_t counter = 0;
    for (size_t si = 0; si < count; si++) {
        for (int which = 0; which < OP_COUNT; which++) {
            for (int dt = 0; dt < 2; dt++) {
                for (int v = 0; v < 3; v++) {
                    fam_case fc;
                    memset(&fc, 0, sizeof fc);
                    fc.op = (fam_op)which;
                    fc.s = shapes[si];
                    fc.dtype = dt ? INORM_FLOAT16 : INORM_FLOAT32;
                    fc.layout = layout;
                    fc.affine = v == 1;
                    fc.activation = (int)(counter % 4);
                    fc.mask = v == 2 && (which == OP_INSTANCE || which == OP_GROUP || which == OP_ADAIN) ? 1 : 0;
                    fc.eps = 1e-5f;
                    fc.groups = groups(fc.s.c, counter);
                    fc.variant = (int)(counter % 6);
                    fc.seed = seed + (uint32_t)counter;
                    counter++;
                    fam_result r = run_case(ctx, be, &fc);
                    cases += r.ran;
                    worst = fmax(worst, r.worst);
                }
            }
        }
    }
    printf("%s [%s]: %d cases within tolerance, worst |err|/bound = %.4f\n", name, tu_backend_name(be), cases, worst);
}

static uint32_t groups_of_4(uint32_t c, uint64_t k)
{
    (void)k;
    return c / 4;
}

/* NHWC shapes where CPU devices give each lane several channel quads (C % 4
 * == 0, quads sharing out over the lanes, enough tiles): every op, both
 * dtypes, masks and AdaIN's differently shaped styles, against the oracle.
 * fp16 lanes of two quads load them as pairs (HALF_PAIR_UNITS): 4x128x24x20
 * in the apply that reduces its own tiles, 2x256x32x32 in the statistics
 * pass too, 1x256x24x20 where fp16 lanes take two quads and fp32 lanes one
 * (on hosts of up to 2 threads: 4 tiles of quad pairs). On the first two,
 * fp16 group norm in groups of half a quad, one quad, a pair of quads (one
 * lane's) and two pairs (two lanes', self_pair_group_stats in
 * shaders/norm_apply.comp). On other devices they are more NHWC shapes. */
START_TEST(nhwc_quads_per_lane)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    const o_shape shapes[] = {{16, 256, 8, 8}, {16, 64, 5, 3}, {4, 128, 24, 20}, {2, 256, 32, 32}, {1, 256, 24, 20}};
    layout_sweep(ctx, be, "nhwc quads per lane", INORM_NHWC, shapes, sizeof shapes / sizeof shapes[0], groups_of_4, 7000u);
    /* fp16 group norm on lanes of quad pairs: reduced by the apply (4x128x24x20) or by a
     * statistics pass whose partials are per channel or per quad (2x256x32x32) */
    const o_shape pair_shapes[] = {{4, 128, 24, 20}, {2, 256, 32, 32}};
    const uint32_t group_widths[] = {2, 4, 8, 16};
    for (uint32_t i = 0; i < 8; i++) {
        const o_shape ps = pair_shapes[i / 4];
        const uint32_t width = group_widths[i % 4];
        const fam_case fc = {.op = OP_GROUP, .s = ps, .dtype = INORM_FLOAT16, .layout = INORM_NHWC,
                             .affine = (int)(i % 2), .activation = (int)(i % 4), .eps = 1e-5f,
                             .groups = ps.c / width, .seed = 7900u + i};
        ck_assert_msg(run_case(ctx, be, &fc).ran, "nhwc quads per lane: fp16 groups of %u channels did not run", width);
    }
    tu_ctx_destroy(ctx);
}
END_TEST

/* NHWC segments of whole channel tiles: layer norm (any C, including a last
 * tile that C does not fill) and groups of 32 or 64 channels (a tile's
 * channels in both kernel geometries), over planes of several chunks. There
 * each statistics workgroup merges its channels into one partial per (sample,
 * tile, chunk), and the apply merges a segment's partials itself. Every op
 * (the ones with single-channel segments take the usual path), both dtypes,
 * masks, against the oracle. */
static uint32_t groups_of_whole_tiles(uint32_t c, uint64_t k)
{
    const uint32_t widths[] = {32, 64, c};  /* channels per group */
    const uint32_t width = widths[k % 3];
    return c % width == 0 ? c / width : 1;
}

START_TEST(nhwc_segment_tiles)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    const o_shape shapes[] = {{2, 64, 32, 32}, {2, 128, 40, 24}, {3, 96, 16, 20}, {1, 200, 24, 24}, {2, 36, 30, 30}};
    layout_sweep(ctx, be, "nhwc segment tiles", INORM_NHWC, shapes, sizeof shapes / sizeof shapes[0], groups_of_whole_tiles, 13000u);
    tu_ctx_destroy(ctx);
}
END_TEST

/* NHWC group norm whose groups neither divide a GPU tile's 32 channels nor
 * are whole tiles of it: Stable Diffusion's C = 320, 640, 960, 1280 in 32
 * groups (10, 20, 30, 40 channels) and 16 (20 to 80). On GPUs the tile
 * then takes 20 or 30 channels, so that a statistics workgroup merges whole
 * groups into one partial, or a group is whole tiles (nhwc_gpu_block in
 * src/vulkan/vk_backend.c). Every op (the per-channel ones on the same
 * tiles), both dtypes, affine and masks, against the oracle. */
static uint32_t groups_16_or_32(uint32_t c, uint64_t k)
{
    return c % 32 == 0 ? (k % 2 ? 16 : 32) : 1;
}

START_TEST(nhwc_uneven_groups)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    const o_shape shapes[] = {{2, 320, 12, 10}, {2, 640, 8, 8}, {1, 960, 9, 8}, {1, 1280, 6, 5}};
    layout_sweep(ctx, be, "nhwc uneven groups", INORM_NHWC, shapes, sizeof shapes / sizeof shapes[0], groups_16_or_32,
                 17000u);
    tu_ctx_destroy(ctx);
}
END_TEST

/* NCHW group and layer norm of planes narrower than a lane group (4 x 4,
 * 2 x 6, 4 x 2) in segments past the fused kernel's size: the apply takes
 * (a, b) per vec4 there instead of a plane at a time. Groups of 32 and 64
 * channels and layer norm, with and without affine, against the oracle. */
START_TEST(nchw_small_planes_wide_groups)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    const o_shape shapes[] = {{4, 256, 4, 4}, {2, 128, 2, 6}, {3, 96, 4, 2}};
    layout_sweep(ctx, be, "nchw small planes, wide groups", INORM_NCHW, shapes, sizeof shapes / sizeof shapes[0],
                 groups_of_whole_tiles, 15000u);
    tu_ctx_destroy(ctx);
}
END_TEST

/* NHWC with C % 4 != 0 (RGB images and the like): on CPU-type Vulkan devices
 * FOLD pixels are read as one row of C * FOLD values (4 pixels for odd C, 2
 * for C % 4 == 2) where the planes divide, and statistics are kept per
 * "virtual channel" and merged per channel. Every op, both dtypes, with and
 * without affine and masks (which never fold), styles that fold and that do
 * not, group norm with groups of several channels, and planes that do not
 * divide (the scalar path), against the oracle. */
static uint32_t groups_of_2_or_all(uint32_t c, uint64_t k)
{
    (void)k;
    return c % 2 == 0 ? c / 2 : 1;  /* groups of 2 channels, or layer norm */
}

START_TEST(nhwc_folded_pixels)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    const o_shape shapes[] = {{2, 3, 16, 16}, {3, 3, 20, 12}, {2, 6, 8, 10},  {2, 5, 4, 6},
                              {2, 3, 5, 5},   {2, 2, 6, 6},   {1, 3, 256, 256}, {1, 7, 64, 48}};
    layout_sweep(ctx, be, "nhwc folded pixels", INORM_NHWC, shapes, sizeof shapes / sizeof shapes[0], groups_of_2_or_all, 9000u);
    tu_ctx_destroy(ctx);
}
END_TEST

/* NHWC planes of at most 16 pixels (CPU devices: 64) run fused on Vulkan
 * (a lane per channel quad or channel and sample, or per group for group
 * norm), in one read: every op, both dtypes, affine and masks (never
 * fused), channel counts with and without quads, groups of 16 (or all), 4,
 * 2, 1 and all channels, one-pixel planes, against the oracle. */
static uint32_t groups_cycling(uint32_t c, uint64_t k)
{
    const uint32_t sizes[] = {c % 16 == 0 ? 16 : c, c % 4 == 0 ? 4 : c, c % 2 == 0 ? 2 : 1, 1, c};
    return c / sizes[k % 5];
}

START_TEST(nhwc_tiny_planes)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    /* planes of up to 16 pixels fuse on every device, up to 64 (the last
     * three: 8x8, 5x7 with odd C, 6x6) on CPU devices */
    const o_shape shapes[] = {{16, 512, 4, 4}, {3, 12, 3, 5}, {5, 7, 2, 2}, {4, 8, 1, 1}, {2, 64, 4, 4},
                              {2, 128, 4, 4}, {2, 20, 8, 8}, {3, 6, 5, 7}, {1, 32, 6, 6}};
    layout_sweep(ctx, be, "nhwc tiny planes", INORM_NHWC, shapes, sizeof shapes / sizeof shapes[0], groups_cycling, 11000u);
    tu_ctx_destroy(ctx);
}
END_TEST

/* AdaIN on planes that run fused on Vulkan, with styles each team (NHWC:
 * lane) reduces first, of the content's plane or smaller, shared by every
 * sample or one per sample, in scalar and vec4 units; and styles that take
 * a statistics dispatch of their own instead (larger than the content
 * plane, or not whole vec4s beside vec4 content). Both dtypes and layouts,
 * alpha 1 and blends, unbiased, activations, in place, against the oracle. */
START_TEST(adain_fused_styles)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    static const struct {
        o_shape content, style;
    } k_cases[] = {
        {{2, 8, 4, 4}, {2, 8, 4, 4}},     {{2, 8, 4, 4}, {1, 8, 2, 2}},    {{2, 8, 4, 4}, {2, 8, 8, 8}},
        {{2, 8, 4, 4}, {2, 8, 9, 9}},     {{2, 8, 4, 4}, {1, 8, 3, 3}},    {{3, 5, 3, 5}, {3, 5, 7, 8}},
        {{1, 6, 32, 32}, {1, 6, 48, 40}}, {{1, 6, 32, 32}, {1, 6, 30, 30}}, {{2, 4, 64, 64}, {2, 4, 96, 96}},
        {{2, 4, 64, 64}, {1, 4, 60, 60}}, {{2, 3, 33, 31}, {2, 3, 50, 60}}, {{2, 3, 33, 31}, {1, 3, 7, 9}},
    };
    int cases = 0;
    double worst = 0.0;
    uint64_t counter = 0;
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; ++i)
        for (int lo = 0; lo < 2; ++lo)
            for (int dt = 0; dt < 2; ++dt)
                for (int v = 0; v < 2; ++v) {
                    fam_case fc;
                    memset(&fc, 0, sizeof fc);
                    fc.op = OP_ADAIN;
                    fc.s = k_cases[i].content;
                    fc.style = k_cases[i].style;
                    fc.dtype = dt ? INORM_FLOAT16 : INORM_FLOAT32;
                    fc.layout = lo ? INORM_NHWC : INORM_NCHW;
                    fc.affine = v;  /* a blend */
                    fc.activation = (int)(counter % 4);
                    fc.unbiased = (int)(counter / 4 % 2);
                    fc.eps = 1e-5f;
                    fc.inplace = (int)(counter / 2 % 2);
                    fc.variant = (int)(counter % 6);
                    fc.seed = 19000u + counter;
                    counter++;
                    fam_result r = run_case(ctx, be, &fc);
                    cases += r.ran;
                    worst = fmax(worst, r.worst);
                }
    printf("adain fused styles [%s]: %d cases within tolerance, worst |err|/bound = %.4f\n", tu_backend_name(be),
           cases, worst);
    tu_ctx_destroy(ctx);
}
END_TEST

/* NCHW planes that CPU-type Vulkan devices read once with many values per
 * lane (up to 128 vec4, or 128 floats where the plane is not a multiple of
 * 4): 64x64, 48x40 and 33x31, through every op, flag and activation. */
START_TEST(nchw_fused_register_planes)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    const o_shape shapes[] = {{2, 6, 64, 64}, {2, 5, 48, 40}, {1, 3, 33, 31}};
    layout_sweep(ctx, be, "nchw fused register planes", INORM_NCHW, shapes, sizeof shapes / sizeof shapes[0],
                 groups_cycling, 16000u);
    tu_ctx_destroy(ctx);
}
END_TEST

/* NCHW segments past one statistics chunk (2048 units: vec4s, or floats
 * where the plane is not a multiple of 4) with many segments: CPU-type
 * Vulkan devices take each whole, one workgroup reducing and then
 * normalizing it (whole_segments in src/vulkan/vk_backend.c; 64 segments
 * are enough on hosts of up to 8 threads). Groups of 4 channels of 48x43
 * (8256 elements, vec4) and planes of 47x45 (2115 floats); every op, both
 * dtypes, affine and masks (which keep the statistics pass), against the
 * oracle. Vulkan only: the CPU path has no such plan, and its planes of
 * these sizes are in the other sweeps. */
START_TEST(nchw_whole_segments)
{
    inorm_backend be = tu_backend(_i);
    if (be == INORM_BACKEND_CPU)
        return;
    TU_CTX(ctx, be);
    const o_shape shapes[] = {{2, 128, 48, 43}, {1, 64, 47, 45}};
    layout_sweep(ctx, be, "nchw whole segments", INORM_NCHW, shapes, sizeof shapes / sizeof shapes[0], groups_of_4,
                 21000u);
    tu_ctx_destroy(ctx);
}
END_TEST

/* NHWC instance norm and group norm on CPU-type Vulkan devices where the tensor is small
 * and its tiles of one channel quad per lane are many (nhwc_self_stats in
 * src/vulkan/vk_backend.c; 16 tiles are enough on hosts of up to 4
 * threads): each apply lane reduces its quads over the whole plane and then
 * normalizes them, in runs of 16 blocks of 8 pixels (RUN in
 * shaders/accumulate.glsl). Planes of 144, 120 and 255 pixels (a last
 * partial block and run), C = 36 leaving a tile's last lanes without a
 * quad; group norm in groups of 4, 8 and 16 channels, whose lanes sum
 * their moments with their group's neighbours; every op (the rest take
 * their usual plans), both dtypes, affine and
 * masks (which keep the statistics pass), against the oracle. Then instance
 * norm and AdaIN of 1000 + N(0, 1), where E[x^2] - E[x]^2 in fp32 would
 * lose the variance. Vulkan only: the CPU path has no such plan, and its
 * NHWC planes of these sizes are in the other sweeps. */
/* Groups of 4, 8 and 16 channels in turn (1, 2 and 4 neighbouring lanes'
 * quads), where C has them. */
static uint32_t groups_of_lane_quads(uint32_t c, uint64_t k)
{
    const uint32_t width = 4u << (k % 3);
    return c % width == 0 ? c / width : c / 4;
}

START_TEST(nhwc_self_stats)
{
    inorm_backend be = tu_backend(_i);
    if (be == INORM_BACKEND_CPU)
        return;
    TU_CTX(ctx, be);
    const o_shape shapes[] = {{16, 32, 12, 12}, {4, 128, 12, 10}, {8, 36, 17, 15}};
    layout_sweep(ctx, be, "nhwc self stats", INORM_NHWC, shapes, sizeof shapes / sizeof shapes[0],
                 groups_of_lane_quads, 23000u);

    const o_shape s = {16, 32, 12, 12};
    const size_t n = o_count(s);
    float *x = tu_floats(n), *style = tu_floats(n), *y = tu_floats(n);
    double *ref = tu_doubles(n), *mag = tu_doubles(n);
    tu_rng r;
    tu_rng_seed(&r, 23999);
    tu_fill_normal(&r, x, n, 1000.0, 1.0);
    for (size_t i = 0; i < n; i++)
        style[i] = x[n - 1 - i] - 500.0f;
    inorm_tensor *tx = tu_tensor_fmt(ctx, s, INORM_FLOAT32, INORM_NHWC, x);
    inorm_tensor *tstyle = tu_tensor_fmt(ctx, s, INORM_FLOAT32, INORM_NHWC, style);
    inorm_tensor *ty = tu_tensor_fmt(ctx, s, INORM_FLOAT32, INORM_NHWC, NULL);
    const o_params params = {.eps = 1e-5f, .nhwc = 1};
    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, NULL, ty));
    tu_download_fmt(ctx, ty, y, n);
    oracle_group_norm_ex(&params, s, x, s.c, NULL, NULL, ref, mag);
    tu_assert_close_fmt("nhwc self stats: instance norm of 1000 + N(0, 1)", s, INORM_FLOAT32, INORM_NHWC, y, ref, mag);
    TU_OK(ctx, inorm_adain(ctx, tx, tstyle, 1.0f, NULL, ty));
    tu_download_fmt(ctx, ty, y, n);
    const float *const styles[1] = {style};
    const double weights[1] = {1.0};
    oracle_adain_mix_ex(&params, s, x, 1, &s, styles, weights, 1.0, ref, mag);
    tu_assert_close_fmt("nhwc self stats: adain of 1000 + N(0, 1)", s, INORM_FLOAT32, INORM_NHWC, y, ref, mag);
    inorm_tensor_destroy(tx);
    inorm_tensor_destroy(tstyle);
    inorm_tensor_destroy(ty);
    free(x), free(style), free(y), free(ref), free(mag);
    tu_ctx_destroy(ctx);
}
END_TEST

/* NHWC tiles of at most a quarter of a workgroup's lanes (C = 4 or 8, and
 * C = 2 read two pixels to a row): on CPU-type Vulkan devices the apply's
 * rows take the pixels of the workgroup's chunks in turn (apply_nhwc4 in
 * shaders/norm_apply.comp), over plane lengths whose chunks do not share out
 * evenly over the rows; every op, both dtypes, affine and masks, against the
 * oracle (on other devices more NHWC shapes). */
START_TEST(nhwc_narrow_tiles)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    const o_shape shapes[] = {{1, 4, 70, 70}, {2, 8, 33, 37}, {1, 4, 1, 8191}, {3, 2, 45, 46}};
    layout_sweep(ctx, be, "nhwc narrow tiles", INORM_NHWC, shapes, sizeof shapes / sizeof shapes[0], groups_cycling,
                 25000u);
    tu_ctx_destroy(ctx);
}
END_TEST

/* ------------------------------------------------------------ formats -- */

static const struct {
    inorm_dtype dt;
    inorm_layout lo;
} k_formats[4] = {
    {INORM_FLOAT32, INORM_NCHW}, {INORM_FLOAT16, INORM_NCHW}, {INORM_FLOAT32, INORM_NHWC}, {INORM_FLOAT16, INORM_NHWC},
};
#define FMT_NAME(f) tu_fmt("%s %s", tu_dtype_name(k_formats[f].dt), tu_layout_name(k_formats[f].lo))

/* Does the context's error text mention `word`? (The argument at fault.) */
static void expect_error_mentions(const inorm_context *ctx, const char *word, const char *what)
{
    const char *e = inorm_context_error(ctx);
    ck_assert_msg(e && strstr(e, word), "%s: the error text \"%s\" does not name \"%s\"", what, e ? e : "(NULL)",
                  word);
}

/* --------------------------------------------------------------- masks -- */

/* Weighted statistics by hand: the oracle and both backends agree with
 * numbers worked out on paper. */
START_TEST(mask_hand_examples)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    /* x = [1 2; 3 4], w = [1 0.5; 0 1]: W = 2.5, mean = (1 + 1 + 4) / 2.5 = 2.4,
     * sum w (x - mean)^2 = 1.96 + 0.08 + 2.56 = 4.6: var 1.84, unbiased 4.6 / 1.5 */
    const float x[4] = {1, 2, 3, 4}, w[4] = {1, 0.5f, 0, 1};
    o_shape s = tu_shape(1, 1, 2, 2);
    inorm_tensor *tx = tu_tensor(ctx, s, x), *tw = tu_tensor(ctx, s, w);
    inorm_tensor *tm = tu_tensor(ctx, tu_shape(1, 1, 1, 1), NULL), *tsd = tu_tensor(ctx, tu_shape(1, 1, 1, 1), NULL);
    inorm_tensor *ty = tu_tensor(ctx, s, NULL);
    for (int unbiased = 0; unbiased < 2; unbiased++) {
        double want_var = unbiased ? 4.6 / 1.5 : 1.84;
        o_params op = {.eps = 0.0f, .unbiased = unbiased, .mask = w, .mask_n = 1};
        double om, os, osig;
        oracle_stats_ex(&op, s, x, &om, &os, &osig);
        ck_assert_msg(fabs(om - 2.4) < 1e-12 && fabs(os * os - want_var) < 1e-12,
                      "oracle: weighted mean %.17g (want 2.4), var %.17g (want %.17g)", om, os * os, want_var);
        inorm_norm_params p = {.eps = 0.0f, .unbiased = unbiased, .mask = tw};
        TU_OK(ctx, inorm_stats(ctx, tx, &p, tm, tsd));
        float m, sd;
        tu_download(ctx, tm, &m, 1);
        tu_download(ctx, tsd, &sd, 1);
        ck_assert_msg(fabs(m - 2.4) <= 4 * FLT_EPSILON * 2.4 && fabs(sd - sqrt(want_var)) <= 8 * FLT_EPSILON * 2,
                      "stats [%s] masked unbiased=%d: mean %.9g std %.9g, want 2.4 and %.9g", tu_backend_name(be),
                      unbiased, (double)m, (double)sd, sqrt(want_var));
        /* every element is normalized, the one of weight 0 too */
        TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, &p, ty));
        float y[4];
        tu_download(ctx, ty, y, 4);
        for (int i = 0; i < 4; i++) {
            double want = (x[i] - 2.4) / sqrt(want_var);
            ck_assert_msg(fabs(y[i] - want) <= 16 * FLT_EPSILON * 4,
                          "instance_norm [%s] masked unbiased=%d: y[%d] = %.9g, want %.9g", tu_backend_name(be),
                          unbiased, i, (double)y[i], want);
        }
    }
    /* group norm, one group of 2 channels, mask [1 0] over 1 x 2 pixels: the
     * statistics are those of {1, 3} (channel 0 and 1 at pixel 0): mean 2,
     * var 1, so y = x - 2 everywhere */
    const float xg[4] = {1, 2, 3, 4}, wg[2] = {1, 0};
    o_shape sg = tu_shape(1, 2, 1, 2);
    inorm_tensor *txg = tu_tensor(ctx, sg, xg), *twg = tu_tensor(ctx, tu_shape(1, 1, 1, 2), wg);
    inorm_tensor *tyg = tu_tensor(ctx, sg, NULL);
    inorm_norm_params pg = {.eps = 0.0f, .mask = twg};
    TU_OK(ctx, inorm_group_norm(ctx, txg, 1, NULL, NULL, &pg, tyg));
    float yg[4];
    tu_download(ctx, tyg, yg, 4);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(fabs(yg[i] - (xg[i] - 2.0)) <= 8 * FLT_EPSILON * 4,
                      "group_norm [%s] groups=1 masked: y[%d] = %.9g, want %.9g", tu_backend_name(be), i,
                      (double)yg[i], xg[i] - 2.0);
    tu_ctx_destroy(ctx);
}
END_TEST

/* A mask whose weights of one sample are all zero, weights outside [0, 1] or
 * not finite, too little weight for unbiased statistics, wrong shapes: all
 * refused with a message naming the mask, on every op that takes one. */
START_TEST(mask_refusals)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    o_shape s = tu_shape(2, 3, 4, 5), ss = tu_shape(2, 3, 3, 2);
    size_t hw = o_plane(s), shw = o_plane(ss);
    tu_rng r;
    tu_rng_seed(&r, 77);
    float *x = tu_floats(o_count(s)), *st = tu_floats(o_count(ss));
    gen_data(&r, x, s, 0, 0);
    gen_data(&r, st, ss, 0, 0);
    inorm_tensor *tx = tu_tensor(ctx, s, x), *ty = tu_tensor(ctx, s, NULL), *tst = tu_tensor(ctx, ss, st);
    inorm_tensor *tm = tu_tensor(ctx, nc_shape(s), NULL), *tsd = tu_tensor(ctx, nc_shape(s), NULL);
    float ones[6];
    for (int i = 0; i < 6; i++)
        ones[i] = 1.0f;
    inorm_tensor *tsc = tu_tensor(ctx, nc_shape(s), ones), *tbank = tu_tensor(ctx, tu_shape(2, 3, 1, 1), ones);
    inorm_tensor *tbw = tu_tensor(ctx, tu_shape(2, 2, 1, 1), ones);
    const inorm_tensor *styles[1] = {tst};
    const float one = 1.0f;

    float *m = tu_floats(2 * hw), *sm = tu_floats(2 * shw);
    inorm_tensor *tmask = tu_tensor(ctx, tu_shape(2, 1, s.h, s.w), NULL);
    inorm_tensor *tsmask = tu_tensor(ctx, tu_shape(2, 1, ss.h, ss.w), NULL);

    /* bad[k]: the content mask's sample 1 gets this; the style mask likewise */
    static const float bad_values[] = {0.0f /* all zero */, 1.5f, -0.1f, NAN, INFINITY, -INFINITY};
    for (size_t k = 0; k < sizeof bad_values / sizeof bad_values[0]; k++) {
        for (size_t i = 0; i < 2 * hw; i++)
            m[i] = 0.5f;
        for (size_t i = 0; i < 2 * shw; i++)
            sm[i] = 0.5f;
        if (k == 0) {
            for (size_t i = hw; i < 2 * hw; i++)
                m[i] = 0.0f; /* sample 1 entirely zero */
            for (size_t i = shw; i < 2 * shw; i++)
                sm[i] = 0.0f;
        } else {
            m[hw + 7] = bad_values[k];
            sm[shw + 1] = bad_values[k];
        }
        const char *what = k == 0 ? "all-zero sample" : tu_fmt("a weight of %g", (double)bad_values[k]);
        /* content mask bad, style mask fine */
        tu_upload(ctx, tmask, m, 2 * hw);
        float good_sm[12];
        for (int i = 0; i < 12; i++)
            good_sm[i] = 0.5f;
        tu_upload(ctx, tsmask, good_sm, 2 * shw);
        inorm_norm_params p = {.eps = 1e-5f, .mask = tmask};
        TU_EXPECT(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, &p, ty), INORM_ERROR_INVALID_ARGUMENT);
        expect_error_mentions(ctx, "mask", tu_fmt("instance_norm, mask with %s", what));
        TU_EXPECT(ctx, inorm_group_norm(ctx, tx, 1, NULL, NULL, &p, ty), INORM_ERROR_INVALID_ARGUMENT);
        TU_EXPECT(ctx, inorm_layer_norm(ctx, tx, NULL, NULL, &p, ty), INORM_ERROR_INVALID_ARGUMENT);
        TU_EXPECT(ctx, inorm_adain_modulate(ctx, tx, tsc, NULL, &p, ty), INORM_ERROR_INVALID_ARGUMENT);
        TU_EXPECT(ctx, inorm_conditional_instance_norm(ctx, tx, tbank, NULL, tbw, &p, ty),
                  INORM_ERROR_INVALID_ARGUMENT);
        TU_EXPECT(ctx, inorm_stats(ctx, tx, &p, tm, tsd), INORM_ERROR_INVALID_ARGUMENT);
        expect_error_mentions(ctx, "mask", tu_fmt("stats, mask with %s", what));
        TU_EXPECT(ctx, inorm_adain(ctx, tx, tst, 1.0f, &p, ty), INORM_ERROR_INVALID_ARGUMENT);
        TU_EXPECT(ctx, inorm_adain_mix(ctx, tx, styles, &one, 1, 1.0f, &p, ty), INORM_ERROR_INVALID_ARGUMENT);
        /* style mask bad, content mask fine */
        for (size_t i = 0; i < 2 * hw; i++)
            m[i] = 0.5f;
        tu_upload(ctx, tmask, m, 2 * hw);
        tu_upload(ctx, tsmask, sm, 2 * shw);
        inorm_norm_params ps = {.eps = 1e-5f, .mask = tmask, .style_mask = tsmask};
        TU_EXPECT(ctx, inorm_adain(ctx, tx, tst, 1.0f, &ps, ty), INORM_ERROR_INVALID_ARGUMENT);
        expect_error_mentions(ctx, "style_mask", tu_fmt("adain, style_mask with %s", what));
        TU_EXPECT(ctx, inorm_adain_mix(ctx, tx, styles, &one, 1, 1.0f, &ps, ty), INORM_ERROR_INVALID_ARGUMENT);
        expect_error_mentions(ctx, "style_mask", tu_fmt("adain_mix, style_mask with %s", what));
    }

    /* unbiased needs a total weight above 1: a one-hot mask has 1 */
    for (size_t i = 0; i < 2 * hw; i++)
        m[i] = i % hw == 3 ? 1.0f : 0.0f;
    tu_upload(ctx, tmask, m, 2 * hw);
    inorm_norm_params pu = {.eps = 1e-5f, .unbiased = 1, .mask = tmask};
    TU_EXPECT(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, &pu, ty), INORM_ERROR_INVALID_ARGUMENT);
    TU_EXPECT(ctx, inorm_stats(ctx, tx, &pu, tm, tsd), INORM_ERROR_INVALID_ARGUMENT);
    /* ... which the biased statistics accept (variance 0) */
    inorm_norm_params pb = {.eps = 1e-5f, .mask = tmask};
    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, &pb, ty));
    /* and a one-group group norm accepts unbiased: 3 channels at that pixel weigh 3 */
    TU_OK(ctx, inorm_group_norm(ctx, tx, 1, NULL, NULL, &pu, ty));
    {
        float *y = tu_floats(o_count(s));
        double *ref = tu_doubles(o_count(s)), *mag = tu_doubles(o_count(s));
        tu_download(ctx, ty, y, o_count(s));
        o_params op = {.eps = 1e-5f, .unbiased = 1, .mask = m, .mask_n = 2};
        oracle_group_norm_ex(&op, s, x, 1, NULL, NULL, ref, mag);
        tu_assert_close(tu_fmt("group_norm [%s] groups=1 unbiased, one-hot mask (3 values per group)",
                               tu_backend_name(be)),
                        s, y, ref, mag);
        free(y), free(ref), free(mag);
    }

    /* wrong shapes and types */
    static const o_shape wrong[] = {{2, 2, 4, 5}, {2, 1, 5, 4}, {3, 1, 4, 5}, {2, 1, 4, 6}, {1, 1, 20, 1}};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        inorm_tensor *tw = tu_tensor(ctx, wrong[i], NULL);
        float *v = tu_floats(o_count(wrong[i]));
        for (size_t j = 0; j < o_count(wrong[i]); j++)
            v[j] = 0.5f;
        tu_upload(ctx, tw, v, o_count(wrong[i]));
        inorm_norm_params p = {.eps = 1e-5f, .mask = tw};
        TU_EXPECT(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, &p, ty), INORM_ERROR_INVALID_ARGUMENT);
        expect_error_mentions(ctx, "mask", tu_fmt("instance_norm with a %s mask", tu_shape_str(wrong[i])));
        TU_EXPECT(ctx, inorm_stats(ctx, tx, &p, tm, tsd), INORM_ERROR_INVALID_ARGUMENT);
        inorm_tensor_destroy(tw);
        free(v);
    }
    inorm_tensor *tm16 = tu_tensor_fmt(ctx, tu_shape(2, 1, s.h, s.w), INORM_FLOAT16, INORM_NCHW, NULL);
    inorm_norm_params p16 = {.eps = 1e-5f, .mask = tm16};
    TU_EXPECT(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, &p16, ty), INORM_ERROR_INVALID_ARGUMENT);
    /* a style mask with the content's H x W (not the style's) */
    for (size_t i = 0; i < 2 * hw; i++)
        m[i] = 0.5f;
    tu_upload(ctx, tmask, m, 2 * hw);
    inorm_norm_params pw = {.eps = 1e-5f, .style_mask = tmask};
    TU_EXPECT(ctx, inorm_adain(ctx, tx, tst, 1.0f, &pw, ty), INORM_ERROR_INVALID_ARGUMENT);
    TU_EXPECT(ctx, inorm_adain_mix(ctx, tx, styles, &one, 1, 1.0f, &pw, ty), INORM_ERROR_INVALID_ARGUMENT);
    /* a style mask on ops without a style */
    TU_EXPECT(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, &pw, ty), INORM_ERROR_INVALID_ARGUMENT);
    TU_EXPECT(ctx, inorm_stats(ctx, tx, &pw, tm, tsd), INORM_ERROR_INVALID_ARGUMENT);
    TU_EXPECT(ctx, inorm_adain_modulate(ctx, tx, tsc, NULL, &pw, ty), INORM_ERROR_INVALID_ARGUMENT);
    /* the mask as the output */
    inorm_norm_params pm = {.eps = 1e-5f, .mask = tmask};
    inorm_tensor *tx1 = tu_tensor(ctx, tu_shape(2, 1, s.h, s.w), m);
    TU_EXPECT(ctx, inorm_instance_norm(ctx, tx1, NULL, NULL, &pm, tmask), INORM_ERROR_INVALID_ARGUMENT);

    /* the context still works with a good mask */
    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, &pm, ty));
    inorm_tensor_destroy(tx1);
    inorm_tensor_destroy(tm16);
    free(x), free(st), free(m), free(sm);
    tu_ctx_destroy(ctx);
}
END_TEST

/* NaN (and Inf) under a zero weight does not reach the statistics: every
 * other element is normal; the element itself is still normalized, so it
 * is NaN (and stays NaN through the activation). */
START_TEST(mask_nan_under_zero_weight)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    o_shape s = tu_shape(2, 3, 6, 7), ss = tu_shape(1, 3, 5, 4);
    size_t n = o_count(s), hw = o_plane(s), shw = o_plane(ss);
    for (int f = 0; f < 4; f++) {
        int nhwc = k_formats[f].lo == INORM_NHWC, half = k_formats[f].dt == INORM_FLOAT16;
        tu_rng r;
        tu_rng_seed(&r, 300 + (uint64_t)f);
        float *x = tu_floats(n), *st = tu_floats(o_count(ss)), *y = tu_floats(n);
        float *m = tu_floats(2 * hw), *sm = tu_floats(shw);
        double *ref = tu_doubles(n), *mag = tu_doubles(n);
        gen_data(&r, x, s, nhwc, half);
        gen_data(&r, st, ss, nhwc, half);
        gen_mask(&r, m, 2, hw);
        gen_mask(&r, sm, 1, shw);
        /* poison: pixel 5 of sample 0 (every channel, NaN or Inf), pixel 11 of
         * sample 1 (channel 2), pixel 3 of the style */
        size_t poisoned = 0;
        for (uint32_t c = 0; c < s.c; c++, poisoned++)
            x[o_index(s, nhwc, 0, c, 5)] = c == 1 ? INFINITY : NAN;
        x[o_index(s, nhwc, 1, 2, 11)] = NAN;
        poisoned++;
        /* and the first pixel of sample 1 (channel 0) and of the style: the
         * GPU shifts each chunk by its first value, which must not be one
         * the mask leaves out */
        x[o_index(s, nhwc, 1, 0, 0)] = NAN;
        poisoned++;
        m[5] = 0.0f;
        m[hw + 11] = 0.0f;
        m[hw + 0] = 0.0f;
        for (uint32_t c = 0; c < s.c; c++)
            st[o_index(ss, nhwc, 0, c, 3)] = NAN;
        st[o_index(ss, nhwc, 0, 1, 0)] = NAN;
        sm[3] = 0.0f;
        sm[0] = 0.0f;
        inorm_tensor *tx = tu_tensor_fmt(ctx, s, k_formats[f].dt, k_formats[f].lo, x);
        inorm_tensor *ty = tu_tensor_fmt(ctx, s, k_formats[f].dt, k_formats[f].lo, NULL);
        inorm_tensor *tst = tu_tensor_fmt(ctx, ss, k_formats[f].dt, k_formats[f].lo, st);
        inorm_tensor *tm = tu_tensor(ctx, tu_shape(2, 1, s.h, s.w), m);
        inorm_tensor *tsm = tu_tensor(ctx, tu_shape(1, 1, ss.h, ss.w), sm);
        for (int opk = 0; opk < 4; opk++) {
            inorm_norm_params p = {.eps = 1e-5f, .activation = (inorm_activation)(opk % 4), .activation_slope = 0.2f,
                                   .mask = tm, .style_mask = opk >= 2 ? tsm : NULL};
            o_params op = {.eps = 1e-5f, .nhwc = nhwc, .activation = opk % 4, .slope = 0.2f, .mask = m,
                           .mask_n = 2, .style_mask = opk >= 2 ? sm : NULL, .style_mask_n = 1};
            const char *name;
            if (opk == 0) {
                name = "instance_norm";
                TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, &p, ty));
                oracle_group_norm_ex(&op, s, x, s.c, NULL, NULL, ref, mag);
            } else if (opk == 1) {
                name = "group_norm groups=1";
                TU_OK(ctx, inorm_group_norm(ctx, tx, 1, NULL, NULL, &p, ty));
                oracle_group_norm_ex(&op, s, x, 1, NULL, NULL, ref, mag);
            } else {
                name = "adain (NaN in content and style under zero weights)";
                TU_OK(ctx, inorm_adain(ctx, tx, tst, 1.0f, &p, ty));
                const double w1 = 1.0;
                const float *sts[1] = {st};
                oracle_adain_mix_ex(&op, s, x, 1, &ss, sts, &w1, 1.0, ref, mag);
            }
            tu_download_fmt(ctx, ty, y, n);
            size_t bad = 0;
            for (size_t i = 0; i < n; i++)
                bad += !isfinite(y[i]);
            const char *what = tu_fmt("%s [%s] %s act=%s", name, tu_backend_name(be), FMT_NAME(f), act_name(opk % 4));
            /* the poisoned elements themselves: NaN (Inf normalizes to +-Inf, or
             * NaN through an activation that meets -Inf * 0) */
            ck_assert_msg(bad == poisoned,
                          "%s: %zu non-finite outputs, want exactly the %zu poisoned elements (under zero weights)",
                          what, bad, poisoned);
            tu_assert_close_fmt(what, s, k_formats[f].dt, k_formats[f].lo, y, ref, mag);
        }
        /* stats: finite */
        inorm_tensor *tmean = tu_tensor(ctx, nc_shape(s), NULL), *tstd = tu_tensor(ctx, nc_shape(s), NULL);
        inorm_norm_params p = {.eps = 1e-5f, .mask = tm};
        TU_OK(ctx, inorm_stats(ctx, tx, &p, tmean, tstd));
        float gm[6], gs[6];
        double rm[6], rs[6], rsig[6];
        tu_download(ctx, tmean, gm, 6);
        tu_download(ctx, tstd, gs, 6);
        o_params op = {.eps = 1e-5f, .nhwc = nhwc, .mask = m, .mask_n = 2};
        oracle_stats_ex(&op, s, x, rm, rs, rsig);
        tu_assert_stats(tu_fmt("stats [%s] %s, NaN under zero weights", tu_backend_name(be), FMT_NAME(f)), nc_shape(s),
                        gm, gs, rm, rs, rsig);
        inorm_tensor_destroy(tmean);
        inorm_tensor_destroy(tstd);
        inorm_tensor_destroy(tx);
        inorm_tensor_destroy(ty);
        inorm_tensor_destroy(tst);
        inorm_tensor_destroy(tm);
        inorm_tensor_destroy(tsm);
        free(x), free(st), free(y), free(m), free(sm), free(ref), free(mag);
    }
    tu_ctx_destroy(ctx);
}
END_TEST

/* The library checks a mask's values once per write: rewriting it (by a
 * write or as an op's output) must bring the check back. */
START_TEST(mask_validation_cache)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    o_shape s = tu_shape(2, 3, 5, 6), ms = tu_shape(2, 1, 5, 6);
    size_t hw = o_plane(s);
    tu_rng r;
    tu_rng_seed(&r, 99);
    float *x = tu_floats(o_count(s)), *good = tu_floats(2 * hw), *zero = tu_floats(2 * hw);
    gen_data(&r, x, s, 0, 0);
    gen_mask(&r, good, 2, hw);
    for (size_t i = 0; i < 2 * hw; i++)
        zero[i] = i < hw ? good[i] : 0.0f; /* sample 1 all zero */
    inorm_tensor *tx = tu_tensor(ctx, s, x), *ty = tu_tensor(ctx, s, NULL), *tmask = tu_tensor(ctx, ms, good);
    inorm_tensor *tm = tu_tensor(ctx, nc_shape(s), NULL);
    inorm_norm_params p = {.eps = 1e-5f, .mask = tmask};

    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, &p, ty));
    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, &p, ty)); /* cached */
    tu_upload(ctx, tmask, zero, 2 * hw);
    TU_EXPECT(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, &p, ty), INORM_ERROR_INVALID_ARGUMENT);
    TU_EXPECT(ctx, inorm_stats(ctx, tx, &p, tm, NULL), INORM_ERROR_INVALID_ARGUMENT);
    tu_upload(ctx, tmask, good, 2 * hw);
    TU_OK(ctx, inorm_stats(ctx, tx, &p, tm, NULL));

    /* rewritten as the output of inorm_convert (from a zero tensor) */
    inorm_tensor *tz = tu_tensor(ctx, ms, zero);
    TU_OK(ctx, inorm_convert(ctx, tz, tmask));
    TU_EXPECT(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, &p, ty), INORM_ERROR_INVALID_ARGUMENT);
    tu_upload(ctx, tmask, good, 2 * hw);
    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, &p, ty));

    /* rewritten in place by a normalization: values leave [0, 1] */
    TU_OK(ctx, inorm_instance_norm(ctx, tmask, NULL, NULL, NULL, tmask));
    TU_EXPECT(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, &p, ty), INORM_ERROR_INVALID_ARGUMENT);

    /* a NaN written later */
    float *nanm = tu_floats(2 * hw);
    memcpy(nanm, good, 2 * hw * sizeof(float));
    nanm[hw + 4] = NAN;
    tu_upload(ctx, tmask, good, 2 * hw);
    TU_OK(ctx, inorm_adain_modulate(ctx, tx, tm, NULL, &p, ty));
    tu_upload(ctx, tmask, nanm, 2 * hw);
    TU_EXPECT(ctx, inorm_adain_modulate(ctx, tx, tm, NULL, &p, ty), INORM_ERROR_INVALID_ARGUMENT);

    /* after all that, a good mask gives the oracle's result */
    tu_upload(ctx, tmask, good, 2 * hw);
    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, &p, ty));
    float *y = tu_floats(o_count(s));
    double *ref = tu_doubles(o_count(s)), *mag = tu_doubles(o_count(s));
    tu_download(ctx, ty, y, o_count(s));
    o_params op = {.eps = 1e-5f, .mask = good, .mask_n = 2};
    oracle_group_norm_ex(&op, s, x, s.c, NULL, NULL, ref, mag);
    tu_assert_close(tu_fmt("instance_norm [%s] masked, after the mask was rewritten", tu_backend_name(be)), s, y,
                    ref, mag);
    inorm_tensor_destroy(tz);
    free(x), free(good), free(zero), free(nanm), free(y), free(ref), free(mag);
    tu_ctx_destroy(ctx);
}
END_TEST

/* ---------------------------------------------------------- adain_mix -- */

/* One adain_mix call against the oracle; styles in the given format. */
static double check_mix(inorm_context *ctx, inorm_backend be, int f, o_shape cs, uint32_t count, const o_shape *ss,
                        const float *weights, float alpha, uint64_t seed, const char *label)
{
    int nhwc = k_formats[f].lo == INORM_NHWC, half = k_formats[f].dt == INORM_FLOAT16;
    tu_rng r;
    tu_rng_seed(&r, seed);
    size_t n = o_count(cs);
    float *x = tu_floats(n), *y = tu_floats(n);
    double *ref = tu_doubles(n), *mag = tu_doubles(n);
    float **st = (float **)tu_malloc(count * sizeof *st);
    inorm_tensor **tst = (inorm_tensor **)tu_malloc(count * sizeof *tst);
    double *w = tu_doubles(count);
    gen_data(&r, x, cs, nhwc, half);
    for (uint32_t k = 0; k < count; k++) {
        st[k] = tu_floats(o_count(ss[k]));
        gen_data(&r, st[k], ss[k], nhwc, half);
        tst[k] = tu_tensor_fmt(ctx, ss[k], k_formats[f].dt, k_formats[f].lo, st[k]);
        w[k] = weights[k];
    }
    inorm_tensor *tx = tu_tensor_fmt(ctx, cs, k_formats[f].dt, k_formats[f].lo, x);
    inorm_tensor *ty = tu_tensor_fmt(ctx, cs, k_formats[f].dt, k_formats[f].lo, NULL);
    inorm_norm_params p = {.eps = 1e-5f};
    TU_OK(ctx, inorm_adain_mix(ctx, tx, (const inorm_tensor *const *)tst, weights, count, alpha, &p, ty));
    tu_download_fmt(ctx, ty, y, n);
    o_params op = {.eps = 1e-5f, .nhwc = nhwc};
    oracle_adain_mix_ex(&op, cs, x, count, ss, (const float *const *)st, w, alpha, ref, mag);
    double worst = tu_assert_close_fmt(tu_fmt("adain_mix [%s] %s %s: %u styles, alpha %g", tu_backend_name(be),
                                              FMT_NAME(f), label, count, (double)alpha),
                                       cs, k_formats[f].dt, k_formats[f].lo, y, ref, mag);
    /* the styles are inputs: untouched */
    for (uint32_t k = 0; k < count; k++) {
        float *back = tu_floats(o_count(ss[k]));
        tu_download_fmt(ctx, tst[k], back, o_count(ss[k]));
        ck_assert_msg(memcmp(back, st[k], o_count(ss[k]) * sizeof(float)) == 0,
                      "adain_mix [%s] %s: styles[%u] changed", tu_backend_name(be), label, k);
        free(back);
        inorm_tensor_destroy(tst[k]);
        free(st[k]);
    }
    inorm_tensor_destroy(tx);
    inorm_tensor_destroy(ty);
    free(x), free(y), free(ref), free(mag), free(st), free(tst), free(w);
    return worst;
}

START_TEST(adain_mix_weights)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    const o_shape cs = tu_shape(2, 3, 9, 8);
    /* styles of other H and W, and N == 1 (one style for the batch) */
    const o_shape ss[4] = {{2, 3, 5, 7}, {1, 3, 11, 4}, {2, 3, 9, 8}, {1, 3, 2, 2}};
    static const struct {
        uint32_t count;
        float w[3];
        float alpha;
        const char *label;
    } mixes[] = {
        {3, {0.2f, 0.3f, 0.5f}, 1.0f, "weights summing to 1"},
        {2, {0.7f, 0.8f}, 1.0f, "weights summing to 1.5"},
        {2, {1.5f, -0.5f}, 1.0f, "a negative weight (extrapolation)"},
        {1, {-1.0f}, 1.0f, "weight -1: negative target std flips the content"},
        {3, {2.0f, -1.0f, 0.5f}, 0.5f, "sum 1.5 with a blend"},
        {3, {0.0f, 0.0f, 0.0f}, 1.0f, "all weights 0: y = 0 (std_t = mean_t = 0)"},
        {2, {0.5f, 0.5f}, -0.25f, "negative alpha"},
        {1, {0.6f}, 0.0f, "alpha 0: y = x"},
    };
    double worst = 0;
    for (int f = 0; f < 4; f++)
        for (size_t i = 0; i < sizeof mixes / sizeof mixes[0]; i++)
            worst = fmax(worst, check_mix(ctx, be, f, cs, mixes[i].count, ss + i % 2, mixes[i].w,
                                          mixes[i].alpha, 600 + 10 * (uint64_t)f + i, mixes[i].label));
    printf("adain_mix weights [%s]: worst |err|/bound = %.4f\n", tu_backend_name(be), worst);
    tu_ctx_destroy(ctx);
}
END_TEST

/* count == 1, weight 1 is inorm_adain. */
START_TEST(adain_mix_count1_is_adain)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    const o_shape cs = tu_shape(2, 5, 13, 11);
    const o_shape styles[3] = {{2, 5, 13, 11}, {1, 5, 6, 9}, {2, 5, 3, 1}};
    const float alphas[3] = {1.0f, 0.35f, 1.25f};
    size_t n = o_count(cs);
    for (int f = 0; f < 4; f++) {
        int nhwc = k_formats[f].lo == INORM_NHWC, half = k_formats[f].dt == INORM_FLOAT16;
        for (int k = 0; k < 3; k++) {
            tu_rng r;
            tu_rng_seed(&r, 700 + 3 * (uint64_t)f + (uint64_t)k);
            o_shape ss = styles[k];
            float *x = tu_floats(n), *st = tu_floats(o_count(ss)), *ya = tu_floats(n), *ym = tu_floats(n);
            double *ref = tu_doubles(n), *mag = tu_doubles(n);
            gen_data(&r, x, cs, nhwc, half);
            gen_data(&r, st, ss, nhwc, half);
            inorm_tensor *tx = tu_tensor_fmt(ctx, cs, k_formats[f].dt, k_formats[f].lo, x);
            inorm_tensor *ts = tu_tensor_fmt(ctx, ss, k_formats[f].dt, k_formats[f].lo, st);
            inorm_tensor *ty = tu_tensor_fmt(ctx, cs, k_formats[f].dt, k_formats[f].lo, NULL);
            inorm_norm_params p = {.eps = 1e-5f, .unbiased = k == 1};
            TU_OK(ctx, inorm_adain(ctx, tx, ts, alphas[k], &p, ty));
            tu_download_fmt(ctx, ty, ya, n);
            const inorm_tensor *sl[1] = {ts};
            const float one = 1.0f;
            TU_OK(ctx, inorm_adain_mix(ctx, tx, sl, &one, 1, alphas[k], &p, ty));
            tu_download_fmt(ctx, ty, ym, n);
            o_params op = {.eps = 1e-5f, .unbiased = k == 1, .nhwc = nhwc};
            const double w1 = 1.0;
            const float *sts[1] = {st};
            oracle_adain_mix_ex(&op, cs, x, 1, &ss, sts, &w1, alphas[k], ref, mag);
            const char *what = tu_fmt("[%s] %s style %s alpha %g", tu_backend_name(be), FMT_NAME(f),
                                      tu_shape_str(ss), (double)alphas[k]);
            tu_assert_close_fmt(tu_fmt("adain %s", what), cs, k_formats[f].dt, k_formats[f].lo, ya, ref, mag);
            tu_assert_close_fmt(tu_fmt("adain_mix count 1 %s", what), cs, k_formats[f].dt, k_formats[f].lo, ym,
                                ref, mag);
            /* and with each other: within the sum of both bounds */
            double *ad = tu_doubles(n), *mag2 = tu_doubles(n);
            for (size_t i = 0; i < n; i++) {
                ad[i] = ya[i];
                mag2[i] = 2 * mag[i];
            }
            tu_cmp c = tu_compare_fmt(k_formats[f].dt, ym, ad, mag2, n);
            if (k_formats[f].dt == INORM_FLOAT16) /* ya is a half already: 2 ulps for the two roundings */
                for (size_t i = 0; i < n; i++)
                    mag2[i] += tu_half_ulp(ya[i]) / (TU_K * FLT_EPSILON);
            c = tu_compare_fmt(k_formats[f].dt, ym, ad, mag2, n);
            tu_assert_cmp_fmt(tu_fmt("adain_mix count 1 against inorm_adain %s", what), cs, k_formats[f].lo, &c,
                              "both bounds");
            inorm_tensor_destroy(tx);
            inorm_tensor_destroy(ts);
            inorm_tensor_destroy(ty);
            free(x), free(st), free(ya), free(ym), free(ref), free(mag), free(ad), free(mag2);
        }
    }
    tu_ctx_destroy(ctx);
}
END_TEST

/* INORM_MAX_STYLES styles of assorted shapes; and changing content shapes on
 * one context (the library keeps the mix's target statistics per context). */
START_TEST(adain_mix_max_styles_and_reshapes)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    tu_rng r;
    tu_rng_seed(&r, 800);
    o_shape ss[INORM_MAX_STYLES];
    float w[INORM_MAX_STYLES];
    const o_shape cs = tu_shape(2, 3, 4, 5);
    for (int k = 0; k < INORM_MAX_STYLES; k++) {
        ss[k] = tu_shape(k % 3 == 0 ? 1 : 2, 3, 2 + (uint32_t)(k % 4), 2 + (uint32_t)(k % 5));
        w[k] = (float)(1.0 / INORM_MAX_STYLES + tu_rng_uniform(&r, -0.01, 0.01));
    }
    check_mix(ctx, be, 0, cs, INORM_MAX_STYLES, ss, w, 1.0f, 801, "INORM_MAX_STYLES styles");
    check_mix(ctx, be, 3, cs, INORM_MAX_STYLES, ss, w, 0.8f, 802, "INORM_MAX_STYLES styles");

    /* content shapes changing between calls: N x C of the targets */
    static const o_shape contents[] = {{2, 3, 6, 5}, {1, 5, 4, 4}, {3, 2, 5, 5}, {2, 3, 7, 3}, {1, 5, 4, 4}};
    const float w2[2] = {0.4f, 0.6f};
    for (size_t i = 0; i < sizeof contents / sizeof contents[0]; i++) {
        o_shape c = contents[i];
        o_shape two[2] = {tu_shape(1, c.c, 3, 3), tu_shape(c.n, c.c, 2, 5)};
        check_mix(ctx, be, (int)(i % 4), c, 2, two, w2, 1.0f, 810 + i, "content shape changed since the last call");
    }
    tu_ctx_destroy(ctx);
}
END_TEST

START_TEST(adain_mix_refusals)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    o_shape cs = tu_shape(2, 3, 4, 5);
    inorm_tensor *tx = tu_tensor(ctx, cs, NULL), *ty = tu_tensor(ctx, cs, NULL);
    inorm_tensor *a = tu_tensor(ctx, tu_shape(2, 3, 3, 3), NULL), *b = tu_tensor(ctx, tu_shape(1, 3, 2, 2), NULL);
    float v[12];
    for (int i = 0; i < 12; i++)
        v[i] = (float)(i % 5);
    float *xa = tu_floats(54), *xx = tu_floats(o_count(cs));
    for (int i = 0; i < 54; i++)
        xa[i] = (float)(i % 7);
    for (size_t i = 0; i < o_count(cs); i++)
        xx[i] = (float)(i % 11);
    tu_upload(ctx, a, xa, 54);
    tu_upload(ctx, b, v, 12);
    tu_upload(ctx, tx, xx, o_count(cs));
    const inorm_tensor *styles[INORM_MAX_STYLES + 1];
    float w[INORM_MAX_STYLES + 1];
    for (int k = 0; k <= INORM_MAX_STYLES; k++) {
        styles[k] = k % 2 ? b : a;
        w[k] = 0.5f;
    }
    inorm_norm_params p = {.eps = 1e-5f};
    TU_OK(ctx, inorm_adain_mix(ctx, tx, styles, w, 2, 1.0f, &p, ty));
    TU_EXPECT(ctx, inorm_adain_mix(ctx, tx, styles, w, 0, 1.0f, &p, ty), INORM_ERROR_INVALID_ARGUMENT);
    expect_error_mentions(ctx, "count", "adain_mix count 0");
    TU_EXPECT(ctx, inorm_adain_mix(ctx, tx, styles, w, INORM_MAX_STYLES + 1, 1.0f, &p, ty),
              INORM_ERROR_INVALID_ARGUMENT);
    expect_error_mentions(ctx, "count", "adain_mix count INORM_MAX_STYLES + 1");
    TU_EXPECT(ctx, inorm_adain_mix(ctx, tx, NULL, w, 2, 1.0f, &p, ty), INORM_ERROR_INVALID_ARGUMENT);
    expect_error_mentions(ctx, "styles", "adain_mix NULL styles");
    TU_EXPECT(ctx, inorm_adain_mix(ctx, tx, styles, NULL, 2, 1.0f, &p, ty), INORM_ERROR_INVALID_ARGUMENT);
    expect_error_mentions(ctx, "weights", "adain_mix NULL weights");
    static const float bad_w[] = {NAN, INFINITY, -INFINITY};
    for (int i = 0; i < 3; i++) {
        float wb[2] = {0.5f, bad_w[i]};
        TU_EXPECT(ctx, inorm_adain_mix(ctx, tx, styles, wb, 2, 1.0f, &p, ty), INORM_ERROR_INVALID_ARGUMENT);
        expect_error_mentions(ctx, "weights[1]", tu_fmt("adain_mix weight %g", (double)bad_w[i]));
    }
    TU_EXPECT(ctx, inorm_adain_mix(ctx, tx, styles, w, 2, NAN, &p, ty), INORM_ERROR_INVALID_ARGUMENT);
    /* a NULL entry, and styles that do not fit the content */
    const inorm_tensor *with_null[2] = {a, NULL};
    TU_EXPECT(ctx, inorm_adain_mix(ctx, tx, with_null, w, 2, 1.0f, &p, ty), INORM_ERROR_INVALID_ARGUMENT);
    static const o_shape misfit[] = {{2, 4, 3, 3} /* C */, {3, 3, 3, 3} /* N neither 2 nor 1 */};
    for (int i = 0; i < 2; i++) {
        inorm_tensor *m = tu_tensor(ctx, misfit[i], NULL);
        const inorm_tensor *sl[2] = {a, m};
        TU_EXPECT(ctx, inorm_adain_mix(ctx, tx, sl, w, 2, 1.0f, &p, ty), INORM_ERROR_INVALID_ARGUMENT);
        expect_error_mentions(ctx, "styles[1]", tu_fmt("adain_mix with a %s style", tu_shape_str(misfit[i])));
        inorm_tensor_destroy(m);
    }
    inorm_tensor *h = tu_tensor_fmt(ctx, tu_shape(2, 3, 3, 3), INORM_FLOAT16, INORM_NCHW, NULL);
    inorm_tensor *nh = tu_tensor_fmt(ctx, tu_shape(2, 3, 3, 3), INORM_FLOAT32, INORM_NHWC, NULL);
    const inorm_tensor *s16[2] = {a, h}, *snhwc[2] = {nh, a};
    TU_EXPECT(ctx, inorm_adain_mix(ctx, tx, s16, w, 2, 1.0f, &p, ty), INORM_ERROR_INVALID_ARGUMENT);
    TU_EXPECT(ctx, inorm_adain_mix(ctx, tx, snhwc, w, 2, 1.0f, &p, ty), INORM_ERROR_INVALID_ARGUMENT);
    /* y may be the content, not a style */
    const inorm_tensor *sy[2] = {a, ty};
    TU_EXPECT(ctx, inorm_adain_mix(ctx, tx, sy, w, 2, 1.0f, &p, ty), INORM_ERROR_INVALID_ARGUMENT);
    TU_OK(ctx, inorm_adain_mix(ctx, tx, styles, w, 2, 1.0f, &p, tx));
    inorm_tensor_destroy(h);
    inorm_tensor_destroy(nh);
    free(xa), free(xx);
    tu_ctx_destroy(ctx);
}
END_TEST

/* ------------------------------------------------- conditional IN -- */

/* A one-hot row selects one style: the same as instance_norm with that
 * style's gamma and beta (beta_bank NULL: gamma only). */
START_TEST(cin_one_hot_is_instance_norm)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    const o_shape s = tu_shape(4, 5, 6, 7);
    const uint32_t S = 4, pick[4] = {2, 0, 3, 1};
    size_t n = o_count(s), hw = o_plane(s);
    for (int f = 0; f < 4; f++) {
        int nhwc = k_formats[f].lo == INORM_NHWC, half = k_formats[f].dt == INORM_FLOAT16;
        for (int with_beta = 0; with_beta < 2; with_beta++) {
            tu_rng r;
            tu_rng_seed(&r, 900 + 2 * (uint64_t)f + (uint64_t)with_beta);
            float *x = tu_floats(n), *yc = tu_floats(n), *yi = tu_floats(n);
            float *gb = tu_floats(S * s.c), *bb = tu_floats(S * s.c), sw[16];
            double *ref = tu_doubles(n), *mag = tu_doubles(n);
            gen_data(&r, x, s, nhwc, half);
            gen_affine(&r, gb, bb, S * s.c);
            for (uint32_t i = 0; i < s.n; i++)
                for (uint32_t k = 0; k < S; k++)
                    sw[i * S + k] = k == pick[i] ? 1.0f : 0.0f;
            inorm_tensor *tx = tu_tensor_fmt(ctx, s, k_formats[f].dt, k_formats[f].lo, x);
            inorm_tensor *ty = tu_tensor_fmt(ctx, s, k_formats[f].dt, k_formats[f].lo, NULL);
            inorm_tensor *tgb = tu_tensor(ctx, tu_shape(S, s.c, 1, 1), gb);
            inorm_tensor *tbb = with_beta ? tu_tensor(ctx, tu_shape(S, s.c, 1, 1), bb) : NULL;
            inorm_tensor *tsw = tu_tensor(ctx, tu_shape(s.n, S, 1, 1), sw);
            inorm_norm_params p = {.eps = 1e-5f, .activation = (inorm_activation)(f % 4), .activation_slope = 0.2f};
            TU_OK(ctx, inorm_conditional_instance_norm(ctx, tx, tgb, tbb, tsw, &p, ty));
            tu_download_fmt(ctx, ty, yc, n);
            o_params op = {.eps = 1e-5f, .nhwc = nhwc, .activation = f % 4, .slope = 0.2f};
            oracle_cin_ex(&op, s, x, S, gb, with_beta ? bb : NULL, sw, ref, mag);
            const char *what = tu_fmt("conditional_instance_norm [%s] %s one-hot rows beta_bank=%d act=%s",
                                      tu_backend_name(be), FMT_NAME(f), with_beta, act_name(f % 4));
            tu_assert_close_fmt(what, s, k_formats[f].dt, k_formats[f].lo, yc, ref, mag);
            /* instance_norm with each style's row, sample by sample */
            size_t identical = 0;
            for (uint32_t k = 0; k < S; k++) {
                inorm_tensor *tg = tu_tensor(ctx, chan_shape(s), gb + k * s.c);
                inorm_tensor *tb = with_beta ? tu_tensor(ctx, chan_shape(s), bb + k * s.c) : NULL;
                TU_OK(ctx, inorm_instance_norm(ctx, tx, tg, tb, &p, ty));
                tu_download_fmt(ctx, ty, yi, n);
                for (uint32_t i = 0; i < s.n; i++) {
                    if (pick[i] != k)
                        continue;
                    size_t bad = 0, first = 0;
                    for (uint32_t c = 0; c < s.c; c++)
                        for (size_t q = 0; q < hw; q++) {
                            size_t e = o_index(s, nhwc, i, c, q);
                            double bound = k_formats[f].dt == INORM_FLOAT16
                                               ? 2 * tu_half_ulp(ref[e]) + 2 * TU_K * FLT_EPSILON * mag[e]
                                               : 2 * TU_K * FLT_EPSILON * mag[e];
                            int ok = isnan(yi[e]) ? isnan(yc[e]) : fabs(yc[e] - yi[e]) <= bound;
                            identical += yc[e] == yi[e];
                            if (!ok && bad++ == 0)
                                first = e;
                        }
                    ck_assert_msg(bad == 0,
                                  "%s: sample %u (style %u) differs from instance_norm with gamma_bank[%u]%s at %zu "
                                  "elements; first index %zu: %.9g vs %.9g",
                                  what, i, k, k, with_beta ? " and beta_bank" : "", bad, first, (double)yc[first],
                                  (double)yi[first]);
                }
                inorm_tensor_destroy(tg);
                inorm_tensor_destroy(tb);
            }
            if (identical != n)
                printf("note: %s: %zu of %zu elements bitwise equal to instance_norm's\n", what, identical, n);
            inorm_tensor_destroy(tx);
            inorm_tensor_destroy(ty);
            inorm_tensor_destroy(tgb);
            inorm_tensor_destroy(tbb);
            inorm_tensor_destroy(tsw);
            free(x), free(yc), free(yi), free(gb), free(bb), free(ref), free(mag);
        }
    }
    tu_ctx_destroy(ctx);
}
END_TEST

/* Mixed rows (sums other than 1, negative weights) and INORM_MAX_STYLES styles. */
START_TEST(cin_mixed_rows)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    static const struct {
        o_shape s;
        uint32_t S;
    } cases[] = {{{3, 4, 5, 9}, 3}, {{2, 6, 8, 8}, INORM_MAX_STYLES}, {{1, 40, 3, 5}, 2}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        o_shape s = cases[ci].s;
        uint32_t S = cases[ci].S;
        size_t n = o_count(s);
        for (int f = 0; f < 4; f++) {
            int nhwc = k_formats[f].lo == INORM_NHWC, half = k_formats[f].dt == INORM_FLOAT16;
            tu_rng r;
            tu_rng_seed(&r, 1000 + 4 * ci + (uint64_t)f);
            float *x = tu_floats(n), *y = tu_floats(n), *gb = tu_floats(S * s.c), *bb = tu_floats(S * s.c);
            float *sw = tu_floats((size_t)s.n * S);
            double *ref = tu_doubles(n), *mag = tu_doubles(n);
            gen_data(&r, x, s, nhwc, half);
            gen_affine(&r, gb, bb, S * s.c);
            for (size_t i = 0; i < (size_t)s.n * S; i++)
                sw[i] = (float)tu_rng_uniform(&r, -0.5, 1.5) * (S > 8 ? 0.1f : 1.0f);
            inorm_tensor *tx = tu_tensor_fmt(ctx, s, k_formats[f].dt, k_formats[f].lo, x);
            inorm_tensor *ty = tu_tensor_fmt(ctx, s, k_formats[f].dt, k_formats[f].lo, NULL);
            inorm_tensor *tgb = tu_tensor(ctx, tu_shape(S, s.c, 1, 1), gb);
            inorm_tensor *tbb = tu_tensor(ctx, tu_shape(S, s.c, 1, 1), bb);
            inorm_tensor *tsw = tu_tensor(ctx, tu_shape(s.n, S, 1, 1), sw);
            inorm_norm_params p = {.eps = 1e-5f, .unbiased = f == 2};
            TU_OK(ctx, inorm_conditional_instance_norm(ctx, tx, tgb, tbb, tsw, &p, ty));
            tu_download_fmt(ctx, ty, y, n);
            o_params op = {.eps = 1e-5f, .unbiased = f == 2, .nhwc = nhwc};
            oracle_cin_ex(&op, s, x, S, gb, bb, sw, ref, mag);
            tu_assert_close_fmt(tu_fmt("conditional_instance_norm [%s] %s %u styles, mixed rows", tu_backend_name(be),
                                       FMT_NAME(f), S),
                                s, k_formats[f].dt, k_formats[f].lo, y, ref, mag);
            inorm_tensor_destroy(tx);
            inorm_tensor_destroy(ty);
            inorm_tensor_destroy(tgb);
            inorm_tensor_destroy(tbb);
            inorm_tensor_destroy(tsw);
            free(x), free(y), free(gb), free(bb), free(sw), free(ref), free(mag);
        }
    }
    tu_ctx_destroy(ctx);
}
END_TEST

START_TEST(cin_refusals)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    o_shape s = tu_shape(2, 3, 4, 5);
    inorm_tensor *tx = tu_tensor(ctx, s, NULL), *ty = tu_tensor(ctx, s, NULL);
    float *v = tu_floats(4096);
    for (int i = 0; i < 4096; i++)
        v[i] = (float)(i % 3) * 0.5f;
    tu_upload(ctx, tx, v, o_count(s));
    inorm_tensor *gb = tu_tensor(ctx, tu_shape(4, 3, 1, 1), v), *bb = tu_tensor(ctx, tu_shape(4, 3, 1, 1), v);
    inorm_tensor *sw = tu_tensor(ctx, tu_shape(2, 4, 1, 1), v);
    inorm_norm_params p = {.eps = 1e-5f};
    TU_OK(ctx, inorm_conditional_instance_norm(ctx, tx, gb, bb, sw, &p, ty));
    TU_OK(ctx, inorm_conditional_instance_norm(ctx, tx, gb, NULL, sw, &p, ty));
    struct {
        o_shape g, b, w;
        const char *what, *names;
    } wrong[] = {
        {{4, 2, 1, 1}, {4, 3, 1, 1}, {2, 4, 1, 1}, "gamma_bank with C 2", "gamma_bank"},
        {{4, 3, 1, 1}, {4, 2, 1, 1}, {2, 4, 1, 1}, "beta_bank with C 2", "beta_bank"},
        {{4, 3, 1, 1}, {3, 3, 1, 1}, {2, 4, 1, 1}, "beta_bank with 3 styles, gamma_bank 4", "beta_bank"},
        {{4, 3, 1, 1}, {4, 3, 1, 1}, {2, 3, 1, 1}, "style_weights with 3 styles", "style_weights"},
        {{4, 3, 1, 1}, {4, 3, 1, 1}, {3, 4, 1, 1}, "style_weights with N 3", "style_weights"},
        {{4, 3, 1, 1}, {4, 3, 1, 1}, {1, 4, 1, 1}, "style_weights with N 1", "style_weights"},
        {{4, 3, 2, 1}, {4, 3, 1, 1}, {2, 4, 1, 1}, "gamma_bank 4x3x2x1", "gamma_bank"},
        {{INORM_MAX_STYLES + 1, 3, 1, 1}, {INORM_MAX_STYLES + 1, 3, 1, 1}, {2, INORM_MAX_STYLES + 1, 1, 1},
         "INORM_MAX_STYLES + 1 styles", "gamma_bank"},
    };
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        inorm_tensor *g = tu_tensor(ctx, wrong[i].g, v), *b = tu_tensor(ctx, wrong[i].b, v);
        inorm_tensor *w = tu_tensor(ctx, wrong[i].w, v);
        TU_EXPECT(ctx, inorm_conditional_instance_norm(ctx, tx, g, b, w, &p, ty), INORM_ERROR_INVALID_ARGUMENT);
        expect_error_mentions(ctx, wrong[i].names, tu_fmt("conditional_instance_norm, %s", wrong[i].what));
        inorm_tensor_destroy(g);
        inorm_tensor_destroy(b);
        inorm_tensor_destroy(w);
    }
    /* INORM_MAX_STYLES is accepted */
    inorm_tensor *g64 = tu_tensor(ctx, tu_shape(INORM_MAX_STYLES, 3, 1, 1), v);
    inorm_tensor *w64 = tu_tensor(ctx, tu_shape(2, INORM_MAX_STYLES, 1, 1), v);
    TU_OK(ctx, inorm_conditional_instance_norm(ctx, tx, g64, NULL, w64, &p, ty));
    /* FLOAT16 banks, NULL gamma_bank or style_weights */
    inorm_tensor *g16 = tu_tensor_fmt(ctx, tu_shape(4, 3, 1, 1), INORM_FLOAT16, INORM_NCHW, NULL);
    TU_EXPECT(ctx, inorm_conditional_instance_norm(ctx, tx, g16, bb, sw, &p, ty), INORM_ERROR_INVALID_ARGUMENT);
    TU_EXPECT(ctx, inorm_conditional_instance_norm(ctx, tx, NULL, bb, sw, &p, ty), INORM_ERROR_INVALID_ARGUMENT);
    TU_EXPECT(ctx, inorm_conditional_instance_norm(ctx, tx, gb, bb, NULL, &p, ty), INORM_ERROR_INVALID_ARGUMENT);
    inorm_tensor_destroy(g64);
    inorm_tensor_destroy(w64);
    inorm_tensor_destroy(g16);
    free(v);
    tu_ctx_destroy(ctx);
}
END_TEST

/* -------------------------------------------------------- activations -- */

/* Planes of +-1 (biased, eps 0: normalized exactly to +-1) modulated by large
 * scales: SiLU of -1000 .. 1000 must be finite (no exp overflow into
 * inf/inf), SiLU(v) = v for large v, about 0 for very negative v. */
START_TEST(activation_silu_extremes)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    static const float scales[] = {1000.0f, 200.0f, 100.0f, 90.0f, 88.75f, 87.0f, 50.0f, 20.0f, 10.0f, 1.0f};
    const uint32_t C = sizeof scales / sizeof scales[0];
    o_shape s = tu_shape(1, C, 2, 3);
    size_t n = o_count(s), hw = o_plane(s);
    for (int f = 0; f < 4; f++) {
        int nhwc = k_formats[f].lo == INORM_NHWC;
        float *x = tu_floats(n), *y = tu_floats(n), *sc = tu_floats(C);
        double *ref = tu_doubles(n), *mag = tu_doubles(n);
        for (uint32_t c = 0; c < C; c++) {
            sc[c] = scales[c];
            for (size_t q = 0; q < hw; q++)
                x[o_index(s, nhwc, 0, c, q)] = q % 2 ? 1.0f : -1.0f;
        }
        inorm_tensor *tx = tu_tensor_fmt(ctx, s, k_formats[f].dt, k_formats[f].lo, x);
        inorm_tensor *ty = tu_tensor_fmt(ctx, s, k_formats[f].dt, k_formats[f].lo, NULL);
        inorm_tensor *tsc = tu_tensor(ctx, tu_shape(1, C, 1, 1), sc);
        inorm_norm_params p = {.eps = 0.0f, .activation = INORM_ACTIVATION_SILU};
        TU_OK(ctx, inorm_adain_modulate(ctx, tx, tsc, NULL, &p, ty));
        tu_download_fmt(ctx, ty, y, n);
        o_params op = {.eps = 0.0f, .nhwc = nhwc, .activation = O_ACT_SILU};
        oracle_modulate_ex(&op, s, x, sc, NULL, ref, mag);
        const char *what = tu_fmt("SiLU [%s] %s of +-scale", tu_backend_name(be), FMT_NAME(f));
        for (size_t i = 0; i < n; i++) {
            ck_assert_msg(isfinite(y[i]), "%s: element %zu (v = %g) is %g, want finite", what, i,
                          x[i] * (double)sc[nhwc ? i % C : i / hw], (double)y[i]);
            double v = x[i] * (double)sc[nhwc ? i % C : i / hw];
            if (v <= -87.0)
                ck_assert_msg(fabs(y[i]) <= 1e-30, "%s: SiLU(%g) = %g, want about 0", what, v, (double)y[i]);
            if (v >= 20.0)
                ck_assert_msg(fabs(y[i] - v) <= 1e-6 * v, "%s: SiLU(%g) = %.9g, want %g", what, v, (double)y[i], v);
        }
        tu_assert_close_fmt(what, s, k_formats[f].dt, k_formats[f].lo, y, ref, mag);
        inorm_tensor_destroy(tx);
        inorm_tensor_destroy(ty);
        inorm_tensor_destroy(tsc);
        free(x), free(y), free(sc), free(ref), free(mag);
    }
    tu_ctx_destroy(ctx);
}
END_TEST

/* LeakyReLU with slope 0.2 (and 0, negative, above 1) and ReLU, against the
 * oracle; with +-1 planes, the exact values. */
START_TEST(activation_leaky_slopes)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    static const float slopes[] = {0.2f, 0.0f, -0.5f, 1.75f, 0.01f};
    o_shape s = tu_shape(2, 3, 11, 7);
    size_t n = o_count(s);
    for (int f = 0; f < 4; f++) {
        int nhwc = k_formats[f].lo == INORM_NHWC, half = k_formats[f].dt == INORM_FLOAT16;
        for (size_t k = 0; k < sizeof slopes / sizeof slopes[0]; k++) {
            tu_rng r;
            tu_rng_seed(&r, 1100 + 8 * (uint64_t)f + k);
            float *x = tu_floats(n), *y = tu_floats(n), *g = tu_floats(s.c), *b = tu_floats(s.c);
            double *ref = tu_doubles(n), *mag = tu_doubles(n);
            gen_data(&r, x, s, nhwc, half);
            gen_affine(&r, g, b, s.c);
            inorm_tensor *tx = tu_tensor_fmt(ctx, s, k_formats[f].dt, k_formats[f].lo, x);
            inorm_tensor *ty = tu_tensor_fmt(ctx, s, k_formats[f].dt, k_formats[f].lo, NULL);
            inorm_tensor *tg = tu_tensor(ctx, chan_shape(s), g), *tb = tu_tensor(ctx, chan_shape(s), b);
            inorm_norm_params p = {.eps = 1e-5f, .activation = INORM_ACTIVATION_LEAKY_RELU,
                                   .activation_slope = slopes[k]};
            TU_OK(ctx, inorm_instance_norm(ctx, tx, tg, tb, &p, ty));
            tu_download_fmt(ctx, ty, y, n);
            o_params op = {.eps = 1e-5f, .nhwc = nhwc, .activation = O_ACT_LEAKY_RELU, .slope = slopes[k]};
            oracle_group_norm_ex(&op, s, x, s.c, g, b, ref, mag);
            tu_assert_close_fmt(tu_fmt("instance_norm [%s] %s LeakyReLU slope %g", tu_backend_name(be), FMT_NAME(f),
                                       (double)slopes[k]),
                                s, k_formats[f].dt, k_formats[f].lo, y, ref, mag);
            inorm_tensor_destroy(tx);
            inorm_tensor_destroy(ty);
            inorm_tensor_destroy(tg);
            inorm_tensor_destroy(tb);
            free(x), free(y), free(g), free(b), free(ref), free(mag);
        }
    }
    /* exact: a plane [-1, 1] normalizes to [-1, 1]; scale 2.5: LeakyReLU 0.2 gives -0.5 and 2.5 */
    const float x2[2] = {-1.0f, 1.0f}, two5 = 2.5f;
    o_shape s2 = tu_shape(1, 1, 1, 2);
    inorm_tensor *tx = tu_tensor(ctx, s2, x2), *ty = tu_tensor(ctx, s2, NULL);
    inorm_tensor *tsc = tu_tensor(ctx, tu_shape(1, 1, 1, 1), &two5);
    for (int a = 0; a < 4; a++) {
        inorm_norm_params p = {.eps = 0.0f, .activation = (inorm_activation)a, .activation_slope = 0.2f};
        TU_OK(ctx, inorm_adain_modulate(ctx, tx, tsc, NULL, &p, ty));
        float y[2];
        tu_download(ctx, ty, y, 2);
        double want0 = oracle_activate(a, 0.2f, -2.5), want1 = oracle_activate(a, 0.2f, 2.5);
        double tol = a == O_ACT_SILU ? 1e-6 : 1e-7;
        ck_assert_msg(fabs(y[0] - want0) <= tol * 2.5 && fabs(y[1] - want1) <= tol * 2.5,
                      "adain_modulate [%s] act=%s of [-2.5, 2.5]: got [%.9g, %.9g], want [%.9g, %.9g]",
                      tu_backend_name(be), act_name(a), (double)y[0], (double)y[1], want0, want1);
    }
    tu_ctx_destroy(ctx);
}
END_TEST

/* A plane holding a NaN is NaN everywhere (inorm.h), and NaN passes every
 * activation: ReLU must not turn it into 0 (max(NaN, 0) would). */
START_TEST(activation_nan_passes)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    o_shape s = tu_shape(2, 3, 5, 4);
    size_t n = o_count(s), hw = o_plane(s);
    for (int f = 0; f < 4; f++) {
        int nhwc = k_formats[f].lo == INORM_NHWC, half = k_formats[f].dt == INORM_FLOAT16;
        for (int a = 1; a < 4; a++) {
            tu_rng r;
            tu_rng_seed(&r, 1200 + 4 * (uint64_t)f + (uint64_t)a);
            float *x = tu_floats(n), *y = tu_floats(n);
            double *ref = tu_doubles(n), *mag = tu_doubles(n);
            gen_data(&r, x, s, nhwc, half);
            x[o_index(s, nhwc, 1, 2, 7)] = NAN; /* plane (1, 2) */
            inorm_tensor *tx = tu_tensor_fmt(ctx, s, k_formats[f].dt, k_formats[f].lo, x);
            inorm_tensor *ty = tu_tensor_fmt(ctx, s, k_formats[f].dt, k_formats[f].lo, NULL);
            inorm_norm_params p = {.eps = 1e-5f, .activation = (inorm_activation)a, .activation_slope = 0.2f};
            const char *what = tu_fmt("[%s] %s act=%s, a NaN in plane (1, 2)", tu_backend_name(be), FMT_NAME(f),
                                      act_name(a));
            for (int opk = 0; opk < 2; opk++) {
                if (opk == 0)
                    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, &p, ty));
                else
                    TU_OK(ctx, inorm_group_norm(ctx, tx, 3, NULL, NULL, &p, ty)); /* groups == C */
                tu_download_fmt(ctx, ty, y, n);
                for (size_t q = 0; q < hw; q++)
                    ck_assert_msg(isnan(y[o_index(s, nhwc, 1, 2, q)]),
                                  "%s %s: element %zu of the plane is %g, want NaN",
                                  opk ? "group_norm" : "instance_norm", what, q,
                                  (double)y[o_index(s, nhwc, 1, 2, q)]);
                o_params op = {.eps = 1e-5f, .nhwc = nhwc, .activation = a, .slope = 0.2f};
                oracle_group_norm_ex(&op, s, x, s.c, NULL, NULL, ref, mag);
                tu_assert_close_fmt(tu_fmt("%s %s (other planes)", opk ? "group_norm" : "instance_norm", what), s,
                                    k_formats[f].dt, k_formats[f].lo, y, ref, mag);
            }
            inorm_tensor_destroy(tx);
            inorm_tensor_destroy(ty);
            free(x), free(y), free(ref), free(mag);
        }
    }
    tu_ctx_destroy(ctx);
}
END_TEST

START_TEST(activation_refusals)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    o_shape s = tu_shape(1, 2, 3, 3);
    float v[18];
    for (int i = 0; i < 18; i++)
        v[i] = (float)(i % 4);
    inorm_tensor *tx = tu_tensor(ctx, s, v), *ty = tu_tensor(ctx, s, NULL);
    inorm_norm_params p = {.eps = 1e-5f, .activation = (inorm_activation)4};
    TU_EXPECT(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, &p, ty), INORM_ERROR_INVALID_ARGUMENT);
    expect_error_mentions(ctx, "activation", "activation 4");
    p.activation = (inorm_activation)-1;
    TU_EXPECT(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, &p, ty), INORM_ERROR_INVALID_ARGUMENT);
    p.activation = INORM_ACTIVATION_LEAKY_RELU;
    p.activation_slope = NAN;
    TU_EXPECT(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, &p, ty), INORM_ERROR_INVALID_ARGUMENT);
    expect_error_mentions(ctx, "activation_slope", "LeakyReLU slope NaN");
    p.activation_slope = INFINITY;
    TU_EXPECT(ctx, inorm_adain(ctx, tx, tx, 1.0f, &p, ty), INORM_ERROR_INVALID_ARGUMENT);
    p.activation_slope = 0.2f;
    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, &p, ty));
    tu_ctx_destroy(ctx);
}
END_TEST

/* ------------------------------------------- FLOAT16 near its maximum -- */

/* Values near 60000 (the largest half is 65504): a sum or a sum of squares
 * in fp16 overflows; the statistics must be fp32 (or better). Outputs stay
 * in range, also near the top (AdaIN towards a style near 60000). */
/* fp16 outputs are rounded to nearest, ties to even (the GPU's vec4 stores
 * round in the shader, see half4_bits in shaders/common.glsl). On constant
 * planes every kernel gives y = beta exactly, so betas at ties, at the
 * subnormal and overflow edges, rounding to -0, and NaN must come out as
 * inorm_float_to_half(beta), bit for bit (any NaN for NaN), through the
 * fused, self-reducing, two-pass, NHWC tile and fused NHWC paths, vec4 and
 * scalar, for instance, group and layer norm. */
START_TEST(fp16_output_rounding)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    const float betas[16] = {
        1.0f + 0x1p-11f,            /* tie: to 1 */
        1.0f + 3 * 0x1p-11f,        /* tie: to 1 + 2^-9 */
        -(1.0f + 0x1p-11f),         /* negative tie */
        0x1p-25f,                   /* tie between 0 and the least subnormal: 0 */
        3 * 0x1p-25f,               /* tie: to 2^-23 */
        0x1p-14f - 0x1p-25f,        /* tie between the largest subnormal and 2^-14: 2^-14 */
        65519.0f,                   /* below the overflow tie: 65504 */
        65520.0f,                   /* the overflow tie: Inf */
        -0x1p-25f,                  /* negative tie to zero: -0 */
        NAN,
        1e-30f,                     /* to 0 */
        0x1p-24f,                   /* the least subnormal */
        0.1f,
        -12345.678f,
        1.0f + 0x1p-11f + 0x1p-20f, /* just past a tie: up */
        2049.0f,                    /* tie at spacing 2: to 2048 */
    };
    const o_shape shapes[] = {{1, 16, 4, 4}, {2, 16, 32, 32}, {1, 4, 256, 256}, {1, 256, 4, 4}, {1, 3, 5, 7}};
    int checked = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const o_shape s = shapes[si];
        const size_t n = o_count(s);
        float *x = tu_floats(n), *y = tu_floats(n), *g = tu_floats(s.c), *b = tu_floats(s.c);
        for (size_t i = 0; i < n; i++)
            x[i] = 3.0f;
        for (uint32_t c = 0; c < s.c; c++) {
            g[c] = 1.0f;
            b[c] = betas[c % 16];
        }
        inorm_tensor *tg = tu_tensor(ctx, chan_shape(s), g), *tb = tu_tensor(ctx, chan_shape(s), b);
        for (int lo = 0; lo < 2; lo++) {
            const inorm_layout layout = lo ? INORM_NHWC : INORM_NCHW;
            inorm_tensor *tx = tu_tensor_fmt(ctx, s, INORM_FLOAT16, layout, x);
            inorm_tensor *ty = tu_tensor_fmt(ctx, s, INORM_FLOAT16, layout, NULL);
            inorm_norm_params p = {.eps = 1e-5f};
            for (int op = 0; op < 3; op++) {
                const uint32_t groups = op == 0 ? s.c : op == 1 ? (s.c % 4 ? 1 : s.c / 4) : 1;
                if (op == 2)
                    TU_OK(ctx, inorm_layer_norm(ctx, tx, tg, tb, &p, ty));
                else
                    TU_OK(ctx, inorm_group_norm(ctx, tx, groups, tg, tb, &p, ty));
                tu_download_fmt(ctx, ty, y, n);
                for (uint32_t nn = 0; nn < s.n; nn++)
                    for (uint32_t c = 0; c < s.c; c++)
                        for (size_t q = 0; q < o_plane(s); q++) {
                            const float got = y[o_index(s, lo, nn, c, q)];
                            const float want = inorm_half_to_float(inorm_float_to_half(b[c]));
                            uint32_t got_bits, want_bits;
                            memcpy(&got_bits, &got, sizeof got_bits);
                            memcpy(&want_bits, &want, sizeof want_bits);
                            ck_assert_msg(got_bits == want_bits || (isnan(got) && isnan(want)),
                                          "[%s] %s %ux%ux%ux%u %s, groups %u: channel %u (beta %a) gave %a, want %a",
                                          tu_backend_name(be), op == 2 ? "layer_norm" : "group_norm", s.n, s.c, s.h,
                                          s.w, lo ? "NHWC" : "NCHW", groups, c, (double)b[c], (double)got,
                                          (double)want);
                        }
                checked++;
            }
            inorm_tensor_destroy(tx);
            inorm_tensor_destroy(ty);
        }
        inorm_tensor_destroy(tg);
        inorm_tensor_destroy(tb);
        free(x);
        free(y);
        free(g);
        free(b);
    }
    printf("fp16 output rounding [%s]: %d op x shape x layout cases bit-exact\n", tu_backend_name(be), checked);
    tu_ctx_destroy(ctx);
}
END_TEST

START_TEST(fp16_large_magnitude)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    o_shape s = tu_shape(2, 3, 16, 9), ss = tu_shape(1, 3, 7, 5);
    size_t n = o_count(s), hw = o_plane(s);
    for (int lo = 0; lo < 2; lo++) {
        int f = lo ? 3 : 1; /* FLOAT16 NCHW, FLOAT16 NHWC */
        int nhwc = lo;
        tu_rng r;
        tu_rng_seed(&r, 1300 + (uint64_t)lo);
        float *x = tu_floats(n), *y = tu_floats(n), *st = tu_floats(o_count(ss)), *g = tu_floats(s.c),
              *b = tu_floats(s.c);
        double *ref = tu_doubles(n), *mag = tu_doubles(n);
        /* planes: 60000 +- 2000; +-60000 alternating (mean 0, var 3.6e9); 65504 and 32768 mixed */
        for (uint32_t nn = 0; nn < s.n; nn++)
            for (uint32_t c = 0; c < s.c; c++)
                for (size_t q = 0; q < hw; q++) {
                    double v;
                    if (c == 0)
                        v = 60000.0 + tu_rng_uniform(&r, -2000, 2000);
                    else if (c == 1)
                        v = (q % 2 ? 60000.0 : -60000.0) + tu_rng_uniform(&r, -100, 100);
                    else
                        v = (q % 3 ? 65504.0 : 32768.0) * (nn ? -1 : 1);
                    x[o_index(s, nhwc, nn, c, q)] = (float)v;
                }
        tu_round_to_half(x, n);
        for (uint32_t c = 0; c < ss.c; c++)
            for (size_t q = 0; q < o_plane(ss); q++)
                st[o_index(ss, nhwc, 0, c, q)] = (float)(59000.0 + tu_rng_uniform(&r, -1000, 1000));
        tu_round_to_half(st, o_count(ss));
        gen_affine(&r, g, b, s.c);
        inorm_tensor *tx = tu_tensor_fmt(ctx, s, INORM_FLOAT16, k_formats[f].lo, x);
        inorm_tensor *ty = tu_tensor_fmt(ctx, s, INORM_FLOAT16, k_formats[f].lo, NULL);
        inorm_tensor *tst = tu_tensor_fmt(ctx, ss, INORM_FLOAT16, k_formats[f].lo, st);
        inorm_tensor *tg = tu_tensor(ctx, chan_shape(s), g), *tb = tu_tensor(ctx, chan_shape(s), b);
        o_params op = {.eps = 1e-5f, .nhwc = nhwc};
        inorm_norm_params p = {.eps = 1e-5f};
        const char *fmt_name = FMT_NAME(f);

        TU_OK(ctx, inorm_instance_norm(ctx, tx, tg, tb, &p, ty));
        tu_download_fmt(ctx, ty, y, n);
        oracle_group_norm_ex(&op, s, x, s.c, g, b, ref, mag);
        tu_assert_close_fmt(tu_fmt("instance_norm [%s] %s, values near 60000", tu_backend_name(be), fmt_name), s,
                            INORM_FLOAT16, k_formats[f].lo, y, ref, mag);

        TU_OK(ctx, inorm_layer_norm(ctx, tx, tg, tb, &p, ty));
        tu_download_fmt(ctx, ty, y, n);
        oracle_group_norm_ex(&op, s, x, 1, g, b, ref, mag);
        tu_assert_close_fmt(tu_fmt("layer_norm [%s] %s, values near 60000", tu_backend_name(be), fmt_name), s,
                            INORM_FLOAT16, k_formats[f].lo, y, ref, mag);

        /* masked, unbiased */
        float *m = tu_floats(hw);
        gen_mask(&r, m, 1, hw);
        inorm_tensor *tm = tu_tensor(ctx, tu_shape(1, 1, s.h, s.w), m);
        inorm_norm_params pm = {.eps = 1e-5f, .unbiased = 1, .mask = tm};
        o_params opm = {.eps = 1e-5f, .unbiased = 1, .nhwc = nhwc, .mask = m, .mask_n = 1};
        TU_OK(ctx, inorm_group_norm(ctx, tx, 3, tg, tb, &pm, ty));
        tu_download_fmt(ctx, ty, y, n);
        oracle_group_norm_ex(&opm, s, x, 3, g, b, ref, mag);
        tu_assert_close_fmt(tu_fmt("group_norm [%s] %s masked unbiased, values near 60000", tu_backend_name(be),
                                   fmt_name),
                            s, INORM_FLOAT16, k_formats[f].lo, y, ref, mag);

        /* AdaIN towards a style near 59000: outputs up to about 61000 */
        TU_OK(ctx, inorm_adain(ctx, tx, tst, 1.0f, &p, ty));
        tu_download_fmt(ctx, ty, y, n);
        const double w1 = 1.0;
        const float *sts[1] = {st};
        oracle_adain_mix_ex(&op, s, x, 1, &ss, sts, &w1, 1.0, ref, mag);
        tu_assert_close_fmt(tu_fmt("adain [%s] %s, content and style near 60000", tu_backend_name(be), fmt_name), s,
                            INORM_FLOAT16, k_formats[f].lo, y, ref, mag);

        /* stats: mean near 60000 and std near 60000, in FLOAT32 outputs */
        inorm_tensor *tmean = tu_tensor(ctx, nc_shape(s), NULL), *tstd = tu_tensor(ctx, nc_shape(s), NULL);
        TU_OK(ctx, inorm_stats(ctx, tx, &p, tmean, tstd));
        float gm[6], gs[6];
        double rm[6], rs[6], rsig[6];
        tu_download(ctx, tmean, gm, 6);
        tu_download(ctx, tstd, gs, 6);
        oracle_stats_ex(&op, s, x, rm, rs, rsig);
        tu_assert_stats(tu_fmt("stats [%s] %s, values near 60000", tu_backend_name(be), fmt_name), nc_shape(s), gm,
                        gs, rm, rs, rsig);

        inorm_tensor_destroy(tmean);
        inorm_tensor_destroy(tstd);
        inorm_tensor_destroy(tm);
        inorm_tensor_destroy(tx);
        inorm_tensor_destroy(ty);
        inorm_tensor_destroy(tst);
        inorm_tensor_destroy(tg);
        inorm_tensor_destroy(tb);
        free(x), free(y), free(st), free(g), free(b), free(ref), free(mag), free(m);
    }
    tu_ctx_destroy(ctx);
}
END_TEST

/* The ends of fp16's range on the output side (overflow to +-Inf, rounding
 * just below it, subnormal results) and on the input side (subnormal
 * inputs: a device that flushed them to zero would see a constant plane). */
START_TEST(fp16_range_edges)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    /* planes of +-1 normalize exactly to +-1 (eps 0, biased) */
    static const float scales[] = {70000.0f, 65536.0f, 65520.0f, 65519.0f, 65510.0f, 65504.0f,
                                   1e-6f,    3e-7f,    0x1p-24f, 0x1p-25f,  0x3p-25f};
    const uint32_t C = sizeof scales / sizeof scales[0];
    o_shape s = tu_shape(1, C, 1, 2);
    for (int lo = 0; lo < 2; lo++) {
        int nhwc = lo;
        float x[2 * sizeof scales / sizeof scales[0]], y[2 * sizeof scales / sizeof scales[0]];
        for (uint32_t c = 0; c < C; c++) {
            x[o_index(s, nhwc, 0, c, 0)] = -1.0f;
            x[o_index(s, nhwc, 0, c, 1)] = 1.0f;
        }
        inorm_tensor *tx = tu_tensor_fmt(ctx, s, INORM_FLOAT16, lo ? INORM_NHWC : INORM_NCHW, x);
        inorm_tensor *ty = tu_tensor_fmt(ctx, s, INORM_FLOAT16, lo ? INORM_NHWC : INORM_NCHW, NULL);
        inorm_tensor *tsc = tu_tensor(ctx, tu_shape(1, C, 1, 1), scales);
        inorm_norm_params p = {.eps = 0.0f};
        TU_OK(ctx, inorm_adain_modulate(ctx, tx, tsc, NULL, &p, ty));
        tu_download_fmt(ctx, ty, y, 2 * C);
        for (uint32_t c = 0; c < C; c++) {
            for (int k = 0; k < 2; k++) {
                double v = (k ? 1.0 : -1.0) * scales[c];
                float got = y[o_index(s, nhwc, 0, c, (size_t)k)];
                float want = tu_half_to_float(tu_half_from_double(v)); /* exact: v is fp32-exact */
                ck_assert_msg(got == want || (got == 0 && want == 0),
                              "adain_modulate [%s] FLOAT16 %s: +-1 times %a = %a stored as %a, want %a "
                              "(round to nearest even, overflow to Inf)",
                              tu_backend_name(be), lo ? "NHWC" : "NCHW", (double)scales[c], v, (double)got,
                              (double)want);
            }
        }
        inorm_tensor_destroy(tx);
        inorm_tensor_destroy(ty);
        inorm_tensor_destroy(tsc);

        /* subnormal inputs: plane c holds k * 2^-24 for k in a range of its own */
        o_shape s2 = tu_shape(2, 3, 8, 16);
        size_t n2 = o_count(s2), hw2 = o_plane(s2);
        float *x2 = tu_floats(n2), *y2 = tu_floats(n2), *g = tu_floats(3), *b = tu_floats(3);
        double *ref = tu_doubles(n2), *mag = tu_doubles(n2);
        tu_rng r;
        tu_rng_seed(&r, 1400 + (uint64_t)lo);
        for (uint32_t nn = 0; nn < s2.n; nn++)
            for (uint32_t c = 0; c < s2.c; c++)
                for (size_t q = 0; q < hw2; q++) {
                    uint32_t top = c == 0 ? 1023 : c == 1 ? 8 : 2000; /* plane 2: subnormal and normal */
                    x2[o_index(s2, nhwc, nn, c, q)] =
                        (float)((double)(tu_rng_next(&r) % (top + 1)) * 0x1p-24 * (nn ? -1 : 1));
                }
        tu_round_to_half(x2, n2);
        gen_affine(&r, g, b, 3);
        inorm_tensor *tx2 = tu_tensor_fmt(ctx, s2, INORM_FLOAT16, lo ? INORM_NHWC : INORM_NCHW, x2);
        inorm_tensor *ty2 = tu_tensor_fmt(ctx, s2, INORM_FLOAT16, lo ? INORM_NHWC : INORM_NCHW, NULL);
        inorm_tensor *tg = tu_tensor(ctx, chan_shape(s2), g), *tb = tu_tensor(ctx, chan_shape(s2), b);
        inorm_norm_params p2 = {.eps = 0.0f};
        TU_OK(ctx, inorm_instance_norm(ctx, tx2, tg, tb, &p2, ty2));
        tu_download_fmt(ctx, ty2, y2, n2);
        o_params op = {.eps = 0.0f, .nhwc = nhwc};
        oracle_group_norm_ex(&op, s2, x2, 3, g, b, ref, mag);
        tu_assert_close_fmt(tu_fmt("instance_norm [%s] FLOAT16, subnormal inputs, eps 0", tu_backend_name(be)), s2,
                            INORM_FLOAT16, lo ? INORM_NHWC : INORM_NCHW, y2, ref, mag);
        /* stats of subnormal inputs */
        inorm_tensor *tm = tu_tensor(ctx, nc_shape(s2), NULL), *tsd = tu_tensor(ctx, nc_shape(s2), NULL);
        TU_OK(ctx, inorm_stats(ctx, tx2, &p2, tm, tsd));
        float gm[6], gs[6];
        double rm[6], rs[6], rsig[6];
        tu_download(ctx, tm, gm, 6);
        tu_download(ctx, tsd, gs, 6);
        oracle_stats_ex(&op, s2, x2, rm, rs, rsig);
        tu_assert_stats(tu_fmt("stats [%s] FLOAT16, subnormal inputs", tu_backend_name(be)), nc_shape(s2), gm, gs, rm,
                        rs, rsig);
        inorm_tensor_destroy(tm);
        inorm_tensor_destroy(tsd);
        inorm_tensor_destroy(tx2);
        inorm_tensor_destroy(ty2);
        inorm_tensor_destroy(tg);
        inorm_tensor_destroy(tb);
        free(x2), free(y2), free(g), free(b), free(ref), free(mag);
    }
    tu_ctx_destroy(ctx);
}
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
        {0x1.002002p+0f, 0x3c01, "1 + 2^-11 + 2^-23, just above the midpoint, rounds up"},
        {0x1.003ffep+0f, 0x3c01, "1 + 2^-10 - 2^-23 rounds to 1 + 2^-10"},
        {0x1.001ffep+0f, 0x3c00, "1 + 2^-11 - 2^-23, just below the midpoint, rounds down"},
        {2.0f - 0x1p-12f, 0x4000, "2 - 2^-12: halfway between 0x3bff and 2, ties to even 2"},
        {0.1f, 0x2e66, "0.1"},
        {1.0f / 3.0f, 0x3555, "1/3"},
        {2048.0f + 1.0f, 0x6800, "2049: halfway between 2048 and 2050, ties to even 2048"},
        {2048.0f + 3.0f, 0x6802, "2051: halfway between 2050 and 2052, ties to even 2052"},
        {60000.0f, 0x7b53, "60000"},
    };
    for (size_t i = 0; i < sizeof to_half / sizeof to_half[0]; i++) {
        uint16_t want = to_half[i].h;
        uint16_t lib = inorm_float_to_half(to_half[i].f), own = tu_half_from_double(to_half[i].f);
        ck_assert_msg(lib == want, "inorm_float_to_half(%a) (%s) = 0x%04x, want 0x%04x", (double)to_half[i].f,
                      to_half[i].what, lib, want);
        ck_assert_msg(own == want, "test harness tu_half_from_double(%a) (%s) = 0x%04x, want 0x%04x",
                      (double)to_half[i].f, to_half[i].what, own, want);
    }
    /* NaN stays NaN (quiet or signalling, either sign) */
    const float nans[] = {NAN, -NAN, f32_from_bits(0x7f800001u), f32_from_bits(0x7fc00000u),
                          f32_from_bits(0xffffffffu)};
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
                                uint32_t sb = sdt == INORM_FLOAT16 ? ((uint16_t *)src)[is]
                                                                   : f32_bits(((float *)src)[is]);
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
        const char *tags; /* Check tags: "subset", "vulkan_geometry" (see the top) */
    } cases[] = {
        {"matrix_2x3x7x5", matrix_2x3x7x5, NULL},
        {"matrix_1x4x1x513", matrix_1x4x1x513, NULL},
        {"matrix_1x2x97x89", matrix_1x2x97x89, "subset"},
        {"matrix_3x5x1x1", matrix_3x5x1x1, NULL},
        {"matrix_1x64x16x16", matrix_1x64x16x16, NULL},
        {"matrix_2x6x33x17", matrix_2x6x33x17, NULL},
        {"matrix_2x44x40x30", matrix_2x44x40x30, NULL},
        {"matrix_1x2x1x16388", matrix_1x2x1x16388, "vulkan_geometry"},
        {"mask_hand_examples", mask_hand_examples, NULL},
        {"mask_refusals", mask_refusals, NULL},
        {"mask_nan_under_zero_weight", mask_nan_under_zero_weight, "subset"},
        {"mask_validation_cache", mask_validation_cache, NULL},
        {"adain_mix_weights", adain_mix_weights, NULL},
        {"adain_mix_count1_is_adain", adain_mix_count1_is_adain, NULL},
        {"adain_mix_max_styles_and_reshapes", adain_mix_max_styles_and_reshapes, NULL},
        {"adain_mix_refusals", adain_mix_refusals, NULL},
        {"cin_one_hot_is_instance_norm", cin_one_hot_is_instance_norm, NULL},
        {"nhwc_quads_per_lane", nhwc_quads_per_lane, "subset vulkan_geometry"},
        {"nhwc_folded_pixels", nhwc_folded_pixels, "subset vulkan_geometry"},
        {"nhwc_tiny_planes", nhwc_tiny_planes, "subset vulkan_geometry"},
        {"nhwc_segment_tiles", nhwc_segment_tiles, "subset vulkan_geometry"},
        {"nhwc_uneven_groups", nhwc_uneven_groups, "subset vulkan_geometry"},
        {"nchw_small_planes_wide_groups", nchw_small_planes_wide_groups, "subset vulkan_geometry"},
        {"nchw_fused_register_planes", nchw_fused_register_planes, "subset vulkan_geometry"},
        {"nchw_whole_segments", nchw_whole_segments, "vulkan_geometry"},
        {"nhwc_self_stats", nhwc_self_stats, "vulkan_geometry"},
        {"nhwc_narrow_tiles", nhwc_narrow_tiles, "subset vulkan_geometry"},
        {"adain_fused_styles", adain_fused_styles, "subset vulkan_geometry"},
        {"fp16_output_rounding", fp16_output_rounding, "subset"},
        {"cin_mixed_rows", cin_mixed_rows, NULL},
        {"cin_refusals", cin_refusals, NULL},
        {"activation_silu_extremes", activation_silu_extremes, NULL},
        {"activation_leaky_slopes", activation_leaky_slopes, NULL},
        {"activation_nan_passes", activation_nan_passes, NULL},
        {"activation_refusals", activation_refusals, NULL},
        {"fp16_large_magnitude", fp16_large_magnitude, "subset"},
        {"fp16_range_edges", fp16_range_edges, NULL},
        {"convert_every_pair", convert_every_pair, NULL},
        {"convert_refusals", convert_refusals, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tu_add_backend_case(s, cases[i].name, cases[i].test, 300);
        if (cases[i].tags)
            tcase_set_tags(tc, cases[i].tags);
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
