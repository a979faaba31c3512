/* test_s3upload.c - upload sessions on S3 (s3upload.h through upload.h) against real Ceph RGW, with a real berth.db
 * and writer: state saved and continued by another load, a stale copy refused, a wrong digest aborting the
 * multipart upload, expiry of idle sessions and of multipart uploads no state names.  Run by s3_client.sh. */
#include <openssl/sha.h>
#include <sqlite3.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include "blobstore.h"
#include "check.h"
#include "dbfix.h"
#include "gc.h"
#include "meta.h"
#include "s3.h"
#include "s3upload.h"
#include "upload.h"
#include "writer.h"

static struct blobstore bs;
static int test_no;

static int setup(void)
{
    struct s3_config cfg = {.region = "us-east-1", .path_style = 1};
    char prefix[32];
    if (dbfix_setup() != 0 || blobstore_init(&bs, dir) != 0 || writer_start(dir) != 0)
        return -1;
    snprintf(cfg.endpoint, sizeof(cfg.endpoint), "%s", getenv("S3_ENDPOINT"));
    snprintf(cfg.access_key, sizeof(cfg.access_key), "%s", getenv("AWS_ACCESS_KEY_ID"));
    snprintf(cfg.secret_key, sizeof(cfg.secret_key), "%s", getenv("AWS_SECRET_ACCESS_KEY"));
    snprintf(cfg.bucket, sizeof(cfg.bucket), "%s", getenv("S3_BUCKET"));
    snprintf(prefix, sizeof(prefix), "up%d-%d", (int)getpid(), ++test_no);
    return blobstore_use_s3(&bs, &cfg, prefix, 0);
}

static void teardown(void)
{
    blobstore_release(&bs);
    writer_stop();
    dbfix_teardown();
}

static char *random_bytes(size_t n)
{
    char *p = malloc(n);
    for (size_t got = 0; p != NULL && got < n;) {
        ssize_t r = getrandom(p + got, n - got > 65536 ? 65536 : n - got, 0);
        if (r > 0)
            got += (size_t)r;
    }
    return p;
}

static void digest_of(const char *p, size_t n, char out[BERTH_DIGEST_MAX])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)p, n, md);
    strcpy(out, "sha256:");
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

static int add_row(struct db *d, void *uuid)
{
    return meta_upload_add(d, uuid, "team/app");
}

static int forget_row(struct db *d, void *uuid)
{
    return upload_forget(&bs, d, uuid);
}

/* A new session with its row (as POST makes it). */
static struct upload *new_session(void)
{
    struct upload *u = NULL;
    if (upload_create(&bs, &u) != 0 || writer_run(add_row, u->uuid) != 0)
        return NULL;
    return u;
}

static int count_mpu(void *ctx, const char *key, const char *id, time_t initiated)
{
    (void)key;
    (void)id;
    (void)initiated;
    (*(int *)ctx)++;
    return 0;
}

/* Multipart uploads in progress under this test's prefix. */
static int mpus(void)
{
    int n = 0;
    if (s3_mpu_list(bs.s3, bs.s3_prefix, count_mpu, &n) != 0)
        return -1;
    return n;
}

static int state_rows(void)
{
    sqlite3_stmt *st;
    int n = -1;
    if (sqlite3_prepare_v2(db->h, "SELECT count(*) FROM upload_s3", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

struct collect {
    char *p;
    size_t len, cap;
};

static int collect(void *ctx, const void *p, size_t n)
{
    struct collect *c = ctx;
    if (c->len + n > c->cap)
        return BERR_IO;
    memcpy(c->p + c->len, p, n);
    c->len += n;
    return 0;
}

/* A session saved after 6 MiB + 100 bytes (one part, a short tail) is continued by a fresh load (another node),
 * finishes into a blob object with the exact bytes, and leaves no state row and no multipart upload. */
static void session_continues_from_saved_state(void)
{
    size_t a = (6u << 20) + 100, n = a + (3u << 20) + 7;
    char *data = random_bytes(n), digest[BERTH_DIGEST_MAX], uuid[BERTH_UUID_LEN + 1];
    struct upload *u = new_session(), *v = NULL;
    struct collect c = {.p = malloc(n), .cap = n};
    REQUIRE(data != NULL && u != NULL && c.p != NULL);
    snprintf(uuid, sizeof(uuid), "%s", u->uuid);
    digest_of(data, n, digest);
    CHECK_ERR(upload_append(u, data, a), 0);
    CHECK_ERR(upload_sync(u), 0);
    upload_free(u);
    CHECK_INT_EQ(state_rows(), 1);
    CHECK_INT_EQ(mpus(), 1);
    REQUIRE_OK(upload_open(&bs, db, uuid, &v));
    CHECK_INT_EQ(v->size, a);
    CHECK_ERR(upload_append(v, data + a, n - a), 0);
    CHECK_ERR(upload_finish(&bs, v, digest), 0);
    upload_free(v);
    CHECK_INT_EQ(state_rows(), 1); /* the blob's commit deletes it (upload_forget) */
    CHECK_ERR(writer_run(forget_row, uuid), 0);
    CHECK_ERR(blobstore_read(&bs, digest, 0, 0, collect, &c), 0);
    CHECK(c.len == n && memcmp(c.p, data, n) == 0);
    CHECK_INT_EQ(state_rows(), 0);
    CHECK_INT_EQ(mpus(), 0);
    free(data);
    free(c.p);
}

/* Two copies of one session's state: the first save wins, the stale one is refused. */
static void stale_copy_is_refused(void)
{
    struct upload *u = new_session(), *x = NULL, *y = NULL;
    char uuid[BERTH_UUID_LEN + 1];
    REQUIRE(u != NULL);
    snprintf(uuid, sizeof(uuid), "%s", u->uuid);
    CHECK_ERR(upload_append(u, "abc", 3), 0);
    CHECK_ERR(upload_sync(u), 0);
    upload_free(u);
    REQUIRE_OK(upload_open(&bs, db, uuid, &x));
    REQUIRE_OK(upload_open(&bs, db, uuid, &y));
    CHECK_ERR(upload_append(x, "def", 3), 0);
    CHECK_ERR(upload_append(y, "XYZ", 3), 0);
    CHECK_ERR(upload_sync(x), 0);
    CHECK_ERR(upload_sync(y), BERR_BLOB_UPLOAD_INVALID);
    upload_free(x);
    upload_free(y);
    REQUIRE_OK(upload_open(&bs, db, uuid, &x));
    CHECK_INT_EQ(x->size, 6);
    upload_remove(&bs, uuid);
    upload_free(x);
    CHECK_INT_EQ(state_rows(), 0);
}

/* A wrong digest is refused after the parts were sent: the multipart upload is aborted, no blob object made. */
static void wrong_digest_aborts_the_multipart_upload(void)
{
    size_t n = 9u << 20;
    char *data = random_bytes(n), digest[BERTH_DIGEST_MAX];
    struct upload *u = new_session();
    REQUIRE(data != NULL && u != NULL);
    digest_of("other", 5, digest);
    CHECK_ERR(upload_append(u, data, n), 0);
    CHECK_INT_EQ(mpus(), 1);
    CHECK_ERR(upload_finish(&bs, u, digest), BERR_DIGEST_INVALID);
    upload_free(u);
    CHECK_INT_EQ(mpus(), 0);
    CHECK_INT_EQ(blobstore_exists(&bs, digest), 0);
    free(data);
}

static int held_none(void *ctx, const char *uuid)
{
    (void)ctx;
    (void)uuid;
    return 0;
}

static int held_all(void *ctx, const char *uuid)
{
    (void)ctx;
    (void)uuid;
    return 1;
}

/* A multipart upload is named in the session's row before its first part is sent (so that expiry never takes it
 * for an orphan, however long the request streams); freeing the state touches nothing, removing the session aborts
 * it and drops the row. */
static void multipart_upload_is_named_before_its_first_part(void)
{
    size_t n = 9u << 20;
    char *data = random_bytes(n), uuid[BERTH_UUID_LEN + 1];
    struct upload *u = NULL;
    REQUIRE(data != NULL);
    REQUIRE_OK(upload_create(&bs, &u));
    snprintf(uuid, sizeof(uuid), "%s", u->uuid);
    CHECK_INT_EQ(state_rows(), 0);
    CHECK_ERR(upload_append(u, data, n), 0); /* one 5 MiB part sent, 4 MiB buffered, nothing saved */
    CHECK_INT_EQ(mpus(), 1);
    CHECK_INT_EQ(state_rows(), 1);
    CHECK_INT_EQ(s3upload_expire(&bs, time(NULL) + 10, held_all, NULL), 0); /* named: not an orphan */
    CHECK_INT_EQ(mpus(), 1);
    upload_free(u);
    CHECK_INT_EQ(mpus(), 1);
    REQUIRE_OK(upload_open(&bs, db, uuid, &u));
    CHECK_INT_EQ(u->size, 0); /* the row keeps the last saved state: nothing */
    upload_free(u);
    upload_remove(&bs, uuid);
    CHECK_INT_EQ(mpus(), 0);
    CHECK_INT_EQ(state_rows(), 0);
    free(data);
}

/* Expiry removes idle sessions (state, row, multipart upload) unless held, and aborts multipart uploads that no
 * saved state names. */
static void expiry_removes_idle_sessions_and_orphans(void)
{
    size_t n = 9u << 20;
    char *data = random_bytes(n), key[BLOBSTORE_PATH_MAX], id[S3_UPLOAD_ID_MAX + 1];
    struct upload *u = new_session();
    char uuid[BERTH_UUID_LEN + 1];
    REQUIRE(data != NULL && u != NULL);
    snprintf(uuid, sizeof(uuid), "%s", u->uuid);
    CHECK_ERR(upload_append(u, data, n), 0);
    CHECK_ERR(upload_sync(u), 0);
    upload_free(u);
    blobstore_upload_key(&bs, "00000000-0000-4000-8000-000000000000", key, sizeof(key));
    REQUIRE_OK(s3_mpu_create(bs.s3, key, id)); /* a crash between a part and its state */
    CHECK_INT_EQ(mpus(), 2);
    CHECK_INT_EQ(s3upload_expire(&bs, time(NULL) + 10, held_all, NULL), 0);
    CHECK_INT_EQ(mpus(), 2);
    CHECK_INT_EQ(s3upload_expire(&bs, time(NULL) - 3600, held_none, NULL), 0); /* nothing that old */
    CHECK_INT_EQ(mpus(), 2);
    CHECK_INT_EQ(s3upload_expire(&bs, time(NULL) + 10, held_none, NULL), 1);
    CHECK_INT_EQ(mpus(), 0);
    CHECK_INT_EQ(state_rows(), 0);
    CHECK_ERR(meta_upload_find(db, uuid, "team/app"), BERR_BLOB_UPLOAD_UNKNOWN);
    free(data);
}

/* GC on S3: an object without a row survives while younger than the grace period and is deleted after it (the
 * bucket is listed); a blob row nothing references is collected with its object. */
static void gc_sweeps_objects_without_rows(void)
{
    char orphan[BERTH_DIGEST_MAX], kept[BERTH_DIGEST_MAX], key[BLOBSTORE_PATH_MAX];
    struct gc_opts go = {.now = time(NULL), .grace = 3600};
    struct gc_stats st;
    digest_of("orphan", 6, orphan);
    digest_of("unreferenced", 12, kept);
    blobstore_key(&bs, orphan, key, sizeof(key));
    REQUIRE_OK(s3_put(bs.s3, key, "orphan", 6));
    blobstore_key(&bs, kept, key, sizeof(key));
    REQUIRE_OK(s3_put(bs.s3, key, "unreferenced", 12));
    REQUIRE_OK(db_begin(db));
    REQUIRE_OK(meta_blob_commit(db, "team/app", kept, 12));
    REQUIRE_OK(db_commit(db));
    CHECK_ERR(gc_run(db, &bs, &go, NULL, NULL, &st), 0);
    CHECK_INT_EQ(blobstore_exists(&bs, orphan), 1); /* younger than the grace period */
    CHECK_INT_EQ(blobstore_exists(&bs, kept), 1);
    go.now = time(NULL) + 7200;
    CHECK_ERR(gc_run(db, &bs, &go, NULL, NULL, &st), 0);
    CHECK_INT_EQ(blobstore_exists(&bs, orphan), 0);
    CHECK_INT_EQ(blobstore_exists(&bs, kept), 0);
    CHECK_INT_EQ(st.orphan_files, 1);
    CHECK_INT_EQ(st.blobs_deleted, 1);
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(session_continues_from_saved_state),
        CHECK_TEST(stale_copy_is_refused),
        CHECK_TEST(wrong_digest_aborts_the_multipart_upload),
        CHECK_TEST(multipart_upload_is_named_before_its_first_part),
        CHECK_TEST(expiry_removes_idle_sessions_and_orphans),
        CHECK_TEST(gc_sweeps_objects_without_rows),
    };
    if (getenv("S3_ENDPOINT") == NULL || getenv("S3_BUCKET") == NULL) {
        fprintf(stderr, "S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and S3_BUCKET must be set\n");
        return 1;
    }
    check_before_each = setup;
    check_after_each = teardown;
    return check_run(tests, CHECK_COUNT(tests), argc, argv);
}
