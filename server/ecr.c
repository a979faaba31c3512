/*
 * ecr.c - the ECR API's protocol layer: request capture on the loop, SigV4 authentication with access keys and
 * JSON dispatch on a worker, `__type` error bodies, and the `docker login -u AWS` hook (see ecr.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>
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

/* ---- process-wide state: the sealing key and the registry id, loaded once ---- */

static struct {
    pthread_mutex_t lock;
    int box_loaded;
    unsigned char box[ACCESSKEY_BOXKEY_BYTES];
    char registry_id[ECRDB_REGISTRY_ID_LEN + 1];
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Copies the sealing key into `out`, loading (creating) it on first use.  Returns 0 or a BERR code. */
static int boxkey(const struct server *srv, unsigned char out[ACCESSKEY_BOXKEY_BYTES])
{
    int rc = 0;
    pthread_mutex_lock(&g.lock);
    if (!g.box_loaded && (rc = accesskey_boxkey_load(srv->cfg.data, 1, g.box)) == 0)
        g.box_loaded = 1;
    if (rc == 0)
        memcpy(out, g.box, ACCESSKEY_BOXKEY_BYTES);
    pthread_mutex_unlock(&g.lock);
    return rc;
}

struct rid_args {
    const struct server *srv;
    char *out;
};

static int registry_id_init_op(struct db *db, void *arg)
{
    struct rid_args *a = arg;
    return ecrdb_registry_id_init(db, a->srv->cfg.data, a->out);
}

/* The registry id: configured, stored, or derived now and stored (a write, hence worker threads only). */
static int registry_id(const struct server *srv, struct db *db, char out[ECRDB_REGISTRY_ID_LEN + 1])
{
    struct rid_args a = {srv, g.registry_id};
    int rc = 0;
    pthread_mutex_lock(&g.lock);
    if (g.registry_id[0] == '\0') {
        rc = ecrdb_registry_id(db, srv->cfg.registry_id, g.registry_id);
        if (rc == BERR_NOT_FOUND)
            rc = writer_run(registry_id_init_op, &a);
        if (rc != 0)
            g.registry_id[0] = '\0';
    }
    memcpy(out, g.registry_id, ECRDB_REGISTRY_ID_LEN + 1);
    pthread_mutex_unlock(&g.lock);
    return rc;
}

/* ---- errors ---- */

json_t *ecr_fail(struct ecr_ctx *c, const char *type, const char *fmt, ...)
{
    va_list ap;
    c->type = type;
    c->status = strcmp(type, "ServerException") == 0 ? 500 : 400;
    va_start(ap, fmt);
    vsnprintf(c->message, sizeof(c->message), fmt, ap);
    va_end(ap);
    return NULL;
}

/* ---- the job ---- */

/* The request as the worker sees it: everything copied off the loop, in one allocation. */
struct ecr_job {
    struct job super;
    char target[128];
    char method[16];
    char *path, *query; /* NUL-terminated copies */
    size_t path_len, query_len;
    struct sigv4_header *hdrs;
    size_t nhdrs;
    char endpoint[ECR_ENDPOINT_MAX];
    char host[ECR_ENDPOINT_MAX];
    char *arena; /* malloc'd: path, query, header names and values */
    char *out;   /* malloc'd response body */
    int status;
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
    snprintf(j->host, sizeof(j->host), "%.*s", (int)req->authority.len, req->authority.base);
    snprintf(j->endpoint, sizeof(j->endpoint), "%.*s://%s", (int)req->scheme->name.len, req->scheme->name.base,
             j->host);
    return 0;
}

static const struct sigv4_header *header(const struct ecr_job *j, const char *name)
{
    for (size_t i = 0; i < j->nhdrs; i++)
        if (j->hdrs[i].name_len == strlen(name) && strncasecmp(j->hdrs[i].name, name, j->hdrs[i].name_len) == 0)
            return &j->hdrs[i];
    return NULL;
}

/* ---- authentication ---- */

/* Signature refusals in the words AWS uses (botocore/CLI users recognise them). */
static void sig_error(struct ecr_ctx *c, int rc, const struct sigv4_auth *a, const struct sigv4_header *date)
{
    char now[SIGV4_AMZDATE_LEN + 1], edge[SIGV4_AMZDATE_LEN + 1];
    time_t t = 0;
    sigv4_format_amzdate((time_t)c->now, now);
    if (rc == SIGV4_EREGION) {
        ecr_fail(c, "InvalidSignatureException",
                 "Credential should be scoped to a valid region, not '%s'. This registry's region is '%s'.", a->region,
                 c->region);
    } else if (rc == SIGV4_ESERVICE) {
        ecr_fail(c, "InvalidSignatureException", "Credential should be scoped to correct service: '%s'.", ECR_SERVICE);
    } else if (rc == SIGV4_ESTALE) {
        sigv4_parse_amzdate(date->value, date->value_len, &t);
        int past = (long long)t < c->now;
        sigv4_format_amzdate((time_t)(c->now + (past ? -SIGV4_MAX_SKEW : SIGV4_MAX_SKEW)), edge);
        if (past)
            ecr_fail(c, "InvalidSignatureException", "Signature expired: %.16s is now earlier than %s (%s - 15 min.)",
                     date->value, edge, now);
        else
            ecr_fail(c, "InvalidSignatureException",
                     "Signature not yet current: %.16s is still later than %s (%s + 15 min.)", date->value, edge, now);
    } else if (rc == SIGV4_EMISMATCH) {
        ecr_fail(c, "InvalidSignatureException",
                 "The request signature we calculated does not match the signature you provided. Check your AWS "
                 "Secret Access Key and signing method. Consult the service documentation for details.");
    } else if (rc == SIGV4_EDATE) {
        ecr_fail(c, "IncompleteSignatureException",
                 "X-Amz-Date must be present, of the form yyyyMMdd'T'HHmmss'Z', and on the credential's day.");
    } else if (rc == SIGV4_EMISSING) {
        ecr_fail(c, "IncompleteSignatureException",
                 "The signature must cover host, x-amz-date and, when present, x-amz-security-token.");
    } else {
        ecr_fail(c, "ServerException", "signature check failed (%s)", sigv4_strerror(rc));
    }
}

/* Verifies the SigV4 signature over `body` and sets the caller's identity.  Returns 0 or -1 after ecr_fail. */
static int authenticate(struct ecr_ctx *c, const struct ecr_job *j, const char *body, size_t len)
{
    const struct sigv4_header *az = header(j, "authorization"), *date = header(j, "x-amz-date");
    unsigned char box[ACCESSKEY_BOXKEY_BYTES];
    char hash[SIGV4_HEX_LEN + 1];
    struct sigv4_auth a;
    struct authdb_user u;
    int rc;
    if (az == NULL) {
        ecr_fail(c, "MissingAuthenticationTokenException", "Missing Authentication Token");
        c->status = 403;
        return -1;
    }
    if (ecr_bearer_is(az->value, az->value_len)) /* a token from /token instead of SigV4: ecr_bearer.c */
        return ecr_bearer_authenticate(c, az->value, az->value_len);
    if (sigv4_parse_authorization(az->value, az->value_len, &a) != 0) {
        ecr_fail(c, "IncompleteSignatureException",
                 "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters with "
                 "algorithm AWS4-HMAC-SHA256.");
        return -1;
    }
    if (boxkey(c->srv, box) != 0) {
        ecr_fail(c, "ServerException", "cannot read the access-key sealing key");
        return -1;
    }
    rc = accesskey_id_valid(a.key_id, strlen(a.key_id)) == 0
             ? accesskey_secret(c->db, box, a.key_id, &c->key, c->secret)
             : BERR_NOT_FOUND;
    sodium_memzero(box, sizeof(box));
    if (rc == BERR_NOT_FOUND || (rc == 0 && authdb_user_get(c->db, c->key.user, &u) != 0)) {
        log_warn("ecr: denied %s (unknown, revoked or ownerless access key %.*s)", c->op, 20, a.key_id);
        ecr_fail(c, "UnrecognizedClientException", "The security token included in the request is invalid.");
        return -1;
    }
    if (rc != 0) {
        ecr_fail(c, "ServerException", "cannot read access key");
        return -1;
    }
    sigv4_sha256_hex(body, len, hash);
    struct sigv4_request sr = {j->method, j->path, j->path_len, j->query, j->query_len, j->hdrs, j->nhdrs, hash, 1};
    rc = sigv4_verify(&sr, &a, c->secret, strlen(c->secret), c->region, ECR_SERVICE, (time_t)c->now);
    if (rc != 0) {
        log_warn("ecr: denied %s for key %s of user %s (%s)", c->op, c->key.id, c->key.user, sigv4_strerror(rc));
        sig_error(c, rc, &a, date);
        return -1;
    }
    c->have_key = 1;
    c->id.kind = AUTH_USER;
    c->id.is_admin = u.is_admin;
    snprintf(c->id.name, sizeof(c->id.name), "%s", u.name);
    snprintf(c->id.uid, sizeof(c->id.uid), "%s", u.uid);
    return authdb_grants_load(c->db, &c->id, &c->grants) == 0 ? 0 : (ecr_fail(c, "ServerException", "grants"), -1);
}

/* ---- the worker ---- */

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

/* Parses the body and runs the operation; the answer lands in c (error) or the returned object. */
static json_t *run_op(struct ecr_ctx *c, const struct ecr_job *j, const char *body, size_t len)
{
    ecr_op_fn fn = ecr_ops_find(c->op);
    struct ecrargs_err e;
    json_t *in, *out;
    if (fn == NULL) {
        if (is_ecr_operation(c->op))
            return ecr_fail(c, "UnsupportedCommandException", "Berth does not implement the ECR operation %s.", c->op);
        return ecr_fail(c, "UnknownOperationException", "Unknown operation %s%s.", ECR_TARGET_PREFIX, c->op);
    }
    if (!c->no_auth && authenticate(c, j, body, len) != 0)
        return NULL;
    if (c->no_auth) {
        c->id.kind = AUTH_USER;
        c->id.is_admin = 1;
        snprintf(c->id.name, sizeof(c->id.name), "anonymous");
    }
    if ((in = ecrargs_body(body, len, &e)) == NULL)
        return ecr_fail(c, e.type, "%s", e.msg);
    out = fn(c, in);
    json_decref(in);
    return out;
}

static void ecr_run(struct job *job)
{
    struct ecr_job *j = (void *)job;
    struct ecr_ctx *c = calloc(1, sizeof(*c));
    struct body_buf b = {0};
    json_t *out = NULL;
    if (c == NULL || (b.p = malloc(j->super.body_len + 1)) == NULL) {
        j->status = 500;
        goto out;
    }
    c->srv = job->srv;
    c->op = j->target + strlen(ECR_TARGET_PREFIX);
    c->no_auth = c->srv->cfg.no_auth;
    c->region = c->srv->cfg.region;
    c->now = (long long)time(NULL);
    c->host = j->host;
    snprintf(c->endpoint, sizeof(c->endpoint), "%s", j->endpoint);
    if (job_body_each(job, body_copy, &b) != 0) {
        j->status = 0; /* the client went away */
        goto out;
    }
    if ((c->db = server_db(c->srv)) == NULL || registry_id(c->srv, c->db, c->registry_id) != 0)
        ecr_fail(c, "ServerException", "the metadata database is unavailable");
    else
        out = run_op(c, j, b.p, b.len);
    if (out == NULL) {
        if (c->type == NULL)
            ecr_fail(c, "ServerException", "internal error in %s", c->op);
        out = json_pack("{s:s, s:s}", "__type", c->type, "message", c->message);
    } else {
        c->status = 200;
    }
    j->status = c->status;
    j->out = out ? json_dumps(out, JSON_COMPACT) : NULL;
out:
    json_decref(out);
    if (c != NULL) {
        sodium_memzero(c->secret, sizeof(c->secret));
        authdb_grants_free(&c->grants);
    }
    free(c);
    free(b.p);
}

static void ecr_done(struct job *job, h2o_req_t *req)
{
    struct ecr_job *j = (void *)job;
    if (req != NULL) {
        if (j->out == NULL)
            respond_body(req, 500, ECR_CONTENT_TYPE, OOM_BODY, sizeof(OOM_BODY) - 1, 1);
        else
            respond_body(req, j->status, ECR_CONTENT_TYPE, j->out, strlen(j->out), 0);
    }
    free(j->out);
    free(j->arena);
    free(j->hdrs);
}

/* Answers an error found on the loop (before any work). */
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

/* Takes `POST /` with an ECR target to a worker; answers errors found here at once. */
static int ecr_dispatch(struct server *srv, h2o_req_t *req)
{
    struct call *call;
    h2o_iovec_t t = respond_req_header(req, "x-amz-target");
    size_t plen = strlen(ECR_TARGET_PREFIX);
    struct ecr_job *j;
    if (t.len == 0) {
        answer_now(req, "UnknownOperationException", "Missing X-Amz-Target: this endpoint serves the ECR API.");
        return 0;
    }
    if (t.len <= plen || t.len >= sizeof(j->target) || memcmp(t.base, ECR_TARGET_PREFIX, plen) != 0) {
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
    if ((call = h2o_mem_alloc_pool(&req->pool, sizeof(*call))) != NULL) {
        memset(call, 0, sizeof(*call));
        call->srv = srv;
        call->req = req;
    }
    if (call == NULL || (j = job_new(call, sizeof(*j), ecr_run, ecr_done)) == NULL) {
        respond_body(req, 500, ECR_CONTENT_TYPE, OOM_BODY, sizeof(OOM_BODY) - 1, 1);
        return 0;
    }
    memcpy(j->target, t.base, t.len);
    j->target[t.len] = '\0';
    if (capture(req, j) != 0) {
        free(j->arena);
        free(j->hdrs);
        j->arena = NULL;
        j->hdrs = NULL;
        j->nhdrs = 0;
    }
    job_submit(&j->super);
    return 0;
}

/* ---- the OCI side ---- */

int ecr_login(const struct server *srv, struct db *db, const char *pass, size_t len, struct authdb_identity *out)
{
    unsigned char box[ACCESSKEY_BOXKEY_BYTES];
    struct accesskey k;
    struct authdb_user u;
    int rc;
    if (boxkey(srv, box) != 0)
        return BERR_UNAUTHORIZED;
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
    return 0;
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

static void ecr_routes(struct server *srv, h2o_hostconf_t *host, h2o_pathconf_t *root)
{
    struct server_handler *h = (void *)h2o_create_handler(root, sizeof(*h));
    (void)host;
    h->srv = srv;
    h->super.on_req = on_req;
}

const struct module ecr_module = {.name = "ecr", .routes = ecr_routes};
