/*
 * cli_ops.h - operator commands over a registry's data directory: `berth quota` (storage quotas, quota.h) and
 * `berth events` (the event log, events.h).  Like `berth user`, they take --data DIR / --config FILE, refuse a
 * missing data directory, and work while the server runs (SQLite WAL).
 */
#ifndef BERTH_CLI_OPS_H
#define BERTH_CLI_OPS_H

/** Runs `berth <argv[0]> …` for argv[0] in quota, events.  Returns the process exit status. */
int cli_ops_main(int argc, char **argv);

#endif
