"""The stages strung together: intake -> build -> pod -> harness -> score -> report."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import docker

from grader.assignments.model import Assignment, AssignmentError, load_assignment
from grader.errors import GraderError
from grader.models import GradeReport, Provenance, SourceInfo, Stage, Status, SubmissionRequest, Timings
from grader.sandbox import pod
from grader.sandbox.docker import connect, remove_job_resources
from grader.settings import Settings
from grader.stages import build, intake, score
from grader.stages import suite as harness
from grader.stages.report import build_report, write_report

ProgressCallback = Callable[[Stage], None]


def new_submission_id() -> str:
    return f"s-{uuid.uuid4().hex[:12]}"


@contextmanager
def _timed(timings: Timings, field: str) -> Iterator[None]:
    start = time.monotonic()
    try:
        yield
    finally:
        setattr(timings, field, round(getattr(timings, field) + time.monotonic() - start, 3))


def grade_submission(
    request: SubmissionRequest,
    settings: Settings,
    on_stage: ProgressCallback | None = None,
    client: docker.DockerClient | None = None,
) -> GradeReport:
    """Grade one submission and write its report; never raises for the candidate's faults."""
    notify = on_stage or (lambda stage: None)
    timings = Timings()
    started = time.monotonic()
    assignment: Assignment | None = None
    source = SourceInfo(url=request.source, ref=request.ref)
    provenance: dict[str, object] = {}
    logs: dict[str, str] = {}
    categories = None
    limits: list[str] = []
    status, reason = Status.graded, ""
    try:
        assignment = load_assignment(settings.paths.assignments_dir, request.assignment)
        provenance["assignment_version"] = assignment.version
        notify(Stage.intake)
        with _timed(timings, "intake_s"):
            snapshot = intake.fetch_snapshot(request, settings)
        client = client or connect(settings)
        source = SourceInfo(url=snapshot.url, ref=snapshot.ref, commit=snapshot.commit)
        provenance.update(commit=snapshot.commit, requirements_sha256=snapshot.requirements_sha256)
        notify(Stage.build)
        with _timed(timings, "build_s"):
            image = build.build_image(snapshot, settings, client)
        provenance.update(image_id=image.image_id, deps_cached=image.deps_cached)
        notify(Stage.boot)
        with _timed(timings, "boot_s"):
            running = pod.start_pod(image, assignment, settings, client)
        notify(Stage.suite)
        with _timed(timings, "tests_s"):
            outcomes = harness.run_suite(running, assignment, settings, client)
        logs["app output"] = outcomes.app_log_tail
        limits += outcomes.limits_hit
        if outcomes.stopped_reason:
            reason = outcomes.stopped_reason
        categories = score.score_outcomes(outcomes, assignment)
    except AssignmentError as exc:
        status, reason = Status.infra_error, str(exc)
    except GraderError as exc:
        status, reason = Status(exc.status), exc.reason
        if exc.limit:
            limits.append(exc.limit)
        if exc.log_tail:
            logs["build output" if status is Status.build_failed else "output"] = exc.log_tail
    finally:
        if client is not None:
            try:
                remove_job_resources(client, request.id)
            except Exception as exc:  # cleanup must not hide the grade; the reaper retries
                logs["cleanup"] = f"cleanup failed, left for the reaper: {exc}"
        shutil.rmtree(settings.paths.work_dir / request.id, ignore_errors=True)
        shutil.rmtree(settings.paths.sockets_dir / request.id, ignore_errors=True)
    notify(Stage.report)
    with _timed(timings, "report_s"):
        report = build_report(
            request, assignment, status=status, reason=reason, source=source,
            categories=categories if status is Status.graded else None,
            timings=timings, provenance=Provenance(**provenance), logs=logs,  # type: ignore[arg-type]
        )
        timings.total_s = round(time.monotonic() - started, 3)
        report = report.model_copy(update={"timings": timings, "limits_hit": limits})
        write_report(report, settings.paths.reports_dir)
    return report

