/* lifecycle.c - ECR lifecycle policy documents: validation as ECR does it, and evaluation over images. [pure] */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "err.h"
#include "lifecycle.h"
#include "names.h"

#define PREFIX "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: "
#define FAILURE PREFIX "'Lifecycle policy validation failure: "

/* Writes ECR's message for a schema or rule violation into msg; returns BERR_LIFECYCLE_POLICY_INVALID. */
__attribute__((format(printf, 3, 4))) static int invalid(char *msg, size_t msgsz, const char *fmt, ...)
{
    char detail[LIFECYCLE_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    snprintf(msg, msgsz, FAILURE "%s'", detail);
    return BERR_LIFECYCLE_POLICY_INVALID;
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

static int wrong_type(const json_t *v, const char *want, char *msg, size_t msgsz)
{
    return invalid(msg, msgsz, "instance type (%s) does not match any allowed primitive type (allowed: [\"%s\"])",
                   json_kind(v), want);
}

/* Checks that object `o` has every key of `required` and no key outside `allowed` (both NULL-terminated). */
static int check_keys(const json_t *o, const char *const *required, const char *const *allowed, char *msg, size_t msgsz)
{
    const char *key;
    const json_t *v;
    char list[LIFECYCLE_MSG_MAX / 2] = "";
    size_t used = 0;
    for (const char *const *r = required; *r != NULL; r++)
        if (json_object_get(o, *r) == NULL)
            used += (size_t)snprintf(list + used, used < sizeof(list) ? sizeof(list) - used : 0, "%s\"%s\"",
                                     used ? "," : "", *r);
    if (used > 0)
        return invalid(msg, msgsz, "object has missing required properties ([%s])", list);
    json_object_foreach((json_t *)o, key, v)
    {
        const char *const *a = allowed;
        while (*a != NULL && strcmp(*a, key) != 0)
            a++;
        if (*a == NULL)
            return invalid(msg, msgsz,
                           "object instance has properties which are not allowed by the schema: [\"%.64s\"]", key);
    }
    return 0;
}

/* Maps string member `key` of `o` through the NULL-terminated `names` into *out (its index). */
static int enum_member(const json_t *o, const char *key, const char *const *names, int *out, char *msg, size_t msgsz)
{
    const json_t *v = json_object_get(o, key);
    char list[LIFECYCLE_MSG_MAX / 2] = "";
    size_t used = 0;
    if (!json_is_string(v))
        return wrong_type(v, "string", msg, msgsz);
    for (int i = 0; names[i] != NULL; i++)
        if (strcmp(json_string_value(v), names[i]) == 0) {
            *out = i;
            return 0;
        }
    for (int i = 0; names[i] != NULL; i++)
        used += (size_t)snprintf(list + used, used < sizeof(list) ? sizeof(list) - used : 0, "%s\"%s\"", i ? "," : "",
                                 names[i]);
    return invalid(msg, msgsz, "instance value (\"%.64s\") not found in enum (possible values: [%s])",
                   json_string_value(v), list);
}

/* Reads integer member `key` (>= 1) of `o`. */
static int positive_member(const json_t *o, const char *key, long long *out, char *msg, size_t msgsz)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return wrong_type(v, "integer", msg, msgsz);
    if (json_integer_value(v) < 1)
        return invalid(msg, msgsz, "numeric instance is lower than the required minimum (minimum: 1, found: %lld)",
                       (long long)json_integer_value(v));
    *out = (long long)json_integer_value(v);
    return 0;
}

static int count_wildcards(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '*';
    return n;
}

/* Copies tagPrefixList or tagPatternList `list` into rule `r`. */
static int parse_taglist(const json_t *list, int by_prefix, struct lifecycle_rule *r, char *msg, size_t msgsz)
{
    size_t i;
    const json_t *v;
    if (!json_is_array(list))
        return wrong_type(list, "array", msg, msgsz);
    if (json_array_size(list) == 0)
        return invalid(msg, msgsz, "array is too short: must have at least 1 elements but instance has 0 elements");
    if (json_array_size(list) > LIFECYCLE_TAGLIST_MAX)
        return invalid(msg, msgsz, "array is too long: must have at most %d elements but instance has %zu elements",
                       LIFECYCLE_TAGLIST_MAX, json_array_size(list));
    if ((r->tags = calloc(json_array_size(list), sizeof(char *))) == NULL)
        return BERR_NOMEM;
    r->by_prefix = by_prefix;
    json_array_foreach(list, i, v)
    {
        if (!json_is_string(v))
            return wrong_type(v, "string", msg, msgsz);
        if (json_string_length(v) == 0 || strlen(json_string_value(v)) != json_string_length(v))
            return invalid(msg, msgsz, "string \"\" is too short (length: 0, required minimum: 1)");
        if (!by_prefix && count_wildcards(json_string_value(v)) > LIFECYCLE_WILDCARDS_MAX)
            return invalid(msg, msgsz, "tagPatternList entry \"%.64s\" has more than %d wildcards (*)",
                           json_string_value(v), LIFECYCLE_WILDCARDS_MAX);
        if ((r->tags[i] = strdup(json_string_value(v))) == NULL)
            return BERR_NOMEM;
        r->ntags = i + 1;
    }
    return 0;
}

/* Parses the `selection` object of a rule. */
static int parse_selection(const json_t *sel, struct lifecycle_rule *r, char *msg, size_t msgsz)
{
    static const char *const required[] = {"tagStatus", "countType", "countNumber", NULL};
    static const char *const allowed[] = {
        "tagStatus", "tagPrefixList", "tagPatternList", "countType", "countUnit", "countNumber", NULL};
    static const char *const statuses[] = {"tagged", "untagged", "any", NULL};
    static const char *const types[] = {"imageCountMoreThan", "sinceImagePushed", "sinceImagePulled", NULL};
    static const char *const units[] = {"days", NULL};
    const json_t *prefixes, *patterns;
    int status, type, unit, rc;
    if (!json_is_object(sel))
        return wrong_type(sel, "object", msg, msgsz);
    if ((rc = check_keys(sel, required, allowed, msg, msgsz)) != 0 ||
        (rc = enum_member(sel, "tagStatus", statuses, &status, msg, msgsz)) != 0 ||
        (rc = enum_member(sel, "countType", types, &type, msg, msgsz)) != 0 ||
        (rc = positive_member(sel, "countNumber", &r->count, msg, msgsz)) != 0)
        return rc;
    r->tag_status = (enum lifecycle_tag_status)status;
    r->count_type = (enum lifecycle_count_type)type;
    if (type == LIFECYCLE_COUNT_MORE_THAN && json_object_get(sel, "countUnit") != NULL)
        return invalid(msg, msgsz,
                       "object instance has properties which are not allowed by the schema: "
                       "[\"countUnit\"]");
    if (type != LIFECYCLE_COUNT_MORE_THAN) {
        if (json_object_get(sel, "countUnit") == NULL)
            return invalid(msg, msgsz, "object has missing required properties ([\"countUnit\"])");
        if ((rc = enum_member(sel, "countUnit", units, &unit, msg, msgsz)) != 0)
            return rc;
    }
    prefixes = json_object_get(sel, "tagPrefixList");
    patterns = json_object_get(sel, "tagPatternList");
    if (prefixes != NULL && patterns != NULL)
        return invalid(msg, msgsz, "tagPrefixList and tagPatternList cannot both be specified in a rule");
    if (status == LIFECYCLE_TAGGED && prefixes == NULL && patterns == NULL)
        return invalid(msg, msgsz, "tagPrefixList or tagPatternList must be specified when tagStatus is tagged");
    if (status != LIFECYCLE_TAGGED && (prefixes != NULL || patterns != NULL))
        return invalid(msg, msgsz, "tagPrefixList and tagPatternList must be omitted when tagStatus is %s",
                       statuses[status]);
    if (prefixes != NULL || patterns != NULL)
        return parse_taglist(prefixes != NULL ? prefixes : patterns, prefixes != NULL, r, msg, msgsz);
    return 0;
}

/* Parses one element of `rules`. */
static int parse_rule(const json_t *jr, struct lifecycle_rule *r, char *msg, size_t msgsz)
{
    static const char *const required[] = {"rulePriority", "selection", "action", NULL};
    static const char *const allowed[] = {"rulePriority", "description", "selection", "action", NULL};
    static const char *const action_keys[] = {"type", NULL};
    static const char *const actions[] = {"expire", NULL};
    const json_t *action, *desc;
    int rc, act;
    if (!json_is_object(jr))
        return wrong_type(jr, "object", msg, msgsz);
    if ((rc = check_keys(jr, required, allowed, msg, msgsz)) != 0 ||
        (rc = positive_member(jr, "rulePriority", &r->priority, msg, msgsz)) != 0)
        return rc;
    desc = json_object_get(jr, "description");
    if (desc != NULL && !json_is_string(desc))
        return wrong_type(desc, "string", msg, msgsz);
    action = json_object_get(jr, "action");
    if (!json_is_object(action))
        return wrong_type(action, "object", msg, msgsz);
    if ((rc = check_keys(action, action_keys, action_keys, msg, msgsz)) != 0 ||
        (rc = enum_member(action, "type", actions, &act, msg, msgsz)) != 0)
        return rc;
    return parse_selection(json_object_get(jr, "selection"), r, msg, msgsz);
}

static int by_priority(const void *a, const void *b)
{
    const struct lifecycle_rule *x = a, *y = b;
    return (x->priority > y->priority) - (x->priority < y->priority);
}

/* 1 if rules a and b select by the same set of tag prefixes (or patterns). */
static int same_taglist(const struct lifecycle_rule *a, const struct lifecycle_rule *b)
{
    if (a->tag_status != LIFECYCLE_TAGGED || b->tag_status != LIFECYCLE_TAGGED || a->by_prefix != b->by_prefix ||
        a->ntags != b->ntags)
        return 0;
    for (size_t i = 0; i < a->ntags; i++) {
        size_t j = 0;
        while (j < b->ntags && strcmp(a->tags[i], b->tags[j]) != 0)
            j++;
        if (j == b->ntags)
            return 0;
    }
    return 1;
}

/* The rules of the document, across rules: unique priorities, one untagged rule, `any` last, unique tag sets. */
static int check_rules(struct lifecycle_policy *p, char *msg, size_t msgsz)
{
    int untagged = 0;
    qsort(p->rules, p->nrules, sizeof(p->rules[0]), by_priority);
    for (size_t i = 0; i < p->nrules; i++) {
        const struct lifecycle_rule *r = &p->rules[i];
        if (i > 0 && r->priority == p->rules[i - 1].priority)
            return invalid(msg, msgsz,
                           "rulePriority %lld is used by more than one rule; rule priorities must be "
                           "unique",
                           r->priority);
        if (r->tag_status == LIFECYCLE_UNTAGGED && untagged++)
            return invalid(msg, msgsz, "only one rule is allowed to select untagged images");
        if (r->tag_status == LIFECYCLE_ANY && i + 1 != p->nrules)
            return invalid(msg, msgsz,
                           "the rule with tagStatus any (rulePriority %lld) must have the highest "
                           "rulePriority",
                           r->priority);
        for (size_t j = 0; j < i; j++)
            if (same_taglist(r, &p->rules[j]))
                return invalid(msg, msgsz,
                               "rules %lld and %lld select the same tags; the set of rules must "
                               "contain a unique set of tag prefixes",
                               p->rules[j].priority, r->priority);
    }
    return 0;
}

/* Counts characters (UTF-8 code points) as ECR's length constraint does. */
static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

static int parse_document(const json_t *doc, struct lifecycle_policy *p, char *msg, size_t msgsz)
{
    static const char *const required[] = {"rules", NULL};
    const json_t *rules, *jr;
    size_t i;
    int rc;
    if (!json_is_object(doc))
        return wrong_type(doc, "object", msg, msgsz);
    if ((rc = check_keys(doc, required, required, msg, msgsz)) != 0)
        return rc;
    rules = json_object_get(doc, "rules");
    if (!json_is_array(rules))
        return wrong_type(rules, "array", msg, msgsz);
    if (json_array_size(rules) == 0)
        return invalid(msg, msgsz, "array is too short: must have at least 1 elements but instance has 0 elements");
    if (json_array_size(rules) > LIFECYCLE_RULES_MAX)
        return invalid(msg, msgsz, "array is too long: must have at most %d elements but instance has %zu elements",
                       LIFECYCLE_RULES_MAX, json_array_size(rules));
    if ((p->rules = calloc(json_array_size(rules), sizeof(p->rules[0]))) == NULL)
        return BERR_NOMEM;
    json_array_foreach(rules, i, jr)
    {
        p->nrules = i + 1; /* so that lifecycle_policy_free releases a partly parsed rule */
        if ((rc = parse_rule(jr, &p->rules[i], msg, msgsz)) != 0)
            return rc;
    }
    return check_rules(p, msg, msgsz);
}

int lifecycle_parse(const char *json, size_t len, struct lifecycle_policy **out, char *msg, size_t msgsz)
{
    struct lifecycle_policy *p;
    json_error_t jerr;
    json_t *doc;
    size_t chars = utf8_chars(json, len);
    int rc;
    *out = NULL;
    if (chars > LIFECYCLE_POLICY_MAX) {
        snprintf(msg, msgsz, PREFIX "'Member must have length less than or equal to %d'", LIFECYCLE_POLICY_MAX);
        return BERR_LIFECYCLE_POLICY_INVALID;
    }
    if (chars < LIFECYCLE_POLICY_MIN) {
        snprintf(msg, msgsz, PREFIX "'Member must have length greater than or equal to %d'", LIFECYCLE_POLICY_MIN);
        return BERR_LIFECYCLE_POLICY_INVALID;
    }
    if ((doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
        return invalid(msg, msgsz, "the policy is not valid JSON (line %d, column %d: %s)", jerr.line, jerr.column,
                       jerr.text);
    if ((p = calloc(1, sizeof(*p))) == NULL) {
        json_decref(doc);
        return BERR_NOMEM;
    }
    rc = parse_document(doc, p, msg, msgsz);
    json_decref(doc);
    if (rc != 0) {
        lifecycle_policy_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void lifecycle_policy_free(struct lifecycle_policy *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->nrules; i++) {
        for (size_t j = 0; j < p->rules[i].ntags; j++)
            free(p->rules[i].tags[j]);
        free(p->rules[i].tags);
    }
    free(p->rules);
    free(p);
}

/* ---- evaluation ---- */

/* 1 if `entry` (a prefix or a pattern) matches some tag of `img`. */
static int entry_matches(const struct lifecycle_rule *r, const char *entry, const struct lifecycle_image *img)
{
    for (size_t i = 0; i < img->ntags; i++)
        if (r->by_prefix ? strncmp(img->tags[i], entry, strlen(entry)) == 0 : names_glob_match(entry, img->tags[i]))
            return 1;
    return 0;
}

/* 1 if `img` matches the tag selection of rule `r`. */
static int selects(const struct lifecycle_rule *r, const struct lifecycle_image *img)
{
    if (r->tag_status == LIFECYCLE_ANY)
        return 1;
    if (r->tag_status == LIFECYCLE_UNTAGGED)
        return img->ntags == 0;
    if (img->ntags == 0)
        return 0;
    for (size_t i = 0; i < r->ntags; i++)
        if (!entry_matches(r, r->tags[i], img))
            return 0;
    return 1;
}

/* Newest push first; equal push times by digest, so that evaluation is deterministic. */
static int newest_first(const void *a, const void *b)
{
    const struct lifecycle_image *x = *(const struct lifecycle_image *const *)a;
    const struct lifecycle_image *y = *(const struct lifecycle_image *const *)b;
    if (x->pushed_at != y->pushed_at)
        return x->pushed_at < y->pushed_at ? 1 : -1;
    return strcmp(x->digest, y->digest);
}

/* 1 if the age rule `r` selects `img` at `as_of` (count rules are decided by position instead). */
static int too_old(const struct lifecycle_rule *r, const struct lifecycle_image *img, long long as_of)
{
    long long since = img->pushed_at;
    if (r->count_type == LIFECYCLE_SINCE_PULLED && img->last_pulled_at > since)
        since = img->last_pulled_at;
    /* a countNumber past LLONG_MAX seconds: nothing is that old (the product would overflow) */
    return r->count <= LLONG_MAX / LIFECYCLE_DAY && as_of - since > r->count * LIFECYCLE_DAY;
}

int lifecycle_evaluate(const struct lifecycle_policy *p, struct lifecycle_image *imgs, size_t n, long long as_of,
                       long long untagged_retention)
{
    struct lifecycle_image **order = calloc(n ? n : 1, sizeof(*order));
    unsigned char *claimed = calloc(n ? n : 1, 1);
    int expired = 0;
    if (order == NULL || claimed == NULL) {
        free(order);
        free(claimed);
        return BERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        imgs[i].expire_rule = LIFECYCLE_PRIORITY_NONE;
        order[i] = &imgs[i];
    }
    qsort(order, n, sizeof(*order), newest_first);
    for (size_t k = 0; p != NULL && k < p->nrules; k++) {
        const struct lifecycle_rule *r = &p->rules[k];
        long long seen = 0; /* images this rule selects by tags, newest first, claimed or not */
        for (size_t i = 0; i < n; i++) {
            struct lifecycle_image *img = order[i];
            size_t idx = (size_t)(img - imgs);
            int hit;
            if (!selects(r, img))
                continue;
            seen++;
            hit = r->count_type == LIFECYCLE_COUNT_MORE_THAN ? seen > r->count : too_old(r, img, as_of);
            if (hit && !claimed[idx]) {
                img->expire_rule = r->priority;
                expired++;
            }
            claimed[idx] = 1; /* lower rules may count it but never expire it */
        }
    }
    for (size_t i = 0; untagged_retention > 0 && i < n; i++) {
        struct lifecycle_image *img = &imgs[i];
        long long last = img->last_pulled_at > img->pushed_at ? img->last_pulled_at : img->pushed_at;
        if (img->ntags == 0 && img->expire_rule == LIFECYCLE_PRIORITY_NONE && as_of - last > untagged_retention) {
            img->expire_rule = LIFECYCLE_PRIORITY_RETENTION;
            expired++;
        }
    }
    free(order);
    free(claimed);
    return expired;
}
