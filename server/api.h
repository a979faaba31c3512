/*
 * api.h - the registry API dispatcher (module api_module, module.h): raw path -> route -> method -> the auth gate
 * -> the handler (handlers.h); the only place where a handler's error code becomes a response.
 *
 * The dispatcher builds the request's `struct call` (server.h) in the request pool: the server context from its
 * handler struct, the route, and (after auth) the caller's identity.
 */
#ifndef BERTH_API_H
#define BERTH_API_H

#include "module.h"

#endif
