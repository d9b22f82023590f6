/* test_gemm.c — tlcl_gemm against the double reference for every
 * transpose combination, on both back-ends: sizes that are and are not
 * multiples of the own kernels' blocks (8 x 32 wide, 8-wide narrow strip,
 * edge strips), M, N or K of 1, long K with small M x N (split-K),
 * offsets and leading dimensions, alpha/beta, beta = 0 over a C full of NaN.
 * Then TLCL_GEMM_AUTO: it resolves, persists its choice, a second engine
 * reads the file instead of measuring, and a corrupt file is re-measured.
 * Under $TLCL_TEST_BF16=1 (gemm_pocl_bf16) the same cases run with the
 * operands a layer stores as bfloat16 (case_storage), through tlcl_gemm_ex,
 * on both back-end choices (CLBlast has no bfloat16: the own kernels run). */
#include "engine_internal.h"
#include "harness.h"
#include "ref_gemm.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct gemm_case {
    int ta, tb, M, N, K;
    float alpha, beta;
    int nan_c;  /* fill C's M x N region with NaN (beta must be 0) */
    tlcl_gemm_storage st; /* the operands' storage (float32 but under $TLCL_TEST_BF16) */
} gemm_case;

/* bfloat16 mode: the operands a layer's product keeps as feature maps
 * (engine/conv2d.c). NN is a forward (input, output bfloat16; the weight
 * float32), NT an input gradient (dY, dX; or, on odd shapes, dX into the
 * float32 dcol of the im2col path), TN a weight gradient (X, dY; dW
 * float32, accumulated: beta 0.75 on even shapes), TT every operand
 * bfloat16 (B's transposed copy in bfloat16, the rounding store). */
static tlcl_gemm_storage case_storage(const harness *h, int t, int s)
{
    const tlcl_dtype F = TLCL_F32, H = TLCL_BF16;
    const tlcl_gemm_storage by_t[4] = {{H, F, H}, {H, H, F}, {H, F, (s & 1) ? F : H}, {H, H, H}};
    return h->bf16 ? by_t[t] : (tlcl_gemm_storage){F, F, F};
}

/* An operand in its storage: a bfloat16 one's data is rounded in place
 * first (harness_act_tensor), so the reference, computed after, sees it. */
static tlcl_tensor operand(harness *h, const char *name, tlcl_dtype dt, size_t n, float *data)
{
    return dt == TLCL_BF16 ? harness_act_tensor(h, name, (int)n, 1, 1, 1, data)
                           : harness_tensor(h, name, (int)n, 1, 1, 1, data);
}

/* The reference sees 0 where the device sees NaN: with beta = 0 neither
 * may read C. The padding between rows keeps its values (must survive). */
static void fill_c(harness *h, const gemm_case *g, float *C, size_t nc, size_t c_off, int ldc)
{
    harness_fill(h, C, nc, -1, 1);
    if (!g->nan_c)
        return;
    for (int i = 0; i < g->M; i++)
        for (int j = 0; j < g->N; j++)
            C[c_off + (size_t)i * ldc + j] = NAN;
}

static double *c_reference(const float *C, size_t nc)
{
    double *dC = harness_to_double(C, nc);
    for (size_t i = 0; i < nc; i++)
        if (isnan(dC[i]))
            dC[i] = 0.0;
    return dC;
}

static void check_gemm(harness *h, tlcl_gemm_backend be, const gemm_case *g)
{
    int ta = g->ta, tb = g->tb, M = g->M, N = g->N, K = g->K;
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
    size_t a_off = 5, b_off = 7, c_off = 3;
    size_t na = a_off + (size_t)(ta ? K : M) * lda, nb = b_off + (size_t)(tb ? N : K) * ldb,
           nc = c_off + (size_t)M * ldc;
    float *A = malloc(na * sizeof *A), *B = malloc(nb * sizeof *B), *C = malloc(nc * sizeof *C);
    harness_fill(h, A, na, -1, 1);
    harness_fill(h, B, nb, -1, 1);
    fill_c(h, g, C, nc, c_off, ldc);
    tlcl_tensor tA = operand(h, "A", g->st.a, na, A), tB = operand(h, "B", g->st.b, nb, B);
    tlcl_tensor tC = operand(h, "C", g->st.c, nc, C);
    double *dA = harness_to_double(A, na), *dB = harness_to_double(B, nb), *dC = c_reference(C, nc);
    ref_gemm(ta, tb, M, N, K, g->alpha, dA + a_off, lda, dB + b_off, ldb, g->beta, dC + c_off, ldc);
    tlcl_gemm_set_backend(h->eng, be);
    char what[160];
    snprintf(what, sizeof what, "gemm %s %c%c M=%d N=%d K=%d a=%g b=%g%s%s%s%s", tlcl_gemm_backend_name(be),
             ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, g->alpha, g->beta, g->nan_c ? " (C = NaN)" : "",
             g->st.a == TLCL_BF16 ? " A16" : "", g->st.b == TLCL_BF16 ? " B16" : "", g->st.c == TLCL_BF16 ? " C16" : "");
    tlcl_status st = h->bf16 ? tlcl_gemm_ex(h->eng, ta, tb, M, N, K, g->alpha, tA.buf, a_off, lda, tB.buf, b_off,
                                            ldb, g->beta, tC.buf, c_off, ldc, &g->st)
                             : tlcl_gemm(h->eng, ta, tb, M, N, K, g->alpha, tA.buf, a_off, lda, tB.buf, b_off, ldb,
                                         g->beta, tC.buf, c_off, ldc);
    if (!harness_status(h, st, what)) {
        float *got = harness_download(h, &tC);
        /* each entry within 1e-4, plus K float epsilons for the rounding of
         * a sum of K products of values in [-1, 1] near zero (about a tenth
         * of that seen on PoCL and llvmpipe). bfloat16 operands are exact
         * inputs (rounded before the reference saw them) and the sums are
         * float as in float32 mode: the one new error is the rounding of a
         * bfloat16 C on its store, 2^-8 of the entry (harness_act_rtol);
         * a float32 C (a weight gradient, dcol) keeps the float32 bound. */
        double rtol = g->st.c == TLCL_BF16 ? harness_act_rtol(h, 1e-4) : 1e-4;
        harness_close(h, what, got, dC, nc, rtol, K * (double)FLT_EPSILON);
        free(got);
    }
    tlcl_tensor_release(h->eng, &tA);
    tlcl_tensor_release(h->eng, &tB);
    tlcl_tensor_release(h->eng, &tC);
    free(A), free(B), free(C), free(dA), free(dB), free(dC);
}

/* (M, N, K) on PoCL's blocks: whole 8 x 32 blocks; blocks + 24 / 16 / 8 wide strips + edge columns and
 * rows; K = 1; M = 1; N = 1; long K with a small output (split into chunks
 * on every device type); awkward primes. Small enough for llvmpipe. */
static const int SHAPES[][3] = {
    {1, 1, 1},   {7, 5, 3},   {33, 17, 65}, {64, 64, 64},  {130, 47, 96}, {16, 1, 200},  {16, 64, 8},
    {24, 40, 17}, {8, 96, 1}, {1, 33, 5},   {37, 1, 9},    {16, 8, 3000}, {40, 48, 1500}, {9, 72, 700},
    {27, 59, 33}, /* 32 + 24 + 3 columns: the wide tile, three narrow vectors, the edge */
    {27, 59 - 8, 33}, /* 32 + 16 + 3: the one-vector strip */
    /* TN with N narrower than the wide block and M a whole number of them:
     * computed turned (C^T, read across by the sum), with K split (a 1x1
     * convolution's dW of cout 24 and 40) */
    {64, 24, 2048}, {96, 40, 700},
};

/* The oclgrind simulator checks some 60k multiply-adds a second: these
 * keep every path of the own kernels at a fraction of the work. Oclgrind
 * gets the GPU entry (4 x 8 blocks, a 4-wide strip) and a second pass the
 * AVX-512 one (8 x 32 blocks, 24, 16 and 8-wide strips) through
 * $TLCL_GEMM_TUNE; per entry: edge only (M < rows per block), every tile
 * kernel plus right and bottom edges (27 x 63), N = 1, K = 1, split K with
 * tiles and edges (9 x 33 x 512), beta = 0 over NaN on a tiled shape. */
static const int SHAPES_SIM[][3] = {
    {1, 1, 1},  {27, 63, 33}, {7, 5, 3},  {16, 1, 200}, {9, 33, 512},
    {1, 33, 5}, {37, 1, 9},   {24, 40, 17}, {8, 40, 1},
    {16, 12, 512}, {32, 8, 512}, /* TN turned and split: GPU tiles, AVX-512 tiles */
    {9, 48, 9}, /* AVX-512: 32 + 16, the one-vector strip (27 x 63 takes 32 + 24 + 7) */
};

/* max_macs > 0: only the shapes with M * N * K up to it. */
static void check_shapes(harness *h, tlcl_gemm_backend be, const int (*shapes)[3], int nshapes, long max_macs)
{
    for (int s = 0; s < nshapes; s++) {
        if (max_macs > 0 && (long)shapes[s][0] * shapes[s][1] * shapes[s][2] > max_macs)
            continue;
        for (int t = 0; t < 4; t++) {
            gemm_case g = {t & 1, t >> 1, shapes[s][0], shapes[s][1], shapes[s][2], t == 3 ? 0.5f : 1.0f,
                           (s & 1) ? 0.0f : 0.75f, (s & 1) && t == 1, case_storage(h, t, s)};
            check_gemm(h, be, &g);
        }
    }
}

static void check_all_shapes(harness *h)
{
    if (!strstr(tlcl_cl_device(h->cl)->platform_name, "Oclgrind")) {
        int n = (int)(sizeof SHAPES / sizeof *SHAPES);
        check_shapes(h, TLCL_GEMM_OWN, SHAPES, n, 0);
        /* bfloat16: the CLBlast choice still runs the own kernels (CLBlast would read the 16-bit words
           as floats): the small shapes show it */
        check_shapes(h, TLCL_GEMM_CLBLAST, SHAPES, n, h->bf16 ? 20000 : 0);
        return;
    }
    int n = (int)(sizeof SHAPES_SIM / sizeof *SHAPES_SIM);
    if (h->quick) { /* the device's own tiles (a profile's GPU entry) on the small shapes: every kernel */
        check_shapes(h, TLCL_GEMM_OWN, SHAPES_SIM, n, 0);
        return;
    }
    tlcl_settings saved = *tlcl_cl_settings(h->cl), tune = saved;
    tune.gemm_tune[0] = '\0';
    tlcl_cl_settings_override(h->cl, &tune);
    check_shapes(h, TLCL_GEMM_OWN, SHAPES_SIM, n, 0);
    snprintf(tune.gemm_tune, sizeof tune.gemm_tune, "8,16,2,8,2,2");
    tlcl_cl_settings_override(h->cl, &tune);
    printf("     TLCL_GEMM_TUNE=%s\n", tune.gemm_tune);
    check_shapes(h, TLCL_GEMM_OWN, SHAPES_SIM, n, 0);
    tlcl_cl_settings_override(h->cl, &saved);
    /* CLBlast's kernels take the simulator ~30x longer: the back-end's
     * plumbing (transposes, offsets, strides, beta = 0 over NaN) on the
     * small shapes */
    check_shapes(h, TLCL_GEMM_CLBLAST, SHAPES_SIM, n, 20000);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* A fresh engine on the same device resolves AUTO; returns its choice and
 * whether it measured. */
static tlcl_gemm_backend resolve_fresh(harness *h, int *measured)
{
    tlcl_engine *e;
    if (harness_status(h, tlcl_engine_init(&e, h->cl), "engine init"))
        return TLCL_GEMM_AUTO;
    int before = gemm_select_measure_count();
    tlcl_gemm_backend b = tlcl_gemm_get_backend(e);
    *measured = gemm_select_measure_count() - before;
    tlcl_engine_free(e);
    return b;
}

/* Swaps the backend name in a valid file for the other one, so only a
 * reader of the file can return it. */
static void forge_other(const char *path, tlcl_gemm_backend chosen)
{
    char buf[512] = "";
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    char *p = strstr(buf, "backend ");
    if (!p)
        return;
    char out[600];
    snprintf(out, sizeof out, "%.*sbackend %s\n", (int)(p - buf), buf,
             chosen == TLCL_GEMM_OWN ? "clblast" : "own");
    write_text(path, out);
}

static void check_auto(harness *h)
{
    char path[1100];
    tlcl_settings saved = *tlcl_cl_settings(h->cl), measured_choice = saved, forced = saved;
    measured_choice.gemm[0] = '\0'; /* the persisted choice, not the override, is under test */
    tlcl_cl_settings_override(h->cl, &measured_choice);
    gemm_select_path(h->eng, path, sizeof path);
    if (!path[0]) {
        harness_fail(h, "no program cache directory: set TLCL_CACHE_DIR");
        tlcl_cl_settings_override(h->cl, &saved);
        return;
    }
    remove(path);
    int measured;
    tlcl_gemm_backend first = resolve_fresh(h, &measured);
    FILE *f = fopen(path, "r");
    harness_expect(h, first != TLCL_GEMM_AUTO && measured == 1 && f, "auto: measured once and persisted");
    if (f)
        fclose(f);
    printf("     auto chose %s on %s\n", tlcl_gemm_backend_name(first), h->device_name);
    tlcl_gemm_backend again = resolve_fresh(h, &measured);
    harness_expect(h, again == first && measured == 0, "auto: second engine reads the file, no measurement");
    forge_other(path, first);
    again = resolve_fresh(h, &measured);
    harness_expect(h, again != first && again != TLCL_GEMM_AUTO && measured == 0, "auto: the file's choice is used");
    write_text(path, "tlcl-gemm-select 1\nkey zz\nbackend \x01\x02garbage");
    again = resolve_fresh(h, &measured);
    int measured2;
    tlcl_gemm_backend third = resolve_fresh(h, &measured2);
    harness_expect(h, again != TLCL_GEMM_AUTO && measured == 1 && measured2 == 0 && third == again,
           "auto: a corrupt file is re-measured and rewritten");
    snprintf(forced.gemm, sizeof forced.gemm, "clblast");
    tlcl_cl_settings_override(h->cl, &forced);
    harness_expect(h, resolve_fresh(h, &measured) == TLCL_GEMM_CLBLAST && measured == 0, "auto: $TLCL_GEMM overrides");
    tlcl_cl_settings_override(h->cl, &saved);
}

int main(void)
{
    harness h;
    harness_init(&h, 1);
    check_all_shapes(&h);
    if (!h.quick)
        check_auto(&h);
    return harness_finish(&h);
}
