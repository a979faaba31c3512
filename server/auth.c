/* auth.c - the per-request gate, the /token endpoint, and challenges (see auth.h; the failed-login rate limit is
 * auth_throttle.c, Basic credentials and their cache auth_basic.c). */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <sodium.h>
#include "auth.h"
#include "auth_internal.h"
#include "db.h"
#include "ecr.h"
#include "err.h"
#include "jwt.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "module.h"
#include "names.h"
#include "observe.h"
#include "respond.h"

/* ---- process state ---- */

static struct {
    pthread_mutex_t lock; /* keyring, token cache */
    struct jwt_keyring keys;
    long long keys_stamp;     /* jwt_keys_stamp() of the files `keys` came from */
    unsigned long keys_gen;   /* bumped at every reload; cached tokens of an older generation are verified again */
    unsigned char secret[32]; /* process-random key of the token cache's hashes */
    struct {                  /* bearer tokens whose signature was verified: hash of the token -> its claims */
        unsigned char key[32];
        json_t *claims;
        long long exp;
        unsigned long gen; /* keys_gen of the keyring that verified it */
    } jwts[BERTH_AUTH_JWT_CACHE_SLOTS];
} st = {.lock = PTHREAD_MUTEX_INITIALIZER};

_Static_assert(sizeof(((struct auth_identity *)0)->ecr_key) >= ECR_KEY_ID_MAX, "auth_identity.ecr_key too small");

static const struct auth_identity open_identity = {.id = {.kind = AUTH_ANONYMOUS, .is_admin = 1}};

const char *auth__kind_name(enum authdb_kind k)
{
    return k == AUTH_USER ? "user" : k == AUTH_TOKEN ? "token" : "anonymous";
}

/* Forgets every remembered bearer token (lock held). */
static void jwt_cache_clear(void)
{
    for (size_t i = 0; i < BERTH_AUTH_JWT_CACHE_SLOTS; i++) {
        json_decref(st.jwts[i].claims);
        st.jwts[i].claims = NULL;
    }
}

/*
 * Key rotation.  `berth token rotate-key` (another process) replaces the key files; every bearer request and every
 * token signing first compares jwt_keys_stamp() (two stat(2) calls) with the stamp of the loaded keys, and on a
 * difference reloads them, bumps the generation and forgets every verified token.  So a rotation, or a key file
 * removed by hand, takes effect on the next request of every process that reads these files, with no delay.
 * Processes on other machines see it when the files reach them (a shared filesystem: within its attribute cache).
 * If the files cannot be read the keyring is emptied: bearer tokens fail closed until the keys are back.
 */
static void keys_refresh(const struct server *srv)
{
    long long stamp = jwt_keys_stamp(srv->cfg.data);
    struct jwt_keyring kr;
    int rc;
    pthread_mutex_lock(&st.lock);
    if (stamp != st.keys_stamp) {
        if ((rc = jwt_keys_load(srv->cfg.data, 0, 0, &kr)) != 0)
            memset(&kr, 0, sizeof(kr));
        sodium_memzero(&st.keys, sizeof(st.keys));
        st.keys = kr;
        st.keys_stamp = stamp;
        st.keys_gen++;
        jwt_cache_clear();
        if (rc != 0)
            log_error("auth: cannot reload the token-signing keys: bearer tokens are refused until they are back");
        else
            log_info("auth: reloaded the token-signing keys (%d)", kr.n);
        sodium_memzero(&kr, sizeof(kr));
    }
    pthread_mutex_unlock(&st.lock);
}

/* A copy of the current keyring and its generation. */
static void keys_snapshot(const struct server *srv, struct jwt_keyring *out, unsigned long *gen)
{
    keys_refresh(srv);
    pthread_mutex_lock(&st.lock);
    *out = st.keys;
    *gen = st.keys_gen;
    pthread_mutex_unlock(&st.lock);
}

void auth__keys_get(const struct server *srv, struct jwt_keyring *out)
{
    unsigned long gen;
    keys_snapshot(srv, out, &gen);
}

/* ---- credentials ---- */

void auth__creds_clear(struct creds *c)
{
    sodium_memzero(c->pass, sizeof(c->pass));
}

void auth__creds_parse(h2o_req_t *req, struct creds *c)
{
    h2o_iovec_t v = respond_req_header(req, "authorization");
    struct authhdr a;
    authhdr_parse(v.base, v.len, &a);
    memset(c, 0, sizeof(*c));
    c->kind = (enum cred_kind)a.kind;
    memcpy(c->user, a.user, sizeof(c->user));
    c->ulen = a.ulen;
    memcpy(c->pass, a.pass, a.plen);
    c->plen = a.plen;
    c->token = h2o_iovec_init(a.token, a.token_len);
    authhdr_clear(&a);
}

/* Allocates an identity in the request pool; the claims are released with the request. */
static void release_claims(void *p)
{
    struct auth_identity *id = p;
    json_decref(id->claims);
}

struct auth_identity *auth__identity_new(h2o_req_t *req)
{
    struct auth_identity *id = h2o_mem_alloc_shared(&req->pool, sizeof(*id), release_claims);
    memset(id, 0, sizeof(*id));
    return id;
}

/*
 * Remembered bearer tokens.  A client presents the same token on every request of a push or pull; checking its
 * Ed25519 signature each time would cost more than serving a manifest.  A token whose signature was verified is
 * remembered by its BLAKE2b hash (keyed with a process secret) until its exp; the subject's existence, revocation
 * and every authorization are still checked per request.  Slots are direct-mapped; a reload of the keys (looked for
 * before every lookup) empties them.  jansson's reference counts are atomic, and cached claims are never modified.
 */
static size_t jwt_cache_key(const struct creds *c, unsigned char key[32])
{
    crypto_generichash(key, 32, (const unsigned char *)c->token.base, c->token.len, st.secret, sizeof(st.secret));
    return ((size_t)key[0] | (size_t)key[1] << 8) % BERTH_AUTH_JWT_CACHE_SLOTS;
}

static int jwt_cache_get(const struct creds *c, json_t **claims)
{
    unsigned char key[32];
    size_t i = jwt_cache_key(c, key);
    int hit;
    pthread_mutex_lock(&st.lock);
    hit = st.jwts[i].claims != NULL && sodium_memcmp(st.jwts[i].key, key, 32) == 0 &&
          st.jwts[i].exp > (long long)time(NULL) && st.jwts[i].gen == st.keys_gen;
    if (hit)
        *claims = json_incref(st.jwts[i].claims);
    pthread_mutex_unlock(&st.lock);
    return hit;
}

/* Remembers `claims`, verified with the keyring of generation `gen` (dropped if the keys were reloaded since). */
static void jwt_cache_put(const struct creds *c, json_t *claims, unsigned long gen)
{
    unsigned char key[32];
    size_t i = jwt_cache_key(c, key);
    json_t *exp = json_object_get(claims, "exp");
    if (!json_is_integer(exp))
        return;
    pthread_mutex_lock(&st.lock);
    if (gen != st.keys_gen) {
        pthread_mutex_unlock(&st.lock);
        return;
    }
    st.jwts[i].gen = gen;
    json_decref(st.jwts[i].claims);
    memcpy(st.jwts[i].key, key, 32);
    st.jwts[i].claims = json_incref(claims);
    st.jwts[i].exp = (long long)json_integer_value(exp);
    pthread_mutex_unlock(&st.lock);
}

/*
 * Verifies a bearer token and that its subject is still the identity it was issued to: the user or live robot token
 * of that name whose uid equals the token's berth_uid (a user deleted and added again, or a token revoked and
 * created again under the same name, has another uid).  Returns 0 or BERR_UNAUTHORIZED.
 */
static int bearer_verify(const struct server *srv, const struct creds *c, struct auth_identity *id)
{
    struct jwt_keyring kr;
    unsigned long gen;
    const char *sub, *kind, *uid;
    struct db *db = server_db(srv);
    int rc;
    keys_refresh(srv); /* a rotation reaches remembered tokens at once */
    if (!jwt_cache_get(c, &id->claims)) {
        keys_snapshot(srv, &kr, &gen);
        rc = jwt_verify(&kr, c->token.base, c->token.len, srv->cfg.auth_service, (long long)time(NULL), &id->claims);
        if (rc != 0 && db_metadata_is_pg() && keys_stamp_recheck()) { /* signed by a key another node rotated in? */
            keys_refresh(srv);
            keys_snapshot(srv, &kr, &gen);
            rc =
                jwt_verify(&kr, c->token.base, c->token.len, srv->cfg.auth_service, (long long)time(NULL), &id->claims);
        }
        sodium_memzero(&kr, sizeof(kr));
        if (rc != 0)
            return rc;
        jwt_cache_put(c, id->claims, gen);
    }
    sub = json_string_value(json_object_get(id->claims, "sub"));
    kind = json_string_value(json_object_get(id->claims, "berth_kind"));
    uid = json_string_value(json_object_get(id->claims, "berth_uid"));
    id->bearer = 1;
    if (uid == NULL || strlen(uid) >= sizeof(id->id.uid))
        return BERR_UNAUTHORIZED;
    snprintf(id->id.name, sizeof(id->id.name), "%s", sub);
    snprintf(id->id.uid, sizeof(id->id.uid), "%s", uid);
    if (strcmp(kind, "user") == 0) {
        struct authdb_user u;
        id->id.kind = AUTH_USER;
        const char *akid = json_string_value(json_object_get(id->claims, ECR_CLAIM_KEY));
        if (db == NULL || authdb_user_get(db, sub, &u) != 0 || uid[0] == '\0' || strcmp(u.uid, uid) != 0)
            return BERR_UNAUTHORIZED;
        if (akid != NULL && ecr_bearer_key_live(db, akid, sub) != 0) /* from an ECR login: its key still live */
            return BERR_UNAUTHORIZED;
        id->id.is_admin = u.is_admin;
    } else if (strcmp(kind, "token") == 0) {
        struct authdb_token t;
        id->id.kind = AUTH_TOKEN;
        if (db == NULL || authdb_token_get(db, sub, &t) != 0 || t.revoked_at != 0 ||
            (t.expires_at != 0 && time(NULL) >= t.expires_at) || uid[0] == '\0' || strcmp(t.uid, uid) != 0)
            return BERR_UNAUTHORIZED;
    } else if (strcmp(kind, "anonymous") != 0 || sub[0] != '\0' || uid[0] != '\0') {
        return BERR_UNAUTHORIZED;
    }
    return 0;
}

/* The claims' access list holds an entry of `type` and `name` (e.g. registry "ecr"). */
static int access_has(const json_t *claims, const char *type, const char *name)
{
    const json_t *e;
    size_t i;
    json_array_foreach(json_object_get(claims, "access"), i, e)
    {
        const char *t = json_string_value(json_object_get(e, "type")),
                   *n = json_string_value(json_object_get(e, "name"));
        if (t != NULL && n != NULL && strcmp(t, type) == 0 && strcmp(n, name) == 0)
            return 1;
    }
    return 0;
}

int auth_bearer_identity(const struct server *srv, const char *token, size_t len, const char *type, const char *name,
                         struct authdb_identity *out)
{
    struct creds c = {.kind = CRED_BEARER, .token = h2o_iovec_init(token, len)};
    struct auth_identity id = {0};
    int rc = bearer_verify(srv, &c, &id);
    if (rc == 0 && (id.id.kind == AUTH_ANONYMOUS || !access_has(id.claims, type, name)))
        rc = BERR_INSUFFICIENT_SCOPE;
    if (rc == 0)
        *out = id.id;
    json_decref(id.claims);
    return rc;
}

/* ---- challenges and denials ---- */

/* The address this connection reached ("127.0.0.1:5000", "[::1]:5000"), for a realm without a usable Host; the
 * configured listen address if the socket cannot tell. */
static const char *local_authority(const struct server *srv, h2o_req_t *req)
{
    struct sockaddr_storage ss;
    char host[INET6_ADDRSTRLEN];
    socklen_t l = req->conn->callbacks->get_sockname(req->conn, (struct sockaddr *)&ss);
    if (l > 0 && ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (void *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        return respond_printf(req, "%s:%u", host, (unsigned)ntohs(a->sin_port));
    }
    if (l > 0 && ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (void *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        return respond_printf(req, "[%s]:%u", host, (unsigned)ntohs(a->sin6_port));
    }
    return srv->cfg.listen;
}

/*
 * The realm: the configured one (auth_realm), else <scheme>://<Host>/token.  The Host is echoed into a header, so
 * it must be a host[:port] (names_host_valid: no quote, control or non-ASCII byte); a request without one (HTTP/1.0
 * without Host: h2o then puts its host entry's name, "default", in req->authority) or with a malformed one gets
 * the address the connection reached instead.
 */
static const char *realm(const struct server *srv, h2o_req_t *req)
{
    h2o_iovec_t a = req->authority;
    if (srv->cfg.auth_realm[0] != '\0')
        return srv->cfg.auth_realm;
    if (a.base == req->hostconf->authority.hostport.base || names_host_valid(a.base, a.len) != 0) {
        const char *l = local_authority(srv, req);
        a = h2o_iovec_init(l, strlen(l));
    }
    return respond_printf(req, "%.*s://%.*s/token", (int)req->scheme->name.len, req->scheme->name.base, (int)a.len,
                          a.base);
}

/* Answers 401 with a Bearer challenge; `scope` and `error` may be NULL. */
static void challenge(const struct server *srv, h2o_req_t *req, const char *scope, const char *error, int err)
{
    char *v = respond_printf(req, "Bearer realm=\"%s\",service=\"%s\"", realm(srv, req), srv->cfg.auth_service);
    if (scope != NULL)
        v = respond_printf(req, "%s,scope=\"%s\"", v, scope);
    if (error != NULL)
        v = respond_printf(req, "%s,error=\"%s\"", v, error);
    respond_header(req, "www-authenticate", v, 0);
    respond_error(req, err, NULL);
}

/* Answers a failed credential check (`rc`). */
void auth__reject_creds(const struct server *srv, h2o_req_t *req, int rc, int bearer)
{
    metrics_add(rc == BERR_TOO_MANY_REQUESTS ? METRIC_AUTH_FAIL_RATE_LIMITED
                : rc == BERR_LOGINS_BUSY     ? METRIC_AUTH_FAIL_LOGINS_BUSY
                : bearer                     ? METRIC_AUTH_FAIL_INVALID_TOKEN
                                             : METRIC_AUTH_FAIL_BAD_CREDENTIALS,
                1);
    if (rc == BERR_TOO_MANY_REQUESTS)
        respond_header(req, "retry-after", "60", 0);
    if (rc == BERR_LOGINS_BUSY)
        respond_header(req, "retry-after", "1", 0);
    if (rc == BERR_UNAUTHORIZED)
        challenge(srv, req, NULL, bearer ? "invalid_token" : NULL, rc);
    else
        respond_error(req, rc, NULL);
}

static int is_method(h2o_req_t *req, const char *m)
{
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

static unsigned required_action(h2o_req_t *req, const struct route *rt)
{
    if (rt->kind == ROUTE_UPLOAD || rt->kind == ROUTE_UPLOAD_NEW)
        return AUTH_PUSH;
    if (is_method(req, "GET") || is_method(req, "HEAD"))
        return AUTH_PULL;
    if (is_method(req, "DELETE"))
        return AUTH_DELETE;
    return AUTH_PUSH;
}

/* What `id` may do on `repo` now: its grants (and the anonymous ones), read on every call; a bearer token allows
 * at most that, and at most its own access list, so removing a grant cuts off tokens issued before. */
static unsigned allowed_actions(const struct server *srv, const struct auth_identity *id, const char *repo)
{
    struct authdb_grants g;
    struct db *db;
    unsigned a = AUTH_ALL;
    if (id->claims != NULL && (a = jwt_access_actions(id->claims, repo)) == 0)
        return 0;
    if ((id->bearer && id->claims == NULL) || (db = server_db(srv)) == NULL || authdb_grants_load(db, &id->id, &g) != 0)
        return 0;
    a &= authdb_grants_actions(&g, repo);
    authdb_grants_free(&g);
    return a;
}

/* Runs `next` as `id` (call->who).  Returns next's result. */
static int run_as(struct call *call, handler_fn next, const struct auth_identity *id)
{
    call->who = id;
    observe_set_user(call->req, id->id.name);
    return next(call, call->req, &call->rt);
}

/* Decides for an identified caller; `had_creds`: the request carried (valid) credentials. */
/* Whether `id` may pull at least one repository pattern (an anonymous caller with anonymous pull grants). */
static int can_pull_some(const struct server *srv, const struct auth_identity *id)
{
    struct authdb_grants g = {0};
    struct db *db = server_db(srv);
    int some = 0;
    if (db == NULL || authdb_grants_load(db, &id->id, &g) != 0)
        return 0;
    some = g.all;
    for (size_t i = 0; i < g.n && !some; i++)
        some = (g.g[i].actions & AUTH_PULL) != 0;
    authdb_grants_free(&g);
    return some;
}

/* /metrics on the main listener: admin users only, never anonymous. */
static int decide_admin(struct call *call, handler_fn next, const struct auth_identity *id, int had_creds)
{
    if (had_creds && id->id.kind == AUTH_USER && id->id.is_admin)
        return run_as(call, next, id);
    metrics_add(had_creds ? METRIC_AUTH_FAIL_NOT_ADMIN : METRIC_AUTH_FAIL_NO_CREDENTIALS, 1);
    log_msg(had_creds ? LOG_WARN : LOG_INFO, "auth: denied %s '%s': /metrics is for admin users",
            auth__kind_name(id->id.kind), id->id.name);
    if (had_creds)
        respond_error(call->req, BERR_DENIED, NULL);
    else
        challenge(call->srv, call->req, NULL, NULL, BERR_UNAUTHORIZED);
    return 0;
}

static int decide(struct call *call, handler_fn next, const struct auth_identity *id, int had_creds)
{
    h2o_req_t *req = call->req;
    const struct route *rt = &call->rt;
    const struct server *srv = call->srv;
    unsigned need, allowed;
    char acts[AUTH_ACTIONS_STR_MAX], ename[LOG_ESCAPED_MAX(BERTH_AUTH_NAME_MAX)],
        erepo[LOG_ESCAPED_MAX(BERTH_NAME_MAX)];
    /* _catalog: an anonymous caller who can read nothing is asked to log in, as on every other route */
    if (rt->kind == ROUTE_CATALOG && !had_creds && !can_pull_some(srv, id)) {
        log_msg(LOG_INFO, "auth: challenged an anonymous _catalog request");
        metrics_add(METRIC_AUTH_FAIL_NO_CREDENTIALS, 1);
        challenge(srv, req, "registry:catalog:*", NULL, BERR_UNAUTHORIZED);
        return 0;
    }
    if (rt->kind == ROUTE_METRICS) /* admin users only; never anonymous */
        return decide_admin(call, next, id, had_creds);
    if (rt->kind == ROUTE_CATALOG || (rt->kind == ROUTE_BASE && had_creds))
        return run_as(call, next, id);
    if (rt->kind == ROUTE_BASE) {
        metrics_add(METRIC_AUTH_FAIL_NO_CREDENTIALS, 1);
        challenge(srv, req, NULL, NULL, BERR_UNAUTHORIZED);
        return 0;
    }
    need = required_action(req, rt);
    allowed = allowed_actions(srv, id, rt->name);
    if ((allowed & need) == need)
        return run_as(call, next, id);
    authdb_actions_format(need == AUTH_PUSH ? AUTH_PULL | AUTH_PUSH : need, acts, sizeof(acts));
    /* without credentials this is usually the first step of a login: logged, but not as a warning */
    log_msg(had_creds ? LOG_WARN : LOG_INFO, "auth: denied %s '%s': %s on repository %s", auth__kind_name(id->id.kind),
            log_escape(id->id.name, strlen(id->id.name), ename, sizeof(ename)),
            need == AUTH_PULL   ? "pull"
            : need == AUTH_PUSH ? "push"
                                : "delete",
            log_escape(rt->name, strlen(rt->name), erepo, sizeof(erepo)));
    metrics_add(!had_creds   ? METRIC_AUTH_FAIL_NO_CREDENTIALS
                : id->bearer ? METRIC_AUTH_FAIL_INSUFFICIENT_SCOPE
                             : METRIC_AUTH_FAIL_DENIED,
                1);
    if (!had_creds)
        challenge(srv, req, respond_printf(req, "repository:%s:%s", rt->name, acts), NULL, BERR_UNAUTHORIZED);
    else if (id->bearer)
        challenge(srv, req, respond_printf(req, "repository:%s:%s", rt->name, acts), "insufficient_scope",
                  BERR_INSUFFICIENT_SCOPE);
    else
        respond_error(req, BERR_DENIED, NULL);
    return 0;
}

struct pending {
    struct call *call;
    handler_fn next;
};

static void after_basic(h2o_req_t *req, struct auth_identity *id, int rc, void *arg)
{
    struct pending *p = arg;
    if (rc != 0) {
        auth__reject_creds(p->call->srv, req, rc, 0);
        return;
    }
    if ((rc = decide(p->call, p->next, id, 1)) != 0)
        respond_error(req, rc, NULL);
}

int auth_then(struct call *call, handler_fn next)
{
    h2o_req_t *req = call->req;
    const struct route *rt = &call->rt;
    const struct server *srv = call->srv;
    struct creds c;
    struct auth_identity *id;
    struct pending *p;
    char erepo[LOG_ESCAPED_MAX(BERTH_NAME_MAX)];
    int rc;
    if (srv->cfg.no_auth)
        return run_as(call, next, &open_identity);
    auth__creds_parse(req, &c);
    id = auth__identity_new(req);
    switch (c.kind) {
    case CRED_NONE:
        return decide(call, next, id, 0);
    case CRED_BEARER:
        if ((rc = bearer_verify(srv, &c, id)) != 0) {
            log_warn("auth: denied an invalid bearer token (%s %s)", rt->kind == ROUTE_BASE ? "/v2/" : "repository",
                     log_escape(rt->name, strlen(rt->name), erepo, sizeof(erepo)));
            auth__reject_creds(srv, req, rc, 1);
            return 0;
        }
        return decide(call, next, id, 1);
    case CRED_BASIC:
        p = h2o_mem_alloc_pool(&req->pool, sizeof(*p));
        p->call = call;
        p->next = next;
        rc = auth__basic_verify(call, &c, id, after_basic, p);
        auth__creds_clear(&c);
        if (rc == 1)
            return 0;
        if (rc != 0) {
            auth__reject_creds(srv, req, rc, 0);
            return 0;
        }
        return decide(call, next, id, 1);
    default:
        metrics_add(METRIC_AUTH_FAIL_MALFORMED, 1);
        challenge(srv, req, NULL, NULL, BERR_UNAUTHORIZED);
        return 0;
    }
}

int auth_can(const struct call *call, const char *repo, unsigned actions)
{
    const struct auth_identity *current = call->who;
    char acts[AUTH_ACTIONS_STR_MAX], ename[LOG_ESCAPED_MAX(BERTH_AUTH_NAME_MAX)],
        erepo[LOG_ESCAPED_MAX(BERTH_NAME_MAX)];
    const char *name = current != NULL ? current->id.name : "";
    if (call->srv->cfg.no_auth)
        return 1;
    if (current != NULL && (allowed_actions(call->srv, current, repo) & actions) == actions)
        return 1;
    authdb_actions_format(actions, acts, sizeof(acts));
    log_warn("auth: denied %s '%s': %s on repository %s",
             current != NULL ? auth__kind_name(current->id.kind) : "unknown",
             log_escape(name, strlen(name), ename, sizeof(ename)), acts,
             log_escape(repo, strlen(repo), erepo, sizeof(erepo)));
    return 0;
}

struct auth_filter {
    struct authdb_grants g;
};

static void filter_free(void *p)
{
    authdb_grants_free(&((struct auth_filter *)p)->g);
}

struct auth_filter *auth_catalog_filter(const struct call *call)
{
    h2o_req_t *req = call->req;
    const struct auth_identity *current = call->who;
    struct auth_filter *f;
    struct db *db = server_db(call->srv);
    if (call->srv->cfg.no_auth)
        return NULL;
    f = h2o_mem_alloc_shared(&req->pool, sizeof(*f), filter_free);
    memset(f, 0, sizeof(*f));
    if (current == NULL || db == NULL || authdb_grants_load(db, &current->id, &f->g) != 0)
        return f; /* sees nothing */
    return f->g.all ? NULL : f;
}

int auth_filter_allows(const struct auth_filter *f, const char *name)
{
    return f == NULL || (authdb_grants_actions(&f->g, name) & AUTH_PULL) != 0;
}

/* ---- start ---- */

static void login_host(const struct config *cfg, char *out, size_t size)
{
    char host[256];
    int port;
    if (config_listen_addr(cfg, host, sizeof(host), &port) != 0) {
        snprintf(out, size, "%s", cfg->listen);
        return;
    }
    if (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
        snprintf(host, sizeof(host), "localhost");
    snprintf(out, size, strchr(host, ':') != NULL ? "[%s]:%d" : "%s:%d", host, port);
}

/* First start without users: creates "admin" with a random password, shown once. */
static int first_admin(const struct config *cfg)
{
    struct db *db;
    char pw[64], host[300];
    int n, rc;
    if (db_open(cfg->data, &db) != 0)
        return -1;
    if ((n = authdb_user_count(db)) != 0) {
        db_close(db);
        return n > 0 ? 0 : -1;
    }
    authdb_random_password(pw, sizeof(pw));
    if ((rc = db_begin(db)) == 0 && authdb_user_count(db) > 0) { /* another node on the same PostgreSQL won */
        db_rollback(db);
        db_close(db);
        sodium_memzero(pw, sizeof(pw));
        return 0;
    }
    if (rc == 0 && (rc = authdb_user_add(db, "admin", pw, 1)) == 0)
        rc = db_commit(db);
    if (rc != 0)
        db_rollback(db);
    db_close(db);
    if (rc != 0) {
        sodium_memzero(pw, sizeof(pw));
        log_error("cannot create the first admin user");
        return -1;
    }
    login_host(cfg, host, sizeof(host));
    printf("berth: first start: created admin user \"admin\" with password %s\n"
           "berth: it is shown only this once (berth stores only its hash); log in with:\n"
           "    echo '%s' | docker login --username admin --password-stdin %s\n",
           pw, pw, host);
    fflush(stdout);
    sodium_memzero(pw, sizeof(pw));
    return 0;
}

static int auth_start(struct server *srv)
{
    const struct config *cfg = &srv->cfg;
    if (cfg->no_auth)
        return 0;
    if (sodium_init() < 0)
        return -1;
    randombytes_buf(st.secret, sizeof(st.secret));
    if (auth_throttle_start() != 0)
        return -1;
    if (jwt_keys_load(cfg->data, 1, BERTH_JWT_KEY_ROTATE_AGE, &st.keys) != 0) {
        log_error("cannot load or create the token-signing keys in %s/keys", cfg->data);
        return -1;
    }
    st.keys_stamp = jwt_keys_stamp(cfg->data);
    if (auth__basic_start() != 0)
        return -1;
    return first_admin(cfg);
}

const struct module auth_module = {.name = "auth", .init = auth_start};
