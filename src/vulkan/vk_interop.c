/* Inside the app's own Vulkan code: importing its device, wrapping its
 * buffers, recording into its command buffers, and the pipeline cache as a
 * blob or a file. */
#include "vk_internal.h"

#include <stdio.h>
#include <string.h>

inorm_status inorm_context_import(const inorm_vulkan_import *desc, inorm_context **out, char *message,
                                  size_t message_size)
{
    char scratch_message[INORM_ERROR_TEXT_SIZE];
    if (!message || !message_size) {
        message = scratch_message;
        message_size = sizeof scratch_message;
    }
    message[0] = '\0';
    if (out)
        *out = NULL;
    if (!out || !desc) {
        snprintf(message, message_size, "inorm_context_import: %s is NULL", !out ? "out" : "desc");
        return INORM_ERROR_INVALID_ARGUMENT;
    }
    inorm_context *ctx = inorm_calloc(1, sizeof *ctx);
    if (!ctx) {
        snprintf(message, message_size, "out of host memory allocating the context");
        return INORM_ERROR_OUT_OF_HOST_MEMORY;
    }
    ctx->last_device_seconds = -1.0;
    inorm_status status = inorm_vulkan_context_import(ctx, desc, message, message_size);
    if (status != INORM_SUCCESS) {
        inorm_free(ctx);
        return status;
    }
    ctx->backend = &inorm_vulkan_backend;
    *out = ctx;
    return INORM_SUCCESS;
}

inorm_status inorm_tensor_wrap_vulkan(inorm_context *ctx, const inorm_tensor_desc *desc, VkBuffer buffer,
                                      VkDeviceSize offset, inorm_tensor **out)
{
    const char *fn = "inorm_tensor_wrap_vulkan";
    if (out)
        *out = NULL;
    if (!ctx)
        return INORM_ERROR_INVALID_ARGUMENT;
    if (!ctx->vk)
        return inorm_fail(ctx, INORM_ERROR_UNSUPPORTED, "%s: the CPU path has no Vulkan buffers", fn);
    if (!desc || !out || !buffer)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                          !desc ? "desc" : !out ? "out" : "buffer");
    vk_state *vk = ctx->vk;
    const VkDeviceSize alignment = vk->limits.minStorageBufferOffsetAlignment;
    if (alignment && offset % alignment != 0)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT,
                          "%s: offset %llu is not a multiple of minStorageBufferOffsetAlignment (%llu)", fn,
                          (unsigned long long)offset, (unsigned long long)alignment);
    size_t bytes = inorm_tensor_desc_bytes(desc);
    if (bytes == 0)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: desc %ux%ux%ux%u is invalid or overflows", fn,
                          desc->n, desc->c, desc->h, desc->w);
    VkMemoryRequirements requirements;
    vk->fn.vkGetBufferMemoryRequirements(vk->device, buffer, &requirements);
    if (offset > requirements.size || bytes > requirements.size - offset)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT,
                          "%s: %zu bytes at offset %llu do not fit in the buffer (%llu bytes of memory)", fn, bytes,
                          (unsigned long long)offset, (unsigned long long)requirements.size);
    if (bytes > vk->limits.maxStorageBufferRange)
        return inorm_fail(ctx, INORM_ERROR_UNSUPPORTED, "%s: %zu bytes exceed maxStorageBufferRange (%u)", fn, bytes,
                          vk->limits.maxStorageBufferRange);
    vk_buffer *storage = inorm_calloc(1, sizeof *storage);
    if (!storage)
        return inorm_fail(ctx, INORM_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    inorm_tensor *t;
    inorm_status status = inorm_tensor_new(ctx, desc, false, &t);
    if (status != INORM_SUCCESS) {
        inorm_free(storage);
        return status;
    }
    *storage = (vk_buffer){ .buffer = buffer, .size = bytes, .offset = offset, .borrowed = true };
    t->buffer = storage;
    *out = t;
    return INORM_SUCCESS;
}

/* Sets the app's command buffer as the recording target for one call. */
static inorm_status begin_external(inorm_context *ctx, VkCommandBuffer cmd)
{
    if (!ctx)
        return INORM_ERROR_INVALID_ARGUMENT;
    if (!ctx->vk)
        return inorm_fail(ctx, INORM_ERROR_UNSUPPORTED, "the CPU path has no command buffers to record into");
    if (!cmd)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "cmd is VK_NULL_HANDLE");
    ctx->vk->external_cmd = cmd;
    ctx->deferred_checks = true;
    return INORM_SUCCESS;
}

static inorm_status end_external(inorm_context *ctx, inorm_status status)
{
    ctx->vk->external_cmd = VK_NULL_HANDLE;
    ctx->deferred_checks = false;
    return status;
}

#define RECORD_INTO(cmd, call)                                   \
    do {                                                         \
        inorm_status status_ = begin_external(ctx, cmd);         \
        if (status_ != INORM_SUCCESS)                            \
            return status_;                                      \
        return end_external(ctx, call);                          \
    } while (0)

inorm_status inorm_cmd_instance_norm(inorm_context *ctx, VkCommandBuffer cmd, const inorm_tensor *x,
                                     const inorm_tensor *gamma, const inorm_tensor *beta, const inorm_norm_params *p,
                                     inorm_tensor *y)
{
    RECORD_INTO(cmd, inorm_instance_norm(ctx, x, gamma, beta, p, y));
}

inorm_status inorm_cmd_group_norm(inorm_context *ctx, VkCommandBuffer cmd, const inorm_tensor *x, uint32_t groups,
                                  const inorm_tensor *gamma, const inorm_tensor *beta, const inorm_norm_params *p,
                                  inorm_tensor *y)
{
    RECORD_INTO(cmd, inorm_group_norm(ctx, x, groups, gamma, beta, p, y));
}

inorm_status inorm_cmd_layer_norm(inorm_context *ctx, VkCommandBuffer cmd, const inorm_tensor *x,
                                  const inorm_tensor *gamma, const inorm_tensor *beta, const inorm_norm_params *p,
                                  inorm_tensor *y)
{
    RECORD_INTO(cmd, inorm_layer_norm(ctx, x, gamma, beta, p, y));
}

inorm_status inorm_cmd_adain(inorm_context *ctx, VkCommandBuffer cmd, const inorm_tensor *content,
                             const inorm_tensor *style, float alpha, const inorm_norm_params *p, inorm_tensor *y)
{
    RECORD_INTO(cmd, inorm_adain(ctx, content, style, alpha, p, y));
}

inorm_status inorm_cmd_adain_mix(inorm_context *ctx, VkCommandBuffer cmd, const inorm_tensor *content,
                                 const inorm_tensor *const *styles, const float *weights, uint32_t count, float alpha,
                                 const inorm_norm_params *p, inorm_tensor *y)
{
    RECORD_INTO(cmd, inorm_adain_mix(ctx, content, styles, weights, count, alpha, p, y));
}

inorm_status inorm_cmd_adain_modulate(inorm_context *ctx, VkCommandBuffer cmd, const inorm_tensor *x,
                                      const inorm_tensor *scale, const inorm_tensor *bias, const inorm_norm_params *p,
                                      inorm_tensor *y)
{
    RECORD_INTO(cmd, inorm_adain_modulate(ctx, x, scale, bias, p, y));
}

inorm_status inorm_cmd_conditional_instance_norm(inorm_context *ctx, VkCommandBuffer cmd, const inorm_tensor *x,
                                                 const inorm_tensor *gamma_bank, const inorm_tensor *beta_bank,
                                                 const inorm_tensor *style_weights, const inorm_norm_params *p,
                                                 inorm_tensor *y)
{
    RECORD_INTO(cmd, inorm_conditional_instance_norm(ctx, x, gamma_bank, beta_bank, style_weights, p, y));
}

inorm_status inorm_cmd_stats(inorm_context *ctx, VkCommandBuffer cmd, const inorm_tensor *x,
                             const inorm_norm_params *p, inorm_tensor *mean, inorm_tensor *std)
{
    RECORD_INTO(cmd, inorm_stats(ctx, x, p, mean, std));
}

inorm_status inorm_cmd_convert(inorm_context *ctx, VkCommandBuffer cmd, const inorm_tensor *src, inorm_tensor *dst)
{
    RECORD_INTO(cmd, inorm_convert(ctx, src, dst));
}

inorm_status inorm_cmd_release(inorm_context *ctx)
{
    if (!ctx)
        return INORM_ERROR_INVALID_ARGUMENT;
    if (ctx->vk)
        vk_release_external(ctx->vk);
    return INORM_SUCCESS;
}

inorm_status inorm_context_get_pipeline_cache(inorm_context *ctx, void *data, size_t *size)
{
    if (!ctx)
        return INORM_ERROR_INVALID_ARGUMENT;
    if (!size)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "inorm_context_get_pipeline_cache: size is NULL");
    if (!ctx->vk) {
        *size = 0;
        return INORM_SUCCESS;
    }
    return vk_pipeline_cache_get(ctx, data, size);
}

inorm_status inorm_context_set_pipeline_cache(inorm_context *ctx, const void *data, size_t size)
{
    if (!ctx)
        return INORM_ERROR_INVALID_ARGUMENT;
    if (!data && size)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "inorm_context_set_pipeline_cache: data is NULL");
    if (!ctx->vk)
        return inorm_fail(ctx, INORM_ERROR_UNSUPPORTED, "the CPU path has no pipeline cache");
    return vk_pipeline_cache_merge(ctx, data, size);
}

inorm_status vk_pipeline_cache_load_file(inorm_context *ctx, const char *path)
{
    vk_state *vk = ctx->vk;
    size_t len = strlen(path);
    vk->pipeline_cache_path = inorm_malloc(len + 1);
    if (!vk->pipeline_cache_path)
        return inorm_fail(ctx, INORM_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    memcpy(vk->pipeline_cache_path, path, len + 1);
    FILE *file = fopen(path, "rb");
    if (!file)
        return INORM_SUCCESS;  /* first run: nothing cached yet */
    inorm_status status = INORM_SUCCESS;
    if (fseek(file, 0, SEEK_END) == 0) {
        long size = ftell(file);
        void *data = size > 0 && size < (1L << 30) ? inorm_malloc((size_t)size) : NULL;
        if (data && fseek(file, 0, SEEK_SET) == 0 && fread(data, 1, (size_t)size, file) == (size_t)size)
            status = vk_pipeline_cache_merge(ctx, data, (size_t)size);
        inorm_free(data);
    }
    fclose(file);
    if (status != INORM_SUCCESS && status != INORM_ERROR_OUT_OF_HOST_MEMORY &&
        status != INORM_ERROR_DEVICE_LOST) {
        inorm_clear_error(ctx);  /* a stale or foreign cache file is ignored: it is rewritten at destroy */
        return INORM_SUCCESS;
    }
    return status;
}
