/*
 * manifests.c - manifest GET/HEAD (content negotiation by Accept), PUT (validated, references checked, one
 * transaction with the tag move) and DELETE (by digest: the manifest and its tags; by tag: only the tag).
 * Pull times are recorded in memory and written in batches (manifests_flush_pulls), so pulls cost no writes.
 */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "digest.h"
#include "ecr.h"
#include "err.h"
#include "events.h"
#include "evsource.h"
#include "handlers.h"
#include "module.h"
#include "log.h"
#include "manifest.h"
#include "meta.h"
#include "negotiate.h"
#include "respond.h"
#include "writer.h"

#define PULLS_SLOTS 8192 /* distinct manifests whose pull time is remembered between flushes */

static struct {
    pthread_mutex_t lock;
    int64_t ids[PULLS_SLOTS]; /* open addressing; 0 = empty */
    size_t n;
} pulls = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void record_pull(int64_t id)
{
    size_t i = (size_t)((uint64_t)id * 0x9E3779B97F4A7C15ull >> 51) % PULLS_SLOTS;
    pthread_mutex_lock(&pulls.lock);
    if (pulls.n < PULLS_SLOTS / 2) { /* past half full, drop: pull times are advisory */
        while (pulls.ids[i] != 0 && pulls.ids[i] != id)
            i = (i + 1) % PULLS_SLOTS;
        if (pulls.ids[i] == 0) {
            pulls.ids[i] = id;
            pulls.n++;
        }
    }
    pthread_mutex_unlock(&pulls.lock);
}

void manifests_record_pull(int64_t id)
{
    record_pull(id);
}

struct pull_batch {
    int64_t *ids;
    size_t n;
    long long when;
};

static int pulls_op(struct db *db, void *arg)
{
    struct pull_batch *b = arg;
    for (size_t i = 0; i < b->n; i++) {
        int rc = meta_manifest_pulled(db, b->ids[i], b->when);
        if (rc != 0)
            return rc;
    }
    return events_pull_flush(db);
}

static void manifests_flush_pulls(struct server *srv)
{
    (void)srv;
    struct pull_batch b = {.ids = malloc(sizeof(pulls.ids)), .when = db_now()};
    if (b.ids == NULL)
        return;
    pthread_mutex_lock(&pulls.lock);
    for (size_t i = 0; i < PULLS_SLOTS; i++)
        if (pulls.ids[i] != 0) {
            b.ids[b.n++] = pulls.ids[i];
            pulls.ids[i] = 0;
        }
    pulls.n = 0;
    pthread_mutex_unlock(&pulls.lock);
    if (b.n > 0 && writer_run(pulls_op, &b) != 0)
        log_warn("could not record %zu pull times", b.n);
    free(b.ids);
}

/* ---- GET / HEAD ---- */

/* Does an Accept header of the request list `mt` exactly (or a wildcard: any type, application/any, when
 * `wildcards`)?
 * *seen is set when the request has any Accept header.  Every Accept line is read (docker sends six). */
static int accepts(h2o_req_t *req, const char *mt, int wildcards, int *seen)
{
    for (ssize_t c = -1; (c = h2o_find_header(&req->headers, H2O_TOKEN_ACCEPT, c)) != -1;) {
        *seen = 1;
        if (negotiate_accept_lists(req->headers.entries[c].value.base, req->headers.entries[c].value.len, mt,
                                   wildcards))
            return 1;
    }
    return 0;
}

static int is_index_type(const char *mt)
{
    return strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0;
}

/*
 * Content negotiation.  Berth stores one representation of each manifest and serves it as stored, with one
 * exception: a client whose Accept headers name image-manifest types but no index type cannot read an index, so it
 * gets the index's linux/amd64 entry (else its first entry) instead, as Distribution does.  A client that names
 * neither type still gets the stored manifest (a 404 for a manifest that exists misleads more than it helps, and
 * breaks `docker manifest inspect` of OCI indexes with the 20.10 CLI).
 */
static int needs_child(h2o_req_t *req, const char *stored_type)
{
    int seen = 0;
    if (!is_index_type(stored_type) || accepts(req, stored_type, 1, &seen) || !seen)
        return 0;
    if (accepts(req, MT_OCI_INDEX, 0, &seen) || accepts(req, MT_DOCKER_LIST, 0, &seen))
        return 0;
    return accepts(req, MT_OCI_MANIFEST, 0, &seen) || accepts(req, MT_DOCKER_MANIFEST, 0, &seen);
}

/* The digest of the linux/amd64 entry of index `body`, else of its first entry.  Returns 0 or -1. */
static int pick_child(const void *body, size_t len, char child[BERTH_DIGEST_MAX])
{
    json_t *root = json_loadb(body, len, 0, NULL), *d;
    size_t i;
    int found = -1;
    json_array_foreach(json_object_get(root, "manifests"), i, d)
    {
        json_t *plat = json_object_get(d, "platform");
        const char *dg = json_string_value(json_object_get(d, "digest"));
        const char *os = json_string_value(json_object_get(plat, "os"));
        const char *arch = json_string_value(json_object_get(plat, "architecture"));
        int amd64 = os != NULL && arch != NULL && strcmp(os, "linux") == 0 && strcmp(arch, "amd64") == 0;
        if (dg == NULL || (found == 0 && !amd64))
            continue;
        if (digest_parse(dg, strlen(dg), child) == 0) {
            found = 0;
            if (amd64)
                break;
        }
    }
    json_decref(root);
    return found;
}

static void *pool_alloc(void *ctx, size_t n)
{
    return h2o_mem_alloc_pool(&((h2o_req_t *)ctx)->pool, n);
}

int manifests_get(struct call *call, h2o_req_t *req, const struct route *rt)
{
    struct meta_manifest m;
    struct db *db = server_db(call->srv);
    char child[BERTH_DIGEST_MAX];
    int head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")), rc;
    if (db == NULL)
        return BERR_DB;
    rc = meta_manifest_get(db, rt->name, rt->ref, rt->ref_is_digest, &m, head ? NULL : pool_alloc, req);
    if (rc != 0)
        return rc;
    if (needs_child(req, m.media_type)) {
        if (head && (rc = meta_manifest_get(db, rt->name, m.digest, 1, &m, pool_alloc, req)) != 0)
            return rc;
        if (pick_child(m.body, m.size, child) != 0 ||
            meta_manifest_get(db, rt->name, child, 1, &m, head ? NULL : pool_alloc, req) != 0) {
            respond_error(req, BERR_MANIFEST_UNKNOWN,
                          "the client accepts no index type and no platform manifest of "
                          "the index is in the repository");
            return 0;
        }
    }
    if (!head) {
        struct event_source from;
        record_pull(m.id);
        evsource_fill(call, &from);
        events_pull_note(&(struct event){.action = EVENT_PULL,
                                         .repository = rt->name,
                                         .digest = m.digest,
                                         .media_type = m.media_type,
                                         .size = (int64_t)m.size,
                                         .tag = rt->ref_is_digest ? NULL : rt->ref,
                                         .from = &from});
    }
    respond_header(req, "docker-content-digest", m.digest, 1);
    respond_header(req, "etag", respond_printf(req, "\"%s\"", m.digest), 0);
    respond_body(req, 200, respond_printf(req, "%s", m.media_type), m.body, m.size, 1);
    return 0;
}

/* ---- PUT ---- */

struct put_job {
    struct job super;
    char repo[BERTH_NAME_MAX + 1];
    char ref[BERTH_DIGEST_MAX > BERTH_TAG_MAX + 1 ? BERTH_DIGEST_MAX : BERTH_TAG_MAX + 1];
    int ref_is_digest;
    char *body;
    size_t len;
    char ct[MT_MEDIA_TYPE_MAX + 1];
    char digest[BERTH_DIGEST_MAX];
    struct manifest_info mi;
    char detail[512];
    struct event_source from;    /* who pushed (events.h) */
    char prev[BERTH_DIGEST_MAX]; /* what the tag pointed at before */
};

static int put_op(struct db *db, void *arg)
{
    struct put_job *j = arg;
    const char *tag = j->ref_is_digest ? NULL : j->ref;
    int rc = ecr_manifest_put_check(db, j->repo, tag, j->digest, j->detail,
                                    sizeof(j->detail)); /* ECR tag immutability (ecr.h) */
    if (rc == 0 && tag != NULL)
        rc = events_tag_target(db, j->repo, tag, j->prev);
    if (rc == 0)
        rc = meta_manifest_put(db, j->repo, j->digest, &j->mi, j->body, j->len, tag, j->detail, sizeof(j->detail));
    if (rc == 0)
        rc = events_manifest_pushed(db, j->repo, j->digest, j->mi.media_type, (int64_t)j->len, tag, j->prev, &j->from);
    return rc;
}

/* Hashes and validates the manifest, then hands the write to the writer, which answers on the loop: returns
 * JOB_WRITING (the job is the writer's now: do not touch it), or a validation error (job->rc set, no write). */
static int put_check_and_write(struct job *job)
{
    struct put_job *j = (void *)job;
    digest_buf(j->body, j->len, j->digest);
    if (j->ref_is_digest && strcmp(j->digest, j->ref) != 0) {
        snprintf(j->detail, sizeof(j->detail), "the manifest hashes to %s, not %s", j->digest, j->ref);
        return job->rc = BERR_DIGEST_INVALID;
    }
    job->rc = manifest_parse(j->body, j->len, j->ct, strlen(j->ct), &j->mi, j->detail, sizeof(j->detail));
    return job->rc != 0 ? job->rc : job_write(job, put_op, j);
}

/* On a worker (large manifests): when no write was handed off, the worker posts the job. */
static void put_run(struct job *job)
{
    (void)put_check_and_write(job);
}

static void put_done(struct job *job, h2o_req_t *req)
{
    struct put_job *j = (void *)job;
    if (req != NULL) {
        if (job->rc != 0) {
            if (!ecr_respond_immutable(req, job->rc, j->detail)) /* ECR's own message for docker (ecr.h) */
                respond_error(req, job->rc, j->detail[0] ? j->detail : NULL);
        } else {
            respond_header(req, "location", respond_printf(req, "/v2/%s/manifests/%s", j->repo, j->digest), 0);
            respond_header(req, "docker-content-digest", j->digest, 1);
            if (j->mi.subject[0])
                respond_header(req, "oci-subject", j->mi.subject, 1);
            respond_empty(req, 201);
        }
    }
    manifest_info_free(&j->mi);
    free(j->body);
}

int manifests_put(struct call *call, h2o_req_t *req, const struct route *rt)
{
    h2o_iovec_t ct = respond_req_header(req, "content-type");
    struct put_job *j;
    char *body;
    if (req->entity.base == NULL || req->entity.len == 0)
        return BERR_MANIFEST_INVALID;
    if (req->entity.len > call->srv->cfg.max_manifest_size) {
        respond_error(req, BERR_MANIFEST_TOO_LARGE,
                      respond_printf(req, "the limit is %zu bytes", call->srv->cfg.max_manifest_size));
        return 0;
    }
    if (ct.len > MT_MEDIA_TYPE_MAX)
        return BERR_MANIFEST_INVALID;
    if ((body = malloc(req->entity.len)) == NULL)
        return BERR_NOMEM;
    if ((j = job_new(call, sizeof(*j), put_run, put_done)) == NULL) {
        free(body);
        return BERR_NOMEM;
    }
    j->body = body;
    memcpy(j->body, req->entity.base, req->entity.len);
    j->len = req->entity.len;
    memcpy(j->ct, ct.base, ct.len);
    memcpy(j->repo, rt->name, sizeof(j->repo));
    memcpy(j->ref, rt->ref, sizeof(j->ref));
    j->ref_is_digest = rt->ref_is_digest;
    evsource_fill(call, &j->from);
    if (j->len > BERTH_INLINE_MANIFEST_MAX) { /* hashing and parsing it would hold the loop: a worker does it */
        job_submit(&j->super);
        return 0;
    }
    /* small (nearly every manifest): microseconds of hashing and parsing here, then loop -> writer -> loop */
    if (put_check_and_write(&j->super) != JOB_WRITING)
        job_finish(&j->super);
    return 0;
}

/* ---- DELETE ---- */

static int delete_op(struct db *db, const struct route *rt, const struct event_source *from)
{
    char digest[BERTH_DIGEST_MAX] = "";
    int rc = rt->ref_is_digest ? 0 : events_tag_target(db, rt->name, rt->ref, digest);
    if (rc == 0)
        rc = rt->ref_is_digest ? meta_manifest_delete(db, rt->name, rt->ref) : meta_tag_delete(db, rt->name, rt->ref);
    if (rc == 0)
        rc = events_emit(db, &(struct event){.action = EVENT_DELETE,
                                             .repository = rt->name,
                                             .digest = rt->ref_is_digest ? rt->ref : digest,
                                             .tag = rt->ref_is_digest ? NULL : rt->ref,
                                             .size = -1,
                                             .from = from});
    return rc;
}

int manifests_delete(struct call *call, h2o_req_t *req, const struct route *rt)
{
    (void)req;
    (void)rt;
    return evsource_route_write(call, delete_op, 202);
}

const struct module manifests_module = {.name = "manifests", .tick = manifests_flush_pulls};
