#!/usr/bin/env bash
# shellcheck disable=SC1091,SC2317,SC2153,SC2015  # sourced libs; helpers called via check; lib.sh's names; a && b || true
# Two berth nodes on one PostgreSQL (scripts/pg) and one Ceph RGW bucket (scripts/ceph), both with the scheduled
# lifecycle + GC (lifecycle_interval = 1s, gc_grace = 0) and the same two webhooks (issue #12: the single-node locks,
# s3_redirect, metrics, quotas and events with two nodes):
#   1. the maintenance lock held from psql: both nodes skip their rounds (berth_maint_skipped_total), `berth gc` and
#      `berth lifecycle run` refuse with exit 3 and say why, their --dry-run still answers; meanwhile skopeo pushes
#      an image through A and a quota set by the CLI is enforced on pushes through B, counting both nodes' bytes
#   2. a lifecycle policy: the scheduled runs expire exactly the four images it selects, each once (one expire event
#      per image, the two nodes' berth_lifecycle_images_expired_total add up to 4)
#   3. ~20 s of pushes alternating between A and B that re-use layers whose last image the scheduled lifecycle
#      just expired, while the scheduled GC deletes them (and `berth gc` runs beside, exit 0 or 3): refusals are 400 MANIFEST_BLOB_UNKNOWN only, fsck is clean,
#      every kept image is byte-identical through both nodes, expired images' layers leave the bucket
#   4. the nodes' logged run windows (lock taken .. done, in ms) never overlap
#   5. webhooks: every event (pushes, pulls, expiries, GC of both nodes) reaches the receiver exactly once
#   6. s3_redirect = on (B): 307 to a presigned RGW URL for a blob pushed through A, followed by curl (whole and
#      Range: 206 with the exact bytes), skopeo and docker pull; HEAD from the row; a tampered URL and an expired one
#      (node C, s3_redirect_ttl = 1s) refused by RGW
#   7. metrics: promtool accepts both nodes' pages; the registry-wide gauges are equal on A and B and match the
#      database
#   5b. the delivering node's database sessions are terminated (pg_terminate_backend): it notices, another node
#      takes the webhooks over, and still each event arrives once
#   8. the webhooks' delivering node is killed (-9) while a delivery to a slow receiver is in flight: the other node
#      delivers every pending event (duplicates only of the batch in flight: at-least-once); a webhook that never
#      delivered before the kill loses nothing either (its cursor was stored when it was first seen)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
. "$HERE/server.sh"
. "$ROOT/scripts/lib/images.sh"
. "$ROOT/scripts/lib/dockerd.sh"

command -v promtool >/dev/null || {
	echo "promtool missing: scripts/deps test installs Debian's prometheus package" >&2
	exit 1
}
e2e_tmpdir T
log "starting PostgreSQL and Ceph with radosgw"
mkdir -p "$T/pg"
PG_URL=$("$ROOT/scripts/pg" start "$T/pg")
on_exit "$ROOT/scripts/pg" stop "$T/pg"
on_exit "$ROOT/scripts/ceph" stop "$T/ceph"
eval "$("$ROOT/scripts/ceph" start "$T/ceph")"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_PAGER="" AWS_CONFIG_FILE=$T/aws-config
export AWS_SHARED_CREDENTIALS_FILE=$T/aws-credentials
: >"$AWS_CONFIG_FILE"
: >"$AWS_SHARED_CREDENTIALS_FILE"
BUCKET=berth-twonode
S3=(/usr/bin/aws --endpoint-url "$S3_ENDPOINT" --region us-east-1 s3api)
"${S3[@]}" create-bucket --bucket "$BUCKET" >/dev/null
export BERTH_METADATA=$PG_URL BERTH_STORAGE=s3://$BUCKET/reg BERTH_S3_ENDPOINT=$S3_ENDPOINT
MAINT_KEY=7090199032658092800 # DB_PG_MAINT_KEY (storage/db_pg.h)
SECRET=twonode-hmac-secret
OCI_M=application/vnd.oci.image.manifest.v1+json
CLI=$T/cli # the CLI's data directory: nothing of the metadata or blobs lands in it
mkdir -p "$CLI"
C() { "$BERTH_BIN" "$@" --data "$CLI"; }
q() { psql -qAt "$PG_URL" -c "$1"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
hdr() { tr -d '\r' <"$2" | awk -v n="$1" 'BEGIN{IGNORECASE=1} index(tolower($0), tolower(n)":")==1 {sub(/^[^:]*: */,""); print}' | tail -1; }
stop_pid() { kill -TERM "$1" 2>/dev/null && wait "$1" 2>/dev/null || true; }

# webhook receivers: 1 is up from the start; 2 (a webhook that cannot deliver before section 8) is not
RP1=$(free_port) RP2=$(free_port)
recv_start() { # PORT OUT [ARGS...]: sets RECV_PID
	/usr/bin/python3 "$HERE/webhook_receiver.py" --port "$1" --out "$2" "${@:3}" >>"$T/recv.log" 2>&1 &
	RECV_PID=$!
	echo "$RECV_PID" >>"$T/recv.pids"
	for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.1; done
	return 1
}
# shellcheck disable=SC2016 # expanded by that bash, at exit
on_exit bash -c 'kill $(cat '"$T"'/recv.pids 2>/dev/null) 2>/dev/null || true'
recv_start "$RP1" "$T/r1.jsonl" --secret "$SECRET"
R1=$RECV_PID
cat >"$T/node.conf" <<CONF
lifecycle_interval = 1s
gc_grace = 0
webhook = http://127.0.0.1:$RP1/hook secret=$SECRET
webhook = http://127.0.0.1:$RP2/late secret=$SECRET
CONF
cp "$T/node.conf" "$T/nodeB.conf"
echo "s3_redirect = on" >>"$T/nodeB.conf"

# start_node NAME CONF: berth serve on $T/NAME with a metrics listener (sets NAME_PID, NAME, NAME_M)
start_node() {
	mkdir -p "$T/$1"
	local m
	m=127.0.0.1:$(free_port)
	berth_start "$T/$1" --no-auth --access-log off --config "$2" --metrics-listen "$m"
	printf -v "${1}_PID" '%s' "$BERTH_PID"
	printf -v "$1" '%s' "$REGISTRY"
	printf -v "${1}_M" '%s' "$m"
	BERTH_PID=
}
start_node A "$T/node.conf"
start_node B "$T/nodeB.conf"
on_exit stop_pid "$A_PID"
on_exit stop_pid "$B_PID"
metric() { # NODE_M NAME -> its value (0 if absent)
	curl -s "http://$1/metrics" | awk -v k="$2" '$1 == k { print $2; found=1 } END { if (!found) print 0 }'
}
msum() { echo $(($(metric "$A_M" "$1") + $(metric "$B_M" "$1"))); }
# wait_for CMD...: until CMD succeeds (up to 60 s)
wait_for() {
	for _ in $(seq 1 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
	return 1
}
grew() { [ "$(msum "$1")" -gt "$2" ]; }
grew_on() { [ "$(metric "$1" "$2")" -gt "$3" ]; }

# push NODE REPO TAG MANIFEST BLOB...: as a client does: HEAD each blob, upload the missing ones, PUT the manifest;
# again (up to 5 times) while the manifest is refused because GC collected a blob meanwhile (gc_grace = 0).  Appends
# each refusal's status and code to $T/refused; prints the last status.
push() {
	local node=$1 repo=$2 tag=$3 man=$4 f c
	shift 4
	for _ in 1 2 3 4 5; do
		for f in "$@"; do
			[ "$(code -I "http://$node/v2/$repo/blobs/sha256:$(sha "$f")")" = 200 ] ||
				code -X POST --data-binary @"$f" "http://$node/v2/$repo/blobs/uploads/?digest=sha256:$(sha "$f")" >/dev/null
		done
		c=$(curl -s -o "$T/resp" -w '%{http_code}' -X PUT -H "Content-Type: $OCI_M" --data-binary @"$man" \
			"http://$node/v2/$repo/manifests/$tag")
		[ "$c" = 201 ] && break
		echo "$c $(jq -r '.errors[0].code' "$T/resp" 2>&1)" >>"$T/refused"
	done
	echo "$c"
}
# image NAME LAYER...: a config unique to NAME and a manifest of it and the layers into $T/NAME.{cfg,man}
image() {
	local name=$1 l layers=
	shift
	printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"name":"%s"}' "$name" \
		>"$T/$name.cfg"
	for l in "$@"; do
		layers+=${layers:+,}$(printf '{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}' \
			"$(sha "$l")" "$(stat -c %s "$l")")
	done
	printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
		"$OCI_M" "$(sha "$T/$name.cfg")" "$(stat -c %s "$T/$name.cfg")" "$layers" >"$T/$name.man"
}
# push_image NODE REPO TAG NAME LAYER...
push_image() {
	local node=$1 repo=$2 tag=$3 name=$4
	shift 4
	image "$name" "$@"
	push "$node" "$repo" "$tag" "$T/$name.man" "$T/$name.cfg" "$@"
}

########################################################################
log "1. the maintenance lock held from psql: both nodes skip, the CLI refuses; skopeo push and quotas meanwhile"
check "both nodes ran lifecycle + GC at least once" wait_for grew berth_lifecycle_runs_total 0
mkfifo "$T/lockfifo"
psql -qAt "$PG_URL" <"$T/lockfifo" >"$T/lock.out" 2>&1 &
LOCKER=$!
exec 7>"$T/lockfifo"
on_exit kill "$LOCKER"
echo "SELECT pg_advisory_lock($MAINT_KEY); SELECT 'locked';" >&7
check "psql holds the maintenance lock (after any run in progress)" wait_for grep -qx locked "$T/lock.out"
RUNS0=$(msum berth_lifecycle_runs_total) GCR0=$(msum berth_gc_runs_total)
SA=$(metric "$A_M" berth_maint_skipped_total) SB=$(metric "$B_M" berth_maint_skipped_total)
check "node A skips its rounds while the lock is held elsewhere" wait_for grew_on "$A_M" berth_maint_skipped_total $((SA + 1))
check "node B skips its rounds too" wait_for grew_on "$B_M" berth_maint_skipped_total $((SB + 1))
check_eq "no lifecycle run on either node while it is held" "$RUNS0" "$(msum berth_lifecycle_runs_total)"
check_eq "no GC run on either node while it is held" "$GCR0" "$(msum berth_gc_runs_total)"
OUT=$("$BERTH_BIN" gc --data "$T/B" --config "$T/nodeB.conf" --grace 0 2>&1) && rc=0 || rc=$?
check_eq "berth gc (node B's config) while another holds the lock: exit 3" 3 "$rc"
check_contains "... saying why and that nothing changed" "gc: not run: lifecycle/GC is running elsewhere" "$OUT"
check_not_contains "... and no summary that could pass for a run" "gc: pruned" "$OUT"
OUT=$("$BERTH_BIN" lifecycle run --data "$T/A" 2>&1) && rc=0 || rc=$?
check_eq "berth lifecycle run: exit 3" 3 "$rc"
check_contains "... saying why" "lifecycle run: not run: lifecycle/GC is running elsewhere" "$OUT"
check_contains "berth gc --dry-run still answers (it changes nothing)" "gc: would prune" "$(C gc --dry-run --grace 0 2>&1)"

# an image for section 6, pushed with skopeo while no GC can run (skopeo does not retry a collected blob)
img_busybox "$T/img" amd64 "twonode $(date +%s%N)"
SK=(skopeo --command-timeout 300s)
check "skopeo copy oci -> A" "${SK[@]}" copy --quiet --dest-tls-verify=false --preserve-digests \
	oci:"$T/img":latest "docker://$A/sk/img:v1"

# quota set by the CLI, enforced on pushes through B, usage counting the bytes pushed through both nodes
used() { C quota list | awk -v p="$1" '$1 == p { gsub(/[()]/, "", $(NF-3)); print $(NF-3) }'; }
check "quota set 'q/*' 400K" C quota set 'q/*' 400K
head -c 100000 /dev/urandom >"$T/qa"
head -c 120000 /dev/urandom >"$T/qb"
head -c 100000 /dev/urandom >"$T/qc"
check_eq "100000 bytes through A" 201 "$(code -X POST --data-binary @"$T/qa" "http://$A/v2/q/one/blobs/uploads/?digest=sha256:$(sha "$T/qa")")"
check_eq "120000 bytes through B" 201 "$(code -X POST --data-binary @"$T/qb" "http://$B/v2/q/two/blobs/uploads/?digest=sha256:$(sha "$T/qb")")"
check_eq "the same blob again through B into another repository (a mount) counts once more" 201 \
	"$(code -X POST "http://$B/v2/q/three/blobs/uploads/?mount=sha256:$(sha "$T/qa")&from=q/one")"
check_eq "usage counts the bytes of both nodes exactly" 320000 "$(used 'q/*')"
curl -s -o "$T/resp" -w '%{http_code}\n' -X POST --data-binary @"$T/qc" \
	"http://$B/v2/q/two/blobs/uploads/?digest=sha256:$(sha "$T/qc")" >"$T/st"
check_eq "a push through B beyond the quota is refused" 403 "$(cat "$T/st")"
check_contains "... as OCI DENIED naming the quota and the usage" "quota of q/* exceeded: limit 400.0 KiB, 312.5 KiB used, this blob adds 97.7 KiB" \
	"$(jq -r '.errors[0] | "\(.code) \(.message)"' "$T/resp")"
check_eq "... and through A alike" 403 "$(code -X POST --data-binary @"$T/qc" "http://$A/v2/q/one/blobs/uploads/?digest=sha256:$(sha "$T/qc")")"
check_eq "usage unchanged after the refusals" 320000 "$(used 'q/*')"
check "quota raised via the CLI" C quota set 'q/*' 1M
check_eq "the same push through B now passes" 201 "$(code -X POST --data-binary @"$T/qc" "http://$B/v2/q/two/blobs/uploads/?digest=sha256:$(sha "$T/qc")")"
check_eq "usage: 420000" 420000 "$(used 'q/*')"
check "quota removed" C quota del 'q/*'

echo "SELECT pg_advisory_unlock($MAINT_KEY); SELECT 'released';" >&7
check "psql released the lock" wait_for grep -qx released "$T/lock.out"
check "the nodes run lifecycle again once it is released" wait_for grew berth_lifecycle_runs_total "$RUNS0"
check "... and GC" wait_for grew berth_gc_runs_total "$GCR0"
# the unreferenced quota blobs are GC's (gc_grace = 0) once the lock is free
check "the scheduled GC collected the unreferenced quota blobs" wait_for test "$(q "SELECT count(*) FROM blobs WHERE digest IN ('sha256:$(sha "$T/qa")','sha256:$(sha "$T/qb")')")" = 0

########################################################################
log "2. a lifecycle policy is applied exactly once: the four images it selects expire, one event each"
head -c 50000 /dev/urandom >"$T/expl"
EXP0=$(msum berth_lifecycle_images_expired_total)
for i in 1 2 3 4; do
	n=A
	[ $((i % 2)) = 0 ] && n=B
	check_eq "old-$i through $n" 201 "$(push_image "${!n}" exp/app "old-$i" "old$i" "$T/expl")"
done
sleep 1.1 # old-5 is strictly the newest (push times are in seconds)
check_eq "old-5 through B" 201 "$(push_image "$B" exp/app old-5 old5 "$T/expl")"
check_eq "keep-1 through A" 201 "$(push_image "$A" exp/app keep-1 keep1 "$T/expl")"
cat >"$T/policy.json" <<'EOF'
{"rules": [{"rulePriority": 1, "description": "keep the newest old-*",
  "selection": {"tagStatus": "tagged", "tagPrefixList": ["old"], "countType": "imageCountMoreThan", "countNumber": 1},
  "action": {"type": "expire"}}]}
EOF
check "policy put (CLI)" C lifecycle put exp/app "$T/policy.json"
gone4() { for i in 1 2 3 4; do [ "$(code "http://$A/v2/exp/app/manifests/sha256:$(sha "$T/old$i.man")")" = 404 ] || return 1; done; }
check "the scheduled runs expired old-1..old-4" wait_for gone4
R0=$(msum berth_lifecycle_runs_total)
check "two more rounds ran after that" wait_for grew berth_lifecycle_runs_total $((R0 + 2))
for k in old5 keep1; do
	check_eq "$k stays (through B)" 200 "$(code -H "Accept: $OCI_M" "http://$B/v2/exp/app/manifests/sha256:$(sha "$T/$k.man")")"
done
EXPECTED=$(for i in 1 2 3 4; do echo "sha256:$(sha "$T/old$i.man")"; done | sort)
check_eq "one expire event per expired image, no other" "$EXPECTED" \
	"$(q "SELECT digest FROM events WHERE action = 'expire' AND repository = 'exp/app' ORDER BY digest")"
check_eq "the nodes' expired counters add up to 4" $((EXP0 + 4)) "$(msum berth_lifecycle_images_expired_total)"

########################################################################
log "3. ~20 s of pushes through A and B re-using layers that the scheduled lifecycle + GC just made garbage"
# layer pool of 3: image n uses pool[n%3] and base; the policy keeps the two newest tmp-* images, so the layer of
# image n+1 is the one whose last image lifecycle has just expired (and GC is deleting) when it is pushed
head -c 200000 /dev/urandom >"$T/base"
for i in 0 1 2; do head -c $((70000 + i)) /dev/urandom >"$T/pool$i"; done
cat >"$T/policy2.json" <<'EOF'
{"rules": [{"rulePriority": 1, "description": "keep the two newest tmp-*",
  "selection": {"tagStatus": "tagged", "tagPrefixList": ["tmp"], "countType": "imageCountMoreThan", "countNumber": 2},
  "action": {"type": "expire"}}]}
EOF
check_eq "first image through A" 201 "$(push_image "$A" race/app tmp-0 race0 "$T/base" "$T/pool0")"
check "policy put (CLI)" C lifecycle put race/app "$T/policy2.json"
: >"$T/refused"
: >"$T/acked"
GCD0=$(msum berth_gc_blobs_deleted_total)
n=0
end=$(($(date +%s) + 20))
while [ "$(date +%s)" -lt "$end" ]; do
	n=$((n + 1))
	node=A
	[ $((n % 2)) = 0 ] && node=B
	c=$(push_image "${!node}" race/app "tmp-$n" "race$n" "$T/base" "$T/pool$((n % 3))")
	[ "$c" = 201 ] && echo "$n" >>"$T/acked"
	# `berth gc` beside the scheduled runs: it runs (exit 0) or, when a node's run holds the lock, refuses (exit 3)
	"$BERTH_BIN" gc --data "$T/B" --grace 0 >"$T/cli.out" 2>&1 && rc=0 || rc=$?
	echo "$rc $(grep -c 'not run: lifecycle/GC is running elsewhere' "$T/cli.out")" >>"$T/cli.rc"
	sleep 1.05 # push times are in seconds: each image strictly newer than the last (the policy's order)
done
log "pushes: $n, acknowledged $(wc -l <"$T/acked"), manifest PUTs refused (a re-used layer collected between the client's HEAD and its PUT): $(wc -l <"$T/refused"), blobs GC deleted meanwhile: $(($(msum berth_gc_blobs_deleted_total) - GCD0))"
log "berth gc beside the scheduled runs: $(grep -c '^0 ' "$T/cli.rc") ran, $(grep -c '^3 ' "$T/cli.rc") refused (a node's run held the lock)"
check_eq "berth gc beside the scheduled runs: each ran (0) or refused saying why (3)" "" \
	"$(grep -vxE '0 0|3 1' "$T/cli.rc" || true)"
check "the scheduled GC deleted blobs during the pushes" test "$(msum berth_gc_blobs_deleted_total)" -gt "$GCD0"
check_eq "every refused manifest PUT was 400 MANIFEST_BLOB_UNKNOWN (never a 5xx)" "" \
	"$(grep -v '^400 MANIFEST_BLOB_UNKNOWN$' "$T/refused" || true)"
check "every push was acknowledged in the end (after retries)" test "$(wc -l <"$T/acked")" = "$n"
LAST2="$((n - 1)) $n"
# quiet: nothing left for lifecycle or GC (the dry runs take no lock)
quiet() {
	[ -z "$(C lifecycle run --dry-run 2>/dev/null)" ] &&
		C gc --dry-run --grace 0 2>/dev/null | grep -q 'would prune 0 of [0-9]* links, 0 of'
}
check "lifecycle and GC finish their work once the pushes stop" wait_for quiet
check_eq "the policy kept the two newest tmp-* images" "tmp-$((n - 1)) tmp-$n" \
	"$(curl -s "http://$B/v2/race/app/tags/list" | jq -r '.tags | sort_by(ltrimstr("tmp-") | tonumber) | join(" ")')"
OUT=$(C fsck 2>&1) && rc=0 || rc=$?
check_eq "berth fsck (PostgreSQL + bucket) with both schedulers running: clean" 0 "$rc"
[ "$rc" = 0 ] || echo "$OUT" | tail -n 20
bad=0
for k in $LAST2; do
	for node in A B; do
		curl -s -L -o "$T/got" -H "Accept: $OCI_M" "http://${!node}/v2/race/app/manifests/tmp-$k"
		cmp -s "$T/race$k.man" "$T/got" || { bad=$((bad + 1)); echo "manifest tmp-$k differs through $node"; }
		for f in "$T/race$k.cfg" "$T/base" "$T/pool$((k % 3))"; do
			curl -s -L -o "$T/got" "http://${!node}/v2/race/app/blobs/sha256:$(sha "$f")"
			cmp -s "$f" "$T/got" || { bad=$((bad + 1)); echo "blob of tmp-$k differs through $node"; }
		done
	done
done
check_eq "the kept images are byte-identical through A and B" 0 "$bad"
"${S3[@]}" list-objects-v2 --bucket "$BUCKET" --prefix reg/blobs/ --query 'Contents[].Key' --output text |
	tr '\t' '\n' >"$T/keys"
left=0
for k in $(seq 0 $((n - 2))); do grep -q "$(sha "$T/race$k.cfg")" "$T/keys" && left=$((left + 1)); done
check_eq "the expired images' configs left the bucket" 0 "$left"
unused=$(((n + 1) % 3))
check_fail "the pool layer no kept image uses left the bucket" grep -q "$(sha "$T/pool$unused")" "$T/keys"
check_eq "each expired image has exactly one expire event" "" \
	"$(q "SELECT digest FROM events WHERE action = 'expire' GROUP BY digest HAVING count(*) > 1")"

########################################################################
log "4. the nodes' lifecycle/GC windows never overlap"
# windows NODE-LOG: "start end node" per run, from the log lines around each run
windows() {
	awk -v n="$2" '/lifecycle\/gc: maintenance lock taken at/ { s = $(NF-1) }
		/lifecycle\/gc: done at/ && s != "" { for (i = 1; i <= NF; i++) if ($i == "at") e = $(i+1); print s, e, n; s = "" }' "$1"
}
overlaps() {
	{ windows "$T/A.log" A; windows "$T/B.log" B; } | sort -n |
		awk '{ if (NR > 1 && $1 < end) { print "overlap: " prev " and " $0; bad++ } if ($2 > end) end = $2; prev = $0 }
			END { exit bad > 0 }'
}
NA=$(windows "$T/A.log" A | wc -l) NB=$(windows "$T/B.log" B | wc -l)
log "runs logged: node A $NA, node B $NB; skipped (lock held by the other): A $(metric "$A_M" berth_maint_skipped_total), B $(metric "$B_M" berth_maint_skipped_total)"
check "both nodes logged runs" test "$NA" -gt 0 -a "$NB" -gt 0
check "no two runs overlap in time" overlaps

########################################################################
log "5. webhooks: every event of both nodes reaches the receiver exactly once"
pull_some() { for k in $LAST2; do curl -s -o /dev/null -H "Accept: $OCI_M" "http://$1/v2/race/app/manifests/tmp-$k"; done; }
pull_some "$A"
pull_some "$B"
db_ids() { q "SELECT uuid FROM events" | sort; } # an envelope's event id is the row's uuid
recv_ids() { [ -f "$1" ] && jq -r .id "$1" | sort -u || true; }
has_all() { [ "$(db_ids | wc -l)" -gt 0 ] && [ -z "$(comm -23 <(db_ids) <(recv_ids "$1"))" ]; }
pulls_in() { [ "$(q "SELECT count(*) FROM events WHERE action = 'pull' AND repository = 'race/app'")" -ge 4 ]; }
check "the pulls through both nodes are recorded (batched)" wait_for pulls_in
check "the receiver has every event" wait_for has_all "$T/r1.jsonl"
ALL=$(jq -r .id "$T/r1.jsonl" | wc -l)
UNIQ=$(jq -r .id "$T/r1.jsonl" | sort -u | wc -l)
log "receiver: $UNIQ events ($(jq -r .action "$T/r1.jsonl" | sort | uniq -c | tr -s ' \n' ' '))"
check_eq "no event delivered twice while both nodes are up" "$UNIQ" "$ALL"
check_eq "no unknown event" "" "$(comm -13 <(db_ids) <(recv_ids "$T/r1.jsonl"))"
check "every request carried a valid signature" test ! -e "$T/r1.jsonl.bad"
check_eq "pushes, pulls, expiries and GC are among them" "expire gc pull push" \
	"$(jq -r .action "$T/r1.jsonl" | sort -u | tr '\n' ' ' | sed 's/ $//')"

log "5b. the delivering node's database sessions are cut (as by a network cut): the webhooks move, still once each"
LEADER=A OTHER=B
grep -q "hook: delivering events after id [0-9]*$" "$T/B.log" && LEADER=B OTHER=A
check_not_contains "one node delivers the webhooks" "when the node delivering it now stops" \
	"$(grep -E '(hook|late): delivering events after id' "$T/$LEADER.log")"
check_eq "... the other waits for both" 2 \
	"$(grep -cE '(hook|late): delivering.*when the node delivering it now stops' "$T/$OTHER.log")"
# hook_lock URL: the pg_locks classid and objid of the webhook's delivery lock (db_named_trylock: FNV-1a of the URL)
hook_lock() {
	/usr/bin/python3 -c 'import sys
h = 1469598103934665603
for c in sys.argv[1].encode():
    h = ((h ^ c) * 1099511628211) % 2**64
k = h & 0x7fffffffffffffff
print(k >> 32, k & 0xffffffff)' "$1"
}
cut=0
for u in "http://127.0.0.1:$RP1/hook" "http://127.0.0.1:$RP2/late"; do
	read -r cl ob <<<"$(hook_lock "$u")"
	cut=$((cut + $(q "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND classid = $cl AND objid = $ob")))
done
check_eq "the sessions holding both delivery locks were terminated" 2 "$cut"
check "node $LEADER notices it lost the lock with its session" \
	wait_for grep -q "hook: the database session holding its delivery lock was lost" "$T/$LEADER.log"
took() { grep -l "hook: took the delivery over" "$T/A.log" "$T/B.log"; }
check "a node took the delivery over" wait_for took
NEWLEADER=$(basename "$(took | head -n 1)" .log)
log "webhook /hook delivered by node $LEADER, then by node $NEWLEADER"
for i in 1 2 3 4; do
	n=A
	[ $((i % 2)) = 0 ] && n=B
	check_eq "push cut-$i through $n" 201 "$(push_image "${!n}" cut/app "cut-$i" "cut$i" "$T/expl")"
done
check "the receiver has every event" wait_for has_all "$T/r1.jsonl"
check_eq "still no event delivered twice" "$(jq -r .id "$T/r1.jsonl" | sort -u | wc -l)" "$(jq -r .id "$T/r1.jsonl" | wc -l)"

########################################################################
log "6. s3_redirect = on (node B): 307 to RGW, Range, HEAD, skopeo, docker pull, tampered and expired URLs"
LAYER=$(img_layer_digests "$T/img" | head -n 1)
LFILE=$(img_blob_path "$T/img" "$LAYER")
LSIZE=$(stat -c %s "$LFILE")
curl -s -D "$T/h" -o /dev/null "http://$B/v2/sk/img/blobs/$LAYER"
LOC=$(hdr location "$T/h")
check_eq "blob GET on B for a blob pushed through A: 307" 307 "$(head -n 1 "$T/h" | awk '{print $2}')"
check_contains "... to a presigned URL of the object in RGW" "$S3_ENDPOINT/$BUCKET/reg/blobs/sha256/" "$LOC"
check_contains "... signed with SigV4" "X-Amz-Signature=" "$LOC"
check_eq "... with the digest header" "$LAYER" "$(hdr docker-content-digest "$T/h")"
curl -s -L -o "$T/got" "http://$B/v2/sk/img/blobs/$LAYER"
check "curl -L through B: byte-identical" cmp "$LFILE" "$T/got"
check_eq "A (s3_redirect off) streams the same blob itself" 200 "$(code "http://$A/v2/sk/img/blobs/$LAYER")"
c=$(curl -s -L -o "$T/got" -w '%{http_code}' -r 100-1099 "http://$B/v2/sk/img/blobs/$LAYER")
check_eq "Range through the redirect: 206 from RGW" 206 "$c"
dd if="$LFILE" of="$T/want" bs=1 skip=100 count=1000 status=none
check "... with exactly bytes 100-1099" cmp "$T/want" "$T/got"
c=$(curl -s -L -o "$T/got" -w '%{http_code}' -r "$((LSIZE - 10))-" "http://$B/v2/sk/img/blobs/$LAYER")
tail -c 10 "$LFILE" >"$T/want"
check_eq "an open-ended Range: 206" 206 "$c"
check "... the last 10 bytes" cmp "$T/want" "$T/got"
curl -s -I -o "$T/h" "http://$B/v2/sk/img/blobs/$LAYER"
check_eq "HEAD on B: 200 from the row, no redirect" "200 $LSIZE " \
	"$(head -n 1 "$T/h" | awk '{printf "%s ", $2}')$(hdr content-length "$T/h") $(hdr location "$T/h")"
SIG=${LOC##*X-Amz-Signature=}
SIG=${SIG%%&*}
c=${SIG:10:1}
[ "$c" = a ] && c=b || c=a
check_eq "a tampered signature is refused by RGW" 403 "$(code "${LOC/$SIG/${SIG:0:10}$c${SIG:11}}")"
check_eq "a presigned URL for another object (key changed, signature kept) is refused by RGW" 403 \
	"$(code "${LOC/${LAYER#sha256:}/$(sha "$T/base")}")"
check_eq "an unexpired URL works without any credential" 200 "$(code "$LOC")"
printf 's3_redirect = on\ns3_redirect_ttl = 1s\nlifecycle_interval = 0\n' >"$T/nodeC.conf"
start_node C "$T/nodeC.conf"
on_exit stop_pid "$C_PID"
curl -s -D "$T/h" -o /dev/null "http://$C/v2/sk/img/blobs/$LAYER"
LOC1=$(hdr location "$T/h")
check_contains "node C (s3_redirect_ttl = 1s) signs for 1 second" "X-Amz-Expires=1&" "$LOC1"
sleep 2.5
check_eq "an expired presigned URL is refused by RGW" 403 "$(code "$LOC1")"
check_contains "... as expired" "AccessDenied" "$(curl -s "$LOC1")"
stop_pid "$C_PID"
check "skopeo copy B -> oci (follows the redirects)" "${SK[@]}" copy --quiet --src-tls-verify=false \
	"docker://$B/sk/img:v1" oci:"$T/img.b":latest
for l in $(img_layer_digests "$T/img") $(img_config_digest "$T/img"); do
	check "blob ${l:7:12} pulled with skopeo through B is byte-identical" cmp "$(img_blob_path "$T/img" "$l")" \
		"$(img_blob_path "$T/img.b" "$l")"
done
on_exit dockerd_stop "$T/d"
if dockerd_start "$T/d"; then
	OUT=$("$DOCKER" pull "$B/sk/img:v1" 2>&1 || true)
	check_contains "docker pull through the redirecting node B" "Digest: $(img_manifest_digest "$T/img")" "$OUT"
	check_eq "... the image ID is the pushed config" "$(img_config_digest "$T/img")" \
		"$("$DOCKER" image inspect --format '{{.Id}}' "$B/sk/img:v1" 2>&1)"
	dockerd_stop "$T/d"
else
	check "dockerd starts" false
fi

########################################################################
log "7. metrics: valid on both nodes, registry-wide gauges equal"
curl -s "http://$A_M/metrics" >"$T/mA"
curl -s "http://$B_M/metrics" >"$T/mB"
check "promtool check metrics (node A)" promtool check metrics <"$T/mA"
check "promtool check metrics (node B)" promtool check metrics <"$T/mB"
gauges() { grep -E '^berth_(repositories|blobs|manifests|storage_bytes) ' "$1"; }
check_eq "repositories, blobs, manifests, storage bytes: the same on A and B" "$(gauges "$T/mA")" "$(gauges "$T/mB")"
check_eq "berth_repositories = the database's repositories" "$(q 'SELECT count(*) FROM repos')" \
	"$(awk '$1 == "berth_repositories" {print $2}' "$T/mA")"
check_eq "berth_storage_bytes = the bytes of the blob rows" "$(q 'SELECT coalesce(sum(size), 0) FROM blobs')" \
	"$(awk '$1 == "berth_storage_bytes" {print $2}' "$T/mB")"
check "the per-node run counters are each node's own (both > 0)" \
	test "$(metric "$A_M" berth_gc_runs_total)" -gt 0 -a "$(metric "$B_M" berth_gc_runs_total)" -gt 0

########################################################################
log "8. the delivering node killed (-9) mid-delivery: the other node delivers the pending events"
LEADER=$NEWLEADER OTHER=A
[ "$LEADER" = A ] && OTHER=B
stop_pid "$R1"
recv_start "$RP1" "$T/r1.jsonl" --secret "$SECRET" --delay 3
for i in 1 2 3; do
	check_eq "push k$i through $OTHER" 201 "$(push_image "${!OTHER}" kill/app "k$i" "kill$i" "$T/expl")"
done
check "a delivery to the slow receiver is in flight" wait_for test -s "$T/r1.jsonl.inflight"
INFLIGHT=$(tr ' ' '\n' <"$T/r1.jsonl.inflight" | grep . | sort -u)
LPID=${LEADER}_PID
kill -9 "${!LPID}"
wait "${!LPID}" 2>/dev/null || true
check_eq "node $LEADER is gone" 000 "$(code -m 5 "http://${!LEADER}/v2/")"
recv_start "$RP2" "$T/r2.jsonl" --secret "$SECRET"
check "node $OTHER delivers every event to the slow receiver" wait_for has_all "$T/r1.jsonl"
check "the webhook that never delivered before the kill gets every event too (from its stored cursor)" \
	wait_for has_all "$T/r2.jsonl"
DUPS=$(jq -r .id "$T/r1.jsonl" | sort | uniq -d)
log "duplicates after the kill: $(echo "$DUPS" | grep -c . || true) (the batch in flight had $(echo "$INFLIGHT" | grep -c .) events)"
check_eq "duplicates only of the batch in flight at the kill (at-least-once)" "" "$(comm -23 <(echo "$DUPS" | grep .) <(echo "$INFLIGHT"))"
check_eq "the late webhook got each event once" "$(jq -r .id "$T/r2.jsonl" | wc -l)" "$(jq -r .id "$T/r2.jsonl" | sort -u | wc -l)"
check_contains "node $OTHER logged taking the delivery over" "hook: took the delivery over" "$(cat "$T/$OTHER.log")"
check "no request failed the signature check" test ! -e "$T/r1.jsonl.bad" -a ! -e "$T/r2.jsonl.bad"
# the statement in flight when 5b terminated a session fails (and is logged): nothing else may
CUTERR='terminating connection due to administrator command|server closed the connection unexpectedly|no connection to the server'
log "errors logged by the sessions 5b cut: $(cat "$T/A.log" "$T/B.log" | grep ' error: ' | grep -cE "$CUTERR" || true)"
check_eq "no other error in node $OTHER's log" "" "$(grep ' error: ' "$T/$OTHER.log" | grep -vE "$CUTERR" || true)"
check "still no two lifecycle/GC runs overlap" overlaps

finish
