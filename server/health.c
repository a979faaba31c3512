/* health.c - liveness and readiness probes (see health.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include "err.h"
#include "health.h"
#include "respond.h"
#include "writer.h"

struct ready_job {
    struct job super;
};

int health_live(struct call *call, h2o_req_t *req, const struct route *rt)
{
    (void)call;
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

/* After the no-op write: the data directory checks (two cheap syscalls on the loop), then the answer. */
static void ready_done(struct job *job, h2o_req_t *req)
{
    const struct config *cfg = &job->srv->cfg;
    struct statvfs sv;
    char *why = NULL;
    if (req == NULL)
        return;
    if (job->rc != 0)
        why = respond_printf(req, "database not writable (%s)", berr_name(job->rc));
    else if (access(cfg->data, W_OK) != 0)
        why = respond_printf(req, "data directory not writable (%s)", strerror(errno));
    else if (statvfs(cfg->data, &sv) != 0)
        why = respond_printf(req, "cannot stat the data file system (%s)", strerror(errno));
    else if ((uint64_t)sv.f_bavail * sv.f_frsize < cfg->min_free_space)
        why = respond_printf(req, "free space %llu bytes is below min_free_space %llu",
                             (unsigned long long)sv.f_bavail * sv.f_frsize, (unsigned long long)cfg->min_free_space);
    if (why == NULL) {
        respond_body(req, 200, "text/plain; charset=utf-8", "ready\n", 6, 1);
        return;
    }
    why = respond_printf(req, "not ready: %s\n", why);
    respond_body(req, 503, "text/plain; charset=utf-8", why, strlen(why), 1);
}

int health_ready(struct call *call, h2o_req_t *req, const struct route *rt)
{
    struct ready_job *j;
    (void)req;
    (void)rt;
    if ((j = job_new(call, sizeof(*j), NULL, ready_done)) == NULL)
        return BERR_NOMEM;
    job_write(&j->super, noop_write, NULL);
    return 0;
}
