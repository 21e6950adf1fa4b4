"""A graded report placed in its cohort: its code compared with every earlier submission, its rank among them.

The pipeline keeps a graded snapshot's code (grader/cohort/files.py, before its clean-up removes the clone); the caller
(`grader grade`, the queue's job) then calls `place`, which fingerprints the kept code, stores the member, compares
it with the stored fingerprints of the same assignment (incrementally: this one against the others, never all the
pairs again), stores the pairs and returns the report with `similar` and `cohort`. Nothing here changes a point.
The member is written before the others are read, so of two gradings placed at the same moment at least one sees
the other.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from grader.assignments.model import assignment_or_none
from grader.cohort.files import open_kept, remove_kept
from grader.cohort.similarity import SCHEME, TreeFingerprint, fingerprint_tree, overlaps
from grader.cohort.store import CategoryResult, CohortStore, Member, Pair, StoredFingerprint, TestResult
from grader.db.store import utcnow
from grader.models import SIMILAR_FLOOR, CohortPosition, GradeReport, SimilarMatch, Status
from grader.settings import CohortSettings, Settings
from grader.storage import Storage, open_storage, snapshot_key

log = logging.getLogger(__name__)


def member_of(report: GradeReport, candidate: str | None, kept: str | None, fingerprint: TreeFingerprint | None) -> Member:
    return Member(
        submission_id=report.id,
        assignment=report.assignment,
        assignment_version=report.provenance.assignment_version,
        candidate=candidate,
        score=report.score,
        max_score=report.max_score,
        graded_at=report.created_at.replace(tzinfo=None),
        categories=[
            CategoryResult(
                id=c.id, title=c.title, score=c.score, max_score=c.max_score,
                passed=sum(t.outcome.value == "passed" for t in c.tests), total=len(c.tests),
            )
            for c in report.categories
        ],
        tests=[
            TestResult(id=t.id, category=c.id, title=t.title, outcome=t.outcome.value)
            for c in report.categories for t in c.tests
        ],
        report_path=None,
        snapshot_path=kept,
        scheme=fingerprint.scheme if fingerprint is not None else None,
        hashes=fingerprint.hashes if fingerprint is not None else None,
    )


def place(
    report: GradeReport,
    snapshot: Path | None,
    store: CohortStore,
    settings: Settings,
    *,
    boilerplate: Sequence[Path] = (),
    report_path: str | None = None,
    storage: Storage | None = None,
) -> GradeReport:
    """Store a graded report's member and pairs; the report with `similar` and `cohort` as they stand now.

    `snapshot` is the kept code as a local folder (fingerprinted here); the member names it by its storage key
    `snapshots/<id>`, where the caller keeps it. `report_path` is the key of the report's report.json."""
    if report.status is not Status.graded:
        return report
    storage = storage or open_storage(settings)
    expire_snapshots(store, settings, storage)
    fingerprint = fingerprint_tree(snapshot, boilerplate) if snapshot is not None and snapshot.is_dir() else None
    kept = snapshot_key(report.id) if snapshot is not None else None
    member = member_of(report, store.candidate_of(report.id), kept, fingerprint).model_copy(
        update={"report_path": report_path}
    )
    store.put_member(member)
    pairs: list[Pair] = []
    if fingerprint is not None:
        others = store.fingerprints(report.assignment, exclude=report.id)
        kept_code = _KeptCode(storage, settings.paths.snapshots_dir)
        pairs = compare_with_cohort(member, fingerprint, others, store, settings.cohort, boilerplate, kept_code)
        store.put_pairs(pairs)
    cohort = position(store.scores(report.assignment, member.assignment_version), report.id, settings.cohort)
    return report.model_copy(update={"similar": matches(report.id, pairs, settings.cohort), "cohort": cohort})


def compare_with_cohort(
    member: Member,
    fingerprint: TreeFingerprint,
    others: Sequence[StoredFingerprint],
    store: CohortStore,
    settings: CohortSettings,
    boilerplate: Sequence[Path] = (),
    kept_code: _KeptCode | None = None,
) -> list[Pair]:
    """This member against each other one with code; code most of a large cohort shares is not counted."""
    theirs = [(m, fp) for m in others if (fp := _stored_hashes(m, store, boilerplate, kept_code)) is not None]
    common = settings.common_code_share if len(theirs) + 1 >= settings.common_code_min_n else None
    found = overlaps(np.asarray(fingerprint.hashes, dtype=np.int64), [fp for _, fp in theirs], common)
    now = utcnow()
    pairs = []
    for (other, _), (mine_in_theirs, theirs_in_mine, shared) in zip(theirs, found, strict=True):
        score = max(mine_in_theirs, theirs_in_mine)
        if score < SIMILAR_FLOOR:
            continue
        mine_first = member.submission_id < other.submission_id
        pairs.append(Pair(
            a=member.submission_id if mine_first else other.submission_id,
            b=other.submission_id if mine_first else member.submission_id,
            assignment=member.assignment,
            score=round(score, 4),
            a_in_b=round(mine_in_theirs if mine_first else theirs_in_mine, 4),
            b_in_a=round(theirs_in_mine if mine_first else mine_in_theirs, 4),
            shared=shared,
            same_candidate=member.candidate is not None and member.candidate == other.candidate,
            computed_at=now,
        ))
    return pairs


@dataclass(frozen=True)
class _KeptCode:
    """Where the kept code of other members is read: storage, and the folder legacy paths must stay in."""

    storage: Storage
    snapshots_dir: Path


def _stored_hashes(
    stored: StoredFingerprint, store: CohortStore, boilerplate: Sequence[Path], kept_code: _KeptCode | None,
) -> np.ndarray | None:
    """A member's stored hashes; those of an older scheme are taken again from its kept code, if still kept."""
    if stored.hashes is not None and stored.scheme == SCHEME:
        return stored.hashes
    if kept_code is None:
        return None
    with open_kept(stored.snapshot_path, kept_code.storage, kept_code.snapshots_dir) as folder:
        if folder is None:
            return None
        fingerprint = fingerprint_tree(folder, boilerplate)
    store.set_fingerprint(stored.submission_id, fingerprint.scheme, fingerprint.hashes)
    return np.asarray(fingerprint.hashes, dtype=np.int64)


def matches(submission_id: str, pairs: Sequence[Pair], settings: CohortSettings) -> list[SimilarMatch]:
    """The closest pairs of this submission, as the report shows them; a resubmission is labelled, never flagged."""
    ranked = sorted(pairs, key=lambda p: (-p.score, p.other(submission_id)))[: settings.top_matches]
    return [
        SimilarMatch(
            submission=pair.other(submission_id), score=pair.score, same_candidate=pair.same_candidate,
            flagged=pair.score >= settings.similarity_threshold and not pair.same_candidate,
        )
        for pair in ranked
    ]


def position(scores: Sequence[tuple[str, float]], submission_id: str, settings: CohortSettings) -> CohortPosition | None:
    """Rank (ties share the better one) and percentile rank ((below + level / 2) / n, level counting this one), from
    the (submission id, score) of every member of the same assignment version."""
    mine = next((score for sid, score in scores if sid == submission_id), None)
    if mine is None:
        return None
    below = sum(score < mine for _, score in scores)
    above = sum(score > mine for _, score in scores)
    n = len(scores)
    percentile = round(100 * (below + (n - below - above) / 2) / n, 1) if n >= settings.rank_min_n else None
    return CohortPosition(rank=above + 1, percentile=percentile, n=n)


def expire_snapshots(store: CohortStore, settings: Settings, storage: Storage | None = None) -> int:
    """Remove the kept code past the retention; the members keep their scores. Returns how many were removed."""
    expired = store.expire(utcnow() - timedelta(days=settings.cohort.snapshot_retention_days))
    storage = storage or open_storage(settings)
    for member in expired:
        remove_kept(member.snapshot_path, storage, settings.paths.snapshots_dir)
    return len(expired)


def place_graded(
    report: GradeReport, settings: Settings, engine: Engine, storage: Storage, *, report_path: str | None = None,
) -> GradeReport:
    """`place` for the callers that grade (`grader grade`, the queue's job), then the kept code (the pipeline's
    local `keeping_dir/<id>`) moved into storage: a failure here costs the comparison, never the grade; the
    report then has no `cohort`, which its pages read as "not placed"."""
    if report.status is not Status.graded:
        return report
    kept = settings.paths.keeping_dir / report.id
    try:
        assignment = assignment_or_none(settings.paths.assignments_dir, report.assignment)
        return place(
            report, kept if kept.is_dir() else None, CohortStore(engine), settings,
            boilerplate=assignment.starter_paths if assignment else (), report_path=report_path, storage=storage,
        )
    except Exception:  # the database or the kept code failed us; the grade stands
        log.exception("%s: not placed in its cohort", report.id)
        return report
    finally:
        _keep_in_storage(kept, storage, report.id)


def _keep_in_storage(kept: Path, storage: Storage, submission_id: str) -> None:
    """The local kept code moved to `snapshots/<id>` (on this host's own disk, a rename)."""
    if not kept.is_dir():
        return
    try:
        storage.move_tree(kept, snapshot_key(submission_id))
    except Exception:  # the comparison with later submissions is lost, never the grade
        log.exception("%s: kept code not moved into storage", submission_id)
        shutil.rmtree(kept, ignore_errors=True)
