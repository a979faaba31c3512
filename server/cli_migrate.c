/* cli_migrate.c - `berth migrate`: flags, the target's settings, a progress line on a terminal, the summary
 * (migrate.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "blobstore.h"
#include "cli.h"
#include "config.h"
#include "db.h"
#include "fault.h"
#include "migrate.h"

static const char migrate_usage[] =
    "usage: berth migrate --from DATA_DIR --to-config FILE [--force]\n"
    "\n"
    "  Copies a single-node registry (berth.db, blobs/ and keys/ of DATA_DIR) into the metadata and storage that\n"
    "  FILE configures (metadata = postgresql://… and/or storage = s3://… with its s3_* keys, or another data\n"
    "  directory).  Every blob is re-hashed while it is copied; a mismatch stops the run.  Run it again after an\n"
    "  interruption: blobs and rows already in the target are skipped.  Stop the source registry first (pushes made\n"
    "  during a run are copied by the next run).  Upload sessions in progress are not copied.\n"
    "  --from DIR        the source registry's data directory\n"
    "  --to-config FILE  the target's configuration (as for `berth serve --config`)\n"
    "  --force           copy into a target that already holds another registry's repositories or users\n";

static void summary(const struct migrate_summary *s, const struct cli_bar *b)
{
    char c[32], k[32];
    double secs = cli_since(&b->t0);
    if (b->tty)
        fputc('\n', stderr);
    cli_human(c, sizeof(c), (double)s->blob_bytes);
    cli_human(k, sizeof(k), (double)s->skipped_bytes);
    printf("migrate: %llu blobs copied and verified (%s), %llu already in the target (%s), %llu rows in %llu "
           "tables, %llu keys, %.1f s, %.1f MB/s\n",
           (unsigned long long)s->blobs, c, (unsigned long long)s->blobs_skipped, k, (unsigned long long)s->rows,
           (unsigned long long)s->tables, (unsigned long long)s->keys, secs,
           secs > 0 ? (double)s->blob_bytes / secs / 1e6 : 0.0);
}

/* The target's settings from FILE (and the BERTH_* environment), and its blobstore. */
static int target(const char *file, struct config *cfg, struct blobstore *bs)
{
    char err[512];
    config_defaults(cfg);
    if (config_load(cfg, file, err, sizeof(err)) != 0 || config_env(cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "berth migrate: %s\n", err);
        return 2;
    }
    if (config_blobstore(&cfg->st, cfg->data, bs, err, sizeof(err)) != 0) {
        fprintf(stderr, "berth migrate: target storage: %s\n", err);
        return 1;
    }
    return 0;
}

int cli_migrate_main(int argc, char **argv)
{
    static const struct option opts[] = {{"from", required_argument, NULL, 'f'},
                                         {"to-config", required_argument, NULL, 'c'},
                                         {"force", no_argument, NULL, 'F'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct migrate_opts o = {0};
    struct migrate_summary s;
    struct cli_bar b = {.tty = isatty(2), .verb = "migrate"};
    struct config *cfg;
    struct blobstore bs = {0};
    const char *file = NULL;
    char err[1024];
    int c, rc;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'f')
            o.from = optarg;
        else if (c == 'c')
            file = optarg;
        else if (c == 'F')
            o.force = 1;
        else {
            fputs(migrate_usage, c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    if (optind != argc || o.from == NULL || file == NULL) {
        fputs(migrate_usage, stderr);
        return 2;
    }
    snprintf(err, sizeof(err), "%s/%s", o.from, DB_FILE);
    if (access(err, R_OK) != 0) { /* before the target's data directory is set up */
        fprintf(stderr, "berth migrate: no registry at %s (no %s)\n", o.from, DB_FILE);
        return 1;
    }
    if ((cfg = calloc(1, sizeof(*cfg))) == NULL)
        return 1;
    if ((rc = target(file, cfg, &bs)) != 0) {
        free(cfg);
        return rc;
    }
    o.to_data = cfg->data;
    o.to_metadata = cfg->metadata;
    o.to_bs = &bs;
    o.progress = cli_bar_draw;
    o.progress_arg = &b;
    clock_gettime(CLOCK_MONOTONIC, &b.t0);
    FAULT_ARM(); /* e2e_migrate kills a run at a fault point (BERTH_FAULTS builds) */
    if ((rc = migrate_run(&o, &s, err, sizeof(err))) != 0)
        fprintf(stderr, "%sberth migrate: %s\n", b.tty ? "\n" : "", err);
    else
        summary(&s, &b);
    blobstore_release(&bs);
    free(cfg);
    return rc == 0 ? 0 : 1;
}
