#!/usr/bin/env bash
# shellcheck disable=SC1091,SC2317  # sourced libs; helpers are called via check
# skopeo against a plain-HTTP registry: OCI round-trip, multi-arch index (--all),
# docker-archive round-trip, inspect --raw, list-tags, delete by digest, sync.
#
#   REGISTRY=127.0.0.1:5055 tests/e2e/test_skopeo.sh
#
# Env: REGISTRY (required), REGISTRY_B (a second node of the same registry: pushes, copies into the
# registry and deletes go to REGISTRY, reads, pulls and sync sources go through REGISTRY_B; default
# REGISTRY), E2E_PREFIX (repo prefix), E2E_KEEP=1, E2E_VERBOSE=1.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/../../scripts/lib/images.sh"

need_registry
R=$REGISTRY
RB=${REGISTRY_B:-$R}
P=$(e2e_prefix)
e2e_tmpdir T
# skopeo keeps a blob-info cache and mounts/skips known blobs: every run uses fresh
# content so that the uploads are real.
U="skopeo $P $$ $(date +%s%N)"
SK=(skopeo --command-timeout 300s)
TLS=(--tls-verify=false)
CP=(copy --quiet --src-tls-verify=false --dest-tls-verify=false)

sha() { sha256sum "$1" | cut -d' ' -f1; }
b() { printf '%s\n' "$RB${1#"$R"}"; } # REF pushed through REGISTRY -> the same REF read through REGISTRY_B

# same_blobs A B: every blob of OCI layout A exists in B with identical bytes
# (and the file name is the sha256 of the content); prints the differences
same_blobs() {
	local a=$1 b=$2 f n=0 bad=0
	for f in "$a"/blobs/sha256/*; do
		n=$((n + 1))
		if [ ! -f "$b/blobs/sha256/${f##*/}" ]; then
			echo "missing in $b: ${f##*/}"; bad=1
		elif ! cmp -s "$f" "$b/blobs/sha256/${f##*/}"; then
			echo "differs: ${f##*/}"; bad=1
		elif [ "$(sha "$b/blobs/sha256/${f##*/}")" != "${f##*/}" ]; then
			echo "content does not hash to its name: ${f##*/}"; bad=1
		fi
	done
	echo "$n blobs compared"
	return $bad
}

# shellcheck disable=SC2012
blob_list() { (cd "$1/blobs/sha256" && ls | sort); }

########################################################################
log "1. oci: -> docker:// -> oci: round trip"
REPO1=$R/$P/skopeo-rt
img_busybox "$T/src" amd64 "$U rt"
SRC_MD=$(img_manifest_digest "$T/src")
check "copy oci -> registry" "${SK[@]}" "${CP[@]}" --preserve-digests \
	oci:"$T/src":latest docker://"$REPO1":v1
"${SK[@]}" inspect "${TLS[@]}" --raw docker://"$(b "$REPO1")":v1 >"$T/raw1" || true
check "inspect --raw returns the pushed manifest bytes" \
	cmp "$T/raw1" "$(img_blob_path "$T/src" "$SRC_MD")"
INS=$("${SK[@]}" inspect "${TLS[@]}" docker://"$(b "$REPO1")":v1 || true)
check_eq "inspect Digest" "$SRC_MD" "$(jq -r .Digest <<<"$INS" 2>&1)"
check_eq "inspect Layers" "$(img_layer_digests "$T/src")" "$(jq -r '.Layers[]' <<<"$INS" 2>&1)"
check_eq "inspect Architecture" amd64 "$(jq -r .Architecture <<<"$INS" 2>&1)"
"${SK[@]}" inspect "${TLS[@]}" --config --raw docker://"$(b "$REPO1")":v1 >"$T/cfg1" || true
check "inspect --config --raw returns the config bytes" \
	cmp "$T/cfg1" "$(img_blob_path "$T/src" "$(img_config_digest "$T/src")")"
check "copy registry -> oci" "${SK[@]}" "${CP[@]}" --preserve-digests \
	docker://"$(b "$REPO1")":v1 oci:"$T/back":v1
check_eq "round-trip manifest digest" "$SRC_MD" "$(img_manifest_digest "$T/back" 2>&1)"
check "round-trip blobs byte-for-byte" same_blobs "$T/src" "$T/back"
check_eq "round-trip blob set" "$(blob_list "$T/src")" "$(blob_list "$T/back" 2>&1)"
check "copy by digest registry -> oci" "${SK[@]}" "${CP[@]}" \
	docker://"$(b "$REPO1")@$SRC_MD" oci:"$T/bydigest":x
check_eq "by-digest manifest digest" "$SRC_MD" "$(img_manifest_digest "$T/bydigest" 2>&1)"
check "registry -> registry copy (second tag, same repo)" "${SK[@]}" "${CP[@]}" \
	docker://"$(b "$REPO1")":v1 docker://"$REPO1":v2
check "registry -> registry copy (other repo, cross-repo blobs)" "${SK[@]}" "${CP[@]}" \
	docker://"$(b "$REPO1")":v1 docker://"$R/$P/skopeo-rt2":v1
check_eq "other repo has identical manifest" "$SRC_MD" \
	"$("${SK[@]}" inspect "${TLS[@]}" --format '{{.Digest}}' docker://"$RB/$P/skopeo-rt2":v1 2>&1)"
TAGS=$("${SK[@]}" list-tags "${TLS[@]}" docker://"$(b "$REPO1")" 2>&1 || true)
check_eq "list-tags" "v1 v2" "$(jq -r '.Tags | sort | join(" ")' <<<"$TAGS" 2>&1)"
check_eq "list-tags Repository" "$(b "$REPO1")" "$(jq -r .Repository <<<"$TAGS" 2>&1)"
check_fail "inspect of a missing tag fails" "${SK[@]}" inspect "${TLS[@]}" docker://"$(b "$REPO1")":nope
check_fail "inspect of a missing repository fails" \
	"${SK[@]}" inspect "${TLS[@]}" docker://"$RB/$P/does-not-exist":v1

########################################################################
log "2. copy --all of a two-platform OCI index"
REPO2=$R/$P/skopeo-idx
img_index "$T/idx" "$U idx"
IDX_MD=$(img_manifest_digest "$T/idx")
check "copy --all oci index -> registry" "${SK[@]}" "${CP[@]}" --all --preserve-digests \
	oci:"$T/idx":latest docker://"$REPO2":multi
"${SK[@]}" inspect "${TLS[@]}" --raw docker://"$(b "$REPO2")":multi >"$T/rawidx" || true
check "inspect --raw returns the index bytes" cmp "$T/rawidx" "$(img_blob_path "$T/idx" "$IDX_MD")"
ARM_MD=$(jq -r '.manifests[] | select(.platform.architecture=="arm64") | .digest' \
	"$(img_blob_path "$T/idx" "$IDX_MD")")
AMD_MD=$(jq -r '.manifests[] | select(.platform.architecture=="amd64") | .digest' \
	"$(img_blob_path "$T/idx" "$IDX_MD")")
# skopeo inspect's .Digest is the index digest even with --override-arch; identify the
# chosen child by its config instead
cfg_of() { jq -r .config.digest "$(img_blob_path "$T/idx" "$1")"; }
chosen_cfg() {
	"${SK[@]}" --override-arch "$1" inspect "${TLS[@]}" --config --raw docker://"$(b "$REPO2")":multi \
		| sha256sum | cut -d' ' -f1
}
check_eq "platform choice arm64 (--override-arch)" "$(cfg_of "$ARM_MD")" "sha256:$(chosen_cfg arm64 2>&1)"
check_eq "platform choice amd64 (--override-arch)" "$(cfg_of "$AMD_MD")" "sha256:$(chosen_cfg amd64 2>&1)"
check_eq "inspect Architecture with --override-arch arm64" arm64 \
	"$("${SK[@]}" --override-arch arm64 inspect "${TLS[@]}" --format '{{.Architecture}}' \
		docker://"$(b "$REPO2")":multi 2>&1)"
"${SK[@]}" inspect "${TLS[@]}" --raw docker://"$(b "$REPO2")@$ARM_MD" >"$T/rawarm" || true
check "child manifest by digest" cmp "$T/rawarm" "$(img_blob_path "$T/idx" "$ARM_MD")"
check "copy --all registry -> oci" "${SK[@]}" "${CP[@]}" --all --preserve-digests \
	docker://"$(b "$REPO2")":multi oci:"$T/idxback":multi
check_eq "index round-trip digest" "$IDX_MD" "$(img_manifest_digest "$T/idxback" 2>&1)"
check "index round-trip blobs byte-for-byte" same_blobs "$T/idx" "$T/idxback"
check_eq "index round-trip blob set" "$(blob_list "$T/idx")" "$(blob_list "$T/idxback" 2>&1)"

########################################################################
log "3. docker-archive: -> registry -> docker-archive:"
REPO3=$R/$P/skopeo-da
img_busybox2 "$T/two" amd64 "$U da"
img_docker_archive "$T/two" "$T/two.tar"
check "copy docker-archive -> registry" "${SK[@]}" "${CP[@]}" \
	docker-archive:"$T/two.tar" docker://"$REPO3":v1
RAW3=$("${SK[@]}" inspect "${TLS[@]}" --raw docker://"$(b "$REPO3")":v1 2>&1 || true)
check_eq "docker-archive push is a docker v2 schema 2 manifest" \
	"application/vnd.docker.distribution.manifest.v2+json 2" \
	"$(jq -r '"\(.mediaType) \(.layers | length)"' <<<"$RAW3" 2>&1)"
check_eq "pushed config digest = archive config" "$(img_config_digest "$T/two")" \
	"$(jq -r .config.digest <<<"$RAW3" 2>&1)"
check "copy registry -> docker-archive" "${SK[@]}" "${CP[@]}" \
	docker://"$(b "$REPO3")":v1 docker-archive:"$T/out.tar":"$P"/out:v1
mkdir -p "$T/outx"
tar -C "$T/outx" -xf "$T/out.tar" 2>/dev/null || true
OUTMAN=$(cat "$T/outx/manifest.json" 2>/dev/null || echo '[]')
check_eq "archive RepoTags" "docker.io/$P/out:v1" "$(jq -r '.[0].RepoTags[0]' <<<"$OUTMAN" 2>&1)"
layer_hashes() {
	local m=$1 l
	for l in $(jq -r '.[0].Layers[]' <<<"$m"); do echo "sha256:$(sha "$T/outx/$l")"; done
}
check_eq "archive layers = original diff_ids" "$(img_diff_ids "$T/two")" \
	"$(layer_hashes "$OUTMAN" 2>&1)"
TOPL=$(jq -r '.[0].Layers[1]' <<<"$OUTMAN")
check_eq "top layer carries the unique file" "$U da" \
	"$(tar -xOf "$T/outx/$TOPL" ./etc/berth-extra 2>&1)"
BASEL=$(jq -r '.[0].Layers[0]' <<<"$OUTMAN")
check_eq "base layer carries busybox" "$(sha /bin/busybox)" \
	"$(tar -xOf "$T/outx/$BASEL" ./bin/busybox 2>&1 | sha256sum | cut -d' ' -f1)"

########################################################################
log "4. delete by digest"
REPO4=$R/$P/skopeo-del
img_busybox "$T/del" amd64 "$U del"
img_busybox "$T/keep" amd64 "$U keep"
DEL_MD=$(img_manifest_digest "$T/del")
check "push a" "${SK[@]}" "${CP[@]}" oci:"$T/del":latest docker://"$REPO4":a
check "push b (same manifest)" "${SK[@]}" "${CP[@]}" oci:"$T/del":latest docker://"$REPO4":b
check "push c (other manifest)" "${SK[@]}" "${CP[@]}" oci:"$T/keep":latest docker://"$REPO4":c
check_eq "tags before delete" "a b c" \
	"$("${SK[@]}" list-tags "${TLS[@]}" docker://"$REPO4" 2>&1 | jq -r '.Tags | sort | join(" ")' 2>&1)"
check "delete by digest" "${SK[@]}" delete "${TLS[@]}" docker://"$REPO4@$DEL_MD"
check_eq "tags after delete (both tags of the digest gone)" "c" \
	"$("${SK[@]}" list-tags "${TLS[@]}" docker://"$(b "$REPO4")" 2>&1 | jq -r '.Tags | sort | join(" ")' 2>&1)"
check_fail "inspect deleted tag a fails" "${SK[@]}" inspect "${TLS[@]}" docker://"$(b "$REPO4")":a
check_fail "inspect deleted tag b fails" "${SK[@]}" inspect "${TLS[@]}" docker://"$(b "$REPO4")":b
check_fail "inspect deleted digest fails" "${SK[@]}" inspect "${TLS[@]}" --raw docker://"$(b "$REPO4")@$DEL_MD"
check_eq "other tag survives" "$(img_manifest_digest "$T/keep")" \
	"$("${SK[@]}" inspect "${TLS[@]}" --format '{{.Digest}}' docker://"$(b "$REPO4")":c 2>&1)"
check_fail "delete of the same digest again fails" \
	"${SK[@]}" delete "${TLS[@]}" docker://"$(b "$REPO4")@$DEL_MD"

########################################################################
log "5. sync"
# registry -> dir: every tag of the repository
check "sync docker -> dir" "${SK[@]}" sync --src docker --dest dir --src-tls-verify=false \
	"$(b "$REPO1")" "$T/sync"
SYNCD=$T/sync/skopeo-rt  # skopeo names the dirs after the last path component
check "sync wrote v1 and v2" test -f "$SYNCD:v1/manifest.json" -a -f "$SYNCD:v2/manifest.json"
check "synced v1 manifest bytes" cmp "$SYNCD:v1/manifest.json" "$(img_blob_path "$T/src" "$SRC_MD")"
sync_layers_ok() {
	local d l
	for d in $(img_layer_digests "$T/src"); do
		l=$SYNCD:v2/${d#sha256:}
		cmp "$l" "$(img_blob_path "$T/src" "$d")" || return 1
	done
}
check "synced layer bytes" sync_layers_ok
# registry -> registry: whole repository (all tags) under another namespace
check "sync docker -> docker" "${SK[@]}" sync --src docker --dest docker \
	--src-tls-verify=false --dest-tls-verify=false "$(b "$REPO1")" "$R/$P/mirror"
check_eq "mirrored repo tags" "v1 v2" \
	"$("${SK[@]}" list-tags "${TLS[@]}" docker://"$RB/$P/mirror/skopeo-rt" 2>&1 | jq -r '.Tags | sort | join(" ")' 2>&1)"
check_eq "mirrored manifest digest" "$SRC_MD" \
	"$("${SK[@]}" inspect "${TLS[@]}" --format '{{.Digest}}' docker://"$RB/$P/mirror/skopeo-rt":v2 2>&1)"
# sync of a multi-arch repository keeps the index
check "sync --all docker -> docker (index)" "${SK[@]}" sync --all --src docker --dest docker \
	--src-tls-verify=false --dest-tls-verify=false "$(b "$REPO2")" "$R/$P/mirror"
"${SK[@]}" inspect "${TLS[@]}" --raw docker://"$RB/$P/mirror/skopeo-idx":multi >"$T/rawmidx" || true
check "mirrored index bytes" cmp "$T/rawmidx" "$(img_blob_path "$T/idx" "$IDX_MD")"

finish
