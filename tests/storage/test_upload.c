/* test_upload.c - blobstore.h and upload.h: staging files, verified commits into blobs/, and session reopening. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "blobstore.h"
#include "check.h"
#include "log.h"
#include "upload.h"

static char dir[256];
static struct blobstore bs;

static int setup(void)
{
    if (check_tmpdir(dir, sizeof(dir)) != 0)
        return -1;
    return blobstore_init(&bs, dir);
}

static void teardown(void)
{
    check_rmtree(dir);
}

/* Number of entries (files and directories, recursively) under `<dir>/<sub>`, or -1 if it cannot be read. */
static int entries_under(const char *sub)
{
    char path[1024];
    DIR *d;
    struct dirent *e;
    int n = 0;
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    if ((d = opendir(path)) == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        char child[1024];
        int below;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        n++;
        snprintf(child, sizeof(child), "%s/%s", sub, e->d_name);
        if ((below = entries_under(child)) > 0)
            n += below;
    }
    closedir(d);
    return n;
}

/* Reads file `path` into `buf` (NUL-terminated); returns its length or -1. */
static long read_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY);
    ssize_t n;
    if (fd < 0)
        return -1;
    n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return (long)n;
}

/* Creates a session, appends `chunks` (NULL-terminated) and finishes it with `expected`; returns finish's result.
 * The staging path goes to `staging`. */
static int push(const char *const *chunks, const char *expected, char *staging, size_t size)
{
    struct upload *u = NULL;
    int rc = upload_create(&bs, &u);
    if (rc != 0)
        return rc;
    blobstore_upload_path(&bs, u->uuid, staging, size);
    for (; *chunks != NULL && rc == 0; chunks++)
        rc = upload_append(u, *chunks, strlen(*chunks));
    if (rc == 0)
        rc = upload_finish(&bs, u, expected);
    upload_free(u);
    return rc;
}

/* Chunks appended and finished with their digest land read-only at blobs/sha256/<xx>/<hex>; staging is gone. */
static void upload_commits_blob_at_digest_path(void)
{
    const char *chunks[] = {"hello ", "", "wor", "ld", NULL};
    char d[BERTH_DIGEST_MAX], path[BLOBSTORE_PATH_MAX], expect[BLOBSTORE_PATH_MAX], staging[BLOBSTORE_PATH_MAX];
    char buf[64];
    struct stat st;
    int fd = -1;
    uint64_t size = 0;
    digest_buf("hello world", 11, d);
    REQUIRE_ERR(push(chunks, d, staging, sizeof(staging)), 0);
    blobstore_path(&bs, d, path, sizeof(path));
    snprintf(expect, sizeof(expect), "%s/blobs/sha256/%.2s/%s", dir, digest_hex(d), digest_hex(d));
    CHECK_STR_EQ(path, expect);
    REQUIRE_INT_EQ(stat(path, &st), 0);
    CHECK_INT_EQ(st.st_mode & 0777, 0444);
    CHECK_INT_EQ(st.st_size, 11);
    CHECK_INT_EQ(read_file(path, buf, sizeof(buf)), 11);
    CHECK_STR_EQ(buf, "hello world");
    CHECK_INT_EQ(access(staging, F_OK), -1);
    CHECK_INT_EQ(entries_under("uploads"), 0);
    CHECK_ERR(blobstore_open(&bs, d, &fd, &size), 0);
    CHECK_INT_EQ(size, 11);
    if (fd >= 0)
        close(fd);
}

/* A wrong digest is DIGEST_INVALID: nothing appears under blobs/ and the staging file is removed. */
static void upload_rejects_wrong_digest(void)
{
    const char *chunks[] = {"some ", "bytes", NULL};
    char d[BERTH_DIGEST_MAX], staging[BLOBSTORE_PATH_MAX];
    digest_buf("other bytes", 11, d);
    CHECK_ERR(push(chunks, d, staging, sizeof(staging)), BERR_DIGEST_INVALID);
    CHECK_INT_EQ(entries_under("blobs/sha256"), 0);
    CHECK_INT_EQ(access(staging, F_OK), -1);
    CHECK_INT_EQ(entries_under("uploads"), 0);
    CHECK_ERR(blobstore_open(&bs, d, &(int){-1}, &(uint64_t){0}), BERR_BLOB_UNKNOWN);
}

/* Committing the same content twice succeeds both times, keeps the first file untouched and drops the second
 * staging file. */
static void upload_same_content_twice_is_idempotent(void)
{
    const char *a[] = {"same content", NULL}, *b[] = {"same ", "content", NULL};
    char d[BERTH_DIGEST_MAX], path[BLOBSTORE_PATH_MAX], s1[BLOBSTORE_PATH_MAX], s2[BLOBSTORE_PATH_MAX], buf[64];
    digest_buf("same content", 12, d);
    struct stat first, second;
    CHECK_ERR(push(a, d, s1, sizeof(s1)), 0);
    blobstore_path(&bs, d, path, sizeof(path));
    REQUIRE_INT_EQ(stat(path, &first), 0);
    CHECK_ERR(push(b, d, s2, sizeof(s2)), 0);
    CHECK(strcmp(s1, s2) != 0);
    REQUIRE_INT_EQ(stat(path, &second), 0);
    CHECK_INT_EQ(second.st_ino, first.st_ino); /* the committed file is kept, not replaced */
    CHECK_INT_EQ(read_file(path, buf, sizeof(buf)), 12);
    CHECK_STR_EQ(buf, "same content");
    CHECK_INT_EQ(entries_under("blobs/sha256"), 2); /* one shard directory, one file */
    CHECK_INT_EQ(entries_under("uploads"), 0);
}

/* An empty upload commits the empty blob (the sha256 of ""). */
static void upload_of_nothing_commits_empty_blob(void)
{
    const char *none[] = {NULL};
    char d[BERTH_DIGEST_MAX], staging[BLOBSTORE_PATH_MAX];
    int fd = -1;
    uint64_t size = 99;
    digest_buf("", 0, d);
    CHECK_ERR(push(none, d, staging, sizeof(staging)), 0);
    CHECK_ERR(blobstore_open(&bs, d, &fd, &size), 0);
    CHECK_INT_EQ(size, 0);
    if (fd >= 0)
        close(fd);
}

/* upload_open of an existing staging file rehashes it: the offset is its size and finish verifies all bytes. */
static void upload_reopen_rehashes_staging_file(void)
{
    struct upload *u = NULL;
    char uuid[BERTH_UUID_LEN + 1], d[BERTH_DIGEST_MAX], path[BLOBSTORE_PATH_MAX], buf[64];
    REQUIRE_OK(upload_create(&bs, &u));
    memcpy(uuid, u->uuid, sizeof(uuid));
    CHECK_ERR(upload_append(u, "abc", 3), 0);
    CHECK_INT_EQ(u->size, 3);
    upload_free(u); /* as if the server restarted */
    u = NULL;
    REQUIRE_OK(upload_open(&bs, NULL, uuid, &u));
    CHECK_STR_EQ(u->uuid, uuid);
    CHECK_INT_EQ(u->size, 3);
    CHECK_ERR(upload_append(u, "def", 3), 0);
    CHECK_INT_EQ(u->size, 6);
    digest_buf("abcdef", 6, d);
    CHECK_ERR(upload_finish(&bs, u, d), 0);
    upload_free(u);
    blobstore_path(&bs, d, path, sizeof(path));
    CHECK_INT_EQ(read_file(path, buf, sizeof(buf)), 6);
    CHECK_STR_EQ(buf, "abcdef");
}

/* Reopening a session whose staging file is gone is BLOB_UPLOAD_UNKNOWN; upload_remove deletes a staging file. */
static void upload_open_unknown_session_fails(void)
{
    struct upload *u = NULL;
    char uuid[BERTH_UUID_LEN + 1];
    CHECK_ERR(upload_open(&bs, NULL, "0b6c5a8e-1f3d-4e2a-9c7b-5d4e3f2a1b0c", &u), BERR_BLOB_UPLOAD_UNKNOWN);
    CHECK_NULL(u);
    REQUIRE_OK(upload_create(&bs, &u));
    memcpy(uuid, u->uuid, sizeof(uuid));
    upload_free(u);
    u = NULL;
    CHECK_INT_EQ(entries_under("uploads"), 1);
    upload_remove(&bs, uuid);
    CHECK_INT_EQ(entries_under("uploads"), 0);
    CHECK_ERR(upload_open(&bs, NULL, uuid, &u), BERR_BLOB_UPLOAD_UNKNOWN);
    upload_remove(&bs, uuid); /* absent: no error */
}

/* A session's uuid is canonical: upload_create makes fresh, valid, distinct ones with an empty staging file. */
static void upload_create_makes_valid_distinct_uuids(void)
{
    struct upload *a = NULL, *b = NULL;
    REQUIRE_OK(upload_create(&bs, &a));
    if (upload_create(&bs, &b) == 0) {
        CHECK_ERR(upload_uuid_valid(a->uuid, strlen(a->uuid)), 0);
        CHECK_ERR(upload_uuid_valid(b->uuid, strlen(b->uuid)), 0);
        CHECK(strcmp(a->uuid, b->uuid) != 0);
        CHECK_INT_EQ(a->size, 0);
        CHECK_INT_EQ(entries_under("uploads"), 2);
    } else {
        CHECK(0);
    }
    upload_free(a);
    upload_free(b);
}

/* upload_uuid_valid accepts canonical lowercase UUIDs and rejects uppercase, wrong lengths and path-like text. */
static void uuid_valid_accepts_only_canonical_lowercase(void)
{
    const char *bad[] = {"0B6C5A8E-1F3D-4E2A-9C7B-5D4E3F2A1B0C",
                         "0b6c5a8e-1f3d-4e2a-9c7b-5d4e3f2a1b0",
                         "0b6c5a8e-1f3d-4e2a-9c7b-5d4e3f2a1b0c0",
                         "0b6c5a8e1f3d-4e2a-9c7b-5d4e3f2a1b0c0",
                         "../x",
                         "../../../../../../../../etc/passwd..",
                         "0b6c5a8e-1f3d-4e2a-9c7b/5d4e3f2a1b0c",
                         "0b6c5a8e-1f3d-4e2a-9c7b-5d4e3f2a1b0g",
                         "",
                         "../../..-/../-../.-./..-/../../../.."};
    CHECK_ERR(upload_uuid_valid("0b6c5a8e-1f3d-4e2a-9c7b-5d4e3f2a1b0c", 36), 0);
    for (size_t i = 0; i < CHECK_COUNT(bad); i++)
        CHECK_ERR(upload_uuid_valid(bad[i], strlen(bad[i])), BERR_BLOB_UPLOAD_UNKNOWN);
    CHECK_INT_EQ(strlen(bad[5]), 36); /* the path-like ones have the right length: only their characters are wrong */
    CHECK_INT_EQ(strlen(bad[9]), 36); /* ... and this one has its dashes in place too */
    CHECK_ERR(upload_uuid_valid("0b6c5a8e-1f3d-4e2a-9c7b-5d4e3f2a1b0\0", 36), BERR_BLOB_UPLOAD_UNKNOWN);
}

/* blobstore_open of a digest that was never committed is BLOB_UNKNOWN; blobstore_remove makes a blob unknown. */
static void blobstore_open_and_remove(void)
{
    const char *chunks[] = {"to remove", NULL};
    char d[BERTH_DIGEST_MAX], staging[BLOBSTORE_PATH_MAX];
    int fd = -1;
    uint64_t size;
    digest_buf("to remove", 9, d);
    CHECK_ERR(blobstore_open(&bs, d, &fd, &size), BERR_BLOB_UNKNOWN);
    REQUIRE_ERR(push(chunks, d, staging, sizeof(staging)), 0);
    CHECK_ERR(blobstore_remove(&bs, d), 0);
    CHECK_ERR(blobstore_open(&bs, d, &fd, &size), BERR_BLOB_UNKNOWN);
    CHECK_ERR(blobstore_remove(&bs, d), 0); /* already gone: fine */
}

/* After upload_finish, appending to the session is refused and the committed blob's bytes stay unchanged (run in a
 * child process, since a crash is one way to fail).
 * KNOWN BUG, reported to the lead, left failing on purpose: upload_finish() keeps u->fd open O_RDWR on the file it
 * renamed into blobs/, so upload_append() pwrites into the committed, read-only blob ("finalXX" under the digest
 * of "final"), then calls digest_ctx_update() on the context digest_ctx_final() freed and crashes (SIGSEGV). */
static void upload_rejects_append_after_finish(void)
{
    struct upload *u = NULL;
    char d[BERTH_DIGEST_MAX], path[BLOBSTORE_PATH_MAX], buf[64];
    int status = 0;
    pid_t pid;
    digest_buf("final", 5, d);
    REQUIRE_OK(upload_create(&bs, &u));
    CHECK_ERR(upload_append(u, "final", 5), 0);
    REQUIRE_ERR(upload_finish(&bs, u, d), 0);
    fflush(NULL);
    if ((pid = fork()) == 0)
        _exit(upload_append(u, "XX", 2) != 0 ? 0 : 1);
    REQUIRE(pid > 0);
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    if (WIFEXITED(status))
        CHECK_INT_EQ(WEXITSTATUS(status), 0);
    else
        fprintf(stderr, "  upload_append after finish died with signal %d\n", WTERMSIG(status));
    blobstore_path(&bs, d, path, sizeof(path));
    CHECK_INT_EQ(read_file(path, buf, sizeof(buf)), 5);
    CHECK_STR_EQ(buf, "final");
    upload_free(u);
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(upload_commits_blob_at_digest_path),
        CHECK_TEST(upload_rejects_wrong_digest),
        CHECK_TEST(upload_same_content_twice_is_idempotent),
        CHECK_TEST(upload_of_nothing_commits_empty_blob),
        CHECK_TEST(upload_reopen_rehashes_staging_file),
        CHECK_TEST(upload_open_unknown_session_fails),
        CHECK_TEST(upload_create_makes_valid_distinct_uuids),
        CHECK_TEST(uuid_valid_accepts_only_canonical_lowercase),
        CHECK_TEST(blobstore_open_and_remove),
        CHECK_TEST(upload_rejects_append_after_finish),
    };
    check_before_each = setup;
    check_after_each = teardown;
    log_set_level(LOG_ERROR);
    return check_run(tests, CHECK_COUNT(tests), argc, argv);
}
