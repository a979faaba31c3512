/* h1.c - HTTP/1.1 connections owned by Berth: strict heads, authorization before bodies, responses (request bodies:
 * h1_body.c). */
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
#include "h1_internal.h"
#include "h2guard.h"
#include "http1.h"
#include "log.h"
#include "respond.h"
#include "router.h"
#include <h2o/http2.h>

_Thread_local struct h1_thread h1__th;

static void read_head(struct h1_conn *c);

/* ---- connection lifetime ---- */

void h1__set_timeout(struct h1_conn *c, h2o_timeout_t *t)
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
        h1__stream_fail(s, BERR_BAD_REQUEST);
    s->conn = NULL;
    c->stream = NULL;
    h1__stream_unref(s);
}

static void end_request_state(struct h1_conn *c)
{
    drop_stream(c);
    if (c->holds_slot) {
        h1__caps_give(c->addr);
        c->holds_slot = 0;
    }
    free(c->buf);
    c->buf = NULL;
    c->buf_len = c->buf_cap = 0;
}

void h1__close_conn(struct h1_conn *c)
{
    h1__set_timeout(c, NULL);
    if (h2o_timeout_is_linked(&c->rate_timer))
        h2o_timeout_unlink(&c->rate_timer);
    end_request_state(c);
    h2o_dispose_request(&c->req);
    if (c->sock != NULL)
        h2o_socket_close(c->sock);
    h2o_linklist_unlink(&c->link);
    h1__th.n--;
    free(c);
}

static void on_timeout(h2o_timeout_entry_t *entry)
{
    struct h1_conn *c = H2O_STRUCT_FROM_MEMBER(struct h1_conn, timeout, entry);
    if (c->rstate == R_IDLE) /* a request in progress is not cut off by the read timeout */
        return;
    h1__close_conn(c);
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
        h1__close_conn(c);
        return;
    }
    c->window_bytes = 0;
    c->window_paused = 0;
    h2o_timeout_link(c->super.ctx->loop, &h1__th.rate_timeout, &c->rate_timer);
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

const h2o_conn_callbacks_t h1__callbacks = {
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
    if (h1__th.ready)
        return;
    h1__th.ready = 1;
    h1__th.ctx = ctx;
    h2o_linklist_init_anchor(&h1__th.conns);
    h2o_multithread_register_receiver(ctx->queue, &h1__th.receiver, h1__on_stream_messages);
    h2o_timeout_init(ctx->loop, &h1__th.handshake_timeout, BERTH_TLS_HANDSHAKE_TIMEOUT * 1000);
    h2o_timeout_init(ctx->loop, &h1__th.linger_timeout, BERTH_H1_LINGER_MS);
    h2o_timeout_init(ctx->loop, &h1__th.head_timeout,
                     ctx->globalconf->http1.req_timeout < (uint64_t)BERTH_H1_HEAD_TIMEOUT * 1000
                         ? ctx->globalconf->http1.req_timeout
                         : (uint64_t)BERTH_H1_HEAD_TIMEOUT * 1000);
    h2o_timeout_init(ctx->loop, &h1__th.rate_timeout, (uint64_t)BERTH_H1_BODY_RATE_WINDOW * 1000);
    h2guard_start(ctx); /* the same minimum rate for HTTP/2 connections */
}

static void conn_start(h2o_accept_ctx_t *actx, h2o_socket_t *sock)
{
    struct timeval now;
    struct h1_conn *c;
    gettimeofday(&now, NULL);
    c = (struct h1_conn *)h2o_create_connection(sizeof(*c), actx->ctx, actx->hosts, now, &h1__callbacks);
    memset((char *)c + sizeof(c->super), 0, offsetof(struct h1_conn, req) - sizeof(c->super));
    c->sock = sock;
    c->actx = actx;
    c->timeout.cb = on_timeout;
    c->rate_timer.cb = on_rate_timer;
    sock->data = c;
    peer_key(c);
    h2o_linklist_insert(&h1__th.conns, &c->link);
    h1__th.n++;
    init_req(c);
    c->rstate = R_HEAD;
    h1__set_timeout(c, &h1__th.head_timeout);
    h2o_socket_read_start(sock, h1__on_read);
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
    h1__th.srv = srv;
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
        h2o_timeout_link(actx->ctx->loop, &h1__th.handshake_timeout, &hs->timeout);
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
    h1__close_conn(c);
    h2o_http2_accept(actx, sock, at);
}

size_t h1_open_count(void)
{
    return h1__th.n;
}

void h1_shutdown(void)
{
    h2o_linklist_t *node, *next;
    if (!h1__th.ready)
        return;
    for (node = h1__th.conns.next; node != &h1__th.conns; node = next) {
        struct h1_conn *c = H2O_STRUCT_FROM_MEMBER(struct h1_conn, link, node);
        next = node->next;
        c->closing = 1;
        if (c->rstate == R_HEAD && c->sock->input->size == 0)
            h1__close_conn(c);
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
void h1__fail_request(struct h1_conn *c, int err, const char *detail)
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
    h1__set_timeout(c, NULL);
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

void h1__dispatch(struct h1_conn *c)
{
    c->rstate = R_IDLE;
    h2o_socket_read_stop(c->sock);
    h1__set_timeout(c, NULL);
    h2o_process_request(&c->req);
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
        h1__start_buffered(c, h1__th.srv->cfg.max_manifest_size);
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
    h1__set_timeout(c, NULL);
    c->gate_sync = 1;
    call = h2o_mem_alloc_pool(&c->req.pool, sizeof(*call));
    call->srv = h1__th.srv;
    call->req = &c->req;
    call->rt = c->rt;
    call->who = NULL;
    rc = auth_then(call, gate_next);
    c->gate_sync = 0;
    if (rc != 0)
        h1__fail_request(c, rc, NULL);
    else if (c->gate_allowed)
        h1__start_buffered(c, h1__th.srv->cfg.max_manifest_size);
    /* else: refused (answered; the connection closes after it) or waiting for a password check */
}

static void on_head(struct h1_conn *c, int n)
{
    c->head_len = (size_t)n;
    c->has_body = c->head.chunked || (c->head.content_length != HTTP1_NO_LENGTH && c->head.content_length > 0);
    fill_req(c, c->has_body);
    if (!c->has_body) {
        h1__dispatch(c); /* the head stays in sock->input (req points into it) until the response is done */
        return;
    }
    h2o_buffer_consume(&c->sock->input, c->head_len); /* n > 0 */
    c->head_len = 0;
    c->kind = classify(c);
    if (c->kind == B_UPLOAD)
        h1__begin_upload(c);
    else if (c->kind == B_MANIFEST)
        gate_manifest(c);
    else
        h1__start_buffered(c, BERTH_H1_BODY_MAX);
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
        h1__fail_request(c, BERR_BAD_REQUEST, "malformed request head (RFC 9112)");
        return;
    }
    on_head(c, n);
}

/* ---- reading ---- */

static void linger(struct h1_conn *c)
{
    c->rstate = R_LINGER;
    c->linger_bytes = 0;
    h1__set_timeout(c, &h1__th.linger_timeout);
    h2o_socket_read_start(c->sock, h1__on_read);
    if (c->sock->input->size > 0)
        h1__on_read(c->sock, NULL);
}

void h1__on_read(h2o_socket_t *sock, const char *err)
{
    struct h1_conn *c = sock->data;
    if (err != NULL) {
        if (c->rstate == R_IDLE && c->stream != NULL && !c->body_done)
            h1__stream_fail(c->stream, BERR_BAD_REQUEST);
        if (c->rstate != R_IDLE || c->req._generator == NULL || c->sent_headers)
            h1__close_conn(c);
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
        h1__feed(c);
        return;
    case R_LINGER:
        c->linger_bytes += sock->input->size;
        h1__consume(c, sock->input->size);
        if (c->linger_bytes > BERTH_H1_LINGER_MAX)
            h1__close_conn(c);
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
            h1__close_conn(c); /* the client waits for our answer before sending: nothing to drain */
            return;
        }
        end_request_state(c);
        if (body_left) {
            linger(c);
            return;
        }
        h1__close_conn(c);
        return;
    }
    end_request_state(c);
    h2o_dispose_request(&c->req);
    if (c->head_len > 0)
        h1__consume(c, c->head_len);
    release_input(c);
    init_req(c);
    c->rstate = R_HEAD;
    h1__set_timeout(c, &h1__th.head_timeout);
    h2o_socket_read_start(c->sock, h1__on_read);
    if (c->sock->input->size > 0)
        read_head(c);
}

static void on_write_more(h2o_socket_t *sock, const char *err)
{
    struct h1_conn *c = sock->data;
    if (err != NULL) {
        h1__close_conn(c);
        return;
    }
    h2o_proceed_response(&c->req);
}

static void on_write_done(h2o_socket_t *sock, const char *err)
{
    struct h1_conn *c = sock->data;
    if (err != NULL) {
        h1__close_conn(c);
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
