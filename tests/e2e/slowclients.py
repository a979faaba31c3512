#!/usr/bin/env python3
"""slowclients.py - slow clients against a running berth (tests/e2e/test_slowclients.sh; issue 10).

    slowclients.py HOST:PORT PID MANIFEST_PATH [--heads N] [--silent N] [--uploads N] [--manifests N] [--others N]
    slowclients.py HOST:PORT PID h2

h2 mode (prior-knowledge h2c, frames from h2attack.py): one connection that sends its preface and SETTINGS and then
nothing, one that sends a POST's HEADERS and then one byte of DATA every 0.5 s, and one that trickles a 4 KB HEADERS
frame one byte every 0.5 s; reports after how many seconds berth closed each (h2o's idle timeout closes the first,
berth's h2guard.c the other two; docs/HARDENING.md).

In a process of its own, opens
  - HEADS connections that trickle a request head one byte every 0.5 s (slowloris; the head is 4 KB long),
  - SILENT connections that send nothing at all,
  - UPLOADS connections that send a blob upload's head (POST .../blobs/uploads/?digest=, Content-Length 1 MiB:
    a streamed body) and then trickle the body one byte every 0.5 s,
  - MANIFESTS connections doing the same with a manifest PUT (a body buffered after authorization),
  - OTHERS connections doing the same with a POST to /v2/ (any other body, buffered);
and waits until berth has closed every one of them (a hang guard of 150 s, not a timing judgement).  Meanwhile this
process GETs MANIFEST_PATH in a loop, on a keep-alive connection and every tenth time on a new one, and one
legitimate slow upload (128 KiB at about 4 KiB/s, eight times berth's minimum body rate) runs to completion.
berth's VmRSS and open file descriptors are sampled throughout.

Prints one line "RESULT key=value ..." (counts, the upload's status, RSS and descriptor counts); the shell test judges.
"""
import hashlib
import http.client
import multiprocessing
import os
import selectors
import socket
import sys
import threading
import time

GUARD = 150  # seconds: a hang guard for the whole run, not a threshold


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def nfds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def trickle(host, port, groups, out):
    """groups: list of (kind, count, head, trickle_head).  Reports per kind: opened, closed by berth, answered
    (berth sent bytes before closing), still open at the guard."""
    sel = selectors.DefaultSelector()
    conns = []
    for kind, count, head, slow_head in groups:
        for _ in range(count):
            s = socket.create_connection((host, port))
            s.setblocking(False)
            c = {"kind": kind, "s": s, "head": head, "sent": 0, "slow_head": slow_head, "open": True, "got": 0}
            if not slow_head and head:
                s.sendall(head)
                c["sent"] = len(head)
            sel.register(s, selectors.EVENT_READ, c)
            conns.append(c)
    t0 = last = time.time()
    while any(c["open"] for c in conns) and time.time() - t0 < GUARD:
        for key, _ in sel.select(timeout=0.5):
            c = key.data
            try:
                d = c["s"].recv(65536)
            except OSError:
                d = b""
            if d:
                c["got"] += len(d)
                continue
            sel.unregister(c["s"])
            c["s"].close()
            c["open"] = False
        if time.time() - last < 0.5:
            continue
        last = time.time()
        for c in conns:  # one byte each every 0.5 s: of the head while it lasts, then of the body
            if not c["open"] or c["kind"] == "silent":
                continue
            b = c["head"][c["sent"]:c["sent"] + 1] if c["sent"] < len(c["head"]) else b"x"
            try:
                c["s"].send(b)
                c["sent"] += 1
            except BlockingIOError:
                pass
            except OSError:
                pass  # reset: seen as closed by the next recv
    res = {}
    for c in conns:
        k = c["kind"]
        res.setdefault(k, [0, 0, 0, 0])
        res[k][0] += 1
        res[k][1] += not c["open"]
        res[k][2] += c["got"] > 0
        res[k][3] += c["open"]
        if c["open"]:
            c["s"].close()
    out.put(res)


def getter(host, port, path, stop, counts):
    conn = None
    n = 0
    while not stop.is_set():
        try:
            if conn is None or n % 10 == 0:
                if conn is not None:
                    conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=60)
            conn.request("GET", path, headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
            r = conn.getresponse()
            r.read()
            counts["ok" if r.status == 200 else "failed"] += 1
        except (OSError, http.client.HTTPException):
            counts["failed"] += 1
            conn = None
        n += 1


def legit_upload(host, port, result):
    data = os.urandom(128 << 10)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    s = socket.create_connection((host, port), timeout=120)
    s.sendall(f"POST /v2/slow/legit/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: x\r\n"
              f"Content-Length: {len(data)}\r\n\r\n".encode())
    for i in range(0, len(data), 1024):
        s.sendall(data[i:i + 1024])
        time.sleep(0.25)
    resp = s.recv(4096).split(b"\r\n", 1)[0]
    result["status"] = resp.split(b" ")[1].decode() if resp.startswith(b"HTTP/1.1 ") else "none"
    s.close()


def h2_mode(host, port, seconds=70):
    from h2attack import DATA, END_HEADERS, END_STREAM, HEADERS, PREFACE, SETTINGS, frame, hpack_str, literal_new
    socks = {}
    for k in ("h2_silent", "h2_trickle_data", "h2_trickle_headers"):
        s = socket.create_connection((host, port))
        s.sendall(PREFACE + frame(SETTINGS, 0, 0))
        socks[k] = s
    # :method POST, :scheme http, :path /v2/, :authority x (no END_STREAM: a body follows)
    block = bytes([0x83, 0x86, 0x44]) + hpack_str(b"/v2/") + bytes([0x41]) + hpack_str(b"x")
    socks["h2_trickle_data"].sendall(frame(HEADERS, END_HEADERS, 1, block))
    slow_headers = frame(HEADERS, END_HEADERS | END_STREAM, 1, bytes([0x82, 0x86, 0x44]) + hpack_str(b"/v2/") +
                         bytes([0x41]) + hpack_str(b"x") + literal_new(b"x-slow", b"a" * 4000))
    sent_headers = 0
    for s in socks.values():
        s.setblocking(False)
    closed, t0 = {}, time.time()
    while time.time() - t0 < seconds and len(closed) < len(socks):
        for k, s in socks.items():
            if k in closed:
                continue
            try:
                while s.recv(65536):
                    pass
                closed[k] = time.time() - t0
            except BlockingIOError:
                pass
            except OSError:
                closed[k] = time.time() - t0
        if "h2_trickle_data" not in closed:
            try:
                socks["h2_trickle_data"].send(frame(DATA, 0, 1, b"x"))
            except OSError:
                pass
        if "h2_trickle_headers" not in closed and sent_headers < len(slow_headers):
            try:
                sent_headers += socks["h2_trickle_headers"].send(slow_headers[sent_headers:sent_headers + 1])
            except OSError:
                pass
        time.sleep(0.5)
    print("RESULT " + " ".join(f"{k}_closed_after={int(closed[k]) if k in closed else 'open'}" for k in socks) +
          f" watched={seconds}")
    for s in socks.values():
        s.close()


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    port, pid, path = int(port), int(sys.argv[2]), sys.argv[3]
    if path == "h2":
        return h2_mode(host, port)
    opts = {"--heads": 300, "--silent": 50, "--uploads": 50, "--manifests": 25, "--others": 25}
    args = sys.argv[4:]
    for i in range(0, len(args), 2):
        opts[args[i]] = int(args[i + 1])
    repo = path.split("/manifests/")[0]
    zero = "sha256:" + "0" * 64
    groups = [
        ("heads", opts["--heads"], b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4000 +
         b"\r\n\r\n", True),
        ("silent", opts["--silent"], b"", False),
        ("uploads", opts["--uploads"], f"POST {repo}/blobs/uploads/?digest={zero} HTTP/1.1\r\nHost: x\r\n"
         f"Content-Length: {1 << 20}\r\n\r\n".encode(), False),
        ("manifests", opts["--manifests"], f"PUT {repo}/manifests/slow HTTP/1.1\r\nHost: x\r\n"
         f"Content-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: {1 << 20}\r\n\r\n".encode(),
         False),
        ("others", opts["--others"], f"POST /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: {1 << 20}\r\n\r\n".encode(),
         False),
    ]
    rss0, fds0 = rss_kib(pid), nfds(pid)
    out = multiprocessing.Queue()
    tr = multiprocessing.Process(target=trickle, args=(host, port, groups, out), daemon=True)
    stop = threading.Event()
    counts = {"ok": 0, "failed": 0}
    up = {"status": "none"}
    g = threading.Thread(target=getter, args=(host, port, path, stop, counts), daemon=True)
    u = threading.Thread(target=legit_upload, args=(host, port, up), daemon=True)
    t0 = time.time()
    tr.start()
    g.start()
    u.start()
    peak_rss, peak_fds = rss0, fds0
    while tr.is_alive() and time.time() - t0 < GUARD + 10:
        peak_rss, peak_fds = max(peak_rss, rss_kib(pid)), max(peak_fds, nfds(pid))
        time.sleep(0.5)
    res = out.get(timeout=30)
    tr.join()
    u.join(timeout=GUARD)
    stop.set()
    g.join(timeout=60)
    time.sleep(1)
    fields = {"seconds": int(time.time() - t0), "gets_ok": counts["ok"], "gets_failed": counts["failed"],
              "legit_upload": up["status"], "rss_before_kib": rss0, "rss_peak_kib": peak_rss,
              "fds_before": fds0, "fds_peak": peak_fds, "fds_after": nfds(pid)}
    for k, (opened, closed, answered, still) in res.items():
        fields.update({f"{k}_opened": opened, f"{k}_closed": closed, f"{k}_answered": answered,
                       f"{k}_still_open": still})
    print("RESULT " + " ".join(f"{k}={v}" for k, v in fields.items()))


if __name__ == "__main__":
    main()
