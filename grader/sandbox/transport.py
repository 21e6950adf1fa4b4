"""HTTP over the pod's unix socket, for requests.

URLs use `https://app.sandbox/...` so that the cookie jar treats the sandbox as a secure origin and
sends cookies marked `Secure`; the bytes on the socket are plain HTTP to the relay, which forwards
them to 127.0.0.1 inside the pod. No traffic leaves the socket.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool

BASE_URL = "https://app.sandbox"
_CONNECT_ATTEMPTS = 20  # a full listen backlog refuses a unix connect at once; it never reached the app


class _UnixConnection(HTTPConnection):
    def __init__(self, socket_path: str, **kwargs: Any) -> None:
        super().__init__("app.sandbox", **kwargs)
        self._socket_path = socket_path

    def _new_conn(self) -> socket.socket:
        for attempt in range(_CONNECT_ATTEMPTS):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            if isinstance(self.timeout, (int, float)):
                sock.settimeout(self.timeout)
            try:
                sock.connect(self._socket_path)
                return sock
            except BlockingIOError:
                sock.close()
                if attempt == _CONNECT_ATTEMPTS - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")


class _UnixConnectionPool(HTTPConnectionPool):
    def __init__(self, socket_path: str, **kwargs: Any) -> None:
        super().__init__("app.sandbox", **kwargs)
        self._socket_path = socket_path

    def _new_conn(self) -> _UnixConnection:
        self.num_connections += 1
        return _UnixConnection(self._socket_path, timeout=self.timeout.connect_timeout)


class UnixSocketAdapter(HTTPAdapter):
    """Sends every request of a session to one unix socket, whatever the URL's host."""

    def __init__(self, socket_path: Path, pool_maxsize: int = 64) -> None:
        self._socket_path = str(socket_path)
        self._pool_maxsize = pool_maxsize
        super().__init__(pool_connections=1, pool_maxsize=pool_maxsize, max_retries=0)
        self._pool = _UnixConnectionPool(self._socket_path, maxsize=pool_maxsize)

    def get_connection_with_tls_context(self, request: Any, verify: Any, proxies: Any = None, cert: Any = None) -> Any:
        return self._pool

    def get_connection(self, url: Any, proxies: Any = None) -> Any:
        return self._pool

    def request_url(self, request: Any, proxies: Any) -> str:
        return request.path_url

    def close(self) -> None:
        self._pool.close()
        super().close()


def unix_session(socket_path: Path) -> requests.Session:
    """A requests session whose every request goes over `socket_path`; proxies from the environment are ignored."""
    session = requests.Session()
    session.trust_env = False
    adapter = UnixSocketAdapter(socket_path)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
