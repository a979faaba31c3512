/* blobstore_s3.c - the blobstore's S3 backend: object keys, existence, removal, reads and presigned URLs. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "blobstore.h"
#include "defaults.h"
#include "digest.h"
#include "err.h"
#include "s3.h"

int blobstore_use_s3(struct blobstore *bs, const struct s3_config *cfg, const char *prefix, int redirect)
{
    size_t n = strlen(prefix);
    int rc;
    if (n >= sizeof(bs->s3_prefix) - 1 || (n > 0 && (prefix[0] == '/' || prefix[n - 1] == '/')))
        return BERR_BAD_REQUEST;
    if ((rc = s3_new(cfg, &bs->s3)) != 0)
        return rc;
    snprintf(bs->s3_prefix, sizeof(bs->s3_prefix), "%s%s", prefix, n > 0 ? "/" : "");
    bs->s3_redirect = redirect;
    bs->s3_presign_ttl = BERTH_S3_PRESIGN_TTL;
    return 0;
}

void blobstore_release(struct blobstore *bs)
{
    s3_free(bs->s3);
    bs->s3 = NULL;
}

void blobstore_key(const struct blobstore *bs, const char *digest, char *out, size_t size)
{
    const char *hex = digest_hex(digest);
    snprintf(out, size, "%sblobs/sha256/%.2s/%s", bs->s3_prefix, hex, hex);
}

void blobstore_upload_key(const struct blobstore *bs, const char *uuid, char *out, size_t size)
{
    snprintf(out, size, "%suploads/%s", bs->s3_prefix, uuid);
}

int blobstore_exists(const struct blobstore *bs, const char *digest)
{
    char key[BLOBSTORE_PATH_MAX];
    uint64_t size;
    int rc;
    if (bs->s3 == NULL) {
        blobstore_path(bs, digest, key, sizeof(key));
        return access(key, F_OK) == 0;
    }
    blobstore_key(bs, digest, key, sizeof(key));
    rc = s3_head(bs->s3, key, &size);
    return rc == 0 ? 1 : rc == BERR_BLOB_UNKNOWN ? 0 : rc;
}

int blobstore_delete(const struct blobstore *bs, const char *digest)
{
    char key[BLOBSTORE_PATH_MAX];
    if (bs->s3 == NULL) {
        blobstore_path(bs, digest, key, sizeof(key));
        if (unlink(key) == 0)
            return 0;
        return errno == ENOENT ? BERR_BLOB_UNKNOWN : berr_from_errno(errno);
    }
    blobstore_key(bs, digest, key, sizeof(key));
    return s3_delete(bs->s3, key);
}

int blobstore_read(const struct blobstore *bs, const char *digest, uint64_t off, uint64_t len,
                   int (*sink)(void *ctx, const void *p, size_t n), void *ctx)
{
    char key[BLOBSTORE_PATH_MAX];
    if (bs->s3 == NULL)
        return BERR_INTERNAL;
    blobstore_key(bs, digest, key, sizeof(key));
    return s3_get(bs->s3, key, off, len, sink, ctx);
}

int blobstore_presign(const struct blobstore *bs, const char *digest, time_t now, char *out, size_t size)
{
    char key[BLOBSTORE_PATH_MAX];
    if (bs->s3 == NULL)
        return BERR_INTERNAL;
    blobstore_key(bs, digest, key, sizeof(key));
    return s3_presign_get(bs->s3, key, now, bs->s3_presign_ttl > 0 ? bs->s3_presign_ttl : BERTH_S3_PRESIGN_TTL, out,
                          size);
}

struct objects_ctx {
    int (*fn)(void *ctx, const char *digest, time_t mtime);
    void *ctx;
    size_t plen; /* length of PREFIX/blobs/sha256/ */
};

/* "ab/ab<62 hex>" after the prefix: the shard must be the name's first two digits. */
static int each_object(void *arg, const char *key, uint64_t size, time_t mtime)
{
    struct objects_ctx *o = arg;
    const char *rest = key + o->plen, *hex = rest + 3;
    char digest[BERTH_DIGEST_MAX];
    (void)size;
    if (strlen(key) < o->plen || strlen(rest) != 3 + 64 || rest[2] != '/' || strncmp(rest, hex, 2) != 0 ||
        strspn(hex, "0123456789abcdef") != 64)
        return 0;
    snprintf(digest, sizeof(digest), "sha256:%s", hex);
    return o->fn(o->ctx, digest, mtime);
}

int blobstore_objects_each(const struct blobstore *bs, int (*fn)(void *ctx, const char *digest, time_t mtime),
                           void *ctx)
{
    char prefix[BLOBSTORE_PATH_MAX];
    struct objects_ctx o = {.fn = fn, .ctx = ctx};
    if (bs->s3 == NULL)
        return BERR_INTERNAL;
    snprintf(prefix, sizeof(prefix), "%sblobs/sha256/", bs->s3_prefix);
    o.plen = strlen(prefix);
    return s3_list(bs->s3, prefix, each_object, &o);
}
