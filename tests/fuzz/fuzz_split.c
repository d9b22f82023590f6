/* fuzz_split.c — the split file reader (tlcl_split_file_read): the JSON,
 * the format and version, the parameters compared with the run's, the
 * fingerprint and class names compared with the dataset's, and the
 * training and validation lists (paths looked up in the dataset, labels,
 * duplicates). The dataset and options are fixed (six files of two classes,
 * the default split options), and the seed corpus holds the split file tlcl
 * writes for them, so the fuzzer starts from a file that is reused.
 * TLCL_FUZZ_WRITE_SEED=PATH writes that seed and exits. */
#include "fuzz_file.h"
#include "split_file.h"

#include <stdlib.h>
#include <string.h>

static tlcl_dataset ds;
static tlcl_split_options opt;

static void fixed_dataset(void)
{
    static char *classes[] = {"cat", "dog"};
    static tlcl_sample samples[] = {{"cat/a.jpg", 0}, {"cat/b.png", 0}, {"cat/c.jpg", 0},
                                    {"dog/a.jpg", 1}, {"dog/b.bmp", 1}, {"dog/sub/c.gif", 1}};
    ds = (tlcl_dataset){.root = "data", .num_classes = 2, .class_names = classes, .count = 6, .samples = samples};
    opt = tlcl_split_options_default();
    opt.seed = 42;
    opt.validation_split = 0.34;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fixed_dataset();
    const char *seed = getenv("TLCL_FUZZ_WRITE_SEED");
    if (seed) {
        char err[512];
        tlcl_split s;
        int ok = tlcl_split_compute(&ds, &opt, &s, err, sizeof err) == TLCL_OK &&
                 tlcl_split_file_write(seed, &ds, &opt, &s, err, sizeof err) == TLCL_OK;
        if (!ok)
            fprintf(stderr, "%s\n", err);
        exit(ok ? 0 : 1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    tlcl_split s;
    tlcl_split_outcome outcome;
    const char *path = fuzz_file(data, size, ".json");
    if (tlcl_split_file_read(path, &ds, &opt, &s, &outcome, err, sizeof err) == TLCL_OK)
        tlcl_split_free(&s);
    return 0;
}
