"""The JSON API under /api: `Authorization: Bearer <API token>` on every route; 401 JSON without it.

POST /api/invitations            {"assignment", "candidate"?, "days"?, "max_uses"?} -> 201 {"id", "url", "expires_at", ...}
POST /api/submissions            {"assignment", "repository", "ref"?, "submitter"?} -> 202 {"id", "status", ...}
GET  /api/submissions/<id>       the status of `grader status --json`, plus "progress" and "queue_position"
GET  /api/submissions/<id>/report  the full report JSON, with today's "similar" and "cohort" (404 until there is one)
GET  /api/submissions/<id>/report.pdf, /junit.xml, /ctrf.json   the report's exports (404 until there is one)
POST /api/submissions/<id>/regrade  grade a finished submission again -> 202 {"id", "status", ...}; 404 unknown,
                                 409 while it is queued or running. The new report keeps the grade it replaced
                                 ("earlier": score, host, and what differs between the two gradings)
DELETE /api/submissions/<id>     administrators only (403): the record, reports, kept code and comparisons
                                 -> 200 {"deleted": id}; 404 unknown, 409 while it is queued or running
GET  /api/assignments/<assignment>/cohort[?version=]   the cohort: n, mean, median, histogram, categories,
                                 hardest tests, pairs at or above the similarity threshold (404 unknown assignment)

Every error answers `{"error": "..."}` with its status: the views' own below, the rest (404, 405, 500)
from grader.web.errors.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, g, jsonify, request, url_for
from werkzeug.wrappers import Response

from grader.cohort.view import live_report
from grader.submissions import (
    SubmitError,
    check_source,
    delete_submission,
    load_report,
    record_submission,
    regrade_submission,
    status_payload,
)
from grader.web.cohort import cohort_view, known_assignment
from grader.web.downloads import send_export
from grader.web.errors import api_error
from grader.web.users import User

bp = Blueprint("api", __name__, url_prefix="/api")


def _grader() -> Any:
    from grader.web import grader

    return grader()


def unauthorized() -> tuple[Response, int]:
    response = jsonify(error="unauthorized", message="send an API token: Authorization: Bearer <token>")
    response.headers["WWW-Authenticate"] = 'Bearer realm="grader"'
    return response, 401


def token_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        user: User | None = _grader().tokens.user_by_token(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            return unauthorized()
        g.api_user = user
        return view(*args, **kwargs)

    return wrapped


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


@bp.route("/invitations", methods=["POST"])
@token_required
def create_invitation() -> tuple[Response, int]:
    grader = _grader()
    data = _body()
    assignment = str(data.get("assignment") or "")
    if not (grader.settings.paths.assignments_dir / assignment / "assignment.toml").is_file() or "/" in assignment:
        return api_error(f"no assignment {assignment!r}", 404)
    try:
        days = float(data.get("days", grader.settings.web.invitation_days))
        max_uses = int(data.get("max_uses", grader.settings.web.invitation_max_uses))
    except (TypeError, ValueError):
        return api_error("days must be a number and max_uses an integer", 400)
    if not (0 < days <= 365 and 1 <= max_uses <= 100):
        return api_error("days must be in (0, 365] and max_uses in [1, 100]", 400)
    candidate = data.get("candidate")
    token, invite = grader.invitations.create_invitation(
        assignment, candidate=str(candidate)[:255] if candidate else None, created_by=g.api_user.id,
        days=days, max_uses=max_uses)
    return jsonify(id=invite.id, assignment=assignment, url=url_for("candidate.invitation", token=token, _external=True),
                   expires_at=invite.expires_at.isoformat(), max_uses=max_uses), 201


@bp.route("/submissions", methods=["POST"])
@token_required
def submit() -> tuple[Response, int]:
    grader = _grader()
    data = _body()
    try:
        url = check_source(grader.settings, str(data.get("assignment") or ""), str(data.get("repository") or ""))
        queued = record_submission(
            grader.store, grader.enqueue, url=url, ref=str(data["ref"]) if data.get("ref") else None,
            assignment=str(data["assignment"]), submitter=str(data.get("submitter") or g.api_user.email))
    except SubmitError as exc:
        return api_error(exc.message, exc.status)
    record = queued.record  # recorded even when Redis refused the job: a worker's watchdog enqueues it later
    return jsonify(status_payload(record, grader.store.queue_position(record.id))), 202


@bp.route("/submissions/<submission_id>")
@token_required
def status(submission_id: str) -> Response | tuple[Response, int]:
    grader = _grader()
    record = grader.store.get(submission_id)
    if record is None:
        return api_error(f"no submission {submission_id!r}", 404)
    return jsonify(status_payload(record, grader.store.queue_position(record.id)))


@bp.route("/submissions/<submission_id>/report")
@token_required
def report(submission_id: str) -> Response | tuple[Response, int]:
    grader = _grader()
    record = grader.store.get(submission_id)
    graded = load_report(record, grader.storage) if record else None
    if graded is None:
        return api_error(f"no report for {submission_id!r} (yet)", 404)
    return jsonify(live_report(graded, grader.cohort, grader.settings.cohort).model_dump(mode="json"))


@bp.route("/submissions/<submission_id>/regrade", methods=["POST"])
@token_required
def regrade(submission_id: str) -> tuple[Response, int]:
    grader = _grader()
    try:
        queued = regrade_submission(grader.store, grader.enqueue, submission_id)
    except SubmitError as exc:
        return api_error(exc.message, exc.status)
    return jsonify(status_payload(queued.record, grader.store.queue_position(submission_id))), 202


@bp.route("/submissions/<submission_id>", methods=["DELETE"])
@token_required
def delete(submission_id: str) -> Response | tuple[Response, int]:
    if not g.api_user.is_admin:
        return api_error("only an administrator's token may delete a submission", 403)
    grader = _grader()
    try:
        delete_submission(grader.settings, grader.store, submission_id, grader.storage)
    except SubmitError as exc:
        return api_error(exc.message, exc.status)
    return jsonify(deleted=submission_id)


@bp.route("/assignments/<assignment>/cohort")
@token_required
def cohort(assignment: str) -> Response | tuple[Response, int]:
    if not known_assignment(assignment):
        return api_error(f"no assignment {assignment!r}", 404)
    return jsonify(cohort_view(assignment, request.args.get("version") or None).model_dump(mode="json"))


@bp.route("/submissions/<submission_id>/report.pdf", defaults={"name": "report.pdf"})
@bp.route("/submissions/<submission_id>/junit.xml", defaults={"name": "junit.xml"})
@bp.route("/submissions/<submission_id>/ctrf.json", defaults={"name": "ctrf.json"})
@token_required
def report_file(submission_id: str, name: str) -> Response | tuple[Response, int]:
    grader = _grader()
    record = grader.store.get(submission_id)
    response = send_export(record, name, grader.storage) if record else None
    if response is None:
        return api_error(f"no {name} for {submission_id!r} (yet)", 404)
    return response
