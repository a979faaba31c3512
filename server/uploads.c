/*
 * uploads.c - the blob upload API (distribution-spec "Pushing blobs"): POST to start (monolithic with ?digest=,
 * or a cross-repository mount with ?mount=&from=), PATCH to append (streamed, or chunked with Content-Range), PUT
 * ?digest= to finish, GET for status, DELETE to cancel.
 *
 * Live sessions are kept in the server's session table (sessions.h: storage/, with recovery at start and expiry
 * of idle sessions) so that the running hash survives between requests; a session missing from the table (after
 * a restart) is reopened from its staging file.  One request works on a session at a time: a second concurrent
 * request on the same session is refused.  File work runs on workers, row writes on the writer (job_write).  With
 * blobs in S3 a session's state is a row (s3upload.h): read on the worker's own connection, saved at the end of
 * each PATCH by the writer (job_write, the answer follows the commit), never by a worker waiting for it.
 */
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
#include "ecr.h"
#include "err.h"
#include "gc.h"
#include "handlers.h"
#include "module.h"
#include "httpparse.h"
#include "log.h"
#include "meta.h"
#include "names.h"
#include "quota.h"
#include "sessions.h"
#include "respond.h"
#include "upload.h"
#include "writer.h"

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
    int has_row;             /* finish: the session has a row to delete with the commit */
    int fail_rc;             /* the error to answer after a clean-up write (the write's own result is job rc) */
    struct session *pending; /* OP_START: the new session, in the table and busy until its row commits */
    struct session *saving;  /* S3: the session whose state the writer is saving, busy until that commits */
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
        /* a range covers end - start + 1 >= 1 bytes; compared without the + 1, which wraps at 2^64 - 1 */
        if (j->super.body_len == 0 || j->range_end - j->range_start != j->super.body_len - 1) {
            snprintf(j->detail, sizeof(j->detail),
                     "Content-Range %" PRIu64 "-%" PRIu64 " does not match a body of %zu bytes", j->range_start,
                     j->range_end, j->super.body_len);
            return BERR_RANGE_INVALID;
        }
    }
    if (u->size + j->super.body_len > j->super.srv->cfg.max_blob_size) {
        snprintf(j->detail, sizeof(j->detail), "blob would exceed the limit of %" PRIu64 " bytes",
                 j->super.srv->cfg.max_blob_size);
        return BERR_BLOB_TOO_LARGE;
    }
    return job_body_each(&j->super, append_chunk, u);
}

static int commit_op(struct db *db, void *arg)
{
    struct upload_job *j = arg;
    /* GC may have removed the file since upload_finish found it (gc.h): checked under the write lock */
    int rc = gc_blob_commit_check(db, &j->super.srv->bs, j->digest);
    if (rc == 0)
        rc = quota_check(db, j->repo, j->digest, (int64_t)j->size, j->detail, sizeof(j->detail));
    if (rc == 0)
        rc = meta_blob_commit(db, j->repo, j->digest, (int64_t)j->size);
    if (rc == 0 && j->has_row)
        rc = meta_upload_del(db, j->uuid);
    if (rc == 0)
        rc = upload_forget(&j->super.srv->bs, db, j->uuid); /* S3: the session's state row */
    return rc;
}

static int start_op(struct db *db, void *arg)
{
    struct upload_job *j = arg;
    return meta_upload_add(db, j->uuid, j->repo);
}

static int mount_op(struct db *db, void *arg)
{
    struct upload_job *j = arg;
    int64_t size;
    int rc = meta_blob_stat(db, j->from, j->digest, &size);
    if (rc == 0)
        rc = quota_check(db, j->repo, j->digest, size, j->detail, sizeof(j->detail));
    if (rc == 0)
        rc = meta_blob_mount(db, j->repo, j->from, j->digest, &size);
    if (rc == 0)
        j->size = (uint64_t)size;
    return rc;
}

/* Creates a new session (OP_START, or a mount that fell back) and hands its row to the writer; the session waits
 * in the table, busy (so that nothing else touches it), until upload_done() sees the row committed. */
static int run_start(struct upload_job *j)
{
    struct session *s;
    int rc = sessions_create(j->super.srv->sessions, j->repo, &s);
    if (rc != 0)
        return rc;
    memcpy(j->uuid, s->uuid, sizeof(j->uuid));
    j->pending = s;
    return job_write(&j->super, start_op, j);
}

/* On the loop, once the new session's row committed or failed. */
static void start_settle(struct upload_job *j, int rc)
{
    if (rc == 0) {
        sessions_release(j->super.srv->sessions, j->pending);
        return;
    }
    upload_remove(&j->super.srv->bs, j->pending->uuid);
    sessions_drop(j->super.srv->sessions, j->pending);
}

static int cancel_row_op(struct db *db, void *arg)
{
    struct upload_job *j = arg;
    int rc = meta_upload_del(db, j->uuid);
    return rc == 0 ? upload_forget(&j->super.srv->bs, db, j->uuid) : rc;
}

static int save_op(struct db *db, void *arg)
{
    return upload_save(db, ((struct upload_job *)arg)->saving->up);
}

/* After a PATCH's (or a PUT's failed) appends, `rc` their result: on S3 a part of what is buffered goes out and the
 * state - every byte that arrived, even when the body broke off - is handed to the writer (JOB_WRITING); the
 * session stays busy until upload_done() sees the save committed.  Otherwise the session is released and `rc`
 * returned. */
static int settle_appends(struct upload_job *j, struct session *s, int rc)
{
    struct sessions *t = j->super.srv->sessions;
    int frc;
    if (upload_dirty(s->up)) {
        if ((frc = upload_flush(s->up)) == 0) {
            j->size = s->up->size;
            j->fail_rc = rc; /* answered once the state is saved */
            j->saving = s;
            return job_write(&j->super, save_op, j);
        }
        rc = rc != 0 ? rc : frc;
    }
    j->size = s->up->size;
    sessions_release(t, s);
    return rc;
}

/* Verifies and commits a finished upload: file first, row second (handed to the writer: returns JOB_WRITING, or
 * an error before any write). */
static int finish(struct upload_job *j, struct upload *u, int has_row)
{
    struct db *db = server_db(j->super.srv);
    int rc;
    j->size = u->size;
    j->has_row = has_row;
    /* quotas: refuse early on this thread's read connection (the file is not moved into blobs/); commit_op
     * checks again in the write transaction, which decides */
    if (db != NULL && (rc = quota_check(db, j->repo, j->digest, (int64_t)u->size, j->detail, sizeof(j->detail))) != 0) {
        upload_remove(&j->super.srv->bs, u->uuid);
        if (!has_row)
            return rc;
        j->fail_rc = rc; /* the session is over: drop its row too */
        return job_write(&j->super, cancel_row_op, j);
    }
    if ((rc = upload_finish(&j->super.srv->bs, u, j->digest)) != 0) {
        if (rc == BERR_DIGEST_INVALID)
            snprintf(j->detail, sizeof(j->detail), "the uploaded content does not hash to %s", j->digest);
        if (!has_row && j->super.srv->bs.s3 == NULL)
            return rc;
        j->fail_rc = rc; /* the session is gone (upload_finish removed its file): drop its rows too (S3: its state) */
        return job_write(&j->super, cancel_row_op, j);
    }
    return job_write(&j->super, commit_op, j);
}

static int run_monolithic(struct upload_job *j)
{
    struct session s = {0}; /* never in the table: nobody else can reach it */
    int rc;
    if ((rc = upload_create(&j->super.srv->bs, &s.up)) != 0)
        return rc;
    memcpy(j->uuid, s.up->uuid, sizeof(j->uuid)); /* S3: commit_op deletes its state row, if it got one */
    if ((rc = append_body(j, &s)) == 0)
        rc = finish(j, s.up, 0);
    else
        upload_remove(&j->super.srv->bs, s.up->uuid);
    upload_free(s.up);
    return rc;
}

static int run_on_session(struct upload_job *j)
{
    struct session *s;
    struct sessions *t = j->super.srv->sessions;
    int rc = sessions_acquire(t, server_db(j->super.srv), j->uuid, j->repo, &s);
    if (rc != 0)
        return rc;
    switch (j->op) {
    case OP_PATCH:
        return settle_appends(j, s, append_body(j, s)); /* S3: the state any node continues from */
    case OP_PUT:
        if ((rc = append_body(j, s)) != 0)
            return settle_appends(j, s, rc);
        rc = finish(j, s->up, 1);
        sessions_drop(t, s);
        return rc;
    case OP_STATUS:
        j->size = s->up->size;
        sessions_release(t, s);
        return 0;
    default: /* OP_CANCEL */
        upload_remove(&j->super.srv->bs, s->up->uuid);
        sessions_drop(t, s);
        return job_write(&j->super, cancel_row_op, j);
    }
}

/* Runs the operation; a part that is a write ends with job_write(), whose completion posts the job. */
static int upload_run_op(struct upload_job *j)
{
    int rc;
    switch (j->op) {
    case OP_START:
        return run_start(j);
    case OP_MONOLITHIC:
        return run_monolithic(j);
    case OP_MOUNT: /* waits for the writer: mounts are rare, and the fallback needs this worker */
        if ((rc = writer_run(mount_op, j)) == 0)
            j->mounted = 1;
        else if (rc == BERR_BLOB_UNKNOWN) /* fall back to a session, revealing nothing */
            rc = run_start(j);
        return rc;
    default:
        return run_on_session(j);
    }
}

static void upload_run(struct job *job)
{
    int rc = upload_run_op((struct upload_job *)job);
    if (rc != JOB_WRITING) /* else the job belongs to the writer now */
        job->rc = rc;
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
    int rc = j->fail_rc != 0 ? j->fail_rc : job->rc;
    if (j->pending != NULL)
        start_settle(j, job->rc);
    if (j->saving != NULL) { /* S3: the state's save committed (or failed): the session is free again */
        upload_saved(j->saving->up, job->rc);
        sessions_release(j->super.srv->sessions, j->saving);
    }
    if (req == NULL)
        return;
    if (rc != 0) {
        if (rc == BERR_RANGE_INVALID && j->op == OP_PATCH)
            add_session_headers(req, j);
        respond_error(req, rc, j->detail[0] ? j->detail : NULL);
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

static struct upload_job *new_job(struct call *call, enum upload_op op)
{
    const struct route *rt = &call->rt;
    struct upload_job *j = job_new(call, sizeof(*j), upload_run, upload_done);
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

int uploads_post(struct call *call, h2o_req_t *req, const struct route *rt)
{
    struct upload_job *j;
    char digest[BERTH_DIGEST_MAX], mount[BERTH_DIGEST_MAX], from[BERTH_NAME_MAX + 1];
    int has_digest = query_digest(req, "digest", digest), has_mount = query_digest(req, "mount", mount), has_from;
    (void)rt;
    if (has_digest < 0)
        return has_digest;
    if (has_mount < 0)
        return has_mount;
    if (!ecr_push_may_create(call->srv, rt->name)) { /* create_on_push off (ecr.h) */
        respond_error(req, BERR_NAME_UNKNOWN,
                      respond_printf(req,
                                     "repository %s does not exist; create it first (aws ecr create-repository "
                                     "or berth repo create)",
                                     rt->name));
        return 0;
    }
    if (req->entity.len > call->srv->cfg.max_blob_size)
        return BERR_BLOB_TOO_LARGE;
    has_from = respond_query(req, "from", from, sizeof(from));
    if (has_from < 0 || (has_from == 1 && names_repo_valid(from, strlen(from)) != 0))
        return BERR_NAME_INVALID;
    if (has_mount == 1 && has_from == 1 && has_digest == 0 && !auth_can(call, from, AUTH_PULL)) {
        has_mount = 0; /* invariant 3: the caller cannot read `from` (auth_can logged it): a plain upload session */
    }
    if (has_mount == 1 && has_from == 1 && has_digest == 0) {
        if ((j = new_job(call, OP_MOUNT)) == NULL)
            return BERR_NOMEM;
        memcpy(j->digest, mount, sizeof(mount));
        memcpy(j->from, from, sizeof(from));
    } else if (has_digest == 1) {
        if ((j = new_job(call, OP_MONOLITHIC)) == NULL)
            return BERR_NOMEM;
        memcpy(j->digest, digest, sizeof(digest));
    } else {
        /* a session; a mount without `from` also lands here (never reveal blobs of unnamed repositories) */
        if ((j = new_job(call, OP_START)) == NULL)
            return BERR_NOMEM;
    }
    job_submit(&j->super);
    return 0;
}

int uploads_patch(struct call *call, h2o_req_t *req, const struct route *rt)
{
    h2o_iovec_t cr = respond_req_header(req, "content-range");
    uint64_t a = 0, b = 0;
    struct upload_job *j;
    (void)rt;
    if (cr.base != NULL) {
        int rc = httpparse_content_range(cr.base, cr.len, &a, &b);
        if (rc != 0)
            return rc;
    }
    if ((j = new_job(call, OP_PATCH)) == NULL)
        return BERR_NOMEM;
    j->has_range = cr.base != NULL;
    j->range_start = a;
    j->range_end = b;
    job_submit(&j->super);
    return 0;
}

int uploads_put(struct call *call, h2o_req_t *req, const struct route *rt)
{
    char digest[BERTH_DIGEST_MAX];
    int rc = query_digest(req, "digest", digest);
    struct upload_job *j;
    (void)rt;
    if (rc == 0)
        return BERR_DIGEST_INVALID;
    if (rc < 0)
        return rc;
    if ((j = new_job(call, OP_PUT)) == NULL)
        return BERR_NOMEM;
    memcpy(j->digest, digest, sizeof(digest));
    job_submit(&j->super);
    return 0;
}

int uploads_status(struct call *call, h2o_req_t *req, const struct route *rt)
{
    struct upload_job *j = new_job(call, OP_STATUS);
    (void)req;
    (void)rt;
    if (j == NULL)
        return BERR_NOMEM;
    job_submit(&j->super);
    return 0;
}

int uploads_cancel(struct call *call, h2o_req_t *req, const struct route *rt)
{
    struct upload_job *j = new_job(call, OP_CANCEL);
    (void)req;
    (void)rt;
    if (j == NULL)
        return BERR_NOMEM;
    job_submit(&j->super);
    return 0;
}

/* ---- the module: the session table, recovery at start, expiry on the janitor's tick ---- */

static int uploads_init(struct server *srv)
{
    int rc = sessions_new(&srv->bs, &srv->sessions);
    if (rc == 0)
        rc = sessions_recover(srv->sessions, server_db(srv));
    return rc == 0 ? 0 : -1;
}

/* Every BERTH_JANITOR_INTERVAL seconds: removes sessions idle past the upload timeout. */
static void uploads_tick(struct server *srv)
{
    time_t now = time(NULL);
    /* the first sweep runs at the first tick: sessions that went stale while berth was down */
    if (srv->uploads_expired_at != 0 && now - srv->uploads_expired_at < BERTH_JANITOR_INTERVAL)
        return;
    srv->uploads_expired_at = now;
    if (sessions_expire(srv->sessions, now - srv->cfg.upload_timeout) < 0)
        log_warn("upload expiry: cannot read the uploads directory");
}

static void uploads_stop(struct server *srv)
{
    sessions_free(srv->sessions);
    srv->sessions = NULL;
}

const struct module uploads_module = {
    .name = "uploads", .init = uploads_init, .tick = uploads_tick, .stop = uploads_stop};
