#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
// Finishes the statistics of a segment from its partials (Chan merge) and,
// per MODE:
//   MODE_NORMALIZE  t = a[n,c] * (x - mean) + b[n,c]: a = gamma / std, b = beta, where
//                   gamma/beta are per channel, per (n, c), or mixed from S x C banks
//   MODE_ADAIN      a = std_style / std_x, b = mean_style
//   then y = activation(x + alpha * (t - x)) (alpha 1 leaves t as it is)
//   MODE_FINALIZE   one workgroup per segment: writes mean and std = sqrt(var + eps)
//                   (optionally accumulated with a weight, repeated over samples)
//                   and/or the coefficient table (a, b, shift, offset) per (n, c)
//                   that the NHWC apply reads.
// NCHW: one workgroup per (segment, chunk), the same grid as norm_stats.comp,
// each merging its segment's partials itself; or (FLAG_SELF_STATS, segments
// of one chunk) reducing its segment itself first, with no statistics pass. NHWC: the tiles of
// norm_stats.comp, reading the coefficient table of a MODE_FINALIZE pass or
// merging their channels' partials per lane; or (FLAG_SELF_STATS, instance
// norm and group norm of whole-quad groups on planes of one chunk) each lane
// reducing its channel quads over the whole plane first (a group's lanes
// adding theirs up).
// The mean is kept as shift + offset (shift a data value, offset small) and
// x - mean is evaluated as (x - shift) - offset: exact for data near the
// shift, so the result does not carry the mean's fp32 rounding.
//
// Bindings: 0 x (read), 1 y (write; may be the same buffer as x),
//           2 partials and coefficient table, 3 gamma / scale / gamma bank,
//           4 beta / bias / beta bank, 5 mean out, 6 std out,
//           7 bank weights (N x S). Unused bindings hold any buffer.
// Specialization: 0 workgroup size, 1 VEC4, 3 MODE, 4 NHWC, 9 ACTIVATION, 10 BLEND.
// Defines: FLOAT16 (16-bit storage data), USE_SUBGROUP_ARITHMETIC.

#include "common.glsl"
#include "reduce.glsl"
#include "accumulate.glsl"

layout(constant_id = 3) const uint MODE = MODE_NORMALIZE;

layout(std430, binding = 0) readonly buffer Input { DATA_T x[]; };
layout(std430, binding = 0) readonly buffer Input4 { DATA4_T x4[]; };
layout(std430, binding = 1) writeonly buffer Output { OUT_T y[]; };
layout(std430, binding = 1) writeonly buffer Output4 { OUT4_T y4[]; };
VEC4_STORER(OUT4_T, OUT_WIDE_T, store_y4, y4, 1)
HALF_PAIR_STORER(store_y8, 1)
layout(std430, binding = 2) buffer Partials { vec4 partials[]; };
layout(std430, binding = 3) readonly buffer Gamma { float gamma[]; };
layout(std430, binding = 4) readonly buffer Beta { float beta[]; };
layout(std430, binding = 5) buffer MeanOut { float mean_out[]; };
layout(std430, binding = 6) buffer StdOut { float std_out[]; };
layout(std430, binding = 7) readonly buffer BankWeights { float bank_weights[]; };
// 4-vector i of x, through its texel view where the host made one
TEXEL_OR_BUFFER_LOADER(DATA4_T, x4_at, x4, TEXEL_LOADS, input_texels, DATA_TEXEL)
HALF_PAIR_LOADER(x8_at, x4, TEXEL_LOADS, input_texels)

struct Stats {
    float shift;   // mean = shift + offset
    float offset;
    float std;     // sqrt(var + eps)
};

Stats finish_stats(float shift, float offset, float m2, float weight)
{
    bool unbiased = (pc.flags & FLAG_UNBIASED) != 0u;
    float var = m2 / (unbiased ? weight - 1.0 : weight);
    var = var < 0.0 ? 0.0 : var;  // not max(): a NaN variance must stay NaN
    return Stats(shift, offset, sqrt(var + pc.eps));
}

// Statistics from `count` partials (shift, shifted mean, M2, weight), merged
// by the whole workgroup. Two passes over the partials: the mean's offset
// from the first partial's shift, then the M2s plus each partial's deviation.
Stats merge_partials(uint base, uint count)
{
    float shift = partials[base].x;
    if (count == 1u) {
        vec4 only = partials[base];
        return finish_stats(shift, only.y, only.z, only.w);
    }
    vec2 own = vec2(0.0);
    for (uint p = gl_LocalInvocationIndex; p < count; p += gl_WorkGroupSize.x) {
        vec4 part = partials[base + p];
        if (part.w > 0.0)
            own += vec2(part.w, part.w * ((part.x - shift) + part.y));
    }
    vec2 sums = workgroup_sum(own);
    float offset = sums.y / sums.x;
    float own_m2 = 0.0;
    for (uint p = gl_LocalInvocationIndex; p < count; p += gl_WorkGroupSize.x) {
        vec4 part = partials[base + p];
        float d = ((part.x - shift) + part.y) - offset;
        if (part.w > 0.0)
            own_m2 += part.z + part.w * d * d;
    }
    return finish_stats(shift, offset, workgroup_sum(vec2(own_m2, 0.0)).x, sums.x);
}

// The same by one invocation alone, for segments with few partials.
Stats merge_partials_lane(uint base, uint count)
{
    float shift = partials[base].x;
    float weight = 0.0, weighted = 0.0;
    for (uint p = 0u; p < count; ++p) {
        vec4 part = partials[base + p];
        if (part.w > 0.0) {
            weight += part.w;
            weighted += part.w * ((part.x - shift) + part.y);
        }
    }
    float offset = weighted / weight;
    float m2 = 0.0;
    for (uint p = 0u; p < count; ++p) {
        vec4 part = partials[base + p];
        float d = ((part.x - shift) + part.y) - offset;
        if (part.w > 0.0)
            m2 += part.z + part.w * d * d;
    }
    return finish_stats(shift, offset, m2, weight);
}

uint unmasked_at(uint i)
{
    return i;
}

// NCHW, FLAG_SELF_STATS: the apply workgroup reduces its whole segment itself
// (one chunk, no mask, no style), then normalizes it: one dispatch, no
// partials; the second read of the segment comes from cache.
Stats self_stats(uint segment)
{
    Moments moments = Moments(0.0, 0.0, 0.0);
    float shift;
    uint begin = segment * pc.seg_len, end = begin + pc.seg_len;
    // no mask: the mask arguments only name buffers of the right types
    ACCUMULATE_NCHW(moments, shift, x, x4_at, x8_at, VEC4, false, gamma, partials, unmasked_at, begin, end)
    moments = workgroup_merge(moments);
    return finish_stats(shift, moments.mean, moments.m2, moments.weight);
}

// lane: merged by this invocation alone (FLAG_LANE_FINALIZE), else by the workgroup.
Stats segment_stats(uint segment, bool lane)
{
    if (!NHWC && (pc.flags & FLAG_SELF_STATS) != 0u)
        return self_stats(segment);
    uint per_segment = NHWC ? nhwc_segment_partials() : pc.chunks;
    return lane ? merge_partials_lane(segment * per_segment, per_segment)
                : merge_partials(segment * per_segment, per_segment);
}

Stats style_stats(uint sample_index, uint channel, bool lane)
{
    uint count = pc.style_chunks * FOLD;
    uint base = pc.style_partial_base + (sample_index * pc.style_sample_stride + channel) * count;
    return lane ? merge_partials_lane(base, count) : merge_partials(base, count);
}

// (a, b) of channel c of sample n for MODE_NORMALIZE.
vec2 affine(Stats st, uint n, uint c)
{
    float g = 1.0, b = 0.0;
    if ((pc.flags & FLAG_BANK) != 0u) {
        // Conditional instance norm: a weighted mix of the S styles' parameters.
        g = 0.0;
        for (uint s = 0u; s < pc.bank_size; ++s) {
            float w = bank_weights[n * pc.bank_size + s];
            g += w * ((pc.flags & FLAG_GAMMA) != 0u ? gamma[s * pc.channels + c] : 1.0);
            b += (pc.flags & FLAG_BETA) != 0u ? w * beta[s * pc.channels + c] : 0.0;
        }
    } else {
        uint index = (pc.flags & FLAG_PER_SAMPLE) != 0u ? n * pc.channels + c : c;
        if ((pc.flags & FLAG_GAMMA) != 0u)
            g = gamma[index];
        if ((pc.flags & FLAG_BETA) != 0u)
            b = beta[index];
    }
    return vec2(g / st.std, b);
}

// The apply's coefficients (a, b, shift, offset) of channel c of sample n,
// whose segment has statistics st. Every invocation calls it when !lane
// (AdaIN merges the style's partials with the workgroup).
vec4 channel_coefficients(Stats st, uint n, uint c, bool lane)
{
    if (MODE == MODE_ADAIN) {
        Stats style_st = style_stats(n, c, lane);
        return vec4(style_st.std / st.std, style_st.shift + style_st.offset, st.shift, st.offset);
    }
    return vec4(affine(st, n, c), st.shift, st.offset);
}

float finish1(float v, float t)
{
    if (BLEND)
        t = v + pc.alpha * (t - v);
    return activate(t);
}

vec4 finish4(vec4 v, vec4 t)
{
    if (BLEND)
        t = v + pc.alpha * (t - v);
    return activate4(t);
}

// Writes a segment's mean/std and/or coefficient table entries. lane: this
// invocation does the whole segment; else the workgroup shares it.
void finalize(uint segment, bool lane)
{
    Stats st = segment_stats(segment, lane);
    uint segs_per_sample = pc.channels / pc.channels_per_seg;
    uint n = segment / segs_per_sample;
    uint first_channel = (segment % segs_per_sample) * pc.channels_per_seg;
    bool leader = lane || gl_LocalInvocationIndex == 0u;
    if (leader && (pc.flags & (FLAG_MEAN_OUT | FLAG_STD_OUT)) != 0u) {
        bool accumulate = (pc.flags & FLAG_ACCUMULATE) != 0u;
        float mean = st.shift + st.offset;
        for (uint r = pc.out_repeat_first; r < pc.out_repeat_first + pc.out_repeat; ++r) {
            uint index = r * pc.seg_count + segment;
            if ((pc.flags & FLAG_MEAN_OUT) != 0u)
                mean_out[index] = (accumulate ? mean_out[index] : 0.0) + pc.out_weight * mean;
            if ((pc.flags & FLAG_STD_OUT) != 0u)
                std_out[index] = (accumulate ? std_out[index] : 0.0) + pc.out_weight * st.std;
        }
    }
    if ((pc.flags & FLAG_COEFF_OUT) != 0u) {
        if (MODE == MODE_ADAIN) {
            vec4 coefficients = channel_coefficients(st, n, first_channel, lane);
            if (leader)
                partials[pc.coeff_base + n * pc.channels + first_channel] = coefficients;
        } else {
            uint first_k = lane ? 0u : gl_LocalInvocationIndex, step = lane ? 1u : gl_WorkGroupSize.x;
            for (uint k = first_k; k < pc.channels_per_seg; k += step)
                partials[pc.coeff_base + n * pc.channels + first_channel + k] =
                    channel_coefficients(st, n, first_channel + k, lane);
        }
    }
}

// a * ((v - shift) - offset) + b per channel of v, then blend and activation
vec4 normalized4(vec4 v, vec4 a, vec4 b, vec4 shift, vec4 offset)
{
    return finish4(v, a * ((v - shift) - offset) + b);
}

vec4 normalized4(vec4 v, vec2 ab, Stats st)
{
    return normalized4(v, vec4(ab.x), vec4(ab.y), vec4(st.shift), vec4(st.offset));
}

// Elements [begin, end) (whole 4-vectors) with the same (a, b): this lane's
// share, in 8-half pairs where HALF_PAIRS allows.
void apply_range(uint begin, uint end, vec2 ab, Stats st)
{
    uint first, stop;
    if (HALF_PAIRS(true, begin, end)) {
        lane_range(begin / 8u, end / 8u, first, stop);
        for (uint j = first; j < stop; j += LANES) {
            uvec4 pair = x8_at(j);
            store_y8(j, out8(normalized4(halves4(pair.xy), ab, st), normalized4(halves4(pair.zw), ab, st)));
        }
        return;
    }
    lane_range(begin / 4u, end / 4u, first, stop);
    for (uint i = first; i < stop; i += LANES)
        store_y4(i, out4(normalized4(in4(x4_at(i)), ab, st)));
}

void apply_nchw(uint workgroup)
{
    uint segment = workgroup / pc.chunks;
    if (segment >= pc.seg_count)
        return;  // grid padding: the whole workgroup leaves together
    uint chunk = workgroup % pc.chunks;
    Stats st = segment_stats(segment, false);
    uint segs_per_sample = pc.channels / pc.channels_per_seg;
    uint n = segment / segs_per_sample;
    uint first_channel = (segment % segs_per_sample) * pc.channels_per_seg;
    vec2 ab;
    if (MODE == MODE_ADAIN) {
        Stats style_st = style_stats(n, first_channel, false);
        ab = vec2(style_st.std / st.std, style_st.shift + style_st.offset);
    } else {
        ab = affine(st, n, first_channel);
    }

    uint seg_begin = segment * pc.seg_len;
    uint begin = seg_begin + chunk * pc.chunk_len;
    uint end = seg_begin + min(pc.seg_len, (chunk + 1u) * pc.chunk_len);
    uint first, stop;
    if (VEC4) {
        lane_range(begin / 4u, end / 4u, first, stop);
        if ((pc.flags & FLAG_CHANNELS_INNER) != 0u) {
            // NHWC layer norm, its sample one segment of one chunk: lanes
            // side by side take neighbouring channel quads of a pixel, each
            // keeping its quads' (a, b) while it walks their pixels (the host
            // plans this where the quads per pixel divide the workgroup size
            // or it divides them)
            uint quads = pc.channels / 4u, lanes = gl_WorkGroupSize.x;
            uint rows = max(lanes / quads, 1u);
            for (uint q = gl_LocalInvocationIndex % quads; q < quads; q += lanes) {
                vec4 a, b;
                [[unroll]] for (uint j = 0u; j < 4u; ++j) {
                    vec2 channel_ab = affine(st, n, 4u * q + j);
                    a[j] = channel_ab.x;
                    b[j] = channel_ab.y;
                }
                for (uint p = gl_LocalInvocationIndex / quads; p < pc.plane_len; p += rows) {
                    uint i = seg_begin / 4u + p * quads + q;
                    store_y4(i, out4(normalized4(in4(x4_at(i)), a, b, vec4(st.shift), vec4(st.offset))));
                }
            }
        } else if (pc.channels_per_seg == 1u) {
            apply_range(begin, end, ab, st);
        } else if (pc.plane_len / 4u < LANES) {
            // group/layer norm of planes narrower than the lanes (4x4 maps):
            // (a, b) per vec4, as a plane at a time would leave lanes idle
            for (uint i = first; i < stop; i += LANES) {
                ab = affine(st, n, first_channel + (i * 4u - seg_begin) / pc.plane_len);
                store_y4(i, out4(normalized4(in4(x4_at(i)), ab, st)));
            }
        } else {
            // group norm: the chunk one channel at a time, so that (a, b) are
            // worked out once per channel, not per element (plane_len % 4 == 0:
            // a vec4 stays in one channel)
            uint first_plane = (begin - seg_begin) / pc.plane_len;
            uint last_plane = (end - 1u - seg_begin) / pc.plane_len;
            for (uint k = first_plane; k <= last_plane; ++k) {
                uint plane_begin = seg_begin + k * pc.plane_len;
                apply_range(max(begin, plane_begin), min(end, plane_begin + pc.plane_len), affine(st, n, first_channel + k), st);
            }
        }
    } else {
        lane_range(begin, end, first, stop);
        for (uint i = first; i < stop; i += LANES) {
            if (pc.channels_per_seg != 1u)
                ab = affine(st, n, first_channel + (i - seg_begin) / pc.plane_len);
            float v = float(x[i]);
            y[i] = out1(finish1(v, ab.x * ((v - st.shift) - st.offset) + ab.y));
        }
    }
}

// NHWC apply: (a, b, shift, offset) of channel c of sample n, merged by this
// lane from the channel's partials when they are few (no finalize dispatch),
// else read from the finalize's coefficient table.
vec4 nhwc_coefficients(uint n, uint c)
{
    if ((pc.flags & FLAG_LANE_COEFF) != 0u)
        return channel_coefficients(segment_stats((n * pc.channels + c) / pc.channels_per_seg, true), n, c, true);
    return partials[pc.coeff_base + n * pc.channels + c];
}

void apply_nhwc(uint workgroup)
{
    uint n, block, chunk;
    tile_of(workgroup, pc.chunks, n, block, chunk);
    uint c = block * pc.channel_block + tile_channel();
    if (n >= pc.samples || tile_row() >= tile_rows() || c >= pc.channels || chunk >= pc.chunks)
        return;  // no barrier follows, so lanes may leave on their own
    vec4 coefficients = nhwc_coefficients(n, c);  // a, b, shift, offset
    uint p_begin = chunk * pc.chunk_len;
    uint p_end = min(pc.plane_len, p_begin + pc.chunk_len);
    for (uint p = p_begin + tile_pixel_offset(); p < p_end; p += tile_pixel_step()) {
        uint i = (n * pc.plane_len + p) * pc.channels + c;
        float v = float(x[i]);
        y[i] = out1(finish1(v, coefficients.x * ((v - coefficients.z) - coefficients.w) + coefficients.y));
    }
}

// The sum of v over this lane's cluster of `width` neighbouring lanes of the
// tile (width divides the tile's lanes), by whole-subgroup sums, one per
// cluster: no clustered subgroup operations needed, and it runs once per
// workgroup. Only the NHWC self-statistics plan calls it, which the host
// makes with subgroup operations only.
float cluster_sum(float v, uint width)
{
#ifdef USE_SUBGROUP_ARITHMETIC
    uint cluster = tile_channel() / width;
    float own = 0.0;
    for (uint first = 0u; first < pc.channel_block; first += width) {
        float sum = subgroupAdd(cluster == first / width ? v : 0.0);
        own = cluster == first / width ? sum : own;
    }
    return own;
#else
    return v;
#endif
}

// The statistics of a group from its lanes' moments, each about
// `reference` (the same on the group's `width` lanes side by side), every
// lane of equal weight.
Stats cluster_group_stats(Moments lane, float reference, uint width)
{
    float mean = cluster_sum(lane.mean, width) / float(width);
    float d = lane.mean - mean;
    float m2 = cluster_sum(lane.m2 + lane.weight * d * d, width);
    return finish_stats(reference, mean, m2, lane.weight * float(width));
}

// FLAG_SELF_STATS: the statistics of the group holding slot k's channel
// quad, each of its channel_per_seg / 4 quads a lane's, the group's lanes
// side by side; or (instance norm) of component j alone.
Stats self_group_stats(vec4 shift, Moments4 moments, float weight, uint j)
{
    if (pc.channels_per_seg == 1u)
        return finish_stats(shift[j], moments.mean[j], moments.m2[j], weight);
    uint width = pc.channels_per_seg / 4u;
    // about the group's first channel's shift (a sum of one non-zero term: exact)
    float reference = cluster_sum(tile_channel() % width == 0u ? shift.x : 0.0, width);
    return cluster_group_stats(quad_moments(shift, moments, weight, reference), reference, width);
}

// The same with HALF_PAIR_UNITS for groups of whole quad pairs: each lane
// holds a pair of the group's quads (its slots 2m and 2m + 1).
Stats self_pair_group_stats(vec4 low_shift, Moments4 low, vec4 high_shift, Moments4 high, float weight)
{
    uint width = pc.channels_per_seg / 8u;
    float reference = cluster_sum(tile_channel() % width == 0u ? low_shift.x : 0.0, width);
    Moments lane = quad_moments(low_shift, low, weight, reference);
    moments_merge(lane, quad_moments(high_shift, high, weight, reference));
    return cluster_group_stats(lane, reference, width);
}

// NHWC, 4 channels per lane, QUADS_PER_LANE quads per lane (see
// norm_stats.comp's stats_nhwc4), row by row.
void apply_nhwc4(uint workgroup)
{
    uint n, block, chunk;
    tile_of(workgroup, pc.chunks, n, block, chunk);
    uint quads = pc.channels * FOLD / 4u;
    uint q = block * pc.channel_block * QUADS_PER_LANE + tile_channel();
    // Tiles of at most a quarter of the workgroup's lanes (C = 4 or 8, and
    // C = 1 or 2 read as folded rows): its rows take the pixels of the
    // workgroup's chunks in turn, so that the lanes load neighbouring pixels
    // side by side (the statistics pass gives each row a chunk of its own
    // instead, which a row's partials need). lavapipe, fp32 1x4x2048x2048
    // instance norm: 0.47 -> 0.75 of the copy shader. Wider tiles (RGB:
    // 3 lanes, 2 rows; C = 16: 4 lanes) were as fast or slower so.
    uint rows = SUBGROUP_WORKGROUP && tile_rows() >= 4u ? tile_rows() : 1u;
    uint first_chunk = chunk - (rows > 1u ? tile_row() : 0u);
    if (n >= pc.samples || tile_row() >= tile_rows() || q >= quads || first_chunk >= pc.chunks)
        return;  // no barrier follows
    // FLAG_SELF_STATS (one chunk per plane): the lane's own channels over
    // the whole plane are all their statistics (group norm: with its
    // neighbours'); the second read below comes from cache.
    bool self = (pc.flags & FLAG_SELF_STATS) != 0u;
    // Lanes merging partials themselves merge once per segment: once for
    // all their channels (FLAG_SEGMENT_TILES), or once per quad where a quad
    // lies in one segment (channels_per_seg % 4 == 0).
    bool lane_coeff = (pc.flags & FLAG_LANE_COEFF) != 0u && !self;
    bool one_segment = lane_coeff && (pc.flags & FLAG_SEGMENT_TILES) != 0u;
    bool quad_segment = lane_coeff && pc.channels_per_seg % 4u == 0u;
    Moments4 moments[QUADS_PER_LANE];
    vec4 self_shift[QUADS_PER_LANE];
    float weight = 0.0;
    [[unroll]] for (uint k = 0u; k < QUADS_PER_LANE; ++k)
        moments[k] = Moments4(vec4(0.0), vec4(0.0));
    if (self) {
        ACCUMULATE_NHWC4(moments, self_shift, x4_at, x8_at, false, gamma, 0u, pc.seg_len, n, q, 0u, pc.seg_len)
    }
    Stats st = Stats(0.0, 0.0, 1.0);
    if (one_segment)
        st = segment_stats((n * pc.channels + (4u * slot_quad(q, 0u)) % pc.channels) / pc.channels_per_seg, true);
    vec4 a[QUADS_PER_LANE], b[QUADS_PER_LANE], shift[QUADS_PER_LANE], offset[QUADS_PER_LANE];
    [[unroll]] for (uint k = 0u; k < QUADS_PER_LANE; ++k) {
        if (quad_segment && !one_segment)
            st = segment_stats((n * pc.channels + 4u * slot_quad(q, k)) / pc.channels_per_seg, true);
        for (uint j = 0u; j < 4u; ++j) {
            uint c = (4u * slot_quad(q, k) + j) % pc.channels;
            if (self && (j == 0u || pc.channels_per_seg == 1u)) {
                uint low = k & ~1u;  // with HALF_PAIR_UNITS, k's pair is slots low, low + 1
                if (HALF_PAIR_UNITS && pc.channels_per_seg >= 8u)
                    st = self_pair_group_stats(self_shift[low], moments[low], self_shift[low + 1u], moments[low + 1u], weight);
                else
                    st = self_group_stats(self_shift[k], moments[k], weight, j);
            }
            vec4 coefficients = one_segment || quad_segment || self ? channel_coefficients(st, n, c, true)
                                                                    : nhwc_coefficients(n, c);
            a[k][j] = coefficients.x;
            b[k][j] = coefficients.y;
            shift[k][j] = coefficients.z;
            offset[k][j] = coefficients.w;
        }
    }
    uint p_end = min(pc.seg_len, (first_chunk + rows) * pc.chunk_len);  // virtual pixels (FOLD)
    for (uint p = first_chunk * pc.chunk_len + (rows > 1u ? tile_row() : 0u); p < p_end; p += rows) {
        [[unroll]] for (uint k = 0u; k < QUADS_PER_LANE; ++k) {
            uint i = (n * pc.seg_len + p) * quads + slot_quad(q, k);
            if (HALF_PAIR_UNITS) {  // slots k, k + 1: one texel in, one out (i even)
                if (k % 2u == 0u && k + 1u < QUADS_PER_LANE) {
                    uvec4 pair = x8_at(i / 2u);
                    vec4 low = halves4(pair.xy), high = halves4(pair.zw);
                    store_y8(i / 2u, out8(normalized4(low, a[k], b[k], shift[k], offset[k]),
                                          normalized4(high, a[k + 1u], b[k + 1u], shift[k + 1u], offset[k + 1u])));
                }
            } else {
                store_y4(i, out4(normalized4(in4(x4_at(i)), a[k], b[k], shift[k], offset[k])));
            }
        }
    }
}

void main()
{
    uint workgroup = flat_workgroup_id();
    if (MODE == MODE_FINALIZE || (NHWC && (pc.flags & FLAG_COEFF_OUT) != 0u)) {
        if ((pc.flags & FLAG_LANE_FINALIZE) != 0u) {
            uint segment = workgroup * gl_WorkGroupSize.x + gl_LocalInvocationIndex;
            if (segment < pc.seg_count)
                finalize(segment, true);
        } else if (workgroup < pc.seg_count) {
            finalize(workgroup, false);
        }
    } else if (NHWC && VEC4) {
        apply_nhwc4(workgroup);
    } else if (NHWC) {
        apply_nhwc(workgroup);
    } else {
        apply_nchw(workgroup);
    }
}
