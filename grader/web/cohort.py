"""The cohort of an assignment for reviewers and administrators: its distribution, fairness and flagged pairs, and
two submissions' kept code side by side with what matched highlighted.

A similarity is a prompt to look, never a verdict: these pages show where two submissions match so a person can
judge, and nothing here changes a point. Both pages show the candidates' code (escaped) under the reviewer's CSP.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request
from werkzeug.wrappers import Response

from grader.assignments.model import assignment_or_none
from grader.cohort.view import Bin, CohortView, assignment_view
from grader.web.auth import staff_required
from grader.web.side_by_side import side_by_side

bp = Blueprint("cohort", __name__, url_prefix="/assignments")

PAGE_CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'self'"
"""As the reviewer's submission page: the candidates' code is shown (escaped) and no script runs, ours included."""

CHART = {"width": 640, "height": 250, "left": 48, "right": 12, "top": 22, "bottom": 46}
"""The histogram's canvas and margins, in SVG pixels."""


def _g() -> Any:
    from grader.web import grader

    return grader()


def known_assignment(assignment: str) -> bool:
    """An assignment folder on this server, or one the cohort still holds members of (its folder since removed)."""
    g = _g()
    return (g.settings.paths.assignments_dir / assignment / "assignment.toml").is_file() or bool(g.cohort.members(assignment))


def cohort_view(assignment: str, version: str | None) -> CohortView:
    """The view of one version (the latest graded one unless `version` names another that exists)."""
    g = _g()
    view = assignment_view(g.cohort, assignment, g.settings.cohort)
    if version and version != view.version and version in view.versions:
        view = assignment_view(g.cohort, assignment, g.settings.cohort, version=version)
    return view


def histogram_chart(bins: list[Bin]) -> dict[str, Any]:
    """The histogram's geometry: a bar per non-empty bin (count above it), an x label per bin edge, the y axis's top."""
    width, height = CHART["width"], CHART["height"]
    plot_w = width - CHART["left"] - CHART["right"]
    plot_h = height - CHART["top"] - CHART["bottom"]
    base = CHART["top"] + plot_h
    step = plot_w / max(len(bins), 1)
    peak = max((b.count for b in bins), default=0)
    bars = []
    for i, b in enumerate(bins):
        if not b.count:
            continue
        h = round(plot_h * b.count / peak, 1)
        bars.append({"x": round(CHART["left"] + i * step + 2, 1), "y": round(base - h, 1), "width": round(step - 4, 1),
                     "height": h, "count": b.count, "cx": round(CHART["left"] + (i + 0.5) * step, 1),
                     "label": f"{b.low:g}–{b.high:g} %"})
    edges = [{"x": round(CHART["left"] + i * step, 1), "label": f"{bins[0].low + i * (bins[0].high - bins[0].low):g}"}
             for i in range(len(bins) + 1)] if bins else []
    return {"width": width, "height": height, "left": CHART["left"], "right": width - CHART["right"], "top": CHART["top"],
            "base": base, "bars": bars, "edges": edges, "peak": peak}


def _page(html: str) -> Response:
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response


@bp.route("/<assignment>/cohort")
@staff_required
def assignment_cohort(assignment: str) -> Response:
    """n, mean and median, the distribution, each category's pass rate, the hardest tests and the flagged pairs."""
    if not known_assignment(assignment):
        abort(404)
    view = cohort_view(assignment, request.args.get("version") or None)
    return _page(render_template("cohort.html", view=view, chart=histogram_chart(view.histogram)))


@bp.route("/<assignment>/similar/<a>/<b>")
@staff_required
def similar(assignment: str, a: str, b: str) -> Response:
    """Two members' kept code compared again now, the matched files side by side; 404 unless both are of `assignment`."""
    g = _g()
    members = [g.cohort.member(a), g.cohort.member(b)]
    if a == b or any(m is None or m.assignment != assignment for m in members):
        abort(404)
    found = assignment_or_none(g.settings.paths.assignments_dir, assignment)
    shown = side_by_side(members[0], members[1], g.cohort, g.settings, found.starter_paths if found else [], g.storage)
    return _page(render_template("similar.html", assignment=assignment, a=members[0], b=members[1], shown=shown,
                                 pair=g.cohort.pair(a, b), retention_days=g.settings.cohort.snapshot_retention_days))
