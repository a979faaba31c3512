/* sigv4_check.c - verifies one request described as JSON on stdin with sigv4_verify() and prints the result
 * ("OK" or a SIGV4_E* name).  Driven by sigv4_botocore.py, which signs requests with botocore's SigV4Auth:
 *   {"method":"POST","path":"/","query":"","headers":[["Host","h:1"],…],"body":"…","secret":"…",
 *    "region":"us-east-1","service":"ecr","now":1700000000} */
#include <stdio.h>
#include <string.h>
#include <jansson.h>
#include "sigv4.h"

#define CHECK_MAX_HEADERS 64

int main(void)
{
    json_error_t jerr;
    json_t *in = json_loadf(stdin, 0, &jerr), *hs;
    struct sigv4_header h[CHECK_MAX_HEADERS];
    struct sigv4_auth auth;
    char hash[SIGV4_HEX_LEN + 1];
    const char *authz = NULL, *body;
    size_t n = 0, i;
    json_t *pair;
    if (in == NULL || (hs = json_object_get(in, "headers")) == NULL) {
        fprintf(stderr, "bad input: %s\n", jerr.text);
        return 2;
    }
    json_array_foreach(hs, i, pair)
    {
        const char *name = json_string_value(json_array_get(pair, 0)), *v = json_string_value(json_array_get(pair, 1));
        if (n == CHECK_MAX_HEADERS || name == NULL || v == NULL)
            return 2;
        if (strcasecmp(name, "authorization") == 0) {
            authz = v;
            continue;
        }
        h[n++] = (struct sigv4_header){name, strlen(name), v, strlen(v)};
    }
    body = json_string_value(json_object_get(in, "body"));
    sigv4_sha256_hex(body, strlen(body), hash);
    const char *path = json_string_value(json_object_get(in, "path")),
               *query = json_string_value(json_object_get(in, "query")),
               *secret = json_string_value(json_object_get(in, "secret"));
    struct sigv4_request req = {
        json_string_value(json_object_get(in, "method")), path, strlen(path), query, strlen(query), h, n, hash, 1};
    int rc = authz ? sigv4_parse_authorization(authz, strlen(authz), &auth) : SIGV4_EMALFORMED;
    if (rc == 0)
        rc = sigv4_verify(&req, &auth, secret, strlen(secret), json_string_value(json_object_get(in, "region")),
                          json_string_value(json_object_get(in, "service")),
                          (time_t)json_integer_value(json_object_get(in, "now")));
    printf("%s\n", sigv4_strerror(rc));
    json_decref(in);
    return 0;
}
