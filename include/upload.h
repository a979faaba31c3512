/*
 * upload.h - blob upload sessions: a staging file under <data>/uploads/<uuid> plus a running SHA-256.
 *
 * A session's offset is the size of its staging file; the hash covers exactly those bytes.  A session reopened
 * after a restart rehashes its file once.  upload_finish() verifies the digest, fsyncs, and commits the file into
 * the blobstore; the caller then commits the metadata row (file first, row second).
 *
 * With an S3 blobstore the same functions run a session as a multipart upload whose state is shared through the
 * database (s3upload.h); callers then save that state at the end of each request that appended: upload_flush() on
 * the worker, then upload_save() as a writer operation (job_write: nobody waits for it) and upload_saved() with its
 * result, or upload_sync() which waits.  A blob commit (or a dropped session) deletes the state with
 * upload_forget() in the same transaction.
 *
 * Ownership: struct upload is malloc'd by upload_create/upload_open and released by upload_free().  It is not
 * thread-safe; the server serializes requests per session.
 */
#ifndef BERTH_UPLOAD_H
#define BERTH_UPLOAD_H

#define UPLOAD_WRITEBACK_STEP (8u << 20) /* start writeback of staging data every 8 MiB */
#define UPLOAD_PARALLEL_MIN (1u << 20)   /* appends this large hash on a second thread while writing */

#include <stddef.h>
#include <stdint.h>
#include "blobstore.h"
#include "defaults.h"
#include "db.h"
#include "digest.h"

struct s3upload;

struct upload {
    char uuid[BERTH_UUID_LEN + 1];
    int fd;                 /* staging file, opened for writing */
    uint64_t size;          /* bytes received so far = next expected offset */
    uint64_t synced;        /* bytes whose writeback has been started (sync_file_range) */
    struct digest_ctx hash; /* SHA-256 of those bytes */
    /* S3 backend (blobstore_use_s3): no staging file (fd -1, hash unused); the state lives in s3upload.h */
    const struct blobstore *bs;
    struct s3upload *s3;
};

/** 0 if `s[0..len)` is a canonical lowercase UUID, else BERR_BLOB_UPLOAD_UNKNOWN. */
int upload_uuid_valid(const char *s, size_t len);
/** Starts a session with a fresh random UUID and an empty staging file. */
int upload_create(const struct blobstore *bs, struct upload **out);
/** Reopens session `uuid` (validated) from its staging file (on S3: its state row, read on `db`, the calling
 *  thread's connection).  Returns 0, BERR_BLOB_UPLOAD_UNKNOWN or BERR_IO. */
int upload_open(const struct blobstore *bs, struct db *db, const char *uuid, struct upload **out);
/** Appends `len` bytes at the end of the session.  Returns 0 or a BERR code (the offset is unchanged on error). */
int upload_append(struct upload *u, const void *data, size_t len);
/** Ends a request's appends, waiting for the writer: on S3, sends a full part and saves the session's state
 * (s3upload.h); on disk nothing (the staging file is the state).  Returns 0 or a BERR code. */
int upload_sync(struct upload *u);
/** S3: sends a full part of what the request left buffered (network, no database).  Disk: nothing.  Returns 0 or a
 *  BERR code. */
int upload_flush(struct upload *u);
/** 1 if the session's S3 state must be saved (usable and changed since it was loaded or saved), else 0 (disk: 0). */
int upload_dirty(const struct upload *u);
/** A writer operation (arg: the struct upload, untouched until its result is known): saves its S3 state.  Returns
 *  0, BERR_BLOB_UPLOAD_INVALID (changed by another request or node) or a BERR code. */
int upload_save(struct db *db, void *u);
/** Records upload_save's committed result `rc` in the session. */
void upload_saved(struct upload *u, int rc);
/** Writer side: deletes the S3 state row of session `uuid` (disk: nothing).  Returns 0 or BERR_DB. */
int upload_forget(const struct blobstore *bs, struct db *db, const char *uuid);
/** Verifies that the content hashes to `expected`, makes it durable and commits it as a blob.  On return the
 *  staging file is gone either way.  Returns 0, BERR_DIGEST_INVALID or an I/O code. */
int upload_finish(const struct blobstore *bs, struct upload *u, const char *expected);
/** Removes the staging file of session `uuid` (no error if absent). */
void upload_remove(const struct blobstore *bs, const char *uuid);
/** Closes and frees a session (safe on NULL). */
void upload_free(struct upload *u);

#endif
