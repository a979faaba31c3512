#!/usr/bin/env python3
"""loadmix.py - a mixed, authenticated load on a running berth (tests/e2e/test_load.sh; issue 10).

    loadmix.py HOST:PORT REPO USER:SECRET[,USER:SECRET...] SECONDS CONNS PID      (fixture JSON on stdin)

CONNS keep-alive HTTP/1.1 connections (one thread each) for SECONDS, each repeating a random mix of: token
requests (GET /token with Basic credentials), manifest GETs by tag (digest checked), blob HEADs, blob GETs (digest
checked), tags/list, and pushes (a unique small blob, POST ?digest=, and now and then a manifest PUT with a new
tag), all with the bearer token of the connection.  Connection i logs in with the (i mod n)-th credentials.  Meanwhile /proc/PID/status is sampled every 50 ms.

A 429 with Retry-After (berth's caps, e.g. BERTH_UPLOAD_BODIES_PER_ADDR: 200 connections come from one address) is
backpressure: the request waits and is retried, up to THROTTLE_RETRIES times, and is counted as throttled.
Every final answer must be the expected one: any other status, a short body, a digest mismatch or a connection error is
an error.  Prints one line "RESULT requests=N errors=N status5xx=N peak_rss_kib=N peak_anon_kib=N ..." and the
first errors; exits 1 if there was any error.
"""
import base64
import hashlib
import http.client
import json
import os
import random
import sys
import threading
import time

OCI_M = "application/vnd.oci.image.manifest.v1+json"
THROTTLE_RETRIES = 30  # attempts of one request answered 429 + Retry-After before it counts as an error


class Shared:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.errors = []
        self.n5xx = 0
        self.requests = 0
        self.reconnects = 0
        self.throttled = 0

    def note(self, op, ok, status, why=""):
        with self.lock:
            self.requests += 1
            self.counts[op] = self.counts.get(op, 0) + 1
            if status >= 500:
                self.n5xx += 1
            if not ok:
                self.errors.append(f"{op}: status {status} {why}")


class Client:
    def __init__(self, host, port, repo, basic, fixture, shared, ident):
        self.host, self.port, self.repo, self.basic = host, port, repo, basic
        self.fx, self.sh, self.ident = fixture, shared, ident
        self.conn = None
        self.token = None
        self.seq = 0

    def request(self, method, path, body=None, headers=None, auth="bearer"):
        h = dict(headers or {})
        if auth == "basic":
            h["Authorization"] = "Basic " + self.basic
        elif self.token:
            h["Authorization"] = "Bearer " + self.token
        for _ in range(THROTTLE_RETRIES):
            s, r, data = self.request_once(method, path, body, h)
            if s != 429:
                return s, r, data
            # backpressure (a named cap in berth, e.g. upload bodies per address): a well-behaved client waits
            # the Retry-After berth sends with every 429 and tries again; only a 429 without it is an error
            after = r.getheader("retry-after")
            if after is None or not after.isdigit():
                return s, r, data
            with self.sh.lock:
                self.sh.throttled += 1
            time.sleep(int(after))
        return s, r, data

    def request_once(self, method, path, body, h):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, r, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                # a keep-alive connection the server closed between two requests is retried once on a new one
                self.conn.close()
                self.conn = None
                with self.sh.lock:
                    self.sh.reconnects += 1
                if attempt == 1:
                    raise e
        raise AssertionError("unreachable")

    def get_token(self):
        s, _, d = self.request("GET", f"/token?service=berth&scope=repository:{self.repo}:pull,push", auth="basic")
        ok = s == 200 and "token" in json.loads(d or b"{}")
        if ok:
            self.token = json.loads(d)["token"]
        self.sh.note("token", ok, s)

    def pull_manifest(self):
        s, r, d = self.request("GET", f"/v2/{self.repo}/manifests/v1", headers={"Accept": OCI_M})
        ok = s == 200 and "sha256:" + hashlib.sha256(d).hexdigest() == self.fx["manifest"]
        self.sh.note("manifest_get", ok, s)

    def head_blob(self):
        s, r, _ = self.request("HEAD", f"/v2/{self.repo}/blobs/{self.fx['layer']}")
        ok = s == 200 and r.getheader("content-length") == str(self.fx["layer_size"])
        self.sh.note("blob_head", ok, s)

    def get_blob(self):
        s, _, d = self.request("GET", f"/v2/{self.repo}/blobs/{self.fx['layer']}")
        ok = s == 200 and "sha256:" + hashlib.sha256(d).hexdigest() == self.fx["layer"]
        self.sh.note("blob_get", ok, s)

    def tags(self):
        s, r, d = self.request("GET", f"/v2/{self.repo}/tags/list")
        body = json.loads(d or b"{}") if s == 200 else {}
        tags = body.get("tags") or []
        # "v1" is on this page, or the page is full and links to the next (more than BERTH_PAGE_MAX tags)
        ok = s == 200 and body.get("name") == self.repo and ("v1" in tags or r.getheader("link") is not None)
        self.sh.note("tags_list", ok, s)

    def push(self):
        self.seq += 1
        blob = os.urandom(2048) + f"{self.ident}-{self.seq}".encode()
        dg = "sha256:" + hashlib.sha256(blob).hexdigest()
        s, _, _ = self.request("POST", f"/v2/{self.repo}/blobs/uploads/?digest={dg}", body=blob)
        self.sh.note("blob_push", s == 201, s)
        if s != 201 or self.seq % 4 != 0:
            return
        m = json.dumps({"schemaVersion": 2, "mediaType": OCI_M,
                        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                   "digest": self.fx["config"], "size": self.fx["config_size"]},
                        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": dg,
                                    "size": len(blob)}]}).encode()
        s, _, _ = self.request("PUT", f"/v2/{self.repo}/manifests/c{self.ident}-{self.seq}", body=m,
                               headers={"Content-Type": OCI_M})
        self.sh.note("manifest_put", s == 201, s)

    def run(self, deadline):
        ops = [(self.get_token, 1), (self.pull_manifest, 30), (self.head_blob, 20), (self.get_blob, 10),
               (self.tags, 10), (self.push, 6)]
        fns = [f for f, w in ops for _ in range(w)]
        try:
            self.get_token()
            while time.monotonic() < deadline:
                random.choice(fns)()
        except Exception as e:  # a connection error is an error, never a crash of the driver
            self.sh.note("exception", False, 0, repr(e))


def sample(pid, stop, peak):
    while not stop.is_set():
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k in ("VmRSS", "RssAnon", "Threads"):
                        peak[k] = max(peak.get(k, 0), int(v.split()[0]))
        except OSError:
            peak["gone"] = 1
        time.sleep(0.05)


def main():
    hostport, repo, creds, secs, conns, pid = sys.argv[1:7]
    host, port = hostport.rsplit(":", 1)
    fx = json.loads(sys.stdin.read())
    sh = Shared()
    basics = [base64.b64encode(c.encode()).decode() for c in creds.split(",")]
    clients = [Client(host, int(port), repo, basics[i % len(basics)], fx, sh, i) for i in range(int(conns))]
    stop, peak = threading.Event(), {}
    sampler = threading.Thread(target=sample, args=(pid, stop, peak))
    sampler.start()
    deadline = time.monotonic() + float(secs)
    t0 = time.monotonic()
    threads = [threading.Thread(target=c.run, args=(deadline,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    el = time.monotonic() - t0
    stop.set()
    sampler.join()
    ops = " ".join(f"{k}={v}" for k, v in sorted(sh.counts.items()))
    print(f"RESULT requests={sh.requests} errors={len(sh.errors)} status5xx={sh.n5xx} seconds={el:.1f} "
          f"req_per_s={sh.requests / el:.0f} conns={conns} reconnects={sh.reconnects} throttled={sh.throttled} peak_rss_kib={peak.get('VmRSS', 0)} "
          f"peak_anon_kib={peak.get('RssAnon', 0)} peak_threads={peak.get('Threads', 0)} {ops}")
    for e in sh.errors[:10]:
        print("ERROR", e)
    sys.exit(1 if sh.errors or sh.n5xx or peak.get("gone") else 0)


if __name__ == "__main__":
    main()
