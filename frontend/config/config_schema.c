/* config_schema.c — the one table of configuration keys: type, place in
 * tlcl_config, range or allowed values, default and documentation. The
 * parser, --set, the defaults, the dump, config/default.yaml and the "did
 * you mean" suggestions all read it, so a key added here is complete.
 *
 * Defaults follow Keras where Keras has one; where the workflow needs a
 * value Keras leaves unset (seed, validation split, best-only checkpoint),
 * the doc string says so. */
#include "config_schema.h"

#include <stddef.h>
#include <string.h>

#define OFF(f) offsetof(tlcl_config, f)
#define SZ(f) sizeof(((tlcl_config *)0)->f)
#define BIG 1e30

#define INT(k_, f_, lo_, hi_, def_, doc_) \
    { .key = k_, .type = CFG_INT, .offset = OFF(f_), .lo = lo_, .hi = hi_, .def = def_, .doc = doc_ }
#define FLT(k_, f_, lo_, hi_, fl_, def_, doc_) \
    { .key = k_, .type = CFG_FLOAT, .offset = OFF(f_), .lo = lo_, .hi = hi_, .flags = fl_, .def = def_, .doc = doc_ }
#define BOOL(k_, f_, def_, doc_) { .key = k_, .type = CFG_BOOL, .offset = OFF(f_), .def = def_, .doc = doc_ }
#define STR(k_, f_, fl_, def_, doc_) \
    { .key = k_, .type = CFG_STR, .offset = OFF(f_), .size = SZ(f_), .flags = fl_, .def = def_, .doc = doc_ }
#define PATH(k_, f_, fl_, exts_, base_, def_, doc_)                                                             \
    {                                                                                                          \
        .key = k_, .type = CFG_PATH, .offset = OFF(f_), .size = SZ(f_), .flags = fl_, .exts = exts_,          \
        .base = base_, .def = def_, .doc = doc_                                                                \
    }
#define ENUM(k_, f_, names_, def_, doc_) \
    { .key = k_, .type = CFG_ENUM, .offset = OFF(f_), .names = names_, .def = def_, .doc = doc_ }
/* An enum that also takes Keras's string identifiers (keras.optimizers.get,
 * keras.losses.get, the schedules' class names). */
#define ENUM_KERAS(k_, f_, names_, aliases_, def_, doc_) \
    { .key = k_, .type = CFG_ENUM, .offset = OFF(f_), .names = names_, .aliases = aliases_, .def = def_, .doc = doc_ }

static const char *const split_names[] = {"keras", "stratified", "group", NULL};
static const char *const precision_names[] = {"float32", "mixed_bfloat16", NULL};
static const char *const group_on_names[] = {"name", "path", "class_path", NULL};
static const char *const act_names[] = {"relu", "relu6", "swish", "sigmoid", NULL};
static const char *const opt_names[] = {"adam", "adamw", "sgd", NULL};
static const char *const opt_keras[] = {"Adam", "adam", "AdamW", "adamw", "SGD", "sgd", NULL};
static const char *const sched_names[] = {"constant", "step", "exponential", "cosine", "reduce_on_plateau", NULL};
static const char *const sched_keras[] = {"ExponentialDecay", "exponential", "CosineDecay", "cosine",
                                          "ReduceLROnPlateau", "reduce_on_plateau", NULL};
static const char *const loss_names[] = {"categorical_crossentropy", "focal", NULL};
static const char *const loss_keras[] = {"CategoricalCrossentropy", "categorical_crossentropy",
                                         "categorical_focal_crossentropy", "focal",
                                         "CategoricalFocalCrossentropy", "focal", NULL};
static const char *const mode_names[] = {"auto", "min", "max", NULL};
static const char *const flip_names[] = {"none", "horizontal", "vertical", "horizontal_and_vertical", NULL};
const char *const cfg_trainable_names[] = {"all", "none", "top_blocks", "from_block", NULL};
const char *const cfg_metric_names[] = {"accuracy", "precision", "recall", "f1", "balanced_accuracy",
                                        "kappa", "auc", "top_k_accuracy", NULL};

#define ART "train.artefacts.base_dir"
#define MET "train.metrics.base_dir"
#define REC "train.records.base_dir"

const cfg_key cfg_keys[] = {
    /* ---- train.config ---- */
    INT("train.config.seed", train.config.seed, 0, 2147483647, "42",
        "Seed of the split, the shuffles, dropout and augmentation. Keras draws one at random when\n"
        "unset and then refuses validation_split; a fixed default makes runs repeatable."),
    INT("train.config.epochs", train.config.epochs, 1, 1000000, "10",
        "Epochs of each phase that does not set its own."),
    INT("train.config.batch_size", train.config.batch_size, 1, 65536, "32", "Images per training step (Keras 32)."),
    INT("train.config.device", train.config.device, -1, 1023, "-1",
        "OpenCL device index from `tlcl devices`; -1: $TLCL_DEVICE, else the first GPU, else the first device."),
    {.key = "train.config.devices", .type = CFG_INT_LIST, .offset = OFF(train.config.devices),
     .size = sizeof(((tlcl_config *)0)->train.config.devices) / sizeof(int),
     .count_offset = OFF(train.config.devices_count), .lo = 0, .hi = 1023, .def = "[]",
     .doc = "Data parallelism in one process (MirroredStrategy): one model replica per listed device index\n"
            "(`tlcl devices`; any vendors, a device may be listed twice), e.g. [0, 1]. Each global batch\n"
            "of batch_size images is split into contiguous slices, one per replica, in proportion to\n"
            "each device's measured speed (timed from the first step, refined over the first epoch,\n"
            "printed); the gradients are summed and every replica applies the same update. [] or one\n"
            "index: that device alone (then device is ignored); `--devices 0,1` sets it."},
    BOOL("train.config.sync_batchnorm", train.config.sync_batchnorm, "false",
         "With several devices: batch norm in training mode normalises with the statistics of the\n"
         "global batch (per-channel sums across the replicas, forward and backward), so N replicas\n"
         "give the weights of one device with the same batch. false: each replica's own slice's\n"
         "statistics, the moving averages averaged across replicas (MirroredStrategy's default)."),
    FLT("train.config.bucket_mb", train.config.bucket_mb, 0.001, 1024, 0, "4.0",
        "With several devices or MPI ranks: the gradients are summed across the replicas in buckets of\n"
        "at least this many MiB (at layer boundaries), each starting as soon as the backward pass has\n"
        "produced it, while the earlier layers still run (PyTorch DDP's bucket_cap_mb)."),
    INT("train.config.verbose", train.config.verbose, 0, 2, "1",
        "As Keras fit(verbose=): 0 silent, 1 progress bar, 2 one line per epoch."),
    PATH("train.config.logs.file_path", train.config.logs.file_path, CFG_OUT_FILE, NULL, NULL,
         "logs/{DATE}_train.log",
         "Log file, created if needed. Keep the {DATE}_ prefix: {DATE} becomes the run's start\n"
         "time, YYYY-MM-DD_HH-MM-SS, so runs never overwrite each other's logs."),
    /* ---- train.data_dir ---- */
    PATH("train.data_dir.train", train.data_dir.train, CFG_REQUIRED, NULL, NULL, "data/train",
         "Training images: one sub-directory per class (image_dataset_from_directory layout).\n"
         "Required: every configuration file names it."),
    PATH("train.data_dir.validation", train.data_dir.validation, CFG_NULLABLE, NULL, NULL, "~",
         "Validation images, same layout. When null, validation_split of train is held out."),
    PATH("train.data_dir.test", train.data_dir.test, CFG_NULLABLE, NULL, NULL, "~",
         "Test images, same layout; null: no test phase (as `train --no-test`)."),
    FLT("train.data_dir.validation_split", train.data_dir.validation_split, 0, 1, CFG_HI_OPEN, "0.2",
        "Fraction of train held out for validation when validation is null (0: no validation).\n"
        "Keras has no default; the callbacks below monitor val_loss, which needs one."),
    FLT("train.data_dir.test_split", train.data_dir.test_split, 0, 1, CFG_HI_OPEN, "0.0",
        "Fraction of train held out as the test set when test is null (one image directory for\n"
        "everything); drawn before the validation fraction, by the same split method. 0: none."),
    ENUM("train.data_dir.split", train.data_dir.split, split_names, "keras",
         "How the validation fraction is drawn: keras (exactly image_dataset_from_directory: shuffle\n"
         "with the seed, the last floor(split*N) files), stratified (the same fraction of each class),\n"
         "group (whole groups of files, by group_pattern, so one sample never lands on both sides)."),
    STR("train.data_dir.group_pattern", train.data_dir.group_pattern, CFG_NULLABLE, "~",
        "split: group only. POSIX extended regex matched against what group_on says (by default the\n"
        "file name alone); its first parenthesised group is the group key, e.g. '^([^_]+)_' gives S12\n"
        "for S12_0001.png. Groups are decided over all classes together: a sample with images in\n"
        "several classes lands on one side (train, validation or test) only."),
    ENUM("train.data_dir.group_on", train.data_dir.group_on, group_on_names, "name",
         "split: group only. What group_pattern is matched against: name (the file name), path (the path\n"
         "below the class folder, for samples kept in sub-directories: '^([^/]+)/'), or class_path\n"
         "(class folder included: only when a sample's images in two classes are meant to be two groups)."),
    BOOL("train.data_dir.merge_validation", train.data_dir.merge_validation, "false",
         "Final training on train + valid: the validation files (of the saved split, or of the\n"
         "validation directory) join the training set and no epoch is validated. Keep the other\n"
         "data_dir keys as in the fine-tuning run so the same split is reused, and monitor a\n"
         "training-side value (loss, accuracy, or balanced_accuracy listed in metrics)."),
    PATH("train.data_dir.split_dir", train.data_dir.split_dir, CFG_NULLABLE | CFG_OUT_DIR, NULL, NULL, "~",
         "Directory of the saved split (split.json, and test_split.json with test_split), written once\n"
         "and reused by every later run with the same files and split keys; null:\n"
         "train.artefacts.base_dir. Point a final run at the fine-tuning run's folder to reuse its split."),
    FLT("train.data_dir.subsample.train", train.data_dir.subsample.train, 0, 1, CFG_LO_OPEN, "1.0",
        "Fraction of the training files kept (per class, seeded), for quick experiments."),
    FLT("train.data_dir.subsample.validation", train.data_dir.subsample.validation, 0, 1, CFG_LO_OPEN, "1.0",
        "Fraction of the validation files kept."),
    FLT("train.data_dir.subsample.test", train.data_dir.subsample.test, 0, 1, CFG_LO_OPEN, "1.0",
        "Fraction of the test files kept."),
    {.key = "train.data_dir.image_size", .type = CFG_INT_LIST, .offset = OFF(train.data_dir.image_size),
     .size = 2, .count_offset = OFF(train.data_dir.image_size_count), .lo = 16, .hi = 8192, .flags = CFG_PAIR,
     .def = "[224, 224]",
     .doc = "[height, width] images are resized to (bilinear, TF half-pixel centres). Keras's default\n"
            "is [256, 256]; 224 is EfficientNet-B0's native size."},
    BOOL("train.data_dir.crop_to_aspect_ratio", train.data_dir.crop_to_aspect_ratio, "false",
         "Centre-crop to the target aspect ratio before resizing (Keras smart_resize)."),
    INT("train.data_dir.max_image_pixels", train.data_dir.max_image_pixels, 1, 2147483647, "178956970",
        "Largest image decoded, in pixels (width x height), read from the file's header before\n"
        "decoding; a larger one is refused as unreadable (see strict). Pillow's MAX_IMAGE_PIXELS: an\n"
        "RGB image of that size takes 512 MiB per decoding worker."),
    BOOL("train.data_dir.shuffle", train.data_dir.shuffle, "true", "Shuffle the training set every epoch."),
    BOOL("train.data_dir.strict", train.data_dir.strict, "true",
         "A file that does not decode is an error naming it; false skips it with a warning."),
    PATH("train.data_dir.cache_dir", train.data_dir.cache_dir, CFG_NULLABLE | CFG_OUT_DIR, NULL, NULL, "~",
         "Directory for decoded, resized images (and cached features), reused by later runs; null: none."),
    BOOL("train.data_dir.cache_features", train.data_dir.cache_features, "false",
         "In a phase whose base is frozen and without augmentation, compute the base's features once and\n"
         "train the head on them (kept in cache_dir when set)."),
    /* ---- train.artefacts ---- */
    PATH("train.artefacts.base_dir", train.artefacts.base_dir, CFG_OUT_DIR, NULL, NULL, "artefacts",
         "Directory of the artefacts below, created if needed."),
    PATH("train.artefacts.labels_name", train.artefacts.labels_name, CFG_OUT_FILE | CFG_IN_BASE, ".json", ART,
         "labels.json", "Class names in label order (.json)."),
    PATH("train.artefacts.best_model", train.artefacts.best_model, CFG_OUT_FILE | CFG_IN_BASE,
         ".safetensors|.weights.h5|.keras", ART, "best_model.safetensors",
         "Best model kept by model_checkpoint: a tlcl checkpoint (.safetensors), or .weights.h5 / .keras\n"
         "for Keras 3's weights too (for model.load_weights; the checkpoint beside it, .safetensors).\n"
         "Keras's {epoch:02d} and {val_loss:.3f} fields name a file per save."),
    PATH("train.artefacts.fit_history", train.artefacts.fit_history, CFG_OUT_FILE | CFG_IN_BASE,
         ".json|.csv|.pkl", ART, "fit_history.json",
         "Per-epoch loss and metrics (History.history); the format follows the extension."),
    PATH("train.artefacts.callback_history", train.artefacts.callback_history, CFG_OUT_FILE | CFG_IN_BASE,
         ".json|.csv|.pkl", ART, "callback_history.json",
         "Per-epoch values the callbacks add (learning_rate, best value, wait counters)."),
    PATH("train.artefacts.backup_dir", train.artefacts.backup_dir, CFG_OUT_DIR | CFG_IN_BASE, NULL, ART, "backup",
         "BackupAndRestore directory: latest weights, optimizer state and epoch, to resume a run."),
    PATH("train.artefacts.effective_config", train.artefacts.effective_config, CFG_OUT_FILE | CFG_IN_BASE,
         ".yaml|.yml", ART, "config.yaml", "The effective configuration of the run, every default included."),
    /* ---- train.metrics ---- */
    PATH("train.metrics.base_dir", train.metrics.base_dir, CFG_OUT_DIR, NULL, NULL, "metrics",
         "Directory of the test metrics, created if needed."),
    PATH("train.metrics.test_confusion_matrix", train.metrics.test_confusion_matrix, CFG_OUT_FILE | CFG_IN_BASE,
         ".csv|.json|.jpg|.png", MET, "test_confusion_matrix.csv",
         "Confusion matrix on the test set (rows true, columns predicted, as scikit-learn)."),
    PATH("train.metrics.test_report", train.metrics.test_report, CFG_OUT_FILE | CFG_IN_BASE, ".json", MET,
         "test_report.json", "Per-class and global metrics on the test set (classification_report, .json)."),
    /* ---- train.records ---- */
    PATH("train.records.base_dir", train.records.base_dir, CFG_OUT_DIR, NULL, NULL, "records",
         "Directory of the plots, created if needed."),
    PATH("train.records.fit_plots", train.records.fit_plots, CFG_OUT_FILE | CFG_IN_BASE, ".jpg|.jpeg|.png", REC,
         "fit_plots.jpg", "Learning curves (loss and metrics, train and validation)."),
    PATH("train.records.class_validation_plots_dir", train.records.class_validation_plots_dir,
         CFG_OUT_DIR | CFG_IN_BASE, NULL, REC, "class_validation_plots",
         "Directory of the per-class validation curves."),
    PATH("train.records.validation_plots", train.records.validation_plots, CFG_OUT_FILE | CFG_IN_BASE,
         ".jpg|.jpeg|.png", REC, "validation_plots.jpg", "Learning curves on the validation set."),
    /* ---- model ---- */
    STR("model.architecture", model.architecture, 0, "efficientnetv2-b0",
        "Architecture, as `tlcl summary` names it (efficientnet-b0..b7, efficientnetv2-b0..b3/s/m/l,\n"
        "efficientnet-lite0..4; Keras spellings such as EfficientNetV2B0 are accepted)."),
    {.key = "model.weights", .type = CFG_WEIGHTS, .offset = OFF(model.weights), .size = SZ(model.weights),
     .flags = CFG_NULLABLE, .def = "imagenet",
     .doc = "imagenet (pretrained base), null (random initialisation), or the path of a tlcl checkpoint."},
    INT("model.input_size", model.input_size, 0, 8192, "0",
        "Square input size of the network; 0: train.data_dir.image_size (which must then be square).\n"
        "Another size than image_size: the images are loaded at image_size and the network resizes\n"
        "them first, as Keras's Resizing layer (seed 001: 512 -> 224)."),
    FLT("model.drop_connect_rate", model.drop_connect_rate, 0, 1, CFG_HI_OPEN, "0.2",
        "Stochastic depth rate of the base (Keras 0.2)."),
    ENUM("model.precision", model.precision, precision_names, "float32",
         "Storage of the base's activations and their gradients: float32, or mixed_bfloat16 (Keras's\n"
         "policy name): bfloat16 feature maps, half the bytes for the memory-bound layers, while the\n"
         "parameters, optimizer state, batch-norm statistics, sums, head and loss stay float32 and\n"
         "every kernel computes in float32."),
    {.key = "model.head.units", .type = CFG_INT_LIST, .offset = OFF(model.head.units), .size = TLCL_CFG_MAX_HEAD,
     .count_offset = OFF(model.head.units_count), .lo = 1, .hi = 65536, .def = "[]",
     .doc = "Hidden dense layers between the pooled features and the classifier, e.g. [1024, 512];\n"
            "[]: pooling -> dropout -> classifier, as the Keras transfer-learning guide."},
    ENUM("model.head.activation", model.head.activation, act_names, "relu", "Activation of the hidden layers."),
    FLT("model.head.dropout", model.head.dropout, 0, 1, CFG_HI_OPEN, "0.2",
        "Dropout rate before each dense layer of the head (Keras guide 0.2)."),
    BOOL("model.head.batch_norm", model.head.batch_norm, "false",
         "Batch normalisation after pooling (the Keras EfficientNet example's head): not implemented\n"
         "yet, true is refused."),
    /* ---- optimizer ---- */
    ENUM_KERAS("optimizer.name", optimizer.name, opt_names, opt_keras, "adam",
               "adam, adamw or sgd, with Keras semantics; Keras's identifiers Adam, AdamW and SGD too."),
    FLT("optimizer.learning_rate", optimizer.learning_rate, 0, 10, CFG_LO_OPEN, "0.001",
        "Initial learning rate of phases that set none (Keras 0.001; SGD's Keras default is 0.01)."),
    FLT("optimizer.beta_1", optimizer.beta_1, 0, 1, CFG_HI_OPEN, "0.9", "Adam/AdamW first-moment decay."),
    FLT("optimizer.beta_2", optimizer.beta_2, 0, 1, CFG_HI_OPEN, "0.999", "Adam/AdamW second-moment decay."),
    FLT("optimizer.epsilon", optimizer.epsilon, 0, 1, CFG_LO_OPEN, "1e-07",
        "Adam/AdamW epsilon, added to sqrt(v) (Keras 1e-7)."),
    FLT("optimizer.momentum", optimizer.momentum, 0, 1, CFG_HI_OPEN, "0.0", "SGD momentum (Keras 0)."),
    BOOL("optimizer.nesterov", optimizer.nesterov, "false", "SGD Nesterov momentum."),
    FLT("optimizer.weight_decay", optimizer.weight_decay, 0, 1, CFG_NULLABLE, "~",
        "Decoupled weight decay; null: the optimizer's Keras default (AdamW 0.004, others none)."),
    FLT("optimizer.global_clipnorm", optimizer.global_clipnorm, 0, BIG, CFG_NULLABLE | CFG_LO_OPEN, "~",
        "Clip the gradients to this global norm; null: no clipping."),
    /* ---- schedule ---- */
    ENUM_KERAS("schedule.name", schedule.name, sched_names, sched_keras, "constant",
               "Learning-rate schedule within each phase: constant, step (x factor every step_size epochs),\n"
               "exponential / cosine (per step, Keras ExponentialDecay / CosineDecay), reduce_on_plateau\n"
               "(Keras ReduceLROnPlateau callback). Keras's names ExponentialDecay, CosineDecay and\n"
               "ReduceLROnPlateau are accepted too."),
    INT("schedule.step_size", schedule.step_size, 1, 1000000, "10", "step: epochs between two drops."),
    FLT("schedule.factor", schedule.factor, 0, 1, CFG_LO_OPEN | CFG_HI_OPEN, "0.1",
        "step and reduce_on_plateau: the learning rate is multiplied by this (Keras 0.1)."),
    INT("schedule.decay_steps", schedule.decay_steps, 0, 2147483647, "0",
        "exponential and cosine: decay length in steps; 0: all the steps of the phase."),
    FLT("schedule.decay_rate", schedule.decay_rate, 0, 1, CFG_LO_OPEN, "0.96", "exponential: decay rate."),
    BOOL("schedule.staircase", schedule.staircase, "false", "exponential: floor step/decay_steps."),
    FLT("schedule.alpha", schedule.alpha, 0, 1, 0, "0.0", "cosine: final fraction of the learning rate (Keras 0)."),
    INT("schedule.warmup_steps", schedule.warmup_steps, 0, 2147483647, "0", "cosine: linear warm-up steps."),
    FLT("schedule.warmup_target", schedule.warmup_target, 0, 10, CFG_NULLABLE | CFG_LO_OPEN, "~",
        "cosine: learning rate reached after warm-up; null: no warm-up (Keras None)."),
    STR("schedule.monitor", schedule.monitor, 0, "val_loss", "reduce_on_plateau: quantity monitored."),
    ENUM("schedule.mode", schedule.mode, mode_names, "auto", "reduce_on_plateau: auto, min or max."),
    INT("schedule.patience", schedule.patience, 0, 1000000, "10",
        "reduce_on_plateau: epochs without improvement before a drop (Keras 10)."),
    FLT("schedule.min_delta", schedule.min_delta, 0, BIG, 0, "0.0001",
        "reduce_on_plateau: smallest change that counts as an improvement (Keras 1e-4)."),
    INT("schedule.cooldown", schedule.cooldown, 0, 1000000, "0", "reduce_on_plateau: epochs to wait after a drop."),
    FLT("schedule.min_lr", schedule.min_lr, 0, 10, 0, "0.0", "reduce_on_plateau: lower bound of the learning rate."),
    /* ---- loss ---- */
    ENUM_KERAS("loss.name", loss.name, loss_names, loss_keras, "categorical_crossentropy",
               "categorical_crossentropy, or focal (Keras CategoricalFocalCrossentropy); Keras's identifiers\n"
               "CategoricalCrossentropy, categorical_focal_crossentropy and CategoricalFocalCrossentropy too."),
    FLT("loss.label_smoothing", loss.label_smoothing, 0, 1, 0, "0.0", "Label smoothing (both losses)."),
    {.key = "loss.alpha", .type = CFG_FLOAT_LIST, .offset = OFF(loss.alpha), .size = TLCL_CFG_MAX_CLASSES,
     .count_offset = OFF(loss.alpha_count), .lo = 0, .hi = 1e6, .def = "0.25",
     .doc = "focal: weighting factor, one number or one per class in label order (Keras 0.25)."},
    FLT("loss.gamma", loss.gamma, 0, 100, 0, "2.0", "focal: focusing parameter (Keras 2.0)."),
    /* ---- class_weight ---- */
    {.key = "class_weight", .type = CFG_CLASS_WEIGHT, .offset = OFF(class_weight), .def = "none",
     .doc = "none; balanced (n_samples / (n_classes * count), scikit-learn); or a map class name -> weight,\n"
            "e.g. {bacteria: 1.0, virus: 2.5}; classes left out weigh 1 (as Keras). The weights in force\n"
            "are printed when training starts and written to train.artefacts.base_dir/class_weights.json."},
    FLT("class_weight_power", class_weight.power, 0, 1, 0, "1.0",
        "class_weight: balanced only. Sensitivity p: w_c = (n_samples / (n_classes * count_c))^p;\n"
        "1: scikit-learn's balanced weights, 0: every class 1, between: softened (0.5: square root)."),
    /* ---- augmentation ---- */
    BOOL("augmentation.enabled", augmentation.enabled, "false",
         "Random augmentation of the training images (Keras preprocessing layers)."),
    ENUM("augmentation.flip", augmentation.flip, flip_names, "none", "RandomFlip mode."),
    FLT("augmentation.rotation", augmentation.rotation, 0, 1, 0, "0.0",
        "RandomRotation factor, a fraction of a full turn."),
    FLT("augmentation.translation", augmentation.translation, 0, 1, 0, "0.0",
        "RandomTranslation factor (height and width), a fraction of the size."),
    FLT("augmentation.zoom", augmentation.zoom, 0, 1, CFG_HI_OPEN, "0.0", "RandomZoom factor."),
    FLT("augmentation.contrast", augmentation.contrast, 0, 1, 0, "0.0", "RandomContrast factor."),
    FLT("augmentation.brightness", augmentation.brightness, 0, 1, 0, "0.0", "RandomBrightness factor."),
    INT("augmentation.seed", augmentation.seed, -1, 2147483647, "-1", "Augmentation seed; -1: train.config.seed."),
    /* ---- phases ---- */
    {.key = "phases", .type = CFG_PHASES, .offset = OFF(phases), .def = "[]",
     .doc = "Fine-tuning phases, run in order, each a fit() after setting trainability and recompiling:\n"
            "  name, epochs (null: train.config.epochs), learning_rate (null: optimizer.learning_rate),\n"
            "  trainable: all | none (base frozen) | top_blocks (with top_blocks: N) | from_block\n"
            "  (with from_block: block6a), bn_frozen (batch norms stay in inference mode).\n"
            "[]: one phase training every layer for train.config.epochs.\n"
            "At most " TLCL_LIMIT_STR(TLCL_PHASES_MAX) " phases (TLCL_PHASES_MAX)."},
    /* ---- callbacks ---- */
    BOOL("callbacks.model_checkpoint.enabled", callbacks.model_checkpoint.enabled, "true",
         "ModelCheckpoint to train.artefacts.best_model."),
    STR("callbacks.model_checkpoint.monitor", callbacks.model_checkpoint.monitor, 0, "val_loss",
        "Quantity monitored: loss, val_loss, or a metric below with or without val_."),
    ENUM("callbacks.model_checkpoint.mode", callbacks.model_checkpoint.mode, mode_names, "auto",
         "auto (min for losses, max for metrics), min or max."),
    {.key = "callbacks.model_checkpoint.save_freq", .type = CFG_SAVE_FREQ,
     .offset = OFF(callbacks.model_checkpoint.save_freq), .def = "epoch",
     .doc = "epoch, or a number of batches between saves (Keras's save_freq); mid-epoch saves see the\n"
            "training values only ({batch} names the batch in best_model)."},
    BOOL("callbacks.model_checkpoint.save_best_only", callbacks.model_checkpoint.save_best_only, "true",
         "Save only on improvement. Keras's default is false; best_model means true."),
    FLT("callbacks.model_checkpoint.initial_value_threshold", callbacks.model_checkpoint.initial_value_threshold,
        -BIG, BIG, CFG_NULLABLE, "~", "Value to beat before the first save; null: none."),
    BOOL("callbacks.backup.enabled", callbacks.backup.enabled, "true",
         "BackupAndRestore in train.artefacts.backup_dir: an interrupted run resumes."),
    {.key = "callbacks.backup.save_freq", .type = CFG_SAVE_FREQ, .offset = OFF(callbacks.backup.save_freq),
     .def = "epoch", .doc = "epoch, or a number of batches between backups."},
    BOOL("callbacks.backup.double_checkpoint", callbacks.backup.double_checkpoint, "false",
         "Keep the previous backup (.bkp) in case the latest is corrupt."),
    BOOL("callbacks.backup.delete_checkpoint", callbacks.backup.delete_checkpoint, "true",
         "Delete the backup directory when training completes (Keras true)."),
    BOOL("callbacks.csv_logger.enabled", callbacks.csv_logger.enabled, "true", "CSVLogger, one row per epoch."),
    PATH("callbacks.csv_logger.filename", callbacks.csv_logger.filename, CFG_OUT_FILE | CFG_IN_BASE, ".csv", ART,
         "training_log.csv", "CSV file, relative to train.artefacts.base_dir."),
    STR("callbacks.csv_logger.separator", callbacks.csv_logger.separator, 0, ",",
        "Field separator, one character other than a quote or a line break (Keras ',')."),
    BOOL("callbacks.csv_logger.append", callbacks.csv_logger.append, "false",
         "Append to an existing file (a resumed run) instead of truncating it."),
    BOOL("callbacks.early_stopping.enabled", callbacks.early_stopping.enabled, "false", "EarlyStopping."),
    STR("callbacks.early_stopping.monitor", callbacks.early_stopping.monitor, 0, "val_loss", "Quantity monitored."),
    FLT("callbacks.early_stopping.min_delta", callbacks.early_stopping.min_delta, 0, BIG, 0, "0.0",
        "Smallest change that counts as an improvement (Keras 0)."),
    INT("callbacks.early_stopping.patience", callbacks.early_stopping.patience, 0, 1000000, "0",
        "Epochs without improvement before stopping (Keras 0)."),
    ENUM("callbacks.early_stopping.mode", callbacks.early_stopping.mode, mode_names, "auto", "auto, min or max."),
    FLT("callbacks.early_stopping.baseline", callbacks.early_stopping.baseline, -BIG, BIG, CFG_NULLABLE, "~",
        "Value the monitor must beat for patience to reset; null: none."),
    BOOL("callbacks.early_stopping.restore_best_weights", callbacks.early_stopping.restore_best_weights, "false",
         "Restore the best epoch's weights at the end (Keras false)."),
    INT("callbacks.early_stopping.start_from_epoch", callbacks.early_stopping.start_from_epoch, 0, 1000000, "0",
        "Epochs of warm-up before stopping is considered."),
    BOOL("callbacks.terminate_on_nan.enabled", callbacks.terminate_on_nan.enabled, "true",
         "Stop when the loss is NaN or Inf (tlcl also skips that step's update); tlcl always does,\n"
         "so false is refused."),
    /* ---- metrics ---- */
    {.key = "metrics", .type = CFG_METRICS, .offset = OFF(metrics), .def = "[accuracy]",
     .doc = "Metrics computed every epoch: accuracy, precision, recall, f1, balanced_accuracy, kappa, auc,\n"
            "top_k_accuracy (k 5, or {top_k_accuracy: 3})."},
    {.key = "metric_groups", .type = CFG_GROUPS, .offset = OFF(metric_groups), .def = "{}",
     .doc = "Groups of classes scored as one, e.g. {plankton: [copepod, diatom], detritus: [detritus]}: each\n"
            "group's precision, recall and F1 (a sample is positive when its class is in the group) are\n"
            "logged every epoch as val_group_<name>_precision (recall, f1), usable as a monitor, and written\n"
            "to the test report."},
    /* ---- tracking ---- */
    BOOL("tracking.enabled", tracking.enabled, "false",
         "Log the run to an MLflow tracking server (REST API): the effective configuration as\n"
         "parameters, every epoch's logs as metrics (step = epoch over all phases), tags, and the best\n"
         "model and test report as artefacts. Every record also goes to the journal\n"
         "train.artefacts.base_dir/tracking/journal.jsonl; when the server cannot be reached training\n"
         "goes on and `tlcl track sync RUN_DIR` uploads what is missing later."),
    STR("tracking.uri", tracking.uri, 0, "http://127.0.0.1:5000",
        "Base URL of the MLflow server (`mlflow server --host ... --port ...`)."),
    STR("tracking.experiment", tracking.experiment, 0, "tlcl",
        "MLflow experiment, created when missing."),
    STR("tracking.run_name", tracking.run_name, 0, "{ARCH}_{DATE}",
        "Run name; {DATE} becomes the run date, {ARCH} model.architecture."),
    STR("tracking.tags", tracking.tags, CFG_NULLABLE, "~",
        "Extra run tags, \"key=value,key=value\" (tlcl.version, tlcl.device and\n"
        "tlcl.architecture are always set)."),
    INT("tracking.timeout", tracking.timeout, 1, 3600, "10",
        "Seconds before one request to the server is given up (the run then goes on offline)."),
};
const size_t cfg_nkeys = sizeof cfg_keys / sizeof cfg_keys[0];

#define POFF(f) offsetof(tlcl_phase, f)
const cfg_key cfg_phase_keys[] = {
    {.key = "name", .type = CFG_STR, .offset = POFF(name), .size = TLCL_CFG_NAME_MAX, .flags = CFG_NULLABLE, .def = "~",
     .doc = "Name shown in logs; default phase1, phase2..."},
    {.key = "epochs", .type = CFG_INT, .offset = POFF(epochs), .lo = -1, .hi = 1000000, .flags = CFG_NULLABLE,
     .def = "~", .doc = "Epochs; null: train.config.epochs."},
    {.key = "learning_rate", .type = CFG_FLOAT, .offset = POFF(learning_rate), .lo = 0, .hi = 10,
     .flags = CFG_NULLABLE | CFG_LO_OPEN, .def = "~", .doc = "Initial learning rate; null: optimizer.learning_rate."},
    {.key = "trainable", .type = CFG_ENUM, .offset = POFF(trainable), .names = cfg_trainable_names, .def = "all",
     .doc = "Which part of the base trains."},
    {.key = "top_blocks", .type = CFG_INT, .offset = POFF(top_blocks), .lo = 0, .hi = 1000, .def = "0",
     .doc = "trainable: top_blocks: the number of blocks, from the top."},
    {.key = "from_block", .type = CFG_STR, .offset = POFF(from_block), .size = TLCL_CFG_NAME_MAX,
     .flags = CFG_NULLABLE, .def = "~", .doc = "trainable: from_block: the first trainable block (block6a)."},
    {.key = "bn_frozen", .type = CFG_BOOL, .offset = POFF(bn_frozen), .def = "false",
     .doc = "Batch norms stay frozen in inference mode (the Keras fine-tuning advice)."},
};
const size_t cfg_nphase_keys = sizeof cfg_phase_keys / sizeof cfg_phase_keys[0];

_Static_assert(sizeof cfg_keys / sizeof cfg_keys[0] <= TLCL_CFG_MAX_KEYS, "raise TLCL_CFG_MAX_KEYS");

/* Other names of keys: seed 000's configuration puts the Keras loss and
 * metric beside the epochs, under train.config (README, "Seed 000's
 * configuration"). An alias sets its key; both given is a duplicate. */
static const struct {
    const char *alias, *key;
} cfg_aliases[] = {
    {"train.config.loss", "loss.name"},
    {"train.config.metric", "metrics"},
    {"train.config.metrics", "metrics"},
};

const cfg_key *cfg_find(const cfg_key *table, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(table[i].key, key) == 0)
            return &table[i];
    for (size_t a = 0; table == cfg_keys && a < sizeof cfg_aliases / sizeof cfg_aliases[0]; a++)
        if (strcmp(cfg_aliases[a].alias, key) == 0)
            return cfg_find(table, n, cfg_aliases[a].key);
    return NULL;
}

int cfg_key_index(const cfg_key *k)
{
    if (k >= cfg_keys && k < cfg_keys + cfg_nkeys)
        return (int)(k - cfg_keys);
    return -1;
}

int cfg_is_section(const char *prefix)
{
    size_t n = strlen(prefix);
    for (size_t i = 0; i < cfg_nkeys; i++)
        if (strncmp(cfg_keys[i].key, prefix, n) == 0 && cfg_keys[i].key[n] == '.')
            return 1;
    return 0;
}
