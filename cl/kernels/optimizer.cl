/* optimizer.cl — one fused update over a contiguous range of the flat
 * parameter store (values, grads, m, v share the layout), with Keras
 * semantics: clip by global norm -> decoupled weight decay -> update. */

#define OPT_SGD 0
#define OPT_ADAM 1 /* Adam and AdamW differ only by the weight decay */


/* Per width V (common.cl): a work-item updates V consecutive entries.
 * Keras SGD: m <- mu m - lr g; theta += m, or theta += mu m - lr g
 * (Nesterov). Keras Adam with alpha = lr sqrt(1 - b2^t) / (1 - b1^t) from
 * the host and epsilon added to sqrt(v) without bias correction. */
#define OPT_DELTAS(S, T, V)                                                                            \
    inline T sgd_delta##S(__global float *m, T g, float lr, float mu, int nesterov)                    \
    {                                                                                                  \
        if (mu == 0.0f) return -lr * g;                                                                \
        T mv = mu * LOAD_##V(0, m) - lr * g;                                                           \
        STORE_##V(mv, 0, m);                                                                           \
        return nesterov ? mu * mv - lr * g : mv;                                                       \
    }                                                                                                  \
    inline T adam_delta##S(__global float *m, __global float *v, T g, float alpha, float b1, float b2,  \
                           float eps)                                                                  \
    {                                                                                                  \
        T m0 = LOAD_##V(0, m), v0 = LOAD_##V(0, v);                                                    \
        T mv = m0 + (g - m0) * (1.0f - b1);                                                            \
        T vv = v0 + (g * g - v0) * (1.0f - b2);                                                        \
        STORE_##V(mv, 0, m);                                                                           \
        STORE_##V(vv, 0, v);                                                                           \
        return -alpha * mv / (sqrt(vv) + eps);                                                         \
    }

/* Updates entries [offset, offset + V * count). clip[0] is the global-norm
 * factor (used when has_clip); loss[0] non-finite (when has_loss) skips the
 * whole update so a bad batch leaves theta, m and v as they were. wd_lr is
 * weight_decay * lr (0: no decay). */
#define OPT_UPDATE(S, T, V)                                                                            \
    OPT_DELTAS(S, T, V)                                                                                \
    __kernel void opt_update_##V(__global float *values, __global const float *grads, __global float *m, \
                                 __global float *v, int offset, int count, int type, float lr,          \
                                 float wd_lr, float alpha, float beta1, float beta2, float eps,          \
                                 float momentum, int nesterov, __global const float *clip, int has_clip, \
                                 __global const float *loss, int has_loss)                               \
    {                                                                                                  \
        int i = get_global_id(0);                                                                      \
        if (i >= count) return;                                                                        \
        if (has_loss && nonfinite(loss[0])) return;                                                    \
        int k = offset + i * (V);                                                                      \
        T g = LOAD_##V(0, grads + k);                                                                  \
        if (has_clip) g *= clip[0];                                                                    \
        T theta = LOAD_##V(0, values + k);                                                             \
        theta -= theta * wd_lr;                                                                        \
        if (type == OPT_ADAM)                                                                          \
            theta += adam_delta##S(m + k, v + k, g, alpha, beta1, beta2, eps);                         \
        else                                                                                           \
            theta += sgd_delta##S(m + k, g, lr, momentum, nesterov);                                   \
        STORE_##V(theta, 0, values + k);                                                               \
    }

FOR_EACH_WIDTH(OPT_UPDATE)
