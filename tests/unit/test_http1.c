/* test_http1.c - http1.h: the strict request-head parser and the chunked decoder (request smuggling cases). */
#include "check.h"
#include "http1.h"

static struct http1_request req;

static int parse(const char *s)
{
    return http1_parse_request(s, strlen(s), &req);
}

/* Parses a plain GET: method, target, version, headers (values trimmed), keep-alive by default. */
static void parses_simple_get(void)
{
    const char *s = "GET /v2/a/manifests/latest?x=1 HTTP/1.1\r\nHost: h:5000\r\nAccept:  a/b \r\nAccept: c\r\n\r\n";
    REQUIRE_INT_EQ(parse(s), (int)strlen(s));
    CHECK_MEM_EQ(req.method, req.method_len, "GET", 3);
    CHECK_MEM_EQ(req.target, req.target_len, "/v2/a/manifests/latest?x=1", 26);
    CHECK_INT_EQ(req.minor_version, 1);
    REQUIRE_INT_EQ(req.num_headers, 3);
    CHECK_MEM_EQ(req.headers[1].value, req.headers[1].value_len, "a/b", 3);
    CHECK_MEM_EQ(req.host, req.host_len, "h:5000", 6);
    CHECK_INT_EQ(req.keep_alive, 1);
    CHECK(req.content_length == HTTP1_NO_LENGTH);
    CHECK_INT_EQ(req.chunked, 0);
}

/* Returns 0 for every proper prefix of a valid head, and the head length once complete (bytes after it ignored). */
static void incomplete_heads_ask_for_more(void)
{
    const char *s = "PATCH /v2/a/blobs/uploads/x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
    size_t head = strlen(s) - 5;
    for (size_t i = 0; i < head; i++)
        CHECK_INT_EQ(http1_parse_request(s, i, &req), 0);
    CHECK_INT_EQ(http1_parse_request(s, strlen(s), &req), (int)head);
    CHECK_INT_EQ(req.content_length, 5);
}

/* Reads Content-Length, chunked, Expect: 100-continue, Connection: close, and HTTP/1.0 keep-alive rules. */
static void reads_framing_headers(void)
{
    REQUIRE(parse("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\nContent-Length: 12\r\n\r\n") > 0);
    CHECK_INT_EQ(req.content_length, 12);
    REQUIRE(parse("PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\nExpect: 100-Continue\r\n\r\n") > 0);
    CHECK_INT_EQ(req.chunked, 1);
    CHECK_INT_EQ(req.expect_continue, 1);
    REQUIRE(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, close\r\n\r\n") > 0);
    CHECK_INT_EQ(req.keep_alive, 0);
    REQUIRE(parse("GET / HTTP/1.0\r\n\r\n") > 0);
    CHECK_INT_EQ(req.keep_alive, 0);
    REQUIRE(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") > 0);
    CHECK_INT_EQ(req.keep_alive, 1);
}

/* Skips a few empty lines before the request line (RFC 9112 2.2), not an unbounded number. */
static void skips_few_leading_crlf(void)
{
    CHECK(parse("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n") > 0);
    CHECK_ERR(parse("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"), BERR_BAD_REQUEST);
}

/* Smuggling: Content-Length together with Transfer-Encoding, in either order. */
static void rejects_length_and_chunked(void)
{
    CHECK_ERR(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"),
              BERR_BAD_REQUEST);
    CHECK_ERR(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"),
              BERR_BAD_REQUEST);
}

/* Smuggling: two different Content-Lengths, lists, signs, spaces, hex, overflow. */
static void rejects_bad_content_length(void)
{
    CHECK_ERR(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4, 4\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +4\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4 4\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n"), BERR_BAD_REQUEST);
}

/* Smuggling: any transfer coding but one plain "chunked"; chunked in HTTP/1.0. */
static void rejects_other_transfer_codings(void)
{
    CHECK_ERR(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
              BERR_BAD_REQUEST);
    CHECK_ERR(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), BERR_BAD_REQUEST);
}

/* Bare LF and lone CR, in the request line, in a header, and as the final empty line. */
static void rejects_bare_lf_and_lone_cr(void)
{
    CHECK_ERR(parse("GET / HTTP/1.1\nHost: h\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("GET / HTTP/1.1\r\nHost: h\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("GET / HTTP/1.1\r\nHost: h\r\n\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n"), BERR_BAD_REQUEST);
}

/* obs-fold, whitespace before the colon, non-token names, controls and NUL in values. */
static void rejects_malformed_header_lines(void)
{
    CHECK_ERR(parse("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("GET / HTTP/1.1\r\nHost: h\r\nContent-Length : 5\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("GET / HTTP/1.1\r\nHost: h\r\nX(y): a\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("GET / HTTP/1.1\r\nHost: h\r\n: a\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("GET / HTTP/1.1\r\nHost: h\r\nX: a\x01\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(http1_parse_request("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n", 35, &req), BERR_BAD_REQUEST);
    CHECK_ERR(parse("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n"), BERR_BAD_REQUEST);
}

/* Request lines: extra spaces, controls or NUL, absolute-form and '*', other versions, long methods. */
static void rejects_malformed_request_lines(void)
{
    CHECK_ERR(parse("GET  / HTTP/1.1\r\nHost: h\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("GET / HTTP/1.1 \r\nHost: h\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(http1_parse_request("GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n", 30, &req), BERR_BAD_REQUEST);
    CHECK_ERR(parse("GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("GET / HTTP/1.10\r\nHost: h\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("GET / http/1.1\r\nHost: h\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("GET /\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("GETGETGETGETGETGET / HTTP/1.1\r\nHost: h\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("G\xc3T / HTTP/1.1\r\nHost: h\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n"), BERR_BAD_REQUEST);
}

/* Host: required once in HTTP/1.1, never twice. Expect: only 100-continue. */
static void rejects_host_and_expect_violations(void)
{
    CHECK_ERR(parse("GET / HTTP/1.1\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n"), BERR_BAD_REQUEST);
}

/* Heads past HTTP1_HEAD_MAX and more than HTTP1_HEADERS_MAX lines are refused, complete or not. */
static void rejects_oversized_heads(void)
{
    size_t n = HTTP1_HEAD_MAX + 64;
    char *big = malloc(n + 1);
    REQUIRE(big != NULL);
    memset(big, 'a', n);
    memcpy(big, "GET /", 5);
    big[n] = '\0';
    CHECK_ERR(http1_parse_request(big, n, &req), BERR_BAD_REQUEST);
    memcpy(big, "GET / HTTP/1.1\r\nHost: h\r\nX: ", 28);
    memcpy(big + n - 4, "\r\n\r\n", 4);
    CHECK_ERR(http1_parse_request(big, n, &req), BERR_BAD_REQUEST);
    {
        size_t off = (size_t)sprintf(big, "GET / HTTP/1.1\r\nHost: h\r\n");
        for (int i = 0; i < HTTP1_HEADERS_MAX; i++)
            off += (size_t)sprintf(big + off, "X: %d\r\n", i);
        off += (size_t)sprintf(big + off, "\r\n");
        CHECK_ERR(http1_parse_request(big, off, &req), BERR_BAD_REQUEST);
    }
    free(big);
}

/* A binary stream (a TLS ClientHello on the plain port) is refused before any line end arrives. */
static void rejects_binary_without_waiting(void)
{
    CHECK_ERR(http1_parse_request("\x16\x03\x01\x02\x00\x01", 6, &req), BERR_BAD_REQUEST);
    CHECK_ERR(parse("GET /\x01"), BERR_BAD_REQUEST);
    CHECK_ERR(parse("GET / HTTP/1.1\r\nHost: h\r\nX: \x02"), BERR_BAD_REQUEST);
    CHECK_INT_EQ(parse("GET / HTTP/1.1\r\nHost: h\r\nX: \xc3\xa9"), 0);
}

/* Recognizes the HTTP/2 preface and its prefixes (prior-knowledge h2c), nothing else. */
static void recognizes_h2_preface(void)
{
    const char *p = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    CHECK_INT_EQ(http1_is_h2_preface(p, 3), 1);
    CHECK_INT_EQ(http1_is_h2_preface(p, strlen(p)), 2);
    CHECK_INT_EQ(http1_is_h2_preface("GET / HTTP/1.1\r\n", 16), 0);
}

/* ---- chunked ---- */

/* Decodes `in` fed `step` bytes at a time into `out`; returns END, or the error. */
static int dechunk(const char *in, size_t len, size_t step, char *out, size_t *out_len, size_t *tail)
{
    struct http1_chunked c;
    size_t pos = 0;
    *out_len = 0;
    http1_chunked_init(&c);
    while (pos < len) {
        size_t n = len - pos < step ? len - pos : step, used = 0, off = 0;
        for (;;) {
            const char *d;
            size_t dl;
            int rc = http1_chunked_step(&c, in + pos + off, n - off, &used, &d, &dl);
            off += used;
            if (rc == HTTP1_CHUNK_DATA) {
                memcpy(out + *out_len, d, dl);
                *out_len += dl;
                continue;
            }
            if (rc == HTTP1_CHUNK_END) {
                *tail = len - pos - off;
                return rc;
            }
            if (rc < 0)
                return rc;
            break;
        }
        pos += n;
    }
    return HTTP1_CHUNK_MORE;
}

/* Decodes sizes in either case, extensions and trailers, fed whole and one byte at a time; stops at the end. */
static void chunked_decodes_any_split(void)
{
    const char *in = "5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-T: y\r\n\r\nGET";
    char out[64];
    size_t ol = 0, tail = 0;
    for (size_t step = 1; step <= strlen(in); step++) {
        CHECK_INT_EQ(dechunk(in, strlen(in), step, out, &ol, &tail), HTTP1_CHUNK_END);
        CHECK_MEM_EQ(out, ol, "hello0123456789", 15);
        CHECK_INT_EQ(tail, 3);
    }
}

static int dechunk_all(const char *in)
{
    char out[256];
    size_t ol, tail;
    return dechunk(in, strlen(in), strlen(in), out, &ol, &tail);
}

/* Malformed framing: bare LF, missing CRLF after data, bad hex, spaces, empty size, oversized size, obs-fold. */
static void chunked_rejects_malformed(void)
{
    CHECK_ERR(dechunk_all("5\nhello\r\n0\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(dechunk_all("5\r\nhelloX\r\n0\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(dechunk_all("5\r\nhello\n0\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(dechunk_all("g\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(dechunk_all(" 5\r\nhello\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(dechunk_all("5 \r\nhello\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(dechunk_all("\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(dechunk_all("-5\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(dechunk_all("1000000000000000\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(dechunk_all("0\r\nX: a\r\n b\r\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(dechunk_all("0\r\nX: a\n\r\n"), BERR_BAD_REQUEST);
    CHECK_ERR(dechunk_all("0\r\n\n"), BERR_BAD_REQUEST);
    CHECK_ERR(dechunk_all("5;a\x01\r\nhello\r\n"), BERR_BAD_REQUEST);
}

/* An unfinished body asks for more; a huge chunk is fine (sizes up to 15 hex digits). */
static void chunked_wants_more_until_end(void)
{
    CHECK_INT_EQ(dechunk_all("5\r\nhel"), HTTP1_CHUNK_MORE);
    CHECK_INT_EQ(dechunk_all("5\r\nhello\r\n0\r\n"), HTTP1_CHUNK_MORE);
    CHECK_INT_EQ(dechunk_all("fffffffffffffff\r\nab"), HTTP1_CHUNK_MORE);
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(parses_simple_get),
        CHECK_TEST(incomplete_heads_ask_for_more),
        CHECK_TEST(reads_framing_headers),
        CHECK_TEST(skips_few_leading_crlf),
        CHECK_TEST(rejects_length_and_chunked),
        CHECK_TEST(rejects_bad_content_length),
        CHECK_TEST(rejects_other_transfer_codings),
        CHECK_TEST(rejects_bare_lf_and_lone_cr),
        CHECK_TEST(rejects_malformed_header_lines),
        CHECK_TEST(rejects_malformed_request_lines),
        CHECK_TEST(rejects_host_and_expect_violations),
        CHECK_TEST(rejects_oversized_heads),
        CHECK_TEST(rejects_binary_without_waiting),
        CHECK_TEST(recognizes_h2_preface),
        CHECK_TEST(chunked_decodes_any_split),
        CHECK_TEST(chunked_rejects_malformed),
        CHECK_TEST(chunked_wants_more_until_end),
    };
    return check_run(tests, CHECK_COUNT(tests), argc, argv);
}
