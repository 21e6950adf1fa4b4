"""`grader grade`: one submission graded in this process, without the queue; its report written."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from grader.assignments.model import AssignmentError, load_assignment
from grader.cli.helpers import EXIT_INFRA, EXIT_REJECTED, fail, load_settings
from grader.cohort.place import place_graded
from grader.db.engine import open_database
from grader.models import GradeReport, Status, SubmissionRequest
from grader.pipeline import grade_submission, new_submission_id
from grader.settings import Settings
from grader.stages.report import put_report_files, report_files
from grader.storage import Storage, open_storage, report_folder
from grader.storage.local import LocalStorage


def grade(
    source: str = typer.Argument(..., help="Repository URL (https://, ssh://, git@) or a local path."),
    assignment: str = typer.Option(..., "--assignment", "-a", help="Assignment id, e.g. flask-notes."),
    ref: str | None = typer.Option(None, help="Branch, tag or commit to grade."),
    out: Path | None = typer.Option(None, help="Directory for reports (default: reports/)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report JSON on stdout."),
) -> None:
    """Grade one submission in-process, without a queue, and write its report."""
    console = Console(stderr=True)
    settings = load_settings(reports_dir=out)
    storage = open_storage(settings)
    try:
        load_assignment(settings.paths.assignments_dir, assignment)
    except AssignmentError as exc:
        raise fail(str(exc), EXIT_INFRA) from None
    request = SubmissionRequest(id=new_submission_id(), source=source, ref=ref, assignment=assignment)
    with console.status("starting") as status:
        report = grade_submission(
            request, settings, on_stage=lambda stage: status.update(stage.description),
            keep_code=settings.paths.keeping_dir / request.id,
        )
        status.update("placing in the cohort")
        report = _placed(report, settings, console, storage)
    files = report_files(report, pdf=settings.report.pdf)
    folder = settings.paths.reports_dir / report.id  # the user's folder on this disk, whatever the storage
    put_report_files(files, LocalStorage(settings.paths.reports_dir), report.id)
    if settings.storage.backend != "local":  # and where the web app and the API read reports
        put_report_files(files, storage, report_folder(report.id))
    if as_json:
        typer.echo(json.dumps(report.model_dump(mode="json"), indent=2))
    else:
        _print_summary(console, report, folder)
    if report.status is Status.rejected:
        raise typer.Exit(EXIT_REJECTED)
    if report.status is Status.infra_error:
        raise typer.Exit(EXIT_INFRA)


def _placed(report: GradeReport, settings: Settings, console: Console, storage: Storage) -> GradeReport:
    """The report placed in its cohort (the grades in this data directory's database); without it if the database fails."""
    if report.status is not Status.graded:
        return report
    try:
        engine = open_database(settings)
    except Exception as exc:  # the database or its migration: the grade is written all the same
        console.print(f"  not placed in the cohort: the database is not usable: {exc}", markup=False)
        return report
    return place_graded(report, settings, engine, storage, report_path=f"{report_folder(report.id)}/report.json")


def _print_summary(console: Console, report: GradeReport, folder: Path) -> None:
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
    for warning in report.warnings:
        console.print(f"  warning: {warning}", markup=False, highlight=False)
    _print_judgement(console, report)
    _print_cohort(console, report)
    if report.limits_hit:
        console.print(f"  limits hit: {', '.join(report.limits_hit)}")
    timings = report.timings
    console.print(
        f"  timings: intake {timings.intake_s:.1f}s, build {timings.build_s:.1f}s, boot {timings.boot_s:.1f}s, "
        f"tests {timings.tests_s:.1f}s, total {timings.total_s:.1f}s; beside: review {timings.review_s:.1f}s, "
        f"own tests {timings.candidate_tests_s:.1f}s, waited {timings.wait_s:.1f}s for them"
    )
    console.print(f"  report: {folder / 'report.json'}  {folder / 'report.html'}")


def _print_cohort(console: Console, report: GradeReport) -> None:
    if report.cohort is not None:
        percentile = f", percentile {report.cohort.percentile:g}" if report.cohort.percentile is not None else ""
        console.print(f"  cohort: rank {report.cohort.rank} of {report.cohort.n}{percentile}", highlight=False)
    for match in report.similar:
        label = " (same candidate)" if match.same_candidate else ": review before deciding" if match.flagged else ""
        console.print(f"  similar to {match.submission}: {match.score:.2f}{label}", markup=False, highlight=False)


def _print_judgement(console: Console, report: GradeReport) -> None:
    """The verdict, the lost points, and one line each for the review, the candidate's tests and the questions."""
    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False)

    if report.summary is not None:
        say(f"  verdict: {report.summary.verdict}")
        for row in report.summary.lost[:8]:
            flag = ", intermittent" if row.intermittent else ""
            say(f"    -{row.points:g} {row.category}: {row.title} [{row.severity.value}{flag}]")
        if len(report.summary.lost) > 8:
            say(f"    ... and {len(report.summary.lost) - 8} more in the report")
    if report.review is not None:
        security = sum(f.severity.value == "security" for f in report.review.findings)
        say(f"  review: {len(report.review.findings)} findings, {security} security (not scored) {report.review.error}".rstrip())
    tests = report.candidate_tests
    if tests is not None:
        coverage = f", coverage {tests.coverage_percent:g} %" if tests.coverage_percent is not None else ""
        counts = f"{tests.passed} passed, {tests.failed} failed, {tests.errors} errors{coverage}" if tests.ran else ""
        say(f"  own tests: {'; '.join(part for part in (counts, tests.note) if part)}")
    if report.follow_ups:
        say(f"  follow-up questions: {len(report.follow_ups)} (in the report)")
