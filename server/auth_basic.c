/* auth_basic.c - Basic credentials (passwords and robot-token secrets): one argon2id check on the worker pool per
 * login, and the cache of successful checks (auth__basic_verify in auth_internal.h). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sodium.h>
#include "auth.h"
#include "auth_internal.h"
#include "authdb.h"
#include "db.h"
#include "defaults.h"
#include "ecr.h"
#include "err.h"
#include "log.h"
#include "server.h"

/* ---- process state ---- */

static struct {
    pthread_mutex_t lock;               /* argon2_running, cache */
    unsigned char secret[32];           /* process-random key of the cache's hashes */
    char dummy_hash[AUTHDB_PWHASH_MAX]; /* verified for unknown users, so that timing does not tell */
    int argon2_running;                 /* concurrent argon2id verifications */
    struct {                            /* remembered successful password checks */
        unsigned char key[32];
        time_t expires;
    } cache[BERTH_AUTH_CACHE_SLOTS];
} st = {.lock = PTHREAD_MUTEX_INITIALIZER};

int auth__basic_start(void)
{
    char pw[64];
    randombytes_buf(st.secret, sizeof(st.secret));
    authdb_random_password(pw, sizeof(pw));
    if (authdb_password_hash(pw, st.dummy_hash) != 0)
        return -1;
    sodium_memzero(pw, sizeof(pw));
    return 0;
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

/* ---- Basic: passwords on the worker pool ---- */

/*
 * Login timing.  Whether a name is a user, a robot token or nobody must not show in the time a wrong login takes:
 * a token's secret is checked with one BLAKE2b hash (microseconds), a password with argon2id (~80 ms), so robot-
 * token names would be enumerable.  Every login that is not remembered therefore runs the same work: both database
 * lookups (token and user of that name), then one argon2id verification on the worker pool under the same limit
 * (BERTH_AUTH_ARGON2_MAX), against the user's hash for a user and against a process-random dummy hash (same
 * parameters) for a robot token or an unknown name; a token's secret is then compared by its hash, in constant
 * time.  A successful check is remembered for BERTH_AUTH_CACHE_TTL s under a key of (name, secret, stored hash):
 * only a caller who already holds the secret reaches that fast path, so it tells nothing about names.  The other
 * fast answers depend only on what the client sent (rate limit, a control byte, a name outside the grammar).
 */
struct basic_job {
    struct job super;
    char user[BERTH_AUTH_NAME_MAX + 1];
    char pwhash[AUTHDB_PWHASH_MAX]; /* the user's hash, or the dummy one */
    char pass[BERTH_AUTH_PASSWORD_MAX + 1];
    size_t plen;
    enum authdb_kind kind; /* AUTH_USER, AUTH_TOKEN, or AUTH_ANONYMOUS for an unknown name */
    struct authdb_token token;
    int ok;
    unsigned char ckey[32];
    struct auth_throttle_peer peer;
    struct auth_identity *id;
    basic_cont_fn cont;
    void *arg;
};

static void basic_run(struct job *job)
{
    struct basic_job *j = (void *)job;
    int pw_ok = authdb_password_verify(j->pwhash, j->pass, j->plen) == 0; /* the same work for all three kinds */
    if (j->kind == AUTH_USER)
        j->ok = pw_ok;
    else if (j->kind == AUTH_TOKEN)
        j->ok = authdb_token_verify(&j->token, j->pass, j->plen, (long long)time(NULL)) == 0;
    else
        j->ok = 0;
    sodium_memzero(j->pass, sizeof(j->pass));
    pthread_mutex_lock(&st.lock);
    st.argon2_running--;
    pthread_mutex_unlock(&st.lock);
}

static void basic_done(struct job *job, h2o_req_t *req)
{
    struct basic_job *j = (void *)job;
    auth_throttle_result(&j->peer, j->user, strlen(j->user), j->ok,
                         j->kind == AUTH_USER    ? "wrong password"
                         : j->kind == AUTH_TOKEN ? "wrong, expired or revoked token secret"
                                                 : "unknown user");
    if (j->ok)
        cache_put(j->ckey);
    sodium_memzero(j->ckey, sizeof(j->ckey));
    if (req != NULL)
        j->cont(req, j->id, j->ok ? 0 : BERR_UNAUTHORIZED, j->arg);
}

/* What a remembered check of a robot token is keyed on: its secret's hash and its uid. */
static void token_stored(const struct authdb_token *t, char out[AUTHDB_PWHASH_MAX])
{
    memcpy(out, "token:", 6);
    sodium_bin2hex(out + 6, 2 * sizeof(t->secret_hash) + 1, t->secret_hash, sizeof(t->secret_hash));
    snprintf(out + 6 + 2 * sizeof(t->secret_hash), AUTHDB_PWHASH_MAX - 6 - 2 * sizeof(t->secret_hash), ":%s", t->uid);
}

/* Queues the argon2id check of `c` for the login described by `j`'s kind and hash.  Returns 1, or a BERR code. */
static int basic_submit(struct call *call, const struct creds *c, struct basic_job *proto, basic_cont_fn cont,
                        void *arg)
{
    struct basic_job *j;
    int busy;
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
    memcpy(j->ckey, proto->ckey, sizeof(j->ckey));
    snprintf(j->user, sizeof(j->user), "%s", c->user);
    memcpy(j->pwhash, proto->pwhash, sizeof(j->pwhash));
    memcpy(j->pass, c->pass, c->plen);
    j->plen = c->plen;
    j->kind = proto->kind;
    j->token = proto->token;
    j->peer = proto->peer;
    j->id = proto->id;
    j->cont = cont;
    j->arg = arg;
    log_debug("auth: password check on the worker pool");
    job_submit(&j->super);
    return 1;
}

/* 1 if the user name or password of `c` holds a control byte (NUL included) or DEL.  Bytes >= 0x80 (UTF-8) are
 * allowed in passwords; user names are further restricted by authdb_name_valid. */
static int creds_have_control(const struct creds *c)
{
    for (size_t i = 0; i < c->ulen; i++)
        if ((unsigned char)c->user[i] < 0x20 || c->user[i] == 0x7f)
            return 1;
    for (size_t i = 0; i < c->plen; i++)
        if ((unsigned char)c->pass[i] < 0x20 || c->pass[i] == 0x7f)
            return 1;
    return 0;
}

/* Checks Basic credentials `c`: remembered checks at once (returns 0 or a BERR code), all others with one argon2id
 * verification on the worker pool (returns 1; `cont` runs later; see "Login timing").  The ECR seam: user "AWS" will
 * verify an ECR authorization token here. */
int auth__basic_verify(struct call *call, struct creds *c, struct auth_identity *id, basic_cont_fn cont, void *arg)
{
    h2o_req_t *req = call->req;
    struct db *db = server_db(call->srv);
    struct authdb_user u;
    struct basic_job proto;
    struct auth_throttle_peer p;
    char esc[LOG_ESCAPED_MAX(sizeof(c->user))], stored[AUTHDB_PWHASH_MAX];
    int is_token, is_user, rc;
    auth_throttle_peer_of(req, &p);
    if (auth_throttle_limited(&p, c->user)) {
        log_warn("auth: denied login of '%s' from %s (too many failures)",
                 log_escape(c->user, c->ulen, esc, sizeof(esc)), p.text);
        return BERR_TOO_MANY_REQUESTS;
    }
    if (db == NULL)
        return BERR_DB;
    if (creds_have_control(c)) { /* "bob\0x" must not log in as "bob" */
        auth_throttle_result(&p, c->user, c->ulen, 0, "control byte in the user name or password");
        return BERR_UNAUTHORIZED;
    }
    if (strcmp(c->user, ECR_LOGIN_USER) == 0) { /* the ECR login flow: an authorization token (ecr.h) */
        rc = ecr_login(call->srv, db, c->pass, c->plen, &id->id, id->ecr_key);
        auth_throttle_result(&p, c->user, c->ulen, rc == 0, "invalid, expired or revoked ECR authorization token");
        return rc == 0 ? 0 : BERR_UNAUTHORIZED;
    }
    if (authdb_name_valid(c->user) != 0) {
        auth_throttle_result(&p, c->user, c->ulen, 0, "invalid user name");
        return BERR_UNAUTHORIZED;
    }
    /* both lookups for every name (see "Login timing" above) */
    memset(&proto, 0, sizeof(proto));
    is_token = authdb_token_get(db, c->user, &proto.token) == 0 && proto.token.revoked_at == 0;
    is_user = authdb_user_get(db, c->user, &u) == 0;
    snprintf(id->id.name, sizeof(id->id.name), "%s", c->user);
    if (is_token) {
        id->id.kind = proto.kind = AUTH_TOKEN;
        snprintf(id->id.uid, sizeof(id->id.uid), "%s", proto.token.uid);
        token_stored(&proto.token, stored);
        snprintf(proto.pwhash, sizeof(proto.pwhash), "%s", st.dummy_hash);
    } else if (is_user) {
        id->id.kind = proto.kind = AUTH_USER;
        id->id.is_admin = u.is_admin;
        snprintf(id->id.uid, sizeof(id->id.uid), "%s", u.uid);
        snprintf(stored, sizeof(stored), "%s", u.pwhash);
        snprintf(proto.pwhash, sizeof(proto.pwhash), "%s", u.pwhash);
    } else {
        proto.kind = AUTH_ANONYMOUS;
        snprintf(stored, sizeof(stored), "%s", st.dummy_hash);
        snprintf(proto.pwhash, sizeof(proto.pwhash), "%s", st.dummy_hash);
    }
    cache_key(c->user, c->pass, c->plen, stored, proto.ckey);
    if ((is_token || is_user) && cache_hit(proto.ckey) &&
        (!is_token || authdb_token_verify(&proto.token, c->pass, c->plen, (long long)time(NULL)) == 0)) {
        sodium_memzero(proto.ckey, sizeof(proto.ckey));
        return 0;
    }
    proto.peer = p;
    proto.id = id;
    rc = basic_submit(call, c, &proto, cont, arg);
    sodium_memzero(proto.ckey, sizeof(proto.ckey));
    return rc;
}
