/*
 * Fault walks (built with meson -Dfault_injection=true only).
 *
 * For each backend and fault kind (host allocation, device allocation,
 * queue submission) and N = 1, 2, ...: arm the fault so that the Nth event of
 * that kind fails, run a typical program (context, tensors, writes, instance
 * norm with gamma/beta, AdaIN, stats, group norm on FLOAT16 NHWC, adain_mix,
 * a masked op, an op that grows the scratch buffer, a fused op, reads), and
 * check:
 *   - every failing call returns a clean status: OUT_OF_HOST_MEMORY for a
 *     host fault, OUT_OF_DEVICE_MEMORY for a device fault, DEVICE_LOST for a
 *     submit fault, or INVALID_ARGUMENT where a handle is NULL because an
 *     earlier call failed (or a mask's contents are undefined because its
 *     write failed); with a non-empty inorm_context_error();
 *   - one injected fault makes at most one call fail (other failures come
 *     from NULL handles), nothing fails without the fault having fired;
 *   - after a submit fault, every later call on the context reports
 *     DEVICE_LOST;
 *   - every read of a tensor whose inputs were all computed gives the CPU
 *     path's fault-free result (exactly on the CPU path; within 1e-4 / 4e-3
 *     on Vulkan);
 *   - phase B ("recovery"): after the fault, the same program runs again on
 *     the same context (or on a new one if creation failed) and now every
 *     call succeeds with correct results, unless the device was lost;
 *   - the validation layer reported nothing (counted before destroy, and
 *     nothing printed during destroy), and once everything is destroyed no
 *     allocation of inorm's own is alive (inorm_live_allocations() == 0).
 * The walk ends at the first N whose run completes without the fault
 * firing; N - 1 fault points were walked (printed per configuration).
 *
 * Environment (for reproducing one point):
 *   INORM_FAULTS_CONFIG=<name>   run only that configuration (e.g. vulkan/device)
 *   INORM_FAULTS_N=<n>           run only that N (with INORM_FAULTS_CONFIG)
 *   INORM_FAULTS_VERBOSE=1       print every call's status
 *   INORM_TEST_ALLOW_NO_VULKAN=1 skip the Vulkan configurations without a device
 */
#define _POSIX_C_SOURCE 200809L

#include "internal.h"
#include "rob_util.h"

#include <check.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ the program -- */

enum {
    T_X, T_G, T_B, T_Y,         /* instance norm with gamma/beta */
    T_S, T_Y2,                  /* AdaIN, one style for the batch */
    T_MEAN, T_STD,              /* stats */
    T_XH, T_G4, T_B4, T_YH,     /* group norm, FLOAT16 NHWC */
    T_S2, T_Y3,                 /* adain_mix of S and S2 */
    T_M, T_Y4,                  /* masked instance norm, leaky ReLU */
    T_XA, T_SA, T_YA,           /* AdaIN with 64 x 64 planes: grows the scratch buffer */
    T_Y5,                       /* fused instance norm right after it */
    T_COUNT
};

typedef struct tensor_spec {
    uint32_t n, c, h, w;
    inorm_dtype dtype;
    inorm_layout layout;
    int kind; /* 0 output, 1 normal data, 2 positive affine, 3 mask */
} tensor_spec;

static const tensor_spec specs[T_COUNT] = {
    [T_X] = { 2, 3, 5, 7, INORM_FLOAT32, INORM_NCHW, 1 },
    [T_G] = { 1, 3, 1, 1, INORM_FLOAT32, INORM_NCHW, 2 },
    [T_B] = { 1, 3, 1, 1, INORM_FLOAT32, INORM_NCHW, 1 },
    [T_Y] = { 2, 3, 5, 7, INORM_FLOAT32, INORM_NCHW, 0 },
    [T_S] = { 1, 3, 4, 6, INORM_FLOAT32, INORM_NCHW, 1 },
    [T_Y2] = { 2, 3, 5, 7, INORM_FLOAT32, INORM_NCHW, 0 },
    [T_MEAN] = { 2, 3, 1, 1, INORM_FLOAT32, INORM_NCHW, 0 },
    [T_STD] = { 2, 3, 1, 1, INORM_FLOAT32, INORM_NCHW, 0 },
    [T_XH] = { 2, 4, 3, 5, INORM_FLOAT16, INORM_NHWC, 1 },
    [T_G4] = { 1, 4, 1, 1, INORM_FLOAT32, INORM_NCHW, 2 },
    [T_B4] = { 1, 4, 1, 1, INORM_FLOAT32, INORM_NCHW, 1 },
    [T_YH] = { 2, 4, 3, 5, INORM_FLOAT16, INORM_NHWC, 0 },
    [T_S2] = { 2, 3, 3, 3, INORM_FLOAT32, INORM_NCHW, 1 },
    [T_Y3] = { 2, 3, 5, 7, INORM_FLOAT32, INORM_NCHW, 0 },
    [T_M] = { 1, 1, 5, 7, INORM_FLOAT32, INORM_NCHW, 3 },
    [T_Y4] = { 2, 3, 5, 7, INORM_FLOAT32, INORM_NCHW, 0 },
    [T_XA] = { 64, 64, 2, 2, INORM_FLOAT32, INORM_NCHW, 1 },
    [T_SA] = { 64, 64, 2, 2, INORM_FLOAT32, INORM_NCHW, 1 },
    [T_YA] = { 64, 64, 2, 2, INORM_FLOAT32, INORM_NCHW, 0 },
    [T_Y5] = { 2, 3, 5, 7, INORM_FLOAT32, INORM_NCHW, 0 },
};

static const char *const tensor_names[T_COUNT] = {
    "x", "gamma", "beta", "y", "style", "y2", "mean", "std", "xh", "gamma4", "beta4", "yh",
    "style2", "y3", "mask", "y4", "xa", "sa", "ya", "y5",
};

/* Reads, in program order. */
enum { R_Y, R_Y2, R_MEAN, R_STD, R_YH, R_Y3, R_Y4, R_YA, R_Y5, R_COUNT };
static const int read_tensor[R_COUNT] = { T_Y, T_Y2, T_MEAN, T_STD, T_YH, T_Y3, T_Y4, T_YA, T_Y5 };

static void *input_image[T_COUNT];   /* host images of the inputs, in their dtype */
static float *reference[R_COUNT];    /* fault-free CPU results */

static inorm_tensor_desc spec_desc(int t)
{
    inorm_tensor_desc d = { specs[t].n, specs[t].c, specs[t].h, specs[t].w, specs[t].dtype, specs[t].layout };
    return d;
}

static size_t spec_bytes(int t)
{
    inorm_tensor_desc d = spec_desc(t);
    return inorm_tensor_desc_bytes(&d);
}

static void make_inputs(void)
{
    rob_rng rng = { 20240607u };
    for (int t = 0; t < T_COUNT; ++t) {
        if (specs[t].kind == 0)
            continue;
        inorm_tensor_desc d = spec_desc(t);
        size_t count = rob_elements(&d);
        float *v = malloc(count * sizeof *v);
        input_image[t] = malloc(spec_bytes(t));
        if (!v || !input_image[t])
            abort();
        for (size_t i = 0; i < count; ++i) {
            switch (specs[t].kind) {
            case 1: v[i] = (float)(0.5 + 2.0 * rob_normal(&rng)); break;
            case 2: v[i] = (float)(0.5 + rob_uniform(&rng)); break;
            default: v[i] = (float)(0.25 * (double)(rob_next(&rng) % 5)); break; /* 0 .. 1, some zeros */
            }
        }
        if (specs[t].kind == 3)
            v[0] = 1.0f; /* never all zero */
        rob_pack(d.dtype, v, input_image[t], count);
        free(v);
    }
}

/* -------------------------------------------------------------- the walk -- */

static const char *const kind_names[INORM_FAULT_KINDS] = { "host", "device", "submit" };

typedef struct config {
    const char *name;
    inorm_backend backend;
    inorm_fault_kind kind;
    bool staging; /* INORM_FORCE_STAGING=1: transfers through staging buffers */
} config;

static const config configs[] = {
    { "cpu/host", INORM_BACKEND_CPU, INORM_FAULT_HOST_ALLOC, false },
    { "cpu/device", INORM_BACKEND_CPU, INORM_FAULT_DEVICE_ALLOC, false },
    { "cpu/submit", INORM_BACKEND_CPU, INORM_FAULT_SUBMIT, false },
    { "vulkan/host", INORM_BACKEND_VULKAN, INORM_FAULT_HOST_ALLOC, false },
    { "vulkan/device", INORM_BACKEND_VULKAN, INORM_FAULT_DEVICE_ALLOC, false },
    { "vulkan/submit", INORM_BACKEND_VULKAN, INORM_FAULT_SUBMIT, false },
    { "vulkan-staging/device", INORM_BACKEND_VULKAN, INORM_FAULT_DEVICE_ALLOC, true },
    { "vulkan-staging/submit", INORM_BACKEND_VULKAN, INORM_FAULT_SUBMIT, true },
};
#define CONFIG_COUNT ((int)(sizeof configs / sizeof configs[0]))

typedef struct walk {
    const config *cfg;
    long n;                 /* the armed N (0: reference run) */
    int phase;              /* 'A' with the fault armed, 'B' after it */
    bool strict;            /* phase B on a live context: every call must succeed */
    bool record;            /* the reference run: store reads */
    inorm_context *ctx;
    inorm_tensor *t[T_COUNT];
    bool valid[T_COUNT];    /* holds the fault-free contents */
    bool lost;              /* DEVICE_LOST was reported */
    int fault_failures;     /* calls failed with the fault's status */
    int violations;
    int reads_compared;
    char create_message[512]; /* inorm_context_create_ex's, when there is no context */
} walk;

static int verbose;
static bool validation_expected; /* the layer is there (known from the reference Vulkan context) */

static void violation(walk *w, const char *step, const char *fmt, ...) INORM_PRINTF(3, 4);
static void violation(walk *w, const char *step, const char *fmt, ...)
{
    char text[768];
    va_list args;
    va_start(args, fmt);
    vsnprintf(text, sizeof text, fmt, args);
    va_end(args);
    if (w->violations < 40)
        fprintf(stderr, "VIOLATION [%s N=%ld phase %c] %s: %s\n", w->cfg->name, w->n, w->phase, step, text);
    w->violations++;
}

static inorm_status expected_fault_status(inorm_fault_kind kind)
{
    return kind == INORM_FAULT_HOST_ALLOC     ? INORM_ERROR_OUT_OF_HOST_MEMORY
           : kind == INORM_FAULT_DEVICE_ALLOC ? INORM_ERROR_OUT_OF_DEVICE_MEMORY
                                              : INORM_ERROR_DEVICE_LOST;
}

static const char *error_text(const walk *w)
{
    return w->ctx ? inorm_context_error(w->ctx) : w->create_message;
}

/*
 * Judges one call. null_arg: one of its handles is NULL because an earlier
 * call failed. ctx_known: the call reaches a context (its message is checked).
 * Returns true on success.
 */
static bool judge(walk *w, const char *step, inorm_status st, bool null_arg, bool ctx_known)
{
    if (verbose)
        fprintf(stderr, "  [%s N=%ld %c] %s -> %s\n", w->cfg->name, w->n, w->phase, step, rob_status_name(st));
    if (st == INORM_SUCCESS) {
        if (w->lost && ctx_known)
            violation(w, step, "succeeded on a context that reported DEVICE_LOST");
        return true;
    }
    if (ctx_known && w->ctx && inorm_context_error(w->ctx)[0] == '\0')
        violation(w, step, "returned %s with an empty inorm_context_error()", rob_status_name(st));
    if (st == INORM_ERROR_INVALID_ARGUMENT && null_arg)
        return false;
    if (w->lost) {
        if (st != INORM_ERROR_DEVICE_LOST)
            violation(w, step, "returned %s after DEVICE_LOST (every call must report DEVICE_LOST)",
                      rob_status_name(st));
        return false;
    }
    if (w->strict) {
        violation(w, step, "failed with %s (%s) after the fault, on a context that should work",
                  rob_status_name(st), error_text(w));
        return false;
    }
    const inorm_status want = expected_fault_status(w->cfg->kind);
    if (!inorm_fault_fired()) {
        violation(w, step, "failed with %s (%s) before the fault fired", rob_status_name(st),
                  error_text(w));
    } else if (st != want) {
        violation(w, step, "a %s fault gave %s (%s); expected %s", kind_names[w->cfg->kind], rob_status_name(st),
                  error_text(w), rob_status_name(want));
    } else if (++w->fault_failures > 1 && st != INORM_ERROR_DEVICE_LOST) {
        violation(w, step, "failed with %s (%s), but the one injected fault already failed an earlier call",
                  rob_status_name(st), error_text(w));
    }
    if (st == INORM_ERROR_DEVICE_LOST)
        w->lost = true;
    return false;
}

static void create_context(walk *w)
{
    inorm_context_desc desc = {
        .backend = w->cfg->backend,
        .device_index = -1,
        .validation = 1,
        .flags = INORM_CONTEXT_IGNORE_ENVIRONMENT,
    };
    char *message = w->create_message;
    message[0] = '\0';
    inorm_status st = inorm_context_create_ex(&desc, &w->ctx, message, sizeof w->create_message);
    if (verbose)
        fprintf(stderr, "  [%s N=%ld %c] inorm_context_create_ex -> %s %s\n", w->cfg->name, w->n, w->phase,
                rob_status_name(st), message);
    if (st == INORM_SUCCESS) {
        if (!w->ctx) {
            violation(w, "inorm_context_create_ex", "succeeded with *out NULL");
            return;
        }
        inorm_device_info info;
        if (inorm_context_info(w->ctx, &info) != INORM_SUCCESS || info.backend != w->cfg->backend)
            violation(w, "inorm_context_create_ex", "created a context of another backend");
        else if (w->cfg->backend == INORM_BACKEND_VULKAN && validation_expected && !info.validation_enabled)
            fprintf(stderr, "note [%s N=%ld phase %c]: the context was created without the validation layer "
                            "(the fault fell in the layer lookup and was swallowed)\n",
                    w->cfg->name, w->n, w->phase);
        return;
    }
    if (w->ctx)
        violation(w, "inorm_context_create_ex", "failed (%s) but *out is not NULL", rob_status_name(st));
    w->ctx = NULL;
    if (message[0] == '\0')
        violation(w, "inorm_context_create_ex", "failed (%s) with an empty message", rob_status_name(st));
    /* No context: judge the status alone. */
    judge(w, "inorm_context_create_ex", st, false, false);
}

static bool any_null(const walk *w, const int *ids, int count)
{
    for (int i = 0; i < count; ++i)
        if (!w->t[ids[i]])
            return true;
    return false;
}

static bool all_valid(const walk *w, const int *ids, int count)
{
    for (int i = 0; i < count; ++i)
        if (!w->valid[ids[i]])
            return false;
    return true;
}

/* Records an op: out is valid when the op succeeded on valid inputs. An op
 * with a mask reads the mask's values: after a failed write of the mask they
 * are undefined, and INVALID_ARGUMENT (weights not in [0, 1]) is a fair
 * answer, as for a NULL handle. */
static void op_done(walk *w, const char *step, inorm_status st, const int *inputs, int n_inputs, const int *outputs,
                    int n_outputs)
{
    bool undefined_mask = false;
    for (int i = 0; i < n_inputs; ++i)
        if (specs[inputs[i]].kind == 3 && !w->valid[inputs[i]])
            undefined_mask = true;
    int handles[8];
    int count = 0;
    for (int i = 0; i < n_inputs; ++i)
        handles[count++] = inputs[i];
    for (int i = 0; i < n_outputs; ++i)
        handles[count++] = outputs[i];
    bool ok = judge(w, step, st, any_null(w, handles, count) || undefined_mask, w->ctx != NULL);
    bool valid = ok && all_valid(w, inputs, n_inputs);
    for (int i = 0; i < n_outputs; ++i)
        w->valid[outputs[i]] = valid;
}

static void do_read(walk *w, int r)
{
    const int t = read_tensor[r];
    const size_t bytes = spec_bytes(t);
    const inorm_tensor_desc d = spec_desc(t);
    const size_t count = rob_elements(&d);
    char step[64];
    snprintf(step, sizeof step, "inorm_tensor_read(%s)", tensor_names[t]);
    void *image = malloc(bytes);
    float *values = malloc(count * sizeof *values);
    if (!image || !values)
        abort();
    memset(image, 0xff, bytes);
    inorm_status st = inorm_tensor_read(w->t[t], image, bytes);
    bool ok = judge(w, step, st, w->t[t] == NULL, w->t[t] != NULL);
    if (ok && w->valid[t]) {
        rob_unpack(d.dtype, image, values, count);
        if (w->record) {
            reference[r] = values;
            values = NULL;
        } else {
            char msg[256];
            const bool exact = w->cfg->backend == INORM_BACKEND_CPU;
            const double tol = d.dtype == INORM_FLOAT16 ? ROB_TOL_F16 : ROB_TOL_F32;
            size_t bad = rob_compare(values, reference[r], count, tol, exact, msg, sizeof msg);
            if (bad)
                violation(w, step, "%zu of %zu values differ from the fault-free CPU result; %s", bad, count, msg);
            w->reads_compared++;
        }
    } else if (w->record) {
        violation(w, step, "the reference run could not read (%s)", rob_status_name(st));
    } else if (w->strict && !w->lost) {
        violation(w, step, "no comparable result in a run that should work (status %s, valid %d)",
                  rob_status_name(st), (int)w->valid[t]);
    }
    free(values);
    free(image);
}

static void program(walk *w)
{
    char step[96];
    for (int t = 0; t < T_COUNT; ++t) {
        w->t[t] = NULL;
        w->valid[t] = false;
    }
    /* Tensors, then the inputs' contents. */
    for (int t = 0; t < T_COUNT; ++t) {
        inorm_tensor_desc d = spec_desc(t);
        snprintf(step, sizeof step, "inorm_tensor_create(%s)", tensor_names[t]);
        inorm_status st = inorm_tensor_create(w->ctx, &d, &w->t[t]);
        if (st != INORM_SUCCESS && w->t[t])
            violation(w, step, "failed but *out is not NULL");
        judge(w, step, st, w->ctx == NULL, w->ctx != NULL);
    }
    for (int t = 0; t < T_COUNT; ++t) {
        if (specs[t].kind == 0)
            continue;
        snprintf(step, sizeof step, "inorm_tensor_write(%s)", tensor_names[t]);
        inorm_status st = inorm_tensor_write(w->t[t], input_image[t], spec_bytes(t));
        w->valid[t] = judge(w, step, st, w->t[t] == NULL, w->t[t] != NULL);
    }
    inorm_tensor **t = w->t;

    /* instance norm with gamma and beta */
    inorm_norm_params p = INORM_NORM_PARAMS_DEFAULT;
    p.eps = 1e-3f;
    {
        const int in[] = { T_X, T_G, T_B }, out[] = { T_Y };
        op_done(w, "inorm_instance_norm", inorm_instance_norm(w->ctx, t[T_X], t[T_G], t[T_B], &p, t[T_Y]), in, 3,
                out, 1);
        do_read(w, R_Y);
    }
    /* AdaIN, one style for both samples, alpha 0.9 */
    {
        const int in[] = { T_X, T_S }, out[] = { T_Y2 };
        op_done(w, "inorm_adain", inorm_adain(w->ctx, t[T_X], t[T_S], 0.9f, NULL, t[T_Y2]), in, 2, out, 1);
        do_read(w, R_Y2);
    }
    /* stats, unbiased */
    {
        inorm_norm_params ps = INORM_NORM_PARAMS_DEFAULT;
        ps.unbiased = 1;
        const int in[] = { T_X }, out[] = { T_MEAN, T_STD };
        op_done(w, "inorm_stats", inorm_stats(w->ctx, t[T_X], &ps, t[T_MEAN], t[T_STD]), in, 1, out, 2);
        do_read(w, R_MEAN);
        do_read(w, R_STD);
    }
    /* group norm on FLOAT16 NHWC, 2 groups, SiLU */
    {
        inorm_norm_params pg = INORM_NORM_PARAMS_DEFAULT;
        pg.activation = INORM_ACTIVATION_SILU;
        const int in[] = { T_XH, T_G4, T_B4 }, out[] = { T_YH };
        op_done(w, "inorm_group_norm", inorm_group_norm(w->ctx, t[T_XH], 2, t[T_G4], t[T_B4], &pg, t[T_YH]), in, 3,
                out, 1);
        do_read(w, R_YH);
    }
    /* adain_mix of two styles (N = 1 and N = 2) */
    {
        const inorm_tensor *styles[2] = { t[T_S], t[T_S2] };
        const float weights[2] = { 0.7f, 0.5f };
        const int in[] = { T_X, T_S, T_S2 }, out[] = { T_Y3 };
        op_done(w, "inorm_adain_mix", inorm_adain_mix(w->ctx, t[T_X], styles, weights, 2, 0.8f, NULL, t[T_Y3]),
                in, 3, out, 1);
        do_read(w, R_Y3);
    }
    /* masked instance norm with leaky ReLU */
    {
        inorm_norm_params pm = INORM_NORM_PARAMS_DEFAULT;
        pm.mask = t[T_M];
        pm.activation = INORM_ACTIVATION_LEAKY_RELU;
        pm.activation_slope = 0.1f;
        const int in[] = { T_X, T_M, T_G, T_B }, out[] = { T_Y4 };
        op_done(w, "inorm_instance_norm(masked)",
                inorm_instance_norm(w->ctx, t[T_X], t[T_G], t[T_B], &pm, t[T_Y4]), in, 4, out, 1);
        do_read(w, R_Y4);
    }
    /* AdaIN over 4096 planes (grows the Vulkan scratch buffer), then a fused
     * op that binds the scratch buffer as a filler, then one wait for both */
    {
        const int in[] = { T_XA, T_SA }, out[] = { T_YA };
        op_done(w, "inorm_adain(64x64x2x2)", inorm_adain(w->ctx, t[T_XA], t[T_SA], 1.0f, NULL, t[T_YA]), in, 2,
                out, 1);
        const int in5[] = { T_X }, out5[] = { T_Y5 };
        op_done(w, "inorm_instance_norm(fused)", inorm_instance_norm(w->ctx, t[T_X], NULL, NULL, NULL, t[T_Y5]),
                in5, 1, out5, 1);
        judge(w, "inorm_context_finish", inorm_context_finish(w->ctx), w->ctx == NULL, w->ctx != NULL);
        do_read(w, R_YA);
        do_read(w, R_Y5);
    }
    /* Destroy the big ones before the context (tensor destroy waits too). */
    inorm_tensor_destroy(t[T_XA]);
    inorm_tensor_destroy(t[T_SA]);
    inorm_tensor_destroy(t[T_YA]);
    t[T_XA] = t[T_SA] = t[T_YA] = NULL;
    /* A last op and read after the destroys: sees a loss that a destroy hit. */
    {
        const int in[] = { T_X, T_G, T_B }, out[] = { T_Y };
        op_done(w, "inorm_instance_norm(again)", inorm_instance_norm(w->ctx, t[T_X], t[T_G], t[T_B], &p, t[T_Y]),
                in, 3, out, 1);
        do_read(w, R_Y);
    }
}

/* Destroys ctx with stderr captured: the validation layer reports leaked or
 * misused objects during vkDestroyDevice, after the count can be read. */
static void destroy_context(walk *w, inorm_context *ctx)
{
    if (!ctx)
        return;
    if (inorm_context_validation_message_count(ctx) != 0)
        violation(w, "validation", "the validation layer reported %u message(s) (see stderr)",
                  inorm_context_validation_message_count(ctx));
    fflush(stderr);
    FILE *capture = tmpfile();
    int saved = capture ? dup(STDERR_FILENO) : -1;
    if (saved >= 0)
        dup2(fileno(capture), STDERR_FILENO);
    inorm_context_destroy(ctx);
    if (saved >= 0) {
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        char text[4096];
        rewind(capture);
        size_t got = fread(text, 1, sizeof text - 1, capture);
        text[got] = '\0';
        if (got) {
            fprintf(stderr, "%s", text);
            if (strstr(text, "validation"))
                violation(w, "inorm_context_destroy", "the validation layer reported during destroy");
        }
    }
    if (capture)
        fclose(capture);
}

/* One run of the walk with the fault armed at n (n == 0: no fault). Returns
 * whether the fault fired. */
static bool run_once(walk *w, long n)
{
    w->n = n;
    w->phase = 'A';
    w->strict = false;
    w->lost = false;
    w->fault_failures = 0;
    w->ctx = NULL;
    if (n > 0)
        inorm_fault_arm(w->cfg->kind, n);
    create_context(w);
    program(w);
    bool fired = n > 0 && inorm_fault_fired();
    inorm_fault_arm(w->cfg->kind, 0); /* disarm: nothing may fail from here on */

    inorm_context *first = w->ctx, *second = NULL;
    if (fired) {
        /* Phase B: the program again, now without faults. */
        w->phase = 'B';
        w->strict = !w->lost;
        w->fault_failures = 0;
        if (!w->ctx) {
            create_context(w);
            second = w->ctx;
        }
        program(w);
    }
    destroy_context(w, first);
    destroy_context(w, second);
    w->ctx = NULL;
    long live = inorm_live_allocations();
    if (live != 0)
        violation(w, "teardown", "%ld allocation(s) of inorm are still alive after destroying everything", live);
    return fired;
}

/* ----------------------------------------------------------- the tests -- */

static const char *volatile crash_config = "";
static volatile long crash_n;

static void on_crash(int sig)
{
    char text[160];
    int len = snprintf(text, sizeof text, "CRASH: signal %d in configuration %s at N=%ld\n", sig, crash_config,
                       crash_n);
    if (len > 0)
        (void)!write(STDERR_FILENO, text, (size_t)len);
    signal(sig, SIG_DFL);
    raise(sig);
}

static bool vulkan_available = true;

START_TEST(fault_walk)
{
    const config *cfg = &configs[_i];
    const char *only = getenv("INORM_FAULTS_CONFIG");
    if (only && only[0] && strcmp(only, cfg->name) != 0)
        return;
    if (cfg->backend == INORM_BACKEND_VULKAN && !vulkan_available) {
        printf("SKIP %s: no Vulkan device\n", cfg->name);
        return;
    }
    if (cfg->staging)
        setenv("INORM_FORCE_STAGING", "1", 1);
    else
        unsetenv("INORM_FORCE_STAGING");
    signal(SIGSEGV, on_crash);
    signal(SIGBUS, on_crash);
    signal(SIGFPE, on_crash);
    signal(SIGILL, on_crash);
    signal(SIGABRT, on_crash);
    crash_config = cfg->name;

    walk w = { .cfg = cfg };
    const char *only_n = getenv("INORM_FAULTS_N");
    long first = 1, last = 100000;
    if (only_n && only_n[0]) {
        first = last = atol(only_n);
        ck_assert_msg(first >= 1, "INORM_FAULTS_N must be >= 1");
    }
    long points = 0, n = first;
    for (; n <= last; ++n) {
        crash_n = n;
        if (!run_once(&w, n))
            break;
        points++;
    }
    if (!only_n || !only_n[0])
        ck_assert_msg(n <= last, "%s: the walk did not end", cfg->name);
    printf("faults: %-22s %4ld fault points walked, %d violation(s), %d reads compared\n", cfg->name, points,
           w.violations, w.reads_compared);
    fflush(stdout);
    ck_assert_msg(cfg->backend == INORM_BACKEND_VULKAN || cfg->kind == INORM_FAULT_HOST_ALLOC || points == 0,
                  "%s: a %s fault fired on the CPU path", cfg->name, kind_names[cfg->kind]);
    ck_assert_msg(w.violations == 0, "%s: %d violation(s), listed on stderr", cfg->name, w.violations);
}
END_TEST

/* The reference: the program on the CPU path, no fault. Also checks that a
 * fault-free Vulkan run matches it. */
static void make_reference(void)
{
    static const config reference_cfg = { "reference", INORM_BACKEND_CPU, INORM_FAULT_HOST_ALLOC, false };
    walk w = { .cfg = &reference_cfg, .record = true, .strict = true, .phase = 'R' };
    create_context(&w);
    if (!w.ctx) {
        fprintf(stderr, "cannot create a CPU context\n");
        exit(1);
    }
    program(&w);
    destroy_context(&w, w.ctx);
    if (w.violations) {
        fprintf(stderr, "the reference run failed\n");
        exit(1);
    }
    for (int r = 0; r < R_COUNT; ++r)
        if (!reference[r]) {
            fprintf(stderr, "the reference run has no result for read %d\n", r);
            exit(1);
        }

    inorm_context_desc desc = {
        .backend = INORM_BACKEND_VULKAN, .device_index = -1, .validation = 1,
        .flags = INORM_CONTEXT_IGNORE_ENVIRONMENT,
    };
    inorm_context *ctx = NULL;
    char message[512];
    if (inorm_context_create_ex(&desc, &ctx, message, sizeof message) != INORM_SUCCESS) {
        const char *allow = getenv("INORM_TEST_ALLOW_NO_VULKAN");
        if (allow && strcmp(allow, "1") == 0) {
            vulkan_available = false;
            printf("no Vulkan device (%s): the Vulkan walks are skipped\n", message);
            return;
        }
        fprintf(stderr, "no Vulkan context: %s (set INORM_TEST_ALLOW_NO_VULKAN=1 to skip)\n", message);
        exit(1);
    }
    inorm_device_info info;
    inorm_context_info(ctx, &info);
    validation_expected = info.validation_enabled != 0;
    const char *require = getenv("INORM_REQUIRE_VALIDATION");
    if (require && strcmp(require, "1") == 0 && !validation_expected) {
        fprintf(stderr, "INORM_REQUIRE_VALIDATION=1 but the validation layer is not active\n");
        exit(1);
    }
    printf("Vulkan device: %s (%s), validation %s\n", info.name, info.driver_info,
           validation_expected ? "on" : "off");
    inorm_context_destroy(ctx);
}

int main(void)
{
    verbose = getenv("INORM_FAULTS_VERBOSE") && strcmp(getenv("INORM_FAULTS_VERBOSE"), "1") == 0;
    unsetenv("INORM_FORCE_STAGING");
    make_inputs();
    make_reference();
    if (inorm_live_allocations() != 0) {
        fprintf(stderr, "%ld allocations alive after the reference runs\n", inorm_live_allocations());
        return 1;
    }

    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("walk");
    tcase_set_timeout(tc, 0);
    tcase_add_loop_test(tc, fault_walk, 0, CONFIG_COUNT);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
