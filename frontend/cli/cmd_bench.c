/* cmd_bench.c — `tlcl bench`: its options, then one device measured in this
 * process (bench_run, bench_report) or, with --all or --cold, each device in
 * child processes and the cross-device comparison (bench_compare). */
#include "bench_compare.h"
#include "bench_report.h"
#include "commands.h"
#include "model.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bench_cli {
    bench_compare_options cmp; /* cmp.run: what is measured */
    const char *json;
    int device_given;
} bench_cli;

static const char USAGE[] =
    "usage: tlcl bench [--device=N | --all] [--arch=A] [--batch=B] [--size=S] [--mode=train|infer|head]\n"
    "                  [--steps=N] [--warmup=N] [--json=FILE] [--profile] [--no-peaks]\n"
    "                  [--cold] [--out=DIR] [--timeout=S]\n"
    "  --all        every device of every platform, each in a process of its own; writes the\n"
    "               comparison to --out (default bench-results/): bench.md, bench.json, bench.png\n"
    "  --cold       start from empty caches (tlcl's and the OpenCL drivers'), then time a warm start\n"
    "  --profile    every layer in network order and the per-kernel table\n"
    "  --no-peaks   skip the GEMM and copy micro-benchmarks\n"
    "  --timeout=S  with --all or --cold: a run taking longer is killed and reported\n"
    "  (options take their value after '=' or as the next argument)\n";

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tlcl bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n%s", USAGE);
    va_end(ap);
    return -1;
}

/* "--name=value" or "--name value": the value, advancing *i past it; NULL
 * when a is not this option, or (with *missing set) when the value is
 * absent: the next argument is another option. */
static const char *option_value(int argc, char **argv, int *i, const char *name, int *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] != '\0')
        return NULL;
    if (*i + 1 >= argc || strncmp(argv[*i + 1], "--", 2) == 0) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

static int parse_int(const char *name, const char *text, int min, int *out)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (!text[0] || *end || v < min || v > 1000000) {
        fprintf(stderr, "tlcl bench: %s expects a whole number of at least %d, got '%s'\n", name, min, text);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_mode(const char *text, bench_mode *out)
{
    for (int m = BENCH_INFER; m <= BENCH_HEAD; m++)
        if (strcmp(text, bench_mode_name((bench_mode)m)) == 0) {
            *out = (bench_mode)m;
            return 0;
        }
    return usage_error("--mode expects train, infer or head, got '%s'", text);
}

/* One option at argv[*i]; -1 on a bad one (message printed). */
static int parse_option(int argc, char **argv, int *i, bench_cli *c)
{
    bench_options *o = &c->cmp.run;
    const char *a = argv[*i], *v;
    int missing = 0;
    static const struct { const char *name; int min; size_t field; } ints[] = {
        {"--batch", 1, offsetof(bench_options, batch)},   {"--size", 32, offsetof(bench_options, size)},
        {"--steps", 1, offsetof(bench_options, steps)},   {"--warmup", 0, offsetof(bench_options, warmup)},
        {"--device", 0, offsetof(bench_options, device)},
    };
    for (size_t k = 0; k < sizeof ints / sizeof *ints; k++)
        if ((v = option_value(argc, argv, i, ints[k].name, &missing))) {
            c->device_given |= strcmp(ints[k].name, "--device") == 0;
            return parse_int(ints[k].name, v, ints[k].min, (int *)((char *)o + ints[k].field));
        }
    if ((v = option_value(argc, argv, i, "--timeout", &missing)))
        return parse_int("--timeout", v, 1, &c->cmp.timeout_s);
    if ((v = option_value(argc, argv, i, "--arch", &missing)))
        return o->arch = v, 0;
    if ((v = option_value(argc, argv, i, "--mode", &missing)))
        return parse_mode(v, &o->mode);
    if ((v = option_value(argc, argv, i, "--json", &missing)))
        return c->json = v, 0;
    if ((v = option_value(argc, argv, i, "--out", &missing)))
        return c->cmp.out_dir = v, 0;
    if (missing)
        return usage_error("%s needs a value", a);
    if (strcmp(a, "--all") == 0)
        return c->cmp.all = 1, 0;
    if (strcmp(a, "--cold") == 0)
        return c->cmp.cold = 1, 0;
    if (strcmp(a, "--profile") == 0)
        return c->cmp.profile = 1, 0;
    if (strcmp(a, "--no-peaks") == 0)
        return o->peaks = 0, 0;
    return usage_error("unknown option '%s'", a);
}

/* Combinations and values that need the whole command line. */
static int check_options(bench_cli *c, int argc, char **argv)
{
    if (c->cmp.all && c->device_given)
        return usage_error("--all runs every device: give --all or --device=N, not both");
    if (c->cmp.out_dir && !c->cmp.all && !c->cmp.cold)
        return usage_error("--out is where --all and --cold write their comparison");
    if (c->cmp.timeout_s && !c->cmp.all && !c->cmp.cold)
        return usage_error("--timeout applies to the child processes of --all and --cold");
    if (!tlcl_arch_find(c->cmp.run.arch)) {
        char names[1024];
        tlcl_arch_list(names, sizeof names);
        fprintf(stderr, "tlcl bench: unknown architecture '%s'; known: %s\n", c->cmp.run.arch, names);
        return -1;
    }
    if (!c->device_given && !c->cmp.all) { /* $TLCL_DEVICE, as every device command reads it */
        c->cmp.run.device = cli_device_index(argc, argv);
        if (c->cmp.run.device == -2)
            return -1;
    }
    if (c->cmp.all && !c->cmp.out_dir)
        c->cmp.out_dir = "bench-results";
    c->cmp.json = c->json;
    return 0;
}

static int parse_args(int argc, char **argv, bench_cli *c)
{
    memset(c, 0, sizeof *c);
    c->cmp.run = (bench_options){.arch = "efficientnet-b0", .batch = 16, .size = 224, .steps = 5, .warmup = 2,
                                 .device = -1, .mode = BENCH_TRAIN, .peaks = 1};
    for (int i = 1; i < argc; i++)
        if (parse_option(argc, argv, &i, c))
            return -1;
    return check_options(c, argc, argv);
}

/* One device, in this process. */
static int bench_here(const bench_cli *c)
{
    const bench_options *o = &c->cmp.run;
    bench_result r;
    char err[16384];
    tlcl_status s = bench_run(o, &r, c->cmp.profile, err, sizeof err);
    if (s == TLCL_OK)
        bench_report_print(stdout, o, &r, c->cmp.profile);
    else
        fprintf(stderr, "tlcl bench: %s\n", err);
    int rc = s == TLCL_OK ? 0 : s == TLCL_ERR_NO_DEVICE ? 2 : 1;
    if (c->json) {
        cJSON *j = s == TLCL_OK ? bench_report_json(o, &r) : bench_report_error_json(o, &r, err);
        char werr[1024];
        if (bench_report_write_json(c->json, j, werr, sizeof werr)) {
            fprintf(stderr, "tlcl bench: %s\n", werr);
            rc = rc ? rc : 1;
        }
        cJSON_Delete(j);
    }
    bench_result_free(&r);
    return rc;
}

int cmd_bench(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(USAGE, stdout);
            return 0;
        }
    bench_cli c;
    if (parse_args(argc, argv, &c))
        return 2;
    if (c.cmp.all || c.cmp.cold)
        return bench_compare(&c.cmp);
    return bench_here(&c);
}
