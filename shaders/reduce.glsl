// Workgroup reductions and Chan's merge of (count, mean, M2) moments.
// USE_SUBGROUP_ARITHMETIC selects subgroupAdd plus one shared slot per
// subgroup; without it a shared-memory tree (workgroup size a power of two).
// Every invocation of the workgroup must call these, in uniform control flow.

#ifdef USE_SUBGROUP_ARITHMETIC
#extension GL_KHR_shader_subgroup_arithmetic : require
shared vec2 subgroup_sums[gl_WorkGroupSize.x];

vec2 workgroup_sum(vec2 value)
{
    value = subgroupAdd(value);
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
    float count;
    float mean;
    float m2;  // sum of squared deviations from the mean
};

// Adds four values as one batch: exact batch mean and centred M2, then the
// pairwise Chan update, so no sum of squares of raw values is ever formed.
void moments_add4(inout Moments m, vec4 v)
{
    float batch_mean = (v.x + v.y + v.z + v.w) * 0.25;
    vec4 centred = v - batch_mean;
    float count = m.count + 4.0;
    float delta = batch_mean - m.mean;
    m.mean += delta * (4.0 / count);
    m.m2 += dot(centred, centred) + delta * delta * (m.count * 4.0 / count);
    m.count = count;
}

// Welford's update for one value.
void moments_add1(inout Moments m, float v)
{
    m.count += 1.0;
    float delta = v - m.mean;
    m.mean += delta / m.count;
    m.m2 += delta * (v - m.mean);
}

shared float merge_shift;

// Merges every invocation's moments into the workgroup's (returned to all).
// Means are summed relative to invocation 0's mean, which holds data and is
// close to the result, so large common offsets cancel before the sum.
// Invocations without data pass count 0.
Moments workgroup_merge(Moments m)
{
    if (gl_LocalInvocationIndex == 0u)
        merge_shift = m.mean;
    barrier();
    float shift = merge_shift;
    vec2 sums = workgroup_sum(vec2(m.count, m.count * (m.mean - shift)));
    float mean = shift + sums.y / sums.x;
    float d = m.mean - mean;
    float own = m.count > 0.0 ? m.m2 + m.count * d * d : 0.0;
    float m2 = workgroup_sum(vec2(own, 0.0)).x;
    return Moments(sums.x, mean, m2);
}
