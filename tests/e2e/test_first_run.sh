#!/usr/bin/env bash
# The README's first command, as a new user runs it: `scripts/run` in a fresh copy of this tree (the files a
# clone has: tracked and untracked-but-not-ignored, so no build/ and no data/).  It must build (Release, no
# -Werror), serve the OCI API on 127.0.0.1:5000 with auth on (401 + Bearer challenge + OCI JSON body on /v2/),
# print the first admin's password once, and exit 0 on SIGTERM.
#
# Needs 127.0.0.1:5000 (the README's address): fails at once, saying so, if something listens there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

START_WAIT_S=1800 # the first run builds berth from scratch on a possibly busy machine: only a bound on a hang
STOP_WAIT_S=30    # the README's promise: in-flight requests get up to 30 s

if ss -Hltn 'sport = :5000' | grep -q .; then
	echo "FAIL port 5000 is in use; the README's scripts/run needs 127.0.0.1:5000. Listening there:" >&2
	ss -ltnp 'sport = :5000' >&2
	E2E_FINISHED=1
	exit 1
fi

e2e_tmpdir T
copy=$T/berth
mkdir -p "$copy"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git -C "$root" ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
		[ -e "$root/$f" ] && printf '%s\0' "$f"
	done | tar -C "$root" --null -T - -cf - | tar -C "$copy" -xf -
else
	tar -C "$root" --exclude=./build --exclude=./data -cf - . | tar -C "$copy" -xf -
fi
check "the copy has no build or data directory" test ! -e "$copy/build" -a ! -e "$copy/data"

# the README's first two lines of code: the run command and the test command (which .ci/run must call)
readme_cmd() { sed -n '/^```sh$/,/^```$/p' "$copy/README.md" | sed -n "$1p" | sed 's/#.*//; s/[[:space:]]*$//'; }
RUN_CMD=$(readme_cmd 2)
check_eq "the README's first command is scripts/run" scripts/run "$RUN_CMD"
check_eq "the README's second command is scripts/test" scripts/test "$(readme_cmd 3)"
check "CI (.ci/run) calls the README's test command" grep -qx 'exec scripts/test' "$copy/.ci/run"

log "$RUN_CMD in $copy (builds Release first)"
(cd "$copy" && exec bash -c "$RUN_CMD") >"$T/run.log" 2>&1 &
pid=$!
stop_run() { kill -KILL "$pid" 2>/dev/null || true; }
on_exit stop_run

code=
for _ in $(seq 1 $((START_WAIT_S * 2))); do
	code=$(curl -s -o "$T/body" -D "$T/hdrs" -w '%{http_code}' http://127.0.0.1:5000/v2/ || true)
	[ "$code" = 401 ] || [ "$code" = 200 ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.5
done
if [ "$code" != 401 ] && [ "$code" != 200 ]; then
	echo "scripts/run did not serve /v2/ on 127.0.0.1:5000 (last status '$code'); its output:"
	tail -n 40 "$T/run.log"
fi
check_eq "GET /v2/ with auth on by default" 401 "$code"
hdrs=$(tr -d '\r' <"$T/hdrs")
check_contains "a Bearer challenge" 'www-authenticate: bearer realm="http://127.0.0.1:5000/token",service="berth"' \
	"${hdrs,,}"
check_contains "an OCI JSON error body" 'application/json' "${hdrs,,}"
check_eq "error code UNAUTHORIZED" UNAUTHORIZED "$(jq -r '.errors[0].code' "$T/body" 2>&1)"
check_contains "the first admin's password is printed once" "docker login" "$(cat "$T/run.log")"
check "the data directory is ./data of the copy" test -f "$copy/data/berth.db"
check "the build is build/release" test -x "$copy/build/release/berth"

kill -TERM "$pid"
rc=
for _ in $(seq 1 $((STOP_WAIT_S * 10))); do
	if ! kill -0 "$pid" 2>/dev/null; then
		rc=0
		wait "$pid" || rc=$?
		break
	fi
	sleep 0.1
done
check_eq "scripts/run exits 0 within ${STOP_WAIT_S}s of SIGTERM" 0 "${rc:-still running}"
[ "${rc:-x}" = 0 ] || tail -n 20 "$T/run.log"
finish
