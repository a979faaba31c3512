/*
 * handlers.h - one function per API operation.  Each either answers the request itself (including errors, via
 * respond_error) and returns 0, or returns a negative BERR code that the dispatcher answers with.  Operations that
 * block hand their work to the worker pool and answer later.
 */
#ifndef BERTH_HANDLERS_H
#define BERTH_HANDLERS_H

#include "router.h"
#include "server.h"

/* blobs.c: GET/HEAD/DELETE /v2/<name>/blobs/<digest> */
int blobs_get(h2o_req_t *req, const struct route *rt);
int blobs_delete(h2o_req_t *req, const struct route *rt);

/* uploads.c: /v2/<name>/blobs/uploads/[<uuid>] */
int uploads_post(h2o_req_t *req, const struct route *rt);
int uploads_patch(h2o_req_t *req, const struct route *rt);
int uploads_put(h2o_req_t *req, const struct route *rt);
int uploads_status(h2o_req_t *req, const struct route *rt);
int uploads_cancel(h2o_req_t *req, const struct route *rt);
/** Reconciles staging files and session rows after a restart (files without rows and rows without files go). */
void uploads_recover(void);
/** Removes sessions idle longer than the upload timeout. */
void uploads_expire(void);

/* manifests.c: /v2/<name>/manifests/<reference> */
int manifests_get(h2o_req_t *req, const struct route *rt);
int manifests_put(h2o_req_t *req, const struct route *rt);
int manifests_delete(h2o_req_t *req, const struct route *rt);
/** Writes the pull times recorded since the last flush (called periodically off the loops). */
void manifests_flush_pulls(void);

/* listing.c: tags/list, _catalog, referrers */
int listing_tags(h2o_req_t *req, const struct route *rt);
int listing_catalog(h2o_req_t *req, const struct route *rt);
int listing_referrers(h2o_req_t *req, const struct route *rt);

#endif
