/* counters.c — a run's device-side counters (engine.h): one batch's loss,
 * hits, weights and confusion counts added on the device, so a training
 * step never reads anything back. Kernel in cl/kernels/counters.cl. */
#include "engine_internal.h"
#include "tlcl_programs.h"

tlcl_status tlcl_counters_add(tlcl_engine *e, tlcl_tensor *sums, tlcl_tensor *confusion, cl_mem bad_step,
                              const tlcl_tensor *logits, const tlcl_tensor *per_sample, cl_mem labels,
                              const tlcl_tensor *weights, long step)
{
    int N = logits->n;
    int C = N > 0 ? (int)(tlcl_tensor_count(logits) / (size_t)N) : 0;
    if (N <= 0)
        return TLCL_OK;
    TLCL_TRY(eng_check_count(e, sums, TLCL_CNT_SLOTS, "counters"));
    TLCL_TRY(eng_check_count(e, confusion, (size_t)C * C, "counters"));
    TLCL_TRY(eng_check_count(e, per_sample, (size_t)N, "counters"));
    if (weights)
        TLCL_TRY(eng_check_count(e, weights, (size_t)N, "counters"));
    size_t wg = tlcl_cl_reduce_wg(e->cl);
    cl_mem w = weights ? weights->buf : per_sample->buf; /* unread when has_weights is 0 */
    int step_arg = step < 0 ? -1 : step > 0x7fffffffL ? 0x7fffffff : (int)step;
    return TLCL_RUN(e->cl, TLCL_PROG(counters), "", "counters_add", 1, &wg, &wg, TLCL_MEM(sums->buf),
                    TLCL_MEM(confusion->buf), TLCL_MEM(bad_step), TLCL_MEM(logits->buf), TLCL_MEM(per_sample->buf),
                    TLCL_MEM(labels), TLCL_MEM(w), TLCL_INT(weights != NULL), TLCL_INT(N), TLCL_INT(C),
                    TLCL_INT(step_arg), TLCL_LOCAL((size_t)N * sizeof(cl_int)));
}
