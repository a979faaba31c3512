/*
 * events.h - the registry's event log: push, pull, delete, tag move (and lifecycle expiry, GC deletion) as rows of
 * the `events` table, for webhooks (webhook.h) and `berth events tail`.
 *
 * Invariants:
 *  - An event of a metadata change is inserted by events_emit() inside the transaction of that change (the writer
 *    batch, or db_begin/db_commit of a tool), so the change and its event commit together or not at all: nothing is
 *    lost on a crash, and no event describes a change that did not happen.
 *  - Pulls are frequent and change nothing, so they are not written one per GET: events_pull_note() copies the
 *    event into an in-memory buffer (no I/O) and events_pull_flush() writes the buffer in one batch (the server
 *    does it with its batched last-pull-time flush, every BERTH_PULL_FLUSH_INTERVAL s).  Pull events of the last
 *    interval are lost on a crash, and beyond BERTH_EVENTS_PULL_BUFFER pulls per interval the surplus is dropped
 *    (counted in the log); both are documented as the price of pulls costing no writes.
 *  - Event ids only grow (AUTOINCREMENT): a webhook's delivery cursor is "the last id delivered".  Each event also
 *    has a random UUID, the `id` of Distribution's envelope, which receivers use to drop duplicates (delivery is
 *    at-least-once).
 *  - Rows older than the `events_retention` setting are pruned (events_prune, by webhook.h's pruning thread).
 *
 * Threads: the functions taking a struct db follow db.h (one thread per connection); the pull buffer is shared and
 * locked internally.
 */
#ifndef BERTH_EVENTS_H
#define BERTH_EVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "db.h"
#include "defaults.h"

/* Actions (the envelope's `action`). */
#define EVENT_PUSH "push"     /* a manifest was stored (target.tag when pushed by tag) */
#define EVENT_PULL "pull"     /* a manifest was fetched (GET, not HEAD) */
#define EVENT_DELETE "delete" /* a manifest (by digest), a tag (target.tag) or a blob link was deleted */
#define EVENT_TAG "tag"       /* a push moved an existing tag to another manifest (target.previous: the old one) */
#define EVENT_EXPIRE "expire" /* a lifecycle policy expired an image */
#define EVENT_GC "gc"         /* garbage collection deleted a blob */

/* Bits of an action set (webhook filters). */
#define EVENT_BIT_PUSH 1u
#define EVENT_BIT_PULL 2u
#define EVENT_BIT_DELETE 4u
#define EVENT_BIT_TAG 8u
#define EVENT_BIT_EXPIRE 16u
#define EVENT_BIT_GC 32u
#define EVENT_BITS_ALL 63u

#define EVENTS_ACTOR_MAX 64      /* actor (user or token name) kept per event */
#define EVENTS_ADDR_MAX 64       /* client address text */
#define EVENTS_METHOD_MAX 8      /* HTTP method */
#define EVENTS_USERAGENT_MAX 256 /* User-Agent kept per event (longer ones are cut) */
#define EVENTS_MEDIA_TYPE_MAX 256

/** Who caused an event, captured from the request (all fields may be empty: a tool, the janitor, anonymous). */
struct event_source {
    char actor[EVENTS_ACTOR_MAX + 1];
    char addr[EVENTS_ADDR_MAX + 1];
    char method[EVENTS_METHOD_MAX + 1];
    char useragent[EVENTS_USERAGENT_MAX + 1];
};

/** One event.  Strings may be NULL (absent); `size` < 0 is unknown. */
struct event {
    const char *action; /* EVENT_* */
    const char *repository;
    const char *digest;
    const char *media_type;
    int64_t size;
    const char *tag;
    const char *previous;            /* EVENT_TAG: the digest the tag pointed at before */
    const struct event_source *from; /* may be NULL */
    long long at_ms;                 /* milliseconds since the epoch; 0 = now */
};

/** Milliseconds since the epoch (the events' clock). */
long long events_now_ms(void);
/** EVENT_BIT_* of action `name` ("push", …), or 0 if unknown. */
unsigned events_action_bit(const char *name);
/** Parses a comma-separated list of action names ("push,delete") into EVENT_BIT_* bits in `out`.  Returns 0, or -1
 *  for an unknown name, an empty list or one longer than 255 bytes. */
int events_parse_actions(const char *list, unsigned *out);

/** write: records `ev` in the current transaction.  Returns 0, BERR_BAD_REQUEST (no action or repository) or
 *  BERR_DB.  E.g. lifecycle, in the transaction that deletes the manifest:
 *      events_emit(db, &(struct event){.action = EVENT_EXPIRE, .repository = repo, .digest = digest,
 *                                      .media_type = mt, .size = size, .tag = NULL, .from = NULL});
 *  and GC per deleted blob file: {.action = EVENT_GC, .repository = "" (no repository links it any more),
 *  .digest = digest, .media_type = "application/octet-stream", .size = size}.  `from` NULL = berth itself. */
int events_emit(struct db *db, const struct event *ev);

/** write: records the push of manifest `digest` (`tag` may be NULL), and when `previous` (what the tag pointed at
 *  before, from events_tag_target) is another manifest, the tag move as an EVENT_TAG event too. */
int events_manifest_pushed(struct db *db, const char *repo, const char *digest, const char *media_type, int64_t size,
                           const char *tag, const char *previous, const struct event_source *from);

/** The digest tag `tag` of `repo` points at, into `out` ("" if the tag does not exist).  Returns 0 or BERR_DB. */
int events_tag_target(struct db *db, const char *repo, const char *tag, char out[BERTH_DIGEST_MAX]);

/** Copies pull event `ev` into the in-memory buffer (no I/O, any thread).  Returns 0, or BERR_BUSY when the
 *  buffer is full (the event is dropped and counted). */
int events_pull_note(const struct event *ev);
/** write: inserts every buffered pull event in the current transaction and empties the buffer.  Returns 0 or
 *  BERR_DB (the taken events are then lost, and logged as such). */
int events_pull_flush(struct db *db);

/** One stored event, as read back (strings valid during the callback only; absent ones are NULL). */
struct event_row {
    int64_t id;
    const char *uuid;
    long long at_ms;
    struct event ev;
    struct event_source from;
};
/** Return non-zero to stop. */
typedef int (*events_cb)(void *ctx, const struct event_row *row);

/** Calls `cb` for events with id > `after`, in id order, at most `max`.  Returns 0 or BERR_DB. */
int events_each(struct db *db, int64_t after, int max, events_cb cb, void *ctx);
/** The largest event id (0 if none) into *out.  Returns 0 or BERR_DB. */
int events_last_id(struct db *db, int64_t *out);
/** write: deletes up to `max` events older than `before_ms`; *deleted (may be NULL) says how many.  Returns 0 or
 *  BERR_DB. */
int events_prune(struct db *db, long long before_ms, int max, int *deleted);

/** The Distribution notification event object of `row`: {id, timestamp, action, target{mediaType, digest, size,
 *  length, repository, url, tag}, request{addr, method, useragent}, actor{name}, source{addr}}.  `registry_url`
 *  (e.g. "http://registry:5000") prefixes target.url; `source_addr` is source.addr.  Returns a new reference or
 *  NULL on OOM. */
json_t *events_json(const struct event_row *row, const char *registry_url, const char *source_addr);
/** Formats `at_ms` as RFC 3339 UTC with milliseconds into `out` (at least 32 bytes). */
void events_format_time(long long at_ms, char *out, size_t size);

#endif
