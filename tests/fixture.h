/* fixture.h — reading the Keras reference fixtures of tests/fixtures
 * (safetensors files written by the tools/make_keras_*.py scripts) and the
 * per-element comparison the whole-run and loss tests use.
 *
 * A fixture is a safetensors file: an 8-byte little-endian header length,
 * a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {key:
 * string}}, then the data. F32, F16 and U8 tensors are read, as doubles. */
#ifndef TLCL_TEST_FIXTURE_H
#define TLCL_TEST_FIXTURE_H

#include "harness.h"

#include <stddef.h>

typedef struct cJSON cJSON;

typedef struct fixture {
    char path[512];
    cJSON *header;
    unsigned char *data;
    size_t size;
} fixture;

/* The fixture directory: $TLCL_FIXTURE_DIR, else the source tree's. */
const char *fixture_dir(void);
/* Opens <fixture_dir>/<name>; fails the check (naming the file and the
 * script that writes it) and returns -1 when it cannot be read. */
int fixture_open(harness *h, fixture *fx, const char *name, const char *script);
void fixture_close(fixture *fx);
/* A metadata string, or NULL. */
const char *fixture_meta(const fixture *fx, const char *key);
/* A metadata number; fails the check and returns 0 when it is missing. */
double fixture_meta_num(harness *h, const fixture *fx, const char *key);
/* The tensor's values as malloc'd doubles, its element count in *n; NULL
 * when absent or of an unknown dtype. */
double *fixture_get(const fixture *fx, const char *name, size_t *n);
/* The tensor's shape: rank in *ndims (0 for a scalar), dims in shape[0..3];
 * -1 when absent or of rank above 4. */
int fixture_shape(const fixture *fx, const char *name, int shape[4], int *ndims);
/* The same, failing the check with the fixture's name when the tensor is
 * missing or has not `want` elements (want 0: any). */
double *fixture_need(harness *h, const fixture *fx, const char *name, size_t want);
/* The header's entries, in file order (for iteration; skip "__metadata__"). */
cJSON *fixture_first(const fixture *fx);

float *fixture_to_float(const double *x, size_t n); /* malloc'd */

/* Per-element relative error with an absolute floor:
 *   e_i = |got_i - want_i| / max(|want_i|, floor_i)
 * (floor_i = floor[i] when floor is not NULL, else floor0). Returns the
 * largest e_i (infinity when a value is not finite) and its index in
 * *worst. */
double fixture_elementwise(const float *got, const double *want, size_t n, const double *floor, double floor0,
                           size_t *worst);
/* One check against tol with the floor as an absolute allowance:
 * harness_close with rtol = tol and atol = tol * floor0. */
int fixture_check(harness *h, const char *what, const float *got, const double *want, size_t n, double tol,
                  double floor0);

#endif
