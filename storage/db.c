/* db.c - the backend-neutral half of db.h and its SQLite implementation: opening and migrating berth.db,
 * transactions, the prepared-statement cache.  The PostgreSQL half is db_pg.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "db.h"
#include "db_pg.h"
#include "defaults.h"
#include "err.h"
#include "log.h"

/*
 * Migrations, applied in order; PRAGMA user_version records how many ran.  Never edit one that has shipped: add a
 * new one.  The first schema already carries what lifecycle policies and online GC need: push and last-pull time
 * of every manifest, tag -> manifest, manifest -> blobs, index -> children, subject -> referrers, repository ->
 * blob links, and upload sessions with their start time.
 */
static const char *const migrations[] = {
    /* 1: the core schema */
    "CREATE TABLE repos ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE blobs (" /* one row per blob file under blobs/ */
    "  digest TEXT PRIMARY KEY,"
    "  size INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE repo_blobs (" /* a repository may serve or mount a blob only through a link */
    "  repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
    "  digest TEXT NOT NULL REFERENCES blobs(digest),"
    "  linked_at INTEGER NOT NULL,"
    "  PRIMARY KEY (repo_id, digest)) WITHOUT ROWID;"
    "CREATE INDEX repo_blobs_digest ON repo_blobs(digest);"
    "CREATE TABLE manifests ("
    "  id INTEGER PRIMARY KEY,"
    "  repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
    "  digest TEXT NOT NULL,"
    "  media_type TEXT NOT NULL,"
    "  artifact_type TEXT,"
    "  subject TEXT," /* digest of the subject manifest (referrers API), NULL if none */
    "  annotations TEXT,"
    "  size INTEGER NOT NULL,"
    "  body BLOB NOT NULL," /* the exact bytes pushed */
    "  pushed_at INTEGER NOT NULL,"
    "  last_pulled_at INTEGER,"
    "  UNIQUE (repo_id, digest));"
    "CREATE INDEX manifests_subject ON manifests(repo_id, subject) WHERE subject IS NOT NULL;"
    "CREATE TABLE manifest_blobs (" /* config and layers of an image manifest */
    "  manifest_id INTEGER NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,"
    "  digest TEXT NOT NULL,"
    "  PRIMARY KEY (manifest_id, digest)) WITHOUT ROWID;"
    "CREATE INDEX manifest_blobs_digest ON manifest_blobs(digest);"
    "CREATE TABLE manifest_children (" /* index -> child manifests, by digest within the same repository */
    "  parent_id INTEGER NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,"
    "  child_digest TEXT NOT NULL,"
    "  PRIMARY KEY (parent_id, child_digest)) WITHOUT ROWID;"
    "CREATE TABLE tags ("
    "  repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  manifest_id INTEGER NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,"
    "  updated_at INTEGER NOT NULL,"
    "  PRIMARY KEY (repo_id, name)) WITHOUT ROWID;"
    "CREATE INDEX tags_manifest ON tags(manifest_id);"
    "CREATE TABLE uploads ("
    "  uuid TEXT PRIMARY KEY,"
    "  repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
    "  started_at INTEGER NOT NULL) WITHOUT ROWID;",
    /* 2: authentication (authdb.h): users, robot tokens, grants; only hashes of secrets */
    "CREATE TABLE users ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  pwhash TEXT NOT NULL," /* crypto_pwhash_str (argon2id) */
    "  is_admin INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE TABLE tokens ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  secret_hash BLOB NOT NULL," /* BLAKE2b-256 of the 256-bit random secret */
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL," /* 0 = never */
    "  revoked_at INTEGER);"
    "CREATE UNIQUE INDEX tokens_live_name ON tokens(name) WHERE revoked_at IS NULL;"
    "CREATE TABLE grants ("
    "  subject_kind INTEGER NOT NULL," /* 0 anonymous, 1 user, 2 token */
    "  subject TEXT NOT NULL,"         /* '' for anonymous */
    "  pattern TEXT NOT NULL,"
    "  actions INTEGER NOT NULL," /* AUTH_PULL | AUTH_PUSH | AUTH_DELETE | AUTH_ADMIN */
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (subject_kind, subject, pattern)) WITHOUT ROWID;",
    /* 3: the immutable id of a user or token (authdb.h), which bearer tokens carry: a name reused after a delete or
     * revocation is another identity */
    "ALTER TABLE users ADD COLUMN uid TEXT;"
    "UPDATE users SET uid = lower(hex(randomblob(16)));"
    "CREATE UNIQUE INDEX users_uid ON users(uid);"
    "ALTER TABLE tokens ADD COLUMN uid TEXT;"
    "UPDATE tokens SET uid = lower(hex(randomblob(16)));"
    "CREATE UNIQUE INDEX tokens_uid ON tokens(uid);",
    /* 4: storage counts kept by triggers (stats.h), so /metrics never scans: one row, filled once from the tables */
    "CREATE TABLE stats ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  blobs INTEGER NOT NULL, blob_bytes INTEGER NOT NULL, manifests INTEGER NOT NULL,"
    "  repos INTEGER NOT NULL, uploads INTEGER NOT NULL);"
    "INSERT INTO stats VALUES (1, (SELECT count(*) FROM blobs), (SELECT coalesce(sum(size), 0) FROM blobs),"
    "  (SELECT count(*) FROM manifests), (SELECT count(*) FROM repos), (SELECT count(*) FROM uploads));"
    "CREATE TRIGGER stats_blob_add AFTER INSERT ON blobs BEGIN"
    "  UPDATE stats SET blobs = blobs + 1, blob_bytes = blob_bytes + NEW.size; END;"
    "CREATE TRIGGER stats_blob_del AFTER DELETE ON blobs BEGIN"
    "  UPDATE stats SET blobs = blobs - 1, blob_bytes = blob_bytes - OLD.size; END;"
    "CREATE TRIGGER stats_manifest_add AFTER INSERT ON manifests BEGIN UPDATE stats SET manifests = manifests + 1; END;"
    "CREATE TRIGGER stats_manifest_del AFTER DELETE ON manifests BEGIN UPDATE stats SET manifests = manifests - 1; END;"
    "CREATE TRIGGER stats_repo_add AFTER INSERT ON repos BEGIN UPDATE stats SET repos = repos + 1; END;"
    "CREATE TRIGGER stats_repo_del AFTER DELETE ON repos BEGIN UPDATE stats SET repos = repos - 1; END;"
    "CREATE TRIGGER stats_upload_add AFTER INSERT ON uploads BEGIN UPDATE stats SET uploads = uploads + 1; END;"
    "CREATE TRIGGER stats_upload_del AFTER DELETE ON uploads BEGIN UPDATE stats SET uploads = uploads - 1; END;",
    /* 5: lifecycle policies (lifecycle.h): one ECR policy document per repository, stored as pushed */
    "CREATE TABLE lifecycle_policies ("
    "  repo_id INTEGER PRIMARY KEY REFERENCES repos(id) ON DELETE CASCADE,"
    "  policy TEXT NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    /* lifecycle and GC ask "which index of the repository references this child?" */
    "CREATE INDEX manifest_children_child ON manifest_children(child_digest);",
    /* 6: online GC (gc.h): blobs whose rows GC deleted and whose files it has not unlinked yet */
    "CREATE TABLE gc_pending (digest TEXT PRIMARY KEY) WITHOUT ROWID;",
    /* 7: the ECR API (accesskey.h, ecrdb.h): access keys with sealed secrets, repository settings and tags */
    "CREATE TABLE access_keys ("
    "  id TEXT PRIMARY KEY," /* BK + 18 upper-case alphanumerics */
    "  user TEXT NOT NULL,"
    "  description TEXT NOT NULL DEFAULT '',"
    "  nonce BLOB NOT NULL,"  /* crypto_secretbox nonce */
    "  sealed BLOB NOT NULL," /* crypto_secretbox of the secret under keys/accesskeys.key */
    "  created_at INTEGER NOT NULL,"
    "  revoked_at INTEGER) WITHOUT ROWID;"
    "CREATE INDEX access_keys_user ON access_keys(user);"
    "CREATE TABLE ecr_repos (" /* ECR settings of a repository; absent = defaults (MUTABLE) */
    "  repo_id INTEGER PRIMARY KEY REFERENCES repos(id) ON DELETE CASCADE,"
    "  tag_mutability TEXT NOT NULL DEFAULT 'MUTABLE',"
    "  mutability_filters TEXT);" /* JSON array of {filterType, filter}, NULL if none */
    "CREATE TABLE ecr_tags ("     /* resource tags (TagResource) of a repository */
    "  repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
    "  key TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  PRIMARY KEY (repo_id, key)) WITHOUT ROWID;"
    "CREATE TABLE ecr_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;",
    /* 8: events (events.h) and the webhooks' delivery cursors (webhook.h) */
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT," /* never reused: a delivery cursor is the last id delivered */
    "  uuid TEXT NOT NULL,"                   /* the envelope's event id */
    "  at_ms INTEGER NOT NULL,"
    "  action TEXT NOT NULL,"
    "  repository TEXT NOT NULL,"
    "  digest TEXT, media_type TEXT, size INTEGER, tag TEXT, previous TEXT,"
    "  actor TEXT, addr TEXT, method TEXT, useragent TEXT);"
    "CREATE TABLE webhook_cursors ("
    "  webhook TEXT PRIMARY KEY," /* its URL */
    "  last_id INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL) WITHOUT ROWID;",
    /* 9: storage quotas (quota.h).  repos.bytes = the sizes of the blobs a repository links; quotas.used = the sum
     * of repos.bytes over the repositories its pattern matches (GLOB has the patterns' semantics: '*' matches any
     * characters, '/' included; the pattern grammar has no other GLOB metacharacter).  Both are kept by triggers on
     * every path that links or unlinks a blob; deleting a repository unlinks its blobs first. */
    "CREATE TABLE quotas ("
    "  pattern TEXT PRIMARY KEY,"
    "  limit_bytes INTEGER NOT NULL,"
    "  used INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL) WITHOUT ROWID;"
    "ALTER TABLE repos ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;"
    "UPDATE repos SET bytes = (SELECT coalesce(sum(b.size), 0) FROM repo_blobs l JOIN blobs b "
    "  ON b.digest = l.digest WHERE l.repo_id = repos.id);"
    "CREATE TRIGGER repo_blobs_bytes_add AFTER INSERT ON repo_blobs BEGIN"
    "  UPDATE repos SET bytes = bytes + coalesce((SELECT size FROM blobs WHERE digest = NEW.digest), 0)"
    "  WHERE id = NEW.repo_id;"
    "  UPDATE quotas SET used = used + coalesce((SELECT size FROM blobs WHERE digest = NEW.digest), 0)"
    "  WHERE (SELECT name FROM repos WHERE id = NEW.repo_id) GLOB pattern; END;"
    "CREATE TRIGGER repo_blobs_bytes_del AFTER DELETE ON repo_blobs BEGIN"
    "  UPDATE repos SET bytes = bytes - coalesce((SELECT size FROM blobs WHERE digest = OLD.digest), 0)"
    "  WHERE id = OLD.repo_id;"
    "  UPDATE quotas SET used = used - coalesce((SELECT size FROM blobs WHERE digest = OLD.digest), 0)"
    "  WHERE (SELECT name FROM repos WHERE id = OLD.repo_id) GLOB pattern; END;"
    "CREATE TRIGGER repos_unlink_before_delete BEFORE DELETE ON repos BEGIN"
    "  DELETE FROM repo_blobs WHERE repo_id = OLD.id; END;",
    /* 10: upload sessions on S3 (s3upload.h): what any node needs to continue a session - the multipart upload,
     * its parts' ETags (one per line, parts 1..n), the bytes after the last part (< 5 MiB), the SHA-256 state of
     * every byte so far - with the size as the compare-and-set guard of each update. */
    "CREATE TABLE upload_s3 ("
    "  uuid TEXT PRIMARY KEY,"
    "  mpu_id TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  parts TEXT NOT NULL,"
    "  tail BLOB NOT NULL,"
    "  sha BLOB NOT NULL,"
    "  updated_at INTEGER NOT NULL) WITHOUT ROWID;",
    /* 11: the started lifecycle-policy preview of a repository (ECR StartLifecyclePolicyPreview; ecrdb.h) */
    "CREATE TABLE ecr_lifecycle_previews ("
    "  repo_id INTEGER PRIMARY KEY REFERENCES repos(id) ON DELETE CASCADE,"
    "  policy TEXT NOT NULL,"
    "  started_at INTEGER NOT NULL);",
};

long long db_now(void)
{
    return (long long)time(NULL);
}

long long db_sqlite_memory(void)
{
    return (long long)sqlite3_memory_used();
}

static struct {
    int pg;
    char url[DB_METADATA_MAX];
} backend;

int db_set_metadata(const char *metadata)
{
    if (metadata == NULL || metadata[0] == '\0' || strcmp(metadata, "sqlite") == 0) {
        backend.pg = 0;
        return 0;
    }
    if ((strncmp(metadata, "postgresql://", 13) != 0 && strncmp(metadata, "postgres://", 11) != 0) ||
        strlen(metadata) >= sizeof(backend.url))
        return BERR_BAD_REQUEST;
    snprintf(backend.url, sizeof(backend.url), "%s", metadata);
    backend.pg = 1;
    return 0;
}

int db_metadata_is_pg(void)
{
    return backend.pg;
}

/* The BERR code for the connection's last error: a full disk (SQLITE_FULL) is BERR_NOSPACE (507), not a
 * database fault, so that the client learns the one thing it can act on. */
int db_last_error(struct db *db)
{
    if (db->kind == DB_PG)
        return db__pg_last_error(db);
    return (sqlite3_extended_errcode(db->h) & 0xff) == SQLITE_FULL ? BERR_NOSPACE : BERR_DB;
}

int db_unreachable(void)
{
    return backend.pg && db__pg_unreachable();
}

int db_last_constraint(struct db *db)
{
    if (db->kind == DB_PG)
        return db__pg_last_constraint(db);
    return (sqlite3_extended_errcode(db->h) & 0xff) == SQLITE_CONSTRAINT;
}

const char *db_errmsg(struct db *db)
{
    return db->kind == DB_PG ? db__pg_errmsg(db) : sqlite3_errmsg(db->h);
}

int db_error(struct db *db)
{
    log_error("%s: %s", db->kind == DB_PG ? "postgresql" : "sqlite", db_errmsg(db));
    return db_last_error(db);
}

int db_in_txn(struct db *db)
{
    return db->kind == DB_PG ? db__pg_in_txn(db) : !sqlite3_get_autocommit(db->h);
}

int db_exec(struct db *db, const char *sql)
{
    char *msg = NULL;
    if (db->kind == DB_PG)
        return db__pg_exec(db, sql);
    if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) != SQLITE_OK) {
        log_error("sqlite: %s (in: %.60s)", msg ? msg : sqlite3_errmsg(db->h), sql);
        sqlite3_free(msg);
        return db_last_error(db);
    }
    return 0;
}

static int migrate(struct db *db)
{
    sqlite3_stmt *st;
    int version = 0, n = (int)(sizeof(migrations) / sizeof(migrations[0]));
    if (db_begin(db) != 0)
        return BERR_DB;
    if (sqlite3_prepare_v2(db->h, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            version = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    if (version > n) {
        log_error("berth.db has schema version %d, newer than this berth (%d)", version, n);
        db_rollback(db);
        return BERR_DB;
    }
    for (; version < n; version++) {
        char pragma[64];
        if (db_exec(db, migrations[version]) != 0) {
            db_rollback(db);
            return BERR_DB;
        }
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", version + 1);
        if (db_exec(db, pragma) != 0) {
            db_rollback(db);
            return BERR_DB;
        }
    }
    return db_commit(db);
}

static int open_sqlite(struct db *db, const char *datadir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", datadir, DB_FILE);
    if (sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        log_error("cannot open %s: %s", path, db->h ? sqlite3_errmsg(db->h) : "out of memory");
        return BERR_DB;
    }
    sqlite3_busy_timeout(db->h, BERTH_DB_BUSY_TIMEOUT_MS);
    if (db_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;") != 0 ||
        migrate(db) != 0)
        return BERR_DB;
    return 0;
}

int db_open(const char *datadir, struct db **out)
{
    struct db *db = calloc(1, sizeof(*db));
    int rc;
    if (db == NULL)
        return BERR_NOMEM;
    for (int i = 0; i < DB_STMT_MAX; i++)
        db->stmts[i].db = db;
    db->kind = backend.pg ? DB_PG : DB_SQLITE;
    rc = db->kind == DB_PG ? db__pg_open(db, backend.url) : open_sqlite(db, datadir);
    if (rc != 0) {
        db_close(db);
        return BERR_DB;
    }
    *out = db;
    return 0;
}

void db_close(struct db *db)
{
    if (db == NULL)
        return;
    for (int i = 0; i < DB_STMT_MAX; i++) {
        sqlite3_finalize(db->stmts[i].s);
        db__pg_stmt_free(&db->stmts[i]);
    }
    if (db->kind == DB_PG)
        db__pg_close(db);
    else
        sqlite3_close(db->h);
    free(db);
}

struct db_stmt *db_prepare(struct db *db, const char *sql)
{
    struct db_stmt *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return NULL;
    st->db = db;
    if (db->kind == DB_PG) {
        if (db__pg_prepare(st, sql, -1) != 0) {
            free(st);
            return NULL;
        }
        return st;
    }
    if (sqlite3_prepare_v2(db->h, sql, -1, &st->s, NULL) != SQLITE_OK) {
        log_error("sqlite prepare: %s (in: %.80s)", sqlite3_errmsg(db->h), sql);
        free(st);
        return NULL;
    }
    return st;
}

void db_finalize(struct db_stmt *st)
{
    if (st == NULL)
        return;
    sqlite3_finalize(st->s);
    db__pg_stmt_free(st);
    free(st);
}

struct db_stmt *db_stmt(struct db *db, int slot, const char *sql)
{
    struct db_stmt *st;
    if (slot < 0 || slot >= DB_STMT_MAX) {
        log_error("statement slot %d out of range (in: %.80s)", slot, sql);
        return NULL;
    }
    st = &db->stmts[slot];
    if (db->kind == DB_PG)
        return db__pg_cached(st, sql, slot) == 0 ? st : NULL;
    if (st->s == NULL) {
        if (sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &st->s, NULL) != SQLITE_OK) {
            log_error("sqlite prepare: %s (in: %.80s)", sqlite3_errmsg(db->h), sql);
            st->s = NULL;
            return NULL;
        }
    } else {
        sqlite3_reset(st->s);
        sqlite3_clear_bindings(st->s);
    }
    return st;
}

/* 1 if this connection took the maintenance lock in a session since lost. */
static int maint_lost(struct db *db)
{
    return db->maint_held && db_session(db) != db->maint_session;
}

int db_begin(struct db *db)
{
    int rc = db->kind == DB_PG ? db__pg_begin(db) : db_exec(db, "BEGIN IMMEDIATE");
    if (rc == 0 && maint_lost(db)) { /* checked after BEGIN: it may have been the statement that reconnected */
        db_rollback(db);
        log_warn("postgresql: the session that held the maintenance lock was lost: no more writes under it");
        return BERR_UNAVAILABLE;
    }
    return rc;
}

int db_begin_read(struct db *db)
{
    return db_exec(db, db->kind == DB_PG ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN");
}

int db_maint_trylock(struct db *db)
{
    char sql[96];
    struct db_stmt *st;
    int got = 0;
    if (db->kind != DB_PG)
        return 1;
    snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock(%lld)", DB_PG_MAINT_KEY);
    if ((st = db_prepare(db, sql)) != NULL && db_step(st) == DB_ROW)
        got = db_column_int64(st, 0) != 0;
    db_finalize(st);
    if (got) {
        db->maint_held = 1;
        db->maint_session = db_session(db);
    }
    return got;
}

int db_named_trylock(struct db *db, const char *name)
{
    unsigned long long h = 1469598103934665603ull; /* FNV-1a of the name: the lock's key */
    char sql[96];
    struct db_stmt *st;
    int got = 0;
    if (db->kind != DB_PG)
        return 1;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock(%lld)", (long long)(h & 0x7fffffffffffffffull));
    if ((st = db_prepare(db, sql)) != NULL && db_step(st) == DB_ROW)
        got = db_column_int64(st, 0) != 0;
    db_finalize(st);
    return got;
}

void db_maint_unlock(struct db *db)
{
    char sql[96];
    int lost = maint_lost(db);
    db->maint_held = 0;
    if (db->kind != DB_PG || lost) /* a lost session's locks went with it */
        return;
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(%lld)", DB_PG_MAINT_KEY);
    db_exec(db, sql);
}

unsigned db_session(struct db *db)
{
    return db->kind == DB_PG ? db__pg_gen(db) : 0;
}

int db_commit(struct db *db)
{
    return db_exec(db, "COMMIT");
}

void db_rollback(struct db *db)
{
    if (db->kind == DB_PG)
        db__pg_exec(db, "ROLLBACK");
    else
        sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
}
