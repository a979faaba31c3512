/*
 * test_db.c - the db.h statement API, on SQLite (a fresh temp dir per test) and, when BERTH_TEST_PG holds a libpq
 * URL (tests/e2e/test_pg.sh sets it), on PostgreSQL (the same database, emptied per test): every case runs on each.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include "check.h"
#include "dbfix.h"
#include "db.h"
#include "err.h"
#include "log.h"

/* Inserts repository `name` and returns its id through RETURNING (-1 on failure). */
static long long add_repo(const char *name)
{
    struct db_stmt *st = db_prepare(db, "INSERT INTO repos (name, created_at) VALUES (?, ?) RETURNING id");
    long long id = -1;
    if (st == NULL)
        return -1;
    db_bind_text(st, 1, name, -1);
    db_bind_int64(st, 2, 1700000000);
    if (db_step(st) == DB_ROW)
        id = db_column_int64(st, 0);
    db_finalize(st);
    return id;
}

/* Binds and reads back integers (64-bit), text, NULL and a blob with NUL bytes, through a cached statement. */
static void binds_and_columns_round_trip(void)
{
    static const unsigned char blob[] = {0, 1, 2, 0xff, 0, 'x'};
    struct db_stmt *st;
    long long id = add_repo("r");
    CHECK(id > 0);
    REQUIRE_OK(db_begin(db));
    st = db_stmt(db, DB_SLOTS_NONE_END,
                 "INSERT INTO manifests (repo_id, digest, media_type, artifact_type, size, body, "
                 "pushed_at) VALUES (?, ?, ?, ?, ?, ?, ?)");
    REQUIRE(st != NULL);
    db_bind_int64(st, 1, id);
    db_bind_text(st, 2, "sha256:abc", -1);
    db_bind_text_copy(st, 3, "text/plainXXX", 10);
    db_bind_null(st, 4);
    db_bind_int64(st, 5, 5000000000LL);
    db_bind_blob(st, 6, blob, sizeof(blob));
    db_bind_int64(st, 7, -7);
    CHECK_INT_EQ(db_step(st), DB_DONE);
    CHECK_INT_EQ(db_changes(db), 1);
    REQUIRE_OK(db_commit(db));
    st = db_prepare(db, "SELECT digest, media_type, artifact_type, size, body, pushed_at FROM manifests");
    REQUIRE(st != NULL);
    REQUIRE(db_step(st) == DB_ROW);
    CHECK_STR_EQ(db_column_text(st, 0), "sha256:abc");
    CHECK_STR_EQ(db_column_text(st, 1), "text/plain");
    CHECK(db_column_is_null(st, 2));
    CHECK_NULL(db_column_text(st, 2));
    CHECK(!db_column_is_null(st, 3));
    CHECK_INT_EQ(db_column_int64(st, 3), 5000000000LL);
    CHECK_MEM_EQ(db_column_blob(st, 4), (size_t)db_column_bytes(st, 4), blob, sizeof(blob));
    CHECK_INT_EQ(db_column_int64(st, 5), -7);
    CHECK_INT_EQ(db_step(st), DB_DONE);
    db_finalize(st);
}

/* A cached statement comes back reset with its bindings cleared; numbered placeholders (?1, ?2) reuse a value. */
static void cached_statement_resets_and_numbered_placeholders(void)
{
    struct db_stmt *st;
    add_repo("a");
    add_repo("b");
    add_repo("c");
    for (int round = 0; round < 2; round++) {
        int n = 0;
        st = db_stmt(db, DB_SLOTS_NONE_END + 1, "SELECT name FROM repos WHERE name > ?1 OR name = ?1 ORDER BY name");
        REQUIRE(st != NULL);
        db_bind_text(st, 1, "b", -1);
        while (db_step(st) == DB_ROW)
            n++;
        CHECK_INT_EQ(n, 2);
        db_reset(st);
    }
    st = db_stmt(db, DB_SLOTS_NONE_END + 1, "SELECT name FROM repos WHERE name > ?1 OR name = ?1 ORDER BY name");
    REQUIRE(st != NULL);
    CHECK_INT_EQ(db_step(st), DB_DONE); /* the binding was cleared: NULL matches nothing */
    db_reset(st);
}

/* Text sorts by bytes on both backends (pagination relies on it): upper case before lower, '-' before '.'. */
static void text_orders_by_bytes(void)
{
    static const char *const want[] = {"a-b", "a.b", "a/b", "ab", "b"};
    struct db_stmt *st;
    int i = 0;
    add_repo("b");
    add_repo("a/b");
    add_repo("ab");
    add_repo("a.b");
    add_repo("a-b");
    st = db_prepare(db, "SELECT name FROM repos WHERE name > ? ORDER BY name LIMIT ?");
    REQUIRE(st != NULL);
    db_bind_text(st, 1, "", -1);
    db_bind_int64(st, 2, 10);
    while (db_step(st) == DB_ROW && i < 5)
        CHECK_STR_EQ(db_column_text(st, 0), want[i++]);
    CHECK_INT_EQ(i, 5);
    db_finalize(st);
}

/* ON CONFLICT DO NOTHING changes no row; DO UPDATE updates in place; db_changes reports both. */
static void on_conflict_both_ways(void)
{
    struct db_stmt *st;
    REQUIRE_OK(db_exec(db, "INSERT INTO ecr_settings (name, value) VALUES ('k', 'one')"));
    st = db_prepare(db, "INSERT INTO ecr_settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING");
    REQUIRE(st != NULL);
    db_bind_text(st, 1, "k", -1);
    db_bind_text(st, 2, "two", -1);
    CHECK_INT_EQ(db_step(st), DB_DONE);
    CHECK_INT_EQ(db_changes(db), 0);
    db_finalize(st);
    st = db_prepare(db, "INSERT INTO ecr_settings (name, value) VALUES (?, ?) "
                        "ON CONFLICT (name) DO UPDATE SET value = excluded.value");
    REQUIRE(st != NULL);
    db_bind_text(st, 1, "k", -1);
    db_bind_text(st, 2, "three", -1);
    CHECK_INT_EQ(db_step(st), DB_DONE);
    CHECK_INT_EQ(db_changes(db), 1);
    db_finalize(st);
    st = db_prepare(db, "SELECT value FROM ecr_settings WHERE name = 'k'");
    REQUIRE(st != NULL && db_step(st) == DB_ROW);
    CHECK_STR_EQ(db_column_text(st, 0), "three");
    db_finalize(st);
}

/* A unique violation is a constraint error (BERR_DB, db_last_constraint), and a rolled-back write leaves nothing. */
static void constraint_error_and_rollback(void)
{
    struct db_stmt *st;
    CHECK(add_repo("dup") > 0);
    REQUIRE_OK(db_begin(db));
    CHECK(db_in_txn(db));
    st = db_prepare(db, "INSERT INTO repos (name, created_at) VALUES ('dup', 0)");
    REQUIRE(st != NULL);
    CHECK(db_step(st) != DB_DONE);
    CHECK(db_last_constraint(db));
    CHECK_ERR(db_last_error(db), BERR_DB);
    db_finalize(st);
    db_rollback(db);
    CHECK(!db_in_txn(db));
    REQUIRE_OK(db_begin(db));
    CHECK(add_repo("gone") > 0);
    db_rollback(db);
    st = db_prepare(db, "SELECT count(*) FROM repos");
    REQUIRE(st != NULL && db_step(st) == DB_ROW);
    CHECK_INT_EQ(db_column_int64(st, 0), 1);
    db_finalize(st);
}

/* A savepoint rolled back inside a transaction undoes only its own writes (the writer's per-op isolation), also
 * after a failed statement. */
static void savepoint_isolates_a_failed_op(void)
{
    struct db_stmt *st;
    REQUIRE_OK(db_begin(db));
    CHECK(add_repo("kept") > 0);
    REQUIRE_OK(db_exec(db, "SAVEPOINT op"));
    CHECK(add_repo("undone") > 0);
    CHECK_INT_EQ(add_repo("kept"), -1); /* a unique violation inside the savepoint */
    REQUIRE_OK(db_exec(db, "ROLLBACK TO op"));
    REQUIRE_OK(db_exec(db, "RELEASE op"));
    REQUIRE_OK(db_commit(db));
    st = db_prepare(db, "SELECT name FROM repos ORDER BY name");
    REQUIRE(st != NULL && db_step(st) == DB_ROW);
    CHECK_STR_EQ(db_column_text(st, 0), "kept");
    CHECK_INT_EQ(db_step(st), DB_DONE);
    db_finalize(st);
}

/* The stats and quota triggers keep their counters on both backends, a repository delete included. */
static void triggers_keep_counters(void)
{
    struct db_stmt *st;
    long long id = add_repo("team/app");
    REQUIRE_OK(db_exec(db, "INSERT INTO quotas (pattern, limit_bytes, used, created_at) VALUES ('team/*', 100, 0, 0)"));
    REQUIRE_OK(db_exec(db, "INSERT INTO blobs (digest, size, created_at) VALUES ('sha256:1', 40, 0)"));
    st = db_prepare(db, "INSERT INTO repo_blobs (repo_id, digest, linked_at) VALUES (?, 'sha256:1', 0)");
    REQUIRE(st != NULL);
    db_bind_int64(st, 1, id);
    CHECK_INT_EQ(db_step(st), DB_DONE);
    db_finalize(st);
    st = db_prepare(db, "SELECT s.blobs, s.blob_bytes, s.repos, (SELECT used FROM quotas), (SELECT bytes FROM repos) "
                        "FROM stats s");
    REQUIRE(st != NULL && db_step(st) == DB_ROW);
    CHECK_INT_EQ(db_column_int64(st, 0), 1);
    CHECK_INT_EQ(db_column_int64(st, 1), 40);
    CHECK_INT_EQ(db_column_int64(st, 2), 1);
    CHECK_INT_EQ(db_column_int64(st, 3), 40);
    CHECK_INT_EQ(db_column_int64(st, 4), 40);
    db_finalize(st);
    REQUIRE_OK(db_exec(db, "DELETE FROM repos"));
    st = db_prepare(db, "SELECT s.repos, (SELECT used FROM quotas), (SELECT count(*) FROM repo_blobs) FROM stats s");
    REQUIRE(st != NULL && db_step(st) == DB_ROW);
    CHECK_INT_EQ(db_column_int64(st, 0), 0);
    CHECK_INT_EQ(db_column_int64(st, 1), 0);
    CHECK_INT_EQ(db_column_int64(st, 2), 0);
    db_finalize(st);
}

/* A statement with a syntax error fails (at db_prepare on SQLite, at its first db_step on PostgreSQL, which parses
 * uncached statements when they run), is logged, and leaves the connection usable. */
static void bad_sql_fails_cleanly(void)
{
    struct db_stmt *st = db_prepare(db, "SELEC nonsense");
    if (db_is_pg(db)) {
        REQUIRE(st != NULL);
        CHECK(db_step(st) != DB_ROW && db_step(st) != DB_DONE);
        db_finalize(st);
    } else {
        CHECK_NULL(st);
    }
    CHECK(db_exec(db, "SELEC nonsense") != 0);
    CHECK(add_repo("after") > 0);
}

/* Ends `victim`'s server session from connection `killer` (PostgreSQL), as a server restart does. */
static void terminate(struct db *killer, struct db *victim)
{
    struct db_stmt *st = db_prepare(victim, "SELECT pg_backend_pid()");
    char sql[96];
    REQUIRE(st != NULL && db_step(st) == DB_ROW);
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%lld)", (long long)db_column_int64(st, 0));
    db_finalize(st);
    REQUIRE_OK(db_exec(killer, sql));
}

/* PostgreSQL: a connection the server dropped (a restart between two statements) is re-established by the next
 * statement, which is sent again when it ran outside a transaction (a cached one is prepared again); a statement
 * inside a transaction is not re-sent: it fails with BERR_UNAVAILABLE, and so do the transaction's later statements
 * and its COMMIT, which ends it as a ROLLBACK does; then the connection works. */
static void lost_connection_reconnects(void)
{
    struct db *killer;
    struct db_stmt *st;
    if (!db_is_pg(db))
        return; /* one file, no server to lose */
    REQUIRE_OK(db_open(dir, &killer));
    CHECK(add_repo("before") > 0);
    st = db_stmt(db, DB_SLOTS_NONE_END + 1, "SELECT count(*) FROM repos WHERE name = ?");
    REQUIRE(st != NULL);
    db_bind_text(st, 1, "before", -1);
    CHECK_INT_EQ(db_step(st), DB_ROW);
    db_reset(st);
    terminate(killer, db);
    st = db_stmt(db, DB_SLOTS_NONE_END + 1, "SELECT count(*) FROM repos WHERE name = ?");
    REQUIRE(st != NULL);
    db_bind_text(st, 1, "before", -1);
    CHECK_INT_EQ(db_step(st), DB_ROW); /* cached, prepared on the lost connection: reconnected, prepared, re-sent */
    CHECK_INT_EQ(db_column_int64(st, 0), 1);
    db_reset(st);
    terminate(killer, db);
    CHECK(add_repo("after-loss") > 0); /* uncached */
    CHECK_INT_EQ(db_unreachable(), 0);
    REQUIRE_OK(db_exec(db, "BEGIN"));
    CHECK(add_repo("in-txn") > 0);
    terminate(killer, db);
    CHECK_INT_EQ(add_repo("lost-with-its-txn"), -1);
    CHECK_INT_EQ(db_last_error(db), BERR_UNAVAILABLE);
    CHECK_INT_EQ(add_repo("not-outside-its-txn"), -1); /* nothing of the lost transaction runs in autocommit */
    CHECK(db_exec(db, "COMMIT") != 0); /* nor does its COMMIT pretend to succeed; it ends the transaction */
    CHECK(add_repo("next") > 0);
    REQUIRE_OK(db_exec(db, "BEGIN"));
    terminate(killer, db);
    CHECK_INT_EQ(add_repo("lost-again"), -1);
    db_rollback(db); /* or a ROLLBACK ends it */
    CHECK(add_repo("next2") > 0);
    st = db_prepare(db, "SELECT count(*) FROM repos WHERE name IN ('in-txn', 'lost-with-its-txn', "
                        "'not-outside-its-txn')");
    REQUIRE(st != NULL && db_step(st) == DB_ROW);
    CHECK_INT_EQ(db_column_int64(st, 0), 0); /* the transaction's work is gone with it */
    db_finalize(st);
    db_close(killer);
}

/* Sets whether the test database accepts new connections (PostgreSQL).  PostgreSQL refuses that for the database a
 * session is connected to, so it is sent from the cluster's "postgres" database over a plain libpq connection. */
static void allow_connections(struct db *db_on_it, int allow)
{
    const char *keys[] = {"dbname", "dbname", NULL}, *vals[] = {getenv("BERTH_TEST_PG"), "postgres", NULL};
    struct db_stmt *st = db_prepare(db_on_it, "SELECT current_database()");
    char sql[192];
    PGconn *c;
    PGresult *res;
    REQUIRE(st != NULL && db_step(st) == DB_ROW);
    snprintf(sql, sizeof(sql), "ALTER DATABASE \"%s\" ALLOW_CONNECTIONS %s", db_column_text(st, 0),
             allow ? "true" : "false");
    db_finalize(st);
    c = PQconnectdbParams(keys, vals, 1); /* the URL's settings, another database */
    REQUIRE(PQstatus(c) == CONNECTION_OK);
    res = PQexec(c, sql);
    CHECK(PQresultStatus(res) == PGRES_COMMAND_OK);
    PQclear(res);
    PQfinish(c);
}

/* PostgreSQL: statements on a connection that is gone while the server cannot be reached (stopped, refusing
 * connections) fail with BERR_UNAVAILABLE; once it can be reached again, the next statement reconnects and works.
 * A statement that failed outside any transaction while the server was away leaves nothing behind: neither a
 * "lost transaction" that would fail every later statement, nor a connection that claims to be in a transaction. */
static void unreachable_server_then_back(void)
{
    struct db *admin;
    struct db_stmt *st;
    if (!db_is_pg(db))
        return;
    REQUIRE_OK(db_open(dir, &admin));
    CHECK(add_repo("before-outage") > 0);
    allow_connections(admin, 0);
    terminate(admin, db);
    CHECK_INT_EQ(add_repo("during-outage"), -1); /* uncached; the reconnect is refused */
    CHECK_INT_EQ(db_last_error(db), BERR_UNAVAILABLE);
    CHECK_INT_EQ(db_unreachable(), 1);
    CHECK_INT_EQ(db_in_txn(db), 0);
    st = db_stmt(db, DB_SLOTS_NONE_END + 2, "SELECT count(*) FROM repos WHERE name = ?");
    if (st != NULL) { /* cached: preparing it may already fail */
        db_bind_text(st, 1, "before-outage", -1);
        CHECK(db_step(st) != DB_ROW);
        db_reset(st);
    }
    CHECK(db_exec(db, "SELECT 1") != 0);
    CHECK(db_begin(db) != 0);
    CHECK_INT_EQ(db_in_txn(db), 0);
    allow_connections(admin, 1);
    st = db_stmt(db, DB_SLOTS_NONE_END + 2, "SELECT count(*) FROM repos WHERE name = ?");
    REQUIRE(st != NULL);
    db_bind_text(st, 1, "before-outage", -1);
    CHECK_INT_EQ(db_step(st), DB_ROW); /* a plain read right after: reconnected, no lost transaction in its way */
    CHECK_INT_EQ(db_column_int64(st, 0), 1);
    db_reset(st);
    CHECK_INT_EQ(db_unreachable(), 0);
    CHECK(add_repo("after-outage") > 0);
    REQUIRE_OK(db_begin(db));
    CHECK(add_repo("in-txn-after-outage") > 0);
    REQUIRE_OK(db_commit(db));
    CHECK_INT_EQ(db_in_txn(db), 0);
    st = db_prepare(db, "SELECT count(*) FROM repos WHERE name IN ('during-outage', 'after-outage', "
                        "'in-txn-after-outage')");
    REQUIRE(st != NULL && db_step(st) == DB_ROW);
    CHECK_INT_EQ(db_column_int64(st, 0), 2);
    db_finalize(st);
    db_close(admin);
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(binds_and_columns_round_trip),  CHECK_TEST(cached_statement_resets_and_numbered_placeholders),
        CHECK_TEST(text_orders_by_bytes),          CHECK_TEST(on_conflict_both_ways),
        CHECK_TEST(constraint_error_and_rollback), CHECK_TEST(savepoint_isolates_a_failed_op),
        CHECK_TEST(triggers_keep_counters),        CHECK_TEST(bad_sql_fails_cleanly),
        CHECK_TEST(lost_connection_reconnects),    CHECK_TEST(unreachable_server_then_back),
    };
    int rc;
    check_before_each = dbfix_setup;
    check_after_each = dbfix_teardown;
    log_set_level(LOG_ERROR);
    rc = check_run(tests, CHECK_COUNT(tests), argc, argv);
    if (rc == 0 && getenv("BERTH_TEST_PG") != NULL && getenv("BERTH_TEST_PG")[0] != '\0') {
        printf("-- again on PostgreSQL\n");
        if (db_set_metadata(getenv("BERTH_TEST_PG")) != 0)
            return 1;
        rc = check_run(tests, CHECK_COUNT(tests), argc, argv);
    }
    return rc;
}
