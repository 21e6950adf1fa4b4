"""Configuration from the environment only, with errors that say what to set; the entry points in wsgi.py."""

from __future__ import annotations

import importlib
import sys

import pytest

from jobs_app.config import ConfigError, load_config, sqlalchemy_url

ENV = {
    "DATABASE_URL": "sqlite:////tmp/never-opened.db",
    "REDIS_URL": "memory://",
    "SECRET_KEY": "session-key-0123456789abcdef0123",
    "JWT_SECRET_KEY": "token-key-0123456789abcdef012345",
    "JWT_ACCESS_TOKEN_EXPIRES": "120",
    "IMPORT_MAX_ERRORS": "4",
}


@pytest.fixture
def environment(monkeypatch):
    for name in (*ENV, "CELERY_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_settings_come_from_the_environment(environment):
    environment.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:6399/0")
    config = load_config()
    assert config["JWT_SECRET_KEY"] == ENV["JWT_SECRET_KEY"] != config["SECRET_KEY"]
    assert config["ACCESS_TOKEN_SECONDS"] == 120 and config["IMPORT_MAX_ERRORS"] == 4
    assert config["CELERY"]["broker_url"] == "redis://127.0.0.1:6399/0"  # CELERY_BROKER_URL before REDIS_URL
    assert config["CELERY"]["task_acks_late"] and config["CELERY"]["task_reject_on_worker_lost"]


@pytest.mark.parametrize("name", ["DATABASE_URL", "SECRET_KEY", "JWT_SECRET_KEY", "REDIS_URL"])
def test_a_missing_variable_is_named(environment, name):
    environment.delenv(name)
    with pytest.raises(ConfigError, match=name):
        load_config()


@pytest.mark.parametrize("name, value", [("JWT_ACCESS_TOKEN_EXPIRES", "soon"), ("JWT_ACCESS_TOKEN_EXPIRES", "0"),
                                         ("IMPORT_MAX_ERRORS", "-1"), ("JWT_SECRET_KEY", ENV["SECRET_KEY"])])
def test_a_bad_value_is_refused(environment, name, value):
    environment.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_config()


def test_a_plain_postgresql_url_names_the_installed_driver():
    assert sqlalchemy_url("postgresql://u:p@127.0.0.1:5432/db") == "postgresql+psycopg://u:p@127.0.0.1:5432/db"
    assert sqlalchemy_url("postgresql+psycopg2://h/db") == "postgresql+psycopg2://h/db"


def test_wsgi_exposes_the_app_and_its_celery(environment):
    sys.modules.pop("wsgi", None)
    wsgi = importlib.import_module("wsgi")
    assert wsgi.app.extensions["celery"] is wsgi.celery
    assert wsgi.celery.conf.broker_url == "memory://"
    assert "jobs_app.process_import" in wsgi.celery.tasks


def test_api_errors_are_json_and_pages_keep_html(client):
    for answer in (client.get("/api/nowhere"), client.delete("/api/imports")):
        assert answer.is_json and "error" in answer.get_json() and answer.status_code in (404, 405)
    assert client.get("/nowhere").mimetype == "text/html"
