/* test_lifecycle.c - lifecycle.h: ECR policy validation and evaluation, from ECR's documented examples. */
#include "check.h"
#include "lifecycle.h"
#include "names.h"

#define NOW 1800000000LL /* evaluation time of every case */
#define DAYS(n) (NOW - (long long)(n)*LIFECYCLE_DAY)
#define IMAGES_MAX 8
#define TAGS_MAX 4

/* One image of a case: its tags and how many days ago it was pushed / last pulled (-1 = never). */
struct img {
    const char *name;
    const char *tags[TAGS_MAX];
    int pushed_days, pulled_days;
    long long want; /* rulePriority expected to expire it, 0 = kept */
};

struct eval_case {
    const char *what, *policy;
    long long retention;
    struct img imgs[IMAGES_MAX];
};

/* A policy document from the "rules" array (padded past ECR's 100-character minimum with a description). */
#define POLICY(rules) "{\"rules\": [" rules "]}"
#define RULE(prio, sel)                                                                                                \
    "{\"rulePriority\": " #prio ", \"description\": \"a test rule of berth\", \"selection\": {" sel                    \
    "}, \"action\": {\"type\": \"expire\"}}"

static const struct eval_case cases[] = {
    {"a countNumber of days past 64 bits of seconds keeps everything (fuzz_lifecycle: the product overflowed)",
     POLICY(RULE(1, "\"tagStatus\": \"any\", \"countType\": \"sinceImagePushed\", \"countUnit\": \"days\", "
                    "\"countNumber\": 9223372036854775807")),
     0,
     {{"a", {NULL}, 20000, -1, 0}, {"b", {"v1"}, 1, -1, 0}}},
    {"ECR example: filtering on image age (untagged older than 14 days)",
     POLICY(RULE(1, "\"tagStatus\": \"untagged\", \"countType\": \"sinceImagePushed\", \"countUnit\": \"days\", "
                    "\"countNumber\": 14")),
     0,
     {{"a", {NULL}, 20, -1, 1}, {"b", {NULL}, 15, -1, 1}, {"c", {NULL}, 13, -1, 0}, {"d", {"v1"}, 30, -1, 0}}},
    {"ECR example: filtering on image count (keep one untagged image)",
     POLICY(RULE(1, "\"tagStatus\": \"untagged\", \"countType\": \"imageCountMoreThan\", \"countNumber\": 1")),
     0,
     {{"a", {NULL}, 3, -1, 1}, {"b", {NULL}, 2, -1, 1}, {"c", {NULL}, 1, -1, 0}, {"d", {"v1"}, 9, -1, 0}}},
    {"ECR example: multiple rules; an image claimed by rule 1 is not expired by rule 2",
     POLICY(RULE(
         1, "\"tagStatus\": \"tagged\", \"tagPrefixList\": [\"prod\"], \"countType\": "
            "\"imageCountMoreThan\", \"countNumber\": 1") "," RULE(2, "\"tagStatus\": \"tagged\", \"tagPrefixList\": "
                                                                      "[\"beta\"], \"countType\": "
                                                                      "\"imageCountMoreThan\", \"countNumber\": 1")),
     0,
     {{"A", {"beta-1", "prod-1"}, 10, -1, 1}, {"B", {"beta-2", "prod-2"}, 9, -1, 0}, {"C", {"beta-3"}, 8, -1, 0}}},
    {"ECR example: multiple rules, four images (A by rule 1, C by rule 2; B counted by rule 2 but kept)",
     POLICY(RULE(
         1, "\"tagStatus\": \"tagged\", \"tagPrefixList\": [\"prod\"], \"countType\": "
            "\"imageCountMoreThan\", \"countNumber\": 1") "," RULE(2, "\"tagStatus\": \"tagged\", \"tagPrefixList\": "
                                                                      "[\"beta\"], \"countType\": "
                                                                      "\"imageCountMoreThan\", \"countNumber\": 1")),
     0,
     {{"A", {"beta-1", "prod-1"}, 10, -1, 1},
      {"B", {"beta-2", "prod-2"}, 9, -1, 0},
      {"C", {"beta-3"}, 8, -1, 2},
      {"D", {"beta-4"}, 7, -1, 0}}},
    {"ECR example: multiple prefixes in one rule match only images carrying all of them",
     POLICY(RULE(1, "\"tagStatus\": \"tagged\", \"tagPrefixList\": [\"alpha\", \"beta\"], \"countType\": "
                    "\"imageCountMoreThan\", \"countNumber\": 1")),
     0,
     {{"A", {"alpha-1", "beta-1", "gamma-1"}, 10, -1, 1},
      {"B", {"alpha-2", "beta-2"}, 9, -1, 1},
      {"C", {"alpha-3", "beta-3", "gamma-3"}, 8, -1, 0},
      {"D", {"alpha-4"}, 7, -1, 0}}},
    {"ECR example: filtering on all images (any keeps only the newest)",
     POLICY(RULE(1, "\"tagStatus\": \"any\", \"countType\": \"imageCountMoreThan\", \"countNumber\": 1")),
     0,
     {{"A", {"alpha-1"}, 4, -1, 1},
      {"B", {NULL}, 3, -1, 1},
      {"C", {"alpha-2"}, 2, -1, 1},
      {"D", {"abc1234"}, 1, -1, 0}}},
    {"ECR example: a tagged rule, then any: images the tagged rule selected are never expired by any",
     POLICY(RULE(
         1, "\"tagStatus\": \"tagged\", \"tagPrefixList\": [\"alpha\"], \"countType\": "
            "\"imageCountMoreThan\", \"countNumber\": 1") "," RULE(2, "\"tagStatus\": \"any\", \"countType\": "
                                                                      "\"imageCountMoreThan\", \"countNumber\": 1")),
     0,
     {{"A", {"alpha-1"}, 4, -1, 1},
      {"B", {NULL}, 3, -1, 2},
      {"C", {"alpha-2"}, 2, -1, 0},
      {"D", {"abc1234"}, 1, -1, 0}}},
    {"tagPatternList: prod* matches prod and prod1, a pattern without * matches the whole tag only",
     POLICY(RULE(
         1, "\"tagStatus\": \"tagged\", \"tagPatternList\": [\"prod*\"], \"countType\": \"sinceImagePushed\", "
            "\"countUnit\": \"days\", \"countNumber\": 5") "," RULE(2, "\"tagStatus\": \"tagged\", \"tagPatternList\": "
                                                                       "[\"latest\"], \"countType\": "
                                                                       "\"sinceImagePushed\", \"countUnit\": \"days\", "
                                                                       "\"countNumber\": 5")),
     0,
     {{"a", {"prod"}, 9, -1, 1},
      {"b", {"prod1"}, 9, -1, 1},
      {"c", {"xprod"}, 9, -1, 0},
      {"d", {"latest"}, 9, -1, 2},
      {"e", {"latest2"}, 9, -1, 0},
      {"f", {"prod2"}, 2, -1, 0}}},
    {"sinceImagePulled counts from the last pull, or from the push if never pulled",
     POLICY(RULE(1, "\"tagStatus\": \"any\", \"countType\": \"sinceImagePulled\", \"countUnit\": \"days\", "
                    "\"countNumber\": 30")),
     0,
     {{"a", {"v1"}, 90, 10, 0}, {"b", {"v2"}, 90, 40, 1}, {"c", {NULL}, 40, -1, 1}, {"d", {NULL}, 20, -1, 0}}},
    {"the registry-wide untagged retention expires old untagged images the policy keeps, never tagged ones",
     POLICY(RULE(1, "\"tagStatus\": \"untagged\", \"countType\": \"imageCountMoreThan\", \"countNumber\": 5")),
     14 * LIFECYCLE_DAY,
     {{"a", {NULL}, 20, -1, LIFECYCLE_PRIORITY_RETENTION},
      {"b", {NULL}, 20, 3, 0},
      {"c", {NULL}, 3, -1, 0},
      {"d", {"v1"}, 60, -1, 0}}},
};

/* Every case of the table: each image is expired by the expected rule, or kept. */
static void evaluate_matches_ecr_examples(void)
{
    for (size_t c = 0; c < CHECK_COUNT(cases); c++) {
        const struct eval_case *k = &cases[c];
        struct lifecycle_image imgs[IMAGES_MAX];
        struct lifecycle_policy *p;
        char msg[LIFECYCLE_MSG_MAX] = "";
        size_t n = 0;
        int expired = 0, rc = lifecycle_parse(k->policy, strlen(k->policy), &p, msg, sizeof(msg));
        CHECK_ERR(rc, 0);
        if (rc != 0) {
            fprintf(stderr, "  case: %s\n  %s\n", k->what, msg);
            continue;
        }
        for (; n < IMAGES_MAX && k->imgs[n].name != NULL; n++) {
            const struct img *i = &k->imgs[n];
            size_t t = 0;
            while (t < TAGS_MAX && i->tags[t] != NULL)
                t++;
            imgs[n] = (struct lifecycle_image){.digest = i->name,
                                               .tags = i->tags,
                                               .ntags = t,
                                               .pushed_at = DAYS(i->pushed_days),
                                               .last_pulled_at = i->pulled_days < 0 ? 0 : DAYS(i->pulled_days)};
            expired += i->want != 0;
        }
        CHECK_INT_EQ(lifecycle_evaluate(p, imgs, n, NOW, k->retention), expired);
        for (size_t i = 0; i < n; i++)
            if (imgs[i].expire_rule != k->imgs[i].want) {
                CHECK_INT_EQ(imgs[i].expire_rule, k->imgs[i].want);
                fprintf(stderr, "  case: %s, image %s\n", k->what, k->imgs[i].name);
            }
        lifecycle_policy_free(p);
    }
}

/* Rules come back sorted by priority whatever their order in the document. */
static void parse_sorts_rules_by_priority(void)
{
    static const char doc[] =
        POLICY(RULE(7, "\"tagStatus\": \"any\", \"countType\": \"imageCountMoreThan\", \"countNumber\": 100") "," RULE(
            3, "\"tagStatus\": \"tagged\", \"tagPatternList\": [\"*test*1*2*3\", \"test*1*2*3*\"], \"countType\": "
               "\"imageCountMoreThan\", \"countNumber\": 1"));
    struct lifecycle_policy *p;
    char msg[LIFECYCLE_MSG_MAX];
    REQUIRE_OK(lifecycle_parse(doc, strlen(doc), &p, msg, sizeof(msg)));
    REQUIRE_INT_EQ(p->nrules, 2);
    CHECK_INT_EQ(p->rules[0].priority, 3);
    CHECK_INT_EQ(p->rules[0].ntags, 2);
    CHECK_INT_EQ(p->rules[0].by_prefix, 0);
    CHECK_INT_EQ(p->rules[1].tag_status, LIFECYCLE_ANY);
    lifecycle_policy_free(p);
}

struct invalid_case {
    const char *doc, *says;
};

static const struct invalid_case invalid_cases[] = {
    {"{\"rules\": []}", "length greater than or equal to 100"},
    {POLICY(RULE(1, "\"tagStatus\": \"tagged\", \"countType\": \"imageCountMoreThan\", \"countNumber\": 1")),
     "tagPrefixList or tagPatternList must be specified"},
    {POLICY(RULE(1, "\"tagStatus\": \"untagged\", \"tagPrefixList\": [\"a\"], \"countType\": \"imageCountMoreThan\", "
                    "\"countNumber\": 1")),
     "must be omitted when tagStatus is untagged"},
    {POLICY(RULE(1, "\"tagStatus\": \"tagged\", \"tagPrefixList\": [\"a\"], \"tagPatternList\": [\"b*\"], "
                    "\"countType\": \"imageCountMoreThan\", \"countNumber\": 1")),
     "cannot both be specified"},
    {POLICY(RULE(1, "\"tagStatus\": \"untagged\", \"countType\": \"imageCountMoreThan\", \"countNumber\": 1") "," RULE(
         2, "\"tagStatus\": \"untagged\", \"countType\": \"sinceImagePushed\", \"countUnit\": \"days\", "
            "\"countNumber\": 1")),
     "only one rule is allowed to select untagged images"},
    {POLICY(RULE(1, "\"tagStatus\": \"any\", \"countType\": \"imageCountMoreThan\", \"countNumber\": 1") "," RULE(
         2, "\"tagStatus\": \"untagged\", \"countType\": \"imageCountMoreThan\", \"countNumber\": 1")),
     "must have the highest rulePriority"},
    {POLICY(RULE(1, "\"tagStatus\": \"untagged\", \"countType\": \"imageCountMoreThan\", \"countNumber\": 1") "," RULE(
         1, "\"tagStatus\": \"any\", \"countType\": \"imageCountMoreThan\", \"countNumber\": 1")),
     "must be unique"},
    {POLICY(RULE(1, "\"tagStatus\": \"tagged\", \"tagPatternList\": [\"test*1*2*3*4*5*6\"], \"countType\": "
                    "\"imageCountMoreThan\", \"countNumber\": 1")),
     "more than 4 wildcards"},
    {POLICY(RULE(1, "\"tagStatus\": \"untagged\", \"countType\": \"imageCountMoreThan\", \"countUnit\": \"days\", "
                    "\"countNumber\": 5")),
     "not allowed by the schema: [\"countUnit\"]"},
    {POLICY(RULE(1, "\"tagStatus\": \"untagged\", \"countType\": \"sinceImagePushed\", \"countNumber\": 5")),
     "missing required properties ([\"countUnit\"])"},
    {POLICY(RULE(1, "\"tagStatus\": \"untagged\", \"countType\": \"sinceImagePushed\", \"countUnit\": \"hours\", "
                    "\"countNumber\": 5")),
     "instance value (\"hours\") not found in enum (possible values: [\"days\"])"},
    {POLICY(RULE(1, "\"tagStatus\": \"old\", \"countType\": \"imageCountMoreThan\", \"countNumber\": 5")),
     "not found in enum (possible values: [\"tagged\",\"untagged\",\"any\"])"},
    {POLICY(RULE(1, "\"tagStatus\": \"untagged\", \"countType\": \"imageCountMoreThan\", \"countNumber\": 0")),
     "lower than the required minimum (minimum: 1, found: 0)"},
    {POLICY(RULE(1, "\"tagStatus\": \"untagged\", \"countType\": \"imageCountMoreThan\", \"countNumber\": \"5\"")),
     "instance type (string) does not match any allowed primitive type (allowed: [\"integer\"])"},
    {POLICY(RULE(0, "\"tagStatus\": \"untagged\", \"countType\": \"imageCountMoreThan\", \"countNumber\": 5")),
     "minimum: 1, found: 0"},
    {"{\"rules\": [{\"rulePriority\": 1, \"description\": \"a rule without an action, long enough\", \"selection\": "
     "{\"tagStatus\": \"any\", \"countType\": \"imageCountMoreThan\", \"countNumber\": 1}}]}",
     "missing required properties ([\"action\"])"},
    {POLICY(RULE(1, "\"tagStatus\": \"tagged\", \"tagPrefixList\": [\"a\"], \"countType\": \"imageCountMoreThan\", "
                    "\"countNumber\": 1") "," RULE(2, "\"tagStatus\": \"tagged\", \"tagPrefixList\": [\"a\"], "
                                                      "\"countType\": \"sinceImagePushed\", "
                                                      "\"countUnit\": \"days\", \"countNumber\": 1")),
     "unique set of tag prefixes"},
    {"{\"rules\": [{\"rulePriority\": 1, \"description\": \"a rule cut short "
     ".......................................\", "
     "\"selection\": ",
     "not valid JSON"},
    {"{\"rules\": [], \"extra\": \"a document with a member ECR does not know, long enough to pass the minimum\"}",
     "not allowed by the schema: [\"extra\"]"},
};

/* Each invalid document is refused whole, with ECR's InvalidParameterException text naming the problem. */
static void parse_refuses_invalid_documents_with_ecr_messages(void)
{
    for (size_t i = 0; i < CHECK_COUNT(invalid_cases); i++) {
        struct lifecycle_policy *p = (void *)1;
        char msg[LIFECYCLE_MSG_MAX] = "";
        const char *d = invalid_cases[i].doc;
        CHECK_ERR(lifecycle_parse(d, strlen(d), &p, msg, sizeof(msg)), BERR_LIFECYCLE_POLICY_INVALID);
        CHECK_NULL(p);
        CHECK_STR_CONTAINS(msg, "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: ");
        CHECK_STR_CONTAINS(msg, invalid_cases[i].says);
    }
}

/* 30,720 characters is the limit: one more is refused with ECR's length message; multibyte counts once. */
static void parse_enforces_the_size_limit(void)
{
    static const char head[] = "{\"rules\": [{\"rulePriority\": 1, \"description\": \"";
    static const char tail[] = "\", \"selection\": {\"tagStatus\": \"any\", \"countType\": \"imageCountMoreThan\", "
                               "\"countNumber\": 1}, \"action\": {\"type\": \"expire\"}}]}";
    size_t fixed = strlen(head) + strlen(tail), fill = LIFECYCLE_POLICY_MAX - fixed;
    char *doc = malloc(LIFECYCLE_POLICY_MAX * 2 + 8), msg[LIFECYCLE_MSG_MAX];
    struct lifecycle_policy *p;
    size_t len;
    REQUIRE(doc != NULL);
    memcpy(doc, head, strlen(head));
    len = strlen(head);
    for (size_t i = 0; i < fill; i++) { /* "é" is two bytes, one character */
        doc[len++] = (char)0xC3;
        doc[len++] = (char)0xA9;
    }
    memcpy(doc + len, tail, strlen(tail));
    len += strlen(tail);
    CHECK_ERR(lifecycle_parse(doc, len, &p, msg, sizeof(msg)), 0);
    lifecycle_policy_free(p);
    memmove(doc + strlen(head) + 1, doc + strlen(head), len - strlen(head)); /* one more character */
    doc[strlen(head)] = 'x';
    CHECK_ERR(lifecycle_parse(doc, len + 1, &p, msg, sizeof(msg)), BERR_LIFECYCLE_POLICY_INVALID);
    CHECK_STR_CONTAINS(msg, "Member must have length less than or equal to 30720");
    free(doc);
}

/* `*` matches any run, including none; up to four of them; everything else literally. */
static void pattern_match_wildcards(void)
{
    CHECK(names_glob_match("prod*", "prod"));
    CHECK(names_glob_match("prod*", "prod-2024"));
    CHECK(names_glob_match("*test*1*2*3", "mytest-1-2-3"));
    CHECK(names_glob_match("*", "anything"));
    CHECK(names_glob_match("a*b*c", "abc"));
    CHECK(!names_glob_match("a*b*c", "acb"));
    CHECK(!names_glob_match("prod", "prod1"));
    CHECK(!names_glob_match("prod*", "xprod"));
    CHECK(names_glob_match("*-rc*", "1.2-rc3"));
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(evaluate_matches_ecr_examples),
        CHECK_TEST(parse_sorts_rules_by_priority),
        CHECK_TEST(parse_refuses_invalid_documents_with_ecr_messages),
        CHECK_TEST(parse_enforces_the_size_limit),
        CHECK_TEST(pattern_match_wildcards),
    };
    return check_run(tests, CHECK_COUNT(tests), argc, argv);
}
