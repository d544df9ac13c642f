#version 450
#extension GL_GOOGLE_include_directive : require
// Weighted blend (inorm_blend), elementwise in fp32:
//   y = weight * a + (1 - weight) * b
// The FLOAT32 weight broadcasts over N, C or H x W; either layout.
//
// Bindings: 0 a (read), 1 y (write), 2 b (read), 3 weight (read); y may be
// the same buffer as a or b: each invocation reads an element before writing it.
// Specialization: 0 workgroup size, 4 NHWC (the data's layout). FLOAT16 define:
// half storage of a, b and y.
// Push constants (PushConstants of common.glsl): seg_len = elements,
// chunk_len = elements per workgroup, plane_len = H * W, channels = C,
// flags = WEIGHT_* below.

#include "common.glsl"

layout(std430, binding = 0) readonly buffer InputA { DATA_T a[]; };
layout(std430, binding = 1) writeonly buffer Output { OUT_T y[]; };
layout(std430, binding = 2) readonly buffer InputB { DATA_T b[]; };
layout(std430, binding = 3) readonly buffer Weight { float weight[]; };

const uint WEIGHT_PER_SAMPLE = 1u;   // weight's N is the data's (else 1)
const uint WEIGHT_PER_CHANNEL = 2u;  // weight's C is the data's (else 1)
const uint WEIGHT_PER_PIXEL = 4u;    // weight's H x W is the data's (else 1 x 1)
const uint WEIGHT_NHWC = 8u;         // weight's layout

uint weight_index(uint n, uint c, uint p)
{
    uint wc = (pc.flags & WEIGHT_PER_CHANNEL) != 0u ? pc.channels : 1u;
    uint wp = (pc.flags & WEIGHT_PER_PIXEL) != 0u ? pc.plane_len : 1u;
    n = (pc.flags & WEIGHT_PER_SAMPLE) != 0u ? n : 0u;
    c = wc == 1u ? 0u : c;
    p = wp == 1u ? 0u : p;
    return (pc.flags & WEIGHT_NHWC) != 0u ? (n * wp + p) * wc + c : (n * wc + c) * wp + p;
}

void main()
{
    uint begin = flat_workgroup_id() * pc.chunk_len;
    if (begin >= pc.seg_len)
        return;
    uint first, stop;
    lane_range(begin, min(pc.seg_len, begin + pc.chunk_len), first, stop);
    for (uint i = first; i < stop; i += LANES) {
        uint n, c, p;
        if (NHWC) {
            c = i % pc.channels;
            p = (i / pc.channels) % pc.plane_len;
            n = i / (pc.channels * pc.plane_len);
        } else {
            p = i % pc.plane_len;
            c = (i / pc.plane_len) % pc.channels;
            n = i / (pc.plane_len * pc.channels);
        }
        float w = weight[weight_index(n, c, p)];
        y[i] = out1(w * float(a[i]) + (1.0 - w) * float(b[i]));
    }
}
