/*
 * ecr_ops.c - the ECR operations (request and response shapes of botocore's ecr/2015-09-21 service model), run
 * after ecr.c authenticated the caller (on the loop; see ecr_internal.h).  Reads use the thread's connection;
 * writes are queued for the writer (ecr_write) and answered by a finish function after the commit.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "digest.h"
#include "ecr.h"
#include "ecrargs.h"
#include "ecr_internal.h"
#include "err.h"
#include "handlers.h"
#include "log.h"
#include "manifest.h"
#include "meta.h"
#include "names.h"
#include "writer.h"

/* ---- arguments ---- */

/* The decoders live in ecrargs.c (pure, fuzzed); these turn their failure into the answer. */
static void args_fail(struct ecr_ctx *c, const struct ecrargs_err *e)
{
    ecr_fail(c, e->type, "%s", e->msg);
}

/* A string member; NULL when absent.  A member of another type is an error (returns NULL, *bad set). */
static const char *opt_str(struct ecr_ctx *c, json_t *in, const char *key, int *bad)
{
    struct ecrargs_err e;
    const char *v;
    if (ecrargs_str(in, key, &v, &e) != 0) {
        *bad = 1;
        args_fail(c, &e);
    }
    return v;
}

/* The repositoryName argument, validated.  NULL after ecr_fail. */
static const char *repo_arg(struct ecr_ctx *c, json_t *in)
{
    struct ecrargs_err e;
    const char *name = ecrargs_repo(in, &e);
    if (name == NULL)
        args_fail(c, &e);
    return name;
}

/* maxResults: absent = `dflt`; else 1..BERTH_ECR_PAGE_MAX.  Returns -1 after ecr_fail. */
static int max_results(struct ecr_ctx *c, json_t *in, int dflt)
{
    struct ecrargs_err e;
    int n = ecrargs_max_results(in, dflt, &e);
    if (n < 0)
        args_fail(c, &e);
    return n;
}

/* nextToken (ecrargs.h).  Returns 0 (absent: id 0, text ""), or -1 after ecr_fail. */
static int token_in(struct ecr_ctx *c, json_t *in, char kind, int64_t *id, char *text, size_t size)
{
    struct ecrargs_err e;
    if (ecrargs_token_in(in, kind, id, text, size, &e) != 0) {
        args_fail(c, &e);
        return -1;
    }
    return 0;
}

static void token_out(json_t *out, char kind, int64_t id, const char *text)
{
    char b64[ECRARGS_TOKEN_MAX];
    if (ecrargs_token_format(kind, id, text, b64, sizeof(b64)) == 0)
        json_object_set_new(out, "nextToken", json_string(b64));
}

/* ---- authorization ---- */

static int is_admin_on(const struct ecr_ctx *c, const char *repo)
{
    if (c->no_auth || c->id.is_admin || c->grants.all)
        return 1;
    for (size_t i = 0; i < c->grants.n; i++)
        if ((c->grants.g[i].actions & AUTH_ADMIN) && authdb_pattern_match(c->grants.g[i].pattern, repo))
            return 1;
    return 0;
}

int ecr_allow(struct ecr_ctx *c, const char *repo, unsigned actions)
{
    int ok = (actions & AUTH_ADMIN) ? is_admin_on(c, repo)
                                    : c->no_auth || (authdb_grants_actions(&c->grants, repo) & actions) == actions;
    if (ok)
        return 1;
    log_warn("ecr: denied ecr:%s on repository %s to user %s", c->op, repo, c->id.name);
    ecr_fail(c, "AccessDeniedException",
             "User: arn:aws:iam::%s:user/%s is not authorized to perform: ecr:%s on resource: "
             "arn:aws:ecr:%s:%s:repository/%s",
             c->registry_id, c->id.name, c->op, c->region, c->registry_id, repo);
    return 0;
}

/* ---- shapes ---- */

static json_t *repo_json(struct ecr_ctx *c, const struct ecrdb_repo *r)
{
    json_t *o =
        json_pack("{s:s, s:s, s:I, s:s, s:{s:b}, s:{s:s}}", "registryId", c->registry_id, "repositoryName", r->name,
                  "createdAt", (json_int_t)r->created_at, "imageTagMutability", r->mutability,
                  "imageScanningConfiguration", "scanOnPush", 0, "encryptionConfiguration", "encryptionType", "AES256");
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "repositoryArn",
                        json_sprintf("arn:aws:ecr:%s:%s:repository/%s", c->region, c->registry_id, r->name));
    json_object_set_new(o, "repositoryUri", json_sprintf("%s/%s", c->host, r->name));
    if (r->filters[0] != '\0')
        json_object_set_new(o, "imageTagMutabilityExclusionFilters", json_loads(r->filters, 0, NULL));
    return o;
}

static json_t *not_found(struct ecr_ctx *c, const char *repo)
{
    return ecr_fail(c, "RepositoryNotFoundException",
                    "The repository with name '%s' does not exist in the registry with id '%s'", repo, c->registry_id);
}

/* Maps a storage error that is not the client's into ServerException. */
static json_t *server_error(struct ecr_ctx *c, int rc)
{
    log_error("ecr: %s failed: %s", c->op, berr_name(rc));
    return ecr_fail(c, "ServerException", "%s", berr_message(rc));
}

/* Reads repository `name`, failing with RepositoryNotFoundException.  Returns 0 or -1. */
static int get_repo(struct ecr_ctx *c, const char *name, struct ecrdb_repo *r)
{
    int rc = ecrdb_repo_get(c->db, name, r);
    if (rc == BERR_NAME_UNKNOWN)
        not_found(c, name);
    else if (rc != 0)
        server_error(c, rc);
    return rc == 0 ? 0 : -1;
}

/* Validates imageTagMutability and the exclusion filters; writes the filters' JSON text into `filters`. */
static int mutability_args(struct ecr_ctx *c, json_t *in, const char **mut, char *filters, size_t size)
{
    struct ecrargs_err e;
    if (ecrargs_mutability(in, mut, filters, size, &e) != 0) {
        args_fail(c, &e);
        return -1;
    }
    return 0;
}

/* ---- repositories ---- */

struct create_args {
    const char *name, *mut;
    char filters[ECRDB_FILTERS_MAX + 1];
    json_t *tags;
    struct ecrdb_repo r;
};

static int create_op(struct db *db, void *arg)
{
    struct create_args *a = arg;
    json_t *t;
    size_t i;
    int rc = ecrdb_repo_create(db, a->name, a->mut, a->filters, &a->r);
    json_array_foreach(a->tags, i, t)
    {
        if (rc == 0)
            rc = ecrdb_rtag_set(db, a->name, json_string_value(json_object_get(t, "Key")),
                                json_string_value(json_object_get(t, "Value")));
    }
    return rc;
}

/* Checks a TagList: [{Key, Value}], keys 1..128, values 0..256 characters. */
static int tags_valid(struct ecr_ctx *c, json_t *tags)
{
    struct ecrargs_err e;
    if (!ecrargs_tags(tags, &e)) {
        args_fail(c, &e);
        return 0;
    }
    return 1;
}

static json_t *create_finish(struct ecr_ctx *c, void *arg, int rc)
{
    struct create_args *a = arg;
    if (rc == ECRDB_EXISTS)
        return ecr_fail(c, "RepositoryAlreadyExistsException",
                        "The repository with name '%s' already exists in the registry with id '%s'", a->name,
                        c->registry_id);
    if (rc != 0)
        return server_error(c, rc);
    return json_pack("{s:o}", "repository", repo_json(c, &a->r));
}

static json_t *op_create_repository(struct ecr_ctx *c, json_t *in)
{
    struct create_args *a = ecr_alloc(c, sizeof(*a));
    if (a == NULL)
        return server_error(c, BERR_NOMEM);
    if ((a->name = repo_arg(c, in)) == NULL || mutability_args(c, in, &a->mut, a->filters, sizeof(a->filters)) != 0 ||
        !tags_valid(c, json_object_get(in, "tags")) || !ecr_allow(c, a->name, AUTH_ADMIN))
        return NULL;
    a->tags = json_object_get(in, "tags");
    return ecr_write(c, create_op, a, create_finish);
}

struct list_repos {
    struct ecr_ctx *c;
    json_t *arr;
    int want;
    char last[BERTH_NAME_MAX + 1];
};

static int list_repo_cb(void *ctx, const struct ecrdb_repo *r)
{
    struct list_repos *l = ctx;
    snprintf(l->last, sizeof(l->last), "%s", r->name);
    if (l->c->no_auth || authdb_grants_actions(&l->c->grants, r->name) & AUTH_PULL)
        json_array_append_new(l->arr, repo_json(l->c, r));
    return (int)json_array_size(l->arr) >= l->want;
}

static json_t *describe_named(struct ecr_ctx *c, json_t *names)
{
    json_t *arr = json_array(), *v;
    struct ecrdb_repo r;
    size_t i;
    json_array_foreach(names, i, v)
    {
        const char *name = json_string_value(v);
        if (name == NULL || names_repo_valid(name, strlen(name)) != 0) {
            json_decref(arr);
            return ecr_fail(c, "InvalidParameterException", "repositoryNames must hold valid repository names");
        }
        if (!ecr_allow(c, name, AUTH_PULL) || get_repo(c, name, &r) != 0) {
            json_decref(arr);
            return NULL;
        }
        json_array_append_new(arr, repo_json(c, &r));
    }
    return json_pack("{s:o}", "repositories", arr);
}

static json_t *op_describe_repositories(struct ecr_ctx *c, json_t *in)
{
    json_t *names = json_object_get(in, "repositoryNames"), *out;
    struct list_repos l = {.c = c};
    int64_t unused;
    int more = 0, rc;
    if (names != NULL && json_array_size(names) > 0)
        return describe_named(c, names);
    if ((l.want = max_results(c, in, BERTH_ECR_PAGE_DEFAULT)) < 0 ||
        token_in(c, in, 'r', &unused, l.last, sizeof(l.last)) != 0)
        return NULL;
    l.arr = json_array();
    /* skip repositories the caller cannot see, a page of rows at a time, until the page is full */
    do {
        rc = ecrdb_repos_each(c->db, l.last, l.want, list_repo_cb, &l, &more);
    } while (rc == 0 && more && (int)json_array_size(l.arr) < l.want);
    if (rc != 0) {
        json_decref(l.arr);
        return server_error(c, rc);
    }
    out = json_pack("{s:o}", "repositories", l.arr);
    if ((int)json_array_size(l.arr) >= l.want) {
        int more2 = 0;
        struct list_repos probe = {.c = c, .arr = json_array(), .want = 1};
        snprintf(probe.last, sizeof(probe.last), "%s", l.last);
        do { /* is there a visible repository after this page? */
            rc = ecrdb_repos_each(c->db, probe.last, BERTH_ECR_PAGE_DEFAULT, list_repo_cb, &probe, &more2);
        } while (rc == 0 && more2 && json_array_size(probe.arr) == 0);
        if (json_array_size(probe.arr) > 0)
            token_out(out, 'r', 0, l.last);
        json_decref(probe.arr);
    }
    return out;
}

struct delete_args {
    const char *name;
    int force, images;
    struct ecrdb_repo r;
};

static int delete_repo_op(struct db *db, void *arg)
{
    struct delete_args *a = arg;
    return ecrdb_repo_delete(db, a->name, a->force, &a->r, &a->images);
}

static json_t *delete_repo_finish(struct ecr_ctx *c, void *arg, int rc)
{
    struct delete_args *a = arg;
    if (rc == BERR_NAME_UNKNOWN)
        return not_found(c, a->name);
    if (rc == ECRDB_NOT_EMPTY)
        return ecr_fail(c, "RepositoryNotEmptyException",
                        "The repository with name '%s' in registry with id '%s' cannot be deleted because it still "
                        "contains images",
                        a->name, c->registry_id);
    if (rc != 0)
        return server_error(c, rc);
    log_info("ecr: user %s deleted repository %s (%d images)", c->id.name, a->name, a->images);
    return json_pack("{s:o}", "repository", repo_json(c, &a->r));
}

static json_t *op_delete_repository(struct ecr_ctx *c, json_t *in)
{
    struct delete_args *a = ecr_alloc(c, sizeof(*a));
    if (a == NULL)
        return server_error(c, BERR_NOMEM);
    if ((a->name = repo_arg(c, in)) == NULL || !ecr_allow(c, a->name, AUTH_ADMIN))
        return NULL;
    a->force = json_is_true(json_object_get(in, "force"));
    return ecr_write(c, delete_repo_op, a, delete_repo_finish);
}

struct mut_args {
    const char *name, *mut;
    char filters[ECRDB_FILTERS_MAX + 1];
};

static int mutability_op(struct db *db, void *arg)
{
    struct mut_args *a = arg;
    return ecrdb_repo_set_mutability(db, a->name, a->mut, a->filters);
}

static json_t *mutability_finish(struct ecr_ctx *c, void *arg, int rc)
{
    struct mut_args *a = arg;
    if (rc == BERR_NAME_UNKNOWN)
        return not_found(c, a->name);
    if (rc != 0)
        return server_error(c, rc);
    json_t *out = json_pack("{s:s, s:s, s:s}", "registryId", c->registry_id, "repositoryName", a->name,
                            "imageTagMutability", a->mut);
    if (a->filters[0] != '\0')
        json_object_set_new(out, "imageTagMutabilityExclusionFilters", json_loads(a->filters, 0, NULL));
    return out;
}

static json_t *op_put_image_tag_mutability(struct ecr_ctx *c, json_t *in)
{
    struct mut_args *a = ecr_alloc(c, sizeof(*a));
    if (a == NULL)
        return server_error(c, BERR_NOMEM);
    if ((a->name = repo_arg(c, in)) == NULL || mutability_args(c, in, &a->mut, a->filters, sizeof(a->filters)) != 0 ||
        !ecr_allow(c, a->name, AUTH_ADMIN))
        return NULL;
    if (json_object_get(in, "imageTagMutability") == NULL)
        return ecr_fail(c, "InvalidParameterException", "imageTagMutability is required");
    return ecr_write(c, mutability_op, a, mutability_finish);
}

static json_t *op_describe_registry(struct ecr_ctx *c, json_t *in)
{
    (void)in;
    return json_pack("{s:s, s:{s:[]}}", "registryId", c->registry_id, "replicationConfiguration", "rules");
}

/* ---- authorization token ---- */

static json_t *op_get_authorization_token(struct ecr_ctx *c, json_t *in)
{
    char tok[ACCESSKEY_TOKEN_MAX], pair[ACCESSKEY_TOKEN_MAX + 8];
    char b64[sodium_base64_ENCODED_LEN(ACCESSKEY_TOKEN_MAX + 8, sodium_base64_VARIANT_ORIGINAL)];
    long long exp = c->now + BERTH_ECR_TOKEN_TTL;
    (void)in;
    if (!c->have_key)
        return ecr_fail(c, "InvalidParameterException",
                        "GetAuthorizationToken needs a request signed with an access key (not a bearer token; "
                        "auth may be off)");
    accesskey_token_issue(c->key.id, c->secret, exp, tok);
    int n = snprintf(pair, sizeof(pair), "%s:%s", ECR_LOGIN_USER, tok);
    sodium_bin2base64(b64, sizeof(b64), (unsigned char *)pair, (size_t)n, sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(tok, sizeof(tok));
    sodium_memzero(pair, sizeof(pair));
    json_t *out = json_pack("{s:[{s:s, s:I, s:s}]}", "authorizationData", "authorizationToken", b64, "expiresAt",
                            (json_int_t)exp, "proxyEndpoint", c->endpoint);
    sodium_memzero(b64, sizeof(b64));
    log_info("ecr: authorization token for key %s of user %s (valid %d h)", c->key.id, c->id.name,
             BERTH_ECR_TOKEN_TTL / 3600);
    return out;
}

/* ---- images ---- */

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

static json_t *op_list_images(struct ecr_ctx *c, json_t *in)
{
    struct ids_page p = {0};
    const char *repo;
    int n, status, more = 0, rc;
    if ((repo = repo_arg(c, in)) == NULL || (n = max_results(c, in, BERTH_ECR_PAGE_DEFAULT)) < 0 ||
        (status = tag_status(c, in)) < 0 || token_in(c, in, 'l', &p.last_id, p.last_tag, sizeof(p.last_tag)) != 0 ||
        !ecr_allow(c, repo, AUTH_PULL))
        return NULL;
    p.arr = json_array();
    rc = ecrdb_image_ids_each(c->db, repo, p.last_id, p.last_tag, status, n, image_id_cb, &p, &more);
    if (rc != 0) {
        json_decref(p.arr);
        return rc == BERR_NAME_UNKNOWN ? not_found(c, repo) : server_error(c, rc);
    }
    json_t *out = json_pack("{s:o}", "imageIds", p.arr);
    if (more)
        token_out(out, 'l', p.last_id, p.last_tag);
    return out;
}

/* A page of DescribeImages, written as text (a hundred objects per page cost more to build than to write). */
struct detail_page {
    struct ecr_ctx *c;
    const char *repo;
    struct ecr_jbuf b;
    size_t n;
    int64_t last_id;
};

static void jbuf_int(struct ecr_jbuf *b, long long v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%lld", v);
    ecr_jbuf_add(b, num, (size_t)n);
}

static int detail_cb(void *ctx, const struct ecrdb_image *im)
{
    struct detail_page *p = ctx;
    struct ecr_jbuf *b = &p->b;
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
        args_fail(c, &e);
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
            return server_error(c, BERR_DB);
        }
    }
    return detail_finish(&p, 0);
}

static json_t *op_describe_images(struct ecr_ctx *c, json_t *in)
{
    struct detail_page p = {.c = c};
    char unused[8];
    json_t *ids;
    int n, status, more = 0, rc;
    if ((p.repo = repo_arg(c, in)) == NULL || (n = max_results(c, in, BERTH_ECR_PAGE_DEFAULT)) < 0 ||
        (status = tag_status(c, in)) < 0 || token_in(c, in, 'd', &p.last_id, unused, sizeof(unused)) != 0 ||
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
        return rc == BERR_NAME_UNKNOWN ? not_found(c, p.repo) : server_error(c, rc);
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
static void image_text(struct ecr_jbuf *b, struct ecr_ctx *c, const char *repo, const struct meta_manifest *m,
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

static json_t *op_batch_get_image(struct ecr_ctx *c, json_t *in)
{
    json_t *ids, *id, *failures, *types = json_object_get(in, "acceptedMediaTypes");
    struct ecr_jbuf b = {0};
    struct ecrdb_repo r;
    const char *repo;
    size_t i, n = 0;
    if ((repo = repo_arg(c, in)) == NULL || (ids = image_ids_arg(c, in, 1)) == NULL || !ecr_allow(c, repo, AUTH_PULL) ||
        get_repo(c, repo, &r) != 0)
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
        return server_error(c, rc);
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

static json_t *op_batch_delete_image(struct ecr_ctx *c, json_t *in)
{
    struct del_args *a = ecr_alloc(c, sizeof(*a));
    struct ecrdb_repo r;
    json_t *ids, *id;
    size_t i;
    if (a == NULL)
        return server_error(c, BERR_NOMEM);
    a->c = c;
    if ((a->repo = repo_arg(c, in)) == NULL || (ids = image_ids_arg(c, in, 1)) == NULL ||
        !ecr_allow(c, a->repo, AUTH_DELETE) || get_repo(c, a->repo, &r) != 0)
        return NULL;
    if ((a->items = ecr_alloc(c, json_array_size(ids) * sizeof(*a->items))) == NULL)
        return server_error(c, BERR_NOMEM);
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
        return server_error(c, rc);
    if (a->exists)
        return ecr_fail(c, "ImageAlreadyExistsException",
                        "Image with digest '%s' and tag '%s' already exists in the repository with name '%s' in "
                        "registry with id '%s'",
                        a->digest, a->tag ? a->tag : "null", a->repo, c->registry_id);
    return json_pack("{s:{s:s, s:s, s:o, s:s#, s:s}}", "image", "registryId", c->registry_id, "repositoryName", a->repo,
                     "imageId", image_id_json(a->digest, a->tag), "imageManifest", a->body, a->len,
                     "imageManifestMediaType", a->mi.media_type);
}

static json_t *op_put_image(struct ecr_ctx *c, json_t *in)
{
    struct put_args *a = ecr_alloc(c, sizeof(*a));
    struct ecrdb_repo r;
    const char *mt, *want;
    int bad = 0;
    if (a == NULL)
        return server_error(c, BERR_NOMEM);
    if ((a->repo = repo_arg(c, in)) == NULL)
        return NULL;
    a->body = opt_str(c, in, "imageManifest", &bad);
    a->tag = opt_str(c, in, "imageTag", &bad);
    mt = opt_str(c, in, "imageManifestMediaType", &bad);
    want = opt_str(c, in, "imageDigest", &bad);
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
    if (!ecr_allow(c, a->repo, AUTH_PUSH) || get_repo(c, a->repo, &r) != 0)
        return NULL;
    digest_buf(a->body, a->len, a->digest);
    if (want != NULL && strcmp(want, a->digest) != 0)
        return ecr_fail(c, "ImageDigestDoesNotMatchException",
                        "Provided image digest '%s' does not match the calculated digest '%s'", want, a->digest);
    if (manifest_parse(a->body, a->len, mt, mt ? strlen(mt) : 0, &a->mi, a->detail, sizeof(a->detail)) != 0)
        return ecr_fail(c, "InvalidParameterException", "Invalid parameter at 'imageManifest': %s", a->detail);
    return ecr_write(c, put_op, a, put_finish);
}

/* ---- layers ---- */

static json_t *op_batch_check_layer_availability(struct ecr_ctx *c, json_t *in)
{
    json_t *digests = json_object_get(in, "layerDigests"), *d, *layers, *failures;
    struct ecrdb_repo r;
    const char *repo;
    size_t i;
    if ((repo = repo_arg(c, in)) == NULL)
        return NULL;
    if (!json_is_array(digests) || json_array_size(digests) < 1 || json_array_size(digests) > BERTH_ECR_BATCH_MAX)
        return ecr_fail(c, "InvalidParameterException", "layerDigests must hold 1 to %d digests", BERTH_ECR_BATCH_MAX);
    if (!ecr_allow(c, repo, AUTH_PULL) || get_repo(c, repo, &r) != 0)
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

static json_t *op_get_download_url_for_layer(struct ecr_ctx *c, json_t *in)
{
    const char *repo, *s = json_string_value(json_object_get(in, "layerDigest"));
    char digest[BERTH_DIGEST_MAX];
    int64_t size;
    if ((repo = repo_arg(c, in)) == NULL)
        return NULL;
    if (s == NULL || digest_parse(s, strlen(s), digest) != 0)
        return ecr_fail(c, "InvalidParameterException", "Invalid parameter at 'layerDigest'");
    if (!ecr_allow(c, repo, AUTH_PULL))
        return NULL;
    if (meta_blob_stat(c->db, repo, digest, &size) != 0) {
        struct ecrdb_repo r;
        if (get_repo(c, repo, &r) != 0)
            return NULL;
        return ecr_fail(c, "LayersNotFoundException", "The layer '%s' does not exist in the repository '%s'", digest,
                        repo);
    }
    json_t *out = json_pack("{s:s}", "layerDigest", digest);
    json_object_set_new(out, "downloadUrl", json_sprintf("%s/v2/%s/blobs/%s", c->endpoint, repo, digest));
    return out;
}

/* ---- resource tags ---- */

/* The repository named by `resourceArn` (arn:aws:ecr:<region>:<registry id>:repository/<name>), or NULL. */
static const char *arn_repo(struct ecr_ctx *c, json_t *in)
{
    const char *arn = json_string_value(json_object_get(in, "resourceArn"));
    char prefix[128];
    int n = snprintf(prefix, sizeof(prefix), "arn:aws:ecr:%s:%s:repository/", c->region, c->registry_id);
    if (arn == NULL || strncmp(arn, prefix, (size_t)n) != 0 || names_repo_valid(arn + n, strlen(arn + n)) != 0)
        return ecr_fail(c, "InvalidParameterException", "Invalid parameter at 'resourceArn': expected %s<name>",
                        prefix),
               NULL;
    return arn + n;
}

struct rtag_args {
    const char *repo;
    json_t *tags, *keys;
};

static int rtag_op(struct db *db, void *arg)
{
    struct rtag_args *a = arg;
    json_t *t;
    size_t i;
    int rc = 0;
    json_array_foreach(a->tags, i, t)
    {
        if (rc == 0)
            rc = ecrdb_rtag_set(db, a->repo, json_string_value(json_object_get(t, "Key")),
                                json_string_value(json_object_get(t, "Value")));
    }
    json_array_foreach(a->keys, i, t)
    {
        if (rc == 0)
            rc = ecrdb_rtag_del(db, a->repo, json_string_value(t));
    }
    return rc;
}

static json_t *rtag_finish(struct ecr_ctx *c, void *arg, int rc)
{
    struct rtag_args *a = arg;
    if (rc == BERR_NAME_UNKNOWN)
        return not_found(c, a->repo);
    return rc == 0 ? json_object() : server_error(c, rc);
}

/* Queues the tag changes of `a` (copied: the caller's is on its stack). */
static json_t *rtag_write(struct ecr_ctx *c, const struct rtag_args *a)
{
    struct rtag_args *q;
    if (!ecr_allow(c, a->repo, AUTH_ADMIN))
        return NULL;
    if ((q = ecr_alloc(c, sizeof(*q))) == NULL)
        return server_error(c, BERR_NOMEM);
    *q = *a;
    return ecr_write(c, rtag_op, q, rtag_finish);
}

static json_t *op_tag_resource(struct ecr_ctx *c, json_t *in)
{
    struct rtag_args a = {.tags = json_object_get(in, "tags")};
    if ((a.repo = arn_repo(c, in)) == NULL)
        return NULL;
    if (a.tags == NULL || !tags_valid(c, a.tags))
        return c->type ? NULL : ecr_fail(c, "InvalidParameterException", "tags is required");
    return rtag_write(c, &a);
}

static json_t *op_untag_resource(struct ecr_ctx *c, json_t *in)
{
    struct rtag_args a = {.keys = json_object_get(in, "tagKeys")};
    json_t *k;
    size_t i;
    if ((a.repo = arn_repo(c, in)) == NULL)
        return NULL;
    if (!json_is_array(a.keys))
        return ecr_fail(c, "InvalidParameterException", "tagKeys must be a list of strings");
    json_array_foreach(a.keys, i, k)
    {
        if (!json_is_string(k))
            return ecr_fail(c, "InvalidParameterException", "tagKeys must be a list of strings");
    }
    return rtag_write(c, &a);
}

static int rtag_cb(void *ctx, const char *key, const char *value)
{
    json_array_append_new(ctx, json_pack("{s:s, s:s}", "Key", key, "Value", value));
    return 0;
}

static json_t *op_list_tags_for_resource(struct ecr_ctx *c, json_t *in)
{
    const char *repo;
    json_t *tags;
    int rc;
    if ((repo = arn_repo(c, in)) == NULL || !ecr_allow(c, repo, AUTH_PULL))
        return NULL;
    tags = json_array();
    if ((rc = ecrdb_rtags_each(c->db, repo, rtag_cb, tags)) != 0) {
        json_decref(tags);
        return rc == BERR_NAME_UNKNOWN ? not_found(c, repo) : server_error(c, rc);
    }
    return json_pack("{s:o}", "tags", tags);
}

/* ---- the table ---- */

static const struct {
    const char *name;
    ecr_op_fn fn;
    unsigned flags; /* ECR_OP_* */
} ops[] = {
    {"BatchCheckLayerAvailability", op_batch_check_layer_availability, 0},
    {"BatchDeleteImage", op_batch_delete_image, 0},
    {"BatchGetImage", op_batch_get_image, 0},
    {"CompleteLayerUpload", ecr_op_complete_layer_upload, ECR_OP_WORKER},
    {"CreateRepository", op_create_repository, 0},
    {"DeleteLifecyclePolicy", ecr_op_delete_lifecycle_policy, 0},
    {"DeleteRepository", op_delete_repository, 0},
    {"DescribeImages", op_describe_images, 0},
    {"DescribeRegistry", op_describe_registry, 0},
    {"DescribeRepositories", op_describe_repositories, 0},
    {"GetAuthorizationToken", op_get_authorization_token, 0},
    {"GetDownloadUrlForLayer", op_get_download_url_for_layer, 0},
    {"GetLifecyclePolicy", ecr_op_get_lifecycle_policy, 0},
    {"GetLifecyclePolicyPreview", ecr_op_get_lifecycle_policy_preview, ECR_OP_WORKER},
    {"InitiateLayerUpload", ecr_op_initiate_layer_upload, ECR_OP_WORKER},
    {"ListImages", op_list_images, 0},
    {"ListTagsForResource", op_list_tags_for_resource, 0},
    {"PutImage", op_put_image, 0},
    {"PutImageTagMutability", op_put_image_tag_mutability, 0},
    {"PutLifecyclePolicy", ecr_op_put_lifecycle_policy, 0},
    {"StartLifecyclePolicyPreview", ecr_op_start_lifecycle_policy_preview, 0},
    {"TagResource", op_tag_resource, 0},
    {"UntagResource", op_untag_resource, 0},
    {"UploadLayerPart", ecr_op_upload_layer_part, ECR_OP_WORKER},
};

ecr_op_fn ecr_ops_find(const char *name, unsigned *flags)
{
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (strcmp(ops[i].name, name) == 0) {
            *flags = ops[i].flags;
            return ops[i].fn;
        }
    return NULL;
}
