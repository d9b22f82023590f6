/* optimizer.cl — one fused update over a contiguous range of the flat
 * parameter store (values, grads, m, v share the layout), with Keras
 * semantics: clip by global norm -> decoupled weight decay -> update. */

#define OPT_SGD 0
#define OPT_ADAM 1 /* Adam and AdamW differ only by the weight decay */

/* NaN or Inf, by the exponent bits: -cl-fast-relaxed-math lets the compiler
 * assume isnan/isinf are false, and this test must survive it. */
inline int nonfinite(float x) { return (as_uint(x) & 0x7f800000u) == 0x7f800000u; }

/* Keras SGD: m <- mu m - lr g; theta += m, or theta += mu m - lr g (Nesterov). */
inline float sgd_delta(__global float *m, float g, float lr, float mu, int nesterov)
{
    if (mu == 0.0f) return -lr * g;
    float mv = mu * m[0] - lr * g;
    m[0] = mv;
    return nesterov ? mu * mv - lr * g : mv;
}

/* Keras Adam with alpha = lr sqrt(1 - b2^t) / (1 - b1^t) from the host and
 * epsilon added to sqrt(v) without bias correction. */
inline float adam_delta(__global float *m, __global float *v, float g, float alpha, float b1, float b2, float eps)
{
    float mv = m[0] + (g - m[0]) * (1.0f - b1);
    float vv = v[0] + (g * g - v[0]) * (1.0f - b2);
    m[0] = mv;
    v[0] = vv;
    return -alpha * mv / (sqrt(vv) + eps);
}

/* Updates entries [offset, offset + count). clip[0] is the global-norm
 * factor (used when has_clip); loss[0] non-finite (when has_loss) skips the
 * whole update so a bad batch leaves theta, m and v as they were. wd_lr is
 * weight_decay * lr (0: no decay). */
__kernel void opt_update(__global float *values, __global const float *grads, __global float *m, __global float *v,
                         int offset, int count, int type, float lr, float wd_lr, float alpha, float beta1,
                         float beta2, float eps, float momentum, int nesterov, __global const float *clip,
                         int has_clip, __global const float *loss, int has_loss)
{
    int i = get_global_id(0);
    if (i >= count) return;
    if (has_loss && nonfinite(loss[0])) return;
    int k = offset + i;
    float g = has_clip ? grads[k] * clip[0] : grads[k];
    float theta = values[k];
    theta -= theta * wd_lr;
    if (type == OPT_ADAM)
        theta += adam_delta(m + k, v + k, g, alpha, beta1, beta2, eps);
    else
        theta += sgd_delta(m + k, g, lr, momentum, nesterov);
    values[k] = theta;
}
