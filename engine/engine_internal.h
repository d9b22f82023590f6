/* engine_internal.h — shared by the files of engine/ only. */
#ifndef TLCL_ENGINE_INTERNAL_H
#define TLCL_ENGINE_INTERNAL_H

#include "engine.h"

typedef struct pool_entry {
    cl_mem buf;
    size_t bytes;
    int in_use;
    const char *name;  /* of the tensor that holds it now (diagnostics) */
} pool_entry;

struct tlcl_engine {
    tlcl_cl *cl;
    pool_entry *pool;
    int npool, cap_pool;
    int pool_reuse;                  /* a free buffer serves tensors up to this many times smaller */
    int oclgrind;                    /* the device is the oclgrind simulator (tensor.c, gemm_select.c) */
    tlcl_gemm_backend gemm_backend;  /* AUTO until resolved */
    int clblast_used;                /* gemm_clblast.c: CLBlast holds programs of this context */
    tlcl_tensor zeros;               /* eng_zeros's, from the pool */
    long bn_column_launches[2];      /* batchnorm.c's column kernels: [0] forward, [1] backward */
    size_t param_align;              /* the parameter store's minimum alignment in floats (params.c) */
    tlcl_reducer bn_reducer;         /* synchronised batch norm (.sum NULL: off), batchnorm.c */
    float *bn_sums_host;             /* batchnorm.c: its per-channel sums on the host, kept across steps */
    size_t bn_sums_cap;              /* floats in bn_sums_host */
    tlcl_tuning tuning;              /* launch and tile parameters (tuning.c): the defaults or the tuning file's */
    char tuning_note[1200];          /* tlcl_engine_tuning_note */
    char tuning_warning[2400];       /* tlcl_engine_tuning_warning */
    struct eng_tune_rec *rec;        /* tlcl tune's recorder of calls (tune_search.c), NULL when off */
};

/* tuning.c: the engine's tuning from the device's tuning file, else the
 * family defaults (tlcl_engine_init). */
void eng_tuning_load(tlcl_engine *e);
/* gemm_select.c: the hash of platform, device, device and driver version
 * and emulated profile that names the per-device files of the cache. */
uint64_t eng_device_key(const tlcl_device_info *d);

/* The calls `tlcl tune` records and replays (tune_search.c). */
typedef enum eng_tune_kind {
    ENG_TUNE_GEMM,       /* ta tb M N K lda ldb ldc bn */
    ENG_TUNE_CONV,       /* eng_conv_shape (12 ints) bn */
    ENG_TUNE_CONV_WGRAD, /* eng_conv_shape */
    ENG_TUNE_DW_FWD,     /* N H W C OH OW kh kw stride pad_top pad_left */
    ENG_TUNE_DW_BWD,     /* the same, then din dweight (whether computed) */
} eng_tune_kind;
enum { ENG_TUNE_INTS = 16 };
/* Adds the call to the recorder when one is on (a no-op otherwise). */
void eng_tune_note(tlcl_engine *e, eng_tune_kind kind, const int *v, int n);
void eng_tune_rec_free(tlcl_engine *e);

/* A buffer of at least count zero floats, owned by the engine and filled
 * once per size (what an implicit convolution's taps in the padding read). */
tlcl_status eng_zeros(tlcl_engine *e, size_t count, cl_mem *out);

/* Records a message in the context and returns status. */
#define ENG_FAIL(e, status, ...) tlcl_cl_fail((e)->cl, (status), __VA_ARGS__)

/* Bytes per element of a storage type, and its name for messages. */
static inline size_t eng_dtype_size(tlcl_dtype d) { return d == TLCL_BF16 ? 2 : 4; }
static inline const char *eng_dtype_name(tlcl_dtype d) { return d == TLCL_BF16 ? "bfloat16" : "float32"; }
/* The build option that specialises a program's feature-map operands for a
 * storage: "-DTLCL_BF16" (common.cl's act_t is then bfloat16) or ""; and
 * the same for t's storage. */
static inline const char *eng_dtype_option(tlcl_dtype d) { return d == TLCL_BF16 ? "-DTLCL_BF16" : ""; }
const char *eng_dtype_opts(const tlcl_tensor *t);
/* Fails naming the op and the tensor when t (may be NULL) is not stored as want. */
tlcl_status eng_check_dtype(tlcl_engine *e, const tlcl_tensor *t, tlcl_dtype want, const char *op);

/* Checks that a tensor has exactly the element count expected; names it. */
tlcl_status eng_check_count(tlcl_engine *e, const tlcl_tensor *t, size_t want, const char *op);
tlcl_status eng_check_shape(tlcl_engine *e, const tlcl_tensor *t, int n, int h, int w, int c, const char *op);

/* Inference-mode batch norm + act applied to each column j of a GEMM's
 * output in its epilogue: C = act(gamma[j] (C - mean[j]) istd[j] + beta[j]). */
typedef struct eng_gemm_bn {
    cl_mem mean, istd, gamma, beta;
    tlcl_act act;
    cl_mem residual; /* NULL, or [M, N] like C (and in C's storage): added after the activation */
} eng_gemm_bn;

/* C = A B (row-major, no transposes) with the epilogue, on tlcl's own
 * kernels (CLBlast has no epilogue: callers check the back-end first);
 * st: the operands' storage (NULL: float32). */
tlcl_status eng_gemm_bn_own(tlcl_engine *e, int M, int N, int K, cl_mem A, int lda, cl_mem B, int ldb, cl_mem C,
                            size_t c_off, int ldc, const eng_gemm_bn *bn, const tlcl_gemm_storage *st);

/* A k×k convolution's geometry for the implicit-GEMM kernels: X is NHWC
 * [N,H,W,cin], the output [N,OH,OW,cout], the weight [kh*kw*cin, cout]. */
typedef struct eng_conv_shape {
    int N, H, W, cin, OH, OW, cout;
    int kh, kw, stride, pad_top, pad_left;
    tlcl_dtype act; /* the storage of X, dY and the output (feature maps); weights are float32 */
} eng_conv_shape;

/* Whether eng_conv_implicit takes this shape on this device: tlcl's own
 * GEMM is the back-end (or the feature maps are bfloat16, which only the
 * own kernels read) and cout is a whole number of its vectors. */
int eng_conv_implicit_ok(tlcl_engine *e, const eng_conv_shape *s);
/* Where output pixel (n, oy, ox) lands in out: pixel n*ns + oy*ys + ox*xs +
 * off (of cout floats each). */
typedef struct eng_conv_out_map {
    int ns, ys, xs, off;
} eng_conv_out_map;

/* out = im2col(X) · W (+ the batch-norm epilogue when bn is set) without
 * materialising the col buffer (gemm.cl's conv_tile); map NULL: out is the
 * dense [N, OH, OW, cout]. */
tlcl_status eng_conv_implicit(tlcl_engine *e, const eng_conv_shape *s, cl_mem X, cl_mem W, cl_mem out,
                              const eng_gemm_bn *bn, const eng_conv_out_map *map);

/* dW += im2col(X)ᵀ · dY, dW [kh*kw*cin, cout], without the col buffer
 * (gemm.cl's conv_wgrad, pixels split over work-items, then summed). */
tlcl_status eng_conv_wgrad_implicit(tlcl_engine *e, const eng_conv_shape *s, cl_mem X, cl_mem dY, cl_mem dW);

/* The tile class (tlcl_gemm_class) of a product with these transpositions:
 * A transposed TN, else B transposed NT, else NN. */
int eng_gemm_class(int ta, int tb);

/* GEMM back-ends behind tlcl_gemm (same arguments), whatever the choice. */
tlcl_status tlcl_gemm_own(tlcl_engine *e, int ta, int tb, int M, int N, int K, float alpha, cl_mem A,
                          size_t a_off, int lda, cl_mem B, size_t b_off, int ldb, float beta, cl_mem C, size_t c_off,
                          int ldc);
tlcl_status tlcl_gemm_clblast(tlcl_engine *e, int ta, int tb, int M, int N, int K, float alpha, cl_mem A,
                              size_t a_off, int lda, cl_mem B, size_t b_off, int ldb, float beta, cl_mem C,
                              size_t c_off, int ldc);
/* gemm_select.c: the back-end for TLCL_GEMM_AUTO ($TLCL_GEMM, else the
 * persisted per-device choice, else measured now and persisted). */
tlcl_gemm_backend gemm_select_resolve(tlcl_engine *e);
/* The file the choice is persisted in ("" when there is no cache dir). */
void gemm_select_path(tlcl_engine *e, char *dst, size_t len);
/* How many times this process measured the back-ends (tests). */
int gemm_select_measure_count(void);

/* Launches of batch norm's training-mode column kernels by this engine,
 * forward (backward 0) or backward (1): the tests check that the shapes
 * meant to take them did. */
static inline long eng_bn_column_launches(const tlcl_engine *e, int backward)
{
    return e->bn_column_launches[backward != 0];
}

/* Global size for a 1-D launch over count elements, local size left to the
 * driver (kernels guard their bounds). */
static inline size_t eng_global1(size_t count) { return count; }

/* The device is a CPU (PoCL, Rusticl's llvmpipe): the kernels' shape
 * choices (vector strips, chunk counts, local sizes) follow its caches and
 * SIMD registers rather than a GPU's thousands of threads. */
int eng_on_cpu(tlcl_engine *e);

/* Channels per work-item for kernels instantiated per vector width (see
 * common.cl): the device's width (CPUs: a SIMD register; GPUs: 1) when it
 * divides C, else 4 or 1. */
int eng_channel_vector(tlcl_engine *e, int C);

#endif
