/* sessions.c - the live upload-session table, recovery at start and expiry of idle sessions (sessions.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "err.h"
#include "fault.h"
#include "log.h"
#include "meta.h"
#include "s3upload.h"
#include "sessions.h"
#include "writer.h"

#define SESSION_BUCKETS 1024 /* hash buckets of the live-session table */

struct sessions {
    const struct blobstore *bs;
    pthread_mutex_t lock;
    struct session *buckets[SESSION_BUCKETS];
    size_t live; /* sessions in the table */
};

static unsigned bucket_of(const char *uuid)
{
    unsigned h = 2166136261u;
    for (; *uuid; uuid++)
        h = (h ^ (unsigned char)*uuid) * 16777619u;
    return h % SESSION_BUCKETS;
}

/* Removes and returns session `uuid` (lock held). */
static struct session *table_take(struct sessions *t, const char *uuid)
{
    for (struct session **pp = &t->buckets[bucket_of(uuid)]; *pp != NULL; pp = &(*pp)->next)
        if (strcmp((*pp)->uuid, uuid) == 0) {
            struct session *s = *pp;
            *pp = s->next;
            t->live--;
            return s;
        }
    return NULL;
}

/* (lock held) */
static struct session *table_find(struct sessions *t, const char *uuid)
{
    for (struct session *s = t->buckets[bucket_of(uuid)]; s != NULL; s = s->next)
        if (strcmp(s->uuid, uuid) == 0)
            return s;
    return NULL;
}

/* (lock held) */
static void table_put(struct sessions *t, struct session *s)
{
    unsigned b = bucket_of(s->uuid);
    s->next = t->buckets[b];
    t->buckets[b] = s;
    t->live++;
}

/* Past BERTH_SESSIONS_OPEN_MAX live sessions, takes the least recently touched idle one out of the table (lock
 * held) so that its staging file is closed: each live session holds a descriptor, and a client opening sessions
 * without finishing them must not run the process out of descriptors.  The file and row stay; the session's next
 * request reopens it from disk (rehashing what it holds, as after a restart).  NULL when under the cap or none is
 * idle. */
static struct session *table_evict(struct sessions *t)
{
    struct session **oldest = NULL;
    if (t->live <= BERTH_SESSIONS_OPEN_MAX)
        return NULL;
    for (size_t b = 0; b < SESSION_BUCKETS; b++)
        for (struct session **pp = &t->buckets[b]; *pp != NULL; pp = &(*pp)->next)
            if (!(*pp)->busy && (oldest == NULL || (*pp)->touched < (*oldest)->touched))
                oldest = pp;
    if (oldest == NULL)
        return NULL;
    struct session *s = *oldest;
    *oldest = s->next;
    t->live--;
    return s;
}

static void session_free(struct session *s)
{
    if (s != NULL) {
        upload_free(s->up);
        free(s);
    }
}

/* A busy placeholder for `uuid` (no upload yet).  NULL on OOM. */
static struct session *session_alloc(const char *uuid, const char *repo)
{
    struct session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    snprintf(s->uuid, sizeof(s->uuid), "%s", uuid);
    snprintf(s->repo, sizeof(s->repo), "%s", repo);
    s->busy = 1;
    s->touched = time(NULL);
    return s;
}

int sessions_new(const struct blobstore *bs, struct sessions **out)
{
    struct sessions *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return BERR_NOMEM;
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t);
        return BERR_NOMEM;
    }
    t->bs = bs;
    *out = t;
    return 0;
}

void sessions_free(struct sessions *t)
{
    if (t == NULL)
        return;
    for (size_t b = 0; b < SESSION_BUCKETS; b++)
        while (t->buckets[b] != NULL) {
            struct session *s = t->buckets[b];
            t->buckets[b] = s->next;
            session_free(s);
        }
    pthread_mutex_destroy(&t->lock);
    free(t);
}

int sessions_create(struct sessions *t, const char *repo, struct session **out)
{
    struct upload *up;
    struct session *s;
    int rc = upload_create(t->bs, &up);
    if (rc != 0)
        return rc;
    if ((s = session_alloc(up->uuid, repo)) == NULL) {
        upload_remove(t->bs, up->uuid);
        upload_free(up);
        return BERR_NOMEM;
    }
    s->up = up;
    pthread_mutex_lock(&t->lock);
    table_put(t, s);
    pthread_mutex_unlock(&t->lock);
    *out = s;
    return 0;
}

/* Reopens the placeholder `s` (in the table, busy) from disk.  Returns 0 or a BERR code. */
static int reopen(struct sessions *t, struct db *db, struct session *s)
{
    struct upload *up;
    int rc = db != NULL ? meta_upload_find(db, s->uuid, s->repo) : BERR_DB;
    if (rc == 0 && (rc = upload_open(t->bs, s->uuid, &up)) == 0) {
        pthread_mutex_lock(&t->lock);
        s->up = up;
        pthread_mutex_unlock(&t->lock);
    }
    return rc;
}

int sessions_acquire(struct sessions *t, struct db *db, const char *uuid, const char *repo, struct session **out)
{
    struct session *s;
    int rc;
    pthread_mutex_lock(&t->lock);
    if ((s = table_find(t, uuid)) != NULL) {
        rc = strcmp(s->repo, repo) != 0 ? BERR_BLOB_UPLOAD_UNKNOWN : (s->busy ? BERR_BLOB_UPLOAD_INVALID : 0);
        if (rc == 0)
            s->busy = 1;
        pthread_mutex_unlock(&t->lock);
        *out = s;
        return rc;
    }
    /* not live (a session from before a restart, or unknown): hold its place, busy, while it is reopened, so that
     * neither a second request nor expiry can touch its file meanwhile */
    if ((s = session_alloc(uuid, repo)) == NULL) {
        pthread_mutex_unlock(&t->lock);
        return BERR_NOMEM;
    }
    table_put(t, s);
    pthread_mutex_unlock(&t->lock);
    if ((rc = reopen(t, db, s)) != 0) {
        pthread_mutex_lock(&t->lock);
        table_take(t, uuid);
        pthread_mutex_unlock(&t->lock);
        session_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void sessions_release(struct sessions *t, struct session *s)
{
    if (t->bs->s3 != NULL) { /* S3: another node may continue the session; the next request reloads its state */
        sessions_drop(t, s);
        return;
    }
    pthread_mutex_lock(&t->lock);
    s->busy = 0;
    s->touched = time(NULL);
    struct session *evicted = table_evict(t);
    pthread_mutex_unlock(&t->lock);
    session_free(evicted);
}

void sessions_drop(struct sessions *t, struct session *s)
{
    pthread_mutex_lock(&t->lock);
    table_take(t, s->uuid);
    pthread_mutex_unlock(&t->lock);
    session_free(s);
}

/* ---- recovery ---- */

struct uuid_list {
    char (*v)[BERTH_UUID_LEN + 1];
    size_t n, cap;
};

static int collect_uuid(void *ctx, const char *uuid)
{
    struct uuid_list *l = ctx;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 64;
        void *nv = realloc(l->v, ncap * sizeof(*l->v));
        if (nv == NULL)
            return BERR_NOMEM; /* aborts the listing: recovery must not act on a partial list */
        l->v = nv;
        l->cap = ncap;
    }
    snprintf(l->v[l->n++], BERTH_UUID_LEN + 1, "%s", uuid);
    return 0;
}

static int cmp_uuid(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* `l` is sorted: meta_uploads_each lists sessions in uuid order. */
static int has_uuid(const struct uuid_list *l, const char *uuid)
{
    return l->n > 0 && bsearch(uuid, l->v, l->n, sizeof(*l->v), cmp_uuid) != NULL;
}

static int del_row_op(struct db *db, void *arg)
{
    return meta_upload_del(db, arg);
}

struct recover_ctx {
    const struct blobstore *bs;
    const struct uuid_list *rows;
};

static int recover_file(void *ctx, const char *name, time_t mtime)
{
    struct recover_ctx *r = ctx;
    (void)mtime;
    /* a monolithic upload or a session whose row never committed */
    if (upload_uuid_valid(name, strlen(name)) == 0 && !has_uuid(r->rows, name))
        upload_remove(r->bs, name);
    return 0;
}

/* Test seam: the listing callback (collect_uuid; a test substitutes one that fails). */
int (*sessions__collect)(void *ctx, const char *uuid) = collect_uuid;

int sessions_recover(struct sessions *t, struct db *db)
{
    struct uuid_list rows = {0};
    struct recover_ctx r = {.bs = t->bs, .rows = &rows};
    int rc;
    if (t->bs->s3 != NULL) /* S3: sessions live in the shared database and bucket (other nodes'); expiry reaps */
        return blobstore_tmp_clear(t->bs) < 0 ? BERR_IO : 0;
    rc = meta_uploads_each(db, sessions__collect, &rows);
    if (rc != 0) {
        log_error("upload recovery: cannot list the upload sessions (%s); nothing removed", berr_name(rc));
        free(rows.v);
        return rc;
    }
    for (size_t i = 0; i < rows.n && rc == 0; i++)
        if (!blobstore_upload_exists(t->bs, rows.v[i]))
            rc = writer_run(del_row_op, rows.v[i]); /* a row without a file is dropped */
    if (rc == 0)
        rc = blobstore_uploads_each(t->bs, recover_file, &r);
    free(rows.v);
    if (rc == 0 && blobstore_tmp_clear(t->bs) < 0)
        rc = BERR_IO;
    if (rc != 0)
        log_error("upload recovery failed: %s", berr_name(rc));
    return rc;
}

/* ---- expiry ---- */

/* Takes session `uuid` for expiry: 1 (it is in the table, busy, on behalf of expiry), or 0 if someone holds it. */
static int expiry_claim(struct sessions *t, const char *uuid, struct session **out)
{
    struct session *s;
    pthread_mutex_lock(&t->lock);
    if ((s = table_find(t, uuid)) != NULL) {
        if (s->busy) {
            pthread_mutex_unlock(&t->lock);
            return 0;
        }
        s->busy = 1;
    } else if ((s = session_alloc(uuid, "")) != NULL) {
        table_put(t, s);
    } else {
        pthread_mutex_unlock(&t->lock);
        return 0; /* out of memory: try again next time */
    }
    pthread_mutex_unlock(&t->lock);
    *out = s;
    return 1;
}

struct expire_ctx {
    struct sessions *t;
    time_t cutoff;
    int removed;
};

static int expire_file(void *ctx, const char *name, time_t mtime)
{
    struct expire_ctx *e = ctx;
    struct session *s;
    int rc;
    if (mtime >= e->cutoff || upload_uuid_valid(name, strlen(name)) != 0 || !expiry_claim(e->t, name, &s))
        return 0;
    FAULT_POINT("upload.expire_before_unlink");
    upload_remove(e->t->bs, s->uuid);
    FAULT_POINT("upload.expire_after_unlink");
    if ((rc = writer_run(del_row_op, s->uuid)) != 0)
        log_warn("upload %s: file removed, row left (%s): recovery drops it", s->uuid, berr_name(rc));
    log_info("upload %s idle since %lld: removed", s->uuid, (long long)mtime);
    sessions_drop(e->t, s);
    e->removed++;
    return 0;
}

/* s3upload_expire's test: is session `uuid` live in this table? */
static int held(void *ctx, const char *uuid)
{
    struct sessions *t = ctx;
    int live;
    pthread_mutex_lock(&t->lock);
    live = table_find(t, uuid) != NULL;
    pthread_mutex_unlock(&t->lock);
    return live;
}

int sessions_expire(struct sessions *t, time_t cutoff)
{
    struct expire_ctx e = {.t = t, .cutoff = cutoff};
    int rc;
    if (t->bs->s3 != NULL)
        return s3upload_expire(t->bs, cutoff, held, t);
    rc = blobstore_uploads_each(t->bs, expire_file, &e);
    return rc != 0 ? rc : e.removed;
}
