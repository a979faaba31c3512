/*
 * authdb.h - who may do what: users (argon2id password hashes), robot tokens (hashed random secrets with a name,
 * an expiry and a scope list), and grants of actions on repository-name patterns.  Pure logic (patterns, actions,
 * names) plus typed queries over berth.db; no h2o.
 *
 * Identities: an identity is {kind, name, uid, is_admin}.  The uid is 128 random bits (32 hex digits) that a user or
 * token gets when it is created and keeps until it is deleted or revoked; a later user or token of the same name
 * gets another one.  Bearer tokens carry the uid, so a token issued to a deleted user or a revoked robot token
 * never comes back through a new identity that reuses the name (jwt.h, auth.h).  A user authenticates with its
 * password, a robot token with its secret (as the password of a Basic login whose user name is the token's name), and a
 * caller without credentials is `anonymous`.  Users and tokens share one namespace, so a Basic user name names exactly
 * one of them. The name "AWS" is reserved for the ECR login flow (user AWS, password = a short-lived authorization
 * token).
 *
 * Authorization: an admin user may do everything.  Anyone else may do, on repository R, the union of the actions
 * of its own grants whose pattern matches R and of the anonymous grants whose pattern matches R (public
 * repositories are public to everybody).  The `admin` action on a pattern implies pull, push and delete there.
 *
 * Patterns: an exact repository name, or a name with `*` wildcards; `*` matches any run of characters including
 * `/`: a trailing `*` after `team/` matches `team/app` and `team/app/sub` but not `team`; `*` alone matches everything.
 *
 * Secrets: the database holds only hashes.  Password hashes are crypto_pwhash_str (argon2id, libsodium's
 * interactive limits); token secrets are 256-bit random, so their BLAKE2b-256 hash suffices, compared with
 * sodium_memcmp.  Functions marked "write" need a write transaction (db_begin/db_commit), the others are reads.
 */
#ifndef BERTH_AUTHDB_H
#define BERTH_AUTHDB_H

#include <stddef.h>
#include <stdint.h>
#include "db.h"
#include "defaults.h"

/* action bits */
#define AUTH_PULL 1u
#define AUTH_PUSH 2u
#define AUTH_DELETE 4u
#define AUTH_ADMIN 8u                                  /* on a pattern: pull, push and delete there */
#define AUTH_ALL (AUTH_PULL | AUTH_PUSH | AUTH_DELETE) /* what an admin grant or user may do */
#define AUTH_ACTIONS_STR_MAX sizeof("pull,push,delete,admin")

enum authdb_kind {
    AUTH_ANONYMOUS = 0, /* no credentials */
    AUTH_USER = 1,      /* a person with a password */
    AUTH_TOKEN = 2,     /* a robot/CI token */
};

#define AUTHDB_UID_MAX 33 /* 32 hex digits and the NUL */

struct authdb_identity {
    enum authdb_kind kind;
    char name[BERTH_AUTH_NAME_MAX + 1]; /* "" for anonymous */
    char uid[AUTHDB_UID_MAX];           /* "" for anonymous, and where only the name matters (grants) */
    int is_admin;
};

/* ---- pure logic ---- */

/** Parses "pull,push" (also "*" = pull,push,delete) into action bits.  Returns 0 or BERR_BAD_REQUEST. */
int authdb_actions_parse(const char *s, unsigned *out);
/** Writes the comma-separated names of `actions` into `out` ("" for none). */
void authdb_actions_format(unsigned actions, char *out, size_t size);
/** 0 if `name` is a valid user or token name ([A-Za-z0-9][A-Za-z0-9._-]{0,63}, not "AWS"), else BERR_BAD_REQUEST. */
int authdb_name_valid(const char *name);
/** 0 if `pattern` is a valid grant pattern (name characters, '/', '*'), else BERR_BAD_REQUEST. */
int authdb_pattern_valid(const char *pattern);
/** 1 if repository `name` matches `pattern`, else 0. */
int authdb_pattern_match(const char *pattern, const char *name);
/** Parses a subject "user:NAME", "token:NAME" or "anonymous".  Returns 0 or BERR_BAD_REQUEST. */
int authdb_subject_parse(const char *s, struct authdb_identity *out);

/* ---- secrets ---- */

#define AUTHDB_PWHASH_MAX 128 /* >= crypto_pwhash_STRBYTES */
#define AUTHDB_SECRET_MAX (sizeof("berth_") + 2 * BERTH_TOKEN_SECRET_BYTES)

/** argon2id hash of `password` (slow by design: ~0.1 s, 64 MiB).  Returns 0 or BERR_NOMEM. */
int authdb_password_hash(const char *password, char out[AUTHDB_PWHASH_MAX]);
/** 0 if `password` matches `hash` (slow by design), else BERR_UNAUTHORIZED. */
int authdb_password_verify(const char *hash, const char *password, size_t len);
/** Writes a random password of BERTH_ADMIN_PASSWORD_BYTES bytes, base64url (no '+', '/', '='). */
void authdb_random_password(char *out, size_t size);

/* ---- users ---- */

struct authdb_user {
    char name[BERTH_AUTH_NAME_MAX + 1];
    char pwhash[AUTHDB_PWHASH_MAX];
    char uid[AUTHDB_UID_MAX];
    int is_admin;
    long long created_at;
};
typedef int (*authdb_user_cb)(void *ctx, const struct authdb_user *u);

/** write: adds user `name` with `password`.  Returns 0, BERR_BAD_REQUEST (bad name, or a user or token of that
 *  name exists) or BERR_DB. */
int authdb_user_add(struct db *db, const char *name, const char *password, int is_admin);
/** write: sets the password of `name`.  Returns 0, BERR_NOT_FOUND or BERR_DB. */
int authdb_user_passwd(struct db *db, const char *name, const char *password);
/** write: deletes user `name` and its grants.  Returns 0, BERR_NOT_FOUND or BERR_DB. */
int authdb_user_del(struct db *db, const char *name);
/** Reads user `name`.  Returns 0, BERR_NOT_FOUND or BERR_DB. */
int authdb_user_get(struct db *db, const char *name, struct authdb_user *out);
/** Calls `cb` for every user in name order. */
int authdb_users_each(struct db *db, authdb_user_cb cb, void *ctx);
/** Number of users, or a negative BERR code. */
int authdb_user_count(struct db *db);

/* ---- robot tokens ---- */

struct authdb_token {
    char name[BERTH_AUTH_NAME_MAX + 1];
    unsigned char secret_hash[32];
    char uid[AUTHDB_UID_MAX];
    long long created_at, expires_at, revoked_at; /* expires_at 0 = never; revoked_at 0 = active */
};
typedef int (*authdb_token_cb)(void *ctx, const struct authdb_token *t);

/** write: creates token `name` expiring `ttl` seconds from now (0 = never) with a fresh secret written to
 *  `secret` (AUTHDB_SECRET_MAX bytes, shown once, never stored).  A revoked token of that name is replaced.
 *  Returns 0, BERR_BAD_REQUEST (bad name, or a live token or a user of that name exists) or BERR_DB. */
int authdb_token_create(struct db *db, const char *name, long long ttl, char secret[AUTHDB_SECRET_MAX]);
/** write: revokes token `name` and deletes its grants.  Returns 0, BERR_NOT_FOUND or BERR_DB. */
int authdb_token_revoke(struct db *db, const char *name);
/** Reads token `name`.  Returns 0, BERR_NOT_FOUND or BERR_DB. */
int authdb_token_get(struct db *db, const char *name, struct authdb_token *out);
/** 0 if `secret[0..len)` is the secret of `t` and `t` is neither revoked nor expired at `now`, else
 *  BERR_UNAUTHORIZED.  Constant time in the secret. */
int authdb_token_verify(const struct authdb_token *t, const char *secret, size_t len, long long now);
/** Calls `cb` for every token in name order. */
int authdb_tokens_each(struct db *db, authdb_token_cb cb, void *ctx);

/* ---- grants ---- */

struct authdb_grant {
    struct authdb_identity subject; /* is_admin unused */
    char pattern[BERTH_NAME_MAX + 1];
    unsigned actions;
};
typedef int (*authdb_grant_cb)(void *ctx, const struct authdb_grant *g);

/** write: grants `actions` on `pattern` to `subject` (merged with an existing grant of that pattern).  The
 *  subject must exist; anonymous may only be granted pull.  Returns 0, BERR_BAD_REQUEST, BERR_NOT_FOUND or
 *  BERR_DB. */
int authdb_grant_add(struct db *db, const struct authdb_identity *subject, unsigned actions, const char *pattern);
/** write: removes the grant of `pattern` from `subject`.  Returns 0, BERR_NOT_FOUND or BERR_DB. */
int authdb_grant_del(struct db *db, const struct authdb_identity *subject, const char *pattern);
/** Calls `cb` for every grant (of `subject` only, unless NULL). */
int authdb_grants_each(struct db *db, const struct authdb_identity *subject, authdb_grant_cb cb, void *ctx);

/* The grants that apply to one identity, loaded once and evaluated per repository (e.g. for each _catalog row). */
struct authdb_grants {
    int all; /* an admin user */
    size_t n;
    struct {
        char pattern[BERTH_NAME_MAX + 1];
        unsigned actions;
    } * g; /* malloc'd */
};

/** Loads the grants of `id` and the anonymous grants (a revoked or expired token, or a missing user, gets only
 *  the anonymous ones).  Release with authdb_grants_free().  Returns 0 or BERR_DB / BERR_NOMEM. */
int authdb_grants_load(struct db *db, const struct authdb_identity *id, struct authdb_grants *out);
/** The actions (AUTH_PULL|AUTH_PUSH|AUTH_DELETE) that `g` allows on repository `name`. */
unsigned authdb_grants_actions(const struct authdb_grants *g, const char *name);
/** Frees the list (safe on a zeroed struct). */
void authdb_grants_free(struct authdb_grants *g);

#endif
