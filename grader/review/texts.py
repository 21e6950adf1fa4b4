"""Templates and the files that say how the app is run, read as text (bounded by the walk), never executed.

A template is any Jinja source: a file under the tree, or a literal string the code passes to
`render_template_string`. A run file is a Procfile, a Dockerfile, a compose file or a shell script; the
README is read for what it tells a reader to type. Regular expressions are enough: they look for a few
fixed shapes (`{{ x|safe }}`, `<form method="post">`, `flask run`), and a miss costs a finding, not a grade.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from grader.review.findings import SECURITY, Finding, finding
from grader.review.tree import TextFile

_SAFE = re.compile(r"\|\s*safe\b")
_TOJSON = re.compile(r"\|\s*tojson\s*$")
_AUTOESCAPE_OFF = re.compile(r"\{%-?\s*autoescape\s+false\s*-?%\}", re.IGNORECASE)
_POST_FORM = re.compile(r"<form\b[^>]{0,2000}?\bmethod\s*=\s*[\"']?post\b", re.IGNORECASE)
CSRF_MENTION = re.compile(r"csrf|hidden_tag\s*\(", re.IGNORECASE)
_TOKENS = re.compile(r"[\s;&|()`\"',\[\]]+")
_PYTHON = re.compile(r"(.*/)?python[\d.]*")
_DEBUG_ENV = re.compile(
    r"\b(FLASK_DEBUG(?:\s*[=:]\s*|\s+)[\"']?(?:1|true|yes|on)\b|FLASK_ENV(?:\s*[=:]\s*|\s+)[\"']?development\b)", re.IGNORECASE,
)
PRODUCTION_SERVERS = re.compile(r"\b(gunicorn|waitress|uwsgi|uvicorn|hypercorn|bjoern|mod_wsgi|cheroot|meinheld)\b", re.IGNORECASE)
_DEV_ONLY_FILE = re.compile(r"(^|[/._-])(dev|devel|development|local|test|tests|override)([/._-]|$)", re.IGNORECASE)
_DOCKER_COMMAND = re.compile(r"^\s*(CMD|ENTRYPOINT)\s+(.*)$", re.IGNORECASE)
_COMPOSE_COMMAND = re.compile(r"^\s*-?\s*(command|entrypoint)\s*:\s*(.+)$")
_MAX_PER_TEMPLATE = 20
_NOT_THE_APP = {"flask", "pip", "pytest", "venv", "gunicorn", "waitress", "uvicorn"}


@dataclass(frozen=True)
class Template:
    """Jinja source: `line` is the line of `path` its first line is on (a string literal's, for inline ones)."""

    path: str
    text: str
    line: int = 1
    lines: tuple[str, ...] = ()

    def line_of(self, offset: int) -> int:
        return self.line + self.text.count("\n", 0, offset)

    def source_lines(self) -> list[str]:
        """The lines of the file the template is in, for snippets."""
        return list(self.lines) if self.lines else self.text.splitlines()


@dataclass(frozen=True)
class Command:
    """A command line found in a run file or the README: `flask run`, or `python x.py` / `python -m x`."""

    path: str
    line: int
    kind: str
    target: str = ""
    debug: bool = False
    deployed: bool = True
    """False for the README and for files named as development-only (docker-compose.override.yml, dev.sh)."""


def template_findings(template: Template) -> list[Finding]:
    """`|safe` on a value and `{% autoescape false %}`: each turns off Jinja's HTML escaping for what follows."""
    found: list[Finding] = []
    lines = template.source_lines()
    for match in _SAFE.finditer(template.text):
        if len(found) >= _MAX_PER_TEMPLATE:
            break
        line_start = template.text.rfind("\n", max(0, match.start() - 300), match.start()) + 1
        opened = template.text.rfind("{{", max(line_start, match.start() - 300), match.start())
        if opened < 0 or "}}" in template.text[opened:match.start()] or _TOJSON.search(template.text[opened:match.start()]):
            continue
        found.append(finding(
            "grader:unsafe-markup", SECURITY, template.path, template.line_of(match.start()), lines,
            "`|safe` turns off Jinja's escaping for this value: if any part of it comes from a user, their HTML "
            "and scripts run in other users' browsers (stored XSS). Escape it, or sanitise it on the way in.",
        ))
    for match in _AUTOESCAPE_OFF.finditer(template.text):
        found.append(finding(
            "grader:unsafe-markup", SECURITY, template.path, template.line_of(match.start()), lines,
            "`{% autoescape false %}` turns off HTML escaping for the whole block: every value printed in it can "
            "carry a user's script (XSS).",
        ))
    return found


def post_forms(template: Template) -> list[int]:
    """The lines of the HTML forms that send POST."""
    return [template.line_of(match.start()) for match in _POST_FORM.finditer(template.text)]


def commands(run_file: TextFile, readme: bool = False) -> list[Command]:
    """The commands that start the app, in the way this kind of file writes them."""
    name = run_file.path.rsplit("/", 1)[-1]
    deployed = not readme and not _DEV_ONLY_FILE.search(run_file.path)
    found: list[Command] = []
    for number, text in _command_lines(run_file.text, name, readme):
        tokens = [token for token in _TOKENS.split(text) if token]
        for index, token in enumerate(tokens):
            if token == "flask":
                run, debug = _flask_run(tokens[index + 1:])
                if run:
                    found.append(Command(run_file.path, number, "flask-run", "", debug or bool(_DEBUG_ENV.search(text)), deployed))
            elif _PYTHON.fullmatch(token):
                kind, target = _python_target(tokens[index + 1:])
                if target and target not in _NOT_THE_APP:
                    found.append(Command(run_file.path, number, kind, target.removeprefix("./"), False, deployed))
    return found


def _flask_run(tokens: list[str]) -> tuple[bool, bool]:
    """Whether the words after `flask` are `[options] run`, and whether an option turns debugging on."""
    debug = False
    index = 0
    while index < len(tokens) and tokens[index].startswith("-"):
        debug = debug or tokens[index] == "--debug"
        takes_value = "=" not in tokens[index] and tokens[index] not in ("--debug", "--no-debug")
        nxt = tokens[index + 1] if index + 1 < len(tokens) else ""
        index += 2 if takes_value and nxt and nxt != "run" and not nxt.startswith("-") else 1
    if index >= len(tokens) or tokens[index] != "run":
        return False, False
    return True, debug or "--debug" in tokens[index + 1:index + 12]


def _python_target(tokens: list[str]) -> tuple[str, str]:
    """`python-module` and its name for `python -m x`, `python-script` and the path for `python x.py`."""
    for index, token in enumerate(tokens[:8]):
        if token == "-m":
            return "python-module", tokens[index + 1] if index + 1 < len(tokens) else ""
        if token.startswith("-"):
            continue
        return ("python-script", token) if token.endswith(".py") else ("", "")
    return "", ""


def debug_settings(run_file: TextFile) -> list[int]:
    """Lines of a deployed run file that set FLASK_DEBUG=1 or FLASK_ENV=development."""
    if _DEV_ONLY_FILE.search(run_file.path):
        return []
    return [
        number for number, text in enumerate(run_file.text.splitlines(), 1)
        if not text.lstrip().startswith("#") and _DEBUG_ENV.search(text)
    ]


def _command_lines(text: str, name: str, readme: bool) -> list[tuple[int, str]]:
    """(line number, command text) of the lines that run something, continuations joined."""
    lines = text.splitlines()
    picked: list[tuple[int, str]] = []
    number = 0
    while number < len(lines):
        start, line = number + 1, lines[number]
        while line.rstrip().endswith("\\") and number + 1 < len(lines):
            number += 1
            line = line.rstrip()[:-1] + " " + lines[number]
        number += 1
        stripped = line.strip()
        if not stripped or (stripped.startswith("#") and not readme):
            continue
        if name.lower().startswith("dockerfile") or name.lower().endswith(".dockerfile"):
            docker = _DOCKER_COMMAND.match(line)
            if docker:
                picked.append((start, _unlist(docker.group(2))))
        elif "compose" in name.lower():
            compose = _COMPOSE_COMMAND.match(line)
            if compose:
                picked.append((start, _unlist(compose.group(2))))
        elif name == "Procfile":
            picked.append((start, stripped.partition(":")[2]))
        else:
            picked.append((start, stripped))
    return picked


def _unlist(command: str) -> str:
    """`["flask", "run"]` (the exec form of Dockerfiles and compose files) as `flask run`."""
    command = command.strip()
    if command.startswith("["):
        try:
            parts = json.loads(command)
        except ValueError:
            return command.strip("[]").replace('"', " ").replace("'", " ").replace(",", " ")
        if isinstance(parts, list):
            return " ".join(str(part) for part in parts)
    return command
