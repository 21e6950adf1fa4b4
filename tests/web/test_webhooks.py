"""Webhooks: one signed POST per finished grade, retried with back-off when the endpoint fails, replayable."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from grader.storage import open_storage
from grader.web.users import Role
from grader.webhooks import SIGNATURE_HEADER, Webhooks, verify
from tests.web.conftest import csrf_of
from tests.web.test_candidate import _finish


class Receiver:
    """A local HTTP server on 127.0.0.1 that answers the codes it is told to, in order, and keeps what it got."""

    def __init__(self, codes: list[int]) -> None:
        self.codes = codes
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.codes.pop(0) if receiver.codes else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver([500, 503])
    yield server
    server.close()


def test_signed_delivery_retried_until_it_succeeds_then_replayed(store, web_settings, receiver, enqueued, client, login, git_repo):
    """Two failures, then success after the back-off; the signature verifies; a replay sends it again."""
    hooks = Webhooks(store.engine)
    hook = hooks.set("tiny", receiver.url)
    login(Role.admin)
    repo = str(git_repo(files={"wsgi.py": "app = None\n"}))
    from grader.submissions import check_source, record_submission

    record = record_submission(store, lambda s, j: enqueued.append((s, j)), url=check_source(web_settings, "tiny", repo),
                               ref=None, assignment="tiny", submitter="Cleo").record
    sid = record.id
    assert hooks.record_finished(store, open_storage(web_settings)) == 0, "not finished yet: nothing to report"
    _finish(store, sid, web_settings.paths.reports_dir)
    assert hooks.record_finished(store, open_storage(web_settings)) == 1
    assert hooks.record_finished(store, open_storage(web_settings)) == 0, "one delivery per grading"
    fast = web_settings.replace(webhook_retry_intervals_s=[0, 0, 0])
    for expected_attempts in (1, 2):
        assert hooks.send_due(fast) == 0
        [delivery] = hooks.deliveries()
        assert (delivery.state, delivery.attempts, delivery.last_error) == ("pending", expected_attempts,
                                                                           f"HTTP {[500, 503][expected_attempts - 1]}")
    assert hooks.send_due(fast) == 1
    [delivery] = hooks.deliveries()
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("delivered", 3, 200)
    assert len(receiver.received) == 3
    headers, body = receiver.received[-1]
    assert verify(hook.secret, body, headers[SIGNATURE_HEADER])
    assert not verify("another secret", body, headers[SIGNATURE_HEADER])
    data = json.loads(body)
    assert data["event"] == "grade.finished" and data["submission"]["id"] == sid and data["submission"]["score"] == 5
    assert [c["id"] for c in data["categories"]] == ["hello", "answer"]
    assert data["earlier"] is None, "a first grade replaced none"
    page = client.get("/admin/deliveries").get_data(as_text=True)
    assert sid in page
    assert client.post(f"/admin/deliveries/{delivery.id}/replay", data={"csrf_token": csrf_of(page)}).status_code == 302
    assert hooks.send_due(fast) == 1 and len(receiver.received) == 4
    assert receiver.received[-1][1] == body


def test_delivery_gives_up_after_the_last_retry(store, web_settings, receiver, enqueued, git_repo):
    """With one retry allowed, two failures mark the delivery failed; it is not sent again by itself."""
    from grader.submissions import check_source, record_submission

    hooks = Webhooks(store.engine)
    hooks.set("tiny", receiver.url)
    repo = str(git_repo(files={"wsgi.py": "app = None\n"}))
    record = record_submission(store, lambda s, j: None, url=check_source(web_settings, "tiny", repo),
                               ref=None, assignment="tiny", submitter=None).record
    _finish(store, record.id, web_settings.paths.reports_dir)
    hooks.record_finished(store, open_storage(web_settings))
    one_retry = web_settings.replace(webhook_retry_intervals_s=[0])
    hooks.send_due(one_retry)
    hooks.send_due(one_retry)
    hooks.send_due(one_retry)
    [delivery] = hooks.deliveries()
    assert (delivery.state, delivery.attempts, len(receiver.received)) == ("failed", 2, 2)


def test_unreachable_endpoint_is_retried_later(store, web_settings, git_repo):
    """A refused connection is a failure with its reason and a next try after the first interval."""
    from grader.submissions import check_source, record_submission

    hooks = Webhooks(store.engine)
    hooks.set("tiny", "http://127.0.0.1:1/hook")
    repo = str(git_repo(files={"wsgi.py": "app = None\n"}))
    record = record_submission(store, lambda s, j: None, url=check_source(web_settings, "tiny", repo),
                               ref=None, assignment="tiny", submitter=None).record
    _finish(store, record.id, web_settings.paths.reports_dir)
    hooks.record_finished(store, open_storage(web_settings))
    assert hooks.send_due(web_settings) == 0
    [delivery] = hooks.deliveries()
    assert delivery.state == "pending" and "ConnectionError" in (delivery.last_error or "")
    assert delivery.next_attempt_at is not None and hooks.send_due(web_settings) == 0, "not due before its back-off"
