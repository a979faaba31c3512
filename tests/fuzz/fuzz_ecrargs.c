/*
 * fuzz_ecrargs.c - libFuzzer target for ecrargs.h: the JSON body of an ECR request and the arguments the
 * operations decode from it (repositoryName, maxResults, nextToken, tag mutability and exclusion filters, resource
 * tags, imageIds and each ImageIdentifier, UploadLayerPart's blob and byte range).
 *
 * Input: a request body; every decoder runs on it.
 * Beyond "no crash, no sanitizer report, no leak":
 *   - a refusal names one of the exceptions an AWS client knows, with a NUL-terminated message;
 *   - the body round-trips: the decoded object, written back and decoded again, is equal;
 *   - what is accepted holds what the operations rely on: a repository name of the grammar and >= 2 characters,
 *     maxResults in 1..BERTH_ECR_PAGE_MAX, one of the four mutability values and filters only with a
 *     *_WITH_EXCLUSION one (re-parsed: a JSON array of {filter: 1..BERTH_TAG_MAX characters}), tags within AWS's
 *     limits, 1..BERTH_ECR_BATCH_MAX image ids whose digest re-parses to itself and whose tag is valid;
 *   - a nextToken that decodes is the one token ecrargs_token_format() writes for what it decoded (one spelling
 *     per position), and any (kind, id, text) formats to a token that decodes back to it;
 *   - a decoded layerPartBlob re-encodes to the text sent (no second spelling of a part), and
 *     ecrargs_part_continues() agrees with 128-bit arithmetic for the decoded range and several upload sizes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "digest.h"
#include "ecrargs.h"
#include "ecrdb.h"
#include "fuzz_common.h"
#include "names.h"

static void check_err(const struct ecrargs_err *e)
{
    static const char *const types[] = {"SerializationException", "InvalidParameterException",
                                        "InvalidTagParameterException", "ServerException"};
    int known = 0;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        known |= e->type != NULL && strcmp(e->type, types[i]) == 0;
    FUZZ_ASSERT(known && memchr(e->msg, '\0', sizeof(e->msg)) != NULL && e->msg[0] != '\0');
}

static void check_token(json_t *in, char kind)
{
    struct ecrargs_err e = {0};
    char text[ECRARGS_TOKEN_TEXT_MAX + 1], again[ECRARGS_TOKEN_MAX];
    int64_t id;
    const char *sent = json_string_value(json_object_get(in, "nextToken"));
    if (ecrargs_token_in(in, kind, &id, text, sizeof(text), &e) != 0) {
        check_err(&e);
        FUZZ_ASSERT(id == 0 && text[0] == '\0');
        return;
    }
    if (sent == NULL) {
        FUZZ_ASSERT(id == 0 && text[0] == '\0');
        return;
    }
    FUZZ_ASSERT(id >= 0 && ecrargs_token_format(kind, id, text, again, sizeof(again)) == 0);
    FUZZ_ASSERT(strcmp(again, sent) == 0);
}

/* (kind, id, text) taken from the input format to a token that decodes back to them. */
static void check_token_round_trip(const uint8_t *data, size_t size)
{
    char text[ECRARGS_TOKEN_TEXT_MAX + 1], tok[ECRARGS_TOKEN_MAX], back[ECRARGS_TOKEN_TEXT_MAX + 1];
    struct ecrargs_err e = {0};
    int64_t id, got;
    uint64_t u = 0;
    size_t n = 0;
    char kind = size > 0 && data[0] != 0 ? (char)data[0] : 'r';
    for (size_t i = 1; i < size && i < 9; i++)
        u = (u << 8) | data[i];
    id = (int64_t)(u & ((uint64_t)INT64_MAX >> 4)); /* at most 18 decimal digits */
    for (size_t i = 9; i < size && n < ECRARGS_TOKEN_TEXT_MAX; i++)
        if (data[i] != '\0')
            text[n++] = (char)data[i];
    text[n] = '\0';
    FUZZ_ASSERT(ecrargs_token_format(kind, id, text, tok, sizeof(tok)) == 0);
    json_t *in = json_pack("{s:s}", "nextToken", tok);
    FUZZ_ASSERT(ecrargs_token_in(in, kind, &got, back, sizeof(back), &e) == 0);
    FUZZ_ASSERT(got == id && strcmp(back, text) == 0);
    json_decref(in);
}

static void check_mutability(json_t *in)
{
    struct ecrargs_err e = {0};
    char filters[ECRDB_FILTERS_MAX + 1];
    const char *mut;
    if (ecrargs_mutability(in, &mut, filters, sizeof(filters), &e) != 0) {
        check_err(&e);
        return;
    }
    FUZZ_ASSERT(ecrdb_mutability_valid(mut));
    if (filters[0] == '\0')
        return;
    FUZZ_ASSERT(strstr(mut, "WITH_EXCLUSION") != NULL);
    json_t *f = json_loads(filters, 0, NULL), *v;
    size_t i;
    FUZZ_ASSERT(json_is_array(f));
    json_array_foreach(f, i, v)
    {
        const char *pat = json_string_value(json_object_get(v, "filter"));
        FUZZ_ASSERT(pat != NULL && pat[0] != '\0' && strlen(pat) <= BERTH_TAG_MAX);
    }
    json_decref(f);
}

static void check_tags(json_t *in)
{
    struct ecrargs_err e = {0};
    json_t *tags = json_object_get(in, "tags"), *t;
    size_t i;
    if (!ecrargs_tags(tags, &e)) {
        check_err(&e);
        return;
    }
    if (tags == NULL)
        return;
    FUZZ_ASSERT(json_is_array(tags) && json_array_size(tags) <= BERTH_ECR_RTAGS_MAX);
    json_array_foreach(tags, i, t)
    {
        const char *k = json_string_value(json_object_get(t, "Key")),
                   *v = json_string_value(json_object_get(t, "Value"));
        FUZZ_ASSERT(k != NULL && v != NULL && k[0] != '\0' && strlen(k) <= ECRDB_RESOURCE_TAG_KEY_MAX &&
                    strlen(v) <= ECRDB_RESOURCE_TAG_VALUE_MAX);
    }
}

static void check_image_ids(json_t *in)
{
    struct ecrargs_err e = {0};
    json_t *ids = ecrargs_image_ids(in, 1, &e), *id;
    size_t i;
    if (ids == NULL) {
        check_err(&e);
        return;
    }
    FUZZ_ASSERT(json_is_array(ids) && json_array_size(ids) >= 1 && json_array_size(ids) <= BERTH_ECR_BATCH_MAX);
    json_array_foreach(ids, i, id)
    {
        char digest[BERTH_DIGEST_MAX], again[BERTH_DIGEST_MAX];
        const char *tag, *code = ecrargs_image_id(id, digest, &tag);
        if (code != NULL) {
            FUZZ_ASSERT(strcmp(code, "MissingDigestAndTag") == 0 || strcmp(code, "InvalidImageDigest") == 0 ||
                        strcmp(code, "InvalidImageTag") == 0);
            continue;
        }
        FUZZ_ASSERT(digest[0] != '\0' || tag != NULL);
        FUZZ_ASSERT(digest[0] == '\0' || (digest_parse(digest, strlen(digest), again) == 0 && !strcmp(again, digest)));
        FUZZ_ASSERT(tag == NULL || names_tag_valid(tag, strlen(tag)) == 0);
    }
}

static void check_layer_part(json_t *in)
{
    static const uint64_t sizes[] = {0, 1, 5u << 20, (uint64_t)INT64_MAX, UINT64_MAX};
    struct ecrargs_err e = {0};
    unsigned char *part;
    size_t len;
    int64_t first, last;
    if (ecrargs_layer_part(in, &part, &len, &first, &last, &e) != 0) {
        check_err(&e);
        FUZZ_ASSERT(part == NULL && len == 0);
        return;
    }
    const char *sent = json_string_value(json_object_get(in, "layerPartBlob"));
    size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    char *again = malloc(cap);
    FUZZ_ASSERT(len > 0 && again != NULL);
    sodium_bin2base64(again, cap, part, len, sodium_base64_VARIANT_ORIGINAL);
    FUZZ_ASSERT(strcmp(again, sent) == 0);
    free(again);
    free(part);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]) + 1; i++) {
        uint64_t size = i < sizeof(sizes) / sizeof(sizes[0]) ? sizes[i] : (uint64_t)first;
        int want =
            first >= 0 && (unsigned __int128)first == size && (__int128)last - (__int128)first + 1 == (__int128)len;
        FUZZ_ASSERT(ecrargs_part_continues(first, last, len, size) == want);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ecrargs_err e = {0};
    json_t *in = ecrargs_body((const char *)data, size, &e), *back;
    char *text;
    const char *repo;
    int n;
    check_token_round_trip(data, size);
    if (in == NULL) {
        check_err(&e);
        return 0;
    }
    FUZZ_ASSERT(json_is_object(in));
    text = json_dumps(in, JSON_COMPACT);
    FUZZ_ASSERT(text != NULL);
    back = ecrargs_body(text, strlen(text), &e);
    FUZZ_ASSERT(back != NULL && json_equal(in, back));
    json_decref(back);
    free(text);
    if ((repo = ecrargs_repo(in, &e)) == NULL)
        check_err(&e);
    else
        FUZZ_ASSERT(strlen(repo) >= 2 && names_repo_valid(repo, strlen(repo)) == 0);
    n = ecrargs_max_results(in, BERTH_ECR_PAGE_DEFAULT, &e);
    if (n < 0)
        check_err(&e);
    else
        FUZZ_ASSERT(n >= 1 && n <= BERTH_ECR_PAGE_MAX &&
                    (json_object_get(in, "maxResults") != NULL || n == BERTH_ECR_PAGE_DEFAULT));
    check_token(in, 'r');
    check_token(in, 'i');
    check_mutability(in);
    check_tags(in);
    check_image_ids(in);
    check_layer_part(in);
    json_decref(in);
    return 0;
}
