# shellcheck shell=bash
# Deterministic, network-free test images for the Berth end-to-end tests.
#
# Source this file; it defines (no side effects at source time):
#
#   img_busybox OUTDIR [ARCH] [EXTRA]
#       OCI image layout in OUTDIR (oci-layout, index.json with ref name "latest",
#       blobs/sha256/...). One gzip layer: /bin/busybox (from busybox-static) + a few
#       symlinks + /etc/berth-release; if EXTRA is non-empty, /etc/berth-extra holds it
#       (different EXTRA => different layer, config and manifest digests).
#       ARCH defaults to amd64 (the busybox binary is always the host's; only the
#       config/platform says otherwise).
#   img_busybox2 OUTDIR [ARCH] [EXTRA] [BASE_EXTRA]
#       Same, but two layers: a busybox base layer that depends only on BASE_EXTRA
#       (default empty: the plain busybox layer) plus a small layer holding
#       /etc/berth-extra = EXTRA. Images with the same BASE_EXTRA share the base layer.
#   img_index OUTDIR [EXTRA]
#       OCI layout whose index.json ("latest") points at an OCI image index with two
#       entries (linux/amd64 and linux/arm64/v8, each with `platform`). Both images
#       share the busybox layer and differ in their config.
#   img_large OUTDIR SIZE_MB [EXTRA]
#       OCI layout with one uncompressed (application/vnd.oci.image.layer.v1.tar) layer
#       holding /big.bin = SIZE_MB MiB of AES-CTR keystream (incompressible, fast).
#       The keystream password includes EXTRA, so different EXTRA => different bytes.
#   img_docker_archive OUTDIR FILE [REPOTAG]
#       Converts the (first) image of the OCI layout OUTDIR (made by one of the
#       functions above) into a docker-archive tar FILE for `docker load`:
#       manifest.json + <config-hex>.json + <layer-diffid-hex>/layer.tar (uncompressed).
#       With REPOTAG (e.g. localhost/x:latest) the archive carries RepoTags.
#
# Query helpers (all take an OCI layout dir made above):
#   img_manifest_digest DIR   digest of the manifest/index that index.json's first entry names
#   img_blob_path DIR DIGEST  path of a blob file
#   img_diff_ids DIR          the config's rootfs.diff_ids, one per line (single-image layouts)
#   img_config_digest DIR     config digest (single-image layouts)
#   img_layer_digests DIR     layer digests, one per line (single-image layouts)
#
# Requires: bash, GNU tar, gzip, sha256sum, jq, openssl, busybox-static (/bin/busybox).

IMG_BUSYBOX_BIN=${IMG_BUSYBOX_BIN:-/bin/busybox}
IMG_REF_NAME=${IMG_REF_NAME:-latest}

_img_die() { echo "images.sh: $*" >&2; return 1; }

# _img_tar SRCDIR > tarball (deterministic)
_img_tar() {
	tar -C "$1" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
		--format=ustar -cf - .
}

_img_init_layout() {
	local out=$1
	mkdir -p "$out/blobs/sha256" || return 1
	printf '{"imageLayoutVersion":"1.0.0"}' >"$out/oci-layout"
}

# _img_put_file OUTDIR FILE -> moves FILE into blobs, prints "sha256:HEX SIZE"
_img_put_file() {
	local out=$1 f=$2 hex size
	hex=$(sha256sum "$f" | cut -d' ' -f1) || return 1
	size=$(stat -c %s "$f") || return 1
	chmod 0644 "$f" && mv -f "$f" "$out/blobs/sha256/$hex" || return 1
	echo "sha256:$hex $size"
}

# _img_put_string OUTDIR STRING -> stores exact bytes of STRING, prints "sha256:HEX SIZE"
_img_put_string() {
	local out=$1 tmp
	tmp=$(mktemp "$out/.tmp.XXXXXX") || return 1
	printf '%s' "$2" >"$tmp"
	_img_put_file "$out" "$tmp"
}

# _img_rootfs DIR [EXTRA]: the busybox root filesystem
_img_rootfs() {
	local d=$1 extra=${2:-} l
	[ -x "$IMG_BUSYBOX_BIN" ] || { _img_die "no $IMG_BUSYBOX_BIN (apt-get install busybox-static)"; return 1; }
	mkdir -p "$d/bin" "$d/etc" "$d/tmp" || return 1
	cp "$IMG_BUSYBOX_BIN" "$d/bin/busybox"
	chmod 0755 "$d" "$d/bin" "$d/etc" "$d/bin/busybox"
	chmod 1777 "$d/tmp"
	for l in sh echo cat ls sha256sum true; do ln -sf busybox "$d/bin/$l"; done
	printf 'berth test image\n' >"$d/etc/berth-release"
	chmod 0644 "$d/etc/berth-release"
	if [ -n "$extra" ]; then
		printf '%s\n' "$extra" >"$d/etc/berth-extra"
		chmod 0644 "$d/etc/berth-extra"
	fi
}

# _img_extra_rootfs DIR EXTRA: a tiny layer with /etc/berth-extra only
_img_extra_rootfs() {
	local d=$1
	mkdir -p "$d/etc" || return 1
	chmod 0755 "$d" "$d/etc"
	printf '%s\n' "$2" >"$d/etc/berth-extra"
	chmod 0644 "$d/etc/berth-extra"
}

# _img_layer OUTDIR ROOTDIR gzip|tar -> prints "MEDIATYPE DIGEST SIZE DIFFID"
_img_layer() {
	local out=$1 root=$2 kind=$3 tmp diffid blob
	tmp=$(mktemp "$out/.layer.XXXXXX") || return 1
	_img_tar "$root" >"$tmp" || return 1
	diffid=sha256:$(sha256sum "$tmp" | cut -d' ' -f1)
	if [ "$kind" = gzip ]; then
		gzip -n -c "$tmp" >"$tmp.gz" && rm -f "$tmp" || return 1
		blob=$(_img_put_file "$out" "$tmp.gz") || return 1
		echo "application/vnd.oci.image.layer.v1.tar+gzip $blob $diffid"
	else
		blob=$(_img_put_file "$out" "$tmp") || return 1
		echo "application/vnd.oci.image.layer.v1.tar $blob $diffid"
	fi
}

_img_variant() { if [ "$1" = arm64 ]; then echo v8; fi; }

# _img_image OUTDIR ARCH LAYERLINE... -> writes config + manifest, prints the manifest
# descriptor JSON (with platform)
_img_image() {
	local out=$1 arch=$2; shift 2
	local variant layers='[]' diffids='[]' line mt dg sz di cfg cfgd cfgs man mand mans
	variant=$(_img_variant "$arch")
	for line in "$@"; do
		read -r mt dg sz di <<<"$line"
		layers=$(jq -c --arg mt "$mt" --arg dg "$dg" --argjson sz "$sz" \
			'. + [{mediaType:$mt, digest:$dg, size:$sz}]' <<<"$layers")
		diffids=$(jq -c --arg di "$di" '. + [$di]' <<<"$diffids")
	done
	cfg=$(jq -cn --arg arch "$arch" --arg variant "$variant" --argjson diffids "$diffids" '
		{created:"1970-01-01T00:00:00Z", architecture:$arch}
		+ (if $variant == "" then {} else {variant:$variant} end)
		+ {os:"linux",
		   config:{Env:["PATH=/bin"], Cmd:["/bin/sh"], WorkingDir:"/"},
		   rootfs:{type:"layers", diff_ids:$diffids},
		   history:[$diffids[] | {created:"1970-01-01T00:00:00Z", created_by:"berth images.sh"}]}') || return 1
	read -r cfgd cfgs <<<"$(_img_put_string "$out" "$cfg")" || return 1
	man=$(jq -cn --arg cd "$cfgd" --argjson cs "$cfgs" --argjson layers "$layers" '
		{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
		 config:{mediaType:"application/vnd.oci.image.config.v1+json", digest:$cd, size:$cs},
		 layers:$layers}') || return 1
	read -r mand mans <<<"$(_img_put_string "$out" "$man")" || return 1
	jq -cn --arg d "$mand" --argjson s "$mans" --arg arch "$arch" --arg variant "$variant" '
		{mediaType:"application/vnd.oci.image.manifest.v1+json", digest:$d, size:$s,
		 platform:({architecture:$arch, os:"linux"}
			+ (if $variant == "" then {} else {variant:$variant} end))}'
}

# _img_write_index_json OUTDIR DESCRIPTOR_JSON
_img_write_index_json() {
	local out=$1 desc=$2
	jq -cn --argjson desc "$desc" --arg ref "$IMG_REF_NAME" '
		{schemaVersion:2,
		 manifests:[$desc + {annotations:{"org.opencontainers.image.ref.name":$ref}}]}' \
		>"$out/index.json"
}

_img_scratch() { mktemp -d "${TMPDIR:-/tmp}/berth-img.XXXXXX"; }

img_busybox() {
	local out=${1:?usage: img_busybox OUTDIR [ARCH] [EXTRA]} arch=${2:-amd64} extra=${3:-}
	local s layer desc
	_img_init_layout "$out" || return 1
	s=$(_img_scratch) || return 1
	_img_rootfs "$s/root" "$extra" || { rm -rf "$s"; return 1; }
	layer=$(_img_layer "$out" "$s/root" gzip) || { rm -rf "$s"; return 1; }
	rm -rf "$s"
	desc=$(_img_image "$out" "$arch" "$layer") || return 1
	_img_write_index_json "$out" "$desc"
}

img_busybox2() {
	local out=${1:?usage: img_busybox2 OUTDIR [ARCH] [EXTRA] [BASE_EXTRA]} arch=${2:-amd64}
	local extra=${3:-extra} base_extra=${4:-} s base top desc
	_img_init_layout "$out" || return 1
	s=$(_img_scratch) || return 1
	if ! { _img_rootfs "$s/base" "" && _img_extra_rootfs "$s/top" "$extra"; }; then
		rm -rf "$s"
		return 1
	fi
	if [ -n "$base_extra" ]; then
		printf '%s\n' "$base_extra" >"$s/base/etc/berth-base"
		chmod 0644 "$s/base/etc/berth-base"
	fi
	if ! { base=$(_img_layer "$out" "$s/base" gzip) && top=$(_img_layer "$out" "$s/top" gzip); }; then
		rm -rf "$s"
		return 1
	fi
	rm -rf "$s"
	desc=$(_img_image "$out" "$arch" "$base" "$top") || return 1
	_img_write_index_json "$out" "$desc"
}

img_index() {
	local out=${1:?usage: img_index OUTDIR [EXTRA]} extra=${2:-}
	local s layer d1 d2 idx idxd idxs
	_img_init_layout "$out" || return 1
	s=$(_img_scratch) || return 1
	_img_rootfs "$s/root" "$extra" || { rm -rf "$s"; return 1; }
	layer=$(_img_layer "$out" "$s/root" gzip) || { rm -rf "$s"; return 1; }
	rm -rf "$s"
	d1=$(_img_image "$out" amd64 "$layer") || return 1
	d2=$(_img_image "$out" arm64 "$layer") || return 1
	idx=$(jq -cn --argjson a "$d1" --argjson b "$d2" '
		{schemaVersion:2, mediaType:"application/vnd.oci.image.index.v1+json",
		 manifests:[$a, $b]}') || return 1
	read -r idxd idxs <<<"$(_img_put_string "$out" "$idx")" || return 1
	_img_write_index_json "$out" "$(jq -cn --arg d "$idxd" --argjson s "$idxs" \
		'{mediaType:"application/vnd.oci.image.index.v1+json", digest:$d, size:$s}')"
}

img_large() {
	local out=${1:?usage: img_large OUTDIR SIZE_MB [EXTRA]} mb=${2:?SIZE_MB} extra=${3:-}
	local s layer desc
	_img_init_layout "$out" || return 1
	s=$(_img_scratch) || return 1
	mkdir -p "$s/root" && chmod 0755 "$s/root"
	# openssl dies of SIGPIPE when head is done: ignore its status (pipefail callers);
	# the size check below is what matters
	{ openssl enc -aes-256-ctr -nosalt -pass "pass:x$extra" -pbkdf2 </dev/zero 2>/dev/null || true; } \
		| head -c "$((mb * 1024 * 1024))" >"$s/root/big.bin"
	[ "$(stat -c %s "$s/root/big.bin")" -eq "$((mb * 1024 * 1024))" ] \
		|| { rm -rf "$s"; _img_die "openssl produced a short file"; return 1; }
	chmod 0644 "$s/root/big.bin"
	layer=$(_img_layer "$out" "$s/root" tar) || { rm -rf "$s"; return 1; }
	rm -rf "$s"
	desc=$(_img_image "$out" amd64 "$layer") || return 1
	_img_write_index_json "$out" "$desc"
}

img_blob_path() { echo "$1/blobs/${2%%:*}/${2#*:}"; }

img_manifest_digest() { jq -r '.manifests[0].digest' "$1/index.json"; }

_img_manifest_json() { cat "$(img_blob_path "$1" "$(img_manifest_digest "$1")")"; }

img_config_digest() { _img_manifest_json "$1" | jq -r '.config.digest'; }

img_layer_digests() { _img_manifest_json "$1" | jq -r '.layers[].digest'; }

img_diff_ids() { jq -r '.rootfs.diff_ids[]' "$(img_blob_path "$1" "$(img_config_digest "$1")")"; }

img_docker_archive() {
	local src=${1:?usage: img_docker_archive OUTDIR FILE [REPOTAG]} file=${2:?FILE} tag=${3:-}
	local s man cfgd cfghex n i ld mt di layers='[]' tags='[]' tarf
	man=$(_img_manifest_json "$src") || return 1
	[ "$(jq -r '.mediaType' <<<"$man")" = application/vnd.oci.image.manifest.v1+json ] \
		|| { _img_die "$src: first entry is not an image manifest"; return 1; }
	s=$(_img_scratch) || return 1
	cfgd=$(jq -r '.config.digest' <<<"$man")
	cfghex=${cfgd#sha256:}
	cp "$(img_blob_path "$src" "$cfgd")" "$s/$cfghex.json" || { rm -rf "$s"; return 1; }
	n=$(jq '.layers | length' <<<"$man")
	for ((i = 0; i < n; i++)); do
		ld=$(jq -r ".layers[$i].digest" <<<"$man")
		mt=$(jq -r ".layers[$i].mediaType" <<<"$man")
		di=$(jq -r ".rootfs.diff_ids[$i]" "$s/$cfghex.json")
		mkdir -p "$s/${di#sha256:}"
		tarf=$s/${di#sha256:}/layer.tar
		case $mt in
		*+gzip) gzip -dc "$(img_blob_path "$src" "$ld")" >"$tarf" ;;
		*) ln "$(img_blob_path "$src" "$ld")" "$tarf" 2>/dev/null \
			|| cp "$(img_blob_path "$src" "$ld")" "$tarf" ;;
		esac || { rm -rf "$s"; return 1; }
		layers=$(jq -c --arg l "${di#sha256:}/layer.tar" '. + [$l]' <<<"$layers")
	done
	[ -n "$tag" ] && tags=$(jq -cn --arg t "$tag" '[$t]')
	jq -cn --arg c "$cfghex.json" --argjson t "$tags" --argjson l "$layers" \
		'[{Config:$c, RepoTags:$t, Layers:$l}]' >"$s/manifest.json"
	# member names without "./" (as docker save writes them); all names are hex, so the
	# unquoted ls is safe
	# shellcheck disable=SC2046
	tar -C "$s" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=ustar \
		-cf "$file" $(cd "$s" && ls) || { rm -rf "$s"; return 1; }
	rm -rf "$s"
}
