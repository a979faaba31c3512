#!/usr/bin/env bash
# shellcheck disable=SC1091,SC2317,SC2153  # sourced libs (BERTH_BIN comes from server.sh); helpers are called via check
# `berth backup` / `berth restore` on PostgreSQL (scripts/pg) + Ceph RGW (scripts/ceph) (issue #12: backup works the
# same on both backends).
#   1. a two-node registry (A and B on one database and one bucket) filled by skopeo and curl: an index, an image,
#      a 20 MiB image, users, grants, a robot token, access keys, a lifecycle policy
#   2. `berth backup --config` while images are pushed through B: the archive's berth.db (made from one PostgreSQL
#      snapshot) is consistent (every manifest's blobs and every tag's manifest are in it, every blob row has its
#      blob in the archive), images acknowledged before the backup are in it, pushes went on during it
#   3. restore into a fresh PostgreSQL + S3 target, killed (SIGKILL) after its third blob, then run again: every
#      image pulls byte-identical, passwords, grants, the robot token and a token signed before the backup work,
#      aws ecr get-lifecycle-policy returns the policy, fsck is clean
#   4. the same archive restored into SQLite + disk: the same checks
#   5. a SQLite + disk backup restored into PostgreSQL + S3, into PostgreSQL + disk and into SQLite + S3; a backup
#      of the latter restored into SQLite + disk
#   6. clear errors: PostgreSQL unreachable, wrong S3 secret, a corrupt blob in the archive (nothing of it stored), a bucket that vanishes mid-backup (the backup holds
#      the nodes' maintenance lock meanwhile, so no GC round runs); a target holding another registry is refused (3)
#   7. a blob GET cut off once mid-blob (fault point s3.get_cut) is resumed by a ranged GET: the archive restores,
#      every blob byte-identical to its object; a cut that persists past the two resumed GETs fails the backup (exit
#      1, a clear message, no archive)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
. "$HERE/server.sh"
. "$ROOT/scripts/lib/images.sh"

e2e_tmpdir T
unset BERTH_METADATA BERTH_STORAGE BERTH_DATA BERTH_CONFIG
export AWS_PAGER="" AWS_CONFIG_FILE=$T/aws-config AWS_SHARED_CREDENTIALS_FILE=$T/aws-credentials
: >"$AWS_CONFIG_FILE"
: >"$AWS_SHARED_CREDENTIALS_FILE"
log "starting PostgreSQL and Ceph with radosgw"
mkdir -p "$T/pg"
URL=$("$ROOT/scripts/pg" start "$T/pg")
on_exit "$ROOT/scripts/pg" stop "$T/pg"
URL_TGT=$("$ROOT/scripts/pg" createdb "$T/pg" tgt)
URL_TGT3=$("$ROOT/scripts/pg" createdb "$T/pg" tgt3)
URL_GONE=$("$ROOT/scripts/pg" createdb "$T/pg" gone)
on_exit "$ROOT/scripts/ceph" stop "$T/ceph"
eval "$("$ROOT/scripts/ceph" start "$T/ceph")"
S3=(env AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"
	/usr/bin/aws --endpoint-url "$S3_ENDPOINT" --region us-east-1 s3api)
"${S3[@]}" create-bucket --bucket berth-bk >/dev/null
"${S3[@]}" create-bucket --bucket berth-gone >/dev/null
# conf NAME DATA METADATA STORAGE: a configuration file $T/NAME.conf
conf() {
	mkdir -p "$2"
	printf 'data = %s\nmetadata = %s\nstorage = %s\ns3_endpoint = %s\ns3_access_key = %s\ns3_secret_key = %s\n' \
		"$2" "$3" "$4" "$S3_ENDPOINT" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$T/$1.conf"
}
conf src "$T/A" "$URL" s3://berth-bk/src
conf tgt "$T/tgt" "$URL_TGT" s3://berth-bk/tgt
conf tgt3 "$T/tgt3" "$URL_TGT3" s3://berth-bk/tgt3
conf gone "$T/gone" "$URL_GONE" s3://berth-gone/reg
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
mkdir -p "$T/B" "$T/cli"
B() { "$BERTH_BIN" "$@" --config "$T/src.conf"; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
token() { curl -s -u "$2" "http://$1/token?service=berth&scope=$3" | jq -r .token; }
sha() { echo "sha256:$(sha256sum "$1" | cut -c1-64)"; }
keyvar() { grep "^$2=" "$1" | tail -n 1 | cut -d= -f2-; }
objects() { "${S3[@]}" list-objects-v2 --bucket berth-bk --prefix "$1/blobs/" --query 'length(Contents)' --output text; }

########################################################################
log "1. a two-node registry on PostgreSQL + RGW: users, grants, token, access keys, pushes, a lifecycle policy"
check "user add alice" B user add alice --password-stdin <<<"alice-passwd-01"
check "user add bob" B user add bob --password-stdin <<<"bob-passwd-0001"
check "grant alice pull,push,delete on team/*" B grant add user:alice pull,push,delete 'team/*'
check "grant bob pull on team/*" B grant add user:bob pull 'team/*'
ROBOT=$(B token create --name ci --scope 'repository:team/*:pull' --ttl 1d | tail -n 1 | awk '{print $NF}')
check "a robot token was created" test -n "$ROBOT"
B accesskey create --user alice --description backup >"$T/alice.key"
AK=$(keyvar "$T/alice.key" AWS_ACCESS_KEY_ID)
AS=$(keyvar "$T/alice.key" AWS_SECRET_ACCESS_KEY)
berth_start "$T/A" --config "$T/src.conf" --access-log off
A=$REGISTRY
A_PID=$BERTH_PID
berth_start "$T/B" --config "$T/src.conf" --access-log off
NB=$REGISTRY
B_PID=$BERTH_PID
BERTH_PID=
stop_pid() { if kill -TERM "$1" 2>/dev/null; then wait "$1" 2>/dev/null || true; fi; }
on_exit stop_pid "$A_PID"
on_exit stop_pid "$B_PID"
img_index "$T/idx" "backup index"
img_busybox "$T/app" amd64 "backup app"
img_large "$T/big" 20 "backup big"
SK=(skopeo --insecure-policy copy -q --dest-tls-verify=false --dest-creds alice:alice-passwd-01)
check "skopeo pushes an index through A" "${SK[@]}" --all "oci:$T/idx" "docker://$A/team/idx:multi"
check "skopeo pushes an image through B" "${SK[@]}" "oci:$T/app" "docker://$NB/team/app:v1"
check "skopeo pushes a 20 MiB image through A" "${SK[@]}" "oci:$T/big" "docker://$A/team/big:v1"
POLICY='{"rules":[{"rulePriority":1,"description":"keep 50","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":50},"action":{"type":"expire"}}]}'
check "lifecycle put team/app" B lifecycle put team/app - <<<"$POLICY"
for img in idx:multi app:v1 big:v1; do
	skopeo --insecure-policy copy -q --all --src-tls-verify=false --src-creds alice:alice-passwd-01 \
		"docker://$A/team/$img" "dir:$T/before-${img/:/-}"
done
TOLD=$(token "$A" alice:alice-passwd-01 'repository:team/app:pull')
check "a token issued by A before the backup" test -n "$TOLD"

########################################################################
log "2. berth backup (PostgreSQL snapshot + blobs streamed from RGW) while images are pushed through B"
TB=$(token "$NB" alice:alice-passwd-01 'repository:team/live:pull,push')
# pusher: image after image (a random layer, a config, a manifest tagged N) through B; logs N when acknowledged
pusher() {
	local i=0 l c m
	mkdir -p "$T/live"
	while [ ! -e "$T/stop" ]; do
		i=$((i + 1))
		l=$T/live/l$i c=$T/live/c$i m=$T/live/m$i
		head -c 300000 /dev/urandom >"$l"
		printf '{"architecture":"amd64","os":"linux","n":%d}' "$i" >"$c"
		for f in "$l" "$c"; do
			[ "$(code -H "Authorization: Bearer $TB" -X POST --data-binary @"$f" \
				"http://$NB/v2/team/live/blobs/uploads/?digest=$(sha "$f")")" = 201 ] || continue 2
		done
		printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}' \
			"$(sha "$c")" "$(stat -c %s "$c")" "$(sha "$l")" "$(stat -c %s "$l")" >"$m"
		[ "$(code -H "Authorization: Bearer $TB" -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
			--data-binary @"$m" "http://$NB/v2/team/live/manifests/$i")" = 201 ] && echo "$i" >>"$T/acked"
	done
}
: >"$T/acked"
pusher &
PUSHER=$!
on_exit kill "$PUSHER"
# wait_acked N: until N pushes were acknowledged (at most 60 s)
wait_acked() {
	local i
	for i in $(seq 1 300); do
		[ "$(wc -l <"$T/acked")" -lt "$1" ] || return 0
		sleep 0.2
	done
	return 1
}
check "three images pushed through B" wait_acked 3
BEFORE=$(wc -l <"$T/acked")
check "berth backup --config (two nodes serving, pushes going on)" "$BERTH_BIN" backup "$T/full.tar.zst" \
	--config "$T/src.conf" --data "$T/cli"
AFTER=$(wc -l <"$T/acked")
check "pushes through B go on after the backup" wait_acked $((AFTER + 2))
touch "$T/stop"
wait "$PUSHER" || true
log "pushes acknowledged: $BEFORE before the backup, $AFTER when it ended, $(wc -l <"$T/acked") in all"
check "the data directory of the command holds no berth.db" test ! -e "$T/cli/berth.db"
zstd -dcq "$T/full.tar.zst" | tar -xOf - berth.db >"$T/arch.db"
Q() { sqlite3 "$T/arch.db" "$1"; }
check_eq "the archive's berth.db passes integrity_check" ok "$(Q 'PRAGMA integrity_check')"
check_eq "every blob of every manifest is in it" 0 \
	"$(Q 'SELECT count(*) FROM manifest_blobs m WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = m.digest)')"
check_eq "every blob row has its blob in the archive" "$(Q 'SELECT count(*) FROM blobs')" \
	"$(zstd -dcq "$T/full.tar.zst" | tar -tf - | grep -c '^blobs/sha256/')"
LIVE=$(Q "SELECT t.name FROM tags t JOIN repos r ON r.id = t.repo_id WHERE r.name = 'team/live' ORDER BY 0 + t.name")
check "the images acknowledged before the backup are in it" test "$(wc -l <<<"$LIVE")" -ge "$BEFORE"
check_eq "its images pushed through B are exactly the first ones acknowledged (one snapshot, in commit order)" \
	"$(head -n "$(wc -l <<<"$LIVE")" "$T/acked")" "$LIVE"
check_eq "the signing keys are in it (shared_keys rows as keys/ files)" \
	"$(psql -At "$URL" -c 'SELECT count(*) FROM shared_keys')" \
	"$(zstd -dcq "$T/full.tar.zst" | tar -tf - | grep -c '^keys/')"
check_eq "its users are PostgreSQL's" "$(psql -At "$URL" -c 'SELECT string_agg(name, $$,$$ ORDER BY id) FROM users')" \
	"$(Q "SELECT group_concat(name, ',') FROM (SELECT name FROM users ORDER BY id)")"

# verify REGISTRY: every image pulls byte-identical, logins, grants, tokens, ECR lifecycle policy
verify() {
	local R=$1 img i TA
	for img in idx:multi app:v1 big:v1; do
		check "skopeo pulls team/$img" skopeo --insecure-policy copy -q --all --src-tls-verify=false \
			--src-creds alice:alice-passwd-01 "docker://$R/team/$img" "dir:$T/after-$R-${img/:/-}"
		check "team/$img is byte-identical" diff -r "$T/before-${img/:/-}" "$T/after-$R-${img/:/-}"
	done
	TA=$(token "$R" alice:alice-passwd-01 'repository:team/live:pull')
	for i in $LIVE; do
		[ "$(curl -s -H "Authorization: Bearer $TA" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
			"http://$R/v2/team/live/manifests/$i" | sha256sum | cut -c1-64)" = "$(sha256sum <"$T/live/m$i" | cut -c1-64)" ] &&
			[ "$(curl -s -H "Authorization: Bearer $TA" "http://$R/v2/team/live/blobs/$(sha "$T/live/l$i")" |
				sha256sum | cut -c1-64)" = "$(sha256sum <"$T/live/l$i" | cut -c1-64)" ] || echo "$i" >>"$T/bad-$R"
	done
	check "every image pushed during the backup and in it is byte-identical (manifest and layer)" \
		test ! -s "$T/bad-$R"
	check_eq "alice's password logs in" 200 "$(code -u alice:alice-passwd-01 "http://$R/token?service=berth&scope=repository:team/app:pull")"
	check_eq "a wrong one does not" 401 "$(code -u alice:wrong "http://$R/token?service=berth&scope=repository:team/app:pull")"
	TA=$(token "$R" bob:bob-passwd-0001 'repository:team/app:pull,push')
	check_eq "bob's grant (pull) holds" 200 "$(code -H "Authorization: Bearer $TA" -I "http://$R/v2/team/app/manifests/v1")"
	check_eq "bob has no push" 401 "$(code -H "Authorization: Bearer $TA" -X POST "http://$R/v2/team/app/blobs/uploads/")"
	TA=$(token "$R" "ci:$ROBOT" 'repository:team/app:pull')
	check_eq "the robot token works" 200 "$(code -H "Authorization: Bearer $TA" -I "http://$R/v2/team/app/manifests/v1")"
	check_eq "a token A signed before the backup verifies" 200 \
		"$(code -H "Authorization: Bearer $TOLD" -I "http://$R/v2/team/app/manifests/v1")"
	GOT=$(AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$AS /usr/bin/aws --endpoint-url "http://$R" --region us-east-1 \
		ecr get-lifecycle-policy --repository-name team/app --query lifecyclePolicyText --output text)
	check_eq "aws ecr get-lifecycle-policy returns the policy (alice's access key signs)" "$(jq -cS . <<<"$POLICY")" \
		"$(jq -cS . <<<"$GOT")"
	check "skopeo pushes a new repository (ids continue past the restored ones)" "${SK[@]}" "oci:$T/app" \
		"docker://$R/team/fresh:v1"
}

########################################################################
log "3. restore into a fresh PostgreSQL + S3 target: killed after its third blob, run again"
RS=("$BERTH_BIN" restore "$T/full.tar.zst" --config "$T/tgt.conf")
rc=0
BERTH_FAULT=restore.after_blob:3 "${RS[@]}" >"$T/r1.out" 2>&1 || rc=$?
check_contains "the fault point was armed (needs BERTH_FAULTS, on outside Release builds)" \
	"fault injection armed: restore.after_blob" "$(cat "$T/r1.out")"
check_eq "the first run was killed by SIGKILL" 137 "$rc"
check_eq "three objects were stored before the kill" 3 "$(objects tgt)"
check_eq "no row was written yet" 0 "$(psql -At "$URL_TGT" -c 'SELECT count(*) FROM blobs')"
rc=0
"${RS[@]}" >"$T/r2.out" 2>&1 || rc=$?
cat "$T/r2.out" >&2
check_eq "the second run finishes" 0 "$rc"
check_contains "it found the three stored blobs" "3 already in the target" "$(cat "$T/r2.out")"
NBLOBS=$(Q 'SELECT count(*) FROM blobs')
check_eq "every blob is an object in the target bucket" "$NBLOBS" "$(objects tgt)"
check_eq "and a row" "$NBLOBS" "$(psql -At "$URL_TGT" -c 'SELECT count(*) FROM blobs')"
check "the staging directory is gone" test ! -e "$T/tgt/.berth-restore"
for t in repos manifests manifest_blobs tags users tokens grants lifecycle_policies access_keys; do
	check_eq "table $t: as many rows as in the archive" "$(Q "SELECT count(*) FROM $t")" \
		"$(psql -At "$URL_TGT" -c "SELECT count(*) FROM $t")"
done
berth_start "$T/tgt" --config "$T/tgt.conf" --access-log off
verify "$REGISTRY"
berth_stop
check "fsck on the PostgreSQL + S3 target is clean" "$BERTH_BIN" fsck --config "$T/tgt.conf"
OTHER=$T/other
mkdir -p "$OTHER"
"$BERTH_BIN" user add carol --data "$OTHER" --password-stdin <<<"carol-passwd-01"
check "a backup of another (SQLite) registry" "$BERTH_BIN" backup "$T/other.tar.zst" --data "$OTHER"
OUT=$("$BERTH_BIN" restore "$T/other.tar.zst" --config "$T/tgt.conf" 2>&1) && rc=0 || rc=$?
check_eq "restoring it into the target is refused" 1 "$rc"
check_contains "saying why" "another registry's data" "$OUT"

########################################################################
log "4. the same archive restored into SQLite + disk"
check "berth restore --data NEWDIR" "$BERTH_BIN" restore "$T/full.tar.zst" --data "$T/plain"
check "fsck on it is clean" "$BERTH_BIN" fsck --data "$T/plain"
berth_start "$T/plain" --access-log off
verify "$REGISTRY"
berth_stop

########################################################################
log "5. a SQLite + disk backup restored into PostgreSQL + S3"
check "berth backup of the SQLite registry" "$BERTH_BIN" backup "$T/plain.tar.zst" --data "$T/plain"
check "restored into PostgreSQL + S3" "$BERTH_BIN" restore "$T/plain.tar.zst" --config "$T/tgt3.conf"
check "fsck on it is clean" "$BERTH_BIN" fsck --config "$T/tgt3.conf"
berth_start "$T/tgt3" --config "$T/tgt3.conf" --access-log off
check "skopeo pulls team/fresh:v1 (pushed into the SQLite registry)" skopeo --insecure-policy copy -q \
	--src-tls-verify=false --src-creds alice:alice-passwd-01 "docker://$REGISTRY/team/fresh:v1" "dir:$T/fresh3"
check "skopeo pulls team/big:v1" skopeo --insecure-policy copy -q --src-tls-verify=false \
	--src-creds alice:alice-passwd-01 "docker://$REGISTRY/team/big:v1" "dir:$T/big3"
check "byte-identical" diff -r "$T/before-big-v1" "$T/big3"
berth_stop
printf 'data = %s\nmetadata = %s\n' "$T/tgt4" "$("$ROOT/scripts/pg" createdb "$T/pg" tgt4)" >"$T/tgt4.conf"
check "and into PostgreSQL + blobs on disk" "$BERTH_BIN" restore "$T/plain.tar.zst" --config "$T/tgt4.conf"
check "fsck on it is clean" "$BERTH_BIN" fsck --config "$T/tgt4.conf"
check_eq "its blobs are files" "$(sqlite3 "$T/plain/berth.db" 'SELECT count(*) FROM blobs')" \
	"$(find "$T/tgt4/blobs/sha256" -type f | wc -l)"
sed "s|^metadata = .*|metadata = sqlite|; s|^data = .*|data = $T/lite|; s|s3://berth-bk/tgt3|s3://berth-bk/lite|" \
	"$T/tgt3.conf" >"$T/lite.conf"
check "and into SQLite + S3" "$BERTH_BIN" restore "$T/plain.tar.zst" --config "$T/lite.conf"
check "a backup of SQLite + S3" "$BERTH_BIN" backup "$T/lite.tar.zst" --config "$T/lite.conf"
check "restored into SQLite + disk" "$BERTH_BIN" restore "$T/lite.tar.zst" --data "$T/lite-plain"
check "fsck on it is clean" "$BERTH_BIN" fsck --data "$T/lite-plain"
check_eq "with every blob of the first" "$(cd "$T/plain/blobs" && find . -type f | sort)" \
	"$(cd "$T/lite-plain/blobs" && find . -type f | sort)"

########################################################################
log "6. clear errors"
sed "s|^metadata = .*|metadata = postgresql://postgres@127.0.0.1:$(free_port)/berth|" "$T/src.conf" >"$T/nopg.conf"
OUT=$("$BERTH_BIN" backup "$T/x.tar.zst" --config "$T/nopg.conf" --data "$T/cli" 2>&1) && rc=0 || rc=$?
check_eq "PostgreSQL unreachable: backup exits 1" 1 "$rc"
check_contains "saying so" "cannot connect to the PostgreSQL database" "$OUT"
check "and leaves no archive" test ! -e "$T/x.tar.zst" -a ! -e "$T/x.tar.zst.tmp"
OUT=$("$BERTH_BIN" restore "$T/full.tar.zst" --config "$T/nopg.conf" 2>&1) && rc=0 || rc=$?
check_eq "PostgreSQL unreachable: restore exits 1" 1 "$rc"
sed "s|^s3_secret_key = .*|s3_secret_key = wrong-secret|" "$T/src.conf" >"$T/badkey.conf"
OUT=$("$BERTH_BIN" backup "$T/x.tar.zst" --config "$T/badkey.conf" --data "$T/cli" 2>&1) && rc=0 || rc=$?
check_eq "a wrong S3 secret: backup exits 1" 1 "$rc"
check_contains "naming the storage" "cannot use s3://berth-bk/src" "$OUT"
check_contains "with S3's answer" "SignatureDoesNotMatch" "$OUT"
# an archive whose largest blob (the 20 MiB layer: a multipart upload) has one byte changed
zstd -dcq "$T/full.tar.zst" >"$T/bad.tar"
BADHEX=$(/usr/bin/python3 - "$T/bad.tar" <<'PY'
import sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    m = max((m for m in t.getmembers() if m.name.startswith("blobs/")), key=lambda m: m.size)
with open(sys.argv[1], "r+b") as f:
    f.seek(m.offset_data + m.size // 2)
    b = f.read(1)
    f.seek(m.offset_data + m.size // 2)
    f.write(bytes([b[0] ^ 1]))
print(m.name.rsplit("/", 1)[1])
PY
)
zstd -q --rm "$T/bad.tar" -o "$T/bad.tar.zst"
sed "s|^metadata = .*|metadata = $("$ROOT/scripts/pg" createdb "$T/pg" bad)|; s|^data = .*|data = $T/bad|; s|s3://berth-bk/tgt|s3://berth-bk/bad|" \
	"$T/tgt.conf" >"$T/bad.conf"
OUT=$("$BERTH_BIN" restore "$T/bad.tar.zst" --config "$T/bad.conf" 2>&1) && rc=0 || rc=$?
check_eq "a corrupt blob in the archive stops the restore" 1 "$rc"
check_contains "naming it" "sha256:$BADHEX in $T/bad.tar.zst is corrupt" "$OUT"
check_eq "its object was not stored" 404 "$("${S3[@]}" head-object --bucket berth-bk --key "bad/blobs/sha256/${BADHEX:0:2}/$BADHEX" \
	2>&1 | grep -o '404' | head -n 1 || true)"
# shellcheck disable=SC2016  # a JMESPath literal, not a shell expansion
check_eq "nor its multipart upload left" 0 "$("${S3[@]}" list-multipart-uploads --bucket berth-bk --prefix bad/ \
	--query 'length(Uploads || `[]`)' --output text)"
check_eq "and no row was written" 0 "$(psql -At "$(sed -n 's/^metadata = //p' "$T/bad.conf")" -c 'SELECT count(*) FROM blobs')"
# a bucket that vanishes mid-backup: the archive's temporary file is a FIFO, so the backup stops at its first write
# after the PostgreSQL snapshot; the bucket is emptied and deleted meanwhile, then the FIFO is read
check "a registry in bucket berth-gone" "$BERTH_BIN" restore "$T/plain.tar.zst" --config "$T/gone.conf"
mkfifo "$T/gone.tar.zst.tmp"
"$BERTH_BIN" backup "$T/gone.tar.zst" --config "$T/gone.conf" >"$T/gone.out" 2>&1 &
GP=$!
for _ in $(seq 1 300); do [ -e "$T/gone.tar.zst.snapshot/berth.db" ] && break; sleep 0.1; done
# the nodes' lifecycle/GC lock (db_pg.h DB_PG_MAINT_KEY) is held by the backup until its last blob: no GC round starts
check_eq "while it runs, the maintenance lock is the backup's (a node's GC round would skip)" f \
	"$(psql -At "$URL_GONE" -c 'SELECT pg_try_advisory_lock(x'"'6265727468676300'"'::bigint)')"
"${S3[@]:0:$((${#S3[@]} - 1))}" s3 rb s3://berth-gone --force >/dev/null
check_eq "the bucket is gone" 0 "$("${S3[@]}" list-buckets --query "length(Buckets[?Name=='berth-gone'])" --output text)"
cat "$T/gone.tar.zst.tmp" >/dev/null
rc=0
wait "$GP" || rc=$?
check_eq "the bucket vanished mid-backup: backup exits 1" 1 "$rc"
check_contains "saying so" "the bucket is gone or no longer readable" "$(cat "$T/gone.out")"
check_eq "the maintenance lock is free again" t \
	"$(psql -At "$URL_GONE" -c 'SELECT pg_try_advisory_lock(x'"'6265727468676300'"'::bigint)')"
check "and leaves no archive" test ! -e "$T/gone.tar.zst" -a ! -e "$T/gone.tar.zst.tmp"

########################################################################
log "7. a blob GET cut off mid-blob (fault point s3.get_cut) is resumed with a ranged GET; a cut that persists fails"
# s3.get_cut:1:1 cuts the first blob GET off once (its answer stops after half its first read), then lets every GET
# through (storage/s3_conn.c read_fixed)
rc=0
BERTH_FAULT=s3.get_cut:1:1 "$BERTH_BIN" backup "$T/cut.tar.zst" --config "$T/src.conf" --data "$T/cli" \
	>"$T/cut.out" 2>&1 || rc=$?
cat "$T/cut.out" >&2
check_contains "the fault point was armed" "fault injection armed: s3.get_cut" "$(cat "$T/cut.out")"
check_eq "one GET was cut off" 1 "$(grep -c 'fault point s3.get_cut reached' "$T/cut.out" || true)"
check_eq "the backup resumed it and finished" 0 "$rc"
check "the archive restores (SQLite + disk)" "$BERTH_BIN" restore "$T/cut.tar.zst" --data "$T/cut"
check "fsck on it is clean (every blob hashes to its digest)" "$BERTH_BIN" fsck --data "$T/cut"
check_eq "it holds every blob row of the registry" "$(psql -At "$URL" -c 'SELECT count(*) FROM blobs')" \
	"$(find "$T/cut/blobs/sha256" -type f | wc -l)"
"${S3[@]:0:$((${#S3[@]} - 1))}" s3 cp --recursive --quiet s3://berth-bk/src/blobs "$T/objs"
: >"$T/cut.bad"
for f in "$T"/cut/blobs/sha256/*/*; do
	h=${f##*/}
	cmp -s "$f" "$T/objs/sha256/${h:0:2}/$h" && [ "$(sha256sum <"$f" | cut -c1-64)" = "$h" ] || echo "$h" >>"$T/cut.bad"
done
check "every blob is byte-identical to its object in the bucket (and hashes to its digest)" test ! -s "$T/cut.bad"
# s3.get_cut:1: every GET answer is cut off mid-body: the first blob's first try and both resumed ones fail
rc=0
BERTH_FAULT=s3.get_cut:1 "$BERTH_BIN" backup "$T/cut2.tar.zst" --config "$T/src.conf" --data "$T/cli" \
	>"$T/cut2.out" 2>&1 || rc=$?
cat "$T/cut2.out" >&2
check_eq "a cut that persists: backup exits 1" 1 "$rc"
check_eq "after three GETs of the blob (the first and two resumed)" 3 \
	"$(grep -c 'fault point s3.get_cut reached' "$T/cut2.out" || true)"
check_contains "saying so" "its GET failed 3 times, the last 2 resumed where the one before stopped" \
	"$(cat "$T/cut2.out")"
check "and leaves no archive" test ! -e "$T/cut2.tar.zst" -a ! -e "$T/cut2.tar.zst.tmp"
finish
