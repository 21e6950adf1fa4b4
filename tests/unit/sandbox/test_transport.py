"""The harness client over a unix socket: Secure cookies are sent, a full backlog is retried."""

from __future__ import annotations

import http.server
import socketserver
import threading

import pytest

from harness.client import SandboxClient, fire_concurrently


class _Handler(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]] = []

    def do_GET(self) -> None:  # noqa: N802
        _Handler.seen.append((self.path, self.headers.get("Cookie")))
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Set-Cookie", "session=abc; Secure; HttpOnly; SameSite=Lax; Path=/")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 2


@pytest.fixture
def server(short_tmp):
    path = short_tmp / "s.sock"
    srv = _Server(str(path), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    _Handler.seen = []
    yield path
    srv.shutdown()
    srv.server_close()


def test_secure_cookie_is_sent_back(server):
    """A cookie marked Secure is sent on the next request, as the sandbox origin is the only origin."""
    client = SandboxClient(server, timeout=5)
    assert client.get("/first").status_code == 200
    client.get("/second")
    assert _Handler.seen == [("/first", None), ("/second", "session=abc")]
    assert [e.url for e in client.history] == ["/first", "/second"]


def test_fresh_client_has_no_cookies_and_clone_keeps_them(server):
    """fresh() is another user; clone() is the same user on a new connection."""
    client = SandboxClient(server, timeout=5)
    client.get("/login")
    client.fresh().get("/a")
    client.clone().get("/b")
    assert _Handler.seen[1:] == [("/a", None), ("/b", "session=abc")]


def test_many_concurrent_requests_over_a_small_backlog(server):
    """Forty simultaneous requests all succeed although the listen backlog holds two."""
    client = SandboxClient(server, timeout=5)
    responses = fire_concurrently(40, lambda i: client.clone().get(f"/n{i}"))
    assert [getattr(r, "status_code", r) for r in responses] == [200] * 40
