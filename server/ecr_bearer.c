/*
 * ecr_bearer.c - the ECR API signed with a bearer token instead of SigV4 (see ecr_internal.h): for the web UI, which
 * holds a token from GET /token rather than an access key, and for scripts that have a password but no key.
 *
 * The token must come from Berth's own /token with the registry-wide scope `registry:ecr:*` (tokens that docker or
 * podman get for repository scopes never carry it, so they stay repository-scoped).  The caller then acts as the
 * token's subject with that subject's grants, read now: the same per-operation checks (ecr_allow) as an access key
 * of the same user, and nothing else.
 */
#include <string.h>
#include <strings.h>
#include "auth.h"
#include "ecr_internal.h"
#include "err.h"
#include "log.h"

#define BEARER_SCHEME "Bearer "
#define ECR_SCOPE_TYPE "registry"
#define ECR_SCOPE_NAME "ecr"

int ecr_bearer_is(const char *v, size_t len)
{
    size_t n = strlen(BEARER_SCHEME);
    return len > n && strncasecmp(v, BEARER_SCHEME, n) == 0;
}

int ecr_bearer_authenticate(struct ecr_ctx *c, const char *v, size_t len)
{
    size_t n = strlen(BEARER_SCHEME);
    int rc;
    while (n < len && v[n] == ' ')
        n++;
    while (len > n && v[len - 1] == ' ')
        len--;
    rc = auth_bearer_identity(c->srv, v + n, len - n, ECR_SCOPE_TYPE, ECR_SCOPE_NAME, &c->id);
    if (rc == BERR_INSUFFICIENT_SCOPE) {
        log_warn("ecr: denied %s to a bearer token without the scope registry:ecr:*", c->op);
        ecr_fail(c, "UnrecognizedClientException",
                 "The bearer token was not issued for the ECR API: ask /token for the scope registry:ecr:*.");
        return -1;
    }
    if (rc != 0) {
        log_warn("ecr: denied %s to an invalid, expired or orphaned bearer token", c->op);
        ecr_fail(c, "UnrecognizedClientException", "The security token included in the request is invalid.");
        return -1;
    }
    if (authdb_grants_load(c->db, &c->id, &c->grants) != 0) {
        ecr_fail(c, "ServerException", "grants");
        return -1;
    }
    return 0;
}
