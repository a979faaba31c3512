/*
 * ecr.c - the ECR API's protocol layer: dispatch of `POST /` with an X-Amz-Target (on the loop, or on a worker for
 * blocking operations and large bodies), queued writes answered after their commit, `__type` error bodies, and
 * the `docker login -u AWS` hook (see ecr.h and ecr_internal.h).
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>
#include "db.h"
#include "ecr.h"
#include "ecrargs.h"
#include "ecr_internal.h"
#include "err.h"
#include "log.h"
#include "module.h"
#include "respond.h"
#include "sigv4.h"
#include "writer.h"

#define OOM_BODY "{\"__type\":\"ServerException\",\"message\":\"out of memory\"}"
#define ECR_IMMUTABLE_PREFIX "The image tag '"

_Static_assert(ECR_KEY_ID_MAX >= ACCESSKEY_ID_LEN + 1, "ECR_KEY_ID_MAX too small for an access key id");

const char ecr_pending_marker = 0;
const char ecr_raw_marker = 0;

/* ---- errors, writes, memory ---- */

json_t *ecr_fail(struct ecr_ctx *c, const char *type, const char *fmt, ...)
{
    va_list ap;
    c->type = type;
    c->status = strcmp(type, "ServerException") == 0 ? 500 : 400;
    if (c->status == 500 && db_unreachable()) {
        /* PostgreSQL is down: 503, which AWS SDKs retry with backoff, as the OCI API's UNAVAILABLE; ServerException
         * stays the type (ECR's model has no other server-side error) */
        c->status = 503;
        snprintf(c->message, sizeof(c->message), "the metadata database is unavailable; retry later");
        return NULL;
    }
    va_start(ap, fmt);
    vsnprintf(c->message, sizeof(c->message), fmt, ap);
    va_end(ap);
    return NULL;
}

json_t *ecr_write(struct ecr_ctx *c, writer_fn fn, void *arg, ecr_finish_fn finish)
{
    c->wfn = fn;
    c->warg = arg;
    c->wfinish = finish;
    return ECR_PENDING;
}

json_t *ecr_raw(struct ecr_ctx *c, char *text, size_t len)
{
    free(c->raw);
    if ((c->raw = text) == NULL)
        return ecr_fail(c, "ServerException", "out of memory");
    c->raw_len = len;
    return ECR_RAW;
}

void ecr_jbuf_str(struct strbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;
    strbuf_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[6] = {'\\', 0};
        size_t elen = 2;
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        strbuf_add(b, s + run, i - run);
        run = i + 1;
        esc[1] = ch == '"'    ? '"'
                 : ch == '\\' ? '\\'
                 : ch == '\n' ? 'n'
                 : ch == '\r' ? 'r'
                 : ch == '\t' ? 't'
                 : ch == '\b' ? 'b'
                 : ch == '\f' ? 'f'
                              : 'u';
        if (esc[1] == 'u') {
            memcpy(esc + 2, "00", 2);
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 15];
            elen = 6;
        }
        strbuf_add(b, esc, elen);
    }
    strbuf_add(b, s + run, n - run);
    strbuf_add(b, "\"", 1);
}

void ecr_jbuf_json(struct strbuf *b, const json_t *v)
{
    char *t = v != NULL ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (v != NULL && t == NULL)
        b->failed = 1;
    if (t != NULL)
        strbuf_add(b, t, strlen(t));
    free(t);
}

json_t *ecr_jbuf_finish(struct ecr_ctx *c, struct strbuf *b)
{
    if (b->failed || b->p == NULL) {
        free(b->p);
        return ecr_fail(c, "ServerException", "out of memory");
    }
    return ecr_raw(c, b->p, b->len);
}

/* Frees an answer object (not the markers). */
static void out_free(json_t *out)
{
    if (out != ECR_PENDING && out != ECR_RAW)
        json_decref(out);
}

struct ecr_mem {
    struct ecr_mem *next;
    max_align_t data[]; /* the caller's bytes */
};

void *ecr_alloc(struct ecr_ctx *c, size_t size)
{
    struct ecr_mem *m = calloc(1, sizeof(*m) + size);
    if (m == NULL)
        return NULL;
    m->next = c->mem;
    c->mem = m;
    return m->data;
}

static void ctx_free(struct ecr_ctx *c)
{
    if (c == NULL)
        return;
    json_decref(c->in);
    while (c->mem != NULL) {
        struct ecr_mem *m = c->mem;
        c->mem = m->next;
        free(m);
    }
    sodium_memzero(c->secret, sizeof(c->secret));
    authdb_grants_free(&c->grants);
    free(c->raw);
    free(c);
}

/* ---- the request ---- */

/* The request as a worker sees it: what the signature check needs, copied off the loop into one arena. */
struct ecr_job {
    struct job super;
    struct ecr_ctx *c;
    char method[16];
    char *path, *query; /* NUL-terminated copies */
    size_t path_len, query_len;
    struct sigv4_header *hdrs;
    size_t nhdrs;
    char *arena;  /* malloc'd: path, query, header names and values */
    json_t *out;  /* the answer built on the worker */
    int captured; /* capture() succeeded */
};

/* Everything the signature check needs, copied from the loop's request into one arena. */
static int capture(h2o_req_t *req, struct ecr_job *j)
{
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len, need = req->path.len + 2;
    size_t n = req->headers.size + 1;
    char *p;
    for (size_t i = 0; i < req->headers.size; i++)
        need += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 2;
    need += req->authority.len + 5;
    if ((j->arena = malloc(need)) == NULL || (j->hdrs = calloc(n, sizeof(*j->hdrs))) == NULL)
        return BERR_NOMEM;
    p = j->arena;
    j->path = p;
    memcpy(p, req->path.base, plen);
    p[plen] = '\0';
    j->path_len = plen;
    p += plen + 1;
    j->query = p;
    j->query_len = plen < req->path.len ? req->path.len - plen - 1 : 0;
    memcpy(p, req->path.base + plen + (j->query_len ? 1 : 0), j->query_len);
    p[j->query_len] = '\0';
    p += j->query_len + 1;
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *h = &req->headers.entries[i];
        if (h2o_memis(h->name->base, h->name->len, "host", 4))
            continue; /* HTTP/1 may keep it; the authority below is the one h2o routed on */
        memcpy(p, h->name->base, h->name->len);
        j->hdrs[j->nhdrs] = (struct sigv4_header){p, h->name->len, p + h->name->len + 1, h->value.len};
        p += h->name->len + 1;
        memcpy(p, h->value.base, h->value.len);
        p += h->value.len + 1;
        j->nhdrs++;
    }
    memcpy(p, req->authority.base, req->authority.len);
    j->hdrs[j->nhdrs++] = (struct sigv4_header){"host", 4, p, req->authority.len};
    snprintf(j->method, sizeof(j->method), "%.*s", (int)req->method.len, req->method.base);
    j->captured = 1;
    return 0;
}

/* The same view of a request on its loop, without copies (headers array in the request's pool). */
static int view(h2o_req_t *req, struct sigv4_request *sr, char *method, size_t msize)
{
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len, n = 0;
    struct sigv4_header *h = h2o_mem_alloc_pool(&req->pool, (req->headers.size + 1) * sizeof(*h));
    if (h == NULL)
        return BERR_NOMEM;
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *e = &req->headers.entries[i];
        if (!h2o_memis(e->name->base, e->name->len, "host", 4))
            h[n++] = (struct sigv4_header){e->name->base, e->name->len, e->value.base, e->value.len};
    }
    h[n++] = (struct sigv4_header){"host", 4, req->authority.base, req->authority.len};
    snprintf(method, msize, "%.*s", (int)req->method.len, req->method.base);
    *sr = (struct sigv4_request){method,
                                 req->path.base,
                                 plen,
                                 plen < req->path.len ? req->path.base + plen + 1 : "",
                                 plen < req->path.len ? req->path.len - plen - 1 : 0,
                                 h,
                                 n,
                                 NULL,
                                 1};
    return 0;
}

/* Known ECR operations Berth does not implement get their own message. */
static int is_ecr_operation(const char *op)
{
    static const char *const others[] = {"BatchGetRepositoryScanningConfiguration",
                                         "CreatePullThroughCacheRule",
                                         "DeletePullThroughCacheRule",
                                         "DeleteRegistryPolicy",
                                         "DeleteRepositoryPolicy",
                                         "DescribeImageReplicationStatus",
                                         "DescribeImageScanFindings",
                                         "DescribePullThroughCacheRules",
                                         "GetRegistryPolicy",
                                         "GetRegistryScanningConfiguration",
                                         "GetRepositoryPolicy",
                                         "PutImageScanningConfiguration",
                                         "PutRegistryPolicy",
                                         "PutRegistryScanningConfiguration",
                                         "PutReplicationConfiguration",
                                         "SetRepositoryPolicy",
                                         "StartImageScan",
                                         "ListImageReferrers",
                                         "UpdatePullThroughCacheRule",
                                         "ValidatePullThroughCacheRule",
                                         "GetAccountSetting",
                                         "PutAccountSetting",
                                         "CreateRepositoryCreationTemplate",
                                         "DeleteRepositoryCreationTemplate",
                                         "DescribeRepositoryCreationTemplates",
                                         "UpdateRepositoryCreationTemplate"};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        if (strcmp(op, others[i]) == 0)
            return 1;
    return 0;
}

/* Authenticates, parses the body and runs operation `fn` (on whichever thread calls).  Returns the answer, NULL
 * after ecr_fail, or ECR_PENDING (a write is queued in c). */
static json_t *serve(struct ecr_ctx *c, ecr_op_fn fn, struct sigv4_request *sr, const char *body, size_t len)
{
    struct ecrargs_err e;
    if (c->db == NULL)
        return ecr_fail(c, "ServerException", "the metadata database is unavailable");
    if (!c->no_auth && ecr_authenticate(c, sr, body, len) != 0)
        return NULL;
    if (c->no_auth) {
        c->id.kind = AUTH_USER;
        c->id.is_admin = 1;
        snprintf(c->id.name, sizeof(c->id.name), "anonymous");
    }
    if ((c->in = ecrargs_body(body, len, &e)) == NULL)
        return ecr_fail(c, e.type, "%s", e.msg);
    return fn(c, c->in);
}

/* Sends the answer of `c`: `out` (not NULL, not ECR_PENDING) or the error recorded in c.  Takes `out`. */
static void answer(h2o_req_t *req, struct ecr_ctx *c, json_t *out)
{
    char *s;
    if (out == ECR_RAW) {
        respond_body(req, 200, ECR_CONTENT_TYPE, c->raw, c->raw_len, 0);
        return;
    }
    if (out == NULL) {
        if (c->type == NULL)
            ecr_fail(c, "ServerException", "internal error in %s", c->op);
        out = json_pack("{s:s, s:s}", "__type", c->type, "message", c->message);
    } else {
        c->status = 200;
    }
    s = out != NULL ? json_dumps(out, JSON_COMPACT) : NULL;
    json_decref(out);
    if (s == NULL) {
        respond_body(req, 500, ECR_CONTENT_TYPE, OOM_BODY, sizeof(OOM_BODY) - 1, 1);
        return;
    }
    respond_body(req, c->status, ECR_CONTENT_TYPE, s, strlen(s), 0);
    free(s);
}

/* On the loop, after a worker's run or a write: builds the answer of a write, sends it, frees everything. */
static void ecr_done(struct job *job, h2o_req_t *req)
{
    struct ecr_job *j = (void *)job;
    struct ecr_ctx *c = j->c;
    json_t *out = j->out;
    if (c->wfn != NULL) { /* the write committed (job->rc 0) or failed */
        c->db = server_db(c->srv);
        out = c->wfinish(c, c->warg, job->rc);
    }
    if (out == ECR_PENDING) /* a finish function never queues another write */
        out = ecr_fail(c, "ServerException", "internal error in %s", c->op);
    if (req != NULL)
        answer(req, c, out);
    else
        out_free(out);
    ctx_free(c);
    free(j->arena);
    free(j->hdrs);
}

struct body_buf {
    char *p;
    size_t len;
};

static int body_copy(void *arg, const void *chunk, size_t len)
{
    struct body_buf *b = arg;
    memcpy(b->p + b->len, chunk, len);
    b->len += len;
    return 0;
}

/* On a worker: an operation that blocks, or a large body. */
static void ecr_run(struct job *job)
{
    struct ecr_job *j = (void *)job;
    struct ecr_ctx *c = j->c;
    struct body_buf b = {0};
    unsigned flags;
    ecr_op_fn fn = ecr_ops_find(c->op, &flags);
    if ((b.p = malloc(job->body_len + 1)) == NULL || !j->captured) {
        free(b.p);
        ecr_fail(c, "ServerException", "out of memory");
        return;
    }
    if (job_body_each(job, body_copy, &b) != 0) { /* the client went away */
        free(b.p);
        ecr_fail(c, "ServerException", "the request went away");
        return;
    }
    struct sigv4_request sr = {j->method, j->path, j->path_len, j->query, j->query_len, j->hdrs, j->nhdrs, NULL, 1};
    c->db = server_db(c->srv);
    j->out = serve(c, fn, &sr, b.p, b.len);
    free(b.p);
    if (j->out == ECR_PENDING) {
        j->out = NULL;
        job_write(job, c->wfn, c->warg); /* the writer posts the job to its loop: do not touch it any more */
    }
}

/* Answers an error found on the loop before any work (no context yet). */
static void answer_now(h2o_req_t *req, const char *type, const char *msg)
{
    json_t *o = json_pack("{s:s, s:s}", "__type", type, "message", msg);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (s == NULL) {
        respond_body(req, 500, ECR_CONTENT_TYPE, "{}", 2, 1);
        return;
    }
    respond_body(req, 400, ECR_CONTENT_TYPE, s, strlen(s), 0);
    free(s);
}

static void peer_of(h2o_req_t *req, struct ecr_ctx *c)
{
    struct sockaddr_storage ss;
    socklen_t l = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    if (l > 0 && ss.ss_family == AF_INET) {
        memcpy(c->peer, &((struct sockaddr_in *)&ss)->sin_addr, 4);
        c->peer_len = 4;
    } else if (l > 0 && ss.ss_family == AF_INET6) {
        memcpy(c->peer, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
        c->peer_len = 16;
    }
}

/* A fresh context for operation `op` (within `target`) of `req`.  NULL on OOM. */
static struct ecr_ctx *ctx_new(struct server *srv, h2o_req_t *req, const char *target, size_t tlen)
{
    struct ecr_ctx *c = calloc(1, sizeof(*c) + tlen + 1);
    char *op;
    if (c == NULL)
        return NULL;
    op = (char *)(c + 1);
    memcpy(op, target, tlen);
    op[tlen] = '\0';
    c->srv = srv;
    c->op = op;
    c->no_auth = srv->cfg.no_auth;
    c->region = srv->cfg.region;
    c->now = (long long)time(NULL);
    snprintf(c->registry_id, sizeof(c->registry_id), "%s", ecr_registry_id());
    snprintf(c->host, sizeof(c->host), "%.*s", (int)req->authority.len, req->authority.base);
    snprintf(c->endpoint, sizeof(c->endpoint), "%.*s://%s", (int)req->scheme->name.len, req->scheme->name.base,
             c->host);
    peer_of(req, c);
    return c;
}

/* A job bound to `req` for `c` (NULL on OOM). */
static struct ecr_job *job_for(struct server *srv, h2o_req_t *req, struct ecr_ctx *c)
{
    struct call *call = h2o_mem_alloc_pool(&req->pool, sizeof(*call));
    struct ecr_job *j;
    if (call == NULL)
        return NULL;
    memset(call, 0, sizeof(*call));
    call->srv = srv;
    call->req = req;
    if ((j = job_new(call, sizeof(*j), ecr_run, ecr_done)) != NULL)
        j->c = c;
    return j;
}

/* Serves `c` on the loop: reads and validation here, a write queued for the writer, the answer now or after it. */
static void serve_on_loop(struct server *srv, h2o_req_t *req, struct ecr_ctx *c, ecr_op_fn fn)
{
    struct sigv4_request sr;
    char method[16];
    struct ecr_job *j;
    json_t *out;
    c->db = server_db(srv);
    if (c->db != NULL && ecrdb_read_begin(c->db) != 0) /* one snapshot, one lock round for all of it */
        c->db = NULL;
    out = view(req, &sr, method, sizeof(method)) == 0
              ? serve(c, fn, &sr, req->entity.base, req->entity.base ? req->entity.len : 0)
              : ecr_fail(c, "ServerException", "out of memory");
    if (c->db != NULL)
        ecrdb_read_end(c->db);
    if (out != ECR_PENDING) {
        answer(req, c, out);
        ctx_free(c);
        return;
    }
    if ((j = job_for(srv, req, c)) == NULL) {
        respond_body(req, 500, ECR_CONTENT_TYPE, OOM_BODY, sizeof(OOM_BODY) - 1, 1);
        ctx_free(c);
        return;
    }
    job_write(&j->super, c->wfn, c->warg); /* loop -> writer -> loop (ecr_done) */
}

/* Takes `POST /` with an ECR target: answers errors found here at once, serves reads and small requests on the
 * loop, blocking operations and large bodies on a worker. */
static int ecr_dispatch(struct server *srv, h2o_req_t *req)
{
    h2o_iovec_t t = respond_req_header(req, "x-amz-target"), az;
    size_t plen = strlen(ECR_TARGET_PREFIX);
    struct ecr_ctx *c;
    struct ecr_job *j;
    unsigned flags = 0;
    ecr_op_fn fn;
    if (t.len == 0) {
        answer_now(req, "UnknownOperationException", "Missing X-Amz-Target: this endpoint serves the ECR API.");
        return 0;
    }
    if (t.len <= plen || t.len >= ECR_TARGET_MAX || memcmp(t.base, ECR_TARGET_PREFIX, plen) != 0) {
        answer_now(req, "UnknownOperationException",
                   respond_printf(req, "Unknown operation %.*s.", (int)(t.len < 128 ? t.len : 128), t.base));
        return 0;
    }
    if (req->entity.len > BERTH_ECR_BODY_MAX) {
        answer_now(req, "InvalidParameterException", "The request body is too large.");
        return 0;
    }
    for (size_t i = plen; i < t.len; i++)
        if (!((t.base[i] >= 'A' && t.base[i] <= 'Z') || (t.base[i] >= 'a' && t.base[i] <= 'z'))) {
            answer_now(req, "UnknownOperationException", "Unknown operation.");
            return 0;
        }
    if ((c = ctx_new(srv, req, t.base + plen, t.len - plen)) == NULL) {
        respond_body(req, 500, ECR_CONTENT_TYPE, OOM_BODY, sizeof(OOM_BODY) - 1, 1);
        return 0;
    }
    if ((fn = ecr_ops_find(c->op, &flags)) == NULL) {
        if (is_ecr_operation(c->op))
            ecr_fail(c, "UnsupportedCommandException", "Berth does not implement the ECR operation %s.", c->op);
        else
            ecr_fail(c, "UnknownOperationException", "Unknown operation %s%s.", ECR_TARGET_PREFIX, c->op);
        answer(req, c, NULL);
        ctx_free(c);
        return 0;
    }
    az = respond_req_header(req, "authorization");
    if (!c->no_auth && ecr_auth_throttled(c, az.base, az.len)) {
        answer(req, c, NULL);
        ctx_free(c);
        return 0;
    }
    if (!(flags & ECR_OP_WORKER) && req->entity.len <= BERTH_ECR_LOOP_BODY_MAX) {
        serve_on_loop(srv, req, c, fn);
        return 0;
    }
    if ((j = job_for(srv, req, c)) == NULL) {
        respond_body(req, 500, ECR_CONTENT_TYPE, OOM_BODY, sizeof(OOM_BODY) - 1, 1);
        ctx_free(c);
        return 0;
    }
    capture(req, j); /* on failure ecr_run answers ServerException */
    job_submit(&j->super);
    return 0;
}

/* ---- the OCI side ---- */

int ecr_login(const struct server *srv, struct db *db, const char *pass, size_t len, struct authdb_identity *out,
              char *key_id)
{
    unsigned char box[ACCESSKEY_BOXKEY_BYTES];
    struct accesskey k;
    struct authdb_user u;
    int rc;
    (void)srv;
    ecr_boxkey(box);
    rc = accesskey_token_verify(db, box, pass, len, (long long)time(NULL), &k);
    sodium_memzero(box, sizeof(box));
    if (rc != 0)
        return rc;
    if (authdb_user_get(db, k.user, &u) != 0)
        return BERR_UNAUTHORIZED;
    out->kind = AUTH_USER;
    out->is_admin = u.is_admin;
    snprintf(out->name, sizeof(out->name), "%s", u.name);
    snprintf(out->uid, sizeof(out->uid), "%s", u.uid);
    if (key_id != NULL)
        snprintf(key_id, ECR_KEY_ID_MAX, "%s", k.id);
    return 0;
}

int ecr_bearer_key_live(struct db *db, const char *key_id, const char *user)
{
    struct accesskey k;
    int rc = accesskey_get(db, key_id, &k);
    if (rc == BERR_DB)
        return rc;
    return rc == 0 && k.revoked_at == 0 && strcmp(k.user, user) == 0 ? 0 : BERR_UNAUTHORIZED;
}

int ecr_push_may_create(const struct server *srv, const char *name)
{
    struct ecrdb_repo r;
    struct db *db;
    return srv->cfg.create_on_push || ((db = server_db(srv)) != NULL && ecrdb_repo_get(db, name, &r) == 0);
}

int ecr_respond_immutable(h2o_req_t *req, int err, const char *detail)
{
    json_t *o;
    char *s;
    if (err != BERR_TAG_INVALID || strncmp(detail, ECR_IMMUTABLE_PREFIX, strlen(ECR_IMMUTABLE_PREFIX)) != 0)
        return 0;
    o = json_pack("{s:[{s:s, s:s, s:s}]}", "errors", "code", berr_code(err), "message", detail, "detail", detail);
    if (o == NULL || (s = json_dumps(o, JSON_COMPACT)) == NULL) {
        json_decref(o);
        return 0;
    }
    json_decref(o);
    respond_body(req, berr_status(err), "application/json", s, strlen(s), 0);
    free(s);
    return 1;
}

int ecr_manifest_put_check(struct db *db, const char *repo, const char *tag, const char *digest, char *detail,
                           size_t detail_size)
{
    int rc = tag != NULL ? ecrdb_tag_check(db, repo, tag, digest) : 0;
    if (rc == ECRDB_IMMUTABLE) {
        snprintf(detail, detail_size,
                 ECR_IMMUTABLE_PREFIX "%s' already exists in the '%s' repository and cannot be overwritten because "
                                      "the repository is immutable.",
                 tag, repo);
        return BERR_TAG_INVALID;
    }
    return rc;
}

/* ---- the module ---- */

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST")) || plen != 1 || req->path.base[0] != '/')
        return -1; /* not ours: the registry API's */
    return ecr_dispatch(((struct server_handler *)self)->srv, req);
}

static int ecr_init(struct server *srv)
{
    return ecr_auth_init(srv);
}

static void ecr_routes(struct server *srv, h2o_hostconf_t *host, h2o_pathconf_t *root)
{
    struct server_handler *h = (void *)h2o_create_handler(root, sizeof(*h));
    (void)host;
    h->srv = srv;
    h->super.on_req = on_req;
}

const struct module ecr_module = {.name = "ecr", .init = ecr_init, .routes = ecr_routes};
