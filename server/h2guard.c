/* h2guard.c - a minimum receive rate for HTTP/2 connections (h2guard.h). */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "defaults.h"
#include "h2guard.h"
#include <h2o/http2.h>
#include <h2o/http2_internal.h> /* after h2o.h; needs server/compat/khash.h */

/* What the guard saw of one connection at its last look. */
struct seen {
    uint64_t id; /* h2o_conn_t.id, 0 = free slot */
    size_t bytes_read;
};

static _Thread_local struct {
    h2o_context_t *ctx;
    h2o_timeout_t window;
    h2o_timeout_entry_t tick;
    struct seen *tab; /* open addressing, `cap` slots (a power of two) */
    size_t cap;
} g;

static size_t slot(const struct seen *tab, size_t cap, uint64_t id)
{
    size_t i = (size_t)(id * 0x9E3779B97F4A7C15ull) & (cap - 1);
    while (tab[i].id != 0 && tab[i].id != id)
        i = (i + 1) & (cap - 1);
    return i;
}

/* 1 if `conn` is receiving a request: nothing of it being processed, and a stream open or a frame half read. */
static int receiving(const h2o_http2_conn_t *conn)
{
    if (conn->num_streams.pull.half_closed + conn->num_streams.push.half_closed != 0)
        return 0;
    return conn->num_streams.pull.open > 0 || (conn->sock->input != NULL && conn->sock->input->size > 0);
}

static void on_tick(h2o_timeout_entry_t *entry)
{
    const size_t min = (size_t)BERTH_H1_BODY_MIN_RATE * BERTH_H1_BODY_RATE_WINDOW;
    size_t n = 0, cap = 16;
    struct seen *tab;
    h2o_linklist_t *l;
    (void)entry;
    for (l = g.ctx->http2._conns.next; l != &g.ctx->http2._conns; l = l->next)
        n++;
    while (cap < 2 * n + 2)
        cap *= 2;
    if ((tab = calloc(cap, sizeof(*tab))) != NULL) {
        for (l = g.ctx->http2._conns.next; l != &g.ctx->http2._conns; l = l->next) {
            h2o_http2_conn_t *conn = H2O_STRUCT_FROM_MEMBER(h2o_http2_conn_t, _conns, l);
            if (conn->sock == NULL || conn->state == H2O_HTTP2_CONN_STATE_IS_CLOSING || !receiving(conn))
                continue; /* remembered only while receiving */
            if (g.tab != NULL && g.tab[slot(g.tab, g.cap, conn->super.id)].id == conn->super.id &&
                conn->sock->bytes_read - g.tab[slot(g.tab, g.cap, conn->super.id)].bytes_read < min) {
                /* too slow for a whole window: h2o sees the connection end and closes it its own way */
                shutdown(h2o_socket_get_fd(conn->sock), SHUT_RDWR);
                continue;
            }
            tab[slot(tab, cap, conn->super.id)] = (struct seen){conn->super.id, conn->sock->bytes_read};
        }
        free(g.tab);
        g.tab = tab;
        g.cap = cap;
    }
    h2o_timeout_link(g.ctx->loop, &g.window, &g.tick);
}

void h2guard_start(h2o_context_t *ctx)
{
    if (g.ctx != NULL)
        return;
    g.ctx = ctx;
    h2o_timeout_init(ctx->loop, &g.window, (uint64_t)BERTH_H1_BODY_RATE_WINDOW * 1000);
    g.tick.cb = on_tick;
    h2o_timeout_link(ctx->loop, &g.window, &g.tick);
}
