/* fault.c - named fault points armed by the BERTH_FAULT environment variable (fault.h); test builds only. */
#ifdef BERTH_FAULTS
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fault.h"
#include "log.h"

#define FAULT_PAUSE_POLL_US 20000 /* a paused point looks for its file this often */

static struct {
    pthread_once_t once;
    char name[128];   /* the armed point, "" for none */
    long nth;         /* fire at this hit (1 = first) */
    long count;       /* FAULT_FAIL: fail this many hits from the nth on (0: every later one) */
    atomic_long hits; /* hits of the armed point so far */
} f = {.once = PTHREAD_ONCE_INIT};

static void fault_init(void)
{
    const char *v = getenv("BERTH_FAULT"), *colon, *colon2;
    size_t n;
    f.nth = 1;
    if (v == NULL || *v == '\0')
        return;
    colon = strchr(v, ':');
    n = colon != NULL ? (size_t)(colon - v) : strlen(v);
    if (n >= sizeof(f.name))
        return;
    memcpy(f.name, v, n);
    f.name[n] = '\0';
    if (colon != NULL && (f.nth = atol(colon + 1)) < 1)
        f.nth = 1;
    if (colon != NULL && (colon2 = strchr(colon + 1, ':')) != NULL && (f.count = atol(colon2 + 1)) < 0)
        f.count = 0;
    log_warn("fault injection armed: %s (hit %ld)", f.name, f.nth);
}

const char *fault_armed(void)
{
    pthread_once(&f.once, fault_init);
    return f.name[0] != '\0' ? f.name : NULL;
}

/* The hit number of `name` if it is the armed point, else 0. */
static long hit(const char *name)
{
    if (fault_armed() == NULL || strcmp(name, f.name) != 0)
        return 0;
    return atomic_fetch_add(&f.hits, 1) + 1;
}

void fault_point(const char *name)
{
    const char *until = getenv("BERTH_FAULT_PAUSE");
    if (hit(name) != f.nth)
        return;
    if (until != NULL && *until != '\0') {
        log_warn("fault point %s reached: pausing this thread until %s exists", name, until);
        while (access(until, F_OK) != 0)
            usleep(FAULT_PAUSE_POLL_US);
        log_warn("fault point %s: resumed", name);
        return;
    }
    log_warn("fault point %s reached: killing the process (SIGKILL)", name);
    raise(SIGKILL);
}

int fault_fail(const char *name)
{
    long h = hit(name);
    if (h < f.nth || (f.count > 0 && h >= f.nth + f.count))
        return 0;
    log_warn("fault point %s reached: failing with EIO", name);
    errno = EIO;
    return 1;
}
#else
typedef int fault_unused_; /* ISO C forbids an empty translation unit */
#endif
