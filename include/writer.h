/*
 * writer.h - the single metadata writer: group commit of concurrent writes, asynchronous.
 *
 * Every metadata write in the server is an operation queued for the writer thread (writer_submit).  That thread
 * takes every queued operation at once (up to BERTH_COMMIT_BATCH_MAX), runs them in one BEGIN IMMEDIATE
 * transaction, each inside its own SAVEPOINT so that one failing operation rolls back alone, and commits once:
 * N concurrent pushes cost one WAL fsync instead of N.  Only after that commit is durable does it call each
 * operation's completion (acknowledged means durable).  Nobody waits: the completion runs on the writer thread and
 * posts the result on (the server posts it to the request's event loop, server/pool.c), so a write costs no
 * sleeping thread.  writer_run() is the blocking form for threads that have nothing else to do (startup
 * recovery, the janitor, tests).  Holding SQLite's write lock per batch also serializes writes with garbage
 * collection, which takes the same lock.
 */
#ifndef BERTH_WRITER_H
#define BERTH_WRITER_H

#include "db.h"

/** An operation: runs on the writer thread inside the batch transaction; returns 0 or a BERR code. */
typedef int (*writer_fn)(struct db *db, void *arg);

/** One queued write.  The submitter owns the memory and keeps it alive until `done` ran. */
struct writer_op {
    writer_fn fn;
    void *arg;
    /** Called once on the writer thread after the op's batch committed (rc = fn's result) or failed (rc = BERR_DB,
     *  nothing of fn persisted).  It must not block (post the result elsewhere) and may free the op. */
    void (*done)(struct writer_op *op);
    int rc;
    struct writer_op *next; /* the writer's queue */
};

/** Opens the writer's own connection to `<datadir>/berth.db` and starts its thread.  Returns 0, BERR_DB, or
 *  BERR_INTERNAL if the thread cannot be created. */
int writer_start(const char *datadir);
/** Queues `op` (fn, arg and done set) for the next batch.  Returns 0 (done will be called), or BERR_BUSY when the
 *  writer is not running (done will not be called). */
int writer_submit(struct writer_op *op);
/** Runs `fn(db, arg)` in the next batch and waits until the batch committed.  Returns fn's result, BERR_DB if the
 *  commit failed (then nothing of `fn` persisted), or BERR_BUSY if the writer is not running.  Blocks: never call
 *  it from an event loop or a pool worker. */
int writer_run(writer_fn fn, void *arg);
/** Finishes queued operations, stops the thread and closes the connection. */
void writer_stop(void);

#endif
