/*
 * http1.h - a strict HTTP/1.1 request-head parser and chunked-body decoder (RFC 9112), pure: no h2o, no I/O.
 *
 * Strictness is the point (request smuggling): whatever a front proxy and Berth might read differently is refused
 * with BERR_BAD_REQUEST, and the caller answers 400 and closes the connection.  Refused:
 *   - a request line that is not exactly `token SP origin-form SP HTTP/1.x CRLF` (controls, NUL, extra spaces,
 *     absolute-form or `*` targets, versions other than 1.0 and 1.1);
 *   - a bare LF or a lone CR anywhere in the head, obs-fold (a header line starting with SP or HTAB), a header name
 *     that is not a token, whitespace between a name and its colon, controls (other than HTAB) in a value;
 *   - Content-Length that is not plain decimal digits, or two Content-Length values that differ;
 *   - Transfer-Encoding other than exactly one `chunked`, Transfer-Encoding together with Content-Length, or with
 *     HTTP/1.0;
 *   - HTTP/1.1 without exactly one Host, two Host headers in any version;
 *   - an Expect other than `100-continue`;
 *   - a head longer than HTTP1_HEAD_MAX or with more than HTTP1_HEADERS_MAX header lines.
 * Up to HTTP1_LEADING_CRLF_MAX empty lines (CRLF) before the request line are skipped (RFC 9112 section 2.2).
 *
 * Ownership: every pointer in struct http1_request points into the caller's buffer.
 */
#ifndef BERTH_HTTP1_H
#define BERTH_HTTP1_H

#include <stddef.h>
#include <stdint.h>

#define HTTP1_HEAD_MAX (32u << 10)     /* longest request head (request line + headers), bytes */
#define HTTP1_HEADERS_MAX 100          /* most header lines in one request */
#define HTTP1_METHOD_MAX 16            /* longest method token */
#define HTTP1_LEADING_CRLF_MAX 4       /* empty lines tolerated before a request line */
#define HTTP1_CHUNK_LINE_MAX 256       /* longest chunk-size line, extensions included */
#define HTTP1_TRAILER_MAX (4u << 10)   /* most bytes of trailer section after the last chunk */
#define HTTP1_NO_LENGTH UINT64_MAX     /* content_length when the request has no Content-Length */
#define HTTP1_LENGTH_DIGITS_MAX 19     /* most digits in a Content-Length (fits in 63 bits) */
#define HTTP1_CHUNK_SIZE_DIGITS_MAX 15 /* most hex digits of a chunk size (< 2^60) */

struct http1_header {
    const char *name; /* as sent (case preserved) */
    size_t name_len;
    const char *value; /* without surrounding whitespace */
    size_t value_len;
};

struct http1_request {
    const char *method;
    size_t method_len;
    const char *target; /* origin-form: path and query */
    size_t target_len;
    int minor_version; /* 0 or 1 */
    struct http1_header headers[HTTP1_HEADERS_MAX];
    size_t num_headers;
    uint64_t content_length; /* HTTP1_NO_LENGTH if absent */
    int chunked;             /* Transfer-Encoding: chunked */
    int keep_alive;          /* persistent connection after this request (version and Connection header) */
    int expect_continue;     /* Expect: 100-continue */
    const char *host;        /* Host header value, or NULL */
    size_t host_len;
};

/** Parses the request head at the start of `buf[0..len)`.  Returns the length of the head (> 0) with `req`
 *  filled in, 0 if the head is not complete yet (and could still be valid within HTTP1_HEAD_MAX), or
 *  BERR_BAD_REQUEST. */
int http1_parse_request(const char *buf, size_t len, struct http1_request *req);

/** 1 if `buf[0..len)` could be the start of the HTTP/2 connection preface ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
 *  2 if it holds the whole preface, else 0. */
int http1_is_h2_preface(const char *buf, size_t len);

/** Case-insensitive comparison of `s[0..len)` with NUL-terminated `lit`: 1 if equal. */
int http1_token_eq(const char *s, size_t len, const char *lit);

/* ---- chunked transfer coding ---- */

enum http1_chunk_result {
    HTTP1_CHUNK_DATA = 1, /* *data / *data_len hold body bytes (a span inside the input) */
    HTTP1_CHUNK_MORE = 2, /* every input byte was consumed; feed more */
    HTTP1_CHUNK_END = 3   /* the body (and its trailers) ended; bytes after *used belong to the next request */
};

struct http1_chunked {
    int state;          /* internal */
    uint64_t remaining; /* data bytes left in the current chunk */
    size_t line_len;    /* bytes of the current size/trailer line seen so far */
    size_t trailer_len; /* bytes of trailers seen so far */
    int size_digits;    /* hex digits seen in the current size line */
    int in_ext;         /* inside a chunk extension */
    int line_has_data;  /* the current trailer line is not empty */
};

/** Prepares `c` for a new body. */
void http1_chunked_init(struct http1_chunked *c);
/** Decodes from `in[0..len)`: consumes `*used` bytes and returns HTTP1_CHUNK_DATA (body bytes in
 *  `*data[0..*data_len)`, pointing into `in`), HTTP1_CHUNK_MORE (need more input; *used == len), HTTP1_CHUNK_END,
 *  or BERR_BAD_REQUEST (malformed: bare LF, bad hex, oversized size, missing CRLF after data, obs-fold in trailers,
 *  trailers longer than HTTP1_TRAILER_MAX).  Call again with the rest of the input after DATA. */
int http1_chunked_step(struct http1_chunked *c, const char *in, size_t len, size_t *used, const char **data,
                       size_t *data_len);

#endif
