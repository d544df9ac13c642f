/* Vulkan instance and device: loading (volk), device listing and choice,
 * device creation, validation messages, teardown. */
#include "vk_internal.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t loader_once = PTHREAD_ONCE_INIT;
static VkResult loader_result = VK_ERROR_INITIALIZATION_FAILED;

/* Taken around creating and destroying instances and devices. The spec
 * allows those on several threads at once, but the libraries they load
 * have raced there on this project's machines (tests/robustness/tsan.supp:
 * Mesa's Intel driver freeing while another thread's instance creation
 * read, LLVM's one-time set-up under lavapipe), and CI once saw a crash in
 * the threads suite's create_destroy test, contexts being created and
 * destroyed on four threads. inorm's own contexts take turns there; the
 * cost is context creation's, never an op's. */
static pthread_mutex_t instance_lock = PTHREAD_MUTEX_INITIALIZER;

static void load_vulkan_loader(void)
{
    loader_result = volkInitialize();
}

/* The loader's vkGetInstanceProcAddr, or NULL when there is no Vulkan loader.
 * volk writes its globals once here and never again. */
static PFN_vkGetInstanceProcAddr vulkan_loader(void)
{
    pthread_once(&loader_once, load_vulkan_loader);
    return loader_result == VK_SUCCESS ? vkGetInstanceProcAddr : NULL;
}

inorm_status vk_result_status(VkResult result)
{
    switch (result) {
    case VK_SUCCESS: return INORM_SUCCESS;
    case VK_ERROR_OUT_OF_HOST_MEMORY: return INORM_ERROR_OUT_OF_HOST_MEMORY;
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return INORM_ERROR_OUT_OF_DEVICE_MEMORY;
    case VK_ERROR_DEVICE_LOST: return INORM_ERROR_DEVICE_LOST;
    case VK_ERROR_INCOMPATIBLE_DRIVER:
    case VK_ERROR_INITIALIZATION_FAILED: return INORM_ERROR_NO_DEVICE;
    default: return INORM_ERROR_BACKEND;
    }
}

inorm_status vk_fail(inorm_context *ctx, VkResult result, const char *what)
{
    inorm_status status = vk_result_status(result);
    if (status == INORM_ERROR_DEVICE_LOST)
        ctx->sticky_status = status;
    return inorm_fail(ctx, status, "%s failed: VkResult %d (%s)", what, (int)result, inorm_status_string(status));
}

static VKAPI_ATTR VkBool32 VKAPI_CALL on_validation_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                           VkDebugUtilsMessageTypeFlagsEXT type,
                                                           const VkDebugUtilsMessengerCallbackDataEXT *data,
                                                           void *user)
{
    (void)type;
    vk_state *vk = user;
    atomic_fetch_add(&vk->validation_messages, 1u);
    fprintf(stderr, "inorm: validation %s: %s\n",
            severity >= VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT ? "error" : "warning",
            data && data->pMessage ? data->pMessage : "(no text)");
    return VK_FALSE;
}

static bool has_layer(PFN_vkGetInstanceProcAddr gipa, const char *name)
{
    PFN_vkEnumerateInstanceLayerProperties enumerate =
        (PFN_vkEnumerateInstanceLayerProperties)gipa(NULL, "vkEnumerateInstanceLayerProperties");
    uint32_t count = 0;
    if (!enumerate || enumerate(&count, NULL) != VK_SUCCESS || count == 0)
        return false;
    VkLayerProperties *layers = inorm_calloc(count, sizeof *layers);
    bool found = false;
    if (layers && enumerate(&count, layers) == VK_SUCCESS)
        for (uint32_t i = 0; i < count && !found; ++i)
            found = strcmp(layers[i].layerName, name) == 0;
    inorm_free(layers);
    return found;
}

static bool has_instance_extension(PFN_vkGetInstanceProcAddr gipa, const char *layer, const char *name)
{
    PFN_vkEnumerateInstanceExtensionProperties enumerate =
        (PFN_vkEnumerateInstanceExtensionProperties)gipa(NULL, "vkEnumerateInstanceExtensionProperties");
    uint32_t count = 0;
    if (!enumerate || enumerate(layer, &count, NULL) != VK_SUCCESS || count == 0)
        return false;
    VkExtensionProperties *extensions = inorm_calloc(count, sizeof *extensions);
    bool found = false;
    if (extensions && enumerate(layer, &count, extensions) == VK_SUCCESS)
        for (uint32_t i = 0; i < count && !found; ++i)
            found = strcmp(extensions[i].extensionName, name) == 0;
    inorm_free(extensions);
    return found;
}

/* The instance's functions, through the context's vkGetInstanceProcAddr. */
static inorm_status load_instance_functions(vk_state *vk, char *message, size_t message_size)
{
    PFN_vkGetInstanceProcAddr gipa = vk->get_instance_proc_addr;
#define VK_LOAD_INSTANCE(name) vk->fn_instance.name = (PFN_##name)gipa(vk->instance, #name);
    VK_INSTANCE_FUNCTIONS(VK_LOAD_INSTANCE)
#undef VK_LOAD_INSTANCE
#define VK_CHECK_LOADED(name)                                                               \
    if (!vk->fn_instance.name) {                                                            \
        snprintf(message, message_size, "vkGetInstanceProcAddr gives no %s", #name);        \
        return INORM_ERROR_NO_DEVICE;                                                       \
    }
    VK_INSTANCE_FUNCTIONS(VK_CHECK_LOADED)
#undef VK_CHECK_LOADED
    return INORM_SUCCESS;
}

/* Creates vk->instance and loads its functions. */
static inorm_status create_instance(vk_state *vk, bool validation, char *message, size_t message_size)
{
    PFN_vkGetInstanceProcAddr gipa = vulkan_loader();
    if (!gipa) {
        snprintf(message, message_size, "no Vulkan loader (libvulkan.so.1 / libvulkan.so) could be loaded");
        return INORM_ERROR_NO_DEVICE;
    }
    vk->get_instance_proc_addr = gipa;
    PFN_vkEnumerateInstanceVersion instance_version =
        (PFN_vkEnumerateInstanceVersion)gipa(NULL, "vkEnumerateInstanceVersion");
    uint32_t version = VK_API_VERSION_1_0;
    if (instance_version)
        instance_version(&version);
    if (version < VK_API_VERSION_1_1) {
        snprintf(message, message_size, "the Vulkan loader supports only Vulkan 1.0; inorm needs 1.1");
        return INORM_ERROR_NO_DEVICE;
    }

    const char *layers[1];
    uint32_t layer_count = 0;
    const char *extensions[2];
    uint32_t extension_count = 0;
    bool debug_utils = false;
    if (validation && has_layer(gipa, "VK_LAYER_KHRONOS_validation")) {
        layers[layer_count++] = "VK_LAYER_KHRONOS_validation";
        if (has_instance_extension(gipa, NULL, VK_EXT_DEBUG_UTILS_EXTENSION_NAME) ||
            has_instance_extension(gipa, "VK_LAYER_KHRONOS_validation", VK_EXT_DEBUG_UTILS_EXTENSION_NAME)) {
            extensions[extension_count++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
            debug_utils = true;
        }
    }
    VkInstanceCreateFlags flags = 0;
    if (has_instance_extension(gipa, NULL, "VK_KHR_portability_enumeration")) {
        extensions[extension_count++] = "VK_KHR_portability_enumeration";
        flags |= 0x00000001; /* VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR */
    }
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "inorm",
        .pEngineName = "inorm",
        .engineVersion = VK_MAKE_API_VERSION(0, INORM_VERSION_MAJOR, INORM_VERSION_MINOR, INORM_VERSION_PATCH),
        .apiVersion = VK_API_VERSION_1_1,
    };
    VkInstanceCreateInfo info = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .flags = flags,
        .pApplicationInfo = &app,
        .enabledLayerCount = layer_count,
        .ppEnabledLayerNames = layers,
        .enabledExtensionCount = extension_count,
        .ppEnabledExtensionNames = extensions,
    };
    PFN_vkCreateInstance create = (PFN_vkCreateInstance)gipa(NULL, "vkCreateInstance");
    VkResult result = create ? create(&info, NULL, &vk->instance) : VK_ERROR_INITIALIZATION_FAILED;
    if (result != VK_SUCCESS) {
        snprintf(message, message_size, "vkCreateInstance failed: VkResult %d", (int)result);
        return result == VK_ERROR_OUT_OF_HOST_MEMORY ? INORM_ERROR_OUT_OF_HOST_MEMORY : INORM_ERROR_NO_DEVICE;
    }
    inorm_status status = load_instance_functions(vk, message, message_size);
    if (status != INORM_SUCCESS)
        return status;
    if (debug_utils) {
        vk->fn_instance.vkCreateDebugUtilsMessengerEXT =
            (PFN_vkCreateDebugUtilsMessengerEXT)gipa(vk->instance, "vkCreateDebugUtilsMessengerEXT");
        vk->fn_instance.vkDestroyDebugUtilsMessengerEXT =
            (PFN_vkDestroyDebugUtilsMessengerEXT)gipa(vk->instance, "vkDestroyDebugUtilsMessengerEXT");
        VkDebugUtilsMessengerCreateInfoEXT messenger_info = {
            .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
            .messageSeverity =
                VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
            .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT,
            .pfnUserCallback = on_validation_message,
            .pUserData = vk,
        };
        if (vk->fn_instance.vkCreateDebugUtilsMessengerEXT &&
            vk->fn_instance.vkCreateDebugUtilsMessengerEXT(vk->instance, &messenger_info, NULL, &vk->messenger) !=
                VK_SUCCESS)
            vk->messenger = VK_NULL_HANDLE;
    }
    return INORM_SUCCESS;
}

/* What inorm learns of a physical device before choosing it. */
typedef struct device_facts {
    VkPhysicalDeviceProperties properties;
    VkPhysicalDeviceSubgroupProperties subgroup;
    VkPhysicalDeviceDriverProperties driver;
    bool has_driver_properties;
    bool storage_16bit;
    bool shader_int64;
    /* VK_EXT_subgroup_size_control with both features, for compute */
    bool size_control;
    uint32_t max_subgroup_size;
    int compute_queue_family;  /* -1: none */
    uint32_t timestamp_bits;   /* of that family's queues; 0: no timestamps */
} device_facts;

static bool device_has_extension(vk_state *vk, VkPhysicalDevice device, const char *name)
{
    uint32_t count = 0;
    if (vk->fn_instance.vkEnumerateDeviceExtensionProperties(device, NULL, &count, NULL) != VK_SUCCESS || !count)
        return false;
    VkExtensionProperties *extensions = inorm_calloc(count, sizeof *extensions);
    bool found = false;
    if (extensions && vk->fn_instance.vkEnumerateDeviceExtensionProperties(device, NULL, &count, extensions) ==
                          VK_SUCCESS)
        for (uint32_t i = 0; i < count && !found; ++i)
            found = strcmp(extensions[i].extensionName, name) == 0;
    inorm_free(extensions);
    return found;
}

/* Fills facts; OUT_OF_HOST_MEMORY when the queue families could not be read
 * (which must not pass for "no compute queue"). */
static inorm_status query_device(vk_state *vk, VkPhysicalDevice device, device_facts *facts)
{
    memset(facts, 0, sizeof *facts);
    vk->fn_instance.vkGetPhysicalDeviceProperties(device, &facts->properties);
    facts->subgroup.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES;
    facts->driver.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES;
    facts->has_driver_properties = facts->properties.apiVersion >= VK_API_VERSION_1_2 ||
                                   device_has_extension(vk, device, VK_KHR_DRIVER_PROPERTIES_EXTENSION_NAME);
    if (facts->has_driver_properties)
        facts->subgroup.pNext = &facts->driver;
    const bool size_extension = device_has_extension(vk, device, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
    VkPhysicalDeviceSubgroupSizeControlPropertiesEXT size_properties = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES_EXT,
        .pNext = &facts->subgroup,
    };
    VkPhysicalDeviceProperties2 properties2 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
        .pNext = size_extension ? (void *)&size_properties : (void *)&facts->subgroup,
    };
    if (facts->properties.apiVersion >= VK_API_VERSION_1_1)
        vk->fn_instance.vkGetPhysicalDeviceProperties2(device, &properties2);

    VkPhysicalDevice16BitStorageFeatures storage16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
    };
    VkPhysicalDeviceSubgroupSizeControlFeaturesEXT size_features = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT,
        .pNext = &storage16,
    };
    VkPhysicalDeviceFeatures2 features2 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
        .pNext = size_extension ? (void *)&size_features : (void *)&storage16,
    };
    if (facts->properties.apiVersion >= VK_API_VERSION_1_1)
        vk->fn_instance.vkGetPhysicalDeviceFeatures2(device, &features2);
    facts->storage_16bit = storage16.storageBuffer16BitAccess == VK_TRUE;
    facts->shader_int64 = features2.features.shaderInt64 == VK_TRUE;
    facts->size_control = size_extension && facts->properties.apiVersion >= VK_API_VERSION_1_1 &&
                          size_features.subgroupSizeControl && size_features.computeFullSubgroups &&
                          (size_properties.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                          facts->subgroup.subgroupSize >= size_properties.minSubgroupSize &&
                          facts->subgroup.subgroupSize <= size_properties.maxSubgroupSize;
    facts->max_subgroup_size = size_properties.maxSubgroupSize;

    facts->compute_queue_family = -1;
    facts->timestamp_bits = 0;
    uint32_t family_count = 0;
    vk->fn_instance.vkGetPhysicalDeviceQueueFamilyProperties(device, &family_count, NULL);
    VkQueueFamilyProperties *families = inorm_calloc(family_count ? family_count : 1, sizeof *families);
    if (!families)
        return INORM_ERROR_OUT_OF_HOST_MEMORY;
    vk->fn_instance.vkGetPhysicalDeviceQueueFamilyProperties(device, &family_count, families);
    for (uint32_t i = 0; i < family_count && facts->compute_queue_family < 0; ++i)
        if ((families[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && families[i].queueCount > 0) {
            facts->compute_queue_family = (int)i;
            facts->timestamp_bits = families[i].timestampValidBits;
        }
    inorm_free(families);
    return INORM_SUCCESS;
}

static bool device_usable(const device_facts *facts)
{
    return facts->properties.apiVersion >= VK_API_VERSION_1_1 && facts->compute_queue_family >= 0;
}

static bool subgroup_arithmetic(const device_facts *facts)
{
    const VkSubgroupFeatureFlags needed = VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT;
    return (facts->subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
           (facts->subgroup.supportedOperations & needed) == needed;
}

static inorm_device_type device_type(VkPhysicalDeviceType type)
{
    switch (type) {
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return INORM_DEVICE_TYPE_INTEGRATED_GPU;
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return INORM_DEVICE_TYPE_DISCRETE_GPU;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return INORM_DEVICE_TYPE_VIRTUAL_GPU;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return INORM_DEVICE_TYPE_CPU;
    default: return INORM_DEVICE_TYPE_OTHER;
    }
}

/* Higher is preferred when no device is named: discrete > integrated > virtual > cpu. */
static int type_rank(VkPhysicalDeviceType type)
{
    switch (type) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 4;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 3;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 1;
    default: return 0;
    }
}

static void fill_info(const device_facts *facts, inorm_device_info *info)
{
    memset(info, 0, sizeof *info);
    info->backend = INORM_BACKEND_VULKAN;
    info->type = device_type(facts->properties.deviceType);
    snprintf(info->name, sizeof info->name, "%s", facts->properties.deviceName);
    if (facts->has_driver_properties) {
        snprintf(info->driver_name, sizeof info->driver_name, "%s", facts->driver.driverName);
        snprintf(info->driver_info, sizeof info->driver_info, "%s", facts->driver.driverInfo);
    }
    info->vendor_id = facts->properties.vendorID;
    info->device_id = facts->properties.deviceID;
    info->api_version = facts->properties.apiVersion;
    info->subgroup_size = facts->subgroup.subgroupSize;
    info->subgroup_arithmetic = subgroup_arithmetic(facts);
    info->float16_storage = facts->storage_16bit;
    info->max_storage_buffer_range = facts->properties.limits.maxStorageBufferRange;
}

static bool name_contains(const char *name, const char *part)
{
    size_t part_len = strlen(part);
    for (const char *start = name; *start; ++start) {
        size_t i = 0;
        while (i < part_len && start[i] &&
               tolower((unsigned char)start[i]) == tolower((unsigned char)part[i]))
            ++i;
        if (i == part_len)
            return true;
    }
    return part_len == 0;
}

/* Lists physical devices; the caller frees *devices. */
static inorm_status list_devices(vk_state *vk, VkPhysicalDevice **devices, uint32_t *count, char *message,
                                 size_t message_size)
{
    *devices = NULL;
    *count = 0;
    VkResult result = vk->fn_instance.vkEnumeratePhysicalDevices(vk->instance, count, NULL);
    if (result != VK_SUCCESS && result != VK_INCOMPLETE) {
        snprintf(message, message_size, "vkEnumeratePhysicalDevices failed: VkResult %d", (int)result);
        return INORM_ERROR_NO_DEVICE;
    }
    if (*count == 0) {
        snprintf(message, message_size, "the Vulkan loader found no device");
        return INORM_ERROR_NO_DEVICE;
    }
    *devices = inorm_calloc(*count, sizeof **devices);
    if (!*devices) {
        snprintf(message, message_size, "out of host memory listing devices");
        return INORM_ERROR_OUT_OF_HOST_MEMORY;
    }
    result = vk->fn_instance.vkEnumeratePhysicalDevices(vk->instance, count, *devices);
    if (result != VK_SUCCESS && result != VK_INCOMPLETE) {
        snprintf(message, message_size, "vkEnumeratePhysicalDevices failed: VkResult %d", (int)result);
        return INORM_ERROR_NO_DEVICE;
    }
    return INORM_SUCCESS;
}

/* hardware_only: AUTO without a device asked for by index or name passes
 * over software devices (lavapipe, SwiftShader): the CPU path is faster on
 * the same processor. */
static inorm_status choose_device(vk_state *vk, int device_index, const char *device_name, bool hardware_only,
                                  device_facts *chosen, char *message, size_t message_size)
{
    VkPhysicalDevice *devices;
    uint32_t count;
    inorm_status status = list_devices(vk, &devices, &count, message, message_size);
    if (status != INORM_SUCCESS) {
        inorm_free(devices);
        return status;
    }
    int best = -1, best_rank = -1;
    char software[VK_MAX_PHYSICAL_DEVICE_NAME_SIZE] = "";
    device_facts facts;
    for (uint32_t i = 0; i < count; ++i) {
        if (query_device(vk, devices[i], &facts) != INORM_SUCCESS) {
            inorm_free(devices);
            snprintf(message, message_size, "out of host memory querying device %u", i);
            return INORM_ERROR_OUT_OF_HOST_MEMORY;
        }
        bool wanted = device_name ? name_contains(facts.properties.deviceName, device_name)
                                  : device_index < 0 || (uint32_t)device_index == i;
        if (!wanted)
            continue;
        if (!device_usable(&facts)) {
            if (device_index >= 0 || device_name)
                snprintf(message, message_size, "device %u (%s) lacks Vulkan 1.1 or a compute queue", i,
                         facts.properties.deviceName);
            continue;
        }
        if (hardware_only && facts.properties.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU) {
            snprintf(software, sizeof software, "%s", facts.properties.deviceName);
            continue;
        }
        int rank = type_rank(facts.properties.deviceType);
        if (rank > best_rank) {
            best = (int)i;
            best_rank = rank;
            *chosen = facts;
        }
    }
    if (best >= 0) {
        vk->physical_device = devices[best];
        vk->device_index = best;
    }
    inorm_free(devices);
    if (best < 0) {
        if (!message[0]) {
            if (software[0])
                snprintf(message, message_size,
                         "only a software Vulkan device (%s): the CPU path is faster on the same processor "
                         "(INORM_DEVICE=<index or name> or the VULKAN backend selects it)",
                         software);
            else if (device_name)
                snprintf(message, message_size, "no Vulkan device's name contains \"%s\"", device_name);
            else if (device_index >= 0)
                snprintf(message, message_size, "device_index %d is out of range: %u Vulkan device(s)",
                         device_index, count);
            else
                snprintf(message, message_size, "no Vulkan device has Vulkan 1.1 and a compute queue");
        }
        return INORM_ERROR_NO_DEVICE;
    }
    return INORM_SUCCESS;
}

static inorm_status adopt_device(vk_state *vk, const device_facts *facts, char *message, size_t message_size);
static inorm_status finish_init(inorm_context *ctx, vk_state *vk, const device_facts *facts, uint32_t flags,
                                char *message, size_t message_size);

static inorm_status create_device(vk_state *vk, const device_facts *facts, char *message, size_t message_size)
{
    vk->queue_family = (uint32_t)facts->compute_queue_family;
    const float priority = 1.0f;
    VkDeviceQueueCreateInfo queue_info = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = vk->queue_family,
        .queueCount = 1,
        .pQueuePriorities = &priority,
    };
    VkPhysicalDeviceSubgroupSizeControlFeaturesEXT size_features = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT,
        .subgroupSizeControl = VK_TRUE,
        .computeFullSubgroups = VK_TRUE,
    };
    VkPhysicalDevice16BitStorageFeatures storage16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
        .pNext = facts->size_control ? &size_features : NULL,
        .storageBuffer16BitAccess = facts->storage_16bit ? VK_TRUE : VK_FALSE,
    };
    const char *const extensions[] = { VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME };
    /* 64-bit integers only where the kernels' wide stores would use them */
    vk->shader_int64 = facts->shader_int64 && facts->properties.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    const VkPhysicalDeviceFeatures features = { .shaderInt64 = vk->shader_int64 ? VK_TRUE : VK_FALSE };
    VkDeviceCreateInfo info = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .pNext = &storage16,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &queue_info,
        .enabledExtensionCount = facts->size_control ? 1u : 0u,
        .ppEnabledExtensionNames = extensions,
        .pEnabledFeatures = &features,
    };
    VkResult result = vk->fn_instance.vkCreateDevice(vk->physical_device, &info, NULL, &vk->device);
    if (result != VK_SUCCESS) {
        snprintf(message, message_size, "vkCreateDevice failed on %s: VkResult %d", facts->properties.deviceName,
                 (int)result);
        inorm_status status = vk_result_status(result);
        return status == INORM_ERROR_BACKEND ? INORM_ERROR_NO_DEVICE : status;
    }
    vk->size_control = facts->size_control;
    return adopt_device(vk, facts, message, message_size);
}

/* Loads the device's functions and what inorm needs to know of it; shared by
 * devices inorm created and devices an app imports. */
static inorm_status adopt_device(vk_state *vk, const device_facts *facts, char *message, size_t message_size)
{
#define VK_LOAD_DEVICE(name) vk->fn.name = (PFN_##name)vk->fn_instance.vkGetDeviceProcAddr(vk->device, #name);
    VK_DEVICE_FUNCTIONS(VK_LOAD_DEVICE)
#undef VK_LOAD_DEVICE
#define VK_CHECK_LOADED(name)                                                                \
    if (!vk->fn.name) {                                                                      \
        snprintf(message, message_size, "the Vulkan device has no %s", #name);               \
        return INORM_ERROR_NO_DEVICE;                                                        \
    }
    VK_DEVICE_FUNCTIONS(VK_CHECK_LOADED)
#undef VK_CHECK_LOADED
    if (!vk->imported)
        vk->fn.vkGetDeviceQueue(vk->device, vk->queue_family, 0, &vk->queue);
    vk->fn_instance.vkGetPhysicalDeviceMemoryProperties(vk->physical_device, &vk->memory_properties);
    vk->limits = facts->properties.limits;
    if (vk->limits.maxPerStageDescriptorStorageBuffers < VK_BINDINGS ||
        vk->limits.maxPushConstantsSize < VK_PUSH_CONSTANT_BYTES) {
        snprintf(message, message_size,
                 "%s binds %u storage buffers per stage and %u bytes of push constants; inorm needs %d and %d",
                 facts->properties.deviceName, vk->limits.maxPerStageDescriptorStorageBuffers,
                 vk->limits.maxPushConstantsSize, VK_BINDINGS, VK_PUSH_CONSTANT_BYTES);
        return INORM_ERROR_NO_DEVICE;
    }
    if (facts->timestamp_bits > 0)
        vk->timestamp_period_ns = facts->properties.limits.timestampPeriod;
    vk->unified_memory = facts->properties.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU ||
                         facts->properties.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    memcpy(vk->pipeline_cache_uuid, facts->properties.pipelineCacheUUID, VK_UUID_SIZE);
    vk->vendor_id = facts->properties.vendorID;
    vk->device_id = facts->properties.deviceID;
    return INORM_SUCCESS;
}

void vk_state_destroy(vk_state *vk)
{
    if (!vk)
        return;
    /* A device whose function table did not load is leaked rather than
     * touched through NULL pointers; that only happens with a broken driver. */
    if (vk->device && vk->fn.vkDestroyDevice) {
        if (vk->fn.vkDeviceWaitIdle)
            vk->fn.vkDeviceWaitIdle(vk->device);
        vk_recording_destroy(vk);
        vk_buffer_destroy(vk, &vk->scratch);
        vk_buffer_destroy(vk, &vk->texel_filler);
        vk_pipelines_destroy(vk);
    }
    pthread_mutex_lock(&instance_lock);
    if (vk->device && vk->fn.vkDestroyDevice && !vk->imported)
        vk->fn.vkDestroyDevice(vk->device, NULL);
    if (vk->messenger && vk->fn_instance.vkDestroyDebugUtilsMessengerEXT)
        vk->fn_instance.vkDestroyDebugUtilsMessengerEXT(vk->instance, vk->messenger, NULL);
    if (vk->instance && !vk->imported)
        vk->fn_instance.vkDestroyInstance(vk->instance, NULL);
    pthread_mutex_unlock(&instance_lock);
    inorm_free(vk->pipeline_cache_path);
    inorm_free(vk);
}

inorm_status inorm_vulkan_context_init(inorm_context *ctx, int device_index, const char *device_name,
                                       bool hardware_only, bool validation, uint32_t flags,
                                       const char *pipeline_cache_path, char *message, size_t message_size)
{
    vk_state *vk = inorm_calloc(1, sizeof *vk);
    if (!vk) {
        snprintf(message, message_size, "out of host memory");
        return INORM_ERROR_OUT_OF_HOST_MEMORY;
    }
    atomic_init(&vk->validation_messages, 0u);
    device_facts facts;
    pthread_mutex_lock(&instance_lock);
    inorm_status status = create_instance(vk, validation, message, message_size);
    if (status == INORM_SUCCESS)
        status = choose_device(vk, device_index, device_name, hardware_only, &facts, message, message_size);
    if (status == INORM_SUCCESS)
        status = create_device(vk, &facts, message, message_size);
    pthread_mutex_unlock(&instance_lock);
    if (status != INORM_SUCCESS) {
        vk_state_destroy(vk);
        return status;
    }
    vk->float16_storage = facts.storage_16bit;
    status = finish_init(ctx, vk, &facts, flags, message, message_size);
    if (status == INORM_SUCCESS && pipeline_cache_path)
        status = vk_pipeline_cache_load_file(ctx, pipeline_cache_path);
    if (status != INORM_SUCCESS && ctx->vk) {
        snprintf(message, message_size, "%s", ctx->error);
        vk_state_destroy(ctx->vk);
        ctx->vk = NULL;
    }
    return status;
}

/* Known driver bugs, by driver (and vendor), and what inorm avoids on them. */
typedef struct driver_quirk {
    VkDriverId driver;
    uint32_t vendor_id;  /* 0: any */
    uint32_t avoid;      /* INORM_CONTEXT_DISABLE_* flags */
    const char *why;
} driver_quirk;

static const driver_quirk quirks[] = {
    { VK_DRIVER_ID_QUALCOMM_PROPRIETARY, 0, INORM_CONTEXT_DISABLE_SUBGROUP_OPS,
      "Adreno drivers have returned wrong subgroup reductions (ncnn #6778)" },
    { VK_DRIVER_ID_MOLTENVK, 0x1002, INORM_CONTEXT_DISABLE_SUBGROUP_OPS,
      "MoltenVK on AMD GPUs has returned wrong subgroup reductions (llama.cpp #15846)" },
};

static uint32_t quirk_flags(const device_facts *facts)
{
    uint32_t avoid = 0;
    if (!facts->has_driver_properties)
        return 0;
    for (size_t i = 0; i < sizeof quirks / sizeof quirks[0]; ++i)
        if (quirks[i].driver == facts->driver.driverID &&
            (quirks[i].vendor_id == 0 || quirks[i].vendor_id == facts->properties.vendorID))
            avoid |= quirks[i].avoid;
    return avoid;
}

static bool env_is_one(const char *name)
{
    const char *value = getenv(name);
    return value && value[0] == '1';
}

/* Everything after the device exists: info, feature choices, pipelines,
 * scratch, recording, pipeline cache file. */
static inorm_status finish_init(inorm_context *ctx, vk_state *vk, const device_facts *facts, uint32_t flags,
                                char *message, size_t message_size)
{
    ctx->vk = vk;
    fill_info(facts, &ctx->info);
    ctx->info.device_index = vk->device_index;
    ctx->info.validation_enabled = vk->messenger != VK_NULL_HANDLE;
    flags |= quirk_flags(facts);
    if (!(flags & INORM_CONTEXT_IGNORE_ENVIRONMENT) && env_is_one("INORM_DISABLE_FP16"))
        flags |= INORM_CONTEXT_DISABLE_FLOAT16;
    vk->float16_storage = vk->float16_storage && !(flags & INORM_CONTEXT_DISABLE_FLOAT16);
    ctx->info.float16_storage = vk->float16_storage;
    vk->disable_fused = env_is_one("INORM_DISABLE_FUSED");
    vk->use_subgroup_ops = ctx->info.subgroup_arithmetic && !(flags & INORM_CONTEXT_DISABLE_SUBGROUP_OPS);
    /* Wide stores where they were measured faster (lavapipe; see
     * VEC4_STORER in shaders/common.glsl), on devices inorm created with
     * shaderInt64 (an app's device may lack it), with the subgroup modules
     * (the only ones built wide). 64-bit words need 8-byte aligned bindings. */
    vk->wide_stores = vk->shader_int64 && vk->use_subgroup_ops &&
                      facts->properties.limits.minStorageBufferOffsetAlignment % 8 == 0;
    const char *wide_override = (flags & INORM_CONTEXT_IGNORE_ENVIRONMENT) ? NULL : getenv("INORM_WIDE_STORES");
    if (wide_override && wide_override[0] == '0')
        vk->wide_stores = false;
    vk->subgroup_size = facts->subgroup.subgroupSize;
    vk->size_control = vk->size_control && facts->size_control;
    vk->max_subgroup_size = facts->max_subgroup_size;
    const uint32_t size = vk->subgroup_size;
    const bool size_fits = size >= 4 && size <= 128 && (size & (size - 1)) == 0 &&
                           size <= vk->limits.maxComputeWorkGroupInvocations &&
                           size <= vk->limits.maxComputeWorkGroupSize[0];
    vk->subgroup_workgroups = size_fits && facts->properties.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    const char *override = (flags & INORM_CONTEXT_IGNORE_ENVIRONMENT) ? NULL : getenv("INORM_SUBGROUP_WORKGROUPS");
    if (override && (override[0] == '0' || override[0] == '1'))
        vk->subgroup_workgroups = size_fits && override[0] == '1';
    vk->host_threads = inorm_cpu_threads_for(SIZE_MAX, 0);
    /* Texel loads where they were measured faster: lavapipe (see
     * TEXEL_LOADS in shaders/common.glsl). GPUs keep storage-buffer loads
     * until measured on one. */
    vk->texel_loads = facts->properties.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    override = (flags & INORM_CONTEXT_IGNORE_ENVIRONMENT) ? NULL : getenv("INORM_TEXEL_LOADS");
    if (override && (override[0] == '0' || override[0] == '1'))
        vk->texel_loads = override[0] == '1';
    const VkFormat texel_formats[2] = { VK_FORMAT_R32G32B32A32_UINT, VK_FORMAT_R32G32_UINT };
    for (int i = 0; i < 2; ++i) {
        VkFormatProperties format;
        vk->fn_instance.vkGetPhysicalDeviceFormatProperties(vk->physical_device, texel_formats[i], &format);
        if (!(format.bufferFeatures & VK_FORMAT_FEATURE_UNIFORM_TEXEL_BUFFER_BIT))
            vk->texel_loads = false;
    }
    inorm_status status = vk_pipelines_init(ctx);
    if (status == INORM_SUCCESS)
        status = vk_buffer_create(ctx, 64 * 1024, false, &vk->scratch);
    if (status == INORM_SUCCESS)
        status = vk_buffer_create(ctx, 16, false, &vk->texel_filler);
    if (status == INORM_SUCCESS)
        status = vk_texel_view(ctx, &vk->texel_filler, 16, false);
    if (status == INORM_SUCCESS)
        status = vk_recording_init(ctx);
    if (status != INORM_SUCCESS) {
        snprintf(message, message_size, "%s", ctx->error);
        vk_state_destroy(vk);
        ctx->vk = NULL;
        return status;
    }
    ctx->info.subgroup_ops_used = vk->use_subgroup_ops;
    return INORM_SUCCESS;
}

inorm_status inorm_vulkan_context_import(inorm_context *ctx, const inorm_vulkan_import *desc, char *message,
                                         size_t message_size)
{
    const char *missing = !desc->instance ? "instance" : !desc->physical_device ? "physical_device"
                        : !desc->device ? "device" : !desc->get_instance_proc_addr ? "get_instance_proc_addr" : NULL;
    if (missing) {
        snprintf(message, message_size, "inorm_context_import: desc->%s is NULL", missing);
        return INORM_ERROR_INVALID_ARGUMENT;
    }
    vk_state *vk = inorm_calloc(1, sizeof *vk);
    if (!vk) {
        snprintf(message, message_size, "out of host memory");
        return INORM_ERROR_OUT_OF_HOST_MEMORY;
    }
    atomic_init(&vk->validation_messages, 0u);
    vk->imported = true;
    vk->device_index = -1;
    vk->get_instance_proc_addr = desc->get_instance_proc_addr;
    vk->instance = desc->instance;
    vk->physical_device = desc->physical_device;
    vk->device = desc->device;
    vk->queue = desc->queue;
    vk->queue_family = desc->queue_family_index;
    inorm_status status = load_instance_functions(vk, message, message_size);
    device_facts facts;
    if (status == INORM_SUCCESS && query_device(vk, vk->physical_device, &facts) != INORM_SUCCESS) {
        snprintf(message, message_size, "out of host memory querying the device");
        status = INORM_ERROR_OUT_OF_HOST_MEMORY;
    }
    if (status == INORM_SUCCESS) {
        if (facts.properties.apiVersion < VK_API_VERSION_1_1) {
            snprintf(message, message_size, "%s supports Vulkan %u.%u; inorm needs 1.1", facts.properties.deviceName,
                     VK_API_VERSION_MAJOR(facts.properties.apiVersion),
                     VK_API_VERSION_MINOR(facts.properties.apiVersion));
            status = INORM_ERROR_UNSUPPORTED;
        }
    }
    if (status == INORM_SUCCESS)
        status = adopt_device(vk, &facts, message, message_size);
    if (status != INORM_SUCCESS) {
        vk_state_destroy(vk);
        return status;
    }
    vk->float16_storage = desc->storage_buffer_16bit_access && facts.storage_16bit;
    vk->size_control = desc->subgroup_size_control != 0;
    return finish_init(ctx, vk, &facts, desc->flags, message, message_size);
}

inorm_status inorm_vulkan_enumerate(inorm_device_info *infos, uint32_t *count)
{
    uint32_t capacity = infos ? *count : 0;
    *count = 0;
    vk_state *vk = inorm_calloc(1, sizeof *vk);
    if (!vk)
        return INORM_ERROR_OUT_OF_HOST_MEMORY;
    char message[INORM_ERROR_TEXT_SIZE];
    VkPhysicalDevice *devices = NULL;
    uint32_t device_count = 0;
    pthread_mutex_lock(&instance_lock);
    inorm_status status = create_instance(vk, false, message, sizeof message);
    if (status == INORM_SUCCESS)
        status = list_devices(vk, &devices, &device_count, message, sizeof message);
    pthread_mutex_unlock(&instance_lock);
    if (status == INORM_SUCCESS) {
        for (uint32_t i = 0; i < device_count; ++i) {
            if (infos && i < capacity) {
                device_facts facts;
                if (query_device(vk, devices[i], &facts) != INORM_SUCCESS) {
                    status = INORM_ERROR_OUT_OF_HOST_MEMORY;
                    break;
                }
                fill_info(&facts, &infos[i]);
                infos[i].device_index = (int)i;
            }
        }
        if (status == INORM_SUCCESS)
            *count = infos ? (device_count < capacity ? device_count : capacity) : device_count;
    }
    inorm_free(devices);
    vk_state_destroy(vk);
    return status == INORM_ERROR_OUT_OF_HOST_MEMORY ? status : INORM_SUCCESS;
}

uint32_t inorm_context_validation_message_count(const inorm_context *ctx)
{
    if (!ctx || !ctx->vk)
        return 0;
    return atomic_load(&ctx->vk->validation_messages);
}
