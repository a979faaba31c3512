/*
 * s3upload.h - blob upload sessions on S3 (the blobstore's S3 backend; upload.c dispatches here when the
 * blobstore has a bucket).
 *
 * A session is an S3 multipart upload of PREFIX/uploads/<uuid>: the bytes a client sends are hashed as they arrive
 * and buffered until a part is full (BERTH_S3_PART_SIZE; BERTH_S3_PART_SIZE_LATE after BERTH_S3_PARTS_SMALL parts),
 * then sent as the next part.  The buffer is an anonymous mapping of one part, mapped at the first byte, whose
 * memory the kernel provides page by page as bytes arrive, unmapped at the end of a request that left nothing
 * buffered.  At the end of every request a buffer of at least BERTH_S3_PART_MIN goes out as a part too
 * (s3upload_flush), and the state any node needs to continue - multipart
 * upload id, part ETags, size, the buffered tail (< BERTH_S3_PART_MIN) and the SHA-256 state (OpenSSL's SHA256_CTX,
 * stored as its bytes: every node must run the same build) - is saved in the database row of the session (table
 * upload_s3, s3upload_save, a writer operation the server queues with job_write: no thread waits for it), guarded by
 * the size it had when it was loaded: a node working on a stale copy gets BERR_BLOB_UPLOAD_INVALID instead of
 * overwriting a newer state.  When a request breaks off, the bytes that arrived are saved like any others (the
 * state is whole after every append), unless an S3 request itself failed.
 *
 * Orphans: a multipart upload is named in the session's row before its first part is sent (the row is written
 * then, waiting for the writer: once per session), so "no row names it" means a crash between creating it and
 * writing that row, whatever the age of the session.  A request streaming into a session refreshes the row's
 * updated_at every BERTH_S3_TOUCH_INTERVAL seconds (a quarter of the smallest upload_timeout), queued on the writer
 * without waiting, so that expiry on any node never takes a busy session for idle.
 *
 * Finishing checks the digest, sends the tail as the last part, completes the multipart upload, and copies the
 * object to PREFIX/blobs/sha256/ab/<hex> (CopyObject, or above BERTH_S3_COPY_MAX a multipart copy made of
 * UploadPartCopy ranges; a session that never filled a part is PUT there directly); the committed object's size is
 * checked with a HEAD before the caller commits the blob's row (content first, row second), and the caller's
 * commit deletes the state row (s3upload_forget) in the same transaction.  Expiry aborts the multipart uploads of
 * idle sessions, those no session row names, and multipart copies left under PREFIX/blobs/ by a crash.
 *
 * Threads: the functions that talk to S3 block (call them on workers, never on a loop); only s3upload_remove,
 * s3upload_sync, the naming of a new multipart upload and s3upload_expire wait for the writer.
 */
#ifndef BERTH_S3UPLOAD_H
#define BERTH_S3UPLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "blobstore.h"
#include "db.h"

struct s3upload;

/** A new, empty state of session `uuid` (nothing in S3 or the database yet).  Returns 0 or BERR_NOMEM. */
int s3upload_new(const char *uuid, struct s3upload **out);
/** Loads the saved state of session `uuid` (an empty state if it has none) with a read on `db` (the calling
 *  thread's connection; NULL: through the writer).  Returns 0 or a BERR code. */
int s3upload_load(const struct blobstore *bs, struct db *db, const char *uuid, struct s3upload **out);
/** Bytes received so far. */
uint64_t s3upload_size(const struct s3upload *x);
/** Hashes and buffers `data[0..len)`, sending full parts.  Returns 0 or a BERR code (then the state is unusable:
 *  free it and load the session again; BERR_NOMEM before any byte was taken leaves it usable). */
int s3upload_append(const struct blobstore *bs, struct s3upload *x, const void *data, size_t len);
/** At the end of a request: sends a buffer of at least BERTH_S3_PART_MIN as a part.  Returns 0 or a BERR code. */
int s3upload_flush(const struct blobstore *bs, struct s3upload *x);
/** 1 if the state is usable and differs from its row (a save is due), else 0. */
int s3upload_dirty(const struct s3upload *x);
/** A writer operation (writer.h; arg: the struct s3upload, untouched by anything else until the result is known):
 *  saves the state in its row.  Returns 0, BERR_BLOB_UPLOAD_INVALID (another request or node changed the session
 *  meanwhile) or a BERR code.  Then call s3upload_saved with the write's result. */
int s3upload_save(struct db *db, void *arg);
/** Records the result of s3upload_save's write (0: committed). */
void s3upload_saved(struct s3upload *x, int rc);
/** s3upload_flush, then s3upload_save through the writer, waiting for it (tools and tests).  Returns 0,
 *  BERR_BLOB_UPLOAD_INVALID or a BERR code. */
int s3upload_sync(const struct blobstore *bs, struct s3upload *x);
/** Verifies the content against `expected`, stores it as that blob and checks the stored size (the multipart
 *  upload is completed or aborted either way; the state row stays for the caller's s3upload_forget).  Returns 0,
 *  BERR_DIGEST_INVALID or a BERR code. */
int s3upload_finish(const struct blobstore *bs, struct s3upload *x, const char *expected);
/** A writer-side statement: deletes session `uuid`'s state row (none is fine).  Returns 0 or BERR_DB. */
int s3upload_forget(struct db *db, const char *uuid);
/** Aborts session `uuid`'s multipart upload and forgets its state (nothing to do is fine; waits for the writer). */
void s3upload_remove(const struct blobstore *bs, const char *uuid);
/** Frees a state (safe on NULL); touches neither S3 nor the database. */
void s3upload_free(const struct blobstore *bs, struct s3upload *x);
/** Expires idle sessions: those whose state (or, without state, whose session row) is older than `cutoff` and that
 *  `held(ctx, uuid)` does not report as in use lose their multipart upload, state and session row; multipart
 *  uploads under PREFIX/uploads/ started before `cutoff` that no saved state names are aborted.  Returns the number
 *  of sessions removed, or a BERR code. */
int s3upload_expire(const struct blobstore *bs, time_t cutoff, int (*held)(void *ctx, const char *uuid), void *ctx);

#endif
