/* reqlog.c - the combined-format access log on the inherited stderr (see reqlog.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "log.h"
#include "observe.h"
#include "reqlog.h"
#include <sys/time.h>

/* Appends `s[0..n)` to out[*len..size), escaped by log_escape (control bytes, quotes, '\' and bytes >= 0x7f as
 * \xHH; "..." when it does not fit). */
static void put_escaped(char *out, size_t size, size_t *len, const char *s, size_t n)
{
    if (*len + 1 >= size)
        return;
    log_escape(s, n, out + *len, size - *len);
    *len += strlen(out + *len);
}

/* Appends printf output, truncated to what fits. */
__attribute__((format(printf, 4, 5))) static void put_fmt(char *out, size_t size, size_t *len, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (*len >= size)
        return;
    va_start(ap, fmt);
    n = vsnprintf(out + *len, size - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len = (size_t)n < size - *len ? *len + (size_t)n : size - 1;
}

/* Appends "value" of header `tok`, or "-". */
static void put_header(char *out, size_t size, size_t *len, h2o_req_t *req, const h2o_token_t *tok)
{
    ssize_t i = h2o_find_header(&req->headers, tok, -1);
    if (i < 0) {
        put_fmt(out, size, len, " \"-\"");
        return;
    }
    put_fmt(out, size, len, " \"");
    put_escaped(out, size, len, req->headers.entries[i].value.base, req->headers.entries[i].value.len);
    put_fmt(out, size, len, "\"");
}

static void peer_text(h2o_req_t *req, char *out, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t n = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    const void *a = NULL;
    snprintf(out, size, "-");
    if (n == 0)
        return;
    if (ss.ss_family == AF_INET)
        a = &((struct sockaddr_in *)&ss)->sin_addr;
    else if (ss.ss_family == AF_INET6)
        a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
    if (a != NULL && inet_ntop(ss.ss_family, a, out, (socklen_t)size) == NULL)
        snprintf(out, size, "-");
}

size_t reqlog_format(h2o_req_t *req, char *out, size_t size)
{
    char peer[INET6_ADDRSTRLEN], when[64];
    time_t t = req->processed_at.at.tv_sec;
    struct tm tm;
    size_t len = 0;
    peer_text(req, peer, sizeof(peer));
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%d/%b/%Y:%H:%M:%S +0000", &tm);
    put_fmt(out, size - 1, &len, "%s - - [%s] \"", peer, when);
    put_escaped(out, size - 1, &len, req->input.method.base, req->input.method.len);
    put_fmt(out, size - 1, &len, " ");
    put_escaped(out, size - 1, &len, req->input.path.base, req->input.path.len);
    put_fmt(out, size - 1, &len, " HTTP/%d.%d\" %d %zu", req->version >> 8, req->version & 0xff, req->res.status,
            req->bytes_sent);
    put_header(out, size - 1, &len, req, H2O_TOKEN_REFERER);
    put_header(out, size - 1, &len, req, H2O_TOKEN_USER_AGENT);
    out[len++] = '\n';
    out[len] = '\0';
    return len;
}

static int log_json, log_fd = 2;

void reqlog_configure(int json, int fd)
{
    log_json = json;
    log_fd = fd;
}

/* Appends `s[0..n)` as a JSON string (with its quotes), or null when `s` is NULL. */
static void put_json_str(char *out, size_t size, size_t *len, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (s == NULL) {
        put_fmt(out, size, len, "null");
        return;
    }
    put_fmt(out, size, len, "\"");
    for (size_t i = 0; i < n && *len + 8 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            out[(*len)++] = (char)c;
            continue;
        }
        if (c == '"' || c == '\\') {
            out[(*len)++] = '\\';
            out[(*len)++] = (char)c;
            continue;
        }
        memcpy(out + *len, "\\u00", 4);
        *len += 4;
        out[(*len)++] = hex[c >> 4];
        out[(*len)++] = hex[c & 15];
    }
    put_fmt(out, size, len, "\"");
}

static void put_json_cstr(char *out, size_t size, size_t *len, const char *s)
{
    put_json_str(out, size, len, s, s != NULL ? strlen(s) : 0);
}

size_t reqlog_format_json(h2o_req_t *req, char *out, size_t size)
{
    static const char *const routes[MROUTE__COUNT] = {
#define ROUTE_NAME_(id, text) text,
        METRICS_ROUTES(ROUTE_NAME_)
#undef ROUTE_NAME_
    };
    char peer[INET6_ADDRSTRLEN], when[64];
    struct observe_req *o = observe_get(req);
    struct timeval now, *t0 = &req->timestamps.request_begin_at;
    time_t t = req->processed_at.at.tv_sec;
    struct tm tm;
    size_t len = 0, cap = size - 2;
    double dur = 0;
    gettimeofday(&now, NULL);
    if (t0->tv_sec != 0)
        dur = (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_usec - t0->tv_usec) / 1e6;
    peer_text(req, peer, sizeof(peer));
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    put_fmt(out, cap, &len, "{\"time\":\"%s.%03dZ\",\"remote\":", when, (int)(req->processed_at.at.tv_usec / 1000));
    put_json_cstr(out, cap, &len, peer);
    put_fmt(out, cap, &len, ",\"user\":");
    put_json_cstr(out, cap, &len, o != NULL ? o->user : NULL);
    put_fmt(out, cap, &len, ",\"method\":");
    put_json_str(out, cap, &len, req->input.method.base, req->input.method.len);
    put_fmt(out, cap, &len, ",\"route\":\"%s\",\"repository\":", routes[o != NULL ? o->route : MROUTE_OTHER]);
    put_json_cstr(out, cap, &len, o != NULL ? o->repo : NULL);
    put_fmt(out, cap, &len, ",\"path\":");
    put_json_str(out, cap, &len, req->input.path.base,
                 req->input.path.len < REQLOG_JSON_PATH_MAX ? req->input.path.len : REQLOG_JSON_PATH_MAX);
    put_fmt(out, cap, &len, ",\"status\":%d,\"bytes\":%zu,\"duration\":%.6f,\"request_id\":", req->res.status,
            req->bytes_sent, dur > 0 ? dur : 0);
    put_json_cstr(out, cap, &len, o != NULL ? o->id : NULL);
    put_fmt(out, cap, &len, "}");
    out[len++] = '\n';
    out[len] = '\0';
    return len;
}

static void log_access(h2o_logger_t *self, h2o_req_t *req)
{
    char line[REQLOG_LINE_MAX];
    size_t len = log_json ? reqlog_format_json(req, line, sizeof(line)) : reqlog_format(req, line, sizeof(line)),
           off = 0;
    (void)self;
    while (off < len) { /* one write(2) unless interrupted: lines stay whole */
        ssize_t n = write(log_fd, line + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        off += (size_t)n;
    }
}

void reqlog_register(h2o_pathconf_t *pathconf)
{
    h2o_logger_t *l = h2o_create_logger(pathconf, sizeof(*l));
    l->log_access = log_access;
}
