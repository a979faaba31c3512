#!/usr/bin/python3
"""h1client.py - a raw HTTP/1.1 client for test_streaming.sh: hostile bodies, smuggling, disconnects, caps.

  h1client.py push HOST PORT METHOD PATH SIZE [--tls] [--auth VALUE] [--chunked] [--expect]
      sends a request head announcing SIZE body bytes, then streams zeros while watching for a response; stops at the
      first response byte or when the server closes.  Prints "STATUS SENT CLOSED" (STATUS 0 if none; SENT = body
      bytes the kernel accepted; CLOSED 1 if the server closed the connection within 5 s of its response).
      With --expect (Expect: 100-continue) it first waits for an answer, as curl does, and sends no body byte
      when that answer is final.
  h1client.py raw HOST PORT HEX
      sends the bytes (hex) and prints "STATUS CLOSED ANSWERS BODY": how many status lines came back in total
      before the close, and the first response's body.
  h1client.py partial HOST PORT PATH AUTH FILE NBYTES
      PATCH with Content-Length of FILE's size, sends its first NBYTES bytes and hangs up.
  h1client.py hold HOST PORT AUTH PATH...
      opens one PATCH per PATH (Content-Length 1 GiB, 64 KiB sent), all kept open; then one more on the last PATH
      with a new connection; prints that last request's status, then closes everything.
"""
import select
import socket
import ssl
import sys
import time


EXPECT_WAIT_S = 5.0  # how long --expect waits for the server's first answer before sending the body


def connect(host, port, tls):
    s = socket.create_connection((host, int(port)))
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["http/1.1"])
        s = ctx.wrap_socket(s, server_hostname=host)
    return s


def head(method, path, host, extra):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s" % host] + extra
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_of(data):
    try:
        return int(data.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def wait_close(s, data, timeout=5.0):
    """Reads until EOF (returns 1) or timeout (0); appends to data."""
    end = time.time() + timeout
    while time.time() < end:
        r, _, _ = select.select([s], [], [], max(0.0, end - time.time()))
        if not r:
            continue
        try:
            c = s.recv(65536)
        except (ConnectionResetError, ssl.SSLError, OSError):
            return 1
        if not c:
            return 1
        data.extend(c)
    return 0


def push(a):
    host, port, method, path, size = a[0], a[1], a[2], a[3], int(a[4])
    tls, auth, chunked, expect = "--tls" in a, None, "--chunked" in a, "--expect" in a
    if "--auth" in a:
        auth = a[a.index("--auth") + 1]
    extra = ["Transfer-Encoding: chunked"] if chunked else ["Content-Length: %d" % size]
    if auth:
        extra.append("Authorization: " + auth)
    if expect:
        extra.append("Expect: 100-continue")
    s = connect(host, port, tls)
    s.sendall(head(method, path, host, extra))
    if expect:  # as curl does: wait for 100 or a final answer before any body byte (EXPECT_WAIT_S at most)
        data = bytearray()
        r, _, _ = select.select([s], [], [], EXPECT_WAIT_S)
        if r:
            try:
                data.extend(s.recv(65536))
            except (ConnectionResetError, ssl.SSLError, OSError):
                pass
        if data and not data.startswith(b"HTTP/1.1 100"):  # a final answer: no body is sent
            wait_close(s, data)
            print(status_of(bytes(data)), 0, 1)
            return
    s.setblocking(False)
    block = b"\0" * 65536
    if chunked:
        block = b"10000\r\n" + block + b"\r\n"
    sent, data, closed = 0, bytearray(), 0
    while sent < size:
        r, w, _ = select.select([s], [s], [], 10)
        if r:
            try:
                c = s.recv(65536)
            except (ssl.SSLWantReadError, BlockingIOError):
                c = None
            except (ConnectionResetError, OSError):
                closed = 1
                break
            if c == b"":
                closed = 1
                break
            if c:
                data.extend(c)
                if not data.startswith(b"HTTP/1.1 100"):
                    break
                data = bytearray(data.split(b"\r\n\r\n", 1)[1]) if b"\r\n\r\n" in data else data
        if w:
            try:
                n = s.send(block)
                sent += n
            except (ssl.SSLWantWriteError, BlockingIOError):
                pass
            except (BrokenPipeError, ConnectionResetError, OSError):
                closed = 1
                break
        if not r and not w:
            break
    s.setblocking(True)
    if not closed:
        closed = wait_close(s, data)
    print(status_of(bytes(data)), sent, closed)


def raw(a):
    s = connect(a[0], a[1], False)
    s.sendall(bytes.fromhex(a[2]))
    data = bytearray()
    closed = wait_close(s, data)
    first = bytes(data).split(b"\r\n\r\n", 1)
    body = first[1].split(b"HTTP/1.1 ", 1)[0].decode(errors="replace") if len(first) > 1 else ""
    print(status_of(bytes(data)), closed, bytes(data).count(b"HTTP/1.1 "), body.replace("\n", " "))


def partial(a):
    host, port, path, auth, fn, n = a[0], a[1], a[2], a[3], a[4], int(a[5])
    body = open(fn, "rb").read()
    s = connect(host, port, False)
    s.sendall(head("PATCH", path, host, ["Content-Length: %d" % len(body), "Authorization: " + auth]))
    s.sendall(body[:n])
    time.sleep(0.5)
    s.close()


def hold(a):
    host, port, auth, paths = a[0], a[1], a[2], a[3:]
    socks = []
    for p in paths:
        s = connect(host, port, False)
        s.sendall(head("PATCH", p, host, ["Content-Length: %d" % (1 << 30), "Authorization: " + auth]))
        s.sendall(b"\0" * 65536)
        socks.append(s)
    time.sleep(1.0)
    s = connect(host, port, False)
    s.sendall(head("PATCH", paths[-1], host, ["Content-Length: %d" % (1 << 30), "Authorization: " + auth]))
    s.settimeout(10)
    data = s.recv(65536)
    print(status_of(data))
    for x in socks + [s]:
        x.close()


if __name__ == "__main__":
    {"push": push, "raw": raw, "partial": partial, "hold": hold}[sys.argv[1]](sys.argv[2:])
