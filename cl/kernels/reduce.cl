/* reduce.cl — column sums of x viewed as [groups, rows, C] (NHWC with the
 * spatial positions as rows), in two stages and without atomics:
 *
 *   stage 1: work-item id = chunk * nblk + blk of group g sums a
 *            contiguous block of rows of REDUCE_CB channel vectors (V
 *            channels each) from vector blk * REDUCE_CB on. With one vector
 *            (GPUs) consecutive ids read consecutive addresses on every
 *            step, so the reads coalesce whatever C is; chunks scales the
 *            parallelism up when rows is huge and C small (BN) while
 *            chunks = 1 keeps it at C per group when rows is small
 *            (pooling).
 *   stage 2: one work-group per (g, c) folds the chunks in local memory;
 *            its size is the power of two >= chunks, at most WG, so few
 *            chunks do not leave most of a WG-wide group idle.
 *
 * The modes below sum a transform of the elements, so batch norm's
 * statistics and backward sums and channel-scale's product reuse this
 * reduction. x and y are act_t (common.cl: bfloat16 feature maps under
 * -DTLCL_BF16); the sums are float. */

#define ROW_PLAIN 0
#define ROW_SHIFTED 1
#define ROW_PRODUCT 2
#define ROW_BN_DZ 3
#define ROW_BN_DZ_XHAT 4
#define ROW_SHIFTED_BY 5

/* dst[g][chunk][c] = (accumulate ? dst : 0) + scale * partial sum; with
 * chunks == 1 dst is the final [groups, C] output. A work-item sums
 * REDUCE_CB adjacent vectors of V channels (Cv = C / V vectors a row):
 * global = (chunks * ceil(Cv / REDUCE_CB), groups).
 * Each mode has a loop of its own, so no branch sits inside one:
 *   ROW_PLAIN     x
 *   ROW_PRODUCT   x * y
 *   ROW_SHIFTED   pair: d = x - x0 and d^2, x0 the group's first row. Batch
 *                 norm's mean and variance come from one pass this way;
 *                 shifting by a sample of the data keeps E[d^2] - E[d]^2
 *                 from cancelling the way E[x^2] - E[x]^2 does in float.
 *   ROW_SHIFTED_BY  the same pair with x0 = mean[c], a shift every replica
 *                 of a synchronised batch norm shares (the global mean).
 *   ROW_BN_DZ     (-DBN_ROWS programs, one per activation) dz = y * act'(z),
 *                 z = gamma x̂ + beta recomputed (forward keeps no
 *                 pre-activation), x̂ = (x - mean) istd; with pair set, the
 *                 second sum is dz x̂, both from one read of x and y.
 *   ROW_BN_DZ_XHAT  dz x̂ alone. */
/* REDUCE_CB (-D from the host): channel vectors a work-item sums side by
 * side. 1 on GPUs, where neighbouring work-items read neighbouring vectors;
 * on CPUs a work-item runs its whole loop before the next starts, and one
 * vector a row read a 64-byte line every C floats, a strided walk per
 * work-item well below the copy bandwidth; a block of vectors reads each
 * row's run of them contiguously. The unrolled block loops
 * keep the sums in registers; b < nb skips the vectors past C. */
#ifndef REDUCE_CB
#define REDUCE_CB 1
#endif
#define REDUCE_PRAGMA_(x) _Pragma(#x)
#define FOR_BLOCK(b) REDUCE_PRAGMA_(unroll) for (int b = 0; b < REDUCE_CB; b++) if (b < nb)
#ifdef BN_ROWS
#define BN_ROWS_LOOP(S, T, V)                                                                    \
    else {                                                                                       \
        T m[REDUCE_CB], is[REDUCE_CB], ga[REDUCE_CB], be[REDUCE_CB];                             \
        FOR_BLOCK(b) {                                                                           \
            m[b] = LOAD_##V(cv0 + b, mean), is[b] = LOAD_##V(cv0 + b, istd);                     \
            ga[b] = LOAD_##V(cv0 + b, gamma), be[b] = LOAD_##V(cv0 + b, beta);                   \
        }                                                                                        \
        for (int r = r0; r < r1; r++) {                                                          \
            size_t i = base + (size_t)r * Cv;                                                    \
            FOR_BLOCK(b) {                                                                       \
                T xh = (LOADA_##V(i + b, x) - m[b]) * is[b];                                     \
                T dz = LOADA_##V(i + b, y) * act_grad##S(act, ga[b] * xh + be[b]);               \
                acc[b] += dz;                                                                    \
                acc2[b] += dz * xh;                                                              \
            }                                                                                    \
        }                                                                                        \
        if (mode == ROW_BN_DZ_XHAT && !pair)                                                     \
            FOR_BLOCK(b) acc[b] = acc2[b];                                                       \
    }
#else
#define BN_ROWS_LOOP(S, T, V)
#endif

#define REDUCE_PARTIAL(S, T, V)                                                                  \
    __kernel void reduce_rows_partial_##V(                                                       \
        __global float *dst, __global float *dst2, int pair, __global const act_t *x,            \
        __global const act_t *y, __global const float *mean, __global const float *istd,         \
        __global const float *gamma, __global const float *beta, int rows, int Cv, int chunks,   \
        int mode, int act, float scale, int accumulate)                                          \
    {                                                                                            \
        int id = get_global_id(0), g = get_global_id(1);                                         \
        int nblk = (Cv + REDUCE_CB - 1) / REDUCE_CB;                                             \
        if (id >= chunks * nblk)                                                                 \
            return;                                                                              \
        int cv0 = id % nblk * REDUCE_CB, nb = min(REDUCE_CB, Cv - cv0), chunk = id / nblk;      \
        size_t base = (size_t)g * rows * Cv + cv0;                                               \
        /* chunk k sums a contiguous block of rows: each work-item walks memory forwards */      \
        int per = (rows + chunks - 1) / chunks, r0 = chunk * per, r1 = min(rows, r0 + per);      \
        T acc[REDUCE_CB], acc2[REDUCE_CB];                                                       \
        FOR_BLOCK(b) acc[b] = acc2[b] = (T)(0.0f);                                               \
        if (mode == ROW_PLAIN) {                                                                 \
            for (int r = r0; r < r1; r++)                                                        \
                FOR_BLOCK(b) acc[b] += LOADA_##V(base + (size_t)r * Cv + b, x);                  \
        } else if (mode == ROW_PRODUCT) {                                                        \
            for (int r = r0; r < r1; r++) {                                                      \
                size_t i = base + (size_t)r * Cv;                                                \
                FOR_BLOCK(b) acc[b] += LOADA_##V(i + b, x) * LOADA_##V(i + b, y);                \
            }                                                                                    \
        } else if (mode == ROW_SHIFTED || mode == ROW_SHIFTED_BY) {                              \
            T x0[REDUCE_CB];                                                                     \
            FOR_BLOCK(b) x0[b] = mode == ROW_SHIFTED_BY ? LOAD_##V(cv0 + b, mean)                \
                                 : rows > 0             ? LOADA_##V(base + b, x)                 \
                                                        : (T)(0.0f);                             \
            for (int r = r0; r < r1; r++) {                                                      \
                size_t i = base + (size_t)r * Cv;                                                \
                FOR_BLOCK(b) {                                                                   \
                    T d = LOADA_##V(i + b, x) - x0[b];                                           \
                    acc[b] += d;                                                                 \
                    acc2[b] += d * d;                                                            \
                }                                                                                \
            }                                                                                    \
        }                                                                                        \
        BN_ROWS_LOOP(S, T, V)                                                                    \
        size_t o = ((size_t)g * chunks + chunk) * Cv + cv0;                                      \
        FOR_BLOCK(b) {                                                                           \
            STORE_##V(scale * acc[b] + (accumulate ? LOAD_##V(o + b, dst) : (T)(0.0f)), o + b, dst); \
            if (pair)                                                                            \
                STORE_##V(scale * acc2[b] + (accumulate ? LOAD_##V(o + b, dst2) : (T)(0.0f)), o + b, dst2); \
        }                                                                                        \
    }

FOR_EACH_WIDTH(REDUCE_PARTIAL)

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
