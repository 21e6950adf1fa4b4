"""`grader cohort ASSIGNMENT`: the assignment's cohort (distribution, category pass rates, hardest tests, similar
pairs), from the database every grade of this data directory is placed in (`grader grade` and the workers')."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from grader.cli.helpers import EXIT_FAILED, fail, load_settings, open_store_or_fail
from grader.cohort.store import CohortStore
from grader.cohort.view import CohortView, assignment_view


def cohort(
    assignment: str = typer.Argument(..., help="Assignment id, e.g. flask-notes."),
    version: str | None = typer.Option(None, help="Assignment version (default: the latest graded)."),
    as_json: bool = typer.Option(False, "--json", help="Print the view as JSON."),
) -> None:
    """How the graded submissions of an assignment compare, and which pairs look alike."""
    settings = load_settings()
    store = CohortStore(open_store_or_fail(settings).engine)
    view = assignment_view(store, assignment, settings.cohort, version)
    if view.n == 0 and not view.versions:
        raise fail(f"no graded submission of {assignment!r} in this data directory", EXIT_FAILED)
    if as_json:
        typer.echo(json.dumps(view.model_dump(mode="json"), indent=2))
    else:
        _print(Console(), view)


def _print(console: Console, view: CohortView) -> None:
    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False)

    say(f"{view.assignment} {view.version or ''}: {view.n} graded; mean {view.mean_percent}%, median {view.median_percent}%")
    peak = max((b.count for b in view.histogram), default=0) or 1
    for b in view.histogram:
        say(f"  {b.low:>3.0f}-{b.high:<3.0f}% {'#' * round(30 * b.count / peak):<30} {b.count}")
    table = Table("category", "mean", "all passed", title="categories")
    for c in view.categories:
        table.add_row(c.id, f"{c.mean_percent:g}%", f"{c.pass_rate:g}%")
    console.print(table)
    if view.hardest:
        table = Table("test", "category", "not passed", title="hardest tests")
        for t in view.hardest:
            table.add_row(t.id, t.category, f"{t.failed}/{t.n} ({t.failure_rate:g}%)")
        console.print(table)
    say(f"similar pairs (score >= {view.threshold:g}): {len(view.pairs)}")
    for p in view.pairs:
        label = "same candidate" if p.same_candidate else "review before deciding"
        say(f"  {p.a}  {p.b}  {p.score:.2f}  {label}")
