/* model_build.c — turns an architecture into the list of layers with Keras
 * names, spatial sizes and declared parameters, in Keras's layer order (so
 * checkpoints and imports see the same table as Keras's weight files). */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tlcl_model_options tlcl_model_options_default(void)
{
    tlcl_model_options o;
    memset(&o, 0, sizeof o);
    o.arch = "efficientnet-b0";
    o.include_top = 1;
    o.head_act = TLCL_ACT_RELU;
    o.head_dropout = -1.0f;
    o.drop_connect = -1.0f;
    return o;
}

/* Declares a parameter from its Keras shape (rank 0..4). */
static int declare(tlcl_model *m, const char *layer, const char *var, int ndims, const int *shape, int is_state)
{
    int s[4] = {1, 1, 1, 1};
    for (int i = 0; i < ndims; i++)
        s[4 - ndims + i] = shape[i];
    char name[128];
    snprintf(name, sizeof name, "%s/%s", layer, var);
    int id = tlcl_params_declare(&m->params, name, s[0], s[1], s[2], s[3], is_state);
    if (id >= 0)
        m->params.entries[id].ndims = ndims;
    return id;
}

static int declare_vec(tlcl_model *m, const char *layer, const char *var, int c, int is_state)
{
    return declare(m, layer, var, 1, (int[]){c}, is_state);
}

static int out_size(const tlcl_arch *a, int in, int k, int stride, int *pad)
{
    int out;
    if (a->padding == TLCL_PAD_SYMMETRIC) {
        *pad = k / 2;
        out = (in + 2 * *pad - k) / stride + 1;
    } else {
        tlcl_conv_same(in, k, stride, &out, pad);
    }
    return out;
}

/* conv (k×k, or depthwise) + batch norm (+ act), declaring kernel and BN. */
static int convbn_init(tlcl_model *m, tlcl_convbn *cb, const char *conv_name, const char *bn_name, int depthwise,
                       int k, int stride, int cin, int cout, int in_h, int in_w, tlcl_act act)
{
    memset(cb, 0, sizeof *cb);
    snprintf(cb->conv_name, sizeof cb->conv_name, "%s", conv_name);
    snprintf(cb->bn_name, sizeof cb->bn_name, "%s", bn_name);
    cb->depthwise = depthwise;
    cb->cin = cin;
    cb->cout = depthwise ? cin : cout;
    cb->in_h = in_h, cb->in_w = in_w;
    cb->geom.kh = cb->geom.kw = k;
    cb->geom.stride = stride;
    cb->out_h = out_size(&m->arch, in_h, k, stride, &cb->geom.pad_top);
    cb->out_w = out_size(&m->arch, in_w, k, stride, &cb->geom.pad_left);
    cb->act = act;
    /* depthwise kernels are Keras (kh, kw, C, 1); the same bytes as the
     * engine's (kh, kw, 1, C) */
    cb->w_id = depthwise ? declare(m, conv_name, "kernel", 4, (int[]){k, k, cin, 1}, 0)
                         : declare(m, conv_name, "kernel", 4, (int[]){k, k, cin, cout}, 0);
    cb->gamma_id = declare_vec(m, bn_name, "gamma", cb->cout, 0);
    cb->beta_id = declare_vec(m, bn_name, "beta", cb->cout, 0);
    cb->mean_id = declare_vec(m, bn_name, "moving_mean", cb->cout, 1);
    cb->var_id = declare_vec(m, bn_name, "moving_variance", cb->cout, 1);
    cb->bn.momentum = m->arch.bn_momentum;
    cb->bn.epsilon = m->arch.bn_epsilon;
    return cb->w_id >= 0 && cb->var_id >= 0 ? 0 : -1;
}

static int se_init(tlcl_model *m, tlcl_se_layer *se, const char *block, int channels, int squeeze)
{
    char name[64];
    memset(se, 0, sizeof *se);
    se->channels = channels;
    se->squeeze = squeeze;
    snprintf(name, sizeof name, "%s_se_reduce", block);
    se->w_reduce = declare(m, name, "kernel", 4, (int[]){1, 1, channels, squeeze}, 0);
    se->b_reduce = declare_vec(m, name, "bias", squeeze, 0);
    snprintf(name, sizeof name, "%s_se_expand", block);
    se->w_expand = declare(m, name, "kernel", 4, (int[]){1, 1, squeeze, channels}, 0);
    se->b_expand = declare_vec(m, name, "bias", channels, 0);
    se->se.act_reduce = m->arch.act;
    return se->b_expand >= 0 ? 0 : -1;
}

/* One MBConv or Fused-MBConv block; *h, *w advance to its output size. */
static int block_init(tlcl_model *m, tlcl_block *b, const tlcl_stage *st, int cin, int cout, int stride, int *h,
                      int *w)
{
    const tlcl_arch *a = &m->arch;
    char c1[64], c2[64];
    int f = cin * st->expand, rc = 0;
    b->fused = st->fused;
    b->has_expand = st->expand != 1;
    b->has_se = st->se_ratio > 0;
    b->residual = stride == 1 && cin == cout;
#define N(dst, suffix) snprintf(dst, sizeof dst, "%s_%s", b->name, suffix)
    if (b->fused) {
        if (b->has_expand) {
            N(c1, "expand_conv"), N(c2, "expand_bn");
            rc |= convbn_init(m, &b->expand, c1, c2, 0, st->kernel, stride, cin, f, *h, *w, a->act);
            *h = b->expand.out_h, *w = b->expand.out_w;
        }
        if (b->has_se)
            rc |= se_init(m, &b->se, b->name, f, (int)(cin * st->se_ratio) > 1 ? (int)(cin * st->se_ratio) : 1);
        N(c1, "project_conv"), N(c2, "project_bn");
        if (b->has_expand)
            rc |= convbn_init(m, &b->project, c1, c2, 0, 1, 1, f, cout, *h, *w, TLCL_ACT_NONE);
        else
            rc |= convbn_init(m, &b->project, c1, c2, 0, st->kernel, stride, cin, cout, *h, *w, a->act);
    } else {
        if (b->has_expand) {
            N(c1, "expand_conv"), N(c2, "expand_bn");
            rc |= convbn_init(m, &b->expand, c1, c2, 0, 1, 1, cin, f, *h, *w, a->act);
        }
        N(c1, a->family == TLCL_FAMILY_V2 ? "dwconv2" : "dwconv"), N(c2, "bn");
        rc |= convbn_init(m, &b->dw, c1, c2, 1, st->kernel, stride, f, f, *h, *w, a->act);
        *h = b->dw.out_h, *w = b->dw.out_w;
        if (b->has_se)
            rc |= se_init(m, &b->se, b->name, f, (int)(cin * st->se_ratio) > 1 ? (int)(cin * st->se_ratio) : 1);
        N(c1, "project_conv"), N(c2, "project_bn");
        rc |= convbn_init(m, &b->project, c1, c2, 0, 1, 1, f, cout, *h, *w, TLCL_ACT_NONE);
    }
#undef N
    *h = b->project.out_h, *w = b->project.out_w;
    return rc;
}

static int total_blocks(const tlcl_arch *a)
{
    int n = 0;
    for (int i = 0; i < a->nstages; i++)
        n += tlcl_round_repeats(a, a->stages[i].repeats, i);
    return n;
}

/* The denominator of the stochastic-depth rate drop_connect * b / blocks:
 * Keras's V1 builder (and the TF Lite reference, len(blocks)) count the
 * blocks the model has, repeats rounded; Keras's V2 builder sums the
 * table's repeats before depth scaling (efficientnet_v2.py: blocks =
 * sum(num_repeat)), so from V2-B1 on its rates reach above drop_connect. */
static double drop_path_blocks(const tlcl_arch *a)
{
    if (a->family != TLCL_FAMILY_V2)
        return total_blocks(a);
    int n = 0;
    for (int i = 0; i < a->nstages; i++)
        n += a->stages[i].repeats;
    return n;
}

static int base_init(tlcl_model *m, int *h, int *w)
{
    const tlcl_arch *a = &m->arch;
    int stem = a->fix_stem_head ? a->stem_filters : tlcl_round_filters(a, a->stem_filters);
    if (convbn_init(m, &m->stem, "stem_conv", "stem_bn", 0, 3, 2, 3, stem, *h, *w, a->act))
        return -1;
    *h = m->stem.out_h, *w = m->stem.out_w;
    int nblocks = total_blocks(a), b = 0, cout = stem;
    m->blocks = calloc((size_t)nblocks, sizeof *m->blocks);
    if (!m->blocks)
        return -1;
    for (int s = 0; s < a->nstages; s++) {
        const tlcl_stage *st = &a->stages[s];
        int cin = tlcl_round_filters(a, st->in);
        cout = tlcl_round_filters(a, st->out);
        if (s == 0)
            cin = stem; /* Lite keeps the stem at 32 while stage 1 reads it */
        int reps = tlcl_round_repeats(a, st->repeats, s);
        for (int j = 0; j < reps; j++, b++) {
            tlcl_block *blk = &m->blocks[b];
            snprintf(blk->name, sizeof blk->name, "block%d%c", s + 1, 'a' + j);
            blk->stage = s;
            if (block_init(m, blk, st, j ? cout : cin, cout, j ? 1 : st->stride, h, w))
                return -1;
            blk->drop_rate = blk->residual ? (float)(a->drop_connect * b / drop_path_blocks(a)) : 0.0f;
        }
    }
    m->nblocks = nblocks;
    int top = a->fix_stem_head ? a->top_filters : tlcl_round_filters(a, a->top_filters);
    if (convbn_init(m, &m->top, "top_conv", "top_bn", 0, 1, 1, cout, top, *h, *w, a->act))
        return -1;
    m->top_h = *h, m->top_w = *w;
    return 0;
}

static int head_init(tlcl_model *m, const tlcl_model_options *o)
{
    int in = m->top.cout;
    for (int i = 0; i < 4 && o->head_units[i] > 0; i++) {
        tlcl_dense_layer *d = &m->head[m->nhead++];
        snprintf(d->name, sizeof d->name, "head_dense_%d", i + 1);
        d->in = in, d->out = o->head_units[i], d->act = o->head_act;
        d->w_id = declare(m, d->name, "kernel", 2, (int[]){in, d->out}, 0);
        d->b_id = declare_vec(m, d->name, "bias", d->out, 0);
        in = d->out;
    }
    tlcl_dense_layer *d = &m->head[m->nhead++];
    snprintf(d->name, sizeof d->name, "predictions");
    d->in = in, d->out = m->classes, d->act = TLCL_ACT_NONE; /* softmax lives in the loss */
    d->w_id = declare(m, d->name, "kernel", 2, (int[]){in, d->out}, 0);
    d->b_id = declare_vec(m, d->name, "bias", d->out, 0);
    return d->b_id >= 0 ? 0 : -1;
}

static void preprocess_init(tlcl_model *m)
{
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    for (int c = 0; c < 3; c++) {
        switch (m->arch.preprocess) {
        case TLCL_PRE_IMAGENET:
            m->pre_scale[c] = 1.0f / (255.0f * std[c]);
            m->pre_shift[c] = -mean[c] / std[c];
            break;
        case TLCL_PRE_SIGNED:
            m->pre_scale[c] = 1.0f / 128.0f;
            m->pre_shift[c] = -1.0f;
            break;
        case TLCL_PRE_LITE:
            m->pre_scale[c] = 1.0f / 128.0f;
            m->pre_shift[c] = -127.0f / 128.0f;
            break;
        }
    }
}

tlcl_status tlcl_model_build(tlcl_model *m, const tlcl_model_options *o, char *err, size_t err_len)
{
    memset(m, 0, sizeof *m);
    tlcl_params_init(&m->params);
    const tlcl_arch *a = o->custom ? o->custom : tlcl_arch_find(o->arch ? o->arch : "");
    if (!a) {
        char names[1024];
        tlcl_arch_list(names, sizeof names);
        snprintf(err, err_len, "unknown architecture '%s'; known: %s", o->arch ? o->arch : "", names);
        return TLCL_ERR_ARG;
    }
    m->arch = *a;
    if (o->drop_connect >= 0)
        m->arch.drop_connect = o->drop_connect;
    m->act_dtype = o->activations;
    m->size = o->size > 0 ? o->size : a->default_size;
    if (m->size < 32) {
        snprintf(err, err_len, "input size %d is too small: EfficientNet needs at least 32", m->size);
        return TLCL_ERR_ARG;
    }
    m->image_h = o->image_h > 0 ? o->image_h : m->size;
    m->image_w = o->image_w > 0 ? o->image_w : m->size;
    if (m->image_h > 16384 || m->image_w > 16384) {
        snprintf(err, err_len, "image size %dx%d is too large (at most 16384)", m->image_h, m->image_w);
        return TLCL_ERR_ARG;
    }
    m->include_top = o->include_top;
    m->classes = o->include_top ? (o->classes > 0 ? o->classes : 1000) : 0;
    m->head_dropout = o->head_dropout >= 0 ? o->head_dropout : a->dropout;
    m->norm_mean_id = m->norm_var_id = m->norm_count_id = -1;
    if (a->family == TLCL_FAMILY_V1) { /* Keras's adaptable Normalization layer: 3 + 3 + 1 state values */
        m->norm_mean_id = declare_vec(m, "normalization", "mean", 3, 1);
        m->norm_var_id = declare_vec(m, "normalization", "variance", 3, 1);
        m->norm_count_id = declare(m, "normalization", "count", 0, NULL, 1);
    }
    preprocess_init(m);
    int h = m->size, w = m->size;
    if (base_init(m, &h, &w) || (m->include_top && head_init(m, o))) {
        snprintf(err, err_len, "out of host memory describing %s", a->name);
        tlcl_model_free(m);
        return TLCL_ERR_OOM;
    }
    m->base_trainable_from = 0;
    return TLCL_OK;
}

tlcl_param_totals tlcl_model_count(const tlcl_model *m)
{
    tlcl_param_totals t = {0, 0, 0};
    for (int i = 0; i < m->params.count; i++) {
        const tlcl_param_entry *e = &m->params.entries[i];
        t.total += e->count;
        if (e->trainable)
            t.trainable += e->count;
        else
            t.non_trainable += e->count;
    }
    return t;
}

void tlcl_model_free(tlcl_model *m)
{
    if (m->eng) {
        tlcl_model_release_activations(m);
        for (int i = 0; i < m->nblocks; i++) {
            tlcl_bn_release(m->eng, &m->blocks[i].expand.bn);
            tlcl_bn_release(m->eng, &m->blocks[i].dw.bn);
            tlcl_bn_release(m->eng, &m->blocks[i].project.bn);
            tlcl_se_release(m->eng, &m->blocks[i].se.se);
        }
        tlcl_bn_release(m->eng, &m->stem.bn);
        tlcl_bn_release(m->eng, &m->top.bn);
        tlcl_params_free(m->eng, &m->params);
    } else {
        free(m->params.entries);
    }
    free(m->blocks);
    memset(m, 0, sizeof *m);
}
