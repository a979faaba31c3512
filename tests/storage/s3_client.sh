#!/usr/bin/env bash
# s3_client.sh TEST_BINARY...: starts Ceph with radosgw (scripts/ceph), creates a bucket with the AWS CLI and runs
# the S3 storage tests (test_s3.c: the client; test_s3upload.c: upload sessions on S3) against it.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d /tmp/berth-s3client.XXXXXX)
trap '"$root/scripts/ceph" stop "$dir/ceph"; rm -rf "$dir"' EXIT
eval "$("$root/scripts/ceph" start "$dir/ceph")"
export S3_ENDPOINT S3_TLS_ENDPOINT S3_CA_FILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY S3_BUCKET=berth-client-test \
	AWS_PAGER=""
/usr/bin/aws --endpoint-url "$S3_ENDPOINT" --region us-east-1 s3api create-bucket --bucket "$S3_BUCKET" >/dev/null
rc=0
for t in "$@"; do
	"$t" || rc=1
done
echo "--- the client over https (RGW's self-signed certificate trusted through SSL_CERT_FILE)"
S3_ENDPOINT=$S3_TLS_ENDPOINT SSL_CERT_FILE=$S3_CA_FILE "$1" || rc=1
if S3_ENDPOINT=$S3_TLS_ENDPOINT "$1" put_get_head_delete_round_trip >"$dir/untrusted.log" 2>&1; then
	echo "FAIL an untrusted certificate was accepted"
	rc=1
elif ! grep -q "TLS with 127.0.0.1:.* failed: self-signed certificate" "$dir/untrusted.log"; then
	echo "FAIL an untrusted certificate: no clear error"
	cat "$dir/untrusted.log"
	rc=1
else
	echo "ok   an untrusted certificate is refused, saying why"
fi
exit $rc
