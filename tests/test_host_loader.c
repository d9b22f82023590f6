/* test_host_loader.c — the image cache and the batch loader: images decode
 * once into the memory-mapped cache (and stay there for the next run), an
 * unreadable file is reported by name, batches cover the data exactly once
 * per epoch in a seeded order that does not depend on thread timing, and a
 * resumed epoch sees the same batches. */
#include "harness.h"
#include "batch_loader.h"
#include "image_cache.h"
#include "image_load.h"

#include "image_write.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { NIMG = 9, SIDE = 8 };

static int warnings;
static char last_warning[1200];
static void on_warn(void *ctx, const char *msg)
{
    (void)ctx;
    warnings++;
    snprintf(last_warning, sizeof last_warning, "%s", msg);
}

static void write_images(const char *dir, char paths[][512])
{
    unsigned char px[16 * 20 * 3];
    for (int i = 0; i < NIMG; i++) {
        for (int k = 0; k < 16 * 20 * 3; k++)
            px[k] = (unsigned char)((k * (i + 3) + i * 17) % 256);
        snprintf(paths[i], 512, "%s/img%d.png", dir, i);
        image_write_rgb(paths[i], 20, 16, px, NULL, 0);
    }
    snprintf(paths[NIMG], 512, "%s/broken.png", dir);
    FILE *f = fopen(paths[NIMG], "wb");
    if (f) {
        fputs("\x89PNG this is not an image", f);
        fclose(f);
    }
}

static void test_cache(harness *h, const char *dir, const char *const *files)
{
    tlcl_image_cache c;
    char err[1200], cdir[600];
    snprintf(cdir, sizeof cdir, "%s/cache", dir);
    harness_expect(h, tlcl_image_cache_open(&c, cdir, files, NIMG + 1, SIDE, SIDE, 0, err, sizeof err) == 0, "cache opens");
    int bad = tlcl_image_cache_fill(&c, 2, 0, on_warn, NULL);
    harness_expect(h, bad == 1 && warnings == 1 && strstr(last_warning, "broken.png"), "the unreadable image is named once");
    float got[SIDE * SIDE * 3], want[SIDE * SIDE * 3];
    double maxerr = 0;
    for (int i = 0; i < NIMG; i++) {
        tlcl_image_cache_get(&c, i, got);
        tlcl_image_load_resized(files[i], SIDE, SIDE, want, err, sizeof err);
        for (int k = 0; k < SIDE * SIDE * 3; k++)
            maxerr = fmax(maxerr, fabs(got[k] - want[k]));
    }
    harness_expect(h, maxerr <= 0.5, "cached pixels are the resized image rounded to the nearest level");
    tlcl_image_cache_close(&c);
    tlcl_image_cache_open(&c, cdir, files, NIMG + 1, SIDE, SIDE, 0, err, sizeof err);
    int cached = 1;
    for (int i = 0; i < NIMG; i++)
        cached &= c.status[i] == 1;
    harness_expect(h, cached && c.status[NIMG] == 2, "a second run finds every image already decoded");
    tlcl_image_cache_close(&c);
}

/* Hostile files in the cache (issue 13, defects 8 and 15): a FIFO named
 * x.png is reported without blocking the worker, an image above the cache's
 * max_pixels is refused by name, and after the limit is raised the next
 * fill decodes it (unreadable images are tried again). */
static void test_hostile(harness *h, const char *dir, const char *image)
{
    char fifo[600], cdir[600], err[1200];
    snprintf(fifo, sizeof fifo, "%s/x.png", dir);
    snprintf(cdir, sizeof cdir, "%s/cache-hostile", dir);
    const char *files[2] = {image, fifo};
    tlcl_image_cache c;
    alarm(20); /* a regression would block a decoding worker in open() forever */
    int made = mkfifo(fifo, 0600) == 0 && tlcl_image_cache_open(&c, cdir, files, 2, SIDE, SIDE, 0, err, sizeof err) == 0;
    c.max_pixels = 20 * 16 - 1;
    warnings = 0;
    int bad = made ? tlcl_image_cache_fill(&c, 1, 0, on_warn, NULL) : -1;
    alarm(0);
    harness_expectf(h, bad == 2 && warnings == 2 && c.status[0] == 2 && c.status[1] == 2,
                    "a FIFO and an image above max_pixels are both unreadable (%d), the last: %s", bad, last_warning);
    if (made)
        tlcl_image_cache_close(&c);
    made = tlcl_image_cache_open(&c, cdir, files, 2, SIDE, SIDE, 0, err, sizeof err) == 0;
    c.max_pixels = 20 * 16;
    warnings = 0;
    bad = made ? tlcl_image_cache_fill(&c, 1, 0, on_warn, NULL) : -1;
    harness_expectf(h, bad == 1 && c.status[0] == 1 && strstr(last_warning, fifo) && strstr(last_warning, "FIFO"),
                    "with the limit raised the image decodes, the FIFO stays refused: %s", last_warning);
    if (made)
        tlcl_image_cache_close(&c);
    remove(fifo);
}

/* Items of every batch of one epoch, in order. */
static int epoch_items(tlcl_loader *l, int epoch, int skip, int *out, int *labels_ok)
{
    int n = 0;
    tlcl_loader_start(l, epoch, skip);
    for (const tlcl_batch *b; (b = tlcl_loader_next(l));)
        for (int k = 0; k < b->count; k++) {
            *labels_ok &= b->labels[k] == 100 + b->items[k] && b->weights[k] == 0.5f * b->items[k];
            out[n++] = b->items[k];
        }
    return n;
}

static void test_loader(harness *h, const char *dir, const char *const *files)
{
    tlcl_image_cache c;
    char err[1200], cdir[600];
    snprintf(cdir, sizeof cdir, "%s/cache", dir);
    tlcl_image_cache_open(&c, cdir, files, NIMG, SIDE, SIDE, 0, err, sizeof err);
    tlcl_image_cache_fill(&c, 2, 0, on_warn, NULL);
    int items[NIMG], labels[NIMG];
    float weights[NIMG];
    for (int i = 0; i < NIMG; i++)
        items[i] = i, labels[i] = 100 + i, weights[i] = 0.5f * i;
    tlcl_loader_options o = {.batch_size = 2, .shuffle = 1, .seed = 3, .workers = 3, .prefetch = 2};
    o.augment = tlcl_augment_none();
    tlcl_loader *l;
    if (tlcl_loader_open(&l, &c, items, labels, weights, NIMG, &o) != 0) {
        harness_fail(h, "loader open");
        return;
    }
    int a[NIMG], b[NIMG], d[NIMG], e[NIMG], ok = 1;
    int na = epoch_items(l, 0, 0, a, &ok), nb = epoch_items(l, 0, 0, b, &ok), nd = epoch_items(l, 1, 0, d, &ok);
    int seen[NIMG] = {0}, once = na == NIMG;
    for (int i = 0; i < na; i++)
        seen[a[i]]++;
    for (int i = 0; i < NIMG; i++)
        once &= seen[i] == 1;
    harness_expect(h, tlcl_loader_batches(l) == 5 && once, "an epoch covers every item exactly once (5 batches, last short)");
    harness_expect(h, ok, "labels and weights follow their images");
    harness_expect(h, nb == na && memcmp(a, b, sizeof a) == 0, "the same epoch gives the same order");
    harness_expect(h, nd == NIMG && memcmp(a, d, sizeof a) != 0, "the next epoch is reshuffled");
    int ne = epoch_items(l, 0, 2, e, &ok);
    harness_expect(h, ne == NIMG - 4 && memcmp(e, a + 4, (size_t)ne * sizeof *e) == 0, "a resumed epoch continues with the same batches");
    for (int rep = 0; rep < 20; rep++) { /* starting over mid-epoch must neither hang nor mix epochs */
        tlcl_loader_start(l, rep, 0);
        tlcl_loader_next(l);
    }
    harness_expect(h, epoch_items(l, 0, 0, b, &ok) == NIMG && memcmp(a, b, sizeof a) == 0, "restarts mid-epoch leave no stale batch");
    tlcl_loader_close(l);
    tlcl_image_cache_close(&c);
}

int main(void)
{
    harness h;
    harness_init(&h, 0);
    char dir[] = "/tmp/tlcl-loader-test-XXXXXX", paths[NIMG + 1][512];
    if (!mkdtemp(dir))
        return harness_fail(&h, "mkdtemp"), harness_finish(&h);
    write_images(dir, paths);
    const char *files[NIMG + 1];
    for (int i = 0; i <= NIMG; i++)
        files[i] = paths[i];
    test_cache(&h, dir, files);
    test_loader(&h, dir, files);
    test_hostile(&h, dir, files[0]);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("note: could not remove %s\n", dir);
    return harness_finish(&h);
}
