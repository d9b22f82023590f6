/* test_ref_norm.c — every backward of ref_norm (input and parameter
 * gradients) against central finite differences of loss = Σ r·y with random
 * r. In batch norm's training mode the batch statistics are recomputed from
 * the perturbed x, so the check covers their dependence on x. */
#include "harness.h"
#include "ref_norm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FD_EPS 1e-6
#define FD_TOL 1e-6
#define FD_POINTS 60

typedef enum { OP_ACT, OP_BN, OP_POOL, OP_DENSE, OP_SCALE, OP_SE } op_kind;

/* Everything a forward needs; the FD check perturbs one array in place. */
typedef struct fd_ctx {
    op_kind op;
    int train, act, N, HW, C, S;  /* dense: C = Cin, S = Cout */
    double *x, *p[4];              /* p: gamma, beta | W, b | scale | wr, br, we, be */
    double *mm, *mv;               /* BN moving statistics (copied per call) */
    double *r, *y;
    size_t ny;
} fd_ctx;

static double *rnd(harness *h, size_t n, double lo, double hi)
{
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = harness_uniform(h, (float)lo, (float)hi);
    return d;
}

static void forward(fd_ctx *c)
{
    size_t nx = (size_t)c->N * c->HW * c->C;
    ref_se_params se = {c->C, c->S, c->act, c->p[0], c->p[1], c->p[2], c->p[3]};
    double mm[64], mv[64];
    switch (c->op) {
    case OP_ACT: ref_activation_forward(c->act, c->x, c->y, nx); break;
    case OP_BN:
        memcpy(mm, c->mm, (size_t)c->C * sizeof *mm), memcpy(mv, c->mv, (size_t)c->C * sizeof *mv);
        ref_bn_forward(c->train, c->N * c->HW, c->C, c->x, c->p[0], c->p[1], mm, mv, 0.9, 1e-3, c->act, c->y, NULL,
                       NULL);
        break;
    case OP_POOL: ref_avgpool_forward(c->N, c->HW, c->C, c->x, c->y); break;
    case OP_DENSE: ref_dense_forward(c->N, c->C, c->S, c->x, c->p[0], c->p[1], c->act, NULL, c->y); break;
    case OP_SCALE: ref_channel_scale_forward(c->N, c->HW, c->C, c->x, c->p[0], c->y); break;
    case OP_SE: ref_se_forward(c->N, c->HW, &se, c->x, c->y); break;
    }
}

static double loss(void *ctx)
{
    fd_ctx *c = ctx;
    forward(c);
    double s = 0;
    for (size_t i = 0; i < c->ny; i++)
        s += c->r[i] * c->y[i];
    return s;
}

/* Analytic gradients g[0] = dx, g[1..4] = parameter gradients, dy = r. */
static void backward(fd_ctx *c, double *g[5])
{
    int M = c->N * c->HW;
    size_t nx = (size_t)M * c->C;
    ref_se_params se = {c->C, c->S, c->act, c->p[0], c->p[1], c->p[2], c->p[3]};
    double mean[64], istd[64], mm[64], mv[64];
    switch (c->op) {
    case OP_ACT: ref_activation_backward(c->act, c->r, c->x, g[0], nx); break;
    case OP_BN:
        memcpy(mm, c->mm, (size_t)c->C * sizeof *mm), memcpy(mv, c->mv, (size_t)c->C * sizeof *mv);
        ref_bn_forward(c->train, M, c->C, c->x, c->p[0], c->p[1], mm, mv, 0.9, 1e-3, c->act, c->y, mean, istd);
        ref_bn_backward(c->train, M, c->C, c->x, c->r, c->p[0], c->p[1], mean, istd, c->act, g[0], g[1], g[2]);
        break;
    case OP_POOL: ref_avgpool_backward(c->N, c->HW, c->C, c->r, g[0]); break;
    case OP_DENSE: {
        double *pre = malloc(c->ny * sizeof *pre);
        ref_dense_forward(c->N, c->C, c->S, c->x, c->p[0], c->p[1], c->act, pre, c->y);
        ref_dense_backward(c->N, c->C, c->S, c->x, c->p[0], pre, c->act, c->r, g[0], g[1], g[2]);
        free(pre);
        break;
    }
    case OP_SCALE: ref_channel_scale_backward(c->N, c->HW, c->C, c->x, c->p[0], c->r, g[0], g[1]); break;
    case OP_SE: ref_se_backward(c->N, c->HW, &se, c->x, c->r, g[0], g[1], g[2], g[3], g[4]); break;
    }
}

/* Checks the gradient of x and of each of the nparam parameters (sizes np). */
static void check(harness *h, fd_ctx *c, const char *name, int nparam, const size_t *np)
{
    size_t nx = (size_t)c->N * c->HW * c->C;
    if (c->op == OP_DENSE)
        nx = (size_t)c->N * c->C;
    double *g[5] = {calloc(nx, sizeof(double))};
    for (int k = 0; k < nparam; k++)
        g[k + 1] = calloc(np[k], sizeof(double));
    backward(c, g);
    char what[128];
    snprintf(what, sizeof what, "%s dx", name);
    harness_fd_check(h, what, loss, c, c->x, nx, g[0], FD_POINTS, FD_EPS, FD_TOL);
    for (int k = 0; k < nparam; k++) {
        snprintf(what, sizeof what, "%s dparam%d", name, k);
        harness_fd_check(h, what, loss, c, c->p[k], np[k], g[k + 1], FD_POINTS, FD_EPS, FD_TOL);
    }
    for (int k = 0; k <= nparam; k++)
        free(g[k]);
}

static fd_ctx make(harness *h, op_kind op, int N, int HW, int C, int S, size_t ny)
{
    fd_ctx c = {.op = op, .N = N, .HW = HW, .C = C, .S = S, .ny = ny};
    size_t nx = op == OP_DENSE ? (size_t)N * C : (size_t)N * HW * C;
    c.x = rnd(h, nx, -2, 2);
    c.r = rnd(h, ny, -1, 1);
    c.y = calloc(ny, sizeof(double));
    return c;
}

static void drop(fd_ctx *c)
{
    free(c->x), free(c->r), free(c->y), free(c->mm), free(c->mv);
    for (int k = 0; k < 4; k++)
        free(c->p[k]);
}

static void test_bn(harness *h, int train, int act)
{
    int N = 2, HW = 6, C = 3;
    fd_ctx c = make(h, OP_BN, N, HW, C, 0, (size_t)N * HW * C);
    c.train = train, c.act = act;
    c.p[0] = rnd(h, C, 0.5, 1.5), c.p[1] = rnd(h, C, -0.5, 0.5);
    c.mm = rnd(h, C, -0.5, 0.5), c.mv = rnd(h, C, 0.5, 2);
    size_t np[2] = {C, C};
    char name[64];
    snprintf(name, sizeof name, "bn %s act=%d", train ? "train" : "infer", act);
    check(h, &c, name, 2, np);
    drop(&c);
}

static void test_dense(harness *h, int act, int with_bias)
{
    int N = 3, Cin = 5, Cout = 4;
    fd_ctx c = make(h, OP_DENSE, N, 1, Cin, Cout, (size_t)N * Cout);
    c.act = act;
    c.p[0] = rnd(h, (size_t)Cin * Cout, -1, 1);
    c.p[1] = with_bias ? rnd(h, Cout, -0.5, 0.5) : NULL;
    size_t np[2] = {(size_t)Cin * Cout, Cout};
    char name[64];
    snprintf(name, sizeof name, "dense act=%d bias=%d", act, with_bias);
    check(h, &c, name, with_bias ? 2 : 1, np);
    drop(&c);
}

static void test_se(harness *h, int S, int act)
{
    int N = 2, HW = 6, C = 5;
    fd_ctx c = make(h, OP_SE, N, HW, C, S, (size_t)N * HW * C);
    c.act = act;
    /* positive reduce biases keep a relu hidden layer (partly) active */
    c.p[0] = rnd(h, (size_t)C * S, -1, 1), c.p[1] = rnd(h, S, 0.1, 1.0);
    c.p[2] = rnd(h, (size_t)S * C, -1, 1), c.p[3] = rnd(h, C, -0.5, 0.5);
    size_t np[4] = {(size_t)C * S, S, (size_t)S * C, C};
    char name[64];
    snprintf(name, sizeof name, "se S=%d act=%d", S, act);
    check(h, &c, name, 4, np);
    drop(&c);
}

int main(void)
{
    harness h;
    harness_init(&h, 0);
    for (int act = 0; act <= 4; act++) {
        fd_ctx c = make(&h, OP_ACT, 2, 7, 3, 0, 42);
        c.act = act;
        char name[64];
        snprintf(name, sizeof name, "activation act=%d", act);
        check(&h, &c, name, 0, NULL);
        drop(&c);
        test_bn(&h, 1, act);
        test_bn(&h, 0, act);
        test_dense(&h, act, 1);
    }
    test_dense(&h, 0, 0);
    fd_ctx pool = make(&h, OP_POOL, 2, 9, 5, 0, 10);
    check(&h, &pool, "avgpool", 0, NULL);
    drop(&pool);
    fd_ctx sc = make(&h, OP_SCALE, 2, 6, 3, 0, 36);
    sc.p[0] = rnd(&h, 6, -1, 1);
    size_t nsc = 6;
    check(&h, &sc, "channel_scale", 1, &nsc);
    drop(&sc);
    test_se(&h, 1, 1);
    test_se(&h, 3, 1);
    test_se(&h, 3, 3);
    return harness_finish(&h);
}
