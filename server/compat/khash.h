/*
 * khash.h - an opaque stand-in for klib's khash.h, which Debian's libh2o-evloop-dev does not install although
 * <h2o/http2_internal.h> includes it.
 *
 * Berth includes http2_internal.h only for the layout of h2o_http2_stream_t (pool.c takes over a stream's request
 * body).  In that header khash appears only as a pointer member (`khash_t(...) *streams`) and inside one static
 * inline function Berth never calls, so opaque declarations keep every struct layout exact.  Nothing here is
 * defined or called: using any of it would fail to link.
 */
#ifndef BERTH_COMPAT_KHASH_H
#define BERTH_COMPAT_KHASH_H

#include <stdint.h>

typedef unsigned int khint_t;
typedef khint_t khiter_t;

#define KHASH_MAP_INIT_INT64(name, vtype)                                                                              \
    typedef struct kh_##name##_s kh_##name##_t;                                                                        \
    khint_t kh_get_##name(const kh_##name##_t *h, int64_t key);
#define khash_t(name) kh_##name##_t
#define kh_get(name, h, k) kh_get_##name(h, k)
#define kh_end(h) berth_khash_end((const void *)(h))
#define kh_val(h, x) berth_khash_val((const void *)(h), (x))

khint_t berth_khash_end(const void *h);
void *berth_khash_val(const void *h, khint_t i);

#endif
