/* backup.c - online backup to one zstd-compressed tar stream (see backup.h); restore.c reads it back. */
#include <dirent.h>
#include <ftw.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>
#include "backup_internal.h"
#include "blobstore.h"
#include "db.h"
#include "digest.h"
#include "err.h"
#include "log.h"
#include "migrate.h"
#include "s3.h"

/* ---- the blob list ---- */

static int blob_cmp(const void *a, const void *b)
{
    return strcmp(((const struct blob *)a)->digest, ((const struct blob *)b)->digest);
}

struct blob *backup__list_find(struct bloblist *l, const char *digest)
{
    struct blob key;
    snprintf(key.digest, sizeof(key.digest), "%s", digest);
    return l->n == 0 ? NULL : bsearch(&key, l->b, l->n, sizeof(*l->b), blob_cmp);
}

int backup__list_add(struct bloblist *l, const char *digest, uint64_t size, int in_archive)
{
    char d[BERTH_DIGEST_MAX];
    if (digest_parse(digest, strlen(digest), d) != 0)
        return BERR_DIGEST_INVALID;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        struct blob *b = realloc(l->b, cap * sizeof(*b));
        if (b == NULL)
            return BERR_NOMEM;
        l->b = b;
        l->cap = cap;
    }
    memset(&l->b[l->n], 0, sizeof(l->b[0]));
    memcpy(l->b[l->n].digest, d, sizeof(d));
    l->b[l->n].size = size;
    l->b[l->n].in_archive = in_archive;
    l->n++;
    return 0;
}

void backup__list_sort(struct bloblist *l)
{
    if (l->n > 0)
        qsort(l->b, l->n, sizeof(*l->b), blob_cmp);
}

int backup__read_header(struct tarz_ctx *c, struct tarz_in *z, char id[64], struct bloblist *l)
{
    struct tarz_entry e;
    json_error_t je;
    json_t *j, *blobs, *row;
    char *text;
    size_t i;
    int rc;
    if ((rc = tarz_next(c, z, &e)) != 0)
        return rc;
    if (e.end || strcmp(e.name, BACKUP_HEADER_NAME) != 0)
        return tarz_fail(c, BERR_DIGEST_INVALID, "%s is not a berth backup (no %s first)", z->path, BACKUP_HEADER_NAME);
    if ((rc = tarz_text(c, z, &e, BACKUP_HEADER_MAX, &text)) != 0)
        return rc;
    j = json_loads(text, 0, &je);
    free(text);
    blobs = json_object_get(j, "blobs");
    if (j == NULL || json_integer_value(json_object_get(j, "format")) != BACKUP_FORMAT || !json_is_array(blobs) ||
        !json_is_string(json_object_get(j, "id"))) {
        json_decref(j);
        return tarz_fail(c, BERR_DIGEST_INVALID, "%s: unreadable or unsupported %s", z->path, BACKUP_HEADER_NAME);
    }
    snprintf(id, 64, "%s", json_string_value(json_object_get(j, "id")));
    json_array_foreach(blobs, i, row)
    {
        json_t *d = json_array_get(row, 0), *s = json_array_get(row, 1), *in = json_array_get(row, 2);
        if (!json_is_string(d) || !json_is_integer(s) || json_integer_value(s) < 0 || !json_is_integer(in) ||
            backup__list_add(l, json_string_value(d), (uint64_t)json_integer_value(s), json_integer_value(in) != 0) !=
                0) {
            json_decref(j);
            return tarz_fail(c, BERR_DIGEST_INVALID, "%s: bad blob entry %zu in %s", z->path, i, BACKUP_HEADER_NAME);
        }
    }
    json_decref(j);
    backup__list_sort(l);
    for (i = 1; i < l->n; i++)
        if (strcmp(l->b[i - 1].digest, l->b[i].digest) == 0)
            return tarz_fail(c, BERR_DIGEST_INVALID, "%s: blob %s listed twice", z->path, l->b[i].digest);
    return 0;
}

/* ---- backup ---- */

/* Copies berth.db of `datadir` into `snap` with the online backup API (a consistent read snapshot). */
static int snapshot_db(struct tarz_ctx *c, const char *datadir, const char *snap)
{
    char path[PATH_MAX];
    sqlite3 *src = NULL, *dst = NULL;
    sqlite3_backup *b;
    int rc = 0;
    snprintf(path, sizeof(path), "%s/%s", datadir, DB_FILE);
    if (access(path, R_OK) != 0)
        return tarz_fail(c, BERR_IO, "no %s in %s: %s", DB_FILE, datadir, strerror(errno));
    if (sqlite3_open_v2(path, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_open_v2(snap, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        rc = tarz_fail(c, BERR_DB, "cannot open the databases: %s", sqlite3_errmsg(src ? (dst ? dst : src) : src));
        goto out;
    }
    sqlite3_busy_timeout(src, BERTH_DB_BUSY_TIMEOUT_MS);
    sqlite3_busy_timeout(dst, BERTH_DB_BUSY_TIMEOUT_MS);
    if ((b = sqlite3_backup_init(dst, "main", src, "main")) == NULL) {
        rc = tarz_fail(c, BERR_DB, "sqlite backup: %s", sqlite3_errmsg(dst));
        goto out;
    }
    int step = sqlite3_backup_step(b, -1); /* all pages in one read transaction: one consistent snapshot */
    sqlite3_backup_finish(b);
    if (step != SQLITE_DONE)
        rc = tarz_fail(c, BERR_DB, "sqlite backup: %s", sqlite3_errstr(step));
    else if (sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) != SQLITE_OK)
        rc = tarz_fail(c, BERR_DB, "snapshot: %s", sqlite3_errmsg(dst));
out:
    sqlite3_close(src);
    sqlite3_close(dst);
    return rc;
}

/* The blobs table of the snapshot. */
static int snapshot_blobs(struct tarz_ctx *c, const char *snap, struct bloblist *l)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = 0, s;
    if (sqlite3_open_v2(snap, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT digest, size FROM blobs", -1, &st, NULL) != SQLITE_OK) {
        rc = tarz_fail(c, BERR_DB, "reading the snapshot: %s", sqlite3_errmsg(db));
        goto out;
    }
    while ((s = sqlite3_step(st)) == SQLITE_ROW && rc == 0)
        if (backup__list_add(l, (const char *)sqlite3_column_text(st, 0), (uint64_t)sqlite3_column_int64(st, 1), 1) !=
            0)
            rc = tarz_fail(c, BERR_DB, "bad blob row %s", (const char *)sqlite3_column_text(st, 0));
    if (rc == 0 && s != SQLITE_DONE)
        rc = tarz_fail(c, BERR_DB, "reading the snapshot: %s", sqlite3_errmsg(db));
    backup__list_sort(l);
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

int backup__key_name_ok(const char *n)
{
    if (n[0] == '\0' || n[0] == '.' || strlen(n) > 64)
        return 0;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
              *p == '-' || *p == '_'))
            return 0;
    return 1;
}

static int write_header(struct tarz_ctx *c, struct tarz_out *z, const char *id, const char *base,
                        const struct bloblist *l)
{
    json_t *j = json_object(), *arr = json_array();
    char *text;
    int rc;
    json_object_set_new(j, "format", json_integer(BACKUP_FORMAT));
    json_object_set_new(j, "id", json_string(id));
    json_object_set_new(j, "created_at", json_integer((json_int_t)time(NULL)));
    json_object_set_new(j, "base", base != NULL ? json_string(base) : json_null());
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(arr, json_pack("[sIi]", l->b[i].digest, (json_int_t)l->b[i].size, l->b[i].in_archive));
    json_object_set_new(j, "blobs", arr);
    text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (text == NULL)
        return tarz_fail(c, BERR_NOMEM, "out of memory");
    rc = tarz_mem(c, z, BACKUP_HEADER_NAME, text, strlen(text));
    free(text);
    return rc;
}

/* keys/<name> entries from directory `dir`; their sha256 go into `files`. */
static int write_keys(struct tarz_ctx *c, struct tarz_out *z, const char *dir, json_t *files)
{
    char path[PATH_MAX], name[128], hex[BERTH_DIGEST_MAX];
    struct dirent *de;
    DIR *d;
    int rc = 0;
    if ((d = opendir(dir)) == NULL)
        return errno == ENOENT ? 0 : tarz_fail(c, BERR_IO, "cannot read %s: %s", dir, strerror(errno));
    while (rc == 0 && (de = readdir(d)) != NULL) {
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (!backup__key_name_ok(de->d_name) || lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        snprintf(name, sizeof(name), "keys/%s", de->d_name);
        if ((rc = tarz_file(c, z, name, path, UINT64_MAX, 0600, hex)) == 0)
            json_object_set_new(files, name, json_string(hex));
    }
    closedir(d);
    return rc;
}

/* Streams blob `b` from the bucket into the archive (GET windows through a sink, never the whole blob in memory),
 * hashing it: the archive gets only the bytes its row describes. */
struct s3sink {
    struct tarz_ctx *c;
    struct tarz_out *z;
    struct digest_ctx h;
    uint64_t got, want;
    int werr; /* the archive's own failure (tarz_put), already described in c->err */
};

static int s3sink_put(void *ctx, const void *p, size_t n)
{
    struct s3sink *k = ctx;
    int rc;
    if (n > k->want - k->got)
        return BERR_SIZE_INVALID; /* the object is longer than its row says */
    digest_ctx_update(&k->h, p, n);
    if ((rc = tarz_put(k->c, k->z, p, n, ZSTD_e_continue)) != 0)
        return k->werr = rc;
    k->got += n;
    tarz_progress(k->c, n, 0);
    return 0;
}

static int write_s3_blob(struct tarz_ctx *c, struct tarz_out *z, const struct blobstore *bs, const char *name,
                         const struct blob *b)
{
    struct s3sink k = {.c = c, .z = z, .want = b->size};
    char got[BERTH_DIGEST_MAX];
    int rc, tries = 0;
    if ((rc = tarz_begin(c, z, name, b->size, 0444)) != 0)
        return rc;
    if (digest_ctx_init(&k.h) != 0)
        return tarz_fail(c, BERR_NOMEM, "out of memory");
    rc = 0;
    while (k.got < b->size && k.werr == 0 && (rc == 0 || (rc == BERR_IO && tries++ < BACKUP_S3_RETRIES)))
        if ((rc = blobstore_read(bs, b->digest, k.got, b->size - k.got, s3sink_put, &k)) == 0 && k.got < b->size)
            rc = BERR_SIZE_INVALID; /* a cut GET is resumed from where it stopped (BACKUP_S3_RETRIES times) */
    digest_ctx_final(&k.h, got);
    if (k.werr != 0)
        return k.werr;
    if ((rc == BERR_BLOB_UNKNOWN || rc == BERR_IO) && s3_check(bs->s3) != 0)
        return tarz_fail(c, BERR_IO,
                         "cannot read blob %s from the bucket: the bucket is gone or no longer readable "
                         "(the log line above has S3's answer)",
                         b->digest);
    if (rc == BERR_BLOB_UNKNOWN)
        return tarz_fail(c, rc,
                         "blob %s is in the snapshot but not in the bucket (removed by garbage collection "
                         "since the snapshot? run the backup again)",
                         b->digest);
    if (rc == BERR_SIZE_INVALID)
        return tarz_fail(c, rc, "blob %s in the bucket does not have the %llu bytes its row says", b->digest,
                         (unsigned long long)b->size);
    if (rc == BERR_IO && tries > BACKUP_S3_RETRIES)
        return tarz_fail(c, rc,
                         "cannot read blob %s from the bucket: its GET failed %d times, the last %d resumed where "
                         "the one before stopped (the log lines above have S3's answers)",
                         b->digest, tries, BACKUP_S3_RETRIES);
    if (rc != 0)
        return tarz_fail(c, rc, "cannot read blob %s from the bucket (the log line above has S3's answer)", b->digest);
    if (strcmp(got, b->digest) != 0)
        return tarz_fail(c, BERR_DIGEST_INVALID,
                         "blob %s in the bucket is corrupt: its bytes hash to %s (run `berth "
                         "fsck`)",
                         b->digest, got);
    return tarz_end_entry(c, z, b->size);
}

static int write_blobs(struct tarz_ctx *c, struct tarz_out *z, const struct backup_opts *o, const struct bloblist *l,
                       struct backup_summary *sum)
{
    struct blobstore disk;
    char path[BLOBSTORE_PATH_MAX], name[128];
    int rc;
    snprintf(disk.root, sizeof(disk.root), "%s", o->datadir);
    for (size_t i = 0; i < l->n; i++) {
        const char *hex = digest_hex(l->b[i].digest);
        if (!l->b[i].in_archive) {
            sum->skipped++;
            continue;
        }
        snprintf(name, sizeof(name), "blobs/sha256/%.2s/%s", hex, hex);
        if (o->bs != NULL && o->bs->s3 != NULL)
            rc = write_s3_blob(c, z, o->bs, name, &l->b[i]);
        else {
            blobstore_path(o->bs != NULL ? o->bs : &disk, l->b[i].digest, path, sizeof(path));
            rc = tarz_file(c, z, name, path, l->b[i].size, 0444, NULL);
        }
        if (rc != 0)
            return rc;
        sum->blobs++;
        sum->blob_bytes += l->b[i].size;
    }
    return 0;
}

int backup__fsync_parent(const char *file)
{
    char dir[PATH_MAX];
    char *slash;
    snprintf(dir, sizeof(dir), "%s", file);
    slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    return blobstore_fsync_dir(dir);
}

/* Everything after the snapshot: the stream itself. */
static int write_archive(struct tarz_ctx *c, const struct backup_opts *o, struct tarz_out *z, const char *snap,
                         const char *keys, const char *base, const struct bloblist *l, struct backup_summary *sum)
{
    unsigned char rnd[16];
    char id[40], hex[BERTH_DIGEST_MAX], *text;
    json_t *files = json_object(), *trailer;
    int rc;
    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2hex(id, sizeof(id), rnd, sizeof(rnd));
    if ((rc = write_header(c, z, id, base, l)) != 0 ||
        (rc = tarz_file(c, z, DB_FILE, snap, UINT64_MAX, 0644, hex)) != 0)
        goto out;
    json_object_set_new(files, DB_FILE, json_string(hex));
    if ((rc = write_keys(c, z, keys, files)) != 0 || (rc = write_blobs(c, z, o, l, sum)) != 0)
        goto out;
    trailer = json_pack("{sIsIsO}", "blobs", (json_int_t)sum->blobs, "blob_bytes", (json_int_t)sum->blob_bytes, "files",
                        files);
    text = json_dumps(trailer, JSON_COMPACT);
    json_decref(trailer);
    if (text == NULL) {
        rc = tarz_fail(c, BERR_NOMEM, "out of memory");
        goto out;
    }
    rc = tarz_mem(c, z, BACKUP_TRAILER_NAME, text, strlen(text));
    free(text);
    if (rc == 0)
        rc = tarz_out_end(c, z);
    if (rc == 0 && fsync(z->fd) != 0)
        rc = tarz_fail(c, BERR_IO, "fsync %s: %s", o->out, strerror(errno));
out:
    json_decref(files);
    return rc;
}

/* Reads the blob list of `old` and leaves out of `l` the blobs it lists. */
static int apply_base(struct tarz_ctx *c, const char *old, struct bloblist *l, char base_id[64])
{
    struct bloblist ob = {0};
    struct tarz_in z;
    int rc = tarz_in_open(c, &z, old);
    if (rc == 0)
        rc = backup__read_header(c, &z, base_id, &ob);
    tarz_in_close(&z);
    for (size_t i = 0; rc == 0 && i < l->n; i++)
        if (backup__list_find(&ob, l->b[i].digest) != NULL)
            l->b[i].in_archive = 0;
    free(ob.b);
    return rc;
}

/* Removes a directory tree (best effort). */
static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    remove(p);
    return 0;
}

void backup__rm_tree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* With PostgreSQL: the cluster's maintenance lock (db_maint_trylock) on a connection of its own, taken before the
 * snapshot and held until the last blob is copied, so that no node's scheduled GC deletes a blob the snapshot
 * references meanwhile (nodes skip their lifecycle/GC rounds while a backup runs).  A GC in progress is waited for
 * up to BACKUP_MAINT_WAIT_MS; after that the backup goes on without the lock (a blob collected meanwhile fails it,
 * as on SQLite).  Returns the connection (db_close releases the lock), or NULL. */
static struct db *maint_guard(const char *metadata)
{
    struct db *db = NULL;
    if (db_set_metadata(metadata) != 0 || db_open("", &db) != 0)
        return NULL; /* the snapshot reports the connection failure */
    for (int waited = 0; !db_maint_trylock(db); waited += BACKUP_MAINT_POLL_MS) {
        if (waited >= BACKUP_MAINT_WAIT_MS) {
            log_warn("backup: a lifecycle/GC run holds the maintenance lock; going on without it");
            return db;
        }
        usleep(BACKUP_MAINT_POLL_MS * 1000);
    }
    return db;
}

/* The metadata snapshot: berth.db into `snap` (SQLite's online backup), or with PostgreSQL a new SQLite registry in
 * directory `dir` (migrate_dump: one REPEATABLE READ snapshot, shared_keys as keys/ files).  `keys` receives the
 * directory of the key files to archive. */
static int snapshot(struct tarz_ctx *c, const struct backup_opts *o, const char *dir, char *snap, char *keys)
{
    struct migrate_summary ms;
    backup__rm_tree(dir); /* left by a killed run */
    if (o->metadata == NULL || strncmp(o->metadata, "postgres", 8) != 0) {
        snprintf(snap, PATH_MAX, "%s.db-snapshot", dir);
        snprintf(keys, PATH_MAX, "%s/keys", o->datadir);
        unlink(snap);
        return snapshot_db(c, o->datadir, snap);
    }
    snprintf(snap, PATH_MAX, "%s/%s", dir, DB_FILE);
    snprintf(keys, PATH_MAX, "%s/keys", dir);
    if (mkdir(dir, 0700) != 0)
        return tarz_fail(c, BERR_IO, "cannot create %s: %s", dir, strerror(errno));
    return migrate_dump(o->metadata, dir, &ms, c->err, c->errlen);
}

int backup_create(const struct backup_opts *o, struct backup_summary *sum, char *err, size_t errlen)
{
    struct tarz_ctx c = {.err = err, .errlen = errlen, .progress = o->progress, .progress_arg = o->progress_arg};
    struct bloblist l = {0};
    struct tarz_out z = {.fd = -1};
    char snap[PATH_MAX], keys[PATH_MAX], dir[PATH_MAX], tmp[PATH_MAX], base_id[64] = "";
    struct db *guard = NULL;
    struct stat st;
    int rc;
    memset(sum, 0, sizeof(*sum));
    if (sodium_init() < 0 || (c.buf = malloc(TARZ_CHUNK)) == NULL)
        return tarz_fail(&c, BERR_NOMEM, "out of memory");
    snprintf(dir, sizeof(dir), "%s.snapshot", o->out);
    snprintf(tmp, sizeof(tmp), "%s.tmp", o->out);
    if (o->metadata != NULL && strncmp(o->metadata, "postgres", 8) == 0)
        guard = maint_guard(o->metadata);
    if ((rc = snapshot(&c, o, dir, snap, keys)) != 0 || (rc = snapshot_blobs(&c, snap, &l)) != 0)
        goto out;
    if (o->incremental_from != NULL && (rc = apply_base(&c, o->incremental_from, &l, base_id)) != 0)
        goto out;
    c.total = stat(snap, &st) == 0 ? (uint64_t)st.st_size : 0;
    for (size_t i = 0; i < l.n; i++)
        c.total += l.b[i].in_archive ? l.b[i].size : 0;
    if ((rc = tarz_out_open(&c, &z, tmp, o->level > 0 ? o->level : BACKUP_DEFAULT_LEVEL, o->workers)) != 0 ||
        (rc = write_archive(&c, o, &z, snap, keys, o->incremental_from ? base_id : NULL, &l, sum)) != 0)
        goto out;
    tarz_out_close(&z);
    if (rename(tmp, o->out) != 0) {
        rc = tarz_fail(&c, BERR_IO, "rename %s: %s", tmp, strerror(errno));
        goto out;
    }
    backup__fsync_parent(o->out);
    tarz_progress(&c, 0, 1);
    sum->payload_bytes = c.done;
    sum->archive_bytes = z.written;
out:
    tarz_out_close(&z);
    if (rc != 0)
        unlink(tmp);
    unlink(snap);
    backup__rm_tree(dir);
    db_close(guard);
    free(l.b);
    free(c.buf);
    return rc;
}
