/* pool.cl — broadcasting a per-(sample, channel) value over the spatial
 * positions of an NHWC tensor [N, HW, C]: global average pool backward,
 * channel scaling (SE's excite) and SE's input gradient, which is both. */

/* out[n,p,c] = (has_in ? in[n,p,c] * mul[n,c] : 0) + (has_add ? add[n,c] * add_scale : 0),
 * out and in feature maps (act_t), mul and add float;
 * V channels per work-item (Cv = C / V, see common.cl); global = (Cv, HW, N):
 * no division per element (see eng_launch_channels_rows). */
#define CHANNEL_BROADCAST(S, T, V)                                                                        \
    __kernel void channel_broadcast_##V(__global act_t *out, __global const act_t *in,                 \
                                        __global const float *mul, __global const float *add,          \
                                        float add_scale, int has_in, int has_add, int N, int HW, int Cv) \
    {                                                                                                  \
        size_t i = get_global_id(0); /* memory order, as batchnorm.cl's kernels */                     \
        if (i >= (size_t)N * HW * Cv)                                                                  \
            return;                                                                                    \
        int cv = i % Cv, b = i / ((size_t)HW * Cv);                                                    \
        int nc = b * Cv + cv;                                                                          \
        T v = has_in ? LOADA_##V(i, in) * LOAD_##V(nc, mul) : (T)(0.0f);                               \
        if (has_add)                                                                                   \
            v += LOAD_##V(nc, add) * add_scale;                                                        \
        STOREA_##V(v, i, out);                                                                         \
    }

FOR_EACH_WIDTH(CHANNEL_BROADCAST)
