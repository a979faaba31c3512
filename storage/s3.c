/* s3.c - the S3 client of s3.h: signed HTTP/1.1 requests over a per-thread keep-alive connection, tiny XML reads. */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <sys/time.h>
#include <unistd.h>
#include <sodium.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "defaults.h"
#include "err.h"
#include "fault.h"
#include "httpc.h"
#include "log.h"
#include "s3.h"
#include "strbuf.h"
#include "sigv4.h"

#define HEAD_MAX 8192       /* request head we build (path, signature, a few headers) */
#define EXTRA_MAX 4         /* extra signed headers of one request */
#define RESP_HEAD_MAX 16384 /* response head we accept */

struct s3 {
    struct s3_config cfg;
    SSL_CTX *tls;                   /* https endpoints: peer verified against the system's CA store */
    struct httpc_url url;           /* parsed endpoint */
    char host[HTTPC_HOST_MAX + 80]; /* the Host header: authority, with the bucket first when virtual-hosted */
    unsigned id;                    /* tells this client's cached connections from another's */
    struct s3 *older;               /* the client this one replaced (s3_retire), freed with it */
};

static atomic_uint next_id = 1;

/* The connection this thread keeps open, and its read buffer (closed and freed when the thread exits: tl_release). */
static _Thread_local struct {
    int fd;
    SSL *ssl; /* https: the TLS session over fd */
    unsigned owner;
    char *buf;
    size_t off, len; /* unread bytes buf[off..len) */
} tl = {.fd = -1};

/* ---- the thread's connection ends with the thread ---- */

static pthread_key_t tl_key;
static pthread_once_t tl_once = PTHREAD_ONCE_INIT;

static void conn_close(void);

/* A thread that used S3 exits (upload requests run on threads of their own): its socket and buffer go with it. */
static void tl_release(void *unused)
{
    (void)unused;
    conn_close();
    free(tl.buf);
    tl.buf = NULL;
}

static void tl_key_make(void)
{
    if (pthread_key_create(&tl_key, tl_release) != 0)
        log_warn("s3: no thread-exit hook: connections of exiting threads stay open");
}

/* ---- small growing buffer ---- */

/* Appends `s` percent-encoded (RFC 3986 unreserved kept; '/' kept when `keep_slash`). */
static void buf_enc(struct strbuf *b, const char *s, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
            c == '.' || c == '~' || (keep_slash && c == '/')) {
            strbuf_add(b, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            strbuf_add(b, e, 3);
        }
    }
}

/* ---- client ---- */

int s3_new(const struct s3_config *cfg, struct s3 **out)
{
    struct s3 *s;
    if (cfg->bucket[0] == '\0' || cfg->access_key[0] == '\0' || cfg->secret_key[0] == '\0')
        return BERR_BAD_REQUEST;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return BERR_NOMEM;
    s->cfg = *cfg;
    if (httpc_parse_url(cfg->endpoint, &s->url) != 0 || strcmp(s->url.path, "/") != 0) {
        free(s);
        return BERR_BAD_REQUEST;
    }
    if (s->url.tls &&
        ((s->tls = SSL_CTX_new(TLS_client_method())) == NULL || SSL_CTX_set_default_verify_paths(s->tls) != 1 ||
         SSL_CTX_set_min_proto_version(s->tls, TLS1_2_VERSION) != 1)) {
        SSL_CTX_free(s->tls);
        free(s);
        return BERR_NOMEM;
    }
    if (s->tls != NULL)
        SSL_CTX_set_verify(s->tls, SSL_VERIFY_PEER, NULL);
    if (cfg->path_style)
        snprintf(s->host, sizeof(s->host), "%s", s->url.authority);
    else
        snprintf(s->host, sizeof(s->host), "%s.%s", cfg->bucket, s->url.authority);
    s->id = atomic_fetch_add(&next_id, 1);
    *out = s;
    return 0;
}

void s3_free(struct s3 *s)
{
    while (s != NULL) {
        struct s3 *older = s->older;
        SSL_CTX_free(s->tls);
        sodium_memzero(s->cfg.secret_key, sizeof(s->cfg.secret_key));
        free(s);
        s = older;
    }
}

void s3_retire(struct s3 *s, struct s3 *older)
{
    struct s3 *last = s;
    while (last->older != NULL)
        last = last->older;
    last->older = older;
}

/* The request target: "/BUCKET/KEY" (path-style) or "/KEY", with `query` after '?'. */
static void build_path(const struct s3 *s, const char *key, struct strbuf *b)
{
    strbuf_str(b, "/");
    if (s->cfg.path_style) {
        buf_enc(b, s->cfg.bucket, 0);
        if (key != NULL)
            strbuf_str(b, "/");
    }
    if (key != NULL)
        buf_enc(b, key, 1);
}

int s3_sign_head(const struct s3 *s, const char *method, const char *key, const char *query, const char *const *extra,
                 size_t nextra, const char *payload_hash, size_t body_len, time_t now, char *out, size_t cap)
{
    struct sigv4_header h[3 + EXTRA_MAX];
    char date[SIGV4_AMZDATE_LEN + 1], authz[SIGV4_AUTHZ_MAX];
    struct strbuf path = {0};
    size_t n = 0;
    int rc, len;
    if (nextra > EXTRA_MAX)
        return BERR_INTERNAL;
    sigv4_format_amzdate(now, date);
    h[n++] = (struct sigv4_header){"host", 4, s->host, strlen(s->host)};
    h[n++] = (struct sigv4_header){"x-amz-date", 10, date, strlen(date)};
    h[n++] = (struct sigv4_header){"x-amz-content-sha256", 20, payload_hash, strlen(payload_hash)};
    for (size_t i = 0; i < nextra; i++) {
        const char *colon = strchr(extra[i], ':'), *v;
        if (colon == NULL)
            return BERR_INTERNAL;
        for (v = colon + 1; *v == ' '; v++)
            ;
        h[n++] = (struct sigv4_header){extra[i], (size_t)(colon - extra[i]), v, strlen(v)};
    }
    build_path(s, key, &path);
    if (path.failed) {
        free(path.p);
        return BERR_NOMEM;
    }
    struct sigv4_request req = {method, path.p, path.len, query, strlen(query), h, n, payload_hash, 0};
    rc = sigv4_sign(&req, s->cfg.access_key, s->cfg.secret_key, strlen(s->cfg.secret_key), s->cfg.region, "s3", authz);
    if (rc < 0) {
        free(path.p);
        return BERR_INTERNAL;
    }
    len = snprintf(out, cap, "%s %s%s%s HTTP/1.1\r\nHost: %s\r\nx-amz-date: %s\r\nx-amz-content-sha256: %s\r\n", method,
                   path.p, query[0] ? "?" : "", query, s->host, date, payload_hash);
    free(path.p);
    for (size_t i = 0; i < nextra && len > 0 && (size_t)len < cap; i++)
        len += snprintf(out + len, cap - (size_t)len, "%s\r\n", extra[i]);
    if (len > 0 && (size_t)len < cap)
        len +=
            snprintf(out + len, cap - (size_t)len, "Authorization: %s\r\nContent-Length: %zu\r\n\r\n", authz, body_len);
    return len > 0 && (size_t)len < cap ? len : BERR_INTERNAL;
}

/* ---- the connection ---- */

static void conn_close(void)
{
    if (tl.ssl != NULL)
        SSL_free(tl.ssl);
    tl.ssl = NULL;
    if (tl.fd >= 0)
        close(tl.fd);
    tl.fd = -1;
    tl.off = tl.len = 0;
}

/* Starts TLS on the new connection, verifying the endpoint's certificate and name.  Returns 0 or BERR_IO. */
static int tls_start(const struct s3 *s)
{
    unsigned char ip[sizeof(struct in6_addr)];
    int literal = inet_pton(AF_INET, s->url.host, ip) == 1 || inet_pton(AF_INET6, s->url.host, ip) == 1;
    if ((tl.ssl = SSL_new(s->tls)) == NULL) {
        conn_close();
        return BERR_NOMEM;
    }
    if (literal) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(tl.ssl), s->url.host);
    } else {
        SSL_set_tlsext_host_name(tl.ssl, s->url.host);
        SSL_set1_host(tl.ssl, s->url.host);
    }
    SSL_set_fd(tl.ssl, tl.fd);
    if (SSL_connect(tl.ssl) != 1) {
        long v = SSL_get_verify_result(tl.ssl);
        log_error("s3: TLS with %s:%s failed%s%s", s->url.host, s->url.port, v != X509_V_OK ? ": " : "",
                  v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
        conn_close();
        return BERR_IO;
    }
    return 0;
}

/* Dials the endpoint.  Returns 0 or BERR_IO. */
static int conn_open(const struct s3 *s)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
    struct timeval tv = {.tv_sec = BERTH_S3_TIMEOUT_MS / 1000, .tv_usec = (BERTH_S3_TIMEOUT_MS % 1000) * 1000};
    int gai = getaddrinfo(s->url.host, s->url.port, &hints, &res), one = 1;
    if (gai != 0) {
        log_error("s3: cannot resolve %s: %s", s->url.host, gai_strerror(gai));
        return BERR_IO;
    }
    if (tl.buf == NULL && (tl.buf = malloc(BERTH_S3_IOBUF)) == NULL) {
        freeaddrinfo(res);
        return BERR_NOMEM;
    }
    pthread_once(&tl_once, tl_key_make);
    pthread_setspecific(tl_key, &tl); /* non-NULL: tl_release runs at this thread's exit */
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            tl.fd = fd;
            tl.owner = s->id;
            tl.off = tl.len = 0;
            break;
        }
        close(fd);
    }
    freeaddrinfo(res);
    if (tl.fd < 0) {
        log_error("s3: cannot connect to %s:%s: %s", s->url.host, s->url.port, strerror(errno));
        return BERR_IO;
    }
    return s->tls != NULL ? tls_start(s) : 0;
}

static int send_all(const void *p, size_t len)
{
    const char *c = p;
    while (len > 0) {
        ssize_t n = tl.ssl != NULL ? SSL_write(tl.ssl, c, (int)(len > (1u << 30) ? 1u << 30 : len))
                                   : send(tl.fd, c, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return BERR_IO;
        c += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Makes sure tl.buf holds unread bytes.  Returns 1, 0 at end of stream, or BERR_IO. */
static int fill(void)
{
    ssize_t n;
    if (tl.off < tl.len)
        return 1;
    do
        n = tl.ssl != NULL ? SSL_read(tl.ssl, tl.buf, BERTH_S3_IOBUF) : recv(tl.fd, tl.buf, BERTH_S3_IOBUF, 0);
    while (n < 0 && tl.ssl == NULL && errno == EINTR);
    if (n < 0)
        return BERR_IO;
    tl.off = 0;
    tl.len = (size_t)n;
    return n > 0;
}

/* Reads one CRLF-terminated line (without it) into `out`.  Returns its length or BERR_IO. */
static int read_line(char *out, size_t cap)
{
    size_t n = 0;
    for (;;) {
        int rc = fill();
        if (rc <= 0)
            return BERR_IO;
        char c = tl.buf[tl.off++];
        if (c == '\n') {
            if (n > 0 && out[n - 1] == '\r')
                n--;
            out[n] = '\0';
            return (int)n;
        }
        if (n + 1 >= cap)
            return BERR_IO;
        out[n++] = c;
    }
}

/* ---- one exchange ---- */

struct call {
    const char *method;
    const char *key;   /* NULL: the bucket */
    const char *query; /* encoded, "" for none */
    const char *extra[EXTRA_MAX];
    size_t nextra;
    const void *body;
    size_t body_len;
    int sign_body; /* the real SHA-256 instead of UNSIGNED-PAYLOAD */
    int (*sink)(void *ctx, const void *p, size_t n);
    void *ctx;
    /* results */
    int status;
    uint64_t length;
    char etag[S3_ETAG_MAX + 1];
    struct strbuf text; /* a body not given to `sink` (XML answers, errors), up to BERTH_S3_XML_MAX */
    int sink_rc;
    int cut_tried; /* the fault point s3.get_cut was passed (once per answer) */
};

/* Hands body bytes to the sink (2xx with a sink) or keeps them in c->text. */
static int deliver(struct call *c, const char *p, size_t n)
{
    if (c->sink != NULL && c->status / 100 == 2) {
        if (c->sink_rc == 0)
            c->sink_rc = c->sink(c->ctx, p, n);
        return 0;
    }
    if (c->text.len + n > BERTH_S3_XML_MAX)
        return BERR_IO;
    strbuf_add(&c->text, p, n);
    return c->text.failed ? BERR_NOMEM : 0;
}

/* Reads exactly `left` body bytes. */
static int read_fixed(struct call *c, uint64_t left)
{
    while (left > 0) {
        int rc = fill();
        if (rc <= 0)
            return BERR_IO;
        size_t n = tl.len - tl.off;
        if (n > left)
            n = (size_t)left;
        if ((rc = deliver(c, tl.buf + tl.off, n)) != 0)
            return rc;
        tl.off += n;
        left -= n;
        if (left > 0 && c->sink != NULL && c->status / 100 == 2 && !c->cut_tried) {
            c->cut_tried = 1; /* tests: the answer to a GET cut off after its first bytes (a dropped connection) */
            if (FAULT_FAIL("s3.get_cut"))
                return BERR_IO;
        }
    }
    return 0;
}

static int read_chunked(struct call *c)
{
    char line[128];
    for (;;) {
        char *end;
        unsigned long long size;
        int rc;
        if (read_line(line, sizeof(line)) < 0)
            return BERR_IO;
        size = strtoull(line, &end, 16);
        if (end == line)
            return BERR_IO;
        if (size == 0) {
            while ((rc = read_line(line, sizeof(line))) > 0) /* trailers */
                ;
            return rc < 0 ? BERR_IO : 0;
        }
        if ((rc = read_fixed(c, size)) != 0 || read_line(line, sizeof(line)) != 0)
            return rc != 0 ? rc : BERR_IO;
    }
}

/* Reads the status line and headers.  Sets *length (or UINT64_MAX), *chunked, *keep.  Returns 0 or BERR_IO. */
static int read_head(struct call *c, uint64_t *length, int *chunked, int *keep)
{
    char line[RESP_HEAD_MAX];
    int n;
    *length = UINT64_MAX;
    *chunked = 0;
    *keep = 1;
    if ((n = read_line(line, sizeof(line))) < 12 || strncmp(line, "HTTP/1.", 7) != 0)
        return BERR_IO;
    c->status = atoi(line + 9);
    if (line[7] == '0')
        *keep = 0;
    while ((n = read_line(line, sizeof(line))) > 0) {
        char *colon = strchr(line, ':'), *v;
        if (colon == NULL)
            continue;
        *colon = '\0';
        for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
            ;
        if (strcasecmp(line, "content-length") == 0)
            *length = strtoull(v, NULL, 10);
        else if (strcasecmp(line, "transfer-encoding") == 0 && strcasestr(v, "chunked") != NULL)
            *chunked = 1;
        else if (strcasecmp(line, "connection") == 0 && strcasecmp(v, "close") == 0)
            *keep = 0;
        else if (strcasecmp(line, "etag") == 0)
            snprintf(c->etag, sizeof(c->etag), "%s", v);
    }
    return n < 0 ? BERR_IO : 0;
}

/* Reads the answer to the request just sent.  Returns 0 (any status) or BERR_IO; `*got_any` tells whether a byte
 * of the answer arrived (a request may be re-sent on a fresh connection only when not). */
static int read_answer(struct call *c, int *got_any)
{
    uint64_t length;
    int chunked, keep, rc;
    *got_any = 0;
    if ((rc = fill()) <= 0)
        return BERR_IO;
    *got_any = 1;
    if ((rc = read_head(c, &length, &chunked, &keep)) != 0)
        return rc;
    c->length = length;
    if (strcmp(c->method, "HEAD") == 0 || c->status == 204 || c->status == 304 || c->status / 100 == 1)
        rc = 0;
    else if (chunked)
        rc = read_chunked(c);
    else if (length != UINT64_MAX)
        rc = read_fixed(c, length);
    else { /* until the server closes */
        while ((rc = fill()) > 0) {
            if ((rc = deliver(c, tl.buf + tl.off, tl.len - tl.off)) != 0)
                break;
            tl.off = tl.len;
        }
        keep = 0;
    }
    if (rc != 0 || !keep)
        conn_close();
    return rc;
}

/* Sends `c` and reads its answer, re-dialling once when a reused connection turns out closed. */
static int exchange(struct s3 *s, struct call *c)
{
    char head[HEAD_MAX], hash[SIGV4_HEX_LEN + 1];
    const char *ph = SIGV4_UNSIGNED;
    int len, rc = BERR_IO;
    if (c->sign_body) {
        sigv4_sha256_hex(c->body != NULL ? c->body : "", c->body_len, hash);
        ph = hash;
    }
    len = s3_sign_head(s, c->method, c->key, c->query, c->extra, c->nextra, ph, c->body_len, time(NULL), head,
                       sizeof(head));
    if (len < 0)
        return len;
    if (tl.fd >= 0 && tl.owner != s->id)
        conn_close();
    for (int attempt = 0; attempt < 2; attempt++) {
        int reused = tl.fd >= 0, got_any = 0;
        if (!reused && (rc = conn_open(s)) != 0)
            return rc;
        rc = send_all(head, (size_t)len);
        if (rc == 0 && c->body_len > 0)
            rc = send_all(c->body, c->body_len);
        if (rc == 0)
            rc = read_answer(c, &got_any);
        if (rc == 0)
            return 0;
        conn_close();
        if (!reused || got_any)
            break;
    }
    return rc;
}

/* ---- XML answers ---- */

/* Parses "2026-11-29T20:40:28.906Z" (seconds precision). */
static time_t parse_iso(const char *s)
{
    struct tm tm = {0};
    if (sscanf(s, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

/* Finds the next "<tag>…</tag>" at or after `p`, copies its text (entities decoded) into `out`.  Returns a pointer
 * past the element, or NULL. */
static const char *xml_get(const char *p, const char *tag, char *out, size_t cap)
{
    char open[64], close_[64];
    const char *a, *b;
    size_t o = 0;
    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close_, sizeof(close_), "</%s>", tag);
    if (p == NULL || (a = strstr(p, open)) == NULL)
        return NULL;
    a += strlen(open);
    if ((b = strstr(a, close_)) == NULL)
        return NULL;
    static const struct {
        const char *ent;
        char c;
    } ents[] = {{"&quot;", '"'}, {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&apos;", '\''}, {"&#34;", '"'}};
    while (a < b && o + 1 < cap) {
        size_t i, n = sizeof(ents) / sizeof(ents[0]);
        for (i = 0; i < n; i++)
            if (*a == '&' && strncmp(a, ents[i].ent, strlen(ents[i].ent)) == 0)
                break;
        if (i < n) {
            out[o++] = ents[i].c;
            a += strlen(ents[i].ent);
        } else {
            out[o++] = *a++;
        }
    }
    out[o] = '\0';
    return b + strlen(close_);
}

/* Maps a finished exchange to a BERR code, logging S3's error. */
static int status_rc(const struct call *c, int ok_status)
{
    char code[128] = "", msg[256] = "";
    if (c->status == ok_status || (ok_status == 200 && c->status / 100 == 2))
        return 0;
    if (c->text.p != NULL) {
        xml_get(c->text.p, "Code", code, sizeof(code));
        xml_get(c->text.p, "Message", msg, sizeof(msg));
    }
    if (c->status == 404 && (strcmp(code, "NoSuchKey") == 0 || (code[0] == '\0' && c->key != NULL)))
        return BERR_BLOB_UNKNOWN;
    if (c->status == 404 && strcmp(code, "NoSuchUpload") == 0)
        return BERR_BLOB_UPLOAD_UNKNOWN;
    if (c->status == 416)
        return BERR_RANGE_UNSATISFIABLE;
    if (strcmp(code, "QuotaExceeded") == 0 || c->status == 507) { /* a bucket/user quota, or the cluster is full */
        log_warn("s3: %s %s: HTTP %d %s: out of space", c->method, c->key ? c->key : "(bucket)", c->status,
                 code[0] ? code : "-");
        return BERR_NOSPACE;
    }
    log_error("s3: %s %s%s%s: HTTP %d %s %s", c->method, c->key ? c->key : "(bucket)", c->query[0] ? "?" : "",
              c->query[0] && strstr(c->query, "X-Amz") == NULL ? c->query : "", c->status, code[0] ? code : "-", msg);
    return BERR_IO;
}

/* Runs `c` and maps its status; frees c->text unless `keep_text`. */
static int run(struct s3 *s, struct call *c, int ok_status, int keep_text)
{
    int rc = exchange(s, c);
    if (rc != 0)
        log_error("s3: %s %s: %s", c->method, c->key ? c->key : "(bucket)",
                  c->text.failed ? "out of memory" : "no valid answer from the endpoint");
    else if (c->text.failed)
        rc = BERR_NOMEM;
    else
        rc = status_rc(c, ok_status);
    if (rc == 0 && c->sink_rc != 0)
        rc = c->sink_rc;
    if (!keep_text || rc != 0) {
        free(c->text.p);
        c->text.p = NULL;
    }
    return rc;
}

/* ---- objects ---- */

int s3_put(struct s3 *s, const char *key, const void *data, size_t len)
{
    struct call c = {.method = "PUT", .key = key, .query = "", .body = data, .body_len = len};
    return run(s, &c, 200, 0);
}

int s3_get(struct s3 *s, const char *key, uint64_t off, uint64_t len, int (*sink)(void *ctx, const void *p, size_t n),
           void *ctx)
{
    char range[96];
    struct call c = {.method = "GET", .key = key, .query = "", .sink = sink, .ctx = ctx};
    if (off > 0 || len > 0) {
        if (len > 0)
            snprintf(range, sizeof(range), "range: bytes=%" PRIu64 "-%" PRIu64, off, off + len - 1);
        else
            snprintf(range, sizeof(range), "range: bytes=%" PRIu64 "-", off);
        c.extra[c.nextra++] = range;
    }
    return run(s, &c, 200, 0);
}

int s3_head(struct s3 *s, const char *key, uint64_t *size)
{
    struct call c = {.method = "HEAD", .key = key, .query = ""};
    int rc = run(s, &c, 200, 0);
    if (rc == 0)
        *size = c.length == UINT64_MAX ? 0 : c.length;
    return rc;
}

int s3_delete(struct s3 *s, const char *key)
{
    struct call c = {.method = "DELETE", .key = key, .query = ""};
    int rc = run(s, &c, 204, 0);
    return rc == BERR_BLOB_UNKNOWN ? 0 : rc;
}

int s3_copy(struct s3 *s, const char *src, const char *dst)
{
    struct strbuf h = {0};
    struct call c = {.method = "PUT", .key = dst, .query = ""};
    int rc;
    strbuf_str(&h, "x-amz-copy-source: /");
    buf_enc(&h, s->cfg.bucket, 0);
    strbuf_str(&h, "/");
    buf_enc(&h, src, 1);
    if (h.failed)
        return BERR_NOMEM;
    c.extra[c.nextra++] = h.p;
    rc = run(s, &c, 200, 1);
    /* a copy can fail after its 200 has been sent: the body is then an <Error> */
    if (rc == 0 && c.text.p != NULL && strstr(c.text.p, "<Error>") != NULL) {
        c.status = 500;
        rc = status_rc(&c, 200);
    }
    free(c.text.p);
    free(h.p);
    return rc;
}

/* ---- multipart uploads ---- */

int s3_mpu_create(struct s3 *s, const char *key, char *upload_id)
{
    struct call c = {.method = "POST", .key = key, .query = "uploads="};
    int rc = run(s, &c, 200, 1);
    if (rc == 0 && xml_get(c.text.p, "UploadId", upload_id, S3_UPLOAD_ID_MAX + 1) == NULL) {
        log_error("s3: POST %s?uploads: no UploadId in the answer", key);
        rc = BERR_IO;
    }
    free(c.text.p);
    return rc;
}

/* "partNumber=N&uploadId=ID" (or just the id), encoded, into `b`. */
static void upload_query(struct strbuf *b, int number, const char *upload_id)
{
    char n[32];
    if (number > 0) {
        snprintf(n, sizeof(n), "partNumber=%d&", number);
        strbuf_str(b, n);
    }
    strbuf_str(b, "uploadId=");
    buf_enc(b, upload_id, 0);
}

int s3_mpu_part(struct s3 *s, const char *key, const char *upload_id, int number, const void *data, size_t len,
                char *etag)
{
    struct strbuf q = {0};
    struct call c = {.method = "PUT", .key = key, .body = data, .body_len = len};
    int rc;
    upload_query(&q, number, upload_id);
    if (q.failed)
        return BERR_NOMEM;
    c.query = q.p;
    rc = run(s, &c, 200, 0);
    if (rc == 0 && c.etag[0] == '\0') {
        log_error("s3: part %d of %s: no ETag in the answer", number, key);
        rc = BERR_IO;
    }
    if (rc == 0)
        memcpy(etag, c.etag, sizeof(c.etag));
    free(q.p);
    return rc;
}

int s3_mpu_part_copy(struct s3 *s, const char *src, const char *key, const char *upload_id, int number, uint64_t off,
                     uint64_t len, char *etag)
{
    struct strbuf q = {0}, h = {0};
    struct call c = {.method = "PUT", .key = key};
    char range[96], tag[S3_ETAG_MAX + 1];
    int rc;
    if (len == 0)
        return BERR_INTERNAL;
    upload_query(&q, number, upload_id);
    strbuf_str(&h, "x-amz-copy-source: /");
    buf_enc(&h, s->cfg.bucket, 0);
    strbuf_str(&h, "/");
    buf_enc(&h, src, 1);
    if (q.failed || h.failed) {
        free(q.p);
        free(h.p);
        return BERR_NOMEM;
    }
    snprintf(range, sizeof(range), "x-amz-copy-source-range: bytes=%" PRIu64 "-%" PRIu64, off, off + len - 1);
    c.query = q.p;
    c.extra[c.nextra++] = h.p;
    c.extra[c.nextra++] = range;
    rc = run(s, &c, 200, 1);
    if (rc == 0 && c.text.p != NULL && strstr(c.text.p, "<Error>") != NULL) { /* failed after its 200 */
        c.status = 500;
        rc = status_rc(&c, 200);
    }
    if (rc == 0 && (c.text.p == NULL || xml_get(c.text.p, "ETag", tag, sizeof(tag)) == NULL || tag[0] == '\0')) {
        log_error("s3: copy part %d of %s: no ETag in the answer", number, key);
        rc = BERR_IO;
    }
    if (rc == 0)
        memcpy(etag, tag, sizeof(tag));
    free(c.text.p);
    free(q.p);
    free(h.p);
    return rc;
}

int s3_mpu_complete(struct s3 *s, const char *key, const char *upload_id, const struct s3_part *parts, size_t n)
{
    struct strbuf q = {0}, body = {0};
    struct call c = {.method = "POST", .key = key, .sign_body = 1};
    char line[S3_ETAG_MAX + 96];
    int rc;
    upload_query(&q, 0, upload_id);
    strbuf_str(&body, "<CompleteMultipartUpload>");
    for (size_t i = 0; i < n; i++) {
        snprintf(line, sizeof(line), "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", parts[i].number,
                 parts[i].etag);
        strbuf_str(&body, line);
    }
    strbuf_str(&body, "</CompleteMultipartUpload>");
    if (q.failed || body.failed) {
        free(q.p);
        free(body.p);
        return BERR_NOMEM;
    }
    c.query = q.p;
    c.body = body.p;
    c.body_len = body.len;
    rc = run(s, &c, 200, 1);
    if (rc == 0 && c.text.p != NULL && strstr(c.text.p, "<Error>") != NULL) { /* failed after its 200 */
        c.status = 500;
        rc = status_rc(&c, 200);
    }
    free(c.text.p);
    free(q.p);
    free(body.p);
    return rc;
}

int s3_mpu_abort(struct s3 *s, const char *key, const char *upload_id)
{
    struct strbuf q = {0};
    struct call c = {.method = "DELETE", .key = key};
    int rc;
    upload_query(&q, 0, upload_id);
    if (q.failed)
        return BERR_NOMEM;
    c.query = q.p;
    rc = run(s, &c, 204, 0);
    free(q.p);
    return rc == BERR_BLOB_UPLOAD_UNKNOWN || rc == BERR_BLOB_UNKNOWN ? 0 : rc;
}

/* One page of a listing: `query` is complete; `each` parses one <elem>; *next gets the continuation value. */
static int list_page(struct s3 *s, const char *query, const char *elem, int (*each)(void *ctx, const char *xml),
                     void *ctx, const char *next_tag, char *next, size_t next_cap)
{
    struct call c = {.method = "GET", .query = query};
    char open[64], close_[64], trunc[16] = "";
    const char *p;
    int rc = run(s, &c, 200, 1);
    if (rc != 0)
        return rc;
    next[0] = '\0'; /* read before the elements are cut out of the text below */
    xml_get(c.text.p, "IsTruncated", trunc, sizeof(trunc));
    if (strcmp(trunc, "true") == 0)
        xml_get(c.text.p, next_tag, next, next_cap);
    snprintf(open, sizeof(open), "<%s>", elem);
    snprintf(close_, sizeof(close_), "</%s>", elem);
    for (p = c.text.p; rc == 0 && (p = strstr(p, open)) != NULL;) {
        char *end = strstr(p, close_);
        if (end == NULL)
            break;
        *end = '\0';
        rc = each(ctx, p);
        p = end + 1;
    }
    free(c.text.p);
    return rc;
}

struct list_ctx {
    int (*obj)(void *ctx, const char *key, uint64_t size, time_t mtime);
    int (*mpu)(void *ctx, const char *key, const char *upload_id, time_t initiated);
    void *ctx;
    char last_key[S3_KEY_MAX + 1];
};

static int each_object(void *arg, const char *xml)
{
    struct list_ctx *l = arg;
    char key[S3_KEY_MAX + 1], size[32], when[64] = "";
    if (xml_get(xml, "Key", key, sizeof(key)) == NULL || xml_get(xml, "Size", size, sizeof(size)) == NULL)
        return 0;
    xml_get(xml, "LastModified", when, sizeof(when));
    return l->obj(l->ctx, key, strtoull(size, NULL, 10), parse_iso(when));
}

int s3_list(struct s3 *s, const char *prefix, int (*fn)(void *ctx, const char *key, uint64_t size, time_t mtime),
            void *ctx)
{
    struct list_ctx l = {.obj = fn, .ctx = ctx};
    char token[S3_KEY_MAX + 1] = "";
    int rc;
    do {
        struct strbuf q = {0};
        if (token[0]) {
            strbuf_str(&q, "continuation-token=");
            buf_enc(&q, token, 0);
            strbuf_str(&q, "&");
        }
        strbuf_str(&q, "list-type=2&prefix=");
        buf_enc(&q, prefix, 0);
        if (q.failed)
            return BERR_NOMEM;
        rc = list_page(s, q.p, "Contents", each_object, &l, "NextContinuationToken", token, sizeof(token));
        free(q.p);
    } while (rc == 0 && token[0]);
    return rc;
}

static int each_upload(void *arg, const char *xml)
{
    struct list_ctx *l = arg;
    char key[S3_KEY_MAX + 1], id[S3_UPLOAD_ID_MAX + 1], when[64] = "";
    if (xml_get(xml, "Key", key, sizeof(key)) == NULL || xml_get(xml, "UploadId", id, sizeof(id)) == NULL)
        return 0;
    xml_get(xml, "Initiated", when, sizeof(when));
    return l->mpu(l->ctx, key, id, parse_iso(when));
}

int s3_mpu_list(struct s3 *s, const char *prefix,
                int (*fn)(void *ctx, const char *key, const char *upload_id, time_t initiated), void *ctx)
{
    struct list_ctx l = {.mpu = fn, .ctx = ctx};
    char key_marker[S3_KEY_MAX + 1] = "", id_marker[S3_UPLOAD_ID_MAX + 1] = "";
    int rc;
    for (;;) {
        struct strbuf q = {0};
        char next[S3_KEY_MAX + 1];
        if (key_marker[0]) {
            strbuf_str(&q, "key-marker=");
            buf_enc(&q, key_marker, 0);
            strbuf_str(&q, "&");
        }
        strbuf_str(&q, "prefix=");
        buf_enc(&q, prefix, 0);
        if (id_marker[0]) {
            strbuf_str(&q, "&upload-id-marker=");
            buf_enc(&q, id_marker, 0);
        }
        strbuf_str(&q, "&uploads=");
        if (q.failed)
            return BERR_NOMEM;
        rc = list_page(s, q.p, "Upload", each_upload, &l, "NextKeyMarker", next, sizeof(next));
        free(q.p);
        if (rc != 0 || next[0] == '\0')
            return rc;
        snprintf(key_marker, sizeof(key_marker), "%s", next);
        id_marker[0] = '\0'; /* NextUploadIdMarker would refine it; key granularity is enough for cleanup */
    }
}

int s3_check(struct s3 *s)
{
    struct call c = {.method = "GET", .query = "list-type=2&max-keys=1"};
    return run(s, &c, 200, 0);
}

/* ---- presigned URLs ---- */

int s3_presign_get(const struct s3 *s, const char *key, time_t now, long expires, char *out, size_t cap)
{
    struct sigv4_header h = {"host", 4, s->host, strlen(s->host)};
    struct strbuf path = {0};
    char query[SIGV4_AUTHZ_MAX];
    int rc, n;
    build_path(s, key, &path);
    if (path.failed)
        return BERR_NOMEM;
    struct sigv4_request req = {"GET", path.p, path.len, "", 0, &h, 1, SIGV4_UNSIGNED, 0};
    rc = sigv4_presign(&req, s->cfg.access_key, s->cfg.secret_key, strlen(s->cfg.secret_key), s->cfg.region, "s3", now,
                       expires, query, sizeof(query));
    if (rc == 0) {
        n = snprintf(out, cap, "%s://%s%s?%s", s->url.tls ? "https" : "http", s->host, path.p, query);
        rc = n > 0 && (size_t)n < cap ? 0 : BERR_INTERNAL;
    } else {
        rc = BERR_INTERNAL;
    }
    free(path.p);
    return rc;
}
