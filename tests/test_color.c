/*
 * The pixel ops, inorm_color_convert and inorm_blend, on every selected
 * backend, FLOAT32 and FLOAT16, NCHW and NHWC:
 * - conversions against a double-precision reference written here from the
 *   published definitions (sRGB IEC 61966-2-1, CIE 1976 L*a*b*, Reinhard et
 *   al. 2001 lαβ), and a few textbook values;
 * - round trips sRGB -> space -> sRGB within 1e-4 (FLOAT32; 1.3e-3 through
 *   lαβ, whose floor shows near black) and 1e-2 (FLOAT16);
 * - extra channels (alpha) copied bit for bit, in place or not;
 * - blend with every broadcast of the weight, in place on a or b;
 * - the colour-transfer chain on the device (sRGB -> Lab -> AdaIN -> sRGB):
 *   the result's Lab statistics are the style's, and a transfer of an image
 *   onto itself gives it back;
 * - refused arguments, with a message.
 *
 * Tolerances: FLOAT32 results are fp32 evaluations of the formulas, a few
 * ulps of the operands (pow, log and exp on the GPU are a few ulps too): we
 * accept 2e-5 relative to the channel's range (L* 100, a* and b* 128, lαβ 10,
 * RGB and XYZ 1). FLOAT16 stores every input and result in half precision
 * (11 significant bits): 2e-3 relative to the range into a space, 1e-2 back
 * to sRGB (its slope near black is 12.92).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#define SPACES 5
static const char *const k_space_names[SPACES] = { "srgb", "linear", "xyz", "lab", "lalphabeta" };
/* The magnitude of each space's channels, which tolerances are relative to. */
static const double k_space_range[SPACES] = { 1.0, 1.0, 1.0, 128.0, 10.0 };

/* ----------------------------------------------------- reference (double) -- */

static void ref_mul(const double m[3][3], const double v[3], double out[3])
{
    double r[3];
    for (int i = 0; i < 3; i++)
        r[i] = m[i][0] * v[0] + m[i][1] * v[1] + m[i][2] * v[2];
    memcpy(out, r, sizeof r);
}

/* The sRGB matrix (Lindbloom's, from the sRGB primaries and D65) and the
 * LMS matrix of Reinhard et al.; the inverses are solved here, not copied. */
static const double k_rgb_xyz[3][3] = {
    { 0.4124564, 0.3575761, 0.1804375 }, { 0.2126729, 0.7151522, 0.0721750 }, { 0.0193339, 0.1191920, 0.9503041 } };
static const double k_rgb_lms[3][3] = { { 0.3811, 0.5783, 0.0402 }, { 0.1967, 0.7244, 0.0782 }, { 0.0241, 0.1288, 0.8444 } };

static void ref_invert(const double m[3][3], double out[3][3])
{
    double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
                 m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            /* cofactor of (j, i) */
            int r0 = (j + 1) % 3, r1 = (j + 2) % 3, c0 = (i + 1) % 3, c1 = (i + 2) % 3;
            out[i][j] = (m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0]) / det;
        }
}

static double ref_srgb_to_linear(double v)
{
    double a = fabs(v), l = a <= 0.04045 ? a / 12.92 : pow((a + 0.055) / 1.055, 2.4);
    return v < 0 ? -l : l;
}

static double ref_linear_to_srgb(double v)
{
    double a = fabs(v), e = a <= 0.0031308 ? 12.92 * a : 1.055 * pow(a, 1 / 2.4) - 0.055;
    return v < 0 ? -e : e;
}

/* sRGB (one pixel) -> space */
static void ref_from_srgb(int space, const double srgb[3], double out[3])
{
    double lin[3];
    for (int i = 0; i < 3; i++)
        lin[i] = ref_srgb_to_linear(srgb[i]);
    switch (space) {
    case INORM_COLOR_SRGB: memcpy(out, srgb, 3 * sizeof(double)); return;
    case INORM_COLOR_LINEAR_SRGB: memcpy(out, lin, sizeof lin); return;
    case INORM_COLOR_XYZ: ref_mul(k_rgb_xyz, lin, out); return;
    case INORM_COLOR_LAB: {
        double xyz[3], f[3];
        ref_mul(k_rgb_xyz, lin, xyz);
        for (int i = 0; i < 3; i++) {
            double white = k_rgb_xyz[i][0] + k_rgb_xyz[i][1] + k_rgb_xyz[i][2];
            double t = xyz[i] / white, d = 6.0 / 29.0;
            f[i] = t > d * d * d ? cbrt(t) : t / (3 * d * d) + 4.0 / 29.0;
        }
        out[0] = 116 * f[1] - 16;
        out[1] = 500 * (f[0] - f[1]);
        out[2] = 200 * (f[1] - f[2]);
        return;
    }
    default: {
        double lms[3];
        ref_mul(k_rgb_lms, lin, lms);
        for (int i = 0; i < 3; i++)
            lms[i] = log10(fmax(lms[i], 1e-4));
        out[0] = (lms[0] + lms[1] + lms[2]) / sqrt(3);
        out[1] = (lms[0] + lms[1] - 2 * lms[2]) / sqrt(6);
        out[2] = (lms[0] - lms[1]) / sqrt(2);
        return;
    }
    }
}

/* space -> sRGB, for the reference of conversions from other spaces */
static void ref_to_srgb(int space, const double v[3], double out[3])
{
    double lin[3], inv[3][3];
    switch (space) {
    case INORM_COLOR_SRGB: memcpy(out, v, 3 * sizeof(double)); return;
    case INORM_COLOR_LINEAR_SRGB: memcpy(lin, v, sizeof lin); break;
    case INORM_COLOR_XYZ: ref_invert(k_rgb_xyz, inv); ref_mul(inv, v, lin); break;
    case INORM_COLOR_LAB: {
        double fy = (v[0] + 16) / 116, f[3] = { fy + v[1] / 500, fy, fy - v[2] / 200 }, xyz[3], d = 6.0 / 29.0;
        for (int i = 0; i < 3; i++) {
            double white = k_rgb_xyz[i][0] + k_rgb_xyz[i][1] + k_rgb_xyz[i][2];
            xyz[i] = white * (f[i] > d ? f[i] * f[i] * f[i] : 3 * d * d * (f[i] - 4.0 / 29.0));
        }
        ref_invert(k_rgb_xyz, inv);
        ref_mul(inv, xyz, lin);
        break;
    }
    default: {
        double l = v[0] / sqrt(3), a = v[1] / sqrt(6), b = v[2] / sqrt(2);
        double lms[3] = { pow(10, l + a + b), pow(10, l + a - b), pow(10, l - 2 * a) };
        ref_invert(k_rgb_lms, inv);
        ref_mul(inv, lms, lin);
        break;
    }
    }
    for (int i = 0; i < 3; i++)
        out[i] = ref_linear_to_srgb(lin[i]);
}

/* ------------------------------------------------------------- helpers -- */

typedef struct fmt {
    inorm_dtype dtype;
    inorm_layout layout;
} fmt;
static const fmt k_formats[4] = {
    { INORM_FLOAT32, INORM_NCHW }, { INORM_FLOAT32, INORM_NHWC }, { INORM_FLOAT16, INORM_NCHW }, { INORM_FLOAT16, INORM_NHWC } };

static const char *fmt_name(fmt f)
{
    return tu_fmt("%s %s", f.dtype == INORM_FLOAT16 ? "FLOAT16" : "FLOAT32", f.layout == INORM_NHWC ? "NHWC" : "NCHW");
}

/* A tensor of shape s in format f holding `nchw` (NCHW floats), rounded to
 * half for FLOAT16. nchw NULL: contents undefined. */
static inorm_tensor *make(inorm_context *ctx, o_shape s, fmt f, const float *nchw)
{
    inorm_tensor_desc d = { s.n, s.c, s.h, s.w, f.dtype, f.layout };
    inorm_tensor *t = NULL;
    TU_OK(ctx, inorm_tensor_create(ctx, &d, &t));
    if (!nchw)
        return t;
    size_t count = o_count(s), plane = o_plane(s), bytes = inorm_tensor_desc_bytes(&d);
    unsigned char *buf = tu_malloc(bytes);
    for (size_t i = 0; i < count; i++) {
        size_t n = i / (s.c * plane), c = i / plane % s.c, p = i % plane;
        size_t j = f.layout == INORM_NHWC ? (n * plane + p) * s.c + c : i;
        if (f.dtype == INORM_FLOAT16)
            ((uint16_t *)buf)[j] = inorm_float_to_half(nchw[i]);
        else
            ((float *)buf)[j] = nchw[i];
    }
    TU_OK(ctx, inorm_tensor_write(t, buf, bytes));
    free(buf);
    return t;
}

/* Reads t (shape s, format f) into NCHW floats. */
static void fetch(inorm_context *ctx, const inorm_tensor *t, o_shape s, fmt f, float *nchw)
{
    inorm_tensor_desc d = { s.n, s.c, s.h, s.w, f.dtype, f.layout };
    size_t count = o_count(s), plane = o_plane(s), bytes = inorm_tensor_desc_bytes(&d);
    unsigned char *buf = tu_malloc(bytes);
    TU_OK(ctx, inorm_tensor_read(t, buf, bytes));
    for (size_t i = 0; i < count; i++) {
        size_t n = i / (s.c * plane), c = i / plane % s.c, p = i % plane;
        size_t j = f.layout == INORM_NHWC ? (n * plane + p) * s.c + c : i;
        nchw[i] = f.dtype == INORM_FLOAT16 ? inorm_half_to_float(((uint16_t *)buf)[j]) : ((float *)buf)[j];
    }
    free(buf);
}

/* sRGB test pixels (NCHW, channels 0..2; channel 3, if any, a distinct
 * "alpha"): a 9-level grid of the RGB cube (black, white, primaries, greys),
 * then random values, a few slightly out of [0, 1]. */
static void srgb_pixels(tu_rng *r, float *x, o_shape s)
{
    size_t plane = o_plane(s);
    for (size_t n = 0; n < s.n; n++)
        for (size_t p = 0; p < plane; p++) {
            size_t q = n * plane + p;
            for (size_t c = 0; c < s.c; c++) {
                double v;
                if (c >= 3)
                    v = tu_rng_uniform(r, 0, 1);
                else if (q < 729)
                    v = (double)(q / (c == 0 ? 1 : c == 1 ? 9 : 81) % 9) / 8.0;
                else
                    v = tu_rng_uniform(r, -0.02, 1.02);
                x[(n * s.c + c) * plane + p] = (float)v;
            }
        }
}

/* --------------------------------------------------------------- tests -- */

START_TEST(textbook_values)
{
    TU_CTX(ctx, tu_backend(_i));
    /* white, black, red, mid grey in sRGB -> L*a*b* (Lindbloom, D65) */
    const float srgb[3 * 4] = { 1, 0, 1, 0.5f, 1, 0, 0, 0.5f, 1, 0, 0, 0.5f };
    const double lab[4][3] = { { 100, 0, 0 }, { 0, 0, 0 }, { 53.2408, 80.0925, 67.2032 }, { 53.3890, 0, 0 } };
    o_shape s = tu_shape(1, 3, 1, 4);
    inorm_tensor *t = make(ctx, s, k_formats[0], srgb);
    TU_OK(ctx, inorm_color_convert(ctx, t, t, INORM_COLOR_SRGB, INORM_COLOR_LAB));
    float got[12];
    fetch(ctx, t, s, k_formats[0], got);
    for (int p = 0; p < 4; p++)
        for (int c = 0; c < 3; c++)
            ck_assert_msg(fabs(got[c * 4 + p] - lab[p][c]) < 2e-3, "pixel %d channel %d: %g, want %g", p, c,
                          (double)got[c * 4 + p], lab[p][c]);
    inorm_tensor_destroy(t);
    tu_ctx_destroy(ctx);
}
END_TEST

/* Every conversion from sRGB and back to it, against the reference. */
START_TEST(conversions_vs_reference)
{
    TU_CTX(ctx, tu_backend(_i));
    tu_rng r;
    tu_rng_seed(&r, 7);
    const o_shape shapes[2] = { tu_shape(1, 3, 31, 29), tu_shape(2, 4, 17, 23) };
    for (int si = 0; si < 2; si++) {
        o_shape s = shapes[si];
        size_t count = o_count(s), plane = o_plane(s);
        float *x = tu_floats(count), *y = tu_floats(count), *back = tu_floats(count), *space_in = tu_floats(count);
        srgb_pixels(&r, x, s);
        for (int fi = 0; fi < 4; fi++) {
            fmt f = k_formats[fi];
            double tol_rel = f.dtype == INORM_FLOAT16 ? 2e-3 : 2e-5;
            for (int space = 0; space < SPACES; space++) {
                inorm_tensor *src = make(ctx, s, f, x), *dst = make(ctx, s, f, NULL);
                TU_OK(ctx, inorm_color_convert(ctx, src, dst, INORM_COLOR_SRGB, (inorm_color_space)space));
                fetch(ctx, dst, s, f, y);
                /* and from the space back, starting from the exact reference values */
                for (size_t n = 0; n < s.n; n++)
                    for (size_t p = 0; p < plane; p++) {
                        double in[3], want[3];
                        for (int c = 0; c < 3; c++)
                            in[c] = x[(n * s.c + c) * plane + p];
                        ref_from_srgb(space, in, want);
                        for (int c = 0; c < 3; c++) {
                            size_t i = (n * s.c + c) * plane + p;
                            /* the half-rounded input moves the result by the conversion's slope */
                            double tol = tol_rel * k_space_range[space] * (f.dtype == INORM_FLOAT16 ? 4 : 1);
                            ck_assert_msg(fabs(y[i] - want[c]) <= tol,
                                          "%s -> %s, %s, %s, pixel %zu channel %d (sRGB %g %g %g): %.7g, want %.7g",
                                          "srgb", k_space_names[space], fmt_name(f), tu_shape_str(s), n * plane + p, c,
                                          in[0], in[1], in[2], (double)y[i], want[c]);
                            space_in[i] = (float)want[c];
                        }
                        for (size_t c = 3; c < s.c; c++) {
                            size_t i = (n * s.c + c) * plane + p;
                            space_in[i] = x[i];
                            float want_alpha = f.dtype == INORM_FLOAT16 ? inorm_half_to_float(inorm_float_to_half(x[i])) : x[i];
                            ck_assert_msg(y[i] == want_alpha, "channel %zu changed: %g -> %g", c, (double)x[i],
                                          (double)y[i]);
                        }
                    }
                inorm_tensor *from = make(ctx, s, f, space_in);
                TU_OK(ctx, inorm_color_convert(ctx, from, dst, (inorm_color_space)space, INORM_COLOR_SRGB));
                fetch(ctx, dst, s, f, back);
                for (size_t n = 0; n < s.n; n++)
                    for (size_t p = 0; p < plane; p++) {
                        double in[3], want[3];
                        for (int c = 0; c < 3; c++)
                            in[c] = space_in[(n * s.c + c) * plane + p];
                        ref_to_srgb(space, in, want);
                        for (int c = 0; c < 3; c++) {
                            size_t i = (n * s.c + c) * plane + p;
                            double tol = f.dtype == INORM_FLOAT16 ? 1e-2 : 2e-5;
                            ck_assert_msg(fabs(back[i] - want[c]) <= tol, "%s -> srgb, %s, pixel %zu channel %d: %.7g, want %.7g",
                                          k_space_names[space], fmt_name(f), n * plane + p, c, (double)back[i], want[c]);
                        }
                    }
                inorm_tensor_destroy(src);
                inorm_tensor_destroy(dst);
                inorm_tensor_destroy(from);
            }
        }
        free(x);
        free(y);
        free(back);
        free(space_in);
    }
    tu_ctx_destroy(ctx);
}
END_TEST

/* sRGB -> space -> (another space ->) sRGB on the device, in place and not. */
START_TEST(round_trips)
{
    TU_CTX(ctx, tu_backend(_i));
    tu_rng r;
    tu_rng_seed(&r, 11);
    o_shape s = tu_shape(1, 4, 40, 41);
    size_t count = o_count(s), plane = o_plane(s);
    float *x = tu_floats(count), *y = tu_floats(count);
    srgb_pixels(&r, x, s);
    for (size_t i = 0; i < count; i++)  /* round trips are promised for [0, 1] */
        x[i] = x[i] < 0 ? 0 : x[i] > 1 ? 1 : x[i];
    for (int fi = 0; fi < 4; fi++) {
        fmt f = k_formats[fi];
        for (int a = 0; a < SPACES; a++)
            for (int b = 0; b < SPACES; b++) {
                inorm_tensor *t = make(ctx, s, f, x), *u = make(ctx, s, f, NULL);
                TU_OK(ctx, inorm_color_convert(ctx, t, t, INORM_COLOR_SRGB, (inorm_color_space)a));
                TU_OK(ctx, inorm_color_convert(ctx, t, u, (inorm_color_space)a, (inorm_color_space)b));
                TU_OK(ctx, inorm_color_convert(ctx, u, u, (inorm_color_space)b, INORM_COLOR_SRGB));
                fetch(ctx, u, s, f, y);
                double worst = 0;
                size_t worst_i = 0;
                for (size_t i = 0; i < count; i++) {
                    double want = f.dtype == INORM_FLOAT16 ? inorm_half_to_float(inorm_float_to_half(x[i])) : x[i];
                    double e = fabs(y[i] - want);
                    if (i / plane % s.c == 3)
                        ck_assert_msg(e == 0, "alpha changed in a round trip");
                    if (!(e <= worst)) {
                        worst = e;
                        worst_i = i;
                    }
                }
                /* near black, lαβ's floor costs up to 1.3e-3; FLOAT16 stores the
                 * intermediate with 11 significant bits, which sRGB's slope of
                 * 12.92 near black amplifies (see inorm.h) */
                double tol = f.dtype == INORM_FLOAT16 ? 1e-2 : (a == 4 || b == 4) ? 1.4e-3 : 1e-4;
                ck_assert_msg(worst <= tol, "srgb -> %s -> %s -> srgb, %s: error %g at %zu (%g -> %g), bound %g",
                              k_space_names[a], k_space_names[b], fmt_name(f), worst, worst_i, (double)x[worst_i],
                              (double)y[worst_i], tol);
                if (f.dtype == INORM_FLOAT32)
                    ck_assert(worst <= 1.0 / 255.0);
                inorm_tensor_destroy(t);
                inorm_tensor_destroy(u);
            }
    }
    free(x);
    free(y);
    tu_ctx_destroy(ctx);
}
END_TEST

/* y = w a + (1 - w) b for every broadcast of w. */
START_TEST(blend_broadcasts)
{
    TU_CTX(ctx, tu_backend(_i));
    tu_rng r;
    tu_rng_seed(&r, 13);
    o_shape s = tu_shape(2, 3, 9, 7);
    size_t count = o_count(s), plane = o_plane(s);
    float *a = tu_floats(count), *b = tu_floats(count), *y = tu_floats(count);
    tu_fill_uniform(&r, a, count, -2, 2);
    tu_fill_uniform(&r, b, count, -2, 2);
    const o_shape weights[] = { tu_shape(2, 1, 9, 7), tu_shape(1, 1, 9, 7), tu_shape(1, 3, 1, 1), tu_shape(2, 3, 9, 7),
                                tu_shape(1, 1, 1, 1), tu_shape(2, 3, 1, 1), tu_shape(1, 3, 9, 7) };
    for (size_t wi = 0; wi < sizeof weights / sizeof weights[0]; wi++)
        for (int fi = 0; fi < 4; fi++)
            for (int wl = 0; wl < 2; wl++)
                for (int where = 0; where < 3; where++) {  /* y new, y = a, y = b */
                    o_shape ws = weights[wi];
                    fmt f = k_formats[fi], wf = { INORM_FLOAT32, wl ? INORM_NHWC : INORM_NCHW };
                    float *w = tu_floats(o_count(ws));
                    tu_fill_uniform(&r, w, o_count(ws), 0, 1);
                    inorm_tensor *ta = make(ctx, s, f, a), *tb = make(ctx, s, f, b), *tw = make(ctx, ws, wf, w);
                    inorm_tensor *ty = where == 0 ? make(ctx, s, f, NULL) : where == 1 ? ta : tb;
                    TU_OK(ctx, inorm_blend(ctx, ta, tb, tw, ty));
                    fetch(ctx, ty, s, f, y);
                    for (size_t i = 0; i < count; i++) {
                        size_t n = i / (s.c * plane), c = i / plane % s.c, p = i % plane;
                        size_t wn = ws.n == 1 ? 0 : n, wc = ws.c == 1 ? 0 : c, wp = o_plane(ws) == 1 ? 0 : p;
                        double wv = w[(wn * ws.c + wc) * o_plane(ws) + wp];
                        double av = a[i], bv = b[i];
                        if (f.dtype == INORM_FLOAT16) {
                            av = inorm_half_to_float(inorm_float_to_half(a[i]));
                            bv = inorm_half_to_float(inorm_float_to_half(b[i]));
                        }
                        double want = wv * av + (1 - wv) * bv, tol = f.dtype == INORM_FLOAT16 ? 2e-3 : 1e-6;
                        ck_assert_msg(fabs(y[i] - want) <= tol, "weight %s, %s, y %s: element %zu is %g, want %g",
                                      tu_shape_str(ws), fmt_name(f), where == 0 ? "new" : where == 1 ? "= a" : "= b", i,
                                      (double)y[i], want);
                    }
                    inorm_tensor_destroy(ta);
                    inorm_tensor_destroy(tb);
                    inorm_tensor_destroy(tw);
                    if (where == 0)
                        inorm_tensor_destroy(ty);
                    free(w);
                }
    free(a);
    free(b);
    free(y);
    tu_ctx_destroy(ctx);
}
END_TEST

/* Per-channel weighted mean and std (biased) of NCHW channel c of sample 0. */
static void channel_stats(const float *x, o_shape s, size_t c, double *mean, double *std)
{
    size_t plane = o_plane(s);
    double sum = 0, squares = 0;
    for (size_t p = 0; p < plane; p++)
        sum += x[c * plane + p];
    *mean = sum / (double)plane;
    for (size_t p = 0; p < plane; p++)
        squares += (x[c * plane + p] - *mean) * (x[c * plane + p] - *mean);
    *std = sqrt(squares / (double)plane);
}

/* The colour-transfer chain, all on the device: sRGB -> space, AdaIN with the
 * style in the same space, back to sRGB. Reconverted to the space (no
 * quantisation or clipping here), the result has the style's statistics. */
START_TEST(transfer_chain)
{
    TU_CTX(ctx, tu_backend(_i));
    tu_rng r;
    tu_rng_seed(&r, 17);
    o_shape s = tu_shape(1, 3, 48, 40), st = tu_shape(1, 3, 30, 50);
    float *x = tu_floats(o_count(s)), *style = tu_floats(o_count(st)), *y = tu_floats(o_count(s));
    float *style_space = tu_floats(o_count(st));
    /* content: a smooth colour ramp; style: bluish noise */
    for (size_t p = 0; p < o_plane(s); p++) {
        double u = (double)(p % s.w) / s.w, v = (double)(p / s.w) / s.h;
        x[p] = (float)(0.2 + 0.6 * u);
        x[o_plane(s) + p] = (float)(0.3 + 0.4 * v);
        x[2 * o_plane(s) + p] = (float)(0.5 + 0.3 * u * v);
    }
    for (size_t p = 0; p < o_plane(st); p++) {
        style[p] = (float)tu_rng_uniform(&r, 0.1, 0.3);
        style[o_plane(st) + p] = (float)tu_rng_uniform(&r, 0.2, 0.5);
        style[2 * o_plane(st) + p] = (float)tu_rng_uniform(&r, 0.5, 0.9);
    }
    const int spaces[3] = { INORM_COLOR_SRGB, INORM_COLOR_LAB, INORM_COLOR_LALPHABETA };
    for (int si = 0; si < 3; si++) {
        inorm_color_space space = (inorm_color_space)spaces[si];
        inorm_norm_params p = INORM_NORM_PARAMS_DEFAULT;
        p.eps = 0;
        for (int self = 0; self < 2; self++) {
            inorm_tensor *tx = make(ctx, s, k_formats[0], x);
            inorm_tensor *ts = self ? make(ctx, s, k_formats[0], x) : make(ctx, st, k_formats[0], style);
            TU_OK(ctx, inorm_color_convert(ctx, tx, tx, INORM_COLOR_SRGB, space));
            TU_OK(ctx, inorm_color_convert(ctx, ts, ts, INORM_COLOR_SRGB, space));
            TU_OK(ctx, inorm_adain(ctx, tx, ts, 1.0f, &p, tx));
            if (!self)
                fetch(ctx, ts, st, k_formats[0], style_space);
            TU_OK(ctx, inorm_color_convert(ctx, tx, tx, space, INORM_COLOR_SRGB));
            fetch(ctx, tx, s, k_formats[0], y);
            if (self) {
                for (size_t i = 0; i < o_count(s); i++)
                    ck_assert_msg(fabs(y[i] - x[i]) <= 1e-4, "%s: self transfer moved element %zu: %g -> %g",
                                  k_space_names[space], i, (double)x[i], (double)y[i]);
            } else {
                /* back to the space on the device, then compare statistics */
                inorm_tensor *ty = make(ctx, s, k_formats[0], y);
                TU_OK(ctx, inorm_color_convert(ctx, ty, ty, INORM_COLOR_SRGB, space));
                fetch(ctx, ty, s, k_formats[0], y);
                for (size_t c = 0; c < 3; c++) {
                    double ym, ys, sm, ss;
                    channel_stats(y, s, c, &ym, &ys);
                    channel_stats(style_space, st, c, &sm, &ss);
                    double range = k_space_range[space];
                    ck_assert_msg(fabs(ym - sm) <= 1e-4 * range && fabs(ys - ss) <= 1e-4 * range + 1e-4 * ss,
                                  "%s channel %zu: result mean %g std %g, style mean %g std %g", k_space_names[space], c,
                                  ym, ys, sm, ss);
                }
                inorm_tensor_destroy(ty);
            }
            inorm_tensor_destroy(tx);
            inorm_tensor_destroy(ts);
        }
    }
    free(x);
    free(style);
    free(y);
    free(style_space);
    tu_ctx_destroy(ctx);
}
END_TEST

START_TEST(refused_arguments)
{
    TU_CTX(ctx, tu_backend(_i));
    inorm_tensor *rgb = make(ctx, tu_shape(1, 3, 4, 4), k_formats[0], NULL);
    inorm_tensor *two = make(ctx, tu_shape(1, 2, 4, 4), k_formats[0], NULL);
    inorm_tensor *half = make(ctx, tu_shape(1, 3, 4, 4), k_formats[2], NULL);
    inorm_tensor *big = make(ctx, tu_shape(1, 3, 4, 5), k_formats[0], NULL);
    inorm_tensor *mask = make(ctx, tu_shape(1, 1, 4, 4), k_formats[0], NULL);
    inorm_tensor *mask16 = make(ctx, tu_shape(1, 1, 4, 4), k_formats[2], NULL);
    inorm_tensor *rows = make(ctx, tu_shape(1, 1, 4, 1), k_formats[0], NULL);
    const inorm_status bad = INORM_ERROR_INVALID_ARGUMENT;
    TU_EXPECT(ctx, inorm_color_convert(ctx, two, two, INORM_COLOR_SRGB, INORM_COLOR_LAB), bad);
    TU_EXPECT(ctx, inorm_color_convert(ctx, rgb, half, INORM_COLOR_SRGB, INORM_COLOR_LAB), bad);
    TU_EXPECT(ctx, inorm_color_convert(ctx, rgb, big, INORM_COLOR_SRGB, INORM_COLOR_LAB), bad);
    TU_EXPECT(ctx, inorm_color_convert(ctx, rgb, rgb, (inorm_color_space)5, INORM_COLOR_LAB), bad);
    TU_EXPECT(ctx, inorm_color_convert(ctx, rgb, rgb, INORM_COLOR_SRGB, (inorm_color_space)-1), bad);
    TU_EXPECT(ctx, inorm_color_convert(ctx, NULL, rgb, INORM_COLOR_SRGB, INORM_COLOR_LAB), bad);
    ck_assert_int_eq(inorm_color_convert(NULL, rgb, rgb, INORM_COLOR_SRGB, INORM_COLOR_LAB), bad);
    TU_EXPECT(ctx, inorm_blend(ctx, rgb, big, mask, rgb), bad);
    TU_EXPECT(ctx, inorm_blend(ctx, rgb, rgb, mask16, rgb), bad);
    TU_EXPECT(ctx, inorm_blend(ctx, rgb, rgb, rows, rgb), bad);
    TU_EXPECT(ctx, inorm_blend(ctx, mask, mask, mask, mask), bad);
    TU_EXPECT(ctx, inorm_blend(ctx, rgb, rgb, NULL, rgb), bad);
    TU_EXPECT(ctx, inorm_blend(ctx, rgb, half, mask, rgb), bad);
    ck_assert_ptr_nonnull(strstr(inorm_context_error(ctx), "inorm_blend"));
    TU_OK(ctx, inorm_blend(ctx, rgb, rgb, mask, rgb));
    TU_OK(ctx, inorm_color_convert(ctx, rgb, rgb, INORM_COLOR_LAB, INORM_COLOR_LAB));
    tu_ctx_destroy(ctx);
}
END_TEST

int main(void)
{
    tu_init();
    Suite *s = suite_create("color");
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        { "textbook_values", textbook_values }, { "conversions", conversions_vs_reference },
        { "round_trips", round_trips },         { "blend", blend_broadcasts },
        { "transfer_chain", transfer_chain },   { "refused", refused_arguments },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        tu_add_backend_case(s, cases[i].name, cases[i].test, 300);
    return tu_run(s);
}
