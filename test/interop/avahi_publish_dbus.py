#!/usr/bin/python3
"""Publish a service through Avahi's D-Bus API (avahi-publish cannot change a TXT record).

  avahi_publish_dbus.py NAME TYPE PORT [key=value | key | hex:BYTES ...]

Needs DBUS_SYSTEM_BUS_ADDRESS pointing at the bus of the avahi-daemon to use, and
python3-dbus. Lines: {"event": "registered", "name": ...}; stdin `update k=v ...` calls
EntryGroup.UpdateServiceTxt ({"event": "updated"}); SIGTERM/`quit` frees the group (Avahi
sends goodbyes), then {"event": "stopped"}. Run it with /usr/bin/python3.
"""
import json
import signal
import sys
import threading
import time

import dbus

IF_UNSPEC = -1
PROTO_UNSPEC = -1
GROUP_ESTABLISHED = 2
GROUP_COLLISION = 3
GROUP_FAILURE = 4


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def txt_bytes(item):
    # `hex:6b3dff` gives raw bytes (binary values, invalid UTF-8); anything else is UTF-8 text
    return bytes.fromhex(item[4:]) if item.startswith("hex:") else item.encode("utf-8")


def txt_array(items):
    return dbus.Array([dbus.Array([dbus.Byte(b) for b in txt_bytes(s)], signature="y") for s in items],
                      signature="ay")


def main():
    name, type_, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    txt = sys.argv[4:]
    bus = dbus.SystemBus()
    server = dbus.Interface(bus.get_object("org.freedesktop.Avahi", "/"), "org.freedesktop.Avahi.Server")
    group = dbus.Interface(bus.get_object("org.freedesktop.Avahi", server.EntryGroupNew()),
                           "org.freedesktop.Avahi.EntryGroup")
    group.AddService(IF_UNSPEC, PROTO_UNSPEC, dbus.UInt32(0), name, type_, "local", "", dbus.UInt16(port),
                     txt_array(txt))
    group.Commit()
    deadline = time.time() + 30
    while time.time() < deadline:
        state = group.GetState()
        if state == GROUP_ESTABLISHED:
            break
        if state in (GROUP_COLLISION, GROUP_FAILURE):
            emit({"event": "error", "state": int(state)})
            sys.exit(1)
        time.sleep(0.05)
    emit({"event": "registered", "name": name, "type": type_, "port": port})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    lock = threading.Lock()

    def commands():
        for line in sys.stdin:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "update":
                with lock:
                    group.UpdateServiceTxt(IF_UNSPEC, PROTO_UNSPEC, dbus.UInt32(0), name, type_, "local",
                                           txt_array(parts[1:]))
                emit({"event": "updated", "txt": parts[1:]})
            elif parts[0] == "quit":
                break
        stop.set()

    threading.Thread(target=commands, daemon=True).start()
    while not stop.wait(0.2):
        pass
    with lock:
        group.Free()
    emit({"event": "stopped"})


if __name__ == "__main__":
    main()
