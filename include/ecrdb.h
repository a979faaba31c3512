/*
 * ecrdb.h - what the ECR API keeps and reads beyond meta.h: explicit repositories with their tag-mutability
 * setting and resource tags, image listings with ECR's details (size, push and pull times, tags) paged by a
 * stable cursor, the registry id, and the tag-immutability rule shared by PutImage and the OCI manifest PUT.
 * No h2o.  Functions marked "write" need a write transaction; the others are reads.  Names and digests passed in
 * have been validated (names.h, digest.h).
 *
 * Pagination: images are listed in manifest-row order (id ascending) and the cursor is the last id returned, so a
 * listing that runs while others push never returns an image twice and never skips one that existed when it began.
 *
 * Tag mutability (ECR): MUTABLE; IMMUTABLE; IMMUTABLE_WITH_EXCLUSION (immutable except tags matching a wildcard
 * filter); MUTABLE_WITH_EXCLUSION (mutable except tags matching a filter).  Filters are `*` wildcards over the tag.
 * An immutable tag may be pushed again only with the digest it already has.
 */
#ifndef BERTH_ECRDB_H
#define BERTH_ECRDB_H

#include <stddef.h>
#include <stdint.h>
#include "db.h"
#include "defaults.h"

/* Results besides 0 and BERR_* (outside err.h's range; the ECR layer maps them onto exceptions). */
#define ECRDB_EXISTS (-2001)    /* CreateRepository: the repository exists */
#define ECRDB_NOT_EMPTY (-2002) /* DeleteRepository without force: it holds images */
#define ECRDB_IMMUTABLE (-2003) /* the tag exists with another digest and is immutable */

#define ECRDB_MUTABILITY_MAX 32          /* "IMMUTABLE_WITH_EXCLUSION" */
#define ECRDB_FILTERS_MAX 4096           /* JSON text of the exclusion filters */
#define ECRDB_REGISTRY_ID_LEN 12         /* an AWS account id: 12 digits */
#define ECRDB_RESOURCE_TAG_KEY_MAX 128   /* AWS tag key limit */
#define ECRDB_RESOURCE_TAG_VALUE_MAX 256 /* AWS tag value limit */

struct ecrdb_repo {
    int64_t id;
    char name[BERTH_NAME_MAX + 1];
    long long created_at;
    char mutability[ECRDB_MUTABILITY_MAX + 1];
    char filters[ECRDB_FILTERS_MAX + 1]; /* JSON array text, "" if none */
};
typedef int (*ecrdb_repo_cb)(void *ctx, const struct ecrdb_repo *r);

/** 1 if `s` is one of ECR's four tag-mutability values, else 0. */
int ecrdb_mutability_valid(const char *s);
/** 1 if `tag` is immutable under `mutability` and the filter list `filters` (JSON text, may be "" or NULL). */
int ecrdb_tag_immutable(const char *mutability, const char *filters, const char *tag);

/** The registry id: `configured` when not empty, else the one stored in berth.db.  Returns 0, BERR_NOT_FOUND (none
 *  stored yet) or BERR_DB. */
int ecrdb_registry_id(struct db *db, const char *configured, char out[ECRDB_REGISTRY_ID_LEN + 1]);
/** write: stores the registry id derived from `datadir` (12 digits of BLAKE2b of its absolute path) unless one is
 *  stored already, and reads it back into `out`.  Returns 0 or BERR_DB. */
int ecrdb_registry_id_init(struct db *db, const char *datadir, char out[ECRDB_REGISTRY_ID_LEN + 1]);

/** write: creates repository `name` (ECRDB_EXISTS if it exists) with `mutability` and `filters` (may be NULL).
 *  Fills `out`.  Returns 0, ECRDB_EXISTS or BERR_DB. */
int ecrdb_repo_create(struct db *db, const char *name, const char *mutability, const char *filters,
                      struct ecrdb_repo *out);
/** Reads repository `name`.  Returns 0, BERR_NAME_UNKNOWN or BERR_DB. */
int ecrdb_repo_get(struct db *db, const char *name, struct ecrdb_repo *out);
/** Repositories after `after` (may be NULL) in name order, at most `n`; *more set if others follow. */
int ecrdb_repos_each(struct db *db, const char *after, int n, ecrdb_repo_cb cb, void *ctx, int *more);
/** write: deletes repository `name` with its images, tags, links and settings; without `force` a repository
 *  holding images is ECRDB_NOT_EMPTY.  Fills `out` with what was deleted.  Returns 0, BERR_NAME_UNKNOWN,
 *  ECRDB_NOT_EMPTY or BERR_DB. */
int ecrdb_repo_delete(struct db *db, const char *name, int force, struct ecrdb_repo *out, int *image_count);
/** write: sets the tag mutability of `name`.  Returns 0, BERR_NAME_UNKNOWN or BERR_DB. */
int ecrdb_repo_set_mutability(struct db *db, const char *name, const char *mutability, const char *filters);

/** The rule of both PutImage and the OCI manifest PUT, inside the write transaction: if `tag` of `repo` exists
 *  with a digest other than `digest` and is immutable, returns ECRDB_IMMUTABLE; else 0 (or BERR_DB). */
int ecrdb_tag_check(struct db *db, const char *repo, const char *tag, const char *digest);

/* ---- images ---- */

struct ecrdb_image {
    int64_t id;                                      /* the manifest row: the pagination cursor */
    const char *digest, *media_type, *artifact_type; /* artifact_type may be NULL */
    const char *tags;                                /* tag names separated by '\n', "" if untagged */
    int64_t size;                                    /* ECR's imageSizeInBytes: the manifest's config and layers */
    long long pushed_at, pulled_at;                  /* pulled_at 0 = never */
};
typedef int (*ecrdb_image_cb)(void *ctx, const struct ecrdb_image *im);

#define ECRDB_TAGGED 1
#define ECRDB_UNTAGGED 2
#define ECRDB_ANY 3

/** Images of `repo` with id > `after`, filtered by `status` (ECRDB_*), at most `n`; *more set if others follow.
 *  Returns 0, BERR_NAME_UNKNOWN or BERR_DB. */
int ecrdb_images_each(struct db *db, const char *repo, int64_t after, int status, int n, ecrdb_image_cb cb, void *ctx,
                      int *more);
/** The image of `repo` with digest `digest`.  Returns 0 (cb called once), BERR_MANIFEST_UNKNOWN or BERR_DB. */
int ecrdb_image_get(struct db *db, const char *repo, const char *digest, ecrdb_image_cb cb, void *ctx);

/** One entry of ListImages: a (manifest, tag) pair; tag NULL for an untagged manifest. */
typedef int (*ecrdb_imageid_cb)(void *ctx, int64_t id, const char *digest, const char *tag);
/** (manifest id, tag) pairs of `repo` after cursor (`after_id`, `after_tag`), filtered by `status`, at most `n`. */
int ecrdb_image_ids_each(struct db *db, const char *repo, int64_t after_id, const char *after_tag, int status, int n,
                         ecrdb_imageid_cb cb, void *ctx, int *more);

/* ---- resource tags ---- */

typedef int (*ecrdb_rtag_cb)(void *ctx, const char *key, const char *value);
/** write: sets resource tag `key` = `value` on repository `name`.  Returns 0, BERR_NAME_UNKNOWN or BERR_DB. */
int ecrdb_rtag_set(struct db *db, const char *name, const char *key, const char *value);
/** write: removes resource tag `key` from `name` (no error if absent).  Returns 0, BERR_NAME_UNKNOWN or BERR_DB. */
int ecrdb_rtag_del(struct db *db, const char *name, const char *key);
/** The resource tags of `name` in key order.  Returns 0, BERR_NAME_UNKNOWN or BERR_DB. */
int ecrdb_rtags_each(struct db *db, const char *name, ecrdb_rtag_cb cb, void *ctx);

/* ---- a request's reads ---- */

/** Starts a read transaction on `db` (a read connection): the reads that follow see one snapshot and cost one
 *  lock round instead of one per statement.  Returns 0 or BERR_DB.  Not around code that begins its own. */
int ecrdb_read_begin(struct db *db);
/** Ends the read transaction of ecrdb_read_begin() (if one is open; rolled back if COMMIT fails). */
void ecrdb_read_end(struct db *db);

/* ---- BatchDeleteImage, lifecycle preview ---- */

/** 1 if manifest `digest` of `repo` carries a tag, 0 if not (or absent), or BERR_DB. */
int ecrdb_image_tagged(struct db *db, const char *repo, const char *digest);
/** write: remembers `policy` as the started lifecycle-policy preview of `repo` (StartLifecyclePolicyPreview),
 *  replacing an earlier one; it goes with the repository.  Returns 0, BERR_NAME_UNKNOWN or BERR_DB. */
int ecrdb_preview_put(struct db *db, const char *repo, const char *policy, long long started_at);
/** The started preview of `repo`: its policy text (malloc'd, caller frees) and start time.  Returns 0,
 *  BERR_NOT_FOUND (none started, or no such repository), BERR_NOMEM or BERR_DB. */
int ecrdb_preview_get(struct db *db, const char *repo, char **policy, long long *started_at);

#endif
