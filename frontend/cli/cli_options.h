/* cli_options.h — the one command-line parser of every `tlcl` command:
 * glibc's getopt_long over a table of options per command, so every
 * command follows the GNU conventions: `--opt=value` or `--opt value`,
 * short options where a command has them (-o, -h), `--` ends the options,
 * options and operands in any order, unambiguous prefixes of long names.
 *
 *     CLI_COMMAND(cli_predict, "predict", "IMAGE|DIR...", 0, -1, "Classify images.",
 *                 CLI_DEVICE_OPTION, CLI_INT_OPT("top", "K", 1, 100000, "classes per row"));
 *     cli_args a;
 *     if (cli_parse(&cli_predict, argc, argv, &a))
 *         return a.status;            0 after --help, 2 after a usage error
 *     long top = cli_number(&a, "top", 5);
 *
 * Every command gets -h/--help (its usage, each option with one line, exit
 * 0). A usage error prints what is wrong, with the closest known option for
 * an unknown one, and "Try 'tlcl CMD --help'"; the exit status is 2, as
 * GNU tools do. An integer option is checked against its range here; one
 * that stands for a configuration key (config_key) is checked by the
 * configuration's schema when cli_apply_config sets it, exactly as the key
 * in the YAML file would be. */
#ifndef TLCL_CLI_OPTIONS_H
#define TLCL_CLI_OPTIONS_H

#include "config.h"

typedef enum cli_kind {
    CLI_FLAG, /* no value */
    CLI_INT,  /* an integer in [lo, hi] (or the config_key's range) */
    CLI_TEXT, /* any text */
    CLI_SET   /* repeatable KEY=VALUE for the configuration (--set) */
} cli_kind;

typedef struct cli_option {
    const char *name;  /* the long name, without "--" */
    int short_name;    /* 'o' for -o, or 0 */
    cli_kind kind;
    const char *arg;   /* the value's name in the usage ("N", "FILE"); NULL for flags */
    const char *help;  /* one line */
    long lo, hi;       /* CLI_INT without config_key: the allowed range */
    const char *config_key; /* the configuration key the value sets (tlcl train --epochs), or NULL */
} cli_option;

typedef struct cli_command {
    const char *name;     /* "train": messages say "tlcl train" */
    const char *operands; /* what follows the options in the usage ("CONFIG.yaml") */
    const char *about;    /* what the command does; '\n' splits lines */
    const cli_option *options; /* ends with an entry whose name is NULL */
    int min_operands, max_operands; /* max -1: any number */
} cli_command;

/* Table entries, by kind. */
#define CLI_FLAG_OPT(name_, help_) { .name = name_, .kind = CLI_FLAG, .help = help_ }
#define CLI_TEXT_OPT(name_, arg_, help_) { .name = name_, .kind = CLI_TEXT, .arg = arg_, .help = help_ }
#define CLI_SHORT_OPT(name_, short_, kind_, arg_, help_) \
    { .name = name_, .short_name = short_, .kind = kind_, .arg = arg_, .help = help_ }
#define CLI_INT_OPT(name_, arg_, lo_, hi_, help_) \
    { .name = name_, .kind = CLI_INT, .arg = arg_, .lo = lo_, .hi = hi_, .help = help_ }
/* An integer the configuration's key checks (tlcl train --epochs: train.config.epochs). */
#define CLI_KEY_OPT(name_, arg_, key_, help_) \
    { .name = name_, .kind = CLI_INT, .arg = arg_, .config_key = key_, .help = help_ }
/* --device, common to the commands that open a device; _FOR(key) where the
 * configuration has the key (train.config.device) and checks the value. */
#define CLI_DEVICE_HELP "device index from `tlcl devices` (default $TLCL_DEVICE, else the first GPU)"
#define CLI_DEVICE_OPTION_FOR(key_) CLI_KEY_OPT("device", "N", key_, CLI_DEVICE_HELP)
#define CLI_DEVICE_OPTION CLI_INT_OPT("device", "N", 0, 1023, CLI_DEVICE_HELP)
/* --set, for the commands that read a configuration. */
#define CLI_SET_OPTION                                                                                     \
    {                                                                                                      \
        .name = "set", .kind = CLI_SET, .arg = "KEY=VALUE",                                                \
        .help = "set a configuration key, checked as in the YAML (repeatable)"                             \
    }

/* Defines the command `var_` (const cli_command) and its option table. */
#define CLI_COMMAND(var_, name_, operands_, min_, max_, about_, ...)                                          \
    static const cli_option var_##_options[] = {__VA_ARGS__, {0}};                                          \
    const cli_command var_ = {name_, operands_, about_, var_##_options, min_, max_}

enum { CLI_MAX_GIVEN = 64 };

typedef struct cli_args {
    const cli_command *cmd;
    int status; /* when cli_parse returns 1: the exit status */
    struct {
        int option; /* index in cmd->options */
        const char *value; /* "" for a flag */
    } given[CLI_MAX_GIVEN]; /* in command-line order */
    int ngiven;
    char **operands; /* points into argv */
    int noperands;
} cli_args;

/* 0: go on; 1: stop with a->status (help printed, or a usage error
 * reported). Permutes argv (GNU getopt_long). */
int cli_parse(const cli_command *cmd, int argc, char **argv, cli_args *a);

/* The last value given for the option, or NULL (a flag's value is ""). */
const char *cli_value(const cli_args *a, const char *name);
int cli_flag(const cli_args *a, const char *name);
/* Every value of a repeatable option, in order (at most max); the count. */
int cli_values(const cli_args *a, const char *name, const char **out, int max);
/* A CLI_INT's value (checked by cli_parse), or fallback when not given. */
long cli_number(const cli_args *a, const char *name, long fallback);

/* Reports a usage error ("tlcl CMD: ...", then the --help hint); returns 2. */
int cli_usage_error(const cli_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --device when given, else $TLCL_DEVICE; -1 when neither, -2 when
 * $TLCL_DEVICE is not an index (reported). */
int cli_device(const cli_args *a);

/* Every --set and every option with a config_key, in command-line order,
 * through the configuration's own checks (tlcl_config_set_option). */
tlcl_status cli_apply_config(const cli_args *a, tlcl_config *c, char *err, size_t len);
/* The configuration file at path, then the command line's settings on top
 * (cli_apply_config), then its final checks. */
tlcl_status cli_load_config(const cli_args *a, const char *path, tlcl_config *c, char *err, size_t len);

#endif
