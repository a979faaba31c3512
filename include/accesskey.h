/*
 * accesskey.h - AWS-style access keys for the ECR API: an id ("BK" + 18 upper-case alphanumerics) and a secret
 * (40 characters of base64, like AWS's), owned by a Berth user whose grants the key carries.  No h2o.
 *
 * SigV4 needs the secret itself on the server, so it cannot be stored as a hash: each secret is sealed with
 * libsodium's crypto_secretbox (XSalsa20-Poly1305, a fresh random nonce per key) under one 32-byte key kept in
 * <data>/keys/accesskeys.key (mode 0600, directory 0700).  berth.db alone never reveals a secret; the secret is
 * printed once at creation and never logged.  A revoked key, or a key whose user was deleted, no longer opens.
 *
 * ECR authorization tokens (GetAuthorizationToken, then `docker login -u AWS`): "<key id>.<expiry>.<mac>" where
 * mac = base64url(HMAC-SHA256(HMAC-SHA256(secret, ACCESSKEY_TOKEN_CONTEXT), "<key id>.<expiry>")).  Stateless: a
 * token is valid until its expiry while its key is live, and dies with the key.
 *
 * Functions marked "write" need a write transaction (db_begin/db_commit, or the server's writer); others are reads.
 */
#ifndef BERTH_ACCESSKEY_H
#define BERTH_ACCESSKEY_H

#include <stddef.h>
#include "db.h"
#include "defaults.h"

#define ACCESSKEY_ID_LEN 20       /* "BK" + 18 */
#define ACCESSKEY_ID_PREFIX "BK"  /* AWS uses AKIA / ASIA; BK says "Berth key" */
#define ACCESSKEY_SECRET_LEN 40   /* base64 of 30 random bytes */
#define ACCESSKEY_DESC_MAX 256    /* longest description */
#define ACCESSKEY_BOXKEY_BYTES 32 /* crypto_secretbox_KEYBYTES */
#define ACCESSKEY_BOXKEY_FILE "accesskeys.key"
#define ACCESSKEY_TOKEN_MAX 128 /* longest ECR authorization token */
#define ACCESSKEY_TOKEN_CONTEXT "berth ecr authorization token v1"

struct accesskey {
    char id[ACCESSKEY_ID_LEN + 1];
    char user[BERTH_AUTH_NAME_MAX + 1];
    char description[ACCESSKEY_DESC_MAX + 1];
    long long created_at, revoked_at; /* revoked_at 0 = live */
};
typedef int (*accesskey_cb)(void *ctx, const struct accesskey *k);

/** 0 if `id[0..len)` has the shape of a key id, else BERR_BAD_REQUEST. */
int accesskey_id_valid(const char *id, size_t len);

/** Loads the secret-sealing key from <datadir>/keys/; with `create`, makes it (and keys/, 0700) when missing.
 *  Returns 0, BERR_NOT_FOUND (missing and not `create`) or BERR_IO. */
int accesskey_boxkey_load(const char *datadir, int create, unsigned char key[ACCESSKEY_BOXKEY_BYTES]);

/** write: creates a key for existing user `user` with `description` (may be NULL); fills `out` and the fresh
 *  `secret` (shown once).  Returns 0, BERR_NOT_FOUND (no such user), BERR_BAD_REQUEST (description too long or with
 *  control characters) or BERR_DB. */
int accesskey_create(struct db *db, const unsigned char boxkey[ACCESSKEY_BOXKEY_BYTES], const char *user,
                     const char *description, struct accesskey *out, char secret[ACCESSKEY_SECRET_LEN + 1]);
/** write: revokes key `id`.  Returns 0, BERR_NOT_FOUND (unknown or already revoked) or BERR_DB. */
int accesskey_revoke(struct db *db, const char *id);
/** Reads key `id` (live or revoked).  Returns 0, BERR_NOT_FOUND or BERR_DB. */
int accesskey_get(struct db *db, const char *id, struct accesskey *out);
/** Reads live key `id` of an existing user and opens its secret into `secret`.  Returns 0, BERR_NOT_FOUND
 *  (unknown, revoked, or its user deleted), BERR_INTERNAL (the sealed secret does not open: wrong key file) or
 *  BERR_DB. */
int accesskey_secret(struct db *db, const unsigned char boxkey[ACCESSKEY_BOXKEY_BYTES], const char *id,
                     struct accesskey *out, char secret[ACCESSKEY_SECRET_LEN + 1]);
/** Calls `cb` for every key (of `user` only unless NULL), oldest first. */
int accesskey_each(struct db *db, const char *user, accesskey_cb cb, void *ctx);

/** Makes an ECR authorization token for key `id` with `secret`, valid until `expires_at`, into `out`. */
void accesskey_token_issue(const char *id, const char *secret, long long expires_at, char out[ACCESSKEY_TOKEN_MAX]);
/** Checks token `tok[0..len)` at `now`: well-formed, not expired, its key live, its MAC right (constant time).
 *  Fills `out` with the key.  Returns 0 or BERR_UNAUTHORIZED (BERR_DB on a database failure). */
int accesskey_token_verify(struct db *db, const unsigned char boxkey[ACCESSKEY_BOXKEY_BYTES], const char *tok,
                           size_t len, long long now, struct accesskey *out);

#endif
