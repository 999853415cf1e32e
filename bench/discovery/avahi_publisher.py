#!/usr/bin/python3
"""Benchmark driver: publishes through a running avahi-daemon's D-Bus API (the daemon is the
long-lived engine). stdin `go NAME TYPE PORT` → {"event":"start","t"} just before
EntryGroup.AddService/Commit, then {"event":"registered","t"} once established;
`stop NAME` frees the group (goodbyes). Needs DBUS_SYSTEM_BUS_ADDRESS. t = wall-clock ms."""
import json
import sys
import threading
import time

import dbus


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    bus = dbus.SystemBus()
    server = dbus.Interface(bus.get_object("org.freedesktop.Avahi", "/"), "org.freedesktop.Avahi.Server")
    groups = {}
    lock = threading.Lock()
    emit({"event": "ready"})

    def register(name, type_, port):
        with lock:
            path = server.EntryGroupNew()
            group = dbus.Interface(bus.get_object("org.freedesktop.Avahi", path), "org.freedesktop.Avahi.EntryGroup")
            groups[name] = group
            emit({"event": "start", "name": name, "t": time.time() * 1000})
            group.AddService(-1, -1, dbus.UInt32(0), name, type_, "local", "", dbus.UInt16(port),
                             dbus.Array([], signature="ay"))
            group.Commit()
        for _ in range(600):
            with lock:
                state = group.GetState()
            if state == 2:
                emit({"event": "registered", "name": name, "t": time.time() * 1000})
                return
            time.sleep(0.01)

    for line in sys.stdin:
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "go":
            threading.Thread(target=register, args=(parts[1], parts[2], int(parts[3]) if len(parts) > 3 else 9),
                             daemon=True).start()
        elif len(parts) >= 2 and parts[0] == "stop" and parts[1] in groups:
            with lock:
                groups.pop(parts[1]).Free()


if __name__ == "__main__":
    main()
