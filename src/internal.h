/* Internal declarations shared by the front end (context, tensor, ops) and
 * the two backends. Nothing here is visible outside libinorm. */
#ifndef INORM_INTERNAL_H
#define INORM_INTERNAL_H

#include "inorm.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

#define INORM_ERROR_TEXT_SIZE 512

#if defined(__GNUC__) || defined(__clang__)
#define INORM_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define INORM_PRINTF(fmt_index, first_arg)
#endif

typedef struct inorm_backend_ops inorm_backend_ops;
typedef struct vk_state vk_state;
typedef struct inorm_cpu_pool inorm_cpu_pool;

/* What the last op ran (for the benchmark and diagnostics). */
typedef struct inorm_plan_info {
    char variant[192];          /* kernel strategy and its parameters */
    uint32_t dispatches;        /* Vulkan dispatches or buffer copies recorded */
    double bytes_moved;         /* bytes the kernels read and write (planned, not measured) */
} inorm_plan_info;

struct inorm_context {
    const inorm_backend_ops *backend;
    vk_state *vk;               /* NULL on the CPU path */
    inorm_device_info info;
    inorm_status sticky_status; /* DEVICE_LOST once the device is gone */
    char error[INORM_ERROR_TEXT_SIZE];
    inorm_tensor *tensors;      /* every live tensor, so destroy can free them */
    inorm_tensor *mix_targets[2]; /* inorm_adain_mix's target mean and std (N x C) */
    inorm_plan_info last_plan;
    bool deferred_checks;       /* recording into an app's command buffer: tensor data cannot be read now */
    bool profiling;
    double pending_seconds;     /* CPU path: ops since the last wait */
    double last_device_seconds; /* < 0: nothing measured */
    inorm_cpu_pool *cpu_pool;   /* CPU path: its helper threads, made on first use */
};

/* The kernel a convert op runs: the backend's choice, or (the benchmark's
 * rooflines) the copy shader even where a buffer copy would do, or that
 * shader with every value widened to fp32, -0.0 added and narrowed back;
 * the _STORAGE kinds read the source as a storage buffer even where it has
 * a texel view (the benchmark keeps the faster of the two). */
typedef enum inorm_copy_kernel {
    INORM_COPY_ANY, INORM_COPY_SHADER, INORM_COPY_SHADER_ALU, INORM_COPY_SHADER_STORAGE, INORM_COPY_SHADER_ALU_STORAGE
} inorm_copy_kernel;

/* Runs a convert op with the given copy kernel. */
inorm_status inorm_convert_op(inorm_context *ctx, const inorm_tensor *src, inorm_tensor *dst, inorm_copy_kernel kernel);

struct inorm_tensor {
    inorm_context *ctx;
    inorm_tensor_desc desc;
    size_t elements;
    size_t bytes;
    inorm_tensor *prev, *next;
    void *host;                 /* CPU path storage */
    struct vk_buffer *buffer;   /* Vulkan storage */
    uint64_t generation;        /* changes whenever the contents may change */
    uint64_t mask_checked_generation; /* the generation last found a valid mask */
};

/* What an op asks of a backend, after ops.c has validated everything.
 * Statistics run over `segments` contiguous ranges of segment_len elements;
 * a segment is channels_per_segment whole channel planes of one sample. */
typedef enum inorm_op_kind {
    INORM_OP_NORMALIZE,  /* affine from gamma/beta (per channel, per (n, c), or banks) */
    INORM_OP_ADAIN,      /* affine from the style's statistics */
    INORM_OP_STATS,      /* write (or accumulate) mean and std, no y */
    INORM_OP_CONVERT,    /* y = x in y's dtype and layout */
    INORM_OP_COLOR,      /* y = x converted between colour spaces (src/color.c) */
    INORM_OP_BLEND       /* y = weight * x + (1 - weight) * blend_b (src/blend.c) */
} inorm_op_kind;

typedef enum inorm_affine_source {
    INORM_AFFINE_CHANNEL,  /* gamma[c], beta[c] */
    INORM_AFFINE_SAMPLE,   /* gamma[n, c], beta[n, c] */
    INORM_AFFINE_BANK      /* sum_s bank_weights[n, s] * gamma[s, c] (beta likewise) */
} inorm_affine_source;

/* What an op asks of a backend, after ops.c has validated everything.
 * Statistics run over segments: channels_per_segment whole channel planes of
 * one sample (1 for instance norm, C/groups for group norm). */
typedef struct inorm_op {
    inorm_op_kind kind;
    const inorm_tensor *x;
    const inorm_tensor *style;        /* ADAIN */
    const inorm_tensor *gamma;        /* NORMALIZE: scale, may be NULL (1) */
    const inorm_tensor *beta;         /* NORMALIZE: shift, may be NULL (0) */
    const inorm_tensor *bank_weights; /* INORM_AFFINE_BANK: N x S */
    inorm_affine_source affine;
    uint32_t bank_size;               /* S */
    const inorm_tensor *mask;         /* weights of x's statistics, may be NULL */
    const inorm_tensor *style_mask;   /* weights of the style's statistics, may be NULL */
    inorm_tensor *y;                  /* NORMALIZE, ADAIN */
    inorm_tensor *mean_out;           /* STATS, may be NULL */
    inorm_tensor *std_out;            /* STATS, may be NULL */
    uint32_t channels_per_segment;
    float eps;
    bool unbiased;
    float alpha;                      /* y = x + alpha * (t - x) */
    inorm_activation activation;
    float activation_slope;
    float out_weight;                 /* STATS: out = (accumulate ? out : 0) + out_weight * value */
    bool accumulate;
    uint32_t out_repeat;              /* STATS: each value goes to this many samples (1, or N for a style of N 1) */
    uint32_t out_repeat_first;        /* STATS: ... starting at this sample (repeats are done in slices) */
    inorm_copy_kernel copy_kernel;    /* CONVERT */
    /* Pixel ops (src/color.c, src/blend.c) */
    inorm_color_space color_from;     /* COLOR */
    inorm_color_space color_to;       /* COLOR */
    const inorm_tensor *blend_b;      /* BLEND: the tensor weighted by 1 - weight */
    const inorm_tensor *blend_weight; /* BLEND: FLOAT32, broadcast over N, C or H x W */
} inorm_op;

/* Runs a validated ADAIN op as its two steps (the style's statistics, then
 * a modulation of the content): for backends whose fused kernels make that
 * cheaper than one pass over both tensors. */
inorm_status inorm_adain_as_style_mix(inorm_context *ctx, const inorm_op *adain);

struct inorm_backend_ops {
    inorm_status (*tensor_create)(inorm_context *ctx, inorm_tensor *t);
    void (*tensor_destroy)(inorm_context *ctx, inorm_tensor *t);
    inorm_status (*tensor_write)(inorm_context *ctx, inorm_tensor *t, const void *src);
    inorm_status (*tensor_read)(inorm_context *ctx, const inorm_tensor *t, void *dst);
    inorm_status (*run)(inorm_context *ctx, const inorm_op *op);
    inorm_status (*finish)(inorm_context *ctx);
    void (*context_destroy)(inorm_context *ctx);
};

extern const inorm_backend_ops inorm_cpu_backend;
extern const inorm_backend_ops inorm_vulkan_backend;

/* CPU path of the pixel ops: src/color.c and src/blend.c. */
void inorm_cpu_color(const inorm_op *op);
void inorm_cpu_blend(const inorm_op *op);
/* The CPU path's threads (src/cpu/cpu_pool.c): a pool per context. */
#define INORM_CPU_MAX_THREADS 16
/* Threads for a job of `items`: 1 below min_items, else the cores (at most
 * INORM_CPU_MAX_THREADS). */
unsigned inorm_cpu_threads_for(size_t items, size_t min_items);
/* Runs body(arg, index, participants) on `threads` threads at once, the
 * caller being index 0; participants may be fewer than asked (a helper
 * that could not be started), never 0. Returns when all are done. */
void inorm_cpu_run(inorm_context *ctx, unsigned threads,
                   void (*body)(void *arg, unsigned index, unsigned participants), void *arg);
/* Stops and frees the context's helpers (context destroy). */
void inorm_cpu_pool_destroy(inorm_context *ctx);
/* Runs body(arg, first, last) over [0, count) split among the cores; small
 * counts stay on the calling thread. */
void inorm_cpu_for_range(inorm_context *ctx, size_t count, void (*body)(void *arg, size_t first, size_t last),
                         void *arg);

/* Host memory of the library (alloc.c): every allocation goes through these,
 * so test builds can fail the Nth one and count what is still live. */
void *inorm_malloc(size_t bytes);
void *inorm_calloc(size_t count, size_t size);
void *inorm_realloc(void *p, size_t bytes);
void inorm_free(void *p);

typedef enum inorm_fault_kind {
    INORM_FAULT_HOST_ALLOC,    /* inorm_malloc / inorm_calloc return NULL */
    INORM_FAULT_DEVICE_ALLOC,  /* vkAllocateMemory reports VK_ERROR_OUT_OF_DEVICE_MEMORY */
    INORM_FAULT_SUBMIT,        /* vkQueueSubmit reports VK_ERROR_DEVICE_LOST */
    INORM_FAULT_KINDS
} inorm_fault_kind;

#ifdef INORM_FAULT_INJECTION
/* Test builds: the nth event of `kind` from now fails (n >= 1; 0 disarms). */
void inorm_fault_arm(inorm_fault_kind kind, long n);
bool inorm_fault_fired(void);
long inorm_live_allocations(void);
bool inorm_fault_hit(inorm_fault_kind kind);
#else
static inline bool inorm_fault_hit(inorm_fault_kind kind)
{
    (void)kind;
    return false;
}
#endif

/* Records `status` with a formatted detail on ctx and returns status. */
inorm_status inorm_fail(inorm_context *ctx, inorm_status status, const char *fmt, ...) INORM_PRINTF(3, 4);
void inorm_clear_error(inorm_context *ctx);

/* Vulkan backend entry points used by context.c. hardware_only: pass over
 * software (CPU-type) devices. */
inorm_status inorm_vulkan_context_init(inorm_context *ctx, int device_index, const char *device_name,
                                       bool hardware_only, bool validation, uint32_t flags,
                                       const char *pipeline_cache_path, char *message, size_t message_size);
inorm_status inorm_vulkan_enumerate(inorm_device_info *infos, uint32_t *count);
struct inorm_vulkan_import;
inorm_status inorm_vulkan_context_import(inorm_context *ctx, const struct inorm_vulkan_import *desc, char *message,
                                         size_t message_size);

/* Creates a tensor (checks, bookkeeping); with allocate false the caller
 * attaches storage itself (wrapped app buffers). */
inorm_status inorm_tensor_new(inorm_context *ctx, const inorm_tensor_desc *desc, bool allocate, inorm_tensor **out);

/* The CPU path's hot loops are compiled twice, for x86-64's baseline (SSE2)
 * and for AVX2, and the loader picks one (an ifunc: glibc only). AVX2
 * without FMA: contracting a * (x - m) + b would change the rounding with the
 * machine. Not under ThreadSanitizer or MemorySanitizer: they instrument the
 * resolver, which the loader runs before they are initialized (a crash). */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define INORM_NO_CLONES 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define INORM_NO_CLONES 1
#endif
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__) && \
    !defined(INORM_NO_CLONES)
#define INORM_CPU_CLONES __attribute__((target_clones("avx2", "default")))
#define INORM_CPU_CLONES_ENABLED 1
#else
#define INORM_CPU_CLONES
#endif

/* binary16 <-> binary32 / binary64 by bit manipulation (src/half.c's public
 * functions are these). Selections are masks, not branches, so that loops
 * over arrays of them vectorize: the CPU path converts whole blocks. */
static inline uint32_t inorm_mask32(bool condition) { return 0u - (uint32_t)condition; }

static inline float inorm_half_bits_to_float(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t magnitude = h & 0x7fffu;
    /* normal: exponent and mantissa moved into place, exponent rebiased 15 -> 127 */
    const uint32_t normal = (magnitude << 13) + (112u << 23);
    /* exponent all ones: Inf, or one canonical quiet NaN whatever the payload */
    const uint32_t special = 0x7f800000u | (inorm_mask32(magnitude > 0x7c00u) & 0x00400000u);
    const uint32_t is_special = inorm_mask32(magnitude >= 0x7c00u);
    /* zero and subnormals are magnitude units of 2^-24: exact in float */
    const float tiny = (float)(int32_t)magnitude * 0x1p-24f;
    uint32_t tiny_bits;
    memcpy(&tiny_bits, &tiny, sizeof tiny_bits);
    const uint32_t is_tiny = inorm_mask32(magnitude < 0x400u);
    const uint32_t wide = (special & is_special) | (normal & ~is_special);
    const uint32_t bits = ((tiny_bits & is_tiny) | (wide & ~is_tiny)) | sign;
    float result;
    memcpy(&result, &bits, sizeof result);
    return result;
}

/* Round to the nearest binary16, ties to even; overflow gives Inf, NaN the
 * quiet NaN 0x7e00 with the value's sign. In 32-bit lanes (twice as many per
 * vector as 64-bit ones): first to float rounding to odd (truncate, then set
 * the last bit if anything was lost), which keeps the second rounding, to 11
 * bits, exactly what a direct one would be (24 >= 11 + 2 bits). */
static inline uint16_t inorm_half_bits_from_double(double value)
{
    const float near = (float)value;
    const double back = near;
    uint32_t bits;
    memcpy(&bits, &near, sizeof bits);
    /* |near| > |value|: step the magnitude back one ulp (Inf becomes FLT_MAX) */
    bits -= inorm_mask32(fabs(back) > fabs(value)) & 1u;
    bits |= inorm_mask32(back != value) & 1u;  /* inexact (NaN too: stays NaN) */
    const uint32_t sign = bits >> 16 & 0x8000u;
    const uint32_t magnitude = bits & 0x7fffffffu;
    /* normal halves: drop 13 of the 23 mantissa bits, to nearest even (a carry
     * out of the mantissa correctly bumps the exponent), rebias 127 -> 15 */
    const uint32_t normal = ((magnitude + 0xfffu + (magnitude >> 13 & 1u)) >> 13) - (112u << 10);
    /* below 2^-14: adding 0.5, whose ulp is 2^-24 (the subnormal spacing),
     * rounds to a whole number of 2^-24 in the low mantissa bits */
    float absolute;
    memcpy(&absolute, &magnitude, sizeof absolute);
    const float shifted = absolute + 0.5f;
    uint32_t shifted_bits;
    memcpy(&shifted_bits, &shifted, sizeof shifted_bits);
    const uint32_t subnormal = shifted_bits - 0x3f000000u; /* bits of 0.5 */
    const uint32_t is_subnormal = inorm_mask32(magnitude < 0x38800000u); /* 2^-14 */
    const uint32_t is_inf = inorm_mask32(magnitude >= 0x477ff000u);      /* 65520 (rounds to 2^16) and up */
    const uint32_t is_nan = inorm_mask32(magnitude > 0x7f800000u);
    uint32_t half = (subnormal & is_subnormal) | (normal & ~is_subnormal);
    half = (0x7c00u & is_inf) | (half & ~is_inf);
    half = (0x7e00u & is_nan) | (half & ~is_nan);
    return (uint16_t)(sign | half);
}

/* Round to the nearest binary16 (ties to even). */
uint16_t inorm_half_from_double(double value);
/* n halves to floats (inorm_half_bits_to_float on each). */
void inorm_half_to_float_n(const uint16_t *src, float *dst, size_t n);
/* The vector instructions the CPU path's hand-written loops use: the
 * processor's best, capped by the environment's INORM_CPU_ISA ("portable",
 * "avx2"; tests run the lower levels on machines that have the higher).
 * Every level gives the same bits: its loops do the same operations in the
 * same order per lane. */
typedef enum inorm_cpu_isa { INORM_ISA_PORTABLE, INORM_ISA_AVX2, INORM_ISA_AVX512 } inorm_cpu_isa;
inorm_cpu_isa inorm_cpu_isa_level(void);
/* "portable", "avx2", "avx512": INORM_CPU_ISA's words for the levels. */
const char *inorm_cpu_isa_name(inorm_cpu_isa level);
/* Whether the AVX2 + F16C loops run (level AVX2 or above). */
bool inorm_cpu_has_avx2_f16c(void);
/* n doubles to halves, bit for bit what inorm_half_bits_from_double gives
 * (by F16C where the processor has it: about 10x faster). */
void inorm_halves_from_doubles(const double *src, uint16_t *dst, size_t n);
/* n floats to halves, likewise (a float converts to double exactly). */
void inorm_halves_from_floats(const float *src, uint16_t *dst, size_t n);

/* Element i of a CPU-path tensor, as double; and its rounding back. */
static inline double inorm_host_load(const inorm_tensor *t, size_t i)
{
    if (t->desc.dtype == INORM_FLOAT16)
        return inorm_half_bits_to_float(((const uint16_t *)t->host)[i]);
    return ((const float *)t->host)[i];
}

static inline void inorm_host_store(inorm_tensor *t, size_t i, double value)
{
    if (t->desc.dtype == INORM_FLOAT16)
        ((uint16_t *)t->host)[i] = inorm_half_bits_from_double(value);
    else
        ((float *)t->host)[i] = (float)value;
}

/* Element size of a dtype in bytes. */
size_t inorm_dtype_size(inorm_dtype dtype);


/* Index of element (n, c, p) of a tensor, p the pixel within the H x W plane. */
static inline size_t inorm_element_index(const inorm_tensor_desc *d, size_t n, size_t c, size_t p)
{
    size_t plane = (size_t)d->h * d->w;
    return d->layout == INORM_NCHW ? (n * d->c + c) * plane + p : (n * plane + p) * d->c + c;
}

/* Segment geometry of an op on its content tensor. */
static inline uint32_t inorm_plane_len(const inorm_tensor_desc *d) { return d->h * d->w; }

#endif
