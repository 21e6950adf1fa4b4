"""The whole pipeline on the fake sandbox: a real git clone, a real pytest process with the harness plugin,
HTTP through a real unix socket, no Docker and no Redis."""

from __future__ import annotations

import socket

import pytest

from grader.models import Status, SubmissionRequest
from grader.pipeline import grade_submission, new_submission_id
from grader.sandbox.fake import FakeSandbox
from grader.settings import Settings
from tests.tiny import write_tiny_assignment

FILES = {"requirements.txt": "gunicorn==23.0.0\n", "wsgi.py": "app = None\n"}


@pytest.fixture
def tiny(settings: Settings, short_tmp) -> Settings:  # type: ignore[no-untyped-def]
    return settings.replace(assignments_dir=write_tiny_assignment(short_tmp), boot_timeout_s=0.5)


def _grade(settings: Settings, sandbox: FakeSandbox, repo) -> object:  # type: ignore[no-untyped-def]
    request = SubmissionRequest(id=new_submission_id(), source=str(repo), assignment="tiny")
    return grade_submission(request, settings, sandbox=sandbox)


def _answers(bodies: dict[str, str]):  # type: ignore[no-untyped-def]
    return lambda method, path: (200, bodies.get(path, "not found"))


def test_a_submission_walks_every_stage_and_the_report_is_returned_not_written(tiny, git_repo):
    """intake -> build -> boot -> suite -> score -> report on the fake: 10/10, one lane booted, nothing left."""
    sandbox = FakeSandbox(http=_answers({"/": "hello", "/answer": "42", "/sleep": "0"}))
    report = _grade(tiny, sandbox, git_repo(files=FILES))
    assert report.status is Status.graded, report.reason
    assert (report.score, report.max_score) == (10, 10)
    assert [t.outcome.value for c in report.categories for t in c.tests] == ["passed", "passed"]
    assert report.provenance.commit and report.timings.tests_s > 0
    base = sandbox.images["grader-base:bookworm"]
    assert report.provenance.host == socket.gethostname() and report.provenance.base_image_id == base
    assert report.provenance.base_image_digest == sandbox.image_digest("grader-base:bookworm") != base
    assert report.timings.lane_boots_s == {"main": report.timings.boot_s}, "one lane: its boot is the whole boot"
    assert sandbox.containers == {} and sandbox.volumes == {}, "every container and volume of the job is removed"
    assert not (tiny.paths.reports_dir / report.id).exists(), "the pipeline writes nothing; its caller does"


def test_a_wrong_answer_costs_its_category_only(tiny, git_repo):
    sandbox = FakeSandbox(http=_answers({"/": "hello", "/answer": "41", "/sleep": "0"}))
    report = _grade(tiny, sandbox, git_repo(files=FILES))
    assert report.status is Status.graded and report.score == 5
    failed = [t for c in report.categories for t in c.tests if t.outcome.value != "passed"]
    assert [t.id.split("::")[1] for t in failed] == ["test_answer"] and "41" in failed[0].message


def test_a_graded_report_carries_its_judgement_beside_the_score(tiny, git_repo):
    """Summary with the lost test, its evidence and a curl line; the re-run for diagnosis; the review of the
    tree (a hard-coded secret); and the repository's lack of tests, said as such."""
    sandbox = FakeSandbox(http=_answers({"/": "hello", "/answer": "41", "/sleep": "0"}))
    files = {**FILES, "wsgi.py": 'from flask import Flask\napp = Flask(__name__)\napp.secret_key = "dev"\n'}
    report = _grade(tiny, sandbox, git_repo(files=files))
    assert report.score == 5, "nothing beside the score changes it"
    (row,) = report.summary.lost
    assert row.test.endswith("::test_answer") and row.points == 5 and "41" in row.evidence
    assert row.reproduce.startswith("curl -i -X GET http://127.0.0.1:8000/answer")
    assert report.categories[1].tests[0].rerun is not None and not row.intermittent  # re-run, failed again
    assert "Scored 5 of 10." in report.summary.verdict
    assert [f.rule for f in report.review.findings] == ["grader:hard-coded-secret", "grader:no-app-factory"]
    assert report.review.findings[0].file == "wsgi.py" and report.review.findings[0].line == 3
    assert not report.candidate_tests.ran and "no tests" in report.candidate_tests.note
    assert report.timings.review_s > 0


def test_an_app_that_never_boots_is_boot_failed_with_its_output(tiny, git_repo):
    sandbox = FakeSandbox(boot_fails=lambda spec: "Error: Could not import 'wsgi'.")
    report = _grade(tiny, sandbox, git_repo(files=FILES))
    assert report.status is Status.boot_failed and "exited with code 3" in report.reason
    assert "Could not import 'wsgi'" in report.logs["output"]


def test_the_engine_going_away_during_the_suite_is_an_infra_error_report_in_one_line(tiny, git_repo):
    """The engine stops answering while the hidden tests run: an infra_error report that says so, no traceback."""
    sandbox = FakeSandbox()

    def app(method: str, path: str) -> tuple[int, str]:
        sandbox.down()
        return 200, "hello"

    sandbox.http = app
    report = _grade(tiny, sandbox, git_repo(files=FILES))
    assert report.status is Status.infra_error and report.score == 0
    assert "the Docker engine failed or went away" in report.reason and "\n" not in report.reason
    assert "not the submission" in report.reason
    assert "left for the reaper" in report.logs["cleanup"]


def test_a_bug_of_ours_is_an_infra_error_report_too(tiny, git_repo, monkeypatch):
    """An unexpected exception in a stage ends as an infra_error report, never a raise."""
    from grader.stages import score

    def broken(*args: object) -> None:
        raise KeyError("oops")

    monkeypatch.setattr(score, "score_outcomes", broken)
    sandbox = FakeSandbox(http=_answers({"/": "hello", "/answer": "42", "/sleep": "0"}))
    report = _grade(tiny, sandbox, git_repo(files=FILES))
    assert report.status is Status.infra_error and "KeyError" in report.reason
    assert sandbox.containers == {}
