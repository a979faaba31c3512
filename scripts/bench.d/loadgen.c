/*
 * loadgen.c - the load generator of scripts/bench (not part of Berth).
 *
 * Speaks the OCI distribution push/pull protocol over plain HTTP/1.1 with
 * keep-alive, one blocking socket per client thread. Every response is
 * checked; on any unexpected answer the failing request and the full
 * response (status line, headers, first bytes of the body) are printed and
 * the process exits 1.
 *
 * Built by scripts/bench:  cc -O2 -pthread loadgen.c -o loadgen -lcrypto
 *
 * Commands (all take -H host -P port):
 *   push-small -r REPO -n IMAGES -c CLIENTS -o INFOFILE
 *       unique images (config + 4 KiB random layer + OCI manifest), real push
 *       protocol; prints images/s and per-image latency p50/p99.
 *   push-blob -r REPO -f FILE -d sha256:HEX -m mono|chunked [-l MB/s] [-k CHUNK]
 *       one blob: POST + PUT ?digest= with the body (mono), or POST + one
 *       PATCH with Transfer-Encoding: chunked + empty PUT ?digest= (chunked).
 *   push-many -r REPO -f FILE:DIGEST [-f FILE:DIGEST ...]
 *       one thread per file, each a mono push; aggregate MB/s.
 *   pull-blob -r REPO -d sha256:HEX -s SIZE
 *       GET the blob, verify length and digest; MB/s.
 *   hammer -X GET|HEAD -u PATH [-a ACCEPT] [-d EXPECTED-DIGEST] -c CONNS -t SECONDS
 *       closed-loop keep-alive request loop, one thread per connection,
 *       every response must be 200 (and carry the digest if -d); req/s,
 *       p50/p99. Used for HEAD, which wrk 4.1 cannot measure (it waits for a
 *       body after a HEAD response and hangs).
 *   sample PID OUTFILE
 *       every 20 ms read /proc/PID/status, keep max RssAnon and VmRSS
 *       (overall and since the last SIGUSR1), max RssFile/RssShmem, and
 *       VmHWM; rewrite OUTFILE (KEY=VALUE lines, KiB) each tick. SIGUSR1
 *       also resets the kernel's VmHWM to the current RSS (writing 5 to
 *       /proc/PID/clear_refs), so HWM_WIN_KB is the exact peak RSS since
 *       then (not a sample); HWM_KB stays the whole run's peak.
 *
 * Results are printed on stdout as one line: "RESULT key=value ...".
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *g_host = "127.0.0.1";
static int g_port = 5000;
static pthread_mutex_t g_errlock = PTHREAD_MUTEX_INITIALIZER;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&g_errlock);
    fprintf(stderr, "\n!!! BENCH ERROR (loadgen): ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    fflush(stderr);
    _exit(1);
}

/* ------------------------------------------------------------------ */
/* HTTP/1.1 client                                                     */

#define RBUF (256 * 1024)
#define BIGBUF (1024 * 1024)
#define CAPTURE_MAX (1024 * 1024)

typedef struct {
    int fd;
    long nreq; /* requests sent on this connection */
    char *rbuf;
    size_t roff, rlen;
    char *big;
} conn_t;

typedef struct {
    int status;
    char status_line[512];
    char headers[16384]; /* raw header block, for error reports */
    char location[4096];
    char digest[160];
    char content_range[160];
    long long content_length; /* -1 if absent */
    int chunked, close;
    char *body; /* captured (when not hashing) up to CAPTURE_MAX */
    size_t body_len;
    long long nbytes; /* body bytes received */
    char err[512];    /* transport error, if any */
} resp_t;

static void resp_reset(resp_t *r)
{
    char *b = r->body;
    memset(r, 0, sizeof(*r));
    r->body = b;
    r->body_len = 0;
    r->content_length = -1;
}

static void resp_free(resp_t *r)
{
    free(r->body);
    r->body = NULL;
}

static void conn_init(conn_t *c)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->rbuf = malloc(RBUF);
    c->big = malloc(BIGBUF);
    if (!c->rbuf || !c->big)
        die("out of memory");
}

static void conn_close(conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->roff = c->rlen = 0;
    c->nreq = 0;
}

static void conn_free(conn_t *c)
{
    conn_close(c);
    free(c->rbuf);
    free(c->big);
}

static void conn_open(conn_t *c)
{
    struct sockaddr_in sa;
    int one = 1;
    conn_close(c);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)g_port);
    if (inet_pton(AF_INET, g_host, &sa.sin_addr) != 1)
        die("bad host %s (IPv4 literal expected)", g_host);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        die("socket: %s", strerror(errno));
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        die("connect %s:%d: %s", g_host, g_port, strerror(errno));
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read more bytes into rbuf; returns bytes read, 0 on EOF, -1 on error. */
static ssize_t conn_fill(conn_t *c)
{
    ssize_t n;
    if (c->roff == c->rlen)
        c->roff = c->rlen = 0;
    if (c->rlen == RBUF) {
        if (c->roff == 0)
            return -2; /* buffer full */
        memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
        c->rlen -= c->roff;
        c->roff = 0;
    }
    do
        n = recv(c->fd, c->rbuf + c->rlen, RBUF - c->rlen, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        c->rlen += (size_t)n;
    return n;
}

static void body_sink(resp_t *r, EVP_MD_CTX *h, const char *p, size_t n)
{
    size_t cap = h ? 4096 : CAPTURE_MAX; /* hashed bodies: keep only the start, for error reports */
    r->nbytes += (long long)n;
    if (h)
        EVP_DigestUpdate(h, p, n);
    if (r->body_len < cap) {
        size_t take = n;
        if (take > cap - r->body_len)
            take = cap - r->body_len;
        if (!r->body)
            r->body = malloc(CAPTURE_MAX + 1);
        memcpy(r->body + r->body_len, p, take);
        r->body_len += take;
        r->body[r->body_len] = 0;
    }
}

/* Read exactly n body bytes into the sink. */
static int read_exact(conn_t *c, resp_t *r, EVP_MD_CTX *h, long long n)
{
    while (n > 0) {
        if (c->roff < c->rlen) {
            size_t take = c->rlen - c->roff;
            if ((long long)take > n)
                take = (size_t)n;
            body_sink(r, h, c->rbuf + c->roff, take);
            c->roff += take;
            n -= (long long)take;
            continue;
        }
        size_t want = BIGBUF;
        if ((long long)want > n)
            want = (size_t)n;
        ssize_t got = recv(c->fd, c->big, want, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            snprintf(r->err, sizeof(r->err), "connection %s with %lld body bytes still expected",
                     got == 0 ? "closed by server" : strerror(errno), n);
            return -1;
        }
        body_sink(r, h, c->big, (size_t)got);
        n -= got;
    }
    return 0;
}

/* Read one CRLF-terminated line (without CRLF) from the connection. */
static int read_line(conn_t *c, resp_t *r, char *out, size_t outn)
{
    for (;;) {
        char *p = memchr(c->rbuf + c->roff, '\n', c->rlen - c->roff);
        if (p) {
            size_t len = (size_t)(p - (c->rbuf + c->roff));
            size_t cp = len;
            if (cp > 0 && c->rbuf[c->roff + cp - 1] == '\r')
                cp--;
            if (cp >= outn)
                cp = outn - 1;
            memcpy(out, c->rbuf + c->roff, cp);
            out[cp] = 0;
            c->roff += len + 1;
            return 0;
        }
        ssize_t n = conn_fill(c);
        if (n <= 0) {
            snprintf(r->err, sizeof(r->err), "connection %s while reading a line",
                     n == 0    ? "closed by server"
                     : n == -2 ? "line too long"
                               : strerror(errno));
            return -1;
        }
    }
}

static int hdr_is(const char *line, const char *name, const char **val)
{
    size_t n = strlen(name);
    if (strncasecmp(line, name, n) != 0 || line[n] != ':')
        return 0;
    const char *v = line + n + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    *val = v;
    return 1;
}

/*
 * Read one response. is_head: no body. h: if non-NULL the body is hashed
 * instead of captured. Returns 0 or -1 (transport error, r->err set).
 */
static int recv_resp(conn_t *c, resp_t *r, int is_head, EVP_MD_CTX *h)
{
    char line[8192];
    size_t hl = 0;
    resp_reset(r);
    do {
        if (read_line(c, r, line, sizeof(line)) != 0)
            return -1;
    } while (line[0] == 0); /* tolerate stray CRLF */
    snprintf(r->status_line, sizeof(r->status_line), "%.500s", line);
    if (strncmp(line, "HTTP/1.", 7) != 0 || strlen(line) < 12) {
        snprintf(r->err, sizeof(r->err), "malformed status line: %.200s", line);
        return -1;
    }
    r->status = atoi(line + 9);
    if (strncmp(line, "HTTP/1.0", 8) == 0)
        r->close = 1;
    for (;;) {
        const char *v;
        if (read_line(c, r, line, sizeof(line)) != 0)
            return -1;
        if (line[0] == 0)
            break;
        size_t ll = strlen(line);
        if (hl + ll + 2 < sizeof(r->headers)) {
            memcpy(r->headers + hl, line, ll);
            r->headers[hl + ll] = '\n';
            hl += ll + 1;
            r->headers[hl] = 0;
        }
        if (hdr_is(line, "Content-Length", &v))
            r->content_length = atoll(v);
        else if (hdr_is(line, "Transfer-Encoding", &v))
            r->chunked = strcasestr(v, "chunked") != NULL;
        else if (hdr_is(line, "Location", &v))
            snprintf(r->location, sizeof(r->location), "%s", v);
        else if (hdr_is(line, "Docker-Content-Digest", &v))
            snprintf(r->digest, sizeof(r->digest), "%s", v);
        else if (hdr_is(line, "Content-Range", &v))
            snprintf(r->content_range, sizeof(r->content_range), "%s", v);
        else if (hdr_is(line, "Connection", &v)) {
            if (strcasestr(v, "close"))
                r->close = 1;
        }
    }
    if (is_head || r->status == 204 || r->status == 304 || (r->status >= 100 && r->status < 200))
        return 0;
    if (r->chunked) {
        for (;;) {
            if (read_line(c, r, line, sizeof(line)) != 0)
                return -1;
            long long n = strtoll(line, NULL, 16);
            if (n == 0) {
                do {
                    if (read_line(c, r, line, sizeof(line)) != 0)
                        return -1;
                } while (line[0] != 0);
                break;
            }
            if (read_exact(c, r, h, n) != 0)
                return -1;
            if (read_line(c, r, line, sizeof(line)) != 0)
                return -1;
        }
    } else if (r->content_length >= 0) {
        if (read_exact(c, r, h, r->content_length) != 0)
            return -1;
    } else {
        /* until close */
        for (;;) {
            if (c->roff < c->rlen) {
                body_sink(r, h, c->rbuf + c->roff, c->rlen - c->roff);
                c->roff = c->rlen;
            }
            ssize_t n = recv(c->fd, c->big, BIGBUF, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            body_sink(r, h, c->big, (size_t)n);
        }
        r->close = 1;
    }
    return 0;
}

static int send_head(conn_t *c, const char *method, const char *path, const char *extra, long long clen, int chunked)
{
    char buf[16384];
    int n = snprintf(buf, sizeof(buf), "%s %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: berth-bench/1\r\n%s", method, path,
                     g_host, g_port, extra ? extra : "");
    if (chunked)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "Transfer-Encoding: chunked\r\n");
    else if (clen >= 0)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "Content-Length: %lld\r\n", clen);
    n += snprintf(buf + n, sizeof(buf) - (size_t)n, "\r\n");
    if ((size_t)n >= sizeof(buf))
        die("request head too long");
    return send_all(c->fd, buf, (size_t)n);
}

static void report(const char *what, const char *method, const char *path, const char *expect, resp_t *r)
{
    pthread_mutex_lock(&g_errlock);
    fprintf(stderr, "\n!!! BENCH ERROR (loadgen): %s\n", what);
    fprintf(stderr, "    request : %s %s  (server %s:%d)\n", method, path, g_host, g_port);
    fprintf(stderr, "    expected: %s\n", expect);
    if (r->err[0])
        fprintf(stderr, "    transport error: %s\n", r->err);
    if (r->status_line[0]) {
        fprintf(stderr, "    response: %s\n", r->status_line);
        char *save = NULL, *hdrs = strdup(r->headers);
        for (char *l = strtok_r(hdrs, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
            fprintf(stderr, "      %s\n", l);
        free(hdrs);
        if (r->body_len) {
            size_t show = r->body_len < 2000 ? r->body_len : 2000;
            fprintf(stderr, "    body (%lld bytes, first %zu shown, non-printables as '.'): ", r->nbytes, show);
            for (size_t i = 0; i < show; i++)
                fputc(isprint((unsigned char)r->body[i]) ? r->body[i] : '.', stderr);
            fputc('\n', stderr);
        }
    }
    fflush(stderr);
    _exit(1);
}

/*
 * One request with an in-memory body (or none). body_len < 0: no
 * Content-Length header (GET/HEAD). Reconnects once if a reused keep-alive
 * connection turns out to be closed.
 */
static void request(conn_t *c, const char *method, const char *path, const char *extra, const void *body,
                    long long body_len, resp_t *r, EVP_MD_CTX *h)
{
    int is_head = strcmp(method, "HEAD") == 0;
    for (int attempt = 0;; attempt++) {
        if (c->fd < 0)
            conn_open(c);
        int reused = c->nreq > 0;
        c->nreq++;
        resp_reset(r);
        int rc = send_head(c, method, path, extra, body_len, 0);
        if (rc == 0 && body_len > 0)
            rc = send_all(c->fd, body, (size_t)body_len);
        if (rc != 0)
            snprintf(r->err, sizeof(r->err), "send failed: %s", strerror(errno));
        if (rc == 0)
            rc = recv_resp(c, r, is_head, h);
        if (rc == 0)
            break;
        if (reused && attempt == 0 && r->status_line[0] == 0 && r->nbytes == 0 && !h) {
            conn_close(c); /* stale keep-alive connection: retry once on a new one */
            continue;
        }
        report("transport failure", method, path, "a response", r);
    }
    if (r->close)
        conn_close(c);
}

static void expect_status(const char *method, const char *path, resp_t *r, int want)
{
    if (r->status != want) {
        char e[64];
        snprintf(e, sizeof(e), "HTTP %d", want);
        report("unexpected status", method, path, e, r);
    }
}

/* Turn a Location header into a request path (absolute URLs are reduced to their path). */
static void loc_path(const char *method, const char *path, resp_t *r, char *out, size_t outn)
{
    const char *l = r->location;
    if (!l[0])
        report("missing Location header", method, path, "a Location header", r);
    if (strncasecmp(l, "http://", 7) == 0 || strncasecmp(l, "https://", 8) == 0) {
        const char *p = strchr(strstr(l, "//") + 2, '/');
        l = p ? p : "/";
    }
    if (l[0] != '/')
        report("Location is not absolute or root-relative", method, path, "/v2/...", r);
    snprintf(out, outn, "%s", l);
}

static void with_digest(const char *path, const char *digest, char *out, size_t outn)
{
    /* docker URL-encodes the colon of the digest in the query */
    const char *colon = strchr(digest, ':');
    snprintf(out, outn, "%s%cdigest=%.*s%%3A%s", path, strchr(path, '?') ? '&' : '?', (int)(colon - digest), digest,
             colon + 1);
}

static void sha256_hex(const void *p, size_t n, char out[72])
{
    unsigned char md[32];
    unsigned int mdl = 0;
    EVP_Digest(p, n, md, &mdl, EVP_sha256(), NULL);
    strcpy(out, "sha256:");
    for (int i = 0; i < 32; i++)
        sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

static void ctx_hex(EVP_MD_CTX *h, char out[72])
{
    unsigned char md[32];
    unsigned int mdl = 0;
    EVP_DigestFinal_ex(h, md, &mdl);
    strcpy(out, "sha256:");
    for (int i = 0; i < 32; i++)
        sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

/* ------------------------------------------------------------------ */
/* push-small                                                           */

typedef struct {
    const char *repo;
    int n;
    atomic_int next;
    double *lat;
    char man0[72], cfg0[72], lay0[72];
    pthread_mutex_t lock;
} small_t;

static void push_small_blob(conn_t *c, const char *repo, const char *dig, const void *data, size_t n)
{
    char path[8192], p2[8192], p3[8192];
    resp_t r = {0};
    snprintf(path, sizeof(path), "/v2/%s/blobs/%s", repo, dig);
    request(c, "HEAD", path, NULL, NULL, -1, &r, NULL);
    if (r.status == 200)
        goto out; /* already there: docker skips the upload */
    expect_status("HEAD", path, &r, 404);

    snprintf(path, sizeof(path), "/v2/%s/blobs/uploads/", repo);
    request(c, "POST", path, NULL, NULL, 0, &r, NULL);
    expect_status("POST", path, &r, 202);
    loc_path("POST", path, &r, p2, sizeof(p2));

    request(c, "PATCH", p2, "Content-Type: application/octet-stream\r\n", data, (long long)n, &r, NULL);
    expect_status("PATCH", p2, &r, 202);
    loc_path("PATCH", p2, &r, p3, sizeof(p3));

    with_digest(p3, dig, path, sizeof(path));
    request(c, "PUT", path, NULL, NULL, 0, &r, NULL);
    expect_status("PUT", path, &r, 201);
out:
    resp_free(&r);
}

static void *small_worker(void *arg)
{
    small_t *s = arg;
    conn_t c;
    resp_t r = {0};
    conn_init(&c);
    for (;;) {
        int i = atomic_fetch_add(&s->next, 1);
        if (i >= s->n)
            break;
        unsigned char layer[4096], rnd[16];
        char ldig[72], cdig[72], mdig[72], cfg[2048], man[4096], path[4096], id[40];
        if (getrandom(layer, sizeof(layer), 0) != sizeof(layer) || getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
            die("getrandom failed");
        for (int k = 0; k < 16; k++)
            sprintf(id + 2 * k, "%02x", rnd[k]);
        double t0 = now_s();
        sha256_hex(layer, sizeof(layer), ldig);
        int cl = snprintf(cfg, sizeof(cfg),
                          "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Labels\":{\"bench.image\":\"%d\","
                          "\"bench.nonce\":\"%s\"}},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}",
                          i, id, ldig);
        sha256_hex(cfg, (size_t)cl, cdig);
        int ml = snprintf(man, sizeof(man),
                          "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                          "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\","
                          "\"size\":%d},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\","
                          "\"digest\":\"%s\",\"size\":%zu}]}",
                          cdig, cl, ldig, sizeof(layer));
        sha256_hex(man, (size_t)ml, mdig);

        push_small_blob(&c, s->repo, cdig, cfg, (size_t)cl);
        push_small_blob(&c, s->repo, ldig, layer, sizeof(layer));
        snprintf(path, sizeof(path), "/v2/%s/manifests/img-%d", s->repo, i);
        request(&c, "PUT", path, "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n", man, ml, &r, NULL);
        expect_status("PUT", path, &r, 201);
        if (r.digest[0] && strcmp(r.digest, mdig) != 0) {
            char e[128];
            snprintf(e, sizeof(e), "Docker-Content-Digest: %s", mdig);
            report("manifest digest mismatch", "PUT", path, e, &r);
        }
        s->lat[i] = now_s() - t0;
        if (i == 0) {
            strcpy(s->man0, mdig);
            strcpy(s->cfg0, cdig);
            strcpy(s->lay0, ldig);
        }
    }
    resp_free(&r);
    conn_free(&c);
    return NULL;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
    int idx = (int)(p * n + 0.999999) - 1; /* nearest-rank */
    if (idx < 0)
        idx = 0;
    if (idx >= n)
        idx = n - 1;
    return v[idx];
}

static int cmd_push_small(const char *repo, int n, int conc, const char *info)
{
    small_t s;
    memset(&s, 0, sizeof(s));
    s.repo = repo;
    s.n = n;
    s.lat = calloc((size_t)n, sizeof(double));
    pthread_t th[256];
    if (conc > 256)
        conc = 256;
    double t0 = now_s();
    for (int i = 0; i < conc; i++)
        pthread_create(&th[i], NULL, small_worker, &s);
    for (int i = 0; i < conc; i++)
        pthread_join(th[i], NULL);
    double el = now_s() - t0;
    qsort(s.lat, (size_t)n, sizeof(double), cmp_d);
    if (info) {
        FILE *f = fopen(info, "w");
        if (!f)
            die("open %s: %s", info, strerror(errno));
        fprintf(f, "MANIFEST_DIGEST=%s\nCONFIG_DIGEST=%s\nLAYER_DIGEST=%s\n", s.man0, s.cfg0, s.lay0);
        fclose(f);
    }
    printf("RESULT images=%d seconds=%.3f images_per_s=%.1f p50_ms=%.2f p99_ms=%.2f\n", n, el, n / el,
           pct(s.lat, n, 0.50) * 1e3, pct(s.lat, n, 0.99) * 1e3);
    return 0;
}

/* ------------------------------------------------------------------ */
/* big blob push                                                        */

/* send [off, off+len) of fd over the socket, optionally rate-limited */
typedef struct {
    double t0;
    double rate; /* bytes/s, 0 = unlimited */
    long long sent;
} pace_t;

static void pace(pace_t *p, long long n)
{
    p->sent += n;
    if (p->rate <= 0)
        return;
    double due = p->t0 + (double)p->sent / p->rate;
    double d = due - now_s();
    if (d > 0) {
        struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

static int send_file_range(int sock, int fd, off_t off, size_t len, pace_t *p)
{
    while (len > 0) {
        size_t step = len > (1u << 20) ? (1u << 20) : len;
        ssize_t w = sendfile(sock, fd, &off, step);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        len -= (size_t)w;
        pace(p, w);
    }
    return 0;
}

/* after a failed body send, try to read the server's answer for the report */
static void body_send_failed(conn_t *c, const char *method, const char *path, const char *expect)
{
    resp_t r = {0};
    int e = errno;
    shutdown(c->fd, SHUT_WR);
    if (recv_resp(c, &r, 0, NULL) != 0 && !r.status_line[0])
        snprintf(r.err, sizeof(r.err), "sending the body failed: %s (no response could be read)", strerror(e));
    else if (!r.err[0])
        snprintf(r.err, sizeof(r.err), "sending the body failed: %s; the server had answered:", strerror(e));
    report("request body upload failed", method, path, expect, &r);
}

static double push_one_file(const char *repo, const char *file, const char *digest, const char *mode, double rate_mb,
                            size_t chunk)
{
    conn_t c;
    resp_t r = {0};
    char path[8192], p2[8192], p3[8192];
    struct stat st;
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0)
        die("open %s: %s", file, strerror(errno));
    long long size = st.st_size;
    pace_t pc = {0, rate_mb * 1e6, 0};
    conn_init(&c);
    double t0 = now_s();
    pc.t0 = t0;

    snprintf(path, sizeof(path), "/v2/%s/blobs/uploads/", repo);
    request(&c, "POST", path, NULL, NULL, 0, &r, NULL);
    expect_status("POST", path, &r, 202);
    loc_path("POST", path, &r, p2, sizeof(p2));
    if (c.fd < 0)
        conn_open(&c);

    if (strcmp(mode, "mono") == 0) {
        with_digest(p2, digest, p3, sizeof(p3));
        if (send_head(&c, "PUT", p3, "Content-Type: application/octet-stream\r\n", size, 0) != 0 ||
            send_file_range(c.fd, fd, 0, (size_t)size, &pc) != 0)
            body_send_failed(&c, "PUT", p3, "HTTP 201");
        if (recv_resp(&c, &r, 0, NULL) != 0)
            report("transport failure", "PUT", p3, "HTTP 201", &r);
        expect_status("PUT", p3, &r, 201);
    } else if (strcmp(mode, "chunked") == 0) {
        if (send_head(&c, "PATCH", p2, "Content-Type: application/octet-stream\r\n", -1, 1) != 0)
            body_send_failed(&c, "PATCH", p2, "HTTP 202");
        for (long long off = 0; off < size;) {
            size_t n = (size_t)((size - off) < (long long)chunk ? (size - off) : (long long)chunk);
            char hx[32];
            int hl = snprintf(hx, sizeof(hx), "%zx\r\n", n);
            if (send_all(c.fd, hx, (size_t)hl) != 0 || send_file_range(c.fd, fd, (off_t)off, n, &pc) != 0 ||
                send_all(c.fd, "\r\n", 2) != 0)
                body_send_failed(&c, "PATCH", p2, "HTTP 202");
            off += (long long)n;
        }
        if (send_all(c.fd, "0\r\n\r\n", 5) != 0)
            body_send_failed(&c, "PATCH", p2, "HTTP 202");
        if (recv_resp(&c, &r, 0, NULL) != 0)
            report("transport failure", "PATCH", p2, "HTTP 202", &r);
        expect_status("PATCH", p2, &r, 202);
        if (r.close)
            conn_close(&c);
        loc_path("PATCH", p2, &r, p3, sizeof(p3));
        with_digest(p3, digest, path, sizeof(path));
        request(&c, "PUT", path, NULL, NULL, 0, &r, NULL);
        expect_status("PUT", path, &r, 201);
        snprintf(p3, sizeof(p3), "%s", path);
    } else {
        die("unknown mode %s", mode);
    }
    if (r.digest[0] && strcmp(r.digest, digest) != 0) {
        char e[200];
        snprintf(e, sizeof(e), "Docker-Content-Digest: %s", digest);
        report("blob digest mismatch", "PUT", p3, e, &r);
    }
    double el = now_s() - t0;
    close(fd);
    resp_free(&r);
    conn_free(&c);
    return el;
}

static int cmd_push_blob(const char *repo, const char *file, const char *digest, const char *mode, double rate,
                         size_t chunk)
{
    struct stat st;
    if (stat(file, &st) != 0)
        die("stat %s: %s", file, strerror(errno));
    double el = push_one_file(repo, file, digest, mode, rate, chunk);
    printf("RESULT bytes=%lld seconds=%.3f MBps=%.1f\n", (long long)st.st_size, el, st.st_size / 1e6 / el);
    return 0;
}

typedef struct {
    const char *repo;
    char file[4096];
    char digest[128];
} many_t;

static void *many_worker(void *arg)
{
    many_t *m = arg;
    push_one_file(m->repo, m->file, m->digest, "mono", 0, 0);
    return NULL;
}

static int cmd_push_many(const char *repo, char **specs, int n)
{
    many_t *m = calloc((size_t)n, sizeof(many_t));
    pthread_t *th = calloc((size_t)n, sizeof(pthread_t));
    long long total = 0;
    for (int i = 0; i < n; i++) {
        char *colon = strrchr(specs[i], ':');
        char *c2 = colon ? memrchr(specs[i], ':', (size_t)(colon - specs[i])) : NULL;
        if (!c2)
            die("-f wants FILE:sha256:HEX, got %s", specs[i]);
        m[i].repo = repo;
        snprintf(m[i].file, sizeof(m[i].file), "%.*s", (int)(c2 - specs[i]), specs[i]);
        snprintf(m[i].digest, sizeof(m[i].digest), "%s", c2 + 1);
        struct stat st;
        if (stat(m[i].file, &st) != 0)
            die("stat %s: %s", m[i].file, strerror(errno));
        total += st.st_size;
    }
    double t0 = now_s();
    for (int i = 0; i < n; i++)
        pthread_create(&th[i], NULL, many_worker, &m[i]);
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    double el = now_s() - t0;
    printf("RESULT bytes=%lld seconds=%.3f MBps=%.1f\n", total, el, total / 1e6 / el);
    return 0;
}

/* ------------------------------------------------------------------ */
/* pull                                                                 */

static int cmd_pull_blob(const char *repo, const char *digest, long long size)
{
    conn_t c;
    resp_t r = {0};
    char path[4096], got[72];
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    EVP_DigestInit_ex(h, EVP_sha256(), NULL);
    conn_init(&c);
    snprintf(path, sizeof(path), "/v2/%s/blobs/%s", repo, digest);
    double t0 = now_s();
    conn_open(&c);
    if (send_head(&c, "GET", path, "Accept: */*\r\n", -1, 0) != 0)
        die("send: %s", strerror(errno));
    if (recv_resp(&c, &r, 0, h) != 0)
        report("transport failure", "GET", path, "HTTP 200", &r);
    double el = now_s() - t0;
    expect_status("GET", path, &r, 200);
    if (r.content_length >= 0 && r.content_length != size)
        report("wrong Content-Length", "GET", path, "the blob size", &r);
    ctx_hex(h, got);
    if (r.nbytes != size || strcmp(got, digest) != 0) {
        snprintf(r.err, sizeof(r.err), "body: %lld bytes with digest %s; expected %lld bytes with digest %s", r.nbytes,
                 got, size, digest);
        report("pulled blob does not match", "GET", path, "the pushed bytes", &r);
    }
    if (r.digest[0] && strcmp(r.digest, digest) != 0)
        report("Docker-Content-Digest mismatch", "GET", path, digest, &r);
    printf("RESULT bytes=%lld seconds=%.3f MBps=%.1f\n", size, el, size / 1e6 / el);
    EVP_MD_CTX_free(h);
    resp_free(&r);
    conn_free(&c);
    return 0;
}

/* ------------------------------------------------------------------ */
/* sampler                                                              */

static volatile sig_atomic_t g_reset, g_stop;
static void on_usr1(int s)
{
    (void)s;
    g_reset = 1;
}
static void on_term(int s)
{
    (void)s;
    g_stop = 1;
}

static int cmd_sample(int pid, const char *out)
{
    char path[64], clear[64], tmp[4096], line[256];
    long hwm = 0, hwm_win = 0, anon_max = 0, anon_win = 0, rss_max = 0, rss_win = 0, file_max = 0, shmem_max = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    snprintf(clear, sizeof(clear), "/proc/%d/clear_refs", pid);
    snprintf(tmp, sizeof(tmp), "%s.tmp", out);
    while (!g_stop) {
        FILE *f = fopen(path, "r");
        if (!f)
            break;
        long anon = -1, rss = -1, v;
        while (fgets(line, sizeof(line), f)) {
            if (sscanf(line, "VmHWM: %ld", &v) == 1)
                hwm_win = v;
            else if (sscanf(line, "VmRSS: %ld", &v) == 1)
                rss = v;
            else if (sscanf(line, "RssAnon: %ld", &v) == 1)
                anon = v;
            else if (sscanf(line, "RssFile: %ld", &v) == 1 && v > file_max)
                file_max = v;
            else if (sscanf(line, "RssShmem: %ld", &v) == 1 && v > shmem_max)
                shmem_max = v;
        }
        fclose(f);
        if (hwm_win > hwm)
            hwm = hwm_win; /* VmHWM only rises between resets: the whole run's peak is the largest value read */
        if (g_reset) {
            /* the window starts now: the kernel's high-water mark restarts from the current RSS */
            FILE *c = fopen(clear, "w");
            g_reset = 0;
            anon_win = rss_win = 0;
            if (c == NULL || fputs("5", c) < 0 || fclose(c) != 0)
                die("sample: cannot reset VmHWM through %s", clear);
            hwm_win = rss;
        }
        if (anon > anon_max)
            anon_max = anon;
        if (anon > anon_win)
            anon_win = anon;
        if (rss > rss_max)
            rss_max = rss;
        if (rss > rss_win)
            rss_win = rss;
        FILE *o = fopen(tmp, "w");
        if (o) {
            fprintf(o,
                    "HWM_KB=%ld\nHWM_WIN_KB=%ld\nANON_MAX_KB=%ld\nANON_WIN_KB=%ld\nRSS_MAX_KB=%ld\nRSS_WIN_KB=%ld\n"
                    "FILE_MAX_KB=%ld\nSHMEM_MAX_KB=%ld\n",
                    hwm, hwm_win, anon_max, anon_win, rss_max, rss_win, file_max, shmem_max);
            fclose(o);
            rename(tmp, out);
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* hammer: closed-loop keep-alive request loop (wrk cannot do HEAD)     */

typedef struct {
    const char *method, *path, *accept, *want_digest;
    double until;
    double *lat;
    size_t nlat, cap;
} hammer_t;

static void *hammer_worker(void *arg)
{
    hammer_t *h = arg;
    conn_t c;
    resp_t r = {0};
    char extra[512];
    conn_init(&c);
    snprintf(extra, sizeof(extra), "Accept: %s\r\n", h->accept ? h->accept : "*/*");
    for (;;) {
        double t0 = now_s();
        if (t0 >= h->until)
            break;
        request(&c, h->method, h->path, extra, NULL, -1, &r, NULL);
        double t1 = now_s();
        expect_status(h->method, h->path, &r, 200);
        if (h->want_digest && strcmp(r.digest, h->want_digest) != 0)
            report("Docker-Content-Digest mismatch", h->method, h->path, h->want_digest, &r);
        if (h->nlat == h->cap) {
            h->cap = h->cap ? h->cap * 2 : 65536;
            h->lat = realloc(h->lat, h->cap * sizeof(double));
        }
        h->lat[h->nlat++] = t1 - t0;
    }
    resp_free(&r);
    conn_free(&c);
    return NULL;
}

static int cmd_hammer(const char *method, const char *path, const char *accept, const char *want, int conc, double secs)
{
    hammer_t *h = calloc((size_t)conc, sizeof(hammer_t));
    pthread_t *th = calloc((size_t)conc, sizeof(pthread_t));
    double t0 = now_s();
    for (int i = 0; i < conc; i++) {
        h[i].method = method;
        h[i].path = path;
        h[i].accept = accept;
        h[i].want_digest = want;
        h[i].until = t0 + secs;
        pthread_create(&th[i], NULL, hammer_worker, &h[i]);
    }
    size_t total = 0;
    for (int i = 0; i < conc; i++) {
        pthread_join(th[i], NULL);
        total += h[i].nlat;
    }
    double el = now_s() - t0;
    if (total == 0)
        die("hammer: no request completed");
    double *all = malloc(total * sizeof(double));
    size_t k = 0;
    for (int i = 0; i < conc; i++) {
        memcpy(all + k, h[i].lat, h[i].nlat * sizeof(double));
        k += h[i].nlat;
    }
    qsort(all, total, sizeof(double), cmp_d);
    printf("RESULT requests=%zu seconds=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f\n", total, el, total / el,
           pct(all, (int)total, 0.50) * 1e3, pct(all, (int)total, 0.99) * 1e3);
    return 0;
}

/* ------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr, "usage: loadgen push-small|push-blob|push-many|pull-blob|sample [options] (see source)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    const char *cmd = argv[1];
    if (strcmp(cmd, "sample") == 0) {
        if (argc != 4)
            usage();
        return cmd_sample(atoi(argv[2]), argv[3]);
    }
    const char *repo = "bench/x", *file = NULL, *digest = NULL, *mode = "mono", *info = NULL;
    const char *method = "GET", *url = NULL, *accept = NULL;
    double secs = 10;
    char *files[64];
    int nfiles = 0, n = 200, conc = 8;
    long long size = -1;
    double rate = 0;
    size_t chunk = 32 * 1024;
    int opt;
    optind = 2;
    while ((opt = getopt(argc, argv, "H:P:r:f:d:m:n:c:o:s:l:k:X:u:a:t:")) != -1) {
        switch (opt) {
        case 'H':
            g_host = optarg;
            break;
        case 'P':
            g_port = atoi(optarg);
            break;
        case 'r':
            repo = optarg;
            break;
        case 'f':
            file = optarg;
            if (nfiles < 64)
                files[nfiles++] = optarg;
            break;
        case 'd':
            digest = optarg;
            break;
        case 'm':
            mode = optarg;
            break;
        case 'n':
            n = atoi(optarg);
            break;
        case 'c':
            conc = atoi(optarg);
            break;
        case 'o':
            info = optarg;
            break;
        case 's':
            size = atoll(optarg);
            break;
        case 'l':
            rate = atof(optarg);
            break;
        case 'k':
            chunk = (size_t)atoll(optarg);
            break;
        case 'X':
            method = optarg;
            break;
        case 'u':
            url = optarg;
            break;
        case 'a':
            accept = optarg;
            break;
        case 't':
            secs = atof(optarg);
            break;
        default:
            usage();
        }
    }
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(cmd, "push-small") == 0)
        return cmd_push_small(repo, n, conc, info);
    if (strcmp(cmd, "push-blob") == 0) {
        if (!file || !digest)
            usage();
        return cmd_push_blob(repo, file, digest, mode, rate, chunk);
    }
    if (strcmp(cmd, "hammer") == 0) {
        if (!url)
            usage();
        return cmd_hammer(method, url, accept, digest, conc, secs);
    }
    if (strcmp(cmd, "push-many") == 0)
        return cmd_push_many(repo, files, nfiles);
    if (strcmp(cmd, "pull-blob") == 0) {
        if (!digest || size < 0)
            usage();
        return cmd_pull_blob(repo, digest, size);
    }
    usage();
    return 2;
}
