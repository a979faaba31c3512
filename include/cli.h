/*
 * cli.h - the administrative subcommands: `berth user`, `berth token`, `berth grant`.  Each takes --data DIR and
 * --config FILE like `serve`, creates and migrates an empty data directory if needed, and works while a server
 * runs on the same directory (SQLite WAL; the server reads users, tokens and grants on every request).
 */
#ifndef BERTH_CLI_H
#define BERTH_CLI_H

/** Runs `berth <argv[0]> …` for argv[0] in user, token, grant.  Returns the process exit status. */
int cli_main(int argc, char **argv);
/** Runs `berth backup …` or `berth restore …` (argv[0]); see backup.h.  Returns the process exit status. */
int cli_backup_main(int argc, char **argv);

#endif
