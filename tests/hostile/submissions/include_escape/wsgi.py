"""A minimal WSGI app, not hostile: answers /login (the readiness path) and 404 elsewhere."""


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/login":
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b'<form method="post"><input name="username"><input name="password"></form>']
    start_response("404 Not Found", [("Content-Type", "application/json")])
    return [b'{"error": "not found"}']
