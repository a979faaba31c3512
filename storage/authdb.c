/* authdb.c - users, robot tokens and grants in berth.db, and the pure rules of names, actions and patterns. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "authdb.h"
#include "err.h"
#include "log.h"
#include "names.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* Hot statements (every authenticated request) are cached, in authdb's slot range (db.h). */
enum { S_USER_GET = DB_SLOTS_AUTHDB, S_TOKEN_GET, S_GRANTS_FOR, S_AUTHDB_END };
DB_SLOTS_CHECK(AUTHDB, S_AUTHDB_END);

static const char *const action_names[] = {"pull", "push", "delete", "admin"};

/* ---- pure logic ---- */

int authdb_actions_parse(const char *s, unsigned *out)
{
    unsigned bits = 0;
    if (strcmp(s, "*") == 0) {
        *out = AUTH_ALL;
        return 0;
    }
    while (*s != '\0') {
        size_t n = strcspn(s, ",");
        unsigned bit = 0;
        for (unsigned i = 0; i < 4; i++)
            if (n == strlen(action_names[i]) && memcmp(s, action_names[i], n) == 0)
                bit = 1u << i;
        if (bit == 0)
            return BERR_BAD_REQUEST;
        bits |= bit;
        s += n;
        if (*s == ',' && *++s == '\0')
            return BERR_BAD_REQUEST;
    }
    if (bits == 0)
        return BERR_BAD_REQUEST;
    *out = bits;
    return 0;
}

void authdb_actions_format(unsigned actions, char *out, size_t size)
{
    size_t o = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < 4; i++)
        if (actions & (1u << i))
            o += (size_t)snprintf(out + o, o < size ? size - o : 0, "%s%s", o > 0 ? "," : "", action_names[i]);
}

static int name_char(char c, int first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return !first && (c == '.' || c == '_' || c == '-');
}

int authdb_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > BERTH_AUTH_NAME_MAX || strcmp(name, "AWS") == 0)
        return BERR_BAD_REQUEST;
    for (size_t i = 0; i < n; i++)
        if (!name_char(name[i], i == 0))
            return BERR_BAD_REQUEST;
    return 0;
}

int authdb_pattern_valid(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > BERTH_NAME_MAX)
        return BERR_BAD_REQUEST;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' || c == '/' ||
              c == '*'))
            return BERR_BAD_REQUEST;
    }
    return 0;
}

int authdb_pattern_match(const char *p, const char *s)
{
    return names_glob_match(p, s);
}

int authdb_subject_parse(const char *s, struct authdb_identity *out)
{
    memset(out, 0, sizeof(*out));
    if (strcmp(s, "anonymous") == 0) {
        out->kind = AUTH_ANONYMOUS;
        return 0;
    }
    if (strncmp(s, "user:", 5) == 0)
        out->kind = AUTH_USER, s += 5;
    else if (strncmp(s, "token:", 6) == 0)
        out->kind = AUTH_TOKEN, s += 6;
    else
        return BERR_BAD_REQUEST;
    if (authdb_name_valid(s) != 0)
        return BERR_BAD_REQUEST;
    snprintf(out->name, sizeof(out->name), "%s", s);
    return 0;
}

/* ---- secrets ---- */

int authdb_password_hash(const char *password, char out[AUTHDB_PWHASH_MAX])
{
    if (sodium_init() < 0)
        return BERR_INTERNAL;
    if (crypto_pwhash_str(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return BERR_NOMEM;
    return 0;
}

int authdb_password_verify(const char *hash, const char *password, size_t len)
{
    if (sodium_init() < 0)
        return BERR_INTERNAL;
    return crypto_pwhash_str_verify(hash, password, len) == 0 ? 0 : BERR_UNAUTHORIZED;
}

void authdb_random_password(char *out, size_t size)
{
    unsigned char raw[BERTH_ADMIN_PASSWORD_BYTES];
    if (sodium_init() < 0)
        abort();
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(out, size, raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
}

static void secret_hash(const char *secret, size_t len, unsigned char out[32])
{
    crypto_generichash(out, 32, (const unsigned char *)secret, len, NULL, 0);
}

/* ---- helpers ---- */

/* Runs a one-shot statement (CLI paths) with text/int bindings given as "t"/"i" in `types`. */
static int exec_bound(struct db *db, const char *sql, const char *types, ...)
{
    struct db_stmt *st;
    va_list ap;
    int rc;
    if ((st = db_prepare(db, sql)) == NULL)
        return db_error(db);
    va_start(ap, types);
    for (int i = 0; types[i] != '\0'; i++) {
        if (types[i] == 't')
            db_bind_text_copy(st, i + 1, va_arg(ap, const char *), -1);
        else
            db_bind_int64(st, i + 1, va_arg(ap, long long));
    }
    va_end(ap);
    rc = db_step(st);
    db_finalize(st);
    if (rc != DB_DONE)
        return db_error(db);
    return db_changes(db) > 0 ? 0 : BERR_NOT_FOUND;
}

/* 1 if a user or a live (not revoked) token is called `name`. */
static int name_taken(struct db *db, const char *name)
{
    struct authdb_user u;
    struct authdb_token t;
    if (authdb_user_get(db, name, &u) == 0)
        return 1;
    return authdb_token_get(db, name, &t) == 0 && t.revoked_at == 0;
}

/* ---- users ---- */

/* A fresh immutable id: 128 random bits in lower-case hex (what migration 3 gave existing rows). */
static void new_uid(char out[AUTHDB_UID_MAX])
{
    unsigned char raw[(AUTHDB_UID_MAX - 1) / 2];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(out, AUTHDB_UID_MAX, raw, sizeof(raw));
}

int authdb_user_add(struct db *db, const char *name, const char *password, int is_admin)
{
    char hash[AUTHDB_PWHASH_MAX], uid[AUTHDB_UID_MAX];
    int rc;
    if (authdb_name_valid(name) != 0 || name_taken(db, name))
        return BERR_BAD_REQUEST;
    if ((rc = authdb_password_hash(password, hash)) != 0)
        return rc;
    new_uid(uid);
    return exec_bound(db,
                      "INSERT INTO users (name, pwhash, is_admin, created_at, updated_at, uid) VALUES (?,?,?,?,?,?)",
                      "ttiiit", name, hash, (long long)(is_admin != 0), db_now(), db_now(), uid);
}

int authdb_user_passwd(struct db *db, const char *name, const char *password)
{
    char hash[AUTHDB_PWHASH_MAX];
    int rc;
    if ((rc = authdb_password_hash(password, hash)) != 0)
        return rc;
    return exec_bound(db, "UPDATE users SET pwhash = ?, updated_at = ? WHERE name = ?", "tit", hash, db_now(), name);
}

int authdb_user_del(struct db *db, const char *name)
{
    int rc = exec_bound(db, "DELETE FROM users WHERE name = ?", "t", name);
    if (rc == 0)
        exec_bound(db, "DELETE FROM grants WHERE subject_kind = 1 AND subject = ?", "t", name);
    return rc;
}

static void user_row(struct db_stmt *st, struct authdb_user *u)
{
    snprintf(u->name, sizeof(u->name), "%s", (const char *)db_column_text(st, 0));
    snprintf(u->pwhash, sizeof(u->pwhash), "%s", (const char *)db_column_text(st, 1));
    u->is_admin = db_column_int64(st, 2);
    u->created_at = db_column_int64(st, 3);
    snprintf(u->uid, sizeof(u->uid), "%s", db_column_text(st, 4) ? (const char *)db_column_text(st, 4) : "");
}

int authdb_user_get(struct db *db, const char *name, struct authdb_user *out)
{
    struct db_stmt *st =
        db_stmt(db, S_USER_GET, "SELECT name, pwhash, is_admin, created_at, uid FROM users WHERE name = ?");
    int rc;
    if (st == NULL)
        return BERR_DB;
    db_bind_text(st, 1, name, -1);
    rc = db_step(st);
    if (rc == DB_ROW)
        user_row(st, out);
    db_reset(st);
    return rc == DB_ROW ? 0 : rc == DB_DONE ? BERR_NOT_FOUND : db_error(db);
}

int authdb_users_each(struct db *db, authdb_user_cb cb, void *ctx)
{
    struct db_stmt *st;
    int rc;
    if ((st = db_prepare(db, "SELECT name, pwhash, is_admin, created_at, uid FROM users ORDER BY name")) == NULL)
        return db_error(db);
    while ((rc = db_step(st)) == DB_ROW) {
        struct authdb_user u;
        user_row(st, &u);
        if (cb(ctx, &u) != 0)
            break;
    }
    db_finalize(st);
    return rc == DB_ROW || rc == DB_DONE ? 0 : db_error(db);
}

int authdb_user_count(struct db *db)
{
    struct db_stmt *st;
    int n = BERR_DB;
    if ((st = db_prepare(db, "SELECT count(*) FROM users")) == NULL)
        return db_error(db);
    if (db_step(st) == DB_ROW)
        n = db_column_int64(st, 0);
    db_finalize(st);
    return n;
}

/* ---- tokens ---- */

int authdb_token_create(struct db *db, const char *name, long long ttl, char secret[AUTHDB_SECRET_MAX])
{
    unsigned char raw[BERTH_TOKEN_SECRET_BYTES], hash[32];
    char uid[AUTHDB_UID_MAX];
    struct db_stmt *st;
    long long now = db_now();
    int rc;
    if (authdb_name_valid(name) != 0 || name_taken(db, name) || sodium_init() < 0)
        return BERR_BAD_REQUEST;
    randombytes_buf(raw, sizeof(raw));
    memcpy(secret, "berth_", 6);
    sodium_bin2base64(secret + 6, AUTHDB_SECRET_MAX - 6, raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
    secret_hash(secret, strlen(secret), hash);
    /* a revoked token of the same name is replaced */
    exec_bound(db, "DELETE FROM tokens WHERE name = ? AND revoked_at IS NOT NULL", "t", name);
    if ((st = db_prepare(db, "INSERT INTO tokens (name, secret_hash, created_at, expires_at, uid) "
                             "VALUES (?,?,?,?,?)")) == NULL)
        return db_error(db);
    new_uid(uid);
    db_bind_text(st, 5, uid, -1);
    db_bind_text(st, 1, name, -1);
    db_bind_blob(st, 2, hash, sizeof(hash));
    db_bind_int64(st, 3, now);
    db_bind_int64(st, 4, ttl > 0 ? now + ttl : 0);
    rc = db_step(st);
    db_finalize(st);
    return rc == DB_DONE ? 0 : db_error(db);
}

int authdb_token_revoke(struct db *db, const char *name)
{
    int rc =
        exec_bound(db, "UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", "it", db_now(), name);
    if (rc == 0)
        exec_bound(db, "DELETE FROM grants WHERE subject_kind = 2 AND subject = ?", "t", name);
    return rc;
}

static void token_row(struct db_stmt *st, struct authdb_token *t)
{
    const void *h = db_column_blob(st, 1);
    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s", (const char *)db_column_text(st, 0));
    if (h != NULL && db_column_bytes(st, 1) == (int)sizeof(t->secret_hash))
        memcpy(t->secret_hash, h, sizeof(t->secret_hash));
    t->created_at = db_column_int64(st, 2);
    t->expires_at = db_column_int64(st, 3);
    t->revoked_at = db_column_int64(st, 4);
    snprintf(t->uid, sizeof(t->uid), "%s", db_column_text(st, 5) ? (const char *)db_column_text(st, 5) : "");
}

int authdb_token_get(struct db *db, const char *name, struct authdb_token *out)
{
    struct db_stmt *st =
        db_stmt(db, S_TOKEN_GET,
                "SELECT name, secret_hash, created_at, expires_at, coalesce(revoked_at, 0), uid FROM tokens "
                "WHERE name = ? ORDER BY revoked_at IS NULL DESC LIMIT 1");
    int rc;
    if (st == NULL)
        return BERR_DB;
    db_bind_text(st, 1, name, -1);
    rc = db_step(st);
    if (rc == DB_ROW)
        token_row(st, out);
    db_reset(st);
    return rc == DB_ROW ? 0 : rc == DB_DONE ? BERR_NOT_FOUND : db_error(db);
}

int authdb_token_verify(const struct authdb_token *t, const char *secret, size_t len, long long now)
{
    unsigned char h[32];
    int same;
    secret_hash(secret, len, h);
    same = sodium_memcmp(h, t->secret_hash, sizeof(h)) == 0;
    if (!same || t->revoked_at != 0 || (t->expires_at != 0 && now >= t->expires_at))
        return BERR_UNAUTHORIZED;
    return 0;
}

int authdb_tokens_each(struct db *db, authdb_token_cb cb, void *ctx)
{
    struct db_stmt *st;
    int rc;
    if ((st = db_prepare(db,
                         "SELECT name, secret_hash, created_at, expires_at, coalesce(revoked_at, 0), uid FROM tokens "
                         "ORDER BY name, created_at")) == NULL)
        return db_error(db);
    while ((rc = db_step(st)) == DB_ROW) {
        struct authdb_token t;
        token_row(st, &t);
        if (cb(ctx, &t) != 0)
            break;
    }
    db_finalize(st);
    return rc == DB_ROW || rc == DB_DONE ? 0 : db_error(db);
}

/* ---- grants ---- */

/* 1 if the user, or the live token, `id` exists (anonymous always does). */
static int subject_exists(struct db *db, const struct authdb_identity *id)
{
    struct authdb_user u;
    struct authdb_token t;
    if (id->kind == AUTH_USER)
        return authdb_user_get(db, id->name, &u) == 0;
    if (id->kind == AUTH_TOKEN)
        return authdb_token_get(db, id->name, &t) == 0 && t.revoked_at == 0;
    return 1;
}

int authdb_grant_add(struct db *db, const struct authdb_identity *subject, unsigned actions, const char *pattern)
{
    if (authdb_pattern_valid(pattern) != 0 || actions == 0 || (actions & ~(AUTH_ALL | AUTH_ADMIN)) != 0)
        return BERR_BAD_REQUEST;
    if (subject->kind == AUTH_ANONYMOUS && actions != AUTH_PULL)
        return BERR_BAD_REQUEST;
    if (!subject_exists(db, subject))
        return BERR_NOT_FOUND;
    return exec_bound(
        db,
        "INSERT INTO grants (subject_kind, subject, pattern, actions, created_at) VALUES (?,?,?,?,?) "
        "ON CONFLICT (subject_kind, subject, pattern) DO UPDATE SET actions = grants.actions | excluded.actions",
        "ittii", (long long)subject->kind, subject->name, pattern, (long long)actions, db_now());
}

int authdb_grant_del(struct db *db, const struct authdb_identity *subject, const char *pattern)
{
    return exec_bound(db, "DELETE FROM grants WHERE subject_kind = ? AND subject = ? AND pattern = ?", "itt",
                      (long long)subject->kind, subject->name, pattern);
}

int authdb_grants_each(struct db *db, const struct authdb_identity *subject, authdb_grant_cb cb, void *ctx)
{
    struct db_stmt *st;
    int rc;
    const char *sql = subject != NULL ? "SELECT subject_kind, subject, pattern, actions FROM grants "
                                        "WHERE subject_kind = ? AND subject = ? ORDER BY pattern"
                                      : "SELECT subject_kind, subject, pattern, actions FROM grants "
                                        "ORDER BY subject_kind, subject, pattern";
    if ((st = db_prepare(db, sql)) == NULL)
        return db_error(db);
    if (subject != NULL) {
        db_bind_int64(st, 1, (int)subject->kind);
        db_bind_text(st, 2, subject->name, -1);
    }
    while ((rc = db_step(st)) == DB_ROW) {
        struct authdb_grant g = {0};
        g.subject.kind = (enum authdb_kind)db_column_int64(st, 0);
        snprintf(g.subject.name, sizeof(g.subject.name), "%s", (const char *)db_column_text(st, 1));
        snprintf(g.pattern, sizeof(g.pattern), "%s", (const char *)db_column_text(st, 2));
        g.actions = (unsigned)db_column_int64(st, 3);
        if (cb(ctx, &g) != 0)
            break;
    }
    db_finalize(st);
    return rc == DB_ROW || rc == DB_DONE ? 0 : db_error(db);
}

int authdb_grants_load(struct db *db, const struct authdb_identity *id, struct authdb_grants *out)
{
    struct authdb_user u;
    struct db_stmt *st;
    int live = 0, rc;
    memset(out, 0, sizeof(*out));
    if (id->kind == AUTH_USER && authdb_user_get(db, id->name, &u) == 0) {
        live = 1;
        if (u.is_admin) {
            out->all = 1;
            return 0;
        }
    } else if (id->kind == AUTH_TOKEN) {
        struct authdb_token t;
        live = authdb_token_get(db, id->name, &t) == 0 && t.revoked_at == 0 &&
               (t.expires_at == 0 || db_now() < t.expires_at);
    }
    st = db_stmt(db, S_GRANTS_FOR,
                 "SELECT pattern, actions FROM grants WHERE subject_kind = 0 OR (subject_kind = ? AND subject = ?) "
                 "LIMIT " STR(BERTH_AUTH_GRANTS_MAX));
    if (st == NULL)
        return BERR_DB;
    db_bind_int64(st, 1, live ? (int)id->kind : -1);
    db_bind_text(st, 2, id->name, -1);
    while ((rc = db_step(st)) == DB_ROW) {
        if ((out->n & (out->n + 1)) == 0 || out->n == 0) { /* grow at 0, 1, 3, 7, ... */
            void *g = realloc(out->g, (out->n * 2 + 2) * sizeof(*out->g));
            if (g == NULL) {
                db_reset(st);
                authdb_grants_free(out);
                return BERR_NOMEM;
            }
            out->g = g;
        }
        snprintf(out->g[out->n].pattern, sizeof(out->g[out->n].pattern), "%s", (const char *)db_column_text(st, 0));
        out->g[out->n].actions = (unsigned)db_column_int64(st, 1);
        out->n++;
    }
    db_reset(st);
    if (rc != DB_DONE) {
        authdb_grants_free(out);
        return db_error(db);
    }
    return 0;
}

unsigned authdb_grants_actions(const struct authdb_grants *g, const char *name)
{
    unsigned a = 0;
    if (g->all)
        return AUTH_ALL;
    for (size_t i = 0; i < g->n; i++)
        if (authdb_pattern_match(g->g[i].pattern, name))
            a |= g->g[i].actions & AUTH_ADMIN ? AUTH_ALL : g->g[i].actions;
    return a & AUTH_ALL;
}

void authdb_grants_free(struct authdb_grants *g)
{
    free(g->g);
    memset(g, 0, sizeof(*g));
}
