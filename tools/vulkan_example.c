/*
 * vulkan_example — inorm inside your own Vulkan code.
 *
 * Your app owns the instance, device, queue, buffers and command buffer.
 * inorm records an instance norm into that command buffer, between your own
 * commands, over your own buffers; you submit it and wait as usual.
 *
 *   cc vulkan_example.c -linorm -lvulkan -lm
 *
 * The Vulkan setup below is the bare minimum; the comments marked "inorm:"
 * are the integration points.
 */
#include <vulkan/vulkan.h> /* inorm: include it BEFORE inorm.h, which then declares its Vulkan API */
#include "inorm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Vulkan errors end the example (a real app would handle them). */
#define CHECK(call) \
    do { if ((call) != VK_SUCCESS) { fprintf(stderr, "%s failed\n", #call); exit(1); } } while (0)

enum { N = 1, C = 2, H = 3, W = 4, COUNT = N * C * H * W };

/* A storage buffer in host-visible memory, mapped. */
static VkBuffer make_buffer(VkPhysicalDevice gpu, VkDevice device, VkDeviceSize size, VkDeviceMemory *memory,
                            void **map)
{
    VkBufferCreateInfo info = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = size,
                               .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT};
    VkBuffer buffer;
    CHECK(vkCreateBuffer(device, &info, NULL, &buffer));
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(device, buffer, &req);
    VkPhysicalDeviceMemoryProperties props;
    vkGetPhysicalDeviceMemoryProperties(gpu, &props);
    const VkMemoryPropertyFlags want = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    uint32_t type = 0;
    while (type < props.memoryTypeCount &&
           !((req.memoryTypeBits >> type & 1u) && (props.memoryTypes[type].propertyFlags & want) == want))
        type++;
    VkMemoryAllocateInfo alloc = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = req.size,
                                  .memoryTypeIndex = type};
    CHECK(vkAllocateMemory(device, &alloc, NULL, memory));
    CHECK(vkBindBufferMemory(device, buffer, *memory, 0));
    CHECK(vkMapMemory(device, *memory, 0, VK_WHOLE_SIZE, 0, map));
    return buffer;
}

int main(void)
{
    /* ---- Your Vulkan setup: instance, first device, a compute queue, a command buffer. ----
     * inorm: the instance's apiVersion must be 1.1 or later (inorm calls Vulkan 1.1 functions). */
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .apiVersion = VK_API_VERSION_1_1};
    VkInstanceCreateInfo instance_info = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app};
    VkInstance instance;
    uint32_t count = 1;
    VkPhysicalDevice gpu = VK_NULL_HANDLE;
    if (vkCreateInstance(&instance_info, NULL, &instance) != VK_SUCCESS ||
        vkEnumeratePhysicalDevices(instance, &count, &gpu) < 0 || count == 0) {
        printf("no Vulkan device: skipped\n");
        return 77; /* "skipped" for meson test */
    }
    VkQueueFamilyProperties families[16];
    uint32_t family_count = 16, family = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(gpu, &family_count, families);
    while (family < family_count && !(families[family].queueFlags & VK_QUEUE_COMPUTE_BIT))
        family++;
    const float priority = 1.0f;
    VkDeviceQueueCreateInfo queue_info = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                          .queueFamilyIndex = family, .queueCount = 1, .pQueuePriorities = &priority};
    VkDeviceCreateInfo device_info = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .queueCreateInfoCount = 1,
                                      .pQueueCreateInfos = &queue_info};
    VkDevice device;
    VkQueue queue;
    CHECK(vkCreateDevice(gpu, &device_info, NULL, &device));
    vkGetDeviceQueue(device, family, 0, &queue);
    VkCommandPoolCreateInfo pool_info = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO, .queueFamilyIndex = family};
    VkCommandPool pool;
    CHECK(vkCreateCommandPool(device, &pool_info, NULL, &pool));
    VkCommandBufferAllocateInfo cmd_info = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                            .commandPool = pool, .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                            .commandBufferCount = 1};
    VkCommandBuffer cmd;
    CHECK(vkAllocateCommandBuffers(device, &cmd_info, &cmd));
    VkFenceCreateInfo fence_info = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VkFence fence;
    CHECK(vkCreateFence(device, &fence_info, NULL, &fence));
    VkDeviceMemory x_memory, y_memory;
    void *x_map, *y_map;
    VkBuffer x_buffer = make_buffer(gpu, device, COUNT * sizeof(float), &x_memory, &x_map);
    VkBuffer y_buffer = make_buffer(gpu, device, COUNT * sizeof(float), &y_memory, &y_map);

    /* inorm: import your device. inorm loads every Vulkan function it calls
     * through the vkGetInstanceProcAddr you give it, and creates only its own
     * objects (pipelines, descriptor pools, scratch) on your device. */
    inorm_vulkan_import import = {.instance = instance, .physical_device = gpu, .device = device,
                                  .queue_family_index = family, .queue = queue,
                                  .get_instance_proc_addr = vkGetInstanceProcAddr};
    inorm_context *ctx;
    char message[256];
    if (inorm_context_import(&import, &ctx, message, sizeof message) != INORM_SUCCESS) {
        fprintf(stderr, "inorm_context_import: %s\n", message);
        return 1;
    }

    /* inorm: wrap your buffers as tensors (no copy; the buffers stay yours).
     * A non-zero offset must be a multiple of minStorageBufferOffsetAlignment. */
    inorm_tensor_desc desc = {N, C, H, W, INORM_FLOAT32, INORM_NCHW};
    inorm_tensor *x, *y;
    if (inorm_tensor_wrap_vulkan(ctx, &desc, x_buffer, 0, &x) != INORM_SUCCESS ||
        inorm_tensor_wrap_vulkan(ctx, &desc, y_buffer, 0, &y) != INORM_SUCCESS) {
        fprintf(stderr, "inorm_tensor_wrap_vulkan: %s\n", inorm_context_error(ctx));
        return 1;
    }

    /* ---- Record: your command, inorm's op, your barrier. ---- */
    float input[COUNT];
    for (int i = 0; i < COUNT; i++)
        input[i] = (float)(i % 5) * (i < COUNT / 2 ? 1.0f : 10.0f) + 100.0f;
    VkCommandBufferBeginInfo begin = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                      .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    CHECK(vkBeginCommandBuffer(cmd, &begin));
    /* Your own command writing x. inorm puts a barrier before each of its
     * dispatches that covers earlier compute-shader and transfer writes, so
     * none is needed here (writes from other stages would need yours). */
    vkCmdUpdateBuffer(cmd, x_buffer, 0, sizeof input, input);
    /* inorm: y = (x - mean) / sqrt(var + eps) per (n, c) plane, recorded into your cmd. */
    if (inorm_cmd_instance_norm(ctx, cmd, x, NULL, NULL, NULL, y) != INORM_SUCCESS) {
        fprintf(stderr, "inorm_cmd_instance_norm: %s\n", inorm_context_error(ctx));
        return 1;
    }
    /* inorm: after its ops, YOUR barrier from compute-shader writes to
     * whatever reads y next: here the host, after the fence. */
    VkMemoryBarrier after = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                             .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &after, 0,
                         NULL, 0, NULL);
    CHECK(vkEndCommandBuffer(cmd));
    VkSubmitInfo submit = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cmd};
    CHECK(vkQueueSubmit(queue, 1, &submit, fence));
    CHECK(vkWaitForFences(device, 1, &fence, VK_TRUE, UINT64_MAX));
    /* inorm: the command buffer has finished: free the descriptor sets and
     * scratch it used. (Until then they must stay alive.) */
    inorm_cmd_release(ctx);

    /* Each plane of y should now have mean 0 and standard deviation 1. */
    int ok = 1;
    for (int c = 0; c < C; c++) {
        const float *plane = (const float *)y_map + c * H * W;
        double sum = 0.0, sq = 0.0;
        printf("channel %d:", c);
        for (int i = 0; i < H * W; i++) {
            printf(" %6.3f", plane[i]);
            sum += plane[i];
            sq += (double)plane[i] * plane[i];
        }
        double mean = sum / (H * W), sd = sqrt(sq / (H * W) - mean * mean);
        printf("   (mean %.4f, std %.4f)\n", mean, sd);
        ok &= fabs(mean) < 1e-4 && fabs(sd - 1.0) < 1e-3;
    }

    /* inorm: destroy the context (and its tensors) before your device. */
    inorm_context_destroy(ctx);
    vkDestroyBuffer(device, x_buffer, NULL);
    vkDestroyBuffer(device, y_buffer, NULL);
    vkFreeMemory(device, x_memory, NULL);
    vkFreeMemory(device, y_memory, NULL);
    vkDestroyFence(device, fence, NULL);
    vkDestroyCommandPool(device, pool, NULL);
    vkDestroyDevice(device, NULL);
    vkDestroyInstance(instance, NULL);
    printf(ok ? "ok\n" : "FAILED: y is not normalized\n");
    return ok ? 0 : 1;
}
