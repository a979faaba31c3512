#!/usr/bin/env bash
# Runs a real-client test script against a fresh `berth serve --no-auth` on a free port:
#   with_berth.sh TEST_SCRIPT [ARGS...]
# exports REGISTRY=127.0.0.1:PORT. With BERTH_E2E_BACKEND=pg-s3 (server.sh) the registry is two nodes sharing one
# PostgreSQL database and one bucket on Ceph RGW: REGISTRY is node A, REGISTRY_B node B (scripts push through
# REGISTRY and pull through REGISTRY_B when it is set).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/server.sh"
data=$(mktemp -d /tmp/berth-e2e.XXXXXX)
B_PID=
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
	berth_stop || true
	if [ -n "$B_PID" ]; then
		BERTH_PID=$B_PID
		berth_stop || true
	fi
	berth_backend_down "$data/backend"
	rm -rf "$data"
}
trap cleanup EXIT
berth_backend_up "$data/backend"
if berth_is_pg; then
	mkdir -p "$data/b"
	berth_start "$data/b" --no-auth
	B_PID=$BERTH_PID
	REGISTRY_B=$REGISTRY
	export REGISTRY_B
fi
berth_start "$data/data" --no-auth
rc=0
"$@" || rc=$?
if [ $rc -ne 0 ]; then
	echo "--- berth log (tail) ---"
	tail -n 40 "$data/data.log"
	if [ -n "$B_PID" ]; then
		echo "--- node B's log (tail) ---"
		tail -n 40 "$data/b.log"
	fi
fi
exit $rc
