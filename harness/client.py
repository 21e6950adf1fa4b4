"""The HTTP client hidden tests use: paths instead of URLs, no automatic redirects, a record of exchanges."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

from grader.models import Exchange
from grader.sandbox.transport import BASE_URL, unix_session

_KEPT_HEADERS = ("content-type", "location", "set-cookie", "www-authenticate", "content-length")
_EXCERPT = 600
MAX_BODY_BYTES = 1024 * 1024


def _excerpt(data: Any) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        data = data.decode("utf-8", errors="replace")
    text = str(data)
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "…"


def _request_body(kwargs: dict[str, Any]) -> tuple[Any, str]:
    """The body as it went on the wire (JSON as JSON, a form urlencoded), so a report can replay it with curl."""
    if kwargs.get("json") is not None:
        return json.dumps(kwargs["json"], default=str), "application/json"
    data = kwargs.get("data")
    if isinstance(data, dict | list):
        return urlencode(data), "application/x-www-form-urlencoded"
    return data, ""


def _read_capped(response: requests.Response) -> None:
    """Read at most MAX_BODY_BYTES of the body: an answer is hostile data and may be endless."""
    content = bytearray()
    response.truncated = False  # type: ignore[attr-defined]
    try:
        for chunk in response.iter_content(64 * 1024):
            content += chunk
            if len(content) > MAX_BODY_BYTES:
                response.truncated = True  # type: ignore[attr-defined]
                break
    finally:
        response.close()
    response._content = bytes(content[:MAX_BODY_BYTES])
    response._content_consumed = True


class SandboxClient:
    """One browser-like user: its own cookie jar, every request over the pod's socket."""

    def __init__(self, socket_path: Path, timeout: float, history: deque[Exchange] | None = None) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self.history: deque[Exchange] = history if history is not None else deque(maxlen=6)
        self._lock = threading.Lock()
        self.session = unix_session(socket_path)

    @property
    def cookies(self) -> requests.cookies.RequestsCookieJar:
        return self.session.cookies

    def fresh(self) -> SandboxClient:
        """Another user: an empty cookie jar, the same history of exchanges."""
        return SandboxClient(self.socket_path, self.timeout, self.history)

    def clone(self) -> SandboxClient:
        """The same user on a new connection: a copy of the cookies."""
        other = self.fresh()
        other.session.cookies.update(self.session.cookies)
        return other

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", False)
        body, content_type = _request_body(kwargs)
        try:
            response = self.session.request(method, BASE_URL + path, stream=True, **kwargs)
            _read_capped(response)
        except requests.RequestException as exc:
            self._record(Exchange(
                method=method, url=path, request_body=_excerpt(body), request_content_type=content_type,
                response_body=f"no response: {exc}",
            ))
            raise
        headers = {k: v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS}
        self._record(
            Exchange(
                method=method, url=path, request_body=_excerpt(body), request_content_type=content_type,
                status=response.status_code,
                response_headers=headers, response_body=_excerpt(response.content),
            )
        )
        return response

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self.history.append(exchange)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)


def fire_concurrently(count: int, call: Callable[[int], Any], workers: int | None = None) -> list[Any]:
    """Run `call(i)` for i in range(count) at once, released together; return results or exceptions, in order."""
    barrier = threading.Barrier(min(count, workers or count))

    def run(index: int) -> Any:
        try:
            barrier.wait(timeout=30)
        except threading.BrokenBarrierError:
            pass
        try:
            return call(index)
        except Exception as exc:  # a failed request is a result the test judges
            return exc

    with ThreadPoolExecutor(max_workers=workers or count) as pool:
        return list(pool.map(run, range(count)))
