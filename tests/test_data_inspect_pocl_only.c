/* test_data_inspect_pocl_only.c — `tlcl data inspect`: the class counts of
 * each split, and a contact sheet whose tiles are the training images of
 * the right class as the model receives them. Without augmentation each
 * tile equals (within rounding) one image of its row's class, resized by
 * tlcl_image_load_resized, and none of another class; with augmentation
 * (flips, rotation) the tiles no longer equal their sources. Runs the tlcl
 * binary (no device is opened). */
#include "harness.h"
#include "image_load.h"
#include "testdata.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { SIZE = 32, PER_CLASS = 8, SHOWN = 3 };
/* the sheet's layout (plot.c): row labels 190 px, cells 150 + 12 px wide,
 * tile + 20 + 12 px high, under a 44 px title */
enum { LEFT = 190, CELL_W = 162, TOP = 44, CELL_H = SIZE + 32 };

static char root[256], out[1 << 15];

static int tlcl(const char *args)
{
    return testdata_command(TLCL_BINARY, root, args, out, sizeof out);
}

static void write_config(const char *augment)
{
    char path[400];
    snprintf(path, sizeof path, "%s/run.yaml", root);
    FILE *f = fopen(path, "w");
    fprintf(f,
            "train:\n"
            "  data_dir: {train: data, validation_split: 0.25, split: stratified, image_size: [%d, %d]}\n"
            "  artefacts: {base_dir: artefacts}\n"
            "  metrics: {base_dir: metrics}\n"
            "  records: {base_dir: records}\n"
            "augmentation: %s\n",
            SIZE, SIZE, augment);
    fclose(f);
}

/* Mean absolute difference between a tile of the sheet and an image. */
static double tile_diff(const tlcl_image *sheet, int row, int col, const float *img)
{
    double d = 0;
    for (int y = 0; y < SIZE; y++)
        for (int x = 0; x < SIZE; x++)
            for (int c = 0; c < 3; c++) {
                size_t at = ((size_t)(TOP + row * CELL_H + y) * sheet->w + (size_t)(LEFT + col * CELL_W + x)) * 3 + c;
                d += fabs(sheet->rgb[at] - img[((size_t)y * SIZE + x) * 3 + c]);
            }
    return d / (SIZE * SIZE * 3);
}

/* For each tile: the class whose images it matches best, and how well. */
static void match_tiles(harness *h, const tlcl_image *sheet, float *src, int augmented)
{
    int right = 0, exact = 0;
    for (int row = 0; row < TESTDATA_CLASSES; row++)
        for (int col = 0; col < SHOWN; col++) {
            double best = 1e30;
            int best_class = -1;
            for (int k = 0; k < TESTDATA_CLASSES * PER_CLASS; k++) {
                double d = tile_diff(sheet, row, col, src + (size_t)k * SIZE * SIZE * 3);
                if (d < best)
                    best = d, best_class = k / PER_CLASS;
            }
            right += best_class == row;
            exact += best <= 1.0;
        }
    int tiles = TESTDATA_CLASSES * SHOWN;
    if (!augmented) {
        harness_expectf(h, exact == tiles && right == tiles,
                        "every tile is an image of its row's class as resized for the model (%d of %d exact, %d "
                        "of %d in the right row)", exact, tiles, right, tiles);
    } else {
        harness_expectf(h, exact == 0, "with augmentation no tile equals its source (%d of %d do)", exact, tiles);
    }
}

int main(void)
{
    harness h;
    harness_init(&h, 0);
    snprintf(root, sizeof root, "%s/tlcl_inspect_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(root))
        return 1;
    char data[300], path[600], err[512];
    snprintf(data, sizeof data, "%s/data", root);
    testdata_shapes(data, PER_CLASS, 0);
    float *src = malloc((size_t)TESTDATA_CLASSES * PER_CLASS * SIZE * SIZE * 3 * sizeof *src);
    /* rows follow the class folders' sorted order, as the labels do */
    const char *sorted[TESTDATA_CLASSES];
    for (int k = 0; k < TESTDATA_CLASSES; k++) {
        int at = k;
        while (at > 0 && strcmp(sorted[at - 1], testdata_class_names[k]) > 0)
            sorted[at] = sorted[at - 1], at--;
        sorted[at] = testdata_class_names[k];
    }
    for (int k = 0; k < TESTDATA_CLASSES * PER_CLASS; k++) {
        snprintf(path, sizeof path, "%s/%s/img%02d.png", data, sorted[k / PER_CLASS], k % PER_CLASS);
        if (tlcl_image_load_resized(path, SIZE, SIZE, src + (size_t)k * SIZE * SIZE * 3, err, sizeof err) != 0)
            harness_fail(&h, "%s", err);
    }
    const char *augment[2] = {"{enabled: false}", "{enabled: true, flip: horizontal, rotation: 0.2, brightness: 0.3}"};
    for (int a = 0; a < 2; a++) {
        write_config(augment[a]);
        int rc = tlcl("data inspect run.yaml --per-class 3 --out sheet.png");
        printf("%s", out);
        if (a == 0)
            harness_expectf(&h, rc == 0 && testdata_counts_are(out, "circles", 6, 2, 0) && testdata_counts_are(out, "stripes", 6, 2, 0) &&
                                    testdata_counts_are(out, "total", 18, 6, 0),
                            "the counts of each class in each split: 6 training, 2 validation (rc %d)", rc);
        snprintf(path, sizeof path, "%s/sheet.png", root);
        tlcl_image sheet = {0};
        if (rc != 0 || tlcl_image_load(path, &sheet, err, sizeof err) != 0) {
            harness_fail(&h, "no contact sheet (rc %d): %s", rc, err);
            continue;
        }
        harness_expectf(&h, sheet.h == TOP + TESTDATA_CLASSES * CELL_H + 12, "one row per class (%d px high)",
                        sheet.h);
        match_tiles(&h, &sheet, src, a);
        tlcl_image_free(&sheet);
    }
    int rc = tlcl("data look run.yaml");
    harness_expectf(&h, rc == 2 && strstr(out, "unknown action 'look'"), "an unknown action is a usage error (rc %d)",
                    rc);
    free(src);
    char rm[400];
    snprintf(rm, sizeof rm, "rm -rf '%s'", root);
    if (system(rm) != 0)
        harness_fail(&h, "cannot remove %s", root);
    return harness_finish(&h);
}
