/*
 * fuzz_http1.c - libFuzzer target for http1.h: the request-head parser and the chunked decoder.
 *
 * Checks, beyond "no crash, no sanitizer report":
 *   - a head that parses lies within the input, its fields point inside it, and its framing is unambiguous
 *     (never both chunked and a Content-Length; chunked never with HTTP/1.0);
 *   - parsing is prefix-stable: every proper prefix of an accepted head is "incomplete" (0), never an error, and a
 *     rejected input stays rejected when more bytes follow;
 *   - differential: whatever Berth accepts, h2o's picohttpparser (libh2o) accepts with the same length, method,
 *     path, version and header count — Berth is at least as strict as the parser it replaces;
 *   - the chunked decoder, fed the bytes after the head one split at a time, returns the same body and the same
 *     outcome as when fed all at once, and its data spans lie inside its input.
 *
 * Build: cmake -S . -B build-fuzz -DBERTH_FUZZ=ON -DCMAKE_C_COMPILER=clang; run: scripts/fuzz http1 [SECONDS].
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "err.h"
#include "http1.h"

/* picohttpparser, exported by libh2o (its header is not installed) */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
                      size_t *path_len, int *minor_version, struct phr_header *headers, size_t *num_headers,
                      size_t last_len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ASSERT(c)                                                                                                      \
    do {                                                                                                               \
        if (!(c))                                                                                                      \
            abort();                                                                                                   \
    } while (0)

static int inside(const char *p, size_t len, const char *buf, size_t size)
{
    return p >= buf && p + len <= buf + size;
}

static void check_head(const char *buf, size_t size, const struct http1_request *r, int n)
{
    ASSERT((size_t)n <= size && (size_t)n <= HTTP1_HEAD_MAX);
    ASSERT(inside(r->method, r->method_len, buf, (size_t)n) && inside(r->target, r->target_len, buf, (size_t)n));
    ASSERT(r->target_len > 0 && r->target[0] == '/');
    ASSERT(r->num_headers <= HTTP1_HEADERS_MAX);
    for (size_t i = 0; i < r->num_headers; i++)
        ASSERT(inside(r->headers[i].name, r->headers[i].name_len, buf, (size_t)n) &&
               inside(r->headers[i].value, r->headers[i].value_len, buf, (size_t)n));
    ASSERT(!(r->chunked && r->content_length != HTTP1_NO_LENGTH));
    ASSERT(!(r->chunked && r->minor_version == 0));
}

/* Berth accepted buf[0..n): picohttpparser must agree (unless Berth skipped more than one leading CRLF). */
static void check_pico(const char *buf, size_t size, const struct http1_request *r, int n)
{
    const char *m, *p;
    size_t ml, pl, nh = HTTP1_HEADERS_MAX;
    int minor, pn;
    struct phr_header h[HTTP1_HEADERS_MAX];
    if (size >= 4 && memcmp(buf, "\r\n\r\n", 4) == 0)
        return;
    pn = phr_parse_request(buf, size, &m, &ml, &p, &pl, &minor, h, &nh, 0);
    ASSERT(pn == n);
    ASSERT(m == r->method && ml == r->method_len && p == r->target && pl == r->target_len);
    ASSERT(minor == r->minor_version && nh == r->num_headers);
}

static void check_prefixes(const char *buf, size_t size, int n)
{
    struct http1_request r;
    size_t step = (size_t)n / 64 + 1;
    for (size_t i = 0; i < (size_t)n; i += step)
        ASSERT(http1_parse_request(buf, i, &r) == 0);
    (void)size;
}

/* Decodes in[0..len) in pieces of `step` bytes; returns the outcome; the body goes to out. */
static int dechunk(const char *in, size_t len, size_t step, char *out, size_t *olen)
{
    struct http1_chunked c;
    size_t pos = 0;
    http1_chunked_init(&c);
    *olen = 0;
    while (pos < len) {
        size_t n = len - pos < step ? len - pos : step, off = 0;
        for (;;) {
            const char *d;
            size_t dl, used;
            int rc = http1_chunked_step(&c, in + pos + off, n - off, &used, &d, &dl);
            ASSERT(used <= n - off);
            off += used;
            if (rc == HTTP1_CHUNK_DATA) {
                ASSERT(inside(d, dl, in + pos, n) && dl > 0);
                memcpy(out + *olen, d, dl);
                *olen += dl;
                continue;
            }
            if (rc != HTTP1_CHUNK_MORE)
                return rc == HTTP1_CHUNK_END ? rc + (int)(pos + off) * 8 : rc;
            ASSERT(off == n);
            break;
        }
        pos += n;
    }
    return HTTP1_CHUNK_MORE;
}

static void check_chunked(const char *in, size_t len)
{
    char *a = malloc(len + 1), *b = malloc(len + 1);
    size_t al, bl;
    int ra = dechunk(in, len, len + 1, a, &al);
    int rb = dechunk(in, len, (len % 7) + 1, b, &bl);
    ASSERT(ra == rb || (ra < 0 && rb < 0));
    if (ra >= 0)
        ASSERT(al == bl && memcmp(a, b, al) == 0);
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct http1_request r;
    int n = http1_parse_request(buf, size, &r);
    if (n > 0) {
        check_head(buf, size, &r, n);
        check_pico(buf, size, &r, n);
        check_prefixes(buf, size, n);
        if (r.chunked)
            check_chunked(buf + n, size - (size_t)n);
    } else if (n < 0 && size < HTTP1_HEAD_MAX) {
        ASSERT(n == BERR_BAD_REQUEST);
        char *more = malloc(size + 8);
        memcpy(more, buf, size);
        memcpy(more + size, "\r\n\r\nX: y", 8);
        ASSERT(http1_parse_request(more, size + 8, &r) < 0);
        free(more);
    }
    check_chunked(buf, size);
    return 0;
}
