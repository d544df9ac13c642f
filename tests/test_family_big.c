/*
 * The family's slow cases (suite "slow"), on every selected backend:
 * - FLOAT16 planes of 16M elements (1 x 1 x 4096 x 4096: 32 MiB, within
 *   lavapipe's 128 MiB maxStorageBufferRange), NCHW with values near 60000
 *   (fp32 statistics over 16M values near the top of fp16's range) and NHWC
 *   with a mask; 1 x 64 x 512 x 512 NHWC (16M elements in 32-channel
 *   tiles over 262,144-pixel planes); and layer norm of 1 x 4 x 2048 x 2048
 *   NHWC near 2000 (a segment of 16M values whose statistics pass, on CPU
 *   devices, is cut into over 64 chunks by lavapipe's loop limit: partials
 *   per tile, merged by the apply);
 * - one context that meets more distinct kernel variants (plane sizes x
 *   activations x dtypes) than a small fixed table holds: a long-lived
 *   context in an application that sees many image sizes must keep working.
 * Tolerances as in test_family.c (test_util.h).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

static o_shape chan_shape(o_shape s) { return tu_shape(1, s.c, 1, 1); }
static o_shape nc_shape(o_shape s) { return tu_shape(s.n, s.c, 1, 1); }

static void gen_affine(tu_rng *r, float *g, float *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        g[i] = (float)tu_rng_uniform(r, 0.5, 2.0);
        b[i] = (float)tu_rng_uniform(r, -2.0, 2.0);
    }
}

/* One big FLOAT16 case: instance norm (gamma, beta, an activation, optionally
 * a 1 x 1 x H x W mask) and stats, against the oracle. */
static void big_half(inorm_backend be, o_shape s, inorm_layout layout, double center, double spread, int masked,
                     uint32_t groups, inorm_activation act, uint64_t seed)
{
    TU_CTX(ctx, be);
    tu_rng r;
    tu_rng_seed(&r, seed);
    const int nhwc = layout == INORM_NHWC;
    const size_t n = o_count(s), hw = o_plane(s), nc = (size_t)s.n * s.c;
    float *x = tu_floats(n), *y = tu_floats(n), *g = tu_floats(s.c), *b = tu_floats(s.c);
    double *ref = tu_doubles(n), *mag = tu_doubles(n);
    float *mask = masked ? tu_floats(hw) : NULL;
    for (uint32_t c = 0; c < s.c; c++) {
        double off = center + tu_rng_uniform(&r, -0.5, 0.5) * spread;
        for (uint32_t nn = 0; nn < s.n; nn++)
            for (size_t p = 0; p < hw; p++)
                x[o_index(s, nhwc, nn, c, p)] = (float)(off + spread * tu_rng_uniform(&r, -1.0, 1.0));
    }
    tu_round_to_half(x, n);
    gen_affine(&r, g, b, s.c);
    if (mask) /* a soft disc: weight 1 inside, 0 outside, a ramp between */
        for (size_t p = 0; p < hw; p++) {
            double dy = (double)(p / s.w) / s.h - 0.5, dx = (double)(p % s.w) / s.w - 0.5;
            double d = sqrt(dx * dx + dy * dy);
            mask[p] = d < 0.3 ? 1.0f : d > 0.4 ? 0.0f : (float)((0.4 - d) / 0.1);
        }

    inorm_tensor *tx = tu_tensor_fmt(ctx, s, INORM_FLOAT16, layout, x);
    inorm_tensor *ty = tu_tensor_fmt(ctx, s, INORM_FLOAT16, layout, NULL);
    inorm_tensor *tg = tu_tensor(ctx, chan_shape(s), g), *tb = tu_tensor(ctx, chan_shape(s), b);
    inorm_tensor *tm = mask ? tu_tensor(ctx, tu_shape(1, 1, s.h, s.w), mask) : NULL;
    inorm_norm_params p = {.eps = 1e-5f, .activation = act, .activation_slope = 0.2f, .mask = tm};
    o_params op = {.eps = 1e-5f, .nhwc = nhwc, .activation = (int)act, .slope = 0.2f, .mask = mask, .mask_n = 1};
    const char *what = tu_fmt("%s [%s] FLOAT16 %s %s values %g +- %g%s act=%d",
                              groups == s.c ? "instance_norm" : "group_norm", tu_backend_name(be),
                              tu_layout_name(layout), tu_shape_str(s), center, spread, mask ? " masked" : "", (int)act);

    TU_OK(ctx, groups == s.c ? inorm_instance_norm(ctx, tx, tg, tb, &p, ty)
                             : inorm_group_norm(ctx, tx, groups, tg, tb, &p, ty));
    tu_download_fmt(ctx, ty, y, n);
    oracle_group_norm_ex(&op, s, x, groups, g, b, ref, mag);
    double worst = tu_assert_close_fmt(what, s, INORM_FLOAT16, layout, y, ref, mag);

    /* stats (no activation) */
    inorm_tensor *tmean = tu_tensor(ctx, nc_shape(s), NULL), *tstd = tu_tensor(ctx, nc_shape(s), NULL);
    TU_OK(ctx, inorm_stats(ctx, tx, &p, tmean, tstd));
    float *m = tu_floats(nc), *sd = tu_floats(nc);
    double *rm = tu_doubles(nc), *rs = tu_doubles(nc), *rsig = tu_doubles(nc);
    tu_download(ctx, tmean, m, nc);
    tu_download(ctx, tstd, sd, nc);
    op.activation = O_ACT_NONE;
    oracle_stats_ex(&op, s, x, rm, rs, rsig);
    tu_assert_stats(tu_fmt("stats of %s", what), nc_shape(s), m, sd, rm, rs, rsig);

    /* in place */
    TU_OK(ctx, groups == s.c ? inorm_instance_norm(ctx, tx, tg, tb, &p, tx)
                             : inorm_group_norm(ctx, tx, groups, tg, tb, &p, tx));
    tu_download_fmt(ctx, tx, y, n);
    tu_assert_close_fmt(tu_fmt("%s, in place", what), s, INORM_FLOAT16, layout, y, ref, mag);

    printf("%s: ok, worst |err|/bound %.4f\n", what, worst);
    tu_ctx_destroy(ctx);
    free(x), free(y), free(g), free(b), free(ref), free(mag), free(mask), free(m), free(sd), free(rm), free(rs),
        free(rsig);
}

START_TEST(fp16_plane_4096x4096_nchw_near_60000)
{
    big_half(tu_backend(_i), tu_shape(1, 1, 4096, 4096), INORM_NCHW, 60000.0, 1000.0, 0, 1, INORM_ACTIVATION_SILU,
             1);
}
END_TEST

START_TEST(fp16_plane_4096x4096_nhwc_masked)
{
    big_half(tu_backend(_i), tu_shape(1, 1, 4096, 4096), INORM_NHWC, 3.0, 2.0, 1, 1, INORM_ACTIVATION_LEAKY_RELU, 2);
}
END_TEST

START_TEST(fp16_nhwc_1x64x512x512_group_norm)
{
    big_half(tu_backend(_i), tu_shape(1, 64, 512, 512), INORM_NHWC, 0.0, 3.0, 0, 8, INORM_ACTIVATION_RELU, 3);
}
END_TEST

START_TEST(fp16_nhwc_1x4x2048x2048_layer_norm_near_2000)
{
    big_half(tu_backend(_i), tu_shape(1, 4, 2048, 2048), INORM_NHWC, 2000.0, 30.0, 0, 1, INORM_ACTIVATION_NONE, 4);
}
END_TEST

/* Many distinct kernel variants on one context. On Vulkan the fused kernel
 * is specialized by the team and register counts a plane size gives, the
 * activation and the dtype; an application normalizing images of many sizes
 * meets hundreds of them. Every op must keep succeeding (a cache may evict,
 * it must not refuse) and give the right result. */
START_TEST(many_kernel_variants_one_context)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    int ops = 0;
    for (int dt = 0; dt < 2; dt++) {
        for (int act = 0; act < 4; act++) {
            for (uint32_t team = 1; team <= 256; team *= 2) {
                for (uint32_t regs = 5; regs <= 8; regs++) {
                    for (int v4 = 0; v4 < 2; v4++) {
                        uint32_t units = team * regs, w = v4 ? units * 4 : (units | 1u);
                        o_shape s = tu_shape(1, 1, 1, w);
                        float *x = tu_floats(w), *y = tu_floats(w);
                        double *ref = tu_doubles(w), *mag = tu_doubles(w);
                        for (uint32_t i = 0; i < w; i++)
                            x[i] = (float)((i * 7u) % 13u) * 0.25f;
                        inorm_dtype dtype = dt ? INORM_FLOAT16 : INORM_FLOAT32;
                        inorm_tensor *tx = tu_tensor_fmt(ctx, s, dtype, INORM_NCHW, x);
                        inorm_tensor *ty = tu_tensor_fmt(ctx, s, dtype, INORM_NCHW, NULL);
                        inorm_norm_params p = {.eps = 1e-5f, .activation = (inorm_activation)act,
                                               .activation_slope = 0.2f};
                        inorm_status st = inorm_instance_norm(ctx, tx, NULL, NULL, &p, ty);
                        ops++;
                        ck_assert_msg(st == INORM_SUCCESS,
                                      "instance_norm [%s] %s 1x1x1x%u act=%d, op %d on this context: %s: %s",
                                      tu_backend_name(be), tu_dtype_name(dtype), w, act, ops, inorm_status_string(st),
                                      inorm_context_error(ctx));
                        tu_download_fmt(ctx, ty, y, w);
                        o_params op = {.eps = 1e-5f, .activation = act, .slope = 0.2f};
                        oracle_group_norm_ex(&op, s, x, 1, NULL, NULL, ref, mag);
                        tu_assert_close_fmt(tu_fmt("instance_norm [%s] %s act=%d, op %d on this context",
                                                   tu_backend_name(be), tu_dtype_name(dtype), act, ops),
                                            s, dtype, INORM_NCHW, y, ref, mag);
                        inorm_tensor_destroy(tx);
                        inorm_tensor_destroy(ty);
                        free(x), free(y), free(ref), free(mag);
                    }
                }
            }
        }
    }
    printf("many kernel variants [%s]: %d ops of distinct plane sizes, activations and dtypes on one context\n",
           tu_backend_name(be), ops);
    tu_ctx_destroy(ctx);
}
END_TEST

int main(void)
{
    tu_init();
    Suite *s = suite_create("family_big");
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"fp16_plane_4096x4096_nchw_near_60000", fp16_plane_4096x4096_nchw_near_60000},
        {"fp16_plane_4096x4096_nhwc_masked", fp16_plane_4096x4096_nhwc_masked},
        {"fp16_nhwc_1x64x512x512_group_norm", fp16_nhwc_1x64x512x512_group_norm},
        {"fp16_nhwc_1x4x2048x2048_layer_norm_near_2000", fp16_nhwc_1x4x2048x2048_layer_norm_near_2000},
        {"many_kernel_variants_one_context", many_kernel_variants_one_context},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        tu_add_backend_case(s, cases[i].name, cases[i].test, 900);
    return tu_run(s);
}
