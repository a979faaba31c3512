#!/usr/bin/env bash
# Running berth as a service (issue 11): `cmake --install` puts a systemd unit next to the binary (checked by
# systemd-analyze verify); every option comes from BERTH_* environment variables with the precedence
# defaults < config file < environment < flags; SIGHUP reloads the TLS certificate (new connections see the new
# one; a broken file keeps the old) and reloadable options (min_free_space, seen through /readyz).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/server.sh"

e2e_tmpdir T
BUILD=$(dirname "$BERTH_BIN")
code() { curl -sk -o /dev/null -w '%{http_code}' "$@"; }

log "1. cmake --install: binary, example config, systemd unit"
check "cmake --install to a prefix" cmake --install "$BUILD" --prefix "$T/inst"
UNIT=$T/inst/lib/systemd/system/berth.service
check "the unit is installed" test -f "$UNIT"
check_eq "ExecStart runs the installed binary" "ExecStart=$T/inst/bin/berth serve" "$(grep '^ExecStart=' "$UNIT")"
check "which exists" test -x "$T/inst/bin/berth"
for opt in DynamicUser=yes StateDirectory=berth ProtectSystem=strict NoNewPrivileges=yes ProtectHome=yes \
	PrivateTmp=yes 'ExecReload=/bin/kill -HUP $MAINPID' Environment=BERTH_DATA=/var/lib/berth; do
	check_contains "unit has $opt" "$opt" "$(cat "$UNIT")"
done
if command -v systemd-analyze >/dev/null; then
	check "systemd-analyze verify accepts the unit" systemd-analyze verify "$UNIT"
fi

log "2. options from the environment, and their precedence"
# start_env ERRFILE URL ARGS... (environment from the caller): waits for URL/v2/
PID=
start_env() {
	local err=$1 url=$2 i c
	shift 2
	"$BERTH_BIN" serve "$@" >/dev/null 2>"$err" &
	PID=$!
	for i in $(seq 1 100); do
		c=$(code "$url/v2/" || true)
		case $c in 200 | 401) return 0 ;; esac
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.1
	done
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
P1=$(free_port)
P2=$(free_port)
P3=$(free_port)
check "BERTH_LISTEN and BERTH_DATA alone" env BERTH_LISTEN="127.0.0.1:$P1" BERTH_DATA="$T/env1" BERTH_AUTH=off \
	bash -c "$(declare -f start_env code); start_env '$T/e1' http://127.0.0.1:$P1 && kill \$PID"
check "the data directory came from BERTH_DATA" test -f "$T/env1/berth.db"
printf 'listen = 127.0.0.1:%s\ndata = %s\nauth = off\n' "$P1" "$T/env2" >"$T/c.conf"
BERTH_LISTEN=127.0.0.1:$P2 start_env "$T/e2" "http://127.0.0.1:$P2" --config "$T/c.conf"
check_eq "the environment overrides the config file" 200 "$(code "http://127.0.0.1:$P2/v2/")"
check_fail "(the file's port is not used)" curl -sf "http://127.0.0.1:$P1/v2/"
check "the file's other settings still apply" test -f "$T/env2/berth.db"
stop
BERTH_LISTEN=127.0.0.1:$P2 start_env "$T/e3" "http://127.0.0.1:$P3" --config "$T/c.conf" --listen "127.0.0.1:$P3"
check_eq "a flag overrides the environment" 200 "$(code "http://127.0.0.1:$P3/v2/")"
stop
BERTH_CONFIG=$T/c.conf BERTH_ACCESS_LOG_FORMAT=json start_env "$T/e4" "http://127.0.0.1:$P1"
check_eq "BERTH_CONFIG names the config file" 200 "$(code "http://127.0.0.1:$P1/v2/?x")"
stop
check "BERTH_ACCESS_LOG_FORMAT=json gives JSON access lines" bash -c "grep '^{' '$T/e4' | jq -e 'select(.path==\"/v2/?x\")'"
OUT=$(BERTH_THREADS=many "$BERTH_BIN" serve --data "$T/env3" 2>&1) && RC=0 || RC=$?
check_eq "an invalid variable: exit 2" 2 "$RC"
check_contains "naming the variable" "environment BERTH_THREADS" "$OUT"

log "3. SIGHUP reloads the TLS certificate and reloadable options"
cert() { # NAME: self-signed certificate NAME.crt / NAME.key for 127.0.0.1 with CN=NAME
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=$1" \
		-addext "subjectAltName=IP:127.0.0.1" -keyout "$T/$1.key" -out "$T/$1.crt" 2>/dev/null
}
subject() { # the CN a new TLS connection sees
	openssl s_client -connect "127.0.0.1:$P3" -servername 127.0.0.1 </dev/null 2>/dev/null |
		openssl x509 -noout -subject 2>/dev/null | sed 's/.*CN *= *//'
}
cert berth-a
cert berth-b
cp "$T/berth-a.crt" "$T/live.crt"
cp "$T/berth-a.key" "$T/live.key"
printf 'min_free_space = 1000T\n' >"$T/r.conf"
start_env "$T/e5" "https://127.0.0.1:$P3" --data "$T/tls" --listen "127.0.0.1:$P3" --config "$T/r.conf" \
	--tls-cert "$T/live.crt" --tls-key "$T/live.key" --no-auth
check_eq "the first certificate is served" berth-a "$(subject)"
check_eq "/readyz fails with min_free_space = 1000T" 503 "$(code "https://127.0.0.1:$P3/readyz")"
cp "$T/berth-b.crt" "$T/live.crt"
cp "$T/berth-b.key" "$T/live.key"
printf 'min_free_space = 1K\n' >"$T/r.conf"
kill -HUP "$PID"
for i in $(seq 1 50); do grep -q 'reload: done' "$T/e5" && break || sleep 0.1; done
check_contains "the reload is logged" "reload: TLS certificate $T/live.crt loaded" "$(cat "$T/e5")"
check_eq "new connections get the new certificate" berth-b "$(subject)"
check_eq "HTTPS requests work after the reload" 200 "$(code --cacert "$T/berth-b.crt" "https://127.0.0.1:$P3/v2/")"
check_eq "/readyz follows the reloaded min_free_space" 200 "$(code "https://127.0.0.1:$P3/readyz")"
echo "not a certificate" >"$T/live.crt"
kill -HUP "$PID"
for i in $(seq 1 50); do [ "$(grep -c 'reload: done' "$T/e5")" -ge 2 ] && break || sleep 0.1; done
check_contains "a broken certificate is reported" "keeping the TLS certificate loaded before" "$(cat "$T/e5")"
check_eq "and the previous one is still served" berth-b "$(subject)"
check "berth is still running" kill -0 "$PID"
printf 'threads = x\n' >"$T/r.conf"
kill -HUP "$PID"
for i in $(seq 1 50); do grep -q 'nothing changed' "$T/e5" && break || sleep 0.1; done
check_contains "an invalid config on reload changes nothing" "nothing changed" "$(cat "$T/e5")"
check_eq "still serving" 200 "$(code "https://127.0.0.1:$P3/healthz")"
stop
finish
