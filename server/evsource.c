/* evsource.c - who caused an event (evsource.h), and route writes that record their event. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include "auth.h"
#include "err.h"
#include "evsource.h"
#include "respond.h"
#include "writer.h"

static void copy_iov(char *dst, size_t size, h2o_iovec_t v)
{
    size_t n = v.len < size - 1 ? v.len : size - 1;
    for (size_t i = 0; i < n; i++) /* printable ASCII only: these end up in JSON and on terminals */
        dst[i] = (v.base[i] >= 0x20 && v.base[i] < 0x7f) ? v.base[i] : '?';
    dst[n] = '\0';
}

void evsource_fill(h2o_req_t *req, struct event_source *src)
{
    const struct auth_identity *who = auth_current();
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

static void write_run(struct job *job)
{
    job->rc = writer_run(write_op, job);
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

int evsource_route_write(h2o_req_t *req, const struct route *rt, evsource_write_fn fn, int status)
{
    struct write_job *j = job_new(req, sizeof(*j), write_run, write_done);
    if (j == NULL)
        return BERR_NOMEM;
    j->rt = *rt;
    j->fn = fn;
    j->status = status;
    evsource_fill(req, &j->from);
    job_submit(&j->super);
    return 0;
}
