/* test_accesskey.c - accesskey.h against a real berth.db: ids, sealed secrets, revocation, authorization tokens;
 * and ecrdb.h's repositories, tag immutability and image cursor. */
#include <stdlib.h>
#include <sys/stat.h>
#include "accesskey.h"
#include "authdb.h"
#include "dbfix.h"
#include "ecrdb.h"
#include "names.h"

static unsigned char box[ACCESSKEY_BOXKEY_BYTES];

static int setup(void)
{
    int rc = dbfix_setup();
    if (rc == 0)
        rc = accesskey_boxkey_load(dir, 1, box);
    if (rc == 0 && db_begin(db) == 0) {
        rc = authdb_user_add(db, "alice", "correct horse battery", 0);
        db_commit(db);
    }
    return rc;
}

static int create(const char *user, struct accesskey *k, char *secret)
{
    int rc = db_begin(db);
    if (rc == 0 && (rc = accesskey_create(db, box, user, "ci", k, secret)) == 0)
        return db_commit(db);
    db_rollback(db);
    return rc;
}

/* A new key has a "BK" + 18 id and a 40-character secret that opens again; the database never holds it clear. */
static void create_seals_secret(void)
{
    struct accesskey k, got;
    char secret[ACCESSKEY_SECRET_LEN + 1], opened[ACCESSKEY_SECRET_LEN + 1];
    sqlite3_stmt *st;
    REQUIRE_OK(create("alice", &k, secret));
    CHECK_INT_EQ(accesskey_id_valid(k.id, strlen(k.id)), 0);
    CHECK_INT_EQ(strlen(secret), ACCESSKEY_SECRET_LEN);
    REQUIRE_OK(accesskey_secret(db, box, k.id, &got, opened));
    CHECK_STR_EQ(opened, secret);
    CHECK_STR_EQ(got.user, "alice");
    REQUIRE(sqlite3_prepare_v2(db->h,
                               "SELECT count(*) FROM access_keys WHERE instr(CAST(sealed AS TEXT), ?) > 0 "
                               "OR instr(description, ?) > 0",
                               -1, &st, NULL) == SQLITE_OK);
    sqlite3_bind_text(st, 1, secret, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, secret, -1, SQLITE_STATIC);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    CHECK_INT_EQ(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
}

/* The sealing key file is 0600 and a second load reads the same key. */
static void boxkey_file_is_private_and_stable(void)
{
    char path[512];
    struct stat sb;
    unsigned char again[ACCESSKEY_BOXKEY_BYTES];
    snprintf(path, sizeof(path), "%s/keys/%s", dir, ACCESSKEY_BOXKEY_FILE);
    REQUIRE(stat(path, &sb) == 0);
    CHECK_INT_EQ(sb.st_mode & 0777, 0600);
    REQUIRE_OK(accesskey_boxkey_load(dir, 0, again));
    CHECK(memcmp(again, box, sizeof(box)) == 0);
}

/* A key for a missing user is refused; a revoked key no longer opens; a second revoke is NOT_FOUND. */
static void revoke_closes_key(void)
{
    struct accesskey k, got;
    char secret[ACCESSKEY_SECRET_LEN + 1];
    CHECK_ERR(create("nobody", &k, secret), BERR_NOT_FOUND);
    REQUIRE_OK(create("alice", &k, secret));
    REQUIRE_OK(db_begin(db));
    CHECK_ERR(accesskey_revoke(db, k.id), 0);
    CHECK_ERR(accesskey_revoke(db, k.id), BERR_NOT_FOUND);
    db_commit(db);
    CHECK_ERR(accesskey_secret(db, box, k.id, &got, secret), BERR_NOT_FOUND);
    REQUIRE_OK(accesskey_get(db, k.id, &got));
    CHECK(got.revoked_at != 0);
}

/* A token verifies until it expires, fails when changed, and dies with its key or its user. */
static void token_lifecycle(void)
{
    struct accesskey k, got;
    char secret[ACCESSKEY_SECRET_LEN + 1], tok[ACCESSKEY_TOKEN_MAX];
    REQUIRE_OK(create("alice", &k, secret));
    accesskey_token_issue(k.id, secret, 2000, tok);
    CHECK_ERR(accesskey_token_verify(db, box, tok, strlen(tok), 1999, &got), 0);
    CHECK_STR_EQ(got.user, "alice");
    CHECK_ERR(accesskey_token_verify(db, box, tok, strlen(tok), 2000, &got), BERR_UNAUTHORIZED);
    tok[strlen(tok) - 1] ^= 1;
    CHECK_ERR(accesskey_token_verify(db, box, tok, strlen(tok), 1999, &got), BERR_UNAUTHORIZED);
    tok[strlen(tok) - 1] ^= 1;
    tok[ACCESSKEY_ID_LEN + 1] = '3'; /* a later expiry under the old MAC */
    CHECK_ERR(accesskey_token_verify(db, box, tok, strlen(tok), 1999, &got), BERR_UNAUTHORIZED);
    accesskey_token_issue(k.id, secret, 2000, tok);
    REQUIRE_OK(db_begin(db));
    REQUIRE_OK(authdb_user_del(db, "alice"));
    db_commit(db);
    CHECK_ERR(accesskey_token_verify(db, box, tok, strlen(tok), 1999, &got), BERR_UNAUTHORIZED);
}

/* Immutability: IMMUTABLE refuses every tag, the exclusion modes follow the wildcard filters. */
static void tag_immutability_rules(void)
{
    const char *f = "[{\"filterType\":\"WILDCARD\",\"filter\":\"latest\"},{\"filterType\":\"WILDCARD\","
                    "\"filter\":\"dev-*\"}]";
    CHECK(ecrdb_tag_immutable("IMMUTABLE", NULL, "v1"));
    CHECK(!ecrdb_tag_immutable("MUTABLE", NULL, "v1"));
    CHECK(!ecrdb_tag_immutable("IMMUTABLE_WITH_EXCLUSION", f, "latest"));
    CHECK(!ecrdb_tag_immutable("IMMUTABLE_WITH_EXCLUSION", f, "dev-42"));
    CHECK(ecrdb_tag_immutable("IMMUTABLE_WITH_EXCLUSION", f, "v1"));
    CHECK(ecrdb_tag_immutable("MUTABLE_WITH_EXCLUSION", f, "dev-1"));
    CHECK(!ecrdb_tag_immutable("MUTABLE_WITH_EXCLUSION", f, "v1"));
    CHECK(names_glob_match("*", ""));
    CHECK(names_glob_match("a*b*c", "aXXbYc"));
    CHECK(!names_glob_match("a*b", "ab-"));
}

/* Creating twice is EXISTS; deleting needs force when images exist. */
static void repo_create_delete(void)
{
    struct ecrdb_repo r;
    int n = 0;
    REQUIRE_OK(db_begin(db));
    CHECK_ERR(ecrdb_repo_create(db, "team/app", "IMMUTABLE", NULL, &r), 0);
    CHECK_STR_EQ(r.mutability, "IMMUTABLE");
    CHECK_INT_EQ(ecrdb_repo_create(db, "team/app", "MUTABLE", NULL, &r), ECRDB_EXISTS);
    CHECK_ERR(ecrdb_repo_delete(db, "team/app", 0, &r, &n), 0);
    CHECK_ERR(ecrdb_repo_delete(db, "team/app", 0, &r, &n), BERR_NAME_UNKNOWN);
    db_commit(db);
}

/* A started lifecycle preview is stored per repository, replaced by the next one, and goes with the repository. */
static void preview_stored_with_repository(void)
{
    struct ecrdb_repo r;
    char *policy = NULL;
    long long at = 0;
    int n = 0;
    REQUIRE_OK(db_begin(db));
    CHECK_ERR(ecrdb_preview_put(db, "team/none", "{}", 5), BERR_NAME_UNKNOWN);
    CHECK_ERR(ecrdb_repo_create(db, "team/app", "MUTABLE", NULL, &r), 0);
    CHECK_ERR(ecrdb_preview_get(db, "team/app", &policy, &at), BERR_NOT_FOUND);
    CHECK_ERR(ecrdb_preview_put(db, "team/app", "{\"rules\":[1]}", 10), 0);
    CHECK_ERR(ecrdb_preview_put(db, "team/app", "{\"rules\":[2]}", 20), 0);
    REQUIRE_OK(db_commit(db));
    CHECK_ERR(ecrdb_preview_get(db, "team/app", &policy, &at), 0); /* read outside the writing transaction */
    CHECK_STR_EQ(policy ? policy : "", "{\"rules\":[2]}");
    CHECK_INT_EQ(at, 20);
    free(policy);
    REQUIRE_OK(db_begin(db));
    CHECK_ERR(ecrdb_repo_delete(db, "team/app", 0, &r, &n), 0);
    CHECK_ERR(ecrdb_repo_create(db, "team/app", "MUTABLE", NULL, &r), 0);
    CHECK_ERR(ecrdb_preview_get(db, "team/app", &policy, &at), BERR_NOT_FOUND);
    db_commit(db);
}

/* A read transaction can be opened and closed around reads, and closing without one is harmless. */
static void read_transaction(void)
{
    struct ecrdb_repo r;
    REQUIRE_OK(ecrdb_read_begin(db));
    CHECK(db_in_txn(db));
    CHECK_ERR(ecrdb_repo_get(db, "team/none", &r), BERR_NAME_UNKNOWN);
    CHECK_INT_EQ(ecrdb_image_tagged(db, "team/none", "sha256:00"), 0);
    ecrdb_read_end(db);
    CHECK(!db_in_txn(db));
    ecrdb_read_end(db);
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(create_seals_secret),
        CHECK_TEST(boxkey_file_is_private_and_stable),
        CHECK_TEST(revoke_closes_key),
        CHECK_TEST(token_lifecycle),
        CHECK_TEST(tag_immutability_rules),
        CHECK_TEST(repo_create_delete),
        CHECK_TEST(preview_stored_with_repository),
        CHECK_TEST(read_transaction),
    };
    check_before_each = setup;
    check_after_each = dbfix_teardown;
    return check_run(tests, CHECK_COUNT(tests), argc, argv);
}
