/* keys.c - shared secrets as rows of shared_keys (see keys.h), over a connection of this module's own. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "clock.h"
#include "db.h"
#include "err.h"
#include "keys.h"
#include "log.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct db *conn;       /* opened on first use, kept for the process */
static long long stamp_cache; /* keys_stamp's last answer … */
static long long stamp_at_ms; /* … and when it was read */
static char stamp_prefix[64];

/* The connection, opened if needed; call with `lock` held.  A connection that failed is reopened next time. */
static struct db *get_conn(void)
{
    if (conn == NULL && db_open(NULL, &conn) != 0)
        conn = NULL;
    return conn;
}

/* After an error, drops the connection so that the next call reconnects (the server may have restarted). */
static int fail(void)
{
    db_close(conn);
    conn = NULL;
    return BERR_DB;
}

int keys_get(const char *name, void *out, size_t size, size_t *len)
{
    struct db_stmt *st;
    struct db *db;
    int rc;
    pthread_mutex_lock(&lock);
    if ((db = get_conn()) == NULL || (st = db_prepare(db, "SELECT value FROM shared_keys WHERE name = ?")) == NULL) {
        rc = fail();
        goto out;
    }
    db_bind_text(st, 1, name, -1);
    rc = db_step(st);
    if (rc == DB_ROW) {
        const void *v = db_column_blob(st, 0);
        size_t n = (size_t)db_column_bytes(st, 0);
        rc = n <= size ? 0 : BERR_DB;
        if (rc == 0) {
            memcpy(out, v, n);
            *len = n;
        }
        db_finalize(st);
    } else {
        db_finalize(st);
        rc = rc == DB_DONE ? BERR_NOT_FOUND : fail();
    }
out:
    pthread_mutex_unlock(&lock);
    return rc;
}

/* Runs `sql` with (name, value, now) bound. */
static int put(struct db *db, const char *sql, const char *name, const void *value, size_t len)
{
    struct db_stmt *st = db_prepare(db, sql);
    int rc;
    if (st == NULL)
        return BERR_DB;
    db_bind_text(st, 1, name, -1);
    db_bind_blob(st, 2, value, (int)len);
    db_bind_int64(st, 3, db_now());
    rc = db_step(st) == DB_DONE ? 0 : db_error(db);
    db_finalize(st);
    return rc;
}

int keys_create(const char *name, const void *value, size_t len)
{
    struct db *db;
    int rc = BERR_DB;
    pthread_mutex_lock(&lock);
    if ((db = get_conn()) != NULL && db_begin(db) == 0) {
        rc = put(db, "INSERT INTO shared_keys (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
                 name, value, len);
        rc = rc == 0 ? db_commit(db) : rc;
        if (rc != 0)
            db_rollback(db);
    }
    if (rc != 0)
        fail();
    stamp_at_ms = 0;
    pthread_mutex_unlock(&lock);
    return rc;
}

int keys_rotate(const char *cur, const char *prev, const void *value, size_t len)
{
    static const char upsert[] = "INSERT INTO shared_keys (name, value, created_at) VALUES (?, ?, ?) "
                                 "ON CONFLICT (name) DO UPDATE SET value = excluded.value, created_at = "
                                 "excluded.created_at";
    unsigned char old[KEYS_VALUE_MAX];
    size_t n = 0;
    struct db *db;
    int rc = BERR_DB, have;
    have = keys_get(cur, old, sizeof(old), &n) == 0; /* takes and releases `lock` */
    pthread_mutex_lock(&lock);
    if ((db = get_conn()) != NULL && db_begin(db) == 0) {
        rc = have ? put(db, upsert, prev, old, n) : 0;
        rc = rc == 0 ? put(db, upsert, cur, value, len) : rc;
        rc = rc == 0 ? db_commit(db) : rc;
        if (rc != 0)
            db_rollback(db);
    }
    if (rc != 0)
        fail();
    stamp_at_ms = 0;
    pthread_mutex_unlock(&lock);
    return rc;
}

int keys_stamp_recheck(void)
{
    int again;
    pthread_mutex_lock(&lock);
    again = stamp_at_ms == 0 || clock_mono_ms() - stamp_at_ms >= KEYS_RECHECK_MIN_MS;
    if (again)
        stamp_at_ms = 0;
    pthread_mutex_unlock(&lock);
    return again;
}

long long keys_stamp(const char *prefix)
{
    long long t = clock_mono_ms(), v = -1;
    struct db_stmt *st;
    struct db *db;
    pthread_mutex_lock(&lock);
    if (stamp_at_ms != 0 && t - stamp_at_ms < KEYS_STAMP_POLL_MS && strcmp(stamp_prefix, prefix) == 0) {
        v = stamp_cache;
        goto out;
    }
    /* xmin changes with every write of a row: the sum over the prefix's rows changes with every rotation */
    if ((db = get_conn()) == NULL ||
        (st = db_prepare(db, "SELECT coalesce(sum(created_at), 0) + count(*) * 7919 + coalesce(sum(length(value)), 0) "
                             "+ coalesce(sum(CAST(CAST(xmin AS TEXT) AS BIGINT)), 0) FROM shared_keys "
                             "WHERE substr(name, 1, length(?)) = ?")) == NULL) {
        fail();
        goto out;
    }
    db_bind_text(st, 1, prefix, -1);
    db_bind_text(st, 2, prefix, -1);
    if (db_step(st) == DB_ROW) {
        v = db_column_int64(st, 0);
        stamp_cache = v;
        stamp_at_ms = t;
        snprintf(stamp_prefix, sizeof(stamp_prefix), "%s", prefix);
    }
    db_finalize(st);
out:
    pthread_mutex_unlock(&lock);
    return v;
}
