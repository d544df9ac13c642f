/* Shared test helpers; see test_util.h (the tolerance is justified there). */
#define _POSIX_C_SOURCE 200809L
#include "test_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ RNG -- */

/* splitmix64 for the seed, then xorshift64* for the stream. */
void tu_rng_seed(tu_rng *r, uint64_t seed)
{
    uint64_t z = seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    r->s = z ? z : 0x2545F4914F6CDD1Dull;
}

uint64_t tu_rng_next(tu_rng *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

double tu_rng_uniform(tu_rng *r, double lo, double hi)
{
    /* 53 random bits -> [0, 1) */
    double u = (double)(tu_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return lo + (hi - lo) * u;
}

double tu_rng_normal(tu_rng *r)
{
    const double two_pi = 6.283185307179586476925286766559;
    double u1 = 1.0 - tu_rng_uniform(r, 0.0, 1.0); /* (0, 1] so log is finite */
    double u2 = tu_rng_uniform(r, 0.0, 1.0);
    return sqrt(-2.0 * log(u1)) * cos(two_pi * u2);
}

void tu_fill_uniform(tu_rng *r, float *dst, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)tu_rng_uniform(r, lo, hi);
}

void tu_fill_normal(tu_rng *r, float *dst, size_t n, double mean, double sd)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)(mean + sd * tu_rng_normal(r));
}

void *tu_malloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    ck_assert_msg(p != NULL, "test harness: out of memory allocating %zu bytes", bytes);
    return p;
}

float *tu_floats(size_t n) { return (float *)tu_malloc(n * sizeof(float)); }
double *tu_doubles(size_t n) { return (double *)tu_malloc(n * sizeof(double)); }

/* ------------------------------------------------------------- backends -- */

static inorm_backend g_backends[2] = {INORM_BACKEND_CPU, INORM_BACKEND_VULKAN};
static int g_backend_count = 2;

int tu_env_flag(const char *name)
{
    const char *v = getenv(name);
    return v && strcmp(v, "1") == 0;
}

void tu_init(void)
{
    /* The tests pick backends explicitly; an INORM_BACKEND override would
     * silently turn "Vulkan" tests into CPU tests. */
    if (getenv("INORM_BACKEND")) {
        fprintf(stderr, "note: ignoring INORM_BACKEND=%s in the tests\n", getenv("INORM_BACKEND"));
        unsetenv("INORM_BACKEND");
    }
    const char *sel = getenv("INORM_TEST_BACKENDS");
    if (sel && sel[0]) {
        g_backend_count = 0;
        if (strstr(sel, "cpu"))
            g_backends[g_backend_count++] = INORM_BACKEND_CPU;
        if (strstr(sel, "vulkan"))
            g_backends[g_backend_count++] = INORM_BACKEND_VULKAN;
        if (g_backend_count == 0) {
            fprintf(stderr, "INORM_TEST_BACKENDS=%s names no backend (cpu, vulkan)\n", sel);
            exit(EXIT_FAILURE);
        }
    }
    /* Results are printed as they go: keep stdout unbuffered-ish so lines of
     * the forked tests come out in order. */
    setvbuf(stdout, NULL, _IOLBF, 0);
}

int tu_backend_count(void) { return g_backend_count; }

inorm_backend tu_backend(int i)
{
    /* no ck_assert here: main() calls this outside any test */
    if (i < 0 || i >= g_backend_count) {
        fprintf(stderr, "backend loop index %d out of range\n", i);
        abort();
    }
    return g_backends[i];
}

const char *tu_backend_name(inorm_backend b)
{
    switch (b) {
    case INORM_BACKEND_AUTO: return "auto";
    case INORM_BACKEND_VULKAN: return "vulkan";
    case INORM_BACKEND_CPU: return "cpu";
    }
    return "?";
}

void tu_add_backend_loop(TCase *tc, const TTest *test)
{
    tcase_add_loop_test(tc, test, 0, g_backend_count);
}

inorm_context *tu_ctx_create(inorm_backend b) { return tu_ctx_create_flags(b, 0u); }

inorm_context *tu_ctx_create_flags(inorm_backend b, uint32_t flags)
{
    inorm_context_desc d = INORM_CONTEXT_DESC_DEFAULT;
    d.backend = b;
    d.validation = b == INORM_BACKEND_VULKAN ? 1 : 0;
    d.flags = flags;

    char msg[1024];
    msg[0] = '\0';
    inorm_context *ctx = NULL;
    inorm_status st = inorm_context_create_ex(&d, &ctx, msg, sizeof msg);
    if (st == INORM_ERROR_NO_DEVICE && b == INORM_BACKEND_VULKAN &&
        tu_env_flag("INORM_TEST_ALLOW_NO_VULKAN")) {
        printf("SKIP %s: no Vulkan device (%s) and INORM_TEST_ALLOW_NO_VULKAN=1\n",
               tcase_name(), msg);
        return NULL;
    }
    ck_assert_msg(st == INORM_SUCCESS,
                  "creating a %s context failed: %s (%d): \"%s\"%s", tu_backend_name(b),
                  inorm_status_string(st), (int)st, msg,
                  b == INORM_BACKEND_VULKAN
                      ? " (a missing Vulkan device is a failure; set INORM_TEST_ALLOW_NO_VULKAN=1 "
                        "to skip the Vulkan tests)"
                      : "");
    ck_assert_msg(ctx != NULL, "context_create returned success and a NULL context");
    ck_assert_msg(inorm_context_error(ctx) != NULL && inorm_context_error(ctx)[0] == '\0',
                  "a fresh %s context has error text \"%s\"", tu_backend_name(b),
                  inorm_context_error(ctx) ? inorm_context_error(ctx) : "(NULL)");

    inorm_device_info info;
    memset(&info, 0, sizeof info);
    st = inorm_context_info(ctx, &info);
    ck_assert_msg(st == INORM_SUCCESS, "inorm_context_info: %s: %s", inorm_status_string(st),
                  inorm_context_error(ctx));
    ck_assert_msg(info.backend == b, "asked for a %s context, got backend %s (%d)",
                  tu_backend_name(b), tu_backend_name(info.backend), (int)info.backend);
    if (b == INORM_BACKEND_VULKAN) {
        ck_assert_msg(info.type != INORM_DEVICE_TYPE_CPU_PATH,
                      "Vulkan context reports device type CPU_PATH");
        if (tu_env_flag("INORM_REQUIRE_VALIDATION"))
            ck_assert_msg(info.validation_enabled,
                          "INORM_REQUIRE_VALIDATION=1 but the validation layer is not active on "
                          "device \"%s\" (is VK_LAYER_KHRONOS_validation installed?)",
                          info.name);
        if (tu_env_flag("INORM_DISABLE_SUBGROUPS") ||
            (flags & INORM_CONTEXT_DISABLE_SUBGROUP_OPS))
            ck_assert_msg(!info.subgroup_ops_used,
                          "subgroup ops disabled (env or flag) but info.subgroup_ops_used = %d",
                          info.subgroup_ops_used);
    } else {
        ck_assert_msg(info.type == INORM_DEVICE_TYPE_CPU_PATH,
                      "CPU context reports device type %d, want INORM_DEVICE_TYPE_CPU_PATH",
                      (int)info.type);
    }
    return ctx;
}

/* Runs inorm_context_destroy with fd 2 redirected to a temporary file, then
 * replays what was written and returns whether it holds a validation error. */
static int destroy_capturing_stderr(inorm_context *ctx)
{
    FILE *tmp = tmpfile();
    int saved = tmp ? dup(2) : -1;
    if (!tmp || saved < 0) {
        if (tmp)
            fclose(tmp);
        inorm_context_destroy(ctx);
        return 0;
    }
    fflush(stderr);
    dup2(fileno(tmp), 2);
    inorm_context_destroy(ctx);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);

    int found = 0;
    rewind(tmp);
    char line[4096];
    while (fgets(line, sizeof line, tmp)) {
        fputs(line, stderr);
        if (strstr(line, "VUID-") || strstr(line, "Validation Error"))
            found = 1;
    }
    fclose(tmp);
    return found;
}

static void ctx_destroy(inorm_context *ctx, int finish_first)
{
    if (!ctx)
        return;
    inorm_device_info info;
    memset(&info, 0, sizeof info);
    ck_assert_int_eq(inorm_context_info(ctx, &info), INORM_SUCCESS);
    if (finish_first) {
        inorm_status st = inorm_context_finish(ctx);
        ck_assert_msg(st == INORM_SUCCESS, "inorm_context_finish: %s: %s", inorm_status_string(st),
                      inorm_context_error(ctx));
    }
    uint32_t count = inorm_context_validation_message_count(ctx);
    if (info.backend == INORM_BACKEND_VULKAN) {
        ck_assert_msg(count == 0,
                      "the Vulkan validation layer reported %u message(s) during this test "
                      "(see stderr)",
                      count);
        int found = destroy_capturing_stderr(ctx);
        ck_assert_msg(!found, "the validation layer reported an error while destroying the "
                              "context (see stderr above)");
    } else {
        ck_assert_msg(count == 0, "CPU context reports %u validation messages", count);
        inorm_context_destroy(ctx);
    }
}

void tu_ctx_destroy(inorm_context *ctx) { ctx_destroy(ctx, 1); }
void tu_ctx_destroy_pending(inorm_context *ctx) { ctx_destroy(ctx, 0); }

/* ------------------------------------------------------------- tensors -- */

inorm_tensor_desc tu_desc(uint32_t n, uint32_t c, uint32_t h, uint32_t w)
{
    inorm_tensor_desc d;
    memset(&d, 0, sizeof d);
    d.n = n;
    d.c = c;
    d.h = h;
    d.w = w;
    d.dtype = INORM_FLOAT32;
    d.layout = INORM_NCHW;
    return d;
}

inorm_tensor_desc tu_desc_s(o_shape s) { return tu_desc(s.n, s.c, s.h, s.w); }

o_shape tu_shape(uint32_t n, uint32_t c, uint32_t h, uint32_t w)
{
    o_shape s;
    s.n = n;
    s.c = c;
    s.h = h;
    s.w = w;
    return s;
}

const char *tu_fmt(const char *fmt, ...)
{
    static char bufs[8][768];
    static unsigned next;
    char *b = bufs[next++ % 8];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof bufs[0], fmt, ap);
    va_end(ap);
    return b;
}

const char *tu_shape_str(o_shape s) { return tu_fmt("%ux%ux%ux%u", s.n, s.c, s.h, s.w); }

inorm_tensor *tu_tensor(inorm_context *ctx, o_shape s, const float *data)
{
    inorm_tensor_desc d = tu_desc_s(s);
    inorm_tensor *t = NULL;
    inorm_status st = inorm_tensor_create(ctx, &d, &t);
    ck_assert_msg(st == INORM_SUCCESS && t != NULL, "inorm_tensor_create(%s): %s: %s",
                  tu_shape_str(s), inorm_status_string(st), inorm_context_error(ctx));
    if (data)
        tu_upload(ctx, t, data, o_count(s));
    return t;
}

void tu_upload(inorm_context *ctx, inorm_tensor *t, const float *src, size_t count)
{
    inorm_status st = inorm_tensor_write(t, src, count * sizeof(float));
    ck_assert_msg(st == INORM_SUCCESS, "inorm_tensor_write(%zu floats): %s: %s", count,
                  inorm_status_string(st), inorm_context_error(ctx));
}

void tu_download(inorm_context *ctx, const inorm_tensor *t, float *dst, size_t count)
{
    inorm_status st = inorm_tensor_read(t, dst, count * sizeof(float));
    ck_assert_msg(st == INORM_SUCCESS, "inorm_tensor_read(%zu floats): %s: %s", count,
                  inorm_status_string(st), inorm_context_error(ctx));
}

void tu_expect_status(const inorm_context *ctx, inorm_status st, inorm_status want,
                      const char *call, const char *file, int line)
{
    const char *err = ctx ? inorm_context_error(ctx) : inorm_context_error(NULL);
    ck_assert_msg(st == want, "%s:%d: %s returned %s (%d), expected %s (%d); error text: \"%s\"",
                  file, line, call, inorm_status_string(st), (int)st, inorm_status_string(want),
                  (int)want, err ? err : "(NULL)");
    if (want != INORM_SUCCESS) {
        ck_assert_msg(err != NULL && err[0] != '\0',
                      "%s:%d: %s failed with %s as expected but left no error text", file, line,
                      call, inorm_status_string(st));
    }
}

/* ---------------------------------------------------------- comparison -- */

static void cmp_init(tu_cmp *r, size_t n)
{
    memset(r, 0, sizeof *r);
    r->count = n;
}

static void cmp_add(tu_cmp *r, size_t i, double g, double w, double bound)
{
    int ok;
    double ratio = 0.0;
    if (isnan(w)) {
        ok = isnan(g);
    } else if (!isfinite(g) || !isfinite(w)) {
        ok = g == w; /* infinities must match exactly; NaN never equals */
    } else {
        double d = fabs(g - w);
        ok = d <= bound;
        ratio = bound > 0 ? d / bound : (d > 0 ? INFINITY : 0.0);
    }
    if (ratio > r->worst_ratio) {
        r->worst_ratio = ratio;
        r->worst_index = i;
    }
    if (!ok) {
        if (r->bad == 0) {
            r->first_bad = i;
            r->got = g;
            r->want = w;
            r->bound = bound;
        }
        r->bad++;
    }
}

tu_cmp tu_compare(const float *got, const double *want, const double *mag, size_t n, double k)
{
    tu_cmp r;
    cmp_init(&r, n);
    for (size_t i = 0; i < n; i++)
        cmp_add(&r, i, (double)got[i], want[i], k * (double)FLT_EPSILON * mag[i]);
    return r;
}

tu_cmp tu_compare_absrel(const float *got, const double *want, size_t n, double abs_tol,
                         double rel_tol)
{
    tu_cmp r;
    cmp_init(&r, n);
    for (size_t i = 0; i < n; i++)
        cmp_add(&r, i, (double)got[i], want[i], abs_tol + rel_tol * fabs(want[i]));
    return r;
}

void tu_assert_cmp(const char *what, o_shape s, const tu_cmp *r, const char *tol_desc)
{
    if (r->bad == 0)
        return;
    size_t i = r->first_bad;
    size_t hw = o_plane(s);
    unsigned w = (unsigned)(i % s.w), h = (unsigned)((i / s.w) % s.h);
    unsigned c = (unsigned)((i / hw) % s.c), n = (unsigned)(i / (hw * s.c));
    ck_abort_msg("%s, shape %s: %zu of %zu elements outside the tolerance (%s); first at index "
                 "%zu (n=%u c=%u h=%u w=%u): got %.9g, want %.9g, |diff| %.3g > bound %.3g",
                 what, tu_shape_str(s), r->bad, r->count, tol_desc, i, n, c, h, w, r->got,
                 r->want, fabs(r->got - r->want), r->bound);
}

double tu_assert_close(const char *what, o_shape s, const float *got, const double *want,
                       const double *mag)
{
    tu_cmp r = tu_compare(got, want, mag, o_count(s), TU_K);
    tu_assert_cmp(what, s, &r, "K*FLT_EPSILON*mag, K=64");
    return r.worst_ratio;
}

size_t tu_check_stats(o_shape s, const float *got_mean, const float *got_std,
                      const double *ref_mean, const double *ref_std, const double *ref_sigma,
                      char *msg, size_t msg_size)
{
    size_t nc = (size_t)s.n * s.c, bad = 0;
    if (msg_size)
        msg[0] = '\0';
    for (size_t i = 0; i < nc; i++) {
        if (got_mean) {
            double bound = TU_K * FLT_EPSILON * (fabs(ref_mean[i]) + ref_sigma[i]);
            double g = got_mean[i];
            int ok = isnan(ref_mean[i]) ? isnan(g) : fabs(g - ref_mean[i]) <= bound;
            if (!ok && bad++ == 0)
                snprintf(msg, msg_size,
                         "mean of plane %zu (n=%zu c=%zu): got %.9g, want %.9g, |diff| %.3g > "
                         "bound %.3g (K*FLT_EPSILON*(|mean|+sigma), K=64)",
                         i, i / s.c, i % s.c, g, ref_mean[i], fabs(g - ref_mean[i]), bound);
        }
        if (got_std) {
            double bound = TU_STD_REL_TOL * fabs(ref_std[i]);
            double g = got_std[i];
            int ok = isnan(ref_std[i]) ? isnan(g) : fabs(g - ref_std[i]) <= bound;
            if (!ok && bad++ == 0)
                snprintf(msg, msg_size,
                         "std of plane %zu (n=%zu c=%zu): got %.9g, want %.9g, relative error "
                         "%.3g > %.1g",
                         i, i / s.c, i % s.c, g, ref_std[i],
                         fabs(g - ref_std[i]) / fabs(ref_std[i]), TU_STD_REL_TOL);
        }
    }
    return bad;
}

void tu_assert_stats(const char *what, o_shape s, const float *got_mean, const float *got_std,
                     const double *ref_mean, const double *ref_std, const double *ref_sigma)
{
    char msg[512];
    size_t bad = tu_check_stats(s, got_mean, got_std, ref_mean, ref_std, ref_sigma, msg,
                                sizeof msg);
    ck_assert_msg(bad == 0, "%s, shape %s: %zu statistic(s) outside the tolerance; first: %s",
                  what, tu_shape_str(s), bad, msg);
}

/* ------------------------------------------------- FLOAT16 and NHWC -- */

/* Round to nearest even on the bits of the double: the 53-bit significand
 * is shifted down to the half's 11 bits (normal) or to units of 2^-24
 * (subnormal), and the dropped bits decide the rounding. */
uint16_t tu_half_from_double(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    uint16_t sign = (uint16_t)((b >> 48) & 0x8000u);
    unsigned exp = (unsigned)((b >> 52) & 0x7ffu);
    uint64_t man = b & ((1ull << 52) - 1);
    if (exp == 0x7ffu)
        return (uint16_t)(sign | (man ? 0x7e00u : 0x7c00u));
    if (exp == 0)
        return sign; /* zero or a double subnormal: far below 2^-25 */
    int e = (int)exp - 1023; /* v = sig * 2^(e - 52) */
    if (e > 15)
        return (uint16_t)(sign | 0x7c00u);
    uint64_t sig = man | (1ull << 52);
    int shift = e >= -14 ? 42 : 28 - e; /* normal: keep 11 bits; subnormal: units of 2^-24 */
    if (shift > 53)
        return sign; /* below 2^-25: rounds to zero */
    uint64_t q = sig >> shift, rem = sig & ((1ull << shift) - 1), halfway = 1ull << (shift - 1);
    if (rem > halfway || (rem == halfway && (q & 1u)))
        q++;
    if (e < -14)
        return (uint16_t)(sign | q); /* q == 1024 is 0x0400, the smallest normal */
    unsigned he = (unsigned)(e + 15);
    if (q == 2048) {
        q = 1024;
        he++;
    }
    if (he >= 31)
        return (uint16_t)(sign | 0x7c00u);
    return (uint16_t)(sign | (he << 10) | (unsigned)(q - 1024));
}

float tu_half_to_float(uint16_t h)
{
    unsigned e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    double v;
    if (e == 0x1f)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = (double)m * 0x1p-24;
    else
        v = (double)(1024u + m) * ldexp(1.0, (int)e - 25);
    return (float)((h & 0x8000u) ? copysign(v, -1.0) : v);
}

double tu_round_half(double v) { return (double)tu_half_to_float(tu_half_from_double(v)); }

double tu_half_ulp(double v)
{
    double a = fabs(v);
    if (!(a >= 0x1p-14))
        return 0x1p-24; /* subnormal spacing; also 0 and NaN */
    if (isinf(a))
        return 0x1p5;
    int e;
    frexp(a, &e); /* a = f * 2^e, f in [0.5, 1): floor(log2 a) = e - 1 */
    return ldexp(1.0, e - 1 - 10);
}

void tu_round_to_half(float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (float)tu_round_half(v[i]);
}

const char *tu_dtype_name(inorm_dtype d) { return d == INORM_FLOAT16 ? "FLOAT16" : "FLOAT32"; }
const char *tu_layout_name(inorm_layout l) { return l == INORM_NHWC ? "NHWC" : "NCHW"; }

inorm_tensor *tu_tensor_fmt(inorm_context *ctx, o_shape s, inorm_dtype dtype, inorm_layout layout,
                            const float *data)
{
    inorm_tensor_desc d = tu_desc_s(s);
    d.dtype = dtype;
    d.layout = layout;
    inorm_tensor *t = NULL;
    inorm_status st = inorm_tensor_create(ctx, &d, &t);
    ck_assert_msg(st == INORM_SUCCESS && t != NULL, "inorm_tensor_create(%s %s %s): %s: %s", tu_shape_str(s),
                  tu_dtype_name(dtype), tu_layout_name(layout), inorm_status_string(st), inorm_context_error(ctx));
    if (data)
        tu_upload_fmt(ctx, t, data, o_count(s));
    return t;
}

void tu_upload_fmt(inorm_context *ctx, inorm_tensor *t, const float *src, size_t count)
{
    inorm_tensor_desc d;
    ck_assert_int_eq(inorm_tensor_get_desc(t, &d), INORM_SUCCESS);
    if (d.dtype == INORM_FLOAT32) {
        tu_upload(ctx, t, src, count);
        return;
    }
    uint16_t *h = (uint16_t *)tu_malloc(count * sizeof *h);
    size_t bad = count;
    for (size_t i = 0; i < count; i++) {
        h[i] = tu_half_from_double(src[i]);
        float back = tu_half_to_float(h[i]);
        if (bad == count && !(back == src[i] || (isnan(back) && isnan(src[i]))))
            bad = i; /* no ck_assert per element: each one writes to Check's pipe */
    }
    ck_assert_msg(bad == count, "test harness: FLOAT16 upload of %.9g (element %zu), which is not a half",
                  bad < count ? (double)src[bad] : 0.0, bad);
    inorm_status st = inorm_tensor_write(t, h, count * sizeof *h);
    ck_assert_msg(st == INORM_SUCCESS, "inorm_tensor_write(%zu halves): %s: %s", count, inorm_status_string(st),
                  inorm_context_error(ctx));
    free(h);
}

void tu_download_fmt(inorm_context *ctx, const inorm_tensor *t, float *dst, size_t count)
{
    inorm_tensor_desc d;
    ck_assert_int_eq(inorm_tensor_get_desc(t, &d), INORM_SUCCESS);
    if (d.dtype == INORM_FLOAT32) {
        tu_download(ctx, t, dst, count);
        return;
    }
    uint16_t *h = (uint16_t *)tu_malloc(count * sizeof *h);
    inorm_status st = inorm_tensor_read(t, h, count * sizeof *h);
    ck_assert_msg(st == INORM_SUCCESS, "inorm_tensor_read(%zu halves): %s: %s", count, inorm_status_string(st),
                  inorm_context_error(ctx));
    for (size_t i = 0; i < count; i++)
        dst[i] = tu_half_to_float(h[i]);
    free(h);
}

tu_cmp tu_compare_fmt(inorm_dtype dtype, const float *got, const double *want, const double *mag, size_t n)
{
    if (dtype == INORM_FLOAT32)
        return tu_compare(got, want, mag, n, TU_K);
    tu_cmp r;
    cmp_init(&r, n);
    for (size_t i = 0; i < n; i++) {
        double ref = tu_round_half(want[i]);
        cmp_add(&r, i, (double)got[i], ref, tu_half_ulp(ref) + TU_K * (double)FLT_EPSILON * mag[i]);
    }
    return r;
}

void tu_assert_cmp_fmt(const char *what, o_shape s, inorm_layout layout, const tu_cmp *r, const char *tol_desc)
{
    if (r->bad == 0)
        return;
    size_t i = r->first_bad;
    size_t hw = o_plane(s);
    unsigned n, c, p;
    if (layout == INORM_NHWC) {
        c = (unsigned)(i % s.c);
        p = (unsigned)((i / s.c) % hw);
        n = (unsigned)(i / ((size_t)s.c * hw));
    } else {
        p = (unsigned)(i % hw);
        c = (unsigned)((i / hw) % s.c);
        n = (unsigned)(i / (hw * s.c));
    }
    ck_abort_msg("%s, shape %s %s: %zu of %zu elements outside the tolerance (%s); first at index %zu "
                 "(n=%u c=%u h=%u w=%u): got %.9g, want %.9g, |diff| %.3g > bound %.3g",
                 what, tu_shape_str(s), tu_layout_name(layout), r->bad, r->count, tol_desc, i, n, c, p / s.w,
                 p % s.w, r->got, r->want, fabs(r->got - r->want), r->bound);
}

double tu_assert_close_fmt(const char *what, o_shape s, inorm_dtype dtype, inorm_layout layout, const float *got,
                           const double *want, const double *mag)
{
    tu_cmp r = tu_compare_fmt(dtype, got, want, mag, o_count(s));
    tu_assert_cmp_fmt(what, s, layout, &r,
                      dtype == INORM_FLOAT16 ? "fp16: 1 ulp at |fp16(ref)| + K*FLT_EPSILON*mag, K=64"
                                             : "K*FLT_EPSILON*mag, K=64");
    return r.worst_ratio;
}

TCase *tu_add_backend_case(Suite *s, const char *name, const TTest *test, double timeout_seconds)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, timeout_seconds);
    TU_ADD_BACKEND_TEST(tc, test);
    suite_add_tcase(s, tc);
    return tc;
}
