// Chunk statistics, shared by norm_stats.comp (partials) and norm_apply.comp
// (a segment or NHWC tile that one workgroup both reduces and normalizes).
// Needs common.glsl and reduce.glsl.

// Units (vec4 or float) a lane holds at once: each block is reduced exactly
// in registers (sum, then centred squares) and merged into the lane's
// moments with one Chan step, instead of one division per unit.
const uint BLOCK = 8u;
// NHWC: blocks merged into a run of up to RUN blocks, runs into the lane's
// moments. Each Chan step rounds the running mean once; a lane taking a
// whole 64x64 plane alone made 512 steps, and its output was 4x further from
// the exact one (1.4e-6 against 3.5e-7 relative, fp32 1x256x64x64) than with
// runs (sqrt(RUN) + sqrt(steps / RUN) such errors instead of sqrt(steps)).
const uint RUN = 16u;

// Under a mask the chunk's first value may be one the mask leaves out (weight
// 0), so possibly NaN or Inf, which must not reach the statistics: then no
// shift (Welford's update stays stable without one).
float masked_shift(float first)
{
    return isnan(first) || isinf(first) ? 0.0 : first;
}

// The moments of one lane's block: values[r] (shifted by the chunk's first
// value, zero outside the range) holds data where bit r of inside_bits is
// set, count values in all; vec4_values: all four components (else .x alone).
Moments block_moments(vec4 values[BLOCK], uint inside_bits, float count, bool vec4_values)
{
    vec4 sum = vec4(0.0);
    [[unroll]] for (uint r = 0u; r < BLOCK; ++r)
        sum += values[r];
    float block_mean = dot(sum, vec4(1.0)) / count;
    vec4 squares = vec4(0.0);
    [[unroll]] for (uint r = 0u; r < BLOCK; ++r) {
        vec4 centred = values[r] - block_mean;
        if (!vec4_values)
            centred.yzw = vec3(0.0);
        squares += (inside_bits & (1u << r)) != 0u ? centred * centred : vec4(0.0);
    }
    return Moments(count, block_mean, dot(squares, vec4(1.0)));
}

// NCHW: accumulates this lane's share of elements [begin, end) of one buffer,
// shifted by the chunk's first value: data[k] is element k, data4(k) 4-vector k
// (a function, so that it may read a texel view). mask_at maps an element to
// its mask index.
#define ACCUMULATE_NCHW(moments, shift, data, data4, data8, use_vec4, has_mask, mask_buf, mask_buf4, mask_at, begin, end) \
    shift = float(data[begin]);                                                                                  \
    if (has_mask) {                                                                                              \
        shift = masked_shift(shift);                                                                             \
        uint first, stop;                                                                                        \
        if (use_vec4) {                                                                                          \
            lane_range((begin) / 4u, (end) / 4u, first, stop);                                                  \
            for (uint i = first; i < stop; i += LANES)                                                           \
                moments_add4_weighted(moments, in4(data4(i)) - shift, mask_buf4[mask_at(i * 4u) / 4u]);          \
        } else {                                                                                                 \
            lane_range(begin, end, first, stop);                                                                 \
            for (uint i = first; i < stop; i += LANES)                                                           \
                moments_add1(moments, float(data[i]) - shift, mask_buf[mask_at(i)]);                            \
        }                                                                                                        \
    } else if (HALF_PAIRS(use_vec4, begin, end)) {                                                               \
        uint first, stop;                                                                                        \
        lane_range((begin) / 8u, (end) / 8u, first, stop);                                                       \
        for (uint block_start = first; block_start < stop; block_start += LANES * (BLOCK / 2u)) {                \
            vec4 values[BLOCK];                                                                                  \
            uint inside_bits = 0u;                                                                               \
            float count = 0.0;                                                                                   \
            [[unroll]] for (uint r = 0u; r < BLOCK / 2u; ++r) {                                                  \
                uint j = block_start + r * LANES;                                                                \
                bool inside = j < stop;                                                                          \
                uvec4 pair = data8(min(j, stop - 1u));                                                           \
                values[2u * r] = mix(vec4(0.0), halves4(pair.xy) - shift, bvec4(inside));                        \
                values[2u * r + 1u] = mix(vec4(0.0), halves4(pair.zw) - shift, bvec4(inside));                   \
                inside_bits |= inside ? 3u << (2u * r) : 0u;                                                     \
                count += inside ? 8.0 : 0.0;                                                                     \
            }                                                                                                    \
            moments_merge(moments, block_moments(values, inside_bits, count, true));                             \
        }                                                                                                        \
    } else {                                                                                                     \
        uint first, stop;                                                                                        \
        uint unit = use_vec4 ? 4u : 1u;                                                                          \
        lane_range((begin) / unit, (end) / unit, first, stop);                                                   \
        for (uint block_start = first; block_start < stop; block_start += LANES * BLOCK) {                       \
            vec4 values[BLOCK];                                                                                  \
            uint inside_bits = 0u;                                                                               \
            float count = 0.0;                                                                                   \
            [[unroll]] for (uint r = 0u; r < BLOCK; ++r) {                                                       \
                uint i = block_start + r * LANES;                                                                \
                bool inside = i < stop;                                                                          \
                /* loads of a clamped index, masked after: no branch per load */                                 \
                uint clamped = min(i, stop - 1u);                                                                \
                if (use_vec4)                                                                                    \
                    values[r] = mix(vec4(0.0), in4(data4(clamped)) - shift, bvec4(inside));                      \
                else                                                                                             \
                    values[r] = vec4(mix(0.0, float(data[clamped]) - shift, inside), 0.0, 0.0, 0.0);             \
                inside_bits |= inside ? 1u << r : 0u;                                                            \
                count += inside ? float(unit) : 0.0;                                                             \
            }                                                                                                    \
            moments_merge(moments, block_moments(values, inside_bits, count, use_vec4));                         \
        }                                                                                                        \
    }

// NHWC with 4 channels per lane (VEC4: C % 4 == 0, workgroups of one
// subgroup, one row per tile): lavapipe loads per lane, so a 4-wide load
// costs what a scalar one does. The 4 channels see the same pixels, so they
// share one weight.
struct Moments4 {
    vec4 mean;
    vec4 m2;
};

// Chan's merge of (weight, mean, m2) into a, whose weight is a_weight.
void moments4_merge(inout Moments4 a, float a_weight, float weight, vec4 mean, vec4 m2)
{
    if (weight == 0.0)
        return;
    vec4 delta = mean - a.mean;
    float share = weight / (a_weight + weight);
    a.mean += delta * share;
    a.m2 += m2 + delta * delta * (a_weight * share);
}

// A quad's four channels (equal weights `weight`, each shifted by its own
// shift) as one moment about `reference`: their mean, then the squares about
// it. shift - reference is exact for nearby values (Sterbenz).
Moments quad_moments(vec4 shift, Moments4 m, float weight, float reference)
{
    vec4 relative = (shift - reference) + m.mean;
    float mean = dot(relative, vec4(0.25));
    vec4 d = relative - mean;
    return Moments(4.0 * weight, mean, dot(m.m2, vec4(1.0)) + weight * dot(d, d));
}

// Unmasked: a block of BLOCK pixel rows is loaded row by row, all of a row's
// quads before the next row, so the workgroup reads memory in address order
// (quad by quad, the same loads stepped 1 KB at a time through 8x256x64x64's
// rows and its statistics pass ran at half the speed of NCHW's: 7 -> 4 ms
// on lavapipe); each quad's block mean and squares then come from registers.
#define ACCUMULATE_NHWC4(moments, shift, data4, data8, has_mask, mask_buf, mask_stride, plane, n, q, p_begin, p_end)    \
    [[unroll]] for (uint k = 0u; k < QUADS_PER_LANE; ++k) {                                                    \
        shift[k] = in4(data4(((n) * (plane) + (p_begin)) * quads + slot_quad(q, k)));              \
        if (has_mask)                                                                                          \
            shift[k] = vec4(masked_shift(shift[k].x), masked_shift(shift[k].y), masked_shift(shift[k].z),      \
                            masked_shift(shift[k].w));                                                         \
    }                                                                                                          \
    if (has_mask) {                                                                                            \
        for (uint p = (p_begin); p < (p_end); ++p) {                                                           \
            float w = mask_buf[(n) * (mask_stride) + p];                                                       \
            if (w != 0.0) {                                                                                    \
                weight += w;                                                                                   \
                [[unroll]] for (uint k = 0u; k < QUADS_PER_LANE; ++k) {                                        \
                    vec4 v = in4(data4(((n) * (plane) + p) * quads + slot_quad(q, k))) - shift[k]; \
                    vec4 delta = v - moments[k].mean;                                                          \
                    moments[k].mean += delta * (w / weight);                                                   \
                    moments[k].m2 += w * delta * (v - moments[k].mean);                                        \
                }                                                                                              \
            }                                                                                                  \
        }                                                                                                      \
    } else {                                                                                                   \
        for (uint run_start = (p_begin); run_start < (p_end); run_start += RUN * BLOCK) {                      \
            uint run_end = min((p_end), run_start + RUN * BLOCK);                                              \
            Moments4 run[QUADS_PER_LANE];                                                                      \
            float run_weight = 0.0;                                                                            \
            [[unroll]] for (uint k = 0u; k < QUADS_PER_LANE; ++k)                                              \
                run[k] = Moments4(vec4(0.0), vec4(0.0));                                                       \
            for (uint block_start = run_start; block_start < run_end; block_start += BLOCK) {                  \
                float count = float(min(BLOCK, (p_end) - block_start));                                        \
                vec4 values[QUADS_PER_LANE][BLOCK];                                                            \
                [[unroll]] for (uint r = 0u; r < BLOCK; ++r) {                                                 \
                    uint p = block_start + r;                                                                  \
                    uint clamped = min(p, (p_end) - 1u);  /* no branch per load */                             \
                    [[unroll]] for (uint k = 0u; k < QUADS_PER_LANE; ++k) {                                    \
                        uint i = ((n) * (plane) + clamped) * quads + slot_quad(q, k);                          \
                        if (HALF_PAIR_UNITS) {  /* slots k, k + 1: one texel (i even) */                       \
                            if (k % 2u == 0u && k + 1u < QUADS_PER_LANE) {                                     \
                                uvec4 pair = data8(i / 2u);                                                    \
                                bvec4 inside = bvec4(p < (p_end));                                             \
                                values[k][r] = mix(vec4(0.0), halves4(pair.xy) - shift[k], inside);            \
                                values[k + 1u][r] = mix(vec4(0.0), halves4(pair.zw) - shift[k + 1u], inside);  \
                            }                                                                                  \
                        } else {                                                                               \
                            values[k][r] = mix(vec4(0.0), in4(data4(i)) - shift[k], bvec4(p < (p_end)));       \
                        }                                                                                      \
                    }                                                                                          \
                }                                                                                              \
                [[unroll]] for (uint k = 0u; k < QUADS_PER_LANE; ++k) {                                        \
                    vec4 sum = vec4(0.0);                                                                      \
                    [[unroll]] for (uint r = 0u; r < BLOCK; ++r)                                               \
                        sum += values[k][r];                                                                   \
                    vec4 block_mean = sum / count;                                                             \
                    vec4 squares = vec4(0.0);                                                                  \
                    [[unroll]] for (uint r = 0u; r < BLOCK; ++r) {                                             \
                        vec4 centred = values[k][r] - block_mean;                                              \
                        squares += block_start + r < (p_end) ? centred * centred : vec4(0.0);                  \
                    }                                                                                          \
                    moments4_merge(run[k], run_weight, count, block_mean, squares);                            \
                }                                                                                              \
                run_weight += count;                                                                           \
            }                                                                                                  \
            [[unroll]] for (uint k = 0u; k < QUADS_PER_LANE; ++k)                                              \
                moments4_merge(moments[k], weight, run_weight, run[k].mean, run[k].m2);                        \
            weight += run_weight;                                                                              \
        }                                                                                                      \
    }
