/* test_digest.c - digest.h: canonical sha256 digest parsing and SHA-256 hashing against known vectors. */
#include "check.h"
#include "digest.h"

#define HEX64 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define EMPTY_DIGEST "sha256:" HEX64
#define ABC_DIGEST "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static int parse(const char *s)
{
    char out[BERTH_DIGEST_MAX];
    return digest_parse(s, strlen(s), out);
}

/* Accepts "sha256:" + 64 lowercase hex and copies it NUL-terminated. */
static void parse_accepts_canonical_sha256(void)
{
    char out[BERTH_DIGEST_MAX];
    memset(out, 'x', sizeof(out));
    CHECK_ERR(digest_parse(EMPTY_DIGEST, strlen(EMPTY_DIGEST), out), 0);
    CHECK_STR_EQ(out, EMPTY_DIGEST);
    CHECK_INT_EQ(strlen(EMPTY_DIGEST), DIGEST_STR_LEN);
    CHECK_STR_EQ(digest_hex(out), HEX64);
}

/* Parses only s[0..len): a longer buffer with a valid prefix is judged by its first len bytes. */
static void parse_reads_only_len_bytes(void)
{
    char out[BERTH_DIGEST_MAX];
    CHECK_ERR(digest_parse(EMPTY_DIGEST "trailing", DIGEST_STR_LEN, out), 0);
    CHECK_STR_EQ(out, EMPTY_DIGEST);
    CHECK_ERR(digest_parse(EMPTY_DIGEST, DIGEST_STR_LEN - 1, out), BERR_DIGEST_INVALID);
}

/* Rejects every algorithm but sha256, even with a well-formed hex part. */
static void parse_rejects_other_algorithms(void)
{
    CHECK_ERR(parse("sha512:" HEX64), BERR_DIGEST_INVALID);
    CHECK_ERR(parse("sha512:" HEX64 HEX64), BERR_DIGEST_INVALID);
    CHECK_ERR(parse("SHA256:" HEX64), BERR_DIGEST_INVALID);
    CHECK_ERR(parse("md5:" HEX64), BERR_DIGEST_INVALID);
}

/* Rejects uppercase hex: digests are canonical lowercase so they compare and map to paths bytewise. */
static void parse_rejects_uppercase_hex(void)
{
    CHECK_ERR(parse("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"), BERR_DIGEST_INVALID);
    CHECK_ERR(parse("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85A"), BERR_DIGEST_INVALID);
}

/* Rejects a hex part of 63 or 65 characters, and an empty one. */
static void parse_rejects_wrong_length(void)
{
    CHECK_ERR(parse("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85"), BERR_DIGEST_INVALID);
    CHECK_ERR(parse("sha256:" HEX64 "5"), BERR_DIGEST_INVALID);
    CHECK_ERR(parse("sha256:"), BERR_DIGEST_INVALID);
    CHECK_ERR(parse(""), BERR_DIGEST_INVALID);
}

/* Rejects characters outside [0-9a-f] in the hex part: 'g', space, '/', '.'. */
static void parse_rejects_non_hex(void)
{
    CHECK_ERR(parse("sha256:g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), BERR_DIGEST_INVALID);
    CHECK_ERR(parse("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85 "), BERR_DIGEST_INVALID);
    CHECK_ERR(parse("sha256:../0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), BERR_DIGEST_INVALID);
}

/* Rejects a digest without the ':' separator (same total length, so only the separator is wrong). */
static void parse_rejects_missing_colon(void)
{
    CHECK_ERR(parse("sha256e" HEX64), BERR_DIGEST_INVALID);
    CHECK_ERR(parse("sha256" HEX64 "e"), BERR_DIGEST_INVALID);
    CHECK_ERR(parse("sha256-" HEX64), BERR_DIGEST_INVALID);
}

/* Rejects an embedded NUL, which would truncate the digest when used as a C string or a path. */
static void parse_rejects_embedded_nul(void)
{
    char s[DIGEST_STR_LEN + 1], out[BERTH_DIGEST_MAX];
    memcpy(s, EMPTY_DIGEST, sizeof(s));
    s[40] = '\0';
    CHECK_ERR(digest_parse(s, DIGEST_STR_LEN, out), BERR_DIGEST_INVALID);
    memcpy(s, EMPTY_DIGEST, sizeof(s));
    s[DIGEST_STR_LEN - 1] = '\0';
    CHECK_ERR(digest_parse(s, DIGEST_STR_LEN, out), BERR_DIGEST_INVALID);
}

/* digest_buf of "" and "abc" equals the FIPS 180-2 SHA-256 vectors. */
static void buf_matches_known_vectors(void)
{
    char out[BERTH_DIGEST_MAX];
    digest_buf("", 0, out);
    CHECK_STR_EQ(out, EMPTY_DIGEST);
    digest_buf("abc", 3, out);
    CHECK_STR_EQ(out, ABC_DIGEST);
    digest_buf("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, out);
    CHECK_STR_EQ(out, "sha256:248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    CHECK_ERR(parse(out), 0);
}

/* The streaming context fed in uneven chunks gives the same digest as one-shot hashing. */
static void ctx_over_chunks_equals_one_shot(void)
{
    static unsigned char data[100000];
    char one[BERTH_DIGEST_MAX], streamed[BERTH_DIGEST_MAX];
    struct digest_ctx c = {0};
    size_t off = 0, step = 1;
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i * 7 + (i >> 8));
    digest_buf(data, sizeof(data), one);
    REQUIRE_OK(digest_ctx_init(&c));
    while (off < sizeof(data)) {
        size_t n = step < sizeof(data) - off ? step : sizeof(data) - off;
        digest_ctx_update(&c, data + off, n);
        off += n;
        step = step * 3 + 1;
    }
    digest_ctx_update(&c, data, 0);
    digest_ctx_final(&c, streamed);
    CHECK_STR_EQ(streamed, one);
    CHECK_NULL(c.md);
}

/* A context with nothing fed hashes to the empty-string vector; _free on a finished or zeroed context is safe. */
static void ctx_empty_equals_empty_vector(void)
{
    char out[BERTH_DIGEST_MAX];
    struct digest_ctx c = {0};
    digest_ctx_free(&c);
    REQUIRE_OK(digest_ctx_init(&c));
    digest_ctx_final(&c, out);
    CHECK_STR_EQ(out, EMPTY_DIGEST);
    digest_ctx_free(&c);
    REQUIRE_OK(digest_ctx_init(&c));
    digest_ctx_update(&c, "ab", 2);
    digest_ctx_free(&c); /* abandoned */
    CHECK_NULL(c.md);
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(parse_accepts_canonical_sha256), CHECK_TEST(parse_reads_only_len_bytes),
        CHECK_TEST(parse_rejects_other_algorithms), CHECK_TEST(parse_rejects_uppercase_hex),
        CHECK_TEST(parse_rejects_wrong_length),     CHECK_TEST(parse_rejects_non_hex),
        CHECK_TEST(parse_rejects_missing_colon),    CHECK_TEST(parse_rejects_embedded_nul),
        CHECK_TEST(buf_matches_known_vectors),      CHECK_TEST(ctx_over_chunks_equals_one_shot),
        CHECK_TEST(ctx_empty_equals_empty_vector),
    };
    return check_run(tests, CHECK_COUNT(tests), argc, argv);
}
