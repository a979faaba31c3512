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
#include <libpq-fe.h>
#include "db_pg.h"
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
};

struct db_pgstmt {
    char name[16];
    int nparams;
    char *vals[PG_PARAMS_MAX]; /* malloc'd copies, NULL = SQL NULL */
    int lens[PG_PARAMS_MAX];
    int fmts[PG_PARAMS_MAX]; /* 0 text, 1 binary (blobs) */
    PGresult *res;
    int row;                           /* current row; -1 before the first step */
    unsigned gen;                      /* the connection's gen when prepared */
    char *text;                        /* uncached: the rewritten SQL, sent with each execution (PQexecParams) */
    Oid types[PG_PARAMS_MAX];          /* uncached: the parameter types (0 = inferred) */
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

static pthread_mutex_t migrate_lock = PTHREAD_MUTEX_INITIALIZER;
static int migrated; /* the schema was migrated by this process */

int db__pg_open(struct db *db, const char *url)
{
    int rc = 0;
    if ((db->pg = calloc(1, sizeof(*db->pg))) == NULL)
        return BERR_NOMEM;
    db->pg->c = PQconnectdb(url);
    if (db->pg->c == NULL || PQstatus(db->pg->c) != CONNECTION_OK) {
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

int db__pg_in_txn(struct db *db)
{
    return PQtransactionStatus(db->pg->c) != PQTRANS_IDLE;
}

int db__pg_last_error(struct db *db)
{
    /* 53100 disk_full; class 53 is "insufficient resources" */
    return strcmp(db->pg->sqlstate, "53100") == 0 ? BERR_NOSPACE : BERR_DB;
}

int db__pg_last_constraint(struct db *db)
{
    return strncmp(db->pg->sqlstate, "23", 2) == 0;
}

int db__pg_changes(struct db *db)
{
    return db->pg->changes;
}

/* After a failure: if the connection itself is gone (the server restarted, a network cut), reconnects once, so that
 * the next statement works; the failed one stays failed (its caller answers an error and the client retries). */
static void maybe_reconnect(struct db *db)
{
    struct db_pgconn *p = db->pg;
    if (PQstatus(p->c) != CONNECTION_BAD)
        return;
    PQreset(p->c);
    if (PQstatus(p->c) == CONNECTION_OK) {
        p->gen++;
        PQclear(PQexec(p->c, "SET client_min_messages = warning"));
        log_warn("postgresql: connection lost; reconnected");
    }
}

int db__pg_exec(struct db *db, const char *sql)
{
    PGresult *res = PQexec(db->pg->c, sql);
    ExecStatusType s = PQresultStatus(res);
    int rc = 0;
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        set_error(db, res, NULL);
        log_error("postgresql: %s (in: %.60s)", db->pg->errmsg, sql);
        rc = db__pg_last_error(db);
        maybe_reconnect(db);
    }
    PQclear(res);
    return rc;
}

int db__pg_begin(struct db *db)
{
    char sql[96];
    snprintf(sql, sizeof(sql), "BEGIN; SELECT pg_advisory_xact_lock(%lld)", DB_PG_WRITE_KEY);
    return db__pg_exec(db, sql) == 0 ? 0 : BERR_DB;
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

int db__pg_prepare(struct db_stmt *st, const char *sql, int slot)
{
    struct db *db = st->db;
    struct db_pgstmt *ps = calloc(1, sizeof(*ps));
    char *text;
    PGresult *res;
    Oid types[PG_PARAMS_MAX] = {0};
    unsigned long long used;
    int n, rc = 0;
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
    ps->gen = db->pg->gen;
    for (int i = 0; i < n; i++) /* a parameter the text never uses (?3 of ?1 ?2 ?4) gets a type, or PQprepare fails */
        types[i] = used & (1ull << i) ? 0 : PG_TEXT_OID;
    if (slot < 0) { /* uncached: no server-side statement, one round trip per execution (parse errors show then) */
        memcpy(ps->types, types, sizeof(types));
        ps->text = text;
        st->pg = ps;
        return 0;
    }
    snprintf(ps->name, sizeof(ps->name), "s%d", slot);
    res = PQprepare(db->pg->c, ps->name, text, n, types);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        set_error(db, res, "prepare");
        maybe_reconnect(db);
        log_error("postgresql: %s (in: %.80s)", db->pg->errmsg, sql);
        rc = BERR_DB;
        free(ps);
    } else {
        st->pg = ps;
    }
    PQclear(res);
    free(text);
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

/* Executes the statement with its bindings.  Returns 0 or -1 (the error is recorded on the connection). */
static int execute(struct db_stmt *st)
{
    struct db_pgstmt *ps = st->pg;
    struct db_pgconn *p = st->db->pg;
    ExecStatusType s;
    if (ps->text != NULL)
        ps->res =
            PQexecParams(p->c, ps->text, ps->nparams, ps->types, (const char *const *)ps->vals, ps->lens, ps->fmts, 0);
    else
        ps->res = PQexecPrepared(p->c, ps->name, ps->nparams, (const char *const *)ps->vals, ps->lens, ps->fmts, 0);
    s = PQresultStatus(ps->res);
    if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
        set_error(st->db, ps->res, NULL);
        PQclear(ps->res);
        ps->res = NULL;
        maybe_reconnect(st->db);
        return -1;
    }
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
