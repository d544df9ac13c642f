#version 450
#extension GL_GOOGLE_include_directive : require
// Partial statistics: each workgroup reduces one chunk of one segment to
// (shift, mean - shift, M2) and writes it to partials[workgroup]. The shift is
// the chunk's first value: data with a large common offset (1000 + noise)
// loses nothing when shifted (Sterbenz), and all further arithmetic works on
// small centred numbers at full fp32 precision. Workgroups past the
// content's take the style tensor's chunks (AdaIN), so content and style
// statistics come from one dispatch.
//
// Bindings: 0 content (read), 1 style (read; the content again when unused),
//           2 partials (vec4 shift, shifted mean, M2, unused; write).
// Specialization: 0 workgroup size, 1 VEC4 (content), 2 STYLE_VEC4.

#include "common.glsl"
#include "reduce.glsl"

layout(constant_id = 2) const bool STYLE_VEC4 = false;

layout(std430, binding = 0) readonly buffer Content { float content[]; };
layout(std430, binding = 0) readonly buffer Content4 { vec4 content4[]; };
layout(std430, binding = 1) readonly buffer Style { float style[]; };
layout(std430, binding = 1) readonly buffer Style4 { vec4 style4[]; };
layout(std430, binding = 2) writeonly buffer Partials { vec4 partials[]; };

// Accumulates this lane's share of [begin, end) (elements) of one buffer.
#define ACCUMULATE(moments, shift, data, data4, use_vec4, begin, end)     \
    shift = data[begin];                                                  \
    if (use_vec4) {                                                       \
        uint first, stop;                                                 \
        lane_range((begin) / 4u, (end) / 4u, first, stop);               \
        for (uint i = first; i < stop; i += LANES)                        \
            moments_add4(moments, data4[i] - shift);                      \
    } else {                                                              \
        uint first, stop;                                                 \
        lane_range(begin, end, first, stop);                              \
        for (uint i = first; i < stop; i += LANES)                        \
            moments_add1(moments, data[i] - shift);                       \
    }

void main()
{
    uint workgroup = flat_workgroup_id();
    uint content_workgroups = pc.seg_count * pc.chunks;
    bool is_style = workgroup >= content_workgroups;
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
        ACCUMULATE(moments, shift, style, style4, STYLE_VEC4, begin, end)
    } else {
        ACCUMULATE(moments, shift, content, content4, VEC4, begin, end)
    }
    moments = workgroup_merge(moments);
    if (gl_LocalInvocationIndex == 0u)
        partials[is_style ? pc.style_partial_base + local_id : local_id] =
            vec4(shift, moments.mean, moments.m2, 0.0);
}
