/* cli_common.c - what every management command shares: its --config/--data settings and opening the registry. */
#include <stdio.h>
#include <time.h>
#include <sys/stat.h>
#include "blobstore.h"
#include "cli.h"
#include "config.h"
#include "db.h"

int cli_apply_config(struct config *cfg, const char *config_file, const char *data)
{
    char err[512];
    if ((config_file != NULL && config_load(cfg, config_file, err, sizeof(err)) != 0) ||
        config_env(cfg, err, sizeof(err)) != 0 ||
        (data != NULL && config_set(cfg, "data", data, err, sizeof(err)) != 0)) {
        fprintf(stderr, "berth: %s\n", err);
        return 2;
    }
    if (db_set_metadata(cfg->metadata) != 0) { /* before anything reads a key (keys.h) or opens the database */
        fprintf(stderr, "berth: invalid metadata setting\n");
        return 2;
    }
    return 0;
}

struct db *cli_open_registry(const struct config *cfg)
{
    struct blobstore bs;
    struct db *db;
    struct stat st;
    if (stat(cfg->data, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "berth: no registry at %s (use --data)\n", cfg->data);
        return NULL;
    }
    if (db_set_metadata(cfg->metadata) != 0 || blobstore_init(&bs, cfg->data) != 0 || db_open(cfg->data, &db) != 0) {
        fprintf(stderr, "berth: cannot open the data directory %s\n", cfg->data);
        return NULL;
    }
    return db;
}

double cli_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

void cli_human(char *out, size_t size, double bytes)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        u++;
    }
    snprintf(out, size, "%.1f %s", bytes, units[u]);
}

/* The progress line: done / total, rate, ETA (only on a terminal). */
void cli_bar_draw(void *arg, uint64_t done, uint64_t total)
{
    struct cli_bar *b = arg;
    char d[32], t[32];
    double secs = cli_since(&b->t0), rate = secs > 0 ? (double)done / secs : 0;
    long eta = rate > 0 && total > done ? (long)((double)(total - done) / rate) : 0;
    if (!b->tty)
        return;
    if (done > total)
        total = done;
    cli_human(d, sizeof(d), (double)done);
    cli_human(t, sizeof(t), (double)total);
    fprintf(stderr, "\r%s %s / %s  %5.1f%%  %.1f MB/s  ETA %ld:%02ld   ", b->verb, d, t,
            total ? 100.0 * (double)done / (double)total : 100.0, rate / 1e6, eta / 60, eta % 60);
}
