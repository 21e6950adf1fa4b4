"""Migrations on PostgreSQL: the schema comes from Flask-Migrate, checked on a fresh, empty database.

PYTEST_DONT_REWRITE (see conftest.py). The lane's app starts idle (no `db upgrade`, no server). Every Flask CLI
command imports the app, so the suite runs as few as it can: `flask db history` (which reads only the
migration scripts) once per submission for its heads, and the upgrade from an empty database once, which
later tests reuse while `app_control.state` says the database is still at the head. An empty database is a
new one (`app_control.restart(fresh_db=True, setup=False, serve=False)`: a new database and role).
The last test serves the app and starts the worker on an empty database, to see that neither makes tables.
"""

from __future__ import annotations

import re
import time
import uuid

from conftest import enum_types, needs_value, placeholder, quoted, table_columns, table_names

from grader.errors import BootFailed

_TAIL = 700
_HEAD_IN_HISTORY = re.compile(r"->\s*([0-9A-Za-z_]+)\s+\((?:[^)]*\b)?head\)")
_AT_HEAD = "migrations:head"
_ONE_BELOW_HEAD = "migrations:head-1"
_HISTORY: dict[str, object] = {}
TABLES = {"users", "imports", "records"}
COUNTS = (0, 1, 250)

_ERROR_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*(?:Error|Exception|Exit)\b.*|Error: .*|FAILED.*)$")


def _tail(output: str) -> str:
    """The error line of a failed command (when there is one) and the end of its output."""
    text = output.strip()
    errors = [line.strip() for line in text.splitlines() if _ERROR_LINE.match(line.strip())]
    tail = text if len(text) <= _TAIL else "…" + text[-_TAIL:]
    if errors and errors[-1] not in tail[-200:]:
        return f"{errors[-1][:300]} | output ends: {tail}"
    return tail


def _error_line(output: str) -> str:
    """The last error line of a command's output, else the end of its output."""
    errors = [line.strip() for line in output.strip().splitlines() if _ERROR_LINE.match(line.strip())]
    return errors[-1][:400] if errors else _tail(output)


def _run_ok(app_control, *args: str, why: str = ""):
    """Run `flask --app wsgi ARGS`, failing with its output unless it exits 0."""
    result = app_control.flask(*args)
    command = "flask --app wsgi " + " ".join(args)
    if result.timed_out:
        raise AssertionError(f"`{command}` {why}did not finish within the time limit; its output ends: {_tail(result.output)}")
    assert result.exit_code == 0, (
        f"`{command}` {why}exited {result.exit_code} (expected 0); its output ends: {_tail(result.output)}"
    )
    return result


def _history(app_control, run_now: bool = False):
    """`flask db history`, run once per submission image: it depends only on the migration scripts."""
    key = app_control.pod.image
    if run_now or key not in _HISTORY:
        _HISTORY[key] = app_control.flask("db", "history")
    return _HISTORY[key]


def _heads(app_control) -> list[str]:
    """The head revisions; fails clearly when the repository has no usable Flask-Migrate migrations."""
    result = _history(app_control)
    assert result.exit_code == 0, (
        "the repository has no usable Flask-Migrate migrations (expected a migrations/ folder that "
        f"`flask db upgrade` can apply): `flask --app wsgi db history` exited {result.exit_code}; "
        f"its output ends: {_tail(result.output)}"
    )
    heads = _HEAD_IN_HISTORY.findall(result.output)
    assert heads, (
        "the repository has no Flask-Migrate revisions: `flask --app wsgi db history` listed no head; "
        f"its output ends: {_tail(result.output)}"
    )
    return heads


def _empty_database(app_control) -> None:
    """An empty database for an idle app: the current one when it holds nothing, else a new one."""
    if table_names(app_control) or enum_types(app_control):
        app_control.restart(fresh_db=True, setup=False, serve=False)
    app_control.state = ""


def _at_head(app_control) -> list[str]:
    """A database upgraded from empty to the head (the previous test's, when it left one); the heads."""
    heads = _heads(app_control)
    if app_control.state != _AT_HEAD:
        _empty_database(app_control)
        _run_ok(app_control, "db", "upgrade", why="on an empty database ")
        app_control.state = _AT_HEAD
    return heads


def _alembic_versions(app_control) -> list[str]:
    if "alembic_version" not in table_names(app_control):
        return []
    return [row[0] for row in app_control.sql("SELECT version_num FROM alembic_version")]


def _column(app_control, table: str, name: str):
    return next((c for c in table_columns(app_control, table) if c.name == name), None)


def test_upgrade_on_empty_database_creates_the_tables(app_control):
    """`flask db upgrade` on an empty database succeeds and creates the tables users, imports and records."""
    _at_head(app_control)
    tables = table_names(app_control)
    assert TABLES <= tables, (
        f"after `flask db upgrade` on an empty database, expected the tables {sorted(TABLES)}, found {sorted(tables)}"
    )


def test_upgrade_leaves_the_single_head(app_control):
    """After `flask db upgrade`, there is exactly one head revision and the database's alembic version is it."""
    heads = _heads(app_control)
    assert len(heads) == 1, f"expected a single head revision, `flask db history` lists {heads} (merge the branches)"
    _at_head(app_control)
    versions = _alembic_versions(app_control)
    assert versions == heads, f"after `flask db upgrade`, expected alembic_version to hold the head {heads[0]!r}, found {versions}"


def test_at_least_two_revisions(app_control):
    """The migrations have at least two revisions (the schema, then imports.record_count)."""
    _heads(app_control)
    result = _history(app_control)
    revisions = [line for line in result.output.splitlines() if "->" in line]
    assert len(revisions) >= 2, (
        f"expected at least two revisions, `flask db history` lists {len(revisions)}: {_tail(result.output)}"
    )


def test_db_check_reports_no_changes(app_control):
    """`flask db check` after upgrading finds no difference between the models and the migrations."""
    _at_head(app_control)
    _run_ok(app_control, "db", "check", why="(models against migrations) ")


def test_downgrade_base_then_upgrade(app_control):
    """`flask db downgrade base` drops the tables and the ENUM types the upgrades made; `flask db upgrade` then succeeds."""
    heads = _at_head(app_control)
    types_at_head = enum_types(app_control)
    app_control.state = ""
    _run_ok(app_control, "db", "downgrade", "base")
    left = sorted(table_names(app_control) - {"alembic_version"})
    assert not left, f"after `flask db downgrade base`, the tables {left} still exist: the downgrades must drop them"
    types = [name for name in enum_types(app_control) if name in types_at_head]
    result = app_control.flask("db", "upgrade")
    if result.exit_code != 0 and types:
        raise AssertionError(
            f"after `flask db downgrade base`, the native ENUM types {types} are left behind (op.drop_table does not drop "
            f"them: the downgrade must, e.g. sa.Enum(name={types[0]!r}).drop(op.get_bind())), so `flask db upgrade` "
            f"fails: {_error_line(result.output)}"
        )
    assert result.exit_code == 0, (
        f"`flask --app wsgi db upgrade` after `flask db downgrade base` exited {result.exit_code} (expected 0); "
        f"its output ends: {_tail(result.output)}"
    )
    tables = table_names(app_control)
    assert TABLES <= tables, f"after downgrade base and upgrade, expected {sorted(TABLES)}, found {sorted(tables)}"
    versions = _alembic_versions(app_control)
    assert versions == heads[:1], f"after downgrade base and upgrade, expected alembic_version {heads[:1]}, found {versions}"
    app_control.state = _AT_HEAD


def test_newest_revision_adds_record_count(app_control):
    """The newest revision adds imports.record_count as an integer NOT NULL column; one step down removes it."""
    _at_head(app_control)
    column = _column(app_control, "imports", "record_count")
    assert column is not None, "after `flask db upgrade`, the imports table has no record_count column"
    assert column.type in ("integer", "bigint", "smallint") and column.notnull, (
        f"imports.record_count should be an integer NOT NULL column, found type {column.type!r}, "
        f"{'NOT NULL' if column.notnull else 'nullable'}"
    )
    app_control.state = ""
    _run_ok(app_control, "db", "downgrade", "--", "-1", why="(one revision down) ")
    assert "imports" in table_names(app_control), "after downgrading one revision, the imports table is gone"
    assert _column(app_control, "imports", "record_count") is None, (
        "after downgrading one revision, imports still has record_count: the newest revision must be the one that adds it"
    )
    app_control.state = _ONE_BELOW_HEAD


# --- the data migration -------------------------------------------------------------------------


def _insert(table: str, values: dict[str, tuple[str, list[object]]], returning: str = "id") -> tuple[str, list[object]]:
    """An INSERT of SQL expressions with their parameters, for app_control.sql."""
    names = ", ".join(quoted(name) for name in values)
    exprs = ", ".join(expr for expr, _ in values.values())
    params = [p for _, ps in values.values() for p in ps]
    return f"INSERT INTO {quoted(table)} ({names}) VALUES ({exprs}) RETURNING {quoted(returning)}", params


def _fillers(app_control, table: str, known: set[str], unique: str) -> dict[str, tuple[str, list[object]]]:
    """Placeholders for the table's NOT NULL columns without a default that the grader does not set itself."""
    return {
        c.name: placeholder(c, f"{unique}{index}")
        for index, c in enumerate(table_columns(app_control, table))
        if needs_value(c) and c.name not in known
    }


def test_data_migration_fills_record_count(app_control):
    """Imports inserted at the previous revision with 0, 1 and 250 records get record_count 0, 1 and 250 on upgrade."""
    if app_control.state != _ONE_BELOW_HEAD:
        _at_head(app_control)
        app_control.state = ""
        _run_ok(app_control, "db", "downgrade", "--", "-1", why="(one revision down) ")
    app_control.state = ""
    assert _column(app_control, "imports", "record_count") is None, (
        "after downgrading one revision, imports still has record_count: the newest revision must be the one that adds it"
    )
    tag = uuid.uuid4().hex[:8]
    user = {"username": ("%s", [f"mig_{tag}"]), **_fillers(app_control, "users", {"id", "username"}, f"u{tag}")}
    user_id = app_control.sql(_insert("users", user))[0][0]

    status = _column(app_control, "imports", "status")
    status_type = status.type if status is not None else "text"
    ids = []
    for count in COUNTS:
        values = {
            "user_id": ("%s", [user_id]),
            "status": (f"CAST(%s AS {status_type})", ["done"]),
            **_fillers(app_control, "imports", {"id", "user_id", "status"}, f"i{tag}{count}"),
        }
        ids.append(app_control.sql(_insert("imports", values))[0][0])

    known = ["import_id", "row_no", "email", "name", "amount"]
    extra = _fillers(app_control, "records", set(known), f"r{tag}")
    names = ", ".join(quoted(n) for n in [*known, *extra])
    statements = []
    for import_id, count in zip(ids, COUNTS, strict=True):
        if not count:
            continue
        exprs = {
            "import_id": ("%s", [import_id]), "row_no": ("g", []), "email": ("'r' || g || '@example.com'", []),
            "name": ("'name ' || g", []), "amount": ("1.00", []), **extra,
        }
        ordered = [exprs[n] for n in [*known, *extra]]
        sql = f"INSERT INTO records ({names}) SELECT {', '.join(e for e, _ in ordered)} FROM generate_series(1, {count}) AS g"
        statements.append((sql, [p for _, ps in ordered for p in ps]))
    app_control.sql(*statements)

    _run_ok(app_control, "db", "upgrade", why="with imports inserted at the previous revision ")
    rows = app_control.sql(("SELECT id, record_count FROM imports WHERE id = ANY(%s)", [ids]))
    found = {row[0]: row[1] for row in rows}
    assert set(found) == set(ids), (
        f"after `flask db upgrade`, expected the {len(ids)} imports inserted at the previous revision, "
        f"found {len(found)}: the upgrade lost rows"
    )
    wrong = [
        f"an import with {count} records has record_count {found[import_id]!r}"
        for import_id, count in zip(ids, COUNTS, strict=True)
        if found[import_id] != count
    ]
    assert not wrong, (
        "the data migration must fill record_count of existing imports with their number of records: "
        + "; ".join(wrong)
    )
    app_control.state = _AT_HEAD


# Last: it serves the app and starts the worker, while the tests above need only the idle app the lane starts with.
def test_app_and_worker_create_no_tables(bare_client, app_control):
    """Importing the app, serving it and starting the Celery worker on an empty database create no tables."""
    app_control.restart(fresh_db=True, setup=False, serve=False)
    check = _history(app_control, run_now=True)  # imports the app, as any Flask CLI command does
    made = {"importing the app for `flask db history`": sorted(table_names(app_control))}
    app_control.restart(fresh_db=False, setup=False, serve=True)
    bare_client.get("/login")
    bare_client.get("/imports")
    made["serving it (Gunicorn, GET /login and GET /imports)"] = sorted(table_names(app_control))
    try:
        app_control.worker.start()
    except BootFailed as exc:
        raise AssertionError(f"the Celery worker did not become ready on an empty database: {exc.reason}") from None
    time.sleep(1)
    made["starting the Celery worker"] = sorted(table_names(app_control))
    first = next(((when, tables) for when, tables in made.items() if tables), None)
    assert first is None, (
        f"before any `flask db upgrade`, {first[0]} had already created the tables {first[1]}: the schema must come "
        "from the migrations only (no db.create_all() at import or start-up, in the web app or the worker)"
        + ("" if check.exit_code == 0 else f"; `flask db history` also exited {check.exit_code}: {_tail(check.output)}")
    )
