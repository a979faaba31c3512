/*
 * ecr_lifecycle.c - ECR's lifecycle-policy operations over the policy engine and store of lifecycle.h:
 * Put/Get/DeleteLifecyclePolicy and Start/GetLifecyclePolicyPreview.  The preview is computed by a dry run of
 * lifecycle_run(); StartLifecyclePolicyPreview stores which policy text to preview (berth.db, per repository:
 * it survives restarts and every thread sees it), GetLifecyclePolicyPreview evaluates it as of now (on a worker)
 * and answers COMPLETE.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ecr_internal.h"
#include "err.h"
#include "lifecycle.h"
#include "log.h"
#include "names.h"
#include "server.h"
#include "writer.h"

/* The repositoryName argument (validated) or NULL after ecr_fail. */
static const char *repo_name(struct ecr_ctx *c, json_t *in)
{
    const char *name = json_string_value(json_object_get(in, "repositoryName"));
    if (name == NULL || strlen(name) < 2 || names_repo_valid(name, strlen(name)) != 0)
        return ecr_fail(c, "InvalidParameterException", "Invalid parameter at 'repositoryName'"), NULL;
    return name;
}

static json_t *repo_missing(struct ecr_ctx *c, const char *repo)
{
    return ecr_fail(c, "RepositoryNotFoundException",
                    "The repository with name '%s' does not exist in the registry with id '%s'", repo, c->registry_id);
}

static json_t *no_policy(struct ecr_ctx *c, const char *repo)
{
    return ecr_fail(c, "LifecyclePolicyNotFoundException",
                    "Lifecycle policy does not exist for the repository with name '%s' in the registry with id '%s'",
                    repo, c->registry_id);
}

struct put_args {
    const char *repo, *text;
    char msg[LIFECYCLE_MSG_MAX];
};

static int put_op(struct db *db, void *arg)
{
    struct put_args *a = arg;
    return lifecycle_policy_put(db, a->repo, a->text, strlen(a->text), a->msg, sizeof(a->msg));
}

/* The policy text argument, checked against ECR's limits.  NULL after ecr_fail (or when absent and optional). */
static const char *policy_arg(struct ecr_ctx *c, json_t *in, int required)
{
    const char *t = json_string_value(json_object_get(in, "lifecyclePolicyText"));
    if (t == NULL && !required)
        return NULL;
    if (t == NULL || strlen(t) < LIFECYCLE_POLICY_MIN || strlen(t) > LIFECYCLE_POLICY_MAX)
        return ecr_fail(c, "InvalidParameterException",
                        "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Member must have "
                        "length between %d and %d'",
                        LIFECYCLE_POLICY_MIN, LIFECYCLE_POLICY_MAX),
               NULL;
    return t;
}

static json_t *put_finish(struct ecr_ctx *c, void *arg, int rc)
{
    struct put_args *a = arg;
    if (rc == BERR_NAME_UNKNOWN)
        return repo_missing(c, a->repo);
    if (rc == BERR_LIFECYCLE_POLICY_INVALID)
        return ecr_fail(c, "InvalidParameterException", "%s", a->msg);
    if (rc != 0)
        return ecr_fail(c, "ServerException", "%s", berr_message(rc));
    return json_pack("{s:s, s:s, s:s}", "registryId", c->registry_id, "repositoryName", a->repo, "lifecyclePolicyText",
                     a->text);
}

json_t *ecr_op_put_lifecycle_policy(struct ecr_ctx *c, json_t *in)
{
    struct put_args *a = ecr_alloc(c, sizeof(*a));
    if (a == NULL)
        return ecr_fail(c, "ServerException", "out of memory");
    if ((a->repo = repo_name(c, in)) == NULL || (a->text = policy_arg(c, in, 1)) == NULL ||
        !ecr_allow(c, a->repo, AUTH_ADMIN))
        return NULL;
    return ecr_write(c, put_op, a, put_finish);
}

json_t *ecr_op_get_lifecycle_policy(struct ecr_ctx *c, json_t *in)
{
    const char *repo;
    char *text = NULL;
    int64_t at = 0;
    int rc;
    if ((repo = repo_name(c, in)) == NULL || !ecr_allow(c, repo, AUTH_PULL))
        return NULL;
    rc = lifecycle_policy_get(c->db, repo, &text, &at);
    if (rc == BERR_NAME_UNKNOWN)
        return repo_missing(c, repo);
    if (rc == BERR_LIFECYCLE_POLICY_NOT_FOUND)
        return no_policy(c, repo);
    if (rc != 0)
        return ecr_fail(c, "ServerException", "%s", berr_message(rc));
    json_t *out = json_pack("{s:s, s:s, s:s, s:I}", "registryId", c->registry_id, "repositoryName", repo,
                            "lifecyclePolicyText", text, "lastEvaluatedAt", (json_int_t)at);
    free(text);
    return out;
}

struct del_args {
    const char *repo;
    char *text;
    int64_t at;
};

static int del_op(struct db *db, void *arg)
{
    struct del_args *a = arg;
    return lifecycle_policy_delete(db, a->repo, &a->text, &a->at);
}

static json_t *del_finish(struct ecr_ctx *c, void *arg, int rc)
{
    struct del_args *a = arg;
    json_t *out = NULL;
    if (rc == BERR_NAME_UNKNOWN)
        repo_missing(c, a->repo);
    else if (rc == BERR_LIFECYCLE_POLICY_NOT_FOUND)
        no_policy(c, a->repo);
    else if (rc != 0)
        ecr_fail(c, "ServerException", "%s", berr_message(rc));
    else
        out = json_pack("{s:s, s:s, s:s, s:I}", "registryId", c->registry_id, "repositoryName", a->repo,
                        "lifecyclePolicyText", a->text ? a->text : "", "lastEvaluatedAt", (json_int_t)a->at);
    free(a->text);
    return out;
}

json_t *ecr_op_delete_lifecycle_policy(struct ecr_ctx *c, json_t *in)
{
    struct del_args *a = ecr_alloc(c, sizeof(*a));
    if (a == NULL)
        return ecr_fail(c, "ServerException", "out of memory");
    if ((a->repo = repo_name(c, in)) == NULL || !ecr_allow(c, a->repo, AUTH_ADMIN))
        return NULL;
    return ecr_write(c, del_op, a, del_finish);
}

struct preview_args {
    const char *repo;
    char *text; /* malloc'd */
    long long started;
};

static int preview_op(struct db *db, void *arg)
{
    struct preview_args *a = arg;
    return ecrdb_preview_put(db, a->repo, a->text, a->started);
}

static json_t *preview_finish(struct ecr_ctx *c, void *arg, int rc)
{
    struct preview_args *a = arg;
    json_t *out = NULL;
    if (rc == BERR_NAME_UNKNOWN)
        repo_missing(c, a->repo);
    else if (rc != 0)
        ecr_fail(c, "ServerException", "%s", berr_message(rc));
    else
        out = json_pack("{s:s, s:s, s:s, s:s}", "registryId", c->registry_id, "repositoryName", a->repo,
                        "lifecyclePolicyText", a->text, "status", "IN_PROGRESS");
    free(a->text);
    return out;
}

json_t *ecr_op_start_lifecycle_policy_preview(struct ecr_ctx *c, json_t *in)
{
    const char *repo, *given;
    struct lifecycle_policy *p = NULL;
    char msg[LIFECYCLE_MSG_MAX], *stored = NULL;
    int64_t at;
    int rc;
    if ((repo = repo_name(c, in)) == NULL || !ecr_allow(c, repo, AUTH_PULL))
        return NULL;
    given = policy_arg(c, in, 0);
    if (given == NULL && c->type != NULL)
        return NULL;
    if (given == NULL) {
        rc = lifecycle_policy_get(c->db, repo, &stored, &at);
        if (rc == BERR_NAME_UNKNOWN)
            return repo_missing(c, repo);
        if (rc == BERR_LIFECYCLE_POLICY_NOT_FOUND)
            return no_policy(c, repo);
        if (rc != 0)
            return ecr_fail(c, "ServerException", "%s", berr_message(rc));
        given = stored;
    } else {
        struct ecrdb_repo r;
        if (ecrdb_repo_get(c->db, repo, &r) != 0)
            return repo_missing(c, repo);
    }
    rc = lifecycle_parse(given, strlen(given), &p, msg, sizeof(msg));
    lifecycle_policy_free(p);
    if (rc != 0) {
        free(stored);
        return rc == BERR_LIFECYCLE_POLICY_INVALID ? ecr_fail(c, "InvalidParameterException", "%s", msg)
                                                   : ecr_fail(c, "ServerException", "%s", berr_message(rc));
    }
    struct preview_args *a = ecr_alloc(c, sizeof(*a));
    if (a == NULL || (a->text = given == stored ? stored : strdup(given)) == NULL) {
        free(stored);
        return ecr_fail(c, "ServerException", "out of memory");
    }
    a->repo = repo;
    a->started = c->now;
    return ecr_write(c, preview_op, a, preview_finish);
}

static int preview_cb(void *ctx, const struct lifecycle_expired *e)
{
    json_t *tags = json_array();
    for (size_t i = 0; i < e->ntags; i++)
        json_array_append_new(tags, json_string(e->tags[i]));
    json_array_append_new(ctx, json_pack("{s:o, s:s, s:I, s:{s:s}, s:I}", "imageTags", tags, "imageDigest", e->digest,
                                         "imagePushedAt", (json_int_t)e->pushed_at, "action", "type", "EXPIRE",
                                         "appliedRulePriority", (json_int_t)(e->rule > 0 ? e->rule : 0)));
    return 0;
}

json_t *ecr_op_get_lifecycle_policy_preview(struct ecr_ctx *c, json_t *in)
{
    struct lifecycle_policy *p = NULL;
    struct lifecycle_stats stats = {0};
    const char *repo;
    char msg[LIFECYCLE_MSG_MAX], *text;
    long long started;
    json_t *results;
    int rc;
    if ((repo = repo_name(c, in)) == NULL || !ecr_allow(c, repo, AUTH_PULL))
        return NULL;
    if ((rc = ecrdb_preview_get(c->db, repo, &text, &started)) == BERR_NOT_FOUND)
        return ecr_fail(c, "LifecyclePolicyPreviewNotFoundException",
                        "There is no dry run for this repository with name '%s' in the registry with id '%s'", repo,
                        c->registry_id);
    if (rc != 0)
        return ecr_fail(c, "ServerException", "%s", berr_message(rc));
    if (lifecycle_parse(text, strlen(text), &p, msg, sizeof(msg)) != 0) {
        free(text);
        return ecr_fail(c, "ServerException", "the previewed policy no longer parses");
    }
    struct lifecycle_run_opts o = {.repo = repo, .as_of = c->now, .dry_run = 1, .policy = p};
    results = json_array();
    rc = lifecycle_run(c->db, &o, preview_cb, results, &stats);
    lifecycle_policy_free(p);
    if (rc != 0) {
        free(text);
        json_decref(results);
        return rc == BERR_NAME_UNKNOWN ? repo_missing(c, repo) : ecr_fail(c, "ServerException", "%s", berr_message(rc));
    }
    json_t *out = json_pack("{s:s, s:s, s:s, s:s, s:o, s:{s:I}}", "registryId", c->registry_id, "repositoryName", repo,
                            "lifecyclePolicyText", text, "status", "COMPLETE", "previewResults", results, "summary",
                            "expiringImageTotalCount", (json_int_t)json_array_size(results));
    free(text);
    return out;
}
