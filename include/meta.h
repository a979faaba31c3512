/*
 * meta.h - typed metadata queries over berth.db: repositories, blob links, manifests and their references, tags,
 * referrers, upload sessions.
 *
 * This is the seam for a future PostgreSQL backend: callers see repository names, digests and plain structs, never
 * SQL.  Functions marked "write" must run inside a write transaction (the writer thread's batch, or db_begin /
 * db_commit in the command-line tools); the others are reads and may run on any connection.  All strings passed in
 * have been validated by names.h / digest.h.  Strings handed to callbacks live until the callback returns.
 */
#ifndef BERTH_META_H
#define BERTH_META_H

#include <stddef.h>
#include <stdint.h>
#include "db.h"
#include "defaults.h"
#include "manifest.h"

/** Callback for listings: return 0 to go on, a positive value to stop early (the listing succeeds), or a negative
 *  BERR code to abort (the listing returns it). */
typedef int (*meta_name_cb)(void *ctx, const char *name);
/** Allocator used to copy manifest bodies out (e.g. a request pool). */
typedef void *(*meta_alloc_fn)(void *ctx, size_t size);

/* ---- repositories ---- */

/** The id of repository `name`.  Returns 0, BERR_NAME_UNKNOWN or BERR_DB. */
int meta_repo_id(struct db *db, const char *name, int64_t *id);
/** write: id of repository `name`, creating it.  Returns 0 or BERR_DB. */
int meta_repo_ensure(struct db *db, const char *name, int64_t *id);

/* ---- blobs ---- */

/** Size of blob `digest` if repository `repo` links it.  Returns 0 or BERR_BLOB_UNKNOWN. */
int meta_blob_stat(struct db *db, const char *repo, const char *digest, int64_t *size);
/** Size of blob `digest` if any repository has it (for idempotent commits).  Returns 0 or BERR_BLOB_UNKNOWN. */
int meta_blob_known(struct db *db, const char *digest, int64_t *size);
/** write: records blob `digest` of `size` bytes (its file is already durable in blobs/) and links it to `repo`. */
int meta_blob_commit(struct db *db, const char *repo, const char *digest, int64_t size);
/** write: links blob `digest` into `repo` if repository `from` links it.  Returns 0 or BERR_BLOB_UNKNOWN. */
int meta_blob_mount(struct db *db, const char *repo, const char *from, const char *digest, int64_t *size);
/** write: removes the link of `digest` from `repo` (the file stays for GC).  Returns 0 or BERR_BLOB_UNKNOWN. */
int meta_blob_unlink(struct db *db, const char *repo, const char *digest);

/* ---- manifests ---- */

struct meta_manifest {
    int64_t id;
    char digest[BERTH_DIGEST_MAX];
    char media_type[MT_MEDIA_TYPE_MAX + 1];
    void *body; /* from the caller's allocator; NULL when only the head was asked for */
    size_t size;
};

/** Looks up manifest `ref` (a tag, or a digest when `by_digest`) of `repo`.  Copies the body with `alloc` unless it
 *  is NULL.  Returns 0 or BERR_MANIFEST_UNKNOWN (BERR_NOMEM if alloc fails). */
int meta_manifest_get(struct db *db, const char *repo, const char *ref, int by_digest, struct meta_manifest *out,
                      meta_alloc_fn alloc, void *alloc_ctx);
/** write: stores manifest `digest` with its exact bytes and references, and points `tag` (may be NULL) at it, after
 *  checking that every reference exists in `repo`: BERR_MANIFEST_BLOB_UNKNOWN for a missing blob,
 *  BERR_MANIFEST_CHILD_UNKNOWN (OCI code MANIFEST_UNKNOWN) for a missing child manifest, BERR_MANIFEST_INVALID for a
 * size mismatch; `detail` says which. */
int meta_manifest_put(struct db *db, const char *repo, const char *digest, const struct manifest_info *mi,
                      const void *body, size_t len, const char *tag, char *detail, size_t detail_size);
/** write: deletes manifest `digest` of `repo`, every tag pointing to it, and its referrers (manifests of `repo` whose
 *  subject it is, recursively: they live and die with their subject).  Returns 0 or BERR_MANIFEST_UNKNOWN. */
int meta_manifest_delete(struct db *db, const char *repo, const char *digest);
/** write: deletes tag `tag` of `repo` only.  Returns 0 or BERR_MANIFEST_UNKNOWN. */
int meta_tag_delete(struct db *db, const char *repo, const char *tag);
/** write: sets last_pulled_at of manifest `id` to `when` (if later). */
int meta_manifest_pulled(struct db *db, int64_t id, long long when);

/* ---- listings ---- */

/** Tags of `repo` after `last` (may be NULL) in byte order, at most `n`; *more is set if there are others.
 *  Returns 0 or BERR_NAME_UNKNOWN. */
int meta_tags_list(struct db *db, const char *repo, const char *last, int n, meta_name_cb cb, void *ctx, int *more);
/** Repository names after `last` (may be NULL), at most `n`; *more is set if there are others. */
int meta_catalog(struct db *db, const char *last, int n, meta_name_cb cb, void *ctx, int *more);

struct meta_referrer {
    const char *digest, *media_type, *artifact_type, *annotations; /* artifact_type, annotations may be NULL */
    int64_t size;
};
typedef int (*meta_referrer_cb)(void *ctx, const struct meta_referrer *r);
/** Manifests of `repo` whose subject is `subject`, optionally only those of `artifact_type`, at most `max`. */
int meta_referrers(struct db *db, const char *repo, const char *subject, const char *artifact_type, int max,
                   meta_referrer_cb cb, void *ctx);

/* ---- upload sessions ---- */

/** write: records a new upload session `uuid` for `repo`. */
int meta_upload_add(struct db *db, const char *uuid, const char *repo);
/** 0 if session `uuid` exists and belongs to `repo`, else BERR_BLOB_UPLOAD_UNKNOWN. */
int meta_upload_find(struct db *db, const char *uuid, const char *repo);
/** write: forgets session `uuid` (no error if absent). */
int meta_upload_del(struct db *db, const char *uuid);
/** Calls `cb` with the uuid of every session, in uuid order (for start-up reconciliation and the janitor). */
int meta_uploads_each(struct db *db, meta_name_cb cb, void *ctx);

#endif
