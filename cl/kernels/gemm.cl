/* gemm.cl — row-major C = alpha * op(A) * op(B) + beta * C.
 *
 * The host (engine/gemm.c) brings every call to one form: B row-major
 * [K, N] (a transposed B is first copied by gemm_transpose: B is usually a
 * weight, small next to A), A addressed through a row stride and a k stride
 * (so op(A) = A and op(A) = A^T are the same code), and K optionally split
 * into chunks (dimension 2 of the launch) whose partial products land in a
 * scratch buffer summed by gemm_splitk_reduce.
 *
 * gemm_tile is the fast path: each work-item owns a GEMM_TM x (GEMM_VW *
 * GEMM_NV) block of C held in vector registers; per k it loads GEMM_NV
 * vectors of B and broadcasts GEMM_TM scalars of A (outer-product update),
 * so the loads per FMA fall as the block grows. It needs no local memory: on
 * CPUs the caches do the tiling, and on GPUs the row of B is shared through
 * the L1 by the neighbouring work-items of dimension 0. It covers only the
 * whole blocks: gemm_tile_narrow3 / gemm_tile_v1 / gemm_tile_narrow (the
 * same code, narrower) take the column strip right of them, gemm_edge (one output per work-item,
 * bounds-checked) what is left right and below. The implicit-GEMM
 * convolution kernels (conv_tile, conv_wgrad) reuse the block code with
 * another A. Tuning values come in as -D from the host's per-device table
 * (engine/gemm.c). */

#ifndef GEMM_TM
#define GEMM_TM 8   /* rows of C per work-item */
#endif
#ifndef GEMM_VW
#define GEMM_VW 16  /* vector width along N: 2, 4, 8 or 16 */
#endif
#ifndef GEMM_NV
#define GEMM_NV 2   /* vectors along N per work-item */
#endif
#ifndef GEMM_VWN
#define GEMM_VWN 8  /* gemm_tile_narrow: one vector of this width per row */
#endif

/* The block loops must be unrolled so the accumulators live in registers
 * (PoCL kept them in memory otherwise: a load and a store per FMA; 6x
 * slower). Compilers that do not know the pragma ignore it. */
#define GEMM_PRAGMA_(x) _Pragma(#x)
#define GEMM_UNROLL GEMM_PRAGMA_(unroll)
#define GEMM_CAT_(a, b) a##b
#define GEMM_CAT(a, b) GEMM_CAT_(a, b)
#define GEMM_LOAD_2(p) vload2(0, p)
#define GEMM_LOAD_4(p) vload4(0, p)
#define GEMM_LOAD_8(p) vload8(0, p)
#define GEMM_LOAD_16(p) vload16(0, p)

/* Operand storage. Each of A, B and C is float32, or bfloat16 (common.cl's
 * bf16_load / bf16_round) under -DGEMM_A_BF16, -DGEMM_B_BF16, -DGEMM_C_BF16:
 * a product's feature maps are bfloat16 in mixed precision while its weight
 * or weight gradient stays float32 (engine/gemm.c builds only the
 * combinations its callers use). Loads widen exactly and every sum is
 * float; C is rounded once, on the final store (beta's C and the fused
 * epilogue's residual, a feature map like C, read in C's storage). The
 * split-K partials and the implicit weight gradient's partials are float
 * always. Without the options every macro is the plain float access. */
#ifdef GEMM_A_BF16
typedef ushort gemm_a_t;
#define GEMM_A(p, i) bf16_load((p)[i])
#else
typedef float gemm_a_t;
#define GEMM_A(p, i) ((p)[i])
#endif
#ifdef GEMM_B_BF16
typedef ushort gemm_b_t;
#define GEMM_B(p, i) bf16_load((p)[i])
#define GEMM_B_LOADV(VW, v, p) GEMM_CAT(bf16_load, VW)(GEMM_CAT(vload, VW)(v, p))
#else
typedef float gemm_b_t;
#define GEMM_B(p, i) ((p)[i])
#define GEMM_B_LOADV(VW, v, p) GEMM_CAT(vload, VW)(v, p)
#endif
#ifdef GEMM_C_BF16
typedef ushort gemm_c_t;
#define GEMM_C_LOADV(VW, v, p) GEMM_CAT(bf16_load, VW)(GEMM_CAT(vload, VW)(v, p))
/* the store through a vector type of 2-byte alignment: PoCL's vstore of a
 * ushort vector wrote its elements one at a time (16 extracts and stores) */
typedef ushort2 __attribute__((aligned(2))) gemm_c16x2;
typedef ushort4 __attribute__((aligned(2))) gemm_c16x4;
typedef ushort8 __attribute__((aligned(2))) gemm_c16x8;
typedef ushort16 __attribute__((aligned(2))) gemm_c16x16;
#define GEMM_C_STOREV(VW, x, v, p) (((__global GEMM_CAT(gemm_c16x, VW) *)(p))[v] = GEMM_CAT(bf16_round, VW)(x))
#define GEMM_C_LOAD_1(p) bf16_load(*(p))
#define GEMM_C_STORE_1(x, p) (*(p) = bf16_round(x))
#else
typedef float gemm_c_t;
#define GEMM_C_LOADV(VW, v, p) GEMM_CAT(vload, VW)(v, p)
#define GEMM_C_STOREV(VW, x, v, p) GEMM_CAT(vstore, VW)(x, v, p)
#define GEMM_C_LOAD_1(p) (*(p))
#define GEMM_C_STORE_1(x, p) (*(p) = (x))
#endif
#define GEMM_C_LOAD_2(p) GEMM_C_LOADV(2, 0, p)
#define GEMM_C_LOAD_4(p) GEMM_C_LOADV(4, 0, p)
#define GEMM_C_LOAD_8(p) GEMM_C_LOADV(8, 0, p)
#define GEMM_C_LOAD_16(p) GEMM_C_LOADV(16, 0, p)

/* The tile kernel for a vector width VW and NV vectors per row, so one
 * program holds the wide kernel and the narrower ones (one vector of
 * GEMM_VW, one of GEMM_VWN) that cover the column strip the wide blocks
 * leave (N = 24, 40, 80, 112, 144 in EfficientNet).
 * Launch: global (nblk, mblk, splits); columns start at n0; a_rs/a_ks:
 * strides of op(A) along rows and along k; kc: the k-chunk of one split;
 * c_ss: the distance between the splits' C (0 when there is one).
 * C block = alpha * acc + beta * C; beta == 0 never reads C (the pool hands
 * out buffers that may hold NaN). With bn set, each column j then goes
 * through inference-mode batch norm and an activation (a convolution's
 * batch norm fused into its GEMM): c = act(gamma[j] (c - mean[j]) istd[j] +
 * beta[j]), the expression of batchnorm.cl's bn_forward; with bn_has_res
 * the element of bn_res at C's own offset is then added (a residual
 * block's add fused into its project convolution). */
#define GEMM_BN_ARGS int bn, __global const float *bn_mean, __global const float *bn_istd,              \
                     __global const float *bn_gamma, __global const float *bn_beta, int bn_act,          \
                     __global const gemm_c_t *bn_res, int bn_has_res
/* LOAD reads the per-column parameters (float), RES the residual (C's storage) */
#define GEMM_BN_APPLY(ACTF, LOAD, RES, out, col, off)                                                   \
    (ACTF(bn_act, LOAD(bn_gamma + (col)) * ((out) - LOAD(bn_mean + (col))) * LOAD(bn_istd + (col)) +   \
                      LOAD(bn_beta + (col))) +                                                         \
     (bn_has_res ? RES(bn_res + (off)) : 0.0f))
#define GEMM_SCALAR_LOAD(p) (*(p))
/* The pieces of a work-item's TM x (VW * NV) block, shared by the GEMM and
 * the implicit-GEMM convolution below: clear, one k step (AVAL(r) is row
 * r's value of op(A) at this k), and the store (rows below ROWS only) with
 * alpha, beta and the optional batch-norm epilogue. */
#define GEMM_EPILOGUE_0(VW, out, col, off) (out)
#define GEMM_EPILOGUE_1(VW, out, col, off) \
    (bn ? GEMM_BN_APPLY(GEMM_CAT(act_forward, VW), GEMM_CAT(GEMM_LOAD_, VW), GEMM_CAT(GEMM_C_LOAD_, VW), out, \
                        col, off)                                                                      \
        : (out))
#define GEMM_BLOCK_ZERO(VW, NV)                                                                \
    GEMM_CAT(float, VW) acc[GEMM_TM][NV];                                                      \
    GEMM_UNROLL for (int r = 0; r < GEMM_TM; r++)                                              \
        GEMM_UNROLL for (int v = 0; v < (NV); v++)                                             \
            acc[r][v] = (GEMM_CAT(float, VW))(0.0f);
#define GEMM_BLOCK_STEP(VW, NV, AVAL)                                                          \
    {                                                                                          \
        GEMM_CAT(float, VW) bv[NV];                                                            \
        GEMM_UNROLL for (int v = 0; v < (NV); v++)                                             \
            bv[v] = GEMM_B_LOADV(VW, v, b);                                                    \
        GEMM_UNROLL for (int r = 0; r < GEMM_TM; r++) {                                        \
            GEMM_CAT(float, VW) av = (GEMM_CAT(float, VW))(AVAL(r));                           \
            GEMM_UNROLL for (int v = 0; v < (NV); v++)                                         \
                acc[r][v] = MAD(av, bv[v], acc[r][v]);                                    \
        }                                                                                      \
        b += ldb;                                                                              \
    }
#define GEMM_BLOCK_STORE(VW, NV, BN, ROWS, ROWOFF)                                             \
    GEMM_UNROLL for (int r = 0; r < GEMM_TM; r++)                                              \
        GEMM_UNROLL for (int v = 0; v < (NV); v++) {                                           \
            if (r >= (ROWS)) break;                                                            \
            GEMM_CAT(float, VW) out = alpha * acc[r][v];                                       \
            if (beta != 0.0f)                                                                  \
                out += beta * GEMM_C_LOADV(VW, v, c + ROWOFF(r));                              \
            out = GEMM_CAT(GEMM_EPILOGUE_, BN)(VW, out, j0 + v * (VW), (c - C) + ROWOFF(r) + v * (VW)); \
            GEMM_C_STOREV(VW, out, v, c + ROWOFF(r));                                          \
        }
/* ROWOFF(r): where row r of the block starts, from c (its row 0, column j0) */
#define GEMM_ROWS_DENSE(r) ((r) * ldc)

#define GEMM_A_STRIDED(r) GEMM_A(a, (r) * a_rs)
/* The last block of a product whose M is not a whole number of GEMM_TM
 * rows: its rows past M read row M-1 (last = its own last row) and are not
 * stored. */
#define GEMM_A_CLAMPED(r) GEMM_A(a, min(r, last) * a_rs)
#define GEMM_K_LOOP_WITH(VW, NV, AVAL)                                                         \
    for (int k = k0; k < k1; k++) {                                                            \
        GEMM_BLOCK_STEP(VW, NV, AVAL)                                                          \
        a += a_ks;                                                                             \
    }
#if !defined(GEMM_A_BF16) || !defined(GEMM_A_STAGE)
#define GEMM_TILE_K_LOOP(VW, NV) GEMM_K_LOOP_WITH(VW, NV, GEMM_A_STRIDED)
#else
/* CPUs (-DGEMM_A_STAGE, engine/gemm.c): a bfloat16 A widened in runs of
 * GEMM_KB k into private floats, which the k steps broadcast from memory as
 * a float A's loads do. Widened at every k step, each row's value went
 * through a register into the broadcast, a shuffle on the port the FMAs use
 * (PoCL, AVX-512: a 1x1 forward at K = 192 ran 0.6-0.75 of float32's speed
 * that way, staged 0.95). The run is widened a vector at a time: 8 k of a
 * row when a row's k are contiguous (A as it is: at[r * GEMM_KB + kk]), 8
 * rows of a k when a k's rows are (A transposed, a weight gradient's X:
 * at[kk * GEMM_TM + r]); one at a time otherwise. A GPU widens a scalar in
 * a register for free, and the private array would spill: it keeps the
 * plain loop. */
#define GEMM_KB 8 /* every K of EfficientNet's 1x1 convolutions is a multiple */
#define GEMM_A_STAGED(r) (ak[(r) * sr])
#define GEMM_TILE_K_LOOP(VW, NV)                                                               \
    float at[GEMM_TM * GEMM_KB];                                                               \
    int k_rows = a_rs == 1 && GEMM_TM % 8 == 0; /* a k's rows contiguous */                    \
    int sr = k_rows ? 1 : GEMM_KB, sk = k_rows ? GEMM_TM : 1;                                  \
    for (int kb = k0; kb < k1; kb += GEMM_KB) {                                                \
        int nk = min(GEMM_KB, k1 - kb);                                                        \
        if (k_rows) {                                                                          \
            for (int kk = 0; kk < nk; kk++)                                                    \
                GEMM_UNROLL for (int r = 0; r < GEMM_TM; r += 8)                               \
                    vstore8(bf16_load8(vload8(0, a + kk * a_ks + r)), 0, at + kk * GEMM_TM + r); \
        } else if (a_ks == 1 && nk == GEMM_KB) {                                               \
            GEMM_UNROLL for (int r = 0; r < GEMM_TM; r++)                                      \
                vstore8(bf16_load8(vload8(0, a + r * a_rs)), 0, at + r * GEMM_KB);             \
        } else {                                                                               \
            for (int kk = 0; kk < nk; kk++)                                                    \
                GEMM_UNROLL for (int r = 0; r < GEMM_TM; r++)                                  \
                    at[r * GEMM_KB + kk] = GEMM_A(a, r * a_rs + kk * a_ks);                    \
        }                                                                                      \
        for (int kk = 0; kk < nk; kk++) {                                                      \
            const float *ak = at + kk * sk;                                                    \
            GEMM_BLOCK_STEP(VW, NV, GEMM_A_STAGED)                                             \
        }                                                                                      \
        a += GEMM_KB * a_ks;                                                                   \
    }
#endif
/* mblk blocks cover the M rows; the last one, when M is not a whole
 * number of GEMM_TM, runs the plain k loop with its rows clamped (a
 * latency-sized pass has M = 49 or 196: one output per work-item through
 * gemm_edge took those few rows longer than the whole blocks took the rest). */
#define GEMM_TILE_KERNEL(NAME, VW, NV, BN)                                                     \
__kernel void NAME(int nblk, int mblk, int M, int n0, int K, int kc, float alpha,              \
                   __global const gemm_a_t *A, int a_off, int a_rs, int a_ks,                  \
                   __global const gemm_b_t *B, int b_off, int ldb, float beta,                 \
                   __global gemm_c_t *C, int c_off, int ldc, int c_ss, GEMM_BN_ARGS)           \
{                                                                                              \
    int bj = get_global_id(0), bi = get_global_id(1), s = get_global_id(2);                    \
    if (bj >= nblk || bi >= mblk) return;                                                      \
    int k0 = s * kc, k1 = min(K, k0 + kc);                                                     \
    int i0 = bi * GEMM_TM, j0 = n0 + bj * ((VW) * (NV)), rows = min(GEMM_TM, M - i0);          \
    const __global gemm_a_t *a = A + a_off + i0 * a_rs + k0 * a_ks;                            \
    const __global gemm_b_t *b = B + b_off + k0 * ldb + j0;                                    \
    GEMM_BLOCK_ZERO(VW, NV)                                                                    \
    if (rows == GEMM_TM) {                                                                     \
        GEMM_TILE_K_LOOP(VW, NV)                                                               \
    } else {                                                                                   \
        int last = rows - 1;                                                                   \
        GEMM_K_LOOP_WITH(VW, NV, GEMM_A_CLAMPED)                                               \
    }                                                                                          \
    __global gemm_c_t *c = C + c_off + s * c_ss + i0 * ldc + j0;                               \
    GEMM_BLOCK_STORE(VW, NV, BN, rows, GEMM_ROWS_DENSE)                                        \
}

/* The implicit-GEMM convolution: out = im2col(X) · W without the col
 * buffer. Row i of op(A) is output pixel i of an NHWC X [N,H,W,cin] and its
 * columns run (ky, kx, ci) as in conv2d.cl's im2col, so B is the Keras
 * weight [kh*kw*cin, cout] itself. Each of the block's TM rows gets a
 * pointer per window row (the block's windows all inside the image: the kw
 * taps are one run of kw*cin floats) or per tap (the others: cin input
 * channels, or `zeros`, cin zero floats, for a tap in the padding), so the
 * k loops are the GEMM's. Rows past M
 * (the last block) read row M-1 and are not stored. Output pixel (n, oy, ox)
 * is stored at pixel n*o_ns + oy*o_ys + ox*o_xs + o_off of C (ldc floats a
 * pixel): dense (OH*OW, OW, 1, 0), or one phase of a strided grid, where a
 * stride-s convolution's input gradient lands (engine/conv2d.c). */
/* The next output pixel (ox, oy, n) in NHWC order, without divisions. */
#define CONV_NEXT_PIXEL                                                                        \
    if (++ox == OW) {                                                                          \
        ox = 0;                                                                                \
        if (++oy == OH) {                                                                      \
            oy = 0;                                                                            \
            n++;                                                                               \
        }                                                                                      \
    }
#define GEMM_A_ROWS(r) GEMM_A(arow[r], ci)
#define CONV_ROWS_MAPPED(r) (crow[r])
#define CONV_TILE_KERNEL(NAME, VW, NV, BN)                                                     \
__kernel void NAME(int nblk, int mblk, int M, int n0, __global const gemm_a_t *X, int H,      \
                   int W, int cin, int OH, int OW, int kh, int kw, int stride, int pad_top,    \
                   int pad_left, __global const gemm_a_t *zeros, __global const gemm_b_t *B,   \
                   __global gemm_c_t *C, int ldc, int o_ns, int o_ys, int o_xs, int o_off,     \
                   GEMM_BN_ARGS)                                                               \
{                                                                                              \
    int bj = get_global_id(0), bi = get_global_id(1);                                          \
    if (bj >= nblk || bi >= mblk) return;                                                      \
    int i0 = bi * GEMM_TM, j0 = n0 + bj * ((VW) * (NV)), ldb = ldc;                            \
    const float alpha = 1.0f, beta = 0.0f;                                                     \
    int y0[GEMM_TM], x0[GEMM_TM], n_h[GEMM_TM], crow[GEMM_TM], inside = 1;                     \
    const __global gemm_a_t *corner[GEMM_TM]; /* window corners, when all are inside */       \
    /* row i0's pixel by division, the next rows' by counting (CONV_NEXT_  */                 \
    /* PIXEL): 4 divisions a row cost the stem (K = 27) a third of its time */                \
    int t = i0 / OW, ox = i0 - t * OW, oy = t % OH, n = t / OH;                                \
    GEMM_UNROLL for (int r = 0; r < GEMM_TM; r++) {                                            \
        x0[r] = ox * stride - pad_left;                                                        \
        y0[r] = oy * stride - pad_top;                                                         \
        n_h[r] = n * H;                                                                        \
        crow[r] = (n * o_ns + oy * o_ys + ox * o_xs + o_off) * ldc;                            \
        inside &= y0[r] >= 0 && y0[r] + kh <= H && x0[r] >= 0 && x0[r] + kw <= W;              \
        if (i0 + r + 1 < M) /* rows past M repeat row M - 1 and are not stored */             \
            CONV_NEXT_PIXEL                                                                    \
    }                                                                                          \
    GEMM_UNROLL for (int r = 0; r < GEMM_TM; r++)                                              \
        corner[r] = inside ? X + ((n_h[r] + y0[r]) * W + x0[r]) * cin : X;                     \
    const __global gemm_b_t *b = B + j0;                                                       \
    GEMM_BLOCK_ZERO(VW, NV)                                                                    \
    if (inside) {                                                                              \
        /* windows wholly inside the image (most blocks): a window row's */                   \
        /* kw taps are kw * cin contiguous floats, one run of k per row  */                   \
        /* (per tap runs of cin set up 8 pointers every cin steps: the   */                   \
        /* stem, cin 3, ran 2.9 ms that way, 1.85 ms this way)           */                   \
        for (int ky = 0; ky < kh; ky++) {                                                      \
            const __global gemm_a_t *arow[GEMM_TM];                                            \
            GEMM_UNROLL for (int r = 0; r < GEMM_TM; r++)                                      \
                arow[r] = corner[r] + ky * W * cin;                                            \
            for (int ci = 0; ci < kw * cin; ci++)                                              \
                GEMM_BLOCK_STEP(VW, NV, GEMM_A_ROWS)                                           \
        }                                                                                      \
    } else {                                                                                   \
        /* a window touching the padding: every row checked per tap */                        \
        for (int ky = 0; ky < kh; ky++)                                                        \
            for (int kx = 0; kx < kw; kx++) {                                                  \
                const __global gemm_a_t *arow[GEMM_TM];                                        \
                GEMM_UNROLL for (int r = 0; r < GEMM_TM; r++) {                                \
                    int y = y0[r] + ky, x = x0[r] + kx;                                        \
                    arow[r] = y >= 0 && y < H && x >= 0 && x < W ? X + ((n_h[r] + y) * W + x) * cin \
                                                                 : zeros;                      \
                }                                                                              \
                for (int ci = 0; ci < cin; ci++)                                               \
                    GEMM_BLOCK_STEP(VW, NV, GEMM_A_ROWS)                                       \
            }                                                                                  \
    }                                                                                          \
    __global gemm_c_t *c = C + j0;                                                             \
    GEMM_BLOCK_STORE(VW, NV, BN, M - i0, CONV_ROWS_MAPPED)                                     \
}

/* The implicit-GEMM weight gradient: dW = im2col(X)ᵀ · dY without the col
 * buffer, the pixels being the GEMM's k. Row k of dW is (ky, kx, ci), whose
 * input sits at a fixed offset from a pixel's window corner; a window wholly
 * inside the image reads all TM rows at those offsets, one touching the
 * padding checks each row. Dimension 2 splits the pixels into chunks of pc
 * whose partial dW land [splits, kh*kw*cin, cout] apart (c_ss) for
 * gemm_splitk_reduce to add to dW. X is A's storage, dY B's; the partials
 * are float (a program with -DGEMM_C_BF16 leaves these kernels out). */
#define GEMM_A_WINDOW(r) GEMM_A(a, off[r])
#define GEMM_A_BORDER(r) (y + ky[r] >= 0 && y + ky[r] < H && x + kx[r] >= 0 && x + kx[r] < W ? GEMM_A(a, off[r]) : 0.0f)
#define CONV_WGRAD_KERNEL(NAME, VW, NV)                                                        \
__kernel void NAME(int nblk, int mblk, int n0, int P, int pc, __global const gemm_a_t *X,     \
                   int H, int W, int cin, int OH, int OW, int kh, int kw, int stride,          \
                   int pad_top, int pad_left, __global const gemm_b_t *dY, int ldb,            \
                   __global float *C, int c_ss)                                                \
{                                                                                              \
    int bj = get_global_id(0), bi = get_global_id(1), s = get_global_id(2);                    \
    if (bj >= nblk || bi >= mblk) return;                                                      \
    int rows = kh * kw * cin, i0 = bi * GEMM_TM, j0 = n0 + bj * ((VW) * (NV)), ldc = ldb;      \
    const float alpha = 1.0f, beta = 0.0f;                                                     \
    int off[GEMM_TM], ky[GEMM_TM], kx[GEMM_TM];                                                \
    GEMM_UNROLL for (int r = 0; r < GEMM_TM; r++) {                                            \
        int k = min(i0 + r, rows - 1), t = k / cin;                                            \
        kx[r] = t % kw;                                                                        \
        ky[r] = t / kw;                                                                        \
        off[r] = (ky[r] * W + kx[r]) * cin + k % cin;                                          \
    }                                                                                          \
    int p0 = s * pc, p1 = min(P, p0 + pc);                                                     \
    int ox = p0 % OW, t = p0 / OW, oy = t % OH, n = t / OH;                                    \
    const __global gemm_b_t *b = dY + p0 * ldb + j0;                                           \
    GEMM_BLOCK_ZERO(VW, NV)                                                                    \
    for (int p = p0; p < p1; p++) {                                                            \
        int y = oy * stride - pad_top, x = ox * stride - pad_left;                             \
        const __global gemm_a_t *a = X + ((n * H + y) * W + x) * cin;                          \
        if (y >= 0 && y + kh <= H && x >= 0 && x + kw <= W)                                    \
            GEMM_BLOCK_STEP(VW, NV, GEMM_A_WINDOW)                                             \
        else                                                                                   \
            GEMM_BLOCK_STEP(VW, NV, GEMM_A_BORDER)                                             \
        CONV_NEXT_PIXEL                                                                        \
    }                                                                                          \
    __global float *c = C + s * c_ss + i0 * ldc + j0;                                          \
    GEMM_BLOCK_STORE(VW, NV, 0, rows - i0, GEMM_ROWS_DENSE)                                    \
}

/* The weight gradient of a narrow convolution (cout below one GEMM block)
 * with the roles turned: a work-item's rows are TM output channels and its
 * columns VW * NV input channels of one tap, so a pixel's dY entries are the
 * broadcasts and its input channels the vector loads (twice conv_wgrad_v1's
 * FMAs per load at cout 16). The block, of dWᵀ, is stored turned back into
 * the partials [splits, kh*kw*cin, cout]. global = (taps * cin / (VW * NV),
 * cout / TM, splits); cin % (VW * NV) == 0, cout % TM == 0. Turned, dY is
 * A's storage and X (and zeros) B's. */
#define GEMM_A_DY(r) GEMM_A(a, r)
#define CONV_WGRAD_CI_KERNEL(NAME, VW, NV)                                                     \
__kernel void NAME(int P, int pc, __global const gemm_b_t *X, int H, int W, int cin, int OH,   \
                   int OW, int kh, int kw, int stride, int pad_top, int pad_left,              \
                   __global const gemm_b_t *zeros, __global const gemm_a_t *dY, int cout,      \
                   __global float *C, int c_ss)                                                \
{                                                                                              \
    int cblk = cin / ((VW) * (NV)), g = get_global_id(0), co0 = get_global_id(1) * GEMM_TM;    \
    int s = get_global_id(2);                                                                  \
    if (g >= cblk * kh * kw || co0 >= cout) return;                                            \
    int tap = g / cblk, ci0 = (g % cblk) * ((VW) * (NV)), ky = tap / kw, kx = tap % kw;        \
    int p0 = s * pc, p1 = min(P, p0 + pc), ldb = 0;                                            \
    int ox = p0 % OW, t = p0 / OW, oy = t % OH, n = t / OH;                                    \
    const __global gemm_a_t *a = dY + p0 * cout + co0;                                         \
    GEMM_BLOCK_ZERO(VW, NV)                                                                    \
    for (int p = p0; p < p1; p++) {                                                            \
        int y = oy * stride - pad_top + ky, x = ox * stride - pad_left + kx;                   \
        const __global gemm_b_t *b = y >= 0 && y < H && x >= 0 && x < W                        \
                                      ? X + ((n * H + y) * W + x) * cin + ci0 : zeros;         \
        GEMM_BLOCK_STEP(VW, NV, GEMM_A_DY)                                                     \
        a += cout;                                                                             \
        CONV_NEXT_PIXEL                                                                        \
    }                                                                                          \
    __global float *c = C + s * c_ss + (tap * cin + ci0) * cout + co0;                         \
    GEMM_UNROLL for (int r = 0; r < GEMM_TM; r++)                                              \
        GEMM_UNROLL for (int v = 0; v < (NV); v++) {                                           \
            float lane[VW];                                                                    \
            GEMM_CAT(vstore, VW)(acc[r][v], 0, lane);                                          \
            for (int l = 0; l < (VW); l++)                                                     \
                c[(v * (VW) + l) * cout + r] = lane[l];                                        \
        }                                                                                      \
}

/* The _bn instances carry the batch-norm epilogue; the plain ones compile
 * without it (its activation code in the tile kernel cost llvmpipe 5x on
 * every GEMM, and would cost a GPU registers). The host builds this file
 * as four programs, one per kernel set chosen by -DGEMM_BN and
 * -DGEMM_CONV, so a device compiles only the sets it runs. */
#if !defined(GEMM_CONV) && !defined(GEMM_BN)
GEMM_TILE_KERNEL(gemm_tile, GEMM_VW, GEMM_NV, 0)
GEMM_TILE_KERNEL(gemm_tile_narrow3, GEMM_VWN, 3, 0)
GEMM_TILE_KERNEL(gemm_tile_v1, GEMM_VW, 1, 0)
GEMM_TILE_KERNEL(gemm_tile_narrow, GEMM_VWN, 1, 0)
#elif !defined(GEMM_CONV)
GEMM_TILE_KERNEL(gemm_tile_bn, GEMM_VW, GEMM_NV, 1)
GEMM_TILE_KERNEL(gemm_tile_narrow3_bn, GEMM_VWN, 3, 1)
GEMM_TILE_KERNEL(gemm_tile_v1_bn, GEMM_VW, 1, 1)
GEMM_TILE_KERNEL(gemm_tile_narrow_bn, GEMM_VWN, 1, 1)
#elif !defined(GEMM_BN)
/* conv_tile's B is a weight (float32), the weight gradients' C float32
 * partials: a bfloat16 program holds only the kernels its storage fits */
#ifndef GEMM_B_BF16
CONV_TILE_KERNEL(conv_tile, GEMM_VW, GEMM_NV, 0)
CONV_TILE_KERNEL(conv_tile_v1, GEMM_VW, 1, 0)
#endif
#ifndef GEMM_C_BF16
CONV_WGRAD_KERNEL(conv_wgrad, GEMM_VW, GEMM_NV)
CONV_WGRAD_KERNEL(conv_wgrad_v1, GEMM_VW, 1)
CONV_WGRAD_CI_KERNEL(conv_wgrad_ci, GEMM_VW, GEMM_NV)
#endif
#else
CONV_TILE_KERNEL(conv_tile_bn, GEMM_VW, GEMM_NV, 1)
CONV_TILE_KERNEL(conv_tile_v1_bn, GEMM_VW, 1, 1)
#endif

#if !defined(GEMM_CONV) && !defined(GEMM_BN) /* the rest belongs to the plain set */

/* One output per work-item over every row and cols [n0, N): the columns
 * right of the strips the tile kernels cover. */
__kernel void gemm_edge(int M, int N, int K, int kc, int n0, float alpha,
                        __global const gemm_a_t *A, int a_off, int a_rs, int a_ks,
                        __global const gemm_b_t *B, int b_off, int ldb, float beta,
                        __global gemm_c_t *C, int c_off, int ldc, int c_ss, GEMM_BN_ARGS)
{
    int j = n0 + get_global_id(0), i = get_global_id(1), s = get_global_id(2);
    if (i >= M || j >= N) return;
    int k0 = s * kc, k1 = min(K, k0 + kc);
    const __global gemm_a_t *a = A + a_off + i * a_rs;
    const __global gemm_b_t *b = B + b_off + j;
    float acc = 0.0f;
    for (int k = k0; k < k1; k++)
        acc = MAD(GEMM_A(a, k * a_ks), GEMM_B(b, k * ldb), acc);
    __global gemm_c_t *c = C + c_off + s * c_ss + i * ldc + j;
    float out = alpha * acc + (beta != 0.0f ? beta * GEMM_C_LOAD_1(c) : 0.0f);
    GEMM_C_STORE_1(bn ? GEMM_BN_APPLY(act_forward, GEMM_SCALAR_LOAD, GEMM_C_LOAD_1, out, j, c - C) : out, c);
}

/* C = alpha * sum over the splits of P[s] + beta * C; P holds splits
 * blocks of M * N floats, entry (i, j) at i * p_rs + j * p_cs in each:
 * [splits, M, N] (p_rs = N, p_cs = 1), or [splits, N, M] (p_rs = 1,
 * p_cs = M) for a product computed turned (engine/gemm.c). */
__kernel void gemm_splitk_reduce(int M, int N, int splits, float alpha, __global const float *P, int p_rs,
                                 int p_cs, float beta, __global gemm_c_t *C, int c_off, int ldc, GEMM_BN_ARGS)
{
    int j = get_global_id(0), i = get_global_id(1);
    if (i >= M || j >= N) return;
    float acc = 0.0f;
    for (int s = 0; s < splits; s++)
        acc += P[(size_t)s * M * N + i * p_rs + j * p_cs];
    __global gemm_c_t *c = C + c_off + i * ldc + j;
    float out = alpha * acc + (beta != 0.0f ? beta * GEMM_C_LOAD_1(c) : 0.0f);
    GEMM_C_STORE_1(bn ? GEMM_BN_APPLY(act_forward, GEMM_SCALAR_LOAD, GEMM_C_LOAD_1, out, j, c - C) : out, c);
}

/* The same transpose without local memory, for CPUs (PoCL splits a
 * work-group's loop at every barrier): a work-item writes 16 consecutive
 * entries of a dst row from 16 rows of src. global = (K, ceil(N / 16)):
 * a CPU runs a work-group's items in order of dimension 0, so the items
 * that follow one another read the same 16 lines of src (column k, k + 1,
 * ...) while they are in the L1; with the block index first, each line
 * was fetched again by 16 items far apart (bench/README.md, "Fourth
 * round"). Both transposes copy B in its own storage (exact either way). */
__kernel void gemm_transpose_rows(int N, int K, __global const gemm_b_t *src, int s_off, int ld,
                                  __global gemm_b_t *dst)
{
    int k = get_global_id(0), n0 = get_global_id(1) * 16;
    if (n0 >= N || k >= K) return;
    __global gemm_b_t *d = dst + k * N + n0;
    const __global gemm_b_t *s = src + s_off + n0 * ld + k;
    if (n0 + 16 <= N) {
        gemm_b_t t[16];
        GEMM_UNROLL for (int j = 0; j < 16; j++)
            t[j] = s[j * ld];
        vstore16(vload16(0, t), 0, d);
    } else {
        for (int j = 0; j < N - n0; j++)
            d[j] = s[j * ld];
    }
}

/* dst[K, N] (dense) = src^T where src is [N, K] with leading dimension ld;
 * 16 x 16 tiles through local memory keep both sides' accesses contiguous. */
#ifndef GEMM_TR
#define GEMM_TR 16  /* the launch's local size is GEMM_TR x GEMM_TR */
#endif
__kernel void gemm_transpose(int N, int K, __global const gemm_b_t *src, int s_off, int ld,
                             __global gemm_b_t *dst)
{
    __local gemm_b_t tile[GEMM_TR][GEMM_TR + 1];
    int lx = get_local_id(0), ly = get_local_id(1);
    int gk = get_group_id(0) * GEMM_TR, gn = get_group_id(1) * GEMM_TR;
    if (gn + ly < N && gk + lx < K)
        tile[ly][lx] = src[s_off + (gn + ly) * ld + gk + lx];
    barrier(CLK_LOCAL_MEM_FENCE);
    if (gk + ly < K && gn + lx < N)
        dst[(gk + ly) * N + gn + lx] = tile[lx][ly];
}
#endif
