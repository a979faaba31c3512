# shellcheck shell=bash
# Tiny assertion helpers for the real-client end-to-end tests.
#
#   check NAME CMD...            pass if CMD exits 0 (its output is shown on failure)
#   check_fail NAME CMD...       pass if CMD exits non-zero
#   check_eq NAME EXPECTED ACTUAL
#   check_contains NAME NEEDLE HAYSTACK   (fixed-string, like grep -F)
#   check_not_contains NAME NEEDLE HAYSTACK
#   finish                       prints "N passed, N failed"; exit 1 on any failure
#   need_registry                REGISTRY=host:port must be set and answer GET /v2/
#   e2e_tmpdir VAR               sets VAR to a fresh temp dir, removed at exit
#   on_exit CMD...               run CMD at exit (LIFO, before temp dirs are removed)
#   e2e_prefix                   prints a unique, lowercase repository-name prefix
#   log MSG                      progress line on stderr
#   known_gap NAME WHY           returns 0 (and prints "skip NAME") when E2E_REFERENCE=distribution,
#                                for checks that Berth must pass but Distribution 2.8 cannot:
#                                  known_gap "name" "why" || check "name" ...
#
# Environment: REGISTRY (required), E2E_PREFIX (repo name prefix, default e2e<pid>),
# E2E_KEEP=1 keeps temp dirs, E2E_VERBOSE=1 prints command output of passing checks,
# E2E_REFERENCE=distribution skips the known Distribution 2.8 gaps (see known_gap).

E2E_PASS=0
E2E_FAIL=0
E2E_FAILED_NAMES=()
E2E_TMPDIRS=()
E2E_EXIT_CMDS=()
E2E_T0=$(date +%s)

log() { printf '[%s +%ss] %s\n' "${0##*/}" "$(($(date +%s) - E2E_T0))" "$*" >&2; }

_e2e_pass() {
	E2E_PASS=$((E2E_PASS + 1))
	printf 'ok   %s\n' "$1"
}

_e2e_fail() {
	E2E_FAIL=$((E2E_FAIL + 1))
	E2E_FAILED_NAMES+=("$1")
	printf 'FAIL %s\n' "$1"
	shift
	[ $# -gt 0 ] && printf '%s\n' "$@" | sed 's/^/     /'
	return 0
}

check() {
	local name=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	if [ "$rc" -eq 0 ]; then
		_e2e_pass "$name"
		[ -n "${E2E_VERBOSE:-}" ] && [ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/     | /'
	else
		_e2e_fail "$name" "command: $*" "expected: exit status 0" "actual:   exit status $rc" \
			"output:" "$(printf '%s\n' "$out" | tail -n 25)"
	fi
	return 0
}

check_fail() {
	local name=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	if [ "$rc" -ne 0 ]; then
		_e2e_pass "$name"
		[ -n "${E2E_VERBOSE:-}" ] && [ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/     | /'
	else
		_e2e_fail "$name" "command: $*" "expected: non-zero exit status" "actual:   exit status 0" \
			"output:" "$(printf '%s\n' "$out" | tail -n 25)"
	fi
	return 0
}

check_eq() {
	local name=$1 exp=$2 act=$3
	if [ "$exp" = "$act" ]; then
		_e2e_pass "$name"
	else
		_e2e_fail "$name" "expected: $exp" "actual:   $act"
	fi
	return 0
}

check_contains() {
	local name=$1 needle=$2 hay=$3
	if grep -qF -- "$needle" <<<"$hay"; then
		_e2e_pass "$name"
	else
		_e2e_fail "$name" "expected to contain: $needle" "actual:" "$(printf '%s\n' "$hay" | tail -n 25)"
	fi
	return 0
}

check_not_contains() {
	local name=$1 needle=$2 hay=$3
	if grep -qF -- "$needle" <<<"$hay"; then
		_e2e_fail "$name" "expected NOT to contain: $needle" "actual:" "$(printf '%s\n' "$hay" | tail -n 25)"
	else
		_e2e_pass "$name"
	fi
	return 0
}

known_gap() {
	if [ "${E2E_REFERENCE:-}" = distribution ]; then
		printf 'skip %s (known Distribution 2.8 gap: %s)\n' "$1" "$2"
		return 0
	fi
	return 1
}

finish() {
	local i
	E2E_FINISHED=1
	for i in "${E2E_FAILED_NAMES[@]}"; do printf 'failed: %s\n' "$i"; done
	printf '%d passed, %d failed\n' "$E2E_PASS" "$E2E_FAIL"
	[ "$E2E_FAIL" -eq 0 ] && [ "$E2E_PASS" -gt 0 ] && exit 0
	exit 1
}

need_registry() {
	local code
	if [ -z "${REGISTRY:-}" ]; then
		echo "REGISTRY is not set (want host:port of a plain-HTTP registry)" >&2
		E2E_FINISHED=1
		exit 2
	fi
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$REGISTRY/v2/" || true)
	case $code in
	200 | 401) ;;
	*)
		echo "registry http://$REGISTRY/v2/ does not answer (HTTP status '$code')" >&2
		E2E_FINISHED=1
		exit 2
		;;
	esac
}

e2e_prefix() {
	local p=${E2E_PREFIX:-e2e$$}
	printf '%s\n' "$p" | tr '[:upper:]' '[:lower:]'
}

_e2e_cleanup() {
	local rc=$? i
	if [ -z "${E2E_FINISHED:-}" ]; then
		# the script died before finish (set -e, signal): count it as a failure
		E2E_FINISHED=1
		echo "ABORTED (exit status $rc) before finish${E2E_LAST_ERR:+: $E2E_LAST_ERR}"
		E2E_FAIL=$((E2E_FAIL + 1))
		printf '%d passed, %d failed\n' "$E2E_PASS" "$E2E_FAIL"
		[ "$rc" -ne 0 ] || rc=1
	fi
	for ((i = ${#E2E_EXIT_CMDS[@]} - 1; i >= 0; i--)); do
		eval "${E2E_EXIT_CMDS[i]}" || true
	done
	if [ -z "${E2E_KEEP:-}" ]; then
		for i in "${E2E_TMPDIRS[@]}"; do rm -rf "$i"; done
	else
		for i in "${E2E_TMPDIRS[@]}"; do echo "kept $i" >&2; done
	fi
	exit "$rc"
}
trap _e2e_cleanup EXIT
# errtrace: also record failures inside functions (the helpers in the scripts)
set -o errtrace
trap 'E2E_LAST_ERR="line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT TERM

on_exit() {
	local q
	q=$(printf '%q ' "$@")
	E2E_EXIT_CMDS+=("$q")
}

e2e_tmpdir() {
	# usage: e2e_tmpdir VAR  (not in $(...): the cleanup list lives in this shell)
	# short base: dockerd's socket path must stay below 108 bytes
	local _d
	_d=$(mktemp -d "${E2E_TMP:-/tmp}/clients-e2e.XXXXXX") || exit 2
	E2E_TMPDIRS+=("$_d")
	printf -v "$1" '%s' "$_d"
}
