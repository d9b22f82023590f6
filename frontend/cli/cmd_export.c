/* cmd_export.c — `tlcl export --to keras CKPT -o FILE.weights.h5`: a tlcl
 * checkpoint as a Keras 3 weights file, for model.load_weights() in Keras
 * (the Keras model it fits is described in models/keras_export.c and in
 * the README). The reverse of `tlcl import`; runs on the host alone. */
#include "commands.h"
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

CLI_COMMAND(cli_export, "export", "CKPT", 1, 1,
    "Write a tlcl checkpoint's weights as a Keras 3 weights file (.weights.h5) for model.load_weights().",
    CLI_TEXT_OPT("to", "FORMAT", "the format to write: keras (required)"),
    CLI_SHORT_OPT("output", 'o', CLI_TEXT, "FILE.weights.h5",
                  "the file to write (required); FILE.keras: the same weights in a .keras archive"));

/* The model a checkpoint holds, built on the host with its weights in host. */
static int load(const char *path, tlcl_model *m, float **host, char *err, size_t len)
{
    tlcl_checkpoint *c = NULL;
    tlcl_model_options o;
    tlcl_status s = tlcl_checkpoint_open(&c, path, err, len);
    if (s == TLCL_OK)
        s = tlcl_checkpoint_options(c, &o, err, len);
    if (s == TLCL_OK)
        s = tlcl_model_build(m, &o, err, len);
    if (s == TLCL_OK) {
        tlcl_params_layout(&m->params, 1);
        *host = calloc(m->params.total ? m->params.total : 1, sizeof **host);
        s = *host ? tlcl_model_load_host(m, c, *host, err, len) : TLCL_ERR_OOM;
        if (s == TLCL_ERR_OOM)
            snprintf(err, len, "out of host memory reading %s", path);
    }
    tlcl_checkpoint_close(c);
    return s == TLCL_OK ? 0 : -1;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

int cmd_export(int argc, char **argv)
{
    cli_args a;
    if (cli_parse(&cli_export, argc, argv, &a))
        return a.status;
    const char *to = cli_value(&a, "to"), *out = cli_value(&a, "output");
    if (!to || !out)
        return cli_usage_error(&a, "--to keras and -o FILE are required");
    if (strcmp(to, "keras") != 0)
        return cli_usage_error(&a, "only --to keras is supported, got '%s'", to);
    if (!has_suffix(out, ".weights.h5") && !has_suffix(out, ".keras"))
        return cli_usage_error(&a, "-o %s: Keras 3 loads weights from a file named *.weights.h5 or *.keras", out);
    tlcl_model m;
    memset(&m, 0, sizeof m);
    float *host = NULL;
    char err[4200];
    int rc = load(a.operands[0], &m, &host, err, sizeof err) ||
             tlcl_model_export_keras(&m, host, out, err, sizeof err) != TLCL_OK;
    if (rc)
        fprintf(stderr, "tlcl export: %s\n", err);
    else
        printf("%s -> %s: %s, input %d, %s%d classes (%s layout)\n", a.operands[0], out, m.arch.name, m.size,
               m.include_top ? "" : "no top, ", m.include_top ? m.classes : 0,
               m.include_top && m.nhead > 1 ? "keras.Sequential, base under 'functional'" : "keras.applications");
    free(host);
    if (m.params.entries)
        tlcl_model_free(&m);
    return rc;
}
