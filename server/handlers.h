/*
 * handlers.h - one function per API operation (a handler_fn, server.h): it gets the request's `struct call`
 * (server context, request, route, authorized identity) and either answers the request itself (including errors,
 * via respond_error) and returns 0, or returns a negative BERR code that the dispatcher answers with.  Operations
 * that block hand their work to the worker pool, and their metadata writes to the writer (job_write), and answer
 * later on the request's loop.
 */
#ifndef BERTH_HANDLERS_H
#define BERTH_HANDLERS_H

#include "router.h"
#include "server.h"

/* blobs.c: GET/HEAD/DELETE /v2/<name>/blobs/<digest> */
int blobs_get(struct call *call, h2o_req_t *req, const struct route *rt);
int blobs_delete(struct call *call, h2o_req_t *req, const struct route *rt);
/* blobs_s3.c: GET/HEAD of a blob of `size` bytes (its row's) when blobs live in S3 */
int blobs_get_s3(struct call *call, h2o_req_t *req, const struct route *rt, uint64_t size);

/* uploads.c: /v2/<name>/blobs/uploads/[<uuid>] */
int uploads_post(struct call *call, h2o_req_t *req, const struct route *rt);
int uploads_patch(struct call *call, h2o_req_t *req, const struct route *rt);
int uploads_put(struct call *call, h2o_req_t *req, const struct route *rt);
int uploads_status(struct call *call, h2o_req_t *req, const struct route *rt);
int uploads_cancel(struct call *call, h2o_req_t *req, const struct route *rt);

/* manifests.c: /v2/<name>/manifests/<reference> */
int manifests_get(struct call *call, h2o_req_t *req, const struct route *rt);
int manifests_put(struct call *call, h2o_req_t *req, const struct route *rt);
int manifests_delete(struct call *call, h2o_req_t *req, const struct route *rt);
/** Notes a pull of manifest row `id` now (any thread): its pull time is written with the next batch, as for a GET
 *  (ECR's BatchGetImage uses it for lastRecordedPullTime). */
void manifests_record_pull(int64_t id);

/* listing.c: tags/list, _catalog, referrers */
int listing_tags(struct call *call, h2o_req_t *req, const struct route *rt);
int listing_catalog(struct call *call, h2o_req_t *req, const struct route *rt);
int listing_referrers(struct call *call, h2o_req_t *req, const struct route *rt);

#endif
