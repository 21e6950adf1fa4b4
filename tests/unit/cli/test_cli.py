"""The `grader` command's contract (exit codes, messages, options), without Docker, Redis or a network."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from grader.cli import app
from grader.cli import queue as cli_queue
from grader.cli.helpers import EXIT_FAILED, EXIT_INFRA, EXIT_REJECTED
from grader.db.engine import open_store
from grader.db.schema import submissions
from grader.db.store import SubmissionRecord
from grader.models import Stage, Status
from grader.queue.broker import BrokerUnavailable
from grader.settings import Settings

UNKNOWN_ID = "s-000000000000"
REDIS_DOWN = "Redis at redis://127.0.0.1:1/0 is not reachable: Connection refused; start it or unset REDIS_URL"


@pytest.fixture
def runner(short_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A CliRunner whose commands keep their database in a temporary directory and never reach Redis."""
    for name in ("REDIS_URL", "DATABASE_URL", "GRADER_REDIS_URL", "GRADER_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GRADER_DATA_DIR", str(short_tmp / "var"))
    monkeypatch.setenv("GRADER_REPORTS_DIR", str(short_tmp / "reports"))

    def no_redis(_settings: Settings) -> None:
        raise AssertionError("this command must not reach Redis")

    monkeypatch.setattr(cli_queue, "connect_redis", no_redis)
    return CliRunner()


def _records() -> int:
    with open_store(Settings()).engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(submissions)).scalar_one()


@pytest.mark.parametrize("args", [["status", UNKNOWN_ID], ["status", UNKNOWN_ID, "--json"]])
def test_status_of_an_unknown_id_exits_1(runner: CliRunner, args: list[str]) -> None:
    """`grader status` of an id nobody submitted says how to get one and exits 1, printing nothing on stdout."""
    result = runner.invoke(app, args)
    assert result.exit_code == EXIT_FAILED == 1
    assert result.stdout == ""
    assert f"error: no submission '{UNKNOWN_ID}'; `grader submit` prints the ids" in result.stderr


@pytest.mark.parametrize("source", ["htp:/bad url", "ftp://example.com/notes.git"])
def test_submit_of_a_malformed_url_exits_2_and_records_nothing(runner: CliRunner, source: str) -> None:
    """A source intake refuses is bad input: exit 2 with the reason, before Redis or the database is touched."""
    result = runner.invoke(app, ["submit", source, "--assignment", "flask-notes"])
    assert result.exit_code == EXIT_REJECTED == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert not (Settings().paths.data_dir / "grader.db").exists()


def test_submit_to_an_unknown_assignment_exits_2(runner: CliRunner) -> None:
    """An assignment that does not exist is bad input too, and the message names the known ones."""
    result = runner.invoke(app, ["submit", "https://github.com/me/notes.git", "--assignment", "no-such"])
    assert result.exit_code == EXIT_REJECTED
    assert "no assignment 'no-such'" in result.stderr and "flask-notes" in result.stderr


def test_submit_with_redis_down_exits_3_and_records_nothing(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis is pinged before anything is recorded: unreachable, submit prints the reason, exits 3, leaves no record."""

    def down(_settings: Settings) -> None:
        raise BrokerUnavailable(REDIS_DOWN)

    monkeypatch.setattr(cli_queue, "connect_redis", down)
    result = runner.invoke(app, ["submit", "https://github.com/me/notes.git", "--assignment", "flask-notes"])
    assert result.exit_code == EXIT_INFRA == 3
    assert result.stdout == ""
    assert f"error: {REDIS_DOWN}" in result.stderr
    assert _records() == 0


def test_submit_whose_enqueue_fails_keeps_the_record_queued(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis gone between the ping and the enqueue: the id is printed, the record says why, the exit is 3."""

    def lost(_submission_id: str, _job_id: str) -> None:
        raise ConnectionError("connection reset")

    monkeypatch.setattr(cli_queue, "connect_redis", lambda _settings: object())
    monkeypatch.setattr(cli_queue, "redis_enqueue", lambda _settings, _connection: lost)
    result = runner.invoke(app, ["submit", "https://github.com/me/notes.git", "--assignment", "flask-notes"])
    assert result.exit_code == EXIT_INFRA
    submission_id = result.stdout.strip()
    assert f"{submission_id} recorded but not enqueued (connection reset)" in result.stderr
    record = open_store(Settings()).get(submission_id)
    assert record is not None and record.status is Status.queued
    assert record.last_error and record.last_error.startswith("not enqueued: connection reset")


def test_regrade_of_an_unknown_id_exits_1(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing to regrade is exit 1, as an unknown status is."""
    monkeypatch.setattr(cli_queue, "connect_redis", lambda _settings: object())
    result = runner.invoke(app, ["regrade", UNKNOWN_ID])
    assert result.exit_code == EXIT_FAILED
    assert f"error: no submission '{UNKNOWN_ID}'" in result.stderr


def test_grade_of_a_rejected_source_writes_its_report_and_exits_2(runner: CliRunner, short_tmp: Path) -> None:
    """A source intake refuses is graded `rejected`: the report is written under --out, the exit is 2."""
    out = short_tmp / "out"
    result = runner.invoke(app, ["grade", str(short_tmp / "no-repo"), "--assignment", "flask-notes", "--out", str(out)])
    assert result.exit_code == EXIT_REJECTED
    assert ": rejected" in result.stderr and "reason: no repository at" in result.stderr
    (folder,) = out.iterdir()
    assert sorted(path.name for path in folder.iterdir()) == ["ctrf.json", "junit.xml", "report.html", "report.json", "report.pdf"]


def test_a_running_stage_reads_as_the_one_table_of_stage_labels() -> None:
    """`grader status` words a running stage with Stage.description (grader/models/report.py), the suite included."""
    now = datetime(2026, 1, 1)
    record = SubmissionRecord(
        id=UNKNOWN_ID, source="https://github.com/me/notes.git", ref=None, assignment="flask-notes", submitter=None,
        created_at=now, updated_at=now, status=Status.running, stage=Stage.suite, report_path=None, score=None,
        max_score=None, attempts=2, last_error=None, job_id=None, owner=None, lease_token=None, started_at=now,
        finished_at=None,
    )
    assert cli_queue.describe(record) == f"{UNKNOWN_ID}: running (running the hidden tests), attempt 2"


def test_status_shows_where_the_report_is(short_tmp: Path) -> None:
    """With the local storage a person gets the file on this disk; an old row's absolute path stays as it was;
    with S3 the key is all there is."""
    local = cli_queue.report_location(Settings(data_dir=short_tmp / "var", reports_dir=short_tmp / "reports"))
    assert local("reports/s-1/report.json") == str(short_tmp / "reports" / "s-1" / "report.json")
    assert local("/srv/old/report.json") == "/srv/old/report.json"
    s3 = Settings(data_dir=short_tmp / "var", storage={"backend": "s3", "s3_bucket": "reports"})
    assert cli_queue.report_location(s3)("reports/s-1/report.json") == "reports/s-1/report.json"


OPTIONS = {
    (): ["--help"],
    ("grade",): ["--assignment", "-a", "--ref", "--out", "--json"],
    ("reap",): ["--help"],
    ("images", "build"): ["--force", "--no-force"],
    ("assignments", "validate"): ["--help"],
    ("assignments", "check"): ["--jobs", "-j", "--only"],
    ("submit",): ["--assignment", "-a", "--ref", "--submitter"],
    ("status",): ["--json"],
    ("worker",): ["--burst", "--concurrency", "-c"],
    ("regrade",): ["--help"],
    ("serve",): ["--host", "--port", "--workers", "-w", "--web-workers"],
    ("users", "create"): ["--role", "--password"],
}


@pytest.mark.parametrize("command", list(OPTIONS), ids=lambda command: " ".join(command) or "grader")
def test_help_lists_the_options(command: tuple[str, ...]) -> None:
    """Every command's --help answers 0 and lists each of its options (scripts and the README use them)."""
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for option in OPTIONS[command]:
        assert option in result.stdout, (command, option)


def test_the_top_level_help_lists_every_command() -> None:
    """`grader --help` lists the commands and groups in their order of today."""
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    names = ["grade", "reap", "submit", "status", "worker", "regrade", "serve", "images", "assignments", "users"]
    lines = [line.strip("│ ").split(" ")[0] for line in result.stdout.splitlines()]
    assert [line for line in lines if line in names] == names


def test_an_unusable_database_exits_3_without_its_password(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """`users create` on a database that refuses connections: exit 3, one message, the URL's password hidden."""
    monkeypatch.setenv("GRADER_DATABASE_URL", "postgresql://grader:secretpw@127.0.0.1:1/grader")
    result = runner.invoke(app, ["users", "create", "ann@example.com", "--role", "admin", "--password", "long-enough-1"])
    assert result.exit_code == EXIT_INFRA, result.output
    assert "is not usable" in result.output and "secretpw" not in result.output and "Traceback" not in result.output


def test_users_token_prints_a_token_that_acts_as_the_account(runner: CliRunner, short_tmp: Path) -> None:
    """`users token` for a scripted deployment: the printed token authenticates as that account; an unknown one exits 2."""
    from grader.web.tokens import ApiTokens

    created = runner.invoke(app, ["users", "create", "ann@example.com", "--role", "admin", "--password", "long-enough-1"])
    assert created.exit_code == 0, created.output
    made = runner.invoke(app, ["users", "token", "ann@example.com", "--name", "ci"])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    engine = open_store(Settings(data_dir=short_tmp / "var")).engine
    user = ApiTokens(engine).user_by_token(token)
    assert user is not None and user.email == "ann@example.com"
    unknown = runner.invoke(app, ["users", "token", "bob@example.com"])
    assert unknown.exit_code == EXIT_REJECTED and "no staff account" in unknown.output
