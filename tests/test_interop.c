/*
 * inorm inside an app's own Vulkan code (inorm.h, "Inside your own Vulkan
 * code"). The test plays the app: it creates its own instance (with the
 * validation layer, synchronization validation and a debug-utils messenger
 * that counts messages: any message fails), its own device on the first
 * Vulkan 1.1 device (storageBuffer16BitAccess enabled), its own compute
 * queue, command buffer, fence and host-visible buffers, and imports all of
 * it into inorm. Synchronization validation checks the barrier contract.
 *
 * - recorded_ops: one command buffer holds the app's fill and copy, the
 *   barriers inorm.h asks for, instance norm (with the filled gamma), AdaIN
 *   (style at a non-zero offset), stats, convert, group norm on FLOAT16 NHWC,
 *   convert back, and the app's copy of a result; every result is compared
 *   with the CPU path given the same inputs (1e-4 abs+rel; fp16 4e-3).
 * - immediate_and_recorded: immediate ops on the imported context (it has a
 *   queue) mixed with recorded ones in separate submissions, both ways.
 * - record_only: an import without a queue records but refuses immediate ops.
 * - wrap_errors: bad offsets, ranges, handles, contexts.
 * - destroy_keeps_device: destroying inorm contexts (with work left pending
 *   and no inorm_cmd_release) leaves the app's device working and with no
 *   leaked child object at vkDestroyDevice.
 * - pipeline_cache_blob / pipeline_cache_file: the cache as a blob (good,
 *   damaged, foreign) and as a file (written at destroy, read at creation,
 *   garbage ignored).
 *
 * Environment: INORM_REQUIRE_VALIDATION=1 fails when the validation layer is
 * missing; INORM_TEST_ALLOW_NO_VULKAN=1 skips when there is no device.
 */
#define _POSIX_C_SOURCE 200809L
#include <vulkan/vulkan.h> /* before inorm.h: makes the interop API visible */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/inotify.h>
#endif

#include "test_util.h"

#define TOL32 1e-4 /* abs + rel against the CPU path, FLOAT32 results */
#define TOL16 4e-3 /* FLOAT16 results */

/* ------------------------------------------------------------ the app -- */

typedef struct app {
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice physical;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties memory;
    VkDevice device;
    uint32_t family;
    VkQueue queue;
    VkCommandPool pool;
    VkCommandBuffer cmd;
    VkFence fence;
    int validation; /* VK_LAYER_KHRONOS_validation is on */
    int fp16;       /* storageBuffer16BitAccess enabled */
    int size_control; /* VK_EXT_subgroup_size_control's two features enabled */
    unsigned messages;
} app;

typedef struct abuf {
    VkBuffer buffer;
    VkDeviceMemory memory;
    unsigned char *map;
    VkDeviceSize size;
} abuf;

static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                 VkDebugUtilsMessageTypeFlagsEXT types,
                                                 const VkDebugUtilsMessengerCallbackDataEXT *data,
                                                 void *user)
{
    app *a = (app *)user;
    a->messages++;
    fprintf(stderr, "[app messenger] severity 0x%x type 0x%x: %s\n", (unsigned)severity,
            (unsigned)types, data && data->pMessage ? data->pMessage : "(no text)");
    return VK_FALSE;
}

static int has_layer(const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0)
        return 0;
    VkLayerProperties *p = tu_malloc(n * sizeof *p);
    int found = 0;
    if (vkEnumerateInstanceLayerProperties(&n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++)
            found |= strcmp(p[i].layerName, name) == 0;
    free(p);
    return found;
}

static int has_instance_extension(const char *layer, const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateInstanceExtensionProperties(layer, &n, NULL) != VK_SUCCESS || n == 0)
        return 0;
    VkExtensionProperties *p = tu_malloc(n * sizeof *p);
    int found = 0;
    if (vkEnumerateInstanceExtensionProperties(layer, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++)
            found |= strcmp(p[i].extensionName, name) == 0;
    free(p);
    return found;
}

/* No device: a failure, or a skip with INORM_TEST_ALLOW_NO_VULKAN=1. */
static int no_vulkan(app *a, const char *why)
{
    if (a->instance)
        vkDestroyInstance(a->instance, NULL);
    a->instance = VK_NULL_HANDLE;
    if (tu_env_flag("INORM_TEST_ALLOW_NO_VULKAN")) {
        printf("SKIP %s: %s and INORM_TEST_ALLOW_NO_VULKAN=1\n", tcase_name(), why);
        return 0;
    }
    ck_abort_msg("%s (set INORM_TEST_ALLOW_NO_VULKAN=1 to skip)", why);
    return 0;
}

/* The app's own instance, device, queue, command buffer and fence. Returns 0
 * (after printing SKIP) when there is no device and skipping is allowed. */
static int app_create(app *a)
{
    memset(a, 0, sizeof *a);
    const char *layer = "VK_LAYER_KHRONOS_validation";
    a->validation = has_layer(layer);
    int debug_utils = has_instance_extension(NULL, VK_EXT_DEBUG_UTILS_EXTENSION_NAME) ||
                      (a->validation && has_instance_extension(layer, VK_EXT_DEBUG_UTILS_EXTENSION_NAME));
    int features = a->validation && has_instance_extension(layer, VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME);
    if (tu_env_flag("INORM_REQUIRE_VALIDATION"))
        ck_assert_msg(a->validation && debug_utils,
                      "INORM_REQUIRE_VALIDATION=1 but %s", a->validation
                          ? "VK_EXT_debug_utils is missing (messages could not be counted)"
                          : "VK_LAYER_KHRONOS_validation is not installed");

    const char *extensions[2];
    uint32_t extension_count = 0;
    if (debug_utils)
        extensions[extension_count++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
    if (features)
        extensions[extension_count++] = VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME;

    VkDebugUtilsMessengerCreateInfoEXT messenger_info = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = on_message,
        .pUserData = a,
    };
    /* Synchronization validation checks the barrier contract of inorm.h. */
    VkValidationFeatureEnableEXT enables[] = {VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT};
    VkValidationFeaturesEXT validation_features = {
        .sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT,
        .enabledValidationFeatureCount = 1,
        .pEnabledValidationFeatures = enables,
    };
    VkApplicationInfo app_info = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "inorm test_interop",
        .apiVersion = VK_API_VERSION_1_1,
    };
    VkInstanceCreateInfo instance_info = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pApplicationInfo = &app_info,
        .enabledLayerCount = a->validation ? 1u : 0u,
        .ppEnabledLayerNames = &layer,
        .enabledExtensionCount = extension_count,
        .ppEnabledExtensionNames = extensions,
    };
    /* Chained, the messenger also sees vkCreateInstance and vkDestroyInstance. */
    const void *chain = NULL;
    if (debug_utils) {
        messenger_info.pNext = chain;
        chain = &messenger_info;
    }
    if (features) {
        validation_features.pNext = chain;
        chain = &validation_features;
    }
    instance_info.pNext = chain;
    VkResult r = vkCreateInstance(&instance_info, NULL, &a->instance);
    if (r != VK_SUCCESS) {
        a->instance = VK_NULL_HANDLE;
        return no_vulkan(a, tu_fmt("vkCreateInstance failed (VkResult %d)", (int)r));
    }
    if (debug_utils) {
        PFN_vkCreateDebugUtilsMessengerEXT create = (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
            a->instance, "vkCreateDebugUtilsMessengerEXT");
        ck_assert_msg(create != NULL, "no vkCreateDebugUtilsMessengerEXT");
        messenger_info.pNext = NULL;
        ck_assert_int_eq(create(a->instance, &messenger_info, NULL, &a->messenger), VK_SUCCESS);
    }

    /* The first device with Vulkan 1.1 and a compute queue. */
    uint32_t count = 0;
    vkEnumeratePhysicalDevices(a->instance, &count, NULL);
    VkPhysicalDevice devices[16];
    if (count > 16)
        count = 16;
    if (count == 0 || vkEnumeratePhysicalDevices(a->instance, &count, devices) < 0)
        count = 0;
    int found = 0;
    for (uint32_t i = 0; i < count && !found; i++) {
        VkPhysicalDeviceProperties props;
        vkGetPhysicalDeviceProperties(devices[i], &props);
        if (props.apiVersion < VK_API_VERSION_1_1)
            continue;
        uint32_t families = 0;
        vkGetPhysicalDeviceQueueFamilyProperties(devices[i], &families, NULL);
        VkQueueFamilyProperties fp[16];
        if (families > 16)
            families = 16;
        vkGetPhysicalDeviceQueueFamilyProperties(devices[i], &families, fp);
        for (uint32_t f = 0; f < families && !found; f++) {
            if (fp[f].queueFlags & VK_QUEUE_COMPUTE_BIT) {
                a->physical = devices[i];
                a->props = props;
                a->family = f;
                found = 1;
            }
        }
    }
    if (!found) {
        if (a->messenger) {
            PFN_vkDestroyDebugUtilsMessengerEXT destroy = (PFN_vkDestroyDebugUtilsMessengerEXT)
                vkGetInstanceProcAddr(a->instance, "vkDestroyDebugUtilsMessengerEXT");
            destroy(a->instance, a->messenger, NULL);
        }
        return no_vulkan(a, "no Vulkan 1.1 device with a compute queue");
    }
    vkGetPhysicalDeviceMemoryProperties(a->physical, &a->memory);

    /* like an app that uses subgroup size control itself: enabled where the
     * device has it, and said so in the import */
    uint32_t device_extension_count = 0;
    vkEnumerateDeviceExtensionProperties(a->physical, NULL, &device_extension_count, NULL);
    VkExtensionProperties *available = calloc(device_extension_count ? device_extension_count : 1, sizeof *available);
    ck_assert(available);
    vkEnumerateDeviceExtensionProperties(a->physical, NULL, &device_extension_count, available);
    int size_extension = 0;
    for (uint32_t i = 0; i < device_extension_count; ++i)
        size_extension |= strcmp(available[i].extensionName, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME) == 0;
    free(available);
    VkPhysicalDeviceSubgroupSizeControlFeaturesEXT size_features = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT,
    };
    VkPhysicalDevice16BitStorageFeatures storage16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
        .pNext = size_extension ? &size_features : NULL,
    };
    VkPhysicalDeviceFeatures2 features2 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
        .pNext = &storage16,
    };
    vkGetPhysicalDeviceFeatures2(a->physical, &features2);
    a->fp16 = storage16.storageBuffer16BitAccess == VK_TRUE;
    a->size_control = size_extension && size_features.subgroupSizeControl && size_features.computeFullSubgroups;
    VkPhysicalDeviceSubgroupSizeControlFeaturesEXT enable_size = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT,
        .subgroupSizeControl = VK_TRUE,
        .computeFullSubgroups = VK_TRUE,
    };
    VkPhysicalDevice16BitStorageFeatures enable16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
        .pNext = a->size_control ? &enable_size : NULL,
        .storageBuffer16BitAccess = a->fp16 ? VK_TRUE : VK_FALSE,
    };
    const char *const device_extensions[] = { VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME };
    const float priority = 1.0f;
    VkDeviceQueueCreateInfo queue_info = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = a->family,
        .queueCount = 1,
        .pQueuePriorities = &priority,
    };
    VkDeviceCreateInfo device_info = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .pNext = &enable16,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &queue_info,
        .enabledExtensionCount = a->size_control ? 1u : 0u,
        .ppEnabledExtensionNames = device_extensions,
    };
    ck_assert_int_eq(vkCreateDevice(a->physical, &device_info, NULL, &a->device), VK_SUCCESS);
    vkGetDeviceQueue(a->device, a->family, 0, &a->queue);

    VkCommandPoolCreateInfo pool_info = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = a->family,
    };
    ck_assert_int_eq(vkCreateCommandPool(a->device, &pool_info, NULL, &a->pool), VK_SUCCESS);
    VkCommandBufferAllocateInfo alloc = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = a->pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    ck_assert_int_eq(vkAllocateCommandBuffers(a->device, &alloc, &a->cmd), VK_SUCCESS);
    VkFenceCreateInfo fence_info = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    ck_assert_int_eq(vkCreateFence(a->device, &fence_info, NULL, &a->fence), VK_SUCCESS);
    ck_assert_msg(a->messages == 0, "the validation layer reported %u message(s) while the app set up",
                  a->messages);
    return 1;
}

/* Destroys the app's objects; the validation layer reports child objects
 * still alive at vkDestroyDevice (anything inorm leaked), and any message
 * fails. */
static void app_destroy(app *a)
{
    ck_assert_int_eq(vkDeviceWaitIdle(a->device), VK_SUCCESS);
    vkDestroyFence(a->device, a->fence, NULL);
    vkDestroyCommandPool(a->device, a->pool, NULL);
    vkDestroyDevice(a->device, NULL);
    ck_assert_msg(a->messages == 0,
                  "the validation layer reported %u message(s) during the test or at vkDestroyDevice "
                  "(leaked objects; see stderr)",
                  a->messages);
    if (a->messenger) {
        PFN_vkDestroyDebugUtilsMessengerEXT destroy = (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
            a->instance, "vkDestroyDebugUtilsMessengerEXT");
        destroy(a->instance, a->messenger, NULL);
    }
    vkDestroyInstance(a->instance, NULL);
    ck_assert_msg(a->messages == 0, "the validation layer reported %u message(s) at vkDestroyInstance",
                  a->messages);
}

static VkDeviceSize align_up(VkDeviceSize v, VkDeviceSize a) { return a > 1 ? (v + a - 1) / a * a : v; }

/* Reserves bytes at the next multiple of the storage offset alignment. */
static VkDeviceSize place(const app *a, VkDeviceSize *cursor, VkDeviceSize bytes)
{
    VkDeviceSize at = align_up(*cursor, a->props.limits.minStorageBufferOffsetAlignment);
    *cursor = at + bytes;
    return at;
}

/* A buffer in host-visible, coherent memory, mapped, filled with 0xff bytes
 * (NaN as floats and halves), usable as storage and for transfers. */
static void abuf_create(app *a, VkDeviceSize size, abuf *b)
{
    memset(b, 0, sizeof *b);
    b->size = size;
    VkBufferCreateInfo info = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = size,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                 VK_BUFFER_USAGE_TRANSFER_DST_BIT,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    ck_assert_int_eq(vkCreateBuffer(a->device, &info, NULL, &b->buffer), VK_SUCCESS);
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(a->device, b->buffer, &req);
    const VkMemoryPropertyFlags want = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    uint32_t type = UINT32_MAX;
    for (uint32_t i = 0; i < a->memory.memoryTypeCount && type == UINT32_MAX; i++)
        if ((req.memoryTypeBits & (1u << i)) && (a->memory.memoryTypes[i].propertyFlags & want) == want)
            type = i;
    ck_assert_msg(type != UINT32_MAX, "no host-visible coherent memory type for a storage buffer");
    VkMemoryAllocateInfo alloc = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .allocationSize = req.size,
        .memoryTypeIndex = type,
    };
    ck_assert_int_eq(vkAllocateMemory(a->device, &alloc, NULL, &b->memory), VK_SUCCESS);
    ck_assert_int_eq(vkBindBufferMemory(a->device, b->buffer, b->memory, 0), VK_SUCCESS);
    void *map = NULL;
    ck_assert_int_eq(vkMapMemory(a->device, b->memory, 0, VK_WHOLE_SIZE, 0, &map), VK_SUCCESS);
    b->map = map;
    memset(b->map, 0xff, (size_t)size);
}

static void abuf_destroy(app *a, abuf *b)
{
    vkUnmapMemory(a->device, b->memory);
    vkDestroyBuffer(a->device, b->buffer, NULL);
    vkFreeMemory(a->device, b->memory, NULL);
    memset(b, 0, sizeof *b);
}

static void app_begin(app *a)
{
    ck_assert_int_eq(vkResetCommandBuffer(a->cmd, 0), VK_SUCCESS);
    VkCommandBufferBeginInfo begin = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
    };
    ck_assert_int_eq(vkBeginCommandBuffer(a->cmd, &begin), VK_SUCCESS);
}

static void app_submit_wait(app *a)
{
    ck_assert_int_eq(vkEndCommandBuffer(a->cmd), VK_SUCCESS);
    VkSubmitInfo submit = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &a->cmd,
    };
    ck_assert_int_eq(vkQueueSubmit(a->queue, 1, &submit, a->fence), VK_SUCCESS);
    ck_assert_int_eq(vkWaitForFences(a->device, 1, &a->fence, VK_TRUE, UINT64_MAX), VK_SUCCESS);
    ck_assert_int_eq(vkResetFences(a->device, 1, &a->fence), VK_SUCCESS);
}

static void memory_barrier(VkCommandBuffer cmd, VkPipelineStageFlags src_stages, VkAccessFlags src_access,
                           VkPipelineStageFlags dst_stages, VkAccessFlags dst_access)
{
    VkMemoryBarrier b = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = src_access,
        .dstAccessMask = dst_access,
    };
    vkCmdPipelineBarrier(cmd, src_stages, dst_stages, 0, 1, &b, 0, NULL, 0, NULL);
}

/* inorm.h: the app's barrier before an inorm op for inputs written by other
 * stages, here the host. */
static void barrier_host_to_inorm(VkCommandBuffer cmd)
{
    memory_barrier(cmd, VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_WRITE_BIT,
                   VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                   VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_TRANSFER_READ_BIT);
}

/* inorm.h: after inorm ops, from COMPUTE_SHADER + SHADER_WRITE (TRANSFER +
 * TRANSFER_WRITE for convert) to whatever reads the results. */
static void barrier_inorm_to(VkCommandBuffer cmd, VkPipelineStageFlags dst_stages, VkAccessFlags dst_access)
{
    memory_barrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                   VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT, dst_stages, dst_access);
}

/* ------------------------------------------------------ inorm helpers -- */

static inorm_context *app_import(app *a, int with_queue)
{
    inorm_vulkan_import d;
    memset(&d, 0, sizeof d);
    d.instance = a->instance;
    d.physical_device = a->physical;
    d.device = a->device;
    d.queue_family_index = a->family;
    d.queue = with_queue ? a->queue : VK_NULL_HANDLE;
    d.get_instance_proc_addr = vkGetInstanceProcAddr;
    d.storage_buffer_16bit_access = a->fp16;
    d.subgroup_size_control = a->size_control;
    char msg[1024] = "untouched";
    inorm_context *ctx = NULL;
    inorm_status st = inorm_context_import(&d, &ctx, msg, sizeof msg);
    ck_assert_msg(st == INORM_SUCCESS && ctx != NULL, "inorm_context_import: %s: \"%s\"",
                  inorm_status_string(st), msg);
    ck_assert_msg(msg[0] == '\0', "inorm_context_import succeeded with message \"%s\"", msg);
    ck_assert_str_eq(inorm_context_error(ctx), "");
    inorm_device_info info;
    TU_OK(ctx, inorm_context_info(ctx, &info));
    ck_assert_int_eq(info.backend, INORM_BACKEND_VULKAN);
    ck_assert_str_eq(info.name, a->props.deviceName);
    ck_assert_uint_eq(info.vendor_id, a->props.vendorID);
    ck_assert_uint_eq(info.device_id, a->props.deviceID);
    ck_assert_int_eq(!!info.float16_storage, a->fp16);
    return ctx;
}

static inorm_tensor_desc desc_fmt(uint32_t n, uint32_t c, uint32_t h, uint32_t w, inorm_dtype dt, inorm_layout l)
{
    inorm_tensor_desc d = tu_desc(n, c, h, w);
    d.dtype = dt;
    d.layout = l;
    return d;
}

static size_t desc_count(const inorm_tensor_desc *d) { return (size_t)d->n * d->c * d->h * d->w; }

static inorm_tensor *wrap(inorm_context *ctx, inorm_tensor_desc d, const abuf *b, VkDeviceSize offset)
{
    inorm_tensor *t = NULL;
    inorm_status st = inorm_tensor_wrap_vulkan(ctx, &d, b->buffer, offset, &t);
    ck_assert_msg(st == INORM_SUCCESS && t, "inorm_tensor_wrap_vulkan(%ux%ux%ux%u at offset %llu): %s: %s", d.n,
                  d.c, d.h, d.w, (unsigned long long)offset, inorm_status_string(st), inorm_context_error(ctx));
    return t;
}

/* A tensor of ctx (the CPU reference or an inorm-owned one) holding data
 * (raw bytes in the desc's dtype and layout) when not NULL. */
static inorm_tensor *own(inorm_context *ctx, inorm_tensor_desc d, const void *data)
{
    inorm_tensor *t = NULL;
    TU_OK(ctx, inorm_tensor_create(ctx, &d, &t));
    if (data)
        TU_OK(ctx, inorm_tensor_write(t, data, inorm_tensor_desc_bytes(&d)));
    return t;
}

static void get(inorm_context *ctx, const inorm_tensor *t, void *dst)
{
    inorm_tensor_desc d;
    TU_OK(ctx, inorm_tensor_get_desc(t, &d));
    TU_OK(ctx, inorm_tensor_read(t, dst, inorm_tensor_desc_bytes(&d)));
}

/* |got - want| <= tol * (1 + |want|) for every element; NaN fails. */
static void expect_close(const char *what, const float *got, const float *want, size_t n, double tol)
{
    for (size_t i = 0; i < n; i++) {
        double g = got[i], w = want[i];
        ck_assert_msg(isfinite(w), "%s: the CPU reference [%zu] is %g", what, i, w);
        ck_assert_msg(fabs(g - w) <= tol * (1.0 + fabs(w)),
                      "%s: element %zu of %zu: got %.9g, CPU path %.9g (|diff| %.3g > %.1e abs+rel)", what, i, n,
                      g, w, fabs(g - w), tol);
    }
}

static void expect_close_half(const char *what, const uint16_t *got, const uint16_t *want, size_t n, double tol)
{
    float *g = tu_floats(n), *w = tu_floats(n);
    for (size_t i = 0; i < n; i++) {
        g[i] = tu_half_to_float(got[i]);
        w[i] = tu_half_to_float(want[i]);
    }
    expect_close(what, g, w, n, tol);
    free(g);
    free(w);
}

static float *fill_normal(uint64_t seed, size_t n, double mean, double sd)
{
    tu_rng r;
    tu_rng_seed(&r, seed);
    float *v = tu_floats(n);
    tu_fill_normal(&r, v, n, mean, sd);
    return v;
}

/* Case-insensitive substring. */
static int mentions(const char *hay, const char *needle)
{
    size_t nl = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < nl && hay[i] &&
               (hay[i] | 0x20) == (needle[i] | 0x20))
            i++;
        if (i == nl)
            return 1;
    }
    return 0;
}

#define EXPECT_FAIL_MENTIONS(ctx, call, want, word)                                                 \
    do {                                                                                          \
        TU_EXPECT((ctx), (call), (want));                                                         \
        ck_assert_msg(mentions(inorm_context_error(ctx), (word)), "%s: error text \"%s\" does not mention \"%s\"", \
                      #call, inorm_context_error(ctx), (word));                                    \
    } while (0)

/* ------------------------------------------------ recorded op sequence -- */

START_TEST(recorded_ops)
{
    app a;
    if (!app_create(&a))
        return;
    ck_assert_msg(a.fp16, "the device has no storageBuffer16BitAccess (the FLOAT16 part needs it)");
    inorm_context *ctx = app_import(&a, 1);

    const inorm_tensor_desc dx = desc_fmt(2, 4, 5, 7, INORM_FLOAT32, INORM_NCHW);
    const inorm_tensor_desc dstyle = desc_fmt(1, 4, 6, 3, INORM_FLOAT32, INORM_NCHW);
    const inorm_tensor_desc dchan = desc_fmt(1, 4, 1, 1, INORM_FLOAT32, INORM_NCHW);
    const inorm_tensor_desc dnc = desc_fmt(2, 4, 1, 1, INORM_FLOAT32, INORM_NCHW);
    const inorm_tensor_desc dxh = desc_fmt(2, 4, 5, 7, INORM_FLOAT16, INORM_NHWC);
    const size_t nx = desc_count(&dx), ns = desc_count(&dstyle), nc = desc_count(&dnc);
    const size_t bx = nx * 4, bh = nx * 2;
    const float gamma_value = 1.25f;
    const float alpha = 0.8f;
    const uint32_t groups = 2;

    float *x = fill_normal(11, nx, 0.5, 2.0);
    float *style = fill_normal(12, ns, -1.0, 0.5);
    float *beta = fill_normal(13, 4, 0.0, 1.0);
    float gamma[4] = {gamma_value, gamma_value, gamma_value, gamma_value};

    /* The app's buffers: inputs (style at a non-zero aligned offset), gamma
     * (filled on the device), a copy of x, the outputs, a copy of one output. */
    VkDeviceSize cur = 0;
    const VkDeviceSize off_x = place(&a, &cur, bx), off_style = place(&a, &cur, ns * 4),
                       off_beta = place(&a, &cur, 16);
    ck_assert(off_style != 0);
    abuf in, gam, xcopy, out, ycopy;
    abuf_create(&a, cur, &in);
    memcpy(in.map + off_x, x, bx);
    memcpy(in.map + off_style, style, ns * 4);
    memcpy(in.map + off_beta, beta, 16);
    abuf_create(&a, 16, &gam);
    abuf_create(&a, bx, &xcopy);
    cur = 0;
    const VkDeviceSize off_yin = place(&a, &cur, bx), off_yad = place(&a, &cur, bx), off_mean = place(&a, &cur, nc * 4),
                       off_std = place(&a, &cur, nc * 4), off_xh = place(&a, &cur, bh), off_yh = place(&a, &cur, bh),
                       off_yg = place(&a, &cur, bx);
    abuf_create(&a, cur, &out);
    abuf_create(&a, 2 * bx, &ycopy);

    inorm_tensor *tx = wrap(ctx, dx, &in, off_x), *tstyle = wrap(ctx, dstyle, &in, off_style),
                 *tbeta = wrap(ctx, dchan, &in, off_beta), *tgamma = wrap(ctx, dchan, &gam, 0),
                 *tx2 = wrap(ctx, dx, &xcopy, 0), *tyin = wrap(ctx, dx, &out, off_yin),
                 *tyad = wrap(ctx, dx, &out, off_yad), *tmean = wrap(ctx, dnc, &out, off_mean),
                 *tstd = wrap(ctx, dnc, &out, off_std), *txh = wrap(ctx, dxh, &out, off_xh),
                 *tyh = wrap(ctx, dxh, &out, off_yh), *tyg = wrap(ctx, dx, &out, off_yg);

    uint32_t gamma_bits;
    memcpy(&gamma_bits, &gamma_value, 4);
    app_begin(&a);
    /* x, style and beta were written by the host. */
    barrier_host_to_inorm(a.cmd);
    /* The app's own transfers; inorm's barrier before each dispatch makes
     * transfer writes visible, so none of the app's is needed here. */
    vkCmdFillBuffer(a.cmd, gam.buffer, 0, 16, gamma_bits);
    VkBufferCopy copy_x = {.srcOffset = off_x, .dstOffset = 0, .size = bx};
    vkCmdCopyBuffer(a.cmd, in.buffer, xcopy.buffer, 1, &copy_x);
    TU_OK(ctx, inorm_cmd_instance_norm(ctx, a.cmd, tx2, tgamma, tbeta, NULL, tyin));
    TU_OK(ctx, inorm_cmd_adain(ctx, a.cmd, tx2, tstyle, alpha, NULL, tyad));
    TU_OK(ctx, inorm_cmd_stats(ctx, a.cmd, tx, NULL, tmean, tstd));
    TU_OK(ctx, inorm_cmd_convert(ctx, a.cmd, tx, txh));
    TU_OK(ctx, inorm_cmd_group_norm(ctx, a.cmd, txh, groups, tgamma, tbeta, NULL, tyh));
    TU_OK(ctx, inorm_cmd_convert(ctx, a.cmd, tyh, tyg));
    /* The app copies two results, one of them written by the last inorm op:
     * the documented barrier to its transfer. */
    barrier_inorm_to(a.cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_READ_BIT);
    VkBufferCopy copy_y[2] = {{.srcOffset = off_yin, .dstOffset = 0, .size = bx},
                              {.srcOffset = off_yg, .dstOffset = bx, .size = bx}};
    vkCmdCopyBuffer(a.cmd, out.buffer, ycopy.buffer, 2, copy_y);
    /* Everything is read by the host after the fence. */
    memory_barrier(a.cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                   VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT, VK_PIPELINE_STAGE_HOST_BIT,
                   VK_ACCESS_HOST_READ_BIT);
    app_submit_wait(&a);
    TU_OK(ctx, inorm_cmd_release(ctx));

    /* The same on the CPU path. */
    inorm_context *cpu = tu_ctx_create(INORM_BACKEND_CPU);
    inorm_tensor *cx = own(cpu, dx, x), *cstyle = own(cpu, dstyle, style), *cgamma = own(cpu, dchan, gamma),
                 *cbeta = own(cpu, dchan, beta), *cyin = own(cpu, dx, NULL), *cyad = own(cpu, dx, NULL),
                 *cmean = own(cpu, dnc, NULL), *cstd = own(cpu, dnc, NULL), *cxh = own(cpu, dxh, NULL),
                 *cyh = own(cpu, dxh, NULL), *cyg = own(cpu, dx, NULL);
    TU_OK(cpu, inorm_instance_norm(cpu, cx, cgamma, cbeta, NULL, cyin));
    TU_OK(cpu, inorm_adain(cpu, cx, cstyle, alpha, NULL, cyad));
    TU_OK(cpu, inorm_stats(cpu, cx, NULL, cmean, cstd));
    TU_OK(cpu, inorm_convert(cpu, cx, cxh));
    TU_OK(cpu, inorm_group_norm(cpu, cxh, groups, cgamma, cbeta, NULL, cyh));
    TU_OK(cpu, inorm_convert(cpu, cyh, cyg));
    float *ryin = tu_floats(nx), *ryad = tu_floats(nx), *ryg = tu_floats(nx), rmean[8], rstd[8];
    uint16_t *rxh = tu_malloc(bh), *ryh = tu_malloc(bh);
    get(cpu, cyin, ryin);
    get(cpu, cyad, ryad);
    get(cpu, cmean, rmean);
    get(cpu, cstd, rstd);
    get(cpu, cxh, rxh);
    get(cpu, cyh, ryh);
    get(cpu, cyg, ryg);

    /* The app's own commands did their part. */
    for (int c = 0; c < 4; c++)
        ck_assert_msg(((const float *)gam.map)[c] == gamma_value, "vkCmdFillBuffer of gamma: [%d] = %g", c,
                      ((const float *)gam.map)[c]);
    ck_assert_msg(memcmp(xcopy.map, x, bx) == 0, "the app's copy of x differs from x");

    expect_close("instance_norm (gamma filled by vkCmdFillBuffer, x copied by vkCmdCopyBuffer)",
                 (const float *)(out.map + off_yin), ryin, nx, TOL32);
    expect_close("the app's vkCmdCopyBuffer of instance_norm's y", (const float *)ycopy.map, ryin, nx, TOL32);
    expect_close("the app's vkCmdCopyBuffer of the last convert's y", (const float *)(ycopy.map + bx), ryg, nx, TOL16);
    expect_close("adain (style at a non-zero offset)", (const float *)(out.map + off_yad), ryad, nx, TOL32);
    expect_close("stats mean", (const float *)(out.map + off_mean), rmean, nc, TOL32);
    expect_close("stats std", (const float *)(out.map + off_std), rstd, nc, TOL32);
    /* Conversion rounds to nearest even on both paths: bit for bit. */
    ck_assert_msg(memcmp(out.map + off_xh, rxh, bh) == 0,
                  "convert FLOAT32 NCHW -> FLOAT16 NHWC differs from the CPU path");
    expect_close_half("group_norm FLOAT16 NHWC", (const uint16_t *)(out.map + off_yh), ryh, nx, TOL16);
    expect_close("group_norm FLOAT16 NHWC converted back to FLOAT32 NCHW", (const float *)(out.map + off_yg), ryg,
                 nx, TOL16);

    ck_assert_uint_eq(inorm_context_validation_message_count(ctx), 0);
    inorm_tensor *all[] = {tx, tstyle, tbeta, tgamma, tx2, tyin, tyad, tmean, tstd, txh, tyh, tyg};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        inorm_tensor_destroy(all[i]);
    inorm_context_destroy(ctx);
    tu_ctx_destroy(cpu);
    abuf_destroy(&a, &in);
    abuf_destroy(&a, &gam);
    abuf_destroy(&a, &xcopy);
    abuf_destroy(&a, &out);
    abuf_destroy(&a, &ycopy);
    app_destroy(&a);
    free(x), free(style), free(beta), free(ryin), free(ryad), free(ryg), free(rxh), free(ryh);
}
END_TEST

/* -------------------------------------------- immediate mixed with cmd -- */

START_TEST(immediate_and_recorded)
{
    app a;
    if (!app_create(&a))
        return;
    inorm_context *ctx = app_import(&a, 1);
    inorm_context *cpu = tu_ctx_create(INORM_BACKEND_CPU);

    const inorm_tensor_desc dx = desc_fmt(3, 2, 4, 6, INORM_FLOAT32, INORM_NCHW);
    const inorm_tensor_desc ds = desc_fmt(3, 2, 3, 5, INORM_FLOAT32, INORM_NCHW);
    const inorm_tensor_desc dnc = desc_fmt(3, 2, 1, 1, INORM_FLOAT32, INORM_NCHW);
    const size_t nx = desc_count(&dx), ns = desc_count(&ds), nc = desc_count(&dnc);
    const size_t bx = nx * 4;
    const float alpha = 0.6f;
    float *x = fill_normal(21, nx, 3.0, 1.5), *style = fill_normal(22, ns, -2.0, 0.25);
    float *got = tu_floats(nx), *want = tu_floats(nx);

    inorm_tensor *cx = own(cpu, dx, x), *cs = own(cpu, ds, style), *cy1 = own(cpu, dx, NULL),
                 *cy2 = own(cpu, dx, NULL), *cy3 = own(cpu, dx, NULL),
                 *cmean = own(cpu, dnc, NULL), *cstd = own(cpu, dnc, NULL);

    /* 1. Immediate ops on inorm's own tensors. */
    inorm_tensor *tx = own(ctx, dx, x), *ty = own(ctx, dx, NULL);
    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, NULL, ty));
    get(ctx, ty, got);
    TU_OK(cpu, inorm_instance_norm(cpu, cx, NULL, NULL, NULL, cy1));
    get(cpu, cy1, want);
    expect_close("immediate instance_norm on the imported context", got, want, nx, TOL32);

    /* 2. Recorded: an inorm-owned input written by inorm_tensor_write and the
     * app's buffers, submitted by the app. */
    abuf bs, by;
    abuf_create(&a, ns * 4, &bs);
    abuf_create(&a, bx, &by);
    memcpy(bs.map, style, ns * 4);
    inorm_tensor *ts = wrap(ctx, ds, &bs, 0), *ty2 = wrap(ctx, dx, &by, 0);
    app_begin(&a);
    barrier_host_to_inorm(a.cmd);
    TU_OK(ctx, inorm_cmd_adain(ctx, a.cmd, tx, ts, alpha, NULL, ty2));
    barrier_inorm_to(a.cmd, VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
    app_submit_wait(&a);
    TU_OK(ctx, inorm_cmd_release(ctx));
    TU_OK(cpu, inorm_adain(cpu, cx, cs, alpha, NULL, cy2));
    get(cpu, cy2, want);
    expect_close("recorded adain after immediate ops", (const float *)by.map, want, nx, TOL32);

    /* 3. Immediate ops reading what the app's submission wrote. */
    get(ctx, ty2, got);
    ck_assert_msg(memcmp(got, by.map, bx) == 0, "inorm_tensor_read of a wrapped buffer differs from its memory");
    TU_OK(ctx, inorm_instance_norm(ctx, ty2, NULL, NULL, NULL, ty));
    get(ctx, ty, got);
    TU_OK(cpu, inorm_instance_norm(cpu, cy2, NULL, NULL, NULL, cy3));
    get(cpu, cy3, want);
    expect_close("immediate instance_norm of a recorded result", got, want, nx, TOL32);

    /* 4. An immediate op writes the app's buffer; the app's own submission
     * copies it (after inorm_context_finish, with the documented barrier). */
    abuf bstat, bcopy;
    VkDeviceSize cur = 0;
    const VkDeviceSize off_mean = place(&a, &cur, nc * 4), off_std = place(&a, &cur, nc * 4);
    abuf_create(&a, cur, &bstat);
    abuf_create(&a, cur, &bcopy);
    inorm_tensor *tmean = wrap(ctx, dnc, &bstat, off_mean), *tstd = wrap(ctx, dnc, &bstat, off_std);
    TU_OK(ctx, inorm_stats(ctx, tx, NULL, tmean, tstd));
    TU_OK(ctx, inorm_context_finish(ctx));
    app_begin(&a);
    barrier_inorm_to(a.cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_READ_BIT);
    VkBufferCopy whole = {.srcOffset = 0, .dstOffset = 0, .size = cur};
    vkCmdCopyBuffer(a.cmd, bstat.buffer, bcopy.buffer, 1, &whole);
    memory_barrier(a.cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT, VK_PIPELINE_STAGE_HOST_BIT,
                   VK_ACCESS_HOST_READ_BIT);
    app_submit_wait(&a);
    TU_OK(cpu, inorm_stats(cpu, cx, NULL, cmean, cstd));
    float rmean[6], rstd[6];
    get(cpu, cmean, rmean);
    get(cpu, cstd, rstd);
    expect_close("immediate stats mean, copied by the app", (const float *)(bcopy.map + off_mean), rmean, nc, TOL32);
    expect_close("immediate stats std, copied by the app", (const float *)(bcopy.map + off_std), rstd, nc, TOL32);

    /* 5. Recording again into the reset command buffer after the release,
     * with an immediate op pending (not yet submitted) meanwhile. */
    inorm_tensor *ty4 = own(ctx, dx, NULL);
    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, NULL, ty4));
    app_begin(&a);
    TU_OK(ctx, inorm_cmd_layer_norm(ctx, a.cmd, ts, NULL, NULL, NULL, ts));
    app_submit_wait(&a);
    TU_OK(ctx, inorm_cmd_release(ctx));
    get(ctx, ty4, got);
    get(cpu, cy1, want);
    expect_close("immediate instance_norm pending across a recorded submission", got, want, nx, TOL32);
    /* ts was normalized in place by the layer norm above. */
    inorm_tensor *cs2 = own(cpu, ds, NULL);
    TU_OK(cpu, inorm_layer_norm(cpu, cs, NULL, NULL, NULL, cs2));
    float *rs = tu_floats(ns);
    get(cpu, cs2, rs);
    expect_close("recorded layer_norm in place", (const float *)bs.map, rs, ns, TOL32);

    ck_assert_uint_eq(inorm_context_validation_message_count(ctx), 0);
    inorm_context_destroy(ctx); /* also destroys the tensors still alive */
    tu_ctx_destroy(cpu);
    abuf_destroy(&a, &bs);
    abuf_destroy(&a, &by);
    abuf_destroy(&a, &bstat);
    abuf_destroy(&a, &bcopy);
    app_destroy(&a);
    free(x), free(style), free(got), free(want), free(rs);
}
END_TEST

/* ------------------------------------------------------------ no queue -- */

START_TEST(record_only)
{
    app a;
    if (!app_create(&a))
        return;
    inorm_context *ctx = app_import(&a, 0);
    inorm_context *cpu = tu_ctx_create(INORM_BACKEND_CPU);
    const inorm_tensor_desc dx = desc_fmt(2, 3, 4, 5, INORM_FLOAT32, INORM_NCHW);
    const size_t nx = desc_count(&dx), bx = nx * 4;
    float *x = fill_normal(31, nx, -4.0, 3.0), *want = tu_floats(nx), *got = tu_floats(nx);
    inorm_tensor *cx = own(cpu, dx, x), *cy = own(cpu, dx, NULL);
    TU_OK(cpu, inorm_instance_norm(cpu, cx, NULL, NULL, NULL, cy));
    get(cpu, cy, want);

    abuf bx_, by;
    abuf_create(&a, bx, &bx_);
    abuf_create(&a, bx, &by);
    memcpy(bx_.map, x, bx);
    inorm_tensor *tx = wrap(ctx, dx, &bx_, 0), *ty = wrap(ctx, dx, &by, 0);

    /* Recording works; the app submits on its own queue. */
    app_begin(&a);
    barrier_host_to_inorm(a.cmd);
    TU_OK(ctx, inorm_cmd_instance_norm(ctx, a.cmd, tx, NULL, NULL, NULL, ty));
    barrier_inorm_to(a.cmd, VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
    app_submit_wait(&a);
    TU_OK(ctx, inorm_cmd_release(ctx));
    expect_close("recorded instance_norm on a record-only import", (const float *)by.map, want, nx, TOL32);

    /* Tensors inorm creates there live in host-visible memory: written and
     * read without a queue, usable by recorded ops. */
    inorm_tensor *ox = own(ctx, dx, x), *oy = own(ctx, dx, NULL);
    app_begin(&a);
    barrier_host_to_inorm(a.cmd);
    TU_OK(ctx, inorm_cmd_instance_norm(ctx, a.cmd, ox, NULL, NULL, NULL, oy));
    barrier_inorm_to(a.cmd, VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
    app_submit_wait(&a);
    TU_OK(ctx, inorm_cmd_release(ctx));
    get(ctx, oy, got);
    expect_close("recorded instance_norm on inorm-owned tensors of a record-only import", got, want, nx, TOL32);

    /* Immediate ops need a queue: refused at the call, with a message, and
     * nothing is left behind that would break later calls. */
    EXPECT_FAIL_MENTIONS(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, NULL, ty), INORM_ERROR_UNSUPPORTED, "queue");
    EXPECT_FAIL_MENTIONS(ctx, inorm_adain(ctx, ox, ox, 1.0f, NULL, oy), INORM_ERROR_UNSUPPORTED, "queue");
    TU_OK(ctx, inorm_context_finish(ctx));
    TU_OK(ctx, inorm_tensor_write(ox, x, bx));
    memset(by.map, 0xff, bx);
    app_begin(&a);
    barrier_host_to_inorm(a.cmd);
    TU_OK(ctx, inorm_cmd_instance_norm(ctx, a.cmd, ox, NULL, NULL, NULL, ty));
    barrier_inorm_to(a.cmd, VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
    app_submit_wait(&a);
    TU_OK(ctx, inorm_cmd_release(ctx));
    expect_close("recorded instance_norm after refused immediate ops", (const float *)by.map, want, nx, TOL32);

    ck_assert_uint_eq(inorm_context_validation_message_count(ctx), 0);
    inorm_context_destroy(ctx);
    tu_ctx_destroy(cpu);
    abuf_destroy(&a, &bx_);
    abuf_destroy(&a, &by);
    app_destroy(&a);
    free(x), free(want), free(got);
}
END_TEST

/* ---------------------------------------------------------- bad input -- */

START_TEST(wrap_errors)
{
    app a;
    if (!app_create(&a))
        return;
    inorm_context *ctx = app_import(&a, 1);
    const VkDeviceSize align = a.props.limits.minStorageBufferOffsetAlignment;
    const VkDeviceSize size = 4096;
    abuf b;
    abuf_create(&a, size, &b);
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(a.device, b.buffer, &req);
    const inorm_tensor_desc d = desc_fmt(1, 1, 4, 4, INORM_FLOAT32, INORM_NCHW); /* 64 bytes */
    const inorm_tensor_desc big = desc_fmt(1, 1, (uint32_t)(req.size / 4 / 8) + 1, 8, INORM_FLOAT32, INORM_NCHW);
    inorm_tensor *sentinel = (inorm_tensor *)&b, *t;

#define WRAP_FAILS(desc_ptr, buf, off, want, word)                                                          \
    do {                                                                                                    \
        t = sentinel;                                                                                       \
        EXPECT_FAIL_MENTIONS(ctx, inorm_tensor_wrap_vulkan(ctx, (desc_ptr), (buf), (off), &t), (want), (word)); \
        ck_assert_msg(t == NULL, "a failed wrap left *out = %p (want NULL)", (void *)t);                    \
    } while (0)

    if (align > 1) {
        WRAP_FAILS(&d, b.buffer, align / 2, INORM_ERROR_INVALID_ARGUMENT, "offset");
        WRAP_FAILS(&d, b.buffer, align + 4, INORM_ERROR_INVALID_ARGUMENT, "offset");
    } else {
        printf("note: minStorageBufferOffsetAlignment is 1, no offset is misaligned\n");
    }
    /* The range past the end of the buffer's memory. */
    WRAP_FAILS(&d, b.buffer, align_up(req.size - 32, align), INORM_ERROR_INVALID_ARGUMENT, "fit");
    WRAP_FAILS(&d, b.buffer, align_up(req.size, align), INORM_ERROR_INVALID_ARGUMENT, "fit");
    WRAP_FAILS(&d, b.buffer, align_up(req.size * 4, align), INORM_ERROR_INVALID_ARGUMENT, "fit");
    WRAP_FAILS(&d, b.buffer, ((VkDeviceSize)-1) / align * align, INORM_ERROR_INVALID_ARGUMENT, "fit");
    WRAP_FAILS(&big, b.buffer, 0, INORM_ERROR_INVALID_ARGUMENT, "fit");
    WRAP_FAILS(&d, VK_NULL_HANDLE, 0, INORM_ERROR_INVALID_ARGUMENT, "buffer");
    WRAP_FAILS(NULL, b.buffer, 0, INORM_ERROR_INVALID_ARGUMENT, "desc");
    inorm_tensor_desc zero = d;
    zero.h = 0;
    WRAP_FAILS(&zero, b.buffer, 0, INORM_ERROR_INVALID_ARGUMENT, "desc");
    TU_EXPECT(ctx, inorm_tensor_wrap_vulkan(ctx, &d, b.buffer, 0, NULL), INORM_ERROR_INVALID_ARGUMENT);

    /* What fits is accepted, up to the last aligned offset. */
    const VkDeviceSize last = (req.size - 64) / (align ? align : 1) * (align ? align : 1);
    inorm_tensor *t0 = wrap(ctx, d, &b, 0), *t1 = wrap(ctx, d, &b, align), *tl = wrap(ctx, d, &b, last);

    /* Recording errors. */
    TU_EXPECT(ctx, inorm_cmd_instance_norm(ctx, VK_NULL_HANDLE, t0, NULL, NULL, NULL, t1),
              INORM_ERROR_INVALID_ARGUMENT);
    app_begin(&a);
    const inorm_tensor_desc d2 = desc_fmt(1, 2, 2, 4, INORM_FLOAT32, INORM_NCHW); /* same bytes, other shape */
    inorm_tensor *t2 = wrap(ctx, d2, &b, 2 * align_up(64, align));
    TU_EXPECT(ctx, inorm_cmd_instance_norm(ctx, a.cmd, t0, NULL, NULL, NULL, t2), INORM_ERROR_INVALID_ARGUMENT);
    TU_EXPECT(ctx, inorm_cmd_group_norm(ctx, a.cmd, t0, 3, NULL, NULL, NULL, t1), INORM_ERROR_INVALID_ARGUMENT);
    TU_EXPECT(ctx, inorm_cmd_stats(ctx, a.cmd, t0, NULL, NULL, NULL), INORM_ERROR_INVALID_ARGUMENT);
    /* A tensor of another context. */
    inorm_context *other = app_import(&a, 1);
    inorm_tensor *foreign = wrap(other, d, &b, 0);
    TU_EXPECT(ctx, inorm_cmd_instance_norm(ctx, a.cmd, foreign, NULL, NULL, NULL, t1), INORM_ERROR_INVALID_ARGUMENT);
    /* The command buffer holds nothing broken: a valid op still records and runs. */
    for (int i = 0; i < 16; i++)
        ((float *)b.map)[i] = (float)(i * i % 7);
    barrier_host_to_inorm(a.cmd);
    TU_OK(ctx, inorm_cmd_instance_norm(ctx, a.cmd, t0, NULL, NULL, NULL, tl));
    barrier_inorm_to(a.cmd, VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
    app_submit_wait(&a);
    TU_OK(ctx, inorm_cmd_release(ctx));
    inorm_context *cpu = tu_ctx_create(INORM_BACKEND_CPU);
    inorm_tensor *cx = own(cpu, d, b.map), *cy = own(cpu, d, NULL);
    TU_OK(cpu, inorm_instance_norm(cpu, cx, NULL, NULL, NULL, cy));
    float want[16];
    get(cpu, cy, want);
    expect_close("instance_norm after refused calls", (const float *)(b.map + last), want, 16, TOL32);

    /* The CPU path has no Vulkan buffers or command buffers. */
    EXPECT_FAIL_MENTIONS(cpu, inorm_tensor_wrap_vulkan(cpu, &d, b.buffer, 0, &t), INORM_ERROR_UNSUPPORTED, "cpu");
    TU_EXPECT(cpu, inorm_cmd_instance_norm(cpu, a.cmd, cx, NULL, NULL, NULL, cy), INORM_ERROR_UNSUPPORTED);
    TU_OK(cpu, inorm_cmd_release(cpu));
    ck_assert_int_eq(inorm_cmd_release(NULL), INORM_ERROR_INVALID_ARGUMENT);

    /* Import errors: the reason is in the message. */
    char msg[512];
    inorm_context *bad = (inorm_context *)&b;
    msg[0] = '\0';
    ck_assert_int_eq(inorm_context_import(NULL, &bad, msg, sizeof msg), INORM_ERROR_INVALID_ARGUMENT);
    ck_assert_msg(msg[0] != '\0', "import(NULL desc) left no message");
    inorm_vulkan_import desc;
    memset(&desc, 0, sizeof desc);
    desc.instance = a.instance;
    desc.physical_device = a.physical;
    desc.queue = a.queue;
    desc.queue_family_index = a.family;
    desc.get_instance_proc_addr = vkGetInstanceProcAddr;
    bad = (inorm_context *)&b;
    msg[0] = '\0';
    ck_assert_int_eq(inorm_context_import(&desc, &bad, msg, sizeof msg), INORM_ERROR_INVALID_ARGUMENT);
    ck_assert_msg(bad == NULL, "a failed import left *out set");
    ck_assert_msg(mentions(msg, "device"), "import without a device: message \"%s\" does not name it", msg);
    desc.device = a.device;
    desc.get_instance_proc_addr = NULL;
    msg[0] = '\0';
    ck_assert_int_eq(inorm_context_import(&desc, &bad, msg, sizeof msg), INORM_ERROR_INVALID_ARGUMENT);
    ck_assert_msg(mentions(msg, "get_instance_proc_addr"), "message \"%s\" does not name get_instance_proc_addr",
                  msg);
    desc.get_instance_proc_addr = vkGetInstanceProcAddr;
    ck_assert_int_eq(inorm_context_import(&desc, NULL, NULL, 0), INORM_ERROR_INVALID_ARGUMENT);

    /* Without storage_buffer_16bit_access in the import, FLOAT16 is refused. */
    desc.storage_buffer_16bit_access = 0;
    inorm_context *no16 = NULL;
    ck_assert_int_eq(inorm_context_import(&desc, &no16, msg, sizeof msg), INORM_SUCCESS);
    inorm_device_info info;
    TU_OK(no16, inorm_context_info(no16, &info));
    ck_assert_int_eq(info.float16_storage, 0);
    const inorm_tensor_desc dh = desc_fmt(1, 1, 4, 4, INORM_FLOAT16, INORM_NHWC);
    inorm_tensor *h0 = wrap(no16, dh, &b, 0), *h1 = wrap(no16, dh, &b, align_up(32, align));
    app_begin(&a);
    EXPECT_FAIL_MENTIONS(no16, inorm_cmd_instance_norm(no16, a.cmd, h0, NULL, NULL, NULL, h1), INORM_ERROR_UNSUPPORTED,
                         "16");
    app_submit_wait(&a); /* nothing was recorded */
    TU_OK(no16, inorm_cmd_release(no16));
    inorm_context_destroy(no16);

    inorm_context_destroy(other);
    inorm_context_destroy(ctx);
    tu_ctx_destroy(cpu);
    abuf_destroy(&a, &b);
    app_destroy(&a);
#undef WRAP_FAILS
}
END_TEST

/* ----------------------------------------------------------- teardown -- */

START_TEST(destroy_keeps_device)
{
    app a;
    if (!app_create(&a))
        return;
    inorm_context *one = app_import(&a, 1), *two = app_import(&a, 1);
    inorm_context *cpu = tu_ctx_create(INORM_BACKEND_CPU);
    const inorm_tensor_desc dx = desc_fmt(2, 6, 8, 8, INORM_FLOAT32, INORM_NCHW);
    const size_t nx = desc_count(&dx), bx = nx * 4;
    float *x = fill_normal(41, nx, 1.0, 1.0), *want_gn = tu_floats(nx), *want_in = tu_floats(nx);
    inorm_tensor *cx = own(cpu, dx, x), *cy = own(cpu, dx, NULL);
    TU_OK(cpu, inorm_group_norm(cpu, cx, 3, NULL, NULL, NULL, cy));
    get(cpu, cy, want_gn);
    TU_OK(cpu, inorm_instance_norm(cpu, cx, NULL, NULL, NULL, cy));
    get(cpu, cy, want_in);

    abuf bx_, by1, by2;
    abuf_create(&a, bx, &bx_);
    abuf_create(&a, bx, &by1);
    abuf_create(&a, bx, &by2);
    memcpy(bx_.map, x, bx);
    inorm_tensor *x1 = wrap(one, dx, &bx_, 0), *y1 = wrap(one, dx, &by1, 0);
    inorm_tensor *x2 = wrap(two, dx, &bx_, 0), *y2 = wrap(two, dx, &by2, 0);

    /* Two contexts on the app's device record into one command buffer. */
    app_begin(&a);
    barrier_host_to_inorm(a.cmd);
    TU_OK(one, inorm_cmd_group_norm(one, a.cmd, x1, 3, NULL, NULL, NULL, y1));
    TU_OK(two, inorm_cmd_instance_norm(two, a.cmd, x2, NULL, NULL, NULL, y2));
    barrier_inorm_to(a.cmd, VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
    app_submit_wait(&a);
    expect_close("group_norm of context one", (const float *)by1.map, want_gn, nx, TOL32);
    expect_close("instance_norm of context two", (const float *)by2.map, want_in, nx, TOL32);

    /* Context one goes away without inorm_cmd_release, with an immediate op
     * still pending and its tensors (wrapped and owned) alive. */
    inorm_tensor *o = own(one, dx, x), *oy = own(one, dx, NULL);
    TU_OK(one, inorm_instance_norm(one, o, NULL, NULL, NULL, oy));
    (void)y1;
    inorm_context_destroy(one);

    /* Context two still works on the same device. */
    TU_OK(two, inorm_cmd_release(two));
    memset(by2.map, 0xff, bx);
    app_begin(&a);
    TU_OK(two, inorm_cmd_group_norm(two, a.cmd, x2, 3, NULL, NULL, NULL, y2));
    barrier_inorm_to(a.cmd, VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
    app_submit_wait(&a);
    expect_close("context two after context one was destroyed", (const float *)by2.map, want_gn, nx, TOL32);
    inorm_context_destroy(two); /* no release either */

    /* The app's buffers were left to the app, and its device still works. */
    ck_assert_msg(memcmp(bx_.map, x, bx) == 0, "the app's input changed");
    abuf fresh;
    abuf_create(&a, 256, &fresh);
    app_begin(&a);
    vkCmdFillBuffer(a.cmd, fresh.buffer, 0, 256, 0x01020304u);
    VkBufferCopy c = {.srcOffset = 0, .dstOffset = 0, .size = bx};
    vkCmdCopyBuffer(a.cmd, bx_.buffer, by1.buffer, 1, &c);
    memory_barrier(a.cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT, VK_PIPELINE_STAGE_HOST_BIT,
                   VK_ACCESS_HOST_READ_BIT);
    app_submit_wait(&a);
    for (int i = 0; i < 64; i++)
        ck_assert_uint_eq(((const uint32_t *)fresh.map)[i], 0x01020304u);
    ck_assert_msg(memcmp(by1.map, x, bx) == 0, "the app's copy after the contexts were destroyed is wrong");
    abuf_destroy(&a, &fresh);
    abuf_destroy(&a, &bx_);
    abuf_destroy(&a, &by1);
    abuf_destroy(&a, &by2);
    tu_ctx_destroy(cpu);
    app_destroy(&a); /* any VkObject inorm left behind is reported here */
    free(x), free(want_gn), free(want_in);
}
END_TEST

/* ------------------------------------------------------ pipeline cache -- */

/* Runs an instance norm on ctx and checks it against the CPU path. */
static void still_works(inorm_context *ctx, const char *what)
{
    const inorm_tensor_desc dx = desc_fmt(2, 3, 9, 4, INORM_FLOAT32, INORM_NCHW);
    const size_t nx = desc_count(&dx);
    float *x = fill_normal(51, nx, 2.0, 0.5), *got = tu_floats(nx), *want = tu_floats(nx);
    inorm_context *cpu = tu_ctx_create(INORM_BACKEND_CPU);
    inorm_tensor *cx = own(cpu, dx, x), *cy = own(cpu, dx, NULL);
    TU_OK(cpu, inorm_instance_norm(cpu, cx, NULL, NULL, NULL, cy));
    get(cpu, cy, want);
    tu_ctx_destroy(cpu);
    inorm_tensor *tx = own(ctx, dx, x), *ty = own(ctx, dx, NULL);
    TU_OK(ctx, inorm_instance_norm(ctx, tx, NULL, NULL, NULL, ty));
    get(ctx, ty, got);
    expect_close(what, got, want, nx, TOL32);
    inorm_tensor_destroy(tx);
    inorm_tensor_destroy(ty);
    free(x), free(got), free(want);
}

static unsigned char *get_cache(inorm_context *ctx, size_t *size)
{
    *size = 0;
    TU_OK(ctx, inorm_context_get_pipeline_cache(ctx, NULL, size));
    ck_assert_msg(*size >= 32, "pipeline cache of %zu bytes: shorter than its header", *size);
    unsigned char *blob = tu_malloc(*size);
    size_t got = *size;
    TU_OK(ctx, inorm_context_get_pipeline_cache(ctx, blob, &got));
    ck_assert_uint_eq(got, *size);
    return blob;
}

static uint32_t u32_at(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* The blob starts with VkPipelineCacheHeaderVersionOne for this device. */
static void check_header(const app *a, const inorm_device_info *info, const unsigned char *blob, size_t size,
                         const char *what)
{
    ck_assert_msg(size >= 32, "%s: %zu bytes", what, size);
    ck_assert_msg(u32_at(blob) >= 32 && u32_at(blob + 4) == VK_PIPELINE_CACHE_HEADER_VERSION_ONE,
                  "%s: header length %u version %u", what, u32_at(blob), u32_at(blob + 4));
    ck_assert_msg(u32_at(blob + 8) == info->vendor_id && u32_at(blob + 12) == info->device_id,
                  "%s: vendor 0x%x device 0x%x, the context's 0x%x 0x%x", what, u32_at(blob + 8),
                  u32_at(blob + 12), info->vendor_id, info->device_id);
    if (a)
        ck_assert_msg(memcmp(blob + 16, a->props.pipelineCacheUUID, VK_UUID_SIZE) == 0,
                      "%s: the UUID is not the device's pipelineCacheUUID", what);
}

START_TEST(pipeline_cache_blob)
{
    app a;
    if (!app_create(&a))
        return;
    /* A blob from a context inorm created... */
    inorm_context *first = tu_ctx_create(INORM_BACKEND_VULKAN);
    if (!first) {
        app_destroy(&a);
        return;
    }
    inorm_device_info info;
    TU_OK(first, inorm_context_info(first, &info));
    still_works(first, "first context");
    size_t size;
    unsigned char *blob = get_cache(first, &size);
    check_header(&a, &info, blob, size, "the first context's blob");
    /* A capacity below the size: no more than the capacity is written. */
    unsigned char small[16];
    size_t cap = sizeof small;
    TU_OK(first, inorm_context_get_pipeline_cache(first, small, &cap));
    ck_assert_msg(cap <= sizeof small, "a capacity of %zu bytes got %zu", sizeof small, cap);
    TU_EXPECT(first, inorm_context_get_pipeline_cache(first, NULL, NULL), INORM_ERROR_INVALID_ARGUMENT);
    tu_ctx_destroy(first);

    /* ...merges into one inorm creates and into an imported one (same device). */
    inorm_context *second = tu_ctx_create(INORM_BACKEND_VULKAN);
    TU_OK(second, inorm_context_set_pipeline_cache(second, blob, size));
    still_works(second, "a context given the blob");
    inorm_context *imported = app_import(&a, 1);
    TU_OK(imported, inorm_context_set_pipeline_cache(imported, blob, size));
    still_works(imported, "an imported context given the blob");
    size_t isize;
    unsigned char *iblob = get_cache(imported, &isize);
    check_header(&a, &info, iblob, isize, "the imported context's blob");
    free(iblob);

    /* Damaged or foreign blobs: refused with a message, the context works. */
    inorm_context *targets[2] = {second, imported};
    struct {
        size_t at;          /* byte to flip */
        unsigned char mask; /* xor */
        const char *what;
    } flips[] = {
        {0, 0xff, "header length"},    {3, 0x80, "header length (huge)"}, {4, 0x01, "header version"},
        {8, 0x10, "vendor id"},        {12, 0x01, "device id"},           {16, 0x01, "first UUID byte"},
        {31, 0x80, "last UUID byte"},
    };
    /* The blob, and the blob followed by bytes of padding (so that a
     * damaged header length still fits in the size given). */
    const size_t padded = size + 512;
    unsigned char *bad = tu_malloc(padded);
    for (int k = 0; k < 2; k++) {
        inorm_context *ctx = targets[k];
        for (int pad = 0; pad < 2; pad++) {
            const size_t n = pad ? padded : size;
            for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
                memset(bad, 0, padded);
                memcpy(bad, blob, size);
                bad[flips[i].at] ^= flips[i].mask;
                inorm_status st = inorm_context_set_pipeline_cache(ctx, bad, n);
                ck_assert_msg(st == INORM_ERROR_INVALID_ARGUMENT,
                              "set_pipeline_cache with a flipped %s (%zu bytes%s): %s (want invalid argument)",
                              flips[i].what, n, pad ? ", padded" : "", inorm_status_string(st));
                ck_assert_msg(inorm_context_error(ctx)[0] != '\0', "no message for a flipped %s", flips[i].what);
            }
        }
        /* Truncated inside the header. */
        const size_t cuts[] = {0, 1, 16, 31};
        for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
            TU_EXPECT(ctx, inorm_context_set_pipeline_cache(ctx, blob, cuts[i]), INORM_ERROR_INVALID_ARGUMENT);
        TU_EXPECT(ctx, inorm_context_set_pipeline_cache(ctx, NULL, 64), INORM_ERROR_INVALID_ARGUMENT);
        /* Truncated after the header: the blob carries no length of its own,
         * so this may be taken (as the driver reads it) or refused; either
         * way nothing breaks. */
        if (size > 40) {
            inorm_status st = inorm_context_set_pipeline_cache(ctx, blob, size / 2 > 32 ? size / 2 : 33);
            ck_assert_msg(st == INORM_SUCCESS || st == INORM_ERROR_INVALID_ARGUMENT,
                          "a blob truncated after its header: %s: %s", inorm_status_string(st),
                          inorm_context_error(ctx));
            st = inorm_context_set_pipeline_cache(ctx, blob, size - 1);
            ck_assert_msg(st == INORM_SUCCESS || st == INORM_ERROR_INVALID_ARGUMENT,
                          "a blob missing its last byte: %s: %s", inorm_status_string(st), inorm_context_error(ctx));
        }
        /* Garbage after a good header. */
        memcpy(bad, blob, size);
        for (size_t i = 32; i < padded; i++)
            bad[i] = (unsigned char)(i * 131u + 7u);
        inorm_status st = inorm_context_set_pipeline_cache(ctx, bad, padded);
        ck_assert_msg(st == INORM_SUCCESS || st == INORM_ERROR_INVALID_ARGUMENT,
                      "a good header over garbage: %s: %s", inorm_status_string(st), inorm_context_error(ctx));
        still_works(ctx, k == 0 ? "a created context after refused blobs" : "an imported context after refused blobs");
        /* And the good blob is still taken. */
        TU_OK(ctx, inorm_context_set_pipeline_cache(ctx, blob, size));
    }

    /* The CPU path has no cache. */
    inorm_context *cpu = tu_ctx_create(INORM_BACKEND_CPU);
    size_t csize = 123;
    TU_OK(cpu, inorm_context_get_pipeline_cache(cpu, NULL, &csize));
    ck_assert_uint_eq(csize, 0);
    TU_EXPECT(cpu, inorm_context_set_pipeline_cache(cpu, blob, size), INORM_ERROR_UNSUPPORTED);
    tu_ctx_destroy(cpu);

    ck_assert_uint_eq(inorm_context_validation_message_count(imported), 0);
    inorm_context_destroy(imported);
    tu_ctx_destroy(second);
    app_destroy(&a);
    free(blob), free(bad);
}
END_TEST

static inorm_context *ctx_with_cache_file(const char *path)
{
    inorm_context_desc d = INORM_CONTEXT_DESC_DEFAULT;
    d.backend = INORM_BACKEND_VULKAN;
    d.validation = 1;
    d.pipeline_cache_path = path;
    char msg[512] = "";
    inorm_context *ctx = NULL;
    inorm_status st = inorm_context_create_ex(&d, &ctx, msg, sizeof msg);
    ck_assert_msg(st == INORM_SUCCESS && ctx, "context with pipeline_cache_path \"%s\": %s: %s", path,
                  inorm_status_string(st), msg);
    ck_assert_msg(inorm_context_error(ctx)[0] == '\0', "a fresh context with a cache file has error text \"%s\"",
                  inorm_context_error(ctx));
    if (tu_env_flag("INORM_REQUIRE_VALIDATION")) {
        inorm_device_info info;
        TU_OK(ctx, inorm_context_info(ctx, &info));
        ck_assert_msg(info.validation_enabled, "INORM_REQUIRE_VALIDATION=1 but the layer is not active");
    }
    return ctx;
}

static unsigned char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s was not written", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    ck_assert_msg(n >= 0, "ftell(%s)", path);
    rewind(f);
    unsigned char *data = tu_malloc((size_t)n);
    ck_assert_uint_eq(fread(data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return data;
}

static void write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert_uint_eq(fwrite(data, 1, size, f), size);
    ck_assert_int_eq(fclose(f), 0);
}

START_TEST(pipeline_cache_file)
{
    /* Probe for a device the usual way (skips when allowed). */
    inorm_context *probe = tu_ctx_create(INORM_BACKEND_VULKAN);
    if (!probe)
        return;
    inorm_device_info info;
    TU_OK(probe, inorm_context_info(probe, &info));
    /* A context without a file: what its cache holds before any op. */
    size_t fresh_size = 0;
    TU_OK(probe, inorm_context_get_pipeline_cache(probe, NULL, &fresh_size));
    tu_ctx_destroy(probe);

    const char *tmp = getenv("TMPDIR");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/inorm-interop-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp(%s) failed", dir);
    char path[600];
    snprintf(path, sizeof path, "%s/pipelines.bin", dir);

    /* 1. No file yet: creation succeeds, destroy writes it. */
    inorm_context *ctx = ctx_with_cache_file(path);
    still_works(ctx, "a context whose cache file does not exist yet");
    size_t live_size;
    unsigned char *live = get_cache(ctx, &live_size);
    tu_ctx_destroy(ctx);
    size_t file_size;
    unsigned char *file = read_file(path, &file_size);
    check_header(NULL, &info, file, file_size, "the cache file");
    ck_assert_msg(file_size == live_size && memcmp(file, live, file_size) == 0,
                  "the file (%zu bytes) is not the cache the context held at destroy (%zu bytes)", file_size,
                  live_size);

    /* 2. The next context reads it (Linux: inotify sees the read), and
     * before any op its cache holds what the file holds (when a fresh cache
     * is smaller, that shows too). */
#ifdef __linux__
    int watch = inotify_init1(IN_NONBLOCK);
    ck_assert_msg(watch >= 0, "inotify_init1 failed");
    ck_assert_msg(inotify_add_watch(watch, path, IN_ACCESS) >= 0, "inotify_add_watch(%s) failed", path);
#endif
    ctx = ctx_with_cache_file(path);
#ifdef __linux__
    {
        union {
            struct inotify_event event;
            char bytes[4096];
        } events;
        ssize_t got = read(watch, events.bytes, sizeof events.bytes);
        int accessed = 0;
        for (ssize_t at = 0; got > 0 && at + (ssize_t)sizeof(struct inotify_event) <= got;) {
            const struct inotify_event *e = (const struct inotify_event *)(events.bytes + at);
            accessed |= (e->mask & IN_ACCESS) != 0;
            at += (ssize_t)sizeof *e + (ssize_t)e->len;
        }
        close(watch);
        ck_assert_msg(accessed, "creating a context with pipeline_cache_path did not read %s", path);
    }
#endif
    size_t loaded_size = 0;
    TU_OK(ctx, inorm_context_get_pipeline_cache(ctx, NULL, &loaded_size));
    ck_assert_msg(loaded_size >= file_size, "a context created from a %zu-byte cache file holds %zu bytes",
                  file_size, loaded_size);
    if (fresh_size < file_size)
        ck_assert_msg(loaded_size > fresh_size, "the cache file was not read (%zu bytes, as a fresh context)",
                      loaded_size);
    still_works(ctx, "a context created from the cache file");
    tu_ctx_destroy(ctx);

    /* 3. Garbage at that path is ignored, and replaced at destroy. */
    unsigned char garbage[300];
    for (size_t i = 0; i < sizeof garbage; i++)
        garbage[i] = (unsigned char)(i * 37u + 11u);
    const size_t garbage_sizes[] = {sizeof garbage, 5, 0};
    for (size_t g = 0; g < sizeof garbage_sizes / sizeof garbage_sizes[0]; g++) {
        write_file(path, garbage, garbage_sizes[g]);
        ctx = ctx_with_cache_file(path);
        still_works(ctx, tu_fmt("a context over %zu bytes of garbage", garbage_sizes[g]));
        tu_ctx_destroy(ctx);
        free(file);
        file = read_file(path, &file_size);
        check_header(NULL, &info, file, file_size, "the cache file rewritten over garbage");
    }
    /* A well-formed header of another device (foreign UUID) is ignored too. */
    file[16] ^= 0x5a;
    write_file(path, file, file_size);
    ctx = ctx_with_cache_file(path);
    still_works(ctx, "a context over a foreign cache file");
    tu_ctx_destroy(ctx);

    /* 4. A directory that does not exist: nothing to read, nothing written,
     * no failure. */
    char missing[700];
    snprintf(missing, sizeof missing, "%s/no/such/dir/pipelines.bin", dir);
    ctx = ctx_with_cache_file(missing);
    still_works(ctx, "a context whose cache file cannot be written");
    tu_ctx_destroy(ctx);

    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(rmdir(dir), 0);
    free(file), free(live);
}
END_TEST

int main(void)
{
    tu_init();
    Suite *s = suite_create("interop");
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"recorded_ops", recorded_ops},
        {"immediate_and_recorded", immediate_and_recorded},
        {"record_only", record_only},
        {"wrap_errors", wrap_errors},
        {"destroy_keeps_device", destroy_keeps_device},
        {"pipeline_cache_blob", pipeline_cache_blob},
        {"pipeline_cache_file", pipeline_cache_file},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_set_timeout(tc, 300);
        tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }
    return tu_run(s);
}
