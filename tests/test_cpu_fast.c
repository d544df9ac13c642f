/*
 * The CPU path's fast path against the double oracle, on shapes chosen to
 * reach each of its branches:
 * - FLOAT16 and FLOAT32, NCHW and NHWC (channel periods 3, 5, 7, 12, 64: lane
 *   counts that are and are not multiples of 16);
 * - "fused" jobs (many planes, one per item) and "split" jobs (few planes cut
 *   into chunks across threads, chunk sizes not divisible by the thread
 *   count, group-norm segments whose chunks cross channel planes);
 * - a tail shorter than a vector group (planes of 1, 7, 17x19 elements);
 * - AdaIN with a style of N 1 (broadcast) and of N equal, of another H x W,
 *   with a blend and activations;
 * - data with a large mean (1000 + small noise), also with outliers where
 *   spans and fp16 tiles start, NaN and Inf in one plane.
 * Shapes above 65536 elements run on several threads (src/cpu/cpu_backend.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

enum { T_INSTANCE, T_GROUP, T_LAYER, T_MODULATE, T_CIN, T_ADAIN, T_STATS };
static const char *const t_names[] = {"instance_norm", "group_norm", "layer_norm", "adain_modulate",
                                      "conditional_instance_norm", "adain", "stats"};

typedef struct fast_case {
    int op;
    o_shape s;
    uint32_t groups;      /* T_GROUP */
    o_shape style;        /* T_ADAIN */
    float alpha;          /* T_ADAIN */
    int activation;
    int unbiased;
    int inplace;          /* y is x (not for T_STATS) */
    double mean, spread;  /* data: mean + spread * uniform(-1, 1) per plane, 0 spread: random planes */
} fast_case;

/* Data in the tensor's layout, each plane with its own offset and scale
 * unless the case fixes them; rounded to fp16 when half. */
static void gen(tu_rng *r, float *x, o_shape s, int nhwc, int half, double mean, double spread)
{
    for (uint32_t n = 0; n < s.n; n++)
        for (uint32_t c = 0; c < s.c; c++) {
            double scale = spread > 0.0 ? spread : exp(tu_rng_uniform(r, log(0.1), log(10.0)));
            double off = spread > 0.0 ? mean : scale * tu_rng_uniform(r, -3.0, 3.0);
            for (size_t p = 0; p < o_plane(s); p++)
                x[o_index(s, nhwc, n, c, p)] = (float)(off + scale * tu_rng_uniform(r, -1.0, 1.0));
        }
    if (half)
        tu_round_to_half(x, o_count(s));
}

/* Runs one case on the CPU path; x may be given (already in layout), else generated.
 * Returns the worst |err| / bound. */
static double run(const fast_case *fc, inorm_dtype dt, inorm_layout layout, const float *given, uint64_t seed)
{
    inorm_context *ctx = tu_ctx_create(INORM_BACKEND_CPU);
    if (!ctx)
        return 0.0;
    tu_rng r;
    tu_rng_seed(&r, seed);
    const o_shape s = fc->s;
    const int nhwc = layout == INORM_NHWC, half = dt == INORM_FLOAT16;
    const size_t count = o_count(s), nc = (size_t)s.n * s.c;
    float *x = tu_floats(count), *y = tu_floats(count);
    double *ref = tu_doubles(count), *mag = tu_doubles(count);
    if (given)
        memcpy(x, given, count * sizeof *x);
    else
        gen(&r, x, s, nhwc, half, fc->mean, fc->spread);
    const float slope = 0.25f;
    inorm_norm_params p = {.eps = 1e-5f, .unbiased = fc->unbiased, .activation = (inorm_activation)fc->activation,
                           .activation_slope = slope};
    o_params op = {.eps = 1e-5f, .unbiased = fc->unbiased, .nhwc = nhwc, .activation = fc->activation,
                   .slope = slope};
    inorm_tensor *tx = tu_tensor_fmt(ctx, s, dt, layout, x);
    inorm_tensor *ty = fc->inplace && fc->op != T_STATS ? tx : tu_tensor_fmt(ctx, s, dt, layout, NULL);
    float *g = tu_floats(3 * nc), *b = tu_floats(3 * nc);
    for (size_t i = 0; i < 3 * nc; i++) {
        g[i] = (float)tu_rng_uniform(&r, 0.5, 2.0);
        b[i] = (float)tu_rng_uniform(&r, -2.0, 2.0);
    }
    const char *what = tu_fmt("%s %s %s %s act=%d unbiased=%d%s", t_names[fc->op], tu_shape_str(s), tu_dtype_name(dt),
                              tu_layout_name(layout), fc->activation, fc->unbiased, fc->inplace ? " in place" : "");
    double worst = 0.0;
    switch (fc->op) {
    case T_INSTANCE:
    case T_GROUP:
    case T_LAYER: {
        uint32_t groups = fc->op == T_INSTANCE ? s.c : fc->op == T_LAYER ? 1 : fc->groups;
        inorm_tensor *tg = tu_tensor(ctx, tu_shape(1, s.c, 1, 1), g), *tb = tu_tensor(ctx, tu_shape(1, s.c, 1, 1), b);
        if (fc->op == T_INSTANCE)
            TU_OK(ctx, inorm_instance_norm(ctx, tx, tg, tb, &p, ty));
        else if (fc->op == T_LAYER)
            TU_OK(ctx, inorm_layer_norm(ctx, tx, tg, tb, &p, ty));
        else
            TU_OK(ctx, inorm_group_norm(ctx, tx, groups, tg, tb, &p, ty));
        oracle_group_norm_ex(&op, s, x, groups, g, b, ref, mag);
        break;
    }
    case T_MODULATE: {
        inorm_tensor *tg = tu_tensor(ctx, tu_shape(s.n, s.c, 1, 1), g), *tb = tu_tensor(ctx, tu_shape(s.n, s.c, 1, 1), b);
        TU_OK(ctx, inorm_adain_modulate(ctx, tx, tg, tb, &p, ty));
        oracle_modulate_ex(&op, s, x, g, b, ref, mag);
        break;
    }
    case T_CIN: {
        float *w = tu_floats(nc * 3);
        for (size_t i = 0; i < (size_t)s.n * 3; i++)
            w[i] = (float)tu_rng_uniform(&r, -0.5, 1.5);
        inorm_tensor *tg = tu_tensor(ctx, tu_shape(3, s.c, 1, 1), g), *tb = tu_tensor(ctx, tu_shape(3, s.c, 1, 1), b);
        inorm_tensor *tw = tu_tensor(ctx, tu_shape(s.n, 3, 1, 1), w);
        TU_OK(ctx, inorm_conditional_instance_norm(ctx, tx, tg, tb, tw, &p, ty));
        oracle_cin_ex(&op, s, x, 3, g, b, w, ref, mag);
        free(w);
        break;
    }
    case T_ADAIN: {
        float *st = tu_floats(o_count(fc->style));
        gen(&r, st, fc->style, nhwc, half, 0.0, 0.0);
        inorm_tensor *ts = tu_tensor_fmt(ctx, fc->style, dt, layout, st);
        TU_OK(ctx, inorm_adain(ctx, tx, ts, fc->alpha, &p, ty));
        const float *styles[1] = {st};
        const double weights[1] = {1.0};
        oracle_adain_mix_ex(&op, s, x, 1, &fc->style, styles, weights, (double)fc->alpha, ref, mag);
        what = tu_fmt("%s style %s alpha %g", what, tu_shape_str(fc->style), (double)fc->alpha);
        free(st);
        break;
    }
    case T_STATS: {
        inorm_tensor *tm = tu_tensor(ctx, tu_shape(s.n, s.c, 1, 1), NULL);
        inorm_tensor *tsd = tu_tensor(ctx, tu_shape(s.n, s.c, 1, 1), NULL);
        TU_OK(ctx, inorm_stats(ctx, tx, &p, tm, tsd));
        float *gm = tu_floats(nc), *gs = tu_floats(nc);
        double *rm = tu_doubles(nc), *rs = tu_doubles(nc), *rsig = tu_doubles(nc);
        tu_download(ctx, tm, gm, nc);
        tu_download(ctx, tsd, gs, nc);
        oracle_stats_ex(&op, s, x, rm, rs, rsig);
        tu_assert_stats(what, s, gm, gs, rm, rs, rsig);
        free(gm), free(gs), free(rm), free(rs), free(rsig);
        goto done;
    }
    }
    tu_download_fmt(ctx, ty, y, count);
    worst = tu_assert_close_fmt(what, s, dt, layout, y, ref, mag);
done:
    tu_ctx_destroy(ctx);
    free(x), free(y), free(ref), free(mag), free(g), free(b);
    return worst;
}

static void run_all_formats(const fast_case *fc, uint64_t seed)
{
    for (int d = 0; d < 2; d++)
        for (int l = 0; l < 2; l++)
            run(fc, d ? INORM_FLOAT16 : INORM_FLOAT32, l ? INORM_NHWC : INORM_NCHW, NULL, seed + 4u * d + l);
}

#define SH(n, c, h, w) {n, c, h, w}

/* Shapes for every op: fused and split jobs, periods 3, 5, 7, 12, 64, tails. */
static const o_shape shapes[] = {
    SH(2, 3, 17, 19),   /* one thread, tails of 3 (NCHW) */
    SH(3, 5, 1, 7),     /* planes of 7 elements: only a tail */
    SH(4, 12, 1, 1),    /* planes of 1: the output is exactly beta */
    SH(1, 3, 300, 301), /* split: 3 planes over threads, 90300 pixels */
    SH(1, 7, 181, 183), /* split NHWC with period 7 (112 lanes) */
    SH(8, 64, 23, 21),  /* fused, 512 planes over threads */
    SH(17, 5, 31, 29),  /* fused on threads, an odd number of units (both layouts) */
    SH(3, 5, 97, 89),   /* few units that do not share out evenly: split */
};

static void check_op(int op, uint32_t groups)
{
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        fast_case fc = {.op = op, .s = shapes[i], .groups = groups};
        if (op == T_GROUP && shapes[i].c % groups != 0)
            fc.groups = 1;
        fc.unbiased = o_plane(shapes[i]) > 1 && i % 2;
        run_all_formats(&fc, 100 + i);
    }
}

START_TEST(instance_norm_formats) { check_op(T_INSTANCE, 0); }
END_TEST
START_TEST(layer_norm_formats) { check_op(T_LAYER, 0); }
END_TEST
START_TEST(adain_modulate_formats) { check_op(T_MODULATE, 0); }
END_TEST
START_TEST(conditional_formats) { check_op(T_CIN, 0); }
END_TEST
START_TEST(stats_formats) { check_op(T_STATS, 0); }
END_TEST

/* Group norm: segments of several channels, in NHWC interleaved with other
 * groups; split jobs whose chunks cross channel planes. */
START_TEST(group_norm_formats)
{
    const o_shape gs[] = {SH(2, 12, 45, 47), SH(1, 8, 130, 131), SH(1, 6, 257, 255), SH(5, 12, 7, 9)};
    const uint32_t groups[] = {3, 2, 3, 4};
    for (size_t i = 0; i < 4; i++) {
        fast_case fc = {.op = T_GROUP, .s = gs[i], .groups = groups[i], .unbiased = (int)(i % 2)};
        run_all_formats(&fc, 200 + i);
    }
}
END_TEST

typedef struct adain_case {
    o_shape c, s;
    float alpha;
    int act;
} adain_case;

/* Each case in every format; in place every other case if asked. */
static void run_adain_cases(const adain_case *cases, size_t count, uint64_t seed, int alternate_inplace)
{
    for (size_t i = 0; i < count; i++) {
        fast_case fc = {.op = T_ADAIN, .s = cases[i].c, .style = cases[i].s, .alpha = cases[i].alpha,
                        .activation = cases[i].act, .inplace = alternate_inplace && i % 2};
        run_all_formats(&fc, seed + i);
    }
}

/* AdaIN: style broadcast (N 1) and per sample, another H x W, blends and
 * activations (the float epilogues), every other case in place. */
START_TEST(adain_formats)
{
    const adain_case cases[] = {
        {SH(4, 5, 33, 31), SH(1, 5, 20, 21), 1.0f, O_ACT_NONE},
        {SH(4, 5, 33, 31), SH(4, 5, 9, 11), 0.6f, O_ACT_LEAKY_RELU},
        {SH(1, 3, 300, 301), SH(1, 3, 120, 111), 1.5f, O_ACT_RELU},  /* split content and style */
        {SH(16, 64, 9, 9), SH(1, 64, 64, 65), 1.0f, O_ACT_SILU},     /* fused content, split style */
        {SH(2, 7, 1, 1), SH(2, 7, 1, 1), 0.3f, O_ACT_NONE},
    };
    run_adain_cases(cases, sizeof cases / sizeof cases[0], 300, 1);  /* in place: the blend reads x */
}
END_TEST

/* Activations on normalize ops, through the fast path's float epilogues
 * (the lane loops and, on 4x5 planes, the plane loops). */
START_TEST(activations_formats)
{
    for (int act = O_ACT_RELU; act <= O_ACT_SILU; act++) {
        fast_case fc = {.op = T_INSTANCE, .s = SH(2, 5, 61, 67), .activation = act};
        run_all_formats(&fc, 400 + (uint64_t)act);
        fc.op = T_MODULATE;
        fc.s = (o_shape)SH(1, 3, 200, 171);
        fc.inplace = 1;
        run_all_formats(&fc, 410 + (uint64_t)act);
    }
}
END_TEST

/* NCHW planes of at most 256 elements take loops of their own: statistics
 * straight from each plane (with AVX2 four chains in one vector), outputs a
 * batch of planes at a time with each plane's coefficients broadcast, where
 * a plane cut by a split job's chunk is a batch of its own. Planes shorter
 * than a vector (1, 3, 7), with a tail (9, 17, 63, 81, 247) and without (8,
 * 16, 64, 256), and one past the limit (257); every op, in place and not;
 * group norm whose segments are small units (2 channels) and whose
 * segments are not (16 channels: the apply alone); layer norm as split
 * jobs whose chunks cut planes (planes shorter than a vector take eight
 * elements of several planes at a time); AdaIN with small
 * styles (their statistics batched too), broadcast and per sample, plain and
 * with a blend and an activation; planes at 1000 + noise. Shapes above
 * 65536 elements run on two threads with items that do not divide the
 * planes evenly. */
START_TEST(small_planes)
{
    const o_shape sizes[] = {SH(64, 128, 4, 4), SH(10, 1000, 1, 7), SH(3, 700, 1, 3), SH(5, 300, 3, 3),
                             SH(7, 77, 1, 17), SH(3, 200, 7, 9),   SH(2, 300, 8, 8), SH(2, 3, 1, 8),
                             SH(6, 50, 1, 1),  SH(4, 100, 9, 9),   SH(2, 50, 13, 19), SH(3, 40, 16, 16),
                             SH(2, 30, 1, 257)};
    const int ops[] = {T_INSTANCE, T_GROUP, T_LAYER, T_MODULATE, T_CIN, T_STATS};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
            const o_shape s = sizes[i];
            fast_case fc = {.op = ops[k], .s = s, .inplace = (int)((i + k) % 2), .unbiased = o_plane(s) > 1 && k % 2};
            fc.groups = s.c % 16 == 0 && i % 2 ? s.c / 16 : s.c % 2 == 0 ? s.c / 2 : 1;
            run_all_formats(&fc, 800 + 10 * i + k);
        }
    /* layer norm of one sample past the parallel threshold: chunks cut planes of 63, 200 and 3 */
    fast_case layer = {.op = T_LAYER, .s = SH(1, 1100, 7, 9)};
    run_all_formats(&layer, 900);
    layer.s = (o_shape)SH(1, 400, 10, 20);
    run_all_formats(&layer, 901);
    layer.s = (o_shape)SH(1, 30001, 1, 3);
    run_all_formats(&layer, 902);
    const adain_case adain[] = {
        {SH(16, 512, 4, 4), SH(1, 512, 3, 3), 1.0f, O_ACT_NONE},
        {SH(16, 512, 4, 4), SH(16, 512, 2, 2), 1.0f, O_ACT_NONE},
        {SH(4, 100, 5, 5), SH(4, 100, 8, 8), 0.5f, O_ACT_LEAKY_RELU},
        {SH(3, 40, 1, 7), SH(1, 40, 1, 1), 1.0f, O_ACT_SILU},
    };
    run_adain_cases(adain, sizeof adain / sizeof adain[0], 910, 1);
    fast_case large = {.op = T_INSTANCE, .s = SH(64, 128, 4, 4), .mean = 1000.0, .spread = 1e-3};
    run(&large, INORM_FLOAT32, INORM_NCHW, NULL, 920);
    large.op = T_STATS;
    run(&large, INORM_FLOAT32, INORM_NCHW, NULL, 921);
}
END_TEST

/* 1000 + noise of 1e-3: the variance is 1e-9 relative to the squared mean.
 * Any E[x^2] - E[x]^2 in the path would lose it entirely. Big planes (split
 * jobs, several blocks merged) and small ones (fused). */
START_TEST(large_mean)
{
    const o_shape sizes[] = {SH(1, 2, 400, 401), SH(16, 32, 16, 17)};
    for (size_t i = 0; i < 2; i++) {
        fast_case fc = {.op = T_STATS, .s = sizes[i], .mean = 1000.0, .spread = 1e-3};
        for (int l = 0; l < 2; l++) {
            fc.op = T_STATS;
            run(&fc, INORM_FLOAT32, l ? INORM_NHWC : INORM_NCHW, NULL, 500 + i);
            fc.op = T_INSTANCE;
            run(&fc, INORM_FLOAT32, l ? INORM_NHWC : INORM_NCHW, NULL, 510 + i);
        }
        /* fp16 holds 1000 + 1e-3 as 1000: a spread of 0.5 is representable */
        fc.spread = 0.5;
        for (int l = 0; l < 2; l++)
            run(&fc, INORM_FLOAT16, l ? INORM_NHWC : INORM_NCHW, NULL, 520 + i);
    }
}
END_TEST

/* The statistics sum each span of blocks about its first value; that value
 * is here an outlier, 1000 + 0.1 in planes of 1000 + 1e-3 noise (170
 * standard deviations off), at every pixel index divisible by 512, where
 * every span of the fused jobs (4x24x96x67, both layouts) starts; the split
 * jobs (1x2x400x401) start their chunks anywhere, and have the outliers
 * inside spans. The shifted sums then start far from the mean, the case
 * their error bound covers; sums about 0 (E[x^2] - E[x]^2 in double) fail
 * here too. */
START_TEST(large_mean_outlier_span_starts)
{
    const o_shape sizes[] = {SH(1, 2, 400, 401), SH(4, 24, 96, 67)};
    for (size_t i = 0; i < 2; i++) {
        const o_shape s = sizes[i];
        float *x = tu_floats(o_count(s));
        for (int l = 0; l < 2; l++) {
            tu_rng r;
            tu_rng_seed(&r, 530 + i);
            gen(&r, x, s, l, 0, 1000.0, 1e-3);
            for (uint32_t n = 0; n < s.n; n++)
                for (uint32_t c = 0; c < s.c; c++)
                    for (size_t p = 0; p < o_plane(s); p += 512)
                        x[o_index(s, l, n, c, p)] = 1000.1f;
            for (int op = 0; op < 2; op++) {
                fast_case fc = {.op = op ? T_STATS : T_INSTANCE, .s = s};
                run(&fc, INORM_FLOAT32, l ? INORM_NHWC : INORM_NCHW, x, 540 + i);
            }
        }
        free(x);
    }
}
END_TEST

/* FLOAT16 statistics sum each tile of 16 rows of lanes in float about the
 * tile's own first value (tile_sums_portable in src/cpu/cpu_backend.c),
 * then move the sums to the span's shift in double. Outliers at span
 * starts make that shift far from the data:
 * - fp16 planes of 1000 + 0.5 * uniform noise (halves: 999.5, 1000,
 *   1000.5) with 1064 at every pixel index divisible by 512, where every
 *   span of the fused jobs (4x24x96x67) starts and where many tiles start
 *   (so is their own first value);
 * - planes of 1.5 + 0.25 * uniform noise with 60000 at pixel 0 alone, a
 *   span's only outlier (1x4x256x256: one span per NCHW plane): there
 *   float tiles summed about the span's shift round each d^2 of about 3.6e9
 *   and fail (their error is over 1e-5 of the standard deviation), and
 *   tiles summed about 0 fail the first case (628 of 320800 values up to 4x
 *   the fp16 tolerance). */
START_TEST(half_tiles_outlier_starts)
{
    const struct {
        o_shape s;
        double mean, spread;
        float outlier;
        size_t every; /* pixels between outliers */
    } cases[] = {
        {SH(1, 2, 400, 401), 1000.0, 0.5, 1064.0f, 512},
        {SH(4, 24, 96, 67), 1000.0, 0.5, 1064.0f, 512},
        {SH(1, 4, 256, 256), 1.5, 0.25, 60000.0f, 256 * 256},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const o_shape s = cases[i].s;
        float *x = tu_floats(o_count(s));
        for (int l = 0; l < 2; l++) {
            tu_rng r;
            tu_rng_seed(&r, 560 + i);
            gen(&r, x, s, l, 1, cases[i].mean, cases[i].spread);
            for (uint32_t n = 0; n < s.n; n++)
                for (uint32_t c = 0; c < s.c; c++)
                    for (size_t p = 0; p < o_plane(s); p += cases[i].every)
                        x[o_index(s, l, n, c, p)] = cases[i].outlier;
            for (int op = 0; op < 2; op++) {
                fast_case fc = {.op = op ? T_STATS : T_INSTANCE, .s = s};
                run(&fc, INORM_FLOAT16, l ? INORM_NHWC : INORM_NCHW, x, 570 + i);
            }
        }
        free(x);
    }
}
END_TEST

/* One NaN in one plane and one Inf in another: exactly those planes are NaN
 * (inorm.h), on fused and split jobs, in both layouts and dtypes. */
START_TEST(nan_inf_per_plane)
{
    const o_shape sizes[] = {SH(1, 4, 250, 263), SH(8, 16, 20, 21)};
    for (size_t i = 0; i < 2; i++) {
        const o_shape s = sizes[i];
        const size_t count = o_count(s), hw = o_plane(s);
        float *x = tu_floats(count), *y = tu_floats(count);
        for (int d = 0; d < 2; d++)
            for (int l = 0; l < 2; l++) {
                const inorm_dtype dt = d ? INORM_FLOAT16 : INORM_FLOAT32;
                const inorm_layout layout = l ? INORM_NHWC : INORM_NCHW;
                tu_rng r;
                tu_rng_seed(&r, 600 + i);
                gen(&r, x, s, l, d, 0.0, 0.0);
                x[o_index(s, l, 0, 1, hw / 2 + 3)] = NAN;       /* plane (0, 1) */
                x[o_index(s, l, s.n - 1, 2, hw - 1)] = INFINITY; /* plane (N-1, 2) */
                fast_case fc = {.op = T_INSTANCE, .s = s};
                run(&fc, dt, layout, x, 610 + i); /* against the oracle: NaN where it is NaN */

                TU_CTX(ctx, INORM_BACKEND_CPU);
                inorm_tensor *tx = tu_tensor_fmt(ctx, s, dt, layout, x), *ty = tu_tensor_fmt(ctx, s, dt, layout, NULL);
                TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, NULL, ty));
                tu_download_fmt(ctx, ty, y, count);
                for (uint32_t n = 0; n < s.n; n++)
                    for (uint32_t c = 0; c < s.c; c++) {
                        size_t nans = 0;
                        for (size_t p = 0; p < hw; p++)
                            nans += isnan(y[o_index(s, l, n, c, p)]) != 0;
                        int bad_plane = (n == 0 && c == 1) || (n == s.n - 1 && c == 2);
                        ck_assert_msg(nans == (bad_plane ? hw : 0), "%s %s %s plane (%u, %u): %zu NaN of %zu",
                                      tu_shape_str(s), tu_dtype_name(dt), tu_layout_name(layout), n, c, nans, hw);
                    }
                tu_ctx_destroy(ctx);
            }
        free(x), free(y);
    }
}
END_TEST

/* SiLU's float form (an exp polynomial, clamped) against the double formula
 * across its range: adain_modulate with scale 0 makes t the bias, exactly,
 * so y = silu(bias). Small planes (the plane loops) and 64x64 planes in
 * both layouts (the lane loops). Bound: fp32 4 ulps of the result (the
 * polynomial's 2, the sum and the division's) plus 1e-35 where the exact
 * result underflows (past t = -88 the float form gives -0); fp16 one fp16
 * ulp of the result (2^-24 among subnormals) from the rounded reference.
 * NaN and -inf give NaN, +inf gives +inf, as the double formula does. */
START_TEST(silu_values)
{
    static const float values[] = {0.0f, -0.0f, 1e-3f, -1e-3f, 0.5f, -0.5f, 1.0f, -1.0f, 5.0f, -5.0f, 10.0f,
                                   -10.0f, 17.5f, -17.5f, 30.0f, -30.0f, 50.0f, -50.0f, 80.0f, -80.0f, 86.9f,
                                   -86.9f, 87.1f, -87.1f, 87.9f, -87.9f, 88.1f, -88.1f, 88.8f, -88.8f, 100.0f,
                                   -100.0f, 1e4f, -1e4f, FLT_MAX, -FLT_MAX, INFINITY, -INFINITY, NAN};
    const uint32_t channels = sizeof values / sizeof values[0];
    const o_shape sizes[] = {SH(1, channels, 4, 5), SH(1, channels, 64, 64)};
    float *scale = tu_floats(channels);
    for (uint32_t c = 0; c < channels; c++)
        scale[c] = 0.0f;
    for (size_t i = 0; i < 2; i++)
        for (int l = 0; l < 2; l++)
            for (int d = 0; d < 2; d++) {
                const o_shape s = sizes[i];
                const size_t count = o_count(s);
                const inorm_dtype dt = d ? INORM_FLOAT16 : INORM_FLOAT32;
                const inorm_layout layout = l ? INORM_NHWC : INORM_NCHW;
                float *x = tu_floats(count), *y = tu_floats(count);
                tu_rng r;
                tu_rng_seed(&r, 900 + i);
                gen(&r, x, s, l, d, 0.0, 0.0);
                TU_CTX(ctx, INORM_BACKEND_CPU);
                inorm_tensor *tx = tu_tensor_fmt(ctx, s, dt, layout, x), *ty = tu_tensor_fmt(ctx, s, dt, layout, NULL);
                inorm_tensor *tscale = tu_tensor(ctx, tu_shape(1, channels, 1, 1), scale);
                inorm_tensor *tbias = tu_tensor(ctx, tu_shape(1, channels, 1, 1), values);
                inorm_norm_params p = INORM_NORM_PARAMS_DEFAULT;
                p.activation = INORM_ACTIVATION_SILU;
                TU_OK(ctx, inorm_adain_modulate(ctx, tx, tscale, tbias, &p, ty));
                tu_download_fmt(ctx, ty, y, count);
                for (uint32_t c = 0; c < channels; c++) {
                    const double v = values[c], exact = v / (1.0 + exp(-v));
                    const double want = d ? tu_round_half(exact) : exact;
                    const double bound = d ? ldexp(fabs(want), -10) + ldexp(1.0, -24) : 4.0 * FLT_EPSILON * fabs(want) + 1e-35;
                    for (size_t q = 0; q < o_plane(s); q++) {
                        const double got = y[o_index(s, l, 0, c, q)];
                        const int ok = isnan(want) ? isnan(got) : isinf(want) ? got == want : fabs(got - want) <= bound;
                        ck_assert_msg(ok, "%s %s %s: silu(%a) = %a, want %a (bound %g)", tu_shape_str(s),
                                      tu_dtype_name(dt), tu_layout_name(layout), v, got, want, bound);
                    }
                }
                tu_ctx_destroy(ctx);
                free(x), free(y);
            }
    free(scale);
}
END_TEST

/* A constant plane gives exactly beta, also when it is merged over chunks
 * and blocks (Chan's merge must not round the mean). */
START_TEST(constant_planes_exact)
{
    const o_shape sizes[] = {SH(1, 3, 300, 300), SH(2, 5, 3, 3)};
    for (size_t i = 0; i < 2; i++) {
        const o_shape s = sizes[i];
        const size_t count = o_count(s);
        float *x = tu_floats(count), *y = tu_floats(count), beta[5] = {0.1f, -3.25f, 7.0f, 1e-3f, 2.5f};
        for (int l = 0; l < 2; l++)
            for (int d = 0; d < 2; d++) {
                for (uint32_t n = 0; n < s.n; n++)
                    for (uint32_t c = 0; c < s.c; c++)
                        for (size_t p = 0; p < o_plane(s); p++)
                            x[o_index(s, l, n, c, p)] = 1000.0f + (float)(3 * c + n);
                const inorm_dtype dt = d ? INORM_FLOAT16 : INORM_FLOAT32;
                const inorm_layout layout = l ? INORM_NHWC : INORM_NCHW;
                TU_CTX(ctx, INORM_BACKEND_CPU);
                inorm_tensor *tx = tu_tensor_fmt(ctx, s, dt, layout, x), *ty = tu_tensor_fmt(ctx, s, dt, layout, NULL);
                inorm_tensor *tb = tu_tensor(ctx, tu_shape(1, s.c, 1, 1), beta);
                TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, tb, NULL, ty));
                tu_download_fmt(ctx, ty, y, count);
                for (uint32_t n = 0; n < s.n; n++)
                    for (uint32_t c = 0; c < s.c; c++) {
                        const float want = d ? (float)tu_round_half(beta[c]) : beta[c];
                        for (size_t p = 0; p < o_plane(s); p++)
                            ck_assert_msg(y[o_index(s, l, n, c, p)] == want, "%s %s %s (%u, %u, %zu): %a, want %a",
                                          tu_shape_str(s), tu_dtype_name(dt), tu_layout_name(layout), n, c, p,
                                          (double)y[o_index(s, l, n, c, p)], (double)want);
                    }
                tu_ctx_destroy(ctx);
            }
        free(x), free(y);
    }
}
END_TEST

/* The same op twice gives the same bits: threads take items in any order,
 * merges happen in item order. */
START_TEST(deterministic)
{
    const o_shape s = SH(1, 5, 233, 239);
    const size_t count = o_count(s);
    float *x = tu_floats(count), *y1 = tu_floats(count), *y2 = tu_floats(count);
    tu_rng r;
    tu_rng_seed(&r, 700);
    gen(&r, x, s, 1, 0, 0.0, 0.0);
    TU_CTX(ctx, INORM_BACKEND_CPU);
    inorm_tensor *tx = tu_tensor_fmt(ctx, s, INORM_FLOAT32, INORM_NHWC, x);
    inorm_tensor *ty = tu_tensor_fmt(ctx, s, INORM_FLOAT32, INORM_NHWC, NULL);
    for (int k = 0; k < 5; k++) {
        TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, NULL, ty));
        tu_download(ctx, ty, k ? y2 : y1, count);
        ck_assert_msg(k == 0 || memcmp(y1, y2, count * sizeof *y1) == 0, "run %d differs from run 0", k);
    }
    tu_ctx_destroy(ctx);
    free(x), free(y1), free(y2);
}
END_TEST

int main(void)
{
    tu_init();
    Suite *s = suite_create("cpu_fast");
    TCase *tc = tcase_create("fast_path");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, instance_norm_formats);
    tcase_add_test(tc, group_norm_formats);
    tcase_add_test(tc, layer_norm_formats);
    tcase_add_test(tc, adain_modulate_formats);
    tcase_add_test(tc, conditional_formats);
    tcase_add_test(tc, stats_formats);
    tcase_add_test(tc, adain_formats);
    tcase_add_test(tc, activations_formats);
    tcase_add_test(tc, silu_values);
    tcase_add_test(tc, small_planes);
    tcase_add_test(tc, large_mean);
    tcase_add_test(tc, large_mean_outlier_span_starts);
    tcase_add_test(tc, half_tiles_outlier_starts);
    tcase_add_test(tc, nan_inf_per_plane);
    tcase_add_test(tc, constant_planes_exact);
    tcase_add_test(tc, deterministic);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
