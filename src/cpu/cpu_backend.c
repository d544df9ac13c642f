#define _POSIX_C_SOURCE 200809L /* clock_gettime */
/* The CPU path: plain C (with AVX2 + F16C and AVX-512 forms of the inner
 * loops on x86-64, giving the same bits), statistics in double (one pass per
 * span of cache-sized blocks, about a value of the span, merged with Chan's
 * formula; planes of a few elements in two passes), outputs in float as the
 * shaders compute them. It runs everywhere, Vulkan or not, for every dtype
 * and layout. */
#include "../internal.h"

#include <math.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../x86_f16c.h"


static double param(const inorm_tensor *t, size_t i)
{
    return ((const float *)t->host)[i];
}

typedef struct segment_stats {
    double mean;
    double std;  /* sqrt(var + eps) */
} segment_stats;

static segment_stats finish_stats(double mean, double squares, double weight, const inorm_op *op)
{
    double var = squares / (op->unbiased ? weight - 1.0 : weight);
    segment_stats st = { mean, sqrt(var + (double)op->eps) };
    return st;
}

/* ---------------------------------------------------------------------------
 * The general path's per-element rule, in double (the fast path's is in
 * float: see epilogue below).
 * ------------------------------------------------------------------------ */

static inline double relu(double v) { return v < 0.0 ? 0.0 : v; }
static inline double leaky_relu(double v, double slope) { return v < 0.0 ? v * slope : v; }
static inline double silu(double v) { return v / (1.0 + exp(-v)); }
static inline double blend(double alpha, double x, double t) { return x + alpha * (t - x); }

static double activate(inorm_activation activation, double slope, double v)
{
    switch (activation) {
    case INORM_ACTIVATION_RELU: return relu(v);
    case INORM_ACTIVATION_LEAKY_RELU: return leaky_relu(v, slope);
    case INORM_ACTIVATION_SILU: return silu(v);
    case INORM_ACTIVATION_NONE: break;
    }
    return v;
}

/* (a, b) of channel c of sample n: y = a * (x - mean) + b before the blend.
 * style: AdaIN's statistics of the style plane that goes with (n, c). */
static void coefficients(const inorm_op *op, const segment_stats *st, const segment_stats *style, size_t n, size_t c,
                         double *a, double *b)
{
    const size_t channels = op->x->desc.c;
    if (op->kind == INORM_OP_ADAIN) {
        *a = style->std / st->std;
        *b = style->mean;
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
 * Threads: a job's items are taken from a shared counter in batches, so
 * uneven items (content and style chunks, a slow core) balance themselves.
 * Every item writes its own slots and merges happen in item order after the
 * join: results do not depend on which thread ran what.
 * ------------------------------------------------------------------------ */

/* Below this many elements an op stays on the calling thread: waking a
 * helper and sharing the work costs about as much as normalizing this many
 * elements. */
#define PARALLEL_MIN_ELEMENTS (1u << 16)

static unsigned thread_count(size_t elements)
{
    return inorm_cpu_threads_for(elements, PARALLEL_MIN_ELEMENTS);
}

typedef struct worker worker;
typedef struct work {
    void (*body)(const struct work *w, worker *self, size_t item);
    const void *arg;
    size_t items, batch;
    atomic_size_t next;
    worker *workers;
} work;

struct worker {
    void *scratch;  /* this thread's own buffers */
};

static void work_loop(void *arg, unsigned index, unsigned participants)
{
    (void)participants;
    work *w = arg;
    worker *self = &w->workers[index];
    for (;;) {
        size_t first = atomic_fetch_add_explicit(&w->next, w->batch, memory_order_relaxed);
        if (first >= w->items)
            return;
        size_t last = first + w->batch < w->items ? first + w->batch : w->items;
        for (size_t i = first; i < last; ++i)
            w->body(w, self, i);
    }
}

/* Runs body on every item with `threads` threads of the context's pool, the
 * caller being one; workers holds a scratch for each. */
static void run_work(inorm_context *ctx, work *w, worker *workers, unsigned threads)
{
    atomic_init(&w->next, 0);
    w->workers = workers;
    if (threads > w->items)
        threads = w->items < 1 ? 1 : (unsigned)w->items;
    /* batches of a few items keep the counter cold for tiny items, yet leave
     * about eight batches per thread to balance */
    w->batch = w->items / (8u * threads);
    if (w->batch < 1)
        w->batch = 1;
    inorm_cpu_run(ctx, threads, work_loop, w);
}

/* ---------------------------------------------------------------------------
 * General path: element by element through inorm_host_load/store. Only masked
 * ops take it (and convert's layout and dtype changes).
 * ------------------------------------------------------------------------ */

/* Weighted two-pass statistics of `channels` channel planes starting at
 * channel c0 of sample n; values of mask weight 0 are left out. */
static segment_stats compute_stats(const inorm_tensor *t, const inorm_tensor *mask, size_t n, size_t c0,
                                   size_t channels, const inorm_op *op)
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
    return finish_stats(mean, squares, weight, op);
}

static void general_segment(const inorm_op *op, size_t segment)
{
    const inorm_tensor_desc *d = &op->x->desc;
    const size_t plane = inorm_plane_len(d);
    const size_t cps = op->channels_per_segment;
    const size_t groups = d->c / cps;
    const size_t n = segment / groups, g = segment % groups;
    segment_stats st = compute_stats(op->x, op->mask, n, g * cps, cps, op);
    if (op->kind == INORM_OP_STATS) {
        write_stats(op, segment, (size_t)d->n * groups, &st);
        return;
    }
    for (size_t c = g * cps; c < (g + 1) * cps; ++c) {
        segment_stats style = { 0.0, 0.0 };
        if (op->kind == INORM_OP_ADAIN)
            style = compute_stats(op->style, op->style_mask, op->style->desc.n == 1 ? 0 : n, c, 1, op);
        double a, b;
        coefficients(op, &st, &style, n, c, &a, &b);
        for (size_t p = 0; p < plane; ++p) {
            size_t i = inorm_element_index(d, n, c, p);
            double v = inorm_host_load(op->x, i);
            double t = a * (v - st.mean) + b;
            if (op->alpha != 1.0f)
                t = blend(op->alpha, v, t);
            inorm_host_store(op->y, i, activate(op->activation, op->activation_slope, t));
        }
    }
}

static void general_body(const work *w, worker *self, size_t segment)
{
    (void)self;
    general_segment(w->arg, segment);
}

static void convert_body(const work *w, worker *self, size_t nc)
{
    (void)self;
    const inorm_op *op = w->arg;
    const inorm_tensor_desc *d = &op->x->desc;
    const size_t plane = inorm_plane_len(d);
    size_t n = nc / d->c, c = nc % d->c;
    for (size_t p = 0; p < plane; ++p)
        inorm_host_store(op->y, inorm_element_index(&op->y->desc, n, c, p),
                         inorm_host_load(op->x, inorm_element_index(d, n, c, p)));
}

/* ---------------------------------------------------------------------------
 * Fast path: every unmasked op, FLOAT32 or FLOAT16, NCHW or NHWC.
 *
 * A tensor is walked as contiguous runs of elements in which element i
 * belongs to channel i % period (period 1 for NCHW, where a run lies in one
 * segment; C for NHWC, where a run is whole pixels of one sample). Sums go
 * to `lanes` accumulators, lane j holding channel j % period; lanes is a
 * multiple of GROUP, so that inner loops have a fixed trip count of GROUP
 * (which gcc -O2 vectorizes; it does not vectorize loops that need an
 * epilogue). Runs are cut into cache-sized blocks, and those into spans of
 * a few blocks: one pass over a span sums its values and squares about a
 * shift that is one of its values (see span_moments), then Chan's merge
 * into the running moments. So x is read once for the statistics, and
 * never is E[x^2] - E[x]^2 formed about 0.
 * ------------------------------------------------------------------------ */

#define GROUP 16
/* At least this many lanes: accumulators stay in memory, and a row of several
 * groups keeps several add chains in flight instead of waiting on one. */
#define MIN_LANES 64
#define BLOCK 4096       /* elements per cache block (16 KiB of floats) */
/* ... but at least this many rows of lanes: a block is also what one call of
 * the statistics' and the apply's inner loops covers, and with NHWC C = 256
 * a call's setup per lane must not outweigh its rows; 128 rows of 256
 * lanes (128 KiB) stay in L2. */
#define MIN_BLOCK_ROWS 128
#define MAX_LANES 65536  /* NHWC: lcm(C, GROUP) beyond this takes the general path */
/* FLOAT16 units up to this many elements (256 KiB of floats, in L2) are
 * converted once for both passes */
#define MAX_RESIDENT 65536

typedef struct moments {
    double count, mean, m2;  /* m2: sum of squared deviations from mean */
} moments;

/* Chan et al.'s pairwise update: exact up to rounding whatever the means.
 * Moments of `count` values with means mean[c] and squares m2[c] merged into
 * into[c] for c < n, every into[c] having the same count (the channels of
 * one run): the weights, two divisions, are worked out once for all. */
static void merge_moments_n(moments *into, size_t n, double count, const double *mean, const double *m2)
{
    if (count == 0.0)
        return;
    if (into[0].count == 0.0) {  /* not through the formula: it would round mean */
        for (size_t c = 0; c < n; ++c)
            into[c] = (moments){ count, mean[c], m2[c] };
        return;
    }
    const double total = into[0].count + count;
    const double share = count / total, cross = into[0].count * count / total;
    for (size_t c = 0; c < n; ++c) {
        const double delta = mean[c] - into[c].mean;
        into[c].mean += delta * share;
        into[c].m2 += m2[c] + delta * delta * cross;
        into[c].count = total;
    }
}

static void merge_moments(moments *into, double count, double mean, double m2)
{
    merge_moments_n(into, 1, count, &mean, &m2);
}

/* How the fast path walks one tensor (x, or AdaIN's style). */
typedef struct view {
    const inorm_tensor *t;
    size_t period;    /* channels interleaved in memory: C (NHWC) or 1 */
    size_t lanes;     /* a multiple of period and of GROUP */
    size_t block;     /* elements per block: a multiple of lanes */
    size_t units;     /* NCHW: segments; NHWC: samples */
    size_t unit_len;  /* elements per unit */
    size_t parts;     /* chunks per unit */
    size_t cps;       /* channels per segment */
} view;

static size_t gcd(size_t a, size_t b)
{
    while (b) {
        size_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

static bool make_view(view *v, const inorm_tensor *t, size_t cps)
{
    const inorm_tensor_desc *d = &t->desc;
    const size_t plane = inorm_plane_len(d);
    /* with one channel or one pixel both layouts are the same memory */
    const bool interleaved = d->layout == INORM_NHWC && d->c > 1 && plane > 1;
    v->t = t;
    v->cps = cps;
    v->period = interleaved ? d->c : 1;
    v->lanes = v->period / gcd(v->period, GROUP) * GROUP;
    if (v->lanes > MAX_LANES)
        return false;
    v->units = interleaved ? d->n : (size_t)d->n * d->c / cps;
    v->unit_len = interleaved ? plane * d->c : plane * cps;
    /* more lanes only where runs are long enough to fill them: each block
     * pays a few passes over its lanes */
    if (v->unit_len >= 16 * MIN_LANES)
        v->lanes *= (MIN_LANES + v->lanes - 1) / v->lanes;
    v->block = v->lanes * (BLOCK / v->lanes > MIN_BLOCK_ROWS ? BLOCK / v->lanes : MIN_BLOCK_ROWS);
    v->parts = 1;
    return true;
}

/* Lanes of coefficients the apply walks: every lane, or for NCHW (one
 * channel throughout) one GROUP, so that planes of a few elements fill 16
 * lanes each, not 64. */
static size_t apply_lanes(const view *v)
{
    return v->period == 1 ? GROUP : v->lanes;
}

/* Elements [*first, *last) of chunk `part` of unit u, cut at pixel boundaries. */
static void chunk_range(const view *v, size_t u, size_t part, size_t *first, size_t *last)
{
    const size_t steps = v->unit_len / v->period;
    *first = u * v->unit_len + steps * part / v->parts * v->period;
    *last = u * v->unit_len + steps * (part + 1) / v->parts * v->period;
}

/* Per-thread buffers, sized for the larger view. */
typedef struct scratch {
    double *acc, *squares, *lane_mean;    /* lanes each */
    float *shift, *offset, *scale, *bias; /* lanes each: the coefficients (plain_coeffs) */
    float *x;                             /* converted halves: a block, or a whole unit */
    size_t x_capacity;
    moments *unit;                        /* period: a unit's moments (fused jobs) */
    /* fused jobs on FLOAT16: the unit converted once into x, for every pass */
    size_t resident_first, resident_count;
} scratch;

/* A run of a tensor's values as the inner loops read them: floats, or on
 * AVX2 + F16C machines the halves themselves, converted in registers (a
 * pass that wrote them out as floats first took a third of an fp16 op). */
typedef struct values {
    const float *f;     /* NULL when h is set */
    const uint16_t *h;
} values;

/* Whether FLOAT16 runs reach the inner loops as halves (false on builds
 * without the AVX2 loops). */
static bool halves_direct(void)
{
    return inorm_cpu_has_avx2_f16c();
}

/* count values of t from element first: in place for FLOAT32 and for
 * FLOAT16 read as halves; else from the resident unit if it holds them, or
 * converted into s->x. */
static values load_values(const inorm_tensor *t, size_t first, size_t count, scratch *s)
{
    if (t->desc.dtype == INORM_FLOAT32)
        return (values){ (const float *)t->host + first, NULL };
    if (halves_direct())
        return (values){ NULL, (const uint16_t *)t->host + first };
    if (first >= s->resident_first && first + count <= s->resident_first + s->resident_count)
        return (values){ s->x + (first - s->resident_first), NULL };
    inorm_half_to_float_n((const uint16_t *)t->host + first, s->x, count);
    return (values){ s->x, NULL };
}

/* x's values [i, i + count) as floats: in place, or converted into buffer. */
static const float *floats_of(values x, size_t i, size_t count, float *buffer)
{
    if (x.f)
        return x.f + i;
    inorm_half_to_float_n(x.h + i, buffer, count);
    return buffer;
}

/* Value i of x as a double, whichever type x holds. */
static inline double value_at(values x, size_t i)
{
    return x.h ? inorm_half_bits_to_float(x.h[i]) : x.f[i];
}

/* sums[j] += x[i] - shift[j] and squares[j] += (x[i] - shift[j])^2 with
 * j = i % lanes: the statistics' one pass over a block. lanes is a multiple
 * of GROUP; count need not be a multiple of lanes (a run's last block).
 * Rows are taken TILE_ROWS at a time, each column of GROUP lanes summed
 * down the tile in registers and then added to the lanes' sums: the tile is
 * the block's first touch, read in address order a few lines at a time
 * (a column walk down a whole block reads one line of every row in turn,
 * which the prefetchers follow badly: 2x slower on NHWC rows of 1 KiB),
 * while the sums stay out of memory for most of it. */
#define TILE_ROWS 8

/* The block's last, partial row of lanes: values [first, count) into lanes
 * 0, 1, ... (every form of the loop below ends with it). */
static inline void add_partial_row(values x, size_t first, size_t count, const double *shift, double *sums,
                                   double *squares)
{
    for (size_t i = first, j = 0; i < count; ++i, ++j) {
        const double d = value_at(x, i) - shift[j];
        sums[j] += d;
        squares[j] += d * d;
    }
}

static void shifted_sums_portable(const float *restrict x, size_t count, size_t lanes, const double *restrict shift,
                                  double *restrict sums, double *restrict squares)
{
    const size_t rows = count / lanes;
    for (size_t r0 = 0; r0 < rows; r0 += TILE_ROWS) {
        const size_t r1 = r0 + TILE_ROWS < rows ? r0 + TILE_ROWS : rows;
        for (size_t j = 0; j < lanes; j += GROUP) {
            double s[GROUP] = { 0.0 }, q[GROUP] = { 0.0 };
            for (size_t r = r0; r < r1; ++r)
                for (size_t k = 0; k < GROUP; ++k) {
                    const double d = x[r * lanes + j + k] - shift[j + k];
                    s[k] += d;
                    q[k] += d * d;
                }
            for (size_t k = 0; k < GROUP; ++k) {
                sums[j + k] += s[k];
                squares[j + k] += q[k];
            }
        }
    }
    add_partial_row((values){ x, NULL }, rows * lanes, count, shift, sums, squares);
}

/* FLOAT16 data: the same sums, each lane's tile of HALF_TILE_ROWS values
 * summed in float about the tile's own first value t (0 if not finite),
 * then moved to the lane's shift in double: with e = t - shift over the
 * tile's r values, sum(x - shift) = S1 + r e and sum((x - shift)^2) =
 * S2 + e (2 S1 + r e), S1 and S2 the float sums of d = x - t and d^2.
 * As t is one of the tile's values, its S2 <= (r + 1) m2_tile (see
 * span_moments), so the float sums' rounding, about r ulps of S2, stays
 * within (r + 1) (r + 2) 2^-24 (2e-5 for r = 16) of the tile's m2, and of
 * the whole m2 over all tiles, whatever the data's mean and the span's
 * shift: at worst 1e-5 of the standard deviation (the tests' tolerance for
 * it; random roundings give far less), 0.02-0.04 of an fp16 ulp in the
 * output, while the double loop's conversions and arithmetic were what
 * bound fp16 statistics (AVX-512, six alternating rounds: the statistics
 * op in 0.60-0.74 of the time, instance norm 0.55-0.80). FLOAT32 keeps the
 * double loop: there this error would be 100 fp32 ulps. */
#define HALF_TILE_ROWS 16

static void tile_sums_portable(const float *restrict x, size_t count, size_t lanes, const double *restrict shift,
                               double *restrict sums, double *restrict squares)
{
    const size_t rows = count / lanes;
    for (size_t r0 = 0; r0 < rows; r0 += HALF_TILE_ROWS) {
        const size_t r1 = r0 + HALF_TILE_ROWS < rows ? r0 + HALF_TILE_ROWS : rows;
        const double r = (double)(r1 - r0);
        for (size_t j = 0; j < lanes; j += GROUP) {
            float t[GROUP], s1[GROUP] = { 0.0f }, s2[GROUP] = { 0.0f };
            for (size_t k = 0; k < GROUP; ++k) {
                const float first = x[r0 * lanes + j + k];
                t[k] = first - first == 0.0f ? first : 0.0f;
            }
            for (size_t row = r0; row < r1; ++row)
                for (size_t k = 0; k < GROUP; ++k) {
                    const float d = x[row * lanes + j + k] - t[k];
                    s1[k] += d;
                    s2[k] += d * d;
                }
            for (size_t k = 0; k < GROUP; ++k) {
                const double e = (double)t[k] - shift[j + k], a = s1[k], q = s2[k];
                sums[j + k] += a + r * e;
                squares[j + k] += q + e * ((a + a) + r * e);
            }
        }
    }
    add_partial_row((values){ x, NULL }, rows * lanes, count, shift, sums, squares);
}

#if defined(INORM_CPU_CLONES_ENABLED)
/* The same with AVX2 intrinsics, reading floats or halves: the same
 * operations in the same order per lane, so the same bits as the portable
 * loop. */

/* Eight values from element i on as floats. NaN payloads are not made
 * canonical: a NaN only has to stay a NaN here (outputs are made canonical
 * as they are stored). */
INORM_AVX2_F16C_INLINE __m256 load8(values x, size_t i)
{
    return x.h ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x.h + i))) : _mm256_loadu_ps(x.f + i);
}

INORM_AVX2_F16C_INLINE void add_shifted(__m256 v, __m256d shift_low, __m256d shift_high, __m256d sums[2],
                                        __m256d squares[2])
{
    const __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), shift_low);
    const __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), shift_high);
    sums[0] = _mm256_add_pd(sums[0], d0);
    sums[1] = _mm256_add_pd(sums[1], d1);
    squares[0] = _mm256_add_pd(squares[0], _mm256_mul_pd(d0, d0));
    squares[1] = _mm256_add_pd(squares[1], _mm256_mul_pd(d1, d1));
}

INORM_AVX2_F16C_INLINE void add_to(double *into, __m256d v)
{
    _mm256_storeu_pd(into, _mm256_add_pd(_mm256_loadu_pd(into), v));
}

/* x is either type; called with one of its pointers known NULL, so each
 * instance has a fixed load (see shifted_sums_avx2). */
INORM_AVX2_F16C_INLINE void shifted_sums_body(values x, size_t count, size_t lanes, const double *shift, double *sums,
                                              double *squares)
{
    const size_t rows = count / lanes;
    for (size_t r0 = 0; r0 < rows; r0 += TILE_ROWS) {
        const size_t r1 = r0 + TILE_ROWS < rows ? r0 + TILE_ROWS : rows;
        for (size_t j = 0; j < lanes; j += GROUP) {
            const __m256d zero = _mm256_setzero_pd();
            __m256d s[4] = { zero, zero, zero, zero }, q[4] = { zero, zero, zero, zero };
            const __m256d k0 = _mm256_loadu_pd(shift + j), k1 = _mm256_loadu_pd(shift + j + 4),
                          k2 = _mm256_loadu_pd(shift + j + 8), k3 = _mm256_loadu_pd(shift + j + 12);
            for (size_t r = r0, i = r0 * lanes + j; r < r1; ++r, i += lanes) {
                add_shifted(load8(x, i), k0, k1, s, q);
                add_shifted(load8(x, i + 8), k2, k3, s + 2, q + 2);
            }
            for (size_t k = 0; k < 4; ++k) {
                add_to(sums + j + 4 * k, s[k]);
                add_to(squares + j + 4 * k, q[k]);
            }
        }
    }
    add_partial_row(x, rows * lanes, count, shift, sums, squares);
}

/* The tile's first values t (0 where not finite: t - t is not 0). */
INORM_AVX2_F16C_INLINE __m256 finite_or_zero8(__m256 t)
{
    return _mm256_and_ps(t, _mm256_cmp_ps(_mm256_sub_ps(t, t), _mm256_setzero_ps(), _CMP_EQ_OQ));
}

/* tile_sums_portable's last step on four lanes: the tile's float sums
 * a and q (as doubles) and e = t - shift into sums and squares. */
INORM_AVX2_F16C_INLINE void add_tile4(__m256d a, __m256d q, __m256d e, __m256d r, double *sums, double *squares)
{
    add_to(sums, _mm256_add_pd(a, _mm256_mul_pd(r, e)));
    add_to(squares, _mm256_add_pd(q, _mm256_mul_pd(e, _mm256_add_pd(_mm256_add_pd(a, a), _mm256_mul_pd(r, e)))));
}

/* tile_sums_portable with AVX2: the same operations per lane. */
INORM_AVX2_F16C_INLINE void tile_sums_body(values x, size_t count, size_t lanes, const double *shift, double *sums,
                                           double *squares)
{
    const size_t rows = count / lanes;
    for (size_t r0 = 0; r0 < rows; r0 += HALF_TILE_ROWS) {
        const size_t r1 = r0 + HALF_TILE_ROWS < rows ? r0 + HALF_TILE_ROWS : rows;
        const __m256d r = _mm256_set1_pd((double)(r1 - r0));
        for (size_t j = 0; j < lanes; j += GROUP) {
            const __m256 t0 = finite_or_zero8(load8(x, r0 * lanes + j)),
                         t1 = finite_or_zero8(load8(x, r0 * lanes + j + 8));
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, q0 = a0, q1 = a0;
            for (size_t i = r0 * lanes + j; i < r1 * lanes; i += lanes) {
                const __m256 d0 = _mm256_sub_ps(load8(x, i), t0), d1 = _mm256_sub_ps(load8(x, i + 8), t1);
                a0 = _mm256_add_ps(a0, d0);
                a1 = _mm256_add_ps(a1, d1);
                q0 = _mm256_add_ps(q0, _mm256_mul_ps(d0, d0));
                q1 = _mm256_add_ps(q1, _mm256_mul_ps(d1, d1));
            }
            const __m256 t[2] = { t0, t1 }, a[2] = { a0, a1 }, q[2] = { q0, q1 };
            for (size_t k = 0; k < 4; ++k) {
                const __m128 tk = k % 2 ? _mm256_extractf128_ps(t[k / 2], 1) : _mm256_castps256_ps128(t[k / 2]);
                const __m128 ak = k % 2 ? _mm256_extractf128_ps(a[k / 2], 1) : _mm256_castps256_ps128(a[k / 2]);
                const __m128 qk = k % 2 ? _mm256_extractf128_ps(q[k / 2], 1) : _mm256_castps256_ps128(q[k / 2]);
                const __m256d e = _mm256_sub_pd(_mm256_cvtps_pd(tk), _mm256_loadu_pd(shift + j + 4 * k));
                add_tile4(_mm256_cvtps_pd(ak), _mm256_cvtps_pd(qk), e, r, sums + j + 4 * k, squares + j + 4 * k);
            }
        }
    }
    add_partial_row(x, rows * lanes, count, shift, sums, squares);
}

INORM_AVX2_F16C static void shifted_sums_avx2(values x, size_t count, size_t lanes, const double *shift, double *sums,
                                              double *squares, bool half_tiles)
{
    if (half_tiles && x.h)
        tile_sums_body((values){ NULL, x.h }, count, lanes, shift, sums, squares);
    else if (half_tiles)
        tile_sums_body((values){ x.f, NULL }, count, lanes, shift, sums, squares);
    else if (x.h)
        shifted_sums_body((values){ NULL, x.h }, count, lanes, shift, sums, squares);
    else
        shifted_sums_body((values){ x.f, NULL }, count, lanes, shift, sums, squares);
}

/* The same with AVX-512: a group's sixteen lanes in two vectors of doubles
 * instead of four, each lane's operations in the same order. Converting to
 * double and the double arithmetic bound the AVX2 loop (a bare loop of that
 * arithmetic over fp16 ran 1.7x faster at this width; whole fp16 ops, with
 * the output loop below, take 0.71-0.86 of the AVX2 time). */
INORM_AVX512_INLINE __m512 load16(values x, size_t i)
{
    return x.h ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x.h + i))) : _mm512_loadu_ps(x.f + i);
}

INORM_AVX512_INLINE void add_to8(double *into, __m512d v)
{
    _mm512_storeu_pd(into, _mm512_add_pd(_mm512_loadu_pd(into), v));
}

INORM_AVX512_INLINE void shifted_sums_body16(values x, size_t count, size_t lanes, const double *shift, double *sums,
                                             double *squares)
{
    const size_t rows = count / lanes;
    for (size_t r0 = 0; r0 < rows; r0 += TILE_ROWS) {
        const size_t r1 = r0 + TILE_ROWS < rows ? r0 + TILE_ROWS : rows;
        for (size_t j = 0; j < lanes; j += GROUP) {
            __m512d s0 = _mm512_setzero_pd(), s1 = s0, q0 = s0, q1 = s0;
            const __m512d k0 = _mm512_loadu_pd(shift + j), k1 = _mm512_loadu_pd(shift + j + 8);
            for (size_t r = r0, i = r0 * lanes + j; r < r1; ++r, i += lanes) {
                const __m512 v = load16(x, i);
                const __m512d d0 = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)), k0);
                const __m512d d1 = _mm512_sub_pd(
                    _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))), k1);
                s0 = _mm512_add_pd(s0, d0);
                s1 = _mm512_add_pd(s1, d1);
                q0 = _mm512_add_pd(q0, _mm512_mul_pd(d0, d0));
                q1 = _mm512_add_pd(q1, _mm512_mul_pd(d1, d1));
            }
            add_to8(sums + j, s0);
            add_to8(sums + j + 8, s1);
            add_to8(squares + j, q0);
            add_to8(squares + j + 8, q1);
        }
    }
    add_partial_row(x, rows * lanes, count, shift, sums, squares);
}

/* The low (half 0) or high eight floats of v as doubles. */
INORM_AVX512_INLINE __m512d doubles_of_half16(__m512 v, int half)
{
    return _mm512_cvtps_pd(half ? _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))
                                : _mm512_castps512_ps256(v));
}

/* One tile of `groups` groups of lanes from lane j, rows [r0, r1): as
 * tile_sums_portable, each lane's operations in the same order. Four groups
 * side by side, as one group's sums are chains of dependent adds, and
 * x - t as the multiply-add x * 1 - t (one rounding of an exact product:
 * the same bits) so that it runs beside the adds instead of among them.
 * Four alternating rounds against one group at a time with a subtraction:
 * the fp16 statistics op in 0.74-0.95 of the time, instance norm 0.71-1.0. */
INORM_AVX512_INLINE void tile_groups16(values x, size_t lanes, size_t r0, size_t r1, size_t j, int groups,
                                       const double *shift, double *sums, double *squares)
{
    enum { MAX_GROUPS = 4 };
    const __m512 zero = _mm512_setzero_ps();
    const __m512d r = _mm512_set1_pd((double)(r1 - r0));
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 t[MAX_GROUPS], minus_t[MAX_GROUPS], a[MAX_GROUPS], q[MAX_GROUPS];
#pragma GCC unroll 4
    for (int g = 0; g < groups; ++g) {
        const __m512 first = load16(x, r0 * lanes + j + (size_t)g * GROUP);
        t[g] = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_sub_ps(first, first), zero, _CMP_EQ_OQ), first);
        minus_t[g] = _mm512_sub_ps(zero, t[g]);
        a[g] = q[g] = zero;
    }
    for (size_t i = r0 * lanes + j; i < r1 * lanes; i += lanes)
#pragma GCC unroll 4
        for (int g = 0; g < groups; ++g) {
            const __m512 d = _mm512_fmadd_ps(load16(x, i + (size_t)g * GROUP), one, minus_t[g]);
            a[g] = _mm512_add_ps(a[g], d);
            q[g] = _mm512_add_ps(q[g], _mm512_mul_ps(d, d));
        }
#pragma GCC unroll 4
    for (int g = 0; g < groups; ++g)
        for (int h = 0; h < 2; ++h) {
            const size_t lane = j + (size_t)g * GROUP + 8 * (size_t)h;
            const __m512d e = _mm512_sub_pd(doubles_of_half16(t[g], h), _mm512_loadu_pd(shift + lane));
            const __m512d ad = doubles_of_half16(a[g], h), qd = doubles_of_half16(q[g], h);
            add_to8(sums + lane, _mm512_add_pd(ad, _mm512_mul_pd(r, e)));
            add_to8(squares + lane,
                    _mm512_add_pd(qd, _mm512_mul_pd(e, _mm512_add_pd(_mm512_add_pd(ad, ad), _mm512_mul_pd(r, e)))));
        }
}

INORM_AVX512_INLINE void tile_sums_body16(values x, size_t count, size_t lanes, const double *shift, double *sums,
                                          double *squares)
{
    const size_t rows = count / lanes;
    for (size_t r0 = 0; r0 < rows; r0 += HALF_TILE_ROWS) {
        const size_t r1 = r0 + HALF_TILE_ROWS < rows ? r0 + HALF_TILE_ROWS : rows;
        size_t j = 0;
        for (; j + 4 * GROUP <= lanes; j += 4 * GROUP)
            tile_groups16(x, lanes, r0, r1, j, 4, shift, sums, squares);
        for (; j < lanes; j += GROUP)
            tile_groups16(x, lanes, r0, r1, j, 1, shift, sums, squares);
    }
    add_partial_row(x, rows * lanes, count, shift, sums, squares);
}

INORM_AVX512 static void shifted_sums_avx512(values x, size_t count, size_t lanes, const double *shift,
                                             double *sums, double *squares, bool half_tiles)
{
    if (half_tiles && x.h)
        tile_sums_body16((values){ NULL, x.h }, count, lanes, shift, sums, squares);
    else if (half_tiles)
        tile_sums_body16((values){ x.f, NULL }, count, lanes, shift, sums, squares);
    else if (x.h)
        shifted_sums_body16((values){ NULL, x.h }, count, lanes, shift, sums, squares);
    else
        shifted_sums_body16((values){ x.f, NULL }, count, lanes, shift, sums, squares);
}
#endif

/* half_tiles: the data are FLOAT16 (tile_sums_portable) */
static void shifted_sums(values x, size_t count, size_t lanes, const double *shift, double *sums, double *squares,
                         bool half_tiles)
{
#if defined(INORM_CPU_CLONES_ENABLED)
    if (inorm_cpu_isa_level() >= INORM_ISA_AVX512) {
        shifted_sums_avx512(x, count, lanes, shift, sums, squares, half_tiles);
        return;
    }
    if (inorm_cpu_has_avx2_f16c()) {
        shifted_sums_avx2(x, count, lanes, shift, sums, squares, half_tiles);
        return;
    }
#endif
    if (half_tiles)
        tile_sums_portable(x.f, count, lanes, shift, sums, squares);
    else
        shifted_sums_portable(x.f, count, lanes, shift, sums, squares);
}

/* v[0 .. period) copied over v[period .. lanes) (elements of `size`
 * bytes), doubling the copied stretch each time: whole periods at a time,
 * as a copy element by element would wait on each store it just made. */
static inline void replicate(void *v, size_t size, size_t period, size_t lanes)
{
    char *bytes = v;
    if (period == 1 && size == sizeof(float)) {  /* NCHW: one value, stored GROUP at a time */
        float *f = v;
        const float value = f[0];
        for (size_t j = 0; j < lanes; j += GROUP)
            for (size_t k = 0; k < GROUP; ++k)
                f[j + k] = value;
        return;
    }
    if (period == 1) {
        double *d = v;
        const double value = d[0];
        for (size_t j = 0; j < lanes; j += GROUP)
            for (size_t k = 0; k < GROUP; ++k)
                d[j + k] = value;
        return;
    }
    for (size_t filled = period; filled < lanes;) {
        const size_t n = filled < lanes - filled ? filled : lanes - filled;
        memcpy(bytes + filled * size, bytes, n * size);
        filled += n;
    }
}

/* acc[c] = acc[c] + acc[c + period] + ... (in that order) for c < period:
 * each channel's lanes summed into its first. */
static void fold_lanes(double *acc, size_t period, size_t lanes)
{
    for (size_t c = 0; c < period; ++c) {
        double sum = acc[c];
        for (size_t j = c + period; j < lanes; j += period)
            sum += acc[j];
        acc[c] = sum;
    }
}

/* NCHW units (planes, or a group's planes) of at most this many elements
 * take plain loops (small_moments) and, in the fused job, a path of their
 * own (small_units_item): the lanes' bookkeeping would cost more than their
 * work. Measured against the lanes: 9x9 and 12x12 planes 1.4-2x faster,
 * 16x16 up to 1.2x; at 32x32 mixed (fp16 statistics, which convert each
 * value twice in two passes, up to 1.5x slower). */
#define SMALL_UNIT (16 * GROUP)

/* Mean and sum of squared deviations of count (at most SMALL_UNIT) values:
 * two passes, each in four chains of additions in flight, not one of count. */
static void small_moments(values values_in, size_t count, double *mean_out, double *m2_out)
{
    float buffer[SMALL_UNIT];
    const float *x = floats_of(values_in, 0, count, buffer);
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    size_t i = 0;
    for (; i + 4 <= count; i += 4) {
        s0 += x[i];
        s1 += x[i + 1];
        s2 += x[i + 2];
        s3 += x[i + 3];
    }
    for (; i < count; ++i)
        s0 += x[i];
    const double mean = ((s0 + s1) + (s2 + s3)) / (double)count;
    double q0 = 0.0, q1 = 0.0, q2 = 0.0, q3 = 0.0;
    for (i = 0; i + 4 <= count; i += 4) {
        const double d0 = x[i] - mean, d1 = x[i + 1] - mean, d2 = x[i + 2] - mean, d3 = x[i + 3] - mean;
        q0 += d0 * d0;
        q1 += d1 * d1;
        q2 += d2 * d2;
        q3 += d3 * d3;
    }
    for (; i < count; ++i) {
        const double d = x[i] - mean;
        q0 += d * d;
    }
    *mean_out = mean;
    *m2_out = (q0 + q1) + (q2 + q3);
}

/* Blocks summed about one shift before their moments are merged into the
 * running ones: the merge (per channel, three divisions) and the shift's
 * setup then cost an eighth as much (NHWC statistics 10-20% faster than
 * with a merge per block); see span_moments for what it costs in bits. */
#define SHIFT_BLOCKS 8

/* Merges count elements from element first of v (a multiple of period,
 * starting at channel 0) into out[0 .. period), whose counts are all the
 * same. */
static void span_moments(const view *v, size_t first, size_t count, scratch *s, moments *out)
{
    const size_t lanes = v->lanes, period = v->period;
    const double per_channel = (double)(count / period);
    const size_t head = count < v->block ? count : v->block;
    const values head_values = load_values(v->t, first, head, s);
    if (period == 1 && count <= SMALL_UNIT) {
        double mean, m2;
        small_moments(head_values, count, &mean, &m2);
        merge_moments(out, per_channel, mean, m2);
        return;
    }
    /* Each channel's sums are taken about its first value in the span, so
     * one pass gives the span's moments: m2 = S2 - S1^2 / n with S1, S2 the
     * sums of d = x - shift and d^2. The shift being one of the values,
     * n * (mean - shift)^2 <= n * m2, so S2 <= (n + 1) * m2 and the
     * subtraction loses at most log2(n + 1) bits of the double's 53 (17 for
     * the 65536 values per channel of a span of 8 blocks of 64 lanes): far
     * below a float's ulp, with no second pass. A non-finite first value
     * shifts by 0 (the sums then carry the Inf or NaN as plain sums would). */
    for (size_t c = 0; c < period; ++c) {
        const double value = value_at(head_values, c);
        s->lane_mean[c] = isfinite(value) ? value : 0.0;
    }
    replicate(s->lane_mean, sizeof *s->lane_mean, period, lanes);
    memset(s->acc, 0, lanes * sizeof *s->acc);
    memset(s->squares, 0, lanes * sizeof *s->squares);
    const bool half_tiles = v->t->desc.dtype == INORM_FLOAT16;
    shifted_sums(head_values, head, lanes, s->lane_mean, s->acc, s->squares, half_tiles);
    for (size_t i = head; i < count; i += v->block) {
        /* blocks are whole rows of lanes, so each starts at lane 0 */
        const size_t n = count - i < v->block ? count - i : v->block;
        shifted_sums(load_values(v->t, first + i, n, s), n, lanes, s->lane_mean, s->acc, s->squares, half_tiles);
    }
    fold_lanes(s->acc, period, lanes);
    fold_lanes(s->squares, period, lanes);
    const double inverse_count = 1.0 / per_channel;
    for (size_t c = 0; c < period; ++c) {
        const double offset = s->acc[c] * inverse_count, m2 = s->squares[c] - s->acc[c] * offset;
        s->lane_mean[c] += offset;
        s->squares[c] = m2 < 0.0 ? 0.0 : m2; /* rounding, when every d is the same; NaN stays */
    }
    merge_moments_n(out, period, per_channel, s->lane_mean, s->squares);
}

static void range_moments(const view *v, size_t first, size_t last, scratch *s, moments *out)
{
    const size_t span = SHIFT_BLOCKS * v->block;
    for (size_t i = first; i < last; i += span)
        span_moments(v, i, last - i < span ? last - i : span, s, out);
}

/* What follows the affine rule y = a * (x - m) + b, in float as the shaders
 * have it (common.glsl's activate): AdaIN's blend y = x + alpha * (t - x),
 * then the activation. In double, as it was, they made an op 2x (ReLU) to
 * 13x (SiLU, through libm's exp) slower than without. */
typedef struct epilogue {
    bool any;  /* a blend or an activation */
    bool blend;
    inorm_activation activation;
    float alpha, slope;
} epilogue;

static epilogue epilogue_of(const inorm_op *op)
{
    const bool blend = op->alpha != 1.0f;
    return (epilogue){ blend || op->activation != INORM_ACTIVATION_NONE, blend, op->activation, op->alpha,
                       op->activation_slope };
}

/* SiLU in float, t / (1 + e^-t), e^z as 2^n times a degree-6 polynomial in
 * z - n ln 2 (Cephes' expf coefficients, within about 2 ulps), z clamped to
 * [-87, 88] so that 2^n stays a normal float. Past 88 e^z is taken as +inf:
 * t / inf is -0 for finite t and NaN for -inf, as the double formula gives
 * (an exact e^z there would only change a result of magnitude below 1e-36).
 * Every vector level repeats these operations in this order, with no FMA:
 * the same bits. The clamps are written the way the vector min and max
 * evaluate (the first operand if it compares so with the second, else the
 * second), which keeps a NaN z. */
#define SILU_Z_MAX 88.0f
#define SILU_Z_MIN (-87.0f)
#define LOG2E_F 1.44269504088896341f
#define LN2_HIGH 0.693359375f  /* ln 2 in 9 bits, so n * LN2_HIGH is exact */
#define LN2_LOW (-2.12194440e-4f)
static const float exp_poly[6] = { 1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                   4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f };

static inline float silu_float(float t)
{
    float z = -t;
    const bool over = z > SILU_Z_MAX;
    z = SILU_Z_MAX < z ? SILU_Z_MAX : z;
    z = SILU_Z_MIN > z ? SILU_Z_MIN : z;
    const float n = floorf(z * LOG2E_F + 0.5f);
    float r = z - n * LN2_HIGH;
    r = r - n * LN2_LOW;
    float p = exp_poly[0];
    for (int i = 1; i < 6; ++i)
        p = p * r + exp_poly[i];
    p = (p * (r * r) + r) + 1.0f;
    /* 2^n from its exponent bits; a NaN's n gives 1, as the vector
     * conversion's 0x80000000 + 127 does once shifted */
    const uint32_t bits = (uint32_t)((n == n ? (int32_t)n : 0) + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    const float e = over ? INFINITY : p * scale;
    return t / (1.0f + e);
}

/* The epilogue of one value t computed from x. */
static inline float finish_value(const epilogue *e, float x, float t)
{
    if (e->blend)
        t = x + e->alpha * (t - x);
    switch (e->activation) {
    case INORM_ACTIVATION_RELU: return t < 0.0f ? 0.0f : t;
    case INORM_ACTIVATION_LEAKY_RELU: return t < 0.0f ? t * e->slope : t;
    case INORM_ACTIVATION_SILU: return silu_float(t);
    case INORM_ACTIVATION_NONE: break;
    }
    return t;
}

/* A plane's coefficients for the float rule (see apply_groups_plain). */
typedef struct plain_coeffs {
    float shift, offset, scale, bias;
} plain_coeffs;

static inline float plain_value(float x, float shift, float offset, float scale, float bias)
{
    return ((x - shift) - offset) * scale + bias;
}

/* The plain rule y = a * (x - m) + b in float, twice the lanes per vector:
 * m is split into the float nearest it and the rest, so x - m is
 * ((x - shift) - offset), where x - shift is exact for x near the mean (the
 * cancellation the statistics guard against) and the offset is a fraction
 * of shift's ulp. Each element's error is then a few ulps of the terms'
 * own sizes (a * (x - m) and b), never of the mean's. The portable form of
 * apply_plain_avx2 (no AVX2 clone: machines with AVX2 take that one). */
static void apply_groups_plain(const float *x, size_t count, size_t lanes, size_t j0, const scratch *s, float *y)
{
    for (size_t i = 0, j = j0; i < count; i += GROUP, j = j + GROUP == lanes ? 0 : j + GROUP) {
        float t[GROUP];
        for (size_t k = 0; k < GROUP; ++k)
            t[k] = plain_value(x[i + k], s->shift[j + k], s->offset[j + k], s->scale[j + k], s->bias[j + k]);
        for (size_t k = 0; k < GROUP; ++k)
            y[i + k] = t[k];
    }
}

#if defined(INORM_CPU_CLONES_ENABLED)
INORM_AVX2_F16C_INLINE __m256 plain_values8(__m256 x, __m256 shift, __m256 offset, __m256 scale, __m256 bias)
{
    return _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_sub_ps(x, shift), offset), scale), bias);
}

/* silu_float on eight values, the same operations. */
INORM_AVX2_F16C_INLINE __m256 silu8(__m256 t)
{
    const __m256 z_max = _mm256_set1_ps(SILU_Z_MAX);
    __m256 z = _mm256_xor_ps(t, _mm256_set1_ps(-0.0f));
    const __m256 over = _mm256_cmp_ps(z, z_max, _CMP_GT_OQ);
    z = _mm256_min_ps(z_max, z);
    z = _mm256_max_ps(_mm256_set1_ps(SILU_Z_MIN), z);
    const __m256 n =
        _mm256_floor_ps(_mm256_add_ps(_mm256_mul_ps(z, _mm256_set1_ps(LOG2E_F)), _mm256_set1_ps(0.5f)));
    __m256 r = _mm256_sub_ps(z, _mm256_mul_ps(n, _mm256_set1_ps(LN2_HIGH)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(LN2_LOW)));
    __m256 p = _mm256_set1_ps(exp_poly[0]);
    for (int i = 1; i < 6; ++i)
        p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(exp_poly[i]));
    p = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(p, _mm256_mul_ps(r, r)), r), _mm256_set1_ps(1.0f));
    const __m256i exponent = _mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127));
    const __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(exponent, 23));
    const __m256 e = _mm256_blendv_ps(_mm256_mul_ps(p, scale), _mm256_set1_ps(INFINITY), over);
    return _mm256_div_ps(t, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

/* finish_value on eight values. */
INORM_AVX2_F16C_INLINE __m256 finish8(const epilogue *e, __m256 x, __m256 t)
{
    if (e->blend)
        t = _mm256_add_ps(x, _mm256_mul_ps(_mm256_set1_ps(e->alpha), _mm256_sub_ps(t, x)));
    const __m256 zero = _mm256_setzero_ps();
    switch (e->activation) {
    case INORM_ACTIVATION_RELU: return _mm256_blendv_ps(t, zero, _mm256_cmp_ps(t, zero, _CMP_LT_OQ));
    case INORM_ACTIVATION_LEAKY_RELU:
        return _mm256_blendv_ps(t, _mm256_mul_ps(t, _mm256_set1_ps(e->slope)), _mm256_cmp_ps(t, zero, _CMP_LT_OQ));
    case INORM_ACTIVATION_SILU: return silu8(t);
    case INORM_ACTIVATION_NONE: break;
    }
    return t;
}

/* Eight outputs from element i on, to floats (yf) or halves (yh). */
INORM_AVX2_F16C_INLINE void store8(float *yf, uint16_t *yh, size_t i, __m256 v)
{
    if (yh)
        _mm_storeu_si128((__m128i *)(yh + i), inorm_halves_of_floats(v));
    else
        _mm256_storeu_ps(yf + i, v);
}

/* The plain rule with AVX2 intrinsics, the same operations in the same order
 * (the portable loop goes through a local copy, as y may be x), straight to
 * floats (yf) or halves (yh). */
INORM_AVX2_F16C_INLINE void apply_plain_body(values x, size_t count, size_t lanes, size_t j0, const scratch *s,
                                             const epilogue *e, float *yf, uint16_t *yh)
{
    /* in locals: the stores through vector types may alias anything, which
     * made gcc reload these pointers from s for every vector */
    const float *shift = s->shift, *offset = s->offset, *scale = s->scale, *bias = s->bias;
    const epilogue finish = e ? *e : (epilogue){ 0 };
    for (size_t i = 0, j = j0; i < count; i += 8, j = j + 8 == lanes ? 0 : j + 8) {
        const __m256 v = load8(x, i);
        const __m256 t = plain_values8(v, _mm256_loadu_ps(shift + j), _mm256_loadu_ps(offset + j),
                                       _mm256_loadu_ps(scale + j), _mm256_loadu_ps(bias + j));
        store8(yf, yh, i, e ? finish8(&finish, v, t) : t);
    }
}

/* Each instance with a fixed load and, without an epilogue, none of its
 * tests (the callers pass e NULL or not as a constant). */
INORM_AVX2_F16C static void apply_plain_avx2(values x, size_t count, size_t lanes, size_t j0, const scratch *s,
                                             const epilogue *e, float *yf, uint16_t *yh)
{
    if (x.h && e->any)
        apply_plain_body((values){ NULL, x.h }, count, lanes, j0, s, e, yf, yh);
    else if (x.h)
        apply_plain_body((values){ NULL, x.h }, count, lanes, j0, s, NULL, yf, yh);
    else if (e->any)
        apply_plain_body((values){ x.f, NULL }, count, lanes, j0, s, e, yf, yh);
    else
        apply_plain_body((values){ x.f, NULL }, count, lanes, j0, s, NULL, yf, yh);
}

/* silu_float on sixteen values, the same operations. */
INORM_AVX512_INLINE __m512 silu16(__m512 t)
{
    const __m512 z_max = _mm512_set1_ps(SILU_Z_MAX);
    __m512 z = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(t), _mm512_set1_epi32(INT32_MIN)));
    const __mmask16 over = _mm512_cmp_ps_mask(z, z_max, _CMP_GT_OQ);
    z = _mm512_min_ps(z_max, z);
    z = _mm512_max_ps(_mm512_set1_ps(SILU_Z_MIN), z);
    const __m512 n = _mm512_roundscale_ps(
        _mm512_add_ps(_mm512_mul_ps(z, _mm512_set1_ps(LOG2E_F)), _mm512_set1_ps(0.5f)),
        _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_sub_ps(z, _mm512_mul_ps(n, _mm512_set1_ps(LN2_HIGH)));
    r = _mm512_sub_ps(r, _mm512_mul_ps(n, _mm512_set1_ps(LN2_LOW)));
    __m512 p = _mm512_set1_ps(exp_poly[0]);
    for (int i = 1; i < 6; ++i)
        p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(exp_poly[i]));
    p = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(p, _mm512_mul_ps(r, r)), r), _mm512_set1_ps(1.0f));
    const __m512i exponent = _mm512_add_epi32(_mm512_cvttps_epi32(n), _mm512_set1_epi32(127));
    const __m512 scale = _mm512_castsi512_ps(_mm512_slli_epi32(exponent, 23));
    const __m512 e = _mm512_mask_mov_ps(_mm512_mul_ps(p, scale), over, _mm512_set1_ps(INFINITY));
    return _mm512_div_ps(t, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

/* finish_value on sixteen values. */
INORM_AVX512_INLINE __m512 finish16(const epilogue *e, __m512 x, __m512 t)
{
    if (e->blend)
        t = _mm512_add_ps(x, _mm512_mul_ps(_mm512_set1_ps(e->alpha), _mm512_sub_ps(t, x)));
    const __m512 zero = _mm512_setzero_ps();
    switch (e->activation) {
    case INORM_ACTIVATION_RELU: return _mm512_mask_mov_ps(t, _mm512_cmp_ps_mask(t, zero, _CMP_LT_OQ), zero);
    case INORM_ACTIVATION_LEAKY_RELU:
        return _mm512_mask_mul_ps(t, _mm512_cmp_ps_mask(t, zero, _CMP_LT_OQ), t, _mm512_set1_ps(e->slope));
    case INORM_ACTIVATION_SILU: return silu16(t);
    case INORM_ACTIVATION_NONE: break;
    }
    return t;
}

/* The plain rule and its epilogue with AVX-512, sixteen lanes at a time, the
 * same operations: one fp16 conversion each way per sixteen outputs instead
 * of per eight (a bare loop of it ran 1.3x faster than the AVX2 one). */
INORM_AVX512_INLINE void apply_plain_body16(values x, size_t count, size_t lanes, size_t j0, const scratch *s,
                                            const epilogue *e, float *yf, uint16_t *yh)
{
    const float *shift = s->shift, *offset = s->offset, *scale = s->scale, *bias = s->bias;
    const epilogue finish = e ? *e : (epilogue){ 0 };
    for (size_t i = 0, j = j0; i < count; i += GROUP, j = j + GROUP == lanes ? 0 : j + GROUP) {
        const __m512 v = load16(x, i);
        const __m512 d = _mm512_sub_ps(_mm512_sub_ps(v, _mm512_loadu_ps(shift + j)), _mm512_loadu_ps(offset + j));
        __m512 t = _mm512_add_ps(_mm512_mul_ps(d, _mm512_loadu_ps(scale + j)), _mm512_loadu_ps(bias + j));
        if (e)
            t = finish16(&finish, v, t);
        if (yh)
            _mm256_storeu_si256((__m256i *)(yh + i), inorm_halves_of_floats16(t));
        else
            _mm512_storeu_ps(yf + i, t);
    }
}

INORM_AVX512 static void apply_plain_avx512(values x, size_t count, size_t lanes, size_t j0, const scratch *s,
                                            const epilogue *e, float *yf, uint16_t *yh)
{
    if (!e->any) {
        if (x.h && yh)
            apply_plain_body16((values){ NULL, x.h }, count, lanes, j0, s, NULL, NULL, yh);
        else if (x.h)
            apply_plain_body16((values){ NULL, x.h }, count, lanes, j0, s, NULL, yf, NULL);
        else if (yh)
            apply_plain_body16((values){ x.f, NULL }, count, lanes, j0, s, NULL, NULL, yh);
        else
            apply_plain_body16((values){ x.f, NULL }, count, lanes, j0, s, NULL, yf, NULL);
    } else if (x.h) {
        apply_plain_body16((values){ NULL, x.h }, count, lanes, j0, s, e, yf, yh);
    } else {
        apply_plain_body16((values){ x.f, NULL }, count, lanes, j0, s, e, yf, yh);
    }
}

/* Values [i, i + rest) of x, rest < 8, as eight floats (zeros after them). */
INORM_AVX2_F16C_INLINE __m256 load_partial8(values x, size_t i, size_t rest)
{
    if (x.h) {
        uint16_t h[8] = { 0 };
        memcpy(h, x.h + i, rest * sizeof *h);
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h));
    }
    float f[8] = { 0.0f };
    memcpy(f, x.f + i, rest * sizeof *f);
    return _mm256_loadu_ps(f);
}

/* The first rest (< 8) of v stored from element i on. */
INORM_AVX2_F16C_INLINE void store_partial8(float *yf, uint16_t *yh, size_t i, size_t rest, __m256 v)
{
    if (yh) {
        uint16_t h[8];
        _mm_storeu_si128((__m128i *)h, inorm_halves_of_floats(v));
        memcpy(yh + i, h, rest * sizeof *h);
    } else {
        float f[8];
        _mm256_storeu_ps(f, v);
        memcpy(yf + i, f, rest * sizeof *f);
    }
}

/* Planes shorter than a vector: eight elements at a time, each lane given
 * its own plane's coefficients (a padded vector per plane cost 2x). */
INORM_AVX2_F16C_INLINE void apply_short_planes_body(values x, size_t planes, size_t plane_len,
                                                    const plain_coeffs *k, const epilogue *e, float *yf,
                                                    uint16_t *yh)
{
    const size_t count = planes * plane_len;
    size_t p = 0, in_plane = 0;
    for (size_t i = 0; i < count; i += 8) {
        const size_t n = count - i < 8 ? count - i : 8;
        float shift[8], offset[8], scale[8], bias[8];
        for (size_t j = 0; j < 8; ++j) {
            const plain_coeffs *c = &k[p < planes ? p : planes - 1];  /* lanes past the end: any plane's */
            shift[j] = c->shift;
            offset[j] = c->offset;
            scale[j] = c->scale;
            bias[j] = c->bias;
            if (++in_plane == plane_len) {
                in_plane = 0;
                ++p;
            }
        }
        const __m256 in = n == 8 ? load8(x, i) : load_partial8(x, i, n);
        __m256 v = plain_values8(in, _mm256_loadu_ps(shift), _mm256_loadu_ps(offset), _mm256_loadu_ps(scale),
                                 _mm256_loadu_ps(bias));
        if (e)
            v = finish8(e, in, v);
        if (n == 8)
            store8(yf, yh, i, v);
        else
            store_partial8(yf, yh, i, n, v);
    }
}

INORM_AVX2_F16C_INLINE void apply_planes_body(values x, size_t planes, size_t plane_len, const plain_coeffs *k,
                                              const epilogue *e, float *yf, uint16_t *yh)
{
    if (plane_len < 8) {
        apply_short_planes_body(x, planes, plane_len, k, e, yf, yh);
        return;
    }
    const epilogue finish = e ? *e : (epilogue){ 0 };
    const size_t whole = plane_len / 8 * 8, rest = plane_len - whole;
    for (size_t p = 0, i0 = 0; p < planes; ++p, i0 += plane_len) {
        const __m256 shift = _mm256_set1_ps(k[p].shift), offset = _mm256_set1_ps(k[p].offset),
                     scale = _mm256_set1_ps(k[p].scale), bias = _mm256_set1_ps(k[p].bias);
        for (size_t i = i0; i < i0 + whole; i += 8) {
            const __m256 in = load8(x, i), t = plain_values8(in, shift, offset, scale, bias);
            store8(yf, yh, i, e ? finish8(&finish, in, t) : t);
        }
        if (rest) {
            const __m256 in = load_partial8(x, i0 + whole, rest), t = plain_values8(in, shift, offset, scale, bias);
            store_partial8(yf, yh, i0 + whole, rest, e ? finish8(&finish, in, t) : t);
        }
    }
}

INORM_AVX2_F16C static void apply_planes_avx2(values x, size_t planes, size_t plane_len, const plain_coeffs *k,
                                              const epilogue *e, float *yf, uint16_t *yh)
{
    if (x.h && e->any)
        apply_planes_body((values){ NULL, x.h }, planes, plane_len, k, e, yf, yh);
    else if (x.h)
        apply_planes_body((values){ NULL, x.h }, planes, plane_len, k, NULL, yf, yh);
    else if (e->any)
        apply_planes_body((values){ x.f, NULL }, planes, plane_len, k, e, yf, yh);
    else
        apply_planes_body((values){ x.f, NULL }, planes, plane_len, k, NULL, yf, yh);
}
#endif

/* The plain rule over `planes` consecutive planes of plane_len (at most
 * SMALL_UNIT) elements, plane p with k[p], which the loops broadcast
 * instead of reading lanes of coefficients. */
static void apply_planes_plain(values x, size_t planes, size_t plane_len, const plain_coeffs *k, const epilogue *e,
                               float *yf, uint16_t *yh)
{
#if defined(INORM_CPU_CLONES_ENABLED)
    if (inorm_cpu_has_avx2_f16c()) {
        apply_planes_avx2(x, planes, plane_len, k, e, yf, yh);
        return;
    }
#endif
    float buffer[SMALL_UNIT], t[SMALL_UNIT];
    for (size_t p = 0, i0 = 0; p < planes; ++p, i0 += plane_len) {
        const float *xs = floats_of(x, i0, plane_len, buffer);
        /* out may be xs (in place): each value is read before it is written;
         * an epilogue reads x again, so then t */
        float *out = yh || e->any ? t : yf + i0;
        for (size_t i = 0; i < plane_len; ++i)
            out[i] = plain_value(xs[i], k[p].shift, k[p].offset, k[p].scale, k[p].bias);
        if (e->any)
            for (size_t i = 0; i < plane_len; ++i)
                t[i] = finish_value(e, xs[i], t[i]);
        if (yh)
            inorm_halves_from_floats(t, yh + i0, plane_len);
        else if (out != yf + i0)
            memcpy(yf + i0, t, plane_len * sizeof *t);
    }
}

/* Elements per piece of output that goes through a buffer on the stack
 * (FLOAT16 output, or an epilogue): a multiple of GROUP. */
#define PIECE 512

/* y[i] for count (a multiple of GROUP, at most PIECE) elements from lane j0 on. */
static void apply_piece(const epilogue *e, values values_in, size_t count, size_t lanes, size_t j0, const scratch *s,
                        float *yf, uint16_t *yh)
{
#if defined(INORM_CPU_CLONES_ENABLED)
    if (inorm_cpu_isa_level() >= INORM_ISA_AVX512) {
        apply_plain_avx512(values_in, count, lanes, j0, s, e, yf, yh);
        return;
    }
    if (inorm_cpu_has_avx2_f16c()) {
        apply_plain_avx2(values_in, count, lanes, j0, s, e, yf, yh);
        return;
    }
#endif
    float buffer[PIECE], t[PIECE];
    const float *x = floats_of(values_in, 0, count, buffer);
    /* an epilogue reads x again: then the rule's values go to t, as y may be x */
    float *out = yh || e->any ? t : yf;
    apply_groups_plain(x, count, lanes, j0, s, out);
    if (e->any)
        for (size_t i = 0; i < count; ++i)
            t[i] = finish_value(e, x[i], t[i]);
    if (yh)
        inorm_halves_from_floats(t, yh, count);
    else if (out != yf)
        memcpy(yf, t, count * sizeof *t);
}

/* y[first + i] for i < count from x (floats) and the lanes' coefficients. */
static void apply_run(const inorm_op *op, const view *v, values x, size_t first, size_t count, const scratch *s)
{
    const epilogue e = epilogue_of(op);
    const bool half = op->y->desc.dtype == INORM_FLOAT16;
    const size_t lanes = apply_lanes(v);
    float *yf = half ? NULL : (float *)op->y->host + first;
    uint16_t *yh = half ? (uint16_t *)op->y->host + first : NULL;
    const size_t whole = count / GROUP * GROUP;
    for (size_t i = 0; i < whole; i += PIECE) {
        const size_t piece = whole - i < PIECE ? whole - i : PIECE;
        const values at = { x.f ? x.f + i : NULL, x.h ? x.h + i : NULL };
        apply_piece(&e, at, piece, lanes, i % lanes, s, half ? NULL : yf + i, half ? yh + i : NULL);
    }
    if (whole < count) {  /* the last few through the same code, padded */
        const size_t rest = count - whole;
        float xs[GROUP] = { 0.0f }, ys[GROUP] = { 0.0f };
        uint16_t hs[GROUP] = { 0 };
        const float *tail = floats_of(x, whole, rest, xs);
        if (tail != xs)
            memcpy(xs, tail, rest * sizeof *xs);
        apply_piece(&e, (values){ xs, NULL }, GROUP, lanes, whole % lanes, s, half ? NULL : ys, half ? hs : NULL);
        if (half)
            memcpy(yh + whole, hs, rest * sizeof *hs);
        else
            memcpy(yf + whole, ys, rest * sizeof *ys);
    }
}

static void apply_range(const inorm_op *op, const view *v, size_t first, size_t last, scratch *s)
{
    for (size_t i = first; i < last; i += v->block) {
        size_t count = last - i < v->block ? last - i : v->block;
        apply_run(op, v, load_values(v->t, i, count, s), i, count, s);
    }
}

typedef struct fast_op {
    const inorm_op *op;
    view x, style;
    size_t x_chunks;          /* the moments job: x's chunks, then the style's */
    size_t style_units_per_item; /* ... the style's items being whole small units (0: chunks) */
    size_t units_per_item;    /* the fused job */
    bool style_in_fused;      /* ... which also takes the style's units of the same index */
    moments *partial;         /* per chunk: period moments */
    size_t style_partial;     /* offset of the style's chunks in partial */
    segment_stats *seg;       /* x: N * C / cps */
    segment_stats *style_st;  /* style: Ns * C */
} fast_op;

/* Statistics of unit u of v from its channels' moments. */
static void finish_unit(const inorm_op *op, const view *v, size_t u, const moments *m, segment_stats *out)
{
    if (v->period == 1) {
        out[u] = finish_stats(m->mean, m->m2, m->count, op);
        return;
    }
    const size_t groups = v->period / v->cps;
    for (size_t g = 0; g < groups; ++g) {
        moments seg = { 0.0, 0.0, 0.0 };
        for (size_t c = g * v->cps; c < (g + 1) * v->cps; ++c)
            merge_moments(&seg, m[c].count, m[c].mean, m[c].m2);
        out[u * groups + g] = finish_stats(seg.mean, seg.m2, seg.count, op);
    }
}

static void write_unit_stats(const fast_op *f, size_t u)
{
    const size_t segments = f->x.t->desc.n * (size_t)f->x.t->desc.c / f->x.cps;
    const size_t per_unit = f->x.period == 1 ? 1 : f->x.period / f->x.cps;
    for (size_t s = u * per_unit; s < (u + 1) * per_unit; ++s)
        write_stats(f->op, s, segments, &f->seg[s]);
}

/* Channel c of sample n's coefficients, st its segment's statistics: the
 * mean split into the float nearest it and the rest (see apply_groups_plain). */
static inline plain_coeffs rule_of(const fast_op *f, const segment_stats *st, size_t n, size_t c)
{
    const inorm_op *op = f->op;
    const size_t C = op->x->desc.c;
    const size_t style_n = op->style && op->style->desc.n == 1 ? 0 : n;
    double a, b;
    coefficients(op, st, op->style ? &f->style_st[style_n * C + c] : NULL, n, c, &a, &b);
    const float shift = (float)st->mean;
    return (plain_coeffs){ shift, (float)(st->mean - shift), (float)a, (float)b };
}

/* Fills the lanes' coefficients for channels c0 .. c0 + period of sample n. */
static void fill_lanes(const fast_op *f, size_t n, size_t c0, scratch *s)
{
    const view *v = &f->x;
    const size_t C = f->op->x->desc.c;
    const size_t lanes = apply_lanes(v);
    for (size_t k = 0; k < v->period; ++k) {
        const size_t c = c0 + k;
        /* (n, c)'s segment; no divisions where segments are planes: with
         * planes of a few elements they were a fifth of an op */
        const segment_stats *st = &f->seg[v->cps == 1 ? n * C + c : n * (C / v->cps) + c / v->cps];
        const plain_coeffs r = rule_of(f, st, n, c);
        s->shift[k] = r.shift;
        s->offset[k] = r.offset;
        s->scale[k] = r.scale;
        s->bias[k] = r.bias;
    }
    replicate(s->shift, sizeof *s->shift, v->period, lanes);
    replicate(s->offset, sizeof *s->offset, v->period, lanes);
    replicate(s->scale, sizeof *s->scale, v->period, lanes);
    replicate(s->bias, sizeof *s->bias, v->period, lanes);
}

/* Planes per batch of apply_small_planes at most: their coefficients sit
 * on the stack (16 KiB). */
#define SMALL_BATCH 1024

/* Normalizes elements [first, last) of an NCHW x whose planes have at most
 * SMALL_UNIT elements, with the float rule: a batch of planes' coefficients,
 * then their outputs in one loop that broadcasts each plane's coefficients
 * (a plane cut by first or last is a batch of its own). Filling lanes per
 * plane, and the calls down to the lane loops, cost more than a plane of 16
 * elements does (16x512x4x4 instance norm 3x faster). */
static void apply_small_planes(const fast_op *f, size_t first, size_t last, scratch *s)
{
    const inorm_op *op = f->op;
    const size_t C = op->x->desc.c, cps = f->x.cps, plane_len = f->x.unit_len / cps;
    const bool half = op->y->desc.dtype == INORM_FLOAT16;
    /* element i's plane is channel c of sample n, in segment `segment`:
     * counted from here on, not divided per plane */
    size_t plane = first / plane_len, n = plane / C, c = plane % C, segment = plane / cps, in_segment = plane % cps;
    const epilogue e = epilogue_of(op);
    plain_coeffs k[SMALL_BATCH];
    for (size_t i = first; i < last;) {
        const size_t plane_end = (i / plane_len + 1) * plane_len;
        size_t planes = 1, count = (plane_end < last ? plane_end : last) - i;
        if (count == plane_len) {  /* whole planes: as many as a batch and a block hold */
            const size_t whole = (last - i) / plane_len, most = BLOCK / plane_len < SMALL_BATCH ? BLOCK / plane_len
                                                                                                  : SMALL_BATCH;
            planes = whole < most ? whole : most;
            count = planes * plane_len;
        }
        for (size_t p = 0; p < planes; ++p) {
            k[p] = rule_of(f, &f->seg[segment], n, c);
            if (++c == C) {
                c = 0;
                ++n;
            }
            if (++in_segment == cps) {
                in_segment = 0;
                ++segment;
            }
        }
        apply_planes_plain(load_values(op->x, i, count, s), planes, count / planes, k, &e,
                           half ? NULL : (float *)op->y->host + i, half ? (uint16_t *)op->y->host + i : NULL);
        i += count;
    }
}

/* Normalizes elements [first, last) of unit u of x. */
static void apply_unit_range(const fast_op *f, size_t u, size_t first, size_t last, scratch *s)
{
    const view *v = &f->x;
    const size_t C = f->op->x->desc.c;
    if (v->period > 1) {  /* NHWC: one sample, every channel in the lanes */
        fill_lanes(f, u, 0, s);
        apply_range(f->op, v, first, last, s);
        return;
    }
    if (v->unit_len / v->cps <= SMALL_UNIT) {
        apply_small_planes(f, first, last, s);
        return;
    }
    /* NCHW: a segment of cps planes, each with its own coefficients */
    if (v->cps == 1) {
        fill_lanes(f, u / C, u % C, s);
        apply_range(f->op, v, first, last, s);
        return;
    }
    const size_t plane = v->unit_len / v->cps, base = u * v->unit_len;
    const size_t n = u * v->cps / C, c0 = u * v->cps % C;
    for (size_t i = first; i < last;) {
        const size_t k = (i - base) / plane, stop = base + (k + 1) * plane < last ? base + (k + 1) * plane : last;
        fill_lanes(f, n, c0 + k, s);
        apply_range(f->op, v, i, stop, s);
        i = stop;
    }
}

/* Whether v's units take the small-unit loops: NCHW, SMALL_UNIT elements at most. */
static bool small_units(const view *v)
{
    return v->period == 1 && v->unit_len <= SMALL_UNIT;
}

#if defined(INORM_CPU_CLONES_ENABLED)
/* Four values from element i on as doubles. */
INORM_AVX2_F16C_INLINE __m256d doubles4(values x, size_t i)
{
    return _mm256_cvtps_pd(x.h ? _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(x.h + i))) : _mm_loadu_ps(x.f + i));
}

/* small_moments with AVX2: lane k of a vector is chain k (values i % 4 == k,
 * in order), so the same sums in the same order as the portable loops. */
INORM_AVX2_F16C_INLINE void small_moments_body(values x, size_t count, double *mean_out, double *m2_out)
{
    const size_t whole = count / 4 * 4;
    __m256d sums = _mm256_setzero_pd();
    for (size_t i = 0; i < whole; i += 4)
        sums = _mm256_add_pd(sums, doubles4(x, i));
    double s[4];
    _mm256_storeu_pd(s, sums);
    for (size_t i = whole; i < count; ++i)
        s[0] += value_at(x, i);
    const double mean = ((s[0] + s[1]) + (s[2] + s[3])) / (double)count;
    const __m256d m = _mm256_set1_pd(mean);
    __m256d squares = _mm256_setzero_pd();
    for (size_t i = 0; i < whole; i += 4) {
        const __m256d d = _mm256_sub_pd(doubles4(x, i), m);
        squares = _mm256_add_pd(squares, _mm256_mul_pd(d, d));
    }
    double q[4];
    _mm256_storeu_pd(q, squares);
    for (size_t i = whole; i < count; ++i) {
        const double d = value_at(x, i) - mean;
        q[0] += d * d;
    }
    *mean_out = mean;
    *m2_out = (q[0] + q[1]) + (q[2] + q[3]);
}

INORM_AVX2_F16C static void small_unit_stats_avx2(const inorm_op *op, const view *v, size_t u0, size_t u1,
                                                  segment_stats *out)
{
    const size_t len = v->unit_len;
    const bool half = v->t->desc.dtype == INORM_FLOAT16;
    for (size_t u = u0; u < u1; ++u) {
        double mean, m2;
        if (half)
            small_moments_body((values){ NULL, (const uint16_t *)v->t->host + u * len }, len, &mean, &m2);
        else
            small_moments_body((values){ (const float *)v->t->host + u * len, NULL }, len, &mean, &m2);
        out[u] = finish_stats(mean, m2, (double)len, op);
    }
}
#endif

/* Statistics of v's small units [u0, u1), straight from their values. */
static void small_unit_stats(const inorm_op *op, const view *v, size_t u0, size_t u1, scratch *s, segment_stats *out)
{
#if defined(INORM_CPU_CLONES_ENABLED)
    if (halves_direct()) {  /* the AVX2 loops read floats and halves alike */
        small_unit_stats_avx2(op, v, u0, u1, out);
        return;
    }
#endif
    const size_t len = v->unit_len;
    for (size_t u = u0; u < u1; ++u) {
        double mean, m2;
        small_moments(load_values(v->t, u * len, len, s), len, &mean, &m2);
        out[u] = finish_stats(mean, m2, (double)len, op);
    }
}

/* Statistics of v's whole units [u0, u1) into out. */
static void units_stats(const inorm_op *op, const view *v, size_t u0, size_t u1, scratch *s, segment_stats *out)
{
    if (small_units(v)) {
        small_unit_stats(op, v, u0, u1, s, out);
        return;
    }
    for (size_t u = u0; u < u1; ++u) {
        for (size_t c = 0; c < v->period; ++c)
            s->unit[c] = (moments){ 0.0, 0.0, 0.0 };
        range_moments(v, u * v->unit_len, (u + 1) * v->unit_len, s, s->unit);
        finish_unit(op, v, u, s->unit, out);
    }
}

/* The fused job's item of small units: all their statistics, then all
 * their outputs. */
static void small_units_item(const fast_op *f, size_t u0, size_t u1, scratch *s)
{
    const inorm_op *op = f->op;
    const view *v = &f->x;
    units_stats(op, v, u0, u1, s, f->seg);
    if (op->kind == INORM_OP_STATS) {
        for (size_t u = u0; u < u1; ++u)
            write_unit_stats(f, u);
    } else {
        apply_small_planes(f, u0 * v->unit_len, u1 * v->unit_len, s);
    }
}

/* The moments job: item i is a chunk of x, or of the style beyond x_chunks
 * (or the style's small units, style_units_per_item to an item). */
static void moments_body(const work *w, worker *self, size_t i)
{
    const fast_op *f = w->arg;
    const bool style = i >= f->x_chunks;
    const view *v = style ? &f->style : &f->x;
    const size_t chunk = style ? i - f->x_chunks : i;
    if (style && f->style_units_per_item) {
        const size_t u0 = chunk * f->style_units_per_item;
        const size_t u1 = u0 + f->style_units_per_item < v->units ? u0 + f->style_units_per_item : v->units;
        small_unit_stats(f->op, v, u0, u1, self->scratch, f->style_st);
        return;
    }
    moments *out = f->partial + (style ? f->style_partial + chunk * v->period : chunk * v->period);
    size_t first, last;
    chunk_range(v, chunk / v->parts, chunk % v->parts, &first, &last);
    range_moments(v, first, last, self->scratch, out);
}

/* Merges the chunks of every unit of v in order and finishes them. */
static void merge_chunks(const inorm_op *op, const view *v, moments *partial, segment_stats *out)
{
    for (size_t u = 0; u < v->units; ++u) {
        moments *unit = partial + u * v->parts * v->period;
        for (size_t p = 1; p < v->parts; ++p)
            for (size_t c = 0; c < v->period; ++c) {
                const moments *m = &unit[p * v->period + c];
                merge_moments(&unit[c], m->count, m->mean, m->m2);
            }
        finish_unit(op, v, u, unit, out);
    }
}

/* The apply job over x's chunks (after the moments job). */
static void apply_body(const work *w, worker *self, size_t i)
{
    const fast_op *f = w->arg;
    size_t first, last;
    chunk_range(&f->x, i / f->x.parts, i % f->x.parts, &first, &last);
    apply_unit_range(f, i / f->x.parts, first, last, self->scratch);
}

/* The fused job: whole units of x, statistics then output while they are
 * still in cache. An item is several units where they are small: their
 * statistics first, then their outputs, so that one unit's chain of
 * additions, divisions and square root overlaps the next one's instead of
 * each output waiting on its own (16x512x4x4: 10-18% faster). */
static void fused_body(const work *w, worker *self, size_t item)
{
    const fast_op *f = w->arg;
    scratch *s = self->scratch;
    const size_t len = f->x.unit_len, u0 = item * f->units_per_item;
    const size_t u1 = u0 + f->units_per_item < f->x.units ? u0 + f->units_per_item : f->x.units;
    /* first: the resident conversion below would stand in for style values */
    if (f->style_in_fused)
        units_stats(f->op, &f->style, u0, u1, s, f->style_st);
    if (f->x.t->desc.dtype == INORM_FLOAT16 && !halves_direct() && (u1 - u0) * len <= s->x_capacity) {
        inorm_half_to_float_n((const uint16_t *)f->x.t->host + u0 * len, s->x, (u1 - u0) * len);
        s->resident_first = u0 * len;
        s->resident_count = (u1 - u0) * len;
    }
    if (small_units(&f->x)) {
        small_units_item(f, u0, u1, s);
        s->resident_count = 0;
        return;
    }
    units_stats(f->op, &f->x, u0, u1, s, f->seg);
    for (size_t u = u0; u < u1; ++u) {
        if (f->op->kind == INORM_OP_STATS)
            write_unit_stats(f, u);
        else
            apply_unit_range(f, u, u * len, (u + 1) * len, s);
    }
    s->resident_count = 0;
}

/* Chunks per unit: enough for every thread to have several. */
static size_t parts_for(const view *v, unsigned threads)
{
    const size_t want = 4 * (size_t)threads, steps = v->unit_len / v->period;
    size_t parts = threads == 1 || v->units >= want ? 1 : (want + v->units - 1) / v->units;
    return parts < steps ? parts : steps;
}

static void *carve(char **cursor, size_t bytes)
{
    void *p = *cursor;
    *cursor += (bytes + 63) / 64 * 64;
    return p;
}

/* Runs op on the fast path. Returns false when it needs more lanes than the
 * fast path has (the caller takes the general path); *oom on a failed
 * allocation. */
/* Content and style elements of one unit at most for the style to go in
 * the fused job (256 KiB of fp32, an L2's share). */
#define STYLE_IN_FUSED_MAX 65536

static bool run_fast(inorm_context *ctx, const inorm_op *op, bool *oom)
{
    fast_op f = { .op = op };
    *oom = false;
    if (!make_view(&f.x, op->x, op->channels_per_segment) ||
        (op->kind == INORM_OP_ADAIN && !make_view(&f.style, op->style, 1)))
        return false;
    const bool adain = op->kind == INORM_OP_ADAIN;
    const unsigned threads = thread_count(op->x->elements + (adain ? op->style->elements : 0));
    /* a unit per item when the units share out evenly (5 units on 2 threads
     * would leave one idle for a fifth of the time), else chunks in two jobs */
    const bool fused = threads == 1 || f.x.units >= 8 * (size_t)threads ||
                       (f.x.units >= 2 * (size_t)threads && f.x.units % threads == 0);
    f.x.parts = fused ? 1 : parts_for(&f.x, threads);
    /* units of under a block go BLOCK elements to an item (which the
     * resident conversion of FLOAT16 can hold: blocks are at least that) */
    f.units_per_item = f.x.unit_len < BLOCK ? BLOCK / f.x.unit_len : 1;
    /* a small style's statistics go straight to style_st, BLOCK elements to an item */
    /* a style whose units are the content's (a style per sample, both
     * views of one period, so unit u is the same (n, c) or sample n in
     * both) and small is taken by the fused job's items, unit for unit: one
     * job, not two (AdaIN on 16x512x4x4, 1x512x32x32 and 1x256x64x64 NCHW
     * in 0.81-0.97 of the time, two sets of alternating runs). Not large
     * units: a style unit read between a content unit's statistics and its
     * output pushed the content out of cache (8x256x64x64 NHWC fp16 3.5 ->
     * 4.2 ms). */
    f.style_in_fused = adain && fused && f.style.units == f.x.units && f.style.period == f.x.period &&
                       f.x.unit_len + f.style.unit_len <= STYLE_IN_FUSED_MAX;
    const bool small_style = adain && !f.style_in_fused && small_units(&f.style);
    f.style_units_per_item = small_style ? BLOCK / f.style.unit_len : 0;
    if (adain)
        f.style.parts = small_style || f.style_in_fused ? 1 : parts_for(&f.style, threads);
    f.x_chunks = fused ? 0 : f.x.units * f.x.parts;
    f.style_partial = f.x_chunks * f.x.period;
    const size_t style_chunks = !adain || f.style_in_fused ? 0
                                : small_style ? (f.style.units + f.style_units_per_item - 1) / f.style_units_per_item
                                              : f.style.units * f.style.parts;
    const size_t partials = f.style_partial + style_chunks * (small_style ? 0 : f.style.period);

    const size_t lanes = f.x.lanes > f.style.lanes ? f.x.lanes : f.style.lanes;
    size_t block = f.x.block > f.style.block ? f.x.block : f.style.block;
    if (fused && op->x->desc.dtype == INORM_FLOAT16 && !halves_direct() && f.x.unit_len > block &&
        f.x.unit_len <= MAX_RESIDENT)
        block = f.x.unit_len;
    const size_t thread_bytes = 3 * ((lanes * sizeof(double) + 63) / 64 * 64) +
                                4 * ((lanes * sizeof(float) + 63) / 64 * 64) +
                                (block * sizeof(float) + 63) / 64 * 64 +
                                (f.x.period * sizeof(moments) + 63) / 64 * 64;
    const size_t segments = (size_t)op->x->desc.n * op->x->desc.c / f.x.cps;
    const size_t style_segments = adain ? (size_t)op->style->desc.n * op->style->desc.c : 0;
    const size_t bytes = threads * thread_bytes + (partials * sizeof(moments) + 63) / 64 * 64 +
                         (segments + style_segments) * sizeof(segment_stats) + 64;
    char *memory = inorm_malloc(bytes);
    if (!memory) {
        *oom = true;
        return true;
    }
    char *cursor = (char *)(((uintptr_t)memory + 63) / 64 * 64);
    scratch scratches[INORM_CPU_MAX_THREADS];
    worker workers[INORM_CPU_MAX_THREADS];
    for (unsigned t = 0; t < threads; ++t) {
        scratch *s = &scratches[t];
        s->acc = carve(&cursor, lanes * sizeof(double));
        s->squares = carve(&cursor, lanes * sizeof(double));
        s->lane_mean = carve(&cursor, lanes * sizeof(double));
        s->shift = carve(&cursor, lanes * sizeof(float));
        s->offset = carve(&cursor, lanes * sizeof(float));
        s->scale = carve(&cursor, lanes * sizeof(float));
        s->bias = carve(&cursor, lanes * sizeof(float));
        s->x = carve(&cursor, block * sizeof(float));
        s->x_capacity = block;
        s->resident_first = s->resident_count = 0;
        s->unit = carve(&cursor, f.x.period * sizeof(moments));
        workers[t].scratch = s;
    }
    f.partial = carve(&cursor, partials * sizeof(moments));
    f.seg = (segment_stats *)cursor;
    f.style_st = f.seg + segments;
    for (size_t i = 0; i < partials; ++i)
        f.partial[i] = (moments){ 0.0, 0.0, 0.0 };

    work w = { .arg = &f };
    if (f.x_chunks + style_chunks > 0) {
        w.body = moments_body;
        w.items = f.x_chunks + style_chunks;
        run_work(ctx, &w, workers, threads);
        if (style_chunks && !small_style)
            merge_chunks(op, &f.style, f.partial + f.style_partial, f.style_st);
    }
    if (fused) {
        w.body = fused_body;
        w.items = (f.x.units + f.units_per_item - 1) / f.units_per_item;
        run_work(ctx, &w, workers, threads);
    } else {
        merge_chunks(op, &f.x, f.partial, f.seg);
        if (op->kind == INORM_OP_STATS) {
            for (size_t u = 0; u < f.x.units; ++u)
                write_unit_stats(&f, u);
        } else {
            w.body = apply_body;
            w.items = f.x_chunks;
            run_work(ctx, &w, workers, threads);
        }
    }
    inorm_free(memory);
    return true;
}

/* false: out of host memory. */
static bool run_op(inorm_context *ctx, const inorm_op *op)
{
    const inorm_tensor_desc *d = &op->x->desc;
    const unsigned threads = thread_count(op->x->elements);
    worker workers[INORM_CPU_MAX_THREADS];
    work w = { .arg = op };
    if (op->kind == INORM_OP_CONVERT) {
        const inorm_tensor_desc *to = &op->y->desc;
        bool same_layout = d->layout == to->layout || d->c == 1 || (d->h == 1 && d->w == 1);
        if (same_layout && d->dtype == to->dtype) {
            memcpy(op->y->host, op->x->host, op->x->bytes);
        } else {
            w.body = convert_body;
            w.items = (size_t)d->n * d->c;
            run_work(ctx, &w, workers, threads);
        }
        return true;
    }
    if (!op->mask && !op->style_mask) {
        bool oom;
        if (run_fast(ctx, op, &oom))
            return !oom;
    }
    w.body = general_body;
    w.items = (size_t)d->n * d->c / op->channels_per_segment;
    run_work(ctx, &w, workers, threads);
    return true;
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
    /* Fast path: x read once for the statistics (blocks of it are reused
     * from cache) and once more to write y. */
    const bool convert = op->kind == INORM_OP_CONVERT;
    const bool general = op->mask || op->style_mask;
    double passes = convert || op->kind == INORM_OP_STATS ? 1.0 : 2.0;
    double style_bytes = op->style ? (double)op->style->bytes : 0.0;
    ctx->last_plan = (inorm_plan_info){ .dispatches = 0,
                                        .bytes_moved = passes * (double)op->x->bytes + style_bytes +
                                                       (op->y ? (double)op->y->bytes : 0.0) };
    const unsigned threads = thread_count(op->x->elements + (op->style ? op->style->elements : 0));
    snprintf(ctx->last_plan.variant, sizeof ctx->last_plan.variant, "cpu: %s, %s, %u thread%s",
             convert ? "convert" : general ? "double two-pass, general" : "double shifted one-pass + Chan",
             inorm_cpu_isa_name(inorm_cpu_isa_level()), threads, threads == 1 ? "" : "s");
    if (op->kind == INORM_OP_COLOR || op->kind == INORM_OP_BLEND) {  /* pixel ops: one pass */
        ctx->last_plan = (inorm_plan_info){ .variant = "cpu: per pixel, double",
                                            .bytes_moved = (double)op->x->bytes + (double)op->y->bytes +
                                                           (op->blend_b ? (double)op->blend_b->bytes : 0.0) };
        if (op->kind == INORM_OP_COLOR)
            inorm_cpu_color(op);
        else
            inorm_cpu_blend(op);
    } else if (!run_op(ctx, op)) {
        return inorm_fail(ctx, INORM_ERROR_OUT_OF_HOST_MEMORY, "out of host memory for the CPU path's buffers");
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
