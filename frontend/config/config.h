/* config.h — the training workflow's configuration: one YAML file mirroring
 * a Keras transfer-learning project (the `train` section of the original
 * project, plus model, optimizer, schedule, loss, class weights,
 * augmentation, fine-tuning phases, callbacks and metrics).
 *
 * The struct mirrors the YAML tree: `optimizer.learning_rate` in the file is
 * `c->optimizer.learning_rate` here. One schema table (config_schema.c)
 * drives parsing, `--set` overrides, defaults, the dump, the commented
 * default file and the "did you mean" suggestions.
 *
 * Typical use:
 *     tlcl_config c;
 *     tlcl_config_load(&c, "run.yaml", err, sizeof err);     defaults + file
 *     tlcl_config_set(&c, "optimizer.learning_rate", "1e-4", err, sizeof err);
 *     tlcl_config_finalize(&c, err, sizeof err);             checks + paths
 *     tlcl_config_make_dirs(&c, err, sizeof err);            mkdir -p outputs
 *
 * Paths. A relative path in the file resolves against the directory of the
 * config file (not the working directory), so a config moves with its
 * project; a relative path given with --set resolves against the working
 * directory. The file names of train.artefacts, train.metrics and
 * train.records resolve against their section's base_dir, and
 * callbacks.csv_logger.filename against train.artefacts.base_dir;
 * tlcl_config_finalize joins them, after which every path is absolute.
 * `{DATE}` anywhere in a path becomes the run date, YYYY-MM-DD_HH-MM-SS in
 * local time (c->run_time, set by load), at finalize: the log file
 * `logs/{DATE}_train.log` becomes `logs/2026-11-22_03-10-40_train.log`.
 *
 * The struct holds fixed-size buffers (about 50 KB): allocate it or make it
 * static rather than putting it on a small stack.
 *
 * Nullable numbers ("null" in YAML, e.g. optimizer.weight_decay or
 * callbacks.early_stopping.baseline) are stored as NAN; test with isnan(). */
#ifndef TLCL_CONFIG_H
#define TLCL_CONFIG_H

#include "tlcl_cl.h"
#include "tlcl_limits.h"

#include <stddef.h>
#include <stdio.h>
#include <time.h>

#define TLCL_CFG_PATH_MAX 1024
#define TLCL_CFG_NAME_MAX 64
#define TLCL_CFG_MAX_HEAD 8
#define TLCL_CFG_MAX_PHASES TLCL_PHASES_MAX /* the trainer's limit too (tlcl_limits.h) */
#define TLCL_CFG_MAX_CLASSES 256
#define TLCL_CFG_MAX_METRICS 16
#define TLCL_CFG_MAX_GROUPS 8
#define TLCL_CFG_MAX_KEYS 192 /* schema entries (where[] below) */

typedef enum { TLCL_CFG_SPLIT_KERAS, TLCL_CFG_SPLIT_STRATIFIED, TLCL_CFG_SPLIT_GROUP } tlcl_cfg_split_method;
typedef enum { TLCL_CFG_GROUP_ON_NAME, TLCL_CFG_GROUP_ON_PATH, TLCL_CFG_GROUP_ON_CLASS_PATH } tlcl_cfg_group_on;
typedef enum { TLCL_WEIGHTS_IMAGENET, TLCL_WEIGHTS_NONE, TLCL_WEIGHTS_FILE } tlcl_weights_kind;
typedef enum { TLCL_HEAD_RELU, TLCL_HEAD_RELU6, TLCL_HEAD_SWISH, TLCL_HEAD_SIGMOID } tlcl_head_activation;
typedef enum { TLCL_PRECISION_FLOAT32, TLCL_PRECISION_MIXED_BFLOAT16 } tlcl_precision;
typedef enum { TLCL_OPTIMIZER_ADAM, TLCL_OPTIMIZER_ADAMW, TLCL_OPTIMIZER_SGD } tlcl_optimizer_name;
typedef enum {
    TLCL_SCHED_CONSTANT,
    TLCL_SCHED_STEP,
    TLCL_SCHED_EXPONENTIAL,
    TLCL_SCHED_COSINE,
    TLCL_SCHED_PLATEAU
} tlcl_schedule_name;
typedef enum { TLCL_LOSS_CROSSENTROPY, TLCL_LOSS_FOCAL } tlcl_loss_name;
typedef enum { TLCL_CW_NONE, TLCL_CW_BALANCED, TLCL_CW_MAP } tlcl_class_weight_kind;
typedef enum { TLCL_MODE_AUTO, TLCL_MODE_MIN, TLCL_MODE_MAX } tlcl_monitor_mode;
typedef enum { TLCL_FLIP_NONE, TLCL_FLIP_H, TLCL_FLIP_V, TLCL_FLIP_HV } tlcl_flip;
typedef enum {
    TLCL_TRAIN_ALL,        /* every layer trainable */
    TLCL_TRAIN_NONE,       /* base frozen, head trainable */
    TLCL_TRAIN_TOP_BLOCKS, /* the last top_blocks blocks of the base + head */
    TLCL_TRAIN_FROM_BLOCK  /* from block from_block (e.g. "block6a") on + head */
} tlcl_trainable;
typedef enum {
    TLCL_METRIC_ACCURACY,
    TLCL_METRIC_PRECISION,
    TLCL_METRIC_RECALL,
    TLCL_METRIC_F1,
    TLCL_METRIC_BALANCED_ACCURACY,
    TLCL_METRIC_KAPPA,
    TLCL_METRIC_AUC,
    TLCL_METRIC_TOP_K
} tlcl_metric_kind;

typedef char tlcl_cfg_path[TLCL_CFG_PATH_MAX];
typedef char tlcl_cfg_name[TLCL_CFG_NAME_MAX];

/* One fine-tuning phase: a fit() call after setting trainability and
 * recompiling (new optimizer state). */
typedef struct tlcl_phase {
    tlcl_cfg_name name;
    int epochs;           /* -1: train.config.epochs */
    double learning_rate; /* NAN: optimizer.learning_rate */
    int trainable;        /* tlcl_trainable */
    int top_blocks;       /* for TLCL_TRAIN_TOP_BLOCKS */
    tlcl_cfg_name from_block;
    int bn_frozen; /* batch norms stay in inference mode even when trainable */
} tlcl_phase;

typedef struct tlcl_metric {
    int kind; /* tlcl_metric_kind */
    int k;    /* top_k_accuracy only */
} tlcl_metric;

typedef struct tlcl_config {
    struct {
        struct {
            int seed, epochs, batch_size, device, verbose;
            int devices[16];       /* data parallelism: one replica per device (empty: device alone) */
            int devices_count;
            int sync_batchnorm;    /* batch norm statistics of the global batch across the replicas */
            double bucket_mb;      /* least size of a gradient bucket summed across the replicas */
            struct {
                tlcl_cfg_path file_path;
            } logs;
        } config;
        struct {
            tlcl_cfg_path train, validation, test, cache_dir;
            double validation_split, test_split;
            int split;                /* tlcl_cfg_split_method */
            char group_pattern[256];  /* POSIX extended regex on the file name */
            int group_on;             /* tlcl_cfg_group_on: what group_pattern is matched against */
            struct {
                double train, validation, test;
            } subsample;
            int image_size[2]; /* height, width */
            int image_size_count;
            int crop_to_aspect_ratio, shuffle, strict, cache_features;
            int max_image_pixels;     /* larger images are refused before decoding */
            int merge_validation;     /* final run: the saved validation files join training */
            tlcl_cfg_path split_dir;  /* where split.json / test_split.json live; "": artefacts.base_dir */
        } data_dir;
        struct {
            tlcl_cfg_path base_dir, labels_name, best_model, fit_history, callback_history, backup_dir,
                effective_config;
        } artefacts;
        struct {
            tlcl_cfg_path base_dir, test_confusion_matrix, test_report;
        } metrics;
        struct {
            tlcl_cfg_path base_dir, fit_plots, class_validation_plots_dir, validation_plots;
        } records;
    } train;
    struct {
        tlcl_cfg_name architecture;
        int weights_kind; /* tlcl_weights_kind */
        tlcl_cfg_path weights; /* checkpoint path when TLCL_WEIGHTS_FILE */
        int input_size;        /* 0: train.data_dir.image_size */
        double drop_connect_rate;
        int precision; /* tlcl_precision */
        struct {
            int units[TLCL_CFG_MAX_HEAD];
            int units_count;
            int activation; /* tlcl_head_activation */
            double dropout;
            int batch_norm;
        } head;
    } model;
    struct {
        int name; /* tlcl_optimizer_name */
        double learning_rate, beta_1, beta_2, epsilon, momentum;
        int nesterov;
        double weight_decay;    /* NAN: the optimizer's default (see tlcl_config_weight_decay) */
        double global_clipnorm; /* NAN: no clipping */
    } optimizer;
    struct {
        int name; /* tlcl_schedule_name */
        int step_size;
        double factor;
        int decay_steps; /* 0: every step of the phase */
        double decay_rate;
        int staircase;
        double alpha;
        int warmup_steps;
        double warmup_target; /* NAN: no warm-up */
        char monitor[TLCL_CFG_NAME_MAX];
        int mode; /* tlcl_monitor_mode */
        int patience, cooldown;
        double min_delta, min_lr;
    } schedule;
    struct {
        int name; /* tlcl_loss_name */
        double label_smoothing, gamma;
        double alpha[TLCL_CFG_MAX_CLASSES];
        int alpha_count; /* 1: one alpha for every class */
    } loss;
    struct {
        int kind; /* tlcl_class_weight_kind */
        tlcl_cfg_name names[TLCL_CFG_MAX_CLASSES];
        double weights[TLCL_CFG_MAX_CLASSES];
        int count;
        double power; /* class_weight_power: balanced weights to this power */
    } class_weight;
    struct {
        int enabled, flip, seed; /* seed -1: train.config.seed */
        double rotation, translation, zoom, contrast, brightness;
    } augmentation;
    tlcl_phase phases[TLCL_CFG_MAX_PHASES];
    int phases_count;
    struct {
        struct {
            int enabled, mode, save_best_only;
            char monitor[TLCL_CFG_NAME_MAX];
            double initial_value_threshold; /* NAN: none */
            int save_freq;                  /* 0: each epoch; N: every N batches */
        } model_checkpoint;
        struct {
            int enabled, save_freq; /* save_freq 0: every epoch, N: every N batches */
            int double_checkpoint, delete_checkpoint;
        } backup;
        struct {
            int enabled, append;
            tlcl_cfg_path filename;
            char separator[8];
        } csv_logger;
        struct {
            int enabled, mode, patience, restore_best_weights, start_from_epoch;
            char monitor[TLCL_CFG_NAME_MAX];
            double min_delta, baseline; /* baseline NAN: none */
        } early_stopping;
        struct {
            int enabled;
        } terminate_on_nan;
    } callbacks;
    tlcl_metric metrics[TLCL_CFG_MAX_METRICS];
    int metrics_count;
    /* metric_groups: named groups of classes scored as one (plankton against
     * detritus): member i is class member[i] of group member_group[i] */
    struct {
        int count, nmembers;
        tlcl_cfg_name name[TLCL_CFG_MAX_GROUPS];
        tlcl_cfg_name member[TLCL_CFG_MAX_CLASSES];
        int member_group[TLCL_CFG_MAX_CLASSES];
    } metric_groups;
    struct {
        int enabled, timeout;
        char uri[512];
        char experiment[256];
        char run_name[256]; /* {DATE} and {ARCH} expanded by the tracker */
        char tags[2048];    /* "key=value,key=value" */
    } tracking;

    /* bookkeeping */
    tlcl_cfg_path source;        /* the config file, absolute ("" when none) */
    time_t run_time;             /* what {DATE} expands to */
    int finalized;
    struct {
        int line, column; /* 1-based; 0 when the key was not in the file */
    } where[TLCL_CFG_MAX_KEYS];  /* indexed like the schema */
} tlcl_config;

/* Every key at its default; relative default paths resolve against the
 * working directory. */
tlcl_status tlcl_config_defaults(tlcl_config *c, char *err, size_t err_len);

/* Defaults, then the file. Errors read "FILE:LINE:COLUMN: message" and name
 * the expected form; TLCL_ERR_IO when the file cannot be read,
 * TLCL_ERR_FORMAT otherwise. Checks required keys but not the cross-key
 * rules (tlcl_config_finalize does, after any --set). */
tlcl_status tlcl_config_load(tlcl_config *c, const char *path, char *err, size_t err_len);

/* One `--set key.path=value` override: value is YAML text for lists and
 * maps ("[1024, 512]", "{cat: 2, dog: 1}"), plain text for scalars.
 * Phases are addressed as phases.N.key (N from 0; N = count appends one).
 * Same validation as the file; errors name the key. */
tlcl_status tlcl_config_set(tlcl_config *c, const char *dotted_key, const char *value, char *err, size_t err_len);

/* Same, for a command-line option that stands for a key (`tlcl train
 * --epochs 3` is train.config.epochs): the same checks, and errors begin
 * with the option ("--epochs: ...") rather than "--set KEY". */
tlcl_status tlcl_config_set_option(tlcl_config *c, const char *option, const char *dotted_key, const char *value,
                                   char *err, size_t err_len);

/* Same, from "key.path=value". */
tlcl_status tlcl_config_set_arg(tlcl_config *c, const char *assignment, char *err, size_t err_len);

/* Cross-key checks (monitors against metrics and validation data, focal
 * alpha count, group pattern, phases), then {DATE} expansion and joining of
 * file names to their base_dir; adds the implicit single phase when
 * `phases` is empty. Idempotent. */
tlcl_status tlcl_config_finalize(tlcl_config *c, char *err, size_t err_len);

/* mkdir -p of every output directory and of the directory of every output
 * file (artefacts, metrics, records, backup, log, cache). Call after
 * finalize. Errors name the path. */
tlcl_status tlcl_config_make_dirs(const tlcl_config *c, char *err, size_t err_len);
/* mkdir -p; an existing directory is fine, an existing file is not. 0, or -1
 * with a message in err. */
int tlcl_mkdir_p(const char *path, char *err, size_t len);

/* The effective configuration as YAML that tlcl_config_load reads back. */
void tlcl_config_dump(const tlcl_config *c, FILE *f);

/* The commented default configuration (config/default.yaml), generated
 * from the schema's doc strings. */
void tlcl_config_print_default(FILE *f);

/* Nothing is heap-allocated today; kept so callers need not change. */
void tlcl_config_free(tlcl_config *c);

/* Effective values of inheriting keys. */
double tlcl_config_weight_decay(const tlcl_config *c); /* AdamW 0.004, others 0 when null */
int tlcl_config_phase_epochs(const tlcl_config *c, int phase);
double tlcl_config_phase_learning_rate(const tlcl_config *c, int phase);

/* The name of names[0..n) closest to word by edit distance, or NULL when
 * none is close (within a third of word's length, at least 2): the "did you
 * mean" of unknown keys, enum values and command-line options. */
const char *tlcl_closest_name(const char *word, const char *const *names, size_t n);

/* Keras's ModelCheckpoint file names (name_template.c): "{epoch:02d}",
 * "{val_kappa:.3f}" (format [0][width][.precision][d|f|e|g]); "{{" and
 * "}}" are braces. check: every field is epoch or one of keys (*fields:
 * how many); fill: the name of an epoch (1-based) from its logs. 0, or -1
 * with why. */
int tlcl_name_template_check(const char *tpl, const char *const *keys, int nkeys, int *fields, char *why, size_t len);
int tlcl_name_template_fill(const char *tpl, int epoch, const char *const *keys, const double *values, int n,
                            char *dst, size_t len, char *why, size_t wlen);

/* "{DATE}" in `in` replaced by t as YYYY-MM-DD_HH-MM-SS (local time). */
int tlcl_config_expand_date(const char *in, time_t t, char *out, size_t out_len);

#endif
