/* Shader modules (the SPIR-V embedded at build time), the one descriptor
 * set layout every kernel shares, and compute pipelines created on first use
 * per specialization and kept for the context's lifetime. */
#include "vk_internal.h"

#include "norm_apply_f16_shared.spv.h"
#include "norm_apply_f16_subgroup.spv.h"
#include "norm_apply_shared.spv.h"
#include "norm_apply_subgroup.spv.h"
#include "norm_apply_f16_subgroup_wide.spv.h"
#include "norm_apply_subgroup_wide.spv.h"
#include "norm_fused_f16_subgroup_wide.spv.h"
#include "norm_fused_subgroup_wide.spv.h"
#include "convert_f16_f16_wide.spv.h"
#include "convert_f16_f32_wide.spv.h"
#include "convert_f32_f16_wide.spv.h"
#include "convert_f32_f32_wide.spv.h"
#include "convert_f16_f16.spv.h"
#include "convert_f16_f32.spv.h"
#include "convert_f32_f16.spv.h"
#include "convert_f32_f32.spv.h"
#include "norm_fused_f16_shared.spv.h"
#include "norm_fused_f16_subgroup.spv.h"
#include "norm_fused_shared.spv.h"
#include "norm_fused_subgroup.spv.h"
#include "norm_stats_f16_shared.spv.h"
#include "norm_stats_f16_subgroup.spv.h"
#include "norm_stats_shared.spv.h"
#include "norm_stats_subgroup.spv.h"
#include "color_f16.spv.h"
#include "color_f32.spv.h"
#include "blend_f16.spv.h"
#include "blend_f32.spv.h"

#include <string.h>

typedef struct spirv_code {
    const uint32_t *words;
    size_t bytes;
} spirv_code;

#define SPIRV(array) { array, sizeof(array) }
/* [kernel][dtype variant] */
#define CONVERT_MODULES                                                                              \
    [VK_KERNEL_CONVERT] = { SPIRV(spirv_convert_f32_f32), SPIRV(spirv_convert_f16_f32),            \
                            SPIRV(spirv_convert_f32_f16), SPIRV(spirv_convert_f16_f16) }
/* Pixel ops: no reductions, the same modules with or without subgroup ops. */
#define PIXEL_MODULES                                                                                \
    [VK_KERNEL_COLOR] = { SPIRV(spirv_color_f32), SPIRV(spirv_color_f16) },                         \
    [VK_KERNEL_BLEND] = { SPIRV(spirv_blend_f32), SPIRV(spirv_blend_f16) }
static const spirv_code kernels_shared[VK_KERNEL_COUNT][VK_DTYPE_VARIANTS] = {
    [VK_KERNEL_STATS] = { SPIRV(spirv_norm_stats_shared), SPIRV(spirv_norm_stats_f16_shared) },
    [VK_KERNEL_APPLY] = { SPIRV(spirv_norm_apply_shared), SPIRV(spirv_norm_apply_f16_shared) },
    [VK_KERNEL_FUSED] = { SPIRV(spirv_norm_fused_shared), SPIRV(spirv_norm_fused_f16_shared) },
    CONVERT_MODULES,
    PIXEL_MODULES,
};
static const spirv_code kernels_subgroup[VK_KERNEL_COUNT][VK_DTYPE_VARIANTS] = {
    [VK_KERNEL_STATS] = { SPIRV(spirv_norm_stats_subgroup), SPIRV(spirv_norm_stats_f16_subgroup) },
    [VK_KERNEL_APPLY] = { SPIRV(spirv_norm_apply_subgroup), SPIRV(spirv_norm_apply_f16_subgroup) },
    [VK_KERNEL_FUSED] = { SPIRV(spirv_norm_fused_subgroup), SPIRV(spirv_norm_fused_f16_subgroup) },
    CONVERT_MODULES,
    PIXEL_MODULES,
};
/* The same with 4-vector stores as 64-bit words (vk_state.wide_stores) */
static const spirv_code kernels_subgroup_wide[VK_KERNEL_COUNT][VK_DTYPE_VARIANTS] = {
    [VK_KERNEL_STATS] = { SPIRV(spirv_norm_stats_subgroup), SPIRV(spirv_norm_stats_f16_subgroup) },
    [VK_KERNEL_APPLY] = { SPIRV(spirv_norm_apply_subgroup_wide), SPIRV(spirv_norm_apply_f16_subgroup_wide) },
    [VK_KERNEL_FUSED] = { SPIRV(spirv_norm_fused_subgroup_wide), SPIRV(spirv_norm_fused_f16_subgroup_wide) },
    [VK_KERNEL_CONVERT] = { SPIRV(spirv_convert_f32_f32_wide), SPIRV(spirv_convert_f16_f32_wide),
                            SPIRV(spirv_convert_f32_f16_wide), SPIRV(spirv_convert_f16_f16_wide) },
    PIXEL_MODULES,
};
#undef CONVERT_MODULES
#undef PIXEL_MODULES
#undef SPIRV

static void destroy_modules(vk_state *vk)
{
    for (int k = 0; k < VK_KERNEL_COUNT; ++k) {
        for (int f = 0; f < VK_DTYPE_VARIANTS; ++f) {
            if (vk->modules[k][f])
                vk->fn.vkDestroyShaderModule(vk->device, vk->modules[k][f], NULL);
            vk->modules[k][f] = VK_NULL_HANDLE;
        }
    }
}

static inorm_status create_modules(inorm_context *ctx)
{
    vk_state *vk = ctx->vk;
    const spirv_code(*kernels)[VK_DTYPE_VARIANTS] =
        !vk->use_subgroup_ops ? kernels_shared : vk->wide_stores ? kernels_subgroup_wide : kernels_subgroup;
    for (int k = 0; k < VK_KERNEL_COUNT; ++k) {
        for (int f = 0; f < VK_DTYPE_VARIANTS; ++f) {
            /* FLOAT16 modules declare 16-bit storage: only where the device has it. */
            if (!kernels[k][f].words || (f != 0 && !vk->float16_storage))
                continue;
            VkShaderModuleCreateInfo info = {
                .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                .codeSize = kernels[k][f].bytes,
                .pCode = kernels[k][f].words,
            };
            VkResult result = vk->fn.vkCreateShaderModule(vk->device, &info, NULL, &vk->modules[k][f]);
            if (result != VK_SUCCESS)
                return vk_fail(ctx, result, "vkCreateShaderModule");
        }
    }
    return INORM_SUCCESS;
}

inorm_status vk_pipelines_init(inorm_context *ctx)
{
    vk_state *vk = ctx->vk;
    VkDescriptorSetLayoutBinding bindings[VK_BINDINGS + VK_TEXEL_BINDINGS];
    for (uint32_t i = 0; i < VK_BINDINGS + VK_TEXEL_BINDINGS; ++i)
        bindings[i] = (VkDescriptorSetLayoutBinding){
            .binding = i,
            .descriptorType = i >= VK_BINDINGS ? VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER
                                               : VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .descriptorCount = 1,
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        };
    VkDescriptorSetLayoutCreateInfo set_info = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .bindingCount = VK_BINDINGS + VK_TEXEL_BINDINGS,
        .pBindings = bindings,
    };
    VkResult result = vk->fn.vkCreateDescriptorSetLayout(vk->device, &set_info, NULL, &vk->set_layout);
    if (result != VK_SUCCESS)
        return vk_fail(ctx, result, "vkCreateDescriptorSetLayout");
    VkPushConstantRange push_range = {
        .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        .offset = 0,
        .size = VK_PUSH_CONSTANT_BYTES,
    };
    VkPipelineLayoutCreateInfo layout_info = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
        .setLayoutCount = 1,
        .pSetLayouts = &vk->set_layout,
        .pushConstantRangeCount = 1,
        .pPushConstantRanges = &push_range,
    };
    result = vk->fn.vkCreatePipelineLayout(vk->device, &layout_info, NULL, &vk->pipeline_layout);
    if (result != VK_SUCCESS)
        return vk_fail(ctx, result, "vkCreatePipelineLayout");
    VkPipelineCacheCreateInfo cache_info = { .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO };
    result = vk->fn.vkCreatePipelineCache(vk->device, &cache_info, NULL, &vk->pipeline_cache);
    if (result != VK_SUCCESS)
        return vk_fail(ctx, result, "vkCreatePipelineCache");
    return create_modules(ctx);
}

static void destroy_pipelines(vk_state *vk)
{
    for (uint32_t i = 0; i < vk->pipeline_count; ++i)
        vk->fn.vkDestroyPipeline(vk->device, vk->pipelines[i].pipeline, NULL);
    inorm_free(vk->pipelines);
    vk->pipelines = NULL;
    vk->pipeline_count = vk->pipeline_capacity = 0;
}

void vk_pipelines_destroy(vk_state *vk)
{
    destroy_pipelines(vk);
    destroy_modules(vk);
    if (vk->pipeline_cache)
        vk->fn.vkDestroyPipelineCache(vk->device, vk->pipeline_cache, NULL);
    if (vk->pipeline_layout)
        vk->fn.vkDestroyPipelineLayout(vk->device, vk->pipeline_layout, NULL);
    if (vk->set_layout)
        vk->fn.vkDestroyDescriptorSetLayout(vk->device, vk->set_layout, NULL);
    vk->pipeline_cache = VK_NULL_HANDLE;
    vk->pipeline_layout = VK_NULL_HANDLE;
    vk->set_layout = VK_NULL_HANDLE;
}

static VkResult create_pipeline(vk_state *vk, const vk_pipeline_key *key, VkPipeline *out)
{
    /* Specialization constant ids as declared in shaders/common.glsl and the kernels. */
    const uint32_t values[20] = {
        key->workgroup_size, key->vec4, key->style_vec4, key->mode, key->nhwc,
        key->team, key->regs, key->dst_nhwc, key->activation, key->blend, key->subgroup_workgroup,
        key->lane_group ? key->lane_group : 32, key->quads_per_lane ? key->quads_per_lane : 1,
        key->fold ? key->fold : 1, key->grouped, key->sources, key->through_alu, key->texel_loads,
        key->style_texel_loads, key->half_pairs,
    };
    /* constant_id, offset in values, size */
    const VkSpecializationMapEntry entries[VK_KERNEL_COUNT][13] = {
        [VK_KERNEL_STATS] = { { 0, 0, 4 }, { 1, 4, 4 }, { 2, 8, 4 }, { 4, 16, 4 }, { 11, 40, 4 }, { 13, 48, 4 },
                              { 14, 52, 4 }, { 15, 60, 4 }, { 17, 68, 4 }, { 18, 72, 4 }, { 19, 76, 4 } },
        [VK_KERNEL_APPLY] = { { 0, 0, 4 }, { 1, 4, 4 }, { 3, 12, 4 }, { 4, 16, 4 }, { 9, 32, 4 }, { 10, 36, 4 },
                              { 11, 40, 4 }, { 13, 48, 4 }, { 14, 52, 4 }, { 17, 68, 4 }, { 19, 76, 4 } },
        [VK_KERNEL_FUSED] = { { 0, 0, 4 }, { 1, 4, 4 }, { 3, 12, 4 }, { 4, 16, 4 }, { 5, 20, 4 }, { 6, 24, 4 },
                              { 9, 32, 4 }, { 10, 36, 4 }, { 11, 40, 4 }, { 15, 56, 4 }, { 17, 68, 4 },
                              { 18, 72, 4 }, { 19, 76, 4 } },
        [VK_KERNEL_CONVERT] = { { 0, 0, 4 }, { 1, 4, 4 }, { 7, 16, 4 }, { 8, 28, 4 }, { 12, 44, 4 }, { 16, 64, 4 },
                                { 17, 68, 4 } },
        [VK_KERNEL_COLOR] = { { 0, 0, 4 }, { 4, 16, 4 } },
        [VK_KERNEL_BLEND] = { { 0, 0, 4 }, { 4, 16, 4 } },
    };
    const uint32_t entry_counts[VK_KERNEL_COUNT] = { 11, 11, 13, 7, 2, 2 };
    VkSpecializationInfo specialization = {
        .mapEntryCount = entry_counts[key->kernel],
        .pMapEntries = entries[key->kernel],
        .dataSize = sizeof values,
        .pData = values,
    };
    /* With subgroup size control: full subgroups always (lanes and subgroup
     * counts are worked out from gl_SubgroupSize), and kernels planned as
     * one subgroup per workgroup get exactly the size they were planned for
     * (a device may otherwise pick another size per pipeline). */
    VkPipelineShaderStageRequiredSubgroupSizeCreateInfoEXT required_size = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO_EXT,
        .requiredSubgroupSize = vk->subgroup_size,
    };
    const bool require_size = vk->size_control && key->subgroup_workgroup &&
                              key->workgroup_size % vk->subgroup_size == 0;
    const bool full = vk->size_control &&
                      (require_size || (vk->max_subgroup_size && key->workgroup_size % vk->max_subgroup_size == 0));
    VkComputePipelineCreateInfo info = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {
            .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
            .pNext = require_size ? &required_size : NULL,
            .flags = full ? VK_PIPELINE_SHADER_STAGE_CREATE_REQUIRE_FULL_SUBGROUPS_BIT_EXT : 0,
            .stage = VK_SHADER_STAGE_COMPUTE_BIT,
            .module = vk->modules[key->kernel][key->dtypes],
            .pName = "main",
            .pSpecializationInfo = &specialization,
        },
        .layout = vk->pipeline_layout,
    };
    return vk->fn.vkCreateComputePipelines(vk->device, vk->pipeline_cache, 1, &info, NULL, out);
}

inorm_status vk_pipeline_get(inorm_context *ctx, const vk_pipeline_key *key, VkPipeline *out)
{
    vk_state *vk = ctx->vk;
    for (uint32_t i = 0; i < vk->pipeline_count; ++i) {
        if (memcmp(&vk->pipelines[i].key, key, sizeof *key) == 0) {
            *out = vk->pipelines[i].pipeline;
            return INORM_SUCCESS;
        }
    }
    if (vk->pipeline_count == vk->pipeline_capacity) {
        uint32_t capacity = vk->pipeline_capacity ? 2 * vk->pipeline_capacity : 32;
        vk_pipeline_entry *grown = inorm_realloc(vk->pipelines, capacity * sizeof *grown);
        if (!grown)
            return inorm_fail(ctx, INORM_ERROR_OUT_OF_HOST_MEMORY, "out of host memory for pipelines");
        vk->pipelines = grown;
        vk->pipeline_capacity = capacity;
    }
    VkResult result = create_pipeline(vk, key, out);
    if (result != VK_SUCCESS && vk->use_subgroup_ops && result != VK_ERROR_DEVICE_LOST) {
        /* Some compilers reject subgroup variants: use the shared-memory kernels
         * from now on rather than fail the op. Pipelines that did compile stay
         * (recorded commands may use them); a module may go once pipelines exist. */
        destroy_modules(vk);
        vk->use_subgroup_ops = false;
        vk->wide_stores = false;
        ctx->info.subgroup_ops_used = 0;
        inorm_status status = create_modules(ctx);
        if (status != INORM_SUCCESS)
            return status;
        result = create_pipeline(vk, key, out);
        if (result == VK_SUCCESS)
            inorm_fail(ctx, INORM_SUCCESS,
                       "the subgroup kernel failed to compile on this driver; using shared-memory reductions");
    }
    if (result != VK_SUCCESS)
        return vk_fail(ctx, result, "vkCreateComputePipelines");
    vk->pipelines[vk->pipeline_count].key = *key;
    vk->pipelines[vk->pipeline_count].pipeline = *out;
    vk->pipeline_count++;
    return INORM_SUCCESS;
}

inorm_status vk_pipeline_cache_get(inorm_context *ctx, void *data, size_t *size)
{
    vk_state *vk = ctx->vk;
    VkResult result = vk->fn.vkGetPipelineCacheData(vk->device, vk->pipeline_cache, size, data);
    if (result != VK_SUCCESS && result != VK_INCOMPLETE)
        return vk_fail(ctx, result, "vkGetPipelineCacheData");
    return INORM_SUCCESS;
}

/* The header every pipeline cache blob starts with (Vulkan's
 * VkPipelineCacheHeaderVersionOne), read field by field since the blob's
 * alignment is the app's. */
typedef struct cache_header {
    uint32_t length, version, vendor_id, device_id;
    uint8_t uuid[VK_UUID_SIZE];
} cache_header;

inorm_status vk_pipeline_cache_merge(inorm_context *ctx, const void *data, size_t size)
{
    vk_state *vk = ctx->vk;
    const char *fn = "inorm_context_set_pipeline_cache";
    cache_header header;
    if (size < 16 + VK_UUID_SIZE)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: %zu bytes is too short for a cache header", fn,
                          size);
    memcpy(&header, data, 16);
    memcpy(header.uuid, (const uint8_t *)data + 16, VK_UUID_SIZE);
    if (header.length != 16 + VK_UUID_SIZE || header.version != 1)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT, "%s: not a pipeline cache (header length %u, version %u)",
                          fn, header.length, header.version);
    if (header.vendor_id != vk->vendor_id || header.device_id != vk->device_id ||
        memcmp(header.uuid, vk->pipeline_cache_uuid, VK_UUID_SIZE) != 0)
        return inorm_fail(ctx, INORM_ERROR_INVALID_ARGUMENT,
                          "%s: the cache was written by another device or driver (vendor 0x%x device 0x%x); ignored",
                          fn, header.vendor_id, header.device_id);
    VkPipelineCacheCreateInfo info = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
        .initialDataSize = size,
        .pInitialData = data,
    };
    VkPipelineCache loaded;
    VkResult result = vk->fn.vkCreatePipelineCache(vk->device, &info, NULL, &loaded);
    if (result != VK_SUCCESS)
        return vk_fail(ctx, result, "vkCreatePipelineCache from the blob");
    result = vk->fn.vkMergePipelineCaches(vk->device, vk->pipeline_cache, 1, &loaded);
    vk->fn.vkDestroyPipelineCache(vk->device, loaded, NULL);
    if (result != VK_SUCCESS)
        return vk_fail(ctx, result, "vkMergePipelineCaches");
    return INORM_SUCCESS;
}
