/* test_authdb.c - authdb.h's users, robot tokens and grants against a real berth.db in a fresh temp dir. */
#include <stdlib.h>
#include <sodium.h>
#include "authdb.h"
#include "check.h"
#include "dbfix.h"
#include "db.h"
#include "jwt.h"

static struct authdb_identity ident(enum authdb_kind kind, const char *name)
{
    struct authdb_identity id = {.kind = kind};
    snprintf(id.name, sizeof(id.name), "%s", name);
    return id;
}

static unsigned actions_of(enum authdb_kind kind, const char *name, const char *repo)
{
    struct authdb_identity id = ident(kind, name);
    struct authdb_grants g;
    unsigned a;
    if (authdb_grants_load(db, &id, &g) != 0)
        return 999;
    a = authdb_grants_actions(&g, repo);
    authdb_grants_free(&g);
    return a;
}

/* Only the argon2id hash is stored; the right password verifies, a wrong one does not; names are unique across
 * users and tokens. */
static void user_password_is_hashed_and_verifies(void)
{
    struct authdb_user u;
    char secret[AUTHDB_SECRET_MAX];
    REQUIRE_OK(authdb_user_add(db, "alice", "s3cret", 0));
    REQUIRE_OK(authdb_user_get(db, "alice", &u));
    CHECK(strncmp(u.pwhash, "$argon2id$", 10) == 0);
    CHECK(strstr(u.pwhash, "s3cret") == NULL);
    CHECK_ERR(authdb_password_verify(u.pwhash, "s3cret", 6), 0);
    CHECK_ERR(authdb_password_verify(u.pwhash, "s3creT", 6), BERR_UNAUTHORIZED);
    CHECK_ERR(authdb_user_add(db, "alice", "x", 0), BERR_BAD_REQUEST);
    CHECK_ERR(authdb_token_create(db, "alice", 60, secret), BERR_BAD_REQUEST);
    CHECK_ERR(authdb_user_passwd(db, "bob", "x"), BERR_NOT_FOUND);
}

/* A token's secret verifies until it expires or is revoked; revoking drops its grants. */
static void token_secret_expiry_and_revocation(void)
{
    struct authdb_token t;
    char secret[AUTHDB_SECRET_MAX];
    struct authdb_identity id = ident(AUTH_TOKEN, "ci");
    long long now = db_now();
    REQUIRE_OK(authdb_token_create(db, "ci", 3600, secret));
    CHECK(strncmp(secret, "berth_", 6) == 0);
    REQUIRE_OK(authdb_token_get(db, "ci", &t));
    CHECK_ERR(authdb_token_verify(&t, secret, strlen(secret), now), 0);
    CHECK_ERR(authdb_token_verify(&t, secret, strlen(secret) - 1, now), BERR_UNAUTHORIZED);
    CHECK_ERR(authdb_token_verify(&t, secret, strlen(secret), now + 3600), BERR_UNAUTHORIZED);
    REQUIRE_OK(authdb_grant_add(db, &id, AUTH_PULL, "team/*"));
    CHECK_INT_EQ(actions_of(AUTH_TOKEN, "ci", "team/x"), AUTH_PULL);
    REQUIRE_OK(authdb_token_revoke(db, "ci"));
    REQUIRE_OK(authdb_token_get(db, "ci", &t));
    CHECK_ERR(authdb_token_verify(&t, secret, strlen(secret), now), BERR_UNAUTHORIZED);
    CHECK_INT_EQ(actions_of(AUTH_TOKEN, "ci", "team/x"), 0);
    CHECK_ERR(authdb_token_revoke(db, "ci"), BERR_NOT_FOUND);
    /* the name can be reused after revocation */
    CHECK_ERR(authdb_token_create(db, "ci", 0, secret), 0);
}

/* A user deleted and added again, and a token revoked and created again, are new identities: new uid. */
static void reused_names_get_new_uids(void)
{
    struct authdb_user u;
    struct authdb_token t;
    char secret[AUTHDB_SECRET_MAX], uid[AUTHDB_UID_MAX];
    REQUIRE_OK(authdb_user_add(db, "eve", "pw", 0));
    REQUIRE_OK(authdb_user_get(db, "eve", &u));
    CHECK_INT_EQ(strlen(u.uid), AUTHDB_UID_MAX - 1);
    snprintf(uid, sizeof(uid), "%s", u.uid);
    REQUIRE_OK(authdb_user_passwd(db, "eve", "pw2"));
    REQUIRE_OK(authdb_user_get(db, "eve", &u));
    CHECK_STR_EQ(u.uid, uid); /* a new password is the same identity */
    REQUIRE_OK(authdb_user_del(db, "eve"));
    REQUIRE_OK(authdb_user_add(db, "eve", "pw", 0));
    REQUIRE_OK(authdb_user_get(db, "eve", &u));
    CHECK(strcmp(u.uid, uid) != 0);
    REQUIRE_OK(authdb_token_create(db, "ci-x", 0, secret));
    REQUIRE_OK(authdb_token_get(db, "ci-x", &t));
    CHECK_INT_EQ(strlen(t.uid), AUTHDB_UID_MAX - 1);
    snprintf(uid, sizeof(uid), "%s", t.uid);
    REQUIRE_OK(authdb_token_revoke(db, "ci-x"));
    REQUIRE_OK(authdb_token_get(db, "ci-x", &t));
    CHECK_STR_EQ(t.uid, uid); /* the revoked row keeps its uid */
    REQUIRE_OK(authdb_token_create(db, "ci-x", 0, secret));
    REQUIRE_OK(authdb_token_get(db, "ci-x", &t));
    CHECK(strcmp(t.uid, uid) != 0);
}

/* The key files' stamp changes with every rotation, even two within the same clock tick, and with a removed key. */
static void key_stamp_changes_on_every_rotation(void)
{
    struct jwt_keyring kr;
    char path[512];
    long long s0, s1, s2, s3;
    REQUIRE_OK(jwt_keys_load(dir, 1, 0, &kr));
    s0 = jwt_keys_stamp(dir);
    CHECK(s0 == jwt_keys_stamp(dir));
    REQUIRE_OK(jwt_keys_rotate(dir));
    s1 = jwt_keys_stamp(dir);
    REQUIRE_OK(jwt_keys_rotate(dir));
    s2 = jwt_keys_stamp(dir);
    CHECK(s1 != s0 && s2 != s1 && s2 != s0);
    snprintf(path, sizeof(path), "%s/keys/jwt-previous.key", dir);
    REQUIRE(unlink(path) == 0);
    s3 = jwt_keys_stamp(dir);
    CHECK(s3 != s2);
}

/* Grants merge per pattern; anonymous grants apply to everyone; admin users get everything; anonymous may only
 * be granted pull; grants need an existing subject. */
static void grants_merge_anonymous_and_admin(void)
{
    struct authdb_identity alice = ident(AUTH_USER, "alice"), anon = ident(AUTH_ANONYMOUS, "");
    struct authdb_identity ghost = ident(AUTH_USER, "ghost");
    REQUIRE_OK(authdb_user_add(db, "alice", "pw", 0));
    REQUIRE_OK(authdb_user_add(db, "root", "pw", 1));
    REQUIRE_OK(authdb_grant_add(db, &alice, AUTH_PULL, "team/*"));
    REQUIRE_OK(authdb_grant_add(db, &alice, AUTH_PUSH, "team/*"));
    REQUIRE_OK(authdb_grant_add(db, &anon, AUTH_PULL, "public/*"));
    CHECK_ERR(authdb_grant_add(db, &anon, AUTH_PUSH, "public/*"), BERR_BAD_REQUEST);
    CHECK_ERR(authdb_grant_add(db, &ghost, AUTH_PULL, "*"), BERR_NOT_FOUND);
    CHECK_INT_EQ(actions_of(AUTH_USER, "alice", "team/app"), AUTH_PULL | AUTH_PUSH);
    CHECK_INT_EQ(actions_of(AUTH_USER, "alice", "public/x"), AUTH_PULL);
    CHECK_INT_EQ(actions_of(AUTH_USER, "alice", "private/x"), 0);
    CHECK_INT_EQ(actions_of(AUTH_ANONYMOUS, "", "team/app"), 0);
    CHECK_INT_EQ(actions_of(AUTH_ANONYMOUS, "", "public/x"), AUTH_PULL);
    CHECK_INT_EQ(actions_of(AUTH_USER, "root", "anything/at/all"), AUTH_ALL);
    /* a deleted user keeps nothing but what anonymous has */
    REQUIRE_OK(authdb_user_del(db, "alice"));
    CHECK_INT_EQ(actions_of(AUTH_USER, "alice", "team/app"), 0);
    CHECK_INT_EQ(actions_of(AUTH_USER, "alice", "public/x"), AUTH_PULL);
    CHECK_ERR(authdb_grant_del(db, &anon, "public/*"), 0);
    CHECK_ERR(authdb_grant_del(db, &anon, "public/*"), BERR_NOT_FOUND);
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(user_password_is_hashed_and_verifies),
        CHECK_TEST(token_secret_expiry_and_revocation),
        CHECK_TEST(reused_names_get_new_uids),
        CHECK_TEST(key_stamp_changes_on_every_rotation),
        CHECK_TEST(grants_merge_anonymous_and_admin),
    };
    if (sodium_init() < 0)
        return 1;
    check_before_each = dbfix_setup;
    check_after_each = dbfix_teardown;
    return check_run(tests, CHECK_COUNT(tests), argc, argv);
}
