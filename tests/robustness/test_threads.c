/*
 * Threads. inorm.h's rule: a context and its tensors form one unit whose
 * calls must not overlap in time; different contexts may be used from
 * different threads at once without locking. This test:
 *   - own contexts: 4 threads on the CPU path, then 4 on Vulkan together
 *     with 2 on the CPU path, each creating its own context(s) inside the
 *     thread and running a loop of ops (instance norm, AdaIN, stats, group
 *     norm on FLOAT16 NHWC, adain_mix, a masked op, convert, and two ops big
 *     enough for the CPU path's own worker threads), checking every result
 *     against a single-threaded CPU reference;
 *   - a shared context: 4 threads using one context (CPU path, then Vulkan)
 *     under a mutex of the test's own, taken around each single call, so the
 *     threads' calls interleave on the context;
 *   - contexts created and destroyed concurrently, with
 *     inorm_enumerate_devices in between (the once-per-process loader).
 * It is meant to run under ThreadSanitizer too (-Db_sanitize=thread, with
 * tests/robustness/tsan.supp for the uninstrumented Vulkan driver).
 *
 * Environment:
 *   INORM_THREADS_SCALE=<k>       multiply the iteration counts (default 1)
 *   INORM_TEST_ALLOW_NO_VULKAN=1  skip the Vulkan parts without a device
 *   INORM_REQUIRE_VALIDATION=1    fail when the validation layer is off
 */
#define _POSIX_C_SOURCE 200809L

#include "rob_util.h"

#include <check.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- a job -- */

enum {
    T_X, T_G, T_B, T_Y, T_S, T_Y2, T_MEAN, T_STD, T_XH, T_G4, T_B4, T_YH, T_S2, T_Y3, T_M, T_Y4, T_YC,
    T_XBIG, T_YBIG,   /* 1 x 2 x 256 x 160: two huge planes, split over the CPU path's threads */
    T_XMANY, T_YMANY, /* 4 x 8 x 48 x 48: many segments over the CPU path's threads */
    T_COUNT
};

typedef struct spec {
    uint32_t n, c, h, w;
    inorm_dtype dtype;
    inorm_layout layout;
    int kind; /* 0 output, 1 data, 2 positive affine, 3 mask */
} spec;

#define JOB_KINDS 3 /* jobs differ in H (5, 6, 7), so their shapes and kernels differ */

static spec job_spec(int job, int t)
{
    const uint32_t h = 5 + (uint32_t)(job % JOB_KINDS);
    const spec specs[T_COUNT] = {
        [T_X] = { 2, 3, h, 7, INORM_FLOAT32, INORM_NCHW, 1 },
        [T_G] = { 1, 3, 1, 1, INORM_FLOAT32, INORM_NCHW, 2 },
        [T_B] = { 1, 3, 1, 1, INORM_FLOAT32, INORM_NCHW, 1 },
        [T_Y] = { 2, 3, h, 7, INORM_FLOAT32, INORM_NCHW, 0 },
        [T_S] = { 1, 3, 4, 6, INORM_FLOAT32, INORM_NCHW, 1 },
        [T_Y2] = { 2, 3, h, 7, INORM_FLOAT32, INORM_NCHW, 0 },
        [T_MEAN] = { 2, 3, 1, 1, INORM_FLOAT32, INORM_NCHW, 0 },
        [T_STD] = { 2, 3, 1, 1, INORM_FLOAT32, INORM_NCHW, 0 },
        [T_XH] = { 2, 4, h, 5, INORM_FLOAT16, INORM_NHWC, 1 },
        [T_G4] = { 1, 4, 1, 1, INORM_FLOAT32, INORM_NCHW, 2 },
        [T_B4] = { 1, 4, 1, 1, INORM_FLOAT32, INORM_NCHW, 1 },
        [T_YH] = { 2, 4, h, 5, INORM_FLOAT16, INORM_NHWC, 0 },
        [T_S2] = { 2, 3, 3, 3, INORM_FLOAT32, INORM_NCHW, 1 },
        [T_Y3] = { 2, 3, h, 7, INORM_FLOAT32, INORM_NCHW, 0 },
        [T_M] = { 1, 1, h, 7, INORM_FLOAT32, INORM_NCHW, 3 },
        [T_Y4] = { 2, 3, h, 7, INORM_FLOAT32, INORM_NCHW, 0 },
        [T_YC] = { 2, 3, h, 7, INORM_FLOAT16, INORM_NHWC, 0 },
        [T_XBIG] = { 1, 2, 256, 160, INORM_FLOAT32, INORM_NCHW, 1 },
        [T_YBIG] = { 1, 2, 256, 160, INORM_FLOAT32, INORM_NCHW, 0 },
        [T_XMANY] = { 4, 8, 48, 48, INORM_FLOAT32, INORM_NCHW, 1 },
        [T_YMANY] = { 4, 8, 48, 48, INORM_FLOAT32, INORM_NCHW, 0 },
    };
    return specs[t];
}

static inorm_tensor_desc spec_desc(spec s)
{
    inorm_tensor_desc d = { s.n, s.c, s.h, s.w, s.dtype, s.layout };
    return d;
}

static size_t spec_bytes(spec s)
{
    inorm_tensor_desc d = spec_desc(s);
    return inorm_tensor_desc_bytes(&d);
}

static size_t spec_count(spec s)
{
    return (size_t)s.n * s.c * s.h * s.w;
}

static const int outputs[] = { T_Y, T_Y2, T_MEAN, T_STD, T_YH, T_Y3, T_Y4, T_YC, T_YBIG, T_YMANY };
#define OUTPUT_COUNT ((int)(sizeof outputs / sizeof outputs[0]))

#define JOBS 8
static void *inputs[JOBS][T_COUNT];         /* host images, in the tensor's dtype */
static float *reference[JOBS][T_COUNT];     /* CPU path results of the outputs, as floats */

static void make_inputs(int job)
{
    rob_rng rng = { 1000u + (uint64_t)job };
    for (int t = 0; t < T_COUNT; ++t) {
        spec s = job_spec(job, t);
        if (s.kind == 0)
            continue;
        size_t count = spec_count(s);
        float *v = malloc(count * sizeof *v);
        inputs[job][t] = malloc(spec_bytes(s));
        if (!v || !inputs[job][t])
            abort();
        for (size_t i = 0; i < count; ++i) {
            switch (s.kind) {
            case 1: v[i] = (float)((double)job - 1.0 + 1.5 * rob_normal(&rng)); break;
            case 2: v[i] = (float)(0.5 + rob_uniform(&rng)); break;
            default: v[i] = (float)(0.25 * (double)(rob_next(&rng) % 5)); break;
            }
        }
        if (s.kind == 3)
            v[0] = 1.0f;
        rob_pack(s.dtype, v, inputs[job][t], count);
        free(v);
    }
}

/* Optional lock around every call (the shared-context test). */
typedef struct call_lock {
    pthread_mutex_t *mutex;
} call_lock;

static void lock(const call_lock *l)
{
    if (l && l->mutex)
        pthread_mutex_lock(l->mutex);
}

static void unlock(const call_lock *l)
{
    if (l && l->mutex)
        pthread_mutex_unlock(l->mutex);
}

/* A thread's account: the first failure, and counts. */
typedef struct report {
    char error[512];
    int failures;
    long ops, compared;
} report;

static void note_failure(report *r, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void note_failure(report *r, const char *fmt, ...)
{
    if (r->failures++ == 0) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(r->error, sizeof r->error, fmt, args);
        va_end(args);
    }
}

#define CALL(expr, what)                                                                                    \
    do {                                                                                                    \
        lock(l);                                                                                            \
        inorm_status st_ = (expr);                                                                          \
        char msg_[256] = "";                                                                                \
        if (st_ != INORM_SUCCESS)                                                                           \
            snprintf(msg_, sizeof msg_, "%s", inorm_context_error(ctx));                                    \
        unlock(l);                                                                                          \
        r->ops++;                                                                                           \
        if (st_ != INORM_SUCCESS) {                                                                         \
            note_failure(r, "job %d: %s failed: %s (%s)", job, what, rob_status_name(st_), msg_);                   \
            goto done;                                                                                      \
        }                                                                                                   \
    } while (0)

/*
 * Runs job `job` on ctx: creates its tensors, writes the inputs, runs every
 * op, reads the outputs into results[t] (floats; caller frees), destroys the
 * tensors. With l, each call holds the lock. Returns false on a failure.
 */
static bool run_job(inorm_context *ctx, int job, const call_lock *l, float *results[T_COUNT], report *r)
{
    inorm_tensor *t[T_COUNT] = { NULL };
    bool ok = false;
    for (int i = 0; i < T_COUNT; ++i) {
        inorm_tensor_desc d = spec_desc(job_spec(job, i));
        CALL(inorm_tensor_create(ctx, &d, &t[i]), "inorm_tensor_create");
    }
    for (int i = 0; i < T_COUNT; ++i)
        if (job_spec(job, i).kind != 0)
            CALL(inorm_tensor_write(t[i], inputs[job][i], spec_bytes(job_spec(job, i))), "inorm_tensor_write");

    inorm_norm_params p = INORM_NORM_PARAMS_DEFAULT;
    p.eps = 1e-3f;
    CALL(inorm_instance_norm(ctx, t[T_X], t[T_G], t[T_B], &p, t[T_Y]), "inorm_instance_norm");
    CALL(inorm_adain(ctx, t[T_X], t[T_S], 0.75f, NULL, t[T_Y2]), "inorm_adain");
    inorm_norm_params pu = INORM_NORM_PARAMS_DEFAULT;
    pu.unbiased = 1;
    CALL(inorm_stats(ctx, t[T_X], &pu, t[T_MEAN], t[T_STD]), "inorm_stats");
    inorm_norm_params pg = INORM_NORM_PARAMS_DEFAULT;
    pg.activation = INORM_ACTIVATION_SILU;
    CALL(inorm_group_norm(ctx, t[T_XH], 2, t[T_G4], t[T_B4], &pg, t[T_YH]), "inorm_group_norm");
    const inorm_tensor *styles[2] = { t[T_S], t[T_S2] };
    const float weights[2] = { 0.6f, 0.4f };
    CALL(inorm_adain_mix(ctx, t[T_X], styles, weights, 2, 1.0f, NULL, t[T_Y3]), "inorm_adain_mix");
    inorm_norm_params pm = INORM_NORM_PARAMS_DEFAULT;
    pm.mask = t[T_M];
    pm.activation = INORM_ACTIVATION_LEAKY_RELU;
    pm.activation_slope = 0.2f;
    CALL(inorm_instance_norm(ctx, t[T_X], t[T_G], t[T_B], &pm, t[T_Y4]), "inorm_instance_norm(masked)");
    CALL(inorm_convert(ctx, t[T_X], t[T_YC]), "inorm_convert");
    CALL(inorm_layer_norm(ctx, t[T_XBIG], NULL, NULL, NULL, t[T_YBIG]), "inorm_layer_norm(big)");
    CALL(inorm_instance_norm(ctx, t[T_XMANY], NULL, NULL, NULL, t[T_YMANY]), "inorm_instance_norm(many)");

    for (int k = 0; k < OUTPUT_COUNT; ++k) {
        const int i = outputs[k];
        spec s = job_spec(job, i);
        size_t bytes = spec_bytes(s), count = spec_count(s);
        void *image = malloc(bytes);
        results[i] = malloc(count * sizeof(float));
        if (!image || !results[i])
            abort();
        lock(l);
        inorm_status st = inorm_tensor_read(t[i], image, bytes);
        unlock(l);
        r->ops++;
        if (st == INORM_SUCCESS)
            rob_unpack(s.dtype, image, results[i], count);
        free(image);
        if (st != INORM_SUCCESS) {
            note_failure(r, "job %d: inorm_tensor_read failed: %s", job, rob_status_name(st));
            goto done;
        }
    }
    ok = true;
done:
    lock(l);
    for (int i = 0; i < T_COUNT; ++i)
        inorm_tensor_destroy(t[i]);
    unlock(l);
    return ok;
}

static void compare_job(int job, float *results[T_COUNT], bool exact, report *r)
{
    for (int k = 0; k < OUTPUT_COUNT; ++k) {
        const int i = outputs[k];
        spec s = job_spec(job, i);
        char msg[256];
        size_t bad = rob_compare(results[i], reference[job][i], spec_count(s),
                                 s.dtype == INORM_FLOAT16 ? ROB_TOL_F16 : ROB_TOL_F32, exact, msg, sizeof msg);
        if (bad)
            note_failure(r, "job %d, output %d: %zu values differ from the single-threaded CPU path: %s", job, i, bad, msg);
        r->compared++;
    }
}

static void free_results(float *results[T_COUNT])
{
    for (int i = 0; i < T_COUNT; ++i) {
        free(results[i]);
        results[i] = NULL;
    }
}

/* ------------------------------------------------------------ contexts -- */

static int scale = 1;
static bool vulkan_available = true;
static bool require_validation;

static inorm_status create_context(inorm_backend backend, inorm_context **ctx, char *message, size_t size)
{
    inorm_context_desc desc = {
        .backend = backend, .device_index = -1, .validation = 1, .flags = INORM_CONTEXT_IGNORE_ENVIRONMENT,
    };
    inorm_status st = inorm_context_create_ex(&desc, ctx, message, size);
    if (st == INORM_SUCCESS && backend == INORM_BACKEND_VULKAN && require_validation) {
        inorm_device_info info;
        inorm_context_info(*ctx, &info);
        if (!info.validation_enabled) {
            snprintf(message, size, "INORM_REQUIRE_VALIDATION=1 but the validation layer is off");
            inorm_context_destroy(*ctx);
            *ctx = NULL;
            return INORM_ERROR_UNSUPPORTED;
        }
    }
    return st;
}

static void destroy_context(inorm_context *ctx, report *r)
{
    uint32_t messages = inorm_context_validation_message_count(ctx);
    if (messages)
        note_failure(r, "the validation layer reported %u message(s) (see stderr)", messages);
    inorm_context_destroy(ctx);
}

/* --------------------------------------------------- own-context threads -- */

typedef struct worker {
    pthread_t thread;
    int index;
    inorm_backend backend;
    int contexts, iterations;   /* contexts created in turn, jobs per context */
    inorm_context *shared;      /* shared-context test: the context, and its lock */
    pthread_mutex_t *mutex;
    report r;
} worker;

static void *own_context_thread(void *arg)
{
    worker *w = arg;
    report *r = &w->r;
    for (int round = 0; round < w->contexts && !r->failures; ++round) {
        inorm_context *ctx = NULL;
        char message[512];
        inorm_status st = create_context(w->backend, &ctx, message, sizeof message);
        if (st != INORM_SUCCESS) {
            note_failure(r, "thread %d: context creation failed: %s (%s)", w->index, rob_status_name(st), message);
            break;
        }
        /* Profiling on odd threads: it keeps per-context timing state. */
        if (w->index % 2)
            inorm_context_set_profiling(ctx, 1);
        for (int it = 0; it < w->iterations && !r->failures; ++it) {
            const int job = (w->index + it) % JOBS;
            float *results[T_COUNT] = { NULL };
            if (run_job(ctx, job, NULL, results, r))
                compare_job(job, results, w->backend == INORM_BACKEND_CPU, r);
            free_results(results);
            if (w->index % 2) {
                double seconds = -1.0;
                inorm_status pst = inorm_context_last_device_time(ctx, &seconds);
                if (pst != INORM_SUCCESS && pst != INORM_ERROR_UNSUPPORTED)
                    note_failure(r, "thread %d: inorm_context_last_device_time gave %s", w->index, rob_status_name(pst));
            }
        }
        destroy_context(ctx, r);
    }
    return NULL;
}

static void run_workers(worker *workers, int count, void *(*body)(void *))
{
    for (int i = 0; i < count; ++i)
        ck_assert_int_eq(pthread_create(&workers[i].thread, NULL, body, &workers[i]), 0);
    for (int i = 0; i < count; ++i)
        ck_assert_int_eq(pthread_join(workers[i].thread, NULL), 0);
    long ops = 0, compared = 0;
    for (int i = 0; i < count; ++i) {
        ops += workers[i].r.ops;
        compared += workers[i].r.compared;
    }
    printf("  %d threads: %ld calls, %ld outputs compared\n", count, ops, compared);
    fflush(stdout);
    for (int i = 0; i < count; ++i)
        ck_assert_msg(workers[i].r.failures == 0, "thread %d (%s): %d failure(s); first: %s", i,
                      workers[i].backend == INORM_BACKEND_CPU ? "cpu" : "vulkan", workers[i].r.failures,
                      workers[i].r.error);
}

START_TEST(own_contexts_cpu)
{
    worker workers[4];
    memset(workers, 0, sizeof workers);
    for (int i = 0; i < 4; ++i)
        workers[i] = (worker){ .index = i, .backend = INORM_BACKEND_CPU, .contexts = 2, .iterations = 6 * scale };
    run_workers(workers, 4, own_context_thread);
}
END_TEST

START_TEST(own_contexts_vulkan)
{
    if (!vulkan_available) {
        printf("SKIP own_contexts_vulkan: no Vulkan device\n");
        return;
    }
    /* 4 Vulkan threads and 2 CPU-path threads at once. */
    worker workers[6];
    memset(workers, 0, sizeof workers);
    for (int i = 0; i < 6; ++i)
        workers[i] = (worker){
            .index = i,
            .backend = i < 4 ? INORM_BACKEND_VULKAN : INORM_BACKEND_CPU,
            .contexts = i < 4 ? 2 : 3,
            .iterations = (i < 4 ? 3 : 6) * scale,
        };
    run_workers(workers, 6, own_context_thread);
}
END_TEST

/* ---------------------------------------------------- one shared context -- */

static void *shared_context_thread(void *arg)
{
    worker *w = arg;
    report *r = &w->r;
    call_lock l = { w->mutex };
    for (int it = 0; it < w->iterations && !r->failures; ++it) {
        const int job = (w->index * 3 + it) % JOBS;
        float *results[T_COUNT] = { NULL };
        if (run_job(w->shared, job, &l, results, r))
            compare_job(job, results, w->backend == INORM_BACKEND_CPU, r);
        free_results(results);
    }
    return NULL;
}

static void shared_context(inorm_backend backend, int iterations)
{
    inorm_context *ctx = NULL;
    char message[512];
    inorm_status st = create_context(backend, &ctx, message, sizeof message);
    ck_assert_msg(st == INORM_SUCCESS, "context creation failed: %s (%s)", rob_status_name(st), message);
    pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
    worker workers[4];
    memset(workers, 0, sizeof workers);
    for (int i = 0; i < 4; ++i)
        workers[i] = (worker){ .index = i, .backend = backend, .iterations = iterations, .shared = ctx,
                               .mutex = &mutex };
    run_workers(workers, 4, shared_context_thread);
    report r = { .failures = 0 };
    destroy_context(ctx, &r);
    ck_assert_msg(r.failures == 0, "%s", r.error);
    pthread_mutex_destroy(&mutex);
}

START_TEST(shared_context_cpu)
{
    shared_context(INORM_BACKEND_CPU, 6 * scale);
}
END_TEST

START_TEST(shared_context_vulkan)
{
    if (!vulkan_available) {
        printf("SKIP shared_context_vulkan: no Vulkan device\n");
        return;
    }
    shared_context(INORM_BACKEND_VULKAN, 3 * scale);
}
END_TEST

/* --------------------------------------- concurrent creation and destroy -- */

static void *create_destroy_thread(void *arg)
{
    worker *w = arg;
    report *r = &w->r;
    for (int it = 0; it < w->iterations && !r->failures; ++it) {
        uint32_t count = 0;
        inorm_status st = inorm_enumerate_devices(NULL, &count);
        if (st != INORM_SUCCESS)
            note_failure(r, "thread %d: inorm_enumerate_devices failed: %s", w->index, rob_status_name(st));
        inorm_backend backend = vulkan_available && (w->index + it) % 2 == 0 ? INORM_BACKEND_VULKAN : INORM_BACKEND_CPU;
        inorm_context *ctx = NULL;
        char message[512];
        st = create_context(backend, &ctx, message, sizeof message);
        if (st != INORM_SUCCESS) {
            note_failure(r, "thread %d: context creation failed: %s (%s)", w->index, rob_status_name(st), message);
            break;
        }
        /* one small op, so that the context has done something */
        inorm_tensor_desc d = { 1, 2, 3, 4, INORM_FLOAT32, INORM_NCHW };
        inorm_tensor *x = NULL, *y = NULL;
        float in[24], out[24];
        for (int i = 0; i < 24; ++i)
            in[i] = (float)(i % 7) - 2.0f;
        if (inorm_tensor_create(ctx, &d, &x) != INORM_SUCCESS || inorm_tensor_create(ctx, &d, &y) != INORM_SUCCESS ||
            inorm_tensor_write(x, in, sizeof in) != INORM_SUCCESS ||
            inorm_instance_norm(ctx, x, NULL, NULL, NULL, y) != INORM_SUCCESS ||
            inorm_tensor_read(y, out, sizeof out) != INORM_SUCCESS)
            note_failure(r, "thread %d: a small op failed: %s", w->index, inorm_context_error(ctx));
        else if (!(out[0] < 0.0f && out[4] > 0.0f))
            note_failure(r, "thread %d: wrong result %g %g", w->index, (double)out[0], (double)out[4]);
        r->ops += 5;
        /* y is left for inorm_context_destroy */
        inorm_tensor_destroy(x);
        destroy_context(ctx, r);
    }
    return NULL;
}

START_TEST(create_destroy)
{
    worker workers[4];
    memset(workers, 0, sizeof workers);
    for (int i = 0; i < 4; ++i)
        workers[i] = (worker){ .index = i, .iterations = 4 * scale };
    run_workers(workers, 4, create_destroy_thread);
}
END_TEST

/* ----------------------------------------------------------------- main -- */

int main(void)
{
    const char *s = getenv("INORM_THREADS_SCALE");
    if (s && atoi(s) > 0)
        scale = atoi(s);
    const char *req = getenv("INORM_REQUIRE_VALIDATION");
    require_validation = req && strcmp(req, "1") == 0;

    /* Inputs and the single-threaded CPU reference. */
    inorm_context *ctx = NULL;
    char message[512];
    if (create_context(INORM_BACKEND_CPU, &ctx, message, sizeof message) != INORM_SUCCESS) {
        fprintf(stderr, "no CPU context: %s\n", message);
        return 1;
    }
    for (int job = 0; job < JOBS; ++job) {
        make_inputs(job);
        report r = { .failures = 0 };
        if (!run_job(ctx, job, NULL, reference[job], &r)) {
            fprintf(stderr, "reference: %s\n", r.error);
            return 1;
        }
    }
    inorm_context_destroy(ctx);

    ctx = NULL;
    if (create_context(INORM_BACKEND_VULKAN, &ctx, message, sizeof message) != INORM_SUCCESS) {
        const char *allow = getenv("INORM_TEST_ALLOW_NO_VULKAN");
        if (!allow || strcmp(allow, "1") != 0) {
            fprintf(stderr, "no Vulkan context: %s (INORM_TEST_ALLOW_NO_VULKAN=1 skips)\n", message);
            return 1;
        }
        printf("no Vulkan device (%s): Vulkan parts skipped\n", message);
        vulkan_available = false;
    } else {
        inorm_context_destroy(ctx);
    }

    Suite *suite = suite_create("threads");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 0);
    tcase_add_test(tc, own_contexts_cpu);
    tcase_add_test(tc, own_contexts_vulkan);
    tcase_add_test(tc, shared_context_cpu);
    tcase_add_test(tc, shared_context_vulkan);
    tcase_add_test(tc, create_destroy);
    suite_add_tcase(suite, tc);
    SRunner *sr = srunner_create(suite);
    srunner_run_all(sr, CK_VERBOSE);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    for (int job = 0; job < JOBS; ++job)
        for (int t = 0; t < T_COUNT; ++t) {
            free(inputs[job][t]);
            free(reference[job][t]);
        }
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
