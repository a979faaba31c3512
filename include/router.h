/*
 * router.h - maps a raw request path to an API route and its validated parts (distribution-spec "Endpoints").
 *
 * Routing works on the raw path (h2o's path_normalized decodes %2F and collapses ".."): repository names contain
 * '/', so the fixed suffixes (/blobs/uploads/<uuid>, /blobs/<digest>, /manifests/<ref>, /tags/list,
 * /referrers/<digest>) are matched from the end, and what precedes them must pass the name grammar, which admits no
 * '%', "..", "//" or NUL.
 */
#ifndef BERTH_ROUTER_H
#define BERTH_ROUTER_H

#include <stddef.h>
#include "defaults.h"

enum route_kind {
    ROUTE_BASE,       /* /v2/ */
    ROUTE_CATALOG,    /* /v2/_catalog */
    ROUTE_TAGS,       /* /v2/<name>/tags/list */
    ROUTE_MANIFEST,   /* /v2/<name>/manifests/<reference> */
    ROUTE_BLOB,       /* /v2/<name>/blobs/<digest> */
    ROUTE_UPLOAD_NEW, /* /v2/<name>/blobs/uploads/ */
    ROUTE_UPLOAD,     /* /v2/<name>/blobs/uploads/<uuid> */
    ROUTE_REFERRERS,  /* /v2/<name>/referrers/<digest> */
    ROUTE_TOKEN,      /* /token (token auth endpoint) */
    ROUTE_METRICS,    /* /metrics (Prometheus; admin users only on the main listener) */
    ROUTE_HEALTHZ,    /* /healthz (liveness, no authentication) */
    ROUTE_READYZ,     /* /readyz (readiness, no authentication) */
};

struct route {
    enum route_kind kind;
    char name[BERTH_NAME_MAX + 1];
    char ref[BERTH_DIGEST_MAX > BERTH_TAG_MAX + 1 ? BERTH_DIGEST_MAX : BERTH_TAG_MAX + 1]; /* tag, digest or uuid */
    int ref_is_digest;
};

/** Parses `path[0..len)` (without the query).  Returns 0, BERR_NOT_FOUND for no route, or BERR_NAME_INVALID /
 *  BERR_DIGEST_INVALID / BERR_TAG_INVALID / BERR_BLOB_UPLOAD_UNKNOWN for a route with a malformed part. */
int router_match(const char *path, size_t len, struct route *rt);

#endif
