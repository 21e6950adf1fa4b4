"""Errors under /api are JSON `{"error": ...}`; pages keep Flask's HTML errors."""

from __future__ import annotations

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException, InternalServerError

from .redirects import is_api_request


def api_error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error=message), status


def init_errors(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if not is_api_request():
            return exc
        response = jsonify(error=exc.description or exc.name)
        response.status_code = exc.code or 500
        for name, value in exc.get_headers():
            if name.lower() not in ("content-type", "content-length"):
                response.headers[name] = value
        return response

    @app.errorhandler(InternalServerError)
    def _server_error(exc: InternalServerError):
        if not is_api_request():
            return exc
        return api_error(500, "internal server error")
