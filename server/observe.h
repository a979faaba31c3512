/*
 * observe.h - what berth tells an operator about each request: its id, the request metrics (metrics.h), the
 * GET /metrics page, and the optional metrics-only listener.
 *
 * Every request the API handler sees gets an id (20 hex digits: a random per-process prefix and a counter), sent
 * back as `X-Request-Id`, named in every log line written while its handler runs ("req=<id>", log.h) and in the
 * access log.  An incoming X-Request-Id is not trusted (it would let a client forge log lines) and is ignored.
 *
 * /metrics is served on the main listener to admin users only (anonymous callers get the 401 challenge, others 403;
 * auth.c) and, without authentication, on `metrics_listen` when set (a private address Prometheus scrapes).
 */
#ifndef BERTH_OBSERVE_H
#define BERTH_OBSERVE_H

#include "metrics.h"
#include "module.h"
#include "server.h"

#define OBSERVE_ID_LEN 20 /* hex digits of a request id */

/* What the access log and the request metrics know about a request (in its pool). */
struct observe_req {
    char id[OBSERVE_ID_LEN + 1];
    enum metrics_route route;
    const char *repo; /* repository of the route, or NULL */
    const char *user; /* authorized identity ("" anonymous), or NULL when none was authorized */
};

/** Starts observing `req` (rt: its route, or NULL when none matched): assigns its id, adds X-Request-Id, counts an
 *  upload request in flight until the request is freed, and names the id in this thread's log lines until
 *  observe_end().  Returns the record (NULL on OOM). */
struct observe_req *observe_begin(h2o_req_t *req, const struct route *rt);
/** Stops naming the request in this thread's log lines. */
void observe_end(void);
/** The record of `req`, or NULL if observe_begin() did not run for it (e.g. a 413 h2o answered itself). */
struct observe_req *observe_get(h2o_req_t *req);
/** Records the authorized identity `name` ("" for anonymous) of `req` for the access log. */
void observe_set_user(h2o_req_t *req, const char *name);
/** The `route` label of a route kind. */
enum metrics_route observe_route(const struct route *rt);

/** GET /metrics: the registry plus the storage counts, in the Prometheus text format. */
int observe_metrics(struct call *call, h2o_req_t *req, const struct route *rt);

/*
 * The module (module.h): init starts the metrics listener on cfg->metrics_listen when set (its own thread and
 * event loop serving /metrics, /healthz and /readyz without authentication); routes registers the request-metrics
 * logger (status, latency, bytes of every request, including the errors h2o answers itself); stop joins the
 * listener's thread.
 */
extern const struct module observe_module;

#endif
