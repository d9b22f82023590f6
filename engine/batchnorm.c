/* batchnorm.c — Keras BatchNormalization with a fused activation:
 * y = act(gamma (x - mean) istd + beta), istd = 1/sqrt(var + eps).
 *
 * TRAIN uses the biased batch statistics over N, H, W, from one pass over
 * the data shifted by its first row (E[d] and E[d^2], d = x - x0: unlike
 * E[x^2] - E[x]^2 this does not cancel badly in float32, as x0 is a sample
 * of the data), and moves the moving statistics. INFER
 * and FROZEN use the moving statistics; forward copies them into
 * saved_mean/saved_istd so backward is the same code in every mode. The
 * activation's input is recomputed from x in backward, never stored. */
#include "norm_internal.h"
#include "tlcl_programs.h"

#include <stdio.h>
#include <stdlib.h>

/* saved_mean / saved_istd: [C], kept across steps (the pool is not touched
 * again while the shape stays the same). */
static tlcl_status bn_saved(tlcl_engine *e, tlcl_bn *bn, int C)
{
    if (bn->saved_mean.buf && bn->saved_mean.c == C && bn->saved_istd.buf)
        return TLCL_OK;
    tlcl_bn_release(e, bn);
    TLCL_TRY(tlcl_tensor_alloc(e, &bn->saved_mean, "bn saved_mean", 1, 1, 1, C));
    return tlcl_tensor_alloc(e, &bn->saved_istd, "bn saved_istd", 1, 1, 1, C);
}

/* One batchnorm program per activation (the switch folds away) and
 * feature-map storage. */
static void bn_opts(char *opts, size_t len, tlcl_act act, tlcl_dtype dtype)
{
    snprintf(opts, len, "-DACT=%d %s", (int)act, eng_dtype_option(dtype));
}

static tlcl_status bn_check_params(tlcl_engine *e, const tlcl_bn *bn, int C)
{
    TLCL_TRY(eng_check_count(e, bn->gamma, (size_t)C, "batchnorm gamma"));
    TLCL_TRY(eng_check_count(e, bn->beta, (size_t)C, "batchnorm beta"));
    TLCL_TRY(eng_check_count(e, bn->moving_mean, (size_t)C, "batchnorm moving_mean"));
    return eng_check_count(e, bn->moving_var, (size_t)C, "batchnorm moving_var");
}

/* bn_stats: with train, turns E[d] and E[d^2] in saved_mean/saved_istd
 * (d = x - x0, x0 being x's first row, or shift[c] when shift is given: a
 * float [C] buffer) into the mean and istd in place and moves the moving
 * statistics; without, copies the moving statistics. x is stored as dtype. */
static tlcl_status bn_stats_run(tlcl_engine *e, tlcl_bn *bn, cl_mem x, tlcl_dtype dtype, cl_mem shift, int rows,
                                int C, int train, tlcl_act act)
{
    size_t g = eng_global1((size_t)C);
    cl_mem shift_or_x = shift ? shift : x; /* bound either way; read only with has_shift */
    char opts[40]; /* the forward's program (one per activation): no build of its own */
    bn_opts(opts, sizeof opts, act, dtype);
    return TLCL_RUN(e->cl, TLCL_PROG(batchnorm), opts, "bn_stats", 1, &g, NULL, TLCL_MEM(bn->saved_mean.buf),
                    TLCL_MEM(bn->saved_istd.buf), TLCL_MEM(bn->moving_mean->buf), TLCL_MEM(bn->moving_var->buf),
                    TLCL_MEM(x), TLCL_MEM(shift_or_x), TLCL_INT(shift != NULL), TLCL_INT(C), TLCL_INT(rows),
                    TLCL_FLOAT(bn->epsilon), TLCL_FLOAT(bn->momentum), TLCL_INT(train));
}

/* Fills saved_mean/saved_istd: batch statistics of x viewed as [rows, C]
 * (train) or the moving ones. */
static tlcl_status bn_statistics(tlcl_engine *e, tlcl_bn *bn, cl_mem x, tlcl_dtype dtype, int rows, int C, int train,
                                 tlcl_act act)
{
    if (train) {
        float inv = rows > 0 ? 1.0f / (float)rows : 0.0f;
        /* E[d] into saved_mean, E[d^2] into saved_istd; bn_stats turns them
         * into the mean and istd in place */
        eng_row_map shifted = {.mode = ENG_ROW_SHIFTED, .dtype = dtype};
        TLCL_TRY(eng_reduce_pair(e, bn->saved_mean.buf, bn->saved_istd.buf, x, rows, C, inv, 0, &shifted));
    }
    return bn_stats_run(e, bn, x, dtype, NULL, rows, C, train, act);
}

/* ---- synchronised batch norm (tlcl_engine_set_reducer) ---------------------- */

void tlcl_engine_set_reducer(tlcl_engine *e, const tlcl_reducer *red)
{
    e->bn_reducer = red ? *red : (tlcl_reducer){0};
}

static int bn_synced(const tlcl_engine *e) { return e->bn_reducer.sum != NULL; }

/* Sums the per-channel sums a and b ([C] each; b may be NULL) and this
 * replica's row count across the replicas, in place, through the host.
 * *total receives the global row count; with `mean` the sums are divided
 * by it. */
static tlcl_status bn_sum_across(tlcl_engine *e, cl_mem a, cl_mem b, int C, int rows, int mean, float *total)
{
    size_t per = (size_t)C * sizeof(float), n = (size_t)C * (b ? 2 : 1) + 1;
    if (n > e->bn_sums_cap) { /* grown once to the widest layer, then reused every step */
        float *grown = realloc(e->bn_sums_host, n * sizeof *grown);
        if (!grown)
            return ENG_FAIL(e, TLCL_ERR_OOM, "synchronised batch norm: out of host memory");
        e->bn_sums_host = grown, e->bn_sums_cap = n;
    }
    float *h = e->bn_sums_host;
    tlcl_status s = tlcl_cl_read(e->cl, a, 0, per, h, "batch-norm sums");
    if (s == TLCL_OK && b)
        s = tlcl_cl_read(e->cl, b, 0, per, h + C, "batch-norm sums");
    h[n - 1] = (float)rows; /* exact below 2^24 rows */
    char err[512] = "";
    if (s == TLCL_OK && (s = e->bn_reducer.sum(e->bn_reducer.ctx, e->bn_reducer.replica, h, n, err, sizeof err)))
        s = ENG_FAIL(e, s, "synchronised batch norm: %s", err[0] ? err : "the sum across replicas failed");
    if (s == TLCL_OK && !(h[n - 1] > 0))
        s = ENG_FAIL(e, TLCL_ERR_ARG, "synchronised batch norm: the replicas hold no rows");
    *total = h[n - 1];
    for (size_t i = 0; s == TLCL_OK && mean && i + 1 < n; i++)
        h[i] /= *total;
    if (s == TLCL_OK)
        s = tlcl_cl_write(e->cl, a, 0, per, h, "batch-norm sums");
    if (s == TLCL_OK && b)
        s = tlcl_cl_write(e->cl, b, 0, per, h + C, "batch-norm sums");
    return s;
}

/* Training statistics of the global batch: its mean first (the sum of x
 * across replicas), then E[d] and E[d^2] about that mean, so the variance
 * is a two-pass one whatever the replicas' data; bn_stats then reads the
 * mean as its shift. */
static tlcl_status bn_statistics_synced(tlcl_engine *e, tlcl_bn *bn, cl_mem x, tlcl_dtype dtype, int rows, int C,
                                        tlcl_act act)
{
    tlcl_tensor shift;
    float total;
    TLCL_TRY(tlcl_tensor_alloc(e, &shift, "bn global mean", 1, 1, 1, C));
    eng_row_map plain = {.mode = ENG_ROW_PLAIN, .dtype = dtype};
    tlcl_status s = eng_reduce_rows(e, shift.buf, x, 1, rows, C, 1.0f, 0, &plain);
    if (s == TLCL_OK)
        s = bn_sum_across(e, shift.buf, NULL, C, rows, 1, &total);
    eng_row_map about_mean = {.mode = ENG_ROW_SHIFTED_BY, .mean = shift.buf, .dtype = dtype};
    if (s == TLCL_OK)
        s = eng_reduce_pair(e, bn->saved_mean.buf, bn->saved_istd.buf, x, rows, C, 1.0f, 0, &about_mean);
    if (s == TLCL_OK)
        s = bn_sum_across(e, bn->saved_mean.buf, bn->saved_istd.buf, C, rows, 1, &total);
    if (s == TLCL_OK)
        s = bn_stats_run(e, bn, x, dtype, shift.buf, rows, C, 1, act);
    tlcl_tensor_release(e, &shift);
    return s;
}

/* Training mode on a CPU takes the column kernels (one work-item per channel
 * vector over all rows, batchnorm.cl) when a column of x and dy fits the
 * per-core cache, so their second pass reads it from there, and there are
 * enough channel vectors for every core: the late, small layers. V2-B0's
 * stages 4-6 (14x14 and 7x7) at batch 16. */
#define BN_COLUMN_MAX_BYTES ((size_t)512 << 10)

/* The settings' bn_column ($TLCL_BN_COLUMN) 1 takes the column kernels for
 * every training-mode shape on any device, 0 never (the tests run the
 * kernels on GPUs and simulators with it); -1, the rule above. */
static int bn_column(tlcl_engine *e, size_t rows, int C, int V)
{
    int forced = tlcl_cl_settings(e->cl)->bn_column;
    if (forced >= 0)
        return forced && rows > 0 && C > 0;
    size_t column = rows * (size_t)V * sizeof(float) * 2; /* x and dy */
    return eng_on_cpu(e) && rows > 0 && column <= BN_COLUMN_MAX_BYTES &&
           (size_t)(C / V) >= 2 * tlcl_cl_device(e->cl)->compute_units;
}

static tlcl_status bn_train_forward_column(tlcl_engine *e, tlcl_bn *bn, tlcl_tensor *out, const tlcl_tensor *in,
                                           int rows, int V, tlcl_act act)
{
    int Cv = in->c / V;
    size_t g = eng_global1((size_t)Cv);
    char opts[40], kernel[40];
    bn_opts(opts, sizeof opts, act, in->dtype);
    snprintf(kernel, sizeof kernel, "bn_train_forward_column_%d", V);
    e->bn_column_launches[0]++;
    return TLCL_RUN(e->cl, TLCL_PROG(batchnorm), opts, kernel, 1, &g, NULL, TLCL_MEM(out->buf), TLCL_MEM(in->buf),
                    TLCL_MEM(bn->saved_mean.buf), TLCL_MEM(bn->saved_istd.buf), TLCL_MEM(bn->moving_mean->buf),
                    TLCL_MEM(bn->moving_var->buf), TLCL_MEM(bn->gamma->buf), TLCL_MEM(bn->beta->buf),
                    TLCL_INT(rows), TLCL_INT(Cv), TLCL_FLOAT(bn->epsilon), TLCL_FLOAT(bn->momentum), TLCL_INT(act));
}

tlcl_status tlcl_batchnorm_forward(tlcl_engine *e, tlcl_bn *bn, tlcl_tensor *out, const tlcl_tensor *in,
                                   tlcl_bn_mode mode, tlcl_act act)
{
    int C = in->c;
    TLCL_TRY(eng_check_shape(e, out, in->n, in->h, in->w, C, "batchnorm forward"));
    TLCL_TRY(eng_check_dtype(e, out, in->dtype, "batchnorm forward"));
    TLCL_TRY(bn_check_params(e, bn, C));
    if (out->buf == in->buf)
        return ENG_FAIL(e, TLCL_ERR_ARG, "batchnorm forward: out '%s' aliases in", out->name ? out->name : "?");
    TLCL_TRY(bn_saved(e, bn, C));
    size_t rows = (size_t)in->n * in->h * in->w;
    int V = C > 0 ? eng_channel_vector(e, C) : 1;
    if (mode == TLCL_BN_TRAIN && bn_synced(e))
        TLCL_TRY(bn_statistics_synced(e, bn, in->buf, in->dtype, (int)rows, C, act));
    else if (mode == TLCL_BN_TRAIN && bn_column(e, rows, C, V))
        return bn_train_forward_column(e, bn, out, in, (int)rows, V, act);
    else
        TLCL_TRY(bn_statistics(e, bn, in->buf, in->dtype, (int)rows, C, mode == TLCL_BN_TRAIN, act));
    if (rows == 0 || C == 0)
        return TLCL_OK;
    size_t g = eng_global1(rows * (size_t)(C / V));
    char opts[40], kernel[32];
    bn_opts(opts, sizeof opts, act, in->dtype);
    snprintf(kernel, sizeof kernel, "bn_forward_%d", V);
    return TLCL_RUN(e->cl, TLCL_PROG(batchnorm), opts, kernel, 1, &g, NULL, TLCL_MEM(out->buf), TLCL_MEM(in->buf),
                    TLCL_MEM(bn->saved_mean.buf), TLCL_MEM(bn->saved_istd.buf), TLCL_MEM(bn->gamma->buf),
                    TLCL_MEM(bn->beta->buf), TLCL_INT(rows), TLCL_INT(C / V), TLCL_INT(act));
}

tlcl_status eng_bn_moving_statistics(tlcl_engine *e, tlcl_bn *bn, int C, tlcl_act act)
{
    TLCL_TRY(bn_check_params(e, bn, C));
    TLCL_TRY(bn_saved(e, bn, C));
    return bn_statistics(e, bn, bn->gamma->buf, TLCL_F32, 0, C, 0, act); /* x is not read */
}

static tlcl_status bn_dx(tlcl_engine *e, const tlcl_bn *bn, tlcl_tensor *din, const tlcl_tensor *dout,
                         const tlcl_tensor *in, tlcl_act act, cl_mem sum_dz, cl_mem sum_dzx, float inv_count)
{
    size_t rows = (size_t)in->n * in->h * in->w;
    if (rows == 0 || in->c == 0)
        return TLCL_OK;
    int V = eng_channel_vector(e, in->c);
    size_t g = eng_global1(rows * (size_t)(in->c / V));
    char opts[40], kernel[32];
    bn_opts(opts, sizeof opts, act, in->dtype);
    snprintf(kernel, sizeof kernel, "bn_backward_dx_%d", V);
    return TLCL_RUN(e->cl, TLCL_PROG(batchnorm), opts, kernel, 1, &g, NULL, TLCL_MEM(din->buf), TLCL_MEM(dout->buf),
                    TLCL_MEM(in->buf), TLCL_MEM(bn->saved_mean.buf), TLCL_MEM(bn->saved_istd.buf),
                    TLCL_MEM(bn->gamma->buf), TLCL_MEM(bn->beta->buf), TLCL_MEM(sum_dz), TLCL_MEM(sum_dzx),
                    TLCL_INT(rows), TLCL_INT(in->c / V), TLCL_INT(act), TLCL_FLOAT(inv_count));
}

/* Σ dz and Σ dz·x̂ over N, H, W into out_dz / out_dzx (accumulating or not). */
static tlcl_status bn_grad_sums(tlcl_engine *e, const tlcl_bn *bn, const tlcl_tensor *dout, const tlcl_tensor *in,
                                tlcl_act act, cl_mem out_dz, cl_mem out_dzx, int accumulate)
{
    int rows = in->n * in->h * in->w;
    eng_row_map m = {.mode = ENG_ROW_BN_DZ, .y = dout->buf, .mean = bn->saved_mean.buf,
                     .istd = bn->saved_istd.buf, .gamma = bn->gamma->buf, .beta = bn->beta->buf, .act = act,
                     .dtype = in->dtype};
    if (out_dz && out_dzx)
        return eng_reduce_pair(e, out_dz, out_dzx, in->buf, rows, in->c, 1.0f, accumulate, &m);
    if (out_dz)
        TLCL_TRY(eng_reduce_rows(e, out_dz, in->buf, 1, rows, in->c, 1.0f, accumulate, &m));
    m.mode = ENG_ROW_BN_DZ_XHAT;
    if (out_dzx)
        TLCL_TRY(eng_reduce_rows(e, out_dzx, in->buf, 1, rows, in->c, 1.0f, accumulate, &m));
    return TLCL_OK;
}

static tlcl_status bn_train_backward_column(tlcl_engine *e, tlcl_bn *bn, tlcl_tensor *din,
                                            const tlcl_tensor *dout, const tlcl_tensor *in, int rows, int V,
                                            tlcl_act act)
{
    int Cv = in->c / V;
    size_t g = eng_global1((size_t)Cv);
    char opts[40], kernel[40];
    bn_opts(opts, sizeof opts, act, in->dtype);
    snprintf(kernel, sizeof kernel, "bn_train_backward_column_%d", V);
    e->bn_column_launches[1]++;
    cl_mem dgamma = bn->dgamma ? bn->dgamma->buf : in->buf, dbeta = bn->dbeta ? bn->dbeta->buf : in->buf;
    cl_mem dx = din ? din->buf : in->buf; /* bound either way; written only with the flags */
    return TLCL_RUN(e->cl, TLCL_PROG(batchnorm), opts, kernel, 1, &g, NULL, TLCL_MEM(dx), TLCL_MEM(dout->buf),
                    TLCL_MEM(in->buf), TLCL_MEM(bn->saved_mean.buf), TLCL_MEM(bn->saved_istd.buf),
                    TLCL_MEM(bn->gamma->buf), TLCL_MEM(bn->beta->buf), TLCL_MEM(dgamma), TLCL_MEM(dbeta),
                    TLCL_INT(bn->dgamma != NULL), TLCL_INT(din != NULL), TLCL_INT(rows), TLCL_INT(Cv), TLCL_INT(act));
}

/* Batch statistics: dx needs both sums whether or not the parameter
 * gradients are wanted, so they go to scratch and are added to dgamma/dbeta.
 * Synchronised, dgamma/dbeta take this replica's sums (the gradient sum
 * adds the replicas' up) and dx the global ones. */
static tlcl_status bn_backward_train(tlcl_engine *e, tlcl_bn *bn, tlcl_tensor *din, const tlcl_tensor *dout,
                                     const tlcl_tensor *in, tlcl_act act)
{
    int C = in->c, rows = in->n * in->h * in->w;
    int V = C > 0 ? eng_channel_vector(e, C) : 1;
    /* the column kernel parks dz in din between its passes: din must not be x */
    if (!bn_synced(e) && bn_column(e, (size_t)rows, C, V) && (bn->dgamma != NULL) == (bn->dbeta != NULL) &&
        !(din && din->buf == in->buf))
        return bn_train_backward_column(e, bn, din, dout, in, rows, V, act);
    tlcl_tensor sdz, sdzx;
    float count = (float)rows;
    TLCL_TRY(tlcl_tensor_alloc(e, &sdz, "bn sum_dz", 1, 1, 1, C));
    tlcl_status s = tlcl_tensor_alloc(e, &sdzx, "bn sum_dzx", 1, 1, 1, C);
    if (s == TLCL_OK) {
        s = bn_grad_sums(e, bn, dout, in, act, sdz.buf, sdzx.buf, 0);
        if (s == TLCL_OK && bn->dgamma)
            s = tlcl_tensor_axpy(e, bn->dgamma, 1.0f, &sdzx);
        if (s == TLCL_OK && bn->dbeta)
            s = tlcl_tensor_axpy(e, bn->dbeta, 1.0f, &sdz);
        if (s == TLCL_OK && din && bn_synced(e))
            s = bn_sum_across(e, sdz.buf, sdzx.buf, C, rows, 0, &count);
        if (s == TLCL_OK && din)
            s = bn_dx(e, bn, din, dout, in, act, sdz.buf, sdzx.buf, count > 0 ? 1.0f / count : 0.0f);
        tlcl_tensor_release(e, &sdzx);
    }
    tlcl_tensor_release(e, &sdz);
    return s;
}

tlcl_status tlcl_batchnorm_backward(tlcl_engine *e, tlcl_bn *bn, tlcl_tensor *din, const tlcl_tensor *dout,
                                    const tlcl_tensor *in, tlcl_bn_mode mode, tlcl_act act)
{
    int C = in->c;
    TLCL_TRY(eng_check_shape(e, dout, in->n, in->h, in->w, C, "batchnorm backward"));
    TLCL_TRY(eng_check_dtype(e, dout, in->dtype, "batchnorm backward"));
    if (din) {
        TLCL_TRY(eng_check_shape(e, din, in->n, in->h, in->w, C, "batchnorm backward"));
        TLCL_TRY(eng_check_dtype(e, din, in->dtype, "batchnorm backward"));
    }
    TLCL_TRY(bn_check_params(e, bn, C));
    if (!bn->saved_mean.buf || bn->saved_mean.c != C)
        return ENG_FAIL(e, TLCL_ERR_ARG, "batchnorm backward: no saved statistics (run forward first)");
    if (mode == TLCL_BN_TRAIN)
        return bn_backward_train(e, bn, din, dout, in, act);
    /* moving statistics: constants for x, so dx = gamma istd dz */
    if (mode == TLCL_BN_INFER)
        TLCL_TRY(bn_grad_sums(e, bn, dout, in, act, bn->dbeta ? bn->dbeta->buf : NULL,
                             bn->dgamma ? bn->dgamma->buf : NULL, 1));
    if (!din)
        return TLCL_OK;
    return bn_dx(e, bn, din, dout, in, act, bn->gamma->buf, bn->gamma->buf, 0.0f);
}

void tlcl_bn_release(tlcl_engine *e, tlcl_bn *bn)
{
    tlcl_tensor_release(e, &bn->saved_mean);
    tlcl_tensor_release(e, &bn->saved_istd);
}
