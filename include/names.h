/*
 * names.h - the repository-name and tag grammar of the distribution-spec ("Pulling manifests").
 *
 *   name: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*   at most BERTH_NAME_MAX bytes
 *   tag:  [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
 *
 * A name that passes is safe to store and to echo in a Location header: it contains no "..", "//", "%", NUL.
 *
 * Host (RFC 9110 "Host" = uri-host [ ":" port ], restricted to what a registry is reached by):
 *   host: [A-Za-z0-9._~-]+  or  "[" [0-9A-Fa-f:.]+ "]"      port: ":" 1 to 5 digits
 * at most BERTH_AUTH_REALM_MAX bytes in all.  A host that passes is safe to echo inside a quoted header value.
 */
#ifndef BERTH_NAMES_H
#define BERTH_NAMES_H

#include <stddef.h>

/** Returns 0 if `s[0..len)` is a valid repository name, else BERR_NAME_INVALID. */
int names_repo_valid(const char *s, size_t len);
/** Returns 0 if `s[0..len)` is a valid tag, else BERR_TAG_INVALID. */
int names_tag_valid(const char *s, size_t len);

/** Returns 0 if `s[0..len)` is a host[:port] as above, else BERR_BAD_REQUEST. */
int names_host_valid(const char *s, size_t len);
/** 1 if `s` matches `pattern`, where '*' stands for any run of characters ('/' included) and every other byte for
 *  itself, else 0.  The one wildcard matcher of grant, quota and webhook patterns, ECR's tag-mutability exclusion
 *  filters and lifecycle tagPatternList entries. */
int names_glob_match(const char *pattern, const char *s);

#endif
