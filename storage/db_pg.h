/*
 * db_pg.h - the PostgreSQL half of db.h, internal to storage/ (db.c dispatches here when the connection is
 * PostgreSQL; modules never include this file).
 */
#ifndef BERTH_DB_PG_H
#define BERTH_DB_PG_H

#include "db.h"

/** The advisory-lock key every write transaction takes right after BEGIN (db_begin): writes serialize
 *  cluster-wide exactly as BEGIN IMMEDIATE serializes them on one SQLite file.  ASCII "berthwr". */
#define DB_PG_WRITE_KEY 0x6265727468777200LL

/** The session-level advisory-lock key of lifecycle + GC runs (db_maint_trylock).  ASCII "berthgc". */
#define DB_PG_MAINT_KEY 0x6265727468676300LL

/** Connects to `url`, then creates or migrates the schema (schema_pg.c) once per process.  Returns 0 or BERR_DB
 *  (logged). */
int db__pg_open(struct db *db, const char *url);
/** Closes the connection. */
void db__pg_close(struct db *db);
/** Prepares `sql` (with `?` placeholders) as statement `st`: slot >= 0 prepares it on the server as "s<slot>"
 *  (cached); -1 keeps the rewritten text for PQexecParams at each execution.  Returns 0 or BERR_DB. */
int db__pg_prepare(struct db_stmt *st, const char *sql, int slot);
/** The cached-slot form of db_stmt: prepares on first use, else resets and clears the bindings. */
int db__pg_cached(struct db_stmt *st, const char *sql, int slot);
/** Frees the PostgreSQL state of `st` (deallocating an uncached statement); safe when it has none. */
void db__pg_stmt_free(struct db_stmt *st);
/** Runs `sql` through the simple-query protocol (several statements allowed).  Returns 0 or the BERR code. */
int db__pg_exec(struct db *db, const char *sql);
/** BEGIN; SELECT pg_advisory_xact_lock(DB_PG_WRITE_KEY).  Returns 0 or BERR_DB. */
int db__pg_begin(struct db *db);
/** See db_errmsg, db_in_txn, db_last_error and db_last_constraint. */
const char *db__pg_errmsg(struct db *db);
int db__pg_in_txn(struct db *db);
/** The number of reconnects of this connection (db_session). */
unsigned db__pg_gen(struct db *db);
int db__pg_last_error(struct db *db);
int db__pg_unreachable(void);
int db__pg_last_constraint(struct db *db);

/** Creates or migrates the PostgreSQL schema on `db` (schema_pg.c), serialized cluster-wide by the write lock.
 *  Returns 0 or BERR_DB. */
int schema_pg_migrate(struct db *db);

#endif
