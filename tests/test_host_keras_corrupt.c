/* test_host_keras_corrupt.c — damaged Keras files never crash tlcl (issue
 * 13, defect 3). libhdf5 1.10 crashes (SIGSEGV) on some bit-flipped
 * fixtures; tlcl reads HDF5 in a child process, so each damaged copy must
 * either import (with the original's tensors when the flips hit weight
 * values only, with fewer or renamed ones when they hit a name: the mapping
 * onto the model then checks every tensor) or fail with a message naming
 * the file: "FILE is corrupt (the HDF5
 * library failed reading it...)" when the child died, another clean error
 * otherwise. Copies are made here from tests/fixtures with a fixed seed:
 * 24 per fixture (12 flipping 8 bits in the first 64 KiB, where the
 * superblock and most object headers are, 12 flipping 8 bits anywhere), and
 * a .keras zip (stored) around each damaged Keras 3 copy. Host only. */
#include "harness.h"
#include "keras_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COPIES 24

static char tmpdir[256];

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long len = f && fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (len > 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)len)) && fread(buf, 1, (size_t)len, f) != (size_t)len)
        free(buf), buf = NULL;
    if (f)
        fclose(f);
    *n = buf ? (size_t)len : 0;
    return buf;
}

static int spill(const char *path, const unsigned char *a, size_t na, const unsigned char *b, size_t nb)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(a, 1, na, f) == na && (nb == 0 || fwrite(b, 1, nb, f) == nb);
    return (f ? fclose(f) == 0 : 0) && ok ? 0 : -1;
}

static void put16(unsigned char *p, unsigned v) { p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8); }
static void put32(unsigned char *p, unsigned v) { put16(p, v & 0xffff), put16(p + 2, v >> 16); }

/* A one-member zip (stored, CRC left 0: tlcl does not check it) around data. */
static int write_zip(const char *path, const unsigned char *data, size_t n)
{
    static const char name[] = "model.weights.h5";
    enum { NL = sizeof name - 1 };
    unsigned char local[30 + NL] = {0}, central[46 + NL] = {0}, end[22] = {0};
    put32(local, 0x04034b50u), put32(local + 18, (unsigned)n), put32(local + 22, (unsigned)n), put16(local + 26, NL);
    memcpy(local + 30, name, NL);
    put32(central, 0x02014b50u), put32(central + 20, (unsigned)n), put32(central + 24, (unsigned)n);
    put16(central + 28, NL), memcpy(central + 46, name, NL);
    put32(end, 0x06054b50u), put16(end + 8, 1), put16(end + 10, 1), put32(end + 12, sizeof central);
    put32(end + 16, (unsigned)(sizeof local + n));
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(local, 1, sizeof local, f) == sizeof local && fwrite(data, 1, n, f) == n &&
             fwrite(central, 1, sizeof central, f) == sizeof central && fwrite(end, 1, sizeof end, f) == sizeof end;
    return (f ? fclose(f) == 0 : 0) && ok ? 0 : -1;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

/* Same tensors (names, shapes, count) as the original. */
static int same_structure(const tlcl_keras_weights *a, const tlcl_keras_weights *b)
{
    int same = a->n == b->n;
    for (int i = 0; same && i < a->n; i++)
        same = strcmp(a->t[i].layer, b->t[i].layer) == 0 && strcmp(a->t[i].var, b->t[i].var) == 0 &&
               a->t[i].count == b->t[i].count && a->t[i].ndims == b->t[i].ndims;
    return same;
}

typedef struct tally { int imported, changed, corrupt, other; } tally;

/* Opens path; a clean outcome is counted, anything else fails the check. */
static void open_damaged(harness *h, const char *path, const tlcl_keras_weights *orig, tally *t)
{
    tlcl_keras_weights *w = NULL;
    char err[2048] = "";
    tlcl_status s = tlcl_keras_open(&w, path, err, sizeof err);
    if (s == TLCL_OK && same_structure(w, orig))
        t->imported++;
    else if (s == TLCL_OK) /* a flipped name: the mapping onto the model checks every tensor */
        t->changed++;
    else if (!strstr(err, path))
        harness_fail(h, "%s: the error does not name the file: %s", path, err);
    else if (strstr(err, "is corrupt (the HDF5 library failed reading it"))
        t->corrupt++;
    else
        t->other++;
    tlcl_keras_close(w);
}

static void test_fixture(harness *h, const char *name, int zip_too, tally *total)
{
    char src[1024], path[600];
    snprintf(src, sizeof src, "%s/%s", TLCL_FIXTURE_DIR, name);
    size_t n = 0;
    unsigned char *orig = slurp(src, &n), *copy = orig ? malloc(n) : NULL;
    tlcl_keras_weights *ref = NULL;
    char err[1024] = "";
    if (!copy || tlcl_keras_open(&ref, src, err, sizeof err) != TLCL_OK) {
        harness_fail(h, "%s: cannot read the fixture: %s", src, err);
        free(orig), free(copy);
        return;
    }
    tally t = {0};
    for (int k = 0; k < COPIES; k++) {
        memcpy(copy, orig, n);
        size_t span = k < COPIES / 2 && n > 65536 ? 65536 : n;
        for (int b = 0; b < 8; b++) {
            size_t at = (size_t)(next() % span);
            copy[at] ^= (unsigned char)(1u << (next() % 8));
        }
        snprintf(path, sizeof path, "%s/%s.%d", tmpdir, name, k);
        if (spill(path, copy, n, NULL, 0) == 0)
            open_damaged(h, path, ref, &t);
        snprintf(path, sizeof path, "%s/%s.%d.keras", tmpdir, name, k);
        if (zip_too && write_zip(path, copy, n) == 0)
            open_damaged(h, path, ref, &t);
    }
    harness_expectf(h, t.imported + t.changed + t.corrupt + t.other == COPIES * (zip_too ? 2 : 1),
                    "%s: %d damaged copies%s: %d imported, %d read with other tensors, %d corrupt (libhdf5 failed "
                    "in the child), %d other clean errors; tlcl never crashed", name, COPIES,
                    zip_too ? " (and as .keras)" : "", t.imported, t.changed, t.corrupt, t.other);
    total->imported += t.imported, total->corrupt += t.corrupt, total->other += t.other;
    tlcl_keras_close(ref);
    free(orig), free(copy);
}

int main(void)
{
    harness h;
    harness_init(&h, 0);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tlcl_keras_corrupt_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    tally total = {0};
    test_fixture(&h, "keras_v1.weights.h5", 1, &total);
    test_fixture(&h, "keras_v2.weights.h5", 1, &total);
    test_fixture(&h, "keras_v1_legacy.h5", 0, &total);
    test_fixture(&h, "keras_v2_legacy.h5", 0, &total);
    /* with libhdf5 1.10.8 some copies crash the library: the child path is
     * exercised, not only the clean errors */
    harness_expectf(&h, total.corrupt > 0, "%d of the damaged copies crashed libhdf5 in the child, reported as corrupt",
                    total.corrupt);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return harness_finish(&h);
}
