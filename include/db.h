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
#define DB_SCHEMA_VERSION 2 /* PRAGMA user_version after all migrations */
#define DB_STMT_MAX 64      /* statement-cache slots per connection */

struct db {
    sqlite3 *h;
    sqlite3_stmt *stmts[DB_STMT_MAX];
};

/** Opens (creating and migrating if needed) `<datadir>/berth.db`.  Returns 0 or BERR_DB; *out is malloc'd. */
int db_open(const char *datadir, struct db **out);
/** Finalizes cached statements and closes the connection (safe on NULL). */
void db_close(struct db *db);

/** Returns the cached prepared statement in slot `slot` (preparing `sql` the first time), reset and with its
 *  bindings cleared; NULL on error.  Each call site uses its own constant slot. */
sqlite3_stmt *db_stmt(struct db *db, int slot, const char *sql);

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
