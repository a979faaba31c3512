/*
 * server.h - what every part of `berth serve` shares: the server context (configuration, blobstore, auth state),
 * the per-request context handed to handlers, per-thread database connections, and the worker pool that keeps
 * blocking work off the event loops.
 *
 * Ownership: main()/http_serve() builds the one `struct server` and hands it to every module's init (module.h);
 * handlers reach it through their h2o handler (struct server_handler embeds h2o_handler_t, as h2o's own handlers
 * do) and the `struct call` built for each request: there is no process-wide variable for handlers to reach.
 * Dependencies point one way: http.c (listeners, loops, signals) -> modules.c (the module table) -> the modules
 * (api, auth, uploads, manifests, ...) -> server.c/pool.c/respond.c -> storage/.  No module calls http.c.
 *
 * Threads (docs/ARCHITECTURE.md): `threads` event loops (h2o contexts) answer requests; reads of metadata run
 * there on a per-thread SQLite connection (a point lookup costs microseconds).  Work that may block for long —
 * writing and hashing request bodies, fsync, argon2id — runs as a job on the worker pool; metadata writes go to
 * the writer thread (writer.h).  Either way the result comes back to the request's own loop through
 * h2o_multithread_send_message(); no thread sleeps waiting for another.
 */
#ifndef BERTH_SERVER_H
#define BERTH_SERVER_H

#include <h2o.h> /* H2O_USE_LIBUV=0 comes from CMake (target berth) */
#include <pthread.h>
#include <stdatomic.h>
#include "blobstore.h"
#include "config.h"
#include "db.h"
#include "router.h"
#include "sessions.h"
#include "writer.h"

struct auth_identity;

/** The server context: built once by http_serve(), read-only after start except where noted. */
struct server {
    struct config cfg;
    struct blobstore bs;
    struct sessions *sessions; /* live upload sessions (uploads module; sessions.h) */
    time_t uploads_expired_at; /* janitor only: the last expiry pass */
    atomic_int stopping;       /* set by SIGTERM / SIGINT (the signal handler's one store) */
};

/** An h2o handler that knows its server: what every module registers (h2o_create_handler with its size). */
struct server_handler {
    h2o_handler_t super; /* must be first */
    struct server *srv;
};

/** The per-request context handed to every handler (allocated in the request's pool by the dispatcher). */
struct call {
    struct server *srv;
    h2o_req_t *req;
    struct route rt;
    const struct auth_identity *who; /* who is calling, set by auth before the handler runs (auth.h) */
};

/** A handler: answers `call->req` itself and returns 0, or returns a negative BERR code the dispatcher answers.
 *  `req` and `rt` are call->req and &call->rt, for brevity. */
typedef int (*handler_fn)(struct call *call, h2o_req_t *req, const struct route *rt);

/** This thread's read connection to `srv`'s berth.db, opened on first use (NULL if it cannot be opened). */
struct db *server_db(const struct server *srv);
/** Closes this thread's connection (every thread that called server_db, at its exit). */
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
    struct server *srv;
    h2o_req_t *req; /* NULL once the request is gone (loop thread only) */
    struct job_guard *guard;
    job_run_fn run;
    job_done_fn done;
    pthread_mutex_t lease;
    int cancelled;            /* under lease: the request is gone, do not touch the body */
    const char *body;         /* req->entity, captured on the loop */
    h2o_buffer_t *owned_body; /* HTTP/2: the body buffer, taken over from the stream (pool.c) */
    size_t body_len;
    int rc;               /* result of run() (or of the write, see job_write) for done() */
    struct writer_op wop; /* job_write's operation */
};

/** Returned by job_write(): the job now belongs to the writer, whose completion posts it to the loop. */
#define JOB_WRITING 1

/** Starts `n` worker threads.  Returns 0, or -1 (none left running) if a thread cannot be created. */
int pool_start(int n);
/** Stops the workers after the queued jobs ran. */
void pool_stop(void);
/** Registers the calling event-loop thread's completion receiver on `ctx`'s queue.  Returns 0 or -1 (OOM). */
int pool_register_loop(h2o_context_t *ctx);
/** Allocates a zeroed job of `size` bytes bound to the call's request (on its loop thread).  Returns NULL on OOM. */
void *job_new(struct call *call, size_t size, job_run_fn run, job_done_fn done);
/** On the loop, for a job that needs neither a worker nor a write (e.g. it failed validation): posts it, so that
 *  its done() runs like any other job's. */
void job_finish(struct job *job);
/** Queues `job` for a worker (if it cannot be queued, its done() runs with job->rc = BERR_NOMEM). */
void job_submit(struct job *job);
/** On a worker: calls `fn(arg, chunk, len)` for successive chunks of the request body.  Stops at the first
 *  non-zero return and returns it; returns BERR_BAD_REQUEST if the request went away. */
int job_body_each(struct job *job, int (*fn)(void *arg, const void *chunk, size_t len), void *arg);

/** Hands `job` to the writer: `fn(db, arg)` runs in the next batch and, once committed, the writer posts the job
 *  to its loop with job->rc = fn's result (or BERR_DB / BERR_BUSY), where done() runs.  Call it from a job's run()
 *  on a worker as its last action (then the worker does not post the job: do not touch the job afterwards), or on
 *  the loop for a job that was never submitted (a write needing no worker: loop -> writer -> loop).  Returns
 *  JOB_WRITING. */
int job_write(struct job *job, writer_fn fn, void *arg);

/** A metadata write for one route, run by the writer thread (writer.h). */
typedef int (*route_write_fn)(struct db *db, const struct route *rt);
/** Runs `fn` for `rt` on the writer (no worker involved) and answers `status` with an empty body, or fn's error.
 *  Returns 0 (answered later) or BERR_NOMEM. */
int job_route_write(struct call *call, route_write_fn fn, int status);

#endif
