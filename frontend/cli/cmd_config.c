/* cmd_config.c — `tlcl config check FILE [--set key=value]...` validates a
 * configuration and prints the effective one; `tlcl config default` prints
 * the commented default configuration (config/default.yaml). */
#include "commands.h"
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr, "usage: tlcl config check FILE [--set key.path=value]...\n"
                    "       tlcl config default\n");
    return 2;
}

static int config_check(int argc, char **argv)
{
    const char *file = NULL;
    char err[2048];
    for (int i = 2; i < argc; i++) /* the file first: --set applies on top of it */
        if (strcmp(argv[i], "--set") == 0)
            i++;
        else if (strncmp(argv[i], "--set=", 6) != 0 && !file)
            file = argv[i];
        else if (strncmp(argv[i], "--set=", 6) != 0)
            return usage();
    if (!file)
        return usage();
    tlcl_config *c = malloc(sizeof *c); /* large: fixed-size path buffers */
    if (!c)
        return 1;
    int rc = 1;
    if (tlcl_config_load(c, file, err, sizeof err) != TLCL_OK)
        goto fail;
    for (int i = 2; i < argc; i++) {
        const char *a = strncmp(argv[i], "--set=", 6) == 0 ? argv[i] + 6 : NULL;
        if (strcmp(argv[i], "--set") == 0 && (a = i + 1 < argc ? argv[++i] : NULL) == NULL) {
            free(c);
            return usage();
        }
        if (a && tlcl_config_set_arg(c, a, err, sizeof err) != TLCL_OK)
            goto fail;
    }
    if (tlcl_config_finalize(c, err, sizeof err) != TLCL_OK)
        goto fail;
    tlcl_config_dump(c, stdout);
    rc = 0;
fail:
    if (rc)
        fprintf(stderr, "tlcl config: %s\n", err);
    tlcl_config_free(c);
    free(c);
    return rc;
}

int cmd_config(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "check") == 0)
        return config_check(argc, argv);
    if (argc == 2 && strcmp(argv[1], "default") == 0) {
        tlcl_config_print_default(stdout);
        return 0;
    }
    return usage();
}
