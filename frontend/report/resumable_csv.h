/* resumable_csv.h — a CSV written row by row that a killed run continues
 * exactly where it stopped (`tlcl predict --out FILE`).
 *
 * The rows go to FILE.partial; after each batch the writer fsyncs them and
 * records, in FILE.partial.pos (temporary file, fsync, rename), how many
 * inputs are done and how many bytes of FILE.partial hold their rows. A
 * rerun with the same fingerprint (model, options, inputs) truncates
 * FILE.partial to those bytes, so rows written after the last record are
 * dropped and written again: every input gets exactly one row. At the end
 * FILE.partial becomes FILE and the record goes. */
#ifndef TLCL_RESUMABLE_CSV_H
#define TLCL_RESUMABLE_CSV_H

#include <stdio.h>

typedef struct tlcl_rcsv {
    FILE *f;               /* append rows here */
    char path[4096], partial[4200], pos[4200];
    char fingerprint[1024];
} tlcl_rcsv;

/* Opens path's partial output. A partial run of the same fingerprint is
 * resumed (*next = the first input not done yet, *resumed = 1); one of a
 * different fingerprint is an error naming both files; otherwise a new one
 * starts with the header (*next = 0). Returns 0, or -1 with err. */
int tlcl_rcsv_open(tlcl_rcsv *c, const char *path, const char *header, const char *fingerprint, int *next,
                   int *resumed, char *err, size_t len);
/* The rows of every input before next are written: makes them durable and
 * records next. Returns 0, or -1 with err. */
int tlcl_rcsv_commit(tlcl_rcsv *c, int next, char *err, size_t len);
/* Every input done: FILE.partial becomes FILE, the record goes. */
int tlcl_rcsv_finish(tlcl_rcsv *c, char *err, size_t len);
/* Closes, keeping the partial files for a rerun. */
void tlcl_rcsv_close(tlcl_rcsv *c);

#endif
