#!/usr/bin/env bash
# TLS and HTTP/2: berth with --tls-cert/--tls-key speaks TLS 1.2+ only and HTTP/2 by ALPN (request bodies bounded by
# max_manifest_size; large uploads go over HTTP/1.1, streamed); curl, skopeo (with
# --cert-dir) and docker (with a CA under /etc/docker/certs.d) push and pull over it; h2c works on plain ports;
# a client that aborts an HTTP/2 upload mid-way does not hurt the server.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
. "$here/server.sh"
. "$root/scripts/lib/images.sh"
. "$root/scripts/lib/dockerd.sh"

e2e_tmpdir T
sha() { echo "sha256:$(sha256sum "$1" | cut -c1-64)"; }

# a CA and a server certificate for 127.0.0.1 / localhost
mkdir -p "$T/certs"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=berth-test-ca -keyout "$T/ca.key" -out "$T/certs/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout "$T/server.key" -out "$T/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$T/ext"
openssl x509 -req -in "$T/server.csr" -CA "$T/certs/ca.crt" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
	-extfile "$T/ext" -out "$T/server.crt" 2>/dev/null
CA=$T/certs/ca.crt

berth_start "$T/data" --no-auth --tls-cert "$T/server.crt" --tls-key "$T/server.key" --access-log "$T/access.log"
on_exit berth_stop
R=https://$REGISTRY

check_eq "HTTP/2 by ALPN" "2 200" "$(curl -s --cacert "$CA" --http2 -o /dev/null -w '%{http_version} %{http_code}' "$R/v2/")"
check_eq "HTTP/1.1 still served over TLS" "1.1 200" \
	"$(curl -s --cacert "$CA" --http1.1 -o /dev/null -w '%{http_version} %{http_code}' "$R/v2/")"
check_fail "TLS 1.1 refused" curl -sf --cacert "$CA" --tlsv1 --tls-max 1.1 "$R/v2/"
check_fail "plain HTTP on the TLS port fails" curl -sf --max-time 5 "http://$REGISTRY/v2/"

# a 40 MB blob: HTTP/2 request bodies are bounded by max_manifest_size (h2o 2.2.5 buffers them whole before any
# handler runs, docs/HTTP1.md), so it is refused there; over HTTP/1.1 on the same TLS port it streams
head -c 40000000 /dev/urandom >"$T/blob"
d=$(sha "$T/blob")
check_fail "40 MB monolithic upload over HTTP/2 refused (bounded)" \
	curl -sf --cacert "$CA" --http2 -o /dev/null -X POST --data-binary @"$T/blob" "$R/v2/tls/blob/blobs/uploads/?digest=$d"
check_eq "small monolithic upload over HTTP/2" 201 \
	"$(head -c 100000 "$T/blob" >"$T/small" && curl -s --cacert "$CA" --http2 -o /dev/null -w '%{http_code}' -X POST --data-binary @"$T/small" "$R/v2/tls/blob/blobs/uploads/?digest=$(sha "$T/small")")"
check_eq "monolithic upload over HTTP/1.1 with TLS" "1.1 201" \
	"$(curl -s --cacert "$CA" --http1.1 -o /dev/null -w '%{http_version} %{http_code}' -X POST --data-binary @"$T/blob" "$R/v2/tls/blob/blobs/uploads/?digest=$d")"
check_eq "blob read back over HTTP/2" "$d" \
	"$(curl -s --cacert "$CA" --http2 "$R/v2/tls/blob/blobs/$d" | sha256sum | sed 's/^/sha256:/; s/ .*//')"
# clients that give up mid-upload over HTTP/2 (stream reset / connection close while the body is processed)
for i in 1 2 3 4 5 6; do
	loc=$(curl -s --cacert "$CA" --http2 -X POST -D - -o /dev/null "$R/v2/tls/abort/blobs/uploads/" | tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}')
	curl -s --cacert "$CA" --http2 -o /dev/null -X PATCH --max-time 0.$i --data-binary @"$T/blob" "$R$loc" || true
done
check_eq "server unharmed by aborted HTTP/2 uploads" 200 "$(curl -s --cacert "$CA" --http2 -o /dev/null -w '%{http_code}' "$R/v2/")"

# skopeo with --cert-dir, TLS verification on
img_busybox "$T/img" amd64 "tls-$$" >/dev/null
check "skopeo copy over TLS" skopeo copy --dest-cert-dir "$T/certs" "oci:$T/img:latest" "docker://$REGISTRY/tls/busybox:1"
check "skopeo copy back over TLS" skopeo copy --src-cert-dir "$T/certs" "docker://$REGISTRY/tls/busybox:1" "oci:$T/back:latest"
check_eq "round trip over TLS is byte-identical" "$(img_manifest_digest "$T/img")" "$(img_manifest_digest "$T/back")"
check_fail "skopeo without the CA refuses the certificate" skopeo inspect "docker://$REGISTRY/tls/busybox:1"

# docker with the CA under /etc/docker/certs.d/127.0.0.1:PORT/
if [ -z "${E2E_SKIP_DOCKER:-}" ]; then
	dockerd_start "$T/docker" >/dev/null
	on_exit dockerd_stop "$T/docker"
	dockerd_add_ca "$T/docker" "$REGISTRY" "$CA"
	img_docker_archive "$T/img" "$T/img.tar" "localhost/tls-busybox:latest"
	check "docker load" $DOCKER load -i "$T/img.tar"
	check "docker tag" $DOCKER tag localhost/tls-busybox:latest "$REGISTRY/tls/docker:1"
	check "docker push over TLS" $DOCKER push "$REGISTRY/tls/docker:1"
	check "docker rmi" $DOCKER rmi "$REGISTRY/tls/docker:1" localhost/tls-busybox:latest
	check "docker pull over TLS" $DOCKER pull "$REGISTRY/tls/docker:1"
	# the port speaks only TLS (checked above), so docker's requests in its log went over TLS
	check "docker pushed through the TLS port" grep -q '"PUT /v2/tls/docker/manifests/1 HTTP/[12].*docker/' "$T/access.log"
fi
finish
