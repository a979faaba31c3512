/*
 * ecr.h - the Amazon ECR API on Berth's listener: `POST /` with `X-Amz-Target:
 * AmazonEC2ContainerRegistry_V20150921.<Operation>`, application/x-amz-json-1.1 in and out, SigV4-signed with an
 * access key (accesskey.h) that acts as its user with that user's grants, or with `Authorization: Bearer` and a
 * token from /token for the scope registry:ecr:* that acts as its subject with the same checks (ecr_bearer.c).
 *
 * Flow (ecr_internal.h): on the request's loop thread, berth checks the failed-signature rate limit, verifies the
 * signature (sigv4.h) over the exact body, parses the JSON and runs the operation: reads on the loop's own
 * connection in one read transaction, a write queued for the writer (writer.h) and answered after its commit, no
 * thread waiting.  Operations that block (ECR's layer upload, the lifecycle dry run) and large bodies run the same
 * steps on a worker.  Errors are HTTP 400 with
 * `{"__type":"<ECR exception>","message":"…"}` (5xx only for server faults, which AWS clients retry).
 *
 * Authorization: describe/list/get/batch-get and BatchCheckLayerAvailability need pull on the repository;
 * PutImage and layer uploads push; BatchDeleteImage delete; Create/DeleteRepository, PutImageTagMutability and
 * resource tagging admin.  GetAuthorizationToken makes the `docker login -u AWS` password (accesskey.h tokens):
 * ecr_login() accepts it on the OCI side as the key's user.
 */
#ifndef BERTH_ECR_H
#define BERTH_ECR_H

#include "authdb.h"
#include "server.h"

#define ECR_TARGET_PREFIX "AmazonEC2ContainerRegistry_V20150921."
#define ECR_CONTENT_TYPE "application/x-amz-json-1.1"
#define ECR_SERVICE "ecr"
#define ECR_LOGIN_USER "AWS"       /* the Basic user name of the ECR login flow */
#define ECR_CLAIM_KEY "berth_akid" /* bearer-token claim: the access key whose ECR login the token came from */
#define ECR_KEY_ID_MAX 24          /* room for an access key id (ACCESSKEY_ID_LEN + 1) */

/* The module (module.h): registers the `POST /` handler in front of the registry API. */

/** Checks the ECR login password `pass[0..len)` (Basic user "AWS"): on success fills `out` with the identity of
 *  the access key's user, `key_id` (ECR_KEY_ID_MAX bytes, may be NULL) with the key's id, and returns 0; else
 *  BERR_UNAUTHORIZED (or BERR_DB).  Runs on any thread. */
int ecr_login(const struct server *srv, struct db *db, const char *pass, size_t len, struct authdb_identity *out,
              char *key_id);

/** For a bearer token that /token issued after an ECR login (its ECR_CLAIM_KEY claim names the access key): 0 if
 *  that key is still live and belongs to `user`, else BERR_UNAUTHORIZED (BERR_DB on a database error).  So a
 *  revoked key takes its bearer tokens with it at once (one indexed lookup per request). */
int ecr_bearer_key_live(struct db *db, const char *key_id, const char *user);

/** 1 if repository `name` may be created by a push (create_on_push, or it exists already), else 0. */
int ecr_push_may_create(const struct server *srv, const char *name);

/** The tag-immutability check for an OCI manifest PUT, inside the write transaction: BERR_TAG_INVALID with ECR's
 *  message in `detail` when `tag` of `repo` is immutable and points at another digest; else 0 (or BERR_DB). */
int ecr_manifest_put_check(struct db *db, const char *repo, const char *tag, const char *digest, char *detail,
                           size_t detail_size);

/** If `err` and `detail` are what ecr_manifest_put_check() refused with, answers the OCI error TAG_INVALID with
 *  ECR's sentence as its `message` (docker prints the message) and returns 1; else returns 0. */
int ecr_respond_immutable(h2o_req_t *req, int err, const char *detail);

#endif
