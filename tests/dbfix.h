/*
 * dbfix.h - the storage tests' fixture: a fresh temp directory with a migrated berth.db per test.
 * Include once per test file, then set check_before_each = dbfix_setup and check_after_each = dbfix_teardown.
 */
#ifndef BERTH_TESTS_DBFIX_H
#define BERTH_TESTS_DBFIX_H

#include "check.h"
#include "db.h"

static char dir[256]; /* the test's data directory */
static struct db *db; /* a connection to its berth.db */

static int dbfix_setup(void)
{
    if (check_tmpdir(dir, sizeof(dir)) != 0)
        return -1;
    return db_open(dir, &db);
}

static void dbfix_teardown(void)
{
    db_close(db);
    db = NULL;
    check_rmtree(dir);
}

#endif
