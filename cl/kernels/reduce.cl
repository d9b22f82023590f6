/* reduce.cl — column sums of x viewed as [groups, rows, C] (NHWC with the
 * spatial positions as rows), in two stages and without atomics:
 *
 *   stage 1: work-item id = chunk * C + c of group g sums a contiguous
 *            block of rows of channel c. Consecutive ids read consecutive
 *            addresses on every step, so the reads coalesce whatever C is,
 *            and chunks scales the parallelism up when rows is huge and C
 *            small (BN) while chunks = 1 keeps it at C per group when rows
 *            is small (pooling).
 *   stage 2: one work-group per (g, c) folds the chunks in local memory;
 *            its size is the power of two >= chunks, at most WG, so few
 *            chunks do not leave most of a WG-wide group idle.
 *
 * Each element passes through row_value first, so batch norm's statistics
 * and backward sums and channel-scale's product reuse this reduction. */

#define ROW_PLAIN 0
#define ROW_CENTERED_SQ 1
#define ROW_PRODUCT 2
#define ROW_BN_DZ 3
#define ROW_BN_DZ_XHAT 4

/* The element's contribution; y, mean, istd, gamma, beta are read only by the
 * modes that need them (the host passes x in their place otherwise). */
/* (Batch norm's backward sums take the -DBN_ROWS path of the kernel below,
 * one program per activation; its loop has no mode branch and vectorises.) */
inline float row_value(int mode, int act, float x, __global const float *y, int i, int c,
                       __global const float *mean, __global const float *istd,
                       __global const float *gamma, __global const float *beta)
{
    if (mode == ROW_PLAIN) return x;
    if (mode == ROW_PRODUCT) return x * y[i];
    float d = x - mean[c];
    if (mode == ROW_CENTERED_SQ) return d * d;
    float xh = d * istd[c];
    /* dz = dy * act'(z) with z recomputed: forward keeps no pre-activation */
    float dz = y[i] * act_grad(act, gamma[c] * xh + beta[c]);
    return mode == ROW_BN_DZ ? dz : dz * xh;
}

/* dst[g][chunk][c] = (accumulate ? dst : 0) + scale * partial sum; with
 * chunks == 1 dst is the final [groups, C] output. global = (chunks*C, groups).
 * In the batch-norm program (-DBN_ROWS) both backward sums come out of one
 * pass when pair is set: dst gets sum dz and dst2 sum dz*x̂. */
__kernel void reduce_rows_partial(__global float *dst, __global float *dst2, int pair,
                                  __global const float *x, __global const float *y,
                                  __global const float *mean, __global const float *istd,
                                  __global const float *gamma, __global const float *beta,
                                  int rows, int C, int chunks, int mode, int act, float scale, int accumulate)
{
    int id = get_global_id(0), g = get_global_id(1);
    if (id >= chunks * C) return;
    int c = id % C;
    size_t base = (size_t)g * rows * C;
    /* chunk k sums a contiguous block of rows: neighbouring work-items
     * (channels) still read neighbouring addresses, and each one walks
     * memory forwards, which CPU caches and prefetchers need */
    int per = (rows + chunks - 1) / chunks, r0 = (id / C) * per, r1 = min(rows, r0 + per);
    float acc = 0.0f, acc2 = 0.0f;
#ifdef BN_ROWS
    float m = mean[c], is = istd[c], ga = gamma[c], be = beta[c];
    for (int r = r0; r < r1; r++) {
        size_t i = base + (size_t)r * C + c;
        float xh = (x[i] - m) * is;
        float dz = y[i] * act_grad(act, ga * xh + be); /* z recomputed: forward keeps no pre-activation */
        acc += dz;
        acc2 += dz * xh;
    }
    if (mode == ROW_BN_DZ_XHAT && !pair)
        acc = acc2;
#else
    for (int r = r0; r < r1; r++) {
        size_t i = base + (size_t)r * C + c;
        acc += row_value(mode, act, x[i], y, i, c, mean, istd, gamma, beta);
    }
#endif
    size_t o = (size_t)g * chunks * C + id;
    dst[o] = scale * acc + (accumulate ? dst[o] : 0.0f);
    if (pair)
        dst2[o] = scale * acc2 + (accumulate ? dst2[o] : 0.0f);
}

/* out[g, c] (+)= scale * sum_k part[g][k][c]; one work-group of lsize items
 * (a power of two <= WG) per (g, c): global = (C * lsize, groups). */
__kernel void reduce_rows_final(__global float *out, __global const float *part, int C, int chunks, float scale,
                                int accumulate, int lsize)
{
    __local float sums[WG];
    int c = get_group_id(0), g = get_global_id(1), l = get_local_id(0);
    __global const float *p = part + (size_t)g * chunks * C + c;
    float acc = 0.0f;
    for (int k = l; k < chunks; k += lsize)
        acc += p[(size_t)k * C];
    sums[l] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = lsize / 2; s > 0; s >>= 1) {
        if (l < s) sums[l] += sums[l + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (l == 0) {
        size_t o = (size_t)g * C + c;
        out[o] = scale * sums[0] + (accumulate ? out[o] : 0.0f);
    }
}
