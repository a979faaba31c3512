/* fsck.c - checking a data directory against berth.db, and removing only garbage (fsck.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "defaults.h"
#include "digest.h"
#include "err.h"
#include "fsck.h"
#include "gc.h"
#include "log.h"
#include "upload.h"

struct check {
    struct db *db;
    const struct blobstore *bs;
    int repair;
    long long now;
    fsck_finding_fn finding;
    fsck_progress_fn progress;
    void *ctx;
    struct fsck_stats *s;
    unsigned long long next_report;
    char (*rows)[BERTH_DIGEST_MAX]; /* digests of all blob rows, sorted */
    size_t nrows;
};

static void found(struct check *c, const char *kind, const char *what, const char *detail)
{
    c->s->findings++;
    if (c->finding != NULL)
        c->finding(c->ctx, kind, what, detail);
}

/* 1 if `sql` with text parameter `arg` returns a row, 0 if not, negative on error. */
static int exists(struct db *db, const char *sql, const char *arg)
{
    struct db_stmt *st = db_prepare(db, sql);
    int rc;
    if (st == NULL)
        return BERR_DB;
    db_bind_text(st, 1, arg, -1);
    rc = db_step(st);
    db_finalize(st);
    return rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : db_error(db);
}

static int has_blob_row(struct db *db, const char *digest)
{
    return exists(db, "SELECT 1 FROM blobs WHERE digest = ?", digest);
}

/* ---- SQLite's own checks ---- */

static int check_integrity(struct check *c)
{
    static const char *const pragmas[] = {"PRAGMA integrity_check", "PRAGMA foreign_key_check"};
    if (db_is_pg(c->db))
        return 0; /* PostgreSQL checksums its own pages and enforces foreign keys on every statement */
    for (size_t i = 0; i < sizeof(pragmas) / sizeof(pragmas[0]); i++) {
        struct db_stmt *st = db_prepare(c->db, pragmas[i]);
        if (st == NULL)
            return BERR_DB;
        while (db_step(st) == DB_ROW) {
            const char *t = (const char *)db_column_text(st, 0);
            if (i == 0 && t != NULL && strcmp(t, "ok") == 0)
                continue;
            found(c, "integrity", pragmas[i] + 7, t != NULL ? t : "?");
        }
        db_finalize(st);
    }
    return 0;
}

/* ---- blob rows: each file exists and hashes to its digest ---- */

static void hash_progress(struct check *c)
{
    if (c->progress != NULL && (unsigned long long)c->s->bytes >= c->next_report) {
        c->next_report = (unsigned long long)c->s->bytes + FSCK_PROGRESS_BYTES;
        c->progress(c->ctx, c->s);
    }
}

struct s3_hash {
    struct check *c;
    struct digest_ctx h;
    long long total;
};

static int s3_hash_sink(void *arg, const void *p, size_t n)
{
    struct s3_hash *x = arg;
    digest_ctx_update(&x->h, p, n);
    x->total += (long long)n;
    x->c->s->bytes += (long long)n;
    hash_progress(x->c);
    return 0;
}

/* S3: re-hashes blob object `digest` of `size` bytes, streamed from the bucket. */
static void check_object(struct check *c, const char *digest, long long size)
{
    struct s3_hash x = {.c = c};
    char got[BERTH_DIGEST_MAX], detail[160];
    int rc;
    if (digest_ctx_init(&x.h) != 0)
        return;
    rc = blobstore_read(c->bs, digest, 0, 0, s3_hash_sink, &x);
    digest_ctx_final(&x.h, got);
    if (rc != 0) {
        if (has_blob_row(c->db, digest) == 1) /* not deleted by a GC meanwhile */
            found(c, "row-without-file", digest, rc == BERR_BLOB_UNKNOWN ? "object missing" : "object unreadable");
        return;
    }
    c->s->files++;
    if (strcmp(got, digest) != 0 || x.total != size) {
        snprintf(detail, sizeof(detail), "content differs: content hashes to %s, %lld bytes (row says %lld)", got,
                 x.total, size);
        found(c, "corrupt", digest, detail);
    }
}

/* Re-hashes blob `digest` of `size` bytes. */
static void check_blob(struct check *c, const char *digest, long long size, unsigned char *buf)
{
    struct digest_ctx h;
    char got[BERTH_DIGEST_MAX], detail[160];
    uint64_t fsize;
    long long total = 0;
    ssize_t n;
    int fd, rc;
    if (c->bs->s3 != NULL) {
        check_object(c, digest, size);
        return;
    }
    rc = blobstore_open(c->bs, digest, &fd, &fsize);
    if (rc != 0) {
        if (has_blob_row(c->db, digest) == 1) /* not deleted by a GC meanwhile */
            found(c, "row-without-file", digest, rc == BERR_BLOB_UNKNOWN ? "file missing" : "file unreadable");
        return;
    }
    if (digest_ctx_init(&h) != 0) {
        close(fd);
        return;
    }
    while ((n = read(fd, buf, BERTH_COPY_CHUNK)) > 0) {
        digest_ctx_update(&h, buf, (size_t)n);
        total += n;
        c->s->bytes += n;
        hash_progress(c);
    }
    close(fd);
    digest_ctx_final(&h, got);
    c->s->files++;
    if (n < 0 || strcmp(got, digest) != 0 || total != size) {
        snprintf(detail, sizeof(detail), "%s: content hashes to %s, %lld bytes (row says %lld)",
                 n < 0 ? "read error" : "content differs", got, total, size);
        found(c, "corrupt", digest, detail);
    }
}

static int load_rows(struct check *c, long long **sizes)
{
    struct db_stmt *st = db_prepare(c->db, "SELECT digest, size FROM blobs ORDER BY digest");
    size_t cap = 0;
    int rc;
    *sizes = NULL;
    if (st == NULL)
        return BERR_DB;
    while ((rc = db_step(st)) == DB_ROW) {
        if (c->nrows == cap) {
            void *v = realloc(c->rows, (cap = cap ? cap * 2 : 1024) * sizeof(c->rows[0]));
            void *z = v ? realloc(*sizes, cap * sizeof(**sizes)) : NULL;
            if (v != NULL)
                c->rows = v;
            if (z == NULL)
                break;
            *sizes = z;
        }
        snprintf(c->rows[c->nrows], BERTH_DIGEST_MAX, "%s", (const char *)db_column_text(st, 0));
        (*sizes)[c->nrows++] = db_column_int64(st, 1);
    }
    db_finalize(st);
    return rc == DB_DONE ? 0 : rc == DB_ROW ? BERR_NOMEM : db_error(c->db);
}

static int check_blobs(struct check *c)
{
    long long *sizes = NULL;
    unsigned char *buf = malloc(BERTH_COPY_CHUNK);
    int rc = buf == NULL ? BERR_NOMEM : load_rows(c, &sizes);
    for (size_t i = 0; rc == 0 && i < c->nrows; i++)
        check_blob(c, c->rows[i], sizes[i], buf);
    free(sizes);
    free(buf);
    return rc;
}

/* ---- files under blobs/ ---- */

static int by_digest(const void *a, const void *b)
{
    return strcmp(a, b);
}

static int hex64(const char *name)
{
    size_t i = 0;
    for (; name[i]; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return 0;
    return i == DIGEST_HEX_LEN;
}

/* Under the write lock: removes the file of `digest` if it still has no row. */
static int remove_orphan(struct check *c, const char *digest, const char *path)
{
    int rc = db_begin(c->db), row;
    if (rc != 0)
        return rc;
    row = has_blob_row(c->db, digest);
    if (row == 0 && unlink(path) == 0)
        c->s->repaired++;
    db_rollback(c->db); /* nothing written: the lock only orders the check and the unlink against commits */
    return row < 0 ? row : 0;
}

/* Judges one file `name` of shard directory `dir`. */
static int check_file(struct check *c, const char *dir, const char *name)
{
    char path[BLOBSTORE_PATH_MAX], digest[BERTH_DIGEST_MAX];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%.255s", dir, name);
    if (lstat(path, &st) != 0 || st.st_ctime > c->now - FSCK_FRESH_AGE)
        return 0;
    if (!hex64(name) || !S_ISREG(st.st_mode) || strncmp(name, dir + strlen(dir) - 2, 2) != 0) {
        found(c, "stray-file", path, "not a blob file name");
        return 0;
    }
    snprintf(digest, sizeof(digest), "sha256:%.64s", name);
    if (bsearch(digest, c->rows, c->nrows, sizeof(c->rows[0]), by_digest) != NULL || has_blob_row(c->db, digest) != 0 ||
        gc_is_pending(c->db, digest))
        return 0;
    found(c, "file-without-row", digest, path);
    return c->repair ? remove_orphan(c, digest, path) : 0;
}

/* S3: judges one object of the listing, like check_file a file. */
static int check_listed(void *arg, const char *digest, time_t mtime)
{
    struct check *c = arg;
    int rc, row;
    if ((long long)mtime > c->now - FSCK_FRESH_AGE ||
        bsearch(digest, c->rows, c->nrows, sizeof(c->rows[0]), by_digest) != NULL || has_blob_row(c->db, digest) != 0 ||
        gc_is_pending(c->db, digest))
        return 0;
    found(c, "file-without-row", digest, "object in the bucket");
    if (!c->repair || (rc = db_begin(c->db)) != 0)
        return 0;
    row = has_blob_row(c->db, digest); /* under the write lock, as remove_orphan */
    if (row == 0 && blobstore_delete(c->bs, digest) == 0)
        c->s->repaired++;
    db_rollback(c->db);
    return row < 0 ? row : 0;
}

static int check_files(struct check *c)
{
    char root[BLOBSTORE_PATH_MAX];
    DIR *dh;
    struct dirent *e;
    int rc = 0;
    if (c->bs->s3 != NULL)
        return blobstore_objects_each(c->bs, check_listed, c);
    snprintf(root, sizeof(root), "%s/blobs/sha256", c->bs->root);
    if ((dh = opendir(root)) == NULL)
        return 0;
    while (rc == 0 && (e = readdir(dh)) != NULL) {
        char dir[BLOBSTORE_PATH_MAX];
        DIR *sh;
        struct dirent *f;
        if (e->d_name[0] == '.')
            continue;
        snprintf(dir, sizeof(dir), "%.4000s/%.255s", root, e->d_name);
        if (strlen(e->d_name) != 2 || (sh = opendir(dir)) == NULL) {
            found(c, "stray-file", dir, "not a shard directory");
            continue;
        }
        while (rc == 0 && (f = readdir(sh)) != NULL)
            if (f->d_name[0] != '.')
                rc = check_file(c, dir, f->d_name);
        closedir(sh);
    }
    closedir(dh);
    return rc;
}

/* ---- references ---- */

/* Reports every row of `st` (what, detail) as `kind`. */
static int report_rows(struct check *c, const char *sql, const char *kind)
{
    struct db_stmt *st = db_prepare(c->db, sql);
    int rc;
    if (st == NULL)
        return BERR_DB;
    while ((rc = db_step(st)) == DB_ROW)
        found(c, kind, (const char *)db_column_text(st, 0), (const char *)db_column_text(st, 1));
    db_finalize(st);
    return rc == DB_DONE ? 0 : db_error(c->db);
}

static int check_references(struct check *c)
{
    int rc = report_rows(c,
                         "SELECT r.name || '@' || m.digest, 'references blob ' || mb.digest || ', which has no row' "
                         "FROM manifest_blobs mb JOIN manifests m ON m.id = mb.manifest_id JOIN repos r ON "
                         "r.id = m.repo_id WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = mb.digest)",
                         "manifest-blob-missing");
    if (rc == 0)
        rc = report_rows(c,
                         "SELECT r.name || '@' || p.digest, 'index references manifest ' || ch.child_digest || "
                         "', which is not in the repository' FROM manifest_children ch JOIN manifests p ON "
                         "p.id = ch.parent_id JOIN repos r ON r.id = p.repo_id WHERE NOT EXISTS (SELECT 1 FROM "
                         "manifests m WHERE m.repo_id = p.repo_id AND m.digest = ch.child_digest)",
                         "manifest-child-missing");
    if (rc == 0) /* a pull of such a blob would be refused: GC must never prune a link a manifest needs */
        rc = report_rows(c,
                         "SELECT r.name || '@' || m.digest, 'references blob ' || mb.digest || ', which the "
                         "repository does not link' FROM manifest_blobs mb CROSS JOIN manifests m ON m.id = "
                         "mb.manifest_id JOIN repos r ON r.id = m.repo_id WHERE EXISTS (SELECT 1 FROM blobs b WHERE "
                         "b.digest = mb.digest) AND NOT EXISTS (SELECT 1 FROM repo_blobs l WHERE l.repo_id = "
                         "m.repo_id AND l.digest = mb.digest)",
                         "manifest-blob-unlinked");
    return rc;
}

/* Links to blobs without a row (foreign keys make them unlikely; a database edited by hand may have them). */
static int check_links(struct check *c)
{
    static const char dangling[] = "FROM repo_blobs AS l WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = "
                                   "l.digest) AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb JOIN manifests m ON "
                                   "m.id = mb.manifest_id WHERE mb.digest = l.digest AND m.repo_id = l.repo_id)";
    char sql[1024];
    int rc;
    snprintf(sql, sizeof(sql),
             "SELECT (SELECT name FROM repos WHERE id = l.repo_id) || ' -> ' || l.digest, "
             "'link to a blob without a row' %s",
             dangling);
    if ((rc = report_rows(c, sql, "link-without-blob")) != 0 || !c->repair)
        return rc;
    snprintf(sql, sizeof(sql), "DELETE %s", dangling);
    if ((rc = db_begin(c->db)) != 0)
        return rc;
    if ((rc = db_exec(c->db, sql)) == 0) {
        c->s->repaired += db_changes(c->db);
        return db_commit(c->db);
    }
    db_rollback(c->db);
    return rc;
}

/* ---- upload sessions ---- */

static int upload_rows(struct check *c)
{
    struct db_stmt *st;
    char(*gone)[BERTH_UUID_LEN + 1] = NULL;
    size_t n = 0, cap = 0;
    int rc;
    if (c->bs->s3 != NULL) /* S3 sessions have no staging file: their state is a row, expiry reaps them */
        return 0;
    st = db_prepare(c->db, "SELECT uuid FROM uploads WHERE started_at <= ? ORDER BY uuid");
    if (st == NULL)
        return BERR_DB;
    db_bind_int64(st, 1, c->now - FSCK_FRESH_AGE);
    while ((rc = db_step(st)) == DB_ROW) {
        char path[BLOBSTORE_PATH_MAX];
        const char *uuid = (const char *)db_column_text(st, 0);
        if (upload_uuid_valid(uuid, strlen(uuid)) != 0) {
            found(c, "integrity", uuid, "upload session row with an invalid id");
            continue;
        }
        blobstore_upload_path(c->bs, uuid, path, sizeof(path));
        if (access(path, F_OK) == 0)
            continue;
        if (n == cap) {
            void *v = realloc(gone, (cap = cap ? cap * 2 : 16) * sizeof(*gone));
            if (v == NULL)
                break;
            gone = v;
        }
        snprintf(gone[n++], sizeof(gone[0]), "%s", uuid);
    }
    db_finalize(st);
    for (size_t i = 0; i < n; i++) {
        int row = exists(c->db, "SELECT 1 FROM uploads WHERE uuid = ?", gone[i]);
        if (row != 1)
            continue; /* finished or cancelled meanwhile */
        found(c, "upload-without-file", gone[i], "upload session without its staging file");
        if (c->repair && db_begin(c->db) == 0) {
            struct db_stmt *del = db_prepare(c->db, "DELETE FROM uploads WHERE uuid = ?");
            if (del != NULL) {
                db_bind_text(del, 1, gone[i], -1);
                if (db_step(del) == DB_DONE)
                    c->s->repaired += db_changes(c->db);
                db_finalize(del);
            }
            db_commit(c->db);
        }
    }
    free(gone);
    return rc == DB_DONE || rc == DB_ROW ? 0 : db_error(c->db);
}

/* Staging files without a session row: a monolithic upload has none while it runs, which a request cannot do for
 * longer than its timeout, so only files older than BERTH_DEFAULT_REQUEST_TIMEOUT are judged. */
static int upload_files(struct check *c)
{
    char dir[BLOBSTORE_PATH_MAX];
    DIR *dh;
    struct dirent *e;
    snprintf(dir, sizeof(dir), "%s/uploads", c->bs->root);
    if ((dh = opendir(dir)) == NULL)
        return 0;
    while ((e = readdir(dh)) != NULL) {
        char path[BLOBSTORE_PATH_MAX];
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%.4000s/%.255s", dir, e->d_name);
        if (lstat(path, &st) != 0 || st.st_mtime > c->now - BERTH_DEFAULT_REQUEST_TIMEOUT ||
            st.st_ctime > c->now - FSCK_FRESH_AGE)
            continue;
        if (upload_uuid_valid(e->d_name, strlen(e->d_name)) == 0 &&
            exists(c->db, "SELECT 1 FROM uploads WHERE uuid = ?", e->d_name) != 0)
            continue;
        found(c, "upload-file-without-row", path, "staging file without an upload session");
        if (c->repair && unlink(path) == 0)
            c->s->repaired++;
    }
    closedir(dh);
    return 0;
}

int fsck_run(struct db *db, const struct blobstore *bs, int repair, long long now, fsck_finding_fn finding,
             fsck_progress_fn progress, void *ctx, struct fsck_stats *stats)
{
    struct check c = {.db = db,
                      .bs = bs,
                      .repair = repair,
                      .now = now,
                      .finding = finding,
                      .progress = progress,
                      .ctx = ctx,
                      .s = stats,
                      .next_report = FSCK_PROGRESS_BYTES};
    int rc;
    memset(stats, 0, sizeof(*stats));
    if ((rc = check_integrity(&c)) == 0 && (rc = check_blobs(&c)) == 0 && (rc = check_files(&c)) == 0 &&
        (rc = check_references(&c)) == 0 && (rc = check_links(&c)) == 0 && (rc = upload_rows(&c)) == 0)
        rc = upload_files(&c);
    if (progress != NULL)
        progress(ctx, stats);
    free(c.rows);
    return rc;
}
