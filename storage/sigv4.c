/* sigv4.c - AWS Signature Version 4: canonical request, string to sign, signing key, sign and verify (pure). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "sigv4.h"

/* A growing NUL-terminated string; `failed` latches an allocation failure so callers check once at the end. */
struct sbuf {
    char *p;
    size_t len, cap;
    int failed;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void sb_chr(struct sbuf *b, char c)
{
    sb_add(b, &c, 1);
}

/* Hands the buffer's string to the caller, or frees it and returns SIGV4_ENOMEM. */
static int sb_finish(struct sbuf *b, char **out)
{
    if (b->failed || b->p == NULL) {
        free(b->p);
        return SIGV4_ENOMEM;
    }
    *out = b->p;
    return 0;
}

static void to_hex(const unsigned char *bin, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[bin[i] >> 4];
        out[2 * i + 1] = hex[bin[i] & 15];
    }
    out[2 * n] = '\0';
}

void sigv4_sha256_hex(const void *data, size_t len, char out[SIGV4_HEX_LEN + 1])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, data, len);
    to_hex(h, sizeof(h), out);
}

static void hmac(const unsigned char *key, size_t keylen, const void *msg, size_t len, unsigned char out[32])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, keylen);
    crypto_auth_hmacsha256_update(&st, msg, len);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof(st));
}

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.' || c == '~';
}

/* Appends `s[0..n)` percent-encoded (upper-case hex); '/' stays as is when `keep_slash`. */
static void uri_encode(struct sbuf *b, const char *s, size_t n, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            sb_chr(b, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            sb_add(b, e, 3);
        }
    }
}

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

/* Percent-decodes `s[0..n)` into `out` (room for n bytes); '+' stays '+' (RFC 3986, not forms).  Returns the
 * decoded length. */
static size_t uri_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    return o;
}

static void canonical_uri(struct sbuf *b, const struct sigv4_request *req)
{
    if (req->path_len == 0) {
        sb_chr(b, '/');
        return;
    }
    if (req->double_encode) {
        uri_encode(b, req->path, req->path_len, 1);
        return;
    }
    char *tmp = malloc(req->path_len);
    if (tmp == NULL) {
        b->failed = 1;
        return;
    }
    size_t n = uri_decode(req->path, req->path_len, tmp);
    uri_encode(b, tmp, n, 1);
    free(tmp);
}

/* One query parameter, name and value already in canonical (strictly re-encoded) form. */
struct qparam {
    char *name;
    char *value;
};

static int qparam_cmp(const void *a, const void *b)
{
    const struct qparam *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

/* Decodes then strictly re-encodes `s[0..n)` into a malloc'd string (NULL when out of memory). */
static char *reencode(const char *s, size_t n)
{
    struct sbuf b = {0};
    char *tmp = malloc(n + 1);
    if (tmp == NULL)
        return NULL;
    size_t dn = uri_decode(s, n, tmp);
    sb_add(&b, "", 0);
    uri_encode(&b, tmp, dn, 0);
    free(tmp);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

static void free_params(struct qparam *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].value);
    }
    free(v);
}

static void canonical_query(struct sbuf *b, const char *q, size_t qlen)
{
    size_t cap = 1;
    for (size_t i = 0; i < qlen; i++)
        cap += q[i] == '&';
    struct qparam *v = calloc(cap, sizeof(*v));
    size_t n = 0;
    if (v == NULL) {
        b->failed = 1;
        return;
    }
    for (size_t i = 0; i < qlen;) {
        size_t end = i;
        while (end < qlen && q[end] != '&')
            end++;
        if (end > i) {
            size_t eq = i;
            while (eq < end && q[eq] != '=')
                eq++;
            v[n].name = reencode(q + i, eq - i);
            v[n].value = eq < end ? reencode(q + eq + 1, end - eq - 1) : reencode("", 0);
            if (v[n].name == NULL || v[n].value == NULL)
                b->failed = 1;
            n++;
        }
        i = end + 1;
    }
    if (!b->failed) {
        qsort(v, n, sizeof(*v), qparam_cmp);
        for (size_t i = 0; i < n; i++) {
            if (i)
                sb_chr(b, '&');
            sb_str(b, v[i].name);
            sb_chr(b, '=');
            sb_str(b, v[i].value);
        }
    }
    free_params(v, n);
}

static int name_eq(const struct sigv4_header *h, const char *name, size_t len)
{
    return h->name_len == len && strncasecmp(h->name, name, len) == 0;
}

/* Appends a header value trimmed, with inner runs of blanks folded to one space. */
static void add_trimmed(struct sbuf *b, const char *v, size_t n)
{
    while (n > 0 && (v[0] == ' ' || v[0] == '\t'))
        v++, n--;
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == ' ' || v[i] == '\t') {
            sb_chr(b, ' ');
            while (i + 1 < n && (v[i + 1] == ' ' || v[i + 1] == '\t'))
                i++;
        } else {
            sb_chr(b, v[i]);
        }
    }
}

/* Appends "name:v1,v2\n" for one signed header.  Returns 0 or SIGV4_EMISSING if the request lacks it. */
static int canonical_header(struct sbuf *b, const struct sigv4_request *req, const char *name, size_t len)
{
    int found = 0;
    sb_add(b, name, len);
    sb_chr(b, ':');
    for (size_t i = 0; i < req->nheaders; i++) {
        if (!name_eq(&req->headers[i], name, len))
            continue;
        if (found++)
            sb_chr(b, ',');
        add_trimmed(b, req->headers[i].value, req->headers[i].value_len);
    }
    sb_chr(b, '\n');
    return found ? 0 : SIGV4_EMISSING;
}

/* Checks that a SignedHeaders list is lower-case, sorted, unique, non-empty items and names `host`. */
static int check_signed_list(const char *list)
{
    const char *prev = NULL;
    size_t prev_len = 0;
    int has_host = 0;
    for (const char *p = list;;) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0)
            return SIGV4_EMALFORMED;
        for (size_t i = 0; i < len; i++)
            if (p[i] >= 'A' && p[i] <= 'Z')
                return SIGV4_EMALFORMED;
        if (prev != NULL) {
            size_t m = prev_len < len ? prev_len : len;
            int c = memcmp(prev, p, m);
            if (c > 0 || (c == 0 && prev_len >= len))
                return SIGV4_EMALFORMED;
        }
        if (len == 4 && memcmp(p, "host", 4) == 0)
            has_host = 1;
        prev = p;
        prev_len = len;
        if (end == NULL)
            break;
        p = end + 1;
    }
    return has_host ? 0 : SIGV4_EMISSING;
}

int sigv4_canonical_request(const struct sigv4_request *req, const char *signed_headers, char **out)
{
    struct sbuf b = {0};
    int rc = check_signed_list(signed_headers);
    if (rc < 0)
        return rc == SIGV4_EMALFORMED ? SIGV4_EMISSING : rc;
    sb_str(&b, req->method);
    sb_chr(&b, '\n');
    canonical_uri(&b, req);
    sb_chr(&b, '\n');
    canonical_query(&b, req->query, req->query_len);
    sb_chr(&b, '\n');
    for (const char *p = signed_headers; rc == 0;) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        rc = canonical_header(&b, req, p, len);
        if (end == NULL)
            break;
        p = end + 1;
    }
    if (rc < 0) {
        free(b.p);
        return rc;
    }
    sb_chr(&b, '\n');
    sb_str(&b, signed_headers);
    sb_chr(&b, '\n');
    sb_str(&b, req->payload_hash);
    return sb_finish(&b, out);
}

int sigv4_string_to_sign(const char *amz_date, const char *region, const char *service, const char *creq, char **out)
{
    struct sbuf b = {0};
    char h[SIGV4_HEX_LEN + 1];
    sigv4_sha256_hex(creq, strlen(creq), h);
    sb_str(&b, SIGV4_ALGORITHM "\n");
    sb_str(&b, amz_date);
    sb_chr(&b, '\n');
    sb_add(&b, amz_date, 8);
    sb_chr(&b, '/');
    sb_str(&b, region);
    sb_chr(&b, '/');
    sb_str(&b, service);
    sb_str(&b, "/aws4_request\n");
    sb_str(&b, h);
    return sb_finish(&b, out);
}

void sigv4_signing_key(const char *secret, size_t secret_len, const char *date, const char *region, const char *service,
                       unsigned char key[32])
{
    unsigned char k[32];
    size_t kslen = 4 + secret_len;
    unsigned char *ks = malloc(kslen);
    if (ks == NULL) { /* cannot sign: a zero key never matches a real signature */
        memset(key, 0, 32);
        return;
    }
    memcpy(ks, "AWS4", 4);
    memcpy(ks + 4, secret, secret_len);
    hmac(ks, kslen, date, strlen(date), k);
    sodium_memzero(ks, kslen);
    free(ks);
    hmac(k, 32, region, strlen(region), k);
    hmac(k, 32, service, strlen(service), k);
    hmac(k, 32, "aws4_request", 12, key);
    sodium_memzero(k, sizeof(k));
}

/* Computes the hex signature of `req` over `signed_headers` at `amz_date` with the derived `key` into `sig`. */
static int compute_with_key(const struct sigv4_request *req, const char *signed_headers, const char *amz_date,
                            const char *region, const char *service, const unsigned char key[32],
                            char sig[SIGV4_HEX_LEN + 1])
{
    char *creq = NULL, *sts = NULL;
    unsigned char mac[32];
    int rc = sigv4_canonical_request(req, signed_headers, &creq);
    if (rc < 0)
        return rc;
    rc = sigv4_string_to_sign(amz_date, region, service, creq, &sts);
    free(creq);
    if (rc < 0)
        return rc;
    hmac(key, 32, sts, strlen(sts), mac);
    free(sts);
    to_hex(mac, sizeof(mac), sig);
    return 0;
}

/* Computes the hex signature of `req` over `signed_headers` at `amz_date` into `sig`. */
static int compute(const struct sigv4_request *req, const char *signed_headers, const char *amz_date,
                   const char *secret, size_t secret_len, const char *region, const char *service,
                   char sig[SIGV4_HEX_LEN + 1])
{
    char date[9];
    unsigned char key[32];
    int rc;
    memcpy(date, amz_date, 8);
    date[8] = '\0';
    sigv4_signing_key(secret, secret_len, date, region, service, key);
    rc = compute_with_key(req, signed_headers, amz_date, region, service, key, sig);
    sodium_memzero(key, sizeof(key));
    return rc;
}

/* Finds the value of header `name` (lower-case).  Returns NULL if absent. */
static const struct sigv4_header *find_header(const struct sigv4_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (name_eq(&req->headers[i], name, strlen(name)))
            return &req->headers[i];
    return NULL;
}

static int lname_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Builds the sorted, de-duplicated lower-case list of every header name of `req`. */
static int all_header_names(const struct sigv4_request *req, char *out, size_t cap)
{
    char names[SIGV4_HEADERS_MAX][SIGV4_SIGNED_HEADERS_MAX / 8];
    char *ptrs[SIGV4_HEADERS_MAX];
    size_t n = 0, len = 0;
    if (req->nheaders > SIGV4_HEADERS_MAX)
        return SIGV4_EMISSING;
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct sigv4_header *h = &req->headers[i];
        if (h->name_len == 0 || h->name_len >= sizeof(names[0]))
            return SIGV4_EMISSING;
        for (size_t j = 0; j < h->name_len; j++)
            names[n][j] = (char)((h->name[j] >= 'A' && h->name[j] <= 'Z') ? h->name[j] + 32 : h->name[j]);
        names[n][h->name_len] = '\0';
        ptrs[n] = names[n];
        n++;
    }
    qsort(ptrs, n, sizeof(ptrs[0]), lname_cmp);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(ptrs[i], ptrs[i - 1]) == 0)
            continue;
        size_t l = strlen(ptrs[i]);
        if (len + l + 2 > cap)
            return SIGV4_EMISSING;
        if (len)
            out[len++] = ';';
        memcpy(out + len, ptrs[i], l + 1);
        len += l;
    }
    return 0;
}

int sigv4_sign(const struct sigv4_request *req, const char *key_id, const char *secret, size_t secret_len,
               const char *region, const char *service, char out[SIGV4_AUTHZ_MAX])
{
    char signed_headers[SIGV4_SIGNED_HEADERS_MAX + 1], date[SIGV4_AMZDATE_LEN + 1], sig[SIGV4_HEX_LEN + 1];
    const struct sigv4_header *d = find_header(req, "x-amz-date");
    time_t t;
    if (d == NULL || sigv4_parse_amzdate(d->value, d->value_len, &t) < 0)
        return SIGV4_EDATE;
    memcpy(date, d->value, SIGV4_AMZDATE_LEN);
    date[SIGV4_AMZDATE_LEN] = '\0';
    int rc = all_header_names(req, signed_headers, sizeof(signed_headers));
    if (rc == 0)
        rc = compute(req, signed_headers, date, secret, secret_len, region, service, sig);
    if (rc < 0)
        return rc;
    int n = snprintf(out, SIGV4_AUTHZ_MAX, "%s Credential=%s/%.8s/%s/%s/aws4_request, SignedHeaders=%s, Signature=%s",
                     SIGV4_ALGORITHM, key_id, date, region, service, signed_headers, sig);
    return n > 0 && n < SIGV4_AUTHZ_MAX ? 0 : SIGV4_ENOMEM;
}

int sigv4_presign(const struct sigv4_request *req, const char *key_id, const char *secret, size_t secret_len,
                  const char *region, const char *service, time_t t, long expires, char *out, size_t cap)
{
    char date[SIGV4_AMZDATE_LEN + 1], sig[SIGV4_HEX_LEN + 1], cred[SIGV4_KEY_ID_MAX + 200];
    struct sigv4_request r = *req;
    struct sbuf q = {0};
    int rc;
    if (find_header(req, "host") == NULL)
        return SIGV4_EMISSING;
    if (expires < 1 || expires > SIGV4_PRESIGN_MAX)
        return SIGV4_EMALFORMED;
    sigv4_format_amzdate(t, date);
    snprintf(cred, sizeof(cred), "%s/%.8s/%s/%s/aws4_request", key_id, date, region, service);
    sb_add(&q, req->query, req->query_len);
    if (req->query_len > 0)
        sb_chr(&q, '&');
    sb_str(&q, "X-Amz-Algorithm=" SIGV4_ALGORITHM "&X-Amz-Credential=");
    uri_encode(&q, cred, strlen(cred), 0);
    sb_str(&q, "&X-Amz-Date=");
    sb_str(&q, date);
    snprintf(cred, sizeof(cred), "&X-Amz-Expires=%ld&X-Amz-SignedHeaders=host", expires);
    sb_str(&q, cred);
    if (q.failed) {
        free(q.p);
        return SIGV4_ENOMEM;
    }
    r.query = q.p;
    r.query_len = q.len;
    r.payload_hash = SIGV4_UNSIGNED;
    if ((rc = compute(&r, "host", date, secret, secret_len, region, service, sig)) == 0) {
        int n = snprintf(out, cap, "%s&X-Amz-Signature=%s", q.p, sig);
        rc = n > 0 && (size_t)n < cap ? 0 : SIGV4_ENOMEM;
    }
    free(q.p);
    return rc;
}

/* Copies `s[0..n)` into `dst` (cap bytes with the NUL) if it fits and holds no control characters. */
static int copy_field(char *dst, size_t cap, const char *s, size_t n)
{
    if (n == 0 || n >= cap)
        return SIGV4_EMALFORMED;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || s[i] == 0x7f)
            return SIGV4_EMALFORMED;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

/* Parses "<key>/<yyyymmdd>/<region>/<service>/aws4_request". */
static int parse_credential(const char *s, size_t n, struct sigv4_auth *out)
{
    const char *parts[5];
    size_t lens[5], k = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '/') {
            if (k == 5)
                return SIGV4_EMALFORMED;
            parts[k] = s + start;
            lens[k++] = i - start;
            start = i + 1;
        }
    }
    if (k != 5 || lens[4] != 12 || memcmp(parts[4], "aws4_request", 12) != 0 || lens[1] != 8)
        return SIGV4_EMALFORMED;
    for (size_t i = 0; i < 8; i++)
        if (parts[1][i] < '0' || parts[1][i] > '9')
            return SIGV4_EMALFORMED;
    if (copy_field(out->key_id, sizeof(out->key_id), parts[0], lens[0]) < 0 ||
        copy_field(out->date, sizeof(out->date), parts[1], lens[1]) < 0 ||
        copy_field(out->region, sizeof(out->region), parts[2], lens[2]) < 0 ||
        copy_field(out->service, sizeof(out->service), parts[3], lens[3]) < 0)
        return SIGV4_EMALFORMED;
    return 0;
}

int sigv4_parse_authorization(const char *value, size_t len, struct sigv4_auth *out)
{
    static const char alg[] = SIGV4_ALGORITHM " ";
    int have = 0;
    memset(out, 0, sizeof(*out));
    if (len < sizeof(alg) - 1 || memcmp(value, alg, sizeof(alg) - 1) != 0)
        return SIGV4_EMALFORMED;
    for (size_t i = sizeof(alg) - 1; i < len;) {
        while (i < len && (value[i] == ' ' || value[i] == ','))
            i++;
        size_t end = i;
        while (end < len && value[end] != ',')
            end++;
        const char *kv = value + i, *eq = memchr(kv, '=', end - i);
        if (eq == NULL) {
            if (end > i)
                return SIGV4_EMALFORMED;
            break;
        }
        size_t klen = (size_t)(eq - kv), vlen = end - i - klen - 1;
        while (vlen > 0 && eq[vlen] == ' ')
            vlen--;
        int rc = 0, bit = klen == 10 ? 1 : klen == 13 ? 2 : 4;
        if (have & bit) /* a field given twice (found by tests/fuzz/fuzz_sigv4.c: the last one won) */
            return SIGV4_EMALFORMED;
        if (klen == 10 && memcmp(kv, "Credential", 10) == 0)
            rc = parse_credential(eq + 1, vlen, out), have |= 1;
        else if (klen == 13 && memcmp(kv, "SignedHeaders", 13) == 0)
            rc = copy_field(out->signed_headers, sizeof(out->signed_headers), eq + 1, vlen), have |= 2;
        else if (klen == 9 && memcmp(kv, "Signature", 9) == 0)
            rc = copy_field(out->signature, sizeof(out->signature), eq + 1, vlen), have |= 4;
        else
            rc = SIGV4_EMALFORMED;
        if (rc < 0)
            return SIGV4_EMALFORMED;
        i = end;
    }
    if (have != 7 || strlen(out->signature) != SIGV4_HEX_LEN ||
        check_signed_list(out->signed_headers) == SIGV4_EMALFORMED)
        return SIGV4_EMALFORMED;
    return 0;
}

static int days_in_month(int year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return days[month - 1] + (month == 2 && leap);
}

int sigv4_parse_amzdate(const char *s, size_t len, time_t *out)
{
    struct tm tm = {0};
    int v[6];
    static const int off[6] = {0, 4, 6, 9, 11, 13}, width[6] = {4, 2, 2, 2, 2, 2};
    if (len != SIGV4_AMZDATE_LEN || s[8] != 'T' || s[15] != 'Z')
        return SIGV4_EDATE;
    for (int f = 0; f < 6; f++) {
        v[f] = 0;
        for (int i = 0; i < width[f]; i++) {
            char c = s[off[f] + i];
            if (c < '0' || c > '9')
                return SIGV4_EDATE;
            v[f] = v[f] * 10 + (c - '0');
        }
    }
    /* a real instant only (found by tests/fuzz/fuzz_sigv4.c: February 30 or second 60 named another instant's
     * text, so two spellings of one X-Amz-Date verified) */
    if (v[0] < 1970 || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > days_in_month(v[0], v[1]) || v[3] > 23 ||
        v[4] > 59 || v[5] > 59)
        return SIGV4_EDATE;
    tm.tm_year = v[0] - 1900;
    tm.tm_mon = v[1] - 1;
    tm.tm_mday = v[2];
    tm.tm_hour = v[3];
    tm.tm_min = v[4];
    tm.tm_sec = v[5];
    *out = timegm(&tm);
    return 0;
}

void sigv4_format_amzdate(time_t t, char out[SIGV4_AMZDATE_LEN + 1])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, SIGV4_AMZDATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm);
}

/* Is `name` one of the ';'-separated items of `list`? */
static int list_has(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p != NULL;) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0)
            return 1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

int sigv4_verify_prepare(const struct sigv4_request *req, const struct sigv4_auth *auth, const char *region,
                         const char *service, time_t now)
{
    const struct sigv4_header *d = find_header(req, "x-amz-date");
    time_t t;
    if (strcmp(auth->region, region) != 0)
        return SIGV4_EREGION;
    if (strcmp(auth->service, service) != 0)
        return SIGV4_ESERVICE;
    if (d == NULL || sigv4_parse_amzdate(d->value, d->value_len, &t) < 0 || memcmp(d->value, auth->date, 8) != 0)
        return SIGV4_EDATE;
    if (!list_has(auth->signed_headers, "x-amz-date") ||
        (find_header(req, "x-amz-security-token") && !list_has(auth->signed_headers, "x-amz-security-token")))
        return SIGV4_EMISSING;
    if (t > now + SIGV4_MAX_SKEW || t < now - SIGV4_MAX_SKEW)
        return SIGV4_ESTALE;
    return 0;
}

int sigv4_verify_key(const struct sigv4_request *req, const struct sigv4_auth *auth, const unsigned char key[32])
{
    char date[SIGV4_AMZDATE_LEN + 1], sig[SIGV4_HEX_LEN + 1];
    const struct sigv4_header *d = find_header(req, "x-amz-date");
    int rc;
    if (d == NULL || d->value_len != SIGV4_AMZDATE_LEN)
        return SIGV4_EDATE;
    memcpy(date, d->value, SIGV4_AMZDATE_LEN);
    date[SIGV4_AMZDATE_LEN] = '\0';
    rc = compute_with_key(req, auth->signed_headers, date, auth->region, auth->service, key, sig);
    if (rc < 0)
        return rc;
    return sodium_memcmp(sig, auth->signature, SIGV4_HEX_LEN) == 0 ? 0 : SIGV4_EMISMATCH;
}

int sigv4_verify(const struct sigv4_request *req, const struct sigv4_auth *auth, const char *secret, size_t secret_len,
                 const char *region, const char *service, time_t now)
{
    unsigned char key[32];
    int rc = sigv4_verify_prepare(req, auth, region, service, now);
    if (rc != 0)
        return rc;
    sigv4_signing_key(secret, secret_len, auth->date, region, service, key);
    rc = sigv4_verify_key(req, auth, key);
    sodium_memzero(key, sizeof(key));
    return rc;
}

const char *sigv4_strerror(int err)
{
    switch (err) {
    case 0:
        return "OK";
    case SIGV4_EMALFORMED:
        return "SIGV4_EMALFORMED";
    case SIGV4_EMISSING:
        return "SIGV4_EMISSING";
    case SIGV4_EDATE:
        return "SIGV4_EDATE";
    case SIGV4_ESTALE:
        return "SIGV4_ESTALE";
    case SIGV4_EREGION:
        return "SIGV4_EREGION";
    case SIGV4_ESERVICE:
        return "SIGV4_ESERVICE";
    case SIGV4_EMISMATCH:
        return "SIGV4_EMISMATCH";
    case SIGV4_ENOMEM:
        return "SIGV4_ENOMEM";
    default:
        return "SIGV4_E?";
    }
}
