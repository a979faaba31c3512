#!/usr/bin/env bash
# Request smuggling (issue 15): a request carrying both Content-Length and Transfer-Encoding: chunked, or two
# different Content-Length values, must get 400 and a closed connection, so that bytes a proxy in front took for a
# body never run here as a second request.
#
# h2o 2.2.5 hides both headers from berth: lib/http1.c (v2.2.5) init_headers() keeps content-length and
# transfer-encoding (is_init_header_special in lib/core/token_table.h) out of req->headers, picks the entity
# reader itself (a Transfer-Encoding wins over Content-Length; the first Content-Length wins over later ones) and
# keeps the connection alive.  A handler cannot see that either header was there.  The fix belongs to berth's own
# strict HTTP/1.1 request layer (issue 13); this test is registered DISABLED until that layer serves every route.
#
#   tests/e2e/test_smuggling.sh         (BERTH_BIN defaults to build/berth)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
# shellcheck source=server.sh
. "$HERE/server.sh"

e2e_tmpdir T
berth_start "$T/data" --no-auth
on_exit berth_stop

# raw REQUEST_BYTES (printf escapes) -> every response byte until the server closes or 2 s of silence
raw() {
	/usr/bin/python3 - "$BERTH_PORT" "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
s.settimeout(2)
out = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            out += b"\n[closed]\n"
            break
        out += b
except socket.timeout:
    out += b"\n[still open]\n"
sys.stdout.write(out.decode("latin-1"))
PY
}
responses() { grep -c '^HTTP/1\.[01] ' <<<"$1" || true; }

SMUGGLED='GET /v2/_catalog HTTP/1.1\r\nHost: x\r\n\r\n'
OUT=$(raw "POST /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n$SMUGGLED")
check_contains "Content-Length with Transfer-Encoding: 400" "HTTP/1.1 400" "$OUT"
check_eq "… one response only (the smuggled request does not run)" 1 "$(responses "$OUT")"
check_contains "… and the connection is closed" "[closed]" "$OUT"

BODY='GET /v2/_catalog HTTP/1.1\r\nHost: x\r\n\r\n'
OUT=$(raw "POST /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 38\r\n\r\n$BODY")
check_contains "two different Content-Length values: 400" "HTTP/1.1 400" "$OUT"
check_eq "… one response only" 1 "$(responses "$OUT")"
check_contains "… and the connection is closed" "[closed]" "$OUT"

OUT=$(raw "POST /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
check_contains "control: two equal Content-Length values are one length (RFC 9112 6.3), not a 400" "HTTP/1.1 " "$OUT"

finish
