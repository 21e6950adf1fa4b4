"""Reasons distilled from the app's output: the one line that says why a boot failed.

The app's output (the setup commands, then Gunicorn) is read as text, never trusted: each function takes the
log and returns one line for the report's reason, or "" when nothing in it is recognised (the caller then keeps
its own reason). The log itself stays in the report. Which file of the candidate imports a module is read from
the traceback's frames under /app, else from a bounded `ast` scan of the snapshot on the host: the candidate's
code is parsed, never imported or run. uv's output, when the install fails, is read in `install_failure`.
"""

from __future__ import annotations

import ast
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from grader.errors import BootFailed

APP_ROOT = "/app/"  # where the candidate's tree is in the app container (frames under it are the candidate's)
DEFAULT_ENTRY = "wsgi:app"
_MAX_TEXT = 240  # of any candidate-controlled text (an exception's message) quoted in a reason
# Import names whose distribution is named otherwise on PyPI: the usual stumbles of a Flask project.
_DISTRIBUTIONS = {
    "yaml": "PyYAML", "dotenv": "python-dotenv", "PIL": "Pillow", "jwt": "PyJWT", "dateutil": "python-dateutil",
    "bs4": "beautifulsoup4", "flask_wtf": "Flask-WTF", "wtforms": "WTForms", "flask_cors": "flask-cors",
    "flask_bcrypt": "Flask-Bcrypt", "flask_restful": "Flask-RESTful", "flask_jwt_extended": "Flask-JWT-Extended",
    "MySQLdb": "mysqlclient", "magic": "python-magic",
}
_FRAME = re.compile(r'^\s*File "(?P<path>[^"]*)", line (?P<line>\d+)(?:, in (?P<function>.*))?$')
_EXCEPTION = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::\s*(?P<message>.*))?$")
_CHAINED = ("During handling of the above exception", "The above exception was the direct cause")
_SETUP_FAILED = re.compile(r"^\[setup\] (?P<command>.+) failed$")
_NO_MODULE = re.compile(r"No module named '(?P<name>[\w.]+)'")
_SKIPPED = {"__pycache__", "node_modules", "venv", "env", "site-packages"}  # folders the importer scan skips


@dataclass(frozen=True)
class Frame:
    path: str
    line: int
    function: str

    @property
    def candidate(self) -> str:
        """The path relative to the repository when the frame is the candidate's own code, else ""."""
        if not self.path.startswith(APP_ROOT) or "/site-packages/" in self.path or "/.venv/" in self.path:
            return ""
        return self.path[len(APP_ROOT):]


@dataclass(frozen=True)
class Traceback:
    """One printed traceback: its frames, the exception's first line, and the setup command that printed it
    ("" when it came from the serve command)."""

    frames: tuple[Frame, ...]
    exception: str
    setup: str = ""
    superseded: bool = False  # another exception was raised while handling this one: that one is the cause shown

    @property
    def own_frames(self) -> list[Frame]:
        return [frame for frame in self.frames if frame.candidate]

    @property
    def exception_type(self) -> str:
        match = _EXCEPTION.match(self.exception)
        return match["type"].rpartition(".")[2] if match else ""


def entry_point(serve: str) -> str:
    """The `module:attribute` a serve command loads (`gunicorn ... wsgi:app` -> `wsgi:app`)."""
    for word in reversed(serve.split()):
        if re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*(\(.*\))?", word):
            return word
    return DEFAULT_ENTRY


def parse_tracebacks(log: str) -> list[Traceback]:
    """Every traceback in the log, in order, each with the setup command whose output it is part of."""
    lines = log.splitlines()
    setups = _setup_commands(lines)
    found: list[Traceback] = []
    index = 0
    while index < len(lines):
        if lines[index].strip() != "Traceback (most recent call last):":
            index += 1
            continue
        start, frames, index = index, [], index + 1
        exception = ""
        while index < len(lines):
            line = lines[index]
            frame = _FRAME.match(line)
            if frame:
                frames.append(Frame(frame["path"], int(frame["line"]), (frame["function"] or "").strip()))
            elif line.strip() and not line.startswith((" ", "\t")):
                exception = line.strip()
                break
            index += 1
        if found and _follows_chain(lines, start):
            found[-1] = Traceback(found[-1].frames, found[-1].exception, found[-1].setup, superseded=True)
        found.append(Traceback(tuple(frames), exception, setups[start]))
        index += 1
    return found


def _setup_commands(lines: list[str]) -> list[str]:
    """For each line, the setup command whose output it is: the next `[setup] CMD failed` line, unless Gunicorn
    (the serve command) started first."""
    owners = [""] * (len(lines) + 1)
    current = ""
    for index in range(len(lines) - 1, -1, -1):
        marker = _SETUP_FAILED.match(lines[index])
        if marker:
            current = _unquote(marker["command"])
        elif "Starting gunicorn" in lines[index]:
            current = ""
        owners[index] = current
    return owners


def _follows_chain(lines: list[str], start: int) -> bool:
    before = [line for line in lines[max(0, start - 3):start] if line.strip()]
    return bool(before) and before[-1].startswith(_CHAINED)


def _unquote(command: str) -> str:
    return command[1:-1] if len(command) > 1 and command[0] == command[-1] == "'" else command


def _short(text: str) -> str:
    text = " ".join(text.replace(APP_ROOT, "").split())
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."


def _where(frame: Frame) -> str:
    return f"{frame.candidate} line {frame.line}"


def explain_boot_failure(log: str, *, entry: str = DEFAULT_ENTRY, source: Path | None = None) -> str:
    """One line naming why the app never answered, from its output; "" when nothing in it is recognised.

    In order: the first traceback that names a cause (a module not installed, the entry module missing, a crash
    at import), then the Flask and Gunicorn messages for a missing entry module or `app`, then a Flask CLI
    command that does not exist (`flask db` without Flask-Migrate)."""
    module, _, attribute = entry.partition(":")
    attribute = attribute.split("(")[0] or "app"
    for traceback in parse_tracebacks(log):
        if traceback.superseded:
            continue
        reason = _explain_traceback(traceback, module, attribute, source)
        if reason:
            return reason
    if re.search(rf"Could not import '{re.escape(module)}'", log):
        return _entry_missing(module, attribute)
    missing_app = re.search(r"Failed to find attribute '(?P<attr>[\w.]+)' in '(?P<module>[\w.]+)'", log) or re.search(
        r"Failed to find Flask application or factory in module '(?P<module>[\w.]+)'", log
    )
    if missing_app:
        return _app_missing(missing_app["module"], missing_app.groupdict().get("attr") or attribute)
    if "Application object must be callable" in log:
        return f"`{entry}` is not a WSGI application (it is not callable): set `{attribute} = create_app()`"
    command = re.search(r"No such command '(?P<name>[\w:-]+)'", log)
    if command:
        return _no_such_command(log, command["name"], module)
    return ""


def _explain_traceback(traceback: Traceback, module: str, attribute: str, source: Path | None) -> str:
    own = traceback.own_frames
    missing = _NO_MODULE.search(traceback.exception) if traceback.exception_type == "ModuleNotFoundError" else None
    if missing:
        name = missing["name"]
        if not own and (name == module or module.startswith(name + ".")):
            return _entry_missing(module, attribute)
        last = own[-1] if own else None
        if last is not None and _through_library(traceback.frames, last):
            return (
                f"`{name.split('.')[0]}` is not installed: a library that `{last.candidate}` (line {last.line}) "
                "imports needs it; add it to requirements.txt (or your pyproject)"
            )
        return _module_not_installed(name, last, source)
    if not own:
        return ""
    last = own[-1]
    at_import = traceback.exception_type in ("SyntaxError", "IndentationError", "TabError") or any(
        f.function == "<module>" and not f.candidate.startswith("migrations/") for f in own
    )
    exception = _short(traceback.exception)
    if at_import:
        return f"the app crashed at import: {exception} ({_where(last)})"
    if traceback.setup:
        return f"the setup command `{_short(traceback.setup)}` failed: {exception} ({_where(last)})"
    return f"the app crashed while starting: {exception} ({_where(last)})"


def _through_library(frames: tuple[Frame, ...], last: Frame) -> bool:
    """Whether the import failed inside a library the candidate's frame imported (a frame of a real file after it)."""
    after = frames[frames.index(last) + 1:]
    return any(not frame.path.startswith("<") for frame in after)


def _entry_missing(module: str, attribute: str) -> str:
    path = module.replace(".", "/") + ".py"
    return (
        f"`{path}` is missing at the repository root: the app is served as `{module}:{attribute}` "
        f"(`gunicorn {module}:{attribute}`, `flask --app {module}`), so `{path}` must define `{attribute}`"
    )


def _app_missing(module: str, attribute: str) -> str:
    path = module.replace(".", "/") + ".py"
    return (
        f"`{path}` defines no `{attribute}`: the app is served as `{module}:{attribute}`, "
        f"so `{path}` must define it (e.g. `{attribute} = create_app()`)"
    )


def _no_such_command(log: str, name: str, module: str) -> str:
    flask = f"flask --app {module}"
    for line in log.splitlines():
        marker = _SETUP_FAILED.match(line)
        command = _unquote(marker["command"]) if marker else ""
        if f" {name}" in command and command.startswith("flask"):
            flask = command.split(f" {name}")[0]
            break
    if name == "db":
        return (
            f"Flask-Migrate is not set up: `{_short(flask)} db` is not a command "
            "(initialise `Migrate(app, db)` in your app factory)"
        )
    return f"`{_short(flask)} {name}` is not a command of your app"


def _module_not_installed(name: str, frame: Frame | None, source: Path | None) -> str:
    top = name.split(".")[0]
    importer = f"`{frame.candidate}` (line {frame.line})" if frame else ""
    if not importer and source is not None:
        found = find_importers(source, top)
        if found:
            path, line = found[0]
            more = f" and {len(found) - 1} more file{'s' if len(found) > 2 else ''}" if len(found) > 1 else ""
            importer = f"`{path}` (line {line}){more}"
    own = (frame is not None and frame.candidate.split("/")[0] in (top, top + ".py")) or (
        source is not None and _own_module(source, top)
    )
    by = f" by {importer}" if importer else ""
    if own:
        return f"`{name}` is imported{by} but there is no such module in your repository"
    if "." in name:  # Python names the parent when the parent is missing: this parent was imported
        parent, _, child = name.rpartition(".")
        return (
            f"`{name}` is imported{by} but does not exist: `{parent}` is installed and has no module `{child}`; "
            f"check the name against the version of `{top}` you pinned"
        )
    distribution = _DISTRIBUTIONS.get(top)
    package = f" (on PyPI it is `{distribution}`)" if distribution else ""
    return (
        f"`{top}` is imported{by} but is not in your dependencies{package}: "
        "add it to requirements.txt (or your pyproject)"
    )


def _own_module(source: Path, top: str) -> bool:
    try:
        return (source / f"{top}.py").is_file() or (source / top).is_dir()
    except OSError:
        return False


def find_importers(
    source: Path, module: str, *, max_files: int = 2000, max_file_bytes: int = 256 * 1024,
    max_total_bytes: int = 8 * 1024 * 1024, max_depth: int = 12,
) -> list[tuple[str, int]]:
    """The snapshot's Python files that import `module` (`import module[.x]`, `from module[.x] import ...`), as
    (path relative to the snapshot, line), shallowest first. Parsed with `ast`, never imported; symbolic links
    are not followed, hidden folders and virtual environments are skipped, and the scan stops at `max_files`
    files, skips a file over `max_file_bytes` and stops after `max_total_bytes` read in all."""
    root = Path(source)
    found: list[tuple[str, int]] = []
    files = read = 0
    for folder, dirs, names in os.walk(root, followlinks=False):
        depth = len(Path(folder).relative_to(root).parts)
        dirs[:] = sorted(
            d for d in dirs if depth < max_depth and not d.startswith(".") and d not in _SKIPPED
            and not os.path.islink(os.path.join(folder, d))
        )
        for name in sorted(names):
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            files += 1
            if files > max_files or read >= max_total_bytes:
                return _shallowest(found)
            try:
                status = os.lstat(path)
                if not stat.S_ISREG(status.st_mode) or status.st_size > max_file_bytes:  # links, FIFOs, devices
                    continue
                data = Path(path).read_bytes()
            except OSError:
                continue
            read += len(data)
            line = _imports(data, module)
            if line:
                found.append((os.path.relpath(path, root).replace(os.sep, "/"), line))
    return _shallowest(found)


def _shallowest(found: list[tuple[str, int]]) -> list[tuple[str, int]]:
    return sorted(found, key=lambda item: (item[0].count("/"), item[0]))


def _imports(data: bytes, module: str) -> int:
    """The line of the first absolute import of `module` in the source, 0 if none (or it does not parse)."""
    try:
        tree = ast.parse(data)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return 0
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        if any(name == module or name.startswith(module + ".") for name in names):
            lines.append(node.lineno)
    return min(lines, default=0)


def refine_boot_failure(exc: BootFailed, *, entry: str = DEFAULT_ENTRY, source: Path | None = None) -> BootFailed:
    """The boot failure with a reason that names its cause, when the app's output shows one; else the same
    failure. Only an app that exited by itself is refined: a memory or time limit is the cause as it stands."""
    if exc.limit is not None:
        return exc
    why = explain_boot_failure(exc.log_tail, entry=entry, source=source)
    if not why:
        return exc
    exited = re.search(r"exited with code -?\d+", exc.reason)
    how = f"; the app {exited[0]}" if exited else ""
    return BootFailed(f"{why}{how}; see its output below", log_tail=exc.log_tail, limit=exc.limit)
