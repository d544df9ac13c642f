/* Inline AVX2 + F16C pieces shared by half.c's bulk conversions and the CPU
 * path's fused loops (x86-64 builds with function multiversioning only). */
#ifndef INORM_X86_F16C_H
#define INORM_X86_F16C_H

#include "internal.h"

#if defined(INORM_CPU_CLONES_ENABLED)
#include <immintrin.h>

#define INORM_AVX2_F16C __attribute__((target("avx2,f16c")))
#define INORM_AVX2_F16C_INLINE __attribute__((target("avx2,f16c"), always_inline)) static inline

/* NaNs made the canonical quiet NaN with their sign, as the bit-manipulation
 * code makes them (F16C keeps payload bits both ways). */
INORM_AVX2_F16C_INLINE __m256 inorm_canonical_nans(__m256 v)
{
    const __m256 is_nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
    const __m256 canonical = _mm256_or_ps(_mm256_and_ps(v, _mm256_set1_ps(-0.0f)),
                                          _mm256_castsi256_ps(_mm256_set1_epi32(0x7fc00000)));
    return _mm256_blendv_ps(v, canonical, is_nan);
}

/* Eight halves to floats, bit for bit inorm_half_bits_to_float. */
INORM_AVX2_F16C_INLINE __m256 inorm_floats_of_halves(const uint16_t *src)
{
    return inorm_canonical_nans(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)src)));
}

/* Eight floats to halves, bit for bit inorm_half_bits_from_double. */
INORM_AVX2_F16C_INLINE __m128i inorm_halves_of_floats(__m256 v)
{
    return _mm256_cvtps_ph(inorm_canonical_nans(v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

/* The AVX-512 forms: sixteen at a time, the same bits. */
#define INORM_AVX512 __attribute__((target("avx512f,avx2,f16c")))
#define INORM_AVX512_INLINE __attribute__((target("avx512f,avx2,f16c"), always_inline)) static inline

INORM_AVX512_INLINE __m512 inorm_canonical_nans16(__m512 v)
{
    const __mmask16 is_nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    /* (v & sign) | quiet NaN, as one bitwise select (truth table 0xea) */
    const __m512i canonical = _mm512_ternarylogic_epi32(_mm512_castps_si512(v), _mm512_set1_epi32(INT32_MIN),
                                                        _mm512_set1_epi32(0x7fc00000), 0xea);
    return _mm512_mask_mov_ps(v, is_nan, _mm512_castsi512_ps(canonical));
}

INORM_AVX512_INLINE __m256i inorm_halves_of_floats16(__m512 v)
{
    return _mm512_cvtps_ph(inorm_canonical_nans16(v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
#endif

#endif
