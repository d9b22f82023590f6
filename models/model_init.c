/* model_init.c — binds a described model to a device: allocates the flat
 * parameter store, points each layer at its parameter views, initialises
 * the weights as Keras does, and sets which layers train. */
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct init_rng { uint64_t state; } init_rng;

static double rng_uniform(init_rng *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return ((z >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* Normal truncated at two standard deviations (Keras TruncatedNormal). */
static double rng_truncated_normal(init_rng *r)
{
    for (;;) {
        double u1 = rng_uniform(r), u2 = rng_uniform(r);
        double z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
        if (fabs(z) <= 2.0)
            return z;
    }
}

/* VarianceScaling(scale, fan_out, truncated_normal) for conv kernels
 * (kh, kw, cin, cout): fan_out = kh * kw * cout. */
static void init_conv(float *w, const tlcl_param_entry *e, int depthwise, init_rng *r)
{
    double fan_out = (double)e->shape[0] * e->shape[1] * (depthwise ? 1 : e->shape[3]);
    double std = sqrt(2.0 / fan_out) / 0.87962566103423978;
    for (size_t i = 0; i < e->count; i++)
        w[i] = (float)(std * rng_truncated_normal(r));
}

/* uniform(-limit, limit) */
static void init_uniform(float *w, size_t n, double limit, init_rng *r)
{
    for (size_t i = 0; i < n; i++)
        w[i] = (float)((2.0 * rng_uniform(r) - 1.0) * limit);
}

static void fill(float *w, const tlcl_param_entry *e, float v)
{
    for (size_t i = 0; i < e->count; i++)
        w[i] = v;
}

static void init_convbn(float *host, const tlcl_params *p, const tlcl_convbn *cb, init_rng *r)
{
    init_conv(host + p->entries[cb->w_id].offset, &p->entries[cb->w_id], cb->depthwise, r);
    fill(host + p->entries[cb->gamma_id].offset, &p->entries[cb->gamma_id], 1.0f);
    fill(host + p->entries[cb->var_id].offset, &p->entries[cb->var_id], 1.0f);
}

static void init_all(tlcl_model *m, float *host, uint32_t seed)
{
    init_rng r = {0x5eed0000ULL ^ seed};
    const tlcl_params *p = &m->params;
    if (m->norm_var_id >= 0)
        fill(host + p->entries[m->norm_var_id].offset, &p->entries[m->norm_var_id], 1.0f);
    init_convbn(host, p, &m->stem, &r);
    for (int i = 0; i < m->nblocks; i++) {
        tlcl_block *b = &m->blocks[i];
        if (b->has_expand)
            init_convbn(host, p, &b->expand, &r);
        if (!b->fused)
            init_convbn(host, p, &b->dw, &r);
        if (b->has_se) {
            init_conv(host + p->entries[b->se.w_reduce].offset, &p->entries[b->se.w_reduce], 0, &r);
            init_conv(host + p->entries[b->se.w_expand].offset, &p->entries[b->se.w_expand], 0, &r);
        }
        init_convbn(host, p, &b->project, &r);
    }
    init_convbn(host, p, &m->top, &r);
    for (int i = 0; i < m->nhead; i++) {
        const tlcl_dense_layer *d = &m->head[i];
        /* the classifier: Keras VarianceScaling(1/3, fan_out, uniform);
         * the dense stack: Dense's default glorot_uniform */
        double limit = i == m->nhead - 1 ? sqrt(1.0 / d->out) : sqrt(6.0 / (d->in + d->out));
        init_uniform(host + p->entries[d->w_id].offset, p->entries[d->w_id].count, limit, &r);
    }
}

static void bind_convbn(tlcl_params *p, tlcl_convbn *cb)
{
    cb->bn.gamma = tlcl_params_value(p, cb->gamma_id);
    cb->bn.beta = tlcl_params_value(p, cb->beta_id);
    cb->bn.moving_mean = tlcl_params_value(p, cb->mean_id);
    cb->bn.moving_var = tlcl_params_value(p, cb->var_id);
    cb->bn.dgamma = tlcl_params_grad(p, cb->gamma_id);
    cb->bn.dbeta = tlcl_params_grad(p, cb->beta_id);
}

static void bind_se(tlcl_params *p, tlcl_se_layer *s)
{
    s->se.w_reduce = tlcl_params_value(p, s->w_reduce);
    s->se.b_reduce = tlcl_params_value(p, s->b_reduce);
    s->se.w_expand = tlcl_params_value(p, s->w_expand);
    s->se.b_expand = tlcl_params_value(p, s->b_expand);
    s->se.dw_reduce = tlcl_params_grad(p, s->w_reduce);
    s->se.db_reduce = tlcl_params_grad(p, s->b_reduce);
    s->se.dw_expand = tlcl_params_grad(p, s->w_expand);
    s->se.db_expand = tlcl_params_grad(p, s->b_expand);
}

static void bind_all(tlcl_model *m)
{
    tlcl_params *p = &m->params;
    bind_convbn(p, &m->stem);
    for (int i = 0; i < m->nblocks; i++) {
        tlcl_block *b = &m->blocks[i];
        if (b->has_expand)
            bind_convbn(p, &b->expand);
        if (!b->fused)
            bind_convbn(p, &b->dw);
        if (b->has_se)
            bind_se(p, &b->se);
        bind_convbn(p, &b->project);
    }
    bind_convbn(p, &m->top);
}

tlcl_status tlcl_model_alloc(tlcl_model *m, tlcl_engine *e, uint32_t seed)
{
    m->eng = e;
    tlcl_status s = tlcl_params_alloc(e, &m->params);
    if (s != TLCL_OK)
        return s;
    bind_all(m);
    float *host = calloc(m->params.total ? m->params.total : 1, sizeof *host);
    if (!host)
        return tlcl_cl_fail(tlcl_engine_cl(e), TLCL_ERR_OOM, "out of host memory initialising %s", m->arch.name);
    init_all(m, host, seed);
    s = tlcl_cl_write(tlcl_engine_cl(e), m->params.values, 0, m->params.total * sizeof(float), host, "parameters");
    free(host);
    return s;
}

static void set_trainable(tlcl_params *p, int id, int on)
{
    if (id >= 0 && !p->entries[id].is_state)
        p->entries[id].trainable = on;
}

static void convbn_trainable(tlcl_params *p, tlcl_convbn *cb, int on, int bn_on)
{
    set_trainable(p, cb->w_id, on);
    set_trainable(p, cb->gamma_id, bn_on);
    set_trainable(p, cb->beta_id, bn_on);
}

void tlcl_model_set_trainable(tlcl_model *m, int first, int bn_frozen_always)
{
    tlcl_params *p = &m->params;
    m->base_trainable_from = first < 0 ? 0 : first > m->nblocks + 1 ? m->nblocks + 1 : first;
    int stem_on = m->base_trainable_from == 0;
    convbn_trainable(p, &m->stem, stem_on, stem_on && !bn_frozen_always);
    for (int i = 0; i < m->nblocks; i++) {
        tlcl_block *b = &m->blocks[i];
        int on = i + 1 >= m->base_trainable_from, bn_on = on && !bn_frozen_always;
        b->trainable = on;
        if (b->has_expand)
            convbn_trainable(p, &b->expand, on, bn_on);
        if (!b->fused)
            convbn_trainable(p, &b->dw, on, bn_on);
        if (b->has_se)
            for (int k = 0; k < 4; k++)
                set_trainable(p, (&b->se.w_reduce)[k], on);
        convbn_trainable(p, &b->project, on, bn_on);
    }
    int top_on = m->base_trainable_from <= m->nblocks;
    convbn_trainable(p, &m->top, top_on, top_on && !bn_frozen_always);
}
