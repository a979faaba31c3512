#!/usr/bin/env bash
# Protocol edges of the OCI distribution API, driven by curl against the real server: every status code and
# header the spec names, and the bad input of issue #2 (each answered with an OCI error, nothing stored, the
# server still serving).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/server.sh"

e2e_tmpdir T
berth_start "$T/data" --no-auth
on_exit berth_stop
R=http://$REGISTRY

# req METHOD PATH [curl args...] -> STATUS, HDRS (header lines, names lowercased), BODY
req() {
	local m=$1 p=$2
	shift 2
	local extra=(-X "$m")
	[ "$m" = HEAD ] && extra=(-I)
	STATUS=$(curl -s --path-as-is "${extra[@]}" -D "$T/h" -o "$T/b" -w '%{http_code}' "$@" "$R$p" || true)
	HDRS=$(tr -d '\r' <"$T/h" | awk -F': ' 'NF>1{printf "%s: %s\n", tolower($1), substr($0, length($1)+3)}')
	BODY=$(tr -d '\0' <"$T/b")
}
# head_then_get PATH: pipelines HEAD PATH and GET /v2/ on one connection and prints what follows the HEAD's
# headers; a HEAD that wrongly sent a body would show its bytes here instead of the next status line
head_then_get() {
	/usr/bin/python3 - "$BERTH_PORT" "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(5)
s.sendall(("HEAD %s HTTP/1.1\r\nHost: x\r\n\r\nGET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % sys.argv[2]).encode())
data = b""
while True:
    c = s.recv(65536)
    if not c: break
    data += c
print(data.split(b"\r\n\r\n", 1)[1].split(b"\r\n")[0].decode(errors="replace"))
PY
}
hdr() { awk -v n="$1" -F': ' '$1==n{print substr($0, length($1)+3); exit}' <<<"$HDRS"; }
code() { /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["errors"][0]["code"])' <<<"$BODY" 2>/dev/null || echo "not-oci-json"; }
expect() { # expect NAME STATUS [OCI-CODE]
	check_eq "$1: status" "$2" "$STATUS"
	if [ $# -ge 3 ]; then check_eq "$1: error code" "$3" "$(code)"; fi
}
sha() { echo "sha256:$(sha256sum "$1" | cut -c1-64)"; }

# ---- base, routing, methods ----
req GET /v2/
expect "GET /v2/" 200
check_eq "API version header" "registry/2.0" "$(hdr docker-distribution-api-version)"
req GET /v2/no/such/route
expect "unknown route" 404 UNSUPPORTED
req GET /elsewhere
expect "path outside /v2" 404 UNSUPPORTED
check_eq "error responses carry the API version header" "registry/2.0" "$(hdr docker-distribution-api-version)"
req PUT /v2/_catalog
expect "wrong method on catalog" 405 UNSUPPORTED

# ---- names ----
req GET /v2/UPPER/tags/list
expect "uppercase name" 400 NAME_INVALID
req GET /v2/a/../b/tags/list
expect "name with .." 400 NAME_INVALID
req GET /v2/a%2Fb/tags/list
expect "name with %2F" 400 NAME_INVALID
req GET /v2/a//b/tags/list
expect "name with //" 400 NAME_INVALID
req GET "/v2/a%00b/tags/list"
expect "name with NUL" 400 NAME_INVALID
long=$(printf 'a%.0s' $(seq 1 256))
req GET "/v2/$long/tags/list"
expect "256-character name" 400 NAME_INVALID
req GET /v2/nothere/tags/list
expect "tags of unknown repository" 404 NAME_UNKNOWN

# ---- digests ----
good=sha256:$(printf '0%.0s' $(seq 1 64))
req GET "/v2/r/blobs/sha256:$(printf 'A%.0s' $(seq 1 64))"
expect "uppercase digest" 400 DIGEST_INVALID
req GET "/v2/r/blobs/sha512:$(printf 'a%.0s' $(seq 1 128))"
expect "sha512 digest" 400 DIGEST_INVALID
req GET "/v2/r/blobs/sha256:abc"
expect "short digest" 400 DIGEST_INVALID
req GET "/v2/r/blobs/sha256:$(printf 'g%.0s' $(seq 1 64))"
expect "non-hex digest" 400 DIGEST_INVALID
req GET "/v2/r/blobs/$good"
expect "unknown blob" 404 BLOB_UNKNOWN

# ---- monolithic upload, GET/HEAD/Range ----
head -c 100000 /dev/urandom >"$T/blob1"
d1=$(sha "$T/blob1")
req POST "/v2/e2e/api/blobs/uploads/?digest=$d1" --data-binary @"$T/blob1" -H 'Content-Type: application/octet-stream'
expect "monolithic POST" 201
check_eq "monolithic Location" "/v2/e2e/api/blobs/$d1" "$(hdr location)"
check_eq "monolithic Docker-Content-Digest" "$d1" "$(hdr docker-content-digest)"
req GET "/v2/e2e/api/blobs/$d1"
expect "blob GET" 200
check_eq "blob GET bytes" "$d1" "$(sha "$T/b")"
check_eq "blob GET Content-Length" 100000 "$(hdr content-length)"
req HEAD "/v2/e2e/api/blobs/$d1"
expect "blob HEAD" 200
check_eq "blob HEAD Content-Length" 100000 "$(hdr content-length)"
check_eq "blob HEAD has no body" "HTTP/1.1 200 OK" "$(head_then_get "/v2/e2e/api/blobs/$d1")"
check_eq "blob HEAD digest" "$d1" "$(hdr docker-content-digest)"
req GET "/v2/e2e/api/blobs/$d1" -H 'Range: bytes=10-19'
expect "range GET" 206
check_eq "range length" 10 "$(stat -c %s "$T/b")"
check_eq "range bytes" "$(od -An -tx1 -j 10 -N 10 "$T/blob1")" "$(od -An -tx1 "$T/b")"
check_eq "Content-Range" "bytes 10-19/100000" "$(hdr content-range)"
req GET "/v2/e2e/api/blobs/$d1" -H 'Range: bytes=-5'
expect "suffix range" 206
req GET "/v2/e2e/api/blobs/$d1" -H 'Range: bytes=100000-'
expect "range past the end" 416
check_eq "416 Content-Range" "bytes */100000" "$(hdr content-range)"
req GET "/v2/e2e/api/blobs/$d1" -H 'Range: bytes=20-10'
expect "inverted range" 416
req GET "/v2/e2e/api/blobs/$d1" -H 'Range: bytes=abc'
expect "garbage range" 416
req GET "/v2/e2e/api/blobs/$d1" -H 'Range: bytes=0-99999999999999999999999999'
expect "overflowing range" 416
req GET "/v2/e2e/other/blobs/$d1"
expect "blob of another repository is not served" 404 BLOB_UNKNOWN

# ---- chunked session upload ----
head -c 300000 /dev/urandom >"$T/blob2"
d2=$(sha "$T/blob2")
split -b 100000 -d "$T/blob2" "$T/part"
mv "$T/part00" "$T/c1"
mv "$T/part01" "$T/c2"
mv "$T/part02" "$T/c3"
req POST /v2/e2e/api/blobs/uploads/
expect "start session" 202
loc=$(hdr location)
check_contains "session Location" "/v2/e2e/api/blobs/uploads/" "$loc"
check_eq "session Range" "0-0" "$(hdr range)"
req PATCH "$loc" --data-binary @"$T/c1" -H 'Content-Range: 0-99999' -H 'Content-Type: application/octet-stream'
expect "PATCH chunk 1 (Content-Range without 'bytes')" 202
check_eq "Range after chunk 1" "0-99999" "$(hdr range)"
check_eq "Location stays valid" "$loc" "$(hdr location)"
req PATCH "$loc" --data-binary @"$T/c2" -H 'Content-Range: 150000-249999' -H 'Content-Type: application/octet-stream'
expect "out-of-order chunk" 416
check_eq "Range after refused chunk" "0-99999" "$(hdr range)"
req GET "$loc"
expect "upload status" 204
check_eq "status Range" "0-99999" "$(hdr range)"
req PATCH "$loc" --data-binary @"$T/c2" -H 'Content-Range: bytes 100000-199999' -H 'Content-Type: application/octet-stream'
expect "PATCH chunk 2 (bytes form)" 202
req PATCH "$loc" --data-binary @"$T/c2" -H 'Content-Range: bytes=abc' -H 'Content-Type: application/octet-stream'
expect "garbage Content-Range" 416
req PATCH "$loc" --data-binary @"$T/c2" -H 'Content-Range: 200000-99999999999999999999999' -H 'Content-Type: application/octet-stream'
expect "overflowing Content-Range" 416
req PUT "$loc?digest=$d2" --data-binary @"$T/c3" -H 'Content-Type: application/octet-stream'
expect "PUT with final chunk" 201
check_eq "PUT Docker-Content-Digest" "$d2" "$(hdr docker-content-digest)"
req GET "/v2/e2e/api/blobs/$d2"
check_eq "chunked blob bytes" "$d2" "$(sha "$T/b")"
req PATCH "$loc" --data-binary @"$T/c1"
expect "PATCH after completion" 404 BLOB_UPLOAD_UNKNOWN

# streamed PATCH (docker's way: chunked transfer, no Content-Range) + empty PUT
head -c 500000 /dev/urandom >"$T/blob3"
d3=$(sha "$T/blob3")
req POST /v2/e2e/api/blobs/uploads/
loc=$(hdr location)
req PATCH "$loc" -H 'Transfer-Encoding: chunked' --data-binary @"$T/blob3" -H 'Content-Type: application/octet-stream'
expect "streamed chunked PATCH" 202
check_eq "Range after streamed PATCH" "0-499999" "$(hdr range)"
req PUT "$loc?digest=$d3"
expect "empty PUT" 201

# digest mismatch: nothing stored
head -c 1000 /dev/urandom >"$T/blob4"
req POST /v2/e2e/api/blobs/uploads/
loc=$(hdr location)
req PUT "$loc?digest=$good" --data-binary @"$T/blob4"
expect "PUT with wrong digest" 400 DIGEST_INVALID
req GET "/v2/e2e/api/blobs/$(sha "$T/blob4")"
expect "mismatched content not stored" 404 BLOB_UNKNOWN
req POST "/v2/e2e/api/blobs/uploads/?digest=$good" --data-binary @"$T/blob4"
expect "monolithic POST with wrong digest" 400 DIGEST_INVALID
req PUT "$loc"
expect "PUT without digest" 400 DIGEST_INVALID

# unknown / cancelled sessions
req PATCH /v2/e2e/api/blobs/uploads/00000000-0000-4000-8000-000000000000 --data-binary @"$T/blob4"
expect "PATCH unknown session" 404 BLOB_UPLOAD_UNKNOWN
req PATCH /v2/e2e/api/blobs/uploads/not-a-uuid --data-binary @"$T/blob4"
expect "PATCH malformed session id" 404 BLOB_UPLOAD_UNKNOWN
req POST /v2/e2e/api/blobs/uploads/
loc=$(hdr location)
req DELETE "$loc"
expect "cancel session" 204
req PATCH "$loc" --data-binary @"$T/blob4"
expect "PATCH cancelled session" 404 BLOB_UPLOAD_UNKNOWN
req GET "$loc"
expect "status of cancelled session" 404 BLOB_UPLOAD_UNKNOWN
req POST /v2/e2e/api/blobs/uploads/
loc=$(hdr location)
other=${loc/e2e\/api/e2e\/other}
req PATCH "$other" --data-binary @"$T/blob4"
expect "session used through another repository" 404 BLOB_UPLOAD_UNKNOWN

# ---- cross-repository mount ----
req POST "/v2/e2e/mounted/blobs/uploads/?mount=$d1&from=e2e/api"
expect "mount of a linked blob" 201
check_eq "mount Location" "/v2/e2e/mounted/blobs/$d1" "$(hdr location)"
req HEAD "/v2/e2e/mounted/blobs/$d1"
expect "mounted blob is served" 200
req POST "/v2/e2e/mounted2/blobs/uploads/?mount=$d1&from=e2e/nothere"
expect "mount from a repository without it falls back to a session" 202
req POST "/v2/e2e/mounted3/blobs/uploads/?mount=$d1"
expect "mount without from falls back to a session" 202
req POST "/v2/e2e/mounted3/blobs/uploads/?mount=$d1&from=BAD..name"
expect "mount from an invalid name" 400 NAME_INVALID

# ---- manifests ----
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$T/config"
dc=$(sha "$T/config")
curl -sf -X POST --data-binary @"$T/config" "$R/v2/e2e/api/blobs/uploads/?digest=$dc" >/dev/null
cat >"$T/m1" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"$dc","size":$(stat -c %s "$T/config")},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"$d1","size":100000}],"annotations":{"org.example":"x"}}
JSON
dm1=$(sha "$T/m1")
OCI_M=application/vnd.oci.image.manifest.v1+json
OCI_I=application/vnd.oci.image.index.v1+json
req PUT /v2/e2e/api/manifests/v1 -H "Content-Type: $OCI_M" --data-binary @"$T/m1"
expect "manifest PUT by tag" 201
check_eq "manifest PUT digest" "$dm1" "$(hdr docker-content-digest)"
check_eq "manifest PUT Location" "/v2/e2e/api/manifests/$dm1" "$(hdr location)"
req GET /v2/e2e/api/manifests/v1 -H "Accept: $OCI_M"
expect "manifest GET by tag" 200
check_eq "manifest bytes are exact" "$dm1" "$(sha "$T/b")"
check_eq "manifest Content-Type" "$OCI_M" "$(hdr content-type)"
check_eq "manifest GET digest header" "$dm1" "$(hdr docker-content-digest)"
req HEAD /v2/e2e/api/manifests/v1 -H "Accept: $OCI_M"
expect "manifest HEAD" 200
check_eq "manifest HEAD Content-Length" "$(stat -c %s "$T/m1")" "$(hdr content-length)"
check_eq "manifest HEAD has no body" "HTTP/1.1 200 OK" "$(head_then_get /v2/e2e/api/manifests/v1)"
req GET "/v2/e2e/api/manifests/$dm1"
expect "manifest GET by digest" 200
req GET /v2/e2e/api/manifests/v1 -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
	-H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' -H "Accept: $OCI_M"
expect "manifest GET with several Accept lines" 200
req GET /v2/e2e/api/manifests/v1 -H 'Accept: application/vnd.docker.distribution.manifest.v2+json'
expect "manifest GET with a non-matching Accept is served as stored" 200
check_eq "as stored: Content-Type" "$OCI_M" "$(hdr content-type)"
req GET /v2/e2e/api/manifests/nosuchtag
expect "unknown tag" 404 MANIFEST_UNKNOWN
req GET "/v2/e2e/api/manifests/$good"
expect "unknown manifest digest" 404 MANIFEST_UNKNOWN

# references checked
sed "s/$d1/$good/" "$T/m1" >"$T/m_missing"
req PUT /v2/e2e/api/manifests/missing -H "Content-Type: $OCI_M" --data-binary @"$T/m_missing"
expect "manifest with a missing blob" 400 MANIFEST_BLOB_UNKNOWN
printf '{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":10}]}' "$OCI_I" "$OCI_M" "$good" >"$T/i_missing"
req PUT /v2/e2e/api/manifests/imissing -H "Content-Type: $OCI_I" --data-binary @"$T/i_missing"
expect "index with a missing child" 400 MANIFEST_UNKNOWN
printf '{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":%s,"platform":{"architecture":"amd64","os":"linux"}}]}' \
	"$OCI_I" "$OCI_M" "$dm1" "$(stat -c %s "$T/m1")" >"$T/i1"
req PUT /v2/e2e/api/manifests/index -H "Content-Type: $OCI_I" --data-binary @"$T/i1"
expect "index PUT" 201
req GET /v2/e2e/api/manifests/index -H "Accept: $OCI_I"
check_eq "index bytes exact" "$(sha "$T/i1")" "$(sha "$T/b")"
req GET /v2/e2e/api/manifests/index -H "Accept: $OCI_M" -H 'Accept: application/vnd.docker.distribution.manifest.v2+json'
expect "index asked for by a client that reads no index" 200
check_eq "gets the linux/amd64 manifest" "$dm1" "$(hdr docker-content-digest)"
check_eq "with its own bytes" "$dm1" "$(sha "$T/b")"
req HEAD /v2/e2e/api/manifests/index -H "Accept: $OCI_M"
check_eq "HEAD negotiates the same way" "$dm1" "$(hdr docker-content-digest)"

# bad manifests: nothing stored, clear errors
printf 'not json' >"$T/bad"
req PUT /v2/e2e/api/manifests/bad -H "Content-Type: $OCI_M" --data-binary @"$T/bad"
expect "manifest that is not JSON" 400 MANIFEST_INVALID
head -c $((4 * 1024 * 1024 + 1)) /dev/zero | tr '\0' ' ' >"$T/huge"
req PUT /v2/e2e/api/manifests/bad -H "Content-Type: $OCI_M" --data-binary @"$T/huge"
expect "manifest over 4 MiB" 413 MANIFEST_INVALID
req PUT /v2/e2e/api/manifests/bad -H "Content-Type: $OCI_I" --data-binary @"$T/m1"
expect "mediaType disagrees with Content-Type" 400 MANIFEST_INVALID
sed 's/"size":100000/"size":-5/' "$T/m1" >"$T/neg"
req PUT /v2/e2e/api/manifests/bad -H "Content-Type: $OCI_M" --data-binary @"$T/neg"
expect "negative size" 400 MANIFEST_INVALID
sed 's/"size":100000/"size":99999999999999999999999/' "$T/m1" >"$T/hugesize"
req PUT /v2/e2e/api/manifests/bad -H "Content-Type: $OCI_M" --data-binary @"$T/hugesize"
expect "huge size" 400 MANIFEST_INVALID
sed 's/"size":100000/"size":100001/' "$T/m1" >"$T/wrongsize"
req PUT /v2/e2e/api/manifests/bad -H "Content-Type: $OCI_M" --data-binary @"$T/wrongsize"
expect "size that disagrees with the blob" 400 MANIFEST_INVALID
printf '{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}' >"$T/s1"
req PUT /v2/e2e/api/manifests/bad -H 'Content-Type: application/vnd.docker.distribution.manifest.v1+prettyjws' --data-binary @"$T/s1"
expect "schema1 refused" 400 MANIFEST_INVALID
check_contains "schema1 error explains" "schema1" "$BODY"
req PUT "/v2/e2e/api/manifests/$good" -H "Content-Type: $OCI_M" --data-binary @"$T/m1"
expect "PUT by a digest that does not match" 400 DIGEST_INVALID
req PUT "/v2/e2e/api/manifests/$(printf 'x%.0s' $(seq 1 129))" -H "Content-Type: $OCI_M" --data-binary @"$T/m1"
expect "tag over 128 characters" 400 TAG_INVALID
req PUT "/v2/e2e/api/manifests/-bad" -H "Content-Type: $OCI_M" --data-binary @"$T/m1"
expect "tag with a leading dash" 400 TAG_INVALID
req GET /v2/e2e/api/manifests/bad
expect "no bad manifest was stored" 404 MANIFEST_UNKNOWN

# Docker schema2 manifest and manifest list
DK_M=application/vnd.docker.distribution.manifest.v2+json
DK_L=application/vnd.docker.distribution.manifest.list.v2+json
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"%s","size":100000}]}' \
	"$DK_M" "$dc" "$(stat -c %s "$T/config")" "$d1" >"$T/dm"
req PUT /v2/e2e/api/manifests/docker -H "Content-Type: $DK_M" --data-binary @"$T/dm"
expect "Docker schema2 PUT" 201
printf '{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":%s,"platform":{"architecture":"amd64","os":"linux"}}]}' \
	"$DK_L" "$DK_M" "$(sha "$T/dm")" "$(stat -c %s "$T/dm")" >"$T/dl"
req PUT /v2/e2e/api/manifests/dockerlist -H "Content-Type: $DK_L" --data-binary @"$T/dl"
expect "Docker manifest list PUT" 201
req GET /v2/e2e/api/manifests/dockerlist -H "Accept: $DK_L"
check_eq "manifest list Content-Type" "$DK_L" "$(hdr content-type)"

# ---- artifacts and referrers ----
printf '{}' >"$T/empty"
de=$(sha "$T/empty")
curl -sf -X POST --data-binary @"$T/empty" "$R/v2/e2e/api/blobs/uploads/?digest=$de" >/dev/null
subject=sha256:$(printf '1%.0s' $(seq 1 64))
printf '{"schemaVersion":2,"mediaType":"%s","artifactType":"application/vnd.example.sbom","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2},"layers":[{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2}],"subject":{"mediaType":"%s","digest":"%s","size":123},"annotations":{"org.opencontainers.image.created":"2026-01-01T00:00:00Z"}}' \
	"$OCI_M" "$de" "$de" "$OCI_M" "$subject" >"$T/a1"
req PUT /v2/e2e/api/manifests/sbom -H "Content-Type: $OCI_M" --data-binary @"$T/a1"
expect "artifact with a subject not pushed yet" 201
check_eq "OCI-Subject header" "$subject" "$(hdr oci-subject)"
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.example.sig.config","digest":"%s","size":2},"layers":[{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2}],"subject":{"mediaType":"%s","digest":"%s","size":123}}' \
	"$OCI_M" "$de" "$de" "$OCI_M" "$subject" >"$T/a2"
req PUT "/v2/e2e/api/manifests/$(sha "$T/a2")" -H "Content-Type: $OCI_M" --data-binary @"$T/a2"
expect "second referrer by digest" 201
req GET "/v2/e2e/api/referrers/$subject"
expect "referrers" 200
check_eq "referrers Content-Type" "$OCI_I" "$(hdr content-type)"
ref_summary=$(/usr/bin/python3 -c '
import json,sys
d=json.load(open(sys.argv[1]))
print(d["mediaType"], len(d["manifests"]), " ".join(sorted(m.get("artifactType","-") for m in d["manifests"])),
      [m for m in d["manifests"] if m.get("artifactType")=="application/vnd.example.sbom"][0]["annotations"]["org.opencontainers.image.created"])' "$T/b")
check_eq "referrers list" "$OCI_I 2 application/vnd.example.sbom application/vnd.example.sig.config 2026-01-01T00:00:00Z" "$ref_summary"
req GET "/v2/e2e/api/referrers/$subject?artifactType=application/vnd.example.sbom"
check_eq "filtered referrers header" "artifactType" "$(hdr oci-filters-applied)"
check_eq "filtered referrers count" 1 "$(/usr/bin/python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["manifests"]))' "$T/b")"
req GET "/v2/e2e/api/referrers/$good"
expect "referrers of a digest with none" 200
check_contains "empty referrers index" '"manifests":[]' "$BODY"
req GET "/v2/e2e/api/referrers/sha256:nothex"
expect "referrers of a malformed digest" 400 DIGEST_INVALID

# ---- tags list and catalog pagination ----
for t in t1 t2 t3 t4 t5; do
	curl -sf -X PUT -H "Content-Type: $OCI_M" --data-binary @"$T/m1" "$R/v2/e2e/tags/manifests/$t" >/dev/null ||
		curl -sf -X POST --data-binary @"$T/config" "$R/v2/e2e/tags/blobs/uploads/?digest=$dc" >/dev/null
done
curl -sf -X POST "$R/v2/e2e/tags/blobs/uploads/?mount=$d1&from=e2e/api" >/dev/null
curl -sf -X POST "$R/v2/e2e/tags/blobs/uploads/?mount=$dc&from=e2e/api" >/dev/null
for t in t1 t2 t3 t4 t5; do
	curl -sf -X PUT -H "Content-Type: $OCI_M" --data-binary @"$T/m1" "$R/v2/e2e/tags/manifests/$t" >/dev/null
done
req GET /v2/e2e/tags/tags/list
check_eq "all tags in order" '{"name":"e2e/tags","tags":["t1","t2","t3","t4","t5"]}' "$BODY"
req GET '/v2/e2e/tags/tags/list?n=2'
check_eq "first page" '{"name":"e2e/tags","tags":["t1","t2"]}' "$BODY"
check_eq "Link header" '</v2/e2e/tags/tags/list?n=2&last=t2>; rel="next"' "$(hdr link)"
req GET '/v2/e2e/tags/tags/list?n=2&last=t2'
check_eq "second page" '{"name":"e2e/tags","tags":["t3","t4"]}' "$BODY"
req GET '/v2/e2e/tags/tags/list?n=2&last=t4'
check_eq "last page" '{"name":"e2e/tags","tags":["t5"]}' "$BODY"
check_eq "no Link on the last page" "" "$(hdr link)"
req GET '/v2/e2e/tags/tags/list?n=-1'
expect "n=-1" 400 PAGINATION_NUMBER_INVALID
req GET '/v2/e2e/tags/tags/list?n=abc'
expect "n=abc" 400 PAGINATION_NUMBER_INVALID
req GET '/v2/e2e/tags/tags/list?n=99999999999'
expect "n=99999999999 is clamped" 200
check_eq "clamped page has all tags" '{"name":"e2e/tags","tags":["t1","t2","t3","t4","t5"]}' "$BODY"
req GET '/v2/e2e/tags/tags/list?n=99999999999999999999999999'
expect "n beyond 64 bits is clamped too" 200
req GET '/v2/_catalog?n=1'
expect "catalog page" 200
check_contains "catalog Link" 'rel="next"' "$(hdr link)"
req GET '/v2/_catalog'
check_contains "catalog lists repositories" '"e2e/api"' "$BODY"

# ---- deletes ----
req DELETE /v2/e2e/tags/manifests/t1
expect "delete by tag" 202
req GET /v2/e2e/tags/tags/list
check_eq "only that tag went" '{"name":"e2e/tags","tags":["t2","t3","t4","t5"]}' "$BODY"
req GET "/v2/e2e/tags/manifests/$dm1"
expect "manifest survives a tag delete" 200
req DELETE "/v2/e2e/tags/manifests/$dm1"
expect "delete by digest" 202
req GET /v2/e2e/tags/tags/list
check_eq "tags of a deleted manifest are gone" '{"name":"e2e/tags","tags":[]}' "$BODY"
req DELETE "/v2/e2e/tags/manifests/$dm1"
expect "delete again" 404 MANIFEST_UNKNOWN
req DELETE "/v2/e2e/mounted/blobs/$d1"
expect "blob delete" 202
req GET "/v2/e2e/mounted/blobs/$d1"
expect "deleted blob is gone from that repository" 404 BLOB_UNKNOWN
req GET "/v2/e2e/api/blobs/$d1"
expect "and still served by the others" 200

# ---- hostile clients ----
# a PUT whose body is shorter than declared, then the client hangs up
/usr/bin/python3 - "$BERTH_PORT" "$loc" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(("PUT %s?digest=sha256:%s HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" % (sys.argv[2], "0"*64)).encode() + b"x"*10)
s.close()
PY
req GET "$loc"
expect "session intact after a short PUT" 204
check_eq "short PUT stored nothing" "0-0" "$(hdr range)"
# a client that disconnects in the middle of a large PATCH
head -c 30000000 /dev/urandom >"$T/big"
curl -s -o /dev/null -X PATCH --limit-rate 5M --max-time 1 --data-binary @"$T/big" "$R$loc" || true
req GET "$loc"
expect "session still resumable after a disconnect" 204
# bodies stream into the session (issue 13): what arrived before the hang-up is kept, never more than was sent
rng=$(hdr range)
check "session keeps at most what was sent: $rng" bash -c '[[ $1 =~ ^0-([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -lt 30000000 ]' _ "$rng"
# a TLS ClientHello on the plain-HTTP port gets an HTTP 400 status line (docker falls back to HTTP on that)
first=$(/usr/bin/python3 - "$BERTH_PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(5)
s.sendall(bytes.fromhex("16030100c4010000c00303") + bytes(32) + b"\x00\x00\x02\x13\x01\x01\x00" + bytes(150))
data = b""
try:
    while b"\r\n" not in data:
        chunk = s.recv(1024)
        if not chunk: break
        data += chunk
except Exception: pass
print(data.split(b"\r\n")[0].decode(errors="replace"))
PY
)
check_eq "TLS on plain port answered with HTTP 400" "HTTP/1.1 400 Bad Request" "$first"
req GET /v2/
expect "server still serving" 200

finish
