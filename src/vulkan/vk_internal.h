/* The Vulkan backend's private state. volk loads the Vulkan loader once per
 * process; every instance- and device-level function is then called through
 * the context's own tables below, so contexts (and an app's own Vulkan use)
 * never share or overwrite function pointers. */
#ifndef INORM_VK_INTERNAL_H
#define INORM_VK_INTERNAL_H

/* volk (Vulkan's types) first, so that inorm.h declares its Vulkan interop. */
#include <volk.h>

#include "../internal.h"

#include <stdatomic.h>

#define VK_INSTANCE_FUNCTIONS(X)                  \
    X(vkDestroyInstance)                          \
    X(vkEnumeratePhysicalDevices)                 \
    X(vkGetPhysicalDeviceProperties)              \
    X(vkGetPhysicalDeviceProperties2)             \
    X(vkGetPhysicalDeviceFeatures2)               \
    X(vkGetPhysicalDeviceQueueFamilyProperties)   \
    X(vkGetPhysicalDeviceMemoryProperties)        \
    X(vkGetPhysicalDeviceFormatProperties)        \
    X(vkEnumerateDeviceExtensionProperties)       \
    X(vkCreateDevice)                             \
    X(vkGetDeviceProcAddr)

#define VK_DEVICE_FUNCTIONS(X)          \
    X(vkDestroyDevice)                  \
    X(vkGetDeviceQueue)                 \
    X(vkDeviceWaitIdle)                 \
    X(vkCreateBuffer)                   \
    X(vkDestroyBuffer)                  \
    X(vkCreateBufferView)               \
    X(vkDestroyBufferView)              \
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
    X(vkCmdWriteTimestamp)              \
    X(vkGetPipelineCacheData)           \
    X(vkMergePipelineCaches)

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
    VkDeviceMemory memory;   /* VK_NULL_HANDLE for the app's buffers */
    VkDeviceSize size;
    VkDeviceSize offset;     /* where the tensor starts: 0, or the app's offset */
    void *mapped;            /* persistently mapped host-visible memory, or NULL */
    bool borrowed;           /* the app's buffer (inorm_tensor_wrap_vulkan): never destroyed */
    /* The tensor as a uniform texel buffer of 16-byte texels (vk_texel_view),
     * or VK_NULL_HANDLE: kernels then read the storage buffer */
    VkBufferView texels;
    /* fp16 tensors: the same bytes in 8-byte texels, a 4-vector each, which
     * NHWC kernels read where their lanes load one channel quad at a time */
    VkBufferView quad_texels;
} vk_buffer;

/* The kernels, each a family of pipelines that differ by specialization. */
typedef enum vk_kernel {
    VK_KERNEL_STATS, VK_KERNEL_APPLY, VK_KERNEL_FUSED, VK_KERNEL_CONVERT,
    VK_KERNEL_COLOR, VK_KERNEL_BLEND,  /* pixel ops: module variant 1 is FLOAT16 */
    VK_KERNEL_COUNT
} vk_kernel;

/* Module variants: bit 0 FLOAT16 data (convert: FLOAT16 source), bit 1 FLOAT16 destination. */
#define VK_DTYPE_VARIANTS 4

/* What one statistics dispatch reads (SOURCES in shaders/norm_stats.comp):
 * the content's workgroups then the style's, or one tensor alone. */
enum { VK_SOURCES_BOTH = 0, VK_SOURCES_CONTENT = 1, VK_SOURCES_STYLE = 2 };

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
    uint32_t subgroup_workgroup; /* stats, apply, fused: the workgroup is one subgroup, no barriers */
    uint32_t lane_group;  /* convert: lanes walking one contiguous block (0: the shader's 32) */
    uint32_t quads_per_lane; /* stats, apply (NHWC, VEC4): channel quads per lane (0: 1) */
    uint32_t fold;        /* stats, apply (NHWC, VEC4): pixels read as one row of vec4s (0: 1) */
    uint32_t grouped;     /* fused: segments of several channels */
    uint32_t sources;     /* stats: which tensors a dispatch reads (VK_SOURCES_*) */
    uint32_t through_alu; /* convert (same layout): values widened, -0.0 added, narrowed back */
    uint32_t texel_loads; /* stats, apply, fused, convert: x's 4-vectors read from its texel view */
    uint32_t style_texel_loads; /* stats, fused: the style's likewise */
    uint32_t half_pairs;  /* fp16: lanes take 4-vectors in pairs (HALF_PAIR_UNITS): fused NCHW teams, NHWC stats and apply */
} vk_pipeline_key;

typedef struct vk_pipeline_entry {
    vk_pipeline_key key;
    VkPipeline pipeline;
} vk_pipeline_entry;

#define VK_SETS_PER_BATCH 64
#define VK_BINDINGS 10
/* After the storage buffers, uniform texel buffers: x's view, the style's. */
#define VK_TEXEL_BINDINGS 2
#define VK_PUSH_CONSTANT_BYTES 116

struct vk_state {
    PFN_vkGetInstanceProcAddr get_instance_proc_addr;
    vk_instance_functions fn_instance;
    vk_device_functions fn;
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice physical_device;
    int device_index;            /* in vkEnumeratePhysicalDevices' order; -1 when imported */
    VkDevice device;
    bool imported;               /* instance and device are the app's: never destroyed */
    uint32_t queue_family;
    VkQueue queue;

    VkPhysicalDeviceMemoryProperties memory_properties;
    VkPhysicalDeviceLimits limits;
    bool unified_memory;         /* integrated or CPU device: tensors live in mapped memory */
    bool use_subgroup_ops;
    bool float16_storage;        /* storageBuffer16BitAccess enabled */
    bool disable_fused;          /* INORM_DISABLE_FUSED=1: always the two-pass kernels */
    /* Tensors get texel views and kernels read through them (CPU devices;
     * INORM_TEXEL_LOADS=0/1 overrides) */
    bool texel_loads;
    /* shaderInt64 enabled (devices inorm creates, CPU devices only) */
    bool shader_int64;
    /* Kernels store 4-vectors as 64-bit words (WIDE_STORES modules: CPU
     * devices with shader_int64 and subgroup ops; INORM_WIDE_STORES=0 turns
     * it off) */
    bool wide_stores;
    vk_buffer texel_filler;      /* a view for the texel binding of kernels that do not read it */
    /* Plan kernels for workgroups of one subgroup, without barriers (CPU
     * devices; INORM_SUBGROUP_WORKGROUPS=0/1 overrides). Used only while
     * use_subgroup_ops holds. */
    bool subgroup_workgroups;
    /* The host's threads (inorm_cpu_threads_for), read once: a CPU device
     * runs its workgroups on them (whole_segments in vk_backend.c). */
    unsigned host_threads;
    uint32_t subgroup_size;
    /* VK_EXT_subgroup_size_control's subgroupSizeControl and
     * computeFullSubgroups are enabled: pipelines then require full
     * subgroups, and one-subgroup workgroups their subgroup size. */
    bool size_control;
    uint32_t max_subgroup_size;

    VkShaderModule modules[VK_KERNEL_COUNT][VK_DTYPE_VARIANTS];
    VkDescriptorSetLayout set_layout;
    VkPipelineLayout pipeline_layout;
    VkPipelineCache pipeline_cache;
    vk_pipeline_entry *pipelines;  /* every specialization made so far (grown as needed) */
    uint32_t pipeline_count, pipeline_capacity;

    /* One batch of recorded work: submitted and waited for by vk_flush. */
    VkCommandPool command_pool;
    VkCommandBuffer command_buffer;
    VkFence fence;
    VkDescriptorPool descriptor_pool;
    uint32_t sets_used;
    bool recording;

    vk_buffer scratch;           /* chunk partials; also the filler for unused bindings */

    /* Recording into the app's command buffers (inorm_cmd_*): their own
     * scratch and descriptor pools, and what must outlive those command
     * buffers until inorm_cmd_release. */
    VkCommandBuffer external_cmd;   /* set during an inorm_cmd_* call */
    VkCommandBuffer recording_cmd;  /* where the current op records: ours or the app's */
    bool external_pending;          /* recorded external work not yet released */
    vk_buffer external_scratch;
    VkDescriptorPool *external_pools;
    uint32_t external_pool_count;
    uint32_t external_sets_used;    /* in the newest external pool */
    vk_buffer *retired;             /* buffers that pending external work may still use */
    uint32_t retired_count;

    uint8_t pipeline_cache_uuid[VK_UUID_SIZE];
    uint32_t vendor_id, device_id;
    char *pipeline_cache_path;      /* written back at destroy; NULL: none */

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
inorm_status vk_texel_view(inorm_context *ctx, vk_buffer *buffer, VkDeviceSize bytes, bool float16);

/* vk_pipeline.c */
inorm_status vk_pipelines_init(inorm_context *ctx);
void vk_pipelines_destroy(vk_state *vk);
inorm_status vk_pipeline_get(inorm_context *ctx, const vk_pipeline_key *key, VkPipeline *out);

/* vk_backend.c */
inorm_status vk_recording_init(inorm_context *ctx);
void vk_recording_destroy(vk_state *vk);
/* Frees what external command buffers used (inorm_cmd_release). */
void vk_release_external(vk_state *vk);
/* Destroys a buffer now, or keeps it until vk_release_external when
 * recorded external work may still use it. */
inorm_status vk_buffer_retire(inorm_context *ctx, vk_buffer *buffer);

/* vk_pipeline.c: the pipeline cache as a blob */
inorm_status vk_pipeline_cache_get(inorm_context *ctx, void *data, size_t *size);
inorm_status vk_pipeline_cache_merge(inorm_context *ctx, const void *data, size_t size);
/* vk_interop.c: remembers the path; merges the file's cache if it is valid. */
inorm_status vk_pipeline_cache_load_file(inorm_context *ctx, const char *path);

/* Records status for a failed Vulkan call; DEVICE_LOST sticks to the context. */
inorm_status vk_fail(inorm_context *ctx, VkResult result, const char *what);

#endif
