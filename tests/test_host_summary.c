/* test_host_summary.c — parameter totals of the EfficientNet family
 * against the figures Keras prints (model.summary()), and the scaling rules
 * against Keras's arithmetic. Host only: describing a model needs no
 * device. */
#include "harness.h"
#include "model.h"

#include <stdio.h>

static void expect_totals(harness *h, const char *arch, int top, size_t total, size_t non_trainable)
{
    tlcl_model m;
    tlcl_model_options o = tlcl_model_options_default();
    o.arch = arch;
    o.include_top = top;
    char err[256];
    if (tlcl_model_build(&m, &o, err, sizeof err) != TLCL_OK) {
        harness_fail(h, "%s: %s", arch, err);
        return;
    }
    tlcl_param_totals t = tlcl_model_count(&m);
    if (t.total == total && t.non_trainable == non_trainable && t.trainable == total - non_trainable) {
        h->passed++;
        printf("ok   %-20s top=%d total %zu non-trainable %zu\n", arch, top, t.total, t.non_trainable);
    } else {
        harness_fail(h, "%s top=%d: total %zu (want %zu), non-trainable %zu (want %zu)", arch, top, t.total, total,
                     t.non_trainable, non_trainable);
    }
    tlcl_model_free(&m);
}

static void expect_int(harness *h, const char *what, int got, int want)
{
    if (got == want) {
        h->passed++;
        printf("ok   %s = %d\n", what, got);
    } else {
        harness_fail(h, "%s = %d, want %d", what, got, want);
    }
}

int main(void)
{
    harness h;
    harness_init(&h, 0);
    /* Keras 3 model.summary() totals */
    expect_totals(&h, "EfficientNetV2B0", 0, 5919312, 60608);
    expect_totals(&h, "EfficientNetV2B0", 1, 7200312, 60608);
    expect_totals(&h, "EfficientNetB0", 0, 4049571, 42023);
    expect_totals(&h, "EfficientNetB0", 1, 5330571, 42023);
    expect_totals(&h, "EfficientNetB3", 1, 12320535, 87303);
    expect_totals(&h, "EfficientNetB7", 1, 66658687, 310727);
    expect_totals(&h, "EfficientNetV2S", 1, 21612360, 153872);
    expect_totals(&h, "EfficientNetV2B3", 1, 14467622, 109216);
    /* TF EfficientNet-Lite0 reports 4,652,008 trainable weights */
    expect_totals(&h, "efficientnet-lite0", 1, 4652008 + 42016, 42016);

    /* rounding rules: V1 adds a divisor when rounding lost more than 10% */
    const tlcl_arch *b3 = tlcl_arch_find("efficientnet-b3"), *v2b3 = tlcl_arch_find("efficientnetv2-b3");
    expect_int(&h, "V1 B3 round_filters(32)", tlcl_round_filters(b3, 32), 40);
    expect_int(&h, "V1 B3 round_filters(1280)", tlcl_round_filters(b3, 1280), 1536);
    expect_int(&h, "V2 B3 round_filters(16)", tlcl_round_filters(v2b3, 16), 16);
    expect_int(&h, "V1 B3 round_repeats(3)", tlcl_round_repeats(b3, 3, 3), 5);
    const tlcl_arch *lite4 = tlcl_arch_find("efficientnet-lite4");
    expect_int(&h, "Lite4 keeps the first stage's repeats", tlcl_round_repeats(lite4, 1, 0), 1);
    expect_int(&h, "Lite4 scales a middle stage's repeats", tlcl_round_repeats(lite4, 2, 1), 4);
    expect_int(&h, "unknown architecture", tlcl_arch_find("resnet50") == NULL, 1);
    return harness_finish(&h);
}
