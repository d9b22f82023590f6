/* csv_logger.h — Keras's CSVLogger callback (keras_reference.md 5.3): one
 * row per epoch, appended and flushed as training goes.
 * - Columns: "epoch" (0-based) then the first epoch's keys sorted; when none
 *   of them starts with "val_", a "val_<key>" column is added for each key
 *   (validation may start later). The columns are frozen after the first
 *   epoch; a later missing key is written as NA, a later new key is dropped.
 * - Append mode writes the header only when the file is missing or its first
 *   line is empty; otherwise the file is truncated first.
 * - Python's csv excel dialect: QUOTE_MINIMAL, "\r\n" line endings; floats
 *   as Python's str(float) (shortest round-trip, textout.h). */
#ifndef TLCL_CSV_LOGGER_H
#define TLCL_CSV_LOGGER_H

#include <stdio.h>

typedef struct csv_logger {
    FILE *f;
    char sep;
    int write_header; /* decided when opening */
    int n_cols;       /* 0 until the first epoch freezes the columns */
    char **cols;      /* [n_cols] log keys after "epoch" */
    int borrowed;     /* f belongs to the caller (csv_logger_attach): close leaves it open */
    char path[4096];  /* for messages */
} csv_logger;

/* Returns 0, or -1 with a message in err. */
int csv_logger_open(csv_logger *l, const char *path, char sep, int append, char *err, size_t err_len);
/* A logger that writes, header first, to f (a file being published whole:
 * the rows of a whole history at once). */
void csv_logger_attach(csv_logger *l, FILE *f, char sep);
/* Writes the row of one epoch (and the header first, if due). */
int csv_logger_log(csv_logger *l, int epoch, const char *const *names, const double *values, int n, char *err,
                   size_t err_len);
/* Closes the file (Keras closes it at train end). */
void csv_logger_close(csv_logger *l);

#endif
