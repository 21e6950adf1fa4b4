"""Webhooks: each finished grade of an assignment is POSTed to its URL, signed, retried with back-off.

`grader serve` runs a Dispatcher thread: every `webhook_poll_s` it records one delivery per finished
grading (a submission and its `finished_at`, so a regrade is reported again) of each assignment with a
webhook, then sends the deliveries that are due. The body is JSON; `X-Grader-Signature` is
`sha256=<hex HMAC-SHA256 of the raw body with the webhook's secret>`. A delivery that fails (no answer,
or not 2xx) is tried again after each of `webhook_retry_intervals_s`, then marked `failed`; an
administrator can replay any delivery from the admin pages. Not web code: the records (grader.db), the
dispatcher and the payload (whose report comes through grader.submissions) need no web app.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
from datetime import datetime, timedelta
from typing import Any

import requests
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine, and_, select, update
from sqlalchemy.exc import IntegrityError

from grader.db.schema import submissions, webhook_deliveries, webhooks
from grader.db.store import FINAL_STATUSES, Store, SubmissionRecord, utcnow
from grader.settings import Settings
from grader.storage import Storage, open_storage
from grader.submissions import load_report

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Grader-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """What a receiver does: compare in constant time."""
    return hmac.compare_digest(sign(secret, body), signature)


class Webhook(BaseModel):
    model_config = ConfigDict(frozen=True)

    assignment: str
    url: str
    secret: str
    created_at: datetime


class Delivery(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    assignment: str
    submission_id: str
    finished_at: datetime
    url: str
    payload: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    last_status_code: int | None
    created_at: datetime
    delivered_at: datetime | None


class Webhooks:
    """Webhook settings per assignment and their deliveries, over the SQLAlchemy database engine passed in."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def set(self, assignment: str, url: str) -> Webhook:
        """Set (or replace) the assignment's webhook with a new secret; an empty URL removes it."""
        with self.engine.begin() as conn:
            conn.execute(webhooks.delete().where(webhooks.c.assignment == assignment))
            if url:
                conn.execute(webhooks.insert().values(
                    assignment=assignment, url=url, secret=secrets.token_hex(32), created_at=utcnow()))
        hook = self.get(assignment)
        return hook if hook else Webhook(assignment=assignment, url="", secret="", created_at=utcnow())

    def get(self, assignment: str) -> Webhook | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(webhooks).where(webhooks.c.assignment == assignment)).mappings().first()
        return Webhook.model_validate(dict(row)) if row else None

    def all(self) -> dict[str, Webhook]:
        with self.engine.connect() as conn:
            return {r["assignment"]: Webhook.model_validate(dict(r)) for r in conn.execute(select(webhooks)).mappings()}

    def deliveries(self, limit: int = 200) -> list[Delivery]:
        query = select(webhook_deliveries).order_by(webhook_deliveries.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [Delivery.model_validate(dict(r)) for r in conn.execute(query).mappings()]

    def delivery(self, delivery_id: int) -> Delivery | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)).mappings().first()
        return Delivery.model_validate(dict(row)) if row else None

    def replay(self, delivery_id: int) -> bool:
        """Send a delivery again now, with a fresh series of retries, to the assignment's current URL."""
        delivery = self.delivery(delivery_id)
        if delivery is None:
            return False
        hook = self.get(delivery.assignment)
        with self.engine.begin() as conn:
            conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id).values(
                state="pending", attempts=0, next_attempt_at=utcnow(), url=hook.url if hook else delivery.url))
        return True

    # --- the dispatcher's work -------------------------------------------------------------------

    def record_finished(self, store: Store, storage: Storage) -> int:
        """One pending delivery per finished grading of an assignment with a webhook, not yet recorded; the
        scores are read from the report in `storage`."""
        hooks = self.all()
        if not hooks:
            return 0
        done = select(webhook_deliveries.c.id).where(and_(
            webhook_deliveries.c.submission_id == submissions.c.id,
            webhook_deliveries.c.finished_at == submissions.c.finished_at)).exists()
        query = select(submissions).where(
            submissions.c.assignment.in_(list(hooks)) & submissions.c.status.in_([s.value for s in FINAL_STATUSES])
            & submissions.c.finished_at.is_not(None) & ~done)
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(query.limit(500)).mappings()]
        made = 0
        for row in rows:
            hook = hooks[row["assignment"]]
            if row["finished_at"] < hook.created_at:
                continue  # graded before the webhook existed: not reported
            record = store.get(row["id"])
            if record is None:
                continue
            body = json.dumps(payload(record, storage), sort_keys=True)
            try:
                with self.engine.begin() as conn:
                    conn.execute(webhook_deliveries.insert().values(
                        assignment=row["assignment"], submission_id=row["id"], finished_at=row["finished_at"],
                        url=hook.url, payload=body, state="pending", attempts=0, next_attempt_at=utcnow(),
                        created_at=utcnow()))
                made += 1
            except IntegrityError:
                continue  # another dispatcher recorded it
        return made

    def send_due(self, settings: Settings, session: requests.Session | None = None) -> int:
        """Send every pending delivery whose time has come; return how many were sent successfully."""
        now = utcnow()
        query = select(webhook_deliveries).where(
            (webhook_deliveries.c.state == "pending") & (webhook_deliveries.c.next_attempt_at <= now))
        with self.engine.connect() as conn:
            due = [Delivery.model_validate(dict(r)) for r in conn.execute(query.limit(100)).mappings()]
        sent = 0
        for delivery in due:
            sent += self._send(delivery, settings, session or requests.Session())
        return sent

    def _send(self, delivery: Delivery, settings: Settings, session: requests.Session) -> int:
        hook = self.get(delivery.assignment)
        if hook is None:
            self._finish(delivery, state="failed", error="the assignment has no webhook any more", code=None)
            return 0
        body = delivery.payload.encode()
        code: int | None = None
        try:
            response = session.post(
                delivery.url, data=body, timeout=settings.web.webhook_timeout_s, allow_redirects=False,
                headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign(hook.secret, body),
                         "X-Grader-Delivery": str(delivery.id), "User-Agent": "flask-grader-webhook"})
            code = response.status_code
            error = None if 200 <= code < 300 else f"HTTP {code}"
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        if error is None:
            self._finish(delivery, state="delivered", error=None, code=code)
            return 1
        intervals = settings.web.webhook_retry_intervals_s
        attempt = delivery.attempts + 1
        if attempt > len(intervals):
            self._finish(delivery, state="failed", error=error, code=code)
        else:
            self._finish(delivery, state="pending", error=error, code=code,
                         next_at=utcnow() + timedelta(seconds=intervals[attempt - 1]))
        log.warning("webhook delivery %s to %s failed (attempt %s): %s", delivery.id, delivery.url, attempt, error)
        return 0

    def _finish(self, delivery: Delivery, *, state: str, error: str | None, code: int | None,
                next_at: datetime | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(webhook_deliveries).where(
                (webhook_deliveries.c.id == delivery.id) & (webhook_deliveries.c.attempts == delivery.attempts)
            ).values(state=state, attempts=delivery.attempts + 1, last_error=error, last_status_code=code,
                     next_attempt_at=next_at, delivered_at=utcnow() if state == "delivered" else None))


def payload(record: SubmissionRecord, storage: Storage) -> dict[str, Any]:
    """The JSON a webhook receives: the status of `grader status --json`, the assignment and category scores, and
    for a regrade the grade it replaced (`earlier`: score, host, what differs; None for a first grade)."""
    report = load_report(record, storage)
    return {
        "event": "grade.finished",
        "submission": {**record.status_json(), "assignment": record.assignment, "submitter": record.submitter,
                       "finished_at": record.finished_at.isoformat() if record.finished_at else None},
        "categories": [{"id": c.id, "score": c.score, "max_score": c.max_score} for c in report.categories] if report else [],
        "earlier": report.earlier.model_dump(mode="json") if report and report.earlier else None,
    }


class Dispatcher(threading.Thread):
    """The loop `grader serve` runs beside the web app and the workers."""

    def __init__(self, settings: Settings, store: Store, storage: Storage | None = None) -> None:
        super().__init__(name="webhook-dispatcher", daemon=True)
        self.settings = settings
        self.store = store
        self.storage = storage or open_storage(settings)
        self.hooks = Webhooks(store.engine)
        self.stopping = threading.Event()

    def run(self) -> None:
        session = requests.Session()
        while not self.stopping.wait(self.settings.web.webhook_poll_s):
            try:
                self.hooks.record_finished(self.store, self.storage)
                self.hooks.send_due(self.settings, session)
            except Exception:  # the loop must survive a database hiccup
                log.exception("webhook dispatcher")

    def stop(self) -> None:
        self.stopping.set()
