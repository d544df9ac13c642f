/* IEEE binary16 conversions (round to nearest even), for FLOAT16 tensors on
 * the CPU path and for users who fill them. The bit manipulation itself is in
 * internal.h, inline, so that the CPU path's loops can vectorize it. */
#include "internal.h"

float inorm_half_to_float(uint16_t value)
{
    return inorm_half_bits_to_float(value);
}

uint16_t inorm_half_from_double(double value)
{
    return inorm_half_bits_from_double(value);
}

uint16_t inorm_float_to_half(float value)
{
    return inorm_half_bits_from_double(value);
}

/* Cloned through a static function: clang only resolves a multiversioned
 * function for callers that see its attribute. */
INORM_CPU_CLONES static void halves_to_floats(const uint16_t *restrict src, float *restrict dst, size_t n)
{
    /* groups of a fixed 16: gcc -O2 vectorizes only loops that need no epilogue */
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (size_t k = 0; k < 16; ++k)
            dst[i + k] = inorm_half_bits_to_float(src[i + k]);
    for (; i < n; ++i)
        dst[i] = inorm_half_bits_to_float(src[i]);
}

void inorm_half_to_float_n(const uint16_t *src, float *dst, size_t n)
{
    halves_to_floats(src, dst, n);
}
