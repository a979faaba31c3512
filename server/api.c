/* api.c - dispatch: raw path -> route -> method -> handler; errors answered from err.h's table. */
#include <string.h>
#include "api.h"
#include "auth.h"
#include "module.h"
#include "err.h"
#include "handlers.h"
#include "health.h"
#include "observe.h"
#include "respond.h"
#include "router.h"

enum { M_GET, M_HEAD, M_PUT, M_POST, M_PATCH, M_DELETE, M_COUNT };

/* handler per route and method; NULL = 405 */
static const handler_fn table[][M_COUNT] = {
    [ROUTE_BASE] = {NULL, NULL, NULL, NULL, NULL, NULL},
    [ROUTE_CATALOG] = {listing_catalog, listing_catalog, NULL, NULL, NULL, NULL},
    [ROUTE_TAGS] = {listing_tags, listing_tags, NULL, NULL, NULL, NULL},
    [ROUTE_MANIFEST] = {manifests_get, manifests_get, manifests_put, NULL, NULL, manifests_delete},
    [ROUTE_BLOB] = {blobs_get, blobs_get, NULL, NULL, NULL, blobs_delete},
    [ROUTE_UPLOAD_NEW] = {NULL, NULL, NULL, uploads_post, NULL, NULL},
    [ROUTE_UPLOAD] = {uploads_status, NULL, uploads_put, NULL, uploads_patch, uploads_cancel},
    [ROUTE_REFERRERS] = {listing_referrers, listing_referrers, NULL, NULL, NULL, NULL},
    [ROUTE_TOKEN] = {auth_token, NULL, NULL, NULL, NULL, NULL},
    [ROUTE_METRICS] = {observe_metrics, observe_metrics, NULL, NULL, NULL, NULL},
    [ROUTE_HEALTHZ] = {health_live, health_live, NULL, NULL, NULL, NULL},
    [ROUTE_READYZ] = {health_ready, health_ready, NULL, NULL, NULL, NULL},
};

static int method_index(h2o_iovec_t m)
{
    static const char *const names[M_COUNT] = {"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"};
    for (int i = 0; i < M_COUNT; i++)
        if (h2o_memis(m.base, m.len, names[i], strlen(names[i])))
            return i;
    return -1;
}

static int base(struct call *call, h2o_req_t *req, const struct route *rt)
{
    (void)call;
    (void)rt;
    respond_body(req, 200, "application/json", "{}", 2, 1);
    return 0;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct call *call = h2o_mem_alloc_pool(&req->pool, sizeof(*call));
    const struct route *rt = &call->rt;
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    int m = method_index(req->method), rc;
    handler_fn fn = NULL;
    call->srv = ((struct server_handler *)self)->srv;
    call->req = req;
    call->who = NULL;
    rc = router_match(req->path.base, plen, &call->rt);
    observe_begin(req, rc == 0 ? rt : NULL);
    if (rc == 0) {
        if (rt->kind == ROUTE_BASE && (m == M_GET || m == M_HEAD))
            fn = base;
        else if (m >= 0)
            fn = table[rt->kind][m];
        if (fn == NULL)
            rc = BERR_METHOD_NOT_ALLOWED;
        else /* who may do what (auth.h); the token endpoint authenticates by itself */
            rc = rt->kind == ROUTE_TOKEN || rt->kind == ROUTE_HEALTHZ || rt->kind == ROUTE_READYZ ? fn(call, req, rt)
                                                                                                  : auth_then(call, fn);
    } else if (rc == BERR_BLOB_UPLOAD_UNKNOWN && m < 0) {
        rc = BERR_METHOD_NOT_ALLOWED;
    } else if (rc == BERR_TAG_INVALID && m != M_PUT) {
        /* no manifest can have a tag outside the grammar: reading one is "unknown" (conformance: 404) */
        rc = BERR_MANIFEST_UNKNOWN;
    }
    if (rc != 0)
        respond_error(req, rc, NULL);
    observe_end();
    return 0;
}

static void api_routes(struct server *srv, h2o_hostconf_t *host, h2o_pathconf_t *root)
{
    struct server_handler *h = (void *)h2o_create_handler(root, sizeof(*h));
    (void)host;
    h->super.on_req = on_req;
    h->srv = srv;
}

const struct module api_module = {.name = "api", .routes = api_routes};
