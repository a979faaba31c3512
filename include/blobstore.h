/*
 * blobstore.h - blob files on local disk, addressed by digest.  The seam for a future S3-compatible backend.
 *
 * Layout under the data directory (the one function that maps things to paths is blobstore_path()):
 *
 *   <data>/blobs/sha256/ab/ab12…ef   a committed blob, read-only, shared by every repository
 *   <data>/uploads/<uuid>            an upload session's staging file (same filesystem: rename(2) is atomic)
 *   <data>/tmp/                      h2o's spill files for large request bodies
 *
 * Backends: blobs live on disk (above), or in an S3 bucket once blobstore_use_s3() was called (storage =
 * s3://BUCKET[/PREFIX]; blobstore_s3.c):
 *
 *   PREFIX/blobs/sha256/ab/ab12…ef   a committed blob object (written once, verified, then its row commits)
 *   PREFIX/uploads/<uuid>            an upload session's multipart upload (s3upload.h), copied to blobs/ on commit
 *
 * On S3 the disk layout keeps only tmp/ (h2o's spill files); upload sessions keep their state in the database.
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

struct s3;
struct s3_config;

struct blobstore {
    char root[BLOBSTORE_PATH_MAX - 128]; /* the data directory */
    struct s3 *s3;                       /* NULL: blobs on disk; else their bucket (blobstore_use_s3) */
    char s3_prefix[288];                 /* "" or "PREFIX/": every object key starts with it */
    int s3_redirect;                     /* blob GETs answer 307 to a presigned URL */
    int s3_presign_ttl;                  /* seconds such a URL stays valid (BERTH_S3_PRESIGN_TTL by default) */
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

/* ---- the S3 backend (blobstore_s3.c); the functions below also work on disk unless noted ---- */

/** Puts the blobs of `bs` (initialized) in the bucket of `cfg` under `prefix` ("" or "a/b", no leading or trailing
 *  '/'); with `redirect`, blob GETs answer 307 to a presigned URL.  Returns 0 or a BERR code. */
int blobstore_use_s3(struct blobstore *bs, const struct s3_config *cfg, const char *prefix, int redirect);
/** Frees the backend's client (safe on a disk blobstore). */
void blobstore_release(struct blobstore *bs);
/** Writes the object key of committed blob `digest` into `out` (S3 only). */
void blobstore_key(const struct blobstore *bs, const char *digest, char *out, size_t size);
/** Writes the object key of upload `uuid`'s multipart upload into `out` (S3 only). */
void blobstore_upload_key(const struct blobstore *bs, const char *uuid, char *out, size_t size);
/** 1 if blob `digest` is stored, 0 if not, or a negative BERR code (S3 unreachable). */
int blobstore_exists(const struct blobstore *bs, const char *digest);
/** Removes blob `digest` (garbage collection only).  Returns 0 (removed, or nothing to remove on S3, which does
 *  not tell), BERR_BLOB_UNKNOWN (no such file on disk) or another BERR code. */
int blobstore_delete(const struct blobstore *bs, const char *digest);
/** Streams `len` bytes (0: to the end) of blob `digest` from `off` into `sink` (S3 only).  Returns 0 or a BERR code
 *  (or the sink's non-zero result). */
int blobstore_read(const struct blobstore *bs, const char *digest, uint64_t off, uint64_t len,
                   int (*sink)(void *ctx, const void *p, size_t n), void *ctx);
/** Calls `fn(ctx, digest, mtime)` for every object under PREFIX/blobs/sha256/ named like a blob (S3 only; on disk
 *  GC and fsck walk the directories); stops at fn's first non-zero result and returns it.  Returns 0 or a BERR
 *  code. */
int blobstore_objects_each(const struct blobstore *bs, int (*fn)(void *ctx, const char *digest, time_t mtime),
                           void *ctx);
/** A presigned GET URL of blob `digest`, valid BERTH_S3_PRESIGN_TTL seconds from `now` (S3 only).  Returns 0 or
 *  BERR_INTERNAL. */
int blobstore_presign(const struct blobstore *bs, const char *digest, time_t now, char *out, size_t size);

#endif
