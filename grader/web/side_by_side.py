"""Two submissions' kept code compared again, with the regions that matched, for the side-by-side page.

A stored pair keeps only its numbers; the spans are taken again from the kept code when a reviewer asks. The kept
code is the candidates': it is read from storage under `snapshots/<id>` (a legacy path only inside `snapshots_dir`:
a stored path is never trusted further, a link never followed out of its tree), bounded in files and characters,
and rendered escaped by the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from grader.cohort.files import open_kept
from grader.cohort.similarity import SCHEME, TreeFingerprint, common_among, compare, fingerprint_tree
from grader.cohort.store import CohortStore, Member
from grader.settings import Settings
from grader.storage import Storage

MAX_FILE_PAIRS = 12
"""Matched file pairs shown, most shared fingerprints first; the rest are counted."""
MAX_SHOWN_CHARS = 400_000
"""Characters of code shown on one page, both sides together."""


@dataclass(frozen=True)
class Piece:
    text: str
    marked: bool


@dataclass(frozen=True)
class FilePair:
    a_path: str
    b_path: str
    shared: int
    a_pieces: list[Piece]
    b_pieces: list[Piece]


@dataclass(frozen=True)
class SideBySide:
    """What the page shows: `expired` names the sides whose code is no longer kept (then nothing is compared)."""

    expired: list[str] = field(default_factory=list)
    score: float | None = None
    a_in_b: float | None = None
    b_in_a: float | None = None
    files: list[FilePair] = field(default_factory=list)
    not_shown: int = 0


def pieces(text: str, spans: Sequence[tuple[int, int]]) -> list[Piece]:
    """The text cut at the spans (sorted, not overlapping, as `compare` merges them), matched pieces marked."""
    out: list[Piece] = []
    at = 0
    for start, end in spans:
        start, end = max(start, at), min(end, len(text))
        if start >= end:
            continue
        if start > at:
            out.append(Piece(text[at:start], False))
        out.append(Piece(text[start:end], True))
        at = end
    if at < len(text):
        out.append(Piece(text[at:], False))
    return out


def _read(root: Path, rel: str) -> str | None:
    """A kept file's text as the fingerprint read it (so the spans' offsets fit), or None if it left its tree."""
    path = (root / rel).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path.read_bytes().decode("utf-8", errors="replace")


def _ignored(cohort: CohortStore, a: Member, b: Member, fingerprints: list[TreeFingerprint], settings: Settings) -> set[int]:
    """The code most of the cohort shares, left out as placement leaves it out (from common_code_min_n members on)."""
    others = [
        stored.hashes for stored in cohort.fingerprints(a.assignment, exclude=a.submission_id)
        if stored.hashes is not None and stored.scheme == SCHEME and stored.submission_id != b.submission_id
    ]
    if len(others) + len(fingerprints) < settings.cohort.common_code_min_n:
        return set()
    mine = [np.asarray(fp.hashes, dtype=np.int64) for fp in fingerprints]
    return set(common_among([*mine, *others], settings.cohort.common_code_share).tolist())


def side_by_side(
    a: Member, b: Member, cohort: CohortStore, settings: Settings, boilerplate: Sequence[Path], storage: Storage,
) -> SideBySide:
    """Fingerprint both kept trees, compare them with regions, and cut each matched file pair into marked pieces."""
    with ExitStack() as stack:
        roots = [stack.enter_context(open_kept(m.snapshot_path, storage, settings.paths.snapshots_dir)) for m in (a, b)]
        expired = [m.submission_id for m, root in zip((a, b), roots, strict=True) if root is None]
        if expired:
            return SideBySide(expired=expired)
        assert roots[0] is not None and roots[1] is not None
        return _compared(roots[0].resolve(), roots[1].resolve(), a, b, cohort, settings, boilerplate)


def _compared(
    root_a: Path, root_b: Path, a: Member, b: Member, cohort: CohortStore, settings: Settings, boilerplate: Sequence[Path],
) -> SideBySide:
    mine, theirs = fingerprint_tree(root_a, boilerplate), fingerprint_tree(root_b, boilerplate)
    found = compare(mine, theirs, _ignored(cohort, a, b, [mine, theirs], settings), regions=True)
    files: list[FilePair] = []
    budget = MAX_SHOWN_CHARS
    for region in found.regions[:MAX_FILE_PAIRS]:
        text_a, text_b = _read(root_a, region.a_path), _read(root_b, region.b_path)
        if text_a is None or text_b is None or len(text_a) + len(text_b) > budget:
            continue
        budget -= len(text_a) + len(text_b)
        files.append(FilePair(region.a_path, region.b_path, region.shared,
                              pieces(text_a, region.a_spans), pieces(text_b, region.b_spans)))
    return SideBySide(score=found.score, a_in_b=found.a_in_b, b_in_a=found.b_in_a, files=files,
                      not_shown=len(found.regions) - len(files))
