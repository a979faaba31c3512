/*
 * listen.h - the listening socket of `berth serve`: HOST:PORT resolved like registry:2 does (host names such as
 * localhost, IPv4, [IPv6], or an empty host for every address), and a warning when plain HTTP listens beyond
 * loopback (credentials and tokens would travel in clear).
 */
#ifndef BERTH_LISTEN_H
#define BERTH_LISTEN_H

#include <sys/socket.h>
#include "config.h"

/**
 * Resolves cfg->listen (getaddrinfo, host names allowed) and binds and listens on the first address that works.
 * Logs a warning if `tls` is 0 and that address is not loopback.  Returns the socket, or -1 (logged).
 */
int listen_open(const struct config *cfg, int tls);

/** Whether `sa` is a loopback address (127.0.0.0/8, ::1, or ::ffff:127.x.y.z). */
int listen_is_loopback(const struct sockaddr *sa);

#endif
