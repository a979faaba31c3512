/* test_httpparse.c - httpparse.h: query parameters, Range and Content-Range. */
#include "check.h"
#include "httpparse.h"

static int query(const char *q, const char *key, char *out, size_t outlen)
{
    return httpparse_query(q, q != NULL ? strlen(q) : 0, key, out, outlen);
}

/* A parameter is found by its exact key, percent- and plus-decoded; an absent one is 0. */
static void query_finds_and_decodes(void)
{
    char v[64];
    CHECK_INT_EQ(query("digest=sha256%3Aab&from=a%2Fb", "from", v, sizeof(v)), 1);
    CHECK_STR_EQ(v, "a/b");
    CHECK_INT_EQ(query("digest=sha256%3Aab&from=a", "digest", v, sizeof(v)), 1);
    CHECK_STR_EQ(v, "sha256:ab");
    CHECK_INT_EQ(query("n=a+b", "n", v, sizeof(v)), 1);
    CHECK_STR_EQ(v, "a b");
    CHECK_INT_EQ(query("fromx=1&xfrom=2", "from", v, sizeof(v)), 0);
    CHECK_INT_EQ(query("last", "last", v, sizeof(v)), 1);
    CHECK_STR_EQ(v, "");
    CHECK_INT_EQ(query("", "n", v, sizeof(v)), 0);
    CHECK_INT_EQ(query(NULL, "n", v, sizeof(v)), 0);
    CHECK_INT_EQ(query("a=1&", "b", v, sizeof(v)), 0);
}

/* Bad escapes, an encoded NUL, and values longer than the buffer are errors, not truncation. */
static void query_rejects_malformed(void)
{
    char v[8];
    CHECK_INT_EQ(query("n=%4", "n", v, sizeof(v)), -1);
    CHECK_INT_EQ(query("n=%zz", "n", v, sizeof(v)), -1);
    CHECK_INT_EQ(query("n=a%00b", "n", v, sizeof(v)), -1);
    CHECK_INT_EQ(query("n=12345678", "n", v, sizeof(v)), -1);
    CHECK_INT_EQ(query("n=1234567", "n", v, sizeof(v)), 1);
}

static int collect(void *ctx, const char *value)
{
    char *acc = ctx;
    strcat(acc, value);
    strcat(acc, ";");
    return strcmp(value, "stop") == 0;
}

/* query_each sees every occurrence in order and stops when the callback says so. */
static void query_each_in_order(void)
{
    char buf[32], acc[64] = "";
    const char *q = "scope=a&x=1&scope=b&scope=stop&scope=c";
    CHECK_INT_EQ(httpparse_query_each(q, strlen(q), "scope", collect, acc, buf, sizeof(buf)), 1);
    CHECK_STR_EQ(acc, "a;b;stop;");
    acc[0] = '\0';
    q = "scope=a&scope=b";
    CHECK_INT_EQ(httpparse_query_each(q, strlen(q), "scope", collect, acc, buf, sizeof(buf)), 0);
    CHECK_STR_EQ(acc, "a;b;");
}

/* Only the first `len` bytes of the query are read. */
static void query_respects_length(void)
{
    char v[16];
    CHECK_INT_EQ(httpparse_query("n=abc&m=1", 5, "n", v, sizeof(v)), 1);
    CHECK_STR_EQ(v, "abc");
    CHECK_INT_EQ(httpparse_query("n=abc&m=1", 5, "m", v, sizeof(v)), 0);
}

static int range(const char *h, uint64_t size, uint64_t *a, uint64_t *b)
{
    return httpparse_range(h, strlen(h), size, a, b);
}

/* bytes=A-B, bytes=A-, bytes=-N, clamped to the size. */
static void range_single_forms(void)
{
    uint64_t a = 0, b = 0;
    CHECK_INT_EQ(range("bytes=0-9", 100, &a, &b), 1);
    CHECK_INT_EQ(a, 0);
    CHECK_INT_EQ(b, 9);
    CHECK_INT_EQ(range("bytes=90-", 100, &a, &b), 1);
    CHECK_INT_EQ(a, 90);
    CHECK_INT_EQ(b, 99);
    CHECK_INT_EQ(range("bytes=-10", 100, &a, &b), 1);
    CHECK_INT_EQ(a, 90);
    CHECK_INT_EQ(b, 99);
    CHECK_INT_EQ(range("bytes=-1000", 100, &a, &b), 1);
    CHECK_INT_EQ(a, 0);
    CHECK_INT_EQ(range("bytes=50-1000", 100, &a, &b), 1);
    CHECK_INT_EQ(b, 99);
}

/* Several ranges are ignored (0); anything else malformed or outside the blob is unsatisfiable. */
static void range_rejects(void)
{
    uint64_t a, b;
    CHECK_INT_EQ(range("bytes=0-1,5-6", 100, &a, &b), 0);
    CHECK_ERR(range("bytes=100-", 100, &a, &b), BERR_RANGE_UNSATISFIABLE);
    CHECK_ERR(range("bytes=5-4", 100, &a, &b), BERR_RANGE_UNSATISFIABLE);
    CHECK_ERR(range("bytes=-0", 100, &a, &b), BERR_RANGE_UNSATISFIABLE);
    CHECK_ERR(range("bytes=-5", 0, &a, &b), BERR_RANGE_UNSATISFIABLE);
    CHECK_ERR(range("items=0-1", 100, &a, &b), BERR_RANGE_UNSATISFIABLE);
    CHECK_ERR(range("bytes=a-1", 100, &a, &b), BERR_RANGE_UNSATISFIABLE);
    CHECK_ERR(range("bytes=1-x", 100, &a, &b), BERR_RANGE_UNSATISFIABLE);
    CHECK_ERR(range("bytes=1", 100, &a, &b), BERR_RANGE_UNSATISFIABLE);
    CHECK_ERR(range("bytes=99999999999999999999-", 100, &a, &b), BERR_RANGE_UNSATISFIABLE);
}

static int crange(const char *h, uint64_t *a, uint64_t *b)
{
    return httpparse_content_range(h, strlen(h), a, b);
}

/* The three spellings clients send, with an optional "/total". */
static void content_range_forms(void)
{
    uint64_t a = 0, b = 0;
    CHECK_ERR(crange("0-99", &a, &b), 0);
    CHECK_INT_EQ(a, 0);
    CHECK_INT_EQ(b, 99);
    CHECK_ERR(crange("bytes 100-199/*", &a, &b), 0);
    CHECK_INT_EQ(a, 100);
    CHECK_INT_EQ(b, 199);
    CHECK_ERR(crange("bytes=5-5", &a, &b), 0);
    CHECK_INT_EQ(a, 5);
    CHECK_INT_EQ(b, 5);
}

static void content_range_rejects(void)
{
    uint64_t a, b;
    CHECK_ERR(crange("", &a, &b), BERR_RANGE_INVALID);
    CHECK_ERR(crange("5-4", &a, &b), BERR_RANGE_INVALID);
    CHECK_ERR(crange("-4", &a, &b), BERR_RANGE_INVALID);
    CHECK_ERR(crange("1-", &a, &b), BERR_RANGE_INVALID);
    CHECK_ERR(crange("1-2x", &a, &b), BERR_RANGE_INVALID);
    CHECK_ERR(crange("99999999999999999999-99999999999999999999", &a, &b), BERR_RANGE_INVALID);
    CHECK_ERR(httpparse_content_range("0-1", 0, &a, &b), BERR_RANGE_INVALID);
    /* the length end - start + 1 of 0-(2^64-1) wraps to 0, which matched an empty PATCH body (issue 15) */
    CHECK_ERR(crange("0-18446744073709551615", &a, &b), BERR_RANGE_INVALID);
    CHECK_ERR(crange("5-18446744073709551615/*", &a, &b), BERR_RANGE_INVALID);
    CHECK_ERR(crange("0-18446744073709551614", &a, &b), 0);
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(query_finds_and_decodes), CHECK_TEST(query_rejects_malformed), CHECK_TEST(query_each_in_order),
        CHECK_TEST(query_respects_length),   CHECK_TEST(range_single_forms),      CHECK_TEST(range_rejects),
        CHECK_TEST(content_range_forms),     CHECK_TEST(content_range_rejects),
    };
    return check_run(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
