/* tuning.c — the launch and tile parameters of the GEMM, the implicit
 * convolutions and depthwise: the built-in defaults per device family, the
 * checks every value passes (defaults, $TLCL_GEMM_TUNE and tuning files
 * alike), and the tuning file `tlcl tune` writes to the cache directory
 * (tune_search.c) and every engine reads at creation. */
#include "engine_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TUNE_MAGIC "tlcl-tune 1"
#define TUNE_FILE_MAX (64 * 1024)

/* Built-in GEMM tiles per device family (tlcl_device_family_of: the device
 * type, PCI vendor id and preferred float width; never name strings).
 * Measured on PoCL (AVX-512 CPU, bench_gemm): 8 x 32 blocks per work-item
 * (16 float16 accumulators: the 32 vector registers hold them, the B row
 * and the A broadcasts) beat 8x16, 4x32, 16x16, 12x32 and 4x64; a CPU
 * preferring 8-wide floats (AVX2, 16 ymm registers) gets 8 x 16. The local
 * size must be given: left to PoCL it grouped up to 8 x 64 work-items and
 * ran 1.5-3x slower; 1x1 and 2x2 were best (2x2 for TN). On llvmpipe
 * (Rusticl: a CPU, but SIMD across work-items like a GPU) 8 x 8 blocks in
 * 16 x 4 groups: 7.2 GFLOP/s at 512x256x256 where the PoCL setting gave
 * 0.2 and CLBlast 0.8. GPUs get a smaller block so there are enough
 * work-items, and a group of whole warps or wavefronts: not measured on
 * a GPU yet (`tlcl tune` there will), so these follow each vendor's
 * guide: NVIDIA two 32-wide warps, AMD one 64-wide wavefront (two on
 * RDNA's 32), Intel one SIMD32 hardware thread of 8 x 4, Arm Mali one
 * 16-wide Valhall warp (its local memory is global memory: a small group
 * costs nothing). The default suits anything else. */
static tlcl_gemm_tiles gemm_tiles_default(const tlcl_device_info *d)
{
    int wide = d->float_vector_width >= 16;
    switch (tlcl_device_family_of(d)) {
    case TLCL_FAMILY_CPU_SIMT: return (tlcl_gemm_tiles){8, 8, 1, 4, 16, 4};
    case TLCL_FAMILY_CPU_SIMD: return (tlcl_gemm_tiles){8, wide ? 16 : 8, 2, wide ? 8 : 4, 2, 2};
    case TLCL_FAMILY_NVIDIA:
    case TLCL_FAMILY_AMD:
    case TLCL_FAMILY_GPU_OTHER: return (tlcl_gemm_tiles){4, 4, 2, 4, 16, 4};
    case TLCL_FAMILY_INTEL_GPU: return (tlcl_gemm_tiles){4, 4, 2, 4, 8, 4};
    case TLCL_FAMILY_ARM_MALI: return (tlcl_gemm_tiles){4, 4, 1, 4, 4, 4};
    case TLCL_FAMILY_OTHER: break;
    }
    return (tlcl_gemm_tiles){4, 4, 1, 4, 0, 0};
}

/* The local size halved (y first) until it fits the device: a profile's
 * limits are the stricter of the emulated GPU's and the real device's. */
static void tiles_fit(tlcl_gemm_tiles *t, const tlcl_device_info *d)
{
    while (t->lx > 0 && (size_t)t->lx * (size_t)t->ly > d->max_work_group_size)
        t->ly > 1 ? (t->ly /= 2) : (t->lx /= 2);
}

/* Depthwise: a CPU core keeps a strip of 8 vector accumulators in
 * registers and shares each weight load among them, a GPU work-item fewer
 * registers; the weight gradient's stage 1 wants a few dozen long runs per
 * CPU core, a GPU thousands of work-items (conv_depthwise.c). */
tlcl_tuning tlcl_tuning_default(const tlcl_device_info *d)
{
    tlcl_device_family f = tlcl_device_family_of(d);
    int cpu = f == TLCL_FAMILY_CPU_SIMD || f == TLCL_FAMILY_CPU_SIMT;
    tlcl_tuning t = {.conv = gemm_tiles_default(d), .dw_strip = cpu ? 8 : 4,
                     .dw_wgrad_items = cpu ? 64 * (int)(d->compute_units ? d->compute_units : 1) : 65536};
    tiles_fit(&t.conv, d);
    for (int k = 0; k < TLCL_GEMM_CLASSES; k++)
        t.gemm[k] = t.conv;
    return t;
}

static int vec_ok(int w) { return w == 2 || w == 4 || w == 8 || w == 16; }

/* What the kernels take: gemm.cl's vector widths, a block of at most 512
 * accumulators (the defaults hold 256), a local size that fits. */
static int tiles_invalid(const tlcl_gemm_tiles *t, const tlcl_device_info *d, const char *what, char *why,
                         size_t len)
{
    const char *bad = NULL;
    if (t->tm < 1 || t->tm > 16)
        bad = "tm must be 1..16";
    else if (!vec_ok(t->vw) || !vec_ok(t->vwn))
        bad = "vw and vwn must be 2, 4, 8 or 16";
    else if (t->nv < 1 || t->nv > 8)
        bad = "nv must be 1..8";
    else if (t->tm * t->nv * t->vw > 512)
        bad = "tm * nv * vw must be at most 512 accumulators";
    else if (t->lx < 0 || t->ly < 0 || (t->lx == 0) != (t->ly == 0))
        bad = "lx and ly must both be 0 (the driver's) or both positive";
    else if ((size_t)t->lx * (size_t)t->ly > d->max_work_group_size)
        bad = "lx * ly exceeds the device's work-group size";
    else if ((d->max_work_item_sizes[0] && (size_t)t->lx > d->max_work_item_sizes[0]) ||
             (d->max_work_item_sizes[1] && (size_t)t->ly > d->max_work_item_sizes[1]))
        bad = "lx or ly exceeds the device's work-item sizes";
    if (bad)
        snprintf(why, len, "%s tm=%d vw=%d nv=%d vwn=%d lx=%d ly=%d: %s", what, t->tm, t->vw, t->nv, t->vwn, t->lx,
                 t->ly, bad);
    return bad != NULL;
}

int tlcl_tuning_invalid(const tlcl_tuning *t, const tlcl_device_info *d, char *why, size_t len)
{
    for (int k = 0; k < TLCL_GEMM_CLASSES; k++)
        if (tiles_invalid(&t->gemm[k], d, tlcl_tune_group_name(k), why, len))
            return 1;
    if (tiles_invalid(&t->conv, d, "conv", why, len))
        return 1;
    if (t->dw_strip < 1 || t->dw_strip > 16) {
        snprintf(why, len, "depthwise strip=%d: must be 1..16", t->dw_strip);
        return 1;
    }
    if (t->dw_wgrad_items < 1 || t->dw_wgrad_items > (1 << 22)) {
        snprintf(why, len, "depthwise wgrad_items=%d: must be 1..%d", t->dw_wgrad_items, 1 << 22);
        return 1;
    }
    return 0;
}

void tlcl_tuning_path(const char *cache_dir, const tlcl_device_info *d, char *dst, size_t len)
{
    if (!cache_dir || !cache_dir[0])
        dst[0] = '\0';
    else
        snprintf(dst, len, "%s/tune-%016llx.txt", cache_dir, (unsigned long long)eng_device_key(d));
}

/* ---- the file ---------------------------------------------------------------
 *     tlcl-tune 1
 *     platform Portable Computing Language
 *     device cpu-skylake-avx512-...
 *     driver 6.0
 *     key 0123456789abcdef
 *     gemm_nn tm=8 vw=16 nv=2 vwn=8 lx=2 ly=2
 *     gemm_tn tm=8 vw=16 nv=2 vwn=8 lx=2 ly=2
 *     gemm_nt tm=8 vw=16 nv=2 vwn=8 lx=1 ly=1
 *     conv tm=8 vw=16 nv=2 vwn=8 lx=2 ly=2
 *     depthwise strip=8 wgrad_items=128
 *     # comments
 * The key decides whether the file is this device's; platform, device and
 * driver say whose it is when it is not. */

#define TILES_FMT "tm=%d vw=%d nv=%d vwn=%d lx=%d ly=%d"

static int parse_tiles(const char *v, tlcl_gemm_tiles *t)
{
    int end = -1;
    return sscanf(v, TILES_FMT "%n", &t->tm, &t->vw, &t->nv, &t->vwn, &t->lx, &t->ly, &end) == 6 &&
           v[end] == '\0';
}

typedef struct tune_file {
    char platform[128], device[128], driver[128];
    unsigned long long key;
    int have; /* bits: 1 key, 2 conv, 4 depthwise, 8 << class the GEMM classes */
} tune_file;

/* The GEMM class a line names ("gemm_nn"), -1 for none. */
static int gemm_class_named(const char *name)
{
    for (int k = 0; k < TLCL_GEMM_CLASSES; k++)
        if (strcmp(name, tlcl_tune_group_name(k)) == 0)
            return k;
    return -1;
}

/* One "name value" line; 0 with the reason in why. */
static int parse_line(char *line, tune_file *f, tlcl_tuning *t, char *why, size_t len)
{
    char *v = strchr(line, ' ');
    if (!v) {
        snprintf(why, len, "'%.200s' has no value", line);
        return 0;
    }
    *v++ = '\0';
    int end = -1;
    const char *want = NULL; /* the form a value that does not parse should have */
    if (strcmp(line, "platform") == 0)
        snprintf(f->platform, sizeof f->platform, "%s", v);
    else if (strcmp(line, "device") == 0)
        snprintf(f->device, sizeof f->device, "%s", v);
    else if (strcmp(line, "driver") == 0)
        snprintf(f->driver, sizeof f->driver, "%s", v);
    else if (strcmp(line, "key") == 0) {
        f->have |= 1;
        if (sscanf(v, "%16llx%n", &f->key, &end) != 1 || v[end] != '\0')
            want = "a 16-digit hex key";
    } else if (gemm_class_named(line) >= 0 || strcmp(line, "conv") == 0) {
        int k = gemm_class_named(line);
        f->have |= k >= 0 ? 8 << k : 2;
        if (!parse_tiles(v, k >= 0 ? &t->gemm[k] : &t->conv))
            want = "'" TILES_FMT "'";
    } else if (strcmp(line, "depthwise") == 0) {
        f->have |= 4;
        if (sscanf(v, "strip=%d wgrad_items=%d%n", &t->dw_strip, &t->dw_wgrad_items, &end) != 2 || v[end] != '\0')
            want = "'strip=N wgrad_items=N'";
    } else {
        snprintf(why, len, "unknown entry '%.40s'", line);
        return 0;
    }
    if (want)
        snprintf(why, len, "'%.40s %.200s' is not %s", line, v, want);
    return want == NULL;
}

tlcl_status tlcl_tuning_parse(const char *text, const tlcl_device_info *d, tlcl_tuning *out, char *err, size_t len)
{
    tune_file f = {0};
    tlcl_tuning t = tlcl_tuning_default(d);
    char why[400] = "";
    int lineno = 0;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char line[512];
        lineno++;
        if (n >= sizeof line) {
            snprintf(err, len, "line %d: longer than %zu characters", lineno, sizeof line - 1);
            return TLCL_ERR_FORMAT;
        }
        memcpy(line, p, n), line[n] = '\0';
        p += n + (nl != NULL);
        if (lineno == 1 && strcmp(line, TUNE_MAGIC) != 0) {
            snprintf(err, len, "line 1: not a tlcl tuning file (expected '%s')", TUNE_MAGIC);
            return TLCL_ERR_FORMAT;
        }
        if (lineno > 1 && line[0] && line[0] != '#' && !parse_line(line, &f, &t, why, sizeof why)) {
            snprintf(err, len, "line %d: %s", lineno, why);
            return TLCL_ERR_FORMAT;
        }
    }
    if (lineno == 0 || f.have != (8 << TLCL_GEMM_CLASSES) - 1) {
        snprintf(err, len, "%s",
                 lineno == 0 ? "empty"
                             : "incomplete: it needs the lines key, gemm_nn, gemm_tn, gemm_nt, conv and depthwise");
        return TLCL_ERR_FORMAT;
    }
    if (f.key != eng_device_key(d)) {
        snprintf(err, len, "made for another device or driver ('%s', driver '%s', on '%s'), not '%s', driver '%s'",
                 f.device, f.driver, f.platform, d->name, d->driver_version);
        return TLCL_ERR_FORMAT;
    }
    if (tlcl_tuning_invalid(&t, d, why, sizeof why)) {
        snprintf(err, len, "%s", why);
        return TLCL_ERR_FORMAT;
    }
    *out = t;
    return TLCL_OK;
}

static int write_tiles(FILE *f, const char *name, const tlcl_gemm_tiles *t)
{
    return fprintf(f, "%s " TILES_FMT "\n", name, t->tm, t->vw, t->nv, t->vwn, t->lx, t->ly) > 0;
}

tlcl_status tlcl_tuning_write(const char *path, const tlcl_device_info *d, const tlcl_tuning *t,
                              const char *comment, char *err, size_t len)
{
    tlcl_publish p;
    TLCL_TRY(tlcl_publish_open(&p, path, err, len));
    int ok = fprintf(p.f, "%s\nplatform %s\ndevice %s\ndriver %s\nkey %016llx\n", TUNE_MAGIC, d->platform_name,
                     d->name, d->driver_version, (unsigned long long)eng_device_key(d)) > 0;
    for (int k = 0; k < TLCL_GEMM_CLASSES; k++)
        ok = ok && write_tiles(p.f, tlcl_tune_group_name(k), &t->gemm[k]);
    ok = ok && write_tiles(p.f, "conv", &t->conv);
    ok = ok && fprintf(p.f, "depthwise strip=%d wgrad_items=%d\n", t->dw_strip, t->dw_wgrad_items) > 0;
    for (const char *c = comment; ok && c && *c;) {
        const char *nl = strchr(c, '\n');
        int n = nl ? (int)(nl - c) : (int)strlen(c);
        ok = fprintf(p.f, "# %.*s\n", n, c) > 0;
        c += n + (nl != NULL);
    }
    if (!ok)
        snprintf(err, len, "cannot write %s", path);
    return tlcl_publish_commit(&p, ok, err, len);
}

/* ---- the engine's tuning ---------------------------------------------------- */

void eng_tuning_load(tlcl_engine *e)
{
    const tlcl_device_info *d = tlcl_cl_device(e->cl);
    char path[1100], why[1000];
    e->tuning = tlcl_tuning_default(d);
    e->tuning_warning[0] = '\0';
    snprintf(e->tuning_note, sizeof e->tuning_note, "tuning: built-in defaults for %s",
             tlcl_device_family_name(tlcl_device_family_of(d)));
    tlcl_tuning_path(tlcl_cl_cache_dir(e->cl), d, path, sizeof path);
    if (!path[0])
        return;
    size_t n;
    unsigned char *text = tlcl_read_input(path, "tuning file", TUNE_FILE_MAX, &n, why, sizeof why);
    if (!text)
        return; /* not tuned yet (a file that cannot be read is the same: the defaults) */
    tlcl_tuning t;
    if (strlen((char *)text) != n)
        snprintf(why, sizeof why, "it holds a NUL byte"); /* not text: damaged */
    if (strlen((char *)text) == n && tlcl_tuning_parse((char *)text, d, &t, why, sizeof why) == TLCL_OK) {
        e->tuning = t;
        snprintf(e->tuning_note, sizeof e->tuning_note, "tuning: %s", path);
    } else {
        snprintf(e->tuning_warning, sizeof e->tuning_warning,
                 "tuning file %s is not usable: %s; using the built-in defaults for %s (run `tlcl tune` again)", path,
                 why, tlcl_device_family_name(tlcl_device_family_of(d)));
    }
    free(text);
}

const char *tlcl_engine_tuning_note(const tlcl_engine *e) { return e->tuning_note; }
const char *tlcl_engine_tuning_warning(const tlcl_engine *e) { return e->tuning_warning; }
const tlcl_tuning *tlcl_engine_tuning(const tlcl_engine *e) { return &e->tuning; }
