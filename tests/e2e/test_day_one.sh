#!/usr/bin/env bash
# What a new user meets on day one (issue 7), against the real server: `berth -h`, the access log on the inherited
# standard error (whole lines with `2>file`, on by default, `off` turns it off, values escaped), `--listen` with a
# host name, and the warning for plain HTTP beyond loopback.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/server.sh"

e2e_tmpdir T
PID=

# start ERRFILE ARGS...: `berth serve ARGS` with stderr truncating ERRFILE (2>file, not 2>>file); waits for PORT
start() {
	local err=$1 i code
	shift
	"$BERTH_BIN" serve "$@" >/dev/null 2>"$err" &
	PID=$!
	for i in $(seq 1 100); do
		code=$(curl -sk -o /dev/null -w '%{http_code}' "$URL/v2/" || true)
		case $code in 200 | 401) return 0 ;; esac
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "berth did not start; its stderr:" >&2
	cat "$err" >&2
	return 1
}
stop() {
	[ -n "$PID" ] || return 0
	kill -TERM "$PID" 2>/dev/null || true
	wait "$PID" 2>/dev/null || true
	PID=
}
on_exit stop

log "1. -h is help"
check_eq "berth -h prints the same help as --help" "$("$BERTH_BIN" --help)" "$("$BERTH_BIN" -h 2>&1)"
check "berth -h exits 0" "$BERTH_BIN" -h
check_contains "berth serve -h is serve's help" "usage: berth serve" "$("$BERTH_BIN" serve -h 2>&1)"

log "2. the access log: default on, on the inherited stderr, whole lines"
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
start "$T/err" --data "$T/d1" --listen "127.0.0.1:$PORT"
N=40
for i in $(seq 1 $N); do
	if [ $((i % 2)) = 0 ]; then # a failed login also writes a log line: log and access lines interleave
		curl -s -o /dev/null -u "nobody$i:not-the-password" "$URL/v2/?i=$i" || true
	else
		curl -s -o /dev/null "$URL/v2/?i=$i" || true
	fi
done
curl -s -o /dev/null -A 'evil" agent' "$URL/v2/?quote" || true
stop
ERR=$(cat "$T/err")
check_contains "the start-up line is intact" "listening on 127.0.0.1:$PORT" "$ERR"
missing=0
for i in $(seq 1 $N); do
	n=$(grep -cE "^127\.0\.0\.1 - - \[[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9:]{8} \+0000\] \"GET /v2/\?i=$i HTTP/1\.1\" (401|429) [0-9]+ \"-\" \"curl/[^\"]*\"$" "$T/err" || true)
	[ "$n" = 1 ] || missing=$((missing + 1))
done
check_eq "one whole combined-format line for each of the $N requests" 0 "$missing"
check "the failed logins' log lines are there too" grep -q "nobody$N" "$T/err"
# every line is a log line or an access line, except the first start's admin password and docker login lines
extra=$(grep -v -e 'docker login' -e 'password' -e '^ *$' "$T/err" |
	grep -cvE '^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z (error|warn|info|debug): |[0-9a-f.:]+ - - \[)' || true)
check_eq "no torn or overwritten line" 0 "$extra"
check_contains "a quote in a header is escaped" '"GET /v2/?quote HTTP/1.1" 401' "$ERR"
check_contains "... as \\x22" '"evil\x22 agent"' "$ERR"

start "$T/err2" --data "$T/d1" --listen "127.0.0.1:$PORT" --access-log off
curl -s -o /dev/null "$URL/v2/?off" || true
stop
check_not_contains "--access-log off logs no requests" "GET /v2/?off" "$(cat "$T/err2")"

start "$T/err3" --data "$T/d1" --listen "127.0.0.1:$PORT" --access-log "$T/access.log"
curl -s -o /dev/null "$URL/v2/?file" || true
stop
check_contains "--access-log FILE appends to FILE" '"GET /v2/?file HTTP/1.1" 401' "$(cat "$T/access.log")"
check_not_contains "... and not to stderr" "GET /v2/?file" "$(cat "$T/err3")"

# a 413 that h2o answers itself (body over max_blob_size, refused before berth sees the request) is logged too
printf 'max_blob_size = 1K\n' >"$T/small.conf"
start "$T/err7" --data "$T/d1" --listen "127.0.0.1:$PORT" --config "$T/small.conf" --no-auth
got=$(/usr/bin/python3 - "$PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"POST /v2/big/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\nConnection: close\r\n\r\n")
try:
    s.sendall(b"\0" * 4096)
except OSError:
    pass
print(s.recv(100).split(b"\r\n")[0].decode())
PY
)
stop
check_eq "a body over max_blob_size gets h2o's 413" "HTTP/1.1 413 Request Entity Too Large" "$got"
check_contains "... and the 413 is in the access log" '"POST /v2/big/blobs/uploads/ HTTP/1.1" 413' "$(cat "$T/err7")"

log "3. --listen resolves host names; plain HTTP beyond loopback is warned about"
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
start "$T/err4" --data "$T/d1" --listen "localhost:$PORT" --no-auth
check_eq "--listen localhost:PORT serves" 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://localhost:$PORT/v2/")"
stop
check_not_contains "no clear-text warning on loopback" "travel in clear" "$(cat "$T/err4")"
check_fail "an unknown host name is refused" "$BERTH_BIN" serve --data "$T/d1" --listen "no-such-host.invalid:$PORT"
check_contains "... saying it cannot resolve it" "cannot resolve the listen host 'no-such-host.invalid'" \
	"$("$BERTH_BIN" serve --data "$T/d1" --listen "no-such-host.invalid:$PORT" 2>&1 || true)"

PORT=$(free_port)
URL=http://127.0.0.1:$PORT
start "$T/err5" --data "$T/d1" --listen "0.0.0.0:$PORT" --no-auth
stop
check_contains "plain HTTP on 0.0.0.0 warns that credentials travel in clear" \
	"warn: listening on 0.0.0.0:$PORT over plain HTTP beyond loopback: passwords and tokens travel in clear" \
	"$(cat "$T/err5")"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" \
	-subj /CN=localhost -days 1 2>/dev/null
PORT=$(free_port)
URL=https://127.0.0.1:$PORT
start "$T/err6" --data "$T/d1" --listen "0.0.0.0:$PORT" --no-auth --tls-cert "$T/cert.pem" --tls-key "$T/key.pem"
stop
check_contains "TLS on 0.0.0.0 starts" "listening on 0.0.0.0:$PORT" "$(cat "$T/err6")"
check_not_contains "... without the clear-text warning" "travel in clear" "$(cat "$T/err6")"
finish
