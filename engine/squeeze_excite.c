/* squeeze_excite.c — channel scaling and the squeeze-and-excitation block
 * built from the pool, dense and reduce pieces:
 *   pooled = avgpool(in); hidden = act(pooled Wr + br);
 *   gate = sigmoid(hidden We + be); out = in * gate (per sample, channel). */
#include "norm_internal.h"
#include "tlcl_programs.h"

/* scale: [N, C], float32 whatever in's storage */
static tlcl_status check_scale(tlcl_engine *e, const tlcl_tensor *scale, const tlcl_tensor *in, const char *op)
{
    TLCL_TRY(eng_check_count(e, scale, (size_t)in->n * (size_t)in->c, op));
    TLCL_TRY(eng_check_dtype(e, scale, TLCL_F32, op));
    if (scale->c != in->c)
        return ENG_FAIL(e, TLCL_ERR_ARG, "%s: scale '%s' has %d channels, expected %d", op,
                        scale->name ? scale->name : "?", scale->c, in->c);
    return TLCL_OK;
}

tlcl_status tlcl_channel_scale_forward(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in,
                                       const tlcl_tensor *scale)
{
    TLCL_TRY(eng_check_shape(e, out, in->n, in->h, in->w, in->c, "channel_scale forward"));
    TLCL_TRY(check_scale(e, scale, in, "channel_scale forward"));
    TLCL_TRY(eng_check_dtype(e, out, in->dtype, "channel_scale forward"));
    return eng_channel_broadcast(e, in->dtype, out->buf, in->buf, scale->buf, NULL, 0.0f, in->n, in->h * in->w,
                                 in->c);
}

tlcl_status tlcl_channel_scale_backward(tlcl_engine *e, tlcl_tensor *din, tlcl_tensor *dscale,
                                        const tlcl_tensor *dout, const tlcl_tensor *in, const tlcl_tensor *scale)
{
    const char *op = "channel_scale backward";
    TLCL_TRY(eng_check_shape(e, dout, in->n, in->h, in->w, in->c, op));
    TLCL_TRY(eng_check_dtype(e, dout, in->dtype, op));
    TLCL_TRY(check_scale(e, scale, in, op));
    if (din) {
        TLCL_TRY(eng_check_shape(e, din, in->n, in->h, in->w, in->c, op));
        TLCL_TRY(eng_check_dtype(e, din, in->dtype, op));
        TLCL_TRY(eng_channel_broadcast(e, in->dtype, din->buf, dout->buf, scale->buf, NULL, 0.0f, in->n,
                                       in->h * in->w, in->c));
    }
    if (!dscale)
        return TLCL_OK;
    TLCL_TRY(check_scale(e, dscale, in, op));
    /* dscale[n,c] = sum over the sample's positions of dout * in */
    eng_row_map prod = {.mode = ENG_ROW_PRODUCT, .y = in->buf, .dtype = in->dtype};
    return eng_reduce_rows(e, dscale->buf, dout->buf, in->n, in->h * in->w, in->c, 1.0f, 0, &prod);
}

/* (Re)allocates a saved tensor [N,1,1,C] owned by the SE struct. */
static tlcl_status se_keep(tlcl_engine *e, tlcl_tensor *t, const char *name, int N, int C)
{
    if (t->buf && t->n == N && t->h == 1 && t->w == 1 && t->c == C)
        return TLCL_OK;
    tlcl_tensor_release(e, t);
    return tlcl_tensor_alloc(e, t, name, N, 1, 1, C);
}

static tlcl_status se_check(tlcl_engine *e, const tlcl_se *se, int C, int *S)
{
    *S = se->w_reduce->c;
    TLCL_TRY(eng_check_count(e, se->w_reduce, (size_t)C * (size_t)*S, "se w_reduce"));
    TLCL_TRY(eng_check_count(e, se->w_expand, (size_t)*S * (size_t)C, "se w_expand"));
    if (se->w_expand->c != C)
        return ENG_FAIL(e, TLCL_ERR_ARG, "se: w_expand has %d output channels, expected %d", se->w_expand->c, C);
    return TLCL_OK;
}

tlcl_status tlcl_se_forward(tlcl_engine *e, tlcl_se *se, tlcl_tensor *out, const tlcl_tensor *in)
{
    int N = in->n, C = in->c, S;
    TLCL_TRY(eng_check_shape(e, out, N, in->h, in->w, C, "se forward"));
    TLCL_TRY(eng_check_dtype(e, out, in->dtype, "se forward"));
    TLCL_TRY(se_check(e, se, C, &S));
    TLCL_TRY(se_keep(e, &se->pooled, "se pooled", N, C));
    TLCL_TRY(se_keep(e, &se->hidden_pre, "se hidden_pre", N, S));
    TLCL_TRY(se_keep(e, &se->hidden, "se hidden", N, S));
    TLCL_TRY(se_keep(e, &se->gate_pre, "se gate_pre", N, C));
    TLCL_TRY(se_keep(e, &se->gate, "se gate", N, C));
    TLCL_TRY(tlcl_global_avgpool_forward(e, &se->pooled, in));
    TLCL_TRY(tlcl_dense_forward(e, &se->hidden, &se->hidden_pre, &se->pooled, se->w_reduce, se->b_reduce,
                               se->act_reduce));
    TLCL_TRY(tlcl_dense_forward(e, &se->gate, &se->gate_pre, &se->hidden, se->w_expand, se->b_expand,
                               TLCL_ACT_SIGMOID));
    return tlcl_channel_scale_forward(e, out, in, &se->gate);
}

/* The gradient reaching the pooled vector back through both dense layers,
 * accumulating the SE parameter gradients on the way. */
static tlcl_status se_backward_dense(tlcl_engine *e, tlcl_se *se, tlcl_tensor *dpooled, const tlcl_tensor *dout,
                                     const tlcl_tensor *in)
{
    int N = in->n, S = se->w_reduce->c;
    tlcl_tensor dgate, dhidden;
    TLCL_TRY(tlcl_tensor_alloc(e, &dgate, "se dgate", N, 1, 1, in->c));
    tlcl_status s = tlcl_tensor_alloc(e, &dhidden, "se dhidden", N, 1, 1, S);
    if (s == TLCL_OK) {
        s = tlcl_channel_scale_backward(e, NULL, &dgate, dout, in, &se->gate);
        if (s == TLCL_OK)
            s = tlcl_dense_backward(e, &dhidden, se->dw_expand, se->db_expand, &dgate, &se->hidden, se->w_expand,
                                    &se->gate_pre, TLCL_ACT_SIGMOID);
        if (s == TLCL_OK)
            s = tlcl_dense_backward(e, dpooled, se->dw_reduce, se->db_reduce, &dhidden, &se->pooled, se->w_reduce,
                                    &se->hidden_pre, se->act_reduce);
        tlcl_tensor_release(e, &dhidden);
    }
    tlcl_tensor_release(e, &dgate);
    return s;
}

tlcl_status tlcl_se_backward(tlcl_engine *e, tlcl_se *se, tlcl_tensor *din, const tlcl_tensor *dout,
                             const tlcl_tensor *in)
{
    int N = in->n, C = in->c, HW = in->h * in->w, S;
    TLCL_TRY(eng_check_shape(e, dout, N, in->h, in->w, C, "se backward"));
    TLCL_TRY(eng_check_dtype(e, dout, in->dtype, "se backward"));
    if (din) {
        TLCL_TRY(eng_check_shape(e, din, N, in->h, in->w, C, "se backward"));
        TLCL_TRY(eng_check_dtype(e, din, in->dtype, "se backward"));
    }
    TLCL_TRY(se_check(e, se, C, &S));
    if (!se->gate.buf || se->gate.n != N || se->gate.c != C)
        return ENG_FAIL(e, TLCL_ERR_ARG, "se backward: no saved forward tensors (run forward first)");
    tlcl_tensor dpooled;
    TLCL_TRY(tlcl_tensor_alloc(e, &dpooled, "se dpooled", N, 1, 1, C));
    tlcl_status s = se_backward_dense(e, se, &dpooled, dout, in);
    /* din = dout * gate + dpooled / HW: the excite and the squeeze paths */
    if (s == TLCL_OK && din)
        s = eng_channel_broadcast(e, in->dtype, din->buf, dout->buf, se->gate.buf, dpooled.buf,
                                  HW > 0 ? 1.0f / (float)HW : 0.0f, N, HW, C);
    tlcl_tensor_release(e, &dpooled);
    return s;
}

void tlcl_se_release(tlcl_engine *e, tlcl_se *se)
{
    tlcl_tensor_release(e, &se->pooled);
    tlcl_tensor_release(e, &se->hidden_pre);
    tlcl_tensor_release(e, &se->hidden);
    tlcl_tensor_release(e, &se->gate_pre);
    tlcl_tensor_release(e, &se->gate);
}
