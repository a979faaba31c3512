#!/usr/bin/env bash
# scripts/bench.d/events.sh - the request-path cost of events, webhooks and quotas (issue 11), with the load
# generator of scripts/bench.  Not a test: it measures and prints a table.
#
#   scripts/bench.d/events.sh [BERTH_BIN [LOADGEN_BIN]]
#
# For each configuration, a fresh data directory and server (--no-auth, access log off): push N small images
# (loadgen push-small: images/s, p50/p99), then manifest GET by tag for SECS seconds (loadgen hammer: req/s,
# p50/p99).  Configurations:
#   none    no webhook (events are still recorded: push rows, pull events batched)
#   slow    a webhook whose receiver (tests/e2e/webhook_receiver.py --delay 2) answers after 2 s
#   down    a webhook whose receiver refuses connections (retries with backoff)
#   quota   no webhook, three quotas matching the pushed repository (checked at every blob commit)
# The last column is the server's CPU time (user + system, all threads) per manifest GET, steadier than req/s on
# a shared machine.
# BASE_BIN=/path/to/berth adds a row for another binary (e.g. main before issue 11), same workload.
# Env: ROUNDS (default 2, configurations interleaved), SECS (default 8), IMAGES (default 100), CONNS (default 16).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BIN=${1:-$REPO/build/berth}
LG=${2:-$REPO/build/berth-loadgen}
ROUNDS=${ROUNDS:-2} SECS=${SECS:-8} IMAGES=${IMAGES:-100} CONNS=${CONNS:-16}
OCI=application/vnd.oci.image.manifest.v1+json
WORK=$(mktemp -d /tmp/berth-bench-events.XXXXXX)
PIDS=()
cleanup() {
	for p in ${PIDS[@]+"${PIDS[@]}"}; do kill "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
kv() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" <<<" $2"; }
# cpu PID: the process's user + system CPU time in clock ticks (all threads)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

SLOW_PORT=$(port)
DOWN_PORT=$(port) # nothing listens there
/usr/bin/python3 "$REPO/tests/e2e/webhook_receiver.py" --port "$SLOW_PORT" --out "$WORK/slow.jsonl" --delay 2 \
	2>/dev/null &
PIDS+=($!)

run() { # NAME BIN CONFIG-LINES
	local name=$1 bin=$2 conf=$WORK/$1.conf p d=$WORK/$1.data spid push get c0 c1
	rm -rf "$d"
	mkdir -p "$d"
	printf '%s\n' "$3" >"$conf"
	p=$(port)
	if [ "$name" = quota ]; then
		for q in 'bench/*' 'bench/small' '*'; do "$bin" quota set "$q" 1T --data "$d" >/dev/null; done
	fi
	"$bin" serve --no-auth --access-log off --data "$d" --listen "127.0.0.1:$p" --config "$conf" 2>"$WORK/$name.log" &
	spid=$!
	PIDS+=("$spid")
	for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$p/v2/" && break; sleep 0.1; done
	push=$("$LG" push-small -H 127.0.0.1 -P "$p" -r bench/small -n "$IMAGES" -c 8 -o "$WORK/info")
	c0=$(cpu "$spid")
	get=$("$LG" hammer -H 127.0.0.1 -P "$p" -X GET -u /v2/bench/small/manifests/img-0 -a "$OCI" -c "$CONNS" -t "$SECS")
	c1=$(cpu "$spid")
	kill "$spid"
	wait "$spid" 2>/dev/null || true
	printf '%-6s %9s %9s %9s   %10.0f %9s %9s %9.2f\n' "$name" "$(kv images_per_s "$push")" "$(kv p50_ms "$push")" \
		"$(kv p99_ms "$push")" "$(kv rps "$get")" "$(kv p50_ms "$get")" "$(kv p99_ms "$get")" \
		"$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v n="$(kv requests "$get")" 'BEGIN{print c * 1e6 / hz / n}')"
}

printf '%-6s %9s %9s %9s   %10s %9s %9s %9s\n' config "push i/s" "p50 ms" "p99 ms" "GET req/s" "p50 ms" "p99 ms" \
	"CPU us/req"
for r in $(seq "$ROUNDS"); do
	[ -n "${BASE_BIN:-}" ] && run base "$BASE_BIN" ""
	run none "$BIN" ""
	run slow "$BIN" "webhook = http://127.0.0.1:$SLOW_PORT/slow"
	run down "$BIN" "webhook = http://127.0.0.1:$DOWN_PORT/down"
	run quota "$BIN" ""
done
echo "slow receiver got $(wc -l <"$WORK/slow.jsonl" 2>/dev/null || echo 0) events during the runs"
