/*
 * backup.h - `berth backup` and `berth restore`: a whole registry in one zstd-compressed tar stream, taken while
 * the server runs (one node, or every node of a PostgreSQL + S3 cluster).  One archive format for every backend.
 *
 * Consistency: the metadata is snapshotted first, then the blobs listed in that snapshot are copied.  Blobs are
 * immutable once committed and every row's blob was stored before its row (content first, row second), so every
 * row of the snapshot has its blob and no lock is held over their copy; pushes go on.  A blob that garbage
 * collection removes between the snapshot and its copy fails the backup (retry).
 *   - SQLite: berth.db is copied with SQLite's online backup API into a private snapshot (a read transaction).
 *   - PostgreSQL: migrate_dump (migrate.h) writes one REPEATABLE READ, READ ONLY snapshot of every table into a new
 *     SQLite berth.db with the current schema (ids kept, derived counters recomputed) and the shared_keys rows into
 *     keys/ files: the archive is the one a single node would write.  Before the snapshot the backup takes the
 *     cluster's maintenance lock (db_maint_trylock) and holds it until the last blob is copied, so that no node's
 *     scheduled lifecycle/GC round runs meanwhile (a run in progress is waited for up to BACKUP_MAINT_WAIT_MS).
 *   - Blobs on disk are read from blobs/; blobs on S3 are streamed (ranged GETs into the tar stream, never whole in
 *     memory), hashed on the way, and a blob whose bytes do not match its digest and size fails the backup.
 *
 * Archive (ustar inside one zstd stream with frame checksums):
 *
 *   berth-backup.json              first: {"format":1,"id","created_at","base":id|null,
 *                                          "blobs":[[digest,size,in_this_archive 0|1],…]}
 *   berth.db                       the snapshot (always SQLite)
 *   keys/<name>                    token-signing and secret keys (mode 0600)
 *   blobs/sha256/ab/<hex>          every blob of the snapshot (an incremental archive: those its base lacks)
 *   berth-backup.end               last: {"blobs":n,"blob_bytes":b,"files":{name:sha256,…}} — sha256 of every
 *                                  non-blob file; its absence means a truncated archive
 *
 * Incremental (`--incremental-from OLD`): only OLD's first entry is read (its blob list); blobs OLD lists are left
 * out.  Restoring it needs OLD (and OLD's own bases) with `--base`.
 *
 * Restore into SQLite + disk: refuses a target that exists and is not an empty directory; unpacks into a fresh
 * directory next to the target (same file system), verifies the zstd checksums, the tar header checksums, every
 * blob's digest and size against the list, and the sha256 of every other file against the trailer; any failure
 * removes the temporary directory and reports what failed.  Only a complete, verified restore is fsynced and
 * renamed to the target, so nothing half-restored is ever left under the target's name.
 *
 * Restore into PostgreSQL and/or S3 (or SQLite + S3, PostgreSQL + disk): berth.db and keys/ are unpacked into
 * <data>/.berth-restore; before the first blob the target is checked as `berth migrate` checks it (a target holding
 * another registry's repositories or users is refused unless `force`); each blob is stored in the target's
 * blobstore as it streams by, verified before it becomes visible (migrate_put_blob: a multipart upload completed
 * only after digest and size matched), or skipped when the target already has it (an earlier run stored it); after
 * the trailer and the rows' blobs are verified, migrate_run copies every row (blob rows included) and the keys into
 * the target, ids kept.  Every step is idempotent: a run killed at any moment is finished by running it again.  A
 * run that fails after storing blobs leaves objects without rows, which GC's orphan sweep removes.
 *
 * No h2o here; the CLI (server/cli_backup.c) draws the progress and prints the summary.  backup.c writes,
 * restore.c reads (backup_internal.h); the zstd tar stream itself is tarz.h.
 */
#ifndef BERTH_BACKUP_H
#define BERTH_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#define BACKUP_FORMAT 1
#define BACKUP_BASES_MAX 16               /* --base archives one restore may read */
#define BACKUP_HEADER_MAX (256u << 20)    /* largest berth-backup.json accepted (the blob list) */
#define BACKUP_META_FILE_MAX (1ull << 40) /* largest berth.db / key file accepted from an archive */
#define BACKUP_DEFAULT_LEVEL 3            /* zstd level (3 = zstd's default: fast, good ratio) */
#define BACKUP_MAINT_WAIT_MS 60000        /* PostgreSQL: how long backup waits for a GC run to end (maint_guard) */
#define BACKUP_MAINT_POLL_MS 200          /* ... polling the maintenance lock this often */
#define BACKUP_S3_RETRIES 2               /* a blob GET cut off mid-stream is resumed (ranged) this many times */

/* Progress: `done` of `total` bytes of payload (blobs, database, keys) so far. */
typedef void (*backup_progress_fn)(void *arg, uint64_t done, uint64_t total);

struct blobstore;

struct backup_opts {
    const char *datadir;          /* the registry to back up (the server may be running) */
    const char *metadata;         /* NULL/"sqlite": berth.db in datadir; "postgresql://…": that database */
    const struct blobstore *bs;   /* where the blobs are (disk or S3); NULL: disk under datadir */
    const char *out;              /* FILE.tar.zst to write (written as FILE.tar.zst.tmp, renamed when complete) */
    const char *incremental_from; /* an older archive: leave out the blobs it lists; NULL = full */
    int level;                    /* zstd level; 0 = BACKUP_DEFAULT_LEVEL */
    int workers;                  /* zstd threads; 0 = one per core up to TARZ_WORKERS_MAX, 1 = none */
    backup_progress_fn progress;  /* may be NULL */
    void *progress_arg;
};

struct restore_opts {
    const char *archive;                 /* FILE.tar.zst */
    const char *datadir;                 /* target: must not exist, or be an empty directory (SQLite + disk) */
    const char *metadata;                /* NULL/"sqlite", or the target's postgresql:// URL */
    const struct blobstore *bs;          /* the target's blobstore; NULL: disk under datadir */
    int force;                           /* PostgreSQL/S3 target: accept one holding another registry's rows */
    const char *bases[BACKUP_BASES_MAX]; /* archives an incremental one builds on */
    int nbases;
    backup_progress_fn progress;
    void *progress_arg;
};

struct backup_summary {
    uint64_t blobs; /* blobs written to (backup) or unpacked from the archives (restore) */
    uint64_t blob_bytes;
    uint64_t skipped;       /* backup: blobs left out because the base has them */
    uint64_t payload_bytes; /* database + keys + blobs, uncompressed */
    uint64_t archive_bytes; /* compressed size of the archive written or read */
};

/** Writes the archive described in the header.  Returns 0, or a BERR code with a message in `err`. */
int backup_create(const struct backup_opts *o, struct backup_summary *sum, char *err, size_t errlen);
/** Restores an archive into o->datadir.  Returns 0, or a BERR code with a message in `err` (nothing is left at the
 *  target then). */
int backup_restore(const struct restore_opts *o, struct backup_summary *sum, char *err, size_t errlen);

#endif
