/*
 * httpc.h - a small blocking HTTP/1.1 client for webhook deliveries: one POST per connection
 * (`Connection: close`), http:// on plain sockets and https:// through OpenSSL (certificate and host name verified
 * against the system's CA store).  No redirects, no proxies, no chunked request bodies.  Every step (name lookup
 * excepted: getaddrinfo has no deadline), connect, send and reading the status line, is bounded by a timeout.
 */
#ifndef BERTH_HTTPC_H
#define BERTH_HTTPC_H

#include <stddef.h>

#define HTTPC_HOST_MAX 255
#define HTTPC_PATH_MAX 1024

struct httpc_url {
    int tls;                             /* https */
    char host[HTTPC_HOST_MAX + 1];       /* without brackets for IPv6 */
    char port[8];                        /* "80" / "443" by default */
    char path[HTTPC_PATH_MAX + 1];       /* "/" at least, with the query */
    char authority[HTTPC_HOST_MAX + 10]; /* the Host header */
};

/** Parses an http:// or https:// URL.  Returns 0 or BERR_BAD_REQUEST (also for user:password@ parts). */
int httpc_parse_url(const char *url, struct httpc_url *out);

/** POSTs `body` to `u` with extra header lines `headers` ("Name: value", no CRLF), waiting at most `timeout_ms` per
 *  step.  On an answer sets *status (e.g. 200) and returns 0; returns BERR_IO when the receiver cannot be reached
 *  or answers no valid status line in time (`err` then says why). */
int httpc_post(const struct httpc_url *u, const char *const *headers, size_t nheaders, const void *body, size_t len,
               int timeout_ms, int *status, char *err, size_t errlen);

#endif
