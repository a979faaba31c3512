#!/usr/bin/python3
"""s3sign_botocore.py - the S3 client's signatures (s3.h, Berth's own SigV4) equal those of botocore's S3 signers
(S3SigV4Auth for Authorization headers, S3SigV4QueryAuth for presigned URLs: the code boto3 and the AWS CLI run) for
the requests the blob backend sends: object PUT/GET (ranged)/HEAD/DELETE, CopyObject, multipart create/part/complete/
abort/list, ListObjectsV2; path-style and virtual-hosted.

usage: s3sign_botocore.py PATH/TO/s3sign_tool"""
import datetime
import os
import subprocess
import sys
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

TOOL = sys.argv[1]
KEY, SECRET = "BERTHTESTKEY0000", "s3cr3t/with+chars=" + "x" * 22
NOW = datetime.datetime(2026, 11, 29, 12, 34, 56)
EPOCH = int(NOW.replace(tzinfo=datetime.timezone.utc).timestamp())
ENV = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET)
failures = 0


class FixedDatetime(datetime.datetime):
    @classmethod
    def utcnow(cls):
        return NOW


def url_of(endpoint, bucket, path_style, key):
    u = urlsplit(endpoint)
    host = u.netloc if path_style else f"{bucket}.{u.netloc}"
    path = "/" + (bucket + ("/" + key if key else "") if path_style else (key or ""))
    return f"{u.scheme}://{host}{path}"


def botocore_authz(method, url, query, headers, body=b"", unsigned=False):
    if unsigned:  # botocore leaves a payload unsigned only over https (the scheme is not signed)
        url = "https" + url[len("http"):]
    req = AWSRequest(method=method, url=url + ("?" + query if query else ""), data=body, headers=dict(headers))
    req.context["payload_signing_enabled"] = not unsigned
    with mock.patch.object(botocore.auth.datetime, "datetime", FixedDatetime):
        botocore.auth.S3SigV4Auth(Credentials(KEY, SECRET), "s3", "us-east-1").add_auth(req)
    return req.headers["Authorization"], req.headers["X-Amz-Content-SHA256"]


def ours_head(endpoint, bucket, path_style, method, key, query, payload_hash, extra):
    args = [TOOL, "head", endpoint, bucket, str(path_style), method, key or "-", query, payload_hash, str(EPOCH)]
    lines = [f"{k.lower()}: {v}" for k, v in extra if k.lower() != "x-amz-content-sha256"]  # the tool adds it
    out = subprocess.run(args + lines, capture_output=True, text=True, env=ENV, check=True).stdout
    return next(l[len("Authorization: "):].strip() for l in out.splitlines() if l.startswith("Authorization: "))


def expect(what, got, want):
    global failures
    ok = got == want
    failures += not ok
    print(("ok   " if ok else "FAIL ") + what + ("" if ok else f"\n  got  {got}\n  want {want}"))


def check_head(what, method, key, query="", extra=(), body=b"", path_style=1,
               endpoint="http://127.0.0.1:7480", bucket="berth-blobs", unsigned=False):
    url = url_of(endpoint, bucket, path_style, key)
    want, payload = botocore_authz(method, url, query, extra, body, unsigned)
    expect(what, ours_head(endpoint, bucket, path_style, method, key, query, payload, extra), want)


def check_presign(what, key, expires=900, path_style=1, endpoint="http://127.0.0.1:7480", bucket="berth-blobs"):
    url = url_of(endpoint, bucket, path_style, key)
    req = AWSRequest(method="GET", url=url)
    with mock.patch.object(botocore.auth.datetime, "datetime", FixedDatetime):
        botocore.auth.S3SigV4QueryAuth(Credentials(KEY, SECRET), "s3", "us-east-1", expires=expires).add_auth(req)
    ours = subprocess.run([TOOL, "presign", endpoint, bucket, str(path_style), key, str(EPOCH), str(expires)],
                          capture_output=True, text=True, env=ENV, check=True).stdout
    b, o = urlsplit(req.url), urlsplit(ours)
    expect(what + " (URL base)", o._replace(query="").geturl(), b._replace(query="").geturl())
    expect(what + " (parameters)", parse_qs(o.query), parse_qs(b.query))


def main():
    digest_key = "p/blobs/sha256/ab/ab" + "0123456789abcdef" * 3 + "0123456789abcd"
    upload_id = "2~aUTJXq1aRSBNBjxJvLdPxqlNsxl8qMo"
    check_head("PUT object, UNSIGNED-PAYLOAD", "PUT", digest_key, body=b"layer bytes", unsigned=True)
    check_head("PUT object with a signed payload", "PUT", "p/uploads/x", body=b"hello world")
    check_head("GET object with Range", "GET", digest_key, extra=[("Range", "bytes=100-1048675")])
    check_head("HEAD object", "HEAD", digest_key)
    check_head("DELETE object", "DELETE", digest_key)
    check_head("CopyObject", "PUT", digest_key, extra=[("x-amz-copy-source", "/berth-blobs/p/uploads/x")])
    check_head("UploadPartCopy (a multipart copy's range)", "PUT", digest_key,
               query=f"partNumber=3&uploadId={upload_id}",
               extra=[("x-amz-copy-source", "/berth-blobs/p/uploads/x"),
                      ("x-amz-copy-source-range", "bytes=12582912-18874367")])
    check_head("CreateMultipartUpload", "POST", "p/uploads/u1", query="uploads=")
    check_head("UploadPart, UNSIGNED-PAYLOAD", "PUT", "p/uploads/u1", query=f"partNumber=7&uploadId={upload_id}",
               body=b"part bytes", unsigned=True)
    check_head("CompleteMultipartUpload", "POST", "p/uploads/u1", query=f"uploadId={upload_id}",
               body=b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"e\"</ETag></Part>"
                    b"</CompleteMultipartUpload>")
    check_head("AbortMultipartUpload", "DELETE", "p/uploads/u1", query=f"uploadId={upload_id}")
    check_head("ListMultipartUploads", "GET", None, query="prefix=p%2Fuploads%2F&uploads=")
    check_head("ListObjectsV2 with a continuation token", "GET", None,
               query="continuation-token=1%2Fabc%3D%3D&list-type=2&prefix=p%2Fblobs%2F")
    check_head("virtual-hosted GET", "GET", digest_key, path_style=0, endpoint="http://s3.example.test:9000")
    check_presign("presigned GET, path-style", digest_key)
    check_presign("presigned GET, virtual-hosted, 7 days", digest_key, expires=604800, path_style=0,
                  endpoint="http://s3.example.test:9000")
    print(f"{failures} failed")
    return 1 if failures else 0


sys.exit(main())
