/* gemm.c — the GEMM interface and tlcl's own kernels. The back-end is
 * chosen per device (see gemm_select.c) or forced by $TLCL_GEMM. */
#include "engine_internal.h"
#include "tlcl_programs.h"

#include <stdlib.h>
#include <string.h>

tlcl_status tlcl_gemm_clblast(tlcl_engine *e, int ta, int tb, int M, int N, int K, float alpha, cl_mem A,
                              size_t a_off, int lda, cl_mem B, size_t b_off, int ldb, float beta, cl_mem C,
                              size_t c_off, int ldc);

const char *tlcl_gemm_backend_name(tlcl_gemm_backend b)
{
    return b == TLCL_GEMM_OWN ? "own" : b == TLCL_GEMM_CLBLAST ? "clblast" : "auto";
}

void tlcl_gemm_set_backend(tlcl_engine *e, tlcl_gemm_backend b) { e->gemm_backend = b; }

tlcl_gemm_backend tlcl_gemm_get_backend(tlcl_engine *e)
{
    if (e->gemm_backend == TLCL_GEMM_AUTO) {
        const char *env = getenv("TLCL_GEMM");
        if (env && strcmp(env, "clblast") == 0)
            e->gemm_backend = TLCL_GEMM_CLBLAST;
        else
            e->gemm_backend = TLCL_GEMM_OWN;
    }
    return e->gemm_backend;
}

static tlcl_status gemm_own(tlcl_engine *e, int ta, int tb, int M, int N, int K, float alpha, cl_mem A,
                            size_t a_off, int lda, cl_mem B, size_t b_off, int ldb, float beta, cl_mem C,
                            size_t c_off, int ldc)
{
    size_t g[2] = {(size_t)N, (size_t)M};
    return TLCL_RUN(e->cl, TLCL_PROG(gemm), "", "gemm_naive", 2, g, NULL, TLCL_INT(ta), TLCL_INT(tb), TLCL_INT(M),
                    TLCL_INT(N), TLCL_INT(K), TLCL_FLOAT(alpha), TLCL_MEM(A), TLCL_INT(a_off), TLCL_INT(lda),
                    TLCL_MEM(B), TLCL_INT(b_off), TLCL_INT(ldb), TLCL_FLOAT(beta), TLCL_MEM(C), TLCL_INT(c_off),
                    TLCL_INT(ldc));
}

tlcl_status tlcl_gemm(tlcl_engine *e, int ta, int tb, int M, int N, int K, float alpha, cl_mem A, size_t a_off,
                      int lda, cl_mem B, size_t b_off, int ldb, float beta, cl_mem C, size_t c_off, int ldc)
{
    if (M <= 0 || N <= 0)
        return TLCL_OK;
    if (tlcl_gemm_get_backend(e) == TLCL_GEMM_CLBLAST)
        return tlcl_gemm_clblast(e, ta, tb, M, N, K, alpha, A, a_off, lda, B, b_off, ldb, beta, C, c_off, ldc);
    return gemm_own(e, ta, tb, M, N, K, alpha, A, a_off, lda, B, b_off, ldb, beta, C, c_off, ldc);
}
