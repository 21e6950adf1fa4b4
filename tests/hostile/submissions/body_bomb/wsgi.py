"""HOSTILE: every response, the readiness page included, is a 128 MiB body.

The app's own memory stays small (it streams 1 MiB chunks); the question is what the trusted side,
which reads the answers (the readiness poll in the worker, the hidden tests' client), holds.
Capped at 128 MiB per response so that the test does not starve the shared machine; a real attack
would send more.
"""

SIZE, CHUNK = 128 * 1024 * 1024, b"<p>" + b"A" * (1024 * 1024 - 7) + b"</p>"


def app(environ, start_response):
    status = "200 OK" if environ.get("PATH_INFO") == "/login" else "404 Not Found"
    start_response(status, [("Content-Type", "text/html"), ("Content-Length", str(SIZE))])
    return (CHUNK for _ in range(SIZE // len(CHUNK)))
