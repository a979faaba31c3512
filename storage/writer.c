/* writer.c - one thread that applies queued metadata writes in grouped transactions (group commit). */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include "defaults.h"
#include "err.h"
#include "fault.h"
#include "log.h"
#include "metrics.h"
#include "writer.h"

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    struct writer_op *head, *tail;
    int stopping, running;
    pthread_t tid;
    struct db *db;
} w = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

/* Runs one op in its own savepoint.  Returns 0, or the code that fails the whole batch: BERR_DB when the
 * transaction can no longer be trusted (a savepoint could not be opened, rolled back or released), or the op's own
 * code when SQLite rolled the transaction back by itself (SQLITE_FULL, an I/O error): the ops before it are undone
 * then, and the ones after it would run outside any transaction. */
static int run_one(struct writer_op *o)
{
    if (db_exec(w.db, "SAVEPOINT op") != 0)
        return BERR_DB;
    o->rc = o->fn(w.db, o->arg);
    if (o->rc == BERR_DB)
        o->rc = db_last_error(w.db); /* a full disk is 507, not a database fault */
    if (o->rc != 0 && !db_in_txn(w.db)) {
        log_error("writer: SQLite rolled the transaction back (%s): the batch fails", berr_name(o->rc));
        return o->rc;
    }
    if (o->rc != 0 && db_exec(w.db, "ROLLBACK TO op") != 0)
        return BERR_DB;
    return db_exec(w.db, "RELEASE op");
}

/* Runs one batch: every op in its own savepoint, one commit for all.  On any failure of the transaction itself,
 * every op of the batch fails (BERR_NOSPACE when the disk is full, else BERR_DB) and nothing persists. */
static void run_batch(struct writer_op *batch)
{
    struct timespec t0, t1;
    uint64_t n = 0, failed = 0;
    int rc;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = db_begin(w.db);
    for (struct writer_op *o = batch; o != NULL && rc == 0; o = o->next)
        rc = run_one(o);
    FAULT_POINT("writer.before_commit");
    if (rc == 0)
        rc = db_commit(w.db);
    if (rc != 0) {
        db_rollback(w.db);
        for (struct writer_op *o = batch; o != NULL; o = o->next)
            o->rc = rc == BERR_NOSPACE || rc == BERR_UNAVAILABLE ? rc : BERR_DB;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    for (struct writer_op *o = batch; o != NULL; o = o->next, n++)
        failed += o->rc != 0;
    metrics_add(METRIC_WRITER_OPS, (int64_t)n);
    metrics_add(METRIC_WRITER_OPS_FAILED, (int64_t)failed);
    metrics_observe(HIST_WRITER_BATCH_SIZE, n);
    metrics_observe(HIST_WRITER_COMMIT_SECONDS,
                    (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000));
    FAULT_POINT("writer.after_commit");
}

/* Calls every op's completion; an op may be freed by its own `done`, so `next` is read first. */
static void complete(struct writer_op *batch)
{
    while (batch != NULL) {
        struct writer_op *next = batch->next;
        batch->done(batch);
        batch = next;
    }
}

static void *writer_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&w.lock);
    for (;;) {
        struct writer_op *batch, *o;
        int n = 0;
        while (w.head == NULL && !w.stopping)
            pthread_cond_wait(&w.wake, &w.lock);
        if (w.head == NULL)
            break;
        batch = o = w.head;
        while (o->next != NULL && ++n < BERTH_COMMIT_BATCH_MAX)
            o = o->next;
        w.head = o->next;
        if (w.head == NULL)
            w.tail = NULL;
        o->next = NULL;
        pthread_mutex_unlock(&w.lock);
        run_batch(batch);
        complete(batch);
        pthread_mutex_lock(&w.lock);
    }
    pthread_mutex_unlock(&w.lock);
    return NULL;
}

int writer_start(const char *datadir)
{
    if (db_open(datadir, &w.db) != 0)
        return BERR_DB;
    w.stopping = 0;
    if (pthread_create(&w.tid, NULL, writer_main, NULL) != 0) {
        log_error("cannot start the writer thread");
        db_close(w.db);
        w.db = NULL;
        return BERR_INTERNAL;
    }
    pthread_mutex_lock(&w.lock);
    w.running = 1;
    pthread_mutex_unlock(&w.lock);
    return 0;
}

int writer_submit(struct writer_op *op)
{
    op->next = NULL;
    pthread_mutex_lock(&w.lock);
    if (!w.running || w.stopping) {
        pthread_mutex_unlock(&w.lock);
        return BERR_BUSY;
    }
    if (w.tail != NULL)
        w.tail->next = op;
    else
        w.head = op;
    w.tail = op;
    pthread_cond_signal(&w.wake);
    pthread_mutex_unlock(&w.lock);
    return 0;
}

/* writer_run's op: the completion wakes the waiting caller. */
struct sync_op {
    struct writer_op op;
    int finished;
};

static void sync_done(struct writer_op *op)
{
    struct sync_op *s = (struct sync_op *)op;
    pthread_mutex_lock(&w.lock);
    s->finished = 1;
    pthread_cond_broadcast(&w.done);
    pthread_mutex_unlock(&w.lock);
}

int writer_run(writer_fn fn, void *arg)
{
    struct sync_op s = {.op = {.fn = fn, .arg = arg, .done = sync_done}};
    int rc = writer_submit(&s.op);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&w.lock);
    while (!s.finished)
        pthread_cond_wait(&w.done, &w.lock);
    pthread_mutex_unlock(&w.lock);
    return s.op.rc;
}

void writer_stop(void)
{
    pthread_mutex_lock(&w.lock);
    if (!w.running) {
        pthread_mutex_unlock(&w.lock);
        return;
    }
    w.stopping = 1;
    pthread_cond_signal(&w.wake);
    pthread_mutex_unlock(&w.lock);
    pthread_join(w.tid, NULL);
    pthread_mutex_lock(&w.lock);
    w.running = 0;
    w.stopping = 0;
    pthread_mutex_unlock(&w.lock);
    db_close(w.db);
    w.db = NULL;
}
