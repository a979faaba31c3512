/*
 * ecr_images.c - the ECR image operations: ListImages, DescribeImages, BatchGetImage, BatchDeleteImage, PutImage
 * (request and response shapes of botocore's ecr/2015-09-21 service model; dispatched by ecr_ops.c's table, with
 * its argument helpers).  Reads use the thread's connection; writes are queued for the writer (ecr_write) and
 * answered by a finish function after the commit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "digest.h"
#include "ecrargs.h"
#include "ecr_internal.h"
#include "err.h"
#include "handlers.h"
#include "manifest.h"
#include "meta.h"
#include "names.h"
#include "writer.h"

static int tag_status(struct ecr_ctx *c, json_t *in)
{
    const char *s = json_string_value(json_object_get(json_object_get(in, "filter"), "tagStatus"));
    if (s == NULL || strcmp(s, "ANY") == 0)
        return ECRDB_ANY;
    if (strcmp(s, "TAGGED") == 0)
        return ECRDB_TAGGED;
    if (strcmp(s, "UNTAGGED") == 0)
        return ECRDB_UNTAGGED;
    ecr_fail(c, "InvalidParameterException",
             "Invalid parameter at 'filter.tagStatus' failed to satisfy constraint: 'Member must satisfy enum value "
             "set: [TAGGED, UNTAGGED, ANY]'");
    return -1;
}

struct ids_page {
    json_t *arr;
    int64_t last_id;
    char last_tag[BERTH_TAG_MAX + 1];
};

static int image_id_cb(void *ctx, int64_t id, const char *digest, const char *tag)
{
    struct ids_page *p = ctx;
    json_t *o = json_pack("{s:s}", "imageDigest", digest);
    if (tag != NULL)
        json_object_set_new(o, "imageTag", json_string(tag));
    json_array_append_new(p->arr, o);
    p->last_id = id;
    snprintf(p->last_tag, sizeof(p->last_tag), "%s", tag ? tag : "");
    return 0;
}

json_t *ecr_images_list(struct ecr_ctx *c, json_t *in)
{
    struct ids_page p = {0};
    const char *repo;
    int n, status, more = 0, rc;
    if ((repo = ecr_ops_repo_arg(c, in)) == NULL || (n = ecr_ops_max_results(c, in, BERTH_ECR_PAGE_DEFAULT)) < 0 ||
        (status = tag_status(c, in)) < 0 ||
        ecr_ops_token_in(c, in, 'l', &p.last_id, p.last_tag, sizeof(p.last_tag)) != 0 || !ecr_allow(c, repo, AUTH_PULL))
        return NULL;
    p.arr = json_array();
    rc = ecrdb_image_ids_each(c->db, repo, p.last_id, p.last_tag, status, n, image_id_cb, &p, &more);
    if (rc != 0) {
        json_decref(p.arr);
        return rc == BERR_NAME_UNKNOWN ? ecr_ops_not_found(c, repo) : ecr_ops_server_error(c, rc);
    }
    json_t *out = json_pack("{s:o}", "imageIds", p.arr);
    if (more)
        ecr_ops_token_out(out, 'l', p.last_id, p.last_tag);
    return out;
}

/* A page of DescribeImages, written as text (a hundred objects per page cost more to build than to write). */
struct detail_page {
    struct ecr_ctx *c;
    const char *repo;
    struct strbuf b;
    size_t n;
    int64_t last_id;
};

static void jbuf_int(struct strbuf *b, long long v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%lld", v);
    strbuf_add(b, num, (size_t)n);
}

static int detail_cb(void *ctx, const struct ecrdb_image *im)
{
    struct detail_page *p = ctx;
    struct strbuf *b = &p->b;
    if (p->n++ > 0)
        ECR_JBUF_LIT(b, ",");
    ECR_JBUF_LIT(b, "{\"registryId\":");
    ecr_jbuf_str(b, p->c->registry_id, strlen(p->c->registry_id));
    ECR_JBUF_LIT(b, ",\"repositoryName\":");
    ecr_jbuf_str(b, p->repo, strlen(p->repo));
    ECR_JBUF_LIT(b, ",\"imageDigest\":");
    ecr_jbuf_str(b, im->digest, strlen(im->digest));
    ECR_JBUF_LIT(b, ",\"imageSizeInBytes\":");
    jbuf_int(b, (long long)im->size);
    ECR_JBUF_LIT(b, ",\"imagePushedAt\":");
    jbuf_int(b, im->pushed_at);
    ECR_JBUF_LIT(b, ",\"imageManifestMediaType\":");
    ecr_jbuf_str(b, im->media_type, strlen(im->media_type));
    if (im->artifact_type != NULL) {
        ECR_JBUF_LIT(b, ",\"artifactMediaType\":");
        ecr_jbuf_str(b, im->artifact_type, strlen(im->artifact_type));
    }
    if (im->pulled_at != 0) {
        ECR_JBUF_LIT(b, ",\"lastRecordedPullTime\":");
        jbuf_int(b, im->pulled_at);
    }
    if (im->tags[0] != '\0') {
        ECR_JBUF_LIT(b, ",\"imageTags\":[");
        for (const char *t = im->tags; t != NULL;) {
            const char *nl = strchr(t, '\n');
            ecr_jbuf_str(b, t, nl ? (size_t)(nl - t) : strlen(t));
            if (nl != NULL)
                ECR_JBUF_LIT(b, ",");
            t = nl ? nl + 1 : NULL;
        }
        ECR_JBUF_LIT(b, "]");
    }
    ECR_JBUF_LIT(b, "}");
    p->last_id = im->id;
    return 0;
}

/* The answer of a DescribeImages page: its details and, when `more`, the token of the next page. */
static json_t *detail_finish(struct detail_page *p, int more)
{
    ECR_JBUF_LIT(&p->b, "]");
    char tok[ECRARGS_TOKEN_MAX];
    if (more && ecrargs_token_format('d', p->last_id, NULL, tok, sizeof(tok)) == 0) {
        ECR_JBUF_LIT(&p->b, ",\"nextToken\":");
        ecr_jbuf_str(&p->b, tok, strlen(tok));
    }
    ECR_JBUF_LIT(&p->b, "}");
    return ecr_jbuf_finish(p->c, &p->b);
}

/* Parses one ImageIdentifier into a digest (may be "") and tag (may be NULL).  Returns the ECR failure code, or
 * NULL when it is well-formed. */
static const char *image_id_parse(json_t *id, char digest[BERTH_DIGEST_MAX], const char **tag)
{
    return ecrargs_image_id(id, digest, tag);
}

static void *heap_alloc(void *ctx, size_t n)
{
    (void)ctx;
    return malloc(n);
}

/* Resolves a parsed image id to its manifest; returns NULL or the failure code (ImageNotFound,
 * ImageTagDoesNotMatchDigest).  `m` is filled on success, with the body when `alloc`. */
static const char *image_resolve(struct ecr_ctx *c, const char *repo, const char *digest, const char *tag,
                                 struct meta_manifest *m, int with_body)
{
    int rc;
    if (tag != NULL) {
        rc = meta_manifest_get(c->db, repo, tag, 0, m, with_body ? heap_alloc : NULL, NULL);
        if (rc != 0)
            return "ImageNotFound";
        if (digest[0] != '\0' && strcmp(digest, m->digest) != 0)
            return "ImageTagDoesNotMatchDigest";
        return NULL;
    }
    rc = meta_manifest_get(c->db, repo, digest, 1, m, with_body ? heap_alloc : NULL, NULL);
    return rc == 0 ? NULL : "ImageNotFound";
}

static json_t *image_id_json(const char *digest, const char *tag)
{
    json_t *o = json_object();
    if (digest != NULL && digest[0] != '\0')
        json_object_set_new(o, "imageDigest", json_string(digest));
    if (tag != NULL)
        json_object_set_new(o, "imageTag", json_string(tag));
    return o;
}

static json_t *image_failure(json_t *id, const char *code)
{
    const char *reason = strcmp(code, "ImageNotFound") == 0                ? "Requested image not found"
                         : strcmp(code, "ImageTagDoesNotMatchDigest") == 0 ? "Invalid image tag and digest combination"
                         : strcmp(code, "InvalidImageDigest") == 0         ? "Invalid request parameters: image digest"
                         : strcmp(code, "InvalidImageTag") == 0            ? "Invalid request parameters: image tag"
                         : strcmp(code, "MissingDigestAndTag") == 0 ? "Invalid request parameters: both tag and digest "
                                                                      "cannot be null"
                                                                    : "Requested image not found";
    return json_pack("{s:O, s:s, s:s}", "imageId", id, "failureCode", code, "failureReason", reason);
}

/* imageIds: a non-empty list of at most BERTH_ECR_BATCH_MAX objects.  Returns the list or NULL after ecr_fail. */
static json_t *image_ids_arg(struct ecr_ctx *c, json_t *in, int required)
{
    struct ecrargs_err e;
    json_t *ids = ecrargs_image_ids(in, required, &e);
    if (ids == NULL && (required || json_object_get(in, "imageIds") != NULL))
        ecr_ops_args_fail(c, &e);
    return ids;
}

static json_t *describe_ids(struct ecr_ctx *c, const char *repo, json_t *ids)
{
    struct detail_page p = {.c = c, .repo = repo};
    json_t *id;
    size_t i;
    ECR_JBUF_LIT(&p.b, "{\"imageDetails\":[");
    json_array_foreach(ids, i, id)
    {
        char digest[BERTH_DIGEST_MAX];
        const char *tag, *fail = image_id_parse(id, digest, &tag);
        struct meta_manifest m;
        if (fail == NULL)
            fail = image_resolve(c, repo, digest, tag, &m, 0);
        if (fail != NULL) {
            free(p.b.p);
            if (strcmp(fail, "ImageNotFound") == 0 || strcmp(fail, "ImageTagDoesNotMatchDigest") == 0)
                return ecr_fail(c, "ImageNotFoundException",
                                "The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist within the "
                                "repository with name '%s' in the registry with id '%s'",
                                digest[0] ? digest : "null", tag ? tag : "null", repo, c->registry_id);
            return ecr_fail(c, "InvalidParameterException", "Invalid parameter at 'imageIds': %s", fail);
        }
        if (ecrdb_image_get(c->db, repo, m.digest, detail_cb, &p) != 0) {
            free(p.b.p);
            return ecr_ops_server_error(c, BERR_DB);
        }
    }
    return detail_finish(&p, 0);
}

json_t *ecr_images_describe(struct ecr_ctx *c, json_t *in)
{
    struct detail_page p = {.c = c};
    char unused[8];
    json_t *ids;
    int n, status, more = 0, rc;
    if ((p.repo = ecr_ops_repo_arg(c, in)) == NULL || (n = ecr_ops_max_results(c, in, BERTH_ECR_PAGE_DEFAULT)) < 0 ||
        (status = tag_status(c, in)) < 0 || ecr_ops_token_in(c, in, 'd', &p.last_id, unused, sizeof(unused)) != 0 ||
        !ecr_allow(c, p.repo, AUTH_PULL))
        return NULL;
    if ((ids = image_ids_arg(c, in, 0)) != NULL || c->type != NULL) {
        if (ids == NULL)
            return NULL;
        if (json_object_get(in, "nextToken") != NULL || json_object_get(in, "maxResults") != NULL)
            return ecr_fail(c, "InvalidParameterException", "imageIds cannot be combined with nextToken or maxResults");
        return describe_ids(c, p.repo, ids);
    }
    ECR_JBUF_LIT(&p.b, "{\"imageDetails\":[");
    rc = ecrdb_images_each(c->db, p.repo, p.last_id, status, n, detail_cb, &p, &more);
    if (rc != 0) {
        free(p.b.p);
        return rc == BERR_NAME_UNKNOWN ? ecr_ops_not_found(c, p.repo) : ecr_ops_server_error(c, rc);
    }
    return detail_finish(&p, more);
}

/* 1 if `mt` is in acceptedMediaTypes (or the list is absent). */
static int accepted(json_t *types, const char *mt)
{
    json_t *t;
    size_t i;
    if (types == NULL || json_array_size(types) == 0)
        return 1;
    json_array_foreach(types, i, t)
    {
        if (json_is_string(t) && strcmp(json_string_value(t), mt) == 0)
            return 1;
    }
    return 0;
}

/* One image of BatchGetImage's answer, written as text: the manifest is embedded as a JSON string, which jansson
 * would validate and escape byte by byte twice (pack and dump). */
static void image_text(struct strbuf *b, struct ecr_ctx *c, const char *repo, const struct meta_manifest *m,
                       const char *tag)
{
    ECR_JBUF_LIT(b, "{\"registryId\":");
    ecr_jbuf_str(b, c->registry_id, strlen(c->registry_id));
    ECR_JBUF_LIT(b, ",\"repositoryName\":");
    ecr_jbuf_str(b, repo, strlen(repo));
    ECR_JBUF_LIT(b, ",\"imageId\":{\"imageDigest\":");
    ecr_jbuf_str(b, m->digest, strlen(m->digest));
    if (tag != NULL) {
        ECR_JBUF_LIT(b, ",\"imageTag\":");
        ecr_jbuf_str(b, tag, strlen(tag));
    }
    ECR_JBUF_LIT(b, "},\"imageManifest\":");
    ecr_jbuf_str(b, (const char *)m->body, m->size);
    ECR_JBUF_LIT(b, ",\"imageManifestMediaType\":");
    ecr_jbuf_str(b, m->media_type, strlen(m->media_type));
    ECR_JBUF_LIT(b, "}");
}

json_t *ecr_images_batch_get(struct ecr_ctx *c, json_t *in)
{
    json_t *ids, *id, *failures, *types = json_object_get(in, "acceptedMediaTypes");
    struct strbuf b = {0};
    struct ecrdb_repo r;
    const char *repo;
    size_t i, n = 0;
    if ((repo = ecr_ops_repo_arg(c, in)) == NULL || (ids = image_ids_arg(c, in, 1)) == NULL ||
        !ecr_allow(c, repo, AUTH_PULL) || ecr_ops_get_repo(c, repo, &r) != 0)
        return NULL;
    failures = json_array();
    ECR_JBUF_LIT(&b, "{\"images\":[");
    json_array_foreach(ids, i, id)
    {
        char digest[BERTH_DIGEST_MAX];
        const char *tag, *fail = image_id_parse(id, digest, &tag);
        struct meta_manifest m = {0};
        if (fail == NULL)
            fail = image_resolve(c, repo, digest, tag, &m, 1);
        if (fail == NULL && !accepted(types, m.media_type))
            fail = "UnsupportedImageType";
        if (fail != NULL) {
            json_array_append_new(failures, image_failure(id, fail));
        } else {
            manifests_record_pull(m.id); /* lastRecordedPullTime, batched like an OCI manifest GET's */
            if (n++ > 0)
                ECR_JBUF_LIT(&b, ",");
            image_text(&b, c, repo, &m, tag);
        }
        free(m.body);
    }
    ECR_JBUF_LIT(&b, "],\"failures\":");
    ecr_jbuf_json(&b, failures);
    ECR_JBUF_LIT(&b, "}");
    json_decref(failures);
    return ecr_jbuf_finish(c, &b);
}

/* One BatchDeleteImage entry, decided and applied inside the writer's transaction. */
struct del_item {
    char digest[BERTH_DIGEST_MAX];
    const char *tag, *fail;
    json_t *id;
};

struct del_args {
    struct ecr_ctx *c;
    const char *repo;
    struct del_item *items;
    size_t n;
    json_t *deleted; /* built after the commit */
};

static int del_op(struct db *db, void *arg)
{
    struct del_args *a = arg;
    for (size_t i = 0; i < a->n; i++) {
        struct del_item *it = &a->items[i];
        struct meta_manifest m;
        int rc;
        if (it->fail != NULL)
            continue;
        if (it->tag != NULL) {
            if (meta_manifest_get(db, a->repo, it->tag, 0, &m, NULL, NULL) != 0) {
                it->fail = "ImageNotFound";
                continue;
            }
            if (it->digest[0] != '\0' && strcmp(it->digest, m.digest) != 0) {
                it->fail = "ImageTagDoesNotMatchDigest";
                continue;
            }
            memcpy(it->digest, m.digest, sizeof(it->digest));
            if ((rc = meta_tag_delete(db, a->repo, it->tag)) != 0)
                return rc;
            /* ECR: removing an image's last tag deletes the image */
            if ((rc = ecrdb_image_tagged(db, a->repo, it->digest)) < 0)
                return rc;
            if (rc == 0 && (rc = meta_manifest_delete(db, a->repo, it->digest)) != 0)
                return rc;
        } else {
            rc = meta_manifest_delete(db, a->repo, it->digest);
            if (rc == BERR_MANIFEST_UNKNOWN)
                it->fail = "ImageNotFound";
            else if (rc != 0)
                return rc;
        }
    }
    return 0;
}

static json_t *del_finish(struct ecr_ctx *c, void *arg, int rc)
{
    struct del_args *a = arg;
    json_t *deleted, *failures;
    if (rc != 0)
        return ecr_ops_server_error(c, rc);
    deleted = json_array();
    failures = json_array();
    for (size_t i = 0; i < a->n; i++) {
        if (a->items[i].fail != NULL)
            json_array_append_new(failures, image_failure(a->items[i].id, a->items[i].fail));
        else
            json_array_append_new(deleted, image_id_json(a->items[i].digest, a->items[i].tag));
    }
    return json_pack("{s:o, s:o}", "imageIds", deleted, "failures", failures);
}

json_t *ecr_images_batch_delete(struct ecr_ctx *c, json_t *in)
{
    struct del_args *a = ecr_alloc(c, sizeof(*a));
    struct ecrdb_repo r;
    json_t *ids, *id;
    size_t i;
    if (a == NULL)
        return ecr_ops_server_error(c, BERR_NOMEM);
    a->c = c;
    if ((a->repo = ecr_ops_repo_arg(c, in)) == NULL || (ids = image_ids_arg(c, in, 1)) == NULL ||
        !ecr_allow(c, a->repo, AUTH_DELETE) || ecr_ops_get_repo(c, a->repo, &r) != 0)
        return NULL;
    if ((a->items = ecr_alloc(c, json_array_size(ids) * sizeof(*a->items))) == NULL)
        return ecr_ops_server_error(c, BERR_NOMEM);
    json_array_foreach(ids, i, id)
    {
        a->items[i].id = id;
        a->items[i].fail = image_id_parse(id, a->items[i].digest, &a->items[i].tag);
    }
    a->n = json_array_size(ids);
    return ecr_write(c, del_op, a, del_finish);
}

/* ---- PutImage ---- */

struct put_args {
    const char *repo, *tag, *body;
    size_t len;
    char digest[BERTH_DIGEST_MAX];
    struct manifest_info mi;
    char detail[512];
    int exists; /* the same digest already carried the same tag */
};

static int put_op(struct db *db, void *arg)
{
    struct put_args *a = arg;
    struct meta_manifest m;
    int rc;
    if (a->tag != NULL && meta_manifest_get(db, a->repo, a->tag, 0, &m, NULL, NULL) == 0 &&
        strcmp(m.digest, a->digest) == 0) {
        a->exists = 1;
        return 0;
    }
    if (a->tag == NULL && meta_manifest_get(db, a->repo, a->digest, 1, &m, NULL, NULL) == 0) {
        a->exists = 1;
        return 0;
    }
    if ((rc = ecrdb_tag_check(db, a->repo, a->tag ? a->tag : "", a->digest)) != 0)
        return rc;
    return meta_manifest_put(db, a->repo, a->digest, &a->mi, a->body, a->len, a->tag, a->detail, sizeof(a->detail));
}

static json_t *put_result(struct ecr_ctx *c, struct put_args *a, int rc);

static json_t *put_finish(struct ecr_ctx *c, void *arg, int rc)
{
    struct put_args *a = arg;
    json_t *out = put_result(c, a, rc);
    manifest_info_free(&a->mi);
    return out;
}

static json_t *put_result(struct ecr_ctx *c, struct put_args *a, int rc)
{
    if (rc == ECRDB_IMMUTABLE)
        return ecr_fail(c, "ImageTagAlreadyExistsException",
                        "The image tag '%s' already exists in the '%s' repository and cannot be overwritten because "
                        "the repository is immutable.",
                        a->tag, a->repo);
    if (rc == BERR_MANIFEST_BLOB_UNKNOWN)
        return ecr_fail(c, "LayersNotFoundException", "Layers not found in the repository: %s", a->detail);
    if (rc == BERR_MANIFEST_CHILD_UNKNOWN)
        return ecr_fail(c, "ReferencedImagesNotFoundException", "Referenced images not found: %s", a->detail);
    if (rc == BERR_MANIFEST_INVALID)
        return ecr_fail(c, "InvalidParameterException", "Invalid parameter at 'imageManifest': %s", a->detail);
    if (rc != 0)
        return ecr_ops_server_error(c, rc);
    if (a->exists)
        return ecr_fail(c, "ImageAlreadyExistsException",
                        "Image with digest '%s' and tag '%s' already exists in the repository with name '%s' in "
                        "registry with id '%s'",
                        a->digest, a->tag ? a->tag : "null", a->repo, c->registry_id);
    return json_pack("{s:{s:s, s:s, s:o, s:s#, s:s}}", "image", "registryId", c->registry_id, "repositoryName", a->repo,
                     "imageId", image_id_json(a->digest, a->tag), "imageManifest", a->body, a->len,
                     "imageManifestMediaType", a->mi.media_type);
}

json_t *ecr_images_put(struct ecr_ctx *c, json_t *in)
{
    struct put_args *a = ecr_alloc(c, sizeof(*a));
    struct ecrdb_repo r;
    const char *mt, *want;
    int bad = 0;
    if (a == NULL)
        return ecr_ops_server_error(c, BERR_NOMEM);
    if ((a->repo = ecr_ops_repo_arg(c, in)) == NULL)
        return NULL;
    a->body = ecr_ops_opt_str(c, in, "imageManifest", &bad);
    a->tag = ecr_ops_opt_str(c, in, "imageTag", &bad);
    mt = ecr_ops_opt_str(c, in, "imageManifestMediaType", &bad);
    want = ecr_ops_opt_str(c, in, "imageDigest", &bad);
    if (bad)
        return NULL;
    if (a->body == NULL || a->body[0] == '\0')
        return ecr_fail(c, "InvalidParameterException", "imageManifest is required");
    a->len = json_string_length(json_object_get(in, "imageManifest"));
    if (a->len > c->srv->cfg.max_manifest_size)
        return ecr_fail(c, "InvalidParameterException", "imageManifest exceeds %zu bytes",
                        c->srv->cfg.max_manifest_size);
    if (a->tag != NULL && names_tag_valid(a->tag, strlen(a->tag)) != 0)
        return ecr_fail(c, "InvalidParameterException", "Invalid parameter at 'imageTag': '%s' is not a valid tag",
                        a->tag);
    if (!ecr_allow(c, a->repo, AUTH_PUSH) || ecr_ops_get_repo(c, a->repo, &r) != 0)
        return NULL;
    digest_buf(a->body, a->len, a->digest);
    if (want != NULL && strcmp(want, a->digest) != 0)
        return ecr_fail(c, "ImageDigestDoesNotMatchException",
                        "Provided image digest '%s' does not match the calculated digest '%s'", want, a->digest);
    if (manifest_parse(a->body, a->len, mt, mt ? strlen(mt) : 0, &a->mi, a->detail, sizeof(a->detail)) != 0)
        return ecr_fail(c, "InvalidParameterException", "Invalid parameter at 'imageManifest': %s", a->detail);
    return ecr_write(c, put_op, a, put_finish);
}
