/* httpc.c - the webhook client of httpc.h: one POST per connection over a socket, or OpenSSL for https. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "defaults.h"
#include "err.h"
#include "httpc.h"

int httpc_parse_url(const char *url, struct httpc_url *out)
{
    const char *p, *host_end, *path;
    size_t hl;
    memset(out, 0, sizeof(*out));
    if (strncmp(url, "http://", 7) == 0)
        p = url + 7;
    else if (strncmp(url, "https://", 8) == 0) {
        p = url + 8;
        out->tls = 1;
    } else
        return BERR_BAD_REQUEST;
    path = p + strcspn(p, "/?#");
    if (memchr(p, '@', (size_t)(path - p)) != NULL || path == p)
        return BERR_BAD_REQUEST;
    if (*p == '[') { /* [IPv6]:port */
        const char *rb = memchr(p, ']', (size_t)(path - p));
        if (rb == NULL)
            return BERR_BAD_REQUEST;
        hl = (size_t)(rb - p - 1);
        if (hl == 0 || hl > HTTPC_HOST_MAX)
            return BERR_BAD_REQUEST;
        memcpy(out->host, p + 1, hl);
        host_end = rb + 1;
    } else {
        host_end = memchr(p, ':', (size_t)(path - p));
        if (host_end == NULL)
            host_end = path;
        hl = (size_t)(host_end - p);
        if (hl == 0 || hl > HTTPC_HOST_MAX)
            return BERR_BAD_REQUEST;
        memcpy(out->host, p, hl);
    }
    if (host_end < path) {
        size_t pl = (size_t)(path - host_end - 1);
        if (*host_end != ':' || pl == 0 || pl >= sizeof(out->port) || strspn(host_end + 1, "0123456789") < pl)
            return BERR_BAD_REQUEST;
        memcpy(out->port, host_end + 1, pl);
    } else
        snprintf(out->port, sizeof(out->port), "%s", out->tls ? "443" : "80");
    if (*path == '#')
        path = "";
    if (strlen(path) + 1 > HTTPC_PATH_MAX)
        return BERR_BAD_REQUEST;
    snprintf(out->path, sizeof(out->path), "%s%.*s", *path == '/' ? "" : "/", (int)strcspn(path, "#"), path);
    snprintf(out->authority, sizeof(out->authority), "%.*s", (int)(path - p), p);
    return 0;
}

/* Connects to `u` within `timeout_ms`.  Returns the socket (blocking, with send/receive timeouts) or -1. */
static int dial(const struct httpc_url *u, int timeout_ms, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    int fd = -1, gai = getaddrinfo(u->host, u->port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", u->host, gai_strerror(gai));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        struct pollfd pfd;
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol)) < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS)
            soerr = errno;
        else {
            pfd = (struct pollfd){.fd = fd, .events = POLLOUT};
            if (poll(&pfd, 1, timeout_ms) != 1)
                soerr = ETIMEDOUT;
            else
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        }
        if (soerr == 0) {
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            break;
        }
        snprintf(err, errlen, "cannot connect to %s:%s: %s", u->host, u->port, strerror(soerr));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* A connection: a socket, optionally wrapped in TLS. */
struct conn {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
};

static int is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static int conn_tls(struct conn *c, const struct httpc_url *u, char *err, size_t errlen)
{
    if ((c->ctx = SSL_CTX_new(TLS_client_method())) == NULL || SSL_CTX_set_default_verify_paths(c->ctx) != 1 ||
        SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION) != 1 || (c->ssl = SSL_new(c->ctx)) == NULL) {
        snprintf(err, errlen, "cannot set up TLS");
        return -1;
    }
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    SSL_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
    if (is_ip_literal(u->host)) /* an IP address: matched against the certificate's IP SANs, and no SNI */
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), u->host);
    else {
        SSL_set_tlsext_host_name(c->ssl, u->host);
        SSL_set1_host(c->ssl, u->host);
    }
    SSL_set_fd(c->ssl, c->fd);
    if (SSL_connect(c->ssl) != 1) {
        char buf[200];
        ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
        snprintf(err, errlen, "TLS handshake with %s failed: %s", u->host, buf);
        return -1;
    }
    return 0;
}

static void conn_close(struct conn *c)
{
    if (c->ssl != NULL) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
}

static int conn_write(struct conn *c, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = c->ssl != NULL ? SSL_write(c->ssl, p, (int)(len > (1u << 30) ? 1u << 30 : len))
                                   : send(c->fd, p, len, MSG_NOSIGNAL);
        if (n <= 0) {
            if (c->ssl == NULL && n < 0 && errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static ssize_t conn_read(struct conn *c, void *buf, size_t len)
{
    if (c->ssl != NULL)
        return SSL_read(c->ssl, buf, (int)len);
    for (;;) {
        ssize_t n = recv(c->fd, buf, len, 0);
        if (n >= 0 || errno != EINTR)
            return n;
    }
}

/* Reads until the status line is complete and parses its code. */
static int read_status(struct conn *c, int *status, char *err, size_t errlen)
{
    char buf[BERTH_WEBHOOK_RESPONSE_MAX + 1];
    size_t got = 0;
    while (got < sizeof(buf) - 1) {
        ssize_t n = conn_read(c, buf + got, sizeof(buf) - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = '\0';
        if (strstr(buf, "\r\n") != NULL)
            break;
    }
    buf[got] = '\0';
    if (got < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ' || sscanf(buf + 9, "%3d", status) != 1) {
        snprintf(err, errlen, "no HTTP status line in time from the receiver (%zu bytes)", got);
        return BERR_IO;
    }
    return 0;
}

int httpc_post(const struct httpc_url *u, const char *const *headers, size_t nheaders, const void *body, size_t len,
               int timeout_ms, int *status, char *err, size_t errlen)
{
    struct conn c = {.fd = dial(u, timeout_ms, err, errlen)};
    char *head = NULL;
    size_t hlen = 0;
    FILE *f;
    int rc = BERR_IO;
    if (c.fd < 0)
        return BERR_IO;
    if (u->tls && conn_tls(&c, u, err, errlen) != 0)
        goto out;
    if ((f = open_memstream(&head, &hlen)) == NULL)
        goto out;
    fprintf(f, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %zu\r\nConnection: close\r\n", u->path, u->authority,
            len);
    for (size_t i = 0; i < nheaders; i++)
        fprintf(f, "%s\r\n", headers[i]);
    fputs("\r\n", f);
    fclose(f);
    if (conn_write(&c, head, hlen) != 0 || conn_write(&c, body, len) != 0) {
        snprintf(err, errlen, "cannot send to %s:%s: %s", u->host, u->port, strerror(errno));
        goto out;
    }
    rc = read_status(&c, status, err, errlen);
out:
    free(head);
    conn_close(&c);
    return rc;
}
