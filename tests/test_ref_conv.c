/* test_ref_conv.c — the double references' backward (input and weight
 * gradients of conv2d and depthwise, input gradient of resize) against
 * central finite differences of loss = sum(r * forward(x, w)). */
#include "harness.h"
#include "ref_conv.h"

#include <stdio.h>
#include <stdlib.h>

typedef enum { OP_CONV, OP_DEPTHWISE, OP_RESIZE } op_kind;

typedef struct fd_ctx {
    op_kind op;
    ref_conv_shape s;
    double *x, *w, *r, *y;
    size_t nx, nw, ny;
} fd_ctx;

static void forward(fd_ctx *c)
{
    if (c->op == OP_CONV)
        ref_conv2d_forward(&c->s, c->y, c->x, c->w);
    else if (c->op == OP_DEPTHWISE)
        ref_depthwise_forward(&c->s, c->y, c->x, c->w);
    else
        ref_resize_bilinear_forward(c->s.n, c->s.h, c->s.w, c->s.cin, c->s.oh, c->s.ow, c->y, c->x);
}

static double loss(void *ctx)
{
    fd_ctx *c = ctx;
    forward(c);
    double l = 0;
    for (size_t i = 0; i < c->ny; i++)
        l += c->r[i] * c->y[i];
    return l;
}

static double *random_doubles(harness *h, size_t n)
{
    double *d = malloc((n ? n : 1) * sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = harness_uniform(h, -1, 1);
    return d;
}

static void check(harness *h, op_kind op, ref_conv_shape s, const char *name)
{
    fd_ctx c = {.op = op, .s = s};
    c.nx = (size_t)s.n * s.h * s.w * s.cin;
    c.ny = (size_t)s.n * s.oh * s.ow * s.cout;
    c.nw = op == OP_CONV ? (size_t)s.kh * s.kw * s.cin * s.cout : op == OP_DEPTHWISE ? (size_t)s.kh * s.kw * s.cin : 0;
    c.x = random_doubles(h, c.nx), c.w = random_doubles(h, c.nw), c.r = random_doubles(h, c.ny);
    c.y = malloc(c.ny * sizeof *c.y);
    double *dx = malloc(c.nx * sizeof *dx), *dw = malloc((c.nw ? c.nw : 1) * sizeof *dw);
    if (op == OP_CONV)
        ref_conv2d_backward(&s, dx, dw, c.r, c.x, c.w);
    else if (op == OP_DEPTHWISE)
        ref_depthwise_backward(&s, dx, dw, c.r, c.x, c.w);
    else
        ref_resize_bilinear_backward(s.n, s.h, s.w, s.cin, s.oh, s.ow, dx, c.r);
    char what[128];
    snprintf(what, sizeof what, "%s din", name);
    harness_fd_check(h, what, loss, &c, c.x, c.nx, dx, 200, 1e-5, 1e-6);
    if (c.nw) {
        snprintf(what, sizeof what, "%s dweight", name);
        harness_fd_check(h, what, loss, &c, c.w, c.nw, dw, 200, 1e-5, 1e-6);
    }
    free(c.x), free(c.w), free(c.r), free(c.y), free(dx), free(dw);
}

/* Output size of a window sweep with explicit padding: pad_total covers both sides. */
static ref_conv_shape shape(int n, int h, int w, int cin, int cout, int k, int stride, int pt, int pl, int pad_h,
                            int pad_w)
{
    ref_conv_shape s = {.n = n, .h = h, .w = w, .cin = cin, .cout = cout, .kh = k, .kw = k, .stride = stride,
                        .pad_top = pt, .pad_left = pl};
    s.oh = (h + pad_h - k) / stride + 1;
    s.ow = (w + pad_w - k) / stride + 1;
    return s;
}

int main(void)
{
    harness h;
    harness_init(&h, 0);
    check(&h, OP_CONV, shape(2, 5, 4, 3, 4, 3, 1, 1, 1, 2, 2), "conv 3x3 s1 same");
    check(&h, OP_CONV, shape(1, 7, 9, 3, 5, 3, 2, 1, 1, 2, 2), "conv 3x3 s2 7x9");
    check(&h, OP_CONV, shape(1, 6, 6, 2, 3, 3, 2, 0, 0, 1, 1), "conv 3x3 s2 V1 pad (0,1)");
    check(&h, OP_CONV, shape(2, 3, 3, 5, 2, 1, 1, 0, 0, 0, 0), "conv 1x1");
    check(&h, OP_DEPTHWISE, shape(2, 5, 6, 3, 3, 3, 1, 1, 1, 2, 2), "depthwise 3x3 s1");
    check(&h, OP_DEPTHWISE, shape(1, 7, 9, 5, 5, 5, 2, 1, 2, 3, 4), "depthwise 5x5 s2");
    ref_conv_shape up = {.n = 1, .h = 3, .w = 4, .cin = 2, .oh = 7, .ow = 5, .cout = 2};
    ref_conv_shape down = {.n = 2, .h = 9, .w = 7, .cin = 3, .oh = 4, .ow = 3, .cout = 3};
    check(&h, OP_RESIZE, up, "resize up 3x4->7x5");
    check(&h, OP_RESIZE, down, "resize down 9x7->4x3");
    return harness_finish(&h);
}
