"""The check matrix an administrator reads: solution by category, then each surprise by test id."""

from __future__ import annotations

from rich.table import Table

from grader.assignments.check import CheckResult
from grader.assignments.model import Assignment


def render_matrix(assignment: Assignment, result: CheckResult) -> Table:
    table = Table(title=f"{assignment.id}: hidden suite against its solutions")
    table.add_column("solution")
    table.add_column("flaw in")
    for category in assignment.categories:
        table.add_column(category.id, justify="right")
    table.add_column("total", justify="right")
    table.add_column("verdict")
    table.add_column("time", justify="right")
    for check in result.solutions:
        if check.patch_failed:
            cells = ["[red]patch failed[/red]"] * len(assignment.categories) + ["—"]
        elif check.status.value != "graded":
            cells = [check.status.value] * len(assignment.categories) + ["—"]
        else:
            cells = [
                _cell(*check.scores.get(c.id, (0.0, c.weight)), flawed=c.id == check.expectation.category)
                for c in assignment.categories
            ]
            cells.append(f"{sum(s for s, _ in check.scores.values()):g}")
        verdict = "[green]as expected[/green]" if check.ok else "[red]MISMATCH[/red]"
        seconds = f"{check.seconds:.0f} s" if check.seconds else "—"
        table.add_row(check.name, check.expectation.category or "—", *cells, verdict, seconds)
    return table


def _cell(score: float, maximum: float, flawed: bool) -> str:
    text = f"{score:g}/{maximum:g}"
    if score < maximum and not flawed:
        return f"[red]{text}[/red]"
    return f"[yellow]{text}[/yellow]" if score < maximum else text


def surprises(result: CheckResult) -> list[str]:
    lines = []
    for check in result.solutions:
        if check.patch_failed:
            lines.append(f"{check.name}: not graded: {check.reason}")
        elif check.status.value != "graded":
            lines.append(f"{check.name}: ended {check.status.value}: {check.reason}")
        for test_id in check.unexpected_failures:
            lines.append(f"{check.name}: {test_id} failed but expected.toml does not name it")
        for test_id in check.undetected:
            lines.append(f"{check.name}: {test_id} passed but expected.toml says it must fail")
        if check.undercharged:
            lines.append(f"{check.name}: {check.undercharged}")
    return lines
