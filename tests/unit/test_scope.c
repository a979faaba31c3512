/* test_scope.c - scope.h: the `scope` parameter of a token request, and ecrargs.h: ECR request arguments. */
#include <jansson.h>
#include "authdb.h"
#include "check.h"
#include "ecrargs.h"
#include "scope.h"

struct got {
    struct scope_item it[BERTH_AUTH_SCOPES_MAX + 1];
    int n, count;
};

static int collect(void *ctx, const struct scope_item *it)
{
    struct got *g = ctx;
    g->it[g->n++] = *it;
    return 0;
}

/* Repository scopes with their actions, the catalog and the ECR API, several per value; malformed ones are
 * skipped. */
static void scope_parses_and_skips(void)
{
    struct got g = {0};
    CHECK_INT_EQ(scope_each("repository:a/b:pull,push registry:catalog:* repository::pull repository:Bad:pull "
                            "repository:x:pul repository:host:5000/x:pull foo:bar:pull nocolon repository:c:* "
                            "registry:ecr:* registry:other:*",
                            &g.count, collect, &g),
                 0);
    REQUIRE_INT_EQ(g.n, 4);
    CHECK_INT_EQ(g.it[0].kind, SCOPE_REPOSITORY);
    CHECK_STR_EQ(g.it[0].name, "a/b");
    CHECK_INT_EQ(g.it[0].actions, AUTH_PULL | AUTH_PUSH);
    CHECK_INT_EQ(g.it[1].kind, SCOPE_REGISTRY);
    CHECK_STR_EQ(g.it[1].name, "catalog");
    CHECK_STR_EQ(g.it[2].name, "c");
    CHECK_INT_EQ(g.it[2].actions, AUTH_ALL);
    CHECK_INT_EQ(g.it[3].kind, SCOPE_REGISTRY);
    CHECK_STR_EQ(g.it[3].name, "ecr");
    CHECK_INT_EQ(g.count, 11);
}

/* The count runs across parameters and stops at BERTH_AUTH_SCOPES_MAX. */
static void scope_limit_across_values(void)
{
    struct got g = {0};
    for (int i = 0; i < BERTH_AUTH_SCOPES_MAX - 1; i++)
        CHECK_INT_EQ(scope_each("repository:r:pull", &g.count, collect, &g), 0);
    CHECK_INT_EQ(scope_each("repository:r:pull repository:s:pull", &g.count, collect, &g), 1);
    CHECK_INT_EQ(g.n, BERTH_AUTH_SCOPES_MAX);
}

static json_t *body(const char *s)
{
    struct ecrargs_err e;
    json_t *in = ecrargs_body(s, strlen(s), &e);
    if (in == NULL)
        fprintf(stderr, "  %s: %s\n", e.type, e.msg);
    return in;
}

/* UploadLayerPart's range: first must be the upload's size and last - first + 1 the part's length; partLastByte
 * near INT64_MAX used to overflow that subtraction. */
static void ecrargs_part_range(void)
{
    CHECK_INT_EQ(ecrargs_part_continues(0, 4, 5, 0), 1);
    CHECK_INT_EQ(ecrargs_part_continues(5, 9, 5, 5), 1);
    CHECK_INT_EQ(ecrargs_part_continues(5, 9, 5, 0), 0);
    CHECK_INT_EQ(ecrargs_part_continues(0, INT64_MAX, 5, 0), 0);
    CHECK_INT_EQ(ecrargs_part_continues(-1, 3, 5, UINT64_MAX), 0);
    CHECK_INT_EQ(ecrargs_part_continues(4, 3, 0, 4), 0);
}

/* layerPartBlob and nextToken refuse bytes outside the base64 alphabet (libsodium 1.0.18 aliases them). */
static void ecrargs_base64_strict(void)
{
    struct ecrargs_err e;
    unsigned char *part;
    size_t len;
    int64_t first, last, id;
    char text[64], tok[ECRARGS_TOKEN_MAX];
    json_t *in = body("{\"layerPartBlob\":\"aGVsbG8=\",\"partFirstByte\":0,\"partLastByte\":4}");
    REQUIRE(in != NULL);
    REQUIRE_INT_EQ(ecrargs_layer_part(in, &part, &len, &first, &last, &e), 0);
    CHECK_MEM_EQ(part, len, "hello", 5);
    free(part);
    json_decref(in);
    in = body("{\"layerPartBlob\":\"aGVsbG\\u00e8=\",\"partFirstByte\":0,\"partLastByte\":4}");
    REQUIRE(in != NULL);
    CHECK_INT_EQ(ecrargs_layer_part(in, &part, &len, &first, &last, &e), -1);
    CHECK_STR_EQ(e.type, "InvalidParameterException");
    json_decref(in);
    /* a token round-trips; a second spelling of it (an alias byte, a leading zero) is refused */
    REQUIRE_INT_EQ(ecrargs_token_format('r', 42, "team/app", tok, sizeof(tok)), 0);
    in = json_pack("{s:s}", "nextToken", tok);
    CHECK_INT_EQ(ecrargs_token_in(in, 'r', &id, text, sizeof(text), &e), 0);
    CHECK_INT_EQ(id, 42);
    CHECK_STR_EQ(text, "team/app");
    CHECK_INT_EQ(ecrargs_token_in(in, 'i', &id, text, sizeof(text), &e), -1);
    json_decref(in);
    in = json_pack("{s:s}", "nextToken", "cnwwNDJ8eA"); /* "r|042|x" */
    CHECK_INT_EQ(ecrargs_token_in(in, 'r', &id, text, sizeof(text), &e), -1);
    json_decref(in);
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(scope_parses_and_skips),
        CHECK_TEST(scope_limit_across_values),
        CHECK_TEST(ecrargs_part_range),
        CHECK_TEST(ecrargs_base64_strict),
    };
    return check_run(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
