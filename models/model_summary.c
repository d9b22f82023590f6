/* model_summary.c — the layer table of `tlcl summary`, like Keras's
 * model.summary(): layer name, type, output shape, parameter count, then
 * totals split into trainable and non-trainable. */
#include "model.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

/* ---- the layers in Keras's order ---------------------------------------- */

typedef struct layer_walk {
    const tlcl_model *m;
    tlcl_layer_fn fn;
    void *ctx;
} layer_walk;

static void visit(layer_walk *w, const char *name, const char *type, int h, int wd, int c, const int *ids, int n)
{
    tlcl_layer_info l = {name, type, h, wd, c, {-1, -1, -1, -1}, 0};
    for (int i = 0; i < n; i++)
        if (ids[i] >= 0)
            l.param_ids[l.nparams++] = ids[i];
    w->fn(&l, w->ctx);
}

static void convbn_layers(layer_walk *w, const tlcl_convbn *cb)
{
    visit(w, cb->conv_name, cb->depthwise ? "DepthwiseConv2D" : "Conv2D", cb->out_h, cb->out_w, cb->cout, &cb->w_id,
          1);
    int bn_ids[4] = {cb->gamma_id, cb->beta_id, cb->mean_id, cb->var_id};
    visit(w, cb->bn_name, "BatchNormalization", cb->out_h, cb->out_w, cb->cout, bn_ids, 4);
}

static void block_layers(layer_walk *w, const tlcl_block *b)
{
    char name[64];
    if (b->has_expand)
        convbn_layers(w, &b->expand);
    if (!b->fused)
        convbn_layers(w, &b->dw);
    if (b->has_se) {
        snprintf(name, sizeof name, "%s_se_reduce", b->name);
        visit(w, name, "Conv2D", 1, 1, b->se.squeeze, (int[]){b->se.w_reduce, b->se.b_reduce}, 2);
        snprintf(name, sizeof name, "%s_se_expand", b->name);
        visit(w, name, "Conv2D", 1, 1, b->se.channels, (int[]){b->se.w_expand, b->se.b_expand}, 2);
    }
    convbn_layers(w, &b->project);
    if (b->residual) {
        snprintf(name, sizeof name, "%s_add", b->name);
        visit(w, name, "Add", b->project.out_h, b->project.out_w, b->project.cout, NULL, 0);
    }
}

void tlcl_model_layers(const tlcl_model *m, tlcl_layer_fn fn, void *ctx)
{
    layer_walk w = {m, fn, ctx};
    if (m->norm_mean_id >= 0)
        visit(&w, "normalization", "Normalization", m->size, m->size, 3,
              (int[]){m->norm_mean_id, m->norm_var_id, m->norm_count_id}, 3);
    convbn_layers(&w, &m->stem);
    for (int i = 0; i < m->nblocks; i++)
        block_layers(&w, &m->blocks[i]);
    convbn_layers(&w, &m->top);
    if (!m->include_top)
        return;
    visit(&w, "avg_pool", "GlobalAveragePooling2D", 0, 0, m->top.cout, NULL, 0);
    if (m->head_dropout > 0)
        visit(&w, "top_dropout", "Dropout", 0, 0, m->top.cout, NULL, 0);
    for (int i = 0; i < m->nhead; i++)
        visit(&w, m->head[i].name, "Dense", 0, 0, m->head[i].out, (int[]){m->head[i].w_id, m->head[i].b_id}, 2);
}

/* ---- the table ------------------------------------------------------------ */

typedef struct summary_sink {
    const tlcl_model *m;
    FILE *f;
    cJSON *rows; /* JSON mode when non-NULL */
} summary_sink;

static void row(const tlcl_layer_info *l, void *ctx)
{
    summary_sink *s = ctx;
    size_t params = 0;
    for (int i = 0; i < l->nparams; i++)
        params += s->m->params.entries[l->param_ids[i]].count;
    char shape[64];
    if (l->h > 0)
        snprintf(shape, sizeof shape, "(None, %d, %d, %d)", l->h, l->w, l->c);
    else
        snprintf(shape, sizeof shape, "(None, %d)", l->c);
    if (s->rows) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "name", l->name);
        cJSON_AddStringToObject(r, "type", l->type);
        cJSON_AddStringToObject(r, "output_shape", shape);
        cJSON_AddNumberToObject(r, "params", (double)params);
        cJSON_AddItemToArray(s->rows, r);
    } else {
        fprintf(s->f, "%-28s %-22s %-22s %12zu\n", l->name, l->type, shape, params);
    }
}

void tlcl_model_summary(const tlcl_model *m, FILE *f, int json)
{
    tlcl_param_totals t = tlcl_model_count(m);
    summary_sink s = {m, f, NULL};
    if (json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "architecture", m->arch.name);
        cJSON_AddNumberToObject(root, "input_size", m->size);
        cJSON_AddBoolToObject(root, "include_top", m->include_top);
        cJSON_AddNumberToObject(root, "classes", m->classes);
        s.rows = cJSON_AddArrayToObject(root, "layers");
        tlcl_model_layers(m, row, &s);
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
    tlcl_model_layers(m, row, &s);
    fprintf(f, "Total params: %zu\nTrainable params: %zu\nNon-trainable params: %zu\n", t.total, t.trainable,
            t.non_trainable);
}
