/*
 * Small helpers shared by the robustness tests (test_faults.c,
 * test_threads.c, fuzz_ops.c): a deterministic RNG, half conversions
 * through the public API, and the CPU-vs-Vulkan comparison.
 *
 * Header-only (static functions) so that test_faults, which links the
 * static core with its fault hooks instead of libinorm, can use it too.
 *
 * Tolerance (CPU path vs Vulkan, the same inputs): the CPU path computes in
 * double, Vulkan in fp32, so on well-conditioned data (the tests' data:
 * unit-scale normal values, no tiny variances)
 *   |vk - cpu| <= tol * (1 + |cpu|),  tol = 1e-4 (FLOAT32), 4e-3 (FLOAT16),
 * NaN only where the other is NaN, infinities equal.
 */
#ifndef INORM_ROB_UTIL_H
#define INORM_ROB_UTIL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "inorm.h"

#define ROB_TOL_F32 1e-4
#define ROB_TOL_F16 4e-3

/* splitmix64 */
typedef struct rob_rng {
    uint64_t s;
} rob_rng;

static inline uint64_t rob_next(rob_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* [0, 1) */
static inline double rob_uniform(rob_rng *r)
{
    return (double)(rob_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

static inline double rob_normal(rob_rng *r)
{
    double u1 = rob_uniform(r), u2 = rob_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Fills a tensor's host image (elements of its dtype) from float values. */
static inline void rob_pack(inorm_dtype dtype, const float *src, void *dst, size_t count)
{
    if (dtype == INORM_FLOAT16) {
        uint16_t *h = dst;
        for (size_t i = 0; i < count; ++i)
            h[i] = inorm_float_to_half(src[i]);
    } else {
        memcpy(dst, src, count * sizeof(float));
    }
}

static inline void rob_unpack(inorm_dtype dtype, const void *src, float *dst, size_t count)
{
    if (dtype == INORM_FLOAT16) {
        const uint16_t *h = src;
        for (size_t i = 0; i < count; ++i)
            dst[i] = inorm_half_to_float(h[i]);
    } else {
        memcpy(dst, src, count * sizeof(float));
    }
}

static inline size_t rob_elements(const inorm_tensor_desc *d)
{
    return (size_t)d->n * d->c * d->h * d->w;
}

/*
 * Compares got (Vulkan) with want (CPU path) elementwise. Returns the number
 * of elements outside the tolerance and describes the first in msg.
 * exact: bitwise equality of the values (NaN equal to any NaN).
 */
static inline size_t rob_compare(const float *got, const float *want, size_t count, double tol, int exact,
                                 char *msg, size_t msg_size)
{
    size_t bad = 0;
    for (size_t i = 0; i < count; ++i) {
        float g = got[i], w = want[i];
        int ok;
        if (isnan(w) || isnan(g))
            ok = isnan(w) && isnan(g);
        else if (isinf(w) || isinf(g))
            ok = g == w;
        else if (exact)
            ok = memcmp(&g, &w, sizeof g) == 0;
        else
            ok = fabs((double)g - (double)w) <= tol * (1.0 + fabs((double)w));
        if (!ok) {
            if (bad == 0 && msg)
                snprintf(msg, msg_size, "element %zu: got %.9g, want %.9g (tolerance %s%g)", i, (double)g,
                         (double)w, exact ? "exact, " : "", exact ? 0.0 : tol * (1.0 + fabs((double)w)));
            ++bad;
        }
    }
    return bad;
}

static inline const char *rob_status_name(inorm_status st)
{
    switch (st) {
    case INORM_SUCCESS: return "SUCCESS";
    case INORM_ERROR_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case INORM_ERROR_UNSUPPORTED: return "UNSUPPORTED";
    case INORM_ERROR_NO_DEVICE: return "NO_DEVICE";
    case INORM_ERROR_OUT_OF_HOST_MEMORY: return "OUT_OF_HOST_MEMORY";
    case INORM_ERROR_OUT_OF_DEVICE_MEMORY: return "OUT_OF_DEVICE_MEMORY";
    case INORM_ERROR_DEVICE_LOST: return "DEVICE_LOST";
    case INORM_ERROR_BACKEND: return "BACKEND";
    }
    return "(not an inorm_status)";
}

#endif
