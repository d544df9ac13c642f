/* The Vulkan kernel plan's promises, checked on the plan itself (not by
 * timing): every op on the benchmark's shapes runs in at most 2 dispatches and
 * moves at most about 12 bytes per fp32 element (x read twice, y written
 * once; AdaIN also reads the style once), in both kernel geometries (GPU
 * workgroups of many subgroups, and CPU devices' workgroups of one subgroup).
 * On CPU devices NHWC planes of C % 4 != 0 are read 4 pixels to a row of
 * vec4s, and NCHW AdaIN reads its content and style in a statistics
 * dispatch each. NHWC layer norm merges each statistics workgroup's channels into
 * one partial, and group norm a quad's or a group's channels, so both keep
 * to the byte budget. NCHW planes of up to 64 x 64 are read once (fused).
 * On CPU devices small NHWC tensors with many channel tiles run instance
 * norm and group norm of narrow groups in one dispatch, the apply lanes
 * reducing their own channels.
 * The exceptions are the documented ones: NHWC planes under 32 x 32 that
 * are not fused pay their per-channel partials in bytes (group norm on
 * GPUs excepted: its tiles follow the groups, Stable Diffusion's included),
 * and on CPU devices so does NHWC group norm whose groups are not whole
 * channel quads.
 *
 * It reads ctx->last_plan, so it links the static core (inorm_internal_dep).
 * Data is left unwritten: only the plan is under test (other tests check
 * the results of every plan against the CPU path). */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "inorm.h"
#include "check_run.h"
#include "internal.h"
#include "vulkan/vk_internal.h"

typedef struct shape {
    uint32_t n, c, h, w;
} shape;

/* The benchmark's built-in set (tools/inorm-bench.c), two of many channels
 * (NHWC layer norm segments of 128 tiles on GPUs), and Stable Diffusion's
 * UNet blocks at batch 2 (group norm in 32 groups of 10, 20 and 40
 * channels). */
static const shape k_shapes[] = {
    {1, 64, 256, 256}, {1, 256, 64, 64}, {1, 512, 32, 32}, {1, 3, 1024, 1024},
    {1, 32, 8, 8},     {8, 256, 64, 64}, {1, 4, 2048, 2048}, {16, 512, 4, 4},
    {1, 4096, 64, 64}, {2, 4096, 16, 16}, {2, 320, 64, 64}, {2, 640, 32, 32},
    {2, 1280, 16, 16}, {2, 1280, 8, 8},
};

enum { OP_IN, OP_ADAIN, OP_MODULATE, OP_STATS, OP_GROUP, OP_LAYER, OP_COUNT };
static const char *const k_op_names[OP_COUNT] = {"instance_norm", "adain", "adain_modulate",
                                                 "stats", "group_norm", "layer_norm"};

static inorm_context *make_context(void)
{
    inorm_context_desc desc = {0};
    desc.backend = INORM_BACKEND_VULKAN;
    desc.device_index = -1;
    desc.validation = 1;
    inorm_context *ctx = NULL;
    char why[256] = "";
    inorm_status status = inorm_context_create_ex(&desc, &ctx, why, sizeof why);
    if (status == INORM_ERROR_NO_DEVICE && getenv("INORM_TEST_ALLOW_NO_VULKAN"))
        return NULL;
    ck_assert_msg(status == INORM_SUCCESS, "no Vulkan context: %s: %s", inorm_status_string(status), why);
    return ctx;
}

static inorm_tensor *tensor(inorm_context *ctx, uint32_t n, uint32_t c, uint32_t h, uint32_t w, inorm_dtype dt,
                            inorm_layout lo)
{
    inorm_tensor_desc d = {n, c, h, w, dt, lo};
    inorm_tensor *t = NULL;
    inorm_status status = inorm_tensor_create(ctx, &d, &t);
    ck_assert_msg(status == INORM_SUCCESS, "tensor %ux%ux%ux%u: %s", n, c, h, w, inorm_context_error(ctx));
    return t;
}

static inorm_status run(inorm_context *ctx, int op, inorm_tensor *x, inorm_tensor *style, inorm_tensor *gamma,
                        inorm_tensor *beta, inorm_tensor *scale, inorm_tensor *mean, inorm_tensor *std,
                        inorm_tensor *y, uint32_t c)
{
    switch (op) {
    case OP_IN: return inorm_instance_norm(ctx, x, gamma, beta, NULL, y);
    case OP_ADAIN: return inorm_adain(ctx, x, style, 1.0f, NULL, y);
    case OP_MODULATE: return inorm_adain_modulate(ctx, x, scale, NULL, NULL, y);
    case OP_STATS: return inorm_stats(ctx, x, NULL, mean, std);
    case OP_GROUP: return inorm_group_norm(ctx, x, c % 32 == 0 ? 32 : 1, gamma, beta, NULL, y);
    case OP_LAYER: return inorm_layer_norm(ctx, x, gamma, beta, NULL, y);
    }
    return INORM_ERROR_INVALID_ARGUMENT;
}

/* Checks every op x dtype x layout on every shape in the geometry that
 * INORM_SUBGROUP_WORKGROUPS selects. */
static void check_plans(const char *geometry)
{
    setenv("INORM_SUBGROUP_WORKGROUPS", geometry, 1);
    inorm_context *ctx = make_context();
    if (!ctx)
        return;
    int checked = 0, whole_segment_plans = 0, nhwc_self_plans = 0;
    for (size_t si = 0; si < sizeof k_shapes / sizeof k_shapes[0]; ++si) {
        const shape s = k_shapes[si];
        const double elements = (double)s.n * s.c * s.h * s.w;
        for (int dt = 0; dt < 2; ++dt) {
            const inorm_dtype dtype = dt ? INORM_FLOAT16 : INORM_FLOAT32;
            const double element_bytes = dt ? 2.0 : 4.0;
            inorm_device_info info;
            ck_assert(inorm_context_info(ctx, &info) == INORM_SUCCESS);
            if (dt && !info.float16_storage)
                continue;
            for (int lo = 0; lo < 2; ++lo) {
                const inorm_layout layout = lo ? INORM_NHWC : INORM_NCHW;
                inorm_tensor *x = tensor(ctx, s.n, s.c, s.h, s.w, dtype, layout);
                inorm_tensor *y = tensor(ctx, s.n, s.c, s.h, s.w, dtype, layout);
                inorm_tensor *style = tensor(ctx, s.n, s.c, s.h, s.w, dtype, layout);
                inorm_tensor *gamma = tensor(ctx, 1, s.c, 1, 1, INORM_FLOAT32, INORM_NCHW);
                inorm_tensor *beta = tensor(ctx, 1, s.c, 1, 1, INORM_FLOAT32, INORM_NCHW);
                inorm_tensor *scale = tensor(ctx, s.n, s.c, 1, 1, INORM_FLOAT32, INORM_NCHW);
                inorm_tensor *mean = tensor(ctx, s.n, s.c, 1, 1, INORM_FLOAT32, INORM_NCHW);
                inorm_tensor *std = tensor(ctx, s.n, s.c, 1, 1, INORM_FLOAT32, INORM_NCHW);
                for (int op = 0; op < OP_COUNT; ++op) {
                    memset(&ctx->last_plan, 0, sizeof ctx->last_plan);
                    inorm_status status = run(ctx, op, x, style, gamma, beta, scale, mean, std, y, s.c);
                    ck_assert_msg(status == INORM_SUCCESS, "%s: %s", k_op_names[op], inorm_context_error(ctx));
                    const inorm_plan_info *plan = &ctx->last_plan;
                    uint32_t channels_per_segment = op == OP_LAYER ? s.c : op == OP_GROUP ? (s.c % 32 ? s.c : s.c / 32) : 1;
                    /* Two at most, layer norm's NHWC segments of every
                     * channel included (a partial per tile, no finalize).
                     * CPU devices read NCHW AdaIN's content and style in a
                     * statistics dispatch each (faster on lavapipe than one
                     * kernel holding both): three there, where the planes
                     * need a statistics pass. */
                    const bool cpu_geometry = geometry[0] == '1';
                    const uint32_t max_dispatches = cpu_geometry && op == OP_ADAIN && !lo ? 3 : 2;
                    /* Bytes per element: x twice and y (and the style once),
                     * plus the partials: under half a byte per element by plan
                     * on planes of 32 x 32 and more; tiny NHWC planes and
                     * NHWC segments of many channels merge theirs per lane. */
                    double budget = op == OP_STATS ? 1.0 : op == OP_ADAIN ? 4.0 : 3.0;
                    double slack = 0.5;  /* partials are fp32 vec4s whatever the dtype */
                    /* NHWC planes of <= 16 pixels (CPU devices: 64) run
                     * fused: one read, one dispatch (AdaIN: the style's
                     * statistics first) */
                    const uint32_t fused_pixels = cpu_geometry ? 64 : 16;
                    bool tiny_fused = lo && s.h * s.w <= fused_pixels && channels_per_segment * s.h * s.w <= 1024;
                    bool exempt = lo && !tiny_fused && s.h * s.w < 32 * 32;
                    /* Group norm keeps to the budget on GPUs whatever the
                     * plane: a tile holds whole groups or a group whole
                     * tiles, so the partials are per group or per tile. On
                     * CPU devices a lane's channel quad straddles groups
                     * whose width is not a multiple of 4 (10 of 320), whose
                     * partials stay per channel: exempt there. */
                    if (op == OP_GROUP && lo)
                        exempt = cpu_geometry ? exempt || channels_per_segment % 4 != 0 : false;
                    /* NHWC layer norm (segments of whole tiles) keeps one
                     * partial per statistics workgroup, or, where a sample
                     * fits one workgroup's chunk, runs as NCHW with the
                     * channels innermost (one dispatch): say so in the plan.
                     * The benchmark's 16x512x4x4 does in both geometries. */
                    const bool inner = strstr(plan->variant, "channels innermost") != NULL;
                    if (lo && op == OP_LAYER && !tiny_fused && s.c % 4 == 0)
                        ck_assert_msg(strstr(plan->variant, "a partial per tile") != NULL ||
                                          (inner && plan->dispatches == 1),
                                      "%s: layer norm neither merged per tile nor run with channels innermost "
                                      "(plan \"%s\")", k_op_names[op], plan->variant);
                    if (lo && op == OP_LAYER && s.n == 16 && s.c == 512 && s.h * s.w == 16)
                        ck_assert_msg(inner, "%s 16x512x4x4 nhwc: not run with channels innermost (plan \"%s\")",
                                      k_op_names[op], plan->variant);
                    ck_assert_msg(!inner || (lo && op == OP_LAYER), "%s: channels innermost on %s",
                                  k_op_names[op], lo ? "nhwc" : "nchw");
                    double per_element = plan->bytes_moved / elements;
                    char what[160];
                    snprintf(what, sizeof what, "%s %ux%ux%ux%u %s %s (geometry %s, plan \"%s\")", k_op_names[op], s.n,
                             s.c, s.h, s.w, dt ? "f16" : "f32", lo ? "nhwc" : "nchw", geometry, plan->variant);
                    ck_assert_msg(plan->dispatches >= 1 && plan->dispatches <= max_dispatches,
                                  "%s: %u dispatches, at most %u allowed", what, plan->dispatches, max_dispatches);
                    /* CPU devices take NCHW segments past one chunk whole,
                     * a workgroup each that reduces and then normalizes
                     * (one dispatch; AdaIN's style statistics first), on
                     * tensors of at most 8 MiB with 8 segments or more per
                     * thread; not the statistics op or masks (whole_segments
                     * in src/vulkan/vk_backend.c) */
                    const uint64_t segments = (uint64_t)s.n * s.c / channels_per_segment;
                    const bool whole = cpu_geometry && !lo && op != OP_STATS && !strstr(plan->variant, "fused") &&
                                       elements * element_bytes <= 8.0 * 1024 * 1024 &&
                                       segments >= 8u * inorm_cpu_threads_for(SIZE_MAX, 0);
                    if (whole) {
                        ck_assert_msg(plan->dispatches == (op == OP_ADAIN ? 2u : 1u) &&
                                          strstr(plan->variant, "reduce then normalize per workgroup") != NULL,
                                      "%s: segments not taken whole, one workgroup each", what);
                        whole_segment_plans++;
                    }
                    /* CPU devices: NHWC instance norm, AdaIN, the
                     * modulation and group norm whose groups are whole
                     * quads of fewer lanes than a tile has, dividing it
                     * (C % 4 == 0), tiles of more than a quarter of the
                     * lanes (narrower ones share pixels among their rows),
                     * on tensors of at most 4 MiB
                     * whose tiles of one channel quad per lane (of a
                     * subgroup's lanes) number 4 per thread or more and hold
                     * at most 512 KiB: the apply lanes reduce their quads
                     * over the whole plane first (nhwc_self_stats in
                     * src/vulkan/vk_backend.c), one dispatch (AdaIN: the
                     * style's statistics first) */
                    const uint32_t quads = s.c / 4, block = quads < info.subgroup_size ? quads : info.subgroup_size;
                    const uint32_t group_quads = channels_per_segment / 4;
                    const bool lane_groups = channels_per_segment == 1 ||
                                             (channels_per_segment % 4 == 0 && group_quads < block &&
                                              block % group_quads == 0);
                    const bool nhwc_self = cpu_geometry && lo && !tiny_fused && s.c % 4 == 0 && lane_groups &&
                                           block * 4 > info.subgroup_size &&
                                           (op == OP_IN || op == OP_ADAIN || op == OP_MODULATE || op == OP_GROUP) &&
                                           elements * element_bytes <= 4.0 * 1024 * 1024 &&
                                           (double)s.h * s.w * block * 4 * element_bytes <= 512.0 * 1024 &&
                                           (uint64_t)s.n * ((quads + block - 1) / block) >=
                                               4u * inorm_cpu_threads_for(SIZE_MAX, 0);
                    if (nhwc_self) {
                        ck_assert_msg(plan->dispatches == (op == OP_ADAIN ? 2u : 1u) &&
                                          strstr(plan->variant, "nhwc tiles, reduce then normalize") != NULL,
                                      "%s: NHWC tiles not reduced by the apply", what);
                        nhwc_self_plans++;
                    } else if (lo) {
                        ck_assert_msg(strstr(plan->variant, "nhwc tiles, reduce then normalize") == NULL,
                                      "%s: NHWC tiles reduced by the apply outside nhwc_self_stats", what);
                    }
                    if (cpu_geometry && op == OP_ADAIN && !lo && s.h * s.w >= 256 * 256 && !whole)
                        ck_assert_msg(plan->dispatches == 3, "%s: NCHW AdaIN's style statistics not a dispatch of "
                                      "their own on a CPU device", what);
                    if (tiny_fused)
                        ck_assert_msg(plan->dispatches == 1 && strstr(plan->variant, "fused"),
                                      "%s: tiny NHWC planes not fused in one dispatch", what);
                    /* NCHW planes of up to 64 x 64 are read once in either
                     * geometry (CPU devices: one subgroup of 8 lanes holding
                     * up to 128 vec4 each) */
                    if (!lo && channels_per_segment == 1 && s.h * s.w <= 64 * 64)
                        ck_assert_msg(strstr(plan->variant, "fused") != NULL && plan->dispatches == 1,
                                      "%s: NCHW plane of <= 64 x 64 not fused in one dispatch", what);
                    /* CPU devices read RGB-like NHWC rows as vec4s (FOLD) */
                    if (lo && cpu_geometry && s.c % 4 != 0 && (uint64_t)s.h * s.w % 4 == 0)
                        ck_assert_msg(strstr(plan->variant, "4 px as one row") != NULL,
                                      "%s: C %% 4 != 0 not read as rows of 4 pixels", what);
                    /* CPU devices read 4-vectors of x (and of AdaIN's
                     * style) through texel views (TEXEL_LOADS in
                     * shaders/common.glsl): lavapipe loads them whole */
                    const bool vectors = strstr(plan->variant, "vec4") || strstr(plan->variant, "channel quad");
                    if (cpu_geometry && vectors)
                        ck_assert_msg(strstr(plan->variant, op == OP_ADAIN ? ", texels: x, style" : ", texels: x") != NULL,
                                      "%s: 4-vectors not read as texels on a CPU device", what);
                    /* fp16 NCHW kernels load 8 halves at a time (HALF_PAIRS
                     * in shaders/common.glsl) where the content's ranges are
                     * whole pairs: every plan that reduces whole segments of
                     * such planes (fused teams holding an even number of
                     * 4-vectors each); NHWC tiles where a lane holds an even
                     * number of channel quads (HALF_PAIR_UNITS), unless the
                     * apply reduces groups across lanes that are neither one
                     * quad nor whole pairs of them; never fp32 */
                    const bool pairs = strstr(plan->variant, ", 8 halves a load") != NULL;
                    unsigned team = 0, regs = 0;
                    const bool fused_team = sscanf(plan->variant, "fused: team %u x %u", &team, &regs) == 2;
                    const bool whole_pairs = (uint64_t)s.h * s.w % 8 == 0 &&
                                             (strstr(plan->variant, "reduce then normalize per workgroup") != NULL ||
                                              (fused_team && regs % 2 == 0));
                    ck_assert_msg(!pairs || (dt && vectors), "%s: 8-half loads outside fp16 vectors", what);
                    if (dt && vectors && !lo && whole_pairs && op != OP_LAYER)
                        ck_assert_msg(pairs, "%s: fp16 planes of whole 8-half pairs not loaded 8 halves at a time", what);
                    unsigned quads_per_lane = 0;
                    const char *quads_note = strstr(plan->variant, " channel quads per lane");
                    if (quads_note) {
                        const char *digits = quads_note;
                        while (digits > plan->variant && digits[-1] >= '0' && digits[-1] <= '9')
                            digits--;
                        quads_per_lane = (unsigned)strtoul(digits, NULL, 10);
                    }
                    const bool self_tiles = strstr(plan->variant, "nhwc tiles, reduce then normalize") != NULL;
                    const bool folded = strstr(plan->variant, "px as one row") != NULL;
                    if (lo && strstr(plan->variant, "nhwc tiles"))
                        ck_assert_msg(pairs == (dt && !folded && quads_per_lane % 2 == 0 && quads_per_lane > 0 &&
                                                (!self_tiles || channels_per_segment == 1 || channels_per_segment == 4 ||
                                                 channels_per_segment % 8 == 0)),
                                      "%s: NHWC 8-half loads %s", what, pairs ? "used" : "not used");
                    /* CPU devices with shaderInt64 store 4-vectors as 64-bit
                     * words (VEC4_STORER in shaders/common.glsl), in every op
                     * that writes y from vectors; GPUs (and the stats op)
                     * never */
                    const bool wide = strstr(plan->variant, ", 64-bit stores") != NULL;
                    ck_assert_msg(wide == (ctx->vk->wide_stores && vectors && op != OP_STATS),
                                  "%s: 64-bit stores %s (device wide stores: %d)", what, wide ? "used" : "not used",
                                  ctx->vk->wide_stores);
                    if (!exempt)
                        ck_assert_msg(per_element <= budget * element_bytes + slack,
                                      "%s: %.2f bytes per element, at most %.2f allowed", what, per_element,
                                      budget * element_bytes + slack);
                    checked++;
                }
                inorm_status finished = inorm_context_finish(ctx);
                ck_assert_msg(finished == INORM_SUCCESS, "finish: %s", inorm_context_error(ctx));
                inorm_tensor *all[] = {x, y, style, gamma, beta, scale, mean, std};
                for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
                    inorm_tensor_destroy(all[i]);
            }
        }
    }
    const char *require = getenv("INORM_REQUIRE_VALIDATION");
    inorm_device_info info;
    ck_assert(inorm_context_info(ctx, &info) == INORM_SUCCESS);
    if (require && require[0] == '1')
        ck_assert_msg(info.validation_enabled, "the validation layer is not active");
    ck_assert_msg(inorm_context_validation_message_count(ctx) == 0, "%u validation messages",
                  (unsigned)inorm_context_validation_message_count(ctx));
    /* Vulkan 1.3 devices must support subgroup size control: inorm uses it
     * (full subgroups; one-subgroup workgroups of the planned size) */
    if (info.api_version >= VK_MAKE_API_VERSION(0, 1, 3, 0))
        ck_assert_msg(ctx->vk->size_control, "a Vulkan 1.3 device without subgroup size control in use");
    /* a CPU device inorm created with shaderInt64 (lavapipe has it), and
     * no INORM_WIDE_STORES=0: nothing else (the bindings' alignment) kept
     * the kernels from storing 64-bit words */
    const char *wide_override = getenv("INORM_WIDE_STORES");
    if (info.type == INORM_DEVICE_TYPE_CPU && ctx->vk->shader_int64 && ctx->vk->use_subgroup_ops &&
        !(wide_override && wide_override[0] == '0'))
        ck_assert_msg(ctx->vk->wide_stores, "a CPU device with shaderInt64 without wide stores");
    printf("plan (geometry %s): %d op plans within their dispatch and byte budgets, %d with NCHW segments taken "
           "whole, %d with NHWC tiles reduced by the apply%s\n", geometry, checked, whole_segment_plans,
           nhwc_self_plans, ctx->vk->size_control ? "; subgroup size control on" : "");
    inorm_context_destroy(ctx);
}

/* AdaIN on planes that run fused: one dispatch, the style's statistics
 * taken by each team first, where the style plane has at most the content
 * plane's elements (and, when the content is read as vec4s, whole vec4s);
 * otherwise, and with a style mask, the style's statistics are a dispatch
 * of their own. The results of both routes are checked against the oracle
 * by test_family (adain fused styles, nchw fused register planes, nhwc tiny
 * planes) and test_ops (adain), in every geometry. */
static void check_adain_routes(const char *geometry)
{
    setenv("INORM_SUBGROUP_WORKGROUPS", geometry, 1);
    inorm_context *ctx = make_context();
    if (!ctx)
        return;
    /* route per layout (NCHW, NHWC): FUSED_STYLE one dispatch; STYLE_APART
     * the style's statistics, then a fused dispatch; UNFUSED neither (NHWC
     * planes over 16 pixels, on CPU devices 64, are not fused) */
    enum { FUSED_STYLE, STYLE_APART, UNFUSED };
    static const struct {
        shape content, style;
        int style_masked;
        int route[2];
    } k_routes[] = {
        {{2, 8, 4, 4}, {2, 8, 4, 4}, 0, {FUSED_STYLE, FUSED_STYLE}},  /* the same shape */
        {{2, 8, 4, 4}, {1, 8, 3, 3}, 0, {STYLE_APART, FUSED_STYLE}},  /* one style for every sample: 9 elements,
                                                                         not whole vec4s (NHWC reads channel quads) */
        {{2, 8, 4, 4}, {1, 8, 2, 2}, 0, {FUSED_STYLE, FUSED_STYLE}},
        {{2, 8, 4, 4}, {2, 8, 8, 8}, 0, {STYLE_APART, STYLE_APART}},  /* larger */
        {{2, 8, 4, 4}, {1, 8, 5, 4}, 0, {STYLE_APART, STYLE_APART}},
        {{2, 8, 4, 4}, {2, 8, 4, 4}, 1, {STYLE_APART, STYLE_APART}},  /* a style mask */
        {{1, 16, 32, 32}, {1, 16, 20, 20}, 0, {FUSED_STYLE, UNFUSED}},
        {{1, 16, 32, 32}, {1, 16, 48, 48}, 0, {STYLE_APART, UNFUSED}},
        {{3, 5, 3, 5}, {1, 5, 2, 7}, 0, {FUSED_STYLE, FUSED_STYLE}},  /* scalar units */
    };
    for (size_t i = 0; i < sizeof k_routes / sizeof k_routes[0]; ++i) {
        for (int lo = 0; lo < 2; ++lo) {
            const inorm_layout layout = lo ? INORM_NHWC : INORM_NCHW;
            const shape c = k_routes[i].content, st = k_routes[i].style;
            inorm_tensor *x = tensor(ctx, c.n, c.c, c.h, c.w, INORM_FLOAT32, layout);
            inorm_tensor *y = tensor(ctx, c.n, c.c, c.h, c.w, INORM_FLOAT32, layout);
            inorm_tensor *style = tensor(ctx, st.n, st.c, st.h, st.w, INORM_FLOAT32, layout);
            inorm_tensor *mask = k_routes[i].style_masked ? tensor(ctx, 1, 1, st.h, st.w, INORM_FLOAT32, INORM_NCHW)
                                                          : NULL;
            if (mask) {
                float ones[64];
                for (size_t k = 0; k < 64; ++k)
                    ones[k] = 1.0f;
                ck_assert(st.h * st.w <= 64 && inorm_tensor_write(mask, ones, st.h * st.w * sizeof(float)) == INORM_SUCCESS);
            }
            inorm_norm_params p = {.eps = 1e-5f, .style_mask = mask};
            memset(&ctx->last_plan, 0, sizeof ctx->last_plan);
            ck_assert_msg(inorm_adain(ctx, x, style, 1.0f, &p, y) == INORM_SUCCESS, "adain: %s",
                          inorm_context_error(ctx));
            const inorm_plan_info *plan = &ctx->last_plan;
            char what[200];
            snprintf(what, sizeof what, "adain %ux%ux%ux%u, style %ux%ux%ux%u%s %s (geometry %s, plan \"%s\")",
                     c.n, c.c, c.h, c.w, st.n, st.c, st.h, st.w, mask ? " masked" : "", lo ? "nhwc" : "nchw",
                     geometry, plan->variant);
            switch (k_routes[i].route[lo]) {
            case FUSED_STYLE:
                ck_assert_msg(plan->dispatches == 1 && strstr(plan->variant, "style statistics first") != NULL,
                              "%s: not one fused dispatch", what);
                break;
            case STYLE_APART:
                /* a style too large to fuse on GPUs (NHWC over 16 pixels) takes two */
                ck_assert_msg(plan->dispatches >= 2 && strstr(plan->variant, "style statistics, then fused") != NULL,
                              "%s: not the style's statistics, then a fused dispatch", what);
                break;
            default:
                ck_assert_msg(strstr(plan->variant, "fused") == NULL, "%s: fused", what);
            }
            ck_assert_msg(inorm_context_finish(ctx) == INORM_SUCCESS, "finish: %s", inorm_context_error(ctx));
            inorm_tensor *all[] = {x, y, style, mask};
            for (size_t k = 0; k < sizeof all / sizeof all[0]; ++k)
                inorm_tensor_destroy(all[k]);
        }
    }
    ck_assert_msg(inorm_context_validation_message_count(ctx) == 0, "%u validation messages",
                  (unsigned)inorm_context_validation_message_count(ctx));
    inorm_context_destroy(ctx);
}

START_TEST(adain_routes_one_subgroup_workgroups) { check_adain_routes("1"); }
END_TEST

START_TEST(adain_routes_gpu_workgroups) { check_adain_routes("0"); }
END_TEST

START_TEST(plans_one_subgroup_workgroups) { check_plans("1"); }
END_TEST

START_TEST(plans_gpu_workgroups) { check_plans("0"); }
END_TEST

int main(void)
{
    Suite *s = suite_create("plan");
    TCase *tc = tcase_create("plan");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, plans_one_subgroup_workgroups);
    tcase_add_test(tc, plans_gpu_workgroups);
    tcase_add_test(tc, adain_routes_one_subgroup_workgroups);
    tcase_add_test(tc, adain_routes_gpu_workgroups);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
