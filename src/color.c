/* Colour conversion on the CPU path, in double: every pixel goes from its
 * space to linear RGB and from there to the target space. The constants are
 * the ones shaders/color.comp uses (in fp32 there). */
#include "internal.h"

#include <math.h>

/* sRGB primaries, D65: linear RGB -> XYZ, and its inverse. */
static const double rgb_to_xyz[3][3] = {
    { 0.4124564, 0.3575761, 0.1804375 },
    { 0.2126729, 0.7151522, 0.0721750 },
    { 0.0193339, 0.1191920, 0.9503041 },
};
static const double xyz_to_rgb[3][3] = {
    { 3.2404548360214083, -1.5371388501025751, -0.49853154686848089 },
    { -0.96926638987565372, 1.8760109288424913, 0.041556082346673524 },
    { 0.055643419604213658, -0.20402585426769815, 1.0572251624579287 },
};
/* The white of L*a*b*: rgb_to_xyz's row sums, so RGB (1, 1, 1) is L* 100, a* = b* = 0. */
static const double white[3] = { 0.95047, 1.0000001, 1.08883 };

/* Reinhard et al. 2001: linear RGB -> LMS, and its inverse (computed exactly,
 * not the paper's rounded one, so that a round trip is the identity). */
static const double rgb_to_lms[3][3] = {
    { 0.3811, 0.5783, 0.0402 },
    { 0.1967, 0.7244, 0.0782 },
    { 0.0241, 0.1288, 0.8444 },
};
static const double lms_to_rgb[3][3] = {
    { 4.4686698634962552, -3.5886759034721263, 0.11960436657860116 },
    { -1.2197166276177633, 2.3830879129554567, -0.16263011175140057 },
    { 0.058508476938545897, -0.26107843902769373, 1.2056659085256229 },
};
/* LMS below this counts as this before the logarithm. */
#define LMS_FLOOR 1e-4

static void multiply(const double m[3][3], const double v[3], double out[3])
{
    double r[3];
    for (int i = 0; i < 3; ++i)
        r[i] = m[i][0] * v[0] + m[i][1] * v[1] + m[i][2] * v[2];
    for (int i = 0; i < 3; ++i)
        out[i] = r[i];
}

static double srgb_decode(double v)
{
    double a = fabs(v);
    double linear = a <= 0.04045 ? a / 12.92 : pow((a + 0.055) / 1.055, 2.4);
    return v < 0.0 ? -linear : linear;
}

static double srgb_encode(double v)
{
    double a = fabs(v);
    double encoded = a <= 0.0031308 ? 12.92 * a : 1.055 * pow(a, 1.0 / 2.4) - 0.055;
    return v < 0.0 ? -encoded : encoded;
}

/* CIE's f(t) and its inverse, with delta = 6/29. */
static double lab_f(double t)
{
    const double delta = 6.0 / 29.0;
    return t > delta * delta * delta ? cbrt(t) : t / (3.0 * delta * delta) + 4.0 / 29.0;
}

static double lab_f_inverse(double u)
{
    const double delta = 6.0 / 29.0;
    return u > delta ? u * u * u : 3.0 * delta * delta * (u - 4.0 / 29.0);
}

/* v (in `space`) -> linear RGB, in place. */
static void to_linear(inorm_color_space space, double v[3])
{
    switch (space) {
    case INORM_COLOR_SRGB:
        for (int i = 0; i < 3; ++i)
            v[i] = srgb_decode(v[i]);
        return;
    case INORM_COLOR_LINEAR_SRGB:
        return;
    case INORM_COLOR_XYZ:
        multiply(xyz_to_rgb, v, v);
        return;
    case INORM_COLOR_LAB: {
        double fy = (v[0] + 16.0) / 116.0;
        double xyz[3] = {
            white[0] * lab_f_inverse(fy + v[1] / 500.0),
            white[1] * lab_f_inverse(fy),
            white[2] * lab_f_inverse(fy - v[2] / 200.0),
        };
        multiply(xyz_to_rgb, xyz, v);
        return;
    }
    case INORM_COLOR_LALPHABETA: {
        double l = v[0] / sqrt(3.0), alpha = v[1] / sqrt(6.0), beta = v[2] / sqrt(2.0);
        double lms[3] = {
            pow(10.0, l + alpha + beta),
            pow(10.0, l + alpha - beta),
            pow(10.0, l - 2.0 * alpha),
        };
        multiply(lms_to_rgb, lms, v);
        return;
    }
    }
}

/* Linear RGB -> `space`, in place. */
static void from_linear(inorm_color_space space, double v[3])
{
    switch (space) {
    case INORM_COLOR_SRGB:
        for (int i = 0; i < 3; ++i)
            v[i] = srgb_encode(v[i]);
        return;
    case INORM_COLOR_LINEAR_SRGB:
        return;
    case INORM_COLOR_XYZ:
        multiply(rgb_to_xyz, v, v);
        return;
    case INORM_COLOR_LAB: {
        double xyz[3];
        multiply(rgb_to_xyz, v, xyz);
        double fx = lab_f(xyz[0] / white[0]), fy = lab_f(xyz[1] / white[1]), fz = lab_f(xyz[2] / white[2]);
        v[0] = 116.0 * fy - 16.0;
        v[1] = 500.0 * (fx - fy);
        v[2] = 200.0 * (fy - fz);
        return;
    }
    case INORM_COLOR_LALPHABETA: {
        double lms[3];
        multiply(rgb_to_lms, v, lms);
        for (int i = 0; i < 3; ++i)
            lms[i] = log10(lms[i] > LMS_FLOOR ? lms[i] : LMS_FLOOR);  /* NaN stays NaN */
        v[0] = (lms[0] + lms[1] + lms[2]) / sqrt(3.0);
        v[1] = (lms[0] + lms[1] - 2.0 * lms[2]) / sqrt(6.0);
        v[2] = (lms[0] - lms[1]) / sqrt(2.0);
        return;
    }
    }
}


/* Pixels [first, last) of N x H x W. */
static void convert_pixels(void *arg, size_t first, size_t last)
{
    const inorm_op *op = arg;
    const inorm_tensor_desc *d = &op->x->desc;
    const size_t plane = (size_t)d->h * d->w;
    const bool in_place = op->x == op->y;
    for (size_t pixel = first; pixel < last; ++pixel) {
        size_t n = pixel / plane, p = pixel % plane;
        double v[3];
        for (size_t c = 0; c < 3; ++c)
            v[c] = inorm_host_load(op->x, inorm_element_index(d, n, c, p));
        if (op->color_from != op->color_to) {
            to_linear(op->color_from, v);
            from_linear(op->color_to, v);
        }
        for (size_t c = 0; c < 3; ++c)
            inorm_host_store(op->y, inorm_element_index(d, n, c, p), v[c]);
        for (size_t c = 3; c < d->c && !in_place; ++c) {
            size_t i = inorm_element_index(d, n, c, p);
            inorm_host_store(op->y, i, inorm_host_load(op->x, i));
        }
    }
}

void inorm_cpu_color(const inorm_op *op)
{
    inorm_cpu_for_range(op->x->ctx, (size_t)op->x->desc.n * op->x->desc.h * op->x->desc.w, convert_pixels, (void *)op);
}
