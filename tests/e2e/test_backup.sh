#!/usr/bin/env bash
# Backup and restore (issue 11), with the real server and skopeo: a full backup taken while skopeo pushes, an
# incremental one after; each restored into a new directory, served, and every tagged image pulled back
# byte-identical; a non-empty target is refused; truncated and corrupted archives (zstd damage, and a blob altered
# inside a well-formed stream) are reported and leave nothing at the target.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/server.sh"
. "$HERE/../../scripts/lib/images.sh"

e2e_tmpdir T
DATA=$T/data
U="backup $$ $(date +%s%N)" # fresh content: skopeo's blob cache must not skip uploads
SK=(skopeo --command-timeout 300s)
CP=(copy --quiet --src-tls-verify=false --dest-tls-verify=false --preserve-digests)
B() { "$BERTH_BIN" "$@"; }

# same_blobs A B: every blob of OCI layout A is in B with identical bytes
same_blobs() {
	local f
	for f in "$1"/blobs/sha256/*; do
		cmp -s "$f" "$2/blobs/sha256/${f##*/}" || {
			echo "missing or different: ${f##*/}"
			return 1
		}
	done
}

log "1. a registry with images"
berth_start "$DATA"
on_exit berth_stop
PW=$(grep -o 'with password [A-Za-z0-9_-]*' "$DATA.log" | awk '{print $3}')
CREDS=(--dest-creds "admin:$PW")
N=6
for i in $(seq 1 $N); do img_busybox "$T/img$i" amd64 "$U $i"; done
img_large "$T/img0" 48 "$U large"
img_index "$T/idx" "$U idx"
for i in 0 1 2; do check "push img$i" "${SK[@]}" "${CP[@]}" "${CREDS[@]}" oci:"$T/img$i":latest \
	docker://"$REGISTRY/bk/img$i:v1"; done
check "push a multi-arch index" "${SK[@]}" "${CP[@]}" --all "${CREDS[@]}" oci:"$T/idx":latest \
	docker://"$REGISTRY/bk/idx:v1"

log "2. a full backup while skopeo pushes"
(
	for i in $(seq 3 $N); do
		"${SK[@]}" "${CP[@]}" "${CREDS[@]}" oci:"$T/img$i":latest docker://"$REGISTRY/bk/img$i:v1" || exit 1
	done
) &
PUSHER=$!
check "berth backup (full) during pushes" B backup "$T/full.tar.zst" --data "$DATA"
wait $PUSHER && PRC=0 || PRC=$?
check_eq "the pushes succeeded" 0 "$PRC"
check "no temporary files left next to the archive" test -z "$(ls "$T" | grep -E 'tmp|snapshot' || true)"
check "GNU tar reads the archive" bash -c "zstd -dc '$T/full.tar.zst' | tar -t >/dev/null"
check "the archive holds the 48 MiB layer" \
	bash -c "zstd -dc '$T/full.tar.zst' | tar -tv | awk '\$3 > 50000000' | grep -q blobs/sha256/"

log "3. an incremental backup after more pushes"
img_busybox "$T/img7" amd64 "$U 7"
check "push img7" "${SK[@]}" "${CP[@]}" "${CREDS[@]}" oci:"$T/img7":latest docker://"$REGISTRY/bk/img7:v1"
OUT=$(B backup "$T/incr.tar.zst" --data "$DATA" --incremental-from "$T/full.tar.zst" 2>&1) || true
check_contains "incremental backup left blobs to its base" "left to the base" "$OUT"
FULL_SIZE=$(stat -c %s "$T/full.tar.zst")
INCR_SIZE=$(stat -c %s "$T/incr.tar.zst")
check "the incremental archive is smaller (no 48 MiB layer)" test "$INCR_SIZE" -lt $((FULL_SIZE / 4))
berth_stop

# restore_and_pull ARCHIVE TARGET [restore args...]: restore, serve, pull every tag byte-identical
restore_and_pull() {
	local archive=$1 target=$2 n=0 repo tag src
	shift 2
	B restore "$archive" --data "$target" "$@" || return 1
	berth_start "$target" || return 1
	while IFS='|' read -r repo tag; do
		src=$T/${repo#bk/}
		rm -rf "$T/pull"
		if [ "$repo" = bk/idx ]; then
			"${SK[@]}" "${CP[@]}" --all --src-creds "admin:$PW" docker://"$REGISTRY/$repo:$tag" oci:"$T/pull":x ||
				return 1
		else
			"${SK[@]}" "${CP[@]}" --src-creds "admin:$PW" docker://"$REGISTRY/$repo:$tag" oci:"$T/pull":x ||
				return 1
		fi
		[ "$(img_manifest_digest "$T/pull")" = "$(img_manifest_digest "$src")" ] || {
			echo "$repo: manifest digest differs"
			return 1
		}
		same_blobs "$src" "$T/pull" || return 1
		n=$((n + 1))
	done < <(sqlite3 "$target/berth.db" "select r.name, t.name from tags t join repos r on r.id = t.repo_id")
	berth_stop
	echo "$n images pulled byte-identical"
	[ "$n" -gt 0 ]
}

log "4. restore the full backup, serve it, pull everything"
check "full: restored registry serves every tag byte-identical" restore_and_pull "$T/full.tar.zst" "$T/r1"
TAGS1=$(sqlite3 "$T/r1/berth.db" "select count(*) from tags")
check "the full backup has at least the images pushed before it" test "$TAGS1" -ge 4
check_eq "restored blob rows equal the stats row" \
	"$(sqlite3 "$T/r1/berth.db" 'select count(*), sum(size) from blobs')" \
	"$(sqlite3 "$T/r1/berth.db" 'select blobs, blob_bytes from stats')"

log "5. restore the incremental backup on its base"
check_fail "incremental without its base is refused" B restore "$T/incr.tar.zst" --data "$T/r2"
check "nothing left at the target" test ! -e "$T/r2"
check "incremental + base: every tag byte-identical" restore_and_pull "$T/incr.tar.zst" "$T/r2" --base "$T/full.tar.zst"
check_eq "the incremental restore has all $((N + 3)) images (img0-img$N, the index, img7)" $((N + 3)) \
	"$(sqlite3 "$T/r2/berth.db" "select count(*) from tags")"

log "6. refusals and damaged archives"
mkdir -p "$T/busy" && touch "$T/busy/x"
OUT=$(B restore "$T/full.tar.zst" --data "$T/busy" 2>&1) || true
check_contains "a non-empty target is refused" "not empty" "$OUT"
check "the non-empty target is untouched" test -f "$T/busy/x"
mkdir -p "$T/empty"
check "an empty existing directory is accepted" B restore "$T/full.tar.zst" --data "$T/empty"
check "and holds the registry" test -f "$T/empty/berth.db"

head -c $((FULL_SIZE / 2)) "$T/full.tar.zst" >"$T/trunc.tar.zst"
OUT=$(B restore "$T/trunc.tar.zst" --data "$T/r3" 2>&1) && RC=0 || RC=$?
check "a truncated archive fails" test "$RC" -ne 0
check_contains "and says so" "truncated" "$OUT"
check "nothing at the target" test ! -e "$T/r3"
head -c $((FULL_SIZE - 10)) "$T/full.tar.zst" >"$T/trunc2.tar.zst"
OUT=$(B restore "$T/trunc2.tar.zst" --data "$T/r3" 2>&1) && RC=0 || RC=$?
check "an archive missing its last 10 bytes fails" test "$RC" -ne 0
check "nothing at the target" test ! -e "$T/r3"

cp "$T/full.tar.zst" "$T/flip.tar.zst"
printf '\xff\x00\xff\x00' | dd of="$T/flip.tar.zst" bs=1 seek=$((FULL_SIZE / 3)) conv=notrunc status=none
OUT=$(B restore "$T/flip.tar.zst" --data "$T/r4" 2>&1) && RC=0 || RC=$?
check "a damaged zstd stream fails" test "$RC" -ne 0
check "nothing at the target" test ! -e "$T/r4"
log "   ($OUT)"

# a well-formed stream whose blob bytes were altered: only the digest check can catch it
mkdir -p "$T/x" && (cd "$T/x" && zstd -dc "$T/full.tar.zst" | tar -x)
BL=$(find "$T/x/blobs" -type f -size +1k | head -n 1)
chmod u+w "$BL"
printf 'X' | dd of="$BL" bs=1 seek=100 conv=notrunc status=none
(cd "$T/x" && tar --format=ustar -c berth-backup.json berth.db keys blobs berth-backup.end | zstd -q -o "$T/alt.tar.zst")
OUT=$(B restore "$T/alt.tar.zst" --data "$T/r5" 2>&1) && RC=0 || RC=$?
check "an altered blob fails" test "$RC" -ne 0
check_contains "and is named" "is corrupted" "$OUT"
check "nothing at the target" test ! -e "$T/r5"
check "no temporary restore directory left" test -z "$(ls -A "$T" | grep berth-restore || true)"
finish
