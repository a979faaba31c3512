/*
 * ecr_auth.c - who is calling the ECR API: SigV4 verification with access keys (the derived signing key cached per
 * thread), the rate limit of failed signatures per client address and per access key id, and the process-wide
 * keys loaded once at start (the access-key sealing key, the registry id).  See ecr_internal.h.
 *
 * Rate limit: every refused signature (unknown or revoked key, wrong secret, changed body, stale date, another
 * region, malformed Authorization) counts once for the client's address and once for the key id it named.  Past
 * BERTH_ECR_AUTH_FAIL_MAX_ADDR (address) or BERTH_ECR_AUTH_FAIL_MAX_KEY (key id) failures within
 * BERTH_ECR_AUTH_FAIL_WINDOW seconds of the first, every request from that address or naming that key is refused
 * with ECR's ThrottlingException (HTTP 400, which the AWS SDKs and CLI retry with backoff) before any signature
 * work, until the window ends.  Throttled requests do not count as failures, so a retrying client is not locked
 * out for longer.  The table is fixed-size, keyed by a process-random hash, and probed over FAIL_PROBE slots: a new
 * entry takes a free or expired slot, else evicts the one with the fewest failures, so that spraying many key ids
 * cannot flush an address's count (nor another key's).  With metadata = postgresql the hash key is the cluster's,
 * every failure is also queued for the shared table, and subjects over a limit cluster-wide are imported into this
 * table every AUTHFAIL_POLL_MS (authfail.h): the allow path stays one atomic load, the limit holds for the cluster.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sodium.h>
#include "authfail.h"
#include "ecr.h"
#include "ecr_internal.h"
#include "err.h"
#include "log.h"
#include "metrics.h"

#define KEY_CACHE_SLOTS 8 /* derived signing keys remembered per thread (keys x days in use at once) */
#define FAIL_PROBE 8      /* rate-limit slots probed per key */

static struct {
    unsigned char box[ACCESSKEY_BOXKEY_BYTES];
    char registry_id[ECRDB_REGISTRY_ID_LEN + 1];
    unsigned char hash_key[crypto_generichash_KEYBYTES]; /* of the rate-limit table */
    pthread_mutex_t lock;                                /* the table */
    atomic_llong last_fail;                              /* when the last failure was noted (0: never) */
    struct {
        unsigned char key[16];
        long long start;
        int count;
    } fails[BERTH_ECR_AUTH_FAIL_SLOTS];
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- start ---- */

struct rid_args {
    const struct server *srv;
    char *out;
};

static int registry_id_op(struct db *db, void *arg)
{
    struct rid_args *a = arg;
    int rc = ecrdb_registry_id(db, a->srv->cfg.registry_id, a->out);
    return rc == BERR_NOT_FOUND ? ecrdb_registry_id_init(db, a->srv->cfg.data, a->out) : rc;
}

/* Reads the stored (or configured) registry id on a connection of its own.  Returns 0, or non-zero if it is not
 * stored yet or cannot be read (the caller then derives and stores it through the writer). */
static int registry_id_read(const struct server *srv, char *out)
{
    struct db *db;
    int rc;
    if (db_open(srv->cfg.data, &db) != 0)
        return -1;
    rc = ecrdb_registry_id(db, srv->cfg.registry_id, out);
    db_close(db);
    return rc;
}

static int fails_share(void);

int ecr_auth_init(struct server *srv)
{
    struct rid_args a = {srv, g.registry_id};
    if (fails_share() != 0)
        return -1;
    if (accesskey_boxkey_load(srv->cfg.data, 1, g.box) != 0) {
        log_error("ecr: cannot read or create the access-key sealing key in %s/keys", srv->cfg.data);
        return -1;
    }
    if (registry_id_read(srv, g.registry_id) == 0) /* every start but the first: a read, no write batch */
        return 0;
    if (writer_run(registry_id_op, &a) != 0) {
        log_error("ecr: cannot read or store the registry id");
        return -1;
    }
    return 0;
}

const char *ecr_registry_id(void)
{
    return g.registry_id;
}

void ecr_boxkey(unsigned char out[ACCESSKEY_BOXKEY_BYTES])
{
    memcpy(out, g.box, ACCESSKEY_BOXKEY_BYTES);
}

/* ---- rate limit of failed signatures ---- */

static void fail_key(char kind, const void *v, size_t len, unsigned char out[16])
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, g.hash_key, sizeof(g.hash_key), 16);
    crypto_generichash_update(&h, (const unsigned char *)&kind, 1);
    crypto_generichash_update(&h, v, len);
    crypto_generichash_final(&h, out, 16);
}

static size_t slot_of(const unsigned char key[16])
{
    unsigned i;
    memcpy(&i, key, sizeof(i));
    return i % BERTH_ECR_AUTH_FAIL_SLOTS;
}

static int live(size_t i, long long now)
{
    return g.fails[i].count > 0 && now - g.fails[i].start < BERTH_ECR_AUTH_FAIL_WINDOW;
}

/* The live slot of `key`, or -1 (lock held). */
static long find_slot(const unsigned char key[16], long long now)
{
    for (size_t k = 0, i = slot_of(key); k < FAIL_PROBE; k++, i = (i + 1) % BERTH_ECR_AUTH_FAIL_SLOTS)
        if (live(i, now) && memcmp(g.fails[i].key, key, 16) == 0)
            return (long)i;
    return -1;
}

/* Failures under `key` within the window (lock held). */
static int fail_count(const unsigned char key[16], long long now)
{
    long i = find_slot(key, now);
    return i < 0 ? 0 : g.fails[i].count;
}

/* Adds one failure under `key`, or with `set` > 0 raises its count to `set` since `start` (lock held). */
static void fail_add(const unsigned char key[16], long long now, long long start, int set)
{
    long i = find_slot(key, now);
    if (i < 0) { /* a free or expired slot, else the one with the fewest failures */
        size_t best = slot_of(key);
        for (size_t k = 0, j = best; k < FAIL_PROBE; k++, j = (j + 1) % BERTH_ECR_AUTH_FAIL_SLOTS) {
            if (!live(j, now)) {
                best = j;
                break;
            }
            if (g.fails[j].count < g.fails[best].count)
                best = j;
        }
        i = (long)best;
        memcpy(g.fails[i].key, key, 16);
        g.fails[i].start = start;
        g.fails[i].count = 0;
    }
    if (set == 0) {
        g.fails[i].count++;
    } else {
        g.fails[i].start = start < g.fails[i].start ? start : g.fails[i].start;
        g.fails[i].count = set > g.fails[i].count ? set : g.fails[i].count;
    }
}

static void fail_note(const unsigned char key[16], long long now)
{
    fail_add(key, now, now, 0);
}

/* Raises the local count of `key` to a cluster-wide `count` since `start` (authfail's thread). */
static void import(int kind, const unsigned char key[16], long long start, int count)
{
    long long now = (long long)time(NULL);
    (void)kind;
    if (count <= 0 || now - start >= BERTH_ECR_AUTH_FAIL_WINDOW)
        return;
    pthread_mutex_lock(&g.lock);
    fail_add(key, now, start, count);
    pthread_mutex_unlock(&g.lock);
    atomic_store(&g.last_fail, now); /* ecr_auth_throttled looks again */
}

/* The table's hash key: the cluster's with metadata = postgresql (then failures are shared), else process-random.
 * Returns 0 or -1 (logged). */
static int fails_share(void)
{
    if (!authfail_shared()) {
        randombytes_buf(g.hash_key, sizeof(g.hash_key));
        return 0;
    }
    _Static_assert(sizeof(g.hash_key) == AUTHFAIL_KEY_BYTES, "the shared key fits the table's hash key");
    if (authfail_secret(g.hash_key) != 0)
        return -1;
    authfail_watch(AUTHFAIL_ECR_ADDR, BERTH_ECR_AUTH_FAIL_MAX_ADDR, BERTH_ECR_AUTH_FAIL_WINDOW, import);
    authfail_watch(AUTHFAIL_ECR_KEY, BERTH_ECR_AUTH_FAIL_MAX_KEY, BERTH_ECR_AUTH_FAIL_WINDOW, import);
    return 0;
}

/* The key id named by the Credential of an Authorization value (may be ""), into `out`. */
static void credential_key_id(const char *v, size_t len, char out[SIGV4_KEY_ID_MAX + 1])
{
    const char *p = memmem(v, len, "Credential=", 11), *end = v + len, *q;
    out[0] = '\0';
    if (p == NULL)
        return;
    p += 11;
    for (q = p; q < end && *q != '/' && *q != ',' && *q != ' '; q++)
        ;
    if ((size_t)(q - p) <= SIGV4_KEY_ID_MAX) {
        memcpy(out, p, (size_t)(q - p));
        out[q - p] = '\0';
    }
}

/* Records one refused signature of `c` naming `key_id`. */
static void note_failure(struct ecr_ctx *c, const char *key_id)
{
    unsigned char ka[16], kk[16];
    fail_key('a', c->peer, c->peer_len, ka);
    fail_key('k', key_id, strlen(key_id), kk);
    pthread_mutex_lock(&g.lock);
    fail_note(ka, c->now);
    if (key_id[0] != '\0')
        fail_note(kk, c->now);
    pthread_mutex_unlock(&g.lock);
    atomic_store(&g.last_fail, c->now);
    authfail_note(AUTHFAIL_ECR_ADDR, ka, c->now, 1); /* nothing on SQLite */
    if (key_id[0] != '\0')
        authfail_note(AUTHFAIL_ECR_KEY, kk, c->now, 1);
}

int ecr_auth_throttled(struct ecr_ctx *c, const char *authorization, size_t len)
{
    char id[SIGV4_KEY_ID_MAX + 1];
    unsigned char ka[16], kk[16];
    int by_addr, by_key = 0;
    long long last = atomic_load(&g.last_fail);
    if (last == 0 || c->now - last >= BERTH_ECR_AUTH_FAIL_WINDOW)
        return 0; /* no failure lately: the common case costs one atomic load */
    credential_key_id(authorization, len, id);
    fail_key('a', c->peer, c->peer_len, ka);
    fail_key('k', id, strlen(id), kk);
    pthread_mutex_lock(&g.lock);
    by_addr = fail_count(ka, c->now) >= BERTH_ECR_AUTH_FAIL_MAX_ADDR;
    if (id[0] != '\0')
        by_key = fail_count(kk, c->now) >= BERTH_ECR_AUTH_FAIL_MAX_KEY;
    pthread_mutex_unlock(&g.lock);
    if (!by_addr && !by_key)
        return 0;
    metrics_add(METRIC_AUTH_FAIL_RATE_LIMITED, 1);
    log_warn("ecr: throttled %s (too many failed signatures from this %s)", c->op, by_addr ? "address" : "key id");
    ecr_fail(c, "ThrottlingException",
             "Rate exceeded: too many requests with an invalid signature from this %s; retry after %d seconds.",
             by_addr ? "address" : "access key", BERTH_ECR_AUTH_FAIL_WINDOW);
    return 1;
}

/* ---- signature ---- */

/* Signing keys derived lately on this thread: (key id, secret, day) -> key.  The region and service are fixed. */
static _Thread_local struct {
    char id[ACCESSKEY_ID_LEN + 1];
    char secret[ACCESSKEY_SECRET_LEN + 1];
    char date[9];
    unsigned char key[32];
} key_cache[KEY_CACHE_SLOTS];
static _Thread_local unsigned key_cache_next;

/* The signing key of (key, secret, auth's day) for `region` and `service`, derived or remembered. */
static void signing_key(const struct ecr_ctx *c, const struct sigv4_auth *a, unsigned char key[32])
{
    size_t slen = strlen(c->secret);
    for (unsigned i = 0; i < KEY_CACHE_SLOTS; i++)
        if (strcmp(key_cache[i].id, c->key.id) == 0 && strcmp(key_cache[i].date, a->date) == 0 &&
            strlen(key_cache[i].secret) == slen && sodium_memcmp(key_cache[i].secret, c->secret, slen) == 0) {
            memcpy(key, key_cache[i].key, 32);
            return;
        }
    sigv4_signing_key(c->secret, slen, a->date, c->region, ECR_SERVICE, key);
    unsigned i = key_cache_next++ % KEY_CACHE_SLOTS;
    snprintf(key_cache[i].id, sizeof(key_cache[i].id), "%s", c->key.id);
    snprintf(key_cache[i].secret, sizeof(key_cache[i].secret), "%s", c->secret);
    snprintf(key_cache[i].date, sizeof(key_cache[i].date), "%s", a->date);
    memcpy(key_cache[i].key, key, 32);
}

static const struct sigv4_header *find(const struct sigv4_request *sr, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < sr->nheaders; i++)
        if (sr->headers[i].name_len == n && strncasecmp(sr->headers[i].name, name, n) == 0)
            return &sr->headers[i];
    return NULL;
}

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

/* Looks up the access key named by `a` and opens its secret into c.  Returns 0 or -1 after ecr_fail. */
static int load_key(struct ecr_ctx *c, const struct sigv4_auth *a, struct authdb_user *u)
{
    unsigned char box[ACCESSKEY_BOXKEY_BYTES];
    int rc;
    ecr_boxkey(box);
    rc = accesskey_id_valid(a->key_id, strlen(a->key_id)) == 0
             ? accesskey_secret(c->db, box, a->key_id, &c->key, c->secret)
             : BERR_NOT_FOUND;
    sodium_memzero(box, sizeof(box));
    if (rc == BERR_NOT_FOUND || (rc == 0 && authdb_user_get(c->db, c->key.user, u) != 0)) {
        log_warn("ecr: denied %s (unknown, revoked or ownerless access key %.*s)", c->op, 20, a->key_id);
        metrics_add(METRIC_AUTH_FAIL_BAD_CREDENTIALS, 1);
        note_failure(c, a->key_id);
        ecr_fail(c, "UnrecognizedClientException", "The security token included in the request is invalid.");
        return -1;
    }
    if (rc != 0) {
        ecr_fail(c, "ServerException", "cannot read access key");
        return -1;
    }
    return 0;
}

int ecr_authenticate(struct ecr_ctx *c, struct sigv4_request *sr, const char *body, size_t len)
{
    const struct sigv4_header *az = find(sr, "authorization"), *date = find(sr, "x-amz-date");
    char hash[SIGV4_HEX_LEN + 1];
    unsigned char key[32];
    struct sigv4_auth a;
    struct authdb_user u;
    int rc;
    if (az == NULL) {
        metrics_add(METRIC_AUTH_FAIL_NO_CREDENTIALS, 1);
        ecr_fail(c, "MissingAuthenticationTokenException", "Missing Authentication Token");
        c->status = 403;
        return -1;
    }
    if (ecr_bearer_is(az->value, az->value_len)) { /* a token from /token instead of SigV4: ecr_bearer.c */
        if ((rc = ecr_bearer_authenticate(c, az->value, az->value_len)) != 0 && c->status == 400) {
            metrics_add(METRIC_AUTH_FAIL_INVALID_TOKEN, 1);
            note_failure(c, ""); /* counts for the address */
        }
        return rc;
    }
    if (sigv4_parse_authorization(az->value, az->value_len, &a) != 0) {
        char id[SIGV4_KEY_ID_MAX + 1];
        credential_key_id(az->value, az->value_len, id);
        metrics_add(METRIC_AUTH_FAIL_MALFORMED, 1);
        note_failure(c, id);
        ecr_fail(c, "IncompleteSignatureException",
                 "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters with "
                 "algorithm AWS4-HMAC-SHA256.");
        return -1;
    }
    if (load_key(c, &a, &u) != 0)
        return -1;
    sigv4_sha256_hex(body, len, hash);
    sr->payload_hash = hash;
    if ((rc = sigv4_verify_prepare(sr, &a, c->region, ECR_SERVICE, (time_t)c->now)) == 0) {
        signing_key(c, &a, key);
        rc = sigv4_verify_key(sr, &a, key);
        sodium_memzero(key, sizeof(key));
    }
    sr->payload_hash = NULL;
    if (rc != 0) {
        log_warn("ecr: denied %s for key %s of user %s (%s)", c->op, c->key.id, c->key.user, sigv4_strerror(rc));
        metrics_add(METRIC_AUTH_FAIL_BAD_CREDENTIALS, 1);
        note_failure(c, a.key_id);
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
