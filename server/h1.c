/* h1.c - HTTP/1.1 connections owned by Berth: strict heads, authorization before bodies, streamed uploads. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include "auth.h"
#include "defaults.h"
#include "err.h"
#include "h1.h"
#include "h2guard.h"
#include "http1.h"
#include "log.h"
#include "respond.h"
#include "router.h"
#include <h2o/http2.h>

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

static _Thread_local struct h1_thread th;

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

static void read_head(struct h1_conn *c);
static void feed(struct h1_conn *c);
static void on_read(h2o_socket_t *sock, const char *err);
static void on_stream_messages(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);

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

static void caps_give(const uint8_t *a)
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
    s->receiver = &th.receiver;
    s->conn = c;
    s->limit = th.srv->cfg.max_blob_size;
    s->length = c->head.chunked ? 0 : c->head.content_length;
    s->keep_tail = h2o_memis(c->req.input.method.base, c->req.input.method.len, H2O_STRLIT("PATCH"));
    return s;
}

static void stream_unref(struct h1_stream *s)
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
static void stream_fail(struct h1_stream *s, int code)
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
        stream_unref(s);
}

/* ---- connection lifetime ---- */

static void set_timeout(struct h1_conn *c, h2o_timeout_t *t)
{
    if (h2o_timeout_is_linked(&c->timeout))
        h2o_timeout_unlink(&c->timeout);
    if (t != NULL)
        h2o_timeout_link(c->super.ctx->loop, t, &c->timeout);
}

/* The connection lets go of its stream: an unfinished body fails for the job. */
static void drop_stream(struct h1_conn *c)
{
    struct h1_stream *s = c->stream;
    if (s == NULL)
        return;
    if (!c->body_done)
        stream_fail(s, BERR_BAD_REQUEST);
    s->conn = NULL;
    c->stream = NULL;
    stream_unref(s);
}

static void end_request_state(struct h1_conn *c)
{
    drop_stream(c);
    if (c->holds_slot) {
        caps_give(c->addr);
        c->holds_slot = 0;
    }
    free(c->buf);
    c->buf = NULL;
    c->buf_len = c->buf_cap = 0;
}

static void close_conn(struct h1_conn *c)
{
    set_timeout(c, NULL);
    if (h2o_timeout_is_linked(&c->rate_timer))
        h2o_timeout_unlink(&c->rate_timer);
    end_request_state(c);
    h2o_dispose_request(&c->req);
    if (c->sock != NULL)
        h2o_socket_close(c->sock);
    h2o_linklist_unlink(&c->link);
    th.n--;
    free(c);
}

static void on_timeout(h2o_timeout_entry_t *entry)
{
    struct h1_conn *c = H2O_STRUCT_FROM_MEMBER(struct h1_conn, timeout, entry);
    if (c->rstate == R_IDLE) /* a request in progress is not cut off by the read timeout */
        return;
    close_conn(c);
}

/* Every BERTH_H1_BODY_RATE_WINDOW while a body is read: a client that sent less than the minimum rate in a window
 * in which Berth kept reading is cut off (a slow-body client; docs/HARDENING.md). */
static void on_rate_timer(h2o_timeout_entry_t *entry)
{
    struct h1_conn *c = H2O_STRUCT_FROM_MEMBER(struct h1_conn, rate_timer, entry);
    if (c->rstate != R_BUF && c->rstate != R_STREAM)
        return; /* the body is done: no more checks */
    if (!c->window_paused && h2o_socket_is_reading(c->sock) &&
        c->window_bytes < (uint64_t)BERTH_H1_BODY_MIN_RATE * BERTH_H1_BODY_RATE_WINDOW) {
        close_conn(c);
        return;
    }
    c->window_bytes = 0;
    c->window_paused = 0;
    h2o_timeout_link(c->super.ctx->loop, &th.rate_timeout, &c->rate_timer);
}

static socklen_t get_sockname(h2o_conn_t *conn, struct sockaddr *sa)
{
    return h2o_socket_getsockname(((struct h1_conn *)conn)->sock, sa);
}

static socklen_t get_peername(h2o_conn_t *conn, struct sockaddr *sa)
{
    return h2o_socket_getpeername(((struct h1_conn *)conn)->sock, sa);
}

static h2o_socket_t *get_socket(h2o_conn_t *conn)
{
    return ((struct h1_conn *)conn)->sock;
}

static h2o_iovec_t log_tls_version(h2o_req_t *req)
{
    return h2o_socket_log_ssl_protocol_version(((struct h1_conn *)req->conn)->sock, &req->pool);
}

static h2o_iovec_t log_tls_cipher(h2o_req_t *req)
{
    return h2o_socket_log_ssl_cipher(((struct h1_conn *)req->conn)->sock, &req->pool);
}

static h2o_iovec_t log_request_index(h2o_req_t *req)
{
    char *s = h2o_mem_alloc_pool(&req->pool, 24);
    return h2o_iovec_init(s,
                          (size_t)snprintf(s, 24, "%llu", (unsigned long long)((struct h1_conn *)req->conn)->served));
}

static const h2o_conn_callbacks_t callbacks = {
    .get_sockname = get_sockname,
    .get_peername = get_peername,
    .get_socket = get_socket,
    .log_ = {{.ssl = {.protocol_version = log_tls_version, .cipher = log_tls_cipher},
              .http1 = {.request_index = log_request_index}}},
};

static void ostr_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *in, size_t n, h2o_send_state_t state);

static void init_req(struct h1_conn *c)
{
    h2o_init_request(&c->req, &c->super, NULL);
    c->req._ostr_top = &c->ostr;
    c->ostr.do_send = ostr_send;
    c->ostr.start_pull = NULL;
    c->sent_headers = c->sent_continue = c->has_body = c->body_done = 0;
    c->gate_allowed = 0;
    c->streamed = 0;
    c->kind = B_NONE;
    c->head_len = 0;
}

static void peer_key(struct h1_conn *c)
{
    struct sockaddr_storage ss;
    memset(c->addr, 0, sizeof(c->addr));
    if (h2o_socket_getpeername(c->sock, (struct sockaddr *)&ss) == 0)
        return;
    if (ss.ss_family == AF_INET)
        memcpy(c->addr + 12, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    else if (ss.ss_family == AF_INET6)
        memcpy(c->addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
}

static void thread_init(h2o_context_t *ctx)
{
    if (th.ready)
        return;
    th.ready = 1;
    th.ctx = ctx;
    h2o_linklist_init_anchor(&th.conns);
    h2o_multithread_register_receiver(ctx->queue, &th.receiver, on_stream_messages);
    h2o_timeout_init(ctx->loop, &th.handshake_timeout, BERTH_TLS_HANDSHAKE_TIMEOUT * 1000);
    h2o_timeout_init(ctx->loop, &th.linger_timeout, BERTH_H1_LINGER_MS);
    h2o_timeout_init(ctx->loop, &th.head_timeout,
                     ctx->globalconf->http1.req_timeout < (uint64_t)BERTH_H1_HEAD_TIMEOUT * 1000
                         ? ctx->globalconf->http1.req_timeout
                         : (uint64_t)BERTH_H1_HEAD_TIMEOUT * 1000);
    h2o_timeout_init(ctx->loop, &th.rate_timeout, (uint64_t)BERTH_H1_BODY_RATE_WINDOW * 1000);
    h2guard_start(ctx); /* the same minimum rate for HTTP/2 connections */
}

static void conn_start(h2o_accept_ctx_t *actx, h2o_socket_t *sock)
{
    struct timeval now;
    struct h1_conn *c;
    gettimeofday(&now, NULL);
    c = (struct h1_conn *)h2o_create_connection(sizeof(*c), actx->ctx, actx->hosts, now, &callbacks);
    memset((char *)c + sizeof(c->super), 0, offsetof(struct h1_conn, req) - sizeof(c->super));
    c->sock = sock;
    c->actx = actx;
    c->timeout.cb = on_timeout;
    c->rate_timer.cb = on_rate_timer;
    sock->data = c;
    peer_key(c);
    h2o_linklist_insert(&th.conns, &c->link);
    th.n++;
    init_req(c);
    c->rstate = R_HEAD;
    set_timeout(c, &th.head_timeout);
    h2o_socket_read_start(sock, on_read);
    if (sock->input->size > 0)
        read_head(c);
}

/* ---- TLS and HTTP/2 hand-over ---- */

struct handshake {
    h2o_accept_ctx_t *actx;
    h2o_socket_t *sock;
    h2o_timeout_entry_t timeout;
};

static void on_handshake_timeout(h2o_timeout_entry_t *entry)
{
    struct handshake *hs = H2O_STRUCT_FROM_MEMBER(struct handshake, timeout, entry);
    h2o_socket_close(hs->sock);
    free(hs);
}

static void on_handshake(h2o_socket_t *sock, const char *err)
{
    struct handshake *hs = sock->data;
    h2o_accept_ctx_t *actx = hs->actx;
    h2o_iovec_t proto;
    h2o_timeout_unlink(&hs->timeout);
    free(hs);
    if (err != NULL) {
        h2o_socket_close(sock);
        return;
    }
    proto = h2o_socket_ssl_get_selected_protocol(sock);
    if (proto.len >= 2 && memcmp(proto.base, "h2", 2) == 0) {
        struct timeval now;
        gettimeofday(&now, NULL);
        h2o_http2_accept(actx, sock, now);
        return;
    }
    conn_start(actx, sock);
}

void h1_accept(struct server *srv, h2o_accept_ctx_t *actx, h2o_socket_t *sock)
{
    th.srv = srv;
    thread_init(actx->ctx);
    if (actx->ssl_ctx != NULL) {
        struct handshake *hs = calloc(1, sizeof(*hs));
        if (hs == NULL) {
            h2o_socket_close(sock);
            return;
        }
        hs->actx = actx;
        hs->sock = sock;
        hs->timeout.cb = on_handshake_timeout;
        sock->data = hs;
        h2o_timeout_link(actx->ctx->loop, &th.handshake_timeout, &hs->timeout);
        h2o_socket_ssl_handshake(sock, actx->ssl_ctx, NULL, on_handshake);
        return;
    }
    conn_start(actx, sock);
}

/* HTTP/2 with prior knowledge: h2o takes the socket, with the preface still in its input. */
static void hand_to_h2(struct h1_conn *c)
{
    h2o_socket_t *sock = c->sock;
    h2o_accept_ctx_t *actx = c->actx;
    struct timeval at = c->super.connected_at;
    h2o_socket_read_stop(sock);
    c->sock = NULL;
    close_conn(c);
    h2o_http2_accept(actx, sock, at);
}

size_t h1_open_count(void)
{
    return th.n;
}

void h1_shutdown(void)
{
    h2o_linklist_t *node, *next;
    if (!th.ready)
        return;
    for (node = th.conns.next; node != &th.conns; node = next) {
        struct h1_conn *c = H2O_STRUCT_FROM_MEMBER(struct h1_conn, link, node);
        next = node->next;
        c->closing = 1;
        if (c->rstate == R_HEAD && c->sock->input->size == 0)
            close_conn(c);
    }
}

/* ---- the request ---- */

/* Copies `s[0..len)` into the request pool when `copy` (the head's bytes are about to be consumed). */
static h2o_iovec_t take_str(struct h1_conn *c, const char *s, size_t len, int copy)
{
    return copy ? h2o_strdup(&c->req.pool, s, len) : h2o_iovec_init(s, len);
}

/* Fills c->req from the parsed head; header names are lowercased in place (h2o's convention). */
static void fill_req(struct h1_conn *c, int copy)
{
    h2o_req_t *req = &c->req;
    const struct http1_request *p = &c->head;
    req->input.scheme = c->sock->ssl != NULL ? &H2O_URL_SCHEME_HTTPS : &H2O_URL_SCHEME_HTTP;
    req->version = 0x100 | p->minor_version;
    req->input.method = take_str(c, p->method, p->method_len, copy);
    req->input.path = take_str(c, p->target, p->target_len, copy);
    if (p->host != NULL)
        req->input.authority = take_str(c, p->host, p->host_len, copy);
    req->http1_is_persistent = p->keep_alive && !c->closing && !c->super.ctx->shutdown_requested;
    req->timestamps.request_begin_at = *h2o_get_timestamp(c->super.ctx, NULL, NULL);
    for (size_t i = 0; i < p->num_headers; i++) {
        const struct http1_header *h = &p->headers[i];
        const h2o_token_t *tok;
        h2o_iovec_t name, value;
        h2o_strtolower((char *)h->name, h->name_len);
        tok = h2o_lookup_token(h->name, h->name_len);
        if (tok == H2O_TOKEN_HOST || tok == H2O_TOKEN_CONTENT_LENGTH || tok == H2O_TOKEN_TRANSFER_ENCODING ||
            tok == H2O_TOKEN_EXPECT || tok == H2O_TOKEN_UPGRADE)
            continue; /* framing, owned by this file (h2o does the same) */
        value = take_str(c, h->value, h->value_len, copy);
        if (tok != NULL) {
            h2o_add_header(&req->pool, &req->headers, tok, NULL, value.base, value.len);
        } else {
            name = take_str(c, h->name, h->name_len, copy);
            h2o_add_header_by_str(&req->pool, &req->headers, name.base, name.len, 0, NULL, value.base, value.len);
        }
    }
}

/* What h2o_process_request() sets up, for answers given before it runs (gate, early errors). */
static void bind_req(struct h1_conn *c)
{
    h2o_req_t *req = &c->req;
    h2o_hostconf_t *host = c->super.hosts[0];
    if (req->pathconf != NULL)
        return;
    h2o_get_timestamp(c->super.ctx, &req->pool, &req->processed_at);
    if (req->input.authority.base == NULL)
        req->input.authority = host->authority.hostport;
    req->scheme = req->input.scheme;
    req->method = req->input.method;
    req->authority = req->input.authority;
    req->path = req->input.path;
    req->path_normalized =
        h2o_url_normalize_path(&req->pool, req->path.base, req->path.len, &req->query_at, &req->norm_indexes);
    req->input.query_at = req->query_at;
    h2o_req_bind_conf(req, host, host->paths.size > 0 ? &host->paths.entries[0] : &host->fallback_path);
}

/* Answers `err` as an OCI error and closes the connection after it. */
static void fail_request(struct h1_conn *c, int err, const char *detail)
{
    if (c->req.version == 0) { /* the head did not parse: log it as such */
        c->req.version = 0x101;
        c->req.input.method = h2o_iovec_init(H2O_STRLIT("-"));
        c->req.input.path = h2o_iovec_init(H2O_STRLIT("/"));
    }
    bind_req(c);
    c->req.http1_is_persistent = 0;
    c->rstate = R_IDLE;
    h2o_socket_read_stop(c->sock);
    set_timeout(c, NULL);
    respond_error(&c->req, err, detail);
}

static enum body_kind classify(struct h1_conn *c)
{
    const h2o_iovec_t m = c->req.input.method, p = c->req.input.path;
    const char *q = memchr(p.base, '?', p.len);
    if (router_match(p.base, q != NULL ? (size_t)(q - p.base) : p.len, &c->rt) != 0)
        return B_OTHER;
    if (c->rt.kind == ROUTE_MANIFEST && h2o_memis(m.base, m.len, H2O_STRLIT("PUT")))
        return B_MANIFEST;
    if ((c->rt.kind == ROUTE_UPLOAD_NEW && h2o_memis(m.base, m.len, H2O_STRLIT("POST"))) ||
        (c->rt.kind == ROUTE_UPLOAD &&
         (h2o_memis(m.base, m.len, H2O_STRLIT("PATCH")) || h2o_memis(m.base, m.len, H2O_STRLIT("PUT")))))
        return B_UPLOAD;
    return B_OTHER;
}

static void dispatch(struct h1_conn *c)
{
    c->rstate = R_IDLE;
    h2o_socket_read_stop(c->sock);
    set_timeout(c, NULL);
    h2o_process_request(&c->req);
}

static void on_continue_sent(h2o_socket_t *sock, const char *err)
{
    struct h1_conn *c = sock->data;
    if (err != NULL) {
        close_conn(c);
        return;
    }
    h2o_socket_read_start(sock, on_read);
    feed(c);
}

/* Starts reading the body in state `st` (R_BUF or R_STREAM), after `100 Continue` if the client waits for it. */
static void start_body(struct h1_conn *c, enum rstate st)
{
    c->rstate = st;
    if (c->head.chunked)
        http1_chunked_init(&c->chunked);
    c->body_left = c->head.chunked ? 0 : c->head.content_length;
    set_timeout(c, &c->super.ctx->http1.req_timeout);
    if (h2o_timeout_is_linked(&c->rate_timer))
        h2o_timeout_unlink(&c->rate_timer);
    c->window_bytes = 0;
    c->window_paused = 0;
    h2o_timeout_link(c->super.ctx->loop, &th.rate_timeout, &c->rate_timer);
    if (c->head.expect_continue && !c->sent_continue) {
        h2o_iovec_t line = h2o_iovec_init(continue_line, sizeof(continue_line) - 1);
        c->sent_continue = 1;
        c->window_paused = 1;
        h2o_socket_read_stop(c->sock);
        h2o_socket_write(c->sock, &line, 1, on_continue_sent);
        return;
    }
    h2o_socket_read_start(c->sock, on_read);
    feed(c);
}

/* Reads a body of at most `max` bytes into memory, then dispatches. */
static void start_buffered(struct h1_conn *c, size_t max)
{
    c->buf_max = max;
    if (!c->head.chunked && c->head.content_length > max) {
        fail_request(c, c->kind == B_MANIFEST ? BERR_MANIFEST_TOO_LARGE : BERR_BLOB_TOO_LARGE,
                     c->kind == B_MANIFEST ? "the manifest is larger than max_manifest_size"
                                           : "the request body is larger than the limit");
        return;
    }
    c->buf_cap = c->head.chunked ? (max < 65536 ? max : 65536) : (size_t)c->head.content_length;
    if ((c->buf = malloc(c->buf_cap > 0 ? c->buf_cap : 1)) == NULL) {
        fail_request(c, BERR_NOMEM, NULL);
        return;
    }
    start_body(c, R_BUF);
}

/* auth_then's continuation for a manifest PUT: the caller may push; now read the body. */
static int gate_next(struct call *call, h2o_req_t *req, const struct route *rt)
{
    struct h1_conn *c = (struct h1_conn *)req->conn;
    (void)call;
    (void)rt;
    if (c->gate_sync)
        c->gate_allowed = 1;
    else
        start_buffered(c, th.srv->cfg.max_manifest_size);
    return 0;
}

/* A manifest PUT: authorize from the head (auth.h), then read at most max_manifest_size bytes.  The request is
 * then dispatched as usual, which checks authorization again (answered from auth's caches). */
static void gate_manifest(struct h1_conn *c)
{
    struct call *call;
    int rc;
    bind_req(c);
    c->rstate = R_IDLE;
    h2o_socket_read_stop(c->sock);
    set_timeout(c, NULL);
    c->gate_sync = 1;
    call = h2o_mem_alloc_pool(&c->req.pool, sizeof(*call));
    call->srv = th.srv;
    call->req = &c->req;
    call->rt = c->rt;
    call->who = NULL;
    rc = auth_then(call, gate_next);
    c->gate_sync = 0;
    if (rc != 0)
        fail_request(c, rc, NULL);
    else if (c->gate_allowed)
        start_buffered(c, th.srv->cfg.max_manifest_size);
    /* else: refused (answered; the connection closes after it) or waiting for a password check */
}

/* An upload: capped per address and in total; its body is read once the handler's job asks (h1_req_stream). */
static void begin_upload(struct h1_conn *c)
{
    if (!c->head.chunked && c->head.content_length > th.srv->cfg.max_blob_size) {
        fail_request(c, BERR_BLOB_TOO_LARGE, NULL);
        return;
    }
    if (caps_take(c->addr) != 0) {
        log_warn("upload refused: too many concurrent upload bodies (cap %d in total, %d per address)",
                 BERTH_UPLOAD_BODIES_MAX, BERTH_UPLOAD_BODIES_PER_ADDR);
        fail_request(c, BERR_TOO_MANY_REQUESTS, "too many concurrent uploads");
        return;
    }
    c->holds_slot = 1;
    dispatch(c);
}

static void on_head(struct h1_conn *c, int n)
{
    c->head_len = (size_t)n;
    c->has_body = c->head.chunked || (c->head.content_length != HTTP1_NO_LENGTH && c->head.content_length > 0);
    fill_req(c, c->has_body);
    if (!c->has_body) {
        dispatch(c); /* the head stays in sock->input (req points into it) until the response is done */
        return;
    }
    h2o_buffer_consume(&c->sock->input, c->head_len); /* n > 0 */
    c->head_len = 0;
    c->kind = classify(c);
    if (c->kind == B_UPLOAD)
        begin_upload(c);
    else if (c->kind == B_MANIFEST)
        gate_manifest(c);
    else
        start_buffered(c, BERTH_H1_BODY_MAX);
}

static void read_head(struct h1_conn *c)
{
    h2o_buffer_t *in = c->sock->input;
    int n;
    if (c->served == 0) {
        int pre = http1_is_h2_preface(in->bytes, in->size);
        if (pre == 2) {
            hand_to_h2(c);
            return;
        }
        if (pre == 1)
            return;
    }
    n = http1_parse_request(in->bytes, in->size, &c->head);
    if (n == 0)
        return;
    if (n < 0) {
        fail_request(c, BERR_BAD_REQUEST, "malformed request head (RFC 9112)");
        return;
    }
    on_head(c, n);
}

/* ---- bodies ---- */

/* Drops `n` bytes from the start of the socket's input (h2o asserts on an empty buffer, even for 0). */
static void consume(struct h1_conn *c, size_t n)
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
        in = c->sock->input; /* consume() may have replaced the buffer */
        avail = in->size < room ? in->size : room;
        if (avail == 0)
            return 0;
        rc = http1_chunked_step(&c->chunked, in->bytes, avail, &used, data, len);
        c->window_bytes += used;
        if (rc == HTTP1_CHUNK_DATA) {
            *eat = used;
            return 1;
        }
        consume(c, used);
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
                fail_request(c, BERR_BAD_REQUEST, "malformed chunked body");
                return;
            }
            break;
        }
        if (c->buf_len + n > c->buf_max) {
            fail_request(c, c->kind == B_MANIFEST ? BERR_MANIFEST_TOO_LARGE : BERR_BLOB_TOO_LARGE, NULL);
            return;
        }
        if (c->buf_len + n > c->buf_cap) {
            size_t cap = c->buf_cap * 2 > c->buf_len + n ? c->buf_cap * 2 : c->buf_len + n;
            char *nb = realloc(c->buf, cap < c->buf_max ? cap : c->buf_max);
            if (nb == NULL) {
                fail_request(c, BERR_NOMEM, NULL);
                return;
            }
            c->buf = nb;
            c->buf_cap = cap < c->buf_max ? cap : c->buf_max;
        }
        memcpy(c->buf + c->buf_len, d, n);
        c->buf_len += n;
        consume(c, eat);
    }
    if (c->body_done) {
        c->req.entity = h2o_iovec_init(c->buf, c->buf_len);
        dispatch(c);
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
            h2o_socket_read_stop(c->sock); /* resumed by on_stream_messages */
            return;
        }
        rc = next_body_bytes(c, BERTH_STREAM_CHUNK - s->fill_len, &d, &n, &eat);
        if (rc < 0) {
            s->keep_tail = 0; /* broken framing */
            stream_fail(s, BERR_BAD_REQUEST);
            c->rstate = R_IDLE;
            h2o_socket_read_stop(c->sock);
            return;
        }
        if (rc == 0)
            break;
        if (s->received + n > s->limit) {
            stream_fail(s, BERR_BLOB_TOO_LARGE);
            c->rstate = R_IDLE;
            h2o_socket_read_stop(c->sock);
            return;
        }
        memcpy(s->fill + s->fill_len, d, n);
        s->fill_len += n;
        s->received += n;
        c->streamed += n;
        consume(c, eat);
    }
    if (c->body_done) {
        c->rstate = R_IDLE;
        h2o_socket_read_stop(c->sock);
        set_timeout(c, NULL);
        stream_handoff(s, 1); /* if the slot is busy, on_stream_messages retries */
    }
}

static void feed(struct h1_conn *c)
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
    return req->conn->callbacks == &callbacks ? ((struct h1_conn *)req->conn)->streamed : 0;
}

struct h1_stream *h1_req_stream(const struct call *call)
{
    h2o_req_t *req = call->req;
    struct h1_conn *c;
    if (req->conn->callbacks != &callbacks)
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
        h2o_socket_read_start(c->sock, on_read);
        feed_stream(c);
    }
}

static void on_stream_messages(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    while (!h2o_linklist_is_empty(messages)) {
        struct h1_stream *s = H2O_STRUCT_FROM_MEMBER(struct h1_stream, msg.link, messages->next);
        h2o_linklist_unlink(&s->msg.link);
        pthread_mutex_lock(&s->lock);
        s->notify_pending = 0;
        pthread_mutex_unlock(&s->lock);
        stream_changed(s);
        stream_unref(s);
    }
}

/* ---- reading ---- */

static void linger(struct h1_conn *c)
{
    c->rstate = R_LINGER;
    c->linger_bytes = 0;
    set_timeout(c, &th.linger_timeout);
    h2o_socket_read_start(c->sock, on_read);
    if (c->sock->input->size > 0)
        on_read(c->sock, NULL);
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    struct h1_conn *c = sock->data;
    if (err != NULL) {
        if (c->rstate == R_IDLE && c->stream != NULL && !c->body_done)
            stream_fail(c->stream, BERR_BAD_REQUEST);
        if (c->rstate != R_IDLE || c->req._generator == NULL || c->sent_headers)
            close_conn(c);
        else
            h2o_socket_read_stop(sock); /* a request in progress: close once it answered */
        return;
    }
    switch (c->rstate) {
    case R_HEAD:
        read_head(c);
        return;
    case R_BUF:
    case R_STREAM: /* request_timeout is a deadline for the whole body, as in h2o (not reset by progress) */
        feed(c);
        return;
    case R_LINGER:
        c->linger_bytes += sock->input->size;
        consume(c, sock->input->size);
        if (c->linger_bytes > BERTH_H1_LINGER_MAX)
            close_conn(c);
        return;
    case R_IDLE:
        h2o_socket_read_stop(sock);
        return;
    }
}

/* ---- responses ---- */

/* A body (streamed or buffered) grew the socket's input buffer: an idle keep-alive connection does not keep it. */
static void release_input(struct h1_conn *c)
{
    if (c->sock->input->size == 0 && c->sock->input->capacity > BERTH_H1_INPUT_KEEP) {
        h2o_buffer_dispose(&c->sock->input);
        h2o_buffer_init(&c->sock->input, &h2o_socket_buffer_prototype);
    }
}

static void on_response_done(struct h1_conn *c)
{
    int body_left = c->has_body && !c->body_done;
    c->served++;
    if (!c->req.http1_is_persistent || body_left || c->closing) {
        if (body_left && !c->sent_continue && c->head.expect_continue) {
            close_conn(c); /* the client waits for our answer before sending: nothing to drain */
            return;
        }
        end_request_state(c);
        if (body_left) {
            linger(c);
            return;
        }
        close_conn(c);
        return;
    }
    end_request_state(c);
    h2o_dispose_request(&c->req);
    if (c->head_len > 0)
        consume(c, c->head_len);
    release_input(c);
    init_req(c);
    c->rstate = R_HEAD;
    set_timeout(c, &th.head_timeout);
    h2o_socket_read_start(c->sock, on_read);
    if (c->sock->input->size > 0)
        read_head(c);
}

static void on_write_more(h2o_socket_t *sock, const char *err)
{
    struct h1_conn *c = sock->data;
    if (err != NULL) {
        close_conn(c);
        return;
    }
    h2o_proceed_response(&c->req);
}

static void on_write_done(h2o_socket_t *sock, const char *err)
{
    struct h1_conn *c = sock->data;
    if (err != NULL) {
        close_conn(c);
        return;
    }
    on_response_done(c);
}

/* The status line and headers of `req`. */
static h2o_iovec_t flatten_head(struct h1_conn *c, h2o_req_t *req)
{
    h2o_timestamp_t ts;
    const h2o_iovec_t server = c->super.ctx->globalconf->server_name;
    int keep = req->http1_is_persistent && !(c->has_body && !c->body_done) && !c->closing;
    size_t cap = 160 + strlen(req->res.reason) + H2O_TIMESTR_RFC1123_LEN + server.len, len;
    char *buf, *p;
    for (size_t i = 0; i < req->res.headers.size; i++)
        cap += req->res.headers.entries[i].name->len + req->res.headers.entries[i].value.len + 4;
    buf = h2o_mem_alloc_pool(&req->pool, cap);
    h2o_get_timestamp(c->super.ctx, &req->pool, &ts);
    req->http1_is_persistent = keep;
    len = (size_t)snprintf(buf, cap, "HTTP/1.1 %d %s\r\nDate: %s\r\nConnection: %s\r\n", req->res.status,
                           req->res.reason, ts.str->rfc1123, keep ? "keep-alive" : "close");
    if (req->res.content_length != SIZE_MAX)
        len += (size_t)snprintf(buf + len, cap - len, "Content-Length: %zu\r\n", req->res.content_length);
    if (server.len > 0)
        len += (size_t)snprintf(buf + len, cap - len, "Server: %.*s\r\n", (int)server.len, server.base);
    p = buf + len;
    for (size_t i = 0; i < req->res.headers.size; i++) {
        const h2o_header_t *h = &req->res.headers.entries[i];
        memcpy(p, h->orig_name != NULL ? h->orig_name : h->name->base, h->name->len);
        p += h->name->len;
        *p++ = ':';
        *p++ = ' ';
        memcpy(p, h->value.base, h->value.len);
        p += h->value.len;
        *p++ = '\r';
        *p++ = '\n';
    }
    *p++ = '\r';
    *p++ = '\n';
    return h2o_iovec_init(buf, (size_t)(p - buf));
}

static void ostr_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *in, size_t n, h2o_send_state_t state)
{
    struct h1_conn *c = H2O_STRUCT_FROM_MEMBER(struct h1_conn, ostr, self);
    h2o_iovec_t *bufs = h2o_mem_alloc_pool(&req->pool, sizeof(*bufs) * (n + 1));
    size_t cnt = 0;
    if (!req->bytes_counted_by_ostream)
        for (size_t i = 0; i < n; i++)
            req->bytes_sent += in[i].len;
    if (state == H2O_SEND_STATE_ERROR)
        req->http1_is_persistent = 0;
    if (!c->sent_headers) {
        req->timestamps.response_start_at = *h2o_get_timestamp(c->super.ctx, NULL, NULL);
        bufs[cnt++] = flatten_head(c, req);
        c->sent_headers = 1;
    }
    for (size_t i = 0; i < n; i++)
        if (in[i].len > 0)
            bufs[cnt++] = in[i];
    if (cnt == 0) {
        if (h2o_send_state_is_in_progress(state))
            h2o_proceed_response(req);
        else
            on_response_done(c);
        return;
    }
    h2o_socket_write(c->sock, bufs, cnt, h2o_send_state_is_in_progress(state) ? on_write_more : on_write_done);
}
