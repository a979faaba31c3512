/* observe.c - request ids, request metrics, GET /metrics and the metrics listener (see observe.h). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include "err.h"
#include "health.h"
#include "listen.h"
#include "log.h"
#include "memtrim.h"
#include "h1.h"
#include "observe.h"
#include "respond.h"
#include "server.h"
#include "stats.h"

#define OBSERVE_ENV_KEY "berth.observe" /* req->env name under which the record is kept */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static uint32_t id_prefix;
static atomic_uint_fast64_t id_counter;
static time_t started_at;

enum metrics_route observe_route(const struct route *rt)
{
    if (rt == NULL)
        return MROUTE_OTHER;
    switch (rt->kind) {
    case ROUTE_BASE:
        return MROUTE_BASE;
    case ROUTE_CATALOG:
        return MROUTE_CATALOG;
    case ROUTE_TAGS:
        return MROUTE_TAGS;
    case ROUTE_MANIFEST:
        return MROUTE_MANIFEST;
    case ROUTE_BLOB:
        return MROUTE_BLOB;
    case ROUTE_UPLOAD_NEW:
    case ROUTE_UPLOAD:
        return MROUTE_UPLOAD;
    case ROUTE_REFERRERS:
        return MROUTE_REFERRERS;
    case ROUTE_TOKEN:
        return MROUTE_TOKEN;
    case ROUTE_METRICS:
        return MROUTE_METRICS;
    case ROUTE_HEALTHZ:
    case ROUTE_READYZ:
        return MROUTE_HEALTH;
    }
    return MROUTE_OTHER;
}

/* "<8 hex digits of prefix><12 of counter>" (no snprintf: this runs for every request) */
static void format_id(char out[OBSERVE_ID_LEN + 1], uint32_t prefix, uint64_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 7; i >= 0; i--, prefix >>= 4)
        out[i] = hex[prefix & 15];
    for (int i = OBSERVE_ID_LEN - 1; i >= 8; i--, n >>= 4)
        out[i] = hex[n & 15];
    out[OBSERVE_ID_LEN] = '\0';
}

static void upload_done(void *unused)
{
    (void)unused;
    metrics_add(METRIC_UPLOADS_IN_FLIGHT, -1);
}

struct observe_req *observe_begin(h2o_req_t *req, const struct route *rt)
{
    struct observe_req *o = h2o_mem_alloc_pool(&req->pool, sizeof(*o));
    uint64_t n = atomic_fetch_add_explicit(&id_counter, 1, memory_order_relaxed);
    format_id(o->id, id_prefix, n);
    o->route = observe_route(rt);
    o->repo = rt != NULL && rt->name[0] != '\0' ? h2o_strdup(&req->pool, rt->name, SIZE_MAX).base : NULL;
    o->user = NULL;
    h2o_vector_reserve(&req->pool, &req->env, req->env.size + 2);
    req->env.entries[req->env.size++] = h2o_iovec_init(H2O_STRLIT(OBSERVE_ENV_KEY));
    req->env.entries[req->env.size++] = h2o_iovec_init(o, sizeof(*o));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL, o->id, OBSERVE_ID_LEN);
    if (o->route == MROUTE_UPLOAD) {
        metrics_add(METRIC_UPLOADS_IN_FLIGHT, 1);
        h2o_mem_alloc_shared(&req->pool, 1, upload_done);
    }
    log_set_request_id(o->id);
    return o;
}

void observe_end(void)
{
    log_set_request_id(NULL);
}

struct observe_req *observe_get(h2o_req_t *req)
{
    for (size_t i = 0; i + 1 < req->env.size; i += 2)
        if (h2o_memis(req->env.entries[i].base, req->env.entries[i].len, H2O_STRLIT(OBSERVE_ENV_KEY)))
            return (struct observe_req *)(void *)req->env.entries[i + 1].base;
    return NULL;
}

void observe_set_user(h2o_req_t *req, const char *name)
{
    struct observe_req *o = observe_get(req);
    if (o != NULL)
        o->user = h2o_strdup(&req->pool, name, SIZE_MAX).base;
}

/* ---- request metrics: a logger, so that every request is counted once it is over ---- */

static void log_metrics(h2o_logger_t *self, h2o_req_t *req)
{
    struct observe_req *o = observe_get(req);
    struct timeval now, *t0 = &req->timestamps.request_begin_at;
    int64_t usec = 0;
    (void)self;
    gettimeofday(&now, NULL);
    if (t0->tv_sec != 0)
        usec = (int64_t)(now.tv_sec - t0->tv_sec) * 1000000 + (now.tv_usec - t0->tv_usec);
    metrics_request(o != NULL ? o->route : MROUTE_OTHER, req->method.base, req->method.len, req->res.status,
                    usec > 0 ? (uint64_t)usec : 0,
                    (req->entity.base != NULL ? req->entity.len : 0) + h1_req_streamed(req), req->bytes_sent);
}

static void register_logger(h2o_pathconf_t *pathconf)
{
    h2o_logger_t *l = h2o_create_logger(pathconf, sizeof(*l));
    l->log_access = log_metrics;
}

/* ---- GET /metrics ---- */

static void render_storage(const struct server *srv, struct metrics_buf *b)
{
    struct db *db = server_db(srv);
    struct stats s;
    if (db == NULL || stats_read(db, &s) != 0)
        return; /* the page still serves the process metrics; the error is logged */
    metrics_render_gauge(b, "berth_storage_bytes", "Bytes of all blob files (each blob once)", (double)s.blob_bytes);
    metrics_render_gauge(b, "berth_blobs", "Blobs stored", (double)s.blobs);
    metrics_render_gauge(b, "berth_manifests", "Manifests stored (per repository)", (double)s.manifests);
    metrics_render_gauge(b, "berth_repositories", "Repositories", (double)s.repos);
    metrics_render_gauge(b, "berth_upload_sessions", "Open blob upload sessions", (double)s.uploads);
}

int observe_metrics(struct call *call, h2o_req_t *req, const struct route *rt)
{
    struct metrics_buf b = {0};
    (void)rt;
    metrics_render_gauge(&b, "berth_start_time_seconds", "Start time of the process since the epoch",
                         (double)started_at);
    metrics_render_gauge(&b, "berth_heap_inuse_bytes",
                         "Bytes of heap allocated and not freed (RSS minus this is memory malloc keeps)",
                         (double)memtrim_heap_in_use());
    metrics_render_gauge(&b, "berth_sqlite_memory_bytes", "Bytes of that heap SQLite holds (its page caches)",
                         (double)db_sqlite_memory());
    render_storage(call->srv, &b);
    if (metrics_render(&b) != 0) {
        metrics_buf_release(&b);
        return BERR_NOMEM;
    }
    respond_body(req, 200, METRICS_CONTENT_TYPE, b.p, b.len, 0);
    metrics_buf_release(&b);
    return 0;
}

/* ---- the metrics listener: one thread, its own event loop and h2o configuration ---- */

static struct {
    struct server *srv;
    h2o_globalconf_t conf;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_evloop_t *loop;
    pthread_t tid;
    int fd, running;
} ml = {.fd = -1};

static int on_metrics_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct call *call = h2o_mem_alloc_pool(&req->pool, sizeof(*call));
    const struct route *rt = &call->rt;
    int rc;
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    int get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
              h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    call->srv = ((struct server_handler *)self)->srv;
    call->req = req;
    call->who = NULL;
    rc = router_match(req->path.base, plen, &call->rt);
    observe_begin(req, rc == 0 ? rt : NULL);
    if (rc == 0 && !get && (rt->kind == ROUTE_METRICS || rt->kind == ROUTE_HEALTHZ || rt->kind == ROUTE_READYZ))
        rc = BERR_METHOD_NOT_ALLOWED;
    else if (rc == 0 && rt->kind == ROUTE_METRICS)
        rc = observe_metrics(call, req, rt);
    else if (rc == 0 && rt->kind == ROUTE_HEALTHZ)
        rc = health_live(call, req, rt);
    else if (rc == 0 && rt->kind == ROUTE_READYZ)
        rc = health_ready(call, req, rt);
    else
        rc = BERR_NOT_FOUND;
    if (rc != 0)
        respond_error(req, rc, NULL);
    observe_end();
    return 0;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    h2o_socket_t *sock;
    if (err != NULL || (sock = h2o_evloop_socket_accept(listener)) == NULL)
        return;
    h2o_accept(&ml.accept_ctx, sock);
}

static void *metrics_main(void *unused)
{
    h2o_socket_t *listener;
    (void)unused;
    h2o_context_init(&ml.ctx, ml.loop, &ml.conf);
    if (pool_register_loop(&ml.ctx) != 0) {
        log_error("metrics listener: out of memory");
        return NULL;
    }
    ml.accept_ctx.ctx = &ml.ctx;
    ml.accept_ctx.hosts = ml.conf.hosts;
    listener = h2o_evloop_socket_create(ml.loop, ml.fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(listener, on_accept);
    while (!atomic_load(&ml.srv->stopping))
        h2o_evloop_run(ml.loop, 200);
    h2o_socket_read_stop(listener);
    h2o_socket_close(listener);
    server_db_close();
    return NULL;
}

/* The module's init: the request-id prefix, the start time, and the metrics listener when configured. */
static int observe_init(struct server *srv)
{
    const struct config *cfg = &srv->cfg;
    struct config mc = *cfg;
    h2o_hostconf_t *host;
    h2o_pathconf_t *path;
    struct server_handler *h;
    started_at = time(NULL);
    id_prefix = randombytes_random() | 1;
    if (cfg->metrics_listen[0] == '\0')
        return 0;
    ml.srv = srv;
    snprintf(mc.listen, sizeof(mc.listen), "%s", cfg->metrics_listen);
    /* tls=1 only silences the clear-text credentials warning: this listener takes no credentials */
    if ((ml.fd = listen_open(&mc, 1)) < 0)
        return -1;
    h2o_config_init(&ml.conf);
    host = h2o_config_register_host(&ml.conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    path = h2o_config_register_path(host, "/", 0);
    h = (void *)h2o_create_handler(path, sizeof(*h));
    h->super.on_req = on_metrics_req;
    h->srv = srv;
    register_logger(path);
    ml.loop = h2o_evloop_create();
    if (pthread_create(&ml.tid, NULL, metrics_main, NULL) != 0) {
        log_error("cannot start the metrics listener thread");
        return -1;
    }
    ml.running = 1;
    log_info("metrics on http://%s/metrics (no authentication: keep this address private)", cfg->metrics_listen);
    return 0;
}

static void observe_routes(struct server *srv, h2o_hostconf_t *host, h2o_pathconf_t *root)
{
    (void)srv;
    register_logger(root);
    register_logger(&host->fallback_path); /* errors h2o answers itself (413) */
}

/* After the loops stopped: the listener's loop has seen `stopping` too. */
static void observe_stop(struct server *srv)
{
    (void)srv;
    if (ml.running)
        pthread_join(ml.tid, NULL);
    ml.running = 0;
}

const struct module observe_module = {
    .name = "observe", .init = observe_init, .routes = observe_routes, .stop = observe_stop};
