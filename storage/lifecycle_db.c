/* lifecycle_db.c - the per-repository lifecycle policy store, and running policies over berth.db (lifecycle.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "defaults.h"
#include "err.h"
#include "events.h"
#include "fault.h"
#include "lifecycle.h"
#include "log.h"
#include "meta.h"

/* ---- small statement helpers (uncached: these run rarely, on their own connections) ---- */

/* Steps a statement without result rows and finalizes it. */
static int exec_stmt(struct db *db, struct db_stmt *st)
{
    int rc = st == NULL ? -1 : db_step(st);
    db_finalize(st);
    return rc == DB_DONE ? 0 : db_error(db);
}

/* ---- the policy store ---- */

int lifecycle_policy_put(struct db *db, const char *repo, const char *json, size_t len, char *msg, size_t msgsz)
{
    struct lifecycle_policy *p;
    struct db_stmt *st;
    int64_t id;
    int rc = lifecycle_parse(json, len, &p, msg, msgsz);
    if (rc != 0)
        return rc;
    lifecycle_policy_free(p);
    if ((rc = meta_repo_id(db, repo, &id)) != 0)
        return rc;
    st = db_prepare(db,
                    "INSERT INTO lifecycle_policies (repo_id, policy, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (repo_id) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at");
    if (st == NULL)
        return BERR_DB;
    db_bind_int64(st, 1, id);
    db_bind_text(st, 2, json, (int)len);
    db_bind_int64(st, 3, db_now());
    return exec_stmt(db, st);
}

int lifecycle_policy_get(struct db *db, const char *repo, char **json, int64_t *updated_at)
{
    struct db_stmt *st;
    int64_t id;
    int rc = meta_repo_id(db, repo, &id);
    *json = NULL;
    if (rc != 0)
        return rc;
    if ((st = db_prepare(db, "SELECT policy, updated_at FROM lifecycle_policies WHERE repo_id = ?")) == NULL)
        return BERR_DB;
    db_bind_int64(st, 1, id);
    rc = db_step(st);
    if (rc == DB_ROW) {
        *json = strdup((const char *)db_column_text(st, 0));
        if (updated_at != NULL)
            *updated_at = db_column_int64(st, 1);
        rc = *json != NULL ? 0 : BERR_NOMEM;
    } else {
        rc = rc == DB_DONE ? BERR_LIFECYCLE_POLICY_NOT_FOUND : db_error(db);
    }
    db_finalize(st);
    return rc;
}

int lifecycle_policy_delete(struct db *db, const char *repo, char **json, int64_t *updated_at)
{
    char *old = NULL;
    int64_t id, when = 0;
    struct db_stmt *st;
    int rc = lifecycle_policy_get(db, repo, &old, &when);
    if (rc == 0)
        rc = meta_repo_id(db, repo, &id);
    if (rc == 0 && (st = db_prepare(db, "DELETE FROM lifecycle_policies WHERE repo_id = ?")) == NULL)
        rc = BERR_DB;
    if (rc == 0) {
        db_bind_int64(st, 1, id);
        rc = exec_stmt(db, st);
    }
    if (rc == 0 && json != NULL) {
        *json = old;
        old = NULL;
    }
    if (rc == 0 && updated_at != NULL)
        *updated_at = when;
    free(old);
    return rc;
}

/* ---- running a policy ---- */

/* An image of one repository as loaded for evaluation. */
struct image {
    int64_t id;
    char digest[BERTH_DIGEST_MAX];
    long long pushed_at, last_pulled_at;
    char **tags; /* sorted by name */
    size_t ntags;
};

struct images {
    struct image *v;
    size_t n;
};

/* One manifest a transaction removed, reported after the commit. */
struct record {
    char digest[BERTH_DIGEST_MAX], with[BERTH_DIGEST_MAX];
    char **tags;
    size_t ntags;
    long long pushed_at, rule;
};

struct records {
    struct record *v;
    size_t n, cap;
};

static void tags_free(char **tags, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(tags[i]);
    free(tags);
}

static void images_clear(struct images *im)
{
    for (size_t i = 0; i < im->n; i++)
        tags_free(im->v[i].tags, im->v[i].ntags);
    free(im->v);
    im->v = NULL;
    im->n = 0;
}

static void records_clear(struct records *r)
{
    for (size_t i = 0; i < r->n; i++)
        tags_free(r->v[i].tags, r->v[i].ntags);
    r->n = 0;
}

/* Appends `name` to a malloc'd tag array. */
static int tags_push(char ***tags, size_t *n, const char *name)
{
    char **v = realloc(*tags, (*n + 1) * sizeof(char *));
    if (v == NULL)
        return BERR_NOMEM;
    *tags = v;
    if ((v[*n] = strdup(name)) == NULL)
        return BERR_NOMEM;
    (*n)++;
    return 0;
}

/* Manifests of repository `rid` that are images of their own: not a child of an index of the repository, not a
 * referrer whose subject is in the repository. */
static const char images_sql[] =
    "SELECT m.id, m.digest, m.pushed_at, coalesce(m.last_pulled_at, 0) FROM manifests m WHERE m.repo_id = ?1 "
    "AND NOT EXISTS (SELECT 1 FROM manifest_children c CROSS JOIN manifests p ON p.id = c.parent_id "
    "  WHERE c.child_digest = m.digest AND p.repo_id = ?1) "
    "AND NOT (m.subject IS NOT NULL AND EXISTS (SELECT 1 FROM manifests s WHERE s.repo_id = ?1 "
    "  AND s.digest = m.subject)) ORDER BY m.id";

static int by_id(const void *key, const void *elem)
{
    int64_t k = *(const int64_t *)key, e = ((const struct image *)elem)->id;
    return (k > e) - (k < e);
}

static int load_tags(struct db *db, int64_t rid, struct images *im)
{
    struct db_stmt *st =
        db_prepare(db, "SELECT manifest_id, name FROM tags WHERE repo_id = ? ORDER BY manifest_id, name");
    int rc;
    if (st == NULL)
        return BERR_DB;
    db_bind_int64(st, 1, rid);
    while ((rc = db_step(st)) == DB_ROW) {
        int64_t mid = db_column_int64(st, 0);
        struct image *img = bsearch(&mid, im->v, im->n, sizeof(im->v[0]), by_id);
        if (img != NULL && tags_push(&img->tags, &img->ntags, (const char *)db_column_text(st, 1)) != 0) {
            db_finalize(st);
            return BERR_NOMEM;
        }
    }
    db_finalize(st);
    return rc == DB_DONE ? 0 : db_error(db);
}

/* Loads the images of repository `rid` in one read transaction (a consistent snapshot). */
static int load_images(struct db *db, int64_t rid, struct images *im)
{
    size_t cap = 0;
    struct db_stmt *st;
    int rc;
    if (db_begin_read(db) != 0)
        return BERR_DB;
    if ((st = db_prepare(db, images_sql)) == NULL) {
        db_rollback(db);
        return BERR_DB;
    }
    db_bind_int64(st, 1, rid);
    while ((rc = db_step(st)) == DB_ROW) {
        struct image *img;
        if (im->n == cap) {
            struct image *v = realloc(im->v, (cap = cap ? cap * 2 : 64) * sizeof(*v));
            if (v == NULL)
                break;
            im->v = v;
        }
        img = &im->v[im->n++];
        memset(img, 0, sizeof(*img));
        img->id = db_column_int64(st, 0);
        snprintf(img->digest, sizeof(img->digest), "%s", (const char *)db_column_text(st, 1));
        img->pushed_at = db_column_int64(st, 2);
        img->last_pulled_at = db_column_int64(st, 3);
    }
    db_finalize(st);
    rc = rc == DB_DONE ? load_tags(db, rid, im) : rc == DB_ROW ? BERR_NOMEM : db_error(db);
    db_rollback(db); /* ends the read transaction */
    return rc;
}

/* 1 if the tags of manifest img->id are still exactly img->tags (both in byte order). */
static int same_tags(struct db *db, const struct image *img)
{
    struct db_stmt *st = db_prepare(db, "SELECT name FROM tags WHERE manifest_id = ? ORDER BY name");
    size_t i = 0;
    int rc, same = 1;
    if (st == NULL)
        return 0;
    db_bind_int64(st, 1, img->id);
    while (same && (rc = db_step(st)) == DB_ROW)
        same = i < img->ntags && strcmp((const char *)db_column_text(st, 0), img->tags[i++]) == 0;
    db_finalize(st);
    return same && rc == DB_DONE && i == img->ntags;
}

/* In the deleting transaction: 0 if image `img` is still exactly as evaluated, else 1 (it changed: keep it). */
static int changed(struct db *db, int64_t rid, const struct image *img)
{
    static const char sql[] =
        "SELECT m.pushed_at, coalesce(m.last_pulled_at, 0), "
        " EXISTS (SELECT 1 FROM manifest_children c CROSS JOIN manifests p ON p.id = c.parent_id "
        "   WHERE c.child_digest = m.digest AND p.repo_id = m.repo_id), "
        " m.subject IS NOT NULL AND EXISTS (SELECT 1 FROM manifests s WHERE s.repo_id = m.repo_id "
        "   AND s.digest = m.subject) "
        "FROM manifests m WHERE m.id = ? AND m.repo_id = ? AND m.digest = ?";
    struct db_stmt *st = db_prepare(db, sql);
    int same = 0;
    if (st == NULL)
        return 1;
    db_bind_int64(st, 1, img->id);
    db_bind_int64(st, 2, rid);
    db_bind_text(st, 3, img->digest, -1);
    if (db_step(st) == DB_ROW)
        same = db_column_int64(st, 0) == img->pushed_at && db_column_int64(st, 1) == img->last_pulled_at &&
               db_column_int64(st, 2) == 0 && db_column_int64(st, 3) == 0;
    db_finalize(st);
    return !same || !same_tags(db, img);
}

/* A manifest to remove in the current transaction, and what it goes with. */
struct doomed {
    int64_t id;
    char digest[BERTH_DIGEST_MAX], with[BERTH_DIGEST_MAX];
};

struct worklist {
    struct doomed *v;
    size_t n, cap;
};

static int work_push(struct worklist *w, int64_t id, const char *digest, const char *with)
{
    if (w->n == w->cap) {
        struct doomed *v = realloc(w->v, (w->cap = w->cap ? w->cap * 2 : 16) * sizeof(*v));
        if (v == NULL)
            return BERR_NOMEM;
        w->v = v;
    }
    w->v[w->n].id = id;
    snprintf(w->v[w->n].digest, sizeof(w->v[0].digest), "%s", digest);
    snprintf(w->v[w->n].with, sizeof(w->v[0].with), "%s", with != NULL ? with : "");
    w->n++;
    return 0;
}

static int record_push(struct records *r, const struct doomed *d, long long rule, long long pushed_at, char **tags,
                       size_t ntags)
{
    struct record *rec;
    if (r->n == r->cap) {
        struct record *v = realloc(r->v, (r->cap = r->cap ? r->cap * 2 : 64) * sizeof(*v));
        if (v == NULL)
            return BERR_NOMEM;
        r->v = v;
    }
    rec = &r->v[r->n++];
    snprintf(rec->digest, sizeof(rec->digest), "%s", d->digest);
    snprintf(rec->with, sizeof(rec->with), "%s", d->with);
    rec->tags = tags;
    rec->ntags = ntags;
    rec->pushed_at = pushed_at;
    rec->rule = rule;
    return 0;
}

/* Queues every row of `st` (id, digest) as going with `with`. */
static int queue_rows(struct db *db, struct db_stmt *st, struct worklist *w, const char *with)
{
    int rc;
    if (st == NULL)
        return BERR_DB;
    while ((rc = db_step(st)) == DB_ROW)
        if (work_push(w, db_column_int64(st, 0), (const char *)db_column_text(st, 1), with) != 0) {
            db_finalize(st);
            return BERR_NOMEM;
        }
    db_finalize(st);
    return rc == DB_DONE ? 0 : db_error(db);
}

/* What describe() reads of a manifest: for the report and the EVENT_EXPIRE event. */
struct described {
    long long pushed_at;
    int64_t size;
    char media_type[EVENTS_MEDIA_TYPE_MAX + 1];
};

/* Reads the push time, media type, size and tags of manifest `id`. */
static int describe(struct db *db, int64_t id, struct described *out, char ***tags, size_t *ntags)
{
    struct db_stmt *st =
        db_prepare(db, "SELECT m.pushed_at, t.name, m.media_type, m.size FROM manifests m LEFT JOIN tags "
                       "t ON t.manifest_id = m.id WHERE m.id = ? ORDER BY t.name");
    int rc;
    if (st == NULL)
        return BERR_DB;
    db_bind_int64(st, 1, id);
    while ((rc = db_step(st)) == DB_ROW) {
        const char *mt = (const char *)db_column_text(st, 2);
        out->pushed_at = db_column_int64(st, 0);
        out->size = db_column_int64(st, 3);
        snprintf(out->media_type, sizeof(out->media_type), "%s", mt != NULL ? mt : "");
        if (!db_column_is_null(st, 1) && tags_push(tags, ntags, (const char *)db_column_text(st, 1)) != 0) {
            db_finalize(st);
            return BERR_NOMEM;
        }
    }
    db_finalize(st);
    return rc == DB_DONE ? 0 : db_error(db);
}

/* Records the expiry of manifest `digest` in the current transaction: one EVENT_EXPIRE event per tag it had, or
 * one without a tag when it had none (as a DELETE of a tagged manifest is announced per tag). */
static int emit_expired(struct db *db, const char *repo, const char *digest, const struct described *m,
                        char *const *tags, size_t ntags)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < (ntags > 0 ? ntags : 1); i++)
        rc = events_emit(db, &(struct event){.action = EVENT_EXPIRE,
                                             .repository = repo,
                                             .digest = digest,
                                             .media_type = m->media_type,
                                             .size = m->size,
                                             .tag = ntags > 0 ? tags[i] : NULL,
                                             .from = NULL});
    return rc;
}

/* Removes `d`, then queues its untagged children no other index of the repository references, and its
 * referrers: they go with it in this transaction. */
static int remove_manifest(struct db *db, const char *repo, int64_t rid, const struct doomed *d, long long rule,
                           struct worklist *w, struct records *out)
{
    static const char children_sql[] =
        "SELECT m.id, m.digest FROM manifest_children c CROSS JOIN manifests m ON m.repo_id = ?1 AND m.digest = "
        "c.child_digest WHERE c.parent_id = ?2 AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id) "
        "AND NOT EXISTS (SELECT 1 FROM manifest_children c2 CROSS JOIN manifests p ON p.id = c2.parent_id "
        "  WHERE c2.child_digest = m.digest AND p.repo_id = ?1 AND p.id <> ?2)";
    char **tags = NULL;
    size_t ntags = 0;
    struct described m = {0};
    struct db_stmt *st;
    int rc = describe(db, d->id, &m, &tags, &ntags);
    if (rc != 0 || (rc = record_push(out, d, rule, m.pushed_at, tags, ntags)) != 0) {
        tags_free(tags, ntags);
        return rc;
    }
    if ((rc = emit_expired(db, repo, d->digest, &m, tags, ntags)) != 0)
        return rc;
    if ((st = db_prepare(db, children_sql)) == NULL)
        return BERR_DB;
    db_bind_int64(st, 1, rid);
    db_bind_int64(st, 2, d->id);
    if ((rc = queue_rows(db, st, w, d->digest)) != 0)
        return rc;
    if ((st = db_prepare(db, "SELECT id, digest FROM manifests WHERE repo_id = ? AND subject = ?")) == NULL)
        return BERR_DB;
    db_bind_int64(st, 1, rid);
    db_bind_text_copy(st, 2, d->digest, -1);
    if ((rc = queue_rows(db, st, w, d->digest)) != 0)
        return rc;
    if ((st = db_prepare(db, "DELETE FROM manifests WHERE id = ?")) == NULL)
        return BERR_DB;
    db_bind_int64(st, 1, d->id);
    return exec_stmt(db, st);
}

/* Expires image `img` (already re-checked) with everything that goes with it. */
static int expire_image(struct db *db, const char *repo, int64_t rid, const struct image *img, long long rule,
                        struct records *out)
{
    struct worklist w = {0};
    int rc = work_push(&w, img->id, img->digest, NULL);
    for (size_t i = 0; rc == 0 && i < w.n; i++) {
        struct doomed d = w.v[i]; /* copied: the worklist may grow */
        size_t j = 0;
        while (j < i && w.v[j].id != d.id) /* a manifest both child and referrer is removed once */
            j++;
        if (j == i)
            rc = remove_manifest(db, repo, rid, &d, rule, &w, out);
    }
    free(w.v);
    return rc;
}

struct run {
    struct db *db;
    const struct lifecycle_run_opts *opts;
    lifecycle_expired_cb cb;
    void *ctx;
    struct lifecycle_stats *stats;
    const char *repo;
    int64_t rid;
};

/* Reports records to the callback (after their transaction committed). */
static void emit(struct run *r, const struct records *recs)
{
    for (size_t i = 0; i < recs->n; i++) {
        const struct record *rec = &recs->v[i];
        struct lifecycle_expired e = {.repo = r->repo,
                                      .digest = rec->digest,
                                      .tags = (const char *const *)rec->tags,
                                      .ntags = rec->ntags,
                                      .pushed_at = rec->pushed_at,
                                      .rule = rec->rule,
                                      .with = rec->with[0] ? rec->with : NULL};
        if (rec->with[0])
            r->stats->with++;
        else
            r->stats->expired++;
        if (r->cb != NULL)
            r->cb(r->ctx, &e);
    }
}

/* Expires images `sel[0..n)` (oldest first) in write transactions of LIFECYCLE_DELETE_BATCH images. */
static int expire_batches(struct run *r, struct image **sel, const long long *rules, size_t n)
{
    struct records recs = {0};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i += LIFECYCLE_DELETE_BATCH) {
        size_t end = i + LIFECYCLE_DELETE_BATCH < n ? i + LIFECYCLE_DELETE_BATCH : n;
        if ((rc = db_begin(r->db)) != 0)
            break;
        for (size_t k = i; rc == 0 && k < end; k++) {
            if (changed(r->db, r->rid, sel[k])) {
                r->stats->skipped++;
                log_info("lifecycle: %s@%s changed since it was selected: kept", r->repo, sel[k]->digest);
                continue;
            }
            rc = expire_image(r->db, r->repo, r->rid, sel[k], rules[k], &recs);
        }
        if (rc == 0) {
            FAULT_POINT("lifecycle.before_commit"); /* the batch's manifests deleted, not committed */
            rc = db_commit(r->db);
        }
        if (rc != 0) {
            db_rollback(r->db);
        } else {
            FAULT_POINT("lifecycle.after_commit"); /* committed, not yet reported; the next batch not begun */
            emit(r, &recs);
        }
        records_clear(&recs);
    }
    free(recs.v);
    return rc;
}

/* Oldest push first: the order in which ECR expires. */
static int oldest_first(const void *a, const void *b)
{
    const struct image *x = *(struct image *const *)a, *y = *(struct image *const *)b;
    if (x->pushed_at != y->pushed_at)
        return x->pushed_at < y->pushed_at ? -1 : 1;
    return strcmp(x->digest, y->digest);
}

/* Evaluates `policy` (may be NULL: retention only) over one repository and expires (or reports) its choice. */
static int run_repo(struct run *r, const struct lifecycle_policy *policy)
{
    struct images im = {0};
    struct lifecycle_image *li = NULL;
    struct image **sel = NULL;
    long long *rules = NULL;
    size_t nsel = 0;
    int rc = load_images(r->db, r->rid, &im);
    r->stats->repos++;
    r->stats->images += (long long)im.n;
    if (rc == 0 && ((li = calloc(im.n + 1, sizeof(*li))) == NULL || (sel = calloc(im.n + 1, sizeof(*sel))) == NULL))
        rc = BERR_NOMEM;
    for (size_t i = 0; rc == 0 && i < im.n; i++)
        li[i] = (struct lifecycle_image){.digest = im.v[i].digest,
                                         .tags = (const char *const *)im.v[i].tags,
                                         .ntags = im.v[i].ntags,
                                         .pushed_at = im.v[i].pushed_at,
                                         .last_pulled_at = im.v[i].last_pulled_at};
    if (rc == 0 && (rc = lifecycle_evaluate(policy, li, im.n, r->opts->as_of, r->opts->untagged_retention)) > 0)
        rc = 0;
    for (size_t i = 0; rc == 0 && i < im.n; i++)
        if (li[i].expire_rule != LIFECYCLE_PRIORITY_NONE)
            sel[nsel++] = &im.v[i];
    if (rc == 0 && nsel > 0) {
        qsort(sel, nsel, sizeof(*sel), oldest_first);
        if ((rules = calloc(nsel, sizeof(*rules))) == NULL)
            rc = BERR_NOMEM;
        for (size_t k = 0; rc == 0 && k < nsel; k++)
            rules[k] = li[sel[k] - im.v].expire_rule;
    }
    if (rc == 0 && r->opts->dry_run) {
        for (size_t k = 0; k < nsel; k++) {
            struct lifecycle_expired e = {.repo = r->repo,
                                          .digest = sel[k]->digest,
                                          .tags = (const char *const *)sel[k]->tags,
                                          .ntags = sel[k]->ntags,
                                          .pushed_at = sel[k]->pushed_at,
                                          .rule = rules[k]};
            r->stats->expired++;
            if (r->cb != NULL)
                r->cb(r->ctx, &e);
        }
    } else if (rc == 0) {
        rc = expire_batches(r, sel, rules, nsel);
    }
    free(rules);
    free(sel);
    free(li);
    images_clear(&im);
    return rc;
}

/* Runs the stored policy of repository r->rid (or opts->policy), with the retention setting. */
static int run_stored(struct run *r)
{
    struct lifecycle_policy *p = NULL;
    char *json = NULL, msg[LIFECYCLE_MSG_MAX];
    int rc = 0;
    if (r->opts->policy == NULL) {
        rc = lifecycle_policy_get(r->db, r->repo, &json, NULL);
        if (rc == BERR_LIFECYCLE_POLICY_NOT_FOUND && r->opts->untagged_retention > 0)
            rc = 0;
        if (rc == 0 && json != NULL && lifecycle_parse(json, strlen(json), &p, msg, sizeof(msg)) != 0) {
            log_warn("lifecycle: the stored policy of %s is no longer valid, skipped: %s", r->repo, msg);
            free(json);
            return 0;
        }
        free(json);
        if (rc != 0)
            return rc;
    }
    rc = run_repo(r, r->opts->policy != NULL ? r->opts->policy : p);
    lifecycle_policy_free(p);
    return rc;
}

int lifecycle_run(struct db *db, const struct lifecycle_run_opts *opts, lifecycle_expired_cb cb, void *ctx,
                  struct lifecycle_stats *stats)
{
    struct run r = {.db = db, .opts = opts, .cb = cb, .ctx = ctx, .stats = stats};
    struct names {
        int64_t id;
        char *name;
    } *v = NULL;
    size_t n = 0, cap = 0;
    struct db_stmt *st;
    int rc;
    memset(stats, 0, sizeof(*stats));
    if (opts->repo != NULL) {
        r.repo = opts->repo;
        if ((rc = meta_repo_id(db, opts->repo, &r.rid)) != 0)
            return rc;
        return run_stored(&r);
    }
    st = db_prepare(db, opts->untagged_retention > 0
                            ? "SELECT id, name FROM repos ORDER BY name"
                            : "SELECT r.id, r.name FROM repos r JOIN lifecycle_policies p ON p.repo_id = r.id "
                              "ORDER BY r.name");
    if (st == NULL)
        return BERR_DB;
    while ((rc = db_step(st)) == DB_ROW) {
        if (n == cap) {
            struct names *nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*nv));
            if (nv == NULL)
                break;
            v = nv;
        }
        v[n].id = db_column_int64(st, 0);
        if ((v[n].name = strdup((const char *)db_column_text(st, 1))) == NULL)
            break;
        n++;
    }
    db_finalize(st);
    rc = rc == DB_DONE ? 0 : rc == DB_ROW ? BERR_NOMEM : db_error(db);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        r.repo = v[i].name;
        r.rid = v[i].id;
        rc = run_stored(&r);
        if (rc == BERR_LIFECYCLE_POLICY_NOT_FOUND || rc == BERR_NAME_UNKNOWN) /* removed meanwhile */
            rc = 0;
    }
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
    return rc;
}
