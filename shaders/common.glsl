// Shared by every inorm kernel: the push-constant block (mirrored by
// struct vk_push_constants in src/vulkan/vk_backend.c), data types, the
// activation, and how a workgroup's lanes walk a chunk.
//
// Geometry. NCHW: a tensor is a row of `seg_count` segments of `seg_len`
// elements (a segment is channels_per_seg whole channel planes of one
// sample), each cut into `chunks` chunks of `chunk_len` elements; one
// workgroup handles one (segment, chunk). NHWC: one workgroup handles a tile
// of `channel_block` channels by a chunk of `chunk_len` pixels of one sample;
// lanes side by side take neighbouring channels. Partials are kept per
// (n, c, chunk) in NHWC, per (segment, chunk) in NCHW; either way a segment's
// partials are contiguous. Workgroups are laid out over a 2D grid so that more
// than 65535 of them can run.

#extension GL_KHR_shader_subgroup_basic : enable
#ifdef WIDE_STORES
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
#endif

#ifdef FLOAT16
#extension GL_EXT_shader_16bit_storage : require
#define DATA_T float16_t
#define DATA4_T uvec2  // four halves: see in4
// computed outputs are stored as half bits that the kernel rounds itself:
// see out4 and out1
#define OUT4_T uvec2
#define OUT_T uint16_t
#else
#define DATA_T float
#define DATA4_T vec4
#define OUT4_T vec4
#define OUT_T float
#endif

// The binary16 bits of v, rounded to nearest even, overflow to Inf, NaN to
// 0x7e00 with its sign: inorm_half_bits_from_double's float step
// (src/internal.h) in integer lanes, so the GPU and CPU paths round alike on
// every device. A driver's own float -> half conversion may round toward
// zero instead (Vulkan leaves the choice to the implementation), and on
// lavapipe it cost a third of an fp16 apply (1x64x256x256 instance norm: 7.5
// -> 5.0 ms without it).
//
// half_magnitudes: the bits of four magnitudes (sign bits clear).
uvec4 half_magnitudes(uvec4 magnitude)
{
    // normal halves: drop 13 mantissa bits to nearest even (a carry bumps
    // the exponent) and rebias 127 -> 15 in the same sum (112 << 23 is whole
    // multiples of the dropped bits; magnitudes below it wrap, and are
    // subnormal halves, replaced next)
    uvec4 half_bits = (magnitude + (0xfffu - (112u << 23u)) + ((magnitude >> 13u) & 1u)) >> 13u;
    // below 2^-14: adding 0.5, whose ulp is 2^-24 (the subnormal spacing),
    // rounds to a whole number of 2^-24 in the low bits (float denormals,
    // which a device may flush, all round to 0 anyway)
    uvec4 subnormal = floatBitsToUint(uintBitsToFloat(magnitude) + 0.5) - 0x3f000000u;
    half_bits = mix(half_bits, subnormal, lessThan(magnitude, uvec4(0x38800000u)));  // 2^-14
    // from 65520 the rounding reaches 0x7c00 (Inf) or beyond
    half_bits = min(half_bits, uvec4(0x7c00u));
    return mix(half_bits, uvec4(0x7e00u), greaterThan(magnitude, uvec4(0x7f800000u)));
}
// Four values, packed two to a uint, the first in the low bits (Vulkan
// devices are little-endian).
uvec2 half4_bits(vec4 v)
{
    uvec4 bits = floatBitsToUint(v);
    uvec4 half_bits = half_magnitudes(bits & 0x7fffffffu);
    // the signs go straight to bits 15 and 31 of each pair
    uvec2 signs = ((bits.xz >> 16u) & 0x8000u) | (bits.yw & 0x80000000u);
    return uvec2(half_bits.x | (half_bits.y << 16u), half_bits.z | (half_bits.w << 16u)) | signs;
}
// One value (the compiler drops the three unused lanes).
uint half_bits(float v)
{
    uint bits = floatBitsToUint(v);
    return half_magnitudes(uvec4(bits & 0x7fffffffu)).x | ((bits >> 16u) & 0x8000u);
}
// Four halves read as two uints: on lavapipe a buffer load costs per
// component, and a 4-wide copy of halves took 1.6x longer as f16vec4 than as
// uvec2 (8x256x64x64: 5.7 -> 3.5 ms). Exact: every half is a float.
vec4 halves4(uvec2 bits) { return vec4(unpackHalf2x16(bits.x), unpackHalf2x16(bits.y)); }

#ifdef FLOAT16
vec4 in4(uvec2 v) { return halves4(v); }
OUT4_T out4(vec4 v) { return half4_bits(v); }
// a macro: a function returning a 16-bit value would need the Int16 capability
#define out1(v) uint16_t(half_bits(v))
// eight values as half bits (HALF_PAIRS loops)
uvec4 out8(vec4 low, vec4 high) { return uvec4(half4_bits(low), half4_bits(high)); }
#else
uvec4 out8(vec4 low, vec4 high) { return uvec4(0u); }  // fp32: never called (HALF_PAIRS is false)
vec4 in4(vec4 v) { return v; }
OUT4_T out4(vec4 v) { return v; }
#define out1(v) (v)
#endif

// x (binding 0) and the style read through uniform texel buffers (bindings
// 10 and 11: views of the same bytes as R32G32B32A32_UINT, one texel a
// 4-vector of fp32 or two of fp16: texel_halves takes one, HALF_PAIRS loops
// both) instead of the
// storage buffers, where the host made such views (TEXEL_LOADS,
// STYLE_TEXEL_LOADS). lavapipe loops over the lanes of every storage-buffer
// load, component by component; a texel fetch loads each lane's 16 bytes at
// once: a vec4 copy ran 1.2-1.5x faster reading texels (stores stay
// storage-buffer writes: imageStore was 2.5-4x slower).
layout(constant_id = 17) const bool TEXEL_LOADS = false;
layout(constant_id = 18) const bool STYLE_TEXEL_LOADS = false;
layout(binding = 10) uniform usamplerBuffer input_texels;
layout(binding = 11) uniform usamplerBuffer style_texels;
vec4 texel_floats(usamplerBuffer texels, uint i) { return uintBitsToFloat(texelFetch(texels, int(i))); }
// The kernel's layout (convert.comp: same-layout copies, which read like NCHW).
layout(constant_id = 4) const bool NHWC = false;
// fp16 lanes that take their 4-vectors in pairs, one 16-byte load each,
// chosen per pipeline by the host: norm_fused.comp's NCHW teams
// (values[2k], values[2k + 1]), and NHWC lanes of an even number of channel
// quads (slot_quad). A constant: lavapipe would run both ways of a
// per-dispatch test.
layout(constant_id = 19) const bool HALF_PAIR_UNITS = false;
// 4-vector i of halves: NHWC kernels that load a quad at a time read the
// host's 8-byte-texel view of fp16 tensors (a texel each), the others its
// 16-byte one (half a texel).
uvec2 texel_halves(usamplerBuffer texels, uint i)
{
    if (NHWC && !HALF_PAIR_UNITS)
        return texelFetch(texels, int(i)).xy;
    uvec4 pair = texelFetch(texels, int(i >> 1u));
    return (i & 1u) != 0u ? pair.zw : pair.xy;
}
#ifdef FLOAT16
#define DATA_TEXEL texel_halves
#else
#define DATA_TEXEL texel_floats
#endif
// Defines T name(uint i): 4-vector i of `array`, or with use_texels the same
// 4-vector fetched from `texels` by fetch (texel_floats or texel_halves).
#define TEXEL_OR_BUFFER_LOADER(T, name, array, use_texels, texels, fetch) \
    T name(uint i)                                                          \
    {                                                                       \
        if (use_texels)                                                     \
            return fetch(texels, i);                                        \
        return array[i];                                                    \
    }

// Whether a loop over elements [begin, end) of fp16 4-vectors takes them
// in pairs: 8 halves (one 16-byte texel, HALF_PAIR_LOADER) a lane at a time,
// where the range starts and ends on a pair. On lavapipe a texel fetch costs
// about as much at 8 bytes as at 16, and the fetches were most of the
// statistics pass's time.
#ifdef FLOAT16
#define HALF_PAIRS(use_vec4, begin, end) (use_vec4 && (begin) % 8u == 0u && (end) % 8u == 0u)
#else
#define HALF_PAIRS(use_vec4, begin, end) false
#endif

// Defines uvec4 name(uint j): halves 8j .. 8j + 7 of the uvec2 `array`
// (fp16), one texel of `texels` with use_texels. fp32 builds define it too,
// returning nothing, since the kernels' code names it where HALF_PAIRS is
// false.
#ifdef FLOAT16
#define HALF_PAIR_LOADER(name, array, use_texels, texels)         \
    uvec4 name(uint j)                                            \
    {                                                             \
        if (use_texels)                                           \
            return texelFetch(texels, int(j));                    \
        return uvec4(array[2u * j], array[2u * j + 1u]);          \
    }
#else
#define HALF_PAIR_LOADER(name, array, use_texels, texels) \
    uvec4 name(uint j) { return uvec4(0u); }
#endif

// Defines void name(uint i, T v), storing 4-vector v (vec4, or four halves
// as uvec2) at index i of `array`, or with WIDE_STORES the same bits as
// 64-bit words (WIDE_T: u64vec2 for vec4, uint64_t for uvec2) through a
// second view of the binding. lavapipe stores a storage-buffer vector
// component by component, as it loads one, so that two 64-bit components
// instead of four floats (one instead of two uints of halves) make the
// outputs cheaper: instance norm took 0.66-0.98 of the time in fp16
// (mostly 0.66-0.80), 0.77-0.99 in fp32. Modules of their own (the Int64 capability), used on
// CPU devices that have shaderInt64 (the host's wide_stores).
#ifdef WIDE_STORES
u64vec2 wide_bits(vec4 v)
{
    uvec4 bits = floatBitsToUint(v);
    return u64vec2(packUint2x32(bits.xy), packUint2x32(bits.zw));
}
uint64_t wide_bits(uvec2 v) { return packUint2x32(v); }
#define VEC4_STORER(T, WIDE_T, name, array, binding_index)                                          \
    layout(std430, binding = binding_index) writeonly buffer name##_words { WIDE_T name##_word[]; }; \
    void name(uint i, T v) { name##_word[i] = wide_bits(v); }
#else
#define VEC4_STORER(T, WIDE_T, name, array, binding_index) \
    void name(uint i, T v) { array[i] = v; }
#endif
// Defines void name(uint j, uvec4 v): halves 8j .. 8j + 7 (fp16 outputs
// of HALF_PAIRS loops) as one 16-byte store; on lavapipe a store costs per
// component, so two 64-bit words with WIDE_STORES. fp32 builds define a
// name that is never called.
#if defined(FLOAT16) && defined(WIDE_STORES)
#define HALF_PAIR_STORER(name, binding_index)                                                           \
    layout(std430, binding = binding_index) writeonly buffer name##_pairs { u64vec2 name##_pair[]; }; \
    void name(uint j, uvec4 v) { name##_pair[j] = u64vec2(packUint2x32(v.xy), packUint2x32(v.zw)); }
#elif defined(FLOAT16)
#define HALF_PAIR_STORER(name, binding_index)                                                         \
    layout(std430, binding = binding_index) writeonly buffer name##_pairs { uvec4 name##_pair[]; }; \
    void name(uint j, uvec4 v) { name##_pair[j] = v; }
#else
#define HALF_PAIR_STORER(name, binding_index) \
    void name(uint j, uvec4 v) {}
#endif
#ifdef FLOAT16
#define OUT_WIDE_T uint64_t
#else
#define OUT_WIDE_T u64vec2
#endif

layout(local_size_x_id = 0) in;
// Content elements are read as 4-vectors. NCHW: requires seg_len % 4 == 0,
// and for group norm plane_len % 4 == 0. NHWC: C % 4 == 0 and workgroups of
// one subgroup; each lane then takes 4 neighbouring channels.
layout(constant_id = 1) const bool VEC4 = false;
// The epilogue, fixed per pipeline so that no per-element branch remains.
layout(constant_id = 9) const uint ACTIVATION = 0u;  // ACTIVATION_* below
layout(constant_id = 10) const bool BLEND = false;   // alpha != 1: y = x + alpha * (t - x)
// The workgroup is exactly one subgroup (the host makes its size the
// device's subgroup size): reductions are subgroup operations alone and no
// kernel calls barrier(). Chosen on CPU devices, where a barrier turns each
// subgroup into a coroutine that saves its state at every barrier; lavapipe
// runs a whole kernel containing one about 3x slower (measured: the
// statistics of 1x3x1024x1024 took 5.4 ms with the workgroup merge's barriers,
// 2.0 ms without).
layout(constant_id = 11) const bool SUBGROUP_WORKGROUP = false;
// NHWC with VEC4: channel quads per lane (see norm_stats.comp's ACCUMULATE_NHWC4).
layout(constant_id = 13) const uint QUADS_PER_LANE = 1u;
// NHWC with VEC4 where C % 4 != 0 (RGB images): FOLD neighbouring pixels are
// read as one pixel of C * FOLD "virtual channels" (C * FOLD % 4 == 0), so
// that lanes still load vec4s: C = 3 reads 4 pixels as 3 vec4. Virtual
// channel v is channel v % C; its statistics are kept apart, FOLD partials
// per channel and chunk, and merged like a group's channels. Not with masks
// (a mask weighs real pixels). seg_len, chunk_len and the style's count
// virtual pixels (plane_len / FOLD); plane_len stays the real plane.
layout(constant_id = 14) const uint FOLD = 1u;

// What norm_apply.comp and norm_fused.comp do (their MODE, specialization
// constant 3; vk_backend.c's MODE_* enum)
const uint MODE_NORMALIZE = 0u;
const uint MODE_ADAIN = 1u;
const uint MODE_FINALIZE = 2u;

const uint FLAG_GAMMA = 1u;        // gamma / scale / gamma bank is bound
const uint FLAG_BETA = 2u;         // beta / bias / beta bank is bound
const uint FLAG_PER_SAMPLE = 4u;   // gamma/beta are indexed by (n, c), not c
const uint FLAG_UNBIASED = 8u;     // variance divides by weight - 1
const uint FLAG_MEAN_OUT = 16u;    // finalize: write the mean
const uint FLAG_STD_OUT = 32u;     // finalize: write the std
const uint FLAG_BANK = 64u;        // gamma/beta are S x C banks mixed by weights[n, s]
const uint FLAG_MASK = 128u;       // content statistics weighted by a mask
const uint FLAG_STYLE_MASK = 256u; // style statistics weighted by a mask
const uint FLAG_ACCUMULATE = 512u; // finalize: add out_weight * value to mean/std out
const uint FLAG_COEFF_OUT = 1024u; // finalize: write (a, b, shift, offset) per (n, c)
const uint FLAG_LANE_FINALIZE = 2048u; // finalize: one invocation per segment (few partials each)
const uint FLAG_LANE_COEFF = 4096u;    // NHWC apply: each lane merges its channel's partials itself
const uint FLAG_SELF_STATS = 8192u;    // apply: the workgroup reduces its NCHW segment (NHWC: lanes their quads' planes) itself
const uint FLAG_SEGMENT_TILES = 16384u; // NHWC: a tile's channels lie in one segment: one partial per workgroup
const uint FLAG_CHANNELS_INNER = 32768u; // NCHW kernels on NHWC data (layer norm): channel = index % C

const uint ACTIVATION_NONE = 0u;
const uint ACTIVATION_RELU = 1u;
const uint ACTIVATION_LEAKY_RELU = 2u;
const uint ACTIVATION_SILU = 3u;

layout(push_constant) uniform PushConstants {
    uint seg_len;             // NCHW: elements per segment; NHWC: pixels per plane
    uint seg_count;           // segments (N * C / channels_per_seg)
    uint chunk_len;           // NCHW: elements; NHWC: pixels
    uint chunks;              // chunks per segment (NCHW) or per channel plane (NHWC)
    uint style_seg_len;
    uint style_seg_count;
    uint style_chunk_len;
    uint style_chunks;
    uint plane_len;           // H * W of the content
    uint channels;            // C
    uint channels_per_seg;
    uint style_sample_stride; // style planes per content sample: C, or 0 when style N == 1
    uint flags;
    float eps;
    float alpha;              // blend with x: y = x + alpha * (t - x)
    uint style_partial_base;  // index of the first style partial
    uint activation;          // also ACTIVATION (specialized); kept for the layout
    float activation_slope;
    uint channel_block;       // NHWC: channels per tile
    uint channel_blocks;      // NHWC: tiles across C
    uint bank_size;           // FLAG_BANK: S
    uint mask_sample_stride;  // mask values per sample: plane_len, or 0 when the mask's N == 1
    uint style_mask_sample_stride;
    float out_weight;         // FLAG_ACCUMULATE
    uint out_repeat;          // finalize: write each value to this many samples (style N == 1)
    uint coeff_base;          // FLAG_COEFF_OUT / NHWC apply: index of the coefficient table
    uint samples;             // N of the content
    uint out_repeat_first;    // finalize: the first sample of out_repeat (repeats come in slices)
    uint channels_per_partial; // NHWC content: neighbouring channels of one segment merged per partial
} pc;

// Index of the NHWC partial of virtual channel v (see FOLD) of sample n:
// each channel's FOLD * chunks partials are contiguous, and so a segment's.
// With channels_per_partial > 1 (FOLD 1; content only) a partial covers that
// many neighbouring channels of one segment (a lane's quad, or a group inside
// a tile), so a segment has channels_per_seg / channels_per_partial * chunks.
uint nhwc_partial(uint n, uint v, uint chunk, uint chunks)
{
    uint c = v % pc.channels, part = v / pc.channels;
    return ((n * pc.channels + c) * FOLD + part) * chunks + chunk;
}

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
// Without subgroup operations a fixed lane group (32 unless specialized)
// gives the same contiguous-block walk; the workgroup size is a multiple of
// it. The copy sets it to the subgroup size where it runs workgroups of one
// subgroup: 32 lanes there would be 4 subgroups taking turns along a stride.
layout(constant_id = 12) const uint LANE_GROUP_WIDTH = 32u;
#define LANES LANE_GROUP_WIDTH
#define LANE (gl_LocalInvocationIndex % LANE_GROUP_WIDTH)
#define LANE_GROUP (gl_LocalInvocationIndex / LANE_GROUP_WIDTH)
#define LANE_GROUPS (gl_WorkGroupSize.x / LANE_GROUP_WIDTH)
#endif

// The units [first, stop) stepping by LANES that this lane handles out of the
// workgroup's [begin, end). Each lane group walks one contiguous block (lanes
// side by side in it), which keeps GPU loads coalesced and, on lavapipe,
// keeps each subgroup on its own memory between barriers. The trip count is
// at most ceil((end - begin) / workgroup size) + 1.
void lane_range(uint begin, uint end, out uint first, out uint stop)
{
    uint per_group = (end - begin + LANE_GROUPS - 1u) / LANE_GROUPS;
    per_group = (per_group + LANES - 1u) / LANES * LANES;
    uint group_begin = begin + LANE_GROUP * per_group;
    first = group_begin + LANE;
    stop = min(group_begin + per_group, end);
}

// NHWC tiles: this lane's channel within the block and its pixel row.
uint tile_channel() { return gl_LocalInvocationIndex % pc.channel_block; }
uint tile_row() { return gl_LocalInvocationIndex / pc.channel_block; }
uint tile_rows() { return gl_WorkGroupSize.x / pc.channel_block; }

// NHWC with VEC4: the channel quad in slot k (< QUADS_PER_LANE) of the lane
// whose first slot's quad would be q = block * channel_block *
// QUADS_PER_LANE + tile_channel(): the lanes side by side take neighbouring
// quads, QUADS_PER_LANE rounds of them; with HALF_PAIR_UNITS neighbouring
// pairs of quads (slots 2m and 2m + 1 are quads 2r and 2r + 1, one 16-byte
// texel of halves). Either way the tile's lanes cover the same quads.
uint slot_quad(uint q, uint k)
{
    if (HALF_PAIR_UNITS)
        return q + tile_channel() + (k / 2u) * 2u * pc.channel_block + (k & 1u);
    return q + k * pc.channel_block;
}

// With workgroups of one subgroup the rows of a tile take consecutive chunks
// of the plane (each lane writes its own partial: no rows to merge without a
// barrier); otherwise they interleave over the pixels of one chunk.
uint tile_workgroup_chunks(uint chunks)
{
    return SUBGROUP_WORKGROUP ? (chunks + tile_rows() - 1u) / tile_rows() : chunks;
}
uint tile_lane_chunk(uint workgroup_chunk)
{
    return SUBGROUP_WORKGROUP ? workgroup_chunk * tile_rows() + tile_row() : workgroup_chunk;
}
// Workgroup id -> (sample n, channel block, this lane's chunk). Channel
// blocks vary fastest: neighbouring workgroups read neighbouring bytes of the
// same pixel rows (measured on lavapipe, 8x256x64x64 fp32: chunks fastest
// left each workgroup 128 bytes of every 1 KB row, at a third of the speed).
void tile_of(uint id, uint chunks, out uint n, out uint block, out uint chunk)
{
    uint workgroup_chunks = tile_workgroup_chunks(chunks);
    block = id % pc.channel_blocks;
    chunk = tile_lane_chunk((id / pc.channel_blocks) % workgroup_chunks);
    n = id / (pc.channel_blocks * workgroup_chunks);
}
// FLAG_SEGMENT_TILES: the partial of stats workgroup `id` (its channels merged):
// per (sample, channel block, workgroup chunk), so that a segment's, its
// channel blocks' in turn, are contiguous.
uint tile_partial(uint id, uint chunks)
{
    uint workgroup_chunks = tile_workgroup_chunks(chunks);
    uint block = id % pc.channel_blocks;
    uint workgroup_chunk = (id / pc.channel_blocks) % workgroup_chunks;
    uint n = id / (pc.channel_blocks * workgroup_chunks);
    return (n * pc.channel_blocks + block) * workgroup_chunks + workgroup_chunk;
}
// Partials per NHWC segment: per channel (FOLD per channel) and chunk, or
// (FLAG_SEGMENT_TILES) per channel block and workgroup chunk.
uint nhwc_segment_partials()
{
    if ((pc.flags & FLAG_SEGMENT_TILES) != 0u)
        return pc.channel_blocks / (pc.channels / pc.channels_per_seg) * tile_workgroup_chunks(pc.chunks);
    return pc.channels_per_seg / pc.channels_per_partial * pc.chunks * FOLD;
}

// The content partial of the channels_per_partial channels from c (FOLD 1).
uint merged_partial(uint n, uint c, uint chunk)
{
    return (n * pc.channels + c) / pc.channels_per_partial * pc.chunks + chunk;
}
uint tile_pixel_offset() { return SUBGROUP_WORKGROUP ? 0u : tile_row(); }
uint tile_pixel_step() { return SUBGROUP_WORKGROUP ? 1u : tile_rows(); }

// NaN passes through every activation (comparisons with NaN are false).
float activate(float v)
{
    if (ACTIVATION == ACTIVATION_RELU)
        return v < 0.0 ? 0.0 : v;
    if (ACTIVATION == ACTIVATION_LEAKY_RELU)
        return v < 0.0 ? v * pc.activation_slope : v;
    if (ACTIVATION == ACTIVATION_SILU)
        return v / (1.0 + exp(-v));
    return v;
}

vec4 activate4(vec4 v)
{
    return vec4(activate(v.x), activate(v.y), activate(v.z), activate(v.w));
}
