/* test_webhook.c - webhook.h's config parsing and signature, httpc.h's URL parsing (pure). */
#include "check.h"
#include "config.h"
#include "events.h"
#include "httpc.h"
#include "webhook.h"

/* A URL alone subscribes to every action of every repository, unsigned. */
static void parse_url_only_takes_everything(void)
{
    struct webhook_conf w;
    char err[256];
    REQUIRE_OK(webhook_parse("http://127.0.0.1:9000/hook?x=1", &w, err, sizeof(err)));
    CHECK_INT_EQ(w.actions, EVENT_BITS_ALL);
    CHECK_STR_EQ(w.secret, "");
    CHECK_STR_EQ(w.pattern, "");
    CHECK_STR_EQ(w.u.host, "127.0.0.1");
    CHECK_STR_EQ(w.u.port, "9000");
    CHECK_STR_EQ(w.u.path, "/hook?x=1");
    CHECK_STR_EQ(w.u.authority, "127.0.0.1:9000");
    CHECK_INT_EQ(w.u.tls, 0);
}

/* secret=, events= and repository= are read; unknown options and actions are refused with a message. */
static void parse_options_and_refusals(void)
{
    struct webhook_conf w;
    char err[256] = "";
    REQUIRE_OK(webhook_parse("https://hooks.example.com  secret=s3 events=push,delete repository=team/*", &w, err,
                             sizeof(err)));
    CHECK_STR_EQ(w.secret, "s3");
    CHECK_INT_EQ(w.actions, EVENT_BIT_PUSH | EVENT_BIT_DELETE);
    CHECK_STR_EQ(w.pattern, "team/*");
    CHECK_STR_EQ(w.u.port, "443");
    CHECK_STR_EQ(w.u.path, "/");
    CHECK_INT_EQ(w.u.tls, 1);
    CHECK_ERR(webhook_parse("http://h events=push,bogus", &w, err, sizeof(err)), BERR_BAD_REQUEST);
    CHECK_STR_CONTAINS(err, "events=push,bogus");
    CHECK_ERR(webhook_parse("http://h colour=red", &w, err, sizeof(err)), BERR_BAD_REQUEST);
    CHECK_STR_CONTAINS(err, "colour");
    CHECK_ERR(webhook_parse("ftp://h", &w, err, sizeof(err)), BERR_BAD_REQUEST);
    CHECK_ERR(webhook_parse("http://user:pw@h/", &w, err, sizeof(err)), BERR_BAD_REQUEST);
    CHECK_ERR(webhook_parse("http://h:99999999/", &w, err, sizeof(err)), BERR_BAD_REQUEST);
    CHECK_ERR(webhook_parse("http://h:80x/", &w, err, sizeof(err)), BERR_BAD_REQUEST);
    CHECK_ERR(webhook_parse("", &w, err, sizeof(err)), BERR_BAD_REQUEST);
}

/* IPv6 literals keep their brackets in the Host header only. */
static void parse_ipv6(void)
{
    struct httpc_url u;
    REQUIRE_OK(httpc_parse_url("http://[::1]:8080/x", &u));
    CHECK_STR_EQ(u.host, "::1");
    CHECK_STR_EQ(u.port, "8080");
    CHECK_STR_EQ(u.authority, "[::1]:8080");
}

/* The signature is HMAC-SHA256 in hex (RFC 4231 test case 2). */
static void sign_matches_rfc4231(void)
{
    char sig[65];
    const char *data = "what do ya want for nothing?";
    webhook_sign("Jefe", data, strlen(data), sig);
    CHECK_STR_EQ(sig, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

/* `webhook` lines add up to BERTH_WEBHOOKS_MAX receivers and are checked when read; events_retention is bounded. */
static void config_webhook_lines_and_retention(void)
{
    static struct config c; /* large: not on the stack */
    char err[256] = "";
    config_defaults(&c);
    CHECK_INT_EQ(c.nwebhooks, 0);
    CHECK_INT_EQ(c.events_retention, BERTH_DEFAULT_EVENTS_RETENTION);
    REQUIRE_OK(config_set(&c, "webhook", "http://a/ events=push", err, sizeof(err)));
    REQUIRE_OK(config_set(&c, "webhook", "http://b/", err, sizeof(err)));
    REQUIRE_OK(config_set(&c, "webhook", "", err, sizeof(err))); /* the example's empty default: none */
    CHECK_INT_EQ(c.nwebhooks, 2);
    CHECK_STR_EQ(c.webhooks[1], "http://b/");
    CHECK_INT_EQ(config_set(&c, "webhook", "http://c/ events=nope", err, sizeof(err)), -1);
    CHECK_STR_CONTAINS(err, "events=nope");
    CHECK_INT_EQ(c.nwebhooks, 2);
    for (int i = 2; i < BERTH_WEBHOOKS_MAX; i++)
        REQUIRE_OK(config_set(&c, "webhook", "http://d/", err, sizeof(err)));
    CHECK_INT_EQ(config_set(&c, "webhook", "http://e/", err, sizeof(err)), -1);
    CHECK_STR_CONTAINS(err, "at most");
    REQUIRE_OK(config_set(&c, "events_retention", "86400", err, sizeof(err)));
    CHECK_INT_EQ(c.events_retention, 86400);
    CHECK_INT_EQ(config_set(&c, "events_retention", "10", err, sizeof(err)), -1);
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(parse_url_only_takes_everything),
        CHECK_TEST(parse_options_and_refusals),
        CHECK_TEST(parse_ipv6),
        CHECK_TEST(sign_matches_rfc4231),
        CHECK_TEST(config_webhook_lines_and_retention),
    };
    return check_run(tests, CHECK_COUNT(tests), argc, argv);
}
