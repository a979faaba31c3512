/* migrate_dump.c - migrate_dump (migrate.h): a PostgreSQL snapshot into a new SQLite registry, for `berth backup`. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "blobstore.h"
#include "db.h"
#include "err.h"
#include "migrate.h"
#include "migrate_internal.h"

/* ---- the other direction: a PostgreSQL snapshot into a new SQLite registry (berth backup) ---- */

/* PostgreSQL tables that are not registry rows: the schema's version, the secrets (dumped as keys/ files), and the
 * cluster's counts of failed authentication (authfail.h: rate-limit state, not dumped). */
static const char *const pg_own[] = {"schema_version", "shared_keys", "auth_failures"};

/* Every PostgreSQL table must be dumped or deliberately left out (as check_tables in migrate.c for the SQLite source).
 */
static int dump_check_tables(struct run *r)
{
    struct db_stmt *st = db_prepare(r->src, "SELECT table_name FROM information_schema.tables WHERE table_schema = "
                                            "current_schema() AND table_type = 'BASE TABLE' ORDER BY 1");
    int rc = st != NULL ? DB_DONE : BERR_DB;
    while (st != NULL && (rc = db_step(st)) == DB_ROW) {
        const char *t = db_column_text(st, 0);
        if (migrate__in_list(t, migrate__copied, migrate__ncopied) ||
            migrate__in_list(t, migrate__skipped, migrate__nskipped) ||
            migrate__in_list(t, pg_own, sizeof(pg_own) / sizeof(pg_own[0])))
            continue;
        rc = migrate__fail(r, BERR_INTERNAL, "PostgreSQL table %s is unknown to this berth (newer berth?)", t);
        break;
    }
    db_finalize(st);
    return rc == DB_DONE ? 0 : rc < 0 ? rc : migrate__fail(r, BERR_DB, "PostgreSQL: %s", db_errmsg(r->src));
}

/* Binds column `i` of a PostgreSQL row to parameter i+1 of a SQLite statement, by the SQLite column's kind. */
static void bind_kind(struct db_stmt *from, struct db_stmt *to, int i, int kind)
{
    const void *p;
    if (db_column_is_null(from, i))
        db_bind_null(to, i + 1);
    else if (kind == COL_INT)
        db_bind_int64(to, i + 1, db_column_int64(from, i));
    else if (kind == COL_BLOB) {
        p = db_column_blob(from, i);
        db_bind_blob(to, i + 1, p != NULL ? p : "", db_column_bytes(from, i));
    } else
        db_bind_text(to, i + 1, db_column_text(from, i), -1);
}

/* Copies one FETCH of the cursor into `to`.  Returns the rows copied or a BERR code. */
static long dump_fetch(struct run *r, const char *table, struct db_stmt *to, const struct cols *cl)
{
    char sql[64];
    struct db_stmt *f;
    long n = 0;
    int rc;
    snprintf(sql, sizeof(sql), "FETCH %d FROM berth_dump", MIGRATE_BATCH);
    if ((f = db_prepare(r->src, sql)) == NULL)
        return migrate__fail(r, BERR_DB, "PostgreSQL table %s: %s", table, db_errmsg(r->src));
    while ((rc = db_step(f)) == DB_ROW) {
        db_reset(to);
        db_clear_bindings(to);
        for (int i = 0; i < cl->n; i++)
            bind_kind(f, to, i, cl->kind[i]);
        if (db_step(to) != DB_DONE) {
            db_finalize(f);
            return migrate__fail(r, BERR_DB, "snapshot table %s: %s", table, db_errmsg(r->dst));
        }
        n++;
    }
    db_finalize(f);
    return rc == DB_DONE ? n : migrate__fail(r, BERR_DB, "PostgreSQL table %s: %s", table, db_errmsg(r->src));
}

/* The PostgreSQL table must have exactly the columns of its SQLite twin: a column only PostgreSQL had would be
 * dropped silently. */
static int dump_check_cols(struct run *r, const char *table, const struct cols *cl)
{
    struct db_stmt *st = db_prepare(r->src, "SELECT count(*) FROM information_schema.columns WHERE table_schema = "
                                            "current_schema() AND table_name = ?");
    int64_t n = -1;
    if (st != NULL) {
        db_bind_text(st, 1, table, -1);
        if (db_step(st) == DB_ROW)
            n = db_column_int64(st, 0);
    }
    db_finalize(st);
    if (n < 0)
        return migrate__fail(r, BERR_DB, "PostgreSQL: %s", db_errmsg(r->src));
    if (n != cl->n)
        return migrate__fail(r, BERR_INTERNAL,
                             "PostgreSQL table %s has %lld columns, its SQLite twin %d (schemas differ)", table,
                             (long long)n, cl->n);
    return 0;
}

/* Copies PostgreSQL table `table` (the columns the SQLite schema declares) into the SQLite snapshot. */
static int dump_table(struct run *r, const char *table)
{
    char ins[MIGRATE_SQL_MAX], sel[MIGRATE_SQL_MAX];
    struct cols cl;
    struct db_stmt *to;
    long n;
    int rc;
    if ((rc = migrate__upsert_sql(r, r->dst->h, table, ins, sizeof(ins), &cl)) != 0 ||
        (rc = dump_check_cols(r, table, &cl)) != 0)
        return rc;
    snprintf(sel, sizeof(sel), "DECLARE berth_dump NO SCROLL CURSOR FOR SELECT %s FROM %s", cl.names, table);
    if (db_exec(r->src, sel) != 0)
        return migrate__fail(r, BERR_DB, "PostgreSQL table %s: %s", table, db_errmsg(r->src));
    if ((to = db_prepare(r->dst, ins)) == NULL)
        return migrate__fail(r, BERR_DB, "snapshot table %s: %s", table, db_errmsg(r->dst));
    do {
        n = dump_fetch(r, table, to, &cl);
        r->s->rows += n > 0 ? (uint64_t)n : 0;
    } while (n == MIGRATE_BATCH);
    db_finalize(to);
    if (n < 0)
        return (int)n;
    if (db_exec(r->src, "CLOSE berth_dump") != 0)
        return migrate__fail(r, BERR_DB, "PostgreSQL: %s", db_errmsg(r->src));
    r->s->tables++;
    return 0;
}

/* shared_keys rows -> <dir>/keys/<name> (0600). */
static int dump_keys(struct run *r, const char *dir)
{
    char path[BLOBSTORE_PATH_MAX + 300];
    struct db_stmt *st;
    int rc = 0, s;
    snprintf(path, sizeof(path), "%s/keys", dir);
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return migrate__fail(r, berr_from_errno(errno), "cannot create %s: %s", path, strerror(errno));
    if ((st = db_prepare(r->src, "SELECT name, value FROM shared_keys ORDER BY name")) == NULL)
        return migrate__fail(r, BERR_DB, "PostgreSQL: %s", db_errmsg(r->src));
    while (rc == 0 && (s = db_step(st)) == DB_ROW) {
        const char *name = db_column_text(st, 0);
        const void *v = db_column_blob(st, 1);
        size_t len = (size_t)db_column_bytes(st, 1);
        int fd, ok;
        if (name == NULL || name[0] == '.' || name[0] == '\0' || strchr(name, '/') != NULL || strlen(name) > 64) {
            rc = migrate__fail(r, BERR_INTERNAL, "shared_keys has a row named %s", name != NULL ? name : "NULL");
            break;
        }
        snprintf(path, sizeof(path), "%s/keys/%s", dir, name);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ok = fd >= 0 && (len == 0 || write(fd, v, len) == (ssize_t)len);
        if (fd >= 0)
            close(fd);
        if (!ok)
            rc = migrate__fail(r, BERR_IO, "cannot write %s", path);
        r->s->keys++;
    }
    if (rc == 0 && s != DB_DONE)
        rc = migrate__fail(r, BERR_DB, "PostgreSQL: %s", db_errmsg(r->src));
    db_finalize(st);
    return rc;
}

/* The dump itself, both connections open. */
static int dump_all(struct run *r, const char *dir)
{
    int rc;
    if (db_begin_read(r->src) != 0)
        return migrate__fail(r, BERR_DB, "PostgreSQL: %s", db_errmsg(r->src));
    if ((rc = dump_check_tables(r)) != 0)
        goto out;
    if (db_begin(r->dst) != 0) {
        rc = migrate__fail(r, BERR_DB, "snapshot: %s", db_errmsg(r->dst));
        goto out;
    }
    rc = dump_table(r, "blobs");
    for (size_t i = 0; rc == 0 && i < migrate__ncopied; i++)
        rc = dump_table(r, migrate__copied[i]);
    if (rc != 0)
        db_rollback(r->dst);
    else if (db_commit(r->dst) != 0)
        rc = migrate__fail(r, BERR_DB, "snapshot: %s", db_errmsg(r->dst));
    if (rc == 0 && (rc = migrate__recompute(r)) == 0)
        rc = dump_keys(r, dir);
out:
    db_rollback(r->src); /* a read-only snapshot: nothing to commit */
    return rc;
}

int migrate_dump(const char *metadata, const char *dir, struct migrate_summary *s, char *err, size_t errlen)
{
    struct migrate_opts o = {.to_data = dir};
    struct run r = {.o = &o, .s = s, .err = err, .errlen = errlen, .origin = "PostgreSQL"};
    char path[BLOBSTORE_PATH_MAX + 16];
    int rc;
    memset(s, 0, sizeof(*s));
    err[0] = '\0';
    snprintf(path, sizeof(path), "%s/%s", dir, DB_FILE);
    if (access(path, F_OK) == 0)
        return migrate__fail(&r, BERR_INTERNAL, "%s exists already", path);
    if (db_set_metadata(metadata) != 0 || !db_metadata_is_pg())
        return migrate__fail(&r, BERR_BAD_REQUEST, "the metadata setting is not a postgresql:// URL");
    if (db_open(dir, &r.src) != 0)
        return migrate__fail(&r, BERR_DB, "cannot connect to the PostgreSQL database of the metadata setting");
    db_set_metadata("sqlite");
    rc = db_open(dir, &r.dst) == 0 ? 0 : migrate__fail(&r, BERR_DB, "cannot create %s", path);
    db_set_metadata(metadata);
    if (rc == 0 && (rc = dump_all(&r, dir)) == 0 && db_exec(r.dst, "PRAGMA journal_mode=DELETE") != 0)
        rc = migrate__fail(&r, BERR_DB, "snapshot: %s", db_errmsg(r.dst));
    db_close(r.dst);
    db_close(r.src);
    return rc;
}
