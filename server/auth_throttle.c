/*
 * auth_throttle.c - the failed-login rate limit (see auth_internal.h): failures counted per (address, user) and
 * per address in a fixed table of BERTH_AUTH_FAIL_SLOTS, under keys hashed with a process secret, over a window of
 * BERTH_AUTH_FAIL_WINDOW s.  With metadata = postgresql the secret is the cluster's (authfail.h), every failure and
 * success is also queued for the shared table, and subjects over a limit cluster-wide are imported into this table:
 * the limit holds for the cluster, not per node.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <sodium.h>
#include "auth_internal.h"
#include "authfail.h"
#include "defaults.h"
#include "log.h"

static struct {
    pthread_mutex_t lock;     /* fails */
    unsigned char secret[32]; /* process-random key of the hashes */
    struct {                  /* failed logins per (address, user) and per address */
        unsigned char key[16];
        time_t start;
        int count;
    } fails[BERTH_AUTH_FAIL_SLOTS];
} st = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The slot of `key` in *slot; 1 if it holds `key` within the window, 0 if it is free, stale or another key's (lock
 * held).  The table is fixed-size: a colliding key takes the slot over. */
static int slot_live(const unsigned char key[16], time_t now, unsigned *slot)
{
    unsigned i;
    memcpy(&i, key, sizeof(i));
    i %= BERTH_AUTH_FAIL_SLOTS;
    *slot = i;
    return sodium_memcmp(st.fails[i].key, key, 16) == 0 && now - st.fails[i].start < BERTH_AUTH_FAIL_WINDOW;
}

/* Raises the local count of `key` to a cluster-wide `count` since `start` (authfail's thread). */
static void import(int kind, const unsigned char key[16], long long start, int count)
{
    time_t now = time(NULL);
    unsigned i;
    (void)kind;
    pthread_mutex_lock(&st.lock);
    if (!slot_live(key, now, &i)) {
        memcpy(st.fails[i].key, key, 16);
        st.fails[i].start = (time_t)start;
        st.fails[i].count = count;
    } else {
        st.fails[i].start = (time_t)start < st.fails[i].start ? (time_t)start : st.fails[i].start;
        st.fails[i].count = count > st.fails[i].count ? count : st.fails[i].count;
    }
    pthread_mutex_unlock(&st.lock);
}

int auth_throttle_start(void)
{
    if (!authfail_shared()) {
        randombytes_buf(st.secret, sizeof(st.secret));
        return 0;
    }
    if (authfail_secret(st.secret) != 0)
        return -1;
    authfail_watch(AUTHFAIL_LOGIN_USER, BERTH_AUTH_FAIL_MAX_USER, BERTH_AUTH_FAIL_WINDOW, import);
    authfail_watch(AUTHFAIL_LOGIN_ADDR, BERTH_AUTH_FAIL_MAX_ADDR, BERTH_AUTH_FAIL_WINDOW, import);
    return 0;
}

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
    return slot_live(key, now, &i) ? st.fails[i].count : 0;
}

/* Records one failure (delta 1) or clears the count (delta 0) under `key` (lock held). */
static void fail_note(const unsigned char key[16], time_t now, int delta)
{
    unsigned i;
    if (!slot_live(key, now, &i)) {
        memcpy(st.fails[i].key, key, 16);
        st.fails[i].start = now;
        st.fails[i].count = 0;
    }
    st.fails[i].count = delta ? st.fails[i].count + 1 : 0;
}

void auth_throttle_peer_of(h2o_req_t *req, struct auth_throttle_peer *p)
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

int auth_throttle_limited(const struct auth_throttle_peer *p, const char *user)
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

void auth_throttle_result(const struct auth_throttle_peer *p, const char *user, size_t ulen, int ok, const char *why)
{
    unsigned char ku[16], ka[16];
    char esc[LOG_ESCAPED_MAX(BERTH_AUTH_NAME_MAX + 2)];
    time_t now = time(NULL);
    fail_key(p->raw, p->len, user, ku);
    fail_key(p->raw, p->len, NULL, ka);
    pthread_mutex_lock(&st.lock);
    fail_note(ku, now, !ok);
    if (!ok)
        fail_note(ka, now, 1);
    pthread_mutex_unlock(&st.lock);
    authfail_note(AUTHFAIL_LOGIN_USER, ku, now, !ok); /* nothing on SQLite */
    if (!ok)
        authfail_note(AUTHFAIL_LOGIN_ADDR, ka, now, 1);
    if (!ok)
        log_warn("auth: denied login of '%s' from %s (%s)", log_escape(user, ulen, esc, sizeof(esc)), p->text, why);
}
