/* s3_conn.c - the transport of the S3 client (s3.h): one keep-alive HTTP/1.1 connection (TCP or TLS) per thread,
 * and one signed request sent over it with its answer read back. */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <sys/time.h>
#include <unistd.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "defaults.h"
#include "err.h"
#include "fault.h"
#include "log.h"
#include "s3.h"
#include "s3_internal.h"
#include "strbuf.h"
#include "sigv4.h"

#define HEAD_MAX 8192       /* request head we build (path, signature, a few headers) */
#define RESP_HEAD_MAX 16384 /* response head we accept */

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
        if (left >= 2 && c->sink != NULL && c->status / 100 == 2 && !c->cut_tried) {
            c->cut_tried = 1; /* tests: a GET's answer cut off mid-body (a dropped connection): half of this read */
            if (FAULT_FAIL("s3.get_cut"))
                return (rc = deliver(c, tl.buf + tl.off, n > 1 ? n / 2 : n)) != 0 ? rc : BERR_IO;
        }
        if ((rc = deliver(c, tl.buf + tl.off, n)) != 0)
            return rc;
        tl.off += n;
        left -= n;
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
int s3__exchange(struct s3 *s, struct call *c)
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
