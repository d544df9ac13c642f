// Shared by every inorm kernel: the push-constant block (mirrored by
// struct vk_push_constants in src/vulkan/vk_backend.c), the segment/chunk
// geometry, and how a workgroup's lanes walk a chunk.
//
// Geometry: a tensor is a row of `seg_count` segments of `seg_len` elements
// (a segment is channels_per_seg whole channel planes of one sample). Each
// segment is cut into `chunks` chunks of `chunk_len` elements (the last may be
// shorter); one workgroup handles one (segment, chunk). Workgroups are laid
// out over a 2D grid so that more than 65535 of them can run.

#extension GL_KHR_shader_subgroup_basic : enable

layout(local_size_x_id = 0) in;
// Content elements are read as vec4 (requires seg_len % 4 == 0, and for group
// norm plane_len % 4 == 0, and 16-byte aligned buffers).
layout(constant_id = 1) const bool VEC4 = false;

const uint FLAG_GAMMA = 1u;       // gamma (or scale) buffer is bound
const uint FLAG_BETA = 2u;        // beta (or bias) buffer is bound
const uint FLAG_PER_SAMPLE = 4u;  // gamma/beta are indexed by (n, c), not c
const uint FLAG_UNBIASED = 8u;    // variance divides by count - 1
const uint FLAG_MEAN_OUT = 16u;   // stats: write the mean
const uint FLAG_STD_OUT = 32u;    // stats: write the std

layout(push_constant) uniform PushConstants {
    uint seg_len;
    uint seg_count;
    uint chunk_len;
    uint chunks;
    uint style_seg_len;
    uint style_seg_count;
    uint style_chunk_len;
    uint style_chunks;
    uint plane_len;
    uint channels;
    uint channels_per_seg;
    uint style_sample_stride;  // style segments per content sample: C, or 0 when style N == 1
    uint flags;
    float eps;
    float alpha;
    uint style_partial_base;   // index of the first style partial
} pc;

uint flat_workgroup_id()
{
    return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
}

#ifdef USE_SUBGROUP_ARITHMETIC
#define LANES gl_SubgroupSize
#define LANE gl_SubgroupInvocationID
#define LANE_GROUP gl_SubgroupID
#define LANE_GROUPS gl_NumSubgroups
#else
// Without subgroup operations a fixed lane group of 32 gives the same
// contiguous-block walk; the workgroup size is a multiple of 32.
#define LANES 32u
#define LANE (gl_LocalInvocationIndex % 32u)
#define LANE_GROUP (gl_LocalInvocationIndex / 32u)
#define LANE_GROUPS (gl_WorkGroupSize.x / 32u)
#endif

// The units [first, stop) stepping by `stride` that this lane handles out of
// the workgroup's [begin, end). Each lane group walks one contiguous block
// (lanes side by side in it), which keeps GPU loads coalesced and, on
// lavapipe, keeps each subgroup on its own memory between barriers. The trip
// count is at most ceil((end - begin) / workgroup size) + 1.
void lane_range(uint begin, uint end, out uint first, out uint stop)
{
    uint per_group = (end - begin + LANE_GROUPS - 1u) / LANE_GROUPS;
    per_group = (per_group + LANES - 1u) / LANES * LANES;
    uint group_begin = begin + LANE_GROUP * per_group;
    first = group_begin + LANE;
    stop = min(group_begin + per_group, end);
}
