/* digest.c - sha256 digest strings and streaming SHA-256 through OpenSSL's EVP (SHA-NI where available). */
#include <string.h>
#include <openssl/evp.h>
#include "digest.h"
#include "err.h"

int digest_parse(const char *s, size_t len, char out[BERTH_DIGEST_MAX])
{
    static const char prefix[] = DIGEST_ALGO ":";
    if (len != DIGEST_STR_LEN || memcmp(s, prefix, sizeof(prefix) - 1) != 0)
        return BERR_DIGEST_INVALID;
    for (size_t i = sizeof(prefix) - 1; i < len; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return BERR_DIGEST_INVALID;
    }
    memcpy(out, s, len);
    out[len] = '\0';
    return 0;
}

const char *digest_hex(const char *digest)
{
    return digest + sizeof(DIGEST_ALGO ":") - 1;
}

int digest_ctx_init(struct digest_ctx *c)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL)
        return BERR_NOMEM;
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return BERR_NOMEM;
    }
    c->md = md;
    return 0;
}

int digest_ctx_copy(struct digest_ctx *dst, const struct digest_ctx *src)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL || EVP_MD_CTX_copy_ex(md, (const EVP_MD_CTX *)src->md) != 1) {
        EVP_MD_CTX_free(md);
        return BERR_NOMEM;
    }
    dst->md = md;
    return 0;
}

void digest_ctx_update(struct digest_ctx *c, const void *data, size_t len)
{
    EVP_DigestUpdate((EVP_MD_CTX *)c->md, data, len);
}

static void to_string(const unsigned char *bin, char out[BERTH_DIGEST_MAX])
{
    static const char hex[] = "0123456789abcdef";
    char *p = out + sizeof(DIGEST_ALGO ":") - 1;
    memcpy(out, DIGEST_ALGO ":", sizeof(DIGEST_ALGO ":") - 1);
    for (int i = 0; i < 32; i++) {
        *p++ = hex[bin[i] >> 4];
        *p++ = hex[bin[i] & 15];
    }
    *p = '\0';
}

void digest_ctx_final(struct digest_ctx *c, char out[BERTH_DIGEST_MAX])
{
    unsigned char bin[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex((EVP_MD_CTX *)c->md, bin, &n);
    to_string(bin, out);
    digest_ctx_free(c);
}

void digest_ctx_free(struct digest_ctx *c)
{
    if (c->md != NULL)
        EVP_MD_CTX_free((EVP_MD_CTX *)c->md);
    c->md = NULL;
}

void digest_buf(const void *data, size_t len, char out[BERTH_DIGEST_MAX])
{
    unsigned char bin[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data, len, bin, &n, EVP_sha256(), NULL);
    to_string(bin, out);
}
