#!/usr/bin/env bash
# Streaming upload bodies (issue 13, docs/HTTP1.md): no body byte from a caller who may not push, bodies streamed
# into the session with bounded memory and no spill file, resumable after a disconnect, strict HTTP/1.1 framing.
#
#   1. anonymous and unauthorized (Basic without the grant, bearer without the scope) 1 GiB bodies to every upload
#      route over HTTP/1.1 and TLS are refused right after the head (401/403 OCI JSON, the connection closes), the
#      client could push only what the socket buffers hold, and <data> and the server's RSS do not grow;
#      `Expect: 100-continue` is answered with the final 401; over h2c (prior knowledge) the body is bounded by
#      max_manifest_size
#   2. an authorized 2 GiB PATCH streams: anonymous RSS growth < 64 MiB, no spill file, the blob reads back;
#      8 concurrent 64 MiB pushes: peak RSS (the kernel's VmHWM, reset before) and sampled anonymous RSS grow by
#      less than PUSH8_GROWTH_KIB (scripts/bench compares the same workload with Distribution)
#   3. a client that hangs up mid-PATCH leaves the session with every byte that arrived; resuming from the offset the
#      status GET reports completes the blob
#   4. smuggling and malformed heads get 400 OCI JSON and the connection closes; a body past max_blob_size gets 413
#   5. the cap on concurrent upload bodies per client address answers 429
#   6. SIGTERM during a streamed PATCH lets it finish
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/server.sh"

e2e_tmpdir T
PY=/usr/bin/python3
C() { "$PY" "$here/h1client.py" "$@"; }
B() { "$BERTH_BIN" "$@" --data "$DATA"; }
GIB=$((1 << 30))
rss_kib() { awk '/^VmRSS/{print $2}' "/proc/$BERTH_PID/status"; }
anon_kib() { awk '/^RssAnon/{print $2}' "/proc/$BERTH_PID/status"; }
hwm_kib() { awk '/^VmHWM/{print $2}' "/proc/$BERTH_PID/status"; }
du_kib() { du -sk "$DATA" | cut -f1; }
basic() { printf 'Basic %s' "$(printf '%s' "$1" | base64 -w0)"; }
location() { tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}'; }
# under ASan the server's memory is shadow and quarantine: the RSS bounds are checked on normal builds only
ASAN=0
ldd "$BERTH_BIN" 2>/dev/null | grep -q libasan && ASAN=1
rss_check() { # NAME KIB LIMIT_KIB
	if [ "$ASAN" = 1 ]; then
		echo "skip $1 (ASan build: $2 KiB)"
	else
		check "$1 ($2 KiB)" test "$2" -lt "$3"
	fi
}

# a certificate for the TLS server
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
	-keyout "$T/key" -out "$T/crt" 2>/dev/null

DATA=$T/data
berth_start "$DATA"
on_exit berth_stop
H=127.0.0.1
P=$BERTH_PORT
R=http://$REGISTRY
ADMIN_PW=$(grep -o 'with password [A-Za-z0-9_-]*' "$DATA.log" | awk '{print $3}')
check "users and grants" bash -c "set -e
	$(printf '%q' "$BERTH_BIN") user add alice --password-stdin --data $(printf '%q' "$DATA") <<<alice-pw-0001
	$(printf '%q' "$BERTH_BIN") user add bob --password-stdin --data $(printf '%q' "$DATA") <<<bob-pw-00001
	$(printf '%q' "$BERTH_BIN") grant add user:alice pull,push 'team/*' --data $(printf '%q' "$DATA")
	$(printf '%q' "$BERTH_BIN") grant add user:bob pull 'team/*' --data $(printf '%q' "$DATA")"
ALICE=$(basic alice:alice-pw-0001)
BOB=$(basic bob:bob-pw-00001)
BOB_TOKEN="Bearer $(curl -s -u bob:bob-pw-00001 "$R/token?service=berth&scope=repository:team/s:pull,push" | jq -r .token)"
check "bob got a (pull-only) token" test "${#BOB_TOKEN}" -gt 40
LOC=$(curl -s -u alice:alice-pw-0001 -X POST -D - -o /dev/null "$R/v2/team/s/blobs/uploads/" | location)
check "alice opened a session" test -n "$LOC"
ZERO=sha256:$(printf '' | sha256sum | cut -c1-64)

########################################################################
log "1. refused before the body"
du0=$(du_kib)
rss0=$(rss_kib)
routes=("POST /v2/team/s/blobs/uploads/?digest=$ZERO" "PATCH $LOC" "PUT $LOC?digest=$ZERO" "PUT /v2/team/s/manifests/v1")
# attempt NAME EXPECTED_STATUS ARGS... (1 GiB announced)
attempt() {
	local name=$1 want=$2 out status sent closed
	shift 2
	out=$(C push "$@")
	read -r status sent closed <<<"$out"
	check_eq "$name: status" "$want" "$status"
	check "$name: body not taken (client pushed $sent bytes)" test "$sent" -lt $((64 << 20))
	check_eq "$name: connection closed" 1 "$closed"
}
for r in "${routes[@]}"; do
	m=${r%% *} p=${r#* }
	attempt "anonymous $m ${p%%\?*}" 401 "$H" "$P" "$m" "$p" $GIB
	attempt "anonymous chunked $m ${p%%\?*}" 401 "$H" "$P" "$m" "$p" $GIB --chunked
	attempt "bob (Basic, pull only) $m ${p%%\?*}" 403 "$H" "$P" "$m" "$p" $GIB --auth "$BOB"
	attempt "bob (token, pull only) $m ${p%%\?*}" 401 "$H" "$P" "$m" "$p" $GIB --auth "$BOB_TOKEN"
done
out=$(C push "$H" "$P" PATCH "$LOC" $GIB --expect)
check_eq "Expect: 100-continue gets the final 401 before any body byte, not 100" "401 0" "${out% *}"
out=$(curl -s -X PATCH --data-binary x -D - "$R$LOC" | tr -d '\r')
check_contains "the refusal carries the challenge" 'www-authenticate: Bearer realm=' "$out"
check_contains "the refusal is OCI JSON" '"code":"UNAUTHORIZED"' "$out"

# h2c with prior knowledge: h2o's HTTP/2 buffers bodies, so they are bounded by max_manifest_size
code=$(head -c $GIB /dev/zero | curl -s --http2-prior-knowledge -o /dev/null -w '%{http_code}' -X PATCH -T - \
	"$R$LOC" || true)
check "h2c anonymous 1 GiB PATCH refused (got $code)" test "$code" != 202
code=$(head -c $GIB /dev/zero | curl -s --http2-prior-knowledge -o /dev/null -w '%{http_code}' -X PATCH -T - \
	-u bob:bob-pw-00001 "$R$LOC" || true)
check "h2c unauthorized 1 GiB PATCH refused (got $code)" test "$code" != 202
check_eq "h2c still serves" "2 401" "$(curl -s --http2-prior-knowledge -o /dev/null -w '%{http_version} %{http_code}' "$R/v2/")"

du1=$(du_kib)
rss1=$(rss_kib)
echo "data dir: $du0 -> $du1 KiB; RSS: $rss0 -> $rss1 KiB after $((${#routes[@]} * 4 + 3)) refused 1 GiB bodies"
check "data dir grew by less than 4 MiB ($((du1 - du0)) KiB)" test $((du1 - du0)) -lt 4096
rss_check "RSS grew by less than 32 MiB" $((rss1 - rss0)) 32768
check "nothing spilled to <data>/tmp" test -z "$(ls -A "$DATA/tmp" 2>/dev/null)"
check_eq "the session is untouched" 204 "$(curl -s -u alice:alice-pw-0001 -o /dev/null -w '%{http_code}' "$R$LOC")"
check_eq "and empty" "0-0" "$(curl -s -u alice:alice-pw-0001 -o /dev/null -D - "$R$LOC" | tr -d '\r' | awk -F': ' 'tolower($1)=="range"{print $2}')"

########################################################################
log "4. strict framing: 400 OCI JSON and close"
hexof() { printf '%b' "$1" | xxd -p | tr -d '\n'; }
# smuggle NAME RAW: RAW is followed by a pipelined GET that must never be answered
smuggle() {
	local out status closed answers body
	out=$(C raw "$H" "$P" "$(hexof "$2GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")")
	read -r status closed answers body <<<"$out"
	check_eq "$1: 400" 400 "$status"
	check_eq "$1: closed after one answer" "1 1" "$closed $answers"
	check_contains "$1: OCI JSON" '"errors":[' "$body"
}
smuggle "Content-Length and Transfer-Encoding" \
	"POST /v2/team/s/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
smuggle "two Content-Lengths" "PUT /v2/x/manifests/a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"
smuggle "bare LF" "GET /v2/ HTTP/1.1\nHost: x\n\n"
smuggle "obs-fold" "GET /v2/ HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"
smuggle "space before colon" "GET /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length : 4\r\n\r\n"
smuggle "NUL in the request line" "GET /v2/\x00 HTTP/1.1\r\nHost: x\r\n\r\n"
smuggle "Transfer-Encoding other than chunked" "POST /v2/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
smuggle "broken chunk framing" \
	"PATCH $LOC HTTP/1.1\r\nHost: x\r\nAuthorization: $ALICE\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n"
out=$(C raw "$H" "$P" "$(hexof "PATCH $LOC HTTP/1.1\r\nHost: x\r\nAuthorization: $ALICE\r\nContent-Length: 999999999999999\r\n\r\n")")
check_eq "a body past max_blob_size: 413 and close" "413 1" "$(cut -d' ' -f1,2 <<<"$out")"
check_contains "a body past max_blob_size: OCI JSON" '"code":"SIZE_INVALID"' "$out"
check_eq "server still serves" 401 "$(curl -s -o /dev/null -w '%{http_code}' "$R/v2/")"

########################################################################
log "3. disconnect mid-PATCH, then resume"
head -c $((12 << 20)) /dev/urandom >"$T/blob"
D12=sha256:$(sha256sum "$T/blob" | cut -c1-64)
SENT=$(((7 << 20) + 12345))
C partial "$H" "$P" "$LOC" "$ALICE" "$T/blob" $SENT
rng=
for i in $(seq 1 50); do # the job finishes a moment after the hang-up
	rng=$(curl -s -u alice:alice-pw-0001 -o /dev/null -D - "$R$LOC" | tr -d '\r' | awk -F': ' 'tolower($1)=="range"{print $2}')
	[ -n "$rng" ] && break
	sleep 0.1
done
end=${rng#0-}
echo "after the hang-up at $SENT bytes the session holds $((end + 1)) bytes"
check_eq "the session kept every byte that arrived" "0-$((SENT - 1))" "$rng"
tail -c +$((end + 2)) "$T/blob" >"$T/rest"
check_eq "resume PATCH from the reported offset" 202 "$(curl -s -u alice:alice-pw-0001 -o /dev/null -w '%{http_code}' \
	-X PATCH -H "Content-Range: $((end + 1))-$(((12 << 20) - 1))" --data-binary @"$T/rest" "$R$LOC")"
check_eq "finish" 201 "$(curl -s -u alice:alice-pw-0001 -o /dev/null -w '%{http_code}' -X PUT "$R$LOC?digest=$D12")"
check_eq "the resumed blob reads back" "$D12" \
	"sha256:$(curl -s -u alice:alice-pw-0001 "$R/v2/team/s/blobs/$D12" | sha256sum | cut -c1-64)"

########################################################################
log "5. cap on concurrent upload bodies per address"
PER_ADDR=$(awk '$2 == "BERTH_UPLOAD_BODIES_PER_ADDR" {print $3}' "$here/../../include/defaults.h")
paths=()
for i in $(seq 1 "$PER_ADDR"); do
	paths+=("$(curl -s -u alice:alice-pw-0001 -X POST -D - -o /dev/null "$R/v2/team/cap/blobs/uploads/" | location)")
done
paths+=("$(curl -s -u alice:alice-pw-0001 -X POST -D - -o /dev/null "$R/v2/team/cap/blobs/uploads/" | location)")
check_eq "upload body $((PER_ADDR + 1)) at once from one address gets 429" 429 "$(C hold "$H" "$P" "$ALICE" "${paths[@]}")"
sleep 1
check_eq "slots come back when the uploads end" 202 "$(curl -s -u alice:alice-pw-0001 -o /dev/null -w '%{http_code}' \
	-X PATCH --data-binary x "$R${paths[0]}")"

########################################################################
log "2. an authorized 2 GiB PATCH streams"
LOC2=$(curl -s -u alice:alice-pw-0001 -X POST -D - -o /dev/null "$R/v2/team/big/blobs/uploads/" | location)
anon0=$(anon_kib)
peak=$anon0
spill=0
head -c $((2 * GIB)) /dev/zero | curl -s -u alice:alice-pw-0001 -o "$T/patch.out" -w '%{http_code}' -X PATCH -T - \
	"$R$LOC2" >"$T/patch.code" &
cpid=$!
while kill -0 $cpid 2>/dev/null; do
	a=$(anon_kib)
	[ "$a" -gt "$peak" ] && peak=$a
	if ls -l "/proc/$BERTH_PID/fd" 2>/dev/null | grep -q 'body\.'; then spill=1; fi
	sleep 0.2
done
wait $cpid || true
check_eq "2 GiB chunked PATCH accepted" 202 "$(cat "$T/patch.code")"
echo "anonymous RSS during a 2 GiB PATCH: $((anon0 / 1024)) -> peak $((peak / 1024)) MiB"
rss_check "anonymous RSS growth under 64 MiB" $((peak - anon0)) 65536
check_eq "no spill file was open" 0 "$spill"
check "nothing in <data>/tmp" test -z "$(ls -A "$DATA/tmp" 2>/dev/null)"
D2G=sha256:$(head -c $((2 * GIB)) /dev/zero | sha256sum | cut -c1-64)
check_eq "finish the 2 GiB blob" 201 "$(curl -s -u alice:alice-pw-0001 -o /dev/null -w '%{http_code}' -X PUT "$R$LOC2?digest=$D2G")"
check_eq "delete it" 202 "$(curl -s -u "admin:$ADMIN_PW" -o /dev/null -w '%{http_code}' -X DELETE "$R/v2/team/big/blobs/$D2G")"

########################################################################
log "2b. 8 concurrent 64 MiB pushes: bounded peak memory"
# Each streamed body holds at most 3 BERTH_STREAM_CHUNK pieces plus the socket's input buffer, which the
# BERTH_STREAM_RCVBUF receive buffer bounds (docs/HTTP1.md: ~1.1 MiB per upload measured); 3 MiB per upload leaves
# room for the upload's thread and its database connection.  With 1 MiB pieces and a 1 MiB receive buffer the same
# pushes grew RSS by 48-64 MiB.
PUSH8_GROWTH_KIB=$((8 * 3 * 1024))
for i in $(seq 1 8); do
	{ printf 'blob %d\n' "$i"; head -c $((64 << 20)) /dev/zero; } >"$T/p8.$i"
done
locs=()
for i in $(seq 1 8); do
	locs+=("$(curl -s -u alice:alice-pw-0001 -X POST -D - -o /dev/null "$R/v2/team/p8/blobs/uploads/" | location)")
done
rss0=$(rss_kib)
anon0=$(anon_kib)
# the kernel's high-water mark restarts from the current RSS (Linux >= 4.0): VmHWM after the pushes is their exact peak
check "VmHWM reset through clear_refs" bash -c "echo 5 >/proc/$BERTH_PID/clear_refs"
pids=()
for i in $(seq 1 8); do
	curl -s -u alice:alice-pw-0001 -o /dev/null -w '%{http_code}' -T "$T/p8.$i" \
		"$R${locs[i - 1]}?digest=sha256:$(sha256sum "$T/p8.$i" | cut -c1-64)" >"$T/p8.$i.code" &
	pids+=($!)
done
peak=$anon0
while kill -0 "${pids[@]}" 2>/dev/null; do
	a=$(anon_kib)
	[ "$a" -gt "$peak" ] && peak=$a
	sleep 0.05
done
wait "${pids[@]}" || true
hwm=$(hwm_kib)
codes=$(for i in $(seq 1 8); do printf '%s ' "$(cat "$T/p8.$i.code")"; done)
check_eq "8 concurrent 64 MiB pushes committed" "201 201 201 201 201 201 201 201 " "$codes"
echo "8 concurrent 64 MiB pushes: RSS $((rss0 / 1024)) -> peak (VmHWM) $((hwm / 1024)) MiB;" \
	"anonymous RSS $((anon0 / 1024)) -> sampled peak $((peak / 1024)) MiB"
rss_check "peak RSS growth during 8 concurrent pushes under $((PUSH8_GROWTH_KIB / 1024)) MiB" $((hwm - rss0)) "$PUSH8_GROWTH_KIB"
rss_check "anonymous RSS growth during them under $((PUSH8_GROWTH_KIB / 1024)) MiB" $((peak - anon0)) "$PUSH8_GROWTH_KIB"
rm -f "$T"/p8.*

########################################################################
log "6. SIGTERM during a streamed PATCH: the upload finishes, then berth exits"
LOC3=$(curl -s -u alice:alice-pw-0001 -X POST -D - -o /dev/null "$R/v2/team/term/blobs/uploads/" | location)
head -c 6000000 /dev/urandom >"$T/slow"
curl -s -u alice:alice-pw-0001 -o /dev/null -w '%{http_code}' --limit-rate 2M -X PATCH --data-binary @"$T/slow" \
	"$R$LOC3" >"$T/slow.code" &
cpid=$!
sleep 1
kill -TERM "$BERTH_PID"
wait $cpid || true
check_eq "the PATCH in flight at SIGTERM completed" 202 "$(cat "$T/slow.code")"
check "berth exited after it" berth_stop
berth_start "$DATA"
R=http://$REGISTRY
check_eq "after the restart the session holds the whole PATCH" "0-5999999" \
	"$(curl -s -u alice:alice-pw-0001 -o /dev/null -D - "$R$LOC3" | tr -d '\r' | awk -F': ' 'tolower($1)=="range"{print $2}')"
berth_stop

########################################################################
log "1b. the same refusals over TLS"
berth_start "$DATA" --tls-cert "$T/crt" --tls-key "$T/key"
P=$BERTH_PORT
du0=$(du_kib)
for r in "${routes[@]}"; do
	m=${r%% *} p=${r#* }
	attempt "TLS anonymous $m ${p%%\?*}" 401 "$H" "$P" "$m" "$p" $GIB --tls
	attempt "TLS bob (Basic, pull only) $m ${p%%\?*}" 403 "$H" "$P" "$m" "$p" $GIB --tls --auth "$BOB"
done
out=$(C push "$H" "$P" PATCH "$LOC" $GIB --tls --expect)
check_eq "TLS: Expect: 100-continue gets the final 401 before any body byte" "401 0" "${out% *}"
check "TLS: data dir grew by less than 4 MiB" test $(($(du_kib) - du0)) -lt 4096
check_eq "TLS: HTTP/2 still negotiated by ALPN" "2 401" \
	"$(curl -sk --http2 -o /dev/null -w '%{http_version} %{http_code}' "https://$REGISTRY/v2/")"
check_eq "TLS: an authorized upload streams over HTTP/1.1" "1.1 201" "$(head -c 3000000 /dev/urandom >"$T/b3" &&
	curl -sk --http1.1 -u alice:alice-pw-0001 -o /dev/null -w '%{http_version} %{http_code}' -X POST --data-binary @"$T/b3" \
		"https://$REGISTRY/v2/team/tls/blobs/uploads/?digest=sha256:$(sha256sum "$T/b3" | cut -c1-64)")"
finish
