"""The candidate's own tests: found on the host, run in the sandbox with pytest and coverage, never scored.

Finding them is a bounded walk of the snapshot; nothing of it is imported. Running them is one container of
the submission image with the app's limits (no network, a read-only root, bounded memory, processes, CPU and
/tmp) whose first process runs the tests under coverage, stops them at the time budget, says it is done in
its own output (the candidate's goes to a file) and stays: a tmpfs does not outlive its container, so the
results are read back, capped, while it runs. What comes back is the candidate's: parsed strictly (the JUnit
XML with defusedxml, no DTD), capped, never assumed well formed.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from grader.assignments.model import Assignment
from grader.errors import InfraError
from grader.models import CandidateTests, SubmissionImage
from grader.owner import current_owner
from grader.sandbox import ContainerSpec, Sandbox
from grader.sandbox.pod import APP_USER, app_environment
from grader.settings import Settings

NO_TESTS = "the repository has no tests (no tests/ folder or test_*.py files)"
TEST_FOLDERS = ("tests", "test")
MAX_WALK_ENTRIES = 5000
MAX_WALK_DEPTH = 6
MAX_TEST_PATHS = 50
_SKIP = frozenset({
    ".git", ".hg", ".venv", "venv", "env", ".tox", ".nox", "node_modules", "__pycache__", "site-packages",
    "build", "dist", ".eggs", "migrations",
})
_NOT_CODE = frozenset({"setup.py", "conftest.py", "noxfile.py", "fabfile.py"})

RESULTS = "/tmp/grader-tests"  # in the /tmp tmpfs, the container's only writable place
JUNIT = f"{RESULTS}/junit.xml"
COVERAGE_JSON = f"{RESULTS}/coverage.json"
OUTPUT = f"{RESULTS}/output.txt"
DONE = "grader-tests: exit "
KILL_GRACE_S = 5  # after the budget's SIGINT (pytest then writes its JUnit XML), SIGKILL
REPORT_S = 20  # for `coverage json` after the tests
READ_TIMEOUT_S = 10
WAIT_SLACK_S = 5  # beyond the budget, the kill and the report: then the grader stops waiting
MAX_JUNIT_BYTES = 2 * 1024 * 1024
MAX_COVERAGE_BYTES = 4 * 1024 * 1024
MAX_FAILING = 20
MAX_ID_CHARS = 300
_OMIT = "*/tests/*,*/test/*,*/test_*.py,*_test.py,*/conftest.py,*/migrations/*,*/setup.py"


@dataclass(frozen=True)
class FoundTests:
    """Where a repository's tests are and which of its code coverage measures, relative to its root."""

    paths: tuple[str, ...]  # given to pytest: test folders, packages holding tests, test modules at the root
    packages: tuple[str, ...]  # the candidate's top-level packages and modules, e.g. ("notes_app", "wsgi")


@dataclass
class _Walk:
    """One budget of directory entries for the whole search, so a huge or deep tree costs a bounded time."""

    left: int

    def entries(self, folder: Path) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(folder) as listing:
                found = list(itertools.islice(listing, max(self.left, 0)))
        except OSError:
            return []
        self.left -= len(found)
        return sorted(found, key=lambda entry: entry.name)

    def has_tests(self, folder: Path, depth: int = 0) -> bool:
        entries = self.entries(folder)
        if any(_is_test_file(entry) for entry in entries):
            return True
        return depth < MAX_WALK_DEPTH and any(
            self.has_tests(Path(entry.path), depth + 1) for entry in entries if _is_folder(entry)
        )


def _is_folder(entry: os.DirEntry[str]) -> bool:
    return entry.is_dir(follow_symlinks=False) and entry.name not in _SKIP and not entry.name.startswith(".")


def _is_test_file(entry: os.DirEntry[str]) -> bool:
    name = entry.name  # never `-x_test.py`: pytest would read it as an option
    test_name = name.startswith("test_") or (name.endswith("_test.py") and not name.startswith("-"))
    return test_name and name.endswith(".py") and entry.is_file(follow_symlinks=False)


def _is_package(entry: os.DirEntry[str]) -> bool:
    init = Path(entry.path) / "__init__.py"
    return entry.name.isidentifier() and init.is_file() and not init.is_symlink()


def find_tests(root: Path) -> FoundTests | None:
    """The repository's tests and its own code, from names alone (links are never followed); None without tests.

    Tests are `test_*.py` or `*_test.py` files in a top-level `tests/` or `test/` folder, in one of its
    packages, or at its root. Its code is each top-level package and module but tests, migrations and setup files.
    """
    walk = _Walk(MAX_WALK_ENTRIES)
    paths: list[str] = []
    packages: list[str] = []
    for entry in walk.entries(Path(os.path.realpath(root))):
        if entry.name in TEST_FOLDERS and _is_folder(entry):
            if walk.has_tests(Path(entry.path)):
                paths.append(entry.name)
        elif _is_folder(entry) and _is_package(entry):
            packages.append(entry.name)
            if walk.has_tests(Path(entry.path)):
                paths.append(entry.name)
        elif _is_test_file(entry):
            paths.append(entry.name)
        elif entry.name.endswith(".py") and entry.is_file(follow_symlinks=False) and entry.name not in _NOT_CODE:
            if entry.name[:-3].isidentifier():
                packages.append(entry.name[:-3])
    return FoundTests(tuple(paths[:MAX_TEST_PATHS]), tuple(packages)) if paths else None


# --- running them -------------------------------------------------------------------------------


def _coverage_rc(found: FoundTests) -> str:
    """Our coverage configuration, in place of the repository's: what is measured is ours to say."""
    return "\n".join([
        "[run]",
        f"source = {', '.join(found.packages) or '.'}",
        f"omit = {_OMIT}",
        f"data_file = {RESULTS}/.coverage",
        "disable_warnings = module-not-imported, no-data-collected",  # e.g. wsgi.py, which tests seldom import
    ])


def _script(found: FoundTests, budget: float) -> str:
    """The tests container's first process: the tests (under coverage when it is installed), then the marker."""
    stop = f"timeout -s INT -k {KILL_GRACE_S} {math.ceil(budget)}"
    rc = f"--rcfile={RESULTS}/coveragerc"
    pytest = ["-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfE", "--tb=short", "--continue-on-collection-errors",
              "-o", "junit_family=xunit1", f"--junitxml={JUNIT}", *found.paths]
    return "\n".join([
        f"mkdir -p {RESULTS} && cd /app || exit 97",
        f"printf '%s\\n' {shlex.quote(_coverage_rc(found))} > {RESULTS}/coveragerc",
        "{",
        "  if ! python -c 'import pytest' 2>/dev/null; then code=98",
        "  elif python -c 'import coverage' 2>/dev/null; then",
        f"    {stop} python -m coverage run {rc} {shlex.join(pytest)}; code=$?",
        f"    timeout -k 2 {REPORT_S} python -m coverage json {rc} -q -o {COVERAGE_JSON}",
        f"  else {stop} python {shlex.join(pytest)}; code=$?",
        "  fi",
        f"}} > {OUTPUT} 2>&1",
        f'echo "{DONE}$code"',
        "exec sleep 600",  # the container stays until the grader has read the results, then is removed
    ])


def _environment(assignment: Assignment) -> dict[str, str]:
    """The app's environment (the assignment's run.env included), on a throwaway database in the tmpfs."""
    database = f"{RESULTS}/app.db"
    return {"DATABASE_URL": f"sqlite:///{database}", **app_environment(assignment, database)}


def run_candidate_tests(
    image: SubmissionImage, assignment: Assignment, settings: Settings, sandbox: Sandbox, source: Path,
) -> CandidateTests:
    """Run the repository's own tests in the sandbox and say what they found; InfraError only for the engine's
    failures. A suite that hangs is stopped at `timeouts.candidate_tests_s`; one that cannot start is a result."""
    found = find_tests(source)
    if found is None:
        return CandidateTests(ran=False, note=NO_TESTS)
    budget = settings.timeouts.candidate_tests_s
    started = time.monotonic()
    container = sandbox.start(ContainerSpec(
        image=image.tag, command=["/bin/sh", "-c", _script(found, budget)], submission_id=image.submission_id,
        role="tests", owner=current_owner(), user=APP_USER, workdir="/app", environment=_environment(assignment),
        network="none", limits="candidate",
    ))
    try:
        code = _wait_done(sandbox, container, budget + KILL_GRACE_S + REPORT_S + WAIT_SLACK_S)
        _exec(sandbox, container, ["sh", "-c", "kill -9 -1 2>/dev/null; true"], 1024)  # what the tests left running
        output = _read(sandbox, container, OUTPUT, settings.sandbox.log_bytes, tail=True) or ""
        junit = _read(sandbox, container, JUNIT, MAX_JUNIT_BYTES)
        coverage = _read(sandbox, container, COVERAGE_JSON, MAX_COVERAGE_BYTES)
    finally:
        sandbox.remove(container)
    duration = time.monotonic() - started
    return _result(code, duration, budget, output, junit, coverage, settings)


POLL_S = 0.5
"""Each poll asks the engine twice (logs and state); the tests run beside the suite, so a slower poll costs no
wall time of the grade and spares the engine's CPU."""


def _wait_done(sandbox: Sandbox, container: str, limit: float) -> int | None:
    """The tests' exit code once the container's first process says they ended; -1 when the container ended
    first, None when they never end (within `limit`)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        said = sandbox.logs(container, 4096).rpartition(DONE)[2].split()
        if said and said[0].isdigit():
            return int(said[0])
        if not sandbox.state(container).running:
            return -1
        time.sleep(POLL_S)
    return None


def _exec(sandbox: Sandbox, container: str, argv: list[str], limit: int) -> tuple[int, str] | None:
    """(exit code, output) of a command of ours in the tests container; None when it could not run there.

    The candidate can leave the container unable to start a process (its processes at the limit): that is a
    result. Only an engine that no longer answers is ours (InfraError from `ping`)."""
    try:
        result = sandbox.exec(container, argv, user=APP_USER, workdir="/", timeout=READ_TIMEOUT_S, limit=limit)
    except InfraError:
        sandbox.ping()
        return None
    return None if result.timed_out else (result.exit_code, result.output)


_READ = 'test -f "$1" && test ! -L "$1" && exec {reader} -c "$2" "$1"'


def _read(sandbox: Sandbox, container: str, path: str, limit: int, tail: bool = False) -> str | None:
    """A regular file of the container (not a link), or its last `limit` bytes with `tail`; None when it is
    missing or, without `tail`, larger than `limit`."""
    script = _READ.format(reader="tail" if tail else "head")
    answer = _exec(sandbox, container, ["sh", "-c", script, "sh", path, str(limit if tail else limit + 1)], limit + 1)
    if answer is None or answer[0] != 0 or (not tail and len(answer[1]) > limit):
        return None
    return answer[1]


# --- reading the results ------------------------------------------------------------------------


@dataclass
class Counts:
    """Outcomes of the candidate's tests as their JUnit XML (or, failing that, pytest's last line) tells them."""

    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    failing: list[str] = field(default_factory=list)

    def add_failing(self, test_id: str) -> None:
        if len(self.failing) < MAX_FAILING and test_id and test_id not in self.failing:
            self.failing.append(test_id[:MAX_ID_CHARS])


def _node_id(case: Element) -> str:
    """pytest's node id back from a JUnit testcase (xunit1: `file`, dotted `classname`, `name`)."""
    file, classname, name = case.get("file", ""), case.get("classname", ""), case.get("name", "")
    module = file.removesuffix(".py").replace("/", ".") if file.endswith(".py") else ""
    if module and classname == module:
        return f"{file}::{name}"
    if module and classname.startswith(module + "."):
        return f"{file}::{classname[len(module) + 1:].replace('.', '::')}::{name}"
    if not classname:
        return file or name  # a module that failed to collect
    return f"{classname}::{name}"


def parse_junit(text: str) -> Counts | None:
    """Counts from pytest's JUnit XML; None when it is not well-formed XML or has a DTD (an entity bomb)."""
    try:
        root = SafeET.fromstring(text, forbid_dtd=True)
    except (ParseError, DefusedXmlException):
        return None
    counts = Counts()
    for case in root.iter("testcase"):
        if not case.get("name"):
            continue  # the test a stop interrupted: it has no outcome
        kinds = {child.tag for child in case}
        if "failure" in kinds:
            counts.failed += 1
        if "error" in kinds:
            counts.errors += 1
        if kinds & {"failure", "error"}:
            counts.add_failing(_node_id(case))
        elif "skipped" in kinds:
            counts.skipped += 1
        else:
            counts.passed += 1
    return counts


_OUTCOME = re.compile(r"(\d+) (passed|failed|errors?|skipped)\b")
_SUMMARY = re.compile(r"^[=\s]*\d+ (passed|failed|errors?|skipped|deselected|xfailed|xpassed|warnings?)\b.* in [\d.]+s", re.M)
_SHORT = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.M)


def parse_output(text: str) -> Counts:
    """Counts from pytest's last summary line and the `-rfE` lines, when no JUnit XML was written."""
    counts = Counts()
    lines = [match.group(0) for match in _SUMMARY.finditer(text)]
    for number, outcome in _OUTCOME.findall(lines[-1] if lines else ""):
        name = {"error": "errors", "skipped": "skipped"}.get(outcome, outcome)
        setattr(counts, name, int(number))
    for test_id in _SHORT.findall(text):
        counts.add_failing(test_id)
    return counts


def parse_coverage(text: str) -> float | None:
    """`totals.percent_covered` of coverage's JSON report, when it is a percentage."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    totals = data.get("totals") if isinstance(data, dict) else None
    percent = totals.get("percent_covered") if isinstance(totals, dict) else None
    if isinstance(percent, int | float) and not isinstance(percent, bool) and 0 <= percent <= 100:
        return round(float(percent), 1)
    return None


_EXIT_NOTES = {
    -1: "the tests container ended before the tests did",
    2: "pytest was interrupted",
    3: "pytest failed with an internal error",
    4: "pytest refused its command line or the repository's pytest configuration",
    5: "pytest collected no tests",
    97: "the tests could not start in the sandbox",
}


def _result(
    code: int | None, duration: float, budget: float, output: str, junit: str | None, coverage: str | None,
    settings: Settings,
) -> CandidateTests:
    if code == 98:
        return CandidateTests(
            ran=False, duration_s=round(duration, 3), note="the repository has tests, but pytest is not installed in "
            "its image (requirements with --hash get no test tools from the grader: list pytest with its hashes)",
        )
    parsed = parse_junit(junit) if junit is not None else None
    counts = parsed or parse_output(output)
    notes = []
    stopped = code is None or (code in (124, 137) and duration >= budget)
    if stopped:
        told = ("the counts are those of the tests that ended before it" if parsed
                else "the counts come from pytest's output" if _SUMMARY.search(output)
                else "pytest was killed before it wrote any results")
        notes.append(f"stopped at the time budget of {budget:g} s; {told}")
    elif code == 137:
        notes.append(f"the test run was killed (exit 137), most likely at the memory limit ({settings.sandbox.memory})")
    elif code in _EXIT_NOTES:
        notes.append(_EXIT_NOTES[code])
    if parsed is None and not stopped:
        notes.append("pytest wrote no readable JUnit XML: the counts come from its output")
    percent = parse_coverage(coverage) if coverage is not None else None
    return CandidateTests(
        ran=True, passed=counts.passed, failed=counts.failed, errors=counts.errors, skipped=counts.skipped,
        failing=counts.failing, coverage_percent=percent, output_tail=output, note="; ".join(notes),
        duration_s=round(duration, 3),
    )
