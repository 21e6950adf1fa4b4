"""Reasons distilled from logs: real Flask and Gunicorn output in, one line naming the cause out."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader.errors import BootFailed
from grader.sandbox import forkserver
from grader.stages import boot, lanes
from grader.stages.diagnose import (
    entry_point,
    explain_boot_failure,
    find_importers,
    parse_tracebacks,
    refine_boot_failure,
)

# Real app containers' output (flask-notes reference, graded by `grader grade`, one line changed each).
MISSING_MARKDOWN = '''Error: While importing 'wsgi', an ImportError was raised:

Traceback (most recent call last):
  File "/opt/venv/lib/python3.11/site-packages/flask/cli.py", line 245, in locate_app
    __import__(module_name)
  File "/app/wsgi.py", line 5, in <module>
    app = create_app()
          ^^^^^^^^^^^^
  File "/app/notes_app/__init__.py", line 27, in create_app
    from .pages import bp as pages_bp
  File "/app/notes_app/pages.py", line 5, in <module>
    import markdown
ModuleNotFoundError: No module named 'markdown'


Usage: flask [OPTIONS] COMMAND [ARGS]...
Try 'flask --help' for help.

Error: No such command 'db'.
[setup] 'flask --app wsgi db upgrade' failed
!!!
!!! WARNING: configuration file should have a valid Python extension.
!!!

[2026-12-01 10:20:42 +0000] [1] [INFO] Starting gunicorn 23.0.0
[2026-12-01 10:20:42 +0000] [1] [INFO] Listening at: http://127.0.0.1:8000 (1)
[2026-12-01 10:20:42 +0000] [1] [INFO] Using worker: sync
[2026-12-01 10:20:42 +0000] [8] [INFO] Booting worker with pid: 8
[2026-12-01 10:20:42 +0000] [8] [ERROR] Exception in worker process
Traceback (most recent call last):
  File "/opt/venv/lib/python3.11/site-packages/gunicorn/arbiter.py", line 608, in spawn_worker
    worker.init_process()
  File "/opt/venv/lib/python3.11/site-packages/gunicorn/workers/base.py", line 135, in init_process
    self.load_wsgi()
  File "/opt/venv/lib/python3.11/site-packages/gunicorn/workers/base.py", line 147, in load_wsgi
    self.wsgi = self.app.wsgi()
                ^^^^^^^^^^^^^^^
  File "/opt/venv/lib/python3.11/site-packages/gunicorn/app/base.py", line 66, in wsgi
    self.callable = self.load()
                    ^^^^^^^^^^^
  File "/opt/venv/lib/python3.11/site-packages/gunicorn/app/wsgiapp.py", line 57, in load
    return self.load_wsgiapp()
           ^^^^^^^^^^^^^^^^^^^
  File "/opt/venv/lib/python3.11/site-packages/gunicorn/app/wsgiapp.py", line 47, in load_wsgiapp
    return util.import_app(self.app_uri)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/opt/venv/lib/python3.11/site-packages/gunicorn/util.py", line 370, in import_app
    mod = importlib.import_module(module)
          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/usr/lib/python3.11/importlib/__init__.py", line 126, in import_module
    return _bootstrap._gcd_import(name[level:], package, level)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "<frozen importlib._bootstrap>", line 1206, in _gcd_import
  File "<frozen importlib._bootstrap>", line 1178, in _find_and_load
  File "<frozen importlib._bootstrap>", line 1149, in _find_and_load_unlocked
  File "<frozen importlib._bootstrap>", line 690, in _load_unlocked
  File "<frozen importlib._bootstrap_external>", line 940, in exec_module
  File "<frozen importlib._bootstrap>", line 241, in _call_with_frames_removed
  File "/app/wsgi.py", line 5, in <module>
    app = create_app()
          ^^^^^^^^^^^^
  File "/app/notes_app/__init__.py", line 27, in create_app
    from .pages import bp as pages_bp
  File "/app/notes_app/pages.py", line 5, in <module>
    import markdown
ModuleNotFoundError: No module named 'markdown'
[2026-12-01 10:20:42 +0000] [8] [INFO] Worker exiting (pid: 8)
[2026-12-01 10:20:42 +0000] [1] [ERROR] Worker (pid:8) exited with code 3
[2026-12-01 10:20:42 +0000] [1] [ERROR] Shutting down: Master
[2026-12-01 10:20:42 +0000] [1] [ERROR] Reason: Worker failed to boot.

'''
CRASHING_CONFIG = '''Traceback (most recent call last):
  File "/usr/local/lib/grader/forkserver.py", line 125, in _finish_child
    run_command(argv, scripts)
  File "/usr/local/lib/grader/forkserver.py", line 109, in run_command
    sys.exit(function())
             ^^^^^^^^^^
  File "/opt/venv/lib/python3.11/site-packages/flask/cli.py", line 1131, in main
    cli.main()
  File "/opt/venv/lib/python3.11/site-packages/click/core.py", line 1560, in main
    rv = self.invoke(ctx)
         ^^^^^^^^^^^^^^^^
  File "/opt/venv/lib/python3.11/site-packages/click/core.py", line 2048, in invoke
    cmd_name, cmd, args = self.resolve_command(ctx, args)
                          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/opt/venv/lib/python3.11/site-packages/click/core.py", line 2094, in resolve_command
    cmd = self.get_command(ctx, cmd_name)
          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/opt/venv/lib/python3.11/site-packages/flask/cli.py", line 631, in get_command
    app = info.load_app()
          ^^^^^^^^^^^^^^^
  File "/opt/venv/lib/python3.11/site-packages/flask/cli.py", line 349, in load_app
    app = locate_app(import_name, name)
          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/opt/venv/lib/python3.11/site-packages/flask/cli.py", line 245, in locate_app
    __import__(module_name)
  File "/app/wsgi.py", line 3, in <module>
    from notes_app import create_app
  File "/app/notes_app/__init__.py", line 9, in <module>
    from .config import load_config
  File "/app/notes_app/config.py", line 9, in <module>
    _DB = os.environ["NOTES_DB_URL"]
          ~~~~~~~~~~^^^^^^^^^^^^^^^^
  File "<frozen os>", line 679, in __getitem__
KeyError: 'NOTES_DB_URL'
[setup] 'flask --app wsgi db upgrade' failed
!!!
!!! WARNING: configuration file should have a valid Python extension.
!!!

[2026-12-01 10:20:45 +0000] [1] [INFO] Starting gunicorn 23.0.0
[2026-12-01 10:20:45 +0000] [1] [INFO] Listening at: http://127.0.0.1:8000 (1)
[2026-12-01 10:20:45 +0000] [1] [INFO] Using worker: sync
[2026-12-01 10:20:45 +0000] [8] [INFO] Booting worker with pid: 8
[2026-12-01 10:20:45 +0000] [8] [ERROR] Exception in worker process
Traceback (most recent call last):
  File "/opt/venv/lib/python3.11/site-packages/gunicorn/arbiter.py", line 608, in spawn_worker
    worker.init_process()
  File "/opt/venv/lib/python3.11/site-packages/gunicorn/workers/base.py", line 135, in init_process
    self.load_wsgi()
  File "/opt/venv/lib/python3.11/site-packages/gunicorn/workers/base.py", line 147, in load_wsgi
    self.wsgi = self.app.wsgi()
                ^^^^^^^^^^^^^^^
  File "/opt/venv/lib/python3.11/site-packages/gunicorn/app/base.py", line 66, in wsgi
    self.callable = self.load()
                    ^^^^^^^^^^^
  File "/opt/venv/lib/python3.11/site-packages/gunicorn/app/wsgiapp.py", line 57, in load
    return self.load_wsgiapp()
           ^^^^^^^^^^^^^^^^^^^
  File "/opt/venv/lib/python3.11/site-packages/gunicorn/app/wsgiapp.py", line 47, in load_wsgiapp
    return util.import_app(self.app_uri)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/opt/venv/lib/python3.11/site-packages/gunicorn/util.py", line 370, in import_app
    mod = importlib.import_module(module)
          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/usr/lib/python3.11/importlib/__init__.py", line 126, in import_module
    return _bootstrap._gcd_import(name[level:], package, level)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "<frozen importlib._bootstrap>", line 1206, in _gcd_import
  File "<frozen importlib._bootstrap>", line 1178, in _find_and_load
  File "<frozen importlib._bootstrap>", line 1149, in _find_and_load_unlocked
  File "<frozen importlib._bootstrap>", line 690, in _load_unlocked
  File "<frozen importlib._bootstrap_external>", line 940, in exec_module
  File "<frozen importlib._bootstrap>", line 241, in _call_with_frames_removed
  File "/app/wsgi.py", line 3, in <module>
    from notes_app import create_app
  File "/app/notes_app/__init__.py", line 9, in <module>
    from .config import load_config
  File "/app/notes_app/config.py", line 9, in <module>
    _DB = os.environ["NOTES_DB_URL"]
          ~~~~~~~~~~^^^^^^^^^^^^^^^^
  File "<frozen os>", line 679, in __getitem__
KeyError: 'NOTES_DB_URL'
[2026-12-01 10:20:45 +0000] [8] [INFO] Worker exiting (pid: 8)
[2026-12-01 10:20:45 +0000] [1] [ERROR] Worker (pid:8) exited with code 3
[2026-12-01 10:20:45 +0000] [1] [ERROR] Shutting down: Master
[2026-12-01 10:20:45 +0000] [1] [ERROR] Reason: Worker failed to boot.

'''
GUNICORN_HEAD = """[2026-12-01 10:16:52 +0000] [1] [INFO] Starting gunicorn 23.0.0
[2026-12-01 10:16:52 +0000] [1] [INFO] Listening at: http://127.0.0.1:8000 (1)
[2026-12-01 10:16:52 +0000] [1] [INFO] Using worker: sync
[2026-12-01 10:16:52 +0000] [8] [INFO] Booting worker with pid: 8
"""
GUNICORN_IMPORT = """[2026-12-01 10:16:52 +0000] [8] [ERROR] Exception in worker process
Traceback (most recent call last):
  File "/opt/venv/lib/python3.11/site-packages/gunicorn/arbiter.py", line 608, in spawn_worker
    worker.init_process()
  File "/opt/venv/lib/python3.11/site-packages/gunicorn/util.py", line 370, in import_app
    mod = importlib.import_module(module)
          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/usr/lib/python3.11/importlib/__init__.py", line 126, in import_module
    return _bootstrap._gcd_import(name[level:], package, level)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "<frozen importlib._bootstrap>", line 1206, in _gcd_import
  File "<frozen importlib._bootstrap>", line 1178, in _find_and_load
"""
GUNICORN_EXIT = """[2026-12-01 10:16:52 +0000] [8] [INFO] Worker exiting (pid: 8)
[2026-12-01 10:16:52 +0000] [1] [ERROR] Worker (pid:8) exited with code 3
[2026-12-01 10:16:52 +0000] [1] [ERROR] Shutting down: Master
[2026-12-01 10:16:52 +0000] [1] [ERROR] Reason: Worker failed to boot.
"""
FLASK_USAGE = """Usage: flask [OPTIONS] COMMAND [ARGS]...
Try 'flask --help' for help.

Error: No such command 'db'.
[setup] 'flask --app wsgi db upgrade' failed
"""
NO_WSGI = (
    "Error: Could not import 'wsgi'.\n\n" + FLASK_USAGE + GUNICORN_HEAD + GUNICORN_IMPORT
    + '  File "<frozen importlib._bootstrap>", line 1140, in _find_and_load_unlocked\n'
    "ModuleNotFoundError: No module named 'wsgi'\n" + GUNICORN_EXIT
)
NO_APP = FLASK_USAGE + GUNICORN_HEAD + """Failed to find attribute 'app' in 'wsgi'.
[2026-12-01 10:16:53 +0000] [8] [INFO] Worker exiting (pid: 8)
[2026-12-01 10:16:53 +0000] [1] [ERROR] Worker (pid:8) exited with code 4
[2026-12-01 10:16:53 +0000] [1] [ERROR] Shutting down: Master
[2026-12-01 10:16:53 +0000] [1] [ERROR] Reason: App failed to load.
"""
SYNTAX_ERROR = """Traceback (most recent call last):
  File "/usr/local/lib/grader/forkserver.py", line 125, in _finish_child
    run_command(argv, scripts)
  File "/opt/venv/lib/python3.11/site-packages/flask/cli.py", line 245, in locate_app
    __import__(module_name)
  File "/app/wsgi.py", line 2
    app = Flask(__name__
               ^
SyntaxError: '(' was never closed
[setup] 'flask --app wsgi db upgrade' failed
"""


def booted(log: str, limit: str | None = None) -> BootFailed:
    return BootFailed("the app exited with code 3 before answering HTTP; see its output below", log_tail=log, limit=limit)


def test_a_module_not_installed_is_named_with_the_file_that_imports_it():
    """The traceback's last frame under /app is the importer, with its line; the fix is said."""
    assert explain_boot_failure(MISSING_MARKDOWN) == (
        "`markdown` is imported by `notes_app/pages.py` (line 5) but is not in your dependencies: "
        "add it to requirements.txt (or your pyproject)"
    )


def test_a_submodule_not_installed_names_its_distribution():
    """`import yaml.constructor` is PyYAML's: the top-level module and its name on PyPI."""
    log = MISSING_MARKDOWN.replace("import markdown", "import yaml.constructor").replace("'markdown'", "'yaml'")
    assert explain_boot_failure(log).startswith(
        "`yaml` is imported by `notes_app/pages.py` (line 5) but is not in your dependencies (on PyPI it is `PyYAML`)"
    )


def test_a_submodule_that_does_not_exist_is_not_called_a_missing_dependency():
    """`No module named 'sqlalchemy.error'`: Python names the parent when the parent is missing, so here the
    parent was imported and only the submodule is wrong (a typo, or renamed in the pinned version)."""
    log = MISSING_MARKDOWN.replace("import markdown", "from sqlalchemy.error import IntegrityError").replace(
        "'markdown'", "'sqlalchemy.error'")
    assert explain_boot_failure(log) == (
        "`sqlalchemy.error` is imported by `notes_app/pages.py` (line 5) but does not exist: `sqlalchemy` is "
        "installed and has no module `error`; check the name against the version of `sqlalchemy` you pinned"
    )


def test_without_a_candidate_frame_the_importer_is_found_in_the_snapshot(tmp_path: Path):
    """No frame under /app (the log was cut): a static scan of the snapshot names the importer."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "views.py").write_text("from flask import Blueprint\n\nfrom markdown import markdown\n")
    (tmp_path / "pkg" / "other.py").write_text("import markdown.extensions\n")
    log = "ModuleNotFoundError: No module named 'markdown'\n"
    log = "Traceback (most recent call last):\n  File \"<frozen importlib._bootstrap>\", line 1, in x\n" + log
    assert explain_boot_failure(log, source=tmp_path) == (
        "`markdown` is imported by `pkg/other.py` (line 1) and 1 more file but is not in your dependencies: "
        "add it to requirements.txt (or your pyproject)"
    )
    assert explain_boot_failure(log).startswith("`markdown` is imported but is not in your dependencies")


def test_a_module_a_library_needs_is_not_blamed_on_the_candidates_import():
    """flask_sqlalchemy imports sqlalchemy, which is missing: the candidate's file imports the library, not it."""
    log = MISSING_MARKDOWN.replace(
        "    import markdown\nModuleNotFoundError: No module named 'markdown'",
        "    from flask_sqlalchemy import SQLAlchemy\n"
        '  File "/opt/venv/lib/python3.11/site-packages/flask_sqlalchemy/__init__.py", line 5, in <module>\n'
        "    from .extension import SQLAlchemy\n"
        '  File "<frozen importlib._bootstrap>", line 1178, in _find_and_load\n'
        "ModuleNotFoundError: No module named 'sqlalchemy'",
    )
    assert explain_boot_failure(log) == (
        "`sqlalchemy` is not installed: a library that `notes_app/pages.py` (line 5) imports needs it; "
        "add it to requirements.txt (or your pyproject)"
    )


def test_a_missing_module_of_the_candidates_own_package_is_not_a_dependency(tmp_path: Path):
    """`from .views import bp` with no views.py: the module is missing from the repository, not from requirements."""
    log = MISSING_MARKDOWN.replace("import markdown", "from .views import bp").replace(
        "'markdown'", "'notes_app.views'"
    )
    assert explain_boot_failure(log) == (
        "`notes_app.views` is imported by `notes_app/pages.py` (line 5) but there is no such module in your repository"
    )


def test_a_crash_at_import_names_the_exception_and_the_candidates_frame():
    """The exception's line and the last frame under /app; Flask's and Gunicorn's own frames are not the cause."""
    assert explain_boot_failure(CRASHING_CONFIG) == (
        "the app crashed at import: KeyError: 'NOTES_DB_URL' (notes_app/config.py line 9)"
    )


def test_a_syntax_error_is_a_crash_at_import():
    """A SyntaxError's frame has no function: it is still the candidate's file and line."""
    assert explain_boot_failure(SYNTAX_ERROR) == (
        "the app crashed at import: SyntaxError: '(' was never closed (wsgi.py line 2)"
    )


def test_a_chained_exception_shows_the_one_raised_last():
    """`raise RuntimeError(...)` while handling a KeyError: the RuntimeError is what the candidate meant to say."""
    inner = CRASHING_CONFIG.split("[setup]")[0]
    outer = (
        "\nDuring handling of the above exception, another exception occurred:\n\n"
        'Traceback (most recent call last):\n  File "/app/notes_app/config.py", line 11, in <module>\n'
        '    raise RuntimeError("set NOTES_DB_URL")\nRuntimeError: set NOTES_DB_URL\n'
    )
    assert explain_boot_failure(inner + outer) == (
        "the app crashed at import: RuntimeError: set NOTES_DB_URL (notes_app/config.py line 11)"
    )


def test_a_crash_outside_import_in_a_setup_command_names_the_command():
    """A migration that raises: the setup command failed, at the candidate's migration line."""
    log = (
        'Traceback (most recent call last):\n  File "/opt/venv/lib/python3.11/site-packages/alembic/command.py", '
        'line 483, in upgrade\n    script.run_env()\n  File "/app/migrations/env.py", line 92, in <module>\n'
        '    run_migrations_online()\n  File "/app/migrations/versions/9d4b_add.py", line 20, in upgrade\n'
        "    op.execute(...)\nsqlalchemy.exc.OperationalError: (sqlite3.OperationalError) no such table: notes\n"
        "[setup] 'flask --app wsgi db upgrade' failed\n"
    )
    assert explain_boot_failure(log) == (
        "the setup command `flask --app wsgi db upgrade` failed: sqlalchemy.exc.OperationalError: "
        "(sqlite3.OperationalError) no such table: notes (migrations/versions/9d4b_add.py line 20)"
    )


def test_the_entry_module_missing_is_said_in_one_line():
    """Flask's "Could not import 'wsgi'" and Gunicorn's ModuleNotFoundError for the entry module itself."""
    expected = (
        "`wsgi.py` is missing at the repository root: the app is served as `wsgi:app` "
        "(`gunicorn wsgi:app`, `flask --app wsgi`), so `wsgi.py` must define `app`"
    )
    assert explain_boot_failure(NO_WSGI) == expected
    assert explain_boot_failure(NO_WSGI.split("Usage:")[0]) == expected
    assert explain_boot_failure(NO_WSGI.split("[setup]")[1]) == expected


def test_the_app_attribute_missing_is_said_in_one_line():
    """Gunicorn's "Failed to find attribute 'app' in 'wsgi'" wins over the setup's "No such command"."""
    assert explain_boot_failure(NO_APP) == (
        "`wsgi.py` defines no `app`: the app is served as `wsgi:app`, so `wsgi.py` must define it "
        "(e.g. `app = create_app()`)"
    )
    flask = "Error: Failed to find Flask application or factory in module 'wsgi'. Use 'wsgi:name' to specify one.\n"
    assert explain_boot_failure(flask).startswith("`wsgi.py` defines no `app`")


def test_flask_migrate_not_set_up():
    """`flask --app wsgi db upgrade` when the app loads but has no `db` command."""
    log = FLASK_USAGE + GUNICORN_HEAD
    assert explain_boot_failure(log) == (
        "Flask-Migrate is not set up: `flask --app wsgi db` is not a command "
        "(initialise `Migrate(app, db)` in your app factory)"
    )


def test_the_entry_point_comes_from_the_serve_command():
    """`app.main:application` served: the messages name that module and attribute."""
    assert entry_point("gunicorn --config /dev/null --workers 1 --bind 127.0.0.1:8000 wsgi:app") == "wsgi:app"
    assert entry_point("gunicorn -b 127.0.0.1:8000 'app.main:create_app()'".replace("'", "")) == "app.main:create_app()"
    assert entry_point("python -m http.server") == "wsgi:app"
    log = "Failed to find attribute 'application' in 'app.main'.\n"
    assert explain_boot_failure(log, entry="app.main:application").startswith("`app/main.py` defines no `application`")


def test_a_log_that_matches_nothing_keeps_the_reason():
    """Nothing recognised: the same BootFailed; a limit hit (memory, boot time) is never re-explained."""
    plain = booted(GUNICORN_HEAD + "Killed\n")
    assert explain_boot_failure(plain.log_tail) == ""
    assert refine_boot_failure(plain) is plain
    oom = booted(MISSING_MARKDOWN, limit="memory")
    assert refine_boot_failure(oom) is oom
    assert explain_boot_failure("") == ""


def test_a_refined_failure_keeps_its_log_and_says_it_is_below():
    """The cause in the reason, the output still attached for the report's logs."""
    refined = refine_boot_failure(booted(CRASHING_CONFIG))
    assert refined.reason == (
        "the app crashed at import: KeyError: 'NOTES_DB_URL' (notes_app/config.py line 9); the app exited with code 3; "
        "see its output below"
    )
    assert refined.log_tail == CRASHING_CONFIG
    assert refined.limit is None


def test_candidate_text_in_a_reason_is_bounded():
    """A huge exception message is cut: the reason stays one short line."""
    log = 'Traceback (most recent call last):\n  File "/app/wsgi.py", line 1, in <module>\nValueError: ' + "x" * 5000
    reason = explain_boot_failure(log + "\n")
    assert len(reason) < 320 and "\n" not in reason and reason.endswith("... (wsgi.py line 1)")


def test_tracebacks_are_parsed_with_their_setup_command():
    """Frames, exception and origin: the setup's traceback is the setup's, Gunicorn's is the serve command's."""
    setup, served = parse_tracebacks(MISSING_MARKDOWN)
    assert setup.setup == "flask --app wsgi db upgrade" and served.setup == ""
    assert setup.exception == served.exception == "ModuleNotFoundError: No module named 'markdown'"
    assert [f.candidate for f in served.own_frames] == ["wsgi.py", "notes_app/__init__.py", "notes_app/pages.py"]


def test_boot_app_refines_the_first_lanes_failure(monkeypatch, notes, image, settings, tmp_path: Path):
    """The boot stage raises the refined BootFailed; with `source`, the snapshot is scanned for the importer."""
    (tmp_path / "app.py").write_text("import markdown\n")
    failure = booted("ModuleNotFoundError: No module named 'markdown'\n".join(["Traceback (most recent call last):\n", ""]))

    def fail(*args: object) -> None:
        raise failure

    monkeypatch.setattr(boot, "start_pod", fail)
    with pytest.raises(BootFailed) as raised:
        boot.boot_app(image, notes, settings, None, source=tmp_path)  # type: ignore[arg-type]
    assert raised.value.reason.startswith("`markdown` is imported by `app.py` (line 1) but is not in your dependencies")


def test_a_further_lanes_boot_failure_is_refined(monkeypatch, notes, settings):
    """A lane whose app crashes gets the same one-line cause for its tests."""
    monkeypatch.setattr(lanes, "start_lane", lambda *args: type("P", (), {"serving": "gunicorn wsgi:app"})())
    monkeypatch.setattr(lanes, "ready_or_idle", lambda pod, *args: (pod, booted(CRASHING_CONFIG)))
    _, failures = lanes._boot_lane(None, notes, settings, None, 1)  # type: ignore[arg-type]
    assert failures["gunicorn wsgi:app"].reason.startswith("the app crashed at import: KeyError: 'NOTES_DB_URL'")


# --- the static lookup of importers -------------------------------------------------------------------------------


def test_importers_are_found_by_ast_shallowest_first(tmp_path: Path):
    """`import x`, `import x.y`, `from x import`, `from x.y import`; not `import xy`, not strings, not relative."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "deep.py").write_text("import os\nfrom markdown.extensions import toc\n")
    (tmp_path / "top.py").write_text("'''import markdown'''\nimport markdownify\nfrom . import markdown\n\nimport markdown\n")
    (tmp_path / "none.py").write_text("x = 'from markdown import m'\n")
    assert find_importers(tmp_path, "markdown") == [("top.py", 5), ("a/deep.py", 2)]


def test_importers_skip_what_does_not_parse_links_hidden_folders_and_venvs(tmp_path: Path):
    """A syntax error, a symlink (file or folder), a FIFO, .git, venv and a non-.py file are skipped."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "leak.py").write_text("import markdown\n")
    root = tmp_path / "repo"
    for folder in (".git", "venv", "node_modules", "__pycache__", "pkg"):
        (root / folder).mkdir(parents=True)
        (root / folder / "m.py").write_text("import markdown\n")
    (root / "broken.py").write_text("import markdown\ndef (:\n")
    (root / "notes.txt").write_text("import markdown\n")
    os.symlink(outside / "leak.py", root / "link.py")
    os.symlink(outside, root / "linked")
    os.mkfifo(root / "fifo.py")  # read, it would block the scan
    assert find_importers(root, "markdown") == [("pkg/m.py", 1)]


def test_importers_scan_within_its_limits(tmp_path: Path):
    """At most `max_files` files, none over `max_file_bytes`, `max_total_bytes` in all, `max_depth` folders down."""
    for index in range(5):
        (tmp_path / f"m{index}.py").write_text("import markdown\n")
    assert len(find_importers(tmp_path, "markdown", max_files=3)) == 3
    assert len(find_importers(tmp_path, "markdown", max_total_bytes=20)) == 2
    (tmp_path / "big.py").write_text("import markdown\n" + "#" * 2000 + "\n")
    assert ("big.py", 1) not in find_importers(tmp_path, "markdown", max_file_bytes=1000)
    deep = tmp_path / "d1" / "d2" / "d3"
    deep.mkdir(parents=True)
    (deep / "x.py").write_text("import markdown\n")
    assert ("d1/d2/d3/x.py", 1) in find_importers(tmp_path, "markdown")
    assert ("d1/d2/d3/x.py", 1) not in find_importers(tmp_path, "markdown", max_depth=2)


def test_importers_of_a_pathological_file_do_not_fail(tmp_path: Path):
    """Deeply nested source (a RecursionError in the parser) and undecodable bytes are skipped, not raised."""
    (tmp_path / "nested.py").write_text("x = " + "(" * 100000 + ")" * 100000 + "\nimport markdown\n")
    (tmp_path / "bytes.py").write_bytes(b"\xff\xfe\x00import markdown\n")
    (tmp_path / "ok.py").write_text("import markdown\n")
    assert find_importers(tmp_path, "markdown") == [("ok.py", 1)]


# --- the grader's own noise ---------------------------------------------------------------------------------------


def test_gunicorn_config_dev_null_becomes_an_empty_module():
    """`--config /dev/null` (every spelling) reads no file and prints no extension warning; other argv untouched."""
    name = f"python:{forkserver.EMPTY_CONFIG}"
    assert forkserver.without_config_file(["gunicorn", "--config", "/dev/null", "wsgi:app"]) == [
        "gunicorn", "--config", name, "wsgi:app",
    ]
    assert forkserver.without_config_file(["gunicorn", "-c", "/dev/null"]) == ["gunicorn", "-c", name]
    assert forkserver.without_config_file(["gunicorn", "--config=/dev/null"]) == ["gunicorn", f"--config={name}"]
    assert forkserver.without_config_file(["gunicorn", "-c", "conf.py", "--config"]) == ["gunicorn", "-c", "conf.py", "--config"]
    import importlib

    assert not [key for key in vars(importlib.import_module(forkserver.EMPTY_CONFIG)) if not key.startswith("__")]
