"""Stage 1b: the assignment's layout (`[[layout]]` in assignment.toml), checked on the host before the build.

A repository without the entry module the brief asks for would otherwise cost a whole build and a boot, and
end in a log the candidate must read; here it ends `rejected` in well under a second, with one line that
quotes the brief and lists what was found instead. The candidate's code is never imported or run: files are
read without following links, bounded in number, size and time, and parsed with `ast` only. Entries that do
not stop the grade (`missing = "warn"`) become warnings at the top of the report.
"""

from __future__ import annotations

import ast
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from grader.assignments.model import Assignment, LayoutEntry
from grader.errors import Rejected
from grader.models import Snapshot
from grader.stages.intake import read_regular_file

MAX_CANDIDATES = 5
"""Candidates named in a reason; the rest are counted."""


@dataclass(frozen=True)
class Limits:
    """How much of a snapshot the preflight reads: whatever the repository holds, it ends quickly."""

    max_files: int = 2000
    """Python files parsed, at most."""
    max_file_bytes: int = 256 * 1024
    """A larger file is not parsed (it is neither a candidate nor proof of a name)."""
    max_entries: int = 5000
    """Directory entries looked at, at most, when listing the root and searching for a folder."""
    budget_s: float = 2.0
    """Seconds of scanning, checked between files; the search stops when they are spent."""
    folder_depth: int = 3
    """How deep a missing folder is searched for elsewhere in the repository."""


@dataclass
class Preflight:
    """What the preflight found: the warnings for the report, and how much it read."""

    warnings: list[str] = field(default_factory=list)
    files_parsed: int = 0
    entries_seen: int = 0
    stopped_early: bool = False


@dataclass(frozen=True)
class _Module:
    """A module's module-level names, read statically."""

    defined: frozenset[str]
    imported: frozenset[str]
    opaque: bool = False
    """`from x import *` or a module `__getattr__`: any name may exist, so none is reported missing."""

    def binds(self, name: str) -> bool:
        return self.opaque or name in self.defined or name in self.imported


class _Scanner:
    """Reads the snapshot under the limits; every count and the clock are shared by all the entries."""

    def __init__(self, root: Path, limits: Limits, result: Preflight) -> None:
        self.root, self.limits, self.result = root, limits, result
        self.real_root = os.path.realpath(root)
        self.deadline = time.monotonic() + limits.budget_s

    def _spent(self, count: int, limit: int) -> bool:
        """Whether this count has reached its limit or the time is up (noted: the reason says the search stopped)."""
        spent = count >= limit or time.monotonic() >= self.deadline
        self.result.stopped_early = self.result.stopped_early or spent
        return spent

    def kind(self, relative: str) -> str:
        """`missing`, `outside` (a link leaving the repository), `file`, `folder` or `other`."""
        path = os.path.join(self.root, relative)
        if not os.path.lexists(path):
            return "missing"
        real = os.path.realpath(path)
        if os.path.commonpath([self.real_root, real]) != self.real_root:
            return "outside"
        if os.path.isdir(real):
            return "folder"
        return "file" if os.path.isfile(real) else "other"

    def module(self, relative: str) -> _Module | None:
        """The names a Python file binds at module level; None when it cannot be read or parsed (never raises)."""
        if self._spent(self.result.files_parsed, self.limits.max_files):
            return None
        real = os.path.realpath(os.path.join(self.root, relative))
        if os.path.commonpath([self.real_root, real]) != self.real_root:
            return None
        data = read_regular_file(Path(real), self.limits.max_file_bytes)
        if data is None or len(data) > self.limits.max_file_bytes:
            return None
        self.result.files_parsed += 1
        try:
            tree = ast.parse(data, filename=relative)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
        return _bindings(tree)

    def root_modules(self) -> list[tuple[str, str]]:
        """(path, import name) of the top-level modules and packages (also under `src/`), in name order."""
        found: list[tuple[str, str]] = []
        for folder in ("", "src"):
            for entry in self._listing(folder):
                path = f"{folder}/{entry.name}" if folder else entry.name
                if entry.name.endswith(".py") and entry.is_file(follow_symlinks=False):
                    found.append((path, entry.name[:-3]))
                elif entry.is_dir(follow_symlinks=False) and entry.name.isidentifier():
                    if os.path.isfile(os.path.join(entry.path, "__init__.py")):
                        found.append((f"{path}/__init__.py", entry.name))
        return sorted(found, key=lambda item: ("/" in item[0], item[0]))

    def folders_named(self, name: str) -> list[str]:
        """Folders called `name` anywhere but at the root, breadth first, without following links."""
        found: list[str] = []
        level = [""]
        for _depth in range(self.limits.folder_depth):
            below: list[str] = []
            for folder in level:
                for entry in self._listing(folder):
                    if entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
                        path = f"{folder}/{entry.name}" if folder else entry.name
                        if entry.name == name and folder:
                            found.append(path)
                        below.append(path)
            level = below
        return found

    def _listing(self, relative: str) -> list[os.DirEntry[str]]:
        path = os.path.join(self.root, relative)
        if relative and (os.path.islink(path) or not os.path.isdir(path)):
            return []
        entries: list[os.DirEntry[str]] = []
        try:
            with os.scandir(path) as listing:
                for entry in listing:
                    if self._spent(self.result.entries_seen, self.limits.max_entries):
                        break
                    self.result.entries_seen += 1
                    entries.append(entry)
        except OSError:
            return entries
        return sorted(entries, key=lambda entry: entry.name)


def check_layout(snapshot: Snapshot, assignment: Assignment, limits: Limits | None = None) -> Preflight:
    """Check every `[[layout]]` entry; raise Rejected for the first `stop` entry that fails, else return warnings."""
    result = Preflight()
    scanner = _Scanner(snapshot.path, limits or Limits(), result)
    for entry in assignment.layout:
        problem = _problem(entry, scanner)
        if problem is None:
            continue
        if entry.missing == "stop":
            raise Rejected(_stop_reason(entry, problem, scanner))
        result.warnings.append(_warning(entry, problem, scanner, assignment))
    return result


def _problem(entry: LayoutEntry, scanner: _Scanner) -> str | None:
    """What is wrong with the entry in the snapshot, as the start of a sentence; None when it is as required."""
    relative = entry.path.rstrip("/")
    where = "at the repository root" if "/" not in relative else "in the repository"
    kind = scanner.kind(relative)
    if kind == "missing":
        return f"`{entry.name}` is missing {where}"
    if kind == "outside":
        return f"`{entry.name}` is a symbolic link that leaves the repository"
    wanted = "folder" if entry.is_folder else "file"
    if kind != wanted:
        return f"`{entry.name}` {where} is not a {wanted}"
    if not entry.exposes:
        return None
    module = scanner.module(relative)
    if module is None:  # too large, unparsable or out of time: the boot will say what Python thinks of it
        return None
    absent = [name for name in entry.exposes if not module.binds(name)]
    if not absent:
        return None
    bound = sorted(module.defined | module.imported)
    shown = ", ".join(f"`{name}`" for name in bound[:MAX_CANDIDATES]) + (", ..." if len(bound) > MAX_CANDIDATES else "")
    return (
        f"`{entry.name}` does not define or import {_names(absent, 'or')} at module level"
        + (f" (it binds only {shown})" if bound else " (it binds no name at all)")
    )


def _stop_reason(entry: LayoutEntry, problem: str, scanner: _Scanner) -> str:
    reason = f'{problem}: the brief says "{entry.brief}"'
    stop = " " if entry.brief.rstrip()[-1:] in ".!?" else ". "
    candidates, factory = _candidates(entry, scanner) if entry.look_for else ("", None)
    if candidates:
        reason, stop = f"{reason}{stop}Found instead: {candidates}", ". "
    elif entry.look_for:
        reason, stop = f"{reason}{stop}Found no top-level module or package that binds {_names(entry.look_for, 'or')}", ". "
    if scanner.result.stopped_early:
        reason += " (the search stopped at its limit)"
    if problem.endswith("at the repository root") and entry.exposes == ["app"] and factory:
        todo = f"add `{entry.name}` at the repository root with `from {factory} import create_app` and `app = create_app()`"
    elif problem.endswith("at the repository root") and entry.exposes:
        todo = f"add `{entry.name}` at the repository root that binds {_names(entry.exposes)} at module level"
    elif entry.exposes and "does not define" in problem:
        example = " (for example `app = create_app()`)" if entry.exposes == ["app"] else ""
        todo = f"bind {_names(entry.exposes)} at module level in `{entry.name}`{example}"
    else:
        todo = f"put `{entry.name}` where the brief says"
    return f"{reason}{stop}To be graded, {todo}, then submit again."


def _warning(entry: LayoutEntry, problem: str, scanner: _Scanner, assignment: Assignment) -> str:
    titles = {c.id: c.title for c in assignment.categories}
    affected = ", ".join(f"{titles[c]} (`{c}`)" for c in entry.affects)
    plural = "categories" if len(entry.affects) > 1 else "category"
    elsewhere = scanner.folders_named(entry.path.rstrip("/").rsplit("/", 1)[-1]) if entry.is_folder else []
    seen = ""
    if elsewhere:
        seen = f" (found {', '.join(f'`{p}/`' for p in elsewhere[:MAX_CANDIDATES])}, which the grader does not look in)"
    return (
        f'{problem}{seen}: the brief says "{entry.brief}"; the {affected} {plural} will fail, '
        f"the other categories are still graded."
    )


def _candidates(entry: LayoutEntry, scanner: _Scanner) -> tuple[str, str | None]:
    """The top-level modules and packages binding one of `look_for`, described; and a package with a factory."""
    described: list[str] = []
    factory: str | None = None
    own = entry.path.rstrip("/")
    for path, import_name in scanner.root_modules():
        if path == own:
            continue
        module = scanner.module(path)
        if module is None:
            continue
        defined = [n for n in entry.look_for if n in module.defined]
        imported = [n for n in entry.look_for if n in module.imported and n not in module.defined]
        if not defined and not imported:
            continue
        if factory is None and path.endswith("/__init__.py") and "create_app" in defined:
            factory = import_name
        what = "; ".join(
            part for part in (defined and f"defines {_names(defined)}", imported and f"imports {_names(imported)}") if part
        )
        described.append(f"`{path}` ({what})")
    more = len(described) - MAX_CANDIDATES
    return ", ".join(described[:MAX_CANDIDATES]) + (f" and {more} more" if more > 0 else ""), factory


def _names(names: list[str], joiner: str = "and") -> str:
    quoted = [f"`{name}`" for name in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} {joiner} {quoted[-1]}"


def _bindings(tree: ast.Module) -> _Module:
    """Names bound at module level: assignments, `def`/`class`, imports, also inside module-level if/try/with/for."""
    defined: set[str] = set()
    imported: set[str] = set()
    opaque = False
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
            opaque = opaque or node.name == "__getattr__"
            continue
        if isinstance(node, ast.Import):
            imported.update(alias.asname or alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            opaque = opaque or any(alias.name == "*" for alias in node.names)
            imported.update(alias.asname or alias.name for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                defined.update(_target_names(target))
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and (not isinstance(node, ast.AnnAssign) or node.value):
            defined.update(_target_names(node.target))
        elif isinstance(node, ast.For | ast.AsyncFor):
            defined.update(_target_names(node.target))
        elif isinstance(node, ast.With | ast.AsyncWith):
            for item in node.items:
                defined.update(_target_names(item.optional_vars) if item.optional_vars else ())
        for name in ("body", "orelse", "finalbody"):
            pending.extend(getattr(node, name, []))
        for handler in getattr(node, "handlers", []):
            pending.extend(handler.body)
        for case in getattr(node, "cases", []):
            pending.extend(case.body)
        defined.update(_walrus_names(node))
    return _Module(frozenset(defined), frozenset(imported), opaque)


def _walrus_names(node: ast.stmt) -> set[str]:
    """`(app := create_app())` in a module-level expression, assignment or condition."""
    if isinstance(node, ast.If | ast.While):
        scope: ast.AST = node.test
    elif isinstance(node, ast.Expr | ast.Assign | ast.AnnAssign | ast.AugAssign):
        scope = node
    else:
        return set()
    return {sub.target.id for sub in ast.walk(scope) if isinstance(sub, ast.NamedExpr)}


def _target_names(target: ast.expr) -> set[str]:
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, ast.Tuple | ast.List):
        return {name for element in target.elts for name in _target_names(element)}
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return set()
