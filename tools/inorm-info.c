/*
 * inorm-info — lists the devices inorm can run on, then runs instance norm
 * and AdaIN on each of them, checks every Vulkan result against the CPU
 * path and times the ops.
 *
 * Uses only the public API in inorm.h.
 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime, unsetenv */
#endif

#include "inorm.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* An op passes when every element has |y - ref| <= TOLERANCE * (1 + |ref|),
 * i.e. an absolute and a relative tolerance of 1e-4 added. */
#define TOLERANCE 1e-4

#define DEFAULT_RUNS 5
#define MAX_RUNS 10000

/* ------------------------------------------------------------------------- */
/* Small utilities                                                            */
/* ------------------------------------------------------------------------- */

static void out_of_memory(void)
{
    fputs("inorm-info: out of memory\n", stderr);
    exit(2);
}

static void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        out_of_memory();
    return p;
}

static void *xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        out_of_memory();
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n);
    memcpy(p, s, n);
    return p;
}

#if defined(__GNUC__) || defined(__clang__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

static char *xvasprintf(const char *fmt, va_list ap) PRINTF_LIKE(1, 0);
static char *xvasprintf(const char *fmt, va_list ap)
{
    va_list ap2;
    int n;
    char *s;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return xstrdup("(formatting error)");
    s = xmalloc((size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

static char *xasprintf(const char *fmt, ...) PRINTF_LIKE(1, 2);
static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    s = xvasprintf(fmt, ap);
    va_end(ap);
    return s;
}

/* A growable list of owned strings. */
typedef struct strlist {
    char **items;
    size_t count, cap;
} strlist;

static void strlist_push(strlist *l, char *owned)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        char **items = realloc(l->items, cap * sizeof *items);
        if (!items)
            out_of_memory();
        l->items = items;
        l->cap = cap;
    }
    l->items[l->count++] = owned;
}

static void strlist_pushf(strlist *l, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void strlist_pushf(strlist *l, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    strlist_push(l, xvasprintf(fmt, ap));
    va_end(ap);
}

static void strlist_free(strlist *l)
{
    size_t i;

    for (i = 0; i < l->count; ++i)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->count = l->cap = 0;
}

static int str_ieq(const char *a, const char *b)
{
    for (; *a && *b; ++a, ++b)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
    return *a == *b;
}

/* Case-insensitive substring search. */
static int str_icontains(const char *haystack, const char *needle)
{
    size_t i, j, hn = strlen(haystack), nn = strlen(needle);

    if (nn == 0)
        return 1;
    for (i = 0; i + nn <= hn; ++i) {
        for (j = 0; j < nn; ++j)
            if (tolower((unsigned char)haystack[i + j]) != tolower((unsigned char)needle[j]))
                break;
        if (j == nn)
            return 1;
    }
    return 0;
}

/* Parses a whole string as a non-negative decimal int; -1 if it is not one. */
static long parse_index(const char *s)
{
    long v = 0;

    if (!*s)
        return -1;
    for (; *s; ++s) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
        if (v > 1000000)
            return -1;
    }
    return v;
}

static double now_seconds(void)
{
    struct timespec ts;

#if defined(CLOCK_MONOTONIC)
    if (clock_gettime(CLOCK_MONOTONIC, &ts) == 0)
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    return 0.0;
#else /* no POSIX clocks (Windows): C11 timespec_get, which bionic has only from API 29 */
    if (timespec_get(&ts, TIME_UTC) == 0)
        return 0.0;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
#endif
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, size_t n)
{
    double *s, m;

    if (n == 0)
        return 0.0;
    s = xmalloc(n * sizeof *s);
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    m = (n % 2) ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    return m;
}

/* Removes a variable from the environment of this process. */
static void env_unset(const char *name)
{
#if defined(_WIN32)
    char buf[64];
    snprintf(buf, sizeof buf, "%s=", name);
    _putenv(buf);
#else
    unsetenv(name);
#endif
}

/* ------------------------------------------------------------------------- */
/* Deterministic pseudo-random data                                           */
/* ------------------------------------------------------------------------- */

typedef struct rng {
    uint64_t state;
} rng;

static rng rng_make(uint64_t seed)
{
    rng r;
    r.state = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    return r;
}

/* Uniform in [0, 1), 24 random bits: the same floats on every platform. */
static float rng_unit(rng *r)
{
    uint64_t z;

    r->state += 0x9E3779B97F4A7C15ull; /* splitmix64 */
    z = r->state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

static float rng_range(rng *r, float lo, float hi)
{
    return lo + (hi - lo) * rng_unit(r);
}

/* ------------------------------------------------------------------------- */
/* Benchmark cases                                                            */
/* ------------------------------------------------------------------------- */

typedef struct shape4 {
    uint32_t n, c, h, w;
} shape4;

static size_t shape_elems(shape4 s)
{
    return (size_t)s.n * s.c * s.h * s.w;
}

static void shape_format(char *buf, size_t size, shape4 s)
{
    snprintf(buf, size, "%" PRIu32 "x%" PRIu32 "x%" PRIu32 "x%" PRIu32, s.n, s.c, s.h, s.w);
}

typedef enum op_kind { OP_INSTANCE_NORM, OP_ADAIN } op_kind;

static const char *op_name(op_kind op)
{
    return op == OP_INSTANCE_NORM ? "instance_norm" : "adain";
}

typedef struct bench_case {
    op_kind op;
    shape4 x, style;   /* style: AdaIN only */
    float *x_data;     /* content / input, NCHW */
    float *gamma;      /* instance norm: C values */
    float *beta;       /* instance norm: C values */
    float *style_data; /* AdaIN: style, NCHW */
} bench_case;

/* Content shapes, and for AdaIN a style of another H and W (the last one
 * with N = 1, one style for the whole batch). */
static const struct {
    shape4 x, style;
} k_shapes[] = {
    { { 1, 64, 64, 64 }, { 1, 64, 48, 40 } },
    { { 1, 3, 512, 512 }, { 1, 3, 256, 384 } },
    { { 4, 32, 17, 23 }, { 1, 32, 29, 11 } },
};
#define NUM_SHAPES (sizeof k_shapes / sizeof k_shapes[0])
#define NUM_CASES (2 * NUM_SHAPES)

/* Fills an NCHW tensor: each (n, c) plane gets its own offset and spread. */
static float *make_planes(shape4 s, uint64_t seed, float off_lo, float off_hi, float amp_lo,
                          float amp_hi)
{
    size_t plane = (size_t)s.h * s.w, planes = (size_t)s.n * s.c, p, i;
    float *v = xmalloc(shape_elems(s) * sizeof *v);
    rng r = rng_make(seed);

    for (p = 0; p < planes; ++p) {
        float off = rng_range(&r, off_lo, off_hi);
        float amp = rng_range(&r, amp_lo, amp_hi);
        for (i = 0; i < plane; ++i)
            v[p * plane + i] = off + amp * (2.0f * rng_unit(&r) - 1.0f);
    }
    return v;
}

static float *make_vector(uint32_t count, uint64_t seed, float lo, float hi)
{
    float *v = xmalloc((size_t)count * sizeof *v);
    rng r = rng_make(seed);
    uint32_t i;

    for (i = 0; i < count; ++i)
        v[i] = rng_range(&r, lo, hi);
    return v;
}

static void cases_init(bench_case *cases)
{
    size_t i;

    for (i = 0; i < NUM_SHAPES; ++i) {
        bench_case *in = &cases[2 * i], *ad = &cases[2 * i + 1];
        uint64_t seed = 1000 * (uint64_t)(i + 1);

        memset(in, 0, sizeof *in);
        in->op = OP_INSTANCE_NORM;
        in->x = k_shapes[i].x;
        in->x_data = make_planes(in->x, seed + 1, -3.0f, 3.0f, 0.25f, 4.0f);
        in->gamma = make_vector(in->x.c, seed + 2, 0.5f, 1.5f);
        in->beta = make_vector(in->x.c, seed + 3, -0.5f, 0.5f);

        memset(ad, 0, sizeof *ad);
        ad->op = OP_ADAIN;
        ad->x = k_shapes[i].x;
        ad->style = k_shapes[i].style;
        ad->x_data = make_planes(ad->x, seed + 4, -3.0f, 3.0f, 0.25f, 4.0f);
        ad->style_data = make_planes(ad->style, seed + 5, -2.0f, 2.0f, 0.25f, 3.0f);
    }
}

static void cases_free(bench_case *cases)
{
    size_t i;

    for (i = 0; i < NUM_CASES; ++i) {
        free(cases[i].x_data);
        free(cases[i].gamma);
        free(cases[i].beta);
        free(cases[i].style_data);
    }
}

/* ------------------------------------------------------------------------- */
/* Running the ops                                                            */
/* ------------------------------------------------------------------------- */

typedef enum result_state {
    RESULT_NOT_RUN = 0,
    RESULT_FAILED,   /* an API call failed */
    RESULT_SKIPPED,  /* not run: the device was lost earlier */
    RESULT_DONE      /* ran; see compared / within_tol */
} result_state;

typedef struct result {
    result_state state;
    double median_ms;
    double *times_ms; /* `runs` timed runs, in order */
    int compared;     /* errors below are valid */
    double max_abs, max_rel;
    size_t worst;     /* element with the largest rel error */
    float worst_got, worst_ref;
    int within_tol;
    char *error;      /* RESULT_FAILED / RESULT_SKIPPED: why */
    float *out;       /* output (kept for the CPU path: the reference) */
    size_t nonfinite; /* CPU path: outputs that are NaN or Inf (finite inputs) */
    inorm_status status;
} result;

static inorm_tensor_desc tensor_desc(shape4 s)
{
    inorm_tensor_desc d;

    memset(&d, 0, sizeof d);
    d.n = s.n;
    d.c = s.c;
    d.h = s.h;
    d.w = s.w;
    d.dtype = INORM_FLOAT32;
    d.layout = INORM_NCHW;
    return d;
}

/* "what failed: status string: detail" with the context's message. */
static char *api_error(const inorm_context *ctx, const char *what, inorm_status st)
{
    const char *detail = inorm_context_error(ctx);

    if (!detail)
        detail = "";
    return xasprintf("%s failed: %s%s%s", what, inorm_status_string(st), *detail ? ": " : "",
                     detail);
}

/* Runs one case on ctx: a warm-up run, then `runs` timed runs (op followed by
 * inorm_context_finish), then reads the output back into r->out. y starts as
 * NaN everywhere, so an element the op does not write shows as an error. */
static void run_case(inorm_context *ctx, const bench_case *bc, int runs, result *r)
{
    inorm_tensor *x = NULL, *y = NULL, *gamma = NULL, *beta = NULL, *style = NULL;
    inorm_tensor_desc xd = tensor_desc(bc->x), sd = tensor_desc(bc->style);
    inorm_tensor_desc cd = tensor_desc(bc->x);
    inorm_norm_params params = INORM_NORM_PARAMS_DEFAULT;
    size_t elems = shape_elems(bc->x), bytes = elems * sizeof(float), k;
    size_t per_c_bytes = (size_t)bc->x.c * sizeof(float);
    const char *what = "";
    inorm_status st = INORM_SUCCESS;
    float *out = NULL;
    double t0, t1;
    int i;

#define CHECK(name, call)                                                                          \
    do {                                                                                           \
        what = (name);                                                                             \
        st = (call);                                                                               \
        if (st != INORM_SUCCESS)                                                                   \
            goto fail;                                                                             \
    } while (0)

    cd.n = 1; /* gamma, beta: 1 x C x 1 x 1 */
    cd.h = 1;
    cd.w = 1;
    r->times_ms = xcalloc((size_t)runs, sizeof *r->times_ms);
    out = xmalloc(bytes);
    for (k = 0; k < elems; ++k)
        out[k] = NAN;

    CHECK("inorm_tensor_create(x)", inorm_tensor_create(ctx, &xd, &x));
    CHECK("inorm_tensor_write(x)", inorm_tensor_write(x, bc->x_data, bytes));
    CHECK("inorm_tensor_create(y)", inorm_tensor_create(ctx, &xd, &y));
    CHECK("inorm_tensor_write(y)", inorm_tensor_write(y, out, bytes));
    if (bc->op == OP_INSTANCE_NORM) {
        CHECK("inorm_tensor_create(gamma)", inorm_tensor_create(ctx, &cd, &gamma));
        CHECK("inorm_tensor_write(gamma)", inorm_tensor_write(gamma, bc->gamma, per_c_bytes));
        CHECK("inorm_tensor_create(beta)", inorm_tensor_create(ctx, &cd, &beta));
        CHECK("inorm_tensor_write(beta)", inorm_tensor_write(beta, bc->beta, per_c_bytes));
    } else {
        CHECK("inorm_tensor_create(style)", inorm_tensor_create(ctx, &sd, &style));
        CHECK("inorm_tensor_write(style)",
              inorm_tensor_write(style, bc->style_data, shape_elems(bc->style) * sizeof(float)));
    }

    for (i = -1; i < runs; ++i) { /* i == -1: warm-up */
        t0 = now_seconds();
        if (bc->op == OP_INSTANCE_NORM)
            CHECK("inorm_instance_norm", inorm_instance_norm(ctx, x, gamma, beta, &params, y));
        else
            CHECK("inorm_adain", inorm_adain(ctx, x, style, 1.0f, &params, y));
        CHECK("inorm_context_finish", inorm_context_finish(ctx));
        t1 = now_seconds();
        if (i >= 0)
            r->times_ms[i] = (t1 - t0) * 1e3;
    }

    CHECK("inorm_tensor_read(y)", inorm_tensor_read(y, out, bytes));
    r->state = RESULT_DONE;
    r->median_ms = median(r->times_ms, (size_t)runs);
    r->out = out;
    out = NULL;
    goto done;
#undef CHECK

fail:
    r->state = RESULT_FAILED;
    r->status = st;
    r->error = api_error(ctx, what, st);
done:
    free(out);
    inorm_tensor_destroy(style);
    inorm_tensor_destroy(beta);
    inorm_tensor_destroy(gamma);
    inorm_tensor_destroy(y);
    inorm_tensor_destroy(x);
}

/*
 * Compares y with the reference:
 *   max abs err = max |y - ref|
 *   max rel err = max |y - ref| / (1 + |ref|)
 * The "rel" error has an absolute floor: where |ref| >> 1 it is the relative
 * error, near zero (where a relative error means nothing: normalized outputs
 * cross zero everywhere) it is the absolute one. The op passes when
 * |y - ref| <= 1e-4 + 1e-4 |ref| for every element, which is exactly
 * max rel err <= TOLERANCE. A NaN or an Inf on one side only, or two
 * different infinities, is an infinite error; NaN against NaN is none.
 */
static void compare(const float *y, const float *ref, size_t n, result *r)
{
    size_t i;

    r->compared = 1;
    r->max_abs = 0.0;
    r->max_rel = 0.0;
    r->worst = 0;
    r->worst_got = n ? y[0] : 0.0f;
    r->worst_ref = n ? ref[0] : 0.0f;
    for (i = 0; i < n; ++i) {
        double a = y[i], b = ref[i], d, rel;

        if (isnan(a) || isnan(b))
            d = (isnan(a) && isnan(b)) ? 0.0 : INFINITY;
        else if (a == b)
            d = 0.0; /* also equal infinities */
        else
            d = fabs(a - b);
        if (d == 0.0)
            rel = 0.0;
        else
            rel = isfinite(b) ? d / (1.0 + fabs(b)) : INFINITY;
        if (d > r->max_abs)
            r->max_abs = d;
        if (rel > r->max_rel) {
            r->max_rel = rel;
            r->worst = i;
            r->worst_got = y[i];
            r->worst_ref = ref[i];
        }
    }
    r->within_tol = r->max_rel <= TOLERANCE;
}

/* ------------------------------------------------------------------------- */
/* Devices                                                                    */
/* ------------------------------------------------------------------------- */

typedef struct device_run {
    int is_cpu_path;          /* the CPU path, else Vulkan device `index` */
    uint32_t index;
    int have_info;
    inorm_device_info info;   /* inorm_enumerate_devices, or the CPU path context */
    int selected;             /* benchmarked */
    int ctx_ok;               /* the context was created */
    char *ctx_error;          /* why not */
    inorm_device_info ctx_info;
    uint32_t validation_messages;
    result results[NUM_CASES];
} device_run;

typedef struct options {
    int json;
    int validation;
    int runs;
    const char *device; /* NULL: all; "cpu": CPU path only; index; part of a name */
    const char *device_origin; /* "--device " or "INORM_DEVICE=": for messages */
} options;

typedef struct app {
    options opt;
    bench_case cases[NUM_CASES];
    device_run *vk;     /* Vulkan devices */
    uint32_t vk_count;
    int enumerated;     /* inorm_enumerate_devices was called and succeeded */
    device_run cpu;     /* the CPU path: the reference */
    strlist failures;
    strlist notes;
} app;

static const char *device_type_string(inorm_device_type t)
{
    switch (t) {
    case INORM_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
    case INORM_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
    case INORM_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
    case INORM_DEVICE_TYPE_CPU: return "CPU (Vulkan)";
    case INORM_DEVICE_TYPE_CPU_PATH: return "CPU path";
    case INORM_DEVICE_TYPE_OTHER: return "other";
    }
    return "unknown";
}

static const char *backend_string(inorm_backend b)
{
    switch (b) {
    case INORM_BACKEND_VULKAN: return "vulkan";
    case INORM_BACKEND_CPU: return "cpu";
    case INORM_BACKEND_AUTO: return "auto";
    }
    return "unknown";
}

/* VK_MAKE_API_VERSION(variant, major, minor, patch) layout. */
static void api_version_format(char *buf, size_t size, uint32_t v)
{
    if (v == 0)
        snprintf(buf, size, "-");
    else
        snprintf(buf, size, "%" PRIu32 ".%" PRIu32 ".%" PRIu32, (v >> 22) & 0x7Fu,
                 (v >> 12) & 0x3FFu, v & 0xFFFu);
}

static void bytes_format(char *buf, size_t size, uint64_t v)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    double d = (double)v;
    int u = 0;

    while (d >= 1024.0 && u < 6) {
        d /= 1024.0;
        ++u;
    }
    if (u == 0)
        snprintf(buf, size, "%" PRIu64 " B", v);
    else
        snprintf(buf, size, "%.1f %s", d, units[u]);
}

static void device_label(const device_run *d, char *buf, size_t size)
{
    if (d->is_cpu_path)
        snprintf(buf, size, "cpu");
    else
        snprintf(buf, size, "%" PRIu32, d->index);
}

/* Decides which Vulkan devices to run; returns 0 on a bad selector. */
static int select_devices(app *a)
{
    const char *sel = a->opt.device;
    long idx;
    uint32_t i;

    if (!sel) {
        for (i = 0; i < a->vk_count; ++i)
            a->vk[i].selected = 1;
        return 1;
    }
    if (str_ieq(sel, "cpu"))
        return 1;
    idx = parse_index(sel);
    if (idx >= 0) {
        if ((unsigned long)idx >= a->vk_count) {
            fprintf(stderr, "inorm-info: %s%s: no such Vulkan device (%" PRIu32 " found)\n",
                    a->opt.device_origin, sel, a->vk_count);
            return 0;
        }
        a->vk[idx].selected = 1;
        return 1;
    }
    for (i = 0; i < a->vk_count; ++i) {
        if (str_icontains(a->vk[i].info.name, sel)) {
            a->vk[i].selected = 1; /* the first match, as INORM_DEVICE picks */
            return 1;
        }
    }
    fprintf(stderr, "inorm-info: %s%s: no Vulkan device name contains \"%s\"\n",
            a->opt.device_origin, sel, sel);
    return 0;
}

static void enumerate(app *a)
{
    uint32_t count = 0, i;
    inorm_device_info *infos;
    inorm_status st = inorm_enumerate_devices(NULL, &count);

    if (st != INORM_SUCCESS) {
        strlist_pushf(&a->failures, "inorm_enumerate_devices failed: %s", inorm_status_string(st));
        return;
    }
    infos = xcalloc(count, sizeof *infos);
    if (count > 0) {
        st = inorm_enumerate_devices(infos, &count);
        if (st != INORM_SUCCESS) {
            strlist_pushf(&a->failures, "inorm_enumerate_devices failed: %s",
                          inorm_status_string(st));
            free(infos);
            return;
        }
    }
    a->enumerated = 1;
    a->vk_count = count;
    a->vk = xcalloc(count, sizeof *a->vk);
    for (i = 0; i < count; ++i) {
        a->vk[i].index = i;
        a->vk[i].have_info = 1;
        a->vk[i].info = infos[i];
    }
    free(infos);
}

static void bench_device(app *a, device_run *d)
{
    inorm_context_desc desc = INORM_CONTEXT_DESC_DEFAULT;
    inorm_context *ctx = NULL;
    char message[1024] = "";
    char label[32];
    inorm_status st;
    int lost = 0;
    size_t i;

    device_label(d, label, sizeof label);
    if (d->is_cpu_path) {
        desc.backend = INORM_BACKEND_CPU;
    } else {
        desc.backend = INORM_BACKEND_VULKAN;
        desc.device_index = (int)d->index;
        desc.validation = a->opt.validation;
    }

    st = inorm_context_create_ex(&desc, &ctx, message, sizeof message);
    if (st != INORM_SUCCESS) {
        d->ctx_error = xasprintf("inorm_context_create failed: %s%s%s", inorm_status_string(st),
                                 message[0] ? ": " : "", message);
        strlist_pushf(&a->failures, "device %s: %s", label, d->ctx_error);
        return;
    }
    st = inorm_context_info(ctx, &d->ctx_info);
    if (st != INORM_SUCCESS) {
        d->ctx_error = api_error(ctx, "inorm_context_info", st);
        strlist_pushf(&a->failures, "device %s: %s", label, d->ctx_error);
        inorm_context_destroy(ctx);
        return;
    }
    d->ctx_ok = 1;
    if (d->is_cpu_path) {
        d->info = d->ctx_info;
        d->have_info = 1;
    }
    if (d->ctx_info.backend != desc.backend)
        strlist_pushf(&a->failures, "device %s: asked for the %s backend, the context runs on %s",
                      label, backend_string(desc.backend), backend_string(d->ctx_info.backend));
    if (!d->is_cpu_path && a->opt.validation && !d->ctx_info.validation_enabled)
        strlist_pushf(&a->notes,
                      "device %s: validation requested, but the layer is not active "
                      "(VK_LAYER_KHRONOS_validation not installed?)",
                      label);

    for (i = 0; i < NUM_CASES; ++i) {
        result *r = &d->results[i];
        const bench_case *bc = &a->cases[i];
        const result *ref = &a->cpu.results[i];
        char shape[64];

        shape_format(shape, sizeof shape, bc->x);
        if (lost) {
            r->state = RESULT_SKIPPED;
            r->error = xstrdup("not run: the device was lost");
            continue;
        }
        run_case(ctx, bc, a->opt.runs, r);
        if (r->state == RESULT_FAILED) {
            strlist_pushf(&a->failures, "device %s: %s %s: %s", label, op_name(bc->op), shape,
                          r->error);
            if (r->status == INORM_ERROR_DEVICE_LOST)
                lost = 1;
            continue;
        }
        if (d->is_cpu_path) { /* the reference: keep r->out */
            size_t k, n = shape_elems(bc->x);
            for (k = 0; k < n; ++k)
                r->nonfinite += !isfinite(r->out[k]);
            if (r->nonfinite) /* finite inputs: every output must be finite */
                strlist_pushf(&a->failures, "device %s: %s %s: %zu of %zu outputs are not finite",
                              label, op_name(bc->op), shape, r->nonfinite, n);
            continue;
        }
        if (ref->state == RESULT_DONE && ref->out) {
            compare(r->out, ref->out, shape_elems(bc->x), r);
            if (!r->within_tol) {
                size_t plane = (size_t)bc->x.h * bc->x.w, e = r->worst;
                strlist_pushf(&a->failures,
                              "device %s: %s %s: differs from the CPU path by more than "
                              "%g*(1 + |ref|): max abs err %.3g, max rel err %.3g; worst at "
                              "n=%zu c=%zu h=%zu w=%zu: got %.9g, CPU path %.9g",
                              label, op_name(bc->op), shape, TOLERANCE, r->max_abs,
                              r->max_rel, e / plane / bc->x.c, e / plane % bc->x.c,
                              e % plane / bc->x.w, e % bc->x.w, (double)r->worst_got,
                              (double)r->worst_ref);
            }
        }
        free(r->out);
        r->out = NULL;
    }

    d->validation_messages = inorm_context_validation_message_count(ctx);
    if (d->validation_messages > 0)
        strlist_pushf(&a->failures, "device %s: the validation layer reported %" PRIu32
                                    " message(s) (see stderr)",
                      label, d->validation_messages);
    inorm_context_destroy(ctx);
}

static void device_run_free(device_run *d)
{
    size_t i;

    free(d->ctx_error);
    for (i = 0; i < NUM_CASES; ++i) {
        free(d->results[i].times_ms);
        free(d->results[i].error);
        free(d->results[i].out);
    }
}

/* ------------------------------------------------------------------------- */
/* Table output                                                               */
/* ------------------------------------------------------------------------- */

#define MAX_COLS 16

typedef struct table {
    size_t ncols;
    const char *headers[MAX_COLS];
    int right[MAX_COLS];
    char **cells; /* rows * ncols owned strings */
    size_t rows, cap;
} table;

/* align: one 'l' or 'r' per column. */
static void table_init(table *t, const char *align, const char *const *headers)
{
    size_t i;

    memset(t, 0, sizeof *t);
    t->ncols = strlen(align);
    for (i = 0; i < t->ncols && i < MAX_COLS; ++i) {
        t->headers[i] = headers[i];
        t->right[i] = align[i] == 'r';
    }
}

static void table_row(table *t, ...)
{
    va_list ap;
    size_t i;

    if (t->rows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **cells = realloc(t->cells, cap * t->ncols * sizeof *cells);
        if (!cells)
            out_of_memory();
        t->cells = cells;
        t->cap = cap;
    }
    va_start(ap, t);
    for (i = 0; i < t->ncols; ++i) {
        const char *s = va_arg(ap, const char *);
        t->cells[t->rows * t->ncols + i] = xstrdup(s ? s : "");
    }
    va_end(ap);
    t->rows++;
}

/* Display width: UTF-8 code points. */
static size_t text_width(const char *s)
{
    size_t n = 0;

    for (; *s; ++s)
        if (((unsigned char)*s & 0xC0) != 0x80)
            ++n;
    return n;
}

static void pad(FILE *f, size_t n)
{
    while (n--)
        fputc(' ', f);
}

static void table_print_line(const table *t, FILE *f, const size_t *width, const char *const *cells)
{
    size_t i;

    fputs("  ", f);
    for (i = 0; i < t->ncols; ++i) {
        size_t w = text_width(cells[i]);
        int last = i + 1 == t->ncols;

        if (t->right[i])
            pad(f, width[i] - w);
        fputs(cells[i], f);
        if (!t->right[i] && !last)
            pad(f, width[i] - w);
        if (!last)
            fputs("  ", f);
    }
    fputc('\n', f);
}

static void table_print(const table *t, FILE *f)
{
    size_t width[MAX_COLS], i, r;

    for (i = 0; i < t->ncols; ++i) {
        width[i] = text_width(t->headers[i]);
        for (r = 0; r < t->rows; ++r) {
            size_t w = text_width(t->cells[r * t->ncols + i]);
            if (w > width[i])
                width[i] = w;
        }
    }
    table_print_line(t, f, width, t->headers);
    for (r = 0; r < t->rows; ++r)
        table_print_line(t, f, width, (const char *const *)&t->cells[r * t->ncols]);
}

static void table_free(table *t)
{
    size_t i;

    for (i = 0; i < t->rows * t->ncols; ++i)
        free(t->cells[i]);
    free(t->cells);
}

static const char *yes_no(int v)
{
    return v ? "yes" : "no";
}

static void add_device_row(table *t, const device_run *d)
{
    const inorm_device_info *in = &d->info;
    char label[32], api[32], sg[32], range[32];

    device_label(d, label, sizeof label);
    if (!d->have_info) {
        table_row(t, label, "cpu", "CPU path", "(context creation failed)", "-", "-", "-", "-",
                  "-", "-", "-");
        return;
    }
    api_version_format(api, sizeof api, in->api_version);
    if (in->subgroup_size)
        snprintf(sg, sizeof sg, "%" PRIu32, in->subgroup_size);
    else
        snprintf(sg, sizeof sg, "-");
    bytes_format(range, sizeof range, in->max_storage_buffer_range);
    table_row(t, label, backend_string(in->backend), device_type_string(in->type), in->name,
              in->driver_name[0] ? in->driver_name : "-",
              in->driver_info[0] ? in->driver_info : "-", api, sg,
              d->is_cpu_path ? "-" : yes_no(in->subgroup_arithmetic),
              d->is_cpu_path ? "-" : yes_no(in->float16_storage), range);
}

static void add_result_rows(table *t, const app *a, const device_run *d)
{
    char label[32];
    size_t i;

    device_label(d, label, sizeof label);
    for (i = 0; i < NUM_CASES; ++i) {
        const result *r = &d->results[i];
        const bench_case *bc = &a->cases[i];
        char shape[64], style[64], time[32], abs_err[32], rel_err[32];
        const char *verdict;

        shape_format(shape, sizeof shape, bc->x);
        if (bc->op == OP_ADAIN)
            shape_format(style, sizeof style, bc->style);
        else
            snprintf(style, sizeof style, "-");
        snprintf(time, sizeof time, "-");
        snprintf(abs_err, sizeof abs_err, "-");
        snprintf(rel_err, sizeof rel_err, "-");
        switch (r->state) {
        case RESULT_DONE:
            snprintf(time, sizeof time, "%.3f", r->median_ms);
            if (r->compared) {
                snprintf(abs_err, sizeof abs_err, "%.2e", r->max_abs);
                snprintf(rel_err, sizeof rel_err, "%.2e", r->max_rel);
                verdict = r->within_tol ? "ok" : "FAIL (accuracy)";
            } else if (r->nonfinite) {
                verdict = "FAIL (NaN/Inf)";
            } else {
                verdict = d->is_cpu_path ? "ok (reference)" : "ok (not compared)";
            }
            break;
        case RESULT_FAILED: verdict = "FAIL (op error)"; break;
        case RESULT_SKIPPED: verdict = "skipped"; break;
        case RESULT_NOT_RUN:
        default: verdict = "not run"; break;
        }
        table_row(t, label, op_name(bc->op), shape, style, time, abs_err, rel_err, verdict);
    }
}

static void print_text(const app *a)
{
    static const char *const dev_headers[] = {
        "#", "backend", "type", "name", "driver", "driver info", "API", "subgroup",
        "sg arith", "fp16 storage", "max storage buffer"
    };
    static const char *const ctx_headers[] = {
        "#", "backend", "subgroup ops used", "validation", "validation msgs"
    };
    static const char *const op_headers[] = {
        "#", "op", "content", "style", "time ms", "max abs err", "max rel err", "result"
    };
    table t;
    uint32_t i;
    size_t k;

    printf("inorm-info (inorm %d.%d.%d)\n\n", INORM_VERSION_MAJOR, INORM_VERSION_MINOR,
           INORM_VERSION_PATCH);

    /* Devices */
    printf("Devices\n");
    if (!a->enumerated) {
        if (a->opt.device && str_ieq(a->opt.device, "cpu"))
            printf("  (Vulkan devices not listed: CPU path only, from %s%s)\n",
                   a->opt.device_origin, a->opt.device);
        else
            printf("  (Vulkan devices not listed: enumeration failed)\n");
    } else if (a->vk_count == 0)
        printf("  No Vulkan devices found (no Vulkan loader, or no device): running the CPU "
               "path only.\n");
    table_init(&t, "lllllllrllr", dev_headers);
    for (i = 0; i < a->vk_count; ++i)
        add_device_row(&t, &a->vk[i]);
    add_device_row(&t, &a->cpu);
    table_print(&t, stdout);
    table_free(&t);

    /* Contexts */
    printf("\nContexts\n");
    table_init(&t, "lllll", ctx_headers);
    for (i = 0; i <= a->vk_count; ++i) {
        const device_run *d = i < a->vk_count ? &a->vk[i] : &a->cpu;
        char label[32], msgs[32];

        if (!d->selected)
            continue;
        device_label(d, label, sizeof label);
        if (!d->ctx_ok) {
            table_row(&t, label, "FAILED", "-", "-", "-");
            continue;
        }
        snprintf(msgs, sizeof msgs, "%" PRIu32, d->validation_messages);
        table_row(&t, label, backend_string(d->ctx_info.backend),
                  d->is_cpu_path ? "-" : yes_no(d->ctx_info.subgroup_ops_used),
                  d->ctx_info.validation_enabled ? "on" : "off",
                  d->ctx_info.validation_enabled ? msgs : "-");
    }
    table_print(&t, stdout);
    table_free(&t);

    /* Ops */
    printf("\nOps: time = wall clock of one op + inorm_context_finish, median of %d run%s after "
           "1 warm-up\n"
           "     errors vs the CPU path: abs = max |y - ref|, rel = max |y - ref| / (1 + |ref|);"
           "\n     pass: |y - ref| <= %g*(1 + |ref|) for every element\n",
           a->opt.runs, a->opt.runs == 1 ? "" : "s", TOLERANCE);
    table_init(&t, "llllrrrl", op_headers);
    for (i = 0; i <= a->vk_count; ++i) {
        const device_run *d = i < a->vk_count ? &a->vk[i] : &a->cpu;
        if (d->selected && d->ctx_ok)
            add_result_rows(&t, a, d);
    }
    table_print(&t, stdout);
    table_free(&t);

    if (a->notes.count) {
        printf("\nNotes\n");
        for (k = 0; k < a->notes.count; ++k)
            printf("  %s\n", a->notes.items[k]);
    }
    printf("\n%s\n", a->failures.count ? "FAILED (see stderr)" : "All ops passed.");
}

/* ------------------------------------------------------------------------- */
/* JSON output                                                                */
/* ------------------------------------------------------------------------- */

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; ++s) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (c < 0x20)
                fprintf(f, "\\u%04x", c);
            else
                fputc(c, f);
        }
    }
    fputc('"', f);
}

/* A time (fixed, 6 decimals) or an error (9 significant digits). */
static void json_number(FILE *f, double v, int is_time)
{
    if (isfinite(v) && is_time)
        fprintf(f, "%.6f", v);
    else if (isfinite(v))
        fprintf(f, "%.9g", v);
    else
        fputs("null", f); /* JSON has no NaN or Inf */
}

static const char *json_bool(int v)
{
    return v ? "true" : "false";
}

static void json_shape(FILE *f, shape4 s)
{
    fprintf(f, "[%" PRIu32 ", %" PRIu32 ", %" PRIu32 ", %" PRIu32 "]", s.n, s.c, s.h, s.w);
}

static void json_info(FILE *f, const inorm_device_info *in, const char *ind)
{
    char api[32];

    api_version_format(api, sizeof api, in->api_version);
    fprintf(f, "%s\"backend\": \"%s\",\n", ind, backend_string(in->backend));
    fprintf(f, "%s\"type\": ", ind);
    json_string(f, device_type_string(in->type));
    fprintf(f, ",\n%s\"name\": ", ind);
    json_string(f, in->name);
    fprintf(f, ",\n%s\"driver_name\": ", ind);
    json_string(f, in->driver_name);
    fprintf(f, ",\n%s\"driver_info\": ", ind);
    json_string(f, in->driver_info);
    fprintf(f, ",\n%s\"vendor_id\": %" PRIu32 ",\n", ind, in->vendor_id);
    fprintf(f, "%s\"device_id\": %" PRIu32 ",\n", ind, in->device_id);
    if (in->api_version)
        fprintf(f, "%s\"api_version\": \"%s\",\n", ind, api);
    else
        fprintf(f, "%s\"api_version\": null,\n", ind);
    fprintf(f, "%s\"subgroup_size\": %" PRIu32 ",\n", ind, in->subgroup_size);
    fprintf(f, "%s\"subgroup_arithmetic\": %s,\n", ind, json_bool(in->subgroup_arithmetic));
    fprintf(f, "%s\"float16_storage\": %s,\n", ind, json_bool(in->float16_storage));
    fprintf(f, "%s\"max_storage_buffer_range\": %" PRIu64, ind, in->max_storage_buffer_range);
}

static void json_device(FILE *f, const app *a, const device_run *d)
{
    size_t i;
    int j;

    fputs("    {\n", f);
    if (d->is_cpu_path)
        fputs("      \"index\": null,\n", f);
    else
        fprintf(f, "      \"index\": %" PRIu32 ",\n", d->index);
    if (d->have_info) {
        json_info(f, &d->info, "      ");
        fputs(",\n", f);
    } else {
        fputs("      \"backend\": \"cpu\",\n      \"type\": \"CPU path\",\n", f);
    }
    fprintf(f, "      \"benchmarked\": %s", json_bool(d->selected));
    if (!d->selected) {
        fputs("\n    }", f);
        return;
    }
    fputs(",\n      \"context\": {\n", f);
    fprintf(f, "        \"created\": %s,\n", json_bool(d->ctx_ok));
    if (!d->ctx_ok) {
        fputs("        \"error\": ", f);
        json_string(f, d->ctx_error ? d->ctx_error : "");
        fputs("\n      }\n    }", f);
        return;
    }
    fprintf(f, "        \"backend\": \"%s\",\n", backend_string(d->ctx_info.backend));
    fprintf(f, "        \"subgroup_ops_used\": %s,\n", json_bool(d->ctx_info.subgroup_ops_used));
    fprintf(f, "        \"validation_enabled\": %s,\n",
            json_bool(d->ctx_info.validation_enabled));
    fprintf(f, "        \"validation_messages\": %" PRIu32 "\n      },\n", d->validation_messages);
    fputs("      \"results\": [\n", f);
    for (i = 0; i < NUM_CASES; ++i) {
        const result *r = &d->results[i];
        const bench_case *bc = &a->cases[i];
        const char *status = "not_run";

        switch (r->state) {
        case RESULT_DONE:
            if (r->compared && !r->within_tol)
                status = "error_over_tolerance";
            else
                status = r->nonfinite ? "non_finite_output" : "ok";
            break;
        case RESULT_FAILED: status = "op_failed"; break;
        case RESULT_SKIPPED: status = "skipped"; break;
        case RESULT_NOT_RUN: break;
        }
        fprintf(f, "        {\n          \"op\": \"%s\",\n          \"content\": ",
                op_name(bc->op));
        json_shape(f, bc->x);
        fputs(",\n          \"style\": ", f);
        if (bc->op == OP_ADAIN)
            json_shape(f, bc->style);
        else
            fputs("null", f);
        fprintf(f, ",\n          \"status\": \"%s\",\n", status);
        if (r->state == RESULT_DONE) {
            fputs("          \"time_ms\": ", f);
            json_number(f, r->median_ms, 1);
            fputs(",\n          \"times_ms\": [", f);
            for (j = 0; j < a->opt.runs; ++j) {
                if (j)
                    fputs(", ", f);
                json_number(f, r->times_ms[j], 1);
            }
            fputs("],\n          \"max_abs_err\": ", f);
            if (r->compared)
                json_number(f, r->max_abs, 0);
            else
                fputs("null", f);
            fputs(",\n          \"max_rel_err\": ", f);
            if (r->compared)
                json_number(f, r->max_rel, 0);
            else
                fputs("null", f);
            if (r->compared && !isfinite(r->max_rel))
                fputs(",\n          \"non_finite_error\": true", f);
            fputc('\n', f);
        } else {
            fputs("          \"error\": ", f);
            json_string(f, r->error ? r->error : "");
            fputc('\n', f);
        }
        fprintf(f, "        }%s\n", i + 1 < NUM_CASES ? "," : "");
    }
    fputs("      ]\n    }", f);
}

static void print_json(const app *a)
{
    FILE *f = stdout;
    size_t k;
    uint32_t i;

    fputs("{\n", f);
    fprintf(f, "  \"inorm_version\": \"%d.%d.%d\",\n", INORM_VERSION_MAJOR, INORM_VERSION_MINOR,
            INORM_VERSION_PATCH);
    if (a->enumerated)
        fprintf(f, "  \"vulkan_device_count\": %" PRIu32 ",\n", a->vk_count);
    else
        fputs("  \"vulkan_device_count\": null,\n", f);
    fprintf(f, "  \"validation_requested\": %s,\n", json_bool(a->opt.validation));
    fprintf(f,
            "  \"timing\": {\"clock\": \"wall\", \"statistic\": \"median\", \"runs\": %d, "
            "\"warmup_runs\": 1, \"each_run\": \"op + inorm_context_finish\"},\n",
            a->opt.runs);
    fprintf(f,
            "  \"error_metric\": {\"reference\": \"cpu path\", \"abs\": \"max |y - ref|\", "
            "\"rel\": \"max |y - ref| / (1 + |ref|)\", \"tolerance\": %g, "
            "\"pass\": \"|y - ref| <= tolerance * (1 + |ref|) for every element, "
            "i.e. max_rel_err <= tolerance\"},\n",
            TOLERANCE);
    fputs("  \"devices\": [\n", f);
    for (i = 0; i < a->vk_count; ++i) {
        json_device(f, a, &a->vk[i]);
        fputs(",\n", f);
    }
    json_device(f, a, &a->cpu);
    fputs("\n  ],\n  \"notes\": [", f);
    for (k = 0; k < a->notes.count; ++k) {
        fputs(k ? ",\n    " : "\n    ", f);
        json_string(f, a->notes.items[k]);
    }
    fputs(a->notes.count ? "\n  ],\n  \"failures\": [" : "],\n  \"failures\": [", f);
    for (k = 0; k < a->failures.count; ++k) {
        fputs(k ? ",\n    " : "\n    ", f);
        json_string(f, a->failures.items[k]);
    }
    fprintf(f, "%s],\n  \"ok\": %s\n}\n", a->failures.count ? "\n  " : "",
            json_bool(a->failures.count == 0));
}

/* ------------------------------------------------------------------------- */
/* Command line                                                               */
/* ------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: inorm-info [--json] [--validation] [--device N|NAME|cpu] [--runs N]\n"
            "\n"
            "Lists the Vulkan devices inorm sees and its CPU path, then runs instance norm\n"
            "(with gamma and beta) and AdaIN (style of another H and W) on a few shapes with\n"
            "deterministic pseudo-random data on each device, compares every Vulkan result\n"
            "with the CPU path's and times the ops.\n"
            "\n"
            "  --json            print the same as JSON\n"
            "  --validation      enable the Vulkan validation layer (its messages count as\n"
            "                    failures)\n"
            "  --device SEL      only this Vulkan device: an index, part of its name\n"
            "                    (case-insensitive, the first match), or \"cpu\" for the CPU\n"
            "                    path alone (Vulkan is then not touched); the CPU path\n"
            "                    always runs, as the reference\n"
            "  --runs N          timed runs per op (default %d), after one warm-up run\n"
            "  -h, --help        show this help\n"
            "\n"
            "Time: wall clock of one op followed by inorm_context_finish, the median of the\n"
            "timed runs. Errors against the CPU path: abs = max |y - ref|,\n"
            "rel = max |y - ref| / (1 + |ref|) (relative, with an absolute floor near 0).\n"
            "An op passes when |y - ref| <= %g*(1 + |ref|) for every element\n"
            "(absolute + relative tolerance), i.e. when max rel err <= %g.\n"
            "\n"
            "Environment: INORM_BACKEND=cpu is taken as --device cpu and INORM_DEVICE=SEL\n"
            "as --device SEL (the command line wins); both are then removed so that they do\n"
            "not redirect the contexts this tool creates. INORM_VALIDATION and\n"
            "INORM_DISABLE_SUBGROUPS are left to the library.\n"
            "\n"
            "Exit status: 0 all ops passed, 1 an op failed or an error exceeded the\n"
            "tolerance (the reasons go to stderr), 2 bad usage.\n",
            DEFAULT_RUNS, TOLERANCE, TOLERANCE);
}

/* Returns -1 to go on, else an exit status. */
static int parse_args(int argc, char **argv, options *o)
{
    int i;

    for (i = 1; i < argc; ++i) {
        const char *arg = argv[i], *val = NULL;
        size_t optlen;
        const char *eq = strchr(arg, '=');

        optlen = (eq && strncmp(arg, "--", 2) == 0) ? (size_t)(eq - arg) : strlen(arg);
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(arg, "--json") == 0) {
            o->json = 1;
        } else if (strcmp(arg, "--validation") == 0) {
            o->validation = 1;
        } else if ((optlen == 8 && strncmp(arg, "--device", 8) == 0) ||
                   (optlen == 6 && strncmp(arg, "--runs", 6) == 0)) {
            if (eq && optlen != strlen(arg)) {
                val = eq + 1;
            } else if (i + 1 < argc) {
                val = argv[++i];
            } else {
                fprintf(stderr, "inorm-info: %s needs a value\n", arg);
                return 2;
            }
            if (optlen == 8) {
                if (!*val) {
                    fprintf(stderr, "inorm-info: --device needs a value\n");
                    return 2;
                }
                o->device = val;
                o->device_origin = "--device ";
            } else {
                long n = parse_index(val);
                if (n < 1 || n > MAX_RUNS) {
                    fprintf(stderr, "inorm-info: --runs %s: expected 1 to %d\n", val, MAX_RUNS);
                    return 2;
                }
                o->runs = (int)n;
            }
        } else {
            fprintf(stderr, "inorm-info: unknown argument '%s' (try --help)\n", arg);
            return 2;
        }
    }
    return -1;
}

/* The library lets the environment override a context's desc. This tool picks
 * its devices itself, so it reads those variables as its own defaults and
 * removes them. The strings are copied: unsetenv may free them. */
static void take_environment(options *o, char *device_buf, size_t size)
{
    const char *backend = getenv("INORM_BACKEND");
    const char *device = getenv("INORM_DEVICE");

    if (!o->device) {
        if (backend && str_ieq(backend, "cpu")) {
            o->device = "cpu";
            o->device_origin = "INORM_BACKEND=";
        } else if (device && *device) {
            snprintf(device_buf, size, "%s", device);
            o->device = device_buf;
            o->device_origin = "INORM_DEVICE=";
        }
    }
    if (backend)
        env_unset("INORM_BACKEND");
    if (device)
        env_unset("INORM_DEVICE");
}

int main(int argc, char **argv)
{
    static app a; /* zero-initialised */
    char device_buf[256];
    int rc, cpu_only;
    uint32_t i;

    a.opt.runs = DEFAULT_RUNS;
    rc = parse_args(argc, argv, &a.opt);
    if (rc >= 0)
        return rc;
    take_environment(&a.opt, device_buf, sizeof device_buf);
    cpu_only = a.opt.device && str_ieq(a.opt.device, "cpu");

    if (!cpu_only)
        enumerate(&a);
    if (a.enumerated && a.vk_count == 0 && a.opt.json) /* the table says so itself */
        strlist_pushf(&a.notes, "no Vulkan devices found: ran the CPU path only");
    if (!select_devices(&a)) {
        free(a.vk);
        strlist_free(&a.failures);
        strlist_free(&a.notes);
        return 2;
    }

    cases_init(a.cases);

    /* The CPU path first: it is the reference. */
    a.cpu.is_cpu_path = 1;
    a.cpu.selected = 1;
    bench_device(&a, &a.cpu);
    for (i = 0; i < a.vk_count; ++i)
        if (a.vk[i].selected)
            bench_device(&a, &a.vk[i]);

    if (a.opt.json)
        print_json(&a);
    else
        print_text(&a);
    fflush(stdout);

    for (i = 0; i < a.failures.count; ++i)
        fprintf(stderr, "inorm-info: %s\n", a.failures.items[i]);
    rc = a.failures.count ? 1 : 0;

    for (i = 0; i < a.vk_count; ++i)
        device_run_free(&a.vk[i]);
    free(a.vk);
    device_run_free(&a.cpu);
    cases_free(a.cases);
    strlist_free(&a.failures);
    strlist_free(&a.notes);
    return rc;
}
