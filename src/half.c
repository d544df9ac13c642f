/* IEEE binary16 conversions (round to nearest even), for FLOAT16 tensors on
 * the CPU path and for users who fill them. */
#include "internal.h"

#include <math.h>
#include <string.h>

float inorm_half_to_float(uint16_t value)
{
    uint32_t sign = (uint32_t)(value & 0x8000u) << 16;
    uint32_t exponent = (value >> 10) & 0x1fu;
    uint32_t mantissa = value & 0x3ffu;
    float magnitude;
    if (exponent == 0x1f)
        magnitude = mantissa ? NAN : INFINITY;
    else if (exponent == 0)
        magnitude = ldexpf((float)mantissa, -24);  /* subnormal (or zero) */
    else
        magnitude = ldexpf((float)(mantissa | 0x400u), (int)exponent - 25);
    uint32_t bits;
    memcpy(&bits, &magnitude, sizeof bits);
    bits |= sign;
    float result;
    memcpy(&result, &bits, sizeof result);
    return result;
}

uint16_t inorm_half_from_double(double value)
{
    uint16_t sign = signbit(value) ? 0x8000u : 0;
    double magnitude = fabs(value);
    if (isnan(value))
        return sign | 0x7e00u;
    if (magnitude >= 65520.0)  /* halfway between the largest half and 2^16 rounds up */
        return sign | 0x7c00u;
    if (magnitude < 0x1p-14) {
        /* subnormal: units of 2^-24, ties to even by nearbyint's default mode */
        return sign | (uint16_t)nearbyint(magnitude * 0x1p24);
    }
    int exponent;
    double fraction = frexp(magnitude, &exponent); /* magnitude = fraction * 2^exponent, fraction in [0.5, 1) */
    /* 11 significant bits: round fraction * 2^11 to an integer in [1024, 2048]. */
    double significand = nearbyint(fraction * 2048.0);
    if (significand == 2048.0) {
        significand = 1024.0;
        exponent++;
    }
    int biased = exponent + 14;  /* half exponent field for 2^(exponent - 1) */
    if (biased >= 31)
        return sign | 0x7c00u;
    return sign | (uint16_t)((unsigned)biased << 10) | (uint16_t)((unsigned)significand - 1024u);
}

uint16_t inorm_float_to_half(float value)
{
    return inorm_half_from_double(value);
}
