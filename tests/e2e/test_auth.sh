#!/usr/bin/env bash
# Authentication and authorization end to end: a fresh `berth serve` with auth ON (the default), administered with
# `berth user|token|grant` while it runs, driven by curl (protocol and JWT forgery cases), skopeo and docker, and
# (if present) the OCI conformance suite with OCI_USERNAME/OCI_PASSWORD.
#
#   tests/e2e/test_auth.sh            (BERTH_BIN defaults to build/berth)
#
# With BERTH_E2E_BACKEND=pg-s3 (server.sh) the registry keeps its metadata in PostgreSQL and its blobs on Ceph RGW,
# and a second node B serves from the same database and bucket: every token the suite asks for is issued by B and
# used on A (forged tokens are signed with the key row of shared_keys).
#
# Env: BERTH_BIN, BERTH_E2E_BACKEND, DOCKER (CLI), SKIP_DOCKER=1, CONFORMANCE (default /work/conformance/run.sh; "" skips),
#      E2E_KEEP, E2E_VERBOSE.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
# shellcheck source=server.sh
. "$HERE/server.sh"
# shellcheck source=../../scripts/lib/images.sh
. "$HERE/../../scripts/lib/images.sh"
# shellcheck source=../../scripts/lib/dockerd.sh
. "$HERE/../../scripts/lib/dockerd.sh"

PY=/usr/bin/python3
CONFORMANCE=${CONFORMANCE-/work/conformance/run.sh}
e2e_tmpdir T
DATA=$T/data
U="auth $$ $(date +%s%N)"

B() { "$BERTH_BIN" "$@" --data "$DATA"; }
last_word() { tail -n 1 | awk '{print $NF}'; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
hdr() { curl -s -o /dev/null -D - "$@" | tr -d '\r'; }
# shellcheck disable=SC2317  # called through check_fail
# in_db SECRET: true if SECRET appears anywhere in the metadata (the SQLite file, or a dump of the PostgreSQL database)
in_db() {
	if berth_is_pg; then pg_dump "$BERTH_METADATA" >"$T/dump"; else cp "$DATA/berth.db" "$T/dump"; fi
	grep -qaF -- "$1" "$T/dump"
}
token_for() { # USER:PASS SCOPE... -> bearer token issued by node TR ('' user:pass = anonymous)
	local creds=$1 q="service=berth" s
	shift
	for s in "$@"; do q="$q&scope=$s"; done
	if [ -n "$creds" ]; then
		curl -s -u "$creds" "http://$TR/token?$q" | jq -r .token
	else
		curl -s "http://$TR/token?$q" | jq -r .token
	fi
}
jwt_part() { # TOKEN INDEX -> decoded JSON of part INDEX (0 header, 1 payload)
	$PY -c 'import sys,base64; p=sys.argv[1].split(".")[int(sys.argv[2])]; print(base64.urlsafe_b64decode(p+"="*(-len(p)%4)).decode())' "$1" "$2"
}
b64url() { $PY -c 'import sys,base64; print(base64.urlsafe_b64encode(sys.stdin.buffer.read()).decode().rstrip("="))'; }
# jwt_sign KEYPEM HEADER_JSON PAYLOAD_JSON -> compact JWT signed with Ed25519 by openssl
jwt_sign() {
	local h p
	h=$(printf '%s' "$2" | b64url)
	p=$(printf '%s' "$3" | b64url)
	printf '%s.%s' "$h" "$p" >"$T/msg"
	printf '%s.%s.%s' "$h" "$p" "$(openssl pkeyutl -sign -rawin -inkey "$1" -in "$T/msg" | b64url)"
}
# seed_pem SEED_B64URL OUT: the PKCS#8 PEM of an Ed25519 key from its 32-byte seed (berth's key-file format)
seed_pem() {
	local hex
	hex=$($PY -c 'import sys,base64; s=sys.argv[1]; print(base64.urlsafe_b64decode(s+"="*(-len(s)%4)).hex())' "$1")
	printf '302e020100300506032b657004220420%s' "$hex" | xxd -r -p | openssl pkey -inform DER -out "$2"
}

berth_backend_up "$T/backend"
on_exit berth_backend_down "$T/backend"

########################################################################
log "1. first start: admin user created, password shown once, only its hash stored"
berth_start "$DATA"
on_exit berth_stop
R=$REGISTRY
ADMIN_PW=$(grep -o 'with password [A-Za-z0-9_-]*' "$DATA.log" | awk '{print $3}')
check "first start printed a generated admin password" test -n "$ADMIN_PW"
check_contains "first start printed the docker login command" \
	"| docker login --username admin --password-stdin $R" "$(cat "$DATA.log")"
check_fail "the admin password is not in the metadata" in_db "$ADMIN_PW"
check_contains "the stored hash is argon2id" '$argon2id$' "$(berth_sql "$DATA" 'select pwhash from users' 2>&1)"
if berth_is_pg; then
	check_contains "the signing key is a row of shared_keys" "ed25519 " "$(berth_key "$DATA" jwt-current.key 2>&1)"
	check_fail "... not a file" test -e "$DATA/keys/jwt-current.key"
else
	check_eq "signing key exists with mode 0600" "600" "$(stat -c %a "$DATA/keys/jwt-current.key")"
	check_eq "keys/ has mode 0700" "700" "$(stat -c %a "$DATA/keys")"
fi
berth_stop
berth_start "$DATA"
check_eq "a second start prints no new password" 1 "$(grep -c 'with password' "$DATA.log")"
R=$REGISTRY
A="admin:$ADMIN_PW"
TR=$R # the node that issues the tokens
if berth_is_pg; then
	APID=$BERTH_PID
	berth_start "$T/nodeb"
	TR=$REGISTRY
	on_exit kill "$BERTH_PID"
	check_eq "node B, starting on the same database, prints no password" 0 "$(grep -c 'with password' "$T/nodeb.log")"
	BERTH_PID=$APID REGISTRY=$R
fi

########################################################################
log "2. berth user|token|grant while the server runs"
check "user add alice (password on stdin)" B user add alice --password-stdin <<<"alice-passwd-01"
check "user add bob" B user add bob --password-stdin <<<"bob-passwd-0001"
OUT=$(B user add carol 2>&1)
CAROL_PW=$(last_word <<<"$OUT")
check "user add without a password prints a generated one" test ${#CAROL_PW} -ge 20
check_fail "user add of an existing name fails" B user add alice --password-stdin <<<"x"
check_fail "user name AWS is reserved (ECR)" B user add AWS --password-stdin <<<"x"
check "grant alice pull,push on team/*" B grant add user:alice pull,push 'team/*'
check "grant bob pull on team/*" B grant add user:bob pull 'team/*'
check_eq "anonymous _catalog, anonymous can pull nothing: 401" 401 "$(code "http://$R/v2/_catalog")"
check_contains "... with the catalog challenge" \
	"www-authenticate: Bearer realm=\"http://$R/token\",service=\"berth\",scope=\"registry:catalog:*\"" \
	"$(hdr "http://$R/v2/_catalog")"
check_eq "... and the OCI error body" UNAUTHORIZED "$(curl -s "http://$R/v2/_catalog" | jq -r '.errors[0].code')"
check_eq "_catalog with credentials: 200" 200 "$(code -u "$A" "http://$R/v2/_catalog")"
check "grant anonymous pull on public/*" B grant add anonymous pull 'public/*'
check_eq "anonymous _catalog once anonymous can pull something: 200" 200 "$(code "http://$R/v2/_catalog")"
check_fail "anonymous may only be granted pull" B grant add anonymous push 'public/*'
check_fail "grant to an unknown user fails" B grant add user:nobody pull '*'
OUT=$(B token create --name ci-main --scope 'repository:team/*:pull,push' --ttl 30d 2>&1)
CI=$(last_word <<<"$OUT")
check_contains "token create prints a secret as the last word" "berth_" "$CI"
check_fail "the token secret is not in the metadata" in_db "$CI"
SHORT=$(B token create --name ci-short --scope 'repository:team/*:pull' --ttl 3s | last_word)
REVOKED=$(B token create --name ci-old --scope 'repository:team/*:pull' --ttl 1d | last_word)
PUBONLY=$(B token create --name ci-pub --scope 'repository:public/*:pull' | last_word)
check_contains "token list shows the scope" "repository:team/*:pull,push" "$(B token list)"
check_contains "grant list shows alice" "user:alice" "$(B grant list)"
check_contains "user list shows the admin" "admin" "$(B user list)"
OUT=$("$BERTH_BIN" user list --data "$T/missing" 2>&1) && RC=0 || RC=$?
check_eq "a management command refuses a missing data directory" 1 "$RC"
check_contains "... saying so" "no registry at $T/missing (use --data)" "$OUT"
check_fail "... and does not create it" test -e "$T/missing"
for verb in "user add zed --password-stdin" "token list" "grant list" "accesskey list" "repo list" "gc --dry-run" \
	"fsck" "lifecycle get team/app" "quota list" "events tail"; do
	# shellcheck disable=SC2086
	check_fail "$verb refuses a missing data directory" "$BERTH_BIN" $verb --data "$T/missing" </dev/null
done
check_fail "... none of them created it" test -e "$T/missing"
mkdir "$T/fresh"
check "an existing empty data directory is initialized by a subcommand" "$BERTH_BIN" user list --data "$T/fresh"
check "a user can be created before the first start" "$BERTH_BIN" user add early --data "$T/fresh" \
	--password-stdin <<<"early-passwd-01"
check_contains "... and is listed" "early" "$("$BERTH_BIN" user list --data "$T/fresh")"
check_contains "BERTH_DATA names the data directory of a management command too" "early" \
	"$(BERTH_DATA="$T/fresh" "$BERTH_BIN" user list)"
check_contains "... and --data wins over it" "no registry at $T/missing" \
	"$(BERTH_DATA="$T/fresh" "$BERTH_BIN" user list --data "$T/missing" 2>&1 || true)"
OUT=$(B user add shorty --password-stdin <<<"elevenchars" 2>&1) && RC=0 || RC=$?
check_eq "a password of 11 characters is refused" 2 "$RC"
check_contains "... saying the minimum" "at least 12 characters" "$OUT"
check_not_contains "... and the user is not created" "shorty" "$(B user list)"
check "a password of 12 characters is accepted" B user add shorty --password-stdin <<<"twelve-chars"
check_fail "user passwd also refuses a short password" B user passwd shorty --password-stdin <<<"short"
check_eq "... and the old password still works" 200 "$(code -u shorty:twelve-chars "http://$R/v2/")"
OUT=$(B token create --name noscope 2>&1) && RC=0 || RC=$?
check_eq "token create without --scope is refused" 2 "$RC"
check_contains "... with a clear message" "a token needs at least one --scope" "$OUT"
check_not_contains "... and no token is made" "noscope" "$(B token list)"

########################################################################
log "3. challenges and Basic auth on /v2/"
H=$(hdr "http://$R/v2/")
check_contains "unauthenticated /v2/ gets 401" "HTTP/1.1 401" "$H"
check_contains "challenge names berth's own token URL and service" \
	"www-authenticate: Bearer realm=\"http://$R/token\",service=\"berth\"" "$H"
check_contains "repository request challenge carries the scope" \
	'scope="repository:team/app:pull"' "$(hdr "http://$R/v2/team/app/tags/list")"
check_contains "push request challenge asks for pull,push" \
	'scope="repository:team/app:pull,push"' "$(hdr -X POST "http://$R/v2/team/app/blobs/uploads/")"
check_eq "Basic with the right password: 200" 200 "$(code -u alice:alice-passwd-01 "http://$R/v2/")"
check_eq "Basic with a wrong password: 401" 401 "$(code -u alice:wrong "http://$R/v2/")"
check_eq "Basic for an unknown user: 401" 401 "$(code -u nobody:x "http://$R/v2/")"
check_eq "robot token as Basic password: 200" 200 "$(code -u "ci-main:$CI" "http://$R/v2/")"
check_eq "robot token with a wrong secret: 401" 401 "$(code -u "ci-main:${CI}x" "http://$R/v2/")"
check_eq "bob (pull only) may not start an upload: 403" 403 \
	"$(code -X POST -u bob:bob-passwd-0001 "http://$R/v2/team/app/blobs/uploads/")"
check_eq "alice may start an upload: 202" 202 "$(code -X POST -u alice:alice-passwd-01 "http://$R/v2/team/app/blobs/uploads/")"
check_eq "alice may not touch private/x: 403" 403 "$(code -u alice:alice-passwd-01 "http://$R/v2/private/x/tags/list")"

########################################################################
log "4. the token endpoint: granted = asked ∩ allowed"
TOK=$(token_for alice:alice-passwd-01 'repository:team/app:pull,push' 'repository:private/x:pull' 'repository:team/app2:delete')
check_eq "alice's token holds exactly team/app pull,push" \
	'[{"type":"repository","name":"team/app","actions":["pull","push"]}]' "$(jwt_part "$TOK" 1 | jq -c .access)"
check_eq "header alg is EdDSA" EdDSA "$(jwt_part "$TOK" 0 | jq -r .alg)"
P=$(jwt_part "$TOK" 1)
check_eq "aud, iss, sub, lifetime" "berth berth alice 300" "$(jq -r '"\(.aud) \(.iss) \(.sub) \(.exp - .iat)"' <<<"$P")"
R_TOK=$(curl -s -u alice:alice-passwd-01 "http://$R/token?service=berth&scope=repository:team/app:pull")
check_eq "response has token, access_token, expires_in, issued_at" "true true 300 true" \
	"$(jq -r '"\(.token != null) \(.access_token == .token) \(.expires_in) \(.issued_at | test("Z$"))"' <<<"$R_TOK")"
check_eq "token with the scope: allowed (team/app exists since alice's upload)" 200 \
	"$(code -H "Authorization: Bearer $TOK" "http://$R/v2/team/app/tags/list")"
check_eq "token for team/app used on team/other: 401" 401 \
	"$(code -H "Authorization: Bearer $TOK" "http://$R/v2/team/other/tags/list")"
check_contains "… with error=insufficient_scope" 'error="insufficient_scope"' \
	"$(hdr -H "Authorization: Bearer $TOK" "http://$R/v2/team/other/tags/list")"
check_eq "/token with a wrong password: 401" 401 "$(code -u alice:nope "http://$R/token?service=berth&scope=repository:team/app:pull")"
check_eq "/token for another service: 400" 400 "$(code -u alice:alice-passwd-01 "http://$R/token?service=evil")"
ANON=$(token_for "" 'repository:public/pub:pull,push' 'repository:team/app:pull')
check_eq "anonymous token: only pull of public/*" '[{"type":"repository","name":"public/pub","actions":["pull"]}]' \
	"$(jwt_part "$ANON" 1 | jq -c .access)"
CITOK=$(token_for "ci-main:$CI" 'repository:team/x:pull,push,delete')
check_eq "robot token at /token: its scope, no delete" '["pull","push"]' "$(jwt_part "$CITOK" 1 | jq -c '.access[0].actions')"
check_eq "bearer token on /v2/: 200" 200 "$(code -H "Authorization: Bearer $CITOK" "http://$R/v2/")"

########################################################################
log "5. forged, tampered, expired JWTs"
KID=$(jwt_part "$TOK" 0 | jq -r .kid)
seed_pem "$(berth_key "$DATA" jwt-current.key | awk '{print $3}')" "$T/real.pem"
openssl genpkey -algorithm ed25519 -out "$T/other.pem" 2>/dev/null
NOW=$(date +%s)
ALICE_UID=$(berth_sql "$DATA" "select uid from users where name = 'alice'")
claims() { # NAME ACTIONS EXP [AUD] [NBF]
	printf '{"iss":"berth","sub":"alice","aud":"%s","exp":%s,"nbf":%s,"iat":%s,"berth_kind":"user","berth_uid":"%s","access":[{"type":"repository","name":"%s","actions":["%s"]}]}' \
		"${4:-berth}" "$3" "${5:-$NOW}" "$NOW" "$ALICE_UID" "$1" "$2"
}
HDR='{"alg":"EdDSA","typ":"JWT","kid":"'$KID'"}'
GOOD=$(jwt_sign "$T/real.pem" "$HDR" "$(claims team/app pull $((NOW + 60)))")
check_eq "control: a token signed with the real key verifies" 200 \
	"$(code -H "Authorization: Bearer $GOOD" "http://$R/v2/team/app/tags/list")"
TAMPERED=$($PY -c '
import sys,base64,json
h,p,s=sys.argv[1].split(".")
c=json.loads(base64.urlsafe_b64decode(p+"="*(-len(p)%4)))
c["access"][0]["name"]="private/x"
p=base64.urlsafe_b64encode(json.dumps(c,separators=(",",":")).encode()).decode().rstrip("=")
print(h+"."+p+"."+s)' "$GOOD")
check_eq "tampered payload (repository changed): 401" 401 \
	"$(code -H "Authorization: Bearer $TAMPERED" "http://$R/v2/private/x/tags/list")"
WRONG=$(jwt_sign "$T/other.pem" "$HDR" "$(claims team/app pull $((NOW + 60)))")
check_eq "signed with another key (our kid): 401" 401 "$(code -H "Authorization: Bearer $WRONG" "http://$R/v2/team/app/tags/list")"
NONE_H=$(printf '{"alg":"none","typ":"JWT","kid":"%s"}' "$KID" | b64url)
NONE_P=$(claims team/app pull $((NOW + 60)) | b64url)
check_eq "alg none, empty signature: 401" 401 \
	"$(code -H "Authorization: Bearer $NONE_H.$NONE_P." "http://$R/v2/team/app/tags/list")"
HS=$(jwt_sign "$T/real.pem" '{"alg":"HS256","typ":"JWT","kid":"'$KID'"}' "$(claims team/app pull $((NOW + 60)))")
check_eq "alg HS256 (even with a valid Ed25519 signature): 401" 401 \
	"$(code -H "Authorization: Bearer $HS" "http://$R/v2/team/app/tags/list")"
EXP=$(jwt_sign "$T/real.pem" "$HDR" "$(claims team/app pull $((NOW - 1)))")
check_eq "expired token: 401" 401 "$(code -H "Authorization: Bearer $EXP" "http://$R/v2/team/app/tags/list")"
NBF=$(jwt_sign "$T/real.pem" "$HDR" "$(claims team/app pull $((NOW + 600)) berth $((NOW + 300)))")
check_eq "token not valid before the future: 401" 401 "$(code -H "Authorization: Bearer $NBF" "http://$R/v2/team/app/tags/list")"
AUD=$(jwt_sign "$T/real.pem" "$HDR" "$(claims team/app pull $((NOW + 60)) other-registry)")
check_eq "token for another audience: 401" 401 "$(code -H "Authorization: Bearer $AUD" "http://$R/v2/team/app/tags/list")"
check_contains "invalid token challenge says invalid_token" 'error="invalid_token"' \
	"$(hdr -H "Authorization: Bearer $EXP" "http://$R/v2/team/app/tags/list")"

########################################################################
log "5b. signing-key rotation while the server runs"
OLDK=$(token_for alice:alice-passwd-01 'repository:team/app:pull')
KEY_BEFORE=$(berth_key "$DATA" jwt-current.key)
check "token rotate-key" B token rotate-key
if berth_is_pg; then
	check_eq "the previous key is kept (row jwt-previous.key = the key current before)" "$KEY_BEFORE" \
		"$(berth_key "$DATA" jwt-previous.key 2>&1)"
	# each node re-reads the key rows at most every KEYS_STAMP_POLL_MS (500 ms)
	for _ in $(seq 1 50); do
		NEWK=$(token_for alice:alice-passwd-01 'repository:team/app:pull')
		[ "$(jwt_part "$OLDK" 0 | jq -r .kid)" != "$(jwt_part "$NEWK" 0 | jq -r .kid)" ] && break
		sleep 0.1
	done
else
	check_eq "the previous key is kept, mode 0600" 600 "$(stat -c %a "$DATA/keys/jwt-previous.key")"
	# no wait: the server looks at keys/ on every bearer request and token signing
	NEWK=$(token_for alice:alice-passwd-01 'repository:team/app:pull')
fi
check "new tokens are signed by the new key (new kid)" \
	test "$(jwt_part "$OLDK" 0 | jq -r .kid)" != "$(jwt_part "$NEWK" 0 | jq -r .kid)"
check_eq "a token signed by the new key verifies" 200 "$(code -H "Authorization: Bearer $NEWK" "http://$R/v2/team/app/tags/list")"
check_eq "a token signed by the previous key still verifies" 200 \
	"$(code -H "Authorization: Bearer $OLDK" "http://$R/v2/team/app/tags/list")"

########################################################################
log "6. expired and revoked robot tokens; deleted users"
OLDTOK=$(token_for "ci-old:$REVOKED" 'repository:team/app:pull')
check_eq "ci-old works before revocation" 200 "$(code -H "Authorization: Bearer $OLDTOK" "http://$R/v2/team/app/tags/list")"
check "token revoke ci-old" B token revoke ci-old
check_eq "revoked robot token as Basic: 401" 401 "$(code -u "ci-old:$REVOKED" "http://$R/v2/")"
check_eq "revoked robot token at /token: 401" 401 "$(code -u "ci-old:$REVOKED" "http://$R/token?service=berth")"
check_eq "a JWT issued before the revocation: 401 at once" 401 \
	"$(code -H "Authorization: Bearer $OLDTOK" "http://$R/v2/team/app/tags/list")"
check_contains "token list shows it revoked" "revoked" "$(B token list | grep ci-old)"
sleep 3
check_eq "expired robot token (ttl 3s) as Basic: 401" 401 "$(code -u "ci-short:$SHORT" "http://$R/v2/")"
check_eq "expired robot token at /token: 401" 401 "$(code -u "ci-short:$SHORT" "http://$R/token?service=berth")"
check "user add dave" B user add dave --password-stdin <<<"dave-passwd-01"
check_eq "dave logs in" 200 "$(code -u dave:dave-passwd-01 "http://$R/v2/")"
check "user passwd dave" B user passwd dave --password-stdin <<<"dave-passwd-02"
check_eq "old password refused at once after passwd (despite the login cache)" 401 "$(code -u dave:dave-passwd-01 "http://$R/v2/")"
check_eq "new password accepted" 200 "$(code -u dave:dave-passwd-02 "http://$R/v2/")"
check "user del dave" B user del dave
check_eq "deleted user refused at once" 401 "$(code -u dave:dave-passwd-02 "http://$R/v2/")"

########################################################################
log "7. skopeo with --creds (robot token as password)"
img_busybox "$T/sk" amd64 "$U sk" >/dev/null
img_busybox "$T/pub" amd64 "$U pub" >/dev/null
img_busybox "$T/priv" amd64 "$U priv" >/dev/null
SK=(--dest-tls-verify=false)
check "skopeo push with the robot token" skopeo copy "${SK[@]}" --dest-creds "ci-main:$CI" "oci:$T/sk:latest" "docker://$R/team/sk:v1"
check "skopeo inspect with the robot token" skopeo inspect --tls-verify=false --creds "ci-main:$CI" "docker://$R/team/sk:v1"
check_fail "skopeo push as bob (pull only) is denied" \
	skopeo copy "${SK[@]}" --dest-creds bob:bob-passwd-0001 "oci:$T/sk:latest" "docker://$R/team/bobsk:v1"
check_fail "skopeo push with a pull-only robot token elsewhere is denied" \
	skopeo copy "${SK[@]}" --dest-creds "ci-pub:$PUBONLY" "oci:$T/sk:latest" "docker://$R/team/pubsk:v1"
check "admin pushes public/pub" skopeo copy "${SK[@]}" --dest-creds "$A" "oci:$T/pub:latest" "docker://$R/public/pub:v1"
check "admin pushes private/x" skopeo copy "${SK[@]}" --dest-creds "$A" "oci:$T/priv:latest" "docker://$R/private/x:v1"
check "skopeo inspect of a public repository without credentials" \
	skopeo inspect --tls-verify=false --no-creds "docker://$R/public/pub:v1"
check_fail "skopeo inspect of a private repository without credentials fails" \
	skopeo inspect --tls-verify=false --no-creds "docker://$R/private/x:v1"

########################################################################
log "8. cross-repository mount needs pull on the source"
LAYER=$(img_layer_digests "$T/priv" | head -n1)
TLAYER=$(img_layer_digests "$T/sk" | head -n1)
check_eq "alice mounting from private/x (no pull there): 202 upload session, no 201" 202 \
	"$(code -X POST -u alice:alice-passwd-01 "http://$R/v2/team/app/blobs/uploads/?mount=$LAYER&from=private/x")"
check_eq "alice mounting from team/sk (pull allowed): 201" 201 \
	"$(code -X POST -u alice:alice-passwd-01 "http://$R/v2/team/app/blobs/uploads/?mount=$TLAYER&from=team/sk")"
check_eq "the blob did not leak into team/app" 404 "$(code -I -u alice:alice-passwd-01 "http://$R/v2/team/app/blobs/$LAYER")"
MT=$(token_for alice:alice-passwd-01 'repository:team/m:pull,push' 'repository:private/x:pull')
check_eq "bearer mount without pull on the source: 202" 202 \
	"$(code -X POST -H "Authorization: Bearer $MT" "http://$R/v2/team/m/blobs/uploads/?mount=$LAYER&from=private/x")"
MT=$(token_for alice:alice-passwd-01 'repository:team/m:pull,push' 'repository:team/sk:pull')
check_eq "bearer mount with pull on the source: 201" 201 \
	"$(code -X POST -H "Authorization: Bearer $MT" "http://$R/v2/team/m/blobs/uploads/?mount=$TLAYER&from=team/sk")"

########################################################################
log "9. _catalog lists only what the caller can pull"
cat_of() { curl -s "$@" "http://$R/v2/_catalog" | jq -c .repositories; }
check_eq "admin sees everything" '["private/x","public/pub","team/app","team/m","team/sk"]' "$(cat_of -u "$A")"
check_eq "alice sees team/* and public/*" '["public/pub","team/app","team/m","team/sk"]' "$(cat_of -u alice:alice-passwd-01)"
check_eq "anonymous sees public/* only" '["public/pub"]' "$(cat_of)"
check_eq "pages stay full when filtered (n=2)" '["public/pub","team/app"]' \
	"$(curl -s -u alice:alice-passwd-01 "http://$R/v2/_catalog?n=2" | jq -c .repositories)"

########################################################################
if [ -z "${SKIP_DOCKER:-}" ] && dockerd_start "$T/d" 2>/dev/null; then
	on_exit dockerd_stop "$T/d"
	log "10. docker login / push / pull"
	D() { "$DOCKER" "$@"; }
	img_docker_archive "$T/sk" "$T/sk.tar" "localhost/auth-sk:latest"
	D load -i "$T/sk.tar" >/dev/null
	check_fail "docker login with a bad password fails" sh -c "echo wrong | $DOCKER login -u alice --password-stdin $R"
	check "docker login as bob" sh -c "echo bob-passwd-0001 | $DOCKER login -u bob --password-stdin $R"
	D tag localhost/auth-sk:latest "$R/team/dock:v1"
	OUT=$(D push "$R/team/dock:v1" 2>&1 || true)
	check_contains "docker push without push permission: denied" "denied" "$OUT"
	check "docker login as alice" sh -c "echo alice-passwd-01 | $DOCKER login -u alice --password-stdin $R"
	check "docker push with push permission" D push "$R/team/dock:v1"
	check "docker logout" D logout "$R"
	D tag localhost/auth-sk:latest "$R/team/dock2:v1"
	OUT=$(D push "$R/team/dock2:v1" 2>&1 || true)
	check_contains "docker push without login is refused (anonymous token lacks push)" "denied" "$OUT"
	D rmi "$R/team/dock:v1" >/dev/null 2>&1 || true
	check "docker pull of a public repository without login" D pull "$R/public/pub:v1"
	check_fail "docker pull of a private repository without login" D pull "$R/private/x:v1"
	check "docker login with a robot token" sh -c "echo $CI | $DOCKER login -u ci-main --password-stdin $R"
	D tag localhost/auth-sk:latest "$R/team/robot:v1"
	check "docker push with the robot token" D push "$R/team/robot:v1"
	D rmi "$R/team/dock:v1" >/dev/null 2>&1 || true
	check "docker pull with the robot token" D pull "$R/team/dock:v1"
	D logout "$R" >/dev/null 2>&1 || true
else
	log "10. docker: skipped (SKIP_DOCKER set or dockerd did not start)"
fi

########################################################################
if [ -n "$CONFORMANCE" ] && [ -x "$CONFORMANCE" ]; then
	log "11. OCI conformance suite with auth on"
	# a non-admin user with exactly the grants the suite needs
	B user add conf --password-stdin <<<"conf-passwd-01" >/dev/null
	B grant add user:conf pull,push,delete 'conf/*' >/dev/null
	OUT=$(OCI_USERNAME=conf OCI_PASSWORD=conf-passwd-01 OCI_NAMESPACE=conf/myrepo OCI_CROSSMOUNT_NAMESPACE=conf/other \
		CONFORMANCE_OUT="$T/conformance" "$CONFORMANCE" "http://$R" 2>&1 || true)
	check_contains "conformance: 0 failed" " 0 failed" "$OUT"
fi

########################################################################
log "12. failed logins are rate-limited per address and user; no secret is logged"
for _ in $(seq 1 10); do code -u carol:wrong "http://$R/v2/" >/dev/null; done
check_eq "after 10 failures even the right password gets 429" 429 "$(code -u "carol:$CAROL_PW" "http://$R/v2/")"
check_eq "other users from the same address are not locked" 200 "$(code -u alice:alice-passwd-01 "http://$R/v2/")"
check_contains "denials are logged with user, repository and action" "auth: denied user 'bob': push on repository team/app" \
	"$(cat "$DATA.log")"
check_contains "failed logins are logged" "auth: denied login of 'carol'" "$(cat "$DATA.log")"
for s in "$ADMIN_PW" alice-passwd-01 bob-passwd-0001 "$CI" "$CAROL_PW" "$REVOKED"; do
	if [ "$s" = "$ADMIN_PW" ]; then
		# printed once on purpose at first start, never again
		check_eq "admin password appears only in the first-start banner" 2 "$(grep -cF -- "$s" "$DATA.log")"
	else
		check_fail "secret ${s:0:6}… is not in the server log" grep -qF -- "$s" "$DATA.log"
		! berth_is_pg || check_fail "... nor in node B's log" grep -qF -- "$s" "$T/nodeb.log"
	fi
done

finish
