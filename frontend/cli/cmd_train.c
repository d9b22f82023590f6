/* cmd_train.c — `tlcl train [OPTION]... CONFIG.yaml` (--device, --epochs,
 * --batch-size, --no-test, --resume | --fresh, --set key.path=value):
 * the whole fine-tuning workflow of the configuration, then the test-set
 * evaluation and every artefact the configuration names.
 *
 * Starting: a run resumes by itself from its backup (Keras's
 * BackupAndRestore); --resume insists on it (no backup is an error);
 * --fresh moves the old backup and run state aside (renamed, kept) and
 * starts from the first epoch. A run whose run state records that it
 * finished trains nothing more: it says so and exits 0.
 *
 * Under mpirun (frontend/dist) every rank runs this command on its own
 * device and its share of every batch; rank 0 alone takes the run folder,
 * starts the run, writes the log, the CSV rows, the artefacts, the test
 * outputs and the tracking, and records the run as finished; the others
 * follow its decisions and read what it wrote. */
#include "commands.h"
#include "csv_logger.h"
#include "dist.h"
#include "history.h"
#include "plot.h"
#include "replicas.h"
#include "report.h"
#include "run_data.h"
#include "run_plan.h"
#include "run_status.h"
#include "textout.h"
#include "track.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct train_cli {
    const char *config;
    int no_test, resume, fresh;
    const char *tracking_parent; /* RUN@DIR: the MLflow parent run (tlcl grid's) */
    cli_args args;               /* --set, --epochs, --batch-size, --device: applied to the configuration */
} train_cli;

CLI_COMMAND(cli_train, "train", "CONFIG.yaml", 1, 1,
    "Run the fine-tuning workflow of a YAML configuration, then the test-set evaluation.\n"
    "A run resumes by itself from its backup (train.artefacts.backup_dir) when one is there; a run that\n"
    "already finished (train.artefacts.base_dir/run_state.json) trains nothing more and exits 0 (--fresh\n"
    "trains it again). --epochs, --batch-size and --device set their configuration keys, after the file.",
    CLI_DEVICE_OPTION_FOR("train.config.device"),
    CLI_KEY_OPT("devices", "N,M,...", "train.config.devices",
                "one model replica per device, each batch split across them (train.config.devices)"),
    CLI_KEY_OPT("epochs", "N", "train.config.epochs", "epochs of each phase that sets none (train.config.epochs)"),
    CLI_KEY_OPT("batch-size", "N", "train.config.batch_size", "images per training step (train.config.batch_size)"),
    CLI_FLAG_OPT("no-test", "skip the test-set evaluation"),
    CLI_FLAG_OPT("resume", "resume from the backup; no usable backup is an error"),
    CLI_FLAG_OPT("fresh", "start from the first epoch: the old backup and run state are moved aside"),
    CLI_SET_OPTION,
    CLI_TEXT_OPT("tracking-parent", "RUN@DIR",
                 "(set by tlcl grid) nest the MLflow run under local run RUN of DIR/tracking"));

typedef struct train_run {
    tlcl_config *cfg;
    FILE *log;
    tlcl_run_data data;
    tlcl_cl *cl;
    tlcl_engine *eng;
    tlcl_model model;
    tlcl_replicas replicas; /* the devices after the first of train.config.devices */
    tlcl_loader *train, *val, *test;
    csv_logger csv;
    int csv_open;
    tlcl_eval_metrics metrics;
    metrics_groups groups;
    tlcl_tracker *tracker; /* NULL unless tracking.enabled */
    int unwritten;         /* artefacts that could not be written (each warned about) */
    char best_model[1100]; /* the checkpoint ModelCheckpoint last saved ("": the configured name) */
    char err[4096];
} train_run;

static void open_tracker(train_run *r, const train_cli *o);

/* 0 to go on; 1 to stop with o->args.status (--help, a usage error). */
static int parse_cli(int argc, char **argv, train_cli *o)
{
    memset(o, 0, sizeof *o);
    if (cli_parse(&cli_train, argc, argv, &o->args))
        return 1;
    o->config = o->args.operands[0];
    o->no_test = cli_flag(&o->args, "no-test");
    o->resume = cli_flag(&o->args, "resume");
    o->fresh = cli_flag(&o->args, "fresh");
    o->tracking_parent = cli_value(&o->args, "tracking-parent");
    if (o->tracking_parent && !strchr(o->tracking_parent, '@'))
        o->args.status = cli_usage_error(&o->args, "--tracking-parent expects RUN@DIR, got '%s'", o->tracking_parent);
    else if (o->resume && o->fresh)
        o->args.status = cli_usage_error(&o->args, "--resume and --fresh contradict each other: give one or neither");
    else if (cli_device(&o->args) == -2) /* a malformed $TLCL_DEVICE (reported) */
        o->args.status = 2;
    return o->args.status != 0;
}

/* Under mpirun rank 0 gives the warnings (every rank sees the same data and files). */
static void warn_both(void *ctx, const char *msg)
{
    train_run *r = ctx;
    if (!tlcl_dist_is_root())
        return;
    fprintf(stderr, "warning: %s\n", msg);
    if (r->log)
        fprintf(r->log, "warning: %s\n", msg);
}

/* An artefact that could not be written: a warning now, a failed run at the
 * end (the backup is kept, so the same command writes it again). */
static void unwritten(train_run *r, const char *msg)
{
    warn_both(r, msg);
    r->unwritten++;
}

/* A plot's outcome: nothing to draw (1) is a warning, a failed write (-1) an unwritten artefact. */
static void plotted(train_run *r, int rc, const char *err)
{
    if (rc > 0)
        warn_both(r, err);
    else if (rc < 0)
        unwritten(r, err);
}

/* The first of train.config.devices (--devices), else --device (set in the
 * configuration), else $TLCL_DEVICE, else the configuration's; then the
 * other replicas' devices. */
static tlcl_status open_device(train_run *r, const train_cli *cli)
{
    tlcl_cl_options o = tlcl_cl_options_default();
    int env = cli_flag(&cli->args, "device") ? -1 : cli_device(&cli->args); /* parse_cli checked it */
    o.device_index = env >= 0 ? env : r->cfg->train.config.device;
    if (r->cfg->train.config.devices_count > 0)
        o.device_index = r->cfg->train.config.devices[0];
    tlcl_status s = tlcl_cl_init(&r->cl, &o, r->err, sizeof r->err);
    if (s == TLCL_OK && (s = tlcl_engine_init(&r->eng, r->cl)) != TLCL_OK)
        snprintf(r->err, sizeof r->err, "%s", tlcl_cl_error(r->cl));
    if (s == TLCL_OK && r->log)
        fprintf(r->log, "device: %s / %s%s%s\n", tlcl_cl_device(r->cl)->platform_name, tlcl_cl_device(r->cl)->name,
                tlcl_cl_device(r->cl)->profile[0] ? ", planned as device profile " : "",
                tlcl_cl_device(r->cl)->profile); /* TLCL_DEVICE_PROFILE: an emulated GPU's paths */
    if (s == TLCL_OK && r->log) /* the launch parameters in use: `tlcl tune`'s file or the family defaults */
        fprintf(r->log, "%s\n", tlcl_engine_tuning_note(r->eng));
    if (s == TLCL_OK && tlcl_engine_tuning_warning(r->eng)[0])
        warn_both(r, tlcl_engine_tuning_warning(r->eng));
    if (s == TLCL_OK)
        s = tlcl_replicas_open(&r->replicas, r->cfg, r->eng, r->err, sizeof r->err);
    if (s == TLCL_OK) {
        tlcl_replicas_describe(&r->replicas, r->eng, tlcl_dist_rank() == 0 ? stdout : NULL);
        tlcl_replicas_describe(&r->replicas, r->eng, r->log);
    }
    return s;
}

static tlcl_status open_model(train_run *r)
{
    tlcl_model_options o = tlcl_plan_model_options(r->cfg, r->data.classes);
    tlcl_status s = tlcl_model_build(&r->model, &o, r->err, sizeof r->err);
    if (s != TLCL_OK)
        return s;
    if ((s = tlcl_model_alloc(&r->model, r->eng, (uint32_t)r->cfg->train.config.seed)) != TLCL_OK) {
        snprintf(r->err, sizeof r->err, "%s", tlcl_engine_error(r->eng));
        return s;
    }
    s = tlcl_replicas_models(&r->replicas, &o, (uint32_t)r->cfg->train.config.seed, r->err, sizeof r->err);
    if (s != TLCL_OK)
        return s;
    return tlcl_plan_load_weights(r->cfg, &r->model, r->err, sizeof r->err);
}

static int open_loader(train_run *r, tlcl_loader **l, const tlcl_set *set, int shuffle, int augment)
{
    tlcl_loader_options o = {.batch_size = r->cfg->train.config.batch_size, .shuffle = shuffle,
                             .seed = (uint32_t)r->cfg->train.config.seed, .prefetch = 4};
    o.augment = augment ? tlcl_plan_augment(r->cfg) : tlcl_augment_none();
    if (set->n == 0) {
        *l = NULL;
        return 0;
    }
    return tlcl_loader_open(l, &r->data.cache, set->items, set->labels, set->weights, set->n, &o);
}

static void on_epoch_end(void *ctx, int phase, int epoch, const tlcl_logs *logs)
{
    train_run *r = ctx;
    const char *names[TLCL_LOGS_MAX];
    for (int i = 0; i < logs->n; i++)
        names[i] = logs->key[i];
    if (r->tracker) {
        /* step: the epoch counted over all phases, each earlier phase by its configured epochs (one
           that stopped early leaves a gap; steps stay unique, increasing, and the same on resume) */
        long step = epoch;
        for (int k = 0; k < phase; k++)
            step += tlcl_config_phase_epochs(r->cfg, k);
        tlcl_tracker_metrics(r->tracker, step, names, logs->value, logs->n);
    }
    if (!r->csv_open)
        return;
    char err[512];
    if (csv_logger_log(&r->csv, epoch, names, logs->value, logs->n, err, sizeof err) != 0)
        unwritten(r, err);
}

static void open_csv(train_run *r)
{
    const tlcl_config *c = r->cfg;
    char err[1024];
    if (!c->callbacks.csv_logger.enabled || !tlcl_dist_is_root())
        return;
    r->csv_open = csv_logger_open(&r->csv, c->callbacks.csv_logger.filename, c->callbacks.csv_logger.separator[0],
                                  c->callbacks.csv_logger.append, err, sizeof err) == 0;
    if (!r->csv_open)
        unwritten(r, err);
}

/* The CSV log, written row by row while training, again from the whole
 * history and published whole: a run resumed from a backup opened it anew
 * (append: false) and wrote only the epochs it trained, or (append: true)
 * added the epochs it trained again after the interrupted run's rows. With
 * append: true the bytes of earlier runs (csv_base, kept in the backup)
 * stay, then this run's rows once. 0, or -1 with err. */
static int rewrite_csv(const train_run *r, const tlcl_history *h, long long csv_base, char *err, size_t len)
{
    const tlcl_config *c = r->cfg;
    const char *path = c->callbacks.csv_logger.filename;
    if (!c->callbacks.csv_logger.enabled)
        return 0;
    size_t have = 0;
    char *earlier = c->callbacks.csv_logger.append && csv_base > 0 ? textout_read_all(path, &have) : NULL;
    size_t keep = earlier ? (have < (size_t)csv_base ? have : (size_t)csv_base) : 0;
    textout_file f;
    if (textout_open(&f, path, err, len) != 0) {
        free(earlier);
        return -1;
    }
    csv_logger l;
    csv_logger_attach(&l, f.f, c->callbacks.csv_logger.separator[0]);
    int ok = keep == 0 || fwrite(earlier, 1, keep, f.f) == keep;
    l.write_header = keep == 0 || earlier[0] == '\n' || earlier[0] == '\r'; /* Keras: a header when none */
    free(earlier);
    for (int e = 0; ok && e < h->n; e++) {
        const char *names[TLCL_LOGS_MAX];
        for (int i = 0; i < h->epochs[e].n; i++)
            names[i] = h->epochs[e].key[i];
        ok = csv_logger_log(&l, h->epoch_index[e], names, h->epochs[e].value, h->epochs[e].n, err, len) == 0;
    }
    csv_logger_close(&l);
    return textout_commit(&f, ok, err, len);
}

/* fit_history: Keras's compiled quantities; callback_history: the rest. */
static int is_fit_key(const char *k)
{
    return !strcmp(k, "loss") || !strcmp(k, "accuracy") || !strcmp(k, "val_loss") || !strcmp(k, "val_accuracy");
}

static void to_history(const tlcl_history *h, history *out, int fit_keys)
{
    history_init(out);
    for (int e = 0; e < h->n; e++) {
        const char *names[TLCL_LOGS_MAX];
        double values[TLCL_LOGS_MAX];
        int n = 0;
        for (int i = 0; i < h->epochs[e].n; i++)
            if (fit_keys < 0 || is_fit_key(h->epochs[e].key[i]) == fit_keys) {
                names[n] = h->epochs[e].key[i];
                values[n++] = h->epochs[e].value[i];
            }
        history_record(out, e, names, values, n);
    }
}

static void write_artefacts(train_run *r, const tlcl_history *h, long long csv_base)
{
    const tlcl_config *c = r->cfg;
    char err[4400];
    if (!tlcl_dist_is_root())
        return;
    history fit, cb, all;
    to_history(h, &fit, 1), to_history(h, &cb, 0), to_history(h, &all, -1);
    int n = r->data.classes;
    const char *const *names = r->data.class_names;
    /* each is tried: one that fails does not cost the others */
    if (rewrite_csv(r, h, csv_base, err, sizeof err))
        unwritten(r, err);
    if (history_write(&fit, c->train.artefacts.fit_history, err, sizeof err))
        unwritten(r, err);
    if (history_write(&cb, c->train.artefacts.callback_history, err, sizeof err))
        unwritten(r, err);
    if (report_write_labels_json(c->train.artefacts.labels_name, names, n, err, sizeof err))
        unwritten(r, err);
    plotted(r, plot_fit_curves(&all, c->train.records.fit_plots, err, sizeof err), err);
    plotted(r, plot_validation_curves(&all, names, n, c->train.records.validation_plots, err, sizeof err), err);
    plotted(r, plot_class_curves(&all, names, n, c->train.records.class_validation_plots_dir, err, sizeof err), err);
    history_free(&fit), history_free(&cb), history_free(&all);
    textout_file f;
    if (!c->train.artefacts.effective_config[0])
        return;
    if (textout_open(&f, c->train.artefacts.effective_config, err, sizeof err) != 0) {
        unwritten(r, err);
        return;
    }
    tlcl_config_dump(c, f.f);
    if (textout_commit(&f, 1, err, sizeof err) != 0)
        unwritten(r, err);
}

/* The test set through the run layer's inference pass. */
static tlcl_status predict_test(train_run *r, float **probs, int **labels, int *n)
{
    tlcl_run *run = NULL;
    tlcl_loss_spec loss = tlcl_loss_spec_default();
    tlcl_status s = tlcl_run_create(&run, &r->model, &loss, r->err, sizeof r->err);
    if (s == TLCL_OK)
        s = tlcl_predict_loader(run, r->test, NULL, probs, labels, n, NULL, r->err, sizeof r->err);
    tlcl_run_free(run);
    return s;
}

/* The confusion matrix picture sits beside its CSV: confusion.csv -> confusion.png. */
static void confusion_picture(const tlcl_config *c, char *png, size_t len)
{
    const char *csv = c->train.metrics.test_confusion_matrix, *dot = strrchr(csv, '.');
    snprintf(png, len, "%.*s.png", (int)(dot ? (size_t)(dot - csv) : strlen(csv)), csv);
}

/* The best checkpoint when one was saved, else the weights in hand. */
static tlcl_status evaluate_test(train_run *r, const char *best_model)
{
    const tlcl_config *c = r->cfg;
    if (!r->test)
        return TLCL_OK;
    char why[2048];
    int loaded = 0;
    tlcl_status s = tlcl_plan_load_best(c, best_model, &r->model, &loaded, r->err, sizeof r->err);
    if (s != TLCL_OK)
        return s; /* never a silent evaluation of other weights than the best model's */
    if (!loaded && c->callbacks.model_checkpoint.enabled) {
        snprintf(why, sizeof why, "the best model %s is missing: the test evaluation uses the final weights",
                 c->train.artefacts.best_model);
        warn_both(r, why);
    }
    float *probs;
    int *labels, n;
    s = predict_test(r, &probs, &labels, &n);
    if (s != TLCL_OK)
        return s;
    if (!tlcl_dist_is_root()) { /* its share is in rank 0's probabilities */
        free(probs), free(labels);
        return TLCL_OK;
    }
    char png[2200];
    confusion_picture(c, png, sizeof png);
    tlcl_eval_paths paths = {c->train.metrics.test_confusion_matrix, png, c->train.metrics.test_report};
    int rc = tlcl_evaluate_write(probs, labels, n, r->data.classes, r->data.class_names, &r->groups, &paths, stdout,
                                 r->err, sizeof r->err);
    if (r->log)
        tlcl_evaluate_write(probs, labels, n, r->data.classes, r->data.class_names, &r->groups,
                            &(tlcl_eval_paths){NULL, NULL, NULL}, r->log, why, sizeof why);
    free(probs), free(labels);
    return rc == 0 ? TLCL_OK : TLCL_ERR_IO;
}

/* Test outputs left by an earlier run describe another model than the one
 * this run saved: they become NAME.stale.EXT, and the console says so. */
static void mark_test_outputs_stale(train_run *r, const char *why)
{
    const tlcl_config *c = r->cfg;
    char png[2200], stale[2300], moved[4096] = "";
    if (!tlcl_dist_is_root())
        return;
    confusion_picture(c, png, sizeof png);
    const char *files[3] = {c->train.metrics.test_report, c->train.metrics.test_confusion_matrix, png};
    for (int i = 0; i < 3; i++) {
        const char *dot = strrchr(files[i], '.'), *slash = strrchr(files[i], '/');
        int stem = (int)(dot && (!slash || dot > slash) ? (size_t)(dot - files[i]) : strlen(files[i]));
        snprintf(stale, sizeof stale, "%.*s.stale%s", stem, files[i], files[i] + stem);
        if (access(files[i], F_OK) != 0)
            continue;
        if (rename(files[i], stale) != 0) {
            char msg[4800];
            snprintf(msg, sizeof msg, "cannot mark the earlier test output %s stale: %s", files[i], strerror(errno));
            unwritten(r, msg);
        } else {
            size_t used = strlen(moved);
            snprintf(moved + used, sizeof moved - used, "%s%s", used ? ", " : "", stale);
        }
    }
    if (moved[0]) {
        char msg[4600];
        snprintf(msg, sizeof msg, "the test outputs of an earlier run described another model (%s) and were renamed: %s",
                 why, moved);
        warn_both(r, msg);
    }
}

/* loss.alpha with one value per class (in label order) becomes the focal
 * loss's per-class alpha; one value is the scalar the plan already holds. */
static tlcl_status focal_alpha_per_class(train_run *r, float *alpha, tlcl_loss_spec *loss)
{
    const tlcl_config *c = r->cfg;
    if (c->loss.name != TLCL_LOSS_FOCAL || c->loss.alpha_count <= 1)
        return TLCL_OK;
    if (c->loss.alpha_count != r->data.classes) {
        snprintf(r->err, sizeof r->err,
                 "%s: 'loss.alpha' has %d values but the data has %d classes: give one value, or one per class "
                 "in label order", c->source, c->loss.alpha_count, r->data.classes);
        return TLCL_ERR_ARG;
    }
    for (int k = 0; k < r->data.classes; k++)
        alpha[k] = (float)c->loss.alpha[k];
    loss->focal_alpha_per_class = alpha;
    return TLCL_OK;
}

static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *b = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
    return fnv(h, s ? s : "", s ? strlen(s) + 1 : 1);
}

/* With cache_features and train.data_dir.cache_dir, the features of the
 * frozen base are kept in cache_dir/features-<hash>-{train,val}.bin for
 * later runs (a grid's runs, a rerun): the hash covers what they depend
 * on: the architecture, the image cache (whose name holds the key of every
 * image's path, size and time, the input size and the crop), the base
 * weights (the file's path, size and time, or the seed of random ones), the
 * device and the kernel settings of the environment, the batch size, and
 * the images in loader order. */
static void features_files(train_run *r, tlcl_train_plan *p)
{
    const tlcl_config *c = r->cfg;
    if (!p->cache_features || !c->train.data_dir.cache_dir[0])
        return;
    uint64_t h = fnv_str(14695981039346656037ULL, "tlcl-features-1");
    h = fnv_str(h, r->model.arch.name);
    h = fnv_str(h, r->data.cache.path); /* its name holds the images' key: paths, sizes, times, size, crop */
    int ints[4] = {c->model.input_size > 0 ? c->model.input_size : c->train.data_dir.image_size[0],
                   c->train.data_dir.crop_to_aspect_ratio, c->train.config.batch_size, c->model.weights_kind};
    h = fnv(h, ints, sizeof ints);
    char weights[2048];
    struct stat st;
    if (c->model.weights_kind == TLCL_WEIGHTS_NONE) {
        h = fnv(h, &c->train.config.seed, sizeof c->train.config.seed);
    } else {
        if (c->model.weights_kind == TLCL_WEIGHTS_FILE)
            snprintf(weights, sizeof weights, "%s", c->model.weights);
        else
            tlcl_plan_default_weights(r->model.arch.name, weights, sizeof weights);
        long long id[2] = {0, 0};
        if (stat(weights, &st) == 0)
            id[0] = (long long)st.st_size, id[1] = (long long)st.st_mtime;
        h = fnv(fnv_str(h, weights), id, sizeof id);
    }
    h = fnv_str(h, tlcl_cl_device(r->cl)->platform_name);
    h = fnv_str(h, tlcl_cl_device(r->cl)->name);
    static const char *const env[] = {"TLCL_FAST_MATH", "TLCL_FMA", "TLCL_GEMM", "TLCL_GEMM_TUNE", "TLCL_BN_COLUMN",
                                      "TLCL_CONV", "TLCL_VECTOR_WIDTH"};
    for (size_t i = 0; i < sizeof env / sizeof env[0]; i++)
        h = fnv_str(h, getenv(env[i]));
    const tlcl_set *sets[2] = {&r->data.train, &r->data.val};
    static const char *const names[2] = {"train", "val"};
    for (int k = 0; k < 2; k++) {
        uint64_t hk = fnv_str(h, names[k]);
        for (int i = 0; i < sets[k]->n; i++)
            hk = fnv_str(hk, r->data.files[sets[k]->items[i]]);
        snprintf(p->features_file[k], sizeof p->features_file[k], "%s/features-%016llx-%s.bin",
                 c->train.data_dir.cache_dir, (unsigned long long)hk, names[k]);
    }
}

static tlcl_status fit(train_run *r, const train_cli *o)
{
    tlcl_train_plan p;
    memset(&p, 0, sizeof p);
    p.model = &r->model;
    p.eng = r->eng;
    p.replicas = r->replicas.models;
    p.nreplicas = r->replicas.n;
    p.train = r->train;
    p.val = r->val;
    p.classes = r->data.classes;
    p.class_names = r->data.class_names;
    /* a backup left by an interruption is picked up (Keras BackupAndRestore); --fresh moved it aside */
    p.resume = o->resume ? TLCL_RESUME_REQUIRED : TLCL_RESUME_AUTO;
    p.progress = isatty(2) && tlcl_dist_is_root();
    p.log = r->log;
    tlcl_plan_metrics(r->cfg, r->data.class_names, &r->metrics);
    r->metrics.groups = &r->groups;
    p.metrics = tlcl_eval_metrics_fn;
    p.train_metrics = tlcl_eval_train_metrics_fn;
    p.metrics_ctx = &r->metrics;
    p.on_epoch_end = on_epoch_end;
    p.epoch_ctx = r;
    tlcl_status s = tlcl_plan_fill(r->cfg, &p, tlcl_loader_batches(r->train), r->err, sizeof r->err);
    float alpha[TLCL_CFG_MAX_CLASSES];
    if (s == TLCL_OK)
        features_files(r, &p);
    if (s == TLCL_OK)
        s = focal_alpha_per_class(r, alpha, &p.loss);
    if (s != TLCL_OK)
        return s;
    struct stat csv_st; /* with append: true, the earlier runs' rows end here (a resumed run: its backup says) */
    p.csv_base = r->cfg->callbacks.csv_logger.append && stat(r->cfg->callbacks.csv_logger.filename, &csv_st) == 0
                     ? (long long)csv_st.st_size
                     : 0;
    open_csv(r);
    tlcl_history h;
    s = tlcl_train_run(&p, &h, r->err, sizeof r->err);
    if (r->csv_open)
        csv_logger_close(&r->csv);
    if (s == TLCL_OK)
        write_artefacts(r, &h, p.csv_base);
    tlcl_dist_barrier(); /* the best model and the artefacts are written (rank 0) before any rank reads them */
    tlcl_plan_checkpoint_of(p.best_model[0] ? p.best_model : r->cfg->train.artefacts.best_model, r->best_model,
                            sizeof r->best_model);
    if (s == TLCL_OK && !o->no_test && r->test)
        s = evaluate_test(r, p.best_model);
    else if (s == TLCL_OK)
        mark_test_outputs_stale(r, o->no_test ? "this run was not tested: --no-test" : "this run has no test set");
    if (s == TLCL_OK && r->unwritten) {
        snprintf(r->err, sizeof r->err,
                 "%d of the run's files could not be written (the warnings above name them); the backup is kept: "
                 "once that is fixed, the same command writes them again", r->unwritten);
        s = TLCL_ERR_IO;
    }
    /* the last step: the run is recorded as finished, then the backup goes */
    if (s == TLCL_OK && tlcl_dist_is_root() && tlcl_train_finish(&p, &h, r->err, sizeof r->err) != 0)
        s = TLCL_ERR_IO;
    tlcl_history_free(&h);
    return s;
}

static tlcl_status run(train_run *r, const train_cli *o)
{
    tlcl_dist_root_first_begin(); /* rank 0 writes the split files and fills the image cache, the others read them */
    tlcl_status s = tlcl_run_data_open(&r->data, r->cfg, !o->no_test, warn_both, r, r->err, sizeof r->err);
    if (s == TLCL_OK)
        tlcl_dist_root_first_end();
    if (s == TLCL_OK)
    {
        printf("data: %d classes, %d training, %d validation, %d test images\n", r->data.classes, r->data.train.n,
               r->data.val.n, r->data.test.n);
        tlcl_run_data_print_counts(&r->data, stdout);
        printf("%s\n", r->data.class_weight_line);
        if (r->log) {
            tlcl_run_data_print_counts(&r->data, r->log);
            fprintf(r->log, "%s\n", r->data.class_weight_line);
        }
    }
    if (s == TLCL_OK)
        s = tlcl_plan_groups(r->cfg, r->data.class_names, r->data.classes, &r->groups, r->err, sizeof r->err);
    if (s == TLCL_OK)
        s = open_device(r, o);
    if (s == TLCL_OK)
        s = open_model(r);
    if (s == TLCL_OK)
        open_tracker(r, o);
    if (s == TLCL_OK && (open_loader(r, &r->train, &r->data.train, 1, 1) || open_loader(r, &r->val, &r->data.val, 0, 0) ||
                         open_loader(r, &r->test, &r->data.test, 0, 0))) {
        snprintf(r->err, sizeof r->err, "out of memory starting the data loaders");
        s = TLCL_ERR_OOM;
    }
    if (s == TLCL_OK)
        s = fit(r, o); /* trains, writes the artefacts, tests, then records the run as finished */
    return s;
}

/* MLflow tracking (tracking.enabled): a failure to start it is a warning,
 * never a failed run. */
static void open_tracker(train_run *r, const train_cli *o)
{
    const tlcl_config *c = r->cfg;
    if (!c->tracking.enabled || !tlcl_dist_is_root())
        return;
    char name[512], dated[600], err[1400];
    const char *arch = strstr(c->tracking.run_name, "{ARCH}");
    if (arch)
        snprintf(name, sizeof name, "%.*s%s%s", (int)(arch - c->tracking.run_name), c->tracking.run_name,
                 c->model.architecture, arch + 6);
    else
        snprintf(name, sizeof name, "%s", c->tracking.run_name);
    if (tlcl_config_expand_date(name, c->run_time, dated, sizeof dated) != 0)
        snprintf(dated, sizeof dated, "%s", name);
    tlcl_track_options to = {.run_dir = c->train.artefacts.base_dir, .uri = c->tracking.uri,
                             .experiment = c->tracking.experiment, .run_name = dated,
                             .timeout_s = c->tracking.timeout, .fresh = o->fresh, .warn = warn_both,
                             .warn_ctx = r};
    char parent_run[64] = "";
    if (o->tracking_parent) { /* RUN@DIR: the run id has no '@' */
        const char *at = strchr(o->tracking_parent, '@');
        snprintf(parent_run, sizeof parent_run, "%.*s", (int)(at - o->tracking_parent), o->tracking_parent);
        to.parent_run = parent_run, to.parent_dir = at + 1;
    }
    int continued = 0;
    if (tlcl_tracker_open(&r->tracker, &to, &continued, err, sizeof err) != TLCL_OK) {
        char msg[1600];
        snprintf(msg, sizeof msg, "MLflow tracking is off for this run: %s", err);
        warn_both(r, msg);
        return;
    }
    if (r->log)
        fprintf(r->log, "tracking: %s, experiment %s, run %s%s\n", c->tracking.uri, c->tracking.experiment, dated,
                continued ? " (continued)" : "");
    if (continued)
        return; /* parameters and tags went with the run's first start */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f) {
        tlcl_config_dump(c, f);
        fclose(f);
        tlcl_tracker_params_yaml(r->tracker, text);
    }
    free(text);
    const tlcl_device_info *d = tlcl_cl_device(r->cl);
    char device[300];
    snprintf(device, sizeof device, "%s / %s", d->platform_name, d->name);
    const char *keys[] = {"tlcl.version", "tlcl.device", "tlcl.architecture", "mlflow.source.name"};
    const char *values[] = {TLCL_VERSION, device, c->model.architecture, "tlcl train"};
    tlcl_tracker_tags(r->tracker, keys, values, 4);
    tlcl_tracker_tags_text(r->tracker, c->tracking.tags);
}

/* The run's end: the artefacts that exist, then the status. */
static void close_tracker(train_run *r, int ok)
{
    const tlcl_config *c = r->cfg;
    if (!r->tracker)
        return;
    if (ok) {
        const char *files[] = {r->best_model, c->train.metrics.test_report,
                               c->train.artefacts.effective_config, c->train.artefacts.labels_name};
        for (int i = 0; i < 4; i++) {
            const char *slash = strrchr(files[i], '/');
            if (files[i][0] && access(files[i], R_OK) == 0)
                tlcl_tracker_artifact(r->tracker, files[i], slash ? slash + 1 : files[i]);
        }
    }
    tlcl_tracker_close(r->tracker, ok ? "FINISHED" : "FAILED");
    r->tracker = NULL;
}

static FILE *open_log(const tlcl_config *c)
{
    if (!c->train.config.logs.file_path[0])
        return NULL;
    FILE *f = fopen(c->train.config.logs.file_path, "a");
    if (!f)
        fprintf(stderr, "warning: cannot open the log file %s: %s\n", c->train.config.logs.file_path, strerror(errno));
    return f;
}

static void cleanup(train_run *r)
{
    tlcl_loader_close(r->train), tlcl_loader_close(r->val), tlcl_loader_close(r->test);
    tlcl_replicas_close(&r->replicas);
    if (r->eng) {
        tlcl_model_free(&r->model);
        tlcl_engine_free(r->eng);
    }
    tlcl_cl_free(r->cl);
    tlcl_run_data_free(&r->data);
    if (r->log)
        fclose(r->log);
}

int cmd_train(int argc, char **argv)
{
    train_cli o;
    if (parse_cli(argc, argv, &o))
        return o.args.status;
    static tlcl_config cfg; /* large: not on the stack */
    train_run r;
    memset(&r, 0, sizeof r);
    r.cfg = &cfg;
    if (cli_load_config(&o.args, o.config, &cfg, r.err, sizeof r.err) != TLCL_OK) {
        fprintf(stderr, "tlcl train: %s\n", r.err);
        tlcl_config_free(&cfg);
        return 2;
    }
    if (tlcl_dist_is_root() && tlcl_config_make_dirs(&cfg, r.err, sizeof r.err) != TLCL_OK) { /* a full disk: no usage error */
        fprintf(stderr, "tlcl train: %s\n", r.err);
        tlcl_config_free(&cfg);
        return 1;
    }
    int finished = 0, lock_fd = -1;
    tlcl_start_mode mode = o.fresh ? TLCL_START_FRESH : o.resume ? TLCL_START_RESUME : TLCL_START_AUTO;
    tlcl_status s = TLCL_OK;
    if (tlcl_dist_is_root()) /* the folder, the log and the start are rank 0's; a failure there ends every rank */
        s = tlcl_plan_take_folder(&cfg, &lock_fd, stdout, r.err, sizeof r.err);
    if (s == TLCL_OK && tlcl_dist_is_root()) /* after the lock: a second run must not write into the first one's log */
        r.log = open_log(&cfg);
    if (s == TLCL_OK && tlcl_dist_is_root())
        s = tlcl_plan_start(&cfg, mode, &finished, stdout, r.err, sizeof r.err);
    if (s == TLCL_OK)
        finished = tlcl_dist_bcast_int(finished);
    if (s == TLCL_OK && finished && r.log)
        fprintf(r.log, "the run already finished: nothing left to train\n");
    if (s == TLCL_OK && !finished)
        s = run(&r, &o);
    if (s != TLCL_OK) {
        fprintf(stderr, "tlcl train: %s\n", r.err);
        if (r.log)
            fprintf(r.log, "error: %s\n", r.err);
    }
    close_tracker(&r, s == TLCL_OK);
    cleanup(&r);
    tlcl_run_unlock(lock_fd);
    tlcl_config_free(&cfg);
    return s == TLCL_OK ? 0 : 1;
}
