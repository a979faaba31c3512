#!/usr/bin/python3
"""ecr_boto.py - the boto3/botocore half of test_ecr.sh, against a real `berth serve`.

  ecr_boto.py raw ENDPOINT OP BODY [--tamper] [--age SECONDS] [--region R]
      signs BODY for OP with botocore's SigV4Auth (credentials from the environment), optionally changes the body
      after signing or signs with a clock SECONDS in the past, sends it and prints "<status> <__type>".
  ecr_boto.py paginate ENDPOINT REPO COUNT CONFIG_DIGEST CONFIG_SIZE LAYER_DIGEST LAYER_SIZE
      PutImage COUNT distinct manifests (one config and layer, an annotation each), then lists them with boto3's
      describe_images paginator (PageSize 100) while another thread keeps pushing, and checks that no image comes
      twice, none that existed before the listing is missing, and every page holds at most 100.  Prints a summary
      line; exits non-zero on a violation.
"""
import datetime
import json
import sys
import threading
import time
import urllib.request
import urllib.error

import boto3
import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.session import Session

TARGET = "AmazonEC2ContainerRegistry_V20150921."


def creds():
    return Session().get_credentials()


def raw(endpoint, op, body, tamper=False, age=0, region="us-east-1"):
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET + op}
    req = AWSRequest(method="POST", url=endpoint + "/", data=body.encode(), headers=headers)
    if age:
        real = datetime.datetime

        class Past(real):
            @classmethod
            def utcnow(cls):
                return real.utcnow() - datetime.timedelta(seconds=age)

        botocore.auth.datetime.datetime = Past
    SigV4Auth(creds(), "ecr", region).add_auth(req)
    p = req.prepare()
    data = p.body
    if tamper:
        data = data.replace(b"a", b"b", 1) if b"a" in data else data + b" "
    r = urllib.request.Request(endpoint + "/", data=data, method="POST",
                               headers={k: v for k, v in p.headers.items()})
    try:
        with urllib.request.urlopen(r) as resp:
            status, text = resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        t = json.loads(text).get("__type", "-")
    except ValueError:
        t = "not-json"
    print(status, t)
    return 0


def manifest(i, cfg, cfg_size, layer, layer_size):
    return json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": cfg_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer,
                    "size": layer_size}],
        "annotations": {"org.example.n": str(i)},
    }, separators=(",", ":"))


def paginate(endpoint, repo, count, cfg, cfg_size, layer, layer_size):
    ecr = boto3.client("ecr", endpoint_url=endpoint, region_name="us-east-1")
    t0 = time.time()
    for i in range(count):
        ecr.put_image(repositoryName=repo, imageManifest=manifest(i, cfg, cfg_size, layer, layer_size),
                      imageTag="p%05d" % i)
    put_s = time.time() - t0
    before = {d["imageDigest"] for page in ecr.get_paginator("describe_images").paginate(
        repositoryName=repo, PaginationConfig={"PageSize": 1000}) for d in page["imageDetails"]}
    stop = threading.Event()
    pushed = []

    def pusher():  # concurrent pushes while the listing runs
        c = boto3.client("ecr", endpoint_url=endpoint, region_name="us-east-1")
        i = count
        while not stop.is_set():
            c.put_image(repositoryName=repo, imageManifest=manifest(i, cfg, cfg_size, layer, layer_size))
            pushed.append(i)
            i += 1

    th = threading.Thread(target=pusher)
    th.start()
    seen, pages, biggest = [], 0, 0
    try:
        for page in ecr.get_paginator("describe_images").paginate(repositoryName=repo,
                                                                   PaginationConfig={"PageSize": 100}):
            pages += 1
            biggest = max(biggest, len(page["imageDetails"]))
            seen += [d["imageDigest"] for d in page["imageDetails"]]
    finally:
        stop.set()
        th.join()
    dup = len(seen) - len(set(seen))
    missing = len(before - set(seen))
    print("put %d images in %.1f s (%.0f/s); listing: %d pages, %d images (%d existed before, %d pushed during), "
          "%d duplicates, %d missing, largest page %d" % (count, put_s, count / put_s, pages, len(seen), len(before),
                                                           len(pushed), dup, missing, biggest))
    ok = dup == 0 and missing == 0 and biggest <= 100 and len(before) >= count and pages >= count // 100
    return 0 if ok else 1


def main(argv):
    if argv[1] == "raw":
        kw = {}
        rest = argv[5:]
        while rest:
            if rest[0] == "--tamper":
                kw["tamper"] = True
                rest = rest[1:]
            elif rest[0] == "--age":
                kw["age"] = int(rest[1])
                rest = rest[2:]
            elif rest[0] == "--region":
                kw["region"] = rest[1]
                rest = rest[2:]
            else:
                raise SystemExit("unknown option " + rest[0])
        return raw(argv[2], argv[3], argv[4], **kw)
    if argv[1] == "paginate":
        return paginate(argv[2], argv[3], int(argv[4]), argv[5], int(argv[6]), argv[7], int(argv[8]))
    raise SystemExit(__doc__)


sys.exit(main(sys.argv))
