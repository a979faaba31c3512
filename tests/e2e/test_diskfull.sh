#!/usr/bin/env bash
# Out of space and I/O errors (issue 10): berth on a 96 MiB tmpfs data directory filled to the brim.
#   - uploads (monolithic and chunked PATCH) answer 507 with an OCI error body; a chunked session keeps what it
#     had acknowledged and resumes later;
#   - a manifest PUT whose SQLite commit cannot grow the WAL (SQLITE_FULL) answers 507 promptly, and the writer
#     keeps working (never wedges);
#   - pulls, HEADs, tags/list and _catalog keep working; nothing half-stored remains (no staging or spill file, no
#     row, no blob file for what was refused);
#   - once space is freed, the same pushes succeed without a restart;
#   - EIO from fsync (fault points upload.fsync, blob.fsync_dir; a BERTH_FAULTS build) refuses the blob: no 201,
#     not visible, and a later push of the same blob commits it durably.
# Needs root (mount -t tmpfs); the mount is removed at exit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/server.sh"

[ "$(id -u)" = 0 ] || {
	echo "test_diskfull.sh needs root to mount a tmpfs" >&2
	E2E_FINISHED=1
	exit 2
}
e2e_tmpdir T
M=$T/mnt
mkdir -p "$M"
mount -t tmpfs -o size=96m tmpfs "$M"
on_exit umount -l "$M"
on_exit berth_kill
D=$M # the mount is the data dir: berth.log ($D.log) stays outside the full filesystem
OCI_M=application/vnd.oci.image.manifest.v1+json
sha() { echo "sha256:$(sha256sum "$1" | cut -c1-64)"; }
url() { echo "http://$REGISTRY$1"; }
# req OUT ARGS...: curl with a deadline; the body goes to OUT, the status is printed ("000": no answer)
req() {
	local out=$1
	shift
	curl -s -o "$out" -w '%{http_code}' --max-time 60 "$@" || true
}
getsha() { curl -sf --max-time 30 -H "Accept: $OCI_M" "$(url "$1")" | sha256sum | sed 's/^/sha256:/; s/ .*//'; }
oci_error() { python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["errors"][0]; assert e["code"] and e["message"]' "$1"; }
location() { tr -d '\r' <"$1" | awk -F': ' 'tolower($1)=="location"{print $2}'; }

berth_start "$D" --no-auth

# ---- an acknowledged image and a half-done chunked upload, before the disk fills ----
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$T/config"
head -c 1000000 /dev/urandom >"$T/layer"
head -c 1000000 /dev/urandom >"$T/refused"
head -c 600000 /dev/urandom >"$T/chunked"
head -c 300000 "$T/chunked" >"$T/c1"
tail -c +300001 "$T/chunked" >"$T/c2"
for f in config layer; do
	check_eq "push $f before the disk fills" 201 \
		"$(req /dev/null -X POST --data-binary @"$T/$f" "$(url "/v2/df/app/blobs/uploads/?digest=$(sha "$T/$f")")")"
done
python3 - "$T" "$(sha "$T/config")" "$(stat -c %s "$T/config")" "$(sha "$T/layer")" <<'EOF'
import json, sys
t, dc, sc, dl = sys.argv[1:]
m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
     "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": dc, "size": int(sc)},
     "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": dl, "size": 1000000}]}
open(t + "/m1", "w").write(json.dumps(m))
m["annotations"] = {"big": "x" * 3000000}  # 3 MB: its commit needs 3 MB more WAL
open(t + "/mbig", "w").write(json.dumps(m))
m["annotations"] = {"small": "y"}
open(t + "/msmall", "w").write(json.dumps(m))
EOF
check_eq "push manifest v1 before the disk fills" 201 \
	"$(req /dev/null -X PUT -H "Content-Type: $OCI_M" --data-binary @"$T/m1" "$(url /v2/df/app/manifests/v1)")"
req /dev/null -X POST -D "$T/h" "$(url /v2/df/app/blobs/uploads/)" >/dev/null
LOC=$(location "$T/h")
check_eq "first chunk of a session before the disk fills" 202 \
	"$(req /dev/null -X PATCH -H 'Content-Range: 0-299999' --data-binary @"$T/c1" "$(url "$LOC")")"

# ---- fill the disk to the brim ----
dd if=/dev/zero of="$M/fill" bs=64k 2>/dev/null || true
check_eq "the data directory is full" 0 "$(df --output=avail -k "$M" | tail -n 1 | tr -d ' ')"

c=$(req "$T/out" -X POST --data-binary @"$T/refused" "$(url "/v2/df/app/blobs/uploads/?digest=$(sha "$T/refused")")")
check_eq "full: monolithic blob push answers 507" 507 "$c"
check "full: the 507 carries an OCI error body" oci_error "$T/out"
c=$(req "$T/out" -X PATCH -H 'Content-Range: 300000-599999' --data-binary @"$T/c2" "$(url "$LOC")")
check_eq "full: chunked PATCH answers 507" 507 "$c"
check "full: the PATCH's 507 carries an OCI error body" oci_error "$T/out"
check_eq "full: the session still holds what was acknowledged" "0-299999" \
	"$(curl -s -o /dev/null -D - "$(url "$LOC")" | tr -d '\r' | awk -F': ' 'tolower($1)=="range"{print $2}')"
c=$(req "$T/out" -X PUT -H "Content-Type: $OCI_M" --data-binary @"$T/mbig" "$(url /v2/df/app/manifests/big)")
check_eq "full: a manifest PUT whose SQLite commit cannot grow (SQLITE_FULL) answers 507" 507 "$c"
check "full: the manifest's 507 carries an OCI error body" oci_error "$T/out"
c=$(req "$T/out" -X PUT -H "Content-Type: $OCI_M" --data-binary @"$T/msmall" "$(url /v2/df/app/manifests/small)")
case $c in 201 | 507) check_eq "full: the writer still answers a small manifest PUT (201 or 507, got $c)" ok ok ;;
*) check_eq "full: the writer still answers a small manifest PUT (201 or 507)" "201|507" "$c" ;;
esac
# a body above the spill threshold (8 MiB) is buffered by h2o 2.2.5 in <data>/tmp before berth sees the request:
# on a full disk h2o resets the connection (DESIGN.md); berth must survive it and leave no spill file behind
head -c 20000000 /dev/urandom >"$T/huge"
c=$(req /dev/null -X POST --data-binary @"$T/huge" "$(url "/v2/df/app/blobs/uploads/?digest=$(sha "$T/huge")")")
check "full: a 20 MB push is refused (status $c), not stored" test "$c" != 201 -a "$c" != 202

check_eq "full: manifest v1 still pulls byte-identical" "$(sha "$T/m1")" "$(getsha /v2/df/app/manifests/v1)"
check_eq "full: the layer still pulls byte-identical" "$(sha "$T/layer")" "$(getsha "/v2/df/app/blobs/$(sha "$T/layer")")"
check_eq "full: HEAD of the layer" 200 "$(req /dev/null -I "$(url "/v2/df/app/blobs/$(sha "$T/layer")")")"
check_contains "full: tags/list" '"v1"' "$(curl -sf "$(url /v2/df/app/tags/list)")"
check_contains "full: _catalog" '"df/app"' "$(curl -sf "$(url /v2/_catalog)")"
check_eq "full: the refused blob is not visible" 404 "$(req /dev/null -I "$(url "/v2/df/app/blobs/$(sha "$T/refused")")")"
check_eq "full: the refused manifest is not visible" 404 "$(req /dev/null "$(url /v2/df/app/manifests/big)")"
check_eq "full: no file of the refused blob" no "$(test -e "$D/blobs/sha256/$(sha "$T/refused" | cut -c8-9)/$(sha "$T/refused" | cut -c8-)" && echo yes || echo no)"
check_eq "full: only the open session's staging file remains" "${LOC##*/}" "$(ls "$D/uploads")"
check_eq "full: no spill file remains in tmp/" "" "$(ls -A "$D/tmp")"

# ---- space freed: the same pushes work, without a restart ----
rm -f "$M/fill"
check_eq "freed: the refused blob now pushes" 201 \
	"$(req /dev/null -X POST --data-binary @"$T/refused" "$(url "/v2/df/app/blobs/uploads/?digest=$(sha "$T/refused")")")"
check_eq "freed: the chunked session resumes" 202 \
	"$(req /dev/null -X PATCH -H 'Content-Range: 300000-599999' --data-binary @"$T/c2" "$(url "$LOC")")"
check_eq "freed: the chunked session completes" 201 "$(req /dev/null -X PUT "$(url "$LOC?digest=$(sha "$T/chunked")")")"
check_eq "freed: the chunked blob reads back whole" "$(sha "$T/chunked")" "$(getsha "/v2/df/app/blobs/$(sha "$T/chunked")")"
check_eq "freed: the big manifest now pushes" 201 \
	"$(req /dev/null -X PUT -H "Content-Type: $OCI_M" --data-binary @"$T/mbig" "$(url /v2/df/app/manifests/big)")"
check_eq "freed: the big manifest reads back byte-identical" "$(sha "$T/mbig")" "$(getsha /v2/df/app/manifests/big)"
check_eq "freed: the 20 MB blob now pushes" 201 \
	"$(req /dev/null -X POST --data-binary @"$T/huge" "$(url "/v2/df/app/blobs/uploads/?digest=$(sha "$T/huge")")")"
check "SIGTERM stops berth" berth_stop
check_eq "integrity_check after the disk-full episode" ok "$(sqlite3 "$D/berth.db" 'PRAGMA integrity_check')"

# ---- EIO from fsync: refused, never acknowledged ----
eio() {
	local point=$1 f=$T/eio.$1 c
	head -c 500000 /dev/urandom >"$f"
	BERTH_FAULT=$point berth_start "$D" --no-auth
	c=$(req "$T/out" -X POST --data-binary @"$f" "$(url "/v2/df/app/blobs/uploads/?digest=$(sha "$f")")")
	check_eq "EIO at $point: the blob is refused with 500" 500 "$c"
	check "EIO at $point: the refusal carries an OCI error body" oci_error "$T/out"
	check_contains "EIO at $point: the fault point was reached" "fault point $point reached" "$(cat "$D.log")"
	check_eq "EIO at $point: the blob is not visible" 404 "$(req /dev/null -I "$(url "/v2/df/app/blobs/$(sha "$f")")")"
	check_eq "EIO at $point: no staging file remains" "" "$(ls -A "$D/uploads")"
	berth_stop
	berth_start "$D" --no-auth
	check_eq "after EIO at $point: the same blob pushes" 201 \
		"$(req /dev/null -X POST --data-binary @"$f" "$(url "/v2/df/app/blobs/uploads/?digest=$(sha "$f")")")"
	check_eq "after EIO at $point: and reads back whole" "$(sha "$f")" "$(getsha "/v2/df/app/blobs/$(sha "$f")")"
	berth_stop
}
eio upload.fsync
eio blob.fsync_dir
check_eq "integrity_check at the end" ok "$(sqlite3 "$D/berth.db" 'PRAGMA integrity_check')"
finish
