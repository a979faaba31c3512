/*
 * authhdr.h - the Authorization header's credentials: "Basic base64(user:password)" or "Bearer <token>".
 *
 * Pure (libsodium's base64 only): no h2o, no I/O, so that a unit test and a fuzz target call it directly; the auth
 * gate (server/auth.c) reads the header and hands its bytes here.  Scheme names are case-insensitive and followed
 * by one or more spaces; trailing spaces are ignored.  The user name may hold a NUL byte: callers check `ulen`.
 */
#ifndef BERTH_AUTHHDR_H
#define BERTH_AUTHHDR_H

#include <stddef.h>
#include "defaults.h"

enum authhdr_kind {
    AUTHHDR_NONE,      /* no Authorization header */
    AUTHHDR_BASIC,     /* user, ulen, pass, plen are set */
    AUTHHDR_BEARER,    /* token, token_len point into the header value */
    AUTHHDR_MALFORMED, /* a header that is neither */
};

struct authhdr {
    enum authhdr_kind kind;
    char user[BERTH_AUTH_NAME_MAX + 2]; /* NUL-terminated; may hold a NUL before ulen */
    size_t ulen;
    char pass[BERTH_AUTH_PASSWORD_MAX + 1]; /* not NUL-terminated: plen bytes */
    size_t plen;
    const char *token; /* into the caller's header value */
    size_t token_len;
};

/** Parses the Authorization header value `v[0..len)` (`v` NULL: no header) into `out`.  A Basic user name of more
 *  than BERTH_AUTH_NAME_MAX + 1 bytes or a password of more than BERTH_AUTH_PASSWORD_MAX bytes is MALFORMED.
 *  Wipe `out` with authhdr_clear() once the secret is no longer needed. */
void authhdr_parse(const char *v, size_t len, struct authhdr *out);

/** Wipes the password held in `a`. */
void authhdr_clear(struct authhdr *a);

#endif
