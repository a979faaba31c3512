/* manifest.c - validation of image manifests and indexes, and extraction of their references (image-spec 1.1). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "digest.h"
#include "err.h"
#include "manifest.h"

static const char *const known_types[] = {MT_OCI_MANIFEST, MT_OCI_INDEX, MT_DOCKER_MANIFEST, MT_DOCKER_LIST};

const char *manifest_known_type(const char *mt, size_t len)
{
    size_t n = 0;
    if (mt == NULL)
        return NULL;
    while (n < len && mt[n] != ';')
        n++;
    while (n > 0 && (mt[n - 1] == ' ' || mt[n - 1] == '\t'))
        n--;
    for (size_t i = 0; i < sizeof(known_types) / sizeof(known_types[0]); i++)
        if (strlen(known_types[i]) == n && strncmp(known_types[i], mt, n) == 0)
            return known_types[i];
    return NULL;
}

__attribute__((format(printf, 3, 4))) static int fail(char *detail, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, size, fmt, ap);
    va_end(ap);
    return BERR_MANIFEST_INVALID;
}

static int is_schema1(const char *mt, size_t len)
{
    return (len >= sizeof(MT_DOCKER_SCHEMA1) - 1 &&
            strncmp(mt, MT_DOCKER_SCHEMA1, sizeof(MT_DOCKER_SCHEMA1) - 1) == 0) ||
           (len >= sizeof(MT_DOCKER_SCHEMA1_SIGNED) - 1 &&
            strncmp(mt, MT_DOCKER_SCHEMA1_SIGNED, sizeof(MT_DOCKER_SCHEMA1_SIGNED) - 1) == 0);
}

static int media_type_ok(const char *s)
{
    size_t n = strlen(s);
    const char *slash = strchr(s, '/');
    if (n == 0 || n > MT_MEDIA_TYPE_MAX || slash == NULL || slash == s || slash[1] == '\0')
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

/* Checks a descriptor's mediaType, digest and size; fills `ref` (may be NULL). `what` names it in errors. */
static int read_descriptor(json_t *d, const char *what, struct manifest_ref *ref, const char **mt_out, char *detail,
                           size_t ds)
{
    json_t *mt = json_object_get(d, "mediaType"), *dg = json_object_get(d, "digest"), *sz = json_object_get(d, "size");
    char digest[BERTH_DIGEST_MAX];
    if (!json_is_object(d))
        return fail(detail, ds, "%s is not a JSON object", what);
    if (!json_is_string(mt) || !media_type_ok(json_string_value(mt)))
        return fail(detail, ds, "%s has no valid mediaType", what);
    if (!json_is_string(dg) || digest_parse(json_string_value(dg), json_string_length(dg), digest) != 0)
        return fail(detail, ds, "%s has an invalid or unsupported digest (only sha256 is accepted)", what);
    if (!json_is_integer(sz) || json_integer_value(sz) < 0)
        return fail(detail, ds, "%s has an invalid size (must be a non-negative integer)", what);
    if (ref != NULL) {
        memcpy(ref->digest, digest, sizeof(digest));
        ref->size = json_integer_value(sz);
    }
    if (mt_out != NULL)
        *mt_out = json_string_value(mt);
    return 0;
}

static int is_foreign_layer(const char *mt, json_t *d)
{
    json_t *urls = json_object_get(d, "urls");
    if (!json_is_array(urls) || json_array_size(urls) == 0)
        return 0;
    return strcmp(mt, "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip") == 0 ||
           strncmp(mt, "application/vnd.oci.image.layer.nondistributable.", 49) == 0;
}

static int add_refs(json_t *arr, const char *what, struct manifest_info *mi, int index, char *detail, size_t ds)
{
    size_t i;
    json_t *d;
    char label[64];
    if (json_array_size(arr) > BERTH_MANIFEST_REFS_MAX)
        return fail(detail, ds, "too many %s (limit %d)", what, BERTH_MANIFEST_REFS_MAX);
    json_array_foreach(arr, i, d)
    {
        struct manifest_ref *r = &mi->refs[mi->nrefs];
        const char *mt;
        int rc;
        snprintf(label, sizeof(label), "%s[%zu]", what, i);
        if ((rc = read_descriptor(d, label, r, &mt, detail, ds)) != 0)
            return rc;
        r->is_manifest = index && manifest_known_type(mt, strlen(mt)) != NULL;
        r->foreign = !index && is_foreign_layer(mt, d);
        mi->nrefs++;
    }
    return 0;
}

static int copy_extras(json_t *root, struct manifest_info *mi, char *detail, size_t ds)
{
    json_t *at = json_object_get(root, "artifactType"), *subject = json_object_get(root, "subject");
    json_t *ann = json_object_get(root, "annotations");
    if (at != NULL) {
        if (!json_is_string(at) || !media_type_ok(json_string_value(at)))
            return fail(detail, ds, "artifactType is not a valid media type");
        if ((mi->artifact_type = strdup(json_string_value(at))) == NULL)
            return BERR_NOMEM;
    } else if (mi->kind == MANIFEST_IMAGE) {
        const char *cmt = json_string_value(json_object_get(json_object_get(root, "config"), "mediaType"));
        if (cmt != NULL && (mi->artifact_type = strdup(cmt)) == NULL)
            return BERR_NOMEM;
    }
    if (subject != NULL) {
        struct manifest_ref r;
        int rc = read_descriptor(subject, "subject", &r, NULL, detail, ds);
        if (rc != 0)
            return rc;
        memcpy(mi->subject, r.digest, sizeof(r.digest));
    }
    if (ann != NULL) {
        const char *k;
        json_t *v;
        if (!json_is_object(ann))
            return fail(detail, ds, "annotations is not a JSON object");
        json_object_foreach(ann, k, v) if (!json_is_string(v)) return fail(detail, ds, "annotation %s is not a string",
                                                                           k);
        if (json_object_size(ann) > 0)
            mi->annotations = json_dumps(ann, JSON_COMPACT | JSON_SORT_KEYS);
    }
    return 0;
}

/* Decides which manifest type this is from Content-Type and the body's mediaType; they must agree. */
static int resolve_type(json_t *root, const char *ct, size_t ctlen, struct manifest_info *mi, char *detail, size_t ds)
{
    json_t *mt = json_object_get(root, "mediaType");
    const char *from_ct = ct != NULL && ctlen > 0 ? manifest_known_type(ct, ctlen) : NULL;
    const char *from_body = NULL;
    if (mt != NULL) {
        if (!json_is_string(mt))
            return fail(detail, ds, "mediaType is not a string");
        if (is_schema1(json_string_value(mt), json_string_length(mt)))
            return fail(detail, ds, "Docker schema1 manifests are not supported; push schema2 or OCI");
        from_body = manifest_known_type(json_string_value(mt), json_string_length(mt));
        if (from_body == NULL)
            return fail(detail, ds, "unsupported manifest mediaType %s", json_string_value(mt));
    }
    if (ct != NULL && ctlen > 0 && is_schema1(ct, ctlen))
        return fail(detail, ds, "Docker schema1 manifests are not supported; push schema2 or OCI");
    if (from_ct != NULL && from_body != NULL && from_ct != from_body)
        return fail(detail, ds, "mediaType %s does not match Content-Type %s", from_body, from_ct);
    mi->media_type = from_body != NULL ? from_body : from_ct;
    if (mi->media_type == NULL) {
        /* No usable type anywhere: an OCI manifest may omit mediaType; infer it from the shape. */
        if (json_object_get(root, "manifests") != NULL)
            mi->media_type = MT_OCI_INDEX;
        else if (json_object_get(root, "config") != NULL)
            mi->media_type = MT_OCI_MANIFEST;
        else
            return fail(detail, ds, "cannot tell the manifest type: no known mediaType or Content-Type");
    }
    mi->kind = (strcmp(mi->media_type, MT_OCI_INDEX) == 0 || strcmp(mi->media_type, MT_DOCKER_LIST) == 0)
                   ? MANIFEST_INDEX
                   : MANIFEST_IMAGE;
    return 0;
}

static int parse_root(json_t *root, const char *ct, size_t ctlen, struct manifest_info *mi, char *detail, size_t ds)
{
    json_t *sv = json_object_get(root, "schemaVersion");
    int rc;
    if (!json_is_object(root))
        return fail(detail, ds, "manifest is not a JSON object");
    if (json_is_integer(sv) && json_integer_value(sv) == 1)
        return fail(detail, ds, "Docker schema1 manifests are not supported; push schema2 or OCI");
    if (!json_is_integer(sv) || json_integer_value(sv) != 2)
        return fail(detail, ds, "schemaVersion must be 2");
    if ((rc = resolve_type(root, ct, ctlen, mi, detail, ds)) != 0)
        return rc;
    if (mi->kind == MANIFEST_IMAGE) {
        json_t *config = json_object_get(root, "config"), *layers = json_object_get(root, "layers");
        if (config == NULL)
            return fail(detail, ds, "image manifest has no config descriptor");
        if (layers != NULL && !json_is_array(layers))
            return fail(detail, ds, "layers is not an array");
        if (json_object_get(root, "manifests") != NULL)
            return fail(detail, ds, "an image manifest cannot have manifests");
        mi->refs = calloc(1 + json_array_size(layers), sizeof(*mi->refs));
        if (mi->refs == NULL)
            return BERR_NOMEM;
        if ((rc = read_descriptor(config, "config", &mi->refs[0], NULL, detail, ds)) != 0)
            return rc;
        mi->nrefs = 1;
        if (layers != NULL && (rc = add_refs(layers, "layers", mi, 0, detail, ds)) != 0)
            return rc;
    } else {
        json_t *manifests = json_object_get(root, "manifests");
        if (!json_is_array(manifests))
            return fail(detail, ds, "index has no manifests array");
        if (json_object_get(root, "config") != NULL || json_object_get(root, "layers") != NULL)
            return fail(detail, ds, "an index cannot have config or layers");
        mi->refs = calloc(json_array_size(manifests) + 1, sizeof(*mi->refs));
        if (mi->refs == NULL)
            return BERR_NOMEM;
        if ((rc = add_refs(manifests, "manifests", mi, 1, detail, ds)) != 0)
            return rc;
    }
    return copy_extras(root, mi, detail, ds);
}

int manifest_parse(const char *body, size_t len, const char *ct, size_t ctlen, struct manifest_info *out, char *detail,
                   size_t ds)
{
    json_error_t jerr;
    json_t *root;
    int rc;
    memset(out, 0, sizeof(*out));
    detail[0] = '\0';
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return fail(detail, ds, "manifest is not valid JSON: %s (offset %d)", jerr.text, jerr.position);
    rc = parse_root(root, ct, ctlen, out, detail, ds);
    json_decref(root);
    if (rc != 0)
        manifest_info_free(out);
    return rc;
}

void manifest_info_free(struct manifest_info *mi)
{
    free(mi->artifact_type);
    free(mi->annotations);
    free(mi->refs);
    mi->artifact_type = mi->annotations = NULL;
    mi->refs = NULL;
    mi->nrefs = 0;
}
