/*
 * gc.h - online garbage collection of blobs: runs while the server serves pulls and pushes, from the server's
 * scheduler or from `berth gc` in another process on the same data directory.
 *
 * What is garbage (after a grace period `grace`, default BERTH_DEFAULT_GC_GRACE):
 *   - a repository -> blob link (repo_blobs) that no manifest of that repository references and that was made
 *     (upload, mount, re-upload) more than `grace` ago;
 *   - a blob row with no link left and no manifest referencing it, created more than `grace` ago, and its file;
 *   - a file under blobs/ without a row whose ctime is older than max(grace, GC_ORPHAN_MIN_AGE) (left by a crash
 *     between an upload's rename and its row commit).
 * With blobs in S3 (blobstore_use_s3) "file" means the blob's object: unlinking is a DELETE, the orphan sweep
 * lists the bucket (LastModified for the age), and the commit check is a HEAD.
 *
 * The protocol (why GC never races a push, and why a crash at any moment leaves no row without its file):
 *   1. Rows go in short write transactions (BEGIN IMMEDIATE, at most GC_BATCH rows each): every DELETE re-checks
 *      in its own statement, under the write lock, that nothing references the row, so a manifest PUT or a mount
 *      committed a moment earlier keeps it.  Each deleted blob's digest is recorded in the table gc_pending in the
 *      same transaction, with an EVENT_GC event (events.h: repository "", the digest and size), so the deletion and
 *      its event commit together or not at all.
 *   2. Files are unlinked afterwards, again under the write lock, and only for digests in gc_pending that have no
 *      blob row: the pending row is deleted in the same transaction.  A crash between 1 and 2 leaves pending rows,
 *      which the next gc_run() or gc_finish_pending() (at server start) completes.  A file without a row is
 *      harmless; a row without a file cannot arise, because:
 *   3. every path that inserts a blob row (an upload's commit) first calls gc_blob_commit_check() inside its write
 *      transaction: if the row is absent it removes any gc_pending entry for the digest (so GC will not unlink the
 *      file) and then requires the file to exist.  If GC got there first the upload is answered
 *      BLOB_UPLOAD_UNKNOWN and the client uploads again; a manifest PUT after step 1 finds no link and is answered
 *      MANIFEST_BLOB_UNKNOWN.  Reads never wait: they see the row or not, and a GET that raced the unlink answers
 *      404 like any unknown blob.
 * The server keeps no cache of blob existence (every HEAD/GET asks berth.db, then opens the file), so nothing in
 * a running server can believe in a blob that GC removed from another process.
 */
#ifndef BERTH_GC_H
#define BERTH_GC_H

#include "blobstore.h"
#include "db.h"

#define GC_BATCH 256           /* rows deleted (or files unlinked) per write transaction */
#define GC_ORPHAN_MIN_AGE 600  /* a file without a row younger than this (seconds) is never removed */
#define GC_PROGRESS_EVERY 4096 /* call the progress callback at least every this many rows examined */

struct gc_opts {
    long long now;   /* the current time (seconds since the epoch) */
    long long grace; /* seconds; 0 collects everything unreferenced right away */
    int dry_run;     /* 1: count what would be removed, remove nothing */
};

struct gc_stats {
    long long links_examined, links_pruned;
    long long blobs_examined, blobs_deleted, bytes_reclaimed;
    long long files_unlinked, orphan_files; /* blob files removed; of those, files that had no row */
};

/** Called from time to time with the running totals. */
typedef void (*gc_progress_fn)(void *ctx, const struct gc_stats *s);

/** Collects garbage as described above; `db` must not be inside a transaction.  Returns 0 or a BERR code (what
 *  committed before an error stays committed and is consistent). */
int gc_run(struct db *db, const struct blobstore *bs, const struct gc_opts *o, gc_progress_fn progress, void *ctx,
           struct gc_stats *stats);

/** Completes the unlinks that a crashed GC left in gc_pending (call at server start).  Returns 0 or a BERR code. */
int gc_finish_pending(struct db *db, const struct blobstore *bs, long long *unlinked);

/** write: to be called inside the write transaction that commits blob `digest`, before its row is inserted:
 *  returns 0 if the row exists, or if its file exists (then cancels any pending GC unlink of it); else
 *  BERR_BLOB_UPLOAD_UNKNOWN (GC removed the file: the client must upload again) or BERR_DB. */
int gc_blob_commit_check(struct db *db, const struct blobstore *bs, const char *digest);

/** 1 if `digest` is waiting in gc_pending for its file to be unlinked (for fsck), else 0. */
int gc_is_pending(struct db *db, const char *digest);

#endif
