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
# Backends (issue 12): BERTH_E2E_BACKEND selects where the registry keeps its data:
#   sqlite (default)  metadata in DATADIR/berth.db, blobs under DATADIR/blobs (nothing to start)
#   pg-s3             metadata in PostgreSQL (scripts/pg), blobs in a bucket on Ceph RGW (scripts/ceph), both
#                     started by berth_backend_up in a temporary directory on free ports
#   berth_backend_up DIR           pg-s3: starts both servers under DIR, creates the bucket and exports
#                                  BERTH_METADATA, BERTH_STORAGE, BERTH_S3_ENDPOINT, AWS_ACCESS_KEY_ID,
#                                  AWS_SECRET_ACCESS_KEY (read by `berth serve` and by every management command),
#                                  E2E_BUCKET and E2E_S3 (the aws s3api command line); sqlite: nothing
#   berth_backend_down DIR         stops what berth_backend_up started
#   berth_pg_crash DIR             pg-s3: crashes PostgreSQL (immediate shutdown: no checkpoint, its WAL is replayed
#                                  at the next start) and starts it again on the same port
#   berth_is_pg                    true on the pg-s3 backend
#   berth_sql DATADIR QUERY        runs QUERY on the registry's metadata (sqlite3 or psql), unaligned '|' output
#   berth_blob_digests DATADIR     every committed blob in storage (file or object), one digest a line, sorted
#   berth_key DATADIR NAME         the content of secret NAME (keys/NAME, or its shared_keys row on PostgreSQL)
#
# Environment: BERTH_BIN (default: build/berth of this checkout), BERTH_E2E_BACKEND.

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

berth_is_pg() { [ "${BERTH_E2E_BACKEND:-sqlite}" = pg-s3 ]; }

berth_backend_up() {
	local dir=$1 root
	case ${BERTH_E2E_BACKEND:-sqlite} in
	sqlite) return 0 ;;
	pg-s3) ;;
	*)
		echo "BERTH_E2E_BACKEND=$BERTH_E2E_BACKEND: unknown (sqlite or pg-s3)" >&2
		return 2
		;;
	esac
	root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	mkdir -p "$dir/pg"
	BERTH_METADATA=$("$root/scripts/pg" start "$dir/pg") || return 1
	eval "$("$root/scripts/ceph" start "$dir/ceph")" || return 1
	export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_PAGER="" AWS_CONFIG_FILE=$dir/aws-config
	export AWS_SHARED_CREDENTIALS_FILE=$dir/aws-credentials
	: >"$AWS_CONFIG_FILE"
	: >"$AWS_SHARED_CREDENTIALS_FILE"
	E2E_BUCKET=berth-e2e
	E2E_S3="/usr/bin/aws --endpoint-url $S3_ENDPOINT --region us-east-1 s3api"
	$E2E_S3 create-bucket --bucket "$E2E_BUCKET" >/dev/null || return 1
	export BERTH_METADATA BERTH_STORAGE=s3://$E2E_BUCKET/reg BERTH_S3_ENDPOINT=$S3_ENDPOINT E2E_BUCKET E2E_S3
}

berth_backend_down() {
	local dir=$1 root
	berth_is_pg || return 0
	root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	"$root/scripts/pg" stop "$dir/pg" || true
	"$root/scripts/ceph" stop "$dir/ceph" || true
}

berth_pg_crash() {
	local dir=$1 root bin
	root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	bin=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d | sort -V | tail -n 1)
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$bin/pg_ctl" -D "$dir/pg/data" -m immediate -w stop >/dev/null
	else
		"$bin/pg_ctl" -D "$dir/pg/data" -m immediate -w stop >/dev/null
	fi
	"$root/scripts/pg" start "$dir/pg" "$(cat "$dir/pg/port")" >/dev/null
}

berth_sql() {
	if berth_is_pg; then
		psql -X -q -At -v ON_ERROR_STOP=1 "$BERTH_METADATA" -c "$2"
	else
		sqlite3 "$1/berth.db" "$2"
	fi
}

berth_blob_digests() {
	if berth_is_pg; then
		# shellcheck disable=SC2086
		$E2E_S3 list-objects-v2 --bucket "$E2E_BUCKET" --prefix reg/blobs/sha256/ --query 'Contents[].Key' \
			--output text | tr '\t' '\n' | sed -n 's|^reg/blobs/sha256/../\([0-9a-f]\{64\}\)$|sha256:\1|p' | sort
	else
		find "$1/blobs/sha256" -type f -printf '%f\n' | sed 's/^/sha256:/' | sort
	fi
}

berth_key() {
	if berth_is_pg; then
		berth_sql "$1" "SELECT convert_from(value, 'UTF8') FROM shared_keys WHERE name = '$2'"
	else
		cat "$1/keys/$2"
	fi
}
