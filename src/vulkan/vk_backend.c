/* The Vulkan backend: the kernel plan for a shape, recording ops into one
 * command buffer (a barrier between dispatches), submitting it when the host
 * needs results, and tensor storage and transfers. */
#include "vk_internal.h"

#include <stdlib.h>
#include <string.h>

/* Mirrors the push-constant block of shaders/common.glsl. */
typedef struct vk_push_constants {
    uint32_t seg_len, seg_count, chunk_len, chunks;
    uint32_t style_seg_len, style_seg_count, style_chunk_len, style_chunks;
    uint32_t plane_len, channels, channels_per_seg, style_sample_stride;
    uint32_t flags;
    float eps, alpha;
    uint32_t style_partial_base;
} vk_push_constants;
_Static_assert(sizeof(vk_push_constants) == 64, "push constants must match shaders/common.glsl");

enum {
    FLAG_GAMMA = 1u, FLAG_BETA = 2u, FLAG_PER_SAMPLE = 4u, FLAG_UNBIASED = 8u,
    FLAG_MEAN_OUT = 16u, FLAG_STD_OUT = 32u,
};
enum { MODE_NORMALIZE = 0, MODE_ADAIN = 1, MODE_STATS = 2 };

/* Each lane handles about this many units (vec4 or float) of a chunk. */
#define ITEMS_PER_LANE 16u
/* At most this many chunks per segment: the apply kernel merges them all in
 * every workgroup, so their number is kept small by growing the chunks. */
#define MAX_CHUNKS 64u

/* ---------------------------------------------------------------------------
 * Recording and submission
 * ------------------------------------------------------------------------ */

inorm_status vk_recording_init(inorm_context *ctx)
{
    vk_state *vk = ctx->vk;
    VkCommandPoolCreateInfo pool_info = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = vk->queue_family,
    };
    VkResult result = vk->fn.vkCreateCommandPool(vk->device, &pool_info, NULL, &vk->command_pool);
    if (result != VK_SUCCESS)
        return vk_fail(ctx, result, "vkCreateCommandPool");
    VkCommandBufferAllocateInfo buffer_info = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = vk->command_pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    result = vk->fn.vkAllocateCommandBuffers(vk->device, &buffer_info, &vk->command_buffer);
    if (result != VK_SUCCESS)
        return vk_fail(ctx, result, "vkAllocateCommandBuffers");
    VkFenceCreateInfo fence_info = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
    result = vk->fn.vkCreateFence(vk->device, &fence_info, NULL, &vk->fence);
    if (result != VK_SUCCESS)
        return vk_fail(ctx, result, "vkCreateFence");
    VkDescriptorPoolSize pool_size = {
        .type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
        .descriptorCount = VK_SETS_PER_BATCH * VK_BINDINGS,
    };
    VkDescriptorPoolCreateInfo descriptor_info = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .maxSets = VK_SETS_PER_BATCH,
        .poolSizeCount = 1,
        .pPoolSizes = &pool_size,
    };
    result = vk->fn.vkCreateDescriptorPool(vk->device, &descriptor_info, NULL, &vk->descriptor_pool);
    if (result != VK_SUCCESS)
        return vk_fail(ctx, result, "vkCreateDescriptorPool");
    return INORM_SUCCESS;
}

void vk_recording_destroy(vk_state *vk)
{
    if (vk->descriptor_pool)
        vk->fn.vkDestroyDescriptorPool(vk->device, vk->descriptor_pool, NULL);
    if (vk->fence)
        vk->fn.vkDestroyFence(vk->device, vk->fence, NULL);
    if (vk->command_pool)
        vk->fn.vkDestroyCommandPool(vk->device, vk->command_pool, NULL);
    vk->descriptor_pool = VK_NULL_HANDLE;
    vk->fence = VK_NULL_HANDLE;
    vk->command_pool = VK_NULL_HANDLE;
}

static inorm_status begin_recording(inorm_context *ctx)
{
    vk_state *vk = ctx->vk;
    if (vk->recording)
        return INORM_SUCCESS;
    VkCommandBufferBeginInfo info = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
    };
    VkResult result = vk->fn.vkBeginCommandBuffer(vk->command_buffer, &info);
    if (result != VK_SUCCESS)
        return vk_fail(ctx, result, "vkBeginCommandBuffer");
    vk->recording = true;
    return INORM_SUCCESS;
}

/* Orders every earlier compute or transfer write (in this command buffer or
 * an earlier submission) before every later compute or transfer access. */
static void record_barrier(vk_state *vk, VkPipelineStageFlags dst_stages, VkAccessFlags dst_access)
{
    VkMemoryBarrier barrier = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = dst_access,
    };
    vk->fn.vkCmdPipelineBarrier(vk->command_buffer,
                                VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, dst_stages,
                                0, 1, &barrier, 0, NULL, 0, NULL);
}

static void record_device_barrier(vk_state *vk)
{
    record_barrier(vk, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                   VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                       VK_ACCESS_TRANSFER_WRITE_BIT);
}

/* Submits what was recorded and waits for it. */
static inorm_status vk_flush(inorm_context *ctx)
{
    vk_state *vk = ctx->vk;
    if (!vk->recording)
        return INORM_SUCCESS;
    record_barrier(vk, VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
    vk->recording = false;
    VkResult result = vk->fn.vkEndCommandBuffer(vk->command_buffer);
    const char *what = "vkEndCommandBuffer";
    if (result == VK_SUCCESS) {
        VkSubmitInfo submit = {
            .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
            .commandBufferCount = 1,
            .pCommandBuffers = &vk->command_buffer,
        };
        what = "vkQueueSubmit";
        result = vk->fn.vkQueueSubmit(vk->queue, 1, &submit, vk->fence);
        if (result == VK_SUCCESS) {
            what = "vkWaitForFences";
            result = vk->fn.vkWaitForFences(vk->device, 1, &vk->fence, VK_TRUE, UINT64_MAX);
            vk->fn.vkResetFences(vk->device, 1, &vk->fence);
        }
    }
    vk->fn.vkResetCommandBuffer(vk->command_buffer, 0);
    vk->fn.vkResetDescriptorPool(vk->device, vk->descriptor_pool, 0);
    vk->sets_used = 0;
    if (result != VK_SUCCESS)
        return vk_fail(ctx, result, what);
    return INORM_SUCCESS;
}

/* Makes room for `count` descriptor sets in the current batch. */
static inorm_status reserve_sets(inorm_context *ctx, uint32_t count)
{
    if (ctx->vk->sets_used + count <= VK_SETS_PER_BATCH)
        return INORM_SUCCESS;
    return vk_flush(ctx);
}

static inorm_status write_set(inorm_context *ctx, const VkBuffer buffers[VK_BINDINGS], VkDescriptorSet *out)
{
    vk_state *vk = ctx->vk;
    VkDescriptorSetAllocateInfo info = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
        .descriptorPool = vk->descriptor_pool,
        .descriptorSetCount = 1,
        .pSetLayouts = &vk->set_layout,
    };
    VkResult result = vk->fn.vkAllocateDescriptorSets(vk->device, &info, out);
    if (result != VK_SUCCESS)
        return vk_fail(ctx, result, "vkAllocateDescriptorSets");
    vk->sets_used++;
    VkDescriptorBufferInfo buffer_infos[VK_BINDINGS];
    VkWriteDescriptorSet writes[VK_BINDINGS];
    for (uint32_t i = 0; i < VK_BINDINGS; ++i) {
        buffer_infos[i] = (VkDescriptorBufferInfo){ buffers[i], 0, VK_WHOLE_SIZE };
        writes[i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstSet = *out,
            .dstBinding = i,
            .descriptorCount = 1,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .pBufferInfo = &buffer_infos[i],
        };
    }
    vk->fn.vkUpdateDescriptorSets(vk->device, VK_BINDINGS, writes, 0, NULL);
    return INORM_SUCCESS;
}

static void record_dispatch(vk_state *vk, VkPipeline pipeline, VkDescriptorSet set, const vk_push_constants *push,
                            uint32_t workgroups)
{
    record_device_barrier(vk);
    VkCommandBuffer cmd = vk->command_buffer;
    vk->fn.vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline);
    vk->fn.vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, vk->pipeline_layout, 0, 1, &set, 0, NULL);
    vk->fn.vkCmdPushConstants(cmd, vk->pipeline_layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof *push, push);
    uint32_t width = workgroups < vk->limits.maxComputeWorkGroupCount[0] ? workgroups
                                                                         : vk->limits.maxComputeWorkGroupCount[0];
    vk->fn.vkCmdDispatch(cmd, width, (workgroups + width - 1) / width, 1);
}

/* Grows the partials buffer to at least `bytes` (after pending work is done). */
static inorm_status ensure_scratch(inorm_context *ctx, VkDeviceSize bytes)
{
    vk_state *vk = ctx->vk;
    if (bytes <= vk->scratch.size)
        return INORM_SUCCESS;
    inorm_status status = vk_flush(ctx);
    if (status != INORM_SUCCESS)
        return status;
    VkDeviceSize size = vk->scratch.size * 2;
    if (size < bytes)
        size = bytes;
    vk_buffer_destroy(vk, &vk->scratch);
    return vk_buffer_create(ctx, size, false, &vk->scratch);
}

/* ---------------------------------------------------------------------------
 * The kernel plan
 * ------------------------------------------------------------------------ */

typedef struct segment_plan {
    uint32_t seg_len, seg_count, chunk_len, chunks;
    bool vec4;
} segment_plan;

static uint32_t choose_workgroup_size(const vk_state *vk, uint64_t units)
{
    uint32_t size = units >= 2048 ? 256 : units >= 512 ? 128 : 64;
    while (size > 64 && (size > vk->limits.maxComputeWorkGroupInvocations ||
                         size > vk->limits.maxComputeWorkGroupSize[0]))
        size /= 2;
    return size;
}

/* Cuts segments into chunks: ITEMS_PER_LANE units per lane, unless that
 * gives more than MAX_CHUNKS chunks. Each lane's loop runs at most
 * chunk units / workgroup size times (lavapipe ends loops after 65535). */
static segment_plan plan_segments(uint32_t seg_len, uint32_t seg_count, bool vec4, uint32_t workgroup_size)
{
    segment_plan plan = { .seg_len = seg_len, .seg_count = seg_count, .vec4 = vec4 };
    uint32_t unit = vec4 ? 4 : 1;
    uint64_t units = seg_len / unit;
    uint64_t chunk_units = (uint64_t)workgroup_size * ITEMS_PER_LANE;
    uint64_t chunks = (units + chunk_units - 1) / chunk_units;
    if (chunks > MAX_CHUNKS) {
        chunk_units = (units + MAX_CHUNKS - 1) / MAX_CHUNKS;
        chunk_units = (chunk_units + workgroup_size - 1) / workgroup_size * workgroup_size;
        chunks = (units + chunk_units - 1) / chunk_units;
    }
    plan.chunk_len = (uint32_t)(chunk_units * unit);
    plan.chunks = (uint32_t)chunks;
    return plan;
}

static VkBuffer buffer_of(const vk_state *vk, const inorm_tensor *t)
{
    return t ? t->buffer->buffer : vk->scratch.buffer;
}

static inorm_status vk_run(inorm_context *ctx, const inorm_op *op)
{
    vk_state *vk = ctx->vk;
    const inorm_tensor_desc *d = &op->x->desc;
    const uint32_t plane_len = d->h * d->w;
    const uint32_t cps = op->channels_per_segment;
    const uint32_t seg_len = plane_len * cps;
    const bool content_vec4 = seg_len % 4 == 0 && (cps == 1 || plane_len % 4 == 0);
    const uint32_t workgroup_size = choose_workgroup_size(vk, content_vec4 ? seg_len / 4 : seg_len);
    const segment_plan content = plan_segments(seg_len, d->n * d->c / cps, content_vec4, workgroup_size);

    segment_plan style = { 0 };
    if (op->kind == INORM_OP_ADAIN) {
        const inorm_tensor_desc *s = &op->style->desc;
        uint32_t style_len = s->h * s->w;
        style = plan_segments(style_len, s->n * s->c, style_len % 4 == 0, workgroup_size);
    }
    vk_push_constants push = {
        .seg_len = content.seg_len,
        .seg_count = content.seg_count,
        .chunk_len = content.chunk_len,
        .chunks = content.chunks,
        .style_seg_len = style.seg_len,
        .style_seg_count = style.seg_count,
        .style_chunk_len = style.chunk_len,
        .style_chunks = style.chunks,
        .plane_len = plane_len,
        .channels = d->c,
        .channels_per_seg = cps,
        .style_sample_stride = op->style && op->style->desc.n > 1 ? d->c : 0,
        .flags = (op->gamma ? FLAG_GAMMA : 0) | (op->beta ? FLAG_BETA : 0) |
                 (op->affine_per_sample ? FLAG_PER_SAMPLE : 0) | (op->unbiased ? FLAG_UNBIASED : 0) |
                 (op->mean_out ? FLAG_MEAN_OUT : 0) | (op->std_out ? FLAG_STD_OUT : 0),
        .eps = op->eps,
        .alpha = op->alpha,
        .style_partial_base = content.seg_count * content.chunks,
    };
    const uint64_t content_groups = (uint64_t)content.seg_count * content.chunks;
    const uint64_t stats_groups = content_groups + (uint64_t)style.seg_count * style.chunks;
    const uint64_t apply_groups = op->kind == INORM_OP_STATS ? content.seg_count : content_groups;
    const uint64_t grid_limit =
        (uint64_t)vk->limits.maxComputeWorkGroupCount[0] * vk->limits.maxComputeWorkGroupCount[1];
    if (stats_groups > grid_limit || stats_groups > UINT32_MAX)
        return inorm_fail(ctx, INORM_ERROR_UNSUPPORTED, "the shape needs %llu workgroups; the device allows %llu",
                          (unsigned long long)stats_groups, (unsigned long long)grid_limit);

    const uint32_t mode = op->kind == INORM_OP_ADAIN ? MODE_ADAIN : op->kind == INORM_OP_STATS ? MODE_STATS
                                                                                              : MODE_NORMALIZE;
    vk_pipeline_key stats_key = { VK_KERNEL_STATS, workgroup_size, content.vec4, style.vec4, 0 };
    vk_pipeline_key apply_key = { VK_KERNEL_APPLY, workgroup_size, content.vec4, 0, mode };
    VkPipeline stats_pipeline, apply_pipeline;
    inorm_status status = vk_pipeline_get(ctx, &stats_key, &stats_pipeline);
    if (status == INORM_SUCCESS)
        status = vk_pipeline_get(ctx, &apply_key, &apply_pipeline);
    if (status == INORM_SUCCESS)
        status = ensure_scratch(ctx, stats_groups * 4 * sizeof(float));
    if (status == INORM_SUCCESS)
        status = reserve_sets(ctx, 2);
    if (status == INORM_SUCCESS)
        status = begin_recording(ctx);
    if (status != INORM_SUCCESS)
        return status;

    const VkBuffer x = buffer_of(vk, op->x);
    const VkBuffer stats_buffers[VK_BINDINGS] = {
        x, op->style ? buffer_of(vk, op->style) : x, vk->scratch.buffer,
        vk->scratch.buffer, vk->scratch.buffer, vk->scratch.buffer, vk->scratch.buffer,
    };
    const VkBuffer apply_buffers[VK_BINDINGS] = {
        x, buffer_of(vk, op->y), vk->scratch.buffer, buffer_of(vk, op->gamma), buffer_of(vk, op->beta),
        buffer_of(vk, op->mean_out), buffer_of(vk, op->std_out),
    };
    VkDescriptorSet stats_set, apply_set;
    if ((status = write_set(ctx, stats_buffers, &stats_set)) != INORM_SUCCESS ||
        (status = write_set(ctx, apply_buffers, &apply_set)) != INORM_SUCCESS)
        return status;
    record_dispatch(vk, stats_pipeline, stats_set, &push, (uint32_t)stats_groups);
    record_dispatch(vk, apply_pipeline, apply_set, &push, (uint32_t)apply_groups);
    return INORM_SUCCESS;
}

/* ---------------------------------------------------------------------------
 * Tensors
 * ------------------------------------------------------------------------ */

static inorm_status vk_tensor_create(inorm_context *ctx, inorm_tensor *t)
{
    vk_state *vk = ctx->vk;
    if (t->bytes > vk->limits.maxStorageBufferRange)
        return inorm_fail(ctx, INORM_ERROR_UNSUPPORTED,
                          "a %ux%ux%ux%u tensor takes %zu bytes; this device binds at most %u bytes "
                          "(maxStorageBufferRange)",
                          t->desc.n, t->desc.c, t->desc.h, t->desc.w, t->bytes, vk->limits.maxStorageBufferRange);
    t->buffer = calloc(1, sizeof *t->buffer);
    if (!t->buffer)
        return inorm_fail(ctx, INORM_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    /* Whole vec4s, so vector views of the buffer never reach past its end. */
    inorm_status status = vk_buffer_create(ctx, (t->bytes + 15) / 16 * 16, false, t->buffer);
    if (status != INORM_SUCCESS) {
        free(t->buffer);
        t->buffer = NULL;
    }
    return status;
}

static void vk_tensor_destroy(inorm_context *ctx, inorm_tensor *t)
{
    if (!t->buffer)
        return;
    if (ctx->sticky_status == INORM_SUCCESS)
        vk_flush(ctx);
    vk_buffer_destroy(ctx->vk, t->buffer);
    free(t->buffer);
    t->buffer = NULL;
}

/* Copies between a tensor and a temporary staging buffer on the device.
 * to_tensor: host data in staging goes into the tensor. */
static inorm_status staged_copy(inorm_context *ctx, const inorm_tensor *t, vk_buffer *staging, bool to_tensor)
{
    vk_state *vk = ctx->vk;
    inorm_status status = begin_recording(ctx);
    if (status != INORM_SUCCESS)
        return status;
    record_device_barrier(vk);
    VkBufferCopy region = { 0, 0, t->bytes };
    if (to_tensor)
        vk->fn.vkCmdCopyBuffer(vk->command_buffer, staging->buffer, t->buffer->buffer, 1, &region);
    else
        vk->fn.vkCmdCopyBuffer(vk->command_buffer, t->buffer->buffer, staging->buffer, 1, &region);
    return vk_flush(ctx);
}

static inorm_status vk_tensor_write(inorm_context *ctx, inorm_tensor *t, const void *src)
{
    inorm_status status = vk_flush(ctx);
    if (status != INORM_SUCCESS)
        return status;
    if (t->buffer->mapped) {
        memcpy(t->buffer->mapped, src, t->bytes);
        return INORM_SUCCESS;
    }
    vk_buffer staging;
    status = vk_buffer_create(ctx, t->bytes, true, &staging);
    if (status != INORM_SUCCESS)
        return status;
    memcpy(staging.mapped, src, t->bytes);
    status = staged_copy(ctx, t, &staging, true);
    vk_buffer_destroy(ctx->vk, &staging);
    return status;
}

static inorm_status vk_tensor_read(inorm_context *ctx, const inorm_tensor *t, void *dst)
{
    if (t->buffer->mapped) {
        inorm_status status = vk_flush(ctx);
        if (status == INORM_SUCCESS)
            memcpy(dst, t->buffer->mapped, t->bytes);
        return status;
    }
    vk_buffer staging;
    inorm_status status = vk_buffer_create(ctx, t->bytes, true, &staging);
    if (status == INORM_SUCCESS)
        status = staged_copy(ctx, t, &staging, false);
    if (status == INORM_SUCCESS)
        memcpy(dst, staging.mapped, t->bytes);
    vk_buffer_destroy(ctx->vk, &staging);
    return status;
}

static void vk_context_teardown(inorm_context *ctx)
{
    vk_state_destroy(ctx->vk);
    ctx->vk = NULL;
}

const inorm_backend_ops inorm_vulkan_backend = {
    .tensor_create = vk_tensor_create,
    .tensor_destroy = vk_tensor_destroy,
    .tensor_write = vk_tensor_write,
    .tensor_read = vk_tensor_read,
    .run = vk_run,
    .finish = vk_flush,
    .context_destroy = vk_context_teardown,
};
