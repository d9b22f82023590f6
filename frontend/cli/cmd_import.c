/* cmd_import.c — `tlcl import --from keras FILE --arch ARCH [--classes N]
 * [--size S] [--no-top] -o OUT.safetensors`: converts Keras weights
 * (.weights.h5, .keras, legacy .h5) into a tlcl checkpoint. Runs on the
 * host alone: a conversion needs no OpenCL device. */
#include "commands.h"
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USAGE \
    "usage: tlcl import --from keras FILE --arch ARCH [--classes N] [--size S] [--no-top] -o OUT.safetensors\n"

typedef struct import_args {
    const char *from, *file, *arch, *out;
    int classes, size, no_top;
} import_args;

static int parse_int(const char *flag, const char *v, int lo, int hi, int *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < lo || n > hi) {
        fprintf(stderr, "tlcl import: %s expects an integer in [%d, %d], got '%s'\n", flag, lo, hi, v);
        return -1;
    }
    *out = (int)n;
    return 0;
}

/* "--flag=value" or "--flag value"; NULL when argv[*i] is not this flag. */
static const char *flag_value(int argc, char **argv, int *i, const char *flag)
{
    size_t k = strlen(flag);
    if (strncmp(argv[*i], flag, k) != 0)
        return NULL;
    if (argv[*i][k] == '=')
        return argv[*i] + k + 1;
    if (argv[*i][k] == '\0' && *i + 1 < argc)
        return argv[++*i];
    return NULL;
}

static int parse_args(int argc, char **argv, import_args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (strcmp(argv[i], "--no-top") == 0)
            a->no_top = 1;
        else if ((v = flag_value(argc, argv, &i, "--from")))
            a->from = v;
        else if ((v = flag_value(argc, argv, &i, "--arch")))
            a->arch = v;
        else if ((v = flag_value(argc, argv, &i, "-o")) || (v = flag_value(argc, argv, &i, "--output")))
            a->out = v;
        else if ((v = flag_value(argc, argv, &i, "--classes"))) {
            if (parse_int("--classes", v, 1, 1000000, &a->classes))
                return -1;
        } else if ((v = flag_value(argc, argv, &i, "--size"))) {
            if (parse_int("--size", v, 32, 8192, &a->size))
                return -1;
        } else if (argv[i][0] != '-' && !a->file)
            a->file = argv[i];
        else {
            fprintf(stderr, "tlcl import: unexpected argument '%s'\n" USAGE, argv[i]);
            return -1;
        }
    }
    if (!a->from || strcmp(a->from, "keras") != 0 || !a->file || !a->arch || !a->out) {
        fprintf(stderr, "tlcl import: %s\n" USAGE,
                a->from && strcmp(a->from, "keras") != 0 ? "only --from keras is supported"
                                                         : "--from, FILE, --arch and -o are required");
        return -1;
    }
    return 0;
}

/* Builds the model the file fits: classes from the file's classifier unless given. */
static int build_model(const import_args *a, tlcl_keras_weights *w, tlcl_model *m)
{
    tlcl_model_options o = tlcl_model_options_default();
    o.arch = a->arch;
    o.size = a->size;
    o.include_top = !a->no_top;
    o.classes = a->classes ? a->classes : tlcl_keras_classes(w);
    if (o.include_top && o.classes == 0) {
        fprintf(stderr, "tlcl import: %s has no 'predictions' layer to take the classifier from; pass --no-top\n",
                a->file);
        return -1;
    }
    char err[1024];
    if (tlcl_model_build(m, &o, err, sizeof err) != TLCL_OK) {
        fprintf(stderr, "tlcl import: %s\n", err);
        return -1;
    }
    tlcl_params_layout(&m->params, 1);
    return 0;
}

static int convert(const import_args *a, tlcl_keras_weights *w, tlcl_model *m)
{
    char err[1024], unused[1024];
    float *host = calloc(m->params.total ? m->params.total : 1, sizeof *host);
    if (!host) {
        fprintf(stderr, "tlcl import: out of memory\n");
        return 1;
    }
    int rc = 1;
    if (tlcl_model_import_keras_host(m, w, host, err, sizeof err) != TLCL_OK ||
        tlcl_model_save_host(m, host, a->out, NULL, 0, err, sizeof err) != TLCL_OK) {
        fprintf(stderr, "tlcl import: %s\n", err);
    } else {
        int n = tlcl_keras_unused(w, unused, sizeof unused);
        if (n)
            fprintf(stderr, "tlcl import: warning: %d layer(s) of %s not used by %s: %s\n", n, a->file,
                    m->arch.name, unused);
        tlcl_param_totals t = tlcl_model_count(m);
        char top[32] = "no top";
        if (m->include_top)
            snprintf(top, sizeof top, "%d classes", m->classes);
        printf("%s (%s) -> %s: %s, input %d, %s, %zu parameters\n", a->file, tlcl_keras_format(w), a->out,
               m->arch.name, m->size, top, t.total);
        printf("preprocessing: x * [%g %g %g] + [%g %g %g]\n", m->pre_scale[0], m->pre_scale[1], m->pre_scale[2],
               m->pre_shift[0], m->pre_shift[1], m->pre_shift[2]);
        rc = 0;
    }
    free(host);
    return rc;
}

int cmd_import(int argc, char **argv)
{
    import_args a;
    if (parse_args(argc, argv, &a))
        return 2;
    tlcl_keras_weights *w = NULL;
    char err[1024];
    if (tlcl_keras_open(&w, a.file, err, sizeof err) != TLCL_OK) {
        fprintf(stderr, "tlcl import: %s\n", err);
        return 1;
    }
    tlcl_model m;
    memset(&m, 0, sizeof m);
    int rc = build_model(&a, w, &m) ? 1 : convert(&a, w, &m);
    if (m.params.entries)
        tlcl_model_free(&m);
    tlcl_keras_close(w);
    return rc;
}
