"""`grader assignments validate` and `check`: an assignment folder checked, its suite proved on its solutions."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from grader.assignments.check import check_assignment, validate_assignment
from grader.assignments.matrix import render_matrix, surprises
from grader.assignments.model import AssignmentError, load_assignment
from grader.cli.helpers import EXIT_FAILED, EXIT_INFRA, fail, load_settings, print_error

app = typer.Typer(no_args_is_help=True, help="Assignments: validate folders, prove their suites.")


@app.command("validate")
def assignments_validate(path: Path = typer.Argument(..., help="An assignment folder.")) -> None:
    """Check an assignment folder without grading: its toml, weights, tests per category, brief, solutions."""
    problems = validate_assignment(path)
    for problem in problems:
        print_error(problem)
    if problems:
        raise typer.Exit(EXIT_FAILED)
    Console(stderr=True).print(f"{path}: valid")


@app.command("check")
def assignments_check(
    assignment_id: str = typer.Argument(..., help="Assignment id, e.g. flask-notes."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Solutions graded at once."),
    only: str = typer.Option("", "--only", help="Comma-separated solution names; all when empty."),
) -> None:
    """Grade every solution, compare with its expected.toml, print the matrix; exit 1 on any mismatch."""
    console = Console(width=None if sys.stdout.isatty() else 140)
    settings = load_settings()
    try:
        assignment = load_assignment(settings.paths.assignments_dir, assignment_id)
    except AssignmentError as exc:
        raise fail(str(exc), EXIT_INFRA) from None
    problems = validate_assignment(assignment.folder, apply_patches=False)  # a stale patch is a matrix row, not a stop
    if problems:
        for problem in problems:
            print_error(problem)
        raise typer.Exit(EXIT_FAILED)
    try:
        with console.status("grading solutions") as status:
            result = check_assignment(
                assignment, settings, jobs=jobs, only=[name for name in only.split(",") if name],
                on_solution=lambda c: status.update(f"graded {c.name}: {'ok' if c.ok else 'MISMATCH'}"),
            )
    except AssignmentError as exc:
        raise fail(str(exc), EXIT_INFRA) from None
    console.print(render_matrix(assignment, result))
    for line in surprises(result):
        console.print(line, soft_wrap=True)
    console.print(f"{assignment.id}: {len(result.solutions)} solutions checked in {result.seconds:.0f} s: "
                  + ("[green]all as expected[/green]" if result.ok else "[red]mismatch[/red]"))
    if not result.ok:
        raise typer.Exit(EXIT_FAILED)
