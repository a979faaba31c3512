/* evsource.c - who caused an event (evsource.h), route writes that record their event, and the events module
 * (webhook delivery threads). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "auth.h"
#include "err.h"
#include "evsource.h"
#include "respond.h"
#include "log.h"
#include "module.h"
#include "webhook.h"
#include "writer.h"

static void copy_iov(char *dst, size_t size, h2o_iovec_t v)
{
    size_t n = v.len < size - 1 ? v.len : size - 1;
    for (size_t i = 0; i < n; i++) /* printable ASCII only: these end up in JSON and on terminals */
        dst[i] = (v.base[i] >= 0x20 && v.base[i] < 0x7f) ? v.base[i] : '?';
    dst[n] = '\0';
}

void evsource_fill(const struct call *call, struct event_source *src)
{
    const struct auth_identity *who = call->who;
    h2o_req_t *req = call->req;
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(src, 0, sizeof(*src));
    if (who != NULL)
        snprintf(src->actor, sizeof(src->actor), "%s", who->id.name);
    copy_iov(src->method, sizeof(src->method), req->method);
    copy_iov(src->useragent, sizeof(src->useragent), respond_req_header(req, "user-agent"));
    if (req->conn->callbacks->get_peername != NULL &&
        (sl = req->conn->callbacks->get_peername(req->conn, (void *)&ss)) > 0) {
        char host[INET6_ADDRSTRLEN] = "";
        if (ss.ss_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
        else if (ss.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
        snprintf(src->addr, sizeof(src->addr), "%s", host);
    }
}

struct write_job {
    struct job super;
    struct route rt;
    struct event_source from;
    evsource_write_fn fn;
    int status;
};

static int write_op(struct db *db, void *arg)
{
    struct write_job *j = arg;
    return j->fn(db, &j->rt, &j->from);
}

static void write_done(struct job *job, h2o_req_t *req)
{
    if (req == NULL)
        return;
    if (job->rc != 0)
        respond_error(req, job->rc, NULL);
    else
        respond_empty(req, ((struct write_job *)job)->status);
}

int evsource_route_write(struct call *call, evsource_write_fn fn, int status)
{
    struct write_job *j = job_new(call, sizeof(*j), NULL, write_done);
    if (j == NULL)
        return BERR_NOMEM;
    j->rt = call->rt;
    j->fn = fn;
    j->status = status;
    evsource_fill(call, &j->from);
    job_write(&j->super, write_op, j);
    return 0;
}

/* ---- the module: webhook delivery and event pruning threads (webhook.h) ---- */

/* Starts the webhooks of the config (each line was checked when the config was read). */
static int evsource_init(struct server *srv)
{
    const struct config *cfg = &srv->cfg;
    struct webhook_conf *hooks = calloc(BERTH_WEBHOOKS_MAX, sizeof(*hooks));
    char err[256], url[CONFIG_PATH_MAX + 16], host[256] = "localhost";
    int rc = -1;
    if (hooks == NULL)
        return -1;
    for (int i = 0; i < cfg->nwebhooks; i++)
        if (webhook_parse(cfg->webhooks[i], &hooks[i], err, sizeof(err)) != 0) {
            log_error("%s", err);
            goto out;
        }
    gethostname(host, sizeof(host) - 1);
    snprintf(url, sizeof(url), "%s://%s", cfg->tls_cert[0] ? "https" : "http", cfg->listen);
    rc = webhooks_start(cfg->data, hooks, cfg->nwebhooks, url, host, cfg->events_retention) == 0 ? 0 : -1;
out:
    free(hooks);
    return rc;
}

static void evsource_stop(struct server *srv)
{
    (void)srv;
    webhooks_stop();
}

const struct module evsource_module = {.name = "events", .init = evsource_init, .stop = evsource_stop};
