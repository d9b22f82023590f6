/* bench_norm.c — training-mode batch norm + activation (swish by default), forward (statistics and
 * apply) and backward (gradient sums and dx), as effective bandwidth
 * against a device copy of the same tensor (the peer; a ratio of 1 would
 * be a pass at copy speed). Bytes counted: the tensors each pass must read
 * and write (forward: x read twice, y written; backward: dy and x read
 * twice, dx written).
 * Usage: bench_norm [N H W C act bf16] (default EfficientNetV2-B0's stem
 * output, 16 112 112 32, swish: act 1; 0 is none, 3 relu; bf16 1 stores the
 * feature maps as bfloat16, bytes counted at 2 an element). Device:
 * $TLCL_DEVICE index or the default. */
#include "bench_util.h"

int main(int argc, char **argv)
{
    int a[6] = {16, 112, 112, 32, TLCL_ACT_SWISH, 0};
    bench_int_args(argc, argv, a, 6);
    int N = a[0], H = a[1], W = a[2], C = a[3];
    tlcl_dtype dtype = a[5] ? TLCL_BF16 : TLCL_F32;
    tlcl_act act = (tlcl_act)a[4];
    tlcl_cl *cl;
    tlcl_engine *e;
    if (bench_open_env_device("bench_norm", &cl, &e))
        return 1;
    tlcl_tensor x, y, dy, dx, p[6];
    const char *names[6] = {"gamma", "beta", "moving mean", "moving var", "dgamma", "dbeta"};
    const float init[6] = {1.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f};
    for (int i = 0; i < 6; i++)
        if (tlcl_tensor_alloc(e, &p[i], names[i], 1, 1, 1, C) || tlcl_tensor_fill(e, &p[i], init[i]))
            goto fail;
    tlcl_bn bn = {.gamma = &p[0], .beta = &p[1], .moving_mean = &p[2], .moving_var = &p[3], .dgamma = &p[4],
                  .dbeta = &p[5], .momentum = 0.9f, .epsilon = 1e-3f};
    double t_fwd = 0, t_bwd = 0, t_copy = 0;
    if (tlcl_tensor_alloc_as(e, &x, "x", dtype, N, H, W, C) || tlcl_tensor_alloc_as(e, &y, "y", dtype, N, H, W, C) ||
        tlcl_tensor_alloc_as(e, &dy, "dy", dtype, N, H, W, C) ||
        tlcl_tensor_alloc_as(e, &dx, "dx", dtype, N, H, W, C) ||
        tlcl_tensor_fill(e, &x, 0.5f) || tlcl_tensor_fill(e, &dy, 0.25f))
        goto fail;
    BENCH_BEST_OF(t_fwd, tlcl_batchnorm_forward(e, &bn, &y, &x, TLCL_BN_TRAIN, act));
    BENCH_BEST_OF(t_bwd, tlcl_batchnorm_backward(e, &bn, &dx, &dy, &x, TLCL_BN_TRAIN, act));
    BENCH_BEST_OF(t_copy, tlcl_tensor_copy(e, &y, &x));
    double mb = (double)tlcl_tensor_bytes(&x);
    double bw_copy = 2.0 * mb / t_copy * 1e-9, bw_fwd = 3.0 * mb / t_fwd * 1e-9, bw_bwd = 5.0 * mb / t_bwd * 1e-9;
    printf("device %s: batch norm + activation %d, training, %dx%dx%dx%d %s (%.1f MB)\n", tlcl_cl_device(cl)->name,
           (int)act, N, H, W, C, a[5] ? "bfloat16" : "float32", mb * 1e-6);
    printf("  copy     %7.3f ms %6.1f GB/s\n", t_copy * 1e3, bw_copy);
    printf("  forward  %7.3f ms %6.1f GB/s  ratio %.2f\n", t_fwd * 1e3, bw_fwd, bw_fwd / bw_copy);
    printf("  backward %7.3f ms %6.1f GB/s  ratio %.2f\n", t_bwd * 1e3, bw_bwd, bw_bwd / bw_copy);
    tlcl_bn_release(e, &bn);
    return bench_close("bench_norm", cl, e, 0);
fail:
    return bench_close("bench_norm", cl, e, 1);
}
