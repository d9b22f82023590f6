/* engine.h — the tlcl engine: device tensors, the flat parameter store, and
 * every EfficientNet layer's forward and backward on the device.
 *
 * Conventions (as in llm.c):
 * - Tensors are float32 NHWC. A matrix [rows, cols] is a tensor with
 *   n = rows, h = w = 1, c = cols.
 * - `<layer>_forward` and `<layer>_backward` sit side by side in the layer's
 *   file (engine/<layer>.c) with its kernels in cl/kernels/<layer>.cl.
 * - Backward writes (overwrites) input gradients `din` and ACCUMULATES (+=)
 *   parameter gradients `d<param>`, so the step zeroes the gradient buffer
 *   once and shared parameters just work. A NULL gradient is not computed.
 * - Everything is enqueued on the device's in-order queue; nothing here waits
 *   for the device unless its name says read/download.
 * - Functions return tlcl_status; the message is in tlcl_engine_error(). */
#ifndef TLCL_ENGINE_H
#define TLCL_ENGINE_H

#include "../cl/tlcl_cl.h"

typedef struct tlcl_engine tlcl_engine;

typedef enum tlcl_act {
    TLCL_ACT_NONE = 0,
    TLCL_ACT_SWISH = 1,
    TLCL_ACT_SIGMOID = 2,
    TLCL_ACT_RELU = 3,
    TLCL_ACT_RELU6 = 4,
} tlcl_act;

/* ---- engine and tensors ------------------------------------------------ */

/* The engine borrows cl (the caller frees it after tlcl_engine_free). */
tlcl_status tlcl_engine_init(tlcl_engine **out, tlcl_cl *cl);
void tlcl_engine_free(tlcl_engine *e);
tlcl_cl *tlcl_engine_cl(tlcl_engine *e);
const char *tlcl_engine_error(const tlcl_engine *e);
/* The buffer pool lends a free buffer to a tensor up to `factor` times
 * smaller than it. An inference pass's early activations outsize its later
 * ones several times over (B0: 112x112x96 against 56x56x144), so there a
 * large factor lets the big buffers hold the small tensors instead of idling
 * beside new ones (any size at all was worse: small tensors took the buffers
 * the next big one needed; figures in bench/README.md, "Batch 1 and batch
 * 64"). A training step keeps 2: its allocation order must reach a steady
 * state, where no step creates a buffer (at 8 the arm-mali profile's tiny
 * training made one at a later step). */
enum { TLCL_POOL_REUSE_TRAINING = 2, TLCL_POOL_REUSE_INFERENCE = 8 };
void tlcl_engine_set_pool_reuse(tlcl_engine *e, int factor);

/* How a tensor's elements are stored. Feature maps (a network's [N,H,W,C]
 * activations and their gradients) may be stored as bfloat16, the upper 16
 * bits of a float (Keras's mixed_bfloat16 policy keeps them so): the
 * memory-bound layers then move half the bytes. Kernels still compute in
 * float32 and round to nearest-even on the store; parameters, optimizer
 * state, statistics, per-channel vectors and every sum stay float32. */
typedef enum tlcl_dtype {
    TLCL_F32 = 0,
    TLCL_BF16 = 1,
} tlcl_dtype;

typedef struct tlcl_tensor {
    cl_mem buf;          /* owned by the engine's pool, or a view into the parameter store */
    int n, h, w, c;      /* (N, H, W, C) */
    const char *name;    /* static string, for error messages */
    int is_view;         /* 1: a sub-buffer of the parameter store; release frees only the view */
    tlcl_dtype dtype;    /* TLCL_F32 unless allocated otherwise (tlcl_tensor_alloc_as) */
} tlcl_tensor;

size_t tlcl_tensor_count(const tlcl_tensor *t);
size_t tlcl_tensor_bytes(const tlcl_tensor *t);
/* Takes a buffer from the engine's pool (reused after release: a training
 * step that allocates the same shapes as the previous one creates no new
 * OpenCL buffers). Contents are undefined. float32. */
tlcl_status tlcl_tensor_alloc(tlcl_engine *e, tlcl_tensor *t, const char *name, int n, int h, int w, int c);
/* The same, stored as dtype. */
tlcl_status tlcl_tensor_alloc_as(tlcl_engine *e, tlcl_tensor *t, const char *name, tlcl_dtype dtype, int n, int h,
                                 int w, int c);
void tlcl_tensor_release(tlcl_engine *e, tlcl_tensor *t);
/* Upload and download take float32 on the host whatever the storage
 * (bfloat16 is rounded to nearest-even on the way up, exact on the way down). */
tlcl_status tlcl_tensor_upload(tlcl_engine *e, tlcl_tensor *t, const float *host);
tlcl_status tlcl_tensor_download(tlcl_engine *e, const tlcl_tensor *t, float *host);
/* Makes t float32 in place (a new buffer from the pool, the old one
 * released); a float32 t is left as it is. */
tlcl_status tlcl_tensor_to_float(tlcl_engine *e, tlcl_tensor *t);
/* float32 -> bfloat16 bits, round to nearest-even (NaN stays NaN), and back. */
uint16_t tlcl_bf16_from_float(float x);
float tlcl_bf16_to_float(uint16_t h);
tlcl_status tlcl_tensor_fill(tlcl_engine *e, tlcl_tensor *t, float value);
/* dst += alpha * src (same element count). Used for residual gradients. */
tlcl_status tlcl_tensor_axpy(tlcl_engine *e, tlcl_tensor *dst, float alpha, const tlcl_tensor *src);
/* dst = src */
tlcl_status tlcl_tensor_copy(tlcl_engine *e, tlcl_tensor *dst, const tlcl_tensor *src);

/* ---- the flat parameter store -------------------------------------------
 * All parameters live in one device buffer (and gradients, Adam moments in
 * buffers of the same layout), each tensor at an offset aligned for
 * sub-buffers, so the optimizer is one kernel per contiguous trainable range
 * and freezing is a flag per tensor. Non-trainable state (BatchNorm moving
 * statistics) lives here too so checkpoints see one table. */

typedef struct tlcl_param_entry {
    char name[128];
    int shape[4];          /* n, h, w, c as for tensors (Keras shape padded with leading 1s) */
    int ndims;             /* rank of the Keras shape (0 for a scalar); 4 when unset */
    size_t offset, count;  /* in floats */
    int trainable;         /* updated by the optimizer */
    int is_state;          /* never trainable (moving statistics) */
} tlcl_param_entry;

typedef struct tlcl_params {
    tlcl_param_entry *entries;
    int count, cap;
    size_t total;          /* floats in each flat buffer, padding included */
    cl_mem values, grads, m, v;
    tlcl_tensor *value_views, *grad_views;
} tlcl_params;

void tlcl_params_init(tlcl_params *p);
/* Declares a tensor; returns its id (>= 0) or -1 when out of memory. */
int tlcl_params_declare(tlcl_params *p, const char *name, int n, int h, int w, int c, int is_state);
/* Assigns each tensor its offset (aligned to `align` floats) and sets
 * total; tlcl_params_alloc does it with the device's alignment. Host-only
 * users (file conversions) call it with 1. */
void tlcl_params_layout(tlcl_params *p, size_t align);
/* Creates the flat buffers (zeroed) and the per-tensor views. */
tlcl_status tlcl_params_alloc(tlcl_engine *e, tlcl_params *p);
void tlcl_params_free(tlcl_engine *e, tlcl_params *p);
tlcl_tensor *tlcl_params_value(tlcl_params *p, int id);
tlcl_tensor *tlcl_params_grad(tlcl_params *p, int id);
int tlcl_params_find(const tlcl_params *p, const char *name);
tlcl_status tlcl_params_zero_grads(tlcl_engine *e, tlcl_params *p);
/* Parameter stores allocated on this engine from now on align each tensor
 * to at least `floats` floats, besides the device's own alignment:
 * data-parallel replicas on devices of different alignments then share one
 * layout, so their flat gradient buffers add up element by element (give
 * every replica's engine the largest of their devices' alignments). */
void tlcl_engine_set_param_align(tlcl_engine *e, size_t floats);

/* ---- data parallelism ------------------------------------------------------
 * A sum across the replicas of one data-parallel step: the model replicas of
 * this process (one per device, each driven by its own thread) and those of
 * the other MPI ranks. Every replica calls sum() with its own n floats, the
 * same calls in the same order; the call returns once buf holds the
 * element-wise sum over all replicas, the same bits on every replica. The
 * message of a failure (a replica that stopped, a rank that died) goes to
 * err. Implementations: the in-process group (models/run) and MPI
 * (frontend). */
typedef struct tlcl_reducer {
    tlcl_status (*sum)(void *ctx, int replica, float *buf, size_t n, char *err, size_t err_len);
    /* The same sum without waiting, for the buckets of the gradient buffer
     * while the backward pass still runs (as PyTorch DDP does): start()
     * begins the sum of bucket `bucket` over buf[0..n) and returns; poll()
     * sets *done once buf holds the sum. In a step every replica starts the
     * same buckets 0, 1, ... in that order and polls each to completion
     * before the step ends, leaving buf untouched until then. These sums and
     * the blocking ones above never wait for each other (MPI: a communicator
     * of their own), so sync BN's sums may run while buckets are under way. */
    tlcl_status (*start)(void *ctx, int replica, int bucket, float *buf, size_t n, char *err, size_t err_len);
    tlcl_status (*poll)(void *ctx, int replica, int bucket, int *done, char *err, size_t err_len);
    void *ctx;
    int replica;           /* this replica's index among the local ones */
} tlcl_reducer;

/* Synchronised batch norm: from now on every training-mode batch norm of
 * this engine sums its per-channel statistics across the replicas with
 * `red` (forward: the sum of x, then the sums of d and d^2 about the global
 * mean; backward: the sums of dz and dz x̂, over the global row count), so
 * N replicas normalise with the statistics of the global batch, as one
 * device would. The parameter gradients dgamma/dbeta stay the replica's
 * own share (the gradient sum adds them up). Every replica's engine must
 * run the same layers in the same order. NULL: per-replica statistics
 * (MirroredStrategy's default). The reducer is copied; its ctx must outlive
 * the engine's use of it. */
void tlcl_engine_set_reducer(tlcl_engine *e, const tlcl_reducer *red);

/* ---- GEMM ----------------------------------------------------------------
 * Row-major C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, offsets in
 * floats. Two back-ends behind this call: tlcl's own kernels and CLBlast. */

typedef enum tlcl_gemm_backend {
    TLCL_GEMM_AUTO = 0,   /* the persisted per-device choice, measured once */
    TLCL_GEMM_OWN,
    TLCL_GEMM_CLBLAST,
} tlcl_gemm_backend;

tlcl_status tlcl_gemm(tlcl_engine *e, int trans_a, int trans_b, int M, int N, int K, float alpha,
                      cl_mem A, size_t a_off, int lda, cl_mem B, size_t b_off, int ldb, float beta,
                      cl_mem C, size_t c_off, int ldc);
/* The storage of each operand. In mixed precision a product's feature maps
 * are bfloat16 and its weight or weight gradient float32: a forward A (the
 * input), C (the output); an input gradient A (dY), C (dX); a weight
 * gradient A (X), B (dY), with C = dW float32. The kernels widen on load,
 * sum in float32 and round C once on the store (beta's C is read in C's
 * storage). CLBlast has no bfloat16: with any bfloat16 operand tlcl's own
 * kernels run, whatever the back-end choice. */
typedef struct tlcl_gemm_storage {
    tlcl_dtype a, b, c;
} tlcl_gemm_storage;
/* tlcl_gemm with per-operand storage (NULL: all float32, which is
 * tlcl_gemm); offsets and leading dimensions count elements. */
tlcl_status tlcl_gemm_ex(tlcl_engine *e, int trans_a, int trans_b, int M, int N, int K, float alpha,
                         cl_mem A, size_t a_off, int lda, cl_mem B, size_t b_off, int ldb, float beta,
                         cl_mem C, size_t c_off, int ldc, const tlcl_gemm_storage *st);
/* Forces a back-end ($TLCL_GEMM=own|clblast does the same). */
void tlcl_gemm_set_backend(tlcl_engine *e, tlcl_gemm_backend b);
tlcl_gemm_backend tlcl_gemm_get_backend(tlcl_engine *e);
const char *tlcl_gemm_backend_name(tlcl_gemm_backend b);

/* ---- convolutions --------------------------------------------------------
 * Weights in Keras layout: conv [kh, kw, cin, cout] (a tensor with
 * n=kh, h=kw, w=cin, c=cout); depthwise [kh, kw, C] (n=kh, h=kw, w=1, c=C).
 * Padding is explicit (top, left); the output size is the out tensor's. */

typedef struct tlcl_conv_geom {
    int kh, kw, stride, pad_top, pad_left;
} tlcl_conv_geom;

/* TensorFlow 'same' padding: out = ceil(in / stride), pad_before = total / 2. */
void tlcl_conv_same(int in, int k, int stride, int *out, int *pad_before);

tlcl_status tlcl_conv2d_forward(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in,
                                const tlcl_tensor *weight, const tlcl_conv_geom *g);
tlcl_status tlcl_conv2d_backward(tlcl_engine *e, tlcl_tensor *din, tlcl_tensor *dweight,
                                 const tlcl_tensor *dout, const tlcl_tensor *in,
                                 const tlcl_tensor *weight, const tlcl_conv_geom *g);

/* Depthwise: the feature maps (in, out; backward's din, dout) share one
 * storage, float32 or bfloat16; the weight and its gradient are float32. */
tlcl_status tlcl_depthwise_forward(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in,
                                   const tlcl_tensor *weight, const tlcl_conv_geom *g);
/* Inference-mode batch norm (moving statistics) and act fused into the
 * convolution's output: out = act(batchnorm(conv(in))), one pass (the
 * GEMM's epilogue, or the depthwise kernel's). */
struct tlcl_bn;
tlcl_status tlcl_conv2d_bn_forward(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in,
                                   const tlcl_tensor *weight, const tlcl_conv_geom *g, struct tlcl_bn *bn,
                                   tlcl_act act);
/* The same with a residual added after the activation: out = residual +
 * act(batchnorm(conv(in))) in one pass (a residual block's end at
 * inference); residual has out's shape. */
tlcl_status tlcl_conv2d_bn_add_forward(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in,
                                       const tlcl_tensor *weight, const tlcl_conv_geom *g, struct tlcl_bn *bn,
                                       tlcl_act act, const tlcl_tensor *residual);
tlcl_status tlcl_depthwise_bn_forward(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in,
                                      const tlcl_tensor *weight, const tlcl_conv_geom *g, struct tlcl_bn *bn,
                                      tlcl_act act);
tlcl_status tlcl_depthwise_backward(tlcl_engine *e, tlcl_tensor *din, tlcl_tensor *dweight,
                                    const tlcl_tensor *dout, const tlcl_tensor *in,
                                    const tlcl_tensor *weight, const tlcl_conv_geom *g);

/* ---- batch normalisation (+ fused activation) --------------------------- */

typedef enum tlcl_bn_mode {
    TLCL_BN_TRAIN = 0,  /* batch statistics, moving statistics updated */
    TLCL_BN_INFER,      /* moving statistics; parameter gradients computed */
    TLCL_BN_FROZEN,     /* moving statistics; no parameter gradients (Keras trainable=False) */
} tlcl_bn_mode;

typedef struct tlcl_bn {
    tlcl_tensor *gamma, *beta, *moving_mean, *moving_var;  /* [C] */
    tlcl_tensor *dgamma, *dbeta;                           /* [C], accumulated; NULL when frozen */
    float momentum, epsilon;                               /* Keras: 0.99 (V1) / 0.9 (V2), 1e-3 */
    tlcl_tensor saved_mean, saved_istd;                    /* [C], written by forward for backward */
} tlcl_bn;

/* out = act(gamma * (in - mean) * istd + beta); out may not alias in. */
tlcl_status tlcl_batchnorm_forward(tlcl_engine *e, tlcl_bn *bn, tlcl_tensor *out, const tlcl_tensor *in,
                                   tlcl_bn_mode mode, tlcl_act act);
tlcl_status tlcl_batchnorm_backward(tlcl_engine *e, tlcl_bn *bn, tlcl_tensor *din, const tlcl_tensor *dout,
                                    const tlcl_tensor *in, tlcl_bn_mode mode, tlcl_act act);
void tlcl_bn_release(tlcl_engine *e, tlcl_bn *bn);

/* ---- activations, pooling, dense, squeeze-and-excitation ---------------- */

tlcl_status tlcl_activation_forward(tlcl_engine *e, tlcl_act act, tlcl_tensor *out, const tlcl_tensor *in);
/* din = dout * act'(in) */
tlcl_status tlcl_activation_backward(tlcl_engine *e, tlcl_act act, tlcl_tensor *din, const tlcl_tensor *dout,
                                     const tlcl_tensor *in);

/* out [N,1,1,C] = mean over H, W */
tlcl_status tlcl_global_avgpool_forward(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in);
tlcl_status tlcl_global_avgpool_backward(tlcl_engine *e, tlcl_tensor *din, const tlcl_tensor *dout);

/* out [N, Cout] = act(pre), pre = in [N, Cin] * W [Cin, Cout] + b [Cout]; in is
 * read as N rows of h*w*c. bias may be NULL. pre keeps the pre-activation
 * for backward; it may be NULL when act is TLCL_ACT_NONE. */
tlcl_status tlcl_dense_forward(tlcl_engine *e, tlcl_tensor *out, tlcl_tensor *pre, const tlcl_tensor *in,
                               const tlcl_tensor *weight, const tlcl_tensor *bias, tlcl_act act);
tlcl_status tlcl_dense_backward(tlcl_engine *e, tlcl_tensor *din, tlcl_tensor *dweight, tlcl_tensor *dbias,
                                const tlcl_tensor *dout, const tlcl_tensor *in, const tlcl_tensor *weight,
                                const tlcl_tensor *pre, tlcl_act act);

typedef struct tlcl_se {
    tlcl_tensor *w_reduce, *b_reduce, *w_expand, *b_expand;     /* [C,S], [S], [S,C], [C] */
    tlcl_tensor *dw_reduce, *db_reduce, *dw_expand, *db_expand; /* accumulated; NULL: not computed */
    tlcl_act act_reduce;                                        /* swish (relu for some variants) */
    /* saved by forward: */
    tlcl_tensor pooled, hidden_pre, hidden, gate_pre, gate;      /* [N,C] [N,S] [N,S] [N,C] [N,C] */
} tlcl_se;

/* out = in * sigmoid(expand(act(reduce(avgpool(in))))) per sample and channel */
tlcl_status tlcl_se_forward(tlcl_engine *e, tlcl_se *se, tlcl_tensor *out, const tlcl_tensor *in);
tlcl_status tlcl_se_backward(tlcl_engine *e, tlcl_se *se, tlcl_tensor *din, const tlcl_tensor *dout,
                             const tlcl_tensor *in);
void tlcl_se_release(tlcl_engine *e, tlcl_se *se);

/* out[n,h,w,c] = in[n,h,w,c] * scale[n,c] */
tlcl_status tlcl_channel_scale_forward(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in,
                                       const tlcl_tensor *scale);
/* din = dout * scale; dscale[n,c] = sum_hw dout * in (overwritten) */
tlcl_status tlcl_channel_scale_backward(tlcl_engine *e, tlcl_tensor *din, tlcl_tensor *dscale,
                                        const tlcl_tensor *dout, const tlcl_tensor *in, const tlcl_tensor *scale);

/* Column sums: out[g, c] = sum over rows of in viewed as [groups, rows, C]
 * (out has n = groups and c = C). If accumulate, out += instead. */
tlcl_status tlcl_reduce_rows(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in, int groups, int rows,
                             int channels, float scale, int accumulate);

/* ---- regularisation and residuals --------------------------------------- */

/* Inverted dropout: keep with probability 1-rate, scale by 1/(1-rate). The
 * mask is a hash of (seed, element index), so backward needs only the seed.
 * out may alias in. first_sample: the global index of the tensor's first
 * sample when it is a replica's share of a larger batch (0 otherwise): the
 * hash takes global positions, so a batch split over replicas draws the
 * masks of the whole batch. */
tlcl_status tlcl_dropout_forward(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in, float rate, uint32_t seed,
                                 int first_sample);
tlcl_status tlcl_dropout_backward(tlcl_engine *e, tlcl_tensor *din, const tlcl_tensor *dout, float rate,
                                  uint32_t seed, int first_sample);
/* Stochastic depth: whole samples dropped with probability rate (Keras
 * Dropout with noise_shape (N,1,1,1)). out may alias in. */
tlcl_status tlcl_drop_path_forward(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in, float rate,
                                   uint32_t seed, int first_sample);
tlcl_status tlcl_drop_path_backward(tlcl_engine *e, tlcl_tensor *din, const tlcl_tensor *dout, float rate,
                                    uint32_t seed, int first_sample);
/* out = shortcut + drop_path(branch) in one pass (a residual block's end);
 * the mask is tlcl_drop_path_forward's for the same seed. */
tlcl_status tlcl_drop_path_add_forward(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *branch,
                                       const tlcl_tensor *shortcut, float rate, uint32_t seed, int first_sample);
/* Per-channel affine map for inputs with at most 4 channels (image
 * preprocessing): out[..., c] = in[..., c] * scale[c] + shift[c]. shift may
 * be NULL (the backward form: din = dout * scale). */
tlcl_status tlcl_affine_channels(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in, const float *scale,
                                 const float *shift);
/* out = a + b (out may be a or b); backward of a residual is tlcl_tensor_axpy
 * into both branches. */
tlcl_status tlcl_add_forward(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *a, const tlcl_tensor *b);

/* ---- resize ----------------------------------------------------------------
 * TensorFlow bilinear with half-pixel centres, antialias off. */
tlcl_status tlcl_resize_bilinear_forward(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in);
tlcl_status tlcl_resize_bilinear_backward(tlcl_engine *e, tlcl_tensor *din, const tlcl_tensor *dout);

/* ---- losses ----------------------------------------------------------------
 * logits [N, C]; labels: device int buffer [N]; sample_weight [N] or NULL.
 * loss [1] = sum_i w_i l_i / D (Keras "sum_over_batch_size"), D = divisor,
 * or N when divisor is 0: a data-parallel replica holds a slice of a global
 * batch and divides by the global batch's size, so that the gradients summed
 * over replicas are those of the global batch. per_sample [N] = the
 * unweighted l_i (may be NULL); dlogits [N, C] = d loss / d logits (may be
 * NULL). A label outside [0, C) makes l_i and the loss NaN. */

tlcl_status tlcl_softmax_xent(tlcl_engine *e, tlcl_tensor *loss, tlcl_tensor *per_sample, tlcl_tensor *dlogits,
                              const tlcl_tensor *logits, cl_mem labels, const tlcl_tensor *sample_weight,
                              float label_smoothing, int divisor);
/* Keras CategoricalFocalCrossentropy on softmax(logits): alpha [C] (per
 * class) or NULL with alpha_scalar, gamma; probabilities clipped to
 * [1e-7, 1-1e-7]. */
tlcl_status tlcl_focal_loss(tlcl_engine *e, tlcl_tensor *loss, tlcl_tensor *per_sample, tlcl_tensor *dlogits,
                            const tlcl_tensor *logits, cl_mem labels, const tlcl_tensor *sample_weight,
                            float label_smoothing, const tlcl_tensor *alpha, float alpha_scalar, float gamma,
                            int divisor);
/* probs [N, C] = softmax(logits) */
tlcl_status tlcl_softmax_forward(tlcl_engine *e, tlcl_tensor *probs, const tlcl_tensor *logits);

/* ---- a run's counters -------------------------------------------------------
 * Device-side sums over the batches of a run (models/run): sums [8] holds
 * the slots below (each sum followed by its Kahan compensation), confusion
 * [C, C] counts (rows true, columns predicted), bad_step one int (-1 until a
 * step's loss is not finite). The guard slot turns NaN at the first such
 * step and stays so: passed to tlcl_optimizer_step as its loss, it makes
 * the device skip that update and every later one. */
typedef enum tlcl_counter_slot {
    TLCL_CNT_GUARD = 0, TLCL_CNT_LOSS = 1, TLCL_CNT_HITS = 3, TLCL_CNT_WEIGHT = 5, TLCL_CNT_SAMPLES = 7,
    TLCL_CNT_SLOTS = 8,
} tlcl_counter_slot;

/* Adds one batch: sum w_i l_i (per_sample [N] unweighted losses, weights
 * [N] or NULL for 1), sum w_i [argmax logits_i == label_i], sum w_i, N, and
 * the confusion counts. step >= 0 raises the guard on a non-finite w_i l_i;
 * step < 0 (inference) never does. */
tlcl_status tlcl_counters_add(tlcl_engine *e, tlcl_tensor *sums, tlcl_tensor *confusion, cl_mem bad_step,
                              const tlcl_tensor *logits, const tlcl_tensor *per_sample, cl_mem labels,
                              const tlcl_tensor *weights, long step);

/* Rows by index: out [N, C] = table[idx[i]] (gather) and table[idx[i]] = in
 * [N, C] (scatter); idx is a device int buffer of N entries, all < table
 * rows (the caller's contract: the kernels do not check). */
tlcl_status tlcl_rows_gather(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *table, cl_mem idx);
tlcl_status tlcl_rows_scatter(tlcl_engine *e, tlcl_tensor *table, const tlcl_tensor *in, cl_mem idx);

/* ---- optimizers ----------------------------------------------------------- */

typedef enum tlcl_opt_type { TLCL_OPT_SGD = 0, TLCL_OPT_ADAM, TLCL_OPT_ADAMW } tlcl_opt_type;

typedef struct tlcl_optimizer {
    tlcl_opt_type type;
    float beta1, beta2, epsilon;   /* Adam: 0.9, 0.999, 1e-7 (Keras) */
    float momentum;                /* SGD */
    int nesterov;
    float weight_decay;            /* decoupled, applied before the update (Keras) */
    float clip_global_norm;        /* 0: off */
    long iterations;               /* steps enqueued so far (a step the device skipped counts too) */
} tlcl_optimizer;

tlcl_optimizer tlcl_optimizer_default(tlcl_opt_type type);
/* One update of every trainable tensor with learning rate lr. If loss is
 * given and holds NaN or Inf, the device skips the update. */
tlcl_status tlcl_optimizer_step(tlcl_engine *e, tlcl_optimizer *opt, tlcl_params *p, float lr,
                                const tlcl_tensor *loss);

/* ---- per-device tuning (tuning.c, tune_search.c) ---------------------------
 * The launch and tiling parameters of the GEMM, the implicit convolutions
 * and depthwise: built-in defaults per device family (type, PCI vendor id,
 * preferred width; never name strings), or the winners of `tlcl tune`
 * stored in the cache directory as tune-<key>.txt, keyed by platform,
 * device, device and driver version and emulated profile (a new driver:
 * another key, the defaults until tuned again). The engine reads the file
 * once, at tlcl_engine_init; a damaged or foreign file is a warning and
 * the defaults. $TLCL_GEMM_TUNE overrides every GEMM tile set. */
typedef struct tlcl_gemm_tiles {
    int tm, vw, nv, vwn; /* rows per work-item, vector width, vectors per work-item, gemm_tile_narrow's width */
    int lx, ly;          /* the tile kernels' local size (0 0: left to the driver) */
} tlcl_gemm_tiles;

/* The products' shape classes, each with tiles of its own: NN (the
 * forwards: 1x1 convolutions, dense layers, im2col; with or without the
 * batch-norm epilogue), TN (weight gradients, A transposed) and NT (input
 * gradients: B transposed first, then NN's kernels). Tiles that differ
 * only in the local size share a program. */
typedef enum tlcl_gemm_class { TLCL_GEMM_NN = 0, TLCL_GEMM_TN, TLCL_GEMM_NT, TLCL_GEMM_CLASSES } tlcl_gemm_class;

typedef struct tlcl_tuning {
    tlcl_gemm_tiles gemm[TLCL_GEMM_CLASSES]; /* the products by class: gemm.cl's plain and BN sets */
    tlcl_gemm_tiles conv; /* the implicit convolutions: gemm.cl's GEMM_CONV set (vwn unused) */
    int dw_strip;         /* depthwise.cl's DW_STRIP: outputs per work-item along x */
    int dw_wgrad_items;   /* depthwise weight gradient, stage 1: about this many work-items */
} tlcl_tuning;

tlcl_tuning tlcl_tuning_default(const tlcl_device_info *d);
/* 0 when every value is one the kernels take on this device (the defaults
 * pass the same checks); else 1 with the first bad value named in why. */
int tlcl_tuning_invalid(const tlcl_tuning *t, const tlcl_device_info *d, char *why, size_t len);
/* The tuning file of device d in cache_dir ("" when there is no cache dir). */
void tlcl_tuning_path(const char *cache_dir, const tlcl_device_info *d, char *dst, size_t len);
/* A tuning file's text, for device d: TLCL_ERR_FORMAT with the line and
 * the reason when it is damaged, made for another device or driver, or
 * holds a value the checks refuse. */
tlcl_status tlcl_tuning_parse(const char *text, const tlcl_device_info *d, tlcl_tuning *out, char *err,
                              size_t len);
/* Publishes t as path (temporary file, fsync, rename); comment lines
 * (without '#', may be NULL) go at the end. */
tlcl_status tlcl_tuning_write(const char *path, const tlcl_device_info *d, const tlcl_tuning *t,
                              const char *comment, char *err, size_t len);
/* One line for the logs: "tuning: FILE" or "tuning: built-in defaults for FAMILY". */
const char *tlcl_engine_tuning_note(const tlcl_engine *e);
/* "" or why the tuning file was not used (damaged or foreign: the defaults are). */
const char *tlcl_engine_tuning_warning(const tlcl_engine *e);
const tlcl_tuning *tlcl_engine_tuning(const tlcl_engine *e);

/* `tlcl tune`: record the distinct GEMM, implicit convolution and depthwise
 * calls of a model's passes (on: from now on; off: stop), then search. */
tlcl_status tlcl_tune_record(tlcl_engine *e, int on);

typedef struct tlcl_tune_result {
    char kernel[12];    /* the group: "gemm_nn", "gemm_tn", "gemm_nt", "conv", "depthwise" */
    char shape[96];     /* the call, as "NN 200704x16x32 +bn" */
    double default_ms;  /* best of the repeated timings */
    double tuned_ms;    /* the chosen candidate's (the default's when it stays) */
} tlcl_tune_result;

/* The kernel groups searched one after the other: the three GEMM classes
 * (tlcl_gemm_class's order), the implicit convolutions, depthwise. */
enum { TLCL_TUNE_GROUPS = TLCL_GEMM_CLASSES + 2 };
const char *tlcl_tune_group_name(int group);

typedef struct tlcl_tune_group_report {
    int shapes, tried, space; /* calls, candidates timed, candidates in the space */
    int chosen;               /* index of the winner among the candidates (0: the default) */
    double default_ms, tuned_ms; /* sums over the shapes */
    double seconds;
    /* the candidate fastest in total besides the default (-1: none timed
       on every call), with its total and the calls it was slower on */
    int fastest;
    double fastest_ms;
    int fastest_slower;
    tlcl_tuning fastest_tuning;
} tlcl_tune_group_report;

typedef struct tlcl_tune_report {
    tlcl_tuning tuning;            /* what was stored */
    tlcl_tune_group_report group[TLCL_TUNE_GROUPS]; /* tlcl_tune_group_name's order */
    tlcl_tune_result *results;     /* malloc'd, one per shape */
    int nresults;
    int budget_hit;                /* the budget stopped the search early */
    double seconds;
    char path[1100];               /* the file written ("" without a cache dir) */
} tlcl_tune_report;

/* Times a dozen or so candidates per kernel group (always the default
 * first) on the recorded calls, best of several runs each, keeps a
 * candidate only where tlcl_tune_pick says so, and stores the result in
 * the cache directory. budget_s bounds the search (what was found so far
 * is kept). The engine uses the stored values from then on. */
tlcl_status tlcl_tune_search(tlcl_engine *e, double budget_s, tlcl_tune_report *r);
void tlcl_tune_report_free(tlcl_tune_report *r);
/* The selection rule. ms[c * nshape + s]: candidate c's best time on shape
 * s (c = 0 the default; <= 0: not measured or failed). A candidate wins
 * only when it was measured on every shape, is no slower than the default
 * on any shape, and its total is at least margin (0.03: 3%) below the
 * default's; of those the fastest in total. Returns its index, else 0. */
int tlcl_tune_pick(const double *ms, int ncand, int nshape, double margin);

#endif
