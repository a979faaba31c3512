/* restore.c - backup_restore(): a verified restore into a new directory (see backup.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include <sqlite3.h>
#include "backup_internal.h"
#include "blobstore.h"
#include "db.h"
#include "digest.h"
#include "err.h"
#include "fault.h"
#include "migrate.h"

/* ---- restore ---- */

struct restore {
    struct tarz_ctx c;
    char root[PATH_MAX]; /* the temporary directory */
    struct bloblist l;
    json_t *files; /* name -> sha256 of what was unpacked */
    json_t *trailer;
    uint64_t blobs, blob_bytes;
    const struct restore_opts *o;
    int remote;          /* target PostgreSQL and/or S3: blobs go straight to o->bs, rows through migrate_run */
    int checked;         /* remote: the target was checked (migrate's refusal) before its first blob */
    uint64_t present;    /* remote: blobs the target already held (an earlier, interrupted run stored them) */
    unsigned char *mbuf; /* remote: MIGRATE_CHUNK bytes */
};

/* Creates `rel` under the restore root; returns the fd. */
static int create_file(struct restore *r, const char *rel, mode_t mode, int *fd)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", r->root, rel);
    if ((*fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)) < 0)
        return tarz_fail(&r->c, berr_from_errno(errno), "cannot create %s: %s", path, strerror(errno));
    return 0;
}

/* Closes an unpacked file.  Its data reaches the disk with one syncfs() before the rename (restore_commit): one
 * flush for thousands of small blobs instead of one fsync each. */
static int finish_file(struct restore *r, int fd, const char *rel)
{
    int rc = close(fd) == 0 ? 0 : tarz_fail(&r->c, BERR_IO, "close %s: %s", rel, strerror(errno));
    return rc;
}

/* berth.db or keys/<name>: unpacked and hashed. */
static int restore_meta(struct restore *r, struct tarz_in *z, const struct tarz_entry *e)
{
    struct digest_ctx dc;
    char hex[BERTH_DIGEST_MAX];
    int fd, rc;
    if (json_object_get(r->files, e->name) != NULL)
        return tarz_fail(&r->c, BERR_DIGEST_INVALID, "%s: %s appears twice", z->path, e->name);
    if (e->size > BACKUP_META_FILE_MAX)
        return tarz_fail(&r->c, BERR_DIGEST_INVALID, "%s: %s is too large", z->path, e->name);
    if ((rc = create_file(r, e->name, strncmp(e->name, "keys/", 5) == 0 ? 0600 : 0644, &fd)) != 0)
        return rc;
    if (digest_ctx_init(&dc) != 0) {
        close(fd);
        return tarz_fail(&r->c, BERR_NOMEM, "out of memory");
    }
    rc = tarz_copy(&r->c, z, e, fd, &dc);
    if (rc == 0)
        rc = finish_file(r, fd, e->name);
    else
        close(fd);
    digest_ctx_final(&dc, hex);
    if (rc == 0)
        json_object_set_new(r->files, e->name, json_string(hex));
    return rc;
}

/* ---- remote targets (PostgreSQL and/or S3): blobs stored as they stream by, then the rows via migrate ---- */

/* Runs migrate from the unpacked berth.db and keys/ (r->root) into the target: with `check_only`, only its checks
 * (an unknown table, a target holding another registry: refused unless --force); else every row, blob rows
 * included (each blob was stored and verified before). */
static int remote_migrate(struct restore *r, int check_only, uint64_t *rows)
{
    struct migrate_opts mo = {.from = r->root,
                              .to_data = r->o->datadir,
                              .to_metadata = r->o->metadata != NULL ? r->o->metadata : "sqlite",
                              .to_bs = r->o->bs,
                              .force = r->o->force,
                              .check_only = check_only,
                              .blobs_in_target = 1,
                              .origin = r->o->archive};
    struct migrate_summary ms;
    int rc;
    if (json_object_get(r->files, DB_FILE) == NULL)
        return tarz_fail(&r->c, BERR_DIGEST_INVALID, "%s: no %s before its blobs", r->o->archive, DB_FILE);
    rc = migrate_run(&mo, &ms, r->c.err, r->c.errlen);
    if (rows != NULL)
        *rows = ms.rows;
    r->checked = 1;
    return rc;
}

struct entry_reader {
    struct restore *r;
    struct tarz_in *z;
    uint64_t left;
    int rc; /* a failure of the archive itself (described in r->c.err) */
};

/* migrate_read_fn over the data of the current tar entry. */
static long entry_read(void *ctx, void *p, size_t n)
{
    struct entry_reader *er = ctx;
    size_t k = er->left < n ? (size_t)er->left : n;
    if (k == 0)
        return 0;
    if ((er->rc = tarz_read(&er->r->c, er->z, p, k)) != 0)
        return er->rc;
    er->left -= k;
    tarz_progress(&er->r->c, k, 0);
    return (long)k;
}

/* One blob into the target's blobstore, verified before it is visible (migrate_put_blob); skipped when an earlier
 * run stored it (objects appear only complete and verified). */
static int restore_blob_remote(struct restore *r, struct tarz_in *z, const struct tarz_entry *e, struct blob *b)
{
    struct entry_reader er = {.r = r, .z = z, .left = e->size};
    char err[1024];
    int rc, ex;
    if (!r->checked && (rc = remote_migrate(r, 1, NULL)) != 0)
        return rc;
    if ((ex = blobstore_exists(r->o->bs, b->digest)) < 0)
        return tarz_fail(&r->c, ex, "cannot reach the target storage to store blob %s (the log line above says why)",
                         b->digest);
    if (ex == 1) {
        tarz_progress(&r->c, e->size, 0);
        rc = tarz_copy(&r->c, z, e, -1, NULL);
        r->present++;
    } else {
        rc = migrate_put_blob(r->o->bs, b->digest, b->size, entry_read, &er, r->mbuf, z->path, err, sizeof(err));
        if (er.rc != 0)
            return er.rc;
        if (rc != 0)
            return tarz_fail(&r->c, rc, "%s", err);
        FAULT_POINT("restore.after_blob"); /* stored, no row yet: a re-run skips it */
        rc = tarz_skip_pad(&r->c, z, e);
        r->blobs++;
        r->blob_bytes += b->size;
    }
    if (rc == 0)
        b->have = 1;
    return rc;
}

/* blobs/sha256/ab/<hex>: must be listed, unpacked once, and hash to its name with the listed size.  `take`: 0 when
 * reading a base archive for other blobs (then unlisted or unneeded blobs are skipped). */
static int restore_blob(struct restore *r, struct tarz_in *z, const struct tarz_entry *e, int base)
{
    char digest[BERTH_DIGEST_MAX], got[BERTH_DIGEST_MAX], sub[PATH_MAX], rel[128];
    const char *hex = e->name + strlen("blobs/sha256/xx/");
    struct digest_ctx dc;
    struct blob *b;
    int fd, rc;
    snprintf(digest, sizeof(digest), "sha256:%s", hex);
    b = backup__list_find(&r->l, digest);
    if (strlen(e->name) != strlen("blobs/sha256/xx/") + DIGEST_HEX_LEN || memcmp(e->name + 13, hex, 2) != 0 ||
        e->name[15] != '/' || digest_parse(digest, strlen(digest), got) != 0)
        return tarz_fail(&r->c, BERR_DIGEST_INVALID, "%s: unexpected entry %s", z->path, e->name);
    if (base && (b == NULL || b->have))
        return tarz_copy(&r->c, z, e, -1, NULL); /* not needed from this base */
    if (b == NULL || (!base && !b->in_archive) || b->have)
        return tarz_fail(&r->c, BERR_DIGEST_INVALID, "%s: blob %s is not in its list or appears twice", z->path,
                         digest);
    if (e->size != b->size)
        return tarz_fail(&r->c, BERR_SIZE_INVALID, "%s: blob %s has %llu bytes, listed with %llu", z->path, digest,
                         (unsigned long long)e->size, (unsigned long long)b->size);
    if (r->remote)
        return restore_blob_remote(r, z, e, b);
    snprintf(sub, sizeof(sub), "%s/blobs/sha256/%.2s", r->root, hex);
    if (mkdir(sub, 0755) != 0 && errno != EEXIST)
        return tarz_fail(&r->c, BERR_IO, "mkdir %s: %s", sub, strerror(errno));
    snprintf(rel, sizeof(rel), "blobs/sha256/%.2s/%s", hex, hex);
    if ((rc = create_file(r, rel, 0444, &fd)) != 0)
        return rc;
    if (digest_ctx_init(&dc) != 0) {
        close(fd);
        return tarz_fail(&r->c, BERR_NOMEM, "out of memory");
    }
    rc = tarz_copy(&r->c, z, e, fd, &dc);
    rc = rc == 0 ? finish_file(r, fd, rel) : (close(fd), rc);
    digest_ctx_final(&dc, got);
    if (rc == 0 && strcmp(got, digest) != 0)
        rc = tarz_fail(&r->c, BERR_DIGEST_INVALID, "%s: blob %s is corrupted (its content hashes to %s)", z->path,
                       digest, got);
    if (rc == 0) {
        b->have = 1;
        r->blobs++;
        r->blob_bytes += b->size;
    }
    return rc;
}

static int restore_trailer(struct restore *r, struct tarz_in *z, const struct tarz_entry *e)
{
    json_error_t je;
    char *text;
    int rc = tarz_text(&r->c, z, e, BACKUP_HEADER_MAX, &text);
    if (rc != 0)
        return rc;
    r->trailer = json_loads(text, 0, &je);
    free(text);
    if (!json_is_object(json_object_get(r->trailer, "files")))
        return tarz_fail(&r->c, BERR_DIGEST_INVALID, "%s: unreadable %s", z->path, BACKUP_TRAILER_NAME);
    return 0;
}

/* Reads one archive.  `base`: only the blobs still missing are taken from it. */
static int restore_archive(struct restore *r, const char *path, int base)
{
    struct bloblist own = {0};
    struct tarz_entry e;
    struct tarz_in z;
    char id[64];
    int rc = tarz_in_open(&r->c, &z, path);
    if (rc == 0)
        rc = backup__read_header(&r->c, &z, id, base ? &own : &r->l);
    free(own.b);
    for (size_t i = 0; rc == 0 && !base && i < r->l.n; i++) /* progress counts the blob bytes to unpack */
        r->c.total += r->l.b[i].in_archive ? r->l.b[i].size : 0;
    while (rc == 0 && (rc = tarz_next(&r->c, &z, &e)) == 0 && !e.end) {
        if (e.dir && e.size == 0)
            continue;
        if (strncmp(e.name, "blobs/sha256/", 13) == 0)
            rc = restore_blob(r, &z, &e, base);
        else if (base)
            rc = tarz_copy(&r->c, &z, &e, -1, NULL);
        else if (strcmp(e.name, DB_FILE) == 0 || (strncmp(e.name, "keys/", 5) == 0 && backup__key_name_ok(e.name + 5)))
            rc = restore_meta(r, &z, &e);
        else if (strcmp(e.name, BACKUP_TRAILER_NAME) == 0 && r->trailer == NULL)
            rc = restore_trailer(r, &z, &e);
        else
            rc = tarz_fail(&r->c, BERR_DIGEST_INVALID, "%s: unexpected entry %s", path, e.name);
    }
    if (rc == 0)
        rc = tarz_finish(&r->c, &z);
    tarz_in_close(&z);
    return rc;
}

/* The trailer must match what was unpacked: counts and every non-blob file's sha256. */
static int restore_check(struct restore *r, const char *path)
{
    json_t *want, *v;
    const char *k;
    if (r->trailer == NULL)
        return tarz_fail(&r->c, BERR_SIZE_INVALID, "%s is truncated (no %s)", path, BACKUP_TRAILER_NAME);
    want = json_object_get(r->trailer, "files");
    if (json_object_size(want) != json_object_size(r->files) || json_object_get(r->files, DB_FILE) == NULL)
        return tarz_fail(&r->c, BERR_DIGEST_INVALID, "%s: files differ from its trailer", path);
    json_object_foreach(want, k, v)
    {
        if (!json_equal(v, json_object_get(r->files, k)))
            return tarz_fail(&r->c, BERR_DIGEST_INVALID, "%s: %s is corrupted (sha256 differs)", path, k);
    }
    if ((uint64_t)json_integer_value(json_object_get(r->trailer, "blobs")) != r->blobs + r->present)
        return tarz_fail(&r->c, BERR_DIGEST_INVALID, "%s: blob count differs from its trailer", path);
    return 0;
}

/* Every blob row of the restored berth.db must have its verified file. */
static int restore_check_db(struct restore *r)
{
    char path[PATH_MAX];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = 0, s;
    snprintf(path, sizeof(path), "%s/%s", r->root, DB_FILE);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT digest FROM blobs", -1, &st, NULL) != SQLITE_OK) {
        rc = tarz_fail(&r->c, BERR_DB, "restored database: %s", sqlite3_errmsg(db));
        goto out;
    }
    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        struct blob *b = backup__list_find(&r->l, (const char *)sqlite3_column_text(st, 0));
        if (b == NULL || !b->have)
            rc = tarz_fail(&r->c, BERR_BLOB_UNKNOWN, "blob %s of the database was not restored%s",
                           (const char *)sqlite3_column_text(st, 0),
                           b != NULL && !b->in_archive ? " (an incremental archive: give its base with --base)" : "");
    }
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

/* The target must not exist or be an empty directory.  Sets *exists. */
static int target_ok(struct tarz_ctx *c, const char *target, int *exists)
{
    struct stat st;
    struct dirent *de;
    DIR *d;
    *exists = stat(target, &st) == 0;
    if (!*exists)
        return errno == ENOENT ? 0 : tarz_fail(c, BERR_IO, "%s: %s", target, strerror(errno));
    if (!S_ISDIR(st.st_mode) || (d = opendir(target)) == NULL)
        return tarz_fail(c, BERR_IO, "%s exists and is not a directory", target);
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            closedir(d);
            return tarz_fail(c, BERR_IO, "%s is not empty: restore only into a new or empty directory", target);
        }
    closedir(d);
    return 0;
}

static int make_root(struct restore *r, const char *target)
{
    char parent[PATH_MAX], sub[PATH_MAX + 32];
    char *slash;
    snprintf(parent, sizeof(parent), "%s", target);
    while ((slash = strrchr(parent, '/')) != NULL && slash[1] == '\0' && slash != parent)
        *slash = '\0'; /* trailing slashes */
    slash = strrchr(parent, '/');
    if (slash == NULL)
        snprintf(parent, sizeof(parent), ".");
    else if (slash == parent)
        parent[1] = '\0';
    else
        *slash = '\0';
    snprintf(r->root, sizeof(r->root), "%s/.berth-restore-XXXXXX", parent);
    if (mkdtemp(r->root) == NULL)
        return tarz_fail(&r->c, BERR_IO, "cannot create a directory in %s: %s", parent, strerror(errno));
    chmod(r->root, 0755);
    snprintf(sub, sizeof(sub), "%s/blobs", r->root);
    mkdir(sub, 0755);
    snprintf(sub, sizeof(sub), "%s/blobs/sha256", r->root);
    mkdir(sub, 0755);
    snprintf(sub, sizeof(sub), "%s/keys", r->root);
    return mkdir(sub, 0700) == 0 ? 0 : tarz_fail(&r->c, BERR_IO, "mkdir %s: %s", sub, strerror(errno));
}

/* Flushes the restored tree (file data, then every directory), then renames it to the target. */
static int restore_commit(struct restore *r, const char *target, int exists)
{
    char sub[PATH_MAX + 32];
    int fd = open(r->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || syncfs(fd) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return tarz_fail(&r->c, BERR_IO, "syncfs %s: %s", r->root, strerror(e));
    }
    close(fd);
    for (size_t i = 0; i < 256; i++) {
        snprintf(sub, sizeof(sub), "%s/blobs/sha256/%02zx", r->root, i);
        if (access(sub, F_OK) == 0)
            blobstore_fsync_dir(sub);
    }
    snprintf(sub, sizeof(sub), "%s/blobs/sha256", r->root);
    blobstore_fsync_dir(sub);
    snprintf(sub, sizeof(sub), "%s/keys", r->root);
    blobstore_fsync_dir(sub);
    blobstore_fsync_dir(r->root);
    if (exists && rmdir(target) != 0)
        return tarz_fail(&r->c, BERR_IO, "%s: %s", target, strerror(errno));
    if (rename(r->root, target) != 0)
        return tarz_fail(&r->c, BERR_IO, "rename to %s: %s", target, strerror(errno));
    backup__fsync_parent(target);
    return 0;
}

/* Remote targets: the staging directory for berth.db and keys/ is <data>/.berth-restore (one restore at a time per
 * target; whatever a killed run left there is removed first). */
static int make_remote_root(struct restore *r)
{
    char sub[PATH_MAX + 32];
    if (mkdir(r->o->datadir, 0755) != 0 && errno != EEXIST)
        return tarz_fail(&r->c, BERR_IO, "cannot create %s: %s", r->o->datadir, strerror(errno));
    snprintf(r->root, sizeof(r->root), "%s/.berth-restore", r->o->datadir);
    backup__rm_tree(r->root);
    snprintf(sub, sizeof(sub), "%s/keys", r->root);
    if (mkdir(r->root, 0700) != 0 || mkdir(sub, 0700) != 0)
        return tarz_fail(&r->c, BERR_IO, "cannot create %s: %s", sub, strerror(errno));
    if ((r->mbuf = malloc(MIGRATE_CHUNK)) == NULL)
        return tarz_fail(&r->c, BERR_NOMEM, "out of memory");
    return 0;
}

/* Remote targets, once every blob is stored and the archive verified: the rows (and keys) via migrate. */
static int restore_rows(struct restore *r, struct backup_summary *sum)
{
    uint64_t rows = 0;
    int rc = r->checked ? 0 : remote_migrate(r, 1, NULL);
    if (rc == 0)
        rc = remote_migrate(r, 0, &rows);
    sum->skipped = r->present;
    return rc;
}

int backup_restore(const struct restore_opts *o, struct backup_summary *sum, char *err, size_t errlen)
{
    struct restore r = {.c = {.err = err, .errlen = errlen, .progress = o->progress, .progress_arg = o->progress_arg},
                        .o = o};
    struct stat st;
    int rc, exists = 0;
    memset(sum, 0, sizeof(*sum));
    r.root[0] = '\0';
    r.files = json_object();
    r.remote =
        (o->metadata != NULL && strncmp(o->metadata, "postgres", 8) == 0) || (o->bs != NULL && o->bs->s3 != NULL);
    if ((r.c.buf = malloc(TARZ_CHUNK)) == NULL || r.files == NULL) {
        rc = tarz_fail(&r.c, BERR_NOMEM, "out of memory");
        goto out;
    }
    if (r.remote)
        rc = make_remote_root(&r);
    else if ((rc = target_ok(&r.c, o->datadir, &exists)) == 0)
        rc = make_root(&r, o->datadir);
    if (rc != 0)
        goto out;
    if ((rc = restore_archive(&r, o->archive, 0)) != 0 || (rc = restore_check(&r, o->archive)) != 0)
        goto out;
    for (int i = 0; i < o->nbases && rc == 0; i++)
        rc = restore_archive(&r, o->bases[i], 1);
    if (rc == 0 && (rc = restore_check_db(&r)) == 0)
        rc = r.remote ? restore_rows(&r, sum) : restore_commit(&r, o->datadir, exists);
    if (rc == 0) {
        if (!r.remote)
            r.root[0] = '\0';
        tarz_progress(&r.c, 0, 1);
        sum->blobs = r.blobs;
        sum->blob_bytes = r.blob_bytes;
        sum->payload_bytes = r.c.done;
        sum->archive_bytes = stat(o->archive, &st) == 0 ? (uint64_t)st.st_size : 0;
    }
out:
    if (r.root[0] != '\0')
        backup__rm_tree(r.root);
    json_decref(r.files);
    json_decref(r.trailer);
    free(r.l.b);
    free(r.c.buf);
    free(r.mbuf);
    return rc;
}
