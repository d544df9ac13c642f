#define _POSIX_C_SOURCE 200809L /* clock_gettime */
/* The CPU path: plain C, statistics in double with a two-pass (mean, then
 * centred squares) scheme, so its results are the rounding of nearly exact
 * values. It runs everywhere, Vulkan or not, for every dtype and layout. */
#include "../internal.h"

#include <math.h>
#include <stdio.h>
#include <pthread.h>
#include <unistd.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


static double param(const inorm_tensor *t, size_t i)
{
    return ((const float *)t->host)[i];
}

typedef struct segment_stats {
    double mean;
    double std;  /* sqrt(var + eps) */
} segment_stats;

/* Weighted two-pass statistics of `channels` channel planes starting at
 * channel c0 of sample n; values of mask weight 0 are left out. */
static segment_stats compute_stats(const inorm_tensor *t, const inorm_tensor *mask, size_t n, size_t c0,
                                   size_t channels, bool unbiased, float eps)
{
    const size_t plane = inorm_plane_len(&t->desc);
    const float *weights = NULL;
    if (mask)
        weights = (const float *)mask->host + (mask->desc.n == 1 ? 0 : n) * plane;
    double weight = 0.0, sum = 0.0;
    for (size_t c = c0; c < c0 + channels; ++c) {
        for (size_t p = 0; p < plane; ++p) {
            double w = weights ? weights[p] : 1.0;
            if (w != 0.0) {
                weight += w;
                sum += w * inorm_host_load(t, inorm_element_index(&t->desc, n, c, p));
            }
        }
    }
    double mean = sum / weight;
    double squares = 0.0;
    for (size_t c = c0; c < c0 + channels; ++c) {
        for (size_t p = 0; p < plane; ++p) {
            double w = weights ? weights[p] : 1.0;
            if (w != 0.0) {
                double d = inorm_host_load(t, inorm_element_index(&t->desc, n, c, p)) - mean;
                squares += w * d * d;
            }
        }
    }
    double var = squares / (unbiased ? weight - 1.0 : weight);
    segment_stats s = { mean, sqrt(var + (double)eps) };
    return s;
}

static double activate(inorm_activation activation, double slope, double v)
{
    switch (activation) {
    case INORM_ACTIVATION_RELU: return v < 0.0 ? 0.0 : v;
    case INORM_ACTIVATION_LEAKY_RELU: return v < 0.0 ? v * slope : v;
    case INORM_ACTIVATION_SILU: return v / (1.0 + exp(-v));
    case INORM_ACTIVATION_NONE: break;
    }
    return v;
}

/* (a, b) of channel c of sample n: y = a * (x - mean) + b before the blend. */
static void coefficients(const inorm_op *op, const segment_stats *st, size_t n, size_t c, double *a, double *b)
{
    const size_t channels = op->x->desc.c;
    if (op->kind == INORM_OP_ADAIN) {
        const inorm_tensor *style = op->style;
        segment_stats ss = compute_stats(style, op->style_mask, style->desc.n == 1 ? 0 : n, c, 1, op->unbiased,
                                         op->eps);
        *a = ss.std / st->std;
        *b = ss.mean;
        return;
    }
    double g = 1.0, shift = 0.0;
    if (op->affine == INORM_AFFINE_BANK) {
        g = 0.0;
        for (size_t s = 0; s < op->bank_size; ++s) {
            double w = param(op->bank_weights, n * op->bank_size + s);
            g += w * (op->gamma ? param(op->gamma, s * channels + c) : 1.0);
            shift += op->beta ? w * param(op->beta, s * channels + c) : 0.0;
        }
    } else {
        size_t index = op->affine == INORM_AFFINE_SAMPLE ? n * channels + c : c;
        if (op->gamma)
            g = param(op->gamma, index);
        if (op->beta)
            shift = param(op->beta, index);
    }
    *a = g / st->std;
    *b = shift;
}

static void write_stats(const inorm_op *op, size_t segment, size_t segments, const segment_stats *st)
{
    for (size_t r = op->out_repeat_first; r < (size_t)op->out_repeat_first + op->out_repeat; ++r) {
        size_t index = r * segments + segment;
        float *mean = op->mean_out ? (float *)op->mean_out->host + index : NULL;
        float *std = op->std_out ? (float *)op->std_out->host + index : NULL;
        if (mean)
            *mean = (float)((op->accumulate ? *mean : 0.0) + op->out_weight * st->mean);
        if (std)
            *std = (float)((op->accumulate ? *std : 0.0) + op->out_weight * st->std);
    }
}

/* ---------------------------------------------------------------------------
 * Fast path: FLOAT32 NCHW without a mask, where a segment is contiguous.
 * Four independent double accumulators keep the adds pipelined; the result
 * is the same two-pass double computation as the general path.
 * ------------------------------------------------------------------------ */

static double sum_f32(const float *x, size_t n)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += x[i];
        s1 += x[i + 1];
        s2 += x[i + 2];
        s3 += x[i + 3];
    }
    for (; i < n; ++i)
        s0 += x[i];
    return (s0 + s1) + (s2 + s3);
}

static double squares_f32(const float *x, size_t n, double mean)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        double d0 = x[i] - mean, d1 = x[i + 1] - mean, d2 = x[i + 2] - mean, d3 = x[i + 3] - mean;
        s0 += d0 * d0;
        s1 += d1 * d1;
        s2 += d2 * d2;
        s3 += d3 * d3;
    }
    for (; i < n; ++i) {
        double d = x[i] - mean;
        s0 += d * d;
    }
    return (s0 + s1) + (s2 + s3);
}

static void apply_f32(const inorm_op *op, const float *x, float *y, size_t n, double mean, double a, double b)
{
    if (op->alpha == 1.0f && op->activation == INORM_ACTIVATION_NONE) {
        for (size_t i = 0; i < n; ++i)  /* the common case, which the compiler vectorizes */
            y[i] = (float)(a * ((double)x[i] - mean) + b);
        return;
    }
    for (size_t i = 0; i < n; ++i) {
        double v = x[i];
        double t = a * (v - mean) + b;
        if (op->alpha != 1.0f)
            t = v + op->alpha * (t - v);
        y[i] = (float)activate(op->activation, op->activation_slope, t);
    }
}

static bool fast_path(const inorm_op *op)
{
    return op->x->desc.dtype == INORM_FLOAT32 && op->x->desc.layout == INORM_NCHW && !op->mask;
}

/* ---------------------------------------------------------------------------
 * Threads: segments are split among threads; a few huge segments are each
 * split into ranges instead.
 * ------------------------------------------------------------------------ */

#define MAX_THREADS 16
/* Below this many elements an op stays on the calling thread. */
#define PARALLEL_MIN_ELEMENTS (1u << 16)

typedef struct parallel_task {
    void (*body)(struct parallel_task *task, size_t first, size_t last);
    const inorm_op *op;
    size_t first, last;       /* this thread's share */
    /* range-split statistics of one segment */
    const float *x;
    double mean, result;      /* squares: the mean; sum and squares: this share's sum */
    segment_stats stats;      /* apply: the segment's statistics */
    size_t channel_len;       /* apply: elements per channel plane */
    size_t segment;
} parallel_task;

static void *parallel_entry(void *arg)
{
    parallel_task *task = arg;
    task->body(task, task->first, task->last);
    return NULL;
}

static unsigned thread_count(size_t elements)
{
    if (elements < PARALLEL_MIN_ELEMENTS)
        return 1;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores < 1 ? 1 : cores > MAX_THREADS ? MAX_THREADS : (unsigned)cores;
}

/* Runs body over [0, count) in `threads` contiguous shares, the last on the
 * caller; tasks[i] gets share i (and whatever fields the caller set). Falls
 * back to fewer threads if a thread cannot be started. */
static void parallel_for(parallel_task *tasks, unsigned threads, size_t count)
{
    pthread_t ids[MAX_THREADS];
    bool started[MAX_THREADS] = { false };
    for (unsigned t = 0; t < threads; ++t) {
        tasks[t].first = count * t / threads;
        tasks[t].last = count * (t + 1) / threads;
    }
    for (unsigned t = 0; t + 1 < threads; ++t)
        started[t] = pthread_create(&ids[t], NULL, parallel_entry, &tasks[t]) == 0;
    tasks[threads - 1].body(&tasks[threads - 1], tasks[threads - 1].first, tasks[threads - 1].last);
    for (unsigned t = 0; t + 1 < threads; ++t) {
        if (started[t])
            pthread_join(ids[t], NULL);
        else
            tasks[t].body(&tasks[t], tasks[t].first, tasks[t].last);
    }
}

static void convert_planes(parallel_task *task, size_t first, size_t last)
{
    const inorm_op *op = task->op;
    const inorm_tensor_desc *d = &op->x->desc;
    const size_t plane = inorm_plane_len(d);
    for (size_t nc = first; nc < last; ++nc) {
        size_t n = nc / d->c, c = nc % d->c;
        for (size_t p = 0; p < plane; ++p)
            inorm_host_store(op->y, inorm_element_index(&op->y->desc, n, c, p), inorm_host_load(op->x, inorm_element_index(d, n, c, p)));
    }
}

/* (a, b) for channel c and the per-element rule: fills y over one channel plane. */
static void apply_plane(const inorm_op *op, size_t n, size_t c, const segment_stats *st, size_t p_first,
                        size_t p_last)
{
    const inorm_tensor_desc *d = &op->x->desc;
    double a, b;
    coefficients(op, st, n, c, &a, &b);
    if (fast_path(op)) {
        size_t offset = inorm_element_index(d, n, c, p_first);
        apply_f32(op, (const float *)op->x->host + offset, (float *)op->y->host + offset, p_last - p_first, st->mean,
                  a, b);
        return;
    }
    for (size_t p = p_first; p < p_last; ++p) {
        size_t i = inorm_element_index(d, n, c, p);
        double v = inorm_host_load(op->x, i);
        double t = a * (v - st->mean) + b;
        if (op->alpha != 1.0f)
            t = v + op->alpha * (t - v);
        inorm_host_store(op->y, i, activate(op->activation, op->activation_slope, t));
    }
}

static segment_stats finish_stats(double mean, double squares, double weight, const inorm_op *op)
{
    double var = squares / (op->unbiased ? weight - 1.0 : weight);
    segment_stats st = { mean, sqrt(var + (double)op->eps) };
    return st;
}

static void run_segment(const inorm_op *op, size_t segment)
{
    const inorm_tensor_desc *d = &op->x->desc;
    const size_t plane = inorm_plane_len(d);
    const size_t cps = op->channels_per_segment;
    const size_t groups = d->c / cps;
    const size_t n = segment / groups, g = segment % groups;
    segment_stats st;
    if (fast_path(op)) {
        const float *x = (const float *)op->x->host + segment * cps * plane;
        size_t len = cps * plane;
        double mean = sum_f32(x, len) / (double)len;
        st = finish_stats(mean, squares_f32(x, len, mean), (double)len, op);
    } else {
        st = compute_stats(op->x, op->mask, n, g * cps, cps, op->unbiased, op->eps);
    }
    if (op->kind == INORM_OP_STATS) {
        write_stats(op, segment, (size_t)d->n * groups, &st);
        return;
    }
    for (size_t c = g * cps; c < (g + 1) * cps; ++c)
        apply_plane(op, n, c, &st, 0, plane);
}

static void run_segments(parallel_task *task, size_t first, size_t last)
{
    for (size_t segment = first; segment < last; ++segment)
        run_segment(task->op, segment);
}

static void sum_range(parallel_task *task, size_t first, size_t last)
{
    task->result = sum_f32(task->x + first, last - first);
}

static void squares_range(parallel_task *task, size_t first, size_t last)
{
    task->result = squares_f32(task->x + first, last - first, task->mean);
}

static void apply_range(parallel_task *task, size_t first, size_t last)
{
    /* [first, last) indexes the segment's elements; split at channel planes */
    const inorm_op *op = task->op;
    const size_t plane = task->channel_len;
    const size_t groups = op->x->desc.c / op->channels_per_segment;
    const size_t n = task->segment / groups, c0 = task->segment % groups * op->channels_per_segment;
    for (size_t i = first; i < last;) {
        size_t k = i / plane, p = i % plane;
        size_t stop = (k + 1) * plane < last ? (k + 1) * plane : last;
        apply_plane(op, n, c0 + k, &task->stats, p, p + (stop - i));
        i = stop;
    }
}

/* One huge contiguous segment over all threads: sum, centred squares, apply. */
static void run_segment_split(const inorm_op *op, size_t segment, unsigned threads)
{
    const inorm_tensor_desc *d = &op->x->desc;
    const size_t plane = inorm_plane_len(d), len = op->channels_per_segment * plane;
    parallel_task tasks[MAX_THREADS];
    for (unsigned t = 0; t < threads; ++t)
        tasks[t] = (parallel_task){ .body = sum_range, .op = op, .x = (const float *)op->x->host + segment * len,
                                    .channel_len = plane, .segment = segment };
    parallel_for(tasks, threads, len);
    double sum = 0.0;
    for (unsigned t = 0; t < threads; ++t)
        sum += tasks[t].result;
    double mean = sum / (double)len;
    for (unsigned t = 0; t < threads; ++t) {
        tasks[t].body = squares_range;
        tasks[t].mean = mean;
    }
    parallel_for(tasks, threads, len);
    double squares = 0.0;
    for (unsigned t = 0; t < threads; ++t)
        squares += tasks[t].result;
    segment_stats st = finish_stats(mean, squares, (double)len, op);
    if (op->kind == INORM_OP_STATS) {
        write_stats(op, segment, (size_t)d->n * (d->c / op->channels_per_segment), &st);
        return;
    }
    for (unsigned t = 0; t < threads; ++t) {
        tasks[t].body = apply_range;
        tasks[t].stats = st;
    }
    parallel_for(tasks, threads, len);
}

static void run_op(const inorm_op *op)
{
    const inorm_tensor_desc *d = &op->x->desc;
    const unsigned threads = thread_count(op->x->elements);
    parallel_task tasks[MAX_THREADS];
    for (unsigned t = 0; t < threads; ++t)
        tasks[t] = (parallel_task){ .op = op, .body = op->kind == INORM_OP_CONVERT ? convert_planes : run_segments };
    if (op->kind == INORM_OP_CONVERT) {
        const inorm_tensor_desc *to = &op->y->desc;
        bool same_layout = d->layout == to->layout || d->c == 1 || (d->h == 1 && d->w == 1);
        if (same_layout && d->dtype == to->dtype)
            memcpy(op->y->host, op->x->host, op->x->bytes);
        else
            parallel_for(tasks, threads, (size_t)d->n * d->c);
        return;
    }
    const size_t segments = (size_t)d->n * d->c / op->channels_per_segment;
    if (segments >= 2 * (size_t)threads || !fast_path(op) || threads == 1) {
        parallel_for(tasks, threads < segments ? threads : (unsigned)segments, segments);
        return;
    }
    for (size_t segment = 0; segment < segments; ++segment)
        run_segment_split(op, segment, threads);
}

static double seconds_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);  /* timespec_get needs Android API 29 */
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

static inorm_status cpu_run(inorm_context *ctx, const inorm_op *op)
{
    double start = ctx->profiling ? seconds_now() : 0.0;
    /* Fast path: two passes over x for the statistics, one to read it and
     * write y (the general path reads x once more per statistic, but it is
     * not the one that matters for speed). */
    const bool convert = op->kind == INORM_OP_CONVERT;
    double passes = convert ? 1.0 : op->kind == INORM_OP_STATS ? 2.0 : 3.0;
    double style_bytes = op->style ? (double)op->style->bytes : 0.0;
    ctx->last_plan = (inorm_plan_info){ .dispatches = 0,
                                        .bytes_moved = passes * (double)op->x->bytes + style_bytes +
                                                       (op->y ? (double)op->y->bytes : 0.0) };
    snprintf(ctx->last_plan.variant, sizeof ctx->last_plan.variant, "cpu: %s, %u thread%s",
             convert ? "convert" : fast_path(op) ? "double two-pass, contiguous" : "double two-pass, general",
             thread_count(op->x->elements), thread_count(op->x->elements) == 1 ? "" : "s");
    if (op->kind == INORM_OP_COLOR || op->kind == INORM_OP_BLEND) {  /* pixel ops: one pass */
        ctx->last_plan = (inorm_plan_info){ .variant = "cpu: per pixel, double",
                                            .bytes_moved = (double)op->x->bytes + (double)op->y->bytes +
                                                           (op->blend_b ? (double)op->blend_b->bytes : 0.0) };
        if (op->kind == INORM_OP_COLOR)
            inorm_cpu_color(op);
        else
            inorm_cpu_blend(op);
    } else {
        run_op(op);
    }
    if (ctx->profiling)
        ctx->pending_seconds += seconds_now() - start;
    return INORM_SUCCESS;
}

static inorm_status cpu_tensor_create(inorm_context *ctx, inorm_tensor *t)
{
    /* Beyond PTRDIFF_MAX no allocation can succeed (and malloc's behaviour is
     * a sanitizer's business): refuse it as the out-of-memory it is. */
    if (t->bytes > PTRDIFF_MAX)
        return inorm_fail(ctx, INORM_ERROR_OUT_OF_HOST_MEMORY, "a tensor of %zu bytes exceeds the address space",
                          t->bytes);
    t->host = inorm_malloc(t->bytes);
    if (!t->host)
        return inorm_fail(ctx, INORM_ERROR_OUT_OF_HOST_MEMORY, "out of host memory allocating %zu bytes", t->bytes);
    return INORM_SUCCESS;
}

static void cpu_tensor_destroy(inorm_context *ctx, inorm_tensor *t)
{
    (void)ctx;
    inorm_free(t->host);
    t->host = NULL;
}

static inorm_status cpu_tensor_write(inorm_context *ctx, inorm_tensor *t, const void *src)
{
    (void)ctx;
    memcpy(t->host, src, t->bytes);
    return INORM_SUCCESS;
}

static inorm_status cpu_finish(inorm_context *ctx);

static inorm_status cpu_tensor_read(inorm_context *ctx, const inorm_tensor *t, void *dst)
{
    cpu_finish(ctx);
    memcpy(dst, t->host, t->bytes);
    return INORM_SUCCESS;
}

static inorm_status cpu_finish(inorm_context *ctx)
{
    if (ctx->profiling && ctx->pending_seconds > 0.0) {
        ctx->last_device_seconds = ctx->pending_seconds;
        ctx->pending_seconds = 0.0;
    }
    return INORM_SUCCESS;
}

const inorm_backend_ops inorm_cpu_backend = {
    .tensor_create = cpu_tensor_create,
    .tensor_destroy = cpu_tensor_destroy,
    .tensor_write = cpu_tensor_write,
    .tensor_read = cpu_tensor_read,
    .run = cpu_run,
    .finish = cpu_finish,
    .context_destroy = NULL,
};
