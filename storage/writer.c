/* writer.c - one thread that applies queued metadata writes in grouped transactions (group commit). */
#include <pthread.h>
#include <stdlib.h>
#include "defaults.h"
#include "err.h"
#include "fault.h"
#include "log.h"
#include "writer.h"

struct op {
    writer_fn fn;
    void *arg;
    int rc, done;
    struct op *next;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    struct op *head, *tail;
    int stopping, running;
    pthread_t tid;
    struct db *db;
} w = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

/* Runs one batch: every op in its own savepoint, one commit for all.  If SQLite rolled the whole transaction
 * back by itself (SQLITE_FULL, an I/O error), the ops before it are undone and the ones after it would run outside
 * any transaction: the batch fails as a whole with that op's code, and nothing is committed. */
static void run_batch(struct op *batch)
{
    int rc = db_begin(w.db);
    for (struct op *o = batch; o != NULL; o = o->next) {
        if (rc != 0) {
            o->rc = rc;
            continue;
        }
        db_exec(w.db, "SAVEPOINT op");
        o->rc = o->fn(w.db, o->arg);
        if (o->rc == BERR_DB)
            o->rc = db_last_error(w.db); /* a full disk is 507, not a database fault */
        if (o->rc != 0 && !db_in_txn(w.db)) {
            log_error("writer: the transaction was rolled back (%s): the batch fails", berr_name(o->rc));
            rc = o->rc;
            for (struct op *p = batch; p != o; p = p->next)
                p->rc = rc;
            continue;
        }
        if (o->rc != 0)
            db_exec(w.db, "ROLLBACK TO op");
        db_exec(w.db, "RELEASE op");
    }
    FAULT_POINT("writer.before_commit");
    if (rc == 0 && (rc = db_commit(w.db)) != 0) {
        db_rollback(w.db);
        for (struct op *o = batch; o != NULL; o = o->next)
            o->rc = rc;
    }
    FAULT_POINT("writer.after_commit");
}

static void *writer_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&w.lock);
    for (;;) {
        struct op *batch, *o;
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
        pthread_mutex_lock(&w.lock);
        for (o = batch; o != NULL; o = o->next)
            o->done = 1;
        pthread_cond_broadcast(&w.done);
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
        db_close(w.db);
        return BERR_INTERNAL;
    }
    w.running = 1;
    return 0;
}

int writer_run(writer_fn fn, void *arg)
{
    struct op o = {.fn = fn, .arg = arg};
    pthread_mutex_lock(&w.lock);
    if (!w.running) {
        pthread_mutex_unlock(&w.lock);
        return BERR_BUSY;
    }
    if (w.tail != NULL)
        w.tail->next = &o;
    else
        w.head = &o;
    w.tail = &o;
    pthread_cond_signal(&w.wake);
    while (!o.done)
        pthread_cond_wait(&w.done, &w.lock);
    pthread_mutex_unlock(&w.lock);
    return o.rc;
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
    pthread_mutex_unlock(&w.lock);
    db_close(w.db);
    w.db = NULL;
}
