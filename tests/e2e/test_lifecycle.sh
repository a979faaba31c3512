#!/usr/bin/env bash
# shellcheck disable=SC1091,SC2317  # sourced libs; helpers are called via check
# Lifecycle policies, online GC and fsck against the real server, with skopeo and curl:
#   - a series of images pushed with skopeo, some made untagged by moving tags, a multi-arch index and signature
#     referrers (pushed with curl: skopeo cannot), an ECR policy set with `berth lifecycle put`;
#   - `berth lifecycle run --dry-run/--as-of` lists exactly what the policy selects, the run expires it (each
#     referrer with its subject), `berth gc --grace 0` deletes the unique blobs from disk and keeps shared ones;
#   - every kept image pulls byte-identical with skopeo, every expired one is 404;
#   - the index and the signature survive while their index/subject is tagged, and go with it;
#   - kill -9 of `berth gc` and of `berth lifecycle run` in the middle, restart: `berth fsck` exits 0.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/server.sh"
. "$HERE/../../scripts/lib/images.sh"

e2e_tmpdir T
D=$T/data
berth_start "$D" --no-auth
on_exit berth_kill
R=$REGISTRY
P=$(e2e_prefix)
REPO=$P/app
U="lifecycle $P $$ $(date +%s%N)" # fresh content: skopeo's blob cache must not skip uploads
SK=(skopeo --command-timeout 300s)
CP=(copy --quiet --src-tls-verify=false --dest-tls-verify=false)
OCI_M=application/vnd.oci.image.manifest.v1+json
B=("$BERTH_BIN")

sha() { echo "sha256:$(sha256sum "$1" | cut -c1-64)"; }
on_disk() { local h=${1#sha256:}; [ -f "$D/blobs/sha256/${h:0:2}/$h" ]; }
http_code() { curl -s -o /dev/null -w '%{http_code}' -H "Accept: $OCI_M" "$@"; }
manifest_code() { http_code "http://$R/v2/$1/manifests/$2"; }

# same_blobs A B: every blob of OCI layout A is in layout B with identical bytes
same_blobs() {
	local a=$1 b=$2 f
	for f in "$a"/blobs/sha256/*; do
		cmp -s "$f" "$b/blobs/sha256/${f##*/}" || { echo "missing or different: ${f##*/}"; return 1; }
	done
}

# pull_same NAME REF SRC_LAYOUT: skopeo pulls REF and gets exactly the source's manifest and blobs
pull_same() {
	local out=$T/pull.$RANDOM
	"${SK[@]}" "${CP[@]}" docker://"$R/$2" oci:"$out":x >/dev/null 2>&1 || { echo "pull failed"; return 1; }
	[ "$(img_manifest_digest "$out")" = "$(img_manifest_digest "$3")" ] || { echo "manifest differs"; return 1; }
	same_blobs "$3" "$out"
}

# referrer SUBJECT_REPO SUBJECT_DIGEST NAME: pushes a signature manifest whose subject is the digest; prints
# "<manifest digest> <signature blob digest>"
referrer() {
	local repo=$1 subj=$2 name=$3 size sigd
	size=$(curl -sf -H "Accept: $OCI_M" "http://$R/v2/$repo/manifests/$subj" | wc -c)
	printf '{}' >"$T/empty"
	printf 'signature %s of %s' "$U $name" "$subj" >"$T/sig.$name"
	sigd=$(sha "$T/sig.$name")
	curl -sf -X POST --data-binary @"$T/empty" "http://$R/v2/$repo/blobs/uploads/?digest=$(sha "$T/empty")" >/dev/null
	curl -sf -X POST --data-binary @"$T/sig.$name" "http://$R/v2/$repo/blobs/uploads/?digest=$sigd" >/dev/null
	printf '{"schemaVersion":2,"mediaType":"%s","artifactType":"application/vnd.example.signature","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2},"layers":[{"mediaType":"application/vnd.example.signature","digest":"%s","size":%s}],"subject":{"mediaType":"%s","digest":"%s","size":%s}}' \
		"$OCI_M" "$(sha "$T/empty")" "$sigd" "$(stat -c %s "$T/sig.$name")" "$OCI_M" "$subj" "$size" >"$T/ref.$name"
	curl -sf -X PUT -H "Content-Type: $OCI_M" --data-binary @"$T/ref.$name" \
		"http://$R/v2/$repo/manifests/$(sha "$T/ref.$name")" >/dev/null
	echo "$(sha "$T/ref.$name") $sigd"
}

top_layer() { img_layer_digests "$1" | tail -n 1; }

########################################################################
log "1. push a series of images (shared base layer, one unique layer each), one second apart"
declare -A MD
for n in 1 2 3 4 5; do
	img_busybox2 "$T/rel$n" amd64 "$U release $n" "$U base"
	check "push release-$n" "${SK[@]}" "${CP[@]}" --preserve-digests oci:"$T/rel$n":latest docker://"$R/$REPO":release-$n
	MD[rel$n]=$(img_manifest_digest "$T/rel$n")
	sleep 1.1
done
for n in 1 2 3; do # tmp moves from u1 to u2 to u3: u1 and u2 become untagged
	img_busybox2 "$T/u$n" amd64 "$U untagged $n" "$U base"
	check "push tmp ($n)" "${SK[@]}" "${CP[@]}" --preserve-digests oci:"$T/u$n":latest docker://"$R/$REPO":tmp
	MD[u$n]=$(img_manifest_digest "$T/u$n")
done
img_index "$T/multi" "$U multi"
check "push a multi-arch index" "${SK[@]}" "${CP[@]}" --all --preserve-digests oci:"$T/multi":latest \
	docker://"$R/$REPO":multi
MULTI=$(img_manifest_digest "$T/multi")
mapfile -t CHILDREN < <(jq -r '.manifests[].digest' "$(img_blob_path "$T/multi" "$MULTI")")
read -r SIG5 SIG5_BLOB <<<"$(referrer "$REPO" "${MD[rel5]}" rel5)"
read -r SIGU1 SIGU1_BLOB <<<"$(referrer "$REPO" "${MD[u1]}" u1)"
check_eq "the signature of release-5 is listed as its referrer" "$SIG5" \
	"$(curl -sf "http://$R/v2/$REPO/referrers/${MD[rel5]}" | jq -r '.manifests[].digest')"

cat >"$T/policy.json" <<'EOF'
{"rules": [
  {"rulePriority": 1, "description": "keep the three newest releases",
   "selection": {"tagStatus": "tagged", "tagPrefixList": ["release"], "countType": "imageCountMoreThan", "countNumber": 3},
   "action": {"type": "expire"}},
  {"rulePriority": 2, "description": "untagged images go after a day",
   "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1},
   "action": {"type": "expire"}}
]}
EOF
cat >"$T/bad.json" <<'EOF'
{"rules": [{"rulePriority": 1, "description": "a tagged rule without a prefix or pattern list",
  "selection": {"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 3}, "action": {"type": "expire"}}]}
EOF

########################################################################
log "2. policies: refused whole when invalid, stored, read back"
OUT=$("${B[@]}" lifecycle put "$REPO" "$T/bad.json" --data "$D" 2>&1 || true)
check_contains "an invalid policy is refused with ECR's message" \
	"InvalidParameterException: Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint" "$OUT"
check_fail "nothing stored after a refusal" "${B[@]}" lifecycle get "$REPO" --data "$D"
check "put a policy" "${B[@]}" lifecycle put "$REPO" "$T/policy.json" --data "$D"
check_eq "get returns it" "$(cat "$T/policy.json")" "$("${B[@]}" lifecycle get "$REPO" --data "$D" 2>&1)"
check_fail "put on a repository that does not exist" "${B[@]}" lifecycle put "$P/none" "$T/policy.json" --data "$D"

########################################################################
log "3. lifecycle run: dry run, then for real, as of two days from now"
ASOF=$(date -u -d '+2 days' +%Y-%m-%dT%H:%M:%SZ)
expected() {
	printf '%s\n' "$REPO ${MD[rel1]} release-1 1" "$REPO ${MD[rel2]} release-2 1" "$REPO ${MD[u1]} - 2" \
		"$REPO ${MD[u2]} - 2" | sort
}
DRY=$("${B[@]}" lifecycle run --dry-run --as-of "$ASOF" --data "$D" 2>/dev/null | sort)
check_eq "the dry run lists the oldest releases beyond three and the untagged images (rule priority each)" \
	"$(expected)" "$DRY"
check_eq "a dry run expires nothing" 200 "$(manifest_code "$REPO" "${MD[rel1]}")"
NOW_DRY=$("${B[@]}" lifecycle run --dry-run --data "$D" 2>/dev/null | sort)
check_eq "as of now the untagged images are too young" \
	"$(printf '%s\n' "$REPO ${MD[rel1]} release-1 1" "$REPO ${MD[rel2]} release-2 1" | sort)" "$NOW_DRY"
RUN=$("${B[@]}" lifecycle run --as-of "$ASOF" --data "$D" 2>/dev/null | sort)
check_eq "the run expires the same images, the referrer of u1 with it" \
	"$( (expected; echo "$REPO $SIGU1 - with:${MD[u1]}") | sort)" "$RUN"
for k in rel1 rel2 u1 u2; do
	check_eq "expired $k: manifest 404" 404 "$(manifest_code "$REPO" "${MD[$k]}")"
done
check_eq "the signature of u1 went with it" 404 "$(manifest_code "$REPO" "$SIGU1")"
for c in "${CHILDREN[@]}"; do
	check_eq "child ${c:7:12} of the tagged index survives (not an image of its own)" 200 "$(manifest_code "$REPO" "$c")"
done
check_eq "the signature of the live release-5 survives" 200 "$(manifest_code "$REPO" "$SIG5")"
EXP=$("${B[@]}" events tail --json --action expire -n 100000 --data "$D" |
	jq -r '"\(.target.repository) \(.target.digest) \(.target.tag // "-")"')
for k in rel1 rel2; do
	check_contains "berth events tail: expire event of $k with its tag" "$REPO ${MD[$k]} release-${k#rel}" "$EXP"
done
for k in u1 u2; do
	check_contains "berth events tail: expire event of untagged $k" "$REPO ${MD[$k]} -" "$EXP"
done
check_contains "berth events tail: expire event of the signature that went with u1" "$REPO $SIGU1 -" "$EXP"
check_fail "no expire event for the kept release-5" grep -qF "${MD[rel5]}" <<<"$EXP"

########################################################################
log "4. gc --grace 0: unique blobs of expired images leave the disk, shared ones stay"
check "unique layer of release-1 still on disk before gc" on_disk "$(top_layer "$T/rel1")"
GC=$("${B[@]}" gc --grace 0 --data "$D" 2>&1 || true)
check_contains "gc prints a summary" "gc: pruned" "$GC"
for k in rel1 rel2 u1 u2; do
	check_fail "unique layer of $k deleted from disk" on_disk "$(top_layer "$T/$k")"
	check_fail "config of $k deleted from disk" on_disk "$(img_config_digest "$T/$k")"
	check_eq "unique layer of $k: blob 404" 404 "$(http_code "http://$R/v2/$REPO/blobs/$(top_layer "$T/$k")")"
done
check_fail "signature blob of u1 deleted from disk" on_disk "$SIGU1_BLOB"
GCEV=$("${B[@]}" events tail --json --action gc -n 100000 --data "$D" | jq -r .target.digest)
check_contains "berth events tail: gc event of the unique layer of rel1" "$(top_layer "$T/rel1")" "$GCEV"
check_contains "berth events tail: gc event of the signature blob of u1" "$SIGU1_BLOB" "$GCEV"
check_fail "no gc event for the shared base layer" grep -qF "$(img_layer_digests "$T/rel1" | head -n 1)" <<<"$GCEV"
check "shared base layer kept on disk" on_disk "$(img_layer_digests "$T/rel1" | head -n 1)"
check "signature blob of release-5 kept" on_disk "$SIG5_BLOB"
for k in rel3 rel4 rel5 u3; do
	check "kept $k pulls byte-identical" pull_same x "$REPO@${MD[$k]}" "$T/$k"
done
check "tag release-5 pulls byte-identical" pull_same x "$REPO:release-5" "$T/rel5"
check "tag tmp pulls u3 byte-identical" pull_same x "$REPO:tmp" "$T/u3"
check "the multi-arch index pulls (all platforms)" "${SK[@]}" "${CP[@]}" --all docker://"$R/$REPO":multi oci:"$T/multi-back":x
check "the multi-arch index is byte-identical" same_blobs "$T/multi" "$T/multi-back"

########################################################################
log "5. the index goes with its children once untagged; the subject with its signature"
img_busybox2 "$T/other" amd64 "$U other" "$U base"
check "move tag multi to another image" "${SK[@]}" "${CP[@]}" oci:"$T/other":latest docker://"$R/$REPO":multi
img_busybox2 "$T/rel6" amd64 "$U release 6" "$U base"
check "push release-6" "${SK[@]}" "${CP[@]}" --preserve-digests oci:"$T/rel6":latest docker://"$R/$REPO":release-6
RUN2=$("${B[@]}" lifecycle run --repo "$REPO" --as-of "$ASOF" --data "$D" 2>/dev/null | sort)
check_contains "the untagged index expires by rule 2" "$REPO $MULTI - 2" "$RUN2"
for c in "${CHILDREN[@]}"; do
	check_contains "child ${c:7:12} goes with its index" "$REPO $c - with:$MULTI" "$RUN2"
	check_eq "child ${c:7:12}: manifest 404" 404 "$(manifest_code "$REPO" "$c")"
done
check_contains "release-3 is now beyond the three newest" "$REPO ${MD[rel3]} release-3 1" "$RUN2"
check_eq "release-5 (tagged, among the newest) stays with its signature" 200 "$(manifest_code "$REPO" "$SIG5")"
"${B[@]}" gc --grace 0 --data "$D" >/dev/null 2>&1 || true
check_fail "config of the index's amd64 child deleted from disk" on_disk \
	"$(jq -r .config.digest "$(img_blob_path "$T/multi" "${CHILDREN[0]}")")"
check "shared base layer still on disk" on_disk "$(img_layer_digests "$T/rel1" | head -n 1)"
check "release-6 pulls byte-identical after gc" pull_same x "$REPO:release-6" "$T/rel6"
check "fsck is clean after lifecycle and gc" "${B[@]}" fsck --data "$D"

########################################################################
log "6. kill -9 in the middle of gc and of lifecycle, restart, fsck clean"
# many small unreferenced blobs and untagged manifests, so that the runs take long enough to be interrupted
mk_blobs() { # N PREFIX: uploads N small blobs into $P/crash
	local i f
	for i in $(seq 1 "$1"); do
		f=$T/b.$i
		printf '%s blob %s %s' "$U" "$2" "$i" >"$f"
		printf -- '--data-binary\n@%s\nhttp://%s/v2/%s/crash/blobs/uploads/?digest=%s\n' "$f" "$R" "$P" "$(sha "$f")"
	done | xargs -d '\n' -n 3 -P 4 curl -sf -o /dev/null -X POST
}
mk_manifests() { # N: pushes N untagged manifests sharing one config (each with its own layer)
	local i f cfg
	printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$T/cfg"
	cfg=$(sha "$T/cfg")
	curl -sf -o /dev/null -X POST --data-binary @"$T/cfg" "http://$R/v2/$P/crash/blobs/uploads/?digest=$cfg"
	for i in $(seq 1 "$1"); do
		f=$T/l.$i
		printf '%s layer %s' "$U" "$i" >"$f"
		curl -sf -o /dev/null -X POST --data-binary @"$f" "http://$R/v2/$P/crash/blobs/uploads/?digest=$(sha "$f")"
		printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
			"$OCI_M" "$cfg" "$(stat -c %s "$T/cfg")" "$(sha "$f")" "$(stat -c %s "$f")" >"$T/m.$i"
		curl -sf -o /dev/null -X PUT -H "Content-Type: $OCI_M" --data-binary @"$T/m.$i" \
			"http://$R/v2/$P/crash/manifests/$(sha "$T/m.$i")"
	done
}
mk_manifests ${CRASH_MANIFESTS:-200}
check "policy for the crash repository" "${B[@]}" lifecycle put "$P/crash" "$T/policy.json" --data "$D"
killed=0
for delay in 0.05 0.1 0.2; do
	"${B[@]}" lifecycle run --repo "$P/crash" --as-of "$ASOF" --data "$D" >/dev/null 2>&1 &
	pid=$!
	sleep "$delay"
	kill -KILL "$pid" 2>/dev/null && killed=$((killed + 1))
	wait "$pid" 2>/dev/null || true
done
log "lifecycle runs killed mid-way: $killed of 3"
mk_blobs ${CRASH_BLOBS:-1000} gc
"${B[@]}" lifecycle run --repo "$P/crash" --as-of "$ASOF" --data "$D" >/dev/null 2>&1 || true
for delay in 0.05 0.1 0.2 0.3; do
	"${B[@]}" gc --grace 0 --data "$D" >/dev/null 2>&1 &
	pid=$!
	sleep "$delay"
	kill -KILL "$pid" 2>/dev/null && killed=$((killed + 1))
	wait "$pid" 2>/dev/null || true
done
# the metadata database's rows (berth.db, or PostgreSQL when tests/e2e/test_pg.sh runs this suite with BERTH_METADATA)
rows() {
	case ${BERTH_METADATA:-} in
	postgres*) psql -tA "$BERTH_METADATA" -c "$1" ;;
	*) sqlite3 "$D/berth.db" "$1" ;;
	esac
}
log "runs killed mid-way in total: $killed of 7; pending unlinks: $(rows 'SELECT count(*) FROM gc_pending')"
rows 'SELECT substr(digest, 8) FROM blobs' >"$T/blob-rows"
check "no blob row without its file after the kills" bash -c "
	cat '$T/blob-rows' | while read -r h; do
		[ -f '$D/blobs/sha256/'\${h:0:2}/\$h ] || { echo \"row without file: \$h\"; exit 1; }
	done"
check "berth restarts" berth_stop
berth_start "$D" --no-auth
R=$REGISTRY
check "fsck is clean after the kills and a restart" "${B[@]}" fsck --data "$D"
# the scheduler thread finishes them after start, next to the requests (not before the listener opens): wait for it
for _ in $(seq 1 100); do
	[ "$(rows 'SELECT count(*) FROM gc_pending')" = 0 ] && break
	sleep 0.2
done
check_eq "the server finished the interrupted unlinks at start" 0 \
	"$(rows 'SELECT count(*) FROM gc_pending')"
check "release-6 still pulls byte-identical" pull_same x "$REPO:release-6" "$T/rel6"
GC=$("${B[@]}" gc --grace 0 --data "$D" 2>&1 || true)
check_contains "a full gc after the restart completes" "gc: pruned" "$GC"
check "fsck is clean at the end" "${B[@]}" fsck --data "$D"

########################################################################
log "7. berth serve runs lifecycle and then gc on its schedule"
check "berth stops" berth_stop
printf 'lifecycle_interval = 2s\ngc_grace = 0\n' >"$T/sched.conf"
M=127.0.0.1:$(free_port)
berth_start "$D" --no-auth --config "$T/sched.conf" --metrics-listen "$M"
metric() { # NAME -> value on the metrics listener (0 if absent)
	curl -s "http://$M/metrics" | awk -v k="$1" '$1 == k { print $2; found=1 } END { if (!found) print 0 }'
}
R=$REGISTRY
cat >"$T/keep1.json" <<'EOF'
{"rules": [{"rulePriority": 1, "description": "keep only the newest untagged image",
  "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1},
  "action": {"type": "expire"}}]}
EOF
printf '%s scheduled layer' "$U" >"$T/sl"
curl -sf -o /dev/null -X POST --data-binary @"$T/sl" "http://$R/v2/$P/sched/blobs/uploads/?digest=$(sha "$T/sl")"
for i in 1 2; do
	printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"n":"%s %s"}' "$U" "$i" >"$T/sc.$i"
	curl -sf -o /dev/null -X POST --data-binary @"$T/sc.$i" "http://$R/v2/$P/sched/blobs/uploads/?digest=$(sha "$T/sc.$i")"
	printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
		"$OCI_M" "$(sha "$T/sc.$i")" "$(stat -c %s "$T/sc.$i")" "$(sha "$T/sl")" "$(stat -c %s "$T/sl")" >"$T/sm.$i"
	curl -sf -o /dev/null -X PUT -H "Content-Type: $OCI_M" --data-binary @"$T/sm.$i" \
		"http://$R/v2/$P/sched/manifests/$(sha "$T/sm.$i")"
	sleep 1.1
done
check "policy for the scheduled repository" "${B[@]}" lifecycle put "$P/sched" "$T/keep1.json" --data "$D"
for i in $(seq 1 100); do
	[ "$(manifest_code "$P/sched" "$(sha "$T/sm.1")")" = 404 ] && ! on_disk "$(sha "$T/sc.1")" && break
	sleep 0.2
done
check_eq "the server expired the older untagged image by itself" 404 "$(manifest_code "$P/sched" "$(sha "$T/sm.1")")"
check_fail "and its GC removed the image's config blob from disk" on_disk "$(sha "$T/sc.1")"
check_eq "the newest untagged image stays" 200 "$(manifest_code "$P/sched" "$(sha "$T/sm.2")")"
check "the shared layer stays" on_disk "$(sha "$T/sl")"
for i in $(seq 1 100); do # the counters are added when the GC run returns, just after its unlink
	[ "$(metric berth_gc_blobs_deleted_total)" -ge 1 ] && break
	sleep 0.2
done
check "metrics: the scheduler's lifecycle runs are counted" test "$(metric berth_lifecycle_runs_total)" -ge 1
check "metrics: the scheduler's expired image is counted" test "$(metric berth_lifecycle_images_expired_total)" -ge 1
check "metrics: the scheduler's gc runs are counted" test "$(metric berth_gc_runs_total)" -ge 1
check "metrics: the config blob gc deleted is counted" test "$(metric berth_gc_blobs_deleted_total)" -ge 1
check "metrics: its bytes are counted" test "$(metric berth_gc_bytes_reclaimed_total)" -ge "$(stat -c %s "$T/sc.1")"
check "fsck is clean while the server runs" "${B[@]}" fsck --data "$D"

finish
