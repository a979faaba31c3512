/*
 * db.h - the metadata database: one backend-neutral statement API over SQLite (the embedded default, berth.db in the
 * data directory) and PostgreSQL (libpq, for several nodes sharing one database; storage/db_pg.c): opening,
 * migrations, transactions, and a per-connection cache of prepared statements.
 *
 * SQL is written once, in the subset both engines speak: `?` placeholders (db_pg.c rewrites them to $1, $2, …),
 * ON CONFLICT … DO NOTHING / DO UPDATE, RETURNING, coalesce, no INSERT OR IGNORE/REPLACE, no rowid, no
 * SQLite-only functions.  Where one query cannot be portable, the call site picks per backend (db_is_pg).  Schemas
 * differ: SQLite's migrations live in db.c, PostgreSQL's equivalent in schema_pg.c, both versioned by count.
 *
 * The backend is chosen once per process, before any thread opens a connection (db_set_metadata): "sqlite" (the
 * default) or a libpq URL "postgresql://…".  The SQLite path costs one predictable branch per call: the wrappers
 * below are inline and test for SQLite first.
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

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

#define DB_FILE "berth.db"
#define DB_SCHEMA_VERSION 11 /* PRAGMA user_version after all migrations */
#define DB_STMT_MAX 128      /* statement-cache slots per connection */
#define DB_METADATA_MAX 1024 /* bytes of a metadata setting (a libpq URL) */

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

/* Results of db_step (equal to SQLite's codes, so the SQLite path returns sqlite3_step's result unchanged). */
#define DB_ROW SQLITE_ROW   /* a row is ready: read it with db_column_* */
#define DB_DONE SQLITE_DONE /* no more rows (or the statement ran) */
/* anything else from db_step is an error: db_error(db) logs it and maps it to a BERR code */

enum db_kind { DB_SQLITE = 0, DB_PG = 1 };

struct db_pgstmt; /* db_pg.c */
struct db_pgconn; /* db_pg.c */

/** A prepared statement: cached ones live in their connection's slots (db_stmt), uncached ones are malloc'd by
 *  db_prepare and freed by db_finalize. */
struct db_stmt {
    sqlite3_stmt *s;      /* SQLite: the statement; NULL on PostgreSQL */
    struct db_pgstmt *pg; /* PostgreSQL: name, parameters, result and row cursor */
    struct db *db;        /* the connection it belongs to */
};

/** One connection (SQLite or PostgreSQL), used by one thread at a time. */
struct db {
    int kind;             /* enum db_kind */
    sqlite3 *h;           /* SQLite */
    struct db_pgconn *pg; /* PostgreSQL */
    struct db_stmt stmts[DB_STMT_MAX];
    int maint_held;         /* db_maint_trylock's lock was taken on this connection ... */
    unsigned maint_session; /* ... in this db_session(): db_begin refuses once the session is another */
};

/** Chooses the metadata backend for every later db_open: NULL, "" or "sqlite" = SQLite in the data directory;
 *  "postgresql://…" or "postgres://…" = that PostgreSQL database.  Call once at startup, before threads open
 *  connections.  Returns 0, or BERR_BAD_REQUEST for anything else. */
int db_set_metadata(const char *metadata);
/** 1 when db_set_metadata chose PostgreSQL. */
int db_metadata_is_pg(void);

/** Opens a connection: SQLite `<datadir>/berth.db` (created and migrated if needed), or the PostgreSQL database
 *  of db_set_metadata (schema created and migrated if needed; `datadir` unused).  Returns 0 or BERR_DB; *out is
 *  malloc'd. */
int db_open(const char *datadir, struct db **out);
/** Finalizes cached statements and closes the connection (safe on NULL). */
void db_close(struct db *db);
/** 1 on a PostgreSQL connection. */
static inline int db_is_pg(const struct db *db)
{
    return db->kind == DB_PG;
}

/** Returns the cached prepared statement in slot `slot` (preparing `sql` the first time), reset and with its
 *  bindings cleared; NULL on error (or if `slot` is out of range).  Each call site uses its own constant slot from
 *  its module's range (see DB_RANGE above). */
struct db_stmt *db_stmt(struct db *db, int slot, const char *sql);
/** Prepares `sql` without caching it (for the rare statements of GC, lifecycle runs and fsck): the caller frees
 *  it with db_finalize.  Returns NULL on error, which is logged with the statement's start.  On PostgreSQL the text
 *  is only parsed when it first runs: a malformed statement fails at db_step instead. */
struct db_stmt *db_prepare(struct db *db, const char *sql);
/** Frees a statement from db_prepare (safe on NULL). */
void db_finalize(struct db_stmt *st);

/* The PostgreSQL halves of the inline wrappers below (db_pg.c); never call them directly. */
int db__pg_bind(struct db_stmt *st, int i, int type, const void *p, int64_t n);
int db__pg_step(struct db_stmt *st);
void db__pg_reset(struct db_stmt *st);
void db__pg_clear(struct db_stmt *st);
int64_t db__pg_int64(struct db_stmt *st, int col);
const char *db__pg_text(struct db_stmt *st, int col);
const void *db__pg_blob(struct db_stmt *st, int col);
int db__pg_bytes(struct db_stmt *st, int col);
int db__pg_is_null(struct db_stmt *st, int col);
int db__pg_changes(struct db *db);
enum { DB__NULL, DB__INT, DB__TEXT, DB__TEXT_COPY, DB__BLOB };

/** Binds parameter `i` (1-based) to an integer.  Returns 0 or an error code (the statement then fails). */
static inline int db_bind_int64(struct db_stmt *st, int i, int64_t v)
{
    return st->s ? sqlite3_bind_int64(st->s, i, v) : db__pg_bind(st, i, DB__INT, NULL, v);
}
/** Binds parameter `i` to text `s` of `n` bytes (-1 = up to the NUL).  `s` must stay valid until the statement is
 *  reset or stepped to DB_DONE (SQLITE_STATIC). */
static inline int db_bind_text(struct db_stmt *st, int i, const char *s, int n)
{
    return st->s ? sqlite3_bind_text(st->s, i, s, n, SQLITE_STATIC) : db__pg_bind(st, i, DB__TEXT, s, n);
}
/** Binds parameter `i` to a copy of text `s` (for buffers that die before the statement runs). */
static inline int db_bind_text_copy(struct db_stmt *st, int i, const char *s, int n)
{
    return st->s ? sqlite3_bind_text(st->s, i, s, n, SQLITE_TRANSIENT) : db__pg_bind(st, i, DB__TEXT, s, n);
}
/** Binds parameter `i` to `n` bytes at `p` (kept by reference like db_bind_text). */
static inline int db_bind_blob(struct db_stmt *st, int i, const void *p, int n)
{
    return st->s ? sqlite3_bind_blob(st->s, i, p, n, SQLITE_STATIC) : db__pg_bind(st, i, DB__BLOB, p, n);
}
/** Binds parameter `i` to NULL. */
static inline int db_bind_null(struct db_stmt *st, int i)
{
    return st->s ? sqlite3_bind_null(st->s, i) : db__pg_bind(st, i, DB__NULL, NULL, 0);
}
/** Clears every binding to NULL. */
static inline void db_clear_bindings(struct db_stmt *st)
{
    if (st->s)
        sqlite3_clear_bindings(st->s);
    else
        db__pg_clear(st);
}
/** Runs the statement (on PostgreSQL: executes it on the first call) and advances to the next row: DB_ROW, DB_DONE,
 *  or another value for an error (see db_error). */
static inline int db_step(struct db_stmt *st)
{
    return st->s ? sqlite3_step(st->s) : db__pg_step(st);
}
/** Resets the statement so that it can run again (bindings are kept). */
static inline void db_reset(struct db_stmt *st)
{
    if (st->s)
        sqlite3_reset(st->s);
    else
        db__pg_reset(st);
}
/** Column `col` (0-based) of the current row as an integer (0 for NULL). */
static inline int64_t db_column_int64(struct db_stmt *st, int col)
{
    return st->s ? sqlite3_column_int64(st->s, col) : db__pg_int64(st, col);
}
/** Column `col` as NUL-terminated text, NULL for NULL; valid until the next step or reset. */
static inline const char *db_column_text(struct db_stmt *st, int col)
{
    return st->s ? (const char *)sqlite3_column_text(st->s, col) : db__pg_text(st, col);
}
/** Column `col` as bytes (a blob), NULL for NULL or empty; valid until the next step or reset. */
static inline const void *db_column_blob(struct db_stmt *st, int col)
{
    return st->s ? sqlite3_column_blob(st->s, col) : db__pg_blob(st, col);
}
/** The size in bytes of column `col` (call after db_column_blob or db_column_text). */
static inline int db_column_bytes(struct db_stmt *st, int col)
{
    return st->s ? sqlite3_column_bytes(st->s, col) : db__pg_bytes(st, col);
}
/** 1 when column `col` of the current row is NULL. */
static inline int db_column_is_null(struct db_stmt *st, int col)
{
    return st->s ? sqlite3_column_type(st->s, col) == SQLITE_NULL : db__pg_is_null(st, col);
}
/** Rows changed by the connection's last INSERT, UPDATE or DELETE. */
static inline int db_changes(struct db *db)
{
    return db->kind == DB_SQLITE ? sqlite3_changes(db->h) : db__pg_changes(db);
}

/** Begins a write transaction: BEGIN IMMEDIATE on SQLite (takes the write lock now, so GC and commits serialize);
 *  on PostgreSQL BEGIN plus pg_advisory_xact_lock(DB_PG_WRITE_KEY), which serializes writers cluster-wide the same
 *  way.  While this connection holds the maintenance lock (db_maint_trylock), a transaction on a connection that was
 *  re-established since (the lock went with the lost session, maybe to another node) is refused: BERR_UNAVAILABLE,
 *  so a lifecycle run or GC stops at its next batch instead of running on beside another node.  Returns 0, BERR_DB
 *  or BERR_UNAVAILABLE. */
int db_begin(struct db *db);
/** Begins a read-only snapshot (SQLite: deferred BEGIN; PostgreSQL: REPEATABLE READ, READ ONLY).  End it with
 *  db_commit or db_rollback.  Returns 0 or BERR_DB. */
int db_begin_read(struct db *db);
/** Takes the cluster-wide maintenance lock (lifecycle runs and GC run on one node at a time): on PostgreSQL
 *  pg_try_advisory_lock(DB_PG_MAINT_KEY) for this session; on SQLite always granted (one process per data
 *  directory).  Returns 1 if taken (release it with db_maint_unlock), 0 if another node holds it. */
int db_maint_trylock(struct db *db);
/** Releases db_maint_trylock's lock (nothing on SQLite, nor when the session that held it was lost). */
void db_maint_unlock(struct db *db);
/** Like db_maint_trylock for a lock named `name` (e.g. one webhook's delivery), held until the connection closes:
 *  returns 1 if this connection holds it (always on SQLite), 0 if another node's connection does. */
int db_named_trylock(struct db *db, const char *name);
/** The server session of the connection: a number that changes whenever the connection is re-established after
 *  a loss (PostgreSQL), which also drops the session's advisory locks (db_maint_trylock, db_named_trylock); a lock
 *  holder compares it with the value it had when it took the lock.  Always 0 on SQLite. */
unsigned db_session(struct db *db);
/** COMMIT.  Returns 0 or BERR_DB (BERR_NOSPACE for a full disk). */
int db_commit(struct db *db);
/** ROLLBACK (ignores errors). */
void db_rollback(struct db *db);
/** Runs SQL without results (several statements separated by ';' allowed, no parameters).  Returns 0 or BERR_DB. */
int db_exec(struct db *db, const char *sql);

/** Logs the connection's last error and returns its BERR code (db_last_error), for `return db_error(db);`. */
int db_error(struct db *db);
/** The connection's last error message. */
const char *db_errmsg(struct db *db);
/** 1 while a transaction is open.  SQLite rolls a transaction back by itself on some errors (SQLITE_FULL among
 *  them): a caller running several statements in one transaction checks this after a failure. */
int db_in_txn(struct db *db);
/** The BERR code of the connection's last error: BERR_NOSPACE for a full disk (SQLITE_FULL, PostgreSQL SQLSTATE
 *  53100); BERR_UNAVAILABLE when the PostgreSQL connection was lost (the statement may be retried later); everything
 *  else is BERR_DB.  db_last_constraint tells constraint violations apart. */
int db_last_error(struct db *db);
/** 1 while the metadata database cannot be reached: this process's last attempt to (re)connect to PostgreSQL
 *  failed (always 0 on SQLite).  The HTTP layer then answers BERR_UNAVAILABLE (503) for a database error. */
int db_unreachable(void);
/** 1 when the connection's last error was a constraint violation (SQLITE_CONSTRAINT, SQLSTATE class 23). */
int db_last_constraint(struct db *db);

/** Seconds since the epoch, the one clock metadata uses. */
long long db_now(void);

/** Bytes of heap SQLite holds in this process (sqlite3_memory_used: every connection's page cache and statements;
 *  each page cache is bounded by SQLite's cache_size).  0 when only PostgreSQL is used. */
long long db_sqlite_memory(void);

#endif
