"""Placing graded reports in their cohort, on real snapshots and a real SQLite database: pairs stored once, copies
flagged, resubmissions labelled, ranks and percentiles, deletion and retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from grader.cohort.files import keep_snapshot
from grader.cohort.place import place, position
from grader.cohort.store import CohortStore, Member
from grader.cohort.view import assignment_view, live_report
from grader.db.engine import open_database
from grader.db.schema import candidate_links, invitations
from grader.db.store import Store, utcnow
from grader.models import CategoryReport, GradeReport, Provenance, SourceInfo, Status, TestOutcome, TestReport
from grader.queue.watchdog import Watchdog
from grader.settings import PROJECT_ROOT, Settings
from grader.submissions import SubmitError, delete_submission
from tests.disguise import RENAMES, disguised_copy

SOLUTIONS = PROJECT_ROOT / "assignments" / "flask-notes" / "solutions"


def _report(submission_id: str, score: float, *, failed: tuple[str, ...] = (), version: str = "1") -> GradeReport:
    tests = [
        TestReport(id=f"test_auth.py::{name}", title=name, outcome=TestOutcome.failed if name in failed else TestOutcome.passed)
        for name in ("test_login", "test_logout", "test_hash")
    ]
    return GradeReport(
        id=submission_id, assignment="flask-notes", source=SourceInfo(url="u"), status=Status.graded, score=score,
        max_score=100, grader_version="0", created_at=datetime.now(UTC),
        provenance=Provenance(assignment_version=version),
        categories=[CategoryReport(id="auth", title="Auth", score=score / 4, max_score=25, tests=tests)],
    )


@pytest.fixture
def cohort(settings: Settings) -> CohortStore:
    return CohortStore(open_database(settings))


def _kept(settings: Settings, submission_id: str, tree: Path) -> Path:
    kept = keep_snapshot(tree, settings.paths.snapshots_dir / submission_id)
    assert kept is not None
    return kept


def _place(settings: Settings, cohort: CohortStore, report: GradeReport, tree: Path | None) -> GradeReport:
    kept = _kept(settings, report.id, tree) if tree is not None else None
    return place(report, kept, cohort, settings)


def test_a_disguised_copy_is_flagged_and_an_independent_solution_is_not(settings, cohort, tmp_path):
    """The copy of an earlier submission is its top match, flagged; an independent solution matches nothing."""
    disguised = disguised_copy(SOLUTIONS / "reference", tmp_path / "jotter", RENAMES)
    first = _place(settings, cohort, _report("s-ref", 100), SOLUTIONS / "reference")
    assert first.similar == [] and first.cohort is not None and first.cohort.n == 1
    copy = _place(settings, cohort, _report("s-copy", 90), disguised)
    independent = _place(settings, cohort, _report("s-single", 100), SOLUTIONS / "single-module")
    assert [(m.submission, m.flagged, m.same_candidate) for m in copy.similar] == [("s-ref", True, False)]
    assert copy.similar[0].score > 0.6
    assert all(m.score < settings.cohort.similarity_threshold and not m.flagged for m in independent.similar)
    assert cohort.pair("s-ref", "s-copy") == cohort.pair("s-copy", "s-ref") is not None
    view = assignment_view(cohort, "flask-notes", settings.cohort)
    assert [(p.a, p.b, p.flagged) for p in view.pairs] == [("s-copy", "s-ref", True)]


def test_resubmissions_through_one_invitation_are_labelled_not_flagged(settings, cohort):
    engine = cohort.engine
    with engine.begin() as conn:
        invite = conn.execute(invitations.insert().values(
            token_hash="t", assignment="flask-notes", created_at=utcnow(), expires_at=utcnow() + timedelta(days=1),
            max_uses=3, uses=2,
        )).inserted_primary_key[0]
        for n, submission in enumerate(("s-try1", "s-try2")):
            conn.execute(candidate_links.insert().values(submission_id=submission, invitation_id=invite, token_hash=f"c{n}"))
    _place(settings, cohort, _report("s-try1", 80), SOLUTIONS / "reference")
    second = _place(settings, cohort, _report("s-try2", 100), SOLUTIONS / "reference")
    assert [(m.submission, m.same_candidate, m.flagged) for m in second.similar] == [("s-try1", True, False)]
    assert second.similar[0].score == 1.0


def test_rank_and_percentile_on_a_seeded_cohort(settings, cohort):
    """Ranks share ties; percentile rank is (below + level / 2) / n; none below the minimum n; other versions apart."""
    for n, score in enumerate((40, 70, 70, 90)):
        _place(settings, cohort, _report(f"s-{n}", score), None)
    early = _place(settings, cohort, _report("s-old", 10, version="0"), None)
    assert early.cohort is not None and (early.cohort.rank, early.cohort.n, early.cohort.percentile) == (1, 1, None)
    top = _place(settings, cohort, _report("s-top", 100), None)
    assert top.cohort is not None and (top.cohort.rank, top.cohort.n, top.cohort.percentile) == (1, 5, 90.0)
    members = cohort.scores("flask-notes", "1")
    tied = [position(members, f"s-{n}", settings.cohort) for n in (1, 2)]
    assert {(p.rank, p.percentile) for p in tied if p} == {(3, 40.0)}
    lowest = position(members, "s-0", settings.cohort)
    assert lowest is not None and (lowest.rank, lowest.percentile) == (5, 10.0)
    few = settings.replace(rank_min_n=6).cohort
    assert position(members, "s-top", few).percentile is None  # type: ignore[union-attr]


def test_the_assignment_view_has_the_distribution_pass_rates_and_hardest_tests(settings, cohort):
    _place(settings, cohort, _report("s-a", 95, failed=("test_hash",)), None)
    _place(settings, cohort, _report("s-b", 55, failed=("test_hash", "test_logout")), None)
    _place(settings, cohort, _report("s-c", 100), None)
    view = assignment_view(cohort, "flask-notes", settings.cohort)
    assert view.n == 3 and [b.count for b in view.histogram] == [0, 0, 0, 0, 0, 1, 0, 0, 0, 2]
    assert [(c.id, c.pass_rate) for c in view.categories] == [("auth", 33.3)]
    assert [(t.id, t.failed, t.n) for t in view.hardest] == [("test_auth.py::test_hash", 2, 3), ("test_auth.py::test_logout", 1, 3)]


def test_deleting_a_submission_removes_its_pairs_code_and_reports(settings, cohort, tmp_path):
    disguised = disguised_copy(SOLUTIONS / "reference", tmp_path / "jotter", RENAMES)
    _place(settings, cohort, _report("s-ref", 100), SOLUTIONS / "reference")
    copy = _place(settings, cohort, _report("s-copy", 90), disguised)
    report_dir = settings.paths.reports_dir / "s-ref"
    report_dir.mkdir(parents=True)
    (report_dir / "report.json").write_text("{}")
    delete_submission(settings, Store(cohort.engine), "s-ref")
    assert cohort.member("s-ref") is None and cohort.pairs_of("s-copy") == []
    assert not report_dir.exists() and not (settings.paths.snapshots_dir / "s-ref").exists()
    assert live_report(copy, cohort, settings.cohort).similar == []
    with pytest.raises(SubmitError) as unknown:
        delete_submission(settings, Store(cohort.engine), "s-ref")
    assert unknown.value.status == 404


def test_retention_removes_the_kept_code_but_keeps_the_score(settings, cohort):
    _place(settings, cohort, _report("s-old", 70), SOLUTIONS / "reference")
    with cohort.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE cohort_members SET graded_at = '2020-01-01 00:00:00'")
    later = _place(settings, cohort, _report("s-new", 100), SOLUTIONS / "reference")
    old = cohort.member("s-old", with_hashes=True)
    assert isinstance(old, Member) and old.snapshot_path is None and old.hashes is None
    assert not (settings.paths.snapshots_dir / "s-old").exists()
    assert later.similar == [] and later.cohort is not None and later.cohort.n == 2


def test_a_regrade_replaces_the_member_and_its_pairs(settings, cohort):
    _place(settings, cohort, _report("s-a", 100), SOLUTIONS / "reference")
    _place(settings, cohort, _report("s-b", 100), SOLUTIONS / "reference")
    assert cohort.pair("s-a", "s-b") is not None
    again = _place(settings, cohort, _report("s-a", 60), SOLUTIONS / "single-module")
    assert len(cohort.members("flask-notes")) == 2
    pair = cohort.pair("s-a", "s-b")
    assert pair is None or pair.score < 0.5
    assert again.cohort is not None and again.cohort.rank == 2


def test_the_watchdog_expires_kept_code_without_a_new_grade(settings, cohort):
    """A finished campaign gets no new grade: the workers' watchdog sweep applies the retention."""
    _place(settings, cohort, _report("s-old", 70), SOLUTIONS / "reference")
    with cohort.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE cohort_members SET graded_at = '2020-01-01 00:00:00'")
    watchdog = Watchdog(settings, Store(cohort.engine), connection=None, owner="host/1:2")  # type: ignore[arg-type]
    assert watchdog.expire_kept_code() == 1
    assert not (settings.paths.snapshots_dir / "s-old").exists()
    assert watchdog.expire_kept_code() == 0


def _app_with(dest: Path, shared: str, own: str) -> Path:
    dest.mkdir(parents=True)
    (dest / "app.py").write_text(shared + own)
    return dest


TUTORIAL = "".join(
    f"\n\ndef tutorial_step_{n}(request, session):\n    value = request.args.get('q{n}', {n})\n"
    f"    session['k{n}'] = [value] * {n}\n    return {{'step': {n}, 'value': value}}\n"
    for n in range(12)
)


def test_code_most_of_a_large_cohort_shares_stops_counting(settings, cohort, tmp_path):
    """Ten candidates who all pasted the same tutorial are not ten copies: from common_code_min_n on, the
    hashes most members share are ignored, and what is left is each one's own code."""
    for n in range(10):
        own = "".join(
            f"\n\nclass Handler{n}x{m}:\n    def run_{m}(self, items, limit={m}):\n"
            f"        return sorted(i * {n + 2} for i in items if i % {m + 2} == {n % (m + 2)})[:limit]\n"
            for m in range(6 + n)
        )
        report = _place(settings, cohort, _report(f"s-{n:02}", 50 + n), _app_with(tmp_path / str(n), TUTORIAL, own))
    assert settings.cohort.common_code_min_n == 10
    assert all(m.score < settings.cohort.similarity_threshold for m in report.similar), report.similar
    early = cohort.pair("s-00", "s-01")
    assert early is not None and early.score >= settings.cohort.similarity_threshold, "before the cohort was large"
