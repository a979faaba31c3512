/*
 * s3_internal.h - what storage/s3.c (the calls) shares with storage/s3_conn.c (the transport), and nothing else.
 * Functions named s3__* are internal to these two files; s3.h is the public face.
 */
#ifndef BERTH_S3_INTERNAL_H
#define BERTH_S3_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>
#include "httpc.h"
#include "s3.h"
#include "strbuf.h"

#define EXTRA_MAX 4 /* extra signed headers of one request */

struct s3 {
    struct s3_config cfg;
    SSL_CTX *tls;                   /* https endpoints: peer verified against the system's CA store */
    struct httpc_url url;           /* parsed endpoint */
    char host[HTTPC_HOST_MAX + 80]; /* the Host header: authority, with the bucket first when virtual-hosted */
    unsigned id;                    /* tells this client's cached connections from another's */
    struct s3 *older;               /* the client this one replaced (s3_retire), freed with it */
};

/* One request and, once s3__exchange returned, its answer. */
struct call {
    const char *method;
    const char *key;   /* NULL: the bucket */
    const char *query; /* encoded, "" for none */
    const char *extra[EXTRA_MAX];
    size_t nextra;
    const void *body;
    size_t body_len;
    int sign_body; /* the real SHA-256 instead of UNSIGNED-PAYLOAD */
    int (*sink)(void *ctx, const void *p, size_t n);
    void *ctx;
    /* results */
    int status;
    uint64_t length;
    char etag[S3_ETAG_MAX + 1];
    struct strbuf text; /* a body not given to `sink` (XML answers, errors), up to BERTH_S3_XML_MAX */
    int sink_rc;
    int cut_tried; /* the fault point s3.get_cut was passed (once per answer) */
};

/** Sends `c` on this thread's connection to `s` (dialled when there is none, re-dialled once when a reused
 *  connection turns out closed) and reads its answer into `c`.  Returns 0 (any status) or a BERR code. */
int s3__exchange(struct s3 *s, struct call *c);

#endif
