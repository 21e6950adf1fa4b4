"""The candidate's own tests: found by names alone, the grader's test tools added only when there are tests,
pytest's JUnit XML and coverage's JSON read as hostile data, and the run through the fake sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.errors import InfraError
from grader.models import Snapshot
from grader.sandbox import ContainerSpec, ExecResult
from grader.sandbox.fake import FakeContainer, FakeSandbox
from grader.sandbox.pod import APP_USER
from grader.stages import candidate_tests
from grader.stages.build import deps_key
from grader.stages.candidate_tests import (
    COVERAGE_JSON,
    JUNIT,
    MAX_FAILING,
    MAX_JUNIT_BYTES,
    NO_TESTS,
    OUTPUT,
    FoundTests,
    find_tests,
    parse_coverage,
    parse_junit,
    parse_output,
    run_candidate_tests,
)
from grader.stages.requirements import TEST_TOOLS, read_dependencies
from tests.conftest import REFERENCE
from tests.trees import snapshot_of, write_tree

PINS = (REFERENCE / "requirements.txt").read_text()
A_TEST = "def test_one():\n    assert True\n"


def _tree(root: Path, files: dict[str, str], links: dict[str, str] | None = None) -> Path:
    return write_tree(root, files, links)


def _snapshot(root: Path) -> Snapshot:
    return snapshot_of(root)


# --- finding the tests ------------------------------------------------------------------------------


def test_the_reference_has_a_tests_folder_and_its_package_and_wsgi_are_measured():
    assert find_tests(REFERENCE) == FoundTests(paths=("tests",), packages=("notes_app", "wsgi"))


@pytest.mark.parametrize("files, paths", [
    ({"test/test_api.py": A_TEST}, ("test",)),
    ({"tests/unit/deep/api_test.py": A_TEST}, ("tests",)),
    ({"notes_app/__init__.py": "", "notes_app/tests/test_models.py": A_TEST}, ("notes_app",)),
    ({"test_notes.py": A_TEST, "notes.py": "app = 1\n"}, ("test_notes.py",)),
])
def test_tests_are_found_in_a_folder_in_a_package_or_at_the_root(tmp_path, files, paths):
    assert find_tests(_tree(tmp_path, files)).paths == paths  # type: ignore[union-attr]


def test_a_single_module_app_is_measured_as_its_modules_without_setup_files(tmp_path):
    tree = _tree(tmp_path, {"notes.py": "", "wsgi.py": "", "setup.py": "", "conftest.py": "", "gunicorn.conf.py": "",
                            "tests/test_notes.py": A_TEST, "migrations/env.py": "", "scripts/seed.py": ""})
    assert find_tests(tree) == FoundTests(paths=("tests",), packages=("notes", "wsgi"))


@pytest.mark.parametrize("files", [
    {"wsgi.py": "", "notes_app/__init__.py": ""},
    {"tests/conftest.py": "", "tests/helpers.py": "", "tests/__init__.py": ""},  # no test module
    {".venv/lib/site-packages/x/test_x.py": A_TEST, "node_modules/y/test_y.py": A_TEST, "wsgi.py": ""},
    {"migrations/versions/test_v1.py": A_TEST, "docs/test_doc.txt": ""},
])
def test_a_repository_without_test_modules_has_none(tmp_path, files):
    assert find_tests(_tree(tmp_path, files)) is None


def test_links_are_never_followed(tmp_path):
    """A tests/ link to a folder of tests outside, or a test module that is a link, is not a test."""
    outside = _tree(tmp_path / "outside", {"test_secret.py": A_TEST})
    tree = _tree(tmp_path / "repo", {"wsgi.py": ""}, links={"tests": str(outside), "test_link.py": str(outside / "test_secret.py")})
    assert find_tests(tree) is None


def test_the_walk_is_bounded_in_entries_and_depth(tmp_path, monkeypatch):
    deep = "tests/" + "/".join(f"d{i}" for i in range(candidate_tests.MAX_WALK_DEPTH + 2)) + "/test_deep.py"
    assert find_tests(_tree(tmp_path / "deep", {deep: A_TEST})) is None
    monkeypatch.setattr(candidate_tests, "MAX_WALK_ENTRIES", 50)
    wide = {f"tests/a{i:03}.py": "" for i in range(100)} | {"tests/zz/test_late.py": A_TEST}
    assert find_tests(_tree(tmp_path / "wide", wide)) is None


# --- the tool pins ------------------------------------------------------------------------------------


def test_a_repository_with_tests_gets_the_tools_in_its_text_key_and_hash(tmp_path):
    bare = read_dependencies(_snapshot(_tree(tmp_path / "bare", {"requirements.txt": PINS})))
    tested = read_dependencies(_snapshot(_tree(tmp_path / "tested", {"requirements.txt": PINS, "tests/test_a.py": A_TEST})))
    assert (bare.tools, tested.tools) == ((), TEST_TOOLS)
    assert set(tested.requirements.decode().splitlines()) == set(bare.requirements.decode().splitlines()) | set(TEST_TOOLS)
    assert deps_key("b", tested.requirements) != deps_key("b", bare.requirements)
    assert tested.provenance()["dependencies_sha256"] == tested.sha256 != bare.sha256
    assert tested.provenance()["dependency_files"] == ["requirements.txt"]
    assert tested.label == f"requirements.txt with the grader's test tools ({', '.join(TEST_TOOLS)})"


def test_every_layout_with_tests_gains_the_same_tools_so_they_still_share_a_layer(tmp_path):
    """Flat, split `-r`, and pyproject with the same pins and tests: one text, one key."""
    names = ", ".join(f'"{line}"' for line in PINS.splitlines() if line and not line.startswith("#"))
    layouts = {
        "flat": {"requirements.txt": PINS},
        "split": {"requirements.txt": "-r requirements/prod.txt\n", "requirements/prod.txt": PINS},
        "pyproject": {"pyproject.toml": f'[project]\nname = "n"\ndependencies = [{names}]\n'},
    }
    texts = {read_dependencies(_snapshot(_tree(tmp_path / name, {**files, "tests/test_a.py": A_TEST}))).requirements
             for name, files in layouts.items()}
    assert len(texts) == 1 and b"pytest==" in texts.pop()


@pytest.mark.parametrize("requirements, tools", [
    ("flask\npytest==7.4.4\n", ("coverage==7.17.3",)),  # their pytest wins; coverage is added
    ("flask\nPyTest>=8\ncoverage[toml]==7.5.0\n", ()),
    ("flask\n-c c.txt\n", ("pytest", "coverage==7.17.3")),  # only their constraints name pytest: unpinned
])
def test_the_candidates_own_tools_win(tmp_path, requirements, tools):
    tree = _tree(tmp_path, {"requirements.txt": requirements, "c.txt": "pytest==8.0.0\n", "test_a.py": A_TEST})
    deps = read_dependencies(_snapshot(tree))
    assert deps.tools == tools
    assert all(tool.encode() + b"\n" in deps.requirements for tool in tools)


def test_hashed_requirements_get_no_tools(tmp_path):
    """Hash-checking would need a hash of every tool and their dependencies: nothing is added."""
    tree = _tree(tmp_path, {"requirements.txt": "flask==3.1.3 --hash=sha256:" + "a" * 64 + "\n", "tests/test_a.py": A_TEST})
    assert read_dependencies(_snapshot(tree)).tools == ()


# --- reading pytest's and coverage's outputs -----------------------------------------------------------

JUNIT_XML = """<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest">
<testcase classname="tests.test_api" name="test_ok" file="tests/test_api.py" line="1" time="0.1"/>
<testcase classname="tests.test_api" name="test_bad" file="tests/test_api.py" line="4"><failure message="x">tb</failure></testcase>
<testcase classname="tests.test_api.TestNotes" name="test_p[2]" file="tests/test_api.py" line="9"><failure/></testcase>
<testcase classname="tests.test_api" name="test_fixture" file="tests/test_api.py" line="12"><error message="boom"/></testcase>
<testcase classname="tests.test_api" name="test_later" file="tests/test_api.py" line="15"><skipped/></testcase>
<testcase classname="" name="tests.test_import" file="tests/test_import.py"><error message="collection failure"/></testcase>
<testcase time="0.000"/>
</testsuite></testsuites>"""


def test_junit_counts_and_pytest_node_ids():
    """Each outcome once; ids as pytest prints them (class and parameters kept); the test a stop interrupted
    (a testcase without a name) is not counted."""
    counts = parse_junit(JUNIT_XML)
    assert counts is not None
    assert (counts.passed, counts.failed, counts.errors, counts.skipped) == (1, 2, 2, 1)
    assert counts.failing == ["tests/test_api.py::test_bad", "tests/test_api.py::TestNotes::test_p[2]",
                              "tests/test_api.py::test_fixture", "tests/test_import.py"]


@pytest.mark.parametrize("text", [
    "",
    "<testsuites><testsuite><testcase name='a'>",  # cut short
    "not xml at all \x00",
    # an entity bomb (billion laughs): any DTD is refused before an entity is expanded
    '<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
    '<testsuites><testcase name="&d;"/></testsuites>',
    '<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]><testsuites>&x;</testsuites>',
])
def test_malformed_or_hostile_junit_is_no_result(text):
    assert parse_junit(text) is None


def test_huge_junit_is_parsed_within_its_caps():
    """Deep nesting does not crash the parser; thousands of failures keep only the first ids, each capped."""
    assert parse_junit("<a>" * 100_000 + "</a>" * 100_000).passed == 0  # type: ignore[union-attr]
    name = "t" * 1000
    cases = "".join(f'<testcase classname="m" name="{i}{name}"><failure/></testcase>' for i in range(500))
    counts = parse_junit(f"<testsuites>{cases}</testsuites>")
    assert counts is not None and counts.failed == 500
    assert len(counts.failing) == MAX_FAILING and max(map(len, counts.failing)) == candidate_tests.MAX_ID_CHARS


def test_output_counts_from_the_last_summary_line_and_the_short_summary():
    output = (".F  [100%]\nFAILED tests/test_a.py::test_b - assert 1 == 2\nERROR tests/test_c.py\n"
              "print('3 passed in 1s')\n1 failed, 7 passed, 2 skipped, 1 error in 3.21s\n")
    counts = parse_output(output)
    assert (counts.passed, counts.failed, counts.errors, counts.skipped) == (7, 1, 1, 2)
    assert counts.failing == ["tests/test_a.py::test_b", "tests/test_c.py"]
    assert parse_output(".Killed\n").passed == 0


@pytest.mark.parametrize("text, percent", [
    ('{"meta": {}, "totals": {"percent_covered": 91.2345, "num_statements": 10}}', 91.2),
    ('{"totals": {"percent_covered": 0}}', 0.0),
    ('{"totals": {"percent_covered": "100"}}', None),
    ('{"totals": {"percent_covered": true}}', None),
    ('{"totals": {"percent_covered": 1e9}}', None),
    ('{"totals": {"percent_covered": NaN}}', None),
    ('{"totals": [1]}', None),
    ("[" * 100_000 + "]" * 100_000, None),
    ('{"totals": {', None),
])
def test_coverage_is_a_percentage_or_nothing(text, percent):
    assert parse_coverage(text) == percent


# --- the run, through the fake sandbox -----------------------------------------------------------------


def _sandbox(files: dict[str, str], marker: str | None = "1", specs: list[ContainerSpec] | None = None) -> FakeSandbox:
    """A fake whose tests container says `grader-tests: exit <marker>` and holds `files`; `specs` gets what starts."""

    def answer(argv: list[str]) -> ExecResult:
        if argv[:2] == ["sh", "-c"] and len(argv) == 6:  # a read: sh -c SCRIPT sh PATH LIMIT
            path, limit = argv[4], int(argv[5])
            return ExecResult(0, files[path][-limit:], False) if path in files else ExecResult(1, "", False)
        return ExecResult(0, "", False)

    def started(container: FakeContainer) -> None:
        (specs if specs is not None else []).append(container.spec)
        if marker is not None:
            container.logs = f"{candidate_tests.DONE}{marker}\n"

    return FakeSandbox(on_exec=answer, on_start=started)


@pytest.fixture
def tested(tmp_path: Path) -> Path:
    return _tree(tmp_path / "repo", {"requirements.txt": PINS, "wsgi.py": "", "tests/test_a.py": A_TEST})


def test_a_repository_without_tests_starts_no_container(tmp_path, notes, image, settings):
    sandbox = FakeSandbox()
    result = run_candidate_tests(image, notes, settings, sandbox, _tree(tmp_path, {"wsgi.py": ""}))
    assert result.model_dump(include={"ran", "note"}) == {"ran": False, "note": NO_TESTS}
    assert sandbox.calls == []


def test_the_tests_run_in_their_own_hardened_container_and_their_results_are_read_back(tested, notes, image, settings):
    coverage = '{"totals": {"percent_covered": 87.5}}'
    seen: list[ContainerSpec] = []
    sandbox = _sandbox({OUTPUT: "1 failed, 5 passed in 2s\n", JUNIT: JUNIT_XML, COVERAGE_JSON: coverage}, specs=seen)
    result = run_candidate_tests(image, notes, settings, sandbox, tested)
    assert (result.ran, result.passed, result.failed, result.errors, result.coverage_percent) == (True, 1, 2, 2, 87.5)
    assert result.output_tail == "1 failed, 5 passed in 2s\n" and result.note == ""
    spec = seen[0]
    hardening = (spec.role, spec.network, spec.limits, spec.user, spec.submission_id)
    assert hardening == ("tests", "none", "candidate", APP_USER, "s-unit")
    assert spec.image == image.tag and not spec.volumes and not spec.binds and not spec.writable_binds
    assert spec.environment["DATABASE_URL"] == "sqlite:////tmp/grader-tests/app.db"
    assert len(spec.environment["SECRET_KEY"]) == 64
    script = spec.command[-1]
    assert f"timeout -s INT -k 5 {settings.timeouts.candidate_tests_s:.0f} python -m coverage run" in script
    assert "source = wsgi\n" in script and "junit.xml tests;" in script
    assert sandbox.containers == {}, "the tests container was not removed"


def test_a_settings_budget_is_passed_on(tested, notes, image, settings):
    seen: list[ContainerSpec] = []
    run_candidate_tests(image, notes, settings.replace(candidate_tests_s=7), _sandbox({}, specs=seen), tested)
    assert "timeout -s INT -k 5 7 python" in seen[0].command[-1]


def test_a_run_that_never_ends_is_reported_as_stopped_at_the_budget(tested, notes, image, settings, monkeypatch):
    for name in ("KILL_GRACE_S", "REPORT_S", "WAIT_SLACK_S"):
        monkeypatch.setattr(candidate_tests, name, 0)
    sandbox = _sandbox({OUTPUT: ".."}, marker=None)
    result = run_candidate_tests(image, notes, settings.replace(candidate_tests_s=0.3), sandbox, tested)
    assert result.ran and result.note == "stopped at the time budget of 0.3 s; pytest was killed before it wrote any results"
    assert sandbox.containers == {}


@pytest.mark.parametrize("marker, files, note", [
    ("98", {}, "pytest is not installed"),
    ("2", {OUTPUT: "!!! KeyboardInterrupt !!!\n3 passed in 1s\n"}, "pytest was interrupted; pytest wrote no readable JUnit XML"),
    ("1", {OUTPUT: "E   ModuleNotFoundError\nERROR tests/test_a.py\n1 error in 0.1s\n", JUNIT: "<broken"}, "no readable JUnit"),
    ("137", {}, "killed (exit 137), most likely at the memory limit (512m)"),
])
def test_what_stopped_the_tests_is_the_note(tested, notes, image, settings, marker, files, note):
    result = run_candidate_tests(image, notes, settings, _sandbox(files, marker), tested)
    assert note in result.note
    assert result.ran is (marker != "98")


def test_a_suite_that_cannot_import_reports_its_errors(tested, notes, image, settings):
    output = "ERROR tests/test_a.py - ModuleNotFoundError: No module named 'nope'\n1 error in 0.1s\n"
    junit = '<testsuites><testcase classname="" name="tests.test_a" file="tests/test_a.py"><error/></testcase></testsuites>'
    result = run_candidate_tests(image, notes, settings, _sandbox({OUTPUT: output, JUNIT: junit}), tested)
    assert (result.ran, result.errors, result.failing) == (True, 1, ["tests/test_a.py"])
    assert "No module named 'nope'" in result.output_tail


def test_an_oversized_junit_is_not_read(tested, notes, image, settings):
    junit = JUNIT_XML + " " * MAX_JUNIT_BYTES
    result = run_candidate_tests(image, notes, settings, _sandbox({OUTPUT: "6 passed in 1s\n", JUNIT: junit}), tested)
    assert (result.passed, result.failed) == (6, 0)


def test_an_engine_that_is_gone_is_an_infra_error(tested, notes, image, settings):
    sandbox = _sandbox({})
    sandbox.down()
    with pytest.raises(InfraError):
        run_candidate_tests(image, notes, settings, sandbox, tested)


def test_an_engine_that_goes_away_during_the_run_is_an_infra_error(tested, notes, image, settings):
    sandbox = _sandbox({}, marker=None)
    sandbox.on_start = lambda container: sandbox.down()
    with pytest.raises(InfraError):
        run_candidate_tests(image, notes, settings, sandbox, tested)


def test_a_container_that_cannot_start_a_process_is_a_result_when_the_engine_answers(tested, notes, image, settings):
    """The candidate's processes at the pids limit make our reads fail; the engine still answers: no InfraError."""
    sandbox = _sandbox({})
    sandbox.on_exec = lambda argv: (_ for _ in ()).throw(InfraError("running a command: resource temporarily unavailable"))
    result = run_candidate_tests(image, notes, settings, sandbox, tested)
    assert result.ran and result.passed == 0 and sandbox.containers == {}


def test_a_container_that_ends_before_the_tests_do_says_so(tested, notes, image, settings):
    sandbox = _sandbox({}, marker=None)
    sandbox.on_start = lambda container: setattr(container, "status", "exited")
    result = run_candidate_tests(image, notes, settings, sandbox, tested)
    assert result.note.startswith("the tests container ended before the tests did")
