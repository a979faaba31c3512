/*
 * h2guard.h - slow HTTP/2 clients: the minimum receive rate h2o 2.2.5 lacks (docs/HARDENING.md).
 *
 * h2o's only HTTP/2 timeout is an idle timeout restarted by every byte read, so a client trickling a HEADERS frame
 * or DATA frames kept its connection forever.  Every BERTH_H1_BODY_RATE_WINDOW seconds the guard looks at each
 * HTTP/2 connection of its event loop: one that is receiving a request (a stream open and none being processed, or
 * a partial frame in its input) at two consecutive looks, and that brought fewer than BERTH_H1_BODY_MIN_RATE bytes
 * per second in between, is shut down (h2o then closes it as if the client had gone).
 */
#ifndef BERTH_H2GUARD_H
#define BERTH_H2GUARD_H

#include <h2o.h>

/** Starts the guard on the calling thread's event loop `ctx` (once per thread; later calls do nothing). */
void h2guard_start(h2o_context_t *ctx);

#endif
