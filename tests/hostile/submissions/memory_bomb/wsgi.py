"""HOSTILE: a memory bomb at import: touches 8 MiB after 8 MiB until the kernel says no."""

import sys

print("MEMBOMB start", file=sys.stderr, flush=True)
hog = []
while True:
    hog.append(b"\x01" * (8 * 1024 * 1024))  # written, so really resident (not lazily zeroed pages)

app = None  # never reached; the brief asks wsgi.py to bind `app`, and the preflight checks it
