/* cmd_track.c — `tlcl track sync [--uri=URL] [--timeout=S] RUN_DIR`: uploads
 * the MLflow records of RUN_DIR/tracking/journal.jsonl that the run could
 * not send (server unreachable or gone mid-run). The sync state beside the
 * journal remembers what was sent: running it again sends nothing twice. */
#include "commands.h"
#include "track.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr,
            "usage: tlcl track sync [--uri=URL] [--timeout=S] RUN_DIR\n"
            "  RUN_DIR  the run folder (train.artefacts.base_dir) of a run trained with tracking.enabled: true\n"
            "  --uri    the MLflow server (default: the one the run was configured with)\n");
    return 2;
}

int cmd_track(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "sync") != 0)
        return usage();
    const char *uri = NULL, *dir = NULL;
    int timeout = 30;
    for (int i = 2; i < argc; i++) {
        if (strncmp(argv[i], "--uri=", 6) == 0)
            uri = argv[i] + 6;
        else if (strncmp(argv[i], "--timeout=", 10) == 0)
            timeout = atoi(argv[i] + 10);
        else if (argv[i][0] != '-' && !dir)
            dir = argv[i];
        else {
            fprintf(stderr, "tlcl track sync: unexpected argument '%s'\n", argv[i]);
            return usage();
        }
    }
    if (!dir)
        return usage();
    char err[2048];
    if (tlcl_track_sync(dir, uri, timeout > 0 ? timeout : 30, stdout, err, sizeof err) != TLCL_OK) {
        fprintf(stderr, "tlcl track sync: %s\n", err);
        return 1;
    }
    return 0;
}
