"""The candidate's pages: an invitation link and, after submitting, a status link; no account.

A candidate reaches a submission only through its own status token (`/s/<token>`), never by id, and
sees only what `candidate_view` lets through: the score per category, and test names only when the
assignment says `candidate_sees_tests`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, jsonify, redirect, render_template, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import StringField
from wtforms.validators import DataRequired, Length, Optional

from grader.assignments.model import AssignmentError, assignment_or_none, load_assignment
from grader.db.store import SubmissionRecord, utcnow
from grader.submissions import (
    PROGRESS_WORDS,
    SubmitError,
    candidate_view,
    check_source,
    record_submission,
    status_payload,
)

bp = Blueprint("candidate", __name__)


class SubmitForm(FlaskForm):
    repository = StringField("Repository URL", validators=[DataRequired(), Length(max=2000)])
    ref = StringField("Branch, tag or commit (optional)", validators=[Optional(), Length(max=255)])


def _g() -> Any:
    from grader.web import grader

    return grader()


@bp.route("/i/<token>", methods=["GET", "POST"])
def invitation(token: str) -> Response | str | tuple[str, int]:
    g = _g()
    invite = g.invitations.invitation_by_token(token)
    if invite is None:
        return render_template("refused.html", message="This invitation link is not valid."), 404
    refusal = invite.refusal(utcnow())
    if refusal:
        return render_template("refused.html", message=refusal), 410
    try:
        assignment = load_assignment(g.settings.paths.assignments_dir, invite.assignment)
        brief = (assignment.folder / assignment.brief).read_text(errors="replace")
    except (AssignmentError, OSError):
        return render_template("refused.html", message="This assignment is not available; tell the hiring team."), 503
    form = SubmitForm()
    error = None
    if form.validate_on_submit():
        try:
            link = submit_for_invitation(invite.id, invite.assignment, invite.candidate,
                                         form.repository.data or "", form.ref.data or None)
            return redirect(url_for("candidate.status", token=link))
        except SubmitError as exc:
            error = exc.message
    remaining = invite.max_uses - invite.uses
    return render_template("invitation.html", assignment=assignment, brief=brief, form=form, error=error,
                           remaining=remaining, invite=invite)


def submit_for_invitation(invitation_id: int, assignment: str, candidate: str | None, source: str, ref: str | None) -> str:
    """Check, count against the invitation's limits, record and enqueue; return the candidate's status token."""
    g = _g()
    url = check_source(g.settings, assignment, source)
    if not g.invitations.use_invitation(invitation_id, g.settings.web.submit_interval_s):
        invite = g.invitations.invitation(invitation_id)
        refusal = invite.refusal(utcnow()) if invite else "This invitation is not valid."
        raise SubmitError(refusal or f"Please wait {g.settings.web.submit_interval_s:g} s between two submissions.", 429)
    queued = record_submission(g.store, g.enqueue, url=url, ref=ref, assignment=assignment, submitter=candidate)
    return str(g.invitations.link_submission(queued.record.id, invitation_id))


def _record(token: str) -> SubmissionRecord:
    g = _g()
    submission_id = g.invitations.submission_for_link(token)
    record = g.store.get(submission_id) if submission_id else None
    if record is None:
        abort(404)
    return record


@bp.route("/s/<token>")
def status(token: str) -> str:
    record = _record(token)
    return render_template("status.html", record=record, token=token, steps=PROGRESS_WORDS)


@bp.route("/s/<token>/status.json")
def status_json(token: str) -> Response:
    g = _g()
    record = _record(token)
    assignment = assignment_or_none(g.settings.paths.assignments_dir, record.assignment)
    body = status_payload(record, g.store.queue_position(record.id))
    body.pop("report", None)  # where the report is stored: not the candidate's business
    body["result"] = candidate_view(record, assignment, g.storage) if record.final else None
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response
