"""Which dependencies a submission asks for, and whether the grader may install them.

Read from the snapshot on the host, never through the candidate's code, and nothing outside the snapshot
is ever opened. The first of these at the repository root is used (a lock file wins over its manifest):

    requirements.txt   pip format; `-r`/`-c` includes are followed inside the repository
    uv.lock            the locked versions, exactly (the root project itself is not installed)
    poetry.lock        the `main` group
    Pipfile.lock       the `default` section
    pyproject.toml     `[project] dependencies` (PEP 621; the project itself is not built)

Every format becomes one normalized requirements text (and, for `-c`, a constraints text), each line under
one policy: packages by name and version from the grader's index, no URLs, paths, environment variables or
options that change where packages come from. That text is what is installed and what keys the layer.
A repository with tests of its own also gets the grader's test tools in that text (`with_test_tools`), so
the layer that runs them is keyed, installed and hashed for the report with them.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from grader.errors import BuildFailed
from grader.models import Snapshot
from grader.stages import dependency_formats
from grader.stages.candidate_tests import find_tests
from grader.stages.intake import read_regular_file

MAX_REQUIREMENTS_BYTES = 256 * 1024  # one requirements file
MAX_INCLUDED_BYTES = 1024 * 1024  # all the files of one requirements.txt and its includes
MAX_INCLUDED_FILES = 32
MAX_INCLUDE_DEPTH = 5  # requirements.txt is depth 0
MAX_LOCK_BYTES = 4 * 1024 * 1024  # uv.lock, poetry.lock, Pipfile.lock, pyproject.toml

# The documented precedence: the first of these present at the root is read.
FORMATS = ("requirements.txt", "uv.lock", "poetry.lock", "Pipfile.lock", "pyproject.toml")

# The grader's own versions of the tools that run a candidate's tests (stages/candidate_tests.py).
TEST_TOOLS = ("pytest==9.2.0", "coverage==7.17.3")


@dataclass(frozen=True)
class Dependencies:
    """What will be installed: the normalized texts, the format and the files they were read from."""

    format: str  # "requirements", "uv.lock", "poetry.lock", "Pipfile.lock" or "pyproject.toml"
    files: tuple[str, ...]  # paths relative to the repository root, in the order they were read
    requirements: bytes
    constraints: bytes = b""
    tools: tuple[str, ...] = ()  # the lines of TEST_TOOLS added to `requirements` (the repository has tests)

    @property
    def text(self) -> bytes:
        """Requirements and constraints in one text: what is installed, hashed for the report."""
        return self.requirements + (b"# constraints\n" + self.constraints if self.constraints else b"")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text).hexdigest()

    @property
    def label(self) -> str:
        """How a build reason names the input: `requirements.txt`, or `the packages locked in uv.lock`; with the
        test tools when the grader added them, since a conflict with them is not the candidate's own list."""
        if self.format == "requirements":
            label = "requirements.txt"
        elif self.format == "pyproject.toml":
            label = f"the dependencies of {self.files[0]}"
        else:
            label = f"the packages locked in {self.files[0]}"
        return label + (f" with the grader's test tools ({', '.join(self.tools)})" if self.tools else "")

    def provenance(self) -> dict[str, object]:
        """The report's provenance fields for these dependencies."""
        return {
            "dependency_format": self.format, "dependency_files": list(self.files), "dependencies_sha256": self.sha256,
            "test_tools": list(self.tools),
        }


# --- the line policy ------------------------------------------------------------------------------

_ARCHIVES = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar")
_ALLOWED_OPTIONS = ("--hash", "--require-hashes", "--prefer-binary", "--only-binary", "--no-binary", "--pre")
_SOURCE_CHANGING = re.compile(r"(^|\s)(-[ifce]\b|--(index-url|extra-index-url|find-links|trusted-host|no-index|editable|"
                              r"constraint|requirement|use-pep517|config-settings|global-option|install-option)\b)")
_COMMENT = re.compile(r"(^|\s+)#.*$")  # pip's: a `#` at the start or after whitespace
_ENV_VAR = re.compile(r"\$\{[A-Za-z0-9_]+\}")
_NAME = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)(.*)$", re.S)


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, line) as pip reads a requirements file: continuations joined, comments and blanks left out."""
    pending: list[str] = []
    first = 0
    lines = list(enumerate(text.splitlines(), start=1))
    for number, raw in lines:
        if raw.endswith("\\") and not _COMMENT.match(raw):
            if not pending:
                first = number
            pending.append(raw[:-1])
            continue
        if pending:
            raw, number = "".join([*pending, raw]), first
            pending = []
        line = _COMMENT.sub("", raw).strip()
        if line:
            yield number, line
    if pending:
        line = _COMMENT.sub("", "".join(pending)).strip()
        if line:
            yield first, line


def _include(line: str) -> tuple[str, str] | None:
    """(option, file) of an include line (`-r F`, `-rF`, `--requirement=F`, `-c F`, `--constraint F`), else None."""
    for option in ("--requirement", "--constraint", "-r", "-c"):
        rest = line[len(option):]
        if line.startswith(option) and (len(option) == 2 or rest[:1] in ("", "=", " ", "\t")):
            return option, rest.removeprefix("=").strip()
    return None


def check_line(where: str, line: str) -> str:
    """Refuse a line that changes where packages come from; return it normalized (one space, canonical name).

    `where` names the line in a reason: `requirements/prod.txt line 3`, `uv.lock, package 'flask'`.
    """
    if _ENV_VAR.search(line):
        raise BuildFailed(
            f"{where}: {line[:80]!r} uses an environment variable, which the installer would expand; "
            "write the value itself"
        )
    changing = _SOURCE_CHANGING.search(line)
    if line.startswith("-") or changing:
        option = changing.group(2) if changing else line.split()[0].split("=")[0]
        if option not in _ALLOWED_OPTIONS or changing:
            raise BuildFailed(
                f"{where}: the option {option!r} is not allowed; packages come from "
                "the grader's package index only, so list plain requirements such as `flask==3.1.0`"
            )
        return " ".join(line.split())
    requirement = line.split(";", 1)[0]
    if (
        "://" in requirement or "/" in requirement or "\\" in requirement or " @ " in requirement or "@" in requirement
        or requirement.startswith((".", "~", "git+")) or requirement.rstrip().endswith(_ARCHIVES)
    ):
        raise BuildFailed(f"{where}: {line[:80]!r} installs from a URL or a path; list packages by name and version only")
    return _normalized(line)


def _normalized(line: str) -> str:
    """`Flask_Login == 0.6.3 ; python_version>'3'` -> `flask-login==0.6.3 ; python_version>'3'` (same meaning)."""
    requirement, options = line, ""
    if " --" in line:
        requirement, options = line.split(" --", 1)
        options = " --" + " ".join(options.split())
    spec, _, marker = requirement.partition(";")
    spec = "".join(spec.split())
    match = _NAME.match(spec)
    if match:
        spec = re.sub(r"[-_.]+", "-", match.group(1)).lower() + match.group(2)
    marker = " ".join(marker.split())
    return spec + (f" ; {marker}" if marker else "") + options


def check_requirements(content: bytes, name: str = "requirements.txt") -> list[str]:
    """Check every line of one requirements file (no includes followed); return its normalized lines."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise BuildFailed(f"{name} is not UTF-8 text") from None
    return [check_line(f"{name} line {number}", line) for number, line in _logical_lines(text)]


def requirement_options(content: bytes) -> set[str]:
    """The options (allowed by `check_line`) present in requirements text, e.g. {"--pre", "--hash"}."""
    found: set[str] = set()
    for _, line in _logical_lines(content.decode("utf-8")):
        for token in line.split():
            name = token.split("=", 1)[0]
            if name in _ALLOWED_OPTIONS:
                found.add(name)
    return found


# --- reading files of the snapshot ----------------------------------------------------------------


def _prefix(where: str, shown: str) -> str:
    return "" if where == shown else f"{where}: "


def _inside(root: Path, path: Path, where: str, shown: str) -> Path:
    """`path` with every link resolved, refused unless it stays inside `root` (the resolved snapshot)."""
    if not os.path.normpath(path).startswith(str(root) + os.sep):
        raise BuildFailed(f"{_prefix(where, shown)}{shown} is outside the repository; include only files of the repository")
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(root):
        raise BuildFailed(
            f"{_prefix(where, shown)}{shown} is a symbolic link (or goes through one) to outside the repository, "
            "not a regular file of the repository; it is not read"
        )
    return real


def read_snapshot_file(root: Path, path: Path, limit: int, where: str, shown: str) -> tuple[Path, bytes]:
    """Read a file of the snapshot: resolved inside it before it is opened, a regular file, at most `limit` bytes."""
    real = _inside(root, path, where, shown)
    content = read_regular_file(real, limit)
    if content is None:
        raise BuildFailed(f"{_prefix(where, shown)}{shown} does not exist in the repository (or is not a regular file)")
    if len(content) > limit:
        raise BuildFailed(f"{_prefix(where, shown)}{shown} is larger than {limit} bytes")
    return real, content


@dataclass
class _Reading:
    root: Path
    files: list[str]
    requirements: list[str]
    constraints: list[str]
    total: int = 0


def _read_requirements_file(
    reading: _Reading, path: Path, shown: str, where: str, constraint: bool, stack: tuple[Path, ...]
) -> None:
    real, content = read_snapshot_file(reading.root, path, MAX_REQUIREMENTS_BYTES, where, shown)
    name = real.relative_to(reading.root).as_posix()
    if real in stack:
        chain = " -> ".join([*(p.relative_to(reading.root).as_posix() for p in stack), name])
        raise BuildFailed(f"{where}: including {shown} makes a cycle ({chain}); include each file once")
    if len(stack) > MAX_INCLUDE_DEPTH:
        raise BuildFailed(f"{where}: includes nest deeper than {MAX_INCLUDE_DEPTH} files; flatten them")
    reading.total += len(content)
    if name not in reading.files:
        reading.files.append(name)
    if reading.total > MAX_INCLUDED_BYTES or len(reading.files) > MAX_INCLUDED_FILES:
        raise BuildFailed(
            f"{where}: requirements.txt and its includes hold more than {MAX_INCLUDED_BYTES} bytes "
            f"or {MAX_INCLUDED_FILES} files; keep the dependencies in a few small files"
        )
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise BuildFailed(f"{name} is not UTF-8 text") from None
    for number, line in _logical_lines(text):
        here = f"{name} line {number}"
        include = _include(line)
        if include:
            option, target = include
            try:
                parts = shlex.split(target)
            except ValueError:
                parts = []
            if len(parts) != 1 or "://" in parts[0]:
                raise BuildFailed(f"{here}: {line[:80]!r} must name one file of the repository, relative to {name}")
            target = parts[0]
            if os.path.isabs(target) or target.startswith("~"):
                raise BuildFailed(f"{here}: {target} is an absolute path, outside the repository; "
                                  f"include only files of the repository, relative to {name}")
            _read_requirements_file(
                reading, real.parent / target, target, here, option in ("-c", "--constraint"), (*stack, real)
            )
            continue
        (reading.constraints if constraint else reading.requirements).append(check_line(here, line))


def _unique_sorted(lines: list[str]) -> bytes:
    """Options first, then requirements, each sorted and once: the same pins give the same text in any layout."""
    unique = set(lines)
    ordered = sorted(line for line in unique if line.startswith("-")) + sorted(line for line in unique if not line.startswith("-"))
    return "".join(f"{line}\n" for line in ordered).encode()


def read_requirements_txt(root: Path) -> Dependencies:
    """requirements.txt and every file it includes, checked and normalized into one text."""
    reading = _Reading(root=root, files=[], requirements=[], constraints=[])
    _read_requirements_file(reading, root / "requirements.txt", "requirements.txt", "requirements.txt", False, ())
    return Dependencies(
        format="requirements", files=tuple(reading.files),
        requirements=_unique_sorted(reading.requirements), constraints=_unique_sorted(reading.constraints),
    )


def _names(text: bytes) -> set[str]:
    """The (normalized) package names that normalized requirements text lists."""
    lines = text.decode().splitlines()
    return {match.group(1) for line in lines if not line.startswith("-") and (match := _NAME.match(line))}


def with_test_tools(deps: Dependencies) -> Dependencies:
    """The dependencies plus each test tool the candidate does not list: their own pytest (or coverage) wins.

    A tool only their constraints name is added unpinned, so that their constraint picks its version. With
    `--hash` lines nothing is added: hash-checking would need a hash of every tool and of their dependencies.
    """
    if requirement_options(deps.requirements) & {"--hash", "--require-hashes"}:
        return deps
    listed, constrained = _names(deps.requirements), _names(deps.constraints)
    added = []
    for pin in TEST_TOOLS:
        name = pin.split("==")[0]
        if name not in listed:
            added.append(name if name in constrained else pin)
    if not added:
        return deps
    lines = deps.requirements.decode().splitlines()
    return replace(deps, requirements=_unique_sorted([*lines, *added]), tools=tuple(added))


def read_dependencies(snapshot: Snapshot) -> Dependencies:
    """The submission's dependencies from the first format present at its root (see FORMATS), with the test
    tools when the repository has tests."""
    deps = _read_format(snapshot)
    return with_test_tools(deps) if find_tests(snapshot.path) is not None else deps


def _read_format(snapshot: Snapshot) -> Dependencies:
    """The dependencies as the candidate listed them, from the first format present."""
    root = Path(os.path.realpath(snapshot.path))
    present = [name for name in FORMATS if os.path.lexists(root / name)]
    if not present:
        hint = " (a Pipfile alone is not enough: commit Pipfile.lock)" if os.path.lexists(root / "Pipfile") else ""
        raise BuildFailed(
            "the repository has no requirements.txt at its root (nor uv.lock, poetry.lock, Pipfile.lock or a "
            f"pyproject.toml with [project] dependencies){hint}; add one that lists your dependencies"
        )
    name = present[0]
    if name == "requirements.txt":
        return read_requirements_txt(root)
    real, content = read_snapshot_file(root, root / name, MAX_LOCK_BYTES, name, name)
    lines = dependency_formats.parse(name, content)
    checked = [check_line(where, line) for where, line in lines]
    return Dependencies(format=name, files=(real.relative_to(root).as_posix(),), requirements=_unique_sorted(checked))


def read_requirements(snapshot: Snapshot) -> bytes:
    """The normalized requirements text of the submission (see `read_dependencies`)."""
    return read_dependencies(snapshot).requirements
