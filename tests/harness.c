/* harness.c — see harness.h. */
#include "harness.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return 1;
    }
    return n == 0;
}

static int find_device(const char *want, char *err, size_t len)
{
    tlcl_device_info *devs;
    int n;
    if (tlcl_devices_list(&devs, &n, err, len) != TLCL_OK)
        return -1;
    int found = -1;
    for (int i = 0; i < n && found < 0; i++)
        if (contains_nocase(devs[i].platform_name, want))
            found = i;
    if (found < 0) {
        int off = snprintf(err, len, "no OpenCL platform matching '%s'; present:", want);
        for (int i = 0; i < n && off > 0 && (size_t)off < len; i++)
            off += snprintf(err + off, len - (size_t)off, " [%s]", devs[i].platform_name);
    }
    free(devs);
    return found;
}

/* Under $TLCL_DEVICE_PROFILE every device test first checks that the
 * context plans as on that GPU, so a profile that silently did not apply
 * fails the run instead of testing the CPU paths again. */
static void harness_check_profile(harness *h)
{
    const char *want = tlcl_cl_settings(h->cl)->device_profile;
    if (!want[0])
        return;
    const tlcl_device_info *d = tlcl_cl_device(h->cl);
    printf("profile: %s (%s, %s, work-group %zu, local %llu B, warp %u, vector width %d)\n", d->profile,
           tlcl_device_family_name(tlcl_device_family_of(d)), d->type, d->max_work_group_size,
           (unsigned long long)d->local_mem_bytes, d->simd_width, tlcl_cl_vector_width(h->cl));
    harness_expectf(h, strcmp(d->profile, want) == 0 && strcmp(d->type, "gpu") == 0 &&
                           tlcl_cl_vector_width(h->cl) == 1,
                    "device profile %s in force: a GPU with scalar kernels", want);
}

/* Opens the device of $TLCL_TEST_DEVICE (an index as `tlcl devices` prints
 * it; tools/gpu_check.sh) or else of platform `want` (NULL or "": the
 * default device); exits on failure. */
static void open_platform(const char *want, const char *index, tlcl_cl **cl, tlcl_engine **eng)
{
    char err[4096] = "";
    tlcl_cl_options o = tlcl_cl_options_default();
    if (index && index[0]) {
        char *end;
        long i = strtol(index, &end, 10);
        if (*end || i < 0 || i > 1000) {
            fprintf(stderr, "FAIL: TLCL_TEST_DEVICE: expected a device index as `tlcl devices` prints, got '%s'\n",
                    index);
            exit(1);
        }
        o.device_index = (int)i;
    } else if (want && want[0]) {
        o.device_index = find_device(want, err, sizeof err);
        if (o.device_index < 0) {
            fprintf(stderr, "FAIL: %s\n", err);
            exit(1);
        }
    }
    if (tlcl_cl_init(cl, &o, err, sizeof err) != TLCL_OK) {
        fprintf(stderr, "FAIL: cannot open the OpenCL device: %s\n", err);
        exit(1);
    }
    if (tlcl_engine_init(eng, *cl) != TLCL_OK) {
        fprintf(stderr, "FAIL: %s\n", tlcl_cl_error(*cl));
        exit(1);
    }
}

void harness_init(harness *h, int need_device)
{
    memset(h, 0, sizeof *h);
    /* line by line, so a test that dies (a driver's abort) shows in ctest's
       log the case it died in, not a 4 KiB buffer cut mid-line */
    setvbuf(stdout, NULL, _IOLBF, 0);
    h->rng = 0x9e3779b97f4a7c15ULL;
    const char *quick = getenv("TLCL_TEST_QUICK");
    h->quick = quick && strcmp(quick, "1") == 0;
    const char *bf16 = getenv("TLCL_TEST_BF16");
    h->bf16 = bf16 && strcmp(bf16, "1") == 0;
    if (!need_device)
        return;
    open_platform(getenv("TLCL_TEST_PLATFORM"), getenv("TLCL_TEST_DEVICE"), &h->cl, &h->eng);
    h->device_name = tlcl_cl_device(h->cl)->name;
    printf("device: %s / %s%s%s\n", tlcl_cl_device(h->cl)->platform_name, h->device_name,
           getenv("TLCL_FAST_MATH") && strcmp(getenv("TLCL_FAST_MATH"), "1") == 0 ? " (fast-math)" : "",
           h->bf16 ? " (bfloat16 feature maps)" : "");
    /* the launch parameters the kernels run with (`tlcl tune`'s file or the defaults): the *_tuned tests
       fail on "tuning: built-in" (tests/CMakeLists.txt) */
    if (tlcl_engine_tuning_warning(h->eng)[0])
        printf("warning: %s\n", tlcl_engine_tuning_warning(h->eng));
    printf("%s\n", tlcl_engine_tuning_note(h->eng));
    harness_check_profile(h);
}

void harness_open_more(const char *platform, tlcl_cl **cl, tlcl_engine **eng)
{
    open_platform(platform, NULL, cl, eng);
    printf("device: %s / %s\n", tlcl_cl_device(*cl)->platform_name, tlcl_cl_device(*cl)->name);
}

int harness_finish(harness *h)
{
    if (h->eng)
        tlcl_engine_free(h->eng);
    if (h->cl)
        tlcl_cl_free(h->cl);
    printf("%d passed, %d failed\n", h->passed, h->failed);
    return (h->failed == 0 && h->passed > 0) ? 0 : 1;
}

void harness_fail(harness *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    h->failed++;
}

void harness_expect(harness *h, int cond, const char *what)
{
    if (cond) {
        h->passed++;
        printf("ok   %s\n", what);
    } else {
        harness_fail(h, "%s", what);
    }
}

void harness_expectf(harness *h, int cond, const char *fmt, ...)
{
    char what[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    harness_expect(h, cond, what);
}

int harness_status(harness *h, tlcl_status s, const char *what)
{
    if (s == TLCL_OK)
        return 0;
    harness_fail(h, "%s: %s: %s", what, tlcl_status_name(s), h->cl ? tlcl_cl_error(h->cl) : "");
    return 1;
}

float harness_uniform(harness *h, float lo, float hi)
{
    /* splitmix64: deterministic on every platform */
    uint64_t z = (h->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return lo + (hi - lo) * (float)((z >> 40) * (1.0 / 16777216.0));
}

void harness_fill(harness *h, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = harness_uniform(h, lo, hi);
}

double *harness_to_double(const float *x, size_t n)
{
    double *d = malloc((n ? n : 1) * sizeof *d);
    for (size_t i = 0; d && i < n; i++)
        d[i] = x[i];
    return d;
}

int harness_close(harness *h, const char *what, const float *got, const double *ref, size_t n, double rtol,
                  double atol)
{
    /* worst: the entry with the largest err / allowance (the first
     * non-finite one, whose ratio is infinite) */
    double worst_ratio = 0;
    size_t worst = 0, over = 0;
    int nonfinite = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]), allow = rtol * fabs(ref[i]) + atol;
        int bad = !isfinite(e);
        double ratio = bad || (allow <= 0 && e > 0) ? INFINITY : allow > 0 ? e / allow : 0;
        nonfinite |= bad;
        over += !(ratio <= 1);
        if (ratio > worst_ratio) {
            worst_ratio = ratio;
            worst = i;
        }
    }
    int ok = !nonfinite && over == 0 && n > 0;
    if (ok) {
        h->passed++;
        printf("ok   %-48s n=%-7zu err/tol %.2f (rtol %.0e atol %.0e)\n", what, n, worst_ratio, rtol, atol);
    } else {
        harness_fail(h, "%-48s n=%-7zu err/tol %.3g (rtol %.0e atol %.0e) worst [%zu] got %.8g want %.8g, %zu over%s",
                     what, n, worst_ratio, rtol, atol, worst, n ? got[worst] : 0.0, n ? ref[worst] : 0.0, over,
                     nonfinite ? " NON-FINITE" : "");
    }
    return ok;
}

int harness_check(harness *h, const char *what, const float *got, const double *ref, size_t n, double tol,
                  double floor)
{
    double maxref = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(ref[i]) > maxref)
            maxref = fabs(ref[i]);
    return harness_close(h, what, got, ref, n, 0.0, tol * (maxref > floor ? maxref : floor));
}

tlcl_tensor harness_tensor(harness *h, const char *name, int n, int hh, int w, int c, const float *data)
{
    tlcl_tensor t;
    if (harness_status(h, tlcl_tensor_alloc(h->eng, &t, name, n, hh, w, c), name) == 0 && data)
        harness_status(h, tlcl_tensor_upload(h->eng, &t, data), name);
    return t;
}

tlcl_dtype harness_act_dtype(const harness *h) { return h->bf16 ? TLCL_BF16 : TLCL_F32; }

/* Nearest value with an 8-bit significand, ties to even, by scaling x's
 * binade to [2^7, 2^8) and rounding there (rint rounds ties to even).
 * Finite floats only, which is what the tests generate. */
static float round_bf16(float x)
{
    if (x == 0 || !isfinite(x))
        return x;
    int e;
    frexp(x, &e); /* |x| in [2^(e-1), 2^e) */
    double q = ldexp(1.0, e - 8);
    return (float)(rint((double)x / q) * q);
}

void harness_round_bf16(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = round_bf16(x[i]);
}

tlcl_tensor harness_act_tensor(harness *h, const char *name, int n, int hh, int w, int c, float *data)
{
    tlcl_tensor t;
    if (h->bf16 && data)
        harness_round_bf16(data, (size_t)n * hh * w * c);
    if (harness_status(h, tlcl_tensor_alloc_as(h->eng, &t, name, harness_act_dtype(h), n, hh, w, c), name) == 0 &&
        data)
        harness_status(h, tlcl_tensor_upload(h->eng, &t, data), name);
    return t;
}

double harness_act_rtol(const harness *h, double rtol) { return h->bf16 ? rtol + HARNESS_BF16_RTOL : rtol; }

float *harness_download(harness *h, const tlcl_tensor *t)
{
    size_t n = tlcl_tensor_count(t);
    float *x = calloc(n ? n : 1, sizeof *x);
    harness_status(h, tlcl_tensor_download(h->eng, t, x), t->name);
    return x;
}

int harness_fd_check(harness *h, const char *what, double (*loss)(void *ctx), void *ctx, double *x, size_t n,
                     const double *grad, size_t max_points, double eps, double tol)
{
    size_t step = n > max_points ? n / max_points : 1;
    double maxerr = 0, maxg = 1e-8;
    for (size_t i = 0; i < n; i += step) {
        double keep = x[i];
        x[i] = keep + eps;
        double lp = loss(ctx);
        x[i] = keep - eps;
        double lm = loss(ctx);
        x[i] = keep;
        double fd = (lp - lm) / (2 * eps);
        double e = fabs(fd - grad[i]);
        if (e > maxerr)
            maxerr = e;
        if (fabs(grad[i]) > maxg)
            maxg = fabs(grad[i]);
    }
    double rel = maxerr / maxg;
    if (rel <= tol) {
        h->passed++;
        printf("ok   fd %-45s rel.err %.2e (tol %.0e)\n", what, rel, tol);
        return 1;
    }
    harness_fail(h, "fd %-45s rel.err %.2e (tol %.0e)", what, rel, tol);
    return 0;
}

