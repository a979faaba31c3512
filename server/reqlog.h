/*
 * reqlog.h - the access log on the inherited standard error: one combined-format line per request.
 *
 * `access_log = -` (the default) registers this logger: each line is formatted in full and written with one
 * write(2) to file descriptor 2 as berth inherited it, so `2>file` keeps access lines and log lines whole and in
 * order (reopening /dev/stderr would give a second file offset that overwrites them).  A file path uses h2o's own
 * access log instead; `off` (or empty) logs no requests.
 */
#ifndef BERTH_REQLOG_H
#define BERTH_REQLOG_H

#include <h2o.h>

/* Longest access-log line; longer request paths or header values are cut to fit. */
#define REQLOG_LINE_MAX 4096
/* Longest request path in a JSON line (escaped, it still fits REQLOG_LINE_MAX, so the line stays valid JSON). */
#define REQLOG_JSON_PATH_MAX 512

/** Registers the stderr access logger on `pathconf`. */
void reqlog_register(h2o_pathconf_t *pathconf);

/** Switches every line to JSON (access_log_format = json, reqlog_format_json) and writes to `fd` (2, or an access
 *  log file opened for appending).  Call before the loops start. */
void reqlog_configure(int json, int fd);

/**
 * Formats the JSON line of `req` into `out`: {"time","remote","user","method","route","repository","path",
 * "status","bytes","duration","request_id"} (user, repository and request_id null when unknown; duration in
 * seconds; bytes sent).  Strings are escaped for JSON; bytes outside printable ASCII become \u00XX.  Returns the
 * length (< size).
 */
size_t reqlog_format_json(h2o_req_t *req, char *out, size_t size);

/**
 * Formats the combined-format line of `req` (with its newline) into `out`; control bytes, '"' and '\' in the
 * request line and headers are escaped as \xHH.  Returns the length (< size).
 */
size_t reqlog_format(h2o_req_t *req, char *out, size_t size);

#endif
