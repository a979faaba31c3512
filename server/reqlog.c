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
#include "reqlog.h"

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

static void log_access(h2o_logger_t *self, h2o_req_t *req)
{
    char line[REQLOG_LINE_MAX];
    size_t len = reqlog_format(req, line, sizeof(line)), off = 0;
    (void)self;
    while (off < len) { /* one write(2) unless interrupted: lines stay whole */
        ssize_t n = write(2, line + off, len - off);
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
