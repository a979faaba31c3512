/* ecrargs.c - decoding ECR request bodies and their shared arguments (ecrargs.h). [pure] */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "digest.h"
#include "ecrargs.h"
#include "ecrdb.h"
#include "jwt.h"
#include "names.h"

/* Records a failure; returns -1. */
__attribute__((format(printf, 3, 4))) static int fail(struct ecrargs_err *e, const char *type, const char *fmt, ...)
{
    va_list ap;
    e->type = type;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    return -1;
}

json_t *ecrargs_body(const char *body, size_t len, struct ecrargs_err *e)
{
    json_error_t jerr;
    json_t *in = len == 0 ? json_object() : json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (in == NULL || !json_is_object(in)) {
        json_decref(in);
        fail(e, "SerializationException", "The request body is not a JSON object%s%s", len ? ": " : "",
             len ? jerr.text : "");
        return NULL;
    }
    return in;
}

int ecrargs_str(json_t *in, const char *key, const char **out, struct ecrargs_err *e)
{
    json_t *v = json_object_get(in, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return fail(e, "SerializationException", "'%s' must be a string", key);
    *out = json_string_value(v);
    return 0;
}

const char *ecrargs_repo(json_t *in, struct ecrargs_err *e)
{
    const char *name;
    if (ecrargs_str(in, "repositoryName", &name, e) != 0)
        return NULL;
    if (name == NULL)
        return fail(e, "InvalidParameterException", "repositoryName is required"), NULL;
    if (strlen(name) < 2 || names_repo_valid(name, strlen(name)) != 0)
        return fail(e, "InvalidParameterException",
                    "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular "
                    "expression '" ECRARGS_NAME_REGEX "''"),
               NULL;
    return name;
}

int ecrargs_max_results(json_t *in, int dflt, struct ecrargs_err *e)
{
    json_t *v = json_object_get(in, "maxResults");
    if (v == NULL)
        return dflt;
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > BERTH_ECR_PAGE_MAX)
        return fail(e, "InvalidParameterException",
                    "Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value between "
                    "1 and %d'",
                    BERTH_ECR_PAGE_MAX);
    return (int)json_integer_value(v);
}

/* Parses the canonical decimal at `s` (no sign, no leading zero, at most 18 digits) up to the next '|'.  Returns
 * the position of that '|', or NULL. */
static const char *token_id(const char *s, int64_t *id)
{
    size_t n = 0;
    *id = 0;
    while (s[n] >= '0' && s[n] <= '9' && n < 18)
        *id = *id * 10 + (s[n++] - '0');
    if (n == 0 || s[n] != '|' || (s[0] == '0' && n > 1))
        return NULL;
    return s + n;
}

int ecrargs_token_in(json_t *in, char kind, int64_t *id, char *text, size_t size, struct ecrargs_err *e)
{
    const char *t, *end;
    unsigned char raw[ECRARGS_TOKEN_TEXT_MAX + 32];
    size_t n;
    *id = 0;
    text[0] = '\0';
    if (ecrargs_str(in, "nextToken", &t, e) != 0)
        return -1;
    if (t == NULL)
        return 0;
    if (jwt_b64_decode(t, strlen(t), raw, sizeof(raw) - 1, &n) != 0 || n < 4 || memchr(raw, '\0', n) != NULL)
        goto bad;
    raw[n] = '\0';
    if ((char)raw[0] != kind || raw[1] != '|' || (end = token_id((char *)raw + 2, id)) == NULL ||
        strlen(end + 1) >= size || strlen(end + 1) > ECRARGS_TOKEN_TEXT_MAX)
        goto bad;
    snprintf(text, size, "%s", end + 1);
    return 0;
bad:
    *id = 0;
    text[0] = '\0';
    return fail(e, "InvalidParameterException", "Invalid parameter at 'nextToken': not a token this registry issued");
}

int ecrargs_token_format(char kind, int64_t id, const char *text, char *out, size_t size)
{
    char raw[ECRARGS_TOKEN_TEXT_MAX + 32];
    int n;
    if (kind == '\0' || id < 0 || (text != NULL && strlen(text) > ECRARGS_TOKEN_TEXT_MAX) ||
        size < sodium_base64_ENCODED_LEN(sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING))
        return -1;
    n = snprintf(raw, sizeof(raw), "%c|%" PRId64 "|%s", kind, id, text ? text : "");
    sodium_bin2base64(out, size, (unsigned char *)raw, (size_t)n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return 0;
}

int ecrargs_mutability(json_t *in, const char **mut, char *filters, size_t size, struct ecrargs_err *e)
{
    json_t *f = json_object_get(in, "imageTagMutabilityExclusionFilters"), *v;
    size_t i;
    char *text;
    filters[0] = '\0';
    if (ecrargs_str(in, "imageTagMutability", mut, e) != 0)
        return -1;
    if (*mut == NULL)
        *mut = "MUTABLE";
    if (!ecrdb_mutability_valid(*mut))
        return fail(e, "InvalidParameterException",
                    "Invalid parameter at 'imageTagMutability' failed to satisfy constraint: 'Member must satisfy "
                    "enum value set: [MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION]'");
    if (f == NULL)
        return 0;
    json_array_foreach(f, i, v)
    {
        const char *pat = json_string_value(json_object_get(v, "filter"));
        if (pat == NULL || pat[0] == '\0' || strlen(pat) > BERTH_TAG_MAX)
            f = NULL;
    }
    text = f && json_is_array(f) ? json_dumps(f, JSON_COMPACT) : NULL;
    if (text == NULL || strlen(text) >= size || strstr(*mut, "WITH_EXCLUSION") == NULL) {
        free(text);
        return fail(e, "InvalidParameterException",
                    "imageTagMutabilityExclusionFilters must be a list of {filterType: WILDCARD, filter} and needs a "
                    "*_WITH_EXCLUSION imageTagMutability");
    }
    snprintf(filters, size, "%s", text);
    free(text);
    return 0;
}

int ecrargs_tags(json_t *tags, struct ecrargs_err *e)
{
    json_t *t;
    size_t i;
    if (tags == NULL)
        return 1;
    if (!json_is_array(tags) || json_array_size(tags) > BERTH_ECR_RTAGS_MAX)
        return fail(e, "InvalidTagParameterException", "tags must be a list of at most %d {Key, Value}",
                    BERTH_ECR_RTAGS_MAX),
               0;
    json_array_foreach(tags, i, t)
    {
        const char *k = json_string_value(json_object_get(t, "Key")),
                   *v = json_string_value(json_object_get(t, "Value"));
        if (k == NULL || v == NULL || k[0] == '\0' || strlen(k) > ECRDB_RESOURCE_TAG_KEY_MAX ||
            strlen(v) > ECRDB_RESOURCE_TAG_VALUE_MAX)
            return fail(e, "InvalidTagParameterException",
                        "each tag needs a Key of 1 to %d characters and a Value of at most %d",
                        ECRDB_RESOURCE_TAG_KEY_MAX, ECRDB_RESOURCE_TAG_VALUE_MAX),
                   0;
    }
    return 1;
}

json_t *ecrargs_image_ids(json_t *in, int required, struct ecrargs_err *e)
{
    json_t *ids = json_object_get(in, "imageIds");
    if (ids == NULL && !required)
        return NULL;
    if (!json_is_array(ids) || json_array_size(ids) < 1 || json_array_size(ids) > BERTH_ECR_BATCH_MAX)
        return fail(e, "InvalidParameterException",
                    "Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member must have length between "
                    "1 and %d'",
                    BERTH_ECR_BATCH_MAX),
               NULL;
    return ids;
}

const char *ecrargs_image_id(json_t *id, char digest[BERTH_DIGEST_MAX], const char **tag)
{
    const char *d = json_string_value(json_object_get(id, "imageDigest"));
    *tag = json_string_value(json_object_get(id, "imageTag"));
    digest[0] = '\0';
    if (d == NULL && *tag == NULL)
        return "MissingDigestAndTag";
    if (d != NULL && digest_parse(d, strlen(d), digest) != 0)
        return "InvalidImageDigest";
    if (*tag != NULL && names_tag_valid(*tag, strlen(*tag)) != 0)
        return "InvalidImageTag";
    return NULL;
}

/* Is `s` made of standard base64 characters (and '=') only?  libsodium 1.0.18 decodes bytes >= 0x80 as if they
 * were some base64 character (see jwt.c). */
static int b64_chars_only(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
              c == '='))
            return 0;
    }
    return 1;
}

int ecrargs_layer_part(json_t *in, unsigned char **part, size_t *len, int64_t *first, int64_t *last,
                       struct ecrargs_err *e)
{
    const char *b64 = json_string_value(json_object_get(in, "layerPartBlob"));
    json_t *f = json_object_get(in, "partFirstByte"), *l = json_object_get(in, "partLastByte");
    size_t cap;
    *part = NULL;
    *len = 0;
    if (b64 == NULL || !json_is_integer(f) || !json_is_integer(l))
        return fail(e, "InvalidParameterException", "layerPartBlob, partFirstByte and partLastByte are required");
    cap = strlen(b64) / 4 * 3 + 3;
    if ((*part = malloc(cap)) == NULL)
        return fail(e, "ServerException", "out of memory");
    if (!b64_chars_only(b64) ||
        sodium_base642bin(*part, cap, b64, strlen(b64), NULL, len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        *len == 0) {
        free(*part);
        *part = NULL;
        *len = 0;
        return fail(e, "InvalidParameterException", "layerPartBlob is not base64 of a non-empty part");
    }
    *first = json_integer_value(f);
    *last = json_integer_value(l);
    return 0;
}

int ecrargs_part_continues(int64_t first, int64_t last, size_t len, uint64_t size)
{
    if (first < 0 || (uint64_t)first != size || last < first)
        return 0;
    return (uint64_t)last - (uint64_t)first == (uint64_t)len - 1;
}
