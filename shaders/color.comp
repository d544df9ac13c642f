#version 450
#extension GL_GOOGLE_include_directive : require
// Colour conversion of every pixel (inorm_color_convert): channels 0..2 go
// from one colour space to linear RGB and from there to another, in fp32;
// channels 3 and up are copied. The constants are those of src/color.c (the
// CPU path, in double), where they are explained.
//
// Bindings: 0 source (read), 1 destination (write); they may be the same
// buffer (in place): each invocation reads a pixel before writing it.
// Specialization: 0 workgroup size, 4 NHWC. FLOAT16 define: half storage.
// Push constants (PushConstants of common.glsl): seg_len = pixels (N * H * W),
// chunk_len = pixels per workgroup, plane_len = H * W, channels = C,
// flags = from | to << 4 | in place << 8 (inorm_color_space values).

#include "common.glsl"

layout(std430, binding = 0) readonly buffer Source { DATA_T src[]; };
layout(std430, binding = 0) readonly buffer SourceBits { OUT_T src_bits[]; };  // channels 3+, copied as they are
layout(std430, binding = 1) writeonly buffer Destination { OUT_T dst[]; };

const uint SPACE_SRGB = 0u;
const uint SPACE_LINEAR_SRGB = 1u;
const uint SPACE_XYZ = 2u;
const uint SPACE_LAB = 3u;
const uint SPACE_LALPHABETA = 4u;

// The row-major tables of src/color.c, row by row. mat3() fills columns, so
// each row is a column here and the row-vector product v * M computes the
// matrix-vector product of the table.
const mat3 RGB_TO_XYZ = mat3(0.4124564, 0.3575761, 0.1804375,
                             0.2126729, 0.7151522, 0.0721750,
                             0.0193339, 0.1191920, 0.9503041);
const mat3 XYZ_TO_RGB = mat3(3.2404548360214083, -1.5371388501025751, -0.49853154686848089,
                             -0.96926638987565372, 1.8760109288424913, 0.041556082346673524,
                             0.055643419604213658, -0.20402585426769815, 1.0572251624579287);
const vec3 WHITE = vec3(0.95047, 1.0000001, 1.08883);
const mat3 RGB_TO_LMS = mat3(0.3811, 0.5783, 0.0402,
                             0.1967, 0.7244, 0.0782,
                             0.0241, 0.1288, 0.8444);
const mat3 LMS_TO_RGB = mat3(4.4686698634962552, -3.5886759034721263, 0.11960436657860116,
                             -1.2197166276177633, 2.3830879129554567, -0.16263011175140057,
                             0.058508476938545897, -0.26107843902769373, 1.2056659085256229);
const float LMS_FLOOR = 1e-4;
const float DELTA = 6.0 / 29.0;

// mix() with a bool vector selects, so a NaN or undefined value in the lane
// not taken does not leak; sign() would turn a NaN into 0, hence mix() too.
vec3 srgb_decode(vec3 v)
{
    vec3 a = abs(v);
    vec3 linear = mix(pow((a + 0.055) / 1.055, vec3(2.4)), a / 12.92, lessThanEqual(a, vec3(0.04045)));
    return mix(linear, -linear, lessThan(v, vec3(0.0)));
}

vec3 srgb_encode(vec3 v)
{
    vec3 a = abs(v);
    vec3 encoded = mix(1.055 * pow(a, vec3(1.0 / 2.4)) - 0.055, 12.92 * a, lessThanEqual(a, vec3(0.0031308)));
    return mix(encoded, -encoded, lessThan(v, vec3(0.0)));
}

vec3 lab_f(vec3 t)
{
    return mix(t / (3.0 * DELTA * DELTA) + 4.0 / 29.0, pow(max(t, vec3(0.0)), vec3(1.0 / 3.0)),
               greaterThan(t, vec3(DELTA * DELTA * DELTA)));
}

vec3 lab_f_inverse(vec3 u)
{
    return mix(3.0 * DELTA * DELTA * (u - 4.0 / 29.0), u * u * u, greaterThan(u, vec3(DELTA)));
}

vec3 to_linear(uint space, vec3 v)
{
    if (space == SPACE_SRGB)
        return srgb_decode(v);
    if (space == SPACE_XYZ)
        return v * XYZ_TO_RGB;
    if (space == SPACE_LAB) {
        float fy = (v.x + 16.0) / 116.0;
        vec3 xyz = WHITE * lab_f_inverse(vec3(fy + v.y / 500.0, fy, fy - v.z / 200.0));
        return xyz * XYZ_TO_RGB;
    }
    if (space == SPACE_LALPHABETA) {
        float l = v.x / sqrt(3.0), alpha = v.y / sqrt(6.0), beta = v.z / sqrt(2.0);
        vec3 lms = exp2(log2(10.0) * vec3(l + alpha + beta, l + alpha - beta, l - 2.0 * alpha));
        return lms * LMS_TO_RGB;
    }
    return v;  // SPACE_LINEAR_SRGB
}

vec3 from_linear(uint space, vec3 v)
{
    if (space == SPACE_SRGB)
        return srgb_encode(v);
    if (space == SPACE_XYZ)
        return v * RGB_TO_XYZ;
    if (space == SPACE_LAB) {
        vec3 f = lab_f((v * RGB_TO_XYZ) / WHITE);
        return vec3(116.0 * f.y - 16.0, 500.0 * (f.x - f.y), 200.0 * (f.y - f.z));
    }
    if (space == SPACE_LALPHABETA) {
        vec3 raw = v * RGB_TO_LMS;
        // the floor, but a NaN stays NaN (a comparison with NaN is false)
        vec3 lms = mix(mix(vec3(LMS_FLOOR), raw, greaterThan(raw, vec3(LMS_FLOOR))), raw, isnan(raw));
        vec3 lg = log2(lms) / log2(10.0);
        return vec3((lg.x + lg.y + lg.z) / sqrt(3.0), (lg.x + lg.y - 2.0 * lg.z) / sqrt(6.0),
                    (lg.x - lg.y) / sqrt(2.0));
    }
    return v;  // SPACE_LINEAR_SRGB
}

uint element(uint n, uint c, uint p)
{
    return NHWC ? (n * pc.plane_len + p) * pc.channels + c : (n * pc.channels + c) * pc.plane_len + p;
}

void main()
{
    uint begin = flat_workgroup_id() * pc.chunk_len;
    if (begin >= pc.seg_len)
        return;
    uint from = pc.flags & 15u, to = (pc.flags >> 4) & 15u;
    bool in_place = (pc.flags & 256u) != 0u;
    uint first, stop;
    lane_range(begin, min(pc.seg_len, begin + pc.chunk_len), first, stop);
    for (uint pixel = first; pixel < stop; pixel += LANES) {
        uint n = pixel / pc.plane_len, p = pixel % pc.plane_len;
        vec3 v = vec3(float(src[element(n, 0u, p)]), float(src[element(n, 1u, p)]), float(src[element(n, 2u, p)]));
        if (from != to)
            v = from_linear(to, to_linear(from, v));
        dst[element(n, 0u, p)] = out1(v.x);
        dst[element(n, 1u, p)] = out1(v.y);
        dst[element(n, 2u, p)] = out1(v.z);
        for (uint c = 3u; c < pc.channels && !in_place; ++c)
            dst[element(n, c, p)] = src_bits[element(n, c, p)];
    }
}
