#!/usr/bin/env bash
# scripts/bench.d/s3upload.sh - the S3 upload path, two berth builds side by side in one run (issue 12):
#   scripts/bench.d/s3upload.sh OLD_BERTH_BIN NEW_BERTH_BIN [ROUNDS]
#
# Metadata in PostgreSQL (scripts/pg), blobs in Ceph RGW (scripts/ceph), one fresh node per build and round,
# the builds alternating (ROUNDS times, default 2).  Workloads, every answer checked:
#   serial   one session, 20 chunked PATCHes of 5 MiB then PUT (PATCH/s and MB/s)
#   small    8 concurrent sessions, each 16 PATCHes of 256 KiB then PUT (PATCH/s over all: per-request costs)
#   h2       32 concurrent sessions over HTTP/2 (h2c: these bodies go to the pool's workers), each 8 PATCHes of
#            256 KiB then PUT (PATCH/s over all)
#   conc     8 concurrent sessions, each 4 PATCHes of 5 MiB then PUT (MB/s), then the node's peak RSS (VmHWM)
# The load average is printed with every figure: this machine's cores are shared.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OLD=${1:?usage: s3upload.sh OLD_BERTH_BIN NEW_BERTH_BIN [ROUNDS]}
NEW=${2:?usage: s3upload.sh OLD_BERTH_BIN NEW_BERTH_BIN [ROUNDS]}
ROUNDS=${3:-2}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-s3upload.XXXXXX")
MiB=$((1024 * 1024))
PID=
say() { printf '[s3upload %s] %s\n' "$(date +%T)" "$*" >&2; }
cleanup() {
	[ -z "$PID" ] || { kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true; }
	"$REPO/scripts/ceph" stop "$WORK/ceph" >/dev/null 2>&1 || true
	"$REPO/scripts/pg" stop "$WORK/pg" >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
hdr() { tr -d '\r' <"$2" | awk -v n="$1" 'BEGIN{IGNORECASE=1} index(tolower($0), tolower(n)":")==1 {sub(/^[^:]*: */,""); print}' | tail -1; }
load() { cut -d' ' -f1 /proc/loadavg; }

eval "$("$REPO/scripts/ceph" start "$WORK/ceph")"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
PG_URL=$("$REPO/scripts/pg" start "$WORK/pg" | tail -1)
/usr/bin/aws --endpoint-url "$S3_ENDPOINT" --region us-east-1 s3api create-bucket --bucket bench >/dev/null
head -c $((5 * MiB)) /dev/urandom >"$WORK/c5"
head -c $((256 * 1024)) /dev/urandom >"$WORK/c256"

# push URL REPO CHUNKFILE N [CURL_ARGS]: one session of N PATCHes of CHUNKFILE, then PUT; fails loudly on a wrong
# answer
push() {
	local url=$1 repo=$2 f=$3 n=$4 size off=0 i loc code
	shift 4
	size=$(stat -c %s "$f")
	curl -s "$@" -D "$WORK/$repo.h" -o /dev/null -X POST "$url/v2/$repo/blobs/uploads/"
	loc=$(hdr location "$WORK/$repo.h")
	for i in $(seq 1 "$n"); do
		code=$(curl -s "$@" -o /dev/null -w '%{http_code}' -X PATCH -H "Content-Range: $off-$((off + size - 1))" \
			--data-binary @"$f" "$url$loc")
		[ "$code" = 202 ] || { say "PATCH $i of $repo: $code"; return 1; }
		off=$((off + size))
	done
	local d
	d=sha256:$(for i in $(seq 1 "$n"); do cat "$f"; done | sha256sum | cut -d' ' -f1)
	code=$(curl -s "$@" -o /dev/null -w '%{http_code}' -X PUT "$url$loc?digest=$d")
	[ "$code" = 201 ] || { say "PUT of $repo: $code"; return 1; }
}

run_one() { # BIN LABEL ROUND
	local bin=$1 label=$2 r=$3 port t0 t1 i pids
	port=$(free_port)
	BERTH_STORAGE=s3://bench/$label$r BERTH_S3_ENDPOINT=$S3_ENDPOINT BERTH_METADATA=$PG_URL \
		"$bin" serve --data "$WORK/d-$label$r" --listen "127.0.0.1:$port" --no-auth --access-log off >"$WORK/$label$r.log" 2>&1 &
	PID=$!
	for i in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && break; sleep 0.1; done
	local url=http://127.0.0.1:$port
	t0=$(date +%s.%N)
	push "$url" "s$r" "$WORK/c5" 20
	t1=$(date +%s.%N)
	say "$label round $r serial: 20 x 5 MiB PATCH $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f PATCH/s, %.1f MB/s", 20/(b-a), 100*1.048576/(b-a)}') (load $(load))"
	t0=$(date +%s.%N)
	pids=()
	for i in 1 2 3 4 5 6 7 8; do push "$url" "k$r$i" "$WORK/c256" 16 & pids+=($!); done
	for i in "${pids[@]}"; do wait "$i"; done
	t1=$(date +%s.%N)
	say "$label round $r small: 8 x 16 x 256 KiB PATCH $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f PATCH/s", 128/(b-a)}') (load $(load))"
	t0=$(date +%s.%N)
	pids=()
	for i in $(seq 1 32); do push "$url" "h$r$i" "$WORK/c256" 8 --http2-prior-knowledge & pids+=($!); done
	for i in "${pids[@]}"; do wait "$i"; done
	t1=$(date +%s.%N)
	say "$label round $r h2: 32 x 8 x 256 KiB PATCH over h2c $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f PATCH/s", 256/(b-a)}') (load $(load))"
	t0=$(date +%s.%N)
	pids=()
	for i in 1 2 3 4 5 6 7 8; do push "$url" "c$r$i" "$WORK/c5" 4 & pids+=($!); done
	for i in "${pids[@]}"; do wait "$i"; done
	t1=$(date +%s.%N)
	say "$label round $r conc: 8 x 4 x 5 MiB PATCH $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f MB/s", 160*1.048576/(b-a)}'), peak RSS $(awk '/VmHWM/ {print $2, $3}' "/proc/$PID/status") (load $(load))"
	kill -TERM "$PID"
	wait "$PID" 2>/dev/null || true
	PID=
}

for r in $(seq 1 "$ROUNDS"); do
	run_one "$OLD" old "$r"
	run_one "$NEW" new "$r"
done
