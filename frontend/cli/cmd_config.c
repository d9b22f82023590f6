/* cmd_config.c — `tlcl config check FILE [--set key=value]...` validates a
 * configuration and prints the effective one; `tlcl config default` prints
 * the commented default configuration (config/default.yaml). */
#include "commands.h"
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

CLI_COMMAND(cli_config, "config", "check FILE | default", 1, 2,
    "Validate a training configuration (check) or print the default one (default).\n"
    "check: validate FILE (after any --set) and print the effective configuration;\n"
    "default: print the commented default configuration (config/default.yaml).",
    CLI_SET_OPTION);

static int config_check(const cli_args *a)
{
    char err[2048];
    tlcl_config *c = malloc(sizeof *c); /* large: fixed-size path buffers */
    if (!c)
        return 1;
    tlcl_status s = cli_load_config(a, a->operands[1], c, err, sizeof err);
    if (s == TLCL_OK)
        tlcl_config_dump(c, stdout);
    else
        fprintf(stderr, "tlcl config: %s\n", err);
    tlcl_config_free(c);
    free(c);
    return s == TLCL_OK ? 0 : 1;
}

int cmd_config(int argc, char **argv)
{
    cli_args a;
    if (cli_parse(&cli_config, argc, argv, &a))
        return a.status;
    const char *sub = a.operands[0];
    if (strcmp(sub, "check") == 0 && a.noperands == 2)
        return config_check(&a);
    if (strcmp(sub, "default") == 0 && a.noperands == 1 && a.ngiven == 0) {
        tlcl_config_print_default(stdout);
        return 0;
    }
    if (strcmp(sub, "check") == 0)
        return cli_usage_error(&a, "check takes one FILE");
    if (strcmp(sub, "default") == 0)
        return cli_usage_error(&a, "default takes no FILE and no --set");
    return cli_usage_error(&a, "unknown subcommand '%s': check or default", sub);
}
