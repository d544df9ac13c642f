/*
 * Helpers shared by the inorm tests: deterministic data, contexts per backend,
 * tensor upload/download, and the comparison with the oracle.
 *
 * ---------------------------------------------------------------------------
 * Tolerance
 * ---------------------------------------------------------------------------
 * The library evaluates y = a * (x - mean) + b in fp32, with a = gamma /
 * sqrt(var + eps) and the statistics accumulated in fp32 (or better). The
 * oracle (oracle.c) computes the exact-ish result in double from the same
 * fp32 inputs. The elementwise bound we accept is
 *
 *   |y - y_ref| <= K * FLT_EPSILON * mag,   K = TU_K = 64,
 *   mag = |a_ref| * (|x| + |mean_ref| + sigma_ref) + |b_ref| + |y_ref|
 *
 * where sigma_ref = sqrt(var_ref) is the plane's spread. Why each term:
 * - x - mean rounds with an error of about eps * (|x| + |mean|);
 * - the computed mean is off by a few ulps of the values summed, i.e. of
 *   |mean| + sigma (fp32 reductions of up to 16M values with tree or Chan
 *   merges: the error of each partial sum is relative to the magnitude of
 *   the values, which is bounded by |mean| + a few sigma, not by |mean|
 *   alone: for zero-mean data the mean's error is a few ulps of sigma);
 *   multiplied by a this gives the |a| * sigma term, without which an element
 *   near the mean of a zero-mean plane would get a bound far below the
 *   honest error;
 * - the variance, sqrt/rsqrt and division put a relative error of a few ulps
 *   on a, i.e. an error of a few ulps of |a * (x - mean)| <= |a| * (|x| + |mean|);
 * - the final multiply-add rounds at the scale of |b| and |y|.
 * Each of these is a few ulps; K = 64 leaves headroom for the reduction
 * depth while still catching every real bug: a wrong plane, a missing or
 * doubled element, a lost chunk or a stale buffer give errors of the order
 * of |y| itself, i.e. 1e5 times the bound; a mean shifted by 1e-3 sigma or a
 * single element off by 1e-3 relative fail too (tested in test_ops.c,
 * "tolerance_bites").
 *
 * Per op (oracle.c computes mag accordingly):
 * - instance/group norm: a = gamma / sqrt(var + eps), b = beta;
 * - adain_modulate:      a = scale / sqrt(var + eps), b = bias;
 * - adain:               a = alpha * std_s / std_x, b = alpha * mean_s, plus
 *   |alpha| * sigma_s (the style mean's own reduction error) and
 *   |1 - alpha| * |x| (the blend term);
 * - stats: mean within K * eps * (|mean| + sigma), std relative 1e-5
 *   (std = sqrt(var + eps); 1e-5 is about 84 ulps, the same headroom).
 * A reference NaN requires a NaN; a finite reference requires a finite
 * value within the bound.
 */
#ifndef INORM_TEST_UTIL_H
#define INORM_TEST_UTIL_H

#include <check.h>
#include <float.h>
#include <stddef.h>
#include <stdint.h>

#include "inorm.h"
#include "oracle.h"

#define TU_K 64.0
#define TU_STD_REL_TOL 1e-5

/* ------------------------------------------------------------------ RNG -- */

typedef struct tu_rng {
    uint64_t s;
} tu_rng;

void tu_rng_seed(tu_rng *r, uint64_t seed);
uint64_t tu_rng_next(tu_rng *r);
double tu_rng_uniform(tu_rng *r, double lo, double hi); /* [lo, hi) */
double tu_rng_normal(tu_rng *r);                        /* N(0, 1), Box-Muller */
void tu_fill_uniform(tu_rng *r, float *dst, size_t n, double lo, double hi);
void tu_fill_normal(tu_rng *r, float *dst, size_t n, double mean, double sd);

/* Allocations that abort the test on failure (never return NULL). */
void *tu_malloc(size_t bytes);
float *tu_floats(size_t n);
double *tu_doubles(size_t n);

/* ------------------------------------------------------------- backends -- */

/*
 * Call first in every test main(). Removes INORM_BACKEND from the environment
 * (the tests choose the backend themselves and check they got it) and reads
 * INORM_TEST_BACKENDS ("cpu", "vulkan" or "cpu,vulkan", the default), which
 * selects the backends the loop tests run on.
 */
void tu_init(void);
int tu_backend_count(void);
inorm_backend tu_backend(int i);
const char *tu_backend_name(inorm_backend b);
/* tcase_add_loop_test over the selected backends; the test gets its backend
 * as tu_backend(_i). */
void tu_add_backend_loop(TCase *tc, const TTest *test);
#define TU_ADD_BACKEND_TEST(tc, fn) tu_add_backend_loop((tc), (fn))

/* A TCase named `name` running `test` once per backend, with a timeout,
 * added to s; returned so the caller can tag it. */
TCase *tu_add_backend_case(Suite *s, const char *name, const TTest *test, double timeout_seconds);

/* Env var set to "1". */
int tu_env_flag(const char *name);

/*
 * A context of the given backend (validation = 1 for Vulkan) with its info
 * checked: the backend is the one asked for; with INORM_REQUIRE_VALIDATION=1
 * the validation layer is active; with INORM_DISABLE_SUBGROUPS=1 (or the flag)
 * subgroup ops are not used.
 * A missing Vulkan device fails the test, unless INORM_TEST_ALLOW_NO_VULKAN=1:
 * then it prints a SKIP line and returns NULL (the test returns early).
 */
inorm_context *tu_ctx_create(inorm_backend b);
inorm_context *tu_ctx_create_flags(inorm_backend b, uint32_t flags);
#define TU_CTX(var, backend)                                                                      \
    inorm_context *var = tu_ctx_create(backend);                                                  \
    if (!var)                                                                                     \
    return

/*
 * Finishes, checks (Vulkan) that the validation layer reported nothing, and
 * destroys the context; also fails if the destruction itself printed a
 * validation error to stderr (leaked objects and the like).
 */
void tu_ctx_destroy(inorm_context *ctx);
/* Same without inorm_context_finish first: destroy must wait for pending work. */
void tu_ctx_destroy_pending(inorm_context *ctx);

/* ------------------------------------------------------------- tensors -- */

inorm_tensor_desc tu_desc(uint32_t n, uint32_t c, uint32_t h, uint32_t w);
inorm_tensor_desc tu_desc_s(o_shape s);
o_shape tu_shape(uint32_t n, uint32_t c, uint32_t h, uint32_t w);

/* FLOAT32 NCHW tensor; data (o_count floats) is uploaded when not NULL. */
inorm_tensor *tu_tensor(inorm_context *ctx, o_shape s, const float *data);
/* Reads count floats of t into dst, asserting success. */
void tu_download(inorm_context *ctx, const inorm_tensor *t, float *dst, size_t count);
void tu_upload(inorm_context *ctx, inorm_tensor *t, const float *src, size_t count);

/* "2x3x7x5" into a static rotating buffer. */
const char *tu_shape_str(o_shape s);

/* Asserts st == want and, for a failure status, a non-empty error message. */
#define TU_EXPECT(ctx, call, want)                                                                \
    tu_expect_status((ctx), (call), (want), #call, __FILE__, __LINE__)
void tu_expect_status(const inorm_context *ctx, inorm_status st, inorm_status want,
                      const char *call, const char *file, int line);
#define TU_OK(ctx, call) TU_EXPECT((ctx), (call), INORM_SUCCESS)

/* ---------------------------------------------------------- comparison -- */

typedef struct tu_cmp {
    size_t count;       /* elements compared */
    size_t bad;         /* elements outside the bound */
    size_t first_bad;   /* index of the first bad element */
    double got, want, bound; /* at first_bad */
    double worst_ratio; /* max |got - want| / bound over finite elements */
    size_t worst_index;
} tu_cmp;

/* bound[i] = k * FLT_EPSILON * mag[i]. */
tu_cmp tu_compare(const float *got, const double *want, const double *mag, size_t n, double k);
/* |got - want| <= abs_tol + rel_tol * |want|. */
tu_cmp tu_compare_absrel(const float *got, const double *want, size_t n, double abs_tol,
                         double rel_tol);

/* Asserts tu_compare(..., TU_K) has no bad element; `what` names the op,
 * backend and variant, s the shape used to print (n, c, h, w) of the index.
 * Returns the worst |err| / bound (for the headroom summary lines). */
double tu_assert_close(const char *what, o_shape s, const float *got, const double *want,
                       const double *mag);
/* Same for a tu_cmp already computed. */
void tu_assert_cmp(const char *what, o_shape s, const tu_cmp *r, const char *tol_desc);

/* Stats check: mean within K*eps*(|mean| + sigma), std relative TU_STD_REL_TOL.
 * got_mean / got_std may be NULL (not checked). tu_check_stats returns the
 * number of values outside and describes the first in msg; tu_assert_stats
 * fails the test on any. */
size_t tu_check_stats(o_shape s, const float *got_mean, const float *got_std,
                      const double *ref_mean, const double *ref_std, const double *ref_sigma,
                      char *msg, size_t msg_size);
void tu_assert_stats(const char *what, o_shape s, const float *got_mean, const float *got_std,
                     const double *ref_mean, const double *ref_std, const double *ref_sigma);

/* ------------------------------------------------- FLOAT16 and NHWC -- */
/*
 * FLOAT16 tolerance (used by tu_compare_fmt on every backend alike).
 * The library computes in fp32 (the CPU path: double) from the stored halves
 * and rounds each result to fp16 once. With y32 the unrounded result, within
 * B = TU_K * FLT_EPSILON * mag of the exact value r (the fp32 rule above), and
 * ref = fp16(r) the oracle rounded to fp16:
 *   |y - ref| <= |y - y32| + |y32 - r| + |r - ref| <= ulp/2 + B + ulp/2,
 * so we allow 1 ulp of fp16 at |ref| plus B, where ulp(v) =
 * 2^(floor(log2 |v|) - 10) for normal halves and 2^-24 below 2^-14 (the
 * subnormal spacing, also the floor at 0). Half an ulp would demand the
 * correctly rounded result, which fp32 arithmetic cannot promise when r lies
 * within B of a rounding boundary (there the fp32 result may round either
 * way: a 1-ulp difference with the ratio |err| / bound just below 1, which
 * the summary lines show). More than 1 ulp is not needed, and would hide
 * intermediate fp16 roundings (say x - mean in half precision), which
 * tolerance_bites_fp16 in test_family.c shows this bound rejects. The inputs
 * of FLOAT16 tests are rounded to fp16 before the oracle sees them, so the
 * oracle and the library start from the same values. NaN must be NaN,
 * infinities must match.
 *
 * The fp16 conversions below are the tests' own (bit manipulation, round to
 * nearest even), independent of inorm_float_to_half; test_family.c checks
 * the library's conversions against them and against hand-written values.
 */
uint16_t tu_half_from_double(double v);
float tu_half_to_float(uint16_t h);
/* v rounded to the nearest half, as a double (NaN and infinities kept). */
double tu_round_half(double v);
/* 1 ulp of fp16 at |v|: 2^(floor(log2|v|) - 10), at least 2^-24. */
double tu_half_ulp(double v);
/* Rounds n floats to fp16 values in place. */
void tu_round_to_half(float *v, size_t n);

/* A tensor of shape s, dtype and layout; data (o_count floats, in the
 * tensor's layout, representable in its dtype) uploaded when not NULL. */
inorm_tensor *tu_tensor_fmt(inorm_context *ctx, o_shape s, inorm_dtype dtype, inorm_layout layout,
                            const float *data);
/* Upload/download count elements of t, converting floats from/to t's dtype
 * (a FLOAT16 upload asserts that the floats are representable). */
void tu_upload_fmt(inorm_context *ctx, inorm_tensor *t, const float *src, size_t count);
void tu_download_fmt(inorm_context *ctx, const inorm_tensor *t, float *dst, size_t count);
const char *tu_dtype_name(inorm_dtype d);
const char *tu_layout_name(inorm_layout l);

/* FLOAT32: tu_compare with TU_K. FLOAT16: each want rounded to fp16, bound
 * tu_half_ulp(ref) + TU_K * FLT_EPSILON * mag (see above). */
tu_cmp tu_compare_fmt(inorm_dtype dtype, const float *got, const double *want, const double *mag, size_t n);
/* As tu_assert_cmp, decoding the index in the given layout. */
void tu_assert_cmp_fmt(const char *what, o_shape s, inorm_layout layout, const tu_cmp *r, const char *tol_desc);
/* tu_compare_fmt + tu_assert_cmp_fmt; returns the worst |err| / bound. */
double tu_assert_close_fmt(const char *what, o_shape s, inorm_dtype dtype, inorm_layout layout, const float *got,
                           const double *want, const double *mag);

/* Returns a printf-formatted string in a static rotating buffer. */
const char *tu_fmt(const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* tu_run(suite): the exit status for main() (check_run.h). */
#include "check_run.h"

#endif
