/*
 * sigv4.h - AWS Signature Version 4 (AWS4-HMAC-SHA256): canonical request, string to sign, key derivation,
 * signing and verification.  Pure: no I/O, no clock (the caller passes "now"), no h2o.
 *
 * One module for every SigV4 use in Berth: the ECR API verifies requests with it, and the S3 client (s3.h) signs
 * with it (Authorization headers, and presigned URLs: the same canonical request with the signature's parameters
 * in the query).  The steps follow AWS's "Create a signed AWS API request" (IAM user guide, Signature Version 4):
 *
 *   CanonicalRequest = Method \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n PayloadHash
 *   StringToSign     = "AWS4-HMAC-SHA256" \n X-Amz-Date \n <yyyymmdd>/<region>/<service>/aws4_request \n
 *                      hex(SHA256(CanonicalRequest))
 *   SigningKey       = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, yyyymmdd), region), service), "aws4_request")
 *   Signature        = hex(HMAC(SigningKey, StringToSign))
 *
 * Canonical URI: every byte of the path outside RFC 3986's unreserved set and '/' is percent-encoded; with
 * `double_encode` (every service but S3) the raw, already-encoded path is encoded once more, as botocore does.
 * Canonical query: pairs are decoded, re-encoded strictly and sorted by name, then value.  Canonical headers:
 * the signed headers in the order of SignedHeaders (which must be sorted, lower-case, unique and contain `host`),
 * values of repeated headers joined with ',', leading/trailing blanks trimmed, inner runs of blanks folded.
 *
 * Errors are negative SIGV4_E* codes (their own small table: the ECR layer maps each one onto the exception an
 * AWS client expects).  Secrets never leave the functions that take them; nothing here logs.
 */
#ifndef BERTH_SIGV4_H
#define BERTH_SIGV4_H

#include <stddef.h>
#include <time.h>

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SIGV4_MAX_SKEW (15 * 60)      /* seconds X-Amz-Date may differ from the server clock (AWS: 15 minutes) */
#define SIGV4_AMZDATE_LEN 16          /* "20150830T123600Z" */
#define SIGV4_HEX_LEN 64              /* hex SHA-256 / HMAC-SHA256 */
#define SIGV4_KEY_ID_MAX 128          /* longest access key id accepted in a Credential */
#define SIGV4_REGION_MAX 64           /* longest region accepted in a Credential */
#define SIGV4_SERVICE_MAX 64          /* longest service accepted in a Credential */
#define SIGV4_SIGNED_HEADERS_MAX 1024 /* longest SignedHeaders list accepted */
#define SIGV4_HEADERS_MAX 64          /* most headers one signature may cover */
#define SIGV4_AUTHZ_MAX 2048          /* room for an Authorization header value produced by sigv4_sign() */

/* S3 (the signing side, s3.h) */
#define SIGV4_PRESIGN_MAX 604800          /* longest lifetime of a presigned URL (S3: 7 days) */
#define SIGV4_UNSIGNED "UNSIGNED-PAYLOAD" /* payload hash of requests whose body is not signed */

/* Why a request was refused. */
enum sigv4_err {
    SIGV4_EMALFORMED = -1, /* Authorization header not AWS4-HMAC-SHA256 or not parseable (IncompleteSignature) */
    SIGV4_EMISSING = -2,   /* a header the signature must cover is missing or unsigned (IncompleteSignature) */
    SIGV4_EDATE = -3,      /* X-Amz-Date missing, malformed, or not the credential scope's day */
    SIGV4_ESTALE = -4,     /* X-Amz-Date more than SIGV4_MAX_SKEW away from now (signature expired) */
    SIGV4_EREGION = -5,    /* credential scoped to another region */
    SIGV4_ESERVICE = -6,   /* credential scoped to another service */
    SIGV4_EMISMATCH = -7,  /* signature does not match (wrong secret, changed body, header, path or query) */
    SIGV4_ENOMEM = -8,     /* out of memory */
};

/** One request header as received (not NUL-terminated; names in any case). */
struct sigv4_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/** A request to sign or verify.  `path` is the raw request target path (without '?'), `query` the raw query
 *  (without '?', may be empty), `headers` every header of the request including `host` (with its port when
 *  the client sent one), `payload_hash` the lower-case hex SHA-256 of the body. */
struct sigv4_request {
    const char *method;
    const char *path;
    size_t path_len;
    const char *query;
    size_t query_len;
    const struct sigv4_header *headers;
    size_t nheaders;
    const char *payload_hash;
    int double_encode; /* 1 for every service but S3 */
};

/** The parts of an `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` value. */
struct sigv4_auth {
    char key_id[SIGV4_KEY_ID_MAX + 1];
    char date[9]; /* yyyymmdd of the credential scope */
    char region[SIGV4_REGION_MAX + 1];
    char service[SIGV4_SERVICE_MAX + 1];
    char signed_headers[SIGV4_SIGNED_HEADERS_MAX + 1];
    char signature[SIGV4_HEX_LEN + 1];
};

/** Lower-case hex SHA-256 of `data[0..len)` into `out` (SIGV4_HEX_LEN + 1 bytes, NUL-terminated). */
void sigv4_sha256_hex(const void *data, size_t len, char out[SIGV4_HEX_LEN + 1]);

/** Builds the canonical request of `req` covering `signed_headers` (";"-separated, sorted, lower-case) into a
 *  malloc'd NUL-terminated string `*out` (caller frees).  Returns 0, SIGV4_EMISSING (a signed header absent,
 *  list unsorted or without host) or SIGV4_ENOMEM. */
int sigv4_canonical_request(const struct sigv4_request *req, const char *signed_headers, char **out);

/** Builds the string to sign from `amz_date` ("yyyymmddThhmmssZ"), the scope parts and the canonical request
 *  into a malloc'd `*out` (caller frees).  Returns 0 or SIGV4_ENOMEM. */
int sigv4_string_to_sign(const char *amz_date, const char *region, const char *service, const char *creq, char **out);

/** Derives the signing key for `secret[0..secret_len)`, day `date` ("yyyymmdd"), `region` and `service`. */
void sigv4_signing_key(const char *secret, size_t secret_len, const char *date, const char *region, const char *service,
                       unsigned char key[32]);

/** Parses an Authorization header value into `out`.  Returns 0 or SIGV4_EMALFORMED. */
int sigv4_parse_authorization(const char *value, size_t len, struct sigv4_auth *out);

/** Parses "yyyymmddThhmmssZ" into seconds since the epoch.  Returns 0 or SIGV4_EDATE. */
int sigv4_parse_amzdate(const char *s, size_t len, time_t *out);

/** Formats `t` as "yyyymmddThhmmssZ" into `out` (SIGV4_AMZDATE_LEN + 1 bytes). */
void sigv4_format_amzdate(time_t t, char out[SIGV4_AMZDATE_LEN + 1]);

/** Signs `req` (which must already carry `host` and `x-amz-date` headers, and `x-amz-security-token` when a
 *  session token is used) with every header it carries, writing the Authorization header value into `out`
 *  (SIGV4_AUTHZ_MAX bytes).  Returns 0, SIGV4_EDATE (no x-amz-date), SIGV4_EMISSING or SIGV4_ENOMEM. */
int sigv4_sign(const struct sigv4_request *req, const char *key_id, const char *secret, size_t secret_len,
               const char *region, const char *service, char out[SIGV4_AUTHZ_MAX]);

/** Presigns `req` (S3's query-string authentication, "UNSIGNED-PAYLOAD", only `host` signed): `req` must carry a
 *  `host` header and may carry a query of its own; `t` is the signing time and `expires` the URL's lifetime in
 *  seconds (1 .. SIGV4_PRESIGN_MAX).  Writes the complete query string (the request's own parameters, the
 *  X-Amz-* parameters and X-Amz-Signature, without '?') into `out` (`cap` bytes).  Returns 0, SIGV4_EMISSING (no
 *  host), SIGV4_EMALFORMED (expires out of range) or SIGV4_ENOMEM (also when `out` is too small). */
int sigv4_presign(const struct sigv4_request *req, const char *key_id, const char *secret, size_t secret_len,
                  const char *region, const char *service, time_t t, long expires, char *out, size_t cap);

/** Verifies `req` against the parsed `auth` with the key's `secret`: the credential's region and service must
 *  equal `region` and `service`, `x-amz-date` must be signed, the credential scope's day, and within
 *  SIGV4_MAX_SKEW of `now`; an `x-amz-security-token` header, when present, must be signed; the signature is
 *  compared in constant time.  Returns 0 or a SIGV4_E* code. */
int sigv4_verify(const struct sigv4_request *req, const struct sigv4_auth *auth, const char *secret, size_t secret_len,
                 const char *region, const char *service, time_t now);

/** The checks of sigv4_verify() that need no secret: region, service, x-amz-date (signed, the scope's day, within
 *  SIGV4_MAX_SKEW of `now`), x-amz-security-token signed when present.  Returns 0 or a SIGV4_E* code. */
int sigv4_verify_prepare(const struct sigv4_request *req, const struct sigv4_auth *auth, const char *region,
                         const char *service, time_t now);
/** The rest of sigv4_verify() for a caller that keeps derived signing keys (sigv4_signing_key() of the secret and
 *  the scope's day, region and service): computes the signature with `key` and compares it in constant time.
 *  Call it only after sigv4_verify_prepare() returned 0.  Returns 0, SIGV4_EMISMATCH or another SIGV4_E* code. */
int sigv4_verify_key(const struct sigv4_request *req, const struct sigv4_auth *auth, const unsigned char key[32]);

/** Short stable name of a SIGV4_E* code for logs ("SIGV4_EMISMATCH"). */
const char *sigv4_strerror(int err);

#endif
