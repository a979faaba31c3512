/*
 * sessions.h - the live upload sessions of one server, and their files' lifecycle: reopening after a restart,
 * recovery at start, expiry of idle sessions.  Pure storage (no h2o): staging files through blobstore/upload,
 * rows through meta (reads on the caller's connection, deletions through the writer).
 *
 * A session is live when it is in the table; a request works on a session only while it holds it busy
 * (sessions_acquire .. sessions_release/sessions_drop), and only one request at a time can: a second one is
 * refused with BERR_BLOB_UPLOAD_INVALID.  Expiry takes the same busy mark before it unlinks anything, and a
 * session being reopened from disk is in the table (busy) before its file is opened: so expiry and reopening are
 * exclusive, and expiry never unlinks the staging file of a session that a request is using or reopening.
 * At most BERTH_SESSIONS_OPEN_MAX sessions stay live: past it, releasing a session closes the least recently used
 * idle one (its file and row stay; its next request reopens it as after a restart), so sessions left open by
 * clients cannot use up the process's descriptors.
 *
 * With blobs in S3 (blobstore_use_s3) a session's state is a database row that any berth process may change
 * (s3upload.h): the table then holds a session only while a request works on it (sessions_release drops it, the
 * next request reloads the state), recovery leaves sessions alone (they may be another node's), and expiry goes
 * by the state rows' age and the bucket's multipart uploads instead of staging files.
 *
 * Threads: every function may be called from any thread (one mutex guards the table); those that touch files or
 * wait for the writer block, so the server calls them on workers or the janitor, never on an event loop.
 */
#ifndef BERTH_SESSIONS_H
#define BERTH_SESSIONS_H

#include <time.h>
#include "blobstore.h"
#include "db.h"
#include "defaults.h"
#include "upload.h"

struct session {
    struct session *next; /* the table's */
    char uuid[BERTH_UUID_LEN + 1];
    char repo[BERTH_NAME_MAX + 1];
    struct upload *up; /* NULL while being reopened */
    int busy;
    time_t touched;
};

struct sessions;

/** A new empty table for the data in `bs` (which must outlive it).  Returns 0 or BERR_NOMEM. */
int sessions_new(const struct blobstore *bs, struct sessions **out);
/** Frees the table and every session in it (no file is touched).  Safe on NULL. */
void sessions_free(struct sessions *t);

/** Creates a new session of `repo` (a fresh staging file), live and busy.  Returns 0 or a BERR code. */
int sessions_create(struct sessions *t, const char *repo, struct session **out);
/** Marks session `uuid` of `repo` busy and returns it, reopening it from its staging file if it is not live (its
 *  row is looked up on `db`).  Returns 0, BERR_BLOB_UPLOAD_UNKNOWN (no such session in `repo`),
 *  BERR_BLOB_UPLOAD_INVALID (busy: another request, reopening or expiry holds it), or BERR_NOMEM / BERR_IO / BERR_DB.
 */
int sessions_acquire(struct sessions *t, struct db *db, const char *uuid, const char *repo, struct session **out);
/** Ends a request's hold of `s` (it stays live). */
void sessions_release(struct sessions *t, struct session *s);
/** Removes busy session `s` from the table and frees it (the staging file is the caller's business). */
void sessions_drop(struct sessions *t, struct session *s);

/** At start, before any request: reconciles staging files and session rows.  A row without a staging file is
 *  deleted (through the writer), a staging file without a row is removed, and tmp/ is emptied.  If the rows cannot
 *  all be read (BERR_DB, BERR_NOMEM), nothing is removed and that error is returned: a partial list must not cost
 *  a live session its data. */
int sessions_recover(struct sessions *t, struct db *db);
/** Removes every session whose staging file was last written before `cutoff` and that nobody holds: the file, the
 *  row (through the writer) and the live entry.  Returns the number removed, or BERR_IO if uploads/ cannot be
 *  read. */
int sessions_expire(struct sessions *t, time_t cutoff);

/* Test seam: the callback that collects the session rows during recovery (tests substitute a failing one). */
extern int (*sessions__collect)(void *ctx, const char *uuid);

#endif
