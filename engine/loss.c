/* loss.c — softmax cross-entropy and focal loss from logits (Keras TF-backend
 * semantics, "sum_over_batch_size" reduction) and plain softmax. Kernels in
 * cl/kernels/loss.cl; the batch sum in cl/kernels/global_sum.cl. */
#include "engine_internal.h"
#include "tlcl_programs.h"

enum { LOSS_XENT = 0, LOSS_FOCAL = 1 }; /* as in loss.cl */

/* What a loss call computes, gathered so the shared path stays short. */
typedef struct loss_args {
    tlcl_tensor *loss, *per_sample, *dlogits;
    const tlcl_tensor *logits, *sample_weight, *alpha;
    cl_mem labels;
    float label_smoothing, alpha_scalar, gamma;
    int kind;
    int divisor;               /* D of sum_i w_i l_i / D; 0: the batch's N */
} loss_args;

static tlcl_status check_loss_args(tlcl_engine *e, const loss_args *a, int N, int C, const char *op)
{
    if (N <= 0 || C <= 0)
        return ENG_FAIL(e, TLCL_ERR_ARG, "%s: logits '%s' is empty", op, a->logits->name ? a->logits->name : "?");
    size_t label_bytes = 0;
    if (!a->labels || clGetMemObjectInfo(a->labels, CL_MEM_SIZE, sizeof label_bytes, &label_bytes, NULL) != CL_SUCCESS)
        return ENG_FAIL(e, TLCL_ERR_ARG, "%s: no valid labels buffer", op);
    if (label_bytes < (size_t)N * sizeof(cl_int))
        return ENG_FAIL(e, TLCL_ERR_ARG, "%s: the labels buffer holds %zu ints, the batch has %d samples", op,
                        label_bytes / sizeof(cl_int), N);
    if (!(a->label_smoothing >= 0.0f && a->label_smoothing <= 1.0f))
        return ENG_FAIL(e, TLCL_ERR_ARG, "%s: label_smoothing %g is outside [0, 1]", op, a->label_smoothing);
    if (a->loss)
        TLCL_TRY(eng_check_count(e, a->loss, 1, op));
    if (a->per_sample)
        TLCL_TRY(eng_check_count(e, a->per_sample, (size_t)N, op));
    if (a->dlogits)
        TLCL_TRY(eng_check_count(e, a->dlogits, (size_t)N * C, op));
    if (a->sample_weight)
        TLCL_TRY(eng_check_count(e, a->sample_weight, (size_t)N, op));
    if (a->alpha)
        TLCL_TRY(eng_check_count(e, a->alpha, (size_t)C, op));
    return TLCL_OK;
}

/* loss[0] = sum_i w_i l_i / D in one work-group (N is a batch size). */
static tlcl_status reduce_loss(tlcl_engine *e, tlcl_tensor *loss, const tlcl_tensor *per_sample,
                               const tlcl_tensor *w, int N, int D)
{
    size_t wg = tlcl_cl_reduce_wg(e->cl);
    cl_mem wbuf = w ? w->buf : per_sample->buf; /* unread when has_b is 0 */
    return TLCL_RUN(e->cl, TLCL_PROG(global_sum), "", "dot_partial", 1, &wg, &wg, TLCL_MEM(loss->buf), TLCL_INT(0),
                    TLCL_MEM(per_sample->buf), TLCL_INT(0), TLCL_MEM(wbuf), TLCL_INT(0), TLCL_INT(w != NULL),
                    TLCL_INT(N), TLCL_FLOAT(1.0f / D));
}

static tlcl_status rows_kernel(tlcl_engine *e, const loss_args *a, const tlcl_tensor *per, int N, int C, int D)
{
    /* Absent optional buffers are replaced by one that is never read (a has_ flag is 0). */
    cl_mem any = per->buf;
    cl_mem dz = a->dlogits ? a->dlogits->buf : any;
    cl_mem w = a->sample_weight ? a->sample_weight->buf : any;
    cl_mem alpha = a->alpha ? a->alpha->buf : any;
    size_t g = eng_global1((size_t)N);
    return TLCL_RUN(e->cl, TLCL_PROG(loss), "", "softmax_loss_rows", 1, &g, NULL, TLCL_MEM(per->buf), TLCL_MEM(dz),
                    TLCL_INT(a->dlogits != NULL), TLCL_MEM(a->logits->buf), TLCL_MEM(a->labels), TLCL_MEM(w),
                    TLCL_INT(a->sample_weight != NULL), TLCL_INT(N), TLCL_INT(C), TLCL_FLOAT(a->label_smoothing),
                    TLCL_FLOAT(1.0f / D), TLCL_INT(a->kind), TLCL_MEM(alpha), TLCL_INT(a->alpha != NULL),
                    TLCL_FLOAT(a->alpha_scalar), TLCL_FLOAT(a->gamma));
}

static tlcl_status softmax_loss(tlcl_engine *e, const loss_args *a, const char *op)
{
    int N = a->logits->n;
    int C = N > 0 ? (int)(tlcl_tensor_count(a->logits) / (size_t)N) : 0;
    TLCL_TRY(check_loss_args(e, a, N, C, op));
    if (a->divisor < 0 || (a->divisor > 0 && a->divisor < N))
        return ENG_FAIL(e, TLCL_ERR_ARG, "%s: divisor %d is below the batch's %d samples", op, a->divisor, N);
    int D = a->divisor > 0 ? a->divisor : N;
    /* The batch sum needs the per-sample losses even when the caller does not. */
    tlcl_tensor tmp = {0};
    const tlcl_tensor *per = a->per_sample;
    if (!per) {
        TLCL_TRY(tlcl_tensor_alloc(e, &tmp, "per-sample loss", N, 1, 1, 1));
        per = &tmp;
    }
    tlcl_status s = rows_kernel(e, a, per, N, C, D);
    if (s == TLCL_OK && a->loss)
        s = reduce_loss(e, a->loss, per, a->sample_weight, N, D);
    tlcl_tensor_release(e, &tmp); /* the in-order queue runs the kernels before any reuse */
    return s;
}

tlcl_status tlcl_softmax_xent(tlcl_engine *e, tlcl_tensor *loss, tlcl_tensor *per_sample, tlcl_tensor *dlogits,
                              const tlcl_tensor *logits, cl_mem labels, const tlcl_tensor *sample_weight,
                              float label_smoothing, int divisor)
{
    loss_args a = {.loss = loss, .per_sample = per_sample, .dlogits = dlogits, .logits = logits,
                   .sample_weight = sample_weight, .labels = labels, .label_smoothing = label_smoothing,
                   .kind = LOSS_XENT, .divisor = divisor};
    return softmax_loss(e, &a, "softmax cross-entropy");
}

tlcl_status tlcl_focal_loss(tlcl_engine *e, tlcl_tensor *loss, tlcl_tensor *per_sample, tlcl_tensor *dlogits,
                            const tlcl_tensor *logits, cl_mem labels, const tlcl_tensor *sample_weight,
                            float label_smoothing, const tlcl_tensor *alpha, float alpha_scalar, float gamma,
                            int divisor)
{
    if (!(gamma >= 0.0f))
        return ENG_FAIL(e, TLCL_ERR_ARG, "focal loss: gamma %g must be >= 0", gamma);
    loss_args a = {.loss = loss, .per_sample = per_sample, .dlogits = dlogits, .logits = logits,
                   .sample_weight = sample_weight, .alpha = alpha, .labels = labels,
                   .label_smoothing = label_smoothing, .alpha_scalar = alpha_scalar, .gamma = gamma,
                   .kind = LOSS_FOCAL, .divisor = divisor};
    return softmax_loss(e, &a, "focal loss");
}

tlcl_status tlcl_softmax_forward(tlcl_engine *e, tlcl_tensor *probs, const tlcl_tensor *logits)
{
    int N = logits->n;
    size_t total = tlcl_tensor_count(logits);
    TLCL_TRY(eng_check_count(e, probs, total, "softmax"));
    if (N <= 0 || total == 0)
        return TLCL_OK;
    size_t g = eng_global1((size_t)N);
    return TLCL_RUN(e->cl, TLCL_PROG(loss), "", "softmax_rows", 1, &g, NULL, TLCL_MEM(probs->buf),
                    TLCL_MEM(logits->buf), TLCL_INT(N), TLCL_INT((int)(total / (size_t)N)));
}
