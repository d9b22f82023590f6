/* cmd_data.c — `tlcl data inspect CONFIG.yaml [--per-class N] [--out FILE]
 * [--set KEY=VALUE]...`: what a configuration would train on, before a long
 * run. Prints the images of each class in each split (the split is the one
 * `tlcl train` uses: computed and saved as train would, or the saved one
 * reused) and writes a contact sheet of the first training images of each
 * class as the model receives them: decoded, resized to the model's input
 * size, augmented as in the first epoch, through the training loader
 * itself. A wrong split, a bad resize or a too-strong augmentation shows
 * there. Needs no OpenCL device. */
#include "batch_loader.h"
#include "commands.h"
#include "plot.h"
#include "run_data.h"
#include "run_plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PER_CLASS_DEFAULT = 6 };

CLI_COMMAND(cli_data, "data", "inspect CONFIG.yaml", 2, 2,
    "Look at a configuration's data before training: the images of each class in each split, and a\n"
    "contact sheet of training images as the model receives them (resized, augmented).",
    CLI_INT_OPT("per-class", "N", 1, 64, "images of each class on the contact sheet (default 6)"),
    CLI_TEXT_OPT("out", "FILE", "the contact sheet, .png or .jpg (default: records base_dir/data_inspect.png)"),
    CLI_SET_OPTION);

static void warn_stderr(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "warning: %s\n", msg);
}

/* The first `per` training samples of each class, in split order: their
 * positions in d->train, row by row (-1 where a class has fewer). */
static int *pick_samples(const tlcl_run_data *d, int per)
{
    int *pick = malloc((size_t)d->classes * per * sizeof *pick), *have = calloc((size_t)d->classes, sizeof *have);
    if (!pick || !have) {
        free(pick), free(have);
        return NULL;
    }
    for (int i = 0; i < d->classes * per; i++)
        pick[i] = -1;
    for (int i = 0; i < d->train.n; i++) {
        int c = d->train.labels[i];
        if (c >= 0 && c < d->classes && have[c] < per)
            pick[c * per + have[c]++] = i;
    }
    free(have);
    return pick;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The picked samples through the training loader (one batch, no shuffle),
 * into 8-bit tiles; returns the tile pixels (one block) or NULL. */
static unsigned char *load_tiles(const tlcl_run_data *d, const tlcl_config *c, const int *pick, int n,
                                 plot_tile *tiles)
{
    int *items = malloc((size_t)n * sizeof *items), *labels = malloc((size_t)n * sizeof *labels), count = 0;
    for (int i = 0; items && labels && i < n; i++)
        if (pick[i] >= 0)
            items[count] = d->train.items[pick[i]], labels[count++] = d->train.labels[pick[i]];
    size_t px = (size_t)d->cache.h * d->cache.w * 3;
    unsigned char *rgb = count ? malloc((size_t)count * px) : NULL;
    tlcl_loader_options o = {.batch_size = count, .seed = (uint32_t)c->train.config.seed, .prefetch = 1,
                             .augment = tlcl_plan_augment(c)};
    tlcl_loader *l = NULL;
    const tlcl_batch *b = NULL;
    if (rgb && tlcl_loader_open(&l, &d->cache, items, labels, NULL, count, &o) == 0) {
        tlcl_loader_start(l, 0, 0);
        b = tlcl_loader_next(l);
    }
    for (int i = 0, k = 0; b && i < n; i++) {
        if (pick[i] < 0)
            continue;
        for (size_t p = 0; p < px; p++) { /* the augmented floats, as the network gets them */
            float v = b->images[(size_t)k * px + p];
            rgb[(size_t)k * px + p] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5f);
        }
        tiles[i] = (plot_tile){rgb + (size_t)k * px, d->cache.w, d->cache.h, base_name(d->files[items[k]])};
        k++;
    }
    if (l)
        tlcl_loader_close(l);
    free(items), free(labels);
    if (!b) {
        free(rgb);
        return NULL;
    }
    return rgb;
}

static int contact_sheet(const tlcl_run_data *d, const tlcl_config *c, int per, const char *out)
{
    int *pick = pick_samples(d, per), rc = 1;
    plot_tile *tiles = calloc((size_t)d->classes * per, sizeof *tiles);
    char **labels = calloc((size_t)d->classes, sizeof *labels);
    unsigned char *rgb = pick && tiles && labels ? load_tiles(d, c, pick, d->classes * per, tiles) : NULL;
    for (int k = 0; rgb && k < d->classes; k++) {
        int n = 0;
        for (int i = 0; i < d->train.n; i++)
            n += d->train.labels[i] == k;
        size_t len = strlen(d->class_names[k]) + 32;
        if ((labels[k] = malloc(len)))
            snprintf(labels[k], len, "%s (%d)", d->class_names[k], n);
    }
    char title[256], err[1200];
    tlcl_augment a = tlcl_plan_augment(c);
    snprintf(title, sizeof title, "training images as the model receives them: %dx%d, %s", d->cache.w, d->cache.h,
             tlcl_augment_active(&a) ? "augmented as in epoch 1" : "no augmentation");
    if (!rgb)
        fprintf(stderr, "tlcl data: out of host memory for the contact sheet\n");
    else if (plot_contact_sheet(out, title, (const char *const *)labels, d->classes, tiles, per, err, sizeof err))
        fprintf(stderr, "tlcl data: %s\n", err);
    else {
        printf("contact sheet: %s (%d classes x %d images)\n", out, d->classes, per);
        rc = 0;
    }
    for (int k = 0; labels && k < d->classes; k++)
        free(labels[k]);
    free(labels), free(tiles), free(pick), free(rgb);
    return rc;
}

static int inspect(const cli_args *a, tlcl_config *c)
{
    char err[4200];
    tlcl_status s = cli_load_config(a, a->operands[1], c, err, sizeof err);
    if (s == TLCL_OK)
        s = tlcl_config_make_dirs(c, err, sizeof err);
    if (s != TLCL_OK) {
        fprintf(stderr, "tlcl data: %s\n", err);
        return 1;
    }
    tlcl_run_data d;
    if (tlcl_run_data_open(&d, c, 1, warn_stderr, NULL, err, sizeof err) != TLCL_OK) {
        fprintf(stderr, "tlcl data: %s\n", err);
        return 1;
    }
    tlcl_run_data_print_counts(&d, stdout);
    printf("%s\n", d.class_weight_line);
    char out[TLCL_CFG_PATH_MAX + 32];
    if (cli_value(a, "out"))
        snprintf(out, sizeof out, "%s", cli_value(a, "out"));
    else
        snprintf(out, sizeof out, "%s/data_inspect.png", c->train.records.base_dir);
    int rc = contact_sheet(&d, c, (int)cli_number(a, "per-class", PER_CLASS_DEFAULT), out);
    tlcl_run_data_free(&d);
    return rc;
}

int cmd_data(int argc, char **argv)
{
    cli_args a;
    if (cli_parse(&cli_data, argc, argv, &a))
        return a.status;
    if (strcmp(a.operands[0], "inspect") != 0)
        return cli_usage_error(&a, "unknown action '%s'; the one action is: inspect", a.operands[0]);
    tlcl_config *c = malloc(sizeof *c); /* large: fixed-size path buffers */
    if (!c)
        return 1;
    int rc = inspect(&a, c);
    tlcl_config_free(c);
    free(c);
    return rc;
}
