#!/usr/bin/env bash
# shellcheck disable=SC1091,SC2317  # sourced libs; helpers are called via check
# The S3 upload path's hard cases against real Ceph RGW (scripts/ceph), two berth processes A and B sharing one
# data directory (SQLite metadata) and one bucket:
#   1. blobs above the CopyObject limit: the commit's copy becomes a multipart copy (UploadPartCopy ranges).  The
#      limit is lowered for the test (BERTH_TEST_S3_COPY_MAX = 32 MiB, parts of BERTH_TEST_S3_COPY_PART = 6 MiB:
#      a real 5 GiB blob does not fit a memstore OSD): chunked, monolithic and ECR CompleteLayerUpload pushes of
#      ~40 MiB, pulled byte-identical, the object's ETag showing the copy's part count; a cross-repository mount
#      copies nothing.
#   2. 20 chunked PATCHes of 5 MiB (each answered after the writer saved the state) and 8 concurrent chunked
#      uploads, byte-identical; B continues what A saved.
#   3. a PATCH that breaks off keeps every byte that arrived (not only the acknowledged ones).
#   4. a PATCH streaming for longer than upload_timeout on A while B's upload expiry runs: its multipart upload is
#      named in the database before its first part and its row is refreshed while it streams, so B removes an
#      idle session but neither aborts nor expires the streaming one, which then completes.
#   1c. a node killed (fault point s3.copy_after_part) in the middle of a multipart copy leaves it in RGW: the
#      upload expiry keeps it while younger than BERTH_S3_COPY_ORPHAN_AGE (lowered by BERTH_TEST_S3_COPY_ORPHAN_AGE)
#      and aborts it once older (aws s3api list-multipart-uploads); the blob pushed again pulls byte-identical.
#   5. S3 credentials rotated on SIGHUP: a second key pair is created, the config file switched to it, the old one
#      deleted in RGW; after `kill -HUP` pushes and pulls work with the new one.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
. "$HERE/server.sh"

e2e_tmpdir T
on_exit "$ROOT/scripts/ceph" stop "$T/ceph"
log "starting Ceph with radosgw"
eval "$("$ROOT/scripts/ceph" start "$T/ceph")"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_PAGER="" CEPH_CONF
BUCKET=berth-up
S3=(/usr/bin/aws --endpoint-url "$S3_ENDPOINT" --region us-east-1 s3api)
"${S3[@]}" create-bucket --bucket "$BUCKET" >/dev/null
export BERTH_STORAGE=s3://$BUCKET/reg BERTH_S3_ENDPOINT=$S3_ENDPOINT BERTH_UPLOAD_TIMEOUT=60
export BERTH_TEST_S3_COPY_MAX=$((32 * 1024 * 1024)) BERTH_TEST_S3_COPY_PART=$((6 * 1024 * 1024))
DATA=$T/data
P=$(e2e_prefix)
MiB=$((1024 * 1024))

# start_node NAME LOG [ARGS]: berth on DATA as node NAME logging to LOG (sets NAME_PID, NAME_URL)
start_node() {
	local name=$1 logf=$2 port i
	shift 2
	port=$(free_port)
	"$BERTH_BIN" serve --data "$DATA" --listen "127.0.0.1:$port" --access-log off "$@" >>"$logf" 2>&1 &
	printf -v "${name}_PID" '%s' "$!"
	printf -v "${name}_URL" 'http://127.0.0.1:%s' "$port"
	for i in $(seq 1 100); do
		case $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/" || true) in 200 | 401) return 0 ;; esac
		sleep 0.1
	done
	echo "node $name did not start" >&2
	tail -20 "$logf" >&2
	return 1
}
stop_pid() { kill -TERM "$1" 2>/dev/null && wait "$1" 2>/dev/null || true; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
piece() { dd if="$1" of="$4" bs=1M iflag=skip_bytes,count_bytes skip="$2" count="$3" status=none; }
mpus() { "${S3[@]}" list-multipart-uploads --bucket "$BUCKET" --query 'Uploads[].Key' --output text; }
hdr() { tr -d '\r' <"$2" | awk -v n="$1" 'BEGIN{IGNORECASE=1} index(tolower($0), tolower(n)":")==1 {sub(/^[^:]*: */,""); print}' | tail -1; }
key_of() { echo "reg/blobs/sha256/${1:7:2}/${1#sha256:}"; }
# chunked_push URL REPO FILE CHUNK: POST, PATCHes of CHUNK bytes with Content-Range, PUT; prints "OK" or the failure
chunked_push() {
	local url=$1 repo=$2 f=$3 chunk=$4 off=0 n size loc code d
	size=$(stat -c %s "$f")
	d=sha256:$(sha "$f")
	curl -s -D "$f.h" -o /dev/null -X POST "$url/v2/$repo/blobs/uploads/"
	loc=$(hdr location "$f.h")
	while [ $off -lt "$size" ]; do
		n=$chunk
		[ $((off + n)) -gt "$size" ] && n=$((size - off))
		piece "$f" $off $n "$f.piece"
		code=$(curl -s -D "$f.h" -o /dev/null -w '%{http_code}' -X PATCH -H "Content-Range: $off-$((off + n - 1))" \
			--data-binary @"$f.piece" "$url$loc")
		if [ "$code" != 202 ] || [ "$(hdr range "$f.h")" != "0-$((off + n - 1))" ]; then
			echo "PATCH at $off: $code $(hdr range "$f.h")"
			return 0
		fi
		off=$((off + n))
	done
	code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT "$url$loc?digest=$d")
	[ "$code" = 201 ] && echo OK || echo "PUT: $code"
}

# A never expires anything (upload_timeout 1 h): only B's expiry (60 s) can touch the sessions of part 4
BERTH_UPLOAD_TIMEOUT=3600 start_node A "$T/a.log" --no-auth
start_node B "$T/b.log" --no-auth --threads 1
on_exit stop_pid "$A_PID"
on_exit stop_pid "$B_PID"

########################################################################
log "4a. a PATCH that streams past upload_timeout starts now on A (checked in part 4), with an idle decoy session"
head -c $((24 * MiB + 11)) /dev/urandom >"$T/long"
curl -s -D "$T/h" -o /dev/null -X POST "$A_URL/v2/$P/long/blobs/uploads/"
LONG_LOC=$(hdr location "$T/h")
curl -s -D "$T/h" -o /dev/null -X POST "$A_URL/v2/$P/decoy/blobs/uploads/"
DECOY_LOC=$(hdr location "$T/h")
head -c $MiB /dev/urandom >"$T/decoy"
curl -s -o /dev/null -X PATCH --data-binary @"$T/decoy" "$A_URL$DECOY_LOC"
LONG_T0=$(date +%s)
# 12 MiB at once (two parts go out), then 4 KiB every 0.5 s until $T/go exists, then the rest; prints the status
/usr/bin/python3 - "${A_URL#http://}" "$LONG_LOC" "$T/long" "$T/go" >"$T/long.status" <<'EOF' &
import os, socket, sys, time
host, port = sys.argv[1].split(":")
data = open(sys.argv[3], "rb").read()
s = socket.create_connection((host, int(port)))
s.sendall(f"PATCH {sys.argv[2]} HTTP/1.1\r\nHost: {sys.argv[1]}\r\nContent-Type: application/octet-stream\r\n"
          f"Content-Length: {len(data)}\r\n\r\n".encode())
off = 12 << 20
s.sendall(data[:off])
while not os.path.exists(sys.argv[4]):
    s.sendall(data[off:off + 4096])
    off += 4096
    time.sleep(0.5)
s.sendall(data[off:])
answer = b""
while b"\r\n\r\n" not in answer:
    chunk = s.recv(4096)
    if not chunk:
        break
    answer += chunk
print(answer.split(b"\r\n")[0].decode(errors="replace").split(" ")[1] if answer else "none")
EOF
LONG_PID=$!

########################################################################
log "1. blobs above the CopyObject limit (lowered to 32 MiB): multipart copy in 6 MiB UploadPartCopy parts"
head -c $((40 * MiB + 123)) /dev/urandom >"$T/c40"
D=sha256:$(sha "$T/c40")
check_eq "chunked push of 40 MiB (4 PATCHes of 10 MiB) through A" OK "$(chunked_push "$A_URL" "$P/copy" "$T/c40" $((10 * MiB)))"
curl -s -o "$T/c40.b" "$B_URL/v2/$P/copy/blobs/$D"
check "pulled through B: byte-identical" cmp "$T/c40" "$T/c40.b"
HO=$("${S3[@]}" head-object --bucket "$BUCKET" --key "$(key_of "$D")")
check_eq "aws s3api head-object: the object's size" $((40 * MiB + 123)) "$(jq -r .ContentLength <<<"$HO")"
check_contains "... its ETag says 7 parts (the copy's, not the upload's 5 MiB parts)" '-7"' "$(jq -r .ETag <<<"$HO")"
check_contains "A logged the multipart copy" "in 7 parts (UploadPartCopy, $((40 * MiB + 123)) bytes)" "$(cat "$T/a.log")"
check_eq "no multipart upload left but part 4's (upload and copy completed)" "reg/uploads/${LONG_LOC##*/}" "$(mpus)"
check_eq "no upload object left" "None" "$("${S3[@]}" list-objects-v2 --bucket "$BUCKET" --prefix reg/uploads/ --query 'Contents[].Key' --output text)"

head -c $((33 * MiB)) /dev/urandom >"$T/c33"
D33=sha256:$(sha "$T/c33")
check_eq "monolithic push of 33 MiB (POST ?digest=): 201" 201 \
	"$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$T/c33" "$B_URL/v2/$P/copy/blobs/uploads/?digest=$D33")"
curl -s -o "$T/c33.a" "$A_URL/v2/$P/copy/blobs/$D33"
check "pulled through A: byte-identical" cmp "$T/c33" "$T/c33.a"
check_contains "... its object was copied in 6 parts" '-6"' \
	"$("${S3[@]}" head-object --bucket "$BUCKET" --key "$(key_of "$D33")" --query ETag --output text)"

head -c $((20 * MiB)) /dev/urandom >"$T/c20"
D20=sha256:$(sha "$T/c20")
curl -s -o /dev/null -X POST --data-binary @"$T/c20" "$A_URL/v2/$P/copy/blobs/uploads/?digest=$D20"
check_not_contains "a 20 MiB blob (below the limit) is one CopyObject" "copied to $(key_of "$D20")" "$(cat "$T/a.log")"
curl -s -o "$T/c20.b" "$B_URL/v2/$P/copy/blobs/$D20"
check "... and byte-identical" cmp "$T/c20" "$T/c20.b"

COPIES=$(grep -c "UploadPartCopy" "$T/a.log" "$T/b.log" | awk -F: '{s+=$2} END{print s}')
check_eq "cross-repository mount of the 40 MiB blob: 201" 201 \
	"$(curl -s -o /dev/null -w '%{http_code}' -X POST "$A_URL/v2/$P/mounted/blobs/uploads/?mount=$D&from=$P/copy")"
curl -s -o "$T/c40.m" "$B_URL/v2/$P/mounted/blobs/$D"
check "the mounted blob pulls byte-identical" cmp "$T/c40" "$T/c40.m"
check_eq "... and the mount copied nothing (a row only)" "$COPIES" \
	"$(grep -c "UploadPartCopy" "$T/a.log" "$T/b.log" | awk -F: '{s+=$2} END{print s}')"

log "1b. ECR CompleteLayerUpload of a 33 MiB layer (3 parts of 11 MiB) on a node with auth on"
printf 'alice-password-1\n' | "$BERTH_BIN" user add alice --password-stdin --data "$DATA" >/dev/null
"$BERTH_BIN" grant add user:alice admin 'ecr/*' --data "$DATA" >/dev/null
"$BERTH_BIN" accesskey create --user alice --data "$DATA" >"$T/alice.key"
start_node C "$T/c.log"
on_exit stop_pid "$C_PID"
ecr() {
	AWS_ACCESS_KEY_ID=$(grep '^AWS_ACCESS_KEY_ID=' "$T/alice.key" | cut -d= -f2-) \
		AWS_SECRET_ACCESS_KEY=$(grep '^AWS_SECRET_ACCESS_KEY=' "$T/alice.key" | cut -d= -f2-) \
		/usr/bin/aws --endpoint-url "$C_URL" --region us-east-1 ecr "$@" 2>&1
}
head -c $((33 * MiB)) /dev/urandom >"$T/ecr"
LD=sha256:$(sha "$T/ecr")
ecr create-repository --repository-name "ecr/$P" >/dev/null
UP=$(ecr initiate-layer-upload --repository-name "ecr/$P" | jq -r .uploadId)
ok=1
for i in 0 1 2; do
	piece "$T/ecr" $((i * 11 * MiB)) $((11 * MiB)) "$T/ecr.part"
	last=$(ecr upload-layer-part --repository-name "ecr/$P" --upload-id "$UP" --part-first-byte $((i * 11 * MiB)) \
		--part-last-byte $(((i + 1) * 11 * MiB - 1)) --layer-part-blob "fileb://$T/ecr.part" | jq -r .lastByteReceived)
	[ "$last" = $(((i + 1) * 11 * MiB - 1)) ] || ok=0
done
check_eq "three upload-layer-part calls, each answered with the new last byte" 1 "$ok"
check_eq "complete-layer-upload" "$LD" \
	"$(ecr complete-layer-upload --repository-name "ecr/$P" --upload-id "$UP" --layer-digests "$LD" | jq -r .layerDigest)"
check_contains "... copied in 6 parts (UploadPartCopy)" "in 6 parts (UploadPartCopy, $((33 * MiB)) bytes)" "$(cat "$T/c.log")"
curl -s -o "$T/ecr.out" "$A_URL/v2/ecr/$P/blobs/$LD"
check "the ECR layer pulls byte-identical" cmp "$T/ecr" "$T/ecr.out"
stop_pid "$C_PID"

########################################################################
log "2. 12 chunked PATCHes of 5 MiB, saved by the writer; 8 concurrent chunked uploads"
FDS0=$(ls "/proc/$A_PID/fd" | wc -l)
head -c $((60 * MiB)) /dev/urandom >"$T/p100"
check_eq "12 PATCHes of 5 MiB through A, PUT: every answer right" OK "$(chunked_push "$A_URL" "$P/many" "$T/p100" $((5 * MiB)))"
curl -s -o "$T/p100.b" "$B_URL/v2/$P/many/blobs/sha256:$(sha "$T/p100")"
check "pulled through B: byte-identical" cmp "$T/p100" "$T/p100.b"
rm -f "$T/p100" "$T/p100.b"
for i in 1 2 3 4 5 6 7 8; do
	head -c $((6 * MiB + i)) /dev/urandom >"$T/conc$i"
	chunked_push "$A_URL" "$P/conc" "$T/conc$i" $((3 * MiB)) >"$T/conc$i.out" &
done
wait_ok=1
for i in 1 2 3 4 5 6 7 8; do
	while [ ! -s "$T/conc$i.out" ]; do sleep 0.2; done
	[ "$(cat "$T/conc$i.out")" = OK ] || wait_ok=0
done
check_eq "8 concurrent uploads of 6 MiB in 3 MiB PATCHes: all OK" 1 "$wait_ok"
ok=1
for i in 1 2 3 4 5 6 7 8; do
	curl -s -o "$T/conc$i.b" "$B_URL/v2/$P/conc/blobs/sha256:$(sha "$T/conc$i")"
	cmp -s "$T/conc$i" "$T/conc$i.b" || ok=0
done
check_eq "... each byte-identical through B" 1 "$ok"
# each PATCH ran on a thread of its own that talked to RGW: its connection must close with it.  What may stay open:
# one keep-alive connection per pool worker (16), event loop (2) and the janitor; the requests above were over 60.
rgw_conns() { ss -tnpH state established "( dport = :${S3_ENDPOINT##*:} )" | grep -c "pid=$A_PID," || true; }
for i in $(seq 1 100); do # the last threads may still be exiting after their answers
	[ "$(rgw_conns)" -le 19 ] && break
	sleep 0.1
done
FDS1=$(ls "/proc/$A_PID/fd" | wc -l)
log "A's peak RSS so far: $(awk '/VmHWM/ {print $2, $3}' "/proc/$A_PID/status"); descriptors $FDS0 -> $FDS1"
check "A keeps at most one RGW connection per long-lived thread (those of upload threads close with them)" \
	test "$(rgw_conns)" -le 19

########################################################################
log "3. a PATCH that breaks off keeps every byte that arrived"
head -c $((9 * MiB + 99)) /dev/urandom >"$T/resume"
D=sha256:$(sha "$T/resume")
curl -s -D "$T/h" -o /dev/null -X POST "$A_URL/v2/$P/resume/blobs/uploads/"
LOC=$(hdr location "$T/h")
piece "$T/resume" 0 $((2 * MiB)) "$T/piece"
curl -s -o /dev/null -X PATCH -H "Content-Range: 0-$((2 * MiB - 1))" --data-binary @"$T/piece" "$A_URL$LOC"
# a PATCH announcing the rest but cut off after 6 MiB (a 5 MiB part goes out, 3 MiB stay in the tail)
/usr/bin/python3 - "${A_URL#http://}" "$LOC" "$T/resume" <<'EOF'
import socket, sys
host, port = sys.argv[1].split(":")
data = open(sys.argv[3], "rb").read()[2 << 20:]
s = socket.create_connection((host, int(port)))
s.sendall(f"PATCH {sys.argv[2]} HTTP/1.1\r\nHost: {sys.argv[1]}\r\nContent-Type: application/octet-stream\r\n"
          f"Content-Range: {2 << 20}-{(2 << 20) + len(data) - 1}\r\nContent-Length: {len(data)}\r\n\r\n".encode())
s.sendall(data[:6 << 20])
s.close()
EOF
for i in $(seq 1 100); do # until A noticed the broken connection and saved the session
	curl -s -D "$T/h" -o /dev/null "$B_URL$LOC"
	[ "$(hdr range "$T/h")" = "0-$((8 * MiB - 1))" ] && break
	sleep 0.1
done
check_eq "status through B after the broken PATCH: all 8 MiB that arrived" "0-$((8 * MiB - 1))" "$(hdr range "$T/h")"
piece "$T/resume" $((8 * MiB)) $((MiB + 99)) "$T/piece"
check_eq "the rest PATCHed through B from there" 202 \
	"$(curl -s -o /dev/null -w '%{http_code}' -X PATCH -H "Content-Range: $((8 * MiB))-$((9 * MiB + 98))" \
		--data-binary @"$T/piece" "$B_URL$LOC")"
check_eq "PUT finishes it" 201 "$(curl -s -o /dev/null -w '%{http_code}' -X PUT "$A_URL$LOC?digest=$D")"
curl -s -o "$T/resume.b" "$B_URL/v2/$P/resume/blobs/$D"
check "the resumed blob is byte-identical" cmp "$T/resume" "$T/resume.b"

########################################################################
log "1c. a multipart copy left by a node killed mid-copy: kept while young, aborted by the expiry once old enough"
# (runs while part 4's PATCH streams on: F's upload_timeout is an hour, so its expiry touches no session of part 4)
export BERTH_UPLOAD_TIMEOUT=3600
BERTH_FAULT=s3.copy_after_part start_node F "$T/f.log" --no-auth --log-level debug
on_exit stop_pid "$F_PID"
head -c $((40 * MiB + 7)) /dev/urandom >"$T/orph"
DO=sha256:$(sha "$T/orph")
KO=$(key_of "$DO")
check_fail "a 40 MiB push through F (killed after the copy's first UploadPartCopy)" curl -sf -o /dev/null -X POST \
	--data-binary @"$T/orph" "$F_URL/v2/$P/orphan/blobs/uploads/?digest=$DO"
rc=0
wait "$F_PID" || rc=$?
check_eq "F was killed by SIGKILL at s3.copy_after_part" 137 "$rc"
KILLED=$(date +%s)
copies() { mpus | tr '\t' '\n' | grep -c "^$KO\$" || true; }
check_eq "the multipart copy to the blob's key is left in RGW" 1 "$(copies)"
# restarted with the age at an hour: its first expiry round (at start) sees the copy and keeps it
BERTH_TEST_S3_COPY_ORPHAN_AGE=3600 start_node F "$T/f.log" --no-auth --log-level debug
for i in $(seq 1 100); do grep -q "multipart copy to $KO begun" "$T/f.log" && break; sleep 0.1; done
check_contains "F's expiry saw the copy and kept it (younger than an hour)" "multipart copy to $KO begun" "$(cat "$T/f.log")"
check_eq "it is still in RGW" 1 "$(copies)"
stop_pid "$F_PID"
while [ $(($(date +%s) - KILLED)) -lt 3 ]; do sleep 0.2; done
# restarted with the age at 1 s (the copy began over 2 s ago): its first expiry round aborts it
BERTH_TEST_S3_COPY_ORPHAN_AGE=1 start_node F "$T/f.log" --no-auth
for i in $(seq 1 100); do grep -q "multipart copy to $KO left by a crash: aborted" "$T/f.log" && break; sleep 0.1; done
check_contains "F's expiry aborted it" "multipart copy to $KO left by a crash: aborted" "$(cat "$T/f.log")"
check_eq "aws s3api list-multipart-uploads: the copy is gone" 0 "$(copies)"
check_eq "the blob pushed again through A: 201" 201 "$(curl -s -o /dev/null -w '%{http_code}' -X POST \
	--data-binary @"$T/orph" "$A_URL/v2/$P/orphan/blobs/uploads/?digest=$DO")"
curl -s -o "$T/orph.f" "$F_URL/v2/$P/orphan/blobs/$DO"
check "pulled through F: byte-identical" cmp "$T/orph" "$T/orph.f"
stop_pid "$F_PID"
export BERTH_UPLOAD_TIMEOUT=60

########################################################################
log "4b. B restarts past upload_timeout while A's PATCH still streams: B's expiry must leave it alone"
while [ $(($(date +%s) - LONG_T0)) -lt 66 ]; do sleep 1; done
check "the long PATCH is still streaming" kill -0 "$LONG_PID"
stop_pid "$B_PID"
start_node B "$T/b.log" --no-auth --threads 1
DECOY=${DECOY_LOC##*/}
for i in $(seq 1 100); do
	grep -q "upload $DECOY idle since before" "$T/b.log" && break
	sleep 0.1
done
check_contains "B's expiry ran: it removed the idle decoy session" "upload $DECOY idle since before" "$(cat "$T/b.log")"
check_eq "the decoy is gone" 404 "$(curl -s -o /dev/null -w '%{http_code}' "$B_URL$DECOY_LOC")"
check_not_contains "B aborted no multipart upload as an orphan" "named by no session" "$(cat "$T/b.log")"
check_eq "the streaming session's multipart upload is still in RGW" 1 "$(mpus | grep -c "${LONG_LOC##*/}" || true)"
touch "$T/go"
wait "$LONG_PID" || true
check_eq "the long PATCH (over 66 s, past B's upload_timeout) is answered 202" 202 "$(cat "$T/long.status")"
D=sha256:$(sha "$T/long")
check_eq "PUT through B finishes it" 201 "$(curl -s -o /dev/null -w '%{http_code}' -X PUT "$B_URL$LONG_LOC?digest=$D")"
curl -s -o "$T/long.a" "$A_URL/v2/$P/long/blobs/$D"
check "the long upload is byte-identical" cmp "$T/long" "$T/long.a"

check_not_contains "no error in A's log" " error: " "$(cat "$T/a.log")"
check_not_contains "no error in B's log" " error: " "$(cat "$T/b.log")"
stop_pid "$A_PID" # they sign with the key pair that part 5 deletes
stop_pid "$B_PID"

########################################################################
log "5. S3 credentials rotated on SIGHUP (s3_access_key / s3_secret_key in the config file)"
OLD_AK=$AWS_ACCESS_KEY_ID OLD_SK=$AWS_SECRET_ACCESS_KEY
conf() { printf 's3_access_key = %s\ns3_secret_key = %s\n' "$1" "$2" >"$T/e.conf"; }
conf "$OLD_AK" "$OLD_SK"
BERTH_CONFIG=$T/e.conf AWS_ACCESS_KEY_ID= AWS_SECRET_ACCESS_KEY= start_node E "$T/e.log" --no-auth
on_exit stop_pid "$E_PID"
head -c $((6 * MiB)) /dev/urandom >"$T/k1"
check_eq "push through E with the first key pair" 201 \
	"$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$T/k1" "$E_URL/v2/$P/keys/blobs/uploads/?digest=sha256:$(sha "$T/k1")")"
conf "$OLD_AK" "wrong$OLD_SK"
kill -HUP "$E_PID"
for i in $(seq 1 100); do grep -q "keeping the ones loaded before" "$T/e.log" && break; sleep 0.1; done
check_contains "a wrong secret on SIGHUP is refused, the old settings kept" "cannot list the bucket" "$(cat "$T/e.log")"
NEW=$(radosgw-admin key create --uid=berth --key-type=s3 --gen-access-key --gen-secret 2>/dev/null)
NEW_AK=$(jq -r --arg o "$OLD_AK" '.keys[] | select(.access_key != $o) | .access_key' <<<"$NEW" | head -1)
NEW_SK=$(jq -r --arg o "$OLD_AK" '.keys[] | select(.access_key != $o) | .secret_key' <<<"$NEW" | head -1)
check "RGW made a second key pair" test -n "$NEW_AK" -a -n "$NEW_SK"
conf "$NEW_AK" "$NEW_SK"
kill -HUP "$E_PID"
for i in $(seq 1 100); do grep -q "reload: S3 credentials" "$T/e.log" && break; sleep 0.1; done
check_contains "SIGHUP applied the new key pair" "reload: S3 credentials (access key ${NEW_AK:0:4}" "$(cat "$T/e.log")"
radosgw-admin key rm --uid=berth --key-type=s3 --access-key="$OLD_AK" >/dev/null 2>&1
export AWS_ACCESS_KEY_ID=$NEW_AK AWS_SECRET_ACCESS_KEY=$NEW_SK
for i in $(seq 1 50); do # RGW forgets the old key (its user cache is notified)
	AWS_ACCESS_KEY_ID=$OLD_AK AWS_SECRET_ACCESS_KEY=$OLD_SK "${S3[@]}" head-bucket --bucket "$BUCKET" >/dev/null 2>&1 || break
	sleep 0.2
done
check_fail "the old key pair no longer works in RGW" env AWS_ACCESS_KEY_ID="$OLD_AK" AWS_SECRET_ACCESS_KEY="$OLD_SK" \
	"${S3[@]}" head-bucket --bucket "$BUCKET"
head -c $((7 * MiB)) /dev/urandom >"$T/k2"
check_eq "a chunked push through E after the rotation" OK "$(chunked_push "$E_URL" "$P/keys" "$T/k2" $((3 * MiB)))"
curl -s -o "$T/k1.e" "$E_URL/v2/$P/keys/blobs/sha256:$(sha "$T/k1")"
check "a blob pushed before the rotation pulls byte-identical through E" cmp "$T/k1" "$T/k1.e"
curl -s -o "$T/k2.e" "$E_URL/v2/$P/keys/blobs/sha256:$(sha "$T/k2")"
check "the one pushed after it too" cmp "$T/k2" "$T/k2.e"
check_not_contains "E logged no secret" "$NEW_SK" "$(cat "$T/e.log")"
stop_pid "$E_PID"
finish
