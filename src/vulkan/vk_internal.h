/* The Vulkan backend's private state. volk loads the Vulkan loader once per
 * process; every instance- and device-level function is then called through
 * the context's own tables below, so contexts (and an app's own Vulkan use)
 * never share or overwrite function pointers. */
#ifndef INORM_VK_INTERNAL_H
#define INORM_VK_INTERNAL_H

#include "../internal.h"

#include <volk.h>

#include <stdatomic.h>

#define VK_INSTANCE_FUNCTIONS(X)                  \
    X(vkDestroyInstance)                          \
    X(vkEnumeratePhysicalDevices)                 \
    X(vkGetPhysicalDeviceProperties)              \
    X(vkGetPhysicalDeviceProperties2)             \
    X(vkGetPhysicalDeviceFeatures2)               \
    X(vkGetPhysicalDeviceQueueFamilyProperties)   \
    X(vkGetPhysicalDeviceMemoryProperties)        \
    X(vkEnumerateDeviceExtensionProperties)       \
    X(vkCreateDevice)                             \
    X(vkGetDeviceProcAddr)

#define VK_DEVICE_FUNCTIONS(X)          \
    X(vkDestroyDevice)                  \
    X(vkGetDeviceQueue)                 \
    X(vkDeviceWaitIdle)                 \
    X(vkCreateBuffer)                   \
    X(vkDestroyBuffer)                  \
    X(vkGetBufferMemoryRequirements)    \
    X(vkAllocateMemory)                 \
    X(vkFreeMemory)                     \
    X(vkBindBufferMemory)               \
    X(vkMapMemory)                      \
    X(vkUnmapMemory)                    \
    X(vkCreateShaderModule)             \
    X(vkDestroyShaderModule)            \
    X(vkCreatePipelineCache)            \
    X(vkDestroyPipelineCache)           \
    X(vkCreateComputePipelines)         \
    X(vkDestroyPipeline)                \
    X(vkCreatePipelineLayout)           \
    X(vkDestroyPipelineLayout)          \
    X(vkCreateDescriptorSetLayout)      \
    X(vkDestroyDescriptorSetLayout)     \
    X(vkCreateDescriptorPool)           \
    X(vkDestroyDescriptorPool)          \
    X(vkResetDescriptorPool)            \
    X(vkAllocateDescriptorSets)         \
    X(vkUpdateDescriptorSets)           \
    X(vkCreateCommandPool)              \
    X(vkDestroyCommandPool)             \
    X(vkAllocateCommandBuffers)         \
    X(vkBeginCommandBuffer)             \
    X(vkEndCommandBuffer)               \
    X(vkResetCommandBuffer)             \
    X(vkCmdBindPipeline)                \
    X(vkCmdBindDescriptorSets)          \
    X(vkCmdPushConstants)               \
    X(vkCmdDispatch)                    \
    X(vkCmdPipelineBarrier)             \
    X(vkCmdCopyBuffer)                  \
    X(vkCreateFence)                    \
    X(vkDestroyFence)                   \
    X(vkWaitForFences)                  \
    X(vkResetFences)                    \
    X(vkQueueSubmit)                    \
    X(vkCreateQueryPool)                \
    X(vkDestroyQueryPool)               \
    X(vkGetQueryPoolResults)            \
    X(vkCmdResetQueryPool)              \
    X(vkCmdWriteTimestamp)

#define VK_DECLARE_POINTER(name) PFN_##name name;
typedef struct vk_instance_functions {
    VK_INSTANCE_FUNCTIONS(VK_DECLARE_POINTER)
    PFN_vkCreateDebugUtilsMessengerEXT vkCreateDebugUtilsMessengerEXT;   /* NULL without debug utils */
    PFN_vkDestroyDebugUtilsMessengerEXT vkDestroyDebugUtilsMessengerEXT;
} vk_instance_functions;
typedef struct vk_device_functions {
    VK_DEVICE_FUNCTIONS(VK_DECLARE_POINTER)
} vk_device_functions;

typedef struct vk_buffer {
    VkBuffer buffer;
    VkDeviceMemory memory;
    VkDeviceSize size;
    void *mapped;  /* persistently mapped host-visible memory, or NULL */
} vk_buffer;

/* The kernels, each a family of pipelines that differ by specialization. */
typedef enum vk_kernel {
    VK_KERNEL_STATS, VK_KERNEL_APPLY, VK_KERNEL_FUSED, VK_KERNEL_CONVERT,
    VK_KERNEL_COLOR, VK_KERNEL_BLEND,  /* pixel ops: module variant 1 is FLOAT16 */
    VK_KERNEL_COUNT
} vk_kernel;

/* Module variants: bit 0 FLOAT16 data (convert: FLOAT16 source), bit 1 FLOAT16 destination. */
#define VK_DTYPE_VARIANTS 4

typedef struct vk_pipeline_key {
    vk_kernel kernel;
    uint32_t dtypes;      /* module variant: see VK_DTYPE_VARIANTS */
    uint32_t workgroup_size;
    uint32_t vec4;        /* content read as vec4 */
    uint32_t style_vec4;  /* stats: style read as vec4 */
    uint32_t mode;        /* apply: normalize, adain, finalize */
    uint32_t nhwc;        /* convert: the source's layout */
    uint32_t dst_nhwc;    /* convert: the destination's layout */
    uint32_t team;        /* fused: lanes per segment */
    uint32_t regs;        /* fused: units held per lane */
    uint32_t activation;  /* apply, fused: inorm_activation */
    uint32_t blend;       /* apply, fused: alpha != 1 */
} vk_pipeline_key;

typedef struct vk_pipeline_entry {
    vk_pipeline_key key;
    VkPipeline pipeline;
} vk_pipeline_entry;

#define VK_MAX_PIPELINES 256
#define VK_SETS_PER_BATCH 64
#define VK_BINDINGS 10
#define VK_PUSH_CONSTANT_BYTES 108

struct vk_state {
    PFN_vkGetInstanceProcAddr get_instance_proc_addr;
    vk_instance_functions fn_instance;
    vk_device_functions fn;
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice physical_device;
    int device_index;            /* in vkEnumeratePhysicalDevices' order */
    VkDevice device;
    uint32_t queue_family;
    VkQueue queue;

    VkPhysicalDeviceMemoryProperties memory_properties;
    VkPhysicalDeviceLimits limits;
    bool unified_memory;         /* integrated or CPU device: tensors live in mapped memory */
    bool use_subgroup_ops;
    bool float16_storage;        /* storageBuffer16BitAccess enabled */
    bool disable_fused;          /* INORM_DISABLE_FUSED=1: always the two-pass kernels */

    VkShaderModule modules[VK_KERNEL_COUNT][VK_DTYPE_VARIANTS];
    VkDescriptorSetLayout set_layout;
    VkPipelineLayout pipeline_layout;
    VkPipelineCache pipeline_cache;
    vk_pipeline_entry pipelines[VK_MAX_PIPELINES];
    uint32_t pipeline_count;

    /* One batch of recorded work: submitted and waited for by vk_flush. */
    VkCommandPool command_pool;
    VkCommandBuffer command_buffer;
    VkFence fence;
    VkDescriptorPool descriptor_pool;
    uint32_t sets_used;
    bool recording;

    vk_buffer scratch;           /* chunk partials; also the filler for unused bindings */

    VkQueryPool timestamps;      /* two per batch when profiling; NULL without timestamps */
    double timestamp_period_ns;
    bool batch_timed;            /* the batch being recorded began with a timestamp */

    atomic_uint validation_messages;
};

/* vk_device.c */
void vk_state_destroy(vk_state *vk);
inorm_status vk_result_status(VkResult result);

/* vk_memory.c */
inorm_status vk_buffer_create(inorm_context *ctx, VkDeviceSize size, bool host_visible, vk_buffer *out);
void vk_buffer_destroy(vk_state *vk, vk_buffer *buffer);

/* vk_pipeline.c */
inorm_status vk_pipelines_init(inorm_context *ctx);
void vk_pipelines_destroy(vk_state *vk);
inorm_status vk_pipeline_get(inorm_context *ctx, const vk_pipeline_key *key, VkPipeline *out);

/* vk_backend.c */
inorm_status vk_recording_init(inorm_context *ctx);
void vk_recording_destroy(vk_state *vk);

/* Records status for a failed Vulkan call; DEVICE_LOST sticks to the context. */
inorm_status vk_fail(inorm_context *ctx, VkResult result, const char *what);

#endif
