/* grid_track.h — the grid's MLflow parent run: with tracking.enabled, every
 * run of a grid is an MLflow run nested under one run named after the grid
 * folder (the tag mlflow.parentRunId, resolved when the child's start is
 * sent: track.h). Its journal is <grid.dir>/tracking/journal.jsonl, so
 * `tlcl track sync <grid.dir>` uploads it like a run's. */
#ifndef TLCL_GRID_TRACK_H
#define TLCL_GRID_TRACK_H

#include "grid.h"
#include "track.h"

/* Opens the parent run (continues the unfinished one of an interrupted
 * grid) and logs the grid's varied keys as parameters grid.params.KEY and
 * the tag tlcl.grid.keys; NULL when c's tracking is off or the journal
 * cannot be written (warned). */
tlcl_tracker *grid_track_open(const tlcl_grid_spec *g, int nruns, const tlcl_config *c);

/* What `tlcl train` gets to nest under it: --tracking-parent=RUN@DIR (""
 * when t is NULL). */
void grid_track_child_arg(const tlcl_tracker *t, const tlcl_grid_spec *g, char *dst, size_t len);

#endif
