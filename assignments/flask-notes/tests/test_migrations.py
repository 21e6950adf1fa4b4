"""Migrations: the schema comes from Flask-Migrate, checked on a fresh, empty database.

PYTEST_DONT_REWRITE (see conftest.py). Every Flask CLI command imports the app, so the suite runs as
few as it can: `flask db history` (which reads only the migration scripts) once per submission for
its heads, and the upgrade from an empty database once, which later tests reuse while
`app_control.state` says the database is still at the head. Each test still gets the state it
needs on its own (an emptied database and an upgrade) when an earlier test did not leave it there.
The next test that uses `client` gets a fresh, migrated, serving app first.
"""

from __future__ import annotations

import re
import uuid

from conftest import table_columns, table_names

_TAIL = 700
_HEAD_IN_HISTORY = re.compile(r"->\s*([0-9A-Za-z_]+)\s+\((?:[^)]*\b)?head\)")
_AT_HEAD = "migrations:head"
_ONE_BELOW_HEAD = "migrations:head-1"
_HISTORY: dict[str, object] = {}


_ERROR_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*(?:Error|Exception|Exit)\b.*|Error: .*|FAILED.*)$")


def _tail(output: str) -> str:
    """The error line of a failed command (when there is one) and the end of its output."""
    text = output.strip()
    errors = [line.strip() for line in text.splitlines() if _ERROR_LINE.match(line.strip())]
    tail = text if len(text) <= _TAIL else "…" + text[-_TAIL:]
    if errors and errors[-1] not in tail[-200:]:
        return f"{errors[-1][:300]} | output ends: {tail}"
    return tail


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


def _at_head(app_control) -> list[str]:
    """A database upgraded from empty to the head (the previous test's, when it left one); the heads."""
    heads = _heads(app_control)
    if app_control.state != _AT_HEAD:
        app_control.reset_database()
        _run_ok(app_control, "db", "upgrade", why="on an empty database ")
        app_control.state = _AT_HEAD
    return heads


def _alembic_versions(app_control) -> list[str]:
    if "alembic_version" not in table_names(app_control):
        return []
    return [row[0] for row in app_control.sql("SELECT version_num FROM alembic_version")]


def _column(app_control, table: str, name: str) -> dict | None:
    for column in table_columns(app_control, table):
        if column["name"] == name:
            return column
    return None


def test_upgrade_on_empty_database_creates_users_and_notes(app_control):
    """`flask db upgrade` on an empty database succeeds and creates the tables users and notes."""
    _at_head(app_control)
    tables = table_names(app_control)
    assert {"users", "notes"} <= tables, (
        f"after `flask db upgrade` on an empty database, expected tables users and notes, found {sorted(tables)}"
    )


def test_upgrade_leaves_the_single_head(app_control):
    """After `flask db upgrade`, there is exactly one head revision and the database's alembic version is it."""
    heads = _heads(app_control)
    assert len(heads) == 1, f"expected a single head revision, `flask db history` lists {heads} (merge the branches)"
    _at_head(app_control)
    versions = _alembic_versions(app_control)
    assert versions == heads, f"after `flask db upgrade`, expected alembic_version to hold the head {heads[0]!r}, found {versions}"


def test_at_least_two_revisions(app_control):
    """The migrations have at least two revisions (the schema, then notes.word_count)."""
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
    """`flask db downgrade base` then `flask db upgrade` both succeed and rebuild the schema at the head."""
    heads = _at_head(app_control)
    app_control.state = ""
    _run_ok(app_control, "db", "downgrade", "base")
    left = sorted(table_names(app_control) & {"users", "notes"})
    assert not left, f"after `flask db downgrade base`, the tables {left} still exist: the downgrades must drop them"
    _run_ok(app_control, "db", "upgrade", why="after `flask db downgrade base` ")
    tables = table_names(app_control)
    assert {"users", "notes"} <= tables, f"after downgrade base and upgrade, expected users and notes, found {sorted(tables)}"
    versions = _alembic_versions(app_control)
    assert versions == heads[:1], f"after downgrade base and upgrade, expected alembic_version {heads[:1]}, found {versions}"
    app_control.state = _AT_HEAD


def test_newest_revision_adds_word_count(app_control):
    """The newest revision adds notes.word_count as an integer NOT NULL column; one step down removes it."""
    _at_head(app_control)
    column = _column(app_control, "notes", "word_count")
    assert column is not None, "after `flask db upgrade`, the notes table has no word_count column"
    assert "INT" in column["type"] and column["notnull"], (
        f"notes.word_count should be an integer NOT NULL column, found type {column['type']!r}, "
        f"{'NOT NULL' if column['notnull'] else 'nullable'}"
    )
    app_control.state = ""
    _run_ok(app_control, "db", "downgrade", "--", "-1", why="(one revision down) ")
    assert "notes" in table_names(app_control), "after downgrading one revision, the notes table is gone"
    assert _column(app_control, "notes", "word_count") is None, (
        "after downgrading one revision, notes still has word_count: the newest revision must be the one that adds it"
    )
    app_control.state = _ONE_BELOW_HEAD


# --- the data migration -------------------------------------------------------------------------

BODIES = [
    "one two three",
    "",
    "   ",
    "single",
    "  leading and trailing spaces  ",
    "tabs\tand\nnewlines\r\nbetween   words",
    "many    spaces     between",
    " ".join(f"word{i}" for i in range(250)),
]


def _placeholder(column: dict, unique: str) -> object:
    """A value that fits a NOT NULL column the harness does not know (types as SQLite reports them)."""
    kind = column["type"]
    if "BOOL" in kind:
        return 1
    if "INT" in kind:
        return 0
    if any(word in kind for word in ("REAL", "FLOA", "DOUB", "NUMERIC", "DECIMAL")):
        return 0
    if "DATETIME" in kind or "TIMESTAMP" in kind:
        return "2024-01-01 00:00:00.000000"
    if "DATE" in kind:
        return "2024-01-01"
    if "TIME" in kind:
        return "00:00:00.000000"
    if "JSON" in kind:
        return "{}"
    return f"placeholder_{unique}"


def _needs_value(column: dict) -> bool:
    integer_key = column["pk"] and "INT" in column["type"]
    return column["notnull"] and column["default"] is None and not integer_key


def _insert_statement(table: str, values: dict[str, object], raw: dict[str, str] | None = None) -> tuple[str, list]:
    """An INSERT with bound values plus raw SQL expressions (e.g. a sub-select), for app_control.sql."""
    raw = raw or {}
    names = [*values, *raw]
    sql = (
        f'INSERT INTO "{table}" ('
        + ", ".join(f'"{n}"' for n in names)
        + ") VALUES ("
        + ", ".join(["?"] * len(values) + list(raw.values()))
        + ")"
    )
    return sql, list(values.values())


def _owner_reference(app_control) -> tuple[str, str]:
    """(notes column, users column) of the foreign key from notes to users."""
    keys = [c["name"] for c in table_columns(app_control, "users") if c["pk"]]
    users_key = keys[0] if len(keys) == 1 else "rowid"
    for row in app_control.sql('PRAGMA foreign_key_list("notes")'):
        if row[2] == "users":
            return row[3], row[4] or users_key
    names = [c["name"] for c in table_columns(app_control, "notes")]
    for guess in ("user_id", "owner_id", "author_id"):
        if guess in names:
            return guess, users_key
    raise AssertionError(f"could not find the column of notes that refers to users (notes has columns {names})")


def test_data_migration_fills_word_count(app_control):
    """Notes inserted at the previous revision get word_count = number of words of their body on upgrade."""
    if app_control.state != _ONE_BELOW_HEAD:
        _at_head(app_control)
        app_control.state = ""
        _run_ok(app_control, "db", "downgrade", "--", "-1", why="(one revision down) ")
    app_control.state = ""
    assert _column(app_control, "notes", "word_count") is None, (
        "after downgrading one revision, notes still has word_count: the newest revision must be the one that adds it"
    )

    tag = uuid.uuid4().hex[:10]
    user_values = {
        c["name"]: (f"mig_{tag}" if c["name"] == "username" else _placeholder(c, f"{tag}_{c['name']}"))
        for c in table_columns(app_control, "users")
        if _needs_value(c) or c["name"] == "username"
    }
    user_rowid = app_control.sql(_insert_statement("users", user_values), "SELECT last_insert_rowid()")[0][0]

    owner_column, users_column = _owner_reference(app_control)
    note_columns = table_columns(app_control, "notes")
    inserted, statements = {}, []
    for index, body in enumerate(BODIES):
        title = f"mig_{tag}_{index}"
        values = {
            c["name"]: _placeholder(c, f"{tag}_{index}_{c['name']}")
            for c in note_columns
            if _needs_value(c) and c["name"] not in ("title", "body", owner_column)
        }
        values.update(title=title, body=body)
        owner = {owner_column: f'(SELECT "{users_column}" FROM users WHERE rowid = {int(user_rowid)})'}
        statements.append(_insert_statement("notes", values, raw=owner))
        inserted[title] = body
    app_control.sql(*statements)

    _run_ok(app_control, "db", "upgrade", why="with notes inserted at the previous revision ")
    rows = app_control.sql(("SELECT title, body, word_count FROM notes WHERE title LIKE ?", [f"mig_{tag}_%"]))
    found = {title: (body, count) for title, body, count in rows}
    assert set(found) == set(inserted), (
        f"after `flask db upgrade`, expected the {len(inserted)} notes inserted at the previous revision, "
        f"found {len(found)}: the upgrade lost rows"
    )
    wrong = [
        f"body {body[:40]!r}: word_count {found[title][1]!r}, expected {len(body.split())}"
        for title, body in inserted.items()
        if found[title][1] != len(body.split())
    ]
    assert not wrong, (
        f"the data migration computed a wrong word_count for {len(wrong)} of {len(inserted)} existing notes: "
        + "; ".join(wrong[:5])
    )


# Last: it needs a served app, while the tests above need only the idle one the lane starts with.
def test_app_does_not_create_tables_at_start(bare_client, app_control):
    """The app creates no tables at import or start-up (no create_all): the schema comes only from migrations."""
    app_control.reset_database()
    check = _history(app_control, run_now=True)  # imports the app, as any Flask CLI command does
    made_by_cli = sorted(table_names(app_control) & {"users", "notes"})
    app_control.restart(fresh_db=False, setup=False, serve=True)
    bare_client.get("/login")
    bare_client.get("/notes")
    made = sorted(table_names(app_control) & {"users", "notes"})
    when = "importing the app for `flask db history`" if made_by_cli else "starting it and answering two requests"
    assert not made, (
        f"before any `flask db upgrade`, {when} had already created the tables {made}: the schema must come "
        "from the migrations only (no db.create_all() at import or start-up)"
        + ("" if check.exit_code == 0 else f"; `flask db history` also exited {check.exit_code}: {_tail(check.output)}")
    )
