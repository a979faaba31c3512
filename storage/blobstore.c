/* blobstore.c - committed blob files under <data>/blobs/sha256/xx/<hex>, with atomic, durable commits. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "blobstore.h"
#include "digest.h"
#include "err.h"
#include "fault.h"
#include "log.h"

static int mkdir_p(const char *path)
{
    char buf[BLOBSTORE_PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return berr_from_errno(errno);
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return berr_from_errno(errno);
    return 0;
}

int blobstore_init(struct blobstore *bs, const char *datadir)
{
    static const char *const dirs[] = {"blobs/sha256", "uploads", "tmp"};
    char path[BLOBSTORE_PATH_MAX];
    if (strlen(datadir) >= sizeof(bs->root))
        return BERR_IO;
    bs->s3 = NULL;
    bs->s3_prefix[0] = '\0';
    bs->s3_redirect = 0;
    bs->s3_presign_ttl = 0;
    snprintf(bs->root, sizeof(bs->root), "%s", datadir);
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        int rc;
        snprintf(path, sizeof(path), "%s/%s", datadir, dirs[i]);
        if ((rc = mkdir_p(path)) != 0) {
            log_error("cannot create %s: %s", path, strerror(errno));
            return rc;
        }
    }
    return 0;
}

void blobstore_path(const struct blobstore *bs, const char *digest, char *out, size_t size)
{
    const char *hex = digest_hex(digest);
    snprintf(out, size, "%s/blobs/sha256/%.2s/%s", bs->root, hex, hex);
}

void blobstore_upload_path(const struct blobstore *bs, const char *uuid, char *out, size_t size)
{
    snprintf(out, size, "%s/uploads/%s", bs->root, uuid);
}

void blobstore_tmp_dir(const struct blobstore *bs, char *out, size_t size)
{
    snprintf(out, size, "%s/tmp", bs->root);
}

int blobstore_open(const struct blobstore *bs, const char *digest, int *fd, uint64_t *size)
{
    char path[BLOBSTORE_PATH_MAX];
    struct stat st;
    blobstore_path(bs, digest, path, sizeof(path));
    if ((*fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return errno == ENOENT ? BERR_BLOB_UNKNOWN : berr_from_errno(errno);
    if (fstat(*fd, &st) != 0) {
        int e = errno;
        close(*fd);
        *fd = -1;
        return berr_from_errno(e);
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

int blobstore_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
    if (fd < 0)
        return berr_from_errno(errno);
    if (FAULT_FAIL("blob.fsync_dir") || fsync(fd) != 0)
        rc = berr_from_errno(errno);
    close(fd);
    return rc;
}

int blobstore_commit(const struct blobstore *bs, const char *staging, const char *digest)
{
    char path[BLOBSTORE_PATH_MAX], shard[BLOBSTORE_PATH_MAX];
    const char *hex = digest_hex(digest);
    int rc;
    blobstore_path(bs, digest, path, sizeof(path));
    snprintf(shard, sizeof(shard), "%s/blobs/sha256/%.2s", bs->root, hex);
    if (access(path, F_OK) == 0) { /* idempotent: the same bytes are already committed */
        unlink(staging);
        /* the file may be left by a commit whose directory fsync failed (refused, no row): make its entry
         * durable before a row names it, rather than trust the failed fsync */
        return blobstore_fsync_dir(shard);
    }
    if (mkdir(shard, 0755) == 0) {
        char parent[BLOBSTORE_PATH_MAX];
        snprintf(parent, sizeof(parent), "%s/blobs/sha256", bs->root);
        if ((rc = blobstore_fsync_dir(parent)) != 0) /* the new shard must survive a crash with the blob */
            return rc;
    } else if (errno != EEXIST) {
        return berr_from_errno(errno);
    }
    FAULT_POINT("blob.before_rename");
    if (chmod(staging, 0444) != 0 || rename(staging, path) != 0) {
        int e = errno;
        log_error("cannot commit blob %s: %s", digest, strerror(e));
        return berr_from_errno(e);
    }
    FAULT_POINT("blob.after_rename");
    rc = blobstore_fsync_dir(shard);
    FAULT_POINT("blob.after_dir_fsync");
    return rc;
}

int blobstore_remove(const struct blobstore *bs, const char *digest)
{
    char path[BLOBSTORE_PATH_MAX];
    blobstore_path(bs, digest, path, sizeof(path));
    if (unlink(path) != 0 && errno != ENOENT)
        return berr_from_errno(errno);
    return 0;
}

int blobstore_uploads_each(const struct blobstore *bs, int (*fn)(void *ctx, const char *name, time_t mtime), void *ctx)
{
    char dir[BLOBSTORE_PATH_MAX], path[BLOBSTORE_PATH_MAX];
    struct dirent *e;
    DIR *d;
    int rc = 0;
    snprintf(dir, sizeof(dir), "%s/uploads", bs->root);
    if ((d = opendir(dir)) == NULL)
        return BERR_IO;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &st) == 0)
            rc = fn(ctx, e->d_name, st.st_mtime);
    }
    closedir(d);
    return rc;
}

int blobstore_upload_exists(const struct blobstore *bs, const char *uuid)
{
    char path[BLOBSTORE_PATH_MAX];
    struct stat st;
    blobstore_upload_path(bs, uuid, path, sizeof(path));
    return stat(path, &st) == 0;
}

int blobstore_tmp_clear(const struct blobstore *bs)
{
    char dir[BLOBSTORE_PATH_MAX], path[BLOBSTORE_PATH_MAX];
    struct dirent *e;
    DIR *d;
    int n = 0;
    blobstore_tmp_dir(bs, dir, sizeof(dir));
    if ((d = opendir(dir)) == NULL)
        return BERR_IO;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            n += unlink(path) == 0;
        }
    closedir(d);
    return n;
}
