#!/usr/bin/env bash
# shellcheck disable=SC1091,SC2317  # sourced libs; helpers are called via check
# The ECR API end to end: a fresh `berth serve` (auth on), access keys made with `berth accesskey`, the real AWS CLI
# v2 (/usr/bin/aws) and boto3 (/usr/bin/python3) with --endpoint-url, and docker logging in with
# `aws ecr get-login-password | docker login -u AWS --password-stdin`: access keys, repositories, resource tags,
# SigV4 refusals (wrong secret, unknown key, wrong region, tampered body, stale date, revoked key), protocol errors,
# the login flow (Basic and /token), docker push/pull, describe/list/batch-get/batch-delete/put-image, tag
# immutability over docker push, layer checks and ECR's own layer upload, boto3's paginator over many PutImage'd
# images under concurrent pushes, lifecycle policies and previews, delete-repository, create_on_push = off.
#
#   tests/e2e/test_ecr.sh            (BERTH_BIN defaults to build/berth)
#
# Env: BERTH_BIN, DOCKER (CLI), SKIP_DOCKER=1, ECR_PAGINATE (images for the paginator test, default 2500),
#      E2E_KEEP, E2E_VERBOSE.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/server.sh"
. "$HERE/../../scripts/lib/images.sh"
. "$HERE/../../scripts/lib/dockerd.sh"

PY=/usr/bin/python3
AWSCLI=/usr/bin/aws
N_PAGINATE=${ECR_PAGINATE:-2500}
e2e_tmpdir T
DATA=$T/data
U="ecr $$ $(date +%s%N)"

B() { "$BERTH_BIN" "$@" --data "$DATA"; }
export AWS_PAGER="" AWS_CONFIG_FILE=$T/aws-config AWS_SHARED_CREDENTIALS_FILE=$T/aws-credentials
: >"$AWS_CONFIG_FILE"
: >"$AWS_SHARED_CREDENTIALS_FILE"
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE

# key_env FILE: AWS_ACCESS_KEY_ID=… and AWS_SECRET_ACCESS_KEY=… lines of `berth accesskey create`
keyvar() { grep "^$2=" "$1" | cut -d= -f2-; }
# as KEYFILE CMD...: run CMD with that access key
as() {
	local f=$1
	shift
	AWS_ACCESS_KEY_ID=$(keyvar "$f" AWS_ACCESS_KEY_ID) AWS_SECRET_ACCESS_KEY=$(keyvar "$f" AWS_SECRET_ACCESS_KEY) "$@"
}
# ecr KEYFILE ARGS...: aws ecr ARGS as that key (stdout and stderr together)
ecr() {
	local f=$1
	shift
	as "$f" "$AWSCLI" --endpoint-url "http://$R" --region us-east-1 ecr "$@" 2>&1
}
# ecr_rc KEYFILE ARGS...: the CLI's exit status
ecr_rc() {
	local rc=0
	ecr "$@" >/dev/null || rc=$?
	echo "$rc"
}
boto() { "$PY" "$HERE/ecr_boto.py" "$@"; }

########################################################################
log "1. access keys: berth accesskey create | list | revoke"
mkdir -p "$DATA"
printf 'alice-password-1\n' | B user add alice --password-stdin >/dev/null
printf 'bob-password-1\n' | B user add bob --password-stdin >/dev/null
B grant add user:alice admin 'ecr/*' >/dev/null
B grant add user:bob pull 'ecr/*' >/dev/null
B accesskey create --user alice --description "ci pipeline" >"$T/alice.key"
B accesskey create --user bob >"$T/bob.key"
B accesskey create --user bob >"$T/revoked.key"
check_eq "create prints AWS_ACCESS_KEY_ID= then AWS_SECRET_ACCESS_KEY= as its last two lines" \
	"AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY" "$(tail -n 2 "$T/alice.key" | cut -d= -f1 | xargs)"
AK=$(keyvar "$T/alice.key" AWS_ACCESS_KEY_ID)
AS=$(keyvar "$T/alice.key" AWS_SECRET_ACCESS_KEY)
check "key id is BK + 18 upper-case alphanumerics" grep -qE '^BK[A-Z0-9]{18}$' <<<"$AK"
check_eq "secret is 40 characters" 40 "${#AS}"
check_fail "accesskey create for a missing user fails" B accesskey create --user nobody
check_fail "accesskey refuses a data directory that does not exist" "$BERTH_BIN" accesskey list --data "$T/nowhere"
check_contains "accesskey list --user alice shows the key and description" "$AK" "$(B accesskey list --user alice)"
check_not_contains "accesskey list never shows a secret" "$AS" "$(B accesskey list)"
check_not_contains "berth.db holds no secret in clear" "$AS" "$(strings "$DATA/berth.db" 2>/dev/null || cat "$DATA/berth.db")"
case ${BERTH_METADATA:-} in
postgres*) # shared by the nodes: a row of shared_keys (keys.h), no file (tests/e2e/test_pg.sh runs this suite so)
	check_eq "sealing key is a 32-byte row of the database" 32 \
		"$(psql -tA "$BERTH_METADATA" -c "SELECT length(value) FROM shared_keys WHERE name = 'accesskeys.key'")"
	check_fail "and not a file" test -e "$DATA/keys/accesskeys.key" ;;
*) check_eq "sealing key file is 0600" 600 "$(stat -c %a "$DATA/keys/accesskeys.key")" ;;
esac

berth_start "$DATA"
R=$REGISTRY
on_exit berth_stop

########################################################################
log "2. repositories with the AWS CLI"
OUT=$(ecr "$T/alice.key" create-repository --repository-name ecr/app --tags Key=team,Value=core)
check_eq "create-repository: repositoryUri" "$R/ecr/app" "$(jq -r .repository.repositoryUri <<<"$OUT" 2>&1)"
RID=$(jq -r .repository.registryId <<<"$OUT" 2>/dev/null || true)
check "registryId is 12 digits" grep -qE '^[0-9]{12}$' <<<"$RID"
check_eq "repositoryArn" "arn:aws:ecr:us-east-1:$RID:repository/ecr/app" "$(jq -r .repository.repositoryArn <<<"$OUT" 2>&1)"
OUT=$(ecr "$T/alice.key" create-repository --repository-name ecr/app || true)
check_contains "second create: RepositoryAlreadyExistsException" "(RepositoryAlreadyExistsException)" "$OUT"
check_eq "the CLI exits 254 on a service error" 254 "$(ecr_rc "$T/alice.key" create-repository --repository-name ecr/app)"
check_contains "create outside the grant: AccessDeniedException" "(AccessDeniedException)" \
	"$(ecr "$T/alice.key" create-repository --repository-name other/app || true)"
check_contains "invalid name: InvalidParameterException" "(InvalidParameterException)" \
	"$(ecr "$T/alice.key" create-repository --repository-name 'ecr/UPPER' || true)"
check_eq "describe-repositories lists it" "ecr/app" \
	"$(ecr "$T/alice.key" describe-repositories | jq -r '.repositories[].repositoryName' 2>&1)"
check_contains "describe-repositories of a missing one: RepositoryNotFoundException" "(RepositoryNotFoundException)" \
	"$(ecr "$T/alice.key" describe-repositories --repository-names ecr/none || true)"
check_eq "list-tags-for-resource" "team=core" "$(ecr "$T/alice.key" list-tags-for-resource \
	--resource-arn "arn:aws:ecr:us-east-1:$RID:repository/ecr/app" | jq -r '.tags[] | "\(.Key)=\(.Value)"' 2>&1)"
check "tag-resource" ecr "$T/alice.key" tag-resource --resource-arn "arn:aws:ecr:us-east-1:$RID:repository/ecr/app" \
	--tags Key=env,Value=prod
check "untag-resource" ecr "$T/alice.key" untag-resource --resource-arn \
	"arn:aws:ecr:us-east-1:$RID:repository/ecr/app" --tag-keys team
check_eq "tags after tag + untag" "env=prod" "$(ecr "$T/alice.key" list-tags-for-resource \
	--resource-arn "arn:aws:ecr:us-east-1:$RID:repository/ecr/app" | jq -r '.tags[] | "\(.Key)=\(.Value)"' 2>&1)"
B repo create other/hidden >/dev/null
B repo create ecr/second >/dev/null
check_eq "describe-repositories pages by 1 (the CLI follows nextToken) and hides what the key cannot pull" \
	"ecr/app ecr/second" "$(ecr "$T/alice.key" describe-repositories --page-size 1 \
	--query 'repositories[].repositoryName' --output text | xargs)"
check "berth repo delete" B repo delete ecr/second
check_eq "describe-registry" "$RID" "$(ecr "$T/alice.key" describe-registry | jq -r .registryId 2>&1)"

########################################################################
log "3. authentication failures an AWS user recognises"
check_contains "wrong secret: InvalidSignatureException" "(InvalidSignatureException)" \
	"$(AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=${AS%?}x "$AWSCLI" --endpoint-url "http://$R" --region us-east-1 \
		ecr describe-repositories 2>&1 || true)"
check_contains "unknown key id: UnrecognizedClientException" "(UnrecognizedClientException)" \
	"$(AWS_ACCESS_KEY_ID=BK000000000000000000 AWS_SECRET_ACCESS_KEY=$AS "$AWSCLI" --endpoint-url "http://$R" \
		--region us-east-1 ecr describe-repositories 2>&1 || true)"
OUT=$(as "$T/alice.key" "$AWSCLI" --endpoint-url "http://$R" --region eu-west-1 ecr describe-repositories 2>&1 || true)
check_contains "wrong region: InvalidSignatureException" "(InvalidSignatureException)" "$OUT"
check_contains "wrong region: the message names the expected region" "us-east-1" "$OUT"
check_eq "boto3-signed request is accepted" "200 -" "$(as "$T/alice.key" boto raw "http://$R" DescribeRepositories '{}')"
check_eq "tampered body: 400 InvalidSignatureException" "400 InvalidSignatureException" \
	"$(as "$T/alice.key" boto raw "http://$R" DescribeRepositories '{"repositoryNames":["ecr/app"]}' --tamper)"
check_eq "X-Amz-Date 20 minutes old: 400 InvalidSignatureException" "400 InvalidSignatureException" \
	"$(as "$T/alice.key" boto raw "http://$R" DescribeRepositories '{}' --age 1200)"
check_eq "X-Amz-Date 10 minutes old is still accepted" "200 -" \
	"$(as "$T/alice.key" boto raw "http://$R" DescribeRepositories '{}' --age 600)"
check_eq "unsigned request: 403 MissingAuthenticationTokenException" "403" "$(curl -s -o /dev/null -w '%{http_code}' \
	-X POST "http://$R/" -H 'X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.DescribeRepositories' -d '{}')"
check_eq "revoked key works before revocation" 0 "$(ecr_rc "$T/revoked.key" describe-repositories)"
REVOKED_PW=$(ecr "$T/revoked.key" get-login-password)
check_eq "Basic AWS:<token of that key> is accepted on /v2/" 200 \
	"$(curl -s -o /dev/null -w '%{http_code}' -u "AWS:$REVOKED_PW" "http://$R/v2/")"
REVOKED_BEARER=$(curl -s -u "AWS:$REVOKED_PW" "http://$R/token?service=berth&scope=repository:ecr/app:pull" |
	jq -r .token)
check_eq "a bearer token from /token with that login works" 200 \
	"$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $REVOKED_BEARER" "http://$R/v2/")"
B accesskey revoke "$(keyvar "$T/revoked.key" AWS_ACCESS_KEY_ID)" >/dev/null
check_contains "revoked key: UnrecognizedClientException" "(UnrecognizedClientException)" \
	"$(ecr "$T/revoked.key" describe-repositories || true)"
check_eq "its login token died with it: 401 on /v2/" 401 \
	"$(curl -s -o /dev/null -w '%{http_code}' -u "AWS:$REVOKED_PW" "http://$R/v2/")"
check_eq "and so did the bearer token issued from that login, at once (not after its 5 minutes)" 401 \
	"$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $REVOKED_BEARER" "http://$R/v2/")"
check_contains "accesskey list shows the revocation time" "$(keyvar "$T/revoked.key" AWS_ACCESS_KEY_ID)" \
	"$(B accesskey list --user bob | grep -v ' - ' || true)"

########################################################################
log "4. protocol errors are 400 __type, never 500"
OUT=$(curl -s -w ' %{http_code}' -X POST "http://$R/" -H 'Content-Type: application/x-amz-json-1.1' \
	-H 'X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.FlyToTheMoon' -d '{}')
check_contains "unknown operation: 400" " 400" "$OUT"
check_contains "unknown operation: __type UnknownOperationException naming it" \
	'"__type":"UnknownOperationException","message":"Unknown operation AmazonEC2ContainerRegistry_V20150921.FlyToTheMoon.' \
	"$OUT"
check_eq "an ECR operation Berth lacks: 400 UnsupportedCommandException" "400 UnsupportedCommandException" \
	"$(as "$T/alice.key" boto raw "http://$R" StartImageScan '{}')"
check_eq "malformed JSON body: 400 SerializationException" "400 SerializationException" \
	"$(as "$T/alice.key" boto raw "http://$R" DescribeRepositories '{"repositoryNames": [')"
check_eq "JSON array body: 400 SerializationException" "400 SerializationException" \
	"$(as "$T/alice.key" boto raw "http://$R" DescribeRepositories '[]')"
check_eq "wrong member type: 400" "400 SerializationException" \
	"$(as "$T/alice.key" boto raw "http://$R" CreateRepository '{"repositoryName": 7}')"
check_eq "maxResults out of range: 400 InvalidParameterException" "400 InvalidParameterException" \
	"$(as "$T/alice.key" boto raw "http://$R" DescribeImages '{"repositoryName":"ecr/app","maxResults":1001}')"
check_eq "forged nextToken: 400 InvalidParameterException" "400 InvalidParameterException" \
	"$(as "$T/alice.key" boto raw "http://$R" DescribeImages '{"repositoryName":"ecr/app","nextToken":"!!"}')"

########################################################################
log "5. get-login-password | docker login -u AWS; push; describe; retag; batch ops; immutability"
PW=$(ecr "$T/alice.key" get-login-password)
OUT=$(ecr "$T/alice.key" get-authorization-token)
check_eq "proxyEndpoint is Berth's URL" "http://$R" "$(jq -r '.authorizationData[0].proxyEndpoint' <<<"$OUT" 2>&1)"
EXP=$(jq -r '.authorizationData[0].expiresAt' <<<"$OUT" 2>/dev/null || true)
check "the token expires in 12 hours" "$PY" -c "import sys,datetime; e=datetime.datetime.fromisoformat(sys.argv[1]); \
d=(e-datetime.datetime.now(datetime.timezone.utc)).total_seconds(); sys.exit(0 if 43000<d<=43200 else 1)" "$EXP"
TOKEN2=$(jq -r '.authorizationData[0].authorizationToken' <<<"$OUT" | base64 -d 2>/dev/null || true)
check_eq "authorizationToken = base64(AWS:<token>)" "AWS:$AK." "${TOKEN2:0:25}"
check_eq "that token is a password too" 200 "$(curl -s -o /dev/null -w '%{http_code}' -u "$TOKEN2" "http://$R/v2/")"
TOK=$(curl -s -u "AWS:$PW" "http://$R/token?service=berth&scope=repository:ecr/app:pull,push" | jq -r .token)
check "the token endpoint accepts AWS:<token> and grants alice's push" "$PY" -c "import sys,json,base64; \
p=sys.argv[1].split('.')[1]; c=json.loads(base64.urlsafe_b64decode(p+'='*(-len(p)%4))); \
sys.exit(0 if c['sub']=='alice' and sorted(c['access'][0]['actions'])==['pull','push'] else 1)" "$TOK"
check_eq "Basic AWS:<wrong token> is 401" 401 "$(curl -s -o /dev/null -w '%{http_code}' -u "AWS:${PW}x" "http://$R/v2/")"

img_busybox "$T/a" amd64 "$U a"
CFG=$(img_config_digest "$T/a")
LAYER=$(img_layer_digests "$T/a")
manifest_of() { # REF -> the manifest of ecr/app:REF as the registry serves it
	curl -s -u "AWS:$PW" -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
		-H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$R/v2/ecr/app/manifests/$1"
}
if [ -z "${SKIP_DOCKER:-}" ] && dockerd_start "$T/d" 2>/dev/null; then
	on_exit dockerd_stop "$T/d"
	D() { "$DOCKER" "$@"; }
	pushed_digest() { grep -oE 'digest: sha256:[0-9a-f]{64}' <<<"$1" | head -n1 | cut -d' ' -f2; }
	check "get-login-password | docker login -u AWS --password-stdin" \
		sh -c "echo '$PW' | $DOCKER login -u AWS --password-stdin $R"
	img_docker_archive "$T/a" "$T/a.tar"
	D load -i "$T/a.tar" >/dev/null
	D tag "$CFG" "$R/ecr/app:v1"
	OUT=$(D push "$R/ecr/app:v1" 2>&1 || true)
	MA=$(pushed_digest "$OUT")
	check "docker push with the ECR login" test -n "$MA"
	OUT=$(ecr "$T/alice.key" describe-images --repository-name ecr/app)
	check_eq "describe-images: digest and tags" "$MA v1" \
		"$(jq -r '.imageDetails[] | "\(.imageDigest) \(.imageTags | join(","))"' <<<"$OUT" 2>&1)"
	check_eq "describe-images: imageSizeInBytes = config + layers of the pushed manifest" \
		"$(manifest_of v1 | jq '.config.size + ([.layers[].size] | add)')" \
		"$(jq -r '.imageDetails[0].imageSizeInBytes' <<<"$OUT" 2>&1)"
	check "describe-images: imagePushedAt" test "$(jq -r '.imageDetails[0].imagePushedAt' <<<"$OUT")" != null
	check_eq "describe-images: imageManifestMediaType" "application/vnd.docker.distribution.manifest.v2+json" \
		"$(jq -r '.imageDetails[0].imageManifestMediaType' <<<"$OUT" 2>&1)"
	D rmi "$R/ecr/app:v1" >/dev/null
	check "docker pull with the ECR login" D pull "$R/ecr/app:v1"
	sleep 6 # pull times are written in batches every BERTH_PULL_FLUSH_INTERVAL (5 s)
	check "lastRecordedPullTime after the pull" test "$(ecr "$T/alice.key" describe-images --repository-name ecr/app \
		--image-ids imageTag=v1 | jq -r '.imageDetails[0].lastRecordedPullTime')" != null

	# retag with put-image, then move v1 away so that the first image keeps only "old"
	MAN=$(ecr "$T/alice.key" batch-get-image --repository-name ecr/app --image-ids imageTag=v1 \
		--query 'images[0].imageManifest' --output text)
	check_eq "batch-get-image returns the pushed manifest" "$MA" "sha256:$(printf '%s' "$MAN" | sha256sum | cut -c1-64)"
	check_eq "put-image retags" "$MA" "$(ecr "$T/alice.key" put-image --repository-name ecr/app --image-tag old \
		--image-manifest "$MAN" | jq -r .image.imageId.imageDigest 2>&1)"
	check_contains "put-image of the same tag and digest: ImageAlreadyExistsException" "(ImageAlreadyExistsException)" \
		"$(ecr "$T/alice.key" put-image --repository-name ecr/app --image-tag old --image-manifest "$MAN" || true)"
	img_busybox "$T/b" amd64 "$U b"
	img_docker_archive "$T/b" "$T/b.tar"
	D load -i "$T/b.tar" >/dev/null
	D tag "$(img_config_digest "$T/b")" "$R/ecr/app:tmp"
	MB=$(pushed_digest "$(D push "$R/ecr/app:tmp" 2>&1)")
	img_busybox "$T/c" amd64 "$U c"
	img_docker_archive "$T/c" "$T/c.tar"
	D load -i "$T/c.tar" >/dev/null
	D tag "$(img_config_digest "$T/c")" "$R/ecr/app:tmp"
	MC=$(pushed_digest "$(D push "$R/ecr/app:tmp" 2>&1)")
	check_eq "list-images UNTAGGED: the image whose tag moved" "$MB" "$(ecr "$T/alice.key" list-images \
		--repository-name ecr/app --filter tagStatus=UNTAGGED | jq -r '.imageIds[].imageDigest' 2>&1)"
	check_eq "list-images TAGGED" "old tmp v1" "$(ecr "$T/alice.key" list-images --repository-name ecr/app \
		--filter tagStatus=TAGGED | jq -r '.imageIds[].imageTag' 2>&1 | LC_ALL=C sort | xargs)"
	OUT=$(ecr "$T/alice.key" batch-get-image --repository-name ecr/app --image-ids imageTag=v1 imageTag=nope \
		imageDigest="$MC",imageTag=v1)
	check_eq "batch-get-image: found v1" "$MA" "$(jq -r '.images[].imageId.imageDigest' <<<"$OUT" 2>&1)"
	check_eq "batch-get-image: failures ImageNotFound, ImageTagDoesNotMatchDigest" \
		"ImageNotFound ImageTagDoesNotMatchDigest" "$(jq -r '.failures[].failureCode' <<<"$OUT" 2>&1 | xargs)"
	check_contains "pull-only key cannot delete: AccessDeniedException" "(AccessDeniedException)" \
		"$(ecr "$T/bob.key" batch-delete-image --repository-name ecr/app --image-ids imageDigest="$MB" || true)"
	check_eq "pull-only key can describe" "0" "$(ecr_rc "$T/bob.key" describe-images --repository-name ecr/app)"
	OUT=$(ecr "$T/alice.key" batch-delete-image --repository-name ecr/app --image-ids imageDigest="$MB" \
		imageTag=nope imageDigest=sha256:bad)
	check_eq "batch-delete-image: deleted the untagged image" "$MB" "$(jq -r '.imageIds[].imageDigest' <<<"$OUT" 2>&1)"
	check_eq "batch-delete-image: failure entries" "ImageNotFound InvalidImageDigest" \
		"$(jq -r '.failures[].failureCode' <<<"$OUT" 2>&1 | xargs)"

	log "6. tag immutability"
	check_eq "put-image-tag-mutability IMMUTABLE" IMMUTABLE "$(ecr "$T/alice.key" put-image-tag-mutability \
		--repository-name ecr/app --image-tag-mutability IMMUTABLE | jq -r .imageTagMutability 2>&1)"
	D tag "$(img_config_digest "$T/c")" "$R/ecr/app:v1"
	OUT=$(D push "$R/ecr/app:v1" 2>&1 || true)
	check_contains "docker push over an immutable tag prints ECR's message" \
		"The image tag 'v1' already exists in the 'ecr/app' repository and cannot be overwritten because the repository is immutable." \
		"$OUT"
	D tag "$CFG" "$R/ecr/app:v1"
	check "re-pushing the same image to the immutable tag succeeds" D push "$R/ecr/app:v1"
	check_contains "put-image moving an immutable tag: ImageTagAlreadyExistsException" \
		"(ImageTagAlreadyExistsException)" "$(ecr "$T/alice.key" put-image --repository-name ecr/app --image-tag tmp \
		--image-manifest "$MAN" || true)"
	check_eq "describe-repositories shows IMMUTABLE" IMMUTABLE "$(ecr "$T/alice.key" describe-repositories \
		--repository-names ecr/app | jq -r '.repositories[0].imageTagMutability' 2>&1)"
else
	log "5-6. docker: skipped (SKIP_DOCKER set or dockerd did not start)"
	# the blobs the paginator's manifests reference still have to be in the repository
	check "push blobs with the ECR login (curl)" sh -c "
		for d in $CFG $LAYER; do
			curl -sf -u 'AWS:$PW' -X POST --data-binary @\$(echo '$T/a/blobs/sha256/'\${d#sha256:}) \
				-H 'Content-Type: application/octet-stream' \"http://$R/v2/ecr/app/blobs/uploads/?digest=\$d\" >/dev/null || exit 1
		done"
	check "put-image of image a" ecr "$T/alice.key" put-image --repository-name ecr/app --image-tag v1 \
		--image-manifest "$(cat "$(img_blob_path "$T/a" "$(img_manifest_digest "$T/a")")")"
fi

# the config and layer of image a as pushed (docker recompresses layers on push)
CFG=$(manifest_of v1 | jq -r .config.digest)
CFG_SIZE=$(manifest_of v1 | jq -r .config.size)
LAYER=$(manifest_of v1 | jq -r '.layers[0].digest')
LAYER_SIZE=$(manifest_of v1 | jq -r '.layers[0].size')

########################################################################
log "7. layers: batch-check-layer-availability, get-download-url-for-layer"
OUT=$(ecr "$T/alice.key" batch-check-layer-availability --repository-name ecr/app --layer-digests "$LAYER" \
	sha256:0000000000000000000000000000000000000000000000000000000000000000)
check_eq "available layer with its size" "$LAYER AVAILABLE $LAYER_SIZE" \
	"$(jq -r '.layers[] | "\(.layerDigest) \(.layerAvailability) \(.layerSize)"' <<<"$OUT" 2>&1)"
check_eq "missing layer: MissingLayerDigest" MissingLayerDigest "$(jq -r '.failures[].failureCode' <<<"$OUT" 2>&1)"
URL=$(ecr "$T/alice.key" get-download-url-for-layer --repository-name ecr/app --layer-digest "$LAYER" |
	jq -r .downloadUrl)
check_eq "the download URL serves the layer (same authorization)" "$LAYER" \
	"sha256:$(curl -sf -u "AWS:$PW" -L "$URL" | sha256sum | cut -c1-64)"

check_eq "skopeo --creds AWS:<token> reads the image" "$CFG" "$(skopeo inspect --tls-verify=false --raw \
	--creds "AWS:$PW" "docker://$R/ecr/app:v1" 2>&1 | jq -r .config.digest 2>&1)"

########################################################################
log "7b. ECR's own layer upload path"
head -c 300000 /dev/urandom >"$T/layer.bin"
head -c 150000 "$T/layer.bin" >"$T/part1"
tail -c +150001 "$T/layer.bin" >"$T/part2"
LD="sha256:$(sha256sum "$T/layer.bin" | cut -c1-64)"
UP=$(ecr "$T/alice.key" initiate-layer-upload --repository-name ecr/app | jq -r .uploadId)
check "initiate-layer-upload returns an uploadId" grep -qE '^[0-9a-f-]{36}$' <<<"$UP"
check_eq "upload-layer-part 1" 149999 "$(ecr "$T/alice.key" upload-layer-part --repository-name ecr/app \
	--upload-id "$UP" --part-first-byte 0 --part-last-byte 149999 --layer-part-blob "fileb://$T/part1" |
	jq -r .lastByteReceived 2>&1)"
check_contains "a part at the wrong offset: InvalidLayerPartException" "(InvalidLayerPartException)" \
	"$(ecr "$T/alice.key" upload-layer-part --repository-name ecr/app --upload-id "$UP" --part-first-byte 7 \
		--part-last-byte 150006 --layer-part-blob "fileb://$T/part2" || true)"
check_eq "upload-layer-part 2" 299999 "$(ecr "$T/alice.key" upload-layer-part --repository-name ecr/app \
	--upload-id "$UP" --part-first-byte 150000 --part-last-byte 299999 --layer-part-blob "fileb://$T/part2" |
	jq -r .lastByteReceived 2>&1)"
check_eq "complete-layer-upload" "$LD" "$(ecr "$T/alice.key" complete-layer-upload --repository-name ecr/app \
	--upload-id "$UP" --layer-digests "$LD" | jq -r .layerDigest 2>&1)"
check_contains "completing it again: UploadNotFoundException" "(UploadNotFoundException)" \
	"$(ecr "$T/alice.key" complete-layer-upload --repository-name ecr/app --upload-id "$UP" --layer-digests "$LD" ||
		true)"
check_eq "the uploaded layer is available with its size" "AVAILABLE 300000" "$(ecr "$T/alice.key" \
	batch-check-layer-availability --repository-name ecr/app --layer-digests "$LD" |
	jq -r '.layers[] | "\(.layerAvailability) \(.layerSize)"' 2>&1)"
check_eq "the OCI API serves the same bytes" "$LD" \
	"sha256:$(curl -sf -u "AWS:$PW" "http://$R/v2/ecr/app/blobs/$LD" | sha256sum | cut -c1-64)"
UP=$(ecr "$T/alice.key" initiate-layer-upload --repository-name ecr/app | jq -r .uploadId)
ecr "$T/alice.key" upload-layer-part --repository-name ecr/app --upload-id "$UP" --part-first-byte 0 \
	--part-last-byte 149999 --layer-part-blob "fileb://$T/part1" >/dev/null
check_contains "completing with the wrong digest: InvalidLayerException" "(InvalidLayerException)" \
	"$(ecr "$T/alice.key" complete-layer-upload --repository-name ecr/app --upload-id "$UP" --layer-digests \
		"sha256:$(sha256sum "$T/part2" | cut -c1-64)" || true)"
check_contains "that upload is gone: UploadNotFoundException" "(UploadNotFoundException)" \
	"$(ecr "$T/alice.key" upload-layer-part --repository-name ecr/app --upload-id "$UP" --part-first-byte 0 \
		--part-last-byte 149999 --layer-part-blob "fileb://$T/part1" || true)"
check_contains "a pull-only key cannot upload: AccessDeniedException" "(AccessDeniedException)" \
	"$(ecr "$T/bob.key" initiate-layer-upload --repository-name ecr/app || true)"

########################################################################
log "8. describe-images pagination with boto3's paginator over $N_PAGINATE images"
ecr "$T/alice.key" create-repository --repository-name ecr/many >/dev/null
# the manifests reference the config and layer of image a: link them into ecr/many by a cross-repository mount
for d in $CFG $LAYER; do
	curl -s -o /dev/null -u "AWS:$PW" -X POST "http://$R/v2/ecr/many/blobs/uploads/?mount=$d&from=ecr/app"
done
OUT=$(as "$T/alice.key" boto paginate "http://$R" ecr/many "$N_PAGINATE" "$CFG" "$CFG_SIZE" "$LAYER" \
	"$LAYER_SIZE" 2>&1) && RC=0 || RC=$?
log "$OUT"
check_eq "paginator: no duplicates, nothing skipped, pages of at most 100 (under concurrent PutImage)" 0 "$RC"
check_eq "list-images follows nextToken in the CLI" "$N_PAGINATE" "$(ecr "$T/alice.key" list-images \
	--repository-name ecr/many --filter tagStatus=TAGGED --page-size 333 | jq '.imageIds | length' 2>&1)"
check_eq "an image only PutImage'd has no lastRecordedPullTime" null "$(ecr "$T/alice.key" describe-images \
	--repository-name ecr/many --image-ids imageTag=p00007 | jq -r '.imageDetails[0].lastRecordedPullTime' 2>&1)"
check_eq "batch-get-image returns it" 1 "$(ecr "$T/bob.key" batch-get-image --repository-name ecr/many \
	--image-ids imageTag=p00007 | jq '.images | length' 2>&1)"
sleep 6 # pull times are written in batches every BERTH_PULL_FLUSH_INTERVAL (5 s)
PT=$(ecr "$T/alice.key" describe-images --repository-name ecr/many --image-ids imageTag=p00007 |
	jq -r '.imageDetails[0].lastRecordedPullTime' 2>&1)
check "batch-get-image records lastRecordedPullTime ($PT), as a manifest GET does" test \
	"$(date -d "$PT" +%s 2>/dev/null || echo 0)" -ge "$(($(date +%s) - 120))"

########################################################################
log "8b. IMMUTABLE_WITH_EXCLUSION (newer ECR model: sent as signed JSON, the installed CLI predates it)"
check_eq "create-repository with exclusion filters" "200 -" "$(as "$T/alice.key" boto raw "http://$R" CreateRepository \
	'{"repositoryName":"ecr/excl","imageTagMutability":"IMMUTABLE_WITH_EXCLUSION","imageTagMutabilityExclusionFilters":[{"filterType":"WILDCARD","filter":"latest"},{"filterType":"WILDCARD","filter":"dev-*"}]}')"
for d in $CFG $LAYER; do
	curl -s -o /dev/null -u "AWS:$PW" -X POST "http://$R/v2/ecr/excl/blobs/uploads/?mount=$d&from=ecr/app"
done
mk_manifest() { # N -> an OCI manifest of image a's config and layer, made distinct by an annotation
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}],"annotations":{"n":"%s"}}' \
		"$CFG" "$CFG_SIZE" "$LAYER" "$LAYER_SIZE" "$1"
}
for tag in latest dev-1 v1; do
	ecr "$T/alice.key" put-image --repository-name ecr/excl --image-tag "$tag" --image-manifest "$(mk_manifest 1)" >/dev/null
done
check_eq "an excluded tag (latest) moves" 0 "$(ecr_rc "$T/alice.key" put-image --repository-name ecr/excl \
	--image-tag latest --image-manifest "$(mk_manifest 2)")"
check_eq "an excluded wildcard tag (dev-*) moves" 0 "$(ecr_rc "$T/alice.key" put-image --repository-name ecr/excl \
	--image-tag dev-1 --image-manifest "$(mk_manifest 2)")"
check_contains "any other tag is immutable: ImageTagAlreadyExistsException" "(ImageTagAlreadyExistsException)" \
	"$(ecr "$T/alice.key" put-image --repository-name ecr/excl --image-tag v1 --image-manifest "$(mk_manifest 2)" ||
		true)"
check_eq "the OCI PUT of v1 with other content is TAG_INVALID" "400 TAG_INVALID" "$(curl -s -u "AWS:$PW" -X PUT \
	-H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary "$(mk_manifest 3)" \
	-w ' %{http_code}' "http://$R/v2/ecr/excl/manifests/v1" | sed -E 's/.*"code":"([A-Z_]+)".* ([0-9]+)$/\2 \1/')"
check_eq "the OCI PUT of v1 with its own content succeeds (a CI retry)" 201 "$(curl -s -o /dev/null -u "AWS:$PW" \
	-X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary "$(mk_manifest 1)" \
	-w '%{http_code}' "http://$R/v2/ecr/excl/manifests/v1")"

########################################################################
log "9. lifecycle policies"
POLICY='{"rules":[{"rulePriority":1,"description":"keep only the newest image","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}'
check_contains "get-lifecycle-policy before any: LifecyclePolicyNotFoundException" "(LifecyclePolicyNotFoundException)" \
	"$(ecr "$T/alice.key" get-lifecycle-policy --repository-name ecr/app || true)"
check_contains "an invalid policy: InvalidParameterException" "(InvalidParameterException)" \
	"$(ecr "$T/alice.key" put-lifecycle-policy --repository-name ecr/app --lifecycle-policy-text \
		"${POLICY/imageCountMoreThan/imageCountLessThan}" || true)"
check_contains "pull-only key cannot put a policy: AccessDeniedException" "(AccessDeniedException)" \
	"$(ecr "$T/bob.key" put-lifecycle-policy --repository-name ecr/app --lifecycle-policy-text "$POLICY" || true)"
check_eq "put-lifecycle-policy" "$POLICY" "$(ecr "$T/alice.key" put-lifecycle-policy --repository-name ecr/app \
	--lifecycle-policy-text "$POLICY" | jq -r .lifecyclePolicyText 2>&1)"
check_eq "get-lifecycle-policy returns it" "$POLICY" "$(ecr "$T/alice.key" get-lifecycle-policy \
	--repository-name ecr/app | jq -r .lifecyclePolicyText 2>&1)"
check_contains "preview before start: LifecyclePolicyPreviewNotFoundException" \
	"(LifecyclePolicyPreviewNotFoundException)" \
	"$(ecr "$T/alice.key" get-lifecycle-policy-preview --repository-name ecr/app || true)"
check_eq "start-lifecycle-policy-preview" IN_PROGRESS "$(ecr "$T/alice.key" start-lifecycle-policy-preview \
	--repository-name ecr/app | jq -r .status 2>&1)"
NIMG=$(ecr "$T/alice.key" describe-images --repository-name ecr/app | jq '.imageDetails | length')
berth_stop # the started preview is kept in berth.db: it survives a restart
berth_start "$DATA"
R=$REGISTRY
OUT=$(ecr "$T/alice.key" get-lifecycle-policy-preview --repository-name ecr/app)
check_eq "get-lifecycle-policy-preview: COMPLETE, all but the newest image expire (of $NIMG)" \
	"COMPLETE $((NIMG - 1)) $((NIMG - 1))" \
	"$(jq -r '"\(.status) \(.summary.expiringImageTotalCount) \(.previewResults | length)"' <<<"$OUT" 2>&1)"
check_eq "the preview expired nothing" "$NIMG" \
	"$(ecr "$T/alice.key" describe-images --repository-name ecr/app | jq '.imageDetails | length' 2>&1)"
check_eq "delete-lifecycle-policy returns the text" "$POLICY" "$(ecr "$T/alice.key" delete-lifecycle-policy \
	--repository-name ecr/app | jq -r .lifecyclePolicyText 2>&1)"
check_contains "then get: LifecyclePolicyNotFoundException" "(LifecyclePolicyNotFoundException)" \
	"$(ecr "$T/alice.key" get-lifecycle-policy --repository-name ecr/app || true)"

########################################################################
log "10. delete-repository"
check_contains "without --force: RepositoryNotEmptyException" "(RepositoryNotEmptyException)" \
	"$(ecr "$T/alice.key" delete-repository --repository-name ecr/app || true)"
check_eq "with --force" ecr/app "$(ecr "$T/alice.key" delete-repository --repository-name ecr/app --force |
	jq -r .repository.repositoryName 2>&1)"
check_contains "then describe: RepositoryNotFoundException" "(RepositoryNotFoundException)" \
	"$(ecr "$T/alice.key" describe-images --repository-name ecr/app || true)"
check_eq "its manifests are gone from the OCI API" 404 "$(curl -s -o /dev/null -w '%{http_code}' -u "AWS:$PW" \
	"http://$R/v2/ecr/app/manifests/v1")"
check "berth repo create" B repo create ecr/ops
check_contains "berth repo list" "ecr/ops" "$(B repo list)"
check_contains "the CLI sees the operator's repository" "ecr/ops" \
	"$(ecr "$T/alice.key" describe-repositories --repository-names ecr/ops)"
check "berth repo delete of an empty repository" B repo delete ecr/ops

########################################################################
log "11. create_on_push = off, region and registry_id settings"
berth_stop
printf 'create_on_push = off\nregion = eu-central-1\nregistry_id = 123456789012\n' >"$T/berth.conf"
berth_start "$DATA" --config "$T/berth.conf"
R=$REGISTRY
OUT=$(curl -s -w ' %{http_code}' -u "AWS:$PW" -X POST "http://$R/v2/ecr/never-created/blobs/uploads/")
check_contains "push to a repository never created: 404 NAME_UNKNOWN" '"NAME_UNKNOWN"' "$OUT"
check_contains "the message says how to create it" "create-repository" "$OUT"
check_eq "push to a created repository still works" 202 "$(curl -s -o /dev/null -w '%{http_code}' -u "AWS:$PW" \
	-X POST "http://$R/v2/ecr/many/blobs/uploads/")"
check_eq "registry_id from the config" 123456789012 "$(as "$T/alice.key" "$AWSCLI" --endpoint-url "http://$R" \
	--region eu-central-1 ecr describe-registry 2>&1 | jq -r .registryId 2>&1)"
OUT=$(as "$T/alice.key" "$AWSCLI" --endpoint-url "http://$R" --region us-east-1 ecr describe-registry 2>&1 || true)
check_contains "region eu-central-1: a us-east-1 signature is refused naming eu-central-1" \
	"This registry's region is 'eu-central-1'" "$OUT"

########################################################################
log "12. rate limit of failed signatures (per client address, per key id): ThrottlingException, retried by the SDKs"
berth_stop
MP=$(free_port)
berth_start "$DATA" --metrics-listen "127.0.0.1:$MP"
R=$REGISTRY
metric() { curl -s "http://127.0.0.1:$MP/metrics" | awk -v k="$1" '$1 == k { print $2; f=1 } END { if (!f) print 0 }'; }
LIMITED='berth_auth_failures_total{reason="rate_limited"}'
# sig FROM KEY SECRET OP: a request signed by curl's own SigV4 (--aws-sigv4) from source address FROM
sig() {
	curl -s --interface "$1" --aws-sigv4 "aws:amz:us-east-1:ecr" --user "$2:$3" -H 'Content-Type: application/x-amz-json-1.1' \
		-H "X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.$4" -d '{}' -w ' %{http_code}' "http://$R/" |
		sed -E 's/.*"__type":"([A-Za-z]+)".* ([0-9]+)$/\2 \1/; s/^\{.* ([0-9]+)$/\1 -/'
}
BK=$(keyvar "$T/bob.key" AWS_ACCESS_KEY_ID)
BS=$(keyvar "$T/bob.key" AWS_SECRET_ACCESS_KEY)
check_eq "curl's SigV4 signer is accepted" "200 -" "$(sig 127.0.0.1 "$AK" "$AS" DescribeRegistry)"
# a body past BERTH_ECR_LOOP_BODY_MAX (64 KiB) is served on a worker, the rest on the loop; HTTP/2 as HTTP/1.1
"$PY" -c 'print("{\"repositoryName\":\"ecr/many\",\"maxResults\":3" + " " * 70000 + "}")' >"$T/big.json"
for v in --http1.1 --http2-prior-knowledge; do
	for body in '{"repositoryName":"ecr/many","maxResults":3}' "@$T/big.json"; do
		case $body in @*) what="70 KB body: on a worker" ;; *) what="small body: on the loop" ;; esac
		check_eq "DescribeImages ($v, $what) answers 3 images and a nextToken" "3 true" "$(curl -s "$v" \
			--aws-sigv4 "aws:amz:us-east-1:ecr" --user "$AK:$AS" -H 'Content-Type: application/x-amz-json-1.1' \
			-H "X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.DescribeImages" --data-binary "$body" \
			"http://$R/" | jq -r '"\(.imageDetails | length) \(.nextToken != null)"' 2>&1)"
	done
done
for i in $(seq 1 10); do # 10 = BERTH_ECR_AUTH_FAIL_MAX_KEY, spread over addresses
	OUT=$(sig "127.0.0.$((20 + i % 4))" "$BK" "wrong-secret-wrong-secret-wrong-secret-00" DescribeRegistry)
done
check_eq "a wrong secret is InvalidSignatureException (the 10th too)" "400 InvalidSignatureException" "$OUT"
check_eq "then bob's key is throttled even with its right secret, from a fresh address" "400 ThrottlingException" \
	"$(sig 127.0.0.30 "$BK" "$BS" DescribeRegistry)"
check_eq "another key from that address is not" "200 -" "$(sig 127.0.0.30 "$AK" "$AS" DescribeRegistry)"
for i in $(seq 1 50); do # 50 = BERTH_ECR_AUTH_FAIL_MAX_ADDR, each naming another unknown key
	OUT=$(sig 127.0.0.40 "$(printf 'BKUNKNOWN%011d' "$i")" "$AS" DescribeRegistry)
done
check_eq "unknown keys are UnrecognizedClientException (the 50th too)" "400 UnrecognizedClientException" "$OUT"
check_eq "then that address is throttled, even for a good key" "400 ThrottlingException" \
	"$(sig 127.0.0.40 "$AK" "$AS" DescribeRegistry)"
check_eq "another address with that key is not" "200 -" "$(sig 127.0.0.41 "$AK" "$AS" DescribeRegistry)"
L0=$(metric "$LIMITED")
OUT=$(as "$T/bob.key" "$PY" - "http://$R" <<'PYEOF' 2>&1 || true
import sys, boto3, botocore.config, botocore.exceptions
c = boto3.client("ecr", endpoint_url=sys.argv[1], region_name="us-east-1",
                 config=botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 3}))
try:
    c.describe_registry()
    print("no error")
except botocore.exceptions.ClientError as e:
    r = e.response
    print(r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["ResponseMetadata"]["RetryAttempts"])
PYEOF
)
check_eq "boto3 sees ThrottlingException, HTTP 400, after retrying it twice (standard mode, 3 attempts)" \
	"ThrottlingException 400 2" "$OUT"
check_eq "the server refused all 3 attempts: berth_auth_failures_total{reason=\"rate_limited\"} +3" 3 \
	"$(($(metric "$LIMITED") - L0))"
check_contains "the AWS CLI retries it too and reports it" "(ThrottlingException) when calling the DescribeRegistry operation (reached max retries" \
	"$(AWS_MAX_ATTEMPTS=2 ecr "$T/bob.key" describe-registry || true)"
check "bad signatures are counted: berth_auth_failures_total{reason=\"bad_credentials\"} >= 60" test \
	"$(metric 'berth_auth_failures_total{reason="bad_credentials"}')" -ge 60
check_not_contains "the server log holds no access-key secret" "$AS" "$(cat "$DATA.log")"
check_not_contains "the server log holds no login token" "${PW##*.}" "$(cat "$DATA.log")"

finish
