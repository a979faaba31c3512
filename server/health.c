/* health.c - liveness and readiness probes (see health.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include "err.h"
#include "health.h"
#include "respond.h"
#include "server.h"
#include "writer.h"

struct ready_job {
    struct job super;
    char why[256]; /* "" = ready */
};

int health_live(h2o_req_t *req, const struct route *rt)
{
    (void)rt;
    respond_body(req, 200, "text/plain; charset=utf-8", "ok\n", 3, 1);
    return 0;
}

/* An empty write: proves the writer thread takes the write lock and commits. */
static int noop_write(struct db *db, void *arg)
{
    (void)db;
    (void)arg;
    return 0;
}

static void ready_run(struct job *job)
{
    struct ready_job *j = (void *)job;
    struct statvfs sv;
    int rc;
    if ((rc = writer_run(noop_write, NULL)) != 0) {
        snprintf(j->why, sizeof(j->why), "database not writable (%s)", berr_name(rc));
        return;
    }
    if (access(srv->cfg.data, W_OK) != 0) {
        snprintf(j->why, sizeof(j->why), "data directory not writable (%s)", strerror(errno));
        return;
    }
    if (statvfs(srv->cfg.data, &sv) != 0) {
        snprintf(j->why, sizeof(j->why), "cannot stat the data file system (%s)", strerror(errno));
        return;
    }
    if ((uint64_t)sv.f_bavail * sv.f_frsize < srv->cfg.min_free_space)
        snprintf(j->why, sizeof(j->why), "free space %llu bytes is below min_free_space %llu",
                 (unsigned long long)sv.f_bavail * sv.f_frsize, (unsigned long long)srv->cfg.min_free_space);
}

static void ready_done(struct job *job, h2o_req_t *req)
{
    struct ready_job *j = (void *)job;
    char *body;
    if (req == NULL)
        return;
    if (j->why[0] == '\0') {
        respond_body(req, 200, "text/plain; charset=utf-8", "ready\n", 6, 1);
        return;
    }
    body = respond_printf(req, "not ready: %s\n", j->why);
    respond_body(req, 503, "text/plain; charset=utf-8", body, strlen(body), 1);
}

int health_ready(h2o_req_t *req, const struct route *rt)
{
    struct ready_job *j;
    (void)rt;
    if ((j = job_new(req, sizeof(*j), ready_run, ready_done)) == NULL)
        return BERR_NOMEM;
    job_submit(&j->super);
    return 0;
}
