/*
 * health.h - GET /healthz and GET /readyz for load balancers and orchestrators: plain text, no authentication,
 * cheap.
 *
 * /healthz: 200 "ok" while the process answers requests at all.
 * /readyz:  200 "ready" when a no-op write goes through the metadata writer (BEGIN IMMEDIATE … COMMIT on berth.db:
 *           the database is writable and the writer thread alive), the data directory is writable, and its file
 *           system has at least `min_free_space` bytes free (default BERTH_DEFAULT_MIN_FREE_SPACE); otherwise 503
 *           with the first failing check on one line ("not ready: …").  The write goes through the writer
 *           asynchronously (job_write); the two file-system checks are single syscalls on the loop.
 */
#ifndef BERTH_HEALTH_H
#define BERTH_HEALTH_H

#include "server.h"

/** GET|HEAD /healthz. */
int health_live(struct call *call, h2o_req_t *req, const struct route *rt);
/** GET|HEAD /readyz. */
int health_ready(struct call *call, h2o_req_t *req, const struct route *rt);

#endif
