#!/usr/bin/python3
"""Publish a DNS-SD service with python-zeroconf; print one JSON object per line.

  zc_publish.py NAME TYPE PORT [key=value | key ...] [--server HOST] [--address IP ...]
                [--ip-version all|v4|v6] [--interface ADDR ...]

TYPE is written `_example._tcp`. Without --address, every address of every interface
except loopback is published (with --include-loopback, loopback too).
Lines: {"event": "registered", "name": final bare name, "requested": NAME}, then on stdin
command `update key=value ...` a new TXT is published ({"event": "updated", "txt": {...}}).
SIGTERM/SIGINT (or stdin `quit`) unregisters (goodbye packets), then {"event": "stopped"}.
Run it with /usr/bin/python3 (Debian's zeroconf).
"""
import argparse
import json
import os
import signal
import socket
import sys
import threading

import ifaddr
from zeroconf import IPVersion, ServiceInfo, Zeroconf

_lock = threading.Lock()


def emit(obj):
    with _lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def txt_dict(items):
    out = {}
    for item in items:
        if "=" in item:
            k, v = item.split("=", 1)
            out[k] = v
        else:
            out[item] = None
    return out


def local_addresses(include_loopback, ipv):
    out = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, tuple):
                if ipv == "v4":
                    continue
                addr = ip.ip[0]
                if addr == "::1" and not include_loopback:
                    continue
                if addr.startswith("fe80:") and addr != "::1":
                    # link-local: published with its scope by zeroconf only when given an index
                    continue
                out.append(addr)
            else:
                if ipv == "v6":
                    continue
                if ip.ip.startswith("127.") and not include_loopback:
                    continue
                out.append(ip.ip)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("type")
    ap.add_argument("port", type=int)
    ap.add_argument("txt", nargs="*")
    ap.add_argument("--server")
    ap.add_argument("--address", action="append", default=[])
    ap.add_argument("--ip-version", choices=["all", "v4", "v6"], default="all")
    ap.add_argument("--interface", action="append", default=[])
    ap.add_argument("--include-loopback", action="store_true")
    a = ap.parse_args()
    short = a.type.rstrip(".")
    if short.endswith(".local"):
        short = short[: -len(".local")]
    type_ = short + ".local."
    server = a.server or "zc-%d.local." % os.getpid()
    if not server.endswith("."):
        server += "."
    addrs = a.address or local_addresses(a.include_loopback, a.ip_version)
    ipv = {"all": IPVersion.All, "v4": IPVersion.V4Only, "v6": IPVersion.V6Only}[a.ip_version]
    kwargs = {"ip_version": ipv}
    if a.interface:
        kwargs["interfaces"] = a.interface
    zc = Zeroconf(**kwargs)
    info = ServiceInfo(type_, "%s.%s" % (a.name, type_), port=a.port, properties=txt_dict(a.txt),
                       server=server, parsed_addresses=addrs)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    zc.register_service(info, allow_name_change=True)
    final = info.name[: -len("." + type_)]
    if final != a.name:
        emit({"event": "renamed", "from": a.name, "name": final})
    emit({"event": "registered", "name": final, "requested": a.name, "type": short, "port": a.port,
          "server": server, "addresses": addrs})

    def commands():
        for line in sys.stdin:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "update":
                # 0.47 has no public setter; _set_properties re-encodes the TXT record
                info._set_properties(txt_dict(parts[1:]))
                zc.update_service(info)
                emit({"event": "updated", "txt": txt_dict(parts[1:])})
            elif parts[0] == "quit":
                break
        stop.set()

    if not sys.stdin.isatty():
        threading.Thread(target=commands, daemon=True).start()
    while not stop.wait(0.2):
        pass
    zc.unregister_service(info)
    zc.close()
    emit({"event": "stopped", "name": final})


if __name__ == "__main__":
    main()
