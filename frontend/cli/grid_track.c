/* grid_track.c — see grid_track.h. */
#include "grid_track.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tlcl_tracker *grid_track_open(const tlcl_grid_spec *g, int nruns, const tlcl_config *c)
{
    if (!c->tracking.enabled)
        return NULL;
    const char *slash = strrchr(g->dir, '/');
    tlcl_track_options to = {.run_dir = g->dir, .uri = c->tracking.uri, .experiment = c->tracking.experiment,
                             .run_name = slash && slash[1] ? slash + 1 : g->dir, .timeout_s = c->tracking.timeout};
    tlcl_tracker *t;
    int continued = 0;
    char err[1400];
    if (tlcl_tracker_open(&t, &to, &continued, err, sizeof err) != TLCL_OK) {
        fprintf(stderr, "warning: MLflow tracking of the grid is off (its runs are tracked on their own): %s\n", err);
        return NULL;
    }
    if (continued)
        return t; /* an interrupted grid: parameters and tags went with its first start */
    char *yaml = NULL, keys[TLCL_GRID_MAX_KEYS * 130] = "";
    size_t len = 0;
    FILE *f = open_memstream(&yaml, &len);
    if (f) {
        fprintf(f, "grid:\n  metric: %s\n  runs: %d\n  params:\n", g->metric, nruns);
        for (int k = 0; k < g->nkeys; k++) {
            fprintf(f, "    %s: [", g->key[k]);
            for (int v = 0; v < g->nvalues[k]; v++)
                fprintf(f, "%s%s", v ? ", " : "", g->value[k][v]);
            fprintf(f, "]\n");
            snprintf(keys + strlen(keys), sizeof keys - strlen(keys), "%s%s", k ? "," : "", g->key[k]);
        }
        fclose(f);
        tlcl_tracker_params_yaml(t, yaml);
    }
    free(yaml);
    const char *tk[] = {"tlcl.version", "tlcl.grid.keys", "mlflow.source.name"};
    const char *tv[] = {TLCL_VERSION, keys, "tlcl grid"};
    tlcl_tracker_tags(t, tk, tv, 3);
    tlcl_tracker_tags_text(t, c->tracking.tags);
    return t;
}

void grid_track_child_arg(const tlcl_tracker *t, const tlcl_grid_spec *g, char *dst, size_t len)
{
    if (t)
        snprintf(dst, len, "--tracking-parent=%s@%s", tlcl_tracker_run_id(t), g->dir);
    else
        dst[0] = 0;
}
