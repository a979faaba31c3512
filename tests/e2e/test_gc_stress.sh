#!/usr/bin/env bash
# shellcheck disable=SC1091,SC2317  # sourced libs; helpers are called via check
# GC and lifecycle never race a push: 8 clients push images that share layers (HEAD first and skip what exists,
# as docker and skopeo do; plus untagged garbage for the lifecycle policy) while `berth gc --grace 0` and
# `berth lifecycle run` loop continuously in other processes for STRESS_SECONDS (default 60).  Afterwards every
# image whose manifest PUT was acknowledged (201) pulls byte-identical (manifest and every blob, by hash; a sample
# with skopeo), and `berth fsck` exits 0.  A push refused during the run (a blob collected between its upload or
# HEAD and the manifest) is fine: it was never acknowledged.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/server.sh"

SECONDS_TOTAL=${STRESS_SECONDS:-60}
CLIENTS=8
e2e_tmpdir T
D=$T/data
berth_start "$D" --no-auth
on_exit berth_kill
R=http://$REGISTRY
P=$(e2e_prefix)
REPO=$P/stress
OCI_M=application/vnd.oci.image.manifest.v1+json
U="stress $P $$ $(date +%s%N)"
sha() { echo "sha256:$(sha256sum "$1" | cut -c1-64)"; }

for s in 0 1 2 3; do
	head -c 200000 /dev/urandom >"$T/shared.$s" # layers every client uses
done

# push_blob FILE: HEAD, and upload only when unknown; prints the HTTP status of the upload (200 if skipped)
push_blob() {
	local d
	d=$(sha "$1")
	if [ "$(curl -s -o /dev/null -w '%{http_code}' -I "$R/v2/$REPO/blobs/$d")" = 200 ]; then
		echo 200
		return
	fi
	curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$1" "$R/v2/$REPO/blobs/uploads/?digest=$d"
}

# manifest CFG LAYER...: an OCI manifest over the files
manifest() {
	local cfg=$1 l layers=""
	shift
	for l in "$@"; do
		layers="$layers${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"$(sha "$l")\",\"size\":$(stat -c %s "$l")}"
	done
	printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
		"$OCI_M" "$(sha "$cfg")" "$(stat -c %s "$cfg")" "$layers"
}

# push_image DIR N TAG: PUTs the manifest (by digest when TAG is empty) after its blobs; prints the manifest PUT's
# HTTP status.  Odd N: HEAD each blob and upload only what the registry lacks (docker's and skopeo's way, racing GC
# between the HEAD and the manifest); even N: one fast curl uploads every blob again, then PUTs the manifest.
push_image() {
	local dir=$1 n=$2 tag=$3 f args=()
	local files=("$T/shared.$((n % 4))" "$T/shared.$(((n + 1) % 4))" "$dir/u.$n" "$dir/c.$n")
	if [ $((n % 2)) -eq 1 ]; then
		for f in "${files[@]}"; do
			push_blob "$f" >/dev/null
		done
	else
		for f in "${files[@]}"; do
			args+=(-s -o /dev/null -X POST --data-binary @"$f" "$R/v2/$REPO/blobs/uploads/?digest=$(sha "$f")" --next)
		done
	fi
	curl "${args[@]}" -s -o /dev/null -w '%{http_code}' -X PUT -H "Content-Type: $OCI_M" \
		--data-binary @"$dir/m.$n" "$R/v2/$REPO/manifests/${tag:-$(sha "$dir/m.$n")}"
}

# A client pushes images until `end`; like docker and skopeo it retries a push that failed (here: a blob that GC
# collected between its upload and the manifest, MANIFEST_BLOB_UNKNOWN) a few times.
client() {
	local id=$1 end=$2 n=0 dir=$T/c$1 code try
	mkdir -p "$dir"
	: >"$dir/acked"
	: >"$dir/refused"
	while [ "$(date +%s)" -lt "$end" ]; do
		n=$((n + 1))
		printf '%s client %s image %s unique layer' "$U" "$id" "$n" >"$dir/u.$n"
		printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"n":"%s %s %s"}' \
			"$U" "$id" "$n" >"$dir/c.$n"
		manifest "$dir/c.$n" "$T/shared.$((n % 4))" "$T/shared.$(((n + 1) % 4))" "$dir/u.$n" >"$dir/m.$n"
		for try in 1 2 3 4 5; do
			if [ $((n % 3)) -eq 1 ]; then # untagged garbage, for the lifecycle policy to expire
				[ "$(push_image "$dir" "$n" "")" = 201 ] && break
				continue
			fi
			code=$(push_image "$dir" "$n" "c$id-$n")
			[ "$code" = 201 ] && break
			echo "$code" >>"$dir/refused"
		done
		[ $((n % 3)) -ne 1 ] && [ "$code" = 201 ] && echo "c$id-$n $n $try" >>"$dir/acked"
	done
}

cat >"$T/policy.json" <<'EOF'
{"rules": [{"rulePriority": 1, "description": "untagged images go after a day",
  "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1},
  "action": {"type": "expire"}}]}
EOF
printf '{}' >"$T/seed"
curl -sf -o /dev/null -X POST --data-binary @"$T/seed" "$R/v2/$REPO/blobs/uploads/?digest=$(sha "$T/seed")"
check "policy set" "$BERTH_BIN" lifecycle put "$REPO" "$T/policy.json" --data "$D"

END=$(($(date +%s) + SECONDS_TOTAL))
log "$CLIENTS clients pushing for $SECONDS_TOTAL s while gc --grace 0 and lifecycle loop"
pids=()
for i in $(seq 1 $CLIENTS); do
	client "$i" "$END" &
	pids+=($!)
done
(
	while [ "$(date +%s)" -lt "$END" ]; do
		"$BERTH_BIN" gc --grace 0 --data "$D" >>"$T/gc.out" 2>&1 || echo "gc failed" >>"$T/gc.out"
	done
) &
gcpid=$!
(
	while [ "$(date +%s)" -lt "$END" ]; do
		"$BERTH_BIN" lifecycle run --as-of "$(date -u -d '+2 days' +%Y-%m-%dT%H:%M:%SZ)" --data "$D" \
			>>"$T/lc.out" 2>>"$T/lc.err" || echo "lifecycle failed" >>"$T/lc.err"
	done
) &
lcpid=$!
wait "${pids[@]}" "$gcpid" "$lcpid"

ACKED=$(cat "$T"/c*/acked | wc -l)
REFUSED=$(cat "$T"/c*/refused 2>/dev/null | wc -l)
GCRUNS=$(grep -c '^gc: pruned' "$T/gc.out" || true)
DELETED=$(awk '/^gc: pruned/ {s += $7} END {print s + 0}' "$T/gc.out")
EXPIRED=$(wc -l <"$T/lc.out")
log "acknowledged $ACKED images, $REFUSED refused pushes; $GCRUNS gc runs deleted $DELETED blobs; lifecycle expired $EXPIRED manifests"
check_eq "gc never failed" 0 "$(grep -c 'gc failed\|stopped' "$T/gc.out" || true)"
check_eq "lifecycle never failed" 0 "$(grep -c 'failed' "$T/lc.err" || true)"
check "pushes were acknowledged during the run" test "$ACKED" -gt 0
check "gc ran repeatedly and deleted blobs while clients pushed" test "$DELETED" -gt 0 -a "$GCRUNS" -gt 1
check "lifecycle expired garbage while clients pushed" test "$EXPIRED" -gt 0

# every acknowledged image: manifest bytes by tag, then every blob, by hash
verify() {
	local bad=0 tag n id dir d
	for dir in "$T"/c*; do
		id=${dir##*/c}
		while read -r tag n _; do
			d=$(sha "$dir/m.$n")
			if [ "$(curl -sf -H "Accept: $OCI_M" "$R/v2/$REPO/manifests/$tag" | sha256sum | cut -c1-64)" != "${d#sha256:}" ]; then
				echo "manifest $tag differs or is missing"
				bad=$((bad + 1))
				continue
			fi
			for b in $(jq -r '.config.digest, .layers[].digest' "$dir/m.$n"); do
				if [ "$(curl -sf "$R/v2/$REPO/blobs/$b" | sha256sum | cut -c1-64)" != "${b#sha256:}" ]; then
					echo "blob $b of $tag differs or is missing"
					bad=$((bad + 1))
				fi
			done
		done <"$dir/acked"
		: "$id"
	done
	[ "$bad" -eq 0 ]
}
check "every acknowledged image pulls byte-identical (manifest and blobs)" verify
SAMPLE=$(cat "$T"/c*/acked | shuf -n 3 --random-source=<(yes) | awk '{print $1}')
for tag in $SAMPLE; do
	check "skopeo pulls acknowledged $tag" skopeo copy --quiet --src-tls-verify=false \
		docker://"$REGISTRY/$REPO:$tag" oci:"$T/pull-$tag":x
done
"$BERTH_BIN" gc --grace 0 --data "$D" >/dev/null 2>&1 || true
check "every acknowledged image still pulls after a final gc" verify
check "fsck exits 0" "$BERTH_BIN" fsck --data "$D"

finish
