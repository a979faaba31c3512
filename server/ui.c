/*
 * ui.c - the web UI at /ui/: the static files of server/ui/, embedded into the binary (ui_files.h), served with
 * GET and HEAD, a strong ETag (If-None-Match -> 304), Cache-Control: no-cache, a strict Content-Security-Policy
 * and X-Content-Type-Options: nosniff.  The files carry no data, so they need no authentication: the page then
 * talks to the registry API (/token, /v2/...) and to the ECR API (POST /, with a bearer token for the scope
 * registry:ecr:*, ecr_bearer.c) like any other client and has no privileges of its own.
 *
 * A file is found by exact name in the embedded table, never on the file system, so no request path can reach
 * anything else (`/ui/../berth.db` and `/ui/%2e%2e/` are names the table does not hold: 404).  `GET /` from a
 * browser (Accept: text/html) is redirected to /ui/; every other request on "/" (ECR's POST /, API clients) is
 * passed on to the next module.
 */
#include <string.h>
#include "module.h"
#include "respond.h"
#include "ui_files.h"

#define UI_PREFIX "/ui/"
#define UI_INDEX "index.html"
#define UI_CACHE_CONTROL "no-cache" /* revalidate every time (ETag): file names carry no version */
/* the page loads only its own files and talks only to its own origin; no inline script or style, no frames */
#define UI_CSP                                                                                                         \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "              \
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

static const struct {
    const char *ext, *type;
} ui_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".json", "application/json"},
    {".txt", "text/plain; charset=utf-8"},
};

/* The Content-Type of a file name, by its extension. */
static const char *ui_type(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof(ui_types) / sizeof(ui_types[0]); i++) {
        size_t e = strlen(ui_types[i].ext);
        if (n > e && strcmp(name + n - e, ui_types[i].ext) == 0)
            return ui_types[i].type;
    }
    return "application/octet-stream";
}

/* The embedded file named exactly `name` (`len` bytes), or NULL. */
static const struct ui_file *ui_find(const char *name, size_t len)
{
    for (size_t i = 0; i < ui_files_count; i++)
        if (strlen(ui_files[i].name) == len && memcmp(ui_files[i].name, name, len) == 0)
            return &ui_files[i];
    return NULL;
}

static int ui_method(h2o_req_t *req, const char *m)
{
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

/* Sends a response with the UI's security headers; `body` is static (never copied). */
static void ui_send(h2o_req_t *req, int status, const char *reason, const char *ct, const void *body, size_t len)
{
    static h2o_generator_t generator = {NULL, NULL};
    h2o_iovec_t buf = h2o_iovec_init(body, len);
    int has_body = status != 304 && !ui_method(req, "HEAD") && len > 0;
    req->res.status = status;
    req->res.reason = reason;
    req->res.content_length = status == 304 ? SIZE_MAX : len;
    respond_header(req, "content-security-policy", UI_CSP, 0);
    respond_header(req, "x-content-type-options", "nosniff", 0);
    respond_header(req, "referrer-policy", "no-referrer", 0);
    if (ct != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ct, strlen(ct));
    h2o_start_response(req, &generator);
    h2o_send(req, &buf, has_body ? 1 : 0, H2O_SEND_STATE_FINAL);
}

static void ui_redirect(h2o_req_t *req, const char *to)
{
    static const char body[] = "see /ui/\n";
    respond_header(req, "location", to, 0);
    respond_header(req, "cache-control", "no-store", 0);
    respond_header(req, "vary", "accept", 0); /* GET / is redirected for browsers only */
    ui_send(req, 302, "Found", "text/plain; charset=utf-8", body, sizeof(body) - 1);
}

/* 1 if the request's If-None-Match names `etag` (or is "*"). */
static int ui_not_modified(h2o_req_t *req, const char *etag)
{
    h2o_iovec_t v = respond_req_header(req, "if-none-match");
    size_t n = strlen(etag);
    if (v.base == NULL)
        return 0;
    if (v.len == 1 && v.base[0] == '*')
        return 1;
    for (size_t i = 0; i + n <= v.len; i++)
        if (memcmp(v.base + i, etag, n) == 0)
            return 1;
    return 0;
}

/* Serves `name` (`len` bytes, the path after /ui/). */
static void ui_file_send(h2o_req_t *req, const char *name, size_t len)
{
    static const char missing[] = "not found\n", not_allowed[] = "method not allowed\n";
    const struct ui_file *f;
    if (!ui_method(req, "GET") && !ui_method(req, "HEAD")) {
        respond_header(req, "allow", "GET, HEAD", 0);
        ui_send(req, 405, "Method Not Allowed", "text/plain; charset=utf-8", not_allowed, sizeof(not_allowed) - 1);
        return;
    }
    if (len == 0) {
        name = UI_INDEX;
        len = strlen(UI_INDEX);
    }
    if ((f = ui_find(name, len)) == NULL) {
        ui_send(req, 404, "Not Found", "text/plain; charset=utf-8", missing, sizeof(missing) - 1);
        return;
    }
    respond_header(req, "etag", f->etag, 0);
    respond_header(req, "cache-control", UI_CACHE_CONTROL, 0);
    if (ui_not_modified(req, f->etag))
        ui_send(req, 304, "Not Modified", NULL, NULL, 0);
    else
        ui_send(req, 200, "OK", ui_type(f->name), f->data, f->len);
}

/* 1 if the request's Accept asks for HTML (a browser's navigation). */
static int ui_wants_html(h2o_req_t *req)
{
    h2o_iovec_t v = respond_req_header(req, "accept");
    static const char html[] = "text/html";
    for (size_t i = 0; v.base != NULL && i + sizeof(html) - 1 <= v.len; i++)
        if (h2o_lcstris(v.base + i, sizeof(html) - 1, html, sizeof(html) - 1))
            return 1;
    return 0;
}

static int ui_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len, pre = strlen(UI_PREFIX);
    const char *p = req->path.base;
    (void)self;
    if (plen == 1 && p[0] == '/') {
        if ((ui_method(req, "GET") || ui_method(req, "HEAD")) && ui_wants_html(req)) {
            ui_redirect(req, UI_PREFIX);
            return 0;
        }
        return -1; /* not a browser, or ECR's POST /: the next module's */
    }
    if (plen == pre - 1 && memcmp(p, UI_PREFIX, pre - 1) == 0) {
        ui_redirect(req, UI_PREFIX);
        return 0;
    }
    if (plen < pre || memcmp(p, UI_PREFIX, pre) != 0)
        return -1;
    ui_file_send(req, p + pre, plen - pre);
    return 0;
}

static void ui_routes(struct server *srv, h2o_hostconf_t *host, h2o_pathconf_t *root)
{
    struct server_handler *h = (void *)h2o_create_handler(root, sizeof(*h));
    (void)host;
    h->super.on_req = ui_on_req;
    h->srv = srv;
}

const struct module ui_module = {.name = "ui", .routes = ui_routes};
