/* The Vulkan backend: the kernel plan for a shape, recording ops into one
 * command buffer (a barrier between dispatches), submitting it when the host
 * needs results, and tensor storage and transfers. */
#include "vk_internal.h"

#include <stdio.h>
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
    uint32_t activation;
    float activation_slope;
    uint32_t channel_block, channel_blocks;
    uint32_t bank_size, mask_sample_stride, style_mask_sample_stride;
    float out_weight;
    uint32_t out_repeat, coeff_base, samples, out_repeat_first;
    uint32_t channels_per_partial;
} vk_push_constants;
_Static_assert(sizeof(vk_push_constants) == VK_PUSH_CONSTANT_BYTES, "push constants must match shaders/common.glsl");

enum {
    FLAG_GAMMA = 1u, FLAG_BETA = 2u, FLAG_PER_SAMPLE = 4u, FLAG_UNBIASED = 8u,
    FLAG_MEAN_OUT = 16u, FLAG_STD_OUT = 32u, FLAG_BANK = 64u, FLAG_MASK = 128u,
    FLAG_STYLE_MASK = 256u, FLAG_ACCUMULATE = 512u, FLAG_COEFF_OUT = 1024u, FLAG_LANE_FINALIZE = 2048u,
    FLAG_LANE_COEFF = 4096u, FLAG_SELF_STATS = 8192u, FLAG_SEGMENT_TILES = 16384u, FLAG_CHANNELS_INNER = 32768u,
};
/* A finalize merges up to this many partials per segment in one invocation
 * (one invocation per segment); more take a workgroup per segment. */
#define LANE_FINALIZE_MAX_PARTIALS 64u
/* NHWC apply lanes merge their channel's partials themselves up to this many
 * (more than planned only where lavapipe's loop cutoff forced more chunks). */
#define LANE_COEFF_MAX_PARTIALS 256u
enum { MODE_NORMALIZE = 0, MODE_ADAIN = 1, MODE_FINALIZE = 2 };

/* Each lane handles about this many units (vec4 or float; NHWC: pixels) of a chunk. */
#define ITEMS_PER_LANE 16u
/* NCHW: at most this many chunks per segment, since every apply workgroup
 * merges all of its segment's partials; larger planes get larger chunks. */
#define MAX_CHUNKS 64u
/* NHWC: partials are merged once per segment (finalize), so more chunks are
 * fine; the bound keeps the partials buffer and each lane's trip count small. */
#define MAX_CHUNKS_NHWC 1024u
/* Loop iterations per lane over a chunk, at most (lavapipe's cutoff: 65535). */
#define MAX_LANE_TRIPS 32768u
/* NHWC: channels side by side in a tile (128 contiguous bytes of fp32). */
#define NHWC_CHANNEL_BLOCK 32u
/* NHWC on CPU devices: at most this many channel quads per lane. */
#define NHWC_MAX_QUADS_PER_LANE 8u
/* ... as long as the op keeps this many workgroups (tiles x chunks). */
#define NHWC_MIN_WORKGROUPS 16u
/* Fused single-read kernel: the most units (vec4 or float) a lane keeps in
 * registers (REGS in shaders/norm_fused.comp), and the largest team. On CPU
 * devices (workgroups of one subgroup) registers spill to the stack, which
 * still costs far less than lavapipe's buffer loads: 32 per lane read a
 * 32x32 plane once (1x512x32x32 instance norm 0.81 -> 0.61 ms), 128 a 64x64
 * plane (8x256x64x64 12.3 -> 9.5 ms, AdaIN 19.6 -> 14.4 ms; the statistics
 * op alone lost there, 3.5 -> 4.1 ms, and gained on 1x256x64x64, 0.82 ->
 * 0.57 ms). */
#define FUSED_MAX_REGS 16u
#define FUSED_SUBGROUP_MAX_REGS 128u
/* With workgroups of one subgroup (CPU devices), segments of up to this
 * many units go one per lane (no reduction at all), this many lanes per
 * workgroup. */
#define FUSED_LANE_MAX_UNITS 16u
/* NHWC on CPU devices: planes of up to this many pixels fused, a lane's
 * pixels on the stack. */
#define FUSED_NHWC_SUBGROUP_MAX_PIXELS 64u
#define FUSED_LANE_WORKGROUP 64u
/* NHWC group norm on tiny planes: a lane reads a whole group, 3 times */
#define FUSED_NHWC_MAX_GROUP 1024u
#define FUSED_MAX_TEAM 256u
/* Units per lane the team size aims at: on lavapipe fewer, busier lanes
 * beat more lanes (each subgroup is a coroutine between barriers). */
#define FUSED_TARGET_REGS 8u
/* Workgroups of one subgroup (CPU devices): each covers this many units per
 * lane, so that the per-workgroup start-up is paid over about 8K elements. */
#define SUBGROUP_ITEMS_PER_LANE 256u
/* whole_segments(): at most this big a tensor, at least this many segments
 * per thread (so that the last wave leaves few threads idle) */
#define WHOLE_SEGMENTS_MAX_BYTES ((size_t)8 << 20)
#define WHOLE_SEGMENTS_PER_THREAD 8u
/* nhwc_self_stats(): at most this big a tensor, at least this many
 * workgroups per thread, at most this many bytes per workgroup's tile */
#define NHWC_SELF_STATS_MAX_BYTES ((size_t)4 << 20)
#define NHWC_SELF_STATS_PER_THREAD 4u
#define NHWC_SELF_STATS_MAX_TILE_BYTES ((uint64_t)512 << 10)

/* ---------------------------------------------------------------------------
 * Recording and submission
 * ------------------------------------------------------------------------ */

static VkResult create_descriptor_pool(vk_state *vk, VkDescriptorPool *out);

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
    result = create_descriptor_pool(vk, &vk->descriptor_pool);
    if (result != VK_SUCCESS)
        return vk_fail(ctx, result, "vkCreateDescriptorPool");
    if (vk->timestamp_period_ns > 0.0) {
        VkQueryPoolCreateInfo query_info = {
            .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
            .queryType = VK_QUERY_TYPE_TIMESTAMP,
            .queryCount = 2,
        };
        if (vk->fn.vkCreateQueryPool(vk->device, &query_info, NULL, &vk->timestamps) != VK_SUCCESS)
            vk->timestamps = VK_NULL_HANDLE; /* profiling then reports UNSUPPORTED */
    }
    return INORM_SUCCESS;
}

void vk_recording_destroy(vk_state *vk)
{
    vk_release_external(vk);
    vk_buffer_destroy(vk, &vk->external_scratch);
    if (vk->timestamps)
        vk->fn.vkDestroyQueryPool(vk->device, vk->timestamps, NULL);
    vk->timestamps = VK_NULL_HANDLE;
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
    if (vk->external_cmd) {
        vk->recording_cmd = vk->external_cmd;
        vk->external_pending = true;
        return INORM_SUCCESS;
    }
    vk->recording_cmd = vk->command_buffer;
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
    vk->batch_timed = ctx->profiling && vk->timestamps;
    if (vk->batch_timed) {
        vk->fn.vkCmdResetQueryPool(vk->command_buffer, vk->timestamps, 0, 2);
        vk->fn.vkCmdWriteTimestamp(vk->command_buffer, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, vk->timestamps, 0);
    }
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
    vk->fn.vkCmdPipelineBarrier(vk->recording_cmd,
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
    if (!vk->queue) {
        return inorm_fail(ctx, INORM_ERROR_UNSUPPORTED,
                          "this imported context has no queue: record with inorm_cmd_* and submit yourself");
    }
    vk->recording_cmd = vk->command_buffer;
    if (vk->batch_timed)
        vk->fn.vkCmdWriteTimestamp(vk->command_buffer, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, vk->timestamps, 1);
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
        result = inorm_fault_hit(INORM_FAULT_SUBMIT) ? VK_ERROR_DEVICE_LOST
                                                     : vk->fn.vkQueueSubmit(vk->queue, 1, &submit, vk->fence);
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
    if (vk->batch_timed) {
        uint64_t ticks[2];
        if (vk->fn.vkGetQueryPoolResults(vk->device, vk->timestamps, 0, 2, sizeof ticks, ticks, sizeof ticks[0],
                                         VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT) == VK_SUCCESS)
            ctx->last_device_seconds = (double)(ticks[1] - ticks[0]) * vk->timestamp_period_ns * 1e-9;
    }
    return INORM_SUCCESS;
}

static VkResult create_descriptor_pool(vk_state *vk, VkDescriptorPool *out)
{
    const VkDescriptorPoolSize pool_sizes[2] = {
        { .type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .descriptorCount = VK_SETS_PER_BATCH * VK_BINDINGS },
        { .type = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER, .descriptorCount = VK_SETS_PER_BATCH * VK_TEXEL_BINDINGS },
    };
    VkDescriptorPoolCreateInfo info = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .maxSets = VK_SETS_PER_BATCH,
        .poolSizeCount = 2,
        .pPoolSizes = pool_sizes,
    };
    return vk->fn.vkCreateDescriptorPool(vk->device, &info, NULL, out);
}

/* Makes room for `count` descriptor sets: in the current batch (flushing a
 * full one), or for external recording in a fresh pool kept until release. */
static inorm_status reserve_sets(inorm_context *ctx, uint32_t count)
{
    vk_state *vk = ctx->vk;
    if (!vk->external_cmd)
        return vk->sets_used + count <= VK_SETS_PER_BATCH ? INORM_SUCCESS : vk_flush(ctx);
    if (vk->external_pool_count > 0 && vk->external_sets_used + count <= VK_SETS_PER_BATCH)
        return INORM_SUCCESS;
    VkDescriptorPool *pools = inorm_realloc(vk->external_pools, (vk->external_pool_count + 1) * sizeof *pools);
    if (!pools)
        return inorm_fail(ctx, INORM_ERROR_OUT_OF_HOST_MEMORY, "out of host memory for descriptor pools");
    vk->external_pools = pools;
    VkResult result = create_descriptor_pool(vk, &pools[vk->external_pool_count]);
    if (result != VK_SUCCESS)
        return vk_fail(ctx, result, "vkCreateDescriptorPool");
    vk->external_pool_count++;
    vk->external_sets_used = 0;
    return INORM_SUCCESS;
}

static VkDescriptorPool current_pool(const vk_state *vk)
{
    return vk->external_cmd ? vk->external_pools[vk->external_pool_count - 1] : vk->descriptor_pool;
}

/* A tensor's texel view, which kernels read with TEXEL_LOADS or
 * STYLE_TEXEL_LOADS, or VK_NULL_HANDLE (storage-buffer loads): for NHWC
 * kernels whose lanes load one channel quad at a time (quad_loads) an fp16
 * tensor's 8-byte texels (see vk_texel_view; texel_halves in
 * shaders/common.glsl reads either). */
static VkBufferView texels_of(const inorm_tensor *t, bool quad_loads)
{
    if (!t || !t->buffer)
        return VK_NULL_HANDLE;
    return quad_loads && t->desc.dtype == INORM_FLOAT16 ? t->buffer->quad_texels : t->buffer->texels;
}

/* A descriptor set with `buffers` at the storage bindings and the texel
 * views of x and the style (VK_NULL_HANDLE: the context's filler view) after them. */
static inorm_status write_set(inorm_context *ctx, const VkDescriptorBufferInfo buffers[VK_BINDINGS],
                              VkBufferView x_texels, VkBufferView style_texels, VkDescriptorSet *out)
{
    vk_state *vk = ctx->vk;
    VkDescriptorSetAllocateInfo info = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
        .descriptorPool = current_pool(vk),
        .descriptorSetCount = 1,
        .pSetLayouts = &vk->set_layout,
    };
    VkResult result = vk->fn.vkAllocateDescriptorSets(vk->device, &info, out);
    if (result != VK_SUCCESS)
        return vk_fail(ctx, result, "vkAllocateDescriptorSets");
    if (vk->external_cmd)
        vk->external_sets_used++;
    else
        vk->sets_used++;
    VkWriteDescriptorSet writes[VK_BINDINGS + VK_TEXEL_BINDINGS];
    for (uint32_t i = 0; i < VK_BINDINGS; ++i) {
        writes[i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstSet = *out,
            .dstBinding = i,
            .descriptorCount = 1,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .pBufferInfo = &buffers[i],
        };
    }
    const VkBufferView views[VK_TEXEL_BINDINGS] = { x_texels ? x_texels : vk->texel_filler.texels,
                                                    style_texels ? style_texels : vk->texel_filler.texels };
    for (uint32_t i = 0; i < VK_TEXEL_BINDINGS; ++i) {
        writes[VK_BINDINGS + i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstSet = *out,
            .dstBinding = VK_BINDINGS + i,
            .descriptorCount = 1,
            .descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
            .pTexelBufferView = &views[i],
        };
    }
    vk->fn.vkUpdateDescriptorSets(vk->device, VK_BINDINGS + VK_TEXEL_BINDINGS, writes, 0, NULL);
    return INORM_SUCCESS;
}

/* A dispatch that may run alongside the one recorded before it (no barrier
 * between them): they read the same data and write apart. */
static void record_unordered_dispatch(vk_state *vk, VkPipeline pipeline, VkDescriptorSet set,
                                      const vk_push_constants *push, uint32_t workgroups)
{
    VkCommandBuffer cmd = vk->recording_cmd;
    vk->fn.vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline);
    vk->fn.vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, vk->pipeline_layout, 0, 1, &set, 0, NULL);
    vk->fn.vkCmdPushConstants(cmd, vk->pipeline_layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof *push, push);
    uint32_t width = workgroups < vk->limits.maxComputeWorkGroupCount[0] ? workgroups
                                                                         : vk->limits.maxComputeWorkGroupCount[0];
    vk->fn.vkCmdDispatch(cmd, width, (workgroups + width - 1) / width, 1);
}

static void record_dispatch(vk_state *vk, VkPipeline pipeline, VkDescriptorSet set, const vk_push_constants *push,
                            uint32_t workgroups)
{
    record_device_barrier(vk);
    record_unordered_dispatch(vk, pipeline, set, push, workgroups);
}

/* The partials buffer of the current recording: immediate ops and recorded
 * external work never share one, since their executions are not ordered. */
static vk_buffer *active_scratch(vk_state *vk)
{
    return vk->external_cmd ? &vk->external_scratch : &vk->scratch;
}

inorm_status vk_buffer_retire(inorm_context *ctx, vk_buffer *buffer)
{
    vk_state *vk = ctx->vk;
    if (!vk->external_pending || buffer->borrowed) {
        vk_buffer_destroy(vk, buffer);
        return INORM_SUCCESS;
    }
    vk_buffer *retired = inorm_realloc(vk->retired, (vk->retired_count + 1) * sizeof *retired);
    if (!retired)
        return inorm_fail(ctx, INORM_ERROR_OUT_OF_HOST_MEMORY, "out of host memory retiring a buffer");
    vk->retired = retired;
    retired[vk->retired_count++] = *buffer;
    *buffer = (vk_buffer){ 0 };
    return INORM_SUCCESS;
}

void vk_release_external(vk_state *vk)
{
    for (uint32_t i = 0; i < vk->retired_count; ++i)
        vk_buffer_destroy(vk, &vk->retired[i]);
    for (uint32_t i = 0; i < vk->external_pool_count; ++i)
        vk->fn.vkDestroyDescriptorPool(vk->device, vk->external_pools[i], NULL);
    inorm_free(vk->retired);
    inorm_free(vk->external_pools);
    vk->retired = NULL;
    vk->retired_count = 0;
    vk->external_pools = NULL;
    vk->external_pool_count = 0;
    vk->external_pending = false;
}

/* Grows the partials buffer to at least `bytes`: after pending immediate
 * work is done, or (external recording) keeping the old one until release. */
static inorm_status ensure_scratch(inorm_context *ctx, VkDeviceSize bytes)
{
    vk_state *vk = ctx->vk;
    vk_buffer *scratch = active_scratch(vk);
    if (scratch->buffer && bytes <= scratch->size)
        return INORM_SUCCESS;
    inorm_status status = vk->external_cmd ? INORM_SUCCESS : vk_flush(ctx);
    if (status != INORM_SUCCESS)
        return status;
    VkDeviceSize size = scratch->size * 2;
    if (size < bytes)
        size = bytes;
    if (size < 64 * 1024)
        size = 64 * 1024;
    vk_buffer grown;
    if ((status = vk_buffer_create(ctx, size, false, &grown)) != INORM_SUCCESS)
        return status;
    if (scratch->buffer && (status = vk_buffer_retire(ctx, scratch)) != INORM_SUCCESS) {
        vk_buffer_destroy(vk, &grown);
        return status;
    }
    *scratch = grown;
    return INORM_SUCCESS;
}

/* ---------------------------------------------------------------------------
 * The kernel plan
 * ------------------------------------------------------------------------ */

typedef struct segment_plan {
    uint32_t seg_len, seg_count, chunk_len, chunks;
    bool vec4;
} segment_plan;

static bool subgroup_workgroups(const vk_state *vk)
{
    return vk->subgroup_workgroups && vk->use_subgroup_ops;
}

static uint32_t choose_workgroup_size(const vk_state *vk, uint64_t units)
{
    if (subgroup_workgroups(vk))
        return vk->subgroup_size;
    uint32_t size = units >= 2048 ? 256 : units >= 512 ? 128 : 64;
    while (size > 64 && (size > vk->limits.maxComputeWorkGroupInvocations ||
                         size > vk->limits.maxComputeWorkGroupSize[0]))
        size /= 2;
    return size;
}

/* Cuts `length` units into chunks of `lanes` * ITEMS_PER_LANE units, or
 * fewer, larger ones (a multiple of `lanes`) when that gives more than
 * max_chunks. Each lane's loop then runs at most chunk / lanes times:
 * lavapipe silently ends an invocation's loops after 65535 iterations, so
 * chunks stay under MAX_LANE_TRIPS per lane even past max_chunks (with
 * small workgroups a 32M-element plane in 64 chunks would not). */
static void plan_chunks(const vk_state *vk, uint64_t length, uint32_t lanes, uint32_t max_chunks,
                        uint32_t *chunk_len, uint32_t *chunks)
{
    uint64_t chunk = (uint64_t)lanes * (subgroup_workgroups(vk) ? SUBGROUP_ITEMS_PER_LANE : ITEMS_PER_LANE);
    uint64_t count = (length + chunk - 1) / chunk;
    if (count > max_chunks) {
        chunk = (length + max_chunks - 1) / max_chunks;
        chunk = (chunk + lanes - 1) / lanes * lanes;
        count = (length + chunk - 1) / chunk;
    }
    if (chunk > (uint64_t)lanes * MAX_LANE_TRIPS) {
        chunk = (uint64_t)lanes * MAX_LANE_TRIPS;
        count = (length + chunk - 1) / chunk;
    }
    *chunk_len = (uint32_t)chunk;
    *chunks = (uint32_t)count;
}

static segment_plan plan_nchw(const vk_state *vk, uint32_t seg_len, uint32_t seg_count, bool vec4,
                              uint32_t workgroup_size, uint32_t max_chunks)
{
    segment_plan plan = { .seg_len = seg_len, .seg_count = seg_count, .vec4 = vec4 };
    uint32_t unit = vec4 ? 4 : 1;
    plan_chunks(vk, seg_len / unit, workgroup_size, max_chunks, &plan.chunk_len, &plan.chunks);
    plan.chunk_len *= unit;
    return plan;
}

/* NHWC: seg_len is the plane (pixels); chunks cut the plane, per channel. */
static segment_plan plan_nhwc(const vk_state *vk, uint32_t plane_len, uint32_t planes, uint32_t rows,
                              uint32_t max_chunks)
{
    segment_plan plan = { .seg_len = plane_len, .seg_count = planes };
    plan_chunks(vk, plane_len, rows, max_chunks, &plan.chunk_len, &plan.chunks);
    return plan;
}

/* A tensor's descriptor range, or the scratch buffer for an unused binding. */
static VkDescriptorBufferInfo binding_of(vk_state *vk, const inorm_tensor *t)
{
    if (!t)
        return (VkDescriptorBufferInfo){ active_scratch(vk)->buffer, 0, VK_WHOLE_SIZE };
    const vk_buffer *b = t->buffer;
    return (VkDescriptorBufferInfo){ b->buffer, b->offset, b->borrowed ? t->bytes : VK_WHOLE_SIZE };
}

static inorm_status check_grid(inorm_context *ctx, uint64_t workgroups)
{
    const VkPhysicalDeviceLimits *limits = &ctx->vk->limits;
    uint64_t grid_limit = (uint64_t)limits->maxComputeWorkGroupCount[0] * limits->maxComputeWorkGroupCount[1];
    if (workgroups > grid_limit || workgroups > UINT32_MAX)
        return inorm_fail(ctx, INORM_ERROR_UNSUPPORTED, "the shape needs %llu workgroups; the device allows %llu",
                          (unsigned long long)workgroups, (unsigned long long)grid_limit);
    return INORM_SUCCESS;
}

/* One op's dispatches: statistics, then (NHWC or stats) a per-segment
 * finalize, then (NCHW normalize: instead of finalize; NHWC: after it) the
 * elementwise apply. */
typedef struct op_plan {
    vk_push_constants push;
    uint32_t workgroup_size;
    segment_plan content, style;
    uint64_t stats_groups, finalize_groups, apply_groups;
    uint64_t style_stats_groups; /* of stats_groups, the style's (the last ones) */
    uint32_t stats_sources;  /* VK_SOURCES_*; with the style in a dispatch of its own where VK_SOURCES_CONTENT */
    uint64_t scratch_vec4s;
    uint32_t mode;
    bool fused;              /* one single-read dispatch instead of all the above */
    uint32_t team, regs;
    bool half_pairs;         /* fp16: 8 halves a load (fused teams, NHWC tiles: HALF_PAIR_UNITS; NCHW passes: HALF_PAIRS) */
    uint32_t quads_per_lane; /* NHWC with vec4: channel quads per lane */
    uint32_t fold;           /* NHWC with vec4: pixels read as one row (FOLD in shaders/common.glsl) */
    bool self_stats;         /* strategy (b): a workgroup reduces and normalizes its segments (NHWC: its tile), 1 dispatch */
    bool nhwc;               /* the kernels' layout: NHWC tiles (an NHWC layer norm may run as NCHW) */
    bool channels_inner;     /* NHWC layer norm as NCHW: a sample is one segment, channel = index % C */
    bool segment_tiles;      /* NHWC: one partial per statistics workgroup (FLAG_SEGMENT_TILES) */
    uint32_t segment_partials; /* per content segment (nhwc_segment_partials in shaders/common.glsl) */
    uint64_t fused_groups;
} op_plan;

/* Workgroups of the style's statistics dispatch where the style has one of
 * its own (VK_SOURCES_CONTENT), else 0. */
static uint64_t style_dispatch_groups(const op_plan *plan)
{
    return plan->stats_sources == VK_SOURCES_CONTENT ? plan->style_stats_groups : 0;
}

static uint32_t next_power_of_two(uint64_t value)
{
    uint32_t power = 1;
    while (power < value)
        power *= 2;
    return power;
}

/* Strategy (a)/(d): a segment that fits in one team's registers is read
 * once; small ones share a workgroup. Not for masks. AdaIN only where its
 * style plane has at most the content plane's elements (and, read as vec4s,
 * whole vec4s): the team reduces its style plane through the same registers
 * first, and no content element pays for more than one style element read,
 * which keeps the 12 bytes per fp32 element of the two-dispatch plan in one
 * dispatch. Larger styles and style masks keep their own statistics. */
static bool plan_fused(const vk_state *vk, const inorm_op *op, op_plan *plan)
{
    const inorm_tensor_desc *d = &op->x->desc;
    if (op->mask || vk->disable_fused)
        return false;
    const uint32_t plane_len = d->h * d->w, cps = op->channels_per_segment;
    const inorm_tensor_desc *s = op->style ? &op->style->desc : NULL;
    const uint32_t style_len = s ? s->h * s->w : 0;
    if (s && (op->style_mask || style_len > plane_len))
        return false;
    const bool one_subgroup = subgroup_workgroups(vk);
    if (d->layout == INORM_NHWC) {
        /* tiny planes: a lane per channel quad (or channel) and sample,
         * every pixel in its registers, or (group norm) a lane per group of
         * at most FUSED_NHWC_MAX_GROUP values; the two-pass NHWC plan would
         * write and merge a partial per 16 elements */
        const uint32_t max_pixels = one_subgroup ? FUSED_NHWC_SUBGROUP_MAX_PIXELS : FUSED_LANE_MAX_UNITS;
        if (plane_len > max_pixels || (uint64_t)plane_len * cps > FUSED_NHWC_MAX_GROUP)
            return false;
        const bool vec4 = d->c % 4 == 0 && (cps == 1 || cps % 4 == 0);
        plan->fused = true;
        plan->team = 1;
        plan->regs = plane_len;
        plan->workgroup_size = FUSED_LANE_WORKGROUP;
        plan->content = (segment_plan){ .seg_len = plane_len * cps, .seg_count = d->n * d->c / cps, .vec4 = vec4 };
        if (s)
            plan->style = (segment_plan){ .seg_len = style_len, .seg_count = s->n * s->c, .vec4 = vec4 };
        const uint64_t lanes = cps > 1 ? plan->content.seg_count : (uint64_t)d->n * (vec4 ? d->c / 4 : d->c);
        plan->fused_groups = (lanes + FUSED_LANE_WORKGROUP - 1) / FUSED_LANE_WORKGROUP;
        return true;
    }
    const uint64_t seg_len = (uint64_t)plane_len * cps;
    const bool vec4 = seg_len % 4 == 0 && (cps == 1 || plane_len % 4 == 0);
    const uint64_t units = seg_len / (vec4 ? 4 : 1);
    if (s && vec4 && style_len % 4 != 0)
        return false;
    uint32_t max_team = one_subgroup ? vk->subgroup_size : FUSED_MAX_TEAM;
    while (max_team > 64 && (max_team > vk->limits.maxComputeWorkGroupInvocations ||
                             max_team > vk->limits.maxComputeWorkGroupSize[0]))
        max_team /= 2;
    if (units > (uint64_t)max_team * (one_subgroup ? FUSED_SUBGROUP_MAX_REGS : FUSED_MAX_REGS))
        return false;
    uint32_t team = next_power_of_two((units + FUSED_TARGET_REGS - 1) / FUSED_TARGET_REGS);
    if (one_subgroup)
        team = units <= FUSED_LANE_MAX_UNITS ? 1 : max_team;
    if (team > max_team)
        team = max_team;
    plan->fused = true;
    plan->team = team;
    plan->regs = (uint32_t)((units + team - 1) / team);
    if (one_subgroup)
        plan->workgroup_size = team == 1 ? FUSED_LANE_WORKGROUP : team;
    else
        plan->workgroup_size = team < 64 ? 64 : team;
    plan->content = (segment_plan){ .seg_len = (uint32_t)seg_len, .seg_count = d->n * d->c / cps, .vec4 = vec4 };
    if (s)
        plan->style = (segment_plan){ .seg_len = style_len, .seg_count = s->n * s->c, .vec4 = vec4 };
    /* fp16: a lane's units in pairs, one 16-byte load each, where segments
     * (and groups' planes) are whole pairs and the lane holds whole pairs */
    plan->half_pairs = d->dtype == INORM_FLOAT16 && vec4 && seg_len % 8 == 0 && (cps == 1 || plane_len % 8 == 0) &&
                       (!s || style_len % 8 == 0) && plan->regs % 2 == 0;
    uint32_t teams = plan->workgroup_size / team;
    plan->fused_groups = (plan->content.seg_count + teams - 1) / teams;
    return true;
}

/* NHWC chunks per plane. Few partials per segment let each apply lane merge
 * its own channel's, with no finalize dispatch. Those merges read 32 * K
 * bytes per channel and tile, K the chunks, against a tile's 4 * P / K
 * elements: K <= sqrt(P) / 16 keeps that under an eighth of a byte per
 * element. Group norm keeps the same K (its lanes merge cps * K partials,
 * all in cache): with K / cps, 8x256x64x64 in 32 groups got one chunk per
 * plane and ran at half instance norm's speed on lavapipe. Segments of
 * many channels (layer norm) keep the finalize. */
static uint32_t nhwc_max_chunks(uint32_t plane_len, uint32_t channels_per_segment)
{
    if (channels_per_segment > LANE_FINALIZE_MAX_PARTIALS)
        return MAX_CHUNKS_NHWC;
    uint32_t k = 1;
    while ((uint64_t)(2 * k) * (2 * k) * 256 <= plane_len && 2 * k <= LANE_FINALIZE_MAX_PARTIALS &&
           2 * k * channels_per_segment <= LANE_COEFF_MAX_PARTIALS)
        k *= 2;
    return k;
}

/* NHWC on GPUs (a lane per channel): the channels of a tile. NHWC_CHANNEL_BLOCK,
 * or for group norm whose groups neither divide it nor are whole tiles of
 * it (groups of 10, 20, 30, 40 channels: Stable Diffusion's UNet and VAE
 * with C = 320, 640, 960, 1280) the widest block of at least 8 channels
 * that divides C and either holds whole groups, so that a statistics
 * workgroup merges each group into one partial, or is a part of one
 * group, so that a group is whole tiles (FLAG_SEGMENT_TILES). With a
 * partial per channel every apply lane merged its group's cps partials:
 * 2x1280x8x8 moved 32 bytes per element, 2x1280x16x16 17. */
static uint32_t nhwc_gpu_block(uint32_t channels, uint32_t channels_per_segment)
{
    const uint32_t cps = channels_per_segment;
    if (channels <= NHWC_CHANNEL_BLOCK)
        return channels;
    if (cps == 1 || cps == channels || NHWC_CHANNEL_BLOCK % cps == 0 || cps % NHWC_CHANNEL_BLOCK == 0)
        return NHWC_CHANNEL_BLOCK;
    for (uint32_t block = NHWC_CHANNEL_BLOCK; block >= 8; --block)
        if (channels % block == 0 && (block % cps == 0 || cps % block == 0))
            return block;
    return NHWC_CHANNEL_BLOCK;
}

/* NCHW on CPU devices: a segment past one chunk (2048 units: planes or
 * groups from 8K elements) is still taken whole by one workgroup, which
 * reduces it and then normalizes it from cache in one dispatch
 * (FLAG_SELF_STATS; AdaIN's style statistics a dispatch before it), where
 * the segments are enough to keep every thread busy (lavapipe runs one per
 * core). That saves a dispatch and the merge of partials, which counts on
 * tensors of a few MB. lavapipe, alternating runs (5 rounds): group norm
 * in 32 groups 1x512x32x32 0.74 -> 0.60 ms (fp32 and fp16 alike),
 * 1x256x64x64 1.30 -> 1.11, 1x128x128x128 2.5 -> 2.2; fp16 1x64x256x256
 * instance norm 4.5 -> 4.0; AdaIN 1x64x96x96 1.15 -> 1.02, 2x64x128x128
 * 3.5 -> 3.3. Larger tensors lost: 8x256x64x64 group norm 9.1 -> 10.4 ms
 * in fp16 (16 MB), 2x64x256x256 instance norm 10.2 -> 11.9 ms (32 MB), for
 * reasons not pinned down. Masks and the statistics op keep the statistics
 * pass, as below. */
static bool whole_segments(const vk_state *vk, const inorm_op *op, uint32_t seg_count)
{
    return subgroup_workgroups(vk) && op->kind != INORM_OP_STATS && !op->mask && !op->style_mask &&
           op->x->bytes <= WHOLE_SEGMENTS_MAX_BYTES &&
           seg_count >= WHOLE_SEGMENTS_PER_THREAD * vk->host_threads;
}

/* nhwc_self_stats(): workgroups (tiles) the plan needs at the least */
static uint64_t nhwc_self_min_workgroups(const vk_state *vk)
{
    return (uint64_t)NHWC_SELF_STATS_PER_THREAD * vk->host_threads;
}

/* NHWC on CPU devices, C % 4 == 0 so that lanes hold channel quads:
 * instance norm, AdaIN's content, the modulation, and group norm whose
 * groups are whole quads of neighbouring lanes (the group's lanes sum their
 * moments with subgroup sums). Each tile covers its channels' whole plane,
 * and the apply lanes reduce their own quads over it and then normalize
 * them from cache (FLAG_SELF_STATS): one dispatch (AdaIN: the style's
 * statistics first) and no partials. Where the tensor is small, its tiles
 * of one quad per lane (quad_tiles of quad_tile_bytes) keep every thread
 * busy and fit in a core's cache.
 * lavapipe, paired ratios to the copy shader, three rounds: fp32 instance
 * norm 1x256x64x64 0.53 -> 0.61, 1x512x32x32 0.56 -> 0.63, 2x128x32x32
 * 0.58 -> 0.74, 16x32x32x32 0.60 -> 0.72, 1x128x64x64 0.58 -> 0.61; AdaIN
 * 1x256x64x64 0.59 -> 0.67. An 8 MiB tensor lost (8x64x64x64 instance norm
 * 0.64 -> 0.62, AdaIN 0.79 -> 0.60), as did more quads per lane and fewer
 * workgroups (1x256x64x64 two quads, 4 workgroups: 0.52).
 * Tiles of at most a quarter of the lanes (C = 4 or 8) keep the statistics
 * pass: their rows share the apply's pixels (apply_nhwc4), so each would
 * reduce the whole plane for the same channels (instance norm 32x4x64x64
 * 0.31 -> 0.51, 16x8x64x64 0.47 -> 0.62, 8x8x128x64 0.47 -> 0.66). */
static bool nhwc_self_stats(const vk_state *vk, const inorm_op *op, uint32_t block, uint64_t quad_tiles,
                            uint64_t quad_tile_bytes)
{
    const uint32_t cps = op->channels_per_segment, group_quads = cps / 4;
    const bool lane_groups = cps == 1 || (cps % 4 == 0 && group_quads < block && block % group_quads == 0);
    return subgroup_workgroups(vk) && block * 4 > vk->subgroup_size && lane_groups &&
           op->kind != INORM_OP_STATS && !op->mask && !op->style_mask && op->x->bytes <= NHWC_SELF_STATS_MAX_BYTES &&
           quad_tile_bytes <= NHWC_SELF_STATS_MAX_TILE_BYTES && quad_tiles >= nhwc_self_min_workgroups(vk);
}

static void plan_op(const vk_state *vk, const inorm_op *op, op_plan *plan)
{
    const inorm_tensor_desc *d = &op->x->desc;
    const bool nhwc = d->layout == INORM_NHWC;
    const uint32_t plane_len = d->h * d->w;
    const uint32_t cps = op->channels_per_segment;
    const uint32_t seg_count = d->n * d->c / cps;
    const inorm_tensor_desc *s = op->style ? &op->style->desc : NULL;
    memset(plan, 0, sizeof *plan);
    plan->fold = 1;
    plan->mode = op->kind == INORM_OP_ADAIN ? MODE_ADAIN : op->kind == INORM_OP_STATS ? MODE_FINALIZE : MODE_NORMALIZE;
    vk_push_constants *push = &plan->push;
    push->channels_per_partial = 1;

    const bool fused = plan_fused(vk, op, plan);
    /* NHWC layer norm: a sample is one contiguous segment, as in NCHW, only
     * with the channels innermost. Where it fits one chunk, the NCHW plan
     * reduces and normalizes it in one workgroup and one dispatch instead of
     * a statistics pass over channel tiles and an apply. */
    if (!fused && nhwc && cps == d->c && d->c % 4 == 0 && !op->mask && op->kind != INORM_OP_STATS) {
        /* the apply's lanes each keep whole channel quads (norm_apply.comp) */
        const uint32_t seg_len = plane_len * d->c, quads = d->c / 4;
        const uint32_t size = choose_workgroup_size(vk, seg_len / 4);
        plan->channels_inner = (size % quads == 0 || quads % size == 0) &&
                               plan_nchw(vk, seg_len, seg_count, true, size, MAX_CHUNKS).chunks == 1;
    }
    plan->nhwc = nhwc && !plan->channels_inner;
    if (fused) {
        /* geometry set; the push constants below complete it */
    } else if (plan->nhwc) {
        uint32_t block = nhwc_gpu_block(d->c, cps);
        plan->workgroup_size = choose_workgroup_size(vk, (uint64_t)plane_len * block / 4);
        /* Workgroups of one subgroup: 4 channels per lane when C % 4 == 0
         * (block then counts channel quads), and a tile's rows take
         * consecutive chunks, each lane its own (no barriers to merge rows
         * with): chunks are planned per lane. */
        const bool one_subgroup = subgroup_workgroups(vk);
        /* C % 4 != 0 (RGB): FOLD pixels as one row of C * FOLD values, where
         * the planes divide and no mask weighs single pixels (1x3x1024x1024
         * read by scalar loads used 3 of 8 lanes and ran at 0.25 of the copy) */
        if (one_subgroup && d->c % 4 != 0 && !op->mask && !op->style_mask) {
            const uint32_t fold = 4 / (d->c % 2 == 0 ? 2 : 1);
            if (plane_len % fold == 0 && (!s || (s->h * s->w) % fold == 0))
                plan->fold = fold;
        }
        const uint32_t fold = plan->fold;
        const bool quads = one_subgroup && (d->c * fold) % 4 == 0;
        const uint32_t lanes_across = quads ? d->c * fold / 4 : d->c;
        if (one_subgroup)
            block = lanes_across < plan->workgroup_size ? lanes_across : plan->workgroup_size;
        const uint32_t rows = plan->workgroup_size / block;
        const uint32_t chunk_rows = one_subgroup ? 1 : rows;
        push->channel_block = block;
        /* Segments of whole tiles (layer norm, whatever C; groups of a
         * multiple of a tile's channels): each statistics workgroup merges
         * its channels into one partial, so a segment has few (its tiles
         * times chunks) and the apply merges them itself, with no finalize
         * dispatch, however many channels the segment has. */
        const uint32_t tile_values = block * (quads ? 4 : 1);  /* with one quad per lane */
        const bool layer = cps == d->c;
        plan->segment_tiles = cps > 1 && !s && (layer || (cps * fold) % tile_values == 0);
        uint32_t max_chunks = nhwc_max_chunks(plane_len / fold, plan->segment_tiles ? 1 : cps * fold);
        if (plan->segment_tiles) {  /* the apply's lanes merge tiles x chunks partials per segment */
            const uint32_t tiles = (cps * fold + tile_values - 1) / tile_values;
            const uint32_t fit = tiles < LANE_COEFF_MAX_PARTIALS ? LANE_COEFF_MAX_PARTIALS / tiles : 1;
            max_chunks = max_chunks < fit ? max_chunks : fit;
        }
        /* a plane's tile of one quad per lane, in bytes (nhwc_self_stats) */
        const uint64_t quad_tile_bytes = (uint64_t)plane_len * block * 4 * (d->dtype == INORM_FLOAT16 ? 2 : 4);
        const bool self = quads && fold == 1 &&
                          nhwc_self_stats(vk, op, block, (uint64_t)d->n * ((lanes_across + block - 1) / block),
                                          quad_tile_bytes);
        if (self)
            max_chunks = 1;
        plan->content = plan_nhwc(vk, plane_len / fold, seg_count, chunk_rows, max_chunks);
        /* fp16 lanes of an even number of quads take them in neighbouring
         * pairs, 8 halves a load (slot_quad in shaders/common.glsl). Groups
         * reduced by the apply's lanes side by side (self) are one quad or
         * whole pairs of them (self_pair_group_stats in norm_apply.comp);
         * partials are per channel or quad, wherever its lane is. */
        const bool pairable = d->dtype == INORM_FLOAT16 && quads && fold == 1 &&
                              (!self || cps == 1 || cps == 4 || cps % 8 == 0);
        /* Several quads per lane where they share out evenly and enough
         * workgroups remain: a workgroup then reads QUADS_PER_LANE * block
         * neighbouring quads of each pixel row (measured on lavapipe,
         * 8x256x64x64 fp32: 42 ms with 1 quad per lane, 13 ms with 8).
         * Lanes of one quad that could load pairs count twice towards the
         * workgroups needed for two: lavapipe, fp16 1x256x64x64 (4
         * workgroups instead of 8), fastest of 12 alternating runs: instance
         * norm 0.72 -> 0.64 ms, AdaIN 1.00 -> 0.85 ms (fp32 lost: 0.61 ->
         * 0.52 of the copy, nhwc_self_stats). */
        plan->quads_per_lane = 1;
        while (quads && plan->quads_per_lane < NHWC_MAX_QUADS_PER_LANE &&
               lanes_across % (block * plan->quads_per_lane * 2) == 0 &&
               (!plan->segment_tiles || layer || (cps * fold) % (tile_values * plan->quads_per_lane * 2) == 0) &&
               (uint64_t)d->n * (lanes_across / (block * plan->quads_per_lane * 2)) * plan->content.chunks *
                       (pairable && plan->quads_per_lane == 1 ? 2 : 1) >=
                   (self ? nhwc_self_min_workgroups(vk) : NHWC_MIN_WORKGROUPS) &&
               (!self || quad_tile_bytes * plan->quads_per_lane * 2 <= NHWC_SELF_STATS_MAX_TILE_BYTES))
            plan->quads_per_lane *= 2;
        push->channel_blocks = (lanes_across + block * plan->quads_per_lane - 1) / (block * plan->quads_per_lane);
        plan->half_pairs = pairable && plan->quads_per_lane % 2 == 0;
        if (s)
            plan->style = plan_nhwc(vk, s->h * s->w / fold, s->n * s->c, chunk_rows,
                                    nhwc_max_chunks(s->h * s->w / fold, fold));
        plan->content.vec4 = plan->style.vec4 = quads;
        /* workgroups per tile along the plane (tile_workgroup_chunks in shaders/common.glsl) */
        const uint32_t chunks_per_group = one_subgroup ? rows : 1;
        const uint64_t content_groups = (plan->content.chunks + chunks_per_group - 1) / chunks_per_group;
        const uint64_t style_groups = (plan->style.chunks + chunks_per_group - 1) / chunks_per_group;
        uint64_t tiles = (uint64_t)d->n * push->channel_blocks;
        plan->style_stats_groups = s ? (uint64_t)s->n * push->channel_blocks * style_groups : 0;
        plan->stats_groups = tiles * content_groups + plan->style_stats_groups;
        plan->finalize_groups = seg_count;
        plan->apply_groups = op->kind == INORM_OP_STATS ? 0 : tiles * content_groups;
        /* Narrower groups: a partial per lane's quad where quads lie in one
         * group (CPU devices), per group where groups lie in a tile (GPUs),
         * so that each apply lane merges a quarter (a group's width) of the
         * partials it would per channel. */
        if (!plan->segment_tiles && cps > 1 && fold == 1) {
            if (quads && cps % 4 == 0)
                push->channels_per_partial = 4;
            else if (!one_subgroup && !quads && block % cps == 0)
                push->channels_per_partial = cps;
        }
        plan->segment_partials = plan->segment_tiles ? push->channel_blocks / (d->c / cps) * (uint32_t)content_groups
                                                     : plan->content.chunks * cps * fold / push->channels_per_partial;
        push->style_partial_base = seg_count * plan->segment_partials;
        if (self && plan->content.chunks == 1 && (!s || plan->style.chunks <= LANE_COEFF_MAX_PARTIALS)) {
            plan->self_stats = true;
            plan->stats_groups = plan->style_stats_groups;
            plan->finalize_groups = 0;
            push->style_partial_base = 0;
        }
    } else {
        uint32_t seg_len = plane_len * cps;
        /* a vec4 lies in one channel (NCHW) or holds four (channels innermost) */
        bool vec4 = seg_len % 4 == 0 && (cps == 1 || (plan->channels_inner ? d->c : plane_len) % 4 == 0);
        plan->workgroup_size = choose_workgroup_size(vk, vec4 ? seg_len / 4 : seg_len);
        plan->content = plan_nchw(vk, seg_len, seg_count, vec4, plan->workgroup_size,
                                  whole_segments(vk, op, seg_count) ? 1 : MAX_CHUNKS);
        if (s) {
            uint32_t style_len = s->h * s->w;
            plan->style = plan_nchw(vk, style_len, s->n * s->c, style_len % 4 == 0, plan->workgroup_size, MAX_CHUNKS);
        }
        uint64_t content_groups = (uint64_t)seg_count * plan->content.chunks;
        plan->style_stats_groups = (uint64_t)plan->style.seg_count * plan->style.chunks;
        plan->stats_groups = content_groups + plan->style_stats_groups;
        plan->finalize_groups = op->kind == INORM_OP_STATS ? seg_count : 0;
        plan->apply_groups = op->kind == INORM_OP_STATS ? 0 : content_groups;
        plan->segment_partials = plan->content.chunks;
        push->style_partial_base = seg_count * plan->content.chunks;
        /* Segments of one chunk (medium planes): the apply workgroup reduces
         * its segment itself and normalizes it while it is in cache, one
         * dispatch instead of two and no partials (lavapipe: 1x512x32x32
         * 0.87 -> 0.75 ms, 1x256x64x64 1.31 -> 1.23 ms). AdaIN keeps a
         * statistics pass for its style alone (FLAG_SELF_STATS tells the
         * statistics kernel that there are no content workgroups). Masks
         * keep the statistics pass; so does the stats op, which was no
         * faster this way. */
        if (plan->content.chunks == 1 && !op->mask && !op->style_mask && op->kind != INORM_OP_STATS) {
            plan->self_stats = true;
            plan->stats_groups = plan->style_stats_groups;
            push->style_partial_base = 0;
        }
        /* fp16: the kernels' loops take the content's 4-vectors in pairs, 8
         * halves a load, over ranges that start and end on a pair (HALF_PAIRS
         * in shaders/common.glsl, decided there per range; recorded here for
         * the plan's description): chunks of whole pairs, or one chunk of a
         * segment of whole pairs */
        plan->half_pairs = d->dtype == INORM_FLOAT16 && !plan->channels_inner && vec4 && seg_len % 8 == 0 &&
                           (plan->content.chunks == 1 || plan->content.chunk_len % 8 == 0);
    }
    /* AdaIN's content and style statistics: one dispatch whose workgroups
     * branch on the tensor they read (GPUs, NHWC), or on CPU devices for
     * NCHW a dispatch of a kernel that reads the content alone and one that
     * reads the style alone, unordered (SOURCES in shaders/norm_stats.comp):
     * lavapipe, alternating runs of AdaIN alone, 1x3x1024x1024 fp32 8.3 ->
     * 6.1 ms, 1x64x256x256 11.3 -> 9.2 ms (full benchmark runs: 7.2 -> 5.9
     * ms, and 1x3x1024x1024 unchanged); NHWC gained nothing and tiny shapes
     * lost the extra dispatch's ~50 us. */
    plan->stats_sources = s && !plan->nhwc && !plan->self_stats && subgroup_workgroups(vk) ? VK_SOURCES_CONTENT
                                                                                            : VK_SOURCES_BOTH;
    uint32_t style_partials = plan->style.seg_count * plan->style.chunks * plan->fold;
    push->coeff_base = push->style_partial_base + style_partials;
    plan->scratch_vec4s = push->coeff_base + (plan->nhwc ? (uint64_t)d->n * d->c : 0);

    push->seg_len = plan->content.seg_len;
    push->seg_count = seg_count;
    push->chunk_len = plan->content.chunk_len;
    push->chunks = plan->content.chunks;
    push->style_seg_len = plan->style.seg_len;
    push->style_seg_count = plan->style.seg_count;
    push->style_chunk_len = plan->style.chunk_len;
    push->style_chunks = plan->style.chunks;
    push->plane_len = plane_len;
    push->channels = d->c;
    push->channels_per_seg = cps;
    push->style_sample_stride = s && s->n > 1 ? d->c : 0;
    push->flags = (op->gamma ? FLAG_GAMMA : 0) | (op->beta ? FLAG_BETA : 0) |
                  (op->affine == INORM_AFFINE_SAMPLE ? FLAG_PER_SAMPLE : 0) |
                  (op->affine == INORM_AFFINE_BANK ? FLAG_BANK : 0) | (op->unbiased ? FLAG_UNBIASED : 0) |
                  (op->mean_out ? FLAG_MEAN_OUT : 0) | (op->std_out ? FLAG_STD_OUT : 0) |
                  (op->mask ? FLAG_MASK : 0) | (op->style_mask ? FLAG_STYLE_MASK : 0) |
                  (op->accumulate ? FLAG_ACCUMULATE : 0) | (plan->self_stats ? FLAG_SELF_STATS : 0) |
                  (plan->segment_tiles ? FLAG_SEGMENT_TILES : 0) | (plan->channels_inner ? FLAG_CHANNELS_INNER : 0);
    push->eps = op->eps;
    push->alpha = op->alpha;
    push->activation = (uint32_t)op->activation;
    push->activation_slope = op->activation_slope;
    push->bank_size = op->bank_size;
    push->mask_sample_stride = op->mask && op->mask->desc.n > 1 ? plane_len : 0;
    push->style_mask_sample_stride = op->style_mask && op->style_mask->desc.n > 1 ? s->h * s->w : 0;
    push->out_weight = op->out_weight;
    push->out_repeat = op->out_repeat;
    push->out_repeat_first = op->out_repeat_first;
    push->samples = d->n;
    const uint32_t partials_per_segment = plan->segment_partials;
    const uint32_t style_partials_per_channel = plan->style.chunks * plan->fold;
    if (plan->nhwc && plan->apply_groups && partials_per_segment <= LANE_COEFF_MAX_PARTIALS &&
        (!s || style_partials_per_channel <= LANE_COEFF_MAX_PARTIALS)) {
        push->flags |= FLAG_LANE_COEFF;
        plan->finalize_groups = 0;
    }
    if (plan->finalize_groups && !plan->self_stats && partials_per_segment <= LANE_FINALIZE_MAX_PARTIALS &&
        (!s || style_partials_per_channel <= LANE_FINALIZE_MAX_PARTIALS)) {
        push->flags |= FLAG_LANE_FINALIZE;
        plan->finalize_groups = (plan->finalize_groups + plan->workgroup_size - 1) / plan->workgroup_size;
    }
}

/* The bytes the two- and three-pass plans move: x read by the statistics and
 * again by the apply, y written, the style read once, and the partials
 * (written once, read by every apply workgroup of their segment, or once by
 * the finalize). */
static void describe_plan(const inorm_op *op, const op_plan *plan, inorm_plan_info *info)
{
    const bool nhwc = plan->nhwc;
    const double partial = 4.0 * sizeof(float);
    const uint64_t partials = plan->push.coeff_base;
    double bytes = (double)op->x->bytes + partial * (double)partials;
    if (op->style)
        bytes += (double)op->style->bytes;
    if (plan->apply_groups)
        bytes += (double)op->x->bytes + (double)op->y->bytes;
    if (plan->finalize_groups)
        bytes += partial * (double)partials + (nhwc && plan->apply_groups ? 2.0 * partial * op->x->desc.n * op->x->desc.c : 0.0);
    else {
        /* every apply workgroup (NHWC: each channel's lane) merges its
         * segment's partials (none when it reduces its segment itself), in
         * two passes when there are several */
        const uint32_t content_parts = plan->self_stats ? 0 : plan->segment_partials;
        const uint32_t style_parts = op->style ? plan->style.chunks * plan->fold : 0;
        double reads = content_parts * (content_parts > 1 ? 2.0 : 1.0) + style_parts * (style_parts > 1 ? 2.0 : 1.0);
        const uint32_t c = op->x->desc.c;
        const uint32_t tile_channels = plan->push.channel_block * (plan->content.vec4 ? 4 * (plan->quads_per_lane ? plan->quads_per_lane : 1) : 1);
        /* segment tiles: all of a workgroup's lanes merge the same partials;
         * quads of one segment merge once per quad */
        const bool per_quad = plan->content.vec4 && op->channels_per_segment % 4 == 0;
        double mergers = nhwc && !plan->segment_tiles ? (c < tile_channels ? c : tile_channels) / (per_quad ? 4.0 : 1.0) : 1.0;
        bytes += partial * reads * mergers * (double)plan->apply_groups;
    }
    uint32_t dispatches = (plan->stats_groups ? 1 : 0) + (style_dispatch_groups(plan) ? 1 : 0) +
                          (plan->finalize_groups ? 1 : 0) + (plan->apply_groups ? 1 : 0);
    char quads[64] = ""; /* longest: ", 1 channel quad per lane, 4 px as one row, a partial per tile" */
    if (nhwc && plan->content.vec4)
        snprintf(quads, sizeof quads, ", %u channel quad%s per lane%s", plan->quads_per_lane,
                 plan->quads_per_lane == 1 ? "" : "s",
                 plan->fold == 4 ? ", 4 px as one row" : plan->fold == 2 ? ", 2 px as one row" : "");
    if (plan->segment_tiles || plan->channels_inner) {
        const size_t used_quads = strlen(quads);
        snprintf(quads + used_quads, sizeof quads - used_quads, "%s",
                 plan->channels_inner ? ", nhwc: channels innermost" : ", a partial per tile");
    }
    const uint32_t chunk_len = plan->content.chunk_len * (nhwc ? plan->fold : 1);
    int used = snprintf(info->variant, sizeof info->variant, "%s: %u chunk%s of %u%s, workgroup %u",
                        nhwc ? (plan->self_stats ? "nhwc tiles, reduce then normalize" : "nhwc tiles")
                        : plan->self_stats ? "reduce then normalize per workgroup"
                                           : "two-pass",
                        plan->content.chunks,
                        plan->content.chunks == 1 ? "" : "s", chunk_len,
                        nhwc ? " px" : plan->content.vec4 ? " (vec4)" : "", plan->workgroup_size);
    if (used > 0 && (size_t)used < sizeof info->variant)
        snprintf(info->variant + used, sizeof info->variant - (size_t)used, "%s", quads);
    info->dispatches = dispatches;
    info->bytes_moved = bytes;
}

/* The plan's variant ends by saying which tensors were read as texels,
 * whether the content's fp16 loops took 8 halves a load (half_pairs:
 * HALF_PAIRS in shaders/common.glsl) and whether 4-vector outputs
 * (vec4_stores) went out as 64-bit words. */
static void note_memory_paths(const vk_state *vk, inorm_plan_info *info, const vk_pipeline_key *key,
                              bool half_pairs, bool vec4_stores)
{
    size_t used = strlen(info->variant);
    if (half_pairs && used < sizeof info->variant)
        snprintf(info->variant + used, sizeof info->variant - used, ", 8 halves a load");
    used = strlen(info->variant);
    if ((key->texel_loads || key->style_texel_loads) && used < sizeof info->variant)
        snprintf(info->variant + used, sizeof info->variant - used, ", texels: %s",
                 !key->style_texel_loads ? "x" : !key->texel_loads ? "style" : "x, style");
    used = strlen(info->variant);
    if (vk->wide_stores && vec4_stores && used < sizeof info->variant)
        snprintf(info->variant + used, sizeof info->variant - used, ", 64-bit stores");
}

static void apply_bindings(vk_state *vk, const inorm_op *op, VkDescriptorBufferInfo buffers[VK_BINDINGS])
{
    const VkDescriptorBufferInfo scratch = binding_of(vk, NULL);
    const VkDescriptorBufferInfo bound[VK_BINDINGS] = {
        binding_of(vk, op->x), binding_of(vk, op->y), scratch, binding_of(vk, op->gamma),
        binding_of(vk, op->beta), binding_of(vk, op->mean_out), binding_of(vk, op->std_out),
        binding_of(vk, op->bank_weights), scratch, scratch,
    };
    memcpy(buffers, bound, sizeof bound);
}

static inorm_status run_fused(inorm_context *ctx, const inorm_op *op, const op_plan *plan, bool float16)
{
    vk_state *vk = ctx->vk;
    const bool nhwc = op->x->desc.layout == INORM_NHWC;
    vk_pipeline_key key = { .kernel = VK_KERNEL_FUSED, .dtypes = float16, .workgroup_size = plan->workgroup_size,
                            .vec4 = plan->content.vec4, .mode = plan->mode, .team = plan->team, .regs = plan->regs,
                            .nhwc = nhwc,
                            .subgroup_workgroup = subgroup_workgroups(vk),
                            .activation = (uint32_t)op->activation, .blend = op->alpha != 1.0f,
                            .grouped = op->channels_per_segment > 1,
                            /* NHWC lanes here hold one channel quad each */
                            .texel_loads = plan->content.vec4 && texels_of(op->x, nhwc),
                            .style_texel_loads = plan->content.vec4 && texels_of(op->style, nhwc),
                            .half_pairs = !nhwc && plan->half_pairs };
    VkPipeline pipeline;
    VkDescriptorSet set;
    VkDescriptorBufferInfo buffers[VK_BINDINGS];
    inorm_status status;
    if ((status = check_grid(ctx, plan->fused_groups)) != INORM_SUCCESS ||
        (status = vk_pipeline_get(ctx, &key, &pipeline)) != INORM_SUCCESS ||
        (status = ensure_scratch(ctx, 0)) != INORM_SUCCESS ||
        (status = reserve_sets(ctx, 1)) != INORM_SUCCESS || (status = begin_recording(ctx)) != INORM_SUCCESS)
        return status;
    apply_bindings(vk, op, buffers);
    if (op->style)
        buffers[2] = binding_of(vk, op->style);
    if ((status = write_set(ctx, buffers, texels_of(op->x, nhwc), texels_of(op->style, nhwc), &set)) != INORM_SUCCESS)
        return status;
    record_dispatch(vk, pipeline, set, &plan->push, (uint32_t)plan->fused_groups);
    inorm_plan_info *info = &ctx->last_plan;
    const char *style_first = op->style ? ", style statistics first" : "";
    if (nhwc)
        snprintf(info->variant, sizeof info->variant, "fused nhwc: a lane per %s and sample, %u px each, %u per workgroup%s",
                 plan->content.vec4 ? "channel quad" : "channel", plan->regs, plan->workgroup_size, style_first);
    else
        snprintf(info->variant, sizeof info->variant, "fused: team %u x %u %s, %u per workgroup%s", plan->team,
                 plan->regs, plan->content.vec4 ? "vec4" : "scalar", plan->workgroup_size / plan->team, style_first);
    note_memory_paths(vk, info, &key, key.half_pairs, key.vec4 && op->y);
    info->dispatches = 1;
    info->bytes_moved = (double)op->x->bytes + (op->y ? (double)op->y->bytes : 0.0);
    /* every content plane reads its style plane */
    if (op->style)
        info->bytes_moved += (double)op->style->bytes * (op->x->desc.n / op->style->desc.n);
    return INORM_SUCCESS;
}

/* Units per workgroup of the streaming copy: 16 per lane of 256. */
#define COPY_UNITS_PER_WORKGROUP (256u * ITEMS_PER_LANE)
#define TRANSPOSE_TILE 32u

static inorm_status run_convert(inorm_context *ctx, const inorm_op *op)
{
    vk_state *vk = ctx->vk;
    const inorm_tensor_desc *s = &op->x->desc, *d = &op->y->desc;
    const bool src16 = s->dtype == INORM_FLOAT16, dst16 = d->dtype == INORM_FLOAT16;
    if ((src16 || dst16) && !vk->float16_storage)
        return inorm_fail(ctx, INORM_ERROR_UNSUPPORTED,
                          "FLOAT16 tensors need 16-bit storage buffer access, which %s does not have", ctx->info.name);
    inorm_status status = ensure_scratch(ctx, 0);
    if (status == INORM_SUCCESS)
        status = begin_recording(ctx);
    if (status != INORM_SUCCESS)
        return status;
    const bool same_layout = s->layout == d->layout || s->c == 1 || (s->h == 1 && s->w == 1);
    if (same_layout && s->dtype == d->dtype && op->copy_kernel == INORM_COPY_ANY) {
        record_device_barrier(vk);
        VkBufferCopy region = { op->x->buffer->offset, op->y->buffer->offset, op->x->bytes };
        vk->fn.vkCmdCopyBuffer(vk->recording_cmd, op->x->buffer->buffer, op->y->buffer->buffer, 1, &region);
        ctx->last_plan = (inorm_plan_info){ .variant = "vkCmdCopyBuffer", .dispatches = 1,
                                            .bytes_moved = 2.0 * (double)op->x->bytes };
        return INORM_SUCCESS;
    }
    /* eps: what the through-ALU copy adds, -0.0 (x + -0.0 is x, -0 included) */
    vk_push_constants push = { .channels = s->c, .samples = s->n, .eps = -0.0f };
    vk_pipeline_key key = { .kernel = VK_KERNEL_CONVERT, .dtypes = (src16 ? 1u : 0u) | (dst16 ? 2u : 0u),
                            .workgroup_size = 256, .nhwc = !same_layout && s->layout == INORM_NHWC,
                            .dst_nhwc = !same_layout && d->layout == INORM_NHWC,
                            .through_alu = same_layout && (op->copy_kernel == INORM_COPY_SHADER_ALU ||
                                                           op->copy_kernel == INORM_COPY_SHADER_ALU_STORAGE) };
    const bool storage_loads = op->copy_kernel == INORM_COPY_SHADER_STORAGE ||
                               op->copy_kernel == INORM_COPY_SHADER_ALU_STORAGE;
    uint64_t workgroups;
    if (same_layout) {
        /* On CPU devices the norm kernels' geometry (workgroups of one
         * subgroup, long lane runs), so that the copy stays a fair floor */
        uint32_t per_workgroup = COPY_UNITS_PER_WORKGROUP;
        if (subgroup_workgroups(vk)) {
            key.workgroup_size = key.lane_group = vk->subgroup_size;
            per_workgroup = vk->subgroup_size * SUBGROUP_ITEMS_PER_LANE;
        }
        key.vec4 = op->x->elements % 4 == 0;
        key.texel_loads = key.vec4 && texels_of(op->x, false) && !storage_loads;
        push.seg_len = (uint32_t)op->x->elements;
        push.chunk_len = per_workgroup;
        uint64_t units = op->x->elements / (key.vec4 ? 4 : 1);
        workgroups = (units + per_workgroup - 1) / per_workgroup;
    } else {
        push.seg_len = s->h * s->w;
        uint64_t pixel_tiles = (push.seg_len + TRANSPOSE_TILE - 1) / TRANSPOSE_TILE;
        uint64_t channel_tiles = (s->c + TRANSPOSE_TILE - 1) / TRANSPOSE_TILE;
        workgroups = (uint64_t)s->n * pixel_tiles * channel_tiles;
    }
    VkPipeline pipeline;
    VkDescriptorSet set;
    if ((status = check_grid(ctx, workgroups)) != INORM_SUCCESS ||
        (status = vk_pipeline_get(ctx, &key, &pipeline)) != INORM_SUCCESS ||
        (status = reserve_sets(ctx, 1)) != INORM_SUCCESS || (status = begin_recording(ctx)) != INORM_SUCCESS)
        return status;
    const VkDescriptorBufferInfo scratch = binding_of(vk, NULL);
    const VkDescriptorBufferInfo buffers[VK_BINDINGS] = {
        binding_of(vk, op->x), binding_of(vk, op->y), scratch, scratch, scratch,
        scratch, scratch, scratch, scratch, scratch,
    };
    if ((status = write_set(ctx, buffers, texels_of(op->x, false), VK_NULL_HANDLE, &set)) != INORM_SUCCESS)
        return status;
    record_dispatch(vk, pipeline, set, &push, (uint32_t)workgroups);
    snprintf(ctx->last_plan.variant, sizeof ctx->last_plan.variant, "convert: %s%s",
             same_layout ? (key.vec4 ? "copy vec4" : "copy scalar") : "32x32 tile transpose",
             key.through_alu ? ", each value through the ALU" : "");
    /* the same-layout fp16 copy walks pairs where every workgroup's range is whole pairs */
    const bool copy_pairs = same_layout && src16 && dst16 && key.vec4 && op->x->elements % 8 == 0 && push.chunk_len % 2 == 0;
    note_memory_paths(vk, &ctx->last_plan, &key, copy_pairs, key.vec4 && same_layout);
    ctx->last_plan.dispatches = 1;
    ctx->last_plan.bytes_moved = (double)op->x->bytes + (double)op->y->bytes;
    return INORM_SUCCESS;
}

/* ---------------------------------------------------------------------------
 * Pixel ops: colour conversion (shaders/color.comp) and blending
 * (shaders/blend.comp), one elementwise dispatch each.
 * ------------------------------------------------------------------------ */

/* Units (pixels or elements) per workgroup of the pixel kernels: 16 per lane of 256. */
#define PIXEL_UNITS_PER_WORKGROUP (256u * ITEMS_PER_LANE)

/* Records one elementwise dispatch of `kernel` over push->seg_len units;
 * tensors[0..3] go to bindings 0..3 (NULL: unused). */
static inorm_status run_pixel_kernel(inorm_context *ctx, const inorm_op *op, vk_kernel kernel,
                                     const inorm_tensor *const tensors[4], vk_push_constants *push,
                                     const char *variant)
{
    vk_state *vk = ctx->vk;
    if (op->x->desc.dtype == INORM_FLOAT16 && !vk->float16_storage)
        return inorm_fail(ctx, INORM_ERROR_UNSUPPORTED,
                          "FLOAT16 tensors need 16-bit storage buffer access, which %s does not have", ctx->info.name);
    vk_pipeline_key key = { .kernel = kernel, .dtypes = op->x->desc.dtype == INORM_FLOAT16,
                            .workgroup_size = 256, .nhwc = op->x->desc.layout == INORM_NHWC };
    push->chunk_len = PIXEL_UNITS_PER_WORKGROUP;
    uint64_t workgroups = ((uint64_t)push->seg_len + PIXEL_UNITS_PER_WORKGROUP - 1) / PIXEL_UNITS_PER_WORKGROUP;
    VkPipeline pipeline;
    VkDescriptorSet set;
    inorm_status status;
    if ((status = check_grid(ctx, workgroups)) != INORM_SUCCESS ||
        (status = vk_pipeline_get(ctx, &key, &pipeline)) != INORM_SUCCESS ||
        (status = ensure_scratch(ctx, 0)) != INORM_SUCCESS ||
        (status = reserve_sets(ctx, 1)) != INORM_SUCCESS || (status = begin_recording(ctx)) != INORM_SUCCESS)
        return status;
    VkDescriptorBufferInfo buffers[VK_BINDINGS];
    for (uint32_t i = 0; i < VK_BINDINGS; ++i)
        buffers[i] = binding_of(vk, i < 4 ? tensors[i] : NULL);
    if ((status = write_set(ctx, buffers, VK_NULL_HANDLE, VK_NULL_HANDLE, &set)) != INORM_SUCCESS)
        return status;
    record_dispatch(vk, pipeline, set, push, (uint32_t)workgroups);
    snprintf(ctx->last_plan.variant, sizeof ctx->last_plan.variant, "%s", variant);
    ctx->last_plan.dispatches = 1;
    ctx->last_plan.bytes_moved = (double)op->x->bytes + (double)op->y->bytes +
                                 (op->blend_b ? (double)op->blend_b->bytes : 0.0);
    return INORM_SUCCESS;
}

static inorm_status run_color(inorm_context *ctx, const inorm_op *op)
{
    const inorm_tensor_desc *d = &op->x->desc;
    const inorm_tensor *const tensors[4] = { op->x, op->y, NULL, NULL };
    vk_push_constants push = {
        .seg_len = d->n * d->h * d->w, .plane_len = d->h * d->w, .channels = d->c, .samples = d->n,
        .flags = (uint32_t)op->color_from | (uint32_t)op->color_to << 4 | (op->x == op->y ? 256u : 0u),
    };
    return run_pixel_kernel(ctx, op, VK_KERNEL_COLOR, tensors, &push, "color: one pixel per lane step");
}

static inorm_status run_blend(inorm_context *ctx, const inorm_op *op)
{
    const inorm_tensor_desc *d = &op->x->desc, *w = &op->blend_weight->desc;
    const inorm_tensor *const tensors[4] = { op->x, op->y, op->blend_b, op->blend_weight };
    vk_push_constants push = {
        .seg_len = (uint32_t)op->x->elements, .plane_len = d->h * d->w, .channels = d->c, .samples = d->n,
        .flags = (w->n > 1 ? 1u : 0u) | (w->c > 1 ? 2u : 0u) | (w->h * w->w > 1 ? 4u : 0u) |
                 (w->layout == INORM_NHWC ? 8u : 0u),
    };
    return run_pixel_kernel(ctx, op, VK_KERNEL_BLEND, tensors, &push, "blend: elementwise");
}

static inorm_status vk_run(inorm_context *ctx, const inorm_op *op)
{
    vk_state *vk = ctx->vk;
    const inorm_tensor_desc *d = &op->x->desc;
    if (!vk->queue && !vk->external_cmd)
        return inorm_fail(ctx, INORM_ERROR_UNSUPPORTED,
                          "this imported context has no queue: record ops with inorm_cmd_* instead");
    if (op->kind == INORM_OP_CONVERT)
        return run_convert(ctx, op);
    if (op->kind == INORM_OP_COLOR)
        return run_color(ctx, op);
    if (op->kind == INORM_OP_BLEND)
        return run_blend(ctx, op);
    const bool float16 = d->dtype == INORM_FLOAT16;
    if (float16 && !vk->float16_storage)
        return inorm_fail(ctx, INORM_ERROR_UNSUPPORTED,
                          "FLOAT16 tensors need 16-bit storage buffer access, which %s does not have; use FLOAT32 "
                          "or the CPU path",
                          ctx->info.name);
    op_plan plan;
    plan_op(vk, op, &plan);
    if (op->kind == INORM_OP_ADAIN && !op->mask && !plan.fused) {
        /* Small planes with a larger style (or a style mask): the style's
         * statistics and the content's modulation are each one fused
         * dispatch, instead of many tiny workgroups. */
        inorm_op modulate = *op;
        modulate.kind = INORM_OP_NORMALIZE;
        modulate.affine = INORM_AFFINE_SAMPLE;
        modulate.style = NULL;
        modulate.style_mask = NULL;
        op_plan modulate_plan;
        if (plan_fused(vk, &modulate, &modulate_plan))
            return inorm_adain_as_style_mix(ctx, op);
    }
    const bool nhwc = plan.nhwc;
    if (plan.fused)
        return run_fused(ctx, op, &plan, float16);
    inorm_status status = check_grid(ctx, plan.stats_groups);
    if (status == INORM_SUCCESS)
        status = check_grid(ctx, plan.apply_groups);
    if (status != INORM_SUCCESS)
        return status;

    /* NHWC lanes not of quad pairs load a channel quad at a time */
    const bool quad_loads = nhwc && !plan.half_pairs;
    vk_pipeline_key stats_key = { .kernel = VK_KERNEL_STATS, .dtypes = float16,
                                  .workgroup_size = plan.workgroup_size, .vec4 = plan.content.vec4,
                                  .style_vec4 = plan.style.vec4, .nhwc = nhwc,
                                  .subgroup_workgroup = subgroup_workgroups(vk),
                                  .quads_per_lane = plan.quads_per_lane, .fold = plan.fold,
                                  .sources = plan.stats_sources,
                                  .texel_loads = plan.content.vec4 && texels_of(op->x, quad_loads),
                                  .style_texel_loads = plan.style.vec4 && texels_of(op->style, quad_loads),
                                  .half_pairs = nhwc && plan.half_pairs };
    vk_pipeline_key style_key = stats_key;
    style_key.sources = VK_SOURCES_STYLE;
    const uint64_t style_apart = style_dispatch_groups(&plan);
    vk_pipeline_key apply_key = { .kernel = VK_KERNEL_APPLY, .dtypes = float16,
                                  .workgroup_size = plan.workgroup_size, .vec4 = plan.content.vec4,
                                  .mode = plan.mode, .nhwc = nhwc, .activation = (uint32_t)op->activation,
                                  .blend = op->alpha != 1.0f, .subgroup_workgroup = subgroup_workgroups(vk),
                                  .quads_per_lane = plan.quads_per_lane, .fold = plan.fold,
                                  .texel_loads = stats_key.texel_loads, .half_pairs = stats_key.half_pairs };
    VkPipeline stats_pipeline, style_pipeline = VK_NULL_HANDLE, apply_pipeline;
    if ((status = vk_pipeline_get(ctx, &stats_key, &stats_pipeline)) != INORM_SUCCESS ||
        (style_apart && (status = vk_pipeline_get(ctx, &style_key, &style_pipeline)) != INORM_SUCCESS) ||
        (status = vk_pipeline_get(ctx, &apply_key, &apply_pipeline)) != INORM_SUCCESS ||
        (status = ensure_scratch(ctx, plan.scratch_vec4s * 4 * sizeof(float))) != INORM_SUCCESS ||
        (status = reserve_sets(ctx, 2)) != INORM_SUCCESS || (status = begin_recording(ctx)) != INORM_SUCCESS)
        return status;

    const VkDescriptorBufferInfo x = binding_of(vk, op->x), scratch = binding_of(vk, NULL);
    const VkDescriptorBufferInfo stats_buffers[VK_BINDINGS] = {
        x, op->style ? binding_of(vk, op->style) : x, scratch, scratch, scratch, scratch, scratch, scratch,
        binding_of(vk, op->mask), binding_of(vk, op->style_mask),
    };
    VkDescriptorBufferInfo apply_buffers[VK_BINDINGS];
    apply_bindings(vk, op, apply_buffers);
    VkDescriptorSet stats_set, apply_set;
    if ((status = write_set(ctx, stats_buffers, texels_of(op->x, quad_loads), texels_of(op->style, quad_loads),
                            &stats_set)) != INORM_SUCCESS ||
        (status = write_set(ctx, apply_buffers, texels_of(op->x, quad_loads), VK_NULL_HANDLE, &apply_set)) !=
            INORM_SUCCESS)
        return status;
    if (plan.stats_groups > style_apart)
        record_dispatch(vk, stats_pipeline, stats_set, &plan.push, (uint32_t)(plan.stats_groups - style_apart));
    if (style_apart)
        record_unordered_dispatch(vk, style_pipeline, stats_set, &plan.push, (uint32_t)style_apart);
    if (plan.finalize_groups) {
        vk_push_constants finalize_push = plan.push;
        if (nhwc && op->kind != INORM_OP_STATS)
            finalize_push.flags |= FLAG_COEFF_OUT;
        record_dispatch(vk, apply_pipeline, apply_set, &finalize_push, (uint32_t)plan.finalize_groups);
    }
    if (plan.apply_groups)
        record_dispatch(vk, apply_pipeline, apply_set, &plan.push, (uint32_t)plan.apply_groups);
    describe_plan(op, &plan, &ctx->last_plan);
    note_memory_paths(vk, &ctx->last_plan, &stats_key, plan.half_pairs, plan.content.vec4 && plan.apply_groups && op->y);
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
    t->buffer = inorm_calloc(1, sizeof *t->buffer);
    if (!t->buffer)
        return inorm_fail(ctx, INORM_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    /* Whole vec4s, so vector views of the buffer never reach past its end. */
    inorm_status status = vk_buffer_create(ctx, (t->bytes + 15) / 16 * 16, false, t->buffer);
    if (status == INORM_SUCCESS && vk->texel_loads &&
        (status = vk_texel_view(ctx, t->buffer, t->bytes, t->desc.dtype == INORM_FLOAT16)) != INORM_SUCCESS)
        vk_buffer_destroy(vk, t->buffer);
    if (status != INORM_SUCCESS) {
        inorm_free(t->buffer);
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
    if (vk_buffer_retire(ctx, t->buffer) != INORM_SUCCESS)
        vk_buffer_destroy(ctx->vk, t->buffer);  /* no memory to remember it: the app's release contract decides */
    inorm_free(t->buffer);
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
    if (to_tensor) {
        VkBufferCopy region = { 0, t->buffer->offset, t->bytes };
        vk->fn.vkCmdCopyBuffer(vk->recording_cmd, staging->buffer, t->buffer->buffer, 1, &region);
    } else {
        VkBufferCopy region = { t->buffer->offset, 0, t->bytes };
        vk->fn.vkCmdCopyBuffer(vk->recording_cmd, t->buffer->buffer, staging->buffer, 1, &region);
    }
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

/* Writes the pipeline cache to the context's file: a temporary file, then a
 * rename, so a crash never leaves a half-written cache behind. */
static void save_pipeline_cache(inorm_context *ctx)
{
    vk_state *vk = ctx->vk;
    size_t size = 0;
    if (!vk->pipeline_cache_path || vk_pipeline_cache_get(ctx, NULL, &size) != INORM_SUCCESS || size == 0)
        return;
    void *data = inorm_malloc(size);
    size_t path_len = strlen(vk->pipeline_cache_path);
    char *temp = inorm_malloc(path_len + 8);
    if (data && temp && vk_pipeline_cache_get(ctx, data, &size) == INORM_SUCCESS) {
        snprintf(temp, path_len + 8, "%s.tmp", vk->pipeline_cache_path);
        FILE *file = fopen(temp, "wb");
        bool written = file && fwrite(data, 1, size, file) == size;
        if (file && fclose(file) != 0)
            written = false;
        if (written)
            written = rename(temp, vk->pipeline_cache_path) == 0;
        if (!written)
            remove(temp);
    }
    inorm_free(temp);
    inorm_free(data);
}

static void vk_context_teardown(inorm_context *ctx)
{
    save_pipeline_cache(ctx);
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
