/* s3sign_tool.c - prints what the S3 client (s3.h) would send, for s3sign_botocore.py to compare with botocore:
 *   s3sign_tool head ENDPOINT BUCKET PATH_STYLE METHOD KEY QUERY PAYLOAD_HASH NOW [EXTRA_HEADER_LINE...]
 *   s3sign_tool presign ENDPOINT BUCKET PATH_STYLE KEY NOW EXPIRES
 * Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, the region is us-east-1.  KEY "-" is none. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "s3.h"

static int open_client(char **argv, struct s3 **s)
{
    struct s3_config cfg = {.region = "us-east-1"};
    const char *a = getenv("AWS_ACCESS_KEY_ID"), *k = getenv("AWS_SECRET_ACCESS_KEY");
    if (a == NULL || k == NULL)
        return 1;
    snprintf(cfg.endpoint, sizeof(cfg.endpoint), "%s", argv[0]);
    snprintf(cfg.bucket, sizeof(cfg.bucket), "%s", argv[1]);
    snprintf(cfg.access_key, sizeof(cfg.access_key), "%s", a);
    snprintf(cfg.secret_key, sizeof(cfg.secret_key), "%s", k);
    cfg.path_style = atoi(argv[2]);
    return s3_new(&cfg, s) != 0;
}

int main(int argc, char **argv)
{
    struct s3 *s = NULL;
    static char out[65536];
    int rc;
    if (argc >= 10 && strcmp(argv[1], "head") == 0 && open_client(argv + 2, &s) == 0) {
        const char *key = strcmp(argv[6], "-") == 0 ? NULL : argv[6];
        rc = s3_sign_head(s, argv[5], key, argv[7], (const char *const *)argv + 10, (size_t)(argc - 10), argv[8], 0,
                          (time_t)atoll(argv[9]), out, sizeof(out));
    } else if (argc == 8 && strcmp(argv[1], "presign") == 0 && open_client(argv + 2, &s) == 0) {
        rc = s3_presign_get(s, argv[5], (time_t)atoll(argv[6]), atol(argv[7]), out, sizeof(out));
    } else {
        fprintf(stderr, "usage: see the comment at the top of s3sign_tool.c\n");
        return 2;
    }
    s3_free(s);
    if (rc < 0)
        return 1;
    fputs(out, stdout);
    return 0;
}
