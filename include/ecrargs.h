/*
 * ecrargs.h - decoding the JSON body of an ECR API request (botocore's ecr/2015-09-21 request shapes): the body
 * itself, and the arguments several operations share (repositoryName, maxResults, nextToken, imageIds, resource
 * tags, tag mutability and its exclusion filters, UploadLayerPart's blob and byte range).  Pure (jansson and
 * libsodium only, no h2o; in libberthproto) so that it is fuzzed (tests/fuzz/fuzz_ecrargs.c) on its own;
 * server/ecr_ops.c and friends call it and turn a failure into the ECR error it names.
 *
 * A failed decode fills a `struct ecrargs_err`: the `__type` an AWS client expects (a static string) and the
 * message.  Strings returned point into the request object `in`.
 */
#ifndef BERTH_ECRARGS_H
#define BERTH_ECRARGS_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "defaults.h"

#define ECRARGS_MSG_MAX 512 /* room for a failure message */
/* the name grammar ECR's messages quote for repositoryName */
#define ECRARGS_NAME_REGEX "(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*"

/** Why a request was refused: ECR's exception name and message. */
struct ecrargs_err {
    const char *type;
    char msg[ECRARGS_MSG_MAX];
};

/** The request body `body[0..len)` as a JSON object (an empty body is `{}`; duplicate keys are refused).  Returns
 *  a new reference, or NULL with SerializationException in `e`. */
json_t *ecrargs_body(const char *body, size_t len, struct ecrargs_err *e);

/** String member `key` of `in` into *out (NULL when absent or null).  Returns 0, or -1 (a member of another type:
 *  SerializationException). */
int ecrargs_str(json_t *in, const char *key, const char **out, struct ecrargs_err *e);

/** The required repositoryName of `in`, valid by the name grammar and at least 2 characters (ECR's minimum).
 *  Returns it, or NULL with InvalidParameterException (or SerializationException) in `e`. */
const char *ecrargs_repo(json_t *in, struct ecrargs_err *e);

/** maxResults of `in`: absent = `dflt`, else an integer 1..BERTH_ECR_PAGE_MAX.  Returns it, or -1. */
int ecrargs_max_results(json_t *in, int dflt, struct ecrargs_err *e);

/** nextToken of `in`: base64url (no padding) of "<kind>|<id>|<text>" as ecrargs_token_format() writes it, for
 *  the same `kind`.  Absent: *id 0 and text "".  Returns 0, or -1 (not a token of this kind, an id < 0, a text
 *  that does not fit `size`). */
int ecrargs_token_in(json_t *in, char kind, int64_t *id, char *text, size_t size, struct ecrargs_err *e);

/** Writes the nextToken for (`kind` not NUL, `id` >= 0, `text` or NULL) into `out` (`size` bytes).  Returns 0, or -1 if
 *  the text is too long for a token (ECRARGS_TOKEN_TEXT_MAX) or `out` too small. */
int ecrargs_token_format(char kind, int64_t id, const char *text, char *out, size_t size);
#define ECRARGS_TOKEN_TEXT_MAX (BERTH_NAME_MAX + 32)  /* longest text a token carries */
#define ECRARGS_TOKEN_MAX (2 * (BERTH_NAME_MAX + 64)) /* room for a formatted token */

/** imageTagMutability (absent: "MUTABLE") and imageTagMutabilityExclusionFilters of `in`: *mut is one of ECR's
 *  four values; the filters (only with a *_WITH_EXCLUSION value; each {filter: 1..BERTH_TAG_MAX characters}) are
 *  written as compact JSON text into `filters` ("" when absent).  Returns 0, or -1. */
int ecrargs_mutability(json_t *in, const char **mut, char *filters, size_t size, struct ecrargs_err *e);

/** A TagList (`tags` may be NULL: none): at most BERTH_ECR_RTAGS_MAX {Key: 1..128, Value: 0..256 characters}.
 *  Returns 1 if valid, else 0 with InvalidTagParameterException. */
int ecrargs_tags(json_t *tags, struct ecrargs_err *e);

/** imageIds of `in`: a list of 1..BERTH_ECR_BATCH_MAX entries (absent and not `required`: NULL without error).
 *  Returns the list (borrowed), or NULL with InvalidParameterException. */
json_t *ecrargs_image_ids(json_t *in, int required, struct ecrargs_err *e);

/** One ImageIdentifier: `digest` receives the canonical digest ("" when none), *tag the tag (NULL when none).
 *  Returns NULL when well-formed, else ECR's failureCode (MissingDigestAndTag, InvalidImageDigest,
 *  InvalidImageTag). */
const char *ecrargs_image_id(json_t *id, char digest[BERTH_DIGEST_MAX], const char **tag);

/** UploadLayerPart's layerPartBlob (standard base64 of a non-empty part, decoded into a malloc'd *part of *len
 *  bytes) and partFirstByte / partLastByte.  Returns 0, or -1 with InvalidParameterException (or ServerException
 *  when out of memory). */
int ecrargs_layer_part(json_t *in, unsigned char **part, size_t *len, int64_t *first, int64_t *last,
                       struct ecrargs_err *e);

/** 1 if a part of `len` bytes from `first` to `last` (inclusive) continues an upload of `size` bytes exactly:
 *  first == size and last - first + 1 == len (without overflow); else 0. */
int ecrargs_part_continues(int64_t first, int64_t last, size_t len, uint64_t size);

#endif
