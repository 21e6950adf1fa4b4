"""A regrade beside the grade it replaced: what differs between the two gradings, and how the report says it."""

from __future__ import annotations

from datetime import UTC, datetime

from grader.models import GradeReport, Provenance, Status
from grader.stages.regrade import compare_with_earlier, earlier_report
from grader.stages.report import render_html
from grader.storage.local import LocalStorage
from tests.unit.stages import report_samples as samples

BASE = "sha256:" + "1b" * 32


def _graded(host: str, score: float, base: str | None = BASE, **provenance: object) -> GradeReport:
    report = samples.perfect()
    fields = {"host": host, "base_image_digest": base, "base_image_id": "sha256:" + host.encode().hex().ljust(64, "0")}
    return report.model_copy(update={
        "score": score, "created_at": datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
        "provenance": report.provenance.model_copy(update={**fields, **provenance}),
    })


def test_the_same_inputs_on_another_host_are_called_the_same():
    """Host A graded 100, host B 97.5 from the same commit, dependencies and base content: only the host differs."""
    regrade = compare_with_earlier(_graded("host-b", 97.5), _graded("host-a", 100))
    earlier = regrade.earlier
    assert earlier is not None and (earlier.score, earlier.host, earlier.status) == (100, "host-a", Status.graded)
    assert earlier.differences == {"host": ("host-a", "host-b")} and earlier.unknown == []
    assert earlier.same_inputs
    html = render_html(regrade)
    assert 'id="earlier"' in html and "100 / 100" in html and "on another host" in html and "from the run itself" in html


def test_a_regrade_of_an_infra_error_says_how_the_earlier_grading_ended():
    """The grading it replaced died of our fault: no score is shown for it, its ending is."""
    failed = samples.infra_error().model_copy(update={"id": samples.perfect().id})
    html = render_html(compare_with_earlier(_graded("host-b", 100), failed))
    assert "that ended as infra error" in html and "0 / " not in html.split('id="earlier"')[1][:400]


def test_a_rebuilt_base_image_and_a_new_assignment_version_are_named():
    """Another base content is a changed input: the report names it, and does not call the inputs the same."""
    earlier = compare_with_earlier(
        _graded("host-b", 90, base="sha256:" + "2c" * 32, assignment_version="2"), _graded("host-a", 100),
    ).earlier
    assert earlier is not None and not earlier.same_inputs
    assert earlier.differences["base image"] == (BASE, "sha256:" + "2c" * 32)
    assert earlier.differences["assignment version"] == ("1", "2")


def test_a_grade_of_before_the_host_was_recorded_is_compared_on_what_both_know():
    """A report that recorded no host or base digest: those are unknown, never called a difference."""
    legacy = _graded("host-a", 80).model_copy(update={"provenance": Provenance(**samples.PROVENANCE.model_dump())})
    earlier = compare_with_earlier(_graded("host-b", 100), legacy).earlier
    assert earlier is not None and earlier.differences == {}
    assert set(earlier.unknown) == {"host", "base image"} and not earlier.same_inputs
    assert "not compared: base image, host" in render_html(compare_with_earlier(_graded("host-b", 100), legacy))


def test_a_first_grade_and_an_unreadable_earlier_report_carry_no_comparison(tmp_path):
    storage = LocalStorage(tmp_path)
    assert earlier_report(storage, "reports/s-1") is None
    storage.put("reports/s-1/report.json", b"{not json")
    assert earlier_report(storage, "reports/s-1") is None
    report = _graded("host-a", 100)
    assert compare_with_earlier(report, None).earlier is None
    storage.put("reports/s-1/report.json", report.model_dump_json().encode())
    stored = earlier_report(storage, "reports/s-1")
    assert stored is not None and stored.provenance.host == "host-a"
    other = report.model_copy(update={"id": "s-other"})
    assert compare_with_earlier(report, other).earlier is None, "another submission's report is no earlier grade"
    assert 'id="earlier"' not in render_html(report)
