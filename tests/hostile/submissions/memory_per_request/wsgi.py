"""HOSTILE: boots fine, then every request but the readiness path allocates until the worker is
killed at the memory limit (the container itself keeps running: gunicorn respawns the worker)."""


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/login" and environ.get("REQUEST_METHOD") == "GET":
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"<form></form>"]
    hog = []
    while True:
        hog.append(b"\x02" * (8 * 1024 * 1024))
