/* s3upload_expire.c - the expiry of S3 upload sessions (s3upload_expire in s3upload.h): idle sessions, and the
 * multipart uploads, upload objects and multipart copies that no session names any more. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "db.h"
#include "defaults.h"
#include "err.h"
#include "fault.h"
#include "log.h"
#include "meta.h"
#include "s3.h"
#include "s3upload.h"
#include "s3upload_internal.h"
#include "writer.h"

struct stale {
    long long initiated; /* orphan multipart uploads: when they began */
    char uuid[BERTH_UUID_LEN + 1];
    char mpu_id[S3_UPLOAD_ID_MAX + 1];
    char key[S3_KEY_MAX + 1]; /* orphan multipart uploads: their key */
};

struct stale_list {
    struct stale *v;
    size_t n, cap;
    long long cutoff;
    const char *arg; /* one uuid or multipart upload id for the single-row ops */
    int found;
};

static struct stale *stale_add(struct stale_list *l)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 32;
        void *p = realloc(l->v, ncap * sizeof(*l->v));
        if (p == NULL)
            return NULL;
        l->v = p;
        l->cap = ncap;
    }
    memset(&l->v[l->n], 0, sizeof(l->v[0]));
    return &l->v[l->n++];
}

/* Sessions idle since before the cutoff: by their state, or by their start when they have none. */
static int list_stale_op(struct db *db, void *arg)
{
    struct stale_list *l = arg;
    struct db_stmt *st = db_prepare(db, "SELECT uuid, mpu_id FROM upload_s3 WHERE updated_at < ?1 "
                                        "UNION ALL SELECT u.uuid, '' FROM uploads u WHERE u.started_at < ?1 "
                                        "AND NOT EXISTS (SELECT 1 FROM upload_s3 s WHERE s.uuid = u.uuid)");
    int rc;
    if (st == NULL)
        return BERR_DB;
    db_bind_int64(st, 1, l->cutoff);
    while ((rc = db_step(st)) == DB_ROW) {
        struct stale *e = stale_add(l);
        if (e == NULL) {
            db_finalize(st);
            return BERR_NOMEM;
        }
        snprintf(e->uuid, sizeof(e->uuid), "%s", (const char *)db_column_text(st, 0));
        snprintf(e->mpu_id, sizeof(e->mpu_id), "%s", (const char *)db_column_text(st, 1));
    }
    rc = rc == DB_DONE ? 0 : db_error(db);
    db_finalize(st);
    return rc;
}

/* 1 if query `sql` (one text parameter, ?1) returns a row for `arg`, 0 if not, or a BERR code. */
static int row_exists(struct db *db, const char *sql, const char *arg)
{
    struct db_stmt *st = db_prepare(db, sql);
    int rc;
    if (st == NULL)
        return BERR_DB;
    db_bind_text(st, 1, arg, -1);
    rc = db_step(st);
    rc = rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : db_error(db);
    db_finalize(st);
    return rc;
}

/* 1 if session `uuid` has a state row, 0 if not, or BERR_DB. */
static int named_by_uuid(struct db *db, const char *uuid)
{
    return row_exists(db, "SELECT 1 FROM upload_s3 WHERE uuid = ?1", uuid);
}

/* Sets l->found from row_exists(sql, l->arg); returns 0 or its error. */
static int found_op(struct db *db, struct stale_list *l, const char *sql)
{
    int rc = row_exists(db, sql, l->arg);
    l->found = rc == 1;
    return rc < 0 ? rc : 0;
}

/* Forgets session l->arg if still idle: its state (guarded by the cutoff) and its session row.  found = 1 if so. */
static int expire_row_op(struct db *db, void *arg)
{
    struct stale_list *l = arg;
    struct db_stmt *st = db_prepare(db, "DELETE FROM upload_s3 WHERE uuid = ? AND updated_at < ?");
    int rc;
    if (st == NULL)
        return BERR_DB;
    db_bind_text(st, 1, l->arg, -1);
    db_bind_int64(st, 2, l->cutoff);
    rc = db_step(st) == DB_DONE ? 0 : db_error(db);
    db_finalize(st);
    if (rc != 0)
        return rc;
    l->found = 0;
    if ((rc = named_by_uuid(db, l->arg)) != 0) /* updated meanwhile (no longer idle): keep it */
        return rc < 0 ? rc : 0;
    l->found = 1;
    return meta_upload_del(db, l->arg);
}

/* found = 1 if a saved state names multipart upload l->arg. */
static int named_op(struct db *db, void *arg)
{
    return found_op(db, arg, "SELECT 1 FROM upload_s3 WHERE mpu_id = ?1");
}

static int collect_mpu(void *ctx, const char *key, const char *upload_id, time_t initiated)
{
    struct stale_list *l = ctx;
    struct stale *e;
    if (initiated >= l->cutoff)
        return 0;
    if ((e = stale_add(l)) == NULL)
        return BERR_NOMEM;
    snprintf(e->key, sizeof(e->key), "%s", key);
    snprintf(e->mpu_id, sizeof(e->mpu_id), "%s", upload_id);
    e->initiated = (long long)initiated;
    return 0;
}

static int collect_object(void *ctx, const char *key, uint64_t size, time_t mtime)
{
    (void)size;
    return collect_mpu(ctx, key, "", mtime);
}

/* found = 1 if session l->arg has a state row or a session row. */
static int session_known_op(struct db *db, void *arg)
{
    return found_op(db, arg, "SELECT 1 FROM upload_s3 WHERE uuid = ?1 UNION ALL SELECT 1 FROM uploads WHERE uuid = ?1");
}

/* Deletes objects under PREFIX/uploads/ older than the cutoff whose session is gone: completed multipart uploads
 * that a process killed between the completion and the deletion of the upload object left behind. */
static int expire_objects(const struct blobstore *bs, struct stale_list *l, const char *prefix,
                          int (*held)(void *ctx, const char *uuid), void *ctx)
{
    size_t plen = strlen(prefix);
    int rc;
    l->n = 0;
    if ((rc = s3_list(bs->s3, prefix, collect_object, l)) != 0)
        return rc;
    for (size_t i = 0; i < l->n; i++) {
        const char *uuid = strlen(l->v[i].key) > plen ? l->v[i].key + plen : "";
        l->arg = uuid;
        if (held(ctx, uuid) || writer_run(session_known_op, l) != 0 || l->found)
            continue;
        if (s3_delete(bs->s3, l->v[i].key) == 0)
            log_info("s3: upload object %s of no session: deleted", l->v[i].key);
    }
    return 0;
}

/* Aborts multipart uploads under PREFIX/uploads/ older than the cutoff that no state names, then deletes the
 * upload objects no session names. */
static int expire_orphans(const struct blobstore *bs, struct stale_list *l, int (*held)(void *ctx, const char *uuid),
                          void *ctx)
{
    char prefix[BLOBSTORE_PATH_MAX];
    size_t plen;
    int rc;
    snprintf(prefix, sizeof(prefix), "%suploads/", bs->s3_prefix);
    plen = strlen(prefix);
    l->n = 0;
    if ((rc = s3_mpu_list(bs->s3, prefix, collect_mpu, l)) != 0)
        return rc;
    for (size_t i = 0; i < l->n; i++) {
        const char *uuid = strlen(l->v[i].key) > plen ? l->v[i].key + plen : "";
        l->arg = l->v[i].mpu_id;
        if (held(ctx, uuid) || writer_run(named_op, l) != 0 || l->found)
            continue;
        if (s3_mpu_abort(bs->s3, l->v[i].key, l->v[i].mpu_id) == 0)
            log_info("s3: multipart upload of %s named by no session: aborted", l->v[i].key);
    }
    return expire_objects(bs, l, prefix, held, ctx);
}

/* BERTH_S3_COPY_ORPHAN_AGE, or the test-only BERTH_TEST_S3_COPY_ORPHAN_AGE (seconds, > 0) when set. */
static long long copy_orphan_age(void)
{
    return (long long)s3upload__env_size("BERTH_TEST_S3_COPY_ORPHAN_AGE", BERTH_S3_COPY_ORPHAN_AGE);
}

/* Aborts multipart copies under PREFIX/blobs/ older than BERTH_S3_COPY_ORPHAN_AGE: a commit above
 * BERTH_S3_COPY_MAX that crashed before completing its copy (a running copy never takes that long).  Younger ones
 * are only logged (debug). */
static int expire_copies(const struct blobstore *bs, struct stale_list *l)
{
    char prefix[BLOBSTORE_PATH_MAX];
    long long now = (long long)time(NULL), age = copy_orphan_age();
    int rc;
    snprintf(prefix, sizeof(prefix), "%sblobs/", bs->s3_prefix);
    l->n = 0;
    l->cutoff = LLONG_MAX; /* every one: those younger than `age` are kept */
    if ((rc = s3_mpu_list(bs->s3, prefix, collect_mpu, l)) != 0)
        return rc;
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].initiated >= now - age)
            log_debug("s3: multipart copy to %s begun %lld s ago: kept (aborted after %lld s)", l->v[i].key,
                      now - l->v[i].initiated, age);
        else if (s3_mpu_abort(bs->s3, l->v[i].key, l->v[i].mpu_id) == 0)
            log_info("s3: multipart copy to %s left by a crash: aborted", l->v[i].key);
    return 0;
}

int s3upload_expire(const struct blobstore *bs, time_t cutoff, int (*held)(void *ctx, const char *uuid), void *ctx)
{
    struct stale_list l = {.cutoff = cutoff};
    char key[BLOBSTORE_PATH_MAX];
    int rc = writer_run(list_stale_op, &l), removed = 0;
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        struct stale *e = &l.v[i];
        if (held(ctx, e->uuid))
            continue;
        l.arg = e->uuid;
        l.found = 0;
        if (writer_run(expire_row_op, &l) != 0 || !l.found)
            continue;
        FAULT_POINT("s3.expire_before_abort"); /* the session's rows are gone, its multipart upload not aborted */
        blobstore_upload_key(bs, e->uuid, key, sizeof(key));
        if (e->mpu_id[0] != '\0')
            s3_mpu_abort(bs->s3, key, e->mpu_id);
        s3_delete(bs->s3, key); /* a completed upload whose copy was interrupted: its object */
        log_info("upload %s idle since before %lld: removed (S3)", e->uuid, (long long)cutoff);
        removed++;
    }
    if (rc == 0)
        rc = expire_orphans(bs, &l, held, ctx);
    if (rc == 0)
        rc = expire_copies(bs, &l);
    free(l.v);
    return rc != 0 ? rc : removed;
}
