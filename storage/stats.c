/* stats.c - the trigger-maintained storage counts (see stats.h). */
#include <string.h>
#include "err.h"
#include "stats.h"

/* A statement slot of its own (db.h: each call site uses its own constant slot; authdb.c uses the top three). */
#define STATS_SLOT (DB_STMT_MAX - 8)

int stats_read(struct db *db, struct stats *out)
{
    sqlite3_stmt *st =
        db_stmt(db, STATS_SLOT, "SELECT blobs, blob_bytes, manifests, repos, uploads FROM stats WHERE id = 1");
    memset(out, 0, sizeof(*out));
    if (st == NULL || sqlite3_step(st) != SQLITE_ROW)
        return st == NULL ? BERR_DB : db_error(db);
    out->blobs = sqlite3_column_int64(st, 0);
    out->blob_bytes = sqlite3_column_int64(st, 1);
    out->manifests = sqlite3_column_int64(st, 2);
    out->repos = sqlite3_column_int64(st, 3);
    out->uploads = sqlite3_column_int64(st, 4);
    sqlite3_reset(st);
    return 0;
}
