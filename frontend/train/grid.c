/* grid.c — see grid.h. */
#define _GNU_SOURCE
#include "grid.h"

#include "mt19937.h"
#include "plot.h"
#include "textout.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

/* ---- the section ---------------------------------------------------------- */

static int fail(char *err, size_t len, const char *file, const yaml_node_t *n, const char *fmt, const char *a,
                const char *b)
{
    char msg[1024];
    snprintf(msg, sizeof msg, fmt, a ? a : "", b ? b : "");
    snprintf(err, len, "%s:%d: %s", file, n ? (int)n->start_mark.line + 1 : 1, msg);
    return -1;
}

/* A value node as the text --set takes: scalars as they are, sequences and
 * mappings as YAML flow text. */
static void flow_text(yaml_document_t *d, yaml_node_t *n, char *dst, size_t len)
{
    size_t used = strlen(dst);
    if (!n || used >= len)
        return;
    if (n->type == YAML_SCALAR_NODE) {
        snprintf(dst + used, len - used, "%s", (const char *)n->data.scalar.value);
    } else if (n->type == YAML_SEQUENCE_NODE) {
        snprintf(dst + used, len - used, "[");
        for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
            if (i > n->data.sequence.items.start)
                strncat(dst, ", ", len - strlen(dst) - 1);
            flow_text(d, yaml_document_get_node(d, *i), dst, len);
        }
        strncat(dst, "]", len - strlen(dst) - 1);
    } else if (n->type == YAML_MAPPING_NODE) {
        snprintf(dst + used, len - used, "{");
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
            if (p > n->data.mapping.pairs.start)
                strncat(dst, ", ", len - strlen(dst) - 1);
            flow_text(d, yaml_document_get_node(d, p->key), dst, len);
            strncat(dst, ": ", len - strlen(dst) - 1);
            flow_text(d, yaml_document_get_node(d, p->value), dst, len);
        }
        strncat(dst, "}", len - strlen(dst) - 1);
    }
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int load_params(tlcl_grid_spec *g, yaml_document_t *d, yaml_node_t *map, char *err, size_t len)
{
    const char *f = g->source;
    if (map->type != YAML_MAPPING_NODE)
        return fail(err, len, f, map, "grid.params: expected a mapping of key paths to lists of values, e.g. "
                                      "{optimizer.learning_rate: [1e-3, 1e-4], loss.gamma: [1.0, 2.0]}", 0, 0);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(d, p->key), *v = yaml_document_get_node(d, p->value);
        const char *name = scalar(k);
        if (!name || strlen(name) >= sizeof g->key[0])
            return fail(err, len, f, k, "grid.params: keys are configuration key paths such as "
                                        "optimizer.learning_rate", 0, 0);
        if (g->nkeys == TLCL_GRID_MAX_KEYS)
            return fail(err, len, f, k, "grid.params: more than 16 keys: vary fewer keys per grid", 0, 0);
        for (int i = 0; i < g->nkeys; i++)
            if (strcmp(g->key[i], name) == 0)
                return fail(err, len, f, k, "grid.params.%s: given twice: merge the two lists", name, 0);
        if (!v || v->type != YAML_SEQUENCE_NODE || v->data.sequence.items.top == v->data.sequence.items.start)
            return fail(err, len, f, v ? v : k,
                        "grid.params.%s: expected a non-empty list of values, e.g. [1e-3, 1e-4] (a list value "
                        "itself is written as a nested list: [[64], [128, 64]])", name, 0);
        int kk = g->nkeys++;
        snprintf(g->key[kk], sizeof g->key[kk], "%s", name);
        for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
            if (g->nvalues[kk] == TLCL_GRID_MAX_VALUES)
                return fail(err, len, f, v, "grid.params.%s: more than 64 values: give fewer", name, 0);
            char *dst = g->value[kk][g->nvalues[kk]++];
            dst[0] = '\0';
            flow_text(d, yaml_document_get_node(d, *i), dst, TLCL_GRID_VALUE_MAX);
            if (strlen(dst) >= TLCL_GRID_VALUE_MAX - 1)
                return fail(err, len, f, v, "grid.params.%s: a value longer than 255 characters", name, 0);
        }
    }
    if (g->nkeys == 0)
        return fail(err, len, f, map, "grid.params is empty: give at least one key path with a list of values", 0,
                    0);
    return 0;
}

static int load_section(tlcl_grid_spec *g, yaml_document_t *d, yaml_node_t *sec, const char *base, char *err,
                        size_t len)
{
    const char *f = g->source, *mode = "auto";
    if (sec->type != YAML_MAPPING_NODE)
        return fail(err, len, f, sec, "grid: expected a mapping (dir, metric, mode, sample, seed, params)", 0, 0);
    if (snprintf(g->dir, sizeof g->dir, "%s/grid", base) >= (int)sizeof g->dir)
        return fail(err, len, f, sec, "grid.dir: the path is too long", 0, 0);
    yaml_node_t *params = NULL;
    for (yaml_node_pair_t *p = sec->data.mapping.pairs.start; p < sec->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(d, p->key), *v = yaml_document_get_node(d, p->value);
        const char *name = scalar(k), *text = scalar(v);
        char *end = NULL;
        if (!name)
            return fail(err, len, f, k, "grid: keys must be plain names", 0, 0);
        if (strcmp(name, "params") == 0) {
            params = v;
            continue;
        }
        if (!text)
            return fail(err, len, f, v, "grid.%s: expected a single value", name, 0);
        if (strcmp(name, "dir") == 0) {
            int w = text[0] == '/' ? snprintf(g->dir, sizeof g->dir, "%s", text)
                                   : snprintf(g->dir, sizeof g->dir, "%s/%s", base, text);
            if (w >= (int)sizeof g->dir)
                return fail(err, len, f, v, "grid.dir: the path '%s' is too long", text, 0);
        } else if (strcmp(name, "metric") == 0) {
            snprintf(g->metric, sizeof g->metric, "%s", text);
        } else if (strcmp(name, "mode") == 0) {
            if (strcmp(text, "auto") && strcmp(text, "max") && strcmp(text, "min"))
                return fail(err, len, f, v, "grid.mode: '%s' is not one of auto, max, min", text, 0);
            mode = strcmp(text, "max") == 0 ? "max" : strcmp(text, "min") == 0 ? "min" : "auto";
        } else if (strcmp(name, "sample") == 0 || strcmp(name, "seed") == 0) {
            long x = strtol(text, &end, 10);
            if (!*text || *end || x < 0 || x > 2147483647L)
                return fail(err, len, f, v, "grid.%s: expected a non-negative integer, got '%s'", name, text);
            if (name[1] == 'a')
                g->sample = (int)x;
            else
                g->seed = (unsigned)x;
        } else {
            return fail(err, len, f, k,
                        "unknown key 'grid.%s' (grid keys: dir, metric, mode, sample, seed, params)", name, 0);
        }
    }
    if (!params)
        return fail(err, len, f, sec, "grid.params is missing: give the key paths to vary with their lists of "
                                      "values, e.g. params: {optimizer.learning_rate: [1e-3, 1e-4]}", 0, 0);
    g->maximize = strcmp(mode, "auto") ? strcmp(mode, "max") == 0 : strstr(g->metric, "loss") == NULL;
    return load_params(g, d, params, err, len);
}

int tlcl_grid_load(tlcl_grid_spec *g, const char *config_path, char *err, size_t len)
{
    memset(g, 0, sizeof *g);
    snprintf(g->metric, sizeof g->metric, "val_balanced_accuracy");
    char abs[PATH_MAX];
    FILE *fp = fopen(config_path, "rb");
    if (!fp || !realpath(config_path, abs)) {
        snprintf(err, len, "%s: cannot open the configuration file", config_path);
        if (fp)
            fclose(fp);
        return -1;
    }
    if (snprintf(g->source, sizeof g->source, "%s", abs) >= (int)sizeof g->source) {
        snprintf(err, len, "%s: path too long", config_path);
        fclose(fp);
        return -1;
    }
    char base[TLCL_CFG_PATH_MAX];
    memcpy(base, g->source, sizeof base);
    char *slash = strrchr(base, '/');
    if (slash)
        *(slash == base ? slash + 1 : slash) = '\0';
    yaml_parser_t p;
    yaml_document_t d;
    if (!yaml_parser_initialize(&p)) {
        fclose(fp);
        snprintf(err, len, "out of memory");
        return -1;
    }
    yaml_parser_set_input_file(&p, fp);
    int rc = -1;
    if (!yaml_parser_load(&p, &d)) {
        snprintf(err, len, "%s:%d: %s", g->source, (int)p.problem_mark.line + 1,
                 p.problem ? p.problem : "YAML error");
    } else {
        yaml_node_t *root = yaml_document_get_root_node(&d), *sec = NULL;
        if (root && root->type == YAML_MAPPING_NODE)
            for (yaml_node_pair_t *q = root->data.mapping.pairs.start; q < root->data.mapping.pairs.top; q++) {
                const char *name = scalar(yaml_document_get_node(&d, q->key));
                if (name && strcmp(name, "grid") == 0)
                    sec = yaml_document_get_node(&d, q->value);
            }
        if (!sec)
            snprintf(err, len,
                     "%s: no `grid:` section: add one with the key paths to vary, e.g.\n"
                     "grid:\n  params:\n    optimizer.learning_rate: [1e-3, 1e-4]\n    loss.gamma: [1.0, 2.0]\n"
                     "(see README.md, \"Grid search\")",
                     g->source);
        else
            rc = load_section(g, &d, sec, base, err, len);
        yaml_document_delete(&d);
    }
    yaml_parser_delete(&p);
    fclose(fp);
    return rc;
}

/* ---- the runs --------------------------------------------------------------- */

static void decode(const tlcl_grid_spec *g, long index, int *choice)
{
    for (int k = g->nkeys - 1; k >= 0; k--) {
        choice[k] = (int)(index % g->nvalues[k]);
        index /= g->nvalues[k];
    }
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

int tlcl_grid_runs(const tlcl_grid_spec *g, int *choice, int max_runs, char *err, size_t len)
{
    long total = 1;
    for (int k = 0; k < g->nkeys; k++) {
        total *= g->nvalues[k];
        if (total > 100000000L)
            break;
    }
    long n = g->sample > 0 && g->sample < total ? g->sample : total;
    if (n > max_runs) {
        snprintf(err, len, "%s: grid.params make %ld runs (more than %d): set grid.sample to draw fewer, or vary "
                           "fewer values", g->source, n, max_runs);
        return -1;
    }
    if (n == total) {
        for (long r = 0; r < n; r++)
            decode(g, r, choice + r * g->nkeys);
        return (int)n;
    }
    /* n distinct combinations drawn by the seed (rejection of repeats), kept in order */
    long *pick = malloc((size_t)n * sizeof *pick);
    if (!pick) {
        snprintf(err, len, "out of memory");
        return -1;
    }
    tlcl_mt19937 mt;
    tlcl_mt19937_seed(&mt, g->seed);
    for (long i = 0; i < n;) {
        uint64_t hi = tlcl_mt19937_next(&mt), lo = tlcl_mt19937_next(&mt);
        long r = (long)(((hi << 32) | lo) % (uint64_t)total), dup = 0;
        for (long j = 0; j < i && !dup; j++)
            dup = pick[j] == r;
        if (!dup)
            pick[i++] = r;
    }
    qsort(pick, (size_t)n, sizeof *pick, cmp_long);
    for (long r = 0; r < n; r++)
        decode(g, pick[r], choice + r * g->nkeys);
    free(pick);
    return (int)n;
}

/* A value as a folder name's part: brackets, braces and spaces dropped,
 * other characters outside [A-Za-z0-9.+-] become '-'; "none" when empty. */
static void name_part(const char *v, char *dst, size_t len)
{
    size_t n = 0;
    for (; *v && n + 1 < len; v++) {
        char c = *v;
        if (strchr("[]{} \"'", c))
            continue;
        int keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                   c == '+' || c == '-';
        dst[n++] = keep ? c : '-';
    }
    dst[n] = '\0';
    if (!n)
        snprintf(dst, len, "none");
}

void tlcl_grid_run_name(const tlcl_grid_spec *g, const int *choice, int run, char *dst, size_t len)
{
    char sum[96] = "";
    for (int k = 0; k < g->nkeys; k++) {
        const char *key = strrchr(g->key[k], '.');
        char value[25], part[400]; /* a value's part is cut at 24 bytes: the later keys stay in the name */
        name_part(g->value[k][choice[k]], value, sizeof value);
        snprintf(part, sizeof part, "%s%s=%s", k ? "_" : "", key ? key + 1 : g->key[k], value);
        strncat(sum, part, sizeof sum - strlen(sum) - 1);
    }
    sum[80] = '\0';
    snprintf(dst, len, "run-%03d-%s", run + 1, sum);
}

/* ---- results ---------------------------------------------------------------- */

static cJSON *read_json(const char *path)
{
    char *text = textout_read_all(path, NULL);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    return j;
}

static void add_keys(const cJSON *j, char *seen, size_t len)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, j)
    {
        if (!it->string || strstr(seen, it->string))
            continue;
        if (strlen(seen) + strlen(it->string) + 3 < len)
            strcat(strcat(seen, seen[0] ? ", " : ""), it->string);
    }
}

void tlcl_grid_collect(const tlcl_grid_spec *g, tlcl_grid_result *r, const char *fit_history,
                       const char *callback_history, char *keys_seen, size_t keys_len)
{
    const char *paths[2] = {callback_history, fit_history};
    int any = 0;
    r->state = TLCL_GRID_NO_METRIC;
    for (int i = 0; i < 2 && r->state == TLCL_GRID_NO_METRIC; i++) {
        cJSON *j = read_json(paths[i]);
        if (!j)
            continue;
        any = 1;
        add_keys(j, keys_seen, keys_len);
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, g->metric);
        int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0;
        if (n > 0 && (r->curve = malloc((size_t)n * sizeof *r->curve)) != NULL) {
            r->epochs = n;
            r->best_epoch = 0;
            for (int e = 0; e < n; e++) {
                const cJSON *v = cJSON_GetArrayItem(a, e);
                r->curve[e] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
                double x = r->curve[e];
                if (!isnan(x) && (r->best_epoch == 0 || (g->maximize ? x > r->best : x < r->best)))
                    r->best = x, r->best_epoch = e + 1;
            }
            r->state = r->best_epoch ? TLCL_GRID_OK : TLCL_GRID_NO_METRIC;
        }
        cJSON_Delete(j);
    }
    if (!any)
        r->state = TLCL_GRID_FAILED;
}

static const tlcl_grid_spec *sort_spec;

static int by_metric(const void *pa, const void *pb)
{
    const tlcl_grid_result *a = pa, *b = pb;
    if (a->state != b->state)
        return a->state - b->state;
    if (a->state == TLCL_GRID_OK && a->best != b->best)
        return (a->best > b->best) == sort_spec->maximize ? -1 : 1;
    return a->run - b->run;
}

void tlcl_grid_sort(const tlcl_grid_spec *g, tlcl_grid_result *r, int n)
{
    sort_spec = g;
    qsort(r, (size_t)n, sizeof *r, by_metric);
}

static const char *state_text(int s)
{
    return s == TLCL_GRID_OK ? "ok" : s == TLCL_GRID_NO_METRIC ? "no metric" : "failed";
}

static void csv_field(FILE *f, const char *s)
{
    if (strpbrk(s, ",\"\n")) {
        fputc('"', f);
        for (; *s; s++)
            fprintf(f, *s == '"' ? "\"\"" : "%c", *s);
        fputc('"', f);
    } else
        fputs(s, f);
}

int tlcl_grid_write_summary(const tlcl_grid_spec *g, const tlcl_grid_result *r, int n, const char *csv_path,
                            const char *md_path, char *err, size_t len)
{
    textout_file c, m;
    if (textout_open(&c, csv_path, err, len))
        return -1;
    if (textout_open(&m, md_path, err, len)) {
        tlcl_publish_discard(&c);
        return -1;
    }
    fprintf(c.f, "rank,run");
    fprintf(m.f, "# Grid search: %s\n\nRanked by `%s` at each run's best epoch (%s is better).\n\n| rank | run |",
            g->source, g->metric, g->maximize ? "higher" : "lower");
    for (int k = 0; k < g->nkeys; k++) {
        fputc(',', c.f), csv_field(c.f, g->key[k]);
        fprintf(m.f, " %s |", g->key[k]);
    }
    fprintf(c.f, ",%s,best_epoch,epochs,state\n", g->metric);
    fprintf(m.f, " %s | best epoch | epochs | state |\n|---|---|", g->metric);
    for (int k = 0; k < g->nkeys + 4; k++)
        fprintf(m.f, "---|");
    fputc('\n', m.f);
    for (int i = 0; i < n; i++) {
        char v[TEXTOUT_FLOAT_MAX] = "";
        if (r[i].state == TLCL_GRID_OK)
            textout_pyfloat(r[i].best, v);
        fprintf(c.f, "%d,%s", i + 1, r[i].name);
        fprintf(m.f, "| %d | %s |", i + 1, r[i].name);
        for (int k = 0; k < g->nkeys; k++) {
            fputc(',', c.f), csv_field(c.f, g->value[k][r[i].choice[k]]);
            fprintf(m.f, " %s |", g->value[k][r[i].choice[k]]);
        }
        fprintf(c.f, ",%s,%d,%d,%s\n", v, r[i].best_epoch, r[i].epochs, state_text(r[i].state));
        fprintf(m.f, " %s | %d | %d | %s |\n", v, r[i].best_epoch, r[i].epochs, state_text(r[i].state));
    }
    int a = textout_commit(&c, 1, err, len);
    int b = textout_commit(&m, 1, err, len);
    return a || b ? -1 : 0;
}

int tlcl_grid_plot(const tlcl_grid_spec *g, const tlcl_grid_result *r, int n, const char *path, char *err,
                   size_t len)
{
    plot_line *lines = calloc((size_t)(n > 0 ? n : 1), sizeof *lines);
    int maxe = 0, nl = 0;
    for (int i = 0; i < n; i++)
        maxe = r[i].epochs > maxe ? r[i].epochs : maxe;
    double *x = malloc((size_t)(maxe > 0 ? maxe : 1) * sizeof *x);
    if (!lines || !x) {
        free(lines), free(x);
        snprintf(err, len, "out of memory");
        return -1;
    }
    for (int e = 0; e < maxe; e++)
        x[e] = e + 1;
    for (int i = 0; i < n; i++)
        if (r[i].state == TLCL_GRID_OK)
            lines[nl++] = (plot_line){r[i].name, x, r[i].curve, r[i].epochs};
    char title[160];
    snprintf(title, sizeof title, "%s per epoch", g->metric);
    plot_panel p = {title, "epoch", g->metric, lines, nl};
    int rc = plot_panels(path, 1000, 700, "Grid search", &p, 1, 1, err, len);
    free(lines), free(x);
    return rc;
}

int tlcl_grid_copy_file(const char *src, const char *dst, char *err, size_t len)
{
    FILE *in = fopen(src, "rb");
    if (!in) {
        snprintf(err, len, "cannot copy %s to %s: cannot read %s: %s", src, dst, src, strerror(errno));
        return -1;
    }
    tlcl_publish out;
    if (tlcl_publish_open(&out, dst, err, len) != TLCL_OK) {
        fclose(in);
        return -1;
    }
    char buf[1 << 16];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, in)) > 0 && fwrite(buf, 1, got, out.f) == got)
        ;
    int read_ok = !ferror(in), saved = errno;
    fclose(in);
    if (!read_ok)
        snprintf(err, len, "cannot copy %s to %s: reading %s: %s", src, dst, src, strerror(saved));
    return tlcl_publish_commit(&out, read_ok, err, len) == TLCL_OK ? 0 : -1;
}
