/*
 * Bad input on every selected backend: each must return the documented
 * status (INORM_ERROR_INVALID_ARGUMENT unless noted) and leave a non-empty
 * inorm_context_error(); the context must keep working afterwards. Also:
 * status strings, context info and device enumeration, and NaN/Inf
 * propagation.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#define INVALID INORM_ERROR_INVALID_ARGUMENT

static inorm_tensor *mk(inorm_context *ctx, uint32_t n, uint32_t c, uint32_t h, uint32_t w)
{
    return tu_tensor(ctx, tu_shape(n, c, h, w), NULL);
}

/* Fills a tensor with i % 13 - 6 so that a valid op on it is well defined. */
static void fill(inorm_context *ctx, inorm_tensor *t)
{
    inorm_tensor_desc d;
    TU_OK(ctx, inorm_tensor_get_desc(t, &d));
    size_t n = (size_t)d.n * d.c * d.h * d.w;
    float *v = tu_floats(n);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)((int)(i % 13) - 6) + 0.25f * (float)(i % 3);
    tu_upload(ctx, t, v, n);
    free(v);
}

/* After a series of refusals the context must still run a correct op. */
static void still_works(inorm_context *ctx)
{
    o_shape s = tu_shape(2, 3, 5, 7);
    size_t n = o_count(s);
    float *x = tu_floats(n), *y = tu_floats(n);
    double *ref = tu_doubles(n), *mag = tu_doubles(n);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((i * 37) % 101) * 0.1f;
    inorm_tensor *tx = tu_tensor(ctx, s, x), *ty = tu_tensor(ctx, s, NULL);
    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, NULL, ty));
    tu_download(ctx, ty, y, n);
    oracle_instance_norm(s, x, NULL, NULL, 1e-5f, 0, ref, mag);
    tu_assert_close("instance_norm after refused calls", s, y, ref, mag);
    inorm_tensor_destroy(tx);
    inorm_tensor_destroy(ty);
    free(x), free(y), free(ref), free(mag);
}

/* Case-insensitive substring. */
static int mentions(const char *hay, const char *needle)
{
    size_t nl = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < nl && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == nl)
            return 1;
    }
    return 0;
}

#define EXPECT_MENTIONS(ctx, word)                                                                \
    ck_assert_msg(mentions(inorm_context_error(ctx), (word)),                                     \
                  "error text \"%s\" does not name the argument \"%s\" (inorm.h: the message "    \
                  "names the argument and the value at fault)",                                   \
                  inorm_context_error(ctx), (word))

/* ------------------------------------------------------ status strings -- */

START_TEST(status_strings)
{
    const inorm_status all[] = {INORM_SUCCESS,
                                INORM_ERROR_INVALID_ARGUMENT,
                                INORM_ERROR_UNSUPPORTED,
                                INORM_ERROR_NO_DEVICE,
                                INORM_ERROR_OUT_OF_HOST_MEMORY,
                                INORM_ERROR_OUT_OF_DEVICE_MEMORY,
                                INORM_ERROR_DEVICE_LOST,
                                INORM_ERROR_BACKEND};
    const size_t n = sizeof all / sizeof all[0];
    const char *unknown = inorm_status_string((inorm_status)12345);
    ck_assert_msg(unknown != NULL && unknown[0], "status string of 12345 is NULL or empty");
    ck_assert_msg(inorm_status_string((inorm_status)-1) != NULL, "status string of -1 is NULL");
    ck_assert_msg(inorm_status_string((inorm_status)(INORM_ERROR_BACKEND + 1)) != NULL,
                  "status string of INORM_ERROR_BACKEND + 1 is NULL");
    ck_assert_str_eq(inorm_status_string((inorm_status)(INORM_ERROR_BACKEND + 1)), unknown);
    for (size_t i = 0; i < n; i++) {
        const char *si = inorm_status_string(all[i]);
        ck_assert_msg(si != NULL && si[0] != '\0', "status %d: NULL or empty string", (int)all[i]);
        ck_assert_msg(strcmp(si, unknown) != 0, "status %d has the unknown-status string \"%s\"",
                      (int)all[i], si);
        for (size_t j = 0; j < i; j++)
            ck_assert_msg(strcmp(si, inorm_status_string(all[j])) != 0,
                          "statuses %d and %d share the string \"%s\"", (int)all[i], (int)all[j], si);
    }
}
END_TEST

/* ------------------------------------------------------------ NULL args -- */

START_TEST(null_arguments)
{
    inorm_backend be = tu_backend(_i);

    /* context creation */
    inorm_context_desc cd = INORM_CONTEXT_DESC_DEFAULT;
    cd.backend = be;
    cd.validation = be == INORM_BACKEND_VULKAN;
    char msg[256] = "";
    TU_EXPECT(NULL, inorm_context_create(&cd, NULL), INVALID);
    TU_EXPECT(NULL, inorm_context_create_ex(&cd, NULL, msg, sizeof msg), INVALID);
    ck_assert_msg(msg[0] != '\0', "context_create_ex(out NULL) failed without a message");
    inorm_context_desc bad = cd;
    bad.backend = (inorm_backend)77;
    int dummy;
    inorm_context *out = (inorm_context *)&dummy;
    msg[0] = '\0';
    TU_EXPECT(NULL, inorm_context_create_ex(&bad, &out, msg, sizeof msg), INVALID);
    ck_assert_msg(out == NULL, "a failed context_create left *out non-NULL");
    ck_assert_msg(msg[0] != '\0', "context_create_ex(backend 77) failed without a message");
    /* a tiny message buffer is respected (and terminated) */
    char tiny[4] = {'x', 'x', 'x', 'x'};
    TU_EXPECT(NULL, inorm_context_create_ex(&bad, &out, tiny, 1), INVALID);
    ck_assert_msg(tiny[0] == '\0' && tiny[1] == 'x', "message_size 1 not respected");
    TU_EXPECT(NULL, inorm_context_create_ex(&bad, &out, NULL, 0), INVALID);

    TU_CTX(ctx, be);
    inorm_tensor *x = mk(ctx, 2, 3, 4, 5), *y = mk(ctx, 2, 3, 4, 5);
    inorm_tensor *pc = mk(ctx, 1, 3, 1, 1), *pnc = mk(ctx, 2, 3, 1, 1), *pnc2 = mk(ctx, 2, 3, 1, 1);
    fill(ctx, x);
    fill(ctx, pc);
    fill(ctx, pnc);

    /* NULL context: a fixed, non-empty message */
    ck_assert_msg(inorm_context_error(NULL) != NULL && inorm_context_error(NULL)[0],
                  "inorm_context_error(NULL) is NULL or empty");
    TU_EXPECT(NULL, inorm_instance_norm(NULL, x, NULL, NULL, NULL, y), INVALID);
    TU_EXPECT(NULL, inorm_group_norm(NULL, x, 3, NULL, NULL, NULL, y), INVALID);
    TU_EXPECT(NULL, inorm_adain(NULL, x, x, 1.0f, NULL, y), INVALID);
    TU_EXPECT(NULL, inorm_adain_modulate(NULL, x, pnc, NULL, NULL, y), INVALID);
    TU_EXPECT(NULL, inorm_stats(NULL, x, NULL, pnc, pnc2), INVALID);
    TU_EXPECT(NULL, inorm_context_finish(NULL), INVALID);
    inorm_tensor_desc d = tu_desc(1, 1, 1, 1);
    inorm_tensor *t = (inorm_tensor *)&dummy;
    TU_EXPECT(NULL, inorm_tensor_create(NULL, &d, &t), INVALID);
    ck_assert_msg(t == NULL, "a failed tensor_create left *out non-NULL");

    /* info: out untouched on failure */
    inorm_device_info info, pattern;
    memset(&info, 0xA5, sizeof info);
    memset(&pattern, 0xA5, sizeof pattern);
    TU_EXPECT(NULL, inorm_context_info(NULL, &info), INVALID);
    ck_assert_msg(memcmp(&info, &pattern, sizeof info) == 0,
                  "context_info(NULL ctx) wrote its out parameter");
    TU_EXPECT(ctx, inorm_context_info(ctx, NULL), INVALID);
    TU_EXPECT(NULL, inorm_enumerate_devices(NULL, NULL), INVALID);

    /* NULL tensors in ops */
    TU_EXPECT(ctx, inorm_instance_norm(ctx, NULL, NULL, NULL, NULL, y), INVALID);
    TU_EXPECT(ctx, inorm_instance_norm(ctx, x, NULL, NULL, NULL, NULL), INVALID);
    TU_EXPECT(ctx, inorm_group_norm(ctx, NULL, 3, NULL, NULL, NULL, y), INVALID);
    TU_EXPECT(ctx, inorm_group_norm(ctx, x, 3, NULL, NULL, NULL, NULL), INVALID);
    TU_EXPECT(ctx, inorm_adain(ctx, NULL, x, 1.0f, NULL, y), INVALID);
    TU_EXPECT(ctx, inorm_adain(ctx, x, NULL, 1.0f, NULL, y), INVALID);
    TU_EXPECT(ctx, inorm_adain(ctx, x, x, 1.0f, NULL, NULL), INVALID);
    TU_EXPECT(ctx, inorm_adain_modulate(ctx, NULL, pnc, NULL, NULL, y), INVALID);
    TU_EXPECT(ctx, inorm_adain_modulate(ctx, x, NULL, NULL, NULL, y), INVALID);
    TU_EXPECT(ctx, inorm_adain_modulate(ctx, x, pnc, NULL, NULL, NULL), INVALID);
    TU_EXPECT(ctx, inorm_stats(ctx, NULL, NULL, pnc, pnc2), INVALID);

    /* tensors */
    t = (inorm_tensor *)&dummy;
    TU_EXPECT(ctx, inorm_tensor_create(ctx, NULL, &t), INVALID);
    ck_assert_msg(t == NULL, "a failed tensor_create left *out non-NULL");
    TU_EXPECT(ctx, inorm_tensor_create(ctx, &d, NULL), INVALID);
    float buf[120];
    memset(buf, 0, sizeof buf);
    TU_EXPECT(NULL, inorm_tensor_write(NULL, buf, 4), INVALID);
    TU_EXPECT(NULL, inorm_tensor_read(NULL, buf, 4), INVALID);
    TU_EXPECT(ctx, inorm_tensor_write(x, NULL, sizeof buf), INVALID);
    TU_EXPECT(ctx, inorm_tensor_read(x, NULL, sizeof buf), INVALID);
    inorm_tensor_desc got = tu_desc(9, 9, 9, 9);
    TU_EXPECT(NULL, inorm_tensor_get_desc(NULL, &got), INVALID);
    ck_assert_msg(got.n == 9 && got.w == 9, "tensor_get_desc(NULL) wrote its out parameter");
    TU_EXPECT(ctx, inorm_tensor_get_desc(x, NULL), INVALID);
    ck_assert_msg(inorm_tensor_desc_bytes(NULL) == 0, "tensor_desc_bytes(NULL) != 0");

    /* NULL is ignored by the destroyers */
    inorm_tensor_destroy(NULL);
    inorm_context_destroy(NULL);

    still_works(ctx);
    tu_ctx_destroy(ctx);
}
END_TEST

/* ---------------------------------------------------------- tensor descs -- */

static void expect_bad_desc(inorm_context *ctx, inorm_tensor_desc d, const char *what)
{
    ck_assert_msg(inorm_tensor_desc_bytes(&d) == 0, "tensor_desc_bytes(%s) = %zu, want 0", what,
                  inorm_tensor_desc_bytes(&d));
    int dummy;
    inorm_tensor *t = (inorm_tensor *)&dummy;
    inorm_status st = inorm_tensor_create(ctx, &d, &t);
    ck_assert_msg(st == INVALID, "tensor_create(%s) returned %s, want INVALID_ARGUMENT", what,
                  inorm_status_string(st));
    ck_assert_msg(t == NULL, "tensor_create(%s) failed but left *out non-NULL", what);
    ck_assert_msg(inorm_context_error(ctx)[0], "tensor_create(%s) failed without error text", what);
}

START_TEST(bad_descs)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    for (int k = 0; k < 4; k++) {
        inorm_tensor_desc d = tu_desc(2, 3, 4, 5);
        uint32_t *f[4] = {&d.n, &d.c, &d.h, &d.w};
        *f[k] = 0;
        expect_bad_desc(ctx, d, tu_fmt("zero dimension %d (%ux%ux%ux%u)", k, d.n, d.c, d.h, d.w));
    }
    ck_assert_msg(inorm_tensor_desc_bytes(&(inorm_tensor_desc){2, 3, 4, 5, INORM_FLOAT32, INORM_NCHW}) ==
                      2 * 3 * 4 * 5 * 4,
                  "tensor_desc_bytes(2x3x4x5 f32) != 480");
    ck_assert_msg(inorm_tensor_desc_bytes(&(inorm_tensor_desc){2, 3, 4, 5, INORM_FLOAT16, INORM_NCHW}) ==
                      2 * 3 * 4 * 5 * 2,
                  "tensor_desc_bytes(2x3x4x5 f16) != 240");

    inorm_tensor_desc d = tu_desc(2, 3, 4, 5);
    d.dtype = (inorm_dtype)7;
    expect_bad_desc(ctx, d, "dtype 7");
    d = tu_desc(2, 3, 4, 5);
    d.layout = (inorm_layout)9;
    expect_bad_desc(ctx, d, "layout 9");

    if (sizeof(size_t) == 8) {
        /* 65535^4 = 1.8446e19 elements fits in 64 bits; times 4 bytes it does not */
        expect_bad_desc(ctx, tu_desc(65535, 65535, 65535, 65535), "65535^4 float32 (bytes overflow)");
        d = tu_desc(65535, 65535, 65535, 65535);
        d.dtype = INORM_FLOAT16;
        expect_bad_desc(ctx, d, "65535^4 float16 (bytes overflow)");
        /* 2^62 elements * 4 bytes = 2^64: wraps to exactly 0 */
        expect_bad_desc(ctx, tu_desc(65536, 65536, 65536, 16384), "2^62 float32 (bytes wrap to 0)");
        /* the element count itself overflows */
        expect_bad_desc(ctx, tu_desc(UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX),
                        "UINT32_MAX^4 (count overflows)");
        expect_bad_desc(ctx, tu_desc(UINT32_MAX, UINT32_MAX, UINT32_MAX, 2), "2 * UINT32_MAX^3");
        /* 2^63 bytes does not overflow: a valid desc that cannot be allocated */
        d = tu_desc(65536, 65536, 65536, 8192);
        ck_assert_msg(inorm_tensor_desc_bytes(&d) == ((size_t)1 << 63),
                      "tensor_desc_bytes(2^61 float32) = %zu, want 2^63", inorm_tensor_desc_bytes(&d));
        int dummy;
        inorm_tensor *t = (inorm_tensor *)&dummy;
        inorm_status st = inorm_tensor_create(ctx, &d, &t);
        ck_assert_msg(st == INORM_ERROR_OUT_OF_HOST_MEMORY || st == INORM_ERROR_OUT_OF_DEVICE_MEMORY ||
                          st == INVALID || st == INORM_ERROR_UNSUPPORTED,
                      "tensor_create(2^63 bytes) returned %s", inorm_status_string(st));
        ck_assert_msg(t == NULL, "tensor_create(2^63 bytes) failed but left *out non-NULL");
        ck_assert_msg(inorm_context_error(ctx)[0], "tensor_create(2^63 bytes): no error text");
    }

    inorm_device_info info;
    TU_OK(ctx, inorm_context_info(ctx, &info));
    if (be == INORM_BACKEND_VULKAN) {
        /* one element more than maxStorageBufferRange is refused ... */
        uint64_t range = info.max_storage_buffer_range;
        ck_assert_msg(range >= ((uint64_t)1 << 27), "max_storage_buffer_range %llu < 2^27 (Vulkan minimum)",
                      (unsigned long long)range);
        uint64_t elems = range / 4 + 1;
        if (elems <= UINT32_MAX) {
            d = tu_desc(1, 1, 1, (uint32_t)elems);
            int dummy;
            inorm_tensor *t = (inorm_tensor *)&dummy;
            inorm_status st = inorm_tensor_create(ctx, &d, &t);
            ck_assert_msg(st == INVALID || st == INORM_ERROR_UNSUPPORTED,
                          "Vulkan tensor of %llu bytes > maxStorageBufferRange %llu: %s, want "
                          "INVALID_ARGUMENT or UNSUPPORTED",
                          (unsigned long long)elems * 4, (unsigned long long)range,
                          inorm_status_string(st));
            ck_assert_msg(t == NULL, "refused big tensor left *out non-NULL");
            ck_assert_msg(inorm_context_error(ctx)[0], "refused big tensor: no error text");
        }
        /* ... and exactly maxStorageBufferRange is accepted (when it is small enough to try) */
        if (range <= ((uint64_t)256 << 20)) {
            d = tu_desc(1, 1, 1, (uint32_t)(range / 4));
            inorm_tensor *t = NULL;
            TU_OK(ctx, inorm_tensor_create(ctx, &d, &t));
            inorm_tensor_destroy(t);
        }
    }
    still_works(ctx);
    tu_ctx_destroy(ctx);
}
END_TEST

/* --------------------------------------------------------- byte counts -- */

START_TEST(byte_counts)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    inorm_tensor *x = mk(ctx, 2, 3, 4, 5);
    const size_t bytes = 2 * 3 * 4 * 5 * sizeof(float);
    float *buf = tu_floats(240), *back = tu_floats(240);
    for (size_t i = 0; i < 120; i++)
        buf[i] = (float)i;
    TU_OK(ctx, inorm_tensor_write(x, buf, bytes));
    const size_t wrong[] = {0, 1, bytes - 1, bytes - 4, bytes + 1, bytes + 4, 2 * bytes};
    for (size_t k = 0; k < sizeof wrong / sizeof wrong[0]; k++) {
        float junk[240];
        for (size_t i = 0; i < 240; i++)
            junk[i] = -1.0f;
        inorm_status st = inorm_tensor_write(x, junk, wrong[k]);
        ck_assert_msg(st == INVALID, "tensor_write(%zu bytes into a %zu-byte tensor): %s", wrong[k],
                      bytes, inorm_status_string(st));
        ck_assert_msg(inorm_context_error(ctx)[0], "tensor_write wrong size: no error text");
        st = inorm_tensor_read(x, junk, wrong[k]);
        ck_assert_msg(st == INVALID, "tensor_read(%zu bytes of a %zu-byte tensor): %s", wrong[k], bytes,
                      inorm_status_string(st));
        ck_assert_msg(inorm_context_error(ctx)[0], "tensor_read wrong size: no error text");
    }
    /* the refused writes changed nothing */
    TU_OK(ctx, inorm_tensor_read(x, back, bytes));
    ck_assert_msg(memcmp(buf, back, bytes) == 0, "a refused tensor_write changed the tensor");
    free(buf), free(back);
    still_works(ctx);
    tu_ctx_destroy(ctx);
}
END_TEST

/* ------------------------------------------------------ shape mismatch -- */

START_TEST(shape_mismatch)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    /* N = 3 so that a style/scale N of 2 is neither 1 nor N */
    inorm_tensor *x = mk(ctx, 3, 4, 5, 6), *y = mk(ctx, 3, 4, 5, 6);
    fill(ctx, x);
    inorm_tensor *y_swapped = mk(ctx, 3, 4, 6, 5), *y_small = mk(ctx, 3, 4, 5, 5);
    inorm_tensor *y_n = mk(ctx, 1, 4, 5, 6), *y_c = mk(ctx, 3, 2, 5, 6);
    inorm_tensor *g_ok = mk(ctx, 1, 4, 1, 1), *g_c = mk(ctx, 1, 5, 1, 1), *g_n = mk(ctx, 3, 4, 1, 1);
    inorm_tensor *g_hw = mk(ctx, 1, 4, 2, 1), *g_flat = mk(ctx, 1, 1, 1, 4);
    fill(ctx, g_ok);
    inorm_tensor *bad_y[] = {y_swapped, y_small, y_n, y_c};
    const char *bad_y_name[] = {"3x4x6x5", "3x4x5x5", "1x4x5x6", "3x2x5x6"};
    inorm_tensor *bad_g[] = {g_c, g_n, g_hw, g_flat};
    const char *bad_g_name[] = {"1x5x1x1", "3x4x1x1", "1x4x2x1", "1x1x1x4"};

    /* sentinel in y: refused ops must not write */
    float *sent = tu_floats(360), *back = tu_floats(360);
    for (size_t i = 0; i < 360; i++)
        sent[i] = 12345.0f;
    tu_upload(ctx, y, sent, 360);

    for (int k = 0; k < 4; k++) {
        inorm_status st = inorm_instance_norm(ctx, x, NULL, NULL, NULL, bad_y[k]);
        ck_assert_msg(st == INVALID, "instance_norm x 3x4x5x6 into y %s: %s", bad_y_name[k],
                      inorm_status_string(st));
        st = inorm_group_norm(ctx, x, 2, NULL, NULL, NULL, bad_y[k]);
        ck_assert_msg(st == INVALID, "group_norm x 3x4x5x6 into y %s: %s", bad_y_name[k],
                      inorm_status_string(st));
        st = inorm_adain(ctx, x, x, 1.0f, NULL, bad_y[k]);
        ck_assert_msg(st == INVALID, "adain x 3x4x5x6 into y %s: %s", bad_y_name[k],
                      inorm_status_string(st));
        ck_assert_msg(inorm_context_error(ctx)[0], "y %s refused without error text", bad_y_name[k]);
    }
    for (int k = 0; k < 4; k++) {
        inorm_status st = inorm_instance_norm(ctx, x, bad_g[k], NULL, NULL, y);
        ck_assert_msg(st == INVALID, "instance_norm with gamma %s for C=4: %s", bad_g_name[k],
                      inorm_status_string(st));
        st = inorm_instance_norm(ctx, x, g_ok, bad_g[k], NULL, y);
        ck_assert_msg(st == INVALID, "instance_norm with beta %s for C=4: %s", bad_g_name[k],
                      inorm_status_string(st));
        st = inorm_group_norm(ctx, x, 2, bad_g[k], NULL, NULL, y);
        ck_assert_msg(st == INVALID, "group_norm with gamma %s for C=4: %s", bad_g_name[k],
                      inorm_status_string(st));
        st = inorm_group_norm(ctx, x, 2, NULL, bad_g[k], NULL, y);
        ck_assert_msg(st == INVALID, "group_norm with beta %s for C=4: %s", bad_g_name[k],
                      inorm_status_string(st));
        ck_assert_msg(inorm_context_error(ctx)[0], "no error text");
    }

    /* adain: style of other C, style N neither 1 nor N */
    inorm_tensor *s_c = mk(ctx, 3, 5, 5, 6), *s_n2 = mk(ctx, 2, 4, 5, 6), *s_n4 = mk(ctx, 4, 4, 3, 3);
    TU_EXPECT(ctx, inorm_adain(ctx, x, s_c, 1.0f, NULL, y), INVALID);
    TU_EXPECT(ctx, inorm_adain(ctx, x, s_n2, 1.0f, NULL, y), INVALID);
    TU_EXPECT(ctx, inorm_adain(ctx, x, s_n4, 1.0f, NULL, y), INVALID);

    /* adain_modulate: scale/bias not N x C x 1 x 1 */
    inorm_tensor *sc_ok = mk(ctx, 3, 4, 1, 1);
    fill(ctx, sc_ok);
    inorm_tensor *sc_bad[] = {mk(ctx, 1, 4, 1, 1), mk(ctx, 3, 5, 1, 1), mk(ctx, 3, 4, 1, 2),
                              mk(ctx, 2, 4, 1, 1), mk(ctx, 1, 1, 3, 4)};
    for (size_t k = 0; k < sizeof sc_bad / sizeof sc_bad[0]; k++) {
        TU_EXPECT(ctx, inorm_adain_modulate(ctx, x, sc_bad[k], NULL, NULL, y), INVALID);
        TU_EXPECT(ctx, inorm_adain_modulate(ctx, x, sc_ok, sc_bad[k], NULL, y), INVALID);
    }
    TU_EXPECT(ctx, inorm_adain_modulate(ctx, x, sc_ok, NULL, NULL, y_small), INVALID);

    /* stats: outputs not N x C x 1 x 1 */
    inorm_tensor *m_ok = mk(ctx, 3, 4, 1, 1);
    for (size_t k = 0; k < sizeof sc_bad / sizeof sc_bad[0]; k++) {
        TU_EXPECT(ctx, inorm_stats(ctx, x, NULL, sc_bad[k], NULL), INVALID);
        TU_EXPECT(ctx, inorm_stats(ctx, x, NULL, NULL, sc_bad[k]), INVALID);
        TU_EXPECT(ctx, inorm_stats(ctx, x, NULL, m_ok, sc_bad[k]), INVALID);
    }
    TU_EXPECT(ctx, inorm_stats(ctx, x, NULL, y, NULL), INVALID);

    tu_download(ctx, y, back, 360);
    ck_assert_msg(memcmp(sent, back, 360 * sizeof(float)) == 0, "a refused op wrote its output");
    free(sent), free(back);
    still_works(ctx);
    tu_ctx_destroy(ctx);
}
END_TEST

/* ------------------------------------------------------------ aliasing -- */

/* y may be x, but no other input. */
START_TEST(output_aliases_input)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    inorm_tensor *x = mk(ctx, 2, 3, 4, 5), *st = mk(ctx, 2, 3, 4, 5);
    fill(ctx, x);
    fill(ctx, st);
    TU_EXPECT(ctx, inorm_adain(ctx, x, st, 1.0f, NULL, st), INVALID);
    /* 1 x C x 1 x 1 content: gamma/beta have its shape */
    inorm_tensor *x1 = mk(ctx, 1, 3, 1, 1), *g = mk(ctx, 1, 3, 1, 1), *b = mk(ctx, 1, 3, 1, 1);
    fill(ctx, x1), fill(ctx, g), fill(ctx, b);
    TU_EXPECT(ctx, inorm_instance_norm(ctx, x1, g, NULL, NULL, g), INVALID);
    TU_EXPECT(ctx, inorm_instance_norm(ctx, x1, g, b, NULL, b), INVALID);
    TU_EXPECT(ctx, inorm_group_norm(ctx, x1, 1, g, b, NULL, g), INVALID);
    /* N x C x 1 x 1 content: scale/bias have its shape */
    inorm_tensor *x2 = mk(ctx, 2, 3, 1, 1), *sc = mk(ctx, 2, 3, 1, 1), *bi = mk(ctx, 2, 3, 1, 1);
    fill(ctx, x2), fill(ctx, sc), fill(ctx, bi);
    TU_EXPECT(ctx, inorm_adain_modulate(ctx, x2, sc, bi, NULL, sc), INVALID);
    TU_EXPECT(ctx, inorm_adain_modulate(ctx, x2, sc, bi, NULL, bi), INVALID);
    /* in place is fine */
    TU_OK(ctx, inorm_adain(ctx, x, st, 1.0f, NULL, x));
    TU_OK(ctx, inorm_instance_norm(ctx, x1, g, b, NULL, x1));
    TU_OK(ctx, inorm_adain_modulate(ctx, x2, sc, bi, NULL, x2));
    still_works(ctx);
    tu_ctx_destroy(ctx);
}
END_TEST

/* -------------------------------------------------------------- params -- */

START_TEST(bad_params)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    inorm_tensor *x = mk(ctx, 2, 6, 4, 5), *y = mk(ctx, 2, 6, 4, 5), *sc = mk(ctx, 2, 6, 1, 1);
    inorm_tensor *m = mk(ctx, 2, 6, 1, 1);
    fill(ctx, x), fill(ctx, sc);

    const float bad_eps[] = {-1.0f, -1e-30f, NAN, INFINITY, -INFINITY};
    for (size_t k = 0; k < sizeof bad_eps / sizeof bad_eps[0]; k++) {
        inorm_norm_params p = {.eps = bad_eps[k], .unbiased = 0};
        const char *w = tu_fmt("eps %g", (double)bad_eps[k]);
        inorm_status st;
        st = inorm_instance_norm(ctx, x, NULL, NULL, &p, y);
        ck_assert_msg(st == INVALID, "instance_norm %s: %s", w, inorm_status_string(st));
        EXPECT_MENTIONS(ctx, "eps");
        st = inorm_group_norm(ctx, x, 2, NULL, NULL, &p, y);
        ck_assert_msg(st == INVALID, "group_norm %s: %s", w, inorm_status_string(st));
        st = inorm_adain(ctx, x, x, 1.0f, &p, y);
        ck_assert_msg(st == INVALID, "adain %s: %s", w, inorm_status_string(st));
        st = inorm_adain_modulate(ctx, x, sc, NULL, &p, y);
        ck_assert_msg(st == INVALID, "adain_modulate %s: %s", w, inorm_status_string(st));
        st = inorm_stats(ctx, x, &p, m, NULL);
        ck_assert_msg(st == INVALID, "stats %s: %s", w, inorm_status_string(st));
        ck_assert_msg(inorm_context_error(ctx)[0], "%s: no error text", w);
    }
    /* eps == 0 is allowed */
    inorm_norm_params p0 = {.eps = 0.0f, .unbiased = 0};
    TU_OK(ctx, inorm_instance_norm(ctx, x, NULL, NULL, &p0, y));

    const float bad_alpha[] = {NAN, INFINITY, -INFINITY};
    for (size_t k = 0; k < sizeof bad_alpha / sizeof bad_alpha[0]; k++) {
        inorm_status st = inorm_adain(ctx, x, x, bad_alpha[k], NULL, y);
        ck_assert_msg(st == INVALID, "adain alpha %g: %s", (double)bad_alpha[k], inorm_status_string(st));
        ck_assert_msg(inorm_context_error(ctx)[0], "adain alpha %g: no error text", (double)bad_alpha[k]);
        EXPECT_MENTIONS(ctx, "alpha");
    }

    /* groups: 0, not dividing C = 6, more than C */
    const uint32_t bad_groups[] = {0, 4, 5, 7, 12, UINT32_MAX};
    for (size_t k = 0; k < sizeof bad_groups / sizeof bad_groups[0]; k++) {
        inorm_status st = inorm_group_norm(ctx, x, bad_groups[k], NULL, NULL, NULL, y);
        ck_assert_msg(st == INVALID, "group_norm groups %u with C = 6: %s", bad_groups[k],
                      inorm_status_string(st));
        ck_assert_msg(inorm_context_error(ctx)[0], "groups %u: no error text", bad_groups[k]);
        EXPECT_MENTIONS(ctx, "groups");
    }
    for (uint32_t g = 1; g <= 6; g++)
        if (6 % g == 0)
            TU_OK(ctx, inorm_group_norm(ctx, x, g, NULL, NULL, NULL, y));

    /* stats with both outputs NULL */
    TU_EXPECT(ctx, inorm_stats(ctx, x, NULL, NULL, NULL), INVALID);

    still_works(ctx);
    tu_ctx_destroy(ctx);
}
END_TEST

/* Unbiased variance of a one-element plane is 0/0: refused. */
START_TEST(unbiased_single_element)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    inorm_norm_params pu = {.eps = 1e-5f, .unbiased = 1};
    inorm_tensor *x = mk(ctx, 2, 3, 1, 1), *y = mk(ctx, 2, 3, 1, 1), *sc = mk(ctx, 2, 3, 1, 1);
    inorm_tensor *m = mk(ctx, 2, 3, 1, 1);
    inorm_tensor *big = mk(ctx, 2, 3, 4, 4), *bigy = mk(ctx, 2, 3, 4, 4);
    fill(ctx, x), fill(ctx, sc), fill(ctx, big);
    TU_EXPECT(ctx, inorm_instance_norm(ctx, x, NULL, NULL, &pu, y), INVALID);
    TU_EXPECT(ctx, inorm_group_norm(ctx, x, 3, NULL, NULL, &pu, y), INVALID);
    TU_EXPECT(ctx, inorm_adain_modulate(ctx, x, sc, NULL, &pu, y), INVALID);
    TU_EXPECT(ctx, inorm_stats(ctx, x, &pu, m, NULL), INVALID);
    TU_EXPECT(ctx, inorm_adain(ctx, x, big, 1.0f, &pu, y), INVALID);   /* content plane of 1 */
    TU_EXPECT(ctx, inorm_adain(ctx, big, x, 1.0f, &pu, bigy), INVALID); /* style plane of 1 */
    /* groups of 3 channels x 1 element = 3 values: allowed */
    TU_OK(ctx, inorm_group_norm(ctx, x, 1, NULL, NULL, &pu, y));
    /* biased on the same planes: allowed */
    TU_OK(ctx, inorm_instance_norm(ctx, x, NULL, NULL, NULL, y));
    TU_OK(ctx, inorm_adain(ctx, big, x, 1.0f, NULL, bigy));
    still_works(ctx);
    tu_ctx_destroy(ctx);
}
END_TEST

/* ---------------------------------------------------- other contexts -- */

static void expect_foreign_refused(inorm_context *a, inorm_context *b, const char *what)
{
    inorm_tensor *x = mk(a, 2, 3, 4, 5), *y = mk(a, 2, 3, 4, 5), *g = mk(a, 1, 3, 1, 1);
    inorm_tensor *sc = mk(a, 2, 3, 1, 1), *m = mk(a, 2, 3, 1, 1);
    inorm_tensor *fx = mk(b, 2, 3, 4, 5), *fg = mk(b, 1, 3, 1, 1), *fsc = mk(b, 2, 3, 1, 1);
    fill(a, x), fill(a, g), fill(a, sc), fill(b, fx), fill(b, fg), fill(b, fsc);
    struct {
        inorm_status st;
        const char *call;
    } r[] = {
        {inorm_instance_norm(a, fx, NULL, NULL, NULL, y), "instance_norm(x foreign)"},
        {inorm_instance_norm(a, x, NULL, NULL, NULL, fx), "instance_norm(y foreign)"},
        {inorm_instance_norm(a, x, fg, NULL, NULL, y), "instance_norm(gamma foreign)"},
        {inorm_instance_norm(a, x, g, fg, NULL, y), "instance_norm(beta foreign)"},
        {inorm_group_norm(a, x, 3, fg, NULL, NULL, y), "group_norm(gamma foreign)"},
        {inorm_group_norm(a, fx, 3, NULL, NULL, NULL, fx), "group_norm(x, y foreign)"},
        {inorm_adain(a, x, fx, 1.0f, NULL, y), "adain(style foreign)"},
        {inorm_adain(a, fx, x, 1.0f, NULL, y), "adain(content foreign)"},
        {inorm_adain_modulate(a, x, fsc, NULL, NULL, y), "adain_modulate(scale foreign)"},
        {inorm_adain_modulate(a, x, sc, fsc, NULL, y), "adain_modulate(bias foreign)"},
        {inorm_stats(a, fx, NULL, m, NULL), "stats(x foreign)"},
        {inorm_stats(a, x, NULL, fsc, NULL), "stats(mean foreign)"},
        {inorm_stats(a, x, NULL, m, fsc), "stats(std foreign)"},
    };
    for (size_t k = 0; k < sizeof r / sizeof r[0]; k++) {
        ck_assert_msg(r[k].st == INVALID, "%s: %s with a tensor of another context returned %s", what,
                      r[k].call, inorm_status_string(r[k].st));
    }
    ck_assert_msg(inorm_context_error(a)[0], "%s: refusals left no error text", what);
    inorm_tensor_destroy(fx);
    inorm_tensor_destroy(fg);
    inorm_tensor_destroy(fsc);
}

START_TEST(other_context)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(a, be);
    inorm_context *b = tu_ctx_create(be);
    ck_assert_ptr_nonnull(b);
    expect_foreign_refused(a, b, tu_fmt("two %s contexts", tu_backend_name(be)));
    still_works(a);
    still_works(b);
    tu_ctx_destroy(b);
    tu_ctx_destroy(a);
}
END_TEST

/* A CPU context and a Vulkan context: tensors do not cross. */
START_TEST(other_backend)
{
    inorm_context *v = tu_ctx_create(INORM_BACKEND_VULKAN);
    if (!v)
        return;
    inorm_context *c = tu_ctx_create(INORM_BACKEND_CPU);
    expect_foreign_refused(c, v, "CPU context with Vulkan tensors");
    expect_foreign_refused(v, c, "Vulkan context with CPU tensors");
    still_works(c);
    still_works(v);
    tu_ctx_destroy(c);
    tu_ctx_destroy(v);
}
END_TEST

/* ---------------------------------------------------------- NaN / Inf -- */

static void assert_plane_nan(const float *y, size_t plane, size_t hw, const char *what)
{
    for (size_t i = 0; i < hw; i++)
        ck_assert_msg(isnan(y[plane * hw + i]), "%s: plane %zu element %zu is %.9g, want NaN", what,
                      plane, i, (double)y[plane * hw + i]);
}

enum nan_op { NAN_INSTANCE, NAN_GROUP, NAN_ADAIN_CONTENT, NAN_ADAIN_STYLE, NAN_STATS };

/* 2x4x6x7 content with a NaN in plane 1 (n0 c1), +Inf in plane 6 (n1 c2) and
 * -Inf in plane 4 (n1 c0): those planes' outputs are all NaN (inorm.h), the
 * other planes match the oracle. */
static void nan_case(inorm_backend be, enum nan_op op)
{
    TU_CTX(ctx, be);
    const char *bn = tu_backend_name(be);
    o_shape s = tu_shape(2, 4, 6, 7), ps = tu_shape(2, 4, 1, 1);
    size_t n = o_count(s), hw = o_plane(s), nc = 8;
    float *x = tu_floats(n), *y = tu_floats(n), *m = tu_floats(nc), *sd = tu_floats(nc);
    double *ref = tu_doubles(n), *mag = tu_doubles(n);
    double *rm = tu_doubles(nc), *rs = tu_doubles(nc), *rsig = tu_doubles(nc);
    tu_rng r;
    tu_rng_seed(&r, 77);
    tu_fill_uniform(&r, x, n, -2, 3);
    x[1 * hw + 5] = NAN;
    x[6 * hw + 0] = INFINITY;
    x[4 * hw + hw - 1] = -INFINITY;
    const size_t bad_planes[] = {1, 4, 6};
    inorm_tensor *tx = tu_tensor(ctx, s, x), *ty = tu_tensor(ctx, s, NULL);

    switch (op) {
    case NAN_INSTANCE:
        TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, NULL, ty));
        tu_download(ctx, ty, y, n);
        for (size_t k = 0; k < 3; k++)
            assert_plane_nan(y, bad_planes[k], hw,
                             tu_fmt("instance_norm [%s] plane with NaN (1), -Inf (4) or +Inf (6)", bn));
        oracle_instance_norm(s, x, NULL, NULL, 1e-5f, 0, ref, mag); /* NaN for those planes */
        tu_assert_close(tu_fmt("instance_norm [%s] other planes next to NaN/Inf planes", bn), s, y,
                        ref, mag);
        break;
    case NAN_GROUP: {
        /* 2 groups of 2 channels: planes 1, 4, 6 poison groups (n0,g0), (n1,g0), (n1,g1) */
        TU_OK(ctx, inorm_group_norm(ctx, tx, 2, NULL, NULL, NULL, ty));
        tu_download(ctx, ty, y, n);
        const size_t gn_bad[] = {0, 1, 4, 5, 6, 7};
        for (size_t k = 0; k < 6; k++)
            assert_plane_nan(y, gn_bad[k], hw, tu_fmt("group_norm [%s] group holding NaN/Inf", bn));
        oracle_group_norm(s, x, 2, NULL, NULL, 1e-5f, 0, ref, mag);
        tu_assert_close(tu_fmt("group_norm [%s] groups next to NaN/Inf groups", bn), s, y, ref, mag);
        break;
    }
    case NAN_ADAIN_CONTENT: {
        float *st = tu_floats(n);
        tu_fill_uniform(&r, st, n, 1, 2);
        inorm_tensor *tst = tu_tensor(ctx, s, st);
        TU_OK(ctx, inorm_adain(ctx, tx, tst, 1.0f, NULL, ty));
        tu_download(ctx, ty, y, n);
        for (size_t k = 0; k < 3; k++)
            assert_plane_nan(y, bad_planes[k], hw, tu_fmt("adain [%s] NaN/Inf content plane", bn));
        oracle_adain(s, x, s, st, 1.0f, 1e-5f, 0, ref, mag);
        tu_assert_close(tu_fmt("adain [%s] planes next to NaN/Inf content", bn), s, y, ref, mag);
        free(st);
        break;
    }
    case NAN_ADAIN_STYLE: {
        /* NaN in a style plane (style N 1, c 3) poisons channel 3 of every n */
        o_shape ss = tu_shape(1, 4, 3, 3);
        float sv[36];
        for (int i = 0; i < 36; i++)
            sv[i] = (float)(i % 5);
        sv[3 * 9 + 4] = NAN;
        float *clean = tu_floats(n);
        tu_fill_uniform(&r, clean, n, -1, 1);
        inorm_tensor *tclean = tu_tensor(ctx, s, clean), *tss = tu_tensor(ctx, ss, sv);
        TU_OK(ctx, inorm_adain(ctx, tclean, tss, 1.0f, NULL, ty));
        tu_download(ctx, ty, y, n);
        assert_plane_nan(y, 3, hw, tu_fmt("adain [%s] NaN style plane, n0", bn));
        assert_plane_nan(y, 7, hw, tu_fmt("adain [%s] NaN style plane, n1", bn));
        oracle_adain(s, clean, ss, sv, 1.0f, 1e-5f, 0, ref, mag);
        tu_assert_close(tu_fmt("adain [%s] planes next to a NaN style plane", bn), s, y, ref, mag);
        free(clean);
        break;
    }
    case NAN_STATS: {
        /* the poisoned planes have a NaN or Inf mean or std; others are right */
        inorm_tensor *tm = tu_tensor(ctx, ps, NULL), *tsd = tu_tensor(ctx, ps, NULL);
        TU_OK(ctx, inorm_stats(ctx, tx, NULL, tm, tsd));
        tu_download(ctx, tm, m, nc);
        tu_download(ctx, tsd, sd, nc);
        oracle_stats(s, x, 1e-5f, 0, rm, rs, rsig);
        for (size_t k = 0; k < 3; k++) {
            size_t p = bad_planes[k];
            ck_assert_msg(!isfinite(m[p]) || !isfinite(sd[p]),
                          "stats [%s]: plane %zu holds NaN/Inf but mean %.9g and std %.9g are finite",
                          bn, p, (double)m[p], (double)sd[p]);
            m[p] = sd[p] = NAN; /* excluded from the comparison below */
            rm[p] = rs[p] = NAN;
        }
        tu_assert_stats(tu_fmt("stats [%s] planes next to NaN/Inf planes", bn), ps, m, sd, rm, rs,
                        rsig);
        break;
    }
    }
    free(x), free(y), free(m), free(sd), free(ref), free(mag), free(rm), free(rs), free(rsig);
    tu_ctx_destroy(ctx);
}

/* Tiny planes take fused kernels on Vulkan, where the plane's first value is
 * also its shift: a compiler may fold x - shift to 0 for that element (and
 * 0 * inf to 0) unless told not to (this failed for NHWC before the shader
 * said `precise`). eps == 0 on constant planes must give NaN everywhere
 * (inorm.h), and a NaN at a plane's first pixel must poison that plane and
 * no other; instance and group norm, FLOAT32 and FLOAT16, NCHW and NHWC,
 * one-pixel planes included. */
START_TEST(nan_tiny_planes)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    const char *bn = tu_backend_name(be);
    const o_shape shapes[] = {{5, 1, 1, 1}, {5, 4, 1, 1}, {3, 8, 2, 2}, {2, 3, 2, 2}, {2, 12, 4, 4}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const o_shape sh = shapes[si];
        const size_t n = o_count(sh), hw = o_plane(sh);
        for (int f = 0; f < 4; f++) {
            const inorm_dtype dtype = f % 2 ? INORM_FLOAT16 : INORM_FLOAT32;
            const inorm_layout layout = f / 2 ? INORM_NHWC : INORM_NCHW;
            for (int group = 0; group < 2; group++) {
                const uint32_t groups = group ? (sh.c % 2 == 0 ? sh.c / 2 : 1) : sh.c;
                const size_t cps = sh.c / groups;
                float *x = tu_floats(n), *y = tu_floats(n);
                inorm_tensor *ty = tu_tensor_fmt(ctx, sh, dtype, layout, NULL);
                /* constant planes, eps 0: every output NaN */
                for (size_t i = 0; i < n; i++)
                    x[i] = 2.5f;
                inorm_tensor *tx = tu_tensor_fmt(ctx, sh, dtype, layout, x);
                inorm_norm_params p0 = {.eps = 0.0f};
                TU_OK(ctx, inorm_group_norm(ctx, tx, groups, NULL, NULL, &p0, ty));
                tu_download_fmt(ctx, ty, y, n);
                for (size_t i = 0; i < n; i++)
                    ck_assert_msg(isnan(y[i]), "%s [%s] %s %s %s, eps 0 on constant planes: element %zu is %g, want NaN",
                                  group ? "group_norm" : "instance_norm", bn, tu_shape_str(sh), tu_dtype_name(dtype),
                                  tu_layout_name(layout), i, (double)y[i]);
                /* varied planes, a NaN at the first pixel of channel 0 of sample 0 */
                for (size_t i = 0; i < n; i++)
                    x[i] = (float)((i * 7) % 5) - 2.0f;
                x[0] = NAN;
                tu_upload_fmt(ctx, tx, x, n);
                TU_OK(ctx, inorm_group_norm(ctx, tx, groups, NULL, NULL, NULL, ty));
                tu_download_fmt(ctx, ty, y, n);
                for (size_t i = 0; i < n; i++) {
                    const size_t sample = i / (hw * sh.c);
                    const size_t channel = layout == INORM_NHWC ? i % sh.c : i / hw % sh.c;
                    const int poisoned = sample == 0 && channel < cps;  /* the segment holding x[0] */
                    ck_assert_msg(poisoned ? isnan(y[i]) : isfinite(y[i]),
                                  "%s [%s] %s %s %s, NaN at element 0: element %zu is %g, want %s",
                                  group ? "group_norm" : "instance_norm", bn, tu_shape_str(sh), tu_dtype_name(dtype),
                                  tu_layout_name(layout), i, (double)y[i], poisoned ? "NaN" : "a number");
                }
                inorm_tensor_destroy(tx);
                inorm_tensor_destroy(ty);
                free(x);
                free(y);
            }
        }
    }
    tu_ctx_destroy(ctx);
}
END_TEST

START_TEST(nan_instance_norm) { nan_case(tu_backend(_i), NAN_INSTANCE); }
END_TEST
START_TEST(nan_group_norm) { nan_case(tu_backend(_i), NAN_GROUP); }
END_TEST
START_TEST(nan_adain_content) { nan_case(tu_backend(_i), NAN_ADAIN_CONTENT); }
END_TEST
START_TEST(nan_adain_style) { nan_case(tu_backend(_i), NAN_ADAIN_STYLE); }
END_TEST
START_TEST(nan_stats) { nan_case(tu_backend(_i), NAN_STATS); }
END_TEST

/* ------------------------------------------------ context info, devices -- */

START_TEST(context_info_and_devices)
{
    inorm_backend be = tu_backend(_i);
    TU_CTX(ctx, be);
    inorm_device_info info;
    TU_OK(ctx, inorm_context_info(ctx, &info));
    ck_assert_msg(memchr(info.name, '\0', sizeof info.name) && memchr(info.driver_name, '\0', 256) &&
                      memchr(info.driver_info, '\0', 256),
                  "info strings not NUL-terminated");
    if (be == INORM_BACKEND_VULKAN) {
        ck_assert_msg(info.name[0], "Vulkan device without a name");
        ck_assert_msg(info.api_version >= (1u << 22), "api_version 0x%x < Vulkan 1.0", info.api_version);
        ck_assert_msg(info.subgroup_size == 0 || (info.subgroup_size & (info.subgroup_size - 1)) == 0,
                      "subgroup_size %u not a power of two", info.subgroup_size);
        ck_assert_msg(!info.subgroup_ops_used || info.subgroup_arithmetic,
                      "subgroup ops used on a device without subgroup arithmetic");
        printf("Vulkan device: %s (%s, %s), type %d, api 0x%x, subgroup %u, arithmetic %d, used %d, "
               "fp16 storage %d, validation %d, max range %llu\n",
               info.name, info.driver_name, info.driver_info, (int)info.type, info.api_version,
               info.subgroup_size, info.subgroup_arithmetic, info.subgroup_ops_used,
               info.float16_storage, info.validation_enabled,
               (unsigned long long)info.max_storage_buffer_range);
        if (!info.validation_enabled)
            printf("note: the validation layer is not active (set INORM_REQUIRE_VALIDATION=1 to "
                   "make this a failure)\n");

        uint32_t count = 0;
        TU_OK(NULL, inorm_enumerate_devices(NULL, &count));
        ck_assert_msg(count >= 1, "a Vulkan context exists but enumerate_devices counts %u", count);
        inorm_device_info *list = (inorm_device_info *)tu_malloc((count + 1) * sizeof *list);
        uint32_t cap = count + 1;
        TU_OK(NULL, inorm_enumerate_devices(list, &cap));
        ck_assert_msg(cap == count, "enumerate_devices wrote %u of %u devices", cap, count);
        for (uint32_t i = 0; i < count; i++) {
            ck_assert_msg(list[i].backend == INORM_BACKEND_VULKAN,
                          "enumerated device %u has backend %d", i, (int)list[i].backend);
            ck_assert_msg(list[i].type != INORM_DEVICE_TYPE_CPU_PATH,
                          "enumerate_devices lists the CPU path");
            ck_assert_msg(list[i].name[0], "enumerated device %u has no name", i);
        }
        /* AUTO with no device asked for passes over software devices
         * (lavapipe): the CPU path is faster on the same processor. With
         * only software devices it is the CPU path, saying why; asked for
         * by index, a software device is used. */
        int hardware = -1, software = -1;
        for (uint32_t i = 0; i < count; i++) {
            if (list[i].type == INORM_DEVICE_TYPE_CPU && software < 0)
                software = (int)i;
            else if (list[i].type != INORM_DEVICE_TYPE_CPU && hardware < 0)
                hardware = (int)i;
        }
        if (!getenv("INORM_DEVICE") && !getenv("INORM_BACKEND")) {
            inorm_context_desc d = INORM_CONTEXT_DESC_DEFAULT;
            d.backend = INORM_BACKEND_AUTO;
            inorm_context *c_auto = NULL;
            TU_OK(NULL, inorm_context_create(&d, &c_auto));
            inorm_device_info auto_info;
            TU_OK(c_auto, inorm_context_info(c_auto, &auto_info));
            if (hardware >= 0) {
                ck_assert_msg(auto_info.backend == INORM_BACKEND_VULKAN && auto_info.type != INORM_DEVICE_TYPE_CPU,
                              "AUTO with a hardware device took %s (type %d)", auto_info.name, (int)auto_info.type);
            } else {
                ck_assert_msg(auto_info.backend == INORM_BACKEND_CPU,
                              "AUTO with only software Vulkan devices took %s, not the CPU path", auto_info.name);
                ck_assert_msg(strstr(auto_info.driver_info, "software Vulkan device"),
                              "AUTO's fallback does not say why: \"%s\"", auto_info.driver_info);
            }
            inorm_context_destroy(c_auto);
            if (software >= 0) {
                d.device_index = software;
                inorm_context *c_soft = NULL;
                TU_OK(NULL, inorm_context_create(&d, &c_soft));
                TU_OK(c_soft, inorm_context_info(c_soft, &auto_info));
                ck_assert_msg(auto_info.backend == INORM_BACKEND_VULKAN && auto_info.type == INORM_DEVICE_TYPE_CPU,
                              "AUTO with device_index %d (a software device) took %s", software, auto_info.name);
                inorm_context_destroy(c_soft);
            }
        }
        cap = 1;
        TU_OK(NULL, inorm_enumerate_devices(list, &cap));
        ck_assert_msg(cap == 1, "enumerate_devices with capacity 1 wrote %u", cap);
        free(list);

        /* a device index past the end: no such device */
        if (!getenv("INORM_DEVICE")) {
            inorm_context_desc d = INORM_CONTEXT_DESC_DEFAULT;
            d.backend = INORM_BACKEND_VULKAN;
            d.device_index = (int)count;
            inorm_context *c2 = NULL;
            char msg[256] = "";
            inorm_status st = inorm_context_create_ex(&d, &c2, msg, sizeof msg);
            ck_assert_msg(st == INORM_ERROR_NO_DEVICE || st == INVALID,
                          "device_index %u of %u devices: %s, want NO_DEVICE", count, count,
                          inorm_status_string(st));
            ck_assert_msg(c2 == NULL && msg[0], "device_index out of range: out %p, message \"%s\"",
                          (void *)c2, msg);
        }
    } else {
        ck_assert_int_eq(info.type, INORM_DEVICE_TYPE_CPU_PATH);
        ck_assert_uint_eq(info.api_version, 0);
        ck_assert_uint_eq(info.subgroup_size, 0);
    }
    tu_ctx_destroy(ctx);
}
END_TEST

int main(void)
{
    tu_init();
    Suite *s = suite_create("errors");
    TCase *tc = tcase_create("status_strings");
    tcase_add_test(tc, status_strings);
    suite_add_tcase(s, tc);

    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"null_arguments", null_arguments},
        {"bad_descs", bad_descs},
        {"byte_counts", byte_counts},
        {"shape_mismatch", shape_mismatch},
        {"output_aliases_input", output_aliases_input},
        {"bad_params", bad_params},
        {"unbiased_single_element", unbiased_single_element},
        {"other_context", other_context},
        {"nan_instance_norm", nan_instance_norm},
        {"nan_group_norm", nan_group_norm},
        {"nan_adain_content", nan_adain_content},
        {"nan_adain_style", nan_adain_style},
        {"nan_stats", nan_stats},
        {"nan_tiny_planes", nan_tiny_planes},
        {"context_info_and_devices", context_info_and_devices},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        tu_add_backend_case(s, cases[i].name, cases[i].test, 300);
    int have_vulkan = 0, have_cpu = 0;
    for (int i = 0; i < tu_backend_count(); i++) {
        have_vulkan |= tu_backend(i) == INORM_BACKEND_VULKAN;
        have_cpu |= tu_backend(i) == INORM_BACKEND_CPU;
    }
    (void)have_cpu;
    if (have_vulkan) { /* creates a CPU context of its own */
        tc = tcase_create("other_backend");
        tcase_set_timeout(tc, 300);
        tcase_add_test(tc, other_backend);
        suite_add_tcase(s, tc);
    }
    return tu_run(s);
}
