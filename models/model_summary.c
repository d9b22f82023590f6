/* model_summary.c — the layer table of `tlcl summary`, like Keras's
 * model.summary(): layer name, type, output shape, parameter count, then
 * totals split into trainable and non-trainable. */
#include "model.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

typedef struct summary_sink {
    FILE *f;
    cJSON *rows; /* JSON mode when non-NULL */
} summary_sink;

static size_t params_of(const tlcl_model *m, const int *ids, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        if (ids[i] >= 0)
            total += m->params.entries[ids[i]].count;
    return total;
}

static void row(summary_sink *s, const char *name, const char *type, int h, int w, int c, size_t params)
{
    char shape[64];
    if (h > 0)
        snprintf(shape, sizeof shape, "(None, %d, %d, %d)", h, w, c);
    else
        snprintf(shape, sizeof shape, "(None, %d)", c);
    if (s->rows) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "name", name);
        cJSON_AddStringToObject(r, "type", type);
        cJSON_AddStringToObject(r, "output_shape", shape);
        cJSON_AddNumberToObject(r, "params", (double)params);
        cJSON_AddItemToArray(s->rows, r);
    } else {
        fprintf(s->f, "%-28s %-22s %-22s %12zu\n", name, type, shape, params);
    }
}

static void convbn_rows(summary_sink *s, const tlcl_model *m, const tlcl_convbn *cb)
{
    row(s, cb->conv_name, cb->depthwise ? "DepthwiseConv2D" : "Conv2D", cb->out_h, cb->out_w, cb->cout,
        params_of(m, &cb->w_id, 1));
    int bn_ids[4] = {cb->gamma_id, cb->beta_id, cb->mean_id, cb->var_id};
    row(s, cb->bn_name, "BatchNormalization", cb->out_h, cb->out_w, cb->cout, params_of(m, bn_ids, 4));
}

static void block_rows(summary_sink *s, const tlcl_model *m, const tlcl_block *b)
{
    if (b->has_expand)
        convbn_rows(s, m, &b->expand);
    if (!b->fused)
        convbn_rows(s, m, &b->dw);
    if (b->has_se) {
        char name[64];
        snprintf(name, sizeof name, "%s_se_reduce", b->name);
        row(s, name, "Conv2D", 1, 1, b->se.squeeze, params_of(m, (int[]){b->se.w_reduce, b->se.b_reduce}, 2));
        snprintf(name, sizeof name, "%s_se_expand", b->name);
        row(s, name, "Conv2D", 1, 1, b->se.channels, params_of(m, (int[]){b->se.w_expand, b->se.b_expand}, 2));
    }
    convbn_rows(s, m, &b->project);
    if (b->residual) {
        char name[64];
        snprintf(name, sizeof name, "%s_add", b->name);
        row(s, name, "Add", b->project.out_h, b->project.out_w, b->project.cout, 0);
    }
}

static void all_rows(summary_sink *s, const tlcl_model *m)
{
    if (m->norm_mean_id >= 0)
        row(s, "normalization", "Normalization", m->size, m->size, 3,
            params_of(m, (int[]){m->norm_mean_id, m->norm_var_id, m->norm_count_id}, 3));
    convbn_rows(s, m, &m->stem);
    for (int i = 0; i < m->nblocks; i++)
        block_rows(s, m, &m->blocks[i]);
    convbn_rows(s, m, &m->top);
    if (!m->include_top)
        return;
    row(s, "avg_pool", "GlobalAveragePooling2D", 0, 0, m->top.cout, 0);
    if (m->head_dropout > 0)
        row(s, "top_dropout", "Dropout", 0, 0, m->top.cout, 0);
    for (int i = 0; i < m->nhead; i++)
        row(s, m->head[i].name, "Dense", 0, 0, m->head[i].out,
            params_of(m, (int[]){m->head[i].w_id, m->head[i].b_id}, 2));
}

void tlcl_model_summary(const tlcl_model *m, FILE *f, int json)
{
    tlcl_param_totals t = tlcl_model_count(m);
    summary_sink s = {f, NULL};
    if (json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "architecture", m->arch.name);
        cJSON_AddNumberToObject(root, "input_size", m->size);
        cJSON_AddBoolToObject(root, "include_top", m->include_top);
        cJSON_AddNumberToObject(root, "classes", m->classes);
        s.rows = cJSON_AddArrayToObject(root, "layers");
        all_rows(&s, m);
        cJSON_AddNumberToObject(root, "total_params", (double)t.total);
        cJSON_AddNumberToObject(root, "trainable_params", (double)t.trainable);
        cJSON_AddNumberToObject(root, "non_trainable_params", (double)t.non_trainable);
        char *text = cJSON_Print(root);
        fprintf(f, "%s\n", text);
        free(text);
        cJSON_Delete(root);
        return;
    }
    fprintf(f, "Model: \"%s\" (input %dx%dx3%s)\n", m->arch.name, m->size, m->size,
            m->include_top ? "" : ", no top");
    fprintf(f, "%-28s %-22s %-22s %12s\n", "Layer", "Type", "Output shape", "Param #");
    all_rows(&s, m);
    fprintf(f, "Total params: %zu\nTrainable params: %zu\nNon-trainable params: %zu\n", t.total, t.trainable,
            t.non_trainable);
}
