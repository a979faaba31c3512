#!/usr/bin/env bash
# Attacks on input handling and authorization that no other e2e test covers (issue 10), each with the expected
# answer.  (Covered elsewhere: alg none/HS256, tampered claims, foreign keys, expired tokens, a token for one
# repository used on another, revoked robot tokens, mounts from unreadable repositories — test_auth.sh; revocation
# by id, NUL in credentials, log injection, Content-Range overflow, realm host — test_attacks.sh; names with ".."
# or %2F in tags/list — test_api.sh.)
#
#   1. cross-repository reads by digest: a blob or manifest of another repository is 404 through your own, with
#      auth on (even for a user who may pull both... through the wrong path) and off;
#   2. another user's upload session: its id used through another repository is 404 and changes nothing; a user
#      without push on its repository is refused before the session is looked at;
#   3. path traversal in names, digests, references, session ids and query parameters, raw (--path-as-is) and
#      percent-encoded: 4xx with an OCI error body, never 200, no file outside the data directory touched;
#   4. oversized headers, header counts, bearer tokens, Basic credentials, chunked bodies over max_blob_size;
#   5. a JWT spelled with a byte >= 0x80 in its signature (libsodium's base64 alias, found by fuzz_jwt): 401.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/server.sh"

e2e_tmpdir T
D=$T/data
B() { "$BERTH_BIN" "$@" --data "$D"; }
sha() { echo "sha256:$(sha256sum "$1" | cut -c1-64)"; }
OCI_M=application/vnd.oci.image.manifest.v1+json
printf 'max_blob_size = 1M\n' >"$T/berth.conf"
berth_start "$D" --config "$T/berth.conf"
on_exit berth_kill
R=http://$REGISTRY
ADMIN="admin:$(grep -o 'with password [A-Za-z0-9_-]*' "$D.log" | awk '{print $3}')"
# req METHOD PATH [curl args...]: sets STATUS and BODY (raw path: --path-as-is)
req() {
	local m=$1 p=$2
	shift 2
	local extra=(-X "$m")
	[ "$m" = HEAD ] && extra=(-I)
	STATUS=$(curl -s --path-as-is --max-time 30 "${extra[@]}" -o "$T/b" -w '%{http_code}' "$@" "$R$p" || true)
	BODY=$(tr -d '\0' <"$T/b")
}
ocicode() { python3 -c 'import json,sys; print(json.load(sys.stdin)["errors"][0]["code"])' <<<"$BODY" 2>/dev/null || echo "not-oci-json"; }
expect() { # expect NAME STATUS [OCI-CODE]
	check_eq "$1: status" "$2" "$STATUS"
	if [ $# -ge 3 ]; then check_eq "$1: error code" "$3" "$(ocicode)"; fi
}
push_blob() { # CREDS REPO FILE -> status
	curl -s -o /dev/null -w '%{http_code}' -u "$1" -X POST --data-binary @"$3" "$R/v2/$2/blobs/uploads/?digest=$(sha "$3")"
}

check "user add alice" B user add alice --password-stdin <<<"alice-passwd-01"
check "grant alice pull,push on team/*" B grant add user:alice pull,push 'team/*'
check "user add mallory" B user add mallory --password-stdin <<<"mallory-pass-1"
check "grant mallory pull,push on evil/*" B grant add user:mallory pull,push 'evil/*'
A=alice:alice-passwd-01
M=mallory:mallory-pass-1

head -c 5000 /dev/urandom >"$T/secret"
printf '{"architecture":"amd64","os":"linux"}' >"$T/config"
check_eq "admin pushes a secret blob to private/x" 201 "$(push_blob "$ADMIN" private/x "$T/secret")"
check_eq "admin pushes a config to private/x" 201 "$(push_blob "$ADMIN" private/x "$T/config")"
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":5000}]}' \
	"$OCI_M" "$(sha "$T/config")" "$(stat -c %s "$T/config")" "$(sha "$T/secret")" >"$T/manifest"
check_eq "admin pushes a manifest to private/x" 201 "$(curl -s -o /dev/null -w '%{http_code}' -u "$ADMIN" -X PUT \
	-H "Content-Type: $OCI_M" --data-binary @"$T/manifest" "$R/v2/private/x/manifests/v1")"
SECRET=$(sha "$T/secret")
MDIG=$(sha "$T/manifest")

log "1. cross-repository reads by digest"
head -c 100 /dev/urandom >"$T/own"
check_eq "alice pushes her own blob to team/app" 201 "$(push_blob "$A" team/app "$T/own")"
req GET "/v2/team/app/blobs/$SECRET" -u "$A"
expect "alice GETs private/x's blob through team/app" 404 BLOB_UNKNOWN
req HEAD "/v2/team/app/blobs/$SECRET" -u "$A"
expect "alice HEADs private/x's blob through team/app" 404
req GET "/v2/team/app/manifests/$MDIG" -u "$A"
expect "alice GETs private/x's manifest by digest through team/app" 404 MANIFEST_UNKNOWN
req GET "/v2/team/app/referrers/$MDIG" -u "$A"
check "alice's referrers of private/x's manifest through team/app reveal nothing" \
	test "$STATUS" = 404 -o "$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)["manifests"]))' <<<"$BODY" 2>/dev/null)" = 0
req GET "/v2/private/x/blobs/$SECRET" -u "$A"
expect "alice GETs private/x's blob directly (no grant)" 403 DENIED
req POST "/v2/team/app/blobs/uploads/?digest=$SECRET" -u "$A"
expect "alice 'uploads' the secret digest with an empty body" 400 DIGEST_INVALID
req GET "/v2/team/app/blobs/$SECRET" -u "$A"
expect "... and still cannot read it" 404 BLOB_UNKNOWN
req PUT "/v2/team/app/manifests/stolen" -u "$A" -H "Content-Type: $OCI_M" --data-binary @"$T/manifest"
expect "alice PUTs a manifest naming private/x's blobs into team/app" 400 MANIFEST_BLOB_UNKNOWN

log "2. another user's upload session"
LOC=$(curl -s -u "$A" -X POST -D - -o /dev/null "$R/v2/team/app/blobs/uploads/" | tr -d '\r' |
	awk -F': ' 'tolower($1)=="location"{print $2}')
UUID=${LOC##*/}
check "alice opened a session" test -n "$UUID"
head -c 1000 /dev/urandom >"$T/part"
check_eq "alice appends 1000 bytes" 202 "$(curl -s -o /dev/null -w '%{http_code}' -u "$A" -X PATCH \
	--data-binary @"$T/part" "$R$LOC")"
req PATCH "/v2/evil/x/blobs/uploads/$UUID" -u "$M" --data-binary @"$T/part"
expect "mallory PATCHes alice's session through evil/x" 404 BLOB_UPLOAD_UNKNOWN
req PUT "/v2/evil/x/blobs/uploads/$UUID?digest=$(sha "$T/part")" -u "$M"
expect "mallory finishes alice's session through evil/x" 404 BLOB_UPLOAD_UNKNOWN
req GET "/v2/evil/x/blobs/uploads/$UUID" -u "$M"
expect "mallory reads alice's session status through evil/x" 404 BLOB_UPLOAD_UNKNOWN
req DELETE "/v2/evil/x/blobs/uploads/$UUID" -u "$M"
expect "mallory cancels alice's session through evil/x" 404 BLOB_UPLOAD_UNKNOWN
req PATCH "$LOC" -u "$M" --data-binary @"$T/part"
expect "mallory PATCHes alice's session through team/app (no push there)" 403 DENIED
check_eq "alice's session is untouched" "0-999" \
	"$(curl -s -u "$A" -o /dev/null -D - "$R$LOC" | tr -d '\r' | awk -F': ' 'tolower($1)=="range"{print $2}')"

log "3. path traversal, raw and percent-encoded"
touch "$T/canary"
H64=$(printf '0%.0s' $(seq 1 64))
for p in \
	"/v2/../../etc/passwd" \
	"/v2/team/../private/x/tags/list" \
	"/v2/team/%2e%2e/private/x/tags/list" \
	"/v2/team/%2E%2E%2Fprivate/x/tags/list" \
	"/v2/team/app%2F..%2F..%2Fprivate%2Fx/tags/list" \
	"/v2/./team/app/tags/list" \
	"/v2/team//app/tags/list" \
	"/v2/team/app/blobs/sha256:../../../berth.db" \
	"/v2/team/app/blobs/sha256:..%2F..%2F..%2Fberth.db" \
	"/v2/team/app/blobs/sha256%3A$H64" \
	"/v2/team/app/blobs/sha256:$H64/../../x" \
	"/v2/team/app/blobs/..%2F..%2Fblobs%2Fsha256%2F${SECRET:7:2}%2F${SECRET:7}" \
	"/v2/team/app/manifests/..%2F..%2Fprivate%2Fx%2Fmanifests%2Fv1" \
	"/v2/team/app/manifests/../../private/x/manifests/v1" \
	"/v2/team/app/blobs/uploads/../../../../berth.db" \
	"/v2/team/app/blobs/uploads/..%2F..%2F..%2Fberth.db" \
	"/v2/team/app/blobs/uploads/$UUID%00" \
	"/v2/team/app/blobs/uploads/${UUID^^}" \
	"/v2/team/app/referrers/sha256:..%2F..%2Fx"; do
	req GET "$p" -u "$ADMIN"
	case $STATUS in
	400 | 404) check "traversal $p: $STATUS with an OCI error body" test "$(ocicode)" != not-oci-json ;;
	*) check_eq "traversal $p: refused (400 or 404)" "400|404" "$STATUS" ;;
	esac
done
req POST "/v2/team/app/blobs/uploads/?mount=sha256:..%2F..%2Fberth.db&from=private/x" -u "$ADMIN"
check "mount=<traversal>: no blob mounted (status $STATUS)" test "$STATUS" = 400 -o "$STATUS" = 202
req POST "/v2/team/app/blobs/uploads/?mount=$SECRET&from=..%2Fprivate%2Fx" -u "$ADMIN"
expect "from=<traversal>" 400 NAME_INVALID
req POST "/v2/team/app/blobs/uploads/?digest=sha256:..%2F..%2F..%2F..%2Ftmp%2Fpwned" -u "$ADMIN" --data-binary @"$T/part"
expect "digest=<traversal>" 400 DIGEST_INVALID
req PUT "$LOC?digest=sha256%3A..%2F..%2Fcanary" -u "$A"
expect "finishing a session with digest=<traversal>" 400 DIGEST_INVALID
check_fail "no file was created by the traversal attempts" test -e /tmp/pwned
check_eq "the data directory holds only berth's own entries" "berth.db berth.db-shm berth.db-wal blobs keys tmp uploads" \
	"$(ls "$D" | tr '\n' ' ' | sed 's/ $//')"

log "4. oversized input"
BIG=$(head -c 70000 /dev/zero | tr '\0' a)
req GET /v2/ -u "$ADMIN" -H "X-Big: $BIG"
check "a 70 KB header: refused or ignored, never a crash (status $STATUS)" test "$STATUS" = 200 -o "$STATUS" = 400 -o "$STATUS" = 431
HUGE=$(head -c 600000 /dev/zero | tr '\0' a)
printf 'GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Huge: %s\r\n\r\n' "$HUGE" >"$T/huge.req"
got=$(python3 - "$BERTH_PORT" "$T/huge.req" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(10)
try:
    s.sendall(open(sys.argv[2], "rb").read())
    print(s.recv(200).split(b"\r\n")[0].decode() or "closed")
except OSError as e:
    print("closed")
PY
)
check "a 600 KB request head: refused or the connection closed (got: $got)" test "$got" != "HTTP/1.1 200 OK"
args=()
for i in $(seq 1 300); do args+=(-H "X-H$i: v"); done
req GET /v2/ -u "$ADMIN" "${args[@]}"
check "300 headers: refused or served, never a crash (status $STATUS)" test "$STATUS" = 200 -o "$STATUS" = 400 -o "$STATUS" = 431
req GET /v2/team/app/tags/list -H "Authorization: Bearer $(head -c 100000 /dev/zero | tr '\0' a)"
expect "a 100 KB bearer token (a head over HTTP1_HEAD_MAX)" 400 UNSUPPORTED
req GET /v2/ -H "Authorization: Basic $(head -c 30000 /dev/zero | tr '\0' a | base64 -w0)"
expect "30 KB of Basic credentials (a head over HTTP1_HEAD_MAX)" 400 UNSUPPORTED
head -c 700000 /dev/urandom >"$T/c1"
head -c 700000 /dev/urandom >"$T/c2"
LOC2=$(curl -s -u "$A" -X POST -D - -o /dev/null "$R/v2/team/app/blobs/uploads/" | tr -d '\r' |
	awk -F': ' 'tolower($1)=="location"{print $2}')
req PATCH "$LOC2" -u "$A" -H 'Content-Range: 0-699999' --data-binary @"$T/c1"
expect "chunk 1 of 2 (700 KB, max_blob_size 1M)" 202
req PATCH "$LOC2" -u "$A" -H 'Content-Range: 700000-1399999' --data-binary @"$T/c2"
expect "chunk 2 takes the session over max_blob_size" 413 SIZE_INVALID
check_eq "... and the session keeps only the first chunk" "0-699999" \
	"$(curl -s -u "$A" -o /dev/null -D - "$R$LOC2" | tr -d '\r' | awk -F': ' 'tolower($1)=="range"{print $2}')"
check "berth survived the oversized input" kill -0 "$BERTH_PID"

log "5. a JWT whose signature is spelled with a byte >= 0x80"
TOK=
for _ in $(seq 1 20); do
	t=$(curl -s -u "$A" "$R/token?service=berth&scope=repository:team/app:pull" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
	sig=${t##*.}
	case ${sig:0:${#sig}-1} in *_*) TOK=$t && break ;; esac
	sleep 1.1 # a new iat, a new signature
done
check "a token whose signature holds '_' (not last)" test -n "$TOK"
check_eq "control: the token works" 200 "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOK" "$R/v2/team/app/tags/list")"
head=${TOK%.*}
sig=${TOK##*.}
i=$(python3 -c 'import sys; s=sys.argv[1]; print(s[:-1].index("_"))' "$sig")
printf 'Authorization: Bearer %s.%s\xf0%s' "$head" "${sig:0:i}" "${sig:i+1}" >"$T/alias.hdr"
check_eq "the same token with '_' written as 0xf0: 401" 401 \
	"$(curl -s -o /dev/null -w '%{http_code}' -H @"$T/alias.hdr" "$R/v2/team/app/tags/list")"
finish
