/*
 * api.h - the request dispatcher: route, method, (later) authorization, then the handler; the only place where a
 * handler's error code becomes a response.
 */
#ifndef BERTH_API_H
#define BERTH_API_H

#include "server.h"

/** Registers the dispatcher as the handler of `pathconf` ("/": every path). */
void api_register(h2o_pathconf_t *pathconf);

#endif
