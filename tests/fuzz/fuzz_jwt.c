/*
 * fuzz_jwt.c - libFuzzer target for jwt.h: jwt_verify() of a bearer token against a fixed keyring, and the strict
 * base64url decoder.
 *
 * The keyring is derived from a fixed seed, and the seed corpus holds tokens signed with it (valid ones, "none",
 * HS256, expired, other audience), so the fuzzer starts past the signature check's door and mutates from there.
 * Beyond "no crash, no sanitizer report, no leak": a token that verifies has three dot-separated parts and claims
 * that are an object with iss BERTH_AUTH_ISSUER, aud "berth" and exp in the future; a decode that succeeds
 * round-trips through the encoder to the same text.
 */
#include <string.h>
#include <jansson.h>
#include "defaults.h"
#include "fuzz_common.h"
#include "jwt.h"

#define FUZZ_NOW 1800000000LL /* the fixed "now" the seed tokens were made for */

static struct jwt_keyring kr;

static void keys_init(void)
{
    unsigned char seed[32];
    if (kr.n != 0)
        return;
    memset(seed, 7, sizeof(seed));
    jwt_key_from_seed(seed, FUZZ_NOW - 100, &kr.keys[0]);
    memset(seed, 9, sizeof(seed));
    jwt_key_from_seed(seed, FUZZ_NOW - 200, &kr.keys[1]);
    kr.n = 2;
}

static void check_claims(const char *tok, size_t len, json_t *claims)
{
    const char *dot1 = memchr(tok, '.', len), *dot2;
    FUZZ_ASSERT(dot1 != NULL);
    dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - tok));
    FUZZ_ASSERT(dot2 != NULL && memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - tok)) == NULL);
    FUZZ_ASSERT(json_is_object(claims));
    FUZZ_ASSERT(strcmp(json_string_value(json_object_get(claims, "iss")), BERTH_AUTH_ISSUER) == 0);
    FUZZ_ASSERT(json_integer_value(json_object_get(claims, "exp")) > FUZZ_NOW);
    (void)jwt_access_actions(claims, "team/app");
}

static void check_b64(const char *s, size_t len)
{
    unsigned char out[BERTH_JWT_MAX];
    char again[BERTH_JWT_MAX * 2];
    size_t n;
    if (jwt_b64_decode(s, len, out, sizeof(out), &n) != 0)
        return;
    FUZZ_ASSERT(n <= sizeof(out) && n <= len);
    FUZZ_ASSERT(jwt_b64_encode(out, n, again, sizeof(again)) == 0);
    FUZZ_ASSERT(strlen(again) == len && memcmp(again, s, len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *tok = (const char *)data;
    json_t *claims = NULL;
    keys_init();
    if (jwt_verify(&kr, tok, size, "berth", FUZZ_NOW, &claims) == 0) {
        check_claims(tok, size, claims);
        json_decref(claims);
    } else {
        FUZZ_ASSERT(claims == NULL);
    }
    if (size <= BERTH_JWT_MAX)
        check_b64(tok, size);
    return 0;
}
