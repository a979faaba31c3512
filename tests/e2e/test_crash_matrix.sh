#!/usr/bin/env bash
# The crash matrix (issue 10): berth is killed with SIGKILL at named fault points of every write path (include/fault.h,
# armed with BERTH_FAULT=NAME[:N]; needs a build with BERTH_FAULTS, the default outside Release), restarted, and
# checked:
#   - every blob and manifest acknowledged before (and during) the scenarios reads back byte-identical;
#   - what the killed request was doing is all-or-nothing: absent, or present whole (a tag names the old or the new
#     manifest, a deleted manifest is gone with its tags or still whole), and an interrupted upload session resumes
#     to the right digest;
#   - no orphan rows: every blobs row has its file with its size, every uploads row its staging file, every staging
#     file its row; tmp/ is empty; PRAGMA integrity_check and foreign_key_check pass.
# A blob file without a row (killed between rename and row commit) is allowed: it is invisible (DESIGN.md invariant
# 1, garbage for GC) and a re-push of the same blob commits over it; the test re-pushes it and reads it back.
#
# kill -9 is what this tests (the process dies, the kernel's page cache survives): fsync ordering against power
# loss is not something a test on one running kernel can show.
#
# With BERTH_E2E_BACKEND=pg-s3 (issue 12; server.sh's berth_backend_up) the same scenarios run on PostgreSQL
# (scripts/pg) + Ceph RGW (scripts/ceph) with TWO nodes: A is armed and killed, B (never killed) is where the client retries right after the kill — the
# blob push, the interrupted upload session resumed where the shared state says, the manifest PUT, the DELETE, the
# gc/lifecycle command run again — and must succeed.  Then A restarts clean, everything acknowledged pulls
# byte-identical through A and B, `berth fsck` (rows against the bucket) is clean and no S3 session state is left
# without its session row.  The points are the S3 upload path's own (include/fault.h: a part sent before its state
# is saved, before and after the multipart completion, after the copy to the blob's key, after the upload object's
# deletion, after a small blob's object), the writer's commit (before/after), the tag move, the GC and lifecycle
# steps and upload expiry between its rows and its abort; the disk-only points (fsync, rename) do not exist there.
# At the end the sessions' rows are aged past upload_timeout (as the disk run ages its staging files) and a restart
# of A expires them: no multipart upload and no object under uploads/ may remain in the bucket (aws s3api).
set -euo pipefail
set +m
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/server.sh"
MODE=disk
berth_is_pg && MODE=pgs3

e2e_tmpdir T
D=$T/data
on_exit berth_kill
if [ "$MODE" = pgs3 ]; then
	log "starting PostgreSQL and Ceph with radosgw"
	mkdir -p "$D" "$T/B"
	on_exit berth_backend_down "$T"
	berth_backend_up "$T"
	read -ra S3 <<<"$E2E_S3"
	BUCKET=$E2E_BUCKET
	# upload_timeout 60 s (its minimum) on A; B never expires a session during the run (30 days): only A's janitor
	# (the expiry scenario, the final check) removes the sessions the test ages. No scheduled lifecycle/GC on the
	# nodes: while one holds the maintenance lock, the killed or re-run `berth gc` would exit 3 instead of running
	export BERTH_UPLOAD_TIMEOUT=60 BERTH_LIFECYCLE_INTERVAL=0
	BERTH_UPLOAD_TIMEOUT=$((30 * 86400)) berth_start "$T/B" --no-auth
	B_REG=$REGISTRY B_PID=$BERTH_PID
	BERTH_PID=
	on_exit kill -KILL "$B_PID"
	psql_q() { berth_sql "$D" "$1"; }
fi
OCI_M=application/vnd.oci.image.manifest.v1+json
OCI_C=application/vnd.oci.image.config.v1+json
SCENARIOS=0
POINTS=()

sha() { echo "sha256:$(sha256sum "$1" | cut -c1-64)"; }
url() { echo "http://$REGISTRY$1"; }
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$@" || true; }
# getsha PATH: sha256 of a GET's body ("" on failure)
getsha() {
	local h
	h=$(curl -sf --max-time 30 -H "Accept: $OCI_M" "$(url "$1")" | sha256sum | cut -c1-64) || return 0
	[ "$h" = e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 ] || echo "sha256:$h"
}

# acknowledged content: "repo digest file" for blobs, "repo ref file" for manifests (tag or digest)
ACK_BLOBS=()
ACK_MANIFESTS=()

# push_blob REPO FILE: monolithic POST ?digest=; records it if acknowledged (201); the status in PUSHED (not
# printed: a $(...) subshell would lose the record)
push_blob() {
	PUSHED=$(code -X POST --data-binary @"$2" "$(url "/v2/$1/blobs/uploads/?digest=$(sha "$2")")")
	if [ "$PUSHED" = 201 ]; then ACK_BLOBS+=("$1 $(sha "$2") $2"); fi
}

# make_manifest OUT CONFIG LAYER NOTE: an OCI image manifest over two pushed blobs (NOTE makes it unique)
make_manifest() {
	printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}],"annotations":{"note":"%s"}}' \
		"$OCI_M" "$OCI_C" "$(sha "$2")" "$(stat -c %s "$2")" "$(sha "$3")" "$(stat -c %s "$3")" "$4" >"$1"
}

# push_manifest REPO REF FILE: records it by REF and by digest if acknowledged; the status in PUSHED
push_manifest() {
	PUSHED=$(code -X PUT -H "Content-Type: $OCI_M" --data-binary @"$3" "$(url "/v2/$1/manifests/$2")")
	if [ "$PUSHED" = 201 ]; then ACK_MANIFESTS+=("$1 $2 $3" "$1 $(sha "$3") $3"); fi
}

# unack_manifest REPO REF: forget an acknowledged manifest reference (it was deleted or moved, acknowledged)
unack_manifest() {
	local i
	for i in "${!ACK_MANIFESTS[@]}"; do
		case ${ACK_MANIFESTS[i]} in "$1 $2 "*) unset 'ACK_MANIFESTS[i]' ;; esac
	done
}
unack_blob() {
	local i
	for i in "${!ACK_BLOBS[@]}"; do
		case ${ACK_BLOBS[i]} in "$1 $2 "*) unset 'ACK_BLOBS[i]' ;; esac
	done
}

start_clean() { berth_start "$D" --no-auth; }

# start_armed POINT: berth with the fault point armed (and the log proving it is)
start_armed() {
	LOG_FROM=$(($(wc -l <"$D.log" 2>/dev/null || echo 0) + 1))
	BERTH_FAULT=$1 berth_start "$D" --no-auth
	tail -n +"$LOG_FROM" "$D.log" | grep -qF "fault injection armed: ${1%%:*}" || {
		echo "berth did not arm fault point $1: is it built with BERTH_FAULTS?" >&2
		exit 1
	}
}

# killed_at POINT: waits (up to 20 s) for berth to die at POINT; passes if it died there
killed_at() {
	local i
	for i in $(seq 1 200); do
		kill -0 "$BERTH_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$BERTH_PID" 2>/dev/null; then
		berth_kill
		echo "berth is still running: fault point $1 was not reached" >&2
		return 1
	fi
	wait "$BERTH_PID" 2>/dev/null || true
	BERTH_PID=
	tail -n +"$LOG_FROM" "$D.log" | grep -qF "fault point ${1%%:*} reached"
}

# consistent_pgs3: fsck reads every row's object in the bucket (exit 0: clean), and no S3 session state is left
# without its session row
consistent_pgs3() {
	local out rc=0
	out=$("$BERTH_BIN" fsck --data "$D" 2>&1) || rc=$?
	[ "$rc" = 0 ] || {
		echo "berth fsck exited $rc:"
		echo "$out" | tail -n 15
		return 1
	}
	[ "$(psql_q 'SELECT count(*) FROM upload_s3 s WHERE NOT EXISTS (SELECT 1 FROM uploads u WHERE u.uuid = s.uuid)')" = 0 ] || {
		echo "S3 session state without its session row"
		return 1
	}
}

# consistent: the data directory after a restart (berth stopped): no orphan rows or staging files, integrity ok
consistent() {
	local db=$D/berth.db bad=0 d s f
	[ "$MODE" = disk ] || {
		consistent_pgs3
		return
	}
	[ "$(sqlite3 "$db" 'PRAGMA integrity_check')" = ok ] || {
		echo "integrity_check failed"
		bad=1
	}
	[ -z "$(sqlite3 "$db" 'PRAGMA foreign_key_check')" ] || {
		echo "foreign_key_check failed"
		bad=1
	}
	while IFS='|' read -r d s; do
		f=$D/blobs/sha256/${d:7:2}/${d:7}
		[ -f "$f" ] && [ "$(stat -c %s "$f")" = "$s" ] || {
			echo "row without its file: $d"
			bad=1
		}
	done < <(sqlite3 "$db" 'SELECT digest, size FROM blobs')
	while read -r u; do
		[ -f "$D/uploads/$u" ] || {
			echo "upload row without its staging file: $u"
			bad=1
		}
	done < <(sqlite3 "$db" 'SELECT uuid FROM uploads')
	for f in "$D"/uploads/*; do
		[ -e "$f" ] || continue
		[ "$(sqlite3 "$db" "SELECT count(*) FROM uploads WHERE uuid = '${f##*/}'")" = 1 ] || {
			echo "staging file without a row: $f"
			bad=1
		}
	done
	[ -z "$(ls -A "$D/tmp")" ] || {
		echo "leftover files in tmp/"
		bad=1
	}
	return $bad
}

# acked_intact: every acknowledged blob and manifest reads back byte-identical
acked_intact() {
	local e repo ref file bad=0
	for e in "${ACK_BLOBS[@]}"; do
		read -r repo ref file <<<"$e"
		[ "$(getsha "/v2/$repo/blobs/$ref")" = "$ref" ] || {
			echo "acknowledged blob lost or changed: $repo $ref"
			bad=1
		}
	done
	for e in "${ACK_MANIFESTS[@]}"; do
		read -r repo ref file <<<"$e"
		[ "$(getsha "/v2/$repo/manifests/$ref")" = "$(sha "$file")" ] || {
			echo "acknowledged manifest lost or changed: $repo $ref"
			bad=1
		}
	done
	return $bad
}

# on_b / on_a: the requests that follow go to node B (pgs3: the node the client retries against) / back to A
on_b() {
	A_REG=$REGISTRY
	REGISTRY=$B_REG
}
on_a() { REGISTRY=$A_REG; }

# retried NAME EXPECTED CMD...: pgs3 only: right after the kill, the client's retry CMD against node B (run in this
# shell: it records what it acknowledges) leaves PUSHED (or its exit status) in EXPECTED ("a|b": either)
retried() {
	local name=$1 want=$2 rc=0
	shift 2
	[ "$MODE" = pgs3 ] || return 0
	on_b
	PUSHED=
	"$@" || rc=$?
	on_a
	[ -n "$PUSHED" ] || PUSHED=$rc
	case "|$want|" in
	*"|$PUSHED|"*) check_eq "$name: the client's retry against the other node" ok ok ;;
	*) check_eq "$name: the client's retry against the other node ($*)" "$want" "$PUSHED" ;;
	esac
}

# after NAME OUTCOME-CHECK...: restart clean, check the outcome and everything acknowledged, stop, check the files
after() {
	local name=$1
	shift
	start_clean
	check "$name: outcome all-or-nothing" "$@"
	check "$name: acknowledged data intact (${#ACK_BLOBS[@]} blobs, ${#ACK_MANIFESTS[@]} manifest refs)" acked_intact
	if [ "$MODE" = pgs3 ]; then
		on_b
		check "$name: acknowledged data intact through the other node" acked_intact
		on_a
	fi
	check "$name: restarts clean (SIGTERM)" berth_stop
	check "$name: no orphan rows or staging files, integrity_check ok" consistent
}

# absent_or_whole REPO DIGEST FILE: the blob is not served, or served whole; a re-push then commits it whole
absent_or_whole() {
	local c s
	c=$(code -I "$(url "/v2/$1/blobs/$2")")
	case $c in
	404) ;;
	200)
		s=$(getsha "/v2/$1/blobs/$2")
		[ "$s" = "$2" ] || {
			echo "blob visible but not whole: $s"
			return 1
		}
		;;
	*)
		echo "HEAD answered $c"
		return 1
		;;
	esac
	push_blob "$1" "$3"
	[ "$PUSHED" = 201 ] && [ "$(getsha "/v2/$1/blobs/$2")" = "$2" ]
}

# ---- the scenarios ----
N=0
newfile() {
	N=$((N + 1))
	head -c "$1" /dev/urandom >"$T/f$N"
	echo "$T/f$N"
}

# blob_mono POINT: a monolithic blob push killed at POINT
blob_mono() {
	local p=$1 f
	f=$(newfile 100000)
	start_armed "$p"
	push_blob crash/mono "$f"
	check "blob push: killed at $p" killed_at "$p"
	retried "blob push @ $p" 201 push_blob crash/mono "$f"
	after "blob push @ $p" absent_or_whole crash/mono "$(sha "$f")" "$f"
	SCENARIOS=$((SCENARIOS + 1))
	POINTS+=("$p")
}

# resume_to REPO LOC FILE: an upload session resumes: its Range is within what was sent, and PATCHing the rest
# from there + PUT ?digest= commits the whole file.  A session that no longer exists (404) is also fine when the
# kill came before the POST was answered.
resume_or_gone() {
	local repo=$1 loc=$2 f=$3 c r end have
	[ -n "$loc" ] || return 0 # the POST itself was never answered
	c=$(curl -s -D "$T/h" -o /dev/null -w '%{http_code}' "$(url "$loc")")
	[ "$c" = 404 ] && return 0
	[ "$c" = 204 ] || {
		echo "session status $c"
		return 1
	}
	r=$(tr -d '\r' <"$T/h" | awk -F': ' 'tolower($1)=="range"{print $2}')
	# "0-0" is both 0 and 1 bytes: the staging file's size (the saved S3 state's) decides
	if [ "$MODE" = pgs3 ]; then
		have=$(psql_q "SELECT coalesce((SELECT size FROM upload_s3 WHERE uuid = '${loc##*/}'), 0)")
	else
		have=$(stat -c %s "$D/uploads/${loc##*/}")
	fi
	end=$((have - 1))
	[ "$r" = "0-$((have > 0 ? have - 1 : 0))" ] && [ "$have" -le "$(stat -c %s "$f")" ] || {
		echo "session Range $r, staging file $have bytes, $(stat -c %s "$f") sent"
		return 1
	}
	tail -c +"$((end + 2))" "$f" >"$T/rest"
	if [ -s "$T/rest" ]; then
		c=$(code -X PATCH -H "Content-Range: $((end + 1))-$(($(stat -c %s "$f") - 1))" --data-binary @"$T/rest" \
			"$(url "$loc")")
	else
		c=202
	fi
	[ "$c" = 202 ] || {
		echo "resuming PATCH answered $c"
		return 1
	}
	c=$(code -X PUT "$(url "$loc?digest=$(sha "$f")")")
	[ "$c" = 201 ] || {
		echo "final PUT answered $c"
		return 1
	}
	ACK_BLOBS+=("$repo $(sha "$f") $f")
	[ "$(getsha "/v2/$repo/blobs/$(sha "$f")")" = "$(sha "$f")" ]
}

# blob_chunked POINT: POST, PATCH half, PATCH half, PUT ?digest=, killed at POINT (N-th hit with POINT:N)
# (pgs3: two chunks of 6 MiB + 1000 bytes, so that each PATCH sends a part of the multipart upload)
CHUNK=50000
[ "$MODE" = disk ] || CHUNK=$((6 * 1024 * 1024 + 1000))
# (pgs3, ABANDON = abandon: the client does not resume the session but pushes the blob again through the other
# node, as docker does after an error; the session is left to upload expiry)
blob_chunked() {
	local p=$1 f loc=
	f=$(newfile $((2 * CHUNK)))
	head -c "$CHUNK" "$f" >"$T/a"
	tail -c +$((CHUNK + 1)) "$f" >"$T/b"
	start_armed "$p"
	loc=$(curl -s --max-time 30 -X POST -D - -o /dev/null "$(url /v2/crash/chunked/blobs/uploads/)" | tr -d '\r' |
		awk -F': ' 'tolower($1)=="location"{print $2}') || true
	if [ -n "$loc" ]; then
		code -X PATCH -H "Content-Range: 0-$((CHUNK - 1))" --data-binary @"$T/a" "$(url "$loc")" >/dev/null
		code -X PATCH -H "Content-Range: $CHUNK-$((2 * CHUNK - 1))" --data-binary @"$T/b" "$(url "$loc")" >/dev/null
		code -X PUT "$(url "$loc?digest=$(sha "$f")")" >/dev/null
	fi
	check "chunked upload: killed at $p" killed_at "$p"
	if [ "${2:-}" = abandon ]; then
		retried "chunked upload @ $p (session abandoned, the blob pushed again)" 201 push_blob crash/chunked "$f"
	else
		retried "chunked upload @ $p (the session resumed)" 0 resume_or_gone crash/chunked "$loc" "$f"
	fi
	after "chunked upload @ $p" chunked_outcome crash/chunked "$loc" "$f"
	SCENARIOS=$((SCENARIOS + 1))
	POINTS+=("$p")
}
# the blob is whole if visible; else the session resumes (or is gone) and the blob then commits whole
chunked_outcome() {
	local c
	c=$(code -I "$(url "/v2/$1/blobs/$(sha "$3")")")
	if [ "$c" = 200 ]; then
		[ "$(getsha "/v2/$1/blobs/$(sha "$3")")" = "$(sha "$3")" ]
		return
	fi
	resume_or_gone "$@" && absent_or_whole "$1" "$(sha "$3")" "$3"
}

# Manifests: two blobs pushed (acknowledged) once, for every manifest scenario
prepare_manifest_blobs() {
	CFG=$T/config
	printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$CFG"
	LAYER=$(newfile 30000)
	start_clean
	push_blob crash/man "$CFG"
	push_blob crash/man "$LAYER"
	berth_stop
}

# tag_moves POINT: tag "mv" names manifest OLD (acknowledged); a PUT of NEW to "mv" is killed at POINT
tag_moves() {
	local p=$1 old=$T/old$N new=$T/new$N
	N=$((N + 1))
	make_manifest "$old" "$CFG" "$LAYER" "old-$N"
	make_manifest "$new" "$CFG" "$LAYER" "new-$N"
	start_clean
	push_manifest crash/man mv "$old"
	check_eq "tag move: the old manifest is pushed first" 201 "$PUSHED"
	berth_stop
	unack_manifest crash/man mv # the tag is about to move: checked below instead
	start_armed "$p"
	code -X PUT -H "Content-Type: $OCI_M" --data-binary @"$new" "$(url /v2/crash/man/manifests/mv)" >/dev/null
	check "manifest PUT with tag move: killed at $p" killed_at "$p"
	retried "manifest PUT with tag move @ $p" 201 push_manifest crash/man mv "$new"
	after "manifest PUT with tag move @ $p" tag_old_or_new "$old" "$new"
	SCENARIOS=$((SCENARIOS + 1))
	POINTS+=("$p")
}
tag_old_or_new() {
	local t n
	t=$(getsha /v2/crash/man/manifests/mv)
	n=$(getsha "/v2/crash/man/manifests/$(sha "$2")")
	if [ "$t" = "$(sha "$1")" ]; then
		# the old manifest still tagged: the new one is absent, or present whole by digest
		[ -z "$n" ] || [ "$n" = "$(sha "$2")" ]
	elif [ "$t" = "$(sha "$2")" ]; then
		[ "$n" = "$(sha "$2")" ] # moved: the new manifest is whole by digest too
	else
		echo "tag mv names neither manifest: '$t'"
		return 1
	fi
}

# manifest_delete POINT: manifest (tagged "del") DELETE by digest killed at POINT
manifest_delete() {
	local p=$1 m=$T/del$N
	N=$((N + 1))
	make_manifest "$m" "$CFG" "$LAYER" "del-$N"
	start_clean
	push_manifest crash/man "del$N" "$m"
	check_eq "manifest DELETE: the manifest is pushed first" 201 "$PUSHED"
	berth_stop
	unack_manifest crash/man "del$N"
	unack_manifest crash/man "$(sha "$m")"
	start_armed "$p"
	code -X DELETE "$(url "/v2/crash/man/manifests/$(sha "$m")")" >/dev/null
	check "manifest DELETE: killed at $p" killed_at "$p"
	retried "manifest DELETE @ $p (202, or 404: done before the kill)" "202|404" delete_req "/v2/crash/man/manifests/$(sha "$m")"
	after "manifest DELETE @ $p" deleted_or_whole "del$N" "$m"
	SCENARIOS=$((SCENARIOS + 1))
	POINTS+=("$p")
}
deleted_or_whole() {
	local t d
	t=$(getsha "/v2/crash/man/manifests/$1")
	d=$(getsha "/v2/crash/man/manifests/$(sha "$2")")
	if [ -z "$d" ]; then
		[ -z "$t" ] || {
			echo "manifest gone but its tag still names '$t'"
			return 1
		}
	else
		[ "$d" = "$(sha "$2")" ] && [ "$t" = "$(sha "$2")" ]
	fi
}

quiet() { "$@" >/dev/null 2>&1; }
delete_req() { PUSHED=$(code -X DELETE "$(url "$1")"); }

# blob_delete POINT: DELETE of a linked blob killed at POINT
blob_delete() {
	local p=$1 f
	f=$(newfile 20000)
	start_clean
	push_blob crash/bdel "$f"
	check_eq "blob DELETE: the blob is pushed first" 201 "$PUSHED"
	berth_stop
	unack_blob crash/bdel "$(sha "$f")"
	start_armed "$p"
	code -X DELETE "$(url "/v2/crash/bdel/blobs/$(sha "$f")")" >/dev/null
	check "blob DELETE: killed at $p" killed_at "$p"
	retried "blob DELETE @ $p (202, or 404: done before the kill)" "202|404" delete_req "/v2/crash/bdel/blobs/$(sha "$f")"
	after "blob DELETE @ $p" absent_or_whole crash/bdel "$(sha "$f")" "$f"
	SCENARIOS=$((SCENARIOS + 1))
	POINTS+=("$p")
}

# age_sessions [UUID]: session UUID (every session without it) idle for 3 days: its staging file's mtime (disk), its
# rows' times (pgs3; the multipart upload's own initiation time in RGW cannot be aged: orphans wait for real time)
age_sessions() {
	if [ "$MODE" = disk ]; then
		touch -d '3 days ago' "$D/uploads/$1"
		return
	fi
	psql_q "UPDATE upload_s3 SET updated_at = updated_at - 259200 WHERE uuid = '$1' OR '$1' = '';
		UPDATE uploads SET started_at = started_at - 259200 WHERE uuid = '$1' OR '$1' = ''" >/dev/null
}

# upload_expiry POINT: a stale session (staging file 3 days old) expired by the janitor, killed at POINT
upload_expiry() {
	local p=$1 f loc
	f=$(newfile "$CHUNK")
	start_clean
	loc=$(curl -s -X POST -D - -o /dev/null "$(url /v2/crash/exp/blobs/uploads/)" | tr -d '\r' |
		awk -F': ' 'tolower($1)=="location"{print $2}')
	code -X PATCH --data-binary @"$f" "$(url "$loc")" >/dev/null
	berth_stop
	age_sessions "${loc##*/}"
	start_armed "$p"
	check "upload expiry: killed at $p" killed_at "$p"
	start_clean
	sleep "$((5 + 2))" # the janitor's first tick (BERTH_PULL_FLUSH_INTERVAL) finishes the expiry
	check_eq "upload expiry @ $p: the stale session is gone after a restart" 404 "$(code "$(url "$loc")")"
	check "upload expiry @ $p: acknowledged data intact" acked_intact
	check "upload expiry @ $p: restarts clean (SIGTERM)" berth_stop
	check "upload expiry @ $p: no orphan rows or staging files, integrity_check ok" consistent
	SCENARIOS=$((SCENARIOS + 1))
	POINTS+=("$p")
}

# maint_image REPO TAG LAYER NOTE: pushes an image (a unique config, LAYER) tagged TAG (recorded if acknowledged;
# the manifest's status in PUSHED); its manifest file in MFILE and config file in MCONF (not in a subshell)
maint_image() {
	MCONF=$T/maint_c.$4
	MFILE=$T/maint_m.$4
	printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"n":"%s"}' "$4" >"$MCONF"
	push_blob "$1" "$MCONF"
	push_blob "$1" "$3"
	make_manifest "$MFILE" "$MCONF" "$3" "$4"
	push_manifest "$1" "$2" "$MFILE"
}

# maint_crash POINT COMMAND: `berth gc --grace 0` or `berth lifecycle run` (another process, the server stopped)
# killed at POINT over a repository with one image to keep and one to remove; then `berth fsck` exits 0, the server
# restarts, the removed image is gone or whole, and everything acknowledged (the kept image too) reads back
maint_crash() {
	local p=$1 what=$2 repo=crash/maint$((SCENARIOS + 1)) layer old keep rc=0
	layer=$(newfile 30000)
	start_clean
	maint_image "$repo" old "$layer" "old$SCENARIOS"
	check_eq "$what @ $p: the old image is pushed" 201 "$PUSHED"
	old=$MFILE
	unack_manifest "$repo" old
	unack_manifest "$repo" "$(sha "$old")"
	unack_blob "$repo" "$(sha "$MCONF")"
	sleep 1.1 # a later push time: the policy keeps the newest image
	maint_image "$repo" keep "$layer" "keep$SCENARIOS"
	check_eq "$what @ $p: the image to keep is pushed" 201 "$PUSHED"
	keep=$MFILE
	if [ "$what" = gc ]; then
		check_eq "$what @ $p: the old image is deleted (its config becomes garbage)" 202 \
			"$(code -X DELETE "$(url "/v2/$repo/manifests/$(sha "$old")")")"
	fi
	berth_stop
	if [ "$what" = gc ]; then
		BERTH_FAULT=$p "$BERTH_BIN" gc --grace 0 --data "$D" >"$T/maint.out" 2>&1 || rc=$?
	else
		printf '{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}' >"$T/keep1.json"
		check "$what @ $p: policy stored" "$BERTH_BIN" lifecycle put "$repo" "$T/keep1.json" --data "$D"
		BERTH_FAULT=$p "$BERTH_BIN" lifecycle run --repo "$repo" --data "$D" >"$T/maint.out" 2>&1 || rc=$?
	fi
	check_eq "$what @ $p: the command was killed (SIGKILL)" 137 "$rc"
	check_contains "$what @ $p: at the armed point" "fault point $p reached" "$(cat "$T/maint.out")"
	if [ "$what" = gc ]; then
		retried "$what @ $p: run again" 0 quiet "$BERTH_BIN" gc --grace 0 --data "$D"
	else
		retried "$what @ $p: run again" 0 quiet "$BERTH_BIN" lifecycle run --repo "$repo" --data "$D"
	fi
	check "$what @ $p: berth fsck exits 0" "$BERTH_BIN" fsck --data "$D"
	after "$what @ $p" maint_outcome "$repo" "$old" "$keep"
	SCENARIOS=$((SCENARIOS + 1))
	POINTS+=("$p")
}

# maint_outcome REPO OLD KEEP: the removed image is absent or whole; the kept one is whole under its tag
maint_outcome() {
	local c
	c=$(code -H "Accept: $OCI_M" "$(url "/v2/$1/manifests/$(sha "$2")")")
	case $c in
	404) ;;
	200) [ "$(getsha "/v2/$1/manifests/$(sha "$2")")" = "$(sha "$2")" ] || return 1 ;;
	*) return 1 ;;
	esac
	[ "$(getsha "/v2/$1/manifests/keep")" = "$(sha "$3")" ]
}

# ---- an acknowledged base that every scenario must leave intact ----
start_clean
BASE_C=$T/base_config
printf '{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$BASE_C"
BASE_L=$(newfile 200000)
push_blob crash/base "$BASE_C"
check_eq "base config pushed" 201 "$PUSHED"
push_blob crash/base "$BASE_L"
check_eq "base layer pushed" 201 "$PUSHED"
make_manifest "$T/base_m" "$BASE_C" "$BASE_L" base
push_manifest crash/base v1 "$T/base_m"
check_eq "base manifest pushed" 201 "$PUSHED"
berth_stop

if [ "$MODE" = disk ]; then
	log "blob commit (monolithic push)"
	for p in upload.after_write upload.before_fsync upload.after_fsync blob.before_rename blob.after_rename \
		blob.after_dir_fsync writer.before_commit writer.after_commit; do
		blob_mono "$p"
	done

	log "chunked upload (POST, PATCH, PATCH, PUT)"
	# writer.*:1 is the session row of the POST, writer.*:2 the blob row of the final PUT; upload.after_write:2 is in
	# the second PATCH; blob.after_rename in the final PUT
	for p in writer.before_commit:1 writer.after_commit:1 upload.after_write:1 upload.after_write:2 upload.after_fsync \
		blob.after_rename writer.before_commit:2 writer.after_commit:2; do
		blob_chunked "$p"
	done

	log "manifest PUT with a tag move"
	prepare_manifest_blobs
	for p in manifest.before_tag_move writer.before_commit writer.after_commit; do
		tag_moves "$p"
	done

	log "manifest DELETE"
	for p in writer.before_commit writer.after_commit; do
		manifest_delete "$p"
	done

	log "blob DELETE"
	for p in writer.before_commit writer.after_commit; do
		blob_delete "$p"
	done

	log "upload expiry"
	for p in upload.expire_before_unlink upload.expire_after_unlink writer.after_commit; do
		upload_expiry "$p"
	done

	log "gc and lifecycle (berth gc / berth lifecycle run killed)"
	for p in gc.after_link_batch gc.after_row_commit gc.after_unlink; do
		maint_crash "$p" gc
	done
	for p in lifecycle.before_commit lifecycle.after_commit; do
		maint_crash "$p" lifecycle
	done

else
	# PostgreSQL + S3 (see the header); the sessions that leave a multipart upload behind come first, so that it is
	# old enough for the orphan expiry (upload_timeout, 60 s) when the run ends
	log "pgs3: chunked upload (POST, PATCH 6 MiB, PATCH 6 MiB, PUT), resumed on the other node"
	for p in s3.part_before_save:1 s3.part_before_save:2 s3.before_complete s3.after_complete s3.after_copy \
		s3.after_upload_delete; do
		blob_chunked "$p"
	done
	blob_chunked s3.after_complete abandon # its completed upload object is left to expiry
	log "pgs3: upload expiry killed between the session's rows and its multipart upload's abort"
	upload_expiry s3.expire_before_abort
	log "pgs3: monolithic blob push"
	for p in s3.after_object writer.before_commit writer.after_commit; do
		blob_mono "$p"
	done
	log "pgs3: manifest PUT with a tag move, manifest and blob DELETE"
	prepare_manifest_blobs
	for p in manifest.before_tag_move writer.after_commit; do
		tag_moves "$p"
	done
	manifest_delete writer.before_commit
	blob_delete writer.after_commit
	log "pgs3: gc and lifecycle (berth gc / berth lifecycle run killed, then run again)"
	# `berth gc --grace 0` collects every blob that no manifest references, by design: the loose blobs acknowledged
	# above (checked after every scenario so far) are garbage from here on; the images stay acknowledged
	for i in "${!ACK_BLOBS[@]}"; do
		case ${ACK_BLOBS[i]} in crash/mono\ * | crash/chunked\ * | crash/bdel\ *) unset 'ACK_BLOBS[i]' ;; esac
	done
	for p in gc.after_row_commit gc.after_unlink; do
		maint_crash "$p" gc
	done
	maint_crash lifecycle.before_commit lifecycle

	log "pgs3: every session aged past upload_timeout; A's expiry must leave no multipart upload or upload object"
	age_sessions ""
	log "before expiry: $(psql_q 'SELECT count(*) FROM uploads') sessions, $("${S3[@]}" list-multipart-uploads \
		--bucket "$BUCKET" --query 'length(Uploads || `[]`)' --output text) multipart uploads, $("${S3[@]}" \
		list-objects-v2 --bucket "$BUCKET" --prefix reg/uploads/ --query 'length(Contents || `[]`)' --output text) upload objects"
	# orphan multipart uploads (named by no saved state) are aborted once RGW's own initiation time is older than
	# upload_timeout: wait until the newest is
	newest=$("${S3[@]}" list-multipart-uploads --bucket "$BUCKET" --query 'Uploads[].Initiated' --output text |
		tr '\t' '\n' | sort | tail -n 1)
	if [ "$newest" != None ]; then
		wait_s=$(($(date -d "$newest" +%s) + 62 - $(date +%s)))
		[ "$wait_s" -le 0 ] || sleep "$wait_s"
	fi
	start_clean
	for _ in $(seq 1 40); do # A's janitor expires at its first tick (5 s after the start)
		[ "$("${S3[@]}" list-multipart-uploads --bucket "$BUCKET" --query 'Uploads[].Key' --output text)" = None ] &&
			[ "$("${S3[@]}" list-objects-v2 --bucket "$BUCKET" --prefix reg/uploads/ --query 'Contents[].Key' --output text)" = None ] &&
			break
		sleep 0.5
	done
	check_eq "after expiry: no multipart upload left in the bucket" None \
		"$("${S3[@]}" list-multipart-uploads --bucket "$BUCKET" --query 'Uploads[].Key' --output text)"
	check_eq "after expiry: no upload object left under uploads/" None \
		"$("${S3[@]}" list-objects-v2 --bucket "$BUCKET" --prefix reg/uploads/ --query 'Contents[].Key' --output text)"
	check_eq "after expiry: no session rows left" "0 0" \
		"$(psql_q "SELECT (SELECT count(*) FROM upload_s3), (SELECT count(*) FROM uploads)" | tr '|' ' ')"
	check "after expiry: everything acknowledged intact through A" acked_intact
	on_b
	check "after expiry: everything acknowledged intact through B" acked_intact
	on_a
	check "A stops clean (SIGTERM)" berth_stop
	check "berth fsck clean at the end" consistent_pgs3
fi

distinct=$(printf '%s\n' "${POINTS[@]%%:*}" | sort -u | wc -l)
log "crash matrix: $SCENARIOS scenarios, $distinct distinct fault points: $(printf '%s\n' "${POINTS[@]%%:*}" | sort -u | tr '\n' ' ')"
finish
