/*
 * names.h - the repository-name and tag grammar of the distribution-spec ("Pulling manifests").
 *
 *   name: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*   at most BERTH_NAME_MAX bytes
 *   tag:  [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
 *
 * A name that passes is safe to store and to echo in a Location header: it contains no "..", "//", "%", NUL.
 */
#ifndef BERTH_NAMES_H
#define BERTH_NAMES_H

#include <stddef.h>

/** Returns 0 if `s[0..len)` is a valid repository name, else BERR_NAME_INVALID. */
int names_repo_valid(const char *s, size_t len);
/** Returns 0 if `s[0..len)` is a valid tag, else BERR_TAG_INVALID. */
int names_tag_valid(const char *s, size_t len);

#endif
