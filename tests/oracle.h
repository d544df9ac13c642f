/*
 * The double-precision oracle: the reference every backend is compared with.
 *
 * Plain C, written to be obviously correct rather than fast: every statistic
 * is computed in double with two passes over the values (the mean first, then
 * the centred sum of squares), straight from the formulas in inorm.h. Tensors
 * are FLOAT32 NCHW arrays as the tests upload them; results are double arrays.
 *
 * Each op also fills, when `mag` is not NULL, a per-element "magnitude": the
 * sum of absolute values of the terms an fp32 evaluation of that element
 * rounds. The tolerance is K * FLT_EPSILON * mag[i]; test_util.h explains why.
 */
#ifndef INORM_TEST_ORACLE_H
#define INORM_TEST_ORACLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct o_shape {
    uint32_t n, c, h, w;
} o_shape;

static inline size_t o_count(o_shape s) { return (size_t)s.n * s.c * s.h * s.w; }
static inline size_t o_plane(o_shape s) { return (size_t)s.h * s.w; }

/* Mean and variance of count contiguous values, two-pass in double.
 * unbiased: divide by count - 1 (count >= 2), else by count. */
void oracle_moments(const float *v, size_t count, int unbiased, double *mean, double *var);

/* y = gamma[c] * (x - mean) / sqrt(var + eps) + beta[c] per (n, c) plane.
 * gamma/beta: C floats or NULL (1 and 0). y: o_count(s) doubles. */
void oracle_instance_norm(o_shape s, const float *x, const float *gamma, const float *beta,
                          float eps, int unbiased, double *y, double *mag);

/* Group norm: statistics over each (n, group) of C/groups contiguous channels. */
void oracle_group_norm(o_shape s, const float *x, uint32_t groups, const float *gamma,
                       const float *beta, float eps, int unbiased, double *y, double *mag);

/* AdaIN: t = std_s * (x - mean_x) / std_x + mean_s, y = alpha * t + (1 - alpha) * x,
 * std = sqrt(var + eps); style has content's C, any H, W, and N == content N or 1. */
void oracle_adain(o_shape cs, const float *content, o_shape ss, const float *style, float alpha,
                  float eps, int unbiased, double *y, double *mag);

/* y = scale[n, c] * (x - mean) / sqrt(var + eps) + bias[n, c]; bias may be NULL. */
void oracle_adain_modulate(o_shape s, const float *x, const float *scale, const float *bias,
                           float eps, int unbiased, double *y, double *mag);

/* Per-(n, c) mean and std = sqrt(var + eps); sigma = sqrt(var) (no eps).
 * Any output may be NULL. Each is n*c doubles. */
void oracle_stats(o_shape s, const float *x, float eps, int unbiased, double *mean, double *std,
                  double *sigma);

#endif
