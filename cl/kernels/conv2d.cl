/* conv2d.cl — the data movement around the GEMMs of a k×k convolution in
 * NHWC. A col row is one output pixel and its columns run (ky, kx, ci), the
 * row order of the Keras weight [kh,kw,cin,cout] read as a matrix
 * [kh*kw*cin, cout]: forward is col · W, the weight gradient colᵀ · dY and
 * the input gradient dcol = dY · Wᵀ gathered back by col2im.
 *
 * Both kernels work on a chunk of samples [n0, n0 + rows/(OH*OW)) so the col
 * buffer stays bounded; col rows are chunk-local, tensors are indexed from
 * sample 0. */

/* Input coordinate read by output o through tap k (may fall in the padding). */
inline int conv_src(int o, int k, int stride, int pad) { return o * stride - pad + k; }

/* One work-item per (col row, tap), tap fastest: it copies the tap's cin
 * contiguous NHWC channels to the row's contiguous columns (or zeros in the
 * padding), so the index arithmetic is paid once per cin floats, not per
 * float, and consecutive work-items write consecutive addresses. */
__kernel void im2col(__global float *col, __global const float *in, int n0, int rows, int H, int W, int cin,
                     int OH, int OW, int kh, int kw, int stride, int pad_top, int pad_left)
{
    int taps = kh * kw, i = get_global_id(0);
    if (i >= rows * taps)
        return;
    int tap = i % taps, r = i / taps;
    int ox = r % OW, t = r / OW;
    int y = conv_src(t % OH, tap / kw, stride, pad_top);
    int x = conv_src(ox, tap % kw, stride, pad_left);
    int n = n0 + t / OH;
    __global float *dst = col + (size_t)i * cin; /* = row r, columns from tap * cin */
    if (y >= 0 && y < H && x >= 0 && x < W) {
        __global const float *src = in + (((size_t)n * H + y) * W + x) * cin;
        for (int ci = 0; ci < cin; ci++)
            dst[ci] = src[ci];
    } else {
        for (int ci = 0; ci < cin; ci++)
            dst[ci] = 0.0f;
    }
}

/* Output coordinate that reads input i through tap k, or -1 when none does
 * (off the stride grid or outside the output). */
inline int conv_dst(int i, int k, int stride, int pad, int out_size)
{
    int t = i + pad - k;
    if (t < 0 || t % stride != 0)
        return -1;
    t /= stride;
    return t < out_size ? t : -1;
}

/* The input gradient as a gather: one work-item per input element of the
 * chunk sums the dcol entries that read it, so nothing is written twice and
 * no atomics are needed. */
__kernel void col2im(__global float *din, __global const float *dcol, int n0, int count, int H, int W, int cin,
                     int OH, int OW, int kh, int kw, int stride, int pad_top, int pad_left)
{
    int i = get_global_id(0);
    if (i >= count)
        return;
    int ci = i % cin, t = i / cin;
    int x = t % W;
    t /= W;
    int y = t % H, n = t / H;
    int K = kh * kw * cin;
    float acc = 0.0f;
    for (int ky = 0; ky < kh; ky++) {
        int oy = conv_dst(y, ky, stride, pad_top, OH);
        if (oy < 0)
            continue;
        for (int kx = 0; kx < kw; kx++) {
            int ox = conv_dst(x, kx, stride, pad_left, OW);
            if (ox >= 0)
                acc += dcol[((n * OH + oy) * OW + ox) * K + (ky * kw + kx) * cin + ci];
        }
    }
    din[n0 * H * W * cin + i] = acc;
}
