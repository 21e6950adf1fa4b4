# HOSTILE: gunicorn reads ./gunicorn.conf.py in its master before it binds, unless the serve command
# names another config: this one would block the master forever (the grader passes --config /dev/null).
import sys
import time

print("NEVER-BINDS: the gunicorn master sleeps in its config file, before binding", file=sys.stderr, flush=True)
time.sleep(10**6)
