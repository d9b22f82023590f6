/* pool.cl — broadcasting a per-(sample, channel) value over the spatial
 * positions of an NHWC tensor [N, HW, C]: global average pool backward,
 * channel scaling (SE's excite) and SE's input gradient, which is both. */

/* out[n,p,c] = (has_in ? in[n,p,c] * mul[n,c] : 0) + (has_add ? add[n,c] * add_scale : 0) */
__kernel void channel_broadcast(__global float *out, __global const float *in, __global const float *mul,
                                __global const float *add, float add_scale, int has_in, int has_add,
                                int N, int HW, int C)
{
    /* global = (C, HW, N): no division per element (see eng_launch_channels_rows) */
    int c = get_global_id(0), p = get_global_id(1), b = get_global_id(2);
    if (c >= C || p >= HW || b >= N) return;
    size_t i = ((size_t)b * HW + p) * C + c;
    int nc = b * C + c;
    float v = has_in ? in[i] * mul[nc] : 0.0f;
    if (has_add) v += add[nc] * add_scale;
    out[i] = v;
}
