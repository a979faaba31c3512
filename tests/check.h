/*
 * check.h - the tests' assertions and runner: no framework, just macros that print file:line and both values.
 *
 * CHECK* record a failure and go on; REQUIRE* record it and return from the (void) test function, for checks that
 * later lines depend on.  A test file lists its tests in an array of CHECK_TEST(fn) and returns
 * check_run(tests, n, argc, argv) from main(): it runs them all (or only those named on the command line), prints
 * "N passed, N failed" and returns non-zero if anything failed.  A file may set check_before_each/check_after_each
 * (a fixture); check_tmpdir()/check_rmtree() give each storage test a fresh directory.
 */
#ifndef BERTH_TESTS_CHECK_H
#define BERTH_TESTS_CHECK_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "err.h"

static int check_failures_;            /* failed checks in the running test */
static int (*check_before_each)(void); /* optional fixture: runs before each test; non-zero fails and skips it */
static void (*check_after_each)(void); /* optional fixture: runs after each test, even a failed one */

static inline void check_fail_(const char *file, int line)
{
    fprintf(stderr, "%s:%d: ", file, line);
    check_failures_++;
}

static inline const char *check_errname_(long long e)
{
    return e == 0 ? "OK" : berr_name((int)e);
}

#define CHECK_(cond, on_fail, ...)                                                                                     \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            check_fail_(__FILE__, __LINE__);                                                                           \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
            on_fail;                                                                                                   \
        }                                                                                                              \
    } while (0)

/* The public macros stringify their arguments here, before expansion, so messages show the test's own text. */
#define CHECK_INT_EQ_(a, b, as, bs, on_fail)                                                                           \
    do {                                                                                                               \
        long long a_ = (long long)(a), b_ = (long long)(b);                                                            \
        CHECK_(a_ == b_, on_fail, "%s == %s failed: %lld != %lld", as, bs, a_, b_);                                    \
    } while (0)

/* Compares two BERR_* codes (0 = success), printing their names. */
#define CHECK_ERR_(a, b, as, bs, on_fail)                                                                              \
    do {                                                                                                               \
        long long a_ = (long long)(a), b_ = (long long)(b);                                                            \
        CHECK_(a_ == b_, on_fail, "%s == %s failed: %s (%lld) != %s (%lld)", as, bs, check_errname_(a_), a_,           \
               check_errname_(b_), b_);                                                                                \
    } while (0)

#define CHECK_STR_EQ_(a, b, as, bs, on_fail)                                                                           \
    do {                                                                                                               \
        const char *a_ = (a), *b_ = (b);                                                                               \
        CHECK_(a_ != NULL && b_ != NULL && strcmp(a_, b_) == 0, on_fail, "%s == %s failed: \"%s\" != \"%s\"", as, bs,  \
               a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                                                \
    } while (0)

#define CHECK(c) CHECK_((c), (void)0, "CHECK(%s) failed", #c)
#define CHECK_INT_EQ(a, b) CHECK_INT_EQ_(a, b, #a, #b, (void)0)
#define CHECK_ERR(a, b) CHECK_ERR_(a, b, #a, #b, (void)0)
#define CHECK_STR_EQ(a, b) CHECK_STR_EQ_(a, b, #a, #b, (void)0)
#define CHECK_NULL(p) CHECK_((p) == NULL, (void)0, "%s is not NULL", #p)
/* `hay` contains `needle`. */
#define CHECK_STR_CONTAINS(hay, needle)                                                                                \
    do {                                                                                                               \
        const char *h_ = (hay), *n_ = (needle);                                                                        \
        CHECK_(h_ != NULL && strstr(h_, n_) != NULL, (void)0, "%s does not contain \"%s\": \"%s\"", #hay, n_,          \
               h_ ? h_ : "(null)");                                                                                    \
    } while (0)
/* `a[0..alen)` equals `b[0..blen)`. */
#define CHECK_MEM_EQ(a, alen, b, blen)                                                                                 \
    do {                                                                                                               \
        size_t al_ = (size_t)(alen), bl_ = (size_t)(blen);                                                             \
        CHECK_(al_ == bl_ && memcmp((a), (b), al_) == 0, (void)0,                                                      \
               "%s == %s failed: %zu bytes \"%.*s\" != %zu bytes \"%.*s\"", #a, #b, al_, (int)al_, (const char *)(a),  \
               bl_, (int)bl_, (const char *)(b));                                                                      \
    } while (0)

#define REQUIRE(c) CHECK_((c), return, "REQUIRE(%s) failed", #c)
#define REQUIRE_INT_EQ(a, b) CHECK_INT_EQ_(a, b, #a, #b, return )
#define REQUIRE_ERR(a, b) CHECK_ERR_(a, b, #a, #b, return )
#define REQUIRE_OK(e) CHECK_ERR_(e, 0, #e, "0", return )

struct check_test {
    const char *name;
    void (*fn)(void);
};
#define CHECK_TEST(fn)                                                                                                 \
    {                                                                                                                  \
#fn, fn                                                                                                        \
    }
#define CHECK_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Runs `tests` (or only those named in argv), prints a line per test and the totals; returns the exit status. */
static inline int check_run(const struct check_test *tests, size_t n, int argc, char **argv)
{
    int passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        int wanted = argc < 2;
        for (int a = 1; a < argc && !wanted; a++)
            wanted = strcmp(argv[a], tests[i].name) == 0;
        if (!wanted)
            continue;
        check_failures_ = 0;
        if (check_before_each != NULL && check_before_each() != 0) {
            fprintf(stderr, "%s: fixture setup failed\n", tests[i].name);
            check_failures_++;
        } else {
            tests[i].fn();
        }
        if (check_after_each != NULL)
            check_after_each();
        fflush(stderr);
        printf("%s %s\n", check_failures_ == 0 ? "ok  " : "FAIL", tests[i].name);
        fflush(stdout);
        if (check_failures_ == 0)
            passed++;
        else
            failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}

/* Creates a fresh directory "$TMPDIR/berth-test.XXXXXX" into `buf` (at least 256 bytes); returns 0 or -1. */
static inline int check_tmpdir(char *buf, size_t size)
{
    const char *base = getenv("TMPDIR");
    snprintf(buf, size, "%s/berth-test.XXXXXX", base != NULL && base[0] != '\0' ? base : "/tmp");
    return mkdtemp(buf) != NULL ? 0 : -1;
}

static inline int check_rm_(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Removes directory `path` and everything under it. */
static inline void check_rmtree(const char *path)
{
    nftw(path, check_rm_, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
