/* dropout.cl — inverted dropout and stochastic depth as one kernel. The keep
 * decision of element i is a hash of (seed, base + i / group, stream): group = 1,
 * stream 0 drops single elements; group = elements per sample, stream 1
 * drops whole samples; base places a replica's share in its global batch. Backward is the same kernel on dout: the mask is
 * re-derived from the seed, nothing is stored. With has_residual the
 * residual is added to the result (a residual block's drop path and add in
 * one pass).
 * Instances per width V (common.cl): a work-item takes V elements, which
 * share one keep decision when group is a multiple of V (the host passes
 * V = 1 otherwise); nv counts V-vectors. */

#define DROPOUT_APPLY(S, T, V)                                                                         \
    __kernel void dropout_apply_##V(__global act_t *out, __global const act_t *in,                    \
                                    __global const act_t *residual, int has_residual, int nv,          \
                                    int group, uint stream, uint seed, uint base, float rate,          \
                                    float scale)                                                       \
    {                                                                                                  \
        int i = get_global_id(0);                                                                      \
        if (i >= nv) return;                                                                           \
        /* uniform01 is in [0, 1), so P(u >= rate) = 1 - rate */                                     \
        int keep = uniform01(seed, base + (uint)(i * (V) / group), stream) >= rate;                   \
        T y = keep ? LOADA_##V(i, in) * scale : (T)(0.0f);                                             \
        if (has_residual)                                                                              \
            y += LOADA_##V(i, residual);                                                               \
        STOREA_##V(y, i, out);                                                                         \
    }

FOR_EACH_WIDTH(DROPOUT_APPLY)
