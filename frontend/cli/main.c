/* main.c — the tlcl command line: dispatches to one file per command; each
 * command's options and usage live in its table (cli_options.h), so `tlcl
 * --help` lists what the commands say of themselves. Exit status: 0 done,
 * 1 failed, 2 a usage error (as GNU tools). */
#include "commands.h"
#include "dist.h"
#include "tlcl_git.h"

#include <stdio.h>
#include <string.h>

typedef struct command {
    const cli_command *cli;
    int (*run)(int argc, char **argv);
} command;

static const command commands[] = {
    {&cli_devices, cmd_devices}, {&cli_summary, cmd_summary}, {&cli_train, cmd_train},
    {&cli_grid, cmd_grid},       {&cli_test, cmd_test},       {&cli_predict, cmd_predict},
    {&cli_import, cmd_import},   {&cli_config, cmd_config},   {&cli_bench, cmd_bench},
    {&cli_track, cmd_track},     {&cli_data, cmd_data},       {&cli_export, cmd_export},
    {&cli_tune, cmd_tune},
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

static void usage(FILE *f)
{
    fprintf(f, "usage: tlcl COMMAND [OPTION]... [ARG]...\n"
               "       tlcl COMMAND --help     the command's options\n"
               "       tlcl --version          the version and the git commit it was built from\n"
               "commands:\n");
    for (int i = 0; i < NCOMMANDS; i++) {
        const char *about = commands[i].cli->about;
        fprintf(f, "  %-9s %.*s\n", commands[i].cli->name, (int)strcspn(about, "\n"), about);
    }
    fprintf(f, "Options take their value after '=' or as the next argument, in any order with the\n"
               "arguments; exit status 0 done, 1 failed, 2 a usage error.\n");
}

static int unknown_command(const char *name)
{
    const char *names[NCOMMANDS];
    for (int i = 0; i < NCOMMANDS; i++)
        names[i] = commands[i].cli->name;
    const char *near = tlcl_closest_name(name, names, NCOMMANDS);
    fprintf(stderr, "tlcl: unknown command '%s'%s%s%s\nTry 'tlcl --help' for the list of commands.\n", name,
            near ? "; did you mean " : "", near ? near : "", near ? "?" : "");
    return 2;
}

/* Under mpirun, rank 0 alone speaks on stdout (progress, epochs, results);
 * the other ranks keep stderr for their errors. */
static void quiet_followers(void)
{
    if (!tlcl_dist_is_root() && !freopen("/dev/null", "w", stdout))
        fprintf(stderr, "tlcl: rank %d: cannot silence stdout\n", tlcl_dist_rank());
}

static int run_command(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
        printf("tlcl %s (commit %s)\n", TLCL_VERSION, TLCL_GIT_COMMIT);
        return 0;
    }
    for (int i = 0; i < NCOMMANDS; i++)
        if (strcmp(argv[1], commands[i].cli->name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    return unknown_command(argv[1]);
}

int main(int argc, char **argv)
{
    if (tlcl_dist_init(&argc, &argv) != 0)
        return 1;
    quiet_followers();
    return tlcl_dist_finish(run_command(argc, argv));
}
