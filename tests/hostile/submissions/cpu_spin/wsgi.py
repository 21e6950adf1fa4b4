"""HOSTILE: spins the CPU at import and so never finishes importing."""

import sys

print("CPUSPIN start", file=sys.stderr, flush=True)
n = 0
while True:
    n += 1

app = None  # never reached; the brief asks wsgi.py to bind `app`, and the preflight checks it
