/*
 * strbuf.h - a growing, NUL-terminated text buffer (request canonicalization, S3 requests and XML, ECR's JSON
 * answers).  An allocation failure latches `failed`: appends after it do nothing, and the owner checks it once at
 * the end instead of after every append.
 */
#ifndef BERTH_STRBUF_H
#define BERTH_STRBUF_H

#include <stddef.h>

/** Zero-initialize (`struct strbuf b = {0};`); `p` is malloc'd (free it) and NUL-terminated once anything was
 *  added. */
struct strbuf {
    char *p;
    size_t len, cap;
    int failed;
};

/** Appends `s[0..n)` as is. */
void strbuf_add(struct strbuf *b, const char *s, size_t n);
/** Appends the C string `s`. */
void strbuf_str(struct strbuf *b, const char *s);

#endif
