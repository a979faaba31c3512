#!/usr/bin/env bash
# What an attack found (issue 15), kept as tests: revoked bearer tokens coming back through a reused name, grants
# removed under a live token, key rotation and the verified-token cache, log injection through a Basic user name,
# control bytes in credentials, the login path of token names, Content-Range overflow, and the realm's Host.
# Only curl and python3 sockets; a fresh `berth serve` with auth on, administered while it runs.
#
#   tests/e2e/test_attacks.sh         (BERTH_BIN defaults to build/berth)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
# shellcheck source=server.sh
. "$HERE/server.sh"

PY=/usr/bin/python3
e2e_tmpdir T
DATA=$T/data

B() { "$BERTH_BIN" "$@" --data "$DATA"; }
last_word() { tail -n 1 | awk '{print $NF}'; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
hdr() { curl -s -o /dev/null -D - "$@" | tr -d '\r'; }
token_for() { # USER:PASS SCOPE -> bearer token
	curl -s -u "$1" "http://$R/token?service=berth&scope=$2" | jq -r .token
}
bearer() { # TOKEN REPO -> HTTP status of GET tags/list (404 = allowed, the repository does not exist; 401 = denied)
	code -H "Authorization: Bearer $1" "http://$R/v2/$2/tags/list"
}
# raw REQUEST_BYTES (printf escapes) -> the whole response, read until the server closes or 2 s of silence
raw() {
	$PY - "$BERTH_PORT" "$1" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
s.settimeout(2)
out = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
except socket.timeout:
    pass
sys.stdout.write(out.decode("latin-1"))
EOF
}
basic() { # RAW_USER_PASS (printf escapes) -> base64 of the bytes
	$PY -c 'import sys,base64; print(base64.b64encode(sys.argv[1].encode().decode("unicode_escape").encode("latin-1")).decode())' "$1"
}

berth_start "$DATA" --log-level debug
on_exit berth_stop
R=$REGISTRY
ADMIN_PW=$(grep -o 'with password [A-Za-z0-9_-]*' "$DATA.log" | awk '{print $3}')

########################################################################
log "1. a revoked token does not come back when its name is reused"
X1=$(B token create --name ci-x --scope 'repository:att/*:pull' | last_word)
J1=$(token_for "ci-x:$X1" 'repository:att/r:pull')
check_eq "ci-x's bearer token works" 404 "$(bearer "$J1" att/r)"
check "token revoke ci-x" B token revoke ci-x
check_eq "revoked: its bearer token is refused" 401 "$(bearer "$J1" att/r)"
X2=$(B token create --name ci-x --scope 'repository:att/*:pull' | last_word)
check_eq "a new ci-x (same name, same scope) has a working token" 404 \
	"$(bearer "$(token_for "ci-x:$X2" 'repository:att/r:pull')" att/r)"
check_eq "the old ci-x's bearer token stays refused" 401 "$(bearer "$J1" att/r)"
check_eq "the old ci-x's secret stays refused" 401 "$(code -u "ci-x:$X1" "http://$R/v2/")"

check "user add eve" B user add eve --password-stdin <<<"eve-passwd-01"
check "grant eve pull on att/*" B grant add user:eve pull 'att/*'
J2=$(token_for eve:eve-passwd-01 'repository:att/r:pull')
check_eq "eve's bearer token works" 404 "$(bearer "$J2" att/r)"
check "user del eve" B user del eve
check "user add eve again" B user add eve --password-stdin <<<"eve-passwd-02"
check "grant the new eve pull on att/*" B grant add user:eve pull 'att/*'
check_eq "the new eve's token works" 404 "$(bearer "$(token_for eve:eve-passwd-02 'repository:att/r:pull')" att/r)"
check_eq "the deleted eve's bearer token is refused" 401 "$(bearer "$J2" att/r)"
check_contains "… as an invalid token" 'error="invalid_token"' \
	"$(hdr -H "Authorization: Bearer $J2" "http://$R/v2/att/r/tags/list")"

########################################################################
log "2. removing a grant cuts off bearer tokens issued before"
check "user add gus" B user add gus --password-stdin <<<"gus-passwd-01"
check "grant gus pull on att/*" B grant add user:gus pull 'att/*'
J3=$(token_for gus:gus-passwd-01 'repository:att/r:pull')
check_eq "gus's bearer token works (and is now in the verified-token cache)" 404 "$(bearer "$J3" att/r)"
check "grant del gus att/*" B grant del user:gus 'att/*'
check_eq "the same token right after the grant is gone: 401" 401 "$(bearer "$J3" att/r)"
check_contains "… insufficient_scope" 'error="insufficient_scope"' \
	"$(hdr -H "Authorization: Bearer $J3" "http://$R/v2/att/r/tags/list")"
check "grant gus pull again" B grant add user:gus pull 'att/*'
check_eq "the grant is back: the token works again (it never held more than the grants)" 404 "$(bearer "$J3" att/r)"

########################################################################
log "3. key rotation reaches verified (cached) tokens at once"
J4=$(token_for gus:gus-passwd-01 'repository:att/r:pull')
check_eq "a fresh token works (cached now)" 404 "$(bearer "$J4" att/r)"
check "rotate-key once" B token rotate-key
check_eq "after one rotation the previous key still verifies" 404 "$(bearer "$J4" att/r)"
check "rotate-key twice (J4's key is now off disk)" B token rotate-key
check_eq "immediately after its key is gone, the cached token is refused" 401 "$(bearer "$J4" att/r)"
check_eq "a token from the new key works" 404 "$(bearer "$(token_for gus:gus-passwd-01 'repository:att/r:pull')" att/r)"

########################################################################
log "4. control bytes in credentials are refused, not truncated"
check "user add bob" B user add bob --password-stdin <<<"bob-passwd-01"
check_eq "control: bob logs in" 200 "$(code -u bob:bob-passwd-01 "http://$R/v2/")"
check_eq "user name 'bob<NUL>x': 401" 401 \
	"$(code -H "Authorization: Basic $(basic 'bob\x00x:bob-passwd-01')" "http://$R/v2/")"
check_eq "user name 'bob<TAB>': 401" 401 "$(code -H "Authorization: Basic $(basic 'bob\t:bob-passwd-01')" "http://$R/v2/")"
check_eq "password with a NUL after the right one: 401" 401 \
	"$(code -H "Authorization: Basic $(basic 'bob:bob-passwd-01\x00')" "http://$R/v2/")"
check_eq "password with DEL: 401" 401 "$(code -H "Authorization: Basic $(basic 'bob:bob-passwd-01\x7f')" "http://$R/v2/")"
check_eq "non-ASCII (UTF-8) password bytes are allowed (control)" 200 \
	"$(B user add uma --password-stdin <<<"pässwörd-long" >/dev/null && code -u 'uma:pässwörd-long' "http://$R/v2/")"

########################################################################
log "5. log injection through a Basic user name"
# (a Basic user name ends at the first ':' and is at most 65 bytes before it is refused unlogged: a short forgery)
FAKE="2026-01-01T00 warn auth denied login of 'root' from 6.6.6.6"
check_eq "a user name with a newline and a fake log line: 401" 401 \
	"$(code -H "Authorization: Basic $(basic "m\\n$FAKE:x")" "http://$R/v2/")"
check_eq "a user name that closes the quote: 401" 401 \
	"$(code -H "Authorization: Basic $(basic "zed' from 6.6.6.7 (wrong password) '':x")" "http://$R/v2/")"
sleep 0.2
check_fail "no forged line starts the log" grep -q '^2026-01-01T00' "$DATA.log"
check_eq "the newline name is one escaped line" 1 \
	"$(grep -c "login of 'm\\\\x0a2026-01-01T00 warn auth denied login of \\\\x27root\\\\x27 from 6.6.6.6" "$DATA.log")"
check_eq "the quote is escaped, so the address field cannot be faked" 1 \
	"$(grep -c "login of 'zed\\\\x27 from 6.6.6.7 (wrong password) \\\\x27\\\\x27' from 127.0.0.1" "$DATA.log")"
code -A 'ua" 200 0 "-" "forged' "http://$R/v2/" >/dev/null
check_contains "the access log escapes a quote in the User-Agent (one escaper, log_escape)" 'ua\x22 200 0 \x22-\x22 \x22forged' \
	"$(cat "$DATA.log")"

########################################################################
log "6. token names, unknown names and users take the same login path"
check "token create ci-t" B token create --name ci-t --scope "repository:att/*:pull"
before=$(grep -c 'auth: password check on the worker pool' "$DATA.log" || true)
code -u ci-t:wrong-secret "http://$R/v2/" >/dev/null
code -u nobody-here:wrong "http://$R/v2/" >/dev/null
code -u bob:wrong "http://$R/v2/" >/dev/null
sleep 0.2
after=$(grep -c 'auth: password check on the worker pool' "$DATA.log" || true)
check_eq "three wrong logins (token name, unknown name, user): three argon2id checks on the pool" 3 $((after - before))
check_eq "ci-t with a wrong secret: 401" 401 "$(code -u ci-t:wrong-secret "http://$R/v2/")"

########################################################################
log "7. Content-Range overflow"
LOC=$(curl -s -o /dev/null -D - -X POST -u "admin:$ADMIN_PW" "http://$R/v2/att/cr/blobs/uploads/" | tr -d '\r' |
	awk 'tolower($1)=="location:"{print $2}')
check_eq "PATCH with Content-Range 0-18446744073709551615 and an empty body: 416" 416 \
	"$(code -X PATCH -u "admin:$ADMIN_PW" -H 'Content-Range: 0-18446744073709551615' \
		-H 'Content-Type: application/octet-stream' --data-binary '' "http://$R$LOC")"
check_eq "PATCH with Content-Range 0-0 and an empty body: 416" 416 \
	"$(code -X PATCH -u "admin:$ADMIN_PW" -H 'Content-Range: 0-0' \
		-H 'Content-Type: application/octet-stream' --data-binary '' "http://$R$LOC")"

########################################################################
log "8. the realm never echoes a bad Host"
OUT=$(raw 'GET /v2/ HTTP/1.1\r\nHost: ex\xe4mple.com\r\nConnection: close\r\n\r\n')
check_contains "non-ASCII Host: the realm falls back to the listen address" \
	"realm=\"http://$R/token\"" "$OUT"
OUT=$(raw 'GET /v2/ HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n')
check_contains "Host with a space: fallback" "realm=\"http://$R/token\"" "$OUT"
OUT=$(raw 'GET /v2/ HTTP/1.1\r\nHost: evil.com:80:80\r\nConnection: close\r\n\r\n')
check_contains "Host with two ports: fallback" "realm=\"http://$R/token\"" "$OUT"
OUT=$(raw 'GET /v2/ HTTP/1.0\r\n\r\n')
check_contains "HTTP/1.0 without Host: the listen address, not 'default'" "realm=\"http://$R/token\"" "$OUT"
OUT=$(raw 'GET /v2/ HTTP/1.1\r\nHost: registry.example.com:8443\r\nConnection: close\r\n\r\n')
check_contains "a valid host:port is used" 'realm="http://registry.example.com:8443/token"' "$OUT"
OUT=$(raw 'GET /v2/ HTTP/1.1\r\nHost: [::1]:5000\r\nConnection: close\r\n\r\n')
check_contains "an IPv6 literal is used" 'realm="http://[::1]:5000/token"' "$OUT"

########################################################################
log "9. the 'too many failures' line escapes the name too (last: it rate-limits this address)"
INJ=$(basic "m\\n$FAKE:x")
for _ in $(seq 1 10); do code -H "Authorization: Basic $INJ" "http://$R/v2/" >/dev/null; done
check_eq "the 11th try of the same forged name: 429" 429 "$(code -H "Authorization: Basic $INJ" "http://$R/v2/")"
sleep 0.2
check "… logged escaped, as too many failures" test 1 -le \
	"$(grep -c "login of 'm\\\\x0a2026-01-01T00 warn auth denied login of \\\\x27root\\\\x27 from 6.6.6.6' from 127.0.0.1 (too many failures)" "$DATA.log")"
check_fail "still no forged line starts the log" grep -q '^2026-01-01T00' "$DATA.log"

finish
