/* listen.c - resolving and opening the listen address (see listen.h). */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "defaults.h"
#include "listen.h"
#include "log.h"

int listen_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

/* A listening socket bound to `ai`, or -1 with errno set. */
static int open_one(const struct addrinfo *ai)
{
    int on = 1, fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), e;
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
        listen(fd, BERTH_LISTEN_BACKLOG) != 0) {
        e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    return fd;
}

int listen_open(const struct config *cfg, int tls)
{
    char host[256], portstr[16];
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res, *ai;
    int port, fd = -1, rc, e = 0;
    if (config_listen_addr(cfg, host, sizeof(host), &port) != 0) {
        log_error("invalid listen address '%s' (want HOST:PORT)", cfg->listen);
        return -1;
    }
    snprintf(portstr, sizeof(portstr), "%d", port);
    if ((rc = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &res)) != 0) {
        log_error("cannot resolve the listen host '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
        if ((fd = open_one(ai)) < 0)
            e = errno;
        else if (!tls && !listen_is_loopback(ai->ai_addr))
            log_warn("listening on %s over plain HTTP beyond loopback: passwords and tokens travel in clear; "
                     "serve TLS (--tls-cert, --tls-key) or put a TLS proxy in front",
                     cfg->listen);
    freeaddrinfo(res);
    if (fd < 0)
        log_error("cannot listen on %s: %s", cfg->listen, strerror(e));
    return fd;
}
