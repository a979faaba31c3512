/* stats.c - the trigger-maintained storage counts (see stats.h). */
#include <string.h>
#include "err.h"
#include "stats.h"

/* Its statement slot, in its own range of db.h. */
enum { S_STATS_READ = DB_SLOTS_STATS, S_STATS_END };
DB_SLOTS_CHECK(STATS, S_STATS_END);

int stats_read(struct db *db, struct stats *out)
{
    struct db_stmt *st =
        db_stmt(db, S_STATS_READ, "SELECT blobs, blob_bytes, manifests, repos, uploads FROM stats WHERE id = 1");
    memset(out, 0, sizeof(*out));
    if (st == NULL || db_step(st) != DB_ROW)
        return st == NULL ? BERR_DB : db_error(db);
    out->blobs = db_column_int64(st, 0);
    out->blob_bytes = db_column_int64(st, 1);
    out->manifests = db_column_int64(st, 2);
    out->repos = db_column_int64(st, 3);
    out->uploads = db_column_int64(st, 4);
    db_reset(st);
    return 0;
}
