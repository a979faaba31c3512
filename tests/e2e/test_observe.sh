#!/usr/bin/env bash
# Observability (issue 11), against the real server: GET /metrics in the Prometheus text format (checked by
# promtool), admin-only on the main listener and open on --metrics-listen; request, byte, auth-failure, writer and
# storage metrics that follow real traffic; /healthz and /readyz (with min_free_space); X-Request-Id on responses
# and in log lines; access_log_format = json.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/server.sh"

command -v promtool >/dev/null || {
	echo "promtool missing: scripts/deps test installs Debian's prometheus package" >&2
	exit 1
}
e2e_tmpdir T
DATA=$T/data
MPORT=$(free_port)
M=127.0.0.1:$MPORT
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
metric() { # NAME{LABELS} -> value on the open metrics listener (0 if absent)
	curl -s "http://$M/metrics" | awk -v k="$1" '$1 == k { print $2; found=1 } END { if (!found) print 0 }'
}

log "1. start with the metrics listener and JSON access lines"
berth_start "$DATA" --metrics-listen "$M" --access-log-format json
on_exit berth_stop
R=$REGISTRY
ADMIN_PW=$(grep -o 'with password [A-Za-z0-9_-]*' "$DATA.log" | awk '{print $3}')
A="admin:$ADMIN_PW"
check "user add dev" "$BERTH_BIN" user add dev --password-stdin --data "$DATA" <<<"dev-password-0001"

log "2. /metrics on the main listener: admin only"
H=$(curl -s -o /dev/null -D - "http://$R/metrics" | tr -d '\r')
check_contains "anonymous /metrics: 401" "HTTP/1.1 401" "$H"
check_contains "anonymous /metrics: a Bearer challenge" 'www-authenticate: Bearer realm=' "$H"
check_eq "a non-admin user: 403" 403 "$(code -u dev:dev-password-0001 "http://$R/metrics")"
check_eq "wrong admin password: 401" 401 "$(code -u admin:wrong-password-00 "http://$R/metrics")"
check_eq "admin: 200" 200 "$(code -u "$A" "http://$R/metrics")"
check_contains "admin: Prometheus text content type" "text/plain; version=0.0.4" \
	"$(curl -s -o /dev/null -D - -u "$A" "http://$R/metrics")"
TOK=$(curl -s -u "$A" "http://$R/token?service=berth" | jq -r .token)
check_eq "admin bearer token: 200" 200 "$(code -H "Authorization: Bearer $TOK" "http://$R/metrics")"

log "3. traffic moves the counters"
B0=$(metric berth_blobs)
M0=$(metric berth_manifests)
R0=$(metric berth_repositories)
S0=$(metric berth_storage_bytes)
G0=$(metric 'berth_http_requests_total{route="manifest",method="GET",status="200"}')
I0=$(metric 'berth_http_received_bytes_total{route="upload"}')
W0=$(metric berth_writer_ops_total)
head -c 100000 /dev/urandom >"$T/layer"
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"n":"%s"}' "$$" >"$T/config"
push_blob() { # FILE -> digest
	local d loc
	d=sha256:$(sha256sum "$1" | cut -d' ' -f1)
	loc=$(curl -s -u "$A" -X POST -D - -o /dev/null "http://$R/v2/obs/app/blobs/uploads/" | tr -d '\r' |
		awk 'tolower($1)=="location:"{print $2}')
	case $loc in http*) ;; *) loc="http://$R$loc" ;; esac
	case $loc in *\?*) loc="$loc&digest=$d" ;; *) loc="$loc?digest=$d" ;; esac
	curl -s -f -u "$A" -X PUT -H 'Content-Type: application/octet-stream' --data-binary @"$1" "$loc" >/dev/null
	echo "$d"
}
LD=$(push_blob "$T/layer")
CD=$(push_blob "$T/config")
CS=$(stat -c %s "$T/config")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":100000}]}' \
	"$CD" "$CS" "$LD" >"$T/manifest"
check_eq "manifest PUT: 201" 201 "$(code -u "$A" -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
	--data-binary @"$T/manifest" "http://$R/v2/obs/app/manifests/v1")"
for i in 1 2 3; do curl -s -o /dev/null -u "$A" "http://$R/v2/obs/app/manifests/v1"; done
check_eq "blobs +2" $((B0 + 2)) "$(metric berth_blobs)"
check_eq "manifests +1" $((M0 + 1)) "$(metric berth_manifests)"
check_eq "repositories +1" $((R0 + 1)) "$(metric berth_repositories)"
check_eq "storage bytes + both blobs" $((S0 + 100000 + CS)) "$(metric berth_storage_bytes)"
check_eq "manifest GET 200 counted 3 times" $((G0 + 3)) \
	"$(metric 'berth_http_requests_total{route="manifest",method="GET",status="200"}')"
I1=$(metric 'berth_http_received_bytes_total{route="upload"}')
check "upload bytes received grew by both blobs" test "$I1" -ge $((I0 + 100000 + CS))
check "writer ops counted" test "$(metric berth_writer_ops_total)" -gt "$W0"
check "commit latency histogram has samples" test "$(metric berth_writer_commit_seconds_count)" -gt 0
check "manifest GET latency histogram has samples" \
	test "$(metric 'berth_http_request_duration_seconds_count{route="manifest"}')" -ge 3
check_eq "no upload in flight now" 0 "$(metric berth_uploads_in_flight)"
F0=$(metric 'berth_auth_failures_total{reason="bad_credentials"}')
curl -s -o /dev/null -u dev:not-the-password "http://$R/v2/obs/app/manifests/v1"
check_eq "a wrong password counts as bad_credentials" $((F0 + 1)) \
	"$(metric 'berth_auth_failures_total{reason="bad_credentials"}')"
D0=$(metric 'berth_auth_failures_total{reason="denied"}')
curl -s -o /dev/null -u dev:dev-password-0001 "http://$R/v2/obs/app/manifests/v1"
check_eq "a user without the grant counts as denied" $((D0 + 1)) "$(metric 'berth_auth_failures_total{reason="denied"}')"
check_eq "deleting the manifest: 202" 202 "$(code -u "$A" -X DELETE "http://$R/v2/obs/app/manifests/$(sha256sum "$T/manifest" | cut -d' ' -f1 | sed 's/^/sha256:/')")"
check_eq "manifests back after the delete" "$M0" "$(metric berth_manifests)"

log "4. promtool accepts both pages"
curl -s "http://$M/metrics" >"$T/m1"
curl -s -u "$A" "http://$R/metrics" >"$T/m2"
check "promtool check metrics (metrics listener)" promtool check metrics <"$T/m1"
check "promtool check metrics (main listener)" promtool check metrics <"$T/m2"
check_eq "the metrics listener serves only the observability routes" 404 "$(code "http://$M/v2/")"

log "5. the counts survive a restart (kept in berth.db, not in memory)"
BL=$(metric berth_blobs)
berth_stop
berth_start "$DATA" --metrics-listen "$M" --access-log-format json
R=$REGISTRY
check_eq "blobs after restart" "$BL" "$(metric berth_blobs)"
check_eq "the stats row equals a count of the blobs table" \
	"$(sqlite3 "$DATA/berth.db" 'select count(*), sum(size) from blobs')" \
	"$(sqlite3 "$DATA/berth.db" 'select blobs, blob_bytes from stats')"

log "6. health"
check_eq "/healthz 200" 200 "$(code "http://$R/healthz")"
check_eq "/healthz body" "ok" "$(curl -s "http://$R/healthz")"
check_eq "/readyz 200" 200 "$(code "http://$R/readyz")"
check_eq "/readyz on the metrics listener" 200 "$(code "http://$M/readyz")"
check_eq "POST /readyz: 405" 405 "$(code -X POST "http://$R/readyz")"
berth_stop
echo "min_free_space = 1000T" >"$T/big.conf"
berth_stop
berth_start "$DATA" --config "$T/big.conf"
R=$REGISTRY
check_eq "/readyz with min_free_space above the disk: 503" 503 "$(code "http://$R/readyz")"
check_contains "/readyz says why" "not ready: free space" "$(curl -s "http://$R/readyz")"
check_eq "/healthz still 200" 200 "$(code "http://$R/healthz")"
berth_stop

log "7. request ids and JSON access lines"
: >"$DATA.log"
berth_start "$DATA" --access-log-format json
R=$REGISTRY
H=$(curl -s -o /dev/null -D - "http://$R/v2/obs/app/tags/list" | tr -d '\r')
RID=$(awk 'tolower($1)=="x-request-id:"{print $2}' <<<"$H")
check "a 401 carries X-Request-Id" test -n "$RID"
RID2=$(curl -s -o /dev/null -D - -u "$A" "http://$R/v2/" | tr -d '\r' | awk 'tolower($1)=="x-request-id:"{print $2}')
check "ids differ between requests" test "$RID" != "$RID2"
curl -s -o /dev/null -u dev:dev-password-0001 "http://$R/v2/obs/app/tags/list"
curl -s -o /dev/null -A 'evil"agent' "http://$R/v2/%22x%0a/tags/list"
berth_stop
check_contains "the denial's log line names its request" "req=$RID auth: denied" "$(cat "$DATA.log")"
JL=$(grep '^{' "$DATA.log")
check "every access line is valid JSON" jq -e . <<<"$JL"
check_eq "the 401 line" "401 GET tags obs/app" \
	"$(jq -r --arg id "$RID" 'select(.request_id==$id) | "\(.status) \(.method) \(.route) \(.repository)"' <<<"$JL")"
check_eq "the authorized line names the user" "admin" \
	"$(jq -r --arg id "$RID2" 'select(.request_id==$id) | .user' <<<"$JL")"
check "every line has all fields" jq -e 'has("time") and has("remote") and has("user") and has("method") and
	has("route") and has("repository") and has("status") and has("bytes") and has("duration") and has("request_id")' \
	<<<"$JL"
finish
