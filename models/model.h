/* model.h — the EfficientNet family built on the engine: architectures from
 * block tables (V1 B0–B7, V2 B0–B3 and S, Lite0–4), the layer list with
 * Keras names and parameter counts, weight initialisation, and the forward
 * and backward pass of the whole network.
 *
 * A model is described (tlcl_model_build) on the host alone — enough for
 * `tlcl summary` — and bound to a device by tlcl_model_alloc. */
#ifndef TLCL_MODEL_H
#define TLCL_MODEL_H

#include "engine.h"

#include <stdio.h>

typedef enum tlcl_family { TLCL_FAMILY_V1 = 0, TLCL_FAMILY_V2, TLCL_FAMILY_LITE } tlcl_family;

/* One stage of the block table, before width/depth scaling. */
typedef struct tlcl_stage {
    int kernel, stride, expand, in, out, repeats;
    float se_ratio;  /* 0: no squeeze-and-excitation */
    int fused;       /* V2 Fused-MBConv */
} tlcl_stage;

typedef enum tlcl_padding {
    TLCL_PAD_TF_SAME = 0,  /* TensorFlow 'same' (Keras; V1's correct_pad is the same for static sizes) */
    TLCL_PAD_SYMMETRIC,    /* k/2 on every side (PyTorch ports) */
} tlcl_padding;

typedef enum tlcl_preprocess {
    TLCL_PRE_IMAGENET = 0, /* (x/255 - mean) / std: Keras B-variants */
    TLCL_PRE_SIGNED,       /* x/128 - 1: Keras V2-S */
    TLCL_PRE_LITE,         /* (x - 127) / 128: TF EfficientNet-Lite */
} tlcl_preprocess;

typedef struct tlcl_arch {
    char name[40];             /* "efficientnet-b0", "efficientnetv2-b0", "efficientnet-lite0", ... */
    tlcl_family family;
    double width, depth;
    int default_size;
    float dropout, drop_connect;
    float bn_momentum, bn_epsilon;
    tlcl_act act;              /* swish, or relu6 for Lite */
    int stem_filters, top_filters; /* before rounding */
    int fix_stem_head;         /* Lite: stem/head widths and first/last repeats not scaled */
    int nstages;
    tlcl_stage stages[8];
    tlcl_padding padding;
    tlcl_preprocess preprocess;
} tlcl_arch;

/* The named architectures; NULL when unknown. Names are matched without case
 * and accept Keras spellings ("EfficientNetB0", "EfficientNetV2B0"). */
const tlcl_arch *tlcl_arch_find(const char *name);
/* Writes the known names, comma separated. */
void tlcl_arch_list(char *dst, size_t len);
/* Scaling rules (Keras): V1 rounds up when rounding lost more than 10%. */
int tlcl_round_filters(const tlcl_arch *a, int filters);
int tlcl_round_repeats(const tlcl_arch *a, int repeats, int stage_index);

/* ---- the layer list --------------------------------------------------- */

typedef enum tlcl_layer_kind {
    TLCL_L_CONV = 0, TLCL_L_DWCONV, TLCL_L_BN, TLCL_L_SE, TLCL_L_POOL, TLCL_L_DROPOUT, TLCL_L_DENSE,
    TLCL_L_NORMALIZATION,
} tlcl_layer_kind;

/* conv (or depthwise) -> batch norm -> activation, as Keras's conv/bn/act triple */
typedef struct tlcl_convbn {
    char conv_name[48];        /* Keras layer names: "stem_conv", "block2a_dwconv2", ... */
    char bn_name[48];          /* "stem_bn", "block2a_bn", ... */
    int depthwise;
    int cin, cout;
    tlcl_conv_geom geom;
    int in_h, in_w, out_h, out_w;
    tlcl_act act;
    int w_id, gamma_id, beta_id, mean_id, var_id; /* parameter ids */
    tlcl_bn bn;
    tlcl_tensor conv_out, out; /* saved by forward for backward */
} tlcl_convbn;

typedef struct tlcl_se_layer {
    int w_reduce, b_reduce, w_expand, b_expand;
    int channels, squeeze;
    tlcl_se se;
    tlcl_tensor out;
} tlcl_se_layer;

typedef struct tlcl_block {
    char name[24];             /* "block2a" */
    int fused, has_expand, has_se, residual;
    float drop_rate;           /* stochastic depth, 0 when not residual */
    int stage;
    tlcl_convbn expand, dw, project; /* fused: expand is k×k; dw unused */
    tlcl_se_layer se;
    tlcl_tensor out;
    int trainable;
} tlcl_block;

typedef struct tlcl_dense_layer {
    char name[48];
    int in, out, w_id, b_id;
    tlcl_act act;
    tlcl_tensor pre, out_t;
} tlcl_dense_layer;

typedef struct tlcl_model_options {
    const char *arch;          /* architecture name */
    int size;                  /* input size (>= 32); 0: the architecture's default */
    int image_h, image_w;      /* the images' size when it differs from size: the network starts with
                                  Keras's Resizing(size, size) (bilinear, half-pixel); 0: size */
    int classes;               /* 0 with include_top: 1000 */
    int include_top;           /* 1: the classifier (ImageNet top or the configured head) */
    int head_units[4];         /* optional dense stack before the classifier (0-terminated) */
    tlcl_act head_act;         /* activation of the dense stack (relu in seed 001) */
    float head_dropout;        /* < 0: the architecture's dropout */
    float drop_connect;        /* stochastic-depth rate of the base; < 0: the architecture's */
    tlcl_dtype activations;    /* storage of the base's feature maps and their gradients: TLCL_F32, or
                                  TLCL_BF16 (Keras's mixed_bfloat16 policy; parameters, optimizer state,
                                  statistics, the pooled features, the head and the loss stay float32) */
    const tlcl_arch *custom;   /* instead of arch: a custom table (tests) */
} tlcl_model_options;

typedef struct tlcl_model {
    tlcl_arch arch;
    int size, classes, include_top;
    int image_h, image_w;       /* what the network takes; != size: a Resizing layer first */
    tlcl_params params;
    tlcl_convbn stem, top;
    tlcl_block *blocks;
    int nblocks;
    int norm_mean_id, norm_var_id, norm_count_id; /* V1 Normalization layer, -1 otherwise */
    float pre_scale[3], pre_shift[3];             /* input = raw * scale + shift, per channel */
    tlcl_dense_layer head[5];   /* dense stack + classifier */
    int nhead;
    float head_dropout;
    int top_h, top_w;
    tlcl_dtype act_dtype;       /* storage of the base's feature maps (tlcl_model_options.activations) */
    int base_trainable_from;    /* index of the first trainable block; nblocks+1: base frozen */
    /* device state of the last forward */
    tlcl_engine *eng;
    int batch;
    tlcl_tensor resized, input, pooled, dropped, dinput;
    int want_input_grad;        /* backward also fills dinput (d loss / d raw pixels); off by default */
    uint32_t seed;
    int first_sample;           /* global index of the batch's first sample: a replica's share of a global
                                   batch draws the dropout and stochastic-depth masks of its samples there
                                   (set by the run layer from tlcl_step_args.first_sample) */
    int training;
    /* Data parallelism: during backward, once a layer's gradients are
     * enqueued, grads_ready(ctx, from) says that the gradients at offsets
     * [from, params.total) are final (the parameters are laid out in forward
     * order and backward runs in reverse), so their sum across replicas can
     * start while the earlier layers still run. NULL: not told. */
    tlcl_status (*grads_ready)(void *ctx, size_t from);
    void *grads_ready_ctx;
    size_t grads_final_from;    /* the last `from` told in this backward pass */
} tlcl_model;

tlcl_model_options tlcl_model_options_default(void);
/* Describes the network and declares its parameters (host only). On error
 * returns TLCL_ERR_ARG and writes the reason to err. */
tlcl_status tlcl_model_build(tlcl_model *m, const tlcl_model_options *o, char *err, size_t err_len);
void tlcl_model_free(tlcl_model *m);

typedef struct tlcl_param_totals { size_t total, trainable, non_trainable; } tlcl_param_totals;
tlcl_param_totals tlcl_model_count(const tlcl_model *m);
/* The layers in Keras's order (model.layers of the Keras EfficientNet with
 * its top), each with its Keras class and its parameters in Keras's
 * variable order; the summary and the Keras export walk this one list. */
typedef struct tlcl_layer_info {
    const char *name, *type; /* Keras layer name and class */
    int h, w, c;             /* output shape; h = 0 for (None, c) */
    int param_ids[4], nparams;
} tlcl_layer_info;
typedef void (*tlcl_layer_fn)(const tlcl_layer_info *l, void *ctx);
void tlcl_model_layers(const tlcl_model *m, tlcl_layer_fn fn, void *ctx);

/* Keras-style model.summary() table; json != 0 writes JSON instead. */
void tlcl_model_summary(const tlcl_model *m, FILE *f, int json);

/* Allocates the parameters on the device and initialises them as Keras does
 * (VarianceScaling fan-out truncated normal for convs, BN gamma 1 / beta 0 /
 * moving mean 0 / variance 1), from a seed. */
tlcl_status tlcl_model_alloc(tlcl_model *m, tlcl_engine *e, uint32_t seed);

/* Freezing: the base (stem .. top) frozen from block index `first_trainable`
 * on; 0 = all trainable, nblocks + 1 = base frozen (head only). Frozen
 * BatchNorm layers run in inference mode (Keras). bn_frozen_always keeps
 * every BatchNorm in inference mode (fine-tuning recipe). */
void tlcl_model_set_trainable(tlcl_model *m, int first_trainable_block, int bn_frozen_always);

/* input [N, size, size, 3] raw RGB 0..255 -> logits [N, classes] (or the
 * pooled features [N, top_filters] without top). training enables batch
 * statistics, dropout and stochastic depth with the given seed. */
tlcl_status tlcl_model_forward(tlcl_model *m, const tlcl_tensor *input, int training, uint32_t seed,
                               tlcl_tensor **out);
/* Backward from dlogits; accumulates into the parameter gradients. */
tlcl_status tlcl_model_backward(tlcl_model *m, const tlcl_tensor *dout);
/* The classifier alone (dropout, dense stack, predictions) from pooled
 * features [N, top_filters]: a frozen base's features are computed once
 * (tlcl_model_forward of a model built without top, or of this one with
 * include_top temporarily 0) and the head trains on them. */
tlcl_status tlcl_model_head_forward(tlcl_model *m, const tlcl_tensor *features, int training, uint32_t seed,
                                    tlcl_tensor **logits);
tlcl_status tlcl_model_head_backward(tlcl_model *m, const tlcl_tensor *dlogits);
/* Releases the activations the last forward kept. */
void tlcl_model_release_activations(tlcl_model *m);

/* ---- layer costs (the per-layer rates of `tlcl bench`) --------------------
 * From the layer geometry alone. FLOPs count 2 per multiply-add of the
 * convolutions and dense layers (the usual convention: batch norm,
 * activations, pooling and scaling add bytes, not FLOPs); a convolution's
 * backward is one forward's worth for the input gradient plus one for the
 * weight gradient. Bytes are the least a pass must move: its inputs read
 * once, its outputs written once, its weights (and weight gradients). */
typedef struct tlcl_layer_cost { double flops, bytes; } tlcl_layer_cost;

tlcl_layer_cost tlcl_convbn_cost(const tlcl_convbn *cb, int batch);
tlcl_layer_cost tlcl_convbn_backward_cost(const tlcl_convbn *cb, int batch, int input_grad, int weight_grad);
/* in: the SE's input [N, H, W, C]. */
tlcl_layer_cost tlcl_se_cost(const tlcl_se_layer *se, const tlcl_tensor *in, int backward);
tlcl_layer_cost tlcl_dense_cost(const tlcl_dense_layer *d, int batch, int backward);
/* Elementwise work: floats read and written, no FLOPs. */
tlcl_layer_cost tlcl_move_cost(double floats_read, double floats_written);

/* ---- UTF-8 ---------------------------------------------------------------
 * Names written into JSON must be UTF-8. tlcl_utf8_invalid_at: the offset of
 * the first byte that is not part of a valid UTF-8 sequence, -1 when s is
 * valid. tlcl_utf8_printable: s for a message, each such byte as "\xNN". */
long tlcl_utf8_invalid_at(const char *s);
void tlcl_utf8_printable(char *dst, size_t len, const char *s);

/* ---- checkpoints (safetensors) -------------------------------------------
 * Tensor names are the Keras weight paths "<layer>/<variable>" with Keras
 * shapes; metadata (strings) holds format, format_version, tlcl_version,
 * architecture, input_size, include_top, classes, preprocessing (JSON),
 * head (JSON) and class_names (JSON array). */

tlcl_status tlcl_model_save(tlcl_model *m, const char *path, const char *const *class_names, int n_names,
                            char *err, size_t err_len);

/* A backup also carries the optimizer moments ("optimizer/m/<name>",
 * "optimizer/v/<name>") and the training state (metadata "training_state",
 * JSON). */
typedef struct tlcl_save_extra {
    int with_optimizer;
    const char *state_json;
} tlcl_save_extra;
tlcl_status tlcl_model_save_ex(tlcl_model *m, const char *path, const char *const *class_names, int n_names,
                               const tlcl_save_extra *extra, char *err, size_t err_len);

typedef struct tlcl_checkpoint tlcl_checkpoint;
/* Opens a checkpoint and checks its format_version: a newer, unknown or
 * missing version is TLCL_ERR_FORMAT with the file, the version found and
 * the version expected in err. */
tlcl_status tlcl_checkpoint_open(tlcl_checkpoint **out, const char *path, char *err, size_t err_len);
void tlcl_checkpoint_close(tlcl_checkpoint *c);
const char *tlcl_checkpoint_meta(const tlcl_checkpoint *c, const char *key);
/* The tensor data against the checksum in its metadata (data_fnv1a64, which
 * tlcl writes since issue 13; a checkpoint without one passes): a mismatch
 * is TLCL_ERR_FORMAT naming the file. Reads the whole data once. */
tlcl_status tlcl_checkpoint_verify(tlcl_checkpoint *c, char *err, size_t err_len);
/* The options to build the model the checkpoint holds (strings point into c). */
tlcl_status tlcl_checkpoint_options(const tlcl_checkpoint *c, tlcl_model_options *o, char *err, size_t err_len);
/* Loads every parameter, checking names, dtypes and shapes; the error names
 * the tensor that does not fit. Also restores the input preprocessing. */
tlcl_status tlcl_model_load(tlcl_model *m, tlcl_checkpoint *c, char *err, size_t err_len);
/* The base only (pretrained weights under a new head): tensors of the
 * classifier ("predictions/", "head_dense_") keep their initial values. */
tlcl_status tlcl_model_load_base(tlcl_model *m, tlcl_checkpoint *c, char *err, size_t err_len);
/* Every parameter into host (params.total floats, the flat layout of
 * tlcl_params_layout(.., 1)) with no device: for conversions (tlcl export). */
tlcl_status tlcl_model_load_host(tlcl_model *m, tlcl_checkpoint *c, float *host, char *err, size_t err_len);
/* The optimizer moments of a backup. */
tlcl_status tlcl_model_load_optimizer(tlcl_model *m, tlcl_checkpoint *c, char *err, size_t err_len);
/* malloc'd array of malloc'd names; returns the count (0 when absent). */
int tlcl_checkpoint_class_names(const tlcl_checkpoint *c, char ***names);
/* tlcl_model_save from host values (params.total floats, the flat layout)
 * instead of the device: for conversions that need no device. */
tlcl_status tlcl_model_save_host(const tlcl_model *m, const float *host, const char *path,
                                 const char *const *class_names, int n_names, char *err, size_t err_len);

/* ---- Keras weight export -------------------------------------------------
 * Writes host (params.total floats, the flat layout) as a Keras 3 weights
 * file (.weights.h5) that model.load_weights() reads into the Keras model
 * keras_export.c describes. EfficientNet-Lite is refused (no Keras builder). */
tlcl_status tlcl_model_export_keras(const tlcl_model *m, const float *host, const char *path, char *err,
                                    size_t err_len);
/* The same from the device's parameters (a trainer's best model). */
tlcl_status tlcl_model_save_keras(const tlcl_model *m, const char *path, char *err, size_t err_len);

/* ---- Keras weight import -------------------------------------------------
 * Reads Keras 3 `.weights.h5`, `.keras` archives and legacy TF-Keras `.h5`
 * files, and maps them onto a model by layer name and save order (see
 * import_keras.c for the rules). Errors name the file and the tensor. */

typedef struct tlcl_keras_weights tlcl_keras_weights;
tlcl_status tlcl_keras_open(tlcl_keras_weights **out, const char *path, char *err, size_t err_len);
void tlcl_keras_close(tlcl_keras_weights *w);
/* "keras3-h5", "keras3-zip" or "legacy-h5" */
const char *tlcl_keras_format(const tlcl_keras_weights *w);
/* Classes of the file's `predictions` layer; 0 when it has none. */
int tlcl_keras_classes(const tlcl_keras_weights *w);
/* Fills host (params.total floats: after tlcl_model_alloc, or after
 * tlcl_params_layout(&m->params, 1) without a device) with the file's
 * weights, checking every layer, variable and shape; V1 models also take their input
 * preprocessing from the Normalization layer. */
tlcl_status tlcl_model_import_keras_host(tlcl_model *m, tlcl_keras_weights *w, float *host, char *err,
                                         size_t err_len);
/* The same, then uploads the parameters to the model's device. */
tlcl_status tlcl_model_import_keras(tlcl_model *m, tlcl_keras_weights *w, char *err, size_t err_len);
/* After an import: the file layers with weights the model did not take,
 * comma separated in dst; returns their count. */
int tlcl_keras_unused(const tlcl_keras_weights *w, char *dst, size_t len);

#endif
