/* Contexts: creation (backend and device choice, environment overrides),
 * error text, device information. */
#include "internal.h"

#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint32_t inorm_version(void)
{
    return (INORM_VERSION_MAJOR << 16) | (INORM_VERSION_MINOR << 8) | INORM_VERSION_PATCH;
}

const char *inorm_status_string(inorm_status status)
{
    switch (status) {
    case INORM_SUCCESS: return "success";
    case INORM_ERROR_INVALID_ARGUMENT: return "invalid argument";
    case INORM_ERROR_UNSUPPORTED: return "unsupported";
    case INORM_ERROR_NO_DEVICE: return "no device";
    case INORM_ERROR_OUT_OF_HOST_MEMORY: return "out of host memory";
    case INORM_ERROR_OUT_OF_DEVICE_MEMORY: return "out of device memory";
    case INORM_ERROR_DEVICE_LOST: return "device lost";
    case INORM_ERROR_BACKEND: return "backend error";
    }
    return "unknown status";
}

inorm_status inorm_fail(inorm_context *ctx, inorm_status status, const char *fmt, ...)
{
    if (ctx) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(ctx->error, sizeof ctx->error, fmt, args);
        va_end(args);
    }
    return status;
}

void inorm_clear_error(inorm_context *ctx)
{
    if (ctx)
        ctx->error[0] = '\0';
}

const char *inorm_context_error(const inorm_context *ctx)
{
    if (!ctx)
        return "no context (ctx is NULL)";
    return ctx->error;
}

static bool env_flag(const char *name)
{
    const char *value = getenv(name);
    return value && value[0] && strcmp(value, "0") != 0;
}

static bool equals_ignoring_case(const char *a, const char *b)
{
    for (; *a && *b; ++a, ++b)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return false;
    return *a == *b;
}

static void set_message(char *message, size_t size, const char *text)
{
    if (message && size)
        snprintf(message, size, "%s", text);
}

static void init_cpu_info(inorm_device_info *info)
{
    memset(info, 0, sizeof *info);
    info->backend = INORM_BACKEND_CPU;
    info->device_index = -1;
    info->type = INORM_DEVICE_TYPE_CPU_PATH;
    snprintf(info->name, sizeof info->name, "inorm CPU path (%s)", inorm_cpu_isa_name(inorm_cpu_isa_level()));
    info->float16_storage = 1;
    info->max_storage_buffer_range = (uint64_t)PTRDIFF_MAX;
}

inorm_status inorm_context_create_ex(const inorm_context_desc *desc, inorm_context **out,
                                     char *message, size_t message_size)
{
    set_message(message, message_size, "");
    if (!out) {
        set_message(message, message_size, "out is NULL");
        return INORM_ERROR_INVALID_ARGUMENT;
    }
    *out = NULL;
    inorm_context_desc settings = INORM_CONTEXT_DESC_DEFAULT;
    if (desc)
        settings = *desc;
    if (settings.backend != INORM_BACKEND_AUTO && settings.backend != INORM_BACKEND_VULKAN &&
        settings.backend != INORM_BACKEND_CPU) {
        if (message)
            snprintf(message, message_size, "desc->backend is %d, not an inorm_backend value",
                     (int)settings.backend);
        return INORM_ERROR_INVALID_ARGUMENT;
    }
    if (settings.device_index < -1) {
        if (message)
            snprintf(message, message_size, "desc->device_index is %d; use -1 (best) or an index",
                     settings.device_index);
        return INORM_ERROR_INVALID_ARGUMENT;
    }

    const bool use_environment = !(settings.flags & INORM_CONTEXT_IGNORE_ENVIRONMENT);
    const char *env_backend = use_environment ? getenv("INORM_BACKEND") : NULL;
    if (env_backend && env_backend[0]) {
        if (equals_ignoring_case(env_backend, "cpu"))
            settings.backend = INORM_BACKEND_CPU;
        else if (equals_ignoring_case(env_backend, "vulkan"))
            settings.backend = INORM_BACKEND_VULKAN;
        else if (equals_ignoring_case(env_backend, "auto"))
            settings.backend = INORM_BACKEND_AUTO;
        else {
            if (message)
                snprintf(message, message_size, "INORM_BACKEND=%s: expected auto, vulkan or cpu", env_backend);
            return INORM_ERROR_INVALID_ARGUMENT;
        }
    }
    const char *device_name = NULL;
    const char *env_device = use_environment ? getenv("INORM_DEVICE") : NULL;
    if (env_device && env_device[0]) {
        char *end = NULL;
        long index = strtol(env_device, &end, 10);
        if (end && *end == '\0' && index >= 0 && index <= 1000000)
            settings.device_index = (int)index;
        else
            device_name = env_device;
    }
    if (use_environment && env_flag("INORM_VALIDATION"))
        settings.validation = 1;
    if (use_environment && env_flag("INORM_DISABLE_SUBGROUPS"))
        settings.flags |= INORM_CONTEXT_DISABLE_SUBGROUP_OPS;

    inorm_context *ctx = inorm_calloc(1, sizeof *ctx);
    if (!ctx) {
        set_message(message, message_size, "out of host memory allocating the context");
        return INORM_ERROR_OUT_OF_HOST_MEMORY;
    }
    ctx->last_device_seconds = -1.0;

    if (settings.backend != INORM_BACKEND_CPU) {
        char vk_message[INORM_ERROR_TEXT_SIZE] = "";
        /* AUTO takes a software Vulkan device only when one is asked for by
         * index or name: on the same processor the CPU path is faster. */
        const bool hardware_only =
            settings.backend == INORM_BACKEND_AUTO && settings.device_index < 0 && !device_name;
        inorm_status status = inorm_vulkan_context_init(ctx, settings.device_index, device_name, hardware_only,
                                                        settings.validation != 0, settings.flags,
                                                        settings.pipeline_cache_path, vk_message, sizeof vk_message);
        if (status == INORM_SUCCESS) {
            ctx->backend = &inorm_vulkan_backend;
            *out = ctx;
            return INORM_SUCCESS;
        }
        if (settings.backend == INORM_BACKEND_VULKAN || status == INORM_ERROR_OUT_OF_HOST_MEMORY) {
            set_message(message, message_size, vk_message);
            inorm_free(ctx);
            return status;
        }
        ctx->backend = &inorm_cpu_backend;
        init_cpu_info(&ctx->info);
        /* AUTO fell back: say why where inorm-info and users look for the device's story. */
        snprintf(ctx->info.driver_info, sizeof ctx->info.driver_info, "Vulkan unavailable: %.200s", vk_message);
        *out = ctx;
        return INORM_SUCCESS;
    }
    ctx->backend = &inorm_cpu_backend;
    init_cpu_info(&ctx->info);
    *out = ctx;
    return INORM_SUCCESS;
}

inorm_status inorm_context_create(const inorm_context_desc *desc, inorm_context **out)
{
    return inorm_context_create_ex(desc, out, NULL, 0);
}

void inorm_context_destroy(inorm_context *ctx)
{
    if (!ctx)
        return;
    if (ctx->sticky_status == INORM_SUCCESS)
        ctx->backend->finish(ctx);
    while (ctx->tensors)
        inorm_tensor_destroy(ctx->tensors);
    if (ctx->backend->context_destroy)
        ctx->backend->context_destroy(ctx);
    inorm_cpu_pool_destroy(ctx);
    inorm_free(ctx);
}

inorm_status inorm_context_finish(inorm_context *ctx)
{
    if (!ctx)
        return INORM_ERROR_INVALID_ARGUMENT;
    if (ctx->sticky_status != INORM_SUCCESS)
        return inorm_fail(ctx, ctx->sticky_status, "the device was lost earlier; destroy this context");
    inorm_clear_error(ctx);
    return ctx->backend->finish(ctx);
}

/* The error text is the context's scratch state, also for calls that take it const. */
static inorm_status fail_const(const inorm_context *ctx, const char *what)
{
    return inorm_fail((inorm_context *)ctx, INORM_ERROR_INVALID_ARGUMENT, "%s is NULL", what);
}

inorm_status inorm_context_set_profiling(inorm_context *ctx, int enable)
{
    if (!ctx)
        return INORM_ERROR_INVALID_ARGUMENT;
    ctx->profiling = enable != 0;
    ctx->last_device_seconds = -1.0;
    ctx->pending_seconds = 0.0;
    return INORM_SUCCESS;
}

inorm_status inorm_context_last_device_time(const inorm_context *ctx, double *seconds)
{
    if (!ctx)
        return INORM_ERROR_INVALID_ARGUMENT;
    if (!seconds)
        return fail_const(ctx, "inorm_context_last_device_time: seconds");
    if (!ctx->profiling || ctx->last_device_seconds < 0.0)
        return inorm_fail((inorm_context *)ctx, INORM_ERROR_UNSUPPORTED,
                          !ctx->profiling ? "profiling is off (inorm_context_set_profiling)"
                                          : "nothing was timed yet, or the queue has no timestamps");
    *seconds = ctx->last_device_seconds;
    return INORM_SUCCESS;
}

inorm_status inorm_context_info(const inorm_context *ctx, inorm_device_info *out)
{
    if (!ctx)
        return INORM_ERROR_INVALID_ARGUMENT;
    if (!out)
        return fail_const(ctx, "inorm_context_info: out");
    *out = ctx->info;
    return INORM_SUCCESS;
}

inorm_status inorm_enumerate_devices(inorm_device_info *infos, uint32_t *count)
{
    if (!count)
        return INORM_ERROR_INVALID_ARGUMENT;
    return inorm_vulkan_enumerate(infos, count);
}
