/*
 * server.h - what every part of `berth serve` shares: the configuration, the blobstore, per-thread database
 * connections, and the worker pool that keeps blocking work off the event loops.
 *
 * Threads: `threads` event loops (h2o contexts) answer requests; reads of metadata run there on a per-thread
 * SQLite connection (a point lookup costs microseconds).  Anything that may block for long — writing and hashing
 * request bodies, fsync, metadata writes (writer.h) — runs as a job on the worker pool, whose result comes back to
 * the request's own loop through h2o_multithread_send_message().
 */
#ifndef BERTH_SERVER_H
#define BERTH_SERVER_H

#include <h2o.h>
#include <pthread.h>
#include "blobstore.h"
#include "config.h"
#include "db.h"
#include "router.h"

struct server {
    struct config cfg;
    struct blobstore bs;
    volatile int stopping; /* set by SIGTERM / SIGINT */
};

/** The one server instance (set up by http_serve()). */
extern struct server *srv;

/** This thread's read connection to berth.db, opened on first use (NULL if it cannot be opened). */
struct db *server_db(void);
/** Closes this thread's connection (at thread exit). */
void server_db_close(void);

/* ---- worker pool (server/pool.c) ---- */

struct job;
/** Runs on a worker thread. */
typedef void (*job_run_fn)(struct job *job);
/** Runs on the request's event loop after `run`; `req` is NULL when the client went away meanwhile. */
typedef void (*job_done_fn)(struct job *job, h2o_req_t *req);

/*
 * A unit of blocking work for one request.  Embed it first in a larger struct (job_new allocates the whole).
 * The request body (req->entity) belongs to h2o and dies with the request, which a client can abort at any
 * time; a worker therefore reads it only through job_body_each(), which takes `lease` around each chunk, while the
 * request's dispose hook takes `lease` to mark the job cancelled.
 */
struct job {
    h2o_multithread_message_t super; /* must be first */
    h2o_multithread_receiver_t *receiver;
    h2o_req_t *req; /* NULL once the request is gone (loop thread only) */
    struct job_guard *guard;
    job_run_fn run;
    job_done_fn done;
    pthread_mutex_t lease;
    int cancelled;            /* under lease: the request is gone, do not touch the body */
    const char *body;         /* req->entity, captured on the loop */
    h2o_buffer_t *owned_body; /* HTTP/2: the body buffer, taken over from the stream (pool.c) */
    size_t body_len;
    struct h1_stream *stream; /* HTTP/1.1 upload: the body, streamed from the socket (h1.h), else NULL */
    int rc; /* result of run() for done() */
};

/** Starts `n` worker threads.  Returns 0 or -1. */
int pool_start(int n);
/** Stops the workers after the queued jobs ran. */
void pool_stop(void);
/** Registers the calling event-loop thread's completion receiver on `ctx`'s queue. */
void pool_register_loop(h2o_context_t *ctx);
/** Allocates a zeroed job of `size` bytes bound to `req` (on req's loop thread).  Returns NULL on OOM. */
void *job_new(h2o_req_t *req, size_t size, job_run_fn run, job_done_fn done);
/** Queues `job` for a worker. */
void job_submit(struct job *job);
/** On a worker: calls `fn(arg, chunk, len)` for successive chunks of the request body.  Stops at the first
 *  non-zero return and returns it; returns BERR_BAD_REQUEST if the request went away. */
int job_body_each(struct job *job, int (*fn)(void *arg, const void *chunk, size_t len), void *arg);

/** A metadata write for one route, run by the writer thread (writer.h). */
typedef int (*route_write_fn)(struct db *db, const struct route *rt);
/** Runs `fn` for `rt` on a worker through the writer and answers `status` with an empty body, or fn's error.
 *  Returns 0 (answered later) or BERR_NOMEM. */
int job_route_write(h2o_req_t *req, const struct route *rt, route_write_fn fn, int status);

#endif
