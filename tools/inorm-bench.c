/*
 * inorm-bench: times inorm's ops on each backend against copy rooflines
 * measured on the same device with the same bytes, prints the kernel plan the
 * library chose, and checks every Vulkan result against the CPU path.
 *
 * For each op, dtype, layout and shape:
 *   time      median over the runs (after warm-up) of one op + finish, in
 *             device time (inorm_context_last_device_time with profiling on;
 *             wall clock where that is unsupported)
 *   GB/s      minimum bytes / time: x read once, y written once (adain adds
 *             the style read once, its planes the content's times
 *             --style-scale; stats writes 2*N*C floats instead of y)
 *   r_copy    (t_copy * min_bytes / (2 * x_bytes)) / time, where t_copy is
 *             inorm_convert with the same dtype and layout (Vulkan: a
 *             vkCmdCopyBuffer; CPU path: its convert loop); 1.0 = as fast as
 *             a copy of the same bytes
 *   r_shader  the same against inorm's own copy compute shader (Vulkan),
 *             the faster of its two ways of reading: through texel views
 *             where the device's tensors have them ("copy:shader") and as
 *             storage buffers ("copy:shader-storage")
 *             (JSON also has ratio.shader_copy_alu: against that shader with
 *             each value widened to fp32, -0.0 added and narrowed back, the
 *             rows "copy:shader-alu[-storage]", the least a computing kernel
 *             does)
 *   r_memcpy  the same against memcpy on 2 threads (CPU path)
 *   max_err   max |y - ref| / (1 + |ref|), ref the CPU path's result (Vulkan)
 *   plan      ctx->last_plan: variant, dispatches, bytes moved per element
 *
 * It needs the library's internals (last_plan, inorm_convert_op), so it links
 * the static core (inorm_internal_dep), not libinorm.
 */
#define _POSIX_C_SOURCE 200809L

#include "internal.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------- */
/* Configuration                                                              */
/* ------------------------------------------------------------------------- */

/* The ops after OP_DEFAULT_COUNT run only when asked for (--ops): the
 * default set stays the one the README's figures come from. group_norm_silu
 * is a diffusion UNet's GroupNorm(32) + SiLU, adain_blend AdaIN at alpha 0.5:
 * the epilogues after the affine step. */
enum bench_op {
    OP_INSTANCE_NORM, OP_ADAIN, OP_ADAIN_MODULATE, OP_STATS, OP_GROUP_NORM, OP_LAYER_NORM,
    OP_DEFAULT_COUNT, OP_GROUP_NORM_SILU = OP_DEFAULT_COUNT, OP_ADAIN_BLEND, OP_COUNT
};
static const char *const op_names[OP_COUNT] = { "instance_norm", "adain",      "adain_modulate",  "stats",
                                                "group_norm",    "layer_norm", "group_norm_silu", "adain_blend" };

enum bench_backend { BACKEND_VULKAN, BACKEND_CPU, BACKEND_COUNT };
static const char *const backend_names[BACKEND_COUNT] = { "vulkan", "cpu" };

static const char *const dtype_names[2] = { "f32", "f16" };      /* INORM_FLOAT32, INORM_FLOAT16 */
static const char *const layout_names[2] = { "nchw", "nhwc" };   /* INORM_NCHW, INORM_NHWC */

typedef struct bench_shape {
    uint32_t n, c, h, w;
} bench_shape;

static const bench_shape default_shapes[] = {
    { 1, 64, 256, 256 }, { 1, 256, 64, 64 }, { 1, 512, 32, 32 }, { 1, 3, 1024, 1024 },
    { 1, 32, 8, 8 },     { 8, 256, 64, 64 }, { 1, 4, 2048, 2048 }, { 16, 512, 4, 4 },
};
static const bench_shape quick_shape = { 1, 32, 16, 16 };

#define MAX_SHAPES 64

/* Automatic run count: measured runs stop at AUTO_MAX_RUNS, or once
 * AUTO_BUDGET_S seconds of measured runs are spent and AUTO_MIN_RUNS are done.
 * Automatic warm-up: AUTO_WARMUP runs, or one where a run takes over
 * AUTO_LONG_RUN_S. */
#define AUTO_MAX_RUNS 20
#define AUTO_MIN_RUNS 5
#define AUTO_BUDGET_S 0.25
#define AUTO_WARMUP 2
#define AUTO_LONG_RUN_S 0.05

typedef struct bench_config {
    bool ops[OP_COUNT];
    bool dtypes[2];
    bool layouts[2];
    bool backends[BACKEND_COUNT];
    bench_shape shapes[MAX_SHAPES];
    size_t shape_count;
    int runs;    /* < 0: automatic */
    int warmup;  /* < 0: automatic */
    bool json;
    bool quick;
    const char *device;  /* NULL: inorm's choice */
    double style_scale;  /* AdaIN's style planes: the content's H and W times this */
} bench_config;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: inorm-bench [options]\n"
            "Times inorm's ops against copy rooflines on the same device, prints the plan\n"
            "each op used and checks the Vulkan results against the CPU path.\n"
            "\n"
            "  --ops LIST       instance_norm,adain,adain_modulate,stats,group_norm,\n"
            "                   layer_norm (the default set), group_norm_silu,\n"
            "                   adain_blend (group norm + SiLU, AdaIN at alpha 0.5), all\n"
            "  --shapes LIST    NxCxHxW,... (default: the built-in set of 8 shapes)\n"
            "  --dtypes LIST    f32,f16 (default both)\n"
            "  --layouts LIST   nchw,nhwc (default both)\n"
            "  --backends LIST  vulkan,cpu (default both)\n"
            "  --runs N         measured runs per case (default: up to %d, fewer for large\n"
            "                   cases: stops after %.2f s of runs once %d are done)\n"
            "  --warmup N       warm-up runs per case (default %d, 1 when a run takes > %.0f ms)\n"
            "  --quick          smoke test: one shape (%ux%ux%ux%u), 2 runs, 1 warm-up\n"
            "  --device N|NAME  Vulkan device by index or part of its name\n"
            "  --style-scale S  AdaIN's style planes have the content's H and W times S,\n"
            "                   rounded, at least 1 (default 1: the content's shape)\n"
            "  --json           print one JSON object instead of the table\n"
            "  --help           this text\n"
            "\n"
            "Times are device time (Vulkan timestamps via inorm_context_last_device_time);\n"
            "the CPU path reports its ops' wall clock; wall clock is used where a device\n"
            "has no timestamps (the output says which). GB/s are 1e9 bytes per second of\n"
            "the minimum traffic. Exit status: 0 ok, 1 an op failed or a result was wrong,\n"
            "2 bad usage. Cases a device refuses as unsupported are skipped with a note.\n",
            AUTO_MAX_RUNS, AUTO_BUDGET_S, AUTO_MIN_RUNS, AUTO_WARMUP, AUTO_LONG_RUN_S * 1e3, quick_shape.n,
            quick_shape.c, quick_shape.h, quick_shape.w);
}

/* Parses a comma-separated list of names into flags. "all" selects all. */
static bool parse_names(const char *option, const char *list, const char *const *names, size_t count, bool *flags)
{
    for (size_t i = 0; i < count; ++i)
        flags[i] = false;
    const char *p = list;
    bool any = false;
    while (*p) {
        size_t len = strcspn(p, ",");
        bool found = false;
        if (len == 3 && strncasecmp(p, "all", 3) == 0) {
            for (size_t i = 0; i < count; ++i)
                flags[i] = true;
            found = true;
        }
        for (size_t i = 0; i < count && !found; ++i) {
            if (strlen(names[i]) == len && strncasecmp(p, names[i], len) == 0) {
                flags[i] = true;
                found = true;
            }
        }
        if (!found && len > 0) {
            fprintf(stderr, "inorm-bench: %s: unknown name \"%.*s\"; one of:", option, (int)len, p);
            for (size_t i = 0; i < count; ++i)
                fprintf(stderr, " %s", names[i]);
            fprintf(stderr, " all\n");
            return false;
        }
        any = any || found;
        p += len;
        if (*p == ',')
            ++p;
    }
    if (!any)
        fprintf(stderr, "inorm-bench: %s: empty list\n", option);
    return any;
}

static bool parse_dimension(const char **p, uint32_t *out)
{
    if (**p < '0' || **p > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long value = strtoull(*p, &end, 10);
    if (errno || value < 1 || value > UINT32_MAX)
        return false;
    *out = (uint32_t)value;
    *p = end;
    return true;
}

static bool parse_shapes(const char *list, bench_config *cfg)
{
    cfg->shape_count = 0;
    const char *p = list;
    while (*p) {
        bench_shape s;
        const char *start = p;
        bool ok = parse_dimension(&p, &s.n) && (*p == 'x' || *p == 'X') && (++p, parse_dimension(&p, &s.c)) &&
                  (*p == 'x' || *p == 'X') && (++p, parse_dimension(&p, &s.h)) && (*p == 'x' || *p == 'X') &&
                  (++p, parse_dimension(&p, &s.w)) && (*p == ',' || *p == '\0');
        if (!ok) {
            fprintf(stderr, "inorm-bench: --shapes: \"%.*s\" is not NxCxHxW (each >= 1)\n",
                    (int)strcspn(start, ","), start);
            return false;
        }
        if (cfg->shape_count == MAX_SHAPES) {
            fprintf(stderr, "inorm-bench: --shapes: more than %d shapes\n", MAX_SHAPES);
            return false;
        }
        cfg->shapes[cfg->shape_count++] = s;
        if (*p == ',')
            ++p;
    }
    if (cfg->shape_count == 0)
        fprintf(stderr, "inorm-bench: --shapes: empty list\n");
    return cfg->shape_count > 0;
}

static bool parse_scale(const char *option, const char *text, double *out)
{
    errno = 0;
    char *end;
    double value = strtod(text, &end);
    if (errno || end == text || *end || !(value > 0.0) || value > 64.0) {
        fprintf(stderr, "inorm-bench: %s: \"%s\" is not a number in (0, 64]\n", option, text);
        return false;
    }
    *out = value;
    return true;
}

static bool parse_count(const char *option, const char *text, int minimum, int *out)
{
    errno = 0;
    char *end;
    long value = strtol(text, &end, 10);
    if (errno || end == text || *end || value < minimum || value > 1000000) {
        fprintf(stderr, "inorm-bench: %s: \"%s\" is not a number >= %d\n", option, text, minimum);
        return false;
    }
    *out = (int)value;
    return true;
}

/* Returns 0 to run, 1 after --help, 2 on bad usage. */
static int parse_args(int argc, char **argv, bench_config *cfg)
{
    *cfg = (bench_config){ .runs = -1, .warmup = -1, .style_scale = 1.0 };
    for (int i = 0; i < OP_COUNT; ++i)
        cfg->ops[i] = i < OP_DEFAULT_COUNT;
    cfg->dtypes[0] = cfg->dtypes[1] = true;
    cfg->layouts[0] = cfg->layouts[1] = true;
    cfg->backends[BACKEND_VULKAN] = cfg->backends[BACKEND_CPU] = true;
    const char *shapes = NULL;
    for (int i = 1; i < argc; ++i) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            return 1;
        }
        if (strcmp(arg, "--json") == 0) {
            cfg->json = true;
            continue;
        }
        if (strcmp(arg, "--quick") == 0) {
            cfg->quick = true;
            continue;
        }
        static const char *const valued[] = { "--ops",  "--shapes", "--dtypes", "--layouts",
                                              "--backends", "--runs", "--warmup", "--device",
                                              "--style-scale" };
        const char *name = NULL, *value = NULL;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0] && !name; ++k) {
            size_t len = strlen(valued[k]);
            if (strcmp(arg, valued[k]) == 0) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "inorm-bench: %s needs a value\n", arg);
                    return 2;
                }
                name = valued[k];
                value = argv[++i];
            } else if (strncmp(arg, valued[k], len) == 0 && arg[len] == '=') {
                name = valued[k];
                value = arg + len + 1;
            }
        }
        bool ok;
        if (!name) {
            fprintf(stderr, "inorm-bench: unknown option \"%s\" (see --help)\n", arg);
            return 2;
        } else if (strcmp(name, "--ops") == 0) {
            ok = parse_names(name, value, op_names, OP_COUNT, cfg->ops);
        } else if (strcmp(name, "--shapes") == 0) {
            shapes = value;
            ok = true;
        } else if (strcmp(name, "--dtypes") == 0) {
            ok = parse_names(name, value, dtype_names, 2, cfg->dtypes);
        } else if (strcmp(name, "--layouts") == 0) {
            ok = parse_names(name, value, layout_names, 2, cfg->layouts);
        } else if (strcmp(name, "--backends") == 0) {
            ok = parse_names(name, value, backend_names, BACKEND_COUNT, cfg->backends);
        } else if (strcmp(name, "--runs") == 0) {
            ok = parse_count(name, value, 1, &cfg->runs);
        } else if (strcmp(name, "--warmup") == 0) {
            ok = parse_count(name, value, 0, &cfg->warmup);
        } else if (strcmp(name, "--style-scale") == 0) {
            ok = parse_scale(name, value, &cfg->style_scale);
        } else {
            cfg->device = value;
            ok = value[0] != '\0';
            if (!ok)
                fprintf(stderr, "inorm-bench: --device: empty value\n");
        }
        if (!ok)
            return 2;
    }
    if (shapes) {
        if (!parse_shapes(shapes, cfg))
            return 2;
    } else if (cfg->quick) {
        cfg->shapes[0] = quick_shape;
        cfg->shape_count = 1;
    } else {
        cfg->shape_count = sizeof default_shapes / sizeof default_shapes[0];
        memcpy(cfg->shapes, default_shapes, sizeof default_shapes);
    }
    if (cfg->quick) {
        if (cfg->runs < 0)
            cfg->runs = 2;
        if (cfg->warmup < 0)
            cfg->warmup = 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------- */
/* Small helpers                                                              */
/* ------------------------------------------------------------------------- */

static double wall_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts values in place; returns the median. */
static double median(double *values, int count)
{
    qsort(values, (size_t)count, sizeof *values, compare_doubles);
    return count % 2 ? values[count / 2] : 0.5 * (values[count / 2 - 1] + values[count / 2]);
}

static uint64_t rng_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static float rng_uniform(uint64_t *state, float lo, float hi)
{
    return lo + (hi - lo) * (float)((double)(rng_next(state) >> 40) / 16777216.0);
}

static uint32_t group_count(uint32_t channels)
{
    return channels % 32 == 0 ? 32 : 1;
}

/* Bytes an op must move at the least: x read once, y written once (adain:
 * plus the style read once; stats: 2*N*C floats written instead of y). */
static double min_bytes_of(enum bench_op op, const inorm_tensor_desc *d, size_t x_bytes, size_t style_bytes)
{
    if (op == OP_STATS)
        return (double)x_bytes + 2.0 * d->n * d->c * sizeof(float);
    return 2.0 * (double)x_bytes + (op == OP_ADAIN || op == OP_ADAIN_BLEND ? (double)style_bytes : 0.0);
}

/* ------------------------------------------------------------------------- */
/* Inputs: host data and the tensors of one backend                          */
/* ------------------------------------------------------------------------- */

typedef struct host_data {
    inorm_tensor_desc desc;  /* x and y */
    inorm_tensor_desc style_desc;
    size_t elements, bytes, style_bytes;
    void *x, *style;         /* in desc's dtype and layout */
    float *gamma, *beta;     /* C */
    float *scale, *bias;     /* N x C */
} host_data;

static void fill_data(const inorm_tensor_desc *d, void *out, uint64_t *rng)
{
    const size_t plane = (size_t)d->h * d->w;
    for (size_t n = 0; n < d->n; ++n) {
        for (size_t c = 0; c < d->c; ++c) {
            /* each plane its own mean and spread */
            float offset = rng_uniform(rng, -2.0f, 2.0f), spread = rng_uniform(rng, 0.25f, 2.0f);
            for (size_t p = 0; p < plane; ++p) {
                float v = offset + spread * rng_uniform(rng, -1.0f, 1.0f);
                size_t i = inorm_element_index(d, n, c, p);
                if (d->dtype == INORM_FLOAT16)
                    ((uint16_t *)out)[i] = inorm_float_to_half(v);
                else
                    ((float *)out)[i] = v;
            }
        }
    }
}

static void fill_floats(float *out, size_t count, float lo, float hi, uint64_t *rng)
{
    for (size_t i = 0; i < count; ++i)
        out[i] = rng_uniform(rng, lo, hi);
}

static void host_data_free(host_data *h)
{
    free(h->x);
    free(h->style);
    free(h->gamma);
    free(h->beta);
    free(h->scale);
    free(h->bias);
    memset(h, 0, sizeof *h);
}

/* A style plane's side: the content's times scale, rounded, at least 1. */
static uint32_t scaled_side(uint32_t side, double scale)
{
    double scaled = floor((double)side * scale + 0.5);
    return scaled < 1.0 ? 1u : scaled > 1e9 ? 1000000000u : (uint32_t)scaled;
}

static bool host_data_init(host_data *h, const bench_shape *s, inorm_dtype dtype, inorm_layout layout,
                           bool need_style, double style_scale, uint64_t seed)
{
    memset(h, 0, sizeof *h);
    h->desc = (inorm_tensor_desc){ s->n, s->c, s->h, s->w, dtype, layout };
    h->bytes = inorm_tensor_desc_bytes(&h->desc);
    h->style_desc = h->desc;
    h->style_desc.h = scaled_side(s->h, style_scale);
    h->style_desc.w = scaled_side(s->w, style_scale);
    h->style_bytes = inorm_tensor_desc_bytes(&h->style_desc);
    if (h->bytes == 0 || h->style_bytes == 0)
        return false;
    h->elements = h->bytes / inorm_dtype_size(dtype);
    size_t samples = (size_t)s->n * s->c;
    h->x = malloc(h->bytes);
    h->style = need_style ? malloc(h->style_bytes) : NULL;
    h->gamma = malloc(s->c * sizeof(float));
    h->beta = malloc(s->c * sizeof(float));
    h->scale = malloc(samples * sizeof(float));
    h->bias = malloc(samples * sizeof(float));
    if (!h->x || (need_style && !h->style) || !h->gamma || !h->beta || !h->scale || !h->bias) {
        host_data_free(h);
        return false;
    }
    uint64_t rng = seed * 0x9E3779B97F4A7C15ULL + 1;
    fill_data(&h->desc, h->x, &rng);
    if (need_style)
        fill_data(&h->style_desc, h->style, &rng);
    fill_floats(h->gamma, s->c, 0.5f, 1.5f, &rng);
    fill_floats(h->beta, s->c, -0.5f, 0.5f, &rng);
    fill_floats(h->scale, samples, 0.5f, 1.5f, &rng);
    fill_floats(h->bias, samples, -0.5f, 0.5f, &rng);
    return true;
}

typedef struct bench_tensors {
    inorm_context *ctx;
    inorm_tensor *x, *y, *style;
    inorm_tensor *gamma, *beta;  /* 1 x C x 1 x 1 */
    inorm_tensor *scale, *bias;  /* N x C x 1 x 1 */
    inorm_tensor *mean, *std;    /* N x C x 1 x 1, stats' outputs */
} bench_tensors;

static void tensors_destroy(bench_tensors *t)
{
    inorm_tensor *all[] = { t->x, t->y, t->style, t->gamma, t->beta, t->scale, t->bias, t->mean, t->std };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        inorm_tensor_destroy(all[i]);
    inorm_context *ctx = t->ctx;
    memset(t, 0, sizeof *t);
    t->ctx = ctx;
}

static inorm_status create_written(inorm_context *ctx, const inorm_tensor_desc *desc, const void *data,
                                   inorm_tensor **out)
{
    inorm_status status = inorm_tensor_create(ctx, desc, out);
    if (status == INORM_SUCCESS && data)
        status = inorm_tensor_write(*out, data, inorm_tensor_desc_bytes(desc));
    return status;
}

/* Creates and fills every tensor the ops need on t->ctx. On failure the ones
 * made are destroyed and the context's error says why. */
static inorm_status tensors_create(bench_tensors *t, const host_data *h)
{
    const inorm_tensor_desc *d = &h->desc;
    const inorm_tensor_desc channel = { 1, d->c, 1, 1, INORM_FLOAT32, INORM_NCHW };
    const inorm_tensor_desc sample = { d->n, d->c, 1, 1, INORM_FLOAT32, INORM_NCHW };
    inorm_status status;
    if ((status = create_written(t->ctx, d, h->x, &t->x)) != INORM_SUCCESS ||
        (status = create_written(t->ctx, d, NULL, &t->y)) != INORM_SUCCESS ||
        (h->style && (status = create_written(t->ctx, &h->style_desc, h->style, &t->style)) != INORM_SUCCESS) ||
        (status = create_written(t->ctx, &channel, h->gamma, &t->gamma)) != INORM_SUCCESS ||
        (status = create_written(t->ctx, &channel, h->beta, &t->beta)) != INORM_SUCCESS ||
        (status = create_written(t->ctx, &sample, h->scale, &t->scale)) != INORM_SUCCESS ||
        (status = create_written(t->ctx, &sample, h->bias, &t->bias)) != INORM_SUCCESS ||
        (status = create_written(t->ctx, &sample, NULL, &t->mean)) != INORM_SUCCESS ||
        (status = create_written(t->ctx, &sample, NULL, &t->std)) != INORM_SUCCESS) {
        char saved[INORM_ERROR_TEXT_SIZE];
        snprintf(saved, sizeof saved, "%s", inorm_context_error(t->ctx));
        tensors_destroy(t);
        snprintf(t->ctx->error, sizeof t->ctx->error, "%s", saved);
        return status;
    }
    return INORM_SUCCESS;
}

/* ------------------------------------------------------------------------- */
/* Measurement                                                                */
/* ------------------------------------------------------------------------- */

typedef enum job_kind {
    JOB_OP, JOB_COPY_BUFFER, JOB_COPY_SHADER, JOB_COPY_SHADER_STORAGE, JOB_COPY_SHADER_ALU, JOB_COPY_SHADER_ALU_STORAGE
} job_kind;

typedef struct job {
    job_kind kind;
    enum bench_op op;
    const bench_tensors *t;
} job;

static inorm_status record_job(const job *j)
{
    const bench_tensors *t = j->t;
    switch (j->kind) {
    case JOB_COPY_BUFFER: return inorm_convert(t->ctx, t->x, t->y);
    case JOB_COPY_SHADER: return inorm_convert_op(t->ctx, t->x, t->y, INORM_COPY_SHADER);
    case JOB_COPY_SHADER_ALU: return inorm_convert_op(t->ctx, t->x, t->y, INORM_COPY_SHADER_ALU);
    case JOB_COPY_SHADER_STORAGE: return inorm_convert_op(t->ctx, t->x, t->y, INORM_COPY_SHADER_STORAGE);
    case JOB_COPY_SHADER_ALU_STORAGE: return inorm_convert_op(t->ctx, t->x, t->y, INORM_COPY_SHADER_ALU_STORAGE);
    case JOB_OP: break;
    }
    switch (j->op) {
    case OP_INSTANCE_NORM: return inorm_instance_norm(t->ctx, t->x, t->gamma, t->beta, NULL, t->y);
    case OP_ADAIN: return inorm_adain(t->ctx, t->x, t->style, 1.0f, NULL, t->y);
    case OP_ADAIN_MODULATE: return inorm_adain_modulate(t->ctx, t->x, t->scale, t->bias, NULL, t->y);
    case OP_STATS: return inorm_stats(t->ctx, t->x, NULL, t->mean, t->std);
    case OP_GROUP_NORM:
        return inorm_group_norm(t->ctx, t->x, group_count(t->x->desc.c), t->gamma, t->beta, NULL, t->y);
    case OP_LAYER_NORM: return inorm_layer_norm(t->ctx, t->x, t->gamma, t->beta, NULL, t->y);
    case OP_GROUP_NORM_SILU: {
        inorm_norm_params silu = INORM_NORM_PARAMS_DEFAULT;
        silu.activation = INORM_ACTIVATION_SILU;
        return inorm_group_norm(t->ctx, t->x, group_count(t->x->desc.c), t->gamma, t->beta, &silu, t->y);
    }
    case OP_ADAIN_BLEND: return inorm_adain(t->ctx, t->x, t->style, 0.5f, NULL, t->y);
    case OP_COUNT: break;
    }
    return INORM_ERROR_INVALID_ARGUMENT;
}

/* Partner jobs of one measurement: the shader copy and the through-ALU copy. */
#define MAX_PARTNERS 2

typedef struct timing {
    int runs, warmup;
    double median_s, min_s;
    double wall_median_s;    /* host wall clock around op + finish, for comparison */
    const char *clock;       /* "device", "cpu-op" (the CPU path's op wall clock) or "wall" */
    inorm_plan_info plan;    /* as left by the last recording */
    bool plan_set;           /* the op wrote last_plan */
    /* With partner jobs: per partner, the median over the measured runs of
     * (the partner's run just before) / (this job's run) */
    double paired_ratio[MAX_PARTNERS];
} timing;

/* Records one job, waits for it and reads its device time (0 where the
 * device has none: *device_clock becomes false). */
static inorm_status run_once(const job *j, double *seconds, bool *device_clock)
{
    inorm_context *ctx = j->t->ctx;
    inorm_status status = record_job(j);
    if (status == INORM_SUCCESS)
        status = inorm_context_finish(ctx);
    if (status != INORM_SUCCESS)
        return status;
    *seconds = 0.0;
    status = inorm_context_last_device_time(ctx, seconds);
    if (status == INORM_ERROR_UNSUPPORTED) {
        *device_clock = false;
        return INORM_SUCCESS;
    }
    return status;
}

/* Runs warm-up then measured runs of one job: record, finish, read the time.
 * Each run of j is preceded by one run of each of the partner_count partner
 * jobs (which must leave j's inputs alone): lavapipe on a shared machine
 * changes speed by up to 2x from one second to the next, so an op's ratio to
 * a copy measured seconds apart moved by as much from one benchmark run to
 * the next, while a run and the copy just before it see the same machine. */
static inorm_status measure(const job *j, const job *partners, int partner_count, const bench_config *cfg,
                            timing *out)
{
    inorm_context *ctx = j->t->ctx;
    const int max_runs = cfg->runs > 0 ? cfg->runs : AUTO_MAX_RUNS;
    double *device = malloc((size_t)max_runs * sizeof *device), *wall = malloc((size_t)max_runs * sizeof *wall);
    double *ratios = malloc((size_t)(max_runs * (partner_count ? partner_count : 1)) * sizeof *ratios);
    if (!device || !wall || !ratios) {
        free(device);
        free(wall);
        free(ratios);
        return inorm_fail(ctx, INORM_ERROR_OUT_OF_HOST_MEMORY, "inorm-bench: out of memory");
    }
    memset(out, 0, sizeof *out);
    inorm_status status = INORM_SUCCESS;
    bool device_clock = true;
    int warmup = cfg->warmup >= 0 ? cfg->warmup : AUTO_WARMUP, runs = 0;
    double spent = 0.0;
    double partner_s[MAX_PARTNERS] = { 0 };
    for (int i = -warmup; i < max_runs; ++i) {
        for (int k = 0; k < partner_count && status == INORM_SUCCESS; ++k)
            status = run_once(&partners[k], &partner_s[k], &device_clock);
        if (status != INORM_SUCCESS)
            break;
        memset(&ctx->last_plan, 0, sizeof ctx->last_plan);
        double start = wall_seconds();
        if ((status = record_job(j)) != INORM_SUCCESS)
            break;
        out->plan = ctx->last_plan;
        if ((status = inorm_context_finish(ctx)) != INORM_SUCCESS)
            break;
        double elapsed = wall_seconds() - start;
        if (i < 0) {
            out->warmup++;
            if (cfg->warmup < 0 && elapsed > AUTO_LONG_RUN_S)
                i = -1;  /* enough warm-up for a long case */
            continue;
        }
        double seconds = 0.0;
        inorm_status time_status = inorm_context_last_device_time(ctx, &seconds);
        if (time_status == INORM_ERROR_UNSUPPORTED)
            device_clock = false;
        else if (time_status != INORM_SUCCESS) {
            status = time_status;
            break;
        }
        device[runs] = seconds;
        wall[runs] = elapsed;
        for (int k = 0; k < partner_count; ++k)
            ratios[k * max_runs + runs] = partner_s[k] / seconds;
        spent += elapsed;
        ++runs;
        if (cfg->runs < 0 && runs >= AUTO_MIN_RUNS && spent >= AUTO_BUDGET_S)
            break;
    }
    if (status == INORM_SUCCESS) {
        double *times = device_clock ? device : wall;
        out->runs = runs;
        out->median_s = median(times, runs);
        out->min_s = times[0];
        out->wall_median_s = device_clock ? median(wall, runs) : out->median_s;
        out->clock = !device_clock ? "wall" : ctx->vk ? "device" : "cpu-op";
        out->plan_set = out->plan.variant[0] != '\0';
        for (int k = 0; k < MAX_PARTNERS; ++k)
            out->paired_ratio[k] = k < partner_count && device_clock ? median(&ratios[k * max_runs], runs) : NAN;
    }
    free(device);
    free(wall);
    free(ratios);
    return status;
}

/* The machine's memcpy on `threads` threads, each copying its part. */
#define MEMCPY_THREADS 2

typedef struct memcpy_worker {
    pthread_barrier_t *start, *done;
    const char *src;
    char *dst;
    size_t bytes;
    const bool *stop;
} memcpy_worker;

static void *memcpy_thread(void *arg)
{
    const memcpy_worker *w = arg;
    for (;;) {
        pthread_barrier_wait(w->start);
        if (*w->stop)
            return NULL;
        memcpy(w->dst, w->src, w->bytes);
        pthread_barrier_wait(w->done);
    }
}

/* Median wall time of a 2-thread memcpy of `bytes`; false if out of memory
 * or threads. */
static bool measure_memcpy(size_t bytes, const bench_config *cfg, timing *out)
{
    memset(out, 0, sizeof *out);
    char *src = malloc(bytes), *dst = malloc(bytes);
    const int max_runs = cfg->runs > 0 ? cfg->runs : AUTO_MAX_RUNS;
    double *times = malloc((size_t)max_runs * sizeof *times);
    bool ok = src && dst && times;
    pthread_barrier_t start, done;
    pthread_t thread;
    bool stop = false, started = false;
    if (ok) {
        memset(src, 1, bytes);
        memset(dst, 0, bytes);  /* fault the pages in outside the timing */
        bool barriers = pthread_barrier_init(&start, NULL, MEMCPY_THREADS) == 0;
        if (barriers && pthread_barrier_init(&done, NULL, MEMCPY_THREADS) != 0) {
            pthread_barrier_destroy(&start);
            barriers = false;
        }
        if (!barriers) {
            free(src);
            free(dst);
            free(times);
            return false;
        }
        size_t half = bytes / MEMCPY_THREADS / 64 * 64;
        memcpy_worker worker = { &start, &done, src + half, dst + half, bytes - half, &stop };
        started = pthread_create(&thread, NULL, memcpy_thread, &worker) == 0;
        ok = started;
        int warmup = cfg->warmup >= 0 ? cfg->warmup : AUTO_WARMUP, runs = 0;
        double spent = 0.0;
        for (int i = -warmup; ok && i < max_runs; ++i) {
            double t0 = wall_seconds();
            pthread_barrier_wait(&start);
            memcpy(dst, src, half);
            pthread_barrier_wait(&done);
            double elapsed = wall_seconds() - t0;
            if (i < 0) {
                out->warmup++;
                continue;
            }
            times[runs++] = elapsed;
            spent += elapsed;
            if (cfg->runs < 0 && runs >= AUTO_MIN_RUNS && spent >= AUTO_BUDGET_S)
                break;
        }
        if (started) {
            stop = true;
            pthread_barrier_wait(&start);
            pthread_join(thread, NULL);
        }
        pthread_barrier_destroy(&start);
        pthread_barrier_destroy(&done);
        if (ok) {
            out->runs = runs;
            out->median_s = median(times, runs);
            out->min_s = times[0];
            out->wall_median_s = out->median_s;
            out->clock = "wall";
            snprintf(out->plan.variant, sizeof out->plan.variant, "memcpy, %d threads", MEMCPY_THREADS);
            out->plan.bytes_moved = 2.0 * (double)bytes;
            out->plan_set = true;
        }
    }
    free(src);
    free(dst);
    free(times);
    return ok;
}

/* ------------------------------------------------------------------------- */
/* Correctness: the Vulkan result against the CPU path's                      */
/* ------------------------------------------------------------------------- */

static double value_at(const void *data, inorm_dtype dtype, size_t i)
{
    return dtype == INORM_FLOAT16 ? (double)inorm_half_to_float(((const uint16_t *)data)[i])
                                  : (double)((const float *)data)[i];
}

/* max |v - ref| / (1 + |ref|); a NaN or Inf where the other has none is an
 * infinite error. */
static double max_error(const void *values, const void *ref, inorm_dtype dtype, size_t count)
{
    double worst = 0.0;
    for (size_t i = 0; i < count; ++i) {
        double v = value_at(values, dtype, i), r = value_at(ref, dtype, i);
        double e;
        if (isnan(v) || isnan(r))
            e = isnan(v) && isnan(r) ? 0.0 : INFINITY;
        else if (isinf(v) || isinf(r))
            e = v == r ? 0.0 : INFINITY;
        else
            e = fabs(v - r) / (1.0 + fabs(r));
        if (e > worst)
            worst = e;
    }
    return worst;
}

/* The outputs of one op, read back to the host. */
typedef struct op_output {
    void *y;             /* x's bytes, in x's dtype (not for stats) */
    float *mean, *std;   /* stats: N x C */
} op_output;

static void op_output_free(op_output *o)
{
    free(o->y);
    free(o->mean);
    free(o->std);
    memset(o, 0, sizeof *o);
}

static inorm_status read_output(const bench_tensors *t, enum bench_op op, const host_data *h, op_output *o)
{
    memset(o, 0, sizeof *o);
    if (op == OP_STATS) {
        size_t bytes = (size_t)h->desc.n * h->desc.c * sizeof(float);
        o->mean = malloc(bytes);
        o->std = malloc(bytes);
        if (!o->mean || !o->std)
            return inorm_fail(t->ctx, INORM_ERROR_OUT_OF_HOST_MEMORY, "inorm-bench: out of memory");
        inorm_status status = inorm_tensor_read(t->mean, o->mean, bytes);
        return status == INORM_SUCCESS ? inorm_tensor_read(t->std, o->std, bytes) : status;
    }
    o->y = malloc(h->bytes);
    if (!o->y)
        return inorm_fail(t->ctx, INORM_ERROR_OUT_OF_HOST_MEMORY, "inorm-bench: out of memory");
    return inorm_tensor_read(t->y, o->y, h->bytes);
}

static double compare_outputs(const op_output *a, const op_output *ref, const host_data *h)
{
    if (ref->mean) {
        size_t count = (size_t)h->desc.n * h->desc.c;
        double e1 = max_error(a->mean, ref->mean, INORM_FLOAT32, count);
        double e2 = max_error(a->std, ref->std, INORM_FLOAT32, count);
        return e1 > e2 ? e1 : e2;
    }
    return max_error(a->y, ref->y, h->desc.dtype, h->elements);
}

/* ------------------------------------------------------------------------- */
/* Results                                                                    */
/* ------------------------------------------------------------------------- */

typedef struct result {
    bool roofline;           /* a copy, not an op */
    char op[24];
    enum bench_backend backend;
    bench_shape shape;
    inorm_dtype dtype;
    inorm_layout layout;
    uint32_t groups;         /* group_norm */
    const char *status;      /* "ok", "skipped", "failed" */
    char note[320];
    timing time;
    double elements, x_bytes, min_bytes;
    double gbps;
    double ratio_copy, ratio_shader_copy, ratio_shader_alu, ratio_memcpy;  /* NAN: not measured */
    double copy_s, shader_copy_s, shader_alu_s, memcpy_s;                  /* the rooflines' raw medians */
    double max_err, err_limit;                           /* NAN: not checked */
} result;

typedef struct result_list {
    result *items;
    size_t count, capacity;
} result_list;

static bool table_header_printed;

static void print_table_header(void)
{
    printf("%-13s %-5s %-6s %-7s %-15s %4s %-6s %10s %8s %6s %6s %6s %8s %4s %6s  %s\n", "shape", "dtype",
           "layout", "backend", "op", "runs", "clock", "time_ms", "GB/s", "r_copy", "r_shdr", "r_mcpy", "max_err",
           "disp", "B/el", "plan / note");
}

static void format_or_dash(char *out, size_t size, const char *fmt, double value)
{
    if (isnan(value))
        snprintf(out, size, "-");
    else
        snprintf(out, size, fmt, value);
}

static void print_table_row(const result *r)
{
    if (!table_header_printed) {
        print_table_header();
        table_header_printed = true;
    }
    char shape[48], op[48], runs[16], time_ms[24], gbps[24], rc[16], rs[16], rm[16], err[24], disp[16], bpe[24];
    snprintf(shape, sizeof shape, "%ux%ux%ux%u", r->shape.n, r->shape.c, r->shape.h, r->shape.w);
    if (r->groups)
        snprintf(op, sizeof op, "%s/%u", r->op, r->groups);
    else
        snprintf(op, sizeof op, "%s", r->op);
    bool ok = strcmp(r->status, "ok") == 0 || (strcmp(r->status, "failed") == 0 && r->time.runs > 0);
    snprintf(runs, sizeof runs, ok ? "%d" : "-", r->time.runs);
    format_or_dash(time_ms, sizeof time_ms, "%.4f", ok ? r->time.median_s * 1e3 : NAN);
    format_or_dash(gbps, sizeof gbps, "%.2f", ok ? r->gbps : NAN);
    format_or_dash(rc, sizeof rc, "%.2f", r->ratio_copy);
    format_or_dash(rs, sizeof rs, "%.2f", r->ratio_shader_copy);
    format_or_dash(rm, sizeof rm, "%.2f", r->ratio_memcpy);
    format_or_dash(err, sizeof err, "%.1e", r->max_err);
    bool plan = ok && r->time.plan_set;
    format_or_dash(disp, sizeof disp, "%.0f", plan ? (double)r->time.plan.dispatches : NAN);
    format_or_dash(bpe, sizeof bpe, "%.2f", plan ? r->time.plan.bytes_moved / r->elements : NAN);
    char detail[sizeof r->time.plan.variant + sizeof r->note + 2];
    if (strcmp(r->status, "ok") == 0)
        snprintf(detail, sizeof detail, "%s%s%s", plan ? r->time.plan.variant : "(plan not set)",
                 r->note[0] ? "; " : "", r->note);
    else
        snprintf(detail, sizeof detail, "%s: %s", r->status, r->note);
    printf("%-13s %-5s %-6s %-7s %-15s %4s %-6s %10s %8s %6s %6s %6s %8s %4s %6s  %s\n", shape,
           dtype_names[r->dtype], layout_names[r->layout], backend_names[r->backend], op, runs,
           ok ? r->time.clock : "-", time_ms, gbps, rc, rs, rm, err, disp, bpe, detail);
    fflush(stdout);
}

static void add_result(result_list *list, const result *r, const bench_config *cfg)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? 2 * list->capacity : 256;
        result *items = realloc(list->items, capacity * sizeof *items);
        if (!items) {
            fprintf(stderr, "inorm-bench: out of memory\n");
            exit(1);
        }
        list->items = items;
        list->capacity = capacity;
    }
    list->items[list->count++] = *r;
    if (!cfg->json)
        print_table_row(r);
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; ++s) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static void json_number(double value)
{
    if (isnan(value) || isinf(value))
        printf("null");
    else
        printf("%.9g", value);
}

/* ------------------------------------------------------------------------- */
/* Devices                                                                    */
/* ------------------------------------------------------------------------- */

typedef struct bench_device {
    inorm_context *ctx;        /* NULL: not available */
    inorm_device_info info;
    const char *clock;         /* what measure() will report */
    char note[320];            /* why it is not available */
} bench_device;

static const char *device_type_name(inorm_device_type type)
{
    switch (type) {
    case INORM_DEVICE_TYPE_INTEGRATED_GPU: return "integrated-gpu";
    case INORM_DEVICE_TYPE_DISCRETE_GPU: return "discrete-gpu";
    case INORM_DEVICE_TYPE_VIRTUAL_GPU: return "virtual-gpu";
    case INORM_DEVICE_TYPE_CPU: return "cpu";
    case INORM_DEVICE_TYPE_CPU_PATH: return "cpu-path";
    case INORM_DEVICE_TYPE_OTHER: break;
    }
    return "other";
}

static const char *clock_description(const char *clock)
{
    if (strcmp(clock, "device") == 0)
        return "device timestamps (inorm_context_last_device_time)";
    if (strcmp(clock, "cpu-op") == 0)
        return "CPU path op wall clock (inorm_context_last_device_time)";
    return "wall clock around op + inorm_context_finish (no device timestamps)";
}

/* Which clock a context's measurements will use: one tiny timed copy. */
static inorm_status probe_clock(bench_device *dev)
{
    inorm_status status = inorm_context_set_profiling(dev->ctx, 1);
    if (status != INORM_SUCCESS)
        return status;
    inorm_tensor_desc desc = { 1, 1, 4, 4, INORM_FLOAT32, INORM_NCHW };
    float data[16] = { 0 };
    inorm_tensor *a = NULL, *b = NULL;
    double seconds;
    if ((status = create_written(dev->ctx, &desc, data, &a)) == INORM_SUCCESS &&
        (status = inorm_tensor_create(dev->ctx, &desc, &b)) == INORM_SUCCESS &&
        (status = inorm_convert(dev->ctx, a, b)) == INORM_SUCCESS &&
        (status = inorm_context_finish(dev->ctx)) == INORM_SUCCESS) {
        status = inorm_context_last_device_time(dev->ctx, &seconds);
        dev->clock = status == INORM_SUCCESS ? (dev->ctx->vk ? "device" : "cpu-op") : "wall";
        if (status == INORM_ERROR_UNSUPPORTED)
            status = INORM_SUCCESS;
    }
    inorm_tensor_destroy(a);
    inorm_tensor_destroy(b);
    return status;
}

/* Resolves --device: a number is an index, anything else part of a name. */
static bool resolve_device(const char *spec, int *index)
{
    char *end;
    long value = strtol(spec, &end, 10);
    if (end != spec && *end == '\0' && value >= 0 && value < 1000000) {
        *index = (int)value;
        return true;
    }
    uint32_t count = 0;
    inorm_device_info infos[16];
    if (inorm_enumerate_devices(NULL, &count) != INORM_SUCCESS)
        count = 0;
    if (count > 16)
        count = 16;
    if (count && inorm_enumerate_devices(infos, &count) != INORM_SUCCESS)
        count = 0;
    size_t len = strlen(spec);
    for (uint32_t i = 0; i < count; ++i) {
        for (const char *p = infos[i].name; *p; ++p) {
            if (strncasecmp(p, spec, len) == 0) {
                *index = (int)i;
                return true;
            }
        }
    }
    fprintf(stderr, "inorm-bench: --device: no Vulkan device's name contains \"%s\"; devices:", spec);
    for (uint32_t i = 0; i < count; ++i)
        fprintf(stderr, " [%u] %s", i, infos[i].name);
    fprintf(stderr, count ? "\n" : " none\n");
    return false;
}

/* Opens a backend's context. A missing Vulkan device is a note, not a failure. */
static inorm_status open_device(enum bench_backend backend, int device_index, bench_device *dev)
{
    memset(dev, 0, sizeof *dev);
    inorm_context_desc desc = INORM_CONTEXT_DESC_DEFAULT;
    desc.backend = backend == BACKEND_VULKAN ? INORM_BACKEND_VULKAN : INORM_BACKEND_CPU;
    desc.device_index = device_index;
    char message[256] = "";
    inorm_status status = inorm_context_create_ex(&desc, &dev->ctx, message, sizeof message);
    if (status != INORM_SUCCESS) {
        snprintf(dev->note, sizeof dev->note, "%s: %s", inorm_status_string(status), message);
        dev->ctx = NULL;
        return status;
    }
    if ((status = inorm_context_info(dev->ctx, &dev->info)) != INORM_SUCCESS ||
        (status = probe_clock(dev)) != INORM_SUCCESS) {
        snprintf(dev->note, sizeof dev->note, "%s: %s", inorm_status_string(status), inorm_context_error(dev->ctx));
        inorm_context_destroy(dev->ctx);
        dev->ctx = NULL;
    }
    return status;
}

static void print_devices_table(const bench_device devs[BACKEND_COUNT], const bench_config *cfg)
{
    printf("inorm-bench %d.%d.%d\n", INORM_VERSION_MAJOR, INORM_VERSION_MINOR, INORM_VERSION_PATCH);
    for (int b = 0; b < BACKEND_COUNT; ++b) {
        const bench_device *d = &devs[b];
        if (!cfg->backends[b] && b != BACKEND_CPU)
            continue;
        if (!d->ctx) {
            printf("%-7s not available: %s\n", backend_names[b], d->note);
            continue;
        }
        const inorm_device_info *i = &d->info;
        if (i->backend == INORM_BACKEND_VULKAN)
            printf("%-7s device \"%s\" (%s), driver %s, %s, Vulkan %u.%u.%u, subgroup size %u%s, fp16 storage "
                   "%s, maxStorageBufferRange %llu\n",
                   backend_names[b], i->name, device_type_name(i->type), i->driver_name, i->driver_info,
                   i->api_version >> 22, (i->api_version >> 12) & 0x3ffu, i->api_version & 0xfffu,
                   i->subgroup_size, i->subgroup_ops_used ? " (subgroup ops used)" : " (shared-memory reductions)",
                   i->float16_storage ? "yes" : "no", (unsigned long long)i->max_storage_buffer_range);
        else
            printf("%-7s %s%s\n", backend_names[b], i->name,
                   cfg->backends[b] ? "" : ", used only as the reference for max_err");
        printf("%-7s clock: %s\n", "", clock_description(d->clock));
        if (b == BACKEND_CPU && cfg->backends[b])
            printf("%-7s memcpy roofline: %d threads, CLOCK_MONOTONIC wall clock\n", "", MEMCPY_THREADS);
    }
    if (cfg->runs > 0)
        printf("runs %d, ", cfg->runs);
    else
        printf("runs: up to %d, stopping after %.2f s once %d are done; ", AUTO_MAX_RUNS, AUTO_BUDGET_S,
               AUTO_MIN_RUNS);
    if (cfg->warmup >= 0)
        printf("warm-up %d\n", cfg->warmup);
    else
        printf("warm-up %d (1 when a run takes > %.0f ms)\n", AUTO_WARMUP, AUTO_LONG_RUN_S * 1e3);
    if (cfg->style_scale != 1.0)
        printf("AdaIN's style planes: the content's H and W times %g\n", cfg->style_scale);
    printf("time_ms: median; GB/s: minimum bytes / time (x read + y written once; adain + style; stats + 2*N*C "
           "floats)\n"
           "r_copy / r_shdr / r_mcpy: copy time scaled to the op's minimum bytes / op time, against inorm_convert "
           "(vulkan: vkCmdCopyBuffer, cpu: the CPU path's convert), the copy shader (vulkan) and %d-thread memcpy "
           "(cpu); 1.0 = copy speed; r_shdr (and the JSON's shader_copy_alu) paired: each run of the op follows a "
           "run of each copy shader, and the ratio is the median of the runs' own ratios\n"
           "max_err: max |y - y_cpu| / (1 + |y_cpu|); disp: dispatches; B/el: planned bytes moved per element\n\n",
           MEMCPY_THREADS);
}

static void print_json(const bench_device devs[BACKEND_COUNT], const bench_config *cfg, const result_list *list,
                       int failures)
{
    printf("{\n  \"tool\": \"inorm-bench\",\n  \"version\": \"%d.%d.%d\",\n", INORM_VERSION_MAJOR,
           INORM_VERSION_MINOR, INORM_VERSION_PATCH);
    printf("  \"config\": {\"runs\": ");
    if (cfg->runs > 0)
        printf("%d", cfg->runs);
    else
        printf("\"auto\"");
    printf(", \"max_runs\": %d, \"min_runs\": %d, \"run_budget_s\": %g, \"warmup\": ",
           cfg->runs > 0 ? cfg->runs : AUTO_MAX_RUNS, cfg->runs > 0 ? cfg->runs : AUTO_MIN_RUNS, AUTO_BUDGET_S);
    if (cfg->warmup >= 0)
        printf("%d", cfg->warmup);
    else
        printf("\"auto\"");
    printf(", \"quick\": %s, \"memcpy_threads\": %d, \"style_scale\": %g},\n", cfg->quick ? "true" : "false",
           MEMCPY_THREADS, cfg->style_scale);
    printf("  \"devices\": [");
    bool first = true;
    for (int b = 0; b < BACKEND_COUNT; ++b) {
        const bench_device *d = &devs[b];
        if (!cfg->backends[b] && b != BACKEND_CPU)
            continue;
        const inorm_device_info *i = &d->info;
        printf("%s\n    {\"backend\": \"%s\", \"available\": %s, \"benchmarked\": %s", first ? "" : ",",
               backend_names[b], d->ctx ? "true" : "false", cfg->backends[b] && d->ctx ? "true" : "false");
        first = false;
        if (!d->ctx) {
            printf(", \"note\": ");
            json_string(d->note);
            printf("}");
            continue;
        }
        printf(", \"name\": ");
        json_string(i->name);
        printf(", \"type\": \"%s\", \"driver_name\": ", device_type_name(i->type));
        json_string(i->driver_name);
        printf(", \"driver_info\": ");
        json_string(i->driver_info);
        printf(", \"vendor_id\": %u, \"device_id\": %u, \"api_version\": \"%u.%u.%u\", \"subgroup_size\": %u, "
               "\"subgroup_ops_used\": %s, \"float16_storage\": %s, \"max_storage_buffer_range\": %llu, "
               "\"clock\": \"%s\", \"clock_description\": ",
               i->vendor_id, i->device_id, i->api_version >> 22, (i->api_version >> 12) & 0x3ffu,
               i->api_version & 0xfffu, i->subgroup_size, i->subgroup_ops_used ? "true" : "false",
               i->float16_storage ? "true" : "false", (unsigned long long)i->max_storage_buffer_range, d->clock);
        json_string(clock_description(d->clock));
        printf("}");
    }
    printf("\n  ],\n  \"cases\": [");
    for (size_t k = 0; k < list->count; ++k) {
        const result *r = &list->items[k];
        const timing *t = &r->time;
        printf("%s\n    {\"kind\": \"%s\", \"backend\": \"%s\", \"op\": \"%s\", ", k ? "," : "",
               r->roofline ? "roofline" : "op", backend_names[r->backend], r->op);
        if (r->groups)
            printf("\"groups\": %u, ", r->groups);
        printf("\"shape\": [%u, %u, %u, %u], \"dtype\": \"%s\", \"layout\": \"%s\", \"status\": \"%s\", \"note\": ",
               r->shape.n, r->shape.c, r->shape.h, r->shape.w, dtype_names[r->dtype], layout_names[r->layout],
               r->status);
        json_string(r->note);
        printf(",\n     \"elements\": %.0f, \"x_bytes\": %.0f, \"min_bytes\": %.0f, ", r->elements, r->x_bytes,
               r->min_bytes);
        bool timed = t->runs > 0;
        printf("\"runs\": %d, \"warmup\": %d, \"clock\": ", t->runs, t->warmup);
        if (timed)
            printf("\"%s\"", t->clock);
        else
            printf("null");
        printf(", \"median_s\": ");
        json_number(timed ? t->median_s : NAN);
        printf(", \"min_s\": ");
        json_number(timed ? t->min_s : NAN);
        printf(", \"wall_median_s\": ");
        json_number(timed ? t->wall_median_s : NAN);
        printf(", \"gbps\": ");
        json_number(timed ? r->gbps : NAN);
        printf(",\n     \"roofline_s\": {\"copy\": ");
        json_number(r->copy_s);
        printf(", \"shader_copy\": ");
        json_number(r->shader_copy_s);
        printf(", \"shader_copy_alu\": ");
        json_number(r->shader_alu_s);
        printf(", \"memcpy\": ");
        json_number(r->memcpy_s);
        printf("}, \"ratio\": {\"copy\": ");
        json_number(r->ratio_copy);
        printf(", \"shader_copy\": ");
        json_number(r->ratio_shader_copy);
        printf(", \"shader_copy_alu\": ");
        json_number(r->ratio_shader_alu);
        printf(", \"memcpy\": ");
        json_number(r->ratio_memcpy);
        printf("}, \"max_err\": ");
        json_number(r->max_err);
        printf(", \"err_limit\": ");
        json_number(r->err_limit);
        printf(",\n     \"plan\": ");
        if (timed && t->plan_set) {
            printf("{\"variant\": ");
            json_string(t->plan.variant);
            printf(", \"dispatches\": %u, \"bytes_moved\": %.0f, \"bytes_per_element\": ", t->plan.dispatches,
                   t->plan.bytes_moved);
            json_number(t->plan.bytes_moved / r->elements);
            printf(", \"min_bytes_per_element\": ");
            json_number(r->min_bytes / r->elements);
            printf("}}");
        } else {
            printf("null}");
        }
    }
    printf("\n  ],\n  \"failures\": %d\n}\n", failures);
}

/* ------------------------------------------------------------------------- */
/* The run                                                                    */
/* ------------------------------------------------------------------------- */

typedef struct group_state {
    const bench_config *cfg;
    bench_device *devs;
    const host_data *h;
    bench_shape shape;
    bench_tensors tensors[BACKEND_COUNT];
    bool ready[BACKEND_COUNT];        /* tensors made on this backend */
    char skip_note[BACKEND_COUNT][320];
    double copy_s[BACKEND_COUNT], shader_copy_s, shader_alu_s, memcpy_s;
    /* the faster shader copies' kinds, run beside each Vulkan op (JOB_OP: none) */
    job_kind shader_copy_kind, shader_alu_kind;
    result_list *results;
    int failures;
} group_state;

static result new_result(const group_state *g, enum bench_backend backend, const char *op)
{
    result r;
    memset(&r, 0, sizeof r);
    snprintf(r.op, sizeof r.op, "%s", op);
    r.backend = backend;
    r.shape = g->shape;
    r.dtype = g->h->desc.dtype;
    r.layout = g->h->desc.layout;
    r.status = "ok";
    r.elements = (double)g->h->elements;
    r.x_bytes = (double)g->h->bytes;
    r.min_bytes = 2.0 * r.x_bytes;
    r.ratio_copy = r.ratio_shader_copy = r.ratio_shader_alu = r.ratio_memcpy = NAN;
    r.copy_s = r.shader_copy_s = r.shader_alu_s = r.memcpy_s = NAN;
    r.max_err = r.err_limit = NAN;
    return r;
}

/* Classifies a failed status: unsupported is a skip, anything else a failure. */
static void set_failure(group_state *g, result *r, inorm_status status, inorm_context *ctx)
{
    r->status = status == INORM_ERROR_UNSUPPORTED ? "skipped" : "failed";
    snprintf(r->note, sizeof r->note, "%s: %s", inorm_status_string(status), inorm_context_error(ctx));
    if (status != INORM_ERROR_UNSUPPORTED) {
        g->failures++;
        fprintf(stderr, "inorm-bench: %s %s %ux%ux%ux%u %s %s failed: %s\n", backend_names[r->backend], r->op,
                r->shape.n, r->shape.c, r->shape.h, r->shape.w, dtype_names[r->dtype], layout_names[r->layout],
                r->note);
    }
}

/* A roofline that does not copy is no floor: y, first filled with a byte
 * pattern x does not hold, must hold x's bytes afterwards. */
static inorm_status copy_fill_target(const bench_tensors *t, const host_data *h)
{
    size_t bytes = inorm_tensor_desc_bytes(&h->desc);
    unsigned char *pattern = malloc(bytes);
    if (!pattern)
        return INORM_ERROR_OUT_OF_HOST_MEMORY;
    memset(pattern, 0xff, bytes);  /* NaN with every bit set: fill_data writes none */
    inorm_status status = inorm_tensor_write(t->y, pattern, bytes);
    free(pattern);
    return status;
}

static bool copy_is_exact(const bench_tensors *t, const host_data *h)
{
    size_t bytes = inorm_tensor_desc_bytes(&h->desc);
    unsigned char *got = malloc(bytes);
    bool same = got && inorm_tensor_read(t->y, got, bytes) == INORM_SUCCESS && memcmp(got, h->x, bytes) == 0;
    free(got);
    return same;
}

static void measure_rooflines(group_state *g)
{
    for (int b = 0; b < BACKEND_COUNT; ++b) {
        g->copy_s[b] = NAN;
        if (!g->cfg->backends[b] || !g->ready[b])
            continue;
        /* Vulkan: also the copy shader with each value through the ALU
         * (shaders/convert.comp's THROUGH_ALU); each shader copy reading
         * texels where the device's tensors have views and reading the
         * storage buffer (-storage), the faster of the two the roofline */
        const job_kind kinds[5] = { JOB_COPY_BUFFER, JOB_COPY_SHADER, JOB_COPY_SHADER_STORAGE, JOB_COPY_SHADER_ALU,
                                    JOB_COPY_SHADER_ALU_STORAGE };
        static const char *const shader_names[5] = { NULL, "copy:shader", "copy:shader-storage", "copy:shader-alu",
                                                     "copy:shader-alu-storage" };
        for (int k = 0; k < (b == BACKEND_VULKAN ? 5 : 1); ++k) {
            result r = new_result(g, (enum bench_backend)b, shader_names[k]     ? shader_names[k]
                                                           : b == BACKEND_VULKAN ? "copy:buffer"
                                                                                 : "copy:convert");
            r.roofline = true;
            job j = { kinds[k], OP_INSTANCE_NORM, &g->tensors[b] };
            inorm_status status = copy_fill_target(&g->tensors[b], g->h);
            if (status == INORM_SUCCESS)
                status = measure(&j, NULL, 0, g->cfg, &r.time);
            if (status != INORM_SUCCESS) {
                set_failure(g, &r, status, g->tensors[b].ctx);
            } else if (!copy_is_exact(&g->tensors[b], g->h)) {
                r.status = "failed";
                snprintf(r.note, sizeof r.note, "y differs from x after the copy");
                g->failures++;
                fprintf(stderr, "inorm-bench: %s %s: y differs from x after the copy\n", backend_names[b], r.op);
            } else {
                r.gbps = r.min_bytes / r.time.median_s * 1e-9;
                const double t = r.time.median_s;
                /* !(t >= best) also takes the first (best still NAN) */
                if (kinds[k] == JOB_COPY_SHADER || kinds[k] == JOB_COPY_SHADER_STORAGE) {
                    if (!(t >= g->shader_copy_s)) {
                        g->shader_copy_s = t;
                        g->shader_copy_kind = kinds[k];
                    }
                } else if (kinds[k] == JOB_COPY_SHADER_ALU || kinds[k] == JOB_COPY_SHADER_ALU_STORAGE) {
                    if (!(t >= g->shader_alu_s)) {
                        g->shader_alu_s = t;
                        g->shader_alu_kind = kinds[k];
                    }
                } else
                    g->copy_s[b] = r.time.median_s;
            }
            add_result(g->results, &r, g->cfg);
        }
        if (b == BACKEND_CPU) {
            result r = new_result(g, BACKEND_CPU, "memcpy");
            r.roofline = true;
            if (measure_memcpy(g->h->bytes, g->cfg, &r.time)) {
                r.gbps = r.min_bytes / r.time.median_s * 1e-9;
                g->memcpy_s = r.time.median_s;
            } else {
                r.status = "failed";
                snprintf(r.note, sizeof r.note, "out of memory or threads for the memcpy roofline");
                g->failures++;
            }
            add_result(g->results, &r, g->cfg);
        }
    }
}

/* Runs one op on every backend: the CPU path first (its output is the
 * reference), then Vulkan, whose output is compared with it. */
static void run_op_case(group_state *g, enum bench_op op)
{
    const host_data *h = g->h;
    const bench_config *cfg = g->cfg;
    result rows[BACKEND_COUNT];
    op_output ref = { 0 };
    bool have_ref = false;
    for (int pass = 0; pass < 2; ++pass) {
        enum bench_backend b = pass == 0 ? BACKEND_CPU : BACKEND_VULKAN;
        result *r = &rows[b];
        *r = new_result(g, b, op_names[op]);
        r->min_bytes = min_bytes_of(op, &h->desc, h->bytes, h->style_bytes);
        if (op == OP_GROUP_NORM || op == OP_GROUP_NORM_SILU)
            r->groups = group_count(h->desc.c);
        bool timed = cfg->backends[b];
        bool needed_as_ref = b == BACKEND_CPU && cfg->backends[BACKEND_VULKAN] && g->ready[BACKEND_VULKAN];
        if (!timed && !needed_as_ref)
            continue;
        if (!g->ready[b]) {
            r->status = "skipped";
            snprintf(r->note, sizeof r->note, "%s", g->skip_note[b]);
            continue;
        }
        bench_tensors *t = &g->tensors[b];
        job j = { JOB_OP, op, t };
        inorm_status status;
        if (timed) {
            /* Vulkan: the shader copies run beside the op (see measure);
             * they write y, which the op's last run then overwrites */
            job partners[MAX_PARTNERS];
            int partner_count = 0;
            if (b == BACKEND_VULKAN && g->shader_copy_kind != JOB_OP && g->shader_alu_kind != JOB_OP) {
                partners[partner_count++] = (job){ g->shader_copy_kind, op, t };
                partners[partner_count++] = (job){ g->shader_alu_kind, op, t };
            }
            status = measure(&j, partners, partner_count, cfg, &r->time);
        } else {
            status = record_job(&j);
            if (status == INORM_SUCCESS)
                status = inorm_context_finish(t->ctx);
        }
        op_output out = { 0 };
        if (status == INORM_SUCCESS)
            status = read_output(t, op, h, &out);
        if (status != INORM_SUCCESS) {
            set_failure(g, r, status, t->ctx);
            op_output_free(&out);
            continue;
        }
        if (timed) {
            double t_op = r->time.median_s, scale = r->min_bytes / (2.0 * r->x_bytes);
            r->gbps = r->min_bytes / t_op * 1e-9;
            r->copy_s = g->copy_s[b];
            r->ratio_copy = g->copy_s[b] * scale / t_op;
            if (b == BACKEND_VULKAN) {
                r->shader_copy_s = g->shader_copy_s;
                r->ratio_shader_copy = r->time.paired_ratio[0] * scale;
                r->shader_alu_s = g->shader_alu_s;
                r->ratio_shader_alu = r->time.paired_ratio[1] * scale;
            } else {
                r->memcpy_s = g->memcpy_s;
                r->ratio_memcpy = g->memcpy_s * scale / t_op;
            }
            if (!r->time.plan_set) {
                snprintf(r->note, sizeof r->note, "last_plan was not set by the op");
            }
        }
        if (b == BACKEND_CPU) {
            ref = out;
            have_ref = true;
            continue;
        }
        if (have_ref) {
            r->err_limit = h->desc.dtype == INORM_FLOAT16 ? 4e-3 : 1e-4;
            r->max_err = compare_outputs(&out, &ref, h);
            if (!(r->max_err <= r->err_limit)) {
                r->status = "failed";
                snprintf(r->note, sizeof r->note, "max_err %.3g above the limit %.0e against the CPU path; plan %s",
                         r->max_err, r->err_limit, r->time.plan_set ? r->time.plan.variant : "(not set)");
                g->failures++;
                fprintf(stderr, "inorm-bench: vulkan %s %ux%ux%ux%u %s %s: %s\n", r->op, r->shape.n, r->shape.c,
                        r->shape.h, r->shape.w, dtype_names[r->dtype], layout_names[r->layout], r->note);
            }
        } else {
            snprintf(r->note + strlen(r->note), sizeof r->note - strlen(r->note), "%sunchecked: no CPU reference",
                     r->note[0] ? "; " : "");
        }
        op_output_free(&out);
    }
    op_output_free(&ref);
    for (int b = 0; b < BACKEND_COUNT; ++b)
        if (cfg->backends[b])
            add_result(g->results, &rows[b], cfg);
}

static void run_group(group_state *g)
{
    const bench_config *cfg = g->cfg;
    for (int b = 0; b < BACKEND_COUNT; ++b) {
        g->ready[b] = false;
        g->skip_note[b][0] = '\0';
        g->tensors[b] = (bench_tensors){ .ctx = g->devs[b].ctx };
        bool wanted = cfg->backends[b] || (b == BACKEND_CPU && cfg->backends[BACKEND_VULKAN]);
        if (!wanted)
            continue;
        if (!g->devs[b].ctx) {
            snprintf(g->skip_note[b], sizeof g->skip_note[b], "no %s context: %.280s", backend_names[b],
                     g->devs[b].note);
            continue;
        }
        inorm_status status = tensors_create(&g->tensors[b], g->h);
        if (status == INORM_SUCCESS) {
            g->ready[b] = true;
            continue;
        }
        snprintf(g->skip_note[b], sizeof g->skip_note[b], "tensors refused: %s: %s", inorm_status_string(status),
                 inorm_context_error(g->devs[b].ctx));
        if (status != INORM_ERROR_UNSUPPORTED) {
            g->failures++;
            fprintf(stderr, "inorm-bench: %s %ux%ux%ux%u %s %s: %s\n", backend_names[b], g->shape.n, g->shape.c,
                    g->shape.h, g->shape.w, dtype_names[g->h->desc.dtype], layout_names[g->h->desc.layout],
                    g->skip_note[b]);
        }
    }
    g->shader_copy_s = g->shader_alu_s = g->memcpy_s = NAN;
    g->shader_copy_kind = g->shader_alu_kind = JOB_OP;
    measure_rooflines(g);
    for (int op = 0; op < OP_COUNT; ++op)
        if (cfg->ops[op])
            run_op_case(g, (enum bench_op)op);
    for (int b = 0; b < BACKEND_COUNT; ++b)
        if (g->ready[b])
            tensors_destroy(&g->tensors[b]);
}

int main(int argc, char **argv)
{
    bench_config cfg;
    int parsed = parse_args(argc, argv, &cfg);
    if (parsed)
        return parsed == 1 ? 0 : 2;

    int device_index = -1;
    if (cfg.device && cfg.backends[BACKEND_VULKAN] && !resolve_device(cfg.device, &device_index))
        return 2;
    bench_device devs[BACKEND_COUNT];
    memset(devs, 0, sizeof devs);
    int failures = 0;
    if (cfg.backends[BACKEND_VULKAN] && open_device(BACKEND_VULKAN, device_index, &devs[BACKEND_VULKAN]) != INORM_SUCCESS) {
        fprintf(stderr, "inorm-bench: vulkan backend not available (skipped): %s\n", devs[BACKEND_VULKAN].note);
        /* an explicit --device that cannot be opened is an error */
        if (cfg.device)
            failures++;
    }
    if (open_device(BACKEND_CPU, -1, &devs[BACKEND_CPU]) != INORM_SUCCESS) {
        fprintf(stderr, "inorm-bench: CPU path not available: %s\n", devs[BACKEND_CPU].note);
        failures++;
    }
    if (!cfg.json)
        print_devices_table(devs, &cfg);

    result_list results = { 0 };
    bool need_style = cfg.ops[OP_ADAIN] || cfg.ops[OP_ADAIN_BLEND];
    for (size_t s = 0; s < cfg.shape_count; ++s) {
        for (int dt = 0; dt < 2; ++dt) {
            if (!cfg.dtypes[dt])
                continue;
            for (int lay = 0; lay < 2; ++lay) {
                if (!cfg.layouts[lay])
                    continue;
                host_data h;
                const bench_shape *shape = &cfg.shapes[s];
                /* the data depend only on the case, not on which other cases run */
                uint64_t seed = (((uint64_t)shape->n * 1000003u + shape->c) * 1000003u + shape->h) * 1000003u +
                                shape->w + 7u * (uint64_t)(2 * dt + lay);
                if (!host_data_init(&h, shape, (inorm_dtype)dt, (inorm_layout)lay, need_style, cfg.style_scale, seed)) {
                    fprintf(stderr, "inorm-bench: %ux%ux%ux%u %s %s: out of host memory or size overflow\n",
                            shape->n, shape->c, shape->h, shape->w, dtype_names[dt], layout_names[lay]);
                    failures++;
                    continue;
                }
                if (cfg.json && isatty(STDERR_FILENO))
                    fprintf(stderr, "inorm-bench: %ux%ux%ux%u %s %s\n", shape->n, shape->c, shape->h, shape->w,
                            dtype_names[dt], layout_names[lay]);
                group_state g = { .cfg = &cfg, .devs = devs, .h = &h, .shape = *shape, .results = &results };
                run_group(&g);
                failures += g.failures;
                host_data_free(&h);
                if (!cfg.json)
                    printf("\n");
            }
        }
    }

    size_t ran = 0;
    for (size_t k = 0; k < results.count; ++k)
        ran += strcmp(results.items[k].status, "ok") == 0;
    if (cfg.json)
        print_json(devs, &cfg, &results, failures);
    else
        printf("%zu cases measured, %d failure%s\n", ran, failures, failures == 1 ? "" : "s");
    free(results.items);
    for (int b = 0; b < BACKEND_COUNT; ++b)
        inorm_context_destroy(devs[b].ctx);
    if (ran == 0 && failures == 0) {
        fprintf(stderr, "inorm-bench: nothing was measured\n");
        return 1;
    }
    return failures ? 1 : 0;
}
