/*
 * auth.h - who is calling and may they: the per-request gate in front of every handler, the token endpoint of the
 * distribution token spec (GET /token), 401/403 answers with WWW-Authenticate, and the rate limit of failed logins.
 *
 * Credentials, from the Authorization header:
 *   none                    anonymous: what anonymous grants allow (public repositories)
 *   Bearer <jwt>            a token from GET /token (jwt.h): allows its access list intersected with the grants
 *                           as they are at each request, while its subject is the identity it was issued to (same
 *                           name and uid, authdb.h) and is not revoked or expired; verified signatures are
 *                           remembered, but a key rotation on disk forgets them before the next request
 *   Basic user:password     a user's password (argon2id, verified on the worker pool, then remembered for
 *                           BERTH_AUTH_CACHE_TTL s), or a robot token's name and secret; grants decide (authdb.h)
 *   Basic AWS:<token>       the ECR login flow: a GetAuthorizationToken token, acting as its access key's user
 *
 * Required action of a request: pull for GET/HEAD, push for PUT/POST/PATCH and for every upload-session request,
 * delete for DELETE, on the request's repository.  /v2/ requires valid credentials (anonymous tokens included);
 * /v2/_catalog admits anyone and lists only the repositories the caller can pull.
 *
 * Denials: no credentials → 401 with `WWW-Authenticate: Bearer realm=…,service=…,scope=…`; a bearer token lacking
 * the scope → 401 with error="insufficient_scope"; Basic credentials lacking the grant → 403 DENIED; wrong
 * credentials → 401; too many failures from one address (and user) → 429.  Each denial is logged with identity,
 * repository and action, never with a secret.  With auth off (cfg.no_auth) everything is allowed.
 *
 * Threads: everything here runs on event-loop threads except argon2id verification (worker pool).  The identity
 * of the request is handed to the handler in its `struct call` (call->who, in the request pool), set by
 * auth_then() before the handler runs.  The auth state (signing keys, caches of verified passwords and tokens,
 * failed-login counts) is this module's own, behind one mutex, set up by auth_module's init.
 */
#ifndef BERTH_AUTH_H
#define BERTH_AUTH_H

#include <jansson.h>
#include "authdb.h"
#include "router.h"
#include "server.h"

struct auth_identity {
    struct authdb_identity id;
    int bearer;       /* credentials were a bearer token */
    json_t *claims;   /* its verified claims (released with the request), else NULL */
    char ecr_key[24]; /* the access key of an ECR login (Basic AWS:<token>, ecr.h), else "" */
};

/* auth_module (module.h) prepares `berth serve` with auth on: loads or creates the signing keys, and on a first
 * start without users creates user "admin" with a random password, printed once on stdout with the docker login
 * command. */

/** The gate: decides whether the call may run `next` and runs it with call->who set (now, or after a password
 *  check on the worker pool), or answers the denial.  Returns next's result when it ran synchronously, else 0. */
int auth_then(struct call *call, handler_fn next);
/** 1 if the caller (call->who) may do all of `actions` on repository `repo` (e.g. pull of a mount's source); a
 *  denial is logged. */
int auth_can(const struct call *call, const char *repo, unsigned actions);

/** Filter for _catalog: NULL when the caller may see every repository, else a list (in the request's pool). */
struct auth_filter *auth_catalog_filter(const struct call *call);
/** 1 if the caller of `f` may pull `name` (1 when `f` is NULL). */
int auth_filter_allows(const struct auth_filter *f, const char *name);

/** Verifies a bearer token `token[0..len)` from GET /token for use outside the registry API (the ECR endpoint):
 *  its signature, expiry and subject as auth_then() does, and that its access list holds the registry-wide entry
 *  `type`:`name` (e.g. "registry", "ecr"), which /token gives only to a user or robot token that asked for it.  On
 *  success fills `out` with the subject's identity (what it may do is then decided by its grants, read by the
 *  caller) and returns 0; else BERR_UNAUTHORIZED (bad, expired or orphaned token) or BERR_INSUFFICIENT_SCOPE (a
 *  valid token without that entry, or an anonymous one).  Runs on any thread. */
int auth_bearer_identity(const struct server *srv, const char *token, size_t len, const char *type, const char *name,
                         struct authdb_identity *out);

/** GET /token?service=…&scope=…[&scope=…]: the token endpoint (distribution token spec). */
int auth_token(struct call *call, h2o_req_t *req, const struct route *rt);

#endif
