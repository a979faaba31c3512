# shellcheck shell=bash
# Run a private Docker daemon (Debian's docker.io, 20.10) for the end-to-end tests.
#
#   dockerd_start DIR
#       Starts /usr/sbin/dockerd with all state under DIR (data/, exec/, docker.pid,
#       docker.sock, dockerd.log; its own containerd lives under exec/), no iptables,
#       no bridge, vfs storage. Waits for GET /_ping on the socket (DOCKERD_WAIT
#       seconds, default 60). Exports DOCKER_HOST=unix://DIR/docker.sock,
#       DOCKER_CONFIG=DIR/client (private client config, so logins never touch
#       ~/.docker) and DOCKER (the CLI to use, see below).
#   dockerd_stop DIR
#       SIGTERM to the daemon's pid (from DIR/docker.pid), waits for it to exit
#       (up to 30 s, then SIGKILL). Idempotent.
#   dockerd_add_ca DIR HOSTPORT CAFILE
#       Installs CAFILE as /etc/docker/certs.d/HOSTPORT/ca.crt (the daemon reads this
#       directory per request; no restart needed). Records it in DIR/certs.d.list so
#       dockerd_stop removes it again.
#
# CLI: $DOCKER defaults to /usr/bin/docker, Debian's 20.10 CLI matching the daemon.
# /usr/local/bin/docker (28.x) also works against this daemon (API negotiation), but
# e.g. its `docker manifest inspect` asks for OCI media types and the 20.10 one does
# not; set DOCKER=/usr/local/bin/docker to test with it instead.
#
# 127.0.0.0/8 is an insecure registry by default, so plain-HTTP registries on
# 127.0.0.1:PORT need no daemon flag. For other hosts set DOCKERD_EXTRA_ARGS, e.g.
# "--insecure-registry myhost:5000".

DOCKERD_BIN=${DOCKERD_BIN:-/usr/sbin/dockerd}

dockerd_start() {
	local dir=${1:?usage: dockerd_start DIR} i
	mkdir -p "$dir/data" "$dir/exec" "$dir/client" || return 1
	dir=$(cd "$dir" && pwd)
	# unix socket paths are limited to 108 bytes
	if [ ${#dir} -gt 80 ]; then
		echo "dockerd_start: $dir is too long for unix sockets" >&2
		return 1
	fi
	# shellcheck disable=SC2086
	setsid "$DOCKERD_BIN" --iptables=false --ip6tables=false --bridge=none \
		--storage-driver=vfs --data-root "$dir/data" --exec-root "$dir/exec" \
		--pidfile "$dir/docker.pid" -H "unix://$dir/docker.sock" \
		${DOCKERD_EXTRA_ARGS:-} >"$dir/dockerd.log" 2>&1 </dev/null &
	DOCKERD_PID=$!  # kept in the shell too, in case DIR is tampered with
	echo "$DOCKERD_PID" >"$dir/dockerd.launcher.pid"
	for ((i = 0; i < ${DOCKERD_WAIT:-60} * 10; i++)); do
		if [ -S "$dir/docker.sock" ] &&
			[ "$(curl -s --max-time 2 --unix-socket "$dir/docker.sock" http://d/_ping 2>/dev/null)" = OK ]; then
			export DOCKER_HOST="unix://$dir/docker.sock"
			export DOCKER_CONFIG="$dir/client"
			export DOCKER=${DOCKER:-/usr/bin/docker}
			[ -f "$DOCKER_CONFIG/config.json" ] || echo '{}' >"$DOCKER_CONFIG/config.json"
			return 0
		fi
		if ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
			echo "dockerd_start: dockerd exited; log follows" >&2
			tail -n 30 "$dir/dockerd.log" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "dockerd_start: no _ping answer on $dir/docker.sock; log follows" >&2
	tail -n 30 "$dir/dockerd.log" >&2
	dockerd_stop "$dir"
	return 1
}

dockerd_stop() {
	local dir=${1:?usage: dockerd_stop DIR} pid="" i d
	if [ -s "$dir/docker.pid" ]; then
		pid=$(cat "$dir/docker.pid")
	elif [ -s "$dir/dockerd.launcher.pid" ]; then
		pid=$(cat "$dir/dockerd.launcher.pid")
	else
		pid=${DOCKERD_PID:-}
	fi
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 300; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "dockerd_stop: $pid ignored SIGTERM, killing" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$dir/docker.pid" "$dir/dockerd.launcher.pid"
	# dockerd bind-mounts its data root onto itself; a clean shutdown undoes that,
	# a killed daemon does not
	if mountpoint -q "$dir/data" 2>/dev/null; then
		umount "$dir/data" 2>/dev/null || umount -l "$dir/data" 2>/dev/null || true
	fi
	[ "$pid" = "${DOCKERD_PID:-}" ] && DOCKERD_PID=
	if [ -f "$dir/certs.d.list" ]; then
		while read -r d; do
			[ -n "$d" ] && rm -rf "/etc/docker/certs.d/$d"
		done <"$dir/certs.d.list"
		rm -f "$dir/certs.d.list"
	fi
	return 0
}

dockerd_add_ca() {
	local dir=${1:?usage: dockerd_add_ca DIR HOSTPORT CAFILE} hp=${2:?HOSTPORT} ca=${3:?CAFILE}
	mkdir -p "/etc/docker/certs.d/$hp" || return 1
	cp "$ca" "/etc/docker/certs.d/$hp/ca.crt" || return 1
	echo "$hp" >>"$dir/certs.d.list"
}
