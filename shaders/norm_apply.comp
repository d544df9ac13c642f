#version 450
#extension GL_GOOGLE_include_directive : require
// Finishes the statistics of a segment from its chunks' partials (Chan merge)
// and, per MODE:
//   MODE_NORMALIZE  y = a[c] * (x - mean) + b[c], a = gamma / sqrt(var + eps), b = beta
//   MODE_ADAIN      a = std_style / std_x, b = mean_style, then y = x + alpha * (t - x)
//   MODE_STATS      writes mean and std = sqrt(var + eps) per segment, no y
// One workgroup per (segment, chunk), the same grid as norm_stats.comp; in
// MODE_STATS one workgroup per segment. The mean is kept as shift + offset
// (shift a data value, offset small), and x - mean is evaluated as
// (x - shift) - offset: exact for data near the shift, so the result does not
// carry the mean's fp32 rounding (1000 + noise normalizes as well as noise).
//
// Bindings: 0 x (read), 1 y (write; may be the same buffer as x),
//           2 partials (read), 3 gamma/scale, 4 beta/bias,
//           5 mean out, 6 std out. Unused bindings hold any buffer.
// Specialization: 0 workgroup size, 1 VEC4, 3 MODE.

#include "common.glsl"
#include "reduce.glsl"

const uint MODE_NORMALIZE = 0u;
const uint MODE_ADAIN = 1u;
const uint MODE_STATS = 2u;
layout(constant_id = 3) const uint MODE = MODE_NORMALIZE;

layout(std430, binding = 0) readonly buffer Input { float x[]; };
layout(std430, binding = 0) readonly buffer Input4 { vec4 x4[]; };
layout(std430, binding = 1) writeonly buffer Output { float y[]; };
layout(std430, binding = 1) writeonly buffer Output4 { vec4 y4[]; };
layout(std430, binding = 2) readonly buffer Partials { vec4 partials[]; };
layout(std430, binding = 3) readonly buffer Gamma { float gamma[]; };
layout(std430, binding = 4) readonly buffer Beta { float beta[]; };
layout(std430, binding = 5) writeonly buffer MeanOut { float mean_out[]; };
layout(std430, binding = 6) writeonly buffer StdOut { float std_out[]; };

struct Stats {
    float shift;   // mean = shift + offset
    float offset;
    float std;     // sqrt(var + eps)
};

// Statistics of a segment of seg_len elements from its `count` partials,
// partial p covering min(chunk_len, seg_len - p * chunk_len) elements.
Stats merge_partials(uint base, uint count, uint chunk_len, uint seg_len)
{
    float shift = partials[base].x;
    float offset, m2;
    if (count == 1u) {
        offset = partials[base].y;
        m2 = partials[base].z;
    } else {
        // Two passes over the (few) partials: the mean's offset from chunk 0's
        // shift, then the M2s plus each chunk's deviation from that mean.
        float weighted = 0.0;
        for (uint p = gl_LocalInvocationIndex; p < count; p += gl_WorkGroupSize.x) {
            vec4 part = partials[base + p];
            float n = float(min(chunk_len, seg_len - p * chunk_len));
            weighted += n * ((part.x - shift) + part.y);
        }
        offset = workgroup_sum(vec2(weighted, 0.0)).x / float(seg_len);
        float own_m2 = 0.0;
        for (uint p = gl_LocalInvocationIndex; p < count; p += gl_WorkGroupSize.x) {
            vec4 part = partials[base + p];
            float n = float(min(chunk_len, seg_len - p * chunk_len));
            float d = ((part.x - shift) + part.y) - offset;
            own_m2 += part.z + n * d * d;
        }
        m2 = workgroup_sum(vec2(own_m2, 0.0)).x;
    }
    bool unbiased = (pc.flags & FLAG_UNBIASED) != 0u;
    float var = max(m2 / float(unbiased ? seg_len - 1u : seg_len), 0.0);
    return Stats(shift, offset, sqrt(var + pc.eps));
}

// The (a, b) of channel `channel` of sample `sample_index` for MODE_NORMALIZE.
vec2 affine(Stats st, uint sample_index, uint channel)
{
    uint index = (pc.flags & FLAG_PER_SAMPLE) != 0u ? sample_index * pc.channels + channel : channel;
    float g = (pc.flags & FLAG_GAMMA) != 0u ? gamma[index] : 1.0;
    float b = (pc.flags & FLAG_BETA) != 0u ? beta[index] : 0.0;
    return vec2(g / st.std, b);
}

float apply1(float v, Stats st, vec2 ab)
{
    float t = ab.x * ((v - st.shift) - st.offset) + ab.y;
    if (MODE == MODE_ADAIN && pc.alpha != 1.0)
        t = v + pc.alpha * (t - v);
    return t;
}

vec4 apply4(vec4 v, Stats st, vec2 ab)
{
    vec4 t = ab.x * ((v - st.shift) - st.offset) + ab.y;
    if (MODE == MODE_ADAIN && pc.alpha != 1.0)
        t = v + pc.alpha * (t - v);
    return t;
}

void main()
{
    uint workgroup = flat_workgroup_id();
    // MODE_STATS runs one workgroup per segment; the others one per chunk.
    uint segment = MODE == MODE_STATS ? workgroup : workgroup / pc.chunks;
    if (segment >= pc.seg_count)
        return;  // grid padding: the whole workgroup leaves together
    uint chunk = workgroup % pc.chunks;
    Stats st = merge_partials(segment * pc.chunks, pc.chunks, pc.chunk_len, pc.seg_len);

    if (MODE == MODE_STATS) {
        if (gl_LocalInvocationIndex == 0u) {
            if ((pc.flags & FLAG_MEAN_OUT) != 0u)
                mean_out[segment] = st.shift + st.offset;
            if ((pc.flags & FLAG_STD_OUT) != 0u)
                std_out[segment] = st.std;
        }
        return;
    }

    uint segs_per_sample = pc.channels / pc.channels_per_seg;
    uint sample_index = segment / segs_per_sample;
    uint first_channel = (segment % segs_per_sample) * pc.channels_per_seg;
    vec2 ab;
    if (MODE == MODE_ADAIN) {
        uint style_segment = sample_index * pc.style_sample_stride + first_channel;
        Stats style_st = merge_partials(pc.style_partial_base + style_segment * pc.style_chunks, pc.style_chunks,
                                        pc.style_chunk_len, pc.style_seg_len);
        ab = vec2(style_st.std / st.std, style_st.shift + style_st.offset);
    } else {
        ab = affine(st, sample_index, first_channel);
    }

    uint seg_begin = segment * pc.seg_len;
    uint begin = seg_begin + chunk * pc.chunk_len;
    uint end = seg_begin + min(pc.seg_len, (chunk + 1u) * pc.chunk_len);
    bool one_channel = pc.channels_per_seg == 1u;
    uint first, stop;
    if (VEC4) {
        lane_range(begin / 4u, end / 4u, first, stop);
        for (uint i = first; i < stop; i += LANES) {
            if (!one_channel)  // group norm: plane_len % 4 == 0, so a vec4 stays in one channel
                ab = affine(st, sample_index, first_channel + (i * 4u - seg_begin) / pc.plane_len);
            y4[i] = apply4(x4[i], st, ab);
        }
    } else {
        lane_range(begin, end, first, stop);
        for (uint i = first; i < stop; i += LANES) {
            if (!one_channel)
                ab = affine(st, sample_index, first_channel + (i - seg_begin) / pc.plane_len);
            y[i] = apply1(x[i], st, ab);
        }
    }
}
