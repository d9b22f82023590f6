/* testdata.h — generated image data sets for the whole-program tests
 * (resume, final training, grid): three classes of shapes a small network
 * tells apart in a few steps. */
#ifndef TLCL_TESTDATA_H
#define TLCL_TESTDATA_H

#include "harness.h"
#include "model.h"

#include <stdio.h>

enum { TESTDATA_CLASSES = 3, TESTDATA_SIDE = 24 };
extern const char *const testdata_class_names[TESTDATA_CLASSES]; /* circles, stripes, squares */

/* dir/<class>/imgNN.png, per_class PNGs of TESTDATA_SIDE px a class (dir and
 * the class folders are created); salt varies the shapes (another split). */
void testdata_shapes(const char *dir, int per_class, int salt);

/* An EfficientNet-B0 checkpoint of `size` px input with random weights and
 * the TESTDATA_CLASSES classes, for the commands that read one (predict,
 * test); 0, or 1 after failing h. */
int testdata_checkpoint(harness *h, const char *path, int size);

/* The scaled-down architecture of the Keras fixtures (tests/fixtures/keras_v1|v2.*,
 * tools/make_keras_fixtures.py): name's table at width 0.5, depth 0.5, input 64,
 * no dropout or stochastic depth; its name is "<name>-keras-fixture". */
tlcl_arch testdata_keras_fixture_arch(const char *name);

/* The tiny EfficientNet-style network of the whole-network tests (stem, two
 * MBConv blocks with squeeze-and-excitation and a residual, top conv, head;
 * 32 px input, dropout 0.1, stochastic depth 0.2). */
extern const tlcl_arch testdata_tiny_arch;

/* n images [n, size, size, 3] (0..255) of the tiny task of the whole-network
 * tests and their labels: class k (of 2 or 4) has bit 0 = stripe
 * orientation, bit 1 = dominant colour, random period, phase and noise
 * drawn from h's generator. */
void testdata_stripes(harness *h, float *imgs, int *labels, int n, int size, int classes);

/* dir/run.yaml opened for writing (NULL when it cannot be). */
FILE *testdata_config_file(const char *dir);

/* Runs `BINARY ARGS` (a shell line) in dir, stdout and stderr into out
 * (len bytes, cut there); the exit status, -1 when it did not exit. */
int testdata_command(const char *binary, const char *dir, const char *args, char *out, size_t len);

/* 1 when text (a command's output) holds the line "NAME TRAIN VALIDATION
 * TEST" of the class counts table tlcl prints (tlcl_run_data_print_counts). */
int testdata_counts_are(const char *text, const char *name, int train, int val, int test);

#endif
