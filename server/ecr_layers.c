/*
 * ecr_layers.c - ECR's own layer upload path: InitiateLayerUpload, UploadLayerPart (base64 parts appended in
 * order), CompleteLayerUpload (digest verified, file first, row second).  The sessions are Berth's upload sessions
 * (upload.h, meta.h), so the janitor expires abandoned ones like any other.  Parts of one upload must come one at
 * a time, in order (partFirstByte = bytes received so far), as the AWS SDKs send them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "digest.h"
#include "ecr_internal.h"
#include "ecrargs.h"
#include "err.h"
#include "gc.h"
#include "meta.h"
#include "names.h"
#include "server.h"
#include "upload.h"
#include "writer.h"

#define ECR_PART_SIZE (5u << 20) /* partSize InitiateLayerUpload advertises (ECR's minimum part) */

static const char *repo_name(struct ecr_ctx *c, json_t *in)
{
    const char *name = json_string_value(json_object_get(in, "repositoryName"));
    if (name == NULL || strlen(name) < 2 || names_repo_valid(name, strlen(name)) != 0)
        return ecr_fail(c, "InvalidParameterException", "Invalid parameter at 'repositoryName'"), NULL;
    return name;
}

/* The repository exists (RepositoryNotFoundException otherwise) and the caller may push to it. */
static int pushable(struct ecr_ctx *c, const char *repo)
{
    struct ecrdb_repo r;
    if (!ecr_allow(c, repo, AUTH_PUSH))
        return 0;
    if (ecrdb_repo_get(c->db, repo, &r) != 0) {
        ecr_fail(c, "RepositoryNotFoundException",
                 "The repository with name '%s' does not exist in the registry with id '%s'", repo, c->registry_id);
        return 0;
    }
    return 1;
}

struct start_args {
    const char *repo;
    const struct blobstore *bs;
    char uuid[BERTH_UUID_LEN + 1];
};

static int start_op(struct db *db, void *arg)
{
    struct start_args *a = arg;
    return meta_upload_add(db, a->uuid, a->repo);
}

static json_t *start_finish(struct ecr_ctx *c, void *arg, int rc)
{
    struct start_args *a = arg;
    if (rc != 0) {
        upload_remove(a->bs, a->uuid);
        return ecr_fail(c, "ServerException", "%s", berr_message(rc));
    }
    return json_pack("{s:s, s:I}", "uploadId", a->uuid, "partSize", (json_int_t)ECR_PART_SIZE);
}

json_t *ecr_op_initiate_layer_upload(struct ecr_ctx *c, json_t *in)
{
    struct start_args *a = ecr_alloc(c, sizeof(*a));
    struct upload *u;
    int rc;
    if (a == NULL)
        return ecr_fail(c, "ServerException", "out of memory");
    if ((a->repo = repo_name(c, in)) == NULL || !pushable(c, a->repo))
        return NULL;
    if ((rc = upload_create(&c->srv->bs, &u)) != 0)
        return ecr_fail(c, "ServerException", "%s", berr_message(rc));
    a->bs = &c->srv->bs;
    snprintf(a->uuid, sizeof(a->uuid), "%s", u->uuid);
    upload_free(u);
    return ecr_write(c, start_op, a, start_finish);
}

/* The uploadId of `repo`, checked against the session rows.  NULL after ecr_fail. */
static const char *upload_arg(struct ecr_ctx *c, json_t *in, const char *repo)
{
    const char *id = json_string_value(json_object_get(in, "uploadId"));
    if (id == NULL || upload_uuid_valid(id, strlen(id)) != 0 || meta_upload_find(c->db, id, repo) != 0)
        return ecr_fail(c, "UploadNotFoundException",
                        "The upload with id '%s' is not found in the repository with name '%s'", id ? id : "", repo),
               NULL;
    return id;
}

json_t *ecr_op_upload_layer_part(struct ecr_ctx *c, json_t *in)
{
    const char *repo, *id;
    unsigned char *part;
    struct upload *u;
    struct ecrargs_err e;
    int64_t first, last;
    size_t n;
    int rc;
    if ((repo = repo_name(c, in)) == NULL || !pushable(c, repo) || (id = upload_arg(c, in, repo)) == NULL)
        return NULL;
    if (ecrargs_layer_part(in, &part, &n, &first, &last, &e) != 0)
        return ecr_fail(c, e.type, "%s", e.msg);
    if ((rc = upload_open(&c->srv->bs, id, &u)) != 0) {
        free(part);
        return ecr_fail(c, "UploadNotFoundException", "The upload with id '%s' is gone", id);
    }
    if (!ecrargs_part_continues(first, last, n, u->size)) {
        json_t *err = ecr_fail(c, "InvalidLayerPartException",
                               "The part must start at byte %llu and its partLastByte must match its length",
                               (unsigned long long)u->size);
        upload_free(u);
        free(part);
        return err;
    }
    rc = upload_append(u, part, n);
    if (rc == 0)
        rc = upload_sync(u); /* S3: save the session's state */
    free(part);
    json_t *out = rc != 0 ? ecr_fail(c, "ServerException", "%s", berr_message(rc))
                          : json_pack("{s:s, s:s, s:s, s:I}", "registryId", c->registry_id, "repositoryName", repo,
                                      "uploadId", id, "lastByteReceived", (json_int_t)u->size - 1);
    upload_free(u);
    return out;
}

struct commit_args {
    const struct blobstore *bs;
    const char *repo, *uuid;
    char digest[BERTH_DIGEST_MAX];
    int64_t size;
};

static int commit_op(struct db *db, void *arg)
{
    struct commit_args *a = arg;
    int rc = gc_blob_commit_check(db, a->bs, a->digest);
    if (rc == 0)
        rc = meta_blob_commit(db, a->repo, a->digest, a->size);
    if (rc == 0)
        rc = meta_upload_del(db, a->uuid);
    return rc;
}

static int cancel_op(struct db *db, void *arg)
{
    return meta_upload_del(db, arg);
}

/* The answer after the session of a failed upload was dropped: the error recorded before. */
static json_t *cancel_finish(struct ecr_ctx *c, void *arg, int rc)
{
    (void)c;
    (void)arg;
    (void)rc;
    return NULL;
}

static json_t *commit_finish(struct ecr_ctx *c, void *arg, int rc)
{
    struct commit_args *a = arg;
    if (rc != 0)
        return ecr_fail(c, "ServerException", "%s", berr_message(rc));
    return json_pack("{s:s, s:s, s:s, s:s}", "registryId", c->registry_id, "repositoryName", a->repo, "uploadId",
                     a->uuid, "layerDigest", a->digest);
}

json_t *ecr_op_complete_layer_upload(struct ecr_ctx *c, json_t *in)
{
    json_t *digests = json_object_get(in, "layerDigests");
    const char *d = json_string_value(json_array_get(digests, 0));
    struct commit_args *a = ecr_alloc(c, sizeof(*a));
    struct upload *u;
    int64_t have;
    int rc;
    if (a == NULL)
        return ecr_fail(c, "ServerException", "out of memory");
    a->bs = &c->srv->bs;
    if ((a->repo = repo_name(c, in)) == NULL || !pushable(c, a->repo) || (a->uuid = upload_arg(c, in, a->repo)) == NULL)
        return NULL;
    if (json_array_size(digests) != 1 || d == NULL || digest_parse(d, strlen(d), a->digest) != 0)
        return ecr_fail(c, "InvalidParameterException", "layerDigests must hold exactly one sha256 digest");
    if (meta_blob_stat(c->db, a->repo, a->digest, &have) == 0)
        return ecr_fail(c, "LayerAlreadyExistsException", "The layer '%s' already exists in the repository '%s'",
                        a->digest, a->repo);
    if ((rc = upload_open(&c->srv->bs, a->uuid, &u)) != 0)
        return ecr_fail(c, "UploadNotFoundException", "The upload with id '%s' is gone", a->uuid);
    a->size = (int64_t)u->size;
    if (a->size == 0) {
        upload_free(u);
        return ecr_fail(c, "EmptyUploadException", "The upload with id '%s' has no parts", a->uuid);
    }
    rc = upload_finish(&c->srv->bs, u, a->digest);
    upload_free(u);
    if (rc != 0) {
        if (rc == BERR_DIGEST_INVALID)
            ecr_fail(c, "InvalidLayerException", "The uploaded layer does not hash to '%s'", a->digest);
        else
            ecr_fail(c, "ServerException", "%s", berr_message(rc));
        return ecr_write(c, cancel_op, (void *)a->uuid, cancel_finish);
    }
    return ecr_write(c, commit_op, a, commit_finish);
}

/* ---- reading layers ---- */

json_t *ecr_op_batch_check_layer_availability(struct ecr_ctx *c, json_t *in)
{
    json_t *digests = json_object_get(in, "layerDigests"), *d, *layers, *failures;
    struct ecrdb_repo r;
    const char *repo;
    size_t i;
    if ((repo = ecr_ops_repo_arg(c, in)) == NULL)
        return NULL;
    if (!json_is_array(digests) || json_array_size(digests) < 1 || json_array_size(digests) > BERTH_ECR_BATCH_MAX)
        return ecr_fail(c, "InvalidParameterException", "layerDigests must hold 1 to %d digests", BERTH_ECR_BATCH_MAX);
    if (!ecr_allow(c, repo, AUTH_PULL) || ecr_ops_get_repo(c, repo, &r) != 0)
        return NULL;
    layers = json_array();
    failures = json_array();
    json_array_foreach(digests, i, d)
    {
        const char *s = json_string_value(d);
        char digest[BERTH_DIGEST_MAX];
        int64_t size;
        if (s == NULL || digest_parse(s, strlen(s), digest) != 0)
            json_array_append_new(failures, json_pack("{s:s, s:s, s:s}", "layerDigest", s ? s : "", "failureCode",
                                                      "InvalidLayerDigest", "failureReason", "Invalid layer digest"));
        else if (meta_blob_stat(c->db, repo, digest, &size) == 0)
            json_array_append_new(layers, json_pack("{s:s, s:s, s:I}", "layerDigest", digest, "layerAvailability",
                                                    "AVAILABLE", "layerSize", (json_int_t)size));
        else
            json_array_append_new(failures, json_pack("{s:s, s:s, s:s}", "layerDigest", digest, "failureCode",
                                                      "MissingLayerDigest", "failureReason", "Layer not found"));
    }
    return json_pack("{s:o, s:o}", "layers", layers, "failures", failures);
}

json_t *ecr_op_get_download_url_for_layer(struct ecr_ctx *c, json_t *in)
{
    const char *repo, *s = json_string_value(json_object_get(in, "layerDigest"));
    char digest[BERTH_DIGEST_MAX];
    int64_t size;
    if ((repo = ecr_ops_repo_arg(c, in)) == NULL)
        return NULL;
    if (s == NULL || digest_parse(s, strlen(s), digest) != 0)
        return ecr_fail(c, "InvalidParameterException", "Invalid parameter at 'layerDigest'");
    if (!ecr_allow(c, repo, AUTH_PULL))
        return NULL;
    if (meta_blob_stat(c->db, repo, digest, &size) != 0) {
        struct ecrdb_repo r;
        if (ecr_ops_get_repo(c, repo, &r) != 0)
            return NULL;
        return ecr_fail(c, "LayersNotFoundException", "The layer '%s' does not exist in the repository '%s'", digest,
                        repo);
    }
    json_t *out = json_pack("{s:s}", "layerDigest", digest);
    json_object_set_new(out, "downloadUrl", json_sprintf("%s/v2/%s/blobs/%s", c->endpoint, repo, digest));
    return out;
}
