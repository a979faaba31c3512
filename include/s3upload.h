/*
 * s3upload.h - blob upload sessions on S3 (the blobstore's S3 backend; upload.c dispatches here when the
 * blobstore has a bucket).
 *
 * A session is an S3 multipart upload of PREFIX/uploads/<uuid>: the bytes a client sends are hashed as they arrive
 * and buffered until a part is full (BERTH_S3_PART_SIZE), then sent as the next part.  At the end of every request
 * (s3upload_sync) a buffer of at least BERTH_S3_PART_MIN goes out as a part too, and the state any node needs to
 * continue - multipart upload id, part ETags, size, the buffered tail (< BERTH_S3_PART_MIN) and the SHA-256 state
 * (OpenSSL's SHA256_CTX, stored as its bytes: every node must run the same build) - is saved in the database row of
 * the session (table upload_s3), guarded by the size it had when it was loaded: a node working on a stale copy gets
 * BERR_BLOB_UPLOAD_INVALID instead of overwriting a newer state.  Bytes of a request that failed are not saved:
 * the session stays at its last saved size, which is what the client sees in the upload's status.
 *
 * Finishing checks the digest, sends the tail as the last part, completes the multipart upload, and copies the
 * object to PREFIX/blobs/sha256/ab/<hex> (a session that never filled a part is PUT there directly); the committed
 * object's size is checked with a HEAD before the caller commits the blob's row (content first, row second).
 * Expiry aborts the multipart uploads of idle sessions, and those no session row names (a crash between sending a
 * part and saving the state).
 *
 * Rows are read and written through the writer (writer_run): call these functions on workers, never on a loop.
 */
#ifndef BERTH_S3UPLOAD_H
#define BERTH_S3UPLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "blobstore.h"

struct s3upload;

/** A new, empty session state (nothing in S3 or the database yet).  Returns 0 or BERR_NOMEM. */
int s3upload_new(struct s3upload **out);
/** Loads the saved state of session `uuid` (an empty state if it has none).  Returns 0 or a BERR code. */
int s3upload_load(const struct blobstore *bs, const char *uuid, struct s3upload **out);
/** Bytes received so far. */
uint64_t s3upload_size(const struct s3upload *x);
/** Hashes and buffers `data[0..len)`, sending full parts.  Returns 0 or a BERR code (then the state is unusable:
 *  free it and load the session again). */
int s3upload_append(const struct blobstore *bs, const char *uuid, struct s3upload *x, const void *data, size_t len);
/** Sends a buffer of at least BERTH_S3_PART_MIN as a part and saves the state.  Returns 0,
 *  BERR_BLOB_UPLOAD_INVALID (another request or node changed the session meanwhile) or a BERR code. */
int s3upload_sync(const struct blobstore *bs, const char *uuid, struct s3upload *x);
/** Verifies the content against `expected`, stores it as that blob and checks the stored size, then forgets the
 *  session's state (its multipart upload is completed or aborted either way).  Returns 0, BERR_DIGEST_INVALID or a
 *  BERR code. */
int s3upload_finish(const struct blobstore *bs, const char *uuid, struct s3upload *x, const char *expected);
/** Aborts session `uuid`'s multipart upload and forgets its state (nothing to do is fine). */
void s3upload_remove(const struct blobstore *bs, const char *uuid);
/** Frees the state of session `uuid` (safe on NULL); a multipart upload it started but never saved is aborted. */
void s3upload_free(const struct blobstore *bs, const char *uuid, struct s3upload *x);

/** Expires idle sessions: those whose state (or, without state, whose session row) is older than `cutoff` and that
 *  `held(ctx, uuid)` does not report as in use lose their multipart upload, state and session row; multipart
 *  uploads under PREFIX/uploads/ started before `cutoff` that no saved state names are aborted.  Returns the number
 *  of sessions removed, or a BERR code. */
int s3upload_expire(const struct blobstore *bs, time_t cutoff, int (*held)(void *ctx, const char *uuid), void *ctx);

#endif
