/* test_names.c - names.h: the distribution-spec grammar for repository names and tags. */
#include "check.h"
#include "defaults.h"
#include "names.h"

static int repo(const char *s)
{
    return names_repo_valid(s, strlen(s));
}

static int tag(const char *s)
{
    return names_tag_valid(s, strlen(s));
}

/* Accepts single and multi-component names and every separator form: ".", "_", "__", "-+". */
static void repo_accepts_grammar_examples(void)
{
    CHECK_ERR(repo("a"), 0);
    CHECK_ERR(repo("0"), 0);
    CHECK_ERR(repo("a/b"), 0);
    CHECK_ERR(repo("foo/bar/baz"), 0);
    CHECK_ERR(repo("a.b_c__d--e"), 0);
    CHECK_ERR(repo("a---b"), 0);
    CHECK_ERR(repo("library/ubuntu-22.04"), 0);
    CHECK_ERR(repo("x9/y_8/z__7"), 0);
}

/* Rejects uppercase anywhere. */
static void repo_rejects_uppercase(void)
{
    CHECK_ERR(repo("A"), BERR_NAME_INVALID);
    CHECK_ERR(repo("foo/Bar"), BERR_NAME_INVALID);
    CHECK_ERR(repo("fooB"), BERR_NAME_INVALID);
}

/* Rejects "..", "." components and a doubled dot: nothing that could walk a path. */
static void repo_rejects_double_dot(void)
{
    CHECK_ERR(repo(".."), BERR_NAME_INVALID);
    CHECK_ERR(repo("a/../b"), BERR_NAME_INVALID);
    CHECK_ERR(repo("a..b"), BERR_NAME_INVALID);
    CHECK_ERR(repo("a/./b"), BERR_NAME_INVALID);
}

/* Rejects empty components: "a//b", "/a", "a/", "/". */
static void repo_rejects_empty_components(void)
{
    CHECK_ERR(repo("a//b"), BERR_NAME_INVALID);
    CHECK_ERR(repo("/a"), BERR_NAME_INVALID);
    CHECK_ERR(repo("a/"), BERR_NAME_INVALID);
    CHECK_ERR(repo("/"), BERR_NAME_INVALID);
    CHECK_ERR(repo(""), BERR_NAME_INVALID);
}

/* Rejects percent-encoding and other punctuation: "%2F", ":", "@", space. */
static void repo_rejects_percent_and_punctuation(void)
{
    CHECK_ERR(repo("a%2Fb"), BERR_NAME_INVALID);
    CHECK_ERR(repo("%2F"), BERR_NAME_INVALID);
    CHECK_ERR(repo("a:b"), BERR_NAME_INVALID);
    CHECK_ERR(repo("a@b"), BERR_NAME_INVALID);
    CHECK_ERR(repo("a b"), BERR_NAME_INVALID);
}

/* Rejects a separator at the start or end of a component, and "___" (only "_" and "__" are separators). */
static void repo_rejects_misplaced_separators(void)
{
    CHECK_ERR(repo("a_"), BERR_NAME_INVALID);
    CHECK_ERR(repo("-a"), BERR_NAME_INVALID);
    CHECK_ERR(repo("a-"), BERR_NAME_INVALID);
    CHECK_ERR(repo(".a"), BERR_NAME_INVALID);
    CHECK_ERR(repo("a/_b"), BERR_NAME_INVALID);
    CHECK_ERR(repo("a_/b"), BERR_NAME_INVALID);
    CHECK_ERR(repo("a___b"), BERR_NAME_INVALID);
    CHECK_ERR(repo("a._b"), BERR_NAME_INVALID);
    CHECK_ERR(repo("a-.b"), BERR_NAME_INVALID);
}

/* Rejects a NUL byte inside the counted length (a C-string check would stop early and accept "a"). */
static void repo_rejects_embedded_nul(void)
{
    CHECK_ERR(names_repo_valid("a\0b", 3), BERR_NAME_INVALID);
    CHECK_ERR(names_repo_valid("a\0", 2), BERR_NAME_INVALID);
    CHECK_ERR(names_repo_valid("a\0b", 1), 0);
}

/* Accepts exactly BERTH_NAME_MAX (255) bytes, one component or many; rejects 256. */
static void repo_length_limit_is_255(void)
{
    char s[BERTH_NAME_MAX + 2];
    memset(s, 'a', sizeof(s));
    CHECK_ERR(names_repo_valid(s, 255), 0);
    CHECK_ERR(names_repo_valid(s, 256), BERR_NAME_INVALID);
    for (int i = 1; i < 255; i += 2)
        s[i] = '/';
    CHECK_ERR(names_repo_valid(s, 255), 0);
    CHECK_ERR(names_repo_valid(s, 256), BERR_NAME_INVALID);
}

/* Accepts a 1-char tag, a 128-char tag, "_x", mixed case, and '.'/'-' after the first character. */
static void tag_accepts_grammar_examples(void)
{
    char s[BERTH_TAG_MAX + 2];
    memset(s, 'v', sizeof(s));
    CHECK_ERR(tag("a"), 0);
    CHECK_ERR(tag("latest"), 0);
    CHECK_ERR(tag("_x"), 0);
    CHECK_ERR(tag("V1.2.3-rc_1"), 0);
    CHECK_ERR(tag("a..--"), 0);
    CHECK_ERR(names_tag_valid(s, 128), 0);
}

/* Rejects 129 chars, empty, a leading '.' or '-', and ':', '/', '@', '+', NUL. */
static void tag_rejects_outside_grammar(void)
{
    char s[BERTH_TAG_MAX + 2];
    memset(s, 'v', sizeof(s));
    CHECK_ERR(names_tag_valid(s, 129), BERR_TAG_INVALID);
    CHECK_ERR(tag(""), BERR_TAG_INVALID);
    CHECK_ERR(tag(".a"), BERR_TAG_INVALID);
    CHECK_ERR(tag("-a"), BERR_TAG_INVALID);
    CHECK_ERR(tag("a:b"), BERR_TAG_INVALID);
    CHECK_ERR(tag("a/b"), BERR_TAG_INVALID);
    CHECK_ERR(tag("a@b"), BERR_TAG_INVALID);
    CHECK_ERR(tag("a+b"), BERR_TAG_INVALID);
    CHECK_ERR(names_tag_valid("a\0b", 3), BERR_TAG_INVALID);
}

/* Host: names, IPv4, bracketed IPv6, each with an optional port, pass; anything else does not (the realm echoes it). */
static void host_accepts_host_port_grammar(void)
{
    const char *ok[] = {"registry.example.com", "localhost:5000", "127.0.0.1:5000", "[::1]:5000", "[fe80::1]",
                        "a-b_c~d.e:1",          "default"};
    for (size_t i = 0; i < CHECK_COUNT(ok); i++)
        CHECK_ERR(names_host_valid(ok[i], strlen(ok[i])), 0);
}

static void host_rejects_outside_grammar(void)
{
    const char *bad[] = {"",         "ex\xe4mple.com", "a b",   "evil.com:80:80", "x:",   ":80",
                         "x:123456", "[::1",           "[]:80", "[::1]x",         "a\"b", "a/b",
                         "a\r\nb",   "user@host",      "[::g]"};
    char big[BERTH_AUTH_REALM_MAX + 2];
    for (size_t i = 0; i < CHECK_COUNT(bad); i++)
        CHECK_ERR(names_host_valid(bad[i], strlen(bad[i])), BERR_BAD_REQUEST);
    CHECK_ERR(names_host_valid("ab\0c", 4), BERR_BAD_REQUEST);
    memset(big, 'a', sizeof(big));
    CHECK_ERR(names_host_valid(big, sizeof(big)), BERR_BAD_REQUEST);
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(repo_accepts_grammar_examples),
        CHECK_TEST(repo_rejects_uppercase),
        CHECK_TEST(repo_rejects_double_dot),
        CHECK_TEST(repo_rejects_empty_components),
        CHECK_TEST(repo_rejects_percent_and_punctuation),
        CHECK_TEST(repo_rejects_misplaced_separators),
        CHECK_TEST(repo_rejects_embedded_nul),
        CHECK_TEST(repo_length_limit_is_255),
        CHECK_TEST(tag_accepts_grammar_examples),
        CHECK_TEST(tag_rejects_outside_grammar),
        CHECK_TEST(host_accepts_host_port_grammar),
        CHECK_TEST(host_rejects_outside_grammar),
    };
    return check_run(tests, CHECK_COUNT(tests), argc, argv);
}
