/* gemm.cl — row-major C = alpha * op(A) * op(B) + beta * C. */

__kernel void gemm_naive(int ta, int tb, int M, int N, int K, float alpha,
                         __global const float *A, int a_off, int lda,
                         __global const float *B, int b_off, int ldb, float beta,
                         __global float *C, int c_off, int ldc)
{
    int j = get_global_id(0), i = get_global_id(1);
    if (i >= M || j >= N) return;
    A += a_off; B += b_off; C += c_off;
    float acc = 0.0f;
    for (int k = 0; k < K; k++) {
        float a = ta ? A[k * lda + i] : A[i * lda + k];
        float b = tb ? B[j * ldb + k] : B[k * ldb + j];
        acc += a * b;
    }
    /* beta == 0 must not read C: it may hold NaN garbage from the pool */
    C[i * ldc + j] = alpha * acc + (beta != 0.0f ? beta * C[i * ldc + j] : 0.0f);
}
