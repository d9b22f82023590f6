/* elementwise.cl — one work-item per element: fill, copy-style helpers,
 * residual add and standalone activations. */

/* Every kernel here reads and writes one storage, act_t (common.cl: float,
 * or bfloat16 under -DTLCL_BF16), except the image preprocessing, whose
 * input is float32, and the feature-table rows, float32 always. */
/* fill by vectors of V (work-item i: elements i*V ..), the last one
 * finishing the tail element by element: one store a vector (a scalar
 * store per work-item filled a model's gradient buffer far below the copy
 * bandwidth); fill_1 is the element-per-work-item fill. */
#define FILL_VECTORS(S, T, V)                                                    \
    __kernel void fill_##V(__global act_t *x, int n, float value)                \
    {                                                                            \
        int i = get_global_id(0);                                                \
        if ((i + 1) * V <= n)                                                    \
            STOREA_##V((T)(value), i, x);                                        \
        else                                                                     \
            for (int j = i * V; j < n; j++)                                      \
                ACT_SET(x, j, value);                                            \
    }
FOR_EACH_WIDTH(FILL_VECTORS)

__kernel void axpy(__global act_t *dst, __global const act_t *src, int n, float alpha)
{
    int i = get_global_id(0);
    if (i < n) ACT_SET(dst, i, ACT_GET(dst, i) + alpha * ACT_GET(src, i));
}

__kernel void add(__global act_t *out, __global const act_t *a, __global const act_t *b, int n)
{
    int i = get_global_id(0);
    if (i < n) ACT_SET(out, i, ACT_GET(a, i) + ACT_GET(b, i));
}

__kernel void activation_forward(__global act_t *out, __global const act_t *in, int n, int act)
{
    int i = get_global_id(0);
    if (i < n) ACT_SET(out, i, act_forward(act, ACT_GET(in, i)));
}

__kernel void activation_backward(__global act_t *din, __global const act_t *dout, __global const act_t *in,
                                  int n, int act)
{
    int i = get_global_id(0);
    if (i < n) ACT_SET(din, i, ACT_GET(dout, i) * act_grad(act, ACT_GET(in, i)));
}

/* bfloat16 -> float32, whatever the program's act_t */
__kernel void bf16_widen(__global float *out, __global const ushort *in, int n)
{
    int i = get_global_id(0);
    if (i < n) out[i] = bf16_load(in[i]);
}

/* Image preprocessing: per-channel scale and shift, channels <= 4, on
 * elements [i0, n), one a work-item (the tail of affine_channels_16). */
__kernel void affine_channels(__global act_t *out, __global const float *in, int i0, int n, int channels,
                              float4 scale, float4 shift)
{
    int i = i0 + get_global_id(0);
    if (i >= n) return;
    int c = i % channels;
    float a = c == 0 ? scale.x : c == 1 ? scale.y : c == 2 ? scale.z : scale.w;
    float b = c == 0 ? shift.x : c == 1 ? shift.y : c == 2 ? shift.z : shift.w;
    ACT_SET(out, i, in[i] * a + b);
}

/* Groups of 16 pixels (channels float16 vectors each), AFFINE_GROUPS of them
 * a work-item: lane l of a group's j-th vector holds channel (16 j + l) %
 * channels, whose scale and shift a shuffle spreads over the lanes, once
 * per work-item (the vector % is 16 divisions). groups counts the 16-pixel
 * groups. */
#define AFFINE_GROUPS 8
__kernel void affine_channels_16(__global act_t *out, __global const float *in, int groups, int channels,
                                 float4 scale, float4 shift)
{
    int g0 = get_global_id(0) * AFFINE_GROUPS;
    if (g0 >= groups) return;
    const uint16 lane = (uint16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    float16 a[4], b[4];
    for (int j = 0; j < channels; j++) {
        uint16 c = (lane + (uint)(16 * j)) % (uint)channels;
        a[j] = shuffle(scale, c);
        b[j] = shuffle(shift, c);
    }
    for (int g = g0; g < min(groups, g0 + AFFINE_GROUPS); g++)
        for (int j = 0; j < channels; j++) {
            int o = g * channels + j;
            STOREA_16(vload16(o, in) * a[j] + b[j], o, out);
        }
}

/* Rows of a table by index (cached features): out[i, :] = table[idx[i], :],
 * and back: table[idx[i], :] = in[i, :]. Global (C, N). */
__kernel void gather_rows(__global float *out, __global const float *table, __global const int *idx, int C, int N)
{
    int c = get_global_id(0), i = get_global_id(1);
    if (c < C && i < N) out[(size_t)i * C + c] = table[(size_t)idx[i] * C + c];
}

__kernel void scatter_rows(__global float *table, __global const float *in, __global const int *idx, int C, int N)
{
    int c = get_global_id(0), i = get_global_id(1);
    if (c < C && i < N) table[(size_t)idx[i] * C + c] = in[(size_t)i * C + c];
}
