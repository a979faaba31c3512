/*
 * err.h - the one table of Berth's errors.
 *
 * Every fallible function returns 0 or a negative BERR_* code.  Only the HTTP dispatcher turns a code into a
 * status line and the protocol's error body; it does so from this table and nowhere else.  The OCI code column
 * is the `code` member of the distribution-spec error body (spec section "Error Codes"); `status` is the HTTP
 * status sent with it.  The OCI codes are the spec's, plus Distribution's TAG_INVALID, PAGINATION_NUMBER_INVALID,
 * RANGE_INVALID, UNKNOWN and UNAVAILABLE where the spec has none that fits.
 */
#ifndef BERTH_ERR_H
#define BERTH_ERR_H

/* X(NAME, http status, OCI code, message) */
#define BERR_TABLE(X)                                                                                                  \
    X(BLOB_UNKNOWN, 404, "BLOB_UNKNOWN", "blob unknown to registry")                                                   \
    X(BLOB_UPLOAD_INVALID, 400, "BLOB_UPLOAD_INVALID", "blob upload invalid")                                          \
    X(BLOB_UPLOAD_UNKNOWN, 404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")                              \
    X(DIGEST_INVALID, 400, "DIGEST_INVALID", "provided digest did not match uploaded content")                         \
    X(MANIFEST_BLOB_UNKNOWN, 400, "MANIFEST_BLOB_UNKNOWN", "manifest references a blob unknown to the repository")     \
    X(MANIFEST_INVALID, 400, "MANIFEST_INVALID", "manifest invalid")                                                   \
    X(MANIFEST_TOO_LARGE, 413, "MANIFEST_INVALID", "manifest exceeds the size limit")                                  \
    X(MANIFEST_UNKNOWN, 404, "MANIFEST_UNKNOWN", "manifest unknown")                                                   \
    X(MANIFEST_CHILD_UNKNOWN, 400, "MANIFEST_UNKNOWN", "index references a manifest unknown to the repository")        \
    X(NAME_INVALID, 400, "NAME_INVALID", "invalid repository name")                                                    \
    X(NAME_UNKNOWN, 404, "NAME_UNKNOWN", "repository name not known to registry")                                      \
    X(TAG_INVALID, 400, "TAG_INVALID", "invalid tag")                                                                  \
    X(SIZE_INVALID, 400, "SIZE_INVALID", "provided length did not match content length")                               \
    X(BLOB_TOO_LARGE, 413, "SIZE_INVALID", "blob exceeds the size limit")                                              \
    X(RANGE_INVALID, 416, "BLOB_UPLOAD_INVALID", "invalid content range")                                              \
    X(RANGE_UNSATISFIABLE, 416, "RANGE_INVALID", "requested range not satisfiable")                                    \
    X(PAGINATION_INVALID, 400, "PAGINATION_NUMBER_INVALID", "invalid number of results requested")                     \
    X(UNAUTHORIZED, 401, "UNAUTHORIZED", "authentication required")                                                    \
    X(DENIED, 403, "DENIED", "requested access to the resource is denied")                                             \
    X(INSUFFICIENT_SCOPE, 401, "DENIED", "requested access to the resource is denied")                                 \
    X(TOO_MANY_REQUESTS, 429, "TOOMANYREQUESTS", "too many requests")                                                  \
    X(LOGINS_BUSY, 429, "TOOMANYREQUESTS", "too many password checks in progress, retry shortly")                      \
    X(UNSUPPORTED, 400, "UNSUPPORTED", "the operation is unsupported")                                                 \
    X(NOT_FOUND, 404, "UNSUPPORTED", "no route matches the request path")                                              \
    X(METHOD_NOT_ALLOWED, 405, "UNSUPPORTED", "method not allowed for this resource")                                  \
    X(BAD_REQUEST, 400, "UNSUPPORTED", "malformed request")                                                            \
    X(NOMEM, 500, "UNKNOWN", "out of memory")                                                                          \
    X(IO, 500, "UNKNOWN", "storage i/o error")                                                                         \
    X(NOSPACE, 507, "UNKNOWN", "no space left on the storage device")                                                  \
    X(DB, 500, "UNKNOWN", "metadata database error")                                                                   \
    X(BUSY, 503, "UNAVAILABLE", "registry busy, retry later")                                                          \
    X(UNAVAILABLE, 503, "UNAVAILABLE", "metadata database unavailable, retry later")                                   \
    X(INTERNAL, 500, "UNKNOWN", "internal error")                                                                      \
    X(LIFECYCLE_POLICY_INVALID, 400, "UNSUPPORTED", "invalid lifecycle policy")                                        \
    X(LIFECYCLE_POLICY_NOT_FOUND, 404, "UNSUPPORTED", "the repository has no lifecycle policy")                        \
    X(QUOTA_EXCEEDED, 403, "DENIED", "storage quota exceeded")

enum berr_code {
    BERR_OK = 0,
#define BERR_ENUM_(name, status, code, msg) BERR_##name,
    BERR__FIRST_ = -1000,
    BERR_TABLE(BERR_ENUM_)
#undef BERR_ENUM_
        BERR__END_
};

/** HTTP status for a negative BERR_* code (500 for anything unknown). */
int berr_status(int err);
/** OCI error code string for a negative BERR_* code. */
const char *berr_code(int err);
/** Human message for a negative BERR_* code. */
const char *berr_message(int err);
/** Short stable name ("BLOB_UNKNOWN") for logs. */
const char *berr_name(int err);
/** Converts an errno value to the nearest BERR_* code (ENOSPC → BERR_NOSPACE, else BERR_IO). */
int berr_from_errno(int e);

#endif
