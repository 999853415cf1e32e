#!/usr/bin/python3
"""Benchmark driver: one long-lived python-zeroconf instance; stdin `go NAME TYPE PORT`
registers a service ({"event":"start","t"} just before register_service, then
{"event":"registered","t"}), `stop NAME` unregisters. t = wall-clock ms.
Args: SERVER_HOSTNAME ADDRESS. Run with /usr/bin/python3."""
import json
import sys
import threading
import time

from zeroconf import ServiceInfo, Zeroconf


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    server = sys.argv[1] + ".local."
    address = sys.argv[2]
    zc = Zeroconf()
    infos = {}
    emit({"event": "ready"})

    def register(name, type_, port):
        info = ServiceInfo(type_ + ".local.", "%s.%s.local." % (name, type_), port=port, properties={},
                           server=server, parsed_addresses=[address])
        infos[name] = info
        emit({"event": "start", "name": name, "t": time.time() * 1000})
        zc.register_service(info)
        emit({"event": "registered", "name": name, "t": time.time() * 1000})

    for line in sys.stdin:
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "go":
            threading.Thread(target=register, args=(parts[1], parts[2], int(parts[3]) if len(parts) > 3 else 9),
                             daemon=True).start()
        elif len(parts) >= 2 and parts[0] == "stop" and parts[1] in infos:
            zc.unregister_service(infos.pop(parts[1]))
    zc.close()


if __name__ == "__main__":
    main()
