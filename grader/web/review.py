"""The reviewers' pages: submissions per assignment, a full report, candidates side by side, regrade,
invitations and API tokens. Administrators see them too, and may delete a submission.

A report is shown live (`live_report`): its similar submissions and its place in the cohort as they stand today,
since later submissions and deletions change both; report.json keeps them as they were at the grade."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import DecimalField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from grader.cohort.view import live_report
from grader.db.store import utcnow
from grader.models import GradeReport
from grader.stages.report import render_html, report_context
from grader.submissions import (
    SORTS,
    SubmitError,
    delete_submission,
    list_submissions,
    load_report,
    progress,
    regrade_submission,
)
from grader.web.auth import admin_required, staff_required
from grader.web.downloads import available, send_export

bp = Blueprint("review", __name__)


def _g() -> Any:
    from grader.web import grader

    return grader()


def assignment_ids() -> list[str]:
    folder = _g().settings.paths.assignments_dir
    return sorted(p.parent.name for p in folder.glob("*/assignment.toml"))


@bp.route("/submissions")
@staff_required
def submissions() -> str:
    g = _g()
    assignment = request.args.get("assignment") or None
    sort = request.args.get("sort", "created")
    descending = request.args.get("order", "desc") != "asc"
    records = list_submissions(g.store, assignment, sort if sort in SORTS else "created", descending)
    return render_template("submissions.html", records=records, assignment=assignment, assignments=assignment_ids(),
                           sort=sort, descending=descending, progress=progress)


REVIEW_CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'self'"
"""The reviewer's page shows the candidate's output inline (escaped); no script may run on it, ours included."""


def live(report: GradeReport) -> GradeReport:
    g = _g()
    return live_report(report, g.cohort, g.settings.cohort)


@bp.route("/submissions/<submission_id>")
@staff_required
def submission(submission_id: str) -> Response:
    """The record, then the report itself (the standalone report's `_report_body.html`, live), with its downloads."""
    g = _g()
    record = g.store.get(submission_id) or abort(404)
    report = load_report(record, g.storage)
    context: dict[str, object] = {"report": None}
    if report is not None:
        report = live(report)
        links = {label: url_for("review.report_file", submission_id=record.id, name=name)
                 for label, name in available(record, g.storage).items()}
        links["HTML page"] = url_for("review.report_html", submission_id=record.id)
        context = report_context(report, downloads=links)
        context.update(
            similar_links={m.submission: url_for("cohort.similar", assignment=report.assignment, a=report.id, b=m.submission)
                           for m in report.similar},
            cohort_href=url_for("cohort.assignment_cohort", assignment=report.assignment),
            rank_min_n=g.settings.cohort.rank_min_n,
        )
    response = Response(render_template("submission.html", record=record, progress=progress, **context), mimetype="text/html")
    response.headers["Content-Security-Policy"] = REVIEW_CSP
    return response


@bp.route("/submissions/<submission_id>/report.html")
@staff_required
def report_html(submission_id: str) -> Response | str:
    g = _g()
    record = g.store.get(submission_id) or abort(404)
    report = load_report(record, g.storage) or abort(404)
    response = Response(render_html(live(report), downloads=available(record, g.storage)), mimetype="text/html")
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response


def _file_route(name: str) -> str:
    return f"/submissions/<submission_id>/{name}"


@bp.route(_file_route("report.pdf"), defaults={"name": "report.pdf"})
@bp.route(_file_route("junit.xml"), defaults={"name": "junit.xml"})
@bp.route(_file_route("ctrf.json"), defaults={"name": "ctrf.json"})
@bp.route(_file_route("report.json"), defaults={"name": "report.json"})
@staff_required
def report_file(submission_id: str, name: str) -> Response:
    """One file of the report's folder (one of DOWNLOADS); 404 until the report has it."""
    g = _g()
    record = g.store.get(submission_id) or abort(404)
    return send_export(record, name, g.storage) or abort(404)


@bp.route("/submissions/<submission_id>/regrade", methods=["POST"])
@staff_required
def regrade(submission_id: str) -> Response:
    g = _g()
    try:
        regrade_submission(g.store, g.enqueue, submission_id)
    except SubmitError as exc:
        if exc.status == 404:
            abort(404)
        flash(f"{exc.message}.")
    else:
        flash(f"{submission_id} is queued for a new grading.")
    return redirect(url_for("review.submission", submission_id=submission_id))


@bp.route("/submissions/<submission_id>/delete", methods=["POST"])
@admin_required
def delete(submission_id: str) -> Response:
    """Remove the submission everywhere (record, reports, kept code, comparisons); the form asks to confirm."""
    g = _g()
    if not request.form.get("confirm"):
        flash("Tick the box to confirm: deleting cannot be undone.")
        return redirect(url_for("review.submission", submission_id=submission_id))
    try:
        delete_submission(g.settings, g.store, submission_id, g.storage)
    except SubmitError as exc:
        if exc.status == 404:
            abort(404)
        flash(f"{exc.message}.")
        return redirect(url_for("review.submission", submission_id=submission_id))
    flash(f"{submission_id} is deleted: its record, reports, kept code and comparisons.")
    return redirect(url_for("review.submissions"))


@bp.route("/compare")
@staff_required
def compare() -> str:
    g = _g()
    ids = request.args.getlist("id")[:8]
    records = [r for r in (g.store.get(i) for i in ids) if r is not None]
    reports = {r.id: load_report(r, g.storage) for r in records}
    categories: list[tuple[str, str]] = []
    for report in reports.values():
        for category in report.categories if report else []:
            if (category.id, category.title) not in categories:
                categories.append((category.id, category.title))
    scores = {rid: {c.id: c for c in (rep.categories if rep else [])} for rid, rep in reports.items()}
    return render_template("compare.html", records=records, reports=reports, categories=categories, scores=scores)


class InvitationForm(FlaskForm):
    assignment = SelectField("Assignment", validators=[DataRequired()])
    candidate = StringField("Candidate (name or e-mail)", validators=[Optional(), Length(max=255)])
    days = DecimalField("Valid for (days)", validators=[DataRequired(), NumberRange(min=0.01, max=365)])
    max_uses = IntegerField("Submissions allowed", validators=[DataRequired(), NumberRange(min=1, max=100)])


@bp.route("/invitations", methods=["GET", "POST"])
@staff_required
def invitations() -> str:
    g = _g()
    form = InvitationForm()
    form.assignment.choices = assignment_ids()
    if request.method == "GET":
        form.days.data = g.settings.web.invitation_days
        form.max_uses.data = g.settings.web.invitation_max_uses
    link = None
    if form.validate_on_submit():
        token, _invite = g.invitations.create_invitation(
            form.assignment.data, candidate=form.candidate.data or None, created_by=current_user.id,
            days=float(form.days.data or 0), max_uses=int(form.max_uses.data or 1))
        link = url_for("candidate.invitation", token=token, _external=True)
    return render_template("invitations.html", form=form, link=link, invitations=g.invitations.list_invitations(), now=utcnow())


def _own_rows() -> int | None:
    """Whose tokens and invitations the current user manages: their own, or everyone's (None) for administrators."""
    return None if current_user.is_admin else current_user.id


@bp.route("/invitations/<int:invitation_id>/withdraw", methods=["POST"])
@staff_required
def withdraw_invitation(invitation_id: int) -> Response:
    """A leaked or mistaken link ends now; its creator or an administrator may do it, anyone else gets 404."""
    if not _g().invitations.withdraw_invitation(invitation_id, _own_rows()):
        abort(404)
    flash(f"Invitation {invitation_id} withdrawn: its link accepts no more submissions.")
    return redirect(url_for("review.invitations"))


class TokenForm(FlaskForm):
    name = StringField("What the token is for", validators=[DataRequired(), Length(max=255)])


@bp.route("/tokens", methods=["GET", "POST"])
@staff_required
def tokens() -> str:
    """Create a token; list the user's tokens (every user's for administrators), each with Revoke."""
    form = TokenForm()
    token = None
    if form.validate_on_submit():
        token = _g().tokens.create_token(current_user.id, form.name.data or "")
    return render_template("tokens.html", form=form, token=token, tokens=_g().tokens.list_tokens(_own_rows()))


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
@staff_required
def revoke_token(token_id: int) -> Response:
    """A revoked token is deleted: the next API request with it answers 401. Only its owner or an
    administrator may revoke it; anyone else gets 404, as for a token that does not exist."""
    if not _g().tokens.revoke_token(token_id, _own_rows()):
        abort(404)
    flash("Token revoked: requests with it now answer 401.")
    return redirect(url_for("review.tokens"))
