"""SQL and markup built from strings: true positives, and the constant and parameterised forms that are fine."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.review import found, review_files

HEAD = """\
from flask import Markup, render_template_string, request
from markupsafe import escape
from sqlalchemy import text

from .extensions import db
from .config import ARCHIVE_TABLE

TABLE = "notes"
"""


def _view(tmp_path: Path, body: str) -> dict:
    """A module whose line 12 is the first line of `body`, inside a view function."""
    source = HEAD + "\n\ndef view(note_id, cursor):\n" + "".join(f"    {line}\n" for line in body.splitlines())
    return review_files(tmp_path, {"app/views.py": source})


# --- grader:sql-from-strings -----------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "how"), [
    ('db.session.execute(text(f"SELECT * FROM notes WHERE id = {note_id}"))', "an f-string"),
    ('cursor.execute("SELECT * FROM notes WHERE id = %s" % note_id)', "% formatting"),
    ('cursor.execute("SELECT * FROM notes WHERE title = \'{}\'".format(request.args["t"]))', ".format()"),
    ('cursor.execute("DELETE FROM notes WHERE id = " + str(note_id))', "string concatenation"),
    ('db.engine.exec_driver_sql(f"UPDATE notes SET likes = likes + 1 WHERE id = {note_id}")', "an f-string"),
])
def test_sql_built_from_a_value_is_security(tmp_path: Path, body: str, how: str) -> None:
    answer = _view(tmp_path, body)
    assert found(answer, "grader:sql-from-strings") == [("grader:sql-from-strings", "security", "app/views.py", 12)]
    assert f"SQL built with {how}" in answer["findings"][0]["message"]


def test_a_query_built_in_a_variable_is_reported_where_it_is_built(tmp_path: Path) -> None:
    answer = _view(tmp_path, 'query = f"SELECT * FROM notes WHERE id = {note_id}"\nreturn cursor.execute(query)')
    assert found(answer, "grader:sql-from-strings") == [("grader:sql-from-strings", "security", "app/views.py", 12)]
    assert "(run by execute() at line 13)" in answer["findings"][0]["message"]


@pytest.mark.parametrize("body", [
    'db.session.execute(text(f"SELECT * FROM {TABLE}"))',
    'db.session.execute(text(f"SELECT * FROM {ARCHIVE_TABLE} WHERE id = :id"), {"id": note_id})',
    'table = "notes"\ncursor.execute(f"SELECT count(*) FROM {table}")',
    'db.session.execute(text("SELECT likes FROM notes WHERE id = :id"), {"id": note_id})',
    'cursor.execute("SELECT * FROM notes WHERE id = ?", (note_id,))',
    'cursor.execute("SELECT * FROM notes WHERE id = %s", (note_id,))',
    'db.session.execute(text(f"SELECT * FROM {Note.__tablename__}"))',
    'job.execute(f"resize {note_id}")',
])
def test_constant_or_parameterised_sql_is_no_finding(tmp_path: Path, body: str) -> None:
    """Table names in constants, literals bound in the same scope and bound parameters are not injections."""
    assert found(_view(tmp_path, body), "grader:sql-from-strings") == []


def test_a_name_rebound_to_a_value_is_not_a_constant(tmp_path: Path) -> None:
    answer = _view(tmp_path, 'table = "notes"\ntable = request.args["t"]\ncursor.execute(f"SELECT * FROM {table}")')
    assert found(answer, "grader:sql-from-strings") == [("grader:sql-from-strings", "security", "app/views.py", 14)]


# --- grader:unsafe-markup --------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    'return Markup(request.args["bio"])',
    'return Markup(f"<b>{request.args[\'bio\']}</b>")',
    'return render_template_string(f"<p>Hello {request.args[\'name\']}</p>")',
    'return render_template_string(request.args["template"])',
    'return render_template_string("<p>" + request.args["name"] + "</p>")',
])
def test_markup_or_a_template_from_a_value_is_security(tmp_path: Path, body: str) -> None:
    assert found(_view(tmp_path, body), "grader:unsafe-markup") == [("grader:unsafe-markup", "security", "app/views.py", 12)]


@pytest.mark.parametrize("body", [
    'return Markup("<b>bold</b>")',
    'return Markup("<b>%s</b>") % request.args["name"]',
    'return Markup(f"<b>{escape(request.args[\'name\'])}</b>")',
    'return render_template_string("<p>{{ name }}</p>", name=request.args["name"])',
    'page = "<p>{{ name }}</p>"\nreturn render_template_string(page, name=note_id)',
])
def test_constant_or_escaped_markup_is_no_finding(tmp_path: Path, body: str) -> None:
    assert found(_view(tmp_path, body), "grader:unsafe-markup") == []


def test_safe_filter_and_autoescape_off_in_templates_are_security(tmp_path: Path) -> None:
    """`|safe` on a value and `{% autoescape false %}` are found; `|tojson|safe` (already escaped) is not."""
    answer = review_files(tmp_path, {"app/templates/note.html": (
        "<h1>{{ note.title }}</h1>\n"
        "<div>{{ note.body | safe }}</div>\n"
        "<script>const data = {{ data|tojson|safe }};</script>\n"
        "{% autoescape false %}{{ note.footer }}{% endautoescape %}\n"
    )})
    assert found(answer, "grader:unsafe-markup") == [
        ("grader:unsafe-markup", "security", "app/templates/note.html", 2),
        ("grader:unsafe-markup", "security", "app/templates/note.html", 4),
    ]


def test_safe_in_an_inline_template_is_found_at_its_line(tmp_path: Path) -> None:
    answer = review_files(tmp_path, {"app.py": (
        "from flask import render_template_string\n\n"
        'PAGE = """<html>\n<p>{{ bio|safe }}</p>\n</html>"""\n\n\n'
        "def page(bio):\n    return render_template_string(PAGE, bio=bio)\n"
    )})
    assert found(answer, "grader:unsafe-markup") == [("grader:unsafe-markup", "security", "app.py", 4)]
