/*
 * httpparse.h - pure parsers of HTTP request parts the API reads: the query string, Range (blob GET) and
 * Content-Range (chunked upload PATCH).  No h2o, no allocation: they take a byte range and fill caller buffers, so
 * they are unit-tested (tests/unit/test_httpparse.c) and fuzzable on their own.  Built into libberthproto.
 */
#ifndef BERTH_HTTPPARSE_H
#define BERTH_HTTPPARSE_H

#include <stddef.h>
#include <stdint.h>

/** Calls `fn(ctx, value)` with the percent-decoded value of every parameter `key` of the raw query `q[0..len)`
 *  (the part after '?', without it; `q` may be NULL), in order, decoding into `buf` (`buflen` bytes, value
 *  NUL-terminated); '+' decodes to a space; stops when fn returns non-zero.  Returns 1 if fn stopped it, 0 when
 *  all were seen, -1 if a value is too long for `buf`, malformed (bad %XX) or decodes to a NUL byte. */
int httpparse_query_each(const char *q, size_t len, const char *key, int (*fn)(void *ctx, const char *value), void *ctx,
                         char *buf, size_t buflen);

/** The first parameter `key` of query `q[0..len)`, decoded into `out` as by httpparse_query_each.  Returns 1 if
 *  present, 0 if absent, -1 if too long or malformed. */
int httpparse_query(const char *q, size_t len, const char *key, char *out, size_t outlen);

/** Parses a Range header `h[0..len)` of a GET of `size` bytes: a single "bytes=A-B", "bytes=A-" or "bytes=-N".
 *  Returns 1 with the inclusive [*from, *to] (clamped to the size), 0 to ignore the header (several ranges: RFC
 *  9110 allows serving the whole), or BERR_RANGE_UNSATISFIABLE. */
int httpparse_range(const char *h, size_t len, uint64_t size, uint64_t *from, uint64_t *to);

/** Parses a chunk's Content-Range `h[0..len)`: "A-B", "bytes A-B" or "bytes=A-B", optionally followed by "/…".
 *  Returns 0 with the inclusive [*start, *end] (start <= end < 2^64 - 1, so end - start + 1 never wraps), or
 *  BERR_RANGE_INVALID. */
int httpparse_content_range(const char *h, size_t len, uint64_t *start, uint64_t *end);

#endif
