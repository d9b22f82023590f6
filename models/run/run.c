/* run.c — the one training step and the one inference pass (run.h).
 *
 * Order of a training step on the in-order queue: [upload of this batch] ->
 * zero-grad -> forward -> loss -> counters -> backward -> clip + update.
 * The host enqueues and goes on; it waits only for the step before the
 * previous one (so it stays at most two steps ahead of the device) and in
 * tlcl_run_sync. */
#include "run.h"
#include "grad_buckets.h"

#include <stdlib.h>
#include <string.h>

struct tlcl_run_batch {
    tlcl_tensor x;              /* images or gathered features: the model's input */
    tlcl_tensor labels, weights, items; /* device copies (ints in labels and items) */
    float *host_x, *host_w;     /* staging: what the non-blocking writes read */
    int *host_labels, *host_items;
    size_t cap_x;               /* floats in host_x and x */
    int cap_n;                  /* samples in the other buffers */
    cl_event uploaded;          /* the slot's last write */
    int count, has_labels, has_weights, features;
};

struct tlcl_run {
    tlcl_model *m;
    tlcl_engine *e;
    tlcl_cl *cl;
    tlcl_loss_spec loss;
    tlcl_tensor alpha;          /* focal alpha per class, when given */
    tlcl_run_batch slot[2];
    int next_slot;
    tlcl_tensor loss_value, per_sample, dlogits, probs, guard;
    tlcl_tensor *logits;        /* the model's, from the last forward */
    tlcl_tensor sums, confusion, bad_step;
    cl_event inflight[2];       /* markers of the last two passes */
    long passes;
    float sums_host[TLCL_CNT_SLOTS];
    float *confusion_read;
    double *confusion_host;
    tlcl_reducer reducer;       /* data parallelism; .sum NULL: one replica */
    grad_buckets buckets;       /* the gradients summed across replicas */
    tlcl_tensor group_guard;    /* the replicas' loss sums summed: NaN when any replica's is */
};

tlcl_loss_spec tlcl_loss_spec_default(void)
{
    return (tlcl_loss_spec){.kind = TLCL_LOSS_KIND_XENT, .focal_gamma = 2.0f, .focal_alpha = 0.25f};
}

const char *tlcl_run_error(const tlcl_run *r) { return tlcl_engine_error(r->e); }

const tlcl_model *tlcl_run_model(const tlcl_run *r) { return r->m; }

static tlcl_status fail(tlcl_run *r, tlcl_status s, const char *what)
{
    return tlcl_cl_fail(r->cl, s, "%s", what);
}

/* ---- create and free --------------------------------------------------------- */

static tlcl_status counters_alloc(tlcl_run *r)
{
    int C = r->m->classes;
    TLCL_TRY(tlcl_tensor_alloc(r->e, &r->sums, "run counters", 1, 1, 1, TLCL_CNT_SLOTS));
    TLCL_TRY(tlcl_tensor_alloc(r->e, &r->confusion, "confusion counts", 1, 1, C, C));
    TLCL_TRY(tlcl_tensor_alloc(r->e, &r->bad_step, "non-finite step", 1, 1, 1, 1));
    r->guard = (tlcl_tensor){.buf = r->sums.buf, .n = 1, .h = 1, .w = 1, .c = 1, .name = "non-finite guard"};
    r->confusion_read = malloc((size_t)C * C * sizeof *r->confusion_read);
    r->confusion_host = calloc((size_t)C * C, sizeof *r->confusion_host);
    if (!r->confusion_read || !r->confusion_host)
        return fail(r, TLCL_ERR_OOM, "out of host memory for the confusion counts");
    return tlcl_run_reset(r);
}

static tlcl_status alpha_upload(tlcl_run *r, const float *alpha)
{
    if (!alpha)
        return TLCL_OK;
    TLCL_TRY(tlcl_tensor_alloc(r->e, &r->alpha, "focal alpha", 1, 1, 1, r->m->classes));
    return tlcl_tensor_upload(r->e, &r->alpha, alpha);
}

tlcl_status tlcl_run_create(tlcl_run **out, tlcl_model *m, const tlcl_loss_spec *loss, char *err, size_t err_len)
{
    *out = NULL;
    if (!m->eng || !m->include_top || m->classes < 1) {
        snprintf(err, err_len, "run: the model must be allocated on a device and have a classifier");
        return TLCL_ERR_ARG;
    }
    tlcl_run *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, err_len, "run: out of host memory");
        return TLCL_ERR_OOM;
    }
    r->m = m, r->e = m->eng, r->cl = tlcl_engine_cl(m->eng);
    r->loss = *loss;
    r->loss.focal_alpha_per_class = NULL; /* the device copy is r->alpha */
    tlcl_status s = counters_alloc(r);
    if (s == TLCL_OK)
        s = alpha_upload(r, loss->focal_alpha_per_class);
    if (s != TLCL_OK) {
        snprintf(err, err_len, "%s", tlcl_engine_error(r->e));
        tlcl_run_free(r);
        return s;
    }
    *out = r;
    return TLCL_OK;
}

static void release(tlcl_engine *e, tlcl_tensor *t)
{
    if (t->buf && !t->is_view)
        tlcl_tensor_release(e, t);
}

static void slot_free(tlcl_run *r, tlcl_run_batch *b)
{
    tlcl_cl_wait(r->cl, &b->uploaded, "batch upload");
    tlcl_tensor *all[] = {&b->x, &b->labels, &b->weights, &b->items};
    for (int i = 0; i < 4; i++)
        release(r->e, all[i]);
    free(b->host_x), free(b->host_w), free(b->host_labels), free(b->host_items);
    memset(b, 0, sizeof *b);
}

void tlcl_run_free(tlcl_run *r)
{
    if (!r)
        return;
    tlcl_cl_finish(r->cl);
    for (int i = 0; i < 2; i++) {
        slot_free(r, &r->slot[i]);
        tlcl_cl_wait(r->cl, &r->inflight[i], "run");
    }
    tlcl_model_release_activations(r->m);
    tlcl_tensor *all[] = {&r->alpha, &r->loss_value, &r->per_sample, &r->dlogits, &r->probs,
                          &r->sums, &r->confusion, &r->bad_step, &r->group_guard};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        release(r->e, all[i]);
    free(r->confusion_read);
    free(r->confusion_host);
    grad_buckets_free(&r->buckets);
    free(r);
}

/* ---- batches ------------------------------------------------------------------ */

/* A tensor of the pool sized for at least `count` floats (kept across
 * batches; n is set per batch). */
static tlcl_status ensure_tensor(tlcl_run *r, tlcl_tensor *t, const char *name, size_t have, size_t want)
{
    if (t->buf && have >= want)
        return TLCL_OK;
    release(r->e, t);
    return tlcl_tensor_alloc(r->e, t, name, (int)want, 1, 1, 1);
}

static tlcl_status slot_reserve(tlcl_run *r, tlcl_run_batch *b, size_t x_floats, int n)
{
    if (x_floats > b->cap_x) {
        TLCL_TRY(ensure_tensor(r, &b->x, "batch input", 0, x_floats));
        free(b->host_x);
        if (!(b->host_x = malloc(x_floats * sizeof(float))))
            return fail(r, TLCL_ERR_OOM, "out of host memory for a batch");
        b->cap_x = x_floats;
    }
    if (n > b->cap_n) {
        TLCL_TRY(ensure_tensor(r, &b->labels, "labels", 0, (size_t)n));
        TLCL_TRY(ensure_tensor(r, &b->weights, "sample weights", 0, (size_t)n));
        TLCL_TRY(ensure_tensor(r, &b->items, "feature rows", 0, (size_t)n));
        free(b->host_w), free(b->host_labels), free(b->host_items);
        b->host_w = malloc((size_t)n * sizeof(float));
        b->host_labels = malloc((size_t)n * sizeof(int));
        b->host_items = malloc((size_t)n * sizeof(int));
        if (!b->host_w || !b->host_labels || !b->host_items)
            return fail(r, TLCL_ERR_OOM, "out of host memory for a batch");
        b->cap_n = n;
    }
    return TLCL_OK;
}

/* Copies host data into the slot's staging memory and queues its write.
 * Only the latest write's event is kept: on the in-order queue it completes
 * after the slot's earlier writes. (Waiting for the earlier one here would
 * wait for the whole step queued before it.) */
static tlcl_status stage(tlcl_run *r, tlcl_run_batch *b, tlcl_tensor *dst, void *staging, const void *src,
                         size_t bytes, const char *what)
{
    memcpy(staging, src, bytes);
    tlcl_cl_forget(&b->uploaded);
    return tlcl_cl_write_async(r->cl, dst->buf, 0, bytes, staging, what, &b->uploaded);
}

tlcl_status tlcl_run_load(tlcl_run *r, const tlcl_run_input *in, const tlcl_tensor *features, tlcl_run_batch **out)
{
    tlcl_model *m = r->m;
    int n = in->count, C = m->top.cout;
    if (n < 1 || (!features && !in->images) || (features && !in->items))
        return fail(r, TLCL_ERR_ARG, "run: a batch needs at least one sample and its images or feature rows");
    tlcl_run_batch *b = &r->slot[r->next_slot];
    r->next_slot ^= 1;
    /* the slot's staging memory is free once its previous write is done */
    TLCL_TRY(tlcl_cl_wait(r->cl, &b->uploaded, "batch upload"));
    size_t pixels = (size_t)m->image_h * m->image_w * 3;
    TLCL_TRY(slot_reserve(r, b, (size_t)n * (features ? (size_t)C : pixels), n));
    b->count = n, b->has_labels = in->labels != NULL, b->has_weights = in->weights != NULL;
    b->features = features != NULL;
    tlcl_tensor x = b->x;
    b->x = features ? (tlcl_tensor){x.buf, n, 1, 1, C, "features", 0, TLCL_F32}
                    : (tlcl_tensor){x.buf, n, m->image_h, m->image_w, 3, "images", 0, TLCL_F32};
    if (b->has_labels)
        TLCL_TRY(stage(r, b, &b->labels, b->host_labels, in->labels, (size_t)n * sizeof(int), "labels"));
    if (b->has_weights)
        TLCL_TRY(stage(r, b, &b->weights, b->host_w, in->weights, (size_t)n * sizeof(float), "sample weights"));
    b->weights.n = n, b->weights.h = b->weights.w = b->weights.c = 1;
    if (features) {
        TLCL_TRY(stage(r, b, &b->items, b->host_items, in->items, (size_t)n * sizeof(int), "feature rows"));
        TLCL_TRY(tlcl_rows_gather(r->e, &b->x, features, b->items.buf));
    } else {
        TLCL_TRY(stage(r, b, &b->x, b->host_x, in->images, (size_t)n * pixels * sizeof(float), "images"));
    }
    if (in->items && !features) /* tlcl_run_features scatters by them */
        TLCL_TRY(stage(r, b, &b->items, b->host_items, in->items, (size_t)n * sizeof(int), "feature rows"));
    *out = b;
    return TLCL_OK;
}

/* ---- the passes ------------------------------------------------------------------ */

/* Keeps the host at most two passes ahead of the device: waits for the
 * pass before the previous one. */
static tlcl_status pass_begin(tlcl_run *r)
{
    return tlcl_cl_wait(r->cl, &r->inflight[r->passes & 1], "previous step");
}

static tlcl_status pass_end(tlcl_run *r)
{
    TLCL_TRY(tlcl_cl_marker(r->cl, &r->inflight[r->passes & 1]));
    r->passes++;
    return TLCL_OK;
}

static tlcl_status forward(tlcl_run *r, tlcl_run_batch *b, int training, uint32_t seed)
{
    if (b->features)
        return tlcl_model_head_forward(r->m, &b->x, training, seed, &r->logits);
    return tlcl_model_forward(r->m, &b->x, training, seed, &r->logits);
}

static tlcl_status ensure_batch_tensors(tlcl_run *r, int n, int with_grad)
{
    int C = r->m->classes;
    if (!r->loss_value.buf)
        TLCL_TRY(tlcl_tensor_alloc(r->e, &r->loss_value, "loss", 1, 1, 1, 1));
    if (r->per_sample.n != n) {
        release(r->e, &r->per_sample);
        TLCL_TRY(tlcl_tensor_alloc(r->e, &r->per_sample, "per-sample loss", n, 1, 1, 1));
    }
    if (with_grad && r->dlogits.n != n) {
        release(r->e, &r->dlogits);
        TLCL_TRY(tlcl_tensor_alloc(r->e, &r->dlogits, "dlogits", n, 1, 1, C));
    }
    return TLCL_OK;
}

/* The loss of the batch (sample weights when given; NULL: none) into
 * loss_value and per_sample, its gradient when dlogits is set; divided by
 * `divisor` samples (0: the batch's). */
static tlcl_status loss(tlcl_run *r, tlcl_run_batch *b, const tlcl_tensor *weights, tlcl_tensor *dlogits,
                        int divisor)
{
    const tlcl_loss_spec *L = &r->loss;
    if (L->kind == TLCL_LOSS_KIND_XENT)
        return tlcl_softmax_xent(r->e, &r->loss_value, &r->per_sample, dlogits, r->logits, b->labels.buf, weights,
                                 L->label_smoothing, divisor);
    return tlcl_focal_loss(r->e, &r->loss_value, &r->per_sample, dlogits, r->logits, b->labels.buf, weights,
                           L->label_smoothing, r->alpha.buf ? &r->alpha : NULL, L->focal_alpha, L->focal_gamma,
                           divisor);
}

static void profile_scope(tlcl_run *r, const char *name, tlcl_cl_phase phase, double bytes)
{
    tlcl_cl_profile_scope(r->cl, name, phase, 0, bytes);
}

tlcl_status tlcl_run_gradients(tlcl_run *r, tlcl_run_batch *b, const tlcl_step_args *a)
{
    if (!b->has_labels)
        return fail(r, TLCL_ERR_ARG, "run: a training step needs labels");
    int n = b->count, C = r->m->classes;
    TLCL_TRY(ensure_batch_tensors(r, n, 1));
    profile_scope(r, "zero_grads", TLCL_PHASE_BWD, 4.0 * (double)r->m->params.total);
    TLCL_TRY(tlcl_params_zero_grads(r->e, &r->m->params));
    r->m->first_sample = a->first_sample; /* the masks of this share of the global batch */
    TLCL_TRY(forward(r, b, 1, a->seed));
    /* reads logits and labels, writes dlogits, the per-sample losses and the counters */
    profile_scope(r, "loss", TLCL_PHASE_FWD, 4.0 * (2.0 * n * C + 3.0 * n + 1));
    TLCL_TRY(loss(r, b, b->has_weights ? &b->weights : NULL, &r->dlogits, a->global_count));
    TLCL_TRY(tlcl_counters_add(r->e, &r->sums, &r->confusion, r->bad_step.buf, r->logits, &r->per_sample, b->labels.buf,
                          b->has_weights ? &b->weights : NULL, a->step < 0 ? 0 : a->step));
    if (b->features)
        return tlcl_model_head_backward(r->m, &r->dlogits);
    return tlcl_model_backward(r->m, &r->dlogits);
}

void tlcl_run_set_reducer(tlcl_run *r, const tlcl_reducer *red)
{
    r->reducer = red ? *red : (tlcl_reducer){0};
}

void tlcl_run_set_bucket_floats(tlcl_run *r, size_t floats) { r->buckets.bucket_floats = floats; }

/* Ready for the step's gradient sum: the model tells the buckets which
 * gradients are final as its backward goes (grad_buckets.h). */
static tlcl_status buckets_begin(tlcl_run *r)
{
    if (!r->group_guard.buf)
        TLCL_TRY(tlcl_tensor_alloc(r->e, &r->group_guard, "replicas' non-finite guard", 1, 1, 1, 1));
    grad_buckets *gb = &r->buckets;
    gb->cl = r->cl, gb->red = r->reducer, gb->total = r->m->params.total;
    gb->grads = r->m->params.grads, gb->guard = r->guard.buf, gb->summed_guard = r->group_guard.buf;
    TLCL_TRY(grad_buckets_begin(gb));
    r->m->grads_ready = grad_buckets_ready, r->m->grads_ready_ctx = gb;
    return TLCL_OK;
}

/* The gradients of this replica, summed across the replicas when there
 * are several: the sums overlap the backward pass. */
static tlcl_status step_gradients(tlcl_run *r, tlcl_run_batch *b, const tlcl_step_args *a)
{
    if (!r->reducer.sum)
        return tlcl_run_gradients(r, b, a);
    TLCL_TRY(buckets_begin(r));
    tlcl_status s = tlcl_run_gradients(r, b, a);
    r->m->grads_ready = NULL, r->m->grads_ready_ctx = NULL;
    return s != TLCL_OK ? s : grad_buckets_finish(&r->buckets, r->m->grads_final_from);
}

tlcl_status tlcl_run_step(tlcl_run *r, tlcl_run_batch *b, tlcl_optimizer *opt, const tlcl_step_args *a)
{
    TLCL_TRY(pass_begin(r));
    TLCL_TRY(step_gradients(r, b, a));
    /* Adam reads parameters, gradients and both moments, writes all but the gradients */
    profile_scope(r, "optimizer", TLCL_PHASE_BWD, 4.0 * 7.0 * (double)tlcl_model_count(r->m).trainable);
    TLCL_TRY(tlcl_optimizer_step(r->e, opt, &r->m->params, a->lr, r->reducer.sum ? &r->group_guard : &r->guard));
    return pass_end(r);
}

tlcl_status tlcl_run_predict(tlcl_run *r, tlcl_run_batch *b, float *probs)
{
    int n = b->count, C = r->m->classes;
    TLCL_TRY(pass_begin(r));
    TLCL_TRY(forward(r, b, 0, 0));
    if (b->has_labels) { /* Keras: val_loss is unweighted */
        TLCL_TRY(ensure_batch_tensors(r, n, 0));
        TLCL_TRY(loss(r, b, NULL, NULL, 0));
        TLCL_TRY(tlcl_counters_add(r->e, &r->sums, &r->confusion, r->bad_step.buf, r->logits, &r->per_sample,
                              b->labels.buf, NULL, -1));
    }
    if (probs) {
        if (r->probs.n != n) {
            release(r->e, &r->probs);
            TLCL_TRY(tlcl_tensor_alloc(r->e, &r->probs, "probabilities", n, 1, 1, C));
        }
        TLCL_TRY(tlcl_softmax_forward(r->e, &r->probs, r->logits));
        TLCL_TRY(tlcl_cl_read_async(r->cl, r->probs.buf, 0, (size_t)n * C * sizeof(float), probs, "probabilities", NULL));
    }
    return pass_end(r);
}

const tlcl_tensor *tlcl_run_logits(const tlcl_run *r) { return r->logits; }

tlcl_status tlcl_run_features(tlcl_run *r, tlcl_run_batch *b, tlcl_tensor *table)
{
    tlcl_model *m = r->m;
    if (b->features || !b->items.buf)
        return fail(r, TLCL_ERR_ARG, "run: feature extraction needs an image batch with its items");
    TLCL_TRY(pass_begin(r));
    tlcl_tensor *pooled;
    m->include_top = 0; /* the forward stops at the pooled features */
    tlcl_status s = tlcl_model_forward(m, &b->x, 0, 0, &pooled);
    m->include_top = 1;
    TLCL_TRY(s);
    TLCL_TRY(tlcl_rows_scatter(r->e, table, pooled, b->items.buf));
    return pass_end(r);
}

/* ---- counters --------------------------------------------------------------------- */

tlcl_status tlcl_run_sync(tlcl_run *r, tlcl_run_stats *out)
{
    int C = r->m->classes;
    int bad = -1;
    TLCL_TRY(tlcl_cl_read(r->cl, r->sums.buf, 0, sizeof r->sums_host, r->sums_host, "run counters"));
    TLCL_TRY(tlcl_cl_read(r->cl, r->confusion.buf, 0, (size_t)C * C * sizeof(float), r->confusion_read, "confusion counts"));
    TLCL_TRY(tlcl_cl_read(r->cl, r->bad_step.buf, 0, sizeof bad, &bad, "non-finite step"));
    for (size_t i = 0; i < (size_t)C * C; i++)
        r->confusion_host[i] = r->confusion_read[i];
    const float *s = r->sums_host;
    /* each sum is followed by its Kahan compensation c: the sum is s - c */
    *out = (tlcl_run_stats){.loss_sum = (double)s[TLCL_CNT_LOSS] - s[TLCL_CNT_LOSS + 1],
                            .samples = s[TLCL_CNT_SAMPLES],
                            .hits = (double)s[TLCL_CNT_HITS] - s[TLCL_CNT_HITS + 1],
                            .weight = (double)s[TLCL_CNT_WEIGHT] - s[TLCL_CNT_WEIGHT + 1],
                            .nonfinite_step = bad,
                            .classes = C,
                            .confusion = r->confusion_host,
                            .grad_buckets = r->buckets.started,
                            .buckets_overlapped = r->buckets.overlapped};
    return TLCL_OK;
}

tlcl_status tlcl_run_reset(tlcl_run *r)
{
    static const int none = -1;
    r->buckets.started = r->buckets.overlapped = 0;
    TLCL_TRY(tlcl_tensor_fill(r->e, &r->sums, 0.0f));
    TLCL_TRY(tlcl_tensor_fill(r->e, &r->confusion, 0.0f));
    return tlcl_cl_write(r->cl, r->bad_step.buf, 0, sizeof none, &none, "non-finite step");
}
