#!/usr/bin/python3
"""sigv4_botocore.py - Berth's SigV4 verifier against the real signer: requests signed by botocore's SigV4Auth
(the code the AWS CLI and boto3 run) are accepted, and each change an attacker could make after signing - body,
a signed header, the host's port, the date, the region, the secret - is refused with the right reason.

usage: sigv4_botocore.py PATH/TO/sigv4_check"""
import json
import subprocess
import sys
import time
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

CHECK = sys.argv[1]
KEY, SECRET = "BKTESTKEY0000000000A", "s3cr3t/with+chars=" + "x" * 22
failures = 0


def sign(method="POST", url="http://127.0.0.1:5123/", body=b"{}", headers=None, region="us-east-1",
         token=None, service="ecr"):
    h = {"Content-Type": "application/x-amz-json-1.1",
         "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories"}
    h.update(headers or {})
    req = AWSRequest(method=method, url=url, data=body, headers=h)
    SigV4Auth(Credentials(KEY, SECRET, token), service, region).add_auth(req)
    p = req.prepare()
    u = urlsplit(p.url)
    hs = [[k, v.decode() if isinstance(v, bytes) else v] for k, v in p.headers.items()]
    if not any(k.lower() == "host" for k, _ in hs):
        hs.append(["Host", u.netloc])  # botocore signs the netloc, the HTTP client sends it as Host
    b = p.body or b""
    return {"method": method, "path": u.path or "/", "query": u.query, "headers": hs,
            "body": b.decode() if isinstance(b, bytes) else b, "secret": SECRET, "region": "us-east-1",
            "service": service, "now": int(time.time())}


def header(r, name):
    return next(v for k, v in r["headers"] if k.lower() == name)


def set_header(r, name, value):
    r["headers"] = [[k, value if k.lower() == name else v] for k, v in r["headers"]]
    return r


def expect(what, r, want):
    global failures
    got = subprocess.run([CHECK], input=json.dumps(r), capture_output=True, text=True, check=True).stdout.strip()
    ok = got == want
    failures += not ok
    print(("ok   " if ok else "FAIL ") + what + ("" if ok else f": got {got}, want {want}"))


def main():
    body = json.dumps({"repositoryNames": ["team/app"], "maxResults": 5}).encode()
    expect("botocore-signed ECR request verifies", sign(body=body), "OK")
    expect("empty body verifies", sign(body=b""), "OK")
    expect("session token, signed by botocore, verifies", sign(body=body, token="FQoGZXIvYXdzE+token/="), "OK")
    expect("GET with an unordered, escaped query verifies",
           sign(method="GET", url="http://127.0.0.1:5123/v2/a%20b/x?z=1&a=%2F%20&a=0&empty=", body=b""), "OK")
    r = sign(body=body)
    r["body"] = r["body"].replace("team/app", "team/ap2")
    expect("changed body is refused", r, "SIGV4_EMISMATCH")
    r = set_header(sign(body=body), "x-amz-target", "AmazonEC2ContainerRegistry_V20150921.DeleteRepository")
    expect("changed signed header (X-Amz-Target) is refused", r, "SIGV4_EMISMATCH")
    r = set_header(sign(body=body), "host", "127.0.0.1:5124")
    expect("changed Host port is refused", r, "SIGV4_EMISMATCH")
    r = sign(body=body, token="tok")
    r = set_header(r, "x-amz-security-token", "tok2")
    expect("changed security token is refused", r, "SIGV4_EMISMATCH")
    r = sign(body=body)
    d = header(r, "x-amz-date")
    later = d[:-3] + ("%02dZ" % ((int(d[-3:-1]) + 1) % 60))
    expect("changed X-Amz-Date is refused", set_header(r, "x-amz-date", later), "SIGV4_EMISMATCH")
    r = sign(body=body)
    r["now"] += 15 * 60 + 5
    expect("X-Amz-Date 15 minutes old is refused", r, "SIGV4_ESTALE")
    r = sign(body=body)
    r["now"] -= 15 * 60 + 5
    expect("X-Amz-Date 15 minutes ahead is refused", r, "SIGV4_ESTALE")
    expect("request signed for eu-west-1 is refused", sign(body=body, region="eu-west-1"), "SIGV4_EREGION")
    expect("request signed for service s3 is refused", dict(sign(body=body, service="s3"), service="ecr"),
           "SIGV4_ESERVICE")
    r = sign(body=body)
    r["secret"] = SECRET[:-1] + "y"
    expect("verifying with another secret fails", r, "SIGV4_EMISMATCH")
    print(f"{failures} failed")
    return 1 if failures else 0


sys.exit(main())
