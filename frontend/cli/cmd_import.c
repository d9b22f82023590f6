/* cmd_import.c — `tlcl import --from keras FILE --arch ARCH [--classes N]
 * [--size S] [--no-top] -o OUT.safetensors`: converts Keras weights
 * (.weights.h5, .keras, legacy .h5) into a tlcl checkpoint. Runs on the
 * host alone: a conversion needs no OpenCL device. */
#include "commands.h"
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct import_args {
    const char *from, *file, *arch, *out;
    int classes, size, no_top;
} import_args;

CLI_COMMAND(cli_import, "import", "FILE", 1, 1,
    "Convert Keras weights (.weights.h5, .keras, legacy .h5) into a tlcl checkpoint.",
    CLI_TEXT_OPT("from", "FORMAT", "the file's format: keras (required)"),
    CLI_TEXT_OPT("arch", "ARCH", "the architecture, as `tlcl summary` names it (required)"),
    CLI_INT_OPT("classes", "N", 1, 1000000, "classes of the classifier (default: the file's predictions layer)"),
    CLI_INT_OPT("size", "S", 32, 8192, "input size recorded in the checkpoint"),
    CLI_FLAG_OPT("no-top", "without the classifier"),
    CLI_SHORT_OPT("output", 'o', CLI_TEXT, "OUT.safetensors", "the tlcl checkpoint to write (required)"));

/* 0 to go on; 1 to stop with c->status (--help, a usage error). */
static int parse_args(int argc, char **argv, import_args *a, cli_args *c)
{
    if (cli_parse(&cli_import, argc, argv, c))
        return 1;
    *a = (import_args){cli_value(c, "from"), c->operands[0], cli_value(c, "arch"), cli_value(c, "output"),
                       (int)cli_number(c, "classes", 0), (int)cli_number(c, "size", 0), cli_flag(c, "no-top")};
    if (a->from && strcmp(a->from, "keras") != 0)
        c->status = cli_usage_error(c, "only --from keras is supported, got '%s'", a->from);
    else if (!a->from || !a->arch || !a->out)
        c->status = cli_usage_error(c, "--from, --arch and -o are required");
    return c->status != 0;
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
    cli_args c;
    if (parse_args(argc, argv, &a, &c))
        return c.status;
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
