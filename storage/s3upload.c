/* s3upload.c - upload sessions as S3 multipart uploads, their state shared through the database (s3upload.h). */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_CTX: the one SHA-256 state OpenSSL lets us save and restore */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "db.h"
#include "defaults.h"
#include "digest.h"
#include "err.h"
#include "fault.h"
#include "log.h"
#include "meta.h"
#include "s3.h"
#include "s3upload.h"
#include "writer.h"

struct s3upload {
    char mpu_id[S3_UPLOAD_ID_MAX + 1]; /* "" until the first part is sent */
    struct s3_part *parts;
    size_t nparts, cap;
    char *buf; /* bytes after the last part; BERTH_S3_PART_SIZE allocated */
    size_t len;
    SHA256_CTX sha;
    uint64_t size;
    int has_row;    /* a state row exists; `saved` is its size */
    uint64_t saved; /* the compare-and-set guard of the next save */
    int mpu_saved;  /* the multipart upload id is in the row (else s3upload_free aborts it) */
    int broken;     /* an append failed half-way: the state is unusable */
};

int s3upload_new(struct s3upload **out)
{
    struct s3upload *x = calloc(1, sizeof(*x));
    if (x == NULL || (x->buf = malloc(BERTH_S3_PART_SIZE)) == NULL) {
        free(x);
        return BERR_NOMEM;
    }
    SHA256_Init(&x->sha);
    *out = x;
    return 0;
}

uint64_t s3upload_size(const struct s3upload *x)
{
    return x->size;
}

static int add_part(struct s3upload *x, int number, const char *etag)
{
    if (x->nparts == x->cap) {
        size_t ncap = x->cap ? x->cap * 2 : 16;
        void *p = realloc(x->parts, ncap * sizeof(*x->parts));
        if (p == NULL)
            return BERR_NOMEM;
        x->parts = p;
        x->cap = ncap;
    }
    x->parts[x->nparts].number = number;
    snprintf(x->parts[x->nparts].etag, sizeof(x->parts[0].etag), "%s", etag);
    x->nparts++;
    return 0;
}

/* ---- the state row (table upload_s3, migration 10) ---- */

struct row_op {
    const char *uuid;
    struct s3upload *x;
    int found;
};

/* Parses the parts column: one ETag per line, parts 1..n. */
static int parse_parts(struct s3upload *x, const char *text)
{
    int rc = 0;
    while (rc == 0 && text != NULL && *text) {
        const char *nl = strchr(text, '\n');
        char etag[S3_ETAG_MAX + 1];
        size_t n = nl ? (size_t)(nl - text) : strlen(text);
        if (n == 0 || n > S3_ETAG_MAX)
            return BERR_DB;
        memcpy(etag, text, n);
        etag[n] = '\0';
        rc = add_part(x, (int)x->nparts + 1, etag);
        text = nl ? nl + 1 : NULL;
    }
    return rc;
}

static int load_op(struct db *db, void *arg)
{
    struct row_op *o = arg;
    struct s3upload *x = o->x;
    struct db_stmt *st = db_prepare(db, "SELECT mpu_id, size, parts, tail, sha FROM upload_s3 WHERE uuid = ?");
    int rc = 0;
    if (st == NULL)
        return BERR_DB;
    db_bind_text(st, 1, o->uuid, -1);
    if ((rc = db_step(st)) == DB_ROW) {
        const char *mpu = (const char *)db_column_text(st, 0);
        size_t tail = (size_t)db_column_bytes(st, 3);
        rc = 0;
        if (db_column_bytes(st, 4) != (int)sizeof(x->sha) || tail >= BERTH_S3_PART_MIN || mpu == NULL) {
            log_error("upload %s: unusable S3 session state (another berth build?)", o->uuid);
            rc = BERR_BLOB_UPLOAD_INVALID;
        }
        if (rc == 0)
            rc = parse_parts(x, (const char *)db_column_text(st, 2));
        if (rc == 0) {
            snprintf(x->mpu_id, sizeof(x->mpu_id), "%s", mpu);
            x->size = x->saved = (uint64_t)db_column_int64(st, 1);
            memcpy(x->buf, db_column_blob(st, 3), tail);
            x->len = tail;
            memcpy(&x->sha, db_column_blob(st, 4), sizeof(x->sha));
            x->has_row = x->mpu_saved = 1;
        }
    } else {
        rc = rc == DB_DONE ? 0 : db_error(db);
    }
    db_finalize(st);
    return rc;
}

/* The parts column of `x`: malloc'd, NULL when out of memory. */
static char *parts_text(const struct s3upload *x)
{
    char *s = malloc(x->nparts * (S3_ETAG_MAX + 1) + 1), *p = s;
    if (s == NULL)
        return NULL;
    *p = '\0';
    for (size_t i = 0; i < x->nparts; i++)
        p += sprintf(p, "%s\n", x->parts[i].etag);
    return s;
}

static int save_op(struct db *db, void *arg)
{
    struct row_op *o = arg;
    struct s3upload *x = o->x;
    char *parts = parts_text(x);
    struct db_stmt *st;
    int rc;
    if (parts == NULL)
        return BERR_NOMEM;
    st = db_prepare(db, x->has_row ? "UPDATE upload_s3 SET mpu_id = ?1, size = ?2, parts = ?3, tail = ?4, sha = ?5, "
                                     "updated_at = ?6 WHERE uuid = ?7 AND size = ?8"
                                   : "INSERT INTO upload_s3 (mpu_id, size, parts, tail, sha, updated_at, uuid) "
                                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (uuid) DO NOTHING");
    if (st == NULL) {
        free(parts);
        return BERR_DB;
    }
    db_bind_text(st, 1, x->mpu_id, -1);
    db_bind_int64(st, 2, (int64_t)x->size);
    db_bind_text(st, 3, parts, -1);
    db_bind_blob(st, 4, x->buf, (int)x->len);
    db_bind_blob(st, 5, &x->sha, (int)sizeof(x->sha));
    db_bind_int64(st, 6, db_now());
    db_bind_text(st, 7, o->uuid, -1);
    if (x->has_row)
        db_bind_int64(st, 8, (int64_t)x->saved);
    rc = db_step(st) == DB_DONE ? 0 : db_error(db);
    if (rc == 0 && db_changes(db) != 1)
        rc = BERR_BLOB_UPLOAD_INVALID; /* changed by another request or node since we loaded it */
    db_finalize(st);
    free(parts);
    return rc;
}

static int del_op(struct db *db, void *arg)
{
    struct db_stmt *st = db_prepare(db, "DELETE FROM upload_s3 WHERE uuid = ?");
    int rc;
    if (st == NULL)
        return BERR_DB;
    db_bind_text(st, 1, (const char *)arg, -1);
    rc = db_step(st) == DB_DONE ? 0 : db_error(db);
    db_finalize(st);
    return rc;
}

int s3upload_load(const struct blobstore *bs, const char *uuid, struct s3upload **out)
{
    struct row_op o = {.uuid = uuid};
    int rc = s3upload_new(&o.x);
    (void)bs;
    if (rc == 0 && (rc = writer_run(load_op, &o)) != 0) {
        s3upload_free(bs, uuid, o.x);
        return rc;
    }
    if (rc == 0)
        *out = o.x;
    return rc;
}

/* ---- parts ---- */

/* Sends the buffer as the next part (starting the multipart upload first if needed). */
static int send_part(const struct blobstore *bs, const char *uuid, struct s3upload *x)
{
    char key[BLOBSTORE_PATH_MAX], etag[S3_ETAG_MAX + 1];
    int rc, number = (int)x->nparts + 1;
    blobstore_upload_key(bs, uuid, key, sizeof(key));
    if (number > BERTH_S3_PARTS_MAX)
        return BERR_BLOB_TOO_LARGE;
    if (x->mpu_id[0] == '\0' && (rc = s3_mpu_create(bs->s3, key, x->mpu_id)) != 0)
        return rc;
    if ((rc = s3_mpu_part(bs->s3, key, x->mpu_id, number, x->buf, x->len, etag)) != 0)
        return rc;
    if ((rc = add_part(x, number, etag)) != 0)
        return rc;
    x->len = 0;
    return 0;
}

int s3upload_append(const struct blobstore *bs, const char *uuid, struct s3upload *x, const void *data, size_t len)
{
    const char *p = data;
    if (x->broken)
        return BERR_BLOB_UPLOAD_INVALID;
    SHA256_Update(&x->sha, data, len);
    x->size += len;
    while (len > 0) {
        size_t take = BERTH_S3_PART_SIZE - x->len;
        if (take > len)
            take = len;
        memcpy(x->buf + x->len, p, take);
        x->len += take;
        p += take;
        len -= take;
        if (x->len == BERTH_S3_PART_SIZE) {
            int rc = send_part(bs, uuid, x);
            if (rc != 0) {
                x->broken = 1;
                return rc;
            }
        }
    }
    return 0;
}

int s3upload_sync(const struct blobstore *bs, const char *uuid, struct s3upload *x)
{
    struct row_op o = {.uuid = uuid, .x = x};
    int rc;
    if (x->broken)
        return BERR_BLOB_UPLOAD_INVALID;
    if (x->len >= BERTH_S3_PART_MIN && (rc = send_part(bs, uuid, x)) != 0) {
        x->broken = 1;
        return rc;
    }
    FAULT_POINT("s3.part_before_save"); /* parts sent, the state naming them not saved */
    if ((rc = writer_run(save_op, &o)) != 0) {
        x->broken = 1;
        return rc;
    }
    x->has_row = x->mpu_saved = 1;
    x->saved = x->size;
    return 0;
}

/* ---- finishing ---- */

/* Checks that object `key` holds `size` bytes. */
static int check_size(const struct blobstore *bs, const char *key, uint64_t size)
{
    uint64_t have = 0;
    int rc = s3_head(bs->s3, key, &have);
    if (rc == 0 && have != size) {
        log_error("s3: %s holds %llu bytes, %llu were sent", key, (unsigned long long)have, (unsigned long long)size);
        rc = BERR_IO;
    }
    return rc;
}

/* 1 if object `key` exists and holds `size` bytes (quietly: absence is expected). */
static int object_has(const struct blobstore *bs, const char *key, uint64_t size)
{
    uint64_t have = 0;
    return s3_head(bs->s3, key, &have) == 0 && have == size;
}

/* Completes the multipart upload at the upload's key and copies it to the blob's key `final`.  A final PUT sent
 * again after a node died while finishing the same session (on this node or another) finds the multipart upload
 * already completed (RGW answers NoSuchUpload, or 500 "completion already in progress" once the upload object is
 * gone): the upload object, or the blob's object, holding the size the saved state hashed to the expected digest is
 * then that content, and the commit goes on from there. */
static int store_multipart(const struct blobstore *bs, const char *uuid, struct s3upload *x, const char *final)
{
    char key[BLOBSTORE_PATH_MAX];
    int rc = x->len > 0 ? send_part(bs, uuid, x) : 0; /* the last part may be short */
    blobstore_upload_key(bs, uuid, key, sizeof(key));
    FAULT_POINT("s3.before_complete"); /* every part sent, the multipart upload not completed */
    if (rc == 0)
        rc = s3_mpu_complete(bs->s3, key, x->mpu_id, x->parts, x->nparts);
    if (rc != 0 && (object_has(bs, key, x->size) || object_has(bs, final, x->size))) {
        log_info("upload %s: its multipart upload was completed by an earlier attempt", uuid);
        s3_mpu_abort(bs->s3, key, x->mpu_id); /* in case it was not: nothing of it is needed */
        rc = 0;
    }
    if (rc != 0)
        return rc;
    x->mpu_id[0] = '\0';                   /* completed: nothing to abort any more */
    FAULT_POINT("s3.after_complete");      /* the upload object exists, not yet copied to the blob's key */
    if (!object_has(bs, final, x->size) && /* unless the same blob is already there (idempotent commit) */
        (rc = check_size(bs, key, x->size)) == 0 && (rc = s3_copy(bs->s3, key, final)) == 0)
        rc = check_size(bs, final, x->size);
    FAULT_POINT("s3.after_copy"); /* the blob's object stored, the upload object not yet deleted, no row */
    if (s3_delete(bs->s3, key) != 0)
        log_warn("upload %s: the completed upload object is left in the bucket (expiry removes it)", uuid);
    FAULT_POINT("s3.after_upload_delete"); /* only the blob's object is left; its row comes after */
    return rc;
}

int s3upload_finish(const struct blobstore *bs, const char *uuid, struct s3upload *x, const char *expected)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    char actual[BERTH_DIGEST_MAX], final[BLOBSTORE_PATH_MAX];
    static const char hex[] = "0123456789abcdef";
    int rc;
    if (x->broken)
        return BERR_BLOB_UPLOAD_INVALID;
    SHA256_Final(md, &x->sha);
    memcpy(actual, "sha256:", 7);
    for (size_t i = 0; i < sizeof(md); i++) {
        actual[7 + 2 * i] = hex[md[i] >> 4];
        actual[8 + 2 * i] = hex[md[i] & 15];
    }
    actual[7 + 2 * sizeof(md)] = '\0';
    x->broken = 1; /* the hash is final: no more appends */
    if (strcmp(actual, expected) != 0) {
        rc = BERR_DIGEST_INVALID;
    } else {
        blobstore_key(bs, expected, final, sizeof(final));
        if (x->nparts > 0 || x->mpu_id[0] != '\0')
            rc = store_multipart(bs, uuid, x, final);
        else if ((rc = check_size(bs, final, x->size)) != 0 && /* small: one PUT, unless already stored */
                 (rc = s3_put(bs->s3, final, x->buf, x->len)) == 0)
            rc = check_size(bs, final, x->size);
        FAULT_POINT("s3.after_object"); /* the blob's object stored (small or multipart), its row not committed */
    }
    if (rc != 0 && x->mpu_id[0] != '\0') {
        char key[BLOBSTORE_PATH_MAX];
        blobstore_upload_key(bs, uuid, key, sizeof(key));
        s3_mpu_abort(bs->s3, key, x->mpu_id);
        x->mpu_id[0] = '\0';
    }
    if (x->has_row && writer_run(del_op, (void *)uuid) != 0)
        log_warn("upload %s: S3 session state left (expiry removes it)", uuid);
    x->has_row = 0;
    return rc;
}

void s3upload_remove(const struct blobstore *bs, const char *uuid)
{
    struct s3upload *x;
    char key[BLOBSTORE_PATH_MAX];
    if (s3upload_load(bs, uuid, &x) != 0)
        return;
    if (x->mpu_id[0] != '\0') {
        blobstore_upload_key(bs, uuid, key, sizeof(key));
        s3_mpu_abort(bs->s3, key, x->mpu_id);
    }
    if (x->has_row)
        writer_run(del_op, (void *)uuid);
    x->mpu_id[0] = '\0';
    s3upload_free(bs, uuid, x);
}

void s3upload_free(const struct blobstore *bs, const char *uuid, struct s3upload *x)
{
    if (x == NULL)
        return;
    if (x->mpu_id[0] != '\0' && !x->mpu_saved) { /* started by this state, named by no row: abort it now */
        char key[BLOBSTORE_PATH_MAX];
        blobstore_upload_key(bs, uuid, key, sizeof(key));
        s3_mpu_abort(bs->s3, key, x->mpu_id);
    }
    free(x->parts);
    free(x->buf);
    free(x);
}

/* ---- expiry ---- */

struct stale {
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

/* 1 if session `uuid` has a state row, 0 if not, or BERR_DB. */
static int named_by_uuid(struct db *db, const char *uuid)
{
    struct db_stmt *st = db_prepare(db, "SELECT 1 FROM upload_s3 WHERE uuid = ?");
    int rc;
    if (st == NULL)
        return BERR_DB;
    db_bind_text(st, 1, uuid, -1);
    rc = db_step(st);
    rc = rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : db_error(db);
    db_finalize(st);
    return rc;
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
    struct stale_list *l = arg;
    struct db_stmt *st = db_prepare(db, "SELECT 1 FROM upload_s3 WHERE mpu_id = ?");
    int rc;
    if (st == NULL)
        return BERR_DB;
    db_bind_text(st, 1, l->arg, -1);
    rc = db_step(st);
    l->found = rc == DB_ROW;
    rc = rc == DB_ROW || rc == DB_DONE ? 0 : db_error(db);
    db_finalize(st);
    return rc;
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
    struct stale_list *l = arg;
    struct db_stmt *st = db_prepare(db, "SELECT 1 FROM upload_s3 WHERE uuid = ?1 UNION ALL "
                                        "SELECT 1 FROM uploads WHERE uuid = ?1");
    int rc;
    if (st == NULL)
        return BERR_DB;
    db_bind_text(st, 1, l->arg, -1);
    rc = db_step(st);
    l->found = rc == DB_ROW;
    rc = rc == DB_ROW || rc == DB_DONE ? 0 : db_error(db);
    db_finalize(st);
    return rc;
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
    free(l.v);
    return rc != 0 ? rc : removed;
}
