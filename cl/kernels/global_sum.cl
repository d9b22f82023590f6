/* global_sum.cl — sums over a whole buffer into one (or a few) device
 * values without atomics: each work-group reduces in local memory and writes
 * one partial; a single work-group then combines the partials. Used by the
 * loss reduction (sum_i w_i l_i / N) and the optimizer's global-norm clip.
 * Launched with local size WG. */

/* Sum of x over the work-group (every work-item gets the result). */
inline float wg_sum(__local float *s, float x)
{
    int lid = get_local_id(0);
    s[lid] = x;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int step = WG / 2; step > 0; step >>= 1) {
        if (lid < step) s[lid] += s[lid + step];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float total = s[0];
    barrier(CLK_LOCAL_MEM_FENCE); /* s may be reused by the caller */
    return total;
}

/* out[slot + group] = scale * sum_i a[a_off+i] * (has_b ? b[b_off+i] : 1)
 * over this group's grid-strided share of i < n. A dot product covers both
 * users: weighted losses (a = l, b = w) and squared norms (a = b = g). */
__kernel void dot_partial(__global float *out, int slot, __global const float *a, int a_off,
                          __global const float *b, int b_off, int has_b, int n, float scale)
{
    __local float s[WG];
    float acc = 0.0f;
    for (int i = get_global_id(0); i < n; i += get_global_size(0))
        acc += a[a_off + i] * (has_b ? b[b_off + i] : 1.0f);
    float total = wg_sum(s, acc);
    if (get_local_id(0) == 0) out[slot + get_group_id(0)] = scale * total;
}

/* One work-group: norm = sqrt(sum of the n partial squared sums);
 * out[0] = min(1, clip / norm) (the factor that scales every gradient, as
 * tf.clip_by_global_norm), out[1] = norm (for diagnostics). */
__kernel void clip_factor(__global float *out, __global const float *partial, int n, float clip)
{
    __local float s[WG];
    float acc = 0.0f;
    for (int i = get_local_id(0); i < n; i += WG) acc += partial[i];
    float norm = sqrt(wg_sum(s, acc));
    if (get_local_id(0) == 0) {
        out[0] = norm > clip ? clip / norm : 1.0f;
        out[1] = norm;
    }
}
