#!/usr/bin/env bash
# shellcheck disable=SC2317  # helpers are called via check
# The web UI (/ui/) end to end: the static route with curl (content types, ETag/304, security headers, 404 for
# unknown names, no path traversal, the browser redirect of GET /), then headless Chromium (Debian's
# /usr/bin/chromium) driven by playwright-core (tests/e2e/ui_browser.js): log in as an admin, browse to an image
# pushed with skopeo, check its layers and total size against the real ones, open a two-platform index and one
# of its platforms, see a referrer, delete a tag through the confirmation dialog (then curl proves it gone), take
# a screenshot; log in as a user with pull on one repository only: the private one is not listed and direct
# navigation to it shows an access error; log in with a robot token (pull on team/*).  Attacker-controlled text
# (annotations) must render as text.  From the ECR API (the page's bearer token on POST /): the repository list's
# image count, size and last push match `aws ecr describe-images` and the images' own sizes; an image shows its
# push time and, after a skopeo pull, its last pull; an admin edits a lifecycle policy, sees the preview list the
# images it would expire, saves it (then `berth lifecycle get` and `aws ecr get-lifecycle-policy` return the text),
# and deletes another through the dialog; a non-admin with push sees it read-only and is refused PutLifecyclePolicy
# with its bearer token; the restricted user gets nothing of the private repository from the ECR API either.
#
#   tests/e2e/test_ui.sh            (BERTH_BIN defaults to build/berth)
#
# Env: BERTH_BIN, UI_SHOT / UI_SHOT2 / UI_SHOT3 (copy the screenshots there: image, lifecycle, repositories), BERTH_UI_NODE_DIR (where playwright-core is installed with npm if missing; default
#      build/ui-node), CHROMIUM (default /usr/bin/chromium), E2E_KEEP, E2E_VERBOSE.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
# shellcheck source=server.sh
. "$HERE/server.sh"
# shellcheck source=../../scripts/lib/images.sh
. "$HERE/../../scripts/lib/images.sh"

PLAYWRIGHT_VERSION=1.56.1 # pinned: the browser test's only npm dependency (no browser download: Debian's chromium)
NODE_DIR=${BERTH_UI_NODE_DIR:-$HERE/../../build/ui-node}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
e2e_tmpdir T
[ -n "${UI_SHOT:-}" ] && on_exit cp -f "$T/ui.png" "$UI_SHOT"
[ -n "${UI_SHOT2:-}" ] && on_exit cp -f "$T/ui-lifecycle.png" "$UI_SHOT2"
[ -n "${UI_SHOT3:-}" ] && on_exit cp -f "$T/ui-repos.png" "$UI_SHOT3"
DATA=$T/data
ADMIN_PW="ui-admin-passwd-$$"
VIEWER_PW="ui-viewer-passwd-$$"
DEV_PW="ui-dev-passwd-$$"
AWSCLI=/usr/bin/aws
# the CLI prints timestamps as the API sent them (epoch seconds), not reformatted
export AWS_PAGER="" AWS_CONFIG_FILE=$T/aws-config AWS_SHARED_CREDENTIALS_FILE=$T/aws-credentials
printf '[default]\ncli_timestamp_format = wire\n' >"$AWS_CONFIG_FILE"
: >"$AWS_SHARED_CREDENTIALS_FILE"
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE
U="ui $$ $(date +%s%N)"
B() { "$BERTH_BIN" "$@" --data "$DATA"; }
hdrs() { curl -s -o /dev/null -D - "$@" | tr -d '\r' | tr '[:upper:]' '[:lower:]'; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

########################################################################
log "0. tools: chromium and playwright-core $PLAYWRIGHT_VERSION"
if [ ! -x "$CHROMIUM" ]; then
	echo "no $CHROMIUM: run scripts/deps test (it installs Debian's chromium)" >&2
	exit 1
fi
if [ ! -f "$NODE_DIR/node_modules/playwright-core/package.json" ] ||
	[ "$(jq -r .version "$NODE_DIR/node_modules/playwright-core/package.json")" != "$PLAYWRIGHT_VERSION" ]; then
	mkdir -p "$NODE_DIR"
	npm install --no-save --no-audit --no-fund --prefix "$NODE_DIR" "playwright-core@$PLAYWRIGHT_VERSION" >&2 || {
		echo "npm could not install playwright-core@$PLAYWRIGHT_VERSION into $NODE_DIR" >&2
		exit 1
	}
fi

########################################################################
log "1. users and grants, then berth serve with auth on"
mkdir -p "$DATA"
check "admin user" B user add uiadmin --admin --password-stdin <<<"$ADMIN_PW"
check "restricted user" B user add viewer --password-stdin <<<"$VIEWER_PW"
check "viewer may pull team/app only" B grant add user:viewer pull team/app
check "a non-admin user" B user add dev --password-stdin <<<"$DEV_PW"
check "dev may pull, push and delete in team/* (not admin)" B grant add user:dev pull,push,delete 'team/*'
B accesskey create --user uiadmin >"$T/admin.key"
keyvar() { grep "^$1=" "$T/admin.key" | cut -d= -f2-; }
# awsa ARGS: aws ecr as uiadmin (access key, SigV4)
awsa() {
	AWS_ACCESS_KEY_ID=$(keyvar AWS_ACCESS_KEY_ID) AWS_SECRET_ACCESS_KEY=$(keyvar AWS_SECRET_ACCESS_KEY) \
		"$AWSCLI" --endpoint-url "http://$R" --region us-east-1 ecr "$@" 2>&1
}
# no scheduled lifecycle run may expire team/life's images while the test looks at them
export BERTH_LIFECYCLE_INTERVAL=off
ROBOT_SECRET=$(B token create --name ui-robot --scope 'repository:team/*:pull' --ttl 1d | tail -n 1 | awk '{print $NF}')
check "a robot token with pull on team/*" test -n "$ROBOT_SECRET"
berth_start "$DATA"
on_exit berth_stop
R=$REGISTRY
A="uiadmin:$ADMIN_PW"

########################################################################
log "2. the static route"
H=$(hdrs "http://$R/ui/")
check_contains "/ui/ is HTML" "content-type: text/html; charset=utf-8" "$H"
check_contains "/ui/ has a strict CSP" "content-security-policy: default-src 'none'; script-src 'self';" "$H"
check_contains "/ui/ has nosniff" "x-content-type-options: nosniff" "$H"
check_contains "/ui/ revalidates" "cache-control: no-cache" "$H"
check_eq "/ui/ needs no credentials" 200 "$(code "http://$R/ui/")"
check_contains "/ui/app.js is JavaScript" "content-type: text/javascript" "$(hdrs "http://$R/ui/app.js")"
check_contains "/ui/style.css is CSS" "content-type: text/css" "$(hdrs "http://$R/ui/style.css")"
check "/ui/app.js is the file of server/ui" cmp <(curl -s "http://$R/ui/app.js") "$HERE/../../server/ui/app.js"
check "/ui/index.html is the file of server/ui" cmp <(curl -s "http://$R/ui/index.html") \
	"$HERE/../../server/ui/index.html"
check_eq "HEAD /ui/app.js: 200" 200 "$(code -I "http://$R/ui/app.js")"
check_eq "HEAD /ui/app.js: Content-Length is the file's" "$(stat -c %s "$HERE/../../server/ui/app.js")" \
	"$(hdrs -I "http://$R/ui/app.js" | sed -n 's/^content-length: //p')"
ETAG=$(curl -s -D - -o /dev/null "http://$R/ui/app.js" | tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: //p')
check "ETag is a quoted strong validator" grep -qE '^"[0-9a-f]{32}"$' <<<"$ETAG"
check_eq "If-None-Match with the ETag: 304" 304 "$(code -H "If-None-Match: $ETAG" "http://$R/ui/app.js")"
check_eq "If-None-Match with another ETag: 200" 200 "$(code -H 'If-None-Match: "0000"' "http://$R/ui/app.js")"
check_eq "unknown file: 404" 404 "$(code "http://$R/ui/nope.js")"
check_eq "a directory-like name: 404" 404 "$(code "http://$R/ui/sub/index.html")"
check_eq "/ui/../berth.db: 404" 404 "$(code --path-as-is "http://$R/ui/../berth.db")"
check_eq "/ui/%2e%2e/berth.db: 404" 404 "$(code --path-as-is "http://$R/ui/%2e%2e/berth.db")"
check_eq "/ui/%2e%2e/: 404" 404 "$(code --path-as-is "http://$R/ui/%2e%2e/")"
check_eq "/ui/..%2fberth.db: 404" 404 "$(code --path-as-is "http://$R/ui/..%2fberth.db")"
check_not_contains "no traversal reaches berth.db" "SQLite" \
	"$(curl -s --path-as-is "http://$R/ui/../berth.db"; curl -s --path-as-is "http://$R/ui/%2e%2e/berth.db")"
check_eq "POST /ui/: 405" 405 "$(code -X POST "http://$R/ui/")"
check_eq "/ui redirects" 302 "$(code "http://$R/ui")"
check_contains "a browser's GET / is redirected to /ui/" "location: /ui/" \
	"$(hdrs -H 'Accept: text/html,application/xhtml+xml,*/*;q=0.8' "http://$R/")"
check_not_contains "an API client's GET / is not redirected" "location:" "$(hdrs "http://$R/")"
check_not_contains "POST / is left alone (ECR)" "location:" \
	"$(hdrs -X POST -H 'Accept: text/html' -H 'Content-Type: application/x-amz-json-1.1' -d '{}' "http://$R/")"

########################################################################
log "3. images: an image with two tags, a two-platform index, a referrer, a private repository"
SK=(skopeo --command-timeout 300s copy --quiet --src-tls-verify=false --dest-tls-verify=false --dest-creds "$A")
img_busybox2 "$T/img" amd64 "$U app"
img_index "$T/idx" "$U idx"
img_busybox "$T/priv" amd64 "$U private"
check "push team/app:v1" "${SK[@]}" --preserve-digests oci:"$T/img":latest docker://"$R/team/app:v1"
check "push team/app:v2" "${SK[@]}" --preserve-digests oci:"$T/img":latest docker://"$R/team/app:v2"
check "push the index team/multi:latest" "${SK[@]}" --all --preserve-digests oci:"$T/idx":latest \
	docker://"$R/team/multi:latest"
check "push private/secret:v1" "${SK[@]}" --preserve-digests oci:"$T/priv":latest docker://"$R/private/secret:v1"
# team/life: three images pushed one after the other (they share the busybox layer), the lifecycle policy's subject
for i in 1 2 3; do
	img_busybox2 "$T/life$i" amd64 "$U life $i"
	check "push team/life:l$i" "${SK[@]}" --preserve-digests oci:"$T/life$i":latest docker://"$R/team/life:l$i"
done
# each image's size as ECR counts it (config and layers), from the image files themselves
LIFE_SIZES=$(for i in 1 2 3; do
	d=$(img_manifest_digest "$T/life$i")
	jq -c --arg d "$d" '{digest:$d, bytes:([.config.size] + [.layers[].size] | add)}' <"$(img_blob_path "$T/life$i" "$d")"
done | jq -sc .)
L3=$(img_manifest_digest "$T/life3")
check "skopeo pulls team/life:l3" skopeo --command-timeout 300s copy --quiet --src-tls-verify=false --src-creds "$A" \
	docker://"$R/team/life:l3" dir:"$T/pulled"
PULLED=""
for _ in $(seq 1 240); do # pull times are written in batches (BERTH_PULL_FLUSH_INTERVAL)
	PULLED=$(awsa describe-images --repository-name team/life --image-ids imageDigest="$L3" |
		jq -r '.imageDetails[0].lastRecordedPullTime // empty' 2>/dev/null || true)
	[ -n "$PULLED" ] && break
	sleep 0.25
done
check "aws ecr describe-images reports l3's pull" test -n "$PULLED"
LIFE=$(awsa describe-images --repository-name team/life | jq -c '[.imageDetails[] | {digest:.imageDigest,
	pushed:.imagePushedAt, pulled:(.lastRecordedPullTime // 0), bytes:.imageSizeInBytes}]')
check_eq "aws: team/life holds the three images" 3 "$(jq length <<<"$LIFE")"
check_eq "aws: their sizes are config + layers" "$(jq -c 'sort_by(.digest)' <<<"$LIFE_SIZES")" \
	"$(jq -c '[.[] | {digest, bytes}] | sort_by(.digest)' <<<"$LIFE")"
# what a policy keeping one image expires now: all but the newest (ties by digest, as the engine orders them)
EXPIRE=$(jq -c '[sort_by(-.pushed, .digest)[1:][] | .digest] | sort' <<<"$LIFE")
POLICY=$(jq -n '{rules:[{rulePriority:1, description:"keep only the newest image",
	selection:{tagStatus:"any", countType:"imageCountMoreThan", countNumber:1}, action:{type:"expire"}}]}')
BAD_POLICY='{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"bogus","countNumber":1},"action":{"type":"expire"}}]}'
MD=$(img_manifest_digest "$T/img")
MANIFEST=$(cat "$(img_blob_path "$T/img" "$MD")")
# a referrer of v1 whose annotation is markup: the UI must show it as text
XSS='<img src=x onerror="document.body.dataset.xss=1"><b>bold</b>'
REF_MAN=$(jq -c --arg d "$MD" --argjson s "${#MANIFEST}" --arg x "$XSS" \
	'. + {artifactType:"application/vnd.berth.test.sig", subject:{mediaType:.mediaType, digest:$d, size:$s},
	annotations:{"org.example.note":$x}}' <<<"$MANIFEST")
REF_MD=sha256:$(printf '%s' "$REF_MAN" | sha256sum | cut -d' ' -f1)
check_eq "push a referrer of v1" 201 "$(code -u "$A" -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
	--data-binary "$REF_MAN" "http://$R/v2/team/app/manifests/$REF_MD")"

# each repository's image count, size (sum of imageSizeInBytes) and last push, as the ECR API reports them
STATS=$(for r in team/app team/multi team/life private/secret; do
	awsa describe-images --repository-name "$r" | jq -c --arg r "$r" '{($r): {count:(.imageDetails | length),
		bytes:([.imageDetails[].imageSizeInBytes] | add // 0), last:([.imageDetails[].imagePushedAt] | max // 0 | floor)}}'
done | jq -sc add)
check_eq "aws: team/life's size is the sum of its images' sizes" "$(jq '[.[].bytes] | add' <<<"$LIFE_SIZES")" \
	"$(jq '.["team/life"].bytes' <<<"$STATS")"

jq -n --arg base "http://$R" --arg au uiadmin --arg ap "$ADMIN_PW" --arg vu viewer --arg vp "$VIEWER_PW" --arg rs "$ROBOT_SECRET" \
	--arg du dev --arg dp "$DEV_PW" --argjson stats "$STATS" --argjson life "$LIFE" --argjson expire "$EXPIRE" \
	--arg policy "$POLICY" --arg bad "$BAD_POLICY" --arg shot2 "$T/ui-lifecycle.png" --arg shot3 "$T/ui-repos.png" \
	--arg md "$MD" --argjson man "$MANIFEST" --arg idxd "$(img_manifest_digest "$T/idx")" \
	--argjson idx "$(cat "$(img_blob_path "$T/idx" "$(img_manifest_digest "$T/idx")")")" \
	--arg refd "$REF_MD" --arg xss "$XSS" --arg shot "$T/ui.png" --arg chromium "$CHROMIUM" --arg profile "$T/profile" '
	{base:$base, admin:{user:$au, pass:$ap}, viewer:{user:$vu, pass:$vp}, robot:{user:"ui-robot", pass:$rs}, chromium:$chromium, profile:$profile,
	 repo:"team/app", keep:"v1", del:"v2", digest:$md, layers:[$man.layers[] | {digest, size}],
	 total:([$man.layers[].size] | add), referrer:$refd, xss:$xss,
	 index:{repo:"team/multi", tag:"latest", digest:$idxd,
	        platforms:[$idx.manifests[] | {digest, platform:([.platform.os, .platform.architecture,
	                   .platform.variant] | map(select(. != null)) | join("/"))}]},
	 private:{repo:"private/secret", tag:"v1"}, screenshot:$shot,
	 dev:{user:$du, pass:$dp}, stats:$stats, life:{repo:"team/life", images:$life, expire:$expire, policy:$policy,
	 bad:$bad, other:"team/multi"}, screenshot2:$shot2, screenshot3:$shot3}' >"$T/ui.json"

########################################################################
log "4. headless Chromium (playwright-core $PLAYWRIGHT_VERSION)"
# its own ok/FAIL lines are shown, indented; its exit status is the check
BROWSER_RC=0
env NODE_PATH="$NODE_DIR/node_modules" node "$HERE/ui_browser.js" "$T/ui.json" 2>&1 | sed 's/^/   | /' || BROWSER_RC=$?
check_eq "every browser check passed (ui_browser.js)" 0 "$BROWSER_RC"

########################################################################
log "5. what the browser did, seen with curl"
check_eq "the deleted tag v2 is gone" 404 "$(code -u "$A" "http://$R/v2/team/app/manifests/v2")"
check_eq "tag v1 is still there" 200 "$(code -u "$A" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
	"http://$R/v2/team/app/manifests/v1")"
check_eq "tags/list after the delete" "v1" "$(curl -s -u "$A" "http://$R/v2/team/app/tags/list" | jq -r '.tags | join(" ")')"
check "the screenshot is a PNG" test "$(head -c 8 "$T/ui.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a
check "the screenshot is not trivial (> 20 KB)" test "$(stat -c %s "$T/ui.png" 2>/dev/null || echo 0)" -gt 20000
for f in ui-lifecycle ui-repos; do
	check "the $f screenshot is a PNG" test "$(head -c 8 "$T/$f.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a
done
check_eq "berth lifecycle get: the policy saved in the browser" "$POLICY" "$(B lifecycle get team/life 2>&1)"
check_eq "aws ecr get-lifecycle-policy: the same text" "$POLICY" \
	"$(awsa get-lifecycle-policy --repository-name team/life | jq -r .lifecyclePolicyText 2>&1)"
check_contains "the policy deleted in the browser is gone" "(LifecyclePolicyNotFoundException)" \
	"$(awsa get-lifecycle-policy --repository-name team/multi || true)"
check_eq "previewing and saving expired nothing: team/life still holds 3 images" 3 \
	"$(awsa describe-images --repository-name team/life | jq '.imageDetails | length' 2>&1)"
# the same ECR API with the users' bearer tokens, as the page uses it
ecrb() { # ecrb USER:PASS OPERATION JSON
	local tok
	tok=$(curl -s -u "$1" "http://$R/token?scope=registry:ecr:*" | jq -r .token)
	curl -s -H "Authorization: Bearer $tok" -H "X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.$2" \
		-H 'Content-Type: application/x-amz-json-1.1' --data-binary "$3" "http://$R/"
}
PUT=$(jq -cn --arg p "$(jq -c '.rules[0].selection.countNumber = 2' <<<"$POLICY")" \
	'{repositoryName:"team/life", lifecyclePolicyText:$p}')
check_eq "dev (push, not admin): PutLifecyclePolicy with its bearer token is AccessDeniedException" AccessDeniedException \
	"$(ecrb "dev:$DEV_PW" PutLifecyclePolicy "$PUT" | jq -r .__type)"
check_eq "dev: DeleteLifecyclePolicy too" AccessDeniedException \
	"$(ecrb "dev:$DEV_PW" DeleteLifecyclePolicy '{"repositoryName":"team/life"}' | jq -r .__type)"
check_eq "dev may read it" "$POLICY" \
	"$(ecrb "dev:$DEV_PW" GetLifecyclePolicy '{"repositoryName":"team/life"}' | jq -r .lifecyclePolicyText)"
check_eq "the policy is unchanged" "$POLICY" "$(B lifecycle get team/life 2>&1)"
check_eq "viewer: DescribeRepositories lists team/app only" "team/app" \
	"$(ecrb "viewer:$VIEWER_PW" DescribeRepositories '{}' | jq -r '[.repositories[].repositoryName] | join(" ")')"
check_eq "viewer: DescribeImages of the private repository is AccessDeniedException" AccessDeniedException \
	"$(ecrb "viewer:$VIEWER_PW" DescribeImages '{"repositoryName":"private/secret"}' | jq -r .__type)"
check_eq "viewer: GetLifecyclePolicy of the private repository is AccessDeniedException" AccessDeniedException \
	"$(ecrb "viewer:$VIEWER_PW" GetLifecyclePolicy '{"repositoryName":"private/secret"}' | jq -r .__type)"
check_eq "the private repository is untouched" 200 "$(code -u "$A" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
	"http://$R/v2/private/secret/manifests/v1")"
finish
