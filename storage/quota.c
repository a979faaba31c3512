/* quota.c - storage quotas (quota.h): the quotas table, usage from repos.bytes, the check at blob commit. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "authdb.h"
#include "err.h"
#include "log.h"
#include "quota.h"

/* Cached statements (db.h's slot range QUOTA). */
enum {
    S_Q_SET = DB_SLOTS_QUOTA,
    S_Q_DEL,
    S_Q_USAGE_EXACT,
    S_Q_USAGE_RANGE,
    S_Q_ALL,
    S_Q_MATCHING,
    S_Q_LINKED,
    S_QUOTA_END
};
DB_SLOTS_CHECK(QUOTA, S_QUOTA_END);

int quota_set(struct db *db, const char *pattern, int64_t limit)
{
    struct db_stmt *st;
    int64_t used;
    int rc;
    if (authdb_pattern_valid(pattern) != 0 || limit < 0)
        return BERR_BAD_REQUEST;
    if ((rc = quota_usage(db, pattern, &used)) != 0) /* from then on the triggers keep quotas.used */
        return rc;
    if ((st = db_stmt(db, S_Q_SET,
                      "INSERT INTO quotas (pattern, limit_bytes, used, created_at) VALUES (?, ?, ?, ?) "
                      "ON CONFLICT (pattern) DO UPDATE SET limit_bytes = excluded.limit_bytes, "
                      "used = excluded.used")) == NULL)
        return BERR_DB;
    db_bind_text(st, 1, pattern, -1);
    db_bind_int64(st, 2, limit);
    db_bind_int64(st, 3, used);
    db_bind_int64(st, 4, db_now());
    rc = db_step(st);
    db_reset(st);
    return rc == DB_DONE ? 0 : db_error(db);
}

int quota_del(struct db *db, const char *pattern)
{
    struct db_stmt *st = db_stmt(db, S_Q_DEL, "DELETE FROM quotas WHERE pattern = ?");
    int rc;
    if (st == NULL)
        return BERR_DB;
    db_bind_text(st, 1, pattern, -1);
    rc = db_step(st);
    db_reset(st);
    if (rc != DB_DONE)
        return db_error(db);
    return db_changes(db) > 0 ? 0 : BERR_NOT_FOUND;
}

/*
 * Usage of `pattern`: an exact name is one row of repos; a pattern reads only the repositories whose names start
 * with its literal prefix (the text before the first '*', a range of repos' name index) and matches the rest here.
 */
int quota_usage(struct db *db, const char *pattern, int64_t *used)
{
    const char *star = strchr(pattern, '*');
    char lo[BERTH_NAME_MAX + 2], hi[BERTH_NAME_MAX + 2];
    size_t plen = star != NULL ? (size_t)(star - pattern) : strlen(pattern);
    struct db_stmt *st;
    int rc;
    *used = 0;
    if (plen > BERTH_NAME_MAX)
        return 0;
    memcpy(lo, pattern, plen);
    lo[plen] = '\0';
    memcpy(hi, lo, plen);
    hi[plen] = '\x7f'; /* above every character of a repository name */
    hi[plen + 1] = '\0';
    if (star == NULL) {
        if ((st = db_stmt(db, S_Q_USAGE_EXACT, "SELECT name, bytes FROM repos WHERE name = ?")) == NULL)
            return BERR_DB;
        db_bind_text(st, 1, pattern, -1);
    } else {
        if ((st = db_stmt(db, S_Q_USAGE_RANGE, "SELECT name, bytes FROM repos WHERE name >= ? AND name < ?")) == NULL)
            return BERR_DB;
        db_bind_text(st, 1, lo, -1);
        db_bind_text(st, 2, hi, -1);
    }
    while ((rc = db_step(st)) == DB_ROW)
        if (star == NULL || authdb_pattern_match(pattern, (const char *)db_column_text(st, 0)))
            *used += db_column_int64(st, 1);
    db_reset(st);
    return rc == DB_DONE ? 0 : db_error(db);
}

/* Calls `cb` for every quota (all, or those whose pattern matches `repo`) with its kept usage. */
static int each(struct db *db, const char *repo, quota_cb cb, void *ctx)
{
    struct db_stmt *st =
        repo == NULL
            ? db_stmt(db, S_Q_ALL, "SELECT pattern, limit_bytes, used FROM quotas ORDER BY pattern")
            : db_stmt(db, S_Q_MATCHING,
                      db_is_pg(db) /* berth_glob: schema_pg.c */
                          ? "SELECT pattern, limit_bytes, used FROM quotas WHERE berth_glob(?, pattern) "
                            "ORDER BY pattern"
                          : "SELECT pattern, limit_bytes, used FROM quotas WHERE ? GLOB pattern ORDER BY pattern");
    int rc = DB_DONE, stop = 0;
    if (st == NULL)
        return BERR_DB;
    if (repo != NULL)
        db_bind_text(st, 1, repo, -1);
    while (!stop && (rc = db_step(st)) == DB_ROW)
        stop = cb(ctx, (const char *)db_column_text(st, 0), db_column_int64(st, 1), db_column_int64(st, 2));
    db_reset(st);
    return stop || rc == DB_DONE ? 0 : db_error(db);
}

int quota_each(struct db *db, quota_cb cb, void *ctx)
{
    return each(db, NULL, cb, ctx);
}

int quota_recount(struct db *db)
{
    return db_exec(db, db_is_pg(db) ? "UPDATE quotas SET used = (SELECT coalesce(sum(bytes), 0) FROM repos "
                                      "WHERE berth_glob(name, quotas.pattern))"
                                    : "UPDATE quotas SET used = (SELECT coalesce(sum(bytes), 0) FROM repos "
                                      "WHERE name GLOB quotas.pattern)");
}

void quota_format_size(int64_t bytes, char *out, size_t size)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, size, "%" PRId64 " B", bytes);
    else
        snprintf(out, size, "%.1f %s", v, units[u]);
}

/* 1 if `repo` links `digest` already (the blob adds nothing to its usage), 0 if not, BERR_DB. */
static int linked(struct db *db, const char *repo, const char *digest)
{
    struct db_stmt *st = db_stmt(db, S_Q_LINKED,
                                 "SELECT 1 FROM repos r JOIN repo_blobs l ON l.repo_id = r.id "
                                 "WHERE r.name = ? AND l.digest = ?");
    int rc;
    if (st == NULL)
        return BERR_DB;
    db_bind_text(st, 1, repo, -1);
    db_bind_text(st, 2, digest, -1);
    rc = db_step(st);
    db_reset(st);
    if (rc == DB_ROW)
        return 1;
    return rc == DB_DONE ? 0 : db_error(db);
}

struct check {
    struct db *db;
    const char *repo, *digest;
    int64_t size;
    int is_linked; /* -1 = not looked up yet */
    char *detail;
    size_t ds;
    int rc;
};

static int check_one(void *ctx, const char *pattern, int64_t limit, int64_t used)
{
    struct check *c = ctx;
    char l[32], u[32], s[32];
    if (used + c->size <= limit)
        return 0;
    if (c->is_linked < 0 && (c->is_linked = linked(c->db, c->repo, c->digest)) < 0) {
        c->rc = c->is_linked;
        return 1;
    }
    if (c->is_linked)
        return 1; /* nothing added: no quota can be exceeded by this link */
    quota_format_size(limit, l, sizeof(l));
    quota_format_size(used, u, sizeof(u));
    quota_format_size(c->size, s, sizeof(s));
    snprintf(c->detail, c->ds, "quota of %s exceeded: limit %s, %s used, this blob adds %s", pattern, l, u, s);
    c->rc = BERR_QUOTA_EXCEEDED;
    return 1;
}

int quota_check(struct db *db, const char *repo, const char *digest, int64_t size, char *detail, size_t detail_size)
{
    struct check c = {db, repo, digest, size, -1, detail, detail_size, 0};
    int rc = each(db, repo, check_one, &c);
    return rc != 0 ? rc : c.rc;
}
