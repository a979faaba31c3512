/* accesskey.c - ECR access keys: ids, secrets sealed with crypto_secretbox, and stateless authorization tokens. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>
#include "accesskey.h"
#include "keys.h"
#include "err.h"
#include "log.h"

#define SECRET_RAW_BYTES 30 /* base64 → ACCESSKEY_SECRET_LEN characters */
#define SEALED_LEN (crypto_secretbox_MACBYTES + ACCESSKEY_SECRET_LEN)

int accesskey_id_valid(const char *id, size_t len)
{
    if (len != ACCESSKEY_ID_LEN || memcmp(id, ACCESSKEY_ID_PREFIX, 2) != 0)
        return BERR_BAD_REQUEST;
    for (size_t i = 2; i < len; i++)
        if (!((id[i] >= 'A' && id[i] <= 'Z') || (id[i] >= '0' && id[i] <= '9')))
            return BERR_BAD_REQUEST;
    return 0;
}

/* ---- the sealing key file ---- */

static int boxkey_read(const char *path, unsigned char key[ACCESSKEY_BOXKEY_BYTES])
{
    unsigned char buf[ACCESSKEY_BOXKEY_BYTES + 1];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? BERR_NOT_FOUND : BERR_IO;
    n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n != ACCESSKEY_BOXKEY_BYTES) {
        log_error("malformed access-key sealing key %s", path);
        sodium_memzero(buf, sizeof(buf));
        return BERR_IO;
    }
    memcpy(key, buf, ACCESSKEY_BOXKEY_BYTES);
    sodium_memzero(buf, sizeof(buf));
    return 0;
}

/* Writes a fresh key: temp file (0600), fsync, link(2) into place so that two creators cannot both win. */
static int boxkey_write(const char *dir, const char *path)
{
    char tmp[4096];
    unsigned char key[ACCESSKEY_BOXKEY_BYTES];
    int fd, rc = BERR_IO;
    randombytes_buf(key, sizeof(key));
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
        goto out;
    if (write(fd, key, sizeof(key)) != (ssize_t)sizeof(key) || fsync(fd) != 0) {
        close(fd);
        goto out;
    }
    close(fd);
    if (link(tmp, path) != 0 && errno != EEXIST)
        goto out;
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        fsync(fd);
        close(fd);
    }
    rc = 0;
out:
    unlink(tmp);
    sodium_memzero(key, sizeof(key));
    if (rc != 0)
        log_error("cannot write %s: %s", path, strerror(errno));
    return rc;
}

/* The sealing key as a row of shared_keys (metadata = postgresql, keys.h): every node seals and opens with it. */
static int boxkey_shared(int create, unsigned char key[ACCESSKEY_BOXKEY_BYTES])
{
    unsigned char buf[KEYS_VALUE_MAX];
    size_t n = 0;
    int rc = keys_get(ACCESSKEY_BOXKEY_FILE, buf, sizeof(buf), &n);
    if (rc == BERR_NOT_FOUND && create) {
        randombytes_buf(buf, ACCESSKEY_BOXKEY_BYTES);
        rc = keys_create(ACCESSKEY_BOXKEY_FILE, buf, ACCESSKEY_BOXKEY_BYTES); /* the first node's key wins */
        if (rc == 0)
            rc = keys_get(ACCESSKEY_BOXKEY_FILE, buf, sizeof(buf), &n);
    }
    if (rc == 0 && n != ACCESSKEY_BOXKEY_BYTES) {
        log_error("malformed access-key sealing key in the database");
        rc = BERR_IO;
    }
    if (rc == 0)
        memcpy(key, buf, ACCESSKEY_BOXKEY_BYTES);
    sodium_memzero(buf, sizeof(buf));
    return rc == 0 || rc == BERR_NOT_FOUND ? rc : BERR_IO;
}

int accesskey_boxkey_load(const char *datadir, int create, unsigned char key[ACCESSKEY_BOXKEY_BYTES])
{
    char dir[4096], path[4096];
    int rc;
    if (sodium_init() < 0)
        return BERR_INTERNAL;
    if (db_metadata_is_pg())
        return boxkey_shared(create, key);
    snprintf(dir, sizeof(dir), "%s/keys", datadir);
    snprintf(path, sizeof(path), "%s/%s", dir, ACCESSKEY_BOXKEY_FILE);
    rc = boxkey_read(path, key);
    if (rc != BERR_NOT_FOUND || !create)
        return rc;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return BERR_IO;
    chmod(dir, 0700);
    if ((rc = boxkey_write(dir, path)) != 0)
        return rc;
    return boxkey_read(path, key);
}

/* ---- rows ---- */

static int prepare(struct db *db, const char *sql, struct db_stmt **st)
{
    if ((*st = db_prepare(db, sql)) == NULL)
        return db_error(db);
    return 0;
}

/* The two statements of every ECR request and bearer check are cached per connection (db.h). */
enum { S_KEY_GET = DB_SLOTS_ACCESSKEY, S_KEY_SECRET, S_ACCESSKEY_END };
DB_SLOTS_CHECK(ACCESSKEY, S_ACCESSKEY_END);

static int prepare_cached(struct db *db, int slot, const char *sql, struct db_stmt **st)
{
    return (*st = db_stmt(db, slot, sql)) != NULL ? 0 : BERR_DB;
}

static void text_col(struct db_stmt *st, int col, char *out, size_t size)
{
    const char *t = db_column_text(st, col);
    snprintf(out, size, "%s", t ? (const char *)t : "");
}

/* Columns 0..4 of every key query: id, user, description, created_at, revoked_at. */
#define KEY_COLS "id, \"user\", description, created_at, coalesce(revoked_at, 0)"

static void row_to_key(struct db_stmt *st, struct accesskey *k)
{
    text_col(st, 0, k->id, sizeof(k->id));
    text_col(st, 1, k->user, sizeof(k->user));
    text_col(st, 2, k->description, sizeof(k->description));
    k->created_at = db_column_int64(st, 3);
    k->revoked_at = db_column_int64(st, 4);
}

static void new_id(char id[ACCESSKEY_ID_LEN + 1])
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    memcpy(id, ACCESSKEY_ID_PREFIX, 2);
    for (int i = 2; i < ACCESSKEY_ID_LEN; i++)
        id[i] = alnum[randombytes_uniform(sizeof(alnum) - 1)];
    id[ACCESSKEY_ID_LEN] = '\0';
}

static int user_exists(struct db *db, const char *user)
{
    struct db_stmt *st;
    int rc = prepare(db, "SELECT 1 FROM users WHERE name = ?", &st);
    if (rc != 0)
        return rc;
    db_bind_text(st, 1, user, -1);
    rc = db_step(st);
    db_finalize(st);
    return rc == DB_ROW ? 0 : rc == DB_DONE ? BERR_NOT_FOUND : db_error(db);
}

static int desc_valid(const char *d)
{
    if (strlen(d) > ACCESSKEY_DESC_MAX)
        return BERR_BAD_REQUEST;
    for (const unsigned char *p = (const unsigned char *)d; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return BERR_BAD_REQUEST;
    return 0;
}

int accesskey_create(struct db *db, const unsigned char boxkey[ACCESSKEY_BOXKEY_BYTES], const char *user,
                     const char *description, struct accesskey *out, char secret[ACCESSKEY_SECRET_LEN + 1])
{
    unsigned char raw[SECRET_RAW_BYTES], nonce[crypto_secretbox_NONCEBYTES], sealed[SEALED_LEN];
    struct db_stmt *st;
    int rc;
    if (description == NULL)
        description = "";
    if ((rc = desc_valid(description)) != 0 || (rc = user_exists(db, user)) != 0)
        return rc;
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(secret, ACCESSKEY_SECRET_LEN + 1, raw, sizeof(raw), sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(raw, sizeof(raw));
    randombytes_buf(nonce, sizeof(nonce));
    crypto_secretbox_easy(sealed, (const unsigned char *)secret, ACCESSKEY_SECRET_LEN, nonce, boxkey);
    memset(out, 0, sizeof(*out));
    new_id(out->id);
    snprintf(out->user, sizeof(out->user), "%s", user);
    snprintf(out->description, sizeof(out->description), "%s", description);
    out->created_at = db_now();
    if ((rc = prepare(db,
                      "INSERT INTO access_keys (id, \"user\", description, nonce, sealed, created_at) "
                      "VALUES (?, ?, ?, ?, ?, ?)",
                      &st)) != 0)
        return rc;
    db_bind_text(st, 1, out->id, -1);
    db_bind_text(st, 2, user, -1);
    db_bind_text(st, 3, description, -1);
    db_bind_blob(st, 4, nonce, sizeof(nonce));
    db_bind_blob(st, 5, sealed, sizeof(sealed));
    db_bind_int64(st, 6, out->created_at);
    rc = db_step(st) == DB_DONE ? 0 : db_error(db);
    db_finalize(st);
    return rc;
}

int accesskey_revoke(struct db *db, const char *id)
{
    struct db_stmt *st;
    int rc = prepare(db, "UPDATE access_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", &st);
    if (rc != 0)
        return rc;
    db_bind_int64(st, 1, db_now());
    db_bind_text(st, 2, id, -1);
    rc = db_step(st) == DB_DONE ? 0 : db_error(db);
    db_finalize(st);
    if (rc == 0 && db_changes(db) == 0)
        rc = BERR_NOT_FOUND;
    return rc;
}

int accesskey_get(struct db *db, const char *id, struct accesskey *out)
{
    struct db_stmt *st;
    int rc = prepare_cached(db, S_KEY_GET, "SELECT " KEY_COLS " FROM access_keys WHERE id = ?", &st);
    if (rc != 0)
        return rc;
    db_bind_text(st, 1, id, -1);
    rc = db_step(st);
    if (rc == DB_ROW)
        row_to_key(st, out);
    db_reset(st);
    return rc == DB_ROW ? 0 : rc == DB_DONE ? BERR_NOT_FOUND : db_error(db);
}

int accesskey_secret(struct db *db, const unsigned char boxkey[ACCESSKEY_BOXKEY_BYTES], const char *id,
                     struct accesskey *out, char secret[ACCESSKEY_SECRET_LEN + 1])
{
    struct db_stmt *st;
    int rc = prepare_cached(db, S_KEY_SECRET,
                            "SELECT " KEY_COLS ", nonce, sealed FROM access_keys "
                            "WHERE id = ? AND revoked_at IS NULL AND \"user\" IN (SELECT name FROM users)",
                            &st);
    if (rc != 0)
        return rc;
    db_bind_text(st, 1, id, -1);
    rc = db_step(st);
    if (rc == DB_ROW) {
        const void *nonce = db_column_blob(st, 5), *sealed = db_column_blob(st, 6);
        row_to_key(st, out);
        rc = db_column_bytes(st, 5) == crypto_secretbox_NONCEBYTES && db_column_bytes(st, 6) == SEALED_LEN &&
                     crypto_secretbox_open_easy((unsigned char *)secret, sealed, SEALED_LEN, nonce, boxkey) == 0
                 ? 0
                 : BERR_INTERNAL;
        secret[ACCESSKEY_SECRET_LEN] = '\0';
        if (rc != 0)
            log_error("access key %s: sealed secret does not open (wrong %s?)", id, ACCESSKEY_BOXKEY_FILE);
    } else {
        rc = rc == DB_DONE ? BERR_NOT_FOUND : db_error(db);
    }
    db_reset(st);
    return rc;
}

int accesskey_each(struct db *db, const char *user, accesskey_cb cb, void *ctx)
{
    struct db_stmt *st;
    struct accesskey k;
    int rc = prepare(db,
                     "SELECT " KEY_COLS
                     " FROM access_keys WHERE CAST(?1 AS TEXT) IS NULL OR \"user\" = ?1 ORDER BY created_at, id",
                     &st);
    if (rc != 0)
        return rc;
    if (user != NULL)
        db_bind_text(st, 1, user, -1);
    while ((rc = db_step(st)) == DB_ROW) {
        row_to_key(st, &k);
        if (cb(ctx, &k) != 0)
            break;
    }
    rc = rc == DB_ROW || rc == DB_DONE ? 0 : db_error(db);
    db_finalize(st);
    return rc;
}

/* ---- authorization tokens ---- */

static void token_mac(const char *secret, const char *msg, size_t len, char *out, size_t size)
{
    unsigned char k[crypto_auth_hmacsha256_BYTES], mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)ACCESSKEY_TOKEN_CONTEXT,
                                  sizeof(ACCESSKEY_TOKEN_CONTEXT) - 1);
    crypto_auth_hmacsha256_final(&st, k);
    crypto_auth_hmacsha256_init(&st, k, sizeof(k));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2base64(out, size, mac, sizeof(mac), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(k, sizeof(k));
    sodium_memzero(&st, sizeof(st));
}

void accesskey_token_issue(const char *id, const char *secret, long long expires_at, char out[ACCESSKEY_TOKEN_MAX])
{
    int n = snprintf(out, ACCESSKEY_TOKEN_MAX, "%s.%lld.", id, expires_at);
    token_mac(secret, out, (size_t)n - 1, out + n, ACCESSKEY_TOKEN_MAX - (size_t)n);
}

int accesskey_token_verify(struct db *db, const unsigned char boxkey[ACCESSKEY_BOXKEY_BYTES], const char *tok,
                           size_t len, long long now, struct accesskey *out)
{
    char id[ACCESSKEY_ID_LEN + 1], secret[ACCESSKEY_SECRET_LEN + 1], want[ACCESSKEY_TOKEN_MAX];
    const char *dot2;
    long long exp = 0;
    int rc;
    if (len >= ACCESSKEY_TOKEN_MAX || len < ACCESSKEY_ID_LEN + 3 || tok[ACCESSKEY_ID_LEN] != '.' ||
        accesskey_id_valid(tok, ACCESSKEY_ID_LEN) != 0)
        return BERR_UNAUTHORIZED;
    dot2 = memchr(tok + ACCESSKEY_ID_LEN + 1, '.', len - ACCESSKEY_ID_LEN - 1);
    if (dot2 == NULL || dot2 == tok + ACCESSKEY_ID_LEN + 1 || dot2 - tok > ACCESSKEY_ID_LEN + 20)
        return BERR_UNAUTHORIZED;
    for (const char *p = tok + ACCESSKEY_ID_LEN + 1; p < dot2; p++) {
        if (*p < '0' || *p > '9')
            return BERR_UNAUTHORIZED;
        exp = exp * 10 + (*p - '0');
    }
    if (exp <= now)
        return BERR_UNAUTHORIZED;
    memcpy(id, tok, ACCESSKEY_ID_LEN);
    id[ACCESSKEY_ID_LEN] = '\0';
    rc = accesskey_secret(db, boxkey, id, out, secret);
    if (rc != 0)
        return rc == BERR_DB ? rc : BERR_UNAUTHORIZED;
    accesskey_token_issue(id, secret, exp, want);
    sodium_memzero(secret, sizeof(secret));
    if (strlen(want) != len || sodium_memcmp(want, tok, len) != 0)
        return BERR_UNAUTHORIZED;
    return 0;
}
