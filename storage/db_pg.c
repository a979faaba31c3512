/*
 * db_pg.c - the PostgreSQL implementation of db.h over libpq.
 *
 * `?` placeholders are rewritten to $1, $2, … (db.h's SQL is written once).  A cached statement (db_stmt) is prepared
 * once per connection (PQprepare, named "s<slot>"), so each later use is one round trip (PQexecPrepared); an
 * uncached one (db_prepare) is sent with its parameters at each execution (PQexecParams, also one round trip, and no
 * server-side statement to deallocate).  Bindings are copied (text as text, blobs in binary format); the first
 * db_step executes and later steps walk the result's rows.  Integers come back as decimal text and are parsed;
 * bytea columns are decoded on demand.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libpq-fe.h>
#include "clock.h"
#include "db_pg.h"
#include "defaults.h"
#include "err.h"
#include "log.h"

#define PG_BYTEA_OID 17  /* pg_type.oid of bytea */
#define PG_BOOL_OID 16   /* pg_type.oid of boolean */
#define PG_TEXT_OID 25   /* pg_type.oid of text */
#define PG_PARAMS_MAX 64 /* placeholders in one statement */
#define PG_COLS_MAX 32   /* bytea columns decoded per row (as many as a result has, up to this) */

struct db_pgconn {
    PGconn *c;
    int changes;      /* rows changed by the last INSERT, UPDATE or DELETE */
    char sqlstate[6]; /* of the last error, "" if none */
    char errmsg[512]; /* of the last error */
    unsigned gen;     /* bumped by every reconnect: statements prepared before it are gone */
    int lost;         /* the last error was the connection's, not the statement's (db__pg_last_error) */
    int txn_lost;     /* the connection was lost inside a transaction: every statement fails until ROLLBACK */
};

/* 1 while this process's last attempt to (re)connect to the server failed: requests then answer 503. */
static _Atomic int unreachable;
/* After a reconnect that failed slowly (the server's host gone from the network: connect_timeout ran out), every
 * connection fails at once until then (CLOCK_MONOTONIC ms) instead of each worker waiting for its own timeout in
 * turn.  A refused connection (the server stopped) fails fast and never sets it. */
static _Atomic long long slow_until;

/* 1 (the database marked unreachable) while the back-off after a slow failed connect lasts: fail at once rather
 * than wait for another timeout. */
static int backing_off(void)
{
    if (clock_mono_ms() >= slow_until)
        return 0;
    unreachable = 1;
    return 1;
}

/* After a failed connect begun at `t0` (CLOCK_MONOTONIC ms): starts the back-off if it failed slowly (a timeout). */
static void note_failed_connect(long long t0)
{
    long long t1 = clock_mono_ms();
    if (t1 - t0 >= BERTH_PG_SLOW_CONNECT_MS)
        slow_until = t1 + BERTH_PG_RECONNECT_BACKOFF_MS;
}

struct db_pgstmt {
    char name[16];
    int nparams;
    char *vals[PG_PARAMS_MAX]; /* malloc'd copies, NULL = SQL NULL */
    int lens[PG_PARAMS_MAX];
    int fmts[PG_PARAMS_MAX]; /* 0 text, 1 binary (blobs) */
    PGresult *res;
    int row;                           /* current row; -1 before the first step */
    unsigned gen;                      /* the connection's gen when prepared */
    char *text;                        /* the rewritten SQL: sent with each execution (PQexecParams) when uncached,
                                          prepared again after a reconnect when cached */
    Oid types[PG_PARAMS_MAX];          /* the parameter types (0 = inferred) */
    unsigned char *blobs[PG_COLS_MAX]; /* decoded bytea columns of the current row (valid until the next step) */
    size_t blob_lens[PG_COLS_MAX];
};

static void set_error(struct db *db, const PGresult *res, const char *what)
{
    struct db_pgconn *p = db->pg;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    if (msg == NULL || msg[0] == '\0')
        msg = PQerrorMessage(p->c);
    snprintf(p->sqlstate, sizeof(p->sqlstate), "%s", state ? state : "");
    snprintf(p->errmsg, sizeof(p->errmsg), "%s%s%.*s", what ? what : "", what ? ": " : "", (int)strcspn(msg, "\n"),
             msg);
}

/* Drops the server's notices (e.g. "there is no transaction in progress"): they are not errors. */
static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    log_debug("postgresql: %.*s", (int)strcspn(message, "\n"), message);
}

/* Connects with the URL's settings over Berth's defaults for timeouts and keepalives (defaults.h): libpq expands the
 * URL in place of "dbname", and a setting later in the arrays overrides an earlier one, so the URL's come last. */
static PGconn *connect_url(const char *url)
{
    static const char *const keys[] = {"connect_timeout",     "tcp_user_timeout", "keepalives", "keepalives_idle",
                                       "keepalives_interval", "keepalives_count", "dbname",     NULL};
    const char *vals[] = {BERTH_PG_CONNECT_TIMEOUT_S,     BERTH_PG_TCP_USER_TIMEOUT_MS, "1", BERTH_PG_KEEPALIVES_IDLE_S,
                          BERTH_PG_KEEPALIVES_INTERVAL_S, BERTH_PG_KEEPALIVES_COUNT,    url, NULL};
    return PQconnectdbParams(keys, vals, 1);
}

static pthread_mutex_t migrate_lock = PTHREAD_MUTEX_INITIALIZER;
static int migrated; /* the schema was migrated by this process */

int db__pg_open(struct db *db, const char *url)
{
    int rc = 0;
    long long t0;
    if ((db->pg = calloc(1, sizeof(*db->pg))) == NULL)
        return BERR_NOMEM;
    if (backing_off()) {
        log_error("postgresql: cannot connect: the last attempt timed out; retrying after a pause");
        return BERR_DB;
    }
    t0 = clock_mono_ms();
    db->pg->c = connect_url(url);
    unreachable = db->pg->c == NULL || PQstatus(db->pg->c) != CONNECTION_OK;
    if (unreachable) {
        note_failed_connect(t0);
        log_error("postgresql: cannot connect: %.*s", db->pg->c ? (int)strcspn(PQerrorMessage(db->pg->c), "\n") : 14,
                  db->pg->c ? PQerrorMessage(db->pg->c) : "out of memory");
        return BERR_DB;
    }
    PQsetNoticeProcessor(db->pg->c, quiet_notice, NULL);
    if (db__pg_exec(db, "SET client_min_messages = warning") != 0)
        return BERR_DB;
    pthread_mutex_lock(&migrate_lock);
    if (!migrated && (rc = schema_pg_migrate(db)) == 0)
        migrated = 1;
    pthread_mutex_unlock(&migrate_lock);
    return rc;
}

void db__pg_close(struct db *db)
{
    if (db->pg == NULL)
        return;
    PQfinish(db->pg->c);
    free(db->pg);
    db->pg = NULL;
}

const char *db__pg_errmsg(struct db *db)
{
    return db->pg->errmsg[0] ? db->pg->errmsg : PQerrorMessage(db->pg->c);
}

unsigned db__pg_gen(struct db *db)
{
    return db->pg->gen;
}

/* A connection that is gone (PQTRANS_UNKNOWN) holds a transaction of ours only if one was lost with it: a statement
 * that fails inside a transaction sets txn_lost before anything else can see the connection bad. */
static int pg_in_txn(struct db_pgconn *p)
{
    PGTransactionStatusType s = PQtransactionStatus(p->c);
    return s == PQTRANS_UNKNOWN ? p->txn_lost : s != PQTRANS_IDLE;
}

int db__pg_in_txn(struct db *db)
{
    return pg_in_txn(db->pg);
}

int db__pg_last_error(struct db *db)
{
    /* 53100 disk_full; class 53 is "insufficient resources" */
    if (strcmp(db->pg->sqlstate, "53100") == 0)
        return BERR_NOSPACE;
    return db->pg->lost ? BERR_UNAVAILABLE : BERR_DB;
}

int db__pg_unreachable(void)
{
    return unreachable;
}

int db__pg_last_constraint(struct db *db)
{
    return strncmp(db->pg->sqlstate, "23", 2) == 0;
}

int db__pg_changes(struct db *db)
{
    return db->pg->changes;
}

/* 1 if the last failure was the connection's: it is gone (the server restarted or stopped, a network cut) or the
 * server is shutting down or starting (SQLSTATE class 08, 57P01..57P03). */
static int conn_failed(struct db_pgconn *p)
{
    return PQstatus(p->c) == CONNECTION_BAD || strncmp(p->sqlstate, "08", 2) == 0 ||
           strncmp(p->sqlstate, "57P0", 4) == 0;
}

/* If the connection is gone, reconnects (once per call), so that the next statement works.  Returns 1 if the
 * connection is (again) usable, 0 if not. */
static int maybe_reconnect(struct db *db)
{
    struct db_pgconn *p = db->pg;
    long long t0;
    if (PQstatus(p->c) != CONNECTION_BAD)
        return 1;
    if (backing_off())
        return 0;
    t0 = clock_mono_ms();
    PQreset(p->c);
    unreachable = PQstatus(p->c) != CONNECTION_OK;
    if (unreachable) {
        note_failed_connect(t0);
        return 0;
    }
    p->gen++;
    PQclear(PQexec(p->c, "SET client_min_messages = warning"));
    log_warn("postgresql: connection lost; reconnected");
    return 1;
}

/* After a failed statement that ran outside a transaction (`idle`): if it failed because the connection was gone,
 * reconnects; returns 1 if the statement should be sent once more (nothing of it can have happened: an idle
 * connection has no transaction to lose, and a statement the server never received did not run). */
static int retry_after_loss(struct db *db, int idle)
{
    struct db_pgconn *p = db->pg;
    p->lost = conn_failed(p);
    if (!p->lost)
        return 0;
    if (!idle)
        p->txn_lost = 1; /* what follows must not run outside the transaction it belonged to, nor commit nothing */
    return maybe_reconnect(db) && idle && PQstatus(p->c) == CONNECTION_OK;
}

/* A statement on a connection whose transaction was lost: fails (BERR_UNAVAILABLE), except ROLLBACK (the server
 * already rolled it back: done) and BEGIN; those two and COMMIT (which fails: nothing was committed) end that
 * state.  Returns 1 if `sql` must not be sent (with *rc set), 0 to send it. */
static int txn_was_lost(struct db *db, const char *sql, int *rc)
{
    struct db_pgconn *p = db->pg;
    *rc = 0;
    if (!p->txn_lost)
        return 0;
    if (strncmp(sql, "BEGIN", 5) == 0 || (strncmp(sql, "ROLLBACK", 8) == 0 && strncmp(sql, "ROLLBACK TO", 11) != 0)) {
        p->txn_lost = 0;
        return strncmp(sql, "ROLLBACK", 8) == 0;
    }
    if (strncmp(sql, "COMMIT", 6) == 0)
        p->txn_lost = 0;
    snprintf(p->errmsg, sizeof(p->errmsg), "the connection was lost inside a transaction (rolled back)");
    p->sqlstate[0] = '\0';
    p->lost = 1;
    *rc = BERR_UNAVAILABLE;
    return 1;
}

int db__pg_exec(struct db *db, const char *sql)
{
    int idle, rc = 0;
    PGresult *res;
    ExecStatusType s;
    if (txn_was_lost(db, sql, &rc))
        return rc;
    maybe_reconnect(db);
    idle = !pg_in_txn(db->pg);
    res = PQexec(db->pg->c, sql);
    s = PQresultStatus(res);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        set_error(db, res, NULL);
        if (retry_after_loss(db, idle)) {
            PQclear(res);
            res = PQexec(db->pg->c, sql);
            s = PQresultStatus(res);
            if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
                set_error(db, res, NULL);
                db->pg->lost = conn_failed(db->pg);
            }
        }
    }
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        log_error("postgresql: %s (in: %.60s)", db->pg->errmsg, sql);
        rc = db__pg_last_error(db);
    } else {
        db->pg->lost = 0;
    }
    PQclear(res);
    return rc;
}

int db__pg_begin(struct db *db)
{
    char sql[96];
    snprintf(sql, sizeof(sql), "BEGIN; SELECT pg_advisory_xact_lock(%lld)", DB_PG_WRITE_KEY);
    return db__pg_exec(db, sql);
}

/*
 * Rewrites SQLite's dialect of `sql` to PostgreSQL's into a malloc'd string: `?` becomes $1, $2, … and `?N` $N
 * (outside quotes), and "CROSS JOIN" (SQLite's join-order hint, always with an ON clause in berth) plain JOIN.
 * *n = the number of parameters, *used a bit per parameter the text references.
 */
static char *rewrite(const char *sql, int *n, unsigned long long *used)
{
    size_t len = strlen(sql), o = 0;
    char *out = malloc(len * 4 + 1), quote = 0;
    int next = 0;
    *n = 0;
    *used = 0;
    if (out == NULL)
        return NULL;
    for (const char *p = sql; *p; p++) {
        if (quote) {
            if (*p == quote)
                quote = 0;
        } else if (*p == '\'' || *p == '"') {
            quote = *p;
        } else if (*p == '?') {
            int k = ++next;
            if (p[1] >= '0' && p[1] <= '9')
                k = (int)strtol(p + 1, (char **)&p, 10), p--;
            o += (size_t)sprintf(out + o, "$%d", k);
            if (k > *n)
                *n = k;
            if (k <= 64)
                *used |= 1ull << (k - 1);
            continue;
        } else if (strncmp(p, "CROSS JOIN ", 11) == 0) {
            p += 5;
            continue;
        }
        out[o++] = *p;
    }
    out[o] = '\0';
    return out;
}

static void free_blobs(struct db_pgstmt *ps)
{
    for (int i = 0; i < PG_COLS_MAX; i++) {
        PQfreemem(ps->blobs[i]);
        ps->blobs[i] = NULL;
    }
}

static void clear_result(struct db_pgstmt *ps)
{
    PQclear(ps->res);
    ps->res = NULL;
    ps->row = -1;
    free_blobs(ps);
}

void db__pg_clear(struct db_stmt *st)
{
    struct db_pgstmt *ps = st->pg;
    for (int i = 0; i < ps->nparams; i++) {
        free(ps->vals[i]);
        ps->vals[i] = NULL;
        ps->lens[i] = 0;
        ps->fmts[i] = 0;
    }
}

void db__pg_reset(struct db_stmt *st)
{
    clear_result(st->pg);
}

/* Prepares cached statement `ps` on the connection as it is now (its gen).  Returns PQprepare's result. */
static PGresult *server_prepare(struct db *db, struct db_pgstmt *ps)
{
    ps->gen = db->pg->gen;
    return PQprepare(db->pg->c, ps->name, ps->text, ps->nparams, ps->types);
}

int db__pg_prepare(struct db_stmt *st, const char *sql, int slot)
{
    struct db *db = st->db;
    struct db_pgstmt *ps = calloc(1, sizeof(*ps));
    char *text;
    PGresult *res;
    unsigned long long used;
    int n, idle, rc = 0;
    if (ps == NULL || (text = rewrite(sql, &n, &used)) == NULL) {
        free(ps);
        return BERR_NOMEM;
    }
    if (n > PG_PARAMS_MAX) {
        log_error("postgresql: %d placeholders, more than %d (in: %.80s)", n, PG_PARAMS_MAX, sql);
        free(text);
        free(ps);
        return BERR_DB;
    }
    ps->nparams = n;
    ps->row = -1;
    ps->text = text;
    for (int i = 0; i < n; i++) /* a parameter the text never uses (?3 of ?1 ?2 ?4) gets a type, or PQprepare fails */
        ps->types[i] = used & (1ull << i) ? 0 : PG_TEXT_OID;
    if (slot < 0) { /* uncached: no server-side statement, one round trip per execution (parse errors show then) */
        st->pg = ps;
        return 0;
    }
    snprintf(ps->name, sizeof(ps->name), "s%d", slot);
    maybe_reconnect(db);
    idle = !pg_in_txn(db->pg);
    res = server_prepare(db, ps);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        set_error(db, res, "prepare");
        if (retry_after_loss(db, idle)) {
            PQclear(res);
            res = server_prepare(db, ps);
            if (PQresultStatus(res) != PGRES_COMMAND_OK)
                set_error(db, res, "prepare");
        }
    }
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        log_error("postgresql: %s (in: %.80s)", db->pg->errmsg, sql);
        rc = db__pg_last_error(db);
        free(text);
        free(ps);
    } else {
        st->pg = ps;
    }
    PQclear(res);
    return rc;
}

int db__pg_cached(struct db_stmt *st, const char *sql, int slot)
{
    if (st->pg != NULL && st->pg->gen != st->db->pg->gen) { /* prepared on a connection that was reset */
        struct db *db = st->db;
        st->db = NULL; /* no DEALLOCATE: the server forgot it */
        db__pg_stmt_free(st);
        st->db = db;
    }
    if (st->pg == NULL)
        return db__pg_prepare(st, sql, slot);
    clear_result(st->pg);
    db__pg_clear(st);
    return 0;
}

void db__pg_stmt_free(struct db_stmt *st)
{
    struct db_pgstmt *ps = st->pg;
    if (ps == NULL)
        return;
    clear_result(ps);
    db__pg_clear(st);
    free(ps->text);
    free(ps);
    st->pg = NULL;
}

int db__pg_bind(struct db_stmt *st, int i, int type, const void *p, int64_t n)
{
    struct db_pgstmt *ps = st->pg;
    char *v = NULL;
    size_t len = 0;
    if (i < 1 || i > ps->nparams)
        return BERR_DB;
    if (type == DB__INT) {
        char num[24];
        len = (size_t)snprintf(num, sizeof(num), "%lld", (long long)n);
        v = strdup(num);
    } else if (type != DB__NULL) {
        len = n < 0 ? strlen(p) : (size_t)n;
        if ((v = malloc(len + 1)) != NULL) {
            memcpy(v, p, len);
            v[len] = '\0';
        }
    }
    if (type != DB__NULL && v == NULL)
        return BERR_NOMEM;
    free(ps->vals[i - 1]);
    ps->vals[i - 1] = v;
    ps->lens[i - 1] = (int)len;
    ps->fmts[i - 1] = type == DB__BLOB;
    return 0;
}

/* Sends the statement with its bindings (preparing a cached one again on a connection reset since).  Returns the
 * result: the failed PQprepare's if that failed. */
static PGresult *run_stmt(struct db *db, struct db_pgstmt *ps)
{
    PGconn *c = db->pg->c;
    if (ps->name[0] == '\0')
        return PQexecParams(c, ps->text, ps->nparams, ps->types, (const char *const *)ps->vals, ps->lens, ps->fmts, 0);
    if (ps->gen != db->pg->gen) {
        PGresult *res = server_prepare(db, ps);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            return res;
        PQclear(res);
    }
    return PQexecPrepared(c, ps->name, ps->nparams, (const char *const *)ps->vals, ps->lens, ps->fmts, 0);
}

static int failed(const PGresult *res)
{
    ExecStatusType s = PQresultStatus(res);
    return s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK;
}

/* Executes the statement with its bindings; one statement outside a transaction is sent again once if the
 * connection had gone away (the server restarted).  Returns 0 or -1 (the error is recorded on the connection). */
static int execute(struct db_stmt *st)
{
    struct db_pgstmt *ps = st->pg;
    struct db_pgconn *p = st->db->pg;
    int idle, rc;
    if (txn_was_lost(st->db, "", &rc))
        return -1;
    maybe_reconnect(st->db);
    idle = !pg_in_txn(p);
    ps->res = run_stmt(st->db, ps);
    if (failed(ps->res)) {
        set_error(st->db, ps->res, NULL);
        PQclear(ps->res);
        ps->res = NULL;
        if (!retry_after_loss(st->db, idle))
            return -1;
        if (failed(ps->res = run_stmt(st->db, ps))) {
            set_error(st->db, ps->res, NULL);
            p->lost = conn_failed(p);
            PQclear(ps->res);
            ps->res = NULL;
            return -1;
        }
    }
    p->lost = 0;
    const char *tag = PQcmdStatus(ps->res);
    if (strncmp(tag, "INSERT", 6) == 0 || strncmp(tag, "UPDATE", 6) == 0 || strncmp(tag, "DELETE", 6) == 0)
        p->changes = atoi(PQcmdTuples(ps->res));
    p->sqlstate[0] = '\0';
    p->errmsg[0] = '\0';
    return 0;
}

int db__pg_step(struct db_stmt *st)
{
    struct db_pgstmt *ps = st->pg;
    if (ps->res == NULL) {
        if (ps->row >= 0)
            return DB_DONE; /* stepped past the end and reset by nobody: stays done, as in SQLite's auto-reset */
        if (execute(st) != 0)
            return -1;
    }
    free_blobs(ps);
    if (++ps->row < PQntuples(ps->res))
        return DB_ROW;
    return DB_DONE;
}

int db__pg_is_null(struct db_stmt *st, int col)
{
    struct db_pgstmt *ps = st->pg;
    return ps->res == NULL || ps->row < 0 || ps->row >= PQntuples(ps->res) || col >= PQnfields(ps->res) ||
           PQgetisnull(ps->res, ps->row, col);
}

int64_t db__pg_int64(struct db_stmt *st, int col)
{
    struct db_pgstmt *ps = st->pg;
    const char *v;
    if (db__pg_is_null(st, col))
        return 0;
    v = PQgetvalue(ps->res, ps->row, col);
    if (PQftype(ps->res, col) == PG_BOOL_OID)
        return v[0] == 't';
    return strtoll(v, NULL, 10);
}

const char *db__pg_text(struct db_stmt *st, int col)
{
    struct db_pgstmt *ps = st->pg;
    if (db__pg_is_null(st, col))
        return NULL;
    if (PQftype(ps->res, col) == PG_BOOL_OID)
        return PQgetvalue(ps->res, ps->row, col)[0] == 't' ? "1" : "0";
    return PQgetvalue(ps->res, ps->row, col);
}

const void *db__pg_blob(struct db_stmt *st, int col)
{
    struct db_pgstmt *ps = st->pg;
    if (db__pg_is_null(st, col))
        return NULL;
    if (PQftype(ps->res, col) != PG_BYTEA_OID || col >= PG_COLS_MAX)
        return PQgetvalue(ps->res, ps->row, col);
    if (ps->blobs[col] == NULL)
        ps->blobs[col] = PQunescapeBytea((const unsigned char *)PQgetvalue(ps->res, ps->row, col), &ps->blob_lens[col]);
    return ps->blobs[col];
}

int db__pg_bytes(struct db_stmt *st, int col)
{
    struct db_pgstmt *ps = st->pg;
    if (db__pg_is_null(st, col))
        return 0;
    if (PQftype(ps->res, col) == PG_BYTEA_OID && col < PG_COLS_MAX)
        return db__pg_blob(st, col) != NULL ? (int)ps->blob_lens[col] : 0;
    return PQgetlength(ps->res, ps->row, col);
}
