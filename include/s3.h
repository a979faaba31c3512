/*
 * s3.h - a small blocking S3 client: objects, multipart uploads, listings and presigned URLs of one bucket on an
 * S3-compatible endpoint (tested against Ceph RGW), signed with Berth's own SigV4 (sigv4.h).
 *
 * Transport: HTTP/1.1 over TCP (http://) or TLS (https://, OpenSSL: TLS 1.2+, the certificate and host name
 * verified against the system's CA store, which SSL_CERT_FILE / SSL_CERT_DIR override), one keep-alive connection
 * per thread and client, reused across requests and re-dialled once when the server closed it between two requests.
 * Addressing: path-style (http://host:port/BUCKET/KEY) or virtual-hosted (http://BUCKET.host:port/KEY).
 * Payloads are sent as "UNSIGNED-PAYLOAD" except small XML bodies, which carry their real SHA-256.
 *
 * Errors: every function returns 0 or a BERR code: 404 NoSuchKey -> BERR_BLOB_UNKNOWN, NoSuchUpload ->
 * BERR_BLOB_UPLOAD_UNKNOWN, 416 -> BERR_RANGE_UNSATISFIABLE, QuotaExceeded (a bucket or user quota) and 507 (the
 * cluster is full) -> BERR_NOSPACE, anything else (other statuses, network, malformed
 * answers) -> BERR_IO, logged with the method, key, status and S3's error code from its XML body.  Secrets are never
 * logged.
 *
 * Keys are passed whole (the caller adds its prefix) and must be made of RFC 3986 unreserved characters and '/'.
 * Threads: a struct s3 is read-only after s3_new and may be shared by every thread.
 */
#ifndef BERTH_S3_H
#define BERTH_S3_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define S3_URL_MAX 512
#define S3_BUCKET_MAX 63
#define S3_PREFIX_MAX 256
#define S3_KEY_MAX 1024
#define S3_SECRET_MAX 128
#define S3_REGION_MAX 64
#define S3_ETAG_MAX 80       /* an ETag with its quotes ("<32 hex>-<parts>") */
#define S3_UPLOAD_ID_MAX 256 /* a multipart upload id */

struct s3_config {
    char endpoint[S3_URL_MAX]; /* http://host[:port] */
    char region[S3_REGION_MAX + 1];
    char bucket[S3_BUCKET_MAX + 1];
    char access_key[S3_SECRET_MAX + 1];
    char secret_key[S3_SECRET_MAX + 1];
    int path_style; /* 1: http://host/BUCKET/KEY, 0: http://BUCKET.host/KEY */
};

struct s3;

/** One uploaded part of a multipart upload. */
struct s3_part {
    int number; /* 1 .. BERTH_S3_PARTS_MAX */
    char etag[S3_ETAG_MAX + 1];
};

/** A client for `cfg` (copied).  Returns 0, BERR_BAD_REQUEST (endpoint not an http:// or https:// URL without a
 *  path, empty bucket or key) or BERR_NOMEM. */
int s3_new(const struct s3_config *cfg, struct s3 **out);
/** Frees a client (safe on NULL).  Connections cached by threads are closed when those threads use another client
 *  or exit with the process. */
void s3_free(struct s3 *s);

/** Stores `data[0..len)` as object `key`.  Returns 0 or a BERR code. */
int s3_put(struct s3 *s, const char *key, const void *data, size_t len);
/** Streams `len` bytes of object `key` from `off` (len 0: to the end) into `sink(ctx, bytes, n)`, which may stop
 *  the transfer by returning non-zero (returned as is).  Returns 0 or a BERR code. */
int s3_get(struct s3 *s, const char *key, uint64_t off, uint64_t len, int (*sink)(void *ctx, const void *p, size_t n),
           void *ctx);
/** The size of object `key` into *size.  Returns 0, BERR_BLOB_UNKNOWN or BERR_IO. */
int s3_head(struct s3 *s, const char *key, uint64_t *size);
/** Deletes object `key` (absent is success, as in S3).  Returns 0 or a BERR code. */
int s3_delete(struct s3 *s, const char *key);
/** Server-side copy of object `src` to `dst` (CopyObject, up to 5 GiB).  Returns 0 or a BERR code. */
int s3_copy(struct s3 *s, const char *src, const char *dst);

/** Starts a multipart upload of `key`; its id goes to `upload_id` (S3_UPLOAD_ID_MAX + 1 bytes). */
int s3_mpu_create(struct s3 *s, const char *key, char *upload_id);
/** Uploads part `number` of upload `upload_id`; its ETag goes to `etag` (S3_ETAG_MAX + 1 bytes). */
int s3_mpu_part(struct s3 *s, const char *key, const char *upload_id, int number, const void *data, size_t len,
                char *etag);
/** Completes upload `upload_id` from `parts[0..n)` (in part order).  Returns 0, BERR_BLOB_UPLOAD_UNKNOWN or BERR_IO. */
int s3_mpu_complete(struct s3 *s, const char *key, const char *upload_id, const struct s3_part *parts, size_t n);
/** Aborts upload `upload_id` (an unknown upload is success).  Returns 0 or a BERR code. */
int s3_mpu_abort(struct s3 *s, const char *key, const char *upload_id);
/** Calls `fn(ctx, key, upload_id, initiated)` for every multipart upload in progress under `prefix`; stops at fn's
 *  first non-zero result and returns it.  Returns 0 or a BERR code. */
int s3_mpu_list(struct s3 *s, const char *prefix,
                int (*fn)(void *ctx, const char *key, const char *upload_id, time_t initiated), void *ctx);
/** Calls `fn(ctx, key, size, mtime)` for every object under `prefix` (ListObjectsV2, all pages; mtime is its
 *  LastModified); stops at fn's first non-zero result and returns it.  Returns 0 or a BERR code. */
int s3_list(struct s3 *s, const char *prefix, int (*fn)(void *ctx, const char *key, uint64_t size, time_t mtime),
            void *ctx);

/** Checks that the bucket exists and the credentials may list it (one ListObjectsV2 of at most one key).  Returns 0
 *  or BERR_IO (S3's error code logged: NoSuchBucket, InvalidAccessKeyId, SignatureDoesNotMatch, AccessDenied…). */
int s3_check(struct s3 *s);

/** A presigned GET URL of object `key`, valid `expires` seconds from `now`, into `out` (`cap` bytes).  Returns 0 or
 *  BERR_INTERNAL (`out` too small). */
int s3_presign_get(const struct s3 *s, const char *key, time_t now, long expires, char *out, size_t cap);

/** Builds the signed head of a request (request line, Host, x-amz-date, x-amz-content-sha256, the `extra` header
 *  lines "name: value" (lower-case names), Authorization, Content-Length) into `out` (`cap` bytes), as s3_* send it.
 *  `query` is already encoded.  For tests (botocore comparison).  Returns the head's length or a negative BERR code. */
int s3_sign_head(const struct s3 *s, const char *method, const char *key, const char *query, const char *const *extra,
                 size_t nextra, const char *payload_hash, size_t body_len, time_t now, char *out, size_t cap);

#endif
