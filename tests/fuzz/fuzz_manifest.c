/*
 * fuzz_manifest.c - libFuzzer target for manifest.h: manifest_parse() of a manifest body sent with a Content-Type,
 * and manifest_known_type().
 *
 * Input: the Content-Type up to the first '\n', then the body (no '\n': no Content-Type).
 * Beyond "no crash, no sanitizer report, no leak": an accepted manifest has a known kind and a static media type,
 * every reference digest re-parses, sizes are not negative, at most BERTH_MANIFEST_REFS_MAX references, a subject
 * is a valid digest, and the detail of a refusal is a NUL-terminated string that fits its buffer.
 */
#include <string.h>
#include "digest.h"
#include "err.h"
#include "fuzz_common.h"
#include "manifest.h"

static void check_info(const struct manifest_info *mi)
{
    char d[BERTH_DIGEST_MAX];
    FUZZ_ASSERT(mi->kind == MANIFEST_IMAGE || mi->kind == MANIFEST_INDEX);
    FUZZ_ASSERT(mi->media_type != NULL &&
                manifest_known_type(mi->media_type, strlen(mi->media_type)) == mi->media_type);
    FUZZ_ASSERT(mi->nrefs <= BERTH_MANIFEST_REFS_MAX && (mi->nrefs == 0 || mi->refs != NULL));
    for (size_t i = 0; i < mi->nrefs; i++) {
        FUZZ_ASSERT(digest_parse(mi->refs[i].digest, strlen(mi->refs[i].digest), d) == 0);
        FUZZ_ASSERT(mi->refs[i].size >= 0);
    }
    if (mi->subject[0] != '\0')
        FUZZ_ASSERT(digest_parse(mi->subject, strlen(mi->subject), d) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data, *nl = memchr(s, '\n', size), *body = s, *ct = NULL;
    size_t blen = size, ctlen = 0;
    struct manifest_info mi;
    char detail[256];
    int rc;
    if (nl != NULL) {
        ct = s;
        ctlen = (size_t)(nl - s);
        body = nl + 1;
        blen = size - ctlen - 1;
        (void)manifest_known_type(ct, ctlen);
    }
    memset(detail, 'x', sizeof(detail));
    rc = manifest_parse(body, blen, ct, ctlen, &mi, detail, sizeof(detail));
    FUZZ_ASSERT(memchr(detail, '\0', sizeof(detail)) != NULL);
    if (rc == 0)
        check_info(&mi);
    else
        FUZZ_ASSERT(rc == BERR_MANIFEST_INVALID);
    manifest_info_free(&mi);
    return 0;
}
