/*
 * keys.h - the cluster's shared secrets in the metadata database (metadata = postgresql).
 *
 * With SQLite, secrets are files under <data>/keys/ (jwt.h, accesskey.h).  Several nodes on one PostgreSQL database
 * must share them instead, so that a token signed by one node verifies on another and a rotation reaches every node:
 * then each secret is one row of table shared_keys (name = the file name it replaces, value = the file's bytes).
 * Rows are written under the cluster-wide write lock (db_begin), so two nodes creating a first key agree on one.
 * keys.c keeps its own connection (opened on first use, guarded by a mutex); nothing here runs with SQLite.
 */
#ifndef BERTH_KEYS_H
#define BERTH_KEYS_H

#include <stddef.h>

#define KEYS_VALUE_MAX 256     /* bytes of one secret (a key file's content) */
#define KEYS_STAMP_POLL_MS 500 /* keys_stamp queries the database at most this often per process */
#define KEYS_RECHECK_MIN_MS 50 /* keys_stamp_recheck forces a query at most this often (bad tokens cannot flood) */

/** Reads secret `name` into `out` (`size` bytes), its length into *len.  Returns 0, BERR_NOT_FOUND or BERR_DB. */
int keys_get(const char *name, void *out, size_t size, size_t *len);
/** Stores secret `name` unless it exists (the first creator wins; read it back with keys_get).  Returns 0 or
 *  BERR_DB. */
int keys_create(const char *name, const void *value, size_t len);
/** In one write transaction: `prev` := `cur`, `cur` := value.  Returns 0 or BERR_DB. */
int keys_rotate(const char *cur, const char *prev, const void *value, size_t len);
/** A number that changes whenever a secret whose name starts with `prefix` changes (sum of their change counters),
 *  queried at most every KEYS_STAMP_POLL_MS; -1 if the database cannot be read. */
long long keys_stamp(const char *prefix);

/** Makes the next keys_stamp query the database now (a token signed with a key this node has not seen yet: another
 *  node may just have rotated), unless it did so less than KEYS_RECHECK_MIN_MS ago.  Returns 1 if it will. */
int keys_stamp_recheck(void);

#endif
