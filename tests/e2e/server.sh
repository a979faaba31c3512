# shellcheck shell=bash
# Start and stop a real `berth serve` for end-to-end tests.
#
#   berth_start DATADIR [ARGS...]  starts berth on a free loopback port (extra ARGS go to `berth serve`),
#                                  waits until it answers, sets BERTH_PID, BERTH_PORT, REGISTRY=127.0.0.1:PORT,
#                                  and logs to DATADIR.log
#   berth_stop                     SIGTERM and wait (fails the caller if berth does not exit in 30 s)
#   berth_kill                     SIGKILL (crash simulation)
#   free_port                      prints a free loopback TCP port
#
# Environment: BERTH_BIN (default: build/berth of this checkout).

BERTH_BIN=${BERTH_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/berth}

free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

berth_start() {
	local data=$1 i code scheme=http
	shift
	BERTH_PORT=$(free_port)
	case " $* " in *" --tls-cert "*) scheme=https ;; esac
	"$BERTH_BIN" serve --data "$data" --listen "127.0.0.1:$BERTH_PORT" "$@" >>"$data.log" 2>&1 &
	BERTH_PID=$!
	REGISTRY=127.0.0.1:$BERTH_PORT
	export REGISTRY BERTH_PID BERTH_PORT
	for i in $(seq 1 100); do
		code=$(curl -sk -o /dev/null -w '%{http_code}' "$scheme://$REGISTRY/v2/" || true)
		case $code in 200 | 401) return 0 ;; esac
		if ! kill -0 "$BERTH_PID" 2>/dev/null; then
			echo "berth exited during start; log:" >&2
			tail -n 20 "$data.log" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "berth did not answer on $REGISTRY" >&2
	return 1
}

berth_stop() {
	local i
	[ -n "${BERTH_PID:-}" ] || return 0
	kill -TERM "$BERTH_PID" 2>/dev/null || true
	for i in $(seq 1 300); do
		kill -0 "$BERTH_PID" 2>/dev/null || {
			wait "$BERTH_PID" 2>/dev/null || true
			BERTH_PID=
			return 0
		}
		sleep 0.1
	done
	echo "berth did not stop within 30 s of SIGTERM" >&2
	kill -KILL "$BERTH_PID" 2>/dev/null || true
	BERTH_PID=
	return 1
}

berth_kill() {
	[ -n "${BERTH_PID:-}" ] || return 0
	kill -KILL "$BERTH_PID" 2>/dev/null || true
	wait "$BERTH_PID" 2>/dev/null || true
	BERTH_PID=
}
