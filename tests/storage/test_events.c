/* test_events.c - events.h and quota.h against a real berth.db in a fresh temp dir per test. */
#include <stdlib.h>
#include "check.h"
#include "dbfix.h"
#include "db.h"
#include "digest.h"
#include "events.h"
#include "log.h"
#include "meta.h"
#include "quota.h"

/* Collects events into one string: "action repo[:tag][@digest][<previous];..." */
struct seen {
    char buf[4096];
    int n;
    int64_t last_id;
};

static int collect(void *ctx, const struct event_row *r)
{
    struct seen *s = ctx;
    size_t len = strlen(s->buf);
    snprintf(s->buf + len, sizeof(s->buf) - len, "%s %s%s%s%s%s%s%s;", r->ev.action, r->ev.repository,
             r->ev.tag ? ":" : "", r->ev.tag ? r->ev.tag : "", r->ev.digest ? "@" : "",
             r->ev.digest ? r->ev.digest + 7 : "", r->ev.previous ? "<" : "", r->ev.previous ? r->ev.previous + 7 : "");
    s->n++;
    s->last_id = r->id;
    return 0;
}

static int end_write(int rc)
{
    if (rc == 0)
        return db_commit(db);
    db_rollback(db);
    return rc;
}
#define WRITE(expr) (db_begin(db) == 0 ? end_write(expr) : BERR_DB)

/* Commits blob `content` into `repo`; its digest goes to `out`. */
static int blob(const char *repo, const char *content, char out[BERTH_DIGEST_MAX])
{
    digest_buf(content, strlen(content), out);
    return WRITE(meta_blob_commit(db, repo, out, (int64_t)strlen(content)));
}

/* An event emitted in a transaction that rolls back leaves nothing; a committed one is read back in order. */
static void emit_commits_with_its_transaction(void)
{
    struct seen s = {0};
    struct event_source from = {.actor = "alice", .addr = "10.0.0.1", .method = "PUT", .useragent = "docker/20.10"};
    struct event ev = {
        .action = EVENT_PUSH, .repository = "team/app", .digest = "sha256:aa", .size = 3, .tag = "v1", .from = &from};
    REQUIRE_OK(db_begin(db));
    REQUIRE_OK(events_emit(db, &ev));
    db_rollback(db);
    REQUIRE_OK(events_each(db, 0, 100, collect, &s));
    CHECK_INT_EQ(s.n, 0);
    REQUIRE_OK(WRITE(events_emit(db, &ev)));
    ev.action = EVENT_DELETE;
    ev.tag = NULL;
    REQUIRE_OK(WRITE(events_emit(db, &ev)));
    REQUIRE_OK(events_each(db, 0, 100, collect, &s));
    CHECK_STR_EQ(s.buf, "push team/app:v1@aa;delete team/app@aa;");
    CHECK_ERR(WRITE(events_emit(db, &(struct event){.action = EVENT_PUSH})), BERR_BAD_REQUEST);
}

/* events_each reads after a cursor, at most `max`, and ids keep growing after pruning. */
static void each_reads_after_cursor_and_ids_never_repeat(void)
{
    struct seen s = {0};
    int64_t last = -1;
    int deleted = -1;
    for (int i = 0; i < 5; i++)
        REQUIRE_OK(WRITE(
            events_emit(db, &(struct event){.action = EVENT_PUSH, .repository = "r", .size = -1, .at_ms = 1000 + i})));
    REQUIRE_OK(events_each(db, 2, 2, collect, &s));
    CHECK_INT_EQ(s.n, 2);
    CHECK_INT_EQ(s.last_id, 4);
    REQUIRE_OK(WRITE(events_prune(db, 1000000, 100, &deleted)));
    CHECK_INT_EQ(deleted, 5);
    REQUIRE_OK(WRITE(events_emit(db, &(struct event){.action = EVENT_PULL, .repository = "r", .size = -1})));
    REQUIRE_OK(events_last_id(db, &last));
    CHECK_INT_EQ(last, 6); /* AUTOINCREMENT: a delivery cursor at 5 never skips the new event */
}

/* Pushing by tag records a push; moving that tag to another manifest also records a tag event with the old one. */
static void manifest_push_records_tag_moves(void)
{
    char prev[BERTH_DIGEST_MAX];
    struct seen s = {0};
    REQUIRE_OK(events_tag_target(db, "r", "v1", prev));
    CHECK_STR_EQ(prev, "");
    REQUIRE_OK(WRITE(events_manifest_pushed(db, "r", "sha256:m1", "mt", 10, "v1", prev, NULL)));
    REQUIRE_OK(WRITE(events_manifest_pushed(db, "r", "sha256:m1", "mt", 10, "v1", "sha256:m1", NULL)));
    REQUIRE_OK(WRITE(events_manifest_pushed(db, "r", "sha256:m2", "mt", 10, "v1", "sha256:m1", NULL)));
    REQUIRE_OK(events_each(db, 0, 100, collect, &s));
    CHECK_STR_EQ(s.buf, "push r:v1@m1;push r:v1@m1;push r:v1@m2;tag r:v1@m2<m1;");
}

/* Pull events cost no write until the flush, which writes them all in one transaction. */
static void pulls_are_buffered_until_flush(void)
{
    struct seen s = {0};
    for (int i = 0; i < 3; i++)
        REQUIRE_OK(events_pull_note(&(struct event){
            .action = EVENT_PULL, .repository = "r", .digest = "sha256:d1", .tag = i == 0 ? "v1" : NULL, .size = 7}));
    REQUIRE_OK(events_each(db, 0, 100, collect, &s));
    CHECK_INT_EQ(s.n, 0);
    REQUIRE_OK(WRITE(events_pull_flush(db)));
    REQUIRE_OK(events_each(db, 0, 100, collect, &s));
    CHECK_STR_EQ(s.buf, "pull r:v1@d1;pull r@d1;pull r@d1;");
    REQUIRE_OK(WRITE(events_pull_flush(db))); /* empty buffer: nothing more */
    memset(&s, 0, sizeof(s));
    REQUIRE_OK(events_each(db, 0, 100, collect, &s));
    CHECK_INT_EQ(s.n, 3);
}

static int to_json(void *ctx, const struct event_row *r)
{
    char **out = ctx;
    json_t *j = events_json(r, "http://reg:5000", "host:5000");
    *out = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    return 1;
}

/* The JSON is Distribution's event object: id, timestamp, action, target with url, request, actor, source. */
static void json_has_distribution_fields(void)
{
    struct event_source from = {.actor = "alice", .addr = "10.0.0.1", .method = "GET", .useragent = "ua"};
    char *out = NULL;
    REQUIRE_OK(WRITE(events_emit(db, &(struct event){.action = EVENT_PULL,
                                                     .repository = "team/app",
                                                     .digest = "sha256:ab",
                                                     .media_type = "mt",
                                                     .size = 42,
                                                     .tag = "v1",
                                                     .from = &from,
                                                     .at_ms = 1764439200123LL})));
    REQUIRE_OK(events_each(db, 0, 1, to_json, &out));
    REQUIRE(out != NULL);
    CHECK_STR_CONTAINS(out, "\"action\":\"pull\"");
    CHECK_STR_CONTAINS(out, "\"actor\":{\"name\":\"alice\"}");
    CHECK_STR_CONTAINS(out, "\"request\":{\"addr\":\"10.0.0.1\",\"method\":\"GET\",\"useragent\":\"ua\"}");
    CHECK_STR_CONTAINS(out, "\"source\":{\"addr\":\"host:5000\"}");
    CHECK_STR_CONTAINS(out, "\"target\":{\"digest\":\"sha256:ab\",\"length\":42,\"mediaType\":\"mt\",\"repository\":"
                            "\"team/app\",\"size\":42,\"tag\":\"v1\",\"url\":\"http://reg:5000/v2/team/app/"
                            "manifests/sha256:ab\"}");
    CHECK_STR_CONTAINS(out, "\"timestamp\":\"2025-11-29T18:00:00.123Z\"");
    CHECK_STR_CONTAINS(out, "\"id\":\"");
    free(out);
}

/* ---- quotas ---- */

struct qlist {
    char buf[512];
};

static int list_cb(void *ctx, const char *pattern, int64_t limit, int64_t used)
{
    struct qlist *l = ctx;
    size_t len = strlen(l->buf);
    snprintf(l->buf + len, sizeof(l->buf) - len, "%s %lld/%lld;", pattern, (long long)used, (long long)limit);
    return 0;
}

/* Usage is the sum of the blobs each repository links, counted once per repository, kept by triggers. */
static void usage_follows_links_per_repository(void)
{
    char a[BERTH_DIGEST_MAX], b[BERTH_DIGEST_MAX];
    int64_t used = -1, size;
    REQUIRE_OK(blob("team/x", "12345", a));
    REQUIRE_OK(blob("team/x", "123", b));
    REQUIRE_OK(blob("team/x", "12345", a)); /* again: still once */
    REQUIRE_OK(WRITE(meta_blob_mount(db, "team/y", "team/x", a, &size)));
    REQUIRE_OK(blob("other", "12345", a));
    REQUIRE_OK(quota_usage(db, "team/x", &used));
    CHECK_INT_EQ(used, 8);
    REQUIRE_OK(quota_usage(db, "team/*", &used));
    CHECK_INT_EQ(used, 13); /* once per repository: team/x 8 + team/y 5 */
    REQUIRE_OK(quota_usage(db, "*", &used));
    CHECK_INT_EQ(used, 18);
    REQUIRE_OK(quota_usage(db, "*/y", &used));
    CHECK_INT_EQ(used, 5);
    REQUIRE_OK(WRITE(meta_blob_unlink(db, "team/x", a)));
    REQUIRE_OK(quota_usage(db, "team/*", &used));
    CHECK_INT_EQ(used, 8);
    REQUIRE_OK(quota_usage(db, "team", &used));
    CHECK_INT_EQ(used, 0);
}

/* The usage each quota keeps (triggers) equals the usage recomputed from the links, through links, mounts,
 * unlinks, re-links and the deletion of a whole repository. */
static void kept_usage_matches_recount(void)
{
    char a[BERTH_DIGEST_MAX], b[BERTH_DIGEST_MAX];
    struct qlist l = {{0}}, r = {{0}};
    int64_t size;
    REQUIRE_OK(WRITE(quota_set(db, "team/*", 1000)));
    REQUIRE_OK(WRITE(quota_set(db, "*", 1000)));
    REQUIRE_OK(WRITE(quota_set(db, "team/x", 1000)));
    REQUIRE_OK(blob("team/x", "12345", a));
    REQUIRE_OK(blob("team/x", "123", b));
    REQUIRE_OK(WRITE(meta_blob_mount(db, "team/y", "team/x", a, &size)));
    REQUIRE_OK(blob("other", "12345", a));
    REQUIRE_OK(WRITE(meta_blob_unlink(db, "team/x", b)));
    REQUIRE_OK(blob("team/x", "123", b));
    REQUIRE_OK(quota_each(db, list_cb, &l));
    CHECK_STR_EQ(l.buf, "* 18/1000;team/* 13/1000;team/x 8/1000;");
    REQUIRE_OK(WRITE(db_exec(db, "DELETE FROM repos WHERE name = 'team/y'")));
    memset(&l, 0, sizeof(l));
    REQUIRE_OK(quota_each(db, list_cb, &l));
    CHECK_STR_EQ(l.buf, "* 13/1000;team/* 8/1000;team/x 8/1000;");
    REQUIRE_OK(WRITE(quota_recount(db)));
    REQUIRE_OK(quota_each(db, list_cb, &r));
    CHECK_STR_EQ(r.buf, l.buf);
}

/* A blob that would take a matching quota over its limit is refused with a message naming it; an already linked
 * blob and other repositories pass. */
static void check_refuses_over_limit_only(void)
{
    char a[BERTH_DIGEST_MAX], detail[QUOTA_DETAIL_MAX] = "";
    REQUIRE_OK(blob("team/x", "1234567890", a));
    REQUIRE_OK(WRITE(quota_set(db, "team/*", 15)));
    CHECK_ERR(quota_check(db, "team/y", "sha256:new", 6, detail, sizeof(detail)), BERR_QUOTA_EXCEEDED);
    CHECK_STR_EQ(detail, "quota of team/* exceeded: limit 15 B, 10 B used, this blob adds 6 B");
    CHECK_ERR(quota_check(db, "team/y", "sha256:new", 5, detail, sizeof(detail)), 0);
    CHECK_ERR(quota_check(db, "team/x", a, 10, detail, sizeof(detail)), 0); /* linked already: adds nothing */
    CHECK_ERR(quota_check(db, "elsewhere", "sha256:new", 1000, detail, sizeof(detail)), 0);
    REQUIRE_OK(WRITE(quota_set(db, "team/x", 12)));
    CHECK_ERR(quota_check(db, "team/x", "sha256:new", 3, detail, sizeof(detail)), BERR_QUOTA_EXCEEDED);
    CHECK_STR_CONTAINS(detail, "quota of team/x exceeded");
}

/* set replaces, list shows usage, del removes; invalid patterns are refused. */
static void set_list_del(void)
{
    char a[BERTH_DIGEST_MAX];
    struct qlist l = {{0}};
    REQUIRE_OK(blob("team/x", "abc", a));
    REQUIRE_OK(WRITE(quota_set(db, "team/*", 10)));
    REQUIRE_OK(WRITE(quota_set(db, "team/*", 20)));
    REQUIRE_OK(WRITE(quota_set(db, "b", 1)));
    REQUIRE_OK(quota_each(db, list_cb, &l));
    CHECK_STR_EQ(l.buf, "b 0/1;team/* 3/20;");
    CHECK_ERR(WRITE(quota_del(db, "b")), 0);
    CHECK_ERR(WRITE(quota_del(db, "b")), BERR_NOT_FOUND);
    CHECK_ERR(WRITE(quota_set(db, "Bad Pattern", 1)), BERR_BAD_REQUEST);
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(emit_commits_with_its_transaction),
        CHECK_TEST(each_reads_after_cursor_and_ids_never_repeat),
        CHECK_TEST(manifest_push_records_tag_moves),
        CHECK_TEST(pulls_are_buffered_until_flush),
        CHECK_TEST(json_has_distribution_fields),
        CHECK_TEST(usage_follows_links_per_repository),
        CHECK_TEST(kept_usage_matches_recount),
        CHECK_TEST(check_refuses_over_limit_only),
        CHECK_TEST(set_list_del),
    };
    check_before_each = dbfix_setup;
    check_after_each = dbfix_teardown;
    log_set_level(LOG_ERROR);
    return check_run(tests, CHECK_COUNT(tests), argc, argv);
}
