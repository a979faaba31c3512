/* h1_body.c - request bodies of h1.c's connections: the caps on concurrent upload bodies, a body read into memory,
 * and an upload body streamed to its job through the h1_stream shared with it (h1.h). */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "defaults.h"
#include "err.h"
#include "h1.h"
#include "h1_internal.h"
#include "http1.h"
#include "log.h"

/* caps on concurrent upload bodies (all loops) */
static struct {
    pthread_mutex_t lock;
    int total;
    struct {
        uint8_t addr[16];
        int n;
    } slots[BERTH_UPLOAD_ADDR_SLOTS];
} caps = {.lock = PTHREAD_MUTEX_INITIALIZER};

static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";

/* ---- caps ---- */

static unsigned addr_hash(const uint8_t *a)
{
    unsigned h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ a[i]) * 16777619u;
    return h % BERTH_UPLOAD_ADDR_SLOTS;
}

/* Takes an upload-body slot for address `a`.  Returns 0 or BERR_TOO_MANY_REQUESTS. */
static int caps_take(const uint8_t *a)
{
    unsigned i = addr_hash(a), free_i = BERTH_UPLOAD_ADDR_SLOTS;
    int rc = BERR_TOO_MANY_REQUESTS;
    pthread_mutex_lock(&caps.lock);
    for (unsigned k = 0; k < BERTH_UPLOAD_ADDR_SLOTS; k++, i = (i + 1) % BERTH_UPLOAD_ADDR_SLOTS) {
        if (caps.slots[i].n > 0 && memcmp(caps.slots[i].addr, a, 16) == 0) {
            free_i = i;
            break;
        }
        if (caps.slots[i].n == 0 && free_i == BERTH_UPLOAD_ADDR_SLOTS)
            free_i = i;
    }
    if (free_i < BERTH_UPLOAD_ADDR_SLOTS && caps.total < BERTH_UPLOAD_BODIES_MAX &&
        caps.slots[free_i].n < BERTH_UPLOAD_BODIES_PER_ADDR) {
        memcpy(caps.slots[free_i].addr, a, 16);
        caps.slots[free_i].n++;
        caps.total++;
        rc = 0;
    }
    pthread_mutex_unlock(&caps.lock);
    return rc;
}

void h1__caps_give(const uint8_t *a)
{
    pthread_mutex_lock(&caps.lock);
    for (unsigned k = 0, i = addr_hash(a); k < BERTH_UPLOAD_ADDR_SLOTS; k++, i = (i + 1) % BERTH_UPLOAD_ADDR_SLOTS)
        if (caps.slots[i].n > 0 && memcmp(caps.slots[i].addr, a, 16) == 0) {
            caps.slots[i].n--;
            caps.total--;
            break;
        }
    pthread_mutex_unlock(&caps.lock);
}

/* ---- the stream shared with the job ---- */

static struct h1_stream *stream_new(struct h1_conn *c)
{
    struct h1_stream *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->fill = malloc(BERTH_STREAM_CHUNK)) == NULL) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->refs = 2; /* the connection and the job */
    s->receiver = &h1__th.receiver;
    s->conn = c;
    s->limit = h1__th.srv->cfg.max_blob_size;
    s->length = c->head.chunked ? 0 : c->head.content_length;
    s->keep_tail = h2o_memis(c->req.input.method.base, c->req.input.method.len, H2O_STRLIT("PATCH"));
    return s;
}

void h1__stream_unref(struct h1_stream *s)
{
    int left;
    pthread_mutex_lock(&s->lock);
    left = --s->refs;
    pthread_mutex_unlock(&s->lock);
    if (left > 0)
        return;
    free(s->slot);
    free(s->tail);
    free(s->returned);
    free(s->fill);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}

/* Job side, lock held: tells the loop that something changed. */
static void stream_notify(struct h1_stream *s)
{
    if (s->notify_pending)
        return;
    s->notify_pending = 1;
    s->refs++;
    h2o_multithread_send_message(s->receiver, &s->msg);
}

/* Loop side: hands the filled buffer to the job if its slot is free (with `eof` when the body ended). */
static int stream_handoff(struct h1_stream *s, int eof)
{
    int ok = 0;
    pthread_mutex_lock(&s->lock);
    if (s->slot == NULL) {
        if (s->fill_len > 0) {
            s->slot = s->fill;
            s->slot_len = s->fill_len;
            s->fill = s->returned; /* reuse a buffer the job gave back, if any */
            s->returned = NULL;
            s->fill_len = 0;
        }
        s->eof = eof;
        pthread_cond_signal(&s->cond);
        ok = 1;
    }
    pthread_mutex_unlock(&s->lock);
    if (ok && s->fill == NULL && !eof && (s->fill = malloc(BERTH_STREAM_CHUNK)) == NULL)
        ok = 0;
    return ok;
}

/* Loop side: the body cannot continue (client gone, framing broken, too large). */
void h1__stream_fail(struct h1_stream *s, int code)
{
    pthread_mutex_lock(&s->lock);
    if (!s->eof && !s->failed) {
        s->failed = 1;
        s->fail_code = code;
        /* a PATCH whose client went away: what arrived is written too, and the session resumes after it (a broken
         * or oversized body, or a PUT, is not completed with its last partial buffer) */
        if (code == BERR_BAD_REQUEST && s->keep_tail && s->fill_len > 0) {
            s->tail = s->fill;
            s->tail_len = s->fill_len;
            s->fill = NULL;
            s->fill_len = 0;
        }
    }
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

int h1_stream_each(struct h1_stream *s, int (*fn)(void *arg, const void *chunk, size_t len), void *arg)
{
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        char *take;
        size_t len;
        while (s->slot == NULL && !s->eof && !s->failed)
            pthread_cond_wait(&s->cond, &s->lock);
        if (s->slot == NULL && s->tail != NULL) {
            s->slot = s->tail;
            s->slot_len = s->tail_len;
            s->tail = NULL;
        }
        if (s->slot == NULL) {
            rc = s->failed ? s->fail_code : 0;
            break;
        }
        take = s->slot;
        len = s->slot_len;
        s->slot = NULL;
        stream_notify(s); /* the slot is free again: the loop may read on */
        pthread_mutex_unlock(&s->lock);
        rc = fn(arg, take, len);
        pthread_mutex_lock(&s->lock);
        if (s->returned == NULL)
            s->returned = take;
        else
            free(take);
        if (rc != 0)
            break;
    }
    s->consumer_done = 1;
    stream_notify(s);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

size_t h1_stream_length(const struct h1_stream *s)
{
    return (size_t)s->length;
}

void h1_stream_release(struct h1_stream *s)
{
    if (s != NULL)
        h1__stream_unref(s);
}

/* ---- starting a body ---- */

static void on_continue_sent(h2o_socket_t *sock, const char *err)
{
    struct h1_conn *c = sock->data;
    if (err != NULL) {
        h1__close_conn(c);
        return;
    }
    h2o_socket_read_start(sock, h1__on_read);
    h1__feed(c);
}

/* Starts reading the body in state `st` (R_BUF or R_STREAM), after `100 Continue` if the client waits for it. */
static void start_body(struct h1_conn *c, enum rstate st)
{
    c->rstate = st;
    if (c->head.chunked)
        http1_chunked_init(&c->chunked);
    c->body_left = c->head.chunked ? 0 : c->head.content_length;
    h1__set_timeout(c, &c->super.ctx->http1.req_timeout);
    if (h2o_timeout_is_linked(&c->rate_timer))
        h2o_timeout_unlink(&c->rate_timer);
    c->window_bytes = 0;
    c->window_paused = 0;
    h2o_timeout_link(c->super.ctx->loop, &h1__th.rate_timeout, &c->rate_timer);
    if (c->head.expect_continue && !c->sent_continue) {
        h2o_iovec_t line = h2o_iovec_init(continue_line, sizeof(continue_line) - 1);
        c->sent_continue = 1;
        c->window_paused = 1;
        h2o_socket_read_stop(c->sock);
        h2o_socket_write(c->sock, &line, 1, on_continue_sent);
        return;
    }
    h2o_socket_read_start(c->sock, h1__on_read);
    h1__feed(c);
}

/* Reads a body of at most `max` bytes into memory, then dispatches. */
void h1__start_buffered(struct h1_conn *c, size_t max)
{
    c->buf_max = max;
    if (!c->head.chunked && c->head.content_length > max) {
        h1__fail_request(c, c->kind == B_MANIFEST ? BERR_MANIFEST_TOO_LARGE : BERR_BLOB_TOO_LARGE,
                         c->kind == B_MANIFEST ? "the manifest is larger than max_manifest_size"
                                               : "the request body is larger than the limit");
        return;
    }
    c->buf_cap = c->head.chunked ? (max < 65536 ? max : 65536) : (size_t)c->head.content_length;
    if ((c->buf = malloc(c->buf_cap > 0 ? c->buf_cap : 1)) == NULL) {
        h1__fail_request(c, BERR_NOMEM, NULL);
        return;
    }
    start_body(c, R_BUF);
}

/* An upload: capped per address and in total; its body is read once the handler's job asks (h1_req_stream). */
void h1__begin_upload(struct h1_conn *c)
{
    if (!c->head.chunked && c->head.content_length > h1__th.srv->cfg.max_blob_size) {
        h1__fail_request(c, BERR_BLOB_TOO_LARGE, NULL);
        return;
    }
    if (caps_take(c->addr) != 0) {
        log_warn("upload refused: too many concurrent upload bodies (cap %d in total, %d per address)",
                 BERTH_UPLOAD_BODIES_MAX, BERTH_UPLOAD_BODIES_PER_ADDR);
        h1__fail_request(c, BERR_TOO_MANY_REQUESTS, "too many concurrent uploads");
        return;
    }
    c->holds_slot = 1;
    h1__dispatch(c);
}

/* ---- bodies ---- */

/* Drops `n` bytes from the start of the socket's input (h2o asserts on an empty buffer, even for 0). */
void h1__consume(struct h1_conn *c, size_t n)
{
    if (n > 0)
        h2o_buffer_consume(&c->sock->input, n);
}

/*
 * Takes the next body bytes from sock->input: at most `room`.  Returns 1 with `*data[0..*len)` (pointing into the
 * input, to be consumed by the caller with *eat), 0 when the input holds no body bytes now, or a BERR code.
 * Sets c->body_done at the end of the body.
 */
static int next_body_bytes(struct h1_conn *c, size_t room, const char **data, size_t *len, size_t *eat)
{
    h2o_buffer_t *in = c->sock->input;
    if (!c->head.chunked) {
        size_t n = in->size < c->body_left ? in->size : (size_t)c->body_left;
        if (n > room)
            n = room;
        *data = in->bytes;
        *len = *eat = n;
        c->body_left -= n;
        c->window_bytes += n;
        if (c->body_left == 0)
            c->body_done = 1;
        return n > 0;
    }
    for (;;) {
        size_t used = 0, avail;
        int rc;
        in = c->sock->input; /* h1__consume() may have replaced the buffer */
        avail = in->size < room ? in->size : room;
        if (avail == 0)
            return 0;
        rc = http1_chunked_step(&c->chunked, in->bytes, avail, &used, data, len);
        c->window_bytes += used;
        if (rc == HTTP1_CHUNK_DATA) {
            *eat = used;
            return 1;
        }
        h1__consume(c, used);
        if (rc == HTTP1_CHUNK_END) {
            c->body_done = 1;
            *len = *eat = 0;
            return 0;
        }
        if (rc < 0)
            return rc;
        /* HTTP1_CHUNK_MORE: everything consumed */
    }
}

static void feed_buffered(struct h1_conn *c)
{
    const char *d;
    size_t n, eat;
    int rc;
    while (!c->body_done) {
        if ((rc = next_body_bytes(c, SIZE_MAX, &d, &n, &eat)) <= 0) {
            if (rc < 0) {
                h1__fail_request(c, BERR_BAD_REQUEST, "malformed chunked body");
                return;
            }
            break;
        }
        if (c->buf_len + n > c->buf_max) {
            h1__fail_request(c, c->kind == B_MANIFEST ? BERR_MANIFEST_TOO_LARGE : BERR_BLOB_TOO_LARGE, NULL);
            return;
        }
        if (c->buf_len + n > c->buf_cap) {
            size_t cap = c->buf_cap * 2 > c->buf_len + n ? c->buf_cap * 2 : c->buf_len + n;
            char *nb = realloc(c->buf, cap < c->buf_max ? cap : c->buf_max);
            if (nb == NULL) {
                h1__fail_request(c, BERR_NOMEM, NULL);
                return;
            }
            c->buf = nb;
            c->buf_cap = cap < c->buf_max ? cap : c->buf_max;
        }
        memcpy(c->buf + c->buf_len, d, n);
        c->buf_len += n;
        h1__consume(c, eat);
    }
    if (c->body_done) {
        c->req.entity = h2o_iovec_init(c->buf, c->buf_len);
        h1__dispatch(c);
    }
}

/* Moves body bytes into the stream while it has room; pauses the socket when the job is behind. */
static void feed_stream(struct h1_conn *c)
{
    struct h1_stream *s = c->stream;
    const char *d;
    size_t n, eat;
    int rc;
    while (!c->body_done) {
        if (s->fill_len == BERTH_STREAM_CHUNK && !stream_handoff(s, 0)) {
            c->window_paused = 1;
            h2o_socket_read_stop(c->sock); /* resumed by h1__on_stream_messages */
            return;
        }
        rc = next_body_bytes(c, BERTH_STREAM_CHUNK - s->fill_len, &d, &n, &eat);
        if (rc < 0) {
            s->keep_tail = 0; /* broken framing */
            h1__stream_fail(s, BERR_BAD_REQUEST);
            c->rstate = R_IDLE;
            h2o_socket_read_stop(c->sock);
            return;
        }
        if (rc == 0)
            break;
        if (s->received + n > s->limit) {
            h1__stream_fail(s, BERR_BLOB_TOO_LARGE);
            c->rstate = R_IDLE;
            h2o_socket_read_stop(c->sock);
            return;
        }
        memcpy(s->fill + s->fill_len, d, n);
        s->fill_len += n;
        s->received += n;
        c->streamed += n;
        h1__consume(c, eat);
    }
    if (c->body_done) {
        c->rstate = R_IDLE;
        h2o_socket_read_stop(c->sock);
        h1__set_timeout(c, NULL);
        stream_handoff(s, 1); /* if the slot is busy, h1__on_stream_messages retries */
    }
}

void h1__feed(struct h1_conn *c)
{
    if (c->rstate == R_BUF)
        feed_buffered(c);
    else if (c->rstate == R_STREAM)
        feed_stream(c);
}

/*
 * h2o's socket layer reads until the kernel has nothing left, growing the input buffer as it goes: a fixed kernel
 * receive buffer bounds what one read event can bring in, and so the memory of a streamed upload (docs/HTTP1.md).
 */
static void limit_receive_buffer(struct h1_conn *c)
{
    int fd = h2o_socket_get_fd(c->sock), sz = BERTH_STREAM_RCVBUF;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
}

uint64_t h1_req_streamed(h2o_req_t *req)
{
    return req->conn->callbacks == &h1__callbacks ? ((struct h1_conn *)req->conn)->streamed : 0;
}

struct h1_stream *h1_req_stream(const struct call *call)
{
    h2o_req_t *req = call->req;
    struct h1_conn *c;
    if (req->conn->callbacks != &h1__callbacks)
        return NULL;
    c = (struct h1_conn *)req->conn;
    if (c->kind != B_UPLOAD || c->stream != NULL || c->body_done || c->rstate != R_IDLE)
        return NULL;
    /* only a handler that auth_then() let run gets the body (not, say, the password check's own job) */
    if (call->who == NULL)
        return NULL;
    if ((c->stream = stream_new(c)) == NULL)
        return NULL;
    limit_receive_buffer(c);
    start_body(c, R_STREAM);
    return c->stream;
}

/* The job took a buffer or stopped: continue reading, finish the hand-off, or stop. */
static void stream_changed(struct h1_stream *s)
{
    struct h1_conn *c = s->conn;
    int stopped;
    if (c == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    stopped = s->consumer_done;
    pthread_mutex_unlock(&s->lock);
    if (stopped) { /* the job answers without the rest of the body; the connection closes after it */
        if (c->rstate == R_STREAM) {
            c->rstate = R_IDLE;
            h2o_socket_read_stop(c->sock);
        }
        return;
    }
    if (c->body_done) {
        pthread_mutex_lock(&s->lock);
        stopped = s->eof;
        pthread_mutex_unlock(&s->lock);
        if (!stopped)
            stream_handoff(s, 1);
        return;
    }
    if (c->rstate == R_STREAM && stream_handoff(s, 0)) {
        h2o_socket_read_start(c->sock, h1__on_read);
        feed_stream(c);
    }
}

void h1__on_stream_messages(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    while (!h2o_linklist_is_empty(messages)) {
        struct h1_stream *s = H2O_STRUCT_FROM_MEMBER(struct h1_stream, msg.link, messages->next);
        h2o_linklist_unlink(&s->msg.link);
        pthread_mutex_lock(&s->lock);
        s->notify_pending = 0;
        pthread_mutex_unlock(&s->lock);
        stream_changed(s);
        h1__stream_unref(s);
    }
}
