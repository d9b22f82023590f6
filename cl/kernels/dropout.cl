/* dropout.cl — inverted dropout and stochastic depth as one kernel. The keep
 * decision of element i is a hash of (seed, i / group, stream): group = 1,
 * stream 0 drops single elements; group = elements per sample, stream 1
 * drops whole samples. Backward is the same kernel on dout: the mask is
 * re-derived from the seed, nothing is stored. */

__kernel void dropout_apply(__global float *out, __global const float *in, int n, int group, uint stream,
                            uint seed, float rate, float scale)
{
    int i = get_global_id(0);
    if (i >= n) return;
    /* uniform01 is in [0, 1), so P(u >= rate) = 1 - rate */
    int keep = uniform01(seed, (uint)(i / group), stream) >= rate;
    out[i] = keep ? in[i] * scale : 0.0f;
}
