/*
 * uploads.c - the blob upload API (distribution-spec "Pushing blobs"): POST to start (monolithic with ?digest=,
 * or a cross-repository mount with ?mount=&from=), PATCH to append (streamed, or chunked with Content-Range), PUT
 * ?digest= to finish, GET for status, DELETE to cancel.
 *
 * Live sessions are kept in a table keyed by UUID so that the running hash survives between requests; a session
 * missing from the table (after a restart) is reopened from its staging file.  One request works on a session at a
 * time: a second concurrent request on the same session is refused.  All file and database work runs on workers.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "auth.h"
#include "digest.h"
#include "err.h"
#include "fault.h"
#include "handlers.h"
#include "log.h"
#include "meta.h"
#include "names.h"
#include "respond.h"
#include "upload.h"
#include "writer.h"

#define SESSION_BUCKETS 1024 /* hash buckets of the live-session table */

struct session {
    struct session *next;
    char repo[BERTH_NAME_MAX + 1];
    struct upload *up;
    int busy;
    time_t touched;
};

static struct {
    pthread_mutex_t lock;
    struct session *buckets[SESSION_BUCKETS];
} table = {.lock = PTHREAD_MUTEX_INITIALIZER};

static unsigned bucket_of(const char *uuid)
{
    unsigned h = 2166136261u;
    for (; *uuid; uuid++)
        h = (h ^ (unsigned char)*uuid) * 16777619u;
    return h % SESSION_BUCKETS;
}

/* Removes and returns session `uuid` from the table (lock held). */
static struct session *table_take(const char *uuid)
{
    struct session **pp = &table.buckets[bucket_of(uuid)];
    for (; *pp != NULL; pp = &(*pp)->next)
        if (strcmp((*pp)->up->uuid, uuid) == 0) {
            struct session *s = *pp;
            *pp = s->next;
            return s;
        }
    return NULL;
}

static struct session *table_find(const char *uuid)
{
    for (struct session *s = table.buckets[bucket_of(uuid)]; s != NULL; s = s->next)
        if (strcmp(s->up->uuid, uuid) == 0)
            return s;
    return NULL;
}

static void table_put(struct session *s)
{
    unsigned b = bucket_of(s->up->uuid);
    s->next = table.buckets[b];
    table.buckets[b] = s;
}

static void session_free(struct session *s)
{
    if (s != NULL) {
        upload_free(s->up);
        free(s);
    }
}

/* On a worker: marks session `uuid` of `repo` busy and returns it, reopening it from disk if needed. */
static int session_acquire(const char *uuid, const char *repo, struct session **out)
{
    struct session *s;
    struct db *db;
    int rc;
    pthread_mutex_lock(&table.lock);
    if ((s = table_find(uuid)) != NULL) {
        rc = strcmp(s->repo, repo) != 0 ? BERR_BLOB_UPLOAD_UNKNOWN : (s->busy ? BERR_BLOB_UPLOAD_INVALID : 0);
        if (rc == 0)
            s->busy = 1;
        pthread_mutex_unlock(&table.lock);
        *out = s;
        return rc;
    }
    pthread_mutex_unlock(&table.lock);
    /* not live: a session from before a restart, or unknown */
    if ((db = server_db()) == NULL)
        return BERR_DB;
    if ((rc = meta_upload_find(db, uuid, repo)) != 0)
        return rc;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return BERR_NOMEM;
    if ((rc = upload_open(&srv->bs, uuid, &s->up)) != 0) {
        free(s);
        return rc;
    }
    snprintf(s->repo, sizeof(s->repo), "%s", repo);
    s->busy = 1;
    s->touched = time(NULL);
    pthread_mutex_lock(&table.lock);
    if (table_find(uuid) != NULL) { /* another request reopened it meanwhile */
        pthread_mutex_unlock(&table.lock);
        session_free(s);
        return BERR_BLOB_UPLOAD_INVALID;
    }
    table_put(s);
    pthread_mutex_unlock(&table.lock);
    *out = s;
    return 0;
}

static void session_release(struct session *s)
{
    pthread_mutex_lock(&table.lock);
    s->busy = 0;
    s->touched = time(NULL);
    pthread_mutex_unlock(&table.lock);
}

/* Removes a busy session from the table and frees it. */
static void session_drop(struct session *s)
{
    pthread_mutex_lock(&table.lock);
    table_take(s->up->uuid);
    pthread_mutex_unlock(&table.lock);
    session_free(s);
}

/* ---- the job shared by every upload operation ---- */

enum upload_op { OP_START, OP_MONOLITHIC, OP_MOUNT, OP_PATCH, OP_PUT, OP_STATUS, OP_CANCEL };

struct upload_job {
    struct job super;
    enum upload_op op;
    char repo[BERTH_NAME_MAX + 1];
    char uuid[BERTH_UUID_LEN + 1];
    char digest[BERTH_DIGEST_MAX]; /* PUT / monolithic: expected digest; mount: the blob */
    char from[BERTH_NAME_MAX + 1]; /* mount source */
    int has_range;                 /* PATCH with Content-Range */
    uint64_t range_start, range_end;
    uint64_t size; /* result: session size, or blob size */
    int mounted;
    char detail[256];
};

static int append_chunk(void *arg, const void *chunk, size_t len)
{
    return upload_append(arg, chunk, len);
}

/* Appends the request body to session `s`, honoring Content-Range and the blob size limit. */
static int append_body(struct upload_job *j, struct session *s)
{
    struct upload *u = s->up;
    if (j->has_range) {
        if (j->range_start != u->size) {
            snprintf(j->detail, sizeof(j->detail), "chunk starts at %" PRIu64 " but the upload has %" PRIu64 " bytes",
                     j->range_start, u->size);
            return BERR_RANGE_INVALID;
        }
        if (j->range_end - j->range_start + 1 != j->super.body_len) {
            snprintf(j->detail, sizeof(j->detail), "Content-Range covers %" PRIu64 " bytes but the body has %zu",
                     j->range_end - j->range_start + 1, j->super.body_len);
            return BERR_RANGE_INVALID;
        }
    }
    if (u->size + j->super.body_len > srv->cfg.max_blob_size) {
        snprintf(j->detail, sizeof(j->detail), "blob would exceed the limit of %" PRIu64 " bytes",
                 srv->cfg.max_blob_size);
        return BERR_BLOB_TOO_LARGE;
    }
    return job_body_each(&j->super, append_chunk, u);
}

struct commit_args {
    const char *repo, *digest, *uuid;
    int64_t size;
};

static int commit_op(struct db *db, void *arg)
{
    struct commit_args *a = arg;
    int rc = meta_blob_commit(db, a->repo, a->digest, a->size);
    if (rc == 0 && a->uuid != NULL)
        rc = meta_upload_del(db, a->uuid);
    return rc;
}

static int start_op(struct db *db, void *arg)
{
    struct upload_job *j = arg;
    return meta_upload_add(db, j->uuid, j->repo);
}

static int cancel_op(struct db *db, void *arg)
{
    return meta_upload_del(db, arg);
}

static int mount_op(struct db *db, void *arg)
{
    struct upload_job *j = arg;
    int64_t size;
    int rc = meta_blob_mount(db, j->repo, j->from, j->digest, &size);
    if (rc == 0)
        j->size = (uint64_t)size;
    return rc;
}

/* Creates a new session (OP_START, or a mount that fell back). */
static int run_start(struct upload_job *j)
{
    struct session *s = calloc(1, sizeof(*s));
    int rc;
    if (s == NULL)
        return BERR_NOMEM;
    if ((rc = upload_create(&srv->bs, &s->up)) != 0) {
        free(s);
        return rc;
    }
    memcpy(j->uuid, s->up->uuid, sizeof(j->uuid));
    if ((rc = writer_run(start_op, j)) != 0) {
        upload_remove(&srv->bs, s->up->uuid);
        session_free(s);
        return rc;
    }
    snprintf(s->repo, sizeof(s->repo), "%s", j->repo);
    s->touched = time(NULL);
    pthread_mutex_lock(&table.lock);
    table_put(s);
    pthread_mutex_unlock(&table.lock);
    return 0;
}

/* Verifies and commits a finished upload: file first, row second. */
static int finish(struct upload_job *j, struct upload *u, int has_row)
{
    struct commit_args a = {.repo = j->repo, .digest = j->digest, .uuid = has_row ? u->uuid : NULL};
    int rc;
    a.size = (int64_t)u->size;
    j->size = u->size;
    if ((rc = upload_finish(&srv->bs, u, j->digest)) != 0) {
        if (rc == BERR_DIGEST_INVALID)
            snprintf(j->detail, sizeof(j->detail), "the uploaded content does not hash to %s", j->digest);
        if (has_row)
            writer_run(cancel_op, u->uuid);
        return rc;
    }
    return writer_run(commit_op, &a);
}

static int run_monolithic(struct upload_job *j)
{
    struct session s = {0};
    int rc;
    if ((rc = upload_create(&srv->bs, &s.up)) != 0)
        return rc;
    if ((rc = append_body(j, &s)) == 0)
        rc = finish(j, s.up, 0);
    else
        upload_remove(&srv->bs, s.up->uuid);
    upload_free(s.up);
    return rc;
}

static int run_on_session(struct upload_job *j)
{
    struct session *s;
    int rc = session_acquire(j->uuid, j->repo, &s);
    if (rc != 0)
        return rc;
    switch (j->op) {
    case OP_PATCH:
        rc = append_body(j, s);
        j->size = s->up->size;
        session_release(s);
        return rc;
    case OP_PUT:
        if ((rc = append_body(j, s)) != 0) {
            j->size = s->up->size;
            session_release(s);
            return rc;
        }
        rc = finish(j, s->up, 1);
        session_drop(s);
        return rc;
    case OP_STATUS:
        j->size = s->up->size;
        session_release(s);
        return 0;
    default: /* OP_CANCEL */
        upload_remove(&srv->bs, s->up->uuid);
        rc = writer_run(cancel_op, s->up->uuid);
        session_drop(s);
        return rc;
    }
}

static void upload_run(struct job *job)
{
    struct upload_job *j = (void *)job;
    switch (j->op) {
    case OP_START:
        job->rc = run_start(j);
        break;
    case OP_MONOLITHIC:
        job->rc = run_monolithic(j);
        break;
    case OP_MOUNT:
        if ((job->rc = writer_run(mount_op, j)) == 0)
            j->mounted = 1;
        else if (job->rc == BERR_BLOB_UNKNOWN) /* fall back to a session, revealing nothing */
            job->rc = run_start(j);
        break;
    default:
        job->rc = run_on_session(j);
    }
}

static void add_session_headers(h2o_req_t *req, struct upload_job *j)
{
    respond_header(req, "location", respond_printf(req, "/v2/%s/blobs/uploads/%s", j->repo, j->uuid), 0);
    respond_header(req, "docker-upload-uuid", j->uuid, 1);
    respond_header(req, "range", respond_printf(req, "0-%" PRIu64, j->size > 0 ? j->size - 1 : 0), 0);
}

static void upload_done(struct job *job, h2o_req_t *req)
{
    struct upload_job *j = (void *)job;
    if (req == NULL)
        return;
    if (job->rc != 0) {
        if (job->rc == BERR_RANGE_INVALID && j->op == OP_PATCH)
            add_session_headers(req, j);
        respond_error(req, job->rc, j->detail[0] ? j->detail : NULL);
        return;
    }
    switch (j->op) {
    case OP_START:
    case OP_PATCH:
        add_session_headers(req, j);
        respond_empty(req, 202);
        return;
    case OP_MOUNT:
        if (!j->mounted) {
            add_session_headers(req, j);
            respond_empty(req, 202);
            return;
        }
        /* mounted: answer like a finished upload */
        /* fall through */
    case OP_MONOLITHIC:
    case OP_PUT:
        respond_header(req, "location", respond_printf(req, "/v2/%s/blobs/%s", j->repo, j->digest), 0);
        respond_header(req, "docker-content-digest", j->digest, 1);
        respond_empty(req, 201);
        return;
    case OP_STATUS:
        add_session_headers(req, j);
        respond_empty(req, 204);
        return;
    case OP_CANCEL:
        respond_empty(req, 204);
        return;
    }
}

static struct upload_job *new_job(h2o_req_t *req, const struct route *rt, enum upload_op op)
{
    struct upload_job *j = job_new(req, sizeof(*j), upload_run, upload_done);
    if (j == NULL)
        return NULL;
    j->op = op;
    memcpy(j->repo, rt->name, sizeof(j->repo));
    if (rt->kind == ROUTE_UPLOAD)
        memcpy(j->uuid, rt->ref, sizeof(j->uuid));
    return j;
}

/* Reads ?digest= into j->digest.  Returns 1 if present, 0 if absent, or a BERR code. */
static int query_digest(h2o_req_t *req, const char *key, char out[BERTH_DIGEST_MAX])
{
    char buf[256];
    int rc = respond_query(req, key, buf, sizeof(buf));
    if (rc <= 0)
        return rc == 0 ? 0 : BERR_DIGEST_INVALID;
    return digest_parse(buf, strlen(buf), out) == 0 ? 1 : BERR_DIGEST_INVALID;
}

int uploads_post(h2o_req_t *req, const struct route *rt)
{
    struct upload_job *j;
    char digest[BERTH_DIGEST_MAX], mount[BERTH_DIGEST_MAX], from[BERTH_NAME_MAX + 1];
    int has_digest = query_digest(req, "digest", digest), has_mount = query_digest(req, "mount", mount), has_from;
    if (has_digest < 0)
        return has_digest;
    if (has_mount < 0)
        return has_mount;
    if (req->entity.len > srv->cfg.max_blob_size)
        return BERR_BLOB_TOO_LARGE;
    has_from = respond_query(req, "from", from, sizeof(from));
    if (has_from < 0 || (has_from == 1 && names_repo_valid(from, strlen(from)) != 0))
        return BERR_NAME_INVALID;
    if (has_mount == 1 && has_from == 1 && has_digest == 0 && !auth_can(from, AUTH_PULL)) {
        has_mount = 0; /* invariant 3: the caller cannot read `from` (auth_can logged it): a plain upload session */
    }
    if (has_mount == 1 && has_from == 1 && has_digest == 0) {
        if ((j = new_job(req, rt, OP_MOUNT)) == NULL)
            return BERR_NOMEM;
        memcpy(j->digest, mount, sizeof(mount));
        memcpy(j->from, from, sizeof(from));
    } else if (has_digest == 1) {
        if ((j = new_job(req, rt, OP_MONOLITHIC)) == NULL)
            return BERR_NOMEM;
        memcpy(j->digest, digest, sizeof(digest));
    } else {
        /* a session; a mount without `from` also lands here (never reveal blobs of unnamed repositories) */
        if ((j = new_job(req, rt, OP_START)) == NULL)
            return BERR_NOMEM;
    }
    job_submit(&j->super);
    return 0;
}

/* Parses "A-B" or "bytes A-B" / "bytes=A-B". */
static int parse_content_range(h2o_iovec_t h, uint64_t *a, uint64_t *b)
{
    char buf[96], *p = buf, *end;
    unsigned long long x, y;
    if (h.len == 0 || h.len >= sizeof(buf))
        return BERR_RANGE_INVALID;
    memcpy(buf, h.base, h.len);
    buf[h.len] = '\0';
    if (strncmp(p, "bytes", 5) == 0) {
        p += 5;
        if (*p == ' ' || *p == '=')
            p++;
    }
    if (*p < '0' || *p > '9')
        return BERR_RANGE_INVALID;
    errno = 0;
    x = strtoull(p, &end, 10);
    if (errno != 0 || *end != '-' || end[1] < '0' || end[1] > '9')
        return BERR_RANGE_INVALID;
    y = strtoull(end + 1, &end, 10);
    if (errno != 0 || (*end != '\0' && *end != '/') || y < x)
        return BERR_RANGE_INVALID;
    *a = x;
    *b = y;
    return 0;
}

int uploads_patch(h2o_req_t *req, const struct route *rt)
{
    h2o_iovec_t cr = respond_req_header(req, "content-range");
    uint64_t a = 0, b = 0;
    struct upload_job *j;
    if (cr.base != NULL) {
        int rc = parse_content_range(cr, &a, &b);
        if (rc != 0)
            return rc;
    }
    if ((j = new_job(req, rt, OP_PATCH)) == NULL)
        return BERR_NOMEM;
    j->has_range = cr.base != NULL;
    j->range_start = a;
    j->range_end = b;
    job_submit(&j->super);
    return 0;
}

int uploads_put(h2o_req_t *req, const struct route *rt)
{
    char digest[BERTH_DIGEST_MAX];
    int rc = query_digest(req, "digest", digest);
    struct upload_job *j;
    if (rc == 0)
        return BERR_DIGEST_INVALID;
    if (rc < 0)
        return rc;
    if ((j = new_job(req, rt, OP_PUT)) == NULL)
        return BERR_NOMEM;
    memcpy(j->digest, digest, sizeof(digest));
    job_submit(&j->super);
    return 0;
}

int uploads_status(h2o_req_t *req, const struct route *rt)
{
    struct upload_job *j = new_job(req, rt, OP_STATUS);
    if (j == NULL)
        return BERR_NOMEM;
    job_submit(&j->super);
    return 0;
}

int uploads_cancel(h2o_req_t *req, const struct route *rt)
{
    struct upload_job *j = new_job(req, rt, OP_CANCEL);
    if (j == NULL)
        return BERR_NOMEM;
    job_submit(&j->super);
    return 0;
}

/* ---- recovery and expiry ---- */

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
            return 1;
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

/* Removes session `uuid` for good: staging file, row, and live entry (unless busy). */
static void expire_one(const char *uuid)
{
    struct session *s;
    pthread_mutex_lock(&table.lock);
    s = table_find(uuid);
    if (s != NULL && s->busy) {
        pthread_mutex_unlock(&table.lock);
        return;
    }
    if (s != NULL)
        table_take(uuid);
    pthread_mutex_unlock(&table.lock);
    session_free(s);
    FAULT_POINT("upload.expire_before_unlink");
    upload_remove(&srv->bs, uuid);
    FAULT_POINT("upload.expire_after_unlink");
    writer_run(cancel_op, (void *)uuid);
}

/* Calls `fn(uuid, mtime)` for every staging file. */
static void scan_staging(void (*fn)(const char *uuid, time_t mtime, void *ctx), void *ctx)
{
    char dir[BLOBSTORE_PATH_MAX], path[BLOBSTORE_PATH_MAX];
    DIR *d;
    struct dirent *e;
    snprintf(dir, sizeof(dir), "%s/uploads", srv->bs.root);
    if ((d = opendir(dir)) == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (upload_uuid_valid(e->d_name, strlen(e->d_name)) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &st) == 0)
            fn(e->d_name, st.st_mtime, ctx);
    }
    closedir(d);
}

static void recover_file(const char *uuid, time_t mtime, void *ctx)
{
    (void)mtime;
    if (!has_uuid(ctx, uuid)) /* a monolithic upload or a session whose row never committed */
        upload_remove(&srv->bs, uuid);
}

void uploads_recover(void)
{
    struct uuid_list rows = {0};
    char dir[BLOBSTORE_PATH_MAX], path[BLOBSTORE_PATH_MAX];
    struct db *db = server_db();
    DIR *d;
    struct dirent *e;
    if (db == NULL || meta_uploads_each(db, collect_uuid, &rows) != 0) {
        free(rows.v);
        return;
    }
    for (size_t i = 0; i < rows.n; i++) {
        struct stat st;
        blobstore_upload_path(&srv->bs, rows.v[i], path, sizeof(path));
        if (stat(path, &st) != 0)
            writer_run(cancel_op, rows.v[i]); /* a row without a file is dropped */
    }
    scan_staging(recover_file, &rows);
    free(rows.v);
    /* h2o's spill files are unlinked while open; anything left in tmp/ is from a crash */
    blobstore_tmp_dir(&srv->bs, dir, sizeof(dir));
    if ((d = opendir(dir)) != NULL) {
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.') {
                snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                unlink(path);
            }
        closedir(d);
    }
}

static void expire_file(const char *uuid, time_t mtime, void *ctx)
{
    time_t cutoff = *(time_t *)ctx;
    if (mtime < cutoff) {
        log_info("upload %s idle since %lld: removed", uuid, (long long)mtime);
        expire_one(uuid);
    }
}

void uploads_expire(void)
{
    time_t cutoff = time(NULL) - srv->cfg.upload_timeout;
    scan_staging(expire_file, &cutoff);
}
