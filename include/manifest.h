/*
 * manifest.h - reading OCI / Docker schema2 manifests and indexes into what the registry must check and index.
 *
 * Pure: no I/O.  manifest_parse() validates the JSON shape the distribution-spec and the image-spec require
 * (schemaVersion 2, descriptors with mediaType/digest/size, a mediaType that agrees with Content-Type) and lists
 * every descriptor the registry has to verify before the manifest may be stored: config and layers of an image
 * manifest, child manifests of an index.  Docker schema1 is refused.
 */
#ifndef BERTH_MANIFEST_H
#define BERTH_MANIFEST_H

#include <stddef.h>
#include <stdint.h>
#include "defaults.h"

#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_SCHEMA1 "application/vnd.docker.distribution.manifest.v1+json"
#define MT_DOCKER_SCHEMA1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"
#define MT_MEDIA_TYPE_MAX 255 /* RFC 6838 caps a media type name at 127 + "/" + 127 */

enum manifest_kind {
    MANIFEST_IMAGE = 1, /* OCI image manifest or Docker schema2 manifest */
    MANIFEST_INDEX = 2, /* OCI image index or Docker manifest list */
};

/** One descriptor the registry must find before accepting the manifest. */
struct manifest_ref {
    char digest[BERTH_DIGEST_MAX];
    int64_t size;
    int is_manifest; /* an index entry whose mediaType is a manifest type: must be a manifest of the repository */
    int foreign;     /* a non-distributable layer with urls: not required to be in the registry */
};

/** Everything Berth keeps about a manifest besides its bytes.  Free with manifest_info_free(). */
struct manifest_info {
    enum manifest_kind kind;
    const char *media_type;         /* one of the MT_* constants above (static) */
    char *artifact_type;            /* artifactType, else config.mediaType for an image manifest; NULL if none */
    char subject[BERTH_DIGEST_MAX]; /* subject descriptor's digest, "" when there is none */
    char *annotations;              /* compact JSON object text of "annotations", NULL if none */
    struct manifest_ref *refs;      /* config first, then layers; or the index entries */
    size_t nrefs;
};

/** Returns the static MT_* string equal to `mt[0..len)` if it names a manifest type Berth stores, else NULL.
 *  Parameters after ';' are ignored. */
const char *manifest_known_type(const char *mt, size_t len);

/** Parses and validates `body` sent with Content-Type `ct` (may be NULL/0).  On failure returns
 *  BERR_MANIFEST_INVALID and writes the reason into `detail` (always NUL-terminated). */
int manifest_parse(const char *body, size_t len, const char *ct, size_t ctlen, struct manifest_info *out, char *detail,
                   size_t detail_size);

/** Releases what manifest_parse() allocated (safe on a zeroed struct). */
void manifest_info_free(struct manifest_info *mi);

#endif
