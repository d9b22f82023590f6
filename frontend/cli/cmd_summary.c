/* cmd_summary.c — `tlcl summary ARCH [--classes N] [--no-top] [--size S]
 * [--json]`: the layer table and parameter totals, no device needed. */
#include "commands.h"
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_int(const char *flag, const char *v, int lo, int hi, int *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < lo || n > hi) {
        fprintf(stderr, "tlcl summary: %s expects an integer in [%d, %d], got '%s'\n", flag, lo, hi, v);
        return -1;
    }
    *out = (int)n;
    return 0;
}

int cmd_summary(int argc, char **argv)
{
    tlcl_model_options o = tlcl_model_options_default();
    int json = 0;
    o.arch = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0)
            json = 1;
        else if (strcmp(a, "--no-top") == 0)
            o.include_top = 0;
        else if (strncmp(a, "--classes=", 10) == 0 || (strcmp(a, "--classes") == 0 && i + 1 < argc)) {
            if (parse_int("--classes", a[9] == '=' ? a + 10 : argv[++i], 1, 1000000, &o.classes))
                return 2;
        } else if (strncmp(a, "--size=", 7) == 0 || (strcmp(a, "--size") == 0 && i + 1 < argc)) {
            if (parse_int("--size", a[6] == '=' ? a + 7 : argv[++i], 32, 8192, &o.size))
                return 2;
        } else if (a[0] != '-' && !o.arch)
            o.arch = a;
        else {
            fprintf(stderr, "tlcl summary: unexpected argument '%s'\n"
                            "usage: tlcl summary ARCH [--classes N] [--no-top] [--size S] [--json]\n", a);
            return 2;
        }
    }
    if (!o.arch) {
        char names[1024];
        tlcl_arch_list(names, sizeof names);
        fprintf(stderr, "usage: tlcl summary ARCH [--classes N] [--no-top] [--size S] [--json]\narchitectures: %s\n",
                names);
        return 2;
    }
    tlcl_model m;
    char err[1024];
    if (tlcl_model_build(&m, &o, err, sizeof err) != TLCL_OK) {
        fprintf(stderr, "tlcl summary: %s\n", err);
        return 2;
    }
    tlcl_model_summary(&m, stdout, json);
    tlcl_model_free(&m);
    return 0;
}
