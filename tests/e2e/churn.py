#!/usr/bin/env python3
"""churn.py - rounds of connection churn against a running berth (tests/e2e/test_churn.sh; does anything leak per
connection?  issue 10).

    churn.py http://HOST:PORT|https://HOST:PORT PID ROUNDS

Each round (auth off):
  - KEEPALIVE connections, each with six GETs (/v2/, a manifest, a blob, a missing manifest, tags, the catalog) and
    a manifest PUT (a buffered body), then closed;
  - ABORTED uploads: a streamed blob POST and a manifest PUT, each closed halfway through its body;
  - over plain HTTP, H2C connections (prior knowledge, raw frames) with four GETs each, and one with RAPID streams
    reset at once;
all over TLS for an https:// URL.  After each round it waits until berth's sockets are back to where they were (the
connections are gone on the server side too), then reads berth_heap_inuse_bytes from /metrics (the least over a
few seconds, less SQLite's part: see Target.heap) and VmRSS, and prints
"ROUND n heap=BYTES sqlite=BYTES rss_kib=KIB fds=N conns=N failed=N".
The shell test judges.
"""
import hashlib
import http.client
import os
import socket
import ssl
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from h2attack import HEADERS, RST_STREAM, Conn, frame, request_block  # noqa: E402

OCI_M = "application/vnd.oci.image.manifest.v1+json"
KEEPALIVE, ABORTED, H2C, RAPID = 400, 60, 40, 500
SETTLE_HEAP = 6  # > BERTH_PULL_FLUSH_INTERVAL (5 s)
SETTLE_MAX = 60  # seconds to wait for berth to close its side (a hang guard, not a timing judgement)


def fixture(c):
    data = b'{"architecture":"amd64","os":"linux"}'
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    c.request("POST", f"/v2/churn/app/blobs/uploads/?digest={d}", body=data)
    r = c.getresponse()
    r.read()
    assert r.status == 201, r.status
    return d, manifest(d, "v1")


def manifest(d, note):
    return ('{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json",'
            '"digest":"%s","size":37},"layers":[],"annotations":{"n":"%s"}}' % (OCI_M, d, note)).encode()


def keepalive(conn, d, i):
    failed = 0
    for p in ("/v2/", "/v2/churn/app/manifests/v1", f"/v2/churn/app/blobs/{d}", "/v2/churn/app/manifests/nope",
              "/v2/churn/app/tags/list", "/v2/_catalog"):
        conn.request("GET", p, headers={"Accept": OCI_M})
        r = conn.getresponse()
        r.read()
        failed += r.status >= 500
    conn.request("PUT", f"/v2/churn/app/manifests/t{i % 20}", body=manifest(d, str(i % 20)),
                 headers={"Content-Type": OCI_M})
    r = conn.getresponse()
    r.read()
    failed += r.status != 201
    conn.close()
    return failed


def aborted(s, i):
    body = os.urandom(65536)
    if i % 2 == 0:  # a streamed monolithic blob upload
        dg = "sha256:" + hashlib.sha256(body + b"more").hexdigest()
        head = f"POST /v2/churn/app/blobs/uploads/?digest={dg} HTTP/1.1\r\nHost: x\r\nContent-Length: 131072\r\n\r\n"
        s.sendall(head.encode() + body)
    else:  # a manifest PUT (a buffered body)
        head = f"PUT /v2/churn/app/manifests/x HTTP/1.1\r\nHost: x\r\nContent-Type: {OCI_M}\r\nContent-Length: 4000\r\n\r\n"
        s.sendall(head.encode() + b"{" * 2000)
    s.close()


def h2c(host, port, streams, reset):
    """One h2c connection: `streams` GETs of the manifest, each reset at once if `reset`; waits for the answers
    (a GET answered or reset), then closes."""
    c = Conn(host, port)
    out = bytearray()
    for k in range(streams):
        sid = 2 * k + 1
        out += frame(HEADERS, 0x5, sid, request_block(b"/v2/churn/app/manifests/v1"))
        if reset:
            out += frame(RST_STREAM, 0, sid, (8).to_bytes(4, "big"))  # CANCEL
    c.send(bytes(out))
    end = time.monotonic() + SETTLE_MAX
    while not reset and c.responses + c.rst < streams and not c.closed and time.monotonic() < end:
        c.pump(0.1)
    c.drain(0.2)
    c.s.close()


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def sockets(pid):
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return n


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS:")).split()[1])


class Target:
    def __init__(self, url):
        scheme, hostport = url.split("://")
        host, port = hostport.rsplit(":", 1)
        self.tls, self.host, self.port = scheme == "https", host, int(port)
        self.ctx = ssl._create_unverified_context()

    def http(self):
        if self.tls:
            return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=30)
        return http.client.HTTPConnection(self.host, self.port, timeout=30)

    def socket(self):
        s = socket.create_connection((self.host, self.port))
        return self.ctx.wrap_socket(s) if self.tls else s

    def gauge(self, name):
        c = self.http()
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        c.close()
        return int(float(next(line.split()[1] for line in text.splitlines() if line.startswith(name + " "))))

    def heap(self):
        """berth_heap_inuse_bytes minus berth_sqlite_memory_bytes (SQLite's page caches grow with the database up
        to their cache_size: bounded, not per connection), the least of samples over SETTLE_HEAP s (longer than
        the pull-event flush interval: the pull buffer, allocated whole at a round's first pull, is freed by the
        flush).  Returns (that, SQLite's bytes at that sample)."""
        least, end = None, time.monotonic() + SETTLE_HEAP
        while least is None or time.monotonic() < end:
            sq = self.gauge("berth_sqlite_memory_bytes")
            v = self.gauge("berth_heap_inuse_bytes") - sq
            if least is None or v < least[0]:
                least = (v, sq)
            time.sleep(0.5)
        return least


def main():
    t = Target(sys.argv[1])
    pid, rounds = int(sys.argv[2]), int(sys.argv[3])
    c = t.http()
    d, m = fixture(c)
    c.request("PUT", "/v2/churn/app/manifests/v1", body=m, headers={"Content-Type": OCI_M})
    r = c.getresponse()
    r.read()
    assert r.status == 201, r.status
    c.close()
    time.sleep(0.5)
    base = sockets(pid)
    for n in range(1, rounds + 1):
        failed = 0
        for i in range(KEEPALIVE):
            failed += keepalive(t.http(), d, i)
        for i in range(ABORTED):
            aborted(t.socket(), i)
        conns = KEEPALIVE + ABORTED
        if not t.tls:
            for i in range(H2C):
                h2c(t.host, t.port, 4, False)
            h2c(t.host, t.port, RAPID, True)
            conns += H2C + 1
        t0 = time.monotonic()
        while sockets(pid) > base and time.monotonic() - t0 < SETTLE_MAX:
            time.sleep(0.2)
        heap, sq = t.heap()
        print(f"ROUND {n} heap={heap} sqlite={sq} rss_kib={rss_kib(pid)} fds={fds(pid)} conns={conns} failed={failed}",
              flush=True)


if __name__ == "__main__":
    main()
