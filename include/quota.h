/*
 * quota.h - storage quotas on repositories and namespaces.
 *
 * A quota is a repository-name pattern (authdb.h's grammar: an exact name, or `*` wildcards matching any
 * characters including '/', as in team/<star>) and a limit in bytes.  The usage of a pattern is the sum, over the
 * repositories it matches, of the sizes of the blobs each links (repo_blobs): a blob counts once per repository,
 * as the user sees it, even though it is stored once.  Manifests (≤ 4 MiB each, kept in berth.db) are not counted.
 *
 * Invariants:
 *  - repos.bytes (per repository) and quotas.used (per quota) are kept by triggers on repo_blobs (migration in
 *    db.c), so every path that links or unlinks a blob (upload commit, mount, blob DELETE, lifecycle, GC, deleting a
 *    repository) keeps the usage right without calling this module.  A check at blob commit therefore reads only
 *    the quotas whose pattern matches the repository: its cost does not grow with the number of repositories.
 *    quota_set() computes a new quota's usage once (an indexed range read over repos); quota_recount() recomputes
 *    every quota from the links (for fsck).
 *  - quota_check() runs inside the write transaction that links the blob (the writer batch), so two concurrent
 *    pushes cannot both slip under a limit.
 */
#ifndef BERTH_QUOTA_H
#define BERTH_QUOTA_H

#include <stddef.h>
#include <stdint.h>
#include "db.h"

#define QUOTA_DETAIL_MAX 512 /* size of the message quota_check writes */

/** write: sets the quota of `pattern` to `limit` bytes (creating or replacing it).  Returns 0, BERR_BAD_REQUEST (an
 *  invalid pattern) or BERR_DB. */
int quota_set(struct db *db, const char *pattern, int64_t limit);
/** write: removes the quota of `pattern`.  Returns 0, BERR_NOT_FOUND or BERR_DB. */
int quota_del(struct db *db, const char *pattern);

/** Return non-zero to stop. */
typedef int (*quota_cb)(void *ctx, const char *pattern, int64_t limit, int64_t used);
/** Calls `cb` for every quota in pattern order, with its current usage.  Returns 0 or BERR_DB. */
int quota_each(struct db *db, quota_cb cb, void *ctx);
/** The usage of `pattern` (bytes of blobs linked by the repositories it matches) into *used, computed from
 *  repos.bytes.  Returns 0 or BERR_DB. */
int quota_usage(struct db *db, const char *pattern, int64_t *used);
/** write: recomputes every quota's kept usage from repos.bytes.  Returns 0 or BERR_DB. */
int quota_recount(struct db *db);

/** Would linking blob `digest` of `size` bytes into repository `repo` exceed a quota?  0 if not (also when `repo`
 *  already links it), else BERR_QUOTA_EXCEEDED with `detail` naming the quota, its limit, the usage and the blob's
 *  size; BERR_DB on error.  Call it in the transaction that links the blob. */
int quota_check(struct db *db, const char *repo, const char *digest, int64_t size, char *detail, size_t detail_size);

/** Formats `bytes` for people ("1.5 GiB", "512 B") into `out`. */
void quota_format_size(int64_t bytes, char *out, size_t size);

#endif
