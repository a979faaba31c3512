/* test_maint.c - lifecycle_db.c, gc.c and fsck.c against a real berth.db and real blob files in a temp dir. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include "blobstore.h"
#include "check.h"
#include "dbfix.h"
#include "digest.h"
#include "fsck.h"
#include "gc.h"
#include "lifecycle.h"
#include "manifest.h"
#include "meta.h"

#define CFG_MT "application/vnd.oci.image.config.v1+json"
#define LAYER_MT "application/vnd.oci.image.layer.v1.tar+gzip"
#define DAY LIFECYCLE_DAY

static struct blobstore bs;
static char detail[512];

static int setup(void)
{
    return dbfix_setup() == 0 && blobstore_init(&bs, dir) == 0 ? 0 : -1;
}

static long long sql_int(const char *sql, const char *arg)
{
    sqlite3_stmt *st;
    long long v = -12345;
    if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
        return v;
    if (arg != NULL)
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The first column of the first row of `sql` as text (static buffer). */
static const char *sql_text(const char *sql)
{
    static char out[256];
    sqlite3_stmt *st;
    out[0] = '\0';
    if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
        return out;
    if (sqlite3_step(st) == SQLITE_ROW)
        snprintf(out, sizeof(out), "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return out;
}

static int end_write(int rc)
{
    if (rc == 0)
        return db_commit(db);
    db_rollback(db);
    return rc;
}
#define WRITE(expr) (db_begin(db) == 0 ? end_write(expr) : BERR_DB)

/* Stores blob `content` the way an upload does (file first, then row and link of `repo`); digest into `out`. */
static int blob(const char *repo, const char *content, char out[BERTH_DIGEST_MAX])
{
    char staging[BLOBSTORE_PATH_MAX];
    int fd, rc;
    digest_buf(content, strlen(content), out);
    snprintf(staging, sizeof(staging), "%s/uploads/staging", dir);
    if ((fd = open(staging, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
        return BERR_IO;
    if (write(fd, content, strlen(content)) != (ssize_t)strlen(content)) {
        close(fd);
        return BERR_IO;
    }
    close(fd);
    if ((rc = blobstore_commit(&bs, staging, out)) != 0)
        return rc;
    return WRITE(meta_blob_commit(db, repo, out, (int64_t)strlen(content)));
}

static int file_exists(const char *digest)
{
    char path[BLOBSTORE_PATH_MAX];
    blobstore_path(&bs, digest, path, sizeof(path));
    return access(path, F_OK) == 0;
}

/* Stores manifest `body` in `repo` under `tag` (may be NULL); digest into `out`. */
static int put(const char *repo, const char *body, const char *tag, char out[BERTH_DIGEST_MAX])
{
    struct manifest_info mi;
    int rc;
    digest_buf(body, strlen(body), out);
    if ((rc = manifest_parse(body, strlen(body), NULL, 0, &mi, detail, sizeof(detail))) != 0)
        return rc;
    rc = WRITE(meta_manifest_put(db, repo, out, &mi, body, strlen(body), tag, detail, sizeof(detail)));
    manifest_info_free(&mi);
    return rc;
}

/* An image of `repo` with its own config (`name`) and a layer of content `layer`; `subject` may be NULL. */
static int image(const char *repo, const char *name, const char *layer, const char *tag, const char *subject,
                 char out[BERTH_DIGEST_MAX])
{
    char cfg[BERTH_DIGEST_MAX], lay[BERTH_DIGEST_MAX], body[1024], sub[256] = "";
    int rc;
    if ((rc = blob(repo, name, cfg)) != 0 || (rc = blob(repo, layer, lay)) != 0)
        return rc;
    if (subject != NULL)
        snprintf(sub, sizeof(sub), ",\"subject\":{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%lld}",
                 MT_OCI_MANIFEST, subject, sql_int("SELECT size FROM manifests WHERE digest = ?", subject));
    snprintf(body, sizeof(body),
             "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\",\"digest\":\"%s\","
             "\"size\":%zu},\"layers\":[{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}]%s}",
             MT_OCI_MANIFEST, CFG_MT, cfg, strlen(name), LAYER_MT, lay, strlen(layer), sub);
    return put(repo, body, tag, out);
}

/* An index of `repo` over children a and b, under `tag`. */
static int index2(const char *repo, const char *a, const char *b, const char *tag, char out[BERTH_DIGEST_MAX])
{
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[{\"mediaType\":\"%s\",\"digest\":\"%s\","
             "\"size\":%lld},{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%lld}]}",
             MT_OCI_INDEX, MT_OCI_MANIFEST, a, sql_int("SELECT size FROM manifests WHERE digest = ?", a),
             MT_OCI_MANIFEST, b, sql_int("SELECT size FROM manifests WHERE digest = ?", b));
    return put(repo, body, tag, out);
}

static long long manifests_with(const char *digest)
{
    return sql_int("SELECT count(*) FROM manifests WHERE digest = ?", digest);
}

#define UNTAGGED_1DAY                                                                                                  \
    "{\"rules\":[{\"rulePriority\":1,\"description\":\"untagged images go after a day\",\"selection\":{"               \
    "\"tagStatus\":\"untagged\",\"countType\":\"sinceImagePushed\",\"countUnit\":\"days\",\"countNumber\":1},"         \
    "\"action\":{\"type\":\"expire\"}}]}"

/* put validates (an invalid document is refused and nothing stored), get returns the text, delete removes it;
 * no repository and no policy are told apart. */
static void policy_put_get_delete(void)
{
    char d[BERTH_DIGEST_MAX], msg[LIFECYCLE_MSG_MAX], *json = NULL;
    int64_t when = 0;
    static const char bad[] = "{\"rules\":[{\"rulePriority\":1,\"description\":\"tagged without a list, which "
                              "ECR refuses\",\"selection\":{\"tagStatus\":\"tagged\",\"countType\":"
                              "\"imageCountMoreThan\",\"countNumber\":1},\"action\":{\"type\":\"expire\"}}]}";
    REQUIRE_OK(image("app", "cfg-a", "layer-a", "v1", NULL, d));
    CHECK_ERR(WRITE(lifecycle_policy_put(db, "nope", UNTAGGED_1DAY, strlen(UNTAGGED_1DAY), msg, sizeof(msg))),
              BERR_NAME_UNKNOWN);
    CHECK_ERR(lifecycle_policy_get(db, "app", &json, &when), BERR_LIFECYCLE_POLICY_NOT_FOUND);
    CHECK_ERR(lifecycle_policy_get(db, "nope", &json, &when), BERR_NAME_UNKNOWN);
    CHECK_ERR(WRITE(lifecycle_policy_put(db, "app", bad, strlen(bad), msg, sizeof(msg))),
              BERR_LIFECYCLE_POLICY_INVALID);
    CHECK_STR_CONTAINS(msg, "tagPrefixList or tagPatternList must be specified");
    CHECK_ERR(lifecycle_policy_get(db, "app", &json, &when), BERR_LIFECYCLE_POLICY_NOT_FOUND);
    REQUIRE_OK(WRITE(lifecycle_policy_put(db, "app", UNTAGGED_1DAY, strlen(UNTAGGED_1DAY), msg, sizeof(msg))));
    REQUIRE_OK(lifecycle_policy_get(db, "app", &json, &when));
    CHECK_STR_EQ(json, UNTAGGED_1DAY);
    CHECK(when >= db_now() - 5);
    free(json);
    json = NULL;
    REQUIRE_OK(WRITE(lifecycle_policy_delete(db, "app", &json, &when)));
    CHECK_STR_EQ(json, UNTAGGED_1DAY);
    free(json);
    CHECK_ERR(lifecycle_policy_get(db, "app", &json, &when), BERR_LIFECYCLE_POLICY_NOT_FOUND);
    CHECK_ERR(WRITE(lifecycle_policy_delete(db, "app", NULL, NULL)), BERR_LIFECYCLE_POLICY_NOT_FOUND);
}

struct seen {
    char buf[4096];
};

static int remember(void *ctx, const struct lifecycle_expired *e)
{
    struct seen *s = ctx;
    size_t len = strlen(s->buf);
    snprintf(s->buf + len, sizeof(s->buf) - len, "%s %.19s %lld %s\n", e->repo, e->digest, e->with ? 0 : e->rule,
             e->with ? "with" : "chosen");
    return 0;
}

/* Children of a live index and referrers of a live subject are never expired on their own (though untagged);
 * when the index / subject expires they go with it, in the same run. */
static void run_keeps_children_and_referrers_with_their_parent(void)
{
    char a[BERTH_DIGEST_MAX], b[BERTH_DIGEST_MAX], idx[BERTH_DIGEST_MAX], subj[BERTH_DIGEST_MAX], sig[BERTH_DIGEST_MAX],
        loose[BERTH_DIGEST_MAX], msg[LIFECYCLE_MSG_MAX];
    struct lifecycle_run_opts o = {.as_of = db_now() + 2 * DAY};
    struct lifecycle_stats st;
    struct seen s = {""};
    REQUIRE_OK(image("app", "cfg-amd64", "layer-amd64", NULL, NULL, a));
    REQUIRE_OK(image("app", "cfg-arm64", "layer-arm64", NULL, NULL, b));
    REQUIRE_OK(index2("app", a, b, "multi", idx));
    REQUIRE_OK(image("app", "cfg-subject", "layer-subject", "v1", NULL, subj));
    REQUIRE_OK(image("app", "cfg-signature", "layer-signature", NULL, subj, sig));
    REQUIRE_OK(image("app", "cfg-loose", "layer-loose", NULL, NULL, loose));
    REQUIRE_OK(WRITE(lifecycle_policy_put(db, "app", UNTAGGED_1DAY, strlen(UNTAGGED_1DAY), msg, sizeof(msg))));

    o.dry_run = 1;
    REQUIRE_OK(lifecycle_run(db, &o, remember, &s, &st));
    CHECK_INT_EQ(st.images, 3); /* the index, the subject and the loose image: children and referrer are not */
    CHECK_INT_EQ(st.expired, 1);
    CHECK_INT_EQ(manifests_with(loose), 1); /* a dry run expires nothing */

    o.dry_run = 0;
    s.buf[0] = '\0';
    REQUIRE_OK(lifecycle_run(db, &o, remember, &s, &st));
    CHECK_INT_EQ(st.expired, 1);
    CHECK_INT_EQ(manifests_with(loose), 0);
    CHECK_INT_EQ(manifests_with(a) + manifests_with(b) + manifests_with(sig), 3);

    /* untagged now: the index goes with both children, the subject with its signature */
    REQUIRE_OK(WRITE(meta_tag_delete(db, "app", "multi")));
    REQUIRE_OK(WRITE(meta_tag_delete(db, "app", "v1")));
    s.buf[0] = '\0';
    REQUIRE_OK(lifecycle_run(db, &o, remember, &s, &st));
    CHECK_INT_EQ(st.expired, 2);
    CHECK_INT_EQ(st.with, 3);
    CHECK_INT_EQ(sql_int("SELECT count(*) FROM manifests", NULL), 0);
    CHECK_STR_CONTAINS(s.buf, "app sha256:");
    CHECK_STR_CONTAINS(s.buf, " 1 chosen\n");
    CHECK_STR_CONTAINS(s.buf, " 0 with\n");
}

/* A child another live index still references stays when one index expires; a tagged child always stays. */
static void run_keeps_child_shared_with_a_live_index(void)
{
    char a[BERTH_DIGEST_MAX], b[BERTH_DIGEST_MAX], c[BERTH_DIGEST_MAX], i1[BERTH_DIGEST_MAX], i2[BERTH_DIGEST_MAX],
        msg[LIFECYCLE_MSG_MAX];
    struct lifecycle_run_opts o = {.as_of = db_now() + 2 * DAY};
    struct lifecycle_stats st;
    REQUIRE_OK(image("app", "cfg-a", "layer-a", NULL, NULL, a));
    REQUIRE_OK(image("app", "cfg-b", "layer-b", "b-tagged", NULL, b));
    REQUIRE_OK(image("app", "cfg-c", "layer-c", NULL, NULL, c));
    REQUIRE_OK(index2("app", a, b, NULL, i1)); /* untagged: expires */
    REQUIRE_OK(index2("app", a, c, "keep", i2));
    REQUIRE_OK(WRITE(lifecycle_policy_put(db, "app", UNTAGGED_1DAY, strlen(UNTAGGED_1DAY), msg, sizeof(msg))));
    REQUIRE_OK(lifecycle_run(db, &o, NULL, NULL, &st));
    CHECK_INT_EQ(st.expired, 1);
    CHECK_INT_EQ(st.with, 0);
    CHECK_INT_EQ(manifests_with(i1), 0);
    CHECK_INT_EQ(manifests_with(a) + manifests_with(b) + manifests_with(c) + manifests_with(i2), 4);
}

/* untagged_retention applies to every repository, with or without a policy. */
static void run_applies_untagged_retention_everywhere(void)
{
    char a[BERTH_DIGEST_MAX], b[BERTH_DIGEST_MAX];
    struct lifecycle_run_opts o = {.as_of = db_now() + 15 * DAY, .untagged_retention = 14 * DAY};
    struct lifecycle_stats st;
    REQUIRE_OK(image("one", "cfg-1", "layer-1", NULL, NULL, a));
    REQUIRE_OK(image("two", "cfg-2", "layer-2", "v1", NULL, b));
    REQUIRE_OK(lifecycle_run(db, &o, NULL, NULL, &st));
    CHECK_INT_EQ(st.repos, 2);
    CHECK_INT_EQ(st.expired, 1);
    CHECK_INT_EQ(manifests_with(a), 0);
    CHECK_INT_EQ(manifests_with(b), 1);
    o.as_of = db_now() + 13 * DAY;
    o.untagged_retention = 0;
    CHECK_ERR(lifecycle_run(db, &(struct lifecycle_run_opts){.repo = "two", .as_of = o.as_of}, NULL, NULL, &st),
              BERR_LIFECYCLE_POLICY_NOT_FOUND);
}

struct retag {
    int calls;
    char digest[BERTH_DIGEST_MAX];
};

/* After the first batch committed, tags the image the second batch is about to expire. */
static int retag_during_run(void *ctx, const struct lifecycle_expired *e)
{
    struct retag *r = ctx;
    char sql[256];
    (void)e;
    if (r->calls++ == 0) {
        snprintf(sql, sizeof(sql),
                 "INSERT INTO tags (repo_id, name, manifest_id, updated_at) SELECT repo_id, 'rescued', id, 0 "
                 "FROM manifests WHERE digest = '%s'",
                 r->digest);
        db_exec(db, sql);
    }
    return 0;
}

/* An image tagged after it was selected is re-checked in the deleting transaction and kept. */
static void run_keeps_an_image_tagged_after_selection(void)
{
    char msg[LIFECYCLE_MSG_MAX];
    static const char keep1[] =
        "{\"rules\":[{\"rulePriority\":1,\"description\":\"keep only the newest untagged image here\","
        "\"selection\":{\"tagStatus\":\"untagged\",\"countType\":\"imageCountMoreThan\",\"countNumber\":1},"
        "\"action\":{\"type\":\"expire\"}}]}";
    struct lifecycle_run_opts o = {.as_of = db_now()};
    struct lifecycle_stats st;
    struct retag r = {0, ""};
    int n = LIFECYCLE_DELETE_BATCH + 6;
    char sql[512];
    REQUIRE_OK(db_exec(db, "INSERT INTO repos (name, created_at) VALUES ('app', 0)"));
    snprintf(sql, sizeof(sql),
             "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) "
             "INSERT INTO manifests (repo_id, digest, media_type, size, body, pushed_at) "
             "SELECT 1, printf('sha256:%%064d', i), '%s', 2, '{}', 1000 + i FROM n",
             n, MT_OCI_MANIFEST);
    REQUIRE_OK(db_exec(db, sql));
    snprintf(r.digest, sizeof(r.digest), "sha256:%064d", n - 1); /* the newest of those selected: last batch */
    REQUIRE_OK(WRITE(lifecycle_policy_put(db, "app", keep1, strlen(keep1), msg, sizeof(msg))));
    REQUIRE_OK(lifecycle_run(db, &o, retag_during_run, &r, &st));
    CHECK_INT_EQ(st.images, n);
    CHECK_INT_EQ(st.expired, n - 2);
    CHECK_INT_EQ(st.skipped, 1);
    CHECK_INT_EQ(manifests_with(r.digest), 1);
    CHECK_INT_EQ(sql_int("SELECT count(*) FROM manifests", NULL), 2);
}

/* A tagged rule expires an image with several tags (the re-check compares all of them) and reports them. */
static void run_expires_an_image_with_several_tags(void)
{
    char a[BERTH_DIGEST_MAX], b[BERTH_DIGEST_MAX], msg[LIFECYCLE_MSG_MAX];
    static const char newest[] =
        "{\"rules\":[{\"rulePriority\":3,\"description\":\"keep the newest release only, whatever else\","
        "\"selection\":{\"tagStatus\":\"tagged\",\"tagPrefixList\":[\"release\"],\"countType\":"
        "\"imageCountMoreThan\",\"countNumber\":1},\"action\":{\"type\":\"expire\"}}]}";
    struct lifecycle_run_opts o = {.as_of = db_now()};
    struct lifecycle_stats st;
    struct seen s = {""};
    REQUIRE_OK(image("app", "cfg-a", "layer-a", "release-1", NULL, a));
    REQUIRE_OK(WRITE(db_exec(db, "INSERT INTO tags (repo_id, name, manifest_id, updated_at) SELECT repo_id, "
                                 "'stable', id, 0 FROM manifests")));
    REQUIRE_OK(WRITE(db_exec(db, "UPDATE manifests SET pushed_at = pushed_at - 10")));
    REQUIRE_OK(image("app", "cfg-b", "layer-b", "release-2", NULL, b));
    REQUIRE_OK(WRITE(lifecycle_policy_put(db, "app", newest, strlen(newest), msg, sizeof(msg))));
    REQUIRE_OK(lifecycle_run(db, &o, remember, &s, &st));
    CHECK_INT_EQ(st.expired, 1);
    CHECK_INT_EQ(st.skipped, 0);
    CHECK_INT_EQ(manifests_with(a), 0);
    CHECK_INT_EQ(manifests_with(b), 1);
    CHECK_STR_CONTAINS(s.buf, " 3 chosen\n");
    /* one EVENT_EXPIRE per tag of the expired image, committed with the deletion */
    CHECK_INT_EQ(sql_int("SELECT count(*) FROM events WHERE action = 'expire'", NULL), 2);
    CHECK_INT_EQ(sql_int("SELECT count(*) FROM events WHERE action = 'expire' AND repository = 'app' AND digest = ? "
                         "AND media_type = 'application/vnd.oci.image.manifest.v1+json' AND size > 0",
                         a),
                 2);
    CHECK_STR_EQ(sql_text("SELECT group_concat(tag, ' ') FROM (SELECT tag FROM events WHERE action = 'expire' "
                          "ORDER BY tag)"),
                 "release-1 stable");
}

/* An expiry whose transaction fails leaves neither the deletion nor its event (they commit together). */
static void run_rolled_back_leaves_no_event(void)
{
    char a[BERTH_DIGEST_MAX], b[BERTH_DIGEST_MAX], msg[LIFECYCLE_MSG_MAX];
    static const char newest[] = "{\"rules\":[{\"rulePriority\":1,\"selection\":{\"tagStatus\":\"any\",\"countType\":"
                                 "\"imageCountMoreThan\",\"countNumber\":1},\"action\":{\"type\":\"expire\"}}]}";
    struct lifecycle_run_opts o = {.as_of = db_now()};
    struct lifecycle_stats st;
    REQUIRE_OK(image("app", "cfg-a", "layer-a", "old", NULL, a));
    REQUIRE_OK(WRITE(db_exec(db, "UPDATE manifests SET pushed_at = pushed_at - 10")));
    REQUIRE_OK(image("app", "cfg-b", "layer-b", "new", NULL, b));
    REQUIRE_OK(WRITE(lifecycle_policy_put(db, "app", newest, strlen(newest), msg, sizeof(msg))));
    /* the event is inserted before the manifest row goes: make that DELETE fail */
    REQUIRE_OK(db_exec(db, "CREATE TEMP TRIGGER boom BEFORE DELETE ON manifests BEGIN SELECT RAISE(ABORT, 'boom'); "
                           "END"));
    CHECK(lifecycle_run(db, &o, NULL, NULL, &st) != 0);
    CHECK_INT_EQ(manifests_with(a), 1);
    CHECK_INT_EQ(sql_int("SELECT count(*) FROM events WHERE action = 'expire'", NULL), 0);
    REQUIRE_OK(db_exec(db, "DROP TRIGGER boom"));
    REQUIRE_OK(lifecycle_run(db, &o, NULL, NULL, &st));
    CHECK_INT_EQ(manifests_with(a), 0);
    CHECK_INT_EQ(sql_int("SELECT count(*) FROM events WHERE action = 'expire' AND digest = ? AND tag = 'old'", a), 1);
}

/* After its manifest is gone, grace 0 prunes a blob's link, deletes its row and file; shared and referenced
 * blobs stay; with a grace of an hour nothing that young goes. */
static void gc_collects_only_unreferenced_blobs(void)
{
    char keep[BERTH_DIGEST_MAX], gone[BERTH_DIGEST_MAX], shared[BERTH_DIGEST_MAX], cfg[BERTH_DIGEST_MAX],
        lay[BERTH_DIGEST_MAX];
    struct gc_opts o = {.now = db_now(), .grace = 3600};
    struct gc_stats s;
    REQUIRE_OK(image("app", "cfg-keep", "layer-shared", "v1", NULL, keep));
    REQUIRE_OK(image("app", "cfg-gone", "layer-shared", "v2", NULL, gone));
    REQUIRE_OK(blob("app", "layer-shared", shared));
    REQUIRE_OK(blob("app", "cfg-gone", cfg));
    REQUIRE_OK(blob("app", "an upload whose manifest never came", lay));
    REQUIRE_OK(WRITE(meta_manifest_delete(db, "app", gone)));
    REQUIRE_OK(gc_run(db, &bs, &o, NULL, NULL, &s));
    CHECK_INT_EQ(s.blobs_deleted, 0);
    CHECK(file_exists(cfg));

    o.grace = 0;
    o.dry_run = 1;
    REQUIRE_OK(gc_run(db, &bs, &o, NULL, NULL, &s));
    CHECK_INT_EQ(s.blobs_deleted, 2);
    CHECK(file_exists(cfg));
    o.dry_run = 0;
    REQUIRE_OK(gc_run(db, &bs, &o, NULL, NULL, &s));
    CHECK_INT_EQ(s.links_pruned, 2);
    CHECK_INT_EQ(s.blobs_deleted, 2);
    CHECK_INT_EQ(s.files_unlinked, 2);
    CHECK_INT_EQ(s.bytes_reclaimed, (long long)(strlen("cfg-gone") + strlen("an upload whose manifest never came")));
    CHECK(!file_exists(cfg));
    CHECK(!file_exists(lay));
    CHECK(file_exists(shared));
    CHECK_INT_EQ(sql_int("SELECT count(*) FROM blobs WHERE digest = ?", cfg), 0);
    CHECK_INT_EQ(sql_int("SELECT count(*) FROM gc_pending", NULL), 0);
    CHECK_ERR(meta_blob_stat(db, "app", shared, NULL), 0);
    CHECK_ERR(meta_blob_stat(db, "app", cfg, NULL), BERR_BLOB_UNKNOWN);
    /* one EVENT_GC per deleted blob (none for the dry run) */
    CHECK_INT_EQ(sql_int("SELECT count(*) FROM events WHERE action = 'gc'", NULL), 2);
    CHECK_INT_EQ(sql_int("SELECT count(*) FROM events WHERE action = 'gc' AND digest = ? AND repository = '' AND "
                         "size = 8",
                         cfg),
                 1);
    CHECK_INT_EQ(sql_int("SELECT count(*) FROM events WHERE action = 'gc' AND digest = ?", lay), 1);
}

/* A GC batch whose event cannot be written rolls back with the blob row: the row, the file and no event stay. */
static void gc_rolled_back_leaves_row_and_no_event(void)
{
    char lay[BERTH_DIGEST_MAX];
    struct gc_opts o = {.now = db_now(), .grace = 0};
    struct gc_stats s;
    REQUIRE_OK(blob("app", "an upload whose manifest never came", lay));
    REQUIRE_OK(db_exec(db, "CREATE TEMP TRIGGER boom AFTER INSERT ON events WHEN NEW.action = 'gc' BEGIN "
                           "SELECT RAISE(ABORT, 'boom'); END"));
    CHECK(gc_run(db, &bs, &o, NULL, NULL, &s) != 0);
    CHECK_INT_EQ(sql_int("SELECT count(*) FROM blobs WHERE digest = ?", lay), 1);
    CHECK_INT_EQ(sql_int("SELECT count(*) FROM gc_pending", NULL), 0);
    CHECK_INT_EQ(sql_int("SELECT count(*) FROM events WHERE action = 'gc'", NULL), 0);
    CHECK(file_exists(lay));
    REQUIRE_OK(db_exec(db, "DROP TRIGGER boom"));
    REQUIRE_OK(gc_run(db, &bs, &o, NULL, NULL, &s));
    CHECK_INT_EQ(sql_int("SELECT count(*) FROM blobs WHERE digest = ?", lay), 0);
    CHECK_INT_EQ(sql_int("SELECT count(*) FROM events WHERE action = 'gc' AND digest = ?", lay), 1);
    CHECK(!file_exists(lay));
}

/* The upload commit's check: with the row gone but the file still there (GC between its two steps), the
 * commit cancels the pending unlink and keeps the file; with the file gone it refuses (client re-uploads). */
static void gc_commit_check_cancels_a_pending_unlink(void)
{
    char d[BERTH_DIGEST_MAX];
    long long n = -1;
    REQUIRE_OK(blob("app", "racing content", d));
    REQUIRE_OK(WRITE(db_exec(db, "DELETE FROM repo_blobs; DELETE FROM blobs")));
    {
        sqlite3_stmt *st;
        REQUIRE(sqlite3_prepare_v2(db->h, "INSERT INTO gc_pending VALUES (?)", -1, &st, NULL) == SQLITE_OK);
        sqlite3_bind_text(st, 1, d, -1, SQLITE_STATIC);
        REQUIRE(sqlite3_step(st) == SQLITE_DONE);
        sqlite3_finalize(st);
    }
    CHECK_ERR(WRITE(gc_blob_commit_check(db, &bs, d) == 0 ? meta_blob_commit(db, "app", d, 14) : BERR_INTERNAL), 0);
    CHECK_INT_EQ(sql_int("SELECT count(*) FROM gc_pending", NULL), 0);
    REQUIRE_OK(gc_finish_pending(db, &bs, &n));
    CHECK_INT_EQ(n, 0);
    CHECK(file_exists(d));

    /* GC finished first: row and file gone, the commit must not create a row without a file */
    REQUIRE_OK(WRITE(db_exec(db, "DELETE FROM repo_blobs; DELETE FROM blobs")));
    REQUIRE_OK(blobstore_remove(&bs, d));
    CHECK_ERR(WRITE(gc_blob_commit_check(db, &bs, d)), BERR_BLOB_UPLOAD_UNKNOWN);
}

/* A GC interrupted after deleting rows leaves gc_pending entries: the next run unlinks their files. */
static void gc_finishes_an_interrupted_run(void)
{
    char d[BERTH_DIGEST_MAX];
    long long n = -1;
    REQUIRE_OK(blob("app", "orphaned by a crash", d));
    REQUIRE_OK(WRITE(db_exec(db, "DELETE FROM repo_blobs; INSERT INTO gc_pending SELECT digest FROM blobs; "
                                 "DELETE FROM blobs")));
    CHECK(file_exists(d));
    REQUIRE_OK(gc_finish_pending(db, &bs, &n));
    CHECK_INT_EQ(n, 1);
    CHECK(!file_exists(d));
}

struct findings {
    char buf[4096];
    int n;
};

static void note(void *ctx, const char *kind, const char *what, const char *why)
{
    struct findings *f = ctx;
    size_t len = strlen(f->buf);
    (void)why;
    snprintf(f->buf + len, sizeof(f->buf) - len, "%s %s\n", kind, what);
    f->n++;
}

/* fsck is clean on a healthy directory and names each kind of damage; --repair removes only garbage. */
static void fsck_finds_and_repairs_only_garbage(void)
{
    char d[BERTH_DIGEST_MAX], corrupt[BERTH_DIGEST_MAX], missing[BERTH_DIGEST_MAX], path[BLOBSTORE_PATH_MAX];
    struct fsck_stats s;
    struct findings f = {"", 0};
    long long later = db_now() + 2 * FSCK_FRESH_AGE; /* every file is old enough to be judged */
    int fd;
    REQUIRE_OK(image("app", "cfg", "layer", "v1", NULL, d));
    REQUIRE_OK(blob("app", "will be corrupted", corrupt));
    REQUIRE_OK(blob("app", "will lose its file", missing));
    REQUIRE_OK(fsck_run(db, &bs, 0, later, note, NULL, &f, &s));
    CHECK_INT_EQ(s.findings, 0);
    CHECK_INT_EQ(s.files, 4);

    blobstore_path(&bs, corrupt, path, sizeof(path));
    chmod(path, 0644);
    REQUIRE((fd = open(path, O_WRONLY | O_TRUNC)) >= 0);
    REQUIRE(write(fd, "evil", 4) == 4);
    close(fd);
    REQUIRE_OK(blobstore_remove(&bs, missing));
    snprintf(path, sizeof(path), "%s/blobs/sha256/ab", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/blobs/sha256/ab/ab%062d", dir, 0); /* a file no row describes */
    REQUIRE((fd = open(path, O_WRONLY | O_CREAT, 0644)) >= 0);
    close(fd);
    REQUIRE_OK(fsck_run(db, &bs, 1, later, note, NULL, &f, &s));
    CHECK_INT_EQ(s.findings, 3);
    CHECK_INT_EQ(s.repaired, 1);
    CHECK_STR_CONTAINS(f.buf, "corrupt sha256:");
    CHECK_STR_CONTAINS(f.buf, "row-without-file sha256:");
    CHECK_STR_CONTAINS(f.buf, "file-without-row sha256:ab000");
    CHECK(access(path, F_OK) != 0);
    CHECK(file_exists(corrupt)); /* corruption is reported, never hidden */
    CHECK_INT_EQ(sql_int("SELECT count(*) FROM blobs WHERE digest = ?", missing), 1);
    f.buf[0] = '\0';
    REQUIRE_OK(fsck_run(db, &bs, 0, later, note, NULL, &f, &s));
    CHECK_INT_EQ(s.findings, 2);
    /* a link a manifest needs, gone: reported (a pull would fail), not repaired */
    REQUIRE_OK(WRITE(meta_blob_unlink(db, "app", sql_text("SELECT digest FROM manifest_blobs LIMIT 1"))));
    f.buf[0] = '\0';
    REQUIRE_OK(fsck_run(db, &bs, 1, later, note, NULL, &f, &s));
    CHECK_INT_EQ(s.findings, 3);
    CHECK_STR_CONTAINS(f.buf, "manifest-blob-unlinked app@sha256:");
}

/* Deleting a manifest through the API removes its referrers (and theirs) in the same statement. */
static void manifest_delete_takes_referrers_along(void)
{
    char subj[BERTH_DIGEST_MAX], sig[BERTH_DIGEST_MAX], sigsig[BERTH_DIGEST_MAX], other[BERTH_DIGEST_MAX];
    REQUIRE_OK(image("app", "cfg-subject", "layer-subject", "v1", NULL, subj));
    REQUIRE_OK(image("app", "cfg-sig", "layer-sig", "sig-tag", subj, sig));
    REQUIRE_OK(image("app", "cfg-sigsig", "layer-sigsig", NULL, sig, sigsig));
    REQUIRE_OK(image("app", "cfg-other", "layer-other", "v2", NULL, other));
    REQUIRE_OK(WRITE(meta_manifest_delete(db, "app", subj)));
    CHECK_INT_EQ(manifests_with(subj) + manifests_with(sig) + manifests_with(sigsig), 0);
    CHECK_INT_EQ(manifests_with(other), 1);
    CHECK_INT_EQ(sql_int("SELECT count(*) FROM tags", NULL), 1);
    CHECK_ERR(WRITE(meta_manifest_delete(db, "app", subj)), BERR_MANIFEST_UNKNOWN);
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(policy_put_get_delete),
        CHECK_TEST(run_keeps_children_and_referrers_with_their_parent),
        CHECK_TEST(run_keeps_child_shared_with_a_live_index),
        CHECK_TEST(run_applies_untagged_retention_everywhere),
        CHECK_TEST(run_keeps_an_image_tagged_after_selection),
        CHECK_TEST(run_expires_an_image_with_several_tags),
        CHECK_TEST(run_rolled_back_leaves_no_event),
        CHECK_TEST(gc_collects_only_unreferenced_blobs),
        CHECK_TEST(gc_rolled_back_leaves_row_and_no_event),
        CHECK_TEST(gc_commit_check_cancels_a_pending_unlink),
        CHECK_TEST(gc_finishes_an_interrupted_run),
        CHECK_TEST(fsck_finds_and_repairs_only_garbage),
        CHECK_TEST(manifest_delete_takes_referrers_along),
    };
    check_before_each = setup;
    check_after_each = dbfix_teardown;
    return check_run(tests, CHECK_COUNT(tests), argc, argv);
}
