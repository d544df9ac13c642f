/*
 * Runs with the Vulkan loader pointed at a driver file that does not exist
 * (VK_DRIVER_FILES / VK_ICD_FILENAMES, set by meson.build, or here when run
 * by hand): AUTO must give a working CPU-path context, VULKAN must give
 * INORM_ERROR_NO_DEVICE with a message, and enumeration must list nothing.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

static void run_small_op(inorm_context *ctx, const char *what)
{
    o_shape s = tu_shape(2, 3, 5, 7);
    size_t n = o_count(s);
    float *x = tu_floats(n), *y = tu_floats(n);
    double *ref = tu_doubles(n), *mag = tu_doubles(n);
    tu_rng r;
    tu_rng_seed(&r, 5);
    tu_fill_uniform(&r, x, n, -3, 4);
    inorm_tensor *tx = tu_tensor(ctx, s, x), *ty = tu_tensor(ctx, s, NULL);
    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, NULL, ty));
    tu_download(ctx, ty, y, n);
    oracle_instance_norm(s, x, NULL, NULL, 1e-5f, 0, ref, mag);
    tu_assert_close(what, s, y, ref, mag);
    free(x), free(y), free(ref), free(mag);
}

START_TEST(enumerate_lists_nothing)
{
    uint32_t count = 99;
    TU_OK(NULL, inorm_enumerate_devices(NULL, &count));
    ck_assert_msg(count == 0, "no Vulkan driver, yet enumerate_devices counts %u", count);
    inorm_device_info info[2];
    count = 2;
    TU_OK(NULL, inorm_enumerate_devices(info, &count));
    ck_assert_uint_eq(count, 0);
}
END_TEST

START_TEST(auto_falls_back_to_cpu)
{
    for (int v = 0; v < 3; v++) {
        inorm_context *ctx = NULL;
        inorm_context_desc d = INORM_CONTEXT_DESC_DEFAULT;
        d.validation = v == 1;
        char msg[256] = "";
        inorm_status st = v == 2 ? inorm_context_create(NULL, &ctx)
                                 : inorm_context_create_ex(&d, &ctx, msg, sizeof msg);
        ck_assert_msg(st == INORM_SUCCESS && ctx, "AUTO without a Vulkan driver (variant %d): %s %s", v,
                      inorm_status_string(st), msg);
        inorm_device_info info;
        TU_OK(ctx, inorm_context_info(ctx, &info));
        ck_assert_msg(info.backend == INORM_BACKEND_CPU, "AUTO without Vulkan gave backend %d",
                      (int)info.backend);
        ck_assert_int_eq(info.type, INORM_DEVICE_TYPE_CPU_PATH);
        run_small_op(ctx, "instance_norm on AUTO without Vulkan (CPU path)");
        inorm_context_destroy(ctx);
    }
}
END_TEST

START_TEST(vulkan_gives_no_device)
{
    inorm_context_desc d = INORM_CONTEXT_DESC_DEFAULT;
    d.backend = INORM_BACKEND_VULKAN;
    d.validation = 1;
    int dummy;
    inorm_context *ctx = (inorm_context *)&dummy;
    char msg[512];
    memset(msg, 0, sizeof msg);
    inorm_status st = inorm_context_create_ex(&d, &ctx, msg, sizeof msg);
    ck_assert_msg(st == INORM_ERROR_NO_DEVICE, "VULKAN without a driver: %s, want NO_DEVICE (%s)",
                  inorm_status_string(st), msg);
    ck_assert_msg(ctx == NULL, "failed context creation left *out non-NULL");
    ck_assert_msg(msg[0] != '\0', "VULKAN without a driver: empty message");
    printf("VULKAN without a driver says: %s\n", msg);

    ctx = (inorm_context *)&dummy;
    st = inorm_context_create(&d, &ctx);
    ck_assert_msg(st == INORM_ERROR_NO_DEVICE && ctx == NULL,
                  "inorm_context_create(VULKAN) without a driver: %s", inorm_status_string(st));
}
END_TEST

START_TEST(cpu_still_works)
{
    TU_CTX(ctx, INORM_BACKEND_CPU);
    run_small_op(ctx, "instance_norm on the CPU backend without Vulkan");
    tu_ctx_destroy(ctx);
}
END_TEST

int main(void)
{
    /* meson.build sets these; set them here too (before anything loads
     * Vulkan) so that the test means the same when run by hand. */
    setenv("VK_DRIVER_FILES", "/nonexistent/none.json", 1);
    setenv("VK_ICD_FILENAMES", "/nonexistent/none.json", 1);
    unsetenv("VK_ADD_DRIVER_FILES");
    unsetenv("INORM_DEVICE");
    tu_init();
    Suite *s = suite_create("no_vulkan");
    TCase *tc = tcase_create("no_vulkan");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, enumerate_lists_nothing);
    tcase_add_test(tc, auto_falls_back_to_cpu);
    tcase_add_test(tc, vulkan_gives_no_device);
    tcase_add_test(tc, cpu_still_works);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
