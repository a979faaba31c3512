/*
 * jwt.h - the bearer tokens of the distribution token spec: JWTs signed with Ed25519 (alg "EdDSA", RFC 8037),
 * base64url, and the signing keys under <data>/keys/.  No h2o.
 *
 * Keys: keys/jwt-current.key signs; keys/jwt-previous.key, the key it replaced, still verifies, so that tokens
 * signed before a rotation stay valid until they expire (bearer tokens live minutes; a second rotation within one
 * token lifetime cuts such tokens short, which only makes clients fetch a new one).  Each file is one line,
 * "ed25519 <created-unix-time> <base64url seed>", mode 0600, replaced atomically by rename(2).  A token's header
 * names its key by `kid` (base64url of the first 12 bytes of BLAKE2b(public key)).
 *
 * Verification accepts exactly: a header whose alg is "EdDSA" (never "none", never an HMAC) and whose kid is one of
 * the two keys; a valid signature over the first two parts; iss BERTH_AUTH_ISSUER; aud equal to the service; exp in
 * the future; nbf and iat not in the future (BERTH_JWT_LEEWAY seconds of skew allowed).  Only then are the claims
 * parsed for the caller.
 *
 * Claims Berth writes: iss, sub (user or token name, "" for anonymous), aud, exp, nbf, iat, jti, "berth_kind"
 * ("user", "token" or "anonymous"), "berth_uid" (the identity's immutable id, authdb.h; "" for anonymous) and the
 * spec's access list [{"type","name","actions"}].
 */
#ifndef BERTH_JWT_H
#define BERTH_JWT_H

#include <stddef.h>
#include <jansson.h>
#include "authdb.h"

#define JWT_KID_MAX 24

struct jwt_key {
    unsigned char pk[32], sk[64];
    char kid[JWT_KID_MAX];
    long long created;
};

/* The signing key and the one before it; keys[0] signs, both verify. */
struct jwt_keyring {
    struct jwt_key keys[2];
    int n; /* 0, 1 or 2 */
};

/** Loads <datadir>/keys/ into `kr`.  With `create`, makes keys/ (0700) and a first key if there is none, and
 *  rotates a current key older than `max_age` seconds (0 = never).  Returns 0, BERR_NOT_FOUND (no key and not
 *  `create`) or BERR_IO. */
int jwt_keys_load(const char *datadir, int create, long long max_age, struct jwt_keyring *kr);
/** Rotates: the current key becomes the previous one and a new current key is made.  Returns 0 or BERR_IO. */
int jwt_keys_rotate(const char *datadir);
/** A fingerprint of the two key files (inode, size, modification and change time of each, or their absence) that
 *  changes with every rotation, removal or replacement: two stat(2) calls, cheap enough for every request. */
long long jwt_keys_stamp(const char *datadir);
/** Derives a key pair from a 32-byte seed (tests) into `k`. */
void jwt_key_from_seed(const unsigned char seed[32], long long created, struct jwt_key *k);

/** Signs the JSON object `claims` with kr->keys[0] into a malloc'd compact JWT.  Returns 0 or BERR_INTERNAL. */
int jwt_sign(const struct jwt_keyring *kr, const json_t *claims, char **out);
/** Verifies `token[0..len)` as described above for audience `aud` at time `now`; on success *claims is the
 *  payload (json_decref it).  Returns 0 or BERR_UNAUTHORIZED. */
int jwt_verify(const struct jwt_keyring *kr, const char *token, size_t len, const char *aud, long long now,
               json_t **claims);
/** The actions the access list of verified `claims` grants on repository `name`. */
unsigned jwt_access_actions(const json_t *claims, const char *name);

/** base64url without padding of `in[0..len)` into `out` (NUL-terminated).  Returns 0 or -1 if too small. */
int jwt_b64_encode(const void *in, size_t len, char *out, size_t size);
/** Decodes strict base64url without padding; *outlen is the byte count.  Returns 0 or -1. */
int jwt_b64_decode(const char *in, size_t len, unsigned char *out, size_t size, size_t *outlen);

#endif
