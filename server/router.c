/* router.c - raw path -> route, matching the fixed suffixes from the end. */
#include <string.h>
#include "digest.h"
#include "err.h"
#include "names.h"
#include "router.h"
#include "upload.h"

static int ends_with(const char *s, size_t len, const char *suffix, size_t slen)
{
    return len >= slen && memcmp(s + len - slen, suffix, slen) == 0;
}

static int is(const char *s, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(s, lit, len) == 0;
}

static int set_name(struct route *rt, const char *s, size_t len)
{
    if (names_repo_valid(s, len) != 0)
        return BERR_NAME_INVALID;
    memcpy(rt->name, s, len);
    rt->name[len] = '\0';
    return 0;
}

static int set_digest(struct route *rt, const char *s, size_t len)
{
    rt->ref_is_digest = 1;
    return digest_parse(s, len, rt->ref);
}

static int set_reference(struct route *rt, const char *s, size_t len)
{
    if (memchr(s, ':', len) != NULL)
        return set_digest(rt, s, len);
    if (names_tag_valid(s, len) != 0)
        return BERR_TAG_INVALID;
    memcpy(rt->ref, s, len);
    rt->ref[len] = '\0';
    return 0;
}

/* Splits "<name>/<section>/<last>" where <section> is `section`; returns 1 and the parts if it matches. */
static int split(const char *p, size_t len, const char *section, const char **last, size_t *last_len, size_t *name_len)
{
    const char *slash = NULL;
    size_t sl = strlen(section);
    for (size_t i = len; i > 0; i--)
        if (p[i - 1] == '/') {
            slash = p + i - 1;
            break;
        }
    if (slash == NULL)
        return 0;
    *last = slash + 1;
    *last_len = len - (size_t)(*last - p);
    /* what precedes "/<last>" must end in "/<section>" */
    if (!ends_with(p, (size_t)(slash - p), section, sl) || (size_t)(slash - p) < sl + 2 || slash[-(long)sl - 1] != '/')
        return 0;
    *name_len = (size_t)(slash - p) - sl - 1;
    return 1;
}

int router_match(const char *path, size_t len, struct route *rt)
{
    const char *p, *last;
    size_t plen, last_len, name_len;
    int rc;
    memset(rt, 0, sizeof(*rt));
    if (len == 6 && memcmp(path, "/token", 6) == 0) {
        rt->kind = ROUTE_TOKEN;
        return 0;
    }
    if (is(path, len, "/metrics") || is(path, len, "/healthz") || is(path, len, "/readyz")) {
        rt->kind = path[1] == 'm' ? ROUTE_METRICS : path[1] == 'h' ? ROUTE_HEALTHZ : ROUTE_READYZ;
        return 0;
    }
    if (len < 3 || memcmp(path, "/v2", 3) != 0)
        return BERR_NOT_FOUND;
    if (len == 3 || (len == 4 && path[3] == '/')) {
        rt->kind = ROUTE_BASE;
        return 0;
    }
    if (path[3] != '/')
        return BERR_NOT_FOUND;
    p = path + 4;
    plen = len - 4;
    if (plen == 8 && memcmp(p, "_catalog", 8) == 0) {
        rt->kind = ROUTE_CATALOG;
        return 0;
    }
    if (split(p, plen, "blobs/uploads", &last, &last_len, &name_len)) {
        if ((rc = set_name(rt, p, name_len)) != 0)
            return rc;
        rt->kind = last_len == 0 ? ROUTE_UPLOAD_NEW : ROUTE_UPLOAD;
        if (last_len == 0)
            return 0;
        if (upload_uuid_valid(last, last_len) != 0)
            return BERR_BLOB_UPLOAD_UNKNOWN;
        memcpy(rt->ref, last, last_len);
        rt->ref[last_len] = '\0';
        return 0;
    }
    if (ends_with(p, plen, "/blobs/uploads", 14)) {
        rt->kind = ROUTE_UPLOAD_NEW;
        return set_name(rt, p, plen - 14);
    }
    if (ends_with(p, plen, "/tags/list", 10)) {
        rt->kind = ROUTE_TAGS;
        return set_name(rt, p, plen - 10);
    }
    if (split(p, plen, "manifests", &last, &last_len, &name_len)) {
        rt->kind = ROUTE_MANIFEST;
        if ((rc = set_name(rt, p, name_len)) != 0)
            return rc;
        return set_reference(rt, last, last_len);
    }
    if (split(p, plen, "blobs", &last, &last_len, &name_len)) {
        rt->kind = ROUTE_BLOB;
        if ((rc = set_name(rt, p, name_len)) != 0)
            return rc;
        return set_digest(rt, last, last_len);
    }
    if (split(p, plen, "referrers", &last, &last_len, &name_len)) {
        rt->kind = ROUTE_REFERRERS;
        if ((rc = set_name(rt, p, name_len)) != 0)
            return rc;
        return set_digest(rt, last, last_len);
    }
    return BERR_NOT_FOUND;
}
