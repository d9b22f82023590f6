/* bench_conv.c — a k×k convolution's forward, input gradient and weight
 * gradient through the implicit-GEMM kernels against im2col + GEMM (the
 * peer: $TLCL_CONV=im2col), on the same device in one run.
 * Usage: bench_conv [N H W cin cout k stride] (default EfficientNetV2-B0's
 * block2b_expand_conv: 16 56 56 32 128, k=3 s=1). Device: $TLCL_DEVICE
 * index or the default. Prints ms and GFLOP/s of each and the ratios
 * (im2col time / implicit time: above 1 the implicit path is faster).
 * $TLCL_BENCH_BF16=1 stores the feature maps (in, out, din) as bfloat16,
 * the weight and its gradient float32, as mixed precision does. */
#include "bench_util.h"

#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    int a[7] = {16, 56, 56, 32, 128, 3, 1};
    bench_int_args(argc, argv, a, 7);
    int N = a[0], H = a[1], W = a[2], cin = a[3], cout = a[4], K = a[5], S = a[6], OH, OW;
    tlcl_conv_geom g = bench_same_geometry(H, W, K, S, &OH, &OW);
    tlcl_cl *cl;
    tlcl_engine *e;
    if (bench_open_env_device("bench_conv", &cl, &e))
        return 1;
    tlcl_tensor in, din, out, w, dw;
    double t[2][3] = {{0}};
    const char *bf16 = getenv("TLCL_BENCH_BF16");
    tlcl_dtype act = bf16 && strcmp(bf16, "1") == 0 ? TLCL_BF16 : TLCL_F32;
    if (tlcl_tensor_alloc_as(e, &in, "in", act, N, H, W, cin) ||
        tlcl_tensor_alloc_as(e, &din, "din", act, N, H, W, cin) ||
        tlcl_tensor_alloc_as(e, &out, "out", act, N, OH, OW, cout) || tlcl_tensor_alloc(e, &w, "w", K, K, cin, cout) ||
        tlcl_tensor_alloc(e, &dw, "dw", K, K, cin, cout) || tlcl_tensor_fill(e, &dw, 0.0f) ||
        tlcl_tensor_fill(e, &in, 1.0f) || tlcl_tensor_fill(e, &w, 0.5f))
        goto fail;
    tlcl_settings saved = *tlcl_cl_settings(cl), im2col = saved;
    im2col.conv_im2col = 1;
    for (int p = 0; p < 2; p++) {
        if (p == 1)
            tlcl_cl_settings_override(cl, &im2col);
        BENCH_BEST_OF(t[p][0], tlcl_conv2d_forward(e, &out, &in, &w, &g));
        BENCH_BEST_OF(t[p][1], tlcl_conv2d_backward(e, &din, NULL, &out, &in, &w, &g));
        BENCH_BEST_OF(t[p][2], tlcl_conv2d_backward(e, NULL, &dw, &out, &in, &w, &g));
    }
    tlcl_cl_settings_override(cl, &saved);
    double flop = 2.0 * N * OH * OW * (double)K * K * cin * cout;
    printf("device %s: conv %dx%dx%dx%d -> %d k%d s%d (%.2f GFLOP per pass), %s feature maps\n",
           tlcl_cl_device(cl)->name, N, H, W, cin, cout, K, S, flop * 1e-9, act == TLCL_BF16 ? "bfloat16" : "float32");
    const char *pass[3] = {"forward", "input grad", "weight grad"};
    for (int k = 0; k < 3; k++)
        printf("  %-11s implicit %8.3f ms (%6.1f GFLOP/s)  im2col %8.3f ms (%6.1f GFLOP/s)  ratio %.2f\n", pass[k],
               t[0][k] * 1e3, flop / t[0][k] * 1e-9, t[1][k] * 1e3, flop / t[1][k] * 1e-9, t[1][k] / t[0][k]);
    return bench_close("bench_conv", cl, e, 0);
fail:
    return bench_close("bench_conv", cl, e, 1);
}
