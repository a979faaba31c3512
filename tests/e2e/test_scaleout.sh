#!/usr/bin/env bash
# shellcheck disable=SC1091,SC2317  # sourced libs; helpers are called via check
# Scale-out on the combined backends (issue #12, "What must hold with several nodes"): PostgreSQL (scripts/pg) for
# the metadata, Ceph RGW (scripts/ceph) for the blobs, and TWO `berth serve` nodes, each with its own empty data
# directory, metadata = the same database, storage = the same s3:// bucket, auth on.
#   1. skopeo push to A, pull from B (blobs byte-identical); docker push to A, pull from B (same digests)
#   2. one upload split across the nodes: POST on A, PATCH on B, PATCH on A, PUT on B; GET through both identical
#   3. a token issued by A is accepted by B, one issued by B by A
#   4. 50 pushes through A: every manifest and tag visible through B right after A's 201
#   5. `berth gc --grace 0` on B's data directory (metadata + bucket), run after run, while images are pushed through
#      A for ~20 s as clients push (HEAD each blob, upload the missing ones, PUT the manifest; a shared base layer
#      that GC may collect between the HEAD and the manifest) and every other image is deleted again: refused
#      manifests are 400 MANIFEST_BLOB_UNKNOWN only, the deleted images' layers leave the bucket, fsck is clean and
#      every acknowledged image is byte-identical through both nodes
#   6. kill -9 of A mid-push (a large chunked upload): the push retried against B succeeds; A restarted: fsck
#      clean, A serves the image
#   7. the ECR API on B (aws ecr describe-images, a key from `berth accesskey create`) sees images pushed through A
#   8. fsck really reads the bucket: an object deleted behind berth's back is reported
#   9. the killed push's session expires (upload_timeout): multipart upload aborted, no state row left
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
. "$HERE/server.sh"
. "$ROOT/scripts/lib/images.sh"
. "$ROOT/scripts/lib/dockerd.sh"

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
BUCKET=berth-scaleout
S3=(/usr/bin/aws --endpoint-url "$S3_ENDPOINT" --region us-east-1 s3api)
"${S3[@]}" create-bucket --bucket "$BUCKET" >/dev/null
# upload_timeout 60 s (its minimum): the session of the push killed in 6 expires before the end (9); no scheduled
# lifecycle/GC: while one holds the maintenance lock `berth gc` exits 3, and 5 wants every run (e2e_twonode tests both)
export BERTH_METADATA=$PG_URL BERTH_STORAGE=s3://$BUCKET/reg BERTH_S3_ENDPOINT=$S3_ENDPOINT BERTH_UPLOAD_TIMEOUT=60
export BERTH_LIFECYCLE_INTERVAL=0
P=$(e2e_prefix)
PW=alice-passwd-0123
CLI=$T/cli # the data directory of the CLI commands: nothing of the metadata or blobs lands in it
mkdir -p "$CLI"
C() { "$BERTH_BIN" "$@" --data "$CLI"; }
check "user add alice --admin (into PostgreSQL)" C user add alice --admin --password-stdin <<<"$PW"

# start_node NAME: berth serve on its own data directory $T/NAME, auth on (sets NAME_PID, NAME)
start_node() {
	mkdir -p "$T/$1"
	berth_start "$T/$1" --access-log off
	printf -v "${1}_PID" '%s' "$BERTH_PID"
	printf -v "$1" '%s' "$REGISTRY"
	BERTH_PID=
}
stop_pid() { kill -TERM "$1" 2>/dev/null && wait "$1" 2>/dev/null || true; }
start_node A
start_node B
on_exit stop_pid "$A_PID"
on_exit stop_pid "$B_PID"
check "node A's data directory holds no berth.db (metadata in PostgreSQL)" test ! -e "$T/A/berth.db"
check "... and no blobs (they are in the bucket)" test -z "$(find "$T/A" "$T/B" -path '*blobs/sha256/*' -type f)"

sha() { sha256sum "$1" | cut -d' ' -f1; }
piece() { dd if="$1" of="$4" bs=1M iflag=skip_bytes,count_bytes skip="$2" count="$3" status=none; }
hdr() { tr -d '\r' <"$2" | awk -v n="$1" 'BEGIN{IGNORECASE=1} index(tolower($0), tolower(n)":")==1 {sub(/^[^:]*: */,""); print}' | tail -1; }
# token NODE REPO: a bearer token for pull,push,delete on REPO, issued by NODE
token() { curl -s -u "alice:$PW" "http://$1/token?service=berth&scope=repository:$2:pull,push,delete" | jq -r .token; }
# code CURL-ARGS...: the HTTP status only
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
# push_blob NODE REPO TOKEN FILE: monolithic upload, prints the status
push_blob() {
	code -H "Authorization: Bearer $3" -X POST -H 'Content-Type: application/octet-stream' --data-binary @"$4" \
		"http://$1/v2/$2/blobs/uploads/?digest=sha256:$(sha "$4")"
}
# manifest CONFIG OUT LAYER...: an OCI image manifest of those blobs into OUT
manifest() {
	local cfg=$1 out=$2 l layers=
	shift 2
	for l in "$@"; do
		layers+=${layers:+,}$(printf '{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}' \
			"$(sha "$l")" "$(stat -c %s "$l")")
	done
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
		"$(sha "$cfg")" "$(stat -c %s "$cfg")" "$layers" >"$out"
}
# push_manifest NODE REPO TOKEN TAG FILE: prints the status
push_manifest() {
	code -H "Authorization: Bearer $3" -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
		--data-binary @"$5" "http://$1/v2/$2/manifests/$4"
}

########################################################################
log "1. skopeo push to A, pull from B; docker push to A, pull from B"
img_busybox "$T/img" amd64 "scaleout $P $(date +%s%N)"
SK=(skopeo --command-timeout 300s)
check "skopeo copy oci -> A (auth on)" "${SK[@]}" copy --quiet --dest-tls-verify=false --dest-creds "alice:$PW" \
	--preserve-digests oci:"$T/img":latest "docker://$A/$P/sk:v1"
check "skopeo copy B -> oci" "${SK[@]}" copy --quiet --src-tls-verify=false --src-creds "alice:$PW" \
	"docker://$B/$P/sk:v1" oci:"$T/img.b":latest
check_eq "the manifest pulled through B is the one pushed through A" "$(img_manifest_digest "$T/img")" \
	"$(img_manifest_digest "$T/img.b" 2>&1)"
for l in $(img_layer_digests "$T/img") $(img_config_digest "$T/img"); do
	check "blob ${l:7:12} pulled through B is byte-identical" cmp "$(img_blob_path "$T/img" "$l")" \
		"$(img_blob_path "$T/img.b" "$l")"
done

on_exit dockerd_stop "$T/d"
if dockerd_start "$T/d"; then
	img_busybox "$T/dimg" amd64 "scaleout docker $P $(date +%s%N)"
	img_docker_archive "$T/dimg" "$T/dimg.tar"
	CFG=$(img_config_digest "$T/dimg")
	"$DOCKER" load -i "$T/dimg.tar" >/dev/null 2>&1 || true
	check "docker login A" "$DOCKER" login -u alice --password-stdin "$A" <<<"$PW"
	check "docker login B" "$DOCKER" login -u alice --password-stdin "$B" <<<"$PW"
	"$DOCKER" tag "$CFG" "$A/$P/dock:v1"
	OUT=$("$DOCKER" push "$A/$P/dock:v1" 2>&1 || true)
	PUSHED=$(grep -oE 'digest: sha256:[0-9a-f]{64}' <<<"$OUT" | head -n1 | cut -d' ' -f2)
	check "docker push to A printed a digest" test -n "$PUSHED"
	"$DOCKER" rmi -f "$CFG" >/dev/null 2>&1 || true
	OUT=$("$DOCKER" pull "$B/$P/dock:v1" 2>&1 || true)
	check_contains "docker pull from B: the digest pushed to A" "Digest: $PUSHED" "$OUT"
	check_eq "... and the image ID is the pushed config" "$CFG" \
		"$("$DOCKER" image inspect --format '{{.Id}}' "$B/$P/dock:v1" 2>&1)"
	check_eq "docker run of the image pulled from B" "hello from B" \
		"$("$DOCKER" run --rm --network none "$B/$P/dock:v1" echo hello from B 2>&1)"
	dockerd_stop "$T/d"
else
	check "dockerd starts" false
fi

########################################################################
log "2. an upload split across the nodes: POST on A, PATCH on B, PATCH on A, PATCH on B, PUT on B"
head -c $((13 * 1024 * 1024 + 7)) /dev/urandom >"$T/split"
D=sha256:$(sha "$T/split")
TA=$(token "$A" "$P/split")
TB=$(token "$B" "$P/split")
curl -s -D "$T/h" -o /dev/null -H "Authorization: Bearer $TA" -X POST "http://$A/v2/$P/split/blobs/uploads/"
LOC=$(hdr location "$T/h")
check_contains "POST on A starts a session" "/v2/$P/split/blobs/uploads/" "$LOC"
off=0
ok=1
for step in "B 7340032" "A 4194304" "B rest"; do
	node=${step% *} n=${step#* }
	[ "$n" = rest ] && n=$(($(stat -c %s "$T/split") - off))
	url=http://$A tok=$TA
	[ "$node" = B ] && url=http://$B tok=$TB
	piece "$T/split" $off "$n" "$T/piece"
	c=$(curl -s -D "$T/h" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" -X PATCH \
		-H "Content-Range: $off-$((off + n - 1))" -H 'Content-Type: application/octet-stream' \
		--data-binary @"$T/piece" "$url$LOC")
	[ "$c" = 202 ] && [ "$(hdr range "$T/h")" = "0-$((off + n - 1))" ] || {
		ok=0
		echo "PATCH on $node at $off: $c $(hdr range "$T/h")"
	}
	off=$((off + n))
done
check_eq "every PATCH (B, A, B) continued where the other node left off" 1 "$ok"
check_eq "PUT through B finishes the upload started on A" 201 \
	"$(code -H "Authorization: Bearer $TB" -X PUT "http://$B$LOC?digest=$D")"
curl -s -H "Authorization: Bearer $TA" -o "$T/split.a" "http://$A/v2/$P/split/blobs/$D"
curl -s -H "Authorization: Bearer $TB" -o "$T/split.b" "http://$B/v2/$P/split/blobs/$D"
check "the split upload through A is byte-identical" cmp "$T/split" "$T/split.a"
check "the split upload through B is byte-identical" cmp "$T/split" "$T/split.b"
check_eq "no multipart upload left in the bucket" "None" \
	"$("${S3[@]}" list-multipart-uploads --bucket "$BUCKET" --query 'Uploads[].Key' --output text)"

########################################################################
log "3. tokens: issued by A, accepted by B, and the other way round"
check_contains "A issues a token" "." "$TA"
check_eq "B accepts A's token (blob GET)" 200 "$(code -H "Authorization: Bearer $TA" "http://$B/v2/$P/split/blobs/$D")"
check_eq "A accepts B's token (blob GET)" 200 "$(code -H "Authorization: Bearer $TB" "http://$A/v2/$P/split/blobs/$D")"
check_eq "B accepts A's token for a push" 201 \
	"$(code -H "Authorization: Bearer $TA" -X POST --data-binary 'x-by-A-token' \
		"http://$B/v2/$P/split/blobs/uploads/?digest=sha256:$(printf 'x-by-A-token' | sha256sum | cut -d' ' -f1)")"
SIG=${TA##*.}
c=${SIG:20:1}
[ "$c" = A ] && c=B || c=A
check_eq "a token with a tampered signature is refused by B" 401 \
	"$(code -H "Authorization: Bearer ${TA%.*}.${SIG:0:20}$c${SIG:21}" "http://$B/v2/$P/split/blobs/$D")"

########################################################################
log "4. 50 pushes through A, each visible through B right after A's 201"
R=$P/loop
TA=$(token "$A" "$R")
TB=$(token "$B" "$R")
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"v":"%s"}' "$P" >"$T/cfg"
head -c 4096 /dev/urandom >"$T/layer"
check_eq "config blob through A" 201 "$(push_blob "$A" "$R" "$TA" "$T/cfg")"
check_eq "layer blob through A" 201 "$(push_blob "$A" "$R" "$TA" "$T/layer")"
manifest "$T/cfg" "$T/m0" "$T/layer"
bad=0
for i in $(seq 1 50); do
	jq -c --arg i "$i" '. + {annotations: {n: $i}}' "$T/m0" >"$T/m$i"
	MD=sha256:$(sha "$T/m$i")
	c=$(push_manifest "$A" "$R" "$TA" "t$i" "$T/m$i")
	got=$(curl -s -D "$T/h" -o "$T/mb" -w '%{http_code}' -H "Authorization: Bearer $TB" \
		-H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$B/v2/$R/manifests/t$i")
	tags=$(curl -s -H "Authorization: Bearer $TB" "http://$B/v2/$R/tags/list" | jq -r '.tags[]' 2>/dev/null || true)
	if [ "$c" != 201 ] || [ "$got" != 200 ] || [ "$(hdr docker-content-digest "$T/h")" != "$MD" ] ||
		! cmp -s "$T/m$i" "$T/mb" || ! grep -qx "t$i" <<<"$tags"; then
		bad=$((bad + 1))
		echo "push $i: PUT on A $c, GET on B $got $(hdr docker-content-digest "$T/h") (want $MD)"
	fi
done
check_eq "all 50 manifests and tags visible through B at once after A's 201" 0 "$bad"

########################################################################
log "5. GC on B (berth gc --grace 0) run after run while images are pushed (and some deleted) through A for ~20 s"
R=$P/gc
TA=$(token "$A" "$R")
: >"$T/acked"
: >"$T/refused"
: >"$T/deleted"
# a base layer every image shares, referenced by no manifest until the first push: GC collects it whenever it is
# unreferenced, and a push that found it present (HEAD 200, the upload skipped as docker does) races that GC
head -c 300000 /dev/urandom >"$T/base"
check_eq "shared base layer through A" 201 "$(push_blob "$A" "$R" "$TA" "$T/base")"
# push_image N: a fresh layer + config (+ the base layer) and a manifest tagged gN through A, as a client does it:
# HEAD each blob, upload the missing ones, PUT the manifest; retried up to 5 times when the manifest is refused.
# Appends gN to acked on a 201, each refusal's status and error code to refused.
push_image() {
	local n=$1 f c
	head -c $((64 * 1024 + n)) /dev/urandom >"$T/gl$n"
	printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"n":%s}' "$n" >"$T/gc$n"
	manifest "$T/gc$n" "$T/gm$n" "$T/base" "$T/gl$n"
	for _ in 1 2 3 4 5; do
		for f in "$T/base" "$T/gl$n" "$T/gc$n"; do
			[ "$(code -I -H "Authorization: Bearer $TA" "http://$A/v2/$R/blobs/sha256:$(sha "$f")")" = 200 ] ||
				push_blob "$A" "$R" "$TA" "$f" >/dev/null
		done
		c=$(curl -s -o "$T/resp" -w '%{http_code}' -H "Authorization: Bearer $TA" -X PUT \
			-H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @"$T/gm$n" \
			"http://$A/v2/$R/manifests/g$n")
		if [ "$c" = 201 ]; then
			echo "g$n" >>"$T/acked"
			return 0
		fi
		echo "$c $(jq -r '.errors[0].code' "$T/resp" 2>&1)" >>"$T/refused"
	done
}
(
	end=$(($(date +%s) + 20))
	while [ "$(date +%s)" -lt "$end" ]; do
		"$BERTH_BIN" gc --data "$T/B" --grace 0 >>"$T/gc.out" 2>&1 || echo "gc exit $?" >>"$T/gc.fail"
		echo run >>"$T/gc.runs"
		sleep 1
	done
) &
GC=$!
n=0
end=$(($(date +%s) + 20))
while [ "$(date +%s)" -lt "$end" ]; do
	n=$((n + 1))
	push_image "$n"
	# every other image is deleted three rounds later: its own layer and config become GC's garbage
	if [ $n -gt 3 ] && [ $((n % 2)) = 0 ] && grep -qx "g$((n - 3))" "$T/acked"; then
		k=$((n - 3))
		c=$(code -H "Authorization: Bearer $TA" -X DELETE "http://$A/v2/$R/manifests/sha256:$(sha "$T/gm$k")")
		[ "$c" = 202 ] && sed -i "/^g$k\$/d" "$T/acked" && echo "$k" >>"$T/deleted"
	fi
done
wait "$GC"
ACKED=$(wc -l <"$T/acked")
log "images pushed during the GC loop: $n, acknowledged and kept $ACKED, deleted $(wc -l <"$T/deleted"); manifest PUTs refused (a blob collected between \
the client's HEAD/upload and its manifest, grace 0): $(wc -l <"$T/refused"); gc runs: $(wc -l <"$T/gc.runs")"
check "every GC run during the pushes exited 0" test ! -e "$T/gc.fail"
check "GC ran several times during the pushes" test "$(wc -l <"$T/gc.runs")" -gt 1
check "pushes were acknowledged during the GC loop" test "$ACKED" -gt 2
check "images were deleted during the loop" test -s "$T/deleted"
"$BERTH_BIN" gc --data "$T/B" --grace 0 >/dev/null 2>&1
"${S3[@]}" list-objects-v2 --bucket "$BUCKET" --prefix reg/blobs/ --query 'Contents[].Key' --output text |
	tr '\t' '\n' >"$T/keys"
gone=0
while read -r k; do
	grep -q "$(sha "$T/gl$k")" "$T/keys" || gone=$((gone + 1))
done <"$T/deleted"
check_eq "GC removed the own layer of every deleted image from the bucket" "$(wc -l <"$T/deleted")" "$gone"
check_eq "every refused manifest PUT was 400 MANIFEST_BLOB_UNKNOWN (never a 5xx)" "" \
	"$(grep -v '^400 MANIFEST_BLOB_UNKNOWN$' "$T/refused" || true)"
OUT=$(C fsck 2>&1) && rc=0 || rc=$?
check_eq "berth fsck (PostgreSQL + bucket) after GC under pushes: clean" 0 "$rc"
[ "$rc" = 0 ] || echo "$OUT" | tail -n 20
TB=$(token "$B" "$R")
bad=0
while read -r tag; do
	k=${tag#g}
	for node in A B; do
		h=${!node} tok=$TA
		[ "$node" = B ] && tok=$TB
		curl -s -o "$T/got" -H "Authorization: Bearer $tok" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
			"http://$h/v2/$R/manifests/$tag"
		cmp -s "$T/gm$k" "$T/got" || {
			bad=$((bad + 1))
			echo "manifest $tag differs through $h"
		}
		for f in "$T/gl$k" "$T/gc$k" "$T/base"; do
			curl -s -o "$T/got" -H "Authorization: Bearer $tok" "http://$h/v2/$R/blobs/sha256:$(sha "$f")"
			cmp -s "$f" "$T/got" || {
				bad=$((bad + 1))
				echo "blob of $tag differs through $h"
			}
		done
	done
done <"$T/acked"
check_eq "every acknowledged image pulls byte-identical through A and B" 0 "$bad"

########################################################################
log "6. kill -9 of A mid-push (a large chunked upload), the push retried against B"
R=$P/crash
TA=$(token "$A" "$R")
TB=$(token "$B" "$R")
head -c $((24 * 1024 * 1024)) /dev/urandom >"$T/crash"
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"crash":"%s"}' "$P" >"$T/ccfg"
manifest "$T/ccfg" "$T/cm" "$T/crash"
curl -s -D "$T/h" -o /dev/null -H "Authorization: Bearer $TA" -X POST "http://$A/v2/$R/blobs/uploads/"
LOC=$(hdr location "$T/h")
piece "$T/crash" 0 $((6 * 1024 * 1024)) "$T/piece"
check_eq "first chunk (6 MiB) through A" 202 \
	"$(code -H "Authorization: Bearer $TA" -X PATCH -H "Content-Range: 0-$((6 * 1024 * 1024 - 1))" \
		-H 'Content-Type: application/octet-stream' --data-binary @"$T/piece" "http://$A$LOC")"
# the second chunk (the rest) stalls after 12 MiB: A is killed while it is receiving it
/usr/bin/python3 - "$A" "$LOC" "$T/crash" "$TA" <<'EOF' &
import socket, sys, time
host, port = sys.argv[1].split(":")
data = open(sys.argv[3], "rb").read()[6 << 20:]
s = socket.create_connection((host, int(port)))
s.sendall(f"PATCH {sys.argv[2]} HTTP/1.1\r\nHost: {sys.argv[1]}\r\nAuthorization: Bearer {sys.argv[4]}\r\n"
          f"Content-Type: application/octet-stream\r\nContent-Range: {6 << 20}-{(6 << 20) + len(data) - 1}\r\n"
          f"Content-Length: {len(data)}\r\n\r\n".encode())
try:
    s.sendall(data[:12 << 20])
    time.sleep(60)
except OSError:
    pass
EOF
STALL=$!
for _ in $(seq 1 100); do # until a multipart upload of the session exists in RGW
	[ "$("${S3[@]}" list-multipart-uploads --bucket "$BUCKET" --query 'Uploads[].Key' --output text)" != None ] && break
	sleep 0.1
done
check_contains "the session's multipart upload is in RGW" "reg/" \
	"$("${S3[@]}" list-multipart-uploads --bucket "$BUCKET" --query 'Uploads[].Key' --output text)"
check "the client is still sending its chunk when A is killed" kill -0 "$STALL"
kill -9 "$A_PID"
wait "$A_PID" 2>/dev/null || true
kill "$STALL" 2>/dev/null || true
wait "$STALL" 2>/dev/null || true
check_eq "node A is gone" 000 "$(code -m 5 "http://$A/v2/")"
check_eq "retry: the whole layer through B" 201 "$(push_blob "$B" "$R" "$TB" "$T/crash")"
check_eq "retry: the config through B" 201 "$(push_blob "$B" "$R" "$TB" "$T/ccfg")"
check_eq "retry: the manifest through B" 201 "$(push_manifest "$B" "$R" "$TB" v1 "$T/cm")"
curl -s -o "$T/crash.b" -H "Authorization: Bearer $TB" "http://$B/v2/$R/blobs/sha256:$(sha "$T/crash")"
check "the retried layer is byte-identical through B" cmp "$T/crash" "$T/crash.b"
start_node A
OUT=$(C fsck 2>&1) && rc=0 || rc=$?
check_eq "berth fsck after A's kill -9 and restart: clean" 0 "$rc"
[ "$rc" = 0 ] || echo "$OUT" | tail -n 20
TA=$(token "$A" "$R")
curl -s -o "$T/got" -H "Authorization: Bearer $TA" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
	"http://$A/v2/$R/manifests/v1"
check "restarted A serves the manifest pushed through B" cmp "$T/cm" "$T/got"
curl -s -o "$T/crash.a" -H "Authorization: Bearer $TA" "http://$A/v2/$R/blobs/sha256:$(sha "$T/crash")"
check "restarted A serves the layer byte-identical" cmp "$T/crash" "$T/crash.a"
on_exit stop_pid "$A_PID"

########################################################################
log "7. the ECR API on B sees images pushed through A"
C accesskey create --user alice >"$T/alice.key"
ecr() {
	AWS_ACCESS_KEY_ID=$(grep '^AWS_ACCESS_KEY_ID=' "$T/alice.key" | cut -d= -f2-) \
		AWS_SECRET_ACCESS_KEY=$(grep '^AWS_SECRET_ACCESS_KEY=' "$T/alice.key" | cut -d= -f2-) \
		/usr/bin/aws --endpoint-url "http://$B" --region us-east-1 ecr "$@" 2>&1
}
OUT=$(ecr describe-images --repository-name "$P/loop" --max-items 1000)
check_eq "aws ecr describe-images on B lists the 50 images pushed through A" 50 \
	"$(jq '.imageDetails | length' <<<"$OUT" 2>&1)"
check_eq "... with their tags" "t17" \
	"$(jq -r --arg d "sha256:$(sha "$T/m17")" '.imageDetails[] | select(.imageDigest == $d) | .imageTags[]' <<<"$OUT" 2>&1)"
check_contains "aws ecr describe-repositories on B lists the repository made through A" "$P/sk" \
	"$(ecr describe-repositories)"
log "8. fsck does see the bucket: an acknowledged blob's object deleted behind berth's back is reported"
KEY=reg/blobs/sha256/$(sha "$T/layer" | cut -c1-2)/$(sha "$T/layer")
check "the layer of the loop images is an object in the bucket" "${S3[@]}" head-object --bucket "$BUCKET" --key "$KEY"
"${S3[@]}" delete-object --bucket "$BUCKET" --key "$KEY" >/dev/null
OUT=$(C fsck 2>&1) && rc=0 || rc=$?
check_eq "fsck with the object gone: exit 1" 1 "$rc"
check_contains "... reporting the row without its object" "row-without-file" "$OUT"
log "9. the session of the push killed in 6 expires: its multipart upload is aborted, its state rows are gone"
for _ in $(seq 1 240); do
	[ "$("${S3[@]}" list-multipart-uploads --bucket "$BUCKET" --query 'Uploads[].Key' --output text)" = None ] && break
	sleep 1
done
check_eq "upload expiry (on PostgreSQL) aborted the killed push's multipart upload" None \
	"$("${S3[@]}" list-multipart-uploads --bucket "$BUCKET" --query 'Uploads[].Key' --output text)"
check_eq "the expired session is unknown to A" 404 "$(code -H "Authorization: Bearer $TA" "http://$A$LOC")"
check_eq "... and to B" 404 "$(code -H "Authorization: Bearer $TB" "http://$B$LOC")"
check_eq "no upload session state is left in PostgreSQL" "0 0" \
	"$(psql -At "$PG_URL" -c "SELECT (SELECT count(*) FROM upload_s3), (SELECT count(*) FROM uploads)" | tr '|' ' ')"
check_not_contains "no error in node A's log" " error: " "$(cat "$T/A.log")"
check_not_contains "no error in node B's log" " error: " "$(cat "$T/B.log")"

finish
