"""Request helpers: API detection and the open-redirect guard."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import request


def is_api_request() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def safe_next(target: str | None) -> str | None:
    """Return `target` if it is a path on this site, else None.

    Accepts only "/something": no scheme, no host, no protocol-relative "//host",
    no backslashes (browsers read "/\\host" as "//host"), no control characters
    (browsers drop tabs and newlines, turning "/\\t/host" into "//host").
    """
    if not target or not isinstance(target, str):
        return None
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target) or "\\" in target:
        return None
    if not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target
