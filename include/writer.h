/*
 * writer.h - the single metadata writer: group commit of concurrent writes.
 *
 * Every metadata write in the server goes through writer_run(), which queues the operation for the writer thread.
 * That thread takes every queued operation at once (up to BERTH_COMMIT_BATCH_MAX), runs them in one
 * BEGIN IMMEDIATE transaction, each inside its own SAVEPOINT so that one failing operation rolls back alone, and
 * commits once: N concurrent pushes cost one WAL fsync instead of N.  writer_run() returns only after that commit is
 * durable (acknowledged means durable).  Holding SQLite's write lock per batch also serializes writes with garbage
 * collection, which takes the same lock.
 */
#ifndef BERTH_WRITER_H
#define BERTH_WRITER_H

#include "db.h"

/** An operation: runs on the writer thread inside the batch transaction; returns 0 or a BERR code. */
typedef int (*writer_fn)(struct db *db, void *arg);

/** Opens the writer's own connection to `<datadir>/berth.db` and starts its thread.  Returns 0 or BERR_DB. */
int writer_start(const char *datadir);
/** Runs `fn(db, arg)` in the next batch and waits until the batch committed.  Returns fn's result, or BERR_DB if
 *  the commit failed (then nothing of `fn` persisted).  Blocks: call it from worker threads, never an event loop. */
int writer_run(writer_fn fn, void *arg);
/** Finishes queued operations, stops the thread and closes the connection. */
void writer_stop(void);

#endif
