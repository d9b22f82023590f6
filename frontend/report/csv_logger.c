/* csv_logger.c — per-epoch CSV rows with Keras CSVLogger semantics. */
#include "csv_logger.h"
#include "textout.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Keras: in append mode the header is due when the file is missing or
 * f.readline() returns "", i.e. the file is empty (a first line holding
 * only "\n" is not empty to readline). */
static int header_due(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 1;
    int c = fgetc(f);
    fclose(f);
    return c == EOF;
}

int csv_logger_open(csv_logger *l, const char *path, char sep, int append, char *err, size_t err_len)
{
    memset(l, 0, sizeof *l);
    l->sep = sep;
    l->write_header = append ? header_due(path) : 1;
    snprintf(l->path, sizeof l->path, "%s", path);
    l->f = fopen(path, append ? "ab" : "wb");
    if (!l->f) {
        snprintf(err, err_len, "cannot open %s: %s%s", path, strerror(errno), tlcl_io_hint(errno));
        return -1;
    }
    return 0;
}

void csv_logger_attach(csv_logger *l, FILE *f, char sep)
{
    memset(l, 0, sizeof *l);
    l->f = f, l->sep = sep, l->write_header = 1, l->borrowed = 1;
}

static int by_string(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Freezes the columns from the first epoch's keys. */
static int freeze_columns(csv_logger *l, const char *const *names, int n)
{
    int has_val = 0;
    for (int i = 0; i < n; i++)
        has_val |= strncmp(names[i], "val_", 4) == 0;
    int total = has_val ? n : 2 * n;
    l->cols = calloc((size_t)(total ? total : 1), sizeof *l->cols);
    if (!l->cols)
        return -1;
    l->n_cols = total; /* so that close frees what was made */
    for (int i = 0; i < n; i++)
        if (!(l->cols[i] = strdup(names[i])))
            return -1;
    qsort(l->cols, (size_t)n, sizeof *l->cols, by_string);
    for (int i = 0; i < total - n; i++) { /* the val_ columns follow, unsorted */
        l->cols[n + i] = malloc(strlen(l->cols[i]) + 5);
        if (!l->cols[n + i])
            return -1;
        strcat(strcpy(l->cols[n + i], "val_"), l->cols[i]);
    }
    return 0;
}

static void write_header(csv_logger *l)
{
    fputs("epoch", l->f);
    for (int i = 0; i < l->n_cols; i++) {
        fputc(l->sep, l->f);
        textout_csv_field(l->f, l->cols[i], l->sep);
    }
    fputs("\r\n", l->f);
}

int csv_logger_log(csv_logger *l, int epoch, const char *const *names, const double *values, int n, char *err,
                   size_t err_len)
{
    if (!l->cols && freeze_columns(l, names, n)) {
        snprintf(err, err_len, "csv logger: out of memory");
        return -1;
    }
    if (l->write_header)
        write_header(l), l->write_header = 0;
    fprintf(l->f, "%d", epoch);
    char b[TEXTOUT_FLOAT_MAX];
    for (int c = 0; c < l->n_cols; c++) {
        const char *cell = "NA";
        for (int i = 0; i < n; i++)
            if (strcmp(names[i], l->cols[c]) == 0)
                cell = textout_pyfloat(values[i], b);
        fputc(l->sep, l->f);
        fputs(cell, l->f);
    }
    fputs("\r\n", l->f);
    if (l->borrowed) /* the publisher checks and names its file */
        return 0;
    if (fflush(l->f) != 0 || ferror(l->f)) {
        snprintf(err, err_len, "cannot write %s: %s%s", l->path, strerror(errno), tlcl_io_hint(errno));
        return -1;
    }
    return 0;
}

void csv_logger_close(csv_logger *l)
{
    if (l->f && !l->borrowed)
        fclose(l->f);
    for (int i = 0; i < l->n_cols; i++)
        free(l->cols[i]);
    free(l->cols);
    memset(l, 0, sizeof *l);
}
