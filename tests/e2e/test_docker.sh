#!/usr/bin/env bash
# shellcheck disable=SC1091,SC2317  # sourced libs; helpers are called via check
# docker (a private Debian dockerd 20.10, see scripts/lib/dockerd.sh) against a
# plain-HTTP registry: load/tag/push/rmi/pull/run, cross-repo mount, pull by digest,
# platform selection from a skopeo-pushed OCI index, docker manifest create/push/inspect,
# re-push ("Layer already exists"), four concurrent pushes sharing a base layer, and a
# large-layer (1 GiB by default) push/pull with digest checks.
#
#   REGISTRY=127.0.0.1:5055 tests/e2e/test_docker.sh
#   (against Distribution: add E2E_REFERENCE=distribution to skip its known gaps)
#
# Env: REGISTRY (required; 127.0.0.0/8 is insecure for dockerd by default, other hosts
# are passed as --insecure-registry), REGISTRY_B (a second node of the same registry: every
# push goes to REGISTRY, every pull and check reads through REGISTRY_B; default REGISTRY), LARGE_MB (size of the large layer, default 1024;
# 0 skips it), DOCKER (CLI, default /usr/bin/docker), E2E_PREFIX, E2E_KEEP, E2E_VERBOSE,
# E2E_REFERENCE.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/../../scripts/lib/images.sh"
. "$HERE/../../scripts/lib/dockerd.sh"

need_registry
R=$REGISTRY
RB=${REGISTRY_B:-$R}
P=$(e2e_prefix)
LARGE_MB=${LARGE_MB:-1024}
e2e_tmpdir T
U="docker $P $$ $(date +%s%N)"
TLS=(--tls-verify=false)

export DOCKERD_EXTRA_ARGS="--insecure-registry $R ${DOCKERD_EXTRA_ARGS:-}"
[ "$RB" = "$R" ] || DOCKERD_EXTRA_ARGS="--insecure-registry $RB $DOCKERD_EXTRA_ARGS"
on_exit dockerd_stop "$T/d"
dockerd_start "$T/d" || { echo "cannot start dockerd" >&2; exit 2; }
log "dockerd up ($("$DOCKER" version --format '{{.Client.Version}}/{{.Server.Version}}'))"
D() { "$DOCKER" "$@"; }

b() { printf '%s\n' "$RB${1#"$R"}"; } # REF pushed through REGISTRY -> the same REF read through REGISTRY_B
pushed_digest() { grep -oE 'digest: sha256:[0-9a-f]{64}' <<<"$1" | head -n1 | cut -d' ' -f2; }
registry_digest() { # sha256 of the manifest bytes the registry serves for REF
	skopeo inspect "${TLS[@]}" --raw "docker://$1" | sha256sum | sed 's/^/sha256:/; s/ .*//'
}
img_id() { D image inspect --format '{{.Id}}' "$1"; }
# shellcheck disable=SC2046
rmi_all() { D rmi -f $(D images -aq) >/dev/null 2>&1 || true; }

########################################################################
log "1. load -> tag -> push -> rmi -> pull -> run"
REPO=$R/$P/docker-bb
img_busybox "$T/bb" amd64 "$U bb"
img_docker_archive "$T/bb" "$T/bb.tar"
CFG=$(img_config_digest "$T/bb")
OUT=$(D load -i "$T/bb.tar" 2>&1 || true)
check_contains "docker load reports the config digest as image ID" "Loaded image ID: $CFG" "$OUT"
check "tag" D tag "$CFG" "$REPO:v1"
OUT=$(D push "$REPO:v1" 2>&1 || true)
check_contains "push: layer pushed" "Pushed" "$OUT"
MD=$(pushed_digest "$OUT")
check "push printed a digest" test -n "$MD"
check_eq "registry serves the manifest docker pushed" "$MD" "$(registry_digest "$(b "$REPO:v1")" 2>&1)"
check_eq "pushed manifest is docker v2 schema 2 with our config" \
	"application/vnd.docker.distribution.manifest.v2+json $CFG" \
	"$(skopeo inspect "${TLS[@]}" --raw "docker://$(b "$REPO:v1")" 2>&1 | jq -r '"\(.mediaType) \(.config.digest)"' 2>&1)"
check "rmi" D rmi "$REPO:v1"
check_fail "image is gone locally" D image inspect "$CFG"
REPOB=$(b "$REPO")
OUT=$(D pull "$REPOB:v1" 2>&1 || true)
check_contains "pull reports the pushed digest" "Digest: $MD" "$OUT"
check_eq "pulled image ID = config digest" "$CFG" "$(img_id "$REPOB:v1" 2>&1)"
check_eq "pulled diff_ids" "$(img_diff_ids "$T/bb")" \
	"$(D image inspect --format '{{range .RootFS.Layers}}{{println .}}{{end}}' "$REPOB:v1" 2>&1 | sed '/^$/d')"
check_contains "RepoDigests" "$REPOB@$MD" "$(D image inspect --format '{{json .RepoDigests}}' "$REPOB:v1" 2>&1)"
check_eq "run busybox echo" ok "$(D run --rm --network none "$REPOB:v1" /bin/busybox echo ok 2>&1)"
check_eq "run sees the unique file" "$U bb" \
	"$(D run --rm --network none "$REPOB:v1" /bin/sh -c 'cat /etc/berth-extra' 2>&1)"
[ "$REPOB" = "$REPO" ] || D tag "$REPOB:v1" "$REPO:v1" # the pushes below go through REGISTRY

########################################################################
log "2. re-push unchanged image"
OUT=$(D push "$REPO:v1" 2>&1 || true)
check_eq "re-push: every layer 'already exists'" "1" "$(grep -c 'Layer already exists' <<<"$OUT" || true)"
check_not_contains "re-push: nothing uploaded" "Pushed" "$OUT"
check_eq "re-push: same digest" "$MD" "$(pushed_digest "$OUT")"

########################################################################
log "3. push to a second repository (cross-repo mount)"
REPO2=$R/$P/docker-bb2
D tag "$REPO:v1" "$REPO2:v1"
OUT=$(D push "$REPO2:v1" 2>&1 || true)
check_contains "second repo: layer mounted from the first" "Mounted from $P/docker-bb" "$OUT"
check_eq "second repo: same digest" "$MD" "$(pushed_digest "$OUT")"
check_eq "second repo: registry digest" "$MD" "$(registry_digest "$(b "$REPO2:v1")" 2>&1)"

########################################################################
log "4. pull by digest"
rmi_all
check_fail "no local image" D image inspect "$CFG"
REPO2B=$(b "$REPO2")
OUT=$(D pull "$REPO2B@$MD" 2>&1 || true)
check_contains "pull by digest" "Digest: $MD" "$OUT"
check_eq "by-digest image ID" "$CFG" "$(img_id "$REPO2B@$MD" 2>&1)"
check_eq "by-digest image runs" ok "$(D run --rm --network none "$REPO2B@$MD" /bin/busybox echo ok 2>&1)"

########################################################################
log "5. docker pull --platform from a skopeo-pushed OCI index"
IREPO=$R/$P/docker-idx
img_index "$T/idx" "$U idx"
IDXB=$(img_blob_path "$T/idx" "$(img_manifest_digest "$T/idx")")
ARM_CFG=$(jq -r .config.digest "$(img_blob_path "$T/idx" \
	"$(jq -r '.manifests[] | select(.platform.architecture=="arm64") | .digest' "$IDXB")")")
AMD_CFG=$(jq -r .config.digest "$(img_blob_path "$T/idx" \
	"$(jq -r '.manifests[] | select(.platform.architecture=="amd64") | .digest' "$IDXB")")")
check "skopeo copy --all index" skopeo copy --quiet --all --preserve-digests --dest-tls-verify=false \
	oci:"$T/idx":latest docker://"$IREPO":multi
IREPOB=$(b "$IREPO")
check "docker pull --platform linux/arm64" D pull --platform linux/arm64 "$IREPOB:multi"
check_eq "arm64 image chosen" "arm64 $ARM_CFG" \
	"$(D image inspect --format '{{.Architecture}} {{.Id}}' "$IREPOB:multi" 2>&1)"
check "docker pull --platform linux/amd64" D pull --platform linux/amd64 "$IREPOB:multi"
check_eq "amd64 image chosen" "amd64 $AMD_CFG" \
	"$(D image inspect --format '{{.Architecture}} {{.Id}}' "$IREPOB:multi" 2>&1)"
check_eq "amd64 image from the index runs" ok \
	"$(D run --rm --network none "$IREPOB:multi" /bin/busybox echo ok 2>&1)"
# `docker manifest inspect` of an OCI index.  The 20.10 CLI can read the index (Berth serves it as stored although
# its Accept lists no OCI type; Distribution 2.8 answers 404 there) but not the OCI image manifests it then fetches
# for each entry, whatever the registry does: so this check uses a newer CLI when the machine has one.
NEWCLI=/usr/local/bin/docker
if [ -x "$NEWCLI" ] && [ "$("$NEWCLI" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1)" -ge 23 ] 2>/dev/null; then
	MI=$("$NEWCLI" manifest inspect --insecure "$IREPOB:multi" 2>&1 || true)
	check_eq "manifest inspect of an OCI index (newer CLI)" \
		"application/vnd.oci.image.index.v1+json linux/amd64 linux/arm64" \
		"$(jq -r '"\(.mediaType) \([.manifests[] | "\(.platform.os)/\(.platform.architecture)"] | sort | join(" "))"' \
			<<<"$MI" 2>/dev/null || echo "$MI")"
else
	log "skip: manifest inspect of an OCI index needs a docker CLI >= 23 at $NEWCLI"
fi
# what the 20.10 CLI asks for (Docker types only) still gets the stored OCI index, not a 404
check_eq "OCI index served as stored to a Docker-types-only Accept" "application/vnd.oci.image.index.v1+json" \
	"$(curl -s -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
		-H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
		"http://$RB/v2/$P/docker-idx/manifests/multi" | jq -r .mediaType)"

########################################################################
log "6. docker manifest create/push/inspect (manifest list)"
img_busybox "$T/arm" arm64 "$U arm"
img_docker_archive "$T/arm" "$T/arm.tar" "$R/$P/docker-arm:v1"
D load -i "$T/arm.tar" >/dev/null
OUT=$(D push "$R/$P/docker-arm:v1" 2>&1 || true)
ARM_MD=$(pushed_digest "$OUT")
check "arm64 image pushed" test -n "$ARM_MD"
ML=$R/$P/docker-ml:v1
check "manifest create" D manifest create --insecure "$ML" "$REPO:v1" "$R/$P/docker-arm:v1"
OUT=$(D manifest push --insecure "$ML" 2>&1 || true)
ML_MD=$(grep -oE 'sha256:[0-9a-f]{64}' <<<"$OUT" | tail -n1 || true)
check "manifest push printed a digest" test -n "$ML_MD"
check_eq "registry serves the pushed list" "$ML_MD" "$(registry_digest "$(b "$ML")" 2>&1)"
INS=$(D manifest inspect --insecure "$(b "$ML")" 2>&1 || true)
check_eq "manifest inspect: list media type" "application/vnd.docker.distribution.manifest.list.v2+json" \
	"$(jq -r .mediaType <<<"$INS" 2>&1)"
check_eq "manifest inspect: entries" "$MD linux/amd64 $ARM_MD linux/arm64" \
	"$(jq -r '[.manifests[] | "\(.digest) \(.platform.os)/\(.platform.architecture)"] | sort_by(split(" ")[1]) | join(" ")' <<<"$INS" 2>&1)"
INS=$(D manifest inspect --insecure "$RB/$P/docker-arm:v1" 2>&1 || true)
check_eq "manifest inspect of a single image" "$(img_config_digest "$T/arm")" "$(jq -r .config.digest <<<"$INS" 2>&1)"
rmi_all
check "pull list --platform linux/arm64" D pull --platform linux/arm64 "$(b "$ML")"
check_eq "arm64 entry of the list chosen" "arm64 $(img_config_digest "$T/arm")" \
	"$(D image inspect --format '{{.Architecture}} {{.Id}}' "$(b "$ML")" 2>&1)"

########################################################################
log "7. four concurrent pushes sharing a base layer"
BASE="base $U"
for i in 1 2 3 4; do
	img_busybox2 "$T/c$i" amd64 "$U c$i" "$BASE"
	img_docker_archive "$T/c$i" "$T/c$i.tar" "$R/$P/docker-conc$i:v1"
	D load -i "$T/c$i.tar" >/dev/null
done
check_eq "the four images share their base layer" 1 \
	"$(for i in 1 2 3 4; do img_layer_digests "$T/c$i" | head -n1; done | sort -u | wc -l)"
for i in 1 2 3 4; do
	(
		rc=0
		D push "$R/$P/docker-conc$i:v1" >"$T/c$i.push" 2>&1 || rc=$?
		echo $rc >"$T/c$i.rc"
	) &
	PIDS[i]=$!
done
wait "${PIDS[@]}"   # not a bare wait: dockerd is a child of this shell too
for i in 1 2 3 4; do
	check_eq "concurrent push $i succeeded" 0 "$(cat "$T/c$i.rc")"
	CMD[i]=$(pushed_digest "$(cat "$T/c$i.push")")
done
D rmi "$R/$P/docker-conc1:v1" "$R/$P/docker-conc2:v1" "$R/$P/docker-conc3:v1" "$R/$P/docker-conc4:v1" >/dev/null
for i in 1 2 3 4; do
	(
		rc=0
		D pull "$RB/$P/docker-conc$i:v1" >"$T/c$i.pull" 2>&1 || rc=$?
		echo $rc >"$T/c$i.rc"
	) &
	PIDS[i]=$!
done
wait "${PIDS[@]}"   # not a bare wait: dockerd is a child of this shell too
for i in 1 2 3 4; do
	check_eq "concurrent pull $i succeeded" 0 "$(cat "$T/c$i.rc")"
	check_contains "pull $i digest = pushed digest" "Digest: ${CMD[$i]:-none}" "$(cat "$T/c$i.pull")"
	check_eq "pulled image $i ID" "$(img_config_digest "$T/c$i")" "$(img_id "$RB/$P/docker-conc$i:v1" 2>&1)"
	check_eq "image $i runs with its own top layer" "$U c$i" \
		"$(D run --rm --network none "$RB/$P/docker-conc$i:v1" /bin/cat /etc/berth-extra 2>&1)"
done
rmi_all
rm -rf "$T"/c[1-4] "$T"/c[1-4].tar

########################################################################
if [ "$LARGE_MB" -gt 0 ]; then
	log "8. large layer ($LARGE_MB MiB): build"
	LREPO=$R/$P/docker-large
	img_large "$T/big" "$LARGE_MB" "$U"
	LCFG=$(img_config_digest "$T/big")
	LDIFF=$(img_diff_ids "$T/big")
	img_docker_archive "$T/big" "$T/big.tar" "$LREPO:v1"
	rm -rf "$T/big/blobs"   # keep only what is needed; the diff_id is remembered
	D load -i "$T/big.tar" >/dev/null
	rm -f "$T/big.tar"
	log "8. large layer: push"
	t0=$(date +%s)
	OUT=$(D push "$LREPO:v1" 2>&1 || true)
	LMD=$(pushed_digest "$OUT")
	check "large push" test -n "$LMD"
	log "8. large layer: pushed in $(($(date +%s) - t0))s"
	LREPOB=$(b "$LREPO")
	RAW=$(skopeo inspect "${TLS[@]}" --raw "docker://$LREPOB:v1" 2>&1 || true)
	check_eq "large: registry digest" "$LMD" "sha256:$(printf '%s' "$RAW" | sha256sum | cut -d' ' -f1)"
	LSIZE=$(jq -r '.layers[0].size' <<<"$RAW" 2>/dev/null || echo 0)
	check "large: compressed layer >= $LARGE_MB MiB (incompressible)" \
		test "${LSIZE:-0}" -ge "$((LARGE_MB * 1024 * 1024))"
	D rmi "$LREPO:v1" >/dev/null
	check_fail "large: gone locally" D image inspect "$LCFG"
	log "8. large layer: pull"
	t0=$(date +%s)
	OUT=$(D pull "$LREPOB:v1" 2>&1 || true)
	log "8. large layer: pulled in $(($(date +%s) - t0))s"
	check_contains "large: pull digest" "Digest: $LMD" "$OUT"
	check_eq "large: image ID" "$LCFG" "$(img_id "$LREPOB:v1" 2>&1)"
	check_eq "large: diff_id (verified by dockerd on pull)" "$LDIFF" \
		"$(D image inspect --format '{{range .RootFS.Layers}}{{.}}{{end}}' "$LREPOB:v1" 2>&1)"
	check_contains "large: RepoDigests" "$LREPOB@$LMD" \
		"$(D image inspect --format '{{json .RepoDigests}}' "$LREPOB:v1" 2>&1)"
	# re-save and hash the layer tar ourselves
	# (20.10 names the layer directories with v1 IDs; find the layer via manifest.json)
	LH=none
	if D save -o "$T/saved.tar" "$LREPOB:v1"; then
		LPATH=$(tar -xOf "$T/saved.tar" manifest.json | jq -r '.[0].Layers[0]') || LPATH=x
		LH=$(tar -xOf "$T/saved.tar" "$LPATH" | sha256sum | cut -d' ' -f1) || LH=none
		rm -f "$T/saved.tar"
	fi
	check_eq "large: saved layer hashes to the original diff_id" "$LDIFF" "sha256:$LH"
	rmi_all
fi

finish
