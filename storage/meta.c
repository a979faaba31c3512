/* meta.c - the SQL behind meta.h.  Every statement is cached per connection in its own slot (enum below). */
#include <stdio.h>
#include <string.h>
#include "err.h"
#include "fault.h"
#include "log.h"
#include "meta.h"

enum {
    S_REPO_ID = DB_SLOTS_META,
    S_REPO_INSERT,
    S_BLOB_STAT,
    S_BLOB_KNOWN,
    S_BLOB_INSERT,
    S_LINK_INSERT,
    S_LINK_DELETE,
    S_MAN_BY_TAG,
    S_MAN_BY_DIGEST,
    S_MAN_HEAD_BY_TAG,
    S_MAN_HEAD_BY_DIGEST,
    S_MAN_EXISTS,
    S_MAN_INSERT,
    S_MAN_BLOB_INSERT,
    S_MAN_CHILD_INSERT,
    S_TAG_UPSERT,
    S_MAN_DELETE,
    S_TAG_DELETE,
    S_MAN_PULLED,
    S_TAGS_LIST,
    S_CATALOG,
    S_REFERRERS,
    S_REFERRERS_TYPED,
    S_UPLOAD_INSERT,
    S_UPLOAD_FIND,
    S_UPLOAD_DELETE,
    S_UPLOADS_ALL,
    S_META_END
};
DB_SLOTS_CHECK(META, S_META_END);

/* Steps a statement that returns no rows, then resets it. */
static int step_done(struct db *db, struct db_stmt *st)
{
    int rc = db_step(st);
    db_reset(st);
    return rc == DB_DONE ? 0 : db_error(db);
}

static void bind_text(struct db_stmt *st, int i, const char *s)
{
    if (s == NULL)
        db_bind_null(st, i);
    else
        db_bind_text(st, i, s, -1);
}

static int query_int(struct db *db, struct db_stmt *st, int64_t *out, int missing);

static int repo_id(struct db *db, const char *name, int64_t *id)
{
    struct db_stmt *st = db_stmt(db, S_REPO_ID, "SELECT id FROM repos WHERE name = ?");
    int rc;
    if (st == NULL)
        return BERR_DB;
    bind_text(st, 1, name);
    rc = db_step(st);
    if (rc == DB_ROW)
        *id = db_column_int64(st, 0);
    db_reset(st);
    return rc == DB_ROW ? 0 : (rc == DB_DONE ? BERR_NAME_UNKNOWN : db_error(db));
}

int meta_repo_id(struct db *db, const char *name, int64_t *id)
{
    *id = 0; /* written on every path, also for the compiler's sake */
    return repo_id(db, name, id);
}

int meta_repo_ensure(struct db *db, const char *name, int64_t *id)
{
    struct db_stmt *st;
    int rc = repo_id(db, name, id);
    if (rc != BERR_NAME_UNKNOWN)
        return rc;
    st = db_stmt(db, S_REPO_INSERT, "INSERT INTO repos (name, created_at) VALUES (?, ?) RETURNING id");
    if (st == NULL)
        return BERR_DB;
    bind_text(st, 1, name);
    db_bind_int64(st, 2, db_now());
    return query_int(db, st, id, BERR_DB);
}

/* Runs a one-row, one-integer query; BERR_BLOB_UNKNOWN-style `missing` code when there is no row. */
/*
 * Steps `st` once: 0 and the first column in *out (if not NULL) on a row, `missing` (a negative code) on no row,
 * BERR_DB on an error.  *out is always written (0 unless there is a row), so no caller can read it unset.
 */
static int query_int(struct db *db, struct db_stmt *st, int64_t *out, int missing)
{
    int rc = db_step(st);
    int64_t v = rc == DB_ROW ? db_column_int64(st, 0) : 0;
    if (out != NULL)
        *out = v;
    db_reset(st);
    if (rc == DB_ROW)
        return 0;
    if (rc == DB_DONE)
        return missing;
    db_error(db);
    return BERR_DB;
}

int meta_blob_stat(struct db *db, const char *repo, const char *digest, int64_t *size)
{
    struct db_stmt *st = db_stmt(db, S_BLOB_STAT,
                                 "SELECT b.size FROM repos r JOIN repo_blobs l ON l.repo_id = r.id "
                                 "JOIN blobs b ON b.digest = l.digest WHERE r.name = ? AND l.digest = ?");
    if (st == NULL)
        return BERR_DB;
    bind_text(st, 1, repo);
    bind_text(st, 2, digest);
    return query_int(db, st, size, BERR_BLOB_UNKNOWN);
}

int meta_blob_known(struct db *db, const char *digest, int64_t *size)
{
    struct db_stmt *st = db_stmt(db, S_BLOB_KNOWN, "SELECT size FROM blobs WHERE digest = ?");
    if (st == NULL)
        return BERR_DB;
    bind_text(st, 1, digest);
    return query_int(db, st, size, BERR_BLOB_UNKNOWN);
}

static int link_blob(struct db *db, int64_t repo, const char *digest)
{
    struct db_stmt *st =
        db_stmt(db, S_LINK_INSERT,
                "INSERT INTO repo_blobs (repo_id, digest, linked_at) VALUES (?, ?, ?) "
                "ON CONFLICT (repo_id, digest) DO UPDATE SET linked_at = excluded.linked_at"); /* GC grace (gc.h) */
    if (st == NULL)
        return BERR_DB;
    db_bind_int64(st, 1, repo);
    bind_text(st, 2, digest);
    db_bind_int64(st, 3, db_now());
    return step_done(db, st);
}

int meta_blob_commit(struct db *db, const char *repo, const char *digest, int64_t size)
{
    int64_t id;
    int rc;
    struct db_stmt *st;
    if ((rc = meta_repo_ensure(db, repo, &id)) != 0)
        return rc;
    st = db_stmt(db, S_BLOB_INSERT,
                 "INSERT INTO blobs (digest, size, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING");
    if (st == NULL)
        return BERR_DB;
    bind_text(st, 1, digest);
    db_bind_int64(st, 2, size);
    db_bind_int64(st, 3, db_now());
    if ((rc = step_done(db, st)) != 0)
        return rc;
    return link_blob(db, id, digest);
}

int meta_blob_mount(struct db *db, const char *repo, const char *from, const char *digest, int64_t *size)
{
    int64_t id;
    int rc = meta_blob_stat(db, from, digest, size);
    if (rc != 0)
        return rc;
    if ((rc = meta_repo_ensure(db, repo, &id)) != 0)
        return rc;
    return link_blob(db, id, digest);
}

int meta_blob_unlink(struct db *db, const char *repo, const char *digest)
{
    int64_t id;
    int rc;
    struct db_stmt *st;
    if ((rc = repo_id(db, repo, &id)) != 0)
        return rc == BERR_NAME_UNKNOWN ? BERR_BLOB_UNKNOWN : rc;
    st = db_stmt(db, S_LINK_DELETE, "DELETE FROM repo_blobs WHERE repo_id = ? AND digest = ?");
    if (st == NULL)
        return BERR_DB;
    db_bind_int64(st, 1, id);
    bind_text(st, 2, digest);
    if ((rc = step_done(db, st)) != 0)
        return rc;
    return db_changes(db) > 0 ? 0 : BERR_BLOB_UNKNOWN;
}

int meta_manifest_get(struct db *db, const char *repo, const char *ref, int by_digest, struct meta_manifest *out,
                      meta_alloc_fn alloc, void *alloc_ctx)
{
    static const char *const sql[4] = {
        "SELECT m.id, m.digest, m.media_type, m.size, m.body FROM repos r JOIN tags t ON t.repo_id = r.id "
        "JOIN manifests m ON m.id = t.manifest_id WHERE r.name = ? AND t.name = ?",
        "SELECT m.id, m.digest, m.media_type, m.size, m.body FROM repos r JOIN manifests m ON m.repo_id = r.id "
        "WHERE r.name = ? AND m.digest = ?",
        "SELECT m.id, m.digest, m.media_type, m.size FROM repos r JOIN tags t ON t.repo_id = r.id "
        "JOIN manifests m ON m.id = t.manifest_id WHERE r.name = ? AND t.name = ?",
        "SELECT m.id, m.digest, m.media_type, m.size FROM repos r JOIN manifests m ON m.repo_id = r.id "
        "WHERE r.name = ? AND m.digest = ?",
    };
    int which = (alloc == NULL ? 2 : 0) + (by_digest ? 1 : 0);
    struct db_stmt *st = db_stmt(db, S_MAN_BY_TAG + which, sql[which]);
    int rc;
    if (st == NULL)
        return BERR_DB;
    bind_text(st, 1, repo);
    bind_text(st, 2, ref);
    rc = db_step(st);
    if (rc != DB_ROW) {
        db_reset(st);
        return rc == DB_DONE ? BERR_MANIFEST_UNKNOWN : db_error(db);
    }
    out->id = db_column_int64(st, 0);
    snprintf(out->digest, sizeof(out->digest), "%s", (const char *)db_column_text(st, 1));
    snprintf(out->media_type, sizeof(out->media_type), "%s", (const char *)db_column_text(st, 2));
    out->size = (size_t)db_column_int64(st, 3);
    out->body = NULL;
    rc = 0;
    if (alloc != NULL) {
        const void *b = db_column_blob(st, 4);
        out->size = (size_t)db_column_bytes(st, 4);
        if ((out->body = alloc(alloc_ctx, out->size + 1)) == NULL)
            rc = BERR_NOMEM;
        else if (out->size > 0)
            memcpy(out->body, b, out->size);
    }
    db_reset(st);
    return rc;
}

/* Checks that reference `r` of a manifest being pushed exists in repository `repo`. */
static int check_ref(struct db *db, int64_t repo, const struct manifest_ref *r, char *detail, size_t ds)
{
    int64_t size = -1;
    int rc;
    struct db_stmt *st;
    if (r->foreign)
        return 0;
    st = db_stmt(db, S_MAN_EXISTS,
                 "SELECT size FROM manifests WHERE repo_id = ?1 AND digest = ?2 UNION ALL "
                 "SELECT b.size FROM repo_blobs l JOIN blobs b ON b.digest = l.digest "
                 "WHERE l.repo_id = ?1 AND l.digest = ?2 LIMIT 1");
    if (st == NULL)
        return BERR_DB;
    db_bind_int64(st, 1, repo);
    bind_text(st, 2, r->digest);
    rc = query_int(db, st, &size, r->is_manifest ? BERR_MANIFEST_CHILD_UNKNOWN : BERR_MANIFEST_BLOB_UNKNOWN);
    if (rc == BERR_MANIFEST_CHILD_UNKNOWN)
        snprintf(detail, ds, "child manifest %s is not in the repository", r->digest);
    else if (rc == BERR_MANIFEST_BLOB_UNKNOWN)
        snprintf(detail, ds, "blob %s is not in the repository", r->digest);
    else if (rc == 0 && size != r->size) {
        snprintf(detail, ds, "descriptor of %s says size %lld but it has %lld bytes", r->digest, (long long)r->size,
                 (long long)size);
        rc = BERR_MANIFEST_INVALID;
    }
    return rc;
}

static int insert_refs(struct db *db, int64_t mid, const struct manifest_info *mi)
{
    for (size_t i = 0; i < mi->nrefs; i++) {
        const struct manifest_ref *r = &mi->refs[i];
        struct db_stmt *st;
        int rc;
        if (r->foreign)
            continue;
        if (mi->kind == MANIFEST_INDEX && r->is_manifest)
            st = db_stmt(db, S_MAN_CHILD_INSERT,
                         "INSERT INTO manifest_children (parent_id, child_digest) VALUES (?, ?) "
                         "ON CONFLICT DO NOTHING");
        else
            st = db_stmt(db, S_MAN_BLOB_INSERT,
                         "INSERT INTO manifest_blobs (manifest_id, digest) VALUES (?, ?) ON CONFLICT DO NOTHING");
        if (st == NULL)
            return BERR_DB;
        db_bind_int64(st, 1, mid);
        bind_text(st, 2, r->digest);
        if ((rc = step_done(db, st)) != 0)
            return rc;
    }
    return 0;
}

static int insert_manifest(struct db *db, int64_t repo, const char *digest, const struct manifest_info *mi,
                           const void *body, size_t len, int64_t *mid)
{
    struct db_stmt *st = db_stmt(db, S_MAN_INSERT,
                                 "INSERT INTO manifests (repo_id, digest, media_type, artifact_type, subject, "
                                 "annotations, size, body, pushed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                                 "ON CONFLICT (repo_id, digest) DO UPDATE SET pushed_at = excluded.pushed_at "
                                 "RETURNING id");
    int rc;
    if (st == NULL)
        return BERR_DB;
    db_bind_int64(st, 1, repo);
    bind_text(st, 2, digest);
    bind_text(st, 3, mi->media_type);
    bind_text(st, 4, mi->artifact_type);
    bind_text(st, 5, mi->subject[0] ? mi->subject : NULL);
    bind_text(st, 6, mi->annotations);
    db_bind_int64(st, 7, (int64_t)len);
    db_bind_blob(st, 8, body, (int)len);
    db_bind_int64(st, 9, db_now());
    rc = query_int(db, st, mid, BERR_DB);
    if (rc != 0)
        return rc;
    return insert_refs(db, *mid, mi);
}

int meta_manifest_put(struct db *db, const char *repo, const char *digest, const struct manifest_info *mi,
                      const void *body, size_t len, const char *tag, char *detail, size_t ds)
{
    int64_t rid, mid = 0;
    int rc;
    if ((rc = meta_repo_ensure(db, repo, &rid)) != 0)
        return rc;
    for (size_t i = 0; i < mi->nrefs; i++)
        if ((rc = check_ref(db, rid, &mi->refs[i], detail, ds)) != 0)
            return rc;
    if ((rc = insert_manifest(db, rid, digest, mi, body, len, &mid)) != 0)
        return rc;
    FAULT_POINT("manifest.before_tag_move");
    if (tag != NULL) {
        struct db_stmt *st = db_stmt(db, S_TAG_UPSERT,
                                     "INSERT INTO tags (repo_id, name, manifest_id, updated_at) VALUES (?, ?, ?, ?) "
                                     "ON CONFLICT (repo_id, name) DO UPDATE SET manifest_id = excluded.manifest_id, "
                                     "updated_at = excluded.updated_at");
        if (st == NULL)
            return BERR_DB;
        db_bind_int64(st, 1, rid);
        bind_text(st, 2, tag);
        db_bind_int64(st, 3, mid);
        db_bind_int64(st, 4, db_now());
        return step_done(db, st);
    }
    return 0;
}

/* Deletes with `st` (bound to repo id and one text), mapping "nothing deleted" to BERR_MANIFEST_UNKNOWN. */
static int delete_one(struct db *db, struct db_stmt *st, const char *repo, const char *key)
{
    int64_t id;
    int rc;
    if (st == NULL)
        return BERR_DB;
    if ((rc = repo_id(db, repo, &id)) != 0) {
        db_reset(st);
        return rc == BERR_NAME_UNKNOWN ? BERR_MANIFEST_UNKNOWN : rc;
    }
    db_bind_int64(st, 1, id);
    bind_text(st, 2, key);
    if ((rc = step_done(db, st)) != 0)
        return rc;
    return db_changes(db) > 0 ? 0 : BERR_MANIFEST_UNKNOWN;
}

int meta_manifest_delete(struct db *db, const char *repo, const char *digest)
{
    /* referrers live and die with their subject: they go in the same statement (and theirs with them) */
    return delete_one(db,
                      db_stmt(db, S_MAN_DELETE,
                              db_is_pg(db) ? "WITH RECURSIVE doomed(digest) AS (SELECT CAST(?2 AS TEXT) COLLATE \"C\" "
                                             "UNION SELECT m.digest FROM manifests m JOIN doomed d ON m.subject = "
                                             "d.digest WHERE m.repo_id = ?1) DELETE FROM manifests WHERE repo_id = ?1 "
                                             "AND digest IN (SELECT digest FROM doomed)"
                                           : "WITH RECURSIVE doomed(digest) AS (SELECT ?2 UNION SELECT m.digest FROM "
                                             "manifests m JOIN doomed d ON m.subject = d.digest WHERE m.repo_id = ?1) "
                                             "DELETE FROM manifests WHERE repo_id = ?1 AND digest IN (SELECT digest "
                                             "FROM doomed)"),
                      repo, digest);
}

int meta_tag_delete(struct db *db, const char *repo, const char *tag)
{
    return delete_one(db, db_stmt(db, S_TAG_DELETE, "DELETE FROM tags WHERE repo_id = ? AND name = ?"), repo, tag);
}

int meta_manifest_pulled(struct db *db, int64_t id, long long when)
{
    struct db_stmt *st = db_stmt(db, S_MAN_PULLED,
                                 "UPDATE manifests SET last_pulled_at = ?2 WHERE id = ?1 AND "
                                 "(last_pulled_at IS NULL OR last_pulled_at < ?2)");
    if (st == NULL)
        return BERR_DB;
    db_bind_int64(st, 1, id);
    db_bind_int64(st, 2, when);
    return step_done(db, st);
}

/* Streams the first column of `st` to `cb`, at most n rows, setting *more if a further row exists. */
static int list_names(struct db *db, struct db_stmt *st, int n, meta_name_cb cb, void *ctx, int *more)
{
    int rc, count = 0, stop = 0;
    *more = 0;
    while ((rc = db_step(st)) == DB_ROW) {
        if (count == n) {
            *more = 1;
            break;
        }
        count++;
        if ((stop = cb(ctx, (const char *)db_column_text(st, 0))) != 0)
            break;
    }
    db_reset(st);
    if (stop < 0) /* the callback failed (e.g. out of memory): its error, not a short success */
        return stop;
    return (rc == DB_ROW || rc == DB_DONE) ? 0 : db_error(db);
}

int meta_tags_list(struct db *db, const char *repo, const char *last, int n, meta_name_cb cb, void *ctx, int *more)
{
    int64_t id;
    int rc = repo_id(db, repo, &id);
    struct db_stmt *st;
    if (rc != 0)
        return rc;
    st = db_stmt(db, S_TAGS_LIST, "SELECT name FROM tags WHERE repo_id = ? AND name > ? ORDER BY name LIMIT ?");
    if (st == NULL)
        return BERR_DB;
    db_bind_int64(st, 1, id);
    bind_text(st, 2, last != NULL ? last : "");
    db_bind_int64(st, 3, n + 1);
    return list_names(db, st, n, cb, ctx, more);
}

int meta_catalog(struct db *db, const char *last, int n, meta_name_cb cb, void *ctx, int *more)
{
    struct db_stmt *st = db_stmt(db, S_CATALOG, "SELECT name FROM repos WHERE name > ? ORDER BY name LIMIT ?");
    if (st == NULL)
        return BERR_DB;
    bind_text(st, 1, last != NULL ? last : "");
    db_bind_int64(st, 2, n + 1);
    return list_names(db, st, n, cb, ctx, more);
}

int meta_referrers(struct db *db, const char *repo, const char *subject, const char *artifact_type, int max,
                   meta_referrer_cb cb, void *ctx)
{
    struct db_stmt *st =
        artifact_type == NULL
            ? db_stmt(db, S_REFERRERS,
                      "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations FROM repos r "
                      "JOIN manifests m ON m.repo_id = r.id WHERE r.name = ? AND m.subject = ? ORDER BY m.id LIMIT ?")
            : db_stmt(db, S_REFERRERS_TYPED,
                      "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations FROM repos r "
                      "JOIN manifests m ON m.repo_id = r.id WHERE r.name = ? AND m.subject = ? "
                      "AND m.artifact_type = ? ORDER BY m.id LIMIT ?");
    int rc, i = 3;
    if (st == NULL)
        return BERR_DB;
    bind_text(st, 1, repo);
    bind_text(st, 2, subject);
    if (artifact_type != NULL)
        bind_text(st, i++, artifact_type);
    db_bind_int64(st, i, max);
    while ((rc = db_step(st)) == DB_ROW) {
        struct meta_referrer r = {
            .digest = (const char *)db_column_text(st, 0),
            .media_type = (const char *)db_column_text(st, 1),
            .size = db_column_int64(st, 2),
            .artifact_type = (const char *)db_column_text(st, 3),
            .annotations = (const char *)db_column_text(st, 4),
        };
        if (cb(ctx, &r) != 0)
            break;
    }
    db_reset(st);
    return (rc == DB_ROW || rc == DB_DONE) ? 0 : db_error(db);
}

int meta_upload_add(struct db *db, const char *uuid, const char *repo)
{
    int64_t id;
    int rc = meta_repo_ensure(db, repo, &id);
    struct db_stmt *st;
    if (rc != 0)
        return rc;
    st = db_stmt(db, S_UPLOAD_INSERT, "INSERT INTO uploads (uuid, repo_id, started_at) VALUES (?, ?, ?)");
    if (st == NULL)
        return BERR_DB;
    bind_text(st, 1, uuid);
    db_bind_int64(st, 2, id);
    db_bind_int64(st, 3, db_now());
    return step_done(db, st);
}

int meta_upload_find(struct db *db, const char *uuid, const char *repo)
{
    struct db_stmt *st = db_stmt(
        db, S_UPLOAD_FIND, "SELECT 1 FROM uploads u JOIN repos r ON r.id = u.repo_id WHERE u.uuid = ? AND r.name = ?");
    if (st == NULL)
        return BERR_DB;
    bind_text(st, 1, uuid);
    bind_text(st, 2, repo);
    return query_int(db, st, NULL, BERR_BLOB_UPLOAD_UNKNOWN);
}

int meta_upload_del(struct db *db, const char *uuid)
{
    struct db_stmt *st = db_stmt(db, S_UPLOAD_DELETE, "DELETE FROM uploads WHERE uuid = ?");
    if (st == NULL)
        return BERR_DB;
    bind_text(st, 1, uuid);
    return step_done(db, st);
}

int meta_uploads_each(struct db *db, meta_name_cb cb, void *ctx)
{
    int more;
    struct db_stmt *st = db_stmt(db, S_UPLOADS_ALL, "SELECT uuid FROM uploads ORDER BY uuid");
    if (st == NULL)
        return BERR_DB;
    return list_names(db, st, 1 << 30, cb, ctx, &more);
}
