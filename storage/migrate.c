/* migrate.c - copying a single-node registry into another metadata backend and blobstore (migrate.h); the other
 * direction, migrate_dump, is in migrate_dump.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "blobstore.h"
#include "db.h"
#include "digest.h"
#include "err.h"
#include "fault.h"
#include "migrate.h"
#include "migrate_internal.h"
#include "s3.h"

/* Tables copied, parents before children (foreign keys).  `blobs` is copied with the blob contents. */
const char *const migrate__copied[] = {
    "repos",       "repo_blobs",      "manifests", "manifest_blobs", "manifest_children",
    "tags",        "users",           "tokens",    "grants",         "lifecycle_policies",
    "access_keys", "ecr_repos",       "ecr_tags",  "ecr_settings",   "ecr_lifecycle_previews",
    "events",      "webhook_cursors", "quotas",
};
const size_t migrate__ncopied = sizeof(migrate__copied) / sizeof(migrate__copied[0]);
/* Tables deliberately not copied (migrate.h says why). */
const char *const migrate__skipped[] = {"blobs", "uploads", "upload_s3", "gc_pending", "stats"};
const size_t migrate__nskipped = sizeof(migrate__skipped) / sizeof(migrate__skipped[0]);

int migrate__fail(struct run *r, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, r->errlen, fmt, ap);
    va_end(ap);
    return rc;
}

static void tick(struct run *r, uint64_t n)
{
    r->done += n;
    if (r->o->progress != NULL)
        r->o->progress(r->o->progress_arg, r->done, r->total);
}

int migrate__in_list(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0)
            return 1;
    return 0;
}

/* ---- the source's shape ---- */

/* Every source table must be in migrate__copied or migrate__skipped: a table added later is never dropped silently. */
static int check_tables(struct run *r)
{
    sqlite3_stmt *st;
    int rc;
    if (sqlite3_prepare_v2(r->src->h, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name", -1, &st,
                           NULL) != SQLITE_OK)
        return migrate__fail(r, BERR_DB, "source: %s", sqlite3_errmsg(r->src->h));
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        if (strncmp(t, "sqlite_", 7) == 0 || migrate__in_list(t, migrate__copied, migrate__ncopied) ||
            migrate__in_list(t, migrate__skipped, migrate__nskipped))
            continue;
        rc = migrate__fail(r, BERR_INTERNAL, "source table %s is unknown to this migrate (newer berth?)", t);
        break;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : rc == SQLITE_ROW ? BERR_DB : rc < 0 ? rc : BERR_DB;
}

/* 1 if the source has a row of `table` with this id and name, 0 if not, or a BERR code. */
static int source_has(struct run *r, const char *table, int64_t id, const char *name)
{
    char sql[128];
    sqlite3_stmt *st;
    int rc;
    snprintf(sql, sizeof(sql), "SELECT 1 FROM %s WHERE id = ? AND name = ?", table);
    if (sqlite3_prepare_v2(r->src->h, sql, -1, &st, NULL) != SQLITE_OK)
        return BERR_DB;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : BERR_DB;
}

/* Refuses a target with a repository or user the source lacks (another registry's data), unless forced. */
static int check_target(struct run *r)
{
    static const char *const tables[] = {"repos", "users"};
    for (size_t i = 0; i < 2; i++) {
        char sql[64];
        struct db_stmt *st;
        int rc;
        snprintf(sql, sizeof(sql), "SELECT id, name FROM %s ORDER BY id", tables[i]);
        if ((st = db_prepare(r->dst, sql)) == NULL)
            return migrate__fail(r, BERR_DB, "target: %s", db_errmsg(r->dst));
        while ((rc = db_step(st)) == DB_ROW) {
            int64_t id = db_column_int64(st, 0);
            const char *name = db_column_text(st, 1);
            int has = source_has(r, tables[i], id, name);
            if (has == 1)
                continue;
            rc = has < 0
                     ? migrate__fail(r, has, "source: %s", sqlite3_errmsg(r->src->h))
                     : migrate__fail(r, BERR_DENIED,
                                     "the target already holds another registry's data (%s %s, id %lld, is not in the "
                                     "source); use --force to copy into it anyway",
                                     tables[i], name, (long long)id);
            break;
        }
        db_finalize(st);
        if (rc != DB_DONE)
            return rc < 0 ? rc : migrate__fail(r, BERR_DB, "target: %s", db_errmsg(r->dst));
    }
    return 0;
}

/* ---- rows ---- */

/* The upsert of `table` for the columns `schema` (a SQLite connection) declares, and those columns. */
int migrate__upsert_sql(struct run *r, sqlite3 *schema, const char *table, char *sql, size_t size, struct cols *cl)
{
    char set[MIGRATE_SQL_MAX / 2] = "", pk[512] = "", vals[MIGRATE_SQL_MAX / 4] = "", q[128];
    sqlite3_stmt *st;
    int n = 0, rc;
    cl->names[0] = '\0';
    snprintf(q, sizeof(q), "SELECT name, pk, upper(type) FROM pragma_table_info('%s') ORDER BY cid", table);
    if (sqlite3_prepare_v2(schema, q, -1, &st, NULL) != SQLITE_OK)
        return migrate__fail(r, BERR_DB, "schema: %s", sqlite3_errmsg(schema));
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < MIGRATE_COLS_MAX) {
        const char *c = (const char *)sqlite3_column_text(st, 0), *type = (const char *)sqlite3_column_text(st, 2);
        size_t l;
        l = strlen(cl->names);
        snprintf(cl->names + l, sizeof(cl->names) - l, "%s\"%s\"", n ? ", " : "", c); /* quoted: "user" is reserved */
        l = strlen(vals);
        snprintf(vals + l, sizeof(vals) - l, "%s?%d", n ? ", " : "", n + 1);
        cl->kind[n] = type == NULL           ? COL_TEXT
                      : strstr(type, "INT")  ? COL_INT
                      : strstr(type, "BLOB") ? COL_BLOB
                                             : COL_TEXT;
        if (sqlite3_column_int(st, 1) > 0) {
            l = strlen(pk);
            snprintf(pk + l, sizeof(pk) - l, "%s\"%s\"", pk[0] ? ", " : "", c);
        } else {
            l = strlen(set);
            snprintf(set + l, sizeof(set) - l, "%s\"%s\" = excluded.\"%s\"", set[0] ? ", " : "", c, c);
        }
        n++;
    }
    sqlite3_finalize(st);
    if (n == 0 || n >= MIGRATE_COLS_MAX || pk[0] == '\0')
        return migrate__fail(r, BERR_INTERNAL, "table %s: no columns or no primary key", table);
    cl->n = n;
    if (set[0] == '\0')
        snprintf(sql, size, "INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (%s) DO NOTHING", table, cl->names, vals, pk);
    else
        snprintf(sql, size, "INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (%s) DO UPDATE SET %s", table, cl->names, vals,
                 pk, set);
    return 0;
}

/* Binds column `i` of the source row to parameter i+1 of the target statement, by the value's own type. */
static void bind_value(sqlite3_stmt *from, struct db_stmt *to, int i)
{
    switch (sqlite3_column_type(from, i)) {
    case SQLITE_NULL:
        db_bind_null(to, i + 1);
        break;
    case SQLITE_INTEGER:
        db_bind_int64(to, i + 1, sqlite3_column_int64(from, i));
        break;
    case SQLITE_BLOB:
        db_bind_blob(to, i + 1, sqlite3_column_blob(from, i), sqlite3_column_bytes(from, i));
        break;
    default: /* text (a REAL is never stored by berth; it would travel as its text) */
        db_bind_text(to, i + 1, (const char *)sqlite3_column_text(from, i), sqlite3_column_bytes(from, i));
        break;
    }
}

/* Upserts the rows of `from` (stepped here) with `to`, MIGRATE_BATCH per target transaction. */
static int copy_rows(struct run *r, const char *table, sqlite3_stmt *from, struct db_stmt *to, int ncols)
{
    uint64_t n = 0;
    int rc;
    if (db_begin(r->dst) != 0)
        return migrate__fail(r, BERR_DB, "target: %s", db_errmsg(r->dst));
    while ((rc = sqlite3_step(from)) == SQLITE_ROW) {
        db_reset(to);
        db_clear_bindings(to);
        for (int i = 0; i < ncols; i++)
            bind_value(from, to, i);
        if (db_step(to) != DB_DONE) {
            rc = migrate__fail(r, BERR_DB, "table %s: %s", table, db_errmsg(r->dst));
            db_rollback(r->dst);
            return rc;
        }
        if (++n % MIGRATE_BATCH == 0 && (db_commit(r->dst) != 0 || db_begin(r->dst) != 0))
            return migrate__fail(r, BERR_DB, "table %s: %s", table, db_errmsg(r->dst));
    }
    if (rc != SQLITE_DONE) {
        db_rollback(r->dst);
        return migrate__fail(r, BERR_DB, "source table %s: %s", table, sqlite3_errmsg(r->src->h));
    }
    if (db_commit(r->dst) != 0)
        return migrate__fail(r, BERR_DB, "table %s: %s", table, db_errmsg(r->dst));
    r->s->rows += n;
    return 0;
}

static int copy_table(struct run *r, const char *table)
{
    char sql[MIGRATE_SQL_MAX], q[128];
    struct cols cl;
    sqlite3_stmt *from;
    struct db_stmt *to;
    int rc;
    if ((rc = migrate__upsert_sql(r, r->src->h, table, sql, sizeof(sql), &cl)) != 0)
        return rc;
    snprintf(q, sizeof(q), "SELECT * FROM %s", table);
    if (sqlite3_prepare_v2(r->src->h, q, -1, &from, NULL) != SQLITE_OK)
        return migrate__fail(r, BERR_DB, "source: %s", sqlite3_errmsg(r->src->h));
    if ((to = db_prepare(r->dst, sql)) == NULL) {
        sqlite3_finalize(from);
        return migrate__fail(r, BERR_DB, "target table %s: %s", table, db_errmsg(r->dst));
    }
    rc = copy_rows(r, table, from, to, cl.n);
    db_finalize(to);
    sqlite3_finalize(from);
    if (rc == 0)
        r->s->tables++;
    return rc;
}

/* ---- blobs ---- */

/* 1 if the target has blob `digest`'s row, 0 if not, or a BERR code. */
static int target_has_row(struct run *r, const char *digest)
{
    struct db_stmt *st = db_prepare(r->dst, "SELECT 1 FROM blobs WHERE digest = ?");
    int rc;
    if (st == NULL)
        return BERR_DB;
    db_bind_text(st, 1, digest, -1);
    rc = db_step(st);
    db_finalize(st);
    return rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : BERR_DB;
}

/* migrate_read_fn of a file descriptor (`ctx` points to the int). */
static long fd_read(void *ctx, void *p, size_t n)
{
    for (;;) {
        ssize_t k = read(*(int *)ctx, p, n);
        if (k >= 0)
            return (long)k;
        if (errno != EINTR)
            return berr_from_errno(errno);
    }
}

/* Reads the next chunk of the blob (r->rd) into r->buf, hashing it.  Returns the bytes read (0 at the end) or a
 * BERR code. */
static ssize_t read_chunk(struct run *r, struct digest_ctx *h)
{
    size_t got = 0;
    while (got < MIGRATE_CHUNK) {
        long n = r->rd(r->rctx, r->buf + got, MIGRATE_CHUNK - got);
        if (n < 0)
            return (ssize_t)n;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    digest_ctx_update(h, r->buf, got);
    return (ssize_t)got;
}

static int verify(struct run *r, const char *digest, struct digest_ctx *h, uint64_t got, uint64_t size)
{
    char d[BERTH_DIGEST_MAX];
    digest_ctx_final(h, d);
    if (strcmp(d, digest) != 0 || got != size)
        return migrate__fail(r, BERR_DIGEST_INVALID,
                             "blob %s in %s is corrupt: its %llu bytes hash to %s (the row says %llu bytes); "
                             "nothing of it was stored in the target%s",
                             digest, r->origin, (unsigned long long)got, d, (unsigned long long)size,
                             strcmp(r->origin, "the source") == 0 ? " (run `berth fsck` on the source)" : "");
    return 0;
}

/* Copies blob `digest` (`size` bytes, read with r->rd) to S3: one PutObject, or a multipart upload completed only
 * after the digest matched. */
static int put_s3(struct run *r, const char *digest, uint64_t size)
{
    char key[BLOBSTORE_PATH_MAX], upload[S3_UPLOAD_ID_MAX + 1];
    struct s3_part *parts = NULL;
    struct digest_ctx h;
    uint64_t got = 0;
    size_t n = 0;
    ssize_t len;
    int rc;
    blobstore_key(r->o->to_bs, digest, key, sizeof(key));
    if (digest_ctx_init(&h) != 0)
        return BERR_NOMEM;
    if (size <= MIGRATE_CHUNK) {
        if ((len = read_chunk(r, &h)) < 0) {
            digest_ctx_free(&h);
            return migrate__fail(r, (int)len, "cannot read blob %s from %s", digest, r->origin);
        }
        if ((rc = verify(r, digest, &h, (uint64_t)len, size)) != 0)
            return rc;
        if ((rc = s3_put(r->o->to_bs->s3, key, r->buf, (size_t)len)) != 0)
            return migrate__fail(r, rc, "cannot store blob %s in the bucket", digest);
        tick(r, (uint64_t)len);
        return 0;
    }
    if ((rc = s3_mpu_create(r->o->to_bs->s3, key, upload)) != 0) {
        digest_ctx_free(&h);
        return migrate__fail(r, rc, "cannot start the upload of blob %s", digest);
    }
    while ((len = read_chunk(r, &h)) > 0) {
        void *v = realloc(parts, (n + 1) * sizeof(*parts));
        if (v == NULL) {
            rc = BERR_NOMEM;
            goto abort;
        }
        parts = v;
        parts[n].number = (int)n + 1;
        if ((rc = s3_mpu_part(r->o->to_bs->s3, key, upload, (int)n + 1, r->buf, (size_t)len, parts[n].etag)) != 0)
            goto abort;
        n++;
        got += (uint64_t)len;
        tick(r, (uint64_t)len);
    }
    if (len < 0) {
        rc = (int)len;
        goto abort;
    }
    if ((rc = verify(r, digest, &h, got, size)) != 0) {
        s3_mpu_abort(r->o->to_bs->s3, key, upload);
        free(parts);
        return rc;
    }
    rc = s3_mpu_complete(r->o->to_bs->s3, key, upload, parts, n);
    free(parts);
    return rc == 0 ? 0 : migrate__fail(r, rc, "cannot complete the upload of blob %s", digest);
abort:
    digest_ctx_free(&h);
    s3_mpu_abort(r->o->to_bs->s3, key, upload);
    free(parts);
    return migrate__fail(r, rc, "cannot copy blob %s into the bucket", digest);
}

/* Copies blob `digest` to the target's disk: a fsynced staging file in tmp/, verified, then committed. */
static int put_disk(struct run *r, const char *digest, uint64_t size)
{
    char tmp[BLOBSTORE_PATH_MAX], path[BLOBSTORE_PATH_MAX + 96];
    struct digest_ctx h;
    uint64_t got = 0;
    ssize_t len;
    int out, rc = 0;
    blobstore_tmp_dir(r->o->to_bs, tmp, sizeof(tmp));
    snprintf(path, sizeof(path), "%s/migrate-%s", tmp, digest_hex(digest));
    if ((out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
        return migrate__fail(r, berr_from_errno(errno), "cannot create %s: %s", path, strerror(errno));
    if (digest_ctx_init(&h) != 0) {
        close(out);
        return BERR_NOMEM;
    }
    while (rc == 0 && (len = read_chunk(r, &h)) > 0) {
        for (ssize_t w = 0, k; w < len; w += k)
            if ((k = write(out, r->buf + w, (size_t)(len - w))) < 0) {
                rc = migrate__fail(r, berr_from_errno(errno), "cannot write %s: %s", path, strerror(errno));
                break;
            }
        got += (uint64_t)len;
        tick(r, (uint64_t)len);
    }
    if (rc == 0 && len < 0)
        rc = migrate__fail(r, (int)len, "cannot read blob %s from %s", digest, r->origin);
    if (rc == 0 && fsync(out) != 0)
        rc = migrate__fail(r, berr_from_errno(errno), "cannot fsync %s", path);
    close(out);
    if (rc == 0)
        rc = verify(r, digest, &h, got, size);
    else
        digest_ctx_free(&h);
    if (rc == 0 && (rc = blobstore_commit(r->o->to_bs, path, digest)) != 0)
        migrate__fail(r, rc, "cannot commit blob %s in the target", digest);
    if (rc != 0)
        unlink(path);
    return rc;
}

/* Copies one blob (content, then its row) unless the target has both already. */
/* Upserts the blobs row `row` into the target. */
static int blob_row(struct run *r, sqlite3_stmt *row, struct db_stmt *up, const char *digest, uint64_t size)
{
    db_reset(up);
    db_clear_bindings(up);
    for (int i = 0; i < sqlite3_column_count(row); i++)
        bind_value(row, up, i);
    if (db_step(up) != DB_DONE)
        return migrate__fail(r, BERR_DB, "blob %s: %s", digest, db_errmsg(r->dst));
    FAULT_POINT("migrate.after_blob");
    r->s->blobs++;
    r->s->blob_bytes += size;
    r->s->rows++;
    return 0;
}

static int copy_blob(struct run *r, sqlite3_stmt *row, struct db_stmt *up)
{
    const char *digest = (const char *)sqlite3_column_text(row, 0);
    uint64_t size = (uint64_t)sqlite3_column_int64(row, 1), have;
    int fd, rc;
    if (digest_parse(digest, strlen(digest), (char[BERTH_DIGEST_MAX]){0}) != 0)
        return migrate__fail(r, BERR_DIGEST_INVALID, "source blobs row with an invalid digest %s", digest);
    if (r->o->blobs_in_target) /* restore: the caller stored and verified every blob before the rows */
        return blob_row(r, row, up, digest, size);
    if (target_has_row(r, digest) == 1 && blobstore_exists(r->o->to_bs, digest) == 1) {
        r->s->blobs_skipped++;
        r->s->skipped_bytes += size;
        tick(r, size);
        return 0;
    }
    if ((rc = blobstore_open(&r->bs_src, digest, &fd, &have)) != 0)
        return migrate__fail(r, rc, "blob %s is listed in the source but its file cannot be opened", digest);
    r->rd = fd_read;
    r->rctx = &fd;
    rc = r->o->to_bs->s3 != NULL ? put_s3(r, digest, size) : put_disk(r, digest, size);
    close(fd);
    if (rc != 0)
        return rc;
    FAULT_POINT("migrate.before_row"); /* the object is stored, its row is not: a rerun must copy it again */
    return blob_row(r, row, up, digest, size);
}

static int copy_blobs(struct run *r)
{
    char sql[MIGRATE_SQL_MAX];
    struct cols cl;
    sqlite3_stmt *row, *sum;
    struct db_stmt *up;
    int rc;
    if (sqlite3_prepare_v2(r->src->h, "SELECT coalesce(sum(size), 0) FROM blobs", -1, &sum, NULL) != SQLITE_OK)
        return migrate__fail(r, BERR_DB, "source: %s", sqlite3_errmsg(r->src->h));
    r->total = sqlite3_step(sum) == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(sum, 0) : 0;
    sqlite3_finalize(sum);
    if ((rc = migrate__upsert_sql(r, r->src->h, "blobs", sql, sizeof(sql), &cl)) != 0)
        return rc;
    if (sqlite3_prepare_v2(r->src->h, "SELECT * FROM blobs ORDER BY digest", -1, &row, NULL) != SQLITE_OK)
        return migrate__fail(r, BERR_DB, "source: %s", sqlite3_errmsg(r->src->h));
    if ((up = db_prepare(r->dst, sql)) == NULL) {
        sqlite3_finalize(row);
        return migrate__fail(r, BERR_DB, "target: %s", db_errmsg(r->dst));
    }
    while ((rc = sqlite3_step(row)) == SQLITE_ROW)
        if ((rc = copy_blob(r, row, up)) != 0)
            break;
    db_finalize(up);
    sqlite3_finalize(row);
    if (rc == SQLITE_DONE) {
        r->s->tables++;
        return 0;
    }
    return rc < 0 ? rc : migrate__fail(r, BERR_DB, "source blobs: %s", sqlite3_errmsg(r->src->h));
}

/* ---- what is derived, and the keys ---- */

/* repos.bytes, quotas.used and stats from the copied rows (the triggers counted rows that were upserted over
 * source values), and PostgreSQL's identity sequences past the copied ids. */
int migrate__recompute(struct run *r)
{
    static const char *const common[] = {
        "UPDATE repos SET bytes = (SELECT coalesce(sum(b.size), 0) FROM repo_blobs l JOIN blobs b "
        "ON b.digest = l.digest WHERE l.repo_id = repos.id)",
        "UPDATE stats SET blobs = (SELECT count(*) FROM blobs), blob_bytes = (SELECT coalesce(sum(size), 0) FROM "
        "blobs), manifests = (SELECT count(*) FROM manifests), repos = (SELECT count(*) FROM repos), "
        "uploads = (SELECT count(*) FROM uploads)",
    };
    static const char *const pg[] = {
        "UPDATE quotas SET used = (SELECT coalesce(sum(bytes), 0) FROM repos WHERE berth_glob(name, pattern))",
        "SELECT setval(pg_get_serial_sequence(t, 'id'), greatest(1, (SELECT coalesce(max(id), 0) FROM repos "
        "WHERE t = 'repos') + (SELECT coalesce(max(id), 0) FROM manifests WHERE t = 'manifests') + "
        "(SELECT coalesce(max(id), 0) FROM users WHERE t = 'users') + (SELECT coalesce(max(id), 0) FROM tokens "
        "WHERE t = 'tokens') + (SELECT coalesce(max(id), 0) FROM events WHERE t = 'events'))) FROM "
        "unnest(ARRAY['repos', 'manifests', 'users', 'tokens', 'events']) t WHERE pg_get_serial_sequence(t, 'id') "
        "IS NOT NULL",
    };
    static const char *const lite[] = {
        "UPDATE quotas SET used = (SELECT coalesce(sum(bytes), 0) FROM repos WHERE name GLOB pattern)",
    };
    const char *const *extra = db_is_pg(r->dst) ? pg : lite;
    size_t n = db_is_pg(r->dst) ? 2 : 1;
    if (db_begin(r->dst) != 0)
        return migrate__fail(r, BERR_DB, "target: %s", db_errmsg(r->dst));
    for (size_t i = 0; i < 2 + n; i++) {
        struct db_stmt *st = db_prepare(r->dst, i < 2 ? common[i] : extra[i - 2]);
        int rc = st != NULL ? db_step(st) : BERR_DB;
        while (rc == DB_ROW)
            rc = db_step(st);
        db_finalize(st);
        if (rc != DB_DONE) {
            rc = migrate__fail(r, BERR_DB, "target: %s", db_errmsg(r->dst));
            db_rollback(r->dst);
            return rc;
        }
    }
    return db_commit(r->dst) == 0 ? 0 : migrate__fail(r, BERR_DB, "target: %s", db_errmsg(r->dst));
}

/* One keys/ file: a shared_keys row on PostgreSQL, else a file (0600) under the target's keys/. */
static int copy_key(struct run *r, const char *name, const unsigned char *v, size_t len)
{
    char path[BLOBSTORE_PATH_MAX + 300];
    if (db_is_pg(r->dst)) {
        struct db_stmt *st = db_prepare(r->dst, "INSERT INTO shared_keys (name, value, created_at) VALUES (?, ?, ?) "
                                                "ON CONFLICT (name) DO UPDATE SET value = excluded.value");
        int rc;
        if (st == NULL)
            return migrate__fail(r, BERR_DB, "target: %s", db_errmsg(r->dst));
        db_bind_text(st, 1, name, -1);
        db_bind_blob(st, 2, v, (int)len);
        db_bind_int64(st, 3, db_now());
        rc = db_step(st);
        db_finalize(st);
        return rc == DB_DONE ? 0 : migrate__fail(r, BERR_DB, "key %s: %s", name, db_errmsg(r->dst));
    }
    snprintf(path, sizeof(path), "%s/keys", r->o->to_data);
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return migrate__fail(r, berr_from_errno(errno), "cannot create %s: %s", path, strerror(errno));
    snprintf(path, sizeof(path), "%s/keys/%s", r->o->to_data, name);
    {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int ok = fd >= 0 && write(fd, v, len) == (ssize_t)len && fsync(fd) == 0;
        if (fd >= 0)
            close(fd);
        return ok ? 0 : migrate__fail(r, BERR_IO, "cannot write %s", path);
    }
}

static int copy_keys(struct run *r)
{
    char dir[BLOBSTORE_PATH_MAX + 8];
    struct dirent *e;
    DIR *d;
    int rc = 0;
    snprintf(dir, sizeof(dir), "%s/keys", r->o->from);
    if ((d = opendir(dir)) == NULL)
        return errno == ENOENT ? 0 : migrate__fail(r, BERR_IO, "cannot read %s: %s", dir, strerror(errno));
    while (rc == 0 && (e = readdir(d)) != NULL) {
        char path[BLOBSTORE_PATH_MAX + 300];
        unsigned char v[MIGRATE_KEY_FILE_MAX];
        ssize_t n;
        int fd;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
            rc = migrate__fail(r, BERR_IO, "cannot read %s: %s", path, strerror(errno));
            break;
        }
        n = read(fd, v, sizeof(v));
        close(fd);
        if (n < 0 || (size_t)n >= sizeof(v))
            rc = migrate__fail(r, BERR_IO, "%s: unreadable or larger than a key", path);
        else if ((rc = copy_key(r, e->d_name, v, (size_t)n)) == 0)
            r->s->keys++;
    }
    closedir(d);
    return rc;
}

/* ---- the run ---- */

static int open_both(struct run *r)
{
    struct stat st;
    char path[BLOBSTORE_PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/%s", r->o->from, DB_FILE);
    if (stat(path, &st) != 0)
        return migrate__fail(r, BERR_NOT_FOUND, "no registry at %s (no %s)", r->o->from, DB_FILE);
    if (blobstore_init(&r->bs_src, r->o->from) != 0 || db_set_metadata("sqlite") != 0 ||
        db_open(r->o->from, &r->src) != 0)
        return migrate__fail(r, BERR_DB, "cannot open the source registry at %s", r->o->from);
    if (db_set_metadata(r->o->to_metadata) != 0)
        return migrate__fail(r, BERR_BAD_REQUEST, "invalid metadata setting of the target");
    if (!db_metadata_is_pg() && strcmp(r->o->to_data, r->o->from) == 0)
        return migrate__fail(r, BERR_BAD_REQUEST, "the target's data directory and metadata are the source's own");
    if (db_open(r->o->to_data, &r->dst) != 0)
        return migrate__fail(r, BERR_DB, "cannot open the target's metadata (%s)",
                             db_metadata_is_pg() ? "PostgreSQL" : "SQLite");
    return 0;
}

int migrate_run(const struct migrate_opts *o, struct migrate_summary *s, char *err, size_t errlen)
{
    struct run r = {.o = o, .s = s, .err = err, .errlen = errlen};
    int rc;
    memset(s, 0, sizeof(*s));
    err[0] = '\0';
    if ((r.buf = malloc(MIGRATE_CHUNK)) == NULL)
        return migrate__fail(&r, BERR_NOMEM, "out of memory");
    r.origin = o->origin != NULL ? o->origin : "the source";
    if ((rc = open_both(&r)) != 0 || (rc = check_tables(&r)) != 0 || (!o->force && (rc = check_target(&r)) != 0) ||
        o->check_only)
        goto out;
    if ((rc = copy_blobs(&r)) != 0)
        goto out;
    for (size_t i = 0; i < migrate__ncopied; i++)
        if ((rc = copy_table(&r, migrate__copied[i])) != 0)
            goto out;
    if ((rc = migrate__recompute(&r)) == 0)
        rc = copy_keys(&r);
out:
    db_close(r.dst);
    db_close(r.src);
    free(r.buf);
    return rc;
}

int migrate_put_blob(const struct blobstore *to, const char *digest, uint64_t size, migrate_read_fn rd, void *ctx,
                     unsigned char *buf, const char *origin, char *err, size_t errlen)
{
    struct migrate_opts o = {.to_bs = to};
    struct migrate_summary s = {0};
    struct run r = {
        .o = &o, .s = &s, .err = err, .errlen = errlen, .buf = buf, .rd = rd, .rctx = ctx, .origin = origin};
    return to->s3 != NULL ? put_s3(&r, digest, size) : put_disk(&r, digest, size);
}
