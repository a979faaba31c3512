#!/usr/bin/env bash
# Events and webhooks with a real receiver (tests/e2e/webhook_receiver.py, Python's http.server): every push,
# pull, delete and tag move reaches the receiver with a valid HMAC-SHA256 signature, and none is lost when the
# receiver is stopped mid-stream and restarted, when berth is stopped (SIGTERM) or killed (-9) with undelivered
# events and started again.  Delivery is at-least-once: duplicates are allowed (counted, by event id), losses not.
# Also: a filtered webhook (events=, repository=) gets only what it asked for; `berth events tail` prints them;
# an https:// webhook delivers to a receiver whose certificate verifies (a test CA given by SSL_CERT_FILE) and
# refuses one whose certificate does not match the host name.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/server.sh"

e2e_tmpdir T
D=$T/data
mkdir -p "$D"
PW=alice-password-0123
SECRET='s3cret-for-hmac'
OCI_M=application/vnd.oci.image.manifest.v1+json
P1=$(free_port)
P2=$(free_port)
R1PID=
R2PID=

recv_start() { # PORT OUT [ARGS...] -> echoes the pid
	local port=$1 out=$2
	shift 2
	/usr/bin/python3 "$here/webhook_receiver.py" --port "$port" --out "$out" "$@" >>"$T/recv.log" 2>&1 &
	echo $!
}
recv_wait_up() { # PORT
	local i
	for i in $(seq 1 100); do
		curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
		sleep 0.1
	done
	return 1
}
stop_pid() { [ -n "$1" ] && kill "$1" 2>/dev/null && wait "$1" 2>/dev/null || true; }
on_exit berth_kill
on_exit bash -c 'kill $(cat '"$T"'/pids 2>/dev/null) 2>/dev/null || true'

R1PID=$(recv_start "$P1" "$T/r1.jsonl" --secret "$SECRET")
R2PID=$(recv_start "$P2" "$T/r2.jsonl")
echo "$R1PID $R2PID" >"$T/pids"
recv_wait_up "$P1"
recv_wait_up "$P2"
cat >"$T/berth.conf" <<CONF
webhook = http://127.0.0.1:$P1/hook secret=$SECRET
webhook = http://127.0.0.1:$P2/only-deletes events=delete,tag repository=keep/*
CONF
"$BERTH_BIN" user add alice --admin --password-stdin --data "$D" <<<"$PW" >/dev/null
berth_start "$D" --config "$T/berth.conf"
R=http://$REGISTRY
C=(curl -sf -u "alice:$PW")

sha() { echo "sha256:$(sha256sum "$1" | cut -c1-64)"; }
# push REPO TAG SEED: a one-layer OCI image (unique by SEED) under REPO:TAG; prints the manifest digest
push() {
	local repo=$1 tag=$2 seed=$3 dl dc
	printf 'layer %s' "$seed" >"$T/l.$seed"
	printf '{"architecture":"amd64","os":"linux","seed":"%s"}' "$seed" >"$T/c.$seed"
	dl=$(sha "$T/l.$seed")
	dc=$(sha "$T/c.$seed")
	"${C[@]}" -X POST --data-binary @"$T/l.$seed" "$R/v2/$repo/blobs/uploads/?digest=$dl" >/dev/null
	"${C[@]}" -X POST --data-binary @"$T/c.$seed" "$R/v2/$repo/blobs/uploads/?digest=$dc" >/dev/null
	printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
		"$OCI_M" "$dc" "$(stat -c %s "$T/c.$seed")" "$dl" "$(stat -c %s "$T/l.$seed")" >"$T/m.$seed"
	"${C[@]}" -X PUT -H "Content-Type: $OCI_M" --data-binary @"$T/m.$seed" "$R/v2/$repo/manifests/$tag" >/dev/null
	sha "$T/m.$seed"
}
pull() { "${C[@]}" -o /dev/null -H "Accept: $OCI_M" "$R/v2/$1/manifests/$2"; }
# every event id berth recorded, sorted
berth_ids() { "$BERTH_BIN" events tail --json -n 100000 --data "$D" | jq -r .id | sort; }
recv_ids() { [ -f "$1" ] && jq -r .id "$1" | sort -u || true; }
# wait_delivered FILE: until the receiver has every event berth recorded (up to 120 s)
wait_delivered() {
	local i
	for i in $(seq 1 240); do
		[ -z "$(comm -23 <(berth_ids) <(recv_ids "$1"))" ] && return 0
		sleep 0.5
	done
	return 1
}

# wait_pulls N: until berth has flushed N pull events (they are written in batches every few seconds)
wait_pulls() {
	local i
	for i in $(seq 1 60); do
		[ "$("$BERTH_BIN" events tail -n 100000 --data "$D" | grep -c ' pull ' || true)" -ge "$1" ] && return 0
		sleep 0.5
	done
	return 1
}

log "1. push, pull, tag move, delete reach the receiver, signed"
M1=$(push team/app v1 one)
pull team/app v1
M2=$(push team/app v1 two) # moves v1 from M1 to M2
"${C[@]}" -X DELETE "$R/v2/team/app/manifests/$M1" >/dev/null
check "the pull is recorded (batched)" wait_pulls 1
check "receiver got every event" wait_delivered "$T/r1.jsonl"
EV=$(cat "$T/r1.jsonl")
check_contains "push event with tag, actor and request" \
	"$(jq -nc --arg d "$M1" '{action:"push",actor:{name:"alice"},digest:$d,repository:"team/app",tag:"v1"}')" \
	"$(jq -c '{action,actor,digest:.target.digest,repository:.target.repository,tag:.target.tag}' "$T/r1.jsonl")"
check_contains "pull event (batched, GET by tag)" "pull team/app v1 $M1" \
	"$(jq -r '"\(.action) \(.target.repository) \(.target.tag) \(.target.digest)"' "$T/r1.jsonl")"
check_contains "tag move event names the old manifest" "tag team/app v1 $M2 $M1" \
	"$(jq -r '"\(.action) \(.target.repository) \(.target.tag) \(.target.digest) \(.target.previous)"' "$T/r1.jsonl")"
check_contains "delete event" "delete team/app $M1" \
	"$(jq -r '"\(.action) \(.target.repository) \(.target.digest)"' "$T/r1.jsonl")"
check_contains "target.url points at the manifest" "$R/v2/team/app/manifests/$M2" "$(jq -r .target.url "$T/r1.jsonl")"
check_contains "target has mediaType and size" "$OCI_M $(stat -c %s "$T/m.two")" \
	"$(jq -r '"\(.target.mediaType) \(.target.size)"' "$T/r1.jsonl")"
check_contains "timestamp is RFC 3339" "Z" "$(jq -r .timestamp "$T/r1.jsonl" | grep -E '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$' || true)"
check "no request failed the receiver's HMAC or content-type checks" test ! -e "$T/r1.jsonl.bad"
TAIL=$("$BERTH_BIN" events tail --data "$D")
check_contains "berth events tail prints the tag move" "tag    team/app:v1@$M2 (was $M1)" "$TAIL"
check_contains "berth events tail names the actor" "by alice from 127.0.0.1" "$TAIL"
check_eq "berth events tail --action --repository filters" "tag delete" \
	"$("$BERTH_BIN" events tail --action tag,delete --repository 'team/*' --data "$D" | awk '{print $2}' | tr '\n' ' ' | sed 's/ $//')"

log "2. the receiver is stopped mid-stream (pushes going on) and restarted: nothing is lost"
(for i in $(seq 1 24); do
	push "team/app" "t$i" "stream$i" >/dev/null
	sleep 0.1
done) &
pusher=$!
sleep 0.5
stop_pid "$R1PID"
pull team/app v1
sleep 2 # berth tries, fails, backs off; pushes go on
R1PID=$(recv_start "$P1" "$T/r1.jsonl" --secret "$SECRET")
echo "$R1PID $R2PID" >"$T/pids"
prc=0
wait "$pusher" || prc=$?
check_eq "the pushes during the receiver's outage all succeed" 0 "$prc"
check_contains "berth logged the failed delivery" "delivery failed" "$(cat "$D.log")"
check "the second pull is recorded" wait_pulls 2
check "after the receiver's restart it has every event" wait_delivered "$T/r1.jsonl"
check_eq "all 24 pushes of the stream arrived" 24 \
	"$(jq -r 'select(.action == "push" and (.target.tag // "" | startswith("t"))) | .target.tag' "$T/r1.jsonl" | sort -u | wc -l)"

log "3. berth stopped (SIGTERM) with undelivered events: delivered after its restart"
stop_pid "$R1PID"
for i in 1 2 3; do push "keep/app" "s$i" "stop$i" >/dev/null; done
"${C[@]}" -X DELETE "$R/v2/keep/app/manifests/s2" >/dev/null
check "berth stops" berth_stop
R1PID=$(recv_start "$P1" "$T/r1.jsonl" --secret "$SECRET")
echo "$R1PID $R2PID" >"$T/pids"
berth_start "$D" --config "$T/berth.conf"
R=http://$REGISTRY
check "after berth's restart the receiver has every event" wait_delivered "$T/r1.jsonl"

log "4. berth killed (-9) with undelivered events: delivered after its restart"
stop_pid "$R1PID"
for i in 1 2 3; do push "team/app" "k$i" "kill$i" >/dev/null; done
check_eq "the kill-9 events are recorded before the crash" 3 \
	"$("$BERTH_BIN" events tail -n 100 --data "$D" | grep -c 'push   team/app:k' || true)"
berth_kill
R1PID=$(recv_start "$P1" "$T/r1.jsonl" --secret "$SECRET")
echo "$R1PID $R2PID" >"$T/pids"
berth_start "$D" --config "$T/berth.conf"
R=http://$REGISTRY
check "after kill -9 and restart the receiver has every event" wait_delivered "$T/r1.jsonl"
check "no request failed the HMAC check after the restarts" test ! -e "$T/r1.jsonl.bad"
ALL=$(jq -r .id "$T/r1.jsonl" | wc -l)
UNIQ=$(jq -r .id "$T/r1.jsonl" | sort -u | wc -l)
log "receiver 1: $UNIQ distinct events, $((ALL - UNIQ)) duplicates (at-least-once)"
check_eq "the receiver got exactly berth's events (no unknown ids)" "" "$(comm -13 <(berth_ids) <(recv_ids "$T/r1.jsonl"))"

log "5. a filtered webhook gets only its actions and repositories"
check "filtered receiver got its events" test -s "$T/r2.jsonl"
check_eq "filtered receiver: only delete and tag events of keep/*" "delete keep/app" \
	"$(jq -r '"\(.action) \(.target.repository)"' "$T/r2.jsonl" | sort -u | tr '\n' ' ' | sed 's/ $//')"
check "filtered receiver: no signature header expected, none failed" test ! -e "$T/r2.jsonl.bad"
log "6. https:// webhooks: certificate and host name verified"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/ca.key" -out "$T/ca.pem" -days 2 -subj /CN=berth-test-ca \
	2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$T/srv.key" -out "$T/srv.csr" -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=DNS:localhost\n' >"$T/srv.ext"
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -out "$T/srv.pem" -days 2 \
	-extfile "$T/srv.ext" 2>/dev/null
P3=$(free_port)
R3PID=$(recv_start "$P3" "$T/r3.jsonl" --secret "$SECRET" --tls-cert "$T/srv.pem" --tls-key "$T/srv.key")
echo "$R1PID $R2PID $R3PID" >"$T/pids"
sleep 0.5
cat >"$T/tls.conf" <<CONF
webhook = https://localhost:$P3/tls secret=$SECRET
webhook = https://127.0.0.1:$P3/wrong-name
CONF
check "berth stops" berth_stop
SSL_CERT_FILE=$T/ca.pem berth_start "$D" --config "$T/tls.conf"
R=http://$REGISTRY
M9=$(push team/app tls tls1)
wait_tls() {
	local i
	for i in $(seq 1 60); do
		grep -q "$M9" "$T/r3.jsonl" 2>/dev/null && return 0
		sleep 0.5
	done
	return 1
}
check "the https receiver got the push" wait_tls
check "the https receiver verified the signature" test ! -e "$T/r3.jsonl.bad"
check_contains "a certificate not for the URL's host is refused" "wrong-name: delivery failed (TLS handshake" \
	"$(cat "$D.log")"
finish
