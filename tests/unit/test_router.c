/* test_router.c - router.h: raw request paths to API routes, suffixes matched from the end. */
#include "check.h"
#include "router.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define UUID "0f0e0d0c-0b0a-4908-8706-050403020100"

static int match(const char *path, struct route *rt)
{
    return router_match(path, strlen(path), rt);
}

/* The fixed endpoints: /v2/, /v2 and /v2/_catalog, and /token. */
static void routes_fixed_endpoints(void)
{
    struct route rt;
    CHECK_ERR(match("/v2/", &rt), 0);
    CHECK_INT_EQ(rt.kind, ROUTE_BASE);
    CHECK_ERR(match("/v2", &rt), 0);
    CHECK_INT_EQ(rt.kind, ROUTE_BASE);
    CHECK_ERR(match("/v2/_catalog", &rt), 0);
    CHECK_INT_EQ(rt.kind, ROUTE_CATALOG);
    CHECK_ERR(match("/token", &rt), 0);
    CHECK_INT_EQ(rt.kind, ROUTE_TOKEN);
}

/* Names with several components keep every component; the reference is split off the end. */
static void routes_multi_component_names(void)
{
    struct route rt;
    CHECK_ERR(match("/v2/a/b/c/manifests/latest", &rt), 0);
    CHECK_INT_EQ(rt.kind, ROUTE_MANIFEST);
    CHECK_STR_EQ(rt.name, "a/b/c");
    CHECK_STR_EQ(rt.ref, "latest");
    CHECK_INT_EQ(rt.ref_is_digest, 0);
    CHECK_ERR(match("/v2/team/app/tags/list", &rt), 0);
    CHECK_INT_EQ(rt.kind, ROUTE_TAGS);
    CHECK_STR_EQ(rt.name, "team/app");
}

/* A repository may be named like an endpoint section ("blobs", "manifests"): the last suffix decides. */
static void routes_names_that_look_like_sections(void)
{
    struct route rt;
    CHECK_ERR(match("/v2/x/blobs/manifests/v1", &rt), 0);
    CHECK_INT_EQ(rt.kind, ROUTE_MANIFEST);
    CHECK_STR_EQ(rt.name, "x/blobs");
    CHECK_ERR(match("/v2/manifests/blobs/sha256:" D64, &rt), 0);
    CHECK_INT_EQ(rt.kind, ROUTE_BLOB);
    CHECK_STR_EQ(rt.name, "manifests");
    CHECK_ERR(match("/v2/tags/tags/list", &rt), 0);
    CHECK_STR_EQ(rt.name, "tags");
}

/* Blobs, uploads (with and without the trailing slash) and referrers. */
static void routes_blobs_uploads_referrers(void)
{
    struct route rt;
    CHECK_ERR(match("/v2/r/blobs/sha256:" D64, &rt), 0);
    CHECK_INT_EQ(rt.kind, ROUTE_BLOB);
    CHECK_STR_EQ(rt.ref, "sha256:" D64);
    CHECK_INT_EQ(rt.ref_is_digest, 1);
    CHECK_ERR(match("/v2/r/blobs/uploads/", &rt), 0);
    CHECK_INT_EQ(rt.kind, ROUTE_UPLOAD_NEW);
    CHECK_ERR(match("/v2/r/blobs/uploads", &rt), 0);
    CHECK_INT_EQ(rt.kind, ROUTE_UPLOAD_NEW);
    CHECK_ERR(match("/v2/r/blobs/uploads/" UUID, &rt), 0);
    CHECK_INT_EQ(rt.kind, ROUTE_UPLOAD);
    CHECK_STR_EQ(rt.ref, UUID);
    CHECK_ERR(match("/v2/r/referrers/sha256:" D64, &rt), 0);
    CHECK_INT_EQ(rt.kind, ROUTE_REFERRERS);
    CHECK_ERR(match("/v2/r/manifests/sha256:" D64, &rt), 0);
    CHECK_INT_EQ(rt.ref_is_digest, 1);
}

/* Names that could walk or alias paths never route: "..", "%2F", "//", uppercase, a leading slash. */
static void rejects_unsafe_names(void)
{
    struct route rt;
    CHECK_ERR(match("/v2/a/../b/tags/list", &rt), BERR_NAME_INVALID);
    CHECK_ERR(match("/v2/a%2Fb/tags/list", &rt), BERR_NAME_INVALID);
    CHECK_ERR(match("/v2/a//b/tags/list", &rt), BERR_NAME_INVALID);
    CHECK_ERR(match("/v2//a/tags/list", &rt), BERR_NAME_INVALID);
    CHECK_ERR(match("/v2/A/tags/list", &rt), BERR_NAME_INVALID);
    CHECK_ERR(match("/v2/a/blobs/uploads/../../x", &rt), BERR_NOT_FOUND);
    char nul[] = "/v2/a\0b/tags/list";
    CHECK_ERR(router_match(nul, sizeof(nul) - 1, &rt), BERR_NAME_INVALID);
}

/* Malformed references: digests, tags and upload ids. */
static void rejects_malformed_references(void)
{
    struct route rt;
    CHECK_ERR(match("/v2/r/blobs/sha256:abc", &rt), BERR_DIGEST_INVALID);
    CHECK_ERR(match("/v2/r/blobs/latest", &rt), BERR_DIGEST_INVALID);
    CHECK_ERR(match("/v2/r/referrers/sha256:" D64 "0", &rt), BERR_DIGEST_INVALID);
    CHECK_ERR(match("/v2/r/manifests/-x", &rt), BERR_TAG_INVALID);
    CHECK_ERR(match("/v2/r/manifests/", &rt), BERR_TAG_INVALID);
    CHECK_ERR(match("/v2/r/manifests/sha256:XYZ", &rt), BERR_DIGEST_INVALID);
    CHECK_ERR(match("/v2/r/blobs/uploads/not-a-uuid", &rt), BERR_BLOB_UPLOAD_UNKNOWN);
    CHECK_ERR(match("/v2/r/blobs/uploads/" UUID "/x", &rt), BERR_NOT_FOUND);
}

/* Anything else is no route at all. */
static void unknown_paths_are_not_found(void)
{
    struct route rt;
    CHECK_ERR(match("/", &rt), BERR_NOT_FOUND);
    CHECK_ERR(match("/v1/", &rt), BERR_NOT_FOUND);
    CHECK_ERR(match("/v2x", &rt), BERR_NOT_FOUND);
    CHECK_ERR(match("/v2/r/other/thing", &rt), BERR_NOT_FOUND);
    CHECK_ERR(match("/v2/r", &rt), BERR_NOT_FOUND);
    CHECK_ERR(match("/tokens", &rt), BERR_NOT_FOUND);
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(routes_fixed_endpoints),
        CHECK_TEST(routes_multi_component_names),
        CHECK_TEST(routes_names_that_look_like_sections),
        CHECK_TEST(routes_blobs_uploads_referrers),
        CHECK_TEST(rejects_unsafe_names),
        CHECK_TEST(rejects_malformed_references),
        CHECK_TEST(unknown_paths_are_not_found),
    };
    return check_run(tests, CHECK_COUNT(tests), argc, argv);
}
