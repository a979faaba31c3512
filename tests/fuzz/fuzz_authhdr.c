/*
 * fuzz_authhdr.c - libFuzzer target for authhdr.h: the Authorization header (Basic and Bearer credentials).
 *
 * Beyond "no crash, no sanitizer report": Basic credentials fit their buffers (user NUL-terminated at ulen,
 * password at most BERTH_AUTH_PASSWORD_MAX bytes); a Bearer token lies inside the header value and has no leading
 * or trailing space; anything else is MALFORMED, and authhdr_clear() wipes the password.
 */
#include <string.h>
#include "authhdr.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *v = (const char *)data;
    struct authhdr a;
    authhdr_parse(v, size, &a);
    switch (a.kind) {
    case AUTHHDR_BASIC:
        FUZZ_ASSERT(a.ulen < sizeof(a.user) && a.user[a.ulen] == '\0' && a.plen <= BERTH_AUTH_PASSWORD_MAX);
        FUZZ_ASSERT(size > 6 && strncasecmp(v, "basic ", 6) == 0);
        break;
    case AUTHHDR_BEARER:
        FUZZ_ASSERT(a.token >= v && a.token + a.token_len <= v + size);
        FUZZ_ASSERT(a.token_len == 0 || (a.token[0] != ' ' && a.token[a.token_len - 1] != ' '));
        FUZZ_ASSERT(size > 7 && strncasecmp(v, "bearer ", 7) == 0);
        break;
    case AUTHHDR_MALFORMED:
        FUZZ_ASSERT(a.ulen == 0 && a.plen == 0 && a.token == NULL);
        break;
    case AUTHHDR_NONE:
        FUZZ_ASSERT(0); /* a header value, even empty, is never "no header" */
    }
    authhdr_clear(&a);
    for (size_t i = 0; i < sizeof(a.pass); i++)
        FUZZ_ASSERT(a.pass[i] == 0);
    return 0;
}
