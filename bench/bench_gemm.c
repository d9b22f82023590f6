/* bench_gemm.c — tlcl's own GEMM against OpenBLAS sgemm (same run, same
 * shapes): 1024^3 and the 1x1 convolutions of EfficientNet-B0 at batch 16,
 * 224x224, forward (NN) and, for some, the backward forms dX = dY W^T (NT)
 * and dW = X^T dY (TN). Each result is validated against OpenBLAS before it
 * is timed. --clblast adds CLBlast on 1024^3. --bn=ACT (none, swish,
 * sigmoid, relu) runs the NN products through the fused batch-norm +
 * activation epilogue (identity batch norm), as a 1x1 convolution runs, so
 * the epilogue's cost shows (OpenBLAS's time stays that of its sgemm);
 * --res adds a residual after the activation, as a block's project
 * convolution does. --bf16 stores the operands a layer keeps as bfloat16
 * feature maps (mixed precision) so: NN and NT A and C (the input or dY,
 * the output or dX; the weight float32), TN A and B (X, dY; dW float32);
 * OpenBLAS then multiplies the same rounded inputs in float32, and the
 * check allows 2^-8 more for the rounding of a bfloat16 C.
 *
 * usage: bench_gemm [--device=N] [--quick] [--clblast] [--best] [--bn=ACT [--res]] [--bf16] [--shape=M,N,K[,ta,tb]] */
#include "bench_util.h"
#include "engine_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct shape {
    int ta, tb, M, N, K;
    const char *what;
} shape;

/* (M = 16*H*W, K = cin, N = cout) of B0's 1x1 convs; backward rows reuse them. */
static const shape SHAPES[] = {
    {0, 0, 1024, 1024, 1024, "square"},
    {0, 0, 200704, 16, 32, "b0 1x1"},   {0, 0, 200704, 96, 16, "b0 1x1"},  {0, 0, 50176, 144, 24, "b0 1x1"},
    {0, 0, 50176, 24, 144, "b0 1x1"},   {0, 0, 12544, 240, 40, "b0 1x1"},  {0, 0, 12544, 40, 240, "b0 1x1"},
    {0, 0, 3136, 480, 80, "b0 1x1"},    {0, 0, 3136, 80, 480, "b0 1x1"},   {0, 0, 3136, 672, 112, "b0 1x1"},
    {0, 0, 3136, 112, 672, "b0 1x1"},   {0, 0, 784, 1152, 192, "b0 1x1"},  {0, 0, 784, 192, 1152, "b0 1x1"},
    {0, 0, 784, 1280, 320, "b0 1x1"},
    /* backward: dX[M, cin] = dY[M, cout] W[cin, cout]^T; dW[cin, cout] = X[M, cin]^T dY[M, cout] */
    {0, 1, 50176, 24, 144, "b0 dX"},    {0, 1, 3136, 112, 672, "b0 dX"},   {0, 1, 784, 320, 1280, "b0 dX"},
    {1, 0, 24, 144, 50176, "b0 dW"},    {1, 0, 672, 112, 3136, "b0 dW"},   {1, 0, 32, 16, 200704, "b0 dW"},
    {1, 0, 320, 1280, 784, "b0 dW"},
};
static const int QUICK[] = {0, 2, 7, 11, 14, 16, 17, 19};

typedef struct operands {
    float *A, *B, *C, *ref;
    tlcl_tensor a, b, c;
    int lda, ldb;
    tlcl_tensor ones, zeros; /* --bn: istd and gamma 1, mean and beta 0 */
    tlcl_tensor res;         /* --bn with --res: the residual, all RES_VALUE */
} operands;

static int best_of;     /* --best: the fastest of the reps, not the median */
static int bn_act = -1; /* --bn=ACT: a tlcl_act; -1: no epilogue */
static int res_on;      /* --res: the epilogue adds a residual (a block's add) */
static int bf16_on;     /* --bf16: the feature-map operands stored as bfloat16 */
#define RES_VALUE 0.5f
static const char *const ACT_NAMES[] = {"none", "swish", "sigmoid", "relu"};

static int epilogue_on(const shape *s) { return bn_act >= 0 && !s->ta && !s->tb; }

/* The operands' storage: float32, or under --bf16 a layer's feature maps. */
static tlcl_gemm_storage storage(const shape *s)
{
    tlcl_dtype H = bf16_on ? TLCL_BF16 : TLCL_F32, F = TLCL_F32;
    return s->ta ? (tlcl_gemm_storage){H, H, F} : (tlcl_gemm_storage){H, F, H};
}

/* Rounds a bfloat16 operand's host copy as the upload will, so OpenBLAS multiplies what the device holds. */
static void round_like(tlcl_dtype dt, float *x, size_t n)
{
    for (size_t i = 0; dt == TLCL_BF16 && i < n; i++)
        x[i] = tlcl_bf16_to_float(tlcl_bf16_from_float(x[i]));
}

/* The epilogue in double, on the reference. */
static void act_reference(const shape *s, float *C)
{
    for (size_t i = 0; epilogue_on(s) && i < (size_t)s->M * s->N; i++) {
        double x = C[i], sig = 1.0 / (1.0 + exp(-x));
        C[i] = (float)(bn_act == TLCL_ACT_SWISH ? x * sig : bn_act == TLCL_ACT_SIGMOID ? sig
                       : bn_act == TLCL_ACT_RELU ? fmax(x, 0.0) : x) + (res_on ? RES_VALUE : 0.0f);
    }
}

static int setup(tlcl_engine *e, const shape *s, operands *o)
{
    size_t na = (size_t)s->M * s->K, nb = (size_t)s->K * s->N, nc = (size_t)s->M * s->N;
    o->A = malloc(na * 4), o->B = malloc(nb * 4), o->C = malloc(nc * 4), o->ref = malloc(nc * 4);
    if (!o->A || !o->B || !o->C || !o->ref)
        return -1;
    srand(1);
    for (size_t i = 0; i < na; i++) o->A[i] = (float)rand() / RAND_MAX - 0.5f;
    for (size_t i = 0; i < nb; i++) o->B[i] = (float)rand() / RAND_MAX - 0.5f;
    tlcl_gemm_storage st = storage(s);
    round_like(st.a, o->A, na);
    round_like(st.b, o->B, nb);
    o->lda = s->ta ? s->M : s->K;
    o->ldb = s->tb ? s->K : s->N;
    memset(&o->a, 0, sizeof o->a * 3);
    memset(&o->ones, 0, sizeof o->ones * 3);
    if (tlcl_tensor_alloc_as(e, &o->a, "A", st.a, (int)na, 1, 1, 1) ||
        tlcl_tensor_alloc_as(e, &o->b, "B", st.b, (int)nb, 1, 1, 1) ||
        tlcl_tensor_alloc_as(e, &o->c, "C", st.c, (int)nc, 1, 1, 1) || tlcl_tensor_upload(e, &o->a, o->A) ||
        tlcl_tensor_upload(e, &o->b, o->B) || tlcl_tensor_alloc(e, &o->ones, "ones", s->N, 1, 1, 1) ||
        tlcl_tensor_alloc(e, &o->zeros, "zeros", s->N, 1, 1, 1) || tlcl_tensor_fill(e, &o->ones, 1.0f) ||
        tlcl_tensor_fill(e, &o->zeros, 0.0f))
        return -1;
    if (res_on && (tlcl_tensor_alloc_as(e, &o->res, "residual", st.c, (int)nc, 1, 1, 1) ||
                   tlcl_tensor_fill(e, &o->res, RES_VALUE)))
        return -1;
    return 0;
}

static void teardown(tlcl_engine *e, operands *o)
{
    if (o->a.buf) tlcl_tensor_release(e, &o->a);
    if (o->b.buf) tlcl_tensor_release(e, &o->b);
    if (o->c.buf) tlcl_tensor_release(e, &o->c);
    if (o->ones.buf) tlcl_tensor_release(e, &o->ones);
    if (o->zeros.buf) tlcl_tensor_release(e, &o->zeros);
    if (o->res.buf) tlcl_tensor_release(e, &o->res);
    free(o->A), free(o->B), free(o->C), free(o->ref);
}

static void blas_run(const shape *s, operands *o, float *C)
{
    cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans, s->M, s->N,
                s->K, 1.0f, o->A, o->lda, o->B, o->ldb, 0.0f, C, s->N);
}

static int dev_run(tlcl_engine *e, int clblast, const shape *s, operands *o)
{
    tlcl_status (*fn)(tlcl_engine *, int, int, int, int, int, float, cl_mem, size_t, int, cl_mem, size_t, int,
                      float, cl_mem, size_t, int) = clblast ? tlcl_gemm_clblast : tlcl_gemm_own;
    tlcl_gemm_storage st = storage(s);
    if (epilogue_on(s) && !clblast) {
        eng_gemm_bn bn = {o->zeros.buf, o->ones.buf, o->ones.buf, o->zeros.buf, (tlcl_act)bn_act,
                          res_on ? o->res.buf : NULL};
        return eng_gemm_bn_own(e, s->M, s->N, s->K, o->a.buf, o->lda, o->b.buf, o->ldb, o->c.buf, 0, s->N, &bn, &st) !=
                   TLCL_OK ||
               tlcl_cl_finish(e->cl) != TLCL_OK;
    }
    if (bf16_on && !clblast) /* the own kernels (CLBlast has no bfloat16) */
        return tlcl_gemm_ex(e, s->ta, s->tb, s->M, s->N, s->K, 1.0f, o->a.buf, 0, o->lda, o->b.buf, 0, o->ldb, 0.0f,
                            o->c.buf, 0, s->N, &st) != TLCL_OK ||
               tlcl_cl_finish(e->cl) != TLCL_OK;
    return fn(e, s->ta, s->tb, s->M, s->N, s->K, 1.0f, o->a.buf, 0, o->lda, o->b.buf, 0, o->ldb, 0.0f, o->c.buf, 0,
              s->N) != TLCL_OK ||
           tlcl_cl_finish(e->cl) != TLCL_OK;
}

/* Median of reps timings (after one warm-up) in GFLOP/s, or with --best the
 * fastest (on a shared machine the median mixes in the others' load); which:
 * 0 OpenBLAS, 1 own, 2 CLBlast. */
static double time_it(tlcl_engine *e, int which, const shape *s, operands *o, int reps)
{
    double t[16], flop = 2.0 * s->M * s->N * s->K;
    for (int r = 0; r <= reps; r++) {
        double t0 = bench_now();
        if (which == 0)
            blas_run(s, o, o->C);
        else if (dev_run(e, which == 2, s, o))
            return -1.0;
        if (r > 0)
            t[r - 1] = bench_now() - t0;
    }
    for (int i = 1; i < reps; i++) /* insertion sort, reps is small */
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
            double x = t[j]; t[j] = t[j - 1]; t[j - 1] = x;
        }
    return flop / t[best_of ? 0 : reps / 2] * 1e-9;
}

static double max_rel_err(tlcl_engine *e, int clblast, const shape *s, operands *o)
{
    size_t nc = (size_t)s->M * s->N;
    if (dev_run(e, clblast, s, o) || tlcl_tensor_download(e, &o->c, o->C))
        return INFINITY;
    double scale = 0.0, err = 0.0;
    for (size_t i = 0; i < nc; i++) scale = fmax(scale, fabs(o->ref[i]));
    for (size_t i = 0; i < nc; i++) err = fmax(err, fabs((double)o->C[i] - o->ref[i]));
    return err / (scale > 0 ? scale : 1.0);
}

static int bench_shape(tlcl_engine *e, const shape *s, int reps, int clblast)
{
    operands o;
    if (setup(e, s, &o)) {
        fprintf(stderr, "setup failed: %s\n", tlcl_engine_error(e));
        teardown(e, &o);
        return 1;
    }
    blas_run(s, &o, o.ref);
    act_reference(s, o.ref);
    double err = max_rel_err(e, 0, s, &o);
    double own = time_it(e, 1, s, &o, reps), blas = time_it(e, 0, s, &o, reps);
    printf("%-7s %c%c %7d %5d %7d | %8.1f %8.1f %6.2f | %.1e", s->what, s->ta ? 'T' : 'N', s->tb ? 'T' : 'N', s->M,
           s->N, s->K, own, blas, own / blas, err);
    if (clblast) {
        double cerr = max_rel_err(e, 1, s, &o), clb = time_it(e, 2, s, &o, reps);
        printf(" | clblast %.1f GFLOP/s (%.2f of OpenBLAS) err %.1e", clb, clb / blas, cerr);
    }
    printf("\n");
    fflush(stdout);
    teardown(e, &o);
    return err > 1e-4 + (storage(s).c == TLCL_BF16 ? 1.0 / 256 : 0.0);
}

static int act_index(const char *name)
{
    for (int k = 0; k < (int)(sizeof ACT_NAMES / sizeof *ACT_NAMES); k++)
        if (strcmp(name, ACT_NAMES[k]) == 0)
            return k;
    return -1;
}

int main(int argc, char **argv)
{
    tlcl_cl_options opt = tlcl_cl_options_default();
    int quick = 0, clblast = 0;
    shape one = {0, 0, 0, 0, 0, "custom"};
    opt.device_index = 0;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--device=", 9) == 0)
            opt.device_index = atoi(argv[i] + 9);
        else if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--clblast") == 0)
            clblast = 1;
        else if (strcmp(argv[i], "--res") == 0)
            res_on = 1;
        else if (strcmp(argv[i], "--best") == 0)
            best_of = 1;
        else if (strcmp(argv[i], "--bf16") == 0)
            bf16_on = 1;
        else if (strncmp(argv[i], "--bn=", 5) == 0 && (bn_act = act_index(argv[i] + 5)) >= 0)
            continue;
        else if (strncmp(argv[i], "--shape=", 8) == 0 &&
                 sscanf(argv[i] + 8, "%d,%d,%d,%d,%d", &one.M, &one.N, &one.K, &one.ta, &one.tb) >= 3)
            continue;
        else {
            fprintf(stderr, "usage: %s [--device=N] [--quick] [--clblast] [--best] [--bn=ACT [--res]] [--bf16] "
                            "[--shape=M,N,K[,ta,tb]]\n", argv[0]);
            return 2;
        }
    }
    if (clblast && bf16_on) {
        fprintf(stderr, "%s: --clblast and --bf16 exclude each other (CLBlast has no bfloat16)\n", argv[0]);
        return 2;
    }
    char err[4096];
    tlcl_cl *cl;
    tlcl_engine *e;
    if (tlcl_cl_init(&cl, &opt, err, sizeof err) != TLCL_OK || tlcl_engine_init(&e, cl) != TLCL_OK) {
        fprintf(stderr, "cannot open device %d: %s\n", opt.device_index, err);
        return 1;
    }
    printf("device: %s / %s\n", tlcl_cl_device(cl)->platform_name, tlcl_cl_device(cl)->name);
    printf("shape      op       M     N       K |  tlcl GF/s  BLAS GF/s  ratio | max rel err\n");
    if (one.M > 0) {
        int bad = bench_shape(e, &one, best_of ? 15 : 5, clblast);
        tlcl_engine_free(e);
        tlcl_cl_free(cl);
        return bad;
    }
    int n = quick ? (int)(sizeof QUICK / sizeof *QUICK) : (int)(sizeof SHAPES / sizeof *SHAPES), bad = 0;
    for (int i = 0; i < n; i++) {
        const shape *s = &SHAPES[quick ? QUICK[i] : i];
        bad |= bench_shape(e, s, quick ? 3 : 5, clblast && i == 0);
    }
    tlcl_engine_free(e);
    tlcl_cl_free(cl);
    return bad;
}
