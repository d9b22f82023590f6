/* commands.h — one entry point per `tlcl` command; each returns the exit
 * status (0 ok, 1 failure, 2 bad usage). */
#ifndef TLCL_COMMANDS_H
#define TLCL_COMMANDS_H

#include "cli_options.h"

/* Each command's options and usage (cli_options.h), which main lists. */
extern const cli_command cli_devices, cli_summary, cli_bench, cli_train, cli_grid, cli_test, cli_import, cli_config,
    cli_predict, cli_track, cli_data, cli_export, cli_tune;

int cmd_devices(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_grid(int argc, char **argv);
int cmd_test(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_track(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_tune(int argc, char **argv);

/* cmd_tune.c: on stderr, once, the launch parameters an engine uses (`tlcl
 * tune`'s file or the family defaults) and the warning about a tuning file
 * it could not use (test and predict; train and bench say it in their own
 * output). */
struct tlcl_engine;
void cli_report_tuning(const struct tlcl_engine *e);

#endif
