/* test_s3.c - the S3 client (s3.h) against a real endpoint: Ceph RGW started by scripts/ceph (run through
 * tests/storage/s3_client.sh, which exports S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and S3_BUCKET,
 * an existing empty bucket). */
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include "check.h"
#include "defaults.h"
#include "s3.h"

static struct s3 *client;

static int open_client(void)
{
    struct s3_config cfg = {.region = "us-east-1", .path_style = 1};
    const char *e = getenv("S3_ENDPOINT"), *a = getenv("AWS_ACCESS_KEY_ID"), *k = getenv("AWS_SECRET_ACCESS_KEY"),
               *b = getenv("S3_BUCKET");
    if (e == NULL || a == NULL || k == NULL || b == NULL) {
        fprintf(stderr, "S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and S3_BUCKET must be set\n");
        return 1;
    }
    snprintf(cfg.endpoint, sizeof(cfg.endpoint), "%s", e);
    snprintf(cfg.access_key, sizeof(cfg.access_key), "%s", a);
    snprintf(cfg.secret_key, sizeof(cfg.secret_key), "%s", k);
    snprintf(cfg.bucket, sizeof(cfg.bucket), "%s", b);
    return s3_new(&cfg, &client) != 0;
}

static void close_client(void)
{
    s3_free(client);
    client = NULL;
}

struct collect {
    char *p;
    size_t len, cap;
};

static int collect(void *ctx, const void *p, size_t n)
{
    struct collect *c = ctx;
    if (c->len + n > c->cap)
        return BERR_NOMEM;
    memcpy(c->p + c->len, p, n);
    c->len += n;
    return 0;
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

/* An object PUT comes back byte-identical, whole and by range; HEAD gives its size; DELETE removes it. */
static void put_get_head_delete_round_trip(void)
{
    size_t n = 3u << 20;
    char *data = random_bytes(n);
    struct collect c = {.p = malloc(n), .cap = n};
    uint64_t size = 0;
    REQUIRE(data != NULL && c.p != NULL);
    CHECK_ERR(s3_put(client, "t/obj", data, n), 0);
    CHECK_ERR(s3_head(client, "t/obj", &size), 0);
    CHECK_INT_EQ(size, n);
    CHECK_ERR(s3_get(client, "t/obj", 0, 0, collect, &c), 0);
    CHECK_INT_EQ(c.len, n);
    CHECK(memcmp(c.p, data, n) == 0);
    c.len = 0;
    CHECK_ERR(s3_get(client, "t/obj", 1000, 5000, collect, &c), 0);
    CHECK_INT_EQ(c.len, 5000);
    CHECK(memcmp(c.p, data + 1000, 5000) == 0);
    c.len = 0;
    CHECK_ERR(s3_get(client, "t/obj", n - 10, 0, collect, &c), 0);
    CHECK_INT_EQ(c.len, 10);
    CHECK_ERR(s3_get(client, "t/obj", n + 10, 5, collect, &c), BERR_RANGE_UNSATISFIABLE);
    CHECK_ERR(s3_delete(client, "t/obj"), 0);
    CHECK_ERR(s3_head(client, "t/obj", &size), BERR_BLOB_UNKNOWN);
    CHECK_ERR(s3_get(client, "t/obj", 0, 0, collect, &c), BERR_BLOB_UNKNOWN);
    CHECK_ERR(s3_delete(client, "t/obj"), 0); /* absent: still success */
    free(data);
    free(c.p);
}

/* A multipart upload of two 5 MiB parts and a short last one completes into one object; copy duplicates it. */
static void multipart_upload_and_copy(void)
{
    size_t part = BERTH_S3_PART_MIN, n = 2 * part + 12345;
    char *data = random_bytes(n), id[S3_UPLOAD_ID_MAX + 1];
    struct s3_part parts[3];
    struct collect c = {.p = malloc(n), .cap = n};
    uint64_t size = 0;
    REQUIRE(data != NULL && c.p != NULL);
    REQUIRE(s3_mpu_create(client, "t/mpu", id) == 0);
    for (int i = 0; i < 3; i++) {
        size_t off = (size_t)i * part, len = i < 2 ? part : n - off;
        parts[i].number = i + 1;
        CHECK_ERR(s3_mpu_part(client, "t/mpu", id, i + 1, data + off, len, parts[i].etag), 0);
    }
    CHECK_ERR(s3_mpu_complete(client, "t/mpu", id, parts, 3), 0);
    CHECK_ERR(s3_copy(client, "t/mpu", "t/mpu-copy"), 0);
    CHECK_ERR(s3_head(client, "t/mpu-copy", &size), 0);
    CHECK_INT_EQ(size, n);
    CHECK_ERR(s3_get(client, "t/mpu-copy", 0, 0, collect, &c), 0);
    CHECK(c.len == n && memcmp(c.p, data, n) == 0);
    CHECK_ERR(s3_delete(client, "t/mpu"), 0);
    CHECK_ERR(s3_delete(client, "t/mpu-copy"), 0);
    free(data);
    free(c.p);
}

struct seen {
    int n;
    char id[S3_UPLOAD_ID_MAX + 1];
};

static int see_upload(void *ctx, const char *key, const char *upload_id, time_t initiated)
{
    struct seen *s = ctx;
    if (strcmp(key, "t/abandoned") == 0 && strcmp(upload_id, s->id) == 0 && initiated > 0)
        s->n++;
    return 0;
}

/* An abandoned multipart upload is listed, and gone after abort; completing an aborted upload fails. */
static void abandoned_upload_is_listed_and_aborted(void)
{
    struct seen s = {0};
    struct s3_part p = {1, "\"x\""};
    char etag[S3_ETAG_MAX + 1];
    REQUIRE(s3_mpu_create(client, "t/abandoned", s.id) == 0);
    CHECK_ERR(s3_mpu_part(client, "t/abandoned", s.id, 1, "abc", 3, etag), 0);
    CHECK_ERR(s3_mpu_list(client, "t/", see_upload, &s), 0);
    CHECK_INT_EQ(s.n, 1);
    CHECK_ERR(s3_mpu_abort(client, "t/abandoned", s.id), 0);
    s.n = 0;
    CHECK_ERR(s3_mpu_list(client, "t/", see_upload, &s), 0);
    CHECK_INT_EQ(s.n, 0);
    /* S3 answers NoSuchUpload, RGW a 500 "completion already in progress": either way not a success */
    CHECK(s3_mpu_complete(client, "t/abandoned", s.id, &p, 1) != 0);
}

static int count_key(void *ctx, const char *key, uint64_t size, time_t mtime)
{
    (void)key;
    (void)size;
    if (mtime > 1700000000) /* LastModified parsed (a recent date) */
        (*(int *)ctx)++;
    return 0;
}

/* ListObjectsV2 follows continuation tokens past one page (1000 keys) and honours the prefix. */
static void list_follows_pages(void)
{
    char key[64];
    int n = 0, i;
    for (i = 0; i < 1005; i++) {
        snprintf(key, sizeof(key), "l/%04d", i);
        CHECK_ERR(s3_put(client, key, "x", 1), 0);
    }
    CHECK_ERR(s3_put(client, "other", "y", 1), 0);
    CHECK_ERR(s3_list(client, "l/", count_key, &n), 0);
    CHECK_INT_EQ(n, 1005);
    for (i = 0; i < 1005; i++) {
        snprintf(key, sizeof(key), "l/%04d", i);
        s3_delete(client, key);
    }
    s3_delete(client, "other");
}

/* A wrong secret key is refused by the endpoint (SignatureDoesNotMatch -> BERR_IO), never mistaken for success. */
static void wrong_secret_is_refused(void)
{
    struct s3_config cfg = {.region = "us-east-1", .path_style = 1};
    struct s3 *bad = NULL;
    uint64_t size;
    snprintf(cfg.endpoint, sizeof(cfg.endpoint), "%s", getenv("S3_ENDPOINT"));
    snprintf(cfg.access_key, sizeof(cfg.access_key), "%s", getenv("AWS_ACCESS_KEY_ID"));
    snprintf(cfg.secret_key, sizeof(cfg.secret_key), "wrong%s", getenv("AWS_SECRET_ACCESS_KEY"));
    snprintf(cfg.bucket, sizeof(cfg.bucket), "%s", getenv("S3_BUCKET"));
    REQUIRE(s3_new(&cfg, &bad) == 0);
    CHECK_ERR(s3_put(bad, "t/denied", "x", 1), BERR_IO);
    CHECK_ERR(s3_head(client, "t/denied", &size), BERR_BLOB_UNKNOWN);
    s3_free(bad);
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(put_get_head_delete_round_trip),
        CHECK_TEST(multipart_upload_and_copy),
        CHECK_TEST(abandoned_upload_is_listed_and_aborted),
        CHECK_TEST(list_follows_pages),
        CHECK_TEST(wrong_secret_is_refused),
    };
    int rc;
    if (open_client() != 0)
        return 1;
    rc = check_run(tests, CHECK_COUNT(tests), argc, argv);
    close_client();
    return rc;
}
