/* IEEE binary16 conversions (round to nearest even), for FLOAT16 tensors on
 * the CPU path and for users who fill them. The bit manipulation itself is in
 * internal.h, inline, so that the CPU path's loops can vectorize it. */
#include "internal.h"
#include "x86_f16c.h"

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

/* The portable loop: x86 machines with AVX2 have F16C and take
 * halves_to_floats_f16c instead, so no AVX2 clone of this one. */
static void halves_to_floats(const uint16_t *restrict src, float *restrict dst, size_t n)
{
    /* groups of a fixed 16: gcc -O2 vectorizes only loops that need no epilogue */
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (size_t k = 0; k < 16; ++k)
            dst[i + k] = inorm_half_bits_to_float(src[i + k]);
    for (; i < n; ++i)
        dst[i] = inorm_half_bits_to_float(src[i]);
}

#if defined(INORM_CPU_CLONES_ENABLED)
#include <cpuid.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

INORM_AVX2_F16C static void halves_to_floats_f16c(const uint16_t *src, float *dst, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, inorm_floats_of_halves(src + i));
    for (; i < n; ++i)
        dst[i] = inorm_half_bits_to_float(src[i]);
}

/* Four doubles to floats rounded to odd (as inorm_half_bits_from_double
 * does, so that F16C's one rounding to nearest gives the direct rounding). */
INORM_AVX2_F16C_INLINE __m128 floats_rounded_to_odd(__m256d v)
{
    const __m128 near = _mm256_cvtpd_ps(v);
    const __m256d back = _mm256_cvtps_pd(near);
    const __m256d magnitude_mask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL));
    const __m256d above = _mm256_cmp_pd(_mm256_and_pd(back, magnitude_mask), _mm256_and_pd(v, magnitude_mask),
                                        _CMP_GT_OQ);
    const __m256d inexact = _mm256_cmp_pd(back, v, _CMP_NEQ_UQ);
    /* 64-bit lane masks to 32-bit ones: the low half of each */
    const __m256i pick = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
    const __m128i above32 = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(_mm256_castpd_si256(above), pick));
    const __m128i inexact32 = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(_mm256_castpd_si256(inexact), pick));
    const __m128i one = _mm_set1_epi32(1);
    __m128i bits = _mm_castps_si128(near);
    bits = _mm_sub_epi32(bits, _mm_and_si128(above32, one));
    bits = _mm_or_si128(bits, _mm_and_si128(inexact32, one));
    return _mm_castsi128_ps(bits);
}

INORM_AVX2_F16C static void halves_from_floats_f16c(const float *src, uint16_t *dst, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), inorm_halves_of_floats(_mm256_loadu_ps(src + i)));
    for (; i < n; ++i)
        dst[i] = inorm_half_bits_from_double(src[i]);
}

INORM_AVX2_F16C static void halves_from_doubles_f16c(const double *src, uint16_t *dst, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128 low = floats_rounded_to_odd(_mm256_loadu_pd(src + i));
        const __m128 high = floats_rounded_to_odd(_mm256_loadu_pd(src + i + 4));
        _mm_storeu_si128((__m128i *)(dst + i), inorm_halves_of_floats(_mm256_set_m128(high, low)));
    }
    for (; i < n; ++i)
        dst[i] = inorm_half_bits_from_double(src[i]);
}
#endif

#if defined(INORM_CPU_CLONES_ENABLED)
/* The level INORM_CPU_ISA asks for (the environment, read when the level is
 * first needed): a cap below the processor's for tests and for reproducing
 * another machine's speed. Unknown or unset: no cap. */
static inorm_cpu_isa requested_isa(void)
{
    const char *value = getenv("INORM_CPU_ISA");
    if (!value)
        return INORM_ISA_AVX512;
    if (strcmp(value, "portable") == 0)
        return INORM_ISA_PORTABLE;
    if (strcmp(value, "avx2") == 0)
        return INORM_ISA_AVX2;
    return INORM_ISA_AVX512;
}

static inorm_cpu_isa processor_isa(void)
{
    /* clang's __builtin_cpu_supports knows no "f16c": CPUID leaf 1, ECX
     * bit 29. The avx2 and avx512f checks cover the OS saving the
     * registers' state (XCR0). */
    unsigned eax, ebx, ecx, edx;
    if (!__builtin_cpu_supports("avx2") || !__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_F16C))
        return INORM_ISA_PORTABLE;
    return __builtin_cpu_supports("avx512f") ? INORM_ISA_AVX512 : INORM_ISA_AVX2;
}
#endif

inorm_cpu_isa inorm_cpu_isa_level(void)
{
#if defined(INORM_CPU_CLONES_ENABLED)
    /* A fact of the process, read once: CPUID traps to the hypervisor in a
     * virtual machine (microseconds; per call it made fp16 ops 5x slower).
     * 0 not yet known, else the level + 1; racing first calls store the
     * same value. */
    static atomic_int known;
    int state = atomic_load_explicit(&known, memory_order_relaxed);
    if (state == 0) {
        const inorm_cpu_isa have = processor_isa(), want = requested_isa();
        state = (int)(want < have ? want : have) + 1;
        atomic_store_explicit(&known, state, memory_order_relaxed);
    }
    return (inorm_cpu_isa)(state - 1);
#else
    return INORM_ISA_PORTABLE;
#endif
}

const char *inorm_cpu_isa_name(inorm_cpu_isa level)
{
    static const char *const names[] = { "portable", "avx2", "avx512" };
    return names[level];
}

bool inorm_cpu_has_avx2_f16c(void)
{
    return inorm_cpu_isa_level() >= INORM_ISA_AVX2;
}

void inorm_half_to_float_n(const uint16_t *src, float *dst, size_t n)
{
#if defined(INORM_CPU_CLONES_ENABLED)
    if (inorm_cpu_has_avx2_f16c()) {
        halves_to_floats_f16c(src, dst, n);
        return;
    }
#endif
    halves_to_floats(src, dst, n);
}

void inorm_halves_from_doubles(const double *src, uint16_t *dst, size_t n)
{
#if defined(INORM_CPU_CLONES_ENABLED)
    if (inorm_cpu_has_avx2_f16c()) {
        halves_from_doubles_f16c(src, dst, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; ++i)
        dst[i] = inorm_half_bits_from_double(src[i]);
}

void inorm_halves_from_floats(const float *src, uint16_t *dst, size_t n)
{
#if defined(INORM_CPU_CLONES_ENABLED)
    if (inorm_cpu_has_avx2_f16c()) {
        halves_from_floats_f16c(src, dst, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; ++i)
        dst[i] = inorm_half_bits_from_double(src[i]);
}
