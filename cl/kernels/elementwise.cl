/* elementwise.cl — one work-item per element: fill, copy-style helpers,
 * residual add and standalone activations. */

__kernel void fill(__global float *x, int n, float value)
{
    int i = get_global_id(0);
    if (i < n) x[i] = value;
}

__kernel void axpy(__global float *dst, __global const float *src, int n, float alpha)
{
    int i = get_global_id(0);
    if (i < n) dst[i] += alpha * src[i];
}

__kernel void add(__global float *out, __global const float *a, __global const float *b, int n)
{
    int i = get_global_id(0);
    if (i < n) out[i] = a[i] + b[i];
}

__kernel void activation_forward(__global float *out, __global const float *in, int n, int act)
{
    int i = get_global_id(0);
    if (i < n) out[i] = act_forward(act, in[i]);
}

__kernel void activation_backward(__global float *din, __global const float *dout, __global const float *in,
                                  int n, int act)
{
    int i = get_global_id(0);
    if (i < n) din[i] = dout[i] * act_grad(act, in[i]);
}

/* Image preprocessing: per-channel scale and shift, channels <= 4. */
__kernel void affine_channels(__global float *out, __global const float *in, int n, int channels, float4 scale,
                              float4 shift)
{
    int i = get_global_id(0);
    if (i >= n) return;
    int c = i % channels;
    float a = c == 0 ? scale.x : c == 1 ? scale.y : c == 2 ? scale.z : scale.w;
    float b = c == 0 ? shift.x : c == 1 ? shift.y : c == 2 ? shift.z : shift.w;
    out[i] = in[i] * a + b;
}
