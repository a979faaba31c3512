/*
 * ecr_ops.c - the ECR operations (request and response shapes of botocore's ecr/2015-09-21 service model), run
 * after ecr.c authenticated the caller (on the loop; see ecr_internal.h): the argument helpers every operation
 * shares, the repository, registry and resource-tag operations, and the table of all operations (the images' are
 * in ecr_images.c, the layers' in ecr_layers.c, the lifecycle policies' in ecr_lifecycle.c).  Reads use the
 * thread's connection; writes are queued for the writer (ecr_write) and answered by a finish function after the
 * commit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "ecr.h"
#include "ecrargs.h"
#include "ecr_internal.h"
#include "err.h"
#include "log.h"
#include "names.h"
#include "writer.h"

/* ---- arguments ---- */

/* The decoders live in ecrargs.c (pure, fuzzed); these turn their failure into the answer. */
void ecr_ops_args_fail(struct ecr_ctx *c, const struct ecrargs_err *e)
{
    ecr_fail(c, e->type, "%s", e->msg);
}

/* A string member; NULL when absent.  A member of another type is an error (returns NULL, *bad set). */
const char *ecr_ops_opt_str(struct ecr_ctx *c, json_t *in, const char *key, int *bad)
{
    struct ecrargs_err e;
    const char *v;
    if (ecrargs_str(in, key, &v, &e) != 0) {
        *bad = 1;
        ecr_ops_args_fail(c, &e);
    }
    return v;
}

/* The repositoryName argument, validated.  NULL after ecr_fail. */
const char *ecr_ops_repo_arg(struct ecr_ctx *c, json_t *in)
{
    struct ecrargs_err e;
    const char *name = ecrargs_repo(in, &e);
    if (name == NULL)
        ecr_ops_args_fail(c, &e);
    return name;
}

/* maxResults: absent = `dflt`; else 1..BERTH_ECR_PAGE_MAX.  Returns -1 after ecr_fail. */
int ecr_ops_max_results(struct ecr_ctx *c, json_t *in, int dflt)
{
    struct ecrargs_err e;
    int n = ecrargs_max_results(in, dflt, &e);
    if (n < 0)
        ecr_ops_args_fail(c, &e);
    return n;
}

/* nextToken (ecrargs.h).  Returns 0 (absent: id 0, text ""), or -1 after ecr_fail. */
int ecr_ops_token_in(struct ecr_ctx *c, json_t *in, char kind, int64_t *id, char *text, size_t size)
{
    struct ecrargs_err e;
    if (ecrargs_token_in(in, kind, id, text, size, &e) != 0) {
        ecr_ops_args_fail(c, &e);
        return -1;
    }
    return 0;
}

void ecr_ops_token_out(json_t *out, char kind, int64_t id, const char *text)
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

json_t *ecr_ops_not_found(struct ecr_ctx *c, const char *repo)
{
    return ecr_fail(c, "RepositoryNotFoundException",
                    "The repository with name '%s' does not exist in the registry with id '%s'", repo, c->registry_id);
}

/* Maps a storage error that is not the client's into ServerException. */
json_t *ecr_ops_server_error(struct ecr_ctx *c, int rc)
{
    log_error("ecr: %s failed: %s", c->op, berr_name(rc));
    return ecr_fail(c, "ServerException", "%s", berr_message(rc));
}

/* Reads repository `name`, failing with RepositoryNotFoundException.  Returns 0 or -1. */
int ecr_ops_get_repo(struct ecr_ctx *c, const char *name, struct ecrdb_repo *r)
{
    int rc = ecrdb_repo_get(c->db, name, r);
    if (rc == BERR_NAME_UNKNOWN)
        ecr_ops_not_found(c, name);
    else if (rc != 0)
        ecr_ops_server_error(c, rc);
    return rc == 0 ? 0 : -1;
}

/* Validates imageTagMutability and the exclusion filters; writes the filters' JSON text into `filters`. */
static int mutability_args(struct ecr_ctx *c, json_t *in, const char **mut, char *filters, size_t size)
{
    struct ecrargs_err e;
    if (ecrargs_mutability(in, mut, filters, size, &e) != 0) {
        ecr_ops_args_fail(c, &e);
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
        ecr_ops_args_fail(c, &e);
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
        return ecr_ops_server_error(c, rc);
    return json_pack("{s:o}", "repository", repo_json(c, &a->r));
}

static json_t *op_create_repository(struct ecr_ctx *c, json_t *in)
{
    struct create_args *a = ecr_alloc(c, sizeof(*a));
    if (a == NULL)
        return ecr_ops_server_error(c, BERR_NOMEM);
    if ((a->name = ecr_ops_repo_arg(c, in)) == NULL ||
        mutability_args(c, in, &a->mut, a->filters, sizeof(a->filters)) != 0 ||
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
        if (!ecr_allow(c, name, AUTH_PULL) || ecr_ops_get_repo(c, name, &r) != 0) {
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
    if ((l.want = ecr_ops_max_results(c, in, BERTH_ECR_PAGE_DEFAULT)) < 0 ||
        ecr_ops_token_in(c, in, 'r', &unused, l.last, sizeof(l.last)) != 0)
        return NULL;
    l.arr = json_array();
    /* skip repositories the caller cannot see, a page of rows at a time, until the page is full */
    do {
        rc = ecrdb_repos_each(c->db, l.last, l.want, list_repo_cb, &l, &more);
    } while (rc == 0 && more && (int)json_array_size(l.arr) < l.want);
    if (rc != 0) {
        json_decref(l.arr);
        return ecr_ops_server_error(c, rc);
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
            ecr_ops_token_out(out, 'r', 0, l.last);
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
        return ecr_ops_not_found(c, a->name);
    if (rc == ECRDB_NOT_EMPTY)
        return ecr_fail(c, "RepositoryNotEmptyException",
                        "The repository with name '%s' in registry with id '%s' cannot be deleted because it still "
                        "contains images",
                        a->name, c->registry_id);
    if (rc != 0)
        return ecr_ops_server_error(c, rc);
    log_info("ecr: user %s deleted repository %s (%d images)", c->id.name, a->name, a->images);
    return json_pack("{s:o}", "repository", repo_json(c, &a->r));
}

static json_t *op_delete_repository(struct ecr_ctx *c, json_t *in)
{
    struct delete_args *a = ecr_alloc(c, sizeof(*a));
    if (a == NULL)
        return ecr_ops_server_error(c, BERR_NOMEM);
    if ((a->name = ecr_ops_repo_arg(c, in)) == NULL || !ecr_allow(c, a->name, AUTH_ADMIN))
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
        return ecr_ops_not_found(c, a->name);
    if (rc != 0)
        return ecr_ops_server_error(c, rc);
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
        return ecr_ops_server_error(c, BERR_NOMEM);
    if ((a->name = ecr_ops_repo_arg(c, in)) == NULL ||
        mutability_args(c, in, &a->mut, a->filters, sizeof(a->filters)) != 0 || !ecr_allow(c, a->name, AUTH_ADMIN))
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
        return ecr_ops_not_found(c, a->repo);
    return rc == 0 ? json_object() : ecr_ops_server_error(c, rc);
}

/* Queues the tag changes of `a` (copied: the caller's is on its stack). */
static json_t *rtag_write(struct ecr_ctx *c, const struct rtag_args *a)
{
    struct rtag_args *q;
    if (!ecr_allow(c, a->repo, AUTH_ADMIN))
        return NULL;
    if ((q = ecr_alloc(c, sizeof(*q))) == NULL)
        return ecr_ops_server_error(c, BERR_NOMEM);
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
        return rc == BERR_NAME_UNKNOWN ? ecr_ops_not_found(c, repo) : ecr_ops_server_error(c, rc);
    }
    return json_pack("{s:o}", "tags", tags);
}

/* ---- the table ---- */

static const struct {
    const char *name;
    ecr_op_fn fn;
    unsigned flags; /* ECR_OP_* */
} ops[] = {
    {"BatchCheckLayerAvailability", ecr_op_batch_check_layer_availability, 0},
    {"BatchDeleteImage", ecr_images_batch_delete, 0},
    {"BatchGetImage", ecr_images_batch_get, 0},
    {"CompleteLayerUpload", ecr_op_complete_layer_upload, ECR_OP_WORKER},
    {"CreateRepository", op_create_repository, 0},
    {"DeleteLifecyclePolicy", ecr_op_delete_lifecycle_policy, 0},
    {"DeleteRepository", op_delete_repository, 0},
    {"DescribeImages", ecr_images_describe, 0},
    {"DescribeRegistry", op_describe_registry, 0},
    {"DescribeRepositories", op_describe_repositories, 0},
    {"GetAuthorizationToken", op_get_authorization_token, 0},
    {"GetDownloadUrlForLayer", ecr_op_get_download_url_for_layer, 0},
    {"GetLifecyclePolicy", ecr_op_get_lifecycle_policy, 0},
    {"GetLifecyclePolicyPreview", ecr_op_get_lifecycle_policy_preview, ECR_OP_WORKER},
    {"InitiateLayerUpload", ecr_op_initiate_layer_upload, ECR_OP_WORKER},
    {"ListImages", ecr_images_list, 0},
    {"ListTagsForResource", op_list_tags_for_resource, 0},
    {"PutImage", ecr_images_put, 0},
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
