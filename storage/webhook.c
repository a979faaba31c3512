/* webhook.c - the delivery threads of webhook.h: cursor, batch, envelope, signature, retry with backoff. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "authdb.h"
#include "err.h"
#include "events.h"
#include "log.h"
#include "version.h"
#include "webhook.h"

/* ---- configuration ---- */

/* Applies one `key=value` option of a webhook line. */
static int parse_option(const char *opt, struct webhook_conf *w, char *err, size_t errlen)
{
    const char *v = strchr(opt, '=');
    size_t kl = v != NULL ? (size_t)(v - opt) : 0;
    if (v == NULL)
        goto bad;
    v++;
    if (kl == 6 && strncmp(opt, "secret", 6) == 0 && v[0] != '\0' && strlen(v) <= WEBHOOK_SECRET_MAX) {
        memcpy(w->secret, v, strlen(v) + 1);
        return 0;
    }
    if (kl == 6 && strncmp(opt, "events", 6) == 0) {
        if (events_parse_actions(v, &w->actions) == 0)
            return 0;
        snprintf(err, errlen, "webhook events=%s: want a comma-separated list of push, pull, delete, tag, expire, gc",
                 v);
        return BERR_BAD_REQUEST;
    }
    if (kl == 10 && strncmp(opt, "repository", 10) == 0 && authdb_pattern_valid(v) == 0) {
        snprintf(w->pattern, sizeof(w->pattern), "%s", v);
        return 0;
    }
bad:
    snprintf(err, errlen, "webhook: invalid option '%.*s' (want secret=S, events=LIST, repository=PATTERN)",
             (int)(v != NULL ? (size_t)(v - opt - 1) : strlen(opt)), opt);
    return BERR_BAD_REQUEST;
}

int webhook_parse(const char *value, struct webhook_conf *out, char *err, size_t errlen)
{
    char buf[BERTH_WEBHOOK_LINE_MAX], *save = NULL, *tok;
    int rc;
    memset(out, 0, sizeof(*out));
    out->actions = EVENT_BITS_ALL;
    if (strlen(value) >= sizeof(buf)) {
        snprintf(err, errlen, "webhook: line longer than %d bytes", BERTH_WEBHOOK_LINE_MAX - 1);
        return BERR_BAD_REQUEST;
    }
    memcpy(buf, value, strlen(value) + 1);
    tok = strtok_r(buf, " \t", &save);
    if (tok == NULL || strlen(tok) > WEBHOOK_URL_MAX || httpc_parse_url(tok, &out->u) != 0) {
        snprintf(err, errlen, "webhook: want an http:// or https:// URL first (without user:password@)");
        return BERR_BAD_REQUEST;
    }
    memcpy(out->url, tok, strlen(tok) + 1);
    while ((tok = strtok_r(NULL, " \t", &save)) != NULL)
        if ((rc = parse_option(tok, out, err, errlen)) != 0)
            return rc;
    return 0;
}

void webhook_sign(const char *secret, const void *body, size_t len, char out[65])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), body, len, mac, &maclen);
    for (unsigned i = 0; i < maclen && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
    out[64] = '\0';
}

/* ---- threads ---- */

struct hook {
    struct webhook_conf conf;
    pthread_t tid;
    struct db *db;
    int64_t cursor;
    /* the batch being built */
    json_t *events;
    int64_t scanned_last;
    int scanned;
    int leader;       /* this node delivers this webhook (metadata = postgresql: one node per URL, db_named_trylock) */
    unsigned session; /* db_session when the lock was taken: another value means the lock went with the session */
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stopping, n;
    struct hook *hooks;
    pthread_t pruner;
    int pruner_started;
    long long retention; /* seconds */
    char datadir[4096], registry_url[512], source_addr[512];
} wh = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

/* Sleeps `ms` unless stopping.  Returns 1 if stopping. */
static int nap(int ms)
{
    struct timespec ts;
    int stop;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&wh.lock);
    while (!wh.stopping && pthread_cond_timedwait(&wh.wake, &wh.lock, &ts) != ETIMEDOUT)
        ;
    stop = wh.stopping;
    pthread_mutex_unlock(&wh.lock);
    return stop;
}

static int stopping(void)
{
    int s;
    pthread_mutex_lock(&wh.lock);
    s = wh.stopping;
    pthread_mutex_unlock(&wh.lock);
    return s;
}

/* Reads the stored cursor of `h` into h->cursor.  Returns 0, 1 if there is none, or a BERR code. */
static int read_cursor(struct hook *h)
{
    struct db_stmt *st;
    int rc;
    if ((st = db_prepare(h->db, "SELECT last_id FROM webhook_cursors WHERE webhook = ?")) == NULL)
        return db_error(h->db);
    db_bind_text(st, 1, h->conf.url, -1);
    rc = db_step(st);
    if (rc == DB_ROW)
        h->cursor = db_column_int64(st, 0);
    db_finalize(st);
    return rc == DB_ROW ? 0 : rc == DB_DONE ? 1 : db_error(h->db);
}

/* Loads the cursor of `h`.  A webhook seen for the first time starts at the newest event, and that cursor is
 * stored at once (unless a node sharing the database stored one first): a node taking the delivery over after this
 * one died must resume where this one started, not at the newest event of its own take-over. */
static int load_cursor(struct hook *h)
{
    struct db_stmt *st;
    int64_t newest;
    int rc;
    if ((rc = read_cursor(h)) <= 0)
        return rc;
    if ((rc = events_last_id(h->db, &newest)) != 0)
        return rc;
    if ((st = db_prepare(h->db, "INSERT INTO webhook_cursors (webhook, last_id, updated_at) VALUES (?, ?, ?) "
                                "ON CONFLICT (webhook) DO NOTHING")) == NULL)
        return db_error(h->db);
    db_bind_text(st, 1, h->conf.url, -1);
    db_bind_int64(st, 2, newest);
    db_bind_int64(st, 3, db_now());
    rc = db_step(st);
    db_finalize(st);
    if (rc != DB_DONE)
        return db_error(h->db);
    return (rc = read_cursor(h)) == 1 ? BERR_DB : rc;
}

static int save_cursor(struct hook *h, int64_t id)
{
    struct db_stmt *st;
    int rc;
    if ((st = db_prepare(h->db, "INSERT INTO webhook_cursors (webhook, last_id, updated_at) VALUES (?, ?, ?) "
                                "ON CONFLICT (webhook) DO UPDATE SET last_id = excluded.last_id, "
                                "updated_at = excluded.updated_at")) == NULL)
        return db_error(h->db);
    db_bind_text(st, 1, h->conf.url, -1);
    db_bind_int64(st, 2, id);
    db_bind_int64(st, 3, db_now());
    rc = db_step(st);
    db_finalize(st);
    if (rc != DB_DONE)
        return db_error(h->db);
    h->cursor = id;
    return 0;
}

static int collect(void *ctx, const struct event_row *row)
{
    struct hook *h = ctx;
    h->scanned_last = row->id;
    h->scanned++;
    if ((events_action_bit(row->ev.action) & h->conf.actions) == 0 ||
        (h->conf.pattern[0] != '\0' && !authdb_pattern_match(h->conf.pattern, row->ev.repository)))
        return 0;
    json_array_append_new(h->events, events_json(row, wh.registry_url, wh.source_addr));
    return json_array_size(h->events) >= BERTH_WEBHOOK_BATCH_MAX;
}

/* POSTs the batch in h->events.  Returns 0 on a 2xx answer. */
static int deliver(struct hook *h, char *err, size_t errlen)
{
    json_t *env = json_pack("{s:O}", "events", h->events);
    char *body = env != NULL ? json_dumps(env, JSON_COMPACT) : NULL;
    char sig[65], sighdr[128];
    const char *headers[4] = {"Content-Type: " WEBHOOK_CONTENT_TYPE, "User-Agent: berth/" BERTH_VERSION};
    size_t nh = 2;
    int status = 0, rc;
    json_decref(env);
    if (body == NULL) {
        snprintf(err, errlen, "out of memory");
        return BERR_NOMEM;
    }
    if (h->conf.secret[0] != '\0') {
        webhook_sign(h->conf.secret, body, strlen(body), sig);
        snprintf(sighdr, sizeof(sighdr), WEBHOOK_SIGNATURE_HEADER ": sha256=%s", sig);
        headers[nh++] = sighdr;
    }
    rc = httpc_post(&h->conf.u, headers, nh, body, strlen(body), BERTH_WEBHOOK_TIMEOUT_MS, &status, err, errlen);
    free(body);
    if (rc == 0 && (status < 200 || status > 299)) {
        snprintf(err, errlen, "the receiver answered %d", status);
        rc = BERR_IO;
    }
    return rc;
}

/* One step: reads events after the cursor, delivers the matching ones.  Returns the milliseconds to wait next. */
static int step(struct hook *h, int *backoff, unsigned long *failures)
{
    char err[512] = "";
    if (h->leader && db_session(h->db) != h->session) { /* reconnected: the lock is gone, maybe to another node */
        h->leader = 0;
        log_warn("webhook %s: the database session holding its delivery lock was lost; delivering again only once "
                 "this node holds the lock again",
                 h->conf.url);
    }
    if (!h->leader) { /* another node delivers it; take over when that node's connection goes away */
        if (!db_named_trylock(h->db, h->conf.url))
            return BERTH_WEBHOOK_POLL_MS;
        h->session = db_session(h->db);
        if (load_cursor(h) != 0)
            return BERTH_WEBHOOK_BACKOFF_MAX_MS;
        h->leader = 1;
        log_info("webhook %s: took the delivery over (the node delivering it stopped), after id %lld", h->conf.url,
                 (long long)h->cursor);
    }
    h->events = json_array();
    h->scanned = 0;
    if (h->events == NULL || events_each(h->db, h->cursor, BERTH_WEBHOOK_SCAN_MAX, collect, h) != 0) {
        json_decref(h->events);
        return BERTH_WEBHOOK_BACKOFF_MIN_MS; /* e.g. a lost connection, re-established for the next step */
    }
    if (h->scanned == 0 || json_array_size(h->events) == 0) {
        json_decref(h->events);
        if (h->scanned > 0)
            save_cursor(h, h->scanned_last); /* nothing for this webhook among them */
        return h->scanned > 0 ? 0 : BERTH_WEBHOOK_POLL_MS;
    }
    if (deliver(h, err, sizeof(err)) == 0) {
        if (*failures > 0)
            log_info("webhook %s: delivering again after %lu failed attempts", h->conf.url, *failures);
        *failures = 0;
        *backoff = 0;
        save_cursor(h, h->scanned_last);
        json_decref(h->events);
        return 0;
    }
    json_decref(h->events);
    *backoff = *backoff == 0
                   ? BERTH_WEBHOOK_BACKOFF_MIN_MS
                   : (*backoff * 2 > BERTH_WEBHOOK_BACKOFF_MAX_MS ? BERTH_WEBHOOK_BACKOFF_MAX_MS : *backoff * 2);
    if ((*failures)++ == 0 || *backoff == BERTH_WEBHOOK_BACKOFF_MAX_MS)
        log_warn("webhook %s: delivery failed (%s); events stay queued, retrying in %d ms", h->conf.url, err, *backoff);
    return *backoff;
}

static void *hook_main(void *arg)
{
    struct hook *h = arg;
    int backoff = 0;
    unsigned long failures = 0;
    if (db_open(wh.datadir, &h->db) != 0 || load_cursor(h) != 0) {
        log_error("webhook %s: cannot read its cursor in berth.db; not delivering", h->conf.url);
        return NULL;
    }
    h->leader = db_named_trylock(h->db, h->conf.url);
    h->session = db_session(h->db);
    log_info("webhook %s: delivering events after id %lld%s", h->conf.url, (long long)h->cursor,
             h->leader ? "" : " when the node delivering it now stops");
    while (!stopping()) {
        int wait = step(h, &backoff, &failures);
        if (wait > 0 && nap(wait))
            break;
    }
    db_close(h->db);
    h->db = NULL;
    return NULL;
}

/* Deletes events older than the retention, a batch per transaction, every BERTH_EVENTS_PRUNE_INTERVAL. */
static void *prune_main(void *unused)
{
    struct db *db = NULL;
    (void)unused;
    if (db_open(wh.datadir, &db) != 0)
        return NULL;
    do {
        int n = BERTH_EVENTS_PRUNE_BATCH;
        long long before = events_now_ms() - (long long)wh.retention * 1000;
        while (n == BERTH_EVENTS_PRUNE_BATCH && !stopping())
            if (events_prune(db, before, BERTH_EVENTS_PRUNE_BATCH, &n) != 0)
                break;
    } while (!nap(BERTH_EVENTS_PRUNE_INTERVAL * 1000));
    db_close(db);
    return NULL;
}

int webhooks_start(const char *datadir, const struct webhook_conf *hooks, int n, const char *registry_url,
                   const char *source_addr, long long retention)
{
    for (int i = 0; i < n; i++)
        for (int k = 0; k < i; k++)
            if (strcmp(hooks[i].url, hooks[k].url) == 0) {
                log_error("webhook %s is configured twice (one URL, one delivery cursor)", hooks[i].url);
                return BERR_BAD_REQUEST;
            }
    snprintf(wh.datadir, sizeof(wh.datadir), "%s", datadir);
    snprintf(wh.registry_url, sizeof(wh.registry_url), "%s", registry_url);
    snprintf(wh.source_addr, sizeof(wh.source_addr), "%s", source_addr);
    wh.stopping = 0;
    wh.retention = retention;
    if (n > 0 && (wh.hooks = calloc((size_t)n, sizeof(*wh.hooks))) == NULL)
        return BERR_NOMEM;
    for (int i = 0; i < n; i++) {
        wh.hooks[i].conf = hooks[i];
        if (pthread_create(&wh.hooks[i].tid, NULL, hook_main, &wh.hooks[i]) != 0)
            break;
        wh.n++;
    }
    wh.pruner_started = pthread_create(&wh.pruner, NULL, prune_main, NULL) == 0;
    return 0;
}

void webhooks_stop(void)
{
    pthread_mutex_lock(&wh.lock);
    wh.stopping = 1;
    pthread_cond_broadcast(&wh.wake);
    pthread_mutex_unlock(&wh.lock);
    for (int i = 0; i < wh.n; i++)
        pthread_join(wh.hooks[i].tid, NULL);
    if (wh.pruner_started)
        pthread_join(wh.pruner, NULL);
    wh.pruner_started = 0;
    free(wh.hooks);
    wh.hooks = NULL;
    wh.n = 0;
}
