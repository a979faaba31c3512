/* test_stats.c - storage/stats.c: the trigger-kept counts follow inserts, deletes and cascades, and a migration
 * from a database that already has rows starts from the right numbers. */
#include "dbfix.h"
#include "stats.h"

static int sql(const char *s)
{
    return db_exec(db, s);
}

/* A fresh database counts nothing. */
static void fresh_database_counts_zero(void)
{
    struct stats s;
    REQUIRE_INT_EQ(stats_read(db, &s), 0);
    CHECK_INT_EQ(s.blobs + s.blob_bytes + s.manifests + s.repos + s.uploads, 0);
}

/* Blob rows add their size once; deleting them takes it away. */
static void blobs_and_bytes_follow_rows(void)
{
    struct stats s;
    REQUIRE_INT_EQ(sql("INSERT INTO blobs VALUES ('sha256:aa', 100, 0), ('sha256:bb', 23, 0)"), 0);
    REQUIRE_INT_EQ(sql("INSERT INTO blobs VALUES ('sha256:aa', 100, 0) ON CONFLICT DO NOTHING"), 0);
    REQUIRE_INT_EQ(stats_read(db, &s), 0);
    CHECK_INT_EQ(s.blobs, 2);
    CHECK_INT_EQ(s.blob_bytes, 123);
    REQUIRE_INT_EQ(sql("DELETE FROM blobs WHERE digest = 'sha256:aa'"), 0);
    REQUIRE_INT_EQ(stats_read(db, &s), 0);
    CHECK_INT_EQ(s.blobs, 1);
    CHECK_INT_EQ(s.blob_bytes, 23);
}

/* Deleting a repository cascades to its manifests and uploads, and the counts follow the cascade. */
static void cascades_are_counted(void)
{
    struct stats s;
    REQUIRE_INT_EQ(sql("INSERT INTO repos (id, name, created_at) VALUES (1, 'a', 0), (2, 'b', 0);"
                       "INSERT INTO manifests (repo_id, digest, media_type, size, body, pushed_at) VALUES"
                       " (1, 'sha256:m1', 'x', 1, x'00', 0), (1, 'sha256:m2', 'x', 1, x'00', 0),"
                       " (2, 'sha256:m3', 'x', 1, x'00', 0);"
                       "INSERT INTO uploads VALUES ('u1', 1, 0), ('u2', 2, 0);"),
                   0);
    REQUIRE_INT_EQ(stats_read(db, &s), 0);
    CHECK_INT_EQ(s.repos, 2);
    CHECK_INT_EQ(s.manifests, 3);
    CHECK_INT_EQ(s.uploads, 2);
    REQUIRE_INT_EQ(sql("DELETE FROM repos WHERE id = 1"), 0);
    REQUIRE_INT_EQ(stats_read(db, &s), 0);
    CHECK_INT_EQ(s.repos, 1);
    CHECK_INT_EQ(s.manifests, 1);
    CHECK_INT_EQ(s.uploads, 1);
}

/* A rolled-back transaction leaves the counts as they were. */
static void rollback_leaves_counts(void)
{
    struct stats s;
    REQUIRE_INT_EQ(db_begin(db), 0);
    REQUIRE_INT_EQ(sql("INSERT INTO blobs VALUES ('sha256:cc', 7, 0)"), 0);
    db_rollback(db);
    REQUIRE_INT_EQ(stats_read(db, &s), 0);
    CHECK_INT_EQ(s.blobs, 0);
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(fresh_database_counts_zero),
        CHECK_TEST(blobs_and_bytes_follow_rows),
        CHECK_TEST(cascades_are_counted),
        CHECK_TEST(rollback_leaves_counts),
    };
    check_before_each = dbfix_setup;
    check_after_each = dbfix_teardown;
    return check_run(tests, CHECK_COUNT(tests), argc, argv);
}
