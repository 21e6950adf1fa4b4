"""Migrations: down and up again, and the record_count data migration."""

from __future__ import annotations

from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from jobs_app.extensions import db

from .conftest import MIGRATIONS


def test_record_count_is_filled_for_existing_imports(app):
    with app.app_context():
        downgrade(directory=str(MIGRATIONS), revision="-1")
        assert "record_count" not in {c["name"] for c in inspect(db.engine).get_columns("imports")}
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO users (id, username, password_hash) VALUES (1, 'u', 'x')"))
            for import_id, count in ((1, 0), (2, 1), (3, 250)):
                conn.execute(text("INSERT INTO imports (id, user_id, filename, csv_text, status) "
                                  "VALUES (:i, 1, 'f.csv', '', 'done')"), {"i": import_id})
                if count:
                    conn.execute(text("INSERT INTO records (import_id, row_no, email, name, amount) "
                                      "VALUES (:i, :n, 'a@b.co', 'A', 1)"),
                                 [{"i": import_id, "n": n} for n in range(1, count + 1)])
        upgrade(directory=str(MIGRATIONS))
        with db.engine.connect() as conn:
            counts = conn.execute(text("SELECT record_count FROM imports ORDER BY id")).scalars().all()
    assert counts == [0, 1, 250]


def test_downgrade_to_base_and_upgrade_again(app):
    with app.app_context():
        downgrade(directory=str(MIGRATIONS), revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade(directory=str(MIGRATIONS))
        assert {"users", "imports", "records"} <= set(inspect(db.engine).get_table_names())
