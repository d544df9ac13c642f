#version 450
#extension GL_GOOGLE_include_directive : require
// Tensor conversion between dtypes (SRC_FLOAT16 / DST_FLOAT16 defines) and
// layouts (SRC_NHWC / DST_NHWC specialization). With the same layout on both
// sides it is a streaming copy: each subgroup walks its own contiguous block
// with 4-wide loads, which is also inorm's shader-copy roofline. Between
// layouts, each workgroup transposes one tile through shared memory so that
// both the reads and the writes stay contiguous.
//
// Bindings: 0 source (read), 1 destination (write).
// Specialization: 0 workgroup size, 1 VEC4 (same layout, element count % 4 == 0),
//                 7 SRC_NHWC, 8 DST_NHWC, 12 LANE_GROUP_WIDTH, 16 THROUGH_ALU.
// Push constants (PushConstants of common.glsl): seg_len = elements (same
// layout) or H*W (transpose), channels = C, samples = N, chunk_len = units per
// workgroup (same layout).

#extension GL_EXT_control_flow_attributes : enable
#include "common.glsl"

// Halves travel as uvec2 (four to a vector; see halves4 in common.glsl).
#if defined(SRC_FLOAT16) || defined(DST_FLOAT16)
#extension GL_EXT_shader_16bit_storage : require
#endif
#ifdef SRC_FLOAT16
#define SRC_T float16_t
#define SRC4_T uvec2
#else
#define SRC_T float
#define SRC4_T vec4
#endif
#ifdef DST_FLOAT16
#define DST_T uint16_t  // half bits, rounded here (half_bits in common.glsl)
#define DST4_T uvec2
#define TO_DST(v) uint16_t(half_bits(v))
#else
#define DST_T float
#define DST4_T vec4
#define TO_DST(v) (v)
#endif
// four values as fp32, and back
#ifdef SRC_FLOAT16
#define WIDEN4(v) halves4(v)
#else
#define WIDEN4(v) (v)
#endif
#ifdef DST_FLOAT16
#define NARROW4(v) half4_bits(v)
#else
#define NARROW4(v) (v)
#endif
#if defined(SRC_FLOAT16) && defined(DST_FLOAT16)
#define CONVERT4(v) (v)  // the bits as they are
#elif defined(SRC_FLOAT16)
#define CONVERT4(v) halves4(v)
#elif defined(DST_FLOAT16)
#define CONVERT4(v) half4_bits(v)
#else
#define CONVERT4(v) (v)
#endif

layout(constant_id = 7) const bool SRC_NHWC = false;
layout(constant_id = 8) const bool DST_NHWC = false;
// Same layout: each value widened to fp32, pc.eps (-0.0) added and narrowed
// back, which the compiler cannot drop: the benchmark's second shader
// roofline, the least a kernel that computes does per value. On lavapipe it
// took 1.03-1.3x the plain copy's time in fp32 (the most on data from
// memory: 1x4x2048x2048) and 1.4-1.64x in fp16 (widening and rounding).
layout(constant_id = 16) const bool THROUGH_ALU = false;

layout(std430, binding = 0) readonly buffer Source { SRC_T src[]; };
layout(std430, binding = 0) readonly buffer Source4 { SRC4_T src4[]; };
layout(std430, binding = 1) writeonly buffer Destination { DST_T dst[]; };
layout(std430, binding = 1) writeonly buffer Destination4 { DST4_T dst4[]; };
#ifdef DST_FLOAT16
#define DST_WIDE_T uint64_t
#else
#define DST_WIDE_T u64vec2
#endif
VEC4_STORER(DST4_T, DST_WIDE_T, store_dst4, dst4, 1)
// 4-vector i of the source, through its texel view where the host made one
#ifdef SRC_FLOAT16
TEXEL_OR_BUFFER_LOADER(SRC4_T, src4_at, src4, TEXEL_LOADS, input_texels, texel_halves)
#else
TEXEL_OR_BUFFER_LOADER(SRC4_T, src4_at, src4, TEXEL_LOADS, input_texels, texel_floats)
#endif
#if defined(SRC_FLOAT16) && defined(DST_FLOAT16)
// halves 8j .. 8j + 7 in and out at once (HALF_PAIRS in common.glsl)
HALF_PAIR_LOADER(src8_at, src4, TEXEL_LOADS, input_texels)
HALF_PAIR_STORER(store_dst8, 1)
layout(std430, binding = 0) readonly buffer SourceBits { uint16_t src_bits[]; };
#define CONVERT1(i) src_bits[i]  // the bits as they are, as CONVERT4
uvec4 through_alu8(uvec4 pair) { return uvec4(NARROW4(WIDEN4(pair.xy) + pc.eps), NARROW4(WIDEN4(pair.zw) + pc.eps)); }
#else
#define CONVERT1(i) TO_DST(float(src[i]))
#endif

// Runs `statement` for unit k of this lane's [first, stop), eight units a
// trip: lavapipe, alternating runs, took 0.74-0.96x the time of one a trip
// on shapes from memory (1x4x2048x2048 fp16 10.3 -> 7.6 ms at four, fp32
// 15.6 -> 12.9 ms from four to eight; sixteen gained nothing). The same in
// the apply kernels' loop gained nothing: they are not waiting on loads as
// the copy is.
#define EIGHT_A_TRIP(first, stop, k, statement)                    \
    for (uint trip_ = (first); trip_ < (stop); trip_ += 8u * LANES) { \
        [[unroll]] for (uint r_ = 0u; r_ < 8u; ++r_) {              \
            uint k = trip_ + r_ * LANES;                            \
            if (k < (stop))                                         \
                statement;                                          \
        }                                                           \
    }

const uint TILE = 32u;
shared float tile[TILE][TILE + 1u];

void copy_same_layout(uint workgroup)
{
    uint unit = VEC4 ? 4u : 1u;
    uint units = pc.seg_len / unit;
    uint begin = workgroup * pc.chunk_len;
    if (begin >= units)
        return;
    uint first, stop;
    lane_range(begin, min(units, begin + pc.chunk_len), first, stop);
#if defined(SRC_FLOAT16) && defined(DST_FLOAT16)
    if (VEC4 && HALF_PAIRS(true, begin * 4u, min(units, begin + pc.chunk_len) * 4u)) {
        // the same walk over pairs of units
        lane_range(begin / 2u, min(units, begin + pc.chunk_len) / 2u, first, stop);
        EIGHT_A_TRIP(first, stop, j, store_dst8(j, THROUGH_ALU ? through_alu8(src8_at(j)) : src8_at(j)))
        return;
    }
#endif
    if (VEC4) {
        EIGHT_A_TRIP(first, stop, k, store_dst4(k, THROUGH_ALU ? NARROW4(WIDEN4(src4_at(k)) + pc.eps) : CONVERT4(src4_at(k))))
    } else {
        for (uint i = first; i < stop; i += LANES) {
            // statements, not ?: (a 16-bit value would need the Int16 capability)
            if (THROUGH_ALU)
                dst[i] = TO_DST(float(src[i]) + pc.eps);
            else
                dst[i] = CONVERT1(i);
        }
    }
}

// One 32 x 32 tile of (channel, pixel) of one sample: read along the source's
// fast axis, write along the destination's. Workgroup size 256: 8 rows at a time.
void transpose_tile(uint workgroup)
{
    uint plane = pc.seg_len, channels = pc.channels;
    uint pixel_tiles = (plane + TILE - 1u) / TILE;
    uint channel_tiles = (channels + TILE - 1u) / TILE;
    uint n = workgroup / (pixel_tiles * channel_tiles);
    if (n >= pc.samples)
        return;
    uint c0 = (workgroup / pixel_tiles) % channel_tiles * TILE;
    uint p0 = workgroup % pixel_tiles * TILE;
    uint fast = gl_LocalInvocationIndex % TILE, slow = gl_LocalInvocationIndex / TILE;
    uint rows = gl_WorkGroupSize.x / TILE;
    // Source NCHW: fast axis is the pixel; NHWC: the channel.
    for (uint s = slow; s < TILE; s += rows) {
        uint c = SRC_NHWC ? c0 + fast : c0 + s;
        uint p = SRC_NHWC ? p0 + s : p0 + fast;
        if (c < channels && p < plane) {
            uint i = SRC_NHWC ? (n * plane + p) * channels + c : (n * channels + c) * plane + p;
            tile[c - c0][p - p0] = float(src[i]);
        }
    }
    barrier();
    for (uint s = slow; s < TILE; s += rows) {
        uint c = DST_NHWC ? c0 + fast : c0 + s;
        uint p = DST_NHWC ? p0 + s : p0 + fast;
        if (c < channels && p < plane) {
            uint i = DST_NHWC ? (n * plane + p) * channels + c : (n * channels + c) * plane + p;
            dst[i] = TO_DST(tile[c - c0][p - p0]);
        }
    }
}

void main()
{
    if (SRC_NHWC == DST_NHWC)
        copy_same_layout(flat_workgroup_id());
    else
        transpose_tile(flat_workgroup_id());
}
