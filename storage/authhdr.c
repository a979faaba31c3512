/* authhdr.c - parsing of the Authorization header's Basic and Bearer credentials (authhdr.h). */
#include <string.h>
#include <strings.h>
#include <sodium.h>
#include "authhdr.h"

void authhdr_clear(struct authhdr *a)
{
    sodium_memzero(a->pass, sizeof(a->pass));
}

/* Does `v[0..len)` start with `scheme` (any case) and a space?  *off is then the first byte after the spaces. */
static int scheme_is(const char *v, size_t len, const char *scheme, size_t *off)
{
    size_t n = strlen(scheme);
    if (len <= n || strncasecmp(v, scheme, n) != 0 || v[n] != ' ')
        return 0;
    for (*off = n; *off < len && v[*off] == ' '; (*off)++)
        ;
    return 1;
}

/* Is `s[0..len)` made of base64 characters only?  libsodium 1.0.18 decodes bytes >= 0x80 as if they were
 * alphabet characters (found by tests/fuzz/fuzz_jwt.c); such credentials are malformed. */
static int b64_chars_only(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
              c == '='))
            return 0;
    }
    return 1;
}

/* Decodes base64 `b64[0..len)` "user:password" into `a`; leaves `a` MALFORMED when it is not that. */
static void parse_basic(const char *b64, size_t len, struct authhdr *a)
{
    unsigned char buf[BERTH_AUTH_NAME_MAX + BERTH_AUTH_PASSWORD_MAX + 4];
    const unsigned char *colon;
    size_t n;
    if (!b64_chars_only(b64, len))
        return;
    if (sodium_base642bin(buf, sizeof(buf) - 1, b64, len, NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
        return;
    colon = memchr(buf, ':', n);
    if (colon == NULL || (size_t)(colon - buf) >= sizeof(a->user) ||
        n - (size_t)(colon - buf) - 1 > BERTH_AUTH_PASSWORD_MAX) {
        sodium_memzero(buf, sizeof(buf));
        return;
    }
    a->ulen = (size_t)(colon - buf);
    memcpy(a->user, buf, a->ulen);
    a->user[a->ulen] = '\0';
    a->plen = n - a->ulen - 1;
    memcpy(a->pass, colon + 1, a->plen);
    sodium_memzero(buf, sizeof(buf));
    a->kind = AUTHHDR_BASIC;
}

void authhdr_parse(const char *v, size_t len, struct authhdr *out)
{
    size_t off;
    memset(out, 0, sizeof(*out));
    if (v == NULL)
        return;
    out->kind = AUTHHDR_MALFORMED;
    while (len > 0 && v[len - 1] == ' ')
        len--;
    if (scheme_is(v, len, "bearer", &off)) {
        out->kind = AUTHHDR_BEARER;
        out->token = v + off;
        out->token_len = len - off;
    } else if (scheme_is(v, len, "basic", &off)) {
        parse_basic(v + off, len - off, out);
    }
}
