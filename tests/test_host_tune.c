/* test_host_tune.c — `tlcl tune`'s selection rule (tlcl_tune_pick) on
 * timings made up here, the tuning file's round trip and every kind of
 * damage (each refused with its line and reason), and the checks the
 * defaults of every device family and profile pass. Host only: the
 * devices are described by hand. */
#include "engine_internal.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* An AVX-512 PoCL CPU as `tlcl devices` shows it here. */
static tlcl_device_info cpu_device(void)
{
    tlcl_device_info d;
    memset(&d, 0, sizeof d);
    snprintf(d.platform_name, sizeof d.platform_name, "Portable Computing Language");
    snprintf(d.name, sizeof d.name, "pthread-skylake-avx512");
    snprintf(d.type, sizeof d.type, "cpu");
    snprintf(d.device_version, sizeof d.device_version, "OpenCL 3.0 PoCL");
    snprintf(d.driver_version, sizeof d.driver_version, "6.0");
    d.compute_units = 2, d.max_work_group_size = 4096, d.float_vector_width = 16;
    d.max_work_item_sizes[0] = d.max_work_item_sizes[1] = d.max_work_item_sizes[2] = 4096;
    return d;
}

static void check_pick(harness *h)
{
    /* 3 shapes; row 0 the default (10, 20, 30 ms: 60 in total) */
    const double faster[] = {10, 20, 30, 9, 18, 27}; /* 10% faster everywhere */
    harness_expectf(h, tlcl_tune_pick(faster, 2, 3, 0.03) == 1, "10%% faster on every shape: picked");
    const double one_slower[] = {10, 20, 30, 10.1, 10, 15}; /* 35.1 ms in total but shape 0 is 1% slower */
    harness_expectf(h, tlcl_tune_pick(one_slower, 2, 3, 0.03) == 0, "faster in total, slower on one shape: not picked");
    const double small_gain[] = {10, 20, 30, 9.9, 19.6, 29.4}; /* 58.9: 1.8% faster, below the 3% margin */
    harness_expectf(h, tlcl_tune_pick(small_gain, 2, 3, 0.03) == 0, "1.8%% faster: below the margin, not picked");
    const double over_margin[] = {10, 20, 30, 9.7, 19.4, 29.0}; /* 58.1: 3.2% faster */
    harness_expectf(h, tlcl_tune_pick(over_margin, 2, 3, 0.03) == 1, "3.2%% faster: over the margin, picked");
    const double two[] = {10, 20, 30, 9, 18, 27, 8, 16, 24, 9.5, 5, 5}; /* 54, 48 and 19.5 ms in total */
    harness_expectf(h, tlcl_tune_pick(two, 4, 3, 0.03) == 3, "the fastest eligible total wins (19.5 ms)");
    const double fastest_ineligible[] = {10, 20, 30, 9, 18, 27, 11, 1, 1}; /* 13 ms but shape 0 slower */
    harness_expectf(h, tlcl_tune_pick(fastest_ineligible, 3, 3, 0.03) == 1,
                    "the fastest total is slower on a shape: the next eligible wins");
    const double failed[] = {10, 20, 30, 5, 0, 5}; /* failed on shape 1 */
    harness_expectf(h, tlcl_tune_pick(failed, 2, 3, 0.03) == 0, "a candidate that failed a shape: not picked");
    const double default_failed[] = {10, 0, 30, 5, 5, 5};
    harness_expectf(h, tlcl_tune_pick(default_failed, 2, 3, 0.03) == 0, "the default unmeasured: it stays");
    harness_expectf(h, tlcl_tune_pick(faster, 1, 3, 0.03) == 0, "the default alone: 0");
    harness_expectf(h, tlcl_tune_pick(faster, 2, 0, 0.03) == 0, "no shapes: 0");
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, 8192);
    size_t n = buf ? fread(buf, 1, 8191, f) : 0;
    (void)n;
    fclose(f);
    return buf;
}

/* text with the first occurrence of from replaced by to (static buffer). */
static const char *edited(const char *text, const char *from, const char *to)
{
    static char out[8192];
    const char *at = strstr(text, from);
    if (!at)
        return "";
    snprintf(out, sizeof out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    return out;
}

static void expect_refused(harness *h, const char *text, const tlcl_device_info *d, const char *want, const char *what)
{
    tlcl_tuning t;
    char err[1024] = "";
    tlcl_status s = tlcl_tuning_parse(text, d, &t, err, sizeof err);
    harness_expectf(h, s == TLCL_ERR_FORMAT && strstr(err, want) != NULL, "%s: refused with '%s' (got: %s)", what,
                    want, s == TLCL_OK ? "accepted" : err);
}

static void check_file(harness *h)
{
    tlcl_device_info d = cpu_device();
    tlcl_tuning t = tlcl_tuning_default(&d);
    t.gemm[TLCL_GEMM_NN] = (tlcl_gemm_tiles){4, 8, 4, 4, 1, 1}, t.gemm[TLCL_GEMM_TN].ly = 4;
    t.gemm[TLCL_GEMM_NT] = (tlcl_gemm_tiles){16, 16, 1, 2, 1, 2}, t.conv.lx = 4;
    t.dw_strip = 12, t.dw_wgrad_items = 512;
    char dir[] = "/tmp/tlcl-tune-test-XXXXXX", path[1100], err[4400];
    harness_expect(h, mkdtemp(dir) != NULL, "temporary folder");
    tlcl_tuning_path(dir, &d, path, sizeof path);
    harness_expectf(h, strstr(path, "/tune-") && strstr(path, ".txt"), "the file is tune-KEY.txt: %s", path);
    harness_expect(h, tlcl_tuning_write(path, &d, &t, "line one\nline two", err, sizeof err) == TLCL_OK, "written");
    char *text = read_all(path);
    harness_expect(h, text && strstr(text, "# line two\n"), "the comments end the file");
    tlcl_tuning back;
    memset(&back, 0, sizeof back);
    err[0] = '\0';
    harness_expectf(h, text && tlcl_tuning_parse(text, &d, &back, err, sizeof err) == TLCL_OK, "read back %s",
                    text ? err : "(no file)");
    harness_expect(h, memcmp(&back, &t, sizeof t) == 0, "every value read back as written");
    if (!text)
        return;
    expect_refused(h, edited(text, "tlcl-tune 1", "tlcl-tune 9"), &d, "line 1: not a tlcl tuning file", "other magic");
    expect_refused(h, "", &d, "empty", "an empty file");
    char cut[8192];
    snprintf(cut, sizeof cut, "%.*s", (int)(strstr(text, "depthwise") - text), text);
    expect_refused(h, cut, &d, "incomplete", "cut before the depthwise line");
    expect_refused(h, edited(text, "gemm_tn ", "gemm_xx "), &d, "unknown entry 'gemm_xx'", "a GEMM class misnamed");
    expect_refused(h, edited(text, "gemm_nt tm=16", "gemm_nt tm=17"), &d, "gemm_nt tm=17",
                   "the NT class's rows (named)");
    expect_refused(h, edited(text, "vw=8 nv=4", "vw=3 nv=4"), &d, "vw and vwn must be 2, 4, 8 or 16",
                   "a vector width gemm.cl has no kernel for");
    expect_refused(h, edited(text, "tm=4", "tm=0"), &d, "tm must be 1..16", "no rows per work-item");
    expect_refused(h, edited(text, "tm=4", "tm=abc"), &d, "line 6: 'gemm_nn tm=abc", "not a number");
    expect_refused(h, edited(text, "ly=1\n", "ly=1x\n"), &d, "line 6:", "trailing junk");
    expect_refused(h, edited(text, "lx=1 ly=1", "lx=128 ly=64"), &d, "exceeds the device's work-group size",
                   "a local size over the device's limit");
    expect_refused(h, edited(text, "lx=1 ly=1", "lx=0 ly=1"), &d, "both be 0", "half a local size");
    expect_refused(h, edited(text, "strip=12", "strip=40"), &d, "strip=40: must be 1..16", "a depthwise strip of 40");
    expect_refused(h, edited(text, "key ", "colour blue\nkey "), &d, "unknown entry 'colour'", "an unknown entry");
    expect_refused(h, edited(text, "key ", "key zz"), &d, "a 16-digit hex key", "a key that is not hex");
    tlcl_device_info newer = d;
    snprintf(newer.driver_version, sizeof newer.driver_version, "7.0");
    expect_refused(h, text, &newer, "made for another device or driver", "a new driver");
    tlcl_device_info other = d;
    snprintf(other.name, sizeof other.name, "another-cpu");
    expect_refused(h, text, &other, "'pthread-skylake-avx512', driver '6.0'", "another device (named in the message)");
    unlink(path);
    rmdir(dir);
    free(text);
}

/* The defaults pass the checks every tuning file's values pass, on the
 * CPU kinds and every emulated GPU profile. */
static void check_defaults(harness *h)
{
    tlcl_device_info cpu = cpu_device(), simt = cpu_device(), small = cpu_device();
    simt.float_vector_width = 1;
    small.max_work_group_size = 2; /* the defaults' 2 x 2 group shrinks to fit */
    const tlcl_device_info *own[] = {&cpu, &simt, &small};
    char why[200];
    for (int i = 0; i < 3; i++) {
        tlcl_tuning t = tlcl_tuning_default(own[i]);
        harness_expectf(h, !tlcl_tuning_invalid(&t, own[i], why, sizeof why), "%s width %u wg %zu: defaults valid",
                        tlcl_device_family_name(tlcl_device_family_of(own[i])), own[i]->float_vector_width,
                        own[i]->max_work_group_size);
    }
    const char *profiles[] = {"nvidia", "amd", "intel-gpu", "arm-mali"};
    for (int i = 0; i < 4; i++) {
        const tlcl_device_profile *p = tlcl_device_profile_find(profiles[i]);
        harness_expectf(h, p != NULL, "profile %s exists", profiles[i]);
        if (!p)
            continue;
        tlcl_device_info d = tlcl_device_profile_apply(p, &cpu);
        tlcl_tuning t = tlcl_tuning_default(&d);
        harness_expectf(h, !tlcl_tuning_invalid(&t, &d, why, sizeof why), "profile %s: defaults valid (%s)",
                        profiles[i], tlcl_device_family_name(tlcl_device_family_of(&d)));
    }
    /* the CPU defaults as measured (tuning.c): 8 x (16 x 2) blocks in 2 x 2 groups, strips of 8 */
    tlcl_tuning t = tlcl_tuning_default(&cpu);
    int same = 1;
    for (int k = 0; k < TLCL_GEMM_CLASSES; k++)
        same &= memcmp(&t.gemm[k], &t.conv, sizeof t.conv) == 0;
    harness_expect(h, t.conv.tm == 8 && t.conv.vw == 16 && t.conv.nv == 2 && t.conv.lx == 2 && t.dw_strip == 8 && same,
                   "PoCL's defaults are the measured ones, the same for every class");
    /* which tiles a product takes: A transposed TN (also with B transposed), else B transposed NT */
    harness_expect(h, eng_gemm_class(0, 0) == TLCL_GEMM_NN && eng_gemm_class(1, 0) == TLCL_GEMM_TN &&
                          eng_gemm_class(0, 1) == TLCL_GEMM_NT && eng_gemm_class(1, 1) == TLCL_GEMM_TN,
                   "NN, TN, NT and TT products take the NN, TN, NT and TN tiles");
}

int main(void)
{
    harness h;
    harness_init(&h, 0);
    check_pick(&h);
    check_file(&h);
    check_defaults(&h);
    return harness_finish(&h);
}
