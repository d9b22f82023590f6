/* checkpoint.c — models as safetensors files: an 8-byte little-endian header
 * length, a JSON header (tensor name -> dtype, Keras shape, byte offsets, and
 * a "__metadata__" map of strings), then the float32 data. Tensor names are
 * the Keras weight paths "<layer>/<variable>" ("stem_conv/kernel",
 * "block1a_project_bn/moving_variance", "predictions/bias"); the metadata
 * carries what is needed to rebuild the model. Files are written to a
 * temporary name and renamed, so an interrupted save never leaves half a
 * checkpoint. */
#include "model.h"

#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CKPT_FORMAT "tlcl-checkpoint"
#define CKPT_VERSION "1"
#define TLCL_VERSION_STRING "0.1.0"

static const char *act_name(tlcl_act a)
{
    static const char *names[] = {"linear", "swish", "sigmoid", "relu", "relu6"};
    return (unsigned)a < 5 ? names[a] : "linear";
}

static tlcl_act act_from_name(const char *s)
{
    static const char *names[] = {"linear", "swish", "sigmoid", "relu", "relu6"};
    for (int i = 0; i < 5; i++)
        if (s && strcmp(s, names[i]) == 0)
            return (tlcl_act)i;
    return TLCL_ACT_NONE;
}

static void meta_int(cJSON *meta, const char *key, long v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%ld", v);
    cJSON_AddStringToObject(meta, key, buf);
}

/* Metadata values must be strings in safetensors; structured ones are JSON text. */
static void meta_json(cJSON *meta, const char *key, cJSON *value)
{
    char *text = cJSON_PrintUnformatted(value);
    cJSON_AddStringToObject(meta, key, text ? text : "null");
    free(text);
    cJSON_Delete(value);
}

static cJSON *metadata(const tlcl_model *m, const char *const *class_names, int n_names)
{
    cJSON *meta = cJSON_CreateObject();
    cJSON_AddStringToObject(meta, "format", CKPT_FORMAT);
    cJSON_AddStringToObject(meta, "format_version", CKPT_VERSION);
    cJSON_AddStringToObject(meta, "tlcl_version", TLCL_VERSION_STRING);
    cJSON_AddStringToObject(meta, "architecture", m->arch.name);
    meta_int(meta, "input_size", m->size);
    meta_int(meta, "image_height", m->image_h); /* != input_size: the network resizes first (Keras Resizing) */
    meta_int(meta, "image_width", m->image_w);
    meta_int(meta, "include_top", m->include_top);
    meta_int(meta, "classes", m->classes);
    cJSON *pre = cJSON_CreateObject();
    cJSON_AddStringToObject(pre, "input", "RGB float 0..255, NHWC");
    cJSON_AddItemToObject(pre, "scale", cJSON_CreateFloatArray(m->pre_scale, 3));
    cJSON_AddItemToObject(pre, "shift", cJSON_CreateFloatArray(m->pre_shift, 3));
    meta_json(meta, "preprocessing", pre);
    cJSON *head = cJSON_CreateObject();
    cJSON *units = cJSON_AddArrayToObject(head, "units");
    for (int i = 0; i + 1 < m->nhead; i++)
        cJSON_AddItemToArray(units, cJSON_CreateNumber(m->head[i].out));
    cJSON_AddStringToObject(head, "activation", m->nhead > 1 ? act_name(m->head[0].act) : "relu");
    cJSON_AddNumberToObject(head, "dropout", m->head_dropout);
    meta_json(meta, "head", head);
    cJSON *names = cJSON_CreateArray();
    for (int i = 0; i < n_names; i++)
        cJSON_AddItemToArray(names, cJSON_CreateString(class_names[i]));
    meta_json(meta, "class_names", names);
    return meta;
}

static cJSON *tensor_entry(const tlcl_param_entry *e, size_t begin)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "dtype", "F32");
    cJSON *shape = cJSON_AddArrayToObject(t, "shape");
    for (int d = 4 - e->ndims; d < 4; d++)
        cJSON_AddItemToArray(shape, cJSON_CreateNumber(e->shape[d]));
    cJSON *off = cJSON_AddArrayToObject(t, "data_offsets");
    cJSON_AddItemToArray(off, cJSON_CreateNumber((double)begin));
    cJSON_AddItemToArray(off, cJSON_CreateNumber((double)(begin + e->count * sizeof(float))));
    return t;
}

/* metadata: FNV-1a 64 of the tensor data, 16 hex digits (tlcl_checkpoint_verify) */
#define CKPT_CHECKSUM_KEY "data_fnv1a64"

/* Tensor names of the three sections: values, then Adam/SGD moments. */
static const char *SECTION_PREFIX[3] = {"", "optimizer/m/", "optimizer/v/"};

/* FNV-1a 64 of the tensor data in file order (sections, then entries). */
static uint64_t data_checksum(const tlcl_model *m, const float *host, int sections)
{
    uint64_t h = TLCL_HASH_SEED;
    for (int sec = 0; sec < sections; sec++)
        for (int i = 0; i < m->params.count; i++)
            h = tlcl_hash_bytes(h, host + (size_t)sec * m->params.total + m->params.entries[i].offset,
                                m->params.entries[i].count * sizeof(float));
    return h;
}

static char *header_text(const tlcl_model *m, const char *const *names, int n_names, const tlcl_save_extra *x,
                         uint64_t checksum, size_t *len)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = metadata(m, names, n_names);
    if (x && x->state_json)
        cJSON_AddStringToObject(meta, "training_state", x->state_json);
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)checksum);
    cJSON_AddStringToObject(meta, CKPT_CHECKSUM_KEY, hex);
    cJSON_AddItemToObject(root, "__metadata__", meta);
    size_t off = 0;
    for (int sec = 0; sec < (x && x->with_optimizer ? 3 : 1); sec++)
        for (int i = 0; i < m->params.count; i++) {
            const tlcl_param_entry *e = &m->params.entries[i];
            char name[160];
            snprintf(name, sizeof name, "%s%s", SECTION_PREFIX[sec], e->name);
            cJSON_AddItemToObject(root, name, tensor_entry(e, off));
            off += e->count * sizeof(float);
        }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text)
        return NULL;
    /* pad with spaces so the data starts 8-byte aligned, as the format advises */
    size_t n = strlen(text), padded = (n + 7) / 8 * 8;
    char *out = realloc(text, padded + 1);
    if (!out) {
        free(text);
        return NULL;
    }
    memset(out + n, ' ', padded - n);
    out[padded] = '\0';
    *len = padded;
    return out;
}

static int write_all(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n; }

/* Publishes header and the host sections (values, then moments) as path
 * (tlcl_publish: a temporary file, fsync, rename). */
static tlcl_status write_file(const tlcl_model *m, const float *host, int sections, const char *header,
                              size_t hlen, const char *path, char *err, size_t err_len)
{
    tlcl_publish f;
    TLCL_TRY(tlcl_publish_open(&f, path, err, err_len));
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    int ok = write_all(f.f, len8, 8) && write_all(f.f, header, hlen);
    for (int sec = 0; sec < sections; sec++)
        for (int i = 0; ok && i < m->params.count; i++)
            ok = write_all(f.f, host + (size_t)sec * m->params.total + m->params.entries[i].offset,
                           m->params.entries[i].count * sizeof(float));
    if (!ok)
        snprintf(err, err_len, "cannot write checkpoint %s", path);
    return tlcl_publish_commit(&f, ok, err, err_len);
}

static tlcl_status save_sections(const tlcl_model *m, const float *host, const char *path,
                                 const char *const *class_names, int n_names, const tlcl_save_extra *x, char *err,
                                 size_t err_len)
{
    for (int i = 0; i < n_names; i++) /* a header must stay valid JSON: see utf8.c */
        if (tlcl_utf8_invalid_at(class_names[i]) >= 0) {
            char shown[256];
            tlcl_utf8_printable(shown, sizeof shown, class_names[i]);
            snprintf(err, err_len, "saving %s: class name %d '%s' is not valid UTF-8", path, i, shown);
            return TLCL_ERR_ARG;
        }
    size_t hlen = 0;
    char *header = header_text(m, class_names, n_names, x, data_checksum(m, host, x && x->with_optimizer ? 3 : 1), &hlen);
    if (!header) {
        snprintf(err, err_len, "saving %s: out of memory", path);
        return TLCL_ERR_OOM;
    }
    tlcl_status s = write_file(m, host, x && x->with_optimizer ? 3 : 1, header, hlen, path, err, err_len);
    free(header);
    return s;
}

tlcl_status tlcl_model_save_host(const tlcl_model *m, const float *host, const char *path,
                                 const char *const *class_names, int n_names, char *err, size_t err_len)
{
    return save_sections(m, host, path, class_names, n_names, NULL, err, err_len);
}

tlcl_status tlcl_model_save_ex(tlcl_model *m, const char *path, const char *const *class_names, int n_names,
                               const tlcl_save_extra *x, char *err, size_t err_len)
{
    int sections = x && x->with_optimizer ? 3 : 1;
    float *host = calloc((m->params.total ? m->params.total : 1) * (size_t)sections, sizeof *host);
    tlcl_status s = host ? TLCL_OK : TLCL_ERR_OOM;
    cl_mem bufs[3] = {m->params.values, m->params.m, m->params.v};
    for (int sec = 0; s == TLCL_OK && m->eng && sec < sections; sec++)
        s = tlcl_cl_read(tlcl_engine_cl(m->eng), bufs[sec], 0, m->params.total * sizeof(float),
                         host + (size_t)sec * m->params.total, "parameters");
    if (s != TLCL_OK) {
        snprintf(err, err_len, "saving %s: %s", path, m->eng ? tlcl_engine_error(m->eng) : "out of memory");
        free(host);
        return s;
    }
    s = save_sections(m, host, path, class_names, n_names, x, err, err_len);
    free(host);
    return s;
}

tlcl_status tlcl_model_save(tlcl_model *m, const char *path, const char *const *class_names, int n_names,
                            char *err, size_t err_len)
{
    return tlcl_model_save_ex(m, path, class_names, n_names, NULL, err, err_len);
}

/* ---- reading ------------------------------------------------------------ */

struct tlcl_checkpoint {
    cJSON *header;
    FILE *f;
    long data_start;
    char path[1024];
};

/* The header's format_version against the one this tlcl writes: a newer,
 * unknown or missing version is refused before anything is read, with the
 * file, the version found and the version expected. */
static tlcl_status check_version(const cJSON *header, const char *path, char *err, size_t err_len)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(header, "__metadata__");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, "format_version");
    const cJSON *by = cJSON_GetObjectItemCaseSensitive(meta, "tlcl_version");
    if (!v) {
        snprintf(err, err_len,
                 "%s: no format_version in the checkpoint's metadata (expected format_version %s): not a tlcl "
                 "checkpoint, or written by a tool that does not mark it; convert the weights again with `tlcl "
                 "import` (Keras files) or tools/convert_lite0.py",
                 path, CKPT_VERSION);
        return TLCL_ERR_FORMAT;
    }
    const char *text = cJSON_IsString(v) ? v->valuestring : NULL;
    char *end = NULL;
    long n = text && *text >= '0' && *text <= '9' ? strtol(text, &end, 10) : -1;
    if (n < 1 || !end || *end) {
        char *shown = text ? NULL : cJSON_PrintUnformatted(v);
        snprintf(err, err_len, "%s: unknown checkpoint format_version '%s' (this tlcl reads format_version %s)", path,
                 text ? text : shown ? shown : "?", CKPT_VERSION);
        free(shown);
        return TLCL_ERR_FORMAT;
    }
    if (n != atol(CKPT_VERSION)) {
        snprintf(err, err_len, "%s: checkpoint format_version %ld%s%s%s, but this tlcl %s reads format_version %s: %s",
                 path, n, cJSON_IsString(by) ? " (written by tlcl " : "", cJSON_IsString(by) ? by->valuestring : "",
                 cJSON_IsString(by) ? ")" : "", TLCL_VERSION_STRING, CKPT_VERSION,
                 n > atol(CKPT_VERSION) ? "read it with a newer tlcl" : "convert it again");
        return TLCL_ERR_FORMAT;
    }
    return TLCL_OK;
}

/* ---- the header, validated in full before anything else reads it ------ */

typedef struct tensor_span {
    const char *name;
    double begin, end;
} tensor_span;

/* Bytes per element of the safetensors dtypes; 0 for an unknown one. */
static int dtype_bytes(const char *dtype)
{
    static const struct { const char *name; int bytes; } types[] = {
        {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
        {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4}, {"I64", 8}, {"U64", 8}, {"F64", 8}};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (strcmp(dtype, types[i].name) == 0)
            return types[i].bytes;
    return 0;
}

/* A JSON number that is a whole number from 0 to 2^53 (exact in a double). */
static int is_count(const cJSON *v)
{
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 9007199254740992.0 &&
           v->valuedouble == (double)(int64_t)v->valuedouble;
}

/* One tensor entry: {"dtype": known, "shape": [counts], "data_offsets": [begin, end]}
 * and nothing else, end - begin = elements x dtype size. */
static tlcl_status check_tensor(const cJSON *t, const char *path, tensor_span *span, char *err, size_t len)
{
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(t, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    const char *why = NULL;
    int bytes = cJSON_IsString(dtype) ? dtype_bytes(dtype->valuestring) : 0;
    double elements = 1;
    if (!cJSON_IsObject(t) || cJSON_GetArraySize(t) != 3 || !dtype || !shape || !off)
        why = "is not an object of exactly dtype, shape and data_offsets";
    else if (!bytes)
        why = "has an unknown dtype";
    else if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) > 8)
        why = "has a shape that is not a list of at most 8 dimensions";
    for (const cJSON *d = cJSON_IsArray(shape) ? shape->child : NULL; !why && d; d = d->next) {
        if (!is_count(d))
            why = "has a shape with a dimension that is not a whole number >= 0";
        elements *= d->valuedouble;
    }
    if (!why && (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || !is_count(off->child) ||
                 !is_count(off->child->next) || off->child->valuedouble > off->child->next->valuedouble))
        why = "has data_offsets that are not two whole numbers [begin, end] with begin <= end";
    if (!why && off->child->next->valuedouble - off->child->valuedouble != elements * bytes)
        why = "has data_offsets whose size is not its shape times its dtype's size";
    if (why) {
        snprintf(err, len, "%s: tensor '%s' %s (a damaged checkpoint?)", path, t->string, why);
        return TLCL_ERR_FORMAT;
    }
    *span = (tensor_span){t->string, off->child->valuedouble, off->child->next->valuedouble};
    return TLCL_OK;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const tensor_span *)a)->name, ((const tensor_span *)b)->name);
}

static int by_begin(const void *a, const void *b)
{
    double x = ((const tensor_span *)a)->begin, y = ((const tensor_span *)b)->begin;
    return (x > y) - (x < y);
}

/* Names unique, and the tensors tile the data exactly: sorted by offset,
 * each begins where the previous ends, the first at 0, the last at the end
 * of the file. Overlapping, gapped or out-of-file tensors are refused. */
static tlcl_status check_layout(tensor_span *t, int n, double data_bytes, const char *path, char *err, size_t len)
{
    qsort(t, (size_t)n, sizeof *t, by_name);
    for (int i = 1; i < n; i++)
        if (strcmp(t[i].name, t[i - 1].name) == 0) {
            snprintf(err, len, "%s: tensor '%s' appears twice in the header (a damaged checkpoint?)", path, t[i].name);
            return TLCL_ERR_FORMAT;
        }
    qsort(t, (size_t)n, sizeof *t, by_begin);
    double at = 0;
    for (int i = 0; i < n; i++) {
        if (t[i].begin != at) {
            snprintf(err, len, "%s: tensor '%s' starts at byte %.0f of the data, expected %.0f (tensors must follow "
                     "each other without gaps or overlaps; a damaged checkpoint?)", path, t[i].name, t[i].begin, at);
            return TLCL_ERR_FORMAT;
        }
        at = t[i].end;
    }
    if (at != data_bytes) {
        snprintf(err, len, "%s is truncated or damaged: its tensors cover %.0f bytes of data, the file holds %.0f",
                 path, at, data_bytes);
        return TLCL_ERR_FORMAT;
    }
    return TLCL_OK;
}

/* The whole header: __metadata__ a map of strings, every other entry a
 * valid tensor, laid out as check_layout says. */
static tlcl_status check_header(const cJSON *header, double data_bytes, const char *path, char *err, size_t len)
{
    int n = cJSON_GetArraySize(header), count = 0, meta = 0;
    tensor_span *spans = calloc((size_t)(n ? n : 1), sizeof *spans);
    if (!spans)
        return TLCL_ERR_OOM;
    tlcl_status s = TLCL_OK;
    for (const cJSON *t = header->child; s == TLCL_OK && t; t = t->next) {
        if (strcmp(t->string, "__metadata__") != 0) {
            s = check_tensor(t, path, &spans[count++], err, len);
            continue;
        }
        int strings = cJSON_IsObject(t) && !meta++;
        for (const cJSON *v = t->child; strings && v; v = v->next)
            strings = cJSON_IsString(v);
        if (!strings) {
            snprintf(err, len, "%s: __metadata__ is not one map of strings (a damaged checkpoint?)", path);
            s = TLCL_ERR_FORMAT;
        }
    }
    if (s == TLCL_OK)
        s = check_layout(spans, count, data_bytes, path, err, len);
    free(spans);
    return s;
}

tlcl_status tlcl_checkpoint_open(tlcl_checkpoint **out, const char *path, char *err, size_t err_len)
{
    *out = NULL;
    char why[1024];
    FILE *f = tlcl_fopen_input(path, "checkpoint", why, sizeof why);
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0) {
        snprintf(err, err_len, "%s", f ? "cannot stat the checkpoint" : why);
        if (f)
            fclose(f);
        return TLCL_ERR_IO;
    }
    unsigned char len8[8];
    uint64_t hlen = 0;
    if (fread(len8, 1, 8, f) == 8)
        for (int i = 0; i < 8; i++)
            hlen |= (uint64_t)len8[i] << (8 * i);
    char *text = hlen > 0 && hlen < (64u << 20) && hlen + 8 <= (uint64_t)st.st_size ? malloc(hlen + 1) : NULL;
    cJSON *header = NULL;
    if (text && fread(text, 1, hlen, f) == hlen) {
        text[hlen] = '\0';
        header = cJSON_ParseWithLength(text, hlen);
    }
    free(text);
    if (!cJSON_IsObject(header)) {
        cJSON_Delete(header);
        fclose(f);
        snprintf(err, err_len, "%s is not a safetensors file (bad header)", path);
        return TLCL_ERR_FORMAT;
    }
    tlcl_status vs = check_version(header, path, err, err_len);
    if (vs == TLCL_OK)
        vs = check_header(header, (double)st.st_size - 8 - (double)hlen, path, err, err_len);
    if (vs != TLCL_OK) {
        cJSON_Delete(header);
        fclose(f);
        return vs;
    }
    tlcl_checkpoint *c = calloc(1, sizeof *c);
    if (!c) {
        cJSON_Delete(header);
        fclose(f);
        return TLCL_ERR_OOM;
    }
    c->header = header;
    c->f = f;
    c->data_start = (long)(8 + hlen);
    snprintf(c->path, sizeof c->path, "%s", path);
    *out = c;
    return TLCL_OK;
}

void tlcl_checkpoint_close(tlcl_checkpoint *c)
{
    if (!c)
        return;
    cJSON_Delete(c->header);
    fclose(c->f);
    free(c);
}

const char *tlcl_checkpoint_meta(const tlcl_checkpoint *c, const char *key)
{
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(c->header, "__metadata__");
    cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The model options a checkpoint was saved with. */
/* A metadata integer: digits only, within [lo, hi]. */
static tlcl_status meta_read_int(const tlcl_checkpoint *c, const char *key, const char *text, long lo, long hi, int *out,
                            char *err, size_t err_len)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (!*text || *end || v < lo || v > hi) {
        snprintf(err, err_len, "%s: metadata %s is '%s', expected an integer from %ld to %ld (a damaged checkpoint?)",
                 c->path, key, text, lo, hi);
        return TLCL_ERR_FORMAT;
    }
    *out = (int)v;
    return TLCL_OK;
}

/* class_names, when present, is an array of `classes` strings (classes < 0:
 * no classifier, any count). Everything that prints a class by index
 * relies on it. */
static tlcl_status check_class_names(const tlcl_checkpoint *c, int classes, char *err, size_t err_len)
{
    const char *text = tlcl_checkpoint_meta(c, "class_names");
    if (!text)
        return TLCL_OK;
    cJSON *arr = cJSON_Parse(text);
    int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1, strings = n >= 0;
    for (int i = 0; strings && i < n; i++)
        strings = cJSON_IsString(cJSON_GetArrayItem(arr, i));
    cJSON_Delete(arr);
    if (strings && (classes < 0 || n == classes || n == 0)) /* none: tlcl import writes no names */
        return TLCL_OK;
    if (!strings)
        snprintf(err, err_len, "%s: metadata class_names is not a list of strings (a damaged checkpoint?)", c->path);
    else
        snprintf(err, err_len, "%s: metadata class_names has %d names but the classifier has %d classes (a damaged "
                 "checkpoint?)", c->path, n, classes);
    return TLCL_ERR_FORMAT;
}

tlcl_status tlcl_checkpoint_options(const tlcl_checkpoint *c, tlcl_model_options *o, char *err, size_t err_len)
{
    *o = tlcl_model_options_default();
    const char *fmt = tlcl_checkpoint_meta(c, "format"), *arch = tlcl_checkpoint_meta(c, "architecture");
    const char *size = tlcl_checkpoint_meta(c, "input_size"), *classes = tlcl_checkpoint_meta(c, "classes");
    const char *top = tlcl_checkpoint_meta(c, "include_top");
    if (!fmt || strcmp(fmt, CKPT_FORMAT) != 0 || !arch || !size || !classes || !top) {
        snprintf(err, err_len, "%s is not a tlcl checkpoint (metadata lacks format/architecture/input_size/classes)",
                 c->path);
        return TLCL_ERR_FORMAT;
    }
    o->arch = arch;
    if (meta_read_int(c, "input_size", size, 1, 100000, &o->size, err, err_len) != TLCL_OK ||
        meta_read_int(c, "classes", classes, 0, 1000000, &o->classes, err, err_len) != TLCL_OK ||
        meta_read_int(c, "include_top", top, 0, 1, &o->include_top, err, err_len) != TLCL_OK)
        return TLCL_ERR_FORMAT;
    const char *ih = tlcl_checkpoint_meta(c, "image_height"), *iw = tlcl_checkpoint_meta(c, "image_width");
    if ((ih && meta_read_int(c, "image_height", ih, 1, 16384, &o->image_h, err, err_len) != TLCL_OK) ||
        (iw && meta_read_int(c, "image_width", iw, 1, 16384, &o->image_w, err, err_len) != TLCL_OK))
        return TLCL_ERR_FORMAT; /* absent in older checkpoints: the input size */
    TLCL_TRY(check_class_names(c, o->include_top ? o->classes : -1, err, err_len));
    cJSON *head = cJSON_Parse(tlcl_checkpoint_meta(c, "head") ? tlcl_checkpoint_meta(c, "head") : "{}");
    cJSON *units = cJSON_GetObjectItemCaseSensitive(head, "units");
    for (int i = 0; i < 4 && i < cJSON_GetArraySize(units); i++)
        o->head_units[i] = cJSON_GetArrayItem(units, i)->valueint;
    cJSON *act = cJSON_GetObjectItemCaseSensitive(head, "activation");
    o->head_act = act_from_name(cJSON_IsString(act) ? act->valuestring : "relu");
    cJSON *drop = cJSON_GetObjectItemCaseSensitive(head, "dropout");
    if (cJSON_IsNumber(drop))
        o->head_dropout = (float)drop->valuedouble;
    cJSON_Delete(head);
    return TLCL_OK;
}

/* Reads tensor `name` into dst after checking its dtype and shape. */
static tlcl_status read_tensor(tlcl_checkpoint *c, const char *prefix, const tlcl_param_entry *e, float *dst,
                               char *err, size_t len)
{
    char name[160];
    snprintf(name, sizeof name, "%s%s", prefix, e->name);
    cJSON *t = cJSON_GetObjectItemCaseSensitive(c->header, name);
    if (!t) {
        snprintf(err, len, "%s has no tensor '%s' (the model needs it)", c->path, name);
        return TLCL_ERR_FORMAT;
    }
    cJSON *dtype = cJSON_GetObjectItemCaseSensitive(t, "dtype"), *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
    cJSON *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    int ok = cJSON_IsString(dtype) && strcmp(dtype->valuestring, "F32") == 0 && cJSON_GetArraySize(shape) == e->ndims;
    for (int d = 0; ok && d < e->ndims; d++)
        ok = cJSON_GetArrayItem(shape, d)->valueint == e->shape[4 - e->ndims + d];
    if (!ok) {
        char *got = cJSON_PrintUnformatted(shape);
        char want[96] = "[";
        for (int d = 4 - e->ndims; d < 4; d++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", d > 4 - e->ndims ? "," : "", e->shape[d]);
        strcat(want, "]");
        snprintf(err, len, "%s: tensor '%s' is %s %s, the model needs F32 %s", c->path, e->name,
                 cJSON_IsString(dtype) ? dtype->valuestring : "?", got ? got : "?", want);
        free(got);
        return TLCL_ERR_FORMAT;
    }
    double begin = cJSON_GetArrayItem(off, 0) ? cJSON_GetArrayItem(off, 0)->valuedouble : -1;
    double end = cJSON_GetArrayItem(off, 1) ? cJSON_GetArrayItem(off, 1)->valuedouble : -1;
    size_t bytes = e->count * sizeof(float);
    if (begin < 0 || end - begin != (double)bytes || fseek(c->f, c->data_start + (long)begin, SEEK_SET) != 0 ||
        fread(dst, 1, bytes, c->f) != bytes) {
        snprintf(err, len, "%s: tensor '%s' is truncated or its offsets are wrong", c->path, e->name);
        return TLCL_ERR_FORMAT;
    }
    return TLCL_OK;
}

static int is_head(const char *name)
{
    return strncmp(name, "predictions/", 12) == 0 || strncmp(name, "head_dense_", 11) == 0;
}

/* Reads one section (values or a moment) into the device buffer dst; with
 * skip_head the classifier keeps its current values. */
/* Every tensor of section sec (but the head's with skip_head) into host, the flat layout. */
static tlcl_status read_section(const tlcl_model *m, tlcl_checkpoint *c, int sec, int skip_head, float *host,
                                char *err, size_t err_len)
{
    tlcl_status s = TLCL_OK;
    for (int i = 0; s == TLCL_OK && i < m->params.count; i++)
        if (!skip_head || !is_head(m->params.entries[i].name))
            s = read_tensor(c, SECTION_PREFIX[sec], &m->params.entries[i], host + m->params.entries[i].offset, err,
                            err_len);
    return s;
}

static tlcl_status load_section(tlcl_model *m, tlcl_checkpoint *c, int sec, cl_mem dst, int skip_head, char *err,
                                size_t err_len)
{
    float *host = calloc(m->params.total ? m->params.total : 1, sizeof *host);
    if (!host)
        return TLCL_ERR_OOM;
    tlcl_status s = TLCL_OK;
    if (skip_head && m->eng)
        s = tlcl_cl_read(tlcl_engine_cl(m->eng), dst, 0, m->params.total * sizeof(float), host, "parameters");
    if (s == TLCL_OK)
        s = read_section(m, c, sec, skip_head, host, err, err_len);
    if (s == TLCL_OK && m->eng &&
        tlcl_cl_write(tlcl_engine_cl(m->eng), dst, 0, m->params.total * sizeof(float), host, "parameters") != TLCL_OK) {
        snprintf(err, err_len, "loading %s: %s", c->path, tlcl_engine_error(m->eng));
        s = TLCL_ERR_CL;
    }
    free(host);
    return s;
}

tlcl_status tlcl_model_load_optimizer(tlcl_model *m, tlcl_checkpoint *c, char *err, size_t err_len)
{
    tlcl_status s = load_section(m, c, 1, m->params.m, 0, err, err_len);
    return s == TLCL_OK ? load_section(m, c, 2, m->params.v, 0, err, err_len) : s;
}

static tlcl_status load_values(tlcl_model *m, tlcl_checkpoint *c, int skip_head, char *err, size_t err_len);

tlcl_status tlcl_model_load(tlcl_model *m, tlcl_checkpoint *c, char *err, size_t err_len)
{
    return load_values(m, c, 0, err, err_len);
}

tlcl_status tlcl_model_load_base(tlcl_model *m, tlcl_checkpoint *c, char *err, size_t err_len)
{
    return load_values(m, c, 1, err, err_len);
}

/* The input scaling the checkpoint records (its "preprocessing"). */
static void restore_preprocessing(tlcl_model *m, const tlcl_checkpoint *c)
{
    cJSON *pre = cJSON_Parse(tlcl_checkpoint_meta(c, "preprocessing") ? tlcl_checkpoint_meta(c, "preprocessing") : "{}");
    cJSON *scale = cJSON_GetObjectItemCaseSensitive(pre, "scale"), *shift = cJSON_GetObjectItemCaseSensitive(pre, "shift");
    if (cJSON_GetArraySize(scale) == 3 && cJSON_GetArraySize(shift) == 3)
        for (int k = 0; k < 3; k++) {
            m->pre_scale[k] = (float)cJSON_GetArrayItem(scale, k)->valuedouble;
            m->pre_shift[k] = (float)cJSON_GetArrayItem(shift, k)->valuedouble;
        }
    cJSON_Delete(pre);
}

static tlcl_status load_values(tlcl_model *m, tlcl_checkpoint *c, int skip_head, char *err, size_t err_len)
{
    tlcl_status s = load_section(m, c, 0, m->params.values, skip_head, err, err_len);
    restore_preprocessing(m, c);
    return s;
}

tlcl_status tlcl_model_load_host(tlcl_model *m, tlcl_checkpoint *c, float *host, char *err, size_t err_len)
{
    tlcl_status s = read_section(m, c, 0, 0, host, err, err_len);
    restore_preprocessing(m, c);
    return s;
}

int tlcl_checkpoint_class_names(const tlcl_checkpoint *c, char ***names)
{
    *names = NULL;
    cJSON *arr = cJSON_Parse(tlcl_checkpoint_meta(c, "class_names") ? tlcl_checkpoint_meta(c, "class_names") : "[]");
    int n = cJSON_GetArraySize(arr);
    char **out = n > 0 ? calloc((size_t)n, sizeof *out) : NULL;
    for (int i = 0; out && i < n; i++) {
        cJSON *s = cJSON_GetArrayItem(arr, i);
        out[i] = strdup(cJSON_IsString(s) ? s->valuestring : "");
    }
    cJSON_Delete(arr);
    *names = out;
    return out ? n : 0;
}

tlcl_status tlcl_checkpoint_verify(tlcl_checkpoint *c, char *err, size_t err_len)
{
    const char *want = tlcl_checkpoint_meta(c, CKPT_CHECKSUM_KEY);
    if (!want)
        return TLCL_OK; /* written before checksums: the tensors are still checked as they load */
    uint64_t h = TLCL_HASH_SEED;
    unsigned char buf[1 << 16];
    size_t got;
    int ok = fseek(c->f, c->data_start, SEEK_SET) == 0;
    while (ok && (got = fread(buf, 1, sizeof buf, c->f)) > 0)
        h = tlcl_hash_bytes(h, buf, got);
    if (!ok || ferror(c->f)) {
        snprintf(err, err_len, "%s: cannot read its tensor data: %s", c->path, strerror(errno));
        return TLCL_ERR_IO;
    }
    char have[17];
    snprintf(have, sizeof have, "%016llx", (unsigned long long)h);
    if (strcmp(have, want) != 0) {
        snprintf(err, err_len,
                 "%s: its tensor data does not match its checksum (%s %s, the data hashes to %s): the file is "
                 "damaged",
                 c->path, CKPT_CHECKSUM_KEY, want, have);
        return TLCL_ERR_FORMAT;
    }
    return TLCL_OK;
}
