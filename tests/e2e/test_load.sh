#!/usr/bin/env bash
# Load with auth on (issue 10): LOAD_CONNS (200) keep-alive connections for LOAD_SECONDS (30) mixing token requests,
# manifest GETs, blob HEADs and GETs, tags/list and pushes (tests/e2e/loadmix.py).  Passes with zero errors and
# zero 5xx; prints the peak RSS and anonymous RSS of berth (measured, reported, not judged: no thresholds on
# timing or memory here, scripts/bench is where numbers are compared).  Then the registry must still be consistent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/server.sh"

CONNS=${LOAD_CONNS:-200}
SECS=${LOAD_SECONDS:-30}
e2e_tmpdir T
D=$T/data
B() { "$BERTH_BIN" "$@" --data "$D"; }
sha() { echo "sha256:$(sha256sum "$1" | cut -c1-64)"; }
OCI_M=application/vnd.oci.image.manifest.v1+json

berth_start "$D" --access-log off
on_exit berth_kill
R=http://$REGISTRY
check "a user with a password" B user add loader --password-stdin <<<"loader-password-1"
check "... may pull and push load/*" B grant add user:loader pull,push 'load/*'
CI=$(B token create --name ci --scope 'repository:load/*:pull,push' --ttl 1d | tail -n 1 | awk '{print $NF}')
check "a robot token for load/*" test -n "$CI"

# the fixture: one image, pushed with the robot token
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$T/config"
head -c 65536 /dev/urandom >"$T/layer"
for f in config layer; do
	check_eq "fixture $f pushed" 201 "$(curl -s -o /dev/null -w '%{http_code}' -u "ci:$CI" -X POST \
		--data-binary @"$T/$f" "$R/v2/load/app/blobs/uploads/?digest=$(sha "$T/$f")")"
done
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":65536}]}' \
	"$OCI_M" "$(sha "$T/config")" "$(stat -c %s "$T/config")" "$(sha "$T/layer")" >"$T/manifest"
check_eq "fixture manifest pushed" 201 "$(curl -s -o /dev/null -w '%{http_code}' -u "ci:$CI" -X PUT \
	-H "Content-Type: $OCI_M" --data-binary @"$T/manifest" "$R/v2/load/app/manifests/v1")"
# one password login first: the verified password is remembered (BERTH_AUTH_CACHE_TTL), so the connections that
# log in with it do not all wait for argon2id at once (more than BERTH_AUTH_ARGON2_MAX would get 429)
check_eq "the password works" 200 "$(curl -s -o /dev/null -w '%{http_code}' -u loader:loader-password-1 "$R/v2/")"

log "$CONNS connections for $SECS s"
FX=$(printf '{"manifest":"%s","layer":"%s","layer_size":65536,"config":"%s","config_size":%s}' \
	"$(sha "$T/manifest")" "$(sha "$T/layer")" "$(sha "$T/config")" "$(stat -c %s "$T/config")")
# every 20th connection logs in with the password, the others with the robot token
OUT=$(python3 "$here/loadmix.py" "$REGISTRY" load/app "ci:$CI,ci:$CI,ci:$CI,ci:$CI,ci:$CI,ci:$CI,ci:$CI,ci:$CI,ci:$CI,ci:$CI,ci:$CI,ci:$CI,ci:$CI,ci:$CI,ci:$CI,ci:$CI,ci:$CI,ci:$CI,ci:$CI,loader:loader-password-1" \
	"$SECS" "$CONNS" "$BERTH_PID" <<<"$FX" 2>&1) || true
printf '%s\n' "$OUT"
RES=$(grep '^RESULT' <<<"$OUT" || true)
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$RES"; }
check "the load ran and reported" test -n "$RES"
check_eq "zero errors under load" 0 "$(field errors)"
check_eq "zero 5xx under load" 0 "$(field status5xx)"
check "every kind of request was made" test -n "$(field token)" -a -n "$(field manifest_put)" -a -n "$(field blob_head)"
log "peak VmRSS $(field peak_rss_kib) KiB, peak RssAnon $(field peak_anon_kib) KiB, $(field requests) requests, $(field throttled) answered 429 + Retry-After and retried"
check "berth still serves after the load" test "$(curl -s -o /dev/null -w '%{http_code}' -u "ci:$CI" "$R/v2/load/app/tags/list")" = 200
check "SIGTERM stops berth after the load" berth_stop
check_eq "integrity_check after the load" ok "$(sqlite3 "$D/berth.db" 'PRAGMA integrity_check')"
check_eq "every acknowledged manifest PUT is there" "$(field manifest_put)" \
	"$(($(sqlite3 "$D/berth.db" "SELECT count(*) FROM tags t JOIN repos r ON r.id = t.repo_id WHERE r.name = 'load/app'") - 1))"
finish
