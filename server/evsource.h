/*
 * evsource.h - the request side of events (events.h): who caused an event, taken from the request, and a
 * metadata write for one route that also records its event in the same transaction.
 */
#ifndef BERTH_EVSOURCE_H
#define BERTH_EVSOURCE_H

#include <h2o.h>
#include "events.h"
#include "router.h"
#include "server.h"

/** Fills `src` from the call's request (client address, method, User-Agent) and identity (call->who: the user or
 *  token name; empty for anonymous or with auth off).  Loop thread only. */
void evsource_fill(const struct call *call, struct event_source *src);

/** A write for one route that also emits its event; `from` is the request's source. */
typedef int (*evsource_write_fn)(struct db *db, const struct route *rt, const struct event_source *from);
/** Like job_route_write (server.h), with the request's source handed to `fn`.  Returns 0 or BERR_NOMEM. */
int evsource_route_write(struct call *call, evsource_write_fn fn, int status);

#endif
