/*
 * h1_internal.h - what server/h1.c (the HTTP/1.1 connection: heads, lifetime, responses) shares with server/h1_body.c
 * (request bodies, the upload caps and the stream shared with the upload job), and nothing else.  Names with h1__ are
 * internal to these two files; h1.h is the public face.  Everything here runs on the connection's loop.
 */
#ifndef BERTH_H1_INTERNAL_H
#define BERTH_H1_INTERNAL_H

#include <pthread.h>
#include <stdint.h>
#include "http1.h"
#include "router.h"
#include "server.h"

/* What the connection does with the socket's input now. */
enum rstate {
    R_HEAD,   /* reading a request head */
    R_BUF,    /* reading a body into memory */
    R_STREAM, /* reading an upload body into its stream */
    R_IDLE,   /* not reading: the request is being processed */
    R_LINGER  /* discarding input before closing */
};

enum body_kind { B_NONE, B_OTHER, B_MANIFEST, B_UPLOAD };

struct h1_conn {
    h2o_conn_t super;
    h2o_socket_t *sock;
    h2o_accept_ctx_t *actx;
    h2o_linklist_t link;
    h2o_timeout_entry_t timeout;
    h2o_timeout_entry_t rate_timer; /* the body's minimum rate, checked every BERTH_H1_BODY_RATE_WINDOW */
    uint64_t window_bytes;          /* body bytes read in the current window */
    int window_paused;              /* Berth stopped reading during the window (the job was behind) */
    enum rstate rstate;
    enum body_kind kind;
    uint64_t served; /* requests answered on this connection */
    size_t head_len; /* head bytes still at the start of sock->input (0 once consumed) */
    int has_body, body_done, sent_continue, sent_headers, gate_sync, gate_allowed, holds_slot, closing;
    size_t linger_bytes;
    uint64_t streamed; /* body bytes of the current request streamed to its upload job (h1_req_streamed) */
    uint8_t addr[16];  /* client address, for the per-address cap */
    struct http1_request head;
    struct http1_chunked chunked;
    uint64_t body_left; /* Content-Length bytes not read yet */
    char *buf;          /* a buffered body */
    size_t buf_len, buf_cap, buf_max;
    struct h1_stream *stream;
    struct route rt;
    h2o_ostream_t ostr;
    h2o_req_t req; /* last: large */
};

struct h1_stream {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int refs;   /* conn + job + a queued notification */
    char *slot; /* a full buffer for the job (NULL: free) */
    size_t slot_len;
    char *returned; /* a buffer the job is done with */
    char *tail;     /* the last bytes before a failure: for the job after `slot` (under lock) */
    size_t tail_len;
    int eof, failed, fail_code; /* set by the loop */
    int consumer_done;          /* set by the job: it stopped taking data */
    int notify_pending;
    h2o_multithread_message_t msg; /* job -> loop: a buffer came back / the job stopped */
    h2o_multithread_receiver_t *receiver;
    /* loop only */
    struct h1_conn *conn; /* NULL once the connection let go */
    char *fill;           /* the buffer being filled */
    size_t fill_len;
    uint64_t received, limit, length;
    int keep_tail; /* a PATCH: on a hang-up, the partial last buffer is written too */
};

struct h1_thread {
    int ready;
    struct server *srv;
    h2o_context_t *ctx;
    h2o_linklist_t conns;
    size_t n;
    h2o_multithread_receiver_t receiver;
    h2o_timeout_t handshake_timeout, linger_timeout, head_timeout, rate_timeout;
};

/** This thread's loop state (h1.c). */
extern _Thread_local struct h1_thread h1__th;
/** The callbacks of every connection of h1.c: they tell its h2o_conn_t from one of h2o's own (HTTP/2). */
extern const h2o_conn_callbacks_t h1__callbacks;

/* h1.c: the connection */
/** Arms the connection's timeout on `t` (NULL: none), replacing the one armed before. */
void h1__set_timeout(struct h1_conn *c, h2o_timeout_t *t);
/** Closes the connection and frees it, with its request state. */
void h1__close_conn(struct h1_conn *c);
/** Answers `err` as an OCI error (with `detail`, or NULL) and closes the connection after it. */
void h1__fail_request(struct h1_conn *c, int err, const char *detail);
/** Stops reading and runs the request through h2o_process_request(). */
void h1__dispatch(struct h1_conn *c);
/** The socket's read callback: its input goes where the connection's state (c->rstate) says. */
void h1__on_read(h2o_socket_t *sock, const char *err);

/* h1_body.c: request bodies */
/** Gives back the upload-body slot of address `a` that h1__begin_upload took. */
void h1__caps_give(const uint8_t *a);
/** Drops one reference to `s`; the last one frees it. */
void h1__stream_unref(struct h1_stream *s);
/** Loop side: the body cannot continue (client gone, framing broken, too large): the job gets `code`. */
void h1__stream_fail(struct h1_stream *s, int code);
/** Reads a body of at most `max` bytes into memory, then dispatches (or answers the error). */
void h1__start_buffered(struct h1_conn *c, size_t max);
/** An upload: takes a slot of the caps (or answers 429) and dispatches; its body is read once the handler's job
 *  asks (h1_req_stream). */
void h1__begin_upload(struct h1_conn *c);
/** Drops `n` bytes from the start of the socket's input (none when `n` is 0). */
void h1__consume(struct h1_conn *c, size_t n);
/** Takes the body bytes in the socket's input, in state R_BUF or R_STREAM. */
void h1__feed(struct h1_conn *c);
/** The loop's receiver of stream notifications: a job took a buffer or stopped. */
void h1__on_stream_messages(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);

#endif
