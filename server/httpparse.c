/* httpparse.c - query, Range and Content-Range parsing (httpparse.h); pure, no h2o. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "err.h"
#include "httpparse.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int httpparse_query_each(const char *q, size_t len, const char *key, int (*fn)(void *ctx, const char *value), void *ctx,
                         char *buf, size_t buflen)
{
    const char *end;
    size_t klen = strlen(key);
    if (q == NULL || buflen == 0)
        return 0;
    end = q + len;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pe = amp != NULL ? amp : end;
        if ((size_t)(pe - q) >= klen && memcmp(q, key, klen) == 0 && (q + klen == pe || q[klen] == '=')) {
            const char *v = q + klen + (q + klen < pe ? 1 : 0);
            size_t o = 0;
            while (v < pe) {
                char c = *v++;
                if (c == '%') {
                    int hi, lo;
                    if (pe - v < 2 || (hi = hexval(v[0])) < 0 || (lo = hexval(v[1])) < 0)
                        return -1;
                    c = (char)(hi * 16 + lo);
                    v += 2;
                } else if (c == '+') {
                    c = ' ';
                }
                if (c == '\0' || o + 1 >= buflen)
                    return -1;
                buf[o++] = c;
            }
            buf[o] = '\0';
            if (fn(ctx, buf) != 0)
                return 1;
        }
        if (amp == NULL)
            break;
        q = amp + 1;
    }
    return 0;
}

static int stop_at_first(void *ctx, const char *value)
{
    (void)ctx;
    (void)value;
    return 1;
}

int httpparse_query(const char *q, size_t len, const char *key, char *out, size_t outlen)
{
    return httpparse_query_each(q, len, key, stop_at_first, NULL, out, outlen);
}

int httpparse_range(const char *h, size_t len, uint64_t size, uint64_t *from, uint64_t *to)
{
    char buf[128], *p, *dash, *end;
    unsigned long long a, b;
    if (len >= sizeof(buf) || len < 6 || memcmp(h, "bytes=", 6) != 0)
        return BERR_RANGE_UNSATISFIABLE;
    memcpy(buf, h + 6, len - 6);
    buf[len - 6] = '\0';
    if (strchr(buf, ',') != NULL)
        return 0; /* multiple ranges: serve the whole blob (RFC 9110 allows ignoring Range) */
    p = buf;
    while (*p == ' ')
        p++;
    if ((dash = strchr(p, '-')) == NULL)
        return BERR_RANGE_UNSATISFIABLE;
    *dash = '\0';
    errno = 0;
    if (*p == '\0') { /* suffix: last N bytes */
        if (dash[1] < '0' || dash[1] > '9')
            return BERR_RANGE_UNSATISFIABLE;
        b = strtoull(dash + 1, &end, 10);
        if (errno != 0 || *end != '\0' || b == 0 || size == 0)
            return BERR_RANGE_UNSATISFIABLE;
        *from = b >= size ? 0 : size - b;
        *to = size - 1;
        return 1;
    }
    if (*p < '0' || *p > '9')
        return BERR_RANGE_UNSATISFIABLE;
    a = strtoull(p, &end, 10);
    if (errno != 0 || *end != '\0' || a >= size)
        return BERR_RANGE_UNSATISFIABLE;
    if (dash[1] == '\0') {
        b = size - 1;
    } else {
        if (dash[1] < '0' || dash[1] > '9')
            return BERR_RANGE_UNSATISFIABLE;
        b = strtoull(dash + 1, &end, 10);
        if (errno != 0 || *end != '\0' || b < a)
            return BERR_RANGE_UNSATISFIABLE;
        if (b >= size)
            b = size - 1;
    }
    *from = a;
    *to = b;
    return 1;
}

int httpparse_content_range(const char *h, size_t len, uint64_t *a, uint64_t *b)
{
    char buf[96], *p = buf, *end;
    unsigned long long x, y;
    if (len == 0 || len >= sizeof(buf))
        return BERR_RANGE_INVALID;
    memcpy(buf, h, len);
    buf[len] = '\0';
    if (strncmp(p, "bytes", 5) == 0) {
        p += 5;
        if (*p == ' ' || *p == '=')
            p++;
    }
    if (*p < '0' || *p > '9')
        return BERR_RANGE_INVALID;
    errno = 0;
    x = strtoull(p, &end, 10);
    if (errno != 0 || *end != '-' || end[1] < '0' || end[1] > '9')
        return BERR_RANGE_INVALID;
    y = strtoull(end + 1, &end, 10);
    if (errno != 0 || (*end != '\0' && *end != '/') || y < x || y == ULLONG_MAX) /* y - x + 1 must not wrap */
        return BERR_RANGE_INVALID;
    *a = x;
    *b = y;
    return 0;
}
