/*
 * log.h - leveled logging to stderr.  The access log is h2o's own (combined format), configured in http.c; h2o
 * escapes the request line, headers and user agent there (\xHH for bytes outside printable ASCII, and '"', '\\').
 *
 * Lines are written whole with one write(2), so threads never interleave inside a line.  Secrets are never passed
 * to these functions: log the user name, never a password or token.
 *
 * Client-supplied strings (user names from Basic, repository names, references, upload ids, anything from a
 * request) go through log_escape() before they reach a format: a client can then neither end the line (newline,
 * CR) nor close a quoted field ('\'', '"') to plant a forged line or a fake address that log scanners would act on.
 * Log such a string inside single quotes: "… of '%s' from %s".
 */
#ifndef BERTH_LOG_H
#define BERTH_LOG_H

#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/** Sets the level below which messages are dropped. */
void log_set_level(enum log_level lvl);
/** Parses "error" / "warn" / "info" / "debug"; returns -1 if unknown. */
int log_parse_level(const char *s);

/* Room for the escaped form of a string of `n` bytes (each byte at most "\\xHH") and the NUL. */
#define LOG_ESCAPED_MAX(n) (4 * (n) + 1)

/** Writes `s[0..len)` into `out` (`size` bytes, NUL-terminated) for a log line: printable ASCII as is, except '\\',
 *  '\'' and '"'; those and every other byte (control bytes, NUL, DEL, bytes >= 0x80) as "\\xHH".  Output that would
 *  not fit ends in "..." instead.  Returns `out`. */
const char *log_escape(const char *s, size_t len, char *out, size_t size);
/** Names the request this thread is working on (NULL: none): its X-Request-Id is added to every line logged
 *  meanwhile, as "req=<id>", so error lines can be matched with the access log and the client's response. */
void log_set_request_id(const char *id);
/** The id set by log_set_request_id() on this thread, or NULL. */
const char *log_get_request_id(void);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
