"""Migrations: the schema comes from Flask-Migrate, on a fresh database."""

import sqlite3

from conftest import describe  # noqa: F401


def test_upgrade_on_empty_database(app_control, tmp_path):
    """`flask db upgrade` on an empty database creates users and notes."""
    app_control.restart(fresh_db=True, setup=False)
    result = app_control.flask("db", "upgrade")
    assert result.exit_code == 0, f"flask db upgrade exited {result.exit_code}: {result.output[-600:]}"
    db = sqlite3.connect(app_control.copy_database(tmp_path))
    tables = {row[0] for row in db.execute("select name from sqlite_master where type='table'")}
    assert {"users", "notes"} <= tables, f"expected tables users and notes, found {sorted(tables)}"


def test_db_check_reports_no_changes(app_control):
    """`flask db check` finds no difference between models and migrations."""
    result = app_control.flask("db", "check")
    assert result.exit_code == 0, f"flask db check exited {result.exit_code}: {result.output[-600:]}"
