/*
 * health.h - GET /healthz and GET /readyz for load balancers and orchestrators: plain text, no authentication,
 * cheap.
 *
 * /healthz: 200 "ok" while the process answers requests at all.
 * /readyz:  200 "ready" when a no-op write goes through the metadata writer (BEGIN IMMEDIATE … COMMIT on berth.db:
 *           the database is writable and the writer thread alive), the data directory is writable, and its file
 *           system has at least `min_free_space` bytes free (default BERTH_DEFAULT_MIN_FREE_SPACE); otherwise 503
 *           with the first failing check on one line ("not ready: …").  The checks run on the worker pool, never
 *           on the event loop.
 */
#ifndef BERTH_HEALTH_H
#define BERTH_HEALTH_H

#include <h2o.h>
#include "router.h"

/** GET|HEAD /healthz. */
int health_live(h2o_req_t *req, const struct route *rt);
/** GET|HEAD /readyz. */
int health_ready(h2o_req_t *req, const struct route *rt);

#endif
