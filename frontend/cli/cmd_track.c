/* cmd_track.c — `tlcl track sync [--uri=URL] [--timeout=S] RUN_DIR`: uploads
 * the MLflow records of RUN_DIR/tracking/journal.jsonl that the run could
 * not send (server unreachable or gone mid-run). The sync state beside the
 * journal remembers what was sent: running it again sends nothing twice. */
#include "commands.h"
#include "track.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

CLI_COMMAND(cli_track, "track", "sync RUN_DIR", 2, 2,
    "Upload the MLflow records a run kept while the server was unreachable (sync).\n"
    "RUN_DIR is train.artefacts.base_dir of a run trained with tracking.enabled: true; its records\n"
    "are in RUN_DIR/tracking and each goes once, however often sync runs.",
    CLI_TEXT_OPT("uri", "URL", "the MLflow server (default: the one the run was configured with)"),
    CLI_INT_OPT("timeout", "S", 1, 1000000, "seconds per request (default 30)"));

int cmd_track(int argc, char **argv)
{
    cli_args a;
    if (cli_parse(&cli_track, argc, argv, &a))
        return a.status;
    if (strcmp(a.operands[0], "sync") != 0)
        return cli_usage_error(&a, "unknown subcommand '%s': sync", a.operands[0]);
    char err[2048];
    if (tlcl_track_sync(a.operands[1], cli_value(&a, "uri"), (int)cli_number(&a, "timeout", 30), stdout, err,
                        sizeof err) != TLCL_OK) {
        fprintf(stderr, "tlcl track sync: %s\n", err);
        return 1;
    }
    return 0;
}
