/* commands.h — one entry point per `tlcl` command; each returns the exit
 * status (0 ok, 1 failure, 2 bad usage). */
#ifndef TLCL_COMMANDS_H
#define TLCL_COMMANDS_H

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

/* Parses --device=N (or $TLCL_DEVICE); -1 when absent, -2 when malformed
 * (a message was printed). */
int cli_device_index(int argc, char **argv);

#endif
