// inorm.h must compile as C++ (extern "C", no C-only constructs) and link.
#include "inorm.h"

#include <cstdio>
#include <cstring>

namespace {

struct context_guard {
    inorm_context *ctx;
    context_guard() : ctx(nullptr) {}
    ~context_guard() { inorm_context_destroy(ctx); }
};

} // namespace

int main()
{
    inorm_context_desc cd = INORM_CONTEXT_DESC_DEFAULT;
    inorm_norm_params np = INORM_NORM_PARAMS_DEFAULT;
    cd.backend = INORM_BACKEND_CPU;
    int failures = 0;

    context_guard g;
    if (inorm_context_create(&cd, &g.ctx) != INORM_SUCCESS)
        return 1;
    inorm_tensor_desc td = {2, 3, 4, 5, INORM_FLOAT32, INORM_NCHW};
    inorm_tensor *t = nullptr;
    if (inorm_tensor_create(g.ctx, &td, &t) != INORM_SUCCESS)
        failures++;
    float data[120];
    for (int i = 0; i < 120; i++)
        data[i] = static_cast<float>(i % 9);
    if (inorm_tensor_write(t, data, sizeof data) != INORM_SUCCESS)
        failures++;
    if (inorm_instance_norm(g.ctx, t, nullptr, nullptr, &np, t) != INORM_SUCCESS)
        failures++;
    if (inorm_tensor_read(t, data, sizeof data) != INORM_SUCCESS)
        failures++;
    if (std::strlen(inorm_status_string(static_cast<inorm_status>(42))) == 0)
        failures++;
    inorm_device_info info;
    if (inorm_context_info(g.ctx, &info) != INORM_SUCCESS || info.backend != INORM_BACKEND_CPU)
        failures++;
    inorm_tensor_destroy(t);
    std::printf("inorm header test (C++ %ld): %d passed, %d failed\n", static_cast<long>(__cplusplus),
                failures ? 0 : 1, failures ? 1 : 0);
    return failures ? 1 : 0;
}
