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

/* ------------------------------------------------------------------------- */
/* The family: layouts, masks, activations, blends (test_family.c)           */
/* ------------------------------------------------------------------------- */
/*
 * Everything below takes data arrays in their storage layout (o_params.nhwc):
 * element (n, c, p), p = h * W + w the pixel, lives at o_index(). Parameter
 * arrays (gamma, beta, scale, bias, banks, masks) are as in inorm.h, i.e.
 * C, N x C, S x C, N x S floats, and masks M x H x W with M == N or 1.
 *
 * Statistics of a plane (instance norm, AdaIN, stats) or a group of channel
 * planes (group and layer norm) of sample n, with w[p] the mask weight of
 * pixel p (1 without a mask), over the values whose weight is not 0:
 *   W    = sum w[p]                        (per channel of the group)
 *   mean = sum w[p] x / W
 *   var  = sum w[p] (x - mean)^2 / W       (unbiased: / (W - 1))
 * two passes in double. A value of weight 0 is skipped entirely (a NaN there
 * does not reach the statistics), but every element is normalized.
 *
 * Every normalized element goes through
 *   t = a * (x - mean) + b,   a = g / sqrt(var + eps)
 *   v = alpha == 1 ? t : x + alpha * (t - x)
 *   y = act(v)
 * where (g, b) depend on the op: gamma[c], beta[c]; scale[n, c], bias[n, c];
 * sum_s w[n, s] bank[s, c]; std and mean of the style (AdaIN); the weighted
 * sums of the styles' std and mean (adain_mix).
 *
 * mag (when not NULL) follows test_util.h: the sum of the magnitudes of the
 * terms an fp32 evaluation rounds, with these additions:
 * - g and b enter as sums of |terms| (|w| |bank|, |w_k| std_k, ...), since
 *   their fp32 evaluation rounds at that scale even when the terms cancel;
 * - AdaIN styles add |alpha| * sum |w_k| (|mean_k| + sigma_k) (their mean's
 *   reduction error);
 * - the blend adds |alpha| (|t| + |x|) + |1 - alpha| |x| (t - x and the sum);
 * - masked unbiased statistics scale the |a| term by W / (W - 1): the fp32
 *   error of W is amplified by the subtraction of 1;
 * - the activation: mag_y = L * mag_v + f * |y|, L its Lipschitz constant
 *   (1; max(1, |slope|) for LeakyReLU; 1.1 for SiLU) and f = 1 (the final
 *   rounding), for SiLU 1 + |v| / 32: GLSL allows exp() an error of
 *   3 + 2 |v| ulps, which puts (5 + 2 |v|) ulps on v / (1 + exp(-v)), and
 *   K * (1 + |v| / 32) = 64 + 2 |v| covers it.
 */

enum { O_ACT_NONE = 0, O_ACT_RELU, O_ACT_LEAKY_RELU, O_ACT_SILU }; /* as inorm_activation */

typedef struct o_params {
    float eps;
    int unbiased;
    int nhwc;                 /* layout of every data tensor (x, styles, y) */
    int activation;           /* O_ACT_* */
    float slope;              /* LeakyReLU */
    const float *mask;        /* mask_n x H x W weights of x, or NULL */
    uint32_t mask_n;
    const float *style_mask;  /* style_mask_n x Hs x Ws weights of the style(s), or NULL */
    uint32_t style_mask_n;
} o_params;

/* Storage index of element (n, c, pixel p) of a tensor of shape s. */
static inline size_t o_index(o_shape s, int nhwc, uint32_t n, uint32_t c, size_t p)
{
    return nhwc ? ((size_t)n * o_plane(s) + p) * s.c + c : ((size_t)n * s.c + c) * o_plane(s) + p;
}

/* act(v) as inorm.h defines it; NaN passes through. */
double oracle_activate(int activation, double slope, double v);

/* Weighted moments of `channels` channel planes from c0 of sample n; weights
 * is the H x W mask plane of that sample or NULL (all 1). *weight gets W
 * (summed over the channels). */
void oracle_moments_ex(o_shape s, int nhwc, const float *x, uint32_t n, uint32_t c0, uint32_t channels,
                       const float *weights, int unbiased, double *mean, double *var, double *weight);

/* Instance (groups == C), group and layer (groups == 1) norm; gamma/beta C floats or NULL. */
void oracle_group_norm_ex(const o_params *p, o_shape s, const float *x, uint32_t groups, const float *gamma,
                          const float *beta, double *y, double *mag);

/* adain_modulate: scale (N x C) and bias (N x C or NULL). */
void oracle_modulate_ex(const o_params *p, o_shape s, const float *x, const float *scale, const float *bias,
                        double *y, double *mag);

/* Conditional instance norm with S styles: gamma_bank S x C, beta_bank S x C
 * or NULL, style_weights N x S. */
void oracle_cin_ex(const o_params *p, o_shape s, const float *x, uint32_t styles, const float *gamma_bank,
                   const float *beta_bank, const float *style_weights, double *y, double *mag);

/* AdaIN towards sum_k weights[k] * (mean, std)(styles[k]); count >= 1, each
 * style of shape ss[k] (content's C, N equal or 1), the style mask (if any)
 * applying to each. inorm_adain is count 1, weight 1. */
void oracle_adain_mix_ex(const o_params *p, o_shape cs, const float *content, uint32_t count, const o_shape *ss,
                         const float *const *styles, const double *weights, double alpha, double *y, double *mag);

/* Weighted per-(n, c) mean, std = sqrt(var + eps) and sigma = sqrt(var). */
void oracle_stats_ex(const o_params *p, o_shape s, const float *x, double *mean, double *std, double *sigma);

#endif
