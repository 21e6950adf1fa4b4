"""Compatibility: jobs enqueued before the renovation name `grader.jobs.grade_job`; RQ imports it by that name."""

from grader.queue.jobs import grade_job

__all__ = ["grade_job"]
