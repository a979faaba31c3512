/*
 * migrate.h - `berth migrate`: copies a single-node registry (SQLite berth.db + blobs on disk + keys/) into the
 * metadata and storage of another configuration (PostgreSQL and/or S3, or another data directory).
 *
 * Order (content first, row second, as everywhere): for each row of `blobs`, the blob is read from the source
 * disk, re-hashed while it is copied, and stored in the target (S3 PutObject, or a multipart upload completed only
 * after the digest matched; on disk a fsynced staging file renamed into place); only then is its `blobs` row
 * written.  A digest or size mismatch stops the migration with both digests.  Then every other table is copied
 * in dependency order by upserts (INSERT … ON CONFLICT (primary key) DO UPDATE), the derived counters (repos.bytes,
 * quotas.used, stats) are recomputed from the copied rows, PostgreSQL identity sequences are moved past the copied
 * ids, and the source's keys/ files become shared_keys rows (PostgreSQL) or files under the target's keys/.
 *
 * Copied: repos, blobs (content and rows), repo_blobs, manifests, manifest_blobs, manifest_children, tags, users,
 * tokens, grants, lifecycle_policies, access_keys, ecr_repos, ecr_tags, ecr_settings, ecr_lifecycle_previews, events,
 * webhook_cursors, quotas, and keys/ (signing keys current and previous, the access-key sealing key). Not copied:
 * uploads and upload_s3 (sessions in progress: the client restarts its upload), gc_pending (GC's transient marks; the
 * next GC run recomputes them), stats (recomputed).  A source table this list does not know stops the migration
 * (nothing is dropped silently).
 *
 * Resumable: a blob whose object exists in the target and whose row is there is skipped; rows are upserts.  A run
 * killed at any moment is finished by running it again.
 *
 * Refusal: a target holding a repository or user that the source does not have (same id and name) belongs to
 * another registry; migrate refuses it unless `force` is set.  The first start of a node on an empty PostgreSQL
 * database creates admin (id 1): accepted when the source's user 1 is admin too (then overwritten by the source's
 * row), refused otherwise.
 *
 * Shared with backup.h: `berth restore` into PostgreSQL/S3 stores each blob with migrate_put_blob, then copies the
 * rows with migrate_run (blobs_in_target); `berth backup` on PostgreSQL writes its snapshot with migrate_dump (the
 * same table list, upsert builder and recomputation, in the other direction).
 *
 * No h2o here; server/cli_migrate.c parses flags, draws the progress line and prints the summary.
 */
#ifndef BERTH_MIGRATE_H
#define BERTH_MIGRATE_H

#include <stddef.h>
#include <stdint.h>

#define MIGRATE_CHUNK (8u << 20) /* bytes read from a source blob per step (one S3 part) */
#define MIGRATE_BATCH 500        /* rows upserted per target transaction */
#define MIGRATE_SQL_MAX 8192     /* bytes of one generated upsert statement */
#define MIGRATE_COLS_MAX 32      /* columns of one table */
#define MIGRATE_KEY_FILE_MAX 256 /* bytes of one keys/ file (KEYS_VALUE_MAX) */

struct blobstore;

/** What one run did. */
struct migrate_summary {
    uint64_t blobs;         /* blobs copied (and verified) by this run */
    uint64_t blob_bytes;    /* their bytes */
    uint64_t blobs_skipped; /* blobs already in the target (object and row) */
    uint64_t skipped_bytes; /* their bytes */
    uint64_t rows;          /* rows upserted into the target, all tables */
    uint64_t tables;        /* tables copied */
    uint64_t keys;          /* keys/ files copied */
};

/** Options of one run. */
struct migrate_opts {
    const char *from;              /* the source data directory (berth.db, blobs/, keys/) */
    const char *to_data;           /* the target's data directory (berth.db with SQLite, blobs/ on disk, keys/) */
    const char *to_metadata;       /* the target's metadata setting: "sqlite" or a postgresql:// URL */
    const struct blobstore *to_bs; /* the target's blobstore, ready (disk under to_data, or S3) */
    int force;                     /* accept a target that holds another registry's rows */
    int check_only;                /* open both and run the checks (tables, refusal), copy nothing */
    int blobs_in_target;           /* copy the blob rows only: the caller stored and verified every blob (restore) */
    const char *origin;            /* what `from` is, for messages (NULL: "the source") */
    void (*progress)(void *arg, uint64_t done, uint64_t total); /* blob bytes done / total, or NULL */
    void *progress_arg;
};

/** A source of one blob's bytes: reads at most `n` bytes into `p`; returns the count (0 at the end) or a negative
 *  BERR code. */
typedef long (*migrate_read_fn)(void *ctx, void *p, size_t n);

/** Copies the registry at o->from into o->to (see above); `s` receives the counts.  Returns 0, or a BERR code
 *  with the reason in `err` (`errlen` bytes). */
int migrate_run(const struct migrate_opts *o, struct migrate_summary *s, char *err, size_t errlen);

/** Stores blob `digest` (`size` bytes read with `rd`) in blobstore `to` as migrate does, content verified before it
 *  is visible: S3 PutObject after hashing (up to MIGRATE_CHUNK), else a multipart upload completed only after the
 *  digest and size matched (aborted otherwise); on disk a fsynced staging file in tmp/, verified, then committed.
 *  `buf` holds MIGRATE_CHUNK bytes; `origin` names the bytes' source in messages.  Returns 0, or a BERR code with
 *  the reason in `err` (BERR_DIGEST_INVALID: the bytes do not hash to `digest`, nothing was stored). */
int migrate_put_blob(const struct blobstore *to, const char *digest, uint64_t size, migrate_read_fn rd, void *ctx,
                     unsigned char *buf, const char *origin, char *err, size_t errlen);

/** The other direction, for `berth backup` on PostgreSQL: writes the database that `metadata` (a postgresql://
 *  URL) names into a new SQLite registry in directory `dir` (which must hold no berth.db yet): berth.db with the
 *  current schema and, in one REPEATABLE READ snapshot of PostgreSQL read through a cursor (MIGRATE_BATCH rows per
 *  fetch), every table migrate copies plus the `blobs` rows, ids kept, derived counters recomputed; and keys/<name>
 *  (0600) for every shared_keys row.  A PostgreSQL table this file does not know stops it.  `s` receives the row and
 *  table counts.  Leaves db_set_metadata at `metadata`.  Returns 0, or a BERR code with the reason in `err`. */
int migrate_dump(const char *metadata, const char *dir, struct migrate_summary *s, char *err, size_t errlen);

#endif
