/*
 * authfail.h - failed-authentication counts shared by the nodes of a cluster (metadata = postgresql).
 *
 * The rate limits of failed logins (server/auth_throttle.c) and of failed ECR signatures (server/ecr_auth.c) count
 * in process memory, keyed by a 16-byte keyed hash of their subject.  With several nodes on one PostgreSQL
 * database that alone would give a guesser the limit once per node, so on PostgreSQL:
 *   - the hash key is one cluster-wide secret (shared_keys row AUTHFAIL_KEY_NAME, authfail_secret), so every node
 *     names a subject alike;
 *   - every failure is also queued (authfail_note: a mutex and a copy, never I/O on the caller's thread) for this
 *     module's thread, which adds the queue's failures to table auth_failures (one UPSERT per subject and batch,
 *     in autocommit on its own connection, outside the cluster write lock);
 *   - every AUTHFAIL_POLL_MS the thread reads the subjects whose cluster-wide count reached their limit and hands
 *     them to the limit's import function, which raises its local entry to that count: a subject blocked anywhere
 *     is blocked on every node within one poll, and the allow path stays an in-memory check;
 *   - rows whose window ended are deleted every AUTHFAIL_EXPIRE_MS.
 * A node that has not polled yet accepts guesses the others already blocked: at most the limit plus the cluster's
 * failure rate times (AUTHFAIL_POLL_MS + the UPSERT's delay) get through per window.
 * On SQLite (one node) nothing here runs: authfail_note returns at once, no thread, no table.
 */
#ifndef BERTH_AUTHFAIL_H
#define BERTH_AUTHFAIL_H

#include <stddef.h>

#define AUTHFAIL_KEY_NAME "authfail.key" /* shared_keys row of the hash key */
#define AUTHFAIL_KEY_BYTES 32            /* of that key (crypto_generichash_KEYBYTES) */
#define AUTHFAIL_SUBJECT_BYTES 16        /* a subject: keyed hash of its kind's inputs */
#define AUTHFAIL_POLL_MS 500             /* cluster-wide counts over the limit are read this often */
#define AUTHFAIL_EXPIRE_MS 60000         /* rows whose window ended are deleted this often (per node) */
#define AUTHFAIL_QUEUE_MAX 8192          /* failures queued for the thread; past it they count locally only */
#define AUTHFAIL_IMPORT_MAX 8192         /* subjects over their limit imported per poll */
#define AUTHFAIL_KINDS 8                 /* kinds that can be watched */

/** The kinds of subject, one per counter of the two rate limits (the `kind` column). */
enum authfail_kind {
    AUTHFAIL_LOGIN_USER = 1, /* failed logins of (address, user) */
    AUTHFAIL_LOGIN_ADDR = 2, /* failed logins of an address */
    AUTHFAIL_ECR_ADDR = 3,   /* failed ECR signatures of an address */
    AUTHFAIL_ECR_KEY = 4,    /* failed ECR signatures naming an access key id */
};

/** Raises the local count of `subject` to `count` failures since `start` (epoch seconds); called on the thread. */
typedef void (*authfail_import_fn)(int kind, const unsigned char subject[AUTHFAIL_SUBJECT_BYTES], long long start,
                                   int count);

/** 1 when failures are shared (metadata = postgresql), 0 on SQLite. */
int authfail_shared(void);
/** The cluster-wide hash key into `out` (created by the first node that asks).  Returns 0 or BERR_IO; on SQLite
 *  BERR_NOT_FOUND (callers use a process-random key). */
int authfail_secret(unsigned char out[AUTHFAIL_KEY_BYTES]);
/** Watches `kind`: subjects with at least `limit` failures within `window` seconds cluster-wide are passed to `fn`
 *  every poll.  The first call on PostgreSQL starts the thread.  Returns 0, or BERR_INTERNAL if the thread cannot
 *  start (then failures count per node only). */
int authfail_watch(int kind, int limit, int window, authfail_import_fn fn);
/** Queues one failure of `subject` at `now` (delta 1), or a reset of its count (delta 0, a successful login).
 *  Never blocks on I/O; nothing on SQLite or for an unwatched kind. */
void authfail_note(int kind, const unsigned char subject[AUTHFAIL_SUBJECT_BYTES], long long now, int delta);

#endif
