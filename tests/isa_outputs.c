/*
 * The CPU path's outputs on a fixed set of cases, one line per case with a
 * hash of the output's bytes, after a first line naming the vector level the
 * CPU path's loops run at (inorm_cpu_isa_level: INORM_CPU_ISA caps it).
 * tests/isa_test.sh runs this at every level the machine has and requires
 * the same lines: every level's loops claim the same operations in the same
 * order per lane, so the same bits, not merely results within tolerance.
 *
 * The cases reach each loop that has per-level forms: the statistics' lanes
 * (NCHW planes above the small-plane limit, NHWC with C = 3 and C = 256,
 * planes split across threads), the plain rule's lanes and plane batches,
 * the small planes' two passes, the float epilogues (blend, ReLU, leaky
 * ReLU, SiLU), AdaIN styles; FLOAT32 and FLOAT16; data about 0 and about
 * 1000.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inorm.h"
#include "internal.h"

static int failures;

static uint64_t fnv1a(const void *data, size_t bytes, uint64_t hash)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < bytes; ++i)
        hash = (hash ^ p[i]) * 1099511628211ull;
    return hash;
}

/* xorshift64*: deterministic data, the same on every machine */
static double next_unit(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (double)((*state * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static inorm_tensor *filled(inorm_context *ctx, inorm_tensor_desc d, double center, uint64_t seed)
{
    inorm_tensor *t = NULL;
    if (inorm_tensor_create(ctx, &d, &t) != INORM_SUCCESS)
        return NULL;
    const size_t count = (size_t)d.n * d.c * d.h * d.w;
    const size_t bytes = inorm_tensor_desc_bytes(&d);
    void *data = malloc(bytes);
    uint64_t state = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < count; ++i) {
        /* a few values far off, so that planes are not all alike */
        const double v = center + (next_unit(&state) - 0.5) * (i % 97 == 0 ? 40.0 : 2.0);
        if (d.dtype == INORM_FLOAT32)
            ((float *)data)[i] = (float)v;
        else
            ((uint16_t *)data)[i] = inorm_float_to_half((float)v);
    }
    inorm_tensor_write(t, data, bytes);
    free(data);
    return t;
}

static inorm_tensor *params(inorm_context *ctx, uint32_t n, uint32_t c, double center, uint64_t seed)
{
    return filled(ctx, (inorm_tensor_desc){ n, c, 1, 1, INORM_FLOAT32, INORM_NCHW }, center, seed);
}

static void print_hash(const char *name, const inorm_tensor *t, inorm_status status)
{
    if (status != INORM_SUCCESS) {
        printf("%s FAILED %s\n", name, inorm_status_string(status));
        ++failures;
        return;
    }
    inorm_tensor_desc d;
    inorm_tensor_get_desc(t, &d);
    const size_t bytes = inorm_tensor_desc_bytes(&d);
    void *data = malloc(bytes);
    inorm_tensor_read(t, data, bytes);
    printf("%s %016llx\n", name, (unsigned long long)fnv1a(data, bytes, 14695981039346656037ull));
    free(data);
}

static void run_shape(inorm_context *ctx, uint32_t n, uint32_t c, uint32_t h, uint32_t w, inorm_dtype dtype,
                      inorm_layout layout, double center)
{
    char name[160];
    const inorm_tensor_desc d = { n, c, h, w, dtype, layout };
    snprintf(name, sizeof name, "%ux%ux%ux%u/%s/%s/%g", n, c, h, w, dtype == INORM_FLOAT16 ? "f16" : "f32",
             layout == INORM_NHWC ? "nhwc" : "nchw", center);
    const size_t prefix = strlen(name);
    inorm_tensor *x = filled(ctx, d, center, n * 131 + c * 17 + h * 7 + w);
    inorm_tensor *y = filled(ctx, d, 0.0, 1);
    inorm_tensor *style = filled(ctx, (inorm_tensor_desc){ 1, c, h + 3, w + 1, dtype, layout }, -center, 7);
    inorm_tensor *gamma = params(ctx, 1, c, 1.0, 2), *beta = params(ctx, 1, c, 0.0, 3);
    inorm_tensor *scale = params(ctx, n, c, 1.0, 4), *bias = params(ctx, n, c, 0.0, 5);
    inorm_tensor *mean = params(ctx, n, c, 0.0, 6), *std = params(ctx, n, c, 0.0, 8);
    if (!x || !y || !style || !gamma || !beta || !scale || !bias || !mean || !std) {
        printf("%s FAILED to create tensors\n", name);
        ++failures;
    } else {
        inorm_norm_params plain = INORM_NORM_PARAMS_DEFAULT, act = INORM_NORM_PARAMS_DEFAULT;
        act.activation = INORM_ACTIVATION_LEAKY_RELU;
        act.activation_slope = 0.125f;
        act.unbiased = h * w > 1;  /* one value per plane has no unbiased variance */
        snprintf(name + prefix, sizeof name - prefix, " instance_norm");
        print_hash(name, y, inorm_instance_norm(ctx, x, gamma, beta, &plain, y));
        snprintf(name + prefix, sizeof name - prefix, " instance_norm+leaky_relu");
        print_hash(name, y, inorm_instance_norm(ctx, x, gamma, beta, &act, y));
        inorm_norm_params silu = INORM_NORM_PARAMS_DEFAULT, relu = INORM_NORM_PARAMS_DEFAULT;
        silu.activation = INORM_ACTIVATION_SILU;
        relu.activation = INORM_ACTIVATION_RELU;
        snprintf(name + prefix, sizeof name - prefix, " instance_norm+silu");
        print_hash(name, y, inorm_instance_norm(ctx, x, gamma, beta, &silu, y));
        snprintf(name + prefix, sizeof name - prefix, " group_norm+relu");
        print_hash(name, y, inorm_group_norm(ctx, x, c % 4 == 0 ? 4 : 1, gamma, beta, &relu, y));
        snprintf(name + prefix, sizeof name - prefix, " adain_blend+silu");
        print_hash(name, y, inorm_adain(ctx, x, style, 0.75f, &silu, y));
        snprintf(name + prefix, sizeof name - prefix, " group_norm");
        print_hash(name, y, inorm_group_norm(ctx, x, c % 4 == 0 ? 4 : 1, gamma, beta, &plain, y));
        snprintf(name + prefix, sizeof name - prefix, " layer_norm");
        print_hash(name, y, inorm_layer_norm(ctx, x, gamma, beta, &plain, y));
        snprintf(name + prefix, sizeof name - prefix, " adain");
        print_hash(name, y, inorm_adain(ctx, x, style, 1.0f, &plain, y));
        snprintf(name + prefix, sizeof name - prefix, " adain_blend");
        print_hash(name, y, inorm_adain(ctx, x, style, 0.75f, &plain, y));
        snprintf(name + prefix, sizeof name - prefix, " adain_modulate");
        print_hash(name, y, inorm_adain_modulate(ctx, x, scale, bias, &plain, y));
        snprintf(name + prefix, sizeof name - prefix, " stats.mean");
        const inorm_status status = inorm_stats(ctx, x, &plain, mean, std);
        print_hash(name, mean, status);
        snprintf(name + prefix, sizeof name - prefix, " stats.std");
        print_hash(name, std, status);
    }
    inorm_tensor *all[] = { x, y, style, gamma, beta, scale, bias, mean, std };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        inorm_tensor_destroy(all[i]);
}

int main(void)
{
    printf("isa %s\n", inorm_cpu_isa_name(inorm_cpu_isa_level()));
    inorm_context_desc desc = INORM_CONTEXT_DESC_DEFAULT;
    desc.backend = INORM_BACKEND_CPU;
    desc.flags = INORM_CONTEXT_IGNORE_ENVIRONMENT;
    inorm_context *ctx = NULL;
    if (inorm_context_create(&desc, &ctx) != INORM_SUCCESS) {
        printf("no CPU context\n");
        return 1;
    }
    static const uint32_t shapes[][4] = {
        { 2, 8, 48, 48 },    /* NCHW planes of 2304: lanes, fused */
        { 1, 4, 300, 300 },  /* planes split across threads */
        { 1, 3, 100, 120 },  /* NHWC C = 3: 96 lanes */
        { 1, 256, 16, 16 },  /* NHWC C = 256; NCHW small planes */
        { 8, 16, 5, 7 },     /* small planes with tails */
        { 4, 64, 1, 1 },     /* planes of one element; layer norm of 64 */
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; ++s)
        for (int dtype = 0; dtype < 2; ++dtype)
            for (int layout = 0; layout < 2; ++layout)
                for (int far = 0; far < 2; ++far)
                    run_shape(ctx, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], (inorm_dtype)dtype,
                              (inorm_layout)layout, far ? 1000.0 : 0.0);
    inorm_context_destroy(ctx);
    return failures ? 1 : 0;
}
