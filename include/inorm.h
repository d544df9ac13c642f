/*
 * inorm — instance normalization, AdaIN and their family on any Vulkan GPU,
 * with a CPU path that computes the same results where no GPU is.
 *
 * This header is the whole public API. It compiles as C99, C11 and C++.
 *
 * Conventions
 * - Every function that can fail returns an inorm_status. On failure the
 *   context keeps a message naming the argument and the value at fault;
 *   inorm_context_error() returns it. Nothing in the library exits, aborts or
 *   prints on bad input.
 * - Handles are opaque. Out-parameters come last and are written only on
 *   success (they are set to NULL on failure where they are handles).
 * - There is no global state: two contexts share nothing.
 *
 * Threads
 * - A context and every tensor created from it form one unit: calls on that
 *   unit must not overlap in time (wrap them in your own lock, or use one
 *   context per thread). Different contexts may be used from different threads
 *   at the same time without any locking.
 *
 * Execution
 * - Ops record their work and may return before the device has finished.
 *   inorm_tensor_read(), inorm_tensor_write() and inorm_context_finish() wait
 *   for all work recorded before them, so results are always observed in
 *   program order. Errors that happen on the device (device lost) are reported
 *   by the call that waits.
 *
 * Numerics
 * - Statistics are accumulated in fp32 or better with Chan's parallel
 *   mean/variance merge (never E[x^2] - E[x]^2), so data with a large mean
 *   (1000 + noise) keeps its variance.
 * - The normalized value is computed as a * (x - mean) + b, so a plane whose
 *   elements all equal its mean (for example H*W == 1) gives exactly beta.
 * - NaN and Inf propagate: a plane that holds a NaN or an Inf has a NaN or
 *   Inf mean or variance, and every output element of that plane is then NaN
 *   (as in PyTorch). Other planes are unaffected.
 * - eps must be finite and >= 0. With eps == 0 a constant plane has
 *   variance 0 and its outputs are NaN (0 * inf), as in PyTorch.
 * - Unbiased variance (divide by count - 1) of a plane with one element is
 *   0/0: such calls are refused with INORM_ERROR_INVALID_ARGUMENT.
 */
#ifndef INORM_H
#define INORM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(INORM_BUILDING_SHARED)
#define INORM_API __declspec(dllexport)
#elif defined(__GNUC__) || defined(__clang__)
#define INORM_API __attribute__((visibility("default")))
#else
#define INORM_API
#endif

#define INORM_VERSION_MAJOR 0
#define INORM_VERSION_MINOR 1
#define INORM_VERSION_PATCH 0

typedef enum inorm_status {
    INORM_SUCCESS = 0,
    INORM_ERROR_INVALID_ARGUMENT,     /* a NULL pointer, a bad shape, value or size */
    INORM_ERROR_UNSUPPORTED,          /* valid, but not available on this backend or device */
    INORM_ERROR_NO_DEVICE,            /* no Vulkan loader or no (matching) Vulkan device */
    INORM_ERROR_OUT_OF_HOST_MEMORY,
    INORM_ERROR_OUT_OF_DEVICE_MEMORY,
    INORM_ERROR_DEVICE_LOST,          /* the device was lost; the context can only be destroyed */
    INORM_ERROR_BACKEND               /* any other failure reported by the Vulkan driver */
} inorm_status;

/* The library's version as (major << 16) | (minor << 8) | patch, to compare
 * with the INORM_VERSION_* macros of the header an app was built with. */
INORM_API uint32_t inorm_version(void);

/* A short, static, English description of a status ("invalid argument", ...).
 * Unknown values give "unknown status". Never NULL. */
INORM_API const char *inorm_status_string(inorm_status status);

/* ------------------------------------------------------------------------- */
/* Contexts                                                                   */
/* ------------------------------------------------------------------------- */

typedef struct inorm_context inorm_context;
typedef struct inorm_tensor inorm_tensor;

typedef enum inorm_backend {
    INORM_BACKEND_AUTO = 0,  /* the best Vulkan device, else the CPU path */
    INORM_BACKEND_VULKAN,    /* a Vulkan device or INORM_ERROR_NO_DEVICE */
    INORM_BACKEND_CPU        /* the CPU path; never touches Vulkan */
} inorm_backend;

/* Flags for inorm_context_desc.flags. */
enum {
    /* Reduce through shared memory only, even where the device has subgroup
     * arithmetic. For devices whose subgroup operations are broken, and to
     * test the fallback path. Environment: INORM_DISABLE_SUBGROUPS=1. */
    INORM_CONTEXT_DISABLE_SUBGROUP_OPS = 1u << 0,
    /* Ignore INORM_BACKEND, INORM_DEVICE, INORM_VALIDATION and
     * INORM_DISABLE_SUBGROUPS: for programs that choose the device themselves
     * (for example one context per enumerated device). */
    INORM_CONTEXT_IGNORE_ENVIRONMENT = 1u << 1,
    /* Do not use FLOAT16 kernels even where the device has 16-bit storage
     * (FLOAT16 ops then give INORM_ERROR_UNSUPPORTED). Environment:
     * INORM_DISABLE_FP16=1. */
    INORM_CONTEXT_DISABLE_FLOAT16 = 1u << 2
};

typedef struct inorm_context_desc {
    inorm_backend backend;   /* AUTO: best Vulkan device, else the CPU path */
    int device_index;        /* -1: pick the best (discrete > integrated > virtual > cpu) */
    int validation;          /* nonzero: enable VK_LAYER_KHRONOS_validation if present */
    uint32_t flags;          /* INORM_CONTEXT_* flags */
    /* Vulkan: a file that persists compiled pipelines between runs (cold
     * pipeline creation takes seconds on some mobile drivers). Read at
     * creation if it exists and was written for this device and driver
     * (anything else is ignored), written back by inorm_context_destroy. NULL: none. */
    const char *pipeline_cache_path;
} inorm_context_desc;

/* The defaults a NULL desc stands for. */
#define INORM_CONTEXT_DESC_DEFAULT { INORM_BACKEND_AUTO, -1, 0, 0u, NULL }

/*
 * Creates a context. desc may be NULL (INORM_CONTEXT_DESC_DEFAULT).
 *
 * The environment overrides desc:
 *   INORM_BACKEND=auto|vulkan|cpu
 *   INORM_DEVICE=<index>|<part of the device name, case-insensitive>
 *   INORM_VALIDATION=1            enable the validation layer
 *   INORM_DISABLE_SUBGROUPS=1     same as INORM_CONTEXT_DISABLE_SUBGROUP_OPS
 * and, read once per process whatever the flags, INORM_CPU_ISA=avx2|portable
 * caps the vector instructions the CPU path's loops use (x86-64: AVX-512,
 * AVX2 + F16C, else portable C; see the device name). Every level gives the
 * same bits; only the speed changes.
 *
 * With AUTO, a missing Vulkan loader, no device, or a device that fails to
 * initialise falls back to the CPU path (inorm_context_info's driver_info
 * then says why). With VULKAN the same cases return INORM_ERROR_NO_DEVICE (or
 * the driver's error) and *out is NULL; a context that failed to be created
 * has no error text of its own, so use inorm_context_create_ex for the reason.
 */
INORM_API inorm_status inorm_context_create(const inorm_context_desc *desc, inorm_context **out);

/* Same, and on failure copies the reason into message[0 .. message_size)
 * when message is not NULL ("" on success). */
INORM_API inorm_status inorm_context_create_ex(const inorm_context_desc *desc, inorm_context **out,
                                               char *message, size_t message_size);

/* Waits for outstanding work, frees everything the context owns. Tensors
 * still alive are destroyed with it. NULL is ignored. */
INORM_API void inorm_context_destroy(inorm_context *ctx);

/* The detail of the last failure on this context ("" if none). The pointer is
 * valid until the next call on the context. ctx NULL gives a fixed message. */
INORM_API const char *inorm_context_error(const inorm_context *ctx);

/* Waits until the device has finished all work recorded so far. */
INORM_API inorm_status inorm_context_finish(inorm_context *ctx);

typedef enum inorm_device_type {
    INORM_DEVICE_TYPE_OTHER = 0,
    INORM_DEVICE_TYPE_INTEGRATED_GPU,
    INORM_DEVICE_TYPE_DISCRETE_GPU,
    INORM_DEVICE_TYPE_VIRTUAL_GPU,
    INORM_DEVICE_TYPE_CPU,       /* a software Vulkan device such as lavapipe */
    INORM_DEVICE_TYPE_CPU_PATH   /* inorm's own CPU path, no Vulkan */
} inorm_device_type;

typedef struct inorm_device_info {
    inorm_backend backend;           /* VULKAN or CPU */
    int device_index;                /* index in inorm_enumerate_devices' order; -1 on the CPU path */
    inorm_device_type type;
    char name[256];                  /* CPU path: "inorm CPU path (avx512)", or avx2, or portable:
                                        the vector instructions its loops use */
    char driver_name[256];           /* e.g. "llvmpipe"; "" on the CPU path */
    char driver_info[256];           /* e.g. "Mesa 22.3.6 (LLVM 15.0.6)" */
    uint32_t vendor_id, device_id;
    uint32_t api_version;            /* VK_MAKE_API_VERSION form; 0 on the CPU path */
    uint32_t subgroup_size;          /* 0 on the CPU path */
    int subgroup_arithmetic;         /* device reports subgroup arithmetic in compute */
    int subgroup_ops_used;           /* inorm reduces with subgroup ops on this context
                                        (0 in inorm_enumerate_devices' results) */
    int float16_storage;             /* 16-bit storage buffer access (FLOAT16 tensors) */
    int validation_enabled;          /* the validation layer is active on this context
                                        (0 in inorm_enumerate_devices' results) */
    uint64_t max_storage_buffer_range; /* bytes one tensor may have (CPU path: PTRDIFF_MAX) */
} inorm_device_info;

/* Describes the device a context runs on. */
INORM_API inorm_status inorm_context_info(const inorm_context *ctx, inorm_device_info *out);

/*
 * Lists the Vulkan devices the loader sees, in the order device_index uses.
 * With infos == NULL only *count is written. Otherwise *count is the array's
 * capacity on entry and the number written on return (at most the capacity;
 * call with infos == NULL first to size the array). No Vulkan loader or no
 * device gives *count == 0 and INORM_SUCCESS. The CPU path is not listed.
 */
INORM_API inorm_status inorm_enumerate_devices(inorm_device_info *infos, uint32_t *count);

/*
 * Number of messages the Vulkan validation layer has reported on this context
 * (each is also written to stderr). Always 0 without validation.
 */
INORM_API uint32_t inorm_context_validation_message_count(const inorm_context *ctx);

/* ------------------------------------------------------------------------- */
/* Tensors                                                                    */
/* ------------------------------------------------------------------------- */

typedef enum inorm_dtype { INORM_FLOAT32 = 0, INORM_FLOAT16 } inorm_dtype;
typedef enum inorm_layout { INORM_NCHW = 0, INORM_NHWC } inorm_layout;

typedef struct inorm_tensor_desc {
    uint32_t n, c, h, w;   /* each >= 1 */
    inorm_dtype dtype;
    inorm_layout layout;
} inorm_tensor_desc;

/* A tensor in the context's memory (device memory on Vulkan). Its contents
 * are undefined until written. Refused: a zero dimension, a byte size that
 * overflows size_t, or (Vulkan) more bytes than maxStorageBufferRange. */
INORM_API inorm_status inorm_tensor_create(inorm_context *ctx, const inorm_tensor_desc *desc,
                                           inorm_tensor **out);

/* Copies exactly the tensor's byte size (n*c*h*w*element size) from src, in
 * the tensor's layout. bytes must equal that size. Waits for earlier work. */
INORM_API inorm_status inorm_tensor_write(inorm_tensor *t, const void *src, size_t bytes);

/* Copies the tensor into dst; bytes must equal its byte size. Waits for all
 * work recorded before it. */
INORM_API inorm_status inorm_tensor_read(const inorm_tensor *t, void *dst, size_t bytes);

/* The tensor's shape, type and layout. */
INORM_API inorm_status inorm_tensor_get_desc(const inorm_tensor *t, inorm_tensor_desc *out);

/* Byte size of a tensor with this desc, or 0 if the desc is invalid or overflows. */
INORM_API size_t inorm_tensor_desc_bytes(const inorm_tensor_desc *desc);

/* Frees the tensor (after work that uses it has finished). NULL is ignored. */
INORM_API void inorm_tensor_destroy(inorm_tensor *t);

/* ------------------------------------------------------------------------- */
/* Ops                                                                        */
/* ------------------------------------------------------------------------- */

typedef enum inorm_activation {
    INORM_ACTIVATION_NONE = 0,
    INORM_ACTIVATION_RELU,        /* max(v, 0) */
    INORM_ACTIVATION_LEAKY_RELU,  /* v < 0 ? slope * v : v */
    INORM_ACTIVATION_SILU         /* v / (1 + exp(-v)), also called swish */
} inorm_activation;

typedef struct inorm_norm_params {
    float eps;                    /* >= 0 and finite; added to the variance */
    int unbiased;                 /* nonzero: variance divides by count - 1 (count >= 2 required) */
    inorm_activation activation;  /* applied to every normalized output, after the affine step
                                     (and after the AdaIN blend); NaN passes through */
    float activation_slope;       /* LeakyReLU's slope for v < 0 */
    /* Masked statistics (spatial control): FLOAT32 N x 1 x H x W (or 1 x 1 x H x W for
     * every sample) weights in [0, 1]. Mean and variance become the weighted ones,
     * sum(w x) / sum(w) and sum(w (x - mean)^2) / sum(w) (unbiased: / (sum(w) - 1)),
     * over each plane (group); every element is still normalized. Values of weight 0 do
     * not enter the statistics at all (a NaN there is ignored). A mask whose weights of
     * one sample are all zero is refused (INORM_ERROR_INVALID_ARGUMENT). NULL: no mask. */
    const inorm_tensor *mask;        /* for x / content */
    const inorm_tensor *style_mask;  /* inorm_adain and inorm_adain_mix: for the style(s) */
} inorm_norm_params;
/* What a NULL params stands for: eps 1e-5, biased variance, no activation, no mask. */
#define INORM_NORM_PARAMS_DEFAULT { 1e-5f, 0, INORM_ACTIVATION_NONE, 0.0f, NULL, NULL }

/*
 * Common rules for every op:
 * - All tensors belong to ctx. Data tensors (x, y, style) are FLOAT32 or
 *   FLOAT16 (stored as IEEE half, computed in fp32 or better), NCHW or NHWC;
 *   y and every style have x's dtype and layout. FLOAT16 on a Vulkan device
 *   without 16-bit storage buffer access gives INORM_ERROR_UNSUPPORTED.
 * - Parameter tensors are FLOAT32 whatever the data's dtype: per-channel ones
 *   (gamma, beta) 1 x C x 1 x 1; per-(n, c) ones (scale, bias, mean, std)
 *   N x C x 1 x 1.
 * - y has the shape of x (the content). y may be x (in place); y must not
 *   be any other input.
 */

/* Instance normalization, statistics over each (n, c) plane of H*W values:
 *   y = gamma[c] * (x - mean) / sqrt(var + eps) + beta[c]
 * gamma NULL means 1, beta NULL means 0. */
INORM_API inorm_status inorm_instance_norm(inorm_context *ctx, const inorm_tensor *x,
                                           const inorm_tensor *gamma, const inorm_tensor *beta,
                                           const inorm_norm_params *p, inorm_tensor *y);

/* Group normalization: the C channels form `groups` contiguous groups of
 * C/groups channels; statistics over each (n, group), i.e. C/groups*H*W values:
 *   y = gamma[c] * (x - mean_g) / sqrt(var_g + eps) + beta[c]
 * groups must divide C. groups == C is instance norm; groups == 1 is layer
 * norm over (C, H, W) with a per-channel affine. */
INORM_API inorm_status inorm_group_norm(inorm_context *ctx, const inorm_tensor *x, uint32_t groups,
                                        const inorm_tensor *gamma, const inorm_tensor *beta,
                                        const inorm_norm_params *p, inorm_tensor *y);

/*
 * Adaptive instance normalization (Huang & Belongie 2017):
 *   t = std_s * (x - mean_x) / std_x + mean_s,   std = sqrt(var + eps)
 *   y = alpha * t + (1 - alpha) * x
 * with the statistics of each (n, c) plane of content (x) and style. style
 * has the same C as content and any H and W; its N equals content's or is 1
 * (one style for the whole batch). alpha must be finite; 1 is plain AdaIN.
 */
INORM_API inorm_status inorm_adain(inorm_context *ctx, const inorm_tensor *content,
                                   const inorm_tensor *style, float alpha,
                                   const inorm_norm_params *p, inorm_tensor *y);

/* StyleGAN-style AdaIN with caller-given modulation:
 *   y = scale[n, c] * (x - mean) / sqrt(var + eps) + bias[n, c]
 * scale and bias are N x C x 1 x 1 FLOAT32; bias NULL means 0. */
INORM_API inorm_status inorm_adain_modulate(inorm_context *ctx, const inorm_tensor *x,
                                            const inorm_tensor *scale, const inorm_tensor *bias,
                                            const inorm_norm_params *p, inorm_tensor *y);

/* Per-(n, c) statistics: mean and std = sqrt(var + eps), each an N x C x 1 x 1
 * FLOAT32 tensor. Either output may be NULL, not both. (The activation in p
 * does not apply: nothing is normalized.) */
INORM_API inorm_status inorm_stats(inorm_context *ctx, const inorm_tensor *x,
                                   const inorm_norm_params *p, inorm_tensor *mean,
                                   inorm_tensor *std);

/* Layer normalization over (C, H, W) of each sample with a per-channel affine:
 * inorm_group_norm with groups == 1. */
INORM_API inorm_status inorm_layer_norm(inorm_context *ctx, const inorm_tensor *x,
                                        const inorm_tensor *gamma, const inorm_tensor *beta,
                                        const inorm_norm_params *p, inorm_tensor *y);

/* The most styles inorm_adain_mix and inorm_conditional_instance_norm take. */
#define INORM_MAX_STYLES 64

/*
 * Style interpolation: AdaIN towards a weighted mix of `count` styles
 * (1 <= count <= INORM_MAX_STYLES):
 *   mean_t = sum_k weights[k] * mean(styles[k]),  std_t = sum_k weights[k] * std(styles[k])
 *   t = std_t * (x - mean_x) / std_x + mean_t,   y = alpha * t + (1 - alpha) * x
 * Weights are finite but need not sum to 1 (a sum above 1 exaggerates the
 * style; negative weights extrapolate away from a style, and a negative
 * std_t flips the sign of the normalized content). Each style follows
 * inorm_adain's rules (content's C, dtype, layout; N equal or 1; any H, W);
 * p->style_mask, if set, applies to every style and must match each one's H x W.
 */
INORM_API inorm_status inorm_adain_mix(inorm_context *ctx, const inorm_tensor *content,
                                       const inorm_tensor *const *styles, const float *weights,
                                       uint32_t count, float alpha, const inorm_norm_params *p,
                                       inorm_tensor *y);

/*
 * Conditional instance normalization (Dumoulin et al. 2017) with a bank of
 * S styles (1 <= S <= INORM_MAX_STYLES):
 *   gamma[n, c] = sum_s style_weights[n, s] * gamma_bank[s, c]   (beta likewise)
 *   y = gamma[n, c] * (x - mean) / std + beta[n, c]
 * gamma_bank and beta_bank are S x C x 1 x 1 FLOAT32 (beta_bank NULL: 0),
 * style_weights N x S x 1 x 1 FLOAT32: a one-hot row selects one style, other
 * rows mix them.
 */
INORM_API inorm_status inorm_conditional_instance_norm(inorm_context *ctx, const inorm_tensor *x,
                                                       const inorm_tensor *gamma_bank,
                                                       const inorm_tensor *beta_bank,
                                                       const inorm_tensor *style_weights,
                                                       const inorm_norm_params *p, inorm_tensor *y);

/* Copies src into dst, converting dtype (FLOAT32 <-> FLOAT16, rounding to
 * nearest even) and layout (NCHW <-> NHWC). Both have the same N, C, H, W;
 * dst must not be src. */
INORM_API inorm_status inorm_convert(inorm_context *ctx, const inorm_tensor *src, inorm_tensor *dst);

/* ------------------------------------------------------------------------- */
/* Pixel ops: colour spaces and blending                                      */
/* ------------------------------------------------------------------------- */
/*
 * For statistics (colour) transfer on images: AdaIN on an image's own
 * channels, in a decorrelated colour space, moves the content's per-channel
 * mean and spread to the style's (Reinhard et al. 2001). These ops keep the
 * whole chain on the device: convert, normalize, blend, convert back.
 */

typedef enum inorm_color_space {
    /* sRGB-encoded R'G'B' (IEC 61966-2-1), nominally in [0, 1]. Values outside
     * it are extended symmetrically: f(-v) = -f(v). */
    INORM_COLOR_SRGB = 0,
    /* Linear-light RGB with the sRGB primaries and white (D65). */
    INORM_COLOR_LINEAR_SRGB,
    /* CIE 1931 XYZ, D65 white (X, Y, Z) = (0.95047, 1.0000001, 1.08883), the
     * sRGB matrix's row sums, so that RGB white has a* = b* = 0. */
    INORM_COLOR_XYZ,
    /* CIE 1976 L*a*b* relative to that white: L* in [0, 100] for RGB in [0, 1],
     * a* and b* roughly in [-128, 128]. */
    INORM_COLOR_LAB,
    /* lαβ of Reinhard et al. 2001: linear RGB to LMS through the paper's
     * matrix, log10 (LMS below 1e-4 count as 1e-4, so black maps to a finite
     * value and back to linear RGB within 1e-4), then the decorrelating
     * rotation l = (L+M+S)/√3, α = (L+M-2S)/√6, β = (L-M)/√2. */
    INORM_COLOR_LALPHABETA
} inorm_color_space;

/*
 * Converts the colour of every pixel of src from one colour space to another
 * and writes it to dst:
 * - channels 0, 1, 2 hold the colour (R, G, B; X, Y, Z; L*, a*, b*; l, α, β);
 *   src needs C >= 3, and channels 3 and up (alpha, ...) are copied unchanged;
 * - dst has src's shape, dtype and layout (FLOAT32 or FLOAT16, NCHW or NHWC);
 *   dst may be src (in place);
 * - the conversion goes through linear RGB in fp32 (device) or double (CPU
 *   path). sRGB values in [0, 1] taken to another space and back return
 *   within 1e-4 in FLOAT32 (through lαβ: 1.3e-3 near black, see above). In
 *   FLOAT16 the intermediate is stored with 11 significant bits, and sRGB's
 *   slope of 12.92 near black amplifies that: within 1e-2, at worst for
 *   saturated dark colours through XYZ or L*a*b*.
 * from == to copies src to dst. NaN propagates to the pixel's colour.
 */
INORM_API inorm_status inorm_color_convert(inorm_context *ctx, const inorm_tensor *src, inorm_tensor *dst,
                                           inorm_color_space from, inorm_color_space to);

/*
 * Weighted blend of two tensors, elementwise:
 *   y = weight * a + (1 - weight) * b
 * a, b and y have the same shape, dtype and layout; y may be a or b.
 * weight is FLOAT32 and broadcasts: its N is N or 1, its C is C or 1, its
 * H x W is H x W or 1 x 1, in either layout. Examples: a per-pixel mask
 * N x 1 x H x W (spatial control: one result inside the mask, another
 * outside it), or a per-channel choice 1 x C x 1 x 1 of 0s and 1s (take
 * some channels from a, the rest from b). Weights are used as they are:
 * they need not lie in [0, 1], and NaN propagates.
 */
INORM_API inorm_status inorm_blend(inorm_context *ctx, const inorm_tensor *a, const inorm_tensor *b,
                                   const inorm_tensor *weight, inorm_tensor *y);

/* ------------------------------------------------------------------------- */
/* Profiling                                                                  */
/* ------------------------------------------------------------------------- */

/* Nonzero: time every submission (Vulkan: timestamps around the recorded
 * work, where the queue supports them; CPU path: the ops' wall clock). */
INORM_API inorm_status inorm_context_set_profiling(inorm_context *ctx, int enable);

/* Time the device spent on the work of the last wait (inorm_context_finish,
 * a read or a write that had work pending), in seconds. INORM_ERROR_UNSUPPORTED
 * when profiling is off or the queue has no timestamps. */
INORM_API inorm_status inorm_context_last_device_time(const inorm_context *ctx, double *seconds);

/* ------------------------------------------------------------------------- */
/* Utilities                                                                  */
/* ------------------------------------------------------------------------- */

/* IEEE binary16 conversions as inorm stores FLOAT16 tensors: round to nearest
 * even, overflow to Inf, NaN kept. */
INORM_API uint16_t inorm_float_to_half(float value);
INORM_API float inorm_half_to_float(uint16_t value);

/* ------------------------------------------------------------------------- */
/* Inside your own Vulkan code                                                */
/* ------------------------------------------------------------------------- */
/*
 * Visible when <vulkan/vulkan.h> (or volk.h) is included before inorm.h.
 *
 * inorm calls Vulkan only through function pointers it loads from the
 * vkGetInstanceProcAddr it is given, into tables of the context: it exports
 * no Vulkan symbol and never touches a global loader state of the app.
 *
 * Threads: an imported context follows the rules above, and the queue given
 * to it is used (vkQueueSubmit) only inside inorm calls that wait
 * (inorm_tensor_read/write, inorm_context_finish, and immediate ops when
 * their batch fills up): the app must not use that queue from another thread
 * during those calls (Vulkan's external synchronization of queues).
 */
#if defined(VK_VERSION_1_0)

typedef struct inorm_vulkan_import {
    VkInstance instance;             /* created with VkApplicationInfo.apiVersion >= 1.1: inorm calls
                                        1.1 functions and its shaders are SPIR-V 1.3 */
    VkPhysicalDevice physical_device;
    VkDevice device;                 /* created with Vulkan 1.1 or later */
    uint32_t queue_family_index;     /* a family with VK_QUEUE_COMPUTE_BIT */
    VkQueue queue;                   /* for immediate ops and transfers; VK_NULL_HANDLE:
                                        record-only (inorm_cmd_* and tensors in host-visible
                                        memory only) */
    PFN_vkGetInstanceProcAddr get_instance_proc_addr;
    int storage_buffer_16bit_access; /* the device was created with this feature: FLOAT16 ops */
    int subgroup_size_control;       /* the device was created with VK_EXT_subgroup_size_control
                                        (or Vulkan 1.3) and its subgroupSizeControl and
                                        computeFullSubgroups features: inorm's pipelines then
                                        require full subgroups, and its one-subgroup workgroups
                                        the device's default subgroup size */
    uint32_t flags;                  /* INORM_CONTEXT_* */
} inorm_vulkan_import;

/* A context on the app's device. inorm creates its own command pool, fence,
 * descriptor pools, pipelines and buffers on it and destroys them with the
 * context; it never destroys the instance, device or queue. On failure the
 * reason is copied into message (may be NULL). */
INORM_API inorm_status inorm_context_import(const inorm_vulkan_import *desc, inorm_context **out,
                                            char *message, size_t message_size);

/*
 * An inorm tensor over the app's buffer: no copy, no ownership (destroying
 * the tensor leaves the buffer). The buffer needs VK_BUFFER_USAGE_STORAGE_BUFFER_BIT
 * (and TRANSFER_SRC/DST for inorm_tensor_read/write, which then copy through
 * a staging buffer). offset must be a multiple of the device's
 * minStorageBufferOffsetAlignment; offset + the tensor's bytes must fit in
 * the buffer (checked against its memory requirements) and the bytes within
 * maxStorageBufferRange. The buffer must outlive the tensor. Kernels read it
 * as a storage buffer (inorm's own tensors they may read through texel views
 * of their buffers, which CPU devices load faster; see INORM_TEXEL_LOADS in
 * the README).
 */
INORM_API inorm_status inorm_tensor_wrap_vulkan(inorm_context *ctx, const inorm_tensor_desc *desc,
                                                VkBuffer buffer, VkDeviceSize offset, inorm_tensor **out);

/*
 * Recording into the app's command buffer: each inorm_cmd_* takes the same
 * arguments as the immediate op plus a command buffer in the recording state,
 * allocated from a pool of the context's queue family, outside a render pass.
 *
 * Barriers. Before each of its dispatches (and copies) inorm records
 *   vkCmdPipelineBarrier(src = COMPUTE_SHADER | TRANSFER, dst = COMPUTE_SHADER | TRANSFER,
 *                        SHADER_WRITE | TRANSFER_WRITE -> SHADER_READ | SHADER_WRITE |
 *                        TRANSFER_READ | TRANSFER_WRITE)
 * so writes made earlier in compute shaders or transfers (the app's or
 * inorm's) are visible to it. The app records its own barrier
 *   - before an inorm op, for inputs written by other stages (fragment
 *     shaders, color attachments, the host);
 *   - after an inorm op, from COMPUTE_SHADER + SHADER_WRITE (TRANSFER +
 *     TRANSFER_WRITE for inorm_cmd_convert) to the stage and access that reads
 *     y (or mean/std).
 *
 * Memory. Ops use the context's scratch buffer (partial statistics, a few
 * bytes per workgroup: ~16 bytes per 16 K elements) and descriptor sets from
 * the context's pools; both stay owned by the context and valid until
 * inorm_cmd_release. Commands recorded from one context must execute in the
 * order recorded (one queue, or the app's own semaphores), never two at once.
 * Mask values cannot be read at record time, so a mask that is all zero for a
 * sample gives NaN for that sample's statistics instead of an error.
 */
INORM_API inorm_status inorm_cmd_instance_norm(inorm_context *ctx, VkCommandBuffer cmd, const inorm_tensor *x,
                                               const inorm_tensor *gamma, const inorm_tensor *beta,
                                               const inorm_norm_params *p, inorm_tensor *y);
INORM_API inorm_status inorm_cmd_group_norm(inorm_context *ctx, VkCommandBuffer cmd, const inorm_tensor *x,
                                            uint32_t groups, const inorm_tensor *gamma, const inorm_tensor *beta,
                                            const inorm_norm_params *p, inorm_tensor *y);
INORM_API inorm_status inorm_cmd_layer_norm(inorm_context *ctx, VkCommandBuffer cmd, const inorm_tensor *x,
                                            const inorm_tensor *gamma, const inorm_tensor *beta,
                                            const inorm_norm_params *p, inorm_tensor *y);
INORM_API inorm_status inorm_cmd_adain(inorm_context *ctx, VkCommandBuffer cmd, const inorm_tensor *content,
                                       const inorm_tensor *style, float alpha, const inorm_norm_params *p,
                                       inorm_tensor *y);
INORM_API inorm_status inorm_cmd_adain_mix(inorm_context *ctx, VkCommandBuffer cmd, const inorm_tensor *content,
                                           const inorm_tensor *const *styles, const float *weights, uint32_t count,
                                           float alpha, const inorm_norm_params *p, inorm_tensor *y);
INORM_API inorm_status inorm_cmd_adain_modulate(inorm_context *ctx, VkCommandBuffer cmd, const inorm_tensor *x,
                                                const inorm_tensor *scale, const inorm_tensor *bias,
                                                const inorm_norm_params *p, inorm_tensor *y);
INORM_API inorm_status inorm_cmd_conditional_instance_norm(inorm_context *ctx, VkCommandBuffer cmd,
                                                           const inorm_tensor *x, const inorm_tensor *gamma_bank,
                                                           const inorm_tensor *beta_bank,
                                                           const inorm_tensor *style_weights,
                                                           const inorm_norm_params *p, inorm_tensor *y);
INORM_API inorm_status inorm_cmd_stats(inorm_context *ctx, VkCommandBuffer cmd, const inorm_tensor *x,
                                       const inorm_norm_params *p, inorm_tensor *mean, inorm_tensor *std);
INORM_API inorm_status inorm_cmd_convert(inorm_context *ctx, VkCommandBuffer cmd, const inorm_tensor *src,
                                         inorm_tensor *dst);

/* Every command buffer recorded with inorm_cmd_* so far has finished
 * executing (or was freed): the descriptor sets and retired scratch buffers
 * they used are released. Call it after waiting on their fence. */
INORM_API inorm_status inorm_cmd_release(inorm_context *ctx);

#endif /* VK_VERSION_1_0 */

/* The pipeline cache as a blob (vkGetPipelineCacheData). With data NULL only
 * *size is written; else *size is the capacity on entry and the bytes written
 * on return. The CPU path has none: *size = 0. */
INORM_API inorm_status inorm_context_get_pipeline_cache(inorm_context *ctx, void *data, size_t *size);

/* Merges a blob from inorm_context_get_pipeline_cache into the context's
 * cache. A blob for another device, driver or cache format, or a damaged one,
 * is ignored with INORM_ERROR_INVALID_ARGUMENT and a message; the cache is
 * then unchanged. */
INORM_API inorm_status inorm_context_set_pipeline_cache(inorm_context *ctx, const void *data, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* INORM_H */
