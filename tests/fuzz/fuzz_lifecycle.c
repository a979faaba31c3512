/*
 * fuzz_lifecycle.c - libFuzzer target for lifecycle.h: lifecycle_parse() (ECR's policy validation) and
 * lifecycle_evaluate() (which images a policy expires).
 *
 * Input: a policy document.  The images it is evaluated over are drawn from a generator seeded by a hash of the
 * input, their tags from the policy's own prefixes and patterns (so that rules match) and a few fixed ones; push
 * times are distinct so that "the N newest" is well defined.
 * Beyond "no crash, no sanitizer report, no leak":
 *   - a refused document gets ECR's InvalidParameterException text and no policy; an accepted one has 1..
 *     LIFECYCLE_RULES_MAX rules in strictly ascending rulePriority >= 1, countNumber >= 1, tag lists exactly on
 *     tagged rules (non-empty entries, at most LIFECYCLE_WILDCARDS_MAX '*' in a pattern), at most one untagged rule
 *     and `any` only as the last rule;
 *   - round trip: the policy written back as a document parses to the same rules;
 *   - evaluation agrees with a reference model written per image rather than per rule (an image's fate is decided
 *     by the first rule whose tag selection takes it: count rules expire it when at least countNumber images that
 *     rule selects are newer, age rules when it is more than countNumber days old, computed in 128 bits); the
 *     returned count is the number expired; a different order of the input images gives the same result.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "err.h"
#include "fuzz_common.h"
#include "lifecycle.h"

#define IMAGES_MAX 24
#define CAND_MAX 32
#define AS_OF 1700000000LL

static uint64_t rng;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void check_policy(const struct lifecycle_policy *p)
{
    int untagged = 0;
    FUZZ_ASSERT(p->nrules >= 1 && p->nrules <= LIFECYCLE_RULES_MAX);
    for (size_t i = 0; i < p->nrules; i++) {
        const struct lifecycle_rule *r = &p->rules[i];
        FUZZ_ASSERT(r->priority >= 1 && r->count >= 1);
        FUZZ_ASSERT(i == 0 || r->priority > p->rules[i - 1].priority);
        FUZZ_ASSERT((r->tag_status == LIFECYCLE_TAGGED) == (r->ntags > 0));
        FUZZ_ASSERT(r->ntags <= LIFECYCLE_TAGLIST_MAX);
        for (size_t j = 0; j < r->ntags; j++) {
            int stars = 0;
            FUZZ_ASSERT(r->tags[j][0] != '\0');
            for (const char *s = r->tags[j]; *s; s++)
                stars += *s == '*';
            FUZZ_ASSERT(r->by_prefix || stars <= LIFECYCLE_WILDCARDS_MAX);
        }
        untagged += r->tag_status == LIFECYCLE_UNTAGGED;
        FUZZ_ASSERT(r->tag_status != LIFECYCLE_ANY || i + 1 == p->nrules);
    }
    FUZZ_ASSERT(untagged <= 1);
}

static char *write_back(const struct lifecycle_policy *p)
{
    static const char *const status[] = {"tagged", "untagged", "any"};
    static const char *const type[] = {"imageCountMoreThan", "sinceImagePushed", "sinceImagePulled"};
    json_t *rules = json_array();
    for (size_t i = 0; i < p->nrules; i++) {
        const struct lifecycle_rule *r = &p->rules[i];
        json_t *sel = json_pack("{s:s, s:s, s:I}", "tagStatus", status[r->tag_status], "countType", type[r->count_type],
                                "countNumber", (json_int_t)r->count);
        if (r->count_type != LIFECYCLE_COUNT_MORE_THAN)
            json_object_set_new(sel, "countUnit", json_string("days"));
        if (r->ntags > 0) {
            json_t *l = json_array();
            for (size_t j = 0; j < r->ntags; j++)
                json_array_append_new(l, json_string(r->tags[j]));
            json_object_set_new(sel, r->by_prefix ? "tagPrefixList" : "tagPatternList", l);
        }
        json_array_append_new(rules, json_pack("{s:I, s:s, s:o, s:{s:s}}", "rulePriority", (json_int_t)r->priority,
                                               "description", "written back by fuzz_lifecycle.c for the round trip",
                                               "selection", sel, "action", "type", "expire"));
    }
    json_t *doc = json_pack("{s:o}", "rules", rules);
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return s;
}

static void check_round_trip(const struct lifecycle_policy *p)
{
    struct lifecycle_policy *q = NULL;
    char msg[LIFECYCLE_MSG_MAX], *s = write_back(p);
    FUZZ_ASSERT(s != NULL);
    if (strlen(s) > LIFECYCLE_POLICY_MAX) { /* the input was at the size limit; ours is longer */
        free(s);
        return;
    }
    FUZZ_ASSERT(lifecycle_parse(s, strlen(s), &q, msg, sizeof(msg)) == 0);
    FUZZ_ASSERT(q->nrules == p->nrules);
    for (size_t i = 0; i < p->nrules; i++) {
        const struct lifecycle_rule *a = &p->rules[i], *b = &q->rules[i];
        FUZZ_ASSERT(a->priority == b->priority && a->tag_status == b->tag_status && a->ntags == b->ntags &&
                    a->count_type == b->count_type && a->count == b->count);
        FUZZ_ASSERT(a->ntags == 0 || a->by_prefix == b->by_prefix);
        for (size_t j = 0; j < a->ntags; j++)
            FUZZ_ASSERT(strcmp(a->tags[j], b->tags[j]) == 0);
    }
    lifecycle_policy_free(q);
    free(s);
}

/* The reference: '*' matches any run, every other byte itself. */
static int glob(const char *p, const char *s)
{
    if (*p == '\0')
        return *s == '\0';
    if (*p == '*')
        return glob(p + 1, s) || (*s != '\0' && glob(p, s + 1));
    return *p == *s && glob(p + 1, s + 1);
}

static int model_selects(const struct lifecycle_rule *r, const struct lifecycle_image *img)
{
    if (r->tag_status != LIFECYCLE_TAGGED)
        return r->tag_status == LIFECYCLE_ANY || img->ntags == 0;
    for (size_t j = 0; j < r->ntags; j++) {
        int any = 0;
        for (size_t t = 0; t < img->ntags && !any; t++)
            any = r->by_prefix ? strncmp(img->tags[t], r->tags[j], strlen(r->tags[j])) == 0
                               : glob(r->tags[j], img->tags[t]);
        if (!any)
            return 0;
    }
    return img->ntags > 0;
}

static long long model(const struct lifecycle_policy *p, const struct lifecycle_image *imgs, size_t n, size_t i,
                       long long retention)
{
    const struct lifecycle_image *img = &imgs[i];
    long long last = img->last_pulled_at > img->pushed_at ? img->last_pulled_at : img->pushed_at;
    for (size_t k = 0; k < p->nrules; k++) {
        const struct lifecycle_rule *r = &p->rules[k];
        if (!model_selects(r, img))
            continue;
        if (r->count_type == LIFECYCLE_COUNT_MORE_THAN) {
            long long newer = 0;
            for (size_t j = 0; j < n; j++)
                newer += imgs[j].pushed_at > img->pushed_at && model_selects(r, &imgs[j]);
            if (newer >= r->count)
                return r->priority;
        } else {
            long long since = r->count_type == LIFECYCLE_SINCE_PULLED ? last : img->pushed_at;
            if ((__int128)AS_OF - since > (__int128)r->count * LIFECYCLE_DAY)
                return r->priority;
        }
        break; /* taken by this rule's selection: no lower rule may expire it */
    }
    if (retention > 0 && img->ntags == 0 && AS_OF - last > retention)
        return LIFECYCLE_PRIORITY_RETENTION;
    return LIFECYCLE_PRIORITY_NONE;
}

/* Tags images may carry: the policy's entries (a pattern's '*' as "x", a prefix with "1" after it) and some more. */
static size_t candidates(const struct lifecycle_policy *p, char cand[CAND_MAX][LIFECYCLE_MSG_MAX])
{
    static const char *const fixed[] = {"latest", "v1", "prod-1", "x"};
    size_t n = 0;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        snprintf(cand[n++], LIFECYCLE_MSG_MAX, "%s", fixed[i]);
    for (size_t k = 0; k < p->nrules && n < CAND_MAX; k++)
        for (size_t j = 0; j < p->rules[k].ntags && n < CAND_MAX; j++) {
            size_t o = 0;
            for (const char *s = p->rules[k].tags[j]; *s && o + 2 < LIFECYCLE_MSG_MAX; s++)
                cand[n][o++] = *s == '*' ? 'x' : *s;
            if (p->rules[k].by_prefix)
                cand[n][o++] = '1';
            cand[n++][o] = '\0';
        }
    return n;
}

static void check_evaluate(const struct lifecycle_policy *p)
{
    static char cand[CAND_MAX][LIFECYCLE_MSG_MAX], digests[IMAGES_MAX][16];
    const char *tags[IMAGES_MAX][3];
    struct lifecycle_image imgs[IMAGES_MAX], rev[IMAGES_MAX];
    size_t nc = candidates(p, cand), n = next() % (IMAGES_MAX + 1);
    long long retention = next() % 3 == 0 ? (long long)(next() % 60) * LIFECYCLE_DAY : 0;
    int expired = 0, got;
    for (size_t i = 0; i < n; i++) {
        size_t nt = next() % 4;
        for (size_t t = 0; t < nt; t++)
            tags[i][t] = cand[next() % nc];
        snprintf(digests[i], sizeof(digests[i]), "sha256:%02zu", i);
        imgs[i] = (struct lifecycle_image){.digest = digests[i], .tags = tags[i], .ntags = nt};
        /* distinct push times (equal mod 64 only for the same i), up to ~400 days back; pulled never, or after */
        imgs[i].pushed_at =
            AS_OF - (long long)(next() % 400) * LIFECYCLE_DAY - (long long)(next() % 86400) * 64 - (long long)i;
        imgs[i].last_pulled_at = next() % 2 ? 0 : imgs[i].pushed_at + (long long)(next() % (500LL * LIFECYCLE_DAY));
    }
    got = lifecycle_evaluate(p, imgs, n, AS_OF, retention);
    FUZZ_ASSERT(got >= 0);
    for (size_t i = 0; i < n; i++) {
        FUZZ_ASSERT(imgs[i].expire_rule == model(p, imgs, n, i, retention));
        expired += imgs[i].expire_rule != LIFECYCLE_PRIORITY_NONE;
        rev[n - 1 - i] = imgs[i];
    }
    FUZZ_ASSERT(got == expired);
    FUZZ_ASSERT(lifecycle_evaluate(p, rev, n, AS_OF, retention) == got);
    for (size_t i = 0; i < n; i++)
        FUZZ_ASSERT(rev[n - 1 - i].expire_rule == imgs[i].expire_rule);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lifecycle_policy *p = (struct lifecycle_policy *)1;
    char msg[LIFECYCLE_MSG_MAX];
    uint64_t h = 1469598103934665603ULL;
    int rc;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 1099511628211ULL;
    rng = h | 1;
    msg[0] = '\0';
    rc = lifecycle_parse((const char *)data, size, &p, msg, sizeof(msg));
    if (rc != 0) {
        FUZZ_ASSERT(rc == BERR_LIFECYCLE_POLICY_INVALID && p == NULL);
        FUZZ_ASSERT(strncmp(msg, "Invalid parameter at 'LifecyclePolicyText'", 42) == 0 && strlen(msg) < sizeof(msg));
        return 0;
    }
    check_policy(p);
    check_round_trip(p);
    check_evaluate(p);
    lifecycle_policy_free(p);
    return 0;
}
