/* test_authhdr.c - authhdr.h and negotiate.h: the Authorization and Accept header parsers the handlers call. */
#include "authhdr.h"
#include <sodium.h>
#include "check.h"
#include "jwt.h"
#include "negotiate.h"

static void parse(const char *v, struct authhdr *a)
{
    authhdr_parse(v, v != NULL ? strlen(v) : 0, a);
}

/* No header is NONE; a header in no known scheme is MALFORMED. */
static void authhdr_none_and_unknown_scheme(void)
{
    struct authhdr a;
    parse(NULL, &a);
    CHECK_INT_EQ(a.kind, AUTHHDR_NONE);
    parse("", &a);
    CHECK_INT_EQ(a.kind, AUTHHDR_MALFORMED);
    parse("Digest abc", &a);
    CHECK_INT_EQ(a.kind, AUTHHDR_MALFORMED);
    parse("Basic", &a);
    CHECK_INT_EQ(a.kind, AUTHHDR_MALFORMED);
    parse("Bearerx abc", &a);
    CHECK_INT_EQ(a.kind, AUTHHDR_MALFORMED);
}

/* Basic decodes user and password (the password may hold ':'); the scheme is case-insensitive. */
static void authhdr_basic_user_and_password(void)
{
    struct authhdr a;
    parse("Basic YWxpY2U6cGE6c3M=", &a); /* alice:pa:ss */
    CHECK_INT_EQ(a.kind, AUTHHDR_BASIC);
    CHECK_STR_EQ(a.user, "alice");
    CHECK_INT_EQ(a.ulen, 5);
    CHECK_INT_EQ(a.plen, 5);
    CHECK(memcmp(a.pass, "pa:ss", 5) == 0);
    authhdr_clear(&a);
    CHECK_INT_EQ(a.pass[0], 0);
    parse("bAsIc   YWxpY2U6cGE6c3M=  ", &a);
    CHECK_INT_EQ(a.kind, AUTHHDR_BASIC);
}

/* Basic without a colon, with bad base64, or with an over-long user or password is MALFORMED. */
static void authhdr_basic_rejects_malformed(void)
{
    struct authhdr a;
    char v[1024], raw[600];
    parse("Basic YWxpY2U=", &a); /* alice */
    CHECK_INT_EQ(a.kind, AUTHHDR_MALFORMED);
    parse("Basic !!!!", &a);
    CHECK_INT_EQ(a.kind, AUTHHDR_MALFORMED);
    memset(raw, 'u', BERTH_AUTH_NAME_MAX + 2);
    raw[BERTH_AUTH_NAME_MAX + 2] = ':';
    raw[BERTH_AUTH_NAME_MAX + 3] = 'p';
    memcpy(v, "Basic ", 6);
    sodium_bin2base64(v + 6, sizeof(v) - 6, (unsigned char *)raw, BERTH_AUTH_NAME_MAX + 4,
                      sodium_base64_VARIANT_ORIGINAL);
    parse(v, &a);
    CHECK_INT_EQ(a.kind, AUTHHDR_MALFORMED);
    raw[0] = 'u';
    raw[1] = ':';
    memset(raw + 2, 'p', BERTH_AUTH_PASSWORD_MAX + 1);
    sodium_bin2base64(v + 6, sizeof(v) - 6, (unsigned char *)raw, BERTH_AUTH_PASSWORD_MAX + 3,
                      sodium_base64_VARIANT_ORIGINAL);
    parse(v, &a);
    CHECK_INT_EQ(a.kind, AUTHHDR_MALFORMED);
}

/* A NUL inside the user name is kept and visible through ulen (callers refuse it). */
static void authhdr_basic_nul_in_user_is_visible(void)
{
    struct authhdr a;
    parse("Basic YQBiOnB3", &a); /* "a\0b:pw" */
    CHECK_INT_EQ(a.kind, AUTHHDR_BASIC);
    CHECK_INT_EQ(a.ulen, 3);
    CHECK_INT_EQ(strlen(a.user), 1);
}

/* Bearer points at the token, without leading or trailing spaces. */
static void authhdr_bearer_token(void)
{
    struct authhdr a;
    const char *v = "Bearer   abc.def.ghi  ";
    parse(v, &a);
    CHECK_INT_EQ(a.kind, AUTHHDR_BEARER);
    CHECK(a.token == v + 9);
    CHECK_INT_EQ(a.token_len, 11);
}

/* Found by fuzz_jwt: libsodium decodes bytes >= 0x80 as base64 characters ("QQ\xf0A" as "QQ_A"); Basic credentials
 * and JWT parts holding one are refused, so no token or password has two spellings. */
static void base64_rejects_bytes_outside_alphabet(void)
{
    struct authhdr a;
    unsigned char out[16];
    size_t n;
    CHECK_INT_EQ(jwt_b64_decode("QQ_A", 4, out, sizeof(out), &n), 0);
    CHECK_INT_EQ(jwt_b64_decode("QQ\xf0"
                                "A",
                                4, out, sizeof(out), &n),
                 -1);
    CHECK_INT_EQ(jwt_b64_decode("QQ\x80"
                                "A",
                                4, out, sizeof(out), &n),
                 -1);
    CHECK_INT_EQ(jwt_b64_decode("Q Q_", 4, out, sizeof(out), &n), -1);
    parse("Basic YWxpY2U6cGE6c3M=", &a);
    CHECK_INT_EQ(a.kind, AUTHHDR_BASIC);
    parse("Basic YWxpY2U6cGE6c3\xf0=", &a);
    CHECK_INT_EQ(a.kind, AUTHHDR_MALFORMED);
}

static int acc(const char *v, const char *mt, int wildcards)
{
    return negotiate_accept_lists(v, strlen(v), mt, wildcards);
}

/* Lists are split on commas; spaces, tabs and parameters around an entry are ignored; matching is exact. */
static void negotiate_matches_entries_exactly(void)
{
    CHECK_INT_EQ(acc("application/json", "application/json", 0), 1);
    CHECK_INT_EQ(acc("text/plain, \tapplication/json;q=0.5", "application/json", 0), 1);
    CHECK_INT_EQ(acc("application/jsonx", "application/json", 0), 0);
    CHECK_INT_EQ(acc("application/jso", "application/json", 0), 0);
    CHECK_INT_EQ(acc("", "application/json", 0), 0);
    CHECK_INT_EQ(acc(",,,", "application/json", 0), 0);
    CHECK_INT_EQ(acc("a,", "a", 0), 1);
    CHECK_INT_EQ(negotiate_accept_lists(NULL, 0, "a", 1), 0);
}

/* Wildcards count only when asked for. */
static void negotiate_wildcards_only_when_asked(void)
{
    CHECK_INT_EQ(acc("*/*", "application/json", 0), 0);
    CHECK_INT_EQ(acc("*/*", "application/json", 1), 1);
    CHECK_INT_EQ(acc("text/html, application/*;q=0.1", "application/json", 1), 1);
    CHECK_INT_EQ(acc("text/*", "application/json", 1), 0);
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(authhdr_none_and_unknown_scheme),
        CHECK_TEST(authhdr_basic_user_and_password),
        CHECK_TEST(authhdr_basic_rejects_malformed),
        CHECK_TEST(authhdr_basic_nul_in_user_is_visible),
        CHECK_TEST(authhdr_bearer_token),
        CHECK_TEST(negotiate_matches_entries_exactly),
        CHECK_TEST(negotiate_wildcards_only_when_asked),
        CHECK_TEST(base64_rejects_bytes_outside_alphabet),
    };
    return check_run(tests, CHECK_COUNT(tests), argc, argv);
}
