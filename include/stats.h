/*
 * stats.h - what the data directory holds, in numbers: blobs and their bytes, manifests, repositories and open
 * upload sessions.
 *
 * The counts live in one row of berth.db's `stats` table that triggers on blobs, manifests, repos and uploads keep
 * exact inside the very transactions that change those tables (migration 4 filled it once from the tables).  So
 * every writer — the server, `berth` commands, garbage collection — keeps it right without knowing about it, a
 * crash can never make it drift, and reading it is one point lookup instead of a scan.
 */
#ifndef BERTH_STATS_H
#define BERTH_STATS_H

#include <stdint.h>
#include "db.h"

struct stats {
    int64_t blobs, blob_bytes, manifests, repos, uploads;
};

/** Reads the counts into `out`.  Returns 0 or BERR_DB. */
int stats_read(struct db *db, struct stats *out);

#endif
