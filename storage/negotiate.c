/* negotiate.c - which media types an Accept header value lists (negotiate.h). */
#include <string.h>
#include "negotiate.h"

/* Is the entry `p[0..n)` `mt`, or an accepted wildcard? */
static int entry_matches(const char *p, size_t n, const char *mt, size_t mtlen, int wildcards)
{
    if (n == mtlen && memcmp(p, mt, n) == 0)
        return 1;
    return wildcards && ((n == 3 && memcmp(p, "*/*", 3) == 0) || (n == 13 && memcmp(p, "application/*", 13) == 0));
}

int negotiate_accept_lists(const char *v, size_t len, const char *mt, int wildcards)
{
    const char *p = v, *end = v + len;
    size_t mtlen = strlen(mt);
    if (v == NULL)
        return 0;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p)), *e = comma != NULL ? comma : end, *t;
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        for (t = p; t < e && *t != ';' && *t != ' ' && *t != '\t'; t++)
            ;
        if (entry_matches(p, (size_t)(t - p), mt, mtlen, wildcards))
            return 1;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return 0;
}
