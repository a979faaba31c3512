/* events.c - the event log behind events.h: inserts in the caller's transaction, the pull buffer, reads, JSON. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>
#include "err.h"
#include "events.h"
#include "log.h"

#define INSERT_SQL                                                                                                     \
    "INSERT INTO events (uuid, at_ms, action, repository, digest, media_type, size, tag, previous, actor, addr, "      \
    "method, useragent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

long long events_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

unsigned events_action_bit(const char *name)
{
    static const struct {
        const char *name;
        unsigned bit;
    } actions[] = {{EVENT_PUSH, EVENT_BIT_PUSH}, {EVENT_PULL, EVENT_BIT_PULL},     {EVENT_DELETE, EVENT_BIT_DELETE},
                   {EVENT_TAG, EVENT_BIT_TAG},   {EVENT_EXPIRE, EVENT_BIT_EXPIRE}, {EVENT_GC, EVENT_BIT_GC}};
    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
        if (strcmp(name, actions[i].name) == 0)
            return actions[i].bit;
    return 0;
}

int events_parse_actions(const char *list, unsigned *out)
{
    char buf[256], *save = NULL, *tok;
    *out = 0;
    if (strlen(list) >= sizeof(buf))
        return -1;
    memcpy(buf, list, strlen(list) + 1);
    for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        unsigned bit = events_action_bit(tok);
        if (bit == 0)
            return -1;
        *out |= bit;
    }
    return *out != 0 ? 0 : -1;
}

/* A random RFC 4122 version-4 UUID (the envelope's event id). */
static void new_uuid(char out[37])
{
    unsigned char b[16];
    randombytes_buf(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
             b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static void bind_opt(struct db_stmt *st, int i, const char *s)
{
    if (s == NULL || s[0] == '\0')
        db_bind_null(st, i);
    else
        db_bind_text(st, i, s, -1);
}

/* Binds and runs the prepared INSERT for `ev`. */
static int insert(struct db *db, struct db_stmt *st, const struct event *ev)
{
    char uuid[37];
    const struct event_source *f = ev->from;
    int rc;
    if (ev->action == NULL || ev->repository == NULL)
        return BERR_BAD_REQUEST;
    new_uuid(uuid);
    db_reset(st);
    db_clear_bindings(st);
    db_bind_text_copy(st, 1, uuid, -1);
    db_bind_int64(st, 2, ev->at_ms > 0 ? ev->at_ms : events_now_ms());
    db_bind_text(st, 3, ev->action, -1);
    db_bind_text(st, 4, ev->repository, -1);
    bind_opt(st, 5, ev->digest);
    bind_opt(st, 6, ev->media_type);
    if (ev->size >= 0)
        db_bind_int64(st, 7, ev->size);
    bind_opt(st, 8, ev->tag);
    bind_opt(st, 9, ev->previous);
    bind_opt(st, 10, f ? f->actor : NULL);
    bind_opt(st, 11, f ? f->addr : NULL);
    bind_opt(st, 12, f ? f->method : NULL);
    bind_opt(st, 13, f ? f->useragent : NULL);
    rc = db_step(st);
    db_reset(st);
    return rc == DB_DONE ? 0 : db_error(db);
}

/* Cached statements (db.h's slot range EVENTS). */
enum { S_EV_INSERT = DB_SLOTS_EVENTS, S_EV_TAG_TARGET, S_EV_EACH, S_EV_LAST, S_EV_PRUNE, S_EVENTS_END };
DB_SLOTS_CHECK(EVENTS, S_EVENTS_END);

int events_emit(struct db *db, const struct event *ev)
{
    struct db_stmt *st = db_stmt(db, S_EV_INSERT, INSERT_SQL);
    int rc;
    if (st == NULL)
        return BERR_DB;
    rc = insert(db, st, ev);
    db_reset(st);
    return rc;
}

int events_manifest_pushed(struct db *db, const char *repo, const char *digest, const char *media_type, int64_t size,
                           const char *tag, const char *previous, const struct event_source *from)
{
    struct event ev = {.action = EVENT_PUSH,
                       .repository = repo,
                       .digest = digest,
                       .media_type = media_type,
                       .size = size,
                       .tag = tag,
                       .from = from};
    int rc = events_emit(db, &ev);
    if (rc != 0 || tag == NULL || previous == NULL || previous[0] == '\0' || strcmp(previous, digest) == 0)
        return rc;
    ev.action = EVENT_TAG;
    ev.previous = previous;
    return events_emit(db, &ev);
}

int events_tag_target(struct db *db, const char *repo, const char *tag, char out[BERTH_DIGEST_MAX])
{
    struct db_stmt *st = db_stmt(db, S_EV_TAG_TARGET,
                                 "SELECT m.digest FROM repos r JOIN tags t ON t.repo_id = r.id "
                                 "JOIN manifests m ON m.id = t.manifest_id WHERE r.name = ? AND t.name = ?");
    int rc;
    out[0] = '\0';
    if (st == NULL)
        return BERR_DB;
    db_bind_text(st, 1, repo, -1);
    db_bind_text(st, 2, tag, -1);
    rc = db_step(st);
    if (rc == DB_ROW)
        snprintf(out, BERTH_DIGEST_MAX, "%s", (const char *)db_column_text(st, 0));
    db_reset(st);
    return rc == DB_ROW || rc == DB_DONE ? 0 : db_error(db);
}

/* ---- the pull buffer ---- */

struct pull_rec {
    long long at_ms;
    int64_t size;
    char repository[BERTH_NAME_MAX + 1];
    char digest[BERTH_DIGEST_MAX];
    char media_type[EVENTS_MEDIA_TYPE_MAX + 1];
    char tag[BERTH_TAG_MAX + 1];
    struct event_source from;
};

static struct {
    pthread_mutex_t lock;
    struct pull_rec *recs; /* BERTH_EVENTS_PULL_BUFFER entries, allocated on first use */
    size_t n;
    unsigned long long dropped;
} pulls = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void copy(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src != NULL ? src : "");
}

int events_pull_note(const struct event *ev)
{
    struct pull_rec *r;
    pthread_mutex_lock(&pulls.lock);
    if (pulls.recs == NULL)
        pulls.recs = malloc(BERTH_EVENTS_PULL_BUFFER * sizeof(*pulls.recs));
    if (pulls.recs == NULL || pulls.n == BERTH_EVENTS_PULL_BUFFER) {
        pulls.dropped++;
        pthread_mutex_unlock(&pulls.lock);
        return BERR_BUSY;
    }
    r = &pulls.recs[pulls.n++];
    r->at_ms = ev->at_ms > 0 ? ev->at_ms : events_now_ms();
    r->size = ev->size;
    copy(r->repository, sizeof(r->repository), ev->repository);
    copy(r->digest, sizeof(r->digest), ev->digest);
    copy(r->media_type, sizeof(r->media_type), ev->media_type);
    copy(r->tag, sizeof(r->tag), ev->tag);
    if (ev->from != NULL)
        r->from = *ev->from;
    else
        memset(&r->from, 0, sizeof(r->from));
    pthread_mutex_unlock(&pulls.lock);
    return 0;
}

/* Takes the buffered records (caller frees *out). */
static size_t take_pulls(struct pull_rec **out, unsigned long long *dropped)
{
    size_t n;
    pthread_mutex_lock(&pulls.lock);
    *out = pulls.recs;
    n = pulls.n;
    *dropped = pulls.dropped;
    pulls.recs = NULL;
    pulls.n = 0;
    pulls.dropped = 0;
    pthread_mutex_unlock(&pulls.lock);
    return n;
}

int events_pull_flush(struct db *db)
{
    struct pull_rec *recs;
    unsigned long long dropped;
    size_t n = take_pulls(&recs, &dropped), i;
    struct db_stmt *st;
    int rc = 0;
    if (dropped > 0)
        log_warn("events: %llu pull events dropped (more than %d pulls in one flush interval)", dropped,
                 BERTH_EVENTS_PULL_BUFFER);
    if (n == 0) {
        free(recs);
        return 0;
    }
    if ((st = db_stmt(db, S_EV_INSERT, INSERT_SQL)) == NULL)
        rc = BERR_DB;
    for (i = 0; rc == 0 && i < n; i++) {
        struct pull_rec *r = &recs[i];
        struct event ev = {.action = EVENT_PULL,
                           .repository = r->repository,
                           .digest = r->digest,
                           .media_type = r->media_type,
                           .size = r->size,
                           .tag = r->tag,
                           .from = &r->from,
                           .at_ms = r->at_ms};
        rc = insert(db, st, &ev);
    }
    db_reset(st);
    if (rc != 0)
        log_warn("events: %zu pull events lost (database error)", n);
    free(recs);
    return rc;
}

/* ---- reading ---- */

static const char *col(struct db_stmt *st, int i)
{
    return (const char *)db_column_text(st, i);
}

static void copy_col(char *dst, size_t size, struct db_stmt *st, int i)
{
    copy(dst, size, col(st, i));
}

int events_each(struct db *db, int64_t after, int max, events_cb cb, void *ctx)
{
    struct db_stmt *st = db_stmt(db, S_EV_EACH,
                                 "SELECT id, uuid, at_ms, action, repository, digest, media_type, size, tag, "
                                 "previous, actor, addr, method, useragent FROM events WHERE id > ? "
                                 "ORDER BY id LIMIT ?");
    int rc;
    if (st == NULL)
        return BERR_DB;
    db_bind_int64(st, 1, after);
    db_bind_int64(st, 2, max);
    while ((rc = db_step(st)) == DB_ROW) {
        struct event_row r = {.id = db_column_int64(st, 0), .uuid = col(st, 1), .at_ms = db_column_int64(st, 2)};
        r.ev = (struct event){.action = col(st, 3),
                              .repository = col(st, 4),
                              .digest = col(st, 5),
                              .media_type = col(st, 6),
                              .size = db_column_is_null(st, 7) ? -1 : db_column_int64(st, 7),
                              .tag = col(st, 8),
                              .previous = col(st, 9),
                              .from = &r.from,
                              .at_ms = r.at_ms};
        copy_col(r.from.actor, sizeof(r.from.actor), st, 10);
        copy_col(r.from.addr, sizeof(r.from.addr), st, 11);
        copy_col(r.from.method, sizeof(r.from.method), st, 12);
        copy_col(r.from.useragent, sizeof(r.from.useragent), st, 13);
        if (cb(ctx, &r) != 0)
            break;
    }
    db_reset(st);
    return rc == DB_ROW || rc == DB_DONE ? 0 : db_error(db);
}

int events_last_id(struct db *db, int64_t *out)
{
    struct db_stmt *st = db_stmt(db, S_EV_LAST, "SELECT coalesce(max(id), 0) FROM events");
    int rc;
    if (st == NULL)
        return BERR_DB;
    rc = db_step(st);
    *out = rc == DB_ROW ? db_column_int64(st, 0) : 0;
    db_reset(st);
    return rc == DB_ROW ? 0 : db_error(db);
}

int events_prune(struct db *db, long long before_ms, int max, int *deleted)
{
    struct db_stmt *st = db_stmt(db, S_EV_PRUNE,
                                 "DELETE FROM events WHERE id IN "
                                 "(SELECT id FROM events WHERE at_ms < ? ORDER BY id LIMIT ?)");
    int rc;
    if (st == NULL)
        return BERR_DB;
    db_bind_int64(st, 1, before_ms);
    db_bind_int64(st, 2, max);
    rc = db_step(st);
    if (deleted != NULL)
        *deleted = db_changes(db);
    db_reset(st);
    return rc == DB_DONE ? 0 : db_error(db);
}

/* ---- JSON (Distribution's notification envelope) ---- */

void events_format_time(long long at_ms, char *out, size_t size)
{
    time_t t = (time_t)(at_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(at_ms % 1000));
}

/* Sets `key` of `o` to string `v` unless it is NULL or empty. */
static void set_str(json_t *o, const char *key, const char *v)
{
    if (v != NULL && v[0] != '\0')
        json_object_set_new(o, key, json_string(v));
}

static json_t *target_json(const struct event_row *row, const char *registry_url)
{
    const struct event *ev = &row->ev;
    json_t *t = json_object();
    set_str(t, "mediaType", ev->media_type);
    set_str(t, "digest", ev->digest);
    if (ev->size >= 0) {
        json_object_set_new(t, "size", json_integer(ev->size));
        json_object_set_new(t, "length", json_integer(ev->size));
    }
    set_str(t, "repository", ev->repository);
    if (ev->digest != NULL && registry_url != NULL && ev->repository[0] != '\0') {
        int is_blob = ev->media_type != NULL && strcmp(ev->media_type, "application/octet-stream") == 0;
        char *url = NULL;
        if (asprintf(&url, "%s/v2/%s/%s/%s", registry_url, ev->repository, is_blob ? "blobs" : "manifests",
                     ev->digest) > 0) {
            json_object_set_new(t, "url", json_string(url));
            free(url);
        }
    }
    set_str(t, "tag", ev->tag);
    set_str(t, "previous", ev->previous);
    return t;
}

json_t *events_json(const struct event_row *row, const char *registry_url, const char *source_addr)
{
    char ts[40];
    json_t *o = json_object(), *req = json_object(), *actor = json_object(), *src = json_object();
    if (o == NULL || req == NULL || actor == NULL || src == NULL) {
        json_decref(o);
        json_decref(req);
        json_decref(actor);
        json_decref(src);
        return NULL;
    }
    events_format_time(row->at_ms, ts, sizeof(ts));
    json_object_set_new(o, "id", json_string(row->uuid));
    json_object_set_new(o, "timestamp", json_string(ts));
    json_object_set_new(o, "action", json_string(row->ev.action));
    json_object_set_new(o, "target", target_json(row, registry_url));
    set_str(req, "addr", row->from.addr);
    set_str(req, "method", row->from.method);
    set_str(req, "useragent", row->from.useragent);
    json_object_set_new(o, "request", req);
    set_str(actor, "name", row->from.actor);
    json_object_set_new(o, "actor", actor);
    set_str(src, "addr", source_addr);
    json_object_set_new(o, "source", src);
    return o;
}
