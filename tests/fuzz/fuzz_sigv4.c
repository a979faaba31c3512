/*
 * fuzz_sigv4.c - libFuzzer target for sigv4.h: the Authorization header parser, X-Amz-Date, and the canonical
 * request (path, query, headers) behind signing and verification.
 *
 * Input: lines separated by '\n': [0] an Authorization value, [1] an X-Amz-Date value, [2] a method, [3] a path,
 * [4] a query, [5..] headers "name:value" (the name reduced to token characters, so that a signer could send it).
 * Beyond "no crash, no sanitizer report":
 *   - a parsed Authorization has NUL-terminated fields without blanks or controls, an 8-digit date, a 64-byte
 *     signature and a sorted, unique, lower-case SignedHeaders list (one without host is refused when the canonical
 *     request is built); formatted back as a header value it parses to the same fields (round trip);
 *   - an accepted X-Amz-Date formats back to the same text (no impossible date such as February 30 is accepted);
 *   - the request, signed with sigv4_sign(), verifies with sigv4_verify() after its own header was parsed back;
 *     it still verifies with the headers in reverse order (canonical form independent of the order of distinct
 *     headers); and it
 *     does not verify with another secret, another region, another method, one more byte of path (double encoding
 *     is injective), or a clock past SIGV4_MAX_SKEW.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "fuzz_common.h"
#include "sigv4.h"

#define MAX_LINES 24
#define FUZZ_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define FUZZ_DATE "20150830T123600Z"

struct line {
    const char *p;
    size_t n;
};

static size_t split(const uint8_t *data, size_t size, struct line *l, size_t max)
{
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= size && k < max; i++)
        if (i == size || data[i] == '\n') {
            l[k].p = (const char *)data + start;
            l[k++].n = i - start;
            start = i + 1;
        }
    return k;
}

static int blank_or_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || *s == 0x7f)
            return 1;
    return 0;
}

static void check_authorization(const char *v, size_t n)
{
    struct sigv4_auth a, b;
    char again[4 * SIGV4_AUTHZ_MAX];
    int len;
    if (sigv4_parse_authorization(v, n, &a) != 0)
        return;
    FUZZ_ASSERT(strlen(a.key_id) > 0 && strlen(a.key_id) <= SIGV4_KEY_ID_MAX && !blank_or_control(a.key_id));
    FUZZ_ASSERT(strlen(a.date) == 8 && strspn(a.date, "0123456789") == 8);
    FUZZ_ASSERT(strlen(a.region) > 0 && strlen(a.region) <= SIGV4_REGION_MAX && !blank_or_control(a.region));
    FUZZ_ASSERT(strlen(a.service) > 0 && strlen(a.service) <= SIGV4_SERVICE_MAX && !blank_or_control(a.service));
    FUZZ_ASSERT(strlen(a.signature) == SIGV4_HEX_LEN && !blank_or_control(a.signature));
    FUZZ_ASSERT(!blank_or_control(a.signed_headers));
    /* SignedHeaders: sorted, unique, lower case, names host */
    int host = 0;
    for (const char *p = a.signed_headers, *prev = NULL; p != NULL;) {
        const char *end = strchr(p, ';');
        size_t l = end ? (size_t)(end - p) : strlen(p);
        FUZZ_ASSERT(l > 0);
        for (size_t i = 0; i < l; i++)
            FUZZ_ASSERT(!(p[i] >= 'A' && p[i] <= 'Z'));
        if (prev != NULL) {
            size_t pl = (size_t)(p - 1 - prev), m = pl < l ? pl : l;
            int c = memcmp(prev, p, m);
            FUZZ_ASSERT(c < 0 || (c == 0 && pl < l));
        }
        host |= l == 4 && memcmp(p, "host", 4) == 0;
        prev = p;
        p = end ? end + 1 : NULL;
    }
    if (!host) { /* parsed, but refused when verified: the signature must cover host */
        struct sigv4_header h = {"x-amz-date", 10, "20150830T123600Z", SIGV4_AMZDATE_LEN};
        struct sigv4_request r = {"GET", "/", 1, "", 0, &h, 1, "", 1};
        char *creq = NULL;
        FUZZ_ASSERT(sigv4_canonical_request(&r, a.signed_headers, &creq) == SIGV4_EMISSING && creq == NULL);
    }
    len = snprintf(again, sizeof(again), "%s Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, Signature=%s",
                   SIGV4_ALGORITHM, a.key_id, a.date, a.region, a.service, a.signed_headers, a.signature);
    FUZZ_ASSERT(len > 0 && (size_t)len < sizeof(again));
    FUZZ_ASSERT(sigv4_parse_authorization(again, (size_t)len, &b) == 0);
    FUZZ_ASSERT(!strcmp(a.key_id, b.key_id) && !strcmp(a.date, b.date) && !strcmp(a.region, b.region) &&
                !strcmp(a.service, b.service) && !strcmp(a.signed_headers, b.signed_headers) &&
                !strcmp(a.signature, b.signature));
    /* each field once: a second Credential, SignedHeaders or Signature is refused */
    len = snprintf(again, sizeof(again), "%.*s, Signature=%s", (int)n, v, a.signature);
    FUZZ_ASSERT(sigv4_parse_authorization(again, (size_t)len, &b) == SIGV4_EMALFORMED);
}

static void check_amzdate(const char *v, size_t n)
{
    char back[SIGV4_AMZDATE_LEN + 1];
    time_t t;
    if (sigv4_parse_amzdate(v, n, &t) != 0)
        return;
    sigv4_format_amzdate(t, back);
    FUZZ_ASSERT(n == SIGV4_AMZDATE_LEN && memcmp(back, v, n) == 0);
}

/* Header names from the input, reduced to lower-case token characters ("" becomes "x"). */
static char names[MAX_LINES][64];

static int seen(const struct sigv4_header *h, size_t nh, const char *name)
{
    for (size_t i = 0; i < nh; i++)
        if (h[i].name_len == strlen(name) && strncasecmp(h[i].name, name, h[i].name_len) == 0)
            return 1;
    return 0;
}

static size_t build_headers(const struct line *l, size_t k, struct sigv4_header *h)
{
    size_t nh = 0;
    h[nh++] = (struct sigv4_header){"Host", 4, "ecr.example.com:5000", 20};
    h[nh++] = (struct sigv4_header){"X-Amz-Date", 10, FUZZ_DATE, SIGV4_AMZDATE_LEN};
    for (size_t i = 5; i < k && nh < SIGV4_HEADERS_MAX; i++) {
        const char *colon = memchr(l[i].p, ':', l[i].n);
        size_t nl = colon ? (size_t)(colon - l[i].p) : l[i].n, o = 0;
        for (size_t j = 0; j < nl && o < sizeof(names[0]) - 1; j++) {
            char c = l[i].p[j];
            if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')
                names[i][o++] = c;
            else if (c >= 'A' && c <= 'Z')
                names[i][o++] = (char)(c + 32);
        }
        if (o == 0)
            names[i][o++] = 'x';
        names[i][o] = '\0';
        if (strcmp(names[i], "x-amz-date") == 0 || strcmp(names[i], "host") == 0 || seen(h, nh, names[i]))
            continue; /* the signer's own; a repeated name (its values' order is signed, so no reordering) */
        h[nh++] = (struct sigv4_header){names[i], o, colon ? colon + 1 : "", colon ? l[i].n - nl - 1 : 0};
    }
    return nh;
}

static int verify(const struct sigv4_request *r, const char *authz, const char *secret, const char *region, time_t now)
{
    struct sigv4_auth a;
    FUZZ_ASSERT(sigv4_parse_authorization(authz, strlen(authz), &a) == 0);
    return sigv4_verify(r, &a, secret, strlen(secret), region, "ecr", now);
}

static void check_sign_verify(const struct line *l, size_t k)
{
    struct sigv4_header h[SIGV4_HEADERS_MAX], rev[SIGV4_HEADERS_MAX];
    char method[32], path[512], hash[SIGV4_HEX_LEN + 1], authz[SIGV4_AUTHZ_MAX];
    size_t nh = build_headers(l, k, h), mlen = l[2].n < sizeof(method) - 1 ? l[2].n : sizeof(method) - 1,
           plen = l[3].n < sizeof(path) - 2 ? l[3].n : sizeof(path) - 2;
    time_t now;
    memcpy(method, l[2].p, mlen);
    method[mlen] = '\0';
    if (strlen(method) != mlen)
        return; /* a NUL inside: a method is a C string */
    memcpy(path, l[3].p, plen);
    sigv4_sha256_hex(l[3].p, l[3].n, hash);
    struct sigv4_request r = {method, path, plen, l[4].p, l[4].n, h, nh, hash, 1};
    if (sigv4_sign(&r, "AKIDEXAMPLE", FUZZ_SECRET, strlen(FUZZ_SECRET), "us-east-1", "ecr", authz) != 0)
        return; /* too many or too long header names for one signature: the signer refuses */
    FUZZ_ASSERT(sigv4_parse_amzdate(FUZZ_DATE, SIGV4_AMZDATE_LEN, &now) == 0);
    FUZZ_ASSERT(verify(&r, authz, FUZZ_SECRET, "us-east-1", now) == 0);
    for (size_t i = 0; i < nh; i++)
        rev[i] = h[nh - 1 - i];
    r.headers = rev;
    FUZZ_ASSERT(verify(&r, authz, FUZZ_SECRET, "us-east-1", now + 60) == 0);
    FUZZ_ASSERT(verify(&r, authz, FUZZ_SECRET "x", "us-east-1", now) == SIGV4_EMISMATCH);
    FUZZ_ASSERT(verify(&r, authz, FUZZ_SECRET, "eu-west-1", now) == SIGV4_EREGION);
    FUZZ_ASSERT(verify(&r, authz, FUZZ_SECRET, "us-east-1", now + SIGV4_MAX_SKEW + 1) == SIGV4_ESTALE);
    r.method = strcmp(method, "PUT") == 0 ? "POST" : "PUT";
    FUZZ_ASSERT(verify(&r, authz, FUZZ_SECRET, "us-east-1", now) == SIGV4_EMISMATCH);
    r.method = method;
    path[plen] = 'a';
    r.path_len = plen + 1;
    FUZZ_ASSERT(verify(&r, authz, FUZZ_SECRET, "us-east-1", now) == SIGV4_EMISMATCH);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct line l[MAX_LINES];
    size_t k = split(data, size, l, MAX_LINES);
    check_authorization(l[0].p, l[0].n);
    if (k > 1)
        check_amzdate(l[1].p, l[1].n);
    if (k > 4)
        check_sign_verify(l, k);
    return 0;
}
