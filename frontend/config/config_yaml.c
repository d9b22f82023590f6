/* config_yaml.c — reading the configuration with libyaml's document API:
 * the walk over sections, unknown and duplicate keys, required keys, the
 * phases list, and --set overrides (whose list and map values are parsed
 * as YAML too, so both paths share the setters). */
#include "config_schema.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_SECTIONS 64

typedef struct walk {
    cfg_ctx *x;
    yaml_document_t *doc;
    struct {
        char name[256];
        yaml_mark_t mark;
    } sec[MAX_SECTIONS]; /* sections met, to place "missing key" errors */
    int nsec;
} walk;

tlcl_status cfg_error(cfg_ctx *x, yaml_mark_t mark, const char *fmt, ...)
{
    int n;
    if (x->file)
        n = snprintf(x->err, x->err_len, "%s:%zu:%zu: ", x->file, mark.line + 1, mark.column + 1);
    else if (x->option) /* a command-line option that stands for the key (tlcl train --epochs) */
        n = snprintf(x->err, x->err_len, "%s: ", x->option);
    else
        n = snprintf(x->err, x->err_len, "--set %s: ", x->setkey ? x->setkey : "");
    if (n < 0 || (size_t)n >= x->err_len)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->err + n, x->err_len - (size_t)n, fmt, ap);
    va_end(ap);
    return x->file ? TLCL_ERR_FORMAT : TLCL_ERR_ARG;
}

static cfg_value node_value(yaml_document_t *d, yaml_node_t *n)
{
    cfg_value v = {.doc = d, .node = n, .text = "", .mark = n->start_mark};
    if (n->type == YAML_SCALAR_NODE) {
        v.text = (const char *)n->data.scalar.value;
        v.is_null = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                    (!*v.text || !strcmp(v.text, "~") || !strcasecmp(v.text, "null"));
    }
    return v;
}

static tlcl_status unknown_key(cfg_ctx *x, const cfg_key *table, size_t n, const char *full, const char *section,
                               yaml_mark_t m)
{
    int moved;
    const char *s = cfg_suggest(table, n, full, &moved);
    const char *in = section && *section ? section : "the top level";
    if (s && moved)
        return cfg_error(x, m, "unknown key '%s' in %s (did you mean '%s'? keys belong to their section)", full, in,
                         s);
    if (s)
        return cfg_error(x, m, "unknown key '%s' in %s (did you mean '%s'?)", full, in, s);
    return cfg_error(x, m, "unknown key '%s' in %s (see config/default.yaml for every key)", full, in);
}

static const char *scalar_key(walk *w, yaml_node_pair_t *p, yaml_mark_t *m)
{
    yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
    if (!k)
        return NULL;
    *m = k->start_mark;
    return k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : NULL;
}

static tlcl_status walk_mapping(walk *w, yaml_node_t *map, const char *prefix);

static tlcl_status walk_pair(walk *w, const char *prefix, const char *name, yaml_mark_t km, yaml_node_t *val)
{
    char full[256];
    cfg_ctx *x = w->x;
    if (snprintf(full, sizeof full, "%s%s%s", prefix, *prefix ? "." : "", name) >= (int)sizeof full)
        return cfg_error(x, km, "key too long");
    const cfg_key *k = cfg_find(cfg_keys, cfg_nkeys, full);
    if (k) {
        int i = cfg_key_index(k);
        if (x->c->where[i].line)
            return cfg_error(x, km, "duplicate key '%s' (first at line %d)", full, x->c->where[i].line);
        cfg_value v = node_value(w->doc, val);
        tlcl_status s = cfg_set_value(x, k, x->c, full, &v);
        x->c->where[i].line = (int)km.line + 1;
        x->c->where[i].column = (int)km.column + 1;
        return s;
    }
    if (!cfg_is_section(full))
        return unknown_key(x, cfg_keys, cfg_nkeys, full, prefix, km);
    if (w->nsec < MAX_SECTIONS) {
        snprintf(w->sec[w->nsec].name, sizeof w->sec[0].name, "%s", full);
        w->sec[w->nsec++].mark = km;
    }
    if (val->type == YAML_MAPPING_NODE)
        return walk_mapping(w, val, full);
    cfg_value v = node_value(w->doc, val);
    if (v.is_null) /* a section with every key commented out */
        return TLCL_OK;
    return cfg_error(x, v.mark, "'%s' is a section: expected a mapping of its keys, got '%s'", full,
                     val->type == YAML_SCALAR_NODE ? v.text : "a list");
}

static tlcl_status walk_mapping(walk *w, yaml_node_t *map, const char *prefix)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_mark_t km = map->start_mark;
        const char *name = scalar_key(w, p, &km);
        yaml_node_t *val = yaml_document_get_node(w->doc, p->value);
        if (!name || !val)
            return cfg_error(w->x, km, "keys must be plain names");
        if (!*prefix && strcmp(name, "grid") == 0)
            continue; /* `tlcl grid`'s section (grid.c reads it); a plain run trains the base configuration */
        tlcl_status s = walk_pair(w, prefix, name, km, val);
        if (s)
            return s;
    }
    return TLCL_OK;
}

/* A required key absent from the file (its default is only the example
 * config/default.yaml shows): reported at the deepest section of
 * its path that the file has, else at the top of the file. */
static tlcl_status check_required(walk *w, yaml_mark_t top)
{
    for (size_t i = 0; i < cfg_nkeys; i++) {
        const cfg_key *k = &cfg_keys[i];
        if (!(k->flags & CFG_REQUIRED) || w->x->c->where[i].line)
            continue;
        yaml_mark_t m = top;
        size_t best = 0;
        for (int s = 0; s < w->nsec; s++) {
            size_t n = strlen(w->sec[s].name);
            if (n > best && strncmp(k->key, w->sec[s].name, n) == 0 && k->key[n] == '.')
                best = n, m = w->sec[s].mark;
        }
        const char *nl = strchr(k->doc, '\n'); /* the doc's first line says what it is */
        return cfg_error(w->x, m, "missing required key '%s' (%.*s)", k->key,
                         nl ? (int)(nl - k->doc) : (int)strlen(k->doc), k->doc);
    }
    return TLCL_OK;
}

/* ---- phases -------------------------------------------------------------- */

static tlcl_status check_phase(cfg_ctx *x, const tlcl_phase *p, int index, yaml_mark_t m)
{
    if (p->trainable == TLCL_TRAIN_TOP_BLOCKS && p->top_blocks < 1)
        return cfg_error(x, m, "'phases[%d]': trainable: top_blocks needs top_blocks: N (N >= 1)", index);
    if (p->trainable == TLCL_TRAIN_FROM_BLOCK && !p->from_block[0])
        return cfg_error(x, m, "'phases[%d]': trainable: from_block needs from_block: NAME (e.g. block6a)", index);
    return TLCL_OK;
}

tlcl_status cfg_set_phase_map(cfg_ctx *x, tlcl_phase *p, int index, yaml_document_t *d, yaml_node_t *map)
{
    unsigned seen = 0;
    walk w = {.x = x, .doc = d};
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
        yaml_mark_t km = map->start_mark;
        const char *name = scalar_key(&w, pr, &km);
        yaml_node_t *val = yaml_document_get_node(d, pr->value);
        char full[128];
        snprintf(full, sizeof full, "phases[%d].%s", index, name ? name : "?");
        if (!name || !val)
            return cfg_error(x, km, "keys must be plain names");
        const cfg_key *k = cfg_find(cfg_phase_keys, cfg_nphase_keys, name);
        if (!k) {
            int moved;
            const char *s = cfg_suggest(cfg_phase_keys, cfg_nphase_keys, name, &moved);
            if (s)
                return cfg_error(x, km, "unknown key '%s' (did you mean '%s'?)", full, s);
            return cfg_error(x, km, "unknown key '%s' (phase keys: name, epochs, learning_rate, trainable, "
                                    "top_blocks, from_block, bn_frozen)", full);
        }
        unsigned bit = 1u << (k - cfg_phase_keys);
        if (seen & bit)
            return cfg_error(x, km, "duplicate key '%s'", full);
        seen |= bit;
        cfg_value v = node_value(d, val);
        tlcl_status s = cfg_set_value(x, k, p, full, &v);
        if (s)
            return s;
    }
    return check_phase(x, p, index, map->start_mark);
}

tlcl_status cfg_set_phases(cfg_ctx *x, const cfg_value *v)
{
    if (!v->node || v->node->type != YAML_SEQUENCE_NODE)
        return cfg_error(x, v->mark, "'phases': expected a list of phases ({name, epochs, trainable, ...}), got %s",
                         v->node && v->node->type == YAML_MAPPING_NODE ? "a mapping" : "a scalar");
    yaml_node_item_t *it = v->node->data.sequence.items.start, *end = v->node->data.sequence.items.top;
    if (end - it > TLCL_CFG_MAX_PHASES)
        return cfg_error(x, v->mark,
                         "'phases': %d phases, but a run has at most %d (TLCL_PHASES_MAX): merge phases or split the "
                         "run into several configurations",
                         (int)(end - it), TLCL_CFG_MAX_PHASES);
    int n = 0;
    for (; it < end; it++, n++) {
        yaml_node_t *e = yaml_document_get_node(v->doc, *it);
        if (!e || e->type != YAML_MAPPING_NODE)
            return cfg_error(x, e ? e->start_mark : v->mark, "'phases[%d]': expected a mapping of phase keys", n);
        cfg_phase_default(&x->c->phases[n], n);
        tlcl_status s = cfg_set_phase_map(x, &x->c->phases[n], n, v->doc, e);
        if (s)
            return s;
    }
    x->c->phases_count = n;
    return TLCL_OK;
}

/* ---- values from text (defaults and --set) ------------------------------- */

static tlcl_status yaml_problem(cfg_ctx *x, yaml_parser_t *p)
{
    const char *what = p->problem ? p->problem : "malformed YAML";
    if (p->context)
        return cfg_error(x, p->problem_mark, "YAML syntax error: %s %s (line %zu)", what, p->context,
                         p->context_mark.line + 1);
    return cfg_error(x, p->problem_mark, "YAML syntax error: %s", what);
}

/* Sets k from text: YAML for lists and maps, taken literally for scalars. */
static tlcl_status set_text(cfg_ctx *x, const cfg_key *k, void *base, const char *name, const char *text)
{
    if (!cfg_is_composite(k->type)) {
        cfg_value v = {.text = text};
        v.is_null = !*text || !strcmp(text, "~") || !strcasecmp(text, "null");
        return cfg_set_value(x, k, base, name, &v);
    }
    char list[512]; /* "0,1" (--devices 0,1) is the list [0,1] */
    if (k->type == CFG_INT_LIST && text[0] != '[' && strchr(text, ',') && strlen(text) + 3 <= sizeof list) {
        snprintf(list, sizeof list, "[%s]", text);
        text = list;
    }
    yaml_parser_t p;
    yaml_document_t d;
    if (!yaml_parser_initialize(&p))
        return cfg_error(x, (yaml_mark_t){0}, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)text, strlen(text));
    tlcl_status s;
    if (!yaml_parser_load(&p, &d)) {
        s = yaml_problem(x, &p);
    } else {
        yaml_node_t *root = yaml_document_get_root_node(&d);
        cfg_value v = {.text = "", .is_null = 1};
        if (root)
            v = node_value(&d, root);
        s = cfg_set_value(x, k, base, name, &v);
        yaml_document_delete(&d);
    }
    yaml_parser_delete(&p);
    return s;
}

tlcl_status cfg_apply_defaults(cfg_ctx *x, const cfg_key *table, size_t n, void *base)
{
    for (size_t i = 0; i < n; i++) {
        tlcl_status s = set_text(x, &table[i], base, table[i].key, table[i].def);
        if (s)
            return s;
    }
    return TLCL_OK;
}

void cfg_phase_default(tlcl_phase *p, int index)
{
    char err[256];
    cfg_ctx x = {.err = err, .err_len = sizeof err};
    memset(p, 0, sizeof *p);
    cfg_apply_defaults(&x, cfg_phase_keys, cfg_nphase_keys, p); /* cannot fail: the table's own defaults */
    snprintf(p->name, sizeof p->name, "phase%d", index + 1);
}

/* phases.N.key or phases[N].key */
static tlcl_status set_phase_key(cfg_ctx *x, const char *key, const char *value)
{
    const char *s = key + 6;
    char *end;
    long n = strtol(s + 1, &end, 10);
    if (end == s + 1 || (*s == '[' ? *end++ != ']' : 0) || *end != '.' || n < 0)
        return cfg_error(x, (yaml_mark_t){0}, "expected phases.N.key (N from 0)");
    tlcl_config *c = x->c;
    if (n >= TLCL_CFG_MAX_PHASES)
        return cfg_error(x, (yaml_mark_t){0}, "'phases': a run has at most %d phases (TLCL_PHASES_MAX), so N may be at "
                         "most %d", TLCL_CFG_MAX_PHASES, TLCL_CFG_MAX_PHASES - 1);
    if (n > c->phases_count)
        return cfg_error(x, (yaml_mark_t){0}, "there are %d phases; N may be at most %d", c->phases_count,
                         c->phases_count);
    const cfg_key *k = cfg_find(cfg_phase_keys, cfg_nphase_keys, end + 1);
    if (!k) {
        int moved;
        const char *sg = cfg_suggest(cfg_phase_keys, cfg_nphase_keys, end + 1, &moved);
        return cfg_error(x, (yaml_mark_t){0}, "unknown phase key '%s'%s%s%s", end + 1, sg ? " (did you mean '" : "",
                         sg ? sg : "", sg ? "'?)" : "");
    }
    tlcl_phase p = c->phases[n];
    if (n == c->phases_count)
        cfg_phase_default(&p, (int)n);
    /* no check_phase here: "trainable=from_block" then "from_block=block6a"
     * must work in either order; finalize checks the result */
    tlcl_status st = set_text(x, k, &p, key, value);
    if (st)
        return st;
    c->phases[n] = p;
    if (n == c->phases_count)
        c->phases_count++;
    return TLCL_OK;
}

static void origin_cwd(cfg_ctx *x)
{
    if (!getcwd(x->origin, sizeof x->origin))
        strcpy(x->origin, ".");
}

tlcl_status tlcl_config_set(tlcl_config *c, const char *key, const char *value, char *err, size_t err_len)
{
    return tlcl_config_set_option(c, NULL, key, value, err, err_len);
}

tlcl_status tlcl_config_set_option(tlcl_config *c, const char *option, const char *key, const char *value, char *err,
                                   size_t err_len)
{
    cfg_ctx x = {.setkey = key, .option = option, .err = err, .err_len = err_len, .c = c};
    origin_cwd(&x);
    if (strncmp(key, "phases.", 7) == 0 || strncmp(key, "phases[", 7) == 0)
        return set_phase_key(&x, key, value);
    const cfg_key *k = cfg_find(cfg_keys, cfg_nkeys, key);
    if (!k && cfg_is_section(key))
        return cfg_error(&x, (yaml_mark_t){0}, "'%s' is a section; set one of its keys (%s.KEY=VALUE)", key, key);
    if (!k) {
        const char *dot = strrchr(key, '.');
        char section[256];
        snprintf(section, sizeof section, "%.*s", dot ? (int)(dot - key) : 0, key);
        return unknown_key(&x, cfg_keys, cfg_nkeys, key, section, (yaml_mark_t){0});
    }
    /* validate on a copy so a rejected value leaves c as it was */
    tlcl_config *tmp = malloc(sizeof *tmp);
    if (!tmp)
        return cfg_error(&x, (yaml_mark_t){0}, "out of memory");
    *tmp = *c;
    x.c = tmp;
    tlcl_status s = set_text(&x, k, tmp, key, value);
    if (!s) {
        tmp->where[cfg_key_index(k)].line = 0; /* no longer from the file */
        tmp->finalized = 0;
        *c = *tmp;
    }
    free(tmp);
    return s;
}

tlcl_status tlcl_config_set_arg(tlcl_config *c, const char *assignment, char *err, size_t err_len)
{
    const char *eq = strchr(assignment, '=');
    char key[256];
    if (!eq || eq == assignment || (size_t)(eq - assignment) >= sizeof key) {
        snprintf(err, err_len, "--set %s: expected KEY=VALUE, e.g. optimizer.learning_rate=1e-4", assignment);
        return TLCL_ERR_ARG;
    }
    snprintf(key, sizeof key, "%.*s", (int)(eq - assignment), assignment);
    return tlcl_config_set(c, key, eq + 1, err, err_len);
}

tlcl_status tlcl_config_defaults(tlcl_config *c, char *err, size_t err_len)
{
    cfg_ctx x = {.err = err, .err_len = err_len, .c = c};
    memset(c, 0, sizeof *c);
    origin_cwd(&x);
    c->run_time = time(NULL);
    return cfg_apply_defaults(&x, cfg_keys, cfg_nkeys, c);
}

/* ---- the file ------------------------------------------------------------ */

static tlcl_status parse_document(cfg_ctx *x, yaml_parser_t *p)
{
    yaml_document_t d;
    if (!yaml_parser_load(p, &d))
        return yaml_problem(x, p);
    walk w = {.x = x, .doc = &d};
    yaml_node_t *root = yaml_document_get_root_node(&d);
    yaml_mark_t top = {0};
    tlcl_status s = TLCL_OK;
    if (root && root->type == YAML_MAPPING_NODE)
        s = walk_mapping(&w, root, "");
    else if (root && !node_value(&d, root).is_null)
        s = cfg_error(x, root->start_mark, "expected a mapping of sections (train:, model:, optimizer:, ...) at the "
                                           "top of the file");
    if (!s)
        s = check_required(&w, root ? root->start_mark : top);
    yaml_document_delete(&d);
    if (s)
        return s;
    if (!yaml_parser_load(p, &d)) /* a second document is a mistake, not something to ignore */
        return yaml_problem(x, p);
    root = yaml_document_get_root_node(&d);
    yaml_mark_t m = root ? root->start_mark : top;
    yaml_document_delete(&d);
    return root ? cfg_error(x, m, "more than one YAML document; expected one") : TLCL_OK;
}

/* The nesting depth is checked on libyaml's event stream before the
 * document is built; the scan stops at the first level too deep, so a
 * hostile file costs time linear in its size. Syntax errors are left to
 * the document load, which reports them the same way. */
static tlcl_status check_depth(cfg_ctx *x, const unsigned char *text, size_t len)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return cfg_error(x, (yaml_mark_t){0}, "out of memory");
    yaml_parser_set_input_string(&p, text, len);
    tlcl_status s = TLCL_OK;
    int depth = 0, end = 0;
    yaml_event_t e;
    while (!s && !end && yaml_parser_parse(&p, &e)) {
        if (e.type == YAML_SEQUENCE_START_EVENT || e.type == YAML_MAPPING_START_EVENT) {
            if (++depth > TLCL_CONFIG_MAX_DEPTH)
                s = cfg_error(x, e.start_mark, "lists and mappings nested more than %d levels deep (tlcl's keys "
                              "are at most 4 levels deep): a damaged or wrong file?", TLCL_CONFIG_MAX_DEPTH);
        } else if (e.type == YAML_SEQUENCE_END_EVENT || e.type == YAML_MAPPING_END_EVENT) {
            depth--;
        }
        end = e.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&e);
    }
    yaml_parser_delete(&p);
    return s;
}

static tlcl_status load_text(cfg_ctx *x, const unsigned char *text, size_t len)
{
    TLCL_TRY(cfg_apply_defaults(x, cfg_keys, cfg_nkeys, x->c));
    TLCL_TRY(check_depth(x, text, len));
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return cfg_error(x, (yaml_mark_t){0}, "out of memory");
    yaml_parser_set_input_string(&p, text, len);
    tlcl_status s = parse_document(x, &p);
    yaml_parser_delete(&p);
    return s;
}

tlcl_status tlcl_config_load(tlcl_config *c, const char *path, char *err, size_t err_len)
{
    cfg_ctx x = {.file = path, .err = err, .err_len = err_len, .c = c};
    char abs[PATH_MAX];
    size_t len = 0;
    unsigned char *text = tlcl_read_input(path, "configuration file", TLCL_CONFIG_MAX_BYTES, &len, err, err_len);
    if (!text)
        return TLCL_ERR_IO;
    if (!realpath(path, abs)) {
        snprintf(err, err_len, "%s: cannot open the configuration file", path);
        free(text);
        return TLCL_ERR_IO;
    }
    size_t n = strlen(abs);
    if (n >= sizeof c->source) {
        snprintf(err, err_len, "%s: path longer than %zu bytes", path, sizeof c->source - 1);
        free(text);
        return TLCL_ERR_IO;
    }
    memset(c, 0, sizeof *c);
    c->run_time = time(NULL);
    memcpy(c->source, abs, n + 1);
    char *slash = strrchr(abs, '/');
    if (slash)
        *(slash == abs ? slash + 1 : slash) = 0;
    memcpy(x.origin, abs, strlen(abs) + 1);
    tlcl_status s = load_text(&x, text, len);
    free(text);
    return s;
}

void tlcl_config_free(tlcl_config *c)
{
    (void)c;
}
