/* pool.c - the worker pool: blocking jobs off the event loops, results posted back to the request's loop. */
#include <stdlib.h>
#include <string.h>
#include "defaults.h"
#include "err.h"
#include "log.h"
#include "observe.h"
#include "respond.h"
#include "server.h"
#include <stddef.h>
#include <h2o/http2.h>
#include <h2o/http2_internal.h> /* after h2o.h; needs server/compat/khash.h */
#include <h2o/version.h>

/*
 * take_h2_body() below reads h2o's private HTTP/2 stream layout (h2o_http2_stream_t._req_body), which only the
 * h2o this was written and tested against is known to have: Debian 12's libh2o-evloop 2.2.5.  Any other version
 * fails the build here, loudly, instead of corrupting memory at run time; the layout is pinned as well (offsets
 * measured on Debian 12 amd64).  Porting: check take_h2_body against the new http2_internal.h and the
 * aborted-HTTP/2-upload test of tests/e2e/test_tls.sh, then update these numbers.
 */
#if H2O_VERSION_MAJOR != 2 || H2O_VERSION_MINOR != 2 || H2O_VERSION_PATCH != 5
#error "pool.c reads h2o 2.2.5's private h2o_http2_stream_t._req_body: check take_h2_body() for this h2o version"
#endif
#if defined(__x86_64__) && defined(__LP64__)
_Static_assert(offsetof(h2o_http2_stream_t, _req_body) == 80 && offsetof(h2o_http2_stream_t, req) == 272,
               "h2o_http2_stream_t's layout differs from h2o 2.2.5's: check take_h2_body()");
#endif
#include "writer.h"
#include "h1.h"
#include "memtrim.h"

/* Lives in the request's pool; its dispose hook runs when h2o frees the request. */
struct job_guard {
    struct job *job;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct job **queue; /* ring buffer of pending jobs */
    size_t cap, head, len;
    int stopping, n;
    pthread_t tids[BERTH_MAX_THREADS];
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static _Thread_local h2o_multithread_receiver_t *loop_receiver;
static _Thread_local int handed_to_writer; /* on a worker: the running job called job_write() */

static void on_guard_dispose(void *p)
{
    struct job_guard *g = p;
    struct job *job = g->job;
    if (job == NULL)
        return;
    pthread_mutex_lock(&job->lease);
    job->cancelled = 1;
    job->req = NULL;
    job->guard = NULL;
    pthread_mutex_unlock(&job->lease);
}

static void on_complete(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    while (!h2o_linklist_is_empty(messages)) {
        struct job *job = H2O_STRUCT_FROM_MEMBER(struct job, super.link, messages->next);
        h2o_linklist_unlink(&job->super.link);
        if (job->guard != NULL)
            job->guard->job = NULL;
        if (job->req != NULL) /* log lines of the completion name the request (observe.h) */
            log_set_request_id(observe_get(job->req) != NULL ? observe_get(job->req)->id : NULL);
        job->done(job, job->req);
        log_set_request_id(NULL);
        h1_stream_release(job->stream);
        if (job->owned_body != NULL)
            h2o_buffer_dispose(&job->owned_body);
        pthread_mutex_destroy(&job->lease);
        free(job);
    }
}

int pool_register_loop(h2o_context_t *ctx)
{
    if ((loop_receiver = calloc(1, sizeof(*loop_receiver))) == NULL)
        return -1;
    h2o_multithread_register_receiver(ctx->queue, loop_receiver, on_complete);
    return 0;
}

/*
 * HTTP/2 frees a stream's body buffer *before* it disposes the request when the client resets the stream or drops
 * the connection, so the dispose hook would come too late for a worker reading the body.  The job therefore takes
 * the buffer over (h2o skips a NULL one) and frees it itself when it completes.  HTTP/1 keeps the body until the
 * response is sent: it stops reading the socket while the request is processed.
 */
static void take_h2_body(struct job *job, h2o_req_t *req)
{
    h2o_http2_stream_t *stream;
    if (req->version < 0x200 || job->body_len == 0)
        return;
    stream = H2O_STRUCT_FROM_MEMBER(h2o_http2_stream_t, req, req);
    if (stream->_req_body != NULL && job->body >= stream->_req_body->bytes &&
        job->body + job->body_len <= stream->_req_body->bytes + stream->_req_body->size) {
        job->owned_body = stream->_req_body;
        stream->_req_body = NULL;
    }
}

void *job_new(struct call *call, size_t size, job_run_fn run, job_done_fn done)
{
    h2o_req_t *req = call->req;
    struct job *job = calloc(1, size);
    struct job_guard *g;
    if (job == NULL)
        return NULL;
    if (pthread_mutex_init(&job->lease, NULL) != 0) {
        free(job);
        return NULL;
    }
    g = h2o_mem_alloc_shared(&req->pool, sizeof(*g), on_guard_dispose);
    g->job = job;
    job->receiver = loop_receiver;
    job->srv = call->srv;
    job->req = req;
    job->guard = g;
    job->run = run;
    job->done = done;
    job->body = req->entity.base;
    job->body_len = req->entity.base != NULL ? req->entity.len : 0;
    if ((job->stream = h1_req_stream(call)) != NULL) /* an HTTP/1.1 upload: the body arrives while the job runs */
        job->body_len = h1_stream_length(job->stream);
    take_h2_body(job, req);
    return job;
}

/* A job reading a streamed body waits for the network: it gets a thread of its own (h1.c caps how many). */
static void *stream_job_main(void *arg)
{
    struct job *job = arg;
    size_t body_len = job->body_len;
    handed_to_writer = 0;
    memtrim_around_body(body_len);
    job->run(job);
    if (!handed_to_writer) /* else the writer's completion posts it */
        h2o_multithread_send_message(job->receiver, &job->super);
    server_db_close();
    memtrim_around_body(body_len);
    return NULL;
}

static int start_stream_job(struct job *job)
{
    pthread_t tid;
    pthread_attr_t attr;
    int rc;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&tid, &attr, stream_job_main, job);
    pthread_attr_destroy(&attr);
    return rc;
}

void job_submit(struct job *job)
{
    if (job->stream != NULL && start_stream_job(job) == 0)
        return;
    pthread_mutex_lock(&pool.lock);
    if (pool.len == pool.cap) {
        size_t ncap = pool.cap ? pool.cap * 2 : 256;
        struct job **q = malloc(ncap * sizeof(*q));
        if (q == NULL) { /* cannot queue it: fail the job on its loop instead */
            pthread_mutex_unlock(&pool.lock);
            job->rc = BERR_NOMEM;
            h2o_multithread_send_message(job->receiver, &job->super);
            return;
        }
        for (size_t i = 0; i < pool.len; i++)
            q[i] = pool.queue[(pool.head + i) % pool.cap];
        free(pool.queue);
        pool.queue = q;
        pool.cap = ncap;
        pool.head = 0;
    }
    pool.queue[(pool.head + pool.len++) % pool.cap] = job;
    pthread_cond_signal(&pool.cond);
    pthread_mutex_unlock(&pool.lock);
}

void job_finish(struct job *job)
{
    h2o_multithread_send_message(job->receiver, &job->super);
}

int job_body_each(struct job *job, int (*fn)(void *arg, const void *chunk, size_t len), void *arg)
{
    size_t off = 0;
    int rc = 0;
    if (job->stream != NULL)
        return h1_stream_each(job->stream, fn, arg);
    while (rc == 0 && off < job->body_len) {
        size_t n = job->body_len - off < BERTH_COPY_CHUNK ? job->body_len - off : BERTH_COPY_CHUNK;
        pthread_mutex_lock(&job->lease);
        rc = job->cancelled ? BERR_BAD_REQUEST : fn(arg, job->body + off, n);
        pthread_mutex_unlock(&job->lease);
        off += n;
    }
    return rc;
}

static void *worker_main(void *unused)
{
    (void)unused;
    for (;;) {
        struct job *job;
        pthread_mutex_lock(&pool.lock);
        while (pool.len == 0 && !pool.stopping)
            pthread_cond_wait(&pool.cond, &pool.lock);
        if (pool.len == 0) {
            pthread_mutex_unlock(&pool.lock);
            break;
        }
        job = pool.queue[pool.head];
        pool.head = (pool.head + 1) % pool.cap;
        pool.len--;
        pthread_mutex_unlock(&pool.lock);
        handed_to_writer = 0;
        job->run(job);
        if (!handed_to_writer) /* else the writer's completion posts it */
            h2o_multithread_send_message(job->receiver, &job->super);
    }
    server_db_close();
    return NULL;
}

int pool_start(int n)
{
    if (n > BERTH_MAX_THREADS)
        n = BERTH_MAX_THREADS;
    for (pool.n = 0; pool.n < n; pool.n++)
        if (pthread_create(&pool.tids[pool.n], NULL, worker_main, NULL) != 0) {
            log_error("cannot start worker thread %d", pool.n);
            pool_stop();
            return -1;
        }
    return 0;
}

void pool_stop(void)
{
    pthread_mutex_lock(&pool.lock);
    pool.stopping = 1;
    pthread_cond_broadcast(&pool.cond);
    pthread_mutex_unlock(&pool.lock);
    for (int i = 0; i < pool.n; i++)
        pthread_join(pool.tids[i], NULL);
    pool.n = 0;
}

/* ---- writes: the writer posts the job to its loop ---- */

static void on_written(struct writer_op *op)
{
    struct job *job = H2O_STRUCT_FROM_MEMBER(struct job, wop, op);
    job->rc = op->rc;
    h2o_multithread_send_message(job->receiver, &job->super);
}

int job_write(struct job *job, writer_fn fn, void *arg)
{
    int rc;
    handed_to_writer = 1;
    job->wop.fn = fn;
    job->wop.arg = arg;
    job->wop.done = on_written;
    /* once submitted, the job may complete and be freed at any moment: only touch it if the submit failed */
    if ((rc = writer_submit(&job->wop)) != 0) { /* not running (shutting down): answer the error */
        job->rc = rc;
        h2o_multithread_send_message(job->receiver, &job->super);
    }
    return JOB_WRITING;
}

/* ---- a metadata write for one route, answered with a fixed status ---- */

struct route_write_job {
    struct job super;
    struct route rt;
    route_write_fn fn;
    int status;
};

static int route_write_op(struct db *db, void *arg)
{
    struct route_write_job *j = arg;
    return j->fn(db, &j->rt);
}

static void route_write_done(struct job *job, h2o_req_t *req)
{
    if (req == NULL)
        return;
    if (job->rc != 0)
        respond_error(req, job->rc, NULL);
    else
        respond_empty(req, ((struct route_write_job *)job)->status);
}

int job_route_write(struct call *call, route_write_fn fn, int status)
{
    struct route_write_job *j = job_new(call, sizeof(*j), NULL, route_write_done);
    if (j == NULL)
        return BERR_NOMEM;
    j->rt = call->rt;
    j->fn = fn;
    j->status = status;
    job_write(&j->super, route_write_op, j);
    return 0;
}
