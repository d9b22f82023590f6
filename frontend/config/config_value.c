/* config_value.c — setting one schema entry from a YAML value or --set
 * text: the type check, the range or allowed values, and a message that
 * says what was expected and what came. */
#include "config_schema.h"
#include "model.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *node_kind(const yaml_node_t *n)
{
    return n->type == YAML_MAPPING_NODE ? "a mapping" : n->type == YAML_SEQUENCE_NODE ? "a list" : "a scalar";
}

/* The expected form of an entry, for messages. */
static void expected_form(const cfg_key *k, char *out, size_t len)
{
    const char *lb = k->flags & CFG_LO_OPEN ? "(" : "[", *rb = k->flags & CFG_HI_OPEN ? ")" : "]";
    size_t used;
    switch (k->type) {
    case CFG_INT:
        snprintf(out, len, "an integer in [%.0f, %.0f]", k->lo, k->hi);
        break;
    case CFG_FLOAT:
        if (k->hi >= 1e29)
            snprintf(out, len, "a number %s %g", k->flags & CFG_LO_OPEN ? ">" : ">=", k->lo);
        else
            snprintf(out, len, "a number in %s%g, %g%s", lb, k->lo, k->hi, rb);
        break;
    case CFG_BOOL:
        snprintf(out, len, "true or false");
        break;
    case CFG_ENUM:
        used = (size_t)snprintf(out, len, "one of:");
        for (int i = 0; k->names[i] && used < len; i++)
            used += (size_t)snprintf(out + used, len - used, "%s %s", i ? "," : "", k->names[i]);
        for (int i = 0; k->aliases && k->aliases[i] && used < len; i += 2) /* the names already listed are not */
            if (strcmp(k->aliases[i], k->aliases[i + 1]) != 0)
                used += (size_t)snprintf(out + used, len - used, "%s %s", i ? "," : " (Keras's identifiers",
                                         k->aliases[i]);
        if (k->aliases && used < len)
            snprintf(out + used, len - used, ")");
        break;
    case CFG_PATH:
        if (k->exts)
            snprintf(out, len, "a path ending in %s", k->exts);
        else
            snprintf(out, len, "a path");
        break;
    case CFG_INT_LIST:
        snprintf(out, len, "a list of integers in [%.0f, %.0f] (at most %zu)", k->lo, k->hi, k->size);
        break;
    case CFG_FLOAT_LIST:
        snprintf(out, len, "a number >= 0 or a list of them, one per class");
        break;
    case CFG_SAVE_FREQ:
        snprintf(out, len, "'epoch' or a positive number of batches");
        break;
    case CFG_WEIGHTS:
        snprintf(out, len, "imagenet, null, or the path of a checkpoint");
        break;
    case CFG_CLASS_WEIGHT:
        snprintf(out, len, "none, balanced, or a map class name -> weight");
        break;
    case CFG_METRICS:
        snprintf(out, len, "a list of metric names");
        break;
    case CFG_PHASES:
        snprintf(out, len, "a list of phases ([] for one phase training everything)");
        break;
    case CFG_GROUPS:
        snprintf(out, len, "a map group name -> list of class names");
        break;
    default:
        snprintf(out, len, "a string");
    }
}

static tlcl_status wrong(cfg_ctx *x, const cfg_key *k, const char *name, yaml_mark_t m, const char *got_fmt,
                         const char *got)
{
    char want[512], gotbuf[256];
    expected_form(k, want, sizeof want);
    snprintf(gotbuf, sizeof gotbuf, got_fmt, got);
    return cfg_error(x, m, "'%s': expected %s, got %s", name, want, gotbuf);
}

static int parse_int(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    /* strtod also reads hex, inf and nan: none is a plain YAML number */
    if (!*s || *end || errno == ERANGE || !isfinite(v) || strpbrk(s, "xX"))
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return *out = 1, 0;
        if (strcasecmp(s, no[i]) == 0)
            return *out = 0, 0;
    }
    return -1;
}

static int in_range(const cfg_key *k, double v)
{
    if (k->flags & CFG_LO_OPEN ? v <= k->lo : v < k->lo)
        return 0;
    return k->flags & CFG_HI_OPEN ? v < k->hi : v <= k->hi;
}

/* Reads a scalar number (integer when is_int) within k's range. */
static tlcl_status scalar_number(cfg_ctx *x, const cfg_key *k, const char *name, const char *text, yaml_mark_t m,
                                 int is_int, double *out)
{
    long long i;
    double d;
    if (is_int ? parse_int(text, &i) : parse_double(text, &d))
        return wrong(x, k, name, m, "'%s'", text);
    if (is_int)
        d = (double)i;
    if (!in_range(k, d))
        return wrong(x, k, name, m, "%s (out of range)", text);
    *out = d;
    return TLCL_OK;
}

static tlcl_status set_string(cfg_ctx *x, const cfg_key *k, const char *name, char *dst, const char *text,
                              yaml_mark_t m)
{
    if (strlen(text) >= k->size)
        return cfg_error(x, m, "'%s': longer than %zu bytes", name, k->size - 1);
    if (tlcl_utf8_invalid_at(text) >= 0) /* YAML is UTF-8 already; --set comes from argv, and names reach JSON */
        return cfg_error(x, m, "'%s': not valid UTF-8 text", name);
    strcpy(dst, text);
    return TLCL_OK;
}

static tlcl_status set_path(cfg_ctx *x, const cfg_key *k, const char *name, char *dst, const char *text,
                            yaml_mark_t m)
{
    if (k->exts && !cfg_has_ext(text, k->exts))
        return wrong(x, k, name, m, "'%s'", text);
    char tmp[TLCL_CFG_PATH_MAX];
    const char *home = getenv("HOME");
    int rc;
    if (strncmp(text, "~/", 2) == 0 && home)
        rc = cfg_path_join(tmp, sizeof tmp, home, text + 2);
    else if (k->flags & CFG_IN_BASE) /* joined to its base_dir at finalize */
        rc = snprintf(tmp, sizeof tmp, "%s", text) >= (int)sizeof tmp ? -1 : 0;
    else
        rc = cfg_path_join(tmp, sizeof tmp, x->origin, text);
    if (rc || strlen(tmp) >= k->size)
        return cfg_error(x, m, "'%s': path longer than %zu bytes", name, k->size - 1);
    strcpy(dst, tmp);
    return TLCL_OK;
}

static int enum_index(const cfg_key *k, const char *text)
{
    for (int i = 0; k->names[i]; i++)
        if (strcmp(k->names[i], text) == 0)
            return i;
    return -1;
}

/* A name, or one of its aliases (Keras's identifiers: "Adam" is adam). */
static tlcl_status set_enum(cfg_ctx *x, const cfg_key *k, const char *name, int *dst, const char *text,
                            yaml_mark_t m)
{
    int i = enum_index(k, text);
    for (int a = 0; i < 0 && k->aliases && k->aliases[a]; a += 2)
        if (strcmp(k->aliases[a], text) == 0)
            i = enum_index(k, k->aliases[a + 1]);
    if (i >= 0)
        return *dst = i, TLCL_OK;
    const char *spellings[64];
    size_t n = 0;
    for (int j = 0; k->names[j] && n < 64; j++)
        spellings[n++] = k->names[j];
    for (int a = 0; k->aliases && k->aliases[a] && n < 64; a += 2)
        spellings[n++] = k->aliases[a];
    const char *near = tlcl_closest_name(text, spellings, n);
    char got[200];
    snprintf(got, sizeof got, "'%.80s'%s%s%s", text, near ? " (did you mean '" : "", near ? near : "",
             near ? "'?)" : "");
    return wrong(x, k, name, m, "%s", got);
}

static tlcl_status set_scalar(cfg_ctx *x, const cfg_key *k, void *field, const char *name, const cfg_value *v)
{
    double d;
    tlcl_status s;
    switch (k->type) {
    case CFG_INT:
        if (v->is_null) /* only nullable ints get here: -1 means "inherit" */
            return *(int *)field = -1, TLCL_OK;
        if ((s = scalar_number(x, k, name, v->text, v->mark, 1, &d)))
            return s;
        *(int *)field = (int)d;
        return TLCL_OK;
    case CFG_FLOAT:
        if (v->is_null)
            return *(double *)field = NAN, TLCL_OK;
        if ((s = scalar_number(x, k, name, v->text, v->mark, 0, &d)))
            return s;
        *(double *)field = d;
        return TLCL_OK;
    case CFG_BOOL:
        if (parse_bool(v->text, (int *)field))
            return wrong(x, k, name, v->mark, "'%s'", v->text);
        return TLCL_OK;
    case CFG_STR:
        return set_string(x, k, name, field, v->is_null ? "" : v->text, v->mark);
    case CFG_PATH:
        if (v->is_null)
            return *(char *)field = 0, TLCL_OK;
        return set_path(x, k, name, field, v->text, v->mark);
    case CFG_ENUM:
        return set_enum(x, k, name, field, v->text, v->mark);
    default:
        return cfg_error(x, v->mark, "'%s': internal error: not a scalar type", name);
    }
}

/* ---- lists and maps ---------------------------------------------------- */

static void store_number(void *array, int i, double d, int is_int)
{
    if (is_int)
        ((int *)array)[i] = (int)d;
    else
        ((double *)array)[i] = d;
}

static tlcl_status set_number_list(cfg_ctx *x, const cfg_key *k, void *field, const char *name, const cfg_value *v,
                                   int is_int)
{
    int *count = (int *)((char *)field - k->offset + k->count_offset);
    yaml_node_item_t *it = NULL, *end = NULL;
    if (v->node && v->node->type == YAML_SEQUENCE_NODE) {
        it = v->node->data.sequence.items.start;
        end = v->node->data.sequence.items.top;
    } else if (!v->node || v->node->type == YAML_SCALAR_NODE) {
        /* one number: one alpha for every class, one hidden layer, or a square image size */
        double d;
        tlcl_status s = scalar_number(x, k, name, v->text, v->mark, is_int, &d);
        if (s)
            return s;
        int n = k->flags & CFG_PAIR ? 2 : 1;
        for (int i = 0; i < n; i++)
            store_number(field, i, d, is_int);
        *count = n;
        return TLCL_OK;
    } else {
        return wrong(x, k, name, v->mark, "%s", node_kind(v->node));
    }
    size_t n = (size_t)(end - it);
    if ((k->flags & CFG_PAIR) && n != 2) /* image_size: [height, width] */
        return cfg_error(x, v->mark, "'%s': expected [height, width], got %zu items", name, n);
    if (n > k->size)
        return cfg_error(x, v->mark, "'%s': at most %zu items, got %zu", name, k->size, n);
    if (k->type == CFG_FLOAT_LIST && n == 0)
        return cfg_error(x, v->mark, "'%s': expected at least one number", name);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *e = yaml_document_get_node(v->doc, it[i]);
        if (!e || e->type != YAML_SCALAR_NODE)
            return wrong(x, k, name, e ? e->start_mark : v->mark, "%s", e ? node_kind(e) : "nothing");
        double d;
        tlcl_status s = scalar_number(x, k, name, (const char *)e->data.scalar.value, e->start_mark, is_int, &d);
        if (s)
            return s;
        store_number(field, (int)i, d, is_int);
    }
    *count = (int)n;
    return TLCL_OK;
}

static tlcl_status set_save_freq(cfg_ctx *x, const cfg_key *k, int *dst, const char *name, const cfg_value *v)
{
    long long n;
    if (strcmp(v->text, "epoch") == 0)
        return *dst = 0, TLCL_OK;
    if (parse_int(v->text, &n) || n < 1 || n > 2147483647)
        return wrong(x, k, name, v->mark, "'%s'", v->text);
    *dst = (int)n;
    return TLCL_OK;
}

static tlcl_status set_weights(cfg_ctx *x, const cfg_key *k, char *dst, const char *name, const cfg_value *v)
{
    int *kind = &x->c->model.weights_kind;
    if (v->is_null || strcmp(v->text, "none") == 0) {
        *kind = TLCL_WEIGHTS_NONE, dst[0] = 0;
        return TLCL_OK;
    }
    if (strcmp(v->text, "imagenet") == 0) {
        *kind = TLCL_WEIGHTS_IMAGENET, dst[0] = 0;
        return TLCL_OK;
    }
    tlcl_status s = set_path(x, k, name, dst, v->text, v->mark);
    if (s == TLCL_OK)
        *kind = TLCL_WEIGHTS_FILE;
    return s;
}

static tlcl_status set_class_weight_map(cfg_ctx *x, const char *name, const cfg_value *v)
{
    __typeof__(x->c->class_weight) *cw = &x->c->class_weight;
    yaml_node_pair_t *p = v->node->data.mapping.pairs.start, *end = v->node->data.mapping.pairs.top;
    if (end - p > TLCL_CFG_MAX_CLASSES)
        return cfg_error(x, v->mark, "'%s': at most %d classes", name, TLCL_CFG_MAX_CLASSES);
    static const cfg_key wkey = {.key = "class_weight", .type = CFG_FLOAT, .lo = 0, .hi = 1e30};
    cw->count = 0;
    for (; p < end; p++) {
        yaml_node_t *kn = yaml_document_get_node(v->doc, p->key), *vn = yaml_document_get_node(v->doc, p->value);
        if (!kn || !vn || kn->type != YAML_SCALAR_NODE || vn->type != YAML_SCALAR_NODE)
            return cfg_error(x, kn ? kn->start_mark : v->mark, "'%s': expected class name: weight pairs", name);
        const char *cls = (const char *)kn->data.scalar.value;
        if (strlen(cls) >= TLCL_CFG_NAME_MAX)
            return cfg_error(x, kn->start_mark, "'%s': class name longer than %d bytes", name, TLCL_CFG_NAME_MAX - 1);
        for (int i = 0; i < cw->count; i++)
            if (strcmp(cw->names[i], cls) == 0)
                return cfg_error(x, kn->start_mark, "'%s': class '%s' given twice", name, cls);
        char wname[TLCL_CFG_NAME_MAX + 32];
        snprintf(wname, sizeof wname, "class_weight.%s", cls);
        double w;
        tlcl_status s = scalar_number(x, &wkey, wname, (const char *)vn->data.scalar.value, vn->start_mark, 0, &w);
        if (s)
            return s;
        strcpy(cw->names[cw->count], cls);
        cw->weights[cw->count++] = w;
    }
    cw->kind = TLCL_CW_MAP;
    return TLCL_OK;
}

static tlcl_status set_class_weight(cfg_ctx *x, const cfg_key *k, const char *name, const cfg_value *v)
{
    if (v->node && v->node->type == YAML_MAPPING_NODE)
        return set_class_weight_map(x, name, v);
    if (v->node && v->node->type != YAML_SCALAR_NODE)
        return wrong(x, k, name, v->mark, "%s", node_kind(v->node));
    if (v->is_null || strcmp(v->text, "none") == 0)
        x->c->class_weight.kind = TLCL_CW_NONE;
    else if (strcmp(v->text, "balanced") == 0)
        x->c->class_weight.kind = TLCL_CW_BALANCED;
    else
        return wrong(x, k, name, v->mark, "'%s'", v->text);
    x->c->class_weight.count = 0;
    return TLCL_OK;
}

/* One group's list of class names. */
static tlcl_status set_group_members(cfg_ctx *x, const char *group, yaml_document_t *d, yaml_node_t *list, int g)
{
    __typeof__(x->c->metric_groups) *mg = &x->c->metric_groups;
    if (list->type != YAML_SEQUENCE_NODE || list->data.sequence.items.top == list->data.sequence.items.start)
        return cfg_error(x, list->start_mark, "'metric_groups.%s': expected a non-empty list of class names", group);
    for (yaml_node_item_t *it = list->data.sequence.items.start; it < list->data.sequence.items.top; it++) {
        yaml_node_t *n = yaml_document_get_node(d, *it);
        const char *cls = n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
        if (!cls || !cls[0] || strlen(cls) >= TLCL_CFG_NAME_MAX)
            return cfg_error(x, n ? n->start_mark : list->start_mark,
                             "'metric_groups.%s': expected a class name (at most %d bytes)", group,
                             TLCL_CFG_NAME_MAX - 1);
        for (int i = 0; i < mg->nmembers; i++)
            if (mg->member_group[i] == g && strcmp(mg->member[i], cls) == 0)
                return cfg_error(x, n->start_mark, "'metric_groups.%s': class '%s' listed twice", group, cls);
        if (mg->nmembers == TLCL_CFG_MAX_CLASSES)
            return cfg_error(x, n->start_mark, "'metric_groups': at most %d class entries in all",
                             TLCL_CFG_MAX_CLASSES);
        strcpy(mg->member[mg->nmembers], cls);
        mg->member_group[mg->nmembers++] = g;
    }
    return TLCL_OK;
}

static tlcl_status set_groups(cfg_ctx *x, const cfg_key *k, const char *name, const cfg_value *v)
{
    __typeof__(x->c->metric_groups) *mg = &x->c->metric_groups;
    memset(mg, 0, sizeof *mg);
    if (v->is_null || (v->node && v->node->type == YAML_SCALAR_NODE && strcmp(v->text, "{}") == 0))
        return TLCL_OK;
    if (!v->node || v->node->type != YAML_MAPPING_NODE)
        return wrong(x, k, name, v->mark, "%s", v->node ? node_kind(v->node) : "a value");
    yaml_node_pair_t *p = v->node->data.mapping.pairs.start, *end = v->node->data.mapping.pairs.top;
    if (end - p > TLCL_CFG_MAX_GROUPS)
        return cfg_error(x, v->mark, "'%s': at most %d groups", name, TLCL_CFG_MAX_GROUPS);
    for (; p < end; p++) {
        yaml_node_t *kn = yaml_document_get_node(v->doc, p->key), *vn = yaml_document_get_node(v->doc, p->value);
        const char *group = kn && kn->type == YAML_SCALAR_NODE ? (const char *)kn->data.scalar.value : NULL;
        if (!group || !vn)
            return cfg_error(x, kn ? kn->start_mark : v->mark, "'%s': expected group name: [class, ...] pairs", name);
        size_t len = strlen(group), ok = len > 0 && len < 24;
        for (size_t i = 0; ok && i < len; i++) /* the name becomes part of log keys and CSV columns */
            ok = (group[i] >= 'a' && group[i] <= 'z') || (group[i] >= 'A' && group[i] <= 'Z') ||
                 (group[i] >= '0' && group[i] <= '9') || group[i] == '_' || group[i] == '-';
        if (!ok)
            return cfg_error(x, kn->start_mark,
                             "'%s': group name '%s': use 1 to 23 letters, digits, '_' or '-' (it names log keys)",
                             name, group);
        for (int g = 0; g < mg->count; g++)
            if (strcmp(mg->name[g], group) == 0)
                return cfg_error(x, kn->start_mark, "'%s': group '%s' given twice", name, group);
        strcpy(mg->name[mg->count], group);
        tlcl_status s = set_group_members(x, group, v->doc, vn, mg->count);
        if (s)
            return s;
        mg->count++;
    }
    return TLCL_OK;
}

/* One metric: a name, or {top_k_accuracy: K}. */
static tlcl_status set_metric(cfg_ctx *x, const char *name, yaml_document_t *d, yaml_node_t *n, tlcl_metric *m)
{
    static const cfg_key kkey = {.key = "k", .type = CFG_INT, .lo = 1, .hi = 100000};
    static const cfg_key mkey = {.key = "metrics", .type = CFG_ENUM, .names = cfg_metric_names};
    const char *text = n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
    yaml_node_t *kval = NULL;
    if (n->type == YAML_MAPPING_NODE && n->data.mapping.pairs.top - n->data.mapping.pairs.start == 1) {
        yaml_node_t *kn = yaml_document_get_node(d, n->data.mapping.pairs.start->key);
        kval = yaml_document_get_node(d, n->data.mapping.pairs.start->value);
        if (kn && kn->type == YAML_SCALAR_NODE && !strcmp((char *)kn->data.scalar.value, "top_k_accuracy"))
            text = "top_k_accuracy";
        if (!kval || kval->type != YAML_SCALAR_NODE)
            text = NULL;
    }
    if (!text)
        return cfg_error(x, n->start_mark, "'%s': expected a metric name or {top_k_accuracy: K}, got %s", name,
                         node_kind(n));
    tlcl_status s = set_enum(x, &mkey, name, &m->kind, text, n->start_mark);
    double k = 5; /* Keras TopKCategoricalAccuracy's default */
    if (!s && kval)
        s = scalar_number(x, &kkey, "metrics.top_k_accuracy", (const char *)kval->data.scalar.value,
                          kval->start_mark, 1, &k);
    m->k = m->kind == TLCL_METRIC_TOP_K ? (int)k : 0;
    return s;
}

static tlcl_status set_metrics(cfg_ctx *x, const cfg_key *k, const char *name, const cfg_value *v)
{
    if (v->node && v->node->type == YAML_SCALAR_NODE && !v->is_null) { /* metric: accuracy, as seed 000 writes it */
        tlcl_metric one;
        tlcl_status s = set_metric(x, name, v->doc, v->node, &one);
        if (s == TLCL_OK)
            x->c->metrics[0] = one, x->c->metrics_count = 1;
        return s;
    }
    if (!v->node || v->node->type != YAML_SEQUENCE_NODE)
        return wrong(x, k, name, v->mark, "%s", v->node ? node_kind(v->node) : "a scalar");
    yaml_node_item_t *it = v->node->data.sequence.items.start, *end = v->node->data.sequence.items.top;
    if (end - it > TLCL_CFG_MAX_METRICS)
        return cfg_error(x, v->mark, "'%s': at most %d metrics", name, TLCL_CFG_MAX_METRICS);
    tlcl_metric got[TLCL_CFG_MAX_METRICS];
    int n = 0;
    for (; it < end; it++, n++) {
        yaml_node_t *e = yaml_document_get_node(v->doc, *it);
        if (!e)
            return cfg_error(x, v->mark, "'%s': empty item", name);
        tlcl_status s = set_metric(x, name, v->doc, e, &got[n]);
        if (s)
            return s;
        for (int j = 0; j < n; j++)
            if (got[j].kind == got[n].kind)
                return cfg_error(x, e->start_mark, "'%s': '%s' listed twice", name, cfg_metric_names[got[n].kind]);
    }
    memcpy(x->c->metrics, got, sizeof(tlcl_metric) * (size_t)n);
    x->c->metrics_count = n;
    return TLCL_OK;
}

int cfg_is_composite(cfg_type t)
{
    return t == CFG_INT_LIST || t == CFG_FLOAT_LIST || t == CFG_CLASS_WEIGHT || t == CFG_METRICS ||
           t == CFG_PHASES || t == CFG_GROUPS;
}

tlcl_status cfg_set_value(cfg_ctx *x, const cfg_key *k, void *base, const char *name, const cfg_value *v)
{
    void *field = CFG_FIELD(base, k);
    if (v->node && v->node->type != YAML_SCALAR_NODE && !cfg_is_composite(k->type))
        return wrong(x, k, name, v->mark, "%s", node_kind(v->node));
    if (v->is_null && !(k->flags & CFG_NULLABLE) && k->type != CFG_CLASS_WEIGHT &&
        k->type != CFG_WEIGHTS && k->type != CFG_GROUPS)
        return wrong(x, k, name, v->mark, "%s", "null");
    switch (k->type) {
    case CFG_INT_LIST:
        return set_number_list(x, k, field, name, v, 1);
    case CFG_FLOAT_LIST:
        return set_number_list(x, k, field, name, v, 0);
    case CFG_SAVE_FREQ:
        return set_save_freq(x, k, field, name, v);
    case CFG_WEIGHTS:
        return set_weights(x, k, field, name, v);
    case CFG_CLASS_WEIGHT:
        return set_class_weight(x, k, name, v);
    case CFG_METRICS:
        return set_metrics(x, k, name, v);
    case CFG_PHASES:
        return cfg_set_phases(x, v);
    case CFG_GROUPS:
        return set_groups(x, k, name, v);
    default:
        return set_scalar(x, k, field, name, v);
    }
}
