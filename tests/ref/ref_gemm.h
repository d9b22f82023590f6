/* ref_gemm.h — double-precision reference GEMM (row-major, like tlcl_gemm). */
#ifndef TLCL_REF_GEMM_H
#define TLCL_REF_GEMM_H

void ref_gemm(int ta, int tb, int M, int N, int K, double alpha, const double *A, int lda, const double *B,
              int ldb, double beta, double *C, int ldc);

#endif
