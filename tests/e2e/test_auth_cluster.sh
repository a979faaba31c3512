#!/usr/bin/env bash
# shellcheck disable=SC1091,SC2317,SC2153  # sourced libs; helpers are called via check; BERTH_BIN from lib.sh
# The failed-authentication rate limits hold for a cluster, not per node (issue #12, "auth works the same on both
# backends"): two `berth serve` nodes on one PostgreSQL (scripts/pg; blobs on disk, not used here), curl as the
# client (Basic logins, SigV4 signatures from curl's own --aws-sigv4 signer, from several loopback addresses).
#   1. 10 wrong passwords for carol, 5 through A and 5 through B: once both nodes polled the shared counts, the
#      right password gets 429 with Retry-After on both nodes; dave from the same address is not locked
#   2. ECR: 10 wrong secrets for one access key id, 5 through each node: ThrottlingException on both, even with the
#      right secret from a fresh address; another key from that address is not throttled
#   3. ECR: 50 unknown key ids from one address, 25 through each node: that address is throttled on both, even
#      for a good key; another address is not
#   4. a restarted node keeps the cluster's limits (they live in PostgreSQL, not in the node's memory)
#   5. after the window (the shared rows aged by 300 s, the nodes restarted): the right password and the good
#      keys work again on both nodes, and the expired rows are deleted
# Waits are for the nodes' polls (berth_auth_shared_limits_imported_total advancing twice), never for a duration.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/server.sh"
root=$(cd "$here/../.." && pwd)

e2e_tmpdir T
mkdir -p "$T/pg" "$T/cli"
BERTH_METADATA=$("$root/scripts/pg" start "$T/pg")
export BERTH_METADATA
on_exit "$root/scripts/pg" stop "$T/pg"
C() { "$BERTH_BIN" "$@" --data "$T/cli"; }
check "user add carol (into PostgreSQL)" C user add carol --password-stdin <<<"carol-passwd-01"
check "user add dave" C user add dave --password-stdin <<<"dave-passwd-001"
C accesskey create --user carol >"$T/carol.key"
C accesskey create --user dave >"$T/dave.key"
keyvar() { grep "^$2=" "$1" | cut -d= -f2-; }
CK=$(keyvar "$T/carol.key" AWS_ACCESS_KEY_ID) CS=$(keyvar "$T/carol.key" AWS_SECRET_ACCESS_KEY)
DK=$(keyvar "$T/dave.key" AWS_ACCESS_KEY_ID) DS=$(keyvar "$T/dave.key" AWS_SECRET_ACCESS_KEY)

# start_node NAME: berth serve on data directory $T/NAME with a metrics listener (sets NAME, NAME_PID, NAME_MP)
start_node() {
	local mp
	mkdir -p "$T/$1"
	mp=$(free_port)
	berth_start "$T/$1" --access-log off --metrics-listen "127.0.0.1:$mp"
	printf -v "$1" '%s' "$REGISTRY"
	printf -v "${1}_PID" '%s' "$BERTH_PID"
	printf -v "${1}_MP" '%s' "$mp"
	BERTH_PID=
}
stop_node() {
	local pid=${1}_PID
	if kill -TERM "${!pid}" 2>/dev/null; then wait "${!pid}" 2>/dev/null || true; fi
}
start_node A
start_node B
on_exit stop_node A
on_exit stop_node B

code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
# login NODE USER:PASSWORD: status and Retry-After of GET /v2/ with Basic credentials
login() {
	curl -s -D - -o /dev/null -u "$2" "http://$1/v2/" | tr -d '\r' |
		awk 'NR == 1 { s = $2 } tolower($1) == "retry-after:" { r = r " retry-after=" $2 } END { print s r }'
}
# sig NODE FROM KEY SECRET: DescribeRegistry signed by curl's SigV4 from address FROM: "status __type" or "200 -"
sig() {
	curl -s --interface "$2" --aws-sigv4 "aws:amz:us-east-1:ecr" --user "$3:$4" \
		-H 'Content-Type: application/x-amz-json-1.1' \
		-H "X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.DescribeRegistry" -d '{}' -w ' %{http_code}' \
		"http://$1/" | sed -E 's/.*"__type":"([A-Za-z]+)".* ([0-9]+)$/\2 \1/; s/^\{.* ([0-9]+)$/\1 -/'
}
imports() {
	curl -s "http://127.0.0.1:$1/metrics" |
		awk '$1 == "berth_auth_shared_limits_imported_total" { print $2; f = 1 } END { if (!f) print 0 }'
}
# polled NODE-METRICS-PORT: waits until the node has imported over-limit subjects in two polls that began after
# this call (the counter moves once per poll while a subject is over its limit); 1 if that takes over 60 s
polled() {
	local c0 c1 i
	c0=$(imports "$1")
	for i in $(seq 1 600); do
		c1=$(imports "$1")
		[ "$c1" -gt "$c0" ] && break
		sleep 0.1
	done
	for i in $(seq 1 600); do
		[ "$(imports "$1")" -gt "$c1" ] && return 0
		sleep 0.1
	done
	return 1
}
# rows KIND: the shared count of the subjects of KIND (authfail.h: 1 login user, 2 login address, 3 ECR address,
# 4 ECR key id), highest first
sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$BERTH_METADATA" -c "$1"; }
rows() { sql "SELECT failures FROM auth_failures WHERE kind = $1 ORDER BY failures DESC LIMIT 1"; }
# landed KIND N: waits until a subject of KIND has N failures in the shared table
landed() {
	local i
	for i in $(seq 1 600); do
		[ "$(rows "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

########################################################################
log "1. 10 wrong passwords, 5 through each node: the right one is refused on both"
check_eq "carol's right password works on A" 200 "$(code -u carol:carol-passwd-01 "http://$A/v2/")"
for _ in 1 2 3 4 5; do
	OUTA=$(login "$A" carol:wrong-password)
	OUTB=$(login "$B" carol:wrong-password)
done
check_eq "the 5th wrong password through A is 401" 401 "$OUTA"
check_eq "the 5th wrong password through B is 401 (neither node saw 10)" 401 "$OUTB"
check "the 10 failures land in the shared table as one subject" landed 1 10
check "node A polled the shared counts" polled "$A_MP"
check "node B polled the shared counts" polled "$B_MP"
check_eq "then carol's right password gets 429 with Retry-After on A" "429 retry-after=60" \
	"$(login "$A" carol:carol-passwd-01)"
check_eq "... and on B" "429 retry-after=60" "$(login "$B" carol:carol-passwd-01)"
check_eq "dave from the same address is not locked (A)" 200 "$(code -u dave:dave-passwd-001 "http://$A/v2/")"
check_eq "... (B)" 200 "$(code -u dave:dave-passwd-001 "http://$B/v2/")"

########################################################################
log "2. ECR: 10 wrong secrets for one key id, 5 through each node: ThrottlingException on both"
check_eq "carol's key is accepted on B" "200 -" "$(sig "$B" 127.0.0.20 "$CK" "$CS")"
for i in 1 2 3 4 5; do
	OUTA=$(sig "$A" "127.0.0.$((20 + i))" "$CK" wrong-secret-wrong-secret-wrong-secret-00)
	OUTB=$(sig "$B" "127.0.0.$((25 + i))" "$CK" wrong-secret-wrong-secret-wrong-secret-00)
done
check_eq "the 5th wrong secret through A is InvalidSignatureException" "400 InvalidSignatureException" "$OUTA"
check_eq "... and through B" "400 InvalidSignatureException" "$OUTB"
check "the 10 failures land in the shared table as one key id" landed 4 10
check "node A polled" polled "$A_MP"
check "node B polled" polled "$B_MP"
check_eq "carol's key with its right secret from a fresh address is throttled on A" "400 ThrottlingException" \
	"$(sig "$A" 127.0.0.31 "$CK" "$CS")"
check_eq "... and on B" "400 ThrottlingException" "$(sig "$B" 127.0.0.32 "$CK" "$CS")"
check_eq "dave's key from that address is not (A)" "200 -" "$(sig "$A" 127.0.0.31 "$DK" "$DS")"
check_eq "... (B)" "200 -" "$(sig "$B" 127.0.0.32 "$DK" "$DS")"

########################################################################
log "3. ECR: 50 unknown key ids from one address, 25 through each node: the address is throttled on both"
for i in $(seq 1 25); do
	OUTA=$(sig "$A" 127.0.0.40 "$(printf 'BKUNKNOWNA%010d' "$i")" "$DS")
	OUTB=$(sig "$B" 127.0.0.40 "$(printf 'BKUNKNOWNB%010d' "$i")" "$DS")
done
check_eq "the 25th unknown key through A is UnrecognizedClientException" "400 UnrecognizedClientException" "$OUTA"
check_eq "... and through B" "400 UnrecognizedClientException" "$OUTB"
check "the 50 failures land in the shared table as one address" landed 3 50
check "node A polled" polled "$A_MP"
check "node B polled" polled "$B_MP"
check_eq "then dave's good key from that address is throttled on A" "400 ThrottlingException" \
	"$(sig "$A" 127.0.0.40 "$DK" "$DS")"
check_eq "... and on B" "400 ThrottlingException" "$(sig "$B" 127.0.0.40 "$DK" "$DS")"
check_eq "dave's key from another address is not (A)" "200 -" "$(sig "$A" 127.0.0.41 "$DK" "$DS")"
check_eq "... (B)" "200 -" "$(sig "$B" 127.0.0.41 "$DK" "$DS")"

########################################################################
log "4. a restarted node keeps the cluster's limits"
stop_node B
start_node B
check "the restarted node B polled" polled "$B_MP"
check_eq "carol's right password is still refused on B" "429 retry-after=60" "$(login "$B" carol:carol-passwd-01)"
check_eq "carol's key is still throttled on B" "400 ThrottlingException" "$(sig "$B" 127.0.0.33 "$CK" "$CS")"

########################################################################
log "5. after the window: everything works again, and the expired rows are deleted"
stop_node A
stop_node B
check "the shared rows aged past the window (300 s)" sql "UPDATE auth_failures SET first_at = first_at - 300"
start_node A
start_node B
check_eq "carol's right password works on A" 200 "$(code -u carol:carol-passwd-01 "http://$A/v2/")"
check_eq "... and on B" 200 "$(code -u carol:carol-passwd-01 "http://$B/v2/")"
check_eq "carol's key works on A" "200 -" "$(sig "$A" 127.0.0.34 "$CK" "$CS")"
check_eq "... and dave's from the throttled address on B" "200 -" "$(sig "$B" 127.0.0.40 "$DK" "$DS")"
expired() { sql "SELECT count(*) FROM auth_failures WHERE first_at <= extract(epoch FROM now())::bigint - 300"; }
gone() {
	local i
	for i in $(seq 1 600); do
		[ "$(expired)" = 0 ] && return 0
		sleep 0.1
	done
	return 1
}
check "no expired row is left (the nodes delete them when they start, then every minute)" gone

finish
