/* batchnorm.cl — the per-channel and per-element parts of batch norm with a
 * fused activation; the sums over N, H, W are reduce.cl's. x, out, dy and
 * dx are feature maps (act_t, common.cl); statistics, parameters and their
 * gradients are float. */

/* Turns the statistics into (mean, istd) for the apply kernels.
 * train: mean holds E[d] and istd E[d^2] on entry, d = x - x0 with x0 the
 *        first row of x (reduce.cl's ROW_SHIFTED), or shift[c] when
 *        has_shift (a synchronised batch norm's global mean, float even when
 *        x is bfloat16); mean becomes x0 + E[d],
 *        istd 1/sqrt(var + eps) for the biased variance E[d^2] - E[d]^2,
 *        and the moving statistics move towards the batch ones.
 * else:  mean and istd come from the moving statistics, so backward reads
 *        the same two tensors in every mode. */
__kernel void bn_stats(__global float *mean, __global float *istd, __global float *moving_mean,
                       __global float *moving_var, __global const act_t *x, __global const float *shift,
                       int has_shift, int C, int rows, float eps, float momentum, int train)
{
    int c = get_global_id(0);
    if (c >= C) return;
    if (train) {
        float ed = mean[c], var = max(istd[c] - ed * ed, 0.0f);
        mean[c] = (has_shift ? shift[c] : rows > 0 ? ACT_GET(x, c) : 0.0f) + ed;
        istd[c] = 1.0f / sqrt(var + eps);
        moving_mean[c] = moving_mean[c] * momentum + mean[c] * (1.0f - momentum);
        moving_var[c] = moving_var[c] * momentum + var * (1.0f - momentum);
    } else {
        mean[c] = moving_mean[c];
        istd[c] = 1.0f / sqrt(moving_var[c] + eps);
    }
}

/* The per-element kernels work on V adjacent channels (Cv = C / V
 * vectors per row, see common.cl), one vector per work-item in memory
 * order: global = rows * Cv, so a work-group covers a contiguous stretch
 * (with one channel vector per work-group and several per cache line, two
 * cores each fetched whole lines for half of them: about a quarter slower
 * at 32 channels). */

/* out = act(gamma (x - mean) istd + beta) */
#define BN_FORWARD(S, T, V)                                                                            \
    __kernel void bn_forward_##V(__global act_t *out, __global const act_t *x, __global const float *mean, \
                                 __global const float *istd, __global const float *gamma,                \
                                 __global const float *beta, int rows, int Cv, int act)                  \
    {                                                                                                  \
        size_t i = get_global_id(0);                                                                   \
        if (i >= (size_t)rows * Cv)                                                                    \
            return;                                                                                    \
        int cv = i % Cv;                                                                               \
        T z = LOAD_##V(cv, gamma) * (LOADA_##V(i, x) - LOAD_##V(cv, mean)) * LOAD_##V(cv, istd) +      \
              LOAD_##V(cv, beta);                                                                      \
        STOREA_##V(act_forward##S(act, z), i, out);                                                    \
    }

/* dx = gamma istd (dz - inv_count (sum_dz + x̂ sum_dzx)), dz = dy act'(z)
 * with z recomputed from x (as reduce.cl's ROW_BN_DZ). Batch statistics
 * (train) pass inv_count = 1/M with the sums; moving statistics pass
 * inv_count = 0, leaving dx = gamma istd dz, since then mean and istd do not
 * depend on x. */
#define BN_BACKWARD_DX(S, T, V)                                                                        \
    __kernel void bn_backward_dx_##V(__global act_t *dx, __global const act_t *dy, __global const act_t *x, \
                                     __global const float *mean, __global const float *istd,             \
                                     __global const float *gamma, __global const float *beta,            \
                                     __global const float *sum_dz, __global const float *sum_dzx,        \
                                     int rows, int Cv, int act, float inv_count)                         \
    {                                                                                                  \
        size_t i = get_global_id(0);                                                                   \
        if (i >= (size_t)rows * Cv)                                                                    \
            return;                                                                                    \
        int cv = i % Cv;                                                                               \
        T ga = LOAD_##V(cv, gamma), is = LOAD_##V(cv, istd);                                           \
        T xh = (LOADA_##V(i, x) - LOAD_##V(cv, mean)) * is;                                            \
        T dz = LOADA_##V(i, dy) * act_grad##S(act, ga * xh + LOAD_##V(cv, beta));                      \
        T corr = (T)(0.0f);                                                                            \
        if (inv_count != 0.0f)                                                                         \
            corr = inv_count * (LOAD_##V(cv, sum_dz) + xh * LOAD_##V(cv, sum_dzx));                    \
        STOREA_##V(ga * is * (dz - corr), i, dx);                                                      \
    }

/* Training mode with one work-item per channel vector over all rows (the
 * engine's choice on CPUs when the column stays in the cache between the
 * passes): the statistics and the apply, or the gradient sums and dx, in one
 * launch and one read of the tensors from memory. The arithmetic is that of
 * the reductions (ROW_SHIFTED, ROW_BN_DZ), bn_stats, bn_forward and
 * bn_backward_dx above. */
#define BN_TRAIN_FORWARD_COLUMN(S, T, V)                                                               \
    __kernel void bn_train_forward_column_##V(                                                         \
        __global act_t *out, __global const act_t *x, __global float *mean, __global float *istd,      \
        __global float *moving_mean, __global float *moving_var, __global const float *gamma,          \
        __global const float *beta, int rows, int Cv, float eps, float momentum, int act)              \
    {                                                                                                  \
        int cv = get_global_id(0);                                                                     \
        if (cv >= Cv || rows == 0)                                                                     \
            return;                                                                                    \
        T x0 = LOADA_##V(cv, x), s1 = (T)(0.0f), s2 = (T)(0.0f);                                       \
        for (int r = 0; r < rows; r++) {                                                               \
            T d = LOADA_##V((size_t)r * Cv + cv, x) - x0;                                              \
            s1 += d;                                                                                   \
            s2 += d * d;                                                                               \
        }                                                                                              \
        float inv = 1.0f / (float)rows;                                                                \
        T ed = inv * s1, var = fmax(inv * s2 - ed * ed, 0.0f);                                         \
        T m = x0 + ed, is = 1.0f / sqrt(var + eps);                                                    \
        STORE_##V(m, cv, mean);                                                                        \
        STORE_##V(is, cv, istd);                                                                       \
        STORE_##V(LOAD_##V(cv, moving_mean) * momentum + m * (1.0f - momentum), cv, moving_mean);      \
        STORE_##V(LOAD_##V(cv, moving_var) * momentum + var * (1.0f - momentum), cv, moving_var);      \
        T ga = LOAD_##V(cv, gamma), be = LOAD_##V(cv, beta);                                           \
        for (int r = 0; r < rows; r++) {                                                               \
            size_t i = (size_t)r * Cv + cv;                                                            \
            STOREA_##V(act_forward##S(act, ga * (LOADA_##V(i, x) - m) * is + be), i, out);             \
        }                                                                                              \
    }

/* dgamma += Σ dz x̂ and dbeta += Σ dz when given (has_dparams), dx when
 * has_dx. The first pass parks dz in dx (the column is in the cache when
 * the second pass reads it back), so the activation's derivative is
 * evaluated once per element. A bfloat16 dx would round the parked dz, an
 * error of 2^-8 dz that dx's cancellation need not scale down: there the
 * second pass recomputes dz instead (BN_DZ_AGAIN). */
#ifdef TLCL_BF16
#define BN_PARK_DZ(S, V, dz, i, dx) {}
#define BN_DZ_AGAIN(S, V, i, xh) (LOADA_##V(i, dy) * act_grad##S(act, ga * (xh) + be))
#else
#define BN_PARK_DZ(S, V, dz, i, dx) STORE_##V(dz, i, dx);
#define BN_DZ_AGAIN(S, V, i, xh) LOAD_##V(i, dx)
#endif
#define BN_TRAIN_BACKWARD_COLUMN(S, T, V)                                                              \
    __kernel void bn_train_backward_column_##V(                                                        \
        __global act_t *dx, __global const act_t *dy, __global const act_t *x,                        \
        __global const float *mean, __global const float *istd, __global const float *gamma,           \
        __global const float *beta, __global float *dgamma, __global float *dbeta, int has_dparams,    \
        int has_dx, int rows, int Cv, int act)                                                         \
    {                                                                                                  \
        int cv = get_global_id(0);                                                                     \
        if (cv >= Cv)                                                                                  \
            return;                                                                                    \
        T m = LOAD_##V(cv, mean), is = LOAD_##V(cv, istd);                                             \
        T ga = LOAD_##V(cv, gamma), be = LOAD_##V(cv, beta);                                           \
        T sdz = (T)(0.0f), sdzx = (T)(0.0f);                                                           \
        for (int r = 0; r < rows; r++) {                                                               \
            size_t i = (size_t)r * Cv + cv;                                                            \
            T xh = (LOADA_##V(i, x) - m) * is;                                                         \
            T dz = LOADA_##V(i, dy) * act_grad##S(act, ga * xh + be);                                  \
            sdz += dz;                                                                                 \
            sdzx += dz * xh;                                                                           \
            if (has_dx)                                                                                \
                BN_PARK_DZ(S, V, dz, i, dx)                                                            \
        }                                                                                              \
        if (has_dparams) {                                                                             \
            STORE_##V(LOAD_##V(cv, dgamma) + sdzx, cv, dgamma);                                        \
            STORE_##V(LOAD_##V(cv, dbeta) + sdz, cv, dbeta);                                           \
        }                                                                                              \
        if (!has_dx)                                                                                   \
            return;                                                                                    \
        float inv = rows > 0 ? 1.0f / (float)rows : 0.0f;                                              \
        for (int r = 0; r < rows; r++) {                                                               \
            size_t i = (size_t)r * Cv + cv;                                                            \
            T xh = (LOADA_##V(i, x) - m) * is;                                                         \
            STOREA_##V(ga * is * (BN_DZ_AGAIN(S, V, i, xh) - inv * (sdz + xh * sdzx)), i, dx);         \
        }                                                                                              \
    }

#define BN_KERNELS(S, T, V)                                                                            \
    BN_FORWARD(S, T, V) BN_BACKWARD_DX(S, T, V) BN_TRAIN_FORWARD_COLUMN(S, T, V)                       \
    BN_TRAIN_BACKWARD_COLUMN(S, T, V)
FOR_EACH_WIDTH(BN_KERNELS)
