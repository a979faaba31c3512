#!/usr/bin/env bash
# shellcheck disable=SC1091,SC2317  # sourced libs; helpers are called via check
# `berth migrate` (issue #12): a single-node registry (SQLite + disk) filled by skopeo and curl pushes (an index,
# an image of several MiB, a referrer, tags), with users (an admin), grants, a robot token, ECR access keys, a
# lifecycle policy, ECR tag mutability and resource tags, is copied into PostgreSQL (scripts/pg) + Ceph RGW
# (scripts/ceph).  The first run is killed with SIGKILL
# after its third blob's object is stored but before its row (fault point migrate.before_row:3), the second run
# finishes it (skipping what is there); then berth serves the target: every image pulls byte-identical, the user's
# login and the robot token work, grants hold (push allowed where granted, denied elsewhere), aws ecr
# get-lifecycle-policy returns the policy, the access key signs, and fsck is clean.  A third run is a no-op, a
# corrupted source blob stops a run, and a target holding another registry is refused without --force.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
. "$HERE/server.sh"
. "$ROOT/scripts/lib/images.sh"

e2e_tmpdir T
unset BERTH_METADATA BERTH_STORAGE BERTH_DATA
export AWS_PAGER="" AWS_CONFIG_FILE=$T/aws-config AWS_SHARED_CREDENTIALS_FILE=$T/aws-credentials
: >"$AWS_CONFIG_FILE"
: >"$AWS_SHARED_CREDENTIALS_FILE"
SRC=$T/src
mkdir -p "$SRC"
B() { "$BERTH_BIN" "$@" --data "$SRC"; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
token() { curl -s -u "$2" "http://$1/token?service=berth&scope=$3" | jq -r .token; }
sha() { echo "sha256:$(sha256sum "$1" | cut -c1-64)"; }
keyvar() { grep "^$2=" "$1" | tail -n 1 | cut -d= -f2-; }

########################################################################
log "1. the source registry: users, grants, token, access key, pushes, a referrer, a lifecycle policy"
check "user add alice" B user add alice --password-stdin <<<"alice-passwd-01"
check "user add bob" B user add bob --password-stdin <<<"bob-passwd-0001"
check "grant alice pull,push,delete on team/*" B grant add user:alice pull,push,delete 'team/*'
check "grant bob pull on team/*" B grant add user:bob pull 'team/*'
ROBOT=$(B token create --name ci --scope 'repository:team/*:pull' --ttl 1d | tail -n 1 | awk '{print $NF}')
check "a robot token was created" test -n "$ROBOT"
B accesskey create --user alice --description migrated >"$T/alice.key"
AK=$(keyvar "$T/alice.key" AWS_ACCESS_KEY_ID)
AS=$(keyvar "$T/alice.key" AWS_SECRET_ACCESS_KEY)
check "quota set team/* 10G" B quota set 'team/*' 10G
check "user add ops --admin" B user add ops --admin --password-stdin <<<"ops-passwd-0001"
B accesskey create --user ops >"$T/ops.key"
berth_start "$SRC" --access-log off
on_exit berth_kill
R=$REGISTRY
img_index "$T/idx" "migrate index"
img_busybox "$T/app" amd64 "migrate app"
img_large "$T/big" 20 "migrate big"
SK=(skopeo --insecure-policy copy -q --dest-tls-verify=false --dest-creds alice:alice-passwd-01)
check "skopeo pushes an index" "${SK[@]}" --all "oci:$T/idx" "docker://$R/team/idx:multi"
check "skopeo pushes an image" "${SK[@]}" "oci:$T/app" "docker://$R/team/app:v1"
check "skopeo pushes it under a second tag" "${SK[@]}" "oci:$T/app" "docker://$R/team/app:stable"
check "skopeo pushes a 20 MiB image" "${SK[@]}" "oci:$T/big" "docker://$R/team/big:v1"
TA=$(token "$R" alice:alice-passwd-01 'repository:team/app:pull,push')
AUTH=(-H "Authorization: Bearer $TA")
MD=$(curl -s "${AUTH[@]}" -H 'Accept: application/vnd.oci.image.manifest.v1+json' -o "$T/app.manifest" \
	-w '%{header_json}' "http://$R/v2/team/app/manifests/v1" | jq -r '."docker-content-digest"[0]')
printf '{}' >"$T/empty"
EM=$(sha "$T/empty")
code "${AUTH[@]}" -X POST --data-binary @"$T/empty" "http://$R/v2/team/app/blobs/uploads/?digest=$EM" >/dev/null
cat >"$T/sig" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.sig","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"$EM","size":2},"layers":[{"mediaType":"application/vnd.oci.empty.v1+json","digest":"$EM","size":2}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"$MD","size":$(stat -c %s "$T/app.manifest")}}
EOF
SD=$(sha "$T/sig")
check_eq "a referrer is pushed" 201 "$(code "${AUTH[@]}" -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
	--data-binary @"$T/sig" "http://$R/v2/team/app/manifests/$SD")"
# an upload session left open: not copied (migrate.h)
code "${AUTH[@]}" -X POST "http://$R/v2/team/app/blobs/uploads/" >/dev/null
POLICY='{"rules":[{"rulePriority":1,"description":"keep 5","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}]}'
check "lifecycle put team/app" B lifecycle put team/app - <<<"$POLICY"
ECR=(env AWS_ACCESS_KEY_ID="$(keyvar "$T/ops.key" AWS_ACCESS_KEY_ID)"
	AWS_SECRET_ACCESS_KEY="$(keyvar "$T/ops.key" AWS_SECRET_ACCESS_KEY)" /usr/bin/aws --region us-east-1 ecr)
check "ECR settings (admin's access key): team/big made IMMUTABLE" "${ECR[@]}" --endpoint-url "http://$R" put-image-tag-mutability \
	--repository-name team/big --image-tag-mutability IMMUTABLE
ARN=$("${ECR[@]}" --endpoint-url "http://$R" describe-repositories --repository-names team/app \
	--query 'repositories[0].repositoryArn' --output text)
check "ECR resource tags: team/app tagged" "${ECR[@]}" --endpoint-url "http://$R" tag-resource --resource-arn "$ARN" \
	--tags Key=owner,Value=platform
for img in idx:multi app:v1 app:stable big:v1; do
	skopeo --insecure-policy copy -q --all --src-tls-verify=false --src-creds alice:alice-passwd-01 \
		"docker://$R/team/$img" "dir:$T/before-${img/:/-}"
done
berth_stop
NBLOBS=$(sqlite3 "$SRC/berth.db" 'SELECT count(*) FROM blobs')
log "source: $NBLOBS blobs, $(du -sh "$SRC/blobs" | cut -f1)"

########################################################################
log "2. PostgreSQL and Ceph RGW"
PGDIR=$T/pg
mkdir -p "$PGDIR"
"$ROOT/scripts/pg" start "$PGDIR" >/dev/null
on_exit "$ROOT/scripts/pg" stop "$PGDIR"
URL=$("$ROOT/scripts/pg" createdb "$PGDIR" target)
on_exit "$ROOT/scripts/ceph" stop "$T/ceph"
eval "$("$ROOT/scripts/ceph" start "$T/ceph")"
S3=(env AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"
	/usr/bin/aws --endpoint-url "$S3_ENDPOINT" --region us-east-1 s3api)
"${S3[@]}" create-bucket --bucket berth-migrate >/dev/null
cat >"$T/target.conf" <<EOF
data = $T/tgt
metadata = $URL
storage = s3://berth-migrate/reg
s3_endpoint = $S3_ENDPOINT
s3_access_key = $AWS_ACCESS_KEY_ID
s3_secret_key = $AWS_SECRET_ACCESS_KEY
EOF
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
mkdir -p "$T/tgt"
M=("$BERTH_BIN" migrate --from "$SRC" --to-config "$T/target.conf")
objects() { "${S3[@]}" list-objects-v2 --bucket berth-migrate --prefix reg/blobs/ --query 'length(Contents)' --output text; }

########################################################################
log "3. a migrate killed (SIGKILL) after its third blob's object, before its row; then run again"
rc=0
BERTH_FAULT=migrate.before_row:3 "${M[@]}" >"$T/run1.out" 2>&1 || rc=$?
check_contains "the fault point was armed (needs BERTH_FAULTS, on outside Release builds)" \
	"fault injection armed: migrate.before_row" "$(cat "$T/run1.out")"
check_eq "the first run was killed by SIGKILL" 137 "$rc"
check_eq "three objects were stored before the kill" 3 "$(objects)"
check_eq "two blob rows were committed before the kill" 2 \
	"$(psql -At "$URL" -c 'SELECT count(*) FROM blobs')"
rc=0
"${M[@]}" >"$T/run2.out" 2>&1 || rc=$?
cat "$T/run2.out" >&2
check_eq "the second run finishes" 0 "$rc"
check_contains "it skipped the two complete blobs" "2 already in the target" "$(cat "$T/run2.out")"
check_contains "and copied the rest, the third again" "$((NBLOBS - 2)) blobs copied and verified" "$(cat "$T/run2.out")"
check_eq "every blob is an object in the bucket" "$NBLOBS" "$(objects)"
rc=0
"${M[@]}" >"$T/run3.out" 2>&1 || rc=$?
check_eq "a third run finishes" 0 "$rc"
check_contains "and copies no blob" "0 blobs copied and verified (0.0 B), $NBLOBS already in the target" \
	"$(cat "$T/run3.out")"
for t in repos blobs repo_blobs manifests manifest_blobs manifest_children tags users tokens grants \
	lifecycle_policies access_keys; do
	check_eq "table $t: as many rows in PostgreSQL as in the source" \
		"$(sqlite3 "$SRC/berth.db" "SELECT count(*) FROM $t")" "$(psql -At "$URL" -c "SELECT count(*) FROM $t")"
done
check_eq "the open upload session was not copied" 0 "$(psql -At "$URL" -c 'SELECT count(*) FROM uploads')"
check_eq "repos.bytes recomputed equal to the source's" \
	"$(sqlite3 "$SRC/berth.db" 'SELECT group_concat(name || "=" || bytes, ",") FROM (SELECT * FROM repos ORDER BY name)')" \
	"$(psql -At "$URL" -c "SELECT string_agg(name || '=' || bytes, ',' ORDER BY name) FROM repos")"
check_eq "the quota and its usage (recomputed) equal the source's" \
	"$(sqlite3 "$SRC/berth.db" "SELECT pattern || ' ' || limit_bytes || ' ' || used FROM quotas")" \
	"$(psql -At "$URL" -c "SELECT pattern || ' ' || limit_bytes || ' ' || used FROM quotas")"
check "and is not zero" test "$(psql -At "$URL" -c 'SELECT used FROM quotas')" -gt 0
check_eq "stats count the copied blobs" "$NBLOBS" "$(psql -At "$URL" -c 'SELECT blobs FROM stats')"
check_eq "the signing and sealing keys are shared_keys rows" "$(find "$SRC/keys" -type f | wc -l)" \
	"$(psql -At "$URL" -c 'SELECT count(*) FROM shared_keys')"

########################################################################
log "4. berth on the target: pulls, logins, tokens, grants, ECR, fsck"
berth_start "$T/tgt" --config "$T/target.conf" --access-log off
R=$REGISTRY
for img in idx:multi app:v1 app:stable big:v1; do
	check "skopeo pulls team/$img from the target" skopeo --insecure-policy copy -q --all --src-tls-verify=false \
		--src-creds alice:alice-passwd-01 "docker://$R/team/$img" "dir:$T/after-${img/:/-}"
	check "team/$img is byte-identical" diff -r "$T/before-${img/:/-}" "$T/after-${img/:/-}"
done
check_eq "alice's password logs in" 200 "$(code -u alice:alice-passwd-01 "http://$R/token?service=berth&scope=repository:team/app:pull")"
check_eq "a wrong password does not" 401 "$(code -u alice:wrong "http://$R/token?service=berth&scope=repository:team/app:pull")"
TB=$(token "$R" bob:bob-passwd-0001 'repository:team/app:pull,push')
check_eq "bob's grant (pull) holds" 200 "$(code -H "Authorization: Bearer $TB" -I "http://$R/v2/team/app/manifests/v1")"
check_eq "bob has no push" 401 "$(code -H "Authorization: Bearer $TB" -X POST "http://$R/v2/team/app/blobs/uploads/")"
TR=$(token "$R" "ci:$ROBOT" 'repository:team/app:pull')
check_eq "the robot token still works" 200 "$(code -H "Authorization: Bearer $TR" -I "http://$R/v2/team/app/manifests/v1")"
TA=$(token "$R" alice:alice-passwd-01 'repository:team/app:pull,push')
check_eq "a token signed before the migration (source key) verifies on the target" 200 \
	"$(code "${AUTH[@]}" -I "http://$R/v2/team/app/manifests/v1")"
check_contains "the referrer is listed" "$SD" "$(curl -s -H "Authorization: Bearer $TA" "http://$R/v2/team/app/referrers/$MD")"
check_contains "tags survive" '"stable"' "$(curl -s -H "Authorization: Bearer $TA" "http://$R/v2/team/app/tags/list")"
head -c 100000 /dev/urandom >"$T/new"
check_eq "alice pushes a new blob to the target" 201 "$(code -H "Authorization: Bearer $TA" -X POST \
	--data-binary @"$T/new" "http://$R/v2/team/app/blobs/uploads/?digest=$(sha "$T/new")")"
GOT=$(AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$AS /usr/bin/aws --endpoint-url "http://$R" --region us-east-1 \
	ecr get-lifecycle-policy --repository-name team/app --query lifecyclePolicyText --output text)
check_eq "aws ecr get-lifecycle-policy returns the policy (the access key signs)" "$(jq -cS . <<<"$POLICY")" \
	"$(jq -cS . <<<"$GOT")"
check "skopeo pushes a new repository to the target (identity sequences past the copied ids)" "${SK[@]}" \
	"oci:$T/app" "docker://$R/team/fresh:v1"
check "a new user on the target" "$BERTH_BIN" user add dave --config "$T/target.conf" --password-stdin \
	<<<"dave-passwd-001"
check_eq "its id follows the copied ones" "$(sqlite3 "$SRC/berth.db" 'SELECT max(id) + 1 FROM users')" \
	"$(psql -At "$URL" -c "SELECT id FROM users WHERE name = 'dave'")"
check "a robot token made on the target" "$BERTH_BIN" token create --name ci2 --config "$T/target.conf" \
	--scope 'repository:team/*:pull' --ttl 1d
check_eq "the repository ARN (registry id) is the source's" "$ARN" "$("${ECR[@]}" --endpoint-url "http://$R" \
	describe-repositories --repository-names team/app --query 'repositories[0].repositoryArn' --output text)"
check_eq "team/big is still IMMUTABLE" IMMUTABLE "$("${ECR[@]}" --endpoint-url "http://$R" describe-repositories \
	--repository-names team/big --query 'repositories[0].imageTagMutability' --output text)"
check_eq "team/app's resource tag survived" platform "$("${ECR[@]}" --endpoint-url "http://$R" \
	list-tags-for-resource --resource-arn "$ARN" --query "tags[?Key=='owner'].Value" --output text)"
berth_stop
check "fsck on the target is clean" "$BERTH_BIN" fsck --config "$T/target.conf"

########################################################################
log "5. refusals: a corrupt source blob, a target of another registry"
BAD=$T/bad
cp -a "$SRC" "$BAD"
F=$(find "$BAD/blobs" -type f -size +1k | head -n 1)
chmod u+w "$F"
printf 'X' | dd of="$F" bs=1 seek=100 conv=notrunc status=none
URL2=$("$ROOT/scripts/pg" createdb "$PGDIR" corrupt)
sed "s|^metadata = .*|metadata = $URL2|; s|^data = .*|data = $T/tgt2|; s|s3://berth-migrate/reg|s3://berth-migrate/bad|" \
	"$T/target.conf" >"$T/bad.conf"
mkdir -p "$T/tgt2"
OUT=$("$BERTH_BIN" migrate --from "$BAD" --to-config "$T/bad.conf" 2>&1) && rc=0 || rc=$?
check_eq "a corrupt blob stops the run" 1 "$rc"
check_contains "saying which blob" "sha256:$(basename "$F") in the source is corrupt" "$OUT"
# shellcheck disable=SC2016  # a JMESPath literal, not a shell expansion
check_eq "its object was not stored" 0 "$("${S3[@]}" list-objects-v2 --bucket berth-migrate \
	--prefix "bad/blobs/sha256/$(basename "$(dirname "$F")")/$(basename "$F")" --query 'length(Contents || `[]`)' \
	--output text)"
OTHER=$T/other
mkdir -p "$OTHER"
"$BERTH_BIN" user add carol --data "$OTHER" --password-stdin <<<"carol-passwd-01"
OUT=$("$BERTH_BIN" migrate --from "$OTHER" --to-config "$T/target.conf" 2>&1) && rc=0 || rc=$?
check_eq "a target holding another registry's data is refused" 1 "$rc"
check_contains "saying so" "another registry's data" "$OUT"
check "with --force it is copied into anyway" "$BERTH_BIN" migrate --from "$OTHER" --to-config "$T/target.conf" --force

########################################################################
log "6. any combination: into another data directory (SQLite + blobs on disk)"
printf 'data = %s\n' "$T/plain" >"$T/plain.conf"
mkdir -p "$T/plain"
check "migrate into a SQLite + disk target" "$BERTH_BIN" migrate --from "$SRC" --to-config "$T/plain.conf"
check "fsck on it is clean" "$BERTH_BIN" fsck --data "$T/plain"
check_eq "its keys are the source's files" "$(cd "$SRC/keys" && sha256sum ./* | sort)" \
	"$(cd "$T/plain/keys" && sha256sum ./* | sort)"
berth_start "$T/plain" --access-log off
check "skopeo pulls team/idx:multi from it" skopeo --insecure-policy copy -q --all --src-tls-verify=false \
	--src-creds alice:alice-passwd-01 "docker://$REGISTRY/team/idx:multi" "dir:$T/plain-idx"
check "byte-identical" diff -r "$T/before-idx-multi" "$T/plain-idx"
berth_stop
finish
