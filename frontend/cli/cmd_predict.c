/* cmd_predict.c — `tlcl predict --model CKPT [--top K] [--batch-size N]
 * [--device=N] [--out FILE] [--list FILE] IMAGE|DIR...` (options in any
 * order, cli_options.h): classifies images
 * with a checkpoint and writes CSV rows "file,class_1,prob_1,...". The
 * checkpoint's metadata rebuilds the model (architecture, size, head,
 * preprocessing, class names), so nothing about the model is given on the
 * command line. Images are decoded by a background thread while the device
 * classifies the previous batch; with --out the rows are written as they
 * come and a killed run continues where it stopped (resumable_csv.h).
 *
 * Under mpirun (frontend/dist) the inputs are cut into global batches of
 * --batch-size files; rank r decodes and classifies global batches r, r+N,
 * r+2N, ... on its own device, and after each round of N batches rank 0
 * gathers the rows in rank order, which is the file order, and writes them:
 * the same CSV as one process, resumable the same way. */
#include "commands.h"
#include "config.h"
#include "dist.h"
#include "textout.h"
#include "image_load.h"
#include "image_stream.h"
#include "resumable_csv.h"
#include "run.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { BATCH_DEFAULT = 16, BATCH_MAX = 4096, TOP_DEFAULT = 5 };

typedef struct predict_args {
    const char *model, *out, *list;
    int top, batch; /* top 0: the default, min(TOP_DEFAULT, the model's classes) */
    int logits;     /* also each class's logit, in label order */
    char **inputs;
    int ninputs;
} predict_args;

typedef struct file_list {
    char **v;
    int n, cap;
} file_list;

typedef struct predictor {
    tlcl_cl *cl;
    tlcl_engine *eng;
    tlcl_model m;
    int built;
    tlcl_run *run;       /* the inference pass */
    char **names;
    int nnames;
} predictor;

/* ---- arguments ------------------------------------------------------------ */

CLI_COMMAND(cli_predict, "predict", "[IMAGE|DIR]...", 0, -1,
    "Classify images with a checkpoint: CSV rows file,class_1,prob_1,...\n"
    "Directories are searched for .jpg .jpeg .png .bmp .gif; with --out a killed run continues where it\n"
    "stopped when started again.",
    CLI_TEXT_OPT("model", "CKPT", "the checkpoint (.safetensors) to classify with (required)"),
    CLI_INT_OPT("top", "K", 1, 100000, "classes per row, most probable first (default 5, or every class if fewer)"),
    CLI_INT_OPT("batch-size", "N", 1, BATCH_MAX, "images per device batch (default 16)"),
    CLI_DEVICE_OPTION,
    CLI_TEXT_OPT("out", "FILE", "write the CSV there (its folders are created; resumable) rather than to stdout"),
    CLI_TEXT_OPT("list", "FILE", "also classify the paths of FILE, one a line"),
    CLI_FLAG_OPT("logits", "also write each class's logit (logit_0, logit_1, ... in label order)"));

/* 0 to go on; 1 to stop with c->status (--help, a usage error). */
static int parse_args(int argc, char **argv, predict_args *a, cli_args *c)
{
    memset(a, 0, sizeof *a);
    if (cli_parse(&cli_predict, argc, argv, c))
        return 1;
    a->model = cli_value(c, "model");
    a->out = cli_value(c, "out");
    a->list = cli_value(c, "list");
    a->top = (int)cli_number(c, "top", 0);
    a->batch = (int)cli_number(c, "batch-size", BATCH_DEFAULT);
    a->logits = cli_flag(c, "logits");
    a->inputs = c->operands;
    a->ninputs = c->noperands;
    if (!a->model || (!a->ninputs && !a->list))
        c->status = cli_usage_error(c, "%s", !a->model ? "--model CKPT is required"
                                                       : "no IMAGE, DIR or --list FILE given");
    return c->status != 0;
}

/* ---- inputs ----------------------------------------------------------------- */

static int list_add(file_list *l, const char *path)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v, l->cap = cap;
    }
    return (l->v[l->n] = strdup(path)) ? (l->n++, 0) : -1;
}

static void list_free(file_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Byte order, not the locale's: the same directory lists the same way everywhere. */
static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

static int skip_entry(const struct dirent *d) { return d->d_name[0] != '.'; }

/* Directories already walked, by (device, inode): links that lead back
 * (two links to '.', a link to a parent) are walked once, not forever. */
typedef struct dir_seen {
    struct { dev_t dev; ino_t ino; } *v;
    int n, cap;
} dir_seen;

/* 1 when st's directory was walked before; otherwise records it (0), or -1
 * when out of memory. */
static int seen_before(dir_seen *s, const struct stat *st)
{
    for (int i = 0; i < s->n; i++)
        if (s->v[i].dev == st->st_dev && s->v[i].ino == st->st_ino)
            return 1;
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 16;
        __typeof__(s->v) v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        s->v = v, s->cap = cap;
    }
    s->v[s->n].dev = st->st_dev, s->v[s->n++].ino = st->st_ino;
    return 0;
}

/* Adds the images under dir, recursively, each directory in sorted order
 * and once. */
static int walk_dir(const char *dir, file_list *l, dir_seen *seen)
{
    struct stat self;
    int again = stat(dir, &self) == 0 ? seen_before(seen, &self) : 0;
    if (again)
        return again < 0 ? -1 : 0;
    struct dirent **ents;
    int n = scandir(dir, &ents, skip_entry, by_name), rc = 0;
    if (n < 0) {
        fprintf(stderr, "tlcl predict: warning: cannot read directory %s, skipped\n", dir);
        return 0;
    }
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", ents[i]->d_name);
        if (rc == 0 && stat(path, &st) == 0) {
            if (S_ISDIR(st.st_mode))
                rc = walk_dir(path, l, seen);
            else if (S_ISREG(st.st_mode) && tlcl_image_name_supported(path))
                rc = list_add(l, path);
        }
        free(ents[i]);
    }
    free(ents);
    return rc;
}

/* One path a line (a trailing \r is dropped; empty lines are skipped). */
static int read_list(const char *path, file_list *l)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "tlcl predict: cannot read the file list %s\n", path);
        return -1;
    }
    char line[4096];
    int rc = 0, n = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        n++;
        size_t len = strcspn(line, "\r\n");
        if (line[len] == '\0' && !feof(f)) {
            fprintf(stderr, "tlcl predict: %s:%d: a path longer than %zu bytes\n", path, n, sizeof line - 2);
            rc = -1;
        } else if (len > 0) {
            line[len] = '\0';
            rc = list_add(l, line);
        }
    }
    fclose(f);
    return rc;
}

/* Files named on the command line are taken whatever their extension (the
 * decoder decides); directories contribute their image files; --list adds
 * its paths after them. */
static int collect_inputs(const predict_args *a, file_list *l)
{
    dir_seen seen = {0};
    int rc = 0;
    for (int i = 0; rc == 0 && i < a->ninputs; i++) {
        struct stat st;
        rc = stat(a->inputs[i], &st) == 0 && S_ISDIR(st.st_mode) ? walk_dir(a->inputs[i], l, &seen)
                                                                 : list_add(l, a->inputs[i]);
    }
    free(seen.v);
    if (rc) {
        fprintf(stderr, "tlcl predict: out of memory listing the inputs\n");
        return -1;
    }
    return a->list ? read_list(a->list, l) : 0;
}

/* ---- the model ---------------------------------------------------------------- */

static int open_device(predictor *p, int device)
{
    char err[1024];
    tlcl_cl_options o = tlcl_cl_options_default();
    o.device_index = device;
    if (tlcl_cl_init(&p->cl, &o, err, sizeof err) != TLCL_OK) {
        fprintf(stderr, "tlcl predict: cannot open the OpenCL device: %s\n", err);
        return -1;
    }
    if (tlcl_engine_init(&p->eng, p->cl) != TLCL_OK) {
        fprintf(stderr, "tlcl predict: %s\n", tlcl_cl_error(p->cl));
        return -1;
    }
    cli_report_tuning(p->eng);
    return 0;
}

/* The checkpoint's metadata says which model to build; then its weights. */
static int load_checkpoint(predictor *p, const char *path)
{
    tlcl_checkpoint *ck;
    tlcl_model_options o;
    char err[1024];
    if (tlcl_checkpoint_open(&ck, path, err, sizeof err) != TLCL_OK) {
        fprintf(stderr, "tlcl predict: %s\n", err);
        return -1;
    }
    int ok = tlcl_checkpoint_options(ck, &o, err, sizeof err) == TLCL_OK &&
             tlcl_model_build(&p->m, &o, err, sizeof err) == TLCL_OK;
    p->built = ok;
    if (ok && !p->m.include_top) {
        snprintf(err, sizeof err, "%s has no classifier (saved without top): nothing to predict", path);
        ok = 0;
    }
    if (ok && tlcl_model_alloc(&p->m, p->eng, 0) != TLCL_OK) {
        snprintf(err, sizeof err, "%s", tlcl_engine_error(p->eng));
        ok = 0;
    }
    ok = ok && tlcl_model_load(&p->m, ck, err, sizeof err) == TLCL_OK;
    tlcl_loss_spec loss = tlcl_loss_spec_default();
    ok = ok && tlcl_run_create(&p->run, &p->m, &loss, err, sizeof err) == TLCL_OK;
    if (ok)
        p->nnames = tlcl_checkpoint_class_names(ck, &p->names);
    tlcl_checkpoint_close(ck);
    if (!ok)
        fprintf(stderr, "tlcl predict: %s\n", err);
    return ok ? 0 : -1;
}

static void predictor_close(predictor *p)
{
    tlcl_run_free(p->run);
    if (p->built)
        tlcl_model_free(&p->m);
    for (int i = 0; i < p->nnames; i++)
        free(p->names[i]);
    free(p->names);
    if (p->eng)
        tlcl_engine_free(p->eng);
    if (p->cl)
        tlcl_cl_free(p->cl);
}

/* ---- CSV ------------------------------------------------------------------------ */

/* One row: the top classes by probability, ties to the lower index; then
 * the logits when asked (9 digits: a float's value survives the text). */
static void write_row(FILE *f, const predictor *p, const char *file, const float *prob, const float *logits, int top)
{
    int classes = p->m.classes;
    char *taken = calloc((size_t)classes, 1);
    textout_csv_field(f, file, ',');
    for (int k = 0; k < top && taken; k++) {
        int best = -1;
        for (int c = 0; c < classes; c++)
            if (!taken[c] && (best < 0 || prob[c] > prob[best]))
                best = c;
        taken[best] = 1;
        char fallback[32];
        snprintf(fallback, sizeof fallback, "class_%d", best);
        fputc(',', f);
        /* a checkpoint without (enough) names still predicts, by index */
        textout_csv_field(f, p->nnames == classes ? p->names[best] : fallback, ',');
        fprintf(f, ",%.6f", prob[best]);
    }
    for (int c = 0; logits && c < classes; c++)
        fprintf(f, ",%.9g", logits[c]);
    fputc('\n', f);
    free(taken);
}

/* ---- prediction ------------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* probs [n][classes] of n preprocessed-to-size images. */
static int run_batch(predictor *p, const float *pixels, int n, float *probs, float *logits)
{
    tlcl_run_input in = {.images = pixels, .count = n};
    tlcl_run_batch *b;
    tlcl_run_stats st;
    tlcl_status s = tlcl_run_load(p->run, &in, NULL, &b);
    if (s == TLCL_OK)
        s = tlcl_run_predict(p->run, b, probs);
    if (s == TLCL_OK)
        s = tlcl_run_sync(p->run, &st); /* the rows are written now */
    if (s == TLCL_OK && logits)
        s = tlcl_tensor_download(p->eng, tlcl_run_logits(p->run), logits);
    if (s != TLCL_OK)
        fprintf(stderr, "tlcl predict: %s\n", tlcl_run_error(p->run));
    return s == TLCL_OK ? 0 : -1;
}

/* What the rows depend on: a partial output is resumed only by the same
 * model file, --top and inputs (FNV-1a over them, in order). */
static void fingerprint(const predict_args *a, const file_list *files, char *out, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    char model[4096];
    const char *m = realpath(a->model, model) ? model : a->model;
    for (int i = -1; i < files->n; i++)
        for (const char *c = i < 0 ? m : files->v[i]; ; c++) {
            h = (h ^ (unsigned char)*c) * 1099511628211ULL;
            if (!*c)
                break;
        }
    snprintf(out, len, "top=%d logits=%d inputs=%d hash=%016llx", a->top, a->logits, files->n,
             (unsigned long long)h);
}

/* Where the rows go: stdout, or --out through a resumable partial file. */
typedef struct sink {
    FILE *f;
    tlcl_rcsv csv;
    int resumable;
    double last_commit;
} sink;

/* "file,class_1,prob_1,...[,logit_0,...]\n", malloc'd (NULL: out of memory). */
static char *csv_header(const predict_args *a, int classes)
{
    size_t len = 8 + (size_t)a->top * 32 + (a->logits ? (size_t)classes * 20 : 0), used = 0;
    char *h = malloc(len);
    if (!h)
        return NULL;
    used += (size_t)snprintf(h, len, "file");
    for (int i = 1; i <= a->top; i++)
        used += (size_t)snprintf(h + used, len - used, ",class_%d,prob_%d", i, i);
    for (int c = 0; a->logits && c < classes; c++)
        used += (size_t)snprintf(h + used, len - used, ",logit_%d", c);
    snprintf(h + used, len - used, "\n");
    return h;
}

static int sink_open(sink *k, const predict_args *a, const file_list *files, int classes, int *first)
{
    char err[4200], fp[256], *header = csv_header(a, classes);
    memset(k, 0, sizeof *k);
    *first = 0;
    if (!header) {
        fprintf(stderr, "tlcl predict: out of host memory\n");
        return -1;
    }
    if (!a->out) {
        k->f = stdout;
        int rc = fputs(header, stdout) >= 0 ? 0 : -1;
        free(header);
        return rc;
    }
    int resumed = 0;
    fingerprint(a, files, fp, sizeof fp);
    int opened = tlcl_rcsv_open(&k->csv, a->out, header, fp, first, &resumed, err, sizeof err);
    free(header);
    if (opened != 0) {
        fprintf(stderr, "tlcl predict: %s\n", err);
        return -1;
    }
    if (resumed)
        fprintf(stderr, "tlcl predict: resuming %s.partial at input %d of %d\n", a->out, *first + 1, files->n);
    k->f = k->csv.f;
    k->resumable = 1;
    return 0;
}

/* After the rows of every input before next: durable at most every half
 * second (and at the end), so a kill loses little and costs little. */
static int sink_commit(sink *k, int next, int last)
{
    char err[4200];
    if (!k->resumable || (!last && now_s() - k->last_commit < 0.5))
        return 0;
    k->last_commit = now_s();
    if (tlcl_rcsv_commit(&k->csv, next, err, sizeof err) == 0)
        return 0;
    fprintf(stderr, "tlcl predict: %s\n", err);
    return -1;
}

static int sink_close(sink *k, int ok)
{
    char err[4200];
    if (!k->resumable)
        return fflush(stdout) == 0 && ok ? 0 : -1;
    if (!ok) { /* the partial file stays for a rerun */
        tlcl_rcsv_close(&k->csv);
        return -1;
    }
    if (tlcl_rcsv_finish(&k->csv, err, sizeof err) == 0)
        return 0;
    fprintf(stderr, "tlcl predict: %s\n", err);
    return -1;
}

/* This rank's files: the global batches k = rank, rank + ranks, ... of
 * files[first..n) in batches of `batch` (malloc'd pointers into files). */
static const char **rank_files(const file_list *files, int first, int batch, int *count)
{
    int ranks = tlcl_dist_size(), rank = tlcl_dist_rank(), n = 0;
    const char **mine = malloc((size_t)(files->n - first + 1) * sizeof *mine);
    for (int i = first; mine && i < files->n; i++)
        if (((i - first) / batch) % ranks == rank)
            mine[n++] = files->v[i];
    *count = n;
    return mine;
}

/* This rank's batch of a round, as CSV rows in text (malloc'd, *len
 * bytes); *done counts the rows. 0, or -1 on an error (reported). */
static int classify_batch(predictor *p, tlcl_image_stream *st, const char **mine, const predict_args *a,
                          float *probs, float *logits, char **text, size_t *len, int *done)
{
    FILE *rows = open_memstream(text, len);
    const tlcl_image_batch *b = rows ? tlcl_image_stream_next(st) : NULL;
    int rc = rows ? 0 : -1;
    if (b && b->count > 0 && (rc = run_batch(p, b->pixels, b->count, probs, logits)) == 0)
        for (int j = 0; j < b->count; j++, (*done)++)
            write_row(rows, p, mine[b->file[j]], probs + (size_t)j * p->m.classes,
                      logits ? logits + (size_t)j * p->m.classes : NULL, a->top);
    if (rows)
        fclose(rows);
    if (!rows)
        fprintf(stderr, "tlcl predict: out of host memory\n");
    return rc;
}

/* Classifies files[first..), batch at a time, decoded ahead by a thread;
 * unreadable files are skipped with a warning. Each round, every rank
 * classifies its batch and rank 0 writes the round's rows (k: rank 0's
 * sink, NULL on the others). Returns the number predicted over the ranks,
 * or -1 on an error. */
static int predict_stream(predictor *p, const file_list *files, int first, const predict_args *a, sink *k)
{
    int ranks = tlcl_dist_size(), rank = tlcl_dist_rank(), B = a->batch, nmine = 0;
    int nbatches = (files->n - first + B - 1) / B, rounds = (nbatches + ranks - 1) / ranks;
    tlcl_image_stream *st = NULL;
    const char **mine = rank_files(files, first, B, &nmine);
    float *probs = malloc((size_t)B * p->m.classes * sizeof *probs);
    float *logits = a->logits ? malloc((size_t)B * p->m.classes * sizeof *logits) : NULL;
    if (!mine || !probs || (a->logits && !logits) ||
        tlcl_image_stream_open(&st, mine, nmine, 0, p->m.image_h, p->m.image_w, B)) {
        fprintf(stderr, "tlcl predict: out of host memory\n");
        free(mine), free(probs), free(logits);
        return -1;
    }
    int done = 0, rc = 0;
    for (int j = 0; rc == 0 && j < rounds; j++) {
        char *text = NULL, *all = NULL, err[600];
        size_t len = 0, all_len = 0;
        if (j * ranks + rank < nbatches) /* the last round may leave some ranks without a batch */
            rc = classify_batch(p, st, mine, a, probs, logits, &text, &len, &done);
        if (rc == 0 && tlcl_dist_gather_bytes(text ? text : "", len, &all, &all_len, err, sizeof err) != TLCL_OK) {
            fprintf(stderr, "tlcl predict: %s\n", err);
            rc = -1;
        }
        if (rc == 0 && k && fwrite(all, 1, all_len, k->f) != all_len)
            rc = -1;
        int next = first + (j + 1) * ranks * B;
        if (rc == 0 && k)
            rc = sink_commit(k, next < files->n ? next : files->n, j == rounds - 1);
        free(text), free(all);
    }
    tlcl_image_stream_close(st);
    free(mine), free(probs), free(logits);
    double total = done;
    char err[600];
    if (rc == 0 && tlcl_dist_sum_doubles(&total, 1, err, sizeof err) != TLCL_OK) {
        fprintf(stderr, "tlcl predict: %s\n", err);
        rc = -1;
    }
    return rc == 0 ? (int)total : -1;
}

static int predict(predict_args *a, int device, const file_list *files)
{
    predictor p;
    memset(&p, 0, sizeof p);
    int rc = 1, root = tlcl_dist_is_root();
    if (open_device(&p, device) == 0 && load_checkpoint(&p, a->model) == 0) {
        sink k;
        int first = 0;
        if (!a->top) /* the default: as many as there are, up to TOP_DEFAULT */
            a->top = p.m.classes < TOP_DEFAULT ? p.m.classes : TOP_DEFAULT;
        if (a->top > p.m.classes) {
            fprintf(stderr, "tlcl predict: --top %d exceeds the model's %d classes\n", a->top, p.m.classes);
        } else if (!root || sink_open(&k, a, files, p.m.classes, &first) == 0) { /* rank 0 writes */
            first = tlcl_dist_bcast_int(first); /* a resumed partial output: every rank starts there */
            double t0 = now_s();
            int done = predict_stream(&p, files, first, a, root ? &k : NULL);
            double dt = now_s() - t0;
            if (root && done == 0 && first == 0)
                fprintf(stderr, "tlcl predict: none of the %d inputs could be read\n", files->n);
            else if (root && done >= 0)
                fprintf(stderr, "tlcl predict: %d images in %.1f s (%.1f img/s)\n", done, dt, dt > 0 ? done / dt : 0);
            int ok = done > 0 || (done == 0 && first > 0);
            rc = (root ? sink_close(&k, ok) == 0 : done >= 0) ? 0 : 1;
        }
    }
    predictor_close(&p);
    return rc;
}

/* mkdir -p of the folder --out FILE goes into. */
static int make_out_dir(const char *out)
{
    const char *slash = strrchr(out, '/');
    char dir[4096], err[4400];
    if (!slash || slash == out)
        return 0;
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - out), out);
    if (tlcl_mkdir_p(dir, err, sizeof err) == 0)
        return 0;
    fprintf(stderr, "tlcl predict: --out %s: %s\n", out, err);
    return -1;
}

int cmd_predict(int argc, char **argv)
{
    predict_args a;
    cli_args c;
    file_list files = {0};
    if (parse_args(argc, argv, &a, &c))
        return c.status;
    int rc = 0, device = cli_device(&c);
    if (device == -2)
        rc = 2;
    if (rc == 0 && access(a.model, R_OK) != 0) {
        fprintf(stderr, "tlcl predict: cannot read the model %s\n", a.model);
        rc = 1;
    }
    if (rc == 0 && collect_inputs(&a, &files) != 0)
        rc = 1;
    if (rc == 0 && files.n == 0) {
        fprintf(stderr, "tlcl predict: no images found (directories are searched for .jpg .jpeg .png .bmp .gif)\n");
        rc = 1;
    }
    if (rc == 0 && a.out && tlcl_dist_is_root() && make_out_dir(a.out) != 0)
        rc = 1;
    if (rc == 0)
        rc = predict(&a, device, &files);
    list_free(&files);
    return rc;
}
