/* test_auth.c - authdb.h's pure rules (patterns, actions, names, subjects) and jwt.h's sign/verify. */
#include <sodium.h>
#include "authdb.h"
#include "check.h"
#include "jwt.h"

#define NOW 1700000000LL

/* `*` matches any run of characters including '/'; exact names match only themselves. */
static void pattern_star_matches_across_slashes(void)
{
    CHECK(authdb_pattern_match("team/*", "team/app"));
    CHECK(authdb_pattern_match("team/*", "team/app/sub"));
    CHECK(!authdb_pattern_match("team/*", "team"));
    CHECK(!authdb_pattern_match("team/*", "teamx/app"));
    CHECK(!authdb_pattern_match("team/*", "other/team/app"));
    CHECK(authdb_pattern_match("*", "a"));
    CHECK(authdb_pattern_match("*", "a/b/c"));
    CHECK(authdb_pattern_match("*/base", "x/base"));
    CHECK(authdb_pattern_match("a*b*c", "aXXbYYc"));
    CHECK(!authdb_pattern_match("a*b*c", "aXXbYY"));
    CHECK(authdb_pattern_match("lib/app", "lib/app"));
    CHECK(!authdb_pattern_match("lib/app", "lib/app2"));
    CHECK(!authdb_pattern_match("lib/app", "lib/ap"));
}

/* Patterns admit name characters, '/' and '*' only. */
static void pattern_validity(void)
{
    CHECK_ERR(authdb_pattern_valid("team/*"), 0);
    CHECK_ERR(authdb_pattern_valid("*"), 0);
    CHECK_ERR(authdb_pattern_valid(""), BERR_BAD_REQUEST);
    CHECK_ERR(authdb_pattern_valid("Team/*"), BERR_BAD_REQUEST);
    CHECK_ERR(authdb_pattern_valid("team/?"), BERR_BAD_REQUEST);
    CHECK_ERR(authdb_pattern_valid("team:x"), BERR_BAD_REQUEST);
}

/* Actions parse to bits and format back; unknown words, empty items and "" are rejected. */
static void actions_parse_and_format(void)
{
    unsigned a = 0;
    char buf[AUTH_ACTIONS_STR_MAX];
    CHECK_ERR(authdb_actions_parse("pull,push", &a), 0);
    CHECK_INT_EQ(a, AUTH_PULL | AUTH_PUSH);
    CHECK_ERR(authdb_actions_parse("*", &a), 0);
    CHECK_INT_EQ(a, AUTH_ALL);
    CHECK_ERR(authdb_actions_parse("delete,admin", &a), 0);
    CHECK_INT_EQ(a, AUTH_DELETE | AUTH_ADMIN);
    CHECK_ERR(authdb_actions_parse("pull,", &a), BERR_BAD_REQUEST);
    CHECK_ERR(authdb_actions_parse("", &a), BERR_BAD_REQUEST);
    CHECK_ERR(authdb_actions_parse("pull,,push", &a), BERR_BAD_REQUEST);
    CHECK_ERR(authdb_actions_parse("read", &a), BERR_BAD_REQUEST);
    authdb_actions_format(AUTH_PULL | AUTH_DELETE, buf, sizeof(buf));
    CHECK_STR_EQ(buf, "pull,delete");
    authdb_actions_format(0, buf, sizeof(buf));
    CHECK_STR_EQ(buf, "");
}

/* User/token names: no ':' (the Basic separator), no leading punctuation, "AWS" reserved for ECR. */
static void names_and_subjects(void)
{
    struct authdb_identity id;
    CHECK_ERR(authdb_name_valid("ci-main"), 0);
    CHECK_ERR(authdb_name_valid("a:b"), BERR_BAD_REQUEST);
    CHECK_ERR(authdb_name_valid("-x"), BERR_BAD_REQUEST);
    CHECK_ERR(authdb_name_valid("AWS"), BERR_BAD_REQUEST);
    CHECK_ERR(authdb_name_valid(""), BERR_BAD_REQUEST);
    CHECK_ERR(authdb_subject_parse("user:alice", &id), 0);
    CHECK_INT_EQ(id.kind, AUTH_USER);
    CHECK_STR_EQ(id.name, "alice");
    CHECK_ERR(authdb_subject_parse("token:ci", &id), 0);
    CHECK_INT_EQ(id.kind, AUTH_TOKEN);
    CHECK_ERR(authdb_subject_parse("anonymous", &id), 0);
    CHECK_INT_EQ(id.kind, AUTH_ANONYMOUS);
    CHECK_ERR(authdb_subject_parse("group:x", &id), BERR_BAD_REQUEST);
    CHECK_ERR(authdb_subject_parse("user:", &id), BERR_BAD_REQUEST);
}

/* The admin action implies pull, push and delete; grants add up; an admin user may do everything. */
static void grants_union_and_admin(void)
{
    struct authdb_grants g = {0};
    char store[2][sizeof(*g.g)];
    g.g = (void *)store;
    g.n = 2;
    snprintf(g.g[0].pattern, sizeof(g.g[0].pattern), "team/*");
    g.g[0].actions = AUTH_PULL;
    snprintf(g.g[1].pattern, sizeof(g.g[1].pattern), "team/app");
    g.g[1].actions = AUTH_PUSH;
    CHECK_INT_EQ(authdb_grants_actions(&g, "team/app"), AUTH_PULL | AUTH_PUSH);
    CHECK_INT_EQ(authdb_grants_actions(&g, "team/other"), AUTH_PULL);
    CHECK_INT_EQ(authdb_grants_actions(&g, "elsewhere"), 0);
    g.g[1].actions = AUTH_ADMIN;
    CHECK_INT_EQ(authdb_grants_actions(&g, "team/app"), AUTH_ALL);
    g.all = 1;
    CHECK_INT_EQ(authdb_grants_actions(&g, "anything"), AUTH_ALL);
}

/* ---- JWT ---- */

static struct jwt_keyring ring(unsigned char seed_byte)
{
    struct jwt_keyring kr = {.n = 1};
    unsigned char seed[32];
    memset(seed, seed_byte, sizeof(seed));
    jwt_key_from_seed(seed, NOW, &kr.keys[0]);
    return kr;
}

static json_t *claims_for(const char *repo, const char *actions, long long exp)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:[{s:s, s:s, s:[s]}]}", "iss", BERTH_AUTH_ISSUER, "sub",
                     "alice", "aud", "berth", "exp", (json_int_t)exp, "nbf", (json_int_t)NOW, "iat", (json_int_t)NOW,
                     "berth_kind", "user", "access", "type", "repository", "name", repo, "actions", actions);
}

/* The signed token, or NULL if jwt_sign() failed (its result is never ignored). */
static char *sign(const struct jwt_keyring *kr, json_t *claims)
{
    char *tok = NULL;
    int rc = jwt_sign(kr, claims, &tok);
    json_decref(claims);
    if (rc != 0) {
        free(tok);
        return NULL;
    }
    return tok;
}

static int verify(const struct jwt_keyring *kr, const char *tok, long long now, json_t **c)
{
    return jwt_verify(kr, tok, strlen(tok), "berth", now, c);
}

/* A signed token verifies and grants exactly its repository and actions: issued for A, nothing on B. */
static void jwt_roundtrip_grants_only_its_scope(void)
{
    struct jwt_keyring kr = ring(1);
    char *tok = sign(&kr, claims_for("team/a", "push", NOW + 300));
    json_t *c = NULL;
    REQUIRE(tok != NULL);
    REQUIRE_ERR(verify(&kr, tok, NOW + 10, &c), 0);
    CHECK_INT_EQ(jwt_access_actions(c, "team/a"), AUTH_PUSH);
    CHECK_INT_EQ(jwt_access_actions(c, "team/b"), 0);
    CHECK_INT_EQ(jwt_access_actions(c, "team/a/x"), 0);
    json_decref(c);
    free(tok);
}

/* Expired (exp <= now), not yet valid (nbf in the future) and wrong-audience tokens are refused. */
static void jwt_refuses_expired_future_and_wrong_audience(void)
{
    struct jwt_keyring kr = ring(1);
    char *tok = sign(&kr, claims_for("a", "pull", NOW + 300));
    json_t *c = NULL;
    REQUIRE(tok != NULL);
    CHECK_ERR(verify(&kr, tok, NOW + 300, &c), BERR_UNAUTHORIZED);
    CHECK_ERR(verify(&kr, tok, NOW - BERTH_JWT_LEEWAY - 1, &c), BERR_UNAUTHORIZED);
    CHECK_ERR(jwt_verify(&kr, tok, strlen(tok), "other-service", NOW, &c), BERR_UNAUTHORIZED);
    CHECK_NULL(c);
    free(tok);
}

/* Changing one byte of the payload, or signing with another key, breaks the signature. */
static void jwt_refuses_tampered_payload_and_wrong_key(void)
{
    struct jwt_keyring kr = ring(1), other = ring(2);
    char *tok = sign(&kr, claims_for("a", "pull", NOW + 300)), *forged;
    json_t *c = NULL;
    char *dot;
    REQUIRE(tok != NULL);
    /* flip one character of the payload: the token must have a header, a dot and a payload of 6+ characters */
    dot = strchr(tok, '.');
    REQUIRE(dot != NULL && strlen(dot) > 5);
    dot[5] = dot[5] == 'A' ? 'B' : 'A';
    CHECK_ERR(verify(&kr, tok, NOW, &c), BERR_UNAUTHORIZED);
    free(tok);
    /* same kid as kr's key, but signed by another private key */
    memcpy(other.keys[0].kid, kr.keys[0].kid, sizeof(kr.keys[0].kid));
    forged = sign(&other, claims_for("a", "pull", NOW + 300));
    CHECK_ERR(verify(&kr, forged, NOW, &c), BERR_UNAUTHORIZED);
    free(forged);
    /* a kid that is not ours */
    other = ring(2);
    forged = sign(&other, claims_for("a", "pull", NOW + 300));
    CHECK_ERR(verify(&kr, forged, NOW, &c), BERR_UNAUTHORIZED);
    free(forged);
    CHECK_NULL(c);
}

/* alg "none" (empty signature) and any alg other than EdDSA are refused, whatever the payload. */
static void jwt_refuses_alg_none_and_hs256(void)
{
    struct jwt_keyring kr = ring(1);
    const char *algs[] = {"none", "HS256", "ES256", "eddsa"};
    json_t *claims = claims_for("a", "pull", NOW + 300), *c = NULL;
    char *payload = json_dumps(claims, JSON_COMPACT), p64[2048], h64[256], tok[4096];
    jwt_b64_encode(payload, strlen(payload), p64, sizeof(p64));
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        char hdr[128];
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", algs[i], kr.keys[0].kid);
        jwt_b64_encode(hdr, strlen(hdr), h64, sizeof(h64));
        snprintf(tok, sizeof(tok), "%s.%s.", h64, p64);
        CHECK_ERR(verify(&kr, tok, NOW, &c), BERR_UNAUTHORIZED);
        snprintf(tok, sizeof(tok), "%s.%s", h64, p64);
        CHECK_ERR(verify(&kr, tok, NOW, &c), BERR_UNAUTHORIZED);
    }
    CHECK_NULL(c);
    free(payload);
    json_decref(claims);
}

/* After a rotation the previous key still verifies its tokens; a keyring without it does not. */
static void jwt_previous_key_verifies_until_dropped(void)
{
    struct jwt_keyring old = ring(1), rotated = ring(3);
    char *tok = sign(&old, claims_for("a", "pull", NOW + 300));
    json_t *c = NULL;
    REQUIRE(tok != NULL);
    rotated.keys[1] = old.keys[0];
    rotated.n = 2;
    CHECK_ERR(verify(&rotated, tok, NOW, &c), 0);
    json_decref(c);
    rotated.n = 1;
    CHECK_ERR(verify(&rotated, tok, NOW, &c), BERR_UNAUTHORIZED);
    free(tok);
}

/* base64url decoding is strict: padding, '+', '/' and trailing garbage are refused. */
static void b64url_is_strict(void)
{
    unsigned char out[16];
    size_t n;
    CHECK_INT_EQ(jwt_b64_decode("YWI", 3, out, sizeof(out), &n), 0);
    CHECK_INT_EQ(n, 2);
    CHECK_INT_EQ(jwt_b64_decode("YWI=", 4, out, sizeof(out), &n), -1);
    CHECK_INT_EQ(jwt_b64_decode("Y+I", 3, out, sizeof(out), &n), -1);
    CHECK_INT_EQ(jwt_b64_decode("YWI.", 4, out, sizeof(out), &n), -1);
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(pattern_star_matches_across_slashes),
        CHECK_TEST(pattern_validity),
        CHECK_TEST(actions_parse_and_format),
        CHECK_TEST(names_and_subjects),
        CHECK_TEST(grants_union_and_admin),
        CHECK_TEST(jwt_roundtrip_grants_only_its_scope),
        CHECK_TEST(jwt_refuses_expired_future_and_wrong_audience),
        CHECK_TEST(jwt_refuses_tampered_payload_and_wrong_key),
        CHECK_TEST(jwt_refuses_alg_none_and_hs256),
        CHECK_TEST(jwt_previous_key_verifies_until_dropped),
        CHECK_TEST(b64url_is_strict),
    };
    if (sodium_init() < 0)
        return 1;
    return check_run(tests, CHECK_COUNT(tests), argc, argv);
}
