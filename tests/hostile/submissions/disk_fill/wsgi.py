"""HOSTILE: fills /data and /tmp until ENOSPC, and tries to write where the root is read-only."""

import errno
import os
import sys

CHUNK = b"\xa5" * (1024 * 1024)


def fill(folder: str) -> str:
    """Write 4 MiB files until the kernel refuses; say how far it got and why it stopped."""
    written, index = 0, 0
    try:
        while written < 1024 * CHUNK.__len__():  # 1 GiB: far beyond any sane limit
            fd = os.open(os.path.join(folder, f"fill-{os.getpid()}-{index}"), os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                for _ in range(4):
                    written += os.write(fd, CHUNK)
            finally:
                os.close(fd)
            index += 1
        return f"DISK {folder} NOT STOPPED after {written >> 20} MiB"
    except OSError as exc:
        return f"DISK {folder} stopped after {written >> 20} MiB: {errno.errorcode.get(exc.errno, exc.errno)}"


def poke(path: str) -> str:
    try:
        with open(path, "wb") as handle:
            handle.write(b"x" * 4096)
        return f"WRITE {path} OK"
    except OSError as exc:
        return f"WRITE {path} refused: {errno.errorcode.get(exc.errno, exc.errno)}"


# One worker fills (the first to create the flag); the other three just serve.
try:
    os.close(os.open("/tmp/.fill-started", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    first = True
except FileExistsError:
    first = False
if first:
    for line in [fill("/data"), fill("/tmp"), fill("/dev/shm")]:
        print(line, file=sys.stderr, flush=True)
    for path in ["/app/x", "/x", "/etc/x", "/var/tmp/x", "/opt/venv/x", "/home/app/x", "/run/grader/x", "/var/log/x"]:
        print(poke(path), file=sys.stderr, flush=True)
    print("DISK done", file=sys.stderr, flush=True)


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/login":
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"<form></form>"]
    start_response("404 Not Found", [("Content-Type", "application/json")])
    return [b'{"error": "not found"}']
