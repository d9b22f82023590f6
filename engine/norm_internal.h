/* norm_internal.h — the column reduction behind batch norm, pooling, dense
 * bias gradients and channel scaling, and the per-(sample, channel)
 * broadcast they share. engine/ only. */
#ifndef TLCL_NORM_INTERNAL_H
#define TLCL_NORM_INTERNAL_H

#include "engine_internal.h"

/* What each element contributes to the column sum (values as in reduce.cl).
 * x̂ = (x - mean[c]) * istd[c]; dz = y * act'(gamma[c] x̂ + beta[c]) with y = dy. */
typedef enum eng_row_mode {
    ENG_ROW_PLAIN = 0,    /* x */
    ENG_ROW_SHIFTED,      /* pair: d = x - x[row 0] and d^2 (needs out2) */
    ENG_ROW_PRODUCT,      /* x * y */
    ENG_ROW_BN_DZ,        /* dz */
    ENG_ROW_BN_DZ_XHAT,   /* dz * x̂ */
    ENG_ROW_SHIFTED_BY,   /* pair: d = x - mean[c] and d^2 (needs out2) */
} eng_row_mode;

typedef struct eng_row_map {
    eng_row_mode mode;
    cl_mem y, mean, istd, gamma, beta;  /* only those the mode reads; NULL otherwise */
    tlcl_act act;
    tlcl_dtype dtype;                   /* the storage of in and y (the sums are float) */
} eng_row_map;

/* out[g, c] (+)= scale * sum_r f(in[g, r, c]) over in viewed as [groups, rows, C];
 * map NULL means f(x) = x over float32. */
tlcl_status eng_reduce_rows(tlcl_engine *e, cl_mem out, cl_mem in, int groups, int rows, int C, float scale,
                            int accumulate, const eng_row_map *map);

/* Two sums from a single pass over in viewed as [rows, C]: with map's mode
 * ENG_ROW_BN_DZ, batch norm's backward sums (out: sum dz, out2: sum dz*x̂);
 * with ENG_ROW_SHIFTED, sum d and sum d^2 for d = x - x[0, c]. */
tlcl_status eng_reduce_pair(tlcl_engine *e, cl_mem out, cl_mem out2, cl_mem in, int rows, int C, float scale,
                            int accumulate, const eng_row_map *map);

/* Fills bn's saved_mean/saved_istd from its moving statistics (what
 * inference-mode batch norm applies), for kernels that fuse it; act names
 * the batch-norm program it runs in. */
tlcl_status eng_bn_moving_statistics(tlcl_engine *e, tlcl_bn *bn, int C, tlcl_act act);

/* out[n,p,c] = in[n,p,c] * mul[n,c] + add[n,c] * add_scale over [N, HW, C];
 * in/mul NULL drops the product term, add NULL drops the sum term. out and
 * in are stored as dtype, mul and add as float32. */
tlcl_status eng_channel_broadcast(tlcl_engine *e, tlcl_dtype dtype, cl_mem out, cl_mem in, cl_mem mul, cl_mem add,
                                  float add_scale, int N, int HW, int C);

#endif
