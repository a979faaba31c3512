#!/usr/bin/env bash
# Durability and resource use of the real server: data survives restarts; SIGTERM lets in-flight requests
# finish; kill -9 in the middle of a large upload leaves a registry that restarts clean (no row without its
# file, no leftover spill files) and serves, and every blob acknowledged with 201 before the crash reads back intact;
# a 2 GiB chunked PATCH costs little anonymous memory.
#
# With BERTH_E2E_BACKEND=pg-s3 (server.sh) the same on PostgreSQL + Ceph RGW, where "durable" means the object is
# in the bucket and its row committed in PostgreSQL before the 201: after kill -9 every blob row has its object,
# every S3 upload session's state row has its session and its multipart upload, and fsck (re-hashing every object)
# is clean; then PostgreSQL crashes together with the node (immediate shutdown mid-uploads) and every blob
# acknowledged before reads back; the chunked PATCH is 512 MiB there (RGW keeps its objects in memory).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/server.sh"

e2e_tmpdir T
D=$T/data
berth_backend_up "$T/backend"
on_exit berth_backend_down "$T/backend"
berth_start "$D" --no-auth
on_exit berth_kill
R=http://$REGISTRY
sha() { echo "sha256:$(sha256sum "$1" | cut -c1-64)"; }
# stream BYTES SEED: incompressible pseudo-random bytes, fast (openssl dies of SIGPIPE when head is done)
stream() { (openssl enc -aes-256-ctr -nosalt -pass "pass:$2" -in /dev/zero 2>/dev/null || true) | head -c "$1"; }
rss_anon() { awk '/^RssAnon:/{print $2}' "/proc/$1/status"; }
OCI_M=application/vnd.oci.image.manifest.v1+json

# ---- restart persistence ----
head -c 1000000 /dev/urandom >"$T/layer"
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$T/config"
dl=$(sha "$T/layer")
dc=$(sha "$T/config")
curl -sf -X POST --data-binary @"$T/layer" "$R/v2/dur/app/blobs/uploads/?digest=$dl" >/dev/null
curl -sf -X POST --data-binary @"$T/config" "$R/v2/dur/app/blobs/uploads/?digest=$dc" >/dev/null
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":1000000}]}' \
	"$OCI_M" "$dc" "$(stat -c %s "$T/config")" "$dl" >"$T/manifest"
curl -sf -X PUT -H "Content-Type: $OCI_M" --data-binary @"$T/manifest" "$R/v2/dur/app/manifests/v1" >/dev/null
loc=$(curl -sf -X POST -D - -o /dev/null "$R/v2/dur/app/blobs/uploads/" | tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}')
head -c 5000 "$T/layer" >"$T/part"
curl -sf -X PATCH --data-binary @"$T/part" "$R$loc" >/dev/null
check "SIGTERM stops berth" berth_stop
berth_start "$D" --no-auth
R=http://$REGISTRY
check_eq "manifest survives a restart" "$(sha "$T/manifest")" \
	"$(curl -sf -H "Accept: $OCI_M" "$R/v2/dur/app/manifests/v1" | sha256sum | sed 's/^/sha256:/; s/ .*//')"
check_eq "blob survives a restart" "$dl" "$(curl -sf "$R/v2/dur/app/blobs/$dl" | sha256sum | sed 's/^/sha256:/; s/ .*//')"
check_eq "upload session resumes after a restart" "0-4999" \
	"$(curl -s -o /dev/null -D - "$R$loc" | tr -d '\r' | awk -F': ' 'tolower($1)=="range"{print $2}')"
tail -c +5001 "$T/layer" >"$T/rest"
check_eq "resumed session completes with the right digest" 201 \
	"$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary @"$T/rest" "$R$loc?digest=$dl")"

# ---- graceful stop: an in-flight upload finishes ----
head -c 4000000 /dev/urandom >"$T/slow"
ds=$(sha "$T/slow")
curl -s -o "$T/slow.out" -w '%{http_code}' -X POST --limit-rate 2M --data-binary @"$T/slow" \
	"$R/v2/dur/app/blobs/uploads/?digest=$ds" >"$T/slow.code" &
cpid=$!
sleep 0.7
kill -TERM "$BERTH_PID"
wait $cpid || true
check_eq "upload in flight at SIGTERM completes" 201 "$(cat "$T/slow.code")"
check "berth exits after SIGTERM" berth_stop
# pull times are kept in memory and written in batches (and at stop): the GET above was recorded
check_eq "last pull time recorded for the pulled manifest" 1 \
	"$(berth_sql "$D" "SELECT count(*) FROM manifests WHERE digest = '$(sha "$T/manifest")' AND last_pulled_at >= pushed_at")"
check_eq "push time recorded" 1 "$(berth_sql "$D" "SELECT count(*) FROM manifests WHERE pushed_at > 0 AND digest = '$(sha "$T/manifest")'")"

# ---- kill -9 during a large upload ----
berth_start "$D" --no-auth
R=http://$REGISTRY
loc=$(curl -sf -X POST -D - -o /dev/null "$R/v2/dur/big/blobs/uploads/" | tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}')
stream 400000000 crash |
	curl -s -o /dev/null -X PATCH -T - --limit-rate 100M "$R$loc" &
cpid=$!
sleep 1.5
berth_kill
wait $cpid || true
# and once more while monolithic uploads are being committed
berth_start "$D" --no-auth
R=http://$REGISTRY
for i in $(seq 1 20); do
	head -c 200000 /dev/urandom >"$T/m$i"
	curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$T/m$i" \
		"$R/v2/dur/many/blobs/uploads/?digest=$(sha "$T/m$i")" >"$T/m$i.code" &
done
sleep 0.05
berth_kill
wait || true
berth_start "$D" --no-auth
R=http://$REGISTRY
check_eq "registry serves after kill -9" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$R/v2/dur/app/manifests/v1" -H "Accept: $OCI_M")"
berth_sql "$D" 'SELECT digest FROM blobs' | sort >"$T/rows"
berth_blob_digests "$D" >"$T/stored"
check "there are blob rows to compare" test -s "$T/rows"
check_eq "every blob row has its file (or object)" "" "$(comm -23 "$T/rows" "$T/stored")"
if berth_is_pg; then
	check_eq "every S3 upload state row has its session row" 0 \
		"$(berth_sql "$D" 'SELECT count(*) FROM upload_s3 s WHERE NOT EXISTS (SELECT 1 FROM uploads u WHERE u.uuid = s.uuid)')"
	# shellcheck disable=SC2086
	$E2E_S3 list-multipart-uploads --bucket "$E2E_BUCKET" --query 'Uploads[].UploadId' --output text |
		tr '\t' '\n' | sort >"$T/mpus"
	check_eq "every saved multipart upload id names a multipart upload in the bucket" "" \
		"$(comm -23 <(berth_sql "$D" "SELECT mpu_id FROM upload_s3 WHERE mpu_id <> ''" | sort) "$T/mpus")"
	OUT=$("$BERTH_BIN" fsck --data "$D" 2>&1) && rc=0 || rc=$?
	check_eq "fsck (every object re-hashed, rows against objects) is clean" 0 "$rc"
	[ "$rc" = 0 ] || printf '%s\n' "$OUT" | tail -n 20
else
	orphan_rows=0
	while read -r uuid; do [ -f "$D/uploads/$uuid" ] || orphan_rows=$((orphan_rows + 1)); done < <(sqlite3 "$D/berth.db" 'SELECT uuid FROM uploads')
	check_eq "every upload row has its staging file" 0 "$orphan_rows"
	orphan_files=0
	for f in "$D"/uploads/*; do
		[ -e "$f" ] || continue
		[ -n "$(sqlite3 "$D/berth.db" "SELECT 1 FROM uploads WHERE uuid='$(basename "$f")'")" ] || orphan_files=$((orphan_files + 1))
	done
	check_eq "no staging file without its row" 0 "$orphan_files"
	check_eq "integrity_check" ok "$(sqlite3 "$D/berth.db" 'PRAGMA integrity_check')"
fi
check_eq "no spill files left in tmp/" 0 "$(find "$D/tmp" -type f | wc -l)"
bad=0 acked=0
for i in $(seq 1 20); do
	code=$(curl -s -o "$T/got" -w '%{http_code}' "$R/v2/dur/many/blobs/$(sha "$T/m$i")")
	if [ "$code" = 200 ] && ! cmp -s "$T/got" "$T/m$i"; then bad=$((bad + 1)); fi
	if [ "$(cat "$T/m$i.code")" = 201 ]; then
		acked=$((acked + 1))
		[ "$code" = 200 ] || bad=$((bad + 1))
	fi
done
log "$acked of the 20 uploads were acknowledged (201) before kill -9"
check_eq "every blob acknowledged before the crash reads back intact" 0 "$bad"
check_eq "the interrupted session can be resumed or restarted" 1 \
	"$(curl -s -o /dev/null -w '%{http_code}' "$R$loc" | grep -cE '^(204|404)$')"

# ---- PostgreSQL: the database crashes mid-uploads (immediate shutdown), then the node (kill -9) ----
if berth_is_pg; then
	# upl FIRST LAST: monolithic uploads one after the other, each one's status into p<i>.code
	upl() {
		local i
		for i in $(seq "$1" "$2"); do
			curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$T/p$i" \
				"$R/v2/dur/pgcrash/blobs/uploads/?digest=$(sha "$T/p$i")" >"$T/p$i.code" || true
		done
	}
	for i in $(seq 21 200); do head -c 100000 /dev/urandom >"$T/p$i"; done
	upl 21 80 &
	upl 81 140 &
	upl 141 200 &
	for _ in $(seq 1 100); do # until the first acknowledgement
		grep -qx 201 "$T"/p*.code 2>/dev/null && break
		sleep 0.1
	done
	# the database first: a commit berth saw succeed just before must survive PostgreSQL's crash recovery
	check "PostgreSQL crashes (immediate shutdown) mid-uploads and restarts" berth_pg_crash "$T/backend"
	# berth reconnects: the uploads going on succeed again
	head -c 1000 /dev/urandom >"$T/probe"
	again=0
	for _ in $(seq 1 100); do
		again=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$T/probe" \
			"$R/v2/dur/pgcrash/blobs/uploads/?digest=$(sha "$T/probe")")
		[ "$again" = 201 ] && break
		sleep 0.1
	done
	check_eq "uploads succeed again after PostgreSQL restarted (berth reconnects)" 201 "$again"
	sleep 0.2
	berth_kill
	wait || true
	berth_start "$D" --no-auth
	R=http://$REGISTRY
	bad=0 acked=0
	for i in $(seq 21 200); do
		code=$(curl -s -o "$T/got" -w '%{http_code}' "$R/v2/dur/pgcrash/blobs/$(sha "$T/p$i")")
		if [ "$code" = 200 ] && ! cmp -s "$T/got" "$T/p$i"; then bad=$((bad + 1)); fi
		if [ "$(cat "$T/p$i.code" 2>/dev/null)" = 201 ]; then
			acked=$((acked + 1))
			[ "$code" = 200 ] || bad=$((bad + 1))
		fi
	done
	log "$acked of 180 uploads acknowledged (201) around PostgreSQL's crash and berth's kill -9; statuses:" \
		"$(for i in $(seq 21 200); do cat "$T/p$i.code" 2>/dev/null || printf none; echo; done | sort | uniq -c | tr '\n' ' ')"
	check "some uploads were acknowledged before the crashes" test "$acked" -gt 0
	check_eq "every blob acknowledged around PostgreSQL's crash and berth's kill -9 reads back intact" 0 "$bad"
	berth_sql "$D" 'SELECT digest FROM blobs' | sort >"$T/rows"
	berth_blob_digests "$D" >"$T/stored"
	check_eq "every blob row has its object after the database's crash recovery" "" "$(comm -23 "$T/rows" "$T/stored")"
fi

# ---- memory: one 2 GiB (S3: 512 MiB; env DUR_PATCH_MB) chunked PATCH ----
SIZE_MB=2048
! berth_is_pg || SIZE_MB=512
SIZE_MB=${DUR_PATCH_MB:-$SIZE_MB} # env DUR_PATCH_MB overrides
SIZE=$((SIZE_MB * 1024 * 1024)) SZ="$SIZE_MB MiB"
[ "$SIZE_MB" != 2048 ] || SZ="2 GiB"
loc=$(curl -sf -X POST -D - -o /dev/null "$R/v2/dur/huge/blobs/uploads/" | tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}')
base=$(rss_anon "$BERTH_PID")
peak=$base
(while kill -0 "$BERTH_PID" 2>/dev/null; do rss_anon "$BERTH_PID"; sleep 0.05; done) >"$T/rss" &
spid=$!
digest=$(stream $SIZE huge |
	tee >(curl -s -o /dev/null -w '%{http_code}' -X PATCH -T - "$R$loc" >"$T/patch.code") |
	sha256sum | cut -c1-64)
for i in $(seq 1 600); do [ -s "$T/patch.code" ] && break; sleep 0.1; done
check_eq "$SZ chunked PATCH accepted" 202 "$(cat "$T/patch.code")"
check_eq "$SZ blob committed" 201 "$(curl -s -o /dev/null -w '%{http_code}' -X PUT "$R$loc?digest=sha256:$digest")"
kill $spid 2>/dev/null || true
wait $spid 2>/dev/null || true
peak=$(sort -n "$T/rss" | tail -1)
growth_mib=$(((peak - base) / 1024))
echo "anonymous RSS: base $((base / 1024)) MiB, peak $((peak / 1024)) MiB, growth ${growth_mib} MiB during a $SZ chunked PATCH"
check "anonymous RSS growth under 64 MiB (was ${growth_mib} MiB)" test "$growth_mib" -lt 64
check_eq "$SZ blob reads back" "sha256:$digest" \
	"$(curl -s "$R/v2/dur/huge/blobs/sha256:$digest" | sha256sum | sed 's/^/sha256:/; s/ .*//')"
check "SIGTERM after the large upload" berth_stop

# ---- a client slower than request_timeout is cut off; its session and the server are unharmed ----
printf 'request_timeout = 2\n' >"$T/short.conf"
berth_start "$D" --no-auth --config "$T/short.conf"
R=http://$REGISTRY
loc=$(curl -sf -X POST -D - -o /dev/null "$R/v2/dur/slow/blobs/uploads/" | tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}')
head -c 2000000 /dev/urandom >"$T/slowbody"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 -X PATCH --limit-rate 200K --data-binary @"$T/slowbody" "$R$loc" || true)
check "a body slower than request_timeout is cut off (got $code)" test "$code" != 202
# the body streams into the session (issue 13): what arrived before the cut is kept, never more than was sent
rng=$(curl -s -o /dev/null -D - "$R$loc" | tr -d '\r' | awk -F': ' 'tolower($1)=="range"{print $2}')
check "the session holds at most what was sent ($rng)" \
	bash -c '[[ $1 =~ ^0-([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -lt 2000000 ]' _ "$rng"
check_eq "the server still serves" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$R/v2/")"
check "SIGTERM" berth_stop

# ---- upload sessions left open do not use up descriptors (BERTH_SESSIONS_OPEN_MAX = 512 stay open) ----
berth_start "$D" --no-auth
R=http://$REGISTRY
fds0=$(ls "/proc/$BERTH_PID/fd" | wc -l)
nofile=$(awk '/^Max open files/{print ($4 == $5) ? "raised" : $4 " of " $5}' "/proc/$BERTH_PID/limits")
check_eq "the soft descriptor limit is raised to the hard one" raised "$nofile"
/usr/bin/python3 - "$REGISTRY" 700 "$T/sessions" <<'PY'
import http.client, sys
host, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = http.client.HTTPConnection(host, timeout=60)
locs = []
for i in range(n):
    c.request("POST", "/v2/dur/open/blobs/uploads/")
    r = c.getresponse(); r.read()
    assert r.status == 202, r.status
    loc = r.getheader("Location")
    c.request("PATCH", loc, body=b"x%05d" % i, headers={"Content-Type": "application/octet-stream"})
    r = c.getresponse(); r.read()
    assert r.status == 202, r.status
    locs.append(r.getheader("Location"))
open(out, "w").write("\n".join(locs) + "\n")
PY
fds1=$(ls "/proc/$BERTH_PID/fd" | wc -l)
echo "descriptors: $fds0 before, $fds1 with 700 sessions left open"
check "700 open sessions hold at most 512 + 32 more descriptors (was $((fds1 - fds0)))" test $((fds1 - fds0)) -le 544
first=$(head -1 "$T/sessions")
d0=$(printf 'x00000' | sha256sum | cut -c1-64)
check_eq "the oldest session (closed) still completes" 201 \
	"$(curl -s -o /dev/null -w '%{http_code}' -X PUT "$R$first?digest=sha256:$d0")"
check_eq "... with the bytes it was sent" "sha256:$d0" \
	"$(curl -s "$R/v2/dur/open/blobs/sha256:$d0" | sha256sum | sed 's/^/sha256:/; s/ .*//')"
check "SIGTERM" berth_stop
finish
