/* bench_depthwise.c — depthwise forward's effective bandwidth (input +
 * output bytes per second) against a device copy of the same input, the
 * peer figure: the target is a ratio of at least 0.5.
 * Usage: bench_depthwise [N H W C K stride] [--bf16] (default an
 * EfficientNet-B0 stage-2 shape: 8 112 112 96, k=3 s=2; --bf16 stores the
 * feature maps as bfloat16, the bandwidth then counts their 2-byte
 * elements). Device: $TLCL_DEVICE index or the default.
 * Also prints the two backward halves, by the same bytes (input + output). */
#include "bench_util.h"

#include <string.h>

/* Seconds per call of op over reps calls, after one warm-up call, wall
 * and CPU (cpu[i_op++]). */
#define TIME_IT(secs, reps, call)                                        \
    do {                                                                 \
        tlcl_status s_ = (call);                                         \
        if (s_ != TLCL_OK || tlcl_cl_finish(cl) != TLCL_OK)              \
            goto fail;                                                   \
        double t0_ = bench_now(), c0_ = bench_cpu_seconds();                             \
        for (int i_ = 0; i_ < (reps); i_++)                              \
            if ((call) != TLCL_OK)                                       \
                goto fail;                                               \
        if (tlcl_cl_finish(cl) != TLCL_OK)                               \
            goto fail;                                                   \
        (secs) = (bench_now() - t0_) / (reps);                                 \
        cpu[i_op++] = (bench_cpu_seconds() - c0_) / (reps);                              \
    } while (0)

int main(int argc, char **argv)
{
    int a[6] = {8, 112, 112, 96, 3, 2};
    int bf16 = 0, nargs = 1; /* --bf16 anywhere; the numbers in order */
    char *args[7] = {argv[0]};
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--bf16") == 0)
            bf16 = 1;
        else if (nargs < 7)
            args[nargs++] = argv[i];
    bench_int_args(nargs, args, a, 6);
    tlcl_dtype fmap = bf16 ? TLCL_BF16 : TLCL_F32;
    int N = a[0], H = a[1], W = a[2], C = a[3], K = a[4], S = a[5], OH, OW;
    tlcl_conv_geom g = bench_same_geometry(H, W, K, S, &OH, &OW);
    tlcl_cl *cl;
    tlcl_engine *e;
    if (bench_open_env_device("bench_depthwise", &cl, &e))
        return 1;
    tlcl_tensor in, in2, out, w, dw;
    double t_dw = 0, t_copy = 0, t_din = 0, t_dwt = 0, cpu[4] = {0};
    int i_op = 0;
    if (tlcl_tensor_alloc_as(e, &in, "in", fmap, N, H, W, C) ||
        tlcl_tensor_alloc_as(e, &in2, "copy", fmap, N, H, W, C) ||
        tlcl_tensor_alloc_as(e, &out, "out", fmap, N, OH, OW, C) || tlcl_tensor_alloc(e, &w, "w", K, K, 1, C) ||
        tlcl_tensor_alloc(e, &dw, "dw", K, K, 1, C) || tlcl_tensor_fill(e, &dw, 0.0f) ||
        tlcl_tensor_fill(e, &in, 1.0f) || tlcl_tensor_fill(e, &w, 0.5f))
        goto fail;
    TIME_IT(t_dw, 10, tlcl_depthwise_forward(e, &out, &in, &w, &g));
    TIME_IT(t_copy, 10, tlcl_tensor_copy(e, &in2, &in));
    TIME_IT(t_din, 10, tlcl_depthwise_backward(e, &in2, NULL, &out, &in, &w, &g));
    TIME_IT(t_dwt, 10, tlcl_depthwise_backward(e, NULL, &dw, &out, &in, &w, &g));
    double bytes_dw = (double)(tlcl_tensor_bytes(&in) + tlcl_tensor_bytes(&out));
    double bytes_copy = 2.0 * (double)tlcl_tensor_bytes(&in);
    double bw_dw = bytes_dw / t_dw / 1e9, bw_copy = bytes_copy / t_copy / 1e9;
    printf("device %s: depthwise %dx%dx%dx%d k%d s%d %s: %.3f ms, %.2f GB/s; copy %.3f ms, %.2f GB/s; ratio %.2f\n",
           tlcl_cl_device(cl)->name, N, H, W, C, K, S, bf16 ? "bf16" : "f32", t_dw * 1e3, bw_dw, t_copy * 1e3,
           bw_copy, bw_dw / bw_copy);
    printf("  backward: din %.3f ms (%.2f GB/s), dweight %.3f ms (%.2f GB/s)\n", t_din * 1e3, bytes_dw / t_din / 1e9,
           t_dwt * 1e3, bytes_dw / t_dwt / 1e9);
    printf("  CPU ms per call (all threads): forward %.3f, copy %.3f, din %.3f, dweight %.3f\n", cpu[0] * 1e3,
           cpu[1] * 1e3, cpu[2] * 1e3, cpu[3] * 1e3);
    return bench_close("bench_depthwise", cl, e, 0);
fail:
    return bench_close("bench_depthwise", cl, e, 1);
}
