/* loss.cl — softmax, softmax cross-entropy and focal loss from logits, one
 * work-item per sample (row of C logits; C is at most a few thousand, so
 * three passes over a row are cheap). The batch sum to the scalar loss is
 * global_sum.cl's dot_partial. */

#define LOSS_XENT 0
#define LOSS_FOCAL 1
#define P_CLIP 1e-7f /* Keras backend.epsilon(), the focal loss clip */

/* log sum_c exp(z_c), shifted by the max so no exp overflows. */
inline float row_lse(__global const float *z, int C)
{
    float mx = z[0];
    for (int c = 1; c < C; c++) mx = fmax(mx, z[c]);
    float s = 0.0f;
    for (int c = 0; c < C; c++) s += exp(z[c] - mx);
    return mx + log(s);
}

__kernel void softmax_rows(__global float *probs, __global const float *logits, int n, int C)
{
    int i = get_global_id(0);
    if (i >= n) return;
    __global const float *z = logits + (size_t)i * C;
    float lse = row_lse(z, C);
    for (int c = 0; c < C; c++) probs[(size_t)i * C + c] = exp(z[c] - lse);
}

/* Focal term of one class, a (1-p)^gamma (-log p) on p clipped to
 * [eps, 1-eps], and its derivative by the unclipped p (0 where the clip is
 * active, as the gradient of tf.clip_by_value). */
inline float focal_term(float p, float a, float gamma, float *dterm)
{
    float pc = clamp(p, P_CLIP, 1.0f - P_CLIP);
    float q = 1.0f - pc, lp = log(pc), qg = pow(q, gamma);
    int clipped = p < P_CLIP || p > 1.0f - P_CLIP;
    /* d/dp [a q^gamma (-log p)] = a (gamma q^(gamma-1) log p - q^gamma / p) */
    float d = a * ((gamma != 0.0f ? gamma * qg / q * lp : 0.0f) - qg / pc);
    *dterm = clipped ? 0.0f : d;
    return -a * qg * lp;
}

/* Smoothed one-hot target y_c = [c == label](1 - ls) + ls / C. */
inline float target(int c, int label, float ls, int C) { return (c == label ? 1.0f - ls : 0.0f) + ls / C; }

/* Cross-entropy from logits: sum_c y_c (lse - z_c); gradient p - y. */
inline float xent_row(__global float *dz, int want_grad, __global const float *z, int label, int C, float ls,
                      float lse, float scale)
{
    float nll_sum = 0.0f; /* sum_c (lse - z_c): positive terms, no cancellation */
    for (int c = 0; c < C; c++) nll_sum += lse - z[c];
    float l = (1.0f - ls) * (lse - z[label]) + ls / C * nll_sum;
    for (int c = 0; want_grad && c < C; c++) dz[c] = scale * (exp(z[c] - lse) - target(c, label, ls, C));
    return l;
}

/* Focal loss: with g_c = y_c f'(p_c), dz_j = p_j (g_j - sum_c g_c p_c) (the
 * softmax Jacobian; Keras's p / sum p renormalisation adds nothing to it). */
inline float focal_row(__global float *dz, int want_grad, __global const float *z, int label, int C, float ls,
                       float lse, float scale, __global const float *alpha, int has_alpha, float alpha_scalar,
                       float gamma)
{
    float l = 0.0f, gp = 0.0f, d;
    for (int c = 0; c < C; c++) {
        float p = exp(z[c] - lse), y = target(c, label, ls, C);
        l += y * focal_term(p, has_alpha ? alpha[c] : alpha_scalar, gamma, &d);
        gp += y * d * p;
    }
    for (int c = 0; want_grad && c < C; c++) {
        float p = exp(z[c] - lse), y = target(c, label, ls, C);
        focal_term(p, has_alpha ? alpha[c] : alpha_scalar, gamma, &d);
        dz[c] = scale * p * (y * d - gp);
    }
    return l;
}

/* per_sample[i] = l_i (unweighted); dlogits row i = (w_i / N) d l_i / d z
 * when want_grad. An out-of-range label makes l_i NaN (and its gradient 0)
 * so the optimizer skips the step and tlcl_loss_check reports it, instead of
 * training on garbage. Optional buffers come with a has_ flag. */
__kernel void softmax_loss_rows(__global float *per_sample, __global float *dlogits, int want_grad,
                                __global const float *logits, __global const int *labels,
                                __global const float *weights, int has_w, int n, int C, float ls, float inv_n,
                                int kind, __global const float *alpha, int has_alpha, float alpha_scalar,
                                float gamma)
{
    int i = get_global_id(0);
    if (i >= n) return;
    __global const float *z = logits + (size_t)i * C;
    __global float *dz = dlogits + (size_t)i * C;
    int label = labels[i];
    if (label < 0 || label >= C) {
        per_sample[i] = as_float(0x7fc00000u); /* NaN */
        for (int c = 0; want_grad && c < C; c++) dz[c] = 0.0f;
        return;
    }
    float lse = row_lse(z, C);
    float scale = (has_w ? weights[i] : 1.0f) * inv_n;
    per_sample[i] = kind == LOSS_FOCAL
                        ? focal_row(dz, want_grad, z, label, C, ls, lse, scale, alpha, has_alpha, alpha_scalar, gamma)
                        : xent_row(dz, want_grad, z, label, C, ls, lse, scale);
}
