"""HOSTILE: tries TCP connections out of the sandbox at import, then serves a minimal app."""

import socket
import sys

for host, port in [("1.1.1.1", 53), ("172.17.0.1", 2375), ("10.0.2.2", 80)]:
    try:
        socket.create_connection((host, port), timeout=2).close()
        print(f"EGRESS-OK tcp {host}:{port}", file=sys.stderr, flush=True)
    except OSError as exc:
        print(f"EGRESS-BLOCKED tcp {host}:{port}: {exc}", file=sys.stderr, flush=True)

interfaces = [name for _index, name in socket.if_nameindex()]
print(f"EGRESS-INTERFACES {interfaces}", file=sys.stderr, flush=True)


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/login":
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"<form></form>"]
    start_response("404 Not Found", [("Content-Type", "application/json")])
    return [b'{"error": "not found"}']
