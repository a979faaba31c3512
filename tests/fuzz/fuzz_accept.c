/*
 * fuzz_accept.c - libFuzzer target for negotiate.h: the Accept header value of a manifest GET.
 *
 * Beyond "no crash, no sanitizer report" (the scan must never read past the value): the answer agrees with a
 * simple reference that splits the value on commas and trims each entry, for the four manifest types and with or
 * without wildcards.
 */
#include <string.h>
#include "fuzz_common.h"
#include "manifest.h"
#include "negotiate.h"

/* The reference: split on ',', skip leading spaces/tabs, cut at ';', ' ' or '\t', compare. */
static int reference(const char *v, size_t len, const char *mt, int wildcards)
{
    size_t i = 0;
    while (i <= len) {
        size_t j = i, k;
        while (j < len && v[j] != ',')
            j++;
        while (i < j && (v[i] == ' ' || v[i] == '\t'))
            i++;
        for (k = i; k < j && v[k] != ';' && v[k] != ' ' && v[k] != '\t'; k++)
            ;
        if ((k - i == strlen(mt) && memcmp(v + i, mt, k - i) == 0) ||
            (wildcards && ((k - i == 3 && memcmp(v + i, "*/*", 3) == 0) ||
                           (k - i == 13 && memcmp(v + i, "application/*", 13) == 0))))
            return 1;
        i = j + 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *types[] = {MT_OCI_MANIFEST, MT_OCI_INDEX, MT_DOCKER_MANIFEST, MT_DOCKER_LIST};
    const char *v = (const char *)data;
    char *copy = malloc(size + 1); /* exact-size copy: ASan catches any read past the value */
    if (copy == NULL)
        return 0;
    memcpy(copy, v, size);
    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++)
        for (int w = 0; w <= 1; w++)
            FUZZ_ASSERT(negotiate_accept_lists(copy, size, types[t], w) == reference(v, size, types[t], w));
    free(copy);
    return 0;
}
