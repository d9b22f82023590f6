/* batchnorm.cl — the per-channel and per-element parts of batch norm with a
 * fused activation; the sums over N, H, W are reduce.cl's. */

/* Turns the statistics into (mean, istd) for the apply kernels.
 * train: mean holds E[d] and istd E[d^2] on entry, d = x - x0 with x0 the
 *        first row of x (reduce.cl's ROW_SHIFTED); mean becomes x0 + E[d],
 *        istd 1/sqrt(var + eps) for the biased variance E[d^2] - E[d]^2,
 *        and the moving statistics move towards the batch ones.
 * else:  mean and istd come from the moving statistics, so backward reads
 *        the same two tensors in every mode. */
__kernel void bn_stats(__global float *mean, __global float *istd, __global float *moving_mean,
                       __global float *moving_var, __global const float *x, int C, int rows, float eps,
                       float momentum, int train)
{
    int c = get_global_id(0);
    if (c >= C) return;
    if (train) {
        float ed = mean[c], var = max(istd[c] - ed * ed, 0.0f);
        mean[c] = (rows > 0 ? x[c] : 0.0f) + ed;
        istd[c] = 1.0f / sqrt(var + eps);
        moving_mean[c] = moving_mean[c] * momentum + mean[c] * (1.0f - momentum);
        moving_var[c] = moving_var[c] * momentum + var * (1.0f - momentum);
    } else {
        mean[c] = moving_mean[c];
        istd[c] = 1.0f / sqrt(moving_var[c] + eps);
    }
}

/* out = act(gamma (x - mean) istd + beta); global = (C, rows) */
__kernel void bn_forward(__global float *out, __global const float *x, __global const float *mean,
                         __global const float *istd, __global const float *gamma, __global const float *beta,
                         int rows, int C, int act)
{
    int c = get_global_id(0), r = get_global_id(1);
    if (c >= C || r >= rows) return;
    size_t i = (size_t)r * C + c;
    out[i] = act_forward(act, gamma[c] * (x[i] - mean[c]) * istd[c] + beta[c]);
}

/* dx = gamma istd (dz - inv_count (sum_dz + x̂ sum_dzx)), dz = dy act'(z)
 * with z recomputed from x. Batch statistics (train) pass inv_count = 1/M
 * with the sums; moving statistics pass inv_count = 0, leaving
 * dx = gamma istd dz, since then mean and istd do not depend on x. */
__kernel void bn_backward_dx(__global float *dx, __global const float *dy, __global const float *x,
                             __global const float *mean, __global const float *istd,
                             __global const float *gamma, __global const float *beta,
                             __global const float *sum_dz, __global const float *sum_dzx,
                             int rows, int C, int act, float inv_count)
{
    int c = get_global_id(0), r = get_global_id(1);
    if (c >= C || r >= rows) return;
    size_t i = (size_t)r * C + c;
    float xh = (x[i] - mean[c]) * istd[c];
    float dz = dy[i] * act_grad(act, gamma[c] * xh + beta[c]);  /* as reduce.cl's row_value */
    float corr = inv_count != 0.0f ? inv_count * (sum_dz[c] + xh * sum_dzx[c]) : 0.0f;
    dx[i] = gamma[c] * istd[c] * (dz - corr);
}
