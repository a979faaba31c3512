/*
 * webhook.h - delivering events (events.h) to HTTP receivers, as Distribution's notification envelope.
 *
 * Config: one `webhook = URL [secret=S] [events=push,delete,...] [repository=PATTERN]` line per receiver.  Every
 * webhook has a background thread that reads the events table after its persisted cursor (webhook_cursors: the
 * last event id it delivered), sends the matching ones in batches of at most BERTH_WEBHOOK_BATCH_MAX as
 * `{"events":[…]}` with `Content-Type: application/vnd.docker.distribution.events.v1+json`, and advances the
 * cursor only after a 2xx answer.  Any other answer, a timeout or a refused connection is retried with the same
 * batch after BERTH_WEBHOOK_BACKOFF_MIN_MS, doubling up to BERTH_WEBHOOK_BACKOFF_MAX_MS: the events wait in
 * berth.db, so a receiver that is down for hours, or a restart of berth, loses nothing (events older than
 * the `events_retention` setting excepted).  Delivery is at-least-once: a crash or stop between the receiver's 2xx and
 * the cursor's commit sends that batch again; receivers drop duplicates by the events' `id`.  A webhook seen for the
 * first time starts with the events recorded after that moment (no replay of history).
 *
 * With a secret, every request carries `X-Berth-Signature-256: sha256=<hex HMAC-SHA256 of the body keyed by the
 * secret>` (as GitHub's X-Hub-Signature-256).  The request path never waits for a delivery: it only inserts rows.
 */
#ifndef BERTH_WEBHOOK_H
#define BERTH_WEBHOOK_H

#include <stddef.h>
#include "defaults.h"
#include "httpc.h"

#define WEBHOOK_URL_MAX 1024
#define WEBHOOK_SECRET_MAX 256
#define WEBHOOK_SIGNATURE_HEADER "X-Berth-Signature-256"
#define WEBHOOK_CONTENT_TYPE "application/vnd.docker.distribution.events.v1+json"

struct webhook_conf {
    char url[WEBHOOK_URL_MAX + 1];
    struct httpc_url u;
    char secret[WEBHOOK_SECRET_MAX + 1]; /* "" = unsigned */
    unsigned actions;                    /* EVENT_BIT_* wanted */
    char pattern[BERTH_NAME_MAX + 1];    /* repositories wanted (authdb.h pattern); "" = all */
};

/** Parses the value of a `webhook =` line.  Returns 0, or BERR_BAD_REQUEST with a message in `err`. */
int webhook_parse(const char *value, struct webhook_conf *out, char *err, size_t errlen);

/** The hex HMAC-SHA256 of `body` keyed by `secret` into `out` (65 bytes). */
void webhook_sign(const char *secret, const void *body, size_t len, char out[65]);

/** Starts one delivery thread per webhook in `hooks` (n ≤ BERTH_WEBHOOKS_MAX), each with its own connection to
 *  `<datadir>/berth.db`, and the thread that deletes events older than `retention` seconds.  `registry_url`
 * ("http://host:port") prefixes the targets' url, `source_addr` is the envelope's source.addr.  Returns 0 or
 * BERR_BAD_REQUEST (two webhooks with one URL) or BERR_NOMEM. */
int webhooks_start(const char *datadir, const struct webhook_conf *hooks, int n, const char *registry_url,
                   const char *source_addr, long long retention);
/** Stops the threads (a delivery in flight finishes or times out first).  Undelivered events stay queued. */
void webhooks_stop(void);

#endif
