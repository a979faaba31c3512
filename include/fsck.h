/*
 * fsck.h - checking a data directory: every blob re-hashed, rows against files, references against rows, upload
 * sessions against staging files, and SQLite's own integrity_check.  Safe to run while `berth serve` runs on the
 * same directory: anything younger than FSCK_FRESH_AGE may belong to a commit in progress and is not judged, and
 * every finding is re-checked against berth.db before it is reported.
 *
 * Findings (one callback each, `kind` is a stable word):
 *   integrity            PRAGMA integrity_check / foreign_key_check reported a problem          (never repaired)
 *   corrupt              a blob file's content does not hash to its digest, or its size differs (never repaired)
 *   row-without-file     a blob row whose file is missing                                        (never repaired)
 *   manifest-blob-missing, manifest-child-missing
 *                        a manifest references a blob / child manifest that is not there        (never repaired)
 *   manifest-blob-unlinked  a manifest references a blob its repository does not link (a pull would fail)
 *                                                                                        (never repaired)
 *   file-without-row     a file under blobs/ that no row describes                    (--repair: file removed)
 *   stray-file           a file under blobs/ whose name is not a digest                           (reported only)
 *   link-without-blob    a repository -> blob link to a blob without a row, that no manifest needs
 *                                                                                      (--repair: link removed)
 *   upload-without-file  an upload session row whose staging file is missing          (--repair: row removed)
 *   upload-file-without-row  a staging file under uploads/ with no session row        (--repair: file removed)
 * With blobs in S3 (blobstore_use_s3), "file" means the blob's object: each is re-hashed as it streams from the
 * bucket, objects come from a listing (their LastModified is the age), and the upload checks are skipped (S3
 * sessions have no staging file).
 * Repair removes only garbage and never deletes or invents what a manifest needs: corruption stays reported.
 * Files whose blob is in gc_pending (a GC interrupted between its two steps, gc.h) are not findings.
 */
#ifndef BERTH_FSCK_H
#define BERTH_FSCK_H

#include "blobstore.h"
#include "db.h"

#define FSCK_FRESH_AGE 60                /* seconds: files changed more recently than this are not judged */
#define FSCK_PROGRESS_BYTES (256u << 20) /* call the progress callback after about this many bytes hashed */

struct fsck_stats {
    long long files, bytes; /* blob files re-hashed and their bytes */
    long long findings, repaired;
};

typedef void (*fsck_finding_fn)(void *ctx, const char *kind, const char *what, const char *detail);
typedef void (*fsck_progress_fn)(void *ctx, const struct fsck_stats *s);

/** Checks (and with `repair`, cleans) the data directory of `bs` and its berth.db `db` (not inside a
 *  transaction), at time `now`.  Calls `finding` for each finding and `progress` while hashing.  Returns 0 (look
 *  at stats->findings) or a BERR code if the check itself could not run. */
int fsck_run(struct db *db, const struct blobstore *bs, int repair, long long now, fsck_finding_fn finding,
             fsck_progress_fn progress, void *ctx, struct fsck_stats *stats);

#endif
