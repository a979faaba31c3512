#!/usr/bin/env bash
# scripts/bench.d/scaleout.sh - the scale-out rows of scripts/bench (BENCH_SCALEOUT=1; issue 12), or on its own:
#   scripts/bench.d/scaleout.sh BERTH_BIN [WORKDIR]
#
# One run, four set-ups side by side, the same workloads on each:
#   default    one berth node, SQLite + blobs on disk (the embedded default)
#   pg+rgw x1  one berth node, metadata in PostgreSQL (scripts/pg), blobs in Ceph RGW (scripts/ceph)
#   pg+rgw x2  two berth nodes on the same database and bucket; the load is split between them
#   dist+rgw   Distribution (Debian's docker-registry) with its s3 driver on the same RGW (own rootdirectory;
#              regionendpoint, forcepathstyle, v4auth; redirect disabled so that pulls stream through it, as
#              berth's do with s3_redirect off)
# Workloads: push N small images (setup, images/s), a BIG-byte blob push (MB/s), manifest GET by tag (wrk, c64
# split over the nodes, req/s), and two concurrent pulls of the big blob (one per node with two nodes; MB/s summed).
# Every response is checked by loadgen/wrk; errors stop the run.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BERTH_BIN=${1:?usage: scaleout.sh BERTH_BIN [WORKDIR]}
WORK=${2:-$(mktemp -d "${TMPDIR:-/tmp}/berth-scaleout.XXXXXX")}
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then N=40 SECS=3 BIG=$((64 << 20)); else N=200 SECS=10 BIG=$((512 << 20)); fi
CONNS=64
PIDS=()
say() { printf '[scaleout %s] %s\n' "$(date +%T)" "$*" >&2; }
fail() {
	say "FAILED: $*"
	exit 1
}
stop_all() {
	local p
	for p in ${PIDS[@]+"${PIDS[@]}"}; do kill -TERM "$p" 2>/dev/null || true; done
	for p in ${PIDS[@]+"${PIDS[@]}"}; do wait "$p" 2>/dev/null || true; done
	PIDS=()
}
cleanup() {
	stop_all
	"$REPO/scripts/ceph" stop "$WORK/ceph" >/dev/null 2>&1 || true
	"$REPO/scripts/pg" stop "$WORK/pg" >/dev/null 2>&1 || true
	[ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK"
LG=$WORK/loadgen
cc -O2 -Wall -pthread "$HERE/loadgen.c" -o "$LG" -lcrypto || fail "building the load generator"
openssl enc -aes-256-ctr -nosalt -pbkdf2 -pass pass:scaleout -in /dev/zero 2>/dev/null | head -c "$BIG" >"$WORK/big" ||
	true
D_BIG=sha256:$(sha256sum "$WORK/big" | cut -c1-64)
cat >"$WORK/manifest.lua" <<'EOF'
wrk.method = "GET"
wrk.headers["Accept"] = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
EOF

say "starting PostgreSQL and Ceph RGW"
mkdir -p "$WORK/pg"
"$REPO/scripts/pg" start "$WORK/pg" >/dev/null
eval "$("$REPO/scripts/ceph" start "$WORK/ceph")"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
S3AK=$AWS_ACCESS_KEY_ID S3SK=$AWS_SECRET_ACCESS_KEY
AWS_PAGER="" /usr/bin/aws --endpoint-url "$S3_ENDPOINT" --region us-east-1 s3api create-bucket --bucket bench >/dev/null

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { # PORT PID LOG
	for _ in $(seq 200); do
		case $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/v2/" || true) in 200 | 401) return 0 ;; esac
		kill -0 "$2" 2>/dev/null || fail "server exited: $(grep -v '^[[:space:]]' "$3" | head -5)"
		sleep 0.1
	done
	fail "no answer on port $1"
}
# berth_node NAME [ENV...]: a berth node (no auth) on a free port; appends it to PORTS
berth_node() {
	local name=$1 port
	shift
	port=$(free_port)
	mkdir -p "$WORK/$name"
	env "$@" "$BERTH_BIN" serve --data "$WORK/$name" --listen "127.0.0.1:$port" --no-auth --access-log off \
		--log-level warn >"$WORK/$name.log" 2>&1 &
	PIDS+=($!)
	wait_up "$port" $! "$WORK/$name.log"
	PORTS+=("$port")
}
dist_node() {
	local port
	port=$(free_port)
	mkdir -p "$WORK/dist"
	cat >"$WORK/dist/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  s3:
    accesskey: $S3AK
    secretkey: $S3SK
    region: us-east-1
    regionendpoint: $S3_ENDPOINT
    forcepathstyle: true
    v4auth: true
    secure: false
    bucket: bench
    rootdirectory: /distribution
  cache:
    blobdescriptor: inmemory
  redirect:
    disable: true
http:
  addr: 127.0.0.1:$port
  secret: berth-bench-secret
EOF
	# the AWS SDK in Distribution 2.8 panics at start when AWS_CA_BUNDLE is set (its transport is not http.Transport);
	# the endpoint is plain http anyway
	env -u AWS_CA_BUNDLE docker-registry serve "$WORK/dist/config.yml" >"$WORK/dist.log" 2>&1 &
	PIDS+=($!)
	wait_up "$port" $! "$WORK/dist.log"
	PORTS+=("$port")
}
lg() { # PORT CMD ARGS...: loadgen's RESULT line
	local out
	out=$("$LG" "$2" -H 127.0.0.1 -P "$1" "${@:3}") || fail "$SET: loadgen $2 failed"
	grep '^RESULT' <<<"$out" || fail "$SET: loadgen $2 printed no result"
}
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }

declare -A R
# run SET: the workloads against the nodes in PORTS
run() {
	SET=$1
	local a=${PORTS[0]} b=${PORTS[${#PORTS[@]} - 1]} n=${#PORTS[@]} res out1 out2 pids=() f
	say "$SET: push $N small images"
	res=$(lg "$a" push-small -r bench/small -n "$N" -c 8 -o "$WORK/$SET.info")
	R[$SET:push_ips]=$(kv images_per_s "$res")
	say "$SET: $((BIG >> 20)) MiB blob push"
	res=$(lg "$a" push-blob -r bench/big -f "$WORK/big" -d "$D_BIG" -m mono)
	R[$SET:bigpush]=$(kv MBps "$res")
	say "$SET: manifest GET, wrk c$CONNS over $n node(s), ${SECS}s"
	for p in "${PORTS[@]}"; do
		wrk -t1 -c$((CONNS / n)) -d"${SECS}s" --timeout 30s -s "$WORK/manifest.lua" \
			"http://127.0.0.1:$p/v2/bench/small/manifests/img-0" >"$WORK/$SET.wrk.$p" 2>&1 &
		pids+=($!)
	done
	for f in "${pids[@]}"; do wait "$f" || fail "$SET: wrk failed"; done
	R[$SET:mget]=0
	for p in "${PORTS[@]}"; do
		! grep -qE 'Non-2xx|Socket errors' "$WORK/$SET.wrk.$p" || fail "$SET: wrk errors: $(cat "$WORK/$SET.wrk.$p")"
		R[$SET:mget]=$(awk -v s="${R[$SET:mget]}" '/^Requests\/sec:/{s+=$2} END{printf "%.0f", s}' "$WORK/$SET.wrk.$p")
	done
	say "$SET: two concurrent $((BIG >> 20)) MiB pulls (one per node with two nodes)"
	"$LG" pull-blob -H 127.0.0.1 -P "$a" -r bench/big -d "$D_BIG" -s "$BIG" >"$WORK/$SET.pull1" 2>&1 &
	out1=$!
	"$LG" pull-blob -H 127.0.0.1 -P "$b" -r bench/big -d "$D_BIG" -s "$BIG" >"$WORK/$SET.pull2" 2>&1 &
	out2=$!
	wait "$out1" || fail "$SET: pull 1: $(cat "$WORK/$SET.pull1")"
	wait "$out2" || fail "$SET: pull 2: $(cat "$WORK/$SET.pull2")"
	R[$SET:pull]=$(awk '/^RESULT/{for(i=1;i<=NF;i++) if($i ~ /^MBps=/){split($i,a,"="); s+=a[2]}} END{printf "%.0f", s}' \
		"$WORK/$SET.pull1" "$WORK/$SET.pull2")
	stop_all
	PORTS=()
}

PG=$("$REPO/scripts/pg" createdb "$WORK/pg" one)
PG2=$("$REPO/scripts/pg" createdb "$WORK/pg" two)
S3ENV=(BERTH_S3_ENDPOINT="$S3_ENDPOINT" AWS_ACCESS_KEY_ID="$S3AK" AWS_SECRET_ACCESS_KEY="$S3SK")
PORTS=()
LOAD0=$(cut -d' ' -f1 /proc/loadavg)
berth_node default
run default
berth_node one BERTH_METADATA="$PG" BERTH_STORAGE=s3://bench/one "${S3ENV[@]}"
run pgrgw1
berth_node twoA BERTH_METADATA="$PG2" BERTH_STORAGE=s3://bench/two "${S3ENV[@]}"
berth_node twoB BERTH_METADATA="$PG2" BERTH_STORAGE=s3://bench/two "${S3ENV[@]}"
run pgrgw2
dist_node
run dist
LOAD1=$(cut -d' ' -f1 /proc/loadavg)

echo
echo "Scale-out (issue 12) - $(nproc) CPU, load average $LOAD0 at the start, $LOAD1 at the end$([ "$QUICK" = 1 ] && echo ' - BENCH_QUICK')"
printf '%-44s %-9s %10s %12s %12s %12s\n' workload unit default "pg+rgw x1" "pg+rgw x2" "dist+rgw"
printf '%s\n' "$(printf '%.0s-' $(seq 104))"
for row in "push_ips|push $N small images, 8 clients|images/s" "bigpush|$((BIG >> 20)) MiB blob push (monolithic)|MB/s" \
	"mget|manifest GET by tag, wrk c$CONNS total|req/s" "pull|2 concurrent $((BIG >> 20)) MiB pulls, summed|MB/s"; do
	IFS='|' read -r key label unit <<<"$row"
	printf '%-44s %-9s %10s %12s %12s %12s\n' "$label" "$unit" "${R[default:$key]}" "${R[pgrgw1:$key]}" \
		"${R[pgrgw2:$key]}" "${R[dist:$key]}"
done
echo "pg+rgw x2: the same PostgreSQL database and bucket, wrk connections and the two pulls split over both nodes;"
echo "PostgreSQL, one memstore OSD, radosgw and the registries all share this machine's $(nproc) cores"
