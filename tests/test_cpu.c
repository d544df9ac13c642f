/*
 * The CPU path against values computed by hand on tiny inputs. The expected
 * numbers below come from the arithmetic written in the comments, not from
 * the library or the oracle.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

/* Hand values are exact or given to 8+ digits; 2e-6 absolute + relative
 * covers fp32 rounding of numbers of magnitude <= ~10. */
#define HAND_TOL 2e-6

static void expect_values(const char *what, const float *got, const double *want, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int ok = isnan(want[i]) ? isnan(got[i])
                                : fabs((double)got[i] - want[i]) <= HAND_TOL * (1.0 + fabs(want[i]));
        ck_assert_msg(ok, "%s: element %zu: got %.9g, want %.9g (hand-computed, tol %.1g abs+rel)",
                      what, i, (double)got[i], want[i], HAND_TOL);
    }
}

static inorm_tensor *t_from(inorm_context *ctx, uint32_t n, uint32_t c, uint32_t h, uint32_t w,
                            const float *data)
{
    return tu_tensor(ctx, tu_shape(n, c, h, w), data);
}

/* 1x1x2x2 plane {1, 2, 3, 4}:
 *   mean = 10 / 4 = 2.5; deviations -1.5, -0.5, 0.5, 1.5; squares 2.25, 0.25, 0.25, 2.25,
 *   sum 5; biased var = 5/4 = 1.25; unbiased var = 5/3.
 * eps = 0: std = sqrt(1.25) = 1.11803398875;
 *   y = -1.5/1.11803398875 = -1.34164078650, -0.5/1.11803398875 = -0.44721359550, ... */
START_TEST(instance_norm_plane_1234)
{
    TU_CTX(ctx, INORM_BACKEND_CPU);
    const float x[4] = {1, 2, 3, 4};
    inorm_tensor *tx = t_from(ctx, 1, 1, 2, 2, x);
    inorm_tensor *ty = t_from(ctx, 1, 1, 2, 2, NULL);
    float y[4];

    inorm_norm_params p = {.eps = 0.0f, .unbiased = 0};
    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, &p, ty));
    tu_download(ctx, ty, y, 4);
    const double want0[4] = {-1.34164078650, -0.44721359550, 0.44721359550, 1.34164078650};
    expect_values("1x1x2x2 {1,2,3,4} eps 0", y, want0, 4);

    /* eps = 2.75: var + eps = 1.25 + 2.75 = 4, std = 2: y = deviation / 2 (exact). */
    p.eps = 2.75f;
    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, &p, ty));
    tu_download(ctx, ty, y, 4);
    const double want1[4] = {-0.75, -0.25, 0.25, 0.75};
    expect_values("1x1x2x2 {1,2,3,4} eps 2.75", y, want1, 4);

    /* params NULL = eps 1e-5, biased: std = sqrt(1.25001)
     *   = 1.11803398875 * sqrt(1 + 8e-6) = 1.11803398875 * 1.000003999992 = 1.11803846088;
     *   y = the eps-0 values / 1.000003999992: 1.34164078650 -> 1.34163542,
     *   0.44721359550 -> 0.44721180665. */
    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, NULL, ty));
    tu_download(ctx, ty, y, 4);
    const double want2[4] = {-1.34163542, -0.44721180665, 0.44721180665, 1.34163542};
    expect_values("1x1x2x2 {1,2,3,4} default params (eps 1e-5)", y, want2, 4);

    /* Unbiased, eps 0: var = 5/3, std = sqrt(5/3) = 1.29099444874;
     *   1.5 / 1.29099444874 = 1.16189500386, 0.5 / 1.29099444874 = 0.38729833462. */
    p.eps = 0.0f;
    p.unbiased = 1;
    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, &p, ty));
    tu_download(ctx, ty, y, 4);
    const double want3[4] = {-1.16189500386, -0.38729833462, 0.38729833462, 1.16189500386};
    expect_values("1x1x2x2 {1,2,3,4} unbiased eps 0", y, want3, 4);
    tu_ctx_destroy(ctx);
}
END_TEST

/* 1x1x1x3 plane {1, 2, 3}: mean 2, squares of deviations 1, 0, 1, sum 2;
 * unbiased var = 2/2 = 1, std 1 (eps 0): y = -1, 0, 1 exactly;
 * biased var = 2/3, std = 0.81649658093: y = -1.22474487139, 0, 1.22474487139. */
START_TEST(unbiased_three_values)
{
    TU_CTX(ctx, INORM_BACKEND_CPU);
    const float x[3] = {1, 2, 3};
    inorm_tensor *tx = t_from(ctx, 1, 1, 1, 3, x);
    inorm_tensor *ty = t_from(ctx, 1, 1, 1, 3, NULL);
    float y[3];
    inorm_norm_params p = {.eps = 0.0f, .unbiased = 1};
    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, &p, ty));
    tu_download(ctx, ty, y, 3);
    const double wu[3] = {-1, 0, 1};
    expect_values("{1,2,3} unbiased", y, wu, 3);
    p.unbiased = 0;
    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, &p, ty));
    tu_download(ctx, ty, y, 3);
    const double wb[3] = {-1.22474487139, 0, 1.22474487139};
    expect_values("{1,2,3} biased", y, wb, 3);
    tu_ctx_destroy(ctx);
}
END_TEST

/* 2x2x2x2, eps 0, gamma {2, -0.5}, beta {1, 10}:
 *   n0 c0 {1,3,1,3}: mean 2, deviations -1,1,-1,1, var 1, std 1
 *        -> y = 2*dev + 1 = -1, 3, -1, 3
 *   n0 c1 {4,0,4,0}: mean 2, deviations 2,-2,2,-2, var 4, std 2, normalized 1,-1,1,-1
 *        -> y = -0.5*norm + 10 = 9.5, 10.5, 9.5, 10.5
 *   n1 c0 {0,0,0,8}: mean 2, deviations -2,-2,-2,6, squares 4,4,4,36 = 48, var 12,
 *        std 3.46410161514, normalized -0.57735026919 (x3), 1.73205080757
 *        -> y = 2*norm + 1 = -0.15470053838 (x3), 4.46410161514
 *   n1 c1 {5,5,5,5}: constant, var 0, eps 0 -> 0 * inf: NaN for every element
 *        (documented in inorm.h). */
START_TEST(instance_norm_gamma_beta)
{
    TU_CTX(ctx, INORM_BACKEND_CPU);
    const float x[16] = {1, 3, 1, 3, 4, 0, 4, 0, 0, 0, 0, 8, 5, 5, 5, 5};
    const float g[2] = {2.0f, -0.5f}, b[2] = {1.0f, 10.0f};
    inorm_tensor *tx = t_from(ctx, 2, 2, 2, 2, x);
    inorm_tensor *tg = t_from(ctx, 1, 2, 1, 1, g);
    inorm_tensor *tb = t_from(ctx, 1, 2, 1, 1, b);
    inorm_tensor *ty = t_from(ctx, 2, 2, 2, 2, NULL);
    inorm_norm_params p = {.eps = 0.0f, .unbiased = 0};
    TU_OK(ctx, inorm_instance_norm(ctx, tx, tg, tb, &p, ty));
    float y[16];
    tu_download(ctx, ty, y, 16);
    const double want[16] = {-1, 3, -1, 3, 9.5, 10.5, 9.5, 10.5,
                             -0.15470053838, -0.15470053838, -0.15470053838, 4.46410161514,
                             NAN, NAN, NAN, NAN};
    expect_values("2x2x2x2 gamma/beta eps 0", y, want, 16);

    /* gamma only (beta 0): n0 c0 -> 2*dev = -2, 2, -2, 2. beta only (gamma 1): n0 c1 -> norm+10. */
    TU_OK(ctx, inorm_instance_norm(ctx, tx, tg, NULL, &p, ty));
    tu_download(ctx, ty, y, 16);
    const double wg[4] = {-2, 2, -2, 2};
    expect_values("gamma only, n0 c0", y, wg, 4);
    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, tb, &p, ty));
    tu_download(ctx, ty, y, 16);
    const double wb[4] = {11, 9, 11, 9};
    expect_values("beta only, n0 c1", y + 4, wb, 4);

    /* In place: y == x gives the first result again. */
    TU_OK(ctx, inorm_instance_norm(ctx, tx, tg, tb, &p, tx));
    tu_download(ctx, tx, y, 16);
    expect_values("2x2x2x2 gamma/beta in place", y, want, 16);
    tu_ctx_destroy(ctx);
}
END_TEST

/* A constant plane with eps > 0 gives exactly beta; so does a 1x1 plane. */
START_TEST(constant_plane_is_beta)
{
    TU_CTX(ctx, INORM_BACKEND_CPU);
    const float x[8] = {7.25f, 7.25f, 7.25f, 7.25f, 0.1f, 0.1f, 0.1f, 0.1f};
    const float g[2] = {3.0f, 0.7f}, b[2] = {-1.5f, 0.3f};
    inorm_tensor *tx = t_from(ctx, 1, 2, 2, 2, x);
    inorm_tensor *tg = t_from(ctx, 1, 2, 1, 1, g);
    inorm_tensor *tb = t_from(ctx, 1, 2, 1, 1, b);
    inorm_tensor *ty = t_from(ctx, 1, 2, 2, 2, NULL);
    TU_OK(ctx, inorm_instance_norm(ctx, tx, tg, tb, NULL, ty));
    float y[8];
    tu_download(ctx, ty, y, 8);
    for (int i = 0; i < 8; i++)
        ck_assert_msg(y[i] == b[i / 4], "constant plane: y[%d] = %.9g, want exactly beta %.9g", i,
                      (double)y[i], (double)b[i / 4]);

    const float x1[2] = {42.0f, -3.0f};
    inorm_tensor *t1 = t_from(ctx, 1, 2, 1, 1, x1);
    inorm_tensor *t1y = t_from(ctx, 1, 2, 1, 1, NULL);
    TU_OK(ctx, inorm_instance_norm(ctx, t1, tg, tb, NULL, t1y));
    tu_download(ctx, t1y, y, 2);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(y[i] == b[i], "1x1 plane: y[%d] = %.9g, want exactly beta %.9g", i,
                      (double)y[i], (double)b[i]);
    tu_ctx_destroy(ctx);
}
END_TEST

/* AdaIN on 2-element planes, eps 0:
 *   content {1, 3}: mean 2, biased var 1, std 1; style {10, 14}: mean 12, var 4, std 2
 *   t = 2 * (x - 2) / 1 + 12 = {10, 14}
 *   alpha 1: y = {10, 14}; alpha 0.25: y = 0.25 t + 0.75 x = {2.5 + 0.75, 3.5 + 2.25}
 *   = {3.25, 5.75}.
 * Unbiased: content var 2, std sqrt 2; style var 8, std 2 sqrt 2; ratio 2 again:
 *   t = {10, 14}.
 * Style broadcast (style N 1) with content N 2: n1 content {0, 4}: mean 2, var 4, std 2
 *   t = 2 * (x - 2) / 2 + 12 = {10, 14}. */
START_TEST(adain_two_elements)
{
    TU_CTX(ctx, INORM_BACKEND_CPU);
    const float c[4] = {1, 3, 0, 4}, s[2] = {10, 14};
    inorm_tensor *tc1 = t_from(ctx, 1, 1, 1, 2, c);
    inorm_tensor *tc2 = t_from(ctx, 2, 1, 1, 2, c);
    inorm_tensor *ts = t_from(ctx, 1, 1, 2, 1, s); /* style H/W differ from content */
    inorm_tensor *ty1 = t_from(ctx, 1, 1, 1, 2, NULL);
    inorm_tensor *ty2 = t_from(ctx, 2, 1, 1, 2, NULL);
    inorm_norm_params p = {.eps = 0.0f, .unbiased = 0};
    float y[4];

    TU_OK(ctx, inorm_adain(ctx, tc1, ts, 1.0f, &p, ty1));
    tu_download(ctx, ty1, y, 2);
    const double w1[2] = {10, 14};
    expect_values("adain alpha 1", y, w1, 2);

    TU_OK(ctx, inorm_adain(ctx, tc1, ts, 0.25f, &p, ty1));
    tu_download(ctx, ty1, y, 2);
    const double w2[2] = {3.25, 5.75};
    expect_values("adain alpha 0.25", y, w2, 2);

    p.unbiased = 1;
    TU_OK(ctx, inorm_adain(ctx, tc1, ts, 1.0f, &p, ty1));
    tu_download(ctx, ty1, y, 2);
    expect_values("adain unbiased", y, w1, 2);

    p.unbiased = 0;
    TU_OK(ctx, inorm_adain(ctx, tc2, ts, 1.0f, &p, ty2));
    tu_download(ctx, ty2, y, 4);
    const double w4[4] = {10, 14, 10, 14};
    expect_values("adain style N 1 broadcast", y, w4, 4);
    tu_ctx_destroy(ctx);
}
END_TEST

/* adain_modulate, eps 0: x {1, 3} (mean 2, std 1, normalized -1, 1), scale 3, bias -1:
 *   y = 3 * (-1, 1) - 1 = {-4, 2}; without bias {-3, 3}. */
START_TEST(adain_modulate_hand)
{
    TU_CTX(ctx, INORM_BACKEND_CPU);
    const float x[2] = {1, 3}, sc[1] = {3}, bi[1] = {-1};
    inorm_tensor *tx = t_from(ctx, 1, 1, 1, 2, x);
    inorm_tensor *ts = t_from(ctx, 1, 1, 1, 1, sc);
    inorm_tensor *tb = t_from(ctx, 1, 1, 1, 1, bi);
    inorm_tensor *ty = t_from(ctx, 1, 1, 1, 2, NULL);
    inorm_norm_params p = {.eps = 0.0f, .unbiased = 0};
    float y[2];
    TU_OK(ctx, inorm_adain_modulate(ctx, tx, ts, tb, &p, ty));
    tu_download(ctx, ty, y, 2);
    const double w1[2] = {-4, 2};
    expect_values("adain_modulate scale 3 bias -1", y, w1, 2);
    TU_OK(ctx, inorm_adain_modulate(ctx, tx, ts, NULL, &p, ty));
    tu_download(ctx, ty, y, 2);
    const double w2[2] = {-3, 3};
    expect_values("adain_modulate no bias", y, w2, 2);
    tu_ctx_destroy(ctx);
}
END_TEST

/* Stats of 1x2x2x2: c0 {1,2,3,4} (mean 2.5, var 1.25, unbiased 5/3), c1 {1,3,1,3}
 * (mean 2, var 1, unbiased 4/3).
 *   eps 0: std = sqrt(1.25) = 1.11803398875, 1
 *   eps 2.75: std = sqrt(4) = 2, sqrt(3.75) = 1.93649167310
 *   unbiased eps 0: sqrt(5/3) = 1.29099444874, sqrt(4/3) = 1.15470053838 */
START_TEST(stats_hand)
{
    TU_CTX(ctx, INORM_BACKEND_CPU);
    const float x[8] = {1, 2, 3, 4, 1, 3, 1, 3};
    inorm_tensor *tx = t_from(ctx, 1, 2, 2, 2, x);
    inorm_tensor *tm = t_from(ctx, 1, 2, 1, 1, NULL);
    inorm_tensor *ts = t_from(ctx, 1, 2, 1, 1, NULL);
    float m[2], s[2];
    inorm_norm_params p = {.eps = 0.0f, .unbiased = 0};

    TU_OK(ctx, inorm_stats(ctx, tx, &p, tm, ts));
    tu_download(ctx, tm, m, 2);
    tu_download(ctx, ts, s, 2);
    const double wm[2] = {2.5, 2}, ws0[2] = {1.11803398875, 1};
    expect_values("stats mean", m, wm, 2);
    expect_values("stats std eps 0", s, ws0, 2);

    p.eps = 2.75f;
    const float sentinel[2] = {-99, -99};
    tu_upload(ctx, tm, sentinel, 2);
    TU_OK(ctx, inorm_stats(ctx, tx, &p, NULL, ts)); /* std only */
    tu_download(ctx, ts, s, 2);
    const double ws1[2] = {2, 1.93649167310};
    expect_values("stats std eps 2.75 (mean NULL)", s, ws1, 2);
    tu_download(ctx, tm, m, 2);
    ck_assert_msg(m[0] == -99 && m[1] == -99, "stats with mean NULL wrote the old mean tensor");

    p.eps = 0.0f;
    p.unbiased = 1;
    TU_OK(ctx, inorm_stats(ctx, tx, &p, tm, NULL)); /* mean only */
    tu_download(ctx, tm, m, 2);
    expect_values("stats mean only, unbiased", m, wm, 2);
    TU_OK(ctx, inorm_stats(ctx, tx, &p, NULL, ts));
    tu_download(ctx, ts, s, 2);
    const double ws2[2] = {1.29099444874, 1.15470053838};
    expect_values("stats std unbiased", s, ws2, 2);
    tu_ctx_destroy(ctx);
}
END_TEST

/* Group norm, 1x4x1x2, 2 groups, eps 0, gamma {1,2,3,4}, beta {0,0,0,1}:
 *   group 0 = c0 {0,0} + c1 {2,2}: values {0,0,2,2}, mean 1, var 1, std 1
 *     normalized c0 {-1,-1}, c1 {1,1} -> y c0 = {-1,-1}, c1 = 2*{1,1} = {2,2}
 *     (instance norm would see two constant channels: the grouping matters)
 *   group 1 = c2 {2,6} + c3 {6,2}: mean 4, deviations -2,2,2,-2, var 4, std 2
 *     normalized c2 {-1,1}, c3 {1,-1} -> y c2 = {-3,3}, c3 = 4*{1,-1}+1 = {5,-3}
 * groups 1 (layer norm over C,H,W): values {0,0,2,2,2,6,6,2}: mean 20/8 = 2.5,
 *   deviations -2.5,-2.5,-.5,-.5,-.5,3.5,3.5,-.5; squares 6.25*2 + .25*4 + 12.25*2 = 38,
 *   var 38/8 = 4.75, std 2.17944947177; normalized -1.14707866935 (x2),
 *   -0.22941573387 (x4 at c1, c2[0], c3[1]), 1.60591013709 (x2)
 *   y (gamma 1, beta 0) = those. */
START_TEST(group_norm_two_groups)
{
    TU_CTX(ctx, INORM_BACKEND_CPU);
    const float x[8] = {0, 0, 2, 2, 2, 6, 6, 2};
    const float g[4] = {1, 2, 3, 4}, b[4] = {0, 0, 0, 1};
    inorm_tensor *tx = t_from(ctx, 1, 4, 1, 2, x);
    inorm_tensor *tg = t_from(ctx, 1, 4, 1, 1, g);
    inorm_tensor *tb = t_from(ctx, 1, 4, 1, 1, b);
    inorm_tensor *ty = t_from(ctx, 1, 4, 1, 2, NULL);
    inorm_norm_params p = {.eps = 0.0f, .unbiased = 0};
    float y[8];
    TU_OK(ctx, inorm_group_norm(ctx, tx, 2, tg, tb, &p, ty));
    tu_download(ctx, ty, y, 8);
    const double w2[8] = {-1, -1, 2, 2, -3, 3, 5, -3};
    expect_values("group norm 2 groups", y, w2, 8);

    TU_OK(ctx, inorm_group_norm(ctx, tx, 1, NULL, NULL, &p, ty));
    tu_download(ctx, ty, y, 8);
    const double a = -1.14707866935, bm = -0.22941573387, c = 1.60591013709;
    const double w1[8] = {a, a, bm, bm, bm, c, c, bm};
    expect_values("group norm 1 group", y, w1, 8);
    tu_ctx_destroy(ctx);
}
END_TEST

START_TEST(cpu_context_info)
{
    TU_CTX(ctx, INORM_BACKEND_CPU);
    inorm_device_info info;
    memset(&info, 0x5a, sizeof info);
    TU_OK(ctx, inorm_context_info(ctx, &info));
    ck_assert_int_eq(info.backend, INORM_BACKEND_CPU);
    ck_assert_int_eq(info.type, INORM_DEVICE_TYPE_CPU_PATH);
    ck_assert_msg(memchr(info.name, '\0', sizeof info.name) != NULL, "name not terminated");
    ck_assert_msg(info.driver_name[0] == '\0', "CPU path driver_name is \"%.*s\", want \"\"",
                  (int)sizeof info.driver_name, info.driver_name);
    ck_assert_uint_eq(info.api_version, 0);
    ck_assert_uint_eq(info.subgroup_size, 0);
    ck_assert_int_eq(info.subgroup_ops_used, 0);
    ck_assert_int_eq(info.validation_enabled, 0);
    ck_assert_msg(info.max_storage_buffer_range >= ((uint64_t)1 << 32),
                  "CPU max_storage_buffer_range %llu: expected SIZE_MAX-ish",
                  (unsigned long long)info.max_storage_buffer_range);
    ck_assert_uint_eq(inorm_context_validation_message_count(ctx), 0);
    tu_ctx_destroy(ctx);
}
END_TEST

int main(void)
{
    tu_init();
    Suite *s = suite_create("cpu");
    TCase *tc = tcase_create("hand_computed");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, instance_norm_plane_1234);
    tcase_add_test(tc, unbiased_three_values);
    tcase_add_test(tc, instance_norm_gamma_beta);
    tcase_add_test(tc, constant_plane_is_beta);
    tcase_add_test(tc, adain_two_elements);
    tcase_add_test(tc, adain_modulate_hand);
    tcase_add_test(tc, stats_hand);
    tcase_add_test(tc, group_norm_two_groups);
    tcase_add_test(tc, cpu_context_info);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
