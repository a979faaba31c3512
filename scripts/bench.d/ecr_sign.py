#!/usr/bin/python3
"""ecr_sign.py - writes a wrk script that sends one ECR request signed by botocore's own SigV4 signer.

  ecr_sign.py ENDPOINT REGION OPERATION BODY OUT.lua

Credentials come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).  The signature stays valid for
15 minutes (X-Amz-Date); the server verifies it on every request, as it would for distinct requests.  Used by
scripts/bench (scripts/bench.d/ecr.sh); not a test.
"""
import sys

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.session import Session


def main():
    endpoint, region, op, body, out = sys.argv[1:6]
    headers = {"Content-Type": "application/x-amz-json-1.1",
               "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921." + op}
    req = AWSRequest(method="POST", url=endpoint + "/", data=body.encode(), headers=headers)
    SigV4Auth(Session().get_credentials(), "ecr", region).add_auth(req)
    with open(out, "w") as f:
        f.write('wrk.method = "POST"\n')
        f.write("wrk.body = [==[%s]==]\n" % body)
        for k, v in req.prepare().headers.items():
            if k.lower() in ("content-length", "host"):
                continue  # wrk sends both (Host from the URL, as signed)
            f.write('wrk.headers["%s"] = [==[%s]==]\n' % (k, v))


if __name__ == "__main__":
    main()
