/* s3upload.c - upload sessions as S3 multipart uploads, their state shared through the database (s3upload.h). */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_CTX: the one SHA-256 state OpenSSL lets us save and restore */
#include <openssl/sha.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "db.h"
#include "defaults.h"
#include "digest.h"
#include "err.h"
#include "fault.h"
#include "log.h"
#include "s3.h"
#include "s3upload.h"
#include "s3upload_internal.h"
#include "writer.h"

struct s3upload {
    char uuid[BERTH_UUID_LEN + 1];
    char mpu_id[S3_UPLOAD_ID_MAX + 1]; /* "" until the first part is sent */
    struct s3_part *parts;
    size_t nparts, cap;
    char *buf; /* bytes after the last part (NULL until the first byte; grown as bytes arrive) */
    size_t len, bufcap;
    SHA256_CTX sha;
    uint64_t size;
    int has_row;    /* a state row exists; `saved` is its size */
    uint64_t saved; /* the compare-and-set guard of the next save */
    int mpu_saved;  /* the row names the multipart upload id (always so before a part is sent) */
    int broken;     /* an append failed half-way: the state is unusable */
    time_t touched; /* when this state last wrote its row (or was made) */
};

int s3upload_new(const char *uuid, struct s3upload **out)
{
    struct s3upload *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return BERR_NOMEM;
    snprintf(x->uuid, sizeof(x->uuid), "%s", uuid);
    SHA256_Init(&x->sha);
    x->touched = time(NULL);
    *out = x;
    return 0;
}

uint64_t s3upload_size(const struct s3upload *x)
{
    return x->size;
}

/* The size of part `number` (1-based) while buffering. */
static size_t part_size(int number)
{
    return number <= BERTH_S3_PARTS_SMALL ? BERTH_S3_PART_SIZE : BERTH_S3_PART_SIZE_LATE;
}

/* Makes room for `need` buffered bytes: the buffer is an anonymous mapping of a whole part, whose pages the kernel
 * provides only as bytes are written into them (a 1 MiB PATCH costs 1 MiB) and which munmap returns at once (no
 * heap growth or fragmentation across the threads' arenas). */
static int buf_reserve(struct s3upload *x, size_t need)
{
    size_t ncap = part_size((int)x->nparts + 1);
    char *p;
    if (need <= x->bufcap)
        return 0;
    if (ncap < need)
        ncap = need;
    if ((p = mmap(NULL, ncap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) == MAP_FAILED)
        return BERR_NOMEM;
    if (x->len > 0)
        memcpy(p, x->buf, x->len);
    if (x->buf != NULL)
        munmap(x->buf, x->bufcap);
    x->buf = p;
    x->bufcap = ncap;
    return 0;
}

static void buf_free(struct s3upload *x)
{
    if (x->buf != NULL)
        munmap(x->buf, x->bufcap);
    x->buf = NULL;
    x->bufcap = 0;
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

/* Reads session x->uuid's row into `x` (fresh) on `db`. */
static int read_row(struct db *db, struct s3upload *x)
{
    struct db_stmt *st = db_prepare(db, "SELECT mpu_id, size, parts, tail, sha FROM upload_s3 WHERE uuid = ?");
    int rc = 0;
    if (st == NULL)
        return BERR_DB;
    db_bind_text(st, 1, x->uuid, -1);
    if ((rc = db_step(st)) == DB_ROW) {
        const char *mpu = (const char *)db_column_text(st, 0);
        size_t tail = (size_t)db_column_bytes(st, 3);
        rc = 0;
        if (db_column_bytes(st, 4) != (int)sizeof(x->sha) || tail >= BERTH_S3_PART_MIN || mpu == NULL) {
            log_error("upload %s: unusable S3 session state (another berth build?)", x->uuid);
            rc = BERR_BLOB_UPLOAD_INVALID;
        }
        if (rc == 0)
            rc = parse_parts(x, (const char *)db_column_text(st, 2));
        if (rc == 0 && tail > 0)
            rc = buf_reserve(x, tail);
        if (rc == 0) {
            snprintf(x->mpu_id, sizeof(x->mpu_id), "%s", mpu);
            x->size = x->saved = (uint64_t)db_column_int64(st, 1);
            if (tail > 0)
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

static int load_op(struct db *db, void *arg)
{
    return read_row(db, arg);
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

int s3upload_save(struct db *db, void *arg)
{
    struct s3upload *x = arg;
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
    db_bind_blob(st, 4, x->len > 0 ? x->buf : "", (int)x->len);
    db_bind_blob(st, 5, &x->sha, (int)sizeof(x->sha));
    db_bind_int64(st, 6, db_now());
    db_bind_text(st, 7, x->uuid, -1);
    if (x->has_row)
        db_bind_int64(st, 8, (int64_t)x->saved);
    rc = db_step(st) == DB_DONE ? 0 : db_error(db);
    if (rc == 0 && db_changes(db) != 1)
        rc = BERR_BLOB_UPLOAD_INVALID; /* changed by another request or node since we loaded it */
    db_finalize(st);
    free(parts);
    return rc;
}

void s3upload_saved(struct s3upload *x, int rc)
{
    if (rc != 0) {
        x->broken = 1;
        return;
    }
    x->has_row = x->mpu_saved = 1;
    x->saved = x->size;
    x->touched = time(NULL);
}

/* Names x->mpu_id in the row while keeping the saved state (the row is created with the empty state if there is
 * none): from then on expiry never takes the multipart upload for an orphan. */
static int mark_op(struct db *db, void *arg)
{
    struct s3upload *x = arg;
    struct db_stmt *st;
    int rc;
    if (x->has_row) {
        st = db_prepare(db, "UPDATE upload_s3 SET mpu_id = ?1, updated_at = ?2 WHERE uuid = ?3 AND size = ?4");
    } else {
        SHA256_CTX empty;
        SHA256_Init(&empty);
        st = db_prepare(db, "INSERT INTO upload_s3 (mpu_id, size, parts, tail, sha, updated_at, uuid) "
                            "VALUES (?1, 0, '', ?4, ?5, ?2, ?3) ON CONFLICT (uuid) DO NOTHING");
        if (st != NULL) {
            db_bind_blob(st, 4, "", 0);
            db_bind_blob(st, 5, &empty, (int)sizeof(empty));
        }
    }
    if (st == NULL)
        return BERR_DB;
    db_bind_text(st, 1, x->mpu_id, -1);
    db_bind_int64(st, 2, db_now());
    db_bind_text(st, 3, x->uuid, -1);
    if (x->has_row)
        db_bind_int64(st, 4, (int64_t)x->saved);
    rc = db_step(st) == DB_DONE ? 0 : db_error(db);
    if (rc == 0 && db_changes(db) != 1)
        rc = BERR_BLOB_UPLOAD_INVALID;
    db_finalize(st);
    return rc;
}

/* Writes the row naming the current multipart upload (waits for the writer: once per session, see s3upload.h). */
static int mark(struct s3upload *x)
{
    int rc = writer_run(mark_op, x);
    if (rc == 0) {
        x->has_row = x->mpu_saved = 1;
        x->touched = time(NULL);
    }
    return rc;
}

struct touch {
    struct writer_op op;
    char uuid[BERTH_UUID_LEN + 1];
    int64_t saved;
};

static int touch_op(struct db *db, void *arg)
{
    struct touch *t = arg;
    struct db_stmt *st = db_prepare(db, "UPDATE upload_s3 SET updated_at = ? WHERE uuid = ? AND size = ?");
    int rc;
    if (st == NULL)
        return BERR_DB;
    db_bind_int64(st, 1, db_now());
    db_bind_text(st, 2, t->uuid, -1);
    db_bind_int64(st, 3, t->saved);
    rc = db_step(st) == DB_DONE ? 0 : db_error(db);
    db_finalize(st);
    return rc;
}

static void touch_done(struct writer_op *op)
{
    free(op->arg);
}

/* While a request streams in: refreshes the row's updated_at every BERTH_S3_TOUCH_INTERVAL seconds, so that expiry
 * on any node (upload_timeout >= 60 s) never takes the session for idle.  Without a row yet, writes one (once, waiting
 * for the writer). */
static int keep_alive(struct s3upload *x)
{
    time_t now = time(NULL);
    struct touch *t;
    if (now - x->touched < BERTH_S3_TOUCH_INTERVAL)
        return 0;
    if (!x->has_row)
        return mark(x);
    x->touched = now;
    if ((t = calloc(1, sizeof(*t))) == NULL)
        return 0; /* a missed refresh: the next one comes at the next chunk */
    snprintf(t->uuid, sizeof(t->uuid), "%s", x->uuid);
    t->saved = (int64_t)x->saved;
    t->op = (struct writer_op){.fn = touch_op, .arg = t, .done = touch_done};
    if (writer_submit(&t->op) != 0) /* queued: nobody waits for it */
        free(t);
    return 0;
}

static int del_op(struct db *db, void *arg)
{
    return s3upload_forget(db, arg);
}

int s3upload_forget(struct db *db, const char *uuid)
{
    struct db_stmt *st = db_prepare(db, "DELETE FROM upload_s3 WHERE uuid = ?");
    int rc;
    if (st == NULL)
        return BERR_DB;
    db_bind_text(st, 1, uuid, -1);
    rc = db_step(st) == DB_DONE ? 0 : db_error(db);
    db_finalize(st);
    return rc;
}

/* States being read at once: each holds its tail (< 5 MiB) about four times while it is read (PostgreSQL's hex
 * text, the decoded column, the part buffer), so concurrent requests take turns beyond BERTH_S3_LOADS_MAX. */
static sem_t loads;
static pthread_once_t loads_once = PTHREAD_ONCE_INIT;

static void loads_init(void)
{
    sem_init(&loads, 0, BERTH_S3_LOADS_MAX);
}

/* Reads the state on the caller's connection, at most BERTH_S3_LOADS_MAX at a time. */
static int read_row_bounded(struct db *db, struct s3upload *x)
{
    int rc;
    pthread_once(&loads_once, loads_init);
    while (sem_wait(&loads) != 0 && errno == EINTR)
        ;
    rc = read_row(db, x);
    sem_post(&loads);
    return rc;
}

int s3upload_load(const struct blobstore *bs, struct db *db, const char *uuid, struct s3upload **out)
{
    struct s3upload *x;
    int rc = s3upload_new(uuid, &x);
    (void)bs;
    if (rc == 0 && (rc = db != NULL ? read_row_bounded(db, x) : writer_run(load_op, x)) != 0) {
        s3upload_free(bs, x);
        return rc;
    }
    if (rc == 0)
        *out = x;
    return rc;
}

/* ---- parts ---- */

/* Starts the multipart upload and names it in the row, before any part is sent. */
static int start_mpu(const struct blobstore *bs, struct s3upload *x, const char *key)
{
    int rc = s3_mpu_create(bs->s3, key, x->mpu_id);
    if (rc != 0)
        return rc;
    if ((rc = mark(x)) != 0) {
        s3_mpu_abort(bs->s3, key, x->mpu_id); /* no row names it: nobody else will */
        x->mpu_id[0] = '\0';
    }
    return rc;
}

/* Sends the buffer as the next part (starting the multipart upload first if needed). */
static int send_part(const struct blobstore *bs, struct s3upload *x)
{
    char key[BLOBSTORE_PATH_MAX], etag[S3_ETAG_MAX + 1];
    int rc, number = (int)x->nparts + 1;
    blobstore_upload_key(bs, x->uuid, key, sizeof(key));
    if (number > BERTH_S3_PARTS_MAX)
        return BERR_BLOB_TOO_LARGE;
    if (x->mpu_id[0] == '\0' && (rc = start_mpu(bs, x, key)) != 0)
        return rc;
    if ((rc = s3_mpu_part(bs->s3, key, x->mpu_id, number, x->buf, x->len, etag)) != 0)
        return rc;
    if ((rc = add_part(x, number, etag)) != 0)
        return rc;
    x->len = 0;
    return 0;
}

int s3upload_append(const struct blobstore *bs, struct s3upload *x, const void *data, size_t len)
{
    const char *p = data;
    int rc;
    if (x->broken)
        return BERR_BLOB_UPLOAD_INVALID;
    while (len > 0) {
        size_t want = part_size((int)x->nparts + 1), take = want - x->len;
        if (take > len)
            take = len;
        if ((rc = buf_reserve(x, x->len + take)) != 0)
            return rc; /* nothing of this chunk taken: the state is still whole */
        memcpy(x->buf + x->len, p, take);
        SHA256_Update(&x->sha, p, take);
        x->len += take;
        x->size += take;
        p += take;
        len -= take;
        if (x->len == want && (rc = send_part(bs, x)) != 0) {
            x->broken = 1;
            return rc;
        }
    }
    if ((rc = keep_alive(x)) != 0)
        x->broken = 1;
    return rc;
}

int s3upload_flush(const struct blobstore *bs, struct s3upload *x)
{
    int rc;
    if (x->broken)
        return BERR_BLOB_UPLOAD_INVALID;
    if (x->len >= BERTH_S3_PART_MIN && (rc = send_part(bs, x)) != 0) {
        x->broken = 1;
        return rc;
    }
    FAULT_POINT("s3.part_before_save"); /* parts sent, the state naming them not saved yet */
    if (x->len == 0)                    /* nothing buffered to keep between requests */
        buf_free(x);
    return 0;
}

int s3upload_dirty(const struct s3upload *x)
{
    return !x->broken && (!x->has_row || x->size != x->saved);
}

int s3upload_sync(const struct blobstore *bs, struct s3upload *x)
{
    int rc = s3upload_flush(bs, x);
    if (rc == 0)
        rc = writer_run(s3upload_save, x);
    s3upload_saved(x, rc);
    return rc;
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

uint64_t s3upload__env_size(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    char *end;
    unsigned long long n;
    if (v == NULL || *v == '\0')
        return dflt;
    n = strtoull(v, &end, 10);
    return *end == '\0' && n > 0 ? (uint64_t)n : dflt;
}

/* Copies object `src` (`size` bytes, above CopyObject's limit) to `dst` with a multipart copy: every part an
 * UploadPartCopy of a byte range, completed in order (aborted on any failure). */
static int copy_multipart(const struct blobstore *bs, const char *src, const char *dst, uint64_t size)
{
    uint64_t part = s3upload__env_size("BERTH_TEST_S3_COPY_PART", BERTH_S3_COPY_PART), off;
    char id[S3_UPLOAD_ID_MAX + 1];
    struct s3_part *parts;
    size_t n = 0, count;
    int rc;
    if (part < BERTH_S3_PART_MIN)
        part = BERTH_S3_PART_MIN;
    if ((size + part - 1) / part > BERTH_S3_PARTS_MAX) /* 10000 parts at most: larger parts then */
        part = (size + BERTH_S3_PARTS_MAX - 1) / BERTH_S3_PARTS_MAX;
    count = (size_t)((size + part - 1) / part);
    if ((parts = calloc(count, sizeof(*parts))) == NULL)
        return BERR_NOMEM;
    if ((rc = s3_mpu_create(bs->s3, dst, id)) != 0) {
        free(parts);
        return rc;
    }
    for (off = 0; rc == 0 && off < size; off += part, n++) {
        uint64_t len = size - off < part ? size - off : part;
        parts[n].number = (int)n + 1;
        rc = s3_mpu_part_copy(bs->s3, src, dst, id, parts[n].number, off, len, parts[n].etag);
        FAULT_POINT("s3.copy_after_part"); /* a multipart copy begun, not completed: expiry aborts it */
    }
    if (rc == 0)
        rc = s3_mpu_complete(bs->s3, dst, id, parts, n);
    if (rc != 0)
        s3_mpu_abort(bs->s3, dst, id);
    else
        log_info("s3: %s copied to %s in %zu parts (UploadPartCopy, %llu bytes)", src, dst, n,
                 (unsigned long long)size);
    free(parts);
    return rc;
}

/* Server-side copy of the finished upload object `key` (`size` bytes) to the blob's key `final`. */
static int copy_object(const struct blobstore *bs, const char *key, const char *final, uint64_t size)
{
    if (size > s3upload__env_size("BERTH_TEST_S3_COPY_MAX", BERTH_S3_COPY_MAX))
        return copy_multipart(bs, key, final, size);
    return s3_copy(bs->s3, key, final);
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
static int store_multipart(const struct blobstore *bs, struct s3upload *x, const char *final)
{
    char key[BLOBSTORE_PATH_MAX];
    int rc = x->len > 0 ? send_part(bs, x) : 0; /* the last part may be short */
    blobstore_upload_key(bs, x->uuid, key, sizeof(key));
    FAULT_POINT("s3.before_complete"); /* every part sent, the multipart upload not completed */
    if (rc == 0)
        rc = s3_mpu_complete(bs->s3, key, x->mpu_id, x->parts, x->nparts);
    if (rc != 0 && (object_has(bs, key, x->size) || object_has(bs, final, x->size))) {
        log_info("upload %s: its multipart upload was completed by an earlier attempt", x->uuid);
        s3_mpu_abort(bs->s3, key, x->mpu_id); /* in case it was not: nothing of it is needed */
        rc = 0;
    }
    if (rc != 0)
        return rc;
    x->mpu_id[0] = '\0';                   /* completed: nothing to abort any more */
    FAULT_POINT("s3.after_complete");      /* the upload object exists, not yet copied to the blob's key */
    if (!object_has(bs, final, x->size) && /* unless the same blob is already there (idempotent commit) */
        (rc = check_size(bs, key, x->size)) == 0 && (rc = copy_object(bs, key, final, x->size)) == 0)
        rc = check_size(bs, final, x->size);
    FAULT_POINT("s3.after_copy"); /* the blob's object stored, the upload object not yet deleted, no row */
    if (s3_delete(bs->s3, key) != 0)
        log_warn("upload %s: the completed upload object is left in the bucket (expiry removes it)", x->uuid);
    FAULT_POINT("s3.after_upload_delete"); /* only the blob's object is left; its row comes after */
    return rc;
}

int s3upload_finish(const struct blobstore *bs, struct s3upload *x, const char *expected)
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
            rc = store_multipart(bs, x, final);
        else if ((rc = check_size(bs, final, x->size)) != 0 && /* small: one PUT, unless already stored */
                 (rc = s3_put(bs->s3, final, x->len > 0 ? x->buf : "", x->len)) == 0)
            rc = check_size(bs, final, x->size);
        FAULT_POINT("s3.after_object"); /* the blob's object stored (small or multipart), its row not committed */
    }
    if (rc != 0 && x->mpu_id[0] != '\0') {
        char key[BLOBSTORE_PATH_MAX];
        blobstore_upload_key(bs, x->uuid, key, sizeof(key));
        s3_mpu_abort(bs->s3, key, x->mpu_id);
        x->mpu_id[0] = '\0';
    }
    return rc;
}

void s3upload_remove(const struct blobstore *bs, const char *uuid)
{
    struct s3upload *x;
    char key[BLOBSTORE_PATH_MAX];
    if (s3upload_load(bs, NULL, uuid, &x) != 0)
        return;
    if (x->mpu_id[0] != '\0') {
        blobstore_upload_key(bs, uuid, key, sizeof(key));
        s3_mpu_abort(bs->s3, key, x->mpu_id);
    }
    if (x->has_row)
        writer_run(del_op, (void *)uuid);
    s3upload_free(bs, x);
}

void s3upload_free(const struct blobstore *bs, struct s3upload *x)
{
    (void)bs;
    if (x == NULL)
        return;
    free(x->parts);
    buf_free(x);
    free(x);
}
