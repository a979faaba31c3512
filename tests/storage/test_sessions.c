/* test_sessions.c - sessions.h: the live upload-session table, recovery at start, expiry of idle sessions. */
#include <pthread.h>
#include <sys/stat.h>
#include <utime.h>
#include "blobstore.h"
#include "check.h"
#include "dbfix.h"
#include "log.h"
#include "meta.h"
#include "sessions.h"
#include "writer.h"

static struct blobstore bs;
static struct sessions *t;
static int (*real_collect)(void *ctx, const char *uuid);

static int setup(void)
{
    if (dbfix_setup() != 0 || blobstore_init(&bs, dir) != 0 || writer_start(dir) != 0)
        return -1;
    return sessions_new(&bs, &t);
}

static void teardown(void)
{
    sessions_free(t);
    t = NULL;
    writer_stop();
    sessions__collect = real_collect;
    dbfix_teardown();
}

/* A session of `repo` with a staging file and a committed row, not live (as after a restart). */
static void make_session(const char *repo, char uuid[BERTH_UUID_LEN + 1], int with_row)
{
    struct upload *up;
    REQUIRE_OK(upload_create(&bs, &up));
    snprintf(uuid, BERTH_UUID_LEN + 1, "%s", up->uuid);
    REQUIRE_OK(upload_append(up, "abc", 3));
    upload_free(up);
    if (with_row) {
        REQUIRE_OK(db_begin(db));
        REQUIRE_OK(meta_upload_add(db, uuid, repo));
        REQUIRE_OK(db_commit(db));
    }
}

/* Backdates the staging file of `uuid` by `secs` seconds. */
static void age(const char *uuid, int secs)
{
    char path[BLOBSTORE_PATH_MAX];
    struct utimbuf ut = {.actime = time(NULL) - secs, .modtime = time(NULL) - secs};
    blobstore_upload_path(&bs, uuid, path, sizeof(path));
    CHECK_INT_EQ(utime(path, &ut), 0);
}

/* Recovery keeps sessions with a row and a file, removes files without rows and rows without files, and empties
 * tmp/. */
static void recover_reconciles_rows_and_files(void)
{
    char live[BERTH_UUID_LEN + 1], orphan_file[BERTH_UUID_LEN + 1], path[BLOBSTORE_PATH_MAX];
    const char *orphan_row = "00000000-0000-4000-8000-000000000001";
    struct session *s;
    FILE *f;
    make_session("r", live, 1);
    make_session("r", orphan_file, 0);
    REQUIRE_OK(db_begin(db));
    REQUIRE_OK(meta_upload_add(db, orphan_row, "r"));
    REQUIRE_OK(db_commit(db));
    blobstore_tmp_dir(&bs, path, sizeof(path));
    strcat(path, "/body.crash");
    REQUIRE((f = fopen(path, "w")) != NULL);
    fclose(f);
    CHECK_ERR(sessions_recover(t, db), 0);
    CHECK_INT_EQ(blobstore_upload_exists(&bs, live), 1);
    CHECK_INT_EQ(blobstore_upload_exists(&bs, orphan_file), 0);
    CHECK_ERR(meta_upload_find(db, orphan_row, "r"), BERR_BLOB_UPLOAD_UNKNOWN);
    CHECK_INT_EQ(access(path, F_OK), -1);
    REQUIRE_OK(sessions_acquire(t, db, live, "r", &s));
    CHECK_INT_EQ(s->up->size, 3);
    sessions_release(t, s);
}

static int failing_collect(void *ctx, const char *uuid)
{
    (void)ctx;
    (void)uuid;
    return BERR_NOMEM;
}

/* Out of memory while listing the rows: the error reaches the caller and recovery removes nothing (before the
 * fix, the listing reported success and every session's staging file was deleted). */
static void recover_aborts_when_listing_fails(void)
{
    char a[BERTH_UUID_LEN + 1], b[BERTH_UUID_LEN + 1];
    make_session("r", a, 1);
    make_session("r", b, 1);
    sessions__collect = failing_collect;
    CHECK_ERR(sessions_recover(t, db), BERR_NOMEM);
    CHECK_INT_EQ(blobstore_upload_exists(&bs, a), 1);
    CHECK_INT_EQ(blobstore_upload_exists(&bs, b), 1);
    CHECK_ERR(meta_upload_find(db, a, "r"), 0);
}

static int stop_with_nomem(void *ctx, const char *uuid)
{
    (void)uuid;
    return ++*(int *)ctx == 1 ? BERR_NOMEM : 0;
}

/* A listing callback's negative result aborts the listing and is returned (meta.h). */
static void listing_returns_callback_error(void)
{
    char a[BERTH_UUID_LEN + 1], b[BERTH_UUID_LEN + 1];
    int calls = 0;
    make_session("r", a, 1);
    make_session("r", b, 1);
    CHECK_ERR(meta_uploads_each(db, stop_with_nomem, &calls), BERR_NOMEM);
    CHECK_INT_EQ(calls, 1);
}

/* Expiry removes idle sessions (file, row, live entry) and keeps recent ones. */
static void expire_removes_idle_sessions_only(void)
{
    char old[BERTH_UUID_LEN + 1], fresh[BERTH_UUID_LEN + 1];
    struct session *s;
    make_session("r", old, 1);
    make_session("r", fresh, 1);
    age(old, 3600);
    CHECK_INT_EQ(sessions_expire(t, time(NULL) - 60), 1);
    CHECK_INT_EQ(blobstore_upload_exists(&bs, old), 0);
    CHECK_ERR(meta_upload_find(db, old, "r"), BERR_BLOB_UPLOAD_UNKNOWN);
    CHECK_INT_EQ(blobstore_upload_exists(&bs, fresh), 1);
    CHECK_ERR(sessions_acquire(t, db, old, "r", &s), BERR_BLOB_UPLOAD_UNKNOWN);
}

/* A session held by a request (or being reopened: it is in the table, busy, before its file is opened) is never
 * expired; once released and idle it is. */
static void expire_skips_held_sessions(void)
{
    char uuid[BERTH_UUID_LEN + 1];
    struct session *s, *again;
    make_session("r", uuid, 1);
    REQUIRE_OK(sessions_acquire(t, db, uuid, "r", &s));
    age(uuid, 3600);
    CHECK_INT_EQ(sessions_expire(t, time(NULL) - 60), 0);
    CHECK_INT_EQ(blobstore_upload_exists(&bs, uuid), 1);
    CHECK_ERR(sessions_acquire(t, db, uuid, "r", &again), BERR_BLOB_UPLOAD_INVALID);
    sessions_release(t, s);
    age(uuid, 3600);
    CHECK_INT_EQ(sessions_expire(t, time(NULL) - 60), 1);
    CHECK_INT_EQ(blobstore_upload_exists(&bs, uuid), 0);
}

/* Reopen and expiry race: many rounds of a thread reopening a session while another expires it.  Whatever the
 * interleaving, a reopened session has its file (expiry never unlinks under a holder), and an expired one is gone
 * for good. */
struct race {
    char uuid[BERTH_UUID_LEN + 1];
    int acquired, rc;
};

static void *race_acquire(void *arg)
{
    struct race *r = arg;
    struct db *mine;
    struct session *s;
    if (db_open(dir, &mine) != 0)
        return NULL;
    r->rc = sessions_acquire(t, mine, r->uuid, "r", &s);
    if (r->rc == 0) {
        r->acquired = 1;
        r->rc = blobstore_upload_exists(&bs, r->uuid) ? 0 : BERR_IO; /* still there while held */
        sessions_drop(t, s);
    }
    db_close(mine);
    return NULL;
}

static void expire_and_reopen_are_exclusive(void)
{
    for (int round = 0; round < 30; round++) {
        struct race r = {0};
        pthread_t th;
        make_session("r", r.uuid, 1);
        age(r.uuid, 3600);
        REQUIRE(pthread_create(&th, NULL, race_acquire, &r) == 0);
        CHECK(sessions_expire(t, time(NULL) - 60) >= 0);
        pthread_join(th, NULL);
        if (r.acquired)
            CHECK_ERR(r.rc, 0);
        else
            CHECK(r.rc == BERR_BLOB_UPLOAD_UNKNOWN || r.rc == BERR_BLOB_UPLOAD_INVALID);
        upload_remove(&bs, r.uuid);
    }
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(recover_reconciles_rows_and_files), CHECK_TEST(recover_aborts_when_listing_fails),
        CHECK_TEST(listing_returns_callback_error),    CHECK_TEST(expire_removes_idle_sessions_only),
        CHECK_TEST(expire_skips_held_sessions),        CHECK_TEST(expire_and_reopen_are_exclusive),
    };
    real_collect = sessions__collect;
    check_before_each = setup;
    check_after_each = teardown;
    log_set_level(LOG_ERROR);
    return check_run(tests, CHECK_COUNT(tests), argc, argv);
}
