/*
 * migrate_internal.h - what storage/migrate.c (migrate_run, migrate_put_blob) shares with storage/migrate_dump.c
 * (migrate_dump), and nothing else.  Names with migrate__ are internal to these two files; migrate.h is the public
 * face.
 */
#ifndef BERTH_MIGRATE_INTERNAL_H
#define BERTH_MIGRATE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>
#include "blobstore.h"
#include "db.h"
#include "migrate.h"

/** Tables copied, parents before children (foreign keys): migrate__copied[0 .. migrate__ncopied).  `blobs` is
 *  copied with the blob contents. */
extern const char *const migrate__copied[];
extern const size_t migrate__ncopied;
/** Tables deliberately not copied (migrate.h says why): migrate__skipped[0 .. migrate__nskipped). */
extern const char *const migrate__skipped[];
extern const size_t migrate__nskipped;

/* One run: a migration, a dump, or one blob of migrate_put_blob. */
struct run {
    const struct migrate_opts *o;
    struct migrate_summary *s;
    struct db *src, *dst;
    struct blobstore bs_src; /* the source's blobs/ */
    char *err;
    size_t errlen;
    uint64_t done, total;
    unsigned char *buf; /* MIGRATE_CHUNK bytes */
    migrate_read_fn rd; /* the bytes of the blob being copied */
    void *rctx;
    const char *origin; /* where blobs come from, for messages: "the source", "the archive" */
};

/* Column kinds, from the SQLite schema's declared types (how a PostgreSQL value is bound into SQLite). */
enum { COL_TEXT, COL_INT, COL_BLOB };

/* The columns of one table, from a SQLite schema. */
struct cols {
    int n;
    int kind[MIGRATE_COLS_MAX];
    char names[MIGRATE_SQL_MAX / 4]; /* "a", "b", … */
};

/** Writes the message into r->err and returns `rc`. */
__attribute__((format(printf, 3, 4))) int migrate__fail(struct run *r, int rc, const char *fmt, ...);
/** 1 if `name` is one of list[0 .. n), else 0. */
int migrate__in_list(const char *name, const char *const *list, size_t n);
/** The upsert of `table` for the columns `schema` (a SQLite connection) declares, and those columns.  Returns 0 or a
 *  BERR code (message in r->err). */
int migrate__upsert_sql(struct run *r, sqlite3 *schema, const char *table, char *sql, size_t size, struct cols *cl);
/** Recomputes repos.bytes, quotas.used and stats from the copied rows, and PostgreSQL's identity sequences past the
 *  copied ids, on r->dst.  Returns 0 or a BERR code (message in r->err). */
int migrate__recompute(struct run *r);

#endif
