/*
 * cli.h - the management subcommands (user, token, grant, accesskey, repo, lifecycle, gc, fsck, quota, events,
 * backup, restore).  Each takes --data DIR and --config FILE like `serve` (settings: defaults < file < BERTH_*
 * environment < flags), refuses a data directory that does not exist (only `serve` creates one; an existing empty
 * one is set up, so users can be created before the first start), and works while a server runs on the same
 * directory (SQLite WAL; the server reads users, tokens and grants on every request).
 */
#ifndef BERTH_CLI_H
#define BERTH_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct config;
struct db;

/** Applies a command's --config FILE, then the BERTH_* environment, then its --data DIR (FILE and DIR may be NULL)
 *  to `cfg`.  Returns 0, or prints why and returns 2 (the exit status for bad usage). */
int cli_apply_config(struct config *cfg, const char *config_file, const char *data);
/** Opens berth.db of the existing data directory cfg->data (creating and migrating an empty one's contents).
 *  Returns NULL after printing "no registry at DIR (use --data)" when it does not exist, or why it cannot open it;
 *  the caller closes the result with db_close(). */
struct db *cli_open_registry(const struct config *cfg);

/** Runs `berth <argv[0]> …` for argv[0] in user, token, grant.  Returns the process exit status. */
int cli_main(int argc, char **argv);
/** Runs `berth backup …` or `berth restore …` (argv[0]); see backup.h.  Returns the process exit status. */
int cli_backup_main(int argc, char **argv);
/** Runs `berth migrate …` (cli_migrate.c, migrate.h).  Returns the process exit status. */
int cli_migrate_main(int argc, char **argv);
/** Runs `berth accesskey …` or `berth repo …` (cli_ecr.c).  Returns the process exit status. */
int cli_ecr_main(int argc, char **argv);

/** A progress line on stderr for the long commands (backup, restore, migrate): `tty` says whether to draw. */
struct cli_bar {
    struct timespec t0; /* set with clock_gettime(CLOCK_MONOTONIC) when the work starts */
    int tty;
    const char *verb; /* "backup", "restore", "migrate" */
};
/** Seconds since `t0` (monotonic). */
double cli_since(const struct timespec *t0);
/** Writes `bytes` as "12.3 MiB" into `out`. */
void cli_human(char *out, size_t size, double bytes);
/** Progress callback (`arg` is a struct cli_bar): done / total, percent, rate, ETA, redrawn in place. */
void cli_bar_draw(void *arg, uint64_t done, uint64_t total);

#endif
