/* cli_backup.c - `berth backup` and `berth restore`: flags, a progress line on a terminal, the summary (backup.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "backup.h"
#include "cli.h"
#include "defaults.h"

static const char backup_usage[] =
    "usage: berth backup FILE.tar.zst [--data DIR] [--incremental-from OLD.tar.zst] [--level N] [--threads N]\n"
    "\n"
    "  Writes a consistent backup of a registry, also while `berth serve` runs: a snapshot of berth.db (SQLite's\n"
    "  online backup), the signing keys and every blob the snapshot references, as one zstd-compressed tar.\n"
    "  --data DIR              the registry's data directory (default $BERTH_DATA, else " BERTH_DEFAULT_DATA ")\n"
    "  --incremental-from OLD  leave out the blobs OLD (an earlier backup) already holds\n"
    "  --level N               zstd level (default 3)\n"
    "  --threads N             zstd compression threads (default: one per core, at most 8; 1 = none)\n";

static const char restore_usage[] =
    "usage: berth restore FILE.tar.zst --data NEWDIR [--base OLD.tar.zst ...]\n"
    "\n"
    "  Restores a backup into NEWDIR, which must not exist or be empty.  Every blob's digest and every file's\n"
    "  checksum is verified; a truncated or corrupted archive is reported and nothing is left at NEWDIR.\n"
    "  --base OLD  the archive an incremental backup was made from (repeat for a chain)\n";

static void summary(const char *what, const struct backup_summary *s, const struct cli_bar *b)
{
    char p[32], a[32];
    double secs = cli_since(&b->t0);
    if (b->tty)
        fputc('\n', stderr);
    cli_human(p, sizeof(p), (double)s->payload_bytes);
    cli_human(a, sizeof(a), (double)s->archive_bytes);
    printf("%s: %llu blobs (%llu bytes), %llu left to the base, %s of data, archive %s, %.1f s, %.1f MB/s\n", what,
           (unsigned long long)s->blobs, (unsigned long long)s->blob_bytes, (unsigned long long)s->skipped, p, a, secs,
           secs > 0 ? (double)s->payload_bytes / secs / 1e6 : 0.0);
}

static int backup_cmd(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},  {"incremental-from", required_argument, NULL, 'i'},
        {"level", required_argument, NULL, 'l'}, {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    struct backup_opts o = {.datadir = getenv("BERTH_DATA") != NULL ? getenv("BERTH_DATA") : BERTH_DEFAULT_DATA};
    struct cli_bar b = {.tty = isatty(2), .verb = "backup"};
    struct backup_summary s;
    char err[1024];
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'd')
            o.datadir = optarg;
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
    if (getenv("BERTH_METADATA") != NULL && strncmp(getenv("BERTH_METADATA"), "postgres", 8) == 0) {
        fprintf(stderr, "berth backup: the archive holds berth.db (metadata = sqlite); with the metadata in PostgreSQL "
                        "back up the database with pg_dump and the blobs with the storage's own tools\n");
        return 2;
    }
    if (getenv("BERTH_STORAGE") != NULL && strncmp(getenv("BERTH_STORAGE"), "s3://", 5) == 0) {
        fputs("berth backup: blobs in S3 are not backed up by berth (use the bucket's own versioning or "
              "replication)\n",
              stderr);
        return 2;
    }
    o.out = argv[optind];
    o.progress = cli_bar_draw;
    o.progress_arg = &b;
    clock_gettime(CLOCK_MONOTONIC, &b.t0);
    if (backup_create(&o, &s, err, sizeof(err)) != 0) {
        fprintf(stderr, "%sberth backup: %s\n", b.tty ? "\n" : "", err);
        return 1;
    }
    summary("backup", &s, &b);
    return 0;
}

static int restore_cmd(int argc, char **argv)
{
    static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
                                         {"base", required_argument, NULL, 'b'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct restore_opts o = {0};
    struct cli_bar b = {.tty = isatty(2), .verb = "restore"};
    struct backup_summary s;
    char err[1024];
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'd')
            o.datadir = optarg;
        else if (c == 'b' && o.nbases < BACKUP_BASES_MAX)
            o.bases[o.nbases++] = optarg;
        else {
            fputs(restore_usage, c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    if (optind + 1 != argc || o.datadir == NULL) {
        fputs(restore_usage, stderr);
        return 2;
    }
    o.archive = argv[optind];
    o.progress = cli_bar_draw;
    o.progress_arg = &b;
    clock_gettime(CLOCK_MONOTONIC, &b.t0);
    if (backup_restore(&o, &s, err, sizeof(err)) != 0) {
        fprintf(stderr, "%sberth restore: %s\n", b.tty ? "\n" : "", err);
        return 1;
    }
    summary("restore", &s, &b);
    return 0;
}

int cli_backup_main(int argc, char **argv)
{
    optind = 1;
    if (strcmp(argv[0], "backup") == 0)
        return backup_cmd(argc, argv);
    return restore_cmd(argc, argv);
}
