/* depthwise.cl — depthwise k×k convolution in NHWC, forward, input gradient
 * (gather) and weight gradient (two-stage reduction), no atomics.
 *
 * A pixel's channels are contiguous, so a work-item handles V adjacent
 * channels with one vector load per tap (V from the device's preferred
 * vector width, see common.cl). Each kernel body is written once as a macro
 * and instantiated for every width here, so one program (one build, with the
 * one constant option -DDW_STRIP) serves every shape. Indices below are in
 * units of V elements: Cv = C / V. The kernel size is a runtime argument for
 * the same reason.
 *
 * Storage: the feature maps (in, out, din, dout: act_t) are float, or
 * bfloat16 in the build with -DTLCL_BF16 (common.cl), read with LOADA_V
 * and written with STOREA_V, which rounds once; the weights, the batch
 * norm vectors and the weight gradient's partial sums stay float, and
 * every sum is float. No kernel stores an intermediate as bfloat16. */

/* Output coordinate that reads input i through tap k, or -1 (off the stride
 * grid or outside the output). */
inline int dw_dst(int i, int k, int stride, int pad, int out_size)
{
    int t = i + pad - k;
    if (t < 0 || t % stride != 0)
        return -1;
    t /= stride;
    return t < out_size ? t : -1;
}

/* DW_STRIP, outputs (forward) or inputs (input gradient) per work-item
 * along x, comes from the host, which sizes the launch by it: the strip
 * shares each weight load and the index arithmetic, which dominate a
 * one-element work-item. */
#ifndef DW_STRIP
#error "depthwise.cl needs -DDW_STRIP"
#endif

/* Work-item (cv, strip of DW_STRIP outputs along x, n*OH + oy), one launch
 * dimension each with cv fastest, so neighbouring work-items read
 * neighbouring channels and no division splits a flat index (the divisions
 * had cost V2-B0's stride-2 layers 1.24 ms a step against 0.74-0.98);
 * taps in the padding are skipped. With flip set the taps are read
 * mirrored: at stride 1 the input gradient is this convolution of the
 * output gradient (padding k - 1 - pad), which beats the gather below.
 * With bn set the outputs go through batch norm (saved statistics) and act,
 * as batchnorm.cl's bn_forward: inference-mode batch norm, fused.
 *
 * KH, KW and STRIDE are literals in the 3×3 and 5×5 instances (strides 1
 * and 2, DW_FORWARD_ROWS below), or the runtime kh, kw, stride in the
 * generic one. A strip whose taps all fall inside the row takes a path
 * without bounds checks. */
/* The strip's accumulators must live in registers: left to itself PoCL's
 * LLVM keeps the strip loop rolled, with acc[] on the stack and every FMA a
 * load-add-store chain (5x slower). The pragma is Clang's, which every
 * OpenCL compiler in use here and on the GPU vendors' stacks accepts; a
 * compiler that does not know it ignores it. */
#define DW_UNROLL _Pragma("unroll")

/* A pointer to vector i of p (V elements each), taken once per row of taps:
 * the taps then index it with offsets k * Cv that are the same for every
 * row, which the compiler keeps as 64-bit registers. Indexing p itself with
 * the whole 32-bit index cost PoCL's code four integer instructions (add,
 * sign extension, shift, a reload of a spilled offset) around each FMA's
 * load. i may lie before the buffer where the taps are checked; only the
 * taps that pass are read. */
#define DW_AT(p, i, V) ((p) + (long)(i) * (V))

#define DW_TAP_ROW(T, V, KH, KW, STRIDE, CHECK)                                                               \
    for (int kx = 0; kx < KW; kx++) {                                                            \
        int k = ky * KW + kx;                                                                              \
        T wv = LOAD_##V((flip ? KH * KW - 1 - k : k) * Cv + cv, w);                                        \
        DW_UNROLL for (int t = 0; t < DW_STRIP; t++) {                                                     \
            int x = x0 + t * STRIDE + kx;                                                                  \
            if (CHECK)                                                                                     \
                acc[t] = MAD(LOADA_##V((row + x) * Cv + cv, in), wv, acc[t]);                              \
        }                                                                                                  \
    }

/* The forward's launch: work-item (cv, strip, n*OH + oy), its first input
 * column x0 and row y0 and whether the strip's taps all fall inside the row. */
#define DW_FORWARD_HEAD(T, KW, STRIDE)                                                                     \
    int ox0 = get_global_id(1) * DW_STRIP, r = get_global_id(2);                                           \
    if (r >= rows)                                                                                         \
        return;                                                                                            \
    int n = r / OH, y0 = (r % OH) * STRIDE - pad_top, x0 = ox0 * STRIDE - pad_left;                        \
    int inside = x0 >= 0 && x0 + (DW_STRIP - 1) * STRIDE + KW <= W;

/* The channel vectors a work-item computes: its own on a GPU (dimension 0
 * spans Cv); on PoCL, whose launch is one wide there (conv_depthwise.c's
 * dw_cpu_launch), all of them in turn, so a work-group of rows reads each
 * pixel's channels as one contiguous run instead of one 64-byte vector per
 * group out of every pixel. */
#define DW_FOR_CV(cv) for (int cv = get_global_id(0); cv < Cv; cv += get_global_size(0))

#define DW_ZERO(T, acc)                                                                                     \
    DW_UNROLL for (int t = 0; t < DW_STRIP; t++)                                                           \
        acc[t] = (T)(0.0f);

/* The strip's outputs, through batch norm (saved statistics) and act when
 * bn is set: inference-mode batch norm, fused. */
#define DW_FORWARD_STORE(S, T, V)                                                                          \
    T m = (T)(0.0f), is = m, ga = m, be = m;                                                               \
    if (bn)                                                                                                \
        m = LOAD_##V(cv, mean), is = LOAD_##V(cv, istd), ga = LOAD_##V(cv, gamma), be = LOAD_##V(cv, beta); \
    DW_UNROLL for (int t = 0; t < DW_STRIP; t++) {                                                         \
        if (ox0 + t >= OW)                                                                                 \
            continue;                                                                                      \
        /* the same expression as batchnorm.cl's bn_forward */                                             \
        T v = bn ? act_forward##S(act, ga * (acc[t] - m) * is + be) : acc[t];                              \
        STOREA_##V(v, (r * OW + ox0 + t) * Cv + cv, out);                                                  \
    }

#define DW_FORWARD_ARGS                                                                                    \
    __global act_t *out, __global const act_t *in, __global const float *w, int rows, int H, int W, int Cv,   \
        int OH, int OW, int kh, int kw, int stride, int pad_top, int pad_left, int flip, int bn,           \
        __global const float *mean, __global const float *istd, __global const float *gamma,               \
        __global const float *beta, int act

/* One forward kernel: ROWS(T, V, KH, KW, STRIDE) adds the taps of every
 * row into acc[] for channel vector cv. */
#define DW_FORWARD_KERNEL(NAME, S, T, V, KH, KW, STRIDE, ROWS)                                             \
    __kernel void NAME(DW_FORWARD_ARGS)                                                                    \
    {                                                                                                      \
        DW_FORWARD_HEAD(T, KW, STRIDE)                                                                     \
        DW_FOR_CV(cv) {                                                                                    \
            T acc[DW_STRIP];                                                                               \
            DW_ZERO(T, acc)                                                                                \
            ROWS(T, V, KH, KW, STRIDE)                                                                     \
            DW_FORWARD_STORE(S, T, V)                                                                      \
        }                                                                                                  \
    }

/* The generic rows: kh, kw and stride at run time (or literals). */
#define DW_GENERIC_ROWS(T, V, KH, KW, STRIDE)                                                              \
    for (int ky = 0; ky < KH; ky++) {                                                                      \
        int y = y0 + ky;                                                                                   \
        if (y < 0 || y >= H)                                                                               \
            continue;                                                                                      \
        int row = (n * H + y) * W;                                                                         \
        if (inside) {                                                                                      \
            DW_TAP_ROW(T, V, KH, KW, STRIDE, 1)                                                            \
        } else {                                                                                           \
            DW_TAP_ROW(T, V, KH, KW, STRIDE, x >= 0 && x < W)                                              \
        }                                                                                                  \
    }
#define DW_FORWARD(NAME, S, T, V, KH, KW, STRIDE) DW_FORWARD_KERNEL(NAME, S, T, V, KH, KW, STRIDE, DW_GENERIC_ROWS)

/* The 3×3 and 5×5 instances (KH, KW, STRIDE literals) read each input row
 * the strip needs into registers once, DW_SPAN vectors from one base index
 * (offsets j * Cv), then take every tap from registers. The generic body
 * above, unrolled the same way, left PoCL's LLVM the kx loop rolled and four
 * integer instructions (a 32-bit index, sign extension, shift) around each
 * FMA's load; here the loads are all the integer work. */
#define DW_SPAN(KW, STRIDE) ((DW_STRIP - 1) * (STRIDE) + (KW))
#define DW_LOAD_SPAN(T, V, xin, KW, STRIDE, CHECK)                                                         \
    DW_UNROLL for (int j = 0; j < DW_SPAN(KW, STRIDE); j++)                                                \
        xin[j] = (CHECK) ? LOADA_##V(base + j * Cv, in) : (T)(0.0f);

/* A span whose taps all fall inside the row. bfloat16 at 16 wide with an
 * even Cv puts every vector of the span in the same half of its 64-byte
 * line, and 32-byte loads at such strides are slow on PoCL's CPU (float32
 * at 8 wide too: its C = 32 and 64 forwards took longer than 40 and 56;
 * bench_depthwise): each vector is read with its whole line, one 64-byte
 * load, and its half taken from the register. With Cv even a pixel is
 * whole lines, so the line lies inside the buffer. Float32 and other
 * widths load the vectors themselves. */
#ifdef TLCL_BF16
#define DW_LINE_16(i) (((__global const uint16 *)(in))[i])
#define DW_HALF_16(i, upper) bf16_load16(as_ushort16((upper) ? DW_LINE_16(i).hi : DW_LINE_16(i).lo))
#define DW_HALF_8(i, upper) LOADA_8(2 * (i) + (upper), in)
#define DW_HALF_4(i, upper) LOADA_4(2 * (i) + (upper), in)
#define DW_HALF_1(i, upper) LOADA_1(2 * (i) + (upper), in)
#define DW_LOAD_SPAN_INSIDE(T, V, xin, KW, STRIDE)                                                         \
    if (V == 16 && (Cv & 1) == 0) {                                                                        \
        int line = base >> 1, upper = base & 1;                                                           \
        DW_UNROLL for (int j = 0; j < DW_SPAN(KW, STRIDE); j++)                                            \
            xin[j] = DW_HALF_##V(line + j * (Cv >> 1), upper);                                             \
    } else {                                                                                               \
        DW_LOAD_SPAN(T, V, xin, KW, STRIDE, 1)                                                             \
    }
#else
#define DW_LOAD_SPAN_INSIDE(T, V, xin, KW, STRIDE) DW_LOAD_SPAN(T, V, xin, KW, STRIDE, 1)
#endif

#define DW_SPAN_ROWS(T, V, KH, KW, STRIDE)                                                                 \
    DW_UNROLL for (int ky = 0; ky < KH; ky++) {                                                            \
        int y = y0 + ky;                                                                                   \
        if (y < 0 || y >= H)                                                                               \
            continue;                                                                                      \
        int base = ((n * H + y) * W + x0) * Cv + cv;                                                       \
        T xin[DW_SPAN(KW, STRIDE)];                                                                        \
        if (inside) {                                                                                      \
            DW_LOAD_SPAN_INSIDE(T, V, xin, KW, STRIDE)                                                     \
        } else {                                                                                           \
            DW_LOAD_SPAN(T, V, xin, KW, STRIDE, x0 + j >= 0 && x0 + j < W)                                 \
        }                                                                                                  \
        DW_UNROLL for (int kx = 0; kx < KW; kx++) {                                                        \
            int k = ky * KW + kx;                                                                          \
            T wv = LOAD_##V((flip ? KH * KW - 1 - k : k) * Cv + cv, w);                                    \
            DW_UNROLL for (int t = 0; t < DW_STRIP; t++)                                                   \
                acc[t] = MAD(xin[t * STRIDE + kx], wv, acc[t]);                                            \
        }                                                                                                  \
    }
#define DW_FORWARD_ROWS(NAME, S, T, V, KH, KW, STRIDE) DW_FORWARD_KERNEL(NAME, S, T, V, KH, KW, STRIDE, DW_SPAN_ROWS)

/* Work-item (cv, strip of DW_STRIP inputs along x, n*H + y), flattened with
 * cv fastest: sums, for each input, the outputs that read it. */
#define DW_BACKWARD_INPUT(NAME, T, V)                                                                        \
    __kernel void NAME(__global act_t *din, __global const act_t *dout, __global const float *w, int rows,   \
                       int H, int W, int Cv, int OH, int OW, int kh, int kw, int stride, int pad_top,        \
                       int pad_left)                                                                         \
    {                                                                                                        \
        int strips = (W + DW_STRIP - 1) / DW_STRIP;                                                          \
        int i = get_global_id(0), cv = i % Cv, x0 = (i / Cv) % strips * DW_STRIP, r = i / Cv / strips;       \
        if (r >= rows)                                                                                       \
            return;                                                                                          \
        int n = r / H, y = r % H;                                                                            \
        T acc[DW_STRIP];                                                                                     \
        DW_UNROLL for (int t = 0; t < DW_STRIP; t++)                                                         \
            acc[t] = (T)(0.0f);                                                                              \
        for (int ky = 0; ky < kh; ky++) {                                                                    \
            int oy = dw_dst(y, ky, stride, pad_top, OH);                                                     \
            if (oy < 0)                                                                                      \
                continue;                                                                                    \
            for (int kx = 0; kx < kw; kx++) {                                                                \
                T wv = LOAD_##V((ky * kw + kx) * Cv + cv, w);                                                \
                DW_UNROLL for (int t = 0; t < DW_STRIP; t++) {                                               \
                    int ox = dw_dst(x0 + t, kx, stride, pad_left, OW);                                       \
                    if (ox >= 0)                                                                             \
                        acc[t] = MAD(LOADA_##V(((n * OH + oy) * OW + ox) * Cv + cv, dout), wv, acc[t]);  \
                }                                                                                            \
            }                                                                                                \
        }                                                                                                    \
        DW_UNROLL for (int t = 0; t < DW_STRIP; t++)                                                         \
            if (x0 + t < W)                                                                                  \
                STOREA_##V(acc[t], (r * W + x0 + t) * Cv + cv, din);                                         \
    }

/* The input gradient at stride 2 for 3×3 and 5×5 (KH, KW literals):
 * work-item (cv, strip of DW_STRIP inputs along x, n*H + y), launched as
 * the forward. Input x = 2*ox - pad_left + kx: with q = x0 + pad_left =
 * 2*ob + P, input x0 + t gets output ob + j through tap kx = t + P - 2j.
 * For each literal phase P the j range and every kx are constants after
 * unrolling, so a row of taps is DW_S2_SPAN output vectors loaded once and
 * FMAs from registers; the generic gather above divides by the stride for
 * every tap and input. */
#define DW_S2_JLO(KW, P) (-(((KW) - 1 - (P)) / 2))
#define DW_S2_SPAN(KW, P) ((DW_STRIP - 1 + (P)) / 2 - DW_S2_JLO(KW, P) + 1)
#define DW_S2_ROW(T, V, KW, P)                                                                             \
    {                                                                                                      \
        T dd[DW_S2_SPAN(KW, P)];                                                                           \
        int o0 = ob + DW_S2_JLO(KW, P), inside = o0 >= 0 && o0 + DW_S2_SPAN(KW, P) <= OW;                  \
        DW_UNROLL for (int i = 0; i < DW_S2_SPAN(KW, P); i++)                                              \
            dd[i] = inside || (o0 + i >= 0 && o0 + i < OW) ? LOADA_##V(base + (o0 + i) * Cv, dout) : (T)(0.0f); \
        DW_UNROLL for (int i = 0; i < DW_S2_SPAN(KW, P); i++)                                              \
            DW_UNROLL for (int t = 0; t < DW_STRIP; t++) {                                                 \
                int kx = t + (P) - 2 * (DW_S2_JLO(KW, P) + i);                                             \
                if (kx >= 0 && kx < KW)                                                                    \
                    acc[t] = MAD(dd[i], wrow[kx], acc[t]);                                                 \
            }                                                                                              \
    }

#define DW_BACKWARD_INPUT_S2(NAME, T, V, KH, KW)                                                           \
    __kernel void NAME(__global act_t *din, __global const act_t *dout, __global const float *w, int rows,   \
                       int H, int W, int Cv, int OH, int OW, int kh, int kw, int stride, int pad_top,        \
                       int pad_left)                                                                         \
    {                                                                                                        \
        int x0 = get_global_id(1) * DW_STRIP, r = get_global_id(2);                                         \
        if (r >= rows)                                                                                       \
            return;                                                                                          \
        int n = r / H, y = r % H, ob = (x0 + pad_left) >> 1, odd = (x0 + pad_left) & 1;                    \
        DW_FOR_CV(cv) {                                                                                      \
            T acc[DW_STRIP];                                                                                 \
            DW_ZERO(T, acc)                                                                                     \
            DW_UNROLL for (int ky = 0; ky < KH; ky++) {                                                      \
                int u = y + pad_top - ky; /* = 2 * oy */                                                     \
                if (u < 0 || (u & 1) || (u >> 1) >= OH)                                                      \
                    continue;                                                                                \
                int base = (n * OH + (u >> 1)) * OW * Cv + cv;                                               \
                T wrow[KW];                                                                                  \
                DW_UNROLL for (int kx = 0; kx < KW; kx++)                                                    \
                    wrow[kx] = LOAD_##V((ky * KW + kx) * Cv + cv, w);                                        \
                if (odd)                                                                                     \
                    DW_S2_ROW(T, V, KW, 1)                                                                   \
                else                                                                                         \
                    DW_S2_ROW(T, V, KW, 0)                                                                   \
            }                                                                                                \
            DW_UNROLL for (int t = 0; t < DW_STRIP; t++)                                                     \
                if (x0 + t < W)                                                                              \
                    STOREA_##V(acc[t], (r * W + x0 + t) * Cv + cv, din);                                     \
        }                                                                                                    \
    }

/* Stage 1 of the weight gradient. Work-item (cv, tap, chunk) sums
 * dout * in over output rows [chunk*rows_per_chunk, +rows_per_chunk) of
 * N*OH and all ox, into partial[chunk][tap][C]. */
#define DW_WGRAD_PARTIAL(NAME, T, V)                                                                         \
    __kernel void NAME(__global float *partial, __global const act_t *dout, __global const act_t *in,        \
                       int rows, int rows_per_chunk, int H, int W, int Cv, int OH, int OW, int kh, int kw,   \
                       int stride, int pad_top, int pad_left)                                                \
    {                                                                                                        \
        int cv = get_global_id(0), tap = get_global_id(1), chunk = get_global_id(2);                         \
        int taps = kh * kw, r0 = chunk * rows_per_chunk;                                                     \
        if (cv >= Cv || tap >= taps || r0 >= rows)                                                           \
            return;                                                                                          \
        int ky = tap / kw, kx = tap % kw;                                                                    \
        /* ox whose column x = ox*stride - pad_left + kx lies inside [0, W) */                               \
        int ox0 = max(0, (pad_left - kx + stride - 1) / stride);                                             \
        int last = W - 1 + pad_left - kx; /* C division truncates: keep it non-negative */                  \
        int ox1 = last < 0 ? 0 : min(OW, last / stride + 1);                                                 \
        T acc = (T)(0.0f);                                                                                   \
        for (int r = r0; r < min(rows, r0 + rows_per_chunk); r++) {                                          \
            int n = r / OH, y = (r % OH) * stride - pad_top + ky;                                            \
            if (y < 0 || y >= H)                                                                             \
                continue;                                                                                    \
            for (int ox = ox0; ox < ox1; ox++)                                                               \
                acc += LOADA_##V((r * OW + ox) * Cv + cv, dout) *                                            \
                       LOADA_##V(((n * H + y) * W + ox * stride - pad_left + kx) * Cv + cv, in);             \
        }                                                                                                    \
        STORE_##V(acc, (chunk * taps + tap) * Cv + cv, partial);                                             \
    }

/* Stage 1 for 3×3 and 5×5 (KH, KW literals): work-item (cv, chunk) keeps
 * all KH*KW tap sums in registers, so each output gradient is read once
 * (the per-tap kernel above reads it once per tap) and the input rows it
 * pairs with stay in the cache across the taps. Each row's outputs split
 * into the columns whose taps all fall inside the input row (no column
 * checks, one base index per tap row) and the few at either edge: the
 * checks of every tap at every column, with 32-bit index arithmetic around
 * each load, had kept it far below the copy bandwidth. */
#define DW_WGRAD_COLUMN(T, V, KH, KW, CHECK)                                                                 \
    {                                                                                                        \
        T d = LOADA_##V((r * OW + ox) * Cv + cv, dout);                                                      \
        int x0 = ox * stride - pad_left;                                                                     \
        DW_UNROLL for (int ky = 0; ky < KH; ky++) {                                                          \
            int y = y0 + ky;                                                                                 \
            __global const act_t *p = DW_AT(in, ((n * H + y) * W + x0) * Cv + cv, V);                        \
            if (y >= 0 && y < H)                                                                             \
                DW_UNROLL for (int kx = 0; kx < KW; kx++)                                                    \
                    if (CHECK)                                                                               \
                        acc[ky * KW + kx] = MAD(d, LOADA_##V(kx * Cv, p), acc[ky * KW + kx]);                \
        }                                                                                                    \
    }

#define DW_WGRAD_TAPS(NAME, T, V, KH, KW, SPLIT)                                                          \
    __kernel void NAME(__global float *partial, __global const act_t *dout, __global const act_t *in,   \
                       int rows, int rows_per_chunk, int H, int W, int Cv, int OH, int OW, int kh, int kw, \
                       int stride, int pad_top, int pad_left)                                           \
    {                                                                                                   \
        int cv = get_global_id(0), chunk = get_global_id(1), r0 = chunk * rows_per_chunk;              \
        if (cv >= Cv || r0 >= rows)                                                                     \
            return;                                                                                     \
        /* columns [oxa, oxb) read taps inside the row: x0 >= 0 and x0 + KW <= W */                     \
        int oxa = min(OW, (pad_left + stride - 1) / stride);                                            \
        int last = W - KW + pad_left; /* C division truncates: keep it non-negative */                  \
        int oxb = max(oxa, last < 0 ? 0 : min(OW, last / stride + 1));                                  \
        if (!SPLIT) /* every column checked */                                                          \
            oxa = oxb = OW;                                                                             \
        T acc[KH * KW];                                                                                 \
        DW_UNROLL for (int k = 0; k < KH * KW; k++)                                                     \
            acc[k] = (T)(0.0f);                                                                         \
        for (int r = r0; r < min(rows, r0 + rows_per_chunk); r++) {                                     \
            int n = r / OH, y0 = (r % OH) * stride - pad_top;                                           \
            for (int ox = 0; ox < oxa; ox++)                                                            \
                DW_WGRAD_COLUMN(T, V, KH, KW, x0 + kx >= 0 && x0 + kx < W)                              \
            for (int ox = oxa; ox < oxb; ox++)                                                          \
                DW_WGRAD_COLUMN(T, V, KH, KW, 1)                                                        \
            for (int ox = oxb; ox < OW; ox++)                                                           \
                DW_WGRAD_COLUMN(T, V, KH, KW, x0 + kx >= 0 && x0 + kx < W)                              \
        }                                                                                               \
        DW_UNROLL for (int k = 0; k < KH * KW; k++)                                                     \
            STORE_##V(acc[k], (chunk * KH * KW + k) * Cv + cv, partial);                                \
    }

/* The shapes' unrolled kernels at the device's width (engine: dw_shaped).
 * 5x5 at stride 2 keeps the generic body with literals: its row span of 19
 * vectors beside 8 accumulators measured slower on PoCL. */
#define DW_SHAPED_KERNELS(S, T, V)                                     \
    DW_WGRAD_TAPS(depthwise_wgrad_k3_##V, T, V, 3, 3, 1)               \
    DW_WGRAD_TAPS(depthwise_wgrad_k5_##V, T, V, 5, 5, 0)               \
    DW_FORWARD_ROWS(depthwise_forward_k3s1_##V, S, T, V, 3, 3, 1)      \
    DW_FORWARD_ROWS(depthwise_forward_k3s2_##V, S, T, V, 3, 3, 2)      \
    DW_FORWARD_ROWS(depthwise_forward_k5s1_##V, S, T, V, 5, 5, 1)      \
    DW_FORWARD(depthwise_forward_k5s2_##V, S, T, V, 5, 5, 2)           \
    DW_BACKWARD_INPUT_S2(depthwise_backward_input_k3s2_##V, T, V, 3, 3) \
    DW_BACKWARD_INPUT_S2(depthwise_backward_input_k5s2_##V, T, V, 5, 5)

FOR_MAIN_WIDTH(DW_SHAPED_KERNELS)

/* The generic kernels at every width */
#define DW_KERNELS(S, T, V)                                            \
    DW_FORWARD(depthwise_forward_##V, S, T, V, kh, kw, stride)         \
    DW_BACKWARD_INPUT(depthwise_backward_input_##V, T, V)  \
    DW_WGRAD_PARTIAL(depthwise_wgrad_partial_##V, T, V)

FOR_EACH_WIDTH(DW_KERNELS)

/* Stage 2: dw[i] += sum over chunks of partial[chunk][i], i over kh*kw*C. */
__kernel void depthwise_wgrad_sum(__global float *dw, __global const float *partial, int chunks, int count)
{
    int i = get_global_id(0);
    if (i >= count)
        return;
    float acc = 0.0f;
    for (int k = 0; k < chunks; k++)
        acc += partial[k * count + i];
    dw[i] += acc;
}
