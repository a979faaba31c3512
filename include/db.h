/*
 * db.h - the SQLite metadata database: opening (WAL, foreign keys, busy timeout), migrations, transactions and a
 * per-connection cache of prepared statements.
 *
 * Threading: a struct db is one SQLite connection and must be used by one thread at a time.  The server gives every
 * event-loop thread its own read connection and funnels all writes through the writer thread (writer.h), which
 * groups concurrent commits into one transaction.
 *
 * Durability: synchronous=FULL in WAL mode, so a committed transaction survives power loss; together with
 * blobstore's fsyncs this gives "acknowledged means durable".
 */
#ifndef BERTH_DB_H
#define BERTH_DB_H

#include <sqlite3.h>

#define DB_FILE "berth.db"
#define DB_SCHEMA_VERSION 11 /* PRAGMA user_version after all migrations */
#define DB_STMT_MAX 128      /* statement-cache slots per connection */

/*
 * Statement-cache slots: one namespace for every module, cut into one range per module here, so that two modules
 * can never share a slot (a collision would silently run the other module's SQL).  A module that caches statements:
 *   1. appends ONE line to the enum below:   DB_RANGE(MYMOD, <previous module>, <number of statements>),
 *   2. numbers its statements from DB_SLOTS_MYMOD:   enum { S_FOO = DB_SLOTS_MYMOD, S_BAR, S_MYMOD_END };
 *   3. checks them at compile time:   DB_SLOTS_CHECK(MYMOD, S_MYMOD_END);
 * DB_SLOTS_CHECK fails the build if the module outgrows its range or the range does not fit in DB_STMT_MAX.
 */
#define DB_RANGE(mod, prev, n) DB_SLOTS_##mod = DB_SLOTS_##prev##_END, DB_SLOTS_##mod##_END = DB_SLOTS_##mod + (n)
enum db_slot_ranges {
    DB_SLOTS_NONE_END = 0,
    DB_RANGE(META, NONE, 40),      /* storage/meta.c */
    DB_RANGE(AUTHDB, META, 12),    /* storage/authdb.c */
    DB_RANGE(STATS, AUTHDB, 1),    /* storage/stats.c */
    DB_RANGE(EVENTS, STATS, 5),    /* storage/events.c */
    DB_RANGE(QUOTA, EVENTS, 7),    /* storage/quota.c */
    DB_RANGE(ECRDB, QUOTA, 28),    /* storage/ecrdb.c */
    DB_RANGE(ACCESSKEY, ECRDB, 2), /* storage/accesskey.c */
};
#define DB_SLOTS_CHECK(mod, end)                                                                                       \
    _Static_assert((int)(end) <= (int)DB_SLOTS_##mod##_END && (int)DB_SLOTS_##mod##_END <= DB_STMT_MAX,                \
                   #mod ": more statements than its slot range in db.h, or the range exceeds DB_STMT_MAX")

struct db {
    sqlite3 *h;
    sqlite3_stmt *stmts[DB_STMT_MAX];
};

/** Opens (creating and migrating if needed) `<datadir>/berth.db`.  Returns 0 or BERR_DB; *out is malloc'd. */
int db_open(const char *datadir, struct db **out);
/** Finalizes cached statements and closes the connection (safe on NULL). */
void db_close(struct db *db);

/** Returns the cached prepared statement in slot `slot` (preparing `sql` the first time), reset and with its
 *  bindings cleared; NULL on error (or if `slot` is out of range).  Each call site uses its own constant slot from
 *  its module's range (see DB_RANGE above). */
sqlite3_stmt *db_stmt(struct db *db, int slot, const char *sql);
/** Prepares `sql` without caching it (for the rare statements of GC, lifecycle runs and fsck): the caller finalizes
 *  it.  Returns NULL on error, which is logged with the statement's start. */
sqlite3_stmt *db_prepare(struct db *db, const char *sql);

/** BEGIN IMMEDIATE (takes the write lock now, so GC and commits serialize).  Returns 0 or BERR_DB. */
int db_begin(struct db *db);
/** COMMIT.  Returns 0 or BERR_DB. */
int db_commit(struct db *db);
/** ROLLBACK (ignores errors). */
void db_rollback(struct db *db);
/** Runs one SQL statement without results.  Returns 0 or BERR_DB. */
int db_exec(struct db *db, const char *sql);

/** Logs the connection's last SQLite error and returns BERR_DB, or BERR_NOSPACE for SQLITE_FULL (for
 *  `return db_error(db);`).  db_exec, db_begin and db_commit map SQLITE_FULL the same way. */
int db_error(struct db *db);
/** 1 while a transaction is open.  SQLite rolls a transaction back by itself on some errors (SQLITE_FULL among
 *  them): a caller running several statements in one transaction checks this after a failure. */
int db_in_txn(struct db *db);
/** The BERR code of the connection's last error: BERR_NOSPACE for SQLITE_FULL, else BERR_DB (for callers that
 *  got a plain BERR_DB from a query helper). */
int db_last_error(struct db *db);

/** Seconds since the epoch, the one clock metadata uses. */
long long db_now(void);

#endif
