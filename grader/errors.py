"""The grader's failures, in one tree.

    GraderError
    ├── SubmissionError      the candidate's: becomes a graded report with the reason
    │   ├── Rejected         the source could not be fetched or is not allowed   -> `rejected`
    │   ├── BuildFailed      requirements missing or not installable             -> `build_failed`
    │   └── BootFailed       the app never answered HTTP                         -> `boot_failed`
    └── InfraError           ours: engine or Redis unreachable; retried, never shown as a score
"""

from __future__ import annotations


class GraderError(Exception):
    """Base of every error the grader raises on purpose."""

    status = "infra_error"

    def __init__(self, reason: str, *, log_tail: str = "", limit: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.log_tail = log_tail
        self.limit = limit


class SubmissionError(GraderError):
    """A fault of the submission: graded, with a reason the candidate understands."""


class Rejected(SubmissionError):
    status = "rejected"


class BuildFailed(SubmissionError):
    status = "build_failed"


class BootFailed(SubmissionError):
    status = "boot_failed"


class InfraError(GraderError):
    """A fault of the grader's machinery; the job is retried."""

    status = "infra_error"
