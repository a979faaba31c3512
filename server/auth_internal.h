/*
 * auth_internal.h - what server/auth.c shares with server/token.c (the token endpoint), server/auth_basic.c (Basic
 * credentials) and server/auth_throttle.c (the failed-login rate limit), and nothing else.  Functions named auth__*
 * are internal to these files (libuv style); auth.h is the public face.
 */
#ifndef BERTH_AUTH_INTERNAL_H
#define BERTH_AUTH_INTERNAL_H

#include <netinet/in.h>
#include "auth.h"
#include "authhdr.h"
#include "jwt.h"

/* the kinds of authhdr.h, under the names auth.c uses */
enum cred_kind {
    CRED_NONE = AUTHHDR_NONE,
    CRED_BASIC = AUTHHDR_BASIC,
    CRED_BEARER = AUTHHDR_BEARER,
    CRED_MALFORMED = AUTHHDR_MALFORMED
};

struct creds {
    enum cred_kind kind;
    char user[BERTH_AUTH_NAME_MAX + 2]; /* NUL-terminated, but may hold a NUL before ulen: check ulen */
    size_t ulen;
    char pass[BERTH_AUTH_PASSWORD_MAX + 1];
    size_t plen;
    h2o_iovec_t token;
};

/* Called on the loop once Basic credentials were checked: `rc` 0 (id filled) or a BERR code. */
typedef void (*basic_cont_fn)(h2o_req_t *req, struct auth_identity *id, int rc, void *arg);

/** "user", "token" or "anonymous". */
const char *auth__kind_name(enum authdb_kind k);
/** A copy of the signing keyring, reloaded when another process rotated the key files. */
void auth__keys_get(const struct server *srv, struct jwt_keyring *out);
/** Reads the Authorization header of `req` into `c` (wipe it with auth__creds_clear). */
void auth__creds_parse(h2o_req_t *req, struct creds *c);
/** Wipes the password or secret in `c`. */
void auth__creds_clear(struct creds *c);
/** A zeroed identity in the request pool; its claims are released with the request. */
struct auth_identity *auth__identity_new(h2o_req_t *req);
/** auth_basic.c: draws the key of the cache of successful checks and the dummy hash that unknown names are verified
 *  against (sodium_init() done).  Returns 0 or -1. */
int auth__basic_start(void);
/** auth_basic.c: checks Basic credentials: 0 or a BERR code now, or 1 when `cont` will run later (a password on the
 *  pool). */
int auth__basic_verify(struct call *call, struct creds *c, struct auth_identity *id, basic_cont_fn cont, void *arg);
/** Answers a failed credential check `rc` (401 with a challenge, 429 with Retry-After, or the error). */
void auth__reject_creds(const struct server *srv, h2o_req_t *req, int rc, int bearer);

/* auth_throttle.c: the failed-login rate limit */

/* A client's address: raw bytes (4 or 16) for the rate limit, text for the log. */
struct auth_throttle_peer {
    unsigned char raw[16];
    size_t len;
    char text[INET6_ADDRSTRLEN];
};

/** Draws the process secret the rate limit's keys are hashed with (sodium_init() done); with metadata = postgresql
 *  reads the cluster's instead and starts sharing failures (authfail.h).  Returns 0 or -1 (logged). */
int auth_throttle_start(void);
/** The address of `req`'s client into *p ("?" as text when unknown). */
void auth_throttle_peer_of(h2o_req_t *req, struct auth_throttle_peer *p);
/** 1 if `user` from `p` has failed too often (BERTH_AUTH_FAIL_MAX_USER, or BERTH_AUTH_FAIL_MAX_ADDR for the
 *  address), 0 otherwise. */
int auth_throttle_limited(const struct auth_throttle_peer *p, const char *user);
/** Records a login of `user[0..ulen)` (client bytes, escaped when logged) from `p`: a success clears the (address,
 *  user) count, a failure counts for both and is logged with `why`. */
void auth_throttle_result(const struct auth_throttle_peer *p, const char *user, size_t ulen, int ok, const char *why);

#endif
