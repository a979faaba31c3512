/* upload.c - upload sessions: staging files appended and hashed as bytes arrive, committed by rename. */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include "err.h"
#include "fault.h"
#include "log.h"
#include "s3upload.h"
#include "upload.h"

int upload_uuid_valid(const char *s, size_t len)
{
    if (len != BERTH_UUID_LEN)
        return BERR_BLOB_UPLOAD_UNKNOWN;
    for (size_t i = 0; i < len; i++) {
        int dash = (i == 8 || i == 13 || i == 18 || i == 23);
        char c = s[i];
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return BERR_BLOB_UPLOAD_UNKNOWN;
    }
    return 0;
}

static void new_uuid(char out[BERTH_UUID_LEN + 1])
{
    unsigned char r[16];
    static const char hex[] = "0123456789abcdef";
    size_t got = 0;
    while (got < sizeof(r)) {
        ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
        if (n > 0)
            got += (size_t)n;
    }
    r[6] = (r[6] & 0x0f) | 0x40; /* version 4 */
    r[8] = (r[8] & 0x3f) | 0x80; /* RFC 4122 variant */
    for (int i = 0, o = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[r[i] >> 4];
        out[o++] = hex[r[i] & 15];
    }
    out[BERTH_UUID_LEN] = '\0';
}

static struct upload *alloc_upload(const char *uuid, int fd)
{
    struct upload *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return NULL;
    memcpy(u->uuid, uuid, BERTH_UUID_LEN + 1);
    u->fd = fd;
    if (digest_ctx_init(&u->hash) != 0) {
        free(u);
        return NULL;
    }
    return u;
}

/* An S3 session `uuid`: a new state, or the saved one with `load` (read on `db`). */
static int s3_session(const struct blobstore *bs, struct db *db, const char *uuid, int load, struct upload **out)
{
    struct upload *u = calloc(1, sizeof(*u));
    int rc;
    if (u == NULL)
        return BERR_NOMEM;
    memcpy(u->uuid, uuid, BERTH_UUID_LEN + 1);
    u->fd = -1;
    u->bs = bs;
    rc = load ? s3upload_load(bs, db, uuid, &u->s3) : s3upload_new(uuid, &u->s3);
    if (rc != 0) {
        free(u);
        return rc;
    }
    u->size = s3upload_size(u->s3);
    *out = u;
    return 0;
}

int upload_create(const struct blobstore *bs, struct upload **out)
{
    char uuid[BERTH_UUID_LEN + 1], path[BLOBSTORE_PATH_MAX];
    int fd;
    new_uuid(uuid);
    if (bs->s3 != NULL)
        return s3_session(bs, NULL, uuid, 0, out);
    blobstore_upload_path(bs, uuid, path, sizeof(path));
    if ((fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
        return berr_from_errno(errno);
    if ((*out = alloc_upload(uuid, fd)) == NULL) {
        close(fd);
        unlink(path);
        return BERR_NOMEM;
    }
    return 0;
}

int upload_open(const struct blobstore *bs, struct db *db, const char *uuid, struct upload **out)
{
    char path[BLOBSTORE_PATH_MAX];
    char *buf;
    struct upload *u;
    int fd;
    ssize_t n;
    if (bs->s3 != NULL)
        return s3_session(bs, db, uuid, 1, out);
    blobstore_upload_path(bs, uuid, path, sizeof(path));
    if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0)
        return errno == ENOENT ? BERR_BLOB_UPLOAD_UNKNOWN : berr_from_errno(errno);
    if ((u = alloc_upload(uuid, fd)) == NULL) {
        close(fd);
        return BERR_NOMEM;
    }
    if ((buf = malloc(BERTH_COPY_CHUNK)) == NULL) {
        upload_free(u);
        return BERR_NOMEM;
    }
    while ((n = read(fd, buf, BERTH_COPY_CHUNK)) > 0) { /* rehash what an earlier process received */
        digest_ctx_update(&u->hash, buf, (size_t)n);
        u->size += (uint64_t)n;
    }
    free(buf);
    if (n < 0) {
        int e = errno;
        upload_free(u);
        return berr_from_errno(e);
    }
    *out = u;
    return 0;
}

/* Writes all of data at offset `off`.  Returns 0 or a BERR code. */
static int write_all(int fd, const char *p, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return berr_from_errno(errno);
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

struct hash_job {
    struct digest_ctx ctx;
    const void *data;
    size_t len;
};

static void *hash_main(void *arg)
{
    struct hash_job *h = arg;
    digest_ctx_update(&h->ctx, h->data, h->len);
    return NULL;
}

/* Appends in progress in this process: a second hashing thread only pays when a core would otherwise idle. */
static _Atomic int appending;

static int spare_core(void)
{
    static int cores;
    if (cores == 0)
        cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    return appending < cores;
}

int upload_append(struct upload *u, const void *data, size_t len)
{
    struct hash_job h = {.data = data, .len = len};
    pthread_t tid;
    int threaded = 0, rc;
    if (u->s3 != NULL) {
        rc = s3upload_append(u->bs, u->s3, data, len);
        u->size = s3upload_size(u->s3);
        return rc;
    }
    if (u->fd < 0 || u->hash.md == NULL) /* finished: the file may already be a committed blob */
        return BERR_BLOB_UPLOAD_INVALID;
    appending++;
    /* a large chunk is hashed on a second thread, into a copy of the hash, while this one writes it */
    if (len >= UPLOAD_PARALLEL_MIN && spare_core() && digest_ctx_copy(&h.ctx, &u->hash) == 0) {
        threaded = pthread_create(&tid, NULL, hash_main, &h) == 0;
        if (!threaded)
            digest_ctx_free(&h.ctx);
    }
    rc = write_all(u->fd, data, len, u->size);
    FAULT_POINT("upload.after_write");
    if (threaded)
        pthread_join(tid, NULL);
    appending--;
    if (rc != 0) {
        digest_ctx_free(&h.ctx);
        /* keep the file equal to what we acknowledged, so the session stays resumable */
        if (ftruncate(u->fd, (off_t)u->size) != 0)
            log_warn("upload %s: cannot truncate after failed write", u->uuid);
        return rc;
    }
    if (threaded) {
        digest_ctx_free(&u->hash);
        u->hash = h.ctx;
    } else {
        digest_ctx_update(&u->hash, data, len);
    }
    u->size += len;
    if (u->size - u->synced >= UPLOAD_WRITEBACK_STEP) { /* start writeback now: the final fsync has less to wait for */
        sync_file_range(u->fd, (off_t)u->synced, (off_t)(u->size - u->synced), SYNC_FILE_RANGE_WRITE);
        u->synced = u->size;
    }
    return 0;
}

int upload_sync(struct upload *u)
{
    return u->s3 != NULL ? s3upload_sync(u->bs, u->s3) : 0;
}

int upload_flush(struct upload *u)
{
    return u->s3 != NULL ? s3upload_flush(u->bs, u->s3) : 0;
}

int upload_dirty(const struct upload *u)
{
    return u->s3 != NULL && s3upload_dirty(u->s3);
}

int upload_save(struct db *db, void *u)
{
    return s3upload_save(db, ((struct upload *)u)->s3);
}

void upload_saved(struct upload *u, int rc)
{
    if (u->s3 != NULL)
        s3upload_saved(u->s3, rc);
}

int upload_forget(const struct blobstore *bs, struct db *db, const char *uuid)
{
    return bs->s3 != NULL ? s3upload_forget(db, uuid) : 0;
}

int upload_finish(const struct blobstore *bs, struct upload *u, const char *expected)
{
    char actual[BERTH_DIGEST_MAX], path[BLOBSTORE_PATH_MAX];
    int rc;
    if (u->s3 != NULL)
        return s3upload_finish(bs, u->s3, expected);
    if (u->fd < 0 || u->hash.md == NULL)
        return BERR_BLOB_UPLOAD_INVALID;
    blobstore_upload_path(bs, u->uuid, path, sizeof(path));
    digest_ctx_final(&u->hash, actual);
    FAULT_POINT("upload.before_fsync");
    rc = strcmp(actual, expected) != 0                     ? BERR_DIGEST_INVALID
         : FAULT_FAIL("upload.fsync") || fsync(u->fd) != 0 ? berr_from_errno(errno)
                                                           : 0;
    FAULT_POINT("upload.after_fsync");
    close(u->fd); /* the session is over whatever happens next: no write may reach a committed blob */
    u->fd = -1;
    if (rc != 0) {
        unlink(path);
        return rc;
    }
    if ((rc = blobstore_commit(bs, path, expected)) != 0)
        unlink(path);
    return rc;
}

void upload_remove(const struct blobstore *bs, const char *uuid)
{
    char path[BLOBSTORE_PATH_MAX];
    if (bs->s3 != NULL) {
        s3upload_remove(bs, uuid);
        return;
    }
    blobstore_upload_path(bs, uuid, path, sizeof(path));
    unlink(path);
}

void upload_free(struct upload *u)
{
    if (u == NULL)
        return;
    if (u->fd >= 0)
        close(u->fd);
    if (u->s3 != NULL)
        s3upload_free(u->bs, u->s3);
    digest_ctx_free(&u->hash);
    free(u);
}
