"""The pytest plugin hidden suites run under.

It gives tests `client`, `make_client` and `app_control`, and writes each test's result to a JSON
lines file the moment the test ends, so a hang or a kill later in the suite keeps what came before.
The category of a test is its module's name without `test_` (tests/test_auth.py -> `auth`).
"""

from __future__ import annotations

import json
import os
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from grader.assignments.model import category_of_file
from grader.errors import InfraError
from grader.models import Exchange, SuiteSession, TestOutcome, TestResult
from harness.client import SandboxClient
from harness.control import AppControl

_MESSAGE_LIMIT = 2000


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("grader")
    group.addoption("--grader-session", help="JSON file describing the pod (written by the grader).")
    group.addoption("--grader-results", help="JSON lines file the results are appended to.")


class _Recorder:
    """Collects the phases of each test and writes one line per finished test."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._meta: dict[str, tuple[str, str]] = {}
        self._phases: dict[str, dict[str, pytest.TestReport]] = {}
        self.history: dict[str, deque[Exchange]] = {}

    def _write(self, record: dict[str, Any]) -> None:
        with open(self._path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        tests = []
        for item in items:
            category = category_of(item)
            doc = (getattr(item, "function", None).__doc__ or "").strip() if hasattr(item, "function") else ""
            title = doc.splitlines()[0] if doc else item.name.replace("_", " ")
            self._meta[item.nodeid] = (category, title)
            tests.append({"id": item.nodeid, "title": title, "category": category})
        self._write({"type": "collected", "tests": tests})

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        """A failure of the grader's machinery inside a test is ours, not the candidate's: flag it."""
        if call.excinfo is not None and call.excinfo.errisinstance(InfraError):
            self._write({"type": "infra", "test": item.nodeid, "message": str(call.excinfo.value)[:_MESSAGE_LIMIT]})
        return (yield)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._phases.setdefault(report.nodeid, {})[report.when] = report
        if report.when == "teardown":
            self._write({"type": "result", **self._result(report.nodeid).model_dump(mode="json")})

    def _result(self, nodeid: str) -> TestResult:
        phases = self._phases.pop(nodeid)
        category, title = self._meta.get(nodeid, ("unknown", nodeid))
        outcome, message = TestOutcome.passed, ""
        for when in ("setup", "call", "teardown"):
            report = phases.get(when)
            if report is None or report.passed:
                continue
            if report.skipped:
                outcome, message = TestOutcome.skipped, _message(report)
                break
            outcome = TestOutcome.failed if when == "call" else TestOutcome.error
            message = _message(report) if when == "call" else f"{when} failed: {_message(report)}"
            break
        exchanges = list(self.history.pop(nodeid, ())) if outcome.lost else []
        self.history.pop(nodeid, None)
        duration = sum(r.duration for r in phases.values())
        return TestResult(
            id=nodeid, title=title, category=category, outcome=outcome, message=message,
            duration_s=round(duration, 3), exchanges=exchanges,
        )


def _message(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        text = str(crash.message)
    elif isinstance(longrepr, tuple) and len(longrepr) == 3:
        text = str(longrepr[2])
    else:
        text = str(longrepr)
    return text if len(text) <= _MESSAGE_LIMIT else text[:_MESSAGE_LIMIT] + "…"


def pytest_configure(config: pytest.Config) -> None:
    results = config.getoption("--grader-results")
    if results:
        config.pluginmanager.register(_Recorder(Path(results)), "grader-recorder")


@pytest.fixture(scope="session")
def suite_session(pytestconfig: pytest.Config) -> SuiteSession:
    path = pytestconfig.getoption("--grader-session")
    if not path:
        pytest.exit("the hidden suite runs only under the grader (--grader-session is missing)", returncode=4)
    return SuiteSession.model_validate_json(Path(path).read_text())


@pytest.fixture(scope="session")
def _app_control(suite_session: SuiteSession) -> AppControl:
    return AppControl(suite_session)


def _history(request: pytest.FixtureRequest) -> deque[Exchange]:
    recorder = request.config.pluginmanager.get_plugin("grader-recorder")
    store: dict[str, deque[Exchange]] = recorder.history if recorder is not None else {}
    return store.setdefault(request.node.nodeid, deque(maxlen=6))


def category_of(item: pytest.Item) -> str:
    return category_of_file(Path(str(item.fspath)))


@pytest.fixture(autouse=True)
def _serve_for_category(request: pytest.FixtureRequest) -> None:
    """Each category's tests get the app served its own way (one worker, four...); see AppControl.use_category."""
    if "_app_control" in request.fixturenames:
        request.getfixturevalue("_app_control").use_category(category_of(request.node))


@pytest.fixture
def client(request: pytest.FixtureRequest, _app_control: AppControl) -> SandboxClient:
    """A fresh user agent (empty cookies) talking to a serving, migrated app over the pod's socket."""
    _app_control.ensure_serving()
    return _user_agent(request, _app_control)


@pytest.fixture
def bare_client(request: pytest.FixtureRequest, _app_control: AppControl) -> SandboxClient:
    """A fresh user agent for the app as the test sets it up itself: no restore to a migrated, serving app."""
    return _user_agent(request, _app_control)


def _user_agent(request: pytest.FixtureRequest, control: AppControl) -> SandboxClient:
    return SandboxClient(control.pod.socket_path, control.request_timeout_s, _history(request))


@pytest.fixture
def make_client(client: SandboxClient) -> Any:
    """A factory of further independent user agents, for tests with several users."""
    return client.fresh


@pytest.fixture
def app_control(_app_control: AppControl) -> AppControl:
    """Control of the app as the previous test left it; tests that need a state set it up themselves."""
    return _app_control
