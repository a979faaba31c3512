/*
 * digest.h - content digests: "sha256:<64 lowercase hex>" parsing and streaming SHA-256 (OpenSSL EVP).
 *
 * Berth stores and accepts only sha256 digests (the distribution-spec's required algorithm).  A digest string that
 * passed digest_parse() is safe to use in a file path: it holds only "sha256:" and [0-9a-f].
 */
#ifndef BERTH_DIGEST_H
#define BERTH_DIGEST_H

#include <stddef.h>
#include <stdint.h>
#include "defaults.h"

#define DIGEST_ALGO "sha256"
#define DIGEST_HEX_LEN 64
#define DIGEST_STR_LEN (sizeof(DIGEST_ALGO ":") - 1 + DIGEST_HEX_LEN) /* 71 */

/** Checks that `s[0..len)` is a canonical sha256 digest; on success copies it NUL-terminated into `out`
 *  (BERTH_DIGEST_MAX bytes).  Returns 0 or BERR_DIGEST_INVALID. */
int digest_parse(const char *s, size_t len, char out[BERTH_DIGEST_MAX]);

/** The 64-character hex part of a digest that passed digest_parse(). */
const char *digest_hex(const char *digest);

/** Streaming SHA-256.  Lifecycle: digest_ctx_init, _update..., _final (or _free to abandon). */
struct digest_ctx {
    void *md; /* EVP_MD_CTX *, opaque so that callers need no OpenSSL headers */
};

/** Starts a hash.  Returns 0 or BERR_NOMEM. */
int digest_ctx_init(struct digest_ctx *c);
/** Feeds bytes into the hash. */
void digest_ctx_update(struct digest_ctx *c, const void *data, size_t len);
/** Writes "sha256:<hex>" of everything fed so far into `out` and frees the context. */
void digest_ctx_final(struct digest_ctx *c, char out[BERTH_DIGEST_MAX]);
/** Makes `dst` an independent copy of `src` (same bytes hashed so far).  Returns 0 or BERR_NOMEM. */
int digest_ctx_copy(struct digest_ctx *dst, const struct digest_ctx *src);
/** Frees the context without a result (safe on a zeroed context). */
void digest_ctx_free(struct digest_ctx *c);

/** One-shot "sha256:<hex>" of a buffer. */
void digest_buf(const void *data, size_t len, char out[BERTH_DIGEST_MAX]);

#endif
