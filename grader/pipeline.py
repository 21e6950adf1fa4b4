"""The stages strung together: intake -> preflight -> build -> boot -> suite -> score -> report, with the
code review and the candidate's own tests beside them (grader/stages/beside.py), and the summary and the
follow-up questions made from it all. None of what runs beside changes a point.

`grade_submission` returns the report and writes nothing: its callers (`grader grade`, the queue's job,
`assignments check`, the bench) decide where it goes. It never raises for the candidate's faults, nor for
ours: any failure of the machinery ends, through `infra_report`, as an `infra_error` report that says
what happened. Every Docker resource of the job is removed in a `finally`.
"""

from __future__ import annotations

import logging
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from grader.assignments.model import Assignment, AssignmentError, load_assignment
from grader.assignments.questions import choose_follow_ups, load_bank
from grader.cohort.files import keep_snapshot
from grader.errors import GraderError, InfraError
from grader.models import GradeReport, Provenance, Snapshot, SourceInfo, Stage, Status, SubmissionRequest, Timings
from grader.sandbox import Sandbox
from grader.sandbox.docker import DockerSandbox
from grader.sandbox.limits import pod_limits
from grader.settings import Settings
from grader.stages import build, intake, preflight, score, suite
from grader.stages.beside import BesideWork
from grader.stages.boot import boot_app
from grader.stages.report import build_report, infra_report
from grader.stages.requirements import read_dependencies
from grader.stages.summary import summarize

ProgressCallback = Callable[[Stage], None]
log = logging.getLogger(__name__)


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
    sandbox: Sandbox | None = None,
    keep_code: Path | None = None,
) -> GradeReport:
    """Grade one submission and return its report (written by the caller).

    With `keep_code`, a graded snapshot's code is copied there before the clean-up, for the cohort's comparisons
    (grader/cohort/place.py); the callers that build a cohort pass it, `assignments check` and the bench do not.
    """
    notify = on_stage or (lambda stage: None)
    timings = Timings()
    started = time.monotonic()
    assignment: Assignment | None = None
    source = SourceInfo(url=request.source, ref=request.ref)
    provenance: dict[str, object] = {"host": socket.gethostname()}
    logs: dict[str, str] = {}
    categories = None
    limits: list[str] = []
    warnings: list[str] = []
    status, reason = Status.graded, ""
    beside = BesideWork(settings)
    snapshot: Snapshot | None = None
    try:
        assignment = load_assignment(settings.paths.assignments_dir, request.assignment)
        provenance["assignment_version"] = assignment.version
        provenance["pod_limits"] = pod_limits(
            settings, services=bool(assignment.run.services), worker=assignment.run.worker is not None,
        )
        notify(Stage.intake)
        with _timed(timings, "intake_s"):
            snapshot = intake.fetch_snapshot(request, settings)
        source = SourceInfo(url=snapshot.url, ref=snapshot.ref, commit=snapshot.commit)
        provenance.update(commit=snapshot.commit, requirements_sha256=snapshot.requirements_sha256)
        with _timed(timings, "preflight_s"):  # the brief's layout, on the host: a refusal costs no build
            warnings = preflight.check_layout(snapshot, assignment).warnings
        beside.start_review(snapshot.path)
        sandbox = sandbox or DockerSandbox.connect(settings)
        notify(Stage.build)
        with _timed(timings, "build_s"):
            dependencies = read_dependencies(snapshot)  # the policy, on the host, before any container
            provenance.update(dependencies.provenance())
            image = build.build_image(snapshot, settings, sandbox, dependencies)
        provenance.update(
            image_id=image.image_id, deps_cached=image.deps_cached, base_image_id=image.base_image_id,
            base_image_digest=image.base_image_digest,
        )
        beside.start_candidate_tests(image, assignment, sandbox, snapshot.path)
        notify(Stage.boot)
        with _timed(timings, "boot_s"):
            pod = boot_app(image, assignment, settings, sandbox, source=snapshot.path)
        notify(Stage.suite)
        with _timed(timings, "tests_s"):
            outcomes = suite.run_suite(pod, assignment, settings, sandbox)
        timings.lanes_boot_s, timings.reruns_s = outcomes.lane_boot_s, outcomes.rerun_s
        timings.services_ready_s, timings.worker_ready_s = pod.services_ready_s, outcomes.worker_ready_s
        timings.lanes_s = outcomes.lanes_s
        first_lane = assignment.lanes()[0][0].lane
        timings.lane_boots_s = {first_lane: timings.boot_s, **outcomes.lane_boots_s}
        timings.boot_s = round(timings.boot_s + outcomes.lane_boot_s, 3)
        logs["app output"] = outcomes.app_log_tail
        if outcomes.worker_log_tail:
            logs["worker output"] = outcomes.worker_log_tail
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
    except Exception as exc:  # a bug of ours, never the candidate's: still a report
        log.exception("grading %s failed", request.id)
        status, reason = Status.infra_error, f"the grader failed: {type(exc).__name__}: {exc}"
    finally:
        with _timed(timings, "wait_s"):
            review, candidate_tests = beside.results()  # before the cleanup removes their container and tree
        if keep_code is not None and snapshot is not None and status is Status.graded:
            _keep(snapshot.path, keep_code, logs)
        _clean_up(request.id, settings, sandbox, logs)
    timings.review_s = review.duration_s if review else 0.0
    timings.candidate_tests_s = candidate_tests.duration_s if candidate_tests else 0.0
    notify(Stage.report)
    if status is Status.infra_error:
        report = infra_report(request, assignment, reason, source=source, provenance=provenance, logs=logs)
    else:
        with _timed(timings, "report_s"):
            report = build_report(
                request, assignment, status=status, reason=reason, source=source,
                categories=categories if status is Status.graded else None,
                provenance=Provenance(**provenance), logs=logs,  # type: ignore[arg-type]
            ).model_copy(update={"review": review, "candidate_tests": candidate_tests})
            if status is Status.graded and assignment is not None:
                report = report.model_copy(update=_judgement(report, assignment, limits))
    timings.total_s = round(time.monotonic() - started, 3)
    return report.model_copy(update={"timings": timings, "limits_hit": limits, "warnings": warnings})


def _judgement(report: GradeReport, assignment: Assignment, limits: list[str]) -> dict[str, object]:
    """The summary and the follow-up questions of a graded report; a broken question bank costs only the questions."""
    summary = summarize(report.categories, assignment, limits_hit=limits, stopped_reason=report.reason, review=report.review)
    try:
        bank = load_bank(assignment)
    except AssignmentError as exc:
        log.warning("no follow-up questions: %s", exc)
        bank = None
    return {"summary": summary, "follow_ups": choose_follow_ups(bank, report.categories, report.review, report.candidate_tests)}


def _keep(tree: Path, dest: Path, logs: dict[str, str]) -> None:
    """The graded code kept for the cohort; a failure costs only the comparisons, and is noted."""
    try:
        keep_snapshot(tree, dest)
    except OSError as exc:
        log.warning("code of %s not kept: %s", dest.name, exc)
        logs["cohort"] = f"the code was not kept for comparison: {exc}"


def _clean_up(submission_id: str, settings: Settings, sandbox: Sandbox | None, logs: dict[str, str]) -> None:
    """Remove the job's containers, volumes and image, and its folders; a failure is noted for the reaper."""
    if sandbox is not None:
        try:
            sandbox.remove_submission(submission_id)
        except InfraError as exc:  # the engine went away; `grader reap` or the watchdog removes the rest
            logs["cleanup"] = f"cleanup failed, left for the reaper: {exc.reason}"
    shutil.rmtree(settings.paths.work_dir / submission_id, ignore_errors=True)
    shutil.rmtree(settings.paths.sockets_dir / submission_id, ignore_errors=True)
