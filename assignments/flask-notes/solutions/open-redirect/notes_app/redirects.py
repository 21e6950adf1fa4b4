"""Request helpers."""

from __future__ import annotations

from flask import request


def is_api_request() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")
