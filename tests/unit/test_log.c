/* test_log.c - log.h: escaping client-supplied strings for log lines. */
#include "check.h"
#include "log.h"

/* Printable ASCII passes unchanged, so ordinary names read as before. */
static void escape_keeps_plain_names(void)
{
    char out[64];
    CHECK_STR_EQ(log_escape("team/app-1.2_x", 14, out, sizeof(out)), "team/app-1.2_x");
    CHECK_STR_EQ(log_escape("", 0, out, sizeof(out)), "");
}

/* A newline and a forged line after it stay on one line: no byte of the output is a control byte. */
static void escape_turns_newlines_and_controls_into_hex(void)
{
    const char in[] = "bob\n2026-01-01T00:00:00Z warn: x\r\t\x7f";
    char out[LOG_ESCAPED_MAX(sizeof(in))];
    log_escape(in, sizeof(in) - 1, out, sizeof(out));
    CHECK_STR_EQ(out, "bob\\x0a2026-01-01T00:00:00Z warn: x\\x0d\\x09\\x7f");
    for (const char *p = out; *p != '\0'; p++)
        CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
}

/* Quotes and backslashes are escaped, so a quoted field cannot be closed from inside. */
static void escape_quotes_and_backslash(void)
{
    char out[64];
    CHECK_STR_EQ(log_escape("a'b\"c\\d", 7, out, sizeof(out)), "a\\x27b\\x22c\\x5cd");
}

/* A NUL inside the given length is shown, not a place where the string silently ends; bytes >= 0x80 too. */
static void escape_shows_nul_and_high_bytes(void)
{
    char out[64];
    CHECK_STR_EQ(log_escape("bob\0x\xe4", 6, out, sizeof(out)), "bob\\x00x\\xe4");
}

/* Output that does not fit ends in "..." and is always NUL-terminated within `size`. */
static void escape_truncates_with_dots(void)
{
    char out[10];
    CHECK_STR_EQ(log_escape("abcdefghijklmnop", 16, out, sizeof(out)), "abcdef...");
    CHECK_STR_EQ(log_escape("abcdefghi", 9, out, sizeof(out)), "abcdefghi");
    CHECK_STR_EQ(log_escape("abcdefgh\n", 9, out, sizeof(out)), "abcdef...");
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(escape_keeps_plain_names),    CHECK_TEST(escape_turns_newlines_and_controls_into_hex),
        CHECK_TEST(escape_quotes_and_backslash), CHECK_TEST(escape_shows_nul_and_high_bytes),
        CHECK_TEST(escape_truncates_with_dots),
    };
    return check_run(tests, CHECK_COUNT(tests), argc, argv);
}
