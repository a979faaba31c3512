/*
 * ecr_internal.h - shared by ecr.c (protocol, SigV4, dispatch) and ecr_ops.c (the operations).  Everything here
 * runs on a worker thread with the request already authenticated.
 */
#ifndef BERTH_ECR_INTERNAL_H
#define BERTH_ECR_INTERNAL_H

#include <jansson.h>
#include "accesskey.h"
#include "authdb.h"
#include "db.h"
#include "ecrdb.h"
#include "server.h"

#define ECR_MESSAGE_MAX 1024
#define ECR_ENDPOINT_MAX 512

/* One ECR request being served. */
struct ecr_ctx {
    struct server *srv;
    struct db *db;  /* the worker's read connection */
    const char *op; /* operation name */
    int no_auth;    /* cfg.no_auth: everything allowed */
    struct authdb_identity id;
    struct authdb_grants grants;
    int have_key; /* signed with an access key (not with auth off) */
    struct accesskey key;
    char secret[ACCESSKEY_SECRET_LEN + 1];
    char registry_id[ECRDB_REGISTRY_ID_LEN + 1];
    const char *region;
    char endpoint[ECR_ENDPOINT_MAX]; /* scheme://host[:port], the proxyEndpoint */
    const char *host;                /* host[:port], the start of repositoryUri */
    long long now;
    /* the answer */
    int status;
    const char *type; /* __type of an error, NULL on success */
    char message[ECR_MESSAGE_MAX];
};

/** An operation: returns the response object, or NULL after ecr_fail(). */
typedef json_t *(*ecr_op_fn)(struct ecr_ctx *c, json_t *in);

/** Records an error answer (HTTP 400 unless `type` is ServerException) and returns NULL. */
json_t *ecr_fail(struct ecr_ctx *c, const char *type, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/** 1 if the caller may do `actions` (AUTH_PULL/PUSH/DELETE, or AUTH_ADMIN) on `repo`; else records
 *  AccessDeniedException naming the action and repository, and returns 0. */
int ecr_allow(struct ecr_ctx *c, const char *repo, unsigned actions);

/* ecr_lifecycle.c: the lifecycle-policy operations (lifecycle.h does the work) */
json_t *ecr_op_put_lifecycle_policy(struct ecr_ctx *c, json_t *in);
json_t *ecr_op_get_lifecycle_policy(struct ecr_ctx *c, json_t *in);
json_t *ecr_op_delete_lifecycle_policy(struct ecr_ctx *c, json_t *in);
json_t *ecr_op_start_lifecycle_policy_preview(struct ecr_ctx *c, json_t *in);
json_t *ecr_op_get_lifecycle_policy_preview(struct ecr_ctx *c, json_t *in);

/* ecr_layers.c: ECR's layer upload path */
json_t *ecr_op_initiate_layer_upload(struct ecr_ctx *c, json_t *in);
json_t *ecr_op_upload_layer_part(struct ecr_ctx *c, json_t *in);
json_t *ecr_op_complete_layer_upload(struct ecr_ctx *c, json_t *in);

/* ecr_bearer.c: the ECR API with a bearer token from /token (scope registry:ecr:*) instead of SigV4 */

/** 1 if the Authorization value `v[0..len)` is a bearer token ("Bearer <token>", scheme case-insensitive). */
int ecr_bearer_is(const char *v, size_t len);
/** Authenticates the bearer token in the Authorization value `v[0..len)`: sets c->id to its subject and loads that
 *  subject's grants into c->grants.  Returns 0, or -1 after ecr_fail (UnrecognizedClientException). */
int ecr_bearer_authenticate(struct ecr_ctx *c, const char *v, size_t len);

/** The operation called `name`, or NULL if Berth does not implement it. */
ecr_op_fn ecr_ops_find(const char *name);

#endif
