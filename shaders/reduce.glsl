// Workgroup reductions and Chan's merge of (weight, mean, M2) moments.
// USE_SUBGROUP_ARITHMETIC selects subgroupAdd plus one shared slot per
// subgroup; without it a shared-memory tree (workgroup size a power of two).
// Every invocation of the workgroup must call the workgroup_* functions, in
// uniform control flow.

#ifdef USE_SUBGROUP_ARITHMETIC
#extension GL_KHR_shader_subgroup_arithmetic : require
shared vec2 subgroup_sums[gl_WorkGroupSize.x];

vec2 workgroup_sum(vec2 value)
{
    value = subgroupAdd(value);
    if (SUBGROUP_WORKGROUP)
        return value;
    if (subgroupElect())
        subgroup_sums[gl_SubgroupID] = value;
    barrier();
    vec2 total = vec2(0.0);
    for (uint i = 0u; i < gl_NumSubgroups; ++i)
        total += subgroup_sums[i];
    barrier();
    return total;
}
#else
shared vec2 tree_sums[gl_WorkGroupSize.x];

vec2 workgroup_sum(vec2 value)
{
    uint index = gl_LocalInvocationIndex;
    tree_sums[index] = value;
    barrier();
    for (uint stride = gl_WorkGroupSize.x / 2u; stride > 0u; stride >>= 1u) {
        if (index < stride)
            tree_sums[index] += tree_sums[index + stride];
        barrier();
    }
    vec2 total = tree_sums[0];
    barrier();
    return total;
}
#endif

struct Moments {
    float weight;  // count, or sum of mask weights
    float mean;
    float m2;      // weighted sum of squared deviations from the mean
};

// Chan's merge of moments b into a.
void moments_merge(inout Moments a, Moments b)
{
    float weight = a.weight + b.weight;
    if (b.weight == 0.0)
        return;
    float delta = b.mean - a.mean;
    float share = b.weight / weight;
    a.mean += delta * share;
    a.m2 += b.m2 + delta * delta * a.weight * share;
    a.weight = weight;
}

// m, whose mean is relative to `shift`, made relative to `reference`
// (shift - reference is exact for nearby values: Sterbenz). Moments without
// data are left alone, so the shift of an empty lane never reaches a merge.
Moments rebased(Moments m, float shift, float reference)
{
    if (m.weight > 0.0)
        m.mean += shift - reference;
    return m;
}

// Adds four values as one batch: exact batch mean and centred M2, then the
// pairwise Chan update, so no sum of squares of raw values is ever formed.
void moments_add4(inout Moments m, vec4 v)
{
    float batch_mean = (v.x + v.y + v.z + v.w) * 0.25;
    vec4 centred = v - batch_mean;
    moments_merge(m, Moments(4.0, batch_mean, dot(centred, centred)));
}

// The same with mask weights w (values of weight 0 are left out entirely,
// so an Inf or NaN under a zero weight does not reach the statistics).
void moments_add4_weighted(inout Moments m, vec4 v, vec4 w)
{
    float batch_weight = dot(w, vec4(1.0));
    if (batch_weight == 0.0)
        return;
    v = mix(vec4(0.0), v, notEqual(w, vec4(0.0)));
    float batch_mean = dot(w, v) / batch_weight;
    vec4 centred = v - batch_mean;
    moments_merge(m, Moments(batch_weight, batch_mean, dot(w, centred * centred)));
}

// Welford's update for one value of weight w.
void moments_add1(inout Moments m, float v, float w)
{
    if (w == 0.0)
        return;
    m.weight += w;
    float delta = v - m.mean;
    m.mean += delta * (w / m.weight);
    m.m2 += w * delta * (v - m.mean);
}

shared float first_value;

// Invocation 0's value, returned to every invocation.
float workgroup_first(float value)
{
#ifdef USE_SUBGROUP_ARITHMETIC
    if (SUBGROUP_WORKGROUP)  // adding zeros to it is exact
        return subgroupAdd(gl_LocalInvocationIndex == 0u ? value : 0.0);
#endif
    if (gl_LocalInvocationIndex == 0u)
        first_value = value;
    barrier();
    float first = first_value;
    barrier();  // before a later call overwrites it
    return first;
}

// Merges every invocation's moments into the workgroup's (returned to all).
// Means are summed relative to invocation 0's mean, which is close to the
// result (all moments are already shifted by a data value of the chunk).
// Invocations without data pass weight 0.
Moments workgroup_merge(Moments m)
{
    float shift = workgroup_first(m.mean);
    vec2 sums = workgroup_sum(vec2(m.weight, m.weight * (m.mean - shift)));
    float mean = sums.x > 0.0 ? shift + sums.y / sums.x : 0.0;
    float d = m.mean - mean;
    float own = m.weight > 0.0 ? m.m2 + m.weight * d * d : 0.0;
    float m2 = workgroup_sum(vec2(own, 0.0)).x;
    return Moments(sums.x, mean, m2);
}
