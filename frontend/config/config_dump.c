/* config_dump.c — the configuration written as YAML, walking the schema:
 * the effective values (tlcl_config_dump, read back unchanged by
 * tlcl_config_load) or the commented defaults (config/default.yaml). */
#include "config_schema.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void put_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(f, "\\x%02x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

/* Shortest form that reads back as the same double. */
static void put_double(FILE *f, double v)
{
    char buf[40];
    if (isnan(v)) {
        fputs("~", f);
        return;
    }
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    fputs(buf, f);
}

static void put_text(FILE *f, const char *s, int nullable)
{
    if (!s[0] && nullable)
        fputs("~", f);
    else
        put_quoted(f, s);
}

static void put_metrics(FILE *f, const tlcl_config *c)
{
    fputc('[', f);
    for (int i = 0; i < c->metrics_count; i++) {
        const tlcl_metric *m = &c->metrics[i];
        if (m->kind == TLCL_METRIC_TOP_K)
            fprintf(f, "%s{top_k_accuracy: %d}", i ? ", " : "", m->k);
        else
            fprintf(f, "%s%s", i ? ", " : "", cfg_metric_names[m->kind]);
    }
    fputc(']', f);
}

static void put_class_weight(FILE *f, const tlcl_config *c)
{
    if (c->class_weight.kind != TLCL_CW_MAP) {
        fputs(c->class_weight.kind == TLCL_CW_BALANCED ? "balanced" : "none", f);
        return;
    }
    fputc('{', f);
    for (int i = 0; i < c->class_weight.count; i++) {
        fputs(i ? ", " : "", f);
        put_quoted(f, c->class_weight.names[i]);
        fputs(": ", f);
        put_double(f, c->class_weight.weights[i]);
    }
    fputc('}', f);
}

static void put_groups(FILE *f, const tlcl_config *c)
{
    const __typeof__(c->metric_groups) *mg = &c->metric_groups;
    fputc('{', f);
    for (int g = 0; g < mg->count; g++) {
        fprintf(f, "%s%s: [", g ? ", " : "", mg->name[g]);
        for (int i = 0, first = 1; i < mg->nmembers; i++)
            if (mg->member_group[i] == g) {
                fputs(first ? "" : ", ", f);
                put_quoted(f, mg->member[i]);
                first = 0;
            }
        fputc(']', f);
    }
    fputc('}', f);
}

static void put_phases(FILE *f, const tlcl_config *c, int indent)
{
    if (!c->phases_count) {
        fputs("[]", f);
        return;
    }
    for (int i = 0; i < c->phases_count; i++)
        for (size_t j = 0; j < cfg_nphase_keys; j++) {
            fprintf(f, "\n%*s%s %s: ", indent, "", j ? " " : "-", cfg_phase_keys[j].key);
            cfg_dump_value(f, &cfg_phase_keys[j], &c->phases[i], indent + 2);
        }
}

/* [a, b, c]; a single float alone (focal alpha for every class). */
static void put_number_list(FILE *f, const void *field, int count, int is_int)
{
    if (!is_int && count == 1) {
        put_double(f, *(const double *)field);
        return;
    }
    fputc('[', f);
    for (int i = 0; i < count; i++) {
        fputs(i ? ", " : "", f);
        if (is_int)
            fprintf(f, "%d", ((const int *)field)[i]);
        else
            put_double(f, ((const double *)field)[i]);
    }
    fputc(']', f);
}

void cfg_dump_value(FILE *f, const cfg_key *k, const void *base, int indent)
{
    const char *field = (const char *)base + k->offset;
    const int *ints = (const int *)field, *count = (const int *)((const char *)base + k->count_offset);
    switch (k->type) {
    case CFG_INT:
        if (*ints < 0 && (k->flags & CFG_NULLABLE))
            fputs("~", f);
        else
            fprintf(f, "%d", *ints);
        break;
    case CFG_FLOAT:
        put_double(f, *(const double *)field);
        break;
    case CFG_BOOL:
        fputs(*ints ? "true" : "false", f);
        break;
    case CFG_STR:
    case CFG_PATH:
        put_text(f, field, (k->flags & CFG_NULLABLE) != 0);
        break;
    case CFG_ENUM:
        fputs(k->names[*ints], f);
        break;
    case CFG_INT_LIST:
    case CFG_FLOAT_LIST:
        put_number_list(f, field, *count, k->type == CFG_INT_LIST);
        break;
    case CFG_SAVE_FREQ:
        *ints ? fprintf(f, "%d", *ints) : fputs("epoch", f);
        break;
    case CFG_WEIGHTS: {
        const tlcl_config *c = base;
        if (c->model.weights_kind == TLCL_WEIGHTS_FILE)
            put_quoted(f, field);
        else
            fputs(c->model.weights_kind == TLCL_WEIGHTS_IMAGENET ? "imagenet" : "~", f);
        break;
    }
    case CFG_CLASS_WEIGHT:
        put_class_weight(f, base);
        break;
    case CFG_METRICS:
        put_metrics(f, base);
        break;
    case CFG_PHASES:
        put_phases(f, base, indent);
        break;
    case CFG_GROUPS:
        put_groups(f, base);
        break;
    }
}

/* Opens the sections of `key` that `prev` did not have; returns the depth
 * (indentation level) of the leaf and points *leaf at its name. */
static int open_sections(FILE *f, const char *prev, const char *key, const char **leaf, int blank)
{
    int depth = 0;
    const char *s = key;
    size_t common = 0;
    /* length of the shared section prefix (whole segments) */
    for (size_t i = 0; prev && prev[i] && prev[i] == key[i]; i++)
        if (key[i] == '.')
            common = i + 1;
    for (const char *dot; (dot = strchr(s, '.')); s = dot + 1, depth++) {
        if ((size_t)(dot - key) < common)
            continue;
        if (depth == 0 && blank)
            fputc('\n', f);
        fprintf(f, "%*s%.*s:\n", 2 * depth, "", (int)(dot - s), s);
    }
    if (depth == 0 && blank && prev)
        fputc('\n', f);
    *leaf = s;
    return depth;
}

void tlcl_config_dump(const tlcl_config *c, FILE *f)
{
    fprintf(f, "# tlcl effective configuration%s%s\n", c->source[0] ? " from " : "", c->source);
    const char *prev = NULL, *leaf;
    for (size_t i = 0; i < cfg_nkeys; i++) {
        int depth = open_sections(f, prev, cfg_keys[i].key, &leaf, 0);
        int block = cfg_keys[i].type == CFG_PHASES && c->phases_count; /* starts on the next line */
        fprintf(f, "%*s%s:%s", 2 * depth, "", leaf, block ? "" : " ");
        cfg_dump_value(f, &cfg_keys[i], c, 2 * depth);
        fputc('\n', f);
        prev = cfg_keys[i].key;
    }
}

static void put_doc(FILE *f, const char *doc, int depth)
{
    for (const char *s = doc; *s;) {
        const char *nl = strchr(s, '\n');
        int n = nl ? (int)(nl - s) : (int)strlen(s);
        fprintf(f, "%*s# %.*s\n", 2 * depth, "", n, s);
        s += n + (nl != NULL);
    }
}

void tlcl_config_print_default(FILE *f)
{
    fputs("# tlcl training configuration: every key with its default and meaning.\n"
          "# Generated by `tlcl config default` from the schema (frontend/config/config_schema.c);\n"
          "# tests/test_host_config.c checks this file is up to date.\n"
          "#\n"
          "# Relative paths resolve against the directory of this file; the file names of\n"
          "# train.artefacts, train.metrics and train.records against their section's base_dir.\n"
          "# {DATE} in any path becomes the run's start time, YYYY-MM-DD_HH-MM-SS.\n"
          "# ~ is null. Override any key on the command line with --set key.path=value.\n",
          f);
    const char *prev = NULL, *leaf;
    for (size_t i = 0; i < cfg_nkeys; i++) {
        const cfg_key *k = &cfg_keys[i];
        int depth = open_sections(f, prev, k->key, &leaf, 1);
        put_doc(f, k->doc, depth);
        fprintf(f, "%*s%s: ", 2 * depth, "", leaf);
        if ((k->type == CFG_STR || k->type == CFG_PATH) && strcmp(k->def, "~") != 0)
            put_quoted(f, k->def);
        else
            fputs(k->def, f);
        fputc('\n', f);
        prev = k->key;
    }
    fputs("\n# `tlcl grid` (README.md, \"Grid search\"): lists of values for any key path above, one run\n"
          "# per combination in <dir>/run-NNN-<key=value...>, ranked by metric at each run's best epoch;\n"
          "# `tlcl train` ignores this section.\n"
          "# grid:\n"
          "#   dir: grid                       # relative to this file\n"
          "#   metric: val_balanced_accuracy   # a key of the runs' histories\n"
          "#   mode: auto                      # max, min; auto: min when the metric names a loss\n"
          "#   sample: 0                       # 0: every combination; N: N combinations drawn by seed\n"
          "#   seed: 0\n"
          "#   params:\n"
          "#     optimizer.learning_rate: [1e-3, 1e-4]\n"
          "#     loss.gamma: [1.0, 2.0]\n"
          "#     model.head.units: [[256], [512, 256]]\n",
          f);
}
