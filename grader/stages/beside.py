"""The parts of a grade that run beside its critical path and never change its score: the static review of the
candidate's code (from the snapshot on) and the candidate's own tests (from the image on).

The candidate's tests start as soon as the image is built when the machine has a lane slot free
(grader/filelock.py), without holding it, so they never delay a hidden lane; when all are taken by other grades
they wait for one, and once this grade's suite is done they run anyway. A failure of ours in either part costs
that part, noted in the report, never the grade.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, TypeVar

from grader.assignments.model import Assignment
from grader.filelock import take_free_slot
from grader.models import CandidateTests, CodeReview, SubmissionImage
from grader.sandbox import Sandbox
from grader.settings import Settings
from grader.stages.candidate_tests import run_candidate_tests
from grader.stages.review import review_code

log = logging.getLogger(__name__)
T = TypeVar("T")
_POLL_S = 0.25


class BesideWork:
    """One grade's review and candidate tests, each in a thread of its own."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="beside")
        self._review: Future[CodeReview] | None = None
        self._tests: Future[CandidateTests] | None = None
        self._suite_done = threading.Event()

    def start_review(self, source: Path) -> None:
        if self.settings.report.code_review:
            self._review = self._pool.submit(review_code, source, self.settings)

    def start_candidate_tests(self, image: SubmissionImage, assignment: Assignment, sandbox: Sandbox, source: Path) -> None:
        if self.settings.report.own_tests:
            self._tests = self._pool.submit(self._candidate_tests, image, assignment, sandbox, source)

    def results(self) -> tuple[CodeReview | None, CandidateTests | None]:
        """Both parts' results, waiting for them within their own time limits; call once the hidden suite has
        ended (or never started), before the job's cleanup: the candidate's tests need no slot any more."""
        self._suite_done.set()
        limit = self.settings.timeouts.review_s + self.settings.timeouts.candidate_tests_s + 30
        review = _result(self._review, limit, lambda exc: CodeReview(error=f"the review failed on our side: {exc}"))
        tests = _result(
            self._tests, limit,
            lambda exc: CandidateTests(ran=False, note=f"the grader could not run them (our failure, not yours): {exc}"),
        )
        self._pool.shutdown(wait=False, cancel_futures=True)
        return review, tests

    def _candidate_tests(self, image: SubmissionImage, assignment: Assignment, sandbox: Sandbox, source: Path) -> CandidateTests:
        slot = self._slot_when_busy()
        try:
            return run_candidate_tests(image, assignment, self.settings, sandbox, source)
        finally:
            if slot is not None:
                slot.close()

    def _slot_when_busy(self) -> IO[str] | None:
        """Nothing to wait for when the machine has a lane slot free: the tests start at once and hold none, so
        they never keep a hidden lane waiting. When every slot is taken (other grades), they wait for one, and
        once this grade's suite is done they run anyway."""
        folder, count = self.settings.paths.lane_slots_dir, self.settings.sandbox.lane_slot_count
        probe = take_free_slot(folder, count)
        if probe is not None:
            probe.close()
            return None
        while not self._suite_done.is_set() and self.settings.sandbox.parallel_lanes:
            slot = take_free_slot(folder, count)
            if slot is not None:
                return slot
            self._suite_done.wait(_POLL_S)
        return None


def _result(future: Future[T] | None, timeout: float, failed: Callable[[str], T]) -> T | None:
    if future is None:
        return None
    try:
        return future.result(timeout=timeout)
    except Exception as exc:  # ours: the part is lost, the grade is not
        log.exception("work beside the grade failed")
        return failed(f"{type(exc).__name__}: {exc}")
