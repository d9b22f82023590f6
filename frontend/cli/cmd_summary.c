/* cmd_summary.c — `tlcl summary ARCH [--classes N] [--no-top] [--size S]
 * [--json]` (options in any order, cli_options.h): the layer table and
 * parameter totals, no device needed. */
#include "commands.h"
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

CLI_COMMAND(cli_summary, "summary", "ARCH", 1, 1,
    "Layer table and parameter totals of an architecture (Keras's model.summary()).",
    CLI_INT_OPT("classes", "N", 1, 1000000, "classes of the classifier (default 1000)"),
    CLI_FLAG_OPT("no-top", "without the classifier"),
    CLI_INT_OPT("size", "S", 32, 8192, "input size (default: the architecture's)"),
    CLI_FLAG_OPT("json", "the table as JSON"));

int cmd_summary(int argc, char **argv)
{
    cli_args a;
    if (cli_parse(&cli_summary, argc, argv, &a))
        return a.status;
    tlcl_model_options o = tlcl_model_options_default();
    o.arch = a.operands[0];
    o.classes = (int)cli_number(&a, "classes", o.classes);
    o.size = (int)cli_number(&a, "size", o.size);
    o.include_top = !cli_flag(&a, "no-top");
    int json = cli_flag(&a, "json");
    tlcl_model m;
    char err[1024];
    if (tlcl_model_build(&m, &o, err, sizeof err) != TLCL_OK)
        return cli_usage_error(&a, "%s", err);
    tlcl_model_summary(&m, stdout, json);
    tlcl_model_free(&m);
    return 0;
}
