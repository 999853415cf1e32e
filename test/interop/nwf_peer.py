#!/usr/bin/python3
"""A Network-framework-style peer that is not peerlink, written from the RFCs; one JSON object
per line on stdout.

  nwf_peer.py server TYPE PORT --psk HEX [--id UUID] [--name NAME] [--interface ADDR]
  nwf_peer.py client TYPE --psk HEX [--id UUID] [--tls 1.2|1.3] [--identity ID] [--interface ADDR]

What the seed's app does: TLS-PSK with the key as the PSK (TLS 1.2 TLS_PSK_WITH_AES_128_GCM_SHA256,
RFC 5487, or TLS 1.3 external PSK, RFC 8446), WebSocket (RFC 6455) binary messages on path `/`,
its peer id (a UUID, upper-case as Apple's uuidString) as the TXT key `peerID` and as the first
message on every connection. TLS is OpenSSL's own command line tools (s_server / s_client pinned
to the suite); the WebSocket handshake and frames are written here by hand; DNS-SD is
python-zeroconf.

server: advertises TYPE with TXT peerID and serves one connection on PORT: sends its id, reads
the peer's, then answers every binary message M with "echo:M". Events: registered, upgraded,
peer, message, closed.
client: browses TYPE, dials the first instance whose TXT has a peerID, sends its id, reads the
peer's, sends "hello from nwf", waits for one message back, then closes. Events: found,
upgraded, peer, message, closed.
Run it with /usr/bin/python3 (Debian's zeroconf).
"""
import argparse
import base64
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid

from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, ServiceListener, Zeroconf

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Pipe:
    """Reads exactly n bytes from the TLS tool's stdout."""

    def __init__(self, proc):
        self.proc = proc
        self.buf = b""

    def read(self, n):
        while len(self.buf) < n:
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise EOFError("TLS tool closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_until(self, marker):
        while marker not in self.buf:
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise EOFError("TLS tool closed")
            self.buf += chunk
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def write(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()


def ws_frame(opcode, payload, mask):
    """RFC 6455 section 5.2: FIN=1, opcode, a client's frames masked (section 5.3)."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack(">Q", n)
    if mask:
        key = os.urandom(4)
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        head += key
    return head + payload


def ws_read(pipe, expect_masked):
    """One whole message (fragments joined, section 5.4); control frames returned as they come."""
    data = b""
    first_op = None
    while True:
        b0, b1 = pipe.read(2)
        fin, opcode = b0 & 0x80, b0 & 0x0F
        masked, n = b1 & 0x80, b1 & 0x7F
        if bool(masked) != expect_masked:
            raise ValueError("frame masking violates RFC 6455 section 5.1")
        if n == 126:
            n = struct.unpack(">H", pipe.read(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", pipe.read(8))[0]
        key = pipe.read(4) if masked else None
        payload = pipe.read(n)
        if key:
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        if opcode >= 0x8:
            return opcode, payload
        if first_op is None:
            first_op = opcode
        data += payload
        if fin:
            return first_op, data


def tls_tool(role, psk, port=None, host=None, tls="1.2", identity="Client_identity"):
    if tls == "1.3":
        suite = ["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"]
    else:
        suite = ["-tls1_2", "-cipher", "PSK-AES128-GCM-SHA256"]
    if role == "server":
        cmd = ["openssl", "s_server", "-accept", str(port), "-nocert", "-psk", psk, "-quiet", "-naccept", "1"] + suite
    else:
        cmd = ["openssl", "s_client", "-connect", "%s:%d" % (host, port), "-psk", psk, "-psk_identity", identity, "-quiet"] + suite
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def exchange_ids(pipe, my_id, am_client):
    pipe.write(ws_frame(0x2, my_id.encode("ascii"), am_client))
    while True:
        op, payload = ws_read(pipe, not am_client)
        if op == 0x9:
            pipe.write(ws_frame(0xA, payload, am_client))
            continue
        if op == 0x8:
            raise EOFError("closed before the id")
        text = payload.decode("latin1")
        if len(payload) == 16:
            text = str(uuid.UUID(bytes=payload))
        # Ids are 128-bit values: compare them as such, whatever the case they were written in.
        emit({"event": "peer", "id": str(uuid.UUID(text)), "raw": payload.decode("latin1") if len(payload) == 36 else payload.hex()})
        return


def run_server(a, my_id):
    zc = Zeroconf(ip_version=IPVersion.V4Only, interfaces=a.interface or ["127.0.0.1"])
    type_ = a.type + ".local."
    info = ServiceInfo(type_, "%s.%s" % (a.name, type_), port=a.port, properties={"peerID": my_id},
                       server="nwf-%d.local." % os.getpid(), parsed_addresses=["127.0.0.1"])
    proc = tls_tool("server", a.psk, port=a.port)
    zc.register_service(info, allow_name_change=True)
    emit({"event": "registered", "name": info.name[: -len("." + type_)], "id": my_id})
    pipe = Pipe(proc)
    try:
        req = pipe.read_until(b"\r\n\r\n").decode("latin1")
        lines = req.split("\r\n")
        path = lines[0].split(" ")[1]
        headers = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
        key = headers.get("sec-websocket-key", "")
        accept = base64.b64encode(hashlib.sha1(key.encode("ascii") + GUID).digest()).decode("ascii")
        pipe.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Accept: %s\r\n\r\n" % accept).encode("ascii"))
        emit({"event": "upgraded", "path": path, "upgrade": headers.get("upgrade", "")})
        exchange_ids(pipe, my_id, False)
        while True:
            op, payload = ws_read(pipe, True)
            if op == 0x9:
                pipe.write(ws_frame(0xA, payload, False))
                continue
            if op == 0x8:
                # RFC 6455 section 5.5.1: echo the close; a client that closed its end right
                # after its own close frame may already be gone (the TLS tool then exits)
                try:
                    pipe.write(ws_frame(0x8, payload[:2], False))
                except (BrokenPipeError, ConnectionResetError):
                    pass
                break
            if op == 0xA:
                continue
            emit({"event": "message", "opcode": op, "text": payload.decode("utf8", "replace")})
            pipe.write(ws_frame(0x2, b"echo:" + payload, False))
    except (EOFError, ValueError) as e:
        emit({"event": "error", "message": str(e)})
    emit({"event": "closed"})
    proc.kill()
    zc.unregister_service(info)
    zc.close()


class Found(ServiceListener):
    def __init__(self):
        self.hit = None
        self.ev = threading.Event()

    def add_service(self, zc, type_, name):
        info = zc.get_service_info(type_, name, timeout=3000)
        if info is None:
            return
        props = {k.decode(): (v.decode() if v is not None else None) for k, v in info.properties.items()}
        if "peerID" in props and not self.ev.is_set():
            self.hit = (name, info.parsed_addresses(), info.port, props)
            self.ev.set()

    def update_service(self, zc, type_, name):
        self.add_service(zc, type_, name)

    def remove_service(self, zc, type_, name):
        pass


def run_client(a, my_id):
    zc = Zeroconf(ip_version=IPVersion.V4Only, interfaces=a.interface or ["127.0.0.1"])
    found = Found()
    ServiceBrowser(zc, a.type + ".local.", found)
    if not found.ev.wait(30):
        emit({"event": "error", "message": "nothing found"})
        zc.close()
        return
    name, addrs, port, props = found.hit
    emit({"event": "found", "name": name, "addresses": addrs, "port": port, "peerID": props["peerID"]})
    zc.close()
    proc = tls_tool("client", a.psk, port=port, host=addrs[0], tls=a.tls, identity=a.identity)
    pipe = Pipe(proc)
    try:
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        pipe.write(("GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (addrs[0], port, key)).encode("ascii"))
        resp = pipe.read_until(b"\r\n\r\n").decode("latin1")
        want = base64.b64encode(hashlib.sha1(key.encode("ascii") + GUID).digest()).decode("ascii")
        ok = resp.startswith("HTTP/1.1 101") and want in resp
        emit({"event": "upgraded", "ok": ok})
        if not ok:
            raise EOFError("upgrade refused: " + resp.split("\r\n")[0])
        exchange_ids(pipe, my_id, True)
        pipe.write(ws_frame(0x2, b"hello from nwf", True))
        while True:
            op, payload = ws_read(pipe, False)
            if op == 0x9:
                pipe.write(ws_frame(0xA, payload, True))
                continue
            if op in (0x1, 0x2):
                emit({"event": "message", "opcode": op, "text": payload.decode("utf8", "replace")})
                break
            if op == 0x8:
                break
        pipe.write(ws_frame(0x8, struct.pack(">H", 1000), True))
        time.sleep(0.3)
    except (EOFError, ValueError) as e:
        emit({"event": "error", "message": str(e)})
    emit({"event": "closed"})
    proc.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["server", "client"])
    ap.add_argument("type")
    ap.add_argument("port", type=int, nargs="?", default=0)
    ap.add_argument("--psk", required=True)
    ap.add_argument("--id", default=None)
    ap.add_argument("--name", default="NWF Peer")
    ap.add_argument("--tls", choices=["1.2", "1.3"], default="1.2")
    ap.add_argument("--identity", default="Client_identity")
    ap.add_argument("--interface", action="append", default=[])
    a = ap.parse_args()
    my_id = (a.id or str(uuid.uuid4())).upper()
    if a.mode == "server":
        run_server(a, my_id)
    else:
        run_client(a, my_id)


if __name__ == "__main__":
    main()
