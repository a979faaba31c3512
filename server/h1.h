/*
 * h1.h - Berth's own HTTP/1.1 connections (plain and TLS) in front of h2o's request processing (docs/HTTP1.md).
 *
 * Every accepted connection comes here.  TLS is handshaken here; ALPN "h2" and the HTTP/2 prior-knowledge preface
 * go to h2o's HTTP/2 (whose request bodies are capped at max_manifest_size).  Everything else is HTTP/1.1: each
 * request head is read and parsed by http1.h (strict; a malformed head gets a 400 OCI error and the connection
 * closes), turned into an h2o_req_t, and run through h2o_process_request(), so every handler, filter and the access
 * log work as before; responses come back through this file's output stream.  What differs is the body:
 *
 *   - an upload body (POST/PATCH/PUT on /v2/<name>/blobs/uploads/…) is not read when the request is dispatched.
 *     The handler runs after auth_then() allowed it (call->who); when it creates its job (job_new), the job takes the
 *     body stream (h1_req_stream): only then is `100 Continue` sent and the body read, in BERTH_STREAM_CHUNK pieces
 *     handed to the job's thread (h1_stream_each), with the socket paused while the writer is behind.  A refused
 *     request never reads a body byte: the denial is sent and the connection closes (after a bounded linger).
 *   - a manifest PUT body is read into memory (at most max_manifest_size) only after auth_then() allowed it.
 *   - any other body is read into memory up to BERTH_H1_BODY_MAX before dispatch.
 * Concurrent upload bodies are capped in total and per client address (BERTH_UPLOAD_BODIES_*): past the cap the
 * request gets 429 before its body.
 *
 * Threads: connections live on their event loop; a stream is shared by its connection (loop) and its job (a
 * thread of its own), under the stream's lock, and freed by whichever lets go last (both on the loop).
 */
#ifndef BERTH_H1_H
#define BERTH_H1_H

#include "server.h"

struct h1_stream;

/** Takes over an accepted socket (TLS handshake, then HTTP/1.1 here or HTTP/2 in h2o). */
void h1_accept(struct server *srv, h2o_accept_ctx_t *actx, h2o_socket_t *sock);
/** Number of HTTP/1.1 connections open on this thread's loop. */
size_t h1_open_count(void);
/** Graceful stop on this thread: closes idle connections; the others close after their current request. */
void h1_shutdown(void);

/** On the loop, from job_new(): if `call` is an authorized (call->who set by auth_then) upload request of an
 *  HTTP/1.1 connection whose body has not been taken yet, starts reading the body and returns the stream (one
 *  reference for the job), else NULL. */
struct h1_stream *h1_req_stream(const struct call *call);
/** The body length announced by Content-Length, or 0 for a chunked body. */
size_t h1_stream_length(const struct h1_stream *s);
/** On the job's thread: calls `fn(arg, chunk, len)` for successive pieces of the body until its end.  Returns 0, fn's
 *  first non-zero result, BERR_BLOB_TOO_LARGE (a chunked body past max_blob_size) or BERR_BAD_REQUEST (the client
 *  went away or broke the framing): the bytes passed to fn before that stay valid. */
int h1_stream_each(struct h1_stream *s, int (*fn)(void *arg, const void *chunk, size_t len), void *arg);
/** The body bytes of `req` that were streamed to its upload job (0 for any other request): these never appear in
 *  req->entity, so the request metrics add them (observe.c). */
uint64_t h1_req_streamed(h2o_req_t *req);
/** On the loop: drops the job's reference. */
void h1_stream_release(struct h1_stream *s);

#endif
