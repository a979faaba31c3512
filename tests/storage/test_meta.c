/* test_meta.c - db.h and meta.h against a real SQLite database in a fresh temp dir per test. */
#include <stdlib.h>
#include "check.h"
#include "dbfix.h"
#include "db.h"
#include "digest.h"
#include "log.h"
#include "manifest.h"
#include "meta.h"

#define CFG_MT "application/vnd.oci.image.config.v1+json"
#define LAYER_MT "application/vnd.oci.image.layer.v1.tar+gzip"

static char detail[512];

/* Runs one SQL query returning a single integer on the test's connection (for what meta.h does not expose). */
static long long sql_int(const char *sql, const char *arg)
{
    sqlite3_stmt *st;
    long long v = -12345;
    if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
        return v;
    if (arg != NULL)
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Commits blob `content` to `repo` in its own transaction; its digest goes to `out`.  Returns 0 or a BERR code. */
static int blob(const char *repo, const char *content, char out[BERTH_DIGEST_MAX])
{
    int rc;
    digest_buf(content, strlen(content), out);
    if ((rc = db_begin(db)) != 0)
        return rc;
    if ((rc = meta_blob_commit(db, repo, out, (int64_t)strlen(content))) != 0) {
        db_rollback(db);
        return rc;
    }
    return db_commit(db);
}

/* Writes an OCI image manifest with config `cfg` and optional layer `layer` (NULL for none) into `buf`.  `extra` is
 * spliced in as further top-level members (e.g. ",\"subject\":{...}"). */
static const char *image(char *buf, size_t size, const char *cfg_mt, const char *cfg, long long cfg_size,
                         const char *layer, long long layer_size, const char *extra)
{
    char layers[256] = "";
    if (layer != NULL)
        snprintf(layers, sizeof(layers), "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%lld}", LAYER_MT, layer,
                 layer_size);
    snprintf(buf, size,
             "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\",\"digest\":\"%s\","
             "\"size\":%lld},\"layers\":[%s]%s}",
             MT_OCI_MANIFEST, cfg_mt, cfg, cfg_size, layers, extra != NULL ? extra : "");
    return buf;
}

/* Parses `body` and stores it in `repo` under `tag` (may be NULL) in one transaction; its digest goes to `digest`.
 * Returns meta_manifest_put's result (detail in `detail`), or the parse error. */
static int put(const char *repo, const char *body, const char *tag, char digest[BERTH_DIGEST_MAX])
{
    struct manifest_info mi;
    int rc;
    char d[BERTH_DIGEST_MAX];
    detail[0] = '\0';
    if (digest == NULL)
        digest = d;
    digest_buf(body, strlen(body), digest);
    if ((rc = manifest_parse(body, strlen(body), NULL, 0, &mi, detail, sizeof(detail))) != 0)
        return rc;
    if ((rc = db_begin(db)) == 0) {
        rc = meta_manifest_put(db, repo, digest, &mi, body, strlen(body), tag, detail, sizeof(detail));
        if (rc == 0)
            rc = db_commit(db);
        else
            db_rollback(db);
    }
    manifest_info_free(&mi);
    return rc;
}

/* A minimal image manifest in `repo`: commits its config blob (content `cfg`) and stores it under `tag`. */
static int put_simple(const char *repo, const char *cfg, const char *tag, char digest[BERTH_DIGEST_MAX])
{
    char body[1024], c[BERTH_DIGEST_MAX];
    int rc = blob(repo, cfg, c);
    if (rc != 0)
        return rc;
    return put(repo, image(body, sizeof(body), CFG_MT, c, (long long)strlen(cfg), NULL, 0, NULL), tag, digest);
}

static void *alloc_malloc(void *ctx, size_t size)
{
    (void)ctx;
    return malloc(size);
}

/* Ends the transaction WRITE opened: commits if `rc` is 0, else rolls back.  Returns `rc` or the commit's error. */
static int end_write(int rc)
{
    if (rc == 0)
        return db_commit(db);
    db_rollback(db);
    return rc;
}

/* Runs the write `expr` in its own transaction (db_begin is evaluated before `expr`). */
#define WRITE(expr) (db_begin(db) == 0 ? end_write(expr) : BERR_DB)

/* Collects listing callbacks into one space-separated string. */
struct names {
    char buf[2048];
    int calls, stop_after;
};

static int collect(void *ctx, const char *name)
{
    struct names *n = ctx;
    size_t len = strlen(n->buf);
    snprintf(n->buf + len, sizeof(n->buf) - len, "%s%s", len > 0 ? " " : "", name);
    n->calls++;
    return n->stop_after > 0 && n->calls >= n->stop_after;
}

/* db_open creates berth.db with WAL, foreign keys and every table, at PRAGMA user_version DB_SCHEMA_VERSION. */
static void db_open_creates_and_migrates(void)
{
    const char *tables[] = {"repos", "blobs",  "repo_blobs", "manifests", "manifest_blobs", "manifest_children",
                            "tags",  "uploads"};
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, DB_FILE);
    CHECK_INT_EQ(access(path, F_OK), 0);
    CHECK_INT_EQ(sql_int("PRAGMA user_version", NULL), DB_SCHEMA_VERSION);
    CHECK_INT_EQ(sql_int("PRAGMA foreign_keys", NULL), 1);
    CHECK_INT_EQ(sql_int("SELECT journal_mode = 'wal' FROM pragma_journal_mode", NULL), 1);
    for (size_t i = 0; i < CHECK_COUNT(tables); i++)
        CHECK_INT_EQ(sql_int("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", tables[i]), 1);
}

/* Reopening an existing database runs no migration twice and keeps the data. */
static void db_reopen_is_idempotent(void)
{
    char d[BERTH_DIGEST_MAX];
    int64_t size = 0;
    REQUIRE_OK(blob("a", "hello", d));
    for (int i = 0; i < 2; i++) {
        db_close(db);
        db = NULL;
        REQUIRE_OK(db_open(dir, &db));
        CHECK_INT_EQ(sql_int("PRAGMA user_version", NULL), DB_SCHEMA_VERSION);
        CHECK_ERR(meta_blob_stat(db, "a", d, &size), 0);
        CHECK_INT_EQ(size, 5);
    }
}

/* A database from a newer berth (user_version above ours) is refused rather than used. */
static void db_open_refuses_newer_schema(void)
{
    struct db *other = NULL;
    REQUIRE_OK(db_exec(db, "PRAGMA user_version = 9999")); /* the refusal below is logged: expected */
    CHECK_ERR(db_open(dir, &other), BERR_DB);
    CHECK_NULL(other);
    db_close(other);
}

/* db_rollback discards the writes of the transaction. */
static void db_rollback_discards_writes(void)
{
    char d[BERTH_DIGEST_MAX];
    digest_buf("x", 1, d);
    REQUIRE_OK(db_begin(db));
    CHECK_ERR(meta_blob_commit(db, "a", d, 1), 0);
    db_rollback(db);
    CHECK_ERR(meta_blob_known(db, d, NULL), BERR_BLOB_UNKNOWN);
    CHECK_INT_EQ(sql_int("SELECT count(*) FROM repos", NULL), 0);
}

/* A committed blob is visible in its repository only: BLOB_UNKNOWN elsewhere, though known globally. */
static void blob_commit_links_only_its_repository(void)
{
    char d[BERTH_DIGEST_MAX];
    int64_t size = -1;
    REQUIRE_OK(blob("repo/a", "layer bytes", d));
    CHECK_ERR(meta_blob_stat(db, "repo/a", d, &size), 0);
    CHECK_INT_EQ(size, 11);
    CHECK_ERR(meta_blob_stat(db, "repo/b", d, &size), BERR_BLOB_UNKNOWN);
    size = -1;
    CHECK_ERR(meta_blob_known(db, d, &size), 0);
    CHECK_INT_EQ(size, 11);
    REQUIRE_OK(blob("repo/a", "layer bytes", d)); /* committing again is harmless */
    CHECK_INT_EQ(sql_int("SELECT count(*) FROM blobs", NULL), 1);
}

/* Mount links a blob only when the source repository links it; then the target serves it too. */
static void blob_mount_requires_source_link(void)
{
    char d[BERTH_DIGEST_MAX];
    int64_t size = -1;
    REQUIRE_OK(blob("src", "shared layer", d));
    REQUIRE_OK(blob("other", "unrelated", (char[BERTH_DIGEST_MAX]){0}));
    CHECK_ERR(WRITE(meta_blob_mount(db, "dst", "other", d, &size)), BERR_BLOB_UNKNOWN);
    CHECK_ERR(WRITE(meta_blob_mount(db, "dst", "nosuchrepo", d, &size)), BERR_BLOB_UNKNOWN);
    CHECK_ERR(meta_blob_stat(db, "dst", d, &size), BERR_BLOB_UNKNOWN);
    size = -1;
    CHECK_ERR(WRITE(meta_blob_mount(db, "dst", "src", d, &size)), 0);
    CHECK_INT_EQ(size, 12);
    size = -1;
    CHECK_ERR(meta_blob_stat(db, "dst", d, &size), 0);
    CHECK_INT_EQ(size, 12);
}

/* Unlink removes one repository's link; other links stay; a second unlink is BLOB_UNKNOWN. */
static void blob_unlink_removes_only_that_link(void)
{
    char d[BERTH_DIGEST_MAX];
    int64_t size;
    REQUIRE_OK(blob("a", "content", d));
    REQUIRE_OK(blob("b", "content", d));
    CHECK_ERR(WRITE(meta_blob_unlink(db, "a", d)), 0);
    CHECK_ERR(meta_blob_stat(db, "a", d, &size), BERR_BLOB_UNKNOWN);
    CHECK_ERR(meta_blob_stat(db, "b", d, &size), 0);
    CHECK_ERR(meta_blob_known(db, d, &size), 0); /* the blob row stays for GC */
    CHECK_ERR(WRITE(meta_blob_unlink(db, "a", d)), BERR_BLOB_UNKNOWN);
    CHECK_ERR(WRITE(meta_blob_unlink(db, "nosuchrepo", d)), BERR_BLOB_UNKNOWN);
}

/* A manifest whose layer is not linked in the repository is MANIFEST_BLOB_UNKNOWN, naming the digest. */
static void manifest_put_rejects_missing_blob(void)
{
    char body[1024], cfg[BERTH_DIGEST_MAX], layer[BERTH_DIGEST_MAX], d[BERTH_DIGEST_MAX];
    REQUIRE_OK(blob("a", "{}", cfg));
    REQUIRE_OK(blob("elsewhere", "layer", layer)); /* exists, but not in "a" */
    image(body, sizeof(body), CFG_MT, cfg, 2, layer, 5, NULL);
    CHECK_ERR(put("a", body, "latest", d), BERR_MANIFEST_BLOB_UNKNOWN);
    CHECK_STR_CONTAINS(detail, layer);
    CHECK_ERR(meta_manifest_get(db, "a", "latest", 0, &(struct meta_manifest){0}, NULL, NULL), BERR_MANIFEST_UNKNOWN);
    CHECK_ERR(meta_manifest_get(db, "a", d, 1, &(struct meta_manifest){0}, NULL, NULL), BERR_MANIFEST_UNKNOWN);
}

/* An index whose child manifest is not in the repository is MANIFEST_CHILD_UNKNOWN (OCI MANIFEST_UNKNOWN). */
static void manifest_put_rejects_missing_child_manifest(void)
{
    char body[1024], child[BERTH_DIGEST_MAX], missing[BERTH_DIGEST_MAX];
    REQUIRE_OK(put_simple("a", "{\"os\":\"linux\"}", NULL, child));
    digest_buf("not pushed", 10, missing);
    snprintf(body, sizeof(body),
             "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[{\"mediaType\":\"%s\",\"digest\":\"%s\","
             "\"size\":%lld},{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":10}]}",
             MT_OCI_INDEX, MT_OCI_MANIFEST, child, sql_int("SELECT size FROM manifests WHERE digest = ?", child),
             MT_OCI_MANIFEST, missing);
    CHECK_ERR(put("a", body, "multi", NULL), BERR_MANIFEST_CHILD_UNKNOWN);
    CHECK_STR_CONTAINS(detail, missing);
}

/* An index whose children are all present is stored, with its children recorded. */
static void manifest_put_accepts_index_with_children(void)
{
    char body[1024], child[BERTH_DIGEST_MAX], idx[BERTH_DIGEST_MAX];
    struct meta_manifest m;
    REQUIRE_OK(put_simple("a", "{\"os\":\"linux\"}", NULL, child));
    snprintf(body, sizeof(body),
             "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[{\"mediaType\":\"%s\",\"digest\":\"%s\","
             "\"size\":%lld}]}",
             MT_OCI_INDEX, MT_OCI_MANIFEST, child, sql_int("SELECT size FROM manifests WHERE digest = ?", child));
    REQUIRE_ERR(put("a", body, "multi", idx), 0);
    REQUIRE_ERR(meta_manifest_get(db, "a", "multi", 0, &m, NULL, NULL), 0);
    CHECK_STR_EQ(m.digest, idx);
    CHECK_STR_EQ(m.media_type, MT_OCI_INDEX);
    CHECK_INT_EQ(sql_int("SELECT count(*) FROM manifest_children WHERE child_digest = ?", child), 1);
}

/* A descriptor whose size differs from the stored blob's is MANIFEST_INVALID, naming both sizes. */
static void manifest_put_rejects_size_mismatch(void)
{
    char body[1024], cfg[BERTH_DIGEST_MAX], layer[BERTH_DIGEST_MAX];
    REQUIRE_OK(blob("a", "{}", cfg));
    REQUIRE_OK(blob("a", "12345", layer));
    image(body, sizeof(body), CFG_MT, cfg, 2, layer, 6, NULL);
    CHECK_ERR(put("a", body, "latest", NULL), BERR_MANIFEST_INVALID);
    CHECK_STR_CONTAINS(detail, layer);
    CHECK_STR_CONTAINS(detail, "6");
    CHECK_STR_CONTAINS(detail, "5");
    image(body, sizeof(body), CFG_MT, cfg, 2, layer, 5, NULL);
    CHECK_ERR(put("a", body, "latest", NULL), 0);
}

/* A foreign layer (non-distributable, with urls) need not be in the registry. */
static void manifest_put_skips_foreign_layers(void)
{
    char body[1024], cfg[BERTH_DIGEST_MAX], foreign[BERTH_DIGEST_MAX];
    REQUIRE_OK(blob("a", "{}", cfg));
    digest_buf("on another server", 17, foreign);
    snprintf(body, sizeof(body),
             "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\",\"digest\":\"%s\","
             "\"size\":2},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip\","
             "\"digest\":\"%s\",\"size\":17,\"urls\":[\"https://example.com/l\"]}]}",
             MT_OCI_MANIFEST, CFG_MT, cfg, foreign);
    CHECK_ERR(put("a", body, "win", NULL), 0);
}

/* Put then get, by tag and by digest, returns the exact bytes pushed (whitespace and key order included). */
static void manifest_get_returns_exact_bytes(void)
{
    char cfg[BERTH_DIGEST_MAX], body[1024], d[BERTH_DIGEST_MAX];
    struct meta_manifest m;
    REQUIRE_OK(blob("a/b", "{}", cfg));
    snprintf(body, sizeof(body),
             "{\n  \"schemaVersion\" : 2,\n  \"config\": {\"size\":2, \"digest\":\"%s\", \"mediaType\":\"%s\"},\n"
             "  \"mediaType\":\"%s\",  \"layers\":[]\n}\n",
             cfg, CFG_MT, MT_OCI_MANIFEST);
    REQUIRE_ERR(put("a/b", body, "v1", d), 0);
    for (int by_digest = 0; by_digest <= 1; by_digest++) {
        memset(&m, 0, sizeof(m));
        REQUIRE_ERR(meta_manifest_get(db, "a/b", by_digest ? d : "v1", by_digest, &m, alloc_malloc, NULL), 0);
        CHECK_MEM_EQ(m.body, m.size, body, strlen(body));
        CHECK_STR_EQ(m.digest, d);
        CHECK_STR_EQ(m.media_type, MT_OCI_MANIFEST);
        CHECK(m.id > 0);
        free(m.body);
    }
    memset(&m, 0, sizeof(m));
    REQUIRE_ERR(meta_manifest_get(db, "a/b", "v1", 0, &m, NULL, NULL), 0); /* head only */
    CHECK_NULL(m.body);
    CHECK_INT_EQ(m.size, strlen(body));
    CHECK_STR_EQ(m.digest, d);
}

/* Unknown repository, tag or digest, and a digest stored in another repository, are MANIFEST_UNKNOWN. */
static void manifest_get_unknown_is_manifest_unknown(void)
{
    char d[BERTH_DIGEST_MAX];
    struct meta_manifest m;
    REQUIRE_OK(put_simple("a", "{}", "v1", d));
    CHECK_ERR(meta_manifest_get(db, "nosuch", "v1", 0, &m, NULL, NULL), BERR_MANIFEST_UNKNOWN);
    CHECK_ERR(meta_manifest_get(db, "a", "v2", 0, &m, NULL, NULL), BERR_MANIFEST_UNKNOWN);
    CHECK_ERR(meta_manifest_get(db, "b", d, 1, &m, NULL, NULL), BERR_MANIFEST_UNKNOWN);
    CHECK_ERR(meta_manifest_get(db, "a", d, 0, &m, NULL, NULL), BERR_MANIFEST_UNKNOWN); /* a digest is no tag */
}

/* Pushing another manifest under an existing tag moves the tag; the old manifest stays reachable by digest. */
static void tag_moves_to_new_manifest(void)
{
    char d1[BERTH_DIGEST_MAX], d2[BERTH_DIGEST_MAX];
    struct meta_manifest m;
    REQUIRE_OK(put_simple("a", "{\"v\":1}", "latest", d1));
    REQUIRE_OK(put_simple("a", "{\"v\":2}", "latest", d2));
    CHECK(strcmp(d1, d2) != 0);
    REQUIRE_ERR(meta_manifest_get(db, "a", "latest", 0, &m, NULL, NULL), 0);
    CHECK_STR_EQ(m.digest, d2);
    CHECK_ERR(meta_manifest_get(db, "a", d1, 1, &m, NULL, NULL), 0);
    CHECK_INT_EQ(sql_int("SELECT count(*) FROM tags", NULL), 1);
    REQUIRE_OK(put_simple("a", "{\"v\":1}", "old", d1)); /* re-pushing a stored manifest just adds the tag */
    CHECK_INT_EQ(sql_int("SELECT count(*) FROM manifests", NULL), 2);
    REQUIRE_ERR(meta_manifest_get(db, "a", "old", 0, &m, NULL, NULL), 0);
    CHECK_STR_EQ(m.digest, d1);
}

/* Deleting a manifest by digest deletes every tag pointing to it, and nothing else. */
static void manifest_delete_removes_its_tags(void)
{
    char d1[BERTH_DIGEST_MAX], d2[BERTH_DIGEST_MAX];
    struct meta_manifest m;
    struct names n = {0};
    int more = -1;
    REQUIRE_OK(put_simple("a", "{\"v\":1}", "v1", d1));
    REQUIRE_OK(put_simple("a", "{\"v\":1}", "stable", d1));
    REQUIRE_OK(put_simple("a", "{\"v\":2}", "v2", d2));
    CHECK_ERR(WRITE(meta_manifest_delete(db, "a", d1)), 0);
    CHECK_ERR(meta_manifest_get(db, "a", d1, 1, &m, NULL, NULL), BERR_MANIFEST_UNKNOWN);
    CHECK_ERR(meta_manifest_get(db, "a", "v1", 0, &m, NULL, NULL), BERR_MANIFEST_UNKNOWN);
    CHECK_ERR(meta_manifest_get(db, "a", "stable", 0, &m, NULL, NULL), BERR_MANIFEST_UNKNOWN);
    CHECK_ERR(meta_tags_list(db, "a", NULL, 100, collect, &n, &more), 0);
    CHECK_STR_EQ(n.buf, "v2");
    CHECK_ERR(WRITE(meta_manifest_delete(db, "a", d1)), BERR_MANIFEST_UNKNOWN);
    CHECK_ERR(WRITE(meta_manifest_delete(db, "nosuch", d2)), BERR_MANIFEST_UNKNOWN);
}

/* Deleting a tag removes only the tag: the manifest and its other tags stay. */
static void tag_delete_keeps_manifest(void)
{
    char d[BERTH_DIGEST_MAX];
    struct meta_manifest m;
    REQUIRE_OK(put_simple("a", "{}", "v1", d));
    REQUIRE_OK(put_simple("a", "{}", "latest", d));
    CHECK_ERR(WRITE(meta_tag_delete(db, "a", "v1")), 0);
    CHECK_ERR(meta_manifest_get(db, "a", "v1", 0, &m, NULL, NULL), BERR_MANIFEST_UNKNOWN);
    CHECK_ERR(meta_manifest_get(db, "a", d, 1, &m, NULL, NULL), 0);
    CHECK_ERR(meta_manifest_get(db, "a", "latest", 0, &m, NULL, NULL), 0);
    CHECK_ERR(WRITE(meta_tag_delete(db, "a", "v1")), BERR_MANIFEST_UNKNOWN);
}

/* Tags list in byte order (uppercase first) and paginate with n / last, setting *more only when more remain. */
static void tags_list_orders_and_paginates(void)
{
    const char *tags[] = {"b", "a", "Z", "c", "a1", "d"};
    struct names n;
    int more;
    for (size_t i = 0; i < CHECK_COUNT(tags); i++)
        REQUIRE_OK(put_simple("r", "{}", tags[i], NULL));
    n = (struct names){0};
    CHECK_ERR(meta_tags_list(db, "r", NULL, 100, collect, &n, &more), 0);
    CHECK_STR_EQ(n.buf, "Z a a1 b c d");
    CHECK_INT_EQ(more, 0);
    n = (struct names){0};
    CHECK_ERR(meta_tags_list(db, "r", NULL, 2, collect, &n, &more), 0);
    CHECK_STR_EQ(n.buf, "Z a");
    CHECK_INT_EQ(more, 1);
    n = (struct names){0};
    CHECK_ERR(meta_tags_list(db, "r", "a", 3, collect, &n, &more), 0);
    CHECK_STR_EQ(n.buf, "a1 b c");
    CHECK_INT_EQ(more, 1);
    n = (struct names){0};
    CHECK_ERR(meta_tags_list(db, "r", "b", 2, collect, &n, &more), 0); /* exactly the rest */
    CHECK_STR_EQ(n.buf, "c d");
    CHECK_INT_EQ(more, 0);
    n = (struct names){0};
    CHECK_ERR(meta_tags_list(db, "r", "bb", 10, collect, &n, &more), 0); /* `last` need not be a tag */
    CHECK_STR_EQ(n.buf, "c d");
    n = (struct names){0};
    CHECK_ERR(meta_tags_list(db, "r", "d", 10, collect, &n, &more), 0);
    CHECK_STR_EQ(n.buf, "");
    CHECK_INT_EQ(more, 0);
    n = (struct names){.stop_after = 1};
    CHECK_ERR(meta_tags_list(db, "r", NULL, 10, collect, &n, &more), 0); /* the callback may stop early */
    CHECK_INT_EQ(n.calls, 1);
}

/* Listing the tags of a repository that does not exist is NAME_UNKNOWN; of one without tags, empty. */
static void tags_list_unknown_repo_is_name_unknown(void)
{
    struct names n = {0};
    int more = -1;
    char d[BERTH_DIGEST_MAX];
    CHECK_ERR(meta_tags_list(db, "nosuch", NULL, 10, collect, &n, &more), BERR_NAME_UNKNOWN);
    REQUIRE_OK(blob("empty", "x", d));
    CHECK_ERR(meta_tags_list(db, "empty", NULL, 10, collect, &n, &more), 0);
    CHECK_INT_EQ(n.calls, 0);
    CHECK_INT_EQ(more, 0);
}

/* The catalog lists repository names in order, paginated like tags. */
static void catalog_paginates(void)
{
    const char *repos[] = {"b/x", "a", "b", "c/d/e", "a/z"};
    struct names n;
    int more;
    for (size_t i = 0; i < CHECK_COUNT(repos); i++)
        REQUIRE_OK(put_simple(repos[i], "{}", "latest", NULL));
    n = (struct names){0};
    CHECK_ERR(meta_catalog(db, NULL, 1000, collect, &n, &more), 0);
    CHECK_STR_EQ(n.buf, "a a/z b b/x c/d/e");
    CHECK_INT_EQ(more, 0);
    n = (struct names){0};
    CHECK_ERR(meta_catalog(db, NULL, 2, collect, &n, &more), 0);
    CHECK_STR_EQ(n.buf, "a a/z");
    CHECK_INT_EQ(more, 1);
    n = (struct names){0};
    CHECK_ERR(meta_catalog(db, "a/z", 2, collect, &n, &more), 0);
    CHECK_STR_EQ(n.buf, "b b/x");
    CHECK_INT_EQ(more, 1);
    n = (struct names){0};
    CHECK_ERR(meta_catalog(db, "b/x", 2, collect, &n, &more), 0);
    CHECK_STR_EQ(n.buf, "c/d/e");
    CHECK_INT_EQ(more, 0);
}

struct refs {
    char buf[2048];
    int calls;
};

static int collect_referrer(void *ctx, const struct meta_referrer *r)
{
    struct refs *x = ctx;
    size_t len = strlen(x->buf);
    snprintf(x->buf + len, sizeof(x->buf) - len, "%s%s|%s|%lld|%s|%s", len > 0 ? "\n" : "", r->digest, r->media_type,
             (long long)r->size, r->artifact_type ? r->artifact_type : "-", r->annotations ? r->annotations : "-");
    x->calls++;
    return 0;
}

/* Referrers of a subject list in push order with their artifact type (artifactType, else config.mediaType) and
 * annotations; the artifact-type filter keeps only matching ones; other subjects and repositories are excluded. */
static void referrers_filter_by_artifact_type(void)
{
    char subj[BERTH_DIGEST_MAX], other[BERTH_DIGEST_MAX], cfg[BERTH_DIGEST_MAX], body[2048], extra[512];
    char sbom[BERTH_DIGEST_MAX], sig[BERTH_DIGEST_MAX], expect[2048];
    struct refs r = {0};
    size_t sbom_len, sig_len;
    REQUIRE_OK(put_simple("a", "{\"subject\":1}", "v1", subj));
    REQUIRE_OK(put_simple("a", "{\"subject\":2}", "v2", other));
    REQUIRE_OK(blob("a", "{}", cfg));
    snprintf(extra, sizeof(extra),
             ",\"artifactType\":\"application/vnd.example.sbom\",\"subject\":{\"mediaType\":\"%s\","
             "\"digest\":\"%s\",\"size\":1},\"annotations\":{\"org.opencontainers.image.created\":\"2024\"}",
             MT_OCI_MANIFEST, subj);
    REQUIRE_ERR(
        put("a", image(body, sizeof(body), "application/vnd.oci.empty.v1+json", cfg, 2, NULL, 0, extra), NULL, sbom),
        0);
    sbom_len = strlen(body);
    snprintf(extra, sizeof(extra), ",\"subject\":{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":1}", MT_OCI_MANIFEST,
             subj);
    REQUIRE_ERR(
        put("a", image(body, sizeof(body), "application/vnd.example.sig.config", cfg, 2, NULL, 0, extra), NULL, sig),
        0);
    sig_len = strlen(body);
    snprintf(extra, sizeof(extra), ",\"subject\":{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":1}", MT_OCI_MANIFEST,
             other);
    REQUIRE_ERR(
        put("a", image(body, sizeof(body), "application/vnd.example.other", cfg, 2, NULL, 0, extra), NULL, NULL), 0);

    CHECK_ERR(meta_referrers(db, "a", subj, NULL, 100, collect_referrer, &r), 0);
    snprintf(expect, sizeof(expect),
             "%s|%s|%zu|application/vnd.example.sbom|{\"org.opencontainers.image.created\":\"2024\"}\n"
             "%s|%s|%zu|application/vnd.example.sig.config|-",
             sbom, MT_OCI_MANIFEST, sbom_len, sig, MT_OCI_MANIFEST, sig_len);
    CHECK_STR_EQ(r.buf, expect);

    r = (struct refs){0};
    CHECK_ERR(meta_referrers(db, "a", subj, "application/vnd.example.sig.config", 100, collect_referrer, &r), 0);
    CHECK_INT_EQ(r.calls, 1);
    CHECK_STR_CONTAINS(r.buf, sig);
    r = (struct refs){0};
    CHECK_ERR(meta_referrers(db, "a", subj, "application/vnd.example.none", 100, collect_referrer, &r), 0);
    CHECK_INT_EQ(r.calls, 0);
    r = (struct refs){0};
    CHECK_ERR(meta_referrers(db, "a", subj, NULL, 1, collect_referrer, &r), 0); /* at most `max` */
    CHECK_INT_EQ(r.calls, 1);
    r = (struct refs){0};
    CHECK_ERR(meta_referrers(db, "b", subj, NULL, 100, collect_referrer, &r), 0);
    CHECK_INT_EQ(r.calls, 0);
}

/* Upload rows: found only under their own repository, gone after delete; delete of an absent row is fine. */
static void upload_rows_add_find_del(void)
{
    const char *u1 = "0b6c5a8e-1f3d-4e2a-9c7b-5d4e3f2a1b0c", *u2 = "1b6c5a8e-1f3d-4e2a-9c7b-5d4e3f2a1b0c";
    struct names n = {0};
    CHECK_ERR(WRITE(meta_upload_add(db, u1, "a")), 0);
    CHECK_ERR(WRITE(meta_upload_add(db, u2, "b")), 0);
    CHECK_ERR(meta_upload_find(db, u1, "a"), 0);
    CHECK_ERR(meta_upload_find(db, u1, "b"), BERR_BLOB_UPLOAD_UNKNOWN);
    CHECK_ERR(meta_upload_find(db, u1, "nosuch"), BERR_BLOB_UPLOAD_UNKNOWN);
    CHECK_ERR(meta_uploads_each(db, collect, &n), 0);
    CHECK_STR_EQ(n.buf, "0b6c5a8e-1f3d-4e2a-9c7b-5d4e3f2a1b0c 1b6c5a8e-1f3d-4e2a-9c7b-5d4e3f2a1b0c");
    CHECK(WRITE(meta_upload_add(db, u1, "a")) != 0); /* a uuid is unique */
    CHECK_ERR(WRITE(meta_upload_del(db, u1)), 0);
    CHECK_ERR(meta_upload_find(db, u1, "a"), BERR_BLOB_UPLOAD_UNKNOWN);
    CHECK_ERR(meta_upload_find(db, u2, "b"), 0);
    CHECK_ERR(WRITE(meta_upload_del(db, u1)), 0);
}

/* last_pulled_at only moves forward: an earlier time never overwrites a later one. */
static void manifest_pulled_only_moves_forward(void)
{
    char d[BERTH_DIGEST_MAX];
    struct meta_manifest m;
    const char *q = "SELECT last_pulled_at FROM manifests WHERE digest = ?";
    REQUIRE_OK(put_simple("a", "{}", "v1", d));
    REQUIRE_ERR(meta_manifest_get(db, "a", d, 1, &m, NULL, NULL), 0);
    CHECK_INT_EQ(sql_int(q, d), -1); /* NULL: never pulled */
    CHECK_ERR(WRITE(meta_manifest_pulled(db, m.id, 2000)), 0);
    CHECK_INT_EQ(sql_int(q, d), 2000);
    CHECK_ERR(WRITE(meta_manifest_pulled(db, m.id, 1000)), 0);
    CHECK_INT_EQ(sql_int(q, d), 2000);
    CHECK_ERR(WRITE(meta_manifest_pulled(db, m.id, 3000)), 0);
    CHECK_INT_EQ(sql_int(q, d), 3000);
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(db_open_creates_and_migrates),
        CHECK_TEST(db_reopen_is_idempotent),
        CHECK_TEST(db_open_refuses_newer_schema),
        CHECK_TEST(db_rollback_discards_writes),
        CHECK_TEST(blob_commit_links_only_its_repository),
        CHECK_TEST(blob_mount_requires_source_link),
        CHECK_TEST(blob_unlink_removes_only_that_link),
        CHECK_TEST(manifest_put_rejects_missing_blob),
        CHECK_TEST(manifest_put_rejects_missing_child_manifest),
        CHECK_TEST(manifest_put_accepts_index_with_children),
        CHECK_TEST(manifest_put_rejects_size_mismatch),
        CHECK_TEST(manifest_put_skips_foreign_layers),
        CHECK_TEST(manifest_get_returns_exact_bytes),
        CHECK_TEST(manifest_get_unknown_is_manifest_unknown),
        CHECK_TEST(tag_moves_to_new_manifest),
        CHECK_TEST(manifest_delete_removes_its_tags),
        CHECK_TEST(tag_delete_keeps_manifest),
        CHECK_TEST(tags_list_orders_and_paginates),
        CHECK_TEST(tags_list_unknown_repo_is_name_unknown),
        CHECK_TEST(catalog_paginates),
        CHECK_TEST(referrers_filter_by_artifact_type),
        CHECK_TEST(upload_rows_add_find_del),
        CHECK_TEST(manifest_pulled_only_moves_forward),
    };
    check_before_each = dbfix_setup;
    check_after_each = dbfix_teardown;
    log_set_level(LOG_ERROR);
    return check_run(tests, CHECK_COUNT(tests), argc, argv);
}
