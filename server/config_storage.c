/* config_storage.c - the `storage` and `s3_*` settings, and the blobstore they describe (config.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "blobstore.h"
#include "config.h"
#include "defaults.h"
#include "s3.h"

/* S3's bucket name rules (3-63 of [a-z0-9.-], starting and ending with a letter or digit). */
static int bucket_valid(const char *b, size_t n)
{
    if (n < 3 || n > S3_BUCKET_MAX || b[0] == '-' || b[0] == '.' || b[n - 1] == '-' || b[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((b[i] >= 'a' && b[i] <= 'z') || (b[i] >= '0' && b[i] <= '9') || b[i] == '-' || b[i] == '.'))
            return 0;
    return 1;
}

/* A key prefix: [A-Za-z0-9._-] segments separated by single '/', none empty, none "." or "..". */
static int prefix_valid(const char *p)
{
    size_t seg = 0;
    if (strlen(p) > S3_PREFIX_MAX)
        return 0;
    for (const char *c = p;; c++) {
        if (*c == '/' || *c == '\0') {
            if (seg == 0 || (seg == 1 && c[-1] == '.') || (seg == 2 && c[-1] == '.' && c[-2] == '.'))
                return 0;
            if (*c == '\0')
                return 1;
            seg = 0;
            continue;
        }
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '.' ||
              *c == '_' || *c == '-'))
            return 0;
        seg++;
    }
}

static int storage_valid(const char *v)
{
    const char *slash;
    if (strcmp(v, "disk") == 0)
        return 1;
    if (strncmp(v, "s3://", 5) != 0)
        return 0;
    v += 5;
    slash = strchr(v, '/');
    if (!bucket_valid(v, slash ? (size_t)(slash - v) : strlen(v)))
        return 0;
    return slash == NULL || prefix_valid(slash + 1);
}

static int set_text(char *dst, size_t size, const char *v)
{
    if (strlen(v) >= size || strpbrk(v, "\r\n") != NULL)
        return -1;
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

static int set_onoff(int *dst, const char *v)
{
    if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0)
        return -1;
    *dst = strcmp(v, "on") == 0;
    return 0;
}

int config_storage_set(struct config_storage *c, const char *key, const char *v)
{
    if (strcmp(key, "storage") == 0) {
        if (!storage_valid(v))
            return -1;
        if (c->s3_region[0] == '\0')
            snprintf(c->s3_region, sizeof(c->s3_region), "%s", BERTH_S3_DEFAULT_REGION);
        if (strcmp(v, "disk") == 0 && c->storage[0] == '\0')
            c->s3_path_style = -1;
        return set_text(c->storage, sizeof(c->storage), v);
    }
    if (strcmp(key, "s3_endpoint") == 0)
        return v[0] != '\0' && strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0
                   ? -1
                   : set_text(c->s3_endpoint, sizeof(c->s3_endpoint), v);
    if (strcmp(key, "s3_region") == 0)
        return v[0] == '\0' || strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(v)
                   ? -1
                   : set_text(c->s3_region, sizeof(c->s3_region), v);
    if (strcmp(key, "s3_access_key") == 0)
        return set_text(c->s3_access_key, sizeof(c->s3_access_key), v);
    if (strcmp(key, "s3_secret_key") == 0)
        return set_text(c->s3_secret_key, sizeof(c->s3_secret_key), v);
    if (strcmp(key, "s3_path_style") == 0)
        return set_onoff(&c->s3_path_style, v);
    if (strcmp(key, "s3_redirect") == 0)
        return set_onoff(&c->s3_redirect, v);
    if (strcmp(key, "s3_redirect_ttl") == 0) /* a duration (90s, 15m, 1h), at most SigV4's 7 days */
        return config_duration(v, &c->s3_redirect_ttl) != 0 || c->s3_redirect_ttl < 1 ||
                       c->s3_redirect_ttl > BERTH_S3_PRESIGN_TTL_MAX
                   ? -1
                   : 0;
    return 1;
}

/* Fills `out` from `c` (keys from the environment when not configured).  Returns 0 or -1 with `err`. */
static int s3_settings(const struct config_storage *c, struct s3_config *out, char *err, size_t errlen)
{
    const char *bucket = c->storage + 5, *slash = strchr(bucket, '/');
    const char *ak = c->s3_access_key[0] ? c->s3_access_key : getenv("AWS_ACCESS_KEY_ID");
    const char *sk = c->s3_secret_key[0] ? c->s3_secret_key : getenv("AWS_SECRET_ACCESS_KEY");
    memset(out, 0, sizeof(*out));
    if (c->s3_endpoint[0] == '\0') {
        snprintf(err, errlen, "storage = s3:// needs s3_endpoint = http(s)://HOST[:PORT]");
        return -1;
    }
    if (ak == NULL || sk == NULL || ak[0] == '\0' || sk[0] == '\0' || strlen(ak) > S3_SECRET_MAX ||
        strlen(sk) > S3_SECRET_MAX) {
        snprintf(err, errlen,
                 "storage = s3:// needs s3_access_key and s3_secret_key (or AWS_ACCESS_KEY_ID and "
                 "AWS_SECRET_ACCESS_KEY)");
        return -1;
    }
    snprintf(out->endpoint, sizeof(out->endpoint), "%s", c->s3_endpoint);
    snprintf(out->region, sizeof(out->region), "%s", c->s3_region[0] ? c->s3_region : BERTH_S3_DEFAULT_REGION);
    snprintf(out->bucket, sizeof(out->bucket), "%.*s", (int)(slash ? (size_t)(slash - bucket) : strlen(bucket)),
             bucket);
    snprintf(out->access_key, sizeof(out->access_key), "%s", ak);
    snprintf(out->secret_key, sizeof(out->secret_key), "%s", sk);
    out->path_style = c->s3_path_style != 0; /* default on: every custom endpoint understands path-style */
    return 0;
}

int config_blobstore(const struct config_storage *c, const char *datadir, struct blobstore *bs, char *err,
                     size_t errlen)
{
    struct s3_config s3;
    const char *slash;
    int rc;
    if (blobstore_init(bs, datadir) != 0) {
        snprintf(err, errlen, "cannot create the data directory %s", datadir);
        return -1;
    }
    if (strncmp(c->storage, "s3://", 5) != 0)
        return 0;
    if (s3_settings(c, &s3, err, errlen) != 0)
        return -1;
    slash = strchr(c->storage + 5, '/');
    rc = blobstore_use_s3(bs, &s3, slash ? slash + 1 : "", c->s3_redirect);
    if (rc == 0 && c->s3_redirect_ttl > 0)
        bs->s3_presign_ttl = (int)c->s3_redirect_ttl;
    memset(s3.secret_key, 0, sizeof(s3.secret_key));
    if (rc != 0) {
        snprintf(err, errlen, "cannot use %s at %s", c->storage, c->s3_endpoint);
        return -1;
    }
    return 0;
}
