/* model_cost.c — the work of each layer pass, from its geometry (see
 * model.h): what `tlcl bench` divides device time by to get GFLOP/s and
 * GB/s per layer. Counted in doubles: a large batch overflows 32 bits. */
#include "model.h"

#define F32 4.0 /* bytes per float */

tlcl_layer_cost tlcl_move_cost(double floats_read, double floats_written)
{
    return (tlcl_layer_cost){0.0, F32 * (floats_read + floats_written)};
}

static double conv_weights(const tlcl_convbn *cb)
{
    return (double)cb->geom.kh * cb->geom.kw * cb->cin * (cb->depthwise ? 1 : cb->cout);
}

/* 2 * N*OH*OW*Cout * Cin*kh*kw / groups; depthwise: groups = Cin = Cout. */
static double conv_flops(const tlcl_convbn *cb, int batch)
{
    double per_output = (double)cb->geom.kh * cb->geom.kw * (cb->depthwise ? 1 : cb->cin);
    return 2.0 * batch * cb->out_h * cb->out_w * cb->cout * per_output;
}

static double conv_in(const tlcl_convbn *cb, int batch) { return (double)batch * cb->in_h * cb->in_w * cb->cin; }
static double conv_out(const tlcl_convbn *cb, int batch) { return (double)batch * cb->out_h * cb->out_w * cb->cout; }

/* input, output, kernel and the four batch-norm vectors */
tlcl_layer_cost tlcl_convbn_cost(const tlcl_convbn *cb, int batch)
{
    double floats = conv_in(cb, batch) + conv_out(cb, batch) + conv_weights(cb) + 4.0 * cb->cout;
    return (tlcl_layer_cost){conv_flops(cb, batch), F32 * floats};
}

/* Reads the output gradient, the saved pre-normalisation output and the
 * kernel; the weight gradient also reads the input and writes the kernel's
 * gradient; the input gradient writes an input-sized tensor. */
tlcl_layer_cost tlcl_convbn_backward_cost(const tlcl_convbn *cb, int batch, int input_grad, int weight_grad)
{
    double floats = 2.0 * conv_out(cb, batch) + conv_weights(cb) + 4.0 * cb->cout;
    if (weight_grad)
        floats += conv_in(cb, batch) + conv_weights(cb);
    if (input_grad)
        floats += conv_in(cb, batch);
    return (tlcl_layer_cost){conv_flops(cb, batch) * (input_grad + weight_grad), F32 * floats};
}

/* Two dense layers C -> S -> C per sample on the pooled input; the input is
 * read and the scaled output written once. */
tlcl_layer_cost tlcl_se_cost(const tlcl_se_layer *se, const tlcl_tensor *in, int backward)
{
    double act = (double)tlcl_tensor_count(in), n = in->n;
    double weights = 2.0 * se->channels * se->squeeze + se->squeeze + se->channels;
    double flops = 2.0 * 2.0 * n * se->channels * se->squeeze;
    if (!backward)
        return (tlcl_layer_cost){flops, F32 * (2.0 * act + weights)};
    /* dout and the input read, din written, weights read and their gradients written */
    return (tlcl_layer_cost){2.0 * flops, F32 * (3.0 * act + 2.0 * weights)};
}

tlcl_layer_cost tlcl_dense_cost(const tlcl_dense_layer *d, int batch, int backward)
{
    double weights = (double)d->in * d->out + d->out, x = (double)batch * d->in, y = (double)batch * d->out;
    double flops = 2.0 * batch * d->in * (double)d->out;
    if (!backward)
        return (tlcl_layer_cost){flops, F32 * (x + y + weights)};
    /* dy and x read, dx written, weights read and their gradients written */
    return (tlcl_layer_cost){2.0 * flops, F32 * (y + 2.0 * x + 2.0 * weights)};
}
