"""Error answers: JSON `{"error": ...}` for every error under /api (the rule the grader grades), HTML pages elsewhere.

Under /api a client gets JSON with the right status whatever went wrong: a route that does not exist (404),
a method the route does not take (405, with `Allow`), a body too large (413), a CSRF refusal (400; the API is
exempt, but a route added to it without the exemption must still answer JSON), or a bug (500, logged, with no
detail in the answer). Routing errors come before authentication: 404 and 405 answer the same with or without
a token, since they only say what the public route table says and no token would fix them.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.wrappers import Response

log = logging.getLogger(__name__)


def is_api_request() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def api_error(message: str, status: int) -> tuple[Response, int]:
    """The one shape of an API error."""
    return jsonify(error=message), status


def _api_message(error: HTTPException) -> str:
    code = error.code or 500
    if code == 404:
        return f"not found: no {request.path} in the API; the routes are listed in the README's JSON API section"
    if isinstance(error, MethodNotAllowed):
        allowed = ", ".join(m for m in error.valid_methods or () if m not in ("HEAD", "OPTIONS"))
        return f"method not allowed: {request.method} {request.path} takes {allowed or 'no method you may use'}"
    if isinstance(error, CSRFError):
        return f"refused: {error.description}; send the API token in Authorization: Bearer <token>"
    if code >= 500:
        return "internal error: the grader logged it; try again, and tell its administrators if it persists"
    return f"{(error.name or 'error').lower()}: {error.description}"


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response | HTTPException | tuple[Response | str, int]:
        code = error.code or 500
        if is_api_request():
            if code >= 500:
                log.error("%s %s failed", request.method, request.path,
                          exc_info=getattr(error, "original_exception", None) or error)
            response, status = api_error(_api_message(error), code)
            if isinstance(error, MethodNotAllowed) and error.valid_methods:
                response.headers["Allow"] = ", ".join(error.valid_methods)
            return response, status
        if isinstance(error, CSRFError):
            return f"The form expired or was not sent from this site ({error.description}); go back, reload, try again.", 400
        if code == 404:
            return "Not found.", 404
        return error  # werkzeug's own HTML page
