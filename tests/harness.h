/* harness.h — the per-op test harness: opens the device named by
 * $TLCL_TEST_DEVICE (an index as `tlcl devices` prints it), else by
 * $TLCL_TEST_PLATFORM (a substring of the platform name; fails when absent),
 * fills inputs from a seeded generator, compares device results with the
 * double-precision references and counts checks. Each test binary ends with
 * harness_finish(), which prints "N passed, M failed" and returns the exit
 * code. */
#ifndef TLCL_HARNESS_H
#define TLCL_HARNESS_H

#include "engine.h"

#include <stddef.h>
#include <stdint.h>

typedef struct harness {
    tlcl_cl *cl;
    tlcl_engine *eng;
    int passed, failed;
    uint64_t rng;
    const char *device_name;
    int quick; /* $TLCL_TEST_QUICK=1: a few small cases of each kernel (the profile runs under oclgrind) */
    int bf16;  /* $TLCL_TEST_BF16=1: the tests' feature maps are stored as bfloat16 */
} harness;

/* Opens the device; exits the process with status 1 (and a message) when the
 * requested platform is missing. Host-only tests pass need_device = 0. */
void harness_init(harness *h, int need_device);
int harness_finish(harness *h);
/* Another context and engine (data-parallel tests): on the first device of
 * the platform matching `platform` (NULL: $TLCL_TEST_PLATFORM's);
 * exits with status 1 when it is missing. */
void harness_open_more(const char *platform, tlcl_cl **cl, tlcl_engine **eng);

/* Fails the current check with a message (and counts it). */
void harness_fail(harness *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Passes or fails one named yes/no check. */
void harness_expect(harness *h, int cond, const char *what);
/* The same with a printf-style name. */
void harness_expectf(harness *h, int cond, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Fails and returns 1 when s != TLCL_OK, printing the engine's message. */
int harness_status(harness *h, tlcl_status s, const char *what);

/* Uniform in [lo, hi) from the harness generator (deterministic). */
float harness_uniform(harness *h, float lo, float hi);
void harness_fill(harness *h, float *x, size_t n, float lo, float hi);
double *harness_to_double(const float *x, size_t n); /* malloc'd */

/* Compares got (float) with ref (double) element by element: passes when
 * every got[i] is finite and |got[i] - ref[i]| <= rtol * |ref[i]| + atol
 * (and n > 0). The absolute floor atol only covers the rounding of entries
 * near zero, so keep it at the size of the float error of the computation,
 * not of the largest entry: a scale taken from the largest entry would let
 * a wrong small entry through. Prints one line either way: the worst entry
 * as a fraction of its allowance (err/tol, <= 1 passes), and on failure
 * that entry and how many are over. Every device comparison of the per-op
 * tests goes through here. */
int harness_close(harness *h, const char *what, const float *got, const double *ref, size_t n, double rtol,
                  double atol);

/* The older max-relative form, kept for the host and whole-network tests
 * that use it: passes when max|got - ref| <= tol * max(max|ref|, floor),
 * i.e. harness_close with rtol 0 and atol = tol * max(max|ref|, floor). */
int harness_check(harness *h, const char *what, const float *got, const double *ref, size_t n, double tol,
                  double floor);

/* Device helpers: allocate + upload; download into a malloc'd array. */
tlcl_tensor harness_tensor(harness *h, const char *name, int n, int hh, int w, int c, const float *data);
float *harness_download(harness *h, const tlcl_tensor *t);

/* bfloat16 feature maps ($TLCL_TEST_BF16=1, the ctest variants *_bf16).
 * harness_act_tensor allocates a feature map (an activation or its
 * gradient) in the storage of the run, rounding data (NULL: none) to
 * bfloat16 in place first, so the double references see exactly the values
 * the device holds: the only new error is then the rounding of the stored
 * results. harness_act_rtol widens a relative tolerance by that rounding:
 * half a unit in the last place of bfloat16's 8-bit significand, which is
 * up to 2^-8 of the value (at the bottom of a binade). */
#define HARNESS_BF16_RTOL (1.0 / 256)
tlcl_dtype harness_act_dtype(const harness *h);
tlcl_tensor harness_act_tensor(harness *h, const char *name, int n, int hh, int w, int c, float *data);
double harness_act_rtol(const harness *h, double rtol);
/* Rounds x[0..n) to the nearest bfloat16 (ties to even) in place, in
 * double arithmetic: independent of the engine's bit-level rounding. */
void harness_round_bf16(float *x, size_t n);

/* Finite-difference check of a reference backward: loss(ctx) is a scalar
 * function of x[0..n); grad holds the analytic gradient. Checks up to
 * max_points coordinates with central differences of step eps. */
int harness_fd_check(harness *h, const char *what, double (*loss)(void *ctx), void *ctx, double *x, size_t n,
                     const double *grad, size_t max_points, double eps, double tol);

#endif
