/*
 * fuzz_httpparse.c - libFuzzer target for httpparse.h: the query decoder, Range (blob GET) and Content-Range
 * (chunked upload PATCH), the parsers of request parts that the handlers read.
 *
 * Input: the first byte picks the size of the blob for Range (a few interesting sizes or one from the next 8
 * bytes); the rest is used as a query string, a Range value and a Content-Range value.
 * Beyond "no crash, no sanitizer report": a satisfiable range lies within the blob (from <= to < size); a
 * Content-Range has start <= end; a decoded query value is NUL-terminated inside its buffer, has no NUL inside
 * and is never longer than the raw query.
 */
#include <string.h>
#include "err.h"
#include "fuzz_common.h"
#include "httpparse.h"

struct seen {
    size_t n;
    size_t qlen;
};

static int each(void *ctx, const char *value)
{
    struct seen *s = ctx;
    FUZZ_ASSERT(strlen(value) <= s->qlen);
    return ++s->n >= 64;
}

static void check_query(const char *q, size_t len)
{
    static const char *keys[] = {"n", "last", "digest", "mount", "from", "scope", "service", "artifactType"};
    char buf[512];
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        struct seen s = {0, len};
        int rc = httpparse_query_each(q, len, keys[k], each, &s, buf, sizeof(buf));
        FUZZ_ASSERT(rc == -1 || rc == 0 || rc == 1);
        rc = httpparse_query(q, len, keys[k], buf, sizeof(buf));
        if (rc == 1)
            FUZZ_ASSERT(memchr(buf, '\0', sizeof(buf)) != NULL && strlen(buf) <= len);
    }
}

static uint64_t pick_size(const uint8_t *data, size_t *size, const uint8_t **rest)
{
    static const uint64_t sizes[] = {0, 1, 2, 100, 1u << 20, UINT64_MAX, UINT64_MAX - 1, (uint64_t)INT64_MAX};
    uint64_t v = 0;
    uint8_t sel = data[0];
    *rest = data + 1;
    (*size)--;
    if (sel < 0xf0 || *size < 8)
        return sizes[sel % (sizeof(sizes) / sizeof(sizes[0]))];
    memcpy(&v, *rest, 8);
    *rest += 8;
    *size -= 8;
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *rest;
    uint64_t blob, from = 0, to = 0, start = 0, end = 0;
    int rc;
    if (size == 0)
        return 0;
    blob = pick_size(data, &size, &rest);
    check_query((const char *)rest, size);
    rc = httpparse_range((const char *)rest, size, blob, &from, &to);
    FUZZ_ASSERT(rc == 0 || rc == 1 || rc == BERR_RANGE_UNSATISFIABLE);
    if (rc == 1)
        FUZZ_ASSERT(from <= to && to < blob);
    rc = httpparse_content_range((const char *)rest, size, &start, &end);
    FUZZ_ASSERT(rc == 0 || rc == BERR_RANGE_INVALID);
    if (rc == 0)
        FUZZ_ASSERT(start <= end);
    return 0;
}
