#!/usr/bin/env bash
# shellcheck disable=SC1091,SC2317,SC2034  # sourced libs; helpers are called via check; E2E_FINISHED is lib.sh's
# Out of space and an unavailable database on the scale-out backends (issue 12): one `berth serve` node on PostgreSQL
# (scripts/pg) + Ceph RGW (scripts/ceph), driven by curl (exact statuses and bodies) and skopeo (a real client).
#   1. PostgreSQL out of disk: the registry's database lives in a tablespace on a 40 MiB tmpfs, filled to the brim.
#      A manifest PUT and a chunked PATCH whose rows need new pages (SQLSTATE 53100) answer 507 with an OCI error
#      body; the session keeps what it had acknowledged; pulls (curl and skopeo), HEAD, tags/list and _catalog keep
#      working; once space is freed the same pushes succeed without a restart, and skopeo pushes again.
#   2. RGW refusing writes: a bucket quota (radosgw-admin) makes RGW answer QuotaExceeded.  Monolithic and chunked
#      blob pushes answer 507 with an OCI error body, skopeo's push fails (no hang), nothing half-stored is visible,
#      reads keep working; once the quota is lifted the same pushes succeed (the session resumes where it was).
#   3. PostgreSQL stopped under the running node (pg_ctl stop): reads and writes answer 503 UNAVAILABLE with an OCI
#      error body at once (no hang, no crash), also 40 concurrent reads that reach every worker's connection, the
#      ECR API answers 503 ServerException, and skopeo fails cleanly; PostgreSQL started again (same port): the
#      node reconnects by itself, every request works, skopeo pushes and pulls, without restarting the node.
#   4. PostgreSQL's host gone from the network (iptables drops its port on loopback: no reset, no answer): reads,
#      writes and /readyz answer 503 after the connection's own timeouts instead of hanging for minutes; once the
#      route is back the node serves again by itself.
#   Then fsck is clean and every acknowledged image pulls byte-identical.
# Needs root (mount -t tmpfs, iptables); the mount and the rules are removed at exit.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
. "$HERE/server.sh"
. "$ROOT/scripts/lib/images.sh"

[ "$(id -u)" = 0 ] || {
	echo "test_scaleout_faults.sh needs root to mount a tmpfs" >&2
	E2E_FINISHED=1
	exit 2
}
e2e_tmpdir T
log "starting PostgreSQL and Ceph with radosgw"
mkdir -p "$T/ts" "$T/A" "$T/cli"
export BERTH_E2E_BACKEND=pg-s3
on_exit berth_backend_down "$T"
berth_backend_up "$T"
export CEPH_CONF # radosgw-admin
PG_URL=$BERTH_METADATA
PG_PORT=$(cat "$T/pg/port")
BUCKET=$E2E_BUCKET

# the database in a tablespace on a small tmpfs (its WAL stays in the cluster's directory, as on a real server whose
# data volume fills)
mount -t tmpfs -o size=40m tmpfs "$T/ts"
on_exit umount -l "$T/ts"
chown postgres "$T/ts"
psql -q "$PG_URL" -c "CREATE TABLESPACE small LOCATION '$T/ts'" -c "CREATE DATABASE full_db TABLESPACE small"
DB_URL=${PG_URL%/berth}/full_db
export BERTH_METADATA=$DB_URL
berth_start "$T/A" --no-auth --access-log off
on_exit berth_kill
A=$REGISTRY
OCI_M=application/vnd.oci.image.manifest.v1+json
SK=(skopeo --command-timeout 120s)

sha() { echo "sha256:$(sha256sum "$1" | cut -c1-64)"; }
url() { echo "http://$A$1"; }
# req OUT CURL-ARGS...: the body into OUT, prints the status ("000": no answer within 60 s)
req() {
	local out=$1
	shift
	curl -s -o "$out" -w '%{http_code}' --max-time 60 "$@" || true
}
getsha() { curl -sf --max-time 30 -H "Accept: $OCI_M" "$(url "$1")" | sha256sum | sed 's/^/sha256:/; s/ .*//'; }
# oci_error FILE [CODE]: FILE is an OCI error body (with that code)
oci_error() {
	python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["errors"][0]; assert e["code"] and e["message"]; assert len(sys.argv) < 3 or e["code"] == sys.argv[2], e' "$@"
}
location() { tr -d '\r' <"$1" | awk -F': ' 'tolower($1)=="location"{print $2}'; }
range_of() { curl -s -o /dev/null -D - "$(url "$1")" | tr -d '\r' | awk -F': ' 'tolower($1)=="range"{print $2}'; }
push_mono() { req "$T/out" -X POST --data-binary @"$2" "$(url "/v2/$1/blobs/uploads/?digest=$(sha "$2")")"; }
put_manifest() { req "$T/out" -X PUT -H "Content-Type: $OCI_M" --data-binary @"$3" "$(url "/v2/$1/manifests/$2")"; }
# manifest CONFIG LAYER OUT [ANNOTATION-BYTES]: an OCI image manifest (with an annotation that large)
manifest() {
	python3 - "$@" <<'EOF'
import hashlib, json, os, sys
c, l, out = sys.argv[1:4]
d = lambda f: "sha256:" + hashlib.sha256(open(f, "rb").read()).hexdigest()
m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
     "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": d(c), "size": os.path.getsize(c)},
     "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d(l), "size": os.path.getsize(l)}]}
if len(sys.argv) > 4:
    m["annotations"] = {"big": os.urandom(int(sys.argv[4]) // 2).hex()}  # random: no compression shrinks it
open(out, "w").write(json.dumps(m))
EOF
}
# reads_work TAG-LABEL: the acknowledged image (v1) reads back through curl, and skopeo pulls it
reads_work() {
	check_eq "$1: manifest v1 pulls byte-identical" "$(sha "$T/m1")" "$(getsha /v2/f/app/manifests/v1)"
	check_eq "$1: the layer pulls byte-identical" "$(sha "$T/layer")" "$(getsha "/v2/f/app/blobs/$(sha "$T/layer")")"
	check_eq "$1: HEAD of the layer" 200 "$(req /dev/null -I "$(url "/v2/f/app/blobs/$(sha "$T/layer")")")"
	check_contains "$1: tags/list" '"v1"' "$(curl -s --max-time 30 "$(url /v2/f/app/tags/list)")"
	check_contains "$1: _catalog" '"f/app"' "$(curl -s --max-time 30 "$(url /v2/_catalog)")"
	rm -rf "$T/pulled"
	check "$1: skopeo pulls the image pushed before" "${SK[@]}" copy --quiet --src-tls-verify=false \
		"docker://$A/f/sk:v1" "oci:$T/pulled:latest"
	check_eq "$1: ... the same manifest" "$(img_manifest_digest "$T/img")" "$(img_manifest_digest "$T/pulled" 2>&1)"
}

# ---- acknowledged before anything fails ----
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$T/config"
head -c 1000000 /dev/urandom >"$T/layer"
check_eq "config pushed" 201 "$(push_mono f/app "$T/config")"
check_eq "layer pushed" 201 "$(push_mono f/app "$T/layer")"
manifest "$T/config" "$T/layer" "$T/m1"
check_eq "manifest v1 pushed" 201 "$(put_manifest f/app v1 "$T/m1")"
img_busybox "$T/img" amd64 "faults $(date +%s%N)"
check "skopeo pushes an image" "${SK[@]}" copy --quiet --dest-tls-verify=false --preserve-digests \
	"oci:$T/img:latest" "docker://$A/f/sk:v1"

########################################################################
log "1. PostgreSQL out of disk (its tablespace on a full tmpfs)"
head -c 600000 /dev/urandom >"$T/chunked"
head -c 300000 "$T/chunked" >"$T/c1"
tail -c +300001 "$T/chunked" >"$T/c2"
req /dev/null -X POST -D "$T/h" "$(url /v2/f/app/blobs/uploads/)" >/dev/null
LOC=$(location "$T/h")
check_eq "first chunk of a session (its bytes are kept in PostgreSQL until a part is full)" 202 \
	"$(req /dev/null -X PATCH -H 'Content-Range: 0-299999' --data-binary @"$T/c1" "$(url "$LOC")")"
manifest "$T/config" "$T/layer" "$T/mbig" 3000000
dd if=/dev/zero of="$T/ts/fill" bs=64k 2>/dev/null || true
check_eq "the tablespace's filesystem is full" 0 "$(df --output=avail -k "$T/ts" | tail -n 1 | tr -d ' ')"
c=$(put_manifest f/app big "$T/mbig")
check_eq "db full: a 3 MB manifest PUT (SQLSTATE 53100) answers 507" 507 "$c"
check "db full: ... with an OCI error body" oci_error "$T/out"
c=$(req "$T/out" -X PATCH -H 'Content-Range: 300000-599999' --data-binary @"$T/c2" "$(url "$LOC")")
check_eq "db full: a PATCH whose state no longer fits answers 507" 507 "$c"
check "db full: ... with an OCI error body" oci_error "$T/out"
check_eq "db full: the session still holds what was acknowledged" "0-299999" "$(range_of "$LOC")"
reads_work "db full"
check_eq "db full: the refused manifest is not visible" 404 "$(req /dev/null "$(url /v2/f/app/manifests/big)")"
grep -q "No space left\|could not extend" "$T/pg/server.log" && x=yes || x=no
check_eq "db full: PostgreSQL did report the full disk" yes "$x"
rm -f "$T/ts/fill"
check_eq "db freed: the big manifest now pushes" 201 "$(put_manifest f/app big "$T/mbig")"
check_eq "db freed: ... and reads back byte-identical" "$(sha "$T/mbig")" "$(getsha /v2/f/app/manifests/big)"
check_eq "db freed: the session resumes" 202 \
	"$(req /dev/null -X PATCH -H 'Content-Range: 300000-599999' --data-binary @"$T/c2" "$(url "$LOC")")"
check_eq "db freed: the session completes" 201 "$(req /dev/null -X PUT "$(url "$LOC?digest=$(sha "$T/chunked")")")"
check_eq "db freed: the chunked blob reads back whole" "$(sha "$T/chunked")" \
	"$(getsha "/v2/f/app/blobs/$(sha "$T/chunked")")"
img_busybox "$T/img2" amd64 "faults db freed $(date +%s%N)"
check "db freed: skopeo pushes a new image" "${SK[@]}" copy --quiet --dest-tls-verify=false --preserve-digests \
	"oci:$T/img2:latest" "docker://$A/f/sk:v2"

########################################################################
log "2. RGW refusing writes (bucket quota exceeded)"
head -c 2000000 /dev/urandom >"$T/refused"
head -c $((12 * 1024 * 1024)) /dev/urandom >"$T/big"
head -c $((6 * 1024 * 1024)) "$T/big" >"$T/b1"
tail -c +$((6 * 1024 * 1024 + 1)) "$T/big" >"$T/b2"
req /dev/null -X POST -D "$T/h" "$(url /v2/f/app/blobs/uploads/)" >/dev/null
LOC=$(location "$T/h")
check_eq "first 6 MiB of a session (a multipart upload part) before the quota" 202 \
	"$(req /dev/null -X PATCH -H "Content-Range: 0-$((6 * 1024 * 1024 - 1))" --data-binary @"$T/b1" "$(url "$LOC")")"
radosgw-admin quota set --quota-scope=bucket --bucket="$BUCKET" --max-size=1 >/dev/null 2>&1
radosgw-admin quota enable --quota-scope=bucket --bucket="$BUCKET" >/dev/null 2>&1
for _ in $(seq 1 50); do # RGW takes the bucket's new quota at once or within a moment (its bucket info cache)
	c=$(push_mono f/app "$T/refused")
	[ "$c" = 201 ] || break
	head -c 2000000 /dev/urandom >"$T/refused"
	sleep 0.2
done
check_eq "quota: a monolithic blob push answers 507" 507 "$c"
check "quota: ... with an OCI error body" oci_error "$T/out"
check_eq "quota: the refused blob is not visible" 404 "$(req /dev/null -I "$(url "/v2/f/app/blobs/$(sha "$T/refused")")")"
c=$(req "$T/out" -X PATCH -H "Content-Range: $((6 * 1024 * 1024))-$((12 * 1024 * 1024 - 1))" \
	--data-binary @"$T/b2" "$(url "$LOC")")
case $c in
507)
	check "quota: the chunked PATCH's 507 carries an OCI error body" oci_error "$T/out"
	check_eq "quota: the session still holds what was acknowledged" "0-$((6 * 1024 * 1024 - 1))" "$(range_of "$LOC")"
	;;
202) # RGW checked the quota only at the completion: the PUT below must be refused then
	check_eq "quota: the session holds both chunks" "0-$((12 * 1024 * 1024 - 1))" "$(range_of "$LOC")" ;;
*) check_eq "quota: the chunked PATCH answers 507 (or 202 if RGW checks at completion)" "507|202" "$c" ;;
esac
PATCHED=$c
if [ "$c" = 202 ]; then
	c=$(req "$T/out" -X PUT "$(url "$LOC?digest=$(sha "$T/big")")")
	check_eq "quota: completing the chunked upload answers 507" 507 "$c"
	check "quota: ... with an OCI error body" oci_error "$T/out"
fi
rm -rf "$T/img3"
img_busybox "$T/img3" amd64 "faults quota $(date +%s%N)"
check_fail "quota: skopeo's push fails (and returns)" "${SK[@]}" copy --quiet --dest-tls-verify=false \
	--preserve-digests --retry-times 0 "oci:$T/img3:latest" "docker://$A/f/sk:v3"
reads_work "quota"
radosgw-admin quota disable --quota-scope=bucket --bucket="$BUCKET" >/dev/null 2>&1
for _ in $(seq 1 50); do
	c=$(push_mono f/app "$T/refused")
	[ "$c" = 507 ] || break
	sleep 0.2
done
check_eq "quota lifted: the refused blob now pushes" 201 "$c"
check_eq "quota lifted: ... and reads back whole" "$(sha "$T/refused")" "$(getsha "/v2/f/app/blobs/$(sha "$T/refused")")"
if [ "$PATCHED" = 507 ]; then
	check_eq "quota lifted: the session resumes" 202 \
		"$(req /dev/null -X PATCH -H "Content-Range: $((6 * 1024 * 1024))-$((12 * 1024 * 1024 - 1))" \
			--data-binary @"$T/b2" "$(url "$LOC")")"
	check_eq "quota lifted: the session completes" 201 "$(req /dev/null -X PUT "$(url "$LOC?digest=$(sha "$T/big")")")"
else # the refused completion ended the session (its digest was final): the client pushes the blob again
	check_eq "quota lifted: the blob pushes again" 201 "$(push_mono f/app "$T/big")"
fi
check_eq "quota lifted: the 12 MiB blob reads back whole" "$(sha "$T/big")" "$(getsha "/v2/f/app/blobs/$(sha "$T/big")")"
check "quota lifted: skopeo pushes" "${SK[@]}" copy --quiet --dest-tls-verify=false --preserve-digests \
	"oci:$T/img3:latest" "docker://$A/f/sk:v3"

########################################################################
log "3. PostgreSQL stopped under the running node, then started again"
"$ROOT/scripts/pg" stop "$T/pg"
check_eq "pg down: a manifest GET answers 503" 503 "$(req "$T/out" -H "Accept: $OCI_M" "$(url /v2/f/app/manifests/v1)")"
check "pg down: ... with an OCI error body (UNAVAILABLE)" oci_error "$T/out" UNAVAILABLE
check_eq "pg down: a blob push answers 503" 503 "$(push_mono f/app "$T/config")"
check "pg down: ... with an OCI error body (UNAVAILABLE)" oci_error "$T/out" UNAVAILABLE
check_eq "pg down: a manifest PUT answers 503" 503 "$(put_manifest f/app v9 "$T/m1")"
check "pg down: ... with an OCI error body (UNAVAILABLE)" oci_error "$T/out" UNAVAILABLE
check_fail "pg down: skopeo inspect fails (and returns)" "${SK[@]}" inspect --tls-verify=false --retry-times 0 \
	"docker://$A/f/sk:v1"
check_eq "pg down: /readyz answers 503 (a load balancer takes the node out)" 503 "$(req "$T/out" "$(url /readyz)")"
check_contains "pg down: ... saying why" "database not writable (UNAVAILABLE)" "$(cat "$T/out")"
# every worker thread's connection meets the outage: 8 rounds of concurrent reads of each kind, each refused with 503
# (a connection that failed a statement while PostgreSQL was away must work again once it is back, by itself)
pids=()
for i in 1 2 3 4 5 6 7 8; do
	for p in "manifests/v1" "blobs/$(sha "$T/layer")" "tags/list"; do
		req /dev/null -H "Accept: $OCI_M" "$(url "/v2/f/app/$p")" >"$T/down.$i.${p%%/*}" &
		pids+=($!)
	done
	req /dev/null -I "$(url "/v2/f/app/blobs/$(sha "$T/layer")")" >"$T/down.$i.head" &
	pids+=($!)
	req /dev/null "$(url /v2/_catalog)" >"$T/down.$i.catalog" &
	pids+=($!)
done
wait "${pids[@]}" # not a bare wait: the node itself is a child of this shell
check_eq "pg down: 40 concurrent reads (manifest, blob GET and HEAD, tags, catalog) all answer 503" "503 x40" \
	"$(awk 1 "$T"/down.* | sort | uniq -c | awk '{print $2 " x" $1}' | paste -sd ' ')"
check_eq "pg down: the ECR API answers 503 ServerException (AWS SDKs retry it)" "503 ServerException" \
	"$(curl -s -o "$T/out" -w '%{http_code}' --max-time 60 -X POST "$(url /)" -d '{}' \
		-H 'X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.DescribeRepositories' \
		-H 'Content-Type: application/x-amz-json-1.1') $(jq -r .__type "$T/out" 2>&1)"
check "pg down: the node is still running" kill -0 "$BERTH_PID"
"$ROOT/scripts/pg" start "$T/pg" "$PG_PORT" >/dev/null
check_eq "pg up again: the first manifest GET works (no node restart)" "$(sha "$T/m1")" "$(getsha /v2/f/app/manifests/v1)"
check_eq "pg up again: a manifest PUT works" 201 "$(put_manifest f/app v9 "$T/m1")"
check_eq "pg up again: /readyz answers 200" 200 "$(req /dev/null "$(url /readyz)")"
reads_work "pg up again"
rm -rf "$T/img4"
img_busybox "$T/img4" amd64 "faults pg again $(date +%s%N)"
check "pg up again: skopeo pushes" "${SK[@]}" copy --quiet --dest-tls-verify=false --preserve-digests \
	"oci:$T/img4:latest" "docker://$A/f/sk:v4"
# a restart while no request is in flight: the idle connections are gone, the next statements reconnect and retry
"$ROOT/scripts/pg" stop "$T/pg"
"$ROOT/scripts/pg" start "$T/pg" "$PG_PORT" >/dev/null
c=0
for _ in 1 2 3 4 5 6 7 8; do
	[ "$(req /dev/null -H "Accept: $OCI_M" "$(url /v2/f/app/manifests/v1)")" = 200 ] && c=$((c + 1))
done
check_eq "pg restarted between requests: every request succeeds (the lost connections are retried)" 8 "$c"
check_eq "pg restarted between requests: a push succeeds" 201 "$(put_manifest f/app v10 "$T/m1")"

########################################################################
log "4. PostgreSQL's host gone from the network (its port black-holed with iptables: no reset, no answer)"
# every packet to and from PostgreSQL's port on loopback is dropped, as when its host crashes or a partition cuts
# it off; the node's connections and reconnects must give up by themselves (tcp_user_timeout, connect_timeout:
# defaults.h) and answer 503, where libpq's defaults would hold each request for minutes (curl gives up after 120 s)
command -v iptables >/dev/null || "$ROOT/scripts/deps" test >/dev/null # (scripts/deps installs it)
blackhole() { # blackhole -I|-D
	iptables -w "$1" INPUT -i lo -p tcp --dport "$PG_PORT" -j DROP
	iptables -w "$1" INPUT -i lo -p tcp --sport "$PG_PORT" -j DROP
}
unblock() { while blackhole -D 2>/dev/null; do :; done; }
blackhole -I
on_exit unblock
c=$(curl -s -o "$T/out" -w '%{http_code}' --max-time 120 -H "Accept: $OCI_M" "$(url /v2/f/app/manifests/v1)" || true)
check_eq "no route: a manifest GET answers 503 (the lost connection times out instead of hanging)" 503 "$c"
check "no route: ... with an OCI error body (UNAVAILABLE)" oci_error "$T/out" UNAVAILABLE
pids=()
for i in 1 2 3 4 5 6 7 8; do
	req /dev/null -H "Accept: $OCI_M" "$(url /v2/f/app/manifests/v1)" >"$T/hole.$i.manifest" &
	pids+=($!)
	req /dev/null -I "$(url "/v2/f/app/blobs/$(sha "$T/layer")")" >"$T/hole.$i.head" &
	pids+=($!)
done
wait "${pids[@]}"
check_eq "no route: 16 concurrent reads all answer 503" "503 x16" \
	"$(awk 1 "$T"/hole.* | sort | uniq -c | awk '{print $2 " x" $1}' | paste -sd ' ')"
check_eq "no route: a manifest PUT answers 503" 503 "$(curl -s -o "$T/out" -w '%{http_code}' --max-time 120 -X PUT \
	-H "Content-Type: $OCI_M" --data-binary @"$T/m1" "$(url /v2/f/app/manifests/v11)" || true)"
check_eq "no route: /readyz answers 503" 503 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 120 "$(url /readyz)" || true)"
check "no route: the node is still running" kill -0 "$BERTH_PID"
unblock
c=0
for _ in $(seq 1 60); do # a node that met a timeout waits a moment (BERTH_PG_RECONNECT_BACKOFF_MS) before its next try
	c=$(req /dev/null -H "Accept: $OCI_M" "$(url /v2/f/app/manifests/v1)")
	[ "$c" = 200 ] && break
	sleep 1
done
check_eq "route back: the node serves again by itself (no restart)" 200 "$c"
reads_work "route back"
check_eq "route back: a manifest PUT works" 201 "$(put_manifest f/app v11 "$T/m1")"
rm -rf "$T/img5"
img_busybox "$T/img5" amd64 "faults route back $(date +%s%N)"
check "route back: skopeo pushes" "${SK[@]}" copy --quiet --dest-tls-verify=false --preserve-digests \
	"oci:$T/img5:latest" "docker://$A/f/sk:v5"

########################################################################
log "5. at the end: fsck clean, everything acknowledged intact"
OUT=$(BERTH_METADATA=$DB_URL "$BERTH_BIN" fsck --data "$T/cli" 2>&1) && rc=0 || rc=$?
check_eq "berth fsck (PostgreSQL + bucket): clean" 0 "$rc"
[ "$rc" = 0 ] || echo "$OUT" | tail -n 20
for t in v2 v3 v4 v5; do
	rm -rf "$T/pulled"
	check "skopeo pulls f/sk:$t" "${SK[@]}" copy --quiet --src-tls-verify=false "docker://$A/f/sk:$t" "oci:$T/pulled:latest"
done
check_eq "the big manifest still reads back byte-identical" "$(sha "$T/mbig")" "$(getsha /v2/f/app/manifests/big)"
check "SIGTERM stops the node" berth_stop
check_not_contains "no crash in the node's log" "Segmentation" "$(cat "$T/A.log")"
finish
