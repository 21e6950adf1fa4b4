"""Fingerprints of real flask-notes snapshots: a disguised copy is found, independent solutions and boilerplate are not."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

from grader.assignments.check import make_solution
from grader.cohort.similarity import TreeFingerprint, common_hashes, compare, fingerprint_tree
from grader.settings import PROJECT_ROOT

SOLUTIONS = PROJECT_ROOT / "assignments" / "flask-notes" / "solutions"
REFERENCE = SOLUTIONS / "reference"
GENERATED = ("env.py", "alembic.ini", "script.py.mako", "README")
RENAMES = {
    "notes_app": "jotter", "create_app": "build_application", "overrides": "settings_patch", "init_auth": "setup_login",
    "_load_user": "fetch_account", "_unauthorized": "deny", "authenticate": "verify_credentials",
    "start_session": "open_session", "user": "account", "username": "login_name", "password": "secret_word",
    "response": "resp", "target": "where", "note": "memo", "note_id": "memo_id", "notes": "memos", "data": "payload",
    "count_words": "word_total", "text": "content", "login_manager": "signin", "db": "database", "bp": "blueprint",
    "_own_note_or_404": "memo_of_caller", "InvalidInput": "BadPayload", "NoteNotFound": "MissingMemo",
    "_json_object": "read_json", "_string_field": "text_field", "_title": "clean_title", "_body": "clean_body",
    "list_notes": "all_memos", "create_note": "add_memo", "get_note": "read_memo", "update_note": "edit_memo",
    "delete_note": "drop_memo", "like_note": "upvote", "load_config": "read_settings", "_engine_options": "engine_kwargs",
    "csrf_token": "form_token", "csrf_ok": "token_valid", "api_error": "json_failure", "safe_next": "checked_next",
    "is_api_request": "wants_json", "value": "raw", "exc": "error", "app": "application", "query": "stmt",
    "User": "Member", "Note": "Entry",
}
TINY_A = '''
from flask import Flask, jsonify, request

app = Flask(__name__)
inventory = {}


@app.post("/items/<name>")
def add_item(name):
    quantity = int(request.args.get("quantity", 1))
    inventory[name] = inventory.get(name, 0) + quantity
    return jsonify(name=name, quantity=inventory[name]), 201


@app.get("/items")
def list_items():
    return jsonify(sorted(inventory.items()))
'''
TINY_B = '''
import math

from flask import Flask, abort

application = Flask("calculator")


@application.route("/sqrt/<float:x>")
def square_root(x):
    if x < 0:
        abort(400)
    return {"result": math.sqrt(x)}


@application.route("/fib/<int:n>")
def fibonacci(n):
    a, b = 0, 1
    for _ in range(min(n, 90)):
        a, b = b, a + b
    return {"n": n, "value": a}
'''
SHARED_HELPER = '''
def paginate(query, page, per_page=20):
    """The page of a query's rows, and whether there is a next one."""
    if page < 1 or per_page < 1:
        raise ValueError("page and per_page start at 1")
    rows = query.offset((page - 1) * per_page).limit(per_page + 1).all()
    return rows[:per_page], len(rows) > per_page


def clamp(value, low, high):
    return max(low, min(high, value))
'''


def _disguise(source: str) -> str:
    """The module with docstrings and comments gone, reformatted, every chosen identifier renamed."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            node.body = body[1:] or [ast.Pass()]
    code = ast.unparse(tree)
    code = re.sub(r"\b(" + "|".join(map(re.escape, RENAMES)) + r")\b", lambda m: RENAMES[m.group(1)], code)
    lines = (re.sub(r"^((?:    )+)", lambda m: "  " * (len(m.group(1)) // 4), line) for line in code.splitlines())
    return "\n".join(line for line in lines if line.strip()) + "\n"


def _disguised_reference(dest: Path) -> Path:
    for path in REFERENCE.rglob("*"):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        rel = Path(*(RENAMES.get(part, part) for part in path.relative_to(REFERENCE).parts))
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        text = path.read_text()
        if path.suffix == ".py":
            text = _disguise(text)
        elif path.suffix == ".html":
            text = re.sub(r"\s+", " ", re.sub(r"\b(" + "|".join(RENAMES) + r")\b", lambda m: RENAMES[m.group(1)], text))
        (dest / rel).write_text(text)
    return dest


def _tiny_app(dest: Path, source: str) -> Path:
    (dest / "migrations").mkdir(parents=True)
    (dest / "app.py").write_text(source)
    for name in GENERATED:
        shutil.copy(REFERENCE / "migrations" / name, dest / "migrations" / name)
    return dest


@pytest.fixture(scope="module")
def reference() -> TreeFingerprint:
    return fingerprint_tree(REFERENCE)


@pytest.fixture(scope="module")
def single_module() -> TreeFingerprint:
    return fingerprint_tree(SOLUTIONS / "single-module")


def test_disguised_copy_scores_high(tmp_path: Path, reference: TreeFingerprint, single_module: TreeFingerprint) -> None:
    """Renamed package and identifiers, no comments or docstrings, new layout: still a copy, far above independent code."""
    disguised = _disguised_reference(tmp_path / "jotter-app")
    assert (disguised / "jotter" / "api.py").read_text() != (REFERENCE / "notes_app" / "api.py").read_text()
    copy = compare(fingerprint_tree(disguised), reference)
    independent = compare(reference, single_module)
    assert copy.score > 0.6
    assert copy.score > independent.score + 0.4
    assert {(r.a_path, r.b_path) for r in copy.regions} >= {("jotter/api.py", "notes_app/api.py")}


def test_independent_solutions_score_low(reference: TreeFingerprint, single_module: TreeFingerprint) -> None:
    """Two correct solutions written apart (a package and one module) share little beyond the brief's schema."""
    similarity = compare(reference, single_module)
    assert similarity.score < 0.3
    reverse = compare(single_module, reference)
    assert (reverse.score, reverse.shared, reverse.a_in_b) == (similarity.score, similarity.shared, similarity.b_in_a)


def test_flask_migrate_files_never_count(tmp_path: Path) -> None:
    """Unrelated apps sharing only `flask db init`'s files score near 0, and far higher if those files counted."""
    a, b = _tiny_app(tmp_path / "a", TINY_A), _tiny_app(tmp_path / "b", TINY_B)
    excluded = compare(fingerprint_tree(a), fingerprint_tree(b))
    kept = compare(fingerprint_tree(a, keep_generated=True), fingerprint_tree(b, keep_generated=True))
    assert excluded.score < 0.1
    assert kept.score > 0.5
    assert {r.a_path for r in kept.regions} == {"migrations/env.py"}


def test_alembic_header_and_autogenerated_blocks_never_count(tmp_path: Path) -> None:
    """A migration's revision lines and Alembic's marked commands are blanked; hand-written steps still count."""
    version = tmp_path / "migrations" / "versions" / "abc123_add_things.py"
    version.parent.mkdir(parents=True)
    version.write_text(
        '"""add things\n\nRevision ID: abc123\nRevises:\nCreate Date: 2026-11-22 12:30:00\n\n"""\n'
        "from alembic import op\nimport sqlalchemy as sa\n\n\nrevision = 'abc123'\ndown_revision = None\n"
        "branch_labels = None\ndepends_on = None\n\n\ndef upgrade():\n"
        "    # ### commands auto generated by Alembic - please adjust! ###\n"
        "    op.create_table('things', sa.Column('id', sa.Integer(), nullable=False))\n"
        "    # ### end Alembic commands ###\n\n\ndef downgrade():\n"
        "    # ### commands auto generated by Alembic - please adjust! ###\n    op.drop_table('things')\n"
        "    # ### end Alembic commands ###\n"
    )
    assert fingerprint_tree(tmp_path).hashes == []
    assert fingerprint_tree(tmp_path, keep_generated=True).hashes


def test_starter_files_are_subtracted(tmp_path: Path, reference: TreeFingerprint) -> None:
    """The assignment's starter, passed as boilerplate, counts for no one: its hashes leave every file."""
    starter = tmp_path / "starter"
    shutil.copytree(REFERENCE / "notes_app", starter, ignore=shutil.ignore_patterns("__pycache__"))
    given = fingerprint_tree(starter)
    without = fingerprint_tree(REFERENCE, boilerplate=[starter])
    assert not set(without.hashes) & set(given.hashes)
    assert {f.path.split("/")[0] for f in without.files} <= {"migrations", "tests", "wsgi.py"}
    assert any(f.path.startswith("tests/") for f in reference.files)


def test_flawed_solution_is_the_same_code(tmp_path: Path, reference: TreeFingerprint) -> None:
    """A small patch of the reference (a candidate's resubmission) scores very high, as it should."""
    flawed = fingerprint_tree(make_solution(SOLUTIONS / "lost-likes", tmp_path / "lost-likes"))
    similarity = compare(flawed, reference)
    assert similarity.score > 0.95
    assert similarity.a_in_b < 1 or similarity.b_in_a < 1


def test_serialised_fingerprint_compares_the_same(reference: TreeFingerprint, single_module: TreeFingerprint) -> None:
    """A fingerprint stored as JSON and read back gives the same comparison as the one fingerprinted now."""
    stored = TreeFingerprint.model_validate_json(reference.model_dump_json())
    assert stored == reference
    assert compare(stored, single_module) == compare(reference, single_module)


def test_common_hashes_of_a_cohort_are_ignored(tmp_path: Path) -> None:
    """Code most of a 4-tree cohort shares is dropped: two apps alike only through it no longer look alike."""
    trees = [_tiny_app(tmp_path / "a", TINY_A), _tiny_app(tmp_path / "b", TINY_B)]
    trees += [make_solution(REFERENCE, tmp_path / "reference"), make_solution(SOLUTIONS / "single-module", tmp_path / "single")]
    for tree in trees[:3]:
        (tree / "helpers.py").write_text(SHARED_HELPER)
    cohort = [fingerprint_tree(tree) for tree in trees]
    common = common_hashes(cohort)
    helper = {h for f in cohort[0].files if f.path == "helpers.py" for h in f.spans}
    assert helper and helper <= common
    assert common_hashes(cohort, share=0.75) == set()
    assert compare(cohort[0], cohort[1]).score > 0.3
    assert compare(cohort[0], cohort[1], ignore=common).score < 0.1


def test_other_scheme_is_refused(reference: TreeFingerprint) -> None:
    """Fingerprints taken with other parameters are never compared: the message says to fingerprint again."""
    other = reference.model_copy(update={"scheme": "copydetect-filter/blake2b-64/k30/w4"})
    with pytest.raises(ValueError, match="fingerprint both trees again"):
        compare(reference, other)


def test_links_venvs_and_caches_are_skipped(tmp_path: Path) -> None:
    """Only the candidate's own files: no symlinked file or folder, no virtualenv, .git or __pycache__."""
    (tmp_path / "app.py").write_text(TINY_A)
    for folder in (".git", "venv-x", "__pycache__", "pkg"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "mod.py").write_text(TINY_B)
    (tmp_path / "venv-x" / "pyvenv.cfg").write_text("home = /usr\n")
    (tmp_path / "linked.py").symlink_to(tmp_path / "pkg" / "mod.py")
    (tmp_path / "linked-dir").symlink_to(tmp_path / "pkg")
    assert [f.path for f in fingerprint_tree(tmp_path).files] == ["app.py", "pkg/mod.py"]
