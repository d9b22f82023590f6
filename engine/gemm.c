/* gemm.c — the GEMM interface and tlcl's own kernels (cl/kernels/gemm.cl).
 * The back-end is chosen per device (see gemm_select.c) or forced by
 * $TLCL_GEMM / tlcl_gemm_set_backend. */
#include "engine_internal.h"
#include "tlcl_programs.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *tlcl_gemm_backend_name(tlcl_gemm_backend b)
{
    return b == TLCL_GEMM_OWN ? "own" : b == TLCL_GEMM_CLBLAST ? "clblast" : "auto";
}

void tlcl_gemm_set_backend(tlcl_engine *e, tlcl_gemm_backend b) { e->gemm_backend = b; }

tlcl_gemm_backend tlcl_gemm_get_backend(tlcl_engine *e)
{
    if (e->gemm_backend == TLCL_GEMM_AUTO)
        e->gemm_backend = gemm_select_resolve(e);
    return e->gemm_backend;
}

/* ---- per-device tuning ----------------------------------------------------
 * One option string per device (every tuning value is a -D), so the GEMM
 * program compiles once per device whatever the shapes. */

typedef struct gemm_cfg {
    int tm, vw, nv;      /* rows per work-item, vector width, vectors per work-item */
    int vwn;             /* gemm_tile_narrow's width (one vector per row) */
    size_t lx, ly;       /* gemm_tile's local size; 0: left to the driver */
    int tr;              /* gemm_transpose's tile (local size tr x tr) */
    int min_items;       /* fewer work-items than this: split K */
    long chunk_bytes;    /* CPUs: split long K into chunks of A and B this size */
    int stage_a;         /* CPUs: a bfloat16 A is widened in runs into private floats (gemm.cl) */
    char options[128];   /* the tiles as -D options (gemm_options adds the rest) */
} gemm_cfg;

/* The float32 storage of every operand (tlcl_gemm). */
static const tlcl_gemm_storage GEMM_F32 = {TLCL_F32, TLCL_F32, TLCL_F32};

/* The program options of one of gemm.cl's kernel sets: the tiles, the set
 * (-DGEMM_CONV, -DGEMM_BN: programs of their own, so a device compiles only
 * those it runs, a training step no batch-norm epilogue, B0 no convolution
 * kernel but the stem's: it shortens the cold start) and the storage of the
 * operands (-DGEMM_A_BF16 ...: only the combinations the callers use get
 * built). float32 adds nothing: the float32 programs are unchanged. */
typedef struct gemm_opts {
    char s[256];
} gemm_opts;

static gemm_opts gemm_options(const gemm_cfg *c, const tlcl_gemm_storage *st, int conv, int bn)
{
    gemm_opts o;
    int a16 = st->a == TLCL_BF16;
    snprintf(o.s, sizeof o.s, "%s%s%s%s%s%s", c->options, conv ? " -DGEMM_CONV" : "", bn ? " -DGEMM_BN" : "",
             a16 ? (c->stage_a ? " -DGEMM_A_BF16 -DGEMM_A_STAGE" : " -DGEMM_A_BF16") : "",
             st->b == TLCL_BF16 ? " -DGEMM_B_BF16" : "", st->c == TLCL_BF16 ? " -DGEMM_C_BF16" : "");
    return o;
}

/* What is not tuned, per family (tlcl_device_family_of): the transpose's
 * tile, how many work-items a product needs before K is split, and on CPUs
 * the size of the K chunks (see choose_splits). The tiles are the
 * engine's tuning (tuning.c: the family defaults or the tuning file). */
static gemm_cfg gemm_family_extras(const tlcl_device_info *d)
{
    int cus = (int)d->compute_units;
    switch (tlcl_device_family_of(d)) {
    case TLCL_FAMILY_CPU_SIMT: return (gemm_cfg){.tr = 16, .min_items = 8 * cus, .stage_a = 1};
    case TLCL_FAMILY_CPU_SIMD:
        return (gemm_cfg){.tr = 16, .min_items = 8 * cus, .chunk_bytes = 512 * 1024, .stage_a = 1};
    case TLCL_FAMILY_NVIDIA:
    case TLCL_FAMILY_AMD:
    case TLCL_FAMILY_GPU_OTHER:
    case TLCL_FAMILY_INTEL_GPU:
    case TLCL_FAMILY_ARM_MALI: return (gemm_cfg){.tr = 16, .min_items = 64 * cus};
    case TLCL_FAMILY_OTHER: break;
    }
    return (gemm_cfg){.tr = 16, .min_items = 256};
}

/* $TLCL_GEMM_TUNE="tm,vw,nv,vwn,lx,ly" (for tuning with bench_gemm)
 * replaces every tile set when it passes the checks the tuning passes. */
static tlcl_gemm_tiles gemm_env_tiles(tlcl_engine *e, const tlcl_gemm_tiles *tiles)
{
    const char *env = tlcl_cl_settings(e->cl)->gemm_tune;
    tlcl_tuning u = e->tuning;
    tlcl_gemm_tiles *x = &u.conv;
    char why[200];
    if (env[0] && sscanf(env, "%d,%d,%d,%d,%d,%d", &x->tm, &x->vw, &x->nv, &x->vwn, &x->lx, &x->ly) == 6) {
        for (int k = 0; k < TLCL_GEMM_CLASSES; k++)
            u.gemm[k] = *x;
        if (!tlcl_tuning_invalid(&u, tlcl_cl_device(e->cl), why, sizeof why))
            return *x;
    }
    return *tiles;
}

/* The configuration of one tile set: the products' (gemm_config) or the
 * implicit convolutions' (conv_config). */
static gemm_cfg gemm_config_of(tlcl_engine *e, const tlcl_gemm_tiles *tiles)
{
    const tlcl_device_info *d = tlcl_cl_device(e->cl);
    gemm_cfg c = gemm_family_extras(d);
    tlcl_gemm_tiles t = gemm_env_tiles(e, tiles);
    c.tm = t.tm, c.vw = t.vw, c.nv = t.nv, c.vwn = t.vwn, c.lx = (size_t)t.lx, c.ly = (size_t)t.ly;
    while ((size_t)(c.tr * c.tr) > d->max_work_group_size)
        c.tr /= 2;
    snprintf(c.options, sizeof c.options, "-DGEMM_TM=%d -DGEMM_VW=%d -DGEMM_NV=%d -DGEMM_VWN=%d -DGEMM_TR=%d", c.tm,
             c.vw, c.nv, c.vwn, c.tr);
    return c;
}

int eng_gemm_class(int ta, int tb) { return ta ? TLCL_GEMM_TN : tb ? TLCL_GEMM_NT : TLCL_GEMM_NN; }

static gemm_cfg gemm_config(tlcl_engine *e, int ta, int tb)
{
    return gemm_config_of(e, &e->tuning.gemm[eng_gemm_class(ta, tb)]);
}
static gemm_cfg conv_config(tlcl_engine *e) { return gemm_config_of(e, &e->tuning.conv); }

/* ---- the own back-end ------------------------------------------------------ */

/* One product in the kernels' form: B row-major [K, N], A by strides. */
typedef struct gemm_job {
    int M, N, K, kc, splits;
    float alpha, beta;
    cl_mem A, B, C;
    tlcl_gemm_storage st; /* the storage of A, B and C */
    int a_off, a_rs, a_ks, b_off, ldb, c_off, ldc, c_ss;
    /* the per-column batch norm + act epilogue (GEMM_BN_ARGS in gemm.cl):
     * bn_on, then mean, istd, gamma, beta (bound to C when off, so every
     * argument is a valid buffer) and the activation */
    int bn_on, bn_act, bn_has_res;
    cl_mem bn_mem[5]; /* [4]: the residual added after the activation */
} gemm_job;

#define GEMM_BN_KARGS(j)                                                                                    \
    TLCL_INT((j)->bn_on), TLCL_MEM((j)->bn_mem[0]), TLCL_MEM((j)->bn_mem[1]), TLCL_MEM((j)->bn_mem[2]),     \
        TLCL_MEM((j)->bn_mem[3]), TLCL_INT((j)->bn_act), TLCL_MEM((j)->bn_mem[4]), TLCL_INT((j)->bn_has_res)

/* The epilogue's arguments from bn (NULL: none); unused buffers are bound
 * to C so every argument is a valid buffer. */
static void gemm_job_bn(gemm_job *j, const eng_gemm_bn *bn, cl_mem C)
{
    j->bn_on = bn != NULL;
    j->bn_act = bn ? (int)bn->act : 0;
    j->bn_has_res = bn && bn->residual;
    for (int k = 0; k < 5; k++)
        j->bn_mem[k] = C;
    if (bn) {
        cl_mem m[5] = {bn->mean, bn->istd, bn->gamma, bn->beta, bn->residual ? bn->residual : C};
        for (int k = 0; k < 5; k++)
            j->bn_mem[k] = m[k];
    }
}

static size_t round_up(size_t x, size_t m) { return m ? (x + m - 1) / m * m : x; }

/* Never asks for more than the compiled kernel allows on this device. */
static const size_t *fit_local(tlcl_engine *e, const char *opts, const char *kname, size_t *local)
{
    if (!local[0])
        return NULL;
    cl_kernel k;
    size_t max = 0;
    if (tlcl_cl_kernel(e->cl, TLCL_PROG(gemm), opts, kname, &k) == TLCL_OK)
        max = tlcl_cl_kernel_max_wg(e->cl, k);
    while (max && local[0] * local[1] > max)
        local[1] > 1 ? (local[1] /= 2) : (local[0] /= 2);
    return local;
}

/* gemm_tile (or _narrow) over nblk x mblk blocks from column n0. */
static tlcl_status run_tile(tlcl_engine *e, const gemm_cfg *c, const gemm_job *j, const char *kname, int nblk,
                            int mblk, int n0)
{
    char name[40]; /* the _bn instance carries the batch-norm epilogue */
    snprintf(name, sizeof name, "%s%s", kname, j->bn_on ? "_bn" : "");
    kname = name;
    gemm_opts o = gemm_options(c, &j->st, 0, j->bn_on);
    size_t local[3] = {c->lx, c->ly, 1};
    const size_t *lp = fit_local(e, o.s, kname, local);
    size_t g[3] = {round_up((size_t)nblk, local[0]), round_up((size_t)mblk, local[1]), (size_t)j->splits};
    return TLCL_RUN(e->cl, TLCL_PROG(gemm), o.s, kname, 3, g, lp, TLCL_INT(nblk), TLCL_INT(mblk),
                    TLCL_INT(j->M), TLCL_INT(n0), TLCL_INT(j->K), TLCL_INT(j->kc), TLCL_FLOAT(j->alpha), TLCL_MEM(j->A), TLCL_INT(j->a_off),
                    TLCL_INT(j->a_rs), TLCL_INT(j->a_ks), TLCL_MEM(j->B), TLCL_INT(j->b_off), TLCL_INT(j->ldb),
                    TLCL_FLOAT(j->beta), TLCL_MEM(j->C), TLCL_INT(j->c_off), TLCL_INT(j->ldc), TLCL_INT(j->c_ss),
                    GEMM_BN_KARGS(j));
}

/* Columns [n0, N) of every row, one output per work-item. */
static tlcl_status run_edge(tlcl_engine *e, const gemm_cfg *c, const gemm_job *j, int n0)
{
    if (n0 >= j->N || j->M <= 0)
        return TLCL_OK;
    size_t g[3] = {(size_t)(j->N - n0), (size_t)j->M, (size_t)j->splits};
    gemm_opts o = gemm_options(c, &j->st, 0, 0);
    return TLCL_RUN(e->cl, TLCL_PROG(gemm), o.s, "gemm_edge", 3, g, NULL, TLCL_INT(j->M), TLCL_INT(j->N),
                    TLCL_INT(j->K), TLCL_INT(j->kc), TLCL_INT(n0), TLCL_FLOAT(j->alpha),
                    TLCL_MEM(j->A), TLCL_INT(j->a_off), TLCL_INT(j->a_rs), TLCL_INT(j->a_ks), TLCL_MEM(j->B),
                    TLCL_INT(j->b_off), TLCL_INT(j->ldb), TLCL_FLOAT(j->beta), TLCL_MEM(j->C), TLCL_INT(j->c_off),
                    TLCL_INT(j->ldc), TLCL_INT(j->c_ss), GEMM_BN_KARGS(j));
}

/* The blocks through gemm_tile (the last row block clamped when M is not a
 * whole number of them), the column strip right of them through the
 * narrower tile kernels as far as they go, and the columns left one output
 * per work-item through gemm_edge. A strip
 * of three narrow vectors or more (N = 24 on AVX-512: block2a/2b_project,
 * the input gradient of block2b/3a_expand) goes through gemm_tile_narrow3
 * in one pass over A instead of gemm_tile_v1 then gemm_tile_narrow, 24
 * FMAs per 11 loads instead of 16 per 18 (measured: bench/README.md, "The
 * early blocks' GEMMs"). */
static tlcl_status run_job(tlcl_engine *e, const gemm_cfg *c, const gemm_job *j)
{
    const char *names[4] = {"gemm_tile", "gemm_tile_narrow3", "gemm_tile_v1", "gemm_tile_narrow"};
    int narrow = c->vwn < c->vw, wide = c->vw * c->nv;
    int widths[4] = {wide, narrow && 3 * c->vwn < wide ? 3 * c->vwn : 0, c->nv > 1 ? c->vw : 0, narrow ? c->vwn : 0};
    int mblk = (j->M + c->tm - 1) / c->tm, n0 = 0;
    for (int t = 0; t < 4; t++) {
        int nblk = widths[t] ? (j->N - n0) / widths[t] : 0;
        if (nblk > 0)
            TLCL_TRY(run_tile(e, c, j, names[t], nblk, mblk, n0));
        n0 += nblk * widths[t];
    }
    return run_edge(e, c, j, n0);
}

/* Splits K when the output is small (the dW = X^T dY of a 1x1 conv: M x N
 * = cin x cout, K = N*H*W): enough chunks to give every compute unit work,
 * and on CPUs chunks whose slices of A and B (kc x (M + N) floats) fit in
 * the L2, so the blocks of one chunk, launched together, share them. Chunks
 * stay >= 256 long and the scratch [splits, M, N] small. */
static int choose_splits(const gemm_cfg *c, int M, int N, int K)
{
    long items = (long)((M + c->tm - 1) / c->tm) * ((N + c->vw * c->nv - 1) / (c->vw * c->nv));
    if (items >= 4L * c->min_items || K < 512)
        return 1;
    long s = (c->min_items + items - 1) / items;
    long by_cache = c->chunk_bytes ? ((long)K * (M + N) * 4 + c->chunk_bytes - 1) / c->chunk_bytes : 1;
    if (items >= c->min_items)
        s = 1; /* enough work-items already: split only for the cache */
    s = s > by_cache ? s : by_cache;
    if (s > K / 256)
        s = K / 256;
    return s > 64 ? 64 : s < 1 ? 1 : (int)s;
}

/* A weight gradient dW = X^T dY (TN, long K) whose N (cout) leaves more
 * of C to the narrow strips than its M (cin) would: computed turned,
 * dW^T = dY^T X, so the wide blocks run along cin. The 1x1 project
 * convolutions' dW (144 x 24, 96 x 24, K = 16*56*56) otherwise run in
 * gemm_tile_v1 + gemm_tile_narrow, 8 rows by 16 and 8 columns, 18 loads
 * per 16 FMAs; turned (24 x 144) they fill whole 8 x 32 blocks, about twice
 * as fast (bench/README.md, "The early blocks' GEMMs"). The partials land in scratch as C^T and the sum
 * reads them across (run_split): one more pass over M x N, nothing next
 * to K >= 512 multiply-adds per entry (a dense layer's dW, K = batch,
 * stays as it is). */
static int turn_tn(const gemm_cfg *c, int ta, int tb, int M, int N, int K)
{
    long wide = c->vw * c->nv;
    return ta && !tb && K >= 512 && (long)(N % wide) * M > (long)(M % wide) * N;
}

/* B^T into scratch in B's own storage: a copy, exact either way, and a
 * bfloat16 B (a transposed feature map) keeps its halved bytes and the
 * tile kernels' bfloat16 loads of B. */
static tlcl_status transpose_b(tlcl_engine *e, const gemm_cfg *c, const tlcl_gemm_storage *st, int N, int K,
                               cl_mem B, size_t b_off, int ldb, tlcl_tensor *bt)
{
    TLCL_TRY(tlcl_tensor_alloc_as(e, bt, "gemm B^T", st->b, K, 1, 1, N));
    gemm_opts o = gemm_options(c, st, 0, 0);
    tlcl_status s;
    if (eng_on_cpu(e)) {
        size_t g[2] = {(size_t)K, ((size_t)N + 15) / 16};
        s = TLCL_RUN(e->cl, TLCL_PROG(gemm), o.s, "gemm_transpose_rows", 2, g, NULL, TLCL_INT(N), TLCL_INT(K),
                     TLCL_MEM(B), TLCL_INT(b_off), TLCL_INT(ldb), TLCL_MEM(bt->buf));
    } else {
        size_t local[2] = {(size_t)c->tr, (size_t)c->tr};
        size_t g[2] = {(size_t)K, (size_t)N};
        s = TLCL_RUN(e->cl, TLCL_PROG(gemm), o.s, "gemm_transpose", 2, g, local, TLCL_INT(N), TLCL_INT(K),
                     TLCL_MEM(B), TLCL_INT(b_off), TLCL_INT(ldb), TLCL_MEM(bt->buf));
    }
    if (s != TLCL_OK)
        tlcl_tensor_release(e, bt);
    return s;
}

/* The product of C^T = B^T op(A)^T for a TN job (op(A) = A^T): its A is
 * B read across (strides 1 and ldb), its B is A, row-major [K, M]. */
static gemm_job turned_job(const gemm_job *j)
{
    gemm_job t = *j;
    t.M = j->N, t.N = j->M;
    t.A = j->B, t.a_off = j->b_off, t.a_rs = 1, t.a_ks = j->ldb;
    t.B = j->A, t.b_off = j->a_off, t.ldb = j->a_ks;
    t.st.a = j->st.b, t.st.b = j->st.a;
    return t;
}

/* The k chunks' partial products into scratch, then their sum into C
 * (alpha, beta and the epilogue once, on the sum). turned: the partials
 * are of C^T (turn_tn), the sum reads them across. The partials are float32
 * whatever C's storage: a bfloat16 C is rounded once, by the sum. */
static tlcl_status run_split(tlcl_engine *e, const gemm_cfg *c, gemm_job *j, int turned)
{
    tlcl_tensor part = {0};
    TLCL_TRY(tlcl_tensor_alloc(e, &part, "gemm split-K partials", j->splits, j->M, 1, j->N));
    gemm_job pj = turned ? turned_job(j) : *j;
    pj.alpha = 1.0f, pj.beta = 0.0f, pj.C = part.buf, pj.c_off = 0, pj.ldc = pj.N, pj.c_ss = j->M * j->N;
    pj.bn_on = 0; /* the epilogue runs once, on the sum */
    pj.st.c = TLCL_F32;
    tlcl_status s = run_job(e, c, &pj);
    size_t g[2] = {(size_t)j->N, (size_t)j->M};
    gemm_opts o = gemm_options(c, &j->st, 0, 0);
    if (s == TLCL_OK)
        s = TLCL_RUN(e->cl, TLCL_PROG(gemm), o.s, "gemm_splitk_reduce", 2, g, NULL, TLCL_INT(j->M),
                     TLCL_INT(j->N), TLCL_INT(j->splits), TLCL_FLOAT(j->alpha), TLCL_MEM(part.buf),
                     TLCL_INT(turned ? 1 : j->N), TLCL_INT(turned ? j->M : 1), TLCL_FLOAT(j->beta),
                     TLCL_MEM(j->C), TLCL_INT(j->c_off), TLCL_INT(j->ldc), GEMM_BN_KARGS(j));
    /* the queue is in order: the next user of this pool buffer runs after us */
    tlcl_tensor_release(e, &part);
    return s;
}

/* The kernels index with int (32-bit arithmetic is faster on GPUs): every
 * element touched must lie below 2^31 elements from the buffer start. */
static int fits_int(size_t off, size_t rows, int ld, int cols)
{
    return rows == 0 || off + (rows - 1) * (size_t)ld + (size_t)cols <= (size_t)INT_MAX;
}

static tlcl_status gemm_own(tlcl_engine *e, int ta, int tb, int M, int N, int K, float alpha, cl_mem A,
                            size_t a_off, int lda, cl_mem B, size_t b_off, int ldb, float beta, cl_mem C,
                            size_t c_off, int ldc, const eng_gemm_bn *bn, const tlcl_gemm_storage *st)
{
    if (!fits_int(a_off, (size_t)(ta ? K : M), lda, ta ? M : K) || !fits_int(b_off, (size_t)(tb ? N : K), ldb, tb ? K : N) ||
        !fits_int(c_off, (size_t)M, ldc, N))
        return ENG_FAIL(e, TLCL_ERR_ARG, "tlcl_gemm(M=%d, N=%d, K=%d): an operand spans 2^31 elements or more", M, N,
                        K);
    eng_tune_note(e, ENG_TUNE_GEMM, (int[]){ta, tb, M, N, K, lda, ldb, ldc, bn != NULL}, 9);
    gemm_cfg c = gemm_config(e, ta, tb);
    tlcl_tensor bt = {0};
    if (tb && K > 0) {
        TLCL_TRY(transpose_b(e, &c, st, N, K, B, b_off, ldb, &bt));
        B = bt.buf, b_off = 0, ldb = N;
    }
    gemm_job j = {.M = M, .N = N, .K = K, .kc = K, .splits = 1, .alpha = alpha, .beta = beta, .A = A, .B = B,
                  .C = C, .st = *st, .a_off = (int)a_off, .a_rs = ta ? 1 : lda, .a_ks = ta ? lda : 1, .b_off = (int)b_off,
                  .ldb = ldb, .c_off = (int)c_off, .ldc = ldc, .c_ss = 0};
    gemm_job_bn(&j, bn, C);
    int turned = turn_tn(&c, ta, tb, M, N, K);
    j.splits = turned ? choose_splits(&c, N, M, K) : choose_splits(&c, M, N, K);
    tlcl_status s;
    if (j.splits > 1 || turned) {
        j.kc = (K + j.splits - 1) / j.splits;
        j.splits = (K + j.kc - 1) / j.kc;
        s = run_split(e, &c, &j, turned);
    } else {
        s = run_job(e, &c, &j);
    }
    if (bt.buf)
        tlcl_tensor_release(e, &bt);
    return s;
}

static int all_f32(const tlcl_gemm_storage *st)
{
    return st->a == TLCL_F32 && st->b == TLCL_F32 && st->c == TLCL_F32;
}

/* CLBlast only for float32 operands: it has no bfloat16, so a product with
 * a bfloat16 operand runs on the own kernels whatever the choice (and an
 * AUTO back-end is not even resolved for it). */
tlcl_status tlcl_gemm_ex(tlcl_engine *e, int ta, int tb, int M, int N, int K, float alpha, cl_mem A, size_t a_off,
                         int lda, cl_mem B, size_t b_off, int ldb, float beta, cl_mem C, size_t c_off, int ldc,
                         const tlcl_gemm_storage *st)
{
    if (!st)
        st = &GEMM_F32;
    if (M <= 0 || N <= 0)
        return TLCL_OK;
    if (all_f32(st) && tlcl_gemm_get_backend(e) == TLCL_GEMM_CLBLAST)
        return tlcl_gemm_clblast(e, ta, tb, M, N, K, alpha, A, a_off, lda, B, b_off, ldb, beta, C, c_off, ldc);
    return gemm_own(e, ta, tb, M, N, K, alpha, A, a_off, lda, B, b_off, ldb, beta, C, c_off, ldc, NULL, st);
}

tlcl_status tlcl_gemm(tlcl_engine *e, int ta, int tb, int M, int N, int K, float alpha, cl_mem A, size_t a_off,
                      int lda, cl_mem B, size_t b_off, int ldb, float beta, cl_mem C, size_t c_off, int ldc)
{
    return tlcl_gemm_ex(e, ta, tb, M, N, K, alpha, A, a_off, lda, B, b_off, ldb, beta, C, c_off, ldc, NULL);
}

tlcl_status eng_gemm_bn_own(tlcl_engine *e, int M, int N, int K, cl_mem A, int lda, cl_mem B, int ldb, cl_mem C,
                            size_t c_off, int ldc, const eng_gemm_bn *bn, const tlcl_gemm_storage *st)
{
    if (M <= 0 || N <= 0)
        return TLCL_OK;
    return gemm_own(e, 0, 0, M, N, K, 1.0f, A, 0, lda, B, 0, ldb, 0.0f, C, c_off, ldc, bn, st ? st : &GEMM_F32);
}

/* ---- the implicit-GEMM convolution ---------------------------------------- */

/* $TLCL_CONV=im2col turns the implicit path off (bench_conv compares the two). */
int eng_conv_implicit_ok(tlcl_engine *e, const eng_conv_shape *s)
{
    gemm_cfg c = conv_config(e);
    size_t in = (size_t)s->N * s->H * s->W * s->cin, out = (size_t)s->N * s->OH * s->OW * s->cout;
    if (tlcl_cl_settings(e->cl)->conv_im2col)
        return 0;
    int own = s->act == TLCL_BF16 || tlcl_gemm_get_backend(e) == TLCL_GEMM_OWN; /* CLBlast has no bfloat16 */
    return own && s->cout % c.vw == 0 && in <= INT_MAX && out <= INT_MAX;
}

/* The shape as tlcl tune records it: the 12 ints of s, then extra. */
static void conv_note(tlcl_engine *e, eng_tune_kind kind, const eng_conv_shape *s, int extra)
{
    int v[13] = {s->N, s->H, s->W, s->cin, s->OH, s->OW, s->cout, s->kh, s->kw, s->stride, s->pad_top,
                 s->pad_left, extra};
    eng_tune_note(e, kind, v, 13);
}

/* conv_tile over the blocks of columns [n0, n0 + nblk * width). */
static tlcl_status run_conv_tile(tlcl_engine *e, const gemm_cfg *c, const eng_conv_shape *s, const char *kname,
                                 int nblk, int n0, cl_mem X, cl_mem W, cl_mem zeros, cl_mem out, const gemm_job *j,
                                 const eng_conv_out_map *m)
{
    char name[40];
    snprintf(name, sizeof name, "%s%s", kname, j->bn_on ? "_bn" : "");
    tlcl_gemm_storage st = {s->act, TLCL_F32, s->act}; /* X (or dY), the weight, the output (or dX) */
    gemm_opts o = gemm_options(c, &st, 1, j->bn_on);
    int M = s->N * s->OH * s->OW, mblk = (M + c->tm - 1) / c->tm;
    size_t local[3] = {c->lx, c->ly, 1};
    const size_t *lp = fit_local(e, o.s, name, local);
    size_t g[2] = {round_up((size_t)nblk, local[0]), round_up((size_t)mblk, local[1])};
    return TLCL_RUN(e->cl, TLCL_PROG(gemm), o.s, name, 2, g, lp, TLCL_INT(nblk), TLCL_INT(mblk),
                    TLCL_INT(M), TLCL_INT(n0), TLCL_MEM(X), TLCL_INT(s->H), TLCL_INT(s->W), TLCL_INT(s->cin),
                    TLCL_INT(s->OH), TLCL_INT(s->OW), TLCL_INT(s->kh), TLCL_INT(s->kw), TLCL_INT(s->stride),
                    TLCL_INT(s->pad_top), TLCL_INT(s->pad_left), TLCL_MEM(zeros), TLCL_MEM(W), TLCL_MEM(out),
                    TLCL_INT(s->cout), TLCL_INT(m->ns), TLCL_INT(m->ys), TLCL_INT(m->xs), TLCL_INT(m->off),
                    GEMM_BN_KARGS(j));
}

tlcl_status eng_conv_implicit(tlcl_engine *e, const eng_conv_shape *s, cl_mem X, cl_mem W, cl_mem out,
                              const eng_gemm_bn *bn, const eng_conv_out_map *map)
{
    eng_conv_out_map dense = {s->OH * s->OW, s->OW, 1, 0};
    if (!map)
        map = &dense;
    if (s->N * s->OH * s->OW == 0 || s->cout == 0)
        return TLCL_OK;
    conv_note(e, ENG_TUNE_CONV, s, bn != NULL);
    gemm_cfg c = conv_config(e);
    gemm_job j = {0};
    gemm_job_bn(&j, bn, out);
    cl_mem zeros; /* what a tap in the padding reads */
    TLCL_TRY(eng_zeros(e, (size_t)s->cin, &zeros));
    int wide = c.vw * c.nv, nblk = s->cout / wide, n0 = nblk * wide;
    if (nblk > 0)
        TLCL_TRY(run_conv_tile(e, &c, s, "conv_tile", nblk, 0, X, W, zeros, out, &j, map));
    if (n0 < s->cout)
        TLCL_TRY(run_conv_tile(e, &c, s, "conv_tile_v1", (s->cout - n0) / c.vw, n0, X, W, zeros, out, &j, map));
    return TLCL_OK;
}

/* The implicit weight gradients' storage: X and dY feature maps, the
 * partials (and dW) float32. */
static tlcl_gemm_storage wgrad_storage(const eng_conv_shape *s)
{
    return (tlcl_gemm_storage){s->act, s->act, TLCL_F32};
}

/* conv_wgrad over the column blocks [n0, n0 + nblk * width), every split. */
static tlcl_status run_conv_wgrad(tlcl_engine *e, const gemm_cfg *c, const eng_conv_shape *s, const char *kname,
                                  int nblk, int n0, int splits, int pc, cl_mem X, cl_mem dY, cl_mem part)
{
    int rows = s->kh * s->kw * s->cin, mblk = (rows + c->tm - 1) / c->tm;
    tlcl_gemm_storage st = wgrad_storage(s);
    gemm_opts o = gemm_options(c, &st, 1, 0);
    size_t local[3] = {c->lx, c->ly, 1};
    const size_t *lp = fit_local(e, o.s, kname, local);
    size_t g[3] = {round_up((size_t)nblk, local[0]), round_up((size_t)mblk, local[1]), (size_t)splits};
    return TLCL_RUN(e->cl, TLCL_PROG(gemm), o.s, kname, 3, g, lp, TLCL_INT(nblk), TLCL_INT(mblk),
                    TLCL_INT(n0), TLCL_INT(s->N * s->OH * s->OW), TLCL_INT(pc), TLCL_MEM(X), TLCL_INT(s->H),
                    TLCL_INT(s->W), TLCL_INT(s->cin), TLCL_INT(s->OH), TLCL_INT(s->OW), TLCL_INT(s->kh),
                    TLCL_INT(s->kw), TLCL_INT(s->stride), TLCL_INT(s->pad_top), TLCL_INT(s->pad_left), TLCL_MEM(dY),
                    TLCL_INT(s->cout), TLCL_MEM(part), TLCL_INT(rows * s->cout));
}

/* conv_wgrad_ci: narrow outputs (less than one GEMM block of channels)
 * whose input channels fill whole blocks. */
static tlcl_status run_conv_wgrad_ci(tlcl_engine *e, const gemm_cfg *c, const eng_conv_shape *s, int splits, int pc,
                                     cl_mem X, cl_mem dY, cl_mem part)
{
    cl_mem zeros; /* what a tap in the padding reads */
    TLCL_TRY(eng_zeros(e, (size_t)s->cin, &zeros));
    int taps = s->kh * s->kw, rows = taps * s->cin;
    size_t g[3] = {(size_t)(taps * (s->cin / (c->vw * c->nv))), (size_t)(s->cout / c->tm), (size_t)splits};
    tlcl_gemm_storage st = wgrad_storage(s);
    gemm_opts o = gemm_options(c, &st, 1, 0);
    return TLCL_RUN(e->cl, TLCL_PROG(gemm), o.s, "conv_wgrad_ci", 3, g, NULL,
                    TLCL_INT(s->N * s->OH * s->OW), TLCL_INT(pc), TLCL_MEM(X), TLCL_INT(s->H), TLCL_INT(s->W),
                    TLCL_INT(s->cin), TLCL_INT(s->OH), TLCL_INT(s->OW), TLCL_INT(s->kh), TLCL_INT(s->kw),
                    TLCL_INT(s->stride), TLCL_INT(s->pad_top), TLCL_INT(s->pad_left), TLCL_MEM(zeros),
                    TLCL_MEM(dY), TLCL_INT(s->cout), TLCL_MEM(part), TLCL_INT(rows * s->cout));
}

/* Pixel chunks: enough to give every compute unit work and, on CPUs, small
 * enough that a chunk's input and dY rows ((cin + cout) floats a pixel)
 * stay in the L2 while all the blocks of dW go over them; at most 64 (the
 * partials are splits x dW). */
static int wgrad_splits(const gemm_cfg *c, int rows, int cout, int cin, int P)
{
    long items = (long)((rows + c->tm - 1) / c->tm) * ((cout + c->vw * c->nv - 1) / (c->vw * c->nv));
    long s = items < c->min_items ? (c->min_items + items - 1) / items : 1;
    long by_cache = c->chunk_bytes ? (long)P * (cin + cout) * 4 / c->chunk_bytes : 1;
    s = s > by_cache ? s : by_cache;
    if (s > P / 64)
        s = P / 64;
    return s > 64 ? 64 : s < 1 ? 1 : (int)s;
}

tlcl_status eng_conv_wgrad_implicit(tlcl_engine *e, const eng_conv_shape *s, cl_mem X, cl_mem dY, cl_mem dW)
{
    int P = s->N * s->OH * s->OW, rows = s->kh * s->kw * s->cin;
    if (P == 0 || s->cout == 0 || rows == 0)
        return TLCL_OK;
    conv_note(e, ENG_TUNE_CONV_WGRAD, s, 0);
    gemm_cfg c = conv_config(e), plain = gemm_config(e, 0, 0); /* the sum over the splits: NN's program */
    int splits = wgrad_splits(&c, rows, s->cout, s->cin, P), pc = (P + splits - 1) / splits;
    splits = (P + pc - 1) / pc;
    tlcl_tensor part;
    TLCL_TRY(tlcl_tensor_alloc(e, &part, "conv weight-gradient partials", splits, rows, 1, s->cout));
    int wide = c.vw * c.nv, nblk = s->cout / wide, n0 = nblk * wide;
    int turned = nblk == 0 && s->cin % wide == 0 && s->cout % c.tm == 0; /* conv_wgrad_ci */
    tlcl_status st = TLCL_OK;
    if (turned)
        st = run_conv_wgrad_ci(e, &c, s, splits, pc, X, dY, part.buf);
    if (!turned && nblk > 0)
        st = run_conv_wgrad(e, &c, s, "conv_wgrad", nblk, 0, splits, pc, X, dY, part.buf);
    if (!turned && st == TLCL_OK && n0 < s->cout)
        st = run_conv_wgrad(e, &c, s, "conv_wgrad_v1", (s->cout - n0) / c.vw, n0, splits, pc, X, dY, part.buf);
    gemm_job j = {0};
    gemm_job_bn(&j, NULL, dW);
    size_t g[2] = {(size_t)s->cout, (size_t)rows};
    tlcl_gemm_storage wst = wgrad_storage(s); /* the program of the 1x1 weight gradients' sums */
    gemm_opts o = gemm_options(&plain, &wst, 0, 0);
    if (st == TLCL_OK) /* dW += the sum of the splits */
        st = TLCL_RUN(e->cl, TLCL_PROG(gemm), o.s, "gemm_splitk_reduce", 2, g, NULL, TLCL_INT(rows),
                      TLCL_INT(s->cout), TLCL_INT(splits), TLCL_FLOAT(1.0f), TLCL_MEM(part.buf),
                      TLCL_INT(s->cout), TLCL_INT(1), TLCL_FLOAT(1.0f),
                      TLCL_MEM(dW), TLCL_INT(0), TLCL_INT(s->cout), GEMM_BN_KARGS(&j));
    tlcl_tensor_release(e, &part);
    return st;
}

/* For gemm_select.c and tests: the own kernels regardless of the choice. */
tlcl_status tlcl_gemm_own(tlcl_engine *e, int ta, int tb, int M, int N, int K, float alpha, cl_mem A,
                          size_t a_off, int lda, cl_mem B, size_t b_off, int ldb, float beta, cl_mem C, size_t c_off,
                          int ldc)
{
    if (M <= 0 || N <= 0)
        return TLCL_OK;
    return gemm_own(e, ta, tb, M, N, K, alpha, A, a_off, lda, B, b_off, ldb, beta, C, c_off, ldc, NULL, &GEMM_F32);
}
