/* gemm_clblast.c — the CLBlast back-end of tlcl_gemm. */
#include "engine_internal.h"

#include <clblast_c.h>

tlcl_status tlcl_gemm_clblast(tlcl_engine *e, int ta, int tb, int M, int N, int K, float alpha, cl_mem A,
                              size_t a_off, int lda, cl_mem B, size_t b_off, int ldb, float beta, cl_mem C,
                              size_t c_off, int ldc)
{
    cl_command_queue q = tlcl_cl_queue(e->cl);
    e->clblast_used = 1;
    CLBlastStatusCode rc = CLBlastSgemm(CLBlastLayoutRowMajor, ta ? CLBlastTransposeYes : CLBlastTransposeNo,
                                        tb ? CLBlastTransposeYes : CLBlastTransposeNo, (size_t)M, (size_t)N,
                                        (size_t)K, alpha, A, a_off, (size_t)lda, B, b_off, (size_t)ldb, beta, C,
                                        c_off, (size_t)ldc, &q, NULL);
    if (rc != CLBlastSuccess)
        return ENG_FAIL(e, rc == CLBlastOpenCLOutOfResources ? TLCL_ERR_OOM : TLCL_ERR_CL,
                        "CLBlastSgemm(M=%d, N=%d, K=%d) failed with CLBlast status %d on %s", M, N, K, (int)rc,
                        tlcl_cl_device(e->cl)->name);
    return TLCL_OK;
}

/* CLBlast keeps the programs it built in a process-wide cache, each holding
 * the context. Left there, they are released by that cache's destructor at
 * exit, after tlcl_cl_free has released the context: a use after free in the
 * driver (oclgrind aborted with "corrupted double-linked list" at exit). So
 * an engine that used CLBlast empties the cache while the context lives; the
 * cache is shared, so another engine still using CLBlast only builds again. */
void tlcl_gemm_clblast_free(tlcl_engine *e)
{
    if (e->clblast_used)
        CLBlastClearCache();
}
