/* dense.cl — the epilogue of a dense layer after its GEMM. */

/* z = pre + bias[col]; pre = z (kept for backward); out = act(z). pre and
 * out may be the same buffer (no activation, nothing to keep). */
__kernel void dense_bias_act(__global float *out, __global float *pre, __global const float *bias, int has_bias,
                             int n, int cols, int act)
{
    int i = get_global_id(0);
    if (i >= n) return;
    float z = pre[i] + (has_bias ? bias[i % cols] : 0.0f);
    pre[i] = z;
    out[i] = act_forward(act, z);
}
