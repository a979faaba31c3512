#!/usr/bin/env python3
"""A real webhook receiver for the e2e tests: an http.server that accepts berth's notification envelopes.

    webhook_receiver.py --port PORT --out FILE [--secret S] [--delay SECONDS] [--tls-cert PEM --tls-key PEM]

Every POST must carry Content-Type application/vnd.docker.distribution.events.v1+json and, with --secret, a valid
X-Berth-Signature-256 (sha256=<hex HMAC-SHA256 of the body>).  A valid request is answered 200 and each of its
events is appended to FILE as one JSON line (flushed and fsynced before the answer); an invalid one is answered
400/401 and a line describing it goes to FILE.bad.  --delay sleeps before answering (a slow receiver); the ids of a
request it is sleeping on are appended to FILE.inflight first (one line per request), so a test can act while a
delivery is in flight.
--tls-cert/--tls-key serve HTTPS.
"""
import argparse
import hashlib
import hmac
import json
import os
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONTENT_TYPE = "application/vnd.docker.distribution.events.v1+json"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--secret", default="")
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--tls-cert", default="")
    ap.add_argument("--tls-key", default="")
    args = ap.parse_args()

    def bad(why):
        with open(args.out + ".bad", "a") as f:
            f.write(why + "\n")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if args.delay > 0:
                try:
                    ids = [str(ev.get("id")) for ev in json.loads(body)["events"]]
                except (ValueError, KeyError, AttributeError):
                    ids = []
                with open(args.out + ".inflight", "a") as f:
                    f.write(" ".join(ids) + "\n")
                time.sleep(args.delay)
            if self.headers.get("Content-Type") != CONTENT_TYPE:
                bad("content-type %r" % self.headers.get("Content-Type"))
                self.send_response(400)
                self.end_headers()
                return
            if args.secret:
                want = "sha256=" + hmac.new(args.secret.encode(), body, hashlib.sha256).hexdigest()
                got = self.headers.get("X-Berth-Signature-256", "")
                if not hmac.compare_digest(want, got):
                    bad("signature %r" % got)
                    self.send_response(401)
                    self.end_headers()
                    return
            try:
                events = json.loads(body)["events"]
            except (ValueError, KeyError) as e:
                bad("body %r" % e)
                self.send_response(400)
                self.end_headers()
                return
            with open(args.out, "a") as f:
                for ev in events:
                    f.write(json.dumps(ev, sort_keys=True) + "\n")
                f.flush()
                os.fsync(f.fileno())
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, fmt, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("listening on %d" % args.port, file=sys.stderr, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
