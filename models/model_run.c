/* model_run.c — the forward and backward pass of the whole network, layer
 * by layer in the llm.c manner: each forward keeps what its backward needs,
 * and layers below the lowest trainable one keep nothing (their gradients
 * are never computed). */
#include "model.h"

#include <stdio.h>
#include <string.h>

static void release(tlcl_model *m, tlcl_tensor *t)
{
    if (t->buf)
        tlcl_tensor_release(m->eng, t);
}

/* Names the launches that follow as layer name+suffix, with the pass's work,
 * for `tlcl bench`'s per-layer profile; nothing when profiling is off. */
static void scope(tlcl_model *m, const char *name, const char *suffix, tlcl_cl_phase phase, tlcl_layer_cost c)
{
    tlcl_cl *cl = tlcl_engine_cl(m->eng);
    if (!tlcl_cl_profiling(cl))
        return;
    char full[80];
    snprintf(full, sizeof full, "%s%s", name, suffix);
    tlcl_cl_profile_scope(cl, full, phase, c.flops, c.bytes);
}

/* A residual sum reads two tensors and writes one. */
static tlcl_layer_cost add_cost(const tlcl_tensor *t)
{
    return tlcl_move_cost(2.0 * tlcl_tensor_count(t), tlcl_tensor_count(t));
}

/* Global average pooling moves the top's output one way and [N, C] the other
 * (forward reads the big one, backward writes it). */
static tlcl_layer_cost pool_cost(const tlcl_model *m)
{
    return tlcl_move_cost((double)m->batch * m->top_h * m->top_w * m->top.cout, (double)m->batch * m->top.cout);
}

static int trainable(const tlcl_model *m, int id) { return id >= 0 && m->params.entries[id].trainable; }

static tlcl_bn_mode bn_mode(const tlcl_model *m, const tlcl_convbn *cb)
{
    if (!trainable(m, cb->gamma_id))
        return TLCL_BN_FROZEN;
    return m->training ? TLCL_BN_TRAIN : TLCL_BN_INFER;
}

/* Layer positions: 0 stem, 1..nblocks blocks, nblocks+1 top, then the head.
 * Gradients flow from the head down to position base_trainable_from. */
/* Whether backward will run through the layer at `position`: never after an
 * inference pass, so inference keeps a block's worth of activations, not
 * the whole network's. */
static int needs_grad(const tlcl_model *m, int position)
{
    return m->training && position >= m->base_trainable_from;
}

/* ---- gradients done -------------------------------------------------------
 * After a layer's backward is enqueued: everything from its first parameter
 * up is final (m->grads_ready). A layer whose parameters reach above what
 * was already told would break that promise: the layout is not in forward
 * order, a model-building error, reported rather than summed half-done. */
static tlcl_status grads_final(tlcl_model *m, const char *layer, const int *ids, int n)
{
    if (!m->grads_ready)
        return TLCL_OK;
    size_t lo = m->grads_final_from, hi = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0)
            continue;
        const tlcl_param_entry *pe = &m->params.entries[ids[i]];
        lo = pe->offset < lo ? pe->offset : lo;
        hi = pe->offset + pe->count > hi ? pe->offset + pe->count : hi;
    }
    if (hi > m->grads_final_from)
        return tlcl_cl_fail(tlcl_engine_cl(m->eng), TLCL_ERR_ARG,
                            "model: the parameters of '%s' lie above those of a layer after it (at %zu, above %zu): "
                            "the gradient buckets need the parameters in forward order", layer, hi - 1,
                            m->grads_final_from);
    m->grads_final_from = lo;
    return m->grads_ready(m->grads_ready_ctx, lo);
}

static tlcl_status convbn_grads_final(tlcl_model *m, const tlcl_convbn *cb)
{
    int ids[] = {cb->w_id, cb->gamma_id, cb->beta_id, cb->mean_id, cb->var_id};
    return grads_final(m, cb->conv_name, ids, 5);
}

/* A feature map of the base (an activation or its gradient), in the
 * model's storage (tlcl_model_options.activations). */
static tlcl_status fmap_alloc(tlcl_model *m, tlcl_tensor *t, const char *name, int n, int h, int w, int c)
{
    return tlcl_tensor_alloc_as(m->eng, t, name, m->act_dtype, n, h, w, c);
}

/* ---- conv + batch norm + activation ------------------------------------ */

/* Whether nothing runs backward through the layer at `position` (see
 * needs_grad): inference, or a frozen base below the trainable layers.
 * Then batch norm and act ride on the convolution's output. */
static int convbn_fused(const tlcl_model *m, const tlcl_convbn *cb, int position)
{
    return !m->training || (!needs_grad(m, position) && bn_mode(m, cb) != TLCL_BN_TRAIN);
}

/* The fused layer into out (named name), plus residual when given (a 1x1
 * or k x k convolution's epilogue adds it). */
static tlcl_status convbn_fused_forward(tlcl_model *m, tlcl_convbn *cb, const tlcl_tensor *in, tlcl_tensor *out,
                                        const char *name, const tlcl_tensor *residual)
{
    tlcl_engine *e = m->eng;
    const tlcl_tensor *w = tlcl_params_value(&m->params, cb->w_id);
    TLCL_TRY(fmap_alloc(m, out, name, m->batch, cb->out_h, cb->out_w, cb->cout));
    if (cb->depthwise)
        return tlcl_depthwise_bn_forward(e, out, in, w, &cb->geom, &cb->bn, cb->act);
    return tlcl_conv2d_bn_add_forward(e, out, in, w, &cb->geom, &cb->bn, cb->act, residual);
}

/* The layer at `position` (see needs_grad) */
static tlcl_status convbn_forward(tlcl_model *m, tlcl_convbn *cb, const tlcl_tensor *in, int position)
{
    tlcl_engine *e = m->eng;
    const tlcl_tensor *w = tlcl_params_value(&m->params, cb->w_id);
    scope(m, cb->conv_name, "", TLCL_PHASE_FWD, tlcl_convbn_cost(cb, m->batch));
    if (convbn_fused(m, cb, position))
        return convbn_fused_forward(m, cb, in, &cb->out, cb->bn_name, NULL);
    TLCL_TRY(fmap_alloc(m, &cb->conv_out, cb->conv_name, m->batch, cb->out_h, cb->out_w, cb->cout));
    if (cb->depthwise)
        TLCL_TRY(tlcl_depthwise_forward(e, &cb->conv_out, in, w, &cb->geom));
    else
        TLCL_TRY(tlcl_conv2d_forward(e, &cb->conv_out, in, w, &cb->geom));
    TLCL_TRY(fmap_alloc(m, &cb->out, cb->bn_name, m->batch, cb->out_h, cb->out_w, cb->cout));
    return tlcl_batchnorm_forward(e, &cb->bn, &cb->out, &cb->conv_out, bn_mode(m, cb), cb->act);
}

/* dout -> din (allocated when want_din). */
static tlcl_status convbn_backward(tlcl_model *m, tlcl_convbn *cb, const tlcl_tensor *in, const tlcl_tensor *dout,
                                   tlcl_tensor *din, int want_din)
{
    tlcl_engine *e = m->eng;
    tlcl_bn_mode mode = bn_mode(m, cb);
    int conv_trains = trainable(m, cb->w_id);
    if (!want_din && !conv_trains && mode == TLCL_BN_FROZEN)
        return TLCL_OK;
    scope(m, cb->conv_name, "", TLCL_PHASE_BWD, tlcl_convbn_backward_cost(cb, m->batch, want_din, conv_trains));
    tlcl_tensor dconv;
    TLCL_TRY(fmap_alloc(m, &dconv, "dconv", m->batch, cb->out_h, cb->out_w, cb->cout));
    TLCL_TRY(tlcl_batchnorm_backward(e, &cb->bn, &dconv, dout, &cb->conv_out, mode, cb->act));
    if (want_din)
        TLCL_TRY(fmap_alloc(m, din, "dinput", in->n, in->h, in->w, in->c));
    tlcl_tensor *dw = conv_trains ? tlcl_params_grad(&m->params, cb->w_id) : NULL;
    const tlcl_tensor *w = tlcl_params_value(&m->params, cb->w_id);
    tlcl_status s = cb->depthwise ? tlcl_depthwise_backward(e, want_din ? din : NULL, dw, &dconv, in, w, &cb->geom)
                                  : tlcl_conv2d_backward(e, want_din ? din : NULL, dw, &dconv, in, w, &cb->geom);
    tlcl_tensor_release(e, &dconv);
    return s != TLCL_OK ? s : convbn_grads_final(m, cb);
}

static void convbn_release(tlcl_model *m, tlcl_convbn *cb)
{
    release(m, &cb->conv_out);
    release(m, &cb->out);
}

/* ---- blocks ---------------------------------------------------------------- */

static uint32_t block_seed(const tlcl_model *m, int index) { return m->seed * 2654435761u + 977u * (index + 1); }

static void block_release_inner(tlcl_model *m, tlcl_block *b)
{
    convbn_release(m, &b->expand);
    convbn_release(m, &b->dw);
    release(m, &b->se.out);
    if (b->residual)
        convbn_release(m, &b->project);
    else
        release(m, &b->project.conv_out); /* project.out is the block output */
}

static const tlcl_tensor *block_output(tlcl_block *b) { return b->residual ? &b->out : &b->project.out; }

/* Inside a block that backward will not run through, a stage's output goes
 * back to the pool as soon as the next stage has read it (its input, the
 * block's input, stays for the residual add). */
static void drop_consumed(tlcl_model *m, int index, tlcl_tensor *stage_out)
{
    if (stage_out && !needs_grad(m, index + 1))
        release(m, stage_out);
}

static tlcl_status block_forward(tlcl_model *m, tlcl_block *b, int index, const tlcl_tensor *in)
{
    const tlcl_tensor *x = in;
    tlcl_tensor *consumed = NULL; /* the last stage's output, once the next one has read it */
    if (b->has_expand) {
        TLCL_TRY(convbn_forward(m, &b->expand, x, index + 1));
        x = consumed = &b->expand.out;
    }
    if (!b->fused) {
        TLCL_TRY(convbn_forward(m, &b->dw, x, index + 1));
        drop_consumed(m, index, consumed);
        x = consumed = &b->dw.out;
    }
    if (b->has_se) {
        scope(m, b->name, "_se", TLCL_PHASE_FWD, tlcl_se_cost(&b->se, x, 0));
        TLCL_TRY(fmap_alloc(m, &b->se.out, "se_excite", x->n, x->h, x->w, x->c));
        TLCL_TRY(tlcl_se_forward(m->eng, &b->se.se, &b->se.out, x));
        drop_consumed(m, index, consumed);
        x = consumed = &b->se.out;
    }
    if (b->residual && !(m->training && b->drop_rate > 0) && convbn_fused(m, &b->project, index + 1)) {
        /* the add rides on the project convolution's epilogue too */
        scope(m, b->project.conv_name, "", TLCL_PHASE_FWD, tlcl_convbn_cost(&b->project, m->batch));
        TLCL_TRY(convbn_fused_forward(m, &b->project, x, &b->out, "block_add", in));
        drop_consumed(m, index, consumed);
        return TLCL_OK;
    }
    TLCL_TRY(convbn_forward(m, &b->project, x, index + 1));
    drop_consumed(m, index, consumed);
    if (!b->residual)
        return TLCL_OK;
    scope(m, b->name, "_add", TLCL_PHASE_FWD, add_cost(in));
    TLCL_TRY(fmap_alloc(m, &b->out, "block_add", in->n, in->h, in->w, in->c));
    if (m->training && b->drop_rate > 0)
        return tlcl_drop_path_add_forward(m->eng, &b->out, &b->project.out, in, b->drop_rate, block_seed(m, index),
                                          m->first_sample);
    return tlcl_add_forward(m->eng, &b->out, &b->project.out, in);
}

/* Input of the project conv, the SE and the depthwise conv inside a block. */
static const tlcl_tensor *block_stage_input(tlcl_block *b, const tlcl_tensor *in, int stage)
{
    const tlcl_tensor *x = in;
    if (stage > 0 && b->has_expand)
        x = &b->expand.out;
    if (stage > 1 && !b->fused)
        x = &b->dw.out;
    if (stage > 2 && b->has_se)
        x = &b->se.out;
    return x;
}

static tlcl_status block_backward(tlcl_model *m, tlcl_block *b, int index, const tlcl_tensor *in,
                                  const tlcl_tensor *dout, tlcl_tensor *din, int want_din)
{
    tlcl_engine *e = m->eng;
    tlcl_tensor dbranch = {0}, d1 = {0}, d2 = {0};
    const tlcl_tensor *d = dout;
    if (b->residual && m->training && b->drop_rate > 0) {
        scope(m, b->name, "_add", TLCL_PHASE_BWD, (tlcl_layer_cost){0, 0}); /* work counted at the sum below */
        TLCL_TRY(fmap_alloc(m, &dbranch, "dbranch", dout->n, dout->h, dout->w, dout->c));
        TLCL_TRY(tlcl_drop_path_backward(e, &dbranch, dout, b->drop_rate, block_seed(m, index), m->first_sample));
        d = &dbranch;
    }
    /* walk back: project, se, depthwise, expand; each stage's din feeds the next */
    int last = b->has_expand ? 0 : !b->fused ? 1 : 2; /* the first stage present */
    (void)last;
    TLCL_TRY(convbn_backward(m, &b->project, block_stage_input(b, in, 3), d, &d1,
                        want_din || b->has_se || !b->fused || b->has_expand));
    release(m, &dbranch);
    d = &d1;
    if (b->has_se) {
        const tlcl_tensor *x = block_stage_input(b, in, 2);
        scope(m, b->name, "_se", TLCL_PHASE_BWD, tlcl_se_cost(&b->se, x, 1));
        TLCL_TRY(fmap_alloc(m, &d2, "dse", x->n, x->h, x->w, x->c));
        TLCL_TRY(tlcl_se_backward(e, &b->se.se, &d2, d, x));
        int se_ids[] = {b->se.w_reduce, b->se.b_reduce, b->se.w_expand, b->se.b_expand};
        TLCL_TRY(grads_final(m, b->name, se_ids, 4));
        release(m, &d1);
        d1 = d2;
        memset(&d2, 0, sizeof d2);
    }
    if (!b->fused) {
        TLCL_TRY(convbn_backward(m, &b->dw, block_stage_input(b, in, 1), d, &d2, want_din || b->has_expand));
        release(m, &d1);
        d1 = d2;
        memset(&d2, 0, sizeof d2);
    }
    if (b->has_expand) {
        TLCL_TRY(convbn_backward(m, &b->expand, in, d, &d2, want_din));
        release(m, &d1);
        d1 = d2;
    }
    if (!want_din) {
        release(m, &d1);
        return TLCL_OK;
    }
    *din = d1;
    if (b->residual) {
        scope(m, b->name, "_add", TLCL_PHASE_BWD, add_cost(dout));
        TLCL_TRY(tlcl_tensor_axpy(e, din, 1.0f, dout));
    }
    return TLCL_OK;
}

/* ---- the whole network ---------------------------------------------------- */

void tlcl_model_release_activations(tlcl_model *m)
{
    if (!m->eng)
        return;
    release(m, &m->resized);
    release(m, &m->input);
    convbn_release(m, &m->stem);
    for (int i = 0; i < m->nblocks; i++) {
        block_release_inner(m, &m->blocks[i]);
        release(m, &m->blocks[i].out);
        release(m, &m->blocks[i].project.out);
    }
    convbn_release(m, &m->top);
    release(m, &m->pooled);
    release(m, &m->dropped);
    release(m, &m->dinput);
    for (int i = 0; i < m->nhead; i++) {
        release(m, &m->head[i].pre);
        release(m, &m->head[i].out_t);
    }
}

/* After layer `position` ran: a layer that takes no part in backward drops
 * its inner tensors and its input at once (frozen feature extraction keeps
 * two activations alive, not the whole network's). */
static void drop_unneeded(tlcl_model *m, int position, tlcl_tensor *input_of_layer)
{
    if (needs_grad(m, position))
        return;
    if (position == 0)
        release(m, &m->stem.conv_out);
    else if (position <= m->nblocks)
        block_release_inner(m, &m->blocks[position - 1]);
    else
        release(m, &m->top.conv_out);
    if (input_of_layer)
        release(m, input_of_layer);
}

static tlcl_tensor *block_output_mut(tlcl_block *b) { return b->residual ? &b->out : &b->project.out; }

/* Keras's Resizing(size, size) in front of the network: images of another
 * size are resized on the device (bilinear, half-pixel centres). */
static tlcl_status resize_input(tlcl_model *m, const tlcl_tensor **input)
{
    if ((*input)->h == m->size && (*input)->w == m->size)
        return TLCL_OK;
    scope(m, "resizing", "", TLCL_PHASE_FWD, tlcl_move_cost(tlcl_tensor_count(*input), (double)(*input)->n * m->size *
                                                                                            m->size * 3));
    TLCL_TRY(tlcl_tensor_alloc(m->eng, &m->resized, "resized input", (*input)->n, m->size, m->size, 3));
    TLCL_TRY(tlcl_resize_bilinear_forward(m->eng, &m->resized, *input));
    *input = &m->resized;
    return TLCL_OK;
}

static tlcl_status base_forward(tlcl_model *m, const tlcl_tensor *input)
{
    TLCL_TRY(resize_input(m, &input));
    TLCL_TRY(fmap_alloc(m, &m->input, "preprocessed input", input->n, input->h, input->w, 3));
    scope(m, "preprocess", "", TLCL_PHASE_FWD, tlcl_move_cost(tlcl_tensor_count(input), tlcl_tensor_count(input)));
    TLCL_TRY(tlcl_affine_channels(m->eng, &m->input, input, m->pre_scale, m->pre_shift));
    TLCL_TRY(convbn_forward(m, &m->stem, &m->input, 0));
    drop_unneeded(m, 0, &m->input);
    release(m, &m->resized); /* the affine copy is what backward reads */
    tlcl_tensor *x = &m->stem.out;
    for (int i = 0; i < m->nblocks; i++) {
        TLCL_TRY(block_forward(m, &m->blocks[i], i, x));
        drop_unneeded(m, i + 1, x);
        x = block_output_mut(&m->blocks[i]);
    }
    TLCL_TRY(convbn_forward(m, &m->top, x, m->nblocks + 1));
    drop_unneeded(m, m->nblocks + 1, x);
    return TLCL_OK;
}

/* dropout -> dense stack -> classifier, from m->pooled */
static tlcl_status classifier_forward(tlcl_model *m, tlcl_tensor **out)
{
    tlcl_engine *e = m->eng;
    int N = m->batch, C = m->top.cout;
    const tlcl_tensor *x = &m->pooled;
    if (m->training && m->head_dropout > 0) {
        scope(m, "top_dropout", "", TLCL_PHASE_FWD, tlcl_move_cost((double)N * C, (double)N * C));
        TLCL_TRY(tlcl_tensor_alloc(e, &m->dropped, "top_dropout", N, 1, 1, C));
        TLCL_TRY(tlcl_dropout_forward(e, &m->dropped, &m->pooled, m->head_dropout, m->seed * 2246822519u + 3u,
                                       m->first_sample));
        x = &m->dropped;
    }
    for (int i = 0; i < m->nhead; i++) {
        tlcl_dense_layer *d = &m->head[i];
        scope(m, d->name, "", TLCL_PHASE_FWD, tlcl_dense_cost(d, N, 0));
        TLCL_TRY(tlcl_tensor_alloc(e, &d->out_t, d->name, N, 1, 1, d->out));
        if (d->act != TLCL_ACT_NONE)
            TLCL_TRY(tlcl_tensor_alloc(e, &d->pre, "dense_pre", N, 1, 1, d->out));
        TLCL_TRY(tlcl_dense_forward(e, &d->out_t, d->act != TLCL_ACT_NONE ? &d->pre : NULL, x,
                               tlcl_params_value(&m->params, d->w_id), tlcl_params_value(&m->params, d->b_id),
                               d->act));
        x = &d->out_t;
    }
    *out = &m->head[m->nhead - 1].out_t;
    return TLCL_OK;
}

static tlcl_status head_forward(tlcl_model *m, tlcl_tensor **out)
{
    TLCL_TRY(tlcl_tensor_alloc(m->eng, &m->pooled, "avg_pool", m->batch, 1, 1, m->top.cout));
    scope(m, "avg_pool", "", TLCL_PHASE_FWD, pool_cost(m));
    TLCL_TRY(tlcl_global_avgpool_forward(m->eng, &m->pooled, &m->top.out));
    if (!m->include_top) {
        *out = &m->pooled;
        return TLCL_OK;
    }
    return classifier_forward(m, out);
}

tlcl_status tlcl_model_forward(tlcl_model *m, const tlcl_tensor *input, int training, uint32_t seed,
                               tlcl_tensor **out)
{
    if (!m->eng)
        return TLCL_ERR_ARG;
    tlcl_model_release_activations(m);
    if (input->h != m->image_h || input->w != m->image_w || input->c != 3)
        return tlcl_cl_fail(tlcl_engine_cl(m->eng), TLCL_ERR_ARG,
                            "%s expects input (N, %d, %d, 3), got (%d, %d, %d, %d)", m->arch.name, m->image_h,
                            m->image_w, input->n, input->h, input->w, input->c);
    m->batch = input->n;
    m->training = training;
    m->seed = seed;
    tlcl_engine_set_pool_reuse(m->eng, training ? TLCL_POOL_REUSE_TRAINING : TLCL_POOL_REUSE_INFERENCE);
    TLCL_TRY(base_forward(m, input));
    return head_forward(m, out);
}

/* classifier -> dense stack -> dropout backward: *dpooled [N, C] */
static tlcl_status classifier_backward(tlcl_model *m, const tlcl_tensor *dlogits, tlcl_tensor *dpooled)
{
    tlcl_engine *e = m->eng;
    tlcl_tensor d = {0}, dnext = {0};
    const tlcl_tensor *g = dlogits;
    for (int i = m->nhead - 1; i >= 0; i--) {
        tlcl_dense_layer *dl = &m->head[i];
        const tlcl_tensor *x = i > 0 ? &m->head[i - 1].out_t : m->dropped.buf ? &m->dropped : &m->pooled;
        scope(m, dl->name, "", TLCL_PHASE_BWD, tlcl_dense_cost(dl, m->batch, 1));
        TLCL_TRY(tlcl_tensor_alloc(e, &dnext, "dhead", m->batch, 1, 1, dl->in));
        TLCL_TRY(tlcl_dense_backward(e, &dnext, tlcl_params_grad(&m->params, dl->w_id),
                                tlcl_params_grad(&m->params, dl->b_id), g, x, tlcl_params_value(&m->params, dl->w_id),
                                dl->act != TLCL_ACT_NONE ? &dl->pre : NULL, dl->act));
        int dense_ids[] = {dl->w_id, dl->b_id};
        TLCL_TRY(grads_final(m, dl->name, dense_ids, 2));
        release(m, &d);
        d = dnext;
        g = &d;
    }
    if (m->dropped.buf) {
        scope(m, "top_dropout", "", TLCL_PHASE_BWD, tlcl_move_cost(tlcl_tensor_count(&d), tlcl_tensor_count(&d)));
        TLCL_TRY(tlcl_dropout_backward(e, &d, &d, m->head_dropout, m->seed * 2246822519u + 3u,
                                       m->first_sample));
    }
    *dpooled = d;
    return TLCL_OK;
}

static tlcl_status head_backward(tlcl_model *m, const tlcl_tensor *dlogits, tlcl_tensor *dtop)
{
    tlcl_tensor d = {0};
    TLCL_TRY(classifier_backward(m, dlogits, &d));
    TLCL_TRY(fmap_alloc(m, dtop, "dtop", m->batch, m->top_h, m->top_w, m->top.cout));
    scope(m, "avg_pool", "", TLCL_PHASE_BWD, pool_cost(m));
    TLCL_TRY(tlcl_global_avgpool_backward(m->eng, dtop, &d));
    release(m, &d);
    return TLCL_OK;
}

tlcl_status tlcl_model_head_forward(tlcl_model *m, const tlcl_tensor *features, int training, uint32_t seed,
                                    tlcl_tensor **logits)
{
    if (!m->eng || !m->include_top || features->n < 1 ||
        tlcl_tensor_count(features) != (size_t)features->n * (size_t)m->top.cout)
        return tlcl_cl_fail(tlcl_engine_cl(m->eng), TLCL_ERR_ARG, "head: features must be (N, %d) for %s",
                            m->top.cout, m->arch.name);
    tlcl_model_release_activations(m);
    m->batch = features->n;
    m->training = training;
    m->seed = seed;
    TLCL_TRY(tlcl_tensor_alloc(m->eng, &m->pooled, "features", m->batch, 1, 1, m->top.cout));
    TLCL_TRY(tlcl_tensor_copy(m->eng, &m->pooled, features));
    return classifier_forward(m, logits);
}

tlcl_status tlcl_model_head_backward(tlcl_model *m, const tlcl_tensor *dlogits)
{
    tlcl_tensor d = {0};
    m->grads_final_from = m->params.total;
    TLCL_TRY(classifier_backward(m, dlogits, &d));
    release(m, &d);
    return TLCL_OK;
}

static tlcl_status base_backward(tlcl_model *m, tlcl_tensor *dx)
{
    tlcl_tensor d = {0};
    int pos = m->nblocks + 1;
    const tlcl_tensor *top_in = m->nblocks ? block_output(&m->blocks[m->nblocks - 1]) : &m->stem.out;
    if (needs_grad(m, pos)) {
        TLCL_TRY(convbn_backward(m, &m->top, top_in, dx, &d, needs_grad(m, pos - 1) && pos > m->base_trainable_from));
        release(m, dx);
        *dx = d;
    }
    for (int i = m->nblocks - 1; i >= 0 && needs_grad(m, i + 1) && dx->buf; i--) {
        const tlcl_tensor *in = i ? block_output(&m->blocks[i - 1]) : &m->stem.out;
        int want = i + 1 > m->base_trainable_from;
        memset(&d, 0, sizeof d);
        TLCL_TRY(block_backward(m, &m->blocks[i], i, in, dx, &d, want));
        release(m, dx);
        *dx = d;
        /* nothing later reads this block's activations or its output (the
         * layers above are done): their buffers go back to the pool for the
         * gradients still to come, which keeps the step's peak down */
        block_release_inner(m, &m->blocks[i]);
        release(m, block_output_mut(&m->blocks[i]));
    }
    if (needs_grad(m, 0) && dx->buf) {
        memset(&d, 0, sizeof d);
        /* the pixels' gradient costs the stem's input gradient: only on request */
        TLCL_TRY(convbn_backward(m, &m->stem, &m->input, dx, &d, m->want_input_grad));
        release(m, dx);
        if (!m->want_input_grad)
            return TLCL_OK;
        /* gradient with respect to the raw pixels: preprocessing is affine, resizing linear */
        tlcl_tensor dpre = {0};
        int resized = m->image_h != m->size || m->image_w != m->size;
        tlcl_tensor *dst = resized ? &dpre : &m->dinput;
        TLCL_TRY(tlcl_tensor_alloc(m->eng, dst, "dinput", d.n, d.h, d.w, 3));
        TLCL_TRY(tlcl_tensor_to_float(m->eng, &d)); /* the affine map reads float32 */
        TLCL_TRY(tlcl_affine_channels(m->eng, dst, &d, m->pre_scale, NULL));
        release(m, &d);
        if (resized) {
            TLCL_TRY(tlcl_tensor_alloc(m->eng, &m->dinput, "dinput", d.n, m->image_h, m->image_w, 3));
            TLCL_TRY(tlcl_resize_bilinear_backward(m->eng, &m->dinput, &dpre));
            release(m, &dpre);
        }
    }
    release(m, dx);
    return TLCL_OK;
}

tlcl_status tlcl_model_backward(tlcl_model *m, const tlcl_tensor *dout)
{
    tlcl_tensor dtop = {0};
    m->grads_final_from = m->params.total;
    if (!m->include_top) {
        TLCL_TRY(fmap_alloc(m, &dtop, "dtop", m->batch, m->top_h, m->top_w, m->top.cout));
        scope(m, "avg_pool", "", TLCL_PHASE_BWD, pool_cost(m));
        TLCL_TRY(tlcl_global_avgpool_backward(m->eng, &dtop, dout));
    } else {
        TLCL_TRY(head_backward(m, dout, &dtop));
    }
    if (m->base_trainable_from > m->nblocks + 1) {
        release(m, &dtop);
        return TLCL_OK;
    }
    return base_backward(m, &dtop);
}
