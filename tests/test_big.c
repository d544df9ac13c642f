/*
 * Big shapes, on every selected backend, against the oracle:
 * - big planes (2048x2048, 4096x4096, and a 1-group group norm over 8M
 *   values): lavapipe silently ends the loops of an invocation after 65,535
 *   iterations in total, so a kernel whose per-invocation trip count grows
 *   with the plane gives wrong results here;
 * - many planes (N*C = 70,000 > maxComputeWorkGroupCount 65,535): a kernel
 *   that dispatches one workgroup per plane in one dimension fails here.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "test_util.h"

static o_shape nc_shape(o_shape s) { return tu_shape(s.n, s.c, 1, 1); }
static o_shape chan_shape(o_shape s) { return tu_shape(1, s.c, 1, 1); }

static void gen(tu_rng *r, float *x, size_t n, double mean, double spread)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(mean + spread * tu_rng_uniform(r, -1.0, 1.0));
}

/* Planes of different offsets, so that a plane mixed up with its neighbour fails. */
static void gen_planes(tu_rng *r, float *x, o_shape s)
{
    size_t hw = o_plane(s);
    for (size_t p = 0; p < (size_t)s.n * s.c; p++)
        gen(r, x + p * hw, hw, tu_rng_uniform(r, -4, 4), tu_rng_uniform(r, 0.5, 2));
}

static void gen_affine(tu_rng *r, float *g, float *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        g[i] = (float)tu_rng_uniform(r, 0.5, 2.0);
        b[i] = (float)tu_rng_uniform(r, -2.0, 2.0);
    }
}

/* instance_norm (gamma/beta) and stats of one shape; data mean `mean`. */
static void big_instance_norm(inorm_backend be, o_shape s, double mean, uint64_t seed)
{
    TU_CTX(ctx, be);
    tu_rng r;
    tu_rng_seed(&r, seed);
    o_shape ps = nc_shape(s);
    size_t n = o_count(s), nc = o_count(ps);
    float *x = tu_floats(n), *y = tu_floats(n), *g = tu_floats(s.c), *b = tu_floats(s.c);
    float *m = tu_floats(nc), *sd = tu_floats(nc);
    double *ref = tu_doubles(n), *mag = tu_doubles(n);
    double *rm = tu_doubles(nc), *rs = tu_doubles(nc), *rsig = tu_doubles(nc);
    if (mean != 0.0)
        for (size_t i = 0; i < n; i++)
            x[i] = (float)(mean + tu_rng_normal(&r));
    else
        gen_planes(&r, x, s);
    gen_affine(&r, g, b, s.c);

    inorm_tensor *tx = tu_tensor(ctx, s, x), *ty = tu_tensor(ctx, s, NULL);
    inorm_tensor *tg = tu_tensor(ctx, chan_shape(s), g), *tb = tu_tensor(ctx, chan_shape(s), b);
    inorm_tensor *tm = tu_tensor(ctx, ps, NULL), *tsd = tu_tensor(ctx, ps, NULL);

    TU_OK(ctx, inorm_instance_norm(ctx, tx, tg, tb, NULL, ty));
    tu_download(ctx, ty, y, n);
    oracle_instance_norm(s, x, g, b, 1e-5f, 0, ref, mag);
    double w = tu_assert_close(tu_fmt("big instance_norm [%s] mean %g", tu_backend_name(be), mean),
                               s, y, ref, mag);

    TU_OK(ctx, inorm_stats(ctx, tx, NULL, tm, tsd));
    tu_download(ctx, tm, m, nc);
    tu_download(ctx, tsd, sd, nc);
    oracle_stats(s, x, 1e-5f, 0, rm, rs, rsig);
    tu_assert_stats(tu_fmt("big stats [%s] mean %g", tu_backend_name(be), mean), s, m, sd, rm, rs,
                    rsig);

    /* in place too: the same kernel reading and writing one buffer */
    TU_OK(ctx, inorm_instance_norm(ctx, tx, tg, tb, NULL, tx));
    tu_download(ctx, tx, y, n);
    tu_assert_close(tu_fmt("big instance_norm in place [%s] mean %g", tu_backend_name(be), mean), s,
                    y, ref, mag);

    printf("big instance_norm + stats [%s] %s mean %g: ok, worst |err|/bound %.4f\n",
           tu_backend_name(be), tu_shape_str(s), mean, w);
    tu_ctx_destroy(ctx);
    free(x), free(y), free(g), free(b), free(m), free(sd), free(ref), free(mag), free(rm), free(rs),
        free(rsig);
}

START_TEST(plane_2048x2048)
{
    big_instance_norm(tu_backend(_i), tu_shape(1, 1, 2048, 2048), 0.0, 1);
}
END_TEST

START_TEST(plane_2048x2048_large_mean)
{
    big_instance_norm(tu_backend(_i), tu_shape(1, 1, 2048, 2048), 1000.0, 2);
}
END_TEST

START_TEST(plane_4096x4096)
{
    big_instance_norm(tu_backend(_i), tu_shape(1, 1, 4096, 4096), 0.0, 3);
}
END_TEST

/* One group of 8M values (layer norm over C, H, W), and 2 groups per n. */
START_TEST(group_norm_big_groups)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    tu_rng r;
    tu_rng_seed(&r, 4);
    static const struct {
        o_shape s;
        uint32_t groups;
    } cases[] = {{{1, 4, 2048, 1024}, 1}, {{2, 4, 1024, 1024}, 2}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        o_shape s = cases[k].s;
        size_t n = o_count(s);
        float *x = tu_floats(n), *y = tu_floats(n), *g = tu_floats(s.c), *b = tu_floats(s.c);
        double *ref = tu_doubles(n), *mag = tu_doubles(n);
        gen_planes(&r, x, s);
        gen_affine(&r, g, b, s.c);
        inorm_tensor *tx = tu_tensor(ctx, s, x), *ty = tu_tensor(ctx, s, NULL);
        inorm_tensor *tg = tu_tensor(ctx, chan_shape(s), g), *tb = tu_tensor(ctx, chan_shape(s), b);
        TU_OK(ctx, inorm_group_norm(ctx, tx, cases[k].groups, tg, tb, NULL, ty));
        tu_download(ctx, ty, y, n);
        oracle_group_norm(s, x, cases[k].groups, g, b, 1e-5f, 0, ref, mag);
        tu_assert_close(tu_fmt("big group_norm groups=%u [%s]", cases[k].groups, tu_backend_name(be)),
                        s, y, ref, mag);
        printf("big group_norm [%s] %s groups %u: ok\n", tu_backend_name(be), tu_shape_str(s),
               cases[k].groups);
        inorm_tensor_destroy(tx);
        inorm_tensor_destroy(ty);
        inorm_tensor_destroy(tg);
        inorm_tensor_destroy(tb);
        free(x), free(y), free(g), free(b), free(ref), free(mag);
    }
    tu_ctx_destroy(ctx);
}
END_TEST

/* AdaIN with a 2048x2048 content plane and a 4096x4096 style plane. */
START_TEST(adain_big)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    tu_rng r;
    tu_rng_seed(&r, 5);
    o_shape s = tu_shape(1, 1, 2048, 2048), ss = tu_shape(1, 1, 4096, 4096);
    size_t n = o_count(s), ns = o_count(ss);
    float *x = tu_floats(n), *y = tu_floats(n), *st = tu_floats(ns);
    double *ref = tu_doubles(n), *mag = tu_doubles(n);
    gen(&r, x, n, 1.5, 2.0);
    gen(&r, st, ns, -3.0, 0.5);
    inorm_tensor *tx = tu_tensor(ctx, s, x), *ty = tu_tensor(ctx, s, NULL), *ts = tu_tensor(ctx, ss, st);
    TU_OK(ctx, inorm_adain(ctx, tx, ts, 0.8f, NULL, ty));
    tu_download(ctx, ty, y, n);
    oracle_adain(s, x, ss, st, 0.8f, 1e-5f, 0, ref, mag);
    tu_assert_close(tu_fmt("big adain [%s] style %s", tu_backend_name(be), tu_shape_str(ss)), s, y,
                    ref, mag);
    printf("big adain [%s] %s style %s: ok\n", tu_backend_name(be), tu_shape_str(s), tu_shape_str(ss));
    tu_ctx_destroy(ctx);
    free(x), free(y), free(st), free(ref), free(mag);
}
END_TEST

/* 70,000 planes: every op. */
static void many_planes(inorm_backend be, o_shape s, uint64_t seed)
{
    TU_CTX(ctx, be);
    tu_rng r;
    tu_rng_seed(&r, seed);
    o_shape ps = nc_shape(s), ss = tu_shape(1, s.c, 2, 5);
    size_t n = o_count(s), nc = o_count(ps);
    float *x = tu_floats(n), *y = tu_floats(n), *g = tu_floats(s.c), *b = tu_floats(s.c);
    float *sc = tu_floats(nc), *bi = tu_floats(nc), *m = tu_floats(nc), *sd = tu_floats(nc);
    float *st = tu_floats(o_count(ss));
    double *ref = tu_doubles(n), *mag = tu_doubles(n);
    double *rm = tu_doubles(nc), *rs = tu_doubles(nc), *rsig = tu_doubles(nc);
    gen_planes(&r, x, s);
    gen_planes(&r, st, ss);
    gen_affine(&r, g, b, s.c);
    gen_affine(&r, sc, bi, nc);
    inorm_tensor *tx = tu_tensor(ctx, s, x), *ty = tu_tensor(ctx, s, NULL);
    inorm_tensor *tg = tu_tensor(ctx, chan_shape(s), g), *tb = tu_tensor(ctx, chan_shape(s), b);
    inorm_tensor *tsc = tu_tensor(ctx, ps, sc), *tbi = tu_tensor(ctx, ps, bi);
    inorm_tensor *tm = tu_tensor(ctx, ps, NULL), *tsd = tu_tensor(ctx, ps, NULL);
    inorm_tensor *tst = tu_tensor(ctx, ss, st);
    const char *bn = tu_backend_name(be);

    TU_OK(ctx, inorm_instance_norm(ctx, tx, tg, tb, NULL, ty));
    tu_download(ctx, ty, y, n);
    oracle_instance_norm(s, x, g, b, 1e-5f, 0, ref, mag);
    tu_assert_close(tu_fmt("many planes instance_norm [%s]", bn), s, y, ref, mag);

    inorm_norm_params pu = {.eps = 1e-5f, .unbiased = 1};
    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, &pu, ty));
    tu_download(ctx, ty, y, n);
    oracle_instance_norm(s, x, NULL, NULL, 1e-5f, 1, ref, mag);
    tu_assert_close(tu_fmt("many planes instance_norm unbiased [%s]", bn), s, y, ref, mag);

    TU_OK(ctx, inorm_group_norm(ctx, tx, s.c, tg, tb, NULL, ty));
    tu_download(ctx, ty, y, n);
    oracle_group_norm(s, x, s.c, g, b, 1e-5f, 0, ref, mag);
    tu_assert_close(tu_fmt("many planes group_norm groups=C [%s]", bn), s, y, ref, mag);

    TU_OK(ctx, inorm_adain(ctx, tx, tst, 1.0f, NULL, ty));
    tu_download(ctx, ty, y, n);
    oracle_adain(s, x, ss, st, 1.0f, 1e-5f, 0, ref, mag);
    tu_assert_close(tu_fmt("many planes adain, style %s [%s]", tu_shape_str(ss), bn), s, y, ref, mag);

    if (s.n > 1) {
        /* style with N == content N: also 70,000 style planes */
        inorm_tensor *tst2 = tu_tensor(ctx, s, NULL);
        float *st2 = tu_floats(n);
        gen_planes(&r, st2, s);
        tu_upload(ctx, tst2, st2, n);
        TU_OK(ctx, inorm_adain(ctx, tx, tst2, 0.3f, NULL, ty));
        tu_download(ctx, ty, y, n);
        oracle_adain(s, x, s, st2, 0.3f, 1e-5f, 0, ref, mag);
        tu_assert_close(tu_fmt("many planes adain, style N=%u [%s]", s.n, bn), s, y, ref, mag);
        inorm_tensor_destroy(tst2);
        free(st2);
    }

    TU_OK(ctx, inorm_adain_modulate(ctx, tx, tsc, tbi, NULL, ty));
    tu_download(ctx, ty, y, n);
    oracle_adain_modulate(s, x, sc, bi, 1e-5f, 0, ref, mag);
    tu_assert_close(tu_fmt("many planes adain_modulate [%s]", bn), s, y, ref, mag);

    TU_OK(ctx, inorm_stats(ctx, tx, NULL, tm, tsd));
    tu_download(ctx, tm, m, nc);
    tu_download(ctx, tsd, sd, nc);
    oracle_stats(s, x, 1e-5f, 0, rm, rs, rsig);
    tu_assert_stats(tu_fmt("many planes stats [%s]", bn), s, m, sd, rm, rs, rsig);

    printf("many planes [%s] %s (%zu planes): all ops ok\n", bn, tu_shape_str(s), nc);
    tu_ctx_destroy(ctx);
    free(x), free(y), free(g), free(b), free(sc), free(bi), free(m), free(sd), free(st), free(ref),
        free(mag), free(rm), free(rs), free(rsig);
}

START_TEST(many_planes_7x10000x2x3) { many_planes(tu_backend(_i), tu_shape(7, 10000, 2, 3), 6); }
END_TEST

START_TEST(many_planes_70000x1x3x3) { many_planes(tu_backend(_i), tu_shape(70000, 1, 3, 3), 7); }
END_TEST

/* 70,000 groups of 2 channels. */
START_TEST(many_groups)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    tu_rng r;
    tu_rng_seed(&r, 8);
    o_shape s = tu_shape(2, 70000, 1, 2);
    uint32_t groups = 35000; /* 2 channels per group, 70,000 (n, group) pairs */
    size_t n = o_count(s);
    float *x = tu_floats(n), *y = tu_floats(n), *g = tu_floats(s.c), *b = tu_floats(s.c);
    double *ref = tu_doubles(n), *mag = tu_doubles(n);
    gen_planes(&r, x, s);
    gen_affine(&r, g, b, s.c);
    inorm_tensor *tx = tu_tensor(ctx, s, x), *ty = tu_tensor(ctx, s, NULL);
    inorm_tensor *tg = tu_tensor(ctx, chan_shape(s), g), *tb = tu_tensor(ctx, chan_shape(s), b);
    TU_OK(ctx, inorm_group_norm(ctx, tx, groups, tg, tb, NULL, ty));
    tu_download(ctx, ty, y, n);
    oracle_group_norm(s, x, groups, g, b, 1e-5f, 0, ref, mag);
    tu_assert_close(tu_fmt("many groups group_norm groups=%u [%s]", groups, tu_backend_name(be)), s,
                    y, ref, mag);
    tu_ctx_destroy(ctx);
    free(x), free(y), free(g), free(b), free(ref), free(mag);
}
END_TEST

int main(void)
{
    tu_init();
    Suite *s = suite_create("big");
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"plane_2048x2048", plane_2048x2048},
        {"plane_2048x2048_large_mean", plane_2048x2048_large_mean},
        {"plane_4096x4096", plane_4096x4096},
        {"group_norm_big_groups", group_norm_big_groups},
        {"adain_big", adain_big},
        {"many_planes_7x10000x2x3", many_planes_7x10000x2x3},
        {"many_planes_70000x1x3x3", many_planes_70000x1x3x3},
        {"many_groups", many_groups},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        tu_add_backend_case(s, cases[i].name, cases[i].test, 900);
    return tu_run(s);
}
