/*
 * Fuzz target: input bytes -> a sequence of calls through the public API.
 *
 * The bytes are decoded into up to MAX_COMMANDS commands over SLOTS tensor
 * slots: create tensors (small shapes: every dim <= 64, at most 64 K
 * elements; FLOAT32/FLOAT16, NCHW/NHWC; also invalid descriptors), fill them
 * (normal data, constant planes, masks, NaN/Inf, values taken from the
 * input), run any op with arguments that are slots, NULL, a tensor of another
 * context, x itself or y itself, with params decoded from the bytes (eps and
 * alpha from tables or raw bit patterns: negative, NaN, Inf, denormal;
 * invalid activation enums; masks; mix weights; groups), read, write with
 * wrong sizes, destroy.
 *
 * Every op runs on the CPU path; with INORM_FUZZ_VULKAN=1 also on Vulkan
 * (one context per process, INORM_VALIDATION=1 enables the layer) with the
 * same inputs. The target aborts on:
 *   - a status that is not an inorm_status, or a failure with an empty
 *     inorm_context_error();
 *   - success of a call that the header says must fail (NaN/negative eps,
 *     bad enums, non-finite alpha, a tensor of another context, y == style,
 *     a zero dimension, ...);
 *   - INVALID_ARGUMENT on one backend and success on the other;
 *   - a result outside the bound: the CPU path against the fuzzer's own
 *     double-precision oracle, and Vulkan against the CPU path. The bound is
 *     the tests' tolerance, 1e-4 (FLOAT32) / 4e-3 (FLOAT16) abs+rel, plus the
 *     rounding model of tests/test_util.h (64 * FLT_EPSILON times the
 *     magnitudes that enter the result), so ill-conditioned planes get the
 *     slack fp32 needs; NaN where the header promises NaN (a plane with a
 *     NaN/Inf, a constant plane with eps == 0), and elements whose result
 *     would overflow or underflow fp32 are skipped;
 *   - any validation-layer message.
 * It never aborts on a documented error status (a Vulkan device without
 * FLOAT16 gives UNSUPPORTED; the CPU path then still runs).
 *
 * Build: clang -fsanitize=fuzzer (tests/robustness/meson.build), or with
 * -DINORM_FUZZ_STANDALONE as a plain program that replays files and
 * directories given on the command line (gcc builds, valgrind).
 */
#define _POSIX_C_SOURCE 200809L

#include "rob_util.h"

#include <dirent.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SLOTS 8
#define MAX_COMMANDS 24
#define MAX_DIM 64u
#define MAX_ELEMENTS 65536u
#define MAX_FOREIGN 4
#define K_ROUND 64.0

/* ---------------------------------------------------------- the reader -- */

typedef struct reader {
    const uint8_t *p;
    size_t n;
} reader;

static uint8_t u8(reader *r)
{
    if (!r->n)
        return 0;
    r->n--;
    return *r->p++;
}

static uint32_t u32(reader *r)
{
    uint32_t v = u8(r);
    v |= (uint32_t)u8(r) << 8;
    v |= (uint32_t)u8(r) << 16;
    v |= (uint32_t)u8(r) << 24;
    return v;
}

static float raw_float(reader *r)
{
    uint32_t bits = u32(r);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* ------------------------------------------------------------- failing -- */

static void die(const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 1, 2), noreturn))
#endif
    ;
static void die(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    fprintf(stderr, "fuzz_ops: ");
    vfprintf(stderr, fmt, args);
    fprintf(stderr, "\n");
    va_end(args);
    fflush(stderr);
    abort();
}

/* ------------------------------------------------------- fp16, our own -- */

static uint16_t f2h(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t exp = (x >> 23) & 0xffu, mant = x & 0x7fffffu;
    if (exp == 255)
        return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u | (mant >> 13) : 0u));
    int e = (int)exp - 127 + 15;
    if (e >= 31)
        return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) {
        if (e < -10)
            return sign;
        mant |= 0x800000u;
        int shift = 14 - e;
        uint32_t h = mant >> shift, rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1u)))
            h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)e << 10) | (mant >> 13), rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        h++;
    return (uint16_t)(sign | h);
}

static float h2f(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, x;
    if (exp == 31)
        x = sign | 0x7f800000u | (mant << 13);
    else if (exp == 0) {
        float v = (float)mant * (1.0f / 16777216.0f);
        return sign ? -v : v;
    } else
        x = sign | ((exp + 112u) << 23) | (mant << 13);
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

static float round_half(float f)
{
    return h2f(f2h(f));
}

/* ---------------------------------------------------- contexts, slots -- */

static inorm_context *cpu_ctx, *vk_ctx, *foreign_ctx;
static bool use_vulkan, validation;
static int verbose; /* INORM_FUZZ_VERBOSE: 1 ops and statuses, 2 also the slots' contents */
static unsigned long stats_ops, stats_compared, stats_vk_compared, stats_elements_skipped, stats_vk_resets;

typedef struct slot {
    bool used;
    inorm_tensor_desc d;
    size_t count;
    float *host;            /* the contents, in the tensor's layout, as floats (exact in its dtype) */
    inorm_tensor *cpu, *vk; /* vk NULL: not created on Vulkan (or no Vulkan) */
} slot;

static slot slots[SLOTS];
static inorm_tensor *foreign[MAX_FOREIGN];
static int foreign_count;

static void check_status(inorm_context *ctx, inorm_status st, const char *what)
{
    if ((int)st < INORM_SUCCESS || (int)st > INORM_ERROR_BACKEND)
        die("%s returned %d, not an inorm_status", what, (int)st);
    if (st != INORM_SUCCESS && ctx) {
        const char *e = inorm_context_error(ctx);
        if (!e || !e[0])
            die("%s failed with %s and an empty inorm_context_error()", what, rob_status_name(st));
    }
    if (!inorm_status_string(st))
        die("inorm_status_string returned NULL");
}

static void check_validation(void)
{
    if (vk_ctx && inorm_context_validation_message_count(vk_ctx) != 0)
        die("the validation layer reported %u message(s) (see above)", inorm_context_validation_message_count(vk_ctx));
}

/* allow_missing: NULL instead of dying when the backend is not there. */
static inorm_context *make_context_ex(inorm_backend backend, int with_validation, bool allow_missing)
{
    inorm_context_desc desc = {
        .backend = backend, .device_index = -1, .validation = with_validation,
        .flags = INORM_CONTEXT_IGNORE_ENVIRONMENT,
    };
    inorm_context *ctx = NULL;
    char message[512];
    inorm_status st = inorm_context_create_ex(&desc, &ctx, message, sizeof message);
    if (st != INORM_SUCCESS && allow_missing) {
        fprintf(stderr, "fuzz_ops: no Vulkan context (%s): CPU path only\n", message);
        return NULL;
    }
    if (st != INORM_SUCCESS)
        die("cannot create a %s context: %s (%s)", backend == INORM_BACKEND_CPU ? "CPU" : "Vulkan",
            rob_status_name(st), message);
    return ctx;
}

static inorm_context *make_context(inorm_backend backend, int with_validation)
{
    return make_context_ex(backend, with_validation, false);
}

/* At exit (libFuzzer ends with exit()): every context destroyed, so that
 * leak checks see only what the library itself lost. */
static void teardown(void)
{
    for (int i = 0; i < SLOTS; ++i) {
        slots[i].cpu = slots[i].vk = NULL; /* destroyed with their contexts */
        free(slots[i].host);
        slots[i].host = NULL;
    }
    check_validation();
    inorm_context_destroy(cpu_ctx);
    inorm_context_destroy(foreign_ctx);
    inorm_context_destroy(vk_ctx);
    cpu_ctx = foreign_ctx = vk_ctx = NULL;
}

static void init_once(void)
{
    if (cpu_ctx)
        return;
    atexit(teardown);
    const char *v = getenv("INORM_FUZZ_VULKAN");
    use_vulkan = v && strcmp(v, "1") == 0;
    const char *verb = getenv("INORM_FUZZ_VERBOSE");
    verbose = verb ? atoi(verb) : 0;
    const char *val = getenv("INORM_VALIDATION");
    validation = val && strcmp(val, "1") == 0;
    cpu_ctx = make_context(INORM_BACKEND_CPU, 0);
    foreign_ctx = make_context(INORM_BACKEND_CPU, 0);
    const char *allow = getenv("INORM_TEST_ALLOW_NO_VULKAN");
    if (use_vulkan)
        vk_ctx = make_context_ex(INORM_BACKEND_VULKAN, validation, allow && strcmp(allow, "1") == 0);
    if (vk_ctx) {
        inorm_device_info info;
        inorm_context_info(vk_ctx, &info);
        fprintf(stderr, "fuzz_ops: Vulkan on %s, validation %s\n", info.name,
                info.validation_enabled ? "on" : "off");
        const char *require = getenv("INORM_REQUIRE_VALIDATION");
        if (require && strcmp(require, "1") == 0 && !info.validation_enabled)
            die("INORM_REQUIRE_VALIDATION=1 but the validation layer is off (INORM_VALIDATION=1?)");
    }
}

static size_t dtype_size(inorm_dtype t)
{
    return t == INORM_FLOAT16 ? 2 : 4;
}

static size_t index_of(const inorm_tensor_desc *d, size_t n, size_t c, size_t p)
{
    size_t plane = (size_t)d->h * d->w;
    return d->layout == INORM_NCHW ? (n * d->c + c) * plane + p : (n * plane + p) * d->c + c;
}

/* Writes host values into the tensor (the dtype's image). */
static inorm_status upload(inorm_tensor *t, const slot *s)
{
    size_t bytes = s->count * dtype_size(s->d.dtype);
    void *image = malloc(bytes);
    if (!image)
        die("out of memory");
    if (s->d.dtype == INORM_FLOAT16)
        for (size_t i = 0; i < s->count; ++i)
            ((uint16_t *)image)[i] = f2h(s->host[i]);
    else
        memcpy(image, s->host, bytes);
    inorm_status st = inorm_tensor_write(t, image, bytes);
    free(image);
    return st;
}

static inorm_status download(const inorm_tensor *t, const slot *s, float *dst)
{
    size_t bytes = s->count * dtype_size(s->d.dtype);
    void *image = malloc(bytes);
    if (!image)
        die("out of memory");
    inorm_status st = inorm_tensor_read(t, image, bytes);
    if (st == INORM_SUCCESS) {
        if (s->d.dtype == INORM_FLOAT16)
            for (size_t i = 0; i < s->count; ++i)
                dst[i] = h2f(((uint16_t *)image)[i]);
        else
            memcpy(dst, image, bytes);
    }
    free(image);
    return st;
}

static void free_slot(slot *s)
{
    inorm_tensor_destroy(s->cpu);
    inorm_tensor_destroy(s->vk);
    free(s->host);
    memset(s, 0, sizeof *s);
}

/* The Vulkan context refused with INORM_ERROR_BACKEND (for example its
 * pipeline table is full): start a new one and upload every slot again. */
static void reset_vulkan(const char *why)
{
    stats_vk_resets++;
    if (stats_vk_resets <= 3)
        fprintf(stderr, "fuzz_ops: note: new Vulkan context after INORM_ERROR_BACKEND: %s\n", why);
    check_validation();
    for (int i = 0; i < SLOTS; ++i)
        slots[i].vk = NULL;
    inorm_context_destroy(vk_ctx);
    vk_ctx = make_context(INORM_BACKEND_VULKAN, validation);
    for (int i = 0; i < SLOTS; ++i) {
        slot *s = &slots[i];
        if (!s->used)
            continue;
        if (inorm_tensor_create(vk_ctx, &s->d, &s->vk) != INORM_SUCCESS || upload(s->vk, s) != INORM_SUCCESS) {
            inorm_tensor_destroy(s->vk);
            s->vk = NULL;
        }
    }
}

/* ------------------------------------------------------- data patterns -- */

static const double mean_table[8] = { 0.0, 1.0, -3.0, 100.0, 1000.0, -1e4, 0.5, 7.25 };
static const double sd_table[8] = { 1.0, 0.01, 10.0, 1e-3, 100.0, 0.5, 3.0, 1e3 };
static const float mask_values[6] = { 0.0f, 0.25f, 0.5f, 1.0f, 0.125f, 0.75f };

/* Fills s->host. kind: 0 data, 1 affine (no tiny nonzero values), 2 mask. */
static void fill(slot *s, reader *r, int kind)
{
    uint8_t pattern = u8(r);
    rob_rng rng = { u32(r) };
    const size_t plane = (size_t)s->d.h * s->d.w;
    double mu = mean_table[(pattern >> 4) & 7], sd = sd_table[(pattern >> 1) & 7];
    int mode = pattern % 10;
    if (kind == 2 && mode < 5)
        mode = 100; /* masks are mostly valid masks */
    for (size_t i = 0; i < s->count; ++i) {
        double v;
        switch (mode) {
        case 0: v = mu + sd * rob_normal(&rng); break;
        case 1: v = 2.0 * rob_uniform(&rng) - 1.0; break;
        case 2: { /* constant per (n, c) plane, whatever the layout */
            size_t n, c;
            if (s->d.layout == INORM_NCHW) {
                n = i / (plane * s->d.c);
                c = i / plane % s->d.c;
            } else {
                n = i / (plane * s->d.c);
                c = i % s->d.c;
            }
            v = mean_table[(n * 3 + c) % 8];
            break;
        }
        case 3: v = (double)((int)(rob_next(&rng) % 7) - 3); break;
        case 4: v = i % 2 ? mu : mu + sd; break;
        case 5: v = mu + sd * rob_normal(&rng); break;
        case 6: v = 1000.0 + rob_normal(&rng); break;
        case 7: { /* values straight from the input */
            int16_t q = (int16_t)(u8(r) | (u8(r) << 8));
            v = (double)q / 256.0;
            break;
        }
        case 8: v = (double)mask_values[rob_next(&rng) % 6] * (rob_next(&rng) % 4 == 0 ? 1.5 : 1.0); break;
        case 9: v = rob_normal(&rng); break;
        default: { /* valid mask: weights in [0, 1], some zeros */
            uint64_t q = rob_next(&rng);
            v = q % 3 == 0 ? rob_uniform(&rng) : (double)mask_values[q % 6];
            break;
        }
        }
        if (kind == 1 && v != 0.0 && fabs(v) < 1e-3)
            v = v < 0 ? -1e-3 : 1e-3;
        s->host[i] = (float)v;
    }
    if (mode == 5 || mode == 9) { /* sprinkle specials */
        int count = 1 + (pattern >> 6);
        for (int k = 0; k < count && s->count; ++k) {
            size_t at = (size_t)(rob_next(&rng) % s->count);
            const float specials[3] = { NAN, INFINITY, -INFINITY };
            s->host[at] = specials[rob_next(&rng) % 3];
        }
    }
    if (kind == 2 && mode == 100 && s->count)
        s->host[0] = 1.0f; /* first sample of a mask never all zero */
    if (s->d.dtype == INORM_FLOAT16)
        for (size_t i = 0; i < s->count; ++i)
            s->host[i] = round_half(s->host[i]);
}

/* Creates slot `index` with desc d on both backends and fills it. Returns
 * false (slot left empty) when the CPU path refuses. */
static bool create_slot(int index, const inorm_tensor_desc *d, reader *r, int kind)
{
    slot *s = &slots[index];
    free_slot(s);
    inorm_tensor *t = NULL;
    inorm_status st = inorm_tensor_create(cpu_ctx, d, &t);
    check_status(cpu_ctx, st, "inorm_tensor_create");
    if (st != INORM_SUCCESS) {
        if (t)
            die("inorm_tensor_create failed but *out is not NULL");
        return false;
    }
    s->used = true;
    s->d = *d;
    s->count = rob_elements(d);
    s->cpu = t;
    s->host = malloc(s->count * sizeof(float));
    if (!s->host)
        die("out of memory");
    fill(s, r, kind);
    st = upload(s->cpu, s);
    check_status(cpu_ctx, st, "inorm_tensor_write");
    if (st != INORM_SUCCESS)
        die("writing a new CPU tensor failed: %s", inorm_context_error(cpu_ctx));
    if (vk_ctx) {
        st = inorm_tensor_create(vk_ctx, d, &s->vk);
        check_status(vk_ctx, st, "inorm_tensor_create(vulkan)");
        if (st == INORM_ERROR_INVALID_ARGUMENT)
            die("Vulkan refused a tensor the CPU path took: %s", inorm_context_error(vk_ctx));
        if (st == INORM_SUCCESS) {
            st = upload(s->vk, s);
            check_status(vk_ctx, st, "inorm_tensor_write(vulkan)");
            if (st != INORM_SUCCESS) {
                inorm_tensor_destroy(s->vk);
                s->vk = NULL;
            }
        }
    }
    return true;
}

/* Dims: mostly small, sometimes up to 64; the product capped at 64 K. */
static uint32_t dim(reader *r)
{
    uint8_t b = u8(r);
    return b & 0x80 ? 1u + (b & 63u) : 1u + (b & 7u);
}

static void cap_elements(inorm_tensor_desc *d)
{
    uint32_t *dims[4] = { &d->w, &d->h, &d->c, &d->n };
    while ((uint64_t)d->n * d->c * d->h * d->w > MAX_ELEMENTS)
        for (int i = 0; i < 4; ++i)
            if (*dims[i] > 1 && (uint64_t)d->n * d->c * d->h * d->w > MAX_ELEMENTS)
                *dims[i] = (*dims[i] + 1) / 2;
}

static int free_slot_index(reader *r)
{
    for (int i = 0; i < SLOTS; ++i)
        if (!slots[i].used)
            return i;
    return u8(r) % SLOTS;
}

/* ------------------------------------------------------------ the roles -- */

enum role { R_DATA, R_Y, R_CHANNEL, R_SAMPLE, R_MASK, R_STYLE, R_BANK, R_SWEIGHTS, R_STATS, R_CONVERT };

/* The desc a role asks for, given x (and for a few roles more bytes). */
static inorm_tensor_desc role_desc(enum role role, const inorm_tensor_desc *x, reader *r, uint32_t extra)
{
    inorm_tensor_desc d = *x;
    switch (role) {
    case R_DATA:
        d.n = dim(r), d.c = dim(r), d.h = dim(r), d.w = dim(r);
        d.dtype = u8(r) & 1 ? INORM_FLOAT16 : INORM_FLOAT32;
        d.layout = u8(r) & 1 ? INORM_NHWC : INORM_NCHW;
        break;
    case R_Y: break;
    case R_CHANNEL: d = (inorm_tensor_desc){ 1, x->c, 1, 1, INORM_FLOAT32, INORM_NCHW }; break;
    case R_SAMPLE:
    case R_STATS: d = (inorm_tensor_desc){ x->n, x->c, 1, 1, INORM_FLOAT32, INORM_NCHW }; break;
    case R_MASK: d = (inorm_tensor_desc){ u8(r) & 1 ? 1 : x->n, 1, x->h, x->w, INORM_FLOAT32, INORM_NCHW }; break;
    case R_STYLE: {
        uint8_t b = u8(r);
        d.n = b & 1 ? 1 : x->n;
        d.h = b & 2 ? x->h : dim(r);
        d.w = b & 4 ? x->w : dim(r);
        break;
    }
    case R_BANK: d = (inorm_tensor_desc){ extra, x->c, 1, 1, INORM_FLOAT32, INORM_NCHW }; break;
    case R_SWEIGHTS: d = (inorm_tensor_desc){ x->n, extra, 1, 1, INORM_FLOAT32, INORM_NCHW }; break;
    case R_CONVERT: {
        uint8_t b = u8(r);
        d.dtype = b & 1 ? INORM_FLOAT16 : INORM_FLOAT32;
        d.layout = b & 2 ? INORM_NHWC : INORM_NCHW;
        break;
    }
    }
    if (u8(r) == 0xff) /* now and then a wrong shape */
        d.w = d.w % MAX_DIM + 1;
    cap_elements(&d);
    return d;
}

/* A choice of argument. */
typedef struct arg {
    int slot;        /* >= 0: that slot */
    bool is_null;
    bool is_foreign; /* a tensor of another context */
    inorm_tensor *foreign_tensor;
} arg;

static inorm_tensor *make_foreign(const inorm_tensor_desc *d)
{
    if (foreign_count == MAX_FOREIGN)
        return foreign[foreign_count - 1];
    inorm_tensor *t = NULL;
    if (inorm_tensor_create(foreign_ctx, d, &t) != INORM_SUCCESS)
        return NULL;
    foreign[foreign_count++] = t;
    return t;
}

/*
 * Decodes one argument: a slot, NULL, another context's tensor, x or y
 * themselves, or (often) a new tensor made for the role.
 */
static arg pick(reader *r, enum role role, const inorm_tensor_desc *x, int x_slot, int y_slot, uint32_t extra)
{
    uint8_t b = u8(r);
    arg a = { .slot = -1 };
    unsigned sel = b % 16u;
    if (sel < SLOTS) {
        if (slots[sel].used)
            a.slot = (int)sel;
        else
            a.is_null = true;
    } else if (sel == 8) {
        a.is_null = true;
    } else if (sel == 9) {
        inorm_tensor_desc d = x ? role_desc(role, x, r, extra) : (inorm_tensor_desc){ 1, 1, 1, 1, 0, 0 };
        a.is_foreign = true;
        a.foreign_tensor = make_foreign(&d);
        if (!a.foreign_tensor) {
            a.is_foreign = false;
            a.is_null = true;
        }
    } else if (sel == 10 && x_slot >= 0) {
        a.slot = x_slot;
    } else if (sel == 11 && y_slot >= 0) {
        a.slot = y_slot;
    } else {
        inorm_tensor_desc d = x ? role_desc(role, x, r, extra) : role_desc(R_DATA, &(inorm_tensor_desc){ 1, 1, 1, 1, 0, 0 }, r, 0);
        int index = free_slot_index(r);
        if (index == x_slot || index == y_slot)
            index = (index + 1) % SLOTS;
        if (index == x_slot || index == y_slot)
            index = (index + 1) % SLOTS;
        int kind = role == R_MASK ? 2 : role == R_CHANNEL || role == R_SAMPLE || role == R_BANK ? 1 : 0;
        if (role == R_SWEIGHTS)
            kind = 1;
        if (create_slot(index, &d, r, kind))
            a.slot = index;
        else
            a.is_null = true;
    }
    return a;
}

static const inorm_tensor *tensor_of(const arg *a, bool vk)
{
    if (a->is_foreign)
        return a->foreign_tensor;
    if (a->slot < 0)
        return NULL;
    return vk ? slots[a->slot].vk : slots[a->slot].cpu;
}

static const slot *slot_of(const arg *a)
{
    return a->slot >= 0 ? &slots[a->slot] : NULL;
}

/* ------------------------------------------------------------- the ops -- */

enum op_kind { OP_INSTANCE, OP_GROUP, OP_LAYER, OP_ADAIN, OP_MODULATE, OP_STATS, OP_MIX, OP_CIN, OP_CONVERT, OP_KINDS };
static const char *const op_names[OP_KINDS] = {
    "instance_norm", "group_norm", "layer_norm", "adain", "adain_modulate", "stats", "adain_mix",
    "conditional_instance_norm", "convert",
};

#define MAX_MIX 66

typedef struct op_call {
    enum op_kind kind;
    arg x, y, g, b, style, mask, style_mask, mean, std;
    arg styles[MAX_MIX];
    float weights[MAX_MIX];
    uint32_t count;
    bool styles_null, weights_null;
    bool params_null;
    inorm_norm_params p;
    float alpha;
    uint32_t groups;
    bool must_fail;       /* the header says this call fails */
    bool comparable;      /* sane parameter magnitudes: results can be compared */
} op_call;

static const float eps_table[8] = { 1e-5f, 0.0f, 1e-3f, 1.0f, 0.0f /* raw */, -1e-5f, NAN, INFINITY };
static const float slope_table[8] = { 0.01f, 0.2f, 0.0f, -1.0f, 2.0f, NAN, INFINITY, 0.0f /* raw */ };
static const float alpha_table[8] = { 1.0f, 0.0f, 0.5f, -0.5f, 2.0f, NAN, INFINITY, 0.0f /* raw */ };
static const float weight_table[8] = { 0.5f, 1.0f, -0.5f, 2.0f, 0.0f, NAN, -INFINITY, 0.0f /* raw */ };

static float table_or_raw(reader *r, const float table[8], int raw_index)
{
    uint8_t b = u8(r) % 8;
    return b == raw_index ? raw_float(r) : table[b];
}

static bool sane(float v)
{
    return isfinite(v) && fabsf(v) <= 1e3f;
}

static void decode_params(reader *r, op_call *op, const inorm_tensor_desc *x, int x_slot, int y_slot)
{
    uint8_t b = u8(r);
    op->params_null = (b & 1) != 0;
    op->p = (inorm_norm_params)INORM_NORM_PARAMS_DEFAULT;
    op->mask.slot = op->style_mask.slot = -1;
    op->mask.is_null = op->style_mask.is_null = true;
    if (op->params_null)
        return;
    op->p.unbiased = (b >> 1) & 1;
    switch ((b >> 2) & 7) {
    case 0: case 7: op->p.activation = INORM_ACTIVATION_NONE; break;
    case 1: op->p.activation = INORM_ACTIVATION_RELU; break;
    case 2: op->p.activation = INORM_ACTIVATION_LEAKY_RELU; break;
    case 3: op->p.activation = INORM_ACTIVATION_SILU; break;
    case 4: op->p.activation = (inorm_activation)-1; break;
    case 5: op->p.activation = (inorm_activation)4; break;
    default: op->p.activation = (inorm_activation)(int32_t)u32(r); break;
    }
    op->p.eps = table_or_raw(r, eps_table, 4);
    if (op->p.activation == INORM_ACTIVATION_LEAKY_RELU || (b >> 5) == 7)
        op->p.activation_slope = table_or_raw(r, slope_table, 7);
    uint8_t m = u8(r);
    if (x && (m & 3) == 1)
        op->mask = pick(r, R_MASK, x, x_slot, y_slot, 0);
    if (x && (m & 12) == 4) {
        const arg *style = op->kind == OP_MIX ? &op->styles[0] : &op->style;
        const inorm_tensor_desc *sd = style->slot >= 0 ? &slots[style->slot].d : x;
        op->style_mask = pick(r, R_MASK, sd, x_slot, y_slot, 0);
    }
    op->p.mask = NULL;
    op->p.style_mask = NULL;
    if ((int)op->p.activation < 0 || (int)op->p.activation > INORM_ACTIVATION_SILU || !isfinite(op->p.eps) ||
        op->p.eps < 0.0f || (op->p.activation == INORM_ACTIVATION_LEAKY_RELU && !isfinite(op->p.activation_slope)))
        op->must_fail = true;
    if (!(op->p.eps <= 1e10f) ||
        (op->p.activation == INORM_ACTIVATION_LEAKY_RELU && !sane(op->p.activation_slope)))
        op->comparable = false;
}

/* Runs the decoded op on one backend. */
static inorm_status run_op(const op_call *op, bool vk)
{
    inorm_context *ctx = vk ? vk_ctx : cpu_ctx;
    inorm_norm_params p = op->p;
    p.mask = tensor_of(&op->mask, vk);
    p.style_mask = tensor_of(&op->style_mask, vk);
    const inorm_norm_params *pp = op->params_null ? NULL : &p;
    const inorm_tensor *x = tensor_of(&op->x, vk), *g = tensor_of(&op->g, vk), *b = tensor_of(&op->b, vk);
    inorm_tensor *y = (inorm_tensor *)tensor_of(&op->y, vk);
    switch (op->kind) {
    case OP_INSTANCE: return inorm_instance_norm(ctx, x, g, b, pp, y);
    case OP_GROUP: return inorm_group_norm(ctx, x, op->groups, g, b, pp, y);
    case OP_LAYER: return inorm_layer_norm(ctx, x, g, b, pp, y);
    case OP_ADAIN: return inorm_adain(ctx, x, tensor_of(&op->style, vk), op->alpha, pp, y);
    case OP_MODULATE: return inorm_adain_modulate(ctx, x, g, b, pp, y);
    case OP_STATS:
        return inorm_stats(ctx, x, pp, (inorm_tensor *)tensor_of(&op->mean, vk), (inorm_tensor *)tensor_of(&op->std, vk));
    case OP_MIX: {
        const inorm_tensor *styles[MAX_MIX];
        for (uint32_t k = 0; k < op->count && k < MAX_MIX; ++k)
            styles[k] = tensor_of(&op->styles[k], vk);
        return inorm_adain_mix(ctx, x, op->styles_null ? NULL : styles, op->weights_null ? NULL : op->weights,
                               op->count, op->alpha, pp, y);
    }
    case OP_CIN: return inorm_conditional_instance_norm(ctx, x, g, b, tensor_of(&op->style, vk), pp, y);
    case OP_CONVERT: return inorm_convert(ctx, x, y);
    case OP_KINDS: break;
    }
    return INORM_ERROR_INVALID_ARGUMENT;
}

/* ----------------------------------------------------------- the oracle -- */

typedef struct seg {
    double mean, var, std, weight, sigma;
    bool nonfinite, constant;
} seg;

/* Weighted two-pass statistics of channels [c0, c0 + cps) of sample n, as
 * inorm.h defines them (values of weight 0 left out). */
static seg seg_stats(const slot *s, size_t n, size_t c0, size_t cps, const slot *mask, bool unbiased, float eps)
{
    const size_t plane = (size_t)s->d.h * s->d.w;
    const float *w = mask ? mask->host + (mask->d.n == 1 ? 0 : n) * plane : NULL;
    seg st = { .constant = true };
    double sum = 0.0, first = 0.0;
    bool have_first = false;
    for (size_t c = c0; c < c0 + cps; ++c)
        for (size_t p = 0; p < plane; ++p) {
            double wt = w ? w[p] : 1.0;
            if (wt == 0.0)
                continue;
            double v = s->host[index_of(&s->d, n, c, p)];
            if (!isfinite(v))
                st.nonfinite = true;
            if (!have_first) {
                first = v;
                have_first = true;
            } else if (v != first) {
                st.constant = false;
            }
            st.weight += wt;
            sum += wt * v;
        }
    st.mean = sum / st.weight;
    double squares = 0.0;
    for (size_t c = c0; c < c0 + cps; ++c)
        for (size_t p = 0; p < plane; ++p) {
            double wt = w ? w[p] : 1.0;
            if (wt == 0.0)
                continue;
            double dlt = s->host[index_of(&s->d, n, c, p)] - st.mean;
            squares += wt * dlt * dlt;
        }
    st.var = squares / (unbiased ? st.weight - 1.0 : st.weight);
    st.sigma = sqrt(st.var);
    st.std = sqrt(st.var + (double)eps);
    return st;
}

/* How a value is judged. */
enum { J_SKIP, J_NAN, J_VALUE, J_NONFINITE };

typedef struct expected {
    size_t count;
    double *value, *bound;
    uint8_t *how;
} expected;

static void expected_init(expected *e, size_t count)
{
    e->count = count;
    e->value = calloc(count ? count : 1, sizeof *e->value);
    e->bound = calloc(count ? count : 1, sizeof *e->bound);
    e->how = calloc(count ? count : 1, 1);
    if (!e->value || !e->bound || !e->how)
        die("out of memory");
}

static void expected_free(expected *e)
{
    free(e->value);
    free(e->bound);
    free(e->how);
    memset(e, 0, sizeof *e);
}

static double activate(inorm_activation act, double slope, double v)
{
    switch (act) {
    case INORM_ACTIVATION_RELU: return v < 0.0 ? 0.0 : v;
    case INORM_ACTIVATION_LEAKY_RELU: return v < 0.0 ? v * slope : v;
    case INORM_ACTIVATION_SILU: return v / (1.0 + exp(-v));
    default: return v;
    }
}

/* The biggest finite magnitude judged in a dtype (beyond it, rounding to
 * Inf may differ between double and fp32 arithmetic). */
static double big_of(inorm_dtype t)
{
    return t == INORM_FLOAT16 ? 6.0e4 : 1.0e30;
}

/* Sets one element from its pre-activation value t and its magnitude. */
static void judge_element(expected *e, size_t i, double t, double mag, const op_call *op, inorm_dtype dtype)
{
    if (isnan(t)) {
        e->how[i] = J_NAN;
        return;
    }
    if (!isfinite(t) || fabs(t) > big_of(dtype) || !isfinite(mag) || mag > 1e30) {
        e->how[i] = J_SKIP;
        return;
    }
    double slope = op->p.activation_slope;
    double y = activate(op->params_null ? INORM_ACTIVATION_NONE : op->p.activation, slope, t);
    double lip = 1.0;
    if (!op->params_null && op->p.activation == INORM_ACTIVATION_LEAKY_RELU)
        lip = fabs(slope) > 1.0 ? fabs(slope) : 1.0;
    else if (!op->params_null && op->p.activation == INORM_ACTIVATION_SILU)
        lip = 1.1;
    if (dtype == INORM_FLOAT16)
        y = round_half((float)y);
    if (!isfinite(y) || fabs(y) > big_of(dtype)) {
        e->how[i] = J_SKIP;
        return;
    }
    double tol = dtype == INORM_FLOAT16 ? ROB_TOL_F16 : ROB_TOL_F32;
    e->value[i] = y;
    e->bound[i] = tol * (1.0 + fabs(y)) + K_ROUND * FLT_EPSILON * lip * (mag + fabs(y));
    if (dtype == INORM_FLOAT16)
        e->bound[i] += fabs(y) * (1.0 / 1024.0) + 1.0 / 16777216.0;
    e->how[i] = J_VALUE;
}

/* Classifies a segment: NaN by the header, skipped (0/0 or near it), or
 * judged. Returns J_NAN, J_SKIP or J_VALUE. */
static int classify(const seg *st, float eps, bool masked)
{
    if (st->nonfinite || isnan(st->std))
        return J_NAN;
    if (st->std == 0.0)
        return eps == 0.0f && st->constant && !masked ? J_NAN : J_SKIP;
    if (st->std < 1e-18 || !(st->weight > 0.0))
        return J_SKIP;
    return J_VALUE;
}

static double cond_unbiased(const seg *st, bool unbiased)
{
    return unbiased ? st->weight / (st->weight - 1.0) : 0.0;
}

/* Style statistics for (sample n of the content, channel c). */
static seg style_seg(const slot *style, const slot *mask, size_t n, size_t c, const op_call *op)
{
    size_t ns = style->d.n == 1 ? 0 : n;
    return seg_stats(style, ns, c, 1, mask, op->p.unbiased && !op->params_null, op->params_null ? 1e-5f : op->p.eps);
}

/* Expected y of a normalizing op, or of stats (mean then std, 2 N C values). */
static bool oracle(const op_call *op, expected *e)
{
    const slot *x = slot_of(&op->x);
    const inorm_tensor_desc *d = &x->d;
    const bool unbiased = !op->params_null && op->p.unbiased;
    const float eps = op->params_null ? 1e-5f : op->p.eps;
    const slot *mask = op->params_null ? NULL : slot_of(&op->mask);
    const size_t plane = (size_t)d->h * d->w;

    if (op->kind == OP_CONVERT) {
        const slot *y = slot_of(&op->y);
        expected_init(e, y->count);
        for (size_t n = 0; n < d->n; ++n)
            for (size_t c = 0; c < d->c; ++c)
                for (size_t p = 0; p < plane; ++p) {
                    size_t i = index_of(&y->d, n, c, p);
                    float v = x->host[index_of(d, n, c, p)];
                    if (y->d.dtype == INORM_FLOAT16)
                        v = round_half(v);
                    e->value[i] = v;
                    e->bound[i] = 0.0;
                    e->how[i] = isnan(v) ? J_NAN : J_VALUE;
                }
        return true;
    }
    if (op->kind == OP_STATS) {
        expected_init(e, 2 * (size_t)d->n * d->c);
        for (size_t n = 0; n < d->n; ++n)
            for (size_t c = 0; c < d->c; ++c) {
                seg st = seg_stats(x, n, c, 1, mask, unbiased, eps);
                size_t i = n * d->c + c, j = i + (size_t)d->n * d->c;
                /* A plane with a NaN or Inf: mean and std NaN or Inf (inorm.h). A
                 * constant plane with eps 0 has std exactly 0: judged as a value. */
                if (st.nonfinite || isnan(st.std)) {
                    e->how[i] = e->how[j] = J_NONFINITE;
                    continue;
                }
                if (st.nonfinite || !isfinite(st.mean) || fabs(st.mean) > 1e30 || st.std > 1e30) {
                    e->how[i] = e->how[j] = J_SKIP;
                    continue;
                }
                double cw = 1.0 + cond_unbiased(&st, unbiased);
                double dm = K_ROUND * FLT_EPSILON * (fabs(st.mean) + st.sigma) * cw;
                double dvar = K_ROUND * FLT_EPSILON * (st.var + (fabs(st.mean) + st.sigma) * st.sigma) * cw + dm * dm;
                double dstd = st.std > 0.0 ? fmin(sqrt(dvar), dvar / (2.0 * st.std)) : sqrt(dvar);
                e->value[i] = st.mean;
                e->bound[i] = ROB_TOL_F32 * (1.0 + fabs(st.mean)) + dm;
                e->how[i] = J_VALUE;
                e->value[j] = st.std;
                e->bound[j] = ROB_TOL_F32 * (1.0 + st.std) + 1e-5 * st.std + dstd;
                e->how[j] = J_VALUE;
            }
        return true;
    }

    expected_init(e, x->count);
    const double alpha = op->kind == OP_ADAIN || op->kind == OP_MIX ? (double)op->alpha : 1.0;
    uint32_t cps = 1;
    if (op->kind == OP_GROUP)
        cps = d->c / op->groups;
    else if (op->kind == OP_LAYER)
        cps = d->c;
    const slot *g = slot_of(&op->g), *bt = slot_of(&op->b);
    const slot *style = slot_of(&op->style), *smask = op->params_null ? NULL : slot_of(&op->style_mask);
    /* adain_mix: per style statistics */
    for (size_t n = 0; n < d->n; ++n) {
        for (size_t c0 = 0; c0 < d->c; c0 += cps) {
            seg st = seg_stats(x, n, c0, cps, mask, unbiased, eps);
            int seg_how = classify(&st, eps, mask != NULL);
            double cw = 1.0 + cond_unbiased(&st, unbiased);
            for (size_t c = c0; c < c0 + cps; ++c) {
                double a = 0.0, b = 0.0, a_mag = 0.0, b_mag = 0.0, extra_x = 0.0, extra = 0.0;
                bool nan_channel = false, skip_channel = false;
                switch (op->kind) {
                case OP_INSTANCE:
                case OP_GROUP:
                case OP_LAYER: {
                    double gv = g ? g->host[c] : 1.0, bv = bt ? bt->host[c] : 0.0;
                    a = gv / st.std, b = bv;
                    a_mag = fabs(a), b_mag = fabs(b);
                    break;
                }
                case OP_MODULATE: {
                    double gv = g->host[n * d->c + c], bv = bt ? bt->host[n * d->c + c] : 0.0;
                    a = gv / st.std, b = bv;
                    a_mag = fabs(a), b_mag = fabs(b);
                    break;
                }
                case OP_CIN: {
                    const slot *wts = slot_of(&op->style);
                    double gs = 0.0, bs = 0.0, gm = 0.0, bm = 0.0;
                    for (size_t k = 0; k < g->d.n; ++k) {
                        double wk = wts->host[n * g->d.n + k];
                        double gk = g->host[k * d->c + c];
                        gs += wk * gk, gm += fabs(wk * gk);
                        if (bt) { /* beta_bank NULL is 0: no w * 0 term (Inf weights) */
                            double bk = bt->host[k * d->c + c];
                            bs += wk * bk, bm += fabs(wk * bk);
                        }
                    }
                    a = gs / st.std, b = bs;
                    a_mag = gm / st.std, b_mag = bm;
                    break;
                }
                case OP_ADAIN: {
                    seg ss = style_seg(style, smask, n, c, op);
                    int sh = classify(&ss, eps, smask != NULL);
                    if (sh == J_NAN && (ss.nonfinite || isnan(ss.std)))
                        nan_channel = true;
                    else if (sh != J_VALUE && ss.std != 0.0)
                        skip_channel = true;
                    double scw = 1.0 + cond_unbiased(&ss, unbiased);
                    a = ss.std / st.std, b = ss.mean;
                    a_mag = fabs(a), b_mag = fabs(b);
                    extra_x = (ss.std + fabs(ss.mean) + ss.sigma) * scw / st.std;
                    extra = (fabs(ss.mean) + ss.sigma) * scw;
                    break;
                }
                case OP_MIX: {
                    double mean_t = 0.0, std_t = 0.0, s_std = 0.0, s_mean = 0.0;
                    for (uint32_t k = 0; k < op->count; ++k) {
                        seg ss = style_seg(slot_of(&op->styles[k]), smask, n, c, op);
                        if (ss.nonfinite || isnan(ss.std))
                            nan_channel = true;
                        if (!isfinite(ss.std) || ss.std > 1e30)
                            skip_channel = true;
                        double wk = op->weights[k], scw = 1.0 + cond_unbiased(&ss, unbiased);
                        mean_t += wk * ss.mean, std_t += wk * ss.std;
                        s_std += fabs(wk) * (ss.std + fabs(ss.mean) + ss.sigma) * scw;
                        s_mean += fabs(wk) * (fabs(ss.mean) + ss.sigma) * scw;
                    }
                    a = std_t / st.std, b = mean_t;
                    a_mag = fabs(a), b_mag = fabs(b);
                    extra_x = s_std / st.std;
                    extra = s_mean;
                    break;
                }
                default: break;
                }
                for (size_t p = 0; p < plane; ++p) {
                    size_t i = index_of(d, n, c, p);
                    double v = x->host[i];
                    if (seg_how == J_NAN || nan_channel) {
                        e->how[i] = J_NAN;
                        continue;
                    }
                    if (seg_how == J_SKIP || skip_channel) {
                        e->how[i] = J_SKIP;
                        continue;
                    }
                    if (isnan(a) || isnan(b)) { /* a NaN parameter */
                        e->how[i] = J_NAN;
                        continue;
                    }
                    if (isinf(a) || isinf(b)) {
                        /* an infinite parameter (gamma, a bank weight): Inf - Inf or
                         * not depends on how the kernel associates the affine step */
                        e->how[i] = J_SKIP;
                        continue;
                    }
                    double t = a * (v - st.mean) + b;
                    double dx = fabs(v - st.mean);
                    double mag_t = a_mag * (fabs(v) + fabs(st.mean) + st.sigma) * cw + b_mag + extra_x * dx + extra +
                                   fabs(t);
                    double mag = mag_t;
                    if (alpha != 1.0) {
                        t = v + alpha * (t - v);
                        mag = fabs(alpha) * mag_t + (1.0 + fabs(alpha)) * fabs(v);
                    }
                    judge_element(e, i, t, mag, op, d->dtype);
                }
            }
        }
    }
    return true;
}

static const char *how_text(uint8_t how)
{
    return how == J_NAN ? "NaN" : how == J_NONFINITE ? "NaN or Inf" : "value";
}

/* Compares got with e; cpu_got (may be NULL) is the CPU result the bound is
 * centred on instead of e's value (Vulkan against the CPU path). */
static void compare(const char *what, const op_call *op, const expected *e, const float *got, const float *centre)
{
    for (size_t i = 0; i < e->count; ++i) {
        double g = got[i];
        switch (e->how[i]) {
        case J_SKIP: stats_elements_skipped++; continue;
        case J_NAN:
            if (!isnan(g))
                die("%s: %s: element %zu is %.9g; expected %s", what, op_names[op->kind], i, g, how_text(e->how[i]));
            continue;
        case J_NONFINITE:
            if (isfinite(g))
                die("%s: %s: element %zu is %.9g; expected %s", what, op_names[op->kind], i, g, how_text(e->how[i]));
            continue;
        default: {
            double want = centre ? (double)centre[i] : e->value[i];
            if (isnan(want)) /* the CPU result itself was judged before */
                continue;
            if (g != want && !(fabs(g - want) <= e->bound[i]))
                die("%s: %s: element %zu is %.9g; expected %.9g (oracle %.9g) within %.3g", what,
                    op_names[op->kind], i, g, want, e->value[i], e->bound[i]);
        }
        }
    }
}

/* ------------------------------------------------------ running an op -- */

/* Output slots of an op (y, or mean and std). */
static int outputs_of(const op_call *op, int out[2])
{
    int count = 0;
    if (op->kind == OP_STATS) {
        if (op->mean.slot >= 0)
            out[count++] = op->mean.slot;
        if (op->std.slot >= 0 && op->std.slot != op->mean.slot)
            out[count++] = op->std.slot;
    } else if (op->y.slot >= 0) {
        out[count++] = op->y.slot;
    }
    return count;
}

/* Every tensor argument of the op belongs to the slots (no NULL where one is
 * needed, no foreign tensor): a precondition of the oracle. */
static bool all_slots(const op_call *op)
{
    const arg *must[] = { &op->x };
    for (size_t i = 0; i < sizeof must / sizeof must[0]; ++i)
        if (must[i]->slot < 0)
            return false;
    const arg *maybe[] = { &op->y, &op->g, &op->b, &op->style, &op->mask, &op->style_mask, &op->mean, &op->std };
    for (size_t i = 0; i < sizeof maybe / sizeof maybe[0]; ++i)
        if (maybe[i]->is_foreign)
            return false;
    if (op->kind == OP_MIX)
        for (uint32_t k = 0; k < op->count && k < MAX_MIX; ++k)
            if (op->styles[k].slot < 0)
                return false;
    return true;
}

/* Reads an output from both backends after an op: checks the CPU result
 * (against the oracle) and Vulkan's (against the CPU's), then makes the host
 * copy and the Vulkan tensor equal the CPU result. */
static void sync_slot(int index)
{
    slot *s = &slots[index];
    inorm_status st = download(s->cpu, s, s->host);
    check_status(cpu_ctx, st, "inorm_tensor_read");
    if (st != INORM_SUCCESS)
        die("reading a CPU tensor failed: %s", inorm_context_error(cpu_ctx));
    if (s->vk) {
        st = upload(s->vk, s);
        check_status(vk_ctx, st, "inorm_tensor_write(vulkan)");
        if (st != INORM_SUCCESS) {
            inorm_tensor_destroy(s->vk);
            s->vk = NULL;
        }
    }
}

static void execute(op_call *op)
{
    stats_ops++;
    /* The oracle first: y may be x. */
    expected e = { 0 };
    /* The oracle runs after a successful CPU call (the library has checked
     * the shapes then) on x as it was before the op (y may be x, the only
     * input an op may overwrite). */
    bool have_oracle = !op->must_fail && op->comparable && all_slots(op);
    float *x_before = NULL;
    int out[2];
    const int outs = outputs_of(op, out);
    const int x_slot = op->x.slot;
    if (have_oracle && x_slot >= 0) {
        x_before = malloc(slots[x_slot].count * sizeof(float));
        if (!x_before)
            die("out of memory");
        memcpy(x_before, slots[x_slot].host, slots[x_slot].count * sizeof(float));
    }

    inorm_status cs = run_op(op, false);
    check_status(cpu_ctx, cs, op_names[op->kind]);
    if (cs == INORM_SUCCESS && op->must_fail)
        die("CPU path: %s succeeded but the header says it must fail", op_names[op->kind]);

    bool vk_ran = false;
    inorm_status vs = INORM_SUCCESS;
    if (vk_ctx) {
        bool vk_complete = true; /* every slot argument exists on Vulkan */
        const arg *args[] = { &op->x, &op->y, &op->g, &op->b, &op->style, &op->mask, &op->style_mask, &op->mean,
                              &op->std };
        for (size_t i = 0; i < sizeof args / sizeof args[0]; ++i)
            if (args[i]->slot >= 0 && !slots[args[i]->slot].vk)
                vk_complete = false;
        if (op->kind == OP_MIX)
            for (uint32_t k = 0; k < op->count && k < MAX_MIX; ++k)
                if (op->styles[k].slot >= 0 && !slots[op->styles[k].slot].vk)
                    vk_complete = false;
        if (vk_complete) {
            vs = run_op(op, true);
            vk_ran = true;
            check_status(vk_ctx, vs, op_names[op->kind]);
            if (vs == INORM_SUCCESS && op->must_fail)
                die("Vulkan: %s succeeded but the header says it must fail", op_names[op->kind]);
            if ((vs == INORM_ERROR_INVALID_ARGUMENT && cs == INORM_SUCCESS) ||
                (cs == INORM_ERROR_INVALID_ARGUMENT && vs == INORM_SUCCESS))
                die("%s: CPU path %s (%s), Vulkan %s (%s)", op_names[op->kind], rob_status_name(cs),
                    inorm_context_error(cpu_ctx), rob_status_name(vs), inorm_context_error(vk_ctx));
            check_validation();
        }
    }

    if (verbose >= 2)
        for (int i = 0; i < SLOTS; ++i) {
            const slot *sl = &slots[i];
            if (!sl->used)
                continue;
            fprintf(stderr, "  slot %d: %ux%ux%ux%u %s %s:", i, sl->d.n, sl->d.c, sl->d.h, sl->d.w,
                    sl->d.dtype == INORM_FLOAT16 ? "FLOAT16" : "FLOAT32", sl->d.layout == INORM_NHWC ? "NHWC" : "NCHW");
            for (size_t k = 0; k < sl->count && k < 12; ++k)
                fprintf(stderr, " %g", (double)(i == x_slot && x_before ? x_before : sl->host)[k]);
            fprintf(stderr, "%s\n", sl->count > 12 ? " ..." : "");
        }
    if (verbose) {
        fprintf(stderr, "fuzz_ops: %s: CPU %s", op_names[op->kind], rob_status_name(cs));
        if (cs != INORM_SUCCESS)
            fprintf(stderr, " (%s)", inorm_context_error(cpu_ctx));
        if (vk_ran)
            fprintf(stderr, ", Vulkan %s", rob_status_name(vs));
        fprintf(stderr, "%s%s\n", op->must_fail ? ", must fail" : "", have_oracle ? ", oracle" : "");
    }
    if (cs == INORM_SUCCESS && have_oracle) {
        /* Restore x as it was for the oracle (in-place ops). */
        float *x_now = slots[x_slot].host;
        slots[x_slot].host = x_before;
        have_oracle = oracle(op, &e);
        slots[x_slot].host = x_now;
    }
    free(x_before);

    /* Results: CPU against the oracle, Vulkan against the CPU path. */
    if (cs == INORM_SUCCESS) {
        for (int k = 0; k < outs; ++k) {
            slot *s = &slots[out[k]];
            float *cpu_values = malloc(s->count * sizeof(float));
            float *vk_values = malloc(s->count * sizeof(float));
            if (!cpu_values || !vk_values)
                die("out of memory");
            inorm_status st = download(s->cpu, s, cpu_values);
            check_status(cpu_ctx, st, "inorm_tensor_read");
            if (st != INORM_SUCCESS)
                die("reading a CPU result failed");
            expected part = e;
            if (have_oracle && op->kind == OP_STATS) {
                /* e holds mean then std */
                size_t nc = e.count / 2;
                bool is_std = out[k] == op->std.slot && !(op->mean.slot == out[k]);
                part.value = e.value + (is_std ? nc : 0);
                part.bound = e.bound + (is_std ? nc : 0);
                part.how = e.how + (is_std ? nc : 0);
                part.count = nc;
            }
            if (have_oracle && part.count == s->count) {
                compare("CPU path vs oracle", op, &part, cpu_values, NULL);
                stats_compared++;
            }
            if (vk_ran && vs == INORM_SUCCESS && s->vk) {
                st = download(s->vk, s, vk_values);
                check_status(vk_ctx, st, "inorm_tensor_read(vulkan)");
                if (st == INORM_SUCCESS) {
                    if (have_oracle && part.count == s->count) {
                        compare("Vulkan vs CPU path", op, &part, vk_values, cpu_values);
                        stats_vk_compared++;
                    } else if (!have_oracle && op->comparable && op->kind == OP_CONVERT) {
                        char msg[256];
                        if (rob_compare(vk_values, cpu_values, s->count, 0.0, 1, msg, sizeof msg))
                            die("convert: Vulkan differs from the CPU path: %s", msg);
                    }
                }
            }
            free(cpu_values);
            free(vk_values);
        }
    }
    expected_free(&e);
    if (vk_ran && vs == INORM_ERROR_BACKEND)
        reset_vulkan(inorm_context_error(vk_ctx));
    /* Both backends' outputs now hold the CPU result (or what a failed op left). */
    for (int k = 0; k < outs; ++k)
        sync_slot(out[k]);
}

/* Decodes and runs one op command. */
static void op_command(reader *r)
{
    op_call *op = calloc(1, sizeof *op);
    if (!op)
        die("out of memory");
    op->kind = (enum op_kind)(u8(r) % OP_KINDS);
    op->comparable = true;
    arg none = { .slot = -1, .is_null = true };
    op->y = op->g = op->b = op->style = op->mask = op->style_mask = op->mean = op->std = none;
    op->x = pick(r, R_DATA, NULL, -1, -1, 0);
    const slot *xs = slot_of(&op->x);
    const inorm_tensor_desc *xd = xs ? &xs->d : NULL;
    if (!xs)
        op->must_fail = true;
    if (op->x.is_foreign)
        op->must_fail = true;

    if (op->kind != OP_STATS)
        op->y = pick(r, op->kind == OP_CONVERT ? R_CONVERT : R_Y, xd, op->x.slot, -1, 0);
    const int ys = op->y.slot;
    switch (op->kind) {
    case OP_INSTANCE:
    case OP_GROUP:
    case OP_LAYER:
        op->g = pick(r, R_CHANNEL, xd, op->x.slot, ys, 0);
        op->b = pick(r, R_CHANNEL, xd, op->x.slot, ys, 0);
        if (op->kind == OP_GROUP) {
            uint8_t gb = u8(r);
            if (gb < 200 && xd) {
                uint32_t divisors[64], nd = 0;
                for (uint32_t k = 1; k <= xd->c && nd < 64; ++k)
                    if (xd->c % k == 0)
                        divisors[nd++] = k;
                op->groups = divisors[gb % nd];
            } else {
                op->groups = gb == 255 ? 0 : gb;
                if (op->groups == 0)
                    op->must_fail = true;
            }
        }
        break;
    case OP_MODULATE:
        op->g = pick(r, R_SAMPLE, xd, op->x.slot, ys, 0);
        op->b = pick(r, R_SAMPLE, xd, op->x.slot, ys, 0);
        if (op->g.is_null)
            op->must_fail = true;
        break;
    case OP_ADAIN:
        op->style = pick(r, R_STYLE, xd, op->x.slot, ys, 0);
        op->alpha = table_or_raw(r, alpha_table, 7);
        if (!isfinite(op->alpha) || op->style.is_null)
            op->must_fail = true;
        if (!sane(op->alpha))
            op->comparable = false;
        break;
    case OP_STATS:
        op->mean = pick(r, R_STATS, xd, op->x.slot, -1, 0);
        op->std = pick(r, R_STATS, xd, op->x.slot, op->mean.slot, 0);
        if (op->mean.is_null && op->std.is_null)
            op->must_fail = true;
        break;
    case OP_MIX: {
        uint8_t cb = u8(r);
        op->count = cb < 240 ? 1u + cb % 4u : cb == 240 ? 0u : cb == 241 ? 64u : cb == 242 ? 65u : 1u + cb % 8u;
        if (op->count == 0 || op->count > INORM_MAX_STYLES)
            op->must_fail = true;
        uint32_t decode = op->count < MAX_MIX ? op->count : MAX_MIX;
        for (uint32_t k = 0; k < decode; ++k) {
            op->styles[k] = k < 6 ? pick(r, R_STYLE, xd, op->x.slot, ys, 0) : op->styles[k % 6];
            op->weights[k] = k < 6 ? table_or_raw(r, weight_table, 7) : 0.25f;
            if (!isfinite(op->weights[k]) && k < op->count && op->count <= INORM_MAX_STYLES)
                op->must_fail = true;
            if (!sane(op->weights[k]))
                op->comparable = false;
        }
        uint8_t f = u8(r);
        op->styles_null = f == 1;
        op->weights_null = f == 2;
        if (op->styles_null || op->weights_null)
            op->must_fail = true;
        op->alpha = table_or_raw(r, alpha_table, 7);
        if (!isfinite(op->alpha))
            op->must_fail = true;
        if (!sane(op->alpha))
            op->comparable = false;
        break;
    }
    case OP_CIN: {
        uint32_t banks = 1u + u8(r) % 4u;
        op->g = pick(r, R_BANK, xd, op->x.slot, ys, banks);
        uint32_t s = op->g.slot >= 0 ? slots[op->g.slot].d.n : banks;
        op->b = pick(r, R_BANK, xd, op->x.slot, ys, s);
        op->style = pick(r, R_SWEIGHTS, xd, op->x.slot, ys, s);
        if (op->g.is_null || op->style.is_null)
            op->must_fail = true;
        break;
    }
    case OP_CONVERT:
        if (op->y.slot >= 0 && op->y.slot == op->x.slot)
            op->must_fail = true;
        break;
    case OP_KINDS: break;
    }
    if (op->kind != OP_CONVERT)
        decode_params(r, op, xd, op->x.slot, ys);

    /* More must-fail rules: other contexts' tensors, aliasing of outputs. */
    const arg *all[] = { &op->y, &op->g, &op->b, &op->style, &op->mask, &op->style_mask, &op->mean, &op->std };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        if (all[i]->is_foreign)
            op->must_fail = true;
    if (op->kind == OP_MIX)
        for (uint32_t k = 0; k < op->count && k < MAX_MIX; ++k)
            if (op->styles[k].is_foreign || op->styles[k].is_null ||
                (op->styles[k].slot >= 0 && op->styles[k].slot == ys))
                op->must_fail = true;
    if (op->kind == OP_ADAIN && ys >= 0 && op->style.slot == ys)
        op->must_fail = true;
    if (op->kind != OP_STATS && op->kind != OP_CONVERT && op->y.is_null)
        op->must_fail = true;
    if (op->kind == OP_CONVERT && op->y.is_null)
        op->must_fail = true;
    if (ys >= 0 && (op->mask.slot == ys || op->style_mask.slot == ys))
        op->must_fail = true;
    if (ys >= 0 && op->kind != OP_ADAIN && op->kind != OP_MIX && (op->g.slot == ys || op->b.slot == ys))
        op->must_fail = true;
    if (ys >= 0 && op->kind == OP_CIN && op->style.slot == ys)
        op->must_fail = true;
    if (op->kind == OP_STATS && op->mean.slot >= 0 && op->mean.slot == op->std.slot)
        op->must_fail = true;
    if (op->style_mask.slot >= 0 && op->kind != OP_ADAIN && op->kind != OP_MIX)
        op->must_fail = true;

    execute(op);
    free(op);
}

/* ------------------------------------------------------ other commands -- */

static void new_command(reader *r)
{
    int index = u8(r) % SLOTS;
    uint8_t mode = u8(r) % 8;
    inorm_tensor_desc d;
    if (mode < 5) {
        d = role_desc(R_DATA, &(inorm_tensor_desc){ 1, 1, 1, 1, 0, 0 }, r, 0);
        create_slot(index, &d, r, mode == 4 ? 2 : 0);
        return;
    }
    /* Raw descriptors, invalid ones included. */
    d.n = u8(r), d.c = u8(r), d.h = u8(r), d.w = u8(r);
    uint8_t e = u8(r);
    d.dtype = (inorm_dtype)(e & 3);
    d.layout = (inorm_layout)((e >> 2) & 3);
    if (mode == 7) { /* 32-bit dims: overflow */
        d.n = u32(r) | 1u, d.c = u32(r) | 0x10000u, d.h = 0xffffffffu, d.w = u32(r) | 0x10000u;
    }
    const bool invalid_enum = (unsigned)d.dtype > 1 || (unsigned)d.layout > 1;
    const bool zero = !d.n || !d.c || !d.h || !d.w;
    const unsigned __int128 product = (unsigned __int128)d.n * d.c * d.h * d.w * (d.dtype == INORM_FLOAT16 ? 2 : 4);
    const bool overflow = product > (unsigned __int128)SIZE_MAX;
    size_t bytes = inorm_tensor_desc_bytes(&d);
    if ((invalid_enum || zero || overflow) && bytes != 0)
        die("inorm_tensor_desc_bytes gave %zu for an invalid desc %ux%ux%ux%u dtype %d layout %d", bytes, d.n, d.c,
            d.h, d.w, (int)d.dtype, (int)d.layout);
    if (invalid_enum || zero || overflow) {
        inorm_tensor *t = (inorm_tensor *)&d; /* must be set to NULL */
        inorm_status st = inorm_tensor_create(cpu_ctx, &d, &t);
        check_status(cpu_ctx, st, "inorm_tensor_create(invalid)");
        if (st != INORM_ERROR_INVALID_ARGUMENT)
            die("inorm_tensor_create of an invalid desc gave %s", rob_status_name(st));
        if (t)
            die("inorm_tensor_create failed but left *out set");
        return;
    }
    if ((uint64_t)d.n * d.c * d.h * d.w > MAX_ELEMENTS || d.n > MAX_DIM || d.c > MAX_DIM || d.h > MAX_DIM ||
        d.w > MAX_DIM)
        return; /* valid but beyond the fuzzer's sizes */
    create_slot(index, &d, r, 0);
}

static void read_command(reader *r)
{
    slot *s = &slots[u8(r) % SLOTS];
    if (!s->used)
        return;
    float *a = malloc(s->count * sizeof(float)), *b = malloc(s->count * sizeof(float));
    if (!a || !b)
        die("out of memory");
    inorm_status st = download(s->cpu, s, a);
    check_status(cpu_ctx, st, "inorm_tensor_read");
    if (st != INORM_SUCCESS)
        die("read failed on the CPU path: %s", inorm_context_error(cpu_ctx));
    char msg[256];
    if (rob_compare(a, s->host, s->count, 0.0, 1, msg, sizeof msg))
        die("a CPU tensor does not hold what was written or computed: %s", msg);
    if (s->vk) {
        st = download(s->vk, s, b);
        check_status(vk_ctx, st, "inorm_tensor_read(vulkan)");
        if (st == INORM_SUCCESS && rob_compare(b, s->host, s->count, 0.0, 1, msg, sizeof msg))
            die("a Vulkan tensor does not hold what was written: %s", msg);
    }
    free(a);
    free(b);
}

static void misc_command(reader *r)
{
    uint8_t what = u8(r) % 8;
    slot *s = &slots[u8(r) % SLOTS];
    inorm_status st;
    switch (what) {
    case 0: /* wrong byte counts and NULL pointers */
        if (s->used) {
            size_t bytes = s->count * dtype_size(s->d.dtype);
            float dummy[4] = { 0 };
            st = inorm_tensor_write(s->cpu, dummy, bytes == sizeof dummy ? bytes + 1 : sizeof dummy);
            check_status(cpu_ctx, st, "inorm_tensor_write(wrong size)");
            if (st != INORM_ERROR_INVALID_ARGUMENT)
                die("inorm_tensor_write with a wrong size gave %s", rob_status_name(st));
            st = inorm_tensor_read(s->cpu, NULL, bytes);
            check_status(cpu_ctx, st, "inorm_tensor_read(NULL)");
            if (st != INORM_ERROR_INVALID_ARGUMENT)
                die("inorm_tensor_read into NULL gave %s", rob_status_name(st));
        }
        break;
    case 1:
        if (s->used) {
            inorm_tensor_desc d;
            st = inorm_tensor_get_desc(s->cpu, &d);
            if (st != INORM_SUCCESS || memcmp(&d, &s->d, sizeof d) != 0)
                die("inorm_tensor_get_desc does not give the desc back");
            check_status(cpu_ctx, inorm_tensor_get_desc(s->cpu, NULL), "inorm_tensor_get_desc(NULL)");
        }
        break;
    case 2:
        check_status(cpu_ctx, inorm_context_finish(cpu_ctx), "inorm_context_finish");
        if (vk_ctx)
            check_status(vk_ctx, inorm_context_finish(vk_ctx), "inorm_context_finish(vulkan)");
        break;
    case 3: { /* profiling on and off */
        int on = u8(r) & 1;
        check_status(cpu_ctx, inorm_context_set_profiling(cpu_ctx, on), "inorm_context_set_profiling");
        double seconds;
        check_status(cpu_ctx, inorm_context_last_device_time(cpu_ctx, &seconds), "inorm_context_last_device_time");
        if (vk_ctx) {
            check_status(vk_ctx, inorm_context_set_profiling(vk_ctx, on), "inorm_context_set_profiling(vulkan)");
            check_status(vk_ctx, inorm_context_last_device_time(vk_ctx, &seconds), "inorm_context_last_device_time");
        }
        break;
    }
    case 4: /* calls without a context */
        if (s->used) {
            if (inorm_instance_norm(NULL, s->cpu, NULL, NULL, NULL, s->cpu) != INORM_ERROR_INVALID_ARGUMENT ||
                inorm_stats(NULL, s->cpu, NULL, NULL, NULL) != INORM_ERROR_INVALID_ARGUMENT ||
                inorm_tensor_create(NULL, &s->d, &(inorm_tensor *){ NULL }) != INORM_ERROR_INVALID_ARGUMENT ||
                inorm_tensor_write(NULL, s->host, 4) != INORM_ERROR_INVALID_ARGUMENT)
                die("a call with a NULL context or tensor did not give INVALID_ARGUMENT");
            if (!inorm_context_error(NULL))
                die("inorm_context_error(NULL) is NULL");
        }
        break;
    case 5: /* destroy */
        free_slot(s);
        break;
    case 6: /* status strings of any value */
        if (!inorm_status_string((inorm_status)(int32_t)u32(r)))
            die("inorm_status_string returned NULL");
        break;
    default: { /* a write of new data */
        if (!s->used)
            break;
        fill(s, r, 0);
        st = upload(s->cpu, s);
        check_status(cpu_ctx, st, "inorm_tensor_write");
        if (st != INORM_SUCCESS)
            die("a write failed on the CPU path");
        if (s->vk && upload(s->vk, s) != INORM_SUCCESS) {
            inorm_tensor_destroy(s->vk);
            s->vk = NULL;
        }
        break;
    }
    }
}

/* ------------------------------------------------------------ the entry -- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    reader r = { data, size };
    for (int command = 0; command < MAX_COMMANDS && r.n > 0; ++command) {
        uint8_t c = u8(&r) % 16;
        if (c < 3)
            new_command(&r);
        else if (c < 12)
            op_command(&r);
        else if (c < 13)
            read_command(&r);
        else
            misc_command(&r);
    }
    for (int i = 0; i < SLOTS; ++i)
        free_slot(&slots[i]);
    for (int i = 0; i < foreign_count; ++i)
        inorm_tensor_destroy(foreign[i]);
    foreign_count = 0;
    check_validation();
    return 0;
}

#ifdef INORM_FUZZ_STANDALONE
/* Replays files, and the files of directories, given as arguments. */
static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return 1;
    }
    uint8_t *data = NULL;
    size_t size = 0, cap = 0;
    for (;;) {
        if (size == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *grown = realloc(data, cap);
            if (!grown)
                die("out of memory");
            data = grown;
        }
        size_t got = fread(data + size, 1, cap - size, f);
        if (!got)
            break;
        size += got;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    int failures = 0, files = 0;
    for (int i = 1; i < argc; ++i) {
        struct stat info;
        if (stat(argv[i], &info) != 0) {
            fprintf(stderr, "cannot stat %s\n", argv[i]);
            return 1;
        }
        if (!S_ISDIR(info.st_mode)) {
            failures += replay_file(argv[i]);
            files++;
            continue;
        }
        DIR *dir = opendir(argv[i]);
        if (!dir)
            return 1;
        char **names = NULL;
        size_t count = 0, cap = 0;
        struct dirent *entry;
        while ((entry = readdir(dir)) != NULL) {
            if (entry->d_name[0] == '.')
                continue;
            if (count == cap) {
                cap = cap ? cap * 2 : 64;
                char **grown = realloc(names, cap * sizeof *names);
                if (!grown)
                    die("out of memory");
                names = grown;
            }
            size_t len = strlen(argv[i]) + strlen(entry->d_name) + 2;
            names[count] = malloc(len);
            if (!names[count])
                die("out of memory");
            snprintf(names[count], len, "%s/%s", argv[i], entry->d_name);
            count++;
        }
        closedir(dir);
        qsort(names, count, sizeof *names, compare_names);
        for (size_t k = 0; k < count; ++k) {
            failures += replay_file(names[k]);
            files++;
            free(names[k]);
        }
        free(names);
    }
    printf("fuzz_ops: replayed %d input(s): %lu ops, %lu results checked against the oracle, %lu Vulkan results "
           "compared, %lu elements skipped as ill-conditioned, %lu Vulkan context resets\n",
           files, stats_ops, stats_compared, stats_vk_compared, stats_elements_skipped, stats_vk_resets);
    return failures ? 1 : 0; /* teardown() runs at exit */
}
#endif
