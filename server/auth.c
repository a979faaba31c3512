/* auth.c - the per-request gate, the /token endpoint, challenges, and the failed-login rate limit (see auth.h). */
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
#include "err.h"
#include "jwt.h"
#include "log.h"
#include "module.h"
#include "names.h"
#include "respond.h"

/* ---- process state ---- */

static struct {
    pthread_mutex_t lock; /* keyring, cache, fails */
    struct jwt_keyring keys;
    long long keys_mtime;
    time_t keys_checked;
    unsigned char secret[32];           /* process-random key of the cache and rate-limit hashes */
    char dummy_hash[AUTHDB_PWHASH_MAX]; /* verified for unknown users, so that timing does not tell */
    int argon2_running;                 /* concurrent argon2id verifications */
    struct {                            /* remembered successful password checks */
        unsigned char key[32];
        time_t expires;
    } cache[BERTH_AUTH_CACHE_SLOTS];
    struct { /* bearer tokens whose signature was verified: hash of the token -> its claims */
        unsigned char key[32];
        json_t *claims;
        long long exp;
    } jwts[BERTH_AUTH_JWT_CACHE_SLOTS];
    struct { /* failed logins per (address, user) and per address */
        unsigned char key[16];
        time_t start;
        int count;
    } fails[BERTH_AUTH_FAIL_SLOTS];
} st = {.lock = PTHREAD_MUTEX_INITIALIZER};

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

/* A copy of the keyring, reloaded when another process (berth token rotate-key) changed the key files. */
void auth__keys_get(const struct server *srv, struct jwt_keyring *out)
{
    time_t now = time(NULL);
    pthread_mutex_lock(&st.lock);
    if (now - st.keys_checked >= BERTH_JWT_KEY_RELOAD) {
        long long m = jwt_keys_mtime(srv->cfg.data);
        struct jwt_keyring kr;
        st.keys_checked = now;
        if (m != st.keys_mtime && jwt_keys_load(srv->cfg.data, 0, 0, &kr) == 0) {
            st.keys = kr;
            jwt_cache_clear(); /* a key may be gone: verify every token again */
            st.keys_mtime = m;
            log_info("auth: reloaded the token-signing keys (%d)", kr.n);
        }
    }
    *out = st.keys;
    pthread_mutex_unlock(&st.lock);
}

/* ---- rate limit of failed logins ---- */

static void fail_key(const unsigned char *addr, size_t alen, const char *user, unsigned char out[16])
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, st.secret, sizeof(st.secret), 16);
    crypto_generichash_update(&h, addr, alen);
    crypto_generichash_update(&h, (const unsigned char *)(user != NULL ? "u" : "a"), 1);
    if (user != NULL)
        crypto_generichash_update(&h, (const unsigned char *)user, strlen(user));
    crypto_generichash_final(&h, out, 16);
}

/* Failures recorded under `key` within the window (lock held). */
static int fail_count(const unsigned char key[16], time_t now)
{
    unsigned i;
    memcpy(&i, key, sizeof(i));
    i %= BERTH_AUTH_FAIL_SLOTS;
    if (sodium_memcmp(st.fails[i].key, key, 16) != 0 || now - st.fails[i].start >= BERTH_AUTH_FAIL_WINDOW)
        return 0;
    return st.fails[i].count;
}

/* Records one failure (delta 1) or clears the count (delta 0) under `key` (lock held).  The table is fixed-size:
 * a colliding key takes the slot over. */
static void fail_note(const unsigned char key[16], time_t now, int delta)
{
    unsigned i;
    memcpy(&i, key, sizeof(i));
    i %= BERTH_AUTH_FAIL_SLOTS;
    if (sodium_memcmp(st.fails[i].key, key, 16) != 0 || now - st.fails[i].start >= BERTH_AUTH_FAIL_WINDOW) {
        memcpy(st.fails[i].key, key, 16);
        st.fails[i].start = now;
        st.fails[i].count = 0;
    }
    st.fails[i].count = delta ? st.fails[i].count + 1 : 0;
}

struct peer {
    unsigned char raw[16];
    size_t len;
    char text[INET6_ADDRSTRLEN];
};

static void peer_of(h2o_req_t *req, struct peer *p)
{
    struct sockaddr_storage ss;
    socklen_t l = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    memset(p, 0, sizeof(*p));
    snprintf(p->text, sizeof(p->text), "?");
    if (l > 0 && ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (void *)&ss;
        memcpy(p->raw, &a->sin_addr, 4);
        p->len = 4;
        inet_ntop(AF_INET, &a->sin_addr, p->text, sizeof(p->text));
    } else if (l > 0 && ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (void *)&ss;
        memcpy(p->raw, &a->sin6_addr, 16);
        p->len = 16;
        inet_ntop(AF_INET6, &a->sin6_addr, p->text, sizeof(p->text));
    }
}

/* 1 if `user` from `p` has failed too often. */
static int rate_limited(const struct peer *p, const char *user)
{
    unsigned char ku[16], ka[16];
    time_t now = time(NULL);
    int limited;
    fail_key(p->raw, p->len, user, ku);
    fail_key(p->raw, p->len, NULL, ka);
    pthread_mutex_lock(&st.lock);
    limited = fail_count(ku, now) >= BERTH_AUTH_FAIL_MAX_USER || fail_count(ka, now) >= BERTH_AUTH_FAIL_MAX_ADDR;
    pthread_mutex_unlock(&st.lock);
    return limited;
}

static void login_result(const struct peer *p, const char *user, int ok, const char *why)
{
    unsigned char ku[16], ka[16];
    time_t now = time(NULL);
    fail_key(p->raw, p->len, user, ku);
    fail_key(p->raw, p->len, NULL, ka);
    pthread_mutex_lock(&st.lock);
    fail_note(ku, now, !ok);
    if (!ok)
        fail_note(ka, now, 1);
    pthread_mutex_unlock(&st.lock);
    if (!ok)
        log_warn("auth: denied login of '%s' from %s (%s)", user, p->text, why);
}

/* ---- remembered password checks ---- */

static void cache_key(const char *user, const char *pass, size_t plen, const char *pwhash, unsigned char out[32])
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, st.secret, sizeof(st.secret), 32);
    crypto_generichash_update(&h, (const unsigned char *)user, strlen(user) + 1);
    crypto_generichash_update(&h, (const unsigned char *)pass, plen);
    crypto_generichash_update(&h, (const unsigned char *)"", 1);
    crypto_generichash_update(&h, (const unsigned char *)pwhash, strlen(pwhash));
    crypto_generichash_final(&h, out, 32);
}

static int cache_hit(const unsigned char key[32])
{
    unsigned i;
    int hit;
    memcpy(&i, key, sizeof(i));
    i %= BERTH_AUTH_CACHE_SLOTS;
    pthread_mutex_lock(&st.lock);
    hit = st.cache[i].expires > time(NULL) && sodium_memcmp(st.cache[i].key, key, 32) == 0;
    pthread_mutex_unlock(&st.lock);
    return hit;
}

static void cache_put(const unsigned char key[32])
{
    unsigned i;
    memcpy(&i, key, sizeof(i));
    i %= BERTH_AUTH_CACHE_SLOTS;
    pthread_mutex_lock(&st.lock);
    memcpy(st.cache[i].key, key, 32);
    st.cache[i].expires = time(NULL) + BERTH_AUTH_CACHE_TTL;
    pthread_mutex_unlock(&st.lock);
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
 * and every authorization are still checked per request.  Slots are direct-mapped; a reload of the keys empties
 * them.  jansson's reference counts are atomic, and cached claims are never modified.
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
          st.jwts[i].exp > (long long)time(NULL);
    if (hit)
        *claims = json_incref(st.jwts[i].claims);
    pthread_mutex_unlock(&st.lock);
    return hit;
}

static void jwt_cache_put(const struct creds *c, json_t *claims)
{
    unsigned char key[32];
    size_t i = jwt_cache_key(c, key);
    json_t *exp = json_object_get(claims, "exp");
    if (!json_is_integer(exp))
        return;
    pthread_mutex_lock(&st.lock);
    json_decref(st.jwts[i].claims);
    memcpy(st.jwts[i].key, key, 32);
    st.jwts[i].claims = json_incref(claims);
    st.jwts[i].exp = (long long)json_integer_value(exp);
    pthread_mutex_unlock(&st.lock);
}

/* Verifies a bearer token and that its subject still exists.  Returns 0 or BERR_UNAUTHORIZED. */
static int bearer_verify(const struct server *srv, const struct creds *c, struct auth_identity *id)
{
    struct jwt_keyring kr;
    const char *sub, *kind;
    struct db *db = server_db(srv);
    int rc;
    if (!jwt_cache_get(c, &id->claims)) {
        auth__keys_get(srv, &kr);
        rc = jwt_verify(&kr, c->token.base, c->token.len, srv->cfg.auth_service, (long long)time(NULL), &id->claims);
        sodium_memzero(&kr, sizeof(kr));
        if (rc != 0)
            return rc;
        jwt_cache_put(c, id->claims);
    }
    sub = json_string_value(json_object_get(id->claims, "sub"));
    kind = json_string_value(json_object_get(id->claims, "berth_kind"));
    id->bearer = 1;
    snprintf(id->id.name, sizeof(id->id.name), "%s", sub);
    if (strcmp(kind, "user") == 0) {
        struct authdb_user u;
        id->id.kind = AUTH_USER;
        if (db == NULL || authdb_user_get(db, sub, &u) != 0)
            return BERR_UNAUTHORIZED;
        id->id.is_admin = u.is_admin;
    } else if (strcmp(kind, "token") == 0) {
        struct authdb_token t;
        id->id.kind = AUTH_TOKEN;
        if (db == NULL || authdb_token_get(db, sub, &t) != 0 || t.revoked_at != 0 ||
            (t.expires_at != 0 && time(NULL) >= t.expires_at))
            return BERR_UNAUTHORIZED;
    } else if (strcmp(kind, "anonymous") != 0 || sub[0] != '\0') {
        return BERR_UNAUTHORIZED;
    }
    return 0;
}

/* ---- Basic: passwords on the worker pool ---- */

struct basic_job {
    struct job super;
    char user[BERTH_AUTH_NAME_MAX + 1];
    char pwhash[AUTHDB_PWHASH_MAX];
    char pass[BERTH_AUTH_PASSWORD_MAX + 1];
    size_t plen;
    int known, ok;
    unsigned char ckey[32];
    struct peer peer;
    struct auth_identity *id;
    basic_cont_fn cont;
    void *arg;
};

static void basic_run(struct job *job)
{
    struct basic_job *j = (void *)job;
    j->ok = authdb_password_verify(j->pwhash, j->pass, j->plen) == 0 && j->known;
    sodium_memzero(j->pass, sizeof(j->pass));
    pthread_mutex_lock(&st.lock);
    st.argon2_running--;
    pthread_mutex_unlock(&st.lock);
}

static void basic_done(struct job *job, h2o_req_t *req)
{
    struct basic_job *j = (void *)job;
    login_result(&j->peer, j->user, j->ok, j->known ? "wrong password" : "unknown user");
    if (j->ok)
        cache_put(j->ckey);
    sodium_memzero(j->ckey, sizeof(j->ckey));
    if (req != NULL)
        j->cont(req, j->id, j->ok ? 0 : BERR_UNAUTHORIZED, j->arg);
}

/* Checks Basic credentials `c`: robot tokens and remembered passwords at once (returns 0 or a BERR code), other
 * passwords on the worker pool (returns 1; `cont` runs later).  The ECR seam: user "AWS" will verify an ECR
 * authorization token here. */
int auth__basic_verify(struct call *call, struct creds *c, struct auth_identity *id, basic_cont_fn cont, void *arg)
{
    h2o_req_t *req = call->req;
    struct db *db = server_db(call->srv);
    struct authdb_user u;
    struct authdb_token t;
    struct basic_job *j;
    struct peer p;
    unsigned char k[32];
    int busy;
    peer_of(req, &p);
    if (rate_limited(&p, c->user)) {
        log_warn("auth: denied login of '%s' from %s (too many failures)", c->user, p.text);
        return BERR_TOO_MANY_REQUESTS;
    }
    if (db == NULL)
        return BERR_DB;
    if (authdb_name_valid(c->user) != 0) {
        login_result(&p, c->user[0] ? "(invalid name)" : "(empty)", 0, "invalid user name");
        return BERR_UNAUTHORIZED;
    }
    if (authdb_token_get(db, c->user, &t) == 0 && t.revoked_at == 0) {
        int rc = authdb_token_verify(&t, c->pass, c->plen, (long long)time(NULL));
        login_result(&p, c->user, rc == 0, "wrong, expired or revoked token secret");
        if (rc == 0) {
            id->id.kind = AUTH_TOKEN;
            snprintf(id->id.name, sizeof(id->id.name), "%s", c->user);
        }
        return rc;
    }
    if (authdb_user_get(db, c->user, &u) == 0) {
        id->id.kind = AUTH_USER;
        id->id.is_admin = u.is_admin;
        snprintf(id->id.name, sizeof(id->id.name), "%s", c->user);
    } else {
        u.name[0] = '\0';
        snprintf(u.pwhash, sizeof(u.pwhash), "%s", st.dummy_hash);
    }
    cache_key(c->user, c->pass, c->plen, u.pwhash, k);
    if (u.name[0] != '\0' && cache_hit(k)) {
        sodium_memzero(k, sizeof(k));
        return 0;
    }
    pthread_mutex_lock(&st.lock);
    busy = st.argon2_running >= BERTH_AUTH_ARGON2_MAX;
    if (!busy)
        st.argon2_running++;
    pthread_mutex_unlock(&st.lock);
    if (busy)
        return BERR_LOGINS_BUSY; /* the client's load, not a server failure: 429, not 503 */
    if ((j = job_new(call, sizeof(*j), basic_run, basic_done)) == NULL) {
        pthread_mutex_lock(&st.lock);
        st.argon2_running--;
        pthread_mutex_unlock(&st.lock);
        return BERR_NOMEM;
    }
    memcpy(j->ckey, k, sizeof(k));
    sodium_memzero(k, sizeof(k));
    snprintf(j->user, sizeof(j->user), "%s", c->user);
    memcpy(j->pwhash, u.pwhash, sizeof(j->pwhash));
    memcpy(j->pass, c->pass, c->plen);
    j->plen = c->plen;
    j->known = u.name[0] != '\0';
    j->peer = p;
    j->id = id;
    j->cont = cont;
    j->arg = arg;
    job_submit(&j->super);
    return 1;
}

/* ---- challenges and denials ---- */

static const char *realm(const struct server *srv, h2o_req_t *req)
{
    h2o_iovec_t a = req->authority;
    if (srv->cfg.auth_realm[0] != '\0')
        return srv->cfg.auth_realm;
    /* the Host header is echoed into a header: only printable, quote-free and bounded */
    for (size_t i = 0; i < a.len; i++)
        if (a.base[i] == '"' || a.base[i] == '\\' || (unsigned char)a.base[i] < 0x21 || a.len > BERTH_AUTH_REALM_MAX)
            a = h2o_iovec_init(srv->cfg.listen, strlen(srv->cfg.listen));
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

static unsigned allowed_actions(const struct server *srv, const struct auth_identity *id, const char *repo)
{
    struct authdb_grants g;
    struct db *db;
    unsigned a;
    if (id->claims != NULL)
        return jwt_access_actions(id->claims, repo);
    if (id->bearer || (db = server_db(srv)) == NULL || authdb_grants_load(db, &id->id, &g) != 0)
        return 0;
    a = authdb_grants_actions(&g, repo);
    authdb_grants_free(&g);
    return a;
}

/* Runs `next` as `id` (call->who).  Returns next's result. */
static int run_as(struct call *call, handler_fn next, const struct auth_identity *id)
{
    call->who = id;
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

static int decide(struct call *call, handler_fn next, const struct auth_identity *id, int had_creds)
{
    h2o_req_t *req = call->req;
    const struct route *rt = &call->rt;
    const struct server *srv = call->srv;
    unsigned need, allowed;
    char acts[AUTH_ACTIONS_STR_MAX];
    /* _catalog: an anonymous caller who can read nothing is asked to log in, as on every other route */
    if (rt->kind == ROUTE_CATALOG && !had_creds && !can_pull_some(srv, id)) {
        log_msg(LOG_INFO, "auth: challenged an anonymous _catalog request");
        challenge(srv, req, "registry:catalog:*", NULL, BERR_UNAUTHORIZED);
        return 0;
    }
    if (rt->kind == ROUTE_CATALOG || (rt->kind == ROUTE_BASE && had_creds))
        return run_as(call, next, id);
    if (rt->kind == ROUTE_BASE) {
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
            id->id.name,
            need == AUTH_PULL   ? "pull"
            : need == AUTH_PUSH ? "push"
                                : "delete",
            rt->name);
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
                     rt->name);
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
        auth__reject_creds(srv, req, BERR_UNAUTHORIZED, 0);
        return 0;
    }
}

int auth_can(const struct call *call, const char *repo, unsigned actions)
{
    const struct auth_identity *current = call->who;
    char acts[AUTH_ACTIONS_STR_MAX];
    if (call->srv->cfg.no_auth)
        return 1;
    if (current != NULL && (allowed_actions(call->srv, current, repo) & actions) == actions)
        return 1;
    authdb_actions_format(actions, acts, sizeof(acts));
    log_warn("auth: denied %s '%s': %s on repository %s",
             current != NULL ? auth__kind_name(current->id.kind) : "unknown", current != NULL ? current->id.name : "",
             acts, repo);
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
    if ((rc = db_begin(db)) == 0 && (rc = authdb_user_add(db, "admin", pw, 1)) == 0)
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
    char pw[64];
    if (cfg->no_auth)
        return 0;
    if (sodium_init() < 0)
        return -1;
    randombytes_buf(st.secret, sizeof(st.secret));
    if (jwt_keys_load(cfg->data, 1, BERTH_JWT_KEY_ROTATE_AGE, &st.keys) != 0) {
        log_error("cannot load or create the token-signing keys in %s/keys", cfg->data);
        return -1;
    }
    st.keys_mtime = jwt_keys_mtime(cfg->data);
    st.keys_checked = time(NULL);
    authdb_random_password(pw, sizeof(pw));
    if (authdb_password_hash(pw, st.dummy_hash) != 0)
        return -1;
    sodium_memzero(pw, sizeof(pw));
    return first_admin(cfg);
}

const struct module auth_module = {.name = "auth", .init = auth_start};
