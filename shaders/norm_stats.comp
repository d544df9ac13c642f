#version 450
#extension GL_GOOGLE_include_directive : require
// Partial statistics. Each workgroup reduces one chunk (NCHW: of a segment;
// NHWC: of each channel of a tile) to (shift, mean - shift, M2, weight) and
// writes it to the partials buffer. The shift is the chunk's first value:
// data with a large common offset (1000 + noise) loses nothing when shifted
// (Sterbenz), and all further arithmetic works on small centred numbers at
// full fp32 precision. Workgroups past the content's take the style tensor's
// chunks (AdaIN), so content and style statistics come from one dispatch.
//
// Bindings: 0 content (read), 1 style (read; the content when unused),
//           2 partials (vec4; write), 8 content mask, 9 style mask (FLOAT32
//           N x 1 x H x W weights; any buffer when unused).
// Specialization: 0 workgroup size, 1 VEC4 (content, NCHW), 2 STYLE_VEC4,
//                 4 NHWC, 15 SOURCES. Defines: FLOAT16 (16-bit storage data),
//                 USE_SUBGROUP_ARITHMETIC.

#extension GL_EXT_control_flow_attributes : require

#include "common.glsl"
#include "reduce.glsl"
#include "accumulate.glsl"

layout(constant_id = 2) const bool STYLE_VEC4 = false;
// Which tensor a dispatch reads: SOURCES_BOTH, the content's workgroups and
// then the style's (AdaIN in one dispatch); SOURCES_CONTENT or SOURCES_STYLE,
// one tensor, the other's accumulation folded away at pipeline creation. On
// lavapipe AdaIN's NCHW statistics ran faster as two such dispatches than as
// one kernel holding both accumulations (the host's plan_op says where).
layout(constant_id = 15) const uint SOURCES = 0u;
const uint SOURCES_BOTH = 0u;
const uint SOURCES_CONTENT = 1u;
const uint SOURCES_STYLE = 2u;

// Whether workgroup reads the style, the content taking the first
// content_workgroups (SOURCES_BOTH).
bool style_workgroup(uint workgroup, uint content_workgroups)
{
    return SOURCES == SOURCES_BOTH ? workgroup >= content_workgroups : SOURCES == SOURCES_STYLE;
}

layout(std430, binding = 0) readonly buffer Content { DATA_T content[]; };
layout(std430, binding = 0) readonly buffer Content4 { DATA4_T content4[]; };
layout(std430, binding = 1) readonly buffer Style { DATA_T style[]; };
layout(std430, binding = 1) readonly buffer Style4 { DATA4_T style4[]; };
layout(std430, binding = 2) writeonly buffer Partials { vec4 partials[]; };
layout(std430, binding = 8) readonly buffer Mask { float mask[]; };
layout(std430, binding = 8) readonly buffer Mask4 { vec4 mask4[]; };
layout(std430, binding = 9) readonly buffer StyleMask { float style_mask[]; };
layout(std430, binding = 9) readonly buffer StyleMask4 { vec4 style_mask4[]; };
// 4-vector i of the content or the style, through its texel view where the
// host made one (TEXEL_LOADS, STYLE_TEXEL_LOADS)
TEXEL_OR_BUFFER_LOADER(DATA4_T, content4_at, content4, TEXEL_LOADS, input_texels, DATA_TEXEL)
TEXEL_OR_BUFFER_LOADER(DATA4_T, style4_at, style4, STYLE_TEXEL_LOADS, style_texels, DATA_TEXEL)
HALF_PAIR_LOADER(content8_at, content4, TEXEL_LOADS, input_texels)
HALF_PAIR_LOADER(style8_at, style4, STYLE_TEXEL_LOADS, style_texels)

// Mask index of content element i (NCHW): its sample's mask plane, its pixel.
uint content_mask_at(uint i)
{
    uint sample_index = i / (pc.plane_len * pc.channels);
    return sample_index * pc.mask_sample_stride + i % pc.plane_len;
}
uint style_mask_at(uint i)
{
    uint style_plane = pc.style_seg_len;
    uint sample_index = i / (style_plane * pc.channels);
    return sample_index * pc.style_mask_sample_stride + i % style_plane;
}

void stats_nchw(uint workgroup)
{
    // FLAG_SELF_STATS: the apply reduces the content itself; this pass is
    // AdaIN's style alone
    uint content_workgroups =
        SOURCES != SOURCES_BOTH || (pc.flags & FLAG_SELF_STATS) != 0u ? 0u : pc.seg_count * pc.chunks;
    bool is_style = style_workgroup(workgroup, content_workgroups);
    uint local_id = is_style ? workgroup - content_workgroups : workgroup;
    uint chunks = is_style ? pc.style_chunks : pc.chunks;
    uint seg_len = is_style ? pc.style_seg_len : pc.seg_len;
    uint chunk_len = is_style ? pc.style_chunk_len : pc.chunk_len;
    uint segment = local_id / chunks;
    if (segment >= (is_style ? pc.style_seg_count : pc.seg_count))
        return;  // grid padding: the whole workgroup leaves together
    uint chunk = local_id % chunks;
    uint begin = segment * seg_len + chunk * chunk_len;
    uint end = segment * seg_len + min(seg_len, (chunk + 1u) * chunk_len);

    Moments moments = Moments(0.0, 0.0, 0.0);
    float shift;
    if (is_style) {
        bool masked = (pc.flags & FLAG_STYLE_MASK) != 0u;
        ACCUMULATE_NCHW(moments, shift, style, style4_at, style8_at, STYLE_VEC4, masked, style_mask, style_mask4, style_mask_at,
                        begin, end)
    } else {
        bool masked = (pc.flags & FLAG_MASK) != 0u;
        ACCUMULATE_NCHW(moments, shift, content, content4_at, content8_at, VEC4, masked, mask, mask4, content_mask_at, begin, end)
    }
    moments = workgroup_merge(moments);
    if (gl_LocalInvocationIndex == 0u)
        partials[is_style ? pc.style_partial_base + local_id : local_id] =
            vec4(shift, moments.mean, moments.m2, moments.weight);
}

// NHWC: per-channel moments of a tile, merged down the rows.
shared vec3 tile_moments[gl_WorkGroupSize.x];
shared float tile_shifts[gl_WorkGroupSize.x];

// FLAG_SEGMENT_TILES (the content's channels of this workgroup all lie in
// one segment: layer norm, groups of whole tiles): the workgroup's moments,
// each relative to its own channel's shift, merged into one partial relative
// to invocation 0's shift (rebased). Every invocation calls it; those without
// data pass weight 0.
void write_tile_partial(uint id, uint chunks, float shift, Moments moments)
{
    float reference = workgroup_first(shift);
    moments = workgroup_merge(rebased(moments, shift, reference));
    if (gl_LocalInvocationIndex == 0u)
        partials[tile_partial(id, chunks)] = vec4(reference, moments.mean, moments.m2, moments.weight);
}

// NHWC: this lane's channel c over pixels [p_begin, p_end) stepping by the
// tile's rows: in exact register blocks like NCHW, or one weighted value at a
// time under a mask.
#define ACCUMULATE_NHWC(moments, shift, data, has_mask, mask_buf, mask_stride, plane, n, c, p_begin, p_end)    \
    shift = float(data[((n) * (plane) + (p_begin)) * pc.channels + (c)]);                                      \
    if (has_mask) {                                                                                            \
        shift = masked_shift(shift);                                                                           \
        for (uint p = (p_begin) + tile_pixel_offset(); p < (p_end); p += tile_pixel_step())                    \
            moments_add1(moments, float(data[((n) * (plane) + p) * pc.channels + (c)]) - shift,                \
                         mask_buf[(n) * (mask_stride) + p]);                                                   \
    } else {                                                                                                   \
        uint rows = tile_pixel_step();                                                                         \
        for (uint block_start = (p_begin) + tile_pixel_offset(); block_start < (p_end);                        \
             block_start += rows * BLOCK) {                                                                    \
            float values[BLOCK];                                                                               \
            float sum = 0.0, count = 0.0;                                                                      \
            [[unroll]] for (uint r = 0u; r < BLOCK; ++r) {                                                     \
                uint p = block_start + r * rows;                                                               \
                bool inside = p < (p_end);                                                                     \
                uint clamped = min(p, (p_end) - 1u);  /* no branch per load */                                 \
                values[r] = mix(0.0, float(data[((n) * (plane) + clamped) * pc.channels + (c)]) - shift, inside); \
                sum += values[r];                                                                              \
                count += inside ? 1.0 : 0.0;                                                                   \
            }                                                                                                  \
            float block_mean = sum / count;                                                                    \
            float squares = 0.0;                                                                               \
            [[unroll]] for (uint r = 0u; r < BLOCK; ++r) {                                                     \
                float centred = values[r] - block_mean;                                                        \
                squares += block_start + r * rows < (p_end) ? centred * centred : 0.0;                         \
            }                                                                                                  \
            moments_merge(moments, Moments(count, block_mean, squares));                                       \
        }                                                                                                      \
    }

void stats_nhwc(uint workgroup)
{
    uint content_workgroups =
        SOURCES != SOURCES_BOTH || (pc.flags & FLAG_SELF_STATS) != 0u ? 0u
                                                                      : pc.samples * pc.channel_blocks * tile_workgroup_chunks(pc.chunks);
    bool is_style = style_workgroup(workgroup, content_workgroups);
    uint local_id = is_style ? workgroup - content_workgroups : workgroup;
    uint chunks = is_style ? pc.style_chunks : pc.chunks;
    uint plane = is_style ? pc.style_seg_len : pc.plane_len;
    uint chunk_len = is_style ? pc.style_chunk_len : pc.chunk_len;
    uint samples = is_style ? pc.style_seg_count / pc.channels : pc.samples;
    uint n, block, chunk;
    tile_of(local_id, chunks, n, block, chunk);
    if (n >= samples)
        return;  // grid padding: the whole workgroup leaves together
    uint c = block * pc.channel_block + tile_channel();
    bool lane_has_channel = tile_row() < tile_rows() && c < pc.channels && chunk < chunks;
    uint p_begin = chunk * chunk_len;
    uint p_end = min(plane, p_begin + chunk_len);

    Moments moments = Moments(0.0, 0.0, 0.0);
    float shift = 0.0;
    if (lane_has_channel) {
        if (is_style) {
            bool masked = (pc.flags & FLAG_STYLE_MASK) != 0u;
            ACCUMULATE_NHWC(moments, shift, style, masked, style_mask, pc.style_mask_sample_stride, plane, n, c,
                            p_begin, p_end)
        } else {
            bool masked = (pc.flags & FLAG_MASK) != 0u;
            ACCUMULATE_NHWC(moments, shift, content, masked, mask, pc.mask_sample_stride, plane, n, c, p_begin, p_end)
        }
    }
    if (!is_style && (pc.flags & FLAG_SEGMENT_TILES) != 0u) {
        write_tile_partial(local_id, chunks, shift, moments);
        return;
    }
    if (!SUBGROUP_WORKGROUP) {  // else the tile has one row (channel_block == workgroup size)
        tile_moments[gl_LocalInvocationIndex] = vec3(moments.weight, moments.mean, moments.m2);
        barrier();
    }
    bool row_leader = lane_has_channel && (SUBGROUP_WORKGROUP || tile_row() == 0u);
    if (row_leader) {
        // Every row of this channel used the same shift, so rows merge directly.
        for (uint row = 1u; !SUBGROUP_WORKGROUP && row < tile_rows(); ++row) {
            vec3 other = tile_moments[row * pc.channel_block + tile_channel()];
            moments_merge(moments, Moments(other.x, other.y, other.z));
        }
    }
    if (!SUBGROUP_WORKGROUP && !is_style && pc.channels_per_partial > 1u) {
        // groups inside the tile: each group's first channel merges the
        // group's channels about its own shift into one partial
        barrier();  // the rows' moments are read
        if (row_leader) {
            tile_moments[tile_channel()] = vec3(moments.weight, moments.mean, moments.m2);
            tile_shifts[tile_channel()] = shift;
        }
        barrier();
        if (row_leader && c % pc.channels_per_partial == 0u) {
            for (uint k = 1u; k < pc.channels_per_partial; ++k) {
                vec3 other = tile_moments[tile_channel() + k];
                moments_merge(moments, rebased(Moments(other.x, other.y, other.z), tile_shifts[tile_channel() + k], shift));
            }
            partials[merged_partial(n, c, chunk)] = vec4(shift, moments.mean, moments.m2, moments.weight);
        }
        return;
    }
    if (row_leader) {
        uint partial = (n * pc.channels + c) * chunks + chunk;
        partials[is_style ? pc.style_partial_base + partial : partial] =
            vec4(shift, moments.mean, moments.m2, moments.weight);
    }
}

void stats_nhwc4(uint workgroup)
{
    uint content_workgroups =
        SOURCES != SOURCES_BOTH || (pc.flags & FLAG_SELF_STATS) != 0u ? 0u
                                                                      : pc.samples * pc.channel_blocks * tile_workgroup_chunks(pc.chunks);
    bool is_style = style_workgroup(workgroup, content_workgroups);
    uint local_id = is_style ? workgroup - content_workgroups : workgroup;
    uint chunks = is_style ? pc.style_chunks : pc.chunks;
    uint plane = is_style ? pc.style_seg_len : pc.seg_len;  // virtual pixels (FOLD)
    uint chunk_len = is_style ? pc.style_chunk_len : pc.chunk_len;
    uint samples = is_style ? pc.style_seg_count / pc.channels : pc.samples;
    uint n, block, chunk;
    tile_of(local_id, chunks, n, block, chunk);
    uint quads = pc.channels * FOLD / 4u;
    uint q = block * pc.channel_block * QUADS_PER_LANE + tile_channel();
    // the host plans QUADS_PER_LANE > 1 only where every lane has all its quads
    if (n >= samples || tile_row() >= tile_rows() || q >= quads || chunk >= chunks)
        return;  // no barrier follows
    uint p_begin = chunk * chunk_len;
    uint p_end = min(plane, p_begin + chunk_len);

    Moments4 moments[QUADS_PER_LANE];
    vec4 shift[QUADS_PER_LANE];
    float weight = 0.0;  // the same pixels for every quad
    [[unroll]] for (uint k = 0u; k < QUADS_PER_LANE; ++k)
        moments[k] = Moments4(vec4(0.0), vec4(0.0));
    if (is_style) {
        bool masked = (pc.flags & FLAG_STYLE_MASK) != 0u;
        ACCUMULATE_NHWC4(moments, shift, style4_at, style8_at, masked, style_mask, pc.style_mask_sample_stride, plane, n, q,
                         p_begin, p_end)
    } else {
        bool masked = (pc.flags & FLAG_MASK) != 0u;
        ACCUMULATE_NHWC4(moments, shift, content4_at, content8_at, masked, mask, pc.mask_sample_stride, plane, n, q, p_begin, p_end)
    }
    if (!is_style && (pc.flags & FLAG_SEGMENT_TILES) != 0u) {
        // this lane's quads merged, then the workgroup's lanes (lanes that
        // left above take no part in the subgroup operations; lane 0 never
        // leaves)
        float reference = workgroup_first(shift[0].x);
        Moments lane = Moments(0.0, 0.0, 0.0);
        [[unroll]] for (uint k = 0u; k < QUADS_PER_LANE; ++k)
            moments_merge(lane, quad_moments(shift[k], moments[k], weight, reference));
        lane = workgroup_merge(lane);
        if (gl_LocalInvocationIndex == 0u)
            partials[tile_partial(local_id, chunks)] = vec4(reference, lane.mean, lane.m2, lane.weight);
        return;
    }
    if (!is_style && pc.channels_per_partial == 4u) {  // each quad in one segment: a partial per quad
        [[unroll]] for (uint k = 0u; k < QUADS_PER_LANE; ++k) {
            Moments quad = quad_moments(shift[k], moments[k], weight, shift[k].x);
            partials[merged_partial(n, 4u * slot_quad(q, k), chunk)] =
                vec4(shift[k].x, quad.mean, quad.m2, quad.weight);
        }
        return;
    }
    uint base = is_style ? pc.style_partial_base : 0u;
    [[unroll]] for (uint k = 0u; k < QUADS_PER_LANE; ++k) {
        for (uint j = 0u; j < 4u; ++j) {
            uint partial = nhwc_partial(n, 4u * slot_quad(q, k) + j, chunk, chunks);
            partials[base + partial] = vec4(shift[k][j], moments[k].mean[j], moments[k].m2[j], weight);
        }
    }
}

void main()
{
    if (NHWC && VEC4)
        stats_nhwc4(flat_workgroup_id());
    else if (NHWC)
        stats_nhwc(flat_workgroup_id());
    else
        stats_nchw(flat_workgroup_id());
}
