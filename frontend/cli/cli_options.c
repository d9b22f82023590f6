/* cli_options.c — getopt_long over a command's option table (cli_options.h):
 * the parse, the usage of --help, the messages of usage errors. */
#define _GNU_SOURCE
#include "cli_options.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_OPTIONS = 40, LONG_VAL = 256 }; /* getopt's val of table entry i without a short name: LONG_VAL + i */

static int count_options(const cli_command *cmd)
{
    int n = 0;
    while (cmd->options[n].name)
        n++;
    return n;
}

/* "  -o, --output=FILE" or "      --top=K": the left column of the usage. */
static void option_label(const cli_option *o, char *out, size_t len)
{
    char shortpart[8] = "    ";
    if (o->short_name)
        snprintf(shortpart, sizeof shortpart, "-%c, ", o->short_name);
    snprintf(out, len, "  %s--%s%s%s", shortpart, o->name, o->arg ? "=" : "", o->arg ? o->arg : "");
}

static void print_option(FILE *f, const cli_option *o)
{
    char label[128];
    option_label(o, label, sizeof label);
    int width = 30;
    if ((int)strlen(label) < width - 1)
        fprintf(f, "%-*s%s\n", width, label, o->help);
    else
        fprintf(f, "%s\n%*s%s\n", label, width, "", o->help);
}

static void print_usage(const cli_command *cmd, FILE *f)
{
    fprintf(f, "usage: tlcl %s [OPTION]...%s%s\n%s\n\n", cmd->name, cmd->operands[0] ? " " : "", cmd->operands,
            cmd->about);
    fprintf(f, "options (a value follows '=' or comes as the next argument; -- ends the options):\n");
    for (const cli_option *o = cmd->options; o->name; o++)
        print_option(f, o);
    print_option(f, &(cli_option){"help", 'h', CLI_FLAG, NULL, "print this help and exit", 0, 0, NULL});
}

int cli_usage_error(const cli_args *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tlcl %s: ", a->cmd->name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'tlcl %s --help' for more information.\n", a->cmd->name);
    va_end(ap);
    return 2;
}

/* The table entry getopt_long's val stands for, or -1 (help). */
static int option_of(const cli_command *cmd, int val)
{
    if (val >= LONG_VAL)
        return val - LONG_VAL;
    for (int i = 0; cmd->options[i].name; i++)
        if (cmd->options[i].short_name == val)
            return i;
    return -1;
}

/* An unknown or ambiguous option, with the closest known one. */
static int unknown_option(const cli_args *a, const char *text)
{
    char word[128];
    snprintf(word, sizeof word, "%.*s", (int)strcspn(text, "="), text);
    const char *names[MAX_OPTIONS + 1];
    int n = 0, prefixed = 0;
    for (const cli_option *o = a->cmd->options; o->name && n < MAX_OPTIONS; o++) {
        names[n++] = o->name;
        prefixed += strncmp(word, "--", 2) == 0 && strncmp(o->name, word + 2, strlen(word + 2)) == 0;
    }
    names[n++] = "help";
    if (prefixed > 1)
        return cli_usage_error(a, "option '%s' is ambiguous for 'tlcl %s': give more of its name", word, a->cmd->name);
    const char *near = tlcl_closest_name(word + strspn(word, "-"), names, (size_t)n);
    if (near)
        return cli_usage_error(a, "unknown option '%s' for 'tlcl %s'; did you mean --%s?", word, a->cmd->name, near);
    return cli_usage_error(a, "unknown option '%s' for 'tlcl %s'", word, a->cmd->name);
}

static int check_int(const cli_args *a, const cli_option *o, const char *value)
{
    char *end;
    long v = strtol(value, &end, 10);
    if (o->config_key || (*value && !*end && v >= o->lo && v <= o->hi))
        return 0; /* a config_key's value is checked by the configuration's schema */
    return cli_usage_error(a, "--%s: expected an integer in [%ld, %ld], got '%s'", o->name, o->lo, o->hi, value);
}

static int record(cli_args *a, int index, const char *value)
{
    const cli_option *o = &a->cmd->options[index];
    if (a->ngiven == CLI_MAX_GIVEN)
        return cli_usage_error(a, "more than %d options", CLI_MAX_GIVEN);
    if (o->kind == CLI_INT && check_int(a, o, value))
        return 2;
    a->given[a->ngiven].option = index;
    a->given[a->ngiven++].value = value;
    return 0;
}

/* getopt_long's tables for cmd: the long options and the short ones. */
static void getopt_tables(const cli_command *cmd, struct option *longs, char *shorts)
{
    int n = count_options(cmd), s = 0;
    shorts[s++] = ':'; /* a missing value returns ':' rather than '?' */
    for (int i = 0; i < n; i++) {
        const cli_option *o = &cmd->options[i];
        int has_arg = o->kind == CLI_FLAG ? no_argument : required_argument;
        longs[i] = (struct option){o->name, has_arg, NULL, o->short_name ? o->short_name : LONG_VAL + i};
        if (o->short_name) {
            shorts[s++] = (char)o->short_name;
            if (has_arg == required_argument)
                shorts[s++] = ':';
        }
    }
    longs[n] = (struct option){"help", no_argument, NULL, 'h'};
    longs[n + 1] = (struct option){0, 0, 0, 0};
    shorts[s++] = 'h';
    shorts[s] = '\0';
}

/* One getopt_long result c; 0 to go on, 1 with a->status set to stop. */
static int take(cli_args *a, int c, int argc, char **argv)
{
    const char *text = optind > 0 && optind <= argc ? argv[optind - 1] : "";
    int index = option_of(a->cmd, c == '?' || c == ':' ? optopt : c);
    if (c == 'h')
        print_usage(a->cmd, stdout), a->status = 0;
    else if (c == ':')
        a->status = cli_usage_error(a, "option '%s' needs a value (%s)", text, a->cmd->options[index].arg);
    else if (c == '?' && optopt && strncmp(text, "--", 2) == 0) /* a value given to a flag */
        a->status = cli_usage_error(a, "option '--%s' takes no value, got '%s'",
                                    index >= 0 ? a->cmd->options[index].name : "help", text);
    else if (c == '?' && optopt)
        a->status = unknown_option(a, (char[]){'-', (char)optopt, '\0'});
    else if (c == '?')
        a->status = unknown_option(a, text);
    else
        return (a->status = record(a, index, optarg ? optarg : "")) != 0;
    return 1;
}

int cli_parse(const cli_command *cmd, int argc, char **argv, cli_args *a)
{
    struct option longs[MAX_OPTIONS + 2];
    char shorts[2 * MAX_OPTIONS + 4];
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    if (count_options(cmd) > MAX_OPTIONS)
        return a->status = cli_usage_error(a, "internal error: more than %d options", MAX_OPTIONS), 1;
    getopt_tables(cmd, longs, shorts);
    optind = 0; /* glibc: start afresh */
    opterr = 0; /* the messages are ours */
    for (int c; (c = getopt_long(argc, argv, shorts, longs, NULL)) != -1;)
        if (take(a, c, argc, argv))
            return 1;
    a->operands = argv + optind;
    a->noperands = argc - optind;
    if (a->noperands < cmd->min_operands)
        a->status = cli_usage_error(a, "missing %s", cmd->operands);
    else if (cmd->max_operands >= 0 && a->noperands > cmd->max_operands)
        a->status = cli_usage_error(a, "unexpected argument '%s'", a->operands[cmd->max_operands]);
    else
        return 0;
    return 1;
}

static int index_of(const cli_args *a, const char *name)
{
    for (int i = 0; a->cmd->options[i].name; i++)
        if (strcmp(a->cmd->options[i].name, name) == 0)
            return i;
    return -1;
}

const char *cli_value(const cli_args *a, const char *name)
{
    int index = index_of(a, name);
    for (int i = a->ngiven - 1; i >= 0; i--)
        if (a->given[i].option == index)
            return a->given[i].value;
    return NULL;
}

int cli_values(const cli_args *a, const char *name, const char **out, int max)
{
    int index = index_of(a, name), n = 0;
    for (int i = 0; i < a->ngiven && n < max; i++)
        if (a->given[i].option == index)
            out[n++] = a->given[i].value;
    return n;
}

int cli_flag(const cli_args *a, const char *name)
{
    return cli_value(a, name) != NULL;
}

long cli_number(const cli_args *a, const char *name, long fallback)
{
    const char *v = cli_value(a, name);
    return v ? strtol(v, NULL, 10) : fallback;
}

int cli_device(const cli_args *a)
{
    const char *v = cli_value(a, "device");
    if (v)
        return (int)strtol(v, NULL, 10);
    v = getenv("TLCL_DEVICE");
    if (!v || !v[0])
        return -1;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || n < 0 || n > 1023) {
        fprintf(stderr, "tlcl %s: TLCL_DEVICE=%s is not a device index; run `tlcl devices` to list them\n",
                a->cmd->name, v);
        return -2;
    }
    return (int)n;
}

tlcl_status cli_load_config(const cli_args *a, const char *path, tlcl_config *c, char *err, size_t len)
{
    tlcl_status s = tlcl_config_load(c, path, err, len);
    if (s == TLCL_OK)
        s = cli_apply_config(a, c, err, len); /* the file first: the command line applies on top of it */
    if (s == TLCL_OK)
        s = tlcl_config_finalize(c, err, len);
    return s;
}

tlcl_status cli_apply_config(const cli_args *a, tlcl_config *c, char *err, size_t len)
{
    tlcl_status s = TLCL_OK;
    for (int i = 0; s == TLCL_OK && i < a->ngiven; i++) {
        const cli_option *o = &a->cmd->options[a->given[i].option];
        char option[64];
        snprintf(option, sizeof option, "--%s", o->name);
        if (o->kind == CLI_SET)
            s = tlcl_config_set_arg(c, a->given[i].value, err, len);
        else if (o->config_key)
            s = tlcl_config_set_option(c, option, o->config_key, a->given[i].value, err, len);
    }
    return s;
}
