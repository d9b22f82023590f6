/* cmd_bench.c — `tlcl bench`: its options, then one device measured in this
 * process (bench_run, bench_report) or, with --all or --cold, each device in
 * child processes and the cross-device comparison (bench_compare). */
#include "bench_compare.h"
#include "bench_report.h"
#include "commands.h"
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bench_cli {
    bench_compare_options cmp; /* cmp.run: what is measured */
    const char *json;
    int device_given;
} bench_cli;

CLI_COMMAND(cli_bench, "bench", "", 0, 0,
    "Time EfficientNet steps: img/s, start-up, per-layer profile, GEMM and copy peaks.\n"
    "--all compares every device.",
    CLI_DEVICE_OPTION,
    CLI_FLAG_OPT("all", "every device of every platform, each in a process of its own (bench.md, .json, .png)"),
    CLI_TEXT_OPT("arch", "A", "architecture, as `tlcl summary` names it (default efficientnet-b0)"),
    CLI_INT_OPT("batch", "B", 1, 1000000, "images per step (default 16)"),
    CLI_INT_OPT("size", "S", 32, 1000000, "input size (default 224)"),
    CLI_TEXT_OPT("mode", "MODE", "train, infer or head (default train)"),
    CLI_TEXT_OPT("precision", "P", "float32 or mixed_bfloat16 (bfloat16 feature maps, as model.precision; default "
                 "float32)"),
    CLI_INT_OPT("steps", "N", 1, 1000000, "steps timed (default 5)"),
    CLI_INT_OPT("warmup", "N", 0, 1000000, "steps before the timing (default 2)"),
    CLI_TEXT_OPT("json", "FILE", "also write the result as JSON"),
    CLI_FLAG_OPT("profile", "every layer in network order and the per-kernel table"),
    CLI_FLAG_OPT("no-peaks", "skip the GEMM and copy micro-benchmarks"),
    CLI_INT_OPT("bucket-kib", "K", 1, 1048576, "under mpirun: least size of a gradient bucket (default 4096, as "
                "train.config.bucket_mb; 1048576: one bucket, after the backward pass)"),
    CLI_FLAG_OPT("cold", "start from empty caches (tlcl's and the drivers'), then time a warm start"),
    CLI_TEXT_OPT("out", "DIR", "where --all and --cold write the comparison (default bench-results/)"),
    CLI_INT_OPT("timeout", "S", 1, 1000000, "with --all or --cold: a run taking longer is killed and reported"));

static int parse_mode(const cli_args *a, const char *text, bench_mode *out)
{
    for (int m = BENCH_INFER; m <= BENCH_HEAD; m++)
        if (strcmp(text, bench_mode_name((bench_mode)m)) == 0) {
            *out = (bench_mode)m;
            return 0;
        }
    return cli_usage_error(a, "--mode expects train, infer or head, got '%s'", text);
}

/* The options into c (their ranges are checked by cli_parse). */
static int take_options(const cli_args *a, bench_cli *c)
{
    bench_options *o = &c->cmp.run;
    o->batch = (int)cli_number(a, "batch", o->batch);
    o->size = (int)cli_number(a, "size", o->size);
    o->steps = (int)cli_number(a, "steps", o->steps);
    o->warmup = (int)cli_number(a, "warmup", o->warmup);
    o->device = (int)cli_number(a, "device", o->device);
    o->bucket_floats = (size_t)cli_number(a, "bucket-kib", 0) * 1024 / sizeof(float);
    c->device_given = cli_flag(a, "device");
    c->cmp.timeout_s = (int)cli_number(a, "timeout", 0);
    o->arch = cli_value(a, "arch") ? cli_value(a, "arch") : o->arch;
    c->json = cli_value(a, "json");
    c->cmp.out_dir = cli_value(a, "out");
    c->cmp.all = cli_flag(a, "all");
    c->cmp.cold = cli_flag(a, "cold");
    c->cmp.profile = cli_flag(a, "profile");
    o->peaks = !cli_flag(a, "no-peaks");
    const char *precision = cli_value(a, "precision");
    if (precision && strcmp(precision, "float32") != 0 && strcmp(precision, "mixed_bfloat16") != 0)
        return cli_usage_error(a, "--precision expects float32 or mixed_bfloat16, got '%s'", precision);
    o->activations = precision && strcmp(precision, "mixed_bfloat16") == 0 ? TLCL_BF16 : TLCL_F32;
    return cli_value(a, "mode") ? parse_mode(a, cli_value(a, "mode"), &o->mode) : 0;
}

/* Combinations and values that need the whole command line. */
static int check_options(const cli_args *a, bench_cli *c)
{
    if (c->cmp.all && c->device_given)
        return cli_usage_error(a, "--all runs every device: give --all or --device=N, not both");
    if (c->cmp.out_dir && !c->cmp.all && !c->cmp.cold)
        return cli_usage_error(a, "--out is where --all and --cold write their comparison");
    if (c->cmp.timeout_s && !c->cmp.all && !c->cmp.cold)
        return cli_usage_error(a, "--timeout applies to the child processes of --all and --cold");
    if (!tlcl_arch_find(c->cmp.run.arch)) {
        char names[1024];
        tlcl_arch_list(names, sizeof names);
        return cli_usage_error(a, "unknown architecture '%s'; known: %s", c->cmp.run.arch, names);
    }
    if (!c->device_given && !c->cmp.all) { /* $TLCL_DEVICE, as every device command reads it */
        c->cmp.run.device = cli_device(a);
        if (c->cmp.run.device == -2)
            return 2;
    }
    if (c->cmp.all && !c->cmp.out_dir)
        c->cmp.out_dir = "bench-results";
    c->cmp.json = c->json;
    return 0;
}

/* 0 to go on; 1 to stop with a->status (--help, a usage error). */
static int parse_args(int argc, char **argv, bench_cli *c, cli_args *a)
{
    memset(c, 0, sizeof *c);
    c->cmp.run = (bench_options){.arch = "efficientnet-b0", .batch = 16, .size = 224, .steps = 5, .warmup = 2,
                                 .device = -1, .mode = BENCH_TRAIN, .peaks = 1};
    if (cli_parse(&cli_bench, argc, argv, a))
        return 1;
    if (!(a->status = take_options(a, c)))
        a->status = check_options(a, c);
    return a->status != 0;
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
    bench_cli c;
    cli_args a;
    if (parse_args(argc, argv, &c, &a))
        return a.status;
    if (c.cmp.all || c.cmp.cold)
        return bench_compare(&c.cmp);
    return bench_here(&c);
}
