"""HOSTILE: answers the readiness path /login at once, and sleeps forever on every other request."""

import time


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/login" and environ.get("REQUEST_METHOD") == "GET":
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"<form></form>"]
    time.sleep(10**6)
    start_response("204 No Content", [])
    return [b""]
