#!/usr/bin/env bash
# shellcheck disable=SC1091,SC2317  # sourced libs; helpers are called via check
# The ECR API with a bearer token from /token (scope registry:ecr:*) instead of SigV4 (docs/ECR.md): for each
# user (pull, push, delete, admin grants on team/*, none, an admin user) and each operation class (pull: describe-
# images, get-lifecycle-policy, describe-repositories; push: initiate-layer-upload; delete: batch-delete-image;
# admin: put-lifecycle-policy, put-image-tag-mutability), curl with the user's bearer token gets exactly what the
# AWS CLI gets with an access key of the same user, and that is the expected allow/deny.  Then the refusals: a token
# without the scope, a forged one, an anonymous one, one whose user was deleted; a robot token acts with its own
# grants; GetAuthorizationToken needs SigV4; an "admin" action in a token gives nothing on the registry API.
#
#   tests/e2e/test_ecr_bearer.sh            (BERTH_BIN defaults to build/berth)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/server.sh"

AWSCLI=/usr/bin/aws
e2e_tmpdir T
DATA=$T/data
B() { "$BERTH_BIN" "$@" --data "$DATA"; }
export AWS_PAGER="" AWS_CONFIG_FILE=$T/aws-config AWS_SHARED_CREDENTIALS_FILE=$T/aws-credentials
: >"$AWS_CONFIG_FILE"
: >"$AWS_SHARED_CREDENTIALS_FILE"
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE
keyvar() { grep "^$2=" "$1" | cut -d= -f2-; }
POLICY='{"rules":[{"rulePriority":1,"description":"keep 5","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}]}'

########################################################################
log "1. users with one grant each on team/*, their access keys, berth serve"
mkdir -p "$DATA"
USERS="puller pusher deleter tadmin nobody root"
for u in $USERS; do
	if [ "$u" = root ]; then
		B user add "$u" --admin --password-stdin <<<"pw-$u-$$" >/dev/null
	else
		B user add "$u" --password-stdin <<<"pw-$u-$$" >/dev/null
	fi
	B accesskey create --user "$u" >"$T/$u.key"
done
B grant add user:puller pull 'team/*' >/dev/null
B grant add user:pusher pull,push 'team/*' >/dev/null
B grant add user:deleter pull,delete 'team/*' >/dev/null
B grant add user:tadmin admin 'team/*' >/dev/null
BOT=$(B token create --name bot --scope 'repository:team/*:pull' --ttl 1d | tail -n 1 | awk '{print $NF}')
B repo create team/x >/dev/null
B repo create private/y >/dev/null
berth_start "$DATA"
on_exit berth_stop
R=$REGISTRY

# token USER PASS [SCOPE]: a bearer token from /token (scope registry:ecr:* unless given)
token() { curl -s -u "$1:$2" "http://$R/token?scope=${3:-registry:ecr:*}" | jq -r .token; }
# bearer TOKEN OP JSON: the ECR answer (body) to a bearer-signed request
bearer() {
	curl -s -H "Authorization: Bearer $1" -H "X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.$2" \
		-H 'Content-Type: application/x-amz-json-1.1' --data-binary "$3" "http://$R/"
}
# outcome of a bearer answer / of the CLI: "denied" for AccessDeniedException, else "allowed"
b_class() { if jq -e '.__type == "AccessDeniedException"' <<<"$1" >/dev/null 2>&1; then echo denied; else echo allowed; fi; }
cli() {
	local u=$1
	shift
	AWS_ACCESS_KEY_ID=$(keyvar "$T/$u.key" AWS_ACCESS_KEY_ID) AWS_SECRET_ACCESS_KEY=$(keyvar "$T/$u.key" AWS_SECRET_ACCESS_KEY) \
		"$AWSCLI" --endpoint-url "http://$R" --region us-east-1 ecr "$@" 2>&1
}
c_class() { if grep -q '(AccessDeniedException)' <<<"$1"; then echo denied; else echo allowed; fi; }

# expected: which classes each user may do on team/x
expect() {
	case "$1:$2" in
	root:* | tadmin:*) echo allowed ;;
	puller:pull | pusher:pull | pusher:push | deleter:pull | deleter:delete) echo allowed ;;
	*) echo denied ;;
	esac
}

########################################################################
log "2. each user x each operation: bearer token == access key == expected"
for u in $USERS; do
	TK=$(token "$u" "pw-$u-$$")
	check "$u: /token issues a token for registry:ecr:*" test -n "$TK" -a "$TK" != null
	while IFS='|' read -r class op json args; do
		[ -n "$op" ] || continue
		BO=$(bearer "$TK" "$op" "$json")
		# shellcheck disable=SC2086  # args are words
		CO=$(cli "$u" $args || true)
		want=$(expect "$u" "$class")
		check_eq "$u $op ($class) with a bearer token: $want" "$want" "$(b_class "$BO")"
		check_eq "$u $op ($class) with an access key: $want" "$want" "$(c_class "$CO")"
		if [ "$want" = denied ]; then
			check_contains "$u $op: the denial names the user and the operation" "user/$u is not authorized to perform: ecr:$op" \
				"$(jq -r .message <<<"$BO")"
		fi
	done <<EOT
pull|DescribeImages|{"repositoryName":"team/x"}|describe-images --repository-name team/x
pull|GetLifecyclePolicy|{"repositoryName":"team/x"}|get-lifecycle-policy --repository-name team/x
push|InitiateLayerUpload|{"repositoryName":"team/x"}|initiate-layer-upload --repository-name team/x
delete|BatchDeleteImage|{"repositoryName":"team/x","imageIds":[{"imageTag":"none"}]}|batch-delete-image --repository-name team/x --image-ids imageTag=none
admin|PutImageTagMutability|{"repositoryName":"team/x","imageTagMutability":"MUTABLE"}|put-image-tag-mutability --repository-name team/x --image-tag-mutability MUTABLE
EOT
	# put-lifecycle-policy: its text has spaces-free JSON, passed as one argument
	BO=$(bearer "$TK" PutLifecyclePolicy "$(jq -cn --arg p "$POLICY" '{repositoryName:"team/x", lifecyclePolicyText:$p}')")
	CO=$(cli "$u" put-lifecycle-policy --repository-name team/x --lifecycle-policy-text "$POLICY" || true)
	want=$(expect "$u" admin)
	check_eq "$u PutLifecyclePolicy (admin) with a bearer token: $want" "$want" "$(b_class "$BO")"
	check_eq "$u PutLifecyclePolicy (admin) with an access key: $want" "$want" "$(c_class "$CO")"
	# listing: the same repositories as with the key (those the user may pull)
	BL=$(bearer "$TK" DescribeRepositories '{}' | jq -r '[.repositories[].repositoryName] | join(" ")')
	CL=$(cli "$u" describe-repositories | jq -r '[.repositories[].repositoryName] | join(" ")' 2>&1 || true)
	check_eq "$u DescribeRepositories: bearer lists what the key lists" "$CL" "$BL"
	case $u in
	root) check_eq "root lists everything" "private/y team/x" "$BL" ;;
	nobody) check_eq "nobody lists nothing" "" "$BL" ;;
	*) check_eq "$u lists team/x only" "team/x" "$BL" ;;
	esac
done
check_eq "the policy put by bearer and by key is the one stored" "$POLICY" "$(B lifecycle get team/x)"

########################################################################
log "3. tokens that are refused"
PT=$(token puller "pw-puller-$$" 'repository:team/x:pull')
check_contains "a repository-scoped token (what docker gets) is refused" '"UnrecognizedClientException"' \
	"$(bearer "$PT" DescribeImages '{"repositoryName":"team/x"}')"
check_contains "... with a message naming the scope it needs" "registry:ecr:*" \
	"$(bearer "$PT" DescribeImages '{"repositoryName":"team/x"}')"
AT=$(curl -s "http://$R/token?scope=registry:ecr:*" | jq -r .token)
check_contains "an anonymous token is refused" '"UnrecognizedClientException"' \
	"$(bearer "$AT" DescribeRepositories '{}')"
GT=$(token root "pw-root-$$")
FORGED="${GT%.*}.$(printf 'x%.0s' {1..86})"
check_contains "a forged signature is refused" '"UnrecognizedClientException"' "$(bearer "$FORGED" DescribeRepositories '{}')"
check_contains "garbage is refused" '"UnrecognizedClientException"' "$(bearer not-a-jwt DescribeRepositories '{}')"
check_contains "an empty bearer is not a token (SigV4 parse error)" '"IncompleteSignatureException"' \
	"$(curl -s -H 'Authorization: Bearer ' -H 'X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.DescribeRepositories' \
		-H 'Content-Type: application/x-amz-json-1.1' -d '{}' "http://$R/")"
check_contains "GetAuthorizationToken needs an access key" '"InvalidParameterException"' \
	"$(bearer "$GT" GetAuthorizationToken '{}')"
check_eq "HTTP status of a refusal is 400" 400 "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $PT" \
	-H 'X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.DescribeRepositories' \
	-H 'Content-Type: application/x-amz-json-1.1' -d '{}' "http://$R/")"
DT=$(token deleter "pw-deleter-$$")
check_eq "deleter's token works before its user is deleted" allowed "$(b_class "$(bearer "$DT" DescribeImages '{"repositoryName":"team/x"}')")"
B user del deleter >/dev/null
check_contains "a token of a deleted user is refused" '"UnrecognizedClientException"' \
	"$(bearer "$DT" DescribeImages '{"repositoryName":"team/x"}')"
B grant del user:puller 'team/*' >/dev/null
check_eq "a removed grant applies to a token issued before it" denied \
	"$(b_class "$(bearer "$(token puller "pw-puller-$$")" DescribeImages '{"repositoryName":"team/x"}')")"
check_eq "... and to an access key" denied "$(c_class "$(cli puller describe-images --repository-name team/x || true)")"

########################################################################
log "4. a robot token acts with its own grants (pull on team/*)"
BT=$(token bot "$BOT")
check_eq "robot: DescribeImages on team/x allowed" allowed "$(b_class "$(bearer "$BT" DescribeImages '{"repositoryName":"team/x"}')")"
check_eq "robot: DescribeImages on private/y denied" denied "$(b_class "$(bearer "$BT" DescribeImages '{"repositoryName":"private/y"}')")"
check_eq "robot: PutLifecyclePolicy denied" denied "$(b_class "$(bearer "$BT" PutLifecyclePolicy \
	"$(jq -cn --arg p "$POLICY" '{repositoryName:"team/x", lifecyclePolicyText:$p}')")")"
check_contains "robot: the denial names it" "user/bot is not authorized" \
	"$(bearer "$BT" InitiateLayerUpload '{"repositoryName":"team/x"}')"

########################################################################
log "5. /token's 'admin' action: told to admins only, and worth nothing on the registry API"
claims() { cut -d. -f2 <<<"$1" | tr '_-' '/+' | sed 's/$/==/' | base64 -d 2>/dev/null || true; }
ADM=$(token tadmin "pw-tadmin-$$" 'repository:team/x:pull,admin')
check_eq "an admin of team/* gets pull and admin" '["pull","admin"]' "$(claims "$ADM" | jq -c '.access[0].actions')"
NOADM=$(token pusher "pw-pusher-$$" 'repository:team/x:pull,admin')
check_eq "a pusher gets pull only" '["pull"]' "$(claims "$NOADM" | jq -c '.access[0].actions')"
ONLY=$(token tadmin "pw-tadmin-$$" 'repository:team/x:admin')
check_eq "a token with only 'admin' cannot list tags (OCI)" 401 "$(curl -s -o /dev/null -w '%{http_code}' \
	-H "Authorization: Bearer $ONLY" "http://$R/v2/team/x/tags/list")"
check_eq "... nor delete (OCI)" 401 "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE \
	-H "Authorization: Bearer $ONLY" "http://$R/v2/team/x/manifests/sha256:$(printf '0%.0s' {1..64})")"
check_contains "nor is it an ECR token" '"UnrecognizedClientException"' "$(bearer "$ONLY" DescribeRepositories '{}')"
finish
