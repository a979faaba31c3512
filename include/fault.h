/*
 * fault.h - named fault points for the crash and I/O-error tests (tests/e2e/test_crash_matrix.sh, test_diskfull.sh).
 *
 * A write path marks its steps with FAULT_POINT("blob.after_rename"); a test starts berth with
 * BERTH_FAULT=NAME[:N] and the process kills itself with SIGKILL (exactly `kill -9`) the N-th time (default: first)
 * it reaches point NAME.  FAULT_FAIL("upload.fsync") marks a system call that the test can make fail instead: when
 * armed, it sets errno to EIO and is true, so the caller takes its error path as if the kernel had failed.  It fails
 * from the N-th hit on, every later hit too; BERTH_FAULT=NAME:N:COUNT fails only COUNT hits from the N-th (a fault
 * that happens once, then goes away).  With BERTH_FAULT_PAUSE=FILE as well, the N-th hit of a FAULT_POINT pauses
 * its thread until FILE exists instead of killing the process (to act on the registry at that exact step).
 *
 * Compiled in only with the CMake option BERTH_FAULTS (ON by default except in Release builds, so the binary that
 * `scripts/run` and `cmake --install` produce carries none of it); without it the macros are empty.  When armed,
 * berth logs "fault injection armed: NAME" at start, which the tests look for.
 */
#ifndef BERTH_FAULT_H
#define BERTH_FAULT_H

#ifdef BERTH_FAULTS
/** Kills the process with SIGKILL if `name` is the armed point and this is its N-th hit (pauses with
 * BERTH_FAULT_PAUSE). */
void fault_point(const char *name);
/** 1 (with errno = EIO) if `name` is the armed point and this is its N-th hit or a later one (up to COUNT hits from
 * the N-th when BERTH_FAULT gives one); else 0. */
int fault_fail(const char *name);
/** The armed point (BERTH_FAULT), or NULL; logs it once. */
const char *fault_armed(void);
#define FAULT_POINT(name) fault_point(name)
#define FAULT_FAIL(name) fault_fail(name)
#define FAULT_ARM() ((void)fault_armed())
#else
#define FAULT_POINT(name) ((void)0)
#define FAULT_FAIL(name) 0
#define FAULT_ARM() ((void)0)
#endif

#endif
