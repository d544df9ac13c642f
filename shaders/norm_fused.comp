#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
// Single-read normalization for segments that fit in a team's registers:
// each team of TEAM lanes loads one segment (REGS units per lane), reduces
// it, normalizes it and writes it, so x is read once and y written once in
// one dispatch. A workgroup holds gl_WorkGroupSize.x / TEAM teams, so tiny
// planes share a workgroup instead of idling most of it.
//
// Statistics are exact two-pass over the registers, on values shifted by
// the segment's first value (exact for data near it): d = x - shift,
// mean_d = sum(d) / n, M2 = sum((d - mean_d)^2); t = a * (d - mean_d) + b,
// then the blend with x itself.
// MODE_NORMALIZE writes y; MODE_FINALIZE writes mean and std per segment.
// MODE_ADAIN first loads and reduces the team's style segment (the same
// channel of the style's sample n, or of its only sample) through the same
// registers, then takes gamma = its std and beta = its mean: AdaIN in one
// dispatch (the host plans it only for styles of at most the content's
// plane, so REGS holds them and no content element pays for more than one
// style element read).
//
// NHWC (planes of at most REGS pixels): each lane takes one sample's
// channel quad (VEC4, C % 4 == 0) or channel and all its pixels, stride C
// apart; lanes side by side take neighbouring channels, so a workgroup reads
// whole pixel rows. No partials, no second read. Group norm: a lane takes a
// whole group (its channels of every pixel, a few hundred values at most)
// and reads it three times, the last two from cache.
//
// Bindings: as norm_apply.comp (0 x, 1 y, 3 gamma, 4 beta, 5 mean out,
// 6 std out, 7 bank weights), and 2 the style. Specialization: 0 workgroup size, 1 VEC4,
// 3 MODE, 4 NHWC (then TEAM is 1), 5 TEAM (power of two, <= workgroup size),
// 6 REGS (units a lane holds; sizes its array), 9 ACTIVATION, 10 BLEND, 15 GROUPED.

#include "common.glsl"
#include "reduce.glsl"

layout(constant_id = 3) const uint MODE = MODE_NORMALIZE;
layout(constant_id = 5) const uint TEAM = 64u;
layout(constant_id = 6) const uint REGS = 1u;
// Segments of several channels (group and layer norm), which look up (a, b)
// per unit. A constant, not a push-constant test: lavapipe runs both sides
// of a branch under a lane mask, and an affine() per unit under a false
// test took half of an instance norm's time.
layout(constant_id = 15) const bool GROUPED = false;
// HALF_PAIR_UNITS (common.glsl) here: fp16 NCHW (VEC4, REGS even, segments
// and the style's of whole 8-half pairs, groups' planes too), a lane's units
// come in pairs, values[2k] and values[2k + 1] one 16-byte load.

layout(std430, binding = 0) readonly buffer Input { DATA_T x[]; };
layout(std430, binding = 0) readonly buffer Input4 { DATA4_T x4[]; };
layout(std430, binding = 1) writeonly buffer Output { OUT_T y[]; };
layout(std430, binding = 1) writeonly buffer Output4 { OUT4_T y4[]; };
VEC4_STORER(OUT4_T, OUT_WIDE_T, store_y4, y4, 1)
layout(std430, binding = 2) readonly buffer Style { DATA_T style[]; };
layout(std430, binding = 2) readonly buffer Style4 { DATA4_T style4[]; };
layout(std430, binding = 3) readonly buffer Gamma { float gamma[]; };
layout(std430, binding = 4) readonly buffer Beta { float beta[]; };
layout(std430, binding = 5) buffer MeanOut { float mean_out[]; };
layout(std430, binding = 6) buffer StdOut { float std_out[]; };
layout(std430, binding = 7) readonly buffer BankWeights { float bank_weights[]; };
// 4-vector i of x or the style, through its texel view where the host made
// one (TEXEL_LOADS, STYLE_TEXEL_LOADS)
TEXEL_OR_BUFFER_LOADER(DATA4_T, x4_at, x4, TEXEL_LOADS, input_texels, DATA_TEXEL)
TEXEL_OR_BUFFER_LOADER(DATA4_T, style4_at, style4, STYLE_TEXEL_LOADS, style_texels, DATA_TEXEL)
HALF_PAIR_LOADER(x8_at, x4, TEXEL_LOADS, input_texels)
HALF_PAIR_LOADER(style8_at, style4, STYLE_TEXEL_LOADS, style_texels)
HALF_PAIR_STORER(store_y8, 1)

shared float team_sums[gl_WorkGroupSize.x];

// This lane's units of the segment being reduced: x itself, unshifted (the
// blend needs it exactly). d = x - shift is formed where it is used, exact
// for data near the shift.
vec4 values[REGS];

// Element or unit i of x, or of the style. Every call passes a literal
// from_style, so the compiler keeps one load per call site.
float source_element(const bool from_style, uint i)
{
    return from_style ? float(style[i]) : float(x[i]);
}
vec4 source_unit(const bool from_style, uint i)
{
    return from_style ? in4(style4_at(i)) : in4(x4_at(i));
}

// Pair j (units 2j, 2j + 1) of x or the style, as 8 halves.
uvec4 source_pair(const bool from_style, uint j)
{
    return from_style ? style8_at(j) : x8_at(j);
}

// The unit of the segment that values[r] of team lane `lane` holds.
uint team_unit(uint lane, uint r)
{
    if (HALF_PAIR_UNITS)
        return 2u * (lane + (r / 2u) * TEAM) + (r & 1u);
    return lane + r * TEAM;
}

// Sum over the lanes of this invocation's team (every invocation calls it).
float team_sum(float value)
{
    if (TEAM == 1u)
        return value;  // a lane alone: no barrier, so any workgroup size may go without them
    if (TEAM == gl_WorkGroupSize.x)
        return workgroup_sum(vec2(value, 0.0)).x;
    uint index = gl_LocalInvocationIndex;
    uint lane = index % TEAM;
    team_sums[index] = value;
    barrier();
    for (uint stride = TEAM / 2u; stride > 0u; stride >>= 1u) {
        if (lane < stride)
            team_sums[index] += team_sums[index + stride];
        barrier();
    }
    float total = team_sums[index - lane];
    barrier();
    return total;
}

vec2 affine(float std_value, uint n, uint c)
{
    float g = 1.0, b = 0.0;
    if ((pc.flags & FLAG_BANK) != 0u) {
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
    return vec2(g / std_value, b);
}

// As norm_apply.comp's finalize: optionally weighted, accumulated, repeated.
void write_segment_stats(uint segment, float mean, float std_value)
{
    bool accumulate = (pc.flags & FLAG_ACCUMULATE) != 0u;
    for (uint r = pc.out_repeat_first; r < pc.out_repeat_first + pc.out_repeat; ++r) {
        uint index = r * pc.seg_count + segment;
        if ((pc.flags & FLAG_MEAN_OUT) != 0u)
            mean_out[index] = (accumulate ? mean_out[index] : 0.0) + pc.out_weight * mean;
        if ((pc.flags & FLAG_STD_OUT) != 0u)
            std_out[index] = (accumulate ? std_out[index] : 0.0) + pc.out_weight * std_value;
    }
}

float std_of(float m2, float count)
{
    bool unbiased = (pc.flags & FLAG_UNBIASED) != 0u;
    float var = m2 / (unbiased ? count - 1.0 : count);
    return sqrt((var < 0.0 ? 0.0 : var) + pc.eps);  // not max(): NaN stays NaN
}

// x of unit k (a quad or a channel) of pixel p, counted from `first`.
vec4 nhwc_unit(uint first, uint per_sample, uint p, uint k)
{
    uint i = first + p * per_sample + k;
    return VEC4 ? in4(x4_at(i)) : vec4(float(x[i]), 0.0, 0.0, 0.0);
}

// Group norm on NHWC: one lane per (sample, group), see above.
void fused_nhwc_group()
{
    uint unit = VEC4 ? 4u : 1u;
    uint per_sample = pc.channels / unit;
    uint span = pc.channels_per_seg / unit;  // units per group
    uint item = flat_workgroup_id() * gl_WorkGroupSize.x + gl_LocalInvocationIndex;
    if (item >= pc.seg_count)
        return;  // TEAM 1: no barrier follows
    uint groups = pc.channels / pc.channels_per_seg;
    uint n = item / groups;
    uint first = n * pc.plane_len * per_sample + (item % groups) * span;
    // the unused components of scalar units are 0, and so is their shift
    vec4 lanes_used = VEC4 ? vec4(1.0) : vec4(1.0, 0.0, 0.0, 0.0);
    vec4 shift = vec4(nhwc_unit(first, per_sample, 0u, 0u).x) * lanes_used;
    // precise: the first load is the shift's own, and a compiler free to fold
    // its x - shift to 0 (then 0 * inf to 0) loses the NaN of a plane that
    // holds one, or of eps == 0 on a constant plane
    precise vec4 sum = vec4(0.0);
    for (uint p = 0u; p < pc.plane_len; ++p)
        for (uint k = 0u; k < span; ++k)
            sum += nhwc_unit(first, per_sample, p, k) - shift;
    float count = float(pc.plane_len * pc.channels_per_seg);
    float mean = dot(sum, vec4(1.0)) / count;
    precise vec4 squares = vec4(0.0);
    for (uint p = 0u; p < pc.plane_len; ++p)
        for (uint k = 0u; k < span; ++k) {
            vec4 centred = ((nhwc_unit(first, per_sample, p, k) - shift) - mean) * lanes_used;
            squares += centred * centred;
        }
    float std_value = std_of(dot(squares, vec4(1.0)), count);
    if (MODE == MODE_FINALIZE) {
        write_segment_stats(item, shift.x + mean, std_value);
        return;
    }
    uint first_channel = (item % groups) * pc.channels_per_seg;
    for (uint k = 0u; k < span; ++k) {
        vec4 a = vec4(0.0), b = vec4(0.0);
        for (uint j = 0u; j < unit; ++j) {
            vec2 ab = affine(std_value, n, first_channel + k * unit + j);
            a[j] = ab.x;
            b[j] = ab.y;
        }
        for (uint p = 0u; p < pc.plane_len; ++p) {
            vec4 v = nhwc_unit(first, per_sample, p, k);
            precise vec4 t = a * ((v - shift.x) - mean) + b;
            if (BLEND)
                t = v + pc.alpha * (t - v);
            uint i = first + p * per_sample + k;
            if (VEC4)
                store_y4(i, out4(activate4(t)));
            else
                y[i] = out1(activate(t.x));
        }
    }
}

// Loads a lane's channel quad (or channel) of x or the style, `pixels`
// pixels from unit `first` on, per_sample units apart, into values, and
// returns the sums of (x - shift) and of their centred squares, shift the
// first pixel (scalar units broadcast; the caller uses lane 0).
void lane_moments(const bool from_style, uint first, uint pixels, uint per_sample,
                  out vec4 shift, out vec4 mean, out vec4 squares)
{
    shift = VEC4 ? source_unit(from_style, first) : vec4(source_element(from_style, first));
    precise vec4 sum = vec4(0.0);  // precise: see fused_nhwc_group
    [[unroll]] for (uint r = 0u; r < REGS; ++r) {
        bool inside = r < pixels;
        uint i = first + r * per_sample;
        if (VEC4)
            values[r] = inside ? source_unit(from_style, i) : shift;
        else
            values[r] = inside ? vec4(source_element(from_style, i)) : shift;
        sum += values[r] - shift;
    }
    mean = sum / float(pixels);
    precise vec4 centred_squares = vec4(0.0);
    [[unroll]] for (uint r = 0u; r < REGS; ++r) {
        vec4 centred = (values[r] - shift) - mean;
        centred_squares += r < pixels ? centred * centred : vec4(0.0);
    }
    squares = centred_squares;
}

void fused_nhwc()
{
    uint per_sample = VEC4 ? pc.channels / 4u : pc.channels;
    uint item = flat_workgroup_id() * gl_WorkGroupSize.x + gl_LocalInvocationIndex;
    if (item >= pc.samples * per_sample)
        return;  // TEAM 1: no barrier follows
    uint n = item / per_sample;
    uint lanes = VEC4 ? 4u : 1u;
    uint first_channel = (item % per_sample) * lanes;
    vec4 shift, mean, squares;
    vec4 style_mean, style_std;
    if (MODE == MODE_ADAIN) {
        uint style_n = pc.style_sample_stride != 0u ? n : 0u;
        lane_moments(true, style_n * pc.style_seg_len * per_sample + item % per_sample, pc.style_seg_len, per_sample,
                     shift, mean, squares);
        style_mean = shift + mean;
        for (uint j = 0u; j < lanes; ++j)
            style_std[j] = std_of(squares[j], float(pc.style_seg_len));
    }
    uint first = n * pc.plane_len * per_sample + item % per_sample;
    lane_moments(false, first, pc.plane_len, per_sample, shift, mean, squares);
    float count = float(pc.plane_len);
    vec4 a, b;
    for (uint j = 0u; j < lanes; ++j) {
        float std_value = std_of(squares[j], count);
        if (MODE == MODE_FINALIZE) {
            write_segment_stats(n * pc.channels + first_channel + j, shift[j] + mean[j], std_value);
        } else {
            vec2 ab = MODE == MODE_ADAIN ? vec2(style_std[j] / std_value, style_mean[j])
                                         : affine(std_value, n, first_channel + j);
            a[j] = ab.x;
            b[j] = ab.y;
        }
    }
    if (MODE == MODE_FINALIZE)
        return;
    [[unroll]] for (uint r = 0u; r < REGS; ++r) {
        if (r >= pc.plane_len)
            break;
        vec4 v = values[r];
        precise vec4 t = a * ((v - shift) - mean) + b;
        if (BLEND)
            t = v + pc.alpha * (t - v);
        uint i = first + r * per_sample;
        if (VEC4)
            store_y4(i, out4(activate4(t)));
        else
            y[i] = out1(activate(t.x));
    }
}

// Loads the team's segment, units [base, base + units) of x or the style,
// into values and reduces it: returns (shift, mean of x - shift, std).
// Padding teams (has_segment false) load nothing but join the barriers.
vec3 team_moments(const bool from_style, uint base, uint units, uint lane, bool has_segment)
{
    uint unit = VEC4 ? 4u : 1u;
    float shift = has_segment ? source_element(from_style, base * unit) : 0.0;
    float sum = 0.0;
    [[unroll]] for (uint r = 0u; r < REGS; ++r) {
        uint u = team_unit(lane, r);
        bool inside = has_segment && u < units;
        if (HALF_PAIR_UNITS) {
            // u even: units u and u + 1 are inside together (REGS is even
            // where the host asks for pairs; the test keeps other
            // specializations of this dead code in bounds)
            if (r % 2u == 0u && r + 1u < REGS) {
                uvec4 pair = source_pair(from_style, (base + u) / 2u);
                values[r] = inside ? halves4(pair.xy) : vec4(shift);
                values[r + 1u] = inside ? halves4(pair.zw) : vec4(shift);
            }
        } else if (VEC4) {
            values[r] = inside ? source_unit(from_style, base + u) : vec4(shift);
        } else {
            values[r] = vec4(inside ? source_element(from_style, base + u) : shift, shift, shift, shift);
        }
        sum += dot(values[r] - shift, vec4(1.0));
    }
    float count = float(units * unit);
    float mean = team_sum(sum) / count;
    float squares = 0.0;
    [[unroll]] for (uint r = 0u; r < REGS; ++r) {
        uint u = team_unit(lane, r);
        if (has_segment && u < units) {
            vec4 centred = (values[r] - shift) - mean;
            squares += VEC4 ? dot(centred, centred) : centred.x * centred.x;
        }
    }
    return vec3(shift, mean, std_of(team_sum(squares), count));
}

void main()
{
    if (NHWC) {
        if (GROUPED)
            fused_nhwc_group();
        else
            fused_nhwc();
        return;
    }
    uint teams = gl_WorkGroupSize.x / TEAM;
    uint segment = flat_workgroup_id() * teams + gl_LocalInvocationIndex / TEAM;
    uint lane = gl_LocalInvocationIndex % TEAM;
    bool has_segment = segment < pc.seg_count;  // padding teams still join the barriers
    uint unit = VEC4 ? 4u : 1u;
    uint units = pc.seg_len / unit;
    uint base = segment * units;

    float style_mean = 0.0, style_std = 1.0;
    if (MODE == MODE_ADAIN) {
        uint style_units = pc.style_seg_len / unit;
        uint style_segment = pc.style_sample_stride != 0u ? segment : segment % pc.channels;
        vec3 moments = team_moments(true, style_segment * style_units, style_units, lane, has_segment);
        style_mean = moments.x + moments.y;
        style_std = moments.z;
    }
    vec3 moments = team_moments(false, base, units, lane, has_segment);
    float shift = moments.x, mean = moments.y, std_value = moments.z;
    if (!has_segment)
        return;  // after the last barrier

    if (MODE == MODE_FINALIZE) {
        if (lane == 0u)
            write_segment_stats(segment, shift + mean, std_value);
        return;
    }
    uint segs_per_sample = pc.channels / pc.channels_per_seg;
    uint n = segment / segs_per_sample;
    uint first_channel = (segment % segs_per_sample) * pc.channels_per_seg;
    vec2 ab = MODE == MODE_ADAIN ? vec2(style_std / std_value, style_mean) : affine(std_value, n, first_channel);
    // no `break` past the last unit: with REGS 128 (1023 floats per plane)
    // lavapipe then stored one more unit, the next segment's first
    vec4 previous = vec4(0.0);  // HALF_PAIR_UNITS: the pair's first unit, stored with the second
    [[unroll]] for (uint r = 0u; r < REGS; ++r) {
        uint u = team_unit(lane, r);
        if (u < units) {
            if (GROUPED)  // group norm: plane_len % 4 == 0 when VEC4 (% 8 with pairs), so a unit stays in one channel
                ab = affine(std_value, n, first_channel + u * unit / pc.plane_len);
            vec4 v = values[r];
            vec4 t = ab.x * ((v - shift) - mean) + ab.y;
            if (BLEND)
                t = v + pc.alpha * (t - v);
            if (HALF_PAIR_UNITS) {
                if (r % 2u == 1u)
                    store_y8((base + u) / 2u, out8(previous, activate4(t)));
                else
                    previous = activate4(t);
            } else if (VEC4) {
                store_y4(base + u, out4(activate4(t)));
            } else {
                y[base + u] = out1(activate(t.x));
            }
        }
    }
}
