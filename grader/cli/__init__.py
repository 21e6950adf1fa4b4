"""The `grader` command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console

from grader.assignments.check import check_assignment, validate_assignment
from grader.assignments.matrix import render_matrix, surprises
from grader.assignments.model import AssignmentError, load_assignment
from grader.cli import queue as cli_queue
from grader.cli import serve as web_cli
from grader.errors import InfraError
from grader.models import Stage, Status, SubmissionRequest
from grader.pipeline import grade_submission, new_submission_id
from grader.sandbox.docker import connect
from grader.sandbox.images import build_images
from grader.sandbox.reaper import reap as reap_jobs
from grader.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Grade Flask take-home submissions.")
images_app = typer.Typer(no_args_is_help=True, help="The local container images.")
app.add_typer(images_app, name="images")
assignments_app = typer.Typer(no_args_is_help=True, help="Assignments: validate folders, prove their suites.")
app.add_typer(assignments_app, name="assignments")

EXIT_REJECTED = 2
EXIT_INFRA = 3
_STAGE_LABELS = {
    Stage.intake: "fetching the repository",
    Stage.build: "building the image",
    Stage.boot: "booting the app",
    Stage.suite: "running the hidden tests",
    Stage.report: "writing the report",
}


def _settings(**overrides: object) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]


@images_app.command("build")
def images_build(force: bool = typer.Option(False, help="Rebuild even when nothing changed.")) -> None:
    """Build the base image (mmdebstrap + docker import) and the harness image; skipped when up to date."""
    console = Console(stderr=True)
    settings = _settings()
    try:
        client = connect(settings)
        with console.status("building images (the first base build takes about half a minute)"):
            statuses = build_images(client, settings, force=force)
    except InfraError as exc:
        console.print(f"[red]error:[/red] {exc.reason}")
        raise typer.Exit(EXIT_INFRA) from None
    for status in statuses:
        console.print(f"{status.name}: {'built' if status.built else 'up to date'} ({status.image_id[:19]})")


@app.command()
def grade(
    source: str = typer.Argument(..., help="Repository URL (https://, ssh://, git@) or a local path."),
    assignment: str = typer.Option(..., "--assignment", "-a", help="Assignment id, e.g. flask-notes."),
    ref: str | None = typer.Option(None, help="Branch, tag or commit to grade."),
    out: Path | None = typer.Option(None, help="Directory for reports (default: reports/)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report JSON on stdout."),
) -> None:
    """Grade one submission in-process, without a queue, and write its report."""
    console = Console(stderr=True)
    settings = _settings(reports_dir=out)
    try:
        load_assignment(settings.paths.assignments_dir, assignment)
    except AssignmentError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_INFRA) from None
    request = SubmissionRequest(id=new_submission_id(), source=source, ref=ref, assignment=assignment)
    with console.status("starting") as status:
        report = grade_submission(
            request, settings, on_stage=lambda stage: status.update(_STAGE_LABELS[stage])
        )
    folder = settings.paths.reports_dir / report.id
    if as_json:
        typer.echo(json.dumps(report.model_dump(mode="json"), indent=2))
    else:
        _print_summary(console, report, folder)
    if report.status is Status.rejected:
        raise typer.Exit(EXIT_REJECTED)
    if report.status is Status.infra_error:
        raise typer.Exit(EXIT_INFRA)


def _print_summary(console: Console, report, folder: Path) -> None:  # type: ignore[no-untyped-def]
    if report.status is Status.graded:
        console.print(f"[bold]{report.assignment}[/bold] {report.id}: score {report.score:g} / {report.max_score:g}")
        for category in report.categories:
            passed = sum(t.outcome.value == "passed" for t in category.tests)
            console.print(
                f"  {category.id:<14} {category.score:>6g} / {category.max_score:g}   {passed}/{len(category.tests)} tests"
            )
    else:
        console.print(f"[bold]{report.assignment}[/bold] {report.id}: [red]{report.status.value}[/red]")
        console.print(f"  reason: {report.reason}")
    if report.limits_hit:
        console.print(f"  limits hit: {', '.join(report.limits_hit)}")
    timings = report.timings
    console.print(
        f"  timings: intake {timings.intake_s:.1f}s, build {timings.build_s:.1f}s, boot {timings.boot_s:.1f}s, "
        f"tests {timings.tests_s:.1f}s, total {timings.total_s:.1f}s"
    )
    console.print(f"  report: {folder / 'report.json'}  {folder / 'report.html'}")


@app.command()
def reap() -> None:
    """Remove containers, volumes and images of jobs that no live grading process owns."""
    console = Console(stderr=True)
    settings = _settings()
    try:
        removed = reap_jobs(connect(settings))
    except InfraError as exc:
        console.print(f"[red]error:[/red] {exc.reason}")
        raise typer.Exit(EXIT_INFRA) from None
    for job_id, resources in removed.items():
        console.print(f"{job_id}: removed {', '.join(resources)}")
    console.print(f"reaped {len(removed)} abandoned jobs")


@assignments_app.command("validate")
def assignments_validate(path: Path = typer.Argument(..., help="An assignment folder.")) -> None:
    """Check an assignment folder without grading: its toml, weights, tests per category, brief, solutions."""
    console = Console(stderr=True)
    problems = validate_assignment(path)
    for problem in problems:
        console.print(f"[red]error:[/red] {problem}", soft_wrap=True)
    if problems:
        raise typer.Exit(1)
    console.print(f"{path}: valid")


@assignments_app.command("check")
def assignments_check(
    assignment_id: str = typer.Argument(..., help="Assignment id, e.g. flask-notes."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Solutions graded at once."),
    only: str = typer.Option("", "--only", help="Comma-separated solution names; all when empty."),
) -> None:
    """Grade every solution, compare with its expected.toml, print the matrix; exit 1 on any mismatch."""
    console = Console(width=None if sys.stdout.isatty() else 140)
    settings = _settings()
    try:
        assignment = load_assignment(settings.paths.assignments_dir, assignment_id)
    except AssignmentError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_INFRA) from None
    problems = validate_assignment(assignment.folder)
    if problems:
        for problem in problems:
            Console(stderr=True).print(f"[red]error:[/red] {problem}", soft_wrap=True)
        raise typer.Exit(1)
    try:
        with console.status("grading solutions") as status:
            result = check_assignment(
                assignment, settings, jobs=jobs, only=[name for name in only.split(",") if name],
                on_solution=lambda c: status.update(f"graded {c.name}: {'ok' if c.ok else 'MISMATCH'}"),
            )
    except AssignmentError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_INFRA) from None
    console.print(render_matrix(assignment, result))
    for line in surprises(result):
        console.print(line, soft_wrap=True)
    console.print(f"{assignment.id}: {len(result.solutions)} solutions checked in {result.seconds:.0f} s: "
                  + ("[green]all as expected[/green]" if result.ok else "[red]mismatch[/red]"))
    if not result.ok:
        raise typer.Exit(1)


cli_queue.register(app)  # submit, status, worker, regrade
web_cli.register(app)  # serve, users create


def main() -> None:
    app()
