#!/usr/bin/env bash
# Slow clients cannot starve normal ones (issue 10), against berth's HTTP/1.1 timeouts (include/defaults.h):
#   - 300 connections trickling a request head (1 byte / 0.5 s) and 50 sending nothing are closed by the head
#     timeout (BERTH_H1_HEAD_TIMEOUT), without an answer;
#   - 100 connections trickling a body (1 byte / 0.5 s: a streamed blob upload, a manifest PUT, any other POST) are
#     closed by the minimum body rate (BERTH_H1_BODY_MIN_RATE over BERTH_H1_BODY_RATE_WINDOW);
#   - meanwhile every manifest GET of a well-behaved client succeeds, and a legitimate slow upload (8x the minimum
#     rate, across a rate window) completes with 201;
#   - berth's RSS grows by less than SLOW_RSS_GROWTH_MAX_MIB and its descriptors return to where they were.
#   - HTTP/2: a silent connection is closed by the idle timeout, connections trickling DATA or a HEADERS frame by the
#     minimum rate (server/h2guard.c).
# No timing judgement: whether the GETs stay fast while the slow clients trickle is measured by scripts/slowclients.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/server.sh"

SLOW_RSS_GROWTH_MAX_MIB=64 # 450 idle connections hold a socket and a small input buffer each
[ -n "${ASAN_OPTIONS:-}" ] && SLOW_RSS_GROWTH_MAX_MIB=512 # ASan's quarantine and shadow memory

e2e_tmpdir T
D=$T/data
sha() { echo "sha256:$(sha256sum "$1" | cut -c1-64)"; }
OCI_M=application/vnd.oci.image.manifest.v1+json
berth_start "$D" --no-auth --access-log off
on_exit berth_kill
R=http://$REGISTRY
printf '{"architecture":"amd64","os":"linux"}' >"$T/config"
curl -sf -X POST --data-binary @"$T/config" "$R/v2/slow/app/blobs/uploads/?digest=$(sha "$T/config")" >/dev/null
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[]}' \
	"$OCI_M" "$(sha "$T/config")" "$(stat -c %s "$T/config")" >"$T/manifest"
check_eq "fixture manifest pushed" 201 "$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Content-Type: $OCI_M" \
	--data-binary @"$T/manifest" "$R/v2/slow/app/manifests/v1")"

OUT=$(python3 "$here/slowclients.py" "$REGISTRY" "$BERTH_PID" /v2/slow/app/manifests/v1)
log "$OUT"
field() { sed -n "s/.* $1=\([0-9a-z]*\).*/\1/p" <<<"$OUT"; }

for k in heads silent; do
	check "slow heads ($k): all $(field ${k}_opened) connections closed by the head timeout" \
		test "$(field ${k}_closed)" = "$(field ${k}_opened)" -a "$(field ${k}_opened)" -gt 0
	check_eq "slow heads ($k): closed without an answer" 0 "$(field ${k}_answered)"
done
for k in uploads manifests others; do
	check "slow bodies ($k): all $(field ${k}_opened) connections closed by the minimum body rate" \
		test "$(field ${k}_closed)" = "$(field ${k}_opened)" -a "$(field ${k}_opened)" -gt 0
	check_eq "slow bodies ($k): closed without an answer" 0 "$(field ${k}_answered)"
done
check "a well-behaved client's manifest GETs ran throughout ($(field gets_ok) of them)" test "$(field gets_ok)" -gt 0
check_eq "every manifest GET succeeded (failed GETs)" 0 "$(field gets_failed)"
check_eq "a legitimate slow upload (4 KiB/s) completed" 201 "$(field legit_upload)"
check "berth's RSS grew by less than $SLOW_RSS_GROWTH_MAX_MIB MiB" \
	test $(($(field rss_peak_kib) - $(field rss_before_kib))) -lt $((SLOW_RSS_GROWTH_MAX_MIB * 1024))
check "berth's descriptors came back (before $(field fds_before), peak $(field fds_peak), after $(field fds_after))" \
	test "$(field fds_after)" -le $(($(field fds_before) + 4))

# HTTP/2: h2o 2.2.5's idle timeout (BERTH_H2_IDLE_TIMEOUT) closes a silent connection; berth's h2guard.c applies the
# minimum rate to connections receiving a request (h2o itself restarts its idle timeout on every byte)
OUT=$(python3 "$here/slowclients.py" "$REGISTRY" "$BERTH_PID" h2)
log "$OUT"
check "h2: a connection that sends nothing after its preface is closed by the idle timeout" \
	test "$(field h2_silent_closed_after)" != open
check "h2: a connection trickling DATA (1 byte / 0.5 s) is closed by the minimum rate" \
	test "$(field h2_trickle_data_closed_after)" != open
check "h2: a connection trickling a HEADERS frame (1 byte / 0.5 s) is closed by the minimum rate" \
	test "$(field h2_trickle_headers_closed_after)" != open
check "h2: a normal h2c client is served after" \
	test "$(curl -s -o /dev/null -w '%{http_code}' --http2-prior-knowledge -H "Accept: $OCI_M" "$R/v2/slow/app/manifests/v1")" = 200
check "berth is still running" kill -0 "$BERTH_PID"
finish
