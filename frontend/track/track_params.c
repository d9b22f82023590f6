/* track_params.c — the effective configuration as MLflow parameters: the
 * YAML tree flattened to dotted key paths (maps by key, lists of maps by
 * index: phases.0.epochs), a list of scalars as one value "[a, b]", every
 * value as text, keys and values cut to MLflow's limits. */
#include "track.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef struct pairs {
    char **keys, **values;
    int n, cap;
} pairs;

void tlcl_track_safe_key(const char *in, char *out, size_t out_len)
{
    size_t n = 0, max = out_len - 1 < TLCL_MLF_KEY_MAX ? out_len - 1 : TLCL_MLF_KEY_MAX;
    for (const char *p = in; *p && n < max; p++) {
        unsigned char ch = (unsigned char)*p;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                 ch == '-' || ch == ' ' || (ch == '.' && !(n > 0 && out[n - 1] == '.'));
        out[n++] = ok ? (char)ch : '_';
    }
    out[n] = 0;
}

static char *cut_dup(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        n = max;
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

static int add(pairs *p, const char *key, const char *value)
{
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 64;
        char **k = realloc(p->keys, (size_t)cap * sizeof *k);
        if (!k)
            return -1;
        p->keys = k;
        char **v = realloc(p->values, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        p->values = v;
        p->cap = cap;
    }
    char safe[TLCL_MLF_KEY_MAX + 1];
    tlcl_track_safe_key(key, safe, sizeof safe);
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->keys[i], safe))
            return 0; /* MLflow refuses a batch with a key twice: the first stays */
    p->keys[p->n] = cut_dup(safe, TLCL_MLF_KEY_MAX);
    p->values[p->n] = cut_dup(value, TLCL_MLF_PARAM_VALUE_MAX);
    if (!p->keys[p->n] || !p->values[p->n]) {
        free(p->keys[p->n]), free(p->values[p->n]);
        return -1;
    }
    p->n++;
    return 0;
}

static const char *scalar(yaml_node_t *n)
{
    const char *s = (const char *)n->data.scalar.value;
    return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && (!strcmp(s, "~") || !strcmp(s, "")) ? "null" : s;
}

static int walk(yaml_document_t *d, yaml_node_t *n, const char *prefix, pairs *p)
{
    char key[1024];
    if (!n)
        return 0;
    if (n->type == YAML_SCALAR_NODE)
        return prefix[0] ? add(p, prefix, scalar(n)) : 0;
    if (n->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *e = n->data.mapping.pairs.start; e < n->data.mapping.pairs.top; e++) {
            yaml_node_t *k = yaml_document_get_node(d, e->key);
            if (!k || k->type != YAML_SCALAR_NODE)
                continue;
            snprintf(key, sizeof key, "%s%s%s", prefix, prefix[0] ? "." : "", (const char *)k->data.scalar.value);
            if (walk(d, yaml_document_get_node(d, e->value), key, p) != 0)
                return -1;
        }
        return 0;
    }
    /* a sequence: of scalars, one value; else one key path per item */
    int all_scalars = 1;
    for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
        yaml_node_t *c = yaml_document_get_node(d, *i);
        if (c && c->type != YAML_SCALAR_NODE)
            all_scalars = 0;
    }
    if (all_scalars) {
        size_t cap = 2, len = 1;
        for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++)
            cap += strlen(scalar(yaml_document_get_node(d, *i))) + 2;
        char *text = malloc(cap + 1);
        if (!text)
            return -1;
        strcpy(text, "[");
        for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
            const char *s = scalar(yaml_document_get_node(d, *i));
            len += (size_t)snprintf(text + len, cap + 1 - len, "%s%s", i == n->data.sequence.items.start ? "" : ", ", s);
        }
        strcat(text, "]");
        int rc = add(p, prefix, text);
        free(text);
        return rc;
    }
    int idx = 0;
    for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++, idx++) {
        snprintf(key, sizeof key, "%s.%d", prefix, idx);
        if (walk(d, yaml_document_get_node(d, *i), key, p) != 0)
            return -1;
    }
    return 0;
}

int tlcl_track_flatten_yaml(const char *yaml_text, char ***keys, char ***values, int *n)
{
    pairs p = {0};
    yaml_parser_t parser;
    yaml_document_t doc;
    *keys = *values = NULL;
    *n = 0;
    if (!yaml_parser_initialize(&parser))
        return -1;
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml_text, strlen(yaml_text));
    int rc = -1;
    if (yaml_parser_load(&parser, &doc)) {
        rc = walk(&doc, yaml_document_get_root_node(&doc), "", &p);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    if (rc != 0) {
        tlcl_track_free_pairs(p.keys, p.values, p.n);
        return -1;
    }
    *keys = p.keys, *values = p.values, *n = p.n;
    return 0;
}

void tlcl_track_free_pairs(char **keys, char **values, int n)
{
    for (int i = 0; i < n; i++)
        free(keys[i]), free(values[i]);
    free(keys), free(values);
}
