/* test_gemm.c — tlcl_gemm against the double reference for every
 * transpose combination, awkward sizes, offsets, alpha/beta, on the
 * back-end in force ($TLCL_GEMM) and, explicitly, on both back-ends. */
#include "harness.h"
#include "ref_gemm.h"

#include <stdio.h>
#include <stdlib.h>

static void check_gemm(harness *h, tlcl_gemm_backend be, int ta, int tb, int M, int N, int K, float alpha, float beta)
{
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
    size_t a_off = 5, b_off = 7, c_off = 3;
    size_t na = a_off + (size_t)(ta ? K : M) * lda, nb = b_off + (size_t)(tb ? N : K) * ldb,
           nc = c_off + (size_t)M * ldc;
    float *A = malloc(na * sizeof *A), *B = malloc(nb * sizeof *B), *C = malloc(nc * sizeof *C);
    harness_fill(h, A, na, -1, 1);
    harness_fill(h, B, nb, -1, 1);
    harness_fill(h, C, nc, -1, 1);
    double *dA = harness_to_double(A, na), *dB = harness_to_double(B, nb), *dC = harness_to_double(C, nc);
    ref_gemm(ta, tb, M, N, K, alpha, dA + a_off, lda, dB + b_off, ldb, beta, dC + c_off, ldc);
    tlcl_tensor tA = harness_tensor(h, "A", (int)na, 1, 1, 1, A);
    tlcl_tensor tB = harness_tensor(h, "B", (int)nb, 1, 1, 1, B);
    tlcl_tensor tC = harness_tensor(h, "C", (int)nc, 1, 1, 1, C);
    tlcl_gemm_set_backend(h->eng, be);
    char what[128];
    snprintf(what, sizeof what, "gemm %s %c%c M=%d N=%d K=%d a=%g b=%g", tlcl_gemm_backend_name(be), ta ? 'T' : 'N',
             tb ? 'T' : 'N', M, N, K, alpha, beta);
    if (!harness_status(h, tlcl_gemm(h->eng, ta, tb, M, N, K, alpha, tA.buf, a_off, lda, tB.buf, b_off, ldb, beta,
                                     tC.buf, c_off, ldc), what)) {
        float *got = harness_download(h, &tC);
        harness_check(h, what, got, dC, nc, 1e-4, 1e-6);
        free(got);
    }
    tlcl_tensor_release(h->eng, &tA);
    tlcl_tensor_release(h->eng, &tB);
    tlcl_tensor_release(h->eng, &tC);
    free(A), free(B), free(C), free(dA), free(dB), free(dC);
}

int main(void)
{
    harness h;
    harness_init(&h, 1);
    static const int shapes[][3] = {{1, 1, 1}, {7, 5, 3}, {33, 17, 65}, {64, 64, 64}, {130, 47, 96}, {16, 1, 200}};
    tlcl_gemm_backend backends[] = {TLCL_GEMM_OWN, TLCL_GEMM_CLBLAST};
    for (int b = 0; b < 2; b++)
        for (int s = 0; s < 6; s++)
            for (int t = 0; t < 4; t++)
                check_gemm(&h, backends[b], t & 1, t >> 1, shapes[s][0], shapes[s][1], shapes[s][2],
                           t == 3 ? 0.5f : 1.0f, (s & 1) ? 0.0f : 0.75f);
    return harness_finish(&h);
}
