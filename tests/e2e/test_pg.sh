#!/usr/bin/env bash
# metadata = postgresql (issue #12), against a real PostgreSQL started by scripts/pg:
#   1. the db.h statement API on PostgreSQL (the storage_db test binary with BERTH_TEST_PG);
#   2. the whole OCI API suite (test_api.sh), the quota, events, lifecycle (GC killed mid-run included) and ECR
#      (AWS CLI, boto3) suites with berth's metadata in PostgreSQL, and the S3 suite (two nodes on Ceph RGW from
#      scripts/ceph: an upload split across them, skopeo, GC, fsck, kill -9) with its metadata in PostgreSQL;
#   3. two `berth serve` nodes on one PostgreSQL database (blobs in one shared data directory here; on S3 in 2.): users, grants and robot tokens made once are seen by both; a token issued by node A is
#      accepted by node B; a push through A (monolithic and chunked blobs, manifest, tag, referrer) is pulled
#      byte-identical through B; a mount and a delete through B are seen by A; online GC from the CLI reclaims the
#      deleted image's blobs and fsck is clean; a signing-key rotation reaches both; two nodes starting at once on
#      an empty database create one first admin.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/server.sh"
root=$(cd "$here/../.." && pwd)

e2e_tmpdir T
PGDIR=$T/pg
mkdir -p "$PGDIR"
URL=$("$root/scripts/pg" start "$PGDIR")
on_exit "$root/scripts/pg" stop "$PGDIR"
check_contains "scripts/pg prints a connection string" "postgresql://postgres@127.0.0.1:" "$URL"
newdb() { "$root/scripts/pg" createdb "$PGDIR" "$1"; }

log "1. the statement API on PostgreSQL"
DBTEST=${BERTH_DB_TEST:-$root/build/tests/storage/storage_db}
[ -x "$DBTEST" ] || DBTEST=$(find "$root/build" -name storage_db -type f -perm -u+x | head -n 1)
check "storage_db passes on PostgreSQL and SQLite" env BERTH_TEST_PG="$(newdb dbapi)" "$DBTEST"

log "2. the OCI API, quota, events, lifecycle, ECR and S3 suites with metadata in PostgreSQL"
check "test_api.sh passes on PostgreSQL" env BERTH_METADATA="$(newdb api)" bash "$here/test_api.sh"
check "test_quota.sh passes on PostgreSQL" env BERTH_METADATA="$(newdb quota)" bash "$here/test_quota.sh"
check "test_events.sh passes on PostgreSQL" env BERTH_METADATA="$(newdb events)" bash "$here/test_events.sh"
check "test_lifecycle.sh passes on PostgreSQL" env BERTH_METADATA="$(newdb lifecycle)" bash "$here/test_lifecycle.sh"
check "test_ecr.sh passes on PostgreSQL" env BERTH_METADATA="$(newdb ecr)" bash "$here/test_ecr.sh"
# the scale-out target: metadata in PostgreSQL, blobs in S3 (real Ceph RGW from scripts/ceph), two nodes
check "test_s3.sh (two nodes, S3 on Ceph RGW) passes with the metadata in PostgreSQL" \
	env BERTH_METADATA="$(newdb s3)" bash "$here/test_s3.sh"

log "3. two nodes on one PostgreSQL"
# both start at once on an empty database: both serve, and exactly one creates the first admin
FIRST=$(newdb first)
P1=$(free_port) P2=$(free_port)
BERTH_METADATA=$FIRST "$BERTH_BIN" serve --data "$T/f1" --listen "127.0.0.1:$P1" >"$T/f1.log" 2>&1 &
F1=$!
BERTH_METADATA=$FIRST "$BERTH_BIN" serve --data "$T/f2" --listen "127.0.0.1:$P2" >"$T/f2.log" 2>&1 &
F2=$!
up() { for _ in $(seq 1 100); do [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/v2/")" = 401 ] && return 0; sleep 0.1; done; return 1; }
check "node 1 of a simultaneous first start serves" up "$P1"
check "node 2 of a simultaneous first start serves" up "$P2"
check_eq "exactly one of them created the first admin" 1 "$(cat "$T/f1.log" "$T/f2.log" | grep -c 'created admin user')"
kill "$F1" "$F2"
wait "$F1" "$F2" 2>/dev/null || true

export BERTH_METADATA=$URL
DATA=$T/data
mkdir -p "$DATA"
B() { "$BERTH_BIN" "$@" --data "$DATA"; }
check "user add alice" B user add alice --password-stdin <<<"alice-passwd-01"
check "grant alice pull,push,delete on team/*" B grant add user:alice pull,push,delete 'team/*'
CI=$(B token create --name ci --scope 'repository:team/*:pull,push' --ttl 1d | tail -n 1 | awk '{print $NF}')
check_fail "nothing of the metadata went to berth.db" test -s "$DATA/berth.db"

berth_start "$DATA"
A=$REGISTRY A_PID=$BERTH_PID
berth_start "$DATA"
BB=$REGISTRY B_PID=$BERTH_PID
on_exit kill "$A_PID" "$B_PID"
check_fail "the signing key is not a file on disk" test -e "$DATA/keys/jwt-current.key"

token() { # NODE CREDS SCOPE -> bearer token issued by NODE
	curl -s -u "$2" "http://$1/token?service=berth&scope=$3" | jq -r .token
}
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
jwt_kid() { # TOKEN -> the kid of its header
	/usr/bin/python3 -c 'import sys,base64,json; p=sys.argv[1].split(".")[0]; print(json.loads(base64.urlsafe_b64decode(p+"="*(-len(p)%4)))["kid"])' "$1"
}
SCOPE='repository:team/app:pull,push,delete'
TA=$(token "$A" alice:alice-passwd-01 "$SCOPE")
check_contains "node A issues a token" "." "$TA"
AUTH=(-H "Authorization: Bearer $TA")
check_eq "node B accepts node A's token" 404 "$(code "${AUTH[@]}" "http://$BB/v2/team/app/manifests/latest")"
BAD=$(/usr/bin/python3 -c 'import sys; t=sys.argv[1]; c=t[-5]; print(t[:-5]+("B" if c=="A" else "A")+t[-4:])' "$TA")
check_eq "node B refuses that token with one signature character changed" 401 \
	"$(code -H "Authorization: Bearer $BAD" "http://$BB/v2/team/app/manifests/latest")"

# a push through A: one monolithic blob, one chunked, a config, a manifest and a referrer
head -c 100000 /dev/urandom >"$T/layer1"
head -c 300000 /dev/urandom >"$T/layer2"
printf '{"architecture":"amd64","os":"linux"}' >"$T/config"
sha() { echo "sha256:$(sha256sum "$1" | cut -c1-64)"; }
L1=$(sha "$T/layer1") L2=$(sha "$T/layer2") CF=$(sha "$T/config")
check_eq "monolithic blob upload via A" 201 "$(code "${AUTH[@]}" -X POST -H 'Content-Type: application/octet-stream' \
	--data-binary @"$T/layer1" "http://$A/v2/team/app/blobs/uploads/?digest=$L1")"
check_eq "config upload via A" 201 "$(code "${AUTH[@]}" -X POST -H 'Content-Type: application/octet-stream' \
	--data-binary @"$T/config" "http://$A/v2/team/app/blobs/uploads/?digest=$CF")"
LOC=$(curl -s -D - -o /dev/null "${AUTH[@]}" -X POST "http://$A/v2/team/app/blobs/uploads/" | tr -d '\r' |
	awk -F': ' 'tolower($1)=="location"{print $2}')
head -c 200000 "$T/layer2" >"$T/c1"
tail -c 100000 "$T/layer2" >"$T/c2"
LOC2=$(curl -s -D - -o /dev/null "${AUTH[@]}" -X PATCH -H 'Content-Type: application/octet-stream' \
	-H 'Content-Range: 0-199999' --data-binary @"$T/c1" "http://$A$LOC" | tr -d '\r' |
	awk -F': ' 'tolower($1)=="location"{print $2}')
check_eq "chunked upload via A: second chunk" 202 "$(code "${AUTH[@]}" -X PATCH -H 'Content-Type: application/octet-stream' \
	-H 'Content-Range: 200000-299999' --data-binary @"$T/c2" "http://$A$LOC2")"
sep='?'
case $LOC2 in *\?*) sep='&' ;; esac
check_eq "chunked upload via A: completed" 201 "$(code "${AUTH[@]}" -X PUT "http://$A$LOC2${sep}digest=$L2")"
size() { stat -c %s "$1"; }
cat >"$T/manifest" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"$CF","size":$(size "$T/config")},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"$L1","size":100000},{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"$L2","size":300000}]}
EOF
MD=$(sha "$T/manifest")
check_eq "manifest PUT via A" 201 "$(code "${AUTH[@]}" -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
	--data-binary @"$T/manifest" "http://$A/v2/team/app/manifests/v1")"

curl -s "${AUTH[@]}" -H 'Accept: application/vnd.oci.image.manifest.v1+json' -o "$T/got" \
	"http://$BB/v2/team/app/manifests/v1"
check "the manifest pulled by tag via B is byte-identical" cmp "$T/manifest" "$T/got"
curl -s -L "${AUTH[@]}" -o "$T/got1" "http://$BB/v2/team/app/blobs/$L1"
check "the monolithic blob pulled via B is byte-identical" cmp "$T/layer1" "$T/got1"
curl -s -L "${AUTH[@]}" -o "$T/got2" "http://$BB/v2/team/app/blobs/$L2"
check "the chunked blob pulled via B is byte-identical" cmp "$T/layer2" "$T/got2"
check_contains "tags list via B" '"v1"' "$(curl -s "${AUTH[@]}" "http://$BB/v2/team/app/tags/list")"

# a referrer pushed through A, listed through B
printf '{}' >"$T/empty"
EM=$(sha "$T/empty")
code "${AUTH[@]}" -X POST --data-binary @"$T/empty" "http://$A/v2/team/app/blobs/uploads/?digest=$EM" >/dev/null
cat >"$T/sig" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.sig","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"$EM","size":2},"layers":[{"mediaType":"application/vnd.oci.empty.v1+json","digest":"$EM","size":2}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"$MD","size":$(size "$T/manifest")}}
EOF
SD=$(sha "$T/sig")
check_eq "referrer PUT via A" 201 "$(code "${AUTH[@]}" -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
	--data-binary @"$T/sig" "http://$A/v2/team/app/manifests/$SD")"
check_contains "referrers via B list it" "$SD" "$(curl -s "${AUTH[@]}" "http://$BB/v2/team/app/referrers/$MD")"

# a mount through B of a blob pushed through A, seen by A
T2=$(token "$BB" alice:alice-passwd-01 'repository:team/other:pull,push&scope=repository:team/app:pull')
check_eq "cross-repository mount via B" 201 "$(code -H "Authorization: Bearer $T2" -X POST \
	"http://$BB/v2/team/other/blobs/uploads/?mount=$L1&from=team/app")"
check_eq "the mounted blob is served by A" 200 "$(code -I -H "Authorization: Bearer $T2" "http://$A/v2/team/other/blobs/$L1")"

# the robot token made by the CLI before either node started works on both
TCI_A=$(token "$A" "ci:$CI" 'repository:team/app:pull')
TCI_B=$(token "$BB" "ci:$CI" 'repository:team/app:pull')
check_eq "robot token on A" 200 "$(code -H "Authorization: Bearer $TCI_A" "http://$A/v2/team/app/manifests/v1")"
check_eq "robot token on B" 200 "$(code -H "Authorization: Bearer $TCI_B" "http://$BB/v2/team/app/manifests/v1")"

# a delete through B is seen by A
check_eq "manifest DELETE via B" 202 "$(code "${AUTH[@]}" -X DELETE "http://$BB/v2/team/app/manifests/$MD")"
check_eq "A no longer serves it" 404 "$(code "${AUTH[@]}" "http://$A/v2/team/app/manifests/$MD")"
check_eq "nor its referrer (deleted with its subject)" 404 "$(code "${AUTH[@]}" "http://$A/v2/team/app/manifests/$SD")"

# online GC from the CLI while both nodes serve: it sees the delete made through B, and fsck agrees afterwards
check "berth gc --grace 0 with the metadata in PostgreSQL" B gc --grace 0
check_fail "the layer only the deleted image used is gone from disk" test -e "$DATA/blobs/sha256/${L2:7:2}/${L2:7}"
check_eq "and node A no longer serves it" 404 "$(code -I "${AUTH[@]}" "http://$A/v2/team/app/blobs/$L2")"
check "berth fsck finds nothing" B fsck

# rotation: a new key made by the CLI reaches both nodes; a token signed with the previous key still verifies
check "token rotate-key" B token rotate-key
fresh=""
for _ in $(seq 1 100); do # each node re-reads the keys at most every KEYS_STAMP_POLL_MS
	fresh=$(token "$A" alice:alice-passwd-01 "$SCOPE")
	[ "$(jwt_kid "$fresh")" != "$(jwt_kid "$TA")" ] && break
	sleep 0.1
done
check_fail "node A signs with the new key" test "$(jwt_kid "$fresh")" = "$(jwt_kid "$TA")"
check_eq "node B accepts A's token signed with the new key" 404 \
	"$(code -H "Authorization: Bearer $fresh" "http://$BB/v2/team/app/manifests/latest")"
check_eq "node B still accepts the token signed with the previous key" 404 \
	"$(code "${AUTH[@]}" "http://$BB/v2/team/app/manifests/latest")"

finish
