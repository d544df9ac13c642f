/* The CPU path's bulk fp16 conversions (hardware F16C where the processor
 * has it) give exactly the bits of the scalar bit-manipulation code, which
 * test_family checks against its own reference (half_conversions_*): every
 * half to float, and doubles and floats to half over ties, subnormals, overflow, Inf,
 * NaNs with payloads and random values of every magnitude. Links the static
 * core (the bulk functions are internal). */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "internal.h"

static uint32_t float_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

static double double_from_bits(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

START_TEST(every_half_to_float)
{
    enum { COUNT = 65536 + 5 };  /* a tail that is not a multiple of 8 */
    uint16_t *src = malloc(COUNT * sizeof *src);
    float *dst = malloc(COUNT * sizeof *dst);
    ck_assert(src && dst);
    for (uint32_t i = 0; i < COUNT; ++i)
        src[i] = (uint16_t)(i * 40503u);  /* every half, scrambled */
    inorm_half_to_float_n(src, dst, COUNT);
    for (uint32_t i = 0; i < COUNT; ++i)
        ck_assert_msg(float_bits(dst[i]) == float_bits(inorm_half_bits_to_float(src[i])),
                      "half 0x%04x: bulk 0x%08x, scalar 0x%08x", src[i], float_bits(dst[i]),
                      float_bits(inorm_half_bits_to_float(src[i])));
    free(src);
    free(dst);
}
END_TEST

static void check_doubles(const double *values, size_t n, const char *what)
{
    uint16_t *bulk = malloc(n * sizeof *bulk);
    ck_assert(bulk);
    inorm_halves_from_doubles(values, bulk, n);
    for (size_t i = 0; i < n; ++i) {
        uint16_t want = inorm_half_bits_from_double(values[i]);
        ck_assert_msg(bulk[i] == want, "%s: %.17g: bulk 0x%04x, scalar 0x%04x", what, values[i], bulk[i], want);
    }
    free(bulk);
}

START_TEST(doubles_to_half_edges)
{
    enum { COUNT = 65536 * 6 + 3 };
    double *v = malloc(COUNT * sizeof *v);
    ck_assert(v);
    size_t n = 0;
    for (uint32_t h = 0; h < 65536; ++h) {
        /* each half's value, and the points halfway to its neighbours with
         * a hair either side: the ties and near-ties of the rounding */
        double x = inorm_half_bits_to_float((uint16_t)h);
        double up = inorm_half_bits_to_float((uint16_t)(h + 1));
        double mid = isfinite(x) && isfinite(up) ? x + (up - x) / 2 : x;
        v[n++] = x;
        v[n++] = mid;
        v[n++] = nextafter(mid, INFINITY);
        v[n++] = nextafter(mid, -INFINITY);
        v[n++] = mid * (1 + 0x1p-30);  /* past the float rounding of the tie */
        v[n++] = -mid;
    }
    v[n++] = 65520.0;         /* rounds to 2^16: Inf */
    v[n++] = nextafter(65520.0, 0);
    v[n++] = double_from_bits(0x7ff0000000000001ull); /* NaN with a payload */
    check_doubles(v, n, "edges");
    free(v);
}
END_TEST

START_TEST(doubles_to_half_random)
{
    enum { COUNT = 1 << 18 };
    double *v = malloc(COUNT * sizeof *v);
    ck_assert(v);
    uint64_t state = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < COUNT; ++i) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        /* exponents from 2^-40 to 2^20 (subnormal halves to overflow), random mantissa and sign */
        uint64_t exponent = 1023 - 40 + (state >> 58) % 61;
        v[i] = double_from_bits((state & 0x800fffffffffffffull) | exponent << 52);
    }
    check_doubles(v, COUNT, "random");
    printf("bulk fp16 conversions: %s, bit-identical to the scalar code\n",
           inorm_cpu_has_avx2_f16c() ? "F16C hardware path" : "bit-manipulation path (no F16C here)");
    free(v);
}
END_TEST

static float float_from_bits(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* Floats to half: each half, the ties between neighbours and one float
 * either side of them, NaNs with payloads, and random bit patterns of every
 * exponent (NaN and Inf included). */
START_TEST(floats_to_half)
{
    enum { EDGES = 65536 * 5, RANDOM = 1 << 18, COUNT = EDGES + RANDOM + 4 };
    float *v = malloc(COUNT * sizeof *v);
    uint16_t *bulk = malloc(COUNT * sizeof *bulk);
    ck_assert(v && bulk);
    size_t n = 0;
    for (uint32_t h = 0; h < 65536; ++h) {
        float x = inorm_half_bits_to_float((uint16_t)h);
        float up = inorm_half_bits_to_float((uint16_t)(h + 1));
        float mid = isfinite(x) && isfinite(up) ? x + (up - x) / 2 : x;  /* exact: 12 bits */
        v[n++] = x;
        v[n++] = mid;
        v[n++] = nextafterf(mid, INFINITY);
        v[n++] = nextafterf(mid, -INFINITY);
        v[n++] = -mid;
    }
    v[n++] = float_from_bits(0x7f800001u);
    v[n++] = float_from_bits(0xffa00000u);
    v[n++] = float_from_bits(0x7fffffffu);
    v[n++] = 65520.0f;
    uint32_t state = 0x9e3779b9u;
    for (size_t i = 0; i < RANDOM; ++i) {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        v[n++] = float_from_bits(state);
    }
    inorm_halves_from_floats(v, bulk, n);
    for (size_t i = 0; i < n; ++i) {
        uint16_t want = inorm_half_bits_from_double(v[i]);
        ck_assert_msg(bulk[i] == want, "float 0x%08x: bulk 0x%04x, scalar 0x%04x", float_bits(v[i]), bulk[i], want);
    }
    free(v);
    free(bulk);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("half_bulk");
    TCase *tc = tcase_create("half_bulk");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, every_half_to_float);
    tcase_add_test(tc, doubles_to_half_edges);
    tcase_add_test(tc, doubles_to_half_random);
    tcase_add_test(tc, floats_to_half);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
