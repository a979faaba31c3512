/*
 * blobstore.h - blob files on local disk, addressed by digest.  The seam for a future S3-compatible backend.
 *
 * Layout under the data directory (the one function that maps things to paths is blobstore_path()):
 *
 *   <data>/blobs/sha256/ab/ab12…ef   a committed blob, read-only, shared by every repository
 *   <data>/uploads/<uuid>            an upload session's staging file (same filesystem: rename(2) is atomic)
 *   <data>/tmp/                      h2o's spill files for large request bodies
 *
 * Invariants: a file appears under blobs/ only fully written, fsynced and verified against its digest, by one
 * rename followed by an fsync of its directory (file first, row second: the metadata row is committed after
 * blobstore_commit() returns).  Committing a digest that already exists drops the staging file (idempotent).
 */
#ifndef BERTH_BLOBSTORE_H
#define BERTH_BLOBSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define BLOBSTORE_PATH_MAX 4096

struct blobstore {
    char root[BLOBSTORE_PATH_MAX - 128]; /* the data directory */
};

/** Creates blobs/sha256, uploads and tmp under `datadir` if needed.  Returns 0 or a BERR code. */
int blobstore_init(struct blobstore *bs, const char *datadir);
/** Writes the path of committed blob `digest` (validated) into `out`. */
void blobstore_path(const struct blobstore *bs, const char *digest, char *out, size_t size);
/** Writes the staging path of upload `uuid` (validated) into `out`. */
void blobstore_upload_path(const struct blobstore *bs, const char *uuid, char *out, size_t size);
/** Writes the spill directory path into `out`. */
void blobstore_tmp_dir(const struct blobstore *bs, char *out, size_t size);
/** Opens blob `digest` read-only; *size is its length.  Returns 0, BERR_BLOB_UNKNOWN or BERR_IO. */
int blobstore_open(const struct blobstore *bs, const char *digest, int *fd, uint64_t *size);
/** Moves the fsynced staging file `staging` to blob `digest`, or drops it if the blob already exists.
 *  Returns 0 or a BERR code. */
int blobstore_commit(const struct blobstore *bs, const char *staging, const char *digest);
/** Removes blob `digest` (garbage collection only).  Returns 0 or a BERR code. */
int blobstore_remove(const struct blobstore *bs, const char *digest);
/** fsyncs directory `path`.  Returns 0 or a BERR code. */
int blobstore_fsync_dir(const char *path);

/** Calls `fn(ctx, name, mtime)` for every entry of uploads/ (not "." files; names are not validated: callers check
 *  them with upload_uuid_valid).  Stops at fn's first non-zero result and returns it; returns 0 when all were
 *  seen, or BERR_IO if uploads/ cannot be read. */
int blobstore_uploads_each(const struct blobstore *bs, int (*fn)(void *ctx, const char *name, time_t mtime), void *ctx);
/** 1 if the staging file of upload `uuid` exists, 0 if not. */
int blobstore_upload_exists(const struct blobstore *bs, const char *uuid);
/** Removes every file in tmp/ (h2o unlinks its request-body spill files while open: anything left is from a
 *  crash).  Returns the number removed, or BERR_IO if tmp/ cannot be read. */
int blobstore_tmp_clear(const struct blobstore *bs);

#endif
