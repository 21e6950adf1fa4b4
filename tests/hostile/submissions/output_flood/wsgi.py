"""HOSTILE: floods stdout and stderr from a thread in every worker while serving.

About 1 MiB per second per worker for as long as it runs: long lines, lines without an end,
invalid UTF-8, terminal escapes and NUL bytes.
"""

import os
import sys
import threading
import time

JUNK = b"\xff\xfe\x00\x1b[2J\x1b]0;pwned\x07" + "é".encode() + b"\xc3"  # invalid UTF-8 and escapes


def flood() -> None:
    line = (b"FLOOD " + b"A" * 16378 + b"\n")  # 16 KiB lines
    n = 0
    while True:
        for _ in range(16):
            os.write(1, line)
        os.write(2, JUNK * 512 + b" no newline here " * 256)
        n += 1
        if n % 64 == 0:
            os.write(2, f"FLOOD-PROGRESS {os.getpid()} {n} MiB\n".encode())
        time.sleep(0.25)


threading.Thread(target=flood, daemon=True).start()
print("FLOOD started", file=sys.stderr, flush=True)


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/login":
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"<form></form>"]
    start_response("404 Not Found", [("Content-Type", "application/json")])
    return [b'{"error": "not found"}']
