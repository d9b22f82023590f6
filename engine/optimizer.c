/* optimizer.c — SGD (momentum, Nesterov), Adam and AdamW over the flat
 * parameter store with Keras semantics and order: clip by global norm ->
 * decoupled weight decay -> update -> iterations += 1. One opt_update launch
 * per maximal contiguous range of trainable entries; the global norm is
 * reduced on the device, and a non-finite loss makes the device skip the
 * update, so a step never waits for the device. */
#include "engine_internal.h"
#include "tlcl_programs.h"

#include <math.h>
#include <stdio.h>

enum { OPT_KERNEL_SGD = 0, OPT_KERNEL_ADAM = 1 }; /* as in optimizer.cl */
#define NORM_GROUPS_MAX 16                          /* partial sums per range */

tlcl_optimizer tlcl_optimizer_default(tlcl_opt_type type)
{
    tlcl_optimizer o = {.type = type, .beta1 = 0.9f, .beta2 = 0.999f, .epsilon = 1e-7f};
    if (type == TLCL_OPT_ADAMW)
        o.weight_decay = 0.004f; /* Keras AdamW default */
    return o;
}

/* The next maximal run of trainable entries at or after *i: floats
 * [*off, *off + *count) (padding between entries is zero in every buffer,
 * so updating it is harmless). Returns 0 when there is none. */
static int next_range(const tlcl_params *p, int *i, size_t *off, size_t *count)
{
    while (*i < p->count && !p->entries[*i].trainable)
        (*i)++;
    if (*i >= p->count)
        return 0;
    size_t start = p->entries[*i].offset, end = start;
    for (; *i < p->count && p->entries[*i].trainable; (*i)++)
        end = p->entries[*i].offset + p->entries[*i].count;
    *off = start;
    *count = end - start;
    return 1;
}

static size_t norm_groups(size_t count, size_t wg)
{
    size_t g = (count + wg - 1) / wg;
    return g < 1 ? 1 : g > NORM_GROUPS_MAX ? NORM_GROUPS_MAX : g;
}

/* factor->buf[0] = min(1, clip / ||g||) over all trainable gradients: each
 * range writes its partial sums of g^2 into its own slots of `partial`, one
 * work-group combines them. Nothing is read back. */
static tlcl_status clip_factor(tlcl_engine *e, tlcl_params *p, float clip, tlcl_tensor *factor,
                               tlcl_tensor *partial)
{
    size_t wg = tlcl_cl_reduce_wg(e->cl), off, count, slots = 0;
    for (int i = 0; next_range(p, &i, &off, &count);)
        slots += norm_groups(count, wg);
    TLCL_TRY(tlcl_tensor_alloc(e, partial, "gradient norm partials", slots ? (int)slots : 1, 1, 1, 1));
    TLCL_TRY(tlcl_tensor_alloc(e, factor, "gradient clip factor", 2, 1, 1, 1));
    if (slots == 0) /* nothing trainable: no update reads the factor */
        return TLCL_OK;
    size_t slot = 0;
    for (int i = 0; next_range(p, &i, &off, &count);) {
        size_t groups = norm_groups(count, wg), global = groups * wg;
        TLCL_TRY(TLCL_RUN(e->cl, TLCL_PROG(global_sum), "", "dot_partial", 1, &global, &wg, TLCL_MEM(partial->buf),
                         TLCL_INT(slot), TLCL_MEM(p->grads), TLCL_INT(off), TLCL_MEM(p->grads), TLCL_INT(off),
                         TLCL_INT(1), TLCL_INT(count), TLCL_FLOAT(1.0f)));
        slot += groups;
    }
    return TLCL_RUN(e->cl, TLCL_PROG(global_sum), "", "clip_factor", 1, &wg, &wg, TLCL_MEM(factor->buf),
                    TLCL_MEM(partial->buf), TLCL_INT(slots), TLCL_FLOAT(clip));
}

/* Hyper-parameters of one step, as the kernel takes them. */
typedef struct step_args {
    int type;
    float lr, wd_lr, alpha;
    cl_mem clip, loss;  /* NULL: not used */
} step_args;

/* One launch of opt_update_V over count entries from off. */
static tlcl_status update_launch(tlcl_engine *e, const tlcl_optimizer *o, tlcl_params *p, const step_args *a,
                                 int V, size_t off, size_t count)
{
    cl_mem clip = a->clip ? a->clip : p->values, loss = a->loss ? a->loss : p->values; /* unread when absent */
    char kernel[24];
    snprintf(kernel, sizeof kernel, "opt_update_%d", V);
    size_t g = eng_global1(count / (size_t)V);
    return TLCL_RUN(e->cl, TLCL_PROG(optimizer), "", kernel, 1, &g, NULL, TLCL_MEM(p->values), TLCL_MEM(p->grads),
                    TLCL_MEM(p->m), TLCL_MEM(p->v), TLCL_INT(off), TLCL_INT(count / (size_t)V), TLCL_INT(a->type),
                    TLCL_FLOAT(a->lr), TLCL_FLOAT(a->wd_lr), TLCL_FLOAT(a->alpha), TLCL_FLOAT(o->beta1),
                    TLCL_FLOAT(o->beta2), TLCL_FLOAT(o->epsilon), TLCL_FLOAT(o->momentum), TLCL_INT(o->nesterov),
                    TLCL_MEM(clip), TLCL_INT(a->clip != NULL), TLCL_MEM(loss), TLCL_INT(a->loss != NULL));
}

/* The range's whole vectors at the device's width, the rest one entry a
 * work-item. */
static tlcl_status update_range(tlcl_engine *e, const tlcl_optimizer *o, tlcl_params *p, const step_args *a,
                                size_t off, size_t count)
{
    int V = tlcl_cl_vector_width(e->cl);
    size_t whole = V > 1 ? count / (size_t)V * (size_t)V : 0;
    if (whole > 0)
        TLCL_TRY(update_launch(e, o, p, a, V, off, whole));
    return whole < count ? update_launch(e, o, p, a, 1, off + whole, count - whole) : TLCL_OK;
}

static tlcl_status check_optimizer(tlcl_engine *e, const tlcl_optimizer *o, const tlcl_params *p, float lr)
{
    if (!p->values)
        return ENG_FAIL(e, TLCL_ERR_ARG, "optimizer step: the parameter store is not allocated");
    if (o->type != TLCL_OPT_SGD && o->type != TLCL_OPT_ADAM && o->type != TLCL_OPT_ADAMW)
        return ENG_FAIL(e, TLCL_ERR_ARG, "optimizer step: unknown optimizer type %d", (int)o->type);
    if (!isfinite(lr) || lr < 0.0f)
        return ENG_FAIL(e, TLCL_ERR_ARG, "optimizer step: learning rate %g must be finite and >= 0", lr);
    if (!(o->weight_decay >= 0.0f) || !(o->clip_global_norm >= 0.0f) || !(o->momentum >= 0.0f))
        return ENG_FAIL(e, TLCL_ERR_ARG, "optimizer step: weight_decay, clip_global_norm and momentum must be >= 0");
    if (p->total > 0x7fffffff)
        return ENG_FAIL(e, TLCL_ERR_ARG, "optimizer step: %zu parameters exceed the kernel's int indices", p->total);
    return TLCL_OK;
}

tlcl_status tlcl_optimizer_step(tlcl_engine *e, tlcl_optimizer *opt, tlcl_params *p, float lr,
                                const tlcl_tensor *loss)
{
    TLCL_TRY(check_optimizer(e, opt, p, lr));
    if (loss)
        TLCL_TRY(eng_check_count(e, loss, 1, "optimizer step loss"));
    step_args a = {.type = opt->type == TLCL_OPT_SGD ? OPT_KERNEL_SGD : OPT_KERNEL_ADAM, .lr = lr,
                   .wd_lr = opt->weight_decay * lr, .loss = loss ? loss->buf : NULL};
    /* Adam's bias corrections fold into one step size, computed in double. */
    double t = (double)opt->iterations + 1.0;
    a.alpha = (float)(lr * sqrt(1.0 - pow(opt->beta2, t)) / (1.0 - pow(opt->beta1, t)));
    tlcl_tensor factor = {0}, partial = {0};
    tlcl_status s = TLCL_OK;
    if (opt->clip_global_norm > 0.0f) {
        s = clip_factor(e, p, opt->clip_global_norm, &factor, &partial);
        a.clip = factor.buf;
    }
    size_t off, count;
    for (int i = 0; s == TLCL_OK && next_range(p, &i, &off, &count);)
        s = update_range(e, opt, p, &a, off, count);
    tlcl_tensor_release(e, &factor); /* in-order queue: reuse comes after these kernels */
    tlcl_tensor_release(e, &partial);
    if (s == TLCL_OK)
        opt->iterations++;
    return s;
}
