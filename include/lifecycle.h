/*
 * lifecycle.h - lifecycle policies in Amazon ECR's grammar: parsing and validation, evaluation, the per-repository
 * policy store, and running a policy (expiring images).
 *
 * Two layers:
 *   - pure (storage/lifecycle.c, no I/O): lifecycle_parse() turns a policy document into rules exactly as ECR
 *     validates it, with ECR's InvalidParameterException text as the message; lifecycle_evaluate() decides which
 *     of a list of images a policy expires at time `as_of`, and by which rule.
 *   - storage (storage/lifecycle_db.c): the policy of each repository (table lifecycle_policies), the preview
 *     (what a run would expire) and the run itself.  Preview and run share one code path (lifecycle_run with
 *     dry_run set is the preview).
 *
 * Evaluation (ECR's documented rules, "Lifecycle policy evaluation rules"):
 *   - rules apply in ascending rulePriority; an image is expired by exactly one rule or none;
 *   - an image matched by the tag selection of a higher-priority rule cannot be expired by a lower-priority rule,
 *     but lower rules still count it ("identify it as if it had not been expired");
 *   - tagged rules: a list of prefixes / patterns matches an image only when EVERY entry matches some tag of it;
 *     a pattern's `*` matches any run of characters (at most LIFECYCLE_WILDCARDS_MAX per pattern) and a pattern
 *     without `*` matches the whole tag;
 *   - imageCountMoreThan N keeps the N newest matching images by push time and selects the rest;
 *     sinceImagePushed N selects those pushed more than N days before `as_of`; sinceImagePulled N those whose last
 *     pull (or push, if never pulled) is more than N days before `as_of` - and really expires them;
 *   - expiry is ordered oldest push first.
 *
 * Beyond ECR (lifecycle_run): a manifest that a live index of its repository references (a multi-arch child) and
 * a referrer whose subject is in the repository are not images of their own: they are never evaluated, and go
 * with their index / subject in the same transaction.  Every selected image is re-checked in the deleting
 * transaction (same push time, same last pull, same tags, still not a child or live referrer), so an image
 * re-tagged, re-pushed or pulled after selection is kept.  (The server writes pull times every
 * BERTH_PULL_FLUSH_INTERVAL seconds, so a pull in the last few seconds may not be seen yet.)  Every manifest removed
 * (image, child or referrer) is announced by EVENT_EXPIRE events (events.h) in the deleting transaction: one per
 * tag it had, or one without a tag.
 *
 * For the ECR API: lifecycle_policy_put/_delete are writes (run them through the writer); a preview is
 * lifecycle_run() with dry_run set and repo set (and `policy` for a policy text given with the request): it only
 * reads, on any connection that is not inside a transaction.
 */
#ifndef BERTH_LIFECYCLE_H
#define BERTH_LIFECYCLE_H

#include <stddef.h>
#include <stdint.h>
#include "db.h"

#define LIFECYCLE_POLICY_MAX 30720        /* ECR: LifecyclePolicyText is at most 30,720 characters */
#define LIFECYCLE_POLICY_MIN 100          /* ECR: LifecyclePolicyText is at least 100 characters */
#define LIFECYCLE_WILDCARDS_MAX 4         /* ECR: at most four '*' in one tagPatternList entry */
#define LIFECYCLE_RULES_MAX 1000          /* rules in one document (the size limit allows ~300 anyway) */
#define LIFECYCLE_TAGLIST_MAX 1000        /* entries of one tagPrefixList / tagPatternList */
#define LIFECYCLE_MSG_MAX 512             /* room for a validation message */
#define LIFECYCLE_DAY 86400               /* seconds in ECR's countUnit "days" */
#define LIFECYCLE_PRIORITY_NONE 0         /* lifecycle_image.expire_rule: not expired (rulePriority is >= 1) */
#define LIFECYCLE_PRIORITY_RETENTION (-1) /* expired by the registry-wide untagged_retention setting */

enum lifecycle_tag_status { LIFECYCLE_TAGGED, LIFECYCLE_UNTAGGED, LIFECYCLE_ANY };
enum lifecycle_count_type { LIFECYCLE_COUNT_MORE_THAN, LIFECYCLE_SINCE_PUSHED, LIFECYCLE_SINCE_PULLED };

struct lifecycle_rule {
    long long priority; /* rulePriority, unique, >= 1 */
    enum lifecycle_tag_status tag_status;
    int by_prefix; /* 1: `tags` are tagPrefixList entries; 0: tagPatternList entries */
    char **tags;   /* the list (NULL when none) */
    size_t ntags;
    enum lifecycle_count_type count_type;
    long long count; /* countNumber (images, or days) */
};

/** A parsed, valid policy: rules sorted by ascending priority.  Free with lifecycle_policy_free(). */
struct lifecycle_policy {
    struct lifecycle_rule *rules;
    size_t nrules;
};

/** Parses and validates policy document `json[0..len)` as ECR's PutLifecyclePolicy does.  On success *out is a
 *  malloc'd policy.  On an invalid document returns BERR_LIFECYCLE_POLICY_INVALID with ECR's
 *  InvalidParameterException message in `msg` (never a partial policy); BERR_NOMEM on allocation failure. */
int lifecycle_parse(const char *json, size_t len, struct lifecycle_policy **out, char *msg, size_t msgsz);
/** Frees a policy from lifecycle_parse (safe on NULL). */
void lifecycle_policy_free(struct lifecycle_policy *p);

/** One image (manifest) as the evaluator sees it. */
struct lifecycle_image {
    const char *digest;
    const char *const *tags; /* its tags (none: untagged) */
    size_t ntags;
    long long pushed_at;      /* seconds since the epoch */
    long long last_pulled_at; /* 0 = never pulled */
    long long expire_rule;    /* out: rulePriority that expires it, or LIFECYCLE_PRIORITY_NONE/_RETENTION */
};

/** Evaluates `p` over `imgs[0..n)` (one repository) as of `as_of`, setting each image's expire_rule.  When
 *  `untagged_retention` > 0, an untagged image not expired by the policy whose push and last pull are both more
 *  than that many seconds before `as_of` is expired with LIFECYCLE_PRIORITY_RETENTION.  `p` may be NULL (only the
 *  retention applies).  Returns the number of images expired, or BERR_NOMEM. */
int lifecycle_evaluate(const struct lifecycle_policy *p, struct lifecycle_image *imgs, size_t n, long long as_of,
                       long long untagged_retention);

/* ---- the per-repository policy store (storage/lifecycle_db.c) ---- */

/** write: validates `json[0..len)` and stores it as the policy of repository `repo`, replacing any previous one.
 *  Returns 0, BERR_NAME_UNKNOWN (no such repository), BERR_LIFECYCLE_POLICY_INVALID (ECR's message in `msg`;
 *  nothing stored), or BERR_DB. */
int lifecycle_policy_put(struct db *db, const char *repo, const char *json, size_t len, char *msg, size_t msgsz);
/** Reads the policy of `repo`: *json is malloc'd (NUL-terminated; free()), *updated_at its last change.
 *  Returns 0, BERR_NAME_UNKNOWN (no such repository), BERR_LIFECYCLE_POLICY_NOT_FOUND (no policy), BERR_DB. */
int lifecycle_policy_get(struct db *db, const char *repo, char **json, int64_t *updated_at);
/** write: removes the policy of `repo`; *json (if not NULL) receives the removed text (malloc'd), as ECR's
 *  DeleteLifecyclePolicy returns it.  Returns 0, BERR_NAME_UNKNOWN, BERR_LIFECYCLE_POLICY_NOT_FOUND or BERR_DB. */
int lifecycle_policy_delete(struct db *db, const char *repo, char **json, int64_t *updated_at);

/* ---- running a policy (storage/lifecycle_db.c) ---- */

/** One image a run expires (or would expire); strings live until the callback returns. */
struct lifecycle_expired {
    const char *repo, *digest;
    const char *const *tags;
    size_t ntags;
    long long pushed_at;
    long long rule;   /* rulePriority, or LIFECYCLE_PRIORITY_RETENTION */
    const char *with; /* NULL for an image chosen by a rule; else the digest of the index or subject it went
                         with (a multi-arch child or a referrer) */
};
typedef int (*lifecycle_expired_cb)(void *ctx, const struct lifecycle_expired *e);

struct lifecycle_run_opts {
    const char *repo;                      /* one repository, or NULL for all */
    long long as_of;                       /* evaluate as if it were this time (seconds since the epoch) */
    long long untagged_retention;          /* registry-wide untagged retention in seconds, 0 = off */
    int dry_run;                           /* 1: only report (the preview) */
    const struct lifecycle_policy *policy; /* with repo: evaluate this policy instead of the stored one (ECR's
                                              StartLifecyclePolicyPreview with a policy text), or NULL */
};

struct lifecycle_stats {
    long long repos, images, expired, with, skipped; /* `with`: children / referrers removed with an image;
                                                       `skipped`: selected but changed before deletion */
};

/** Evaluates the policy of every repository (or opts->repo) and, unless dry_run, expires what it selects, in
 *  short write transactions of at most LIFECYCLE_DELETE_BATCH images (BEGIN IMMEDIATE).  `cb` (may be NULL) is
 *  called for every image expired (or that would be), after its transaction committed.  `db` must not be inside a
 *  transaction.  Returns 0, BERR_NAME_UNKNOWN (opts->repo does not exist), BERR_LIFECYCLE_POLICY_NOT_FOUND
 *  (dry run of one repository without policy nor retention), or BERR_DB. */
int lifecycle_run(struct db *db, const struct lifecycle_run_opts *opts, lifecycle_expired_cb cb, void *ctx,
                  struct lifecycle_stats *stats);

#define LIFECYCLE_DELETE_BATCH 64 /* images expired per write transaction */

#endif
