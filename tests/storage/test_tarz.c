/* test_tarz.c - storage/tarz.c: a tar stream in one zstd frame round-trips; truncation and damage are reported. */
#include <sys/stat.h>
#include "check.h"
#include "tarz.h"

static char dir[256], path[300], err[512];
static unsigned char buf[TARZ_CHUNK];
static struct tarz_ctx ctx = {.err = err, .errlen = sizeof(err), .buf = buf};

/* Writes an archive with entries "a" (`alen` bytes of 'x') and "b" ("hello") to `path`. */
static int write_archive(size_t alen)
{
    struct tarz_out z;
    char *a = malloc(alen);
    int rc;
    memset(a, 'x', alen);
    snprintf(path, sizeof(path), "%s/t.tar.zst", dir);
    rc = tarz_out_open(&ctx, &z, path, 3, 1);
    if (rc == 0)
        rc = tarz_mem(&ctx, &z, "a", a, alen);
    if (rc == 0)
        rc = tarz_mem(&ctx, &z, "b", "hello", 5);
    if (rc == 0)
        rc = tarz_out_end(&ctx, &z);
    tarz_out_close(&z);
    free(a);
    return rc;
}

/* Reads the archive at `p` to its end; returns the first error, or 0; `nb` gets entry b's text. */
static int read_archive(const char *p, char nb[16])
{
    struct tarz_in z;
    struct tarz_entry e;
    char *text;
    int rc = tarz_in_open(&ctx, &z, p);
    while (rc == 0 && (rc = tarz_next(&ctx, &z, &e)) == 0 && !e.end) {
        if (strcmp(e.name, "b") == 0 && (rc = tarz_text(&ctx, &z, &e, 16, &text)) == 0) {
            snprintf(nb, 16, "%s", text);
            free(text);
        } else if (strcmp(e.name, "b") != 0)
            rc = tarz_copy(&ctx, &z, &e, -1, NULL);
    }
    if (rc == 0)
        rc = tarz_finish(&ctx, &z);
    tarz_in_close(&z);
    return rc;
}

static int copy_prefix(const char *to, long n)
{
    FILE *in = fopen(path, "rb"), *out = fopen(to, "wb");
    int c;
    for (long i = 0; in && out && i < n && (c = fgetc(in)) != EOF; i++)
        fputc(c, out);
    if (in)
        fclose(in);
    return out && fclose(out) == 0 ? 0 : -1;
}

static long file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

/* What is written reads back, entry by entry, and GNU tar could read it too (ustar headers). */
static void round_trip(void)
{
    char b[16] = "";
    REQUIRE_INT_EQ(write_archive(3000), 0);
    CHECK_INT_EQ(read_archive(path, b), 0);
    CHECK_STR_EQ(b, "hello");
}

/* Every prefix of the archive is reported as truncated or damaged, never read as complete. */
static void every_truncation_is_reported(void)
{
    char b[16], t[320];
    long n;
    REQUIRE_INT_EQ(write_archive(100000), 0);
    n = file_size(path);
    snprintf(t, sizeof(t), "%s/trunc", dir);
    for (long cut = 0; cut < n; cut += cut < 64 || cut > n - 32 ? 1 : 97) { /* every cut near both ends */
        REQUIRE_INT_EQ(copy_prefix(t, cut), 0);
        int rc = read_archive(t, b);
        CHECK(rc == BERR_SIZE_INVALID || rc == BERR_DIGEST_INVALID);
    }
}

/* A flipped byte anywhere in the compressed stream is caught (zstd or the frame checksum or a tar checksum). */
static void damage_is_reported(void)
{
    char b[16], t[320];
    long n;
    REQUIRE_INT_EQ(write_archive(100000), 0);
    n = file_size(path);
    snprintf(t, sizeof(t), "%s/flip", dir);
    for (long at = 0; at < n; at += 7) {
        FILE *f;
        int c;
        REQUIRE_INT_EQ(copy_prefix(t, n), 0);
        f = fopen(t, "r+b");
        fseek(f, at, SEEK_SET);
        c = fgetc(f);
        fseek(f, at, SEEK_SET);
        fputc(c ^ 0x55, f);
        fclose(f);
        CHECK(read_archive(t, b) != 0);
    }
}

/* Data after the end of the archive is refused. */
static void trailing_garbage_is_refused(void)
{
    char b[16];
    FILE *f;
    REQUIRE_INT_EQ(write_archive(10), 0);
    f = fopen(path, "ab");
    fputs("garbage", f);
    fclose(f);
    CHECK(read_archive(path, b) != 0);
}

static int setup(void)
{
    return check_tmpdir(dir, sizeof(dir));
}

static void teardown(void)
{
    check_rmtree(dir);
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(round_trip),
        CHECK_TEST(every_truncation_is_reported),
        CHECK_TEST(damage_is_reported),
        CHECK_TEST(trailing_garbage_is_refused),
    };
    check_before_each = setup;
    check_after_each = teardown;
    return check_run(tests, CHECK_COUNT(tests), argc, argv);
}
