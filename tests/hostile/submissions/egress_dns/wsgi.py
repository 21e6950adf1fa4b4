"""HOSTILE: tries name resolution and a raw UDP DNS query out of the sandbox, then serves."""

import socket
import sys

try:
    found = socket.getaddrinfo("example.com", 80)
    print(f"EGRESS-OK dns example.com -> {found[0][4]}", file=sys.stderr, flush=True)
except OSError as exc:
    print(f"EGRESS-BLOCKED dns example.com: {exc}", file=sys.stderr, flush=True)

query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"
try:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.settimeout(2)
    udp.sendto(query, ("8.8.8.8", 53))
    udp.recvfrom(512)
    print("EGRESS-OK udp 8.8.8.8:53 answered", file=sys.stderr, flush=True)
except OSError as exc:
    print(f"EGRESS-BLOCKED udp 8.8.8.8:53: {exc}", file=sys.stderr, flush=True)


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/login":
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"<form></form>"]
    start_response("404 Not Found", [("Content-Type", "application/json")])
    return [b'{"error": "not found"}']
