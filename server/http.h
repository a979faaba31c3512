/*
 * http.h - `berth serve`: h2o set-up (HTTP/1.1, HTTP/2 over TLS by ALPN and h2c), one event loop per thread
 * sharing one listening socket, the worker pool, the janitor, and graceful shutdown on SIGTERM/SIGINT.
 */
#ifndef BERTH_HTTP_H
#define BERTH_HTTP_H

#include "config.h"

/** Serves with configuration `cfg` until SIGTERM/SIGINT; in-flight requests get BERTH_SHUTDOWN_GRACE seconds.
 *  Returns the process exit status. */
int http_serve(const struct config *cfg);

#endif
