#!/usr/bin/env bash
# shellcheck disable=SC1091,SC2317  # sourced libs; helpers are called via check
# Storage quotas with real clients: skopeo and docker pushes that would exceed a quota are refused at the blob
# upload, before any manifest, with an OCI DENIED error whose message names the quota, its limit and the usage
# (and the clients print it); usage counts each blob once per repository; it falls after a blob DELETE; raising or
# deleting the quota lets the same push through.  `berth quota set|list|del` drive it while the server runs.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/server.sh"
. "$HERE/../../scripts/lib/images.sh"
. "$HERE/../../scripts/lib/dockerd.sh"

e2e_tmpdir T
D=$T/data
berth_start "$D" --no-auth
on_exit berth_kill
R=$REGISTRY
TLS=(--dest-tls-verify=false)
Q() { "$BERTH_BIN" quota "$@" --data "$D"; }
# used PATTERN: the bytes `berth quota list` reports as used
used() { Q list | awk -v p="$1" '$1 == p { gsub(/[()]/, "", $(NF-3)); print $(NF-3) }'; }
status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

log "1. skopeo: a push over the quota is refused at the blob upload, with the quota in the message"
img_large "$T/big" 4 one # one 4 MiB layer + config
check "quota set" Q set 'team/*' 2M
check_contains "quota list shows the limit" "team/*" "$(Q list)"
OUT=$(skopeo copy "${TLS[@]}" "oci:$T/big:latest" "docker://$R/team/big:1" 2>&1 || true)
check_contains "skopeo shows the quota, its limit and the usage" "quota of team/* exceeded: limit 2.0 MiB, 0 B used" "$OUT"
check_contains "skopeo shows an OCI DENIED" "denied" "$OUT"
log "skopeo said: $(grep -o 'denied.*' <<<"$OUT" | head -n1)"
check_eq "no manifest was stored" 404 "$(status "http://$R/v2/team/big/manifests/1")"
check_eq "the refused layer is not in the repository" 404 \
	"$(status -I "http://$R/v2/team/big/blobs/$(img_layer_digests "$T/big")")"
BODY=$(curl -s -X POST --data-binary @"$(img_blob_path "$T/big" "$(img_layer_digests "$T/big")")" \
	"http://$R/v2/team/big/blobs/uploads/?digest=$(img_layer_digests "$T/big")")
check_eq "the error body is OCI DENIED with the message" "DENIED quota of team/* exceeded" \
	"$(jq -r '.errors[0] | "\(.code) \(.message)"' <<<"$BODY" | cut -c1-31)"
check_eq "usage stays 0 after refusals" 0 "$(used 'team/*')"

log "2. raised quota: the push succeeds; usage = the image's blobs, once per repository"
check "quota raised" Q set 'team/*' 10M
check "skopeo push under the quota" skopeo copy "${TLS[@]}" "oci:$T/big:latest" "docker://$R/team/big:1"
# what the registry holds (skopeo may recompress the layer): config + layers of the manifest it stored
MAN=$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$R/v2/team/big/manifests/1")
IMG_BYTES=$(jq '[.config.size] + [.layers[].size] | add' <<<"$MAN")
LAYER=$(jq -r '.layers[0].digest' <<<"$MAN")
LAYER_BYTES=$(jq '.layers[0].size' <<<"$MAN")
check_eq "usage = layer + config" "$IMG_BYTES" "$(used 'team/*')"
check "the same image into a second repository" skopeo copy "${TLS[@]}" "oci:$T/big:latest" "docker://$R/team/big2:1"
check_eq "usage counts the blobs once per repository" "$((2 * IMG_BYTES))" "$(used 'team/*')"
OUT=$(skopeo copy "${TLS[@]}" "oci:$T/big:latest" "docker://$R/team/big3:1" 2>&1 || true)
check_contains "a third copy exceeds 10 MiB (cross-repository mount refused too)" "quota of team/* exceeded" "$OUT"
check_eq "no manifest in the third repository" 404 "$(status "http://$R/v2/team/big3/manifests/1")"
check "a per-repository quota" Q set team/big2 1K
check_contains "quota list: per-repository usage" "team/big2" "$(Q list)"
check_eq "team/big2's usage" "$IMG_BYTES" "$(used team/big2)"

log "3. usage after deletes"
check_eq "blob DELETE in team/big2" 202 "$(status -X DELETE "http://$R/v2/team/big2/blobs/$LAYER")"
check_eq "team/big2's usage drops by the layer" "$((IMG_BYTES - LAYER_BYTES))" "$(used team/big2)"
check_eq "team/*'s usage drops by the layer" "$((2 * IMG_BYTES - LAYER_BYTES))" "$(used 'team/*')"
check "quota del" Q del team/big2
check_fail "quota del of a missing quota fails" Q del team/big2
check_fail "quota set refuses a bad size" Q set 'team/*' 12Q
check_fail "quota set refuses a bad pattern" Q set 'Team Bad' 1G

log "4. docker push over the quota: refused with the quota in docker's output"
e2e_tmpdir DT
export DOCKERD_EXTRA_ARGS="--insecure-registry $R ${DOCKERD_EXTRA_ARGS:-}"
on_exit dockerd_stop "$DT/d"
dockerd_start "$DT/d" || {
	echo "cannot start dockerd" >&2
	exit 2
}
img_busybox "$T/bb" amd64 "quota $$"
img_docker_archive "$T/bb" "$T/bb.tar"
CFG=$(img_config_digest "$T/bb")
"$DOCKER" load -i "$T/bb.tar" >/dev/null
"$DOCKER" tag "$CFG" "$R/small/bb:1"
check "quota of 100K on small/*" Q set 'small/*' 100K
OUT=$("$DOCKER" push "$R/small/bb:1" 2>&1 || true)
check_contains "docker push shows the quota" "denied: quota of small/* exceeded: limit 100.0 KiB" "$OUT"
log "docker said: $(grep 'denied' <<<"$OUT" | head -n1)"
check_eq "no manifest was stored by docker" 404 "$(status "http://$R/v2/small/bb/manifests/1")"
check "quota del" Q del 'small/*'
OUT=$("$DOCKER" push "$R/small/bb:1" 2>&1 || true)
check_contains "docker push succeeds without the quota" "digest: sha256:" "$OUT"
finish
