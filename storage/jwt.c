/* jwt.c - Ed25519-signed JWTs (alg EdDSA) and their key files under <data>/keys/. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include "defaults.h"
#include "err.h"
#include "db.h"
#include "jwt.h"
#include "keys.h"
#include "log.h"

#define KEY_CURRENT "jwt-current.key"
#define KEY_PREVIOUS "jwt-previous.key"

/* ---- base64url ---- */

int jwt_b64_encode(const void *in, size_t len, char *out, size_t size)
{
    if (size < sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING))
        return -1;
    sodium_bin2base64(out, size, in, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return 0;
}

/* Is `in[0..len)` made of base64url characters only?  libsodium 1.0.18's decoder maps every byte >= 0x80 to some
 * 6-bit value instead of refusing it (found by tests/fuzz/fuzz_jwt.c), so a token with such a byte in its
 * signature would verify as if it held the character it aliases: two spellings of one token. */
static int b64url_chars_only(const char *in, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

int jwt_b64_decode(const char *in, size_t len, unsigned char *out, size_t size, size_t *outlen)
{
    const char *end;
    if (!b64url_chars_only(in, len))
        return -1;
    if (sodium_base642bin(out, size, in, len, NULL, outlen, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return -1;
    return end == in + len ? 0 : -1;
}

/* ---- keys ---- */

void jwt_key_from_seed(const unsigned char seed[32], long long created, struct jwt_key *k)
{
    unsigned char h[12];
    crypto_sign_seed_keypair(k->pk, k->sk, seed);
    crypto_generichash(h, sizeof(h), k->pk, sizeof(k->pk), NULL, 0);
    jwt_b64_encode(h, sizeof(h), k->kid, sizeof(k->kid));
    k->created = created;
}

static void key_path(const char *datadir, const char *file, char *out, size_t size)
{
    snprintf(out, size, "%s/keys/%s", datadir, file);
}

/* Reads one key file.  Returns 0, BERR_NOT_FOUND or BERR_IO. */
static int key_read(const char *datadir, const char *file, struct jwt_key *k)
{
    char path[4096], line[256], b64[128];
    unsigned char seed[32];
    long long created;
    size_t n;
    FILE *f;
    key_path(datadir, file, path, sizeof(path));
    if (db_metadata_is_pg()) { /* shared by every node: a row of shared_keys (keys.h) */
        int rc = keys_get(file, line, sizeof(line) - 1, &n);
        if (rc != 0)
            return rc == BERR_NOT_FOUND ? rc : BERR_IO;
        line[n] = '\0';
        f = NULL;
    } else if ((f = fopen(path, "r")) == NULL || fgets(line, sizeof(line), f) == NULL) {
        int missing = f == NULL && errno == ENOENT;
        if (f != NULL)
            fclose(f);
        return missing ? BERR_NOT_FOUND : BERR_IO;
    }
    if (f != NULL)
        fclose(f);
    if (sscanf(line, "ed25519 %lld %127s", &created, b64) != 2 ||
        jwt_b64_decode(b64, strlen(b64), seed, sizeof(seed), &n) != 0 || n != sizeof(seed)) {
        log_error("malformed signing key %s", db_metadata_is_pg() ? file : path);
        return BERR_IO;
    }
    jwt_key_from_seed(seed, created, k);
    sodium_memzero(seed, sizeof(seed));
    sodium_memzero(line, sizeof(line));
    sodium_memzero(b64, sizeof(b64));
    return 0;
}

/* Writes a fresh key as `file` atomically (temp file, fsync, rename, fsync dir).  Returns 0 or BERR_IO. */
static int key_write_new(const char *datadir, const char *file)
{
    char path[4096], tmp[4096], dir[4096], line[256], b64[64];
    unsigned char seed[32];
    int fd, n, rc = BERR_IO;
    randombytes_buf(seed, sizeof(seed));
    jwt_b64_encode(seed, sizeof(seed), b64, sizeof(b64));
    n = snprintf(line, sizeof(line), "ed25519 %lld %s\n", (long long)time(NULL), b64);
    sodium_memzero(seed, sizeof(seed));
    sodium_memzero(b64, sizeof(b64));
    if (db_metadata_is_pg()) {
        rc = keys_create(file, line, (size_t)n) == 0 ? 0 : BERR_IO;
        sodium_memzero(line, sizeof(line));
        return rc;
    }
    key_path(datadir, file, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    snprintf(dir, sizeof(dir), "%s/keys", datadir);
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
        goto out;
    if (write(fd, line, (size_t)n) != n || fsync(fd) != 0) {
        close(fd);
        unlink(tmp);
        goto out;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        goto out;
    }
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        fsync(fd);
        close(fd);
    }
    rc = 0;
out:
    sodium_memzero(line, sizeof(line));
    if (rc != 0)
        log_error("cannot write signing key %s: %s", path, strerror(errno));
    return rc;
}

/* jwt_keys_rotate with the keys in the database: previous := current, current := a fresh key, in one transaction. */
static int rotate_shared(void)
{
    char line[256], b64[64];
    unsigned char seed[32];
    int n, rc;
    randombytes_buf(seed, sizeof(seed));
    jwt_b64_encode(seed, sizeof(seed), b64, sizeof(b64));
    n = snprintf(line, sizeof(line), "ed25519 %lld %s\n", (long long)time(NULL), b64);
    sodium_memzero(seed, sizeof(seed));
    sodium_memzero(b64, sizeof(b64));
    rc = keys_rotate(KEY_CURRENT, KEY_PREVIOUS, line, (size_t)n) == 0 ? 0 : BERR_IO;
    sodium_memzero(line, sizeof(line));
    return rc;
}

int jwt_keys_rotate(const char *datadir)
{
    char cur[4096], prev[4096];
    if (sodium_init() < 0)
        return BERR_INTERNAL;
    if (db_metadata_is_pg())
        return rotate_shared();
    key_path(datadir, KEY_CURRENT, cur, sizeof(cur));
    key_path(datadir, KEY_PREVIOUS, prev, sizeof(prev));
    /* hard link first: there is a current key at every instant */
    unlink(prev);
    if (link(cur, prev) != 0 && errno != ENOENT)
        return BERR_IO;
    return key_write_new(datadir, KEY_CURRENT);
}

long long jwt_keys_stamp(const char *datadir)
{
    char path[4096];
    struct stat st;
    unsigned long long h = 1469598103934665603ull; /* FNV-1a over the fields below */
    const char *files[] = {KEY_CURRENT, KEY_PREVIOUS};
    if (db_metadata_is_pg())
        return keys_stamp("jwt-");
    for (int i = 0; i < 2; i++) {
        unsigned long long f[5] = {0};
        key_path(datadir, files[i], path, sizeof(path));
        if (stat(path, &st) == 0) {
            f[0] = (unsigned long long)st.st_ino;
            f[1] = (unsigned long long)st.st_size;
            f[2] = (unsigned long long)st.st_mtim.tv_sec * 1000000000ull + (unsigned long long)st.st_mtim.tv_nsec;
            f[3] = (unsigned long long)st.st_ctim.tv_sec * 1000000000ull + (unsigned long long)st.st_ctim.tv_nsec;
            f[4] = (unsigned long long)st.st_dev;
        }
        for (int k = 0; k < 5; k++)
            for (int byte = 0; byte < 8; byte++)
                h = (h ^ ((f[k] >> (8 * byte)) & 0xff)) * 1099511628211ull;
    }
    return (long long)(h & 0x7fffffffffffffffull);
}

int jwt_keys_load(const char *datadir, int create, long long max_age, struct jwt_keyring *kr)
{
    char dir[4096];
    int rc;
    if (sodium_init() < 0)
        return BERR_INTERNAL;
    memset(kr, 0, sizeof(*kr));
    if (create) {
        snprintf(dir, sizeof(dir), "%s/keys", datadir);
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return BERR_IO;
        chmod(dir, 0700);
    }
    rc = key_read(datadir, KEY_CURRENT, &kr->keys[0]);
    if (rc == BERR_NOT_FOUND && create) {
        if ((rc = key_write_new(datadir, KEY_CURRENT)) == 0)
            rc = key_read(datadir, KEY_CURRENT, &kr->keys[0]);
    } else if (rc == 0 && create && max_age > 0 && (long long)time(NULL) - kr->keys[0].created > max_age) {
        log_info("rotating the token-signing key (older than %lld days)", max_age / 86400);
        if ((rc = jwt_keys_rotate(datadir)) == 0)
            rc = key_read(datadir, KEY_CURRENT, &kr->keys[0]);
    }
    if (rc != 0)
        return rc;
    kr->n = 1;
    if (key_read(datadir, KEY_PREVIOUS, &kr->keys[1]) == 0 && strcmp(kr->keys[1].kid, kr->keys[0].kid) != 0)
        kr->n = 2;
    return 0;
}

/* ---- sign ---- */

/* base64url of a JSON value's compact text, malloc'd. */
static char *b64_json(const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT), *out;
    size_t n, cap;
    if (text == NULL)
        return NULL;
    n = strlen(text);
    cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    if ((out = malloc(cap)) != NULL)
        jwt_b64_encode(text, n, out, cap);
    free(text);
    return out;
}

int jwt_sign(const struct jwt_keyring *kr, const json_t *claims, char **out)
{
    const struct jwt_key *k = &kr->keys[0];
    json_t *hdr;
    char *h, *p, *tok = NULL, sig64[128];
    unsigned char sig[crypto_sign_BYTES];
    size_t hl, pl;
    if (kr->n < 1)
        return BERR_INTERNAL;
    hdr = json_pack("{s:s, s:s, s:s}", "alg", "EdDSA", "typ", "JWT", "kid", k->kid);
    h = b64_json(hdr);
    p = b64_json(claims);
    json_decref(hdr);
    if (h == NULL || p == NULL)
        goto out;
    hl = strlen(h);
    pl = strlen(p);
    if ((tok = malloc(hl + pl + 2 + sizeof(sig64))) == NULL)
        goto out;
    memcpy(tok, h, hl);
    tok[hl] = '.';
    memcpy(tok + hl + 1, p, pl + 1);
    crypto_sign_detached(sig, NULL, (const unsigned char *)tok, hl + 1 + pl, k->sk);
    jwt_b64_encode(sig, sizeof(sig), sig64, sizeof(sig64));
    tok[hl + 1 + pl] = '.';
    memcpy(tok + hl + 2 + pl, sig64, strlen(sig64) + 1);
out:
    free(h);
    free(p);
    *out = tok;
    return tok != NULL ? 0 : BERR_INTERNAL;
}

/* ---- verify ---- */

/* Decodes one base64url JSON part into an object, or NULL. */
static json_t *part_json(const char *s, size_t len)
{
    unsigned char buf[BERTH_JWT_MAX];
    size_t n;
    json_t *v;
    if (jwt_b64_decode(s, len, buf, sizeof(buf), &n) != 0)
        return NULL;
    v = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
    if (v != NULL && !json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

static const struct jwt_key *find_key(const struct jwt_keyring *kr, const char *kid)
{
    for (int i = 0; i < kr->n; i++)
        if (kid != NULL && strcmp(kr->keys[i].kid, kid) == 0)
            return &kr->keys[i];
    return NULL;
}

/* 0 if the registered claims hold for `aud` at `now`. */
static int check_claims(const json_t *c, const char *aud, long long now)
{
    const json_t *exp = json_object_get(c, "exp"), *nbf = json_object_get(c, "nbf"), *iat = json_object_get(c, "iat");
    const char *iss = json_string_value(json_object_get(c, "iss")), *a = json_string_value(json_object_get(c, "aud"));
    if (iss == NULL || strcmp(iss, BERTH_AUTH_ISSUER) != 0 || a == NULL || strcmp(a, aud) != 0)
        return BERR_UNAUTHORIZED;
    if (!json_is_integer(exp) || json_integer_value(exp) <= now)
        return BERR_UNAUTHORIZED;
    if (nbf != NULL && (!json_is_integer(nbf) || json_integer_value(nbf) > now + BERTH_JWT_LEEWAY))
        return BERR_UNAUTHORIZED;
    if (iat != NULL && (!json_is_integer(iat) || json_integer_value(iat) > now + BERTH_JWT_LEEWAY))
        return BERR_UNAUTHORIZED;
    if (!json_is_string(json_object_get(c, "sub")) || !json_is_string(json_object_get(c, "berth_kind")))
        return BERR_UNAUTHORIZED;
    return 0;
}

int jwt_verify(const struct jwt_keyring *kr, const char *tok, size_t len, const char *aud, long long now,
               json_t **claims)
{
    const char *d1, *d2, *alg, *kid;
    const struct jwt_key *k;
    unsigned char sig[crypto_sign_BYTES + 1];
    size_t siglen;
    json_t *hdr, *c = NULL;
    *claims = NULL;
    if (len == 0 || len > BERTH_JWT_MAX || (d1 = memchr(tok, '.', len)) == NULL ||
        (d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok))) == NULL ||
        memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)) != NULL)
        return BERR_UNAUTHORIZED;
    if ((hdr = part_json(tok, (size_t)(d1 - tok))) == NULL)
        return BERR_UNAUTHORIZED;
    alg = json_string_value(json_object_get(hdr, "alg"));
    kid = json_string_value(json_object_get(hdr, "kid"));
    k = find_key(kr, kid);
    if (alg == NULL || strcmp(alg, "EdDSA") != 0 || k == NULL || json_object_get(hdr, "crit") != NULL) {
        json_decref(hdr);
        return BERR_UNAUTHORIZED;
    }
    json_decref(hdr);
    if (jwt_b64_decode(d2 + 1, len - (size_t)(d2 + 1 - tok), sig, sizeof(sig), &siglen) != 0 ||
        siglen != crypto_sign_BYTES ||
        crypto_sign_verify_detached(sig, (const unsigned char *)tok, (size_t)(d2 - tok), k->pk) != 0)
        return BERR_UNAUTHORIZED;
    if ((c = part_json(d1 + 1, (size_t)(d2 - d1 - 1))) == NULL || check_claims(c, aud, now) != 0) {
        json_decref(c);
        return BERR_UNAUTHORIZED;
    }
    *claims = c;
    return 0;
}

unsigned jwt_access_actions(const json_t *claims, const char *name)
{
    const json_t *access = json_object_get(claims, "access"), *e, *act;
    unsigned bits = 0;
    size_t i, j;
    json_array_foreach(access, i, e)
    {
        const char *type = json_string_value(json_object_get(e, "type"));
        const char *n = json_string_value(json_object_get(e, "name"));
        if (type == NULL || n == NULL || strcmp(type, "repository") != 0 || strcmp(n, name) != 0)
            continue;
        json_array_foreach(json_object_get(e, "actions"), j, act)
        {
            unsigned b;
            const char *s = json_string_value(act);
            if (s != NULL && authdb_actions_parse(s, &b) == 0)
                bits |= b;
        }
    }
    return bits & AUTH_ALL;
}
