/* conv2d.cl — the data movement around the GEMMs of a k×k convolution in
 * NHWC. A col row is one output pixel and its columns run (ky, kx, ci), the
 * row order of the Keras weight [kh,kw,cin,cout] read as a matrix
 * [kh*kw*cin, cout]: forward is col · W, the weight gradient colᵀ · dY and
 * the input gradient dcol = dY · Wᵀ gathered back by col2im.
 *
 * Both kernels work on a chunk of samples [n0, n0 + rows/(OH*OW)) so the col
 * buffer stays bounded; col rows are chunk-local, tensors are indexed from
 * sample 0. The feature maps (in, din) and im2col's copy of in are act_t
 * (common.cl: bfloat16 under -DTLCL_BF16); dcol, partial sums, is float. */

/* Input coordinate read by output o through tap k (may fall in the padding). */
inline int conv_src(int o, int k, int stride, int pad) { return o * stride - pad + k; }

/* One work-item per (col row, group of tpi taps), taps fastest: it copies
 * each tap's cin contiguous NHWC channels to the row's contiguous columns
 * (or zeros in the padding), V floats at a time (cin % V == 0, see
 * common.cl), so the index arithmetic is paid once per cin floats, not per
 * float, and consecutive work-items write consecutive addresses. A stem's
 * cin = 3 takes a whole row per work-item (tpi = taps). Sizes in V-vectors:
 * cinv = cin / V. */
#define IM2COL(S, T, V)                                                                                \
    __kernel void im2col_##V(__global act_t *col, __global const act_t *in, int n0, int rows, int H,   \
                             int W, int cinv, int OH, int OW, int kh, int kw, int stride, int pad_top,  \
                             int pad_left, int tpi)                                                     \
    {                                                                                                  \
        int taps = kh * kw, groups = taps / tpi, i = get_global_id(0);                                 \
        if (i >= rows * groups)                                                                        \
            return;                                                                                    \
        int r = i / groups, ox = r % OW, t = r / OW, oy = t % OH, n = n0 + t / OH;                     \
        for (int tap = (i % groups) * tpi; tap < (i % groups + 1) * tpi; tap++) {                      \
            int y = conv_src(oy, tap / kw, stride, pad_top);                                           \
            int x = conv_src(ox, tap % kw, stride, pad_left);                                          \
            size_t dst = ((size_t)r * taps + tap) * cinv; /* row r, columns from tap * cin */          \
            if (y >= 0 && y < H && x >= 0 && x < W) {                                                  \
                size_t src = (((size_t)n * H + y) * W + x) * cinv;                                     \
                for (int c = 0; c < cinv; c++)                                                         \
                    STOREA_##V(LOADA_##V(src + c, in), dst + c, col);                                  \
            } else {                                                                                   \
                for (int c = 0; c < cinv; c++)                                                         \
                    STOREA_##V((T)(0.0f), dst + c, col);                                               \
            }                                                                                          \
        }                                                                                              \
    }

/* Output coordinate that reads input i through tap k, or -1 when none does
 * (off the stride grid or outside the output); stride 1, the common case,
 * needs no division. */
inline int conv_dst(int i, int k, int stride, int pad, int out_size)
{
    int t = i + pad - k;
    if (stride != 1) {
        if (t < 0 || t % stride != 0)
            return -1;
        t /= stride;
    }
    return t >= 0 && t < out_size ? t : -1;
}

/* The input gradient as a gather: one work-item per V channels of an input
 * pixel of the chunk sums the dcol entries that read them, so nothing is
 * written twice and no atomics are needed. count is in V-vectors. */
#define COL2IM(S, T, V)                                                                                \
    __kernel void col2im_##V(__global act_t *din, __global const float *dcol, int n0, int count, int H, \
                             int W, int cinv, int OH, int OW, int kh, int kw, int stride, int pad_top,  \
                             int pad_left)                                                              \
    {                                                                                                  \
        int i = get_global_id(0);                                                                      \
        if (i >= count)                                                                                \
            return;                                                                                    \
        int c = i % cinv, t = i / cinv;                                                                \
        int x = t % W;                                                                                 \
        t /= W;                                                                                        \
        int y = t % H, n = t / H;                                                                      \
        int Kv = kh * kw * cinv;                                                                       \
        T acc = (T)(0.0f);                                                                             \
        for (int ky = 0; ky < kh; ky++) {                                                              \
            int oy = conv_dst(y, ky, stride, pad_top, OH);                                             \
            if (oy < 0)                                                                                \
                continue;                                                                              \
            for (int kx = 0; kx < kw; kx++) {                                                          \
                int ox = conv_dst(x, kx, stride, pad_left, OW);                                        \
                if (ox >= 0)                                                                           \
                    acc += LOAD_##V(((size_t)(n * OH + oy) * OW + ox) * Kv + (ky * kw + kx) * cinv + c, dcol); \
            }                                                                                          \
        }                                                                                              \
        STOREA_##V(acc, (size_t)n0 * H * W * cinv + i, din);                                           \
    }

/* The weight of one phase of a convolution's input gradient, as a
 * convolution of dY (engine/conv2d.c): dst [khp, kwp, cout, cin] holds the
 * taps ky = ky0 + step*t' (t' = khp-1-t: turned half a turn), likewise kx,
 * of w [kh, kw, cin, cout], cin and cout swapped. At stride 1 (ky0 = kx0 =
 * 0, step 1, khp = kh) it is the whole weight turned. One element per
 * work-item. */
__kernel void conv_weight_phase(__global float *dst, __global const float *w, int kw, int cin, int cout, int ky0,
                                int kx0, int step, int khp, int kwp)
{
    int i = get_global_id(0);
    if (i >= khp * kwp * cout * cin)
        return;
    int ci = i % cin, t = i / cin, co = t % cout, tap = t / cout, u = tap % kwp, v = tap / kwp;
    int ky = ky0 + step * (khp - 1 - v), kx = kx0 + step * (kwp - 1 - u);
    dst[i] = w[((ky * kw + kx) * cin + ci) * cout + co];
}

FOR_EACH_WIDTH(IM2COL)
FOR_EACH_WIDTH(COL2IM)
