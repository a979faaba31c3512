#!/usr/bin/env bash
# shellcheck disable=SC1091,SC2317,SC2153  # sourced libs (names from server.sh); helpers are called via check
# A scheduled lifecycle/GC round on PostgreSQL (scripts/pg) + Ceph RGW (scripts/ceph) whose database session, the one
# holding the cluster's maintenance lock, is terminated mid-run (issue #12: lifecycle and GC run on exactly one node
# at a time).  Node A's scheduled lifecycle expires 69 of 70 images in batches of LIFECYCLE_DELETE_BATCH (64); it is
# paused after its first batch committed (BERTH_FAULT=lifecycle.after_commit with BERTH_FAULT_PAUSE), its session is
# ended with pg_terminate_backend and the lock taken by another session (standing for another node), then A resumes:
#   - A's lifecycle run stops at its next batch (the reconnected session no longer holds the lock): the 5 images of
#     the second batch stay, and GC is skipped (no blob of the expired images leaves the bucket)
#   - while the other session holds the lock, A's rounds skip; once it is released A's next round takes the lock,
#     expires the 5 images and GC removes the expired images' blobs; fsck is clean
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/server.sh"

export BERTH_E2E_BACKEND=pg-s3
e2e_tmpdir T
log "starting PostgreSQL and Ceph with radosgw"
on_exit berth_backend_down "$T"
berth_backend_up "$T"
MAINT_KEY=7090199032658092800 # DB_PG_MAINT_KEY (storage/db_pg.h): classid and objid in pg_locks are its halves
q() { psql -X -qAt "$BERTH_METADATA" -c "$1"; }
holder() {
	q "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
	   AND classid = $((MAINT_KEY >> 32)) AND objid = $((MAINT_KEY & 0xffffffff))"
}
tags() { q "SELECT count(*) FROM tags t JOIN repos r ON r.id = t.repo_id WHERE r.name = 'team/app'"; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
# wait_log FILE TEXT: until FILE holds TEXT (at most 30 s)
wait_log() {
	local i
	for i in $(seq 1 300); do
		grep -qF "$2" "$1" && return 0
		sleep 0.1
	done
	return 1
}
# hold_lock: another session (standing for another node) takes the maintenance lock and keeps it (sets OPID);
# release_lock: its backend is terminated (a pg_sleep does not notice its client gone)
hold_lock() {
	psql -X -qAt "$BERTH_METADATA" -c "SELECT pg_advisory_lock($MAINT_KEY)" -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
	on_exit bash -c "kill $! 2>/dev/null || true"
	for _ in $(seq 1 100); do [ -n "$(holder)" ] && break; sleep 0.1; done
	OPID=$(holder)
}
release_lock() { [ "$(q "SELECT pg_terminate_backend($OPID)")" = t ]; }
printf 'lifecycle_interval = 1s\ngc_grace = 0\n' >"$T/node.conf"
hold_lock # no round while the images are pushed (gc_grace = 0 would collect a config before its manifest comes)
check "another session holds the maintenance lock during the pushes" test -n "$OPID"
mkdir -p "$T/A" "$T/cli"
BERTH_FAULT=lifecycle.after_commit BERTH_FAULT_PAUSE=$T/resume berth_start "$T/A" --no-auth --access-log off \
	--config "$T/node.conf" --log-level debug
A=$REGISTRY
A_LOG=$T/A.log
on_exit berth_stop
check_contains "the fault point is armed (needs BERTH_FAULTS, on outside Release builds)" \
	"fault injection armed: lifecycle.after_commit" "$(cat "$A_LOG")"

########################################################################
log "1. 70 images in team/app, then a policy keeping one: A's scheduled lifecycle pauses after its first batch"
head -c 4096 /dev/urandom >"$T/layer"
LAYER=sha256:$(sha "$T/layer")
check_eq "a shared layer" 201 "$(code -X POST --data-binary @"$T/layer" "http://$A/v2/team/app/blobs/uploads/?digest=$LAYER")"
ok=1
for i in $(seq 1 70); do
	printf '{"architecture":"amd64","os":"linux","n":%d}' "$i" >"$T/c$i"
	[ "$(code -X POST --data-binary @"$T/c$i" "http://$A/v2/team/app/blobs/uploads/?digest=sha256:$(sha "$T/c$i")")" = 201 ] || ok=0
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":4096}]}' \
		"$(sha "$T/c$i")" "$(stat -c %s "$T/c$i")" "$LAYER" >"$T/m$i"
	[ "$(code -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @"$T/m$i" \
		"http://$A/v2/team/app/manifests/v$i")" = 201 ] || ok=0
done
check_eq "70 images pushed through A" 1 "$ok"
BLOBS0=$(q 'SELECT count(*) FROM blobs')
POLICY='{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}'
check "lifecycle put team/app (keep the newest image)" "$BERTH_BIN" lifecycle put team/app - --data "$T/cli" <<<"$POLICY"
check "the lock is released" release_lock
check "A's lifecycle run paused after its first batch" wait_log "$A_LOG" "fault point lifecycle.after_commit reached"
check_eq "the first batch (64 images) is committed" 6 "$(tags)"
PID=$(holder)
check "A's session holds the maintenance lock" test -n "$PID"
check_eq "pg_terminate_backend ends it" t "$(q "SELECT pg_terminate_backend($PID)")"
hold_lock
check "another session holds the maintenance lock now" test -n "$OPID" -a "$OPID" != "$PID"

########################################################################
log "2. A resumes: its lifecycle run stops, its rounds skip while the other session holds the lock"
SKIPS=$(grep -c "another node holds the maintenance lock; skipped" "$A_LOG" || true)
touch "$T/resume"
check "A logged the lost lock" wait_log "$A_LOG" "the database session holding the maintenance lock was lost"
check_contains "its lifecycle run stopped, GC skipped" "its lifecycle run stopped, GC skipped this round" "$(cat "$A_LOG")"
wait_skip() { [ "$(grep -c "another node holds the maintenance lock; skipped" "$A_LOG" || true)" -gt "$SKIPS" ]; }
for _ in $(seq 1 300); do wait_skip && break; sleep 0.1; done
check "A's next round skipped (the other session holds the lock)" wait_skip
check_eq "the second batch was not expired without the lock" 6 "$(tags)"
check_eq "no blob was collected" "$BLOBS0" "$(q 'SELECT count(*) FROM blobs')"
check_eq "the lock is still the other session's" "$OPID" "$(holder)"

########################################################################
log "3. the other session releases the lock: A's next round expires the rest and GC collects"
check "its backend is terminated (pg_terminate_backend)" release_lock
DONE=$(grep -c "lifecycle/gc: done at" "$A_LOG" || true)
round_done() { [ "$(tags)" = 1 ] && [ "$(grep -c "lifecycle/gc: done at" "$A_LOG" || true)" -gt "$DONE" ]; }
for _ in $(seq 1 300); do round_done && break; sleep 0.1; done
check "A's next round took the lock and finished" round_done
KEPT=$(q "SELECT t.name FROM tags t JOIN repos r ON r.id = t.repo_id WHERE r.name = 'team/app'")
check_contains "one image is left" v "$KEPT"
check_eq "GC collected the 69 expired images' configs (the layer stays)" $((BLOBS0 - 69)) "$(q 'SELECT count(*) FROM blobs')"
check_eq "and their objects left the bucket" "$(q 'SELECT count(*) FROM blobs')" "$(berth_blob_digests "$T/A" | wc -l)"
check_eq "it still pulls" 200 "$(code -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$A/v2/team/app/manifests/$KEPT")"
check_eq "its layer too" 200 "$(code "http://$A/v2/team/app/blobs/$LAYER")"
berth_stop
check "fsck is clean" "$BERTH_BIN" fsck --data "$T/cli"
finish
