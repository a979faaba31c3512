/*
 * scope.h - the `scope` parameter of a token request (distribution token spec, "Token Scope Documentation"):
 * "repository:NAME:ACTIONS" and "registry:catalog:*", several in one value separated by spaces.  Pure (no h2o,
 * no I/O; in libberthproto) so that it is unit-tested and fuzzed (tests/fuzz/fuzz_scope.c) on its own;
 * server/token.c grants the part of each scope the caller holds.
 *
 * Malformed scopes (fewer than two ':', another resource type, an invalid repository name, unknown actions) are
 * skipped, as the spec lets a registry grant less than asked.  NAME is everything between the first and the last
 * ':' (so "host:5000/x" is one name, refused by the name grammar).
 */
#ifndef BERTH_SCOPE_H
#define BERTH_SCOPE_H

#include <stddef.h>
#include "defaults.h"

#define SCOPE_VALUE_MAX (BERTH_NAME_MAX * 2 + 64) /* longest `scope` value read; the rest is ignored */

enum scope_kind {
    SCOPE_REPOSITORY, /* repository:NAME:ACTIONS */
    SCOPE_REGISTRY    /* registry:catalog:ANYTHING or registry:ecr:ANYTHING */
};

/** One well-formed scope. */
struct scope_item {
    enum scope_kind kind;
    char name[BERTH_NAME_MAX + 1]; /* the repository (valid by names_repo_valid), or "catalog" / "ecr" */
    unsigned actions;              /* AUTH_PULL|AUTH_PUSH|AUTH_DELETE|AUTH_ADMIN bits (authdb.h); 0 for registry */
};

/** Calls `fn(ctx, item)` for every well-formed scope of `v` (a NUL-terminated, already percent-decoded value, read
 *  up to SCOPE_VALUE_MAX bytes), in order.  `*count` counts every space-separated scope seen, well-formed or not,
 *  across calls (one request may carry several `scope` parameters); once it passes BERTH_AUTH_SCOPES_MAX the rest
 *  is ignored.  Returns 0, 1 when the limit stopped it, or fn's non-zero result (which stops it). */
int scope_each(const char *v, int *count, int (*fn)(void *ctx, const struct scope_item *item), void *ctx);

#endif
