"""Our own rules over a Flask app's structure: the factory, the routes, the server, debug mode, the secret, CSRF."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.assignments.check import make_solution
from grader.settings import PROJECT_ROOT
from tests.unit.review import found, review_files

SOLUTIONS = PROJECT_ROOT / "assignments" / "flask-notes" / "solutions"
FACTORY = """
    from flask import Flask

    def create_app(config=None):
        app = Flask(__name__)
        return app
"""
WSGI = "from app import create_app\n\napp = create_app()\n"


def _blueprint_module(name: str, padding: int = 0) -> str:
    return f"""
        from flask import Blueprint

        bp = Blueprint("{name}", __name__)

        @bp.get("/{name}")
        def listing():
            return ""

        @bp.post("/{name}")
        def create():
            return ""

        @bp.route("/{name}/<int:item>", methods=["GET", "DELETE"])
        def item(item):
            return ""
    """ + "\n" * padding


# --- grader:no-app-factory -------------------------------------------------------------------------------


def test_a_real_factory_is_no_finding(tmp_path: Path) -> None:
    """create_app() that makes a new Flask app and returns it: nothing to say."""
    answer = review_files(tmp_path, {"app/__init__.py": FACTORY, "wsgi.py": WSGI})
    assert found(answer, "grader:no-app-factory") == []


def test_a_factory_returning_the_module_global_app_is_a_fake(tmp_path: Path) -> None:
    """create_app() that configures and returns the app made at import time is only a name."""
    answer = review_files(tmp_path, {"app/__init__.py": """
        from flask import Flask

        app = Flask(__name__)

        def create_app():
            app.config.from_object("config")
            return app
    """, "wsgi.py": WSGI})
    assert found(answer, "grader:no-app-factory") == [("grader:no-app-factory", "maintainability", "app/__init__.py", 6)]
    assert "returns the app created at import time" in answer["findings"][0]["message"]


def test_a_factory_returning_an_imported_global_app_is_a_fake(tmp_path: Path) -> None:
    """The global app may be made in another module and imported by the "factory"."""
    answer = review_files(tmp_path, {
        "app/core.py": "from flask import Flask\n\napp = Flask(__name__)\n",
        "app/__init__.py": "def create_app():\n    from .core import app\n    return app\n",
    })
    assert found(answer, "grader:no-app-factory") == [("grader:no-app-factory", "maintainability", "app/__init__.py", 1)]


def test_a_global_app_without_a_factory_is_a_finding(tmp_path: Path) -> None:
    answer = review_files(tmp_path, {"app.py": "from flask import Flask\n\napp = Flask(__name__)\n"})
    assert found(answer, "grader:no-app-factory") == [("grader:no-app-factory", "maintainability", "app.py", 3)]


def test_a_flask_app_made_in_a_test_is_not_a_factory(tmp_path: Path) -> None:
    """A fixture that returns Flask(__name__) does not make the app's own global app a factory."""
    answer = review_files(tmp_path, {
        "app.py": "from flask import Flask\n\napp = Flask(__name__)\n",
        "tests/conftest.py": "from flask import Flask\n\ndef make():\n    app = Flask('t')\n    return app\n",
    })
    assert [f[2] for f in found(answer, "grader:no-app-factory")] == ["app.py"]


# --- grader:routes-in-one-module -------------------------------------------------------------------------


def test_a_blueprint_app_in_three_modules_is_no_finding(tmp_path: Path) -> None:
    """Three blueprints of three routes each, in modules of over 200 lines: well laid out."""
    answer = review_files(tmp_path, {
        "app/__init__.py": FACTORY, "wsgi.py": WSGI,
        **{f"app/{name}.py": _blueprint_module(name, padding=220) for name in ("api", "pages", "auth")},
    })
    assert found(answer, "grader:routes-in-one-module") == []
    assert answer["metrics"]["routes"] == 9
    assert answer["metrics"]["blueprints"] == 3


def test_every_route_in_one_long_module_without_blueprints_is_one_finding(tmp_path: Path) -> None:
    """The single-module solution: routes registered on `app` in a function of a 374-line module."""
    answer = review_files(tmp_path, {
        "notes.py": (SOLUTIONS / "single-module" / "notes.py").read_text(),
        "wsgi.py": "from notes import create_app\n\napp = create_app()\n",
    })
    [(rule, severity, file, _line)] = found(answer, "grader:routes-in-one-module")
    assert (severity, file) == ("maintainability", "notes.py")
    message = answer["findings"][[f["rule"] for f in answer["findings"]].index(rule)]["message"]
    assert "All 14 routes are in notes.py (374 lines)" in message
    assert "no Blueprint" in message


def test_a_small_app_of_a_few_routes_needs_no_blueprint(tmp_path: Path) -> None:
    app = FACTORY + '\n    @app.get("/")\n    def index():\n        return ""\n'
    answer = review_files(tmp_path, {"app.py": app})
    assert found(answer, "grader:routes-in-one-module") == []


def test_routes_in_one_long_blueprint_module_are_a_finding(tmp_path: Path) -> None:
    answer = review_files(tmp_path, {"app/__init__.py": FACTORY, "app/views.py": _blueprint_module("notes", padding=220)})
    [(_rule, _severity, file, line)] = found(answer, "grader:routes-in-one-module")
    assert (file, line) == ("app/views.py", 6)
    assert "no Blueprint" not in answer["findings"][0]["message"]


# --- grader:development-server ---------------------------------------------------------------------------


def test_app_run_under_the_main_guard_is_no_finding(tmp_path: Path) -> None:
    """`python app.py` for local development, while Gunicorn imports the module: fine."""
    answer = review_files(tmp_path, {
        "app.py": FACTORY + '\n    if __name__ == "__main__":\n        create_app().run()\n',
        "Procfile": "web: gunicorn wsgi:app\n", "wsgi.py": WSGI,
    })
    assert found(answer, "grader:development-server") == []


def test_app_run_at_import_is_a_correctness_finding(tmp_path: Path) -> None:
    """Importing the module starts the development server: Gunicorn never gets the app."""
    answer = review_files(tmp_path, {"app.py": FACTORY + "\n    app = create_app()\n    app.run()\n"})
    assert found(answer, "grader:development-server") == [("grader:development-server", "correctness", "app.py", 9)]


def test_flask_run_in_deployment_files_is_a_finding(tmp_path: Path) -> None:
    """Dockerfile exec form, compose command, Procfile and a start script all start the development server."""
    answer = review_files(tmp_path, {
        "app/__init__.py": FACTORY, "wsgi.py": WSGI,
        "Dockerfile": 'FROM python:3.12\n# flask run is for development\nCMD ["flask", "--app", "wsgi", "run", "--host=0.0.0.0"]\n',
        "docker-compose.yml": "services:\n  web:\n    command: flask --app wsgi run\n",
        "docker-compose.dev.yml": "services:\n  web:\n    command: flask --app wsgi run --debug\n",
        "scripts/start.sh": "#!/bin/sh\nflask db upgrade && exec flask --app wsgi run\n",
    })
    assert found(answer, "grader:development-server") == [
        ("grader:development-server", "robustness", "Dockerfile", 3),
        ("grader:development-server", "robustness", "docker-compose.yml", 3),
        ("grader:development-server", "robustness", "scripts/start.sh", 2),
    ]


def test_a_procfile_running_the_script_with_app_run_is_a_finding(tmp_path: Path) -> None:
    """`web: python app.py` is the development server when app.py ends in app.run()."""
    answer = review_files(tmp_path, {
        "app.py": FACTORY + '\n    if __name__ == "__main__":\n        create_app().run(host="0.0.0.0")\n',
        "Procfile": "web: python app.py\n",
    })
    assert found(answer, "grader:development-server") == [("grader:development-server", "robustness", "Procfile", 1)]


def test_a_readme_that_only_knows_flask_run_is_a_note(tmp_path: Path) -> None:
    answer = review_files(tmp_path, {"app/__init__.py": FACTORY, "README.md": "# Notes\n\n    flask --app app run\n"})
    assert found(answer, "grader:development-server") == [("grader:development-server", "maintainability", "README.md", 3)]


def test_a_readme_with_flask_run_is_fine_when_a_production_server_is_named(tmp_path: Path) -> None:
    answer = review_files(tmp_path, {
        "app/__init__.py": FACTORY, "README.md": "Develop with `flask --app app run`.\n", "requirements.txt": "flask\ngunicorn\n",
    })
    assert found(answer, "grader:development-server") == []


# --- grader:debug-mode -----------------------------------------------------------------------------------


def test_debug_true_in_app_run_under_main_is_a_note_and_at_import_is_security(tmp_path: Path) -> None:
    guarded = review_files(tmp_path / "a", {
        "app.py": FACTORY + '\n    if __name__ == "__main__":\n        create_app().run(debug=True)\n',
        "Procfile": "web: gunicorn app:create_app()\n",
    })
    assert found(guarded, "grader:debug-mode") == [("grader:debug-mode", "maintainability", "app.py", 9)]
    assert found(guarded, "ruff:S201") == []
    imported = review_files(tmp_path / "b", {"app.py": FACTORY + "\n    create_app().run(debug=True)\n"})
    assert found(imported, "grader:debug-mode") == [("grader:debug-mode", "security", "app.py", 8)]


def test_debug_switched_on_in_code_or_config_is_security(tmp_path: Path) -> None:
    answer = review_files(tmp_path, {
        "app/__init__.py": """
            from flask import Flask

            def create_app():
                app = Flask(__name__)
                app.debug = True
                app.config["DEBUG"] = True
                app.config.update(DEBUG=True)
                return app
        """,
        "app/config.py": "class Config:\n    DEBUG = True\n\nclass ProductionConfig(Config):\n    DEBUG = False\n",
    })
    assert found(answer, "grader:debug-mode") == [
        ("grader:debug-mode", "security", "app/__init__.py", 6),
        ("grader:debug-mode", "security", "app/__init__.py", 7),
        ("grader:debug-mode", "security", "app/__init__.py", 8),
        ("grader:debug-mode", "security", "app/config.py", 2),
    ]


def test_debug_in_development_configs_or_behind_a_condition_is_no_finding(tmp_path: Path) -> None:
    answer = review_files(tmp_path, {
        "app/config.py": """
            import os

            class DevelopmentConfig:
                DEBUG = True

            class TestingConfig:
                DEBUG = True

            def configure(app):
                if os.environ.get("FLASK_ENV") == "development":
                    app.config["DEBUG"] = True
        """,
        "tests/test_app.py": "def test_x(app):\n    app.config['DEBUG'] = True\n",
    })
    assert found(answer, "grader:debug-mode") == []


def test_flask_debug_in_a_dockerfile_is_security(tmp_path: Path) -> None:
    dockerfile = "FROM python:3.12\nENV FLASK_DEBUG=1\nCMD gunicorn wsgi:app\n"
    answer = review_files(tmp_path, {"app/__init__.py": FACTORY, "Dockerfile": dockerfile})
    assert found(answer, "grader:debug-mode") == [("grader:debug-mode", "security", "Dockerfile", 2)]


# --- grader:hard-coded-secret ----------------------------------------------------------------------------


def test_secret_key_from_the_environment_without_a_default_is_fine(tmp_path: Path) -> None:
    """The reference's config: SECRET_KEY read from the environment, the app refusing to start without it."""
    answer = review_files(tmp_path, {"app/config.py": """
        import os

        class Config:
            SECRET_KEY = os.environ.get("SECRET_KEY")

        def load():
            return {"SECRET_KEY": os.environ["SECRET_KEY"], "OTHER": os.getenv("SECRET_KEY")}
    """})
    assert found(answer, "grader:hard-coded-secret") == []
    assert found(answer, "ruff:S105") == []


@pytest.mark.parametrize("line", [
    'app.config["SECRET_KEY"] = "dev"',
    'app.secret_key = "s3cret"',
    'app.config.update(SECRET_KEY="dev", DEBUG=False)',
    'app.config.from_mapping(SECRET_KEY=b"dev")',
    'app.config.setdefault("SECRET_KEY", "dev")',
])
def test_a_literal_secret_key_is_security(tmp_path: Path, line: str) -> None:
    answer = review_files(tmp_path, {"app.py": f"from flask import Flask\n\napp = Flask(__name__)\n{line}\n"})
    assert found(answer, "grader:hard-coded-secret") == [("grader:hard-coded-secret", "security", "app.py", 4)]


@pytest.mark.parametrize("value", [
    'os.environ.get("SECRET_KEY", "dev")',
    'os.getenv("SECRET_KEY", "change-me")',
    'os.environ.get("SECRET_KEY") or "x"',
    'os.environ.get("FLASK_SECRET_KEY", default="dev")',
])
def test_a_default_in_code_for_the_secret_key_is_security(tmp_path: Path, value: str) -> None:
    answer = review_files(tmp_path, {"config.py": f"import os\n\nclass Config:\n    SECRET_KEY = {value}\n"})
    [(rule, severity, file, line)] = found(answer, "grader:hard-coded-secret")
    assert (severity, file, line) == ("security", "config.py", 4)
    assert "falls back" in answer["findings"][0]["message"]


def test_a_secret_key_random_per_process_is_robustness(tmp_path: Path) -> None:
    """os.urandom or secrets.token_hex at import: each worker and each restart signs with its own key."""
    answer = review_files(tmp_path, {"config.py": """
        import os
        import secrets

        class Config:
            SECRET_KEY = secrets.token_hex(32)

        def fallback():
            return {"SECRET_KEY": os.environ.get("SECRET_KEY") or os.urandom(24).hex()}
    """})
    assert found(answer, "grader:hard-coded-secret") == [
        ("grader:hard-coded-secret", "robustness", "config.py", 6),
        ("grader:hard-coded-secret", "robustness", "config.py", 9),
    ]
    assert "Gunicorn worker" in answer["findings"][0]["message"]


def test_the_per_process_secret_flaw_is_found_through_the_name_it_is_kept_in(tmp_path: Path) -> None:
    """flask-notes' per-process-secret flaw: `_SECRET_KEY = os.urandom(32)`, then `"SECRET_KEY": _SECRET_KEY`."""
    solution = make_solution(SOLUTIONS / "per-process-secret", tmp_path / "solution")
    answer = review_files(solution, {})
    assert found(answer, "grader:hard-coded-secret") == [("grader:hard-coded-secret", "robustness", "notes_app/config.py", 12)]


def test_keys_of_test_and_development_configs_are_fine(tmp_path: Path) -> None:
    answer = review_files(tmp_path, {
        "config.py": "class TestingConfig:\n    SECRET_KEY = 'test'\n\nclass DevelopmentConfig:\n    SECRET_KEY = 'dev'\n",
        "tests/conftest.py": "def app():\n    return create_app({'SECRET_KEY': 'test', 'PASSWORD': 'x'})\n",
    })
    assert found(answer, "grader:hard-coded-secret") == []
    assert found(answer, "ruff:S105") == []


def test_a_secret_in_a_migration_is_still_found(tmp_path: Path) -> None:
    """Migrations are generated code and skip most rules, but a key written there still leaks."""
    migration = "SECRET_KEY = 'abc'\nop.execute(f'UPDATE t SET a = {x}')\n"
    answer = review_files(tmp_path, {"migrations/versions/0001_init.py": migration})
    assert found(answer) == [("grader:hard-coded-secret", "security", "migrations/versions/0001_init.py", 1)]


# --- grader:csrf-missing ---------------------------------------------------------------------------------


def test_post_forms_without_any_csrf_protection_are_security(tmp_path: Path) -> None:
    answer = review_files(tmp_path, {
        "app/__init__.py": FACTORY,
        "app/templates/login.html": '<h1>Log in</h1>\n<form method="POST" action="/login">\n<input name="u">\n</form>\n',
        "app/templates/search.html": '<form method="get"></form>\n',
    })
    assert found(answer, "grader:csrf-missing") == [("grader:csrf-missing", "security", "app/templates/login.html", 2)]


def test_post_forms_with_a_csrf_token_are_fine(tmp_path: Path) -> None:
    """The reference's own token: `csrf_token()` in every form (Flask-WTF's hidden_tag() counts too)."""
    answer = review_files(tmp_path, {
        "app/__init__.py": FACTORY,
        "app/templates/login.html": (
            '<form method="post">\n<input type="hidden" name="csrf_token" value="{{ csrf_token() }}">\n</form>\n'
        ),
        "app/templates/other.html": '<form method="post">{{ form.hidden_tag() }}</form>\n',
    })
    assert found(answer, "grader:csrf-missing") == []


def test_forms_in_render_template_string_count(tmp_path: Path) -> None:
    """The single-module solution's pages are strings: their POST forms have no token."""
    answer = review_files(tmp_path, {"notes.py": (SOLUTIONS / "single-module" / "notes.py").read_text()})
    [(_rule, severity, file, line)] = found(answer, "grader:csrf-missing")
    assert (severity, file, line) == ("security", "notes.py", 181)
    assert "SameSite cookies" in [f for f in answer["findings"] if f["rule"] == "grader:csrf-missing"][0]["message"]


def test_csrf_switched_off_outside_tests_is_security(tmp_path: Path) -> None:
    answer = review_files(tmp_path, {
        "app/config.py": (
            "class Config:\n    WTF_CSRF_ENABLED = False\n\nclass TestingConfig(Config):\n    WTF_CSRF_ENABLED = False\n"
        ),
        "tests/conftest.py": "CONFIG = {'WTF_CSRF_ENABLED': False}\n",
    })
    assert found(answer, "grader:csrf-missing") == [("grader:csrf-missing", "security", "app/config.py", 2)]


def test_csrf_exempt_on_a_form_view_is_security_but_not_on_a_json_view(tmp_path: Path) -> None:
    answer = review_files(tmp_path, {"app/views.py": """
        from flask import Blueprint, request
        from flask_wtf.csrf import CSRFProtect

        csrf = CSRFProtect()
        bp = Blueprint("views", __name__)

        @bp.post("/form")
        @csrf.exempt
        def form():
            return request.form["title"]

        @bp.post("/api")
        @csrf.exempt
        def api():
            return request.get_json()
    """})
    assert found(answer, "grader:csrf-missing") == [("grader:csrf-missing", "security", "app/views.py", 9)]
