"""The cohort's rows: one `Member` per graded submission, one `Pair` per two submissions of an assignment compared.

A member keeps what the cohort views need without reading anyone's report (score, categories, each test's outcome)
and the code fingerprint new submissions are compared with (packed signed 64-bit hashes). A pair is stored once,
under its two ids in sorted order, so two workers placing at the same moment write the same row. Deleting a
submission removes its member and every pair that names it; expiry (retention) removes only the kept code and its
fingerprint: the score stays in the rank, the pairs keep their numbers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine, delete, or_, select, update

from grader.db.schema import candidate_links, cohort_members, similar_pairs, submissions

_PACKED = np.dtype("<i8")


def pack(hashes: Sequence[int]) -> bytes:
    """Signed 64-bit hashes as little-endian bytes: 8 bytes each, read back as an array without parsing."""
    return np.asarray(hashes, dtype=_PACKED).tobytes()


def unpack(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=_PACKED)


@dataclass(frozen=True)
class StoredFingerprint:
    """What comparing a new member with a stored one needs: its hashes as an array, and who it is."""

    submission_id: str
    candidate: str | None
    scheme: str | None
    snapshot_path: str | None
    hashes: np.ndarray | None


class CategoryResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    score: float
    max_score: float
    passed: int
    total: int


class TestResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    __test__ = False  # a model, not a pytest test class

    id: str
    category: str
    title: str
    outcome: str


class Member(BaseModel):
    """A graded submission as the cohort sees it."""

    model_config = ConfigDict(frozen=True)

    submission_id: str
    assignment: str
    assignment_version: str | None
    candidate: str | None
    score: float
    max_score: float
    graded_at: datetime
    categories: list[CategoryResult]
    tests: list[TestResult]
    report_path: str | None = None
    snapshot_path: str | None = None
    scheme: str | None = None
    hashes: list[int] | None = None


class Pair(BaseModel):
    """Two submissions compared; `a` < `b`. `a_in_b` is the share of a's fingerprints found in b."""

    model_config = ConfigDict(frozen=True)

    a: str
    b: str
    assignment: str
    score: float
    a_in_b: float
    b_in_a: float
    shared: int
    same_candidate: bool
    computed_at: datetime

    def other(self, submission_id: str) -> str:
        return self.b if submission_id == self.a else self.a


def _member(row: Any, *, with_hashes: bool) -> Member:
    values = dict(row)
    blob = values.pop("fingerprint", None)
    values["categories"] = json.loads(values["categories"])
    values["tests"] = json.loads(values["tests"])
    values["hashes"] = unpack(blob).tolist() if with_hashes and blob is not None else None
    return Member.model_validate(values)


class CohortStore:
    """Reads and writes of the cohort tables; the database engine is passed in."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def put_member(self, member: Member) -> None:
        """Insert or replace (a regrade) the member; its old pairs go, as they compared the old code."""
        values = member.model_dump(exclude={"hashes", "categories", "tests"})
        values.update(
            categories=json.dumps([c.model_dump() for c in member.categories]),
            tests=json.dumps([t.model_dump() for t in member.tests]),
            fingerprint=pack(member.hashes) if member.hashes is not None else None,
        )
        with self.engine.begin() as conn:
            conn.execute(delete(cohort_members).where(cohort_members.c.submission_id == member.submission_id))
            conn.execute(delete(similar_pairs).where(_names(member.submission_id)))
            conn.execute(cohort_members.insert().values(**values))

    def member(self, submission_id: str, *, with_hashes: bool = False) -> Member | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(cohort_members).where(cohort_members.c.submission_id == submission_id)
            ).mappings().first()
        return _member(row, with_hashes=with_hashes) if row else None

    def members(self, assignment: str, *, version: str | None = None) -> list[Member]:
        """The assignment's members, oldest first, without their fingerprints; only those of `version` when given."""
        query = select(*[c for c in cohort_members.c if c.name != "fingerprint"]).where(cohort_members.c.assignment == assignment)
        if version is not None:
            query = query.where(cohort_members.c.assignment_version == version)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(cohort_members.c.graded_at)).mappings().all()
        return [_member(row, with_hashes=False) for row in rows]

    def fingerprints(self, assignment: str, *, exclude: str) -> list[StoredFingerprint]:
        """Every other member's fingerprint (None when its code expired), read straight into arrays."""
        c = cohort_members.c
        query = select(c.submission_id, c.candidate, c.scheme, c.snapshot_path, c.fingerprint).where(
            (c.assignment == assignment) & (c.submission_id != exclude)
        ).order_by(c.graded_at)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [StoredFingerprint(r[0], r[1], r[2], r[3], unpack(r[4]) if r[4] is not None else None) for r in rows]

    def scores(self, assignment: str, version: str | None) -> list[tuple[str, float]]:
        """(submission id, score) of the members of one assignment version: all a rank needs."""
        c = cohort_members.c
        query = select(c.submission_id, c.score).where(
            (c.assignment == assignment) & (c.assignment_version.is_(None) if version is None else c.assignment_version == version)
        )
        with self.engine.connect() as conn:
            return [(row[0], row[1]) for row in conn.execute(query)]

    def set_fingerprint(self, submission_id: str, scheme: str, hashes: Sequence[int]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(cohort_members).where(cohort_members.c.submission_id == submission_id)
                .values(scheme=scheme, fingerprint=pack(hashes))
            )

    def put_pairs(self, pairs: Sequence[Pair]) -> None:
        if not pairs:
            return
        with self.engine.begin() as conn:
            for pair in pairs:
                conn.execute(delete(similar_pairs).where((similar_pairs.c.a == pair.a) & (similar_pairs.c.b == pair.b)))
            conn.execute(similar_pairs.insert(), [pair.model_dump() for pair in pairs])

    def pairs_of(self, submission_id: str) -> list[Pair]:
        """Every pair naming this submission, closest first."""
        query = select(similar_pairs).where(_names(submission_id)).order_by(similar_pairs.c.score.desc())
        with self.engine.connect() as conn:
            return [Pair.model_validate(dict(row)) for row in conn.execute(query).mappings()]

    def pair(self, one: str, two: str) -> Pair | None:
        a, b = sorted((one, two))
        with self.engine.connect() as conn:
            row = conn.execute(
                select(similar_pairs).where((similar_pairs.c.a == a) & (similar_pairs.c.b == b))
            ).mappings().first()
        return Pair.model_validate(dict(row)) if row else None

    def pairs_at_least(self, assignment: str, score: float) -> list[Pair]:
        query = (
            select(similar_pairs)
            .where((similar_pairs.c.assignment == assignment) & (similar_pairs.c.score >= score))
            .order_by(similar_pairs.c.score.desc())
        )
        with self.engine.connect() as conn:
            return [Pair.model_validate(dict(row)) for row in conn.execute(query).mappings()]

    def candidate_of(self, submission_id: str) -> str | None:
        """Who submitted it, as far as we know: the invitation it came through, else the recorded submitter."""
        with self.engine.connect() as conn:
            invitation = conn.execute(
                select(candidate_links.c.invitation_id).where(candidate_links.c.submission_id == submission_id)
            ).scalar()
            if invitation is not None:
                return f"invitation:{invitation}"
            submitter = conn.execute(select(submissions.c.submitter).where(submissions.c.id == submission_id)).scalar()
        return f"submitter:{submitter}" if submitter else None

    def delete(self, submission_id: str) -> Member | None:
        """Remove the member and every pair naming it; the removed member is returned (its snapshot is the caller's)."""
        member = self.member(submission_id)
        with self.engine.begin() as conn:
            conn.execute(delete(similar_pairs).where(_names(submission_id)))
            conn.execute(delete(cohort_members).where(cohort_members.c.submission_id == submission_id))
        return member

    def expire(self, graded_before: datetime) -> list[Member]:
        """Forget the kept code of members graded before the cut-off; returns them, so the caller removes the files."""
        kept = (cohort_members.c.graded_at < graded_before) & (
            cohort_members.c.snapshot_path.is_not(None) | cohort_members.c.fingerprint.is_not(None)
        )
        columns = [c for c in cohort_members.c if c.name != "fingerprint"]
        with self.engine.begin() as conn:
            rows = conn.execute(select(*columns).where(kept)).mappings().all()
            if rows:
                conn.execute(update(cohort_members).where(kept).values(snapshot_path=None, scheme=None, fingerprint=None))
        return [_member(row, with_hashes=False) for row in rows]


def _names(submission_id: str) -> Any:
    return or_(similar_pairs.c.a == submission_id, similar_pairs.c.b == submission_id)
