#!/usr/bin/env bash
# Nothing leaks per connection (issue 10): rounds of connection churn (tests/e2e/churn.py: keep-alive connections
# with GETs and a manifest PUT, uploads aborted halfway through their body, h2c connections, rapid-reset streams;
# the same over TLS on a second berth) keep berth's heap bounded after the first rounds.
#   - The heap is berth_heap_inuse_bytes (glibc mallinfo2) less berth_sqlite_memory_bytes: SQLite's page caches
#     grow with the database (every pull and push adds an event row) up to their cache_size, a bound of their own.
#   - From round 2 to the last, it may grow by at most CHURN_HEAP_ROUND_MAX_KIB per round: a round opens ~500
#     connections, so a leak of 256 bytes per connection shows as ~130 KiB per round (measured without a leak:
#     2-4 KiB per round; with 256 bytes leaked per HTTP/1.1 connection: 132-146 KiB per round, and the test fails).
#   - RSS includes memory malloc keeps after freeing it (fragmentation, up to the arenas' size): only a loose bound.
# Under ASan, malloc is ASan's: the heap gauges say nothing and only the RSS bound is checked (loosely).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/server.sh"

ROUNDS=6
TLS_ROUNDS=4
CHURN_HEAP_ROUND_MAX_KIB=64
CHURN_RSS_GROWTH_MAX_MIB=24
asan=0
[ -n "${ASAN_OPTIONS:-}" ] && asan=1 CHURN_RSS_GROWTH_MAX_MIB=256

e2e_tmpdir T
field() { sed -n "s/.* $2=\([0-9]*\).*/\1/p" <<<"$1"; }

# churn NAME URL ROUNDS: runs the rounds against the berth started last, judges them
churn() {
	local name=$1 url=$2 rounds=$3 out r2 rl
	out=$(python3 "$here/churn.py" "$url" "$BERTH_PID" "$rounds")
	log "$out"
	r2=$(grep '^ROUND 2 ' <<<"$out")
	rl=$(grep "^ROUND $rounds " <<<"$out")
	check_eq "$name: no request failed in $rounds rounds" 0 "$(awk '{for (i=1;i<=NF;i++) if ($i ~ /^failed=/) s += substr($i,8)} END {print s+0}' <<<"$out")"
	check "$name: $(field "$rl" conns) connections per round, all closed on berth's side too (descriptors $(field "$r2" fds) -> $(field "$rl" fds))" \
		test "$(field "$rl" fds)" -le $(($(field "$r2" fds) + 2))
	if [ "$asan" = 0 ]; then
		check "$name: heap (less SQLite's caches) grew by less than $CHURN_HEAP_ROUND_MAX_KIB KiB per round from round 2 to $rounds ($(field "$r2" heap) -> $(field "$rl" heap) bytes)" \
			test $(($(field "$rl" heap) - $(field "$r2" heap))) -lt $((CHURN_HEAP_ROUND_MAX_KIB * 1024 * (rounds - 2)))
	fi
	check "$name: RSS grew by less than $CHURN_RSS_GROWTH_MAX_MIB MiB from round 2 to $rounds ($(field "$r2" rss_kib) -> $(field "$rl" rss_kib) KiB)" \
		test $(($(field "$rl" rss_kib) - $(field "$r2" rss_kib))) -lt $((CHURN_RSS_GROWTH_MAX_MIB * 1024))
}

berth_start "$T/data" --no-auth --access-log off
on_exit berth_kill
churn "http + h2c" "http://$REGISTRY" $ROUNDS
berth_kill

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -keyout "$T/server.key" -out "$T/server.crt" \
	2>/dev/null
berth_start "$T/tls" --no-auth --access-log off --tls-cert "$T/server.crt" --tls-key "$T/server.key"
churn "TLS" "https://$REGISTRY" $TLS_ROUNDS
check "berth is still running" kill -0 "$BERTH_PID"
finish
