/*
 * dbfix.h - the storage tests' fixture: a fresh temp directory with a migrated berth.db per test (or, after
 * db_set_metadata(postgresql://…), the PostgreSQL database emptied).
 * Include once per test file, then set check_before_each = dbfix_setup and check_after_each = dbfix_teardown.
 */
#ifndef BERTH_TESTS_DBFIX_H
#define BERTH_TESTS_DBFIX_H

#include "check.h"
#include "db.h"

static char dir[256]; /* the test's data directory */
static struct db *db; /* a connection to its berth.db */

/* With db_set_metadata on PostgreSQL, every table of the one test database is emptied (identities restarted,
 * counters zeroed) so that each test starts as on a fresh berth.db. */
static int dbfix_empty_pg(void)
{
    return db_exec(db, "TRUNCATE repos, blobs, repo_blobs, manifests, manifest_blobs, manifest_children, tags, "
                       "uploads, users, tokens, grants, lifecycle_policies, gc_pending, access_keys, ecr_repos, "
                       "ecr_tags, ecr_settings, events, webhook_cursors, quotas, upload_s3, ecr_lifecycle_previews "
                       "RESTART IDENTITY CASCADE;"
                       "UPDATE stats SET blobs = 0, blob_bytes = 0, manifests = 0, repos = 0, uploads = 0");
}

static int dbfix_setup(void)
{
    if (check_tmpdir(dir, sizeof(dir)) != 0)
        return -1;
    if (db_open(dir, &db) != 0)
        return -1;
    return db_is_pg(db) ? dbfix_empty_pg() : 0;
}

static void dbfix_teardown(void)
{
    db_close(db);
    db = NULL;
    check_rmtree(dir);
}

#endif
