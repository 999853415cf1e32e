#!/usr/bin/python3
"""Browse a DNS-SD service type with python-zeroconf; print one JSON object per line.

  zc_browse.py TYPE [--ip-version all|v4|v6] [--interface ADDR ...]

TYPE is written `_example._tcp` (`.local.` is added). Lines:
  {"event": "ready"}
  {"event": "added"|"updated", "name": "Bare Name", "fullname": ..., "type": "_example._tcp",
   "server": "host.local.", "port": 1234, "addresses": [...], "txt": {"k": "v", "flag": null}}
  {"event": "removed", "name": ..., "fullname": ..., "type": ...}
  {"event": "unresolved", "name": ...}   (added/updated but no complete info within 3 s)
Every line also carries "t" (wall-clock milliseconds). Stops on SIGTERM/SIGINT. Run it with /usr/bin/python3 (Debian's zeroconf).
"""
import argparse
import json
import signal
import sys
import threading
import time

from zeroconf import IPVersion, ServiceBrowser, ServiceListener, Zeroconf

_lock = threading.Lock()


def emit(obj):
    obj["t"] = time.time() * 1000  # wall-clock ms, for timing across processes
    with _lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def bare(name, type_):
    suffix = "." + type_
    return name[: -len(suffix)] if name.endswith(suffix) else name


def txt_of(info):
    out = {}
    for k, v in (info.properties or {}).items():
        key = k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k)
        if v is None:
            out[key] = None
        else:
            out[key] = v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
    return out


def addresses_of(info):
    try:
        return info.parsed_scoped_addresses()
    except AttributeError:
        return info.parsed_addresses()


class Listener(ServiceListener):
    def __init__(self, zc, type_, short_type):
        self.zc = zc
        self.type_ = type_
        self.short = short_type

    def _resolved(self, event, type_, name):
        info = self.zc.get_service_info(type_, name, timeout=3000)
        if info is None:
            emit({"event": "unresolved", "name": bare(name, type_), "fullname": name, "type": self.short, "after": event})
            return
        emit({
            "event": event,
            "name": bare(name, type_),
            "fullname": name,
            "type": self.short,
            "server": info.server,
            "port": info.port,
            "addresses": addresses_of(info),
            "txt": txt_of(info),
        })

    def add_service(self, zc, type_, name):
        self._resolved("added", type_, name)

    def update_service(self, zc, type_, name):
        self._resolved("updated", type_, name)

    def remove_service(self, zc, type_, name):
        emit({"event": "removed", "name": bare(name, type_), "fullname": name, "type": self.short})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("type")
    ap.add_argument("--ip-version", choices=["all", "v4", "v6"], default="all")
    ap.add_argument("--interface", action="append", default=[])
    a = ap.parse_args()
    short = a.type.rstrip(".")
    if short.endswith(".local"):
        short = short[: -len(".local")]
    type_ = short + ".local."
    ipv = {"all": IPVersion.All, "v4": IPVersion.V4Only, "v6": IPVersion.V6Only}[a.ip_version]
    kwargs = {"ip_version": ipv}
    if a.interface:
        kwargs["interfaces"] = a.interface
    zc = Zeroconf(**kwargs)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    browser = ServiceBrowser(zc, type_, listener=Listener(zc, type_, short))
    emit({"event": "ready"})
    while not stop.wait(0.2):
        pass
    browser.cancel()
    zc.close()
    emit({"event": "stopped"})


if __name__ == "__main__":
    main()
