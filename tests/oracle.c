/* The double-precision oracle; see oracle.h. */
#include "oracle.h"

#include <math.h>

void oracle_moments(const float *v, size_t count, int unbiased, double *mean, double *var)
{
    double sum = 0.0;
    for (size_t i = 0; i < count; i++)
        sum += (double)v[i];
    double m = sum / (double)count;

    double ss = 0.0;
    for (size_t i = 0; i < count; i++) {
        double d = (double)v[i] - m;
        ss += d * d;
    }
    double divisor = unbiased ? (double)count - 1.0 : (double)count;

    *mean = m;
    *var = ss / divisor;
}

/* y[i] = a * (x[i] - mean) + b over count values, and the magnitude of the
 * terms: |a| * (|x| + |mean| + sigma) + |b| + |y|. */
static void affine(const float *x, size_t count, double a, double mean, double sigma, double b,
                   double *y, double *mag)
{
    for (size_t i = 0; i < count; i++) {
        double xi = (double)x[i];
        double yi = a * (xi - mean) + b;
        y[i] = yi;
        if (mag)
            mag[i] = fabs(a) * (fabs(xi) + fabs(mean) + sigma) + fabs(b) + fabs(yi);
    }
}

void oracle_instance_norm(o_shape s, const float *x, const float *gamma, const float *beta,
                          float eps, int unbiased, double *y, double *mag)
{
    size_t hw = o_plane(s);
    for (uint32_t n = 0; n < s.n; n++) {
        for (uint32_t c = 0; c < s.c; c++) {
            size_t off = ((size_t)n * s.c + c) * hw;
            double mean, var;
            oracle_moments(x + off, hw, unbiased, &mean, &var);
            double g = gamma ? (double)gamma[c] : 1.0;
            double b = beta ? (double)beta[c] : 0.0;
            double a = g / sqrt(var + (double)eps);
            affine(x + off, hw, a, mean, sqrt(var), b, y + off, mag ? mag + off : NULL);
        }
    }
}

void oracle_group_norm(o_shape s, const float *x, uint32_t groups, const float *gamma,
                       const float *beta, float eps, int unbiased, double *y, double *mag)
{
    size_t hw = o_plane(s);
    uint32_t per_group = s.c / groups;
    for (uint32_t n = 0; n < s.n; n++) {
        for (uint32_t g = 0; g < groups; g++) {
            uint32_t c0 = g * per_group;
            size_t goff = ((size_t)n * s.c + c0) * hw;
            double mean, var;
            oracle_moments(x + goff, (size_t)per_group * hw, unbiased, &mean, &var);
            for (uint32_t c = c0; c < c0 + per_group; c++) {
                size_t off = ((size_t)n * s.c + c) * hw;
                double gm = gamma ? (double)gamma[c] : 1.0;
                double b = beta ? (double)beta[c] : 0.0;
                double a = gm / sqrt(var + (double)eps);
                affine(x + off, hw, a, mean, sqrt(var), b, y + off, mag ? mag + off : NULL);
            }
        }
    }
}

void oracle_adain(o_shape cs, const float *content, o_shape ss, const float *style, float alpha,
                  float eps, int unbiased, double *y, double *mag)
{
    size_t chw = o_plane(cs), shw = o_plane(ss);
    double al = (double)alpha;
    for (uint32_t n = 0; n < cs.n; n++) {
        uint32_t sn = ss.n == 1 ? 0 : n;
        for (uint32_t c = 0; c < cs.c; c++) {
            size_t off = ((size_t)n * cs.c + c) * chw;
            size_t soff = ((size_t)sn * ss.c + c) * shw;
            double mx, vx, ms, vs;
            oracle_moments(content + off, chw, unbiased, &mx, &vx);
            oracle_moments(style + soff, shw, unbiased, &ms, &vs);
            double std_x = sqrt(vx + (double)eps);
            double std_s = sqrt(vs + (double)eps);
            for (size_t i = 0; i < chw; i++) {
                double xi = (double)content[off + i];
                double t = std_s * (xi - mx) / std_x + ms;
                double yi = al * t + (1.0 - al) * xi;
                y[off + i] = yi;
                if (mag) {
                    double a = al * std_s / std_x;
                    mag[off + i] = fabs(a) * (fabs(xi) + fabs(mx) + sqrt(vx)) +
                                   fabs(al) * (fabs(ms) + sqrt(vs)) + fabs(1.0 - al) * fabs(xi) +
                                   fabs(yi);
                }
            }
        }
    }
}

void oracle_adain_modulate(o_shape s, const float *x, const float *scale, const float *bias,
                           float eps, int unbiased, double *y, double *mag)
{
    size_t hw = o_plane(s);
    for (uint32_t n = 0; n < s.n; n++) {
        for (uint32_t c = 0; c < s.c; c++) {
            size_t nc = (size_t)n * s.c + c;
            size_t off = nc * hw;
            double mean, var;
            oracle_moments(x + off, hw, unbiased, &mean, &var);
            double a = (double)scale[nc] / sqrt(var + (double)eps);
            double b = bias ? (double)bias[nc] : 0.0;
            affine(x + off, hw, a, mean, sqrt(var), b, y + off, mag ? mag + off : NULL);
        }
    }
}

void oracle_stats(o_shape s, const float *x, float eps, int unbiased, double *mean, double *std,
                  double *sigma)
{
    size_t hw = o_plane(s);
    for (size_t nc = 0; nc < (size_t)s.n * s.c; nc++) {
        double m, v;
        oracle_moments(x + nc * hw, hw, unbiased, &m, &v);
        if (mean)
            mean[nc] = m;
        if (std)
            std[nc] = sqrt(v + (double)eps);
        if (sigma)
            sigma[nc] = sqrt(v);
    }
}

/* ------------------------------------------------------------------------- */
/* The family: layouts, masks, activations, blends; see oracle.h.            */
/* ------------------------------------------------------------------------- */

double oracle_activate(int activation, double slope, double v)
{
    if (isnan(v))
        return v;
    switch (activation) {
    case O_ACT_RELU: return v < 0.0 ? 0.0 : v;
    case O_ACT_LEAKY_RELU: return v < 0.0 ? slope * v : v;
    case O_ACT_SILU: return v / (1.0 + exp(-v)); /* exp(-v) = inf for v < -709: -0.0, no NaN */
    default: return v;
    }
}

void oracle_moments_ex(o_shape s, int nhwc, const float *x, uint32_t n, uint32_t c0, uint32_t channels,
                       const float *weights, int unbiased, double *mean, double *var, double *weight)
{
    size_t hw = o_plane(s);
    double wsum = 0.0, sum = 0.0;
    for (uint32_t c = c0; c < c0 + channels; c++) {
        for (size_t p = 0; p < hw; p++) {
            double w = weights ? (double)weights[p] : 1.0;
            if (w == 0.0)
                continue; /* skipped entirely: a NaN here must not count */
            wsum += w;
            sum += w * (double)x[o_index(s, nhwc, n, c, p)];
        }
    }
    double m = sum / wsum;
    double ss = 0.0;
    for (uint32_t c = c0; c < c0 + channels; c++) {
        for (size_t p = 0; p < hw; p++) {
            double w = weights ? (double)weights[p] : 1.0;
            if (w == 0.0)
                continue;
            double d = (double)x[o_index(s, nhwc, n, c, p)] - m;
            ss += w * d * d;
        }
    }
    *mean = m;
    *var = ss / (unbiased ? wsum - 1.0 : wsum);
    if (weight)
        *weight = wsum;
}

/* The affine source of one (n, c): t = g / std * (x - mean) + b, with the
 * magnitudes of the terms g and b are summed from, and extra mag. */
typedef struct o_coef {
    double g, b;
    double g_abs, b_abs, extra;
} o_coef;

/* The mask plane of sample n (mask_n == 1: the same for every n), or NULL. */
static const float *mask_plane(const float *mask, uint32_t mask_n, uint32_t n, size_t hw)
{
    if (!mask)
        return NULL;
    return mask + (size_t)(mask_n == 1 ? 0 : n) * hw;
}

/* W / (W - 1) for masked unbiased statistics (>= 1), else 1. */
static double unbiased_amp(const o_params *p, int masked, double weight)
{
    if (!p->unbiased || !masked || !(weight > 1.0))
        return 1.0;
    return fmax(1.0, weight / (weight - 1.0));
}

static void apply_plane(const o_params *p, o_shape s, const float *x, uint32_t n, uint32_t c, double mean,
                        double var, double amp, o_coef k, double alpha, double *y, double *mag)
{
    size_t hw = o_plane(s);
    double sd = sqrt(var + (double)p->eps), sigma = sqrt(var);
    double a = k.g / sd, a_abs = amp * k.g_abs / sd;
    double lip = 1.0;
    if (p->activation == O_ACT_LEAKY_RELU)
        lip = fmax(1.0, fabs((double)p->slope));
    else if (p->activation == O_ACT_SILU)
        lip = 1.1; /* max of d/dv v * sigmoid(v) is about 1.0998 */
    for (size_t q = 0; q < hw; q++) {
        size_t i = o_index(s, p->nhwc, n, c, q);
        double xi = (double)x[i];
        double t = a * (xi - mean) + k.b;
        double v = alpha == 1.0 ? t : xi + alpha * (t - xi);
        double yi = oracle_activate(p->activation, (double)p->slope, v);
        y[i] = yi;
        if (!mag)
            continue;
        double base = a_abs * (fabs(xi) + fabs(mean) + sigma) + k.b_abs + k.extra + fabs(t);
        double mv = alpha == 1.0 ? base : fabs(alpha) * (base + fabs(xi)) + fabs(1.0 - alpha) * fabs(xi) + fabs(v);
        double f = 0.0;
        if (p->activation == O_ACT_SILU)
            f = 1.0 + fabs(v) / 32.0;
        else if (p->activation != O_ACT_NONE)
            f = 1.0;
        mag[i] = lip * mv + f * fabs(yi);
    }
}

void oracle_group_norm_ex(const o_params *p, o_shape s, const float *x, uint32_t groups, const float *gamma,
                          const float *beta, double *y, double *mag)
{
    size_t hw = o_plane(s);
    uint32_t per = s.c / groups;
    for (uint32_t n = 0; n < s.n; n++) {
        const float *w = mask_plane(p->mask, p->mask_n, n, hw);
        for (uint32_t g = 0; g < groups; g++) {
            double mean, var, weight;
            oracle_moments_ex(s, p->nhwc, x, n, g * per, per, w, p->unbiased, &mean, &var, &weight);
            double amp = unbiased_amp(p, w != NULL, weight);
            for (uint32_t c = g * per; c < (g + 1) * per; c++) {
                o_coef k = {gamma ? gamma[c] : 1.0, beta ? beta[c] : 0.0, 0, 0, 0};
                k.g_abs = fabs(k.g);
                k.b_abs = fabs(k.b);
                apply_plane(p, s, x, n, c, mean, var, amp, k, 1.0, y, mag);
            }
        }
    }
}

void oracle_modulate_ex(const o_params *p, o_shape s, const float *x, const float *scale, const float *bias,
                        double *y, double *mag)
{
    size_t hw = o_plane(s);
    for (uint32_t n = 0; n < s.n; n++) {
        const float *w = mask_plane(p->mask, p->mask_n, n, hw);
        for (uint32_t c = 0; c < s.c; c++) {
            double mean, var, weight;
            oracle_moments_ex(s, p->nhwc, x, n, c, 1, w, p->unbiased, &mean, &var, &weight);
            size_t nc = (size_t)n * s.c + c;
            o_coef k = {scale[nc], bias ? bias[nc] : 0.0, 0, 0, 0};
            k.g_abs = fabs(k.g);
            k.b_abs = fabs(k.b);
            apply_plane(p, s, x, n, c, mean, var, unbiased_amp(p, w != NULL, weight), k, 1.0, y, mag);
        }
    }
}

void oracle_cin_ex(const o_params *p, o_shape s, const float *x, uint32_t styles, const float *gamma_bank,
                   const float *beta_bank, const float *style_weights, double *y, double *mag)
{
    size_t hw = o_plane(s);
    for (uint32_t n = 0; n < s.n; n++) {
        const float *w = mask_plane(p->mask, p->mask_n, n, hw);
        for (uint32_t c = 0; c < s.c; c++) {
            o_coef k = {0, 0, 0, 0, 0};
            for (uint32_t st = 0; st < styles; st++) {
                double ws = style_weights[(size_t)n * styles + st];
                double gs = gamma_bank[(size_t)st * s.c + c];
                double bs = beta_bank ? beta_bank[(size_t)st * s.c + c] : 0.0;
                k.g += ws * gs;
                k.b += ws * bs;
                k.g_abs += fabs(ws * gs);
                k.b_abs += fabs(ws * bs);
            }
            double mean, var, weight;
            oracle_moments_ex(s, p->nhwc, x, n, c, 1, w, p->unbiased, &mean, &var, &weight);
            apply_plane(p, s, x, n, c, mean, var, unbiased_amp(p, w != NULL, weight), k, 1.0, y, mag);
        }
    }
}

void oracle_adain_mix_ex(const o_params *p, o_shape cs, const float *content, uint32_t count, const o_shape *ss,
                         const float *const *styles, const double *weights, double alpha, double *y, double *mag)
{
    size_t hw = o_plane(cs);
    for (uint32_t n = 0; n < cs.n; n++) {
        const float *w = mask_plane(p->mask, p->mask_n, n, hw);
        for (uint32_t c = 0; c < cs.c; c++) {
            o_coef k = {0, 0, 0, 0, 0};
            for (uint32_t j = 0; j < count; j++) {
                uint32_t sn = ss[j].n == 1 ? 0 : n;
                const float *sw = mask_plane(p->style_mask, p->style_mask_n, sn, o_plane(ss[j]));
                double ms, vs, ws;
                oracle_moments_ex(ss[j], p->nhwc, styles[j], sn, c, 1, sw, p->unbiased, &ms, &vs, &ws);
                double std_s = sqrt(vs + (double)p->eps);
                k.g += weights[j] * std_s;
                k.b += weights[j] * ms;
                k.g_abs += fabs(weights[j]) * std_s * unbiased_amp(p, sw != NULL, ws);
                k.b_abs += fabs(weights[j] * ms);
                k.extra += fabs(weights[j]) * sqrt(vs); /* the style mean's reduction error */
            }
            double mean, var, weight;
            oracle_moments_ex(cs, p->nhwc, content, n, c, 1, w, p->unbiased, &mean, &var, &weight);
            apply_plane(p, cs, content, n, c, mean, var, unbiased_amp(p, w != NULL, weight), k, alpha, y, mag);
        }
    }
}

void oracle_stats_ex(const o_params *p, o_shape s, const float *x, double *mean, double *std, double *sigma)
{
    size_t hw = o_plane(s);
    for (uint32_t n = 0; n < s.n; n++) {
        const float *w = mask_plane(p->mask, p->mask_n, n, hw);
        for (uint32_t c = 0; c < s.c; c++) {
            size_t nc = (size_t)n * s.c + c;
            double m, v;
            oracle_moments_ex(s, p->nhwc, x, n, c, 1, w, p->unbiased, &m, &v, NULL);
            if (mean)
                mean[nc] = m;
            if (std)
                std[nc] = sqrt(v + (double)p->eps);
            if (sigma)
                sigma[nc] = sqrt(v);
        }
    }
}
