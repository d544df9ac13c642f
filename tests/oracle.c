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
