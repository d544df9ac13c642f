/* Buffers and their memory. Tensors live in device-local memory; on devices
 * whose device-local memory is also host-visible (integrated GPUs, CPU
 * devices) they are mapped and transfers are plain memcpy, elsewhere
 * transfers go through a staging buffer (vk_backend.c). */
#include "vk_internal.h"

#include <stdlib.h>

/* Index of a memory type allowed by type_bits with all `required` flags,
 * preferring one that also has `preferred`; -1 if none. */
static int find_memory_type(const VkPhysicalDeviceMemoryProperties *props, uint32_t type_bits,
                            VkMemoryPropertyFlags required, VkMemoryPropertyFlags preferred)
{
    int fallback = -1;
    for (uint32_t i = 0; i < props->memoryTypeCount; ++i) {
        if (!(type_bits & (1u << i)))
            continue;
        VkMemoryPropertyFlags flags = props->memoryTypes[i].propertyFlags;
        if ((flags & required) != required)
            continue;
        if ((flags & preferred) == preferred)
            return (int)i;
        if (fallback < 0)
            fallback = (int)i;
    }
    return fallback;
}

inorm_status vk_buffer_create(inorm_context *ctx, VkDeviceSize size, bool host_visible, vk_buffer *out)
{
    vk_state *vk = ctx->vk;
    *out = (vk_buffer){ 0 };
    VkBufferCreateInfo info = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = size,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                 VK_BUFFER_USAGE_TRANSFER_DST_BIT | (host_visible ? 0 : VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT),
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    VkResult result = vk->fn.vkCreateBuffer(vk->device, &info, NULL, &out->buffer);
    if (result != VK_SUCCESS)
        return vk_fail(ctx, result, "vkCreateBuffer");
    VkMemoryRequirements requirements;
    vk->fn.vkGetBufferMemoryRequirements(vk->device, out->buffer, &requirements);

    const VkMemoryPropertyFlags mappable = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    int type;
    if (host_visible) /* staging: host reads back through it, so cached is preferred */
        type = find_memory_type(&vk->memory_properties, requirements.memoryTypeBits, mappable,
                                VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
    else
        type = find_memory_type(&vk->memory_properties, requirements.memoryTypeBits,
                                VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, vk->unified_memory ? mappable : 0);
    if (type < 0) {
        vk->fn.vkDestroyBuffer(vk->device, out->buffer, NULL);
        out->buffer = VK_NULL_HANDLE;
        return inorm_fail(ctx, INORM_ERROR_BACKEND, "no memory type fits a %s buffer of %llu bytes",
                          host_visible ? "staging" : "device", (unsigned long long)size);
    }
    VkMemoryAllocateInfo allocate = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .allocationSize = requirements.size,
        .memoryTypeIndex = (uint32_t)type,
    };
    result = inorm_fault_hit(INORM_FAULT_DEVICE_ALLOC)
                 ? VK_ERROR_OUT_OF_DEVICE_MEMORY
                 : vk->fn.vkAllocateMemory(vk->device, &allocate, NULL, &out->memory);
    if (result == VK_SUCCESS)
        result = vk->fn.vkBindBufferMemory(vk->device, out->buffer, out->memory, 0);
    VkMemoryPropertyFlags flags = vk->memory_properties.memoryTypes[type].propertyFlags;
    bool force_staging = getenv("INORM_FORCE_STAGING") && getenv("INORM_FORCE_STAGING")[0] == '1';
    if (result == VK_SUCCESS && (flags & mappable) == mappable && (host_visible || !force_staging))
        result = vk->fn.vkMapMemory(vk->device, out->memory, 0, VK_WHOLE_SIZE, 0, &out->mapped);
    if (result != VK_SUCCESS) {
        vk_buffer_destroy(vk, out);
        return vk_fail(ctx, result, "allocating buffer memory");
    }
    out->size = size;
    return INORM_SUCCESS;
}

/* A uniform texel buffer view of `bytes` from the buffer's offset in
 * texels of texel_bytes (16: R32G32B32A32_UINT, 8: R32G32_UINT, formats
 * finish_init checks the device reads so), or none (VK_NULL_HANDLE in *out)
 * where a view cannot start at the offset, would hold more than
 * maxTexelBufferElements texels or (whole_only) cannot reach the last
 * partial texel. */
static inorm_status texel_view(inorm_context *ctx, vk_buffer *buffer, VkDeviceSize bytes, VkDeviceSize texel_bytes,
                               bool whole_only, VkBufferView *out)
{
    vk_state *vk = ctx->vk;
    *out = VK_NULL_HANDLE;
    if (buffer->offset % vk->limits.minTexelBufferOffsetAlignment != 0 || buffer->offset >= buffer->size)
        return INORM_SUCCESS;
    /* a last partial texel too, where the buffer holds it whole (inorm's
     * own buffers are rounded up to 16 bytes) */
    VkDeviceSize texels = (bytes + texel_bytes - 1) / texel_bytes;
    if (texels > (buffer->size - buffer->offset) / texel_bytes) {
        if (whole_only)
            return INORM_SUCCESS;
        texels = (buffer->size - buffer->offset) / texel_bytes;
    }
    if (texels == 0 || texels > vk->limits.maxTexelBufferElements)
        return INORM_SUCCESS;
    VkBufferViewCreateInfo info = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
        .buffer = buffer->buffer,
        .format = texel_bytes == 16 ? VK_FORMAT_R32G32B32A32_UINT : VK_FORMAT_R32G32_UINT,
        .offset = buffer->offset,
        .range = texels * texel_bytes,
    };
    VkResult result = vk->fn.vkCreateBufferView(vk->device, &info, NULL, out);
    if (result != VK_SUCCESS) {
        *out = VK_NULL_HANDLE;
        return vk_fail(ctx, result, "vkCreateBufferView");
    }
    return INORM_SUCCESS;
}

/* The buffer's texel views, read by the kernels instead of the storage
 * buffer where made (TEXEL_LOADS in shaders/common.glsl; bits come back as
 * stored, the kernels reinterpret them): 16-byte texels, a 4-vector of fp32
 * or two of fp16 (NCHW kernels read 8 halves a fetch where they can,
 * HALF_PAIRS, and so do NHWC lanes of quad pairs); for fp16 also 8-byte
 * texels, a 4-vector each, for NHWC lanes that load one channel quad at a
 * time (picking the half of a 16-byte texel cost them 2-16%). An fp16 view
 * that cannot reach the last 4-vector is not made (a buffer of 8 x k + 4
 * halves without slack). */
inorm_status vk_texel_view(inorm_context *ctx, vk_buffer *buffer, VkDeviceSize bytes, bool float16)
{
    inorm_status status = texel_view(ctx, buffer, bytes, 16, float16, &buffer->texels);
    if (status == INORM_SUCCESS && float16)
        status = texel_view(ctx, buffer, bytes, 8, false, &buffer->quad_texels);
    return status;
}

void vk_buffer_destroy(vk_state *vk, vk_buffer *buffer)
{
    if (buffer->texels)
        vk->fn.vkDestroyBufferView(vk->device, buffer->texels, NULL);
    if (buffer->quad_texels)
        vk->fn.vkDestroyBufferView(vk->device, buffer->quad_texels, NULL);
    if (buffer->borrowed) {
        *buffer = (vk_buffer){ 0 };
        return;
    }
    if (buffer->buffer)
        vk->fn.vkDestroyBuffer(vk->device, buffer->buffer, NULL);
    if (buffer->memory)
        vk->fn.vkFreeMemory(vk->device, buffer->memory, NULL);
    *buffer = (vk_buffer){ 0 };
}
