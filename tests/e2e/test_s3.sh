#!/usr/bin/env bash
# shellcheck disable=SC1091,SC2317  # sourced libs; helpers are called via check
# Blobs in S3 (storage = s3://BUCKET/PREFIX) against real Ceph RGW started by scripts/ceph: two berth processes
# (A and B) share one data directory (metadata: SQLite) and one bucket.
#   monolithic and chunked pushes (chunks below and above S3's 5 MiB part minimum), byte-identical pulls with and
#   without Range, a broken PATCH resumed from the bytes that arrived, an upload split across A and B, s3_redirect's
#   307 followed to RGW,
#   skopeo push through A and pull through B, delete + GC removing the object, kill -9 mid-push then a clean
#   restart whose upload expiry leaves no multipart upload behind; push/pull MB/s on RGW vs disk for the report.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
. "$HERE/server.sh"
. "$ROOT/scripts/lib/images.sh"

e2e_tmpdir T
on_exit "$ROOT/scripts/ceph" stop "$T/ceph"
log "starting Ceph with radosgw"
eval "$("$ROOT/scripts/ceph" start "$T/ceph")"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_PAGER="" S3_TLS_ENDPOINT S3_CA_FILE
BUCKET=berth-e2e
S3=(/usr/bin/aws --endpoint-url "$S3_ENDPOINT" --region us-east-1 s3api)
"${S3[@]}" create-bucket --bucket "$BUCKET" >/dev/null
export BERTH_STORAGE=s3://$BUCKET/reg BERTH_S3_ENDPOINT=$S3_ENDPOINT BERTH_UPLOAD_TIMEOUT=60
DATA=$T/data
P=$(e2e_prefix)

# start_node NAME [ARGS]: berth on DATA as node NAME (sets NAME_PID, NAME_URL); every node started, restarts
# included, is stopped at exit
start_node() {
	local name=$1
	shift
	berth_start "$DATA" --no-auth --access-log off "$@"
	on_exit stop_pid "$BERTH_PID"
	printf -v "${name}_PID" '%s' "$BERTH_PID"
	printf -v "${name}_URL" 'http://%s' "$REGISTRY"
	BERTH_PID=
}
stop_pid() { kill -TERM "$1" 2>/dev/null && wait "$1" 2>/dev/null || true; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
# piece FILE OFFSET LENGTH OUT: bytes [OFFSET, OFFSET+LENGTH) of FILE into OUT
piece() { dd if="$1" of="$4" bs=1M iflag=skip_bytes,count_bytes skip="$2" count="$3" status=none; }
objects() { "${S3[@]}" list-objects-v2 --bucket "$BUCKET" --prefix "${1:-reg/}" --query 'Contents[].Key' --output text; }
mpus() { "${S3[@]}" list-multipart-uploads --bucket "$BUCKET" --query 'Uploads[].Key' --output text; }
# hdr NAME FILE: the value of response header NAME in a curl -D dump
hdr() { tr -d '\r' <"$2" | awk -v n="$1" 'BEGIN{IGNORECASE=1} index(tolower($0), tolower(n)":")==1 {sub(/^[^:]*: */,""); print}' | tail -1; }

# refuse_start NAME NEEDLE ENV...: berth serve with ENV exits non-zero at start, logging NEEDLE
refuse_start() {
	local name=$1 needle=$2 out rc=0
	shift 2
	out=$(env "$@" timeout 30 "$BERTH_BIN" serve --data "$T/refused" --listen "127.0.0.1:$(free_port)" --no-auth 2>&1) ||
		rc=$?
	check "$name: berth refuses to start" test "$rc" -ne 0 -a "$rc" -ne 124
	check_contains "$name: ... saying why" "$needle" "$out"
}
refuse_start "missing bucket" "NoSuchBucket" BERTH_STORAGE=s3://no-such-bucket
refuse_start "wrong secret key" "SignatureDoesNotMatch" AWS_SECRET_ACCESS_KEY=wrong$AWS_SECRET_ACCESS_KEY
refuse_start "no credentials" "needs s3_access_key" AWS_ACCESS_KEY_ID= AWS_SECRET_ACCESS_KEY=
refuse_start "endpoint down" "cannot connect" BERTH_S3_ENDPOINT=http://127.0.0.1:1

start_node A
start_node B --threads 1

########################################################################
log "1. monolithic pushes, pulls through both nodes, HEAD from the row"
head -c 1000 /dev/urandom >"$T/small"
head -c $((12 * 1024 * 1024 + 17)) /dev/urandom >"$T/big"
for f in small big; do
	D=sha256:$(sha "$T/$f")
	check_eq "monolithic push of $f: 201" 201 \
		"$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$T/$f" "$A_URL/v2/$P/mono/blobs/uploads/?digest=$D")"
	curl -s -o "$T/$f.a" "$A_URL/v2/$P/mono/blobs/$D"
	curl -s -o "$T/$f.b" "$B_URL/v2/$P/mono/blobs/$D"
	check "$f pulled through A is byte-identical" cmp "$T/$f" "$T/$f.a"
	check "$f pulled through B is byte-identical" cmp "$T/$f" "$T/$f.b"
	check_contains "$f is an object in the bucket" "reg/blobs/sha256/${D:7:2}/${D#sha256:}" "$(objects)"
done
curl -s -D "$T/h" -o /dev/null -I "$B_URL/v2/$P/mono/blobs/$D"
check_eq "HEAD gives the size" "$((12 * 1024 * 1024 + 17))" "$(hdr content-length "$T/h")"
check_eq "no multipart upload left after the pushes" "None" "$(mpus)"

########################################################################
log "2. chunked push: chunks of 3 MiB (below S3's part minimum) and 7 MiB (above), ranged pulls"
head -c $((3 * 7 * 1024 * 1024 + 3 * 3 * 1024 * 1024 + 5)) /dev/urandom >"$T/chunked"
SIZE=$(stat -c %s "$T/chunked")
D=sha256:$(sha "$T/chunked")
curl -s -D "$T/h" -o /dev/null -X POST "$A_URL/v2/$P/chunked/blobs/uploads/"
LOC=$(hdr location "$T/h")
off=0
i=0
ok=1
while [ $off -lt "$SIZE" ]; do
	n=$(( (i % 2 == 0 ? 3 : 7) * 1024 * 1024 ))
	[ $((off + n)) -gt "$SIZE" ] && n=$((SIZE - off))
	piece "$T/chunked" $off $n "$T/piece"
	code=$(curl -s -D "$T/h" -o /dev/null -w '%{http_code}' -X PATCH -H "Content-Range: $off-$((off + n - 1))" \
		-H 'Content-Type: application/octet-stream' --data-binary @"$T/piece" "$A_URL$LOC")
	[ "$code" = 202 ] && [ "$(hdr range "$T/h")" = "0-$((off + n - 1))" ] || ok=0
	off=$((off + n))
	i=$((i + 1))
done
check_eq "every PATCH answered 202 with the new Range" 1 "$ok"
check_eq "PUT ?digest finishes the chunked upload" 201 \
	"$(curl -s -o /dev/null -w '%{http_code}' -X PUT "$A_URL$LOC?digest=$D")"
curl -s -o "$T/chunked.b" "$B_URL/v2/$P/chunked/blobs/$D"
check "chunked upload pulled through B is byte-identical" cmp "$T/chunked" "$T/chunked.b"
for r in 0-0 100-5000000 $((SIZE - 10))-$((SIZE - 1)) 7340030-16777300; do
	a=${r%-*} b=${r#*-}
	code=$(curl -s -o "$T/range" -w '%{http_code}' -H "Range: bytes=$r" "$A_URL/v2/$P/chunked/blobs/$D")
	piece "$T/chunked" "$a" $((b - a + 1)) "$T/want"
	check "Range $r: 206 and the right bytes" test "$code" = 206 -a "$(sha "$T/range")" = "$(sha "$T/want")"
done
check_eq "Range past the end: 416" 416 \
	"$(curl -s -o /dev/null -w '%{http_code}' -H "Range: bytes=$SIZE-" "$A_URL/v2/$P/chunked/blobs/$D")"
check_eq "no multipart upload left" "None" "$(mpus)"

########################################################################
log "3. a broken PATCH keeps the bytes that arrived; the upload is resumed from there"
head -c $((9 * 1024 * 1024 + 99)) /dev/urandom >"$T/resume"
D=sha256:$(sha "$T/resume")
curl -s -D "$T/h" -o /dev/null -X POST "$A_URL/v2/$P/resume/blobs/uploads/"
LOC=$(hdr location "$T/h")
piece "$T/resume" 0 $((6 * 1024 * 1024)) "$T/piece"
curl -s -o /dev/null -X PATCH -H "Content-Range: 0-$((6 * 1024 * 1024 - 1))" --data-binary @"$T/piece" "$A_URL$LOC"
# a PATCH announcing the rest but cut off after 1 MiB
/usr/bin/python3 - "${A_URL#http://}" "$LOC" "$T/resume" <<'EOF'
import socket, sys
host, port = sys.argv[1].split(":")
data = open(sys.argv[3], "rb").read()[6 << 20:]
s = socket.create_connection((host, int(port)))
s.sendall(f"PATCH {sys.argv[2]} HTTP/1.1\r\nHost: {sys.argv[1]}\r\nContent-Type: application/octet-stream\r\n"
          f"Content-Range: {6 << 20}-{(6 << 20) + len(data) - 1}\r\nContent-Length: {len(data)}\r\n\r\n".encode())
s.sendall(data[:1 << 20])
s.close()
EOF
for i in $(seq 1 100); do # until A noticed the broken connection and saved what arrived
	curl -s -D "$T/h" -o /dev/null "$B_URL$LOC"
	[ "$(hdr range "$T/h")" = "0-$((7 * 1024 * 1024 - 1))" ] && break
	sleep 0.1
done
check_eq "status after the broken PATCH (through B): every byte that arrived" "0-$((7 * 1024 * 1024 - 1))" \
	"$(hdr range "$T/h")"
piece "$T/resume" $((7 * 1024 * 1024)) $(($(stat -c %s "$T/resume") - 7 * 1024 * 1024)) "$T/piece"
check_eq "resumed PATCH at that offset" 202 \
	"$(curl -s -o /dev/null -w '%{http_code}' -X PATCH -H "Content-Range: $((7 * 1024 * 1024))-$(($(stat -c %s "$T/resume") - 1))" \
		--data-binary @"$T/piece" "$A_URL$LOC")"
check_eq "PUT finishes the resumed upload" 201 "$(curl -s -o /dev/null -w '%{http_code}' -X PUT "$A_URL$LOC?digest=$D")"
curl -s -o "$T/resume.b" "$B_URL/v2/$P/resume/blobs/$D"
check "resumed upload is byte-identical" cmp "$T/resume" "$T/resume.b"

########################################################################
log "4. one upload continued on another process: POST and PATCH on A, PATCH on B, PATCH on A, PUT on B"
head -c $((13 * 1024 * 1024 + 7)) /dev/urandom >"$T/split"
D=sha256:$(sha "$T/split")
curl -s -D "$T/h" -o /dev/null -X POST "$A_URL/v2/$P/split/blobs/uploads/"
LOC=$(hdr location "$T/h")
off=0
ok=1
for step in "A 7340032" "B 4194304" "A 2097152" "B rest"; do
	node=${step% *} n=${step#* }
	[ "$n" = rest ] && n=$(($(stat -c %s "$T/split") - off))
	url=$A_URL
	[ "$node" = B ] && url=$B_URL
	piece "$T/split" $off "$n" "$T/piece"
	code=$(curl -s -D "$T/h" -o /dev/null -w '%{http_code}' -X PATCH -H "Content-Range: $off-$((off + n - 1))" \
		--data-binary @"$T/piece" "$url$LOC")
	[ "$code" = 202 ] && [ "$(hdr range "$T/h")" = "0-$((off + n - 1))" ] || {
		ok=0
		echo "PATCH on $node at $off: $code $(hdr range "$T/h")"
	}
	off=$((off + n))
done
check_eq "every PATCH (alternating A and B) continued where the other node left off" 1 "$ok"
check_eq "PUT through B finishes the upload started on A" 201 \
	"$(curl -s -o /dev/null -w '%{http_code}' -X PUT "$B_URL$LOC?digest=$D")"
curl -s -o "$T/split.a" "$A_URL/v2/$P/split/blobs/$D"
check "the split upload is byte-identical" cmp "$T/split" "$T/split.a"
check_eq "the finished session is gone on both nodes" 404 "$(curl -s -o /dev/null -w '%{http_code}' "$A_URL$LOC")"

########################################################################
log "5. s3_redirect = on: 307 to a presigned RGW URL, Range included"
stop_pid "$B_PID"
BERTH_S3_REDIRECT=on start_node B
D=sha256:$(sha "$T/chunked")
curl -s -D "$T/h" -o /dev/null "$B_URL/v2/$P/chunked/blobs/$D"
check_eq "GET answers 307" 307 "$(head -1 "$T/h" | cut -d' ' -f2)"
check_contains "Location is the bucket on RGW, presigned" "$S3_ENDPOINT/$BUCKET/reg/blobs/sha256/" "$(hdr location "$T/h")"
check_contains "... with X-Amz-Signature" "X-Amz-Signature=" "$(hdr location "$T/h")"
curl -s -L -o "$T/redir" "$B_URL/v2/$P/chunked/blobs/$D"
check "curl -L through the redirect gets identical bytes" cmp "$T/chunked" "$T/redir"
code=$(curl -s -L -o "$T/range" -w '%{http_code}' -H 'Range: bytes=100-5000000' "$B_URL/v2/$P/chunked/blobs/$D")
piece "$T/chunked" 100 4999901 "$T/want"
check "Range through the redirect: 206 from RGW with the right bytes" test "$code" = 206 -a "$(sha "$T/range")" = "$(sha "$T/want")"
check_eq "HEAD stays on the node (200, no redirect)" 200 \
	"$(curl -s -o /dev/null -w '%{http_code}' -I "$B_URL/v2/$P/chunked/blobs/$D")"
check_eq "an unknown blob is still 404 (no redirect)" 404 \
	"$(curl -s -o /dev/null -w '%{http_code}' "$B_URL/v2/$P/chunked/blobs/sha256:$(printf %064d 0)")"

########################################################################
log "6. skopeo: push an image through A, pull it through B (redirected to RGW) and A (streamed)"
img_busybox "$T/img" amd64 "s3 $P $(date +%s%N)"
SK=(skopeo --command-timeout 300s)
check "skopeo copy oci -> A" "${SK[@]}" copy --quiet --dest-tls-verify=false --preserve-digests \
	oci:"$T/img":latest "docker://${A_URL#http://}/$P/img:v1"
check "skopeo copy B -> oci (blobs redirected to RGW)" "${SK[@]}" copy --quiet --src-tls-verify=false \
	"docker://${B_URL#http://}/$P/img:v1" oci:"$T/img.b":latest
check "skopeo copy A -> oci (blobs streamed by the node)" "${SK[@]}" copy --quiet --src-tls-verify=false \
	"docker://${A_URL#http://}/$P/img:v1" oci:"$T/img.a":latest
for l in $(img_layer_digests "$T/img") $(img_config_digest "$T/img"); do
	check "blob ${l:7:12} identical through B" cmp "$(img_blob_path "$T/img" "$l")" "$(img_blob_path "$T/img.b" "$l")"
	check "blob ${l:7:12} identical through A" cmp "$(img_blob_path "$T/img" "$l")" "$(img_blob_path "$T/img.a" "$l")"
done

########################################################################
log "7. delete + GC removes the object from the bucket"
D=sha256:$(sha "$T/small")
KEY=reg/blobs/sha256/${D:7:2}/${D#sha256:}
check "the object exists before GC" "${S3[@]}" head-object --bucket "$BUCKET" --key "$KEY"
check_eq "DELETE blob: 202" 202 "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$A_URL/v2/$P/mono/blobs/$D")"
check "berth gc --grace 0 (the CLI, same data directory and bucket)" "$BERTH_BIN" gc --data "$DATA" --grace 0
check_fail "the object is gone from RGW after GC" "${S3[@]}" head-object --bucket "$BUCKET" --key "$KEY"
check_eq "GET of the collected blob: 404" 404 "$(curl -s -o /dev/null -w '%{http_code}' "$A_URL/v2/$P/mono/blobs/$D")"
LAYER=$(img_layer_digests "$T/img" | head -1)
check "a layer of the pushed image (referenced by its manifest) survives GC" \
	"${S3[@]}" head-object --bucket "$BUCKET" --key "reg/blobs/sha256/${LAYER:7:2}/${LAYER#sha256:}"
D=sha256:$(sha "$T/big")
check_fail "a blob no manifest references is collected too (grace 0)" \
	"${S3[@]}" head-object --bucket "$BUCKET" --key "reg/blobs/sha256/${D:7:2}/${D#sha256:}"

########################################################################
log "7b. fsck re-hashes every object from the bucket and finds corrupt and missing ones"
check "berth fsck on a clean bucket: exit 0" "$BERTH_BIN" fsck --data "$DATA"
head -c 3000 /dev/urandom >"$T/victim"
D=sha256:$(sha "$T/victim")
VICTIM=$D
KEY=reg/blobs/sha256/${D:7:2}/${D#sha256:}
curl -s -o /dev/null -X POST --data-binary @"$T/victim" "$A_URL/v2/$P/victim/blobs/uploads/?digest=$D"
head -c 3000 /dev/urandom >"$T/other"
"${S3[@]}" put-object --bucket "$BUCKET" --key "$KEY" --body "$T/other" >/dev/null
OUT=$("$BERTH_BIN" fsck --data "$DATA" 2>&1) && rc=0 || rc=$?
check_eq "fsck with an overwritten object: exit 1" 1 "$rc"
check_contains "... reports it corrupt" "corrupt" "$OUT"
"${S3[@]}" delete-object --bucket "$BUCKET" --key "$KEY" >/dev/null
OUT=$("$BERTH_BIN" fsck --data "$DATA" 2>&1) && rc=0 || rc=$?
check_contains "fsck with a deleted object reports row-without-file" "row-without-file" "$OUT"
check_eq "GET of a blob whose object is gone: 500, not a hang" 500 \
	"$(curl -s -o /dev/null -m 30 -w '%{http_code}' "$A_URL/v2/$P/victim/blobs/$D")"
curl -s -o /dev/null -X DELETE "$A_URL/v2/$P/victim/blobs/$D"
"$BERTH_BIN" gc --data "$DATA" --grace 0 >/dev/null

########################################################################
log "7c. ECR's layer upload (aws ecr initiate/upload-layer-part/complete) on S3, on a node with auth on"
printf 'alice-password-1\n' | "$BERTH_BIN" user add alice --password-stdin --data "$DATA" >/dev/null
"$BERTH_BIN" grant add user:alice admin 'ecr/*' --data "$DATA" >/dev/null
"$BERTH_BIN" accesskey create --user alice --data "$DATA" >"$T/alice.key"
berth_start "$DATA" --access-log off
C_PID=$BERTH_PID C_URL=http://$REGISTRY
BERTH_PID=
on_exit stop_pid "$C_PID"
ecr() {
	AWS_ACCESS_KEY_ID=$(grep '^AWS_ACCESS_KEY_ID=' "$T/alice.key" | cut -d= -f2-) \
		AWS_SECRET_ACCESS_KEY=$(grep '^AWS_SECRET_ACCESS_KEY=' "$T/alice.key" | cut -d= -f2-) \
		/usr/bin/aws --endpoint-url "$C_URL" --region us-east-1 ecr "$@" 2>&1
}
head -c $((7 * 1024 * 1024 + 3)) /dev/urandom >"$T/ecrlayer"
piece "$T/ecrlayer" 0 $((3 * 1024 * 1024)) "$T/part1"
piece "$T/ecrlayer" $((3 * 1024 * 1024)) $((4 * 1024 * 1024 + 3)) "$T/part2"
LD=sha256:$(sha "$T/ecrlayer")
check "aws ecr create-repository" ecr create-repository --repository-name ecr/s3
UP=$(ecr initiate-layer-upload --repository-name ecr/s3 | jq -r .uploadId)
check "initiate-layer-upload returns an uploadId" grep -qE '^[0-9a-f-]{36}$' <<<"$UP"
check_eq "upload-layer-part 1 (3 MiB: buffered in the session's state)" $((3 * 1024 * 1024 - 1)) \
	"$(ecr upload-layer-part --repository-name ecr/s3 --upload-id "$UP" --part-first-byte 0 \
		--part-last-byte $((3 * 1024 * 1024 - 1)) --layer-part-blob "fileb://$T/part1" | jq -r .lastByteReceived)"
check_eq "upload-layer-part 2 (4 MiB: a multipart part goes out)" $((7 * 1024 * 1024 + 2)) \
	"$(ecr upload-layer-part --repository-name ecr/s3 --upload-id "$UP" --part-first-byte $((3 * 1024 * 1024)) \
		--part-last-byte $((7 * 1024 * 1024 + 2)) --layer-part-blob "fileb://$T/part2" | jq -r .lastByteReceived)"
check_eq "complete-layer-upload" "$LD" \
	"$(ecr complete-layer-upload --repository-name ecr/s3 --upload-id "$UP" --layer-digests "$LD" | jq -r .layerDigest)"
curl -s -o "$T/ecrlayer.out" "$A_URL/v2/ecr/s3/blobs/$LD"
check "the ECR-uploaded layer is byte-identical through the OCI API" cmp "$T/ecrlayer" "$T/ecrlayer.out"
stop_pid "$C_PID"

########################################################################
log "7d. quotas hold on S3: a push past the quota is refused and stores no object"
"$BERTH_BIN" quota set "$P/quota" 1M --data "$DATA" >/dev/null
head -c $((2 * 1024 * 1024)) /dev/urandom >"$T/over"
D=sha256:$(sha "$T/over")
check_eq "a 2 MiB push into a 1 MiB quota: 403" 403 \
	"$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$T/over" "$A_URL/v2/$P/quota/blobs/uploads/?digest=$D")"
check_fail "... and its object is not in the bucket" \
	"${S3[@]}" head-object --bucket "$BUCKET" --key "reg/blobs/sha256/${D:7:2}/${D#sha256:}"

########################################################################
log "7e. an https endpoint (RGW's TLS frontend, self-signed certificate trusted through SSL_CERT_FILE)"
refuse_start "untrusted certificate" "self-signed certificate" BERTH_S3_ENDPOINT=$S3_TLS_ENDPOINT
SSL_CERT_FILE=$S3_CA_FILE BERTH_S3_ENDPOINT=$S3_TLS_ENDPOINT BERTH_S3_REDIRECT=on start_node D
head -c $((6 * 1024 * 1024 + 5)) /dev/urandom >"$T/tls"
D=sha256:$(sha "$T/tls")
check_eq "push through the node on https" 201 \
	"$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$T/tls" "$D_URL/v2/$P/tls/blobs/uploads/?digest=$D")"
curl -s -D "$T/h" -o /dev/null "$D_URL/v2/$P/tls/blobs/$D"
check_contains "the redirect is to the https endpoint" "$S3_TLS_ENDPOINT/$BUCKET/reg/blobs/" "$(hdr location "$T/h")"
curl -s -L --cacert "$S3_CA_FILE" -o "$T/tls.out" "$D_URL/v2/$P/tls/blobs/$D"
check "pull through the redirect over https: identical" cmp "$T/tls" "$T/tls.out"
curl -s -o "$T/tls.a" "$A_URL/v2/$P/tls/blobs/$D"
check "the same blob through A (plain http endpoint): identical" cmp "$T/tls" "$T/tls.a"
stop_pid "$D_PID"

########################################################################
log "8. throughput (for the report): 256 MiB push and pull, RGW vs disk, same run"
head -c $((256 * 1024 * 1024)) /dev/urandom >"$T/perf"
D=sha256:$(sha "$T/perf")
berth_start "$T/disk" --no-auth --access-log off
DISK_PID=$BERTH_PID DISK_URL=http://$REGISTRY
BERTH_PID=
on_exit stop_pid "$DISK_PID"
for which in disk s3; do
	url=$DISK_URL
	[ $which = s3 ] && url=$A_URL
	push=$(curl -s -o /dev/null -w '%{speed_upload}' -X POST --data-binary @"$T/perf" "$url/v2/$P/perf/blobs/uploads/?digest=$D")
	pull=$(curl -s -o "$T/perf.out" -w '%{speed_download}' "$url/v2/$P/perf/blobs/$D")
	check "256 MiB pulled from $which is identical" cmp "$T/perf" "$T/perf.out"
	log "THROUGHPUT $which: push $(awk -v s="$push" 'BEGIN{printf "%.0f", s/1048576}') MiB/s, pull $(awk -v s="$pull" 'BEGIN{printf "%.0f", s/1048576}') MiB/s (load $(cut -d' ' -f1-3 /proc/loadavg))"
done
rm -f "$T/perf" "$T/perf.out"

########################################################################
log "9. kill -9 mid-push, restart: clean, and upload expiry leaves no multipart upload behind"
head -c $((20 * 1024 * 1024)) /dev/urandom >"$T/crash"
curl -s -D "$T/h" -o /dev/null -X POST "$A_URL/v2/$P/crash/blobs/uploads/"
LOC=$(hdr location "$T/h")
piece "$T/crash" 0 $((6 * 1024 * 1024)) "$T/piece"
curl -s -o /dev/null -X PATCH -H "Content-Range: 0-$((6 * 1024 * 1024 - 1))" --data-binary @"$T/piece" "$A_URL$LOC"
# a second upload whose body stalls after 12 MiB: parts are sent (the row names its multipart upload), the state
# of the request is never saved
curl -s -D "$T/h" -o /dev/null -X POST "$A_URL/v2/$P/crash/blobs/uploads/"
LOC2=$(hdr location "$T/h")
/usr/bin/python3 - "${A_URL#http://}" "$LOC2" "$T/crash" <<'EOF' &
import socket, sys, time
host, port = sys.argv[1].split(":")
data = open(sys.argv[3], "rb").read()
s = socket.create_connection((host, int(port)))
s.sendall(f"PATCH {sys.argv[2]} HTTP/1.1\r\nHost: {sys.argv[1]}\r\nContent-Type: application/octet-stream\r\n"
          f"Content-Length: {len(data)}\r\n\r\n".encode())
s.sendall(data[:12 << 20])
time.sleep(30)
EOF
STALL=$!
for i in $(seq 1 100); do
	[ "$(mpus | wc -w)" -ge 2 ] && break
	sleep 0.1
done
check_eq "both sessions have a multipart upload in RGW" 2 "$(mpus | wc -w)"
kill -9 "$A_PID"
wait "$A_PID" 2>/dev/null || true
kill "$STALL" 2>/dev/null || true
log "waiting for the sessions to go idle past upload_timeout (60 s)"
sleep 62
start_node A
check_eq "restarted node answers" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$A_URL/v2/")"
for i in $(seq 1 300); do
	[ "$(mpus)" = None ] && break
	sleep 0.2
done
check_eq "upload expiry aborted every multipart upload (saved or not)" "None" "$(mpus)"
check_eq "the expired session is unknown" 404 "$(curl -s -o /dev/null -w '%{http_code}' "$A_URL$LOC")"
check_eq "no upload object is left in the bucket" "None" "$(objects reg/uploads/)"
curl -s -o "$T/after" "$A_URL/v2/$P/img/blobs/$LAYER"
check "blobs pushed before the crash are intact" cmp "$(img_blob_path "$T/img" "$LAYER")" "$T/after"
check_not_contains "no other error in the logs" " error: " \
	"$(grep -v "cannot read its object\|${VICTIM#sha256:}" "$DATA.log" || true)"

finish
