"""The administrators' pages: assignments as the server sees them, users, webhooks and their deliveries."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional, url

from grader.assignments.check import validate_assignment
from grader.assignments.model import AssignmentError, load_assignment_folder
from grader.submissions import read_check
from grader.web.auth import admin_required
from grader.web.users import Role

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _g() -> Any:
    from grader.web import grader

    return grader()


class WebhookForm(FlaskForm):
    url = StringField("Webhook URL (empty to remove)", validators=[Optional(), url(require_tld=False), Length(max=2000)])


@bp.route("/assignments")
@admin_required
def assignments() -> str:
    g = _g()
    rows = []
    hooks = g.webhooks.all()
    for toml in sorted(g.settings.paths.assignments_dir.glob("*/assignment.toml")):
        folder = toml.parent
        try:
            title = load_assignment_folder(folder).title
        except AssignmentError:
            title = ""
        rows.append({"id": folder.name, "title": title, "problems": validate_assignment(folder),
                     "check": read_check(g.storage, folder.name), "webhook": hooks.get(folder.name)})
    return render_template("admin_assignments.html", rows=rows, form=WebhookForm())


@bp.route("/assignments/<assignment_id>/webhook", methods=["POST"])
@admin_required
def set_webhook(assignment_id: str) -> Response | str:
    g = _g()
    if not (g.settings.paths.assignments_dir / assignment_id / "assignment.toml").is_file():
        abort(404)
    form = WebhookForm()
    if not form.validate_on_submit():
        flash(f"Not a URL: {', '.join(form.url.errors)}")
        return redirect(url_for("admin.assignments"))
    hook = g.webhooks.set(assignment_id, (form.url.data or "").strip())
    if hook.url:
        return render_template("admin_webhook_secret.html", hook=hook)
    flash(f"The webhook of {assignment_id} is removed.")
    return redirect(url_for("admin.assignments"))


class UserForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired(), Length(max=255)])
    role = SelectField("Role", choices=[(r.value, r.value) for r in Role])
    password = PasswordField("Password", validators=[DataRequired(), Length(min=8, max=200)])


@bp.route("/users", methods=["GET", "POST"])
@admin_required
def users() -> Response | str:
    g = _g()
    form = UserForm()
    if form.validate_on_submit():
        if g.users.user_by_email(form.email.data or ""):
            flash("A user with that e-mail exists.")
        else:
            g.users.create_user(form.email.data or "", form.password.data or "", Role(form.role.data))
            flash(f"{form.email.data} can now log in.")
            return redirect(url_for("admin.users"))
    return render_template("admin_users.html", form=form, users=g.users.list_users())


@bp.route("/invitations")
@admin_required
def invitations() -> Response:
    return redirect(url_for("review.invitations"))


@bp.route("/deliveries")
@admin_required
def deliveries() -> str:
    return render_template("admin_deliveries.html", deliveries=_g().webhooks.deliveries(), form=FlaskForm())


@bp.route("/deliveries/<int:delivery_id>/replay", methods=["POST"])
@admin_required
def replay(delivery_id: int) -> Response:
    if not _g().webhooks.replay(delivery_id):
        abort(404)
    flash(f"Delivery {delivery_id} will be sent again within seconds.")
    return redirect(url_for("admin.deliveries"))
