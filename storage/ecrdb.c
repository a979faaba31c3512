/* ecrdb.c - ECR repositories, settings, resource tags and image listings over berth.db (see ecrdb.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <sodium.h>
#include "ecrdb.h"
#include "err.h"
#include "meta.h"
#include "names.h"

/* Every statement is cached per connection in its own slot (db.h). */
enum {
    S_REGISTRY_ID = DB_SLOTS_ECRDB,
    S_REGISTRY_ID_INSERT,
    S_REPO_GET,
    S_SETTINGS_UPSERT,
    S_REPO_INSERT,
    S_REPOS_EACH,
    S_COUNT_IMAGES,
    S_DELETE_TAGS,
    S_DELETE_REPO,
    S_TAG_CHECK,
    S_IMAGES_EACH,                           /* + ECRDB_TAGGED .. ECRDB_ANY - 1: one slot per status filter */
    S_IMAGE_GET = S_IMAGES_EACH + ECRDB_ANY, /* after the three */
    S_IMAGE_IDS,                             /* + status - 1, as above */
    S_RTAG_SET = S_IMAGE_IDS + ECRDB_ANY,
    S_RTAG_DEL,
    S_RTAGS_EACH,
    S_IMAGE_TAGGED,
    S_PREVIEW_PUT,
    S_PREVIEW_GET,
    S_READ_BEGIN,
    S_READ_END,
    S_ECRDB_END
};
DB_SLOTS_CHECK(ECRDB, S_ECRDB_END);

/* The cached statement of `slot` (db_stmt) into *st.  Returns 0 or BERR_DB (logged). */
static int prepare(struct db *db, int slot, const char *sql, struct db_stmt **st)
{
    return (*st = db_stmt(db, slot, sql)) != NULL ? 0 : BERR_DB;
}

/* Steps a statement expected to finish without rows, resets it.  Returns 0 or BERR_DB. */
static int exec_done(struct db *db, struct db_stmt *st)
{
    int rc = db_step(st) == DB_DONE ? 0 : db_error(db);
    db_reset(st);
    return rc;
}

static void text_col(struct db_stmt *st, int col, char *out, size_t size)
{
    const char *t = db_column_text(st, col);
    snprintf(out, size, "%s", t ? (const char *)t : "");
}

/* ---- mutability ---- */

int ecrdb_mutability_valid(const char *s)
{
    return strcmp(s, "MUTABLE") == 0 || strcmp(s, "IMMUTABLE") == 0 || strcmp(s, "IMMUTABLE_WITH_EXCLUSION") == 0 ||
           strcmp(s, "MUTABLE_WITH_EXCLUSION") == 0;
}

/* 1 if `tag` matches any {"filter": …} of the JSON array `filters`. */
static int filters_match(const char *filters, const char *tag)
{
    json_t *a, *f;
    size_t i;
    int hit = 0;
    if (filters == NULL || filters[0] == '\0' || (a = json_loads(filters, 0, NULL)) == NULL)
        return 0;
    json_array_foreach(a, i, f)
    {
        const char *pat = json_string_value(json_object_get(f, "filter"));
        if (pat != NULL && names_glob_match(pat, tag))
            hit = 1;
    }
    json_decref(a);
    return hit;
}

int ecrdb_tag_immutable(const char *mutability, const char *filters, const char *tag)
{
    if (strcmp(mutability, "IMMUTABLE") == 0)
        return 1;
    if (strcmp(mutability, "IMMUTABLE_WITH_EXCLUSION") == 0)
        return !filters_match(filters, tag);
    if (strcmp(mutability, "MUTABLE_WITH_EXCLUSION") == 0)
        return filters_match(filters, tag);
    return 0;
}

/* ---- registry id ---- */

int ecrdb_registry_id(struct db *db, const char *configured, char out[ECRDB_REGISTRY_ID_LEN + 1])
{
    struct db_stmt *st;
    int rc;
    if (configured != NULL && configured[0] != '\0') {
        snprintf(out, ECRDB_REGISTRY_ID_LEN + 1, "%s", configured);
        return 0;
    }
    if ((rc = prepare(db, S_REGISTRY_ID, "SELECT value FROM ecr_settings WHERE name = 'registry_id'", &st)) != 0)
        return rc;
    rc = db_step(st);
    if (rc == DB_ROW)
        text_col(st, 0, out, ECRDB_REGISTRY_ID_LEN + 1);
    db_reset(st);
    return rc == DB_ROW ? 0 : rc == DB_DONE ? BERR_NOT_FOUND : db_error(db);
}

int ecrdb_registry_id_init(struct db *db, const char *datadir, char out[ECRDB_REGISTRY_ID_LEN + 1])
{
    char abs[4096], id[ECRDB_REGISTRY_ID_LEN + 1];
    unsigned char h[16];
    unsigned long long v = 0;
    struct db_stmt *st;
    int rc;
    if (realpath(datadir, abs) == NULL)
        snprintf(abs, sizeof(abs), "%s", datadir);
    crypto_generichash(h, sizeof(h), (const unsigned char *)abs, strlen(abs), NULL, 0);
    for (int i = 0; i < 8; i++)
        v = v << 8 | h[i];
    snprintf(id, sizeof(id), "%012llu", v % 1000000000000ull);
    if ((rc = prepare(db, S_REGISTRY_ID_INSERT,
                      "INSERT INTO ecr_settings (name, value) VALUES ('registry_id', ?) ON CONFLICT (name) DO NOTHING",
                      &st)) != 0)
        return rc;
    db_bind_text(st, 1, id, -1);
    if ((rc = exec_done(db, st)) != 0)
        return rc;
    return ecrdb_registry_id(db, NULL, out);
}

/* ---- repositories ---- */

#define REPO_SELECT                                                                                                    \
    "SELECT r.id, r.name, r.created_at, coalesce(e.tag_mutability, 'MUTABLE'), coalesce(e.mutability_filters, '') "    \
    "FROM repos r LEFT JOIN ecr_repos e ON e.repo_id = r.id "

static void row_to_repo(struct db_stmt *st, struct ecrdb_repo *r)
{
    r->id = db_column_int64(st, 0);
    text_col(st, 1, r->name, sizeof(r->name));
    r->created_at = db_column_int64(st, 2);
    text_col(st, 3, r->mutability, sizeof(r->mutability));
    text_col(st, 4, r->filters, sizeof(r->filters));
}

int ecrdb_repo_get(struct db *db, const char *name, struct ecrdb_repo *out)
{
    struct db_stmt *st;
    int rc = prepare(db, S_REPO_GET, REPO_SELECT "WHERE r.name = ?", &st);
    if (rc != 0)
        return rc;
    db_bind_text(st, 1, name, -1);
    rc = db_step(st);
    if (rc == DB_ROW)
        row_to_repo(st, out);
    db_reset(st);
    return rc == DB_ROW ? 0 : rc == DB_DONE ? BERR_NAME_UNKNOWN : db_error(db);
}

static int set_settings(struct db *db, int64_t id, const char *mutability, const char *filters)
{
    struct db_stmt *st;
    int rc = prepare(db, S_SETTINGS_UPSERT,
                     "INSERT INTO ecr_repos (repo_id, tag_mutability, mutability_filters) VALUES (?, ?, ?) "
                     "ON CONFLICT (repo_id) DO UPDATE SET tag_mutability = excluded.tag_mutability, "
                     "mutability_filters = excluded.mutability_filters",
                     &st);
    if (rc != 0)
        return rc;
    db_bind_int64(st, 1, id);
    db_bind_text(st, 2, mutability, -1);
    if (filters != NULL && filters[0] != '\0')
        db_bind_text(st, 3, filters, -1);
    return exec_done(db, st);
}

int ecrdb_repo_create(struct db *db, const char *name, const char *mutability, const char *filters,
                      struct ecrdb_repo *out)
{
    struct db_stmt *st;
    int64_t id;
    int rc = ecrdb_repo_get(db, name, out);
    if (rc == 0)
        return ECRDB_EXISTS;
    if (rc != BERR_NAME_UNKNOWN)
        return rc;
    if ((rc = prepare(db, S_REPO_INSERT, "INSERT INTO repos (name, created_at) VALUES (?, ?) RETURNING id", &st)) != 0)
        return rc;
    db_bind_text(st, 1, name, -1);
    db_bind_int64(st, 2, db_now());
    rc = db_step(st);
    id = rc == DB_ROW ? db_column_int64(st, 0) : 0;
    rc = rc == DB_ROW ? 0 : db_error(db);
    db_reset(st);
    if (rc != 0)
        return rc;
    if ((rc = set_settings(db, id, mutability, filters)) != 0)
        return rc;
    return ecrdb_repo_get(db, name, out);
}

int ecrdb_repos_each(struct db *db, const char *after, int n, ecrdb_repo_cb cb, void *ctx, int *more)
{
    struct db_stmt *st;
    struct ecrdb_repo *r = malloc(sizeof(*r));
    int rc, count = 0;
    *more = 0;
    if (r == NULL)
        return BERR_NOMEM;
    if ((rc = prepare(db, S_REPOS_EACH, REPO_SELECT "WHERE r.name > ? ORDER BY r.name LIMIT ?", &st)) != 0) {
        free(r);
        return rc;
    }
    db_bind_text(st, 1, after ? after : "", -1);
    db_bind_int64(st, 2, n + 1);
    while ((rc = db_step(st)) == DB_ROW) {
        if (count++ == n) {
            *more = 1;
            break;
        }
        row_to_repo(st, r);
        if (cb(ctx, r) != 0)
            break;
    }
    rc = rc == DB_ROW || rc == DB_DONE ? 0 : db_error(db);
    db_reset(st);
    free(r);
    return rc;
}

static int count_images(struct db *db, int64_t repo_id, int *n)
{
    struct db_stmt *st;
    int rc = prepare(db, S_COUNT_IMAGES, "SELECT count(*) FROM manifests WHERE repo_id = ?", &st);
    if (rc != 0)
        return rc;
    db_bind_int64(st, 1, repo_id);
    rc = db_step(st) == DB_ROW ? 0 : db_error(db);
    *n = db_column_int64(st, 0);
    db_reset(st);
    return rc;
}

int ecrdb_repo_delete(struct db *db, const char *name, int force, struct ecrdb_repo *out, int *image_count)
{
    struct db_stmt *st;
    int rc = ecrdb_repo_get(db, name, out);
    if (rc != 0 || (rc = count_images(db, out->id, image_count)) != 0)
        return rc;
    if (*image_count > 0 && !force)
        return ECRDB_NOT_EMPTY;
    /* tags reference manifests and repos: delete them first so no cascade order can trip a foreign key */
    if ((rc = prepare(db, S_DELETE_TAGS, "DELETE FROM tags WHERE repo_id = ?", &st)) != 0)
        return rc;
    db_bind_int64(st, 1, out->id);
    if ((rc = exec_done(db, st)) != 0)
        return rc;
    if ((rc = prepare(db, S_DELETE_REPO, "DELETE FROM repos WHERE id = ?", &st)) != 0)
        return rc;
    db_bind_int64(st, 1, out->id);
    return exec_done(db, st);
}

int ecrdb_repo_set_mutability(struct db *db, const char *name, const char *mutability, const char *filters)
{
    struct ecrdb_repo r;
    int rc = ecrdb_repo_get(db, name, &r);
    return rc != 0 ? rc : set_settings(db, r.id, mutability, filters);
}

int ecrdb_tag_check(struct db *db, const char *repo, const char *tag, const char *digest)
{
    struct db_stmt *st;
    char mut[ECRDB_MUTABILITY_MAX + 1], *filters = NULL;
    int rc = prepare(db, S_TAG_CHECK,
                     "SELECT m.digest, coalesce(e.tag_mutability, 'MUTABLE'), e.mutability_filters "
                     "FROM repos r JOIN tags t ON t.repo_id = r.id JOIN manifests m ON m.id = t.manifest_id "
                     "LEFT JOIN ecr_repos e ON e.repo_id = r.id WHERE r.name = ? AND t.name = ?",
                     &st);
    if (rc != 0)
        return rc;
    db_bind_text(st, 1, repo, -1);
    db_bind_text(st, 2, tag, -1);
    rc = db_step(st);
    if (rc == DB_ROW) {
        const char *have = (const char *)db_column_text(st, 0), *f = (const char *)db_column_text(st, 2);
        text_col(st, 1, mut, sizeof(mut));
        filters = f ? strdup(f) : NULL;
        rc = strcmp(have, digest) != 0 && ecrdb_tag_immutable(mut, filters, tag) ? ECRDB_IMMUTABLE : 0;
    } else {
        rc = rc == DB_DONE ? 0 : db_error(db);
    }
    free(filters);
    db_reset(st);
    return rc;
}

/* ---- images ---- */

/* The untagged/tagged condition on manifest m for a status filter. */
static const char *status_sql(int status)
{
    if (status == ECRDB_TAGGED)
        return " AND EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id)";
    if (status == ECRDB_UNTAGGED)
        return " AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id)";
    return "";
}

/* An image's tags joined by newlines: the one aggregate the two SQL dialects spell differently.  A tag's repo_id is
 * always its manifest's; saying so lets SQLite read the names in order from the index tags_manifest (manifest_id,
 * then the key repo_id, name) instead of sorting them in a temporary b-tree for every image of a page (that sort was
 * most of DescribeImages' time). */
#define IMAGE_TAGS_SQLITE                                                                                              \
    "coalesce((SELECT group_concat(name, char(10)) FROM (SELECT name FROM tags t WHERE t.manifest_id = m.id "          \
    "AND t.repo_id = m.repo_id ORDER BY name)), ''), "
#define IMAGE_TAGS_PG                                                                                                  \
    "coalesce((SELECT string_agg(name, chr(10) ORDER BY name) FROM tags t WHERE t.manifest_id = m.id "                 \
    "AND t.repo_id = m.repo_id), ''), "
#define IMAGE_SELECT_(tags)                                                                                            \
    "SELECT m.id, m.digest, m.media_type, m.artifact_type, m.pushed_at, coalesce(m.last_pulled_at, 0), " tags          \
    "coalesce((SELECT sum(b.size) FROM manifest_blobs mb JOIN blobs b ON b.digest = mb.digest "                        \
    "WHERE mb.manifest_id = m.id), 0) FROM manifests m "
#define IMAGE_SELECT(db) (db_is_pg(db) ? IMAGE_SELECT_(IMAGE_TAGS_PG) : IMAGE_SELECT_(IMAGE_TAGS_SQLITE))

static int emit_images(struct db *db, struct db_stmt *st, int n, ecrdb_image_cb cb, void *ctx, int *more)
{
    int rc, count = 0;
    while ((rc = db_step(st)) == DB_ROW) {
        struct ecrdb_image im;
        if (count++ == n) {
            *more = 1;
            break;
        }
        im.id = db_column_int64(st, 0);
        im.digest = (const char *)db_column_text(st, 1);
        im.media_type = (const char *)db_column_text(st, 2);
        im.artifact_type = (const char *)db_column_text(st, 3);
        im.pushed_at = db_column_int64(st, 4);
        im.pulled_at = db_column_int64(st, 5);
        im.tags = (const char *)db_column_text(st, 6);
        im.size = db_column_int64(st, 7);
        if (cb(ctx, &im) != 0)
            break;
    }
    rc = rc == DB_ROW || rc == DB_DONE ? 0 : db_error(db);
    db_reset(st);
    return rc;
}

int ecrdb_images_each(struct db *db, const char *repo, int64_t after, int status, int n, ecrdb_image_cb cb, void *ctx,
                      int *more)
{
    char sql[1024];
    struct db_stmt *st;
    int64_t rid;
    int rc = meta_repo_id(db, repo, &rid);
    *more = 0;
    if (rc != 0)
        return rc;
    snprintf(sql, sizeof(sql), "%sWHERE m.repo_id = ? AND m.id > ?%s ORDER BY m.id LIMIT ?", IMAGE_SELECT(db),
             status_sql(status));
    if ((rc = prepare(db, S_IMAGES_EACH + status - 1, sql, &st)) != 0)
        return rc;
    db_bind_int64(st, 1, rid);
    db_bind_int64(st, 2, after);
    db_bind_int64(st, 3, n + 1);
    return emit_images(db, st, n, cb, ctx, more);
}

int ecrdb_image_get(struct db *db, const char *repo, const char *digest, ecrdb_image_cb cb, void *ctx)
{
    struct db_stmt *st;
    int64_t rid;
    int more = 0, found = 0, rc = meta_repo_id(db, repo, &rid);
    if (rc != 0)
        return rc;
    if ((rc = prepare(db, S_IMAGE_GET,
                      db_is_pg(db) ? IMAGE_SELECT_(IMAGE_TAGS_PG) "WHERE m.repo_id = ? AND m.digest = ?"
                                   : IMAGE_SELECT_(IMAGE_TAGS_SQLITE) "WHERE m.repo_id = ? AND m.digest = ?",
                      &st)) != 0)
        return rc;
    db_bind_int64(st, 1, rid);
    db_bind_text(st, 2, digest, -1);
    if (db_step(st) == DB_ROW)
        found = 1;
    db_reset(st);
    if (!found) {
        db_reset(st);
        return BERR_MANIFEST_UNKNOWN;
    }
    return emit_images(db, st, 1, cb, ctx, &more);
}

int ecrdb_image_ids_each(struct db *db, const char *repo, int64_t after_id, const char *after_tag, int status, int n,
                         ecrdb_imageid_cb cb, void *ctx, int *more)
{
    static const char *const sql[] = {
        [ECRDB_TAGGED] = "SELECT m.id, m.digest, t.name FROM manifests m JOIN tags t ON t.manifest_id = m.id "
                         "WHERE m.repo_id = ?1 AND (m.id > ?2 OR (m.id = ?2 AND t.name > ?3)) "
                         "ORDER BY m.id, t.name LIMIT ?4",
        [ECRDB_UNTAGGED] = "SELECT m.id, m.digest, NULL FROM manifests m WHERE m.repo_id = ?1 AND m.id > ?2 AND "
                           "NOT EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id) ORDER BY m.id LIMIT ?4",
        [ECRDB_ANY] = "SELECT m.id, m.digest, t.name FROM manifests m LEFT JOIN tags t ON t.manifest_id = m.id "
                      "WHERE m.repo_id = ?1 AND (m.id > ?2 OR (m.id = ?2 AND t.name > ?3)) "
                      "ORDER BY m.id, t.name LIMIT ?4",
    };
    struct db_stmt *st;
    int64_t rid;
    int count = 0, rc = meta_repo_id(db, repo, &rid);
    *more = 0;
    if (rc != 0)
        return rc;
    if ((rc = prepare(db, S_IMAGE_IDS + status - 1, sql[status], &st)) != 0)
        return rc;
    db_bind_int64(st, 1, rid);
    db_bind_int64(st, 2, after_id);
    db_bind_text(st, 3, after_tag ? after_tag : "", -1);
    db_bind_int64(st, 4, n + 1);
    while ((rc = db_step(st)) == DB_ROW) {
        if (count++ == n) {
            *more = 1;
            break;
        }
        if (cb(ctx, db_column_int64(st, 0), (const char *)db_column_text(st, 1), (const char *)db_column_text(st, 2)) !=
            0)
            break;
    }
    rc = rc == DB_ROW || rc == DB_DONE ? 0 : db_error(db);
    db_reset(st);
    return rc;
}

/* ---- resource tags ---- */

int ecrdb_rtag_set(struct db *db, const char *name, const char *key, const char *value)
{
    struct db_stmt *st;
    int64_t rid;
    int rc = meta_repo_id(db, name, &rid);
    if (rc != 0 || (rc = prepare(db, S_RTAG_SET,
                                 "INSERT INTO ecr_tags (repo_id, key, value) VALUES (?, ?, ?) "
                                 "ON CONFLICT (repo_id, key) DO UPDATE SET value = excluded.value",
                                 &st)) != 0)
        return rc;
    db_bind_int64(st, 1, rid);
    db_bind_text(st, 2, key, -1);
    db_bind_text(st, 3, value, -1);
    return exec_done(db, st);
}

int ecrdb_rtag_del(struct db *db, const char *name, const char *key)
{
    struct db_stmt *st;
    int64_t rid;
    int rc = meta_repo_id(db, name, &rid);
    if (rc != 0 || (rc = prepare(db, S_RTAG_DEL, "DELETE FROM ecr_tags WHERE repo_id = ? AND key = ?", &st)) != 0)
        return rc;
    db_bind_int64(st, 1, rid);
    db_bind_text(st, 2, key, -1);
    return exec_done(db, st);
}

int ecrdb_rtags_each(struct db *db, const char *name, ecrdb_rtag_cb cb, void *ctx)
{
    struct db_stmt *st;
    int64_t rid;
    int rc = meta_repo_id(db, name, &rid);
    if (rc != 0 ||
        (rc = prepare(db, S_RTAGS_EACH, "SELECT key, value FROM ecr_tags WHERE repo_id = ? ORDER BY key", &st)) != 0)
        return rc;
    db_bind_int64(st, 1, rid);
    while ((rc = db_step(st)) == DB_ROW)
        if (cb(ctx, (const char *)db_column_text(st, 0), (const char *)db_column_text(st, 1)) != 0)
            break;
    rc = rc == DB_ROW || rc == DB_DONE ? 0 : db_error(db);
    db_reset(st);
    return rc;
}

/* ---- what BatchDeleteImage and the lifecycle preview need ---- */

int ecrdb_image_tagged(struct db *db, const char *repo, const char *digest)
{
    struct db_stmt *st;
    int rc = prepare(db, S_IMAGE_TAGGED,
                     "SELECT 1 FROM repos r JOIN manifests m ON m.repo_id = r.id JOIN tags t ON "
                     "t.manifest_id = m.id WHERE r.name = ? AND m.digest = ? LIMIT 1",
                     &st);
    if (rc != 0)
        return rc;
    db_bind_text(st, 1, repo, -1);
    db_bind_text(st, 2, digest, -1);
    rc = db_step(st);
    db_reset(st);
    return rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : db_error(db);
}

int ecrdb_preview_put(struct db *db, const char *repo, const char *policy, long long started_at)
{
    struct db_stmt *st;
    int64_t rid;
    int rc = meta_repo_id(db, repo, &rid);
    if (rc != 0 || (rc = prepare(db, S_PREVIEW_PUT,
                                 "INSERT INTO ecr_lifecycle_previews (repo_id, policy, started_at) VALUES (?, ?, ?) "
                                 "ON CONFLICT (repo_id) DO UPDATE SET policy = excluded.policy, "
                                 "started_at = excluded.started_at",
                                 &st)) != 0)
        return rc;
    db_bind_int64(st, 1, rid);
    db_bind_text(st, 2, policy, -1);
    db_bind_int64(st, 3, started_at);
    return exec_done(db, st);
}

int ecrdb_preview_get(struct db *db, const char *repo, char **policy, long long *started_at)
{
    struct db_stmt *st;
    int rc = prepare(db, S_PREVIEW_GET,
                     "SELECT p.policy, p.started_at FROM repos r JOIN ecr_lifecycle_previews p ON p.repo_id = r.id "
                     "WHERE r.name = ?",
                     &st);
    *policy = NULL;
    *started_at = 0;
    if (rc != 0)
        return rc;
    db_bind_text(st, 1, repo, -1);
    rc = db_step(st);
    if (rc == DB_ROW) {
        *started_at = db_column_int64(st, 1);
        if ((*policy = strdup((const char *)db_column_text(st, 0))) == NULL)
            rc = -1; /* out of memory */
    }
    db_reset(st);
    return rc == DB_ROW ? 0 : rc == DB_DONE ? BERR_NOT_FOUND : rc == -1 ? BERR_NOMEM : db_error(db);
}

/* ---- one read transaction per request ---- */

/* Steps the cached statement `sql` in `slot` once.  Returns 0 or BERR_DB. */
static int exec_cached(struct db *db, int slot, const char *sql)
{
    struct db_stmt *st;
    int rc = prepare(db, slot, sql, &st);
    return rc != 0 ? rc : exec_done(db, st);
}

int ecrdb_read_begin(struct db *db)
{
    ecrdb_read_end(db); /* never nest: a transaction left open would make every BEGIN fail */
    return exec_cached(db, S_READ_BEGIN, "BEGIN");
}

void ecrdb_read_end(struct db *db)
{
    if (db_in_txn(db) && exec_cached(db, S_READ_END, "COMMIT") != 0)
        db_rollback(db);
}
