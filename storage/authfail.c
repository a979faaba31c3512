/* authfail.c - failed-authentication counts shared through table auth_failures (see authfail.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>
#include "authfail.h"
#include "clock.h"
#include "db.h"
#include "err.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"

struct entry {
    int kind;
    int delta;
    long long at;
    unsigned seq;
    unsigned char subject[AUTHFAIL_SUBJECT_BYTES];
};

static struct {
    pthread_mutex_t lock; /* everything below */
    pthread_cond_t wake;
    pthread_t tid;
    int started;
    int nwatch;
    struct {
        int kind, limit, window;
        authfail_import_fn fn;
    } watch[AUTHFAIL_KINDS];
    struct entry queue[AUTHFAIL_QUEUE_MAX];
    size_t queued;
    unsigned seq;
    long long dropped;
} q = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

/* The thread's own (the drained batch and its connection). */
static struct entry batch[AUTHFAIL_QUEUE_MAX];
static struct db *conn;

int authfail_shared(void)
{
    return db_metadata_is_pg();
}

int authfail_secret(unsigned char out[AUTHFAIL_KEY_BYTES])
{
    unsigned char buf[KEYS_VALUE_MAX];
    size_t n = 0;
    int rc;
    if (!authfail_shared())
        return BERR_NOT_FOUND;
    rc = keys_get(AUTHFAIL_KEY_NAME, buf, sizeof(buf), &n);
    if (rc == BERR_NOT_FOUND) {
        randombytes_buf(buf, AUTHFAIL_KEY_BYTES);
        rc = keys_create(AUTHFAIL_KEY_NAME, buf, AUTHFAIL_KEY_BYTES); /* the first node's key wins */
        if (rc == 0)
            rc = keys_get(AUTHFAIL_KEY_NAME, buf, sizeof(buf), &n);
    }
    if (rc == 0 && n != AUTHFAIL_KEY_BYTES)
        rc = BERR_IO;
    if (rc == 0)
        memcpy(out, buf, AUTHFAIL_KEY_BYTES);
    sodium_memzero(buf, sizeof(buf));
    if (rc != 0)
        log_error("cannot read or create the shared rate-limit key (%s) in the database", AUTHFAIL_KEY_NAME);
    return rc == 0 ? 0 : BERR_IO;
}

/* The watch entry of `kind`, or -1 (lock held). */
static int watched(int kind)
{
    for (int i = 0; i < q.nwatch; i++)
        if (q.watch[i].kind == kind)
            return i;
    return -1;
}

void authfail_note(int kind, const unsigned char subject[AUTHFAIL_SUBJECT_BYTES], long long now, int delta)
{
    if (!authfail_shared())
        return;
    pthread_mutex_lock(&q.lock);
    if (q.started && watched(kind) >= 0) {
        if (q.queued < AUTHFAIL_QUEUE_MAX) {
            struct entry *e = &q.queue[q.queued++];
            e->kind = kind;
            e->delta = delta;
            e->at = now;
            e->seq = q.seq++;
            memcpy(e->subject, subject, AUTHFAIL_SUBJECT_BYTES);
            pthread_cond_signal(&q.wake);
        } else {
            q.dropped++;
        }
    }
    pthread_mutex_unlock(&q.lock);
}

/* ---- the thread ---- */

/* Orders a batch by subject, then arrival. */
static int entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    int c = x->kind - y->kind;
    if (c == 0)
        c = memcmp(x->subject, y->subject, AUTHFAIL_SUBJECT_BYTES);
    if (c == 0)
        c = x->seq < y->seq ? -1 : x->seq > y->seq;
    return c;
}

/* After an error, drops the connection so that the next round reconnects. */
static void conn_drop(void)
{
    db_close(conn);
    conn = NULL;
}

/* Runs a statement on `conn` with (kind, subject[, start, count, window]) bound.  Returns 0 or BERR_DB. */
static int run(const char *sql, int kind, const unsigned char *subject, long long start, long long count, int window)
{
    struct db_stmt *st = db_prepare(conn, sql);
    int rc;
    if (st == NULL)
        return BERR_DB;
    db_bind_int64(st, 1, kind);
    db_bind_blob(st, 2, subject, AUTHFAIL_SUBJECT_BYTES);
    if (count > 0) {
        db_bind_int64(st, 3, start);
        db_bind_int64(st, 4, count);
        db_bind_int64(st, 5, window);
    }
    rc = db_step(st) == DB_DONE ? 0 : db_error(conn);
    db_finalize(st);
    return rc;
}

/* Writes one subject's share of a batch: a reset (a login succeeded) then `count` failures, the first at `start`.
 * A row whose window ended starts again. */
static int write_subject(int kind, const unsigned char *subject, int reset, long long start, long long count,
                         int window)
{
    static const char del[] = "DELETE FROM auth_failures WHERE kind = ? AND subject = ?";
    static const char add[] =
        "INSERT INTO auth_failures (kind, subject, first_at, failures) VALUES (?1, ?2, ?3, ?4) "
        "ON CONFLICT (kind, subject) DO UPDATE SET "
        "failures = CASE WHEN auth_failures.first_at > ?3 - ?5 THEN auth_failures.failures + ?4 ELSE ?4 END, "
        "first_at = CASE WHEN auth_failures.first_at > ?3 - ?5 THEN auth_failures.first_at ELSE ?3 END";
    int rc = reset ? run(del, kind, subject, 0, 0, 0) : 0;
    if (rc == 0 && count > 0) {
        rc = run(add, kind, subject, start, count, window);
        if (rc == 0)
            metrics_add(METRIC_AUTH_SHARED_WRITES, count);
    }
    return rc;
}

/* Writes the drained batch[0..n), one subject at a time.  Returns 0 or BERR_DB. */
static int flush(size_t n)
{
    qsort(batch, n, sizeof(batch[0]), entry_cmp);
    for (size_t i = 0, j; i < n; i = j) {
        int reset = 0, window;
        long long count = 0, start = 0;
        for (j = i; j < n && batch[j].kind == batch[i].kind &&
                    memcmp(batch[j].subject, batch[i].subject, AUTHFAIL_SUBJECT_BYTES) == 0;
             j++) {
            if (batch[j].delta == 0) { /* a success: what came before it is cleared */
                reset = 1;
                count = 0;
            } else if (count++ == 0) {
                start = batch[j].at;
            }
        }
        pthread_mutex_lock(&q.lock);
        window = q.watch[watched(batch[i].kind)].window;
        pthread_mutex_unlock(&q.lock);
        if (write_subject(batch[i].kind, batch[i].subject, reset, start, count, window) != 0)
            return BERR_DB;
    }
    return 0;
}

/* Imports every subject over its kind's limit.  Returns 0 or BERR_DB. */
static int poll_limited(long long now)
{
    static const char sql[] = "SELECT kind, subject, first_at, failures FROM auth_failures WHERE kind = ? "
                              "AND first_at > ? AND failures >= ? LIMIT ?";
    int nwatch;
    pthread_mutex_lock(&q.lock);
    nwatch = q.nwatch;
    pthread_mutex_unlock(&q.lock);
    for (int i = 0; i < nwatch; i++) { /* watch[] entries never change once added */
        struct db_stmt *st = db_prepare(conn, sql);
        int rc;
        if (st == NULL)
            return BERR_DB;
        db_bind_int64(st, 1, q.watch[i].kind);
        db_bind_int64(st, 2, now - q.watch[i].window);
        db_bind_int64(st, 3, q.watch[i].limit);
        db_bind_int64(st, 4, AUTHFAIL_IMPORT_MAX);
        while ((rc = db_step(st)) == DB_ROW) {
            const unsigned char *s = db_column_blob(st, 1);
            if (s == NULL || db_column_bytes(st, 1) != AUTHFAIL_SUBJECT_BYTES)
                continue;
            q.watch[i].fn((int)db_column_int64(st, 0), s, db_column_int64(st, 2), (int)db_column_int64(st, 3));
            metrics_add(METRIC_AUTH_SHARED_IMPORTS, 1);
        }
        rc = rc == DB_DONE ? 0 : db_error(conn);
        db_finalize(st);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Deletes rows whose window ended (the longest window of any kind). */
static int expire(long long now)
{
    struct db_stmt *st;
    int rc, longest = 0;
    pthread_mutex_lock(&q.lock);
    for (int i = 0; i < q.nwatch; i++)
        longest = q.watch[i].window > longest ? q.watch[i].window : longest;
    pthread_mutex_unlock(&q.lock);
    if ((st = db_prepare(conn, "DELETE FROM auth_failures WHERE first_at <= ?")) == NULL)
        return BERR_DB;
    db_bind_int64(st, 1, now - longest);
    rc = db_step(st) == DB_DONE ? 0 : db_error(conn);
    db_finalize(st);
    return rc;
}

/* Waits until failures are queued or `deadline_ms` (monotonic) passes; moves the queue into batch[].  Returns the
 * number of entries moved. */
static size_t drain(long long deadline_ms)
{
    size_t n;
    long long left = deadline_ms - clock_mono_ms();
    pthread_mutex_lock(&q.lock);
    if (q.queued == 0 && left > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&q.wake, &q.lock, &ts);
    }
    n = q.queued;
    memcpy(batch, q.queue, n * sizeof(batch[0]));
    q.queued = 0;
    if (q.dropped > 0) {
        log_warn("auth: %lld failed authentications counted on this node only (the shared queue was full)", q.dropped);
        q.dropped = 0;
    }
    pthread_mutex_unlock(&q.lock);
    return n;
}

static void *authfail_main(void *arg)
{
    long long next_poll = 0, next_expire = 0;
    (void)arg;
    for (;;) {
        size_t n = drain(next_poll);
        long long t = clock_mono_ms();
        if (conn == NULL && db_open(NULL, &conn) != 0)
            conn = NULL;
        if (conn != NULL && n > 0 && flush(n) != 0) /* a lost batch: those failures stay counted locally */
            conn_drop();
        if (conn != NULL && t >= next_poll) {
            next_poll = t + AUTHFAIL_POLL_MS;
            if (poll_limited(db_now()) != 0)
                conn_drop();
        }
        if (conn != NULL && t >= next_expire) {
            next_expire = t + AUTHFAIL_EXPIRE_MS;
            if (expire(db_now()) != 0)
                conn_drop();
        }
        if (conn == NULL && t >= next_poll) /* the database is away: retry at the next poll */
            next_poll = t + AUTHFAIL_POLL_MS;
    }
    return NULL;
}

int authfail_watch(int kind, int limit, int window, authfail_import_fn fn)
{
    int rc = 0;
    if (!authfail_shared())
        return 0;
    pthread_mutex_lock(&q.lock);
    if (watched(kind) < 0 && q.nwatch < AUTHFAIL_KINDS) {
        q.watch[q.nwatch].kind = kind;
        q.watch[q.nwatch].limit = limit;
        q.watch[q.nwatch].window = window;
        q.watch[q.nwatch].fn = fn;
        q.nwatch++;
    }
    if (!q.started) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&q.tid, &attr, authfail_main, NULL) == 0)
            q.started = 1;
        else
            rc = BERR_INTERNAL;
        pthread_attr_destroy(&attr);
    }
    pthread_mutex_unlock(&q.lock);
    if (rc != 0)
        log_error("auth: cannot start the shared rate-limit thread: failures count per node only");
    return rc;
}
