/* cli_common.c - what every management command shares: its --config/--data settings and opening the registry. */
#include <stdio.h>
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
