/* http1.c (libberthproto) - strict HTTP/1.1 request heads and chunked bodies (RFC 9112); see http1.h for what is
 * refused. */
#include <stddef.h>
#include <string.h>
#include "err.h"
#include "http1.h"

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* tchar of RFC 9110 section 5.6.2 */
static int is_tchar(unsigned char c)
{
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
        return 1;
    default:
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    }
}

/* field-vchar or SP / HTAB inside a value (obs-text admitted, controls and DEL not) */
static int is_value_char(unsigned char c)
{
    return c == ' ' || c == '\t' || (c >= 0x21 && c != 0x7f);
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

int http1_token_eq(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    if (len != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s[i]) != lower((unsigned char)lit[i]))
            return 0;
    return 1;
}

int http1_is_h2_preface(const char *buf, size_t len)
{
    size_t n = sizeof(h2_preface) - 1;
    if (memcmp(buf, h2_preface, len < n ? len : n) != 0)
        return 0;
    return len >= n ? 2 : 1;
}

/*
 * Finds the CRLF that ends the line starting at `pos`.  Returns 1 with `*eol` at the CR, 0 if the buffer ends
 * first, or BERR_BAD_REQUEST for a bare LF or a CR not followed by LF.
 */
static int find_eol(const char *buf, size_t len, size_t pos, size_t *eol)
{
    const char *nl = memchr(buf + pos, '\n', len - pos), *cr;
    size_t end = nl != NULL ? (size_t)(nl - buf) : len;
    if ((cr = memchr(buf + pos, '\r', end - pos)) != NULL) {
        size_t i = (size_t)(cr - buf);
        if (i + 1 == len)
            return 0;
        if (buf[i + 1] != '\n')
            return BERR_BAD_REQUEST;
        *eol = i;
        return 1;
    }
    return nl != NULL ? BERR_BAD_REQUEST : 0;
}

/* `method SP origin-form SP HTTP/1.x` in line[0..len). */
static int parse_request_line(const char *line, size_t len, struct http1_request *req)
{
    size_t i = 0, t;
    while (i < len && is_tchar((unsigned char)line[i]))
        i++;
    if (i == 0 || i > HTTP1_METHOD_MAX || i >= len || line[i] != ' ')
        return BERR_BAD_REQUEST;
    req->method = line;
    req->method_len = i;
    t = ++i;
    while (i < len && (unsigned char)line[i] >= 0x21 && (unsigned char)line[i] <= 0x7e)
        i++;
    if (i == t || line[t] != '/' || i >= len || line[i] != ' ')
        return BERR_BAD_REQUEST;
    req->target = line + t;
    req->target_len = i - t;
    i++;
    if (len - i != 8 || memcmp(line + i, "HTTP/1.", 7) != 0 || (line[i + 7] != '0' && line[i + 7] != '1'))
        return BERR_BAD_REQUEST;
    req->minor_version = line[i + 7] - '0';
    return 0;
}

/* Splits `name: value` in line[0..len) into `h`. */
static int parse_header_line(const char *line, size_t len, struct http1_header *h)
{
    size_t i = 0, v, e;
    if (len == 0 || line[0] == ' ' || line[0] == '\t') /* obs-fold */
        return BERR_BAD_REQUEST;
    while (i < len && is_tchar((unsigned char)line[i]))
        i++;
    if (i == 0 || i >= len || line[i] != ':')
        return BERR_BAD_REQUEST;
    h->name = line;
    h->name_len = i;
    for (v = i + 1; v < len; v++)
        if (!is_value_char((unsigned char)line[v]))
            return BERR_BAD_REQUEST;
    for (v = i + 1; v < len && (line[v] == ' ' || line[v] == '\t'); v++)
        ;
    for (e = len; e > v && (line[e - 1] == ' ' || line[e - 1] == '\t'); e--)
        ;
    h->value = line + v;
    h->value_len = e - v;
    return 0;
}

static int parse_length(const char *s, size_t len, uint64_t *out)
{
    uint64_t n = 0;
    if (len == 0 || len > HTTP1_LENGTH_DIGITS_MAX)
        return BERR_BAD_REQUEST;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return BERR_BAD_REQUEST;
        n = n * 10 + (uint64_t)(s[i] - '0');
    }
    *out = n;
    return 0;
}

/* Reads the Connection tokens: sets *close / *keep for "close" / "keep-alive". */
static void connection_tokens(const char *s, size_t len, int *close, int *keep)
{
    size_t i = 0;
    while (i < len) {
        size_t b, e;
        while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
            i++;
        for (b = i; i < len && s[i] != ','; i++)
            ;
        for (e = i; e > b && (s[e - 1] == ' ' || s[e - 1] == '\t'); e--)
            ;
        if (http1_token_eq(s + b, e - b, "close"))
            *close = 1;
        else if (http1_token_eq(s + b, e - b, "keep-alive"))
            *keep = 1;
    }
}

struct head_state {
    int hosts, te, close, keep;
};

/* Applies the meaning of one header to `req`. */
static int interpret(const struct http1_header *h, struct http1_request *req, struct head_state *st)
{
    if (h->name_len != 4 && h->name_len != 6 && h->name_len != 10 && h->name_len != 14 && h->name_len != 17)
        return 0; /* not host, expect, connection, content-length or transfer-encoding */
    if (http1_token_eq(h->name, h->name_len, "content-length")) {
        uint64_t n;
        if (parse_length(h->value, h->value_len, &n) != 0)
            return BERR_BAD_REQUEST;
        if (req->content_length != HTTP1_NO_LENGTH && req->content_length != n)
            return BERR_BAD_REQUEST;
        req->content_length = n;
    } else if (http1_token_eq(h->name, h->name_len, "transfer-encoding")) {
        if (st->te++ > 0 || !http1_token_eq(h->value, h->value_len, "chunked"))
            return BERR_BAD_REQUEST;
        req->chunked = 1;
    } else if (http1_token_eq(h->name, h->name_len, "host")) {
        if (st->hosts++ > 0)
            return BERR_BAD_REQUEST;
        req->host = h->value;
        req->host_len = h->value_len;
    } else if (http1_token_eq(h->name, h->name_len, "connection")) {
        connection_tokens(h->value, h->value_len, &st->close, &st->keep);
    } else if (http1_token_eq(h->name, h->name_len, "expect")) {
        if (!http1_token_eq(h->value, h->value_len, "100-continue"))
            return BERR_BAD_REQUEST;
        req->expect_continue = 1;
    }
    return 0;
}

/* Cross-header rules, once the head is complete. */
static int finish_head(struct http1_request *req, const struct head_state *st)
{
    if (req->chunked && (req->content_length != HTTP1_NO_LENGTH || req->minor_version == 0))
        return BERR_BAD_REQUEST;
    if (req->minor_version == 1 && st->hosts != 1)
        return BERR_BAD_REQUEST;
    req->keep_alive = req->minor_version == 1 ? !st->close : (st->keep && !st->close);
    return 0;
}

/*
 * 0 when more input may complete a head that is still within the limit, else BERR_BAD_REQUEST.  The unfinished
 * line buf[pos..len) must already be plausible: bytes that no request line (`first`) or header line may contain
 * fail now, so that a binary stream (a TLS ClientHello on the plain port) is refused at once instead of waiting.
 */
static int incomplete(const char *buf, size_t len, size_t pos, int first)
{
    if (len >= HTTP1_HEAD_MAX)
        return BERR_BAD_REQUEST;
    for (size_t i = pos; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == '\r' && i + 1 == len)
            break;
        if (first ? (c < 0x20 || c > 0x7e) : !is_value_char(c))
            return BERR_BAD_REQUEST;
    }
    return 0;
}

int http1_parse_request(const char *buf, size_t len, struct http1_request *req)
{
    struct head_state st = {0};
    size_t pos = 0, eol;
    int rc;
    memset(req, 0, offsetof(struct http1_request, headers));
    req->num_headers = 0;
    req->content_length = HTTP1_NO_LENGTH;
    req->chunked = req->keep_alive = req->expect_continue = 0;
    req->host = NULL;
    req->host_len = 0;
    for (int n = 0; n < HTTP1_LEADING_CRLF_MAX && pos < len && buf[pos] == '\r'; n++) {
        if (pos + 1 == len)
            return 0;
        if (buf[pos + 1] != '\n')
            return BERR_BAD_REQUEST;
        pos += 2;
    }
    if ((rc = find_eol(buf, len, pos, &eol)) <= 0)
        return rc < 0 ? rc : incomplete(buf, len, pos, 1);
    if (eol > HTTP1_HEAD_MAX || (rc = parse_request_line(buf + pos, eol - pos, req)) != 0)
        return BERR_BAD_REQUEST;
    for (pos = eol + 2;; pos = eol + 2) {
        if ((rc = find_eol(buf, len, pos, &eol)) <= 0)
            return rc < 0 ? rc : incomplete(buf, len, pos, 0);
        if (eol + 2 > HTTP1_HEAD_MAX)
            return BERR_BAD_REQUEST;
        if (eol == pos) /* the empty line: end of the head */
            break;
        if (req->num_headers == HTTP1_HEADERS_MAX)
            return BERR_BAD_REQUEST;
        if ((rc = parse_header_line(buf + pos, eol - pos, &req->headers[req->num_headers])) != 0 ||
            (rc = interpret(&req->headers[req->num_headers], req, &st)) != 0)
            return rc;
        req->num_headers++;
    }
    if ((rc = finish_head(req, &st)) != 0)
        return rc;
    return (int)(eol + 2);
}

/* ---- chunked ---- */

enum { C_SIZE, C_EXT, C_SIZE_LF, C_DATA, C_DATA_CR, C_DATA_LF, C_TRAILER, C_TRAILER_LF, C_DONE };

void http1_chunked_init(struct http1_chunked *c)
{
    memset(c, 0, sizeof(*c));
    c->state = C_SIZE;
}

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* One byte of a chunk-size line (size, extensions, CRLF). */
static int size_byte(struct http1_chunked *c, unsigned char ch)
{
    if (++c->line_len > HTTP1_CHUNK_LINE_MAX)
        return BERR_BAD_REQUEST;
    if (c->state == C_SIZE && hexval(ch) >= 0) {
        if (++c->size_digits > HTTP1_CHUNK_SIZE_DIGITS_MAX)
            return BERR_BAD_REQUEST;
        c->remaining = c->remaining * 16 + (uint64_t)hexval(ch);
        return 0;
    }
    if (c->state == C_SIZE && c->size_digits > 0 && ch == ';') {
        c->state = C_EXT;
        return 0;
    }
    if (ch == '\r' && c->size_digits > 0) {
        c->state = C_SIZE_LF;
        return 0;
    }
    if (c->state == C_EXT && (ch == '\t' || (ch >= 0x20 && ch != 0x7f)))
        return 0;
    return BERR_BAD_REQUEST;
}

/* One byte of the trailer section; returns HTTP1_CHUNK_END at its end. */
static int trailer_byte(struct http1_chunked *c, unsigned char ch)
{
    if (c->state == C_TRAILER_LF) {
        if (ch != '\n')
            return BERR_BAD_REQUEST;
        if (!c->line_has_data) {
            c->state = C_DONE;
            return HTTP1_CHUNK_END;
        }
        c->line_has_data = 0;
        c->state = C_TRAILER;
        return 0;
    }
    if (++c->trailer_len > HTTP1_TRAILER_MAX)
        return BERR_BAD_REQUEST;
    if (ch == '\r') {
        c->state = C_TRAILER_LF;
        return 0;
    }
    if (!c->line_has_data && !is_tchar(ch)) /* obs-fold, or not a field name */
        return BERR_BAD_REQUEST;
    if (!is_value_char(ch))
        return BERR_BAD_REQUEST;
    c->line_has_data = 1;
    return 0;
}

/* One byte outside chunk data.  Returns 0, HTTP1_CHUNK_END or BERR_BAD_REQUEST. */
static int control_byte(struct http1_chunked *c, unsigned char ch)
{
    switch (c->state) {
    case C_SIZE:
    case C_EXT:
        return size_byte(c, ch);
    case C_SIZE_LF:
        if (ch != '\n')
            return BERR_BAD_REQUEST;
        c->state = c->remaining == 0 ? C_TRAILER : C_DATA;
        return 0;
    case C_DATA_CR:
        if (ch != '\r')
            return BERR_BAD_REQUEST;
        c->state = C_DATA_LF;
        return 0;
    case C_DATA_LF:
        if (ch != '\n')
            return BERR_BAD_REQUEST;
        c->state = C_SIZE;
        c->remaining = 0;
        c->line_len = 0;
        c->size_digits = 0;
        return 0;
    case C_TRAILER:
    case C_TRAILER_LF:
        return trailer_byte(c, ch);
    default:
        return BERR_BAD_REQUEST;
    }
}

int http1_chunked_step(struct http1_chunked *c, const char *in, size_t len, size_t *used, const char **data,
                       size_t *data_len)
{
    size_t pos = 0;
    while (pos < len) {
        int rc;
        if (c->state == C_DATA) {
            size_t n = len - pos < c->remaining ? len - pos : (size_t)c->remaining;
            c->remaining -= n;
            if (c->remaining == 0)
                c->state = C_DATA_CR;
            *data = in + pos;
            *data_len = n;
            *used = pos + n;
            return HTTP1_CHUNK_DATA;
        }
        rc = control_byte(c, (unsigned char)in[pos++]);
        if (rc != 0) {
            *used = pos;
            return rc;
        }
    }
    *used = pos;
    return c->state == C_DONE ? HTTP1_CHUNK_END : HTTP1_CHUNK_MORE;
}
