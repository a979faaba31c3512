/*
 * respond.h - building responses: the OCI error body from err.h's table, common headers, small bodies.
 *
 * Every response carries Docker-Distribution-API-Version.  Strings given as header values must outlive the
 * response: use literals or h2o_mem_alloc / respond_strdup on req->pool.
 */
#ifndef BERTH_RESPOND_H
#define BERTH_RESPOND_H

#include "server.h"

/** Sends the error `err` (a negative BERR code) as `{"errors":[{"code","message","detail"}]}` with its status.
 *  `detail` may be NULL. */
void respond_error(h2o_req_t *req, int err, const char *detail);
/** Adds a header (name and value copied into the request pool when `copy` is set). */
void respond_header(h2o_req_t *req, const char *name, const char *value, int copy);
/** printf into the request pool. */
char *respond_printf(h2o_req_t *req, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Sends `status` with `body[0..len)` (copied into the pool unless `owned`) and Content-Type `ct` (may be NULL).
 *  For HEAD, only the headers (with the body's Content-Length) are sent. */
void respond_body(h2o_req_t *req, int status, const char *ct, const void *body, size_t len, int owned);
/** Sends `status` with an empty body. */
void respond_empty(h2o_req_t *req, int status);
/** Adds the headers every response carries. */
void respond_common(h2o_req_t *req);
/** Returns the first value of request header `name` (lowercase), or a zero-length iovec. */
h2o_iovec_t respond_req_header(h2o_req_t *req, const char *name);
/** Finds query parameter `key` in the raw query; copies its percent-decoded value (NUL-terminated) into `out`.
 *  Returns 1 if present, 0 if absent, -1 if too long or malformed. */
int respond_query(h2o_req_t *req, const char *key, char *out, size_t outlen);

/** Calls `fn(ctx, value)` with the percent-decoded value of every query parameter `key`, in order, decoding into
 *  `buf` (`buflen` bytes); stops when fn returns non-zero.  Returns 1 if fn stopped it, 0 when all were seen, -1 if
 *  a value is too long or malformed. */
int respond_query_each(h2o_req_t *req, const char *key, int (*fn)(void *ctx, const char *value), void *ctx, char *buf,
                       size_t buflen);

#endif
