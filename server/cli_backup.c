/* cli_backup.c - `berth backup` and `berth restore`: flags, a progress line on a terminal, the summary (backup.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "backup.h"
#include "blobstore.h"
#include "cli.h"
#include "config.h"
#include "db.h"
#include "defaults.h"
#include "fault.h"
#include "s3.h"

static const char backup_usage[] =
    "usage: berth backup FILE.tar.zst [--config FILE] [--data DIR] [--metadata URL] [--incremental-from OLD.tar.zst]\n"
    "                    [--level N] [--threads N]\n"
    "\n"
    "  Writes a consistent backup of a registry, also while `berth serve` runs (on every node): a snapshot of the\n"
    "  metadata (SQLite's online backup of berth.db, or one REPEATABLE READ snapshot of PostgreSQL written as a\n"
    "  berth.db), the signing keys and every blob the snapshot references (from disk or streamed from the S3\n"
    "  bucket, each verified against its digest), as one zstd-compressed tar.  Settings as for `berth serve`.\n"
    "  --config FILE           the registry's configuration (data, metadata, storage, s3_*)\n"
    "  --data DIR              the registry's data directory (default $BERTH_DATA, else " BERTH_DEFAULT_DATA ")\n"
    "  --metadata URL          sqlite (default) or the postgresql://… database of the registry\n"
    "  --incremental-from OLD  leave out the blobs OLD (an earlier backup) already holds\n"
    "  --level N               zstd level (default 3)\n"
    "  --threads N             zstd compression threads (default: one per core, at most 8; 1 = none)\n";

static const char restore_usage[] =
    "usage: berth restore FILE.tar.zst (--data NEWDIR | --config FILE) [--metadata URL] [--force]\n"
    "                     [--base OLD.tar.zst ...]\n"
    "\n"
    "  Restores a backup into the target the settings name.  SQLite + disk: NEWDIR must not exist or be empty; every\n"
    "  blob's digest and every file's checksum is verified, and only a complete restore appears at NEWDIR.\n"
    "  PostgreSQL and/or S3 (metadata = postgresql://…, storage = s3://…): each blob is verified and stored before\n"
    "  its row, then the rows are copied (ids kept, as `berth migrate` does); run it again after an interruption.\n"
    "  --config FILE  the target's configuration (as for `berth serve --config`)\n"
    "  --data DIR     the target's data directory\n"
    "  --metadata URL sqlite (default) or the target's postgresql://… database\n"
    "  --force        PostgreSQL/S3: restore into a target that holds another registry's repositories or users\n"
    "  --base OLD     the archive an incremental backup was made from (repeat for a chain)\n";

static void summary(const char *what, const struct backup_summary *s, const struct cli_bar *b)
{
    char p[32], a[32];
    double secs = cli_since(&b->t0);
    if (b->tty)
        fputc('\n', stderr);
    cli_human(p, sizeof(p), (double)s->payload_bytes);
    cli_human(a, sizeof(a), (double)s->archive_bytes);
    printf("%s: %llu blobs (%llu bytes), %llu %s, %s of data, archive %s, %.1f s, %.1f MB/s\n", what,
           (unsigned long long)s->blobs, (unsigned long long)s->blob_bytes, (unsigned long long)s->skipped,
           strcmp(what, "backup") == 0 ? "left to the base" : "already in the target", p, a, secs,
           secs > 0 ? (double)s->payload_bytes / secs / 1e6 : 0.0);
}

/* The settings (--config, BERTH_*, --data, --metadata) and the blobstore `bs` when it is needed: S3 storage, or a
 * restore into PostgreSQL with blobs on disk (*opened set non-zero then).  Returns 0 or the exit status. */
static int settings(const char *verb, struct config *cfg, const char *file, const char *data, const char *metadata,
                    struct blobstore *bs, int *opened)
{
    char err[512];
    if (cli_apply_config(cfg, file, data) != 0)
        return 2;
    if (metadata != NULL &&
        (config_set(cfg, "metadata", metadata, err, sizeof(err)) != 0 || db_set_metadata(cfg->metadata) != 0)) {
        fprintf(stderr, "berth %s: invalid --metadata\n", verb);
        return 2;
    }
    *opened = strncmp(cfg->st.storage, "s3://", 5) == 0 || (strcmp(verb, "restore") == 0 && db_metadata_is_pg());
    if (*opened && config_blobstore(&cfg->st, cfg->data, bs, err, sizeof(err)) != 0) {
        fprintf(stderr, "berth %s: storage: %s\n", verb, err);
        return 1;
    }
    if (bs->s3 != NULL && s3_check(bs->s3) != 0) { /* as `serve` does; S3's answer is logged by s3.c */
        fprintf(stderr, "berth %s: cannot use %s at %s: the bucket cannot be listed (see above)\n", verb,
                cfg->st.storage, cfg->st.s3_endpoint);
        blobstore_release(bs);
        return 1;
    }
    return 0;
}

static int backup_cmd(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},   {"incremental-from", required_argument, NULL, 'i'},
        {"level", required_argument, NULL, 'l'},  {"threads", required_argument, NULL, 't'},
        {"config", required_argument, NULL, 'c'}, {"metadata", required_argument, NULL, 'M'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    struct backup_opts o = {0};
    struct cli_bar b = {.tty = isatty(2), .verb = "backup"};
    struct backup_summary s;
    struct blobstore bs = {0};
    struct config *cfg;
    const char *file = NULL, *data = NULL, *metadata = NULL;
    char err[1024];
    int c, rc, opened = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'd')
            data = optarg;
        else if (c == 'c')
            file = optarg;
        else if (c == 'M')
            metadata = optarg;
        else if (c == 'i')
            o.incremental_from = optarg;
        else if (c == 'l' && sscanf(optarg, "%d", &o.level) == 1 && o.level >= 1 && o.level <= 19)
            continue;
        else if (c == 't' && sscanf(optarg, "%d", &o.workers) == 1 && o.workers >= 1 && o.workers <= 64)
            continue;
        else {
            fputs(backup_usage, c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    if (optind + 1 != argc) {
        fputs(backup_usage, stderr);
        return 2;
    }
    if ((cfg = calloc(1, sizeof(*cfg))) == NULL)
        return 1;
    config_defaults(cfg);
    if ((rc = settings("backup", cfg, file, data, metadata, &bs, &opened)) != 0) {
        free(cfg);
        return rc;
    }
    o.datadir = cfg->data;
    o.metadata = cfg->metadata;
    o.bs = opened ? &bs : NULL;
    o.out = argv[optind];
    o.progress = cli_bar_draw;
    o.progress_arg = &b;
    clock_gettime(CLOCK_MONOTONIC, &b.t0);
    if ((rc = backup_create(&o, &s, err, sizeof(err))) != 0)
        fprintf(stderr, "%sberth backup: %s\n", b.tty ? "\n" : "", err);
    else
        summary("backup", &s, &b);
    blobstore_release(&bs);
    free(cfg);
    return rc == 0 ? 0 : 1;
}

static int restore_cmd(int argc, char **argv)
{
    static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
                                         {"base", required_argument, NULL, 'b'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"metadata", required_argument, NULL, 'M'},
                                         {"force", no_argument, NULL, 'F'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct restore_opts o = {0};
    struct cli_bar b = {.tty = isatty(2), .verb = "restore"};
    struct backup_summary s;
    struct blobstore bs = {0};
    struct config *cfg;
    const char *file = NULL, *data = NULL, *metadata = NULL;
    char err[1024];
    int c, rc, opened = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'd')
            data = optarg;
        else if (c == 'c')
            file = optarg;
        else if (c == 'M')
            metadata = optarg;
        else if (c == 'F')
            o.force = 1;
        else if (c == 'b' && o.nbases < BACKUP_BASES_MAX)
            o.bases[o.nbases++] = optarg;
        else {
            fputs(restore_usage, c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    if (optind + 1 != argc || (data == NULL && file == NULL)) {
        fputs(restore_usage, stderr);
        return 2;
    }
    if ((cfg = calloc(1, sizeof(*cfg))) == NULL)
        return 1;
    config_defaults(cfg);
    if ((rc = settings("restore", cfg, file, data, metadata, &bs, &opened)) != 0) {
        free(cfg);
        return rc;
    }
    o.datadir = cfg->data;
    o.metadata = cfg->metadata;
    o.bs = opened ? &bs : NULL;
    o.archive = argv[optind];
    o.progress = cli_bar_draw;
    o.progress_arg = &b;
    clock_gettime(CLOCK_MONOTONIC, &b.t0);
    FAULT_ARM(); /* e2e_backup_scaleout kills a restore at a fault point (BERTH_FAULTS builds) */
    if ((rc = backup_restore(&o, &s, err, sizeof(err))) != 0)
        fprintf(stderr, "%sberth restore: %s\n", b.tty ? "\n" : "", err);
    else
        summary("restore", &s, &b);
    blobstore_release(&bs);
    free(cfg);
    return rc == 0 ? 0 : 1;
}

int cli_backup_main(int argc, char **argv)
{
    optind = 1;
    if (strcmp(argv[0], "backup") == 0)
        return backup_cmd(argc, argv);
    return restore_cmd(argc, argv);
}
