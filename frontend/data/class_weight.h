/* class_weight.h — Keras's class_weight: one weight per class, turned into
 * a weight per sample that multiplies that sample's loss.
 *
 *   none      every class 1.0.
 *   balanced  scikit-learn's compute_class_weight("balanced") over the
 *             training labels, as the usual Keras recipe calls it with
 *             classes=np.unique(y_train): w_c = n_samples / (n_present *
 *             count_c), n_present the number of classes that occur; a class
 *             with no training sample is absent from that dict, so Keras
 *             gives it 1.0, and so does tlcl. With a power p (config
 *             key class_weight_power), w_c = (n_samples / (n_present *
 *             count_c))^p: p = 1 is scikit-learn's balanced weights, p = 0
 *             weighs every class 1, values between soften the balance.
 *   manual    weights by class name; a class not named gets 1.0 (Keras's
 *             rule for classes missing from the dict); a name that is not a
 *             class, or given twice, is an error listing the classes; a
 *             weight must be finite and >= 0 (Keras does not check). */
#ifndef TLCL_CLASS_WEIGHT_H
#define TLCL_CLASS_WEIGHT_H

#include "tlcl_cl.h" /* tlcl_status */

#include <stddef.h>

typedef enum tlcl_class_weight_mode {
    TLCL_CLASS_WEIGHT_NONE = 0,
    TLCL_CLASS_WEIGHT_BALANCED,
    TLCL_CLASS_WEIGHT_MANUAL,
} tlcl_class_weight_mode;

typedef struct tlcl_class_weight_spec {
    tlcl_class_weight_mode mode;
    const char *const *names; /* manual: count class names ... */
    const double *weights;    /* ... and their weights */
    int count;
    double power;             /* balanced: the exponent p (1: scikit-learn's weights) */
} tlcl_class_weight_spec;

/* w[c] = n / (n_present * count_c) for classes present in labels, 1.0 for
 * the others. Labels outside [0, num_classes) are an error. */
tlcl_status tlcl_class_weight_balanced(const int *labels, size_t n, int num_classes, double *w, char *err,
                                       size_t len);

/* w[c] = w[c]^power for every class (1.0 stays 1.0); power 1 leaves w as
 * it is, bit for bit. */
void tlcl_class_weight_power(double *w, int num_classes, double power);

/* w[c] from a name -> weight map over class_names (see above). */
tlcl_status tlcl_class_weight_manual(const char *const *names, const double *weights, int count,
                                     const char *const *class_names, int num_classes, double *w, char *err,
                                     size_t len);

/* The weights of spec for a training set with these labels. */
tlcl_status tlcl_class_weight_resolve(const tlcl_class_weight_spec *spec, const char *const *class_names,
                                      int num_classes, const int *labels, size_t n, double *w, char *err,
                                      size_t len);

/* sample_w[i] = w[labels[i]]; a label outside [0, num_classes) gets 1.0,
 * as Keras gives a class missing from class_weight. */
/* "mode" ("none", "balanced", "manual"), for messages and the JSON below. */
const char *tlcl_class_weight_mode_name(tlcl_class_weight_mode m);

/* One line for the console: "class weights (balanced, power 0.5): cat 1.2247,
 * dog 0.8165". */
void tlcl_class_weight_describe(const tlcl_class_weight_spec *spec, const char *const *class_names,
                                int num_classes, const double *w, char *dst, size_t len);

/* The weights in force as JSON, written whole (temporary file and rename):
 * {"mode": "balanced", "power": 0.5, "classes": [{"name": "cat", "count":
 * 12, "weight": 1.2247}, ...]}; counts: training files per class, or NULL. */
tlcl_status tlcl_class_weight_write_json(const char *path, const tlcl_class_weight_spec *spec,
                                         const char *const *class_names, int num_classes, const double *w,
                                         const int *labels, size_t n, char *err, size_t len);

void tlcl_class_weight_per_sample(const double *w, int num_classes, const int *labels, size_t n, float *sample_w);

#endif
