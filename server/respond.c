/* respond.c - error bodies from the one table, headers and small bodies. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "defaults.h"
#include "err.h"
#include "httpparse.h"
#include "log.h"
#include "db.h"
#include "observe.h"
#include "respond.h"

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 307:
        return "Temporary Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Range Not Satisfiable";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 507:
        return "Insufficient Storage";
    default:
        return "Unknown";
    }
}

void respond_common(h2o_req_t *req)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("docker-distribution-api-version"), 0, NULL,
                          H2O_STRLIT("registry/2.0"));
}

void respond_header(h2o_req_t *req, const char *name, const char *value, int copy)
{
    size_t nl = strlen(name), vl = strlen(value);
    if (copy) {
        value = h2o_strdup(&req->pool, value, vl).base;
    }
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, nl, 1, NULL, value, vl);
}

char *respond_printf(h2o_req_t *req, const char *fmt, ...)
{
    va_list ap;
    int n;
    char *p;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    p = h2o_mem_alloc_pool(&req->pool, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

static int is_head(h2o_req_t *req)
{
    return h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
}

void respond_body(h2o_req_t *req, int status, const char *ct, const void *body, size_t len, int owned)
{
    static h2o_generator_t generator = {NULL, NULL};
    h2o_iovec_t buf = h2o_iovec_init(body, len);
    req->res.status = status;
    req->res.reason = reason(status);
    req->res.content_length = len;
    respond_common(req);
    if (ct != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ct, strlen(ct));
    if (!owned && len > 0 && !is_head(req))
        buf = h2o_strdup(&req->pool, body, len);
    h2o_start_response(req, &generator);
    h2o_send(req, &buf, is_head(req) || len == 0 ? 0 : 1, H2O_SEND_STATE_FINAL);
}

void respond_empty(h2o_req_t *req, int status)
{
    respond_body(req, status, NULL, NULL, 0, 1);
}

/* Appends `s` to `out` as the inside of a JSON string. */
static size_t json_escape(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s && o + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    return o;
}

#define RESPOND_STR_(x) #x
#define RESPOND_STR(x) RESPOND_STR_(x) /* a numeric constant as a string literal */

void respond_error(h2o_req_t *req, int err, const char *detail)
{
    char d[1024], *body;
    struct observe_req *o = observe_get(req);
    int status;
    if (err == BERR_DB && db_unreachable())
        err = BERR_UNAVAILABLE; /* the statement failed because PostgreSQL is down: retry later, not a fault */
    status = berr_status(err);
    if (status >= 500) { /* the client sees only the code: the log line names the request, so both can be matched */
        const char *was = log_get_request_id();
        log_set_request_id(o != NULL ? o->id : NULL);
        log_error("%.*s %.*s: %d %s", (int)req->method.len, req->method.base,
                  (int)(req->path.len < 256 ? req->path.len : 256), req->path.base, status, berr_name(err));
        log_set_request_id(was);
    }
    json_escape(d, sizeof(d), detail != NULL ? detail : "");
    body = respond_printf(req, "{\"errors\":[{\"code\":\"%s\",\"message\":\"%s\",\"detail\":\"%s\"}]}\n",
                          berr_code(err), err == BERR_QUOTA_EXCEEDED && detail != NULL ? d : berr_message(err), d);
    /* backpressure, not failure: tell the client when to come back (RFC 6585), unless the caller already did */
    if (status == 429 && h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("retry-after"), -1) < 0)
        respond_header(req, "retry-after", RESPOND_STR(BERTH_RETRY_AFTER_S), 0);
    respond_body(req, status, "application/json; charset=utf-8", body, strlen(body), 1);
}

h2o_iovec_t respond_req_header(h2o_req_t *req, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    if (i < 0)
        return h2o_iovec_init(NULL, 0);
    return req->headers.entries[i].value;
}

int respond_query_each(h2o_req_t *req, const char *key, int (*fn)(void *ctx, const char *value), void *ctx, char *buf,
                       size_t buflen)
{
    if (req->query_at == SIZE_MAX)
        return 0;
    return httpparse_query_each(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1, key, fn, ctx,
                                buf, buflen);
}

int respond_query(h2o_req_t *req, const char *key, char *out, size_t outlen)
{
    if (req->query_at == SIZE_MAX)
        return 0;
    return httpparse_query(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1, key, out, outlen);
}
