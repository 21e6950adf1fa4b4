"""Helpers any assignment's hidden suite may use: summaries of answers, HTML forms, CSRF fields, redirects.

A suite's conftest keeps its own `describe()` and `expect_status()` (their messages differ between assignments)
and passes them to the helpers here that report a failure, so each report keeps its suite's wording.
"""

from __future__ import annotations

from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any
from urllib.parse import SplitResult, parse_qs, urlencode, urlsplit

import requests

from harness.client import SandboxClient

SANDBOX_HOST = "app.sandbox"
SANDBOX_ORIGIN = f"https://{SANDBOX_HOST}"

Describe = Callable[[Any], str]
ExpectStatus = Callable[[Any, int, str], None]


# --- describing what came back ------------------------------------------------------------------


def request_line(response: Any) -> str:
    """`METHOD /path?query` of the request that gave this response, or "the request" when it is unknown."""
    request = getattr(response, "request", None)
    if request is None or not getattr(request, "url", None):
        return "the request"
    parts = urlsplit(request.url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return f"{request.method} {target}"


def answer(response: requests.Response | BaseException, excerpt: int = 80) -> str:
    """A short form of describe() for lists of cases: status, content type and a body excerpt."""
    if isinstance(response, BaseException):
        return f"no HTTP answer ({type(response).__name__})"
    text = " ".join(response.text.split())
    body = text if len(text) <= excerpt else text[:excerpt] + "…"
    return f"got {response.status_code} ({response.headers.get('Content-Type')}) {body!r}"


def json_of(response: requests.Response, what: str, describe: Describe) -> Any:
    """The JSON body, or a failure saying the body was not JSON."""
    try:
        return response.json()
    except ValueError:
        raise AssertionError(f"{what}: expected a JSON body; {describe(response)}") from None


def is_json(response: requests.Response) -> bool:
    return response.headers.get("Content-Type", "").split(";")[0].strip().lower() == "application/json"


def is_html(response: requests.Response) -> bool:
    return response.headers.get("Content-Type", "").split(";")[0].strip().lower() == "text/html"


def summarize(responses: list[Any]) -> str:
    """Status codes of many responses as counts, e.g. '201 x1, 409 x18, 500 x1'."""
    counts: dict[str, int] = {}
    for response in responses:
        key = type(response).__name__ if isinstance(response, BaseException) else str(response.status_code)
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{key} x{count}" for key, count in sorted(counts.items()))


def first_bad(responses: list[Any], ok: tuple[int, ...], describe: Describe) -> str:
    """A description of the first response whose status is not in `ok`."""
    for response in responses:
        if isinstance(response, BaseException) or response.status_code not in ok:
            return describe(response)
    return "none"


# --- HTML forms and redirects -------------------------------------------------------------------


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict[str, Any]] = []
        self.inputs: list[dict[str, str]] = []
        self._current: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name.lower(): (value or "") for name, value in attrs}
        if tag == "form":
            self._current = {"action": attributes.get("action", ""), "method": attributes.get("method", "get"), "inputs": []}
            self.forms.append(self._current)
        elif tag in ("input", "textarea", "select", "button"):
            field = {
                "tag": tag,
                "name": attributes.get("name", ""),
                "type": attributes.get("type", "").lower(),
                "value": attributes.get("value", ""),
            }
            self.inputs.append(field)
            if self._current is not None:
                self._current["inputs"].append(field)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def parse_html(html: str) -> _FormParser:
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    return parser


def form_with(html: str, *names: str) -> dict[str, Any] | None:
    """The first form holding inputs with all `names`, or None."""
    for form in parse_html(html).forms:
        present = {field["name"] for field in form["inputs"]}
        if all(name in present for name in names):
            return form
    return None


def csrf_fields(html: str) -> dict[str, str]:
    """{'csrf_token': value} when the page carries a hidden csrf_token input, else {}."""
    for field in parse_html(html).inputs:
        if field["name"] == "csrf_token":
            return {"csrf_token": field["value"]}
    return {}


def browser_login(
    client: SandboxClient, username: str, password: str, next_url: str | None, expect_status: ExpectStatus
) -> requests.Response:
    """GET /login then POST /login with form data, as a browser would; `next` goes in query and form."""
    query = "" if next_url is None else "?" + urlencode({"next": next_url})
    page = client.get("/login" + query)
    expect_status(page, 200, "GET /login (the login form)")
    data = {**csrf_fields(page.text), "username": username, "password": password}
    if next_url is not None:
        data["next"] = next_url
    return client.post("/login" + query, data=data)


def next_param(location: SplitResult) -> list[str]:
    return parse_qs(location.query).get("next", [])
