/*
 * ecr_internal.h - shared by ecr.c (protocol, dispatch), ecr_auth.c (SigV4, the failure rate limit) and the
 * operations (ecr_ops.c, ecr_images.c, ecr_layers.c, ecr_lifecycle.c).
 *
 * Threads: an operation runs on the request's event loop (reads on the loop's own connection, microseconds), or
 * on a worker when it blocks (file I/O, hashing a layer, a lifecycle dry run: ECR_OP_WORKER) or its body is large
 * (BERTH_ECR_LOOP_BODY_MAX).  An operation never waits for a write: it queues it with ecr_write() and returns
 * ECR_PENDING; the writer commits it and the loop builds the answer with the operation's finish function.
 */
#ifndef BERTH_ECR_INTERNAL_H
#define BERTH_ECR_INTERNAL_H

#include <jansson.h>
#include "strbuf.h"
#include "accesskey.h"
#include "authdb.h"
#include "db.h"
#include "ecrdb.h"
#include "server.h"
#include "sigv4.h"
#include "writer.h"

#define ECR_MESSAGE_MAX 1024
#define ECR_ENDPOINT_MAX 512
#define ECR_TARGET_MAX 128 /* longest X-Amz-Target accepted */

/* One ECR request being served. */
struct ecr_ctx;

/** Builds the answer of a write queued with ecr_write(), on the loop after the commit (`rc` = the write's result):
 *  the response object, or NULL after ecr_fail(). */
typedef json_t *(*ecr_finish_fn)(struct ecr_ctx *c, void *arg, int rc);

struct ecr_ctx {
    struct server *srv;
    struct db *db;  /* the current thread's read connection */
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
    char host[ECR_ENDPOINT_MAX];     /* host[:port], the start of repositoryUri */
    long long now;
    unsigned char peer[16]; /* the client's address (4 or 16 bytes), for the failure rate limit */
    size_t peer_len;
    json_t *in; /* the request object (operations keep pointers into it until the answer) */
    /* a queued write (ecr_write) */
    writer_fn wfn;
    void *warg;
    ecr_finish_fn wfinish;
    struct ecr_mem *mem; /* ecr_alloc'd blocks */
    char *raw;           /* an answer given as text (ecr_raw), malloc'd */
    size_t raw_len;
    /* the answer */
    int status;
    const char *type; /* __type of an error, NULL on success */
    char message[ECR_MESSAGE_MAX];
};

/** An operation: returns the response object, NULL after ecr_fail(), or ECR_PENDING after ecr_write(). */
typedef json_t *(*ecr_op_fn)(struct ecr_ctx *c, json_t *in);

extern const char ecr_pending_marker;
/** What an operation returns after ecr_write(): the answer comes after the commit (never freed, never sent). */
#define ECR_PENDING ((json_t *)(void *)&ecr_pending_marker)

extern const char ecr_raw_marker;
/** What an operation returns after ecr_raw(): the answer is that text. */
#define ECR_RAW ((json_t *)(void *)&ecr_raw_marker)

/** Answers with the JSON text `text[0..len)` (malloc'd; taken, also on error) instead of an object: for hot
 *  operations whose answer is cheaper to write than to build.  Returns ECR_RAW (or NULL after ecr_fail when `text`
 *  is NULL). */
json_t *ecr_raw(struct ecr_ctx *c, char *text, size_t len);

/* ECR answers written as text go into a struct strbuf (strbuf.h); `failed` is checked once, by ecr_jbuf_finish. */
/** Appends the string literal `lit` as is. */
#define ECR_JBUF_LIT(b, lit) strbuf_add((b), "" lit, sizeof(lit) - 1) /* "" lit: literals only */
/** Appends `s[0..n)` (valid UTF-8) as a quoted JSON string, escaped as jansson does. */
void ecr_jbuf_str(struct strbuf *b, const char *s, size_t n);
/** Appends the compact JSON text of `v` (NULL: nothing; not taken). */
void ecr_jbuf_json(struct strbuf *b, const json_t *v);
/** Hands the text to ecr_raw(): returns ECR_RAW, or NULL after ecr_fail if an append failed. */
json_t *ecr_jbuf_finish(struct ecr_ctx *c, struct strbuf *b);

/** Queues `fn(db, arg)` for the writer; after the commit `finish(c, arg, rc)` builds the answer on the loop.  `arg`
 *  must outlive the request (ecr_alloc).  Returns ECR_PENDING, for `return ecr_write(...)`. */
json_t *ecr_write(struct ecr_ctx *c, writer_fn fn, void *arg, ecr_finish_fn finish);
/** `size` zeroed bytes that live as long as the request (freed with it).  NULL on OOM. */
void *ecr_alloc(struct ecr_ctx *c, size_t size);

/* ecr_auth.c: who is calling */

/** Loads the access-key sealing key (creating it) and the registry id (deriving and storing it) once, at start
 *  (module init, before any thread serves).  Returns 0 or -1. */
int ecr_auth_init(struct server *srv);
/** The registry id loaded by ecr_auth_init(). */
const char *ecr_registry_id(void);
/** Copies the access-key sealing key into `out`. */
void ecr_boxkey(unsigned char out[ACCESSKEY_BOXKEY_BYTES]);
/** 1 (after ecr_fail with ThrottlingException) if the client's address or the access key id named in
 *  `authorization[0..len)` failed SigV4 too often lately (BERTH_ECR_AUTH_FAIL_*), else 0.  Cheap. */
int ecr_auth_throttled(struct ecr_ctx *c, const char *authorization, size_t len);
/** Verifies the SigV4 signature of `sr` (payload hash computed here from `body`) with the named access key and
 *  loads the key's user, identity and grants into `c`.  Failures count towards the rate limit.  Returns 0 or -1
 *  after ecr_fail (AWS's exception names). */
int ecr_authenticate(struct ecr_ctx *c, struct sigv4_request *sr, const char *body, size_t len);

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

/* ecr_layers.c: ECR's layer upload path, and reading layers */
json_t *ecr_op_initiate_layer_upload(struct ecr_ctx *c, json_t *in);
json_t *ecr_op_upload_layer_part(struct ecr_ctx *c, json_t *in);
json_t *ecr_op_complete_layer_upload(struct ecr_ctx *c, json_t *in);
json_t *ecr_op_batch_check_layer_availability(struct ecr_ctx *c, json_t *in);
json_t *ecr_op_get_download_url_for_layer(struct ecr_ctx *c, json_t *in);

/* ecr_images.c: the image operations */
json_t *ecr_images_list(struct ecr_ctx *c, json_t *in);
json_t *ecr_images_describe(struct ecr_ctx *c, json_t *in);
json_t *ecr_images_batch_get(struct ecr_ctx *c, json_t *in);
json_t *ecr_images_batch_delete(struct ecr_ctx *c, json_t *in);
json_t *ecr_images_put(struct ecr_ctx *c, json_t *in);

/* ecr_ops.c: the argument helpers and shapes every operation shares (the decoders are ecrargs.c's) */

struct ecrargs_err;
/** Fails the request with the decoder's error `e` (its __type and message). */
void ecr_ops_args_fail(struct ecr_ctx *c, const struct ecrargs_err *e);
/** The string member `key` of `in`; NULL when absent.  A member of another type fails the request (returns NULL,
 *  *bad set). */
const char *ecr_ops_opt_str(struct ecr_ctx *c, json_t *in, const char *key, int *bad);
/** The repositoryName argument, validated.  NULL after ecr_fail. */
const char *ecr_ops_repo_arg(struct ecr_ctx *c, json_t *in);
/** maxResults: absent = `dflt`; else 1..BERTH_ECR_PAGE_MAX.  Returns -1 after ecr_fail. */
int ecr_ops_max_results(struct ecr_ctx *c, json_t *in, int dflt);
/** nextToken of kind `kind` (ecrargs.h) into *id and `text[size]`.  Returns 0 (absent: id 0, text ""), or -1
 *  after ecr_fail. */
int ecr_ops_token_in(struct ecr_ctx *c, json_t *in, char kind, int64_t *id, char *text, size_t size);
/** Sets `out`'s nextToken to the token of kind `kind` for (`id`, `text`). */
void ecr_ops_token_out(json_t *out, char kind, int64_t id, const char *text);
/** Fails the request with RepositoryNotFoundException for `repo`.  Returns NULL. */
json_t *ecr_ops_not_found(struct ecr_ctx *c, const char *repo);
/** Fails the request with ServerException for the storage error `rc` (logged).  Returns NULL. */
json_t *ecr_ops_server_error(struct ecr_ctx *c, int rc);
/** Reads repository `name` into *r, failing the request with RepositoryNotFoundException (or ServerException).
 *  Returns 0 or -1. */
int ecr_ops_get_repo(struct ecr_ctx *c, const char *name, struct ecrdb_repo *r);

/* ecr_bearer.c: the ECR API with a bearer token from /token (scope registry:ecr:*) instead of SigV4 */

/** 1 if the Authorization value `v[0..len)` is a bearer token ("Bearer <token>", scheme case-insensitive). */
int ecr_bearer_is(const char *v, size_t len);
/** Authenticates the bearer token in the Authorization value `v[0..len)`: sets c->id to its subject and loads that
 *  subject's grants into c->grants.  Returns 0, or -1 after ecr_fail (UnrecognizedClientException). */
int ecr_bearer_authenticate(struct ecr_ctx *c, const char *v, size_t len);

#define ECR_OP_WORKER 1u /* the operation blocks (file I/O, hashing, a dry run): it runs on a worker */

/** The operation called `name` (its ECR_OP_* flags into *flags), or NULL if Berth does not implement it. */
ecr_op_fn ecr_ops_find(const char *name, unsigned *flags);

#endif
