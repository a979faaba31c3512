/* test_s3sign.c - the S3 client's signing side (s3.h over sigv4.h) against the examples AWS publishes in the S3 API
 * reference ("Signature Calculations for the Authorization Header" and "Authenticating Requests: Using Query
 * Parameters"): examplebucket, AKIAIOSFODNN7EXAMPLE, 24 May 2013 00:00:00 UTC, us-east-1. */
#include <string.h>
#include "check.h"
#include "s3.h"
#include "sigv4.h"

#define CHECKM(c, ...) CHECK_((c), (void)0, __VA_ARGS__)
#define EX_TIME 1369353600 /* 20130524T000000Z */
#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static struct s3 *example_client(void)
{
    struct s3_config cfg = {.endpoint = "http://s3.amazonaws.com",
                            .region = "us-east-1",
                            .bucket = "examplebucket",
                            .access_key = "AKIAIOSFODNN7EXAMPLE",
                            .secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                            .path_style = 0};
    struct s3 *s = NULL;
    int rc = s3_new(&cfg, &s);
    CHECK_ERR(rc, 0);
    return s;
}

/* The head carries `want` as its Authorization signature and signs exactly `signed_headers`. */
static void check_head(const char *head, const char *signed_headers, const char *sig)
{
    char want[256];
    snprintf(want, sizeof(want), "SignedHeaders=%s, Signature=%s\r\n", signed_headers, sig);
    CHECKM(strstr(head, want) != NULL, "head lacks \"%s\":\n%s", want, head);
    CHECKM(strstr(head, "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request") != NULL, "%s", head);
}

/* GET /test.txt with Range: bytes=0-9 (AWS's GetObject example). */
static void get_object_example_signs(void)
{
    struct s3 *s = example_client();
    const char *extra[] = {"range: bytes=0-9"};
    char head[8192];
    REQUIRE(s != NULL);
    CHECKM(s3_sign_head(s, "GET", "test.txt", "", extra, 1, EMPTY_SHA, 0, EX_TIME, head, sizeof(head)) > 0, "sign");
    check_head(head, "host;range;x-amz-content-sha256;x-amz-date",
               "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    CHECKM(strncmp(head, "GET /test.txt HTTP/1.1\r\nHost: examplebucket.s3.amazonaws.com\r\n", 62) == 0, "%s", head);
    s3_free(s);
}

/* PUT /test$file.text with Date and x-amz-storage-class (AWS's PutObject example; '$' is percent-encoded). */
static void put_object_example_signs(void)
{
    struct s3 *s = example_client();
    const char *extra[] = {"date: Fri, 24 May 2013 00:00:00 GMT", "x-amz-storage-class: REDUCED_REDUNDANCY"};
    char head[8192];
    REQUIRE(s != NULL);
    CHECKM(s3_sign_head(s, "PUT", "test$file.text", "", extra, 2,
                        "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072", 21, EX_TIME, head,
                        sizeof(head)) > 0,
           "sign");
    check_head(head, "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
               "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
    CHECKM(strncmp(head, "PUT /test%24file.text HTTP/1.1\r\n", 32) == 0, "%s", head);
    CHECKM(strstr(head, "Content-Length: 21\r\n\r\n") != NULL, "%s", head);
    s3_free(s);
}

/* GET /?lifecycle and GET /?max-keys=2&prefix=J on the bucket (AWS's bucket examples). */
static void bucket_examples_sign(void)
{
    struct s3 *s = example_client();
    char head[8192];
    REQUIRE(s != NULL);
    CHECKM(s3_sign_head(s, "GET", NULL, "lifecycle", NULL, 0, EMPTY_SHA, 0, EX_TIME, head, sizeof(head)) > 0, "sign");
    check_head(head, "host;x-amz-content-sha256;x-amz-date",
               "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
    CHECKM(s3_sign_head(s, "GET", NULL, "max-keys=2&prefix=J", NULL, 0, EMPTY_SHA, 0, EX_TIME, head, sizeof(head)) > 0,
           "sign");
    check_head(head, "host;x-amz-content-sha256;x-amz-date",
               "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
    s3_free(s);
}

/* A presigned GET of /test.txt valid 86400 s (AWS's query-string example). */
static void presigned_url_example_signs(void)
{
    struct s3 *s = example_client();
    char url[4096];
    REQUIRE(s != NULL);
    CHECK_ERR(s3_presign_get(s, "test.txt", EX_TIME, 86400, url, sizeof(url)), 0);
    CHECK_STR_EQ(url, "http://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                      "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
                      "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
                      "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    CHECK_ERR(s3_presign_get(s, "test.txt", EX_TIME, 86400, url, 64), BERR_INTERNAL);
    s3_free(s);
}

/* Path-style addressing puts the bucket in the path and keeps the endpoint's port in Host. */
static void path_style_puts_bucket_in_path(void)
{
    struct s3_config cfg = {.endpoint = "http://127.0.0.1:7480",
                            .region = "us-east-1",
                            .bucket = "reg",
                            .access_key = "K",
                            .secret_key = "S",
                            .path_style = 1};
    struct s3 *s = NULL;
    char head[8192];
    REQUIRE(s3_new(&cfg, &s) == 0);
    CHECKM(s3_sign_head(s, "HEAD", "p/blobs/sha256/ab/abcd", "", NULL, 0, SIGV4_UNSIGNED, 0, EX_TIME, head,
                        sizeof(head)) > 0,
           "sign");
    CHECKM(strncmp(head, "HEAD /reg/p/blobs/sha256/ab/abcd HTTP/1.1\r\nHost: 127.0.0.1:7480\r\n", 65) == 0, "%s", head);
    s3_free(s);
}

/* https endpoints are accepted (TLS); other schemes, URLs with a path, and empty buckets or keys are refused. */
static void bad_configs_are_refused(void)
{
    struct s3_config cfg = {.endpoint = "https://s3.example.com",
                            .region = "r",
                            .bucket = "b",
                            .access_key = "K",
                            .secret_key = "S",
                            .path_style = 1};
    struct s3 *s = NULL;
    CHECK_ERR(s3_new(&cfg, &s), 0);
    s3_free(s);
    snprintf(cfg.endpoint, sizeof(cfg.endpoint), "ftp://h:1");
    CHECK_ERR(s3_new(&cfg, &s), BERR_BAD_REQUEST);
    snprintf(cfg.endpoint, sizeof(cfg.endpoint), "http://h:1/x");
    CHECK_ERR(s3_new(&cfg, &s), BERR_BAD_REQUEST);
    snprintf(cfg.endpoint, sizeof(cfg.endpoint), "http://h:1");
    cfg.bucket[0] = '\0';
    CHECK_ERR(s3_new(&cfg, &s), BERR_BAD_REQUEST);
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(get_object_example_signs),       CHECK_TEST(put_object_example_signs),
        CHECK_TEST(bucket_examples_sign),           CHECK_TEST(presigned_url_example_signs),
        CHECK_TEST(path_style_puts_bucket_in_path), CHECK_TEST(bad_configs_are_refused),
    };
    return check_run(tests, CHECK_COUNT(tests), argc, argv);
}
