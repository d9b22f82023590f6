/* config_schema.h — internal to the configuration module: the schema
 * table's entry type and the helpers the parser, the setters and the dump
 * share. One entry per leaf key; sections are implied by the dotted names. */
#ifndef TLCL_CONFIG_SCHEMA_H
#define TLCL_CONFIG_SCHEMA_H

#include "config.h"

#include <stdarg.h>
#include <yaml.h>

typedef enum cfg_type {
    CFG_INT,
    CFG_FLOAT,
    CFG_BOOL,
    CFG_STR,        /* char[size] */
    CFG_PATH,       /* tlcl_cfg_path, resolved against the origin directory */
    CFG_ENUM,       /* int, one of names[] */
    CFG_INT_LIST,   /* int[cap] followed by its int count (count_offset) */
    CFG_FLOAT_LIST, /* scalar or list; double[cap] + int count */
    CFG_SAVE_FREQ,  /* "epoch" (0) or a positive batch count */
    CFG_WEIGHTS,    /* imagenet | none | path */
    CFG_CLASS_WEIGHT,
    CFG_METRICS,
    CFG_PHASES,
    CFG_GROUPS      /* metric_groups: {group: [class, ...], ...} */
} cfg_type;

enum {
    CFG_REQUIRED = 1 << 0, /* the file must set it; def is the example shown */
    CFG_NULLABLE = 1 << 1, /* null allowed: NAN for floats, "" for strings */
    CFG_LO_OPEN = 1 << 2,  /* value > lo rather than >= lo */
    CFG_HI_OPEN = 1 << 3,
    CFG_OUT_DIR = 1 << 4,  /* an output directory: make_dirs creates it */
    CFG_OUT_FILE = 1 << 5, /* an output file: make_dirs creates its directory */
    CFG_IN_BASE = 1 << 6,  /* a file name under the key named by base */
    CFG_PAIR = 1 << 7,     /* CFG_INT_LIST of exactly two; one number n means [n, n] */
};

typedef struct cfg_key {
    const char *key; /* dotted path, e.g. "optimizer.learning_rate" */
    cfg_type type;
    size_t offset; /* into tlcl_config (tlcl_phase for phase keys) */
    size_t size;   /* buffer size (strings) or capacity (lists) */
    size_t count_offset;
    double lo, hi;
    unsigned flags;
    const char *const *names; /* CFG_ENUM values, NULL-terminated */
    const char *const *aliases; /* CFG_ENUM: other spellings (Keras's identifiers), pairs {alias, name},
                                   NULL-terminated; the value stored is the name's */
    const char *exts;         /* allowed extensions, "|" separated, or NULL */
    const char *base;         /* CFG_IN_BASE: the key of the base directory */
    const char *def;          /* default, as YAML text */
    const char *doc;          /* one sentence or more; '\n' splits lines */
} cfg_key;

extern const cfg_key cfg_keys[];
extern const size_t cfg_nkeys;
extern const cfg_key cfg_phase_keys[];
extern const size_t cfg_nphase_keys;
extern const char *const cfg_metric_names[];
extern const char *const cfg_trainable_names[];

/* A value to set: a YAML node (doc, node) or raw --set text (node NULL). */
typedef struct cfg_value {
    yaml_document_t *doc;
    yaml_node_t *node;
    const char *text; /* the scalar's text ("" for non-scalars) */
    int is_null;      /* plain null/~/empty */
    yaml_mark_t mark;
} cfg_value;

/* Where an error is reported, and against what relative paths resolve. */
typedef struct cfg_ctx {
    const char *file;   /* config file, or NULL for --set */
    const char *setkey; /* the --set key, for messages */
    const char *option; /* the command-line option (--epochs) that set it, or NULL */
    char origin[TLCL_CFG_PATH_MAX]; /* directory relative paths resolve against */
    char *err;
    size_t err_len;
    tlcl_config *c;
} cfg_ctx;

const cfg_key *cfg_find(const cfg_key *table, size_t n, const char *key);
int cfg_key_index(const cfg_key *k); /* index in cfg_keys, -1 for phase keys */
int cfg_is_section(const char *prefix);
/* Closest known key to `full` (unknown), or NULL; sets *moved when the match
 * lives in another section. */
const char *cfg_suggest(const cfg_key *table, size_t n, const char *full, int *moved);

/* Formats "FILE:LINE:COL: " (or "--set KEY: ") + message into ctx->err;
 * returns TLCL_ERR_FORMAT (TLCL_ERR_ARG for --set). */
tlcl_status cfg_error(cfg_ctx *x, yaml_mark_t mark, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Sets one entry from a value, checking type, range, enum, extension. */
tlcl_status cfg_set_value(cfg_ctx *x, const cfg_key *k, void *base, const char *name, const cfg_value *v);
/* Lists and maps (the rest are scalars). */
int cfg_is_composite(cfg_type t);
/* Sets every entry of a table to its default. */
tlcl_status cfg_apply_defaults(cfg_ctx *x, const cfg_key *table, size_t n, void *base);
void cfg_phase_default(tlcl_phase *p, int index);

/* The parser's entry for a list of phases (config_yaml.c). */
tlcl_status cfg_set_phases(cfg_ctx *x, const cfg_value *v);
tlcl_status cfg_set_phase_map(cfg_ctx *x, tlcl_phase *p, int index, yaml_document_t *d, yaml_node_t *map);

/* Writes one entry's value as YAML (flow style for lists and maps). */
void cfg_dump_value(FILE *f, const cfg_key *k, const void *base, int indent);

/* Path helpers (config_paths.c). */
int cfg_path_join(char *out, size_t len, const char *dir, const char *rel);
int cfg_has_ext(const char *path, const char *exts);

#define CFG_FIELD(base, k) ((char *)(base) + (k)->offset)

#endif
