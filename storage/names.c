/* names.c - repository-name and tag grammar checks (distribution-spec v1.1). */
#include "names.h"
#include "defaults.h"
#include "err.h"

static int alnum_lower(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
static int component_valid(const char *s, size_t len)
{
    size_t i = 0;
    if (len == 0 || len > BERTH_NAME_COMPONENT_MAX || !alnum_lower(s[0]) || !alnum_lower(s[len - 1]))
        return 0;
    while (i < len) {
        if (alnum_lower(s[i])) {
            i++;
            continue;
        }
        /* a separator run: ".", "_", "__" or "-+" and then an alphanumeric */
        size_t j = i;
        if (s[i] == '.') {
            j = i + 1;
        } else if (s[i] == '_') {
            j = i + 1;
            if (j < len && s[j] == '_')
                j++;
        } else if (s[i] == '-') {
            while (j < len && s[j] == '-')
                j++;
        } else {
            return 0;
        }
        if (j >= len || !alnum_lower(s[j]))
            return 0;
        i = j;
    }
    return 1;
}

int names_repo_valid(const char *s, size_t len)
{
    size_t start = 0;
    if (len == 0 || len > BERTH_NAME_MAX)
        return BERR_NAME_INVALID;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '/') {
            if (!component_valid(s + start, i - start))
                return BERR_NAME_INVALID;
            start = i + 1;
        }
    }
    return 0;
}

int names_tag_valid(const char *s, size_t len)
{
    if (len == 0 || len > BERTH_TAG_MAX)
        return BERR_TAG_INVALID;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                 (i > 0 && (c == '.' || c == '-'));
        if (!ok)
            return BERR_TAG_INVALID;
    }
    return 0;
}

static int host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '~' || c == '-';
}

static int ip6_char(char c)
{
    return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':' || c == '.';
}

int names_host_valid(const char *s, size_t len)
{
    size_t i = 0, digits;
    if (len == 0 || len > BERTH_AUTH_REALM_MAX)
        return BERR_BAD_REQUEST;
    if (s[0] == '[') {
        for (i = 1; i < len && ip6_char(s[i]); i++)
            ;
        if (i == 1 || i == len || s[i] != ']')
            return BERR_BAD_REQUEST;
        i++;
    } else {
        while (i < len && host_char(s[i]))
            i++;
        if (i == 0)
            return BERR_BAD_REQUEST;
    }
    if (i == len)
        return 0;
    if (s[i++] != ':')
        return BERR_BAD_REQUEST;
    for (digits = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++)
        digits++;
    return i == len && digits >= 1 && digits <= 5 ? 0 : BERR_BAD_REQUEST;
}

int names_glob_match(const char *p, const char *s)
{
    const char *star = NULL, *resume = NULL;
    /* iterative glob with one backtrack point: linear enough for names and tags of <= 255 bytes */
    while (*s != '\0') {
        if (*p == '*') {
            star = p++;
            resume = s;
        } else if (*p == *s) {
            p++;
            s++;
        } else if (star != NULL) {
            p = star + 1;
            s = ++resume;
        } else {
            return 0;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}
