#!/usr/bin/env bash
# shellcheck disable=SC1091,SC2317  # sourced libs; helpers are called via check
# podman (as root, vfs storage in private temp dirs) against a plain-HTTP registry:
# load, tag, push (docker v2s2 and OCI), rmi, pull, manifest create/add/push --all and a
# pull of the list with --arch arm64; pulled content is compared with what was built.
#
#   REGISTRY=127.0.0.1:5055 tests/e2e/test_podman.sh
#
# Env: REGISTRY (required), REGISTRY_B (a second node of the same registry: every push goes to
# REGISTRY, every pull and check reads through REGISTRY_B; default REGISTRY), E2E_PREFIX, E2E_KEEP=1, E2E_VERBOSE=1.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/../../scripts/lib/images.sh"

need_registry
R=$REGISTRY
RB=${REGISTRY_B:-$R}
P=$(e2e_prefix)
e2e_tmpdir T
U="podman $P $$ $(date +%s%N)"
TLS=(--tls-verify=false)
mkdir -p "$T/root" "$T/runroot" "$T/tmp" "$T/libpod"
export TMPDIR=$T/tmp # podman stages blobs in $TMPDIR (/var/tmp otherwise)
PM=(podman --storage-driver vfs --root "$T/root" --runroot "$T/runroot" --tmpdir "$T/libpod"
	--events-backend none --cgroup-manager cgroupfs)
pm() { "${PM[@]}" "$@"; }
e2e_podman_clean() { pm rmi -a -f >/dev/null 2>&1 || true; }
on_exit e2e_podman_clean # vfs storage lives in $T anyway

b() { printf '%s\n' "$RB${1#"$R"}"; } # REF pushed through REGISTRY -> the same REF read through REGISTRY_B
# reg_raw REF and reg_digest REF read REF (named on REGISTRY) through REGISTRY_B
reg_raw() { skopeo inspect "${TLS[@]}" --raw "docker://$(b "$1")"; }
reg_digest() { reg_raw "$1" | sha256sum | sed 's/^/sha256:/; s/ .*//'; }
img_field() { pm image inspect --format "$2" "$1"; }
gunzip_sha() { gzip -dc | sha256sum | sed 's/^/sha256:/; s/ .*//'; }

# layer_diffids REF: sha256 of every uncompressed layer the registry serves for REF
layer_diffids() {
	local ref=$1 d repo=${1%:*}
	repo=${repo%@*}
	for d in $(reg_raw "$ref" | jq -r '.layers[].digest'); do
		curl -sf "http://$RB/v2/${repo#"$R"/}/blobs/$d" | gunzip_sha
	done
}

########################################################################
log "1. load -> tag -> push -> rmi -> pull"
REPO=$R/$P/podman-bb
img_busybox "$T/bb" amd64 "$U bb"
img_docker_archive "$T/bb" "$T/bb.tar" "localhost/$P/bb:src"
CFG=$(img_config_digest "$T/bb")
OUT=$(pm load -i "$T/bb.tar" 2>&1 || true)
check_contains "podman load" "localhost/$P/bb:src" "$OUT"
check_eq "loaded image ID = config digest" "${CFG#sha256:}" "$(img_field "localhost/$P/bb:src" '{{.Id}}' 2>&1)"
check "tag" pm tag "localhost/$P/bb:src" "$REPO:v1"
check "push" pm push "${TLS[@]}" --digestfile "$T/d1" "$REPO:v1"
MD=$(cat "$T/d1" 2>/dev/null || echo none)
check_eq "registry serves the digest podman reported" "$MD" "$(reg_digest "$REPO:v1" 2>&1)"
check_eq "pushed config = built config" "$CFG" "$(reg_raw "$REPO:v1" 2>&1 | jq -r .config.digest 2>&1)"
check "pushed config bytes" cmp <(curl -sf "http://$RB/v2/$P/podman-bb/blobs/$CFG") \
	"$(img_blob_path "$T/bb" "$CFG")"
check_eq "pushed layers uncompress to the built diff_ids" "$(img_diff_ids "$T/bb")" \
	"$(layer_diffids "$REPO:v1" 2>&1)"
check "rmi" pm rmi "$REPO:v1" "localhost/$P/bb:src"
check_fail "image gone" pm image exists "$REPO:v1"
REPOB=$(b "$REPO")
check "pull" pm pull "${TLS[@]}" -q "$REPOB:v1"
check_eq "pulled image ID" "${CFG#sha256:}" "$(img_field "$REPOB:v1" '{{.Id}}' 2>&1)"
check_eq "pulled image digest" "$MD" "$(img_field "$REPOB:v1" '{{.Digest}}' 2>&1)"
check_eq "pulled diff_ids" "$(img_diff_ids "$T/bb")" \
	"$(img_field "$REPOB:v1" '{{range .RootFS.Layers}}{{println .}}{{end}}' 2>&1 | sed '/^$/d')"
check "pull by digest" pm pull "${TLS[@]}" -q "$REPOB@$MD"
[ "$REPOB" = "$REPO" ] || pm tag "$REPOB:v1" "$REPO:v1" # the pushes below go through REGISTRY
check "re-push unchanged" pm push "${TLS[@]}" --digestfile "$T/d1b" "$REPO:v1"
check_eq "re-push: same digest" "$MD" "$(cat "$T/d1b" 2>&1)"

########################################################################
log "2. push --format oci"
check "push --format oci" pm push "${TLS[@]}" --format oci --digestfile "$T/d2" "$REPO:v1" "docker://$REPO:oci"
RAW=$(reg_raw "$REPO:oci" 2>&1 || true)
check_eq "OCI manifest stored" "application/vnd.oci.image.manifest.v1+json" \
	"$(jq -r '.mediaType // "none"' <<<"$RAW" 2>&1)"
check_eq "OCI manifest digest" "$(cat "$T/d2" 2>&1)" "$(reg_digest "$REPO:oci" 2>&1)"
check_eq "OCI layers uncompress to the built diff_ids" "$(img_diff_ids "$T/bb")" \
	"$(layer_diffids "$REPO:oci" 2>&1)"
check "pull the OCI tag" pm pull "${TLS[@]}" -q "$REPOB:oci"
check_eq "OCI pull image ID" "${CFG#sha256:}" "$(img_field "$REPOB:oci" '{{.Id}}' 2>&1)"

########################################################################
log "3. manifest create / add / push --all; pull --arch arm64"
img_busybox "$T/arm" arm64 "$U arm"
img_docker_archive "$T/arm" "$T/arm.tar" "localhost/$P/arm:src"
ARMCFG=$(img_config_digest "$T/arm")
pm load -i "$T/arm.tar" >/dev/null 2>&1
LIST=localhost/$P/list:v1
ML=$R/$P/podman-ml:v1
check "manifest create" pm manifest create "$LIST"
# amd64 straight from the registry, arm64 from local storage (push --all uploads it)
check "manifest add (registry image, amd64)" pm manifest add "${TLS[@]}" "$LIST" "docker://$REPOB:v1"
check "manifest add (local image, arm64)" pm manifest add "$LIST" "containers-storage:localhost/$P/arm:src"
INS=$(pm manifest inspect "$LIST" 2>&1 || true)
check_eq "local list has both platforms" "linux/amd64 linux/arm64" \
	"$(jq -r '[.manifests[] | "\(.platform.os)/\(.platform.architecture)"] | sort | join(" ")' <<<"$INS" 2>&1)"
check "manifest push --all" pm manifest push "${TLS[@]}" --all --digestfile "$T/dl" "$LIST" "docker://$ML"
LMD=$(cat "$T/dl" 2>/dev/null || echo none)
RAW=$(reg_raw "$ML" 2>&1 || true)
check_eq "registry serves the pushed list" "$LMD" "$(reg_digest "$ML" 2>&1)"
# podman keeps a docker manifest list locally and pushes it as an OCI index (4.3 default)
check_contains "list media type is a list/index" "$(jq -r .mediaType <<<"$RAW" 2>&1)" \
	"application/vnd.oci.image.index.v1+json application/vnd.docker.distribution.manifest.list.v2+json"
check_eq "registry list has both platforms" "linux/amd64 linux/arm64" \
	"$(jq -r '[.manifests[] | "\(.platform.os)/\(.platform.architecture)"] | sort | join(" ")' <<<"$RAW" 2>&1)"
AMD_CHILD=$(jq -r '.manifests[] | select(.platform.architecture=="amd64") | .digest' <<<"$RAW" 2>/dev/null || true)
ARM_CHILD=$(jq -r '.manifests[] | select(.platform.architecture=="arm64") | .digest' <<<"$RAW" 2>/dev/null || true)
check_eq "amd64 entry is the pushed image" "$MD" "$AMD_CHILD"
check_eq "arm64 child is retrievable by digest in the list's repo" "$ARMCFG" \
	"$(reg_raw "$R/$P/podman-ml@$ARM_CHILD" 2>&1 | jq -r .config.digest 2>&1)"
check_eq "arm64 child layers uncompress to the built diff_ids" "$(img_diff_ids "$T/arm")" \
	"$(layer_diffids "$R/$P/podman-ml@$ARM_CHILD" 2>&1)"
pm rmi -a -f >/dev/null 2>&1 || true
check_fail "no local arm64 image" pm image exists "localhost/$P/arm:src"
MLB=$(b "$ML")
check "pull --arch arm64" pm pull "${TLS[@]}" -q --arch arm64 "$MLB"
check_eq "arm64 image pulled" "arm64 ${ARMCFG#sha256:}" \
	"$(img_field "$MLB" '{{.Architecture}} {{.Id}}' 2>&1)"
check_eq "pulled image records the list digest" "$LMD" "$(img_field "$MLB" '{{.Digest}}' 2>&1)"
check_contains "pulled image records the arm64 instance digest" "$RB/$P/podman-ml@$ARM_CHILD" \
	"$(img_field "$MLB" '{{json .RepoDigests}}' 2>&1)"
check "pull --arch amd64" pm pull "${TLS[@]}" -q --arch amd64 "$MLB"
check_eq "amd64 image pulled" "amd64 ${CFG#sha256:}" "$(img_field "$MLB" '{{.Architecture}} {{.Id}}' 2>&1)"

finish
