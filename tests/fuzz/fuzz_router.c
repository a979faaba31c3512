/*
 * fuzz_router.c - libFuzzer target for the router and the grammars behind it: router_match() on the raw path, and
 * names_repo_valid(), names_tag_valid(), digest_parse() on the same bytes.
 *
 * Beyond "no crash, no sanitizer report": a route's name passes the name grammar again and holds no "..", "//",
 * '%' or NUL (it becomes a path and a Location header); a digest reference re-parses to itself and holds only
 * "sha256:" and lowercase hex; a tag reference passes the tag grammar; an accepted name or tag is within its limit.
 */
#include <string.h>
#include "digest.h"
#include "fuzz_common.h"
#include "names.h"
#include "router.h"

static void check_name(const char *s)
{
    size_t n = strlen(s);
    FUZZ_ASSERT(n > 0 && n <= BERTH_NAME_MAX);
    FUZZ_ASSERT(names_repo_valid(s, n) == 0);
    FUZZ_ASSERT(strstr(s, "..") == NULL && strstr(s, "//") == NULL && strchr(s, '%') == NULL);
    FUZZ_ASSERT(s[0] != '/' && s[n - 1] != '/');
}

static void check_digest(const char *d)
{
    char again[BERTH_DIGEST_MAX];
    FUZZ_ASSERT(strlen(d) == DIGEST_STR_LEN && memcmp(d, "sha256:", 7) == 0);
    FUZZ_ASSERT(strspn(d + 7, "0123456789abcdef") == DIGEST_HEX_LEN);
    FUZZ_ASSERT(digest_parse(d, strlen(d), again) == 0 && strcmp(again, d) == 0);
}

static void check_route(const struct route *rt)
{
    switch (rt->kind) {
    case ROUTE_BASE:
    case ROUTE_CATALOG:
    case ROUTE_TOKEN:
        FUZZ_ASSERT(rt->name[0] == '\0');
        return;
    case ROUTE_MANIFEST:
        check_name(rt->name);
        if (rt->ref_is_digest)
            check_digest(rt->ref);
        else
            FUZZ_ASSERT(names_tag_valid(rt->ref, strlen(rt->ref)) == 0);
        return;
    case ROUTE_BLOB:
    case ROUTE_REFERRERS:
        check_name(rt->name);
        FUZZ_ASSERT(rt->ref_is_digest);
        check_digest(rt->ref);
        return;
    case ROUTE_UPLOAD:
        check_name(rt->name);
        FUZZ_ASSERT(strlen(rt->ref) == BERTH_UUID_LEN && strspn(rt->ref, "0123456789abcdef-") == BERTH_UUID_LEN);
        return;
    case ROUTE_UPLOAD_NEW:
    case ROUTE_TAGS:
        check_name(rt->name);
        return;
    default: /* the fixed paths outside the OCI API (/metrics, /healthz, /readyz, ...): no name, no reference */
        FUZZ_ASSERT(rt->name[0] == '\0' && rt->ref[0] == '\0');
        return;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct route rt;
    char d[BERTH_DIGEST_MAX];
    if (router_match(s, size, &rt) == 0)
        check_route(&rt);
    if (names_repo_valid(s, size) == 0)
        FUZZ_ASSERT(size > 0 && size <= BERTH_NAME_MAX && memchr(s, '\0', size) == NULL &&
                    memchr(s, '%', size) == NULL);
    if (names_tag_valid(s, size) == 0)
        FUZZ_ASSERT(size > 0 && size <= BERTH_TAG_MAX && memchr(s, '/', size) == NULL);
    if (digest_parse(s, size, d) == 0) {
        FUZZ_ASSERT(size == DIGEST_STR_LEN && memcmp(s, d, size) == 0);
        check_digest(d);
    }
    return 0;
}
