/*
 * Every op on every selected backend (CPU path and Vulkan) against the
 * double-precision oracle, FLOAT32 NCHW, over shapes with 1x1 planes, odd and
 * prime sizes, with and without gamma/beta, in place and not, biased and
 * unbiased, several alphas and style shapes. Also: data with a large mean,
 * constant planes, work ordering, threads, and the refusal of FLOAT16/NHWC.
 *
 * Environment: INORM_TEST_BACKENDS=cpu|vulkan restricts the backends;
 * CK_INCLUDE_TAGS=subset runs the subset registered again with
 * INORM_DISABLE_SUBGROUPS=1 and INORM_FORCE_STAGING=1 (see meson.build).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

static const o_shape k_shapes[] = {
    {1, 1, 1, 1},  {3, 5, 1, 1},   {1, 1, 2, 2},  {2, 3, 7, 5},    {1, 4, 1, 513},  {1, 2, 97, 89},
    {2, 6, 5, 3},  {1, 3, 33, 31}, {1, 1, 300, 1}, {2, 2, 128, 129}, {1, 12, 9, 9},
};
#define N_SHAPES (sizeof k_shapes / sizeof k_shapes[0])

/* Planes with different offsets and spreads, so that a plane computed with
 * another plane's statistics is far off. Offsets stay within a few spreads
 * of zero (the large-mean case has its own test). */
static void gen_planes(tu_rng *r, float *x, o_shape s)
{
    size_t hw = o_plane(s);
    for (size_t p = 0; p < (size_t)s.n * s.c; p++) {
        double scale = exp(tu_rng_uniform(r, log(0.1), log(10.0)));
        double off = scale * tu_rng_uniform(r, -3.0, 3.0);
        for (size_t i = 0; i < hw; i++)
            x[p * hw + i] = (float)(off + scale * tu_rng_uniform(r, -1.0, 1.0));
    }
}

/* Per-channel affine values: |gamma| in [0.5, 2] with a random sign, beta in [-2, 2]. */
static void gen_affine(tu_rng *r, float *gam, float *bet, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double g = tu_rng_uniform(r, 0.5, 2.0);
        gam[i] = (float)(tu_rng_uniform(r, 0, 1) < 0.3 ? -g : g);
        bet[i] = (float)tu_rng_uniform(r, -2.0, 2.0);
    }
}

static o_shape chan_shape(o_shape s) { return tu_shape(1, s.c, 1, 1); }
static o_shape nc_shape(o_shape s) { return tu_shape(s.n, s.c, 1, 1); }

static void summary(const char *op, inorm_backend be, int cases, double worst)
{
    printf("%s [%s]: %d cases within tolerance, worst |err|/bound = %.4f\n", op,
           tu_backend_name(be), cases, worst);
}

/* ------------------------------------------------------ instance norm -- */

START_TEST(instance_norm_vs_oracle)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    tu_rng r;
    tu_rng_seed(&r, 101);
    int cases = 0;
    double worst = 0;
    for (size_t si = 0; si < N_SHAPES; si++) {
        o_shape s = k_shapes[si];
        size_t n = o_count(s), hw = o_plane(s);
        float *x = tu_floats(n), *y = tu_floats(n), *g = tu_floats(s.c), *b = tu_floats(s.c);
        double *ref = tu_doubles(n), *mag = tu_doubles(n);
        inorm_tensor *tx = tu_tensor(ctx, s, NULL), *ty = tu_tensor(ctx, s, NULL);
        inorm_tensor *tg = tu_tensor(ctx, chan_shape(s), NULL);
        inorm_tensor *tb = tu_tensor(ctx, chan_shape(s), NULL);
        for (int v = 0; v < 16; v++) {
            int use_g = v & 1, use_b = (v >> 1) & 1, unbiased = (v >> 2) & 1, inplace = (v >> 3) & 1;
            if (unbiased && hw < 2)
                continue;
            gen_planes(&r, x, s);
            gen_affine(&r, g, b, s.c);
            tu_upload(ctx, tx, x, n);
            tu_upload(ctx, tg, g, s.c);
            tu_upload(ctx, tb, b, s.c);
            inorm_norm_params p = {.eps = (v % 3) ? 1e-3f : 1e-5f, .unbiased = unbiased};
            const inorm_norm_params *pp = v == 0 ? NULL : &p; /* NULL = {1e-5, biased} */
            inorm_tensor *out = inplace ? tx : ty;
            TU_OK(ctx, inorm_instance_norm(ctx, tx, use_g ? tg : NULL, use_b ? tb : NULL, pp, out));
            tu_download(ctx, out, y, n);
            oracle_instance_norm(s, x, use_g ? g : NULL, use_b ? b : NULL, p.eps, unbiased, ref, mag);
            double wr = tu_assert_close(
                tu_fmt("instance_norm [%s] gamma=%d beta=%d unbiased=%d eps=%g%s inplace=%d",
                       tu_backend_name(be), use_g, use_b, unbiased, (double)p.eps,
                       pp ? "" : " (params NULL)", inplace),
                s, y, ref, mag);
            worst = fmax(worst, wr);
            cases++;
        }
        inorm_tensor_destroy(tx);
        inorm_tensor_destroy(ty);
        inorm_tensor_destroy(tg);
        inorm_tensor_destroy(tb);
        free(x), free(y), free(g), free(b), free(ref), free(mag);
    }
    summary("instance_norm", be, cases, worst);
    tu_ctx_destroy(ctx);
}
END_TEST

/* --------------------------------------------------------- group norm -- */

START_TEST(group_norm_vs_oracle)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    tu_rng r;
    tu_rng_seed(&r, 202);
    int cases = 0;
    double worst = 0;
    for (size_t si = 0; si < N_SHAPES; si++) {
        o_shape s = k_shapes[si];
        size_t n = o_count(s), hw = o_plane(s);
        float *x = tu_floats(n), *y = tu_floats(n), *g = tu_floats(s.c), *b = tu_floats(s.c);
        double *ref = tu_doubles(n), *mag = tu_doubles(n);
        inorm_tensor *tx = tu_tensor(ctx, s, NULL), *ty = tu_tensor(ctx, s, NULL);
        inorm_tensor *tg = tu_tensor(ctx, chan_shape(s), NULL);
        inorm_tensor *tb = tu_tensor(ctx, chan_shape(s), NULL);
        for (uint32_t groups = 1; groups <= s.c; groups++) {
            if (s.c % groups)
                continue;
            for (int v = 0; v < 4; v++) {
                int affine = v & 1, unbiased = (v >> 1) & 1, inplace = (v + (int)groups) & 1;
                if (unbiased && (size_t)(s.c / groups) * hw < 2)
                    continue;
                gen_planes(&r, x, s);
                gen_affine(&r, g, b, s.c);
                tu_upload(ctx, tx, x, n);
                tu_upload(ctx, tg, g, s.c);
                tu_upload(ctx, tb, b, s.c);
                inorm_norm_params p = {.eps = v == 2 ? 1e-2f : 1e-5f, .unbiased = unbiased};
                inorm_tensor *out = inplace ? tx : ty;
                TU_OK(ctx, inorm_group_norm(ctx, tx, groups, affine ? tg : NULL,
                                            affine ? tb : NULL, &p, out));
                tu_download(ctx, out, y, n);
                oracle_group_norm(s, x, groups, affine ? g : NULL, affine ? b : NULL, p.eps,
                                  unbiased, ref, mag);
                double wr = tu_assert_close(
                    tu_fmt("group_norm [%s] groups=%u gamma/beta=%d unbiased=%d eps=%g inplace=%d",
                           tu_backend_name(be), groups, affine, unbiased, (double)p.eps, inplace),
                    s, y, ref, mag);
                worst = fmax(worst, wr);
                cases++;
            }
        }
        inorm_tensor_destroy(tx);
        inorm_tensor_destroy(ty);
        inorm_tensor_destroy(tg);
        inorm_tensor_destroy(tb);
        free(x), free(y), free(g), free(b), free(ref), free(mag);
    }
    summary("group_norm", be, cases, worst);
    tu_ctx_destroy(ctx);
}
END_TEST

/* -------------------------------------------------------------- adain -- */

START_TEST(adain_vs_oracle)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    tu_rng r;
    tu_rng_seed(&r, 303);
    int cases = 0;
    double worst = 0;
    static const float alphas[] = {1.0f, 0.3f, 0.0f, 1.5f};
    for (size_t si = 0; si < N_SHAPES; si++) {
        o_shape s = k_shapes[si];
        size_t n = o_count(s), hw = o_plane(s);
        float *x = tu_floats(n), *y = tu_floats(n);
        double *ref = tu_doubles(n), *mag = tu_doubles(n);
        inorm_tensor *tx = tu_tensor(ctx, s, NULL), *ty = tu_tensor(ctx, s, NULL);
        for (int v = 0; v < 12; v++) {
            /* style: 0 same shape, 1 N 1 with other H/W, 2 N with other H/W */
            int style_kind = v % 3;
            int unbiased = (v / 3) & 1;
            int inplace = (v / 6) & 1;
            float alpha = alphas[(v + (int)si) % 4];
            o_shape ss = s;
            if (style_kind >= 1) {
                ss.h = s.h % 7 + 3;
                ss.w = s.w % 11 + 2;
            }
            if (style_kind == 1)
                ss.n = 1;
            if (unbiased && (hw < 2 || o_plane(ss) < 2))
                continue;
            float *st = tu_floats(o_count(ss));
            gen_planes(&r, x, s);
            gen_planes(&r, st, ss);
            inorm_tensor *ts = tu_tensor(ctx, ss, st);
            tu_upload(ctx, tx, x, n);
            inorm_norm_params p = {.eps = 1e-5f, .unbiased = unbiased};
            inorm_tensor *out = inplace ? tx : ty;
            TU_OK(ctx, inorm_adain(ctx, tx, ts, alpha, &p, out));
            tu_download(ctx, out, y, n);
            oracle_adain(s, x, ss, st, alpha, p.eps, unbiased, ref, mag);
            double wr = tu_assert_close(
                tu_fmt("adain [%s] style %s alpha=%g unbiased=%d inplace=%d", tu_backend_name(be),
                       tu_shape_str(ss), (double)alpha, unbiased, inplace),
                s, y, ref, mag);
            worst = fmax(worst, wr);
            cases++;
            inorm_tensor_destroy(ts);
            free(st);
        }
        inorm_tensor_destroy(tx);
        inorm_tensor_destroy(ty);
        free(x), free(y), free(ref), free(mag);
    }
    summary("adain", be, cases, worst);
    tu_ctx_destroy(ctx);
}
END_TEST

/* ----------------------------------------------------- adain_modulate -- */

START_TEST(adain_modulate_vs_oracle)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    tu_rng r;
    tu_rng_seed(&r, 404);
    int cases = 0;
    double worst = 0;
    for (size_t si = 0; si < N_SHAPES; si++) {
        o_shape s = k_shapes[si], ps = nc_shape(s);
        size_t n = o_count(s), hw = o_plane(s), nc = o_count(ps);
        float *x = tu_floats(n), *y = tu_floats(n), *sc = tu_floats(nc), *bi = tu_floats(nc);
        double *ref = tu_doubles(n), *mag = tu_doubles(n);
        inorm_tensor *tx = tu_tensor(ctx, s, NULL), *ty = tu_tensor(ctx, s, NULL);
        inorm_tensor *tsc = tu_tensor(ctx, ps, NULL), *tbi = tu_tensor(ctx, ps, NULL);
        for (int v = 0; v < 8; v++) {
            int use_b = v & 1, unbiased = (v >> 1) & 1, inplace = (v >> 2) & 1;
            if (unbiased && hw < 2)
                continue;
            gen_planes(&r, x, s);
            gen_affine(&r, sc, bi, nc);
            tu_upload(ctx, tx, x, n);
            tu_upload(ctx, tsc, sc, nc);
            tu_upload(ctx, tbi, bi, nc);
            inorm_norm_params p = {.eps = 1e-5f, .unbiased = unbiased};
            inorm_tensor *out = inplace ? tx : ty;
            TU_OK(ctx, inorm_adain_modulate(ctx, tx, tsc, use_b ? tbi : NULL, &p, out));
            tu_download(ctx, out, y, n);
            oracle_adain_modulate(s, x, sc, use_b ? bi : NULL, p.eps, unbiased, ref, mag);
            double wr = tu_assert_close(tu_fmt("adain_modulate [%s] bias=%d unbiased=%d inplace=%d",
                                               tu_backend_name(be), use_b, unbiased, inplace),
                                        s, y, ref, mag);
            worst = fmax(worst, wr);
            cases++;
        }
        inorm_tensor_destroy(tx);
        inorm_tensor_destroy(ty);
        inorm_tensor_destroy(tsc);
        inorm_tensor_destroy(tbi);
        free(x), free(y), free(sc), free(bi), free(ref), free(mag);
    }
    summary("adain_modulate", be, cases, worst);
    tu_ctx_destroy(ctx);
}
END_TEST

/* -------------------------------------------------------------- stats -- */

START_TEST(stats_vs_oracle)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    tu_rng r;
    tu_rng_seed(&r, 505);
    int cases = 0;
    for (size_t si = 0; si < N_SHAPES; si++) {
        o_shape s = k_shapes[si], ps = nc_shape(s);
        size_t n = o_count(s), hw = o_plane(s), nc = o_count(ps);
        float *x = tu_floats(n), *m = tu_floats(nc), *sd = tu_floats(nc);
        double *rm = tu_doubles(nc), *rs = tu_doubles(nc), *rsig = tu_doubles(nc);
        inorm_tensor *tx = tu_tensor(ctx, s, NULL);
        inorm_tensor *tm = tu_tensor(ctx, ps, NULL), *ts = tu_tensor(ctx, ps, NULL);
        for (int v = 0; v < 6; v++) {
            int outputs = v % 3; /* 0 both, 1 mean only, 2 std only */
            int unbiased = v / 3;
            if (unbiased && hw < 2)
                continue;
            gen_planes(&r, x, s);
            tu_upload(ctx, tx, x, n);
            inorm_norm_params p = {.eps = outputs == 2 ? 0.0f : 1e-5f, .unbiased = unbiased};
            TU_OK(ctx, inorm_stats(ctx, tx, &p, outputs != 2 ? tm : NULL, outputs != 1 ? ts : NULL));
            if (outputs != 2)
                tu_download(ctx, tm, m, nc);
            if (outputs != 1)
                tu_download(ctx, ts, sd, nc);
            oracle_stats(s, x, p.eps, unbiased, rm, rs, rsig);
            tu_assert_stats(tu_fmt("stats [%s] outputs=%s unbiased=%d eps=%g", tu_backend_name(be),
                                   outputs == 0 ? "both" : outputs == 1 ? "mean" : "std", unbiased,
                                   (double)p.eps),
                            s, outputs != 2 ? m : NULL, outputs != 1 ? sd : NULL, rm, rs, rsig);
            cases++;
        }
        inorm_tensor_destroy(tx);
        inorm_tensor_destroy(tm);
        inorm_tensor_destroy(ts);
        free(x), free(m), free(sd), free(rm), free(rs), free(rsig);
    }
    printf("stats [%s]: %d cases within tolerance\n", tu_backend_name(be), cases);
    tu_ctx_destroy(ctx);
}
END_TEST

/* --------------------------------------------------------- large mean -- */

/* 1000 + N(0, 1): E[x^2] - E[x]^2 in fp32 loses the variance entirely here. */
START_TEST(large_mean)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    static const o_shape shapes[] = {{2, 3, 64, 64}, {1, 2, 97, 89}, {1, 4, 1, 513}, {1, 1, 256, 256}};
    tu_rng r;
    tu_rng_seed(&r, 606);
    double worst_var_rel = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        o_shape s = shapes[si], ps = nc_shape(s);
        size_t n = o_count(s), nc = o_count(ps);
        float *x = tu_floats(n), *y = tu_floats(n), *m = tu_floats(nc), *sd = tu_floats(nc);
        float *g = tu_floats(s.c), *b = tu_floats(s.c);
        double *ref = tu_doubles(n), *mag = tu_doubles(n);
        double *rm = tu_doubles(nc), *rs = tu_doubles(nc), *rsig = tu_doubles(nc);
        tu_fill_normal(&r, x, n, 1000.0, 1.0);
        gen_affine(&r, g, b, s.c);
        inorm_tensor *tx = tu_tensor(ctx, s, x), *ty = tu_tensor(ctx, s, NULL);
        inorm_tensor *tm = tu_tensor(ctx, ps, NULL), *ts = tu_tensor(ctx, ps, NULL);
        inorm_tensor *tg = tu_tensor(ctx, chan_shape(s), g), *tb = tu_tensor(ctx, chan_shape(s), b);

        /* Variance through inorm_stats with eps 0: var = std^2. */
        inorm_norm_params p0 = {.eps = 0.0f, .unbiased = 0};
        TU_OK(ctx, inorm_stats(ctx, tx, &p0, tm, ts));
        tu_download(ctx, tm, m, nc);
        tu_download(ctx, ts, sd, nc);
        oracle_stats(s, x, 0.0f, 0, rm, rs, rsig);
        for (size_t i = 0; i < nc; i++) {
            double var = (double)sd[i] * (double)sd[i], vref = rsig[i] * rsig[i];
            double rel = fabs(var - vref) / vref;
            worst_var_rel = fmax(worst_var_rel, rel);
            ck_assert_msg(rel <= 1e-3,
                          "large mean [%s] %s plane %zu: variance %.9g, oracle %.9g, relative "
                          "error %.3g > 1e-3: catastrophic cancellation (E[x^2]-E[x]^2?)",
                          tu_backend_name(be), tu_shape_str(s), i, var, vref, rel);
            ck_assert_msg(rel <= 1e-5,
                          "large mean [%s] %s plane %zu: variance %.9g, oracle %.9g, relative "
                          "error %.3g > 1e-5 (not catastrophic, but fp32 Chan/Welford does better)",
                          tu_backend_name(be), tu_shape_str(s), i, var, vref, rel);
        }
        tu_assert_stats(tu_fmt("large mean stats [%s]", tu_backend_name(be)), s, m, sd, rm, rs, rsig);

        /* instance norm with gamma/beta */
        TU_OK(ctx, inorm_instance_norm(ctx, tx, tg, tb, NULL, ty));
        tu_download(ctx, ty, y, n);
        oracle_instance_norm(s, x, g, b, 1e-5f, 0, ref, mag);
        tu_assert_close(tu_fmt("large mean instance_norm [%s]", tu_backend_name(be)), s, y, ref, mag);

        /* group norm, one group (layer norm over C, H, W) */
        TU_OK(ctx, inorm_group_norm(ctx, tx, 1, tg, tb, NULL, ty));
        tu_download(ctx, ty, y, n);
        oracle_group_norm(s, x, 1, g, b, 1e-5f, 0, ref, mag);
        tu_assert_close(tu_fmt("large mean group_norm groups=1 [%s]", tu_backend_name(be)), s, y,
                        ref, mag);

        /* adain with a large-mean style too (style = x shifted by -500 and mirrored) */
        float *st = tu_floats(n);
        for (size_t i = 0; i < n; i++)
            st[i] = x[n - 1 - i] - 500.0f;
        inorm_tensor *tst = tu_tensor(ctx, s, st);
        TU_OK(ctx, inorm_adain(ctx, tx, tst, 0.7f, NULL, ty));
        tu_download(ctx, ty, y, n);
        oracle_adain(s, x, s, st, 0.7f, 1e-5f, 0, ref, mag);
        tu_assert_close(tu_fmt("large mean adain alpha 0.7 [%s]", tu_backend_name(be)), s, y, ref,
                        mag);
        inorm_tensor_destroy(tst);
        free(st);

        inorm_tensor_destroy(tx);
        inorm_tensor_destroy(ty);
        inorm_tensor_destroy(tm);
        inorm_tensor_destroy(ts);
        inorm_tensor_destroy(tg);
        inorm_tensor_destroy(tb);
        free(x), free(y), free(m), free(sd), free(g), free(b), free(ref), free(mag), free(rm),
            free(rs), free(rsig);
    }
    printf("large mean [%s]: worst variance relative error %.3g\n", tu_backend_name(be),
           worst_var_rel);
    tu_ctx_destroy(ctx);
}
END_TEST

/* ----------------------------------------------------- constant planes -- */

/* Every element equals the plane's mean: the output is exactly beta (bias),
 * as inorm.h promises. "Nice" constants sum exactly in fp32; 0.1 and 1000.1
 * do not, so an implementation that computes sum / n instead of a
 * Chan/Welford mean may miss them (reported separately). */
START_TEST(constant_planes)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    static const o_shape shapes[] = {{2, 3, 4, 5}, {1, 2, 33, 17}, {3, 5, 1, 1}, {1, 1, 256, 256}};
    static const float nice[] = {7.25f, -3.5f, 0.0f, 65536.0f, 1.0f / 1024, -0.75f};
    static const float awkward[] = {0.1f, 1000.1f, -2.3f, 3.3333333f};
    tu_rng r;
    tu_rng_seed(&r, 707);
    for (int kind = 0; kind < 2; kind++) {
        const float *vals = kind == 0 ? nice : awkward;
        size_t nvals = kind == 0 ? sizeof nice / sizeof nice[0] : sizeof awkward / sizeof awkward[0];
        const char *kname = kind == 0 ? "exactly summable constants" : "constants like 0.1, 1000.1";
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            o_shape s = shapes[si], ps = nc_shape(s);
            size_t n = o_count(s), hw = o_plane(s), nc = o_count(ps);
            float *x = tu_floats(n), *y = tu_floats(n), *g = tu_floats(s.c), *b = tu_floats(s.c);
            float *sc = tu_floats(nc), *bi = tu_floats(nc), *m = tu_floats(nc), *sd = tu_floats(nc);
            /* plane p holds vals[p % nvals]; for group norm, each group of 1
             * channel is a plane already (groups == C), and groups == 1 only
             * when every plane of an n holds the same value */
            for (size_t p = 0; p < nc; p++)
                for (size_t i = 0; i < hw; i++)
                    x[p * hw + i] = vals[p % nvals];
            gen_affine(&r, g, b, s.c);
            gen_affine(&r, sc, bi, nc);
            inorm_tensor *tx = tu_tensor(ctx, s, x), *ty = tu_tensor(ctx, s, NULL);
            inorm_tensor *tg = tu_tensor(ctx, chan_shape(s), g), *tb = tu_tensor(ctx, chan_shape(s), b);
            inorm_tensor *tsc = tu_tensor(ctx, ps, sc), *tbi = tu_tensor(ctx, ps, bi);
            inorm_tensor *tm = tu_tensor(ctx, ps, NULL), *tsd = tu_tensor(ctx, ps, NULL);

            TU_OK(ctx, inorm_instance_norm(ctx, tx, tg, tb, NULL, ty));
            tu_download(ctx, ty, y, n);
            for (size_t i = 0; i < n; i++) {
                size_t c = (i / hw) % s.c;
                ck_assert_msg(y[i] == b[c],
                              "constant plane (%s) instance_norm [%s] %s: y[%zu] = %.9g (x = %.9g), "
                              "want exactly beta[%zu] = %.9g",
                              kname, tu_backend_name(be), tu_shape_str(s), i, (double)y[i],
                              (double)x[i], c, (double)b[c]);
            }

            TU_OK(ctx, inorm_group_norm(ctx, tx, s.c, tg, tb, NULL, ty));
            tu_download(ctx, ty, y, n);
            for (size_t i = 0; i < n; i++) {
                size_t c = (i / hw) % s.c;
                ck_assert_msg(y[i] == b[c],
                              "constant plane (%s) group_norm groups=C [%s] %s: y[%zu] = %.9g, "
                              "want exactly beta[%zu] = %.9g",
                              kname, tu_backend_name(be), tu_shape_str(s), i, (double)y[i], c,
                              (double)b[c]);
            }

            TU_OK(ctx, inorm_adain_modulate(ctx, tx, tsc, tbi, NULL, ty));
            tu_download(ctx, ty, y, n);
            for (size_t i = 0; i < n; i++)
                ck_assert_msg(y[i] == bi[i / hw],
                              "constant plane (%s) adain_modulate [%s] %s: y[%zu] = %.9g, want "
                              "exactly bias = %.9g",
                              kname, tu_backend_name(be), tu_shape_str(s), i, (double)y[i],
                              (double)bi[i / hw]);

            /* stats: the mean is the constant, std = sqrt(eps) */
            TU_OK(ctx, inorm_stats(ctx, tx, NULL, tm, tsd));
            tu_download(ctx, tm, m, nc);
            tu_download(ctx, tsd, sd, nc);
            for (size_t p = 0; p < nc; p++) {
                ck_assert_msg(m[p] == x[p * hw],
                              "constant plane (%s) stats [%s] %s: mean[%zu] = %.9g, want exactly "
                              "%.9g",
                              kname, tu_backend_name(be), tu_shape_str(s), p, (double)m[p],
                              (double)x[p * hw]);
                double want = sqrt((double)1e-5f);
                ck_assert_msg(fabs(sd[p] - want) <= TU_STD_REL_TOL * want,
                              "constant plane (%s) stats [%s] %s: std[%zu] = %.9g, want sqrt(eps) "
                              "= %.9g",
                              kname, tu_backend_name(be), tu_shape_str(s), p, (double)sd[p], want);
            }

            inorm_tensor_destroy(tx);
            inorm_tensor_destroy(ty);
            inorm_tensor_destroy(tg);
            inorm_tensor_destroy(tb);
            inorm_tensor_destroy(tsc);
            inorm_tensor_destroy(tbi);
            inorm_tensor_destroy(tm);
            inorm_tensor_destroy(tsd);
            free(x), free(y), free(g), free(b), free(sc), free(bi), free(m), free(sd);
        }
    }
    tu_ctx_destroy(ctx);
}
END_TEST

/* ------------------------------------------------------------ ordering -- */

/* Ops may return before the device has finished; reads, writes and later
 * ops must still observe program order. Nothing here calls finish. */
START_TEST(ordering)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    tu_rng r;
    tu_rng_seed(&r, 808);
    o_shape s = tu_shape(2, 3, 33, 31), ss = tu_shape(1, 3, 17, 9), ps = nc_shape(s);
    size_t n = o_count(s), nc = o_count(ps);
    float *a = tu_floats(n), *b = tu_floats(n), *y = tu_floats(n), *y2 = tu_floats(n);
    float *st = tu_floats(o_count(ss)), *m = tu_floats(nc), *sd = tu_floats(nc);
    double *ref = tu_doubles(n), *mag = tu_doubles(n);
    double *rm = tu_doubles(nc), *rs = tu_doubles(nc), *rsig = tu_doubles(nc);
    gen_planes(&r, a, s);
    gen_planes(&r, b, s);
    gen_planes(&r, st, ss);

    /* 1. a chain: instance_norm -> adain -> stats, read only at the end */
    inorm_tensor *tx = tu_tensor(ctx, s, a), *t1 = tu_tensor(ctx, s, NULL), *t2 = tu_tensor(ctx, s, NULL);
    inorm_tensor *tst = tu_tensor(ctx, ss, st);
    inorm_tensor *tm = tu_tensor(ctx, ps, NULL), *tsd = tu_tensor(ctx, ps, NULL);
    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, NULL, t1));
    TU_OK(ctx, inorm_adain(ctx, t1, tst, 1.0f, NULL, t2));
    TU_OK(ctx, inorm_stats(ctx, t2, NULL, tm, tsd));
    tu_download(ctx, tm, m, nc);
    tu_download(ctx, tsd, sd, nc);
    tu_download(ctx, t2, y2, n);
    tu_download(ctx, t1, y, n);
    oracle_instance_norm(s, a, NULL, NULL, 1e-5f, 0, ref, mag);
    tu_assert_close("ordering: chain step 1 instance_norm", s, y, ref, mag);
    oracle_adain(s, y, ss, st, 1.0f, 1e-5f, 0, ref, mag); /* on the library's own step-1 output */
    tu_assert_close("ordering: chain step 2 adain", s, y2, ref, mag);
    oracle_stats(s, y2, 1e-5f, 0, rm, rs, rsig);
    tu_assert_stats("ordering: chain step 3 stats", s, m, sd, rm, rs, rsig);

    /* 2. write after an op that reads the tensor: the op must see the old data */
    tu_upload(ctx, tx, a, n);
    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, NULL, t1));
    tu_upload(ctx, tx, b, n);
    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, NULL, t2));
    tu_download(ctx, t1, y, n);
    tu_download(ctx, t2, y2, n);
    oracle_instance_norm(s, a, NULL, NULL, 1e-5f, 0, ref, mag);
    tu_assert_close("ordering: op, then write of its input: op result", s, y, ref, mag);
    oracle_instance_norm(s, b, NULL, NULL, 1e-5f, 0, ref, mag);
    tu_assert_close("ordering: second op after the write", s, y2, ref, mag);

    /* 3. write of an op's output after the op: the write wins */
    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, NULL, t1));
    tu_upload(ctx, t1, a, n);
    tu_download(ctx, t1, y, n);
    ck_assert_msg(memcmp(y, a, n * sizeof(float)) == 0,
                  "ordering [%s]: a write after an op into the op's output was overwritten by the op",
                  tu_backend_name(be));

    /* 4. write-after-read then in-place ops back to back */
    tu_upload(ctx, tx, a, n);
    TU_OK(ctx, inorm_adain(ctx, tx, tst, 1.0f, NULL, t1));
    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, NULL, tx)); /* in place, after t1 read tx */
    tu_download(ctx, t1, y, n);
    oracle_adain(s, a, ss, st, 1.0f, 1e-5f, 0, ref, mag);
    tu_assert_close("ordering: adain before an in-place op on its input", s, y, ref, mag);
    tu_download(ctx, tx, y, n);
    oracle_instance_norm(s, a, NULL, NULL, 1e-5f, 0, ref, mag);
    tu_assert_close("ordering: in-place instance_norm after adain", s, y, ref, mag);

    /* 5. destroy an input right after the op that reads it */
    inorm_tensor *tmp = tu_tensor(ctx, s, b);
    TU_OK(ctx, inorm_instance_norm(ctx, tmp, NULL, NULL, NULL, t1));
    inorm_tensor_destroy(tmp);
    tu_download(ctx, t1, y, n);
    oracle_instance_norm(s, b, NULL, NULL, 1e-5f, 0, ref, mag);
    tu_assert_close("ordering: input destroyed right after the op", s, y, ref, mag);

    /* 6. finish with nothing pending, and twice */
    TU_OK(ctx, inorm_context_finish(ctx));
    TU_OK(ctx, inorm_context_finish(ctx));

    /* 7. destroy the context with work pending and tensors alive */
    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, NULL, t2));
    TU_OK(ctx, inorm_adain(ctx, t2, tst, 0.5f, NULL, t1));
    tu_ctx_destroy_pending(ctx);
    free(a), free(b), free(y), free(y2), free(st), free(m), free(sd), free(ref), free(mag),
        free(rm), free(rs), free(rsig);
}
END_TEST

/* Many tensors alive at once, and hundreds of ops recorded with no read in
 * between (command buffer / descriptor growth, per-tensor allocations). */
START_TEST(many_tensors_and_queued_ops)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    enum { NT = 5000, NOPS = 400 };
    inorm_tensor **ts = (inorm_tensor **)tu_malloc(NT * sizeof *ts);
    o_shape tiny = tu_shape(1, 1, 1, 4);
    for (int i = 0; i < NT; i++) {
        const float v[4] = {(float)i, (float)i + 1, (float)i + 3, (float)i - 2};
        ts[i] = tu_tensor(ctx, tiny, v);
    }
    /* each op normalizes tensor i into tensor NT-1-i: results are independent */
    for (int k = 0; k < NOPS; k++)
        TU_OK(ctx, inorm_instance_norm(ctx, ts[k], NULL, NULL, NULL, ts[NT - 1 - k]));
    /* the same output overwritten many times: the last op wins */
    tu_rng r;
    tu_rng_seed(&r, 1212);
    o_shape s = tu_shape(2, 3, 9, 11), ps = nc_shape(s);
    size_t n = o_count(s);
    float *x = tu_floats(n), *y = tu_floats(n), *sc = tu_floats(6), *bi = tu_floats(6);
    double *ref = tu_doubles(n), *mag = tu_doubles(n);
    gen_planes(&r, x, s);
    inorm_tensor *tx = tu_tensor(ctx, s, x), *ty = tu_tensor(ctx, s, NULL);
    inorm_tensor *tsc = tu_tensor(ctx, ps, NULL), *tbi = tu_tensor(ctx, ps, NULL);
    for (int k = 0; k < 50; k++) {
        gen_affine(&r, sc, bi, 6);
        tu_upload(ctx, tsc, sc, 6);
        tu_upload(ctx, tbi, bi, 6);
        TU_OK(ctx, inorm_adain_modulate(ctx, tx, tsc, tbi, NULL, ty));
    }
    tu_download(ctx, ty, y, n);
    oracle_adain_modulate(s, x, sc, bi, 1e-5f, 0, ref, mag);
    tu_assert_close(tu_fmt("adain_modulate [%s], the last of 50 into one output", tu_backend_name(be)),
                    s, y, ref, mag);
    for (int k = 0; k < NOPS; k++) {
        float got[4];
        double want[4], m4[4];
        float in[4] = {(float)k, (float)k + 1, (float)k + 3, (float)k - 2};
        tu_download(ctx, ts[NT - 1 - k], got, 4);
        oracle_instance_norm(tiny, in, NULL, NULL, 1e-5f, 0, want, m4);
        tu_assert_close(tu_fmt("instance_norm [%s], op %d of %d queued, %d tensors alive",
                               tu_backend_name(be), k, NOPS, NT),
                        tiny, got, want, m4);
    }
    for (int i = 0; i < NT; i += 2)
        inorm_tensor_destroy(ts[i]); /* the odd ones go with the context */
    free(ts), free(x), free(y), free(sc), free(bi), free(ref), free(mag);
    tu_ctx_destroy(ctx);
}
END_TEST

/* ------------------------------------------------------------- threads -- */

typedef struct thread_job {
    inorm_backend be;
    uint64_t seed;
    int skipped;
    char fail[768];
} thread_job;

static void *thread_main(void *arg)
{
    thread_job *job = (thread_job *)arg;
    inorm_context_desc d = INORM_CONTEXT_DESC_DEFAULT;
    d.backend = job->be;
    d.validation = job->be == INORM_BACKEND_VULKAN;
    inorm_context *ctx = NULL;
    char msg[512] = "";
    inorm_status st = inorm_context_create_ex(&d, &ctx, msg, sizeof msg);
    if (st == INORM_ERROR_NO_DEVICE && tu_env_flag("INORM_TEST_ALLOW_NO_VULKAN")) {
        job->skipped = 1;
        return NULL;
    }
    if (st != INORM_SUCCESS) {
        snprintf(job->fail, sizeof job->fail, "context creation: %s: %s", inorm_status_string(st), msg);
        return NULL;
    }
    tu_rng r;
    tu_rng_seed(&r, job->seed);
    o_shape s = tu_shape(2, 3, 33, 31);
    size_t n = o_count(s);
    float *x = (float *)malloc(n * sizeof(float)), *y = (float *)malloc(n * sizeof(float));
    double *ref = (double *)malloc(n * sizeof(double)), *mag = (double *)malloc(n * sizeof(double));
    inorm_tensor_desc td = tu_desc_s(s);
    inorm_tensor *tx = NULL, *ty = NULL;
    if (!x || !y || !ref || !mag) {
        snprintf(job->fail, sizeof job->fail, "out of memory");
        goto done;
    }
    if (inorm_tensor_create(ctx, &td, &tx) != INORM_SUCCESS ||
        inorm_tensor_create(ctx, &td, &ty) != INORM_SUCCESS) {
        snprintf(job->fail, sizeof job->fail, "tensor_create: %s", inorm_context_error(ctx));
        goto done;
    }
    for (int it = 0; it < 12 && !job->fail[0]; it++) {
        gen_planes(&r, x, s);
        if (inorm_tensor_write(tx, x, n * sizeof(float)) != INORM_SUCCESS ||
            inorm_instance_norm(ctx, tx, NULL, NULL, NULL, ty) != INORM_SUCCESS ||
            inorm_tensor_read(ty, y, n * sizeof(float)) != INORM_SUCCESS) {
            snprintf(job->fail, sizeof job->fail, "iteration %d: %s", it, inorm_context_error(ctx));
            break;
        }
        oracle_instance_norm(s, x, NULL, NULL, 1e-5f, 0, ref, mag);
        tu_cmp c = tu_compare(y, ref, mag, n, TU_K);
        if (c.bad)
            snprintf(job->fail, sizeof job->fail,
                     "iteration %d: %zu elements outside the tolerance, first %zu: got %.9g want %.9g",
                     it, c.bad, c.first_bad, c.got, c.want);
    }
    if (!job->fail[0] && inorm_context_validation_message_count(ctx) != 0)
        snprintf(job->fail, sizeof job->fail, "%u validation messages",
                 inorm_context_validation_message_count(ctx));
done:
    inorm_tensor_destroy(tx);
    inorm_tensor_destroy(ty);
    inorm_context_destroy(ctx);
    free(x), free(y), free(ref), free(mag);
    return NULL;
}

/* Two contexts used from two threads at once need no locking (inorm.h). */
START_TEST(threads_own_contexts)
{
    inorm_backend be = tu_backend(_i);
    enum { NT = 2 };
    pthread_t th[NT];
    thread_job jobs[NT];
    for (int t = 0; t < NT; t++) {
        memset(&jobs[t], 0, sizeof jobs[t]);
        jobs[t].be = be;
        jobs[t].seed = 900 + (uint64_t)t;
        ck_assert_int_eq(pthread_create(&th[t], NULL, thread_main, &jobs[t]), 0);
    }
    for (int t = 0; t < NT; t++)
        pthread_join(th[t], NULL);
    for (int t = 0; t < NT; t++) {
        if (jobs[t].skipped) {
            printf("SKIP threads [%s]: no Vulkan device\n", tu_backend_name(be));
            continue;
        }
        ck_assert_msg(jobs[t].fail[0] == '\0', "thread %d [%s], own context: %s", t,
                      tu_backend_name(be), jobs[t].fail);
    }
}
END_TEST

/* ------------------------------------------------- FLOAT16 and NHWC -- */

static void expect_unsupported_or_invalid(inorm_context *ctx, inorm_status st, const char *what)
{
    ck_assert_msg(st == INORM_ERROR_UNSUPPORTED || st == INORM_ERROR_INVALID_ARGUMENT,
                  "%s returned %s, expected UNSUPPORTED or INVALID_ARGUMENT", what,
                  inorm_status_string(st));
    const char *e = inorm_context_error(ctx);
    ck_assert_msg(e && e[0], "%s failed without error text", what);
}

/* FLOAT16 and NHWC tensors can be created, written and read back byte for
 * byte, every op accepts them (their numerics are checked in test_family.c),
 * and mixing them with FLOAT32 NCHW tensors is refused with a message. */
START_TEST(dtype_layout_formats)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    o_shape s = tu_shape(2, 3, 4, 5), ps = nc_shape(s);
    for (int kind = 0; kind < 2; kind++) {
        inorm_tensor_desc d = tu_desc_s(s);
        const char *kname = kind == 0 ? "FLOAT16" : "NHWC";
        size_t esize = 4;
        if (kind == 0) {
            d.dtype = INORM_FLOAT16;
            esize = 2;
        } else {
            d.layout = INORM_NHWC;
        }
        ck_assert_msg(inorm_tensor_desc_bytes(&d) == o_count(s) * esize,
                      "inorm_tensor_desc_bytes(%s %s) = %zu, want %zu", kname, tu_shape_str(s),
                      inorm_tensor_desc_bytes(&d), o_count(s) * esize);
        inorm_tensor *x = NULL, *y = NULL;
        TU_OK(ctx, inorm_tensor_create(ctx, &d, &x));
        TU_OK(ctx, inorm_tensor_create(ctx, &d, &y));
        inorm_tensor_desc got;
        TU_OK(ctx, inorm_tensor_get_desc(x, &got));
        ck_assert_msg(got.dtype == d.dtype && got.layout == d.layout && got.n == d.n &&
                          got.c == d.c && got.h == d.h && got.w == d.w,
                      "%s tensor_get_desc does not return the desc it was created with", kname);

        /* raw bytes round-trip */
        size_t bytes = o_count(s) * esize;
        unsigned char *src = (unsigned char *)tu_malloc(bytes), *dst = (unsigned char *)tu_malloc(bytes);
        for (size_t i = 0; i < bytes; i++)
            src[i] = (unsigned char)(i * 7 + 3);
        if (kind == 0)
            for (size_t i = 1; i < bytes; i += 2)
                src[i] = 0x3c; /* finite halves */
        TU_OK(ctx, inorm_tensor_write(x, src, bytes));
        TU_OK(ctx, inorm_tensor_read(x, dst, bytes));
        ck_assert_msg(memcmp(src, dst, bytes) == 0, "%s tensor: read does not return what was written",
                      kname);

        inorm_tensor *m = tu_tensor(ctx, ps, NULL), *sd = tu_tensor(ctx, ps, NULL);
        float *scale_values = tu_floats(o_count(ps));
        for (size_t i = 0; i < o_count(ps); i++)
            scale_values[i] = 1.0f + 0.25f * (float)i;
        inorm_tensor *sc = tu_tensor(ctx, ps, scale_values);
        free(scale_values);
        TU_OK(ctx, inorm_instance_norm(ctx, x, NULL, NULL, NULL, y));
        TU_OK(ctx, inorm_group_norm(ctx, x, 3, NULL, NULL, NULL, y));
        TU_OK(ctx, inorm_adain(ctx, x, x, 1.0f, NULL, y));
        TU_OK(ctx, inorm_adain_modulate(ctx, x, sc, NULL, NULL, y));
        TU_OK(ctx, inorm_stats(ctx, x, NULL, m, sd));
        TU_OK(ctx, inorm_instance_norm(ctx, x, NULL, NULL, NULL, x));

        /* mixing with FLOAT32 NCHW: refused one way or the other */
        inorm_tensor *x32 = tu_tensor(ctx, s, NULL);
        expect_unsupported_or_invalid(ctx, inorm_instance_norm(ctx, x32, NULL, NULL, NULL, y),
                                      tu_fmt("instance_norm FLOAT32 NCHW x into %s y", kname));
        expect_unsupported_or_invalid(ctx, inorm_adain(ctx, x32, x, 1.0f, NULL, x32),
                                      tu_fmt("adain with a %s style", kname));
        /* the context still works */
        float *buf = tu_floats(o_count(s));
        for (size_t i = 0; i < o_count(s); i++)
            buf[i] = (float)(i % 7);
        tu_upload(ctx, x32, buf, o_count(s));
        TU_OK(ctx, inorm_instance_norm(ctx, x32, NULL, NULL, NULL, x32));
        free(buf);
        free(src), free(dst);
        inorm_tensor_destroy(x32);
        inorm_tensor_destroy(m);
        inorm_tensor_destroy(sd);
        inorm_tensor_destroy(sc);
        inorm_tensor_destroy(x);
        inorm_tensor_destroy(y);
    }
    tu_ctx_destroy(ctx);
}
END_TEST

/* ------------------------------------------------- subgroup ops flag -- */

/* INORM_CONTEXT_DISABLE_SUBGROUP_OPS through the desc (not the environment). */
START_TEST(vulkan_subgroup_flag)
{
    inorm_context *ctx = tu_ctx_create_flags(INORM_BACKEND_VULKAN, INORM_CONTEXT_DISABLE_SUBGROUP_OPS);
    if (!ctx)
        return;
    inorm_device_info info;
    TU_OK(ctx, inorm_context_info(ctx, &info));
    ck_assert_int_eq(info.subgroup_ops_used, 0);
    tu_rng r;
    tu_rng_seed(&r, 1001);
    static const o_shape shapes[] = {{2, 3, 7, 5}, {1, 2, 97, 89}, {1, 1, 300, 1}, {2, 2, 128, 129}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        o_shape s = shapes[si], ps = nc_shape(s);
        size_t n = o_count(s), nc = o_count(ps);
        float *x = tu_floats(n), *y = tu_floats(n), *m = tu_floats(nc), *sd = tu_floats(nc);
        double *ref = tu_doubles(n), *mag = tu_doubles(n);
        double *rm = tu_doubles(nc), *rs = tu_doubles(nc), *rsig = tu_doubles(nc);
        gen_planes(&r, x, s);
        inorm_tensor *tx = tu_tensor(ctx, s, x), *ty = tu_tensor(ctx, s, NULL);
        inorm_tensor *tm = tu_tensor(ctx, ps, NULL), *tsd = tu_tensor(ctx, ps, NULL);
        TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, NULL, ty));
        tu_download(ctx, ty, y, n);
        oracle_instance_norm(s, x, NULL, NULL, 1e-5f, 0, ref, mag);
        tu_assert_close("instance_norm [vulkan, DISABLE_SUBGROUP_OPS flag]", s, y, ref, mag);
        TU_OK(ctx, inorm_group_norm(ctx, tx, 1, NULL, NULL, NULL, ty));
        tu_download(ctx, ty, y, n);
        oracle_group_norm(s, x, 1, NULL, NULL, 1e-5f, 0, ref, mag);
        tu_assert_close("group_norm groups=1 [vulkan, DISABLE_SUBGROUP_OPS flag]", s, y, ref, mag);
        TU_OK(ctx, inorm_stats(ctx, tx, NULL, tm, tsd));
        tu_download(ctx, tm, m, nc);
        tu_download(ctx, tsd, sd, nc);
        oracle_stats(s, x, 1e-5f, 0, rm, rs, rsig);
        tu_assert_stats("stats [vulkan, DISABLE_SUBGROUP_OPS flag]", s, m, sd, rm, rs, rsig);
        inorm_tensor_destroy(tx);
        inorm_tensor_destroy(ty);
        inorm_tensor_destroy(tm);
        inorm_tensor_destroy(tsd);
        free(x), free(y), free(m), free(sd), free(ref), free(mag), free(rm), free(rs), free(rsig);
    }
    tu_ctx_destroy(ctx);
}
END_TEST

/* ----------------------------------------------------- tolerance bites -- */

/* The comparison must reject the errors real bugs make; otherwise a passing
 * suite means nothing. No library call here. */
START_TEST(tolerance_bites)
{
    tu_rng r;
    tu_rng_seed(&r, 1111);
    o_shape s = tu_shape(2, 3, 17, 19);
    size_t n = o_count(s), hw = o_plane(s);
    float *x = tu_floats(n), *got = tu_floats(n), *g = tu_floats(s.c), *b = tu_floats(s.c);
    double *ref = tu_doubles(n), *mag = tu_doubles(n);
    gen_planes(&r, x, s);
    gen_affine(&r, g, b, s.c);
    oracle_instance_norm(s, x, g, b, 1e-5f, 0, ref, mag);

    /* the oracle rounded to float passes, with a wide margin */
    for (size_t i = 0; i < n; i++)
        got[i] = (float)ref[i];
    tu_cmp c = tu_compare(got, ref, mag, n, TU_K);
    ck_assert_msg(c.bad == 0 && c.worst_ratio < 0.05,
                  "the rounded oracle itself: %zu bad, worst ratio %.3g", c.bad, c.worst_ratio);

    /* one element off by 1e-3 relative */
    size_t k = 0;
    while (fabs(ref[k]) < 0.5)
        k++;
    got[k] = (float)(ref[k] * (1.0 + 1e-3));
    c = tu_compare(got, ref, mag, n, TU_K);
    ck_assert_msg(c.bad == 1 && c.first_bad == k,
                  "one element off by 1e-3 relative: %zu bad (want 1 at %zu)", c.bad, k);
    got[k] = (float)ref[k];

    /* the mean shifted by 1e-3 sigma in every plane */
    for (size_t p = 0; p < (size_t)s.n * s.c; p++) {
        double mean, var;
        oracle_moments(x + p * hw, hw, 0, &mean, &var);
        double a = g[p % s.c] / sqrt(var + 1e-5f);
        double shifted = mean + 1e-3 * sqrt(var);
        for (size_t i = 0; i < hw; i++)
            got[p * hw + i] = (float)(a * (x[p * hw + i] - shifted) + b[p % s.c]);
    }
    c = tu_compare(got, ref, mag, n, TU_K);
    ck_assert_msg(c.bad == n, "mean shifted by 1e-3 sigma: only %zu of %zu elements rejected",
                  c.bad, n);

    /* a lost chunk: 64 elements left at zero */
    for (size_t i = 0; i < n; i++)
        got[i] = (float)ref[i];
    for (size_t i = 200; i < 264; i++)
        got[i] = 0.0f;
    c = tu_compare(got, ref, mag, n, TU_K);
    ck_assert_msg(c.bad >= 60, "64 zeroed elements: only %zu rejected", c.bad);

    /* two planes swapped */
    for (size_t i = 0; i < n; i++)
        got[i] = (float)ref[i];
    for (size_t i = 0; i < hw; i++) {
        got[i] = (float)ref[hw + i];
        got[hw + i] = (float)ref[i];
    }
    c = tu_compare(got, ref, mag, n, TU_K);
    ck_assert_msg(c.bad >= hw, "two planes swapped: only %zu of %zu rejected", c.bad, 2 * hw);

    /* a NaN where a number is due, and a number where NaN is due */
    for (size_t i = 0; i < n; i++)
        got[i] = (float)ref[i];
    got[5] = NAN;
    c = tu_compare(got, ref, mag, n, TU_K);
    ck_assert_msg(c.bad == 1, "a NaN output was accepted");
    double saved = ref[6];
    ref[6] = NAN;
    got[5] = (float)ref[5];
    c = tu_compare(got, ref, mag, n, TU_K);
    ck_assert_msg(c.bad == 1, "a finite output where NaN is due was accepted");
    ref[6] = saved;

    /* the classic bug: E[x^2] - E[x]^2 in fp32 on 1000 + N(0, 1) */
    tu_fill_normal(&r, x, n, 1000.0, 1.0);
    oracle_instance_norm(s, x, NULL, NULL, 1e-5f, 0, ref, mag);
    size_t rejected_planes = 0;
    for (size_t p = 0; p < (size_t)s.n * s.c; p++) {
        float sum = 0, sum2 = 0;
        for (size_t i = 0; i < hw; i++) {
            sum += x[p * hw + i];
            sum2 += x[p * hw + i] * x[p * hw + i];
        }
        float mean = sum / (float)hw, var = sum2 / (float)hw - mean * mean;
        if (var < 0)
            var = 0;
        float rstd = 1.0f / sqrtf(var + 1e-5f);
        for (size_t i = 0; i < hw; i++)
            got[p * hw + i] = (x[p * hw + i] - mean) * rstd;
        tu_cmp cp = tu_compare(got + p * hw, ref + p * hw, mag + p * hw, hw, TU_K);
        rejected_planes += cp.bad > 0;
    }
    ck_assert_msg(rejected_planes == (size_t)s.n * s.c,
                  "naive fp32 E[x^2]-E[x]^2 on 1000+N(0,1): only %zu of %u planes rejected",
                  rejected_planes, s.n * s.c);

    /* stats: mean off by 1e-4 sigma, std off by 3e-5 relative */
    o_shape ps = nc_shape(s);
    size_t nc = o_count(ps);
    gen_planes(&r, x, s);
    double *rm = tu_doubles(nc), *rs = tu_doubles(nc), *rsig = tu_doubles(nc);
    float *m = tu_floats(nc), *sd = tu_floats(nc);
    oracle_stats(s, x, 1e-5f, 0, rm, rs, rsig);
    char msg[512];
    for (size_t i = 0; i < nc; i++) {
        m[i] = (float)rm[i];
        sd[i] = (float)rs[i];
    }
    ck_assert_msg(tu_check_stats(s, m, sd, rm, rs, rsig, msg, sizeof msg) == 0,
                  "rounded oracle stats rejected: %s", msg);
    m[1] = (float)(rm[1] + 1e-4 * rsig[1]);
    ck_assert_msg(tu_check_stats(s, m, sd, rm, rs, rsig, msg, sizeof msg) == 1,
                  "a mean off by 1e-4 sigma was accepted");
    m[1] = (float)rm[1];
    sd[2] = (float)(rs[2] * (1 + 3e-5));
    ck_assert_msg(tu_check_stats(s, m, sd, rm, rs, rsig, msg, sizeof msg) == 1,
                  "a std off by 3e-5 relative was accepted");

    free(x), free(got), free(g), free(b), free(ref), free(mag), free(rm), free(rs), free(rsig),
        free(m), free(sd);
}
END_TEST

int main(void)
{
    tu_init();
    Suite *s = suite_create("ops");

    struct {
        const char *name;
        const TTest *test;
        int subset;
    } cases[] = {
        {"instance_norm", instance_norm_vs_oracle, 1},
        {"group_norm", group_norm_vs_oracle, 1},
        {"adain", adain_vs_oracle, 1},
        {"adain_modulate", adain_modulate_vs_oracle, 1},
        {"stats", stats_vs_oracle, 1},
        {"large_mean", large_mean, 1},
        {"constant_planes", constant_planes, 0},
        {"ordering", ordering, 1},
        {"queue", many_tensors_and_queued_ops, 0},
        {"threads", threads_own_contexts, 0},
        {"formats", dtype_layout_formats, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tu_add_backend_case(s, cases[i].name, cases[i].test, 600);
        if (cases[i].subset)
            tcase_set_tags(tc, "subset");
    }

    int have_vulkan = 0;
    for (int i = 0; i < tu_backend_count(); i++)
        have_vulkan |= tu_backend(i) == INORM_BACKEND_VULKAN;
    if (have_vulkan) {
        TCase *tc = tcase_create("subgroup_flag");
        tcase_set_timeout(tc, 600);
        tcase_add_test(tc, vulkan_subgroup_flag);
        suite_add_tcase(s, tc);
    }

    TCase *tb = tcase_create("tolerance_bites");
    tcase_set_timeout(tb, 120);
    tcase_add_test(tb, tolerance_bites);
    suite_add_tcase(s, tb);
    return tu_run(s);
}
