// Chunk statistics of NCHW data, shared by norm_stats.comp (partials) and
// norm_apply.comp (a plane that one workgroup both reduces and normalizes).
// Needs common.glsl and reduce.glsl.

// Units (vec4 or float) a lane holds at once: each block is reduced exactly
// in registers (sum, then centred squares) and merged into the lane's
// moments with one Chan step, instead of one division per unit.
const uint BLOCK = 8u;

// Under a mask the chunk's first value may be one the mask leaves out (weight
// 0), so possibly NaN or Inf, which must not reach the statistics: then no
// shift (Welford's update stays stable without one).
float masked_shift(float first)
{
    return isnan(first) || isinf(first) ? 0.0 : first;
}

// NCHW: accumulates this lane's share of elements [begin, end) of one buffer,
// shifted by the chunk's first value: data[k] is element k, data4(k) 4-vector k
// (a function, so that it may read a texel view). mask_at maps an element to
// its mask index.
#define ACCUMULATE_NCHW(moments, shift, data, data4, use_vec4, has_mask, mask_buf, mask_buf4, mask_at, begin, end) \
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
    } else {                                                                                                     \
        uint first, stop;                                                                                        \
        uint unit = use_vec4 ? 4u : 1u;                                                                          \
        lane_range((begin) / unit, (end) / unit, first, stop);                                                  \
        for (uint block_start = first; block_start < stop; block_start += LANES * BLOCK) {                      \
            vec4 values[BLOCK];                                                                                  \
            vec4 sum = vec4(0.0);                                                                                \
            float count = 0.0;                                                                                   \
            [[unroll]] for (uint r = 0u; r < BLOCK; ++r) {                                                       \
                uint i = block_start + r * LANES;                                                                \
                bool inside = i < stop;                                                                          \
                /* loads of a clamped index, masked after: no branch per load */                                 \
                uint clamped = min(i, stop - 1u);                                                                \
                if (use_vec4)                                                                                    \
                    values[r] = mix(vec4(0.0), in4(data4(clamped)) - shift, bvec4(inside));                     \
                else                                                                                             \
                    values[r] = vec4(mix(0.0, float(data[clamped]) - shift, inside), 0.0, 0.0, 0.0);             \
                sum += values[r];                                                                                \
                count += inside ? float(unit) : 0.0;                                                             \
            }                                                                                                    \
            float block_mean = dot(sum, vec4(1.0)) / count;                                                      \
            vec4 squares = vec4(0.0);                                                                            \
            [[unroll]] for (uint r = 0u; r < BLOCK; ++r) {                                                       \
                bool inside = block_start + r * LANES < stop;                                                    \
                vec4 centred = values[r] - block_mean;                                                           \
                if (!use_vec4)                                                                                   \
                    centred.yzw = vec3(0.0);                                                                     \
                squares += inside ? centred * centred : vec4(0.0);                                               \
            }                                                                                                    \
            moments_merge(moments, Moments(count, block_mean, dot(squares, vec4(1.0))));                        \
        }                                                                                                        \
    }

