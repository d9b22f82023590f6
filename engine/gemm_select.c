/* gemm_select.c — which GEMM back-end TLCL_GEMM_AUTO means on this device.
 *
 * $TLCL_GEMM=own|clblast wins; otherwise the choice persisted in the
 * program cache directory for this platform + device + driver is reused;
 * otherwise both back-ends are timed once on a representative product (a
 * 1x1 convolution's shape; on a CPU only the own one, see measure) and the
 * faster one is written there. The file is
 * written to a temporary name and renamed so a concurrent reader never sees
 * half of it; a file that does not parse is ignored and re-measured. */
#include "engine_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SELECT_MAGIC "tlcl-gemm-select 1"

/* The representative product: M x K times K x N, like the middle layers of
 * EfficientNet-B0 (0.13 GFLOP: milliseconds on a device, well under a
 * second on a slow one). */
enum { SEL_M = 1024, SEL_N = 256, SEL_K = 256, SEL_REPS = 3 };
/* On the oclgrind simulator the timing means nothing and the product above
 * would take it an hour: a small one keeps the path (measure, persist). */
enum { SEL_M_SIM = 32, SEL_N_SIM = 16, SEL_K_SIM = 16 };

static _Atomic int measure_count; /* engines of several threads may measure (replicas) */
int gemm_select_measure_count(void) { return measure_count; }

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return (h ^ 0xff) * 0x100000001b3ULL; /* a separator, so ("ab","c") != ("a","bc") */
}

uint64_t eng_device_key(const tlcl_device_info *d)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv(h, d->platform_name);
    h = fnv(h, d->name);
    h = fnv(h, d->device_version);
    h = fnv(h, d->driver_version);
    return d->profile[0] ? fnv(h, d->profile) : h; /* an emulated GPU's choice is its own */
}

void gemm_select_path(tlcl_engine *e, char *dst, size_t len)
{
    const char *dir = tlcl_cl_cache_dir(e->cl);
    if (!dir || !dir[0]) {
        dst[0] = '\0';
        return;
    }
    snprintf(dst, len, "%s/gemm-select-%016llx.txt", dir,
             (unsigned long long)eng_device_key(tlcl_cl_device(e->cl)));
}

static tlcl_gemm_backend parse_name(const char *s)
{
    if (strcmp(s, "own") == 0)
        return TLCL_GEMM_OWN;
    if (strcmp(s, "clblast") == 0)
        return TLCL_GEMM_CLBLAST;
    return TLCL_GEMM_AUTO;
}

/* TLCL_GEMM_AUTO when the file is missing, foreign or corrupt. */
static tlcl_gemm_backend read_choice(const char *path, uint64_t key)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return TLCL_GEMM_AUTO;
    char magic[64] = "", name[32] = "";
    unsigned long long k = 0;
    int ok = fgets(magic, sizeof magic, f) && strcmp(magic, SELECT_MAGIC "\n") == 0 &&
             fscanf(f, "key %llx\nbackend %31s", &k, name) == 2 && k == key;
    fclose(f);
    return ok ? parse_name(name) : TLCL_GEMM_AUTO;
}

static void write_choice(const char *path, uint64_t key, tlcl_gemm_backend b, double own, double clb)
{
    tlcl_publish f;
    char err[4400];
    if (tlcl_publish_open(&f, path, err, sizeof err) != TLCL_OK)
        return; /* a read-only cache: measure again next time */
    int ok = fprintf(f.f, "%s\nkey %016llx\nbackend %s\nown_gflops %.2f\nclblast_gflops %.2f\n", SELECT_MAGIC,
                     (unsigned long long)key, tlcl_gemm_backend_name(b), own, clb) > 0;
    tlcl_publish_commit(&f, ok, err, sizeof err);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef tlcl_status (*gemm_fn)(tlcl_engine *, int, int, int, int, int, float, cl_mem, size_t, int, cl_mem, size_t,
                               int, float, cl_mem, size_t, int);

/* GFLOP/s of one back-end, best of SEL_REPS after a warm-up (which also
 * compiles); 0 when it fails. */
static double time_backend(tlcl_engine *e, gemm_fn fn, int M, int N, int K, cl_mem A, cl_mem B, cl_mem C)
{
    double best = 1e30;
    for (int r = 0; r <= SEL_REPS; r++) {
        double t0 = now_s();
        if (fn(e, 0, 0, M, N, K, 1.0f, A, 0, K, B, 0, N, 0.0f, C, 0, N) != TLCL_OK || tlcl_cl_finish(e->cl) != TLCL_OK)
            return 0.0;
        double t = now_s() - t0;
        if (r > 0 && t < best)
            best = t;
    }
    return 2.0 * M * N * K / best * 1e-9;
}

/* Times both back-ends on zero-filled operands; own wins ties and errors.
 * On a CPU device CLBlast is not timed: its kernels are tuned for GPUs, on
 * PoCL its GEMM ran at 0.2-0.8 of the own one (bench_gemm --clblast), and
 * building it for the measurement took about 10 s of the cold start (21 s
 * without it, 29-32 s with it). Nor under a device profile: CLBlast takes
 * its parameters from the real device, not the emulated GPU, so its time
 * says nothing about that GPU. TLCL_GEMM=clblast still forces it. */
static tlcl_gemm_backend measure(tlcl_engine *e, double *own, double *clb)
{
    tlcl_tensor a = {0}, b = {0}, c = {0};
    *own = *clb = 0.0;
    measure_count++;
    int emulated = tlcl_cl_device(e->cl)->profile[0] != '\0';
    int M = e->oclgrind ? SEL_M_SIM : SEL_M, N = e->oclgrind ? SEL_N_SIM : SEL_N, K = e->oclgrind ? SEL_K_SIM : SEL_K;
    if (tlcl_tensor_alloc(e, &a, "gemm select A", M, 1, 1, K) == TLCL_OK &&
        tlcl_tensor_alloc(e, &b, "gemm select B", K, 1, 1, N) == TLCL_OK &&
        tlcl_tensor_alloc(e, &c, "gemm select C", M, 1, 1, N) == TLCL_OK &&
        tlcl_tensor_fill(e, &a, 0.0f) == TLCL_OK && tlcl_tensor_fill(e, &b, 0.0f) == TLCL_OK) {
        *own = time_backend(e, tlcl_gemm_own, M, N, K, a.buf, b.buf, c.buf);
        *clb = eng_on_cpu(e) || emulated ? 0.0 : time_backend(e, tlcl_gemm_clblast, M, N, K, a.buf, b.buf, c.buf);
    }
    if (a.buf) tlcl_tensor_release(e, &a);
    if (b.buf) tlcl_tensor_release(e, &b);
    if (c.buf) tlcl_tensor_release(e, &c);
    return *clb > *own ? TLCL_GEMM_CLBLAST : TLCL_GEMM_OWN;
}

tlcl_gemm_backend gemm_select_resolve(tlcl_engine *e)
{
    const char *env = tlcl_cl_settings(e->cl)->gemm;
    tlcl_gemm_backend b = env[0] ? parse_name(env) : TLCL_GEMM_AUTO;
    if (b != TLCL_GEMM_AUTO)
        return b;
    char path[1100];
    gemm_select_path(e, path, sizeof path);
    uint64_t key = eng_device_key(tlcl_cl_device(e->cl));
    if (path[0] && (b = read_choice(path, key)) != TLCL_GEMM_AUTO)
        return b;
    double own, clb;
    b = measure(e, &own, &clb);
    if (path[0])
        write_choice(path, key, b, own, clb);
    return b;
}
