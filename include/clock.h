/*
 * clock.h - the monotonic clock in milliseconds, for timeouts, back-offs and rate windows (never for timestamps that
 * are stored or shown: those use the wall clock).
 */
#ifndef BERTH_CLOCK_H
#define BERTH_CLOCK_H

#include <time.h>

/** CLOCK_MONOTONIC in milliseconds (since an arbitrary point; it never jumps). */
static inline long long clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
