"""Fixtures of the unit tests: flask-notes as loaded from the repository, an image record, quick settings."""

from __future__ import annotations

import pytest

from grader.assignments.model import Assignment, load_assignment
from grader.models import SubmissionImage
from grader.settings import PROJECT_ROOT, Settings


@pytest.fixture(scope="session")
def notes() -> Assignment:
    return load_assignment(PROJECT_ROOT / "assignments", "flask-notes")


@pytest.fixture
def image() -> SubmissionImage:
    """A built image as the build stage records it (nothing is built: the fake sandbox takes any tag)."""
    return SubmissionImage(
        submission_id="s-unit", image_id="sha256:x", tag="grader-submission:s-unit", deps_key="k", deps_cached=True,
        requirements_sha256="r",
    )


@pytest.fixture
def quick(settings: Settings) -> Settings:
    """Settings whose boot limit is short: a fake app that never answers fails in a fraction of a second."""
    return settings.replace(boot_timeout_s=0.3)
