/*
 * inorm.h must compile on its own as C99, C11 (meson builds this file both
 * ways, with -Wpedantic) and C++ (test_header.cpp). Uses a few symbols and
 * links against the library.
 */
#include "inorm.h"
#include "inorm.h" /* include guard */

#include <stdio.h>
#include <string.h>

#if !defined(INORM_VERSION_MAJOR) || !defined(INORM_VERSION_MINOR) || !defined(INORM_VERSION_PATCH)
#error "inorm.h does not define the version macros"
#endif

int main(void)
{
    inorm_context_desc cd = INORM_CONTEXT_DESC_DEFAULT;
    inorm_norm_params np = INORM_NORM_PARAMS_DEFAULT;
    inorm_tensor_desc td;
    inorm_context *ctx = NULL;
    inorm_tensor *t = NULL;
    int failures = 0;

    memset(&td, 0, sizeof td);
    td.n = 1;
    td.c = 2;
    td.h = 3;
    td.w = 4;
    td.dtype = INORM_FLOAT32;
    td.layout = INORM_NCHW;

    if (inorm_tensor_desc_bytes(&td) != 96)
        failures++;
    if (inorm_status_string(INORM_SUCCESS) == NULL)
        failures++;
    if (cd.backend != INORM_BACKEND_AUTO || cd.device_index != -1 || np.eps != 1e-5f || np.unbiased)
        failures++;
    if ((INORM_CONTEXT_DISABLE_SUBGROUP_OPS & 1u) == 0)
        failures++;

    cd.backend = INORM_BACKEND_CPU;
    if (inorm_context_create(&cd, &ctx) != INORM_SUCCESS) {
        failures++;
    } else {
        float data[24];
        int i;
        for (i = 0; i < 24; i++)
            data[i] = (float)(i % 5);
        if (inorm_tensor_create(ctx, &td, &t) != INORM_SUCCESS)
            failures++;
        else if (inorm_tensor_write(t, data, sizeof data) != INORM_SUCCESS ||
                 inorm_instance_norm(ctx, t, NULL, NULL, &np, t) != INORM_SUCCESS ||
                 inorm_tensor_read(t, data, sizeof data) != INORM_SUCCESS)
            failures++;
        inorm_tensor_destroy(t);
        inorm_context_destroy(ctx);
    }
    printf("inorm %d.%d.%d header test (%s): %d passed, %d failed\n", INORM_VERSION_MAJOR,
           INORM_VERSION_MINOR, INORM_VERSION_PATCH,
#if defined(__STDC_VERSION__)
           __STDC_VERSION__ >= 201112L ? "C11 or later" : "C99",
#else
           "C89",
#endif
           failures ? 0 : 1, failures ? 1 : 0);
    return failures ? 1 : 0;
}
