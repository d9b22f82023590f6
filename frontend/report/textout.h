/* textout.h — what the frontend's file writers share: floats formatted as
 * Python's repr() prints them (so CSV and JSON files read the same as those
 * Keras and scikit-learn write), CSV and JSON string quoting, and files
 * written to a temporary name and renamed into place, so a reader never sees
 * half a file. */
#ifndef TLCL_TEXTOUT_H
#define TLCL_TEXTOUT_H

#include <stdio.h>

#include "tlcl_cl.h"

/* Enough for any double in Python repr form ("-1.2345678901234567e-308"). */
#define TEXTOUT_FLOAT_MAX 32

/* Python's repr(float): the shortest decimal that reads back to the same
 * double (found by trying %.1e .. %.17e), positional notation for decimal
 * exponents -4 <= e < 16 with at least one digit after the point ("1.0",
 * "123456789.0", "0.0001"), scientific otherwise with a sign and at least two
 * exponent digits ("1e-05", "1.5e+16"); "nan", "inf", "-inf". Returns buf. */
char *textout_pyfloat(double v, char buf[TEXTOUT_FLOAT_MAX]);

/* The same, for JSON as Python's json module writes it: NaN, Infinity and
 * -Infinity for the non-finite values. */
char *textout_jsonfloat(double v, char buf[TEXTOUT_FLOAT_MAX]);

/* Writes s as one CSV field of Python's excel dialect (QUOTE_MINIMAL): quoted
 * only when it holds the separator, a double quote, \r or \n; a quote inside
 * is doubled. */
void textout_csv_field(FILE *f, const char *s, char sep);

/* Writes s as a JSON string: quotes, backslash escapes, \u00XX for control
 * characters; other bytes (UTF-8) pass through. */
void textout_json_string(FILE *f, const char *s);

/* A file being written under a temporary name next to its final path: the
 * publish helper of cl/ (write to t.f). */
typedef tlcl_publish textout_file;

/* Opens "<path>.tmp.<pid>" for writing (binary mode). Returns 0, or -1 with
 * a message in err naming the file and the system's reason. */
int textout_open(textout_file *t, const char *path, char *err, size_t err_len);
/* Flushes, fsyncs, closes and renames into place (then fsyncs the folder)
 * when ok and every write succeeded; otherwise removes the temporary file.
 * Returns 0, or -1 with a message in err (when ok is 0 and nothing failed
 * on the way, err keeps the caller's message). */
int textout_commit(textout_file *t, int ok, char *err, size_t err_len);
/* The whole file, NUL-terminated (malloc'd; *len its size when len is not
 * NULL), or NULL when it cannot be read. */
char *textout_read_all(const char *path, size_t *len);
/* The whole of text to path the same way (open, write, commit). */
int textout_write_all(const char *path, const char *text, char *err, size_t err_len);

#endif
