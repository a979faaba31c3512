/* gc.c - online garbage collection of blob links, blob rows and blob files in short write batches (gc.h). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "defaults.h"
#include "digest.h"
#include "err.h"
#include "events.h"
#include "fault.h"
#include "gc.h"
#include "log.h"

struct digests {
    char (*v)[BERTH_DIGEST_MAX];
    int64_t *sizes;
    int64_t *repos;
    size_t n;
};

static int digests_init(struct digests *d)
{
    d->n = 0;
    d->v = calloc(GC_BATCH, sizeof(*d->v));
    d->sizes = calloc(GC_BATCH, sizeof(*d->sizes));
    d->repos = calloc(GC_BATCH, sizeof(*d->repos));
    return d->v && d->sizes && d->repos ? 0 : BERR_NOMEM;
}

static void digests_free(struct digests *d)
{
    free(d->v);
    free(d->sizes);
    free(d->repos);
}

/* Reads up to GC_BATCH rows (col 0 = repo id or size, col 1 = digest) of `st` into `d`. */
static int read_page(struct db *db, struct db_stmt *st, struct digests *d, int first_is_repo)
{
    int rc;
    d->n = 0;
    while (d->n < GC_BATCH && (rc = db_step(st)) == DB_ROW) {
        snprintf(d->v[d->n], BERTH_DIGEST_MAX, "%s", (const char *)db_column_text(st, 1));
        if (first_is_repo)
            d->repos[d->n] = db_column_int64(st, 0);
        else
            d->sizes[d->n] = db_column_int64(st, 0);
        d->n++;
    }
    if (d->n < GC_BATCH && rc != DB_DONE)
        return db_error(db);
    db_reset(st);
    return 0;
}

/* Runs `del` (bound by `bind`) for every entry of `d` inside one BEGIN IMMEDIATE transaction; `hit` is called for
 * each entry whose row was really deleted (the re-check in the statement passed). */
static int delete_batch(struct db *db, const char *sql, struct digests *d, long long cutoff,
                        int (*hit)(struct db *db, struct digests *d, size_t i, void *ctx), void *ctx)
{
    struct db_stmt *st;
    int rc = db_begin(db);
    if (rc != 0)
        return rc;
    if ((st = db_prepare(db, sql)) == NULL) {
        db_rollback(db);
        return BERR_DB;
    }
    for (size_t i = 0; rc == 0 && i < d->n; i++) {
        db_reset(st);
        db_bind_text(st, 1, d->v[i], -1);
        db_bind_int64(st, 2, cutoff);
        db_bind_int64(st, 3, d->repos[i]);
        if (db_step(st) != DB_DONE)
            rc = db_error(db);
        else if (db_changes(db) > 0 && hit != NULL)
            rc = hit(db, d, i, ctx);
    }
    db_finalize(st);
    if (rc == 0)
        rc = db_commit(db);
    if (rc != 0)
        db_rollback(db);
    return rc;
}

struct pass {
    struct db *db;
    const struct blobstore *bs;
    const struct gc_opts *o;
    gc_progress_fn progress;
    void *ctx;
    struct gc_stats *s;
    long long last_report;
};

static void report(struct pass *p)
{
    long long seen = p->s->links_examined + p->s->blobs_examined;
    if (p->progress != NULL && seen - p->last_report >= GC_PROGRESS_EVERY) {
        p->last_report = seen;
        p->progress(p->ctx, p->s);
    }
}

/* ---- links no manifest of their repository needs ---- */

static int link_pruned(struct db *db, struct digests *d, size_t i, void *ctx)
{
    (void)db;
    (void)d;
    (void)i;
    ((struct gc_stats *)ctx)->links_pruned++;
    return 0;
}

static int prune_links(struct pass *p)
{
    static const char select_sql[] =
        "SELECT l.repo_id, l.digest FROM repo_blobs l WHERE (l.repo_id, l.digest) > (?1, ?2) AND l.linked_at <= ?3 "
        "AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb CROSS JOIN manifests m ON m.id = mb.manifest_id "
        "  WHERE mb.digest = l.digest AND m.repo_id = l.repo_id) ORDER BY l.repo_id, l.digest";
    static const char delete_sql[] =
        "DELETE FROM repo_blobs WHERE digest = ?1 AND linked_at <= ?2 AND repo_id = ?3 "
        "AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb CROSS JOIN manifests m ON m.id = mb.manifest_id "
        "  WHERE mb.digest = ?1 AND m.repo_id = ?3)";
    long long cutoff = p->o->now - p->o->grace;
    struct digests d;
    int64_t after_repo = -1;
    char after[BERTH_DIGEST_MAX] = "";
    int rc = digests_init(&d);
    while (rc == 0) {
        struct db_stmt *st = db_prepare(p->db, select_sql);
        if (st == NULL) {
            rc = BERR_DB;
            break;
        }
        db_bind_int64(st, 1, after_repo);
        db_bind_text_copy(st, 2, after, -1);
        db_bind_int64(st, 3, cutoff);
        rc = read_page(p->db, st, &d, 1);
        db_finalize(st);
        if (rc != 0 || d.n == 0)
            break;
        after_repo = d.repos[d.n - 1];
        snprintf(after, sizeof(after), "%s", d.v[d.n - 1]);
        p->s->links_examined += (long long)d.n;
        if (p->o->dry_run)
            p->s->links_pruned += (long long)d.n;
        else
            rc = delete_batch(p->db, delete_sql, &d, cutoff, link_pruned, p->s);
        if (rc == 0 && !p->o->dry_run)
            FAULT_POINT("gc.after_link_batch"); /* between batches: links pruned, blob rows not yet examined */
        report(p);
    }
    digests_free(&d);
    return rc;
}

/* ---- blob rows no link and no manifest needs ---- */

static int blob_deleted(struct db *db, struct digests *d, size_t i, void *ctx)
{
    struct gc_stats *s = ctx;
    struct db_stmt *st = db_prepare(db, "INSERT INTO gc_pending (digest) VALUES (?) ON CONFLICT DO NOTHING");
    int rc;
    if (st == NULL)
        return BERR_DB;
    db_bind_text(st, 1, d->v[i], -1);
    rc = db_step(st) == DB_DONE ? 0 : db_error(db);
    db_finalize(st);
    if (rc == 0) /* in the transaction that deletes the row: no repository links the blob any more */
        rc = events_emit(db, &(struct event){.action = EVENT_GC,
                                             .repository = "",
                                             .digest = d->v[i],
                                             .media_type = "application/octet-stream",
                                             .size = d->sizes[i],
                                             .from = NULL});
    s->blobs_deleted++;
    s->bytes_reclaimed += d->sizes[i];
    return rc;
}

static int delete_blobs(struct pass *p)
{
    static const char select_sql[] =
        "SELECT b.size, b.digest FROM blobs b WHERE b.digest > ?1 AND b.created_at <= ?2 "
        "AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb WHERE mb.digest = b.digest) "
        "AND NOT EXISTS (SELECT 1 FROM repo_blobs l WHERE l.digest = b.digest AND l.linked_at > ?2) "
        "ORDER BY b.digest";
    static const char delete_sql[] = "DELETE FROM blobs WHERE digest = ?1 AND created_at <= ?2 "
                                     "AND NOT EXISTS (SELECT 1 FROM repo_blobs l WHERE l.digest = ?1) "
                                     "AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb WHERE mb.digest = ?1)";
    long long cutoff = p->o->now - p->o->grace;
    struct digests d;
    char after[BERTH_DIGEST_MAX] = "";
    int rc = digests_init(&d);
    while (rc == 0) {
        struct db_stmt *st = db_prepare(p->db, select_sql);
        if (st == NULL) {
            rc = BERR_DB;
            break;
        }
        db_bind_text_copy(st, 1, after, -1);
        db_bind_int64(st, 2, cutoff);
        rc = read_page(p->db, st, &d, 0);
        db_finalize(st);
        if (rc != 0 || d.n == 0)
            break;
        snprintf(after, sizeof(after), "%s", d.v[d.n - 1]);
        p->s->blobs_examined += (long long)d.n;
        if (p->o->dry_run) {
            p->s->blobs_deleted += (long long)d.n;
            for (size_t i = 0; i < d.n; i++)
                p->s->bytes_reclaimed += d.sizes[i];
        } else {
            rc = delete_batch(p->db, delete_sql, &d, cutoff, blob_deleted, p->s);
            if (rc == 0)
                FAULT_POINT("gc.after_row_commit"); /* rows and gc_pending committed, files not yet unlinked */
        }
        report(p);
    }
    digests_free(&d);
    return rc;
}

/* ---- files: pending unlinks, then files without rows ---- */

/* 1 if blob `digest` has a row, 0 if not, negative on error. */
static int has_row(struct db *db, const char *digest)
{
    struct db_stmt *st = db_prepare(db, "SELECT 1 FROM blobs WHERE digest = ?");
    int rc;
    if (st == NULL)
        return BERR_DB;
    db_bind_text(st, 1, digest, -1);
    rc = db_step(st);
    db_finalize(st);
    return rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : db_error(db);
}

static int exec_digest(struct db *db, const char *sql, const char *digest)
{
    struct db_stmt *st = db_prepare(db, sql);
    int rc;
    if (st == NULL)
        return BERR_DB;
    db_bind_text(st, 1, digest, -1);
    rc = db_step(st) == DB_DONE ? 0 : db_error(db);
    db_finalize(st);
    return rc;
}

/* Under the write lock: unlinks the file of every digest of `d` that has no row; with `pending`, also forgets
 * the gc_pending entries.  Adds the number of files removed to *unlinked. */
static int unlink_batch(struct db *db, const struct blobstore *bs, struct digests *d, int pending, long long *unlinked,
                        long long *orphans)
{
    int rc = db_begin(db);
    for (size_t i = 0; rc == 0 && i < d->n; i++) {
        int row = has_row(db, d->v[i]);
        if (row < 0) {
            rc = row;
        } else if (row == 0) {
            char path[BLOBSTORE_PATH_MAX];
            blobstore_path(bs, d->v[i], path, sizeof(path));
            if (blobstore_delete(bs, d->v[i]) == 0) { /* unlink(2), or DELETE on S3 */
                FAULT_POINT("gc.after_unlink");       /* the file is gone, its gc_pending row not yet forgotten */
                (*unlinked)++;
                if (orphans != NULL)
                    (*orphans)++;
            } else if (errno != ENOENT) {
                log_warn("gc: cannot remove %s: %s", path, strerror(errno));
            }
        }
        if (rc == 0 && pending)
            rc = exec_digest(db, "DELETE FROM gc_pending WHERE digest = ?", d->v[i]);
    }
    if (rc == 0)
        return db_commit(db);
    db_rollback(db);
    return rc;
}

int gc_finish_pending(struct db *db, const struct blobstore *bs, long long *unlinked)
{
    struct digests d;
    int rc = digests_init(&d);
    long long n = 0;
    while (rc == 0) {
        struct db_stmt *st = db_prepare(db, "SELECT 0, digest FROM gc_pending ORDER BY digest");
        if (st == NULL) {
            rc = BERR_DB;
            break;
        }
        rc = read_page(db, st, &d, 0);
        db_finalize(st);
        if (rc != 0 || d.n == 0)
            break;
        rc = unlink_batch(db, bs, &d, 1, &n, NULL);
    }
    digests_free(&d);
    if (unlinked != NULL)
        *unlinked = n;
    return rc;
}

/* 1 if `name` is 64 lowercase hex digits. */
static int hex64(const char *name)
{
    size_t i = 0;
    for (; name[i]; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return 0;
    return i == 64;
}

/* Collects the row-less files of one shard directory older than `cutoff` into `d`, removing each full batch. */
static int sweep_shard(struct pass *p, const char *dir, long long cutoff, struct digests *d)
{
    DIR *dh = opendir(dir);
    struct dirent *e;
    int rc = 0;
    if (dh == NULL)
        return 0;
    while (rc == 0 && (e = readdir(dh)) != NULL) {
        char path[BLOBSTORE_PATH_MAX];
        struct stat st;
        if (!hex64(e->d_name))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_ctime > cutoff)
            continue;
        snprintf(d->v[d->n], BERTH_DIGEST_MAX, "sha256:%.64s", e->d_name);
        if (has_row(p->db, d->v[d->n]) != 0)
            continue; /* the common case, answered without the write lock */
        if (++d->n == GC_BATCH) {
            if (p->o->dry_run)
                p->s->orphan_files += (long long)d->n;
            else
                rc = unlink_batch(p->db, p->bs, d, 0, &p->s->files_unlinked, &p->s->orphan_files);
            d->n = 0;
        }
    }
    closedir(dh);
    return rc;
}

struct orphan_ctx {
    struct pass *p;
    struct digests *d;
    long long cutoff;
};

/* S3: one object of the listing (blobstore_objects_each); like sweep_shard's loop body. */
static int sweep_object(void *arg, const char *digest, time_t mtime)
{
    struct orphan_ctx *o = arg;
    struct digests *d = o->d;
    int rc;
    if ((long long)mtime > o->cutoff)
        return 0;
    snprintf(d->v[d->n], BERTH_DIGEST_MAX, "%s", digest);
    if (has_row(o->p->db, d->v[d->n]) != 0)
        return 0;
    if (++d->n < GC_BATCH)
        return 0;
    if (o->p->o->dry_run) {
        o->p->s->orphan_files += (long long)d->n;
        d->n = 0;
        return 0;
    }
    rc = unlink_batch(o->p->db, o->p->bs, d, 0, &o->p->s->files_unlinked, &o->p->s->orphan_files);
    d->n = 0;
    return rc;
}

/* Removes files under blobs/ that have no row and were last changed before the grace period (and at least
 * GC_ORPHAN_MIN_AGE ago): a crash between an upload's rename and its row commit leaves such files.  On S3 the
 * objects are listed instead (an object stored before its row commits is the same kind of leftover). */
static int sweep_orphans(struct pass *p)
{
    long long grace = p->o->grace > GC_ORPHAN_MIN_AGE ? p->o->grace : GC_ORPHAN_MIN_AGE;
    char root[BLOBSTORE_PATH_MAX];
    struct digests d;
    DIR *dh = NULL;
    struct dirent *e;
    int rc = digests_init(&d);
    if (rc == 0 && p->bs->s3 != NULL) {
        struct orphan_ctx o = {.p = p, .d = &d, .cutoff = p->o->now - grace};
        rc = blobstore_objects_each(p->bs, sweep_object, &o);
        goto rest;
    }
    snprintf(root, sizeof(root), "%s/blobs/sha256", p->bs->root);
    if (rc != 0 || (dh = opendir(root)) == NULL) {
        digests_free(&d);
        return rc;
    }
    while (rc == 0 && (e = readdir(dh)) != NULL) {
        char dir[BLOBSTORE_PATH_MAX];
        if (strlen(e->d_name) != 2 || e->d_name[0] == '.')
            continue;
        snprintf(dir, sizeof(dir), "%.4000s/%.2s", root, e->d_name);
        rc = sweep_shard(p, dir, p->o->now - grace, &d);
    }
    closedir(dh);
rest:
    if (rc == 0 && d.n > 0) {
        if (p->o->dry_run)
            p->s->orphan_files += (long long)d.n;
        else
            rc = unlink_batch(p->db, p->bs, &d, 0, &p->s->files_unlinked, &p->s->orphan_files);
    }
    digests_free(&d);
    return rc;
}

int gc_run(struct db *db, const struct blobstore *bs, const struct gc_opts *o, gc_progress_fn progress, void *ctx,
           struct gc_stats *stats)
{
    struct pass p = {.db = db, .bs = bs, .o = o, .progress = progress, .ctx = ctx, .s = stats};
    long long unlinked = 0;
    int rc = 0;
    memset(stats, 0, sizeof(*stats));
    if (!o->dry_run && (rc = gc_finish_pending(db, bs, &unlinked)) != 0)
        return rc;
    stats->files_unlinked += unlinked;
    if ((rc = prune_links(&p)) != 0 || (rc = delete_blobs(&p)) != 0)
        return rc;
    if (!o->dry_run) {
        if ((rc = gc_finish_pending(db, bs, &unlinked)) != 0)
            return rc;
        stats->files_unlinked += unlinked;
    }
    rc = sweep_orphans(&p);
    if (progress != NULL)
        progress(ctx, stats);
    return rc;
}

int gc_blob_commit_check(struct db *db, const struct blobstore *bs, const char *digest)
{
    int rc = has_row(db, digest);
    if (rc != 0)
        return rc > 0 ? 0 : rc;
    if ((rc = exec_digest(db, "DELETE FROM gc_pending WHERE digest = ?", digest)) != 0)
        return rc;
    rc = blobstore_exists(bs, digest); /* a file, or a HEAD on S3 */
    return rc > 0 ? 0 : rc == 0 ? BERR_BLOB_UPLOAD_UNKNOWN : rc;
}

int gc_is_pending(struct db *db, const char *digest)
{
    struct db_stmt *st = db_prepare(db, "SELECT 1 FROM gc_pending WHERE digest = ?");
    int rc;
    if (st == NULL)
        return 0;
    db_bind_text(st, 1, digest, -1);
    rc = db_step(st);
    db_finalize(st);
    return rc == DB_ROW;
}
