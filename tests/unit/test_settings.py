"""Settings: groups, the flat names of before, secrets masked, the job limit derived and checked."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from grader.settings import FLAT_NAMES, Settings


def test_flat_environment_names_of_before_reach_their_groups(monkeypatch):
    """GRADER_MEMORY, GRADER_BOOT_TIMEOUT_S, GRADER_HARNESS_IMAGE, REDIS_URL... keep working."""
    monkeypatch.setenv("GRADER_MEMORY", "1g")
    monkeypatch.setenv("GRADER_BOOT_TIMEOUT_S", "12")
    monkeypatch.setenv("GRADER_HARNESS_IMAGE", "my-relay:1")
    monkeypatch.setenv("GRADER_RETRY_INTERVALS_S", "[1, 2, 3]")
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2@127.0.0.1:6379/0")
    settings = Settings()
    assert settings.sandbox.memory == "1g" and settings.timeouts.boot_s == 12
    assert settings.sandbox.relay_image == "my-relay:1" and settings.queue.retry_intervals_s == [1, 2, 3]
    assert settings.redis_url == "redis://:hunter2@127.0.0.1:6379/0"


def test_nested_names_win_over_flat_ones(monkeypatch):
    monkeypatch.setenv("GRADER_MEMORY", "1g")
    monkeypatch.setenv("GRADER_SANDBOX__MEMORY", "2g")
    assert Settings().sandbox.memory == "2g"


def test_every_flat_name_maps_to_a_field_of_its_group():
    settings = Settings()
    for name, (group, field) in FLAT_NAMES.items():
        assert hasattr(getattr(settings, group), field), name


def test_secrets_are_masked_where_settings_are_shown():
    settings = Settings(secret_key="s3cret", database_url="postgresql://grader:pw@db/grader", redis_url="redis://:pw2@r:6379/0")
    shown = str(settings.masked())
    assert "s3cret" not in shown and ":pw@" not in shown and "pw2" not in shown
    assert "postgresql+psycopg://grader:***@db/grader" in shown
    assert "s3cret" not in repr(settings)


def test_replace_takes_flat_names_and_validates_again():
    settings = Settings().replace(boot_timeout_s=5, memory="256m")
    assert (settings.timeouts.boot_s, settings.sandbox.memory) == (5, "256m")
    with pytest.raises(ValidationError, match="below the sum of the stage limits"):
        settings.replace(job_timeout_s=10)
    with pytest.raises(ValueError, match="unknown setting"):
        settings.replace(no_such_setting=1)


def test_the_job_limit_is_derived_from_the_stage_limits():
    timeouts = Settings(clone_timeout_s=10, build_timeout_s=20, boot_timeout_s=5, suite_timeout_s=60, candidate_tests_s=30).timeouts
    assert timeouts.job_limit_s == 10 + 20 + 5 + 60 + 30 + 120


def test_jobs_queued_before_the_renovation_still_resolve():
    """RQ imports a queued job's function by name: grader.jobs.grade_job is the queue's grade_job."""
    from rq.utils import import_attribute

    from grader.queue.jobs import grade_job

    assert import_attribute("grader.jobs.grade_job") is grade_job
