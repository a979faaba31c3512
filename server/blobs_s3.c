/*
 * blobs_s3.c - blob GET/HEAD when blobs live in an S3 bucket (storage = s3://…).  HEAD answers from the metadata
 * row (its size) without touching S3.  GET either answers 307 to a presigned URL of the object (s3_redirect = on:
 * the client re-sends its Range there), or streams the object through the node: one worker job fetches the next
 * window of BERTH_S3_GET_WINDOW bytes with a ranged GET while h2o sends the previous one, so a download holds at
 * most two windows in memory whatever the blob's size.  The first window is fetched before the status line is
 * sent, so a missing object still gets a proper error.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "blobstore.h"
#include "err.h"
#include "handlers.h"
#include "httpparse.h"
#include "log.h"
#include "respond.h"

struct s3_gen {
    h2o_generator_t super;
    struct call *call;
    char digest[BERTH_DIGEST_MAX];
    uint64_t size, from, to; /* the blob's size and the range sent */
    uint64_t off, left;      /* next byte to fetch, bytes left to fetch */
    int ranged, started;
    char *buf;  /* the window h2o is sending (freed when the next arrives or the request ends) */
    char *next; /* the window fetched ahead, not yet handed to h2o */
    size_t next_len;
    int fetching; /* a fetch job is out */
    int waiting;  /* h2o asked for more while the fetch was out */
};

struct fetch_job {
    struct job super;
    struct s3_gen *g; /* only touched on the loop, and only while the request lives */
    char digest[BERTH_DIGEST_MAX];
    uint64_t off, n;
    char *buf;
    size_t len;
};

static int collect(void *ctx, const void *p, size_t n)
{
    struct fetch_job *j = ctx;
    if (j->len + n > j->n)
        return BERR_IO; /* more than asked for: the endpoint ignored the range */
    memcpy(j->buf + j->len, p, n);
    j->len += n;
    return 0;
}

static void fetch_run(struct job *job)
{
    struct fetch_job *j = (void *)job;
    int rc = (j->buf = malloc((size_t)j->n)) == NULL
                 ? BERR_NOMEM
                 : blobstore_read(&job->srv->bs, j->digest, j->off, j->n, collect, j);
    if (rc == 0 && j->len != j->n)
        rc = BERR_IO;
    job->rc = rc;
}

static void fetch_done(struct job *job, h2o_req_t *req);

/* Queues the fetch of the next window.  Returns 0 or BERR_NOMEM. */
static int fetch_next(struct s3_gen *g)
{
    struct fetch_job *j;
    uint64_t n = g->left < BERTH_S3_GET_WINDOW ? g->left : BERTH_S3_GET_WINDOW;
    if ((j = job_new(g->call, sizeof(*j), fetch_run, fetch_done)) == NULL)
        return BERR_NOMEM;
    j->g = g;
    memcpy(j->digest, g->digest, sizeof(j->digest));
    j->off = g->off;
    j->n = n;
    g->off += n;
    g->left -= n;
    g->fetching = 1;
    job_submit(&j->super);
    return 0;
}

static void start(struct s3_gen *g, h2o_req_t *req)
{
    req->res.status = g->ranged ? 206 : 200;
    req->res.reason = g->ranged ? "Partial Content" : "OK";
    req->res.content_length = (size_t)(g->size == 0 ? 0 : g->to - g->from + 1);
    respond_common(req);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/octet-stream"));
    respond_header(req, "docker-content-digest", g->digest, 1);
    respond_header(req, "etag", respond_printf(req, "\"%s\"", g->digest), 0);
    respond_header(req, "accept-ranges", "bytes", 0);
    respond_header(req, "cache-control", "max-age=31536000", 0);
    if (g->ranged)
        respond_header(req, "content-range",
                       respond_printf(req, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, g->from, g->to, g->size), 0);
    h2o_start_response(req, &g->super);
    g->started = 1;
}

/* Hands the fetched-ahead window to h2o and starts fetching the one after it. */
static void send_next(struct s3_gen *g, h2o_req_t *req)
{
    h2o_iovec_t vec;
    int last;
    free(g->buf);
    g->buf = g->next;
    vec = h2o_iovec_init(g->buf, g->next_len);
    g->next = NULL;
    g->waiting = 0;
    last = g->left == 0;
    if (!last && fetch_next(g) != 0) {
        h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    h2o_send(req, &vec, 1, last ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void fetch_done(struct job *job, h2o_req_t *req)
{
    struct fetch_job *j = (void *)job;
    struct s3_gen *g;
    if (req == NULL) { /* the client went away: g is gone with its request */
        free(j->buf);
        return;
    }
    g = j->g;
    g->fetching = 0;
    if (job->rc != 0) {
        free(j->buf);
        log_error("blob %s: cannot read its object (%s)", g->digest, berr_name(job->rc));
        if (g->started)
            h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
        else
            respond_error(req, job->rc == BERR_NOMEM ? BERR_NOMEM : BERR_IO, NULL);
        return;
    }
    g->next = j->buf;
    g->next_len = j->len;
    if (!g->started) {
        start(g, req);
        send_next(g, req);
    } else if (g->waiting) {
        send_next(g, req);
    }
}

static void gen_proceed(h2o_generator_t *_g, h2o_req_t *req)
{
    struct s3_gen *g = (void *)_g;
    if (g->next != NULL)
        send_next(g, req);
    else
        g->waiting = 1; /* the fetch is out: fetch_done sends */
}

static void gen_stop(h2o_generator_t *_g, h2o_req_t *req)
{
    (void)_g;
    (void)req;
}

static void gen_dispose(void *p)
{
    struct s3_gen *g = p;
    free(g->buf);
    free(g->next);
}

int blobs_get_s3(struct call *call, h2o_req_t *req, const struct route *rt, uint64_t size)
{
    h2o_iovec_t range = respond_req_header(req, "range");
    int head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    struct s3_gen *g;
    if (!head && call->srv->bs.s3_redirect) { /* 307 to the bucket, Range and all (as Distribution's redirect) */
        char url[4096];
        if (blobstore_presign(&call->srv->bs, rt->ref, time(NULL), url, sizeof(url)) != 0)
            return BERR_INTERNAL;
        respond_header(req, "location", respond_printf(req, "%s", url), 0);
        respond_header(req, "docker-content-digest", rt->ref, 1);
        respond_empty(req, 307);
        return 0;
    }
    g = h2o_mem_alloc_shared(&req->pool, sizeof(*g), gen_dispose);
    memset(g, 0, sizeof(*g));
    g->super.proceed = gen_proceed;
    g->super.stop = gen_stop;
    g->call = call;
    g->size = size;
    snprintf(g->digest, sizeof(g->digest), "%s", rt->ref);
    if (range.base != NULL && size > 0) {
        if ((g->ranged = httpparse_range(range.base, range.len, size, &g->from, &g->to)) < 0) {
            respond_header(req, "content-range", respond_printf(req, "bytes */%" PRIu64, size), 0);
            respond_error(req, BERR_RANGE_UNSATISFIABLE, "the Range header does not fit the blob");
            return 0;
        }
    }
    if (!g->ranged) {
        g->from = 0;
        g->to = size > 0 ? size - 1 : 0;
    }
    g->off = g->from;
    g->left = size == 0 || head ? 0 : g->to - g->from + 1;
    if (g->left == 0) { /* HEAD, or an empty blob: the row says it all */
        start(g, req);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return 0;
    }
    return fetch_next(g);
}
