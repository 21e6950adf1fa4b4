"""The report's exports: JUnit XML that parses whatever the sandbox printed, CTRF valid against its schema, a PDF
that fetches nothing.

tests/unit/stages/ctrf.schema.json is the CTRF project's schema, vendored unchanged from
https://github.com/ctrf-io/ctrf/blob/08703dfde1d87a7c3281bd740ed5a8bd081e0056/schema/ctrf.schema.json
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from defusedxml import ElementTree as SafeET
from jsonschema import Draft7Validator

from grader.models import GradeReport, Status, TestOutcome
from grader.stages.exports import ctrf_document, junit_xml, render_pdf, xml_safe
from tests.unit.stages import report_samples as samples

SCHEMA = json.loads((Path(__file__).parent / "ctrf.schema.json").read_text())
ALL = [samples.flawed, samples.perfect, samples.build_failed, samples.infra_error]


def _tests(report: GradeReport, *outcomes: TestOutcome) -> list[str]:
    return [t.id for c in report.categories for t in c.tests if t.outcome in outcomes]


def test_junit_has_one_suite_per_category_and_counts_that_match():
    """Each category is a <testsuite> named by its id; failures, errors and skips count the report's tests."""
    report = samples.flawed()
    root = SafeET.fromstring(junit_xml(report))
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [c.id for c in report.categories]
    assert len(root.findall(".//failure")) == int(root.get("failures")) == len(_tests(report, TestOutcome.failed))
    assert len(root.findall(".//error")) == int(root.get("errors")) == len(_tests(report, TestOutcome.error))
    assert len(root.findall(".//skipped")) == int(root.get("skipped")) == 1
    assert int(root.get("tests")) == sum(len(c.tests) for c in report.categories)
    for suite, category in zip(suites, report.categories, strict=True):
        cases = suite.findall("testcase")
        assert [(c.get("classname"), c.get("name")) for c in cases] == [(category.id, t.id) for t in category.tests]
        props = {p.get("name"): p.get("value") for p in suite.find("properties")}
        assert (float(props["score"]), float(props["max_score"])) == (category.score, category.max_score)
        assert props["submission"] == report.id and props["commit"] == samples.COMMIT


def test_junit_failure_carries_the_message_and_the_evidence():
    """A failure's text has the message, the rubric, the reproduce line and the exchanges."""
    root = SafeET.fromstring(junit_xml(samples.flawed()))
    case = root.find(".//testcase[@name='test_access_split.py::test_login_refuses_open_redirect']")
    failure = case.find("failure")
    assert failure.get("message") == "POST /login with next=https://evil.example/ redirected there"
    for part in ("rubric: `POST /login` never sends", "reproduce: curl -si", "POST http://app/login", "-> 302",
                 "Location: https://evil.example/"):
        assert part in failure.text, part


def test_junit_escapes_markup_and_drops_what_xml_forbids():
    """A response body with markup and a BEL character still makes a document that parses, with the text intact."""
    data = junit_xml(samples.flawed())
    assert b"\x07" not in data and b"<script>" not in data
    text = SafeET.fromstring(data).find(".//testcase[@name='test_auth.py::test_get_missing_or_foreign_note_is_404']/failure").text
    assert '<script>alert("owned")</script>' in text
    assert xml_safe("a\x00b\x1bc\ud800d\tok") == "a\ufffdb\ufffdc\ufffdd\tok"


@pytest.mark.parametrize("make", [samples.build_failed, samples.infra_error])
def test_junit_of_a_report_not_graded_is_one_errored_case(make):
    """build_failed, infra_error: one suite, one case, an error that carries the reason."""
    report = make()
    root = SafeET.fromstring(junit_xml(report))
    [suite] = root.findall("testsuite")
    [case] = suite.findall("testcase")
    assert (suite.get("name"), root.get("errors"), root.get("failures")) == (report.status.value, "1", "0")
    assert case.find("error").get("message") == report.reason[:500]
    assert report.reason in case.find("error").text


@pytest.mark.parametrize("make", ALL)
def test_ctrf_is_valid_against_the_schema(make):
    """Every kind of report makes a CTRF document the CTRF schema accepts (formats checked too)."""
    document = ctrf_document(make())
    errors = list(Draft7Validator(SCHEMA, format_checker=Draft7Validator.FORMAT_CHECKER).iter_errors(document))
    assert errors == [], [e.message for e in errors]
    json.dumps(document)


def test_ctrf_of_an_older_report_is_valid():
    """A report.json of before the summary and the review still exports."""
    document = ctrf_document(GradeReport.model_validate(samples.legacy_json()))
    assert list(Draft7Validator(SCHEMA).iter_errors(document)) == []
    assert document["results"]["extra"]["summary"] is None


def test_ctrf_tests_summary_and_extras():
    """One test per hidden test with its category, points and re-run; the score and the summary in results.extra."""
    report = samples.flawed()
    results = ctrf_document(report)["results"]
    assert results["tool"]["name"] == "flask-grader"
    tests = results["tests"]
    assert len(tests) == results["summary"]["tests"] == sum(len(c.tests) for c in report.categories)
    failed = len(_tests(report, TestOutcome.failed, TestOutcome.error))
    assert (results["summary"]["failed"], results["summary"]["skipped"], results["summary"]["flaky"]) == (failed, 1, 1)
    assert results["summary"]["stop"] - results["summary"]["start"] == 48900
    likes = next(t for t in tests if t["extra"]["test_id"] == "test_concurrency.py::test_concurrent_likes")
    assert (likes["status"], likes["suite"], likes["extra"]["rerun"], likes["extra"]["intermittent"]) == (
        "failed", ["concurrency"], "passed", True)
    assert likes["extra"]["points"] == 7 and likes["extra"]["severity"] == "robustness" and likes["duration"] == 120
    errored = next(t for t in tests if t["rawStatus"] == "error")
    assert errored["status"] == "failed" and "no such column" in errored["message"]
    extra = results["extra"]
    assert (extra["score"], extra["max_score"], extra["submission_id"], extra["commit"]) == (48, 100, report.id, samples.COMMIT)
    assert extra["review"]["by_severity"] == {"security": 3, "correctness": 1, "maintainability": 1}
    assert extra["summary"]["verdict"] == report.summary.verdict and extra["summary"]["lost"] == 8


def test_ctrf_of_an_infra_error_is_other_and_of_a_build_failure_failed():
    """Ours is `other`, the candidate's `failed`: a dashboard does not count our outage against them."""
    assert [t["status"] for t in ctrf_document(samples.infra_error())["results"]["tests"]] == ["other"]
    [test] = ctrf_document(samples.build_failed())["results"]["tests"]
    assert (test["status"], test["rawStatus"]) == ("failed", Status.build_failed.value)


def test_pdf_fetches_nothing(tmp_path):
    """An image the HTML names is embedded by WeasyPrint's own fetcher and refused by ours."""
    from PIL import Image
    from weasyprint import HTML

    picture = tmp_path / "pixel.png"
    Image.new("RGB", (4, 4), "red").save(picture)
    html = f'<html><body><p>x</p><img src="{picture.as_uri()}"><link rel="stylesheet" href="{picture.as_uri()}"></body></html>'
    assert b"/Image" in HTML(string=html, base_url=None).write_pdf(), "the test's image would be fetched"
    pdf = render_pdf(html)
    assert pdf.startswith(b"%PDF") and b"/Image" not in pdf
