#!/usr/bin/env bash
# Runs a real-client test script against a fresh `berth serve --no-auth` on a free port:
#   with_berth.sh TEST_SCRIPT [ARGS...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/server.sh"
data=$(mktemp -d /tmp/berth-e2e.XXXXXX)
cleanup() {
	berth_stop || true
	rm -rf "$data" "$data/data.log"
	rm -f "$data/data.log"
}
trap cleanup EXIT
berth_start "$data/data" --no-auth
rc=0
"$@" || rc=$?
if [ $rc -ne 0 ]; then
	echo "--- berth log (tail) ---"
	tail -n 40 "$data/data.log"
fi
exit $rc
