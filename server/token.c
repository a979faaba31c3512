/* token.c - GET /token: the token endpoint of the distribution token spec (see auth.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>
#include "auth_internal.h"
#include "ecr.h"
#include "err.h"
#include "log.h"
#include "respond.h"
#include "scope.h"

struct issue {
    h2o_req_t *req;
    struct auth_identity *id;
    struct authdb_grants grants;
    json_t *access;
    int scopes;
};

/* AUTH_ADMIN if `g` makes its subject an admin of repository `name` (an admin user, or an admin grant matching
 * it), else 0.  A token's "admin" action only tells a client (the web UI) what the ECR API will allow; the
 * registry API never reads it (jwt_access_actions() keeps pull, push and delete). */
static unsigned admin_on(const struct authdb_grants *g, const char *name)
{
    if (g->all)
        return AUTH_ADMIN;
    for (size_t i = 0; i < g->n; i++)
        if ((g->g[i].actions & AUTH_ADMIN) && authdb_pattern_match(g->g[i].pattern, name))
            return AUTH_ADMIN;
    return 0;
}

/* Adds the granted part of one well-formed scope (scope.h). */
static int add_scope(void *ctx, const struct scope_item *it)
{
    struct issue *is = ctx;
    char acts[AUTH_ACTIONS_STR_MAX];
    unsigned have;
    json_t *list;
    /* registry:catalog:* lists; registry:ecr:* lets the token sign the ECR API as its subject (ecr_bearer.c) */
    if (it->kind == SCOPE_REGISTRY) {
        if (is->id->id.kind != AUTH_ANONYMOUS)
            json_array_append_new(is->access,
                                  json_pack("{s:s, s:s, s:[s]}", "type", "registry", "name", it->name, "actions", "*"));
        return 0;
    }
    have = it->actions & (authdb_grants_actions(&is->grants, it->name) | admin_on(&is->grants, it->name));
    if ((have & AUTH_ALL) != (it->actions & AUTH_ALL)) { /* "admin" is only asked about (the web UI): no warning */
        authdb_actions_format(it->actions & ~have & AUTH_ALL, acts, sizeof(acts));
        char ename[LOG_ESCAPED_MAX(BERTH_AUTH_NAME_MAX)], erepo[LOG_ESCAPED_MAX(BERTH_NAME_MAX)];
        log_warn("auth: denied %s '%s': %s on repository %s (token request)", auth__kind_name(is->id->id.kind),
                 log_escape(is->id->id.name, strlen(is->id->id.name), ename, sizeof(ename)), acts,
                 log_escape(it->name, strlen(it->name), erepo, sizeof(erepo)));
    }
    if (have == 0)
        return 0;
    list = json_array();
    for (unsigned b = AUTH_PULL; b <= AUTH_ADMIN; b <<= 1)
        if (have & b) {
            authdb_actions_format(b, acts, sizeof(acts));
            json_array_append_new(list, json_string(acts));
        }
    json_array_append_new(is->access,
                          json_pack("{s:s, s:s, s:o}", "type", "repository", "name", it->name, "actions", list));
    return 0;
}

/* One `scope` parameter: its scopes, counted across parameters. */
static int add_scopes(void *ctx, const char *v)
{
    struct issue *is = ctx;
    return scope_each(v, &is->scopes, add_scope, is);
}

static void issue_token(const struct server *srv, h2o_req_t *req, struct auth_identity *id)
{
    struct issue is = {.req = req, .id = id};
    struct db *db = server_db(srv);
    struct jwt_keyring kr;
    long long now = (long long)time(NULL);
    unsigned char jti[16];
    char jti64[32], when[32], *tok = NULL, *body, scope[SCOPE_VALUE_MAX];
    json_t *claims;
    struct tm tm;
    time_t t = (time_t)now;
    int rc;
    if (db == NULL || authdb_grants_load(db, &id->id, &is.grants) != 0) {
        respond_error(req, BERR_DB, NULL);
        return;
    }
    is.access = json_array();
    rc = respond_query_each(req, "scope", add_scopes, &is, scope, sizeof(scope)) < 0 ? BERR_BAD_REQUEST : 0;
    authdb_grants_free(&is.grants);
    if (rc != 0) {
        json_decref(is.access);
        respond_error(req, rc, "malformed scope");
        return;
    }
    randombytes_buf(jti, sizeof(jti));
    jwt_b64_encode(jti, sizeof(jti), jti64, sizeof(jti64));
    claims = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:o}", "iss", BERTH_AUTH_ISSUER, "sub",
                       id->id.name, "aud", srv->cfg.auth_service, "exp", (json_int_t)(now + srv->cfg.auth_token_ttl),
                       "nbf", (json_int_t)now, "iat", (json_int_t)now, "jti", jti64, "berth_kind",
                       auth__kind_name(id->id.kind), "berth_uid", id->id.uid, "access", is.access);
    if (claims != NULL && id->ecr_key[0] != '\0') /* revoking that access key revokes this token (auth.c) */
        json_object_set_new(claims, ECR_CLAIM_KEY, json_string(id->ecr_key));
    auth__keys_get(srv, &kr);
    rc = claims != NULL ? jwt_sign(&kr, claims, &tok) : BERR_NOMEM;
    sodium_memzero(&kr, sizeof(kr));
    json_decref(claims);
    if (rc != 0) {
        respond_error(req, rc, NULL);
        return;
    }
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    body = respond_printf(req, "{\"token\":\"%s\",\"access_token\":\"%s\",\"expires_in\":%d,\"issued_at\":\"%s\"}\n",
                          tok, tok, srv->cfg.auth_token_ttl, when);
    free(tok);
    respond_header(req, "cache-control", "no-store", 0);
    respond_body(req, 200, "application/json", body, strlen(body), 1);
}

static void token_after_basic(h2o_req_t *req, struct auth_identity *id, int rc, void *arg)
{
    const struct server *srv = ((struct call *)arg)->srv;
    if (rc != 0)
        auth__reject_creds(srv, req, rc, 0);
    else
        issue_token(srv, req, id);
}

int auth_token(struct call *call, h2o_req_t *req, const struct route *rt)
{
    const struct server *srv = call->srv;
    struct creds c;
    struct auth_identity *id;
    char service[sizeof(srv->cfg.auth_service)];
    int rc;
    (void)rt;
    if (srv->cfg.no_auth)
        return BERR_NOT_FOUND;
    rc = respond_query(req, "service", service, sizeof(service));
    if (rc < 0 || (rc == 1 && strcmp(service, srv->cfg.auth_service) != 0))
        return BERR_BAD_REQUEST;
    auth__creds_parse(req, &c);
    id = auth__identity_new(req);
    if (c.kind == CRED_NONE) {
        issue_token(srv, req, id);
        return 0;
    }
    if (c.kind != CRED_BASIC) {
        auth__reject_creds(srv, req, BERR_UNAUTHORIZED, 0);
        return 0;
    }
    rc = auth__basic_verify(call, &c, id, token_after_basic, call);
    auth__creds_clear(&c);
    if (rc == 0)
        issue_token(srv, req, id);
    else if (rc != 1)
        auth__reject_creds(srv, req, rc, 0);
    return 0;
}
