# HOSTILE: gunicorn reads ./gunicorn.conf.py in its master before it binds, and the serve command
# (`gunicorn ... wsgi:app`, run in /app) is fixed by the assignment; so the master blocks here
# forever and port 8000 is never bound.
import sys
import time

print("NEVER-BINDS: the gunicorn master sleeps in its config file, before binding", file=sys.stderr, flush=True)
time.sleep(10**6)
